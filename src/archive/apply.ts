// Writes a layer's tar entries into a directory without ever leaving it.
// Every lookup starts from a descriptor of the root and goes through
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): `..`,
// absolute names, absolute or climbing symlinks all resolve inside the root.
// The entry itself is then made with the *at call relative to its parent's
// descriptor and a single-component name, never following a symlink there
// (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, O_EXCL after removing what was in the
// way). Hard link targets resolve inside the root the same way.
//
// containerd's rules (archive/tar.go applyNaive) are kept: what exists is
// replaced unless a directory meets a directory (then merged); missing
// parents are created 0755, with the attributes of the same directory in the
// layers below when there is one; owner, xattrs, then mode (chown clears
// setuid) and times; directories' times last. Whiteouts either become
// overlay whiteouts (mode 'overlay', the root is an overlay upperdir: a 0:0
// character device, trusted.overlay.opaque=y) or delete (mode 'remove').
import { fstatSync, readdirSync, writeSync } from 'node:fs';
import { makedev, S_IFBLK, S_IFCHR, S_IFIFO } from '../linux/constants.js';
import * as at from '../linux/fsat.js';
import { SyscallError } from '../linux/syscall-error.js';
import { splitMemberPath, whiteoutOf } from './paths.js';
import type { TarHeader, TarSink, TarTime } from './tar.js';

export type WhiteoutMode = 'overlay' | 'remove';

export interface ApplyTarget {
  /** the directory the layer is applied onto */
  root: string;
  /** 'overlay': root is an overlay upperdir and whiteouts become overlay whiteouts; 'remove': whiteouts delete */
  whiteouts: WhiteoutMode;
  /** the layers below, top-most first: parents created implicitly take their attributes from these */
  parents?: readonly string[];
  /**
   * The layers below are not written yet (layers unpacked side by side):
   * parents created implicitly are listed in stats.implicitParents, for
   * inheritParentAttributes once they are.
   */
  deferParentAttributes?: boolean;
}

export interface ApplyStats {
  entries: number;
  /** xattrs the file system refused (EPERM on security.*, EOPNOTSUPP), skipped as containerd does */
  skippedXattrs: string[];
  /** with deferParentAttributes: the directories made implicitly that are still there, parents first */
  implicitParents?: string[];
}

const RESOLVE = at.RESOLVE_IN_ROOT | at.RESOLVE_NO_MAGICLINKS | at.RESOLVE_NO_XDEV;
const DIR_PATH = at.O_PATH | at.O_DIRECTORY;
const O_RDONLY = 0;
const MAX_CACHED = 128;

interface OpenFile {
  fd: number;
  h: TarHeader;
}

interface DirTimes {
  parent: string;
  base: string;
  atime: TarTime;
  mtime: TarTime;
}

const OVERLAY_OPAQUE = 'trusted.overlay.opaque';
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

export class LayerWriter implements TarSink {
  readonly stats: ApplyStats = { entries: 0, skippedXattrs: [] };
  private readonly rootfd: number;
  private readonly dirfds = new Map<string, number>();
  private lowerfds: number[] | undefined;
  private file: OpenFile | undefined;
  private current: TarHeader | undefined;
  private readonly dirs: DirTimes[] = [];
  /** remove mode: paths this layer wrote, and their ancestors (opaque dirs keep them) */
  private readonly unpacked = new Set<string>();
  /** with deferParentAttributes: implicit parents not (yet) given by an entry of their own */
  private readonly implicit = new Set<string>();
  private closed = false;

  constructor(private readonly target: ApplyTarget) {
    this.rootfd = at.openat2(at.AT_FDCWD, target.root, DIR_PATH, 0, 0);
  }

  entry(h: TarHeader): void {
    this.current = h;
    this.stats.entries++;
    try {
      this.apply(h);
    } catch (e) {
      throw this.wrap(e);
    }
  }

