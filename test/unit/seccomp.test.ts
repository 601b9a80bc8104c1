// linux.seccomp without root: validation (messages with JSON paths), the BPF
// libseccomp makes for a profile, run here through a small cBPF interpreter
// so each action, operator and errno is checked by its verdict, the -ENOSYS
// stub, flags, and where the SECCOMP op sits in an init plan.
import t from 'tap';
import { defaultSpec } from '../../src/oci/default-spec.js';
import { ConfigError } from '../../src/oci/validate.js';
import type { Spec } from '../../src/oci/spec.js';
import { validateSeccomp, compileProfile, planSeccomp } from '../../src/runtime/seccomp/index.js';
import { ACTIONS, FILTER_FLAG } from '../../src/runtime/seccomp/profile.js';
import { decode, enosysStub, BPF } from '../../src/runtime/seccomp/bpf.js';
import { libseccompVersion, syscallNumber, syscallNumberOn, archToken } from '../../src/runtime/seccomp/libseccomp.js';
import { buildInitPlan } from '../../src/runtime/plan/init.js';
import { parseMountInfo } from '../../src/linux/mountinfo.js';
import * as k from '../../src/linux/constants.js';
import { SYNC_TAG, type LaunchPlan } from '../../src/runtime/plan/ops.js';
import type { Logger } from '../../src/runtime/log.js';

const AUDIT_X86_64 = 0xc000003e;
const AUDIT_I386 = 0x40000003;
const X32_BIT = 0x40000000;
const ALLOW = ACTIONS.SCMP_ACT_ALLOW;
const errno = (e: number) => (0x00050000 | e) >>> 0;
const EPERM = 1;
const ENOSYS = 38;

type Raw = Record<string, unknown>;

/** What validateSeccomp + compileProfile say about a profile: the ConfigError message, or why there is none. */
function errorOf(raw: Raw): string {
  try {
    const p = validateSeccomp(raw);
    if (p) compileProfile(p);
  } catch (e) {
    return e instanceof ConfigError ? e.message : `not a ConfigError: ${String(e)}`;
  }
  return 'no error';
}

function compile(raw: Raw, log?: Logger) {
  return compileProfile(validateSeccomp(raw)!, log);
}

/**
 * A cBPF interpreter for seccomp programs: returns the filter's verdict for
 * one syscall. Only the instructions seccomp filters use.
 */
function run(prog: bigint[], nr: number, args: (number | bigint)[] = [], arch = AUDIT_X86_64): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)), 16 + 8 * i));
  let A = 0;
  let X = 0;
  const M = new Array<number>(16).fill(0);
  for (let pc = 0, steps = 0; pc < prog.length && steps < 100_000; pc++, steps++) {
    const { code, jt, jf, k: K } = decode(prog[pc]!);
    const jump = (cond: boolean) => (pc += cond ? jt : jf);
    switch (code) {
      case 0x20: A = data.readUInt32LE(K); break; // ld [k]
      case 0x00: A = K; break; // ld #k
      case 0x01: X = K; break; // ldx #k
      case 0x60: A = M[K]!; break; // ld M[k]
      case 0x61: X = M[K]!; break; // ldx M[k]
      case 0x02: M[K] = A; break; // st
      case 0x03: M[K] = X; break; // stx
      case 0x54: A = (A & K) >>> 0; break; // and #k
      case 0x07: X = A; break; // tax
      case 0x87: A = X; break; // txa
      case BPF.JA: pc += K; break;
      case BPF.JEQ_K: jump(A === K); break;
      case BPF.JGT_K: jump(A > K); break;
      case BPF.JGE_K: jump(A >= K); break;
      case BPF.JSET_K: jump((A & K) !== 0); break;
      case 0x1d: jump(A === X); break; // jeq x
      case 0x2d: jump(A > X); break; // jgt x
      case 0x3d: jump(A >= X); break; // jge x
      case BPF.RET_K: return K >>> 0;
      case 0x16: return A >>> 0; // ret a
      default: throw new Error(`instruction 0x${code.toString(16)} at ${pc} not interpreted`);
    }
  }
  throw new Error('ran off the end of the program');
}

