import { readFileSync } from 'node:fs';

/**
 * The start time of a process in clock ticks since boot (field 22 of
 * /proc/PID/stat): with the pid it identifies a process across pid reuse.
 * undefined when the process does not exist.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  if (state === 'Z' || state === 'X') return undefined;
  return rest[19];
}

/** True when the process exists and is not a zombie. */
export function processAlive(pid: number, startTime?: string): boolean {
  const st = processStartTime(pid);
  return st !== undefined && (startTime === undefined || st === startTime);
}