  data(chunk: Buffer): void {
    const f = this.file;
    if (!f) return;
    try {
      let off = 0;
      while (off < chunk.length) off += writeSync(f.fd, chunk, off, chunk.length - off);
    } catch (e) {
      throw this.wrap(e);
    }
  }

  endEntry(): void {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    try {
      this.ownerXattrsMode(f.fd, null, f.h, 'fd');
      this.times(f.fd, null, f.h.atime, f.h.mtime, 0);
    } catch (e) {
      throw this.wrap(e);
    } finally {
      at.closeFd(f.fd);
    }
  }

  /** After the last entry: directories' times, then every descriptor closed. */
  finish(): void {
    if (this.target.deferParentAttributes) this.stats.implicitParents = [...this.implicit];
    try {
      for (const d of this.dirs) {
        const pfd = this.lookupDir(d.parent);
        if (pfd < 0) continue;
        const r = at.utimensatRaw(pfd, d.base, d.atime, d.mtime, at.AT_SYMLINK_NOFOLLOW);
        if (r < 0 && r !== -at.ENOENT) throw new SyscallError('utimensat', -r, d.parent ? `${d.parent}/${d.base}` : d.base);
      }
    } finally {
      this.close();
    }
  }

  /** Closes every descriptor (also after a failure). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.file) at.closeFd(this.file.fd);
    this.file = undefined;
    this.dropDirCache();
    for (const fd of this.lowerfds ?? []) if (fd >= 0) at.closeFd(fd);
    at.closeFd(this.rootfd);
  }

  private wrap(e: unknown): Error {
    const name = this.current?.name ?? '?';
    const msg = e instanceof Error ? e.message : String(e);
    return Object.assign(new Error(`layer member ${JSON.stringify(name)}: ${msg}`, { cause: e }), {
      code: (e as NodeJS.ErrnoException)?.code,
    });
  }

  private apply(h: TarHeader): void {
    const p = splitMemberPath(h.name);
    if (!p) return; // the root itself: ignored, as containerd does
    const wh = whiteoutOf(p.base);
    if (wh?.kind === 'meta') return;
    const pfd = this.dir(p.parent);
    if (this.target.whiteouts === 'remove') this.markUnpacked(p.path);
    if (wh?.kind === 'opaque') {
      if (this.target.whiteouts === 'overlay') this.setOpaque(pfd, p.parent);
      else this.clearOpaque(pfd, p.parent);
      return;
    }
    if (wh?.kind === 'whiteout') {
      if (this.target.whiteouts === 'overlay') {
        this.removeIfPresent(pfd, p.parent, wh.name);
        this.checkRaw(at.mknodatRaw(pfd, wh.name, S_IFCHR, 0n), 'mknodat', p.parent, wh.name);
        this.checkRaw(at.fchownatRaw(pfd, wh.name, h.uid, h.gid, at.AT_SYMLINK_NOFOLLOW), 'fchownat', p.parent, wh.name);
      } else {
        this.removeIfPresent(pfd, p.parent, wh.name);
      }
      return;
    }
    this.create(pfd, p.parent, p.base, h);
  }

  private create(pfd: number, parent: string, base: string, h: TarHeader): void {
    switch (h.type) {
      case 'dir': {
        let r = at.mkdiratRaw(pfd, base, 0o700);
        if (r === -at.EEXIST) {
          if (this.isDir(pfd, base)) r = 0;
          else {
            this.removeAt(pfd, parent, base);
            r = at.mkdiratRaw(pfd, base, 0o700);
          }
        }
        this.checkRaw(r, 'mkdirat', parent, base);
        this.implicit.delete(parent ? `${parent}/${base}` : base);
        const fd = this.checkRaw(at.openatRaw(pfd, base, O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW), 'openat', parent, base);
        try {
          this.ownerXattrsMode(fd, null, h, 'fd');
        } finally {
          at.closeFd(fd);
        }
        this.dirs.push({ parent, base, atime: latest(h.atime, h.mtime), mtime: h.mtime });
        return;
      }
      case 'file': {
        const flags = at.O_WRONLY | at.O_CREAT | at.O_EXCL | at.O_NOFOLLOW;
        let fd = at.openatRaw(pfd, base, flags, 0o600);
        if (fd === -at.EEXIST) {
          this.removeAt(pfd, parent, base);
          fd = at.openatRaw(pfd, base, flags, 0o600);
        }
        this.checkRaw(fd, 'openat', parent, base);
        this.file = { fd, h };
        return;
      }
      case 'symlink':
        this.retryExisting(pfd, parent, base, () => at.symlinkatRaw(h.linkname, pfd, base), 'symlinkat');
        this.ownerXattrsMode(pfd, base, h, 'symlink');
        this.times(pfd, base, h.atime, h.mtime, at.AT_SYMLINK_NOFOLLOW);
        return;
      case 'link': {
        const t = splitMemberPath(h.linkname);
        if (!t) throw new Error(`hard link to ${JSON.stringify(h.linkname)}: the target is the layer's root`);
        const tfd = this.lookupDir(t.parent);
        if (tfd < 0) throw new Error(`hard link to ${JSON.stringify(h.linkname)}: no such directory ${JSON.stringify(t.parent)} in the layer`);
        this.retryExisting(pfd, parent, base, () => at.linkatRaw(tfd, t.base, pfd, base, 0), 'linkat');
        this.ownerXattrsMode(pfd, base, h, 'link');
        this.times(pfd, base, h.atime, h.mtime, at.AT_SYMLINK_NOFOLLOW);
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
        const dev = h.type === 'fifo' ? 0n : makedev(h.devmajor, h.devminor);
        this.retryExisting(pfd, parent, base, () => at.mknodatRaw(pfd, base, kind | (h.mode & 0o777), dev), 'mknodat');
        this.ownerXattrsMode(pfd, base, h, 'node');
        this.times(pfd, base, h.atime, h.mtime, at.AT_SYMLINK_NOFOLLOW);
        return;
      }
    }
  }

  /** make() once; if something is in the way, remove it and make() again. */
  private retryExisting(pfd: number, parent: string, base: string, make: () => number, call: string): void {
    let r = make();
    if (r === -at.EEXIST) {
      this.removeAt(pfd, parent, base);
      r = make();
    }
    this.checkRaw(r, call, parent, base);
  }

