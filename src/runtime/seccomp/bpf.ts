// Classic BPF for seccomp: one instruction = one u64 holding a struct
// sock_filter in memory order (code u16, jt u8, jf u8, k u32), and the
// -ENOSYS stub runc puts in front of libseccomp's program.
//
// Why the stub: with a deny-by-default profile, a syscall newer than the
// profile gets the default action (EPERM, or a kill) where libc expects
// ENOSYS and would fall back to an older call (clone3 -> clone, fchmodat2 ->
// fchmodat). Syscall numbers grow with kernel versions, so "above the
// largest number the profile names, on this architecture" means "newer than
// the profile": those get ENOSYS.

export const BPF = {
  LD_W_ABS: 0x20,
  JA: 0x05,
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

/** Offsets in struct seccomp_data. */
export const DATA = { NR: 0, ARCH: 4, ARGS: 16 } as const;

/** The kernel's limit on a filter's length. */
export const BPF_MAXINSNS = 4096;

export const SECCOMP_RET_ERRNO = 0x00050000;
const ENOSYS = 38;
/** x32 syscalls run under AUDIT_ARCH_X86_64 with this bit set in the number. */
export const X32_SYSCALL_BIT = 0x40000000;

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export function encode(i: Insn): bigint {
  return BigInt(i.code & 0xffff) | (BigInt(i.jt & 0xff) << 16n) | (BigInt(i.jf & 0xff) << 24n) | (BigInt(i.k >>> 0) << 32n);
}

export function decode(v: bigint): Insn {
  return { code: Number(v & 0xffffn), jt: Number((v >> 16n) & 0xffn), jf: Number((v >> 24n) & 0xffn), k: Number((v >> 32n) & 0xffffffffn) };
}

/**
 * A tiny assembler: conditional jumps only ever skip 0 or 1 instruction, and
 * everything farther goes through `ja label` (32-bit offset), so no jump
 * overflows the 8-bit jt/jf however long the program gets.
 */
class Asm {
  private items: (Insn | { to: string } | { label: string })[] = [];
  ins(code: number, k: number, jt = 0, jf = 0): this {
    this.items.push({ code, jt, jf, k: k >>> 0 });
    return this;
  }
  ja(to: string): this {
    this.items.push({ to });
    return this;
  }
  label(label: string): this {
    this.items.push({ label });
    return this;
  }
  /** if (A <cond> k) goto `then`; else fall through. */
  jumpIf(code: number, k: number, then: string): this {
    return this.ins(code, k, 0, 1).ja(then);
  }
  assemble(): bigint[] {
    const at = new Map<string, number>();
    let pc = 0;
    for (const it of this.items) {
      if ('label' in it) at.set(it.label, pc);
      else pc++;
    }
    const out: bigint[] = [];
    for (const it of this.items) {
      if ('label' in it) continue;
      if ('to' in it) {
        const target = at.get(it.to);
        if (target === undefined) throw new Error(`bpf: no label ${it.to}`);
        out.push(encode({ code: BPF.JA, jt: 0, jf: 0, k: target - (out.length + 1) }));
      } else {
        out.push(encode(it));
      }
    }
    return out;
  }
}

/** What the stub knows of one audit architecture. */
export interface StubArch {
  /** AUDIT_ARCH_* value as seccomp_data.arch holds it */
  auditArch: number;
  /** largest syscall number the profile names in the native ABI of this arch, if any */
  max?: number;
  /** x86_64 only: largest x32 syscall number (X32_SYSCALL_BIT set), if x32 is in the filter */
  maxX32?: number;
  /** s390/s390x: syscall 0 multiplexes large numbers and carries unknown ones */
  s390?: boolean;
}

/**
 * The -ENOSYS stub: per architecture, syscalls above the profile's largest
 * number return ENOSYS; everything else falls into the filter that follows
 * (which reloads what it needs from seccomp_data).
 */
export function enosysStub(archs: readonly StubArch[], x86_64Audit: number): bigint[] {
  const useful = archs.filter((a) => a.max !== undefined || a.maxX32 !== undefined);
  if (useful.length === 0) return [];
  const a = new Asm();
  a.ins(BPF.LD_W_ABS, DATA.ARCH);
  useful.forEach((arch, i) => a.jumpIf(BPF.JEQ_K, arch.auditArch, `arch${i}`));
  a.ja('filter');
  const above = (max: number | undefined) => {
    if (max !== undefined) a.jumpIf(BPF.JGT_K, max, 'enosys');
    a.ja('filter');
  };
  useful.forEach((arch, i) => {
    a.label(`arch${i}`).ins(BPF.LD_W_ABS, DATA.NR);
    if (arch.s390) a.jumpIf(BPF.JEQ_K, 0, 'enosys');
    if (arch.auditArch === x86_64Audit) {
      // One audit arch, two ABIs: the x32 bit picks the limit.
      a.jumpIf(BPF.JSET_K, X32_SYSCALL_BIT, `x32_${i}`);
      above(arch.max);
      a.label(`x32_${i}`);
      above(arch.maxX32);
    } else {
      above(arch.max);
    }
  });
  a.label('enosys').ins(BPF.RET_K, SECCOMP_RET_ERRNO | ENOSYS);
  a.label('filter');
  return a.assemble();
}
