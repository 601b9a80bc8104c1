/*
 * libtsrunc: tsr_spawn() clones a child and runs a launch plan in it.
 *
 * The plan (plan.h) is built and explained by TypeScript; this file only
 * executes it. Everything that runs in the child is async-signal-safe: the
 * child is a copy of a multithreaded Node process, so it uses raw syscalls
 * and stack buffers only (no malloc, no stdio, no glibc setxid broadcast).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/personality.h>

#include "plan.h"
#include "shim-proto.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_SETPERM 5
#define KEYCTL_DESCRIBE 6

#define TSR_PATH_MAX 4096

/* ---- plan decoding (parent and child) ------------------------------------ */

union tsr_field {
	uint64_t u;
	struct {
		const char *s; /* 's': NUL-terminated string */
		uint32_t n;    /* 's': byte length; 'v'/'a': count */
		const uint8_t *p; /* 'v'/'a': first element */
	} x;
};

static const char *const op_schemas[TSR_OP_MAX] = {
#define TSR_SCHEMA(name, code, schema) [code] = schema,
	TSR_OPS(TSR_SCHEMA)
#undef TSR_SCHEMA
};

const char *tsr_op_schema(uint32_t code)
{
	if (code == 0 || code >= TSR_OP_MAX)
		return NULL;
	return op_schemas[code];
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static uint32_t pad8(uint32_t n)
{
	return (n + 7u) & ~7u;
}

/* Reads one 's' field at *off; returns 0 or -1 if it does not fit. */
static int take_string(const uint8_t *p, uint32_t end, uint32_t *off, const char **s, uint32_t *n)
{
	if (*off + 8 > end)
		return -1;
	uint32_t len = rd32(p + *off);
	uint32_t size = pad8(len + 1);
	if (len > end || *off + 8 + size > end || *off + 8 + size < *off)
		return -1;
	const char *str = (const char *)(p + *off + 8);
	if (str[len] != '\0' || memchr(str, '\0', len) != NULL)
		return -1;
	*s = str;
	*n = len;
	*off += 8 + size;
	return 0;
}

/* Decodes the fields of the op at [start, end). Returns 0 or -1. */
static int decode_fields(const uint8_t *p, uint32_t start, uint32_t end, const char *schema,
			 union tsr_field *f)
{
	uint32_t off = start;
	for (int i = 0; schema[i]; i++) {
		switch (schema[i]) {
		case 'u':
			if (off + 8 > end)
				return -1;
			f[i].u = rd64(p + off);
			off += 8;
			break;
		case 's':
			if (take_string(p, end, &off, &f[i].x.s, &f[i].x.n) < 0)
				return -1;
			break;
		case 'v': {
			if (off + 8 > end)
				return -1;
			uint32_t count = rd32(p + off);
			off += 8;
			f[i].x.n = count;
			f[i].x.p = p + off;
			for (uint32_t k = 0; k < count; k++) {
				const char *s;
				uint32_t n;
				if (take_string(p, end, &off, &s, &n) < 0)
					return -1;
			}
			break;
		}
		case 'a': {
			if (off + 8 > end)
				return -1;
			uint32_t count = rd32(p + off);
			off += 8;
			if (count > (end - off) / 8)
				return -1;
			f[i].x.n = count;
			f[i].x.p = p + off;
			off += count * 8;
			break;
		}
		default:
			return -1;
		}
	}
	return off == end ? 0 : -1;
}

/* Returns -1 when the plan is well formed, else the index of the first bad op
 * (op_count for a bad header). */
int tsr_plan_check(const uint8_t *plan, uint32_t len)
{
	if (len < sizeof(struct tsr_plan_header))
		return 0;
	struct tsr_plan_header h;
	memcpy(&h, plan, sizeof h);
	if (h.magic != TSR_PLAN_MAGIC || h.total_len != len)
		return (int)h.op_count;
	uint32_t off = sizeof h;
	union tsr_field f[TSR_MAX_FIELDS];
	for (uint32_t i = 0; i < h.op_count; i++) {
		if (off + sizeof(struct tsr_op_header) > len)
			return (int)i;
		struct tsr_op_header oh;
		memcpy(&oh, plan + off, sizeof oh);
		const char *schema = tsr_op_schema(oh.code);
		if (!schema || oh.len < sizeof oh || oh.len % 8 || oh.len > len - off)
			return (int)i;
		if (decode_fields(plan, off + sizeof oh, off + oh.len, schema, f) < 0)
			return (int)i;
		off += oh.len;
	}
	return off == len ? -1 : (int)h.op_count;
}

/* ---- child state and helpers (child only, async-signal-safe) ------------- */

static int g_sync = -1;
static int g_root = -1;
static int g_proc = -1;
static int g_op = -1;
static char g_exec_path[TSR_PATH_MAX];

static int send_msg(uint32_t type, int op, int err, int value)
{
	struct tsr_msg m = { .type = type, .op = op, .err = err, .value = value };
	ssize_t r;
	do
		r = send(g_sync, &m, sizeof m, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : 0;
}

__attribute__((noreturn)) static void fail(int err, int detail)
{
	send_msg(TSR_MSG_ERROR, g_op, err, detail);
	_exit(1);
}

static char *utoa(char *end, unsigned long v)
{
	*--end = '\0';
	do
		*--end = (char)('0' + v % 10);
	while (v /= 10);
	return end;
}

/* "/proc/self/fd/N" in buf (at least 32 bytes). */
static const char *fdpath(int fd, char *buf)
{
	char num[24];
	const char *n = utoa(num + sizeof num, (unsigned long)fd);
	memcpy(buf, "/proc/self/fd/", 14);
	size_t len = strlen(n);
	memcpy(buf + 14, n, len + 1);
	return buf;
}

static int open_in_root(const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve,
	};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, g_root, path, &how, sizeof how);
	while (fd < 0 && errno == EINTR);
	return fd;
}