  /**
   * Owner, xattrs, then mode (chown clears setuid/setgid), as containerd:
   * on an open fd (files, directories), or by name in pfd (hard links get
   * the header's mode too, unless they name a symlink: chmod would follow it;
   * symlinks have no mode).
   */
  private ownerXattrsMode(fd: number, base: string | null, h: TarHeader, how: 'fd' | 'symlink' | 'link' | 'node'): void {
    if (base === null) this.checkRaw(at.fchownRaw(fd, h.uid, h.gid), 'fchown', '', h.name);
    else this.checkRaw(at.fchownatRaw(fd, base, h.uid, h.gid, at.AT_SYMLINK_NOFOLLOW), 'fchownat', '', h.name);
    if (h.xattrs) {
      for (const [name, value] of h.xattrs) {
        // the overlay's own attributes (opaque, redirect, metacopy, origin)
        // would steer the overlay mount: only whiteout members may make them
        if (name.startsWith(OVERLAY_XATTR_PREFIX)) {
          this.stats.skippedXattrs.push(`${h.name}: ${name}`);
          continue;
        }
        const r = base === null ? at.fsetxattrRaw(fd, name, value) : at.lsetxattrRaw(`/proc/self/fd/${fd}/${base}`, name, value);
        if (r >= 0) continue;
        if (r === -at.EOPNOTSUPP || (r === -1 /* EPERM */ && name.startsWith('security.'))) {
          this.stats.skippedXattrs.push(`${h.name}: ${name}`);
          continue;
        }
        throw new SyscallError('setxattr', -r, `${h.name} ${name}`);
      }
    }
    if (how === 'fd') this.checkRaw(at.fchmodRaw(fd, h.mode), 'fchmod', '', h.name);
    else if (how === 'node' || (how === 'link' && !this.isSymlink(fd, base!))) this.checkRaw(at.fchmodatRaw(fd, base!, h.mode), 'fchmodat', '', h.name);
  }

