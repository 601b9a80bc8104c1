// linux.seccomp -> a checked, normalised profile. Every error names its JSON
// path (`linux.seccomp.syscalls[2].action: unknown action "SCMP_ACT_FOO"`).
// Pure data: nothing here loads libseccomp, so unit tests and the CLI's other
// commands pay nothing for it.
import { ConfigError } from '../../oci/validate.js';

/** Action values as seccomp(2) returns them (libseccomp's SCMP_ACT_*). */
export const ACTIONS = {
  SCMP_ACT_KILL: 0x00000000, // runc maps KILL to KILL_THREAD, as libseccomp does
  SCMP_ACT_KILL_THREAD: 0x00000000,
  SCMP_ACT_KILL_PROCESS: 0x80000000,
  SCMP_ACT_TRAP: 0x00030000,
  SCMP_ACT_ERRNO: 0x00050000,
  SCMP_ACT_TRACE: 0x7ff00000,
  SCMP_ACT_ALLOW: 0x7fff0000,
  SCMP_ACT_LOG: 0x7ffc0000,
  SCMP_ACT_NOTIFY: 0x7fc00000,
} as const;
export type ActionName = keyof typeof ACTIONS;

/** libseccomp's enum scmp_compare. */
export const OPERATORS = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
} as const;
export type OperatorName = keyof typeof OPERATORS;

/** The spec's architectures and libseccomp's names for them (seccomp_arch_resolve_name). */
export const ARCHITECTURES: Readonly<Record<string, string>> = {
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_ARM: 'arm',
  SCMP_ARCH_AARCH64: 'aarch64',
  SCMP_ARCH_MIPS: 'mips',
  SCMP_ARCH_MIPS64: 'mips64',
  SCMP_ARCH_MIPS64N32: 'mips64n32',
  SCMP_ARCH_MIPSEL: 'mipsel',
  SCMP_ARCH_MIPSEL64: 'mipsel64',
  SCMP_ARCH_MIPSEL64N32: 'mipsel64n32',
  SCMP_ARCH_PPC: 'ppc',
  SCMP_ARCH_PPC64: 'ppc64',
  SCMP_ARCH_PPC64LE: 'ppc64le',
  SCMP_ARCH_S390: 's390',
  SCMP_ARCH_S390X: 's390x',
  SCMP_ARCH_PARISC: 'parisc',
  SCMP_ARCH_PARISC64: 'parisc64',
  SCMP_ARCH_RISCV64: 'riscv64',
  SCMP_ARCH_LOONGARCH64: 'loongarch64',
  SCMP_ARCH_M68K: 'm68k',
  SCMP_ARCH_SH: 'sh',
  SCMP_ARCH_SHEB: 'sheb',
};

/** seccomp(2) filter flags (linux/seccomp.h). */
export const FILTER_FLAG = {
  TSYNC: 1,
  LOG: 2,
  SPEC_ALLOW: 4,
  NEW_LISTENER: 8,
  WAIT_KILLABLE_RECV: 32,
} as const;

export const FLAGS = {
  SECCOMP_FILTER_FLAG_TSYNC: FILTER_FLAG.TSYNC,
  SECCOMP_FILTER_FLAG_LOG: FILTER_FLAG.LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: FILTER_FLAG.SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: FILTER_FLAG.WAIT_KILLABLE_RECV,
} as const;
export type FlagName = keyof typeof FLAGS;

const EPERM = 1;
/** The kernel caps SECCOMP_RET_ERRNO data at MAX_ERRNO. */
const MAX_ERRNO = 4095;

/** The syscall whose sendmsg carries the notify fd to the parent (see rules in checkNotify). */
const FD_CARRIER_SYSCALL = 'sendmsg';

export interface Condition {
  index: number;
  op: OperatorName;
  value: number;
  valueTwo: number;
}

export interface Rule {
  names: string[];
  action: ActionName;
  /** the full seccomp return value (errno folded in for ERRNO and TRACE) */
  value: number;
  args: Condition[];
  /** JSON path of the rule, for errors and logs */
  path: string;
}

