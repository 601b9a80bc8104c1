// libseccomp through koffi, bound on first use: only a container with
// linux.seccomp loads the library (runc and crun use it too; it is on every
// distribution as libseccomp.so.2). The filter is built and exported as BPF
// here, in the parent; the child only hands the program to seccomp(2).
import { fstatSync, readSync, closeSync } from 'node:fs';
import { koffi, lazyFn, lastErrno } from '../../linux/ffi.js';
import { SyscallError } from '../../linux/syscall-error.js';

const LIBSECCOMP = () => 'libseccomp.so.2';
const LIBC = () => 'libc.so.6';

const fn = {
  init: lazyFn(LIBSECCOMP, 'void *seccomp_init(uint32_t def_action)'),
  release: lazyFn(LIBSECCOMP, 'void seccomp_release(void *ctx)'),
  archAdd: lazyFn(LIBSECCOMP, 'int seccomp_arch_add(void *ctx, uint32_t arch_token)'),
  archResolveName: lazyFn(LIBSECCOMP, 'uint32_t seccomp_arch_resolve_name(const char *arch_name)'),
  archNative: lazyFn(LIBSECCOMP, 'uint32_t seccomp_arch_native(void)'),
  attrSet: lazyFn(LIBSECCOMP, 'int seccomp_attr_set(void *ctx, int attr, uint32_t value)'),
  resolveName: lazyFn(LIBSECCOMP, 'int seccomp_syscall_resolve_name(const char *name)'),
  resolveNameArch: lazyFn(LIBSECCOMP, 'int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name)'),
  // struct scmp_arg_cmp[] passed as bytes: see encodeConditions.
  ruleAddArray: lazyFn(LIBSECCOMP, 'int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const uint8_t *arg_array)'),
  exportBpf: lazyFn(LIBSECCOMP, 'int seccomp_export_bpf(void *ctx, int fd)'),
  version: lazyFn(LIBSECCOMP, 'const uint32_t *seccomp_version(void)'),
  memfdCreate: lazyFn(LIBC, 'int memfd_create(const char *name, unsigned int flags)'),
};

/** enum scmp_filter_attr */
export const ATTR = { CTL_NNP: 3, CTL_LOG: 6, CTL_SSB: 7, CTL_OPTIMIZE: 8 } as const;

/** __NR_SCMP_ERROR: a name libseccomp knows on no architecture. */
export const NR_UNKNOWN = -1;

const MFD_CLOEXEC = 1;
/** sizeof(struct scmp_arg_cmp): unsigned arg, enum op, u64 datum_a, u64 datum_b */
const ARG_CMP_SIZE = 24;

/** A libseccomp call failed: it returns -errno. */
export class LibseccompError extends SyscallError {}

let loaded = false;

/** Calls one libseccomp function, turning a failure to load the library into a clear error. */
function call<T>(f: () => T): T {
  if (loaded) return f();
  try {
    const r = f();
    loaded = true;
    return r;
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    if (/libseccomp|load|shared library/i.test(msg)) {
      throw new Error(`seccomp: cannot load libseccomp.so.2 (install libseccomp2): ${msg}`, { cause: e });
    }
    throw e;
  }
}

/** "2.5.4", for messages that depend on what this libseccomp knows. */
export function libseccompVersion(): string {
  const v = call(() => fn.version()) as unknown;
  if (!v) return 'unknown';
  // struct scmp_version { unsigned int major, minor, micro; }
  return Array.from(koffi().decode(v, 'uint32_t', 3) as ArrayLike<number>).join('.');
}

export function archToken(libseccompName: string): number {
  return Number(call(() => fn.archResolveName(libseccompName)));
}

export function nativeArch(): number {
  return Number(call(() => fn.archNative()));
}

/** The syscall number of a name on the native architecture (negative: a pseudo number for another arch; NR_UNKNOWN: unknown). */
export function syscallNumber(name: string): number {
  return Number(call(() => fn.resolveName(name)));
}

/** The syscall number of a name on one architecture (negative when it has none). */
export function syscallNumberOn(arch: number, name: string): number {
  return Number(call(() => fn.resolveNameArch(arch, name)));
}

export interface ArgCmp {
  index: number;
  op: number;
  a: number;
  b: number;
}

function encodeConditions(conds: readonly ArgCmp[]): Buffer | null {
  if (conds.length === 0) return null;
  const buf = Buffer.alloc(ARG_CMP_SIZE * conds.length);
  conds.forEach((c, i) => {
    const o = i * ARG_CMP_SIZE;
    buf.writeUInt32LE(c.index, o);
    buf.writeUInt32LE(c.op, o + 4);
    buf.writeBigUInt64LE(BigInt(c.a), o + 8);
    buf.writeBigUInt64LE(BigInt(c.b), o + 16);
  });
  return buf;
}

/** One libseccomp filter context; release() it in a finally. */
export class Filter {
  private ctx: unknown;

  constructor(defaultAction: number) {
    const ctx = call(() => fn.init(defaultAction >>> 0));
    if (!ctx) throw new Error(`seccomp: seccomp_init(0x${(defaultAction >>> 0).toString(16)}) failed`);
    this.ctx = ctx;
  }

  /** 0, or -errno (-EEXIST when the architecture is already there). */
  addArch(token: number): number {
    return Number(fn.archAdd(this.ctx, token >>> 0));
  }

  /** 0, or -errno (e.g. -EOPNOTSUPP when the kernel lacks the matching filter flag). */
  setAttr(attr: number, value: number): number {
    return Number(fn.attrSet(this.ctx, attr, value >>> 0));
  }

  /** 0, or -errno (-EACCES when the action is the default one, -EINVAL for a bad condition set). */
  addRule(action: number, syscall: number, conds: readonly ArgCmp[]): number {
    return Number(fn.ruleAddArray(this.ctx, action >>> 0, syscall, conds.length, encodeConditions(conds)));
  }

  /** The BPF program, one u64 per struct sock_filter in memory order. */
  exportBpf(): bigint[] {
    // libseccomp 2.5 exports to an fd only: a memfd keeps it off any filesystem.
    const fd = Number(fn.memfdCreate('tsrunc-seccomp', MFD_CLOEXEC));
    if (fd < 0) throw new SyscallError('memfd_create', lastErrno());
    try {
      const r = Number(fn.exportBpf(this.ctx, fd));
      if (r < 0) throw new LibseccompError('seccomp_export_bpf', -r);
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const n = readSync(fd, buf, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      if (off % 8 !== 0) throw new Error(`seccomp: exported BPF is ${off} bytes, not whole instructions`);
      const prog: bigint[] = [];
      // Read back as the encoder writes (LE), so the bytes reach the child unchanged.
      for (let i = 0; i < off; i += 8) prog.push(buf.readBigUInt64LE(i));
      return prog;
    } finally {
      closeSync(fd);
    }
  }

  release(): void {
    if (this.ctx) fn.release(this.ctx);
    this.ctx = null;
  }
}
