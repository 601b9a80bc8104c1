// Typed libc calls that Node does not offer. Each wrapper reads errno right
// after the call and throws a SyscallError naming the call and the path.
import { lazyFn, lastErrno } from './ffi.js';
import { SyscallError } from './syscall-error.js';
import { AF_UNIX, SOCK_CLOEXEC, POLLIN, POLLHUP, WNOHANG } from './constants.js';

const LIBC = () => 'libc.so.6';

const c = {
  socketpair: lazyFn(LIBC, 'int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
  waitpid: lazyFn(LIBC, 'int waitpid(int pid, _Out_ int *status, int options)'),
  poll: lazyFn(LIBC, 'int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)'),
  pidfdOpen: lazyFn(LIBC, 'int pidfd_open(int pid, unsigned int flags)'),
  pidfdSendSignal: lazyFn(LIBC, 'int pidfd_send_signal(int pidfd, int sig, void *info, unsigned int flags)'),
  prctl: lazyFn(LIBC, 'int prctl(int option, ...)'),
  mkfifo: lazyFn(LIBC, 'int mkfifo(const char *path, unsigned int mode)'),
  flock: lazyFn(LIBC, 'int flock(int fd, int operation)'),
  ioctl: lazyFn(LIBC, 'int ioctl(int fd, unsigned long request, ...)'),
  fcntl: lazyFn(LIBC, 'int fcntl(int fd, int cmd, ...)'),
  pipe2: lazyFn(LIBC, 'int pipe2(_Out_ int *fds, int flags)'),
  mount: lazyFn(LIBC, 'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
  umount2: lazyFn(LIBC, 'int umount2(const char *target, int flags)'),
};

function check(ret: number | bigint, call: string, path?: string): number {
  const r = Number(ret);
  if (r < 0) throw new SyscallError(call, lastErrno(), path);
  return r;
}

export function socketpair(type: number): [number, number] {
  const sv = new Int32Array(2);
  check(c.socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 'socketpair');
  return [sv[0]!, sv[1]!];
}

export interface WaitResult {
  pid: number;
  /** exit code, or 128 + signal when killed by a signal (as shells report it) */
  code: number;
  signal: number | undefined;
}

/** waitpid(pid, WNOHANG): undefined while the child still runs. */
export function waitpidNoHang(pid: number): WaitResult | undefined {
  const st = new Int32Array(1);
  const r = check(c.waitpid(pid, st, WNOHANG), 'waitpid');
  if (r === 0) return undefined;
  const s = st[0]!;
  const sig = s & 0x7f;
  if (sig === 0) return { pid: r, code: (s >> 8) & 0xff, signal: undefined };
  return { pid: r, code: 128 + sig, signal: sig };
}

/** Blocks the calling thread until a fd is readable or hung up, or the timeout (ms, -1 = none). */
export function pollReadable(fds: number[], timeoutMs: number): number[] {
  const buf = Buffer.alloc(8 * fds.length);
  fds.forEach((fd, i) => {
    buf.writeInt32LE(fd, 8 * i);
    buf.writeInt16LE(POLLIN, 8 * i + 4);
  });
  for (;;) {
    const r = Number(c.poll(buf, fds.length, timeoutMs));
    if (r < 0) {
      const e = lastErrno();
      if (e === 4 /* EINTR */) continue;
      throw new SyscallError('poll', e);
    }
    return fds.filter((_, i) => (buf.readInt16LE(8 * i + 6) & (POLLIN | POLLHUP)) !== 0);
  }
}

export function pidfdOpen(pid: number): number {
  return check(c.pidfdOpen(pid, 0), 'pidfd_open', `pid ${pid}`);
}

export function pidfdSendSignal(pidfd: number, sig: number): void {
  check(c.pidfdSendSignal(pidfd, sig, null, 0), 'pidfd_send_signal');
}

export function setChildSubreaper(): void {
  check(c.prctl(36 /* PR_SET_CHILD_SUBREAPER */, 'unsigned long', 1), 'prctl(PR_SET_CHILD_SUBREAPER)');
}

export function mkfifo(path: string, mode: number): void {
  check(c.mkfifo(path, mode), 'mkfifo', path);
}

/** flock(); returns false when LOCK_NB was given and the lock is held elsewhere. */
export function flock(fd: number, op: number, path?: string): boolean {
  const r = Number(c.flock(fd, op));
  if (r < 0) {
    const e = lastErrno();
    if (e === 11 /* EWOULDBLOCK */) return false;
    throw new SyscallError('flock', e, path);
  }
  return true;
}

export function setWinsize(fd: number, rows: number, cols: number): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(rows, 0);
  ws.writeUInt16LE(cols, 2);
  check(c.ioctl(fd, 0x5414 /* TIOCSWINSZ */, 'uint8_t *', ws), 'ioctl(TIOCSWINSZ)');
}

/** A second fd for the same open file (close-on-exec). */
export function dupCloexec(fd: number): number {
  return check(c.fcntl(fd, 1030 /* F_DUPFD_CLOEXEC */, 'int', 3), 'fcntl(F_DUPFD_CLOEXEC)');
}

/** A close-on-exec pipe: [read end, write end]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check(c.pipe2(fds, 0o2000000 /* O_CLOEXEC */), 'pipe2');
  return [fds[0]!, fds[1]!];
}

export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  check(c.mount(source, target, fstype, flags, data), `mount ${fstype ?? ''} ${source}`.replace(/ +/, ' '), target);
}

/** umount2(2); false when nothing is mounted there (EINVAL) or the path is gone (ENOENT). */
export function umount(target: string, flags = 0): boolean {
  const r = Number(c.umount2(target, flags));
  if (r === 0) return true;
  const e = lastErrno();
  if (e === 22 /* EINVAL */ || e === 2 /* ENOENT */) return false;
  throw new SyscallError('umount2', e, target);
}