export interface Profile {
  defaultAction: ActionName;
  /** the full seccomp return value of the default action */
  defaultValue: number;
  /** defaultErrnoRet when given (the ENOSYS stub looks at it) */
  defaultErrno: number | undefined;
  /** [SCMP_ARCH_* name, JSON path] */
  architectures: [string, string][];
  /** [flag name, JSON path]; undefined when `flags` is absent (runc then adds SPEC_ALLOW) */
  flags: [FlagName, string][] | undefined;
  listenerPath: string | undefined;
  listenerMetadata: string | undefined;
  rules: Rule[];
  /** a rule uses SCMP_ACT_NOTIFY: the filter needs SECCOMP_FILTER_FLAG_NEW_LISTENER */
  notify: boolean;
}

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (path: string, key: string | number) => (typeof key === 'number' ? `${path}[${key}]` : `${path}.${key}`);
const list = (names: readonly string[]) => names.join(', ');

function str(o: Record<string, Json>, key: string, path: string, required = false): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw new ConfigError(at(path, key), 'is required');
    return undefined;
  }
  if (typeof v !== 'string') throw new ConfigError(at(path, key), 'must be a string');
  return v;
}

function uint(o: Record<string, Json>, key: string, path: string, max: number, required = false): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw new ConfigError(at(path, key), 'is required');
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ConfigError(at(path, key), 'must be a non-negative integer');
  if (v > max) {
    // JSON.parse turns integers above 2^53 into doubles: refuse rather than
    // compile a filter that compares against a value nobody wrote.
    const why = max === Number.MAX_SAFE_INTEGER ? ' (larger JSON numbers lose precision)' : '';
    throw new ConfigError(at(path, key), `must be at most ${max}${why}`);
  }
  return v;
}

function array(o: Record<string, Json>, key: string, path: string): Json[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new ConfigError(at(path, key), 'must be an array');
  return v;
}

function strings(o: Record<string, Json>, key: string, path: string): string[] | undefined {
  const a = array(o, key, path);
  a?.forEach((s, i) => {
    if (typeof s !== 'string') throw new ConfigError(at(at(path, key), i), 'must be a string');
  });
  return a as string[] | undefined;
}

function action(name: string, path: string): ActionName {
  if (!Object.hasOwn(ACTIONS, name)) throw new ConfigError(path, `unknown action "${name}" (want one of ${list(Object.keys(ACTIONS))})`);
  return name as ActionName;
}

/** The seccomp return value of an action; errnoRet only where the action returns an errno. */
function actionValue(act: ActionName, errno: number | undefined, errnoPath: string, actionPath: string): number {
  if (act === 'SCMP_ACT_ERRNO' || act === 'SCMP_ACT_TRACE') return (ACTIONS[act] | (errno ?? EPERM)) >>> 0;
  // The spec: "When the action doesn't support an errno, the runtime MUST print an error and fail."
  if (errno !== undefined) throw new ConfigError(errnoPath, `only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno, not ${act} (${actionPath})`);
  return ACTIONS[act];
}

/**
 * Checks linux.seccomp. Undefined when there is nothing to install: runc
 * treats a profile with neither defaultAction nor syscalls as "no seccomp".
 */
