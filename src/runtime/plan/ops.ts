// The op vocabulary of a launch plan: one entry per op the C interpreter runs
// (native-shims/plan.h holds the same table; a unit test compares them).
// Ops are syscalls, not features: planners compose them.

export type FieldType = 'u' | 's' | 'v' | 'a';

export const OP_TABLE = {
  SETNS: { code: 1, fields: [['path', 's'], ['nstype', 'u']] },
  UNSHARE: { code: 2, fields: [['flags', 'u']] },
  SYNC: { code: 3, fields: [['tag', 'u']] },
  FORK: { code: 4, fields: [] },
  OPEN_ROOT: { code: 5, fields: [['path', 's']] },
  OPEN_PROC: { code: 6, fields: [['path', 's']] },
  MOUNT: {
    code: 7,
    fields: [['source', 's'], ['target', 's'], ['flags', 'u'], ['fstype', 's'], ['data', 's'], ['pflags', 'u'], ['guard', 's']],
  },
  REMOUNT: { code: 8, fields: [['target', 's'], ['flags', 'u'], ['pflags', 'u']] },
  MOUNT_SETATTR: { code: 9, fields: [['target', 's'], ['set', 'u'], ['clear', 'u'], ['propagation', 'u'], ['pflags', 'u']] },
  MKDIR: { code: 10, fields: [['path', 's'], ['mode', 'u'], ['pflags', 'u']] },
  MKNOD: { code: 11, fields: [['path', 's'], ['mode', 'u'], ['dev', 'u'], ['uid', 'u'], ['gid', 'u']] },
  SYMLINK: { code: 12, fields: [['target', 's'], ['path', 's']] },
  UNLINK: { code: 13, fields: [['path', 's']] },
  PIVOT_ROOT: { code: 14, fields: [] },
  MOVE_ROOT: { code: 15, fields: [] },
  CHROOT: { code: 16, fields: [] },
  SETHOSTNAME: { code: 17, fields: [['name', 's']] },
  SETDOMAINNAME: { code: 18, fields: [['name', 's']] },
  CONSOLE: { code: 19, fields: [['socket', 'u'], ['rows', 'u'], ['cols', 'u']] },
  SETSID: { code: 20, fields: [] },
  SETRLIMIT: { code: 21, fields: [['resource', 'u'], ['soft', 'u'], ['hard', 'u']] },
  PRCTL: { code: 22, fields: [['option', 'u'], ['arg2', 'u'], ['arg3', 'u'], ['arg4', 'u'], ['arg5', 'u']] },
  CAPSET: { code: 23, fields: [['effective', 'u'], ['permitted', 'u'], ['inheritable', 'u']] },
  SETGROUPS: { code: 24, fields: [['gids', 'a']] },
  SETRESGID: { code: 25, fields: [['gid', 'u']] },
  SETRESUID: { code: 26, fields: [['uid', 'u']] },
  UMASK: { code: 27, fields: [['mask', 'u']] },
  CHDIR: { code: 28, fields: [['path', 's'], ['pflags', 'u']] },
  KEYRING: { code: 29, fields: [['name', 's'], ['perm', 'u']] },
  CLOSE_FDS: { code: 30, fields: [['first', 'u']] },
  REOPEN_DEVNULL: { code: 31, fields: [] },
  MASK_PATH: { code: 32, fields: [['path', 's']] },
  EXEC_FIFO: { code: 33, fields: [['fd', 'u']] },
  FIND_EXEC: { code: 34, fields: [['file', 's'], ['path', 's']] },
  EXEC: { code: 35, fields: [['argv', 'v'], ['envp', 'v']] },
  WRITE_FILE: { code: 36, fields: [['path', 's'], ['content', 's']] },
  UMOUNT: { code: 37, fields: [['path', 's'], ['flags', 'u']] },
  SECCOMP: { code: 38, fields: [['flags', 'u'], ['filter', 'a']] },
  DUP2: { code: 39, fields: [['oldfd', 'u'], ['newfd', 'u']] },
  PERSONALITY: { code: 40, fields: [['persona', 'u']] },
  IOPRIO_SET: { code: 41, fields: [['ioprio', 'u']] },
  SCHED_SETATTR: { code: 42, fields: [['policy', 'u'], ['flags', 'u'], ['nice', 'u'], ['priority', 'u'], ['runtime', 'u'], ['deadline', 'u'], ['period', 'u']] },
} as const satisfies Record<string, { code: number; fields: readonly (readonly [string, FieldType])[] }>;

export type OpName = keyof typeof OP_TABLE;

type ValueOf<T extends FieldType> = T extends 'u' ? number | bigint : T extends 's' ? string : T extends 'v' ? readonly string[] : readonly (number | bigint)[];

export type OpArgs<K extends OpName> = {
  [F in (typeof OP_TABLE)[K]['fields'][number] as F[0]]: ValueOf<F[1]>;
};

/** Errors an op may meet without failing the plan (plan.h TSR_OPF_*). */
export const IGNORE = { ENOENT: 0x1, EEXIST: 0x2, EPERM: 0x4, EINVAL: 0x8, ENOSYS: 0x10 } as const;

/** Path flags (plan.h TSR_P_*). */
export const P = {
  HOST: 0x1,
  MKDIR: 0x2,
  MKFILE: 0x4,
  NO_SYMLINKS: 0x8,
  SRC_IN_ROOT: 0x10,
  SRC_OPEN: 0x20,
  TMPFS_MODE: 0x40,
  KEEP_LOCKED: 0x80,
  CHECK_INSIDE: 0x100,
  RECURSIVE: 0x200,
  DEVNULL_SRC: 0x400,
} as const;

/** Tags of SYNC ops: what the parent does while the child waits. */
export const SYNC_TAG = {
  /** write uid_map/gid_map of the child's new user namespace */
  USERMAP: 1,
  /** the child is set up; the parent records the container before it waits on the exec fifo */
  READY: 2,
  /** write /proc/PID/timens_offsets before the fork enters the time namespace */
  TIMENS: 3,
  /** mounts done, pivot_root next: run the prestart, createRuntime and createContainer hooks */
  HOOKS: 4,
} as const;

export interface PlanOpOf<K extends OpName> {
  name: K;
  args: OpArgs<K>;
  /** ignored errors (IGNORE bits) */
  ignore: number;
  /** what the op does, in words, for errors and --debug */
  describe: string;
  /** advice added to the error when the op fails with EACCES or EPERM */
  hint?: string;
}

/** Any op of the table (a union, so each op keeps its own argument types). */
export type PlanOp = { [K in OpName]: PlanOpOf<K> }[OpName];

/** A launch plan: how to clone the child and what it runs, in order. */
export interface LaunchPlan {
  cloneFlags: number;
  /** fd of the cgroup the child is born in (CLONE_INTO_CGROUP), or -1 */
  cgroupFd: number;
  syncFd: number;
  parentSyncFd: number;
  ops: PlanOp[];
}

export function op<K extends OpName>(name: K, args: OpArgs<K>, describe: string, ignore = 0): PlanOpOf<K> {
  return { name, args, ignore, describe } as PlanOpOf<K>;
}
