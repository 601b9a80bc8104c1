// Device access rules -> a BPF_CGROUP_DEVICE program, as runc builds it
// (cgroups/devices/devicefilter.go, itself from crun's ebpf.c): the rules are
// first run through an emulator of the cgroup v1 devices controller, so the
// result means what the same rules meant under v1 (including its refusal to
// punch holes into wildcard rules), then each remaining rule becomes a block
// of instructions. Pure code: the loading is in bpf.ts.

export type DeviceType = 'a' | 'b' | 'c';

export interface DeviceRule {
  type: DeviceType;
  /** -1: any */
  major: number;
  /** -1: any */
  minor: number;
  /** a subset of "rwm" */
  access: string;
  allow: boolean;
}

const WILDCARD = -1;

/** runc's AllowedDevices, appended after the spec's rules (so they always win). */
export const DEFAULT_ALLOWED_DEVICES: readonly (DeviceRule & { path?: string })[] = [
  { type: 'c', major: WILDCARD, minor: WILDCARD, access: 'm', allow: true },
  { type: 'b', major: WILDCARD, minor: WILDCARD, access: 'm', allow: true },
  { path: '/dev/null', type: 'c', major: 1, minor: 3, access: 'rwm', allow: true },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, access: 'rwm', allow: true },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, access: 'rwm', allow: true },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, access: 'rwm', allow: true },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, access: 'rwm', allow: true },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, access: 'rwm', allow: true },
  // /dev/pts/*, /dev/ptmx, and /dev/net/tun (kept by runc for compatibility)
  { type: 'c', major: 136, minor: WILDCARD, access: 'rwm', allow: true },
  { type: 'c', major: 5, minor: 2, access: 'rwm', allow: true },
  { type: 'c', major: 10, minor: 200, access: 'rwm', allow: true },
];

/** The spec's rules, then the default ones whose path the spec does not define itself (runc's createDevices). */
export function effectiveDeviceRules(specRules: DeviceRule[], specDevicePaths: string[]): DeviceRule[] {
  const defaults = DEFAULT_ALLOWED_DEVICES.filter((d) => !d.path || !specDevicePaths.includes(d.path)).map(({ path: _p, ...rule }) => rule);
  return [...specRules, ...defaults];
}

// ---- permission sets ------------------------------------------------------

const R = 1;
const W = 2;
const M = 4;

function toSet(access: string): number {
  let s = 0;
  for (const ch of access) s |= ch === 'r' ? R : ch === 'w' ? W : ch === 'm' ? M : 0;
  return s;
}

function fromSet(s: number): string {
  return `${s & R ? 'r' : ''}${s & W ? 'w' : ''}${s & M ? 'm' : ''}`;
}

export function validAccess(access: string): boolean {
  return access !== '' && /^[rwm]+$/.test(access);
}

// ---- the v1 emulator ---------------------------------------------------------

type Key = string; // "c:1:3"
const keyOf = (type: string, major: number, minor: number): Key => `${type}:${major}:${minor}`;

/** cgroup v1 devices-controller semantics: a default (allow or deny) and exceptions. */
export class DeviceEmulator {
  defaultAllow = false;
  private rules = new Map<Key, { type: 'b' | 'c'; major: number; minor: number; perms: number }>();

  apply(rule: DeviceRule): void {
    if (rule.type === 'a') {
      // "a" resets: allow-all (a blacklist) or deny-all (a whitelist).
      this.defaultAllow = rule.allow;
      this.rules.clear();
      return;
    }
    const perms = toSet(rule.access);
    // Allow in a whitelist / deny in a blacklist adds an exception; the other way removes one.
    if (rule.allow !== this.defaultAllow) this.add(rule.type, rule.major, rule.minor, perms);
    else this.remove(rule, perms);
  }

  private add(type: 'b' | 'c', major: number, minor: number, perms: number): void {
    const k = keyOf(type, major, minor);
    const old = this.rules.get(k);
    this.rules.set(k, { type, major, minor, perms: (old?.perms ?? 0) | perms });
  }

