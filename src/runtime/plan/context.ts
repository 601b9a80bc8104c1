// What a planner needs besides the spec: facts about the host, and the fds
// the parent opened for this launch. Everything here is plain data, so unit
// tests build plans without root.
import type { MountInfo } from '../../linux/mountinfo.js';
import type { CgroupMode } from '../cgroups/mode.js';
import type { Spec } from '../../oci/spec.js';
import type { Logger } from '../log.js';

export interface HostFacts {
  /** /proc/sys/kernel/cap_last_cap */
  capLastCap: number;
  /** the runtime's /proc/self/mountinfo */
  mounts: MountInfo[];
  /** /proc/kcore exists (then /dev/core links to it) */
  procKcore: boolean;
  cgroupMode: CgroupMode;
  /** the runtime's effective uid (0 unless rootless) */
  euid: number;
  /** which Linux security modules can label a process (absent: none) */
  lsm?: LsmFacts;
}

export interface LsmFacts {
  apparmor: boolean;
  selinux: boolean;
}

export interface LaunchFds {
  /** the child's end of the sync socket */
  sync: number;
  /** the parent's end, closed in the child */
  parentSync: number;
  /** cgroup directory for CLONE_INTO_CGROUP, or -1 */
  cgroup: number;
  /** O_PATH fd of the exec fifo, or -1 (then the child execs right after READY) */
  fifo: number;
  /** socket that receives the pty master when process.terminal is set, or -1 */
  console: number;
  /** fds that become 0, 1 and 2 (absent, or -1 for one: the parent's stays) */
  stdio?: StdioFds | undefined;
}

export interface StdioFds {
  stdin: number;
  stdout: number;
  stderr: number;
}

export interface InitPlanInput {
  id: string;
  spec: Spec;
  /** absolute host path of the root filesystem */
  rootfs: string;
  /** absolute host path of the bundle (relative bind sources are resolved against it) */
  bundle: string;
  host: HostFacts;
  /** host path of the container's cgroup v2 directory, if it has one */
  cgroupDir: string | undefined;
  fds: LaunchFds;
  noPivot: boolean;
  noNewKeyring: boolean;
  preserveFds: number;
  /** container-side environment additions (HOME) computed by the caller */
  env: string[];
  /** where planners report what they decided (seccomp: skipped syscall names) */
  log?: Logger;
}
