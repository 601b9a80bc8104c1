/*
 * tsrunc-shim: one small process per container. It is the parent and
 * subreaper of the container's processes (it clones them itself, running
 * launch plans built by the daemon, with the same interpreter as
 * libtsrunc), holds their stdio (a copy of the client's stdin into a pipe,
 * the pty master), keeps their exit statuses until the daemon has read them,
 * and outlives the daemon. Protocol: shim-proto.h.
 *
 * Usage: tsrunc-shim [-dir DIR -namespace NS -id ID], with the listening
 * control socket at fd 3. The arguments only name the task in ps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "plan.h"
#include "shim-proto.h"

#define LISTEN_FD 3
#define RELAY_BUF 8192
#define MAX_CONNS 8
#define UNCLAIMED_MAX 64
#define DRAIN_MS 2000

struct relay {
	int src, dst;  /* not owned: the process's fds */
	char *buf;
	uint32_t len, off;
	int src_eof;   /* end of file, or an error: nothing more will come */
	int src_idle;  /* the last read found nothing */
	int dst_err;   /* writes fail: what comes is dropped */
};

struct proc {
	struct proc *next;
	char name[TSR_SHIM_NAME_MAX];
	pid_t pid;
	int exited, status, acked, pending;
	int64_t exited_ns, pending_since;
	int stdin_src, stdin_dst, console, master, term_out;
	int close_stdin; /* requested: end stdin once the buffer is empty */
	char *exit_path; /* WATCH asked for an exit record here, or NULL */
	struct relay in, out;
};

struct unclaimed {
	pid_t pid;
	int status;
	int64_t exited_ns;
};

static struct proc *g_procs;
static int g_conns[MAX_CONNS];
static int g_sub = -1;
static int g_sigfd = -1;
static int g_listen = -1;
static struct unclaimed g_unclaimed[UNCLAIMED_MAX];
static unsigned g_unclaimed_next;

static void logmsg(const char *what, int err)
{
	char line[512];
	int n = snprintf(line, sizeof line, "tsrunc-shim[%d]: %s%s%s\n", (int)getpid(), what, err ? ": " : "",
			 err ? strerror(err) : "");
	if (n > 0 && write(2, line, (size_t)n) < 0) {
		/* nowhere else to say it */
	}
}

static int64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The shim's own fds live at TSR_SHIM_OWN_FD_MIN and up, clear of the slots. */
static int keep_fd(int fd)
{
	if (fd < 0 || fd >= TSR_SHIM_OWN_FD_MIN)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, TSR_SHIM_OWN_FD_MIN);
	close(fd);
	return moved;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- processes -------------------------------------------------------------- */

static struct proc *find_name(const char *name)
{
	for (struct proc *p = g_procs; p; p = p->next)
		if (strncmp(p->name, name, TSR_SHIM_NAME_MAX) == 0)
			return p;
	return NULL;
}

static struct proc *find_pid(pid_t pid)
{
	for (struct proc *p = g_procs; p; p = p->next)
		if (p->pid == pid && !p->exited)
			return p;
	return NULL;
}

static void relay_init(struct relay *r, int src, int dst)
{
	memset(r, 0, sizeof *r);
	r->src = src;
	r->dst = dst;
	if (src >= 0 && dst >= 0) {
		r->buf = malloc(RELAY_BUF);
		if (!r->buf)
			r->src = r->dst = -1;
	} else {
		r->src = r->dst = -1;
	}
}

static void relay_free(struct relay *r)
{
	free(r->buf);
	memset(r, 0, sizeof *r);
	r->src = r->dst = -1;
}

static int relay_active(const struct relay *r)
{
	return r->src >= 0 && r->dst >= 0;
}

static int relay_empty(const struct relay *r)
{
	return r->off == r->len;
}

/* Moves what it can without blocking. */
static void relay_pump(struct relay *r)
{
	if (!relay_active(r))
		return;
	for (int rounds = 0; rounds < 64; rounds++) {
		if (relay_empty(r)) {
			if (r->src_eof)
				return;
			ssize_t n = read(r->src, r->buf, RELAY_BUF);
			if (n > 0) {
				r->len = (uint32_t)n;
				r->off = 0;
				r->src_idle = 0;
			} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				r->src_idle = 1;
				return;
			} else {
				/* 0 is end of file; EIO is a pty whose slaves are all closed */
				r->src_eof = 1;
				return;
			}
		}
		if (r->dst_err) {
			r->off = r->len = 0;
			continue;
		}
		ssize_t w = write(r->dst, r->buf + r->off, r->len - r->off);
		if (w > 0) {
			r->off += (uint32_t)w;
			if (r->off == r->len)
				r->off = r->len = 0;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			return;
		} else {
			r->dst_err = 1;
			r->off = r->len = 0;
		}
	}
}

