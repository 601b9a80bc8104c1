// A directory as a layer tar, in the order and form containerd's differ
// writes: names relative to the root (directories with a trailing "/"),
// lexical order, hard links after their first name, xattrs as PAX records.
// In 'overlay' mode the directory is an overlay upperdir whose lowerdirs
// are the layers below: a 0:0 character device becomes a `.wh.NAME`
// whiteout, a directory with trusted.overlay.opaque=y gets a
// `.wh..wh..opq` member, and trusted.overlay.* attributes are left out.
import { createReadStream, lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { getxattr, listxattr } from '../linux/fsat.js';
import { opaqueMember, whiteoutMember } from './paths.js';
import { END_OF_ARCHIVE, padding, tarHeader, type TarEntry } from './tar-writer.js';
import type { EntryType, TarTime } from './tar.js';

export type DiffMode = 'overlay' | 'plain';

const OVERLAY_XATTR = 'trusted.overlay.';

/** The tar stream of root, as chunks. */
export async function* tarDirectory(root: string, mode: DiffMode): AsyncGenerator<Buffer> {
  const members = new TreeMembers(root);
  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const names = readdirSync(rel ? join(root, rel) : root).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path), { bigint: true });
      if (st.isSocket()) continue; // as containerd: sockets are not archived
      if (mode === 'overlay' && st.isCharacterDevice() && st.rdev === 0n) {
        yield whiteoutHeader(path, st.mtimeNs);
        continue;
      }
      yield* members.member(path, st);
      if (st.isDirectory()) {
        if (mode === 'overlay' && getxattr(join(root, path), 'trusted.overlay.opaque')?.toString() === 'y') {
          yield tarHeader({ name: opaqueMember(path), type: 'file', mode: 0, mtime: tarTime(st.mtimeNs) });
        }
        yield* walk(path);
      }
    }
  }
  yield* walk('');
  yield END_OF_ARCHIVE;
}

/** The `.wh.NAME` member that deletes path. */
export function whiteoutHeader(path: string, mtimeNs: bigint): Buffer {
  return tarHeader({ name: whiteoutMember(path), type: 'file', mode: 0, mtime: tarTime(mtimeNs) });
}

/**
 * Tar members for entries of one tree, in the order they are asked for: a
 * file whose inode was already written under another name becomes a hard
 * link to that name.
 */
export class TreeMembers {
  private readonly links = new Map<string, string>();

  constructor(private readonly root: string) {}

  /** Header, contents and padding of path (relative to the root) with its lstat st. */
  async *member(path: string, st: BigIntStats): AsyncGenerator<Buffer> {
    const abs = join(this.root, path);
    const type = typeOf(st);
    const e: TarEntry = {
      name: type === 'dir' ? `${path}/` : path,
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: tarTime(st.mtimeNs),
      xattrs: xattrsOf(abs),
    };
    if (type === 'symlink') e.linkname = readlinkSync(abs);
    if (type === 'char' || type === 'block') {
      e.devmajor = Number(((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn));
      e.devminor = Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn));
    }
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        yield tarHeader({ ...e, type: 'link', linkname: first });
        return;
      }
      this.links.set(key, path);
    }
    if (type !== 'file') {
      yield tarHeader(e);
      return;
    }
    const size = Number(st.size);
    yield tarHeader({ ...e, size });
    let written = 0;
    for await (const chunk of createReadStream(abs, { highWaterMark: 1 << 20 })) {
      const b = chunk as Buffer;
      const room = size - written;
      if (room <= 0) break;
      const part = b.length > room ? b.subarray(0, room) : b;
      written += part.length;
      yield part;
    }
    // a file that shrank while it was read: the header promised size bytes
    if (written < size) throw new Error(`${abs} changed while it was archived (${written} of ${size} bytes)`);
    yield padding(size);
  }
}

export function typeOf(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  throw new Error(`cannot archive a file of mode ${st.mode.toString(8)}`);
}

/** path's xattrs but overlayfs' own, or undefined when it has none. */
export function xattrsOf(path: string): Map<string, Buffer> | undefined {
  let out: Map<string, Buffer> | undefined;
  for (const name of listxattr(path)) {
    if (name.startsWith(OVERLAY_XATTR)) continue;
    const v = getxattr(path, name);
    if (v) (out ??= new Map()).set(name, v);
  }
  return out;
}

function tarTime(ns: bigint): TarTime {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}