  private remove(rule: DeviceRule, perms: number): void {
    const type = rule.type as 'b' | 'c';
    // v1 silently ignores a removal that a wildcard exception still covers;
    // refusing it avoids a false sense of security (runc does the same).
    for (const [maj, min] of [
      [WILDCARD, rule.minor],
      [rule.major, WILDCARD],
      [WILDCARD, WILDCARD],
    ] as const) {
      if (maj === rule.major && min === rule.minor) continue;
      const partial = this.rules.get(keyOf(type, maj, min));
      if (partial && (partial.perms & perms) !== 0) {
        throw new Error(
          `the rule "${ruleString(rule)}" would punch a hole into the wildcard rule "${ruleString({ type, major: maj, minor: min, access: fromSet(partial.perms), allow: !this.defaultAllow })}", which cgroup devices rules cannot express`,
        );
      }
    }
    const k = keyOf(type, rule.major, rule.minor);
    const old = this.rules.get(k);
    if (!old) return;
    const left = old.perms & ~perms;
    if (left === 0) this.rules.delete(k);
    else this.rules.set(k, { ...old, perms: left });
  }

  /** The exceptions, sorted by (major, minor, type) as runc sorts them. */
  exceptions(): DeviceRule[] {
    return [...this.rules.values()]
      .sort((a, b) => a.major - b.major || a.minor - b.minor || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)) // no localeCompare: ICU costs ~10 ms on first use
      .map((r) => ({ type: r.type, major: r.major, minor: r.minor, access: fromSet(r.perms), allow: !this.defaultAllow }));
  }
}