const NR = (name: string) => {
  const n = syscallNumber(name);
  if (n < 0) throw new Error(`no syscall ${name} here`);
  return n;
};

t.test('validation: every error names its JSON path', async (t) => {
  const rule = (over: Raw) => ({ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', ...over });
  const cases: [string, Raw, string | RegExp][] = [
    [
      'unknown rule action',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({}), rule({}), rule({ action: 'SCMP_ACT_FOO' })] },
      /^config\.json: linux\.seccomp\.syscalls\[2\]\.action: unknown action "SCMP_ACT_FOO" \(want one of SCMP_ACT_KILL, /,
    ],
    ['unknown default action', { defaultAction: 'ALLOW' }, /^config\.json: linux\.seccomp\.defaultAction: unknown action "ALLOW"/],
    ['default action missing with rules', { syscalls: [rule({})] }, 'config.json: linux.seccomp.defaultAction: is required'],
    [
      'unknown architecture',
      { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80'] },
      /^config\.json: linux\.seccomp\.architectures\[1\]: unknown architecture "SCMP_ARCH_Z80" \(want one of SCMP_ARCH_X86, /,
    ],
    [
      'unknown flag',
      { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_FOO'] },
      /^config\.json: linux\.seccomp\.flags\[0\]: unknown flag "SECCOMP_FILTER_FLAG_FOO" \(want one of SECCOMP_FILTER_FLAG_TSYNC, /,
    ],
    [
      'unknown operator',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ args: [{ index: 0, value: 1, op: 'SCMP_CMP_ABOUT' }] })] },
      /^config\.json: linux\.seccomp\.syscalls\[0\]\.args\[0\]\.op: unknown operator "SCMP_CMP_ABOUT"/,
    ],
    [
      'argument index above 5',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] })] },
      'config.json: linux.seccomp.syscalls[0].args[0].index: must be at most 5',
    ],
    [
      'a value JSON cannot carry exactly',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ args: [{ index: 0, value: 2 ** 64, op: 'SCMP_CMP_EQ' }] })] },
      /^config\.json: linux\.seccomp\.syscalls\[0\]\.args\[0\]\.value: must be at most 9007199254740991 \(larger JSON numbers lose precision\)$/,
    ],
    [
      'negative value',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] })] },
      'config.json: linux.seccomp.syscalls[0].args[0].value: must be a non-negative integer',
    ],
    ['missing op', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ args: [{ index: 0, value: 1 }] })] }, 'config.json: linux.seccomp.syscalls[0].args[0].op: is required'],
    ['empty names', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ names: [] })] }, /^config\.json: linux\.seccomp\.syscalls\[0\]\.names: must be a non-empty array/],
    ['a name that is not a string', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ names: ['read', 3] })] }, 'config.json: linux.seccomp.syscalls[0].names[1]: must be a string'],
    [
      'NOTIFY without listenerPath',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ action: 'SCMP_ACT_NOTIFY' })] },
      'config.json: linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath',
    ],
    ['NOTIFY as the default action', { defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/x' }, 'config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action'],
    [
      'NOTIFY on the syscall that carries the notify fd',
      { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/x', syscalls: [rule({ names: ['getpid', 'sendmsg'], action: 'SCMP_ACT_NOTIFY' })] },
      /^config\.json: linux\.seccomp\.syscalls\[0\]\.names: SCMP_ACT_NOTIFY cannot be used for sendmsg/,
    ],
    [
      'errnoRet on an action without an errno',
      { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [rule({ action: 'SCMP_ACT_ALLOW', errnoRet: 5 })] },
      /^config\.json: linux\.seccomp\.syscalls\[0\]\.errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno, not SCMP_ACT_ALLOW/,
    ],
    ['defaultErrnoRet with a kill', { defaultAction: 'SCMP_ACT_KILL', defaultErrnoRet: 1 }, /^config\.json: linux\.seccomp\.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE/],
    ['errnoRet above MAX_ERRNO', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule({ errnoRet: 70000 })] }, 'config.json: linux.seccomp.syscalls[0].errnoRet: must be at most 4095'],
    ['listenerMetadata without listenerPath', { defaultAction: 'SCMP_ACT_ALLOW', listenerMetadata: 'x' }, /^config\.json: linux\.seccomp\.listenerMetadata: must not be set without/],
    ['syscalls not an array', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: {} }, 'config.json: linux.seccomp.syscalls: must be an array'],
    ['a rule that is not an object', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: ['mkdir'] }, 'config.json: linux.seccomp.syscalls[0]: must be an object'],
  ];
  for (const [name, raw, want] of cases) {
    const got = errorOf(raw);
    if (typeof want === 'string') t.equal(got, want, name);
    else t.match(got, want, name);
  }

  t.equal(validateSeccomp({}), undefined, 'no defaultAction and no syscalls: no filter, as runc');
  t.equal(validateSeccomp(undefined), undefined);
  t.ok(validateSeccomp({ defaultAction: 'SCMP_ACT_KILL' }), 'a lone defaultAction is a filter');

  // This libseccomp may not know every architecture the spec lists.
  const v = libseccompVersion();
  t.match(v, /^\d+\.\d+\.\d+$/);
  if (archToken('m68k') === 0) {
    t.equal(
      errorOf({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_M68K'] }),
      `config.json: linux.seccomp.architectures[1]: architecture SCMP_ARCH_M68K is not supported by libseccomp ${v}`,
    );
  }
});

