// Making controllers available to a container's cgroup: in cgroup v2 a
// cgroup has a controller only if its parent lists it in
// cgroup.subtree_control, and so on up to the root of the mount.
import { join, relative } from 'node:path';
import { controllersOf, readOptional, writeRaw } from './files.js';

/**
 * Enables, in the mount root and every ancestor of DIR, the controllers each
 * one offers (runc's and crun's CreateCgroupPath), so that every limit and
 * statistic, including those a later `update` sets, can be used. Best effort:
 * a controller that cannot be enabled (an ancestor with processes of its own,
 * a threaded subtree) is missing from DIR's cgroup.controllers, and a limit
 * that needs it fails there with a clear error.
 */
export function enableControllers(mount: string, dir: string): void {
  const parts = relative(mount, dir).split('/').filter(Boolean);
  let cur = mount;
  for (let i = 0; i < parts.length; i++) {
    enableIn(cur);
    cur = join(cur, parts[i]!);
  }
}

function enableIn(dir: string): void {
  const offered = controllersOf(dir);
  const enabled = new Set((readOptional(dir, 'cgroup.subtree_control') ?? '').split(/\s+/).filter(Boolean));
  const missing = offered.filter((c) => !enabled.has(c));
  if (missing.length === 0) return;
  try {
    writeRaw(dir, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '));
  } catch {
    // one by one: enable what can be
    for (const c of missing) {
      try {
        writeRaw(dir, 'cgroup.subtree_control', `+${c}`);
      } catch {
        /* reported where a limit needs it */
      }
    }
  }
}

/** The controllers of the cgroup v2 root of the mount (what this host offers). */
export function hostControllers(mount: string): string[] {
  return controllersOf(mount);
}
