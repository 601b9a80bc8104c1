// Where a container's cgroup v2 directory is, creating it, listing its
// processes, removing it. (Limits: resources.ts; the whole setup: setup.ts.)
import { mkdirSync, openSync, readFileSync, rmdirSync, existsSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { O_DIRECTORY } from '../../linux/constants.js';
import { RuntimeError } from '../errors.js';
import { ConfigError } from '../../oci/validate.js';

/** runc's cgroupfs rule: absolute paths hang off the cgroup2 root, relative
 * ones off the parent of the runtime's own cgroup; the default is the id. */
export function cgroupDirFor(unifiedMount: string, cgroupsPath: string | undefined, id: string, ownCgroup: string): string {
  const raw = cgroupsPath || id;
  // Cleaned as if rooted, so ".." can never climb out of the hierarchy.
  const inner = posix.normalize(`/${raw}`);
  if (raw.startsWith('/')) return join(unifiedMount, inner);
  return join(unifiedMount, posix.dirname(ownCgroup), inner);
}

/**
 * Refuses a linux.cgroupsPath that climbs with ".." (runc would clean it
 * silently; a path that means something else than it says is an error here)
 * or that names the root of the hierarchy.
 */
export function checkCgroupsPath(cgroupsPath: string | undefined): void {
  if (!cgroupsPath) return;
  const bad = (why: string) => new ConfigError('linux.cgroupsPath', `${JSON.stringify(cgroupsPath)}: ${why}`);
  if (cgroupsPath.split('/').includes('..')) throw bad('must not contain ".." (a cgroup path may not climb out of where it is placed)');
  if (cgroupsPath.includes('\0')) throw bad('must not contain a NUL byte');
  if (posix.normalize(`/${cgroupsPath}`) === '/') throw bad('names the root of the cgroup hierarchy, where no container can be placed');
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
 * processes is refused unless `shared` (the container joins another's pid
 * namespace, so it shares that container's cgroup by design); a frozen one
 * is refused always, as runc does.
 */
export function createCgroup(dir: string, shared = false): CreatedCgroup {
  if (existsSync(dir)) {
    const n = cgroupPids(dir).length;
    if (n > 0 && !shared) throw new RuntimeError(`cgroup ${dir} is not empty: ${n} process(es) found in it (another container's?)`);
    if (cgroupFrozen(dir)) throw new RuntimeError(`cgroup ${dir} is frozen (cgroup.freeze is 1)`);
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