export function ruleString(r: DeviceRule): string {
  const n = (v: number) => (v === WILDCARD ? '*' : String(v));
  return `${r.allow ? 'allow' : 'deny'} ${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

// ---- eBPF ---------------------------------------------------------------------

// struct bpf_cgroup_dev_ctx { u32 access_type (type | access << 16); u32 major; u32 minor; }
const BPF_DEVCG_ACC_MKNOD = 1;
const BPF_DEVCG_ACC_READ = 2;
const BPF_DEVCG_ACC_WRITE = 4;
const BPF_DEVCG_DEV_BLOCK = 1;
const BPF_DEVCG_DEV_CHAR = 2;

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K = 0x74;
const ALU32_MOV_K = 0xb4;
const ALU32_MOV_X = 0xbc;
const JMP32_JNE_K = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K: a 32-bit compare, so majors >= 2^31 match too
const JMP32_JNE_X = 0x5e;
const EXIT = 0x95;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** jump to the start of the next rule block (offset patched later) */
  toNext?: boolean;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm });

/**
 * The filter program for the rules, in order, as 8-byte instructions. The
 * program returns 1 (allow) or 0 (deny: open/mknod fail with EPERM).
 */
export function deviceFilterProgram(rules: DeviceRule[]): Buffer {
  const emu = new DeviceEmulator();
  for (const r of rules) emu.apply(r);
  const blocks: Insn[][] = [];
  for (const rule of emu.exceptions()) {
    const block: Insn[] = [];
    const type = rule.type === 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
    block.push({ ...insn(JMP32_JNE_K, 2, 0, 0, type), toNext: true });
    const access = toSet(rule.access);
    const bpfAccess = (access & R ? BPF_DEVCG_ACC_READ : 0) | (access & W ? BPF_DEVCG_ACC_WRITE : 0) | (access & M ? BPF_DEVCG_ACC_MKNOD : 0);
    if (access !== (R | W | M)) {
      // the requested access must be a subset of the rule's: (R3 & access) == R3
      block.push(insn(ALU32_MOV_X, 1, 3, 0, 0), insn(ALU32_AND_K, 1, 0, 0, bpfAccess), { ...insn(JMP32_JNE_X, 1, 3, 0, 0), toNext: true });
    }
    if (rule.major !== WILDCARD) block.push({ ...insn(JMP32_JNE_K, 4, 0, 0, rule.major | 0), toNext: true });
    if (rule.minor !== WILDCARD) block.push({ ...insn(JMP32_JNE_K, 5, 0, 0, rule.minor | 0), toNext: true });
    block.push(insn(ALU32_MOV_K, 0, 0, 0, rule.allow ? 1 : 0), insn(EXIT, 0, 0, 0, 0));
    blocks.push(block);
  }
  const prologue = [
    insn(LDX_MEM_W, 2, 1, 0, 0), // R2 = ctx->access_type
    insn(ALU32_AND_K, 2, 0, 0, 0xffff), // R2 = device type
    insn(LDX_MEM_W, 3, 1, 0, 0),
    insn(ALU32_RSH_K, 3, 0, 0, 16), // R3 = requested access
    insn(LDX_MEM_W, 4, 1, 4, 0), // R4 = major
    insn(LDX_MEM_W, 5, 1, 8, 0), // R5 = minor
  ];
  const epilogue = [insn(ALU32_MOV_K, 0, 0, 0, emu.defaultAllow ? 1 : 0), insn(EXIT, 0, 0, 0, 0)];
  const all: Insn[] = [...prologue];
  for (const block of blocks) {
    const start = all.length;
    const next = start + block.length;
    block.forEach((ins, i) => all.push(ins.toNext ? { ...ins, off: next - (start + i) - 1 } : ins));
  }
  all.push(...epilogue);
  const buf = Buffer.alloc(all.length * 8);
  all.forEach((ins, i) => {
    buf.writeUInt8(ins.code, i * 8);
    buf.writeUInt8((ins.src << 4) | ins.dst, i * 8 + 1);
    buf.writeInt16LE(ins.off, i * 8 + 2);
    buf.writeInt32LE(ins.imm, i * 8 + 4);
  });
  return buf;
}

/**
 * What the program decides, computed in TypeScript (for tests and for
 * explaining a denial): true when `access` (one of r, w, m) is allowed.
 */
export function simulateDeviceFilter(program: Buffer, type: 'b' | 'c', major: number, minor: number, access: string): boolean {
  const regs = new Array<number>(11).fill(0);
  const acc = toSet(access);
  const bpfAccess = (acc & R ? BPF_DEVCG_ACC_READ : 0) | (acc & W ? BPF_DEVCG_ACC_WRITE : 0) | (acc & M ? BPF_DEVCG_ACC_MKNOD : 0);
  const ctx = [((bpfAccess << 16) | (type === 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK)) >>> 0, major >>> 0, minor >>> 0];
  for (let pc = 0; pc < program.length / 8; pc++) {
    const code = program.readUInt8(pc * 8);
    const regsByte = program.readUInt8(pc * 8 + 1);
    const dst = regsByte & 0xf;
    const src = regsByte >> 4;
    const off = program.readInt16LE(pc * 8 + 2);
    const imm = program.readInt32LE(pc * 8 + 4);
    switch (code) {
      case LDX_MEM_W:
        regs[dst] = ctx[off / 4]!;
        break;
      case ALU32_AND_K:
        regs[dst] = (regs[dst]! & imm) >>> 0;
        break;
      case ALU32_RSH_K:
        regs[dst] = regs[dst]! >>> imm;
        break;
      case ALU32_MOV_K:
        regs[dst] = imm >>> 0;
        break;
      case ALU32_MOV_X:
        regs[dst] = regs[src]!;
        break;
      case JMP32_JNE_K:
        if (regs[dst]! >>> 0 !== imm >>> 0) pc += off;
        break;
      case JMP32_JNE_X:
        if (regs[dst]! >>> 0 !== regs[src]! >>> 0) pc += off;
        break;
      case EXIT:
        return regs[0] === 1;
      default:
        throw new Error(`unknown opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('program fell off its end');
}