static void proc_close_stdin(struct proc *p)
{
	relay_free(&p->in);
	close_fd(&p->stdin_src);
	close_fd(&p->stdin_dst);
}

static void proc_free(struct proc *p)
{
	proc_close_stdin(p);
	relay_free(&p->out);
	close_fd(&p->console);
	close_fd(&p->master);
	close_fd(&p->term_out);
	free(p->exit_path);
	free(p);
}

static void record_of(const struct proc *p, struct tsr_shim_proc *r)
{
	memset(r, 0, sizeof *r);
	r->pid = p->pid;
	r->state = p->exited && !p->pending ? TSR_SHIM_EXITED : TSR_SHIM_RUNNING;
	r->status = p->status;
	r->acked = (uint32_t)p->acked;
	r->exited_ns = p->exited_ns;
	memcpy(r->name, p->name, TSR_SHIM_NAME_MAX);
}

/* The exit record WATCH asked for (format: shim-proto.h), written to a temp file and renamed. */
static void write_exit_record(const struct proc *p)
{
	char tmp[TSR_SHIM_EXIT_PATH_MAX + sizeof ".tmp"], body[80];
	snprintf(tmp, sizeof tmp, "%s.tmp", p->exit_path);
	int n = snprintf(body, sizeof body, "%d %d %lld\n", (int)p->pid, p->status, (long long)p->exited_ns);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		logmsg("open the exit record", errno);
		return;
	}
	int ok = write(fd, body, (size_t)n) == n && fsync(fd) == 0;
	int err = errno;
	close(fd);
	if (!ok || rename(tmp, p->exit_path) < 0) {
		logmsg("write the exit record", ok ? errno : err);
		unlink(tmp);
	}
}

static void send_event(const struct proc *p)
{
	if (g_sub < 0)
		return;
	struct tsr_shim_event ev;
	memset(&ev, 0, sizeof ev);
	ev.type = TSR_SHIM_EV_EXIT;
	record_of(p, &ev.proc);
	ssize_t w;
	do
		w = send(g_sub, &ev, sizeof ev, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)sizeof ev) {
		/* The daemon is gone (or stuck): it asks for STATE when it is back. */
		close_fd(&g_sub);
	}
}

/* The exit is known and the pty (if any) is drained: tell the daemon. */
static void publish_exit(struct proc *p)
{
	p->pending = 0;
	if (p->exit_path)
		write_exit_record(p);
	send_event(p);
}

static void take_console(struct proc *p, int flags)
{
	char name[64];
	ssize_t n;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	do
		n = recvmsg(p->console, &msg, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	close_fd(&p->console);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return; /* the child died before it made the pty */
	int master;
	memcpy(&master, CMSG_DATA(c), sizeof master);
	p->master = keep_fd(master);
	set_nonblock(p->master);
	relay_init(&p->out, p->master, p->term_out);
	if (!p->close_stdin)
		relay_init(&p->in, p->stdin_src, p->master);
}

static void proc_exited(struct proc *p, int status, int64_t when)
{
	p->exited = 1;
	p->status = status;
	p->exited_ns = when;
	if (p->console >= 0)
		take_console(p, MSG_DONTWAIT);
	if (p->stdin_dst >= 0) /* a pipe into a dead process */
		proc_close_stdin(p);
	if (relay_active(&p->out)) {
		p->pending = 1;
		p->pending_since = now_ns(CLOCK_MONOTONIC);
		return;
	}
	publish_exit(p);
}

static void reap(void)
{
	struct signalfd_siginfo si;
	while (read(g_sigfd, &si, sizeof si) == sizeof si) {
	}
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
		if (pid <= 0)
			return;
		int64_t when = now_ns(CLOCK_REALTIME);
		struct proc *p = find_pid(pid);
		if (p) {
			proc_exited(p, status, when);
		} else {
			/* A plan's intermediate, an orphan, or a pid WATCH has yet to name. */
			struct unclaimed *u = &g_unclaimed[g_unclaimed_next++ % UNCLAIMED_MAX];
			u->pid = pid;
			u->status = status;
			u->exited_ns = when;
		}
	}
}

