// A list of containerd Mount messages (an overlay from the snapshotter, a
// bind) stacked at one directory, as containerd's mount.All does: a task's
// rootfs at bundle/rootfs (tasks), a snapshot read-only for a diff walk
// (snapshots); taken down again with unmountStack.
import { mkdirSync } from 'node:fs';
import { MS_BIND, MS_RDONLY, MS_REMOUNT } from '../linux/constants.js';
import { mount, umount } from '../linux/libc.js';
import { parseMountOptions } from './plan/mount-options.js';
import { invalidArgument } from '../errdefs.js';

/** containerd.types.Mount */
export interface StackMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

const MNT_DETACH = 2;
// The kernel copies at most a page of mount data.
const MAX_DATA = 4095;

/** Mounts them in order at dir; on failure, what was mounted is undone. */
export function mountStack(mounts: readonly StackMount[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  let done = 0;
  try {
    for (const m of mounts) {
      if (m.target) throw invalidArgument(`mount ${m.type} ${m.source} on ${dir}: a target inside the mounted tree is not supported`);
      const o = parseMountOptions(m.options);
      if (o.data.length > MAX_DATA) throw invalidArgument(`mount ${m.type} on ${dir}: its options are ${o.data.length} bytes, over the kernel's ${MAX_DATA}`);
      const bind = (o.flags & MS_BIND) !== 0 || m.type === 'bind';
      mount(m.source, dir, bind ? null : m.type, o.flags | (bind ? MS_BIND : 0), o.data || null);
      done++;
      // A bind ignores MS_RDONLY until it is remounted.
      if (bind && o.flags & MS_RDONLY) mount('', dir, null, MS_BIND | MS_REMOUNT | MS_RDONLY, null);
    }
  } catch (e) {
    for (; done > 0; done--) umount(dir, MNT_DETACH);
    throw e;
  }
}

/** Unmounts everything stacked at dir. */
export function unmountStack(dir: string): void {
  for (let i = 0; i < 64 && umount(dir, MNT_DETACH); i++) {
    /* one layer per call */
  }
}