  /** Whether pfd/base is itself a symlink (a hard link may name one: chmod would follow it). */
  private isSymlink(pfd: number, base: string): boolean {
    const fd = this.checkRaw(at.openatRaw(pfd, base, at.O_PATH | at.O_NOFOLLOW), 'openat', '', base);
    try {
      return fstatSync(fd).isSymbolicLink();
    } finally {
      at.closeFd(fd);
    }
  }

  private times(fd: number, base: string | null, atime: TarTime | undefined, mtime: TarTime, flags: number): void {
    const r = at.utimensatRaw(fd, base, latest(atime, mtime), mtime, flags);
    if (r < 0) throw new SyscallError('utimensat', -r, this.current?.name);
  }

  private checkRaw(r: number, call: string, parent: string, base: string): number {
    if (r < 0) throw new SyscallError(call, -r, parent ? `${parent}/${base}` : base);
    return r;
  }

  /** The descriptor of directory `path` (relative to the root), creating missing parents. */
  private dir(path: string): number {
    const fd = this.lookupDir(path);
    if (fd >= 0) return fd;
    if (fd !== -at.ENOENT) throw new SyscallError('openat2', -fd, path);
    this.mkparent(path);
    const again = this.lookupDir(path);
    if (again < 0) throw new SyscallError('openat2', -again, path, `parent directory ${JSON.stringify(path)} (not a directory, or a symlink to one that is not in the layer)`);
    return again;
  }

  /** A cached O_PATH descriptor of directory path, or -errno. */
  private lookupDir(path: string): number {
    if (path === '') return this.rootfd;
    const cached = this.dirfds.get(path);
    if (cached !== undefined) return cached;
    const fd = at.openat2Raw(this.rootfd, path, DIR_PATH, 0, RESOLVE);
    if (fd < 0) return fd;
    if (this.dirfds.size >= MAX_CACHED) this.dropDirCache();
    this.dirfds.set(path, fd);
    return fd;
  }

  private dropDirCache(): void {
    for (const fd of this.dirfds.values()) at.closeFd(fd);
    this.dirfds.clear();
  }