static void finish_pending(void)
{
	int64_t now = now_ns(CLOCK_MONOTONIC);
	for (struct proc *p = g_procs; p; p = p->next) {
		if (!p->pending)
			continue;
		relay_pump(&p->out);
		int drained = relay_empty(&p->out) && (p->out.src_eof || p->out.src_idle);
		if (drained || p->out.dst_err || now - p->pending_since > DRAIN_MS * 1000000LL)
			publish_exit(p);
	}
}

/* ---- requests ----------------------------------------------------------------- */

static void respond(int conn, uint32_t type, int err, int pid, const void *extra, size_t extra_len)
{
	struct tsr_shim_resp r = { .type = type, .err = err, .pid = pid, .count = 0 };
	if (extra_len)
		r.count = (uint32_t)(extra_len / sizeof(struct tsr_shim_proc));
	struct iovec iov[2] = { { &r, sizeof r }, { (void *)extra, extra_len } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = extra_len ? 2 : 1 };
	ssize_t w;
	do
		w = sendmsg(conn, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		logmsg("answer the daemon", errno);
}

static int spawn_request_error(const struct tsr_shim_req *q, uint32_t plan_len, int nfds)
{
	int nslots = (int)q->nslots;
	if (nslots > nfds || plan_len < sizeof(struct tsr_plan_header))
		return EINVAL;
	for (int i = 0; i < TSR_SHIM_ROLES; i++) {
		if (q->role[i] >= nfds - nslots)
			return EINVAL;
		for (int j = 0; j < i; j++)
			if (q->role[i] >= 0 && q->role[i] == q->role[j])
				return EINVAL;
	}
	if (q->name[0] == '\0' || find_name(q->name))
		return EEXIST;
	return 0;
}

static int do_spawn(const struct tsr_shim_req *q, const uint8_t *plan, uint32_t plan_len, int *fds, int nfds,
		    int *out_pid)
{
	int nslots = (int)q->nslots;
	int err = spawn_request_error(q, plan_len, nfds);
	struct proc *p = err ? NULL : calloc(1, sizeof *p);
	if (!p) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return err ? err : ENOMEM;
	}
	memcpy(p->name, q->name, TSR_SHIM_NAME_MAX);
	p->name[TSR_SHIM_NAME_MAX - 1] = '\0';
	p->stdin_src = p->stdin_dst = p->console = p->master = p->term_out = -1;
	relay_init(&p->in, -1, -1);
	relay_init(&p->out, -1, -1);

	/* Every fd received is ours now; the slots go where the plan expects them. */
	for (int i = 0; i < nfds; i++)
		fds[i] = keep_fd(fds[i]);
	for (int i = 0; i < nslots && !err; i++)
		if (fds[i] < 0 || dup2(fds[i], TSR_SHIM_SLOT_BASE + i) < 0)
			err = fds[i] < 0 ? EMFILE : errno;
	int32_t pid = -1, pidfd = -1;
	if (!err) {
		int r = tsr_spawn(plan, plan_len, &pid, &pidfd);
		if (r < 0)
			err = -r;
		else
			close(pidfd);
	}
	for (int i = 0; i < nslots; i++) {
		close(TSR_SHIM_SLOT_BASE + i);
		close_fd(&fds[i]);
	}
	int *role_fd[TSR_SHIM_ROLES] = { &p->stdin_src, &p->stdin_dst, &p->console, &p->term_out };
	for (int i = 0; i < TSR_SHIM_ROLES; i++) {
		if (q->role[i] < 0)
			continue;
		int *fd = &fds[nslots + q->role[i]];
		*role_fd[i] = *fd;
		*fd = -1;
	}
	if (err) {
		proc_free(p);
		return err;
	}
	/* Exits count from WATCH on: a plan that forks hands over to another pid. */
	p->pid = 0;
	for (int i = 0; i < TSR_SHIM_ROLES; i++)
		if (*role_fd[i] >= 0)
			set_nonblock(*role_fd[i]);
	if (p->console < 0)
		relay_init(&p->in, p->stdin_src, p->stdin_dst);
	p->next = g_procs;
	g_procs = p;
	*out_pid = pid;
	return 0;
}

