// Loader of libtsrunc.so (native-shims/): the code that runs between clone()
// and execve(). Found next to the package, or at $TSRUNC_LIB.
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lazyFn } from './ffi.js';
import { SyscallError } from './syscall-error.js';

let libPath: string | undefined;

export function nativeLibraryPath(): string {
  if (libPath) return libPath;
  const fromEnv = process.env['TSRUNC_LIB'];
  if (fromEnv) return (libPath = fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'native-shims', 'build', 'libtsrunc.so');
    if (existsSync(candidate)) return (libPath = candidate);
    dir = dirname(dir);
  }
  throw new Error('libtsrunc.so not found: run `make -C native-shims` (or `npm run build`), or set TSRUNC_LIB');
}

const lib = {
  spawn: lazyFn(nativeLibraryPath, 'int tsr_spawn(const uint8_t *plan, uint32_t len, _Out_ int32_t *pid, _Out_ int32_t *pidfd)'),
  planCheck: lazyFn(nativeLibraryPath, 'int tsr_plan_check(const uint8_t *plan, uint32_t len)'),
  opSchema: lazyFn(nativeLibraryPath, 'const char *tsr_op_schema(uint32_t code)'),
  recvFd: lazyFn(nativeLibraryPath, 'int tsr_recv_fd(int sock, _Out_ uint8_t *buf, uint32_t buflen)'),
  unixConnect: lazyFn(nativeLibraryPath, 'int tsr_unix_connect(const char *path)'),
  recvMsg: lazyFn(nativeLibraryPath, 'int tsr_recv_msg(int sock, _Out_ uint8_t *buf, uint32_t buflen, _Out_ int32_t *fd)'),
  sendFd: lazyFn(nativeLibraryPath, 'int tsr_send_fd(int sock, int fd, const uint8_t *data, uint32_t len)'),
  unixSocket: lazyFn(nativeLibraryPath, 'int tsr_unix_socket(const char *path, int type, int listening)'),
  sendFds: lazyFn(nativeLibraryPath, 'int tsr_send_fds(int sock, const int32_t *fds, uint32_t nfds, const uint8_t *data, uint32_t len)'),
  shimLayout: lazyFn(nativeLibraryPath, 'uint32_t tsr_shim_layout(uint32_t which)'),
};

export interface Spawned {
  pid: number;
  pidfd: number;
}

/** clone3() a child that runs the encoded plan. */
export function spawnPlan(plan: Buffer): Spawned {
  const pid = new Int32Array(1);
  const pidfd = new Int32Array(1);
  const r = Number(lib.spawn(plan, plan.length, pid, pidfd));
  if (r < 0) throw new SyscallError('clone3', -r);
  return { pid: pid[0]!, pidfd: pidfd[0]! };
}

/** -1 when the C side accepts the buffer, else the index of the first op it rejects. */
export function checkPlan(plan: Buffer): number {
  return Number(lib.planCheck(plan, plan.length));
}

/** The field schema the C interpreter has for an op code (null if unknown). */
export function opSchema(code: number): string | null {
  return lib.opSchema(code) as string | null;
}

/** Receives one fd passed with SCM_RIGHTS, and the name sent with it. */
export function recvFd(sock: number): { fd: number; name: string } {
  const buf = Buffer.alloc(4096);
  const r = Number(lib.recvFd(sock, buf, buf.length));
  if (r < 0) throw new SyscallError('recvmsg', -r);
  const end = buf.indexOf(0);
  return { fd: r, name: buf.subarray(0, end < 0 ? buf.length : end).toString() };
}

/** sockaddr_un.sun_path holds 108 bytes with the terminating NUL. */
const SUN_PATH_MAX = 107;

/**
 * Calls fn with a name for PATH that fits sun_path: PATH itself, or, when it
 * is longer (a deep --state or temp dir), the same file reached through a
 * descriptor of its directory, /proc/self/fd/N/NAME (node opens it close-on-exec).
 */
function withShortSocketPath<T>(path: string, fn: (p: string) => T): T {
  if (Buffer.byteLength(path) <= SUN_PATH_MAX) return fn(path);
  const dirFd = openSync(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return fn(`/proc/self/fd/${dirFd}/${basename(path)}`);
  } finally {
    closeSync(dirFd);
  }
}

export function unixConnect(path: string): number {
  const r = withShortSocketPath(path, (p) => Number(lib.unixConnect(p)));
  if (r < 0) throw new SyscallError('connect', -r, path);
  return r;
}

/** One message from a unix socket into buf; fd is the one that rode along (SCM_RIGHTS), or -1. */
export function recvMsg(sock: number, buf: Buffer): { bytes: number; fd: number } {
  const fd = new Int32Array(1);
  const r = Number(lib.recvMsg(sock, buf, buf.length, fd));
  if (r < 0) throw new SyscallError('recvmsg', -r);
  return { bytes: r, fd: fd[0]! };
}

/** Sends data on a stream socket with fd riding along (SCM_RIGHTS); data must not be empty. */
export function sendFd(sock: number, fd: number, data: Buffer): void {
  const r = Number(lib.sendFd(sock, fd, data, data.length));
  if (r < 0) throw new SyscallError('sendmsg', -r);
}

/** A unix socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) connected to path, or bound there (mode 0600) and listening. */
export function unixSocket(path: string, type: number, listening: boolean): number {
  const r = withShortSocketPath(path, (p) => Number(lib.unixSocket(p, type, listening ? 1 : 0)));
  if (r < 0) throw new SyscallError(listening ? 'bind' : 'connect', -r, path);
  return r;
}

/** One message with fds riding along (SCM_RIGHTS), for a SOCK_SEQPACKET socket; at most 16 fds. */
export function sendFds(sock: number, fds: readonly number[], data: Buffer): void {
  const r = Number(lib.sendFds(sock, Int32Array.from(fds), fds.length, data, data.length));
  if (r < 0) throw new SyscallError('sendmsg', -r);
}

/** native-shims/shim-proto.h record sizes and offsets (tsr_shim_layout), for tests. */
export function shimLayout(which: number): number {
  return Number(lib.shimLayout(which));
}
