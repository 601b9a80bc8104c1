// The changes from one tree to another as a layer tar, the way containerd's
// walking differ makes it (continuity's fs.Changes walking both trees in
// lexical order, then archive.WriteDiff): what right adds or modifies is a
// member taken from right, what only left has is a `.wh.NAME` whiteout (a
// removed directory is one whiteout, not one per child), and an entry whose
// type changed is written whole from right, its left subtree not compared
// (a tar member replaces what is there unless both are directories).
// Every changed entry's parent directories come first, from right, so the
// layer carries their attributes; and every file with more than one link is
// written even if unchanged, so a hard link in the layer always has its
// target in the layer.
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { TreeMembers, typeOf, whiteoutHeader, xattrsOf } from './diff.js';
import { END_OF_ARCHIVE } from './tar-writer.js';

interface Dir {
  path: string;
  st: BigIntStats;
  written: boolean;
}

/** The tar stream of the changes that turn left into right. */
export async function* tarChanges(left: string, right: string): AsyncGenerator<Buffer> {
  const members = new TreeMembers(right);
  /** right's directories from the root down to where the walk is */
  const open: Dir[] = [];
  // whiteouts carry their directory's mtime in right (the root's at the top) so that equal trees give equal layers
  const rootMtime = lstatSync(right, { bigint: true }).mtimeNs;

  function* parents(): Generator<AsyncGenerator<Buffer>> {
    for (const d of open) {
      if (d.written) continue;
      d.written = true;
      yield members.member(d.path, d.st);
    }
  }

  /** path and, for a directory, everything under it, as right has them. */
  async function* added(path: string, st: BigIntStats): AsyncGenerator<Buffer> {
    for (const m of parents()) yield* m;
    yield* members.member(path, st);
    if (!st.isDirectory()) return;
    for (const name of entries(join(right, path))) {
      const child = `${path}/${name}`;
      const cst = lstatOrSocket(join(right, child));
      if (cst) yield* added(child, cst);
    }
  }

  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const l = entries(rel ? join(left, rel) : left);
    const r = entries(rel ? join(right, rel) : right);
    let i = 0;
    let j = 0;
    while (i < l.length || j < r.length) {
      const ln = l[i];
      const rn = r[j];
      const name = rn === undefined || (ln !== undefined && byteOrder(ln, rn) < 0) ? ln! : rn;
      const path = rel ? `${rel}/${name}` : name;
      const lst = ln === name ? lstatOrSocket(join(left, path)) : undefined;
      const rst = rn === name ? lstatOrSocket(join(right, path)) : undefined;
      if (ln === name) i++;
      if (rn === name) j++;
      if (!rst) {
        if (lst) {
          for (const m of parents()) yield* m;
          yield whiteoutHeader(path, open.at(-1)?.st.mtimeNs ?? rootMtime);
        }
        continue;
      }
      if (!lst || typeOf(lst) !== typeOf(rst)) {
        yield* added(path, rst);
        continue;
      }
      if (rst.isDirectory()) {
        const d: Dir = { path, st: rst, written: false };
        if (!sameEntry(join(left, path), lst, join(right, path), rst)) {
          for (const m of parents()) yield* m;
          yield* members.member(path, rst);
          d.written = true;
        }
        open.push(d);
        yield* walk(path);
        open.pop();
        continue;
      }
      if (rst.nlink > 1n || !sameEntry(join(left, path), lst, join(right, path), rst)) {
        for (const m of parents()) yield* m;
        yield* members.member(path, rst);
      }
    }
  }

  yield* walk('');
  yield END_OF_ARCHIVE;
}

/** A directory's names in byte order (Go's sort of path names). */
function entries(dir: string): string[] {
  return readdirSync(dir).sort(byteOrder);
}

/** UTF-8 byte order; UTF-16 order is the same unless a surrogate (U+10000 and up) meets U+E000..U+FFFF. */
function byteOrder(a: string, b: string): number {
  if (ASTRAL.test(a) || ASTRAL.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

const ASTRAL = /[\ud800-\udfff]/;

/** lstat, or undefined for a socket: sockets are not archived (containerd), so they count as absent. */
function lstatOrSocket(path: string): BigIntStats | undefined {
  const st = lstatSync(path, { bigint: true });
  return st.isSocket() ? undefined : st;
}

/**
 * Whether two entries of the same type are the same (continuity's sameFile,
 * every xattr compared): mode, owner, device number and xattrs; for
 * non-directories size and mtime too, and, where both mtimes have no
 * nanoseconds (a file system or an archive that truncates them), the
 * contents or link target; symlink targets always.
 */
export function sameEntry(lpath: string, l: BigIntStats, rpath: string, r: BigIntStats): boolean {
  if (l.mode !== r.mode || l.uid !== r.uid || l.gid !== r.gid || l.rdev !== r.rdev) return false;
  if (l.mtimeNs !== r.mtimeNs) return false;
  if (!sameXattrs(xattrsOf(lpath), xattrsOf(rpath))) return false;
  if (l.isDirectory()) return true;
  if (l.size !== r.size) return false;
  if (l.isSymbolicLink()) return readlinkSync(lpath, 'buffer').equals(readlinkSync(rpath, 'buffer'));
  if (l.isFile() && l.mtimeNs % 1_000_000_000n === 0n && l.size > 0n) return sameContents(lpath, rpath);
  return true;
}

function sameXattrs(a: Map<string, Buffer> | undefined, b: Map<string, Buffer> | undefined): boolean {
  if ((a?.size ?? 0) !== (b?.size ?? 0)) return false;
  for (const [k, v] of a ?? []) if (!b?.get(k)?.equals(v)) return false;
  return true;
}

const CHUNK = 1 << 16;

function sameContents(a: string, b: string): boolean {
  const fa = openSync(a, 'r');
  try {
    const fb = openSync(b, 'r');
    try {
      const ba = Buffer.allocUnsafe(CHUNK);
      const bb = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const na = readFull(fa, ba);
        const nb = readFull(fb, bb);
        if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
        if (na < CHUNK) return true;
      }
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}

function readFull(fd: number, buf: Buffer): number {
  let n = 0;
  for (;;) {
    const r = readSync(fd, buf, n, buf.length - n, null);
    if (r === 0) return n;
    n += r;
    if (n === buf.length) return n;
  }
}