/* WATCH's payload: an absolute path, or nothing. NULL with *err set when it is not one. */
static char *exit_path_of(const uint8_t *payload, uint32_t len, int *err)
{
	*err = 0;
	if (len == 0)
		return NULL;
	if (len > TSR_SHIM_EXIT_PATH_MAX || payload[0] != '/' || memchr(payload, '\0', len)) {
		*err = EINVAL;
		return NULL;
	}
	char *path = malloc(len + 1);
	if (!path) {
		*err = ENOMEM;
		return NULL;
	}
	memcpy(path, payload, len);
	path[len] = '\0';
	return path;
}

static int do_watch(const struct tsr_shim_req *q, const uint8_t *payload, uint32_t len)
{
	struct proc *p = find_name(q->name);
	if (!p)
		return ENOENT;
	if (q->pid <= 0)
		return EINVAL;
	int err;
	char *exit_path = exit_path_of(payload, len, &err);
	if (err)
		return err;
	if (p->exited) {
		free(exit_path);
		return 0; /* watched already, and gone */
	}
	free(p->exit_path);
	p->exit_path = exit_path;
	p->pid = q->pid;
	for (unsigned i = 0; i < UNCLAIMED_MAX; i++) {
		struct unclaimed *u = &g_unclaimed[i];
		if (u->pid == q->pid && u->pid > 0) {
			u->pid = 0;
			proc_exited(p, u->status, u->exited_ns);
			break;
		}
	}
	return 0;
}

static int do_kill(const struct tsr_shim_req *q)
{
	struct proc *p = find_name(q->name);
	if (!p)
		return ENOENT;
	/* Unreaped, the pid cannot have been reused; 0 would be our own group. */
	if (p->exited || p->pid <= 0)
		return ESRCH;
	return kill(p->pid, q->arg) < 0 ? errno : 0;
}

static int do_resize(const struct tsr_shim_req *q)
{
	struct proc *p = find_name(q->name);
	if (!p)
		return ENOENT;
	if (p->master < 0)
		return ENOTTY;
	struct winsize ws = { .ws_row = (unsigned short)q->arg, .ws_col = (unsigned short)q->arg2 };
	return ioctl(p->master, TIOCSWINSZ, &ws) < 0 ? errno : 0;
}

static void end_stdin_if_flushed(struct proc *p)
{
	if (!p->close_stdin || !relay_empty(&p->in))
		return;
	if (p->master >= 0) {
		/* A terminal keeps its pty: only the copy from the client stops. */
		relay_free(&p->in);
		close_fd(&p->stdin_src);
	} else {
		proc_close_stdin(p);
	}
}

static int do_close_stdin(const struct tsr_shim_req *q)
{
	struct proc *p = find_name(q->name);
	if (!p)
		return ENOENT;
	p->close_stdin = 1;
	relay_pump(&p->in);
	end_stdin_if_flushed(p);
	return 0;
}

static int do_forget(const struct tsr_shim_req *q)
{
	for (struct proc **pp = &g_procs; *pp; pp = &(*pp)->next) {
		struct proc *p = *pp;
		if (strncmp(p->name, q->name, TSR_SHIM_NAME_MAX) != 0)
			continue;
		/* Forced: a launch that failed, its processes killed by the daemon. */
		if (!p->exited && !(q->flags & TSR_SHIM_F_FORCE))
			return EBUSY;
		*pp = p->next;
		proc_free(p);
		return 0;
	}
	return ENOENT;
}

static int any_running(void)
{
	for (struct proc *p = g_procs; p; p = p->next)
		if (!p->exited)
			return 1;
	return 0;
}

__attribute__((noreturn)) static void shut_down(int conn, uint32_t type)
{
	struct sockaddr_un addr;
	socklen_t alen = sizeof addr;
	if (getsockname(g_listen, (struct sockaddr *)&addr, &alen) == 0 && addr.sun_path[0])
		unlink(addr.sun_path);
	close_fd(&g_listen);
	/* Forced: the processes die with us, reaped so none is left a zombie. */
	for (struct proc *p = g_procs; p; p = p->next)
		if (!p->exited)
			kill(p->pid, SIGKILL);
	for (int i = 0; i < 200 && any_running(); i++) {
		struct pollfd pfd = { .fd = g_sigfd, .events = POLLIN };
		poll(&pfd, 1, 10);
		reap();
	}
	respond(conn, type, 0, 0, NULL, 0);
	_exit(0);
}

