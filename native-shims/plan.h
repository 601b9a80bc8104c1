/*
 * The launch-plan buffer format, shared with src/runtime/plan/encode.ts.
 *
 * A plan is a header followed by ops. Every op is a small header followed by
 * its fields, in the order its schema string gives:
 *   'u'  u64, little-endian (also carries signed values, two's complement)
 *   's'  u32 byte length, u32 zero, the bytes, a NUL, zero padding to 8
 *   'v'  u32 count, u32 zero, then count 's' fields (argv, envp)
 *   'a'  u32 count, u32 zero, then count u64 values
 * Everything is 8-byte aligned, there are no pointers, and the child never
 * allocates to read it. The parent validates the whole buffer before clone.
 */
#ifndef TSR_PLAN_H
#define TSR_PLAN_H

#include <stdint.h>

#define TSR_PLAN_MAGIC 0x31505354u /* "TSP1" */
#define TSR_MAX_FIELDS 8

struct tsr_plan_header {
	uint32_t magic;
	uint32_t op_count;
	uint64_t clone_flags;   /* CLONE_NEW* given to clone3 */
	int32_t cgroup_fd;      /* >= 0: CLONE_INTO_CGROUP */
	int32_t sync_fd;        /* the child's end of the sync socket */
	int32_t parent_sync_fd; /* the parent's end, closed in the child */
	uint32_t total_len;     /* bytes, header included */
};

struct tsr_op_header {
	uint16_t code;
	uint16_t flags; /* TSR_OPF_* */
	uint32_t len;   /* bytes, header included, multiple of 8 */
};

/* Errors an op may meet without failing the plan. */
#define TSR_OPF_IGNORE_ENOENT 0x1
#define TSR_OPF_IGNORE_EEXIST 0x2
#define TSR_OPF_IGNORE_EPERM 0x4
#define TSR_OPF_IGNORE_EINVAL 0x8
#define TSR_OPF_IGNORE_ENOSYS 0x10

/* Path flags (the "pflags" field of path-taking ops). */
#define TSR_P_HOST 0x1          /* path is a host path, not resolved in the root */
#define TSR_P_MKDIR 0x2         /* create the target (and parents) as a directory */
#define TSR_P_MKFILE 0x4        /* create the target as an empty file (parents as dirs) */
#define TSR_P_NO_SYMLINKS 0x8   /* no symlink may appear while resolving */
#define TSR_P_SRC_IN_ROOT 0x10  /* MOUNT: the source is resolved in the root too */
#define TSR_P_SRC_OPEN 0x20     /* MOUNT: open the host source first, mount through its fd */
#define TSR_P_TMPFS_MODE 0x40   /* MOUNT: an existing target's mode goes first in the data */
#define TSR_P_KEEP_LOCKED 0x80  /* REMOUNT: on EPERM retry keeping the mount's locked flags */
#define TSR_P_CHECK_INSIDE 0x100 /* CHDIR: the new cwd must be reachable from the root */
#define TSR_P_RECURSIVE 0x200   /* MOUNT_SETATTR: AT_RECURSIVE */
#define TSR_P_DEVNULL_SRC 0x400 /* MOUNT: the source must be the 1:3 character device */

/* Messages on the sync socket (SOCK_SEQPACKET, one message per read). */
enum tsr_msg_type {
	TSR_MSG_SYNC = 1,  /* child waits; value = tag; parent answers with a tsr_msg */
	TSR_MSG_PID = 2,   /* value = pid of the process that carries on (after FORK) */
	TSR_MSG_ERROR = 3, /* op = failing op index, err = errno, value = detail */
	TSR_MSG_FD = 4,    /* an fd rides along (SCM_RIGHTS); value = what it is (TSR_FD_*) */
};

enum tsr_fd_kind {
	TSR_FD_SECCOMP_NOTIFY = 1, /* the listener fd of a SECCOMP_FILTER_FLAG_NEW_LISTENER filter */
};

struct tsr_msg {
	uint32_t type;
	int32_t op;
	int32_t err;
	int32_t value;
};

/* The error detail values (tsr_msg.value of TSR_MSG_ERROR). */
enum tsr_detail {
	TSR_D_NONE = 0,
	TSR_D_GUARD = 1,       /* resolved target lies under the op's guard path */
	TSR_D_NOT_DEVNULL = 2, /* source is not the 1:3 character device */
	TSR_D_CWD_OUTSIDE = 3, /* cwd is not reachable from the container root */
	TSR_D_BAD_DEVICE = 4,  /* created node has the wrong type or number */
	TSR_D_NOT_FOUND_PATH = 5, /* executable not found in any PATH entry */
	TSR_D_PARENT_ABORT = 6,   /* the parent told the child to stop */
	TSR_D_NOT_PROCFS = 7,     /* WRITE_FILE/OPEN_PROC target is not on procfs */
	TSR_D_NOT_DEVPTS = 8,     /* the container's ptmx is not on a devpts */
};