static void close_keep_errno(int fd)
{
	int e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
}

/* mkdir -p inside the root, every component resolved in the root. Returns an
 * O_PATH fd of the final directory, or -1 with errno set. */
static int mkdir_all_in_root(const char *path, mode_t mode, uint64_t resolve)
{
	char buf[TSR_PATH_MAX];
	size_t len = strlen(path);
	if (len >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	int cur = open_in_root("/", O_PATH | O_DIRECTORY, resolve);
	if (cur < 0)
		return -1;
	char *p = buf;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *start = p;
		while (*p && *p != '/')
			p++;
		char saved = *p;
		*p = '\0';
		int fd = open_in_root(buf, O_PATH | O_DIRECTORY, resolve);
		if (fd < 0 && errno == ENOENT) {
			if (mkdirat(cur, start, mode) < 0 && errno != EEXIST) {
				close_keep_errno(cur);
				return -1;
			}
			fd = open_in_root(buf, O_PATH | O_DIRECTORY, resolve);
		}
		close_keep_errno(cur);
		if (fd < 0)
			return -1;
		cur = fd;
		*p = saved;
	}
	return cur;
}

/* Splits "/a/b/c" into an O_PATH fd of "/a/b" (created if mkdir) and "c". */
static int open_parent_in_root(const char *path, char *parent, const char **base, int mkdir,
			       uint64_t resolve)
{
	size_t len = strlen(path);
	if (len >= TSR_PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(parent, path, len + 1);
	char *slash = strrchr(parent, '/');
	if (!slash || !slash[1]) {
		errno = EINVAL;
		return -1;
	}
	*base = path + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (mkdir)
		return mkdir_all_in_root(parent, 0755, resolve);
	return open_in_root(parent, O_PATH | O_DIRECTORY, resolve);
}

static int is_devnull(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

static int same_file(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int on_fs(int fd, long magic)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && sf.f_type == magic;
}

/* Fails the op when the resolved target lies at or under guard (a path
 * relative to the root, like "/proc"). */
static void check_guard(int fd, const char *guard)
{
	char rootp[TSR_PATH_MAX], real[TSR_PATH_MAX], link[32];
	ssize_t rn = readlink(fdpath(g_root, link), rootp, sizeof rootp - 1);
	ssize_t n = readlink(fdpath(fd, link), real, sizeof real - 1);
	if (rn < 0 || n < 0)
		fail(errno, TSR_D_NONE);
	rootp[rn] = real[n] = '\0';
	if (rn == 1) /* root is "/" */
		rn = 0;
	if (strncmp(real, rootp, (size_t)rn) != 0 || (real[rn] != '/' && real[rn] != '\0'))
		fail(EXDEV, TSR_D_GUARD);
	const char *rel = real + rn;
	size_t gl = strlen(guard);
	if (strncmp(rel, guard, gl) == 0 && (rel[gl] == '\0' || rel[gl] == '/'))
		fail(EPERM, TSR_D_GUARD);
}

static uint64_t resolve_flags(uint64_t pflags)
{
	return (pflags & TSR_P_NO_SYMLINKS) ? RESOLVE_NO_SYMLINKS : 0;
}

/* Opens (creating if asked) the in-root target of a mount-like op. *existed
 * tells whether it was there before. */
static int open_target(const char *path, uint64_t pflags, int *existed)
{
	uint64_t res = resolve_flags(pflags);
	int fd = open_in_root(path, O_PATH, res);
	if (existed)
		*existed = fd >= 0;
	if (fd >= 0 || errno != ENOENT || !(pflags & (TSR_P_MKDIR | TSR_P_MKFILE)))
		return fd;
	if (pflags & TSR_P_MKDIR) {
		int d = mkdir_all_in_root(path, 0755, res);
		if (d < 0)
			return -1;
		close(d);
	} else {
		char parent[TSR_PATH_MAX];
		const char *base;
		int dir = open_parent_in_root(path, parent, &base, 1, res);
		if (dir < 0)
			return -1;
		int f = openat(dir, base, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
		if (f < 0 && errno != EEXIST) {
			close_keep_errno(dir);
			return -1;
		}
		if (f >= 0)
			close(f);
		close(dir);
	}
	return open_in_root(path, O_PATH, res);
}

static const char *nz(const char *s)
{
	return (s && s[0]) ? s : NULL;
}

static unsigned long locked_mount_flags(const char *path)
{
	struct statfs sf;
	if (statfs(path, &sf) < 0)
		return 0;
	unsigned long f = 0;
	if (sf.f_flags & ST_RDONLY)
		f |= MS_RDONLY;
	if (sf.f_flags & ST_NOSUID)
		f |= MS_NOSUID;
	if (sf.f_flags & ST_NODEV)
		f |= MS_NODEV;
	if (sf.f_flags & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sf.f_flags & ST_NOATIME)
		f |= MS_NOATIME;
	if (sf.f_flags & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sf.f_flags & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* ---- the ops --------------------------------------------------------------- */

static int op_mount(const union tsr_field *f)
{
	const char *src = f[0].x.s, *tgt = f[1].x.s, *fstype = f[3].x.s, *data = f[4].x.s;
	unsigned long flags = (unsigned long)f[2].u;
	uint64_t pflags = f[5].u;
	const char *guard = f[6].x.s;
	char srcbuf[32], tgtbuf[32], databuf[TSR_PATH_MAX];
	const char *srcp = nz(src), *tgtp = tgt;
	int srcfd = -1, tfd = -1, existed = 1;

	if (pflags & TSR_P_SRC_IN_ROOT)
		srcfd = open_in_root(src, O_PATH, 0);
	else if (pflags & TSR_P_SRC_OPEN)
		srcfd = open(src, O_PATH | O_CLOEXEC);
	if ((pflags & (TSR_P_SRC_IN_ROOT | TSR_P_SRC_OPEN)) && srcfd < 0)
		return -1;
	if ((pflags & TSR_P_DEVNULL_SRC) && !is_devnull(srcfd))
		fail(ENODEV, TSR_D_NOT_DEVNULL);
	if (srcfd >= 0)
		srcp = fdpath(srcfd, srcbuf);

	if (!(pflags & TSR_P_HOST)) {
		tfd = open_target(tgt, pflags, &existed);
		if (tfd < 0) {
			close_keep_errno(srcfd);
			return -1;
		}
		/* A destination swapped for a symlink to "/" resolves to the root
		 * itself: never mount over the container's root. */
		if (same_file(tfd, g_root))
			fail(EBUSY, TSR_D_GUARD);
		if (guard[0])
			check_guard(tfd, guard);
		tgtp = fdpath(tfd, tgtbuf);
	}

	if ((pflags & TSR_P_TMPFS_MODE) && existed && tfd >= 0) {
		struct stat st;
		if (fstat(tfd, &st) == 0) {
			char num[8], *d = databuf;
			unsigned m = st.st_mode & 07777;
			num[7] = '\0';
			for (int i = 6; i >= 0; i--, m >>= 3)
				num[i] = (char)('0' + (m & 7));
			memcpy(d, "mode=", 5);
			memcpy(d + 5, num + 3, 5); /* 4 octal digits + NUL */
			size_t dl = strlen(data);
			if (dl) {
				if (dl + 11 >= sizeof databuf) {
					errno = E2BIG;
					return -1;
				}
				d[9] = ',';
				memcpy(d + 10, data, dl + 1);
			}
			data = databuf;
		}
	}

	int r = mount(srcp, tgtp, nz(fstype), flags, nz(data));
	close_keep_errno(srcfd);
	close_keep_errno(tfd);
	return r;
}

static int op_remount(const union tsr_field *f)
{
	unsigned long flags = (unsigned long)f[1].u | MS_REMOUNT;
	uint64_t pflags = f[2].u;
	char buf[32];
	const char *path = f[0].x.s;
	int fd = -1;
	if (!(pflags & TSR_P_HOST)) {
		fd = open_target(path, pflags, NULL);
		if (fd < 0)
			return -1;
		path = fdpath(fd, buf);
	}
	int r = mount(NULL, path, NULL, flags, NULL);
	if (r < 0 && errno == EPERM && (pflags & TSR_P_KEEP_LOCKED))
		r = mount(NULL, path, NULL, flags | locked_mount_flags(path), NULL);
	close_keep_errno(fd);
	return r;
}

static int op_mount_setattr(const union tsr_field *f)
{
	uint64_t pflags = f[4].u;
	int fd = open_target(f[0].x.s, pflags, NULL);
	if (fd < 0)
		return -1;
	struct mount_attr attr = {
		.attr_set = f[1].u,
		.attr_clr = f[2].u,
		.propagation = f[3].u,
	};
	unsigned int at = AT_EMPTY_PATH | ((pflags & TSR_P_RECURSIVE) ? AT_RECURSIVE : 0);
	int r = (int)syscall(SYS_mount_setattr, fd, "", at, &attr, sizeof attr);
	close_keep_errno(fd);
	return r;
}

static int op_mkdir(const union tsr_field *f)
{
	int fd = mkdir_all_in_root(f[0].x.s, (mode_t)f[1].u, resolve_flags(f[2].u));
	close_keep_errno(fd);
	return fd < 0 ? -1 : 0;
}

static int op_mknod(const union tsr_field *f)
{
	char parent[TSR_PATH_MAX], buf[32];
	const char *base;
	mode_t mode = (mode_t)f[1].u;
	dev_t dev = (dev_t)f[2].u;
	int dir = open_parent_in_root(f[0].x.s, parent, &base, 1, 0);
	if (dir < 0)
		return -1;
	if (mknodat(dir, base, mode, dev) < 0 && errno != EEXIST) {
		close_keep_errno(dir);
		return -1;
	}
	int fd = openat(dir, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	close_keep_errno(dir);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close_keep_errno(fd);
		return -1;
	}
	if ((st.st_mode & S_IFMT) != (mode & S_IFMT) ||
	    (!S_ISFIFO(mode) && st.st_rdev != dev))
		fail(EEXIST, TSR_D_BAD_DEVICE);
	int r = chmod(fdpath(fd, buf), mode & 07777);
	if (r == 0)
		r = fchownat(fd, "", (uid_t)f[3].u, (gid_t)f[4].u, AT_EMPTY_PATH);
	close_keep_errno(fd);
	return r;
}

static int op_symlink(const union tsr_field *f)
{
	char parent[TSR_PATH_MAX];
	const char *base;
	int dir = open_parent_in_root(f[1].x.s, parent, &base, 1, 0);
	if (dir < 0)
		return -1;
	int r = symlinkat(f[0].x.s, dir, base);
	close_keep_errno(dir);
	return r;
}

static int op_unlink(const union tsr_field *f)
{
	char parent[TSR_PATH_MAX];
	const char *base;
	int dir = open_parent_in_root(f[0].x.s, parent, &base, 0, 0);
	if (dir < 0)
		return -1;
	int r = unlinkat(dir, base, 0);
	close_keep_errno(dir);
	return r;
}

static int reopen_root(void)
{
	close(g_root);
	g_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return g_root < 0 ? -1 : 0;
}

static int op_pivot_root(void)
{
	int oldroot = open("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
	if (oldroot < 0)
		return -1;
	int r = fchdir(g_root);
	if (r == 0)
		r = (int)syscall(SYS_pivot_root, ".", ".");
	if (r == 0)
		r = fchdir(oldroot);
	/* Keep our unmount of the old root from propagating to the host. */
	if (r == 0)
		r = mount("", ".", "", MS_SLAVE | MS_REC, "");
	if (r == 0)
		r = umount2(".", MNT_DETACH);
	if (r == 0)
		r = chdir("/");
	close_keep_errno(oldroot);
	return r == 0 ? reopen_root() : -1;
}

static int op_move_root(void)
{
	if (fchdir(g_root) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
	    chdir("/") < 0)
		return -1;
	return reopen_root();
}

static int op_chroot(void)
{
	if (fchdir(g_root) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return -1;
	return reopen_root();
}

/* One sendmsg of data with nfds fds riding along (SCM_RIGHTS), retried on
 * EINTR: what it sent, or -1 with errno. Async-signal-safe. */
static ssize_t sendmsg_fds(int sock, const int *fds, uint32_t nfds, const void *data, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * TSR_SHIM_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	if (nfds > TSR_SHIM_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	memset(&cbuf, 0, sizeof cbuf);
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t r;
	do
		r = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r;
}

static int send_fd(int sock, int fd, const char *name)
{
	return sendmsg_fds(sock, &fd, 1, name, strlen(name)) < 0 ? -1 : 0;
}

/* The pty is made inside the container and the slave is taken from the master
 * fd (TIOCGPTPEER), never by path (CVE-2025-52565). */
static int op_console(const union tsr_field *f)
{
	int sock = (int)f[0].u;
	int master = open_in_root("/dev/ptmx", O_RDWR | O_NOCTTY, 0);
	if (master < 0)
		return -1;
	if (!on_fs(master, DEVPTS_SUPER_MAGIC))
		fail(EXDEV, TSR_D_NOT_DEVPTS);
	int unlock = 0, ptn = -1;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &ptn) < 0) {
		close_keep_errno(master);
		return -1;
	}
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		close_keep_errno(master);
		return -1;
	}
	char name[40], num[16];
	memcpy(name, "/dev/pts/", 9);
	const char *n = utoa(num + sizeof num, (unsigned long)ptn);
	memcpy(name + 9, n, strlen(n) + 1);
	int r = send_fd(sock, master, name);
	close_keep_errno(master);
	if (r < 0) {
		close_keep_errno(slave);
		return -1;
	}
	struct winsize ws = { .ws_row = (unsigned short)f[1].u, .ws_col = (unsigned short)f[2].u };
	if ((ws.ws_row || ws.ws_col) && ioctl(slave, TIOCSWINSZ, &ws) < 0) {
		close_keep_errno(slave);
		return -1;
	}
	if (ioctl(slave, TIOCSCTTY, 0) < 0) {
		close_keep_errno(slave);
		return -1;
	}
	for (int i = 0; i < 3; i++)
		if (dup3(slave, i, 0) < 0) {
			close_keep_errno(slave);
			return -1;
		}
	if (slave > 2)
		close(slave);
	return 0;
}

static int op_capset(const union tsr_field *f)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(f[0].u >> (32 * i));
		data[i].permitted = (uint32_t)(f[1].u >> (32 * i));
		data[i].inheritable = (uint32_t)(f[2].u >> (32 * i));
	}
	return (int)syscall(SYS_capset, &hdr, data);
}

static void *map_pages(size_t bytes)
{
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int op_setgroups(const union tsr_field *f)
{
	uint32_t n = f[0].x.n;
	gid_t *gids = map_pages(n * sizeof(gid_t));
	if (!gids)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		gids[i] = (gid_t)rd64(f[0].x.p + 8 * i);
	int r = (int)syscall(SYS_setgroups, (size_t)n, gids);
	int e = errno;
	munmap(gids, n ? n * sizeof(gid_t) : 1);
	errno = e;
	return r;
}

static int op_chdir(const union tsr_field *f)
{
	if (chdir(f[0].x.s) < 0)
		return -1;
	if (f[1].u & TSR_P_CHECK_INSIDE) {
		/* The raw syscall reports "(unreachable)/..." for a cwd outside the
		 * root, where glibc would hide it (CVE-2024-21626). */
		char buf[TSR_PATH_MAX];
		long n = syscall(SYS_getcwd, buf, sizeof buf);
		if (n < 0)
			return -1;
		if (buf[0] != '/')
			fail(EPERM, TSR_D_CWD_OUTSIDE);
	}
	return 0;
}

static unsigned long parse_hex(const char *s, const char **end)
{
	unsigned long v = 0;
	for (;; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else
			break;
		v = v * 16 + (unsigned long)d;
	}
	*end = s;
	return v;
}

static int op_keyring(const union tsr_field *f)
{
	long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, f[0].x.s);
	if (id < 0)
		return -1;
	/* The description is "type;uid;gid;perm;name"; perm is hex. */
	char desc[256];
	long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof desc - 1);
	if (n < 0)
		return -1;
	desc[n < (long)sizeof desc ? n : (long)sizeof desc - 1] = '\0';
	const char *p = desc;
	for (int semis = 0; *p && semis < 3; p++)
		if (*p == ';')
			semis++;
	const char *end;
	unsigned long perm = parse_hex(p, &end);
	if (*end != ';') {
		errno = EINVAL;
		return -1;
	}
	return (int)syscall(SYS_keyctl, KEYCTL_SETPERM, id, perm | (unsigned long)f[1].u);
}

static int op_close_fds(const union tsr_field *f)
{
	unsigned int first = (unsigned int)f[0].u;
	for (unsigned int fd = 0; fd < first; fd++) {
		int fl = fcntl((int)fd, F_GETFD);
		if (fl >= 0 && (fl & FD_CLOEXEC))
			fcntl((int)fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
	/* CLOEXEC rather than close: the sync socket must live until execve. */
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL && errno != EPERM)
		return -1;
	/* Older kernels, or a seccomp profile without close_range: one fd at a
	 * time, up to the fd limit. */
	struct rlimit rl;
	if (prlimit(0, RLIMIT_NOFILE, NULL, &rl) < 0)
		return -1;
	unsigned long last = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1UL << 20) ? (1UL << 20) : rl.rlim_cur;
	for (unsigned long fd = first; fd < last; fd++) {
		int fl = fcntl((int)fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC);
	}
	return 0;
}

static int op_reopen_devnull(void)
{
	int fd = open_in_root("/dev/null", O_RDWR, 0);
	if (fd < 0)
		return -1;
	if (!is_devnull(fd))
		fail(ENODEV, TSR_D_NOT_DEVNULL);
	for (int i = 0; i < 3; i++)
		if (is_devnull(i) && dup3(fd, i, 0) < 0) {
			close_keep_errno(fd);
			return -1;
		}
	close(fd);
	return 0;
}

static int op_mask_path(const union tsr_field *f)
{
	char tb[32], sb[32];
	int tfd = open_in_root(f[0].x.s, O_PATH, 0);
	if (tfd < 0)
		return -1;
	struct stat st;
	int r = fstat(tfd, &st);
	if (r == 0 && S_ISDIR(st.st_mode)) {
		r = mount("tmpfs", fdpath(tfd, tb), "tmpfs", MS_RDONLY, "nr_blocks=1,nr_inodes=1");
		if (r < 0 && errno == EINVAL)
			r = mount("tmpfs", fdpath(tfd, tb), "tmpfs", MS_RDONLY, "nr_blocks=1,nr_inodes=2");
	} else if (r == 0) {
		int null = open_in_root("/dev/null", O_PATH, 0);
		if (null < 0) {
			close_keep_errno(tfd);
			return -1;
		}
		if (!is_devnull(null))
			fail(ENODEV, TSR_D_NOT_DEVNULL);
		r = mount(fdpath(null, sb), fdpath(tfd, tb), NULL, MS_BIND, NULL);
		close_keep_errno(null);
	}
	close_keep_errno(tfd);
	return r;
}

static int op_exec_fifo(const union tsr_field *f)
{
	char rel[32];
	int fifo = (int)f[0].u;
	/* "self/fd/N" relative to the kept procfs: reopens the O_PATH fifo for
	 * writing, which blocks until `start` opens it for reading. */
	memcpy(rel, "self/fd/", 8);
	char num[16];
	const char *n = utoa(num + sizeof num, (unsigned long)fifo);
	memcpy(rel + 8, n, strlen(n) + 1);
	int fd;
	do
		fd = openat(g_proc, rel, O_WRONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	ssize_t w;
	do
		w = write(fd, "0", 1);
	while (w < 0 && errno == EINTR);
	close_keep_errno(fd);
	close(fifo);
	close(g_proc);
	g_proc = -1;
	return w == 1 ? 0 : -1;
}

/* Regular and executable for us. The old faccessat syscall, not glibc's
 * faccessat2 (a seccomp profile written before it answers EPERM, not ENOSYS);
 * where that is refused too, the mode bits (as Go's LookPath). */
static int executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EACCES;
		return -1;
	}
	if (syscall(SYS_faccessat, AT_FDCWD, path, X_OK) == 0)
		return 0;
	if (errno != EPERM && errno != ENOSYS)
		return -1;
	if (st.st_mode & 0111)
		return 0;
	errno = EACCES;
	return -1;
}

static int op_find_exec(const union tsr_field *f)
{
	const char *file = f[0].x.s, *path = f[1].x.s;
	size_t fl = strlen(file);
	if (fl == 0 || fl >= sizeof g_exec_path) {
		errno = ENOENT;
		return -1;
	}
	if (strchr(file, '/')) {
		memcpy(g_exec_path, file, fl + 1);
		return executable(g_exec_path);
	}
	int seen_eacces = 0;
	const char *p = path;
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t dl = colon ? (size_t)(colon - p) : strlen(p);
		if (dl == 0) { /* an empty entry means the current directory */
			p = ".";
			dl = 1;
		}
		if (dl + 1 + fl < sizeof g_exec_path) {
			memcpy(g_exec_path, p, dl);
			g_exec_path[dl] = '/';
			memcpy(g_exec_path + dl + 1, file, fl + 1);
			if (executable(g_exec_path) == 0)
				return 0;
			if (errno == EACCES)
				seen_eacces = 1;
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	g_exec_path[0] = '\0';
	if (seen_eacces) {
		errno = EACCES;
		return -1;
	}
	fail(ENOENT, TSR_D_NOT_FOUND_PATH);
}

static char **string_vector(const union tsr_field *v)
{
	char **out = map_pages((v->x.n + 1) * sizeof(char *));
	if (!out)
		return NULL;
	const uint8_t *p = v->x.p;
	for (uint32_t i = 0; i < v->x.n; i++) {
		uint32_t len = rd32(p);
		out[i] = (char *)(p + 8);
		p += 8 + pad8(len + 1);
	}
	out[v->x.n] = NULL;
	return out;
}

static int op_exec(const union tsr_field *f)
{
	char **argv = string_vector(&f[0]);
	char **envp = string_vector(&f[1]);
	if (!argv || !envp || !argv[0])
		return -1;
	const char *file = g_exec_path[0] ? g_exec_path : argv[0];
	execve(file, argv, envp);
	return -1;
}

static int op_write_file(const union tsr_field *f)
{
	int fd = open(f[0].x.s, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!on_fs(fd, PROC_SUPER_MAGIC))
		fail(EXDEV, TSR_D_NOT_PROCFS);
	size_t len = f[1].x.n;
	ssize_t w;
	do
		w = write(fd, f[1].x.s, len);
	while (w < 0 && errno == EINTR);
	close_keep_errno(fd);
	if (w >= 0 && (size_t)w != len) {
		errno = EIO;
		return -1;
	}
	return w < 0 ? -1 : 0;
}

/* The filter is compiled by the parent; each u64 of the array is one struct
 * sock_filter in memory order. A NEW_LISTENER filter hands back the notify fd,
 * which goes to the parent over the sync socket. */
static int op_seccomp(const union tsr_field *f)
{
	unsigned int flags = (unsigned int)f[0].u;
	struct sock_fprog prog = {
		.len = (unsigned short)f[1].x.n,
		.filter = (struct sock_filter *)(uintptr_t)f[1].x.p,
	};
	if (f[1].x.n == 0 || f[1].x.n > BPF_MAXINSNS) {
		errno = EINVAL;
		return -1;
	}
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (r < 0)
		return -1;
	if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
		int fd = (int)r;
		struct tsr_msg m = { .type = TSR_MSG_FD, .op = g_op, .err = 0, .value = TSR_FD_SECCOMP_NOTIFY };
		ssize_t s = sendmsg_fds(g_sync, &fd, 1, &m, sizeof m);
		close_keep_errno(fd);
		if (s < 0)
			return -1;
	}
	return 0;
}

static int op_sync(const union tsr_field *f)
{
	/* Unsent (a seccomp profile may deny send), the parent would wait for
	 * us and we for it: exit, and it sees the socket close instead. */
	if (send_msg(TSR_MSG_SYNC, g_op, 0, (int)f[0].u) < 0)
		_exit(1);
	struct tsr_msg reply;
	ssize_t r;
	do
		r = recv(g_sync, &reply, sizeof reply, 0);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)sizeof reply || reply.type != TSR_MSG_SYNC || reply.err != 0)
		_exit(1); /* the parent gave up on us; it reports the reason itself */
	return 0;
}

