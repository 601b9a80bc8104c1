// fd-relative file system calls (the *at family, openat2, xattrs) for code
// that writes inside a directory it must not escape: layer extraction into a
// snapshot. Node has none of these. The raw forms return -errno instead of
// throwing (a layer's common "it exists already" case stays cheap); the
// plain forms throw a SyscallError naming the call and the path.
import { lazyFn, lastErrno } from './ffi.js';
import { SyscallError } from './syscall-error.js';
import { O_CLOEXEC } from './constants.js';

const LIBC = () => 'libc.so.6';

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;

export const O_WRONLY = 0o1;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_NOFOLLOW = 0o400000;
export { O_DIRECTORY, O_PATH, O_CLOEXEC } from './constants.js';

/** openat2(2) resolve flags */
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export const EEXIST = 17;
export const ENOENT = 2;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const ELOOP = 40;
export const EAGAIN = 11;
export const ENOTEMPTY = 39;
export const ENODATA = 61;
export const EOPNOTSUPP = 95;
export const EXDEV = 18;

const SYS_openat2 = process.arch === 'x64' || process.arch === 'arm64' ? 437 : -1;

const c = {
  openat2: lazyFn(LIBC, 'long syscall(long nr, int dirfd, const char *path, const uint8_t *how, size_t size)'),
  openat: lazyFn(LIBC, 'int openat(int dirfd, const char *path, int flags, unsigned int mode)'),
  mkdirat: lazyFn(LIBC, 'int mkdirat(int dirfd, const char *path, unsigned int mode)'),
  mknodat: lazyFn(LIBC, 'int mknodat(int dirfd, const char *path, unsigned int mode, uint64_t dev)'),
  symlinkat: lazyFn(LIBC, 'int symlinkat(const char *target, int dirfd, const char *path)'),
  linkat: lazyFn(LIBC, 'int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)'),
  unlinkat: lazyFn(LIBC, 'int unlinkat(int dirfd, const char *path, int flags)'),
  fchownat: lazyFn(LIBC, 'int fchownat(int dirfd, const char *path, unsigned int uid, unsigned int gid, int flags)'),
  fchmodat: lazyFn(LIBC, 'int fchmodat(int dirfd, const char *path, unsigned int mode, int flags)'),
  fchown: lazyFn(LIBC, 'int fchown(int fd, unsigned int uid, unsigned int gid)'),
  fchmod: lazyFn(LIBC, 'int fchmod(int fd, unsigned int mode)'),
  utimensat: lazyFn(LIBC, 'int utimensat(int dirfd, const char *path, const int64_t *times, int flags)'),
  futimens: lazyFn(LIBC, 'int futimens(int fd, const int64_t *times)'),
  fsetxattr: lazyFn(LIBC, 'int fsetxattr(int fd, const char *name, const uint8_t *value, size_t size, int flags)'),
  lsetxattr: lazyFn(LIBC, 'int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)'),
  llistxattr: lazyFn(LIBC, 'long llistxattr(const char *path, _Out_ uint8_t *list, size_t size)'),
  lgetxattr: lazyFn(LIBC, 'long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)'),
  flistxattr: lazyFn(LIBC, 'long flistxattr(int fd, _Out_ uint8_t *list, size_t size)'),
  fgetxattr: lazyFn(LIBC, 'long fgetxattr(int fd, const char *name, _Out_ uint8_t *value, size_t size)'),
  close: lazyFn(LIBC, 'int close(int fd)'),
};

const raw = (r: number | bigint): number => {
  const n = Number(r);
  return n < 0 ? -lastErrno() : n;
};

function check(r: number, call: string, path?: string): number {
  if (r < 0) throw new SyscallError(call, -r, path);
  return r;
}

const how = Buffer.alloc(24);

/** openat2(2): -errno on failure. Retries the kernel's EAGAIN (a rename raced the lookup). */
export function openat2Raw(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  if (SYS_openat2 < 0) return -38; /* ENOSYS */
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  for (let i = 0; ; i++) {
    const r = raw(c.openat2(SYS_openat2, dirfd, path, how, 24));
    if (r !== -EAGAIN || i >= 16) return r;
  }
}

export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number, what?: string): number {
  return check(openat2Raw(dirfd, path, flags, mode, resolve), 'openat2', what ?? path);
}

