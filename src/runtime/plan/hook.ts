// A hook that runs in the container's namespaces (createContainer,
// startContainer): a process that joins the init's namespaces, takes the
// state on stdin, and execs the hook with its output going to a pipe.
import * as k from '../../linux/constants.js';
import type { Hook, Spec } from '../../oci/spec.js';
import { op, SYNC_TAG, type LaunchPlan, type PlanOp } from './ops.js';
import { planJoin } from './join.js';

export interface HookPlanInput {
  spec: Spec;
  initPid: number;
  hook: Hook;
  /** the environment when the hook has none: the container process's */
  defaultEnv: string[];
  fds: { sync: number; parentSync: number; stdin: number; output: number };
}

export function buildHookPlan(input: HookPlanInput): LaunchPlan {
  const { hook, fds } = input;
  const ops: PlanOp[] = [
    op('PRCTL', { option: k.PR_SET_DUMPABLE, arg2: 0, arg3: 0, arg4: 0, arg5: 0 }, 'make the runtime copy non-dumpable'),
    op('PRCTL', { option: k.PR_SET_PDEATHSIG, arg2: 9, arg3: 0, arg4: 0, arg5: 0 }, 'die with the runtime'),
    ...planJoin(input.spec, input.initPid).ops,
    op('DUP2', { oldfd: fds.stdin, newfd: 0 }, 'the state on stdin'),
    op('DUP2', { oldfd: fds.output, newfd: 1 }, 'stdout to the runtime'),
    op('DUP2', { oldfd: fds.output, newfd: 2 }, 'stderr to the runtime'),
    op('CLOSE_FDS', { first: 3 }, 'close every fd but stdio'),
    // The path resolves in the namespaces joined (the container's mounts).
    op('FIND_EXEC', { file: hook.path, path: '' }, `look up ${hook.path}`),
    op('SYNC', { tag: SYNC_TAG.READY }, 'report ready'),
    op('EXEC', { argv: hook.args?.length ? hook.args : [hook.path], envp: hook.env ?? input.defaultEnv }, `exec ${hook.path}`),
  ];
  return { cloneFlags: 0, cgroupFd: -1, syncFd: fds.sync, parentSyncFd: fds.parentSync, ops };
}
