// A new container's cgroup, made ready before its init is cloned into it
// (CLONE_INTO_CGROUP), so the init is born limited: validate the resources,
// create the directory, make the controllers available, write the limits,
// load the device filter.
import { closeSync } from 'node:fs';
import type { MountInfo } from '../../linux/mountinfo.js';
import type { Spec } from '../../oci/spec.js';
import { ConfigError } from '../../oci/validate.js';
import { cgroupLayout } from './mode.js';
import { cgroupDirFor, checkCgroupsPath, createCgroup, ownCgroupV2, removeCgroup } from './placement.js';
import { enableControllers } from './controllers.js';
import { applyResources, checkHostResources, planResources } from './resources.js';
import { ownV1Cgroups, setupV1Cgroups, v1Dirs, v1Hierarchies, withoutV1, type V1Cgroup } from './v1.js';

export interface ContainerCgroup {
  dir: string;
  /** O_DIRECTORY fd for CLONE_INTO_CGROUP; the caller closes it */
  fd: number;
  /** the highest directory this setup created (removed again on delete), if any */
  createdTop: string | undefined;
  /** on a hybrid host: its directories in the v1 hierarchies, to join with the init's pid (v1.ts) */
  v1: V1Cgroup[];
}

export interface SetupOptions {
  id: string;
  spec: Spec;
  mounts: MountInfo[];
  euid: number;
  log?: (msg: string) => void;
}

/** Joining another container's pid namespace means sharing its cgroup (a pod's sidecar). */
export function sharesCgroup(spec: Spec): boolean {
  return spec.linux?.namespaces?.some((n) => n.type === 'pid' && n.path) ?? false;
}

/**
 * Sets up the container's cgroup; undefined on a host without cgroup v2
 * (where any real limit is refused). Leaves nothing behind when it fails.
 */
export function setupContainerCgroup(o: SetupOptions): ContainerCgroup | undefined {
  const linux = o.spec.linux ?? {};
  // Pure checks first: nothing is created for a config that is refused.
  const plan = planResources(linux.resources, { devices: true, devicePaths: (linux.devices ?? []).map((d) => d.path) });
  checkCgroupsPath(linux.cgroupsPath);
  checkHostResources(plan);
  const layout = cgroupLayout(o.mounts);
  if (!layout.unifiedMount) {
    const needed = plan.writes.find((w) => !w.isDefault);
    if (needed) throw new ConfigError(needed.path, `needs cgroup v2, and this host has no cgroup2 mount (cgroup mode: ${layout.mode})`);
    o.log?.('no cgroup2 mount: the container gets no cgroup of its own and no device filter');
    return undefined;
  }
  const dir = cgroupDirFor(layout.unifiedMount, linux.cgroupsPath, o.id, ownCgroupV2());
  // Hybrid: what v1 hierarchies hold is limited there (as runc does), the rest in cgroup v2.
  const hierarchies = layout.mode === 'hybrid' ? v1Hierarchies(o.mounts) : [];
  const cg = createCgroup(dir, sharesCgroup(o.spec));
  let v1: V1Cgroup[] = [];
  try {
    enableControllers(layout.unifiedMount, dir);
    applyResources(dir, withoutV1(plan, hierarchies.flatMap((h) => h.controllers)), {
      cgroupFd: cg.fd,
      rootless: o.euid !== 0,
      ...(o.log ? { log: o.log } : {}),
    });
    if (hierarchies.length) v1 = setupV1Cgroups(v1Dirs(hierarchies, linux.cgroupsPath, o.id, ownV1Cgroups()), linux.resources, o.log);
  } catch (e) {
    closeSync(cg.fd);
    if (cg.createdTop) {
      try {
        removeCgroup(dir, cg.createdTop);
      } catch (e2) {
        o.log?.(`cleanup after a failed cgroup setup: ${(e2 as Error).message}`);
      }
    }
    throw e;
  }
  return { dir, fd: cg.fd, createdTop: cg.createdTop, v1 };
}
