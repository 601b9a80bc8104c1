// Reading and writing cgroup v2 interface files. Writes open the file without
// O_CREAT (a missing file must fail, not be created on a tmpfs by mistake)
// and write the whole value in one write(2), as the kernel parses each write.
import { closeSync, openSync, readFileSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';

/** The contents of DIR/FILE, or undefined if it does not exist. */
export function readOptional(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return undefined;
    throw new RuntimeError(`read ${join(dir, file)}`, e);
  }
}

export function readRequired(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch (e) {
    throw new RuntimeError(`read ${join(dir, file)}`, e);
  }
}

/** Writes VALUE to DIR/FILE; throws the Node error (with .code) untouched. */
export function writeRaw(dir: string, file: string, value: string): void {
  const fd = openSync(join(dir, file), constants.O_WRONLY);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/** Writes, turning a failure into `write "VALUE" to DIR/FILE: EINVAL (...)`. */
export function writeFile(dir: string, file: string, value: string): void {
  try {
    writeRaw(dir, file, value);
  } catch (e) {
    throw new RuntimeError(`write ${JSON.stringify(value)} to ${join(dir, file)}`, e);
  }
}

/** Parses "key value" lines (cpu.stat, memory.stat, memory.events, ...). */
export function parseKeyValues(text: string | undefined): Map<string, bigint> {
  const out = new Map<string, bigint>();
  if (!text) return out;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (!k || v === undefined) continue;
    out.set(k, parseUint(v));
  }
  return out;
}

export const MAX_UINT64 = 0xffff_ffff_ffff_ffffn;

/** A cgroup number: "max" is the largest uint64, as runc reports it. */
export function parseUint(v: string): bigint {
  const s = v.trim();
  if (s === 'max') return MAX_UINT64;
  return /^\d+$/.test(s) ? BigInt(s) : 0n;
}

/** One value file (memory.current, pids.max), or undefined if absent. */
export function readUint(dir: string, file: string): bigint | undefined {
  const text = readOptional(dir, file);
  return text === undefined ? undefined : parseUint(text);
}

/** The controllers listed in DIR/cgroup.controllers (empty if unreadable). */
export function controllersOf(dir: string): string[] {
  return (readOptional(dir, 'cgroup.controllers') ?? '').split(/\s+/).filter(Boolean);
}