/* CLONE_PARENT: the new process is a child of our parent (the runtime), which
 * can then wait for it; the intermediate (us) exits at once. The new process
 * waits on a pipe until we have sent its pid and exited: its own messages
 * (READY) must not reach the runtime first, or the runtime would record our
 * pid as the process's (a pid file naming a process that exits 0 at once). */
static int op_fork(void)
{
	int gate[2];
	if (pipe2(gate, O_CLOEXEC) < 0)
		return -1;
	long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0UL, NULL, NULL, 0UL);
	if (pid < 0) {
		close_keep_errno(gate[0]);
		close_keep_errno(gate[1]);
		return -1;
	}
	if (pid > 0) {
		send_msg(TSR_MSG_PID, g_op, 0, (int)pid);
		_exit(0); /* closes gate[1]: the child's read returns */
	}
	close(gate[1]);
	char c;
	ssize_t r;
	do
		r = read(gate[0], &c, 1);
	while (r < 0 && errno == EINTR);
	close(gate[0]);
	return 0;
}

/* struct sched_attr (linux/sched/types.h), version 1 (48 bytes, no util clamps) */
struct tsr_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

static int op_sched_setattr(const union tsr_field *f)
{
	struct tsr_sched_attr a = {
		.size = sizeof a,
		.sched_policy = (uint32_t)f[0].u,
		.sched_flags = f[1].u,
		.sched_nice = (int32_t)f[2].u,
		.sched_priority = (uint32_t)f[3].u,
		.sched_runtime = f[4].u,
		.sched_deadline = f[5].u,
		.sched_period = f[6].u,
	};
	return (int)syscall(SYS_sched_setattr, 0, &a, 0);
}

