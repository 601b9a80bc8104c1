// Namespaces: created by clone3 flags when nothing is joined (the fast path),
// else joined with setns and created with unshare in the child, with a fork
// where a pid or time namespace only applies to children.
import * as k from '../../linux/constants.js';
import type { Namespace, NamespaceType, Spec } from '../../oci/spec.js';
import { op, SYNC_TAG, IGNORE, type PlanOp } from './ops.js';

export const NS_CLONE_FLAG: Readonly<Record<NamespaceType, number>> = {
  pid: k.CLONE_NEWPID,
  network: k.CLONE_NEWNET,
  mount: k.CLONE_NEWNS,
  ipc: k.CLONE_NEWIPC,
  uts: k.CLONE_NEWUTS,
  user: k.CLONE_NEWUSER,
  cgroup: k.CLONE_NEWCGROUP,
  time: k.CLONE_NEWTIME,
};

/** The name of each namespace under /proc/PID/ns/. */
export const NS_PROC_NAME: Readonly<Record<NamespaceType, string>> = {
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
};

export interface NamespacePlan {
  cloneFlags: number;
  ops: PlanOp[];
  /** the container gets a new user namespace (the parent writes its maps) */
  newUserNs: boolean;
  /** the container is in a user namespace, new or joined */
  inUserNs: boolean;
  /** the init is a grandchild: the parent learns its pid from a PID message */
  forks: boolean;
}

function becomeRoot(): PlanOp[] {
  // In a fresh or joined user namespace we are not yet root by uid, so files
  // we create would have an unmapped owner. A mapping without 0 keeps us as we are.
  return [
    op('SETRESGID', { gid: 0 }, 'become gid 0 in the user namespace', IGNORE.EINVAL),
    op('SETRESUID', { uid: 0 }, 'become uid 0 in the user namespace', IGNORE.EINVAL),
  ];
}

export function planNamespaces(spec: Spec): NamespacePlan {
  const namespaces: Namespace[] = spec.linux?.namespaces ?? [];
  const joined = namespaces.filter((n) => n.path);
  const created = namespaces.filter((n) => !n.path);
  const has = (list: Namespace[], t: NamespaceType) => list.some((n) => n.type === t);
  const timeOffsets = spec.linux?.timeOffsets && Object.keys(spec.linux.timeOffsets).length > 0;
  const newUserNs = has(created, 'user');
  const inUserNs = has(namespaces, 'user');

  if (joined.length === 0 && !timeOffsets) {
    const cloneFlags = created.reduce((f, n) => f | NS_CLONE_FLAG[n.type], 0);
    const ops = newUserNs ? [op('SYNC', { tag: SYNC_TAG.USERMAP }, 'wait for the uid and gid maps'), ...becomeRoot()] : [];
    return { cloneFlags, ops, newUserNs, inUserNs, forks: false };
  }

  const ops: PlanOp[] = [];
  // The user namespace first (it decides what we may join next), the mount
  // namespace last (joining it changes how the other paths resolve).
  const order = (n: Namespace) => (n.type === 'user' ? 0 : n.type === 'mount' ? 2 : 1);
  for (const n of [...joined].sort((a, b) => order(a) - order(b))) {
    ops.push(op('SETNS', { path: n.path!, nstype: NS_CLONE_FLAG[n.type] }, `join ${n.type} namespace ${n.path}`));
    if (n.type === 'user') ops.push(...becomeRoot());
  }
  if (newUserNs) {
    ops.push(op('UNSHARE', { flags: k.CLONE_NEWUSER }, 'create a user namespace'));
    ops.push(op('SYNC', { tag: SYNC_TAG.USERMAP }, 'wait for the uid and gid maps'));
    ops.push(...becomeRoot());
  }
  const rest = created.filter((n) => n.type !== 'user');
  const restFlags = rest.reduce((f, n) => f | NS_CLONE_FLAG[n.type], 0);
  if (restFlags) ops.push(op('UNSHARE', { flags: restFlags }, `create ${rest.map((n) => n.type).join(', ')} namespaces`));
  if (timeOffsets && has(created, 'time')) {
    ops.push(op('SYNC', { tag: SYNC_TAG.TIMENS }, 'wait for the time namespace offsets'));
  }
  const forks = has(namespaces, 'pid') || has(created, 'time');
  if (forks) ops.push(op('FORK', {}, 'fork into the pid and time namespaces'));
  return { cloneFlags: 0, ops, newUserNs, inUserNs, forks };
}