export function validateSeccomp(raw: Json, path = 'linux.seccomp'): Profile | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isObject(raw)) throw new ConfigError(path, 'must be an object');
  const syscalls = array(raw, 'syscalls', path);
  if ((raw['defaultAction'] === undefined || raw['defaultAction'] === '') && !syscalls?.length) return undefined;

  const defaultAction = action(str(raw, 'defaultAction', path, true)!, at(path, 'defaultAction'));
  if (defaultAction === 'SCMP_ACT_NOTIFY') {
    // Every syscall the runtime makes after the filter, sendmsg of the notify
    // fd included, would wait for a listener that does not have the fd yet.
    throw new ConfigError(at(path, 'defaultAction'), 'SCMP_ACT_NOTIFY cannot be the default action');
  }
  const defaultErrno = uint(raw, 'defaultErrnoRet', path, MAX_ERRNO);
  const defaultValue = actionValue(defaultAction, defaultErrno, at(path, 'defaultErrnoRet'), at(path, 'defaultAction'));

  const architectures: [string, string][] = [];
  strings(raw, 'architectures', path)?.forEach((a, i) => {
    const p = at(at(path, 'architectures'), i);
    if (!Object.hasOwn(ARCHITECTURES, a)) throw new ConfigError(p, `unknown architecture "${a}" (want one of ${list(Object.keys(ARCHITECTURES))})`);
    architectures.push([a, p]);
  });

  let flags: [FlagName, string][] | undefined;
  const rawFlags = strings(raw, 'flags', path);
  if (rawFlags) {
    flags = rawFlags.map((f, i) => {
      const p = at(at(path, 'flags'), i);
      if (!Object.hasOwn(FLAGS, f)) throw new ConfigError(p, `unknown flag "${f}" (want one of ${list(Object.keys(FLAGS))})`);
      return [f as FlagName, p];
    });
  }

  const listenerPath = str(raw, 'listenerPath', path);
  const listenerMetadata = str(raw, 'listenerMetadata', path);
  if (listenerPath === '') throw new ConfigError(at(path, 'listenerPath'), 'must not be empty');
  if (listenerMetadata !== undefined && listenerPath === undefined) {
    throw new ConfigError(at(path, 'listenerMetadata'), 'must not be set without linux.seccomp.listenerPath');
  }

  const rules: Rule[] = [];
  syscalls?.forEach((s, i) => {
    const rp = at(at(path, 'syscalls'), i);
    if (!isObject(s)) throw new ConfigError(rp, 'must be an object');
    const names = strings(s, 'names', rp);
    if (!names?.length) throw new ConfigError(at(rp, 'names'), 'must be a non-empty array of syscall names');
    names.forEach((n, j) => {
      if (n === '') throw new ConfigError(at(at(rp, 'names'), j), 'must not be empty');
    });
    const act = action(str(s, 'action', rp, true)!, at(rp, 'action'));
    const value = actionValue(act, uint(s, 'errnoRet', rp, MAX_ERRNO), at(rp, 'errnoRet'), at(rp, 'action'));
    const args: Condition[] = [];
    array(s, 'args', rp)?.forEach((a, k) => {
      const ap = at(at(rp, 'args'), k);
      if (!isObject(a)) throw new ConfigError(ap, 'must be an object');
      const index = uint(a, 'index', ap, 5, true)!; // syscalls take at most six arguments
      const value = uint(a, 'value', ap, Number.MAX_SAFE_INTEGER, true)!;
      const valueTwo = uint(a, 'valueTwo', ap, Number.MAX_SAFE_INTEGER) ?? 0;
      const op = str(a, 'op', ap, true)!;
      if (!Object.hasOwn(OPERATORS, op)) throw new ConfigError(at(ap, 'op'), `unknown operator "${op}" (want one of ${list(Object.keys(OPERATORS))})`);
      args.push({ index, op: op as OperatorName, value, valueTwo });
    });
    if (act === 'SCMP_ACT_NOTIFY') {
      if (listenerPath === undefined) throw new ConfigError(at(rp, 'action'), 'SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath');
      // The child sends the notify fd to the runtime with sendmsg right after
      // installing the filter: a notified sendmsg would wait forever for a
      // listener that never gets the fd (runc refuses `write` for the same reason).
      if (names.includes(FD_CARRIER_SYSCALL)) {
        throw new ConfigError(at(rp, 'names'), `SCMP_ACT_NOTIFY cannot be used for ${FD_CARRIER_SYSCALL}: the runtime passes the notify fd with it`);
      }
    }
    rules.push({ names, action: act, value, args, path: rp });
  });

  return {
    defaultAction,
    defaultValue,
    defaultErrno,
    architectures,
    flags,
    listenerPath,
    listenerMetadata,
    rules,
    notify: rules.some((r) => r.action === 'SCMP_ACT_NOTIFY'),
  };
}