static int run_op(uint16_t code, const union tsr_field *f)
{
	switch (code) {
	case TSR_OP_SETNS: {
		int fd = open(f[0].x.s, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		int r = setns(fd, (int)f[1].u);
		close_keep_errno(fd);
		return r;
	}
	case TSR_OP_UNSHARE:
		return unshare((int)f[0].u);
	case TSR_OP_SYNC:
		return op_sync(f);
	case TSR_OP_FORK:
		return op_fork();
	case TSR_OP_OPEN_ROOT:
		g_root = open(f[0].x.s, O_PATH | O_DIRECTORY | O_CLOEXEC);
		return g_root < 0 ? -1 : 0;
	case TSR_OP_OPEN_PROC:
		g_proc = open(f[0].x.s, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (g_proc >= 0 && !on_fs(g_proc, PROC_SUPER_MAGIC))
			fail(EXDEV, TSR_D_NOT_PROCFS);
		return g_proc < 0 ? -1 : 0;
	case TSR_OP_MOUNT:
		return op_mount(f);
	case TSR_OP_REMOUNT:
		return op_remount(f);
	case TSR_OP_MOUNT_SETATTR:
		return op_mount_setattr(f);
	case TSR_OP_MKDIR:
		return op_mkdir(f);
	case TSR_OP_MKNOD:
		return op_mknod(f);
	case TSR_OP_SYMLINK:
		return op_symlink(f);
	case TSR_OP_UNLINK:
		return op_unlink(f);
	case TSR_OP_PIVOT_ROOT:
		return op_pivot_root();
	case TSR_OP_MOVE_ROOT:
		return op_move_root();
	case TSR_OP_CHROOT:
		return op_chroot();
	case TSR_OP_SETHOSTNAME:
		return sethostname(f[0].x.s, f[0].x.n);
	case TSR_OP_SETDOMAINNAME:
		return setdomainname(f[0].x.s, f[0].x.n);
	case TSR_OP_CONSOLE:
		return op_console(f);
	case TSR_OP_SETSID:
		return setsid() < 0 ? -1 : 0;
	case TSR_OP_SETRLIMIT: {
		struct rlimit rl = { .rlim_cur = f[1].u, .rlim_max = f[2].u };
		return prlimit(0, (__rlimit_resource_t)f[0].u, &rl, NULL);
	}
	case TSR_OP_PRCTL:
		return prctl((int)f[0].u, f[1].u, f[2].u, f[3].u, f[4].u);
	case TSR_OP_CAPSET:
		return op_capset(f);
	case TSR_OP_SETGROUPS:
		return op_setgroups(f);
	case TSR_OP_SETRESGID: /* raw syscalls: glibc would signal Node's threads */
		return (int)syscall(SYS_setresgid, (gid_t)f[0].u, (gid_t)f[0].u, (gid_t)f[0].u);
	case TSR_OP_SETRESUID:
		return (int)syscall(SYS_setresuid, (uid_t)f[0].u, (uid_t)f[0].u, (uid_t)f[0].u);
	case TSR_OP_UMASK:
		umask((mode_t)f[0].u);
		return 0;
	case TSR_OP_CHDIR:
		return op_chdir(f);
	case TSR_OP_KEYRING:
		return op_keyring(f);
	case TSR_OP_CLOSE_FDS:
		return op_close_fds(f);
	case TSR_OP_REOPEN_DEVNULL:
		return op_reopen_devnull();
	case TSR_OP_MASK_PATH:
		return op_mask_path(f);
	case TSR_OP_EXEC_FIFO:
		return op_exec_fifo(f);
	case TSR_OP_FIND_EXEC:
		return op_find_exec(f);
	case TSR_OP_EXEC:
		return op_exec(f);
	case TSR_OP_WRITE_FILE:
		return op_write_file(f);
	case TSR_OP_UMOUNT:
		return umount2(f[0].x.s, (int)f[1].u);
	case TSR_OP_SECCOMP:
		return op_seccomp(f);
	case TSR_OP_DUP2:
		return dup3((int)f[0].u, (int)f[1].u, 0) < 0 ? -1 : 0;
	case TSR_OP_PERSONALITY:
		return personality((unsigned long)f[0].u) < 0 ? -1 : 0;
	case TSR_OP_IOPRIO_SET:
		return (int)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (int)f[0].u);
	case TSR_OP_SCHED_SETATTR:
		return op_sched_setattr(f);
	}
	errno = ENOSYS;
	return -1;
}

static int ignored(uint16_t flags, int err)
{
	return ((flags & TSR_OPF_IGNORE_ENOENT) && err == ENOENT) ||
	       ((flags & TSR_OPF_IGNORE_EEXIST) && err == EEXIST) ||
	       ((flags & TSR_OPF_IGNORE_EPERM) && err == EPERM) ||
	       ((flags & TSR_OPF_IGNORE_EINVAL) && err == EINVAL) ||
	       ((flags & TSR_OPF_IGNORE_ENOSYS) && err == ENOSYS);
}

__attribute__((noreturn)) static void child_main(const uint8_t *plan)
{
	struct tsr_plan_header h;
	memcpy(&h, plan, sizeof h);
	g_sync = h.sync_fd;
	if (h.parent_sync_fd >= 0)
		close(h.parent_sync_fd);

	/* Node's handlers must never run here, and SIG_IGN (Node ignores
	 * SIGPIPE) would survive execve into the container. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	uint32_t off = sizeof h;
	union tsr_field f[TSR_MAX_FIELDS];
	for (uint32_t i = 0; i < h.op_count; i++) {
		struct tsr_op_header oh;
		memcpy(&oh, plan + off, sizeof oh);
		g_op = (int)i;
		decode_fields(plan, off + sizeof oh, off + oh.len, op_schemas[oh.code], f);
		if (run_op(oh.code, f) < 0 && !ignored(oh.flags, errno))
			fail(errno, TSR_D_NONE);
		off += oh.len;
	}
	g_op = (int)h.op_count;
	fail(ENOEXEC, TSR_D_NONE); /* a plan must end in EXEC */
}

/* ---- parent side ------------------------------------------------------------ */

int tsr_spawn(const uint8_t *plan, uint32_t len, int32_t *out_pid, int32_t *out_pidfd)
{
	if (tsr_plan_check(plan, len) != -1)
		return -EINVAL;
	struct tsr_plan_header h;
	memcpy(&h, plan, sizeof h);

	int pidfd = -1;
	struct clone_args args;
	memset(&args, 0, sizeof args);
	args.flags = h.clone_flags | CLONE_PIDFD;
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	if (h.cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)h.cgroup_fd;
	}

	/* Block every signal across clone so no Node handler can run in the
	 * child before it resets them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid == 0)
		child_main(plan);
	int err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -err;
	*out_pid = (int32_t)pid;
	*out_pidfd = pidfd;
	return 0;
}

/* Receives one fd (and its name) sent with SCM_RIGHTS. */
int tsr_recv_fd(int sock, char *buf, uint32_t buflen)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = buflen ? buflen - 1 : 0 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof cbuf,
	};
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (buflen)
		buf[n] = '\0';
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EBADMSG;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* One message and, if one rides along, its fd (else *out_fd = -1). Returns the
 * bytes read (0 at end of file) or -errno. */
