// OOM kills in a task's cgroup, for /tasks/oom (dockerd sets OOMKilled from
// it). cgroup v2: memory.events oom_kill, watched with inotify as containerd's
// v2 monitor does. Hybrid hosts limit memory in the v1 hierarchy, whose
// memory.oom_control counts oom_kill too; it is read when a process of the
// task exits, which is when a kill there becomes visible to a client.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { oomKillCount } from '../runtime/cgroups/stats.js';
import { v1DirOf } from '../runtime/cgroups/v1.js';
import type { ContainerRecord } from '../runtime/state.js';

/** OOM kills so far in the container's memory cgroup (0 without a memory controller). */
export function oomKills(rec: ContainerRecord): bigint {
  try {
    const v2 = rec.cgroupDir ? oomKillCount(rec.cgroupDir) : undefined;
    if (v2 !== undefined) return v2;
  } catch {
    /* the cgroup is gone */
  }
  const v1 = rec.cgroupV1 ? v1DirOf(rec.cgroupV1, 'memory') : undefined;
  if (!v1) return 0n;
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(v1, 'memory.oom_control'), 'utf8'));
    return m ? BigInt(m[1]!) : 0n;
  } catch {
    return 0n;
  }
}

/** Calls `onChange` whenever memory.events changes (cgroup v2 only); returns the stop. */
export function watchMemoryEvents(rec: ContainerRecord, onChange: () => void): () => void {
  if (!rec.cgroupDir) return () => {};
  let w: FSWatcher;
  try {
    w = watch(join(rec.cgroupDir, 'memory.events'), { persistent: false }, onChange);
  } catch {
    return () => {}; // no memory controller in this cgroup
  }
  w.on('error', () => w.close()); // the cgroup went away
  return () => w.close();
}
