import { constants } from 'node:os';

const bySignal = constants.signals as Record<string, number>;

/**
 * Parses a signal as runc accepts it: "KILL", "SIGKILL", "sigkill" or "9".
 * Returns undefined for an unknown signal.
 */
export function parseSignal(text: string): number | undefined {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    return n >= 1 && n <= 64 ? n : undefined;
  }
  const upper = text.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (name.startsWith('SIGRTMIN') || name.startsWith('SIGRTMAX')) return realtime(name);
  return bySignal[name];
}

function realtime(name: string): number | undefined {
  const m = /^SIGRT(MIN|MAX)(?:([+-])([0-9]+))?$/.exec(name);
  if (!m) return undefined;
  const base = m[1] === 'MIN' ? 34 : 64;
  const off = m[3] ? Number(m[3]) * (m[2] === '-' ? -1 : 1) : 0;
  const n = base + off;
  return n >= 34 && n <= 64 ? n : undefined;
}

export function signalName(sig: number): string {
  for (const [name, n] of Object.entries(bySignal)) if (n === sig) return name;
  return `signal ${sig}`;
}
