// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The rdma_cm supervisor (cm_supervise.h).  The filter is the only cost
 * a supervised process pays on calls that are not about rdma_cm: opens
 * for reading alone and fstat of ordinary fds never leave the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#include "cm_supervise.h"

#define CM_PATH "/dev/infiniband/rdma_cm"

/* ---- the filter ---------------------------------------------------------------------- */

#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARG(n) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, \
			   offsetof(struct seccomp_data, args[n]))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))

int cm_sup_install(int sock)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		RET(SECCOMP_RET_ALLOW),
		LD_NR,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 5),
		/* open(2) of rdma_cm is O_RDWR: nothing else is trapped. */
		LD_ARG(2),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, O_ACCMODE),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, O_RDWR, 0, 1),
		RET(SECCOMP_RET_USER_NOTIF),
		RET(SECCOMP_RET_ALLOW),
		/* (the accumulator still holds nr here) */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 0, 5),
		LD_ARG(1),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, O_ACCMODE),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, O_RDWR, 0, 1),
		RET(SECCOMP_RET_USER_NOTIF),
		RET(SECCOMP_RET_ALLOW),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 0, 1),
		RET(SECCOMP_RET_USER_NOTIF),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fstat, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_newfstatat, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_statx, 1, 0),
		RET(SECCOMP_RET_ALLOW),
		/* The fstat family: only the reserved fds we hand out. */
		LD_ARG(0),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, CM_SUP_FD_LOW, 0, 2),
		BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, CM_SUP_FD_HIGH, 1, 0),
		RET(SECCOMP_RET_USER_NOTIF),
		RET(SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(code) / sizeof(code[0]), .filter = code,
	};
	char dummy = 0;
	struct iovec iov = { .iov_base = &dummy, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl = { 0 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	int fd;

	fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			  SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		return -errno;
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	if (sendmsg(sock, &msg, 0) != 1) {
		int err = errno;

		close(fd);
		return -err;
	}
	close(fd);
	return 0;
}

int cm_sup_receive(int sock)
{
	char dummy;
	struct iovec iov = { .iov_base = &dummy, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return errno ? -errno : -EPIPE;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

/* ---- the supervisor ---------------------------------------------------------------- */

struct sup {
	int listener;
	const char *ucma_path;
	dev_t rdev;
	dev_t file_dev;
	ino_t file_ino;
};

/* Reads up to @n bytes at @addr of @pid, stopping at a NUL or a fault. */
static size_t read_mem(pid_t pid, uint64_t addr, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		size_t chunk = 4096 - ((addr + got) & 4095);
		struct iovec local, remote;
		ssize_t r;

		if (chunk > n - got)
			chunk = n - got;
		local = (struct iovec){ buf + got, chunk };
		remote = (struct iovec){ (void *)(uintptr_t)(addr + got), chunk };
		r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (r <= 0)
			break;
		if (memchr(buf + got, 0, (size_t)r))
			return got + (size_t)r;
		got += (size_t)r;
	}
	return got;
}

static bool path_is_cm(pid_t pid, uint64_t addr)
{
	char buf[sizeof(CM_PATH)];

	return read_mem(pid, addr, buf, sizeof(buf)) == sizeof(buf) &&
	       !memcmp(buf, CM_PATH, sizeof(buf));
}

static bool empty_path(pid_t pid, uint64_t addr)
{
	char c = 1;

	return read_mem(pid, addr, &c, 1) == 1 && c == 0;
}

static void respond(struct sup *s, uint64_t id, int64_t val, int err,
		    bool cont)
{
	struct seccomp_notif_resp resp = {
		.id = id, .val = val, .error = err,
		.flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0,
	};

	/* ENOENT: the caller was killed meanwhile; nothing to answer. */
	ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* A reserved fd number the caller does not use, or -1. */
static int free_fd(pid_t pid)
{
	char path[64];
	struct stat st;

	for (int fd = CM_SUP_FD_HIGH; fd >= CM_SUP_FD_LOW; fd--) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		if (lstat(path, &st) && errno == ENOENT)
			return fd;
	}
	return -1;
}

static void do_open(struct sup *s, const struct seccomp_notif *n,
		    uint64_t path, uint64_t flags)
{
	struct seccomp_notif_addfd add = { .id = n->id };
	int fd, target, ret;

	if (!path_is_cm(n->pid, path)) {
		respond(s, n->id, 0, 0, true);
		return;
	}
	target = free_fd(n->pid);
	if (target < 0) {
		respond(s, n->id, 0, -EMFILE, false);
		return;
	}
	fd = open(s->ucma_path, O_RDWR | O_CLOEXEC |
		  (flags & O_NONBLOCK ? O_NONBLOCK : 0));
	if (fd < 0) {
		/* vhcad is not there: what open() of a missing driver says. */
		respond(s, n->id, 0, -ENODEV, false);
		return;
	}
	add.flags = SECCOMP_ADDFD_FLAG_SETFD | SECCOMP_ADDFD_FLAG_SEND;
	add.srcfd = (uint32_t)fd;
	add.newfd = (uint32_t)target;
	add.newfd_flags = flags & O_CLOEXEC ? O_CLOEXEC : 0;
	ret = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
	if (ret < 0 && errno != ENOENT)
		respond(s, n->id, 0, -errno, false);
	close(fd);
}

/*
 * The process of thread @tid (a notification names the calling thread:
 * librdmacm opens and fstats its event channels from any thread, rsockets
 * from its service thread).  pidfd_open() takes only a process without
 * PIDFD_THREAD (Linux 6.9), and the threads share the fd table.
 */
static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/* Is the caller's @fd an open of the rdma_cm file?  Its fd in ours, or -1. */
static int our_fd(struct sup *s, pid_t pid, int fd)
{
	pid_t tgid = tgid_of(pid);
	int pidfd = tgid > 0 ? (int)syscall(SYS_pidfd_open, tgid, 0) : -1;
	int mine;
	struct stat st;

	if (pidfd < 0)
		return -1;
	mine = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	if (mine < 0)
		return -1;
	if (fstat(mine, &st) || st.st_dev != s->file_dev ||
	    st.st_ino != s->file_ino) {
		close(mine);
		return -1;
	}
	return mine;
}

static bool write_mem(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };

	return process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)len;
}