t.test('compile: the program checks the architecture first', async (t) => {
  const c = compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] });
  t.ok(c.filter.length > 3, `${c.filter.length} instructions`);
  t.equal(c.stubLength, 0, 'no -ENOSYS stub under a permissive default');
  t.same(decode(c.filter[0]!), { code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 4 }, 'ld [4]: seccomp_data.arch');
  const second = decode(c.filter[1]!);
  t.equal(second.code, BPF.JEQ_K, 'then a jeq on it');
  t.equal(second.k, AUDIT_X86_64, 'against the native AUDIT_ARCH (x86_64 here)');
  t.equal(run(c.filter, NR('mkdir')), errno(EPERM), 'mkdir: EPERM (the default errno, as runc)');
  t.equal(run(c.filter, NR('mkdirat')), errno(EPERM));
  t.equal(run(c.filter, NR('getpid')), ALLOW, 'everything else allowed');
  t.equal(run(c.filter, 11, [], AUDIT_I386), 0, 'another architecture: libseccomp kills (bad arch action)');
  t.equal(c.flags, FILTER_FLAG.SPEC_ALLOW, 'no `flags`: SPEC_ALLOW, as runc');
});

t.test('compile: every action', async (t) => {
  const acts: [string, string, number][] = [
    ['SCMP_ACT_KILL', 'getpid', 0],
    ['SCMP_ACT_KILL_THREAD', 'getppid', 0],
    ['SCMP_ACT_KILL_PROCESS', 'getuid', 0x80000000],
    ['SCMP_ACT_TRAP', 'getgid', 0x00030000],
    ['SCMP_ACT_ERRNO', 'geteuid', errno(EPERM)],
    ['SCMP_ACT_TRACE', 'getegid', 0x7ff00001],
    ['SCMP_ACT_LOG', 'getpgrp', 0x7ffc0000],
    ['SCMP_ACT_NOTIFY', 'getsid', 0x7fc00000],
  ];
  const c = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath: '/run/agent.sock',
    syscalls: acts.map(([action, name]) => ({ names: [name], action })),
  });
  for (const [action, name, want] of acts) t.equal(run(c.filter, NR(name)), want, `${action} on ${name}`);
  t.equal(c.flags & FILTER_FLAG.NEW_LISTENER, FILTER_FLAG.NEW_LISTENER, 'NOTIFY asks for a listener fd');
});

t.test('compile: errnoRet and defaultErrnoRet', async (t) => {
  const c = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 13,
    syscalls: [
      { names: ['read', 'write', 'exit_group'], action: 'SCMP_ACT_ALLOW' },
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      { names: ['rmdir'], action: 'SCMP_ACT_TRACE', errnoRet: 7 },
    ],
  });
  t.equal(run(c.filter, NR('mkdir')), errno(ENOSYS));
  t.equal(run(c.filter, NR('rmdir')), 0x7ff00007, 'TRACE carries its errnoRet as data');
  t.equal(run(c.filter, NR('getpid')), errno(13), 'the default errno');
  t.equal(run(c.filter, NR('read')), ALLOW);
});

