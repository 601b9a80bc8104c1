// Process attributes written through procfs or set by one syscall: sysctls
// (namespaced ones only, as runc allows), oom_score_adj, personality, and the
// AppArmor profile or SELinux label the next execve takes on.
import { ConfigError } from '../../oci/validate.js';
import type { Process, Spec } from '../../oci/spec.js';
import { op, type PlanOp } from './ops.js';
import type { HostFacts } from './context.js';

// IPC-namespaced sysctls outside the fs.mqueue.* tree (runc's list).
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

const has = (spec: Spec, type: string, joined?: boolean) =>
  spec.linux?.namespaces?.some((n) => n.type === type && (joined === undefined || Boolean(n.path) === joined)) ?? false;

/** Checks each sysctl is namespaced in a namespace the container owns; throws ConfigError naming it. */
export function validateSysctls(spec: Spec): void {
  for (const raw of Object.keys(spec.linux?.sysctl ?? {})) {
    const key = raw.replaceAll('/', '.');
    const path = `linux.sysctl.${raw}`;
    if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
      if (!has(spec, 'ipc')) throw new ConfigError(path, "not allowed in the host's ipc namespace (add an ipc namespace)");
      continue;
    }
    if (key.startsWith('net.')) {
      if (!has(spec, 'network')) throw new ConfigError(path, "not allowed in the host's network namespace (add a network namespace)");
      continue;
    }
    if (key === 'kernel.domainname' && has(spec, 'uts')) continue;
    if (key === 'kernel.hostname') throw new ConfigError(path, 'conflicts with the "hostname" field; set that instead');
    if (key.startsWith('user.') && has(spec, 'user')) continue;
    throw new ConfigError(path, 'not a namespaced sysctl: it would change the host');
  }
}

/**
 * sysctl writes, before pivot_root and before the read-only paths cover
 * /proc/sys: through the container's procfs at <rootfs>/proc, which the op
 * checks is procfs. Net sysctls reach the container's network namespace
 * because we are in it.
 */
export function planSysctls(spec: Spec, rootfs: string): PlanOp[] {
  validateSysctls(spec);
  return Object.entries(spec.linux?.sysctl ?? {}).map(([key, value]) => {
    const file = `${rootfs}/proc/sys/${key.replaceAll('.', '/')}`;
    return op('WRITE_FILE', { path: file, content: value }, `set sysctl ${key} = ${value}`);
  });
}

export function planOomScoreAdj(spec: Spec): PlanOp[] {
  const v = spec.process?.oomScoreAdj;
  if (v === undefined) return [];
  return [op('WRITE_FILE', { path: '/proc/self/oom_score_adj', content: String(v) }, `set oom_score_adj ${v}`)];
}

const PERSONA: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };

export function planPersonality(spec: Spec): PlanOp[] {
  const p = spec.linux?.personality;
  if (!p) return [];
  const persona = PERSONA[p.domain];
  if (persona === undefined) throw new ConfigError('linux.personality.domain', `unknown domain "${p.domain}" (want LINUX or LINUX32)`);
  if (p.flags?.length) throw new ConfigError('linux.personality.flags', 'personality flags are not supported (neither does runc apply them)');
  return [op('PERSONALITY', { persona }, `set personality ${p.domain}`)];
}

/**
 * The label the container's process execs into. Written as late as possible
 * (it applies at the next execve), through the container's /proc.
 */
export function planExecLabel(spec: Spec, host: HostFacts): PlanOp[] {
  const proc = spec.process;
  const ops: PlanOp[] = [];
  if (proc?.apparmorProfile) {
    if (!host.lsm?.apparmor) {
      throw new ConfigError('process.apparmorProfile', `AppArmor is not enabled on this host, so profile "${proc.apparmorProfile}" cannot be applied`);
    }
    ops.push(op('WRITE_FILE', { path: '/proc/self/attr/apparmor/exec', content: `exec ${proc.apparmorProfile}` }, `apply AppArmor profile ${proc.apparmorProfile} at exec`));
  }
  if (proc?.selinuxLabel) {
    if (!host.lsm?.selinux) throw new ConfigError('process.selinuxLabel', 'selinux label is specified in config, but selinux is disabled or not supported');
    ops.push(op('WRITE_FILE', { path: '/proc/self/attr/exec', content: proc.selinuxLabel }, `apply SELinux label ${proc.selinuxLabel} at exec`));
  }
  return ops;
}