static void do_stat(struct sup *s, const struct seccomp_notif *n)
{
	const __u64 *a = n->data.args;
	int nr = n->data.nr, mine, err = 0;
	uint64_t buf;

	/* newfstatat and statx only of the fd itself: "" and AT_EMPTY_PATH. */
	if (nr != __NR_fstat &&
	    (!((nr == __NR_newfstatat ? a[3] : a[2]) & AT_EMPTY_PATH) ||
	     !empty_path(n->pid, a[1]))) {
		respond(s, n->id, 0, 0, true);
		return;
	}
	mine = our_fd(s, n->pid, (int)a[0]);
	if (mine < 0) {
		respond(s, n->id, 0, 0, true);
		return;
	}
	if (nr == __NR_statx) {
		struct statx stx;

		buf = a[4];
		if (statx(mine, "", AT_EMPTY_PATH, (unsigned int)a[3], &stx)) {
			err = -errno;
		} else {
			stx.stx_mode = (uint16_t)(S_IFCHR | 0666);
			stx.stx_size = 0;
			stx.stx_rdev_major = major(s->rdev);
			stx.stx_rdev_minor = minor(s->rdev);
			if (!write_mem(n->pid, buf, &stx, sizeof(stx)))
				err = -EFAULT;
		}
	} else {
		struct stat st;

		buf = nr == __NR_fstat ? a[1] : a[2];
		if (fstat(mine, &st)) {
			err = -errno;
		} else {
			st.st_mode = S_IFCHR | 0666;
			st.st_size = 0;
			st.st_rdev = s->rdev;
			if (!write_mem(n->pid, buf, &st, sizeof(st)))
				err = -EFAULT;
		}
	}
	close(mine);
	/* The caller may have gone and its pid been reused meanwhile. */
	if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id))
		return;
	respond(s, n->id, 0, err, false);
}

static void handle(struct sup *s, const struct seccomp_notif *n)
{
	const __u64 *a = n->data.args;

	switch (n->data.nr) {
	case __NR_openat:
		do_open(s, n, a[1], a[2]);
		break;
	case __NR_open:
		do_open(s, n, a[0], a[1]);
		break;
	case __NR_openat2: {
		struct open_how how = { 0 };

		if (a[3] < sizeof(how.flags) ||
		    read_mem(n->pid, a[2], (char *)&how, sizeof(how.flags)) !=
			    sizeof(how.flags) ||
		    (how.flags & O_ACCMODE) != O_RDWR)
			respond(s, n->id, 0, 0, true);
		else
			do_open(s, n, a[1], how.flags);
		break;
	}
	default:
		do_stat(s, n);
		break;
	}
}

int cm_sup_serve(int listener, const char *ucma_path, dev_t node_rdev)
{
	struct sup s = { .listener = listener, .ucma_path = ucma_path,
			 .rdev = node_rdev };
	struct seccomp_notif_sizes sizes;
	struct stat st;

	if (stat(ucma_path, &st))
		return -errno;
	s.file_dev = st.st_dev;
	s.file_ino = st.st_ino;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes))
		return -errno;
	for (;;) {
		struct pollfd p = { .fd = listener, .events = POLLIN };
		union {
			struct seccomp_notif n;
			char pad[512];
		} u;

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* POLLHUP: no process is under the filter any more. */
		if (!(p.revents & POLLIN))
			return 0;
		memset(&u, 0, sizeof(u));
		if (sizes.seccomp_notif > sizeof(u))
			return -EOVERFLOW;
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &u.n)) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			return -errno;
		}
		handle(&s, &u.n);
	}
}