t.test('compile: argument operators', async (t) => {
  const rule = (name: string, op: string, value: number, valueTwo?: number) => ({
    names: [name],
    action: 'SCMP_ACT_ERRNO',
    args: [{ index: 0, op, value, ...(valueTwo !== undefined ? { valueTwo } : {}) }],
  });
  const c = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      rule('personality', 'SCMP_CMP_EQ', 0xffffffff),
      rule('setuid', 'SCMP_CMP_NE', 0),
      rule('setgid', 'SCMP_CMP_LT', 100),
      rule('umask', 'SCMP_CMP_LE', 0o22),
      rule('alarm', 'SCMP_CMP_GE', 1000),
      rule('close', 'SCMP_CMP_GT', 2 ** 40),
      // socket(AF_INET, ...): MASKED_EQ with mask 0xff, value 2
      rule('socket', 'SCMP_CMP_MASKED_EQ', 0xff, 2),
    ],
  });
  const denied = errno(EPERM);
  const check = (name: string, arg: number | bigint, want: number, what: string) => t.equal(run(c.filter, NR(name), [arg]), want, `${name}(${what})`);
  check('personality', 0xffffffff, denied, '0xffffffff == 0xffffffff');
  check('personality', 0, ALLOW, '0');
  check('personality', 0x1ffffffffn, ALLOW, 'the high half counts too');
  check('setuid', 0, ALLOW, '0 != 0 is false');
  check('setuid', 1000, denied, '1000 != 0');
  check('setgid', 99, denied, '99 < 100');
  check('setgid', 100, ALLOW, '100 < 100 is false');
  check('umask', 0o22, denied, '0o22 <= 0o22');
  check('umask', 0o23, ALLOW, '0o23 <= 0o22 is false');
  check('alarm', 1000, denied, '1000 >= 1000');
  check('alarm', 999, ALLOW, '999 >= 1000 is false');
  check('close', 2 ** 40 + 1, denied, '2^40+1 > 2^40 (64-bit compare)');
  check('close', 3, ALLOW, '3 > 2^40 is false');
  check('socket', 2, denied, 'AF_INET');
  check('socket', 0x102, denied, '0x102 & 0xff == 2');
  check('socket', 1, ALLOW, 'AF_UNIX');
  check('socket', 10, ALLOW, 'AF_INET6');
});

t.test('compile: two conditions on one argument are ORed, as runc', async (t) => {
  const c = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      {
        names: ['socket'],
        action: 'SCMP_ACT_ERRNO',
        args: [
          { index: 0, op: 'SCMP_CMP_EQ', value: 2 },
          { index: 0, op: 'SCMP_CMP_EQ', value: 10 },
        ],
      },
      // different arguments: ANDed in one rule
      {
        names: ['kill'],
        action: 'SCMP_ACT_ERRNO',
        args: [
          { index: 0, op: 'SCMP_CMP_EQ', value: 1 },
          { index: 1, op: 'SCMP_CMP_EQ', value: 9 },
        ],
      },
    ],
  });
  t.equal(run(c.filter, NR('socket'), [2]), errno(EPERM));
  t.equal(run(c.filter, NR('socket'), [10]), errno(EPERM));
  t.equal(run(c.filter, NR('socket'), [1]), ALLOW);
  t.equal(run(c.filter, NR('kill'), [1, 9]), errno(EPERM));
  t.equal(run(c.filter, NR('kill'), [1, 15]), ALLOW);
  t.equal(run(c.filter, NR('kill'), [2, 9]), ALLOW);
});

