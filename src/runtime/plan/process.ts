// The container process: identity, capabilities, limits, working directory,
// and the exec itself.
import * as k from '../../linux/constants.js';
import { CAPABILITIES } from '../../linux/capabilities.js';
import { RLIMIT_TYPES } from '../../oci/validate.js';
import type { Process, Capabilities } from '../../oci/spec.js';
import type { StdioFds } from './context.js';
import { op, IGNORE, P, type PlanOp } from './ops.js';

export function capMask(names: readonly string[] | undefined): bigint {
  let mask = 0n;
  for (const n of names ?? []) mask |= 1n << BigInt(CAPABILITIES[n.toUpperCase()]!);
  return mask;
}

/** Drops from the bounding set every capability it does not list. */
export function planBoundingSet(caps: Capabilities | undefined, lastCap: number): PlanOp[] {
  const keep = capMask(caps?.bounding);
  const ops: PlanOp[] = [];
  const names = Object.entries(CAPABILITIES);
  for (let cap = 0; cap <= lastCap; cap++) {
    if (keep & (1n << BigInt(cap))) continue;
    const name = names.find(([, v]) => v === cap)?.[0] ?? `capability ${cap}`;
    ops.push(op('PRCTL', { option: k.PR_CAPBSET_DROP, arg2: cap, arg3: 0, arg4: 0, arg5: 0 }, `drop ${name} from the bounding set`));
  }
  return ops;
}

/**
 * uid, gid and groups, then the capability sets. The bounding set is dropped
 * first, while we still hold CAP_SETPCAP; KEEPCAPS carries the permitted set
 * across the uid change. Inheritable is set only when the spec asks
 * (CVE-2022-29162). Ambient raises need the cap in permitted and inheritable,
 * so a raise the kernel refuses is skipped as runc does.
 */
export function planIdentity(proc: Process, lastCap: number, setgroupsAllowed: boolean): PlanOp[] {
  const caps = proc.capabilities;
  const { uid, gid } = proc.user;
  const ops: PlanOp[] = [...planBoundingSet(caps, lastCap)];
  ops.push(op('PRCTL', { option: k.PR_SET_KEEPCAPS, arg2: 1, arg3: 0, arg4: 0, arg5: 0 }, 'keep capabilities across the uid change'));
  if (setgroupsAllowed) {
    const groups = proc.user.additionalGids ?? [];
    ops.push(op('SETGROUPS', { gids: groups }, groups.length ? `set supplementary groups ${groups.join(',')}` : 'clear supplementary groups'));
  }
  ops.push(op('SETRESGID', { gid }, `set gid ${gid}`), op('SETRESUID', { uid }, `set uid ${uid}`));
  ops.push(op('PRCTL', { option: k.PR_SET_KEEPCAPS, arg2: 0, arg3: 0, arg4: 0, arg5: 0 }, 'stop keeping capabilities'));
  ops.push(
    op(
      'CAPSET',
      { effective: capMask(caps?.effective), permitted: capMask(caps?.permitted), inheritable: capMask(caps?.inheritable) },
      'set the effective, permitted and inheritable capabilities',
    ),
  );
  for (const name of caps?.ambient ?? []) {
    const cap = CAPABILITIES[name.toUpperCase()]!;
    ops.push(
      op('PRCTL', { option: k.PR_CAP_AMBIENT, arg2: k.PR_CAP_AMBIENT_RAISE, arg3: cap, arg4: 0, arg5: 0 }, `raise ${name.toUpperCase()} in the ambient set`, IGNORE.EPERM | IGNORE.EINVAL),
    );
  }
  return ops;
}

export function planRlimits(proc: Process): PlanOp[] {
  return (proc.rlimits ?? []).map((r) =>
    op('SETRLIMIT', { resource: RLIMIT_TYPES[r.type]!, soft: BigInt(r.soft), hard: BigInt(r.hard) }, `set ${r.type} to ${r.soft}:${r.hard}`),
  );
}

export function pathOf(env: readonly string[]): string {
  for (let i = env.length - 1; i >= 0; i--) if (env[i]!.startsWith('PATH=')) return env[i]!.slice(5);
  return '';
}

/** The given fds become stdio (before CLOSE_FDS clears their close-on-exec). */
export function planStdio(stdio: StdioFds | undefined): PlanOp[] {
  if (!stdio) return [];
  const names = ['stdin', 'stdout', 'stderr'] as const;
  return names.flatMap((name, i) => (stdio[name] >= 0 ? [op('DUP2', { oldfd: stdio[name], newfd: i }, `set up ${name}`)] : []));
}

/**
 * Every fd but stdio and the preserved ones becomes close-on-exec. Planned
 * before a seccomp filter is installed (a profile may not allow close_range),
 * after the last fd we open without O_CLOEXEC.
 */
export function planCloseFds(preserveFds: number): PlanOp {
  return op('CLOSE_FDS', { first: 3 + preserveFds }, preserveFds ? `close every fd but stdio and ${preserveFds} preserved at exec` : 'close every fd but stdio at exec');
}

/** The last ops: the exec fifo (create/start), then execve. */
export function planExec(proc: Process, env: string[], fifoFd: number): PlanOp[] {
  const args = proc.args!;
  const ops: PlanOp[] = [];
  if (fifoFd >= 0) ops.push(op('EXEC_FIFO', { fd: fifoFd }, 'wait for `start` on the exec fifo'));
  ops.push(op('EXEC', { argv: args, envp: env }, `exec ${args[0]}`));
  return ops;
}

/** The cwd is created as root, before the uid change (as runc does). */
export function planMakeCwd(proc: Process): PlanOp {
  return op('MKDIR', { path: proc.cwd, mode: 0o755, pflags: 0 }, `create the working directory ${proc.cwd}`);
}

/** chdir as the container user, checking the cwd is inside the container (CVE-2024-21626). */
export function planChdir(proc: Process): PlanOp {
  return op('CHDIR', { path: proc.cwd, pflags: P.CHECK_INSIDE }, `change to the working directory ${proc.cwd}`);
}
