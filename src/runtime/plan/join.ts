// Entering a running container: setns into every namespace its init has
// (the user namespace first: it decides what we may join; the mount namespace
// last: it changes how the other /proc paths resolve), then a fork, since a
// joined pid namespace only applies to children (a joined time namespace
// applies at once).
import type { NamespaceType, Spec } from '../../oci/spec.js';
import { op, type PlanOp } from './ops.js';
import { NS_CLONE_FLAG, NS_PROC_NAME } from './namespaces.js';

const ORDER: Record<NamespaceType, number> = { user: 0, pid: 1, network: 1, ipc: 1, uts: 1, cgroup: 1, time: 1, mount: 2 };

/** The namespaces a container has (made or joined), as the spec lists them. */
export function containerNamespaces(spec: Spec): NamespaceType[] {
  return (spec.linux?.namespaces ?? []).map((n) => n.type).sort((a, b) => ORDER[a] - ORDER[b]);
}

/**
 * Ops that move a fresh child into the namespaces of process `pid` (the
 * container's init). The ops end with a FORK when the pid namespace is
 * joined: the process that carries on is then a new child of the runtime.
 */
export function planJoin(spec: Spec, pid: number): { ops: PlanOp[]; forks: boolean } {
  const types = containerNamespaces(spec);
  const ops: PlanOp[] = types.map((t) =>
    op('SETNS', { path: `/proc/${pid}/ns/${NS_PROC_NAME[t]}`, nstype: NS_CLONE_FLAG[t] }, `join the container's ${t} namespace`),
  );
  const forks = types.includes('pid');
  if (forks) ops.push(op('FORK', {}, 'fork into the container pid namespace'));
  return { ops, forks };
}