/*
 * X(name, code, schema): the op table. Field order is the TypeScript
 * encoder's order; src/runtime/plan/ops.ts holds the same table and a unit
 * test compares the two through tsr_op_schema().
 */
#define TSR_OPS(X)                                                                        \
	X(SETNS, 1, "su")          /* ns path, nstype */                                    \
	X(UNSHARE, 2, "u")         /* CLONE_NEW* flags */                                   \
	X(SYNC, 3, "u")            /* tag */                                                \
	X(FORK, 4, "")                                                                       \
	X(OPEN_ROOT, 5, "s")       /* rootfs (host path); becomes the root for in-root paths */ \
	X(OPEN_PROC, 6, "s")       /* a procfs directory kept for EXEC_FIFO */              \
	X(MOUNT, 7, "ssussus")     /* source, target, MS_* flags, fstype, data, pflags, guard */ \
	X(REMOUNT, 8, "suu")       /* target, MS_* flags, pflags */                         \
	X(MOUNT_SETATTR, 9, "suuuu") /* target, attr_set, attr_clr, propagation, pflags */  \
	X(MKDIR, 10, "suu")        /* path, mode, pflags */                                 \
	X(MKNOD, 11, "suuuu")      /* path, mode (with S_IFMT), dev, uid, gid */            \
	X(SYMLINK, 12, "ss")       /* link target, link path */                             \
	X(UNLINK, 13, "s")         /* path */                                               \
	X(PIVOT_ROOT, 14, "")                                                                \
	X(MOVE_ROOT, 15, "")                                                                 \
	X(CHROOT, 16, "")                                                                    \
	X(SETHOSTNAME, 17, "s")                                                              \
	X(SETDOMAINNAME, 18, "s")                                                            \
	X(CONSOLE, 19, "uuu")      /* socket fd that receives the pty master, rows, cols */ \
	X(SETSID, 20, "")                                                                    \
	X(SETRLIMIT, 21, "uuu")    /* resource, soft, hard */                               \
	X(PRCTL, 22, "uuuuu")      /* option, arg2..arg5 */                                 \
	X(CAPSET, 23, "uuu")       /* effective, permitted, inheritable */                  \
	X(SETGROUPS, 24, "a")                                                                \
	X(SETRESGID, 25, "u")                                                                \
	X(SETRESUID, 26, "u")                                                                \
	X(UMASK, 27, "u")                                                                    \
	X(CHDIR, 28, "su")         /* path, pflags */                                       \
	X(KEYRING, 29, "su")       /* session keyring name, permission bits to add */       \
	X(CLOSE_FDS, 30, "u")      /* first fd closed at exec; fds below it lose CLOEXEC */ \
	X(REOPEN_DEVNULL, 31, "")                                                            \
	X(MASK_PATH, 32, "s")      /* path: /dev/null over a file, a ro tmpfs over a dir */ \
	X(EXEC_FIFO, 33, "u")      /* O_PATH fd of the exec fifo */                         \
	X(FIND_EXEC, 34, "ss")     /* file, PATH */                                         \
	X(EXEC, 35, "vv")          /* argv, envp */                                         \
	X(WRITE_FILE, 36, "ss")    /* path (must be on procfs), content */                  \
	X(UMOUNT, 37, "su")        /* host path, umount2 flags */                           \
	X(SECCOMP, 38, "ua")       /* seccomp(2) flags, BPF program (one u64 per sock_filter) */ \
	X(DUP2, 39, "uu")          /* oldfd, newfd (dup3 without CLOEXEC) */                \
	X(PERSONALITY, 40, "u")    /* personality(2) persona */                             \
	X(IOPRIO_SET, 41, "u")     /* ioprio_set(IOPRIO_WHO_PROCESS, self, value) */        \
	X(SCHED_SETATTR, 42, "uuuuuuu") /* policy, flags, nice, priority, runtime, deadline, period */

enum tsr_op_code {
#define TSR_ENUM(name, code, schema) TSR_OP_##name = code,
	TSR_OPS(TSR_ENUM)
#undef TSR_ENUM
	TSR_OP_MAX
};

/* Exported by libtsrunc.so. */
int tsr_spawn(const uint8_t *plan, uint32_t len, int32_t *out_pid, int32_t *out_pidfd);
int tsr_plan_check(const uint8_t *plan, uint32_t len);
const char *tsr_op_schema(uint32_t code);
int tsr_recv_fd(int sock, char *buf, uint32_t buflen);
int tsr_recv_msg(int sock, uint8_t *buf, uint32_t buflen, int32_t *out_fd);
int tsr_unix_connect(const char *path);
int tsr_send_fd(int sock, int fd, const uint8_t *data, uint32_t len);
int tsr_unix_socket(const char *path, int type, int listening);
uint32_t tsr_shim_layout(uint32_t which);
int tsr_send_fds(int sock, const int32_t *fds, uint32_t nfds, const uint8_t *data, uint32_t len);

#endif
