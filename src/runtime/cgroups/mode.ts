// Which cgroup layout the host has, read from mountinfo (never assumed).
import type { MountInfo } from '../../linux/mountinfo.js';

/**
 * unified: cgroup2 alone at /sys/fs/cgroup; hybrid: v1 controllers plus a
 * cgroup2 mount elsewhere (often /sys/fs/cgroup/unified); legacy: v1 only.
 */
export type CgroupMode = 'unified' | 'hybrid' | 'legacy' | 'none';

export interface CgroupLayout {
  mode: CgroupMode;
  /** where cgroup2 is mounted, if it is */
  unifiedMount: string | undefined;
}

export function cgroupLayout(mounts: MountInfo[]): CgroupLayout {
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const v1 = mounts.some((m) => m.fsType === 'cgroup');
  const preferred = v2.find((m) => m.mountPoint === '/sys/fs/cgroup') ?? v2.find((m) => m.root === '/') ?? v2[0];
  const unifiedMount = preferred?.mountPoint;
  if (unifiedMount && !v1) return { mode: 'unified', unifiedMount };
  if (unifiedMount) return { mode: 'hybrid', unifiedMount };
  return { mode: v1 ? 'legacy' : 'none', unifiedMount: undefined };
}