t.test('compile: unknown syscall names are skipped with a debug line', async (t) => {
  const lines: string[] = [];
  const log: Logger = { debug: (m) => lines.push(m), warn: (m) => lines.push(`warn ${m}`) };
  const c = compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_syscall_at_all', 'mkdir'], action: 'SCMP_ACT_ERRNO' }] }, log);
  t.equal(run(c.filter, NR('mkdir')), errno(EPERM), 'the known name still applies');
  t.ok(
    lines.some((l) => l.includes('unknown syscall "no_such_syscall_at_all" skipped (linux.seccomp.syscalls[0])')),
    'logged',
  );
  // A rule with the default action changes nothing (libseccomp would refuse it).
  const d = compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] });
  t.equal(run(d.filter, NR('read')), ALLOW);
});

t.test('compile: architectures', async (t) => {
  const c = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
  });
  const i386Mkdir = syscallNumberOn(archToken('x86'), 'mkdir');
  const x32Mkdir = syscallNumberOn(archToken('x32'), 'mkdir');
  t.equal(i386Mkdir, 39);
  t.equal(x32Mkdir, X32_BIT + 83);
  t.equal(run(c.filter, NR('mkdir')), errno(EPERM), 'x86_64');
  t.equal(run(c.filter, i386Mkdir, [], AUDIT_I386), errno(EPERM), 'i386: its own number for mkdir');
  t.equal(run(c.filter, NR('mkdir'), [], AUDIT_I386), ALLOW, "i386's 83 is another syscall");
  t.equal(run(c.filter, x32Mkdir), errno(EPERM), 'x32 (x86_64 audit arch, bit 30)');
  t.equal(run(c.filter, 5, [], 0xc00000b7), 0, 'aarch64 is not in the filter: killed');
});

t.test('compile: flags', async (t) => {
  const flags = (f: unknown, extra: Raw = {}) => compile({ defaultAction: 'SCMP_ACT_ALLOW', flags: f, ...extra }).flags;
  t.equal(flags([]), 0, 'an empty list means no flags (no SPEC_ALLOW default)');
  t.equal(flags(['SECCOMP_FILTER_FLAG_LOG']), FILTER_FLAG.LOG);
  t.equal(flags(['SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_LOG']), FILTER_FLAG.LOG | FILTER_FLAG.SPEC_ALLOW);
  t.equal(flags(['SECCOMP_FILTER_FLAG_TSYNC']), 0, 'TSYNC: known, ignored (the child is single-threaded)');
  t.equal(flags(['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']), 0, 'WAIT_KILLABLE_RECV without a listener: ignored');
  t.equal(
    flags(['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'], { listenerPath: '/a', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_NOTIFY' }] }),
    FILTER_FLAG.WAIT_KILLABLE_RECV | FILTER_FLAG.NEW_LISTENER,
  );
});

t.test('the -ENOSYS stub: syscalls newer than a deny-by-default profile get ENOSYS', async (t) => {
  const allowed = ['read', 'write', 'openat', 'close', 'mkdir', 'exit_group'];
  const c = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: allowed, action: 'SCMP_ACT_ALLOW' }],
  });
  t.ok(c.stubLength > 0, `a ${c.stubLength}-instruction stub`);
  const max = Math.max(...allowed.map(NR));
  t.equal(run(c.filter, NR('openat')), ALLOW);
  t.equal(run(c.filter, NR('getpid')), errno(EPERM), 'known to the profile era: the default action');
  t.equal(run(c.filter, max + 1), errno(ENOSYS), 'newer than every syscall named: ENOSYS');
  t.equal(run(c.filter, 435 /* clone3 */), errno(ENOSYS), 'clone3 on x86_64: ENOSYS, so libc falls back to clone');
  const x32 = archToken('x32');
  const maxX32 = Math.max(...allowed.map((n) => syscallNumberOn(x32, n)));
  t.equal(run(c.filter, maxX32 + 1), errno(ENOSYS), 'x32 has its own limit');
  t.equal(run(c.filter, syscallNumberOn(x32, 'getpid')), errno(EPERM));
  const i386max = Math.max(...allowed.map((n) => syscallNumberOn(archToken('x86'), n)));
  t.equal(run(c.filter, i386max + 1, [], AUDIT_I386), errno(ENOSYS), 'i386 has its own limit');

  // Not with a permissive default, nor when the default errno is ENOSYS already.
  t.equal(compile({ defaultAction: 'SCMP_ACT_LOG', syscalls: [{ names: allowed, action: 'SCMP_ACT_ERRNO' }] }).stubLength, 0);
  t.equal(compile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: ENOSYS, syscalls: [{ names: allowed, action: 'SCMP_ACT_ALLOW' }] }).stubLength, 0);
  t.same(enosysStub([{ auditArch: AUDIT_X86_64 }], AUDIT_X86_64), [], 'no syscall numbers known: no stub');
});

