// bpf(2) through koffi: load a BPF_CGROUP_DEVICE program and attach it to a
// cgroup with BPF_F_ALLOW_MULTI, replacing the programs attached before (as
// runc does on update). The attr unions are flat buffers; pointers inside
// them are the addresses of Node buffers, which do not move.
import { closeSync } from 'node:fs';
import { koffi, lazyFn, lastErrno } from '../../linux/ffi.js';
import { SyscallError } from '../../linux/syscall-error.js';

const SYS_BPF = process.arch === 'arm64' ? 280 : 321;
const EAGAIN = 11;

const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_DETACH = 9;
const BPF_PROG_GET_FD_BY_ID = 13;
const BPF_PROG_QUERY = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
const BPF_F_ALLOW_MULTI = 2;

const syscall = lazyFn(() => 'libc.so.6', 'long syscall(long number, ...)');

// The verifier gives up with EAGAIN whenever a signal is pending (tsrund, a
// subreaper, gets SIGCHLD at any time; a profiler sends SIGPROF): the load
// runs with signals blocked (they arrive right after), and is retried as
// libbpf does should one still get through.
const EAGAIN_ATTEMPTS = 5;
const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
const sigmask = lazyFn(() => 'libc.so.6', 'int pthread_sigmask(int how, const uint8_t *set, uint8_t *oldset)');
const ALL_SIGNALS = Buffer.alloc(128, 0xff);

function withSignalsBlocked<T>(fn: () => T): T {
  const old = Buffer.alloc(128);
  if (Number(sigmask(SIG_BLOCK, ALL_SIGNALS, old)) !== 0) return fn();
  try {
    return fn();
  } finally {
    sigmask(SIG_SETMASK, old, null);
  }
}

function bpf(cmd: number, attr: Buffer, what: string, path?: string): number {
  for (let attempt = 1; ; attempt++) {
    let errno = 0;
    const r = withSignalsBlocked(() => {
      const n = Number(syscall(SYS_BPF, 'int', cmd, 'uint8_t *', attr, 'unsigned int', attr.length));
      if (n < 0) errno = lastErrno();
      return n;
    });
    if (r >= 0) return r;
    if (cmd === BPF_PROG_LOAD && errno === EAGAIN && attempt < EAGAIN_ATTEMPTS) continue;
    throw new SyscallError('bpf', errno, path, path ? `${what} on ${path}` : what);
  }
}

const address = (b: Buffer): bigint => koffi().address(b) as bigint;

/** Loads the program; on a verifier error the message carries the verifier's log. */
export function loadDeviceProgram(insns: Buffer, license = 'Apache'): number {
  const lic = Buffer.from(`${license}\0`);
  const attr = Buffer.alloc(72);
  attr.writeUInt32LE(BPF_PROG_TYPE_CGROUP_DEVICE, 0);
  attr.writeUInt32LE(insns.length / 8, 4);
  attr.writeBigUInt64LE(address(insns), 8);
  attr.writeBigUInt64LE(address(lic), 16);
  attr.write('tsrunc_devices', 48, 'latin1'); // prog_name[16], NUL-terminated by the zeroed buffer
  try {
    return bpf(BPF_PROG_LOAD, attr, 'bpf(BPF_PROG_LOAD) of the device filter');
  } catch (e) {
    if ((e as SyscallError).code !== 'EINVAL' && (e as SyscallError).code !== 'EACCES') throw e;
    // Load again with the verifier's log, to say why.
    const log = Buffer.alloc(16384);
    attr.writeUInt32LE(1, 24);
    attr.writeUInt32LE(log.length, 28);
    attr.writeBigUInt64LE(address(log), 32);
    try {
      return bpf(BPF_PROG_LOAD, attr, 'bpf(BPF_PROG_LOAD) of the device filter');
    } catch (e2) {
      const text = log.toString('latin1').replace(/\0.*$/s, '').trim();
      throw new Error(`${(e2 as Error).message}${text ? `; verifier log: ${text.split('\n').slice(-5).join(' | ')}` : ''}`);
    }
  }
}

/** Ids of the BPF_CGROUP_DEVICE programs attached to the cgroup. */
export function attachedDevicePrograms(cgroupFd: number, path?: string): number[] {
  let size = 64;
  for (let tries = 0; tries < 10; tries++) {
    const ids = Buffer.alloc(4 * size);
    const attr = Buffer.alloc(32);
    attr.writeUInt32LE(cgroupFd, 0);
    attr.writeUInt32LE(BPF_CGROUP_DEVICE, 4);
    attr.writeBigUInt64LE(address(ids), 16);
    attr.writeUInt32LE(size, 24);
    try {
      bpf(BPF_PROG_QUERY, attr, 'bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE)', path);
    } catch (e) {
      if ((e as SyscallError).code === 'ENOSPC') {
        size = attr.readUInt32LE(24);
        continue;
      }
      throw e;
    }
    const n = attr.readUInt32LE(24);
    return Array.from({ length: n }, (_, i) => ids.readUInt32LE(4 * i));
  }
  throw new Error(`bpf(BPF_PROG_QUERY) on ${path ?? 'the cgroup'}: the list of device programs kept changing`);
}

function progFdById(id: number): number | undefined {
  const attr = Buffer.alloc(12);
  attr.writeUInt32LE(id, 0);
  try {
    return bpf(BPF_PROG_GET_FD_BY_ID, attr, `bpf(BPF_PROG_GET_FD_BY_ID ${id})`);
  } catch (e) {
    // A program an LSM hides from us, or one that went away: it can only restrict more.
    const code = (e as SyscallError).code;
    if (code === 'EPERM' || code === 'EACCES' || code === 'ENOENT') return undefined;
    throw e;
  }
}

function attachAttr(cgroupFd: number, progFd: number, flags: number): Buffer {
  const attr = Buffer.alloc(20);
  attr.writeUInt32LE(cgroupFd, 0);
  attr.writeUInt32LE(progFd, 4);
  attr.writeUInt32LE(BPF_CGROUP_DEVICE, 8);
  attr.writeUInt32LE(flags, 12);
  return attr;
}

/**
 * Loads the device filter and attaches it to the cgroup (fd of its
 * directory); programs attached before are detached once the new one is in
 * place, so there is no moment without a filter.
 */
export function setDeviceFilter(cgroupFd: number, insns: Buffer, path?: string): void {
  const old = attachedDevicePrograms(cgroupFd, path);
  const prog = loadDeviceProgram(insns);
  try {
    bpf(BPF_PROG_ATTACH, attachAttr(cgroupFd, prog, BPF_F_ALLOW_MULTI), 'bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)', path);
  } finally {
    closeSync(prog); // the cgroup holds the program now
  }
  for (const id of old) {
    const fd = progFdById(id);
    if (fd === undefined) continue;
    try {
      bpf(BPF_PROG_DETACH, attachAttr(cgroupFd, fd, 0), `bpf(BPF_PROG_DETACH) of the old device filter ${id}`, path);
    } finally {
      closeSync(fd);
    }
  }
}
