// A directory tree as one comparable value: every entry below the root with
// its type, mode, owner, device number, size, nanosecond mtime, symlink
// target, xattrs (trusted.overlay.* aside), a digest of its contents, and
// which names share an inode. Two trees are equal as far as a layer can tell.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { getxattr, listxattr } from '../../src/linux/fsat.js';

export interface TreeEntry {
  path: string;
  mode: string;
  owner: string;
  rdev: number;
  size: number;
  mtimeNs: string;
  link?: string;
  xattrs?: Record<string, string>;
  sha?: string;
  /** the other names of the same inode in the tree, for files with more than one link */
  links?: string[];
}

/** Entries of root in path order; mtimes of directories only when withDirTimes. */
export function describeTree(root: string, o: { withDirTimes?: boolean } = {}): TreeEntry[] {
  const out: TreeEntry[] = [];
  const inodes = new Map<string, string[]>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = lstatSync(abs, { bigint: true });
      const e: TreeEntry = {
        path,
        mode: st.mode.toString(8),
        owner: `${st.uid}:${st.gid}`,
        rdev: Number(st.rdev),
        size: st.isDirectory() ? 0 : Number(st.size),
        mtimeNs: st.isDirectory() && !o.withDirTimes ? '-' : st.mtimeNs.toString(),
      };
      if (st.isSymbolicLink()) e.link = readlinkSync(abs);
      if (st.isFile()) e.sha = createHash('sha256').update(readFileSync(abs)).digest('hex');
      const names = listxattr(abs).filter((n) => !n.startsWith('trusted.overlay.'));
      if (names.length) e.xattrs = Object.fromEntries(names.sort().map((n) => [n, getxattr(abs, n)?.toString('hex') ?? '']));
      if (!st.isDirectory() && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        inodes.set(key, [...(inodes.get(key) ?? []), path]);
      }
      out.push(e);
      if (st.isDirectory()) walk(path);
    }
  };
  walk('');
  const byPath = new Map(out.map((e) => [e.path, e]));
  for (const names of inodes.values()) for (const n of names) byPath.get(n)!.links = names;
  return out;
}