static void do_state(int conn, uint32_t type)
{
	size_t n = 0;
	for (struct proc *p = g_procs; p; p = p->next)
		n++;
	struct tsr_shim_proc *recs = n ? calloc(n, sizeof *recs) : NULL;
	if (n && !recs) {
		respond(conn, type, ENOMEM, 0, NULL, 0);
		return;
	}
	size_t i = 0;
	for (struct proc *p = g_procs; p; p = p->next)
		record_of(p, &recs[i++]);
	respond(conn, type, 0, 0, recs, n * sizeof *recs);
	free(recs);
}

/* One request from conn; 0 when the connection should be closed. */
static int serve(int conn)
{
	int avail = 0;
	uint8_t peek;
	ssize_t n = recv(conn, &peek, 1, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
	if (n <= 0)
		return n < 0 && errno == EAGAIN;
	avail = (int)n;
	uint8_t *buf = malloc((size_t)avail);
	if (!buf)
		return 0;
	char cbuf[CMSG_SPACE(sizeof(int) * TSR_SHIM_MAX_FDS)];
	struct iovec iov = { buf, (size_t)avail };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	do
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	int fds[TSR_SHIM_MAX_FDS];
	int nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k && nfds < TSR_SHIM_MAX_FDS; i++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (n < (ssize_t)sizeof(struct tsr_shim_req) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		free(buf);
		respond(conn, 0, EBADMSG, 0, NULL, 0);
		return n > 0;
	}
	struct tsr_shim_req q;
	memcpy(&q, buf, sizeof q);
	q.name[TSR_SHIM_NAME_MAX - 1] = '\0';
	int err = 0, pid = 0;
	switch (q.type) {
	case TSR_SHIM_SPAWN:
		err = do_spawn(&q, buf + sizeof q, (uint32_t)(n - (ssize_t)sizeof q), fds, nfds, &pid);
		nfds = 0; /* taken, or closed */
		break;
	case TSR_SHIM_WATCH:
		err = do_watch(&q, buf + sizeof q, (uint32_t)(n - (ssize_t)sizeof q));
		break;
	case TSR_SHIM_KILL:
		err = do_kill(&q);
		break;
	case TSR_SHIM_RESIZE:
		err = do_resize(&q);
		break;
	case TSR_SHIM_CLOSE_STDIN:
		err = do_close_stdin(&q);
		break;
	case TSR_SHIM_SUBSCRIBE:
		if (nfds != 1) {
			err = EINVAL;
			break;
		}
		close_fd(&g_sub);
		g_sub = keep_fd(fds[0]);
		nfds = 0;
		break;
	case TSR_SHIM_STATE:
		free(buf);
		do_state(conn, q.type);
		return 1;
	case TSR_SHIM_ACK: {
		struct proc *p = find_name(q.name);
		if (p && p->exited)
			p->acked = 1;
		else
			err = p ? EBUSY : ENOENT;
		break;
	}
	case TSR_SHIM_FORGET:
		err = do_forget(&q);
		break;
	case TSR_SHIM_SHUTDOWN:
		if (any_running() && !(q.flags & TSR_SHIM_F_FORCE)) {
			err = EBUSY;
			break;
		}
		free(buf);
		shut_down(conn, q.type);
	default:
		err = EOPNOTSUPP;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	free(buf);
	respond(conn, q.type, err, pid, NULL, 0);
	return 1;
}

static void accept_conn(void)
{
	int c = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
		close(c);
		return;
	}
	c = keep_fd(c);
	for (int i = 0; i < MAX_CONNS; i++)
		if (g_conns[i] < 0) {
			g_conns[i] = c;
			return;
		}
	close(c);
}

/* ---- main loop ------------------------------------------------------------------- */

enum { K_LISTEN, K_SIGNAL, K_CONN, K_CONSOLE, K_RELAY_SRC, K_RELAY_DST };

struct watch {
	int kind;
	void *ptr;
	int index;
};

static void add(struct pollfd *pfds, struct watch *w, int *n, int cap, int fd, short ev, int kind, void *ptr, int index)
{
	if (fd < 0 || *n >= cap)
		return;
	pfds[*n] = (struct pollfd){ .fd = fd, .events = ev };
	w[*n] = (struct watch){ kind, ptr, index };
	(*n)++;
}

static void add_relay(struct pollfd *pfds, struct watch *w, int *n, int cap, struct relay *r)
{
	if (!relay_active(r))
		return;
	if (relay_empty(r)) {
		if (!r->src_eof)
			add(pfds, w, n, cap, r->src, POLLIN, K_RELAY_SRC, r, 0);
	} else {
		add(pfds, w, n, cap, r->dst, POLLOUT, K_RELAY_DST, r, 0);
	}
}

static void loop(void)
{
	int cap = 64;
	struct pollfd *pfds = NULL;
	struct watch *w = NULL;
	for (;;) {
		size_t need = 2 + MAX_CONNS;
		for (struct proc *p = g_procs; p; p = p->next)
			need += 3;
		if ((int)need > cap || !pfds) {
			cap = (int)need * 2;
			free(pfds);
			free(w);
			pfds = calloc((size_t)cap, sizeof *pfds);
			w = calloc((size_t)cap, sizeof *w);
			if (!pfds || !w) {
				logmsg("out of memory", ENOMEM);
				sleep(1);
				free(pfds);
				free(w);
				pfds = NULL;
				w = NULL;
				cap = 64;
				continue;
			}
		}
		int n = 0, pending = 0;
		add(pfds, w, &n, cap, g_listen, POLLIN, K_LISTEN, NULL, 0);
		add(pfds, w, &n, cap, g_sigfd, POLLIN, K_SIGNAL, NULL, 0);
		for (int i = 0; i < MAX_CONNS; i++)
			add(pfds, w, &n, cap, g_conns[i], POLLIN, K_CONN, NULL, i);
		for (struct proc *p = g_procs; p; p = p->next) {
			add(pfds, w, &n, cap, p->console, POLLIN, K_CONSOLE, p, 0);
			add_relay(pfds, w, &n, cap, &p->in);
			add_relay(pfds, w, &n, cap, &p->out);
			pending |= p->pending;
		}
		int r = poll(pfds, (nfds_t)n, pending ? 20 : -1);
		if (r < 0 && errno != EINTR) {
			logmsg("poll", errno);
			sleep(1);
		}
		for (int i = 0; r > 0 && i < n; i++) {
			if (!pfds[i].revents)
				continue;
			switch (w[i].kind) {
			case K_LISTEN:
				accept_conn();
				break;
			case K_SIGNAL:
				reap();
				break;
			case K_CONN:
				break; /* below: a request may free a process this loop still points at */
			case K_CONSOLE:
				take_console(w[i].ptr, 0);
				break;
			case K_RELAY_SRC:
			case K_RELAY_DST:
				relay_pump(w[i].ptr);
				break;
			}
		}
		for (int i = 0; r > 0 && i < n; i++)
			if (pfds[i].revents && w[i].kind == K_CONN && !serve(g_conns[w[i].index]))
				close_fd(&g_conns[w[i].index]);
		for (struct proc *p = g_procs; p; p = p->next) {
			/* A client that closed its end of stdin: the process sees end of file. */
			if (p->in.src_eof && relay_active(&p->in))
				p->close_stdin = 1;
			end_stdin_if_flushed(p);
		}
		finish_pending();
	}
}

static void usage(void)
{
	logmsg("usage: tsrunc-shim [-dir DIR] [-namespace NS] [-id ID] (control socket listening at fd 3)", 0);
	_exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		while (*a == '-')
			a++;
		if (i + 1 >= argc)
			usage();
		if (strcmp(a, "dir") == 0 || strcmp(a, "namespace") == 0 || strcmp(a, "id") == 0)
			i++; /* shown in ps, nothing more */
		else
			usage();
	}
	struct stat st;
	int type = 0;
	socklen_t tlen = sizeof type;
	if (fstat(LISTEN_FD, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(LISTEN_FD, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET) {
		logmsg("fd 3 is not the listening control socket", 0);
		return 2;
	}
	if (chdir("/") < 0)
		return 2;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	g_sigfd = keep_fd(signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
	g_listen = keep_fd(fcntl(LISTEN_FD, F_DUPFD_CLOEXEC, TSR_SHIM_OWN_FD_MIN));
	close(LISTEN_FD);
	if (g_sigfd < 0 || g_listen < 0) {
		logmsg("set up", errno);
		return 2;
	}
	set_nonblock(g_listen);
	for (int i = 0; i < MAX_CONNS; i++)
		g_conns[i] = -1;
	loop();
	return 0;
}
