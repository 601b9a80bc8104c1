// Where a container's cgroup v2 directory is, creating it, listing and
// signalling its processes, removing it. (Resource limits: cgroups issue.)
import { mkdirSync, openSync, readFileSync, rmdirSync, existsSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { O_DIRECTORY } from '../../linux/constants.js';
import { RuntimeError } from '../errors.js';

/** runc's cgroupfs rule: absolute paths hang off the cgroup2 root, relative
 * ones off the parent of the runtime's own cgroup; the default is the id. */
export function cgroupDirFor(unifiedMount: string, cgroupsPath: string | undefined, id: string, ownCgroup: string): string {
  const raw = cgroupsPath || id;
  // Cleaned as if rooted, so ".." can never climb out of the hierarchy.
  const inner = posix.normalize(`/${raw}`);
  if (raw.startsWith('/')) return join(unifiedMount, inner);
  return join(unifiedMount, posix.dirname(ownCgroup), inner);
}

/** This process's cgroup v2 path ("0::/path" in /proc/self/cgroup). */
export function ownCgroupV2(): string {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  return line ? line.slice(3) || '/' : '/';
}

export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RuntimeError(`read ${join(dir, 'cgroup.procs')}`, e);
  }
}

export function cgroupFrozen(dir: string): boolean {
  try {
    return /^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'));
  } catch {
    return false;
  }
}

export interface CreatedCgroup {
  /** O_DIRECTORY fd for CLONE_INTO_CGROUP */
  fd: number;
  /** the highest directory this call created (removed again on delete), if any */
  createdTop: string | undefined;
}

/**
 * Creates the directory (and its parents). An existing cgroup that still has
 * processes is refused: the container would share them.
 */
export function createCgroup(dir: string): CreatedCgroup {
  if (existsSync(dir) && cgroupPids(dir).length > 0) {
    throw new RuntimeError(`cgroup ${dir} already has processes in it`);
  }
  let createdTop: string | undefined;
  try {
    createdTop = mkdirSync(dir, { recursive: true, mode: 0o755 });
    return { fd: openSync(dir, O_DIRECTORY), createdTop };
  } catch (e) {
    if (createdTop) removeCgroup(dir, createdTop);
    throw new RuntimeError(`create cgroup ${dir}`, e);
  }
}

const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** rmdir the cgroup once empty (retrying while the kernel finishes reaping),
 * then its parents up to `top`. */
export function removeCgroup(dir: string, top: string = dir): void {
  for (let d = dir; ; d = dirname(d)) {
    for (let i = 0; ; i++) {
      try {
        rmdirSync(d);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (d !== dir && (code === 'EBUSY' || code === 'ENOTEMPTY')) return; // a parent others still use
        if (code !== 'EBUSY' || i === 200) throw new RuntimeError(`remove cgroup ${d}`, e);
        sleepMs(5);
      }
    }
    if (d === top || !d.startsWith(`${top}/`)) break;
  }
}