  /** containerd's mkparent: each missing directory 0755, attributes from the layers below when found there. */
  private mkparent(path: string): void {
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      const fd = this.lookupDir(sub);
      if (fd >= 0) continue;
      if (fd !== -at.ENOENT) throw new SyscallError('openat2', -fd, sub);
      const pfd = this.lookupDir(parts.slice(0, i - 1).join('/'));
      if (pfd < 0) throw new SyscallError('openat2', -pfd, parts.slice(0, i - 1).join('/'));
      const base = parts[i - 1]!;
      const r = at.mkdiratRaw(pfd, base, 0o755);
      if (r < 0 && r !== -at.EEXIST) throw new SyscallError('mkdirat', -r, sub);
      if (r !== 0) continue;
      if (this.target.deferParentAttributes) this.implicit.add(sub);
      else {
        const parents = this.target.parents ?? [];
        if (parents.length === 0) continue;
        this.lowerfds ??= parents.map((p) => at.openat2Raw(at.AT_FDCWD, p, DIR_PATH, 0, 0));
        copyFromLower(this.lowerfds, pfd, sub, base);
      }
    }
  }

  private isDir(pfd: number, base: string): boolean {
    const fd = at.openatRaw(pfd, base, at.O_PATH | at.O_DIRECTORY | at.O_NOFOLLOW);
    if (fd < 0) return false;
    at.closeFd(fd);
    return true;
  }

  private removeIfPresent(pfd: number, parent: string, name: string): void {
    const r = at.unlinkatRaw(pfd, name, 0);
    if (r === 0) this.forget(parent ? `${parent}/${name}` : name);
    if (r === 0 || r === -at.ENOENT) return;
    if (r === -at.EISDIR) {
      this.removeTree(pfd, name);
      return;
    }
    throw new SyscallError('unlinkat', -r, name);
  }

  /** Removes what is at pfd/base (a whole tree for a directory); the cache of directories is dropped. */
  private removeAt(pfd: number, parent: string, base: string): void {
    const r = at.unlinkatRaw(pfd, base, 0);
    if (r === 0) {
      // a symlink to a directory may be cached under its own name
      this.forget(parent ? `${parent}/${base}` : base);
      return;
    }
    if (r !== -at.EISDIR) throw new SyscallError('unlinkat', -r, parent ? `${parent}/${base}` : base);
    this.removeTree(pfd, base);
  }

  /** Drops the cached descriptors of path and of everything resolved through it. */
  private forget(path: string): void {
    for (const p of this.implicit) if (p === path || p.startsWith(`${path}/`)) this.implicit.delete(p);
    for (const [k, fd] of this.dirfds) {
      if (k !== path && !k.startsWith(`${path}/`)) continue;
      at.closeFd(fd);
      this.dirfds.delete(k);
    }
  }

  private removeTree(pfd: number, base: string): void {
    // cached descriptors may point into what goes: keep only pfd, still in use
    for (const [k, fd] of this.dirfds) {
      if (fd === pfd) continue;
      at.closeFd(fd);
      this.dirfds.delete(k);
    }
    removeTreeAt(pfd, base);
  }

  private setOpaque(pfd: number, parent: string): void {
    const fd = this.checkRaw(at.openatRaw(pfd, '.', O_RDONLY | at.O_DIRECTORY), 'openat', parent, '.');
    try {
      const r = at.fsetxattrRaw(fd, OVERLAY_OPAQUE, Buffer.from('y'));
      if (r < 0) throw new SyscallError('fsetxattr', -r, `${parent || '.'} ${OVERLAY_OPAQUE}`);
    } finally {
      at.closeFd(fd);
    }
  }

  /** remove mode: everything in the directory that this layer did not write goes. */
  private clearOpaque(pfd: number, parent: string): void {
    const fd = this.checkRaw(at.openatRaw(pfd, '.', O_RDONLY | at.O_DIRECTORY), 'openat', parent, '.');
    try {
      this.clearBelow(fd, parent);
    } finally {
      at.closeFd(fd);
    }
  }

  private clearBelow(fd: number, dir: string): void {
    for (const e of readdirSync(`/proc/self/fd/${fd}`, { withFileTypes: true })) {
      const path = dir ? `${dir}/${e.name}` : e.name;
      if (!this.unpacked.has(path)) {
        this.removeTree(fd, e.name);
        continue;
      }
      if (e.isDirectory()) {
        const sub = at.openatRaw(fd, e.name, O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW);
        if (sub < 0) continue;
        try {
          this.clearBelow(sub, path);
        } finally {
          at.closeFd(sub);
        }
      }
    }
  }

  private markUnpacked(path: string): void {
    for (let p = path; p && !this.unpacked.has(p); p = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '') this.unpacked.add(p);
  }
}

/**
 * containerd's mkparent rule, after the fact (layers unpacked side by side):
 * each directory that the layer at root made implicitly takes owner,
 * xattrs, mode and times from the same directory in the nearest layer below
 * that has one (parents: top-most first), now that those are written.
 */
