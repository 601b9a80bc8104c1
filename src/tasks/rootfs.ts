// A task's root filesystem from the mounts in its Create request (an overlay
// from the snapshotter, a bind), mounted at bundle/rootfs as containerd's
// shim mounts it, and taken down again at Delete or on a failed create.
import { mkdirSync } from 'node:fs';
import { MS_BIND, MS_RDONLY, MS_REMOUNT } from '../linux/constants.js';
import { mount, umount } from '../linux/libc.js';
import { parseMountOptions } from '../runtime/plan/mount-options.js';
import { invalidArgument } from '../errdefs.js';

/** containerd.types.Mount */
export interface RootfsMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

const MNT_DETACH = 2;
// The kernel copies at most a page of mount data.
const MAX_DATA = 4095;

/** Mounts them in order at dir; on failure, what was mounted is undone. */
export function mountRootfs(mounts: readonly RootfsMount[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  let done = 0;
  try {
    for (const m of mounts) {
      if (m.target) throw invalidArgument(`rootfs mount ${m.type} ${m.source}: a target inside the rootfs is not supported`);
      const o = parseMountOptions(m.options);
      if (o.data.length > MAX_DATA) throw invalidArgument(`rootfs mount ${m.type}: its options are ${o.data.length} bytes, over the kernel's ${MAX_DATA}`);
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
export function unmountRootfs(dir: string): void {
  for (let i = 0; i < 64 && umount(dir, MNT_DETACH); i++) {
    /* one layer per call */
  }
}
