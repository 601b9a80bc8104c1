// Snapshot mounts mounted read-only in a private temp dir for as long as a
// walk of them runs (containerd's mount.WithReadonlyTempMount): an overlay's
// upperdir becomes its top lowerdir (its workdir is never touched, and an
// active snapshot mounted elsewhere can be read at the same time), a single
// layer left becomes a read-only bind, binds get "ro". Whatever happens,
// the mounts are taken down and the temp dirs removed before the walk's
// caller sees its end or its error.
import { mkdirSync, mkdtempSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { invalidArgument, notImplemented } from '../errdefs.js';
import { mountStack, unmountStack } from '../runtime/mount-stack.js';
import type { SnapshotMount } from './overlay.js';
import { overlayLayerDirs } from './mount-options.js';

const WRITABLE_ONLY = /^(upperdir|workdir|lowerdir)=|^(rw|ro|volatile)$/;

/** The same tree as mounts, mounted read-only; throws for a mount type other than overlay and bind. */
export function readonlyMounts(mounts: readonly SnapshotMount[]): SnapshotMount[] {
  return mounts.map((m) => {
    if (m.type === 'overlay') {
      const layers = overlayLayerDirs(m);
      if (layers.length === 0) throw invalidArgument('overlay mount without upperdir or lowerdir');
      // the kernel wants two lowerdirs for an overlay without upperdir
      if (layers.length === 1) return { type: 'bind', source: layers[0]!, options: ['rbind', 'ro'] };
      return { type: 'overlay', source: m.source || 'overlay', options: [...m.options.filter((o) => !WRITABLE_ONLY.test(o)), `lowerdir=${layers.join(':')}`, 'ro'] };
    }
    if (m.type === 'bind' || m.type === 'rbind') {
      if (!m.source) throw invalidArgument('bind mount without a source');
      return { type: 'bind', source: m.source, options: [...m.options.filter((o) => !WRITABLE_ONLY.test(o)), ...(m.type === 'rbind' ? ['rbind'] : []), 'ro'] };
    }
    throw notImplemented(`mount type ${JSON.stringify(m.type)}: only overlay and bind mounts are supported`);
  });
}

/**
 * Runs walk over sets (each already read-only, see readonlyMounts) mounted
 * under a new dir in tmpRoot, one root per set (an empty set is an empty
 * dir). The mounts and dirs are gone when the generator ends, throws or is
 * returned early.
 */
export async function* withTempMounts<T>(
  tmpRoot: string,
  sets: ReadonlyArray<readonly SnapshotMount[]>,
  walk: (roots: string[]) => AsyncIterable<T>,
): AsyncGenerator<T> {
  mkdirSync(tmpRoot, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(tmpRoot, 'diff-'));
  const roots: string[] = [];
  try {
    for (const [i, mounts] of sets.entries()) {
      const root = join(dir, String(i));
      mkdirSync(root, { mode: 0o700 });
      roots.push(root);
      // mountStack undoes its own partial mounts when one fails
      mountStack(mounts, root);
    }
    yield* walk(roots);
  } finally {
    for (const root of roots) unmountStack(root);
    // rmdir, not rm -r: should a mount have stayed, its contents are not ours to delete
    for (const root of roots) rmdirSync(root);
    rmdirSync(dir);
  }
}
