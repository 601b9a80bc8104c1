// Freezing, thawing and killing a whole cgroup: cgroup.freeze (then waiting
// for cgroup.events to say "frozen 1", as runc does) and cgroup.kill.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import { readOptional, writeFile } from './files.js';
import { cgroupPids } from './placement.js';

const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** The value of KEY in DIR/cgroup.events ("populated", "frozen"), or undefined. */
export function cgroupEvent(dir: string, key: string): string | undefined {
  const text = readOptional(dir, 'cgroup.events');
  return text === undefined ? undefined : new RegExp(`^${key} (\\S+)$`, 'm').exec(text)?.[1];
}

export function hasFreezer(dir: string): boolean {
  return existsSync(join(dir, 'cgroup.freeze'));
}

/**
 * Freezes (true) or thaws (false) every process in DIR and waits until the
 * kernel reports it done. A freeze that does not complete in `timeoutMs` is
 * undone and reported.
 */
export function setFrozen(dir: string, frozen: boolean, timeoutMs = 10_000): void {
  if (!hasFreezer(dir)) {
    if (!frozen) return;
    throw new RuntimeError(`cannot freeze ${dir}: this kernel has no cgroup.freeze (the cgroup v2 freezer needs Linux 5.2 or later)`);
  }
  writeFile(dir, 'cgroup.freeze', frozen ? '1' : '0');
  const want = frozen ? '1' : '0';
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 10)) {
    const state = cgroupEvent(dir, 'frozen');
    if (state === undefined || state === want) return; // no such line on old kernels; the cgroup gone
    if (Date.now() > deadline) {
      if (frozen) {
        try {
          writeFile(dir, 'cgroup.freeze', '0');
        } catch {
          /* reported below */
        }
      }
      throw new RuntimeError(`timed out after ${timeoutMs} ms waiting for ${join(dir, 'cgroup.events')} to say "frozen ${want}"`);
    }
    sleepMs(delay);
  }
}

/** cgroup.kill (Linux 5.14): SIGKILL to every process in the cgroup; false where the kernel lacks it. */
export function killAll(dir: string): boolean {
  if (!existsSync(join(dir, 'cgroup.kill'))) return false;
  writeFile(dir, 'cgroup.kill', '1');
  return true;
}

/** Waits until no process is left in DIR (cgroup.events "populated 0"); false on timeout. */
export function waitEmpty(dir: string, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    const populated = cgroupEvent(dir, 'populated');
    if (populated === undefined || populated === '0') return true;
    if (Date.now() > deadline) return false;
    sleepMs(delay);
  }
}

/**
 * Sends SIG to every process in DIR, as runc's signalAllProcesses: SIGKILL
 * through cgroup.kill where the kernel has it; other signals with the cgroup
 * frozen meanwhile, so no process forks past the list (unless it was frozen
 * already: then the signals wait for `resume`).
 */
export function signalCgroup(dir: string, sig: number, signal: (pid: number) => void): void {
  if (sig === 9 && killAll(dir)) return;
  const freeze = hasFreezer(dir) && cgroupEvent(dir, 'frozen') !== '1';
  if (freeze) setFrozen(dir, true);
  try {
    for (const pid of cgroupPids(dir)) signal(pid);
  } finally {
    if (freeze) setFrozen(dir, false);
  }
}