// ---- the op in an init plan --------------------------------------------------

const HOST = {
  capLastCap: 40,
  mounts: parseMountInfo('22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw'),
  procKcore: true,
  cgroupMode: 'hybrid' as const,
  euid: 0,
};

function plan(spec: Spec): LaunchPlan {
  return buildInitPlan({
    id: 'c1',
    spec,
    rootfs: '/var/lib/tsrunc/c1/rootfs',
    bundle: '/var/lib/tsrunc/c1',
    host: HOST,
    cgroupDir: undefined,
    fds: { sync: 10, parentSync: 11, cgroup: -1, fifo: 12, console: -1 },
    noPivot: false,
    noNewKeyring: false,
    preserveFds: 0,
    env: ['HOME=/root'],
  });
}

const withSeccomp = (nnp: boolean, seccomp: Raw = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }) => {
  const s = defaultSpec();
  s.process!.noNewPrivileges = nnp;
  s.linux!.seccomp = seccomp;
  return s;
};

t.test('plan: where the SECCOMP op goes', async (t) => {
  t.equal(plan(defaultSpec()).ops.filter((o) => o.name === 'SECCOMP').length, 0, 'none without linux.seccomp');
  t.equal(plan(withSeccomp(true, {})).ops.filter((o) => o.name === 'SECCOMP').length, 0, 'none for an empty profile');

  const late = plan(withSeccomp(true)).ops;
  const i = late.findIndex((o) => o.name === 'SECCOMP');
  t.ok(i > 0, 'present');
  t.match(late[i]!.describe, /^install the seccomp filter \(\d+ instructions, flags 0x4\)$/);
  const ready = late.findIndex((o) => o.name === 'SYNC' && o.args.tag === SYNC_TAG.READY);
  t.equal(i, ready - 1, 'with no_new_privs: right before READY');
  const pdeath = late.findIndex((o) => o.name === 'PRCTL' && o.args.option === k.PR_SET_PDEATHSIG && Number(o.args.arg2) === 0);
  t.ok(pdeath < i && late.findIndex((o) => o.name === 'FIND_EXEC') < i && late.findIndex((o) => o.name === 'CAPSET') < i, 'after identity, FIND_EXEC and PDEATHSIG 0');

  const early = plan(withSeccomp(false)).ops;
  const j = early.findIndex((o) => o.name === 'SECCOMP');
  const firstIdentity = early.findIndex((o) => o.name === 'PRCTL' && (o.args.option === k.PR_CAPBSET_DROP || o.args.option === k.PR_SET_KEEPCAPS));
  t.ok(j >= 0 && firstIdentity >= 0, 'present');
  t.equal(j, firstIdentity - 1, 'without no_new_privs: right before the identity ops drop CAP_SYS_ADMIN');
  t.ok(j < early.findIndex((o) => o.name === 'CAPSET'));

  const op = late[i]!;
  if (op.name !== 'SECCOMP') throw new Error('not SECCOMP');
  t.equal(op.args.flags, FILTER_FLAG.SPEC_ALLOW);
  t.ok(op.args.filter.length > 0);
});

t.test('plan: a bad profile is a ConfigError with its path', async (t) => {
  t.throws(() => plan(withSeccomp(true, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_FOO' }] })), {
    name: 'ConfigError',
    path: 'linux.seccomp.syscalls[0].action',
  });
  t.throws(() => planSeccomp(withSeccomp(true, { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['x86_64'] })), {
    name: 'ConfigError',
    message: /linux\.seccomp\.architectures\[0\]: unknown architecture "x86_64"/,
  });
});