export function inheritParentAttributes(root: string, paths: readonly string[], parents: readonly string[]): void {
  if (paths.length === 0 || parents.length === 0) return;
  const rootfd = at.openat2(at.AT_FDCWD, root, DIR_PATH, 0, 0);
  const lowerfds = parents.map((p) => at.openat2Raw(at.AT_FDCWD, p, DIR_PATH, 0, 0));
  try {
    for (const path of paths) {
      const slash = path.lastIndexOf('/');
      const pfd = slash < 0 ? rootfd : at.openat2Raw(rootfd, path.slice(0, slash), DIR_PATH, 0, RESOLVE);
      if (pfd < 0) throw new SyscallError('openat2', -pfd, path.slice(0, slash));
      try {
        copyFromLower(lowerfds, pfd, path, path.slice(slash + 1));
      } finally {
        if (pfd !== rootfd) at.closeFd(pfd);
      }
    }
  } finally {
    for (const fd of lowerfds) if (fd >= 0) at.closeFd(fd);
    at.closeFd(rootfd);
  }
}

/** pfd/base (the directory path in the layer) takes the attributes of path in the first lower layer that has it. */
function copyFromLower(lowerfds: readonly number[], pfd: number, path: string, base: string): void {
  const check = (r: number, call: string): number => {
    if (r < 0) throw new SyscallError(call, -r, path);
    return r;
  };
  for (const lfd of lowerfds) {
    if (lfd < 0) continue;
    const src = at.openat2Raw(lfd, path, O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW, 0, RESOLVE);
    if (src === -at.ENOENT) continue;
    if (src < 0) return; // replaced below (not a directory): attributes not copied
    const dst = check(at.openatRaw(pfd, base, O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW), 'openat');
    try {
      const st = fstatSync(src, { bigint: true });
      check(at.fchownRaw(dst, Number(st.uid), Number(st.gid)), 'fchown');
      for (const name of at.listxattr(src)) {
        if (name.startsWith('trusted.overlay.')) continue;
        const v = at.getxattr(src, name);
        if (v) at.fsetxattrRaw(dst, name, v);
      }
      check(at.fchmodRaw(dst, Number(st.mode & 0o7777n)), 'fchmod');
      const ts = (ns: bigint): TarTime => ({ sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) });
      check(at.utimensatRaw(dst, null, latest(ts(st.atimeNs), ts(st.mtimeNs)), ts(st.mtimeNs), 0), 'utimensat');
    } finally {
      at.closeFd(dst);
      at.closeFd(src);
    }
    return;
  }
}

/** Removes pfd/base: a file, or a directory and everything in it, never following symlinks. */
export function removeTreeAt(pfd: number, base: string): void {
  const r = at.unlinkatRaw(pfd, base, 0);
  if (r === 0 || r === -at.ENOENT) return;
  if (r !== -at.EISDIR) throw new SyscallError('unlinkat', -r, base);
  const fd = at.openatRaw(pfd, base, O_RDONLY | at.O_DIRECTORY | at.O_NOFOLLOW);
  if (fd < 0) throw new SyscallError('openat', -fd, base);
  try {
    for (const e of readdirSync(`/proc/self/fd/${fd}`, { withFileTypes: true })) {
      if (e.isDirectory()) removeTreeAt(fd, e.name);
      else {
        const u = at.unlinkatRaw(fd, e.name, 0);
        if (u < 0 && u !== -at.ENOENT) throw new SyscallError('unlinkat', -u, `${base}/${e.name}`);
      }
    }
  } finally {
    at.closeFd(fd);
  }
  const d = at.unlinkatRaw(pfd, base, at.AT_REMOVEDIR);
  if (d < 0 && d !== -at.ENOENT) throw new SyscallError('unlinkat', -d, base);
}

function latest(atime: TarTime | undefined, mtime: TarTime): TarTime {
  if (!atime) return mtime;
  return atime.sec > mtime.sec || (atime.sec === mtime.sec && atime.nsec > mtime.nsec) ? atime : mtime;
}
