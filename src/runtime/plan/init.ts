// Spec -> LaunchPlan for a container's init process, in runc's order:
// namespaces, session, keyring, rootfs, console, hostname, limits, identity,
// cwd, ready, exec fifo, exec.
import * as k from '../../linux/constants.js';
import { op, IGNORE, SYNC_TAG, type LaunchPlan, type PlanOp } from './ops.js';
import { planNamespaces } from './namespaces.js';
import { planRootfs } from './rootfs.js';
import { planIdentity, planRlimits, planExec, planCloseFds, planMakeCwd, planChdir, planStdio, pathOf } from './process.js';
import type { InitPlanInput } from './context.js';
import { checkSupported } from './support.js';
import { planSysctls, planOomScoreAdj, planPersonality, planExecLabel, planScheduler, planIoPriority } from './security.js';
import { planSeccomp } from '../seccomp/index.js';

// Session keyring permissions runc adds: search for the owner, or for other
// users inside a user namespace.
const KEY_POS_SEARCH_USR = 0x80000;
const KEY_POS_SEARCH_OTH = 0x8;

export function buildInitPlan(input: InitPlanInput): LaunchPlan {
  const { spec, fds } = input;
  checkSupported(spec);
  const seccomp = planSeccomp(spec, input.log);
  const proc = spec.process!;
  const ns = planNamespaces(spec);
  const ops: PlanOp[] = [
    // Until execve we are a copy of the runtime: no process may open our
    // /proc/PID/exe or memory (CVE-2019-5736). execve makes us dumpable again.
    op('PRCTL', { option: k.PR_SET_DUMPABLE, arg2: 0, arg3: 0, arg4: 0, arg5: 0 }, 'make the runtime copy non-dumpable'),
    // Die with the runtime while it still owns our setup.
    op('PRCTL', { option: k.PR_SET_PDEATHSIG, arg2: 9, arg3: 0, arg4: 0, arg5: 0 }, 'die with the runtime during setup'),
    ...ns.ops,
    op('SETSID', {}, 'start a new session', IGNORE.EPERM),
    // Through the host's /proc while we still hold every capability.
    ...planOomScoreAdj(spec),
  ];
  if (!input.noNewKeyring) {
    ops.push(
      op(
        'KEYRING',
        { name: `_ses.${input.id}`, perm: ns.inUserNs ? KEY_POS_SEARCH_OTH : KEY_POS_SEARCH_USR },
        'join a session keyring of our own',
        IGNORE.ENOSYS,
      ),
    );
  }

  const rootfs = planRootfs(input, ns);
  ops.push(...rootfs.prepare);
  // Before the read-only paths cover /proc/sys.
  ops.push(...planSysctls(spec, input.rootfs));
  // prestart, createRuntime and createContainer hooks run here: the container
  // exists with its mounts, and pivot_root has not happened yet.
  if (['prestart', 'createRuntime', 'createContainer'].some((k) => spec.hooks?.[k as 'prestart']?.length)) {
    ops.push(op('SYNC', { tag: SYNC_TAG.HOOKS }, 'wait for the prestart, createRuntime and createContainer hooks'));
  }
  ops.push(...rootfs.protect, ...rootfs.enter);
  ops.push(planMakeCwd(proc));
  if (proc.terminal) {
    const size = proc.consoleSize;
    ops.push(op('CONSOLE', { socket: fds.console, rows: size?.height ?? 0, cols: size?.width ?? 0 }, 'create the pty and send its master to the console socket'));
  }
  ops.push(...rootfs.finalize);
  ops.push(op('UMASK', { mask: proc.user.umask ?? 0o022 }, `set umask ${(proc.user.umask ?? 0o022).toString(8).padStart(4, '0')}`));
  if (spec.hostname) ops.push(op('SETHOSTNAME', { name: spec.hostname }, `set hostname ${spec.hostname}`));
  if (spec.domainname) ops.push(op('SETDOMAINNAME', { name: spec.domainname }, `set domainname ${spec.domainname}`));
  ops.push(...planPersonality(spec));
  if (proc.noNewPrivileges) ops.push(op('PRCTL', { option: k.PR_SET_NO_NEW_PRIVS, arg2: 1, arg3: 0, arg4: 0, arg5: 0 }, 'set no_new_privs'));
  ops.push(...planRlimits(proc));
  // Real-time policies and I/O classes need CAP_SYS_NICE/ADMIN: before the identity ops.
  ops.push(...planScheduler(proc), ...planIoPriority(proc));

  // A rootless runtime denies setgroups in the user namespace it creates.
  const setgroupsAllowed = !(ns.newUserNs && input.host.euid !== 0);
  if (!proc.terminal) ops.push(...planStdio(fds.stdio));
  ops.push(planCloseFds(input.preserveFds));
  // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN: before
  // the identity ops drop it (runc's order).
  if (seccomp && !proc.noNewPrivileges) ops.push(seccomp);
  ops.push(...planIdentity(proc, input.host.capLastCap, setgroupsAllowed));
  ops.push(planChdir(proc));
  ops.push(...planExecLabel(spec, input.host));
  const env = [...(proc.env ?? []), ...input.env];
  ops.push(op('FIND_EXEC', { file: proc.args![0]!, path: pathOf(env) }, `look up ${proc.args![0]}`));
  ops.push(op('PRCTL', { option: k.PR_SET_PDEATHSIG, arg2: 0, arg3: 0, arg4: 0, arg5: 0 }, 'outlive the runtime from here on'));
  // With no_new_privs, as late as possible so the profile meets few runtime
  // syscalls, yet before READY: the parent still listens for a notify fd.
  if (seccomp && proc.noNewPrivileges) ops.push(seccomp);
  ops.push(op('SYNC', { tag: SYNC_TAG.READY }, 'report ready'));
  ops.push(...planExec(proc, env, fds.fifo));

  return { cloneFlags: ns.cloneFlags, cgroupFd: fds.cgroup, syncFd: fds.sync, parentSyncFd: fds.parentSync, ops };
}
