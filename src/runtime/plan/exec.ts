// Spec + process -> LaunchPlan for a process started in a running container
// (`exec`): the same pipeline as the init, entering the container's
// namespaces instead of making them.
import * as k from '../../linux/constants.js';
import type { Process, Spec } from '../../oci/spec.js';
import { op, IGNORE, SYNC_TAG, type LaunchPlan, type PlanOp } from './ops.js';
import { planJoin } from './join.js';
import { planIdentity, planRlimits, planExec, planCloseFds, planChdir, planStdio, pathOf } from './process.js';
import type { HostFacts, StdioFds } from './context.js';
import { planExecLabel, planScheduler, planIoPriority } from './security.js';

export interface ExecPlanInput {
  /** the container's config: which namespaces to join */
  spec: Spec;
  /** the process to start */
  process: Process;
  /** the container's init, whose namespaces are joined */
  initPid: number;
  host: HostFacts;
  fds: { sync: number; parentSync: number; cgroup: number; console: number; stdio?: StdioFds | undefined };
  preserveFds: number;
  /** environment additions (HOME) computed by the caller */
  env: string[];
  /** ops that install the container's seccomp filter, if it has one */
  seccomp?: (proc: Process) => PlanOp[];
}

export function buildExecPlan(input: ExecPlanInput): LaunchPlan {
  const proc = input.process;
  const join = planJoin(input.spec, input.initPid);
  const ops: PlanOp[] = [
    // Before entering: until execve we are a copy of the runtime, and a
    // container process must not reach our /proc/PID/exe (CVE-2019-5736).
    op('PRCTL', { option: k.PR_SET_DUMPABLE, arg2: 0, arg3: 0, arg4: 0, arg5: 0 }, 'make the runtime copy non-dumpable'),
    op('PRCTL', { option: k.PR_SET_PDEATHSIG, arg2: 9, arg3: 0, arg4: 0, arg5: 0 }, 'die with the runtime during setup'),
    ...join.ops,
    op('SETSID', {}, 'start a new session', IGNORE.EPERM),
    // The mount namespace's root is the container's root now.
    op('OPEN_ROOT', { path: '/' }, "open the container's root"),
  ];
  if (proc.terminal) {
    const size = proc.consoleSize;
    ops.push(op('CONSOLE', { socket: input.fds.console, rows: size?.height ?? 0, cols: size?.width ?? 0 }, 'create the pty and send its master to the console socket'));
  }
  ops.push(op('UMASK', { mask: proc.user.umask ?? 0o022 }, `set umask ${(proc.user.umask ?? 0o022).toString(8).padStart(4, '0')}`));
  if (proc.noNewPrivileges) ops.push(op('PRCTL', { option: k.PR_SET_NO_NEW_PRIVS, arg2: 1, arg3: 0, arg4: 0, arg5: 0 }, 'set no_new_privs'));
  ops.push(...planRlimits(proc), ...planScheduler(proc), ...planIoPriority(proc));
  // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: before the
  // capabilities are dropped; with it, as late as possible (runc's order).
  const seccomp = input.seccomp?.(proc) ?? [];
  if (!proc.terminal) ops.push(...planStdio(input.fds.stdio));
  ops.push(planCloseFds(input.preserveFds));
  if (!proc.noNewPrivileges) ops.push(...seccomp);
  // A rootless runtime's user namespace has setgroups denied.
  const userNs = input.spec.linux?.namespaces?.some((n) => n.type === 'user') ?? false;
  ops.push(...planIdentity(proc, input.host.capLastCap, !(userNs && input.host.euid !== 0)));
  ops.push(planChdir(proc));
  ops.push(...planExecLabel({ ...input.spec, process: proc }, input.host));
  const env = [...(proc.env ?? []), ...input.env];
  ops.push(op('FIND_EXEC', { file: proc.args![0]!, path: pathOf(env) }, `look up ${proc.args![0]}`));
  ops.push(op('PRCTL', { option: k.PR_SET_PDEATHSIG, arg2: 0, arg3: 0, arg4: 0, arg5: 0 }, 'outlive the runtime from here on'));
  if (proc.noNewPrivileges) ops.push(...seccomp);
  ops.push(op('SYNC', { tag: SYNC_TAG.READY }, 'report ready'));
  ops.push(...planExec(proc, env, -1));
  return { cloneFlags: 0, cgroupFd: input.fds.cgroup, syncFd: input.fds.sync, parentSyncFd: input.fds.parentSync, ops };
}
