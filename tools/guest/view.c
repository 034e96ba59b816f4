// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The guest's filesystem (guest.h), built from outside in its fresh mount
 * namespace before its first process runs:
 *
 *   /tmp, /run          private tmpfs: nothing of the host's, writable
 *   DIR (the run dir)   a read-only tmpfs holding only sys/, the view of
 *                       one VF: class/infiniband_verbs/abi_version,
 *                       class/infiniband_verbs/uverbsM (writable: the
 *                       command file), class/infiniband/vhca0_vfN and
 *                       class/misc/rdma_cm (writable: rdma_cm's file),
 *                       each a bind of the same node of vhcad's view
 *   /dev                a read-only tmpfs: null, zero, full, random,
 *                       urandom, tty (binds of the host's nodes), its own
 *                       pts, shm and mqueue, infiniband/uverbsM and
 *                       infiniband/rdma_cm (markers: init.c's supervisor
 *                       gives opens of rdma_cm vhcad's file)
 *   shares              the host's directories, writable, same paths
 *   everything else     the host's, read-only
 *
 * Read-only is what keeps a guest that runs as uid 0 (without any
 * capability, init.c) from writing the host's root-owned files; /tmp and
 * /run are its own because they hold the host's sockets and scratch
 * files.  The guest cannot undo any of this: it has no CAP_SYS_ADMIN, and
 * a user namespace of its own would copy these mounts locked
 * (MNT_LOCKED, MNT_LOCK_READONLY).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "guest.h"

/* The host's device nodes a program expects in any /dev. */
static const char *const dev_nodes[] = {
	"null", "zero", "full", "random", "urandom", "tty",
};

/* The host's objects the view is built from, opened while in sight. */
struct host_refs {
	int sys;				/* vhcad's view */
	int dev;				/* the host's /dev */
	int shares[GUEST_SHARES_MAX];
	char *cwd;
};

static void mount_or_fail(const char *source, const char *target,
			  const char *type, unsigned long flags,
			  const char *data)
{
	if (mount(source, target, type, flags, data))
		guest_fail("cannot mount %s on %s: %s",
			   type ? type : source ? source : "(propagation)",
			   target, strerror(errno));
}

/* snprintf into a PATH_MAX buffer, failing rather than truncating. */
static void path_format(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void path_format(char *buf, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	if (len < 0 || len >= PATH_MAX)
		guest_fail("path too long in the guest's view");
}

static void mkdir_or_fail(const char *path)
{
	if (mkdir(path, 0755))
		guest_fail("cannot create %s: %s", path, strerror(errno));
}

/* mkdir -p: the run dir or a share below a covered /tmp or /run. */
static void make_path(const char *path)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		guest_fail("path too long: %s", path);
	for (char *p = buf + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			guest_fail("cannot create %s in the guest: %s", buf,
				   strerror(errno));
		*p = saved;
		if (!saved)
			break;
	}
}

static int open_path(const char *path)
{
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		guest_fail("cannot open %s: %s", path, strerror(errno));
	return fd;
}

/*
 * Binds @rel of the host directory @host (an O_PATH fd: its mount may be
 * covered by now) onto @target, creating the mount point first.
 */
static void bind_from(int host, const char *rel, const char *target,
		      bool is_dir)
{
	char source[PATH_MAX];

	snprintf(source, sizeof(source), "/proc/self/fd/%d%s%s", host,
		 *rel ? "/" : "", rel);
	if (is_dir) {
		make_path(target);
	} else {
		int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			      0444);

		if (fd < 0)
			guest_fail("cannot create %s: %s", target,
				   strerror(errno));
		close(fd);
	}
	if (mount(source, target, NULL, MS_BIND, NULL))
		guest_fail("cannot bind %s%s%s of the host on %s: %s", source,
			   *rel ? "/" : "", rel, target, strerror(errno));
}

static void set_writable(const char *path)
{
	struct mount_attr attr = { .attr_clr = MOUNT_ATTR_RDONLY };

	if (mount_setattr(AT_FDCWD, path, 0, &attr, sizeof(attr)))
		guest_fail("cannot make %s writable: %s", path,
			   strerror(errno));
}

static void open_host_refs(const struct guest *g, struct host_refs *h)
{
	char cwd[PATH_MAX];

	h->sys = open(g->sys_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (h->sys < 0)
		guest_fail("cannot open %s: %s", g->sys_path, strerror(errno));
	h->dev = open_path("/dev");
	for (size_t i = 0; i < g->num_shares; i++)
		h->shares[i] = open_path(g->shares[i]);
	h->cwd = getcwd(cwd, sizeof(cwd)) ? strdup(cwd) : NULL;
}

static void cover(const char *dir, const char *mode)
{
	char data[64];

	snprintf(data, sizeof(data), "mode=%s", mode);
	mount_or_fail("vhca-guest", dir, "tmpfs", MS_NOSUID | MS_NODEV, data);
}

/*
 * Replaces the run dir with a tmpfs whose sys/ holds only what
 * libibverbs (v44: init.c, sysfs.c) reads for one device.  Covering the
 * whole run dir also hides vhcad's management socket.
 */
static void build_run_dir(const struct guest *g, struct host_refs *h)
{
	char rel[PATH_MAX], target[PATH_MAX];
	static const char *const dirs[] = {
		"", "/class", "/class/infiniband", "/class/infiniband_verbs",
		"/class/misc",
	};

	make_path(g->run_dir);
	mount_or_fail("vhca-guest", g->run_dir, "tmpfs",
		      MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k");
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		path_format(target, "%s%s", g->sys_path, dirs[i]);
		mkdir_or_fail(target);
	}
	path_format(target, "%s/class/infiniband_verbs/abi_version",
		    g->sys_path);
	bind_from(h->sys, "class/infiniband_verbs/abi_version", target, false);
	path_format(rel, "class/infiniband_verbs/" GUEST_UVERBS_PREFIX "%u",
		    g->uverbs);
	path_format(target, "%s/%s", g->sys_path, rel);
	bind_from(h->sys, rel, target, true);
	path_format(rel, "class/infiniband/" GUEST_VF_PREFIX "%u", g->vf);
	path_format(target, "%s/%s", g->sys_path, rel);
	bind_from(h->sys, rel, target, true);
	path_format(target, "%s/" GUEST_RDMA_CM_DIR, g->sys_path);
	bind_from(h->sys, GUEST_RDMA_CM_DIR, target, true);

	/*
	 * The full view is still mounted beneath; detach our copy of it so
	 * that nothing (not even unmounting the tmpfs) shows the PF or the
	 * other VFs.  The binds are mounts of their own and stay.
	 */
	snprintf(rel, sizeof(rel), "/proc/self/fd/%d", h->sys);
	if (umount2(rel, MNT_DETACH))
		guest_fail("cannot detach the host's view from the guest: %s",
			   strerror(errno));
	close(h->sys);
}

static void symlink_or_fail(const char *target, const char *path)
{
	if (symlink(target, path))
		guest_fail("cannot create %s: %s", path, strerror(errno));
}

/* /dev as a container's: the harmless nodes, and this VF's marker node. */
static void build_dev(const struct guest *g, struct host_refs *h)
{
	static const char *const fd_links[][2] = {
		{ "/proc/self/fd", "/dev/fd" },
		{ "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" },
		{ "/proc/self/fd/2", "/dev/stderr" },
		{ "pts/ptmx", "/dev/ptmx" },
	};
	char path[PATH_MAX];

	mount_or_fail("vhca-guest", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
		      "mode=0755,size=64k");
	for (size_t i = 0; i < sizeof(dev_nodes) / sizeof(dev_nodes[0]); i++) {
		snprintf(path, sizeof(path), "/dev/%s", dev_nodes[i]);
		if (!faccessat(h->dev, dev_nodes[i], F_OK, 0))
			bind_from(h->dev, dev_nodes[i], path, false);
	}
	close(h->dev);
	for (size_t i = 0; i < sizeof(fd_links) / sizeof(fd_links[0]); i++)
		symlink_or_fail(fd_links[i][0], fd_links[i][1]);

	mkdir_or_fail("/dev/pts");
	mount_or_fail("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		      "newinstance,ptmxmode=0666,mode=0620");
	/* Private POSIX shared memory and message queues (with the IPC
	 * namespace for System V): MPI cannot bypass the VF. */
	mkdir_or_fail("/dev/shm");
	mount_or_fail("vhca-guest", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
		      "mode=1777");
	mkdir_or_fail("/dev/mqueue");
	mount_or_fail("mqueue", "/dev/mqueue", "mqueue",
		      MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);

	mkdir_or_fail(GUEST_UVERBS_DIR);
	snprintf(path, sizeof(path),
		 GUEST_UVERBS_DIR "/" GUEST_UVERBS_PREFIX "%u", g->uverbs);
	if (mknod(path, S_IFCHR | 0666, g->node_rdev))
		guest_fail("cannot create %s: %s", path, strerror(errno));
	/* mknod() honours the umask; guests of any uid must open it. */
	if (chmod(path, 0666))
		guest_fail("cannot chmod %s: %s", path, strerror(errno));
	/* Never opened (the supervisor answers), but ls and stat see it. */
	if (mknod(GUEST_RDMA_CM_NODE, S_IFCHR | 0666, g->node_rdev) ||
	    chmod(GUEST_RDMA_CM_NODE, 0666))
		guest_fail("cannot create " GUEST_RDMA_CM_NODE ": %s",
			   strerror(errno));
}

static void bind_shares(const struct guest *g, struct host_refs *h)
{
	for (size_t i = 0; i < g->num_shares; i++) {
		bind_from(h->shares[i], "", g->shares[i], true);
		close(h->shares[i]);
	}
}

/* Everything read-only, then the guest's own places writable again. */
static void seal(const struct guest *g)
{
	static const char *const writable[] = {
		"/tmp", "/run", "/dev/shm", "/dev/pts", "/dev/mqueue",
	};
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
	char path[PATH_MAX];

	if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)))
		guest_fail("cannot make the guest's filesystem read-only: %s",
			   strerror(errno));
	for (size_t i = 0; i < sizeof(writable) / sizeof(writable[0]); i++)
		set_writable(writable[i]);
	/* The command file is written (do_dentry_open wants a rw mount). */
	snprintf(path, sizeof(path),
		 "%s/class/infiniband_verbs/" GUEST_UVERBS_PREFIX "%u",
		 g->sys_path, g->uverbs);
	set_writable(path);
	snprintf(path, sizeof(path), "%s/" GUEST_RDMA_CM_DIR, g->sys_path);
	set_writable(path);
	for (size_t i = 0; i < g->num_shares; i++)
		set_writable(g->shares[i]);
}

/* A private network namespace has loopback only, and it starts down. */
static void bring_up_loopback(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		guest_fail("cannot find the guest's loopback: %s",
			   strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		guest_fail("cannot bring up the guest's loopback: %s",
			   strerror(errno));
	close(fd);
}

void guest_build_view(const struct guest *g)
{
	struct host_refs h;

	if (!strcmp(g->run_dir, "/tmp") || !strcmp(g->run_dir, "/run") ||
	    !strcmp(g->run_dir, "/dev"))
		guest_fail("run dir %s: a guest has its own; put vhcad's run dir below it",
			   g->run_dir);
	open_host_refs(g, &h);
	/* Nothing we mount from here on may propagate back to the host. */
	mount_or_fail(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

	cover("/tmp", "1777");
	cover("/run", "0755");
	build_dev(g, &h);
	build_run_dir(g, &h);
	bind_shares(g, &h);
	seal(g);

	if (sethostname(g->name, strlen(g->name)))
		guest_fail("cannot set the guest's hostname: %s",
			   strerror(errno));
	if (!g->host_net)
		bring_up_loopback();
	/* The old cwd may lie beneath a cover: go to the guest's own. */
	if (!h.cwd || chdir(h.cwd))
		if (chdir("/"))
			guest_fail("cannot enter /: %s", strerror(errno));
	free(h.cwd);
}