export const openatRaw = (dirfd: number, name: string, flags: number, mode = 0): number => raw(c.openat(dirfd, name, flags | O_CLOEXEC, mode));
export const mkdiratRaw = (dirfd: number, name: string, mode: number): number => raw(c.mkdirat(dirfd, name, mode));
export const mknodatRaw = (dirfd: number, name: string, mode: number, dev: bigint): number => raw(c.mknodat(dirfd, name, mode, dev));
export const symlinkatRaw = (target: string, dirfd: number, name: string): number => raw(c.symlinkat(target, dirfd, name));
export const linkatRaw = (olddirfd: number, oldname: string, newdirfd: number, newname: string, flags = 0): number =>
  raw(c.linkat(olddirfd, oldname, newdirfd, newname, flags));
export const unlinkatRaw = (dirfd: number, name: string, flags = 0): number => raw(c.unlinkat(dirfd, name, flags));
export const fchownatRaw = (dirfd: number, name: string, uid: number, gid: number, flags: number): number => raw(c.fchownat(dirfd, name, uid, gid, flags));
export const fchmodatRaw = (dirfd: number, name: string, mode: number): number => raw(c.fchmodat(dirfd, name, mode, 0));
export const fchownRaw = (fd: number, uid: number, gid: number): number => raw(c.fchown(fd, uid, gid));
export const fchmodRaw = (fd: number, mode: number): number => raw(c.fchmod(fd, mode));

const times = new BigInt64Array(4);

/** utimensat(2) with nanosecond times; a null name sets dirfd's own times (futimens). */
export function utimensatRaw(dirfd: number, name: string | null, atime: Timespec, mtime: Timespec, flags: number): number {
  times[0] = BigInt(atime.sec);
  times[1] = BigInt(atime.nsec);
  times[2] = BigInt(mtime.sec);
  times[3] = BigInt(mtime.nsec);
  return raw(name === null ? c.futimens(dirfd, times) : c.utimensat(dirfd, name, times, flags));
}

export interface Timespec {
  sec: number;
  nsec: number;
}

export const fsetxattrRaw = (fd: number, name: string, value: Uint8Array): number => raw(c.fsetxattr(fd, name, value, value.length, 0));
export const lsetxattrRaw = (path: string, name: string, value: Uint8Array): number => raw(c.lsetxattr(path, name, value, value.length, 0));

type XattrTarget = string | number;

function listRaw(t: XattrTarget, buf: Buffer): number {
  return raw(typeof t === 'number' ? c.flistxattr(t, buf, buf.length) : c.llistxattr(t, buf, buf.length));
}

function getRaw(t: XattrTarget, name: string, buf: Buffer): number {
  return raw(typeof t === 'number' ? c.fgetxattr(t, name, buf, buf.length) : c.lgetxattr(t, name, buf, buf.length));
}

/** The names of the extended attributes of an fd, or of a path itself (not a symlink's target). */
export function listxattr(target: XattrTarget): string[] {
  for (let size = 1024; ; size *= 4) {
    const buf = Buffer.alloc(size);
    const r = listRaw(target, buf);
    if (r === -34 /* ERANGE */) continue;
    if (r === -EOPNOTSUPP) return [];
    check(r, typeof target === 'number' ? 'flistxattr' : 'llistxattr', String(target));
    return buf
      .subarray(0, r)
      .toString('utf8')
      .split('\0')
      .filter((s) => s !== '');
  }
}

/** The value of one extended attribute of an fd or a path itself; undefined when absent. */
export function getxattr(target: XattrTarget, name: string): Buffer | undefined {
  for (let size = 256; ; size *= 4) {
    const buf = Buffer.alloc(size);
    const r = getRaw(target, name, buf);
    if (r === -34 /* ERANGE */) continue;
    if (r === -ENODATA) return undefined;
    check(r, typeof target === 'number' ? 'fgetxattr' : 'lgetxattr', `${String(target)} ${name}`);
    return buf.subarray(0, r);
  }
}

export function closeFd(fd: number): void {
  c.close(fd);
}

/** Throws the SyscallError of a raw result; returns it when it is not an error. */
export function checkAt(r: number, call: string, path?: string): number {
  return check(r, call, path);
}
