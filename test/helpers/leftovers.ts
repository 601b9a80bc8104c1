// What a failed or finished container must not leave behind: its state
// directory, its cgroup, mounts on the host, processes in its cgroup.
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';
import { readMountInfo } from '../../src/linux/mountinfo.js';

export interface Snapshot {
  stateDirs: string[];
  mounts: string[];
}

// Other test files run at the same time (tap --jobs) and mount under their
// own temp dirs (engines' netns files, tsrund's snapshots): those are not
// ours to count. Ours are anywhere else, or under the CLI tests' own dirs.
const OWN_TEMP = /^(tsrunc-rootfs-|tsrunc-bundle-|tsrunc-root-)/;
function isOurs(mountPoint: string): boolean {
  const tmp = `${tmpdir()}/`;
  if (!mountPoint.startsWith(tmp)) return true;
  return OWN_TEMP.test(mountPoint.slice(tmp.length));
}

function mountLines(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ').slice(3, 5))
    .filter((f) => f.length === 2 && isOurs(f[1]!))
    .map((f) => f.join(' '))
    .sort();
}

export function snapshot(root: string): Snapshot {
  return { stateDirs: existsSync(root) ? readdirSync(root).sort() : [], mounts: mountLines() };
}

export function cgroupDirOf(id: string): string | undefined {
  const unified = cgroupLayout(readMountInfo()).unifiedMount;
  return unified ? join(unified, id) : undefined;
}

/** Processes whose cgroup v2 path is /<id> (where tsrunc puts a container by default). */
export function processesInCgroup(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cgroup`, 'utf8').split('\n').includes(`0::/${id}`)) out.push(Number(p));
    } catch {
      /* exited */
    }
  }
  return out;
}

/** Copies of tsrunc for this id: an init that never reached execve still has tsrunc's command line. */
export function tsruncProcessesFor(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('tsrunc.cjs')) && argv.includes(id)) out.push(Number(p));
    } catch {
      /* exited */
    }
  }
  return out;
}

/** Differences between two snapshots, plus the container's cgroup and processes. */
export function leftovers(root: string, before: Snapshot, id: string): string[] {
  const after = snapshot(root);
  const problems: string[] = [];
  const newDirs = after.stateDirs.filter((d) => !before.stateDirs.includes(d));
  if (newDirs.length) problems.push(`state dirs left: ${newDirs.join(', ')}`);
  const newMounts = after.mounts.filter((m) => !before.mounts.includes(m));
  if (newMounts.length) problems.push(`mounts left: ${newMounts.join('; ')}`);
  const cg = cgroupDirOf(id);
  if (cg && existsSync(cg)) problems.push(`cgroup left: ${cg}`);
  const procs = processesInCgroup(id);
  if (procs.length) problems.push(`processes left in cgroup /${id}: ${procs.join(', ')}`);
  const copies = tsruncProcessesFor(id);
  if (copies.length) problems.push(`tsrunc processes left for ${id}: ${copies.join(', ')}`);
  return problems;
}

/**
 * Removes a test's parent cgroup (and empty children) from every cgroup
 * hierarchy, v2 and v1: the containers under it remove only their own
 * directories, as runc's do.
 */
export function removeCgroupEverywhere(relative: string): void {
  for (const m of readMountInfo()) {
    if (m.fsType !== 'cgroup' && m.fsType !== 'cgroup2') continue;
    removeEmptyTree(join(m.mountPoint, relative));
  }
}

function removeEmptyTree(dir: string): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return; // not there
  }
  for (const e of entries) if (e.isDirectory()) removeEmptyTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    /* still used */
  }
}