/** SELinux mount labels need SELinux; with it, mounts carry context="...". */
export function mountLabelOption(spec: Spec, host: HostFacts): string | undefined {
  const label = spec.linux?.mountLabel;
  if (!label) return undefined;
  if (!host.lsm?.selinux) throw new ConfigError('linux.mountLabel', 'selinux mount label is specified in config, but selinux is disabled or not supported');
  return `context="${label}"`;
}

const IOPRIO_CLASS: Record<string, number> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };

/** process.ioPriority -> ioprio_set(): class << 13 | level. */
export function planIoPriority(proc: Process): PlanOp[] {
  const io = proc.ioPriority;
  if (!io) return [];
  const cls = IOPRIO_CLASS[io.class];
  if (cls === undefined) throw new ConfigError('process.ioPriority.class', `unknown class "${io.class}" (want ${Object.keys(IOPRIO_CLASS).join(', ')})`);
  const level = io.priority ?? 0;
  if (!Number.isInteger(level) || level < 0 || level > 7) throw new ConfigError('process.ioPriority.priority', `must be an integer from 0 to 7, got ${level}`);
  return [op('IOPRIO_SET', { ioprio: (cls << 13) | level }, `set the I/O priority ${io.class} ${level}`)];
}

const SCHED_POLICY: Record<string, number> = {
  SCHED_OTHER: 0,
  SCHED_FIFO: 1,
  SCHED_RR: 2,
  SCHED_BATCH: 3,
  SCHED_ISO: 4,
  SCHED_IDLE: 5,
  SCHED_DEADLINE: 6,
};
const SCHED_FLAG: Record<string, number> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01,
  SCHED_FLAG_RECLAIM: 0x02,
  SCHED_FLAG_DL_OVERRUN: 0x04,
  SCHED_FLAG_KEEP_POLICY: 0x08,
  SCHED_FLAG_KEEP_PARAMS: 0x10,
  SCHED_FLAG_UTIL_CLAMP_MIN: 0x20,
  SCHED_FLAG_UTIL_CLAMP_MAX: 0x40,
};

/** process.scheduler -> sched_setattr() on ourselves, inherited across execve. */
export function planScheduler(proc: Process): PlanOp[] {
  const s = proc.scheduler as
    | { policy?: string; nice?: number; priority?: number; flags?: string[]; runtime?: number; deadline?: number; period?: number }
    | undefined;
  if (!s) return [];
  const path = 'process.scheduler';
  const policy = s.policy === undefined ? undefined : SCHED_POLICY[s.policy];
  if (policy === undefined) throw new ConfigError(`${path}.policy`, `unknown policy "${s.policy}" (want ${Object.keys(SCHED_POLICY).join(', ')})`);
  const nice = s.nice ?? 0;
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new ConfigError(`${path}.nice`, `must be an integer from -20 to 19, got ${nice}`);
  let flags = 0;
  (s.flags ?? []).forEach((name, i) => {
    const f = SCHED_FLAG[name];
    if (f === undefined) throw new ConfigError(`${path}.flags[${i}]`, `unknown flag "${name}"`);
    flags |= f;
  });
  const num = (key: 'priority' | 'runtime' | 'deadline' | 'period') => {
    const v = s[key] ?? 0;
    if (!Number.isInteger(v) || v < 0) throw new ConfigError(`${path}.${key}`, `must be a non-negative integer, got ${v}`);
    return v;
  };
  return [
    op(
      'SCHED_SETATTR',
      { policy, flags, nice, priority: num('priority'), runtime: num('runtime'), deadline: num('deadline'), period: num('period') },
      `set scheduling policy ${s.policy}`,
    ),
  ];
}
