/*
 * The tsrunc-shim control protocol, shared with src/tasks/shim-protocol.ts.
 *
 * The daemon connects to the shim's socket (SOCK_SEQPACKET, a path in the
 * task's directory, never an abstract name: CVE-2020-15257) and sends one
 * request per message; the shim answers each with one response. fds ride
 * along with SCM_RIGHTS. Exits are pushed on a separate stream socket that
 * the daemon hands over with SUBSCRIBE, as fixed-size tsr_shim_event records,
 * so that the daemon can read them without blocking.
 *
 * Exit records: WATCH may carry, as its payload, an absolute path (no NUL,
 * at most TSR_SHIM_EXIT_PATH_MAX bytes; else EINVAL) where the shim records
 * the process's exit when it publishes it, so that a daemon that finds the
 * shim dead still learns how the process ended. Which processes get one is
 * the daemon's choice; the shim only carries it out. The record is one line,
 *     "<pid> <status> <exited_ns>\n"
 * in decimal: the pid, the raw wait status, CLOCK_REALTIME nanoseconds. It
 * is written to "<path>.tmp", fsync'd and renamed over <path>, so a reader
 * sees the whole line or no file. (Shims before this format wrote
 * {"pid":N,"status":N,"exited_ns":N} to DIR/exit for the process named
 * "init"; src/tasks/shim-protocol.ts still reads that, for shims that an
 * older daemon started and a newer one restores.)
 *
 * All integers are little-endian (the host's order: both ends run here).
 */
#ifndef TSR_SHIM_PROTO_H
#define TSR_SHIM_PROTO_H

#include <stdint.h>

#define TSR_SHIM_NAME_MAX 128
#define TSR_SHIM_MAX_FDS 16
/* SPAWN places its plan's fds at SLOT_BASE + i: the plan names them so. */
#define TSR_SHIM_SLOT_BASE 10
/* The shim keeps its own fds at or above this, clear of the slots. */
#define TSR_SHIM_OWN_FD_MIN 256
/* The most bytes of an exit record path (PATH_MAX less room for ".tmp"). */
#define TSR_SHIM_EXIT_PATH_MAX 4000

enum tsr_shim_req_type {
	TSR_SHIM_SPAWN = 1,       /* payload: a launch plan; fds: nslots plan fds, then role fds */
	TSR_SHIM_WATCH = 2,       /* name now means pid (the plan forked); payload: an exit record path, or none */
	TSR_SHIM_KILL = 3,        /* arg = signal, to the named process while it is unreaped */
	TSR_SHIM_RESIZE = 4,      /* arg = rows, arg2 = cols, on the named process's pty */
	TSR_SHIM_CLOSE_STDIN = 5, /* the named process's stdin ends once what is buffered is written */
	TSR_SHIM_SUBSCRIBE = 6,   /* fd 0: a stream socket for tsr_shim_event records */
	TSR_SHIM_STATE = 7,       /* response: count tsr_shim_proc records */
	TSR_SHIM_ACK = 8,         /* the daemon has published the named process's exit */
	TSR_SHIM_FORGET = 9,      /* drop the named process's record and stdio */
	TSR_SHIM_SHUTDOWN = 10,   /* exit; refused (EBUSY) while a process runs unless flags has FORCE */
};

enum tsr_shim_role {
	TSR_SHIM_ROLE_STDIN_SRC = 0, /* the client's stdin (a FIFO), copied to STDIN_DST or the pty */
	TSR_SHIM_ROLE_STDIN_DST = 1, /* the write end of the process's stdin pipe */
	TSR_SHIM_ROLE_CONSOLE = 2,   /* receives the pty master from the plan's CONSOLE op */
	TSR_SHIM_ROLE_TERM_OUT = 3,  /* where pty output goes (FIFO or file) */
	TSR_SHIM_ROLES = 4,
};

#define TSR_SHIM_F_FORCE 0x1

struct tsr_shim_req {
	uint32_t type;
	uint32_t flags;
	int32_t pid;
	int32_t arg;
	int32_t arg2;
	uint32_t nslots;
	int32_t role[TSR_SHIM_ROLES]; /* index into the fds after the slots, or -1 */
	char name[TSR_SHIM_NAME_MAX];
};

struct tsr_shim_resp {
	uint32_t type; /* the request's type */
	int32_t err;   /* 0 or an errno */
	int32_t pid;   /* SPAWN: the cloned pid */
	uint32_t count; /* STATE: records that follow */
};

enum tsr_shim_proc_state {
	TSR_SHIM_RUNNING = 0,
	TSR_SHIM_EXITED = 1,
};

struct tsr_shim_proc {
	int32_t pid;
	uint32_t state;
	int32_t status;  /* the raw wait status */
	uint32_t acked;  /* the daemon has published the exit */
	int64_t exited_ns; /* CLOCK_REALTIME */
	char name[TSR_SHIM_NAME_MAX];
};

enum tsr_shim_event_type {
	TSR_SHIM_EV_EXIT = 1,
};

struct tsr_shim_event {
	uint32_t type;
	uint32_t reserved;
	struct tsr_shim_proc proc;
};

#endif