int tsr_recv_msg(int sock, uint8_t *buf, uint32_t buflen, int32_t *out_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = buflen };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof cbuf,
	};
	*out_fd = -1;
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(out_fd, CMSG_DATA(c), sizeof(int));
	return (int)n;
}

/* Sends data with one fd riding along (SCM_RIGHTS) on a stream socket: the
 * fd goes with the first sendmsg, any rest of the data after it. 0 or -errno. */
int tsr_send_fd(int sock, int fd, const uint8_t *data, uint32_t len)
{
	if (len == 0)
		return -EINVAL; /* a stream socket carries no ancillary data without a byte */
	ssize_t r = sendmsg_fds(sock, &fd, 1, data, len);
	if (r < 0)
		return -errno;
	for (uint32_t off = (uint32_t)r; off < len; off += (uint32_t)r) {
		do
			r = send(sock, data + off, len - off, MSG_NOSIGNAL);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
	}
	return 0;
}

/* A unix socket of the given type at path: connected, or bound and listening
 * (mode 0600 before anyone can connect). fd or -errno. */
int tsr_unix_socket(const char *path, int type, int listening)
{
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	size_t len = strlen(path);
	if (len >= sizeof addr.sun_path)
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, len + 1);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r;
	if (listening) {
		mode_t old = umask(0177);
		r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
		umask(old);
		if (r == 0)
			r = listen(fd, 16);
	} else {
		do
			r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
		while (r < 0 && errno == EINTR);
	}
	if (r < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int tsr_unix_connect(const char *path)
{
	return tsr_unix_socket(path, SOCK_STREAM, 0);
}

/* One message with nfds fds riding along (SCM_RIGHTS), for a SOCK_SEQPACKET
 * socket: all or nothing. 0 or -errno. */
int tsr_send_fds(int sock, const int32_t *fds, uint32_t nfds, const uint8_t *data, uint32_t len)
{
	if (len == 0)
		return -EINVAL;
	ssize_t r = sendmsg_fds(sock, fds, nfds, data, len);
	if (r < 0)
		return -errno;
	return r == (ssize_t)len ? 0 : -EMSGSIZE;
}

/* Sizes and offsets of the shim protocol's records, checked by the
 * TypeScript side's unit tests (src/tasks/shim-protocol.ts). */
uint32_t tsr_shim_layout(uint32_t which)
{
	switch (which) {
	case 0:
		return sizeof(struct tsr_shim_req);
	case 1:
		return offsetof(struct tsr_shim_req, role);
	case 2:
		return offsetof(struct tsr_shim_req, name);
	case 3:
		return sizeof(struct tsr_shim_resp);
	case 4:
		return sizeof(struct tsr_shim_proc);
	case 5:
		return offsetof(struct tsr_shim_proc, exited_ns);
	case 6:
		return offsetof(struct tsr_shim_proc, name);
	case 7:
		return sizeof(struct tsr_shim_event);
	case 8:
		return TSR_SHIM_SLOT_BASE;
	}
	return 0;
}
