// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca-guest: runs a command as a guest that owns one VF of vhca0, the way
 * a VM owns a VF passed through to it.
 *
 *   vhca-guest [--vf N] [--name NAME] [--run-dir DIR] -- CMD [ARGS...]
 *
 * The guest gets its own mount, IPC and UTS namespaces.  Inside:
 *   DIR                 a read-only tmpfs holding only sys/, the guest's
 *                       sysfs view: class/infiniband_verbs/abi_version,
 *                       class/infiniband_verbs/uverbsM and
 *                       class/infiniband/vhca0_vfN, each a bind mount of the
 *                       same node of vhcad's view (so attributes stay live
 *                       and uverbsM/vhca_cmd still reaches the daemon)
 *   /dev/infiniband     a tmpfs holding only uverbsM
 *   /dev/shm            a private tmpfs (and /dev/mqueue, if the host has it)
 *   hostname            NAME (default vhca0-vfN)
 *   SYSFS_PATH          DIR/sys
 * and CMD replaces this process (execvp, no fork): its exit status and the
 * signal that kills it reach our parent as they are, and a launcher such as
 * mpirun manages the real process.
 *
 * A VF belongs to one guest at a time: DIR/guests/vhca0_vfN.lock carries an
 * exclusive flock() taken before anything else and held by an fd that is
 * deliberately not close-on-exec, so CMD and every child that inherits it
 * keep the VF until the last of them exits.
 *
 * Exit status: CMD's, or 125 when vhca-guest itself fails (usage, no such
 * VF, VF owned by another guest, setup), 126 when CMD cannot be executed,
 * 127 when it is not found (the conventions of env(1) and timeout(1)).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <vhca/text.h>

#define EXIT_GUEST_FAILED 125
#define EXIT_CANNOT_EXECUTE 126
#define EXIT_NOT_FOUND 127

#define PF_NAME "vhca0"
#define VF_NAME_PREFIX PF_NAME "_vf"
#define DEFAULT_RUN_DIR "/run/vhca"
#define GUESTS_DIR_NAME "guests"
#define UVERBS_DEV_DIR "/dev/infiniband"
#define UVERBS_PREFIX "uverbs"
/* Bound for parsing only; whether the VF exists is asked of the view. */
#define VF_NUMBER_MAX 65535
#define UVERBS_INDEX_MAX 65535
/* A name becomes the guest's hostname: RFC 1123 characters, one to 63. */
#define GUEST_NAME_MAX 63
#define ATTR_MAX 128

struct vf_entry {
	unsigned int vf;
	unsigned int uverbs;
};

struct guest {
	const char *run_dir_arg;	/* as given, for messages */
	char *run_dir;			/* absolute, symlinks resolved */
	char *sys_path;			/* run_dir/sys */
	bool vf_given;
	bool name_given;
	unsigned int vf;
	unsigned int uverbs;
	char name[GUEST_NAME_MAX + 1];
	dev_t node_rdev;		/* of the host's /dev/infiniband/uverbsM */
	int lock_fd;
	char **cmd;
};

/* ---- messages -------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vhca-guest [--vf N] [--name NAME] [--run-dir DIR] -- CMD [ARGS...]\n"
		"Runs CMD as a guest owning VF N of " PF_NAME ": own mount, IPC and UTS\n"
		"namespaces, a sysfs view and /dev/infiniband with that VF only, a\n"
		"private /dev/shm, SYSFS_PATH set.  Must run as root.\n"
		"\n"
		"  --vf N         the VF (default: the lowest one no guest owns)\n"
		"  --name NAME    the guest's hostname (default " PF_NAME "-vfN)\n"
		"  --run-dir DIR  vhcad's run dir (default $VHCA_RUN_DIR, else " DEFAULT_RUN_DIR ")\n"
		"\n"
		"Exit status: CMD's; 125 if vhca-guest fails, 126 if CMD cannot run,\n"
		"127 if CMD is not found.\n");
}

static void print_error(const char *fmt, va_list ap)
{
	fprintf(stderr, "vhca-guest: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
}

static _Noreturn void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_error(fmt, ap);
	va_end(ap);
	exit(EXIT_GUEST_FAILED);
}

static _Noreturn void usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_error(fmt, ap);
	va_end(ap);
	fprintf(stderr, "(vhca-guest --help for usage)\n");
	exit(EXIT_GUEST_FAILED);
}

static char *path_join(const char *dir, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		fail("out of memory");
	return path;
}

/* ---- command line ------------------------------------------------------------ */

/* Hostname rules (RFC 1123 labels joined by dots) so UTS accepts it as is. */
static bool valid_guest_name(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > GUEST_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		bool edge = i == 0 || i == len - 1 || name[i - 1] == '.' ||
			    name[i + 1] == '.';

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9'))
			continue;
		if ((ch == '-' || ch == '.') && !edge)
			continue;
		return false;
	}
	return true;
}

static void parse_command_line(struct guest *g, int argc, char **argv)
{
	static const struct option options[] = {
		{ "vf", required_argument, NULL, 'v' },
		{ "name", required_argument, NULL, 'n' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long vf;
	int c;

	opterr = 0;
	/* "+": stop at CMD, whose own options are none of our business. */
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (g->vf_given)
				usage_error("--vf given twice");
			if (!vhca_parse_decimal(optarg, strlen(optarg),
						VF_NUMBER_MAX, &vf))
				usage_error("--vf '%s' is not a VF number (decimal, 0 to %d)",
					    optarg, VF_NUMBER_MAX);
			g->vf = (unsigned int)vf;
			g->vf_given = true;
			break;
		case 'n':
			if (g->name_given)
				usage_error("--name given twice");
			if (!valid_guest_name(optarg))
				usage_error("--name '%s' is not a valid host name (1 to %d of a-z A-Z 0-9, '-' and '.' inside)",
					    optarg, GUEST_NAME_MAX);
			strcpy(g->name, optarg);
			g->name_given = true;
			break;
		case 'r':
			if (g->run_dir_arg)
				usage_error("--run-dir given twice");
			if (!*optarg)
				usage_error("--run-dir needs a directory");
			g->run_dir_arg = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			usage_error("%s needs a value", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		usage_error("no command given (vhca-guest [options] -- CMD [ARGS...])");
	g->cmd = &argv[optind];

	if (!g->run_dir_arg) {
		const char *env = getenv("VHCA_RUN_DIR");

		g->run_dir_arg = env && *env ? env : DEFAULT_RUN_DIR;
	}
}

/* ---- the devices vhcad serves ------------------------------------------------- */

/* Reads a one-line attribute without its newline; false if unreadable. */
static bool read_attr(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len;

	if (fd < 0)
		return false;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		return false;
	len = (ssize_t)vhca_text_strip_newline(buf, (size_t)len);
	buf[len] = '\0';
	return true;
}

/* "<prefix>N" -> N (at most @max), strictly: "uverbs7", "vhca0_vf3". */
static bool parse_numbered_name(const char *name, const char *prefix,
				unsigned long max, unsigned int *number)
{
	size_t len = strlen(prefix);
	unsigned long value;

	if (strncmp(name, prefix, len) ||
	    !vhca_parse_decimal(name + len, strlen(name + len), max, &value))
		return false;
	*number = (unsigned int)value;
	return true;
}

static int compare_vf(const void *a, const void *b)
{
	const struct vf_entry *x = a, *y = b;

	return (x->vf > y->vf) - (x->vf < y->vf);
}

/*
 * The VFs of vhca0 as the view lists them (class/infiniband_verbs/uverbsM/
 * ibdev), sorted by VF number.  Fails, naming the run dir, when no daemon
 * serves it.
 */
static struct vf_entry *list_vfs(const struct guest *g, size_t *count)
{
	char *verbs_dir = path_join(g->sys_path, "class/infiniband_verbs");
	struct vf_entry *vfs = NULL;
	size_t num = 0, cap = 0;
	bool pf_seen = false;
	struct dirent *entry;
	DIR *dir;

	dir = opendir(verbs_dir);
	if (!dir)
		fail("no vhcad serves %s (cannot read %s: %s); start it with 'vhcad --run-dir %s'",
		     g->run_dir, verbs_dir, strerror(errno), g->run_dir);
	while ((entry = readdir(dir))) {
		char path[PATH_MAX], ibdev[ATTR_MAX];
		unsigned int index, vf;

		if (!parse_numbered_name(entry->d_name, UVERBS_PREFIX,
					 UVERBS_INDEX_MAX, &index))
			continue;
		snprintf(path, sizeof(path), "%s/%s/ibdev", verbs_dir,
			 entry->d_name);
		/* A VF removed while we look has no ibdev any more: skip it. */
		if (!read_attr(path, ibdev, sizeof(ibdev)))
			continue;
		if (!strcmp(ibdev, PF_NAME))
			pf_seen = true;
		if (!parse_numbered_name(ibdev, VF_NAME_PREFIX, VF_NUMBER_MAX,
					 &vf))
			continue;
		if (num == cap) {
			cap = cap ? 2 * cap : 16;
			vfs = realloc(vfs, cap * sizeof(*vfs));
			if (!vfs)
				fail("out of memory");
		}
		vfs[num++] = (struct vf_entry){ .vf = vf, .uverbs = index };
	}
	closedir(dir);
	if (!pf_seen)
		fail("%s has no device " PF_NAME " (is vhcad running on %s?)",
		     verbs_dir, g->run_dir);
	free(verbs_dir);
	if (num)
		qsort(vfs, num, sizeof(*vfs), compare_vf);
	*count = num;
	return vfs;
}

/* ---- ownership ----------------------------------------------------------------- */

static char *lock_path(const struct guest *g, unsigned int vf)
{
	char *path;

	if (asprintf(&path, "%s/" GUESTS_DIR_NAME "/" VF_NAME_PREFIX "%u.lock",
		     g->run_dir, vf) < 0)
		fail("out of memory");
	return path;
}

/*
 * Takes VF vf for this guest: an exclusive flock() on its lock file.  The
 * fd is opened without O_CLOEXEC on purpose: CMD inherits it and the VF
 * stays taken until the last process holding it exits.  Returns the fd,
 * or -1 if another guest holds the VF (holder described in holder[]).
 */
static int try_take_vf(const struct guest *g, unsigned int vf, char *holder,
		       size_t holder_size)
{
	char *path = lock_path(g, vf);
	char record[ATTR_MAX];
	ssize_t len;
	int fd;

	holder[0] = '\0';
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);
	if (fd < 0)
		fail("cannot open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK)
			fail("cannot lock %s: %s", path, strerror(errno));
		/* The record is only for the message; the lock is the truth. */
		len = pread(fd, holder, holder_size - 1, 0);
		holder[len > 0 ? vhca_text_strip_newline(holder, (size_t)len)
			       : 0] = '\0';
		close(fd);
		free(path);
		return -1;
	}
	/* pid stays CMD's pid across execve. */
	len = snprintf(record, sizeof(record), "guest '%s' (pid %d)\n", g->name,
		       (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, record, (size_t)len, 0) != len)
		fail("cannot write %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

static void describe_vfs(const struct vf_entry *vfs, size_t count, char *buf,
			 size_t size)
{
	size_t used = 0;

	if (!count) {
		snprintf(buf, size, PF_NAME " has no VFs: sriov_numvfs is 0");
		return;
	}
	if (count > 16) {
		/* Too many to list; vhcad numbers them without gaps anyway. */
		snprintf(buf, size, PF_NAME " has %zu VFs, vf%u to vf%u", count,
			 vfs[0].vf, vfs[count - 1].vf);
		return;
	}
	used = (size_t)snprintf(buf, size, PF_NAME " has");
	for (size_t i = 0; i < count && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s vf%u",
					 i ? "," : "", vfs[i].vf);
}

static void set_default_name(struct guest *g)
{
	if (!g->name_given)
		snprintf(g->name, sizeof(g->name), PF_NAME "-vf%u", g->vf);
}

/* Picks the VF (given, or the lowest free one) and takes it. */
static void choose_and_take_vf(struct guest *g)
{
	char *guests_dir = path_join(g->run_dir, GUESTS_DIR_NAME);
	char holder[ATTR_MAX], known[512];
	struct vf_entry *vfs;
	size_t count;

	vfs = list_vfs(g, &count);
	describe_vfs(vfs, count, known, sizeof(known));
	if (mkdir(guests_dir, 0755) && errno != EEXIST)
		fail("cannot create %s: %s", guests_dir, strerror(errno));
	free(guests_dir);

	g->lock_fd = -1;
	if (g->vf_given) {
		size_t i = 0;

		while (i < count && vfs[i].vf != g->vf)
			i++;
		if (i == count)
			fail("VF %u of " PF_NAME " does not exist (%s)", g->vf,
			     known);
		set_default_name(g);
		g->lock_fd = try_take_vf(g, g->vf, holder, sizeof(holder));
		if (g->lock_fd < 0)
			fail(VF_NAME_PREFIX "%u is owned by %s; a VF belongs to one guest at a time",
			     g->vf, *holder ? holder : "another guest");
		g->uverbs = vfs[i].uverbs;
	} else {
		for (size_t i = 0; i < count && g->lock_fd < 0; i++) {
			g->vf = vfs[i].vf;
			g->uverbs = vfs[i].uverbs;
			set_default_name(g);
			g->lock_fd = try_take_vf(g, g->vf, holder,
						 sizeof(holder));
		}
		if (g->lock_fd < 0)
			fail(count ? "every VF is owned by a guest (%s)" : "%s",
			     known);
	}
	free(vfs);
}

/* ---- the guest's namespaces ---------------------------------------------------- */

static void mount_or_fail(const char *source, const char *target,
			  const char *type, unsigned long flags,
			  const char *data)
{
	if (mount(source, target, type, flags, data))
		fail("cannot mount %s on %s: %s", type ? type : source, target,
		     strerror(errno));
}

static void mkdir_or_fail(const char *path)
{
	if (mkdir(path, 0755))
		fail("cannot create %s: %s", path, strerror(errno));
}

/*
 * Binds view/rel (a node of vhcad's view, reached through the O_PATH fd
 * host_view because the mount it lives on is covered by now) onto the same
 * place below guest_sys, creating the mount point first.
 */
static void bind_from_view(int host_view, const char *guest_sys,
			   const char *rel, bool is_dir)
{
	char source[PATH_MAX], target[PATH_MAX];

	snprintf(source, sizeof(source), "/proc/self/fd/%d/%s", host_view, rel);
	snprintf(target, sizeof(target), "%s/%s", guest_sys, rel);
	if (is_dir) {
		mkdir_or_fail(target);
	} else {
		int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			      0444);

		if (fd < 0)
			fail("cannot create %s: %s", target, strerror(errno));
		close(fd);
	}
	if (mount(source, target, NULL, MS_BIND, NULL))
		fail("cannot bind %s of vhcad's view: %s", rel,
		     strerror(errno));
}

/*
 * Replaces the run dir with a read-only tmpfs whose sys/ holds only what
 * libibverbs (v44: init.c, sysfs.c) reads for one device: the uverbs ABI,
 * the device's uverbs directory and its class/infiniband directory.
 * Covering the whole run dir also hides vhcad's management socket, through
 * which a guest could otherwise reprovision VFs.
 */
static void build_sysfs_view(const struct guest *g)
{
	char rel[PATH_MAX];
	int host_view;

	/* Opened in our namespace: bind sources must be mounts of it. */
	host_view = open(g->sys_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (host_view < 0)
		fail("cannot open %s: %s", g->sys_path, strerror(errno));

	mount_or_fail("vhca-guest", g->run_dir, "tmpfs",
		      MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k");
	mkdir_or_fail(g->sys_path);
	snprintf(rel, sizeof(rel), "%s/class", g->sys_path);
	mkdir_or_fail(rel);
	snprintf(rel, sizeof(rel), "%s/class/infiniband", g->sys_path);
	mkdir_or_fail(rel);
	snprintf(rel, sizeof(rel), "%s/class/infiniband_verbs", g->sys_path);
	mkdir_or_fail(rel);

	bind_from_view(host_view, g->sys_path,
		       "class/infiniband_verbs/abi_version", false);
	snprintf(rel, sizeof(rel), "class/infiniband_verbs/" UVERBS_PREFIX "%u",
		 g->uverbs);
	bind_from_view(host_view, g->sys_path, rel, true);
	snprintf(rel, sizeof(rel), "class/infiniband/" VF_NAME_PREFIX "%u",
		 g->vf);
	bind_from_view(host_view, g->sys_path, rel, true);

	/*
	 * The full view is still mounted beneath our tmpfs; detach our copy
	 * of it so not even unmounting the tmpfs would show the PF or other
	 * VFs.  The binds are mounts of their own and stay.
	 */
	snprintf(rel, sizeof(rel), "/proc/self/fd/%d", host_view);
	if (umount2(rel, MNT_DETACH))
		fail("cannot detach the host's view from the guest: %s",
		     strerror(errno));
	close(host_view);

	mount_or_fail(NULL, g->run_dir, NULL,
		      MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
			      MS_NOEXEC,
		      NULL);
}

/* /dev/infiniband with only this VF's marker node, same numbers as vhcad's. */
static void build_dev_infiniband(const struct guest *g)
{
	char node[PATH_MAX];

	snprintf(node, sizeof(node), UVERBS_DEV_DIR "/" UVERBS_PREFIX "%u",
		 g->uverbs);
	mount_or_fail("vhca-guest", UVERBS_DEV_DIR, "tmpfs",
		      MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k");
	if (mknod(node, S_IFCHR | 0666, g->node_rdev))
		fail("cannot create %s: %s", node, strerror(errno));
	/* mknod() honours the umask; guests of any uid must open it. */
	if (chmod(node, 0666))
		fail("cannot chmod %s: %s", node, strerror(errno));
	mount_or_fail(NULL, UVERBS_DEV_DIR, NULL,
		      MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
		      NULL);
}

static bool is_directory(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/*
 * Private POSIX shared memory and message queues: with these and the IPC
 * namespace (System V), MPI in one guest cannot map another guest's
 * segments and must use the VF.
 */
static void build_private_ipc(void)
{
	if (!is_directory("/dev/shm"))
		fail("/dev/shm is missing on the host");
	mount_or_fail("vhca-guest", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
		      "mode=1777");
	/* The mqueue filesystem shows the mounter's IPC namespace. */
	if (is_directory("/dev/mqueue"))
		mount_or_fail("mqueue", "/dev/mqueue", "mqueue",
			      MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

static void enter_guest(struct guest *g)
{
	char node[PATH_MAX];
	struct stat st;

	/* The host's marker node, before /dev/infiniband is covered. */
	snprintf(node, sizeof(node), UVERBS_DEV_DIR "/" UVERBS_PREFIX "%u",
		 g->uverbs);
	if (stat(node, &st) || !S_ISCHR(st.st_mode))
		fail("%s (the node of " VF_NAME_PREFIX "%u) is missing or not a character device",
		     node, g->vf);
	g->node_rdev = st.st_rdev;

	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS))
		fail("cannot create the guest's namespaces: %s",
		     strerror(errno));
	/* Nothing we mount from here on may propagate back to the host. */
	mount_or_fail(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

	build_sysfs_view(g);
	build_dev_infiniband(g);
	build_private_ipc();
	if (sethostname(g->name, strlen(g->name)))
		fail("cannot set the guest's hostname: %s", strerror(errno));
}

static void set_guest_environment(const struct guest *g)
{
	char value[32];

	if (setenv("SYSFS_PATH", g->sys_path, 1))
		fail("cannot set SYSFS_PATH: %s", strerror(errno));
	snprintf(value, sizeof(value), VF_NAME_PREFIX "%u", g->vf);
	setenv("VHCA_GUEST_DEVICE", value, 1);
	setenv("VHCA_GUEST_NAME", g->name, 1);
	/* For CMDs that close inherited fds and want to keep the VF. */
	snprintf(value, sizeof(value), "%d", g->lock_fd);
	setenv("VHCA_GUEST_LOCK_FD", value, 1);
}

int main(int argc, char **argv)
{
	struct guest g = { .lock_fd = -1 };

	parse_command_line(&g, argc, argv);
	if (geteuid() != 0)
		fail("must run as root (it creates namespaces and mounts)");

	g.run_dir = realpath(g.run_dir_arg, NULL);
	if (!g.run_dir)
		fail("run dir %s: %s", g.run_dir_arg, strerror(errno));
	if (!strcmp(g.run_dir, "/"))
		fail("run dir / cannot be covered by a guest");
	g.sys_path = path_join(g.run_dir, "sys");

	choose_and_take_vf(&g);
	enter_guest(&g);
	set_guest_environment(&g);

	execvp(g.cmd[0], g.cmd);
	fprintf(stderr, "vhca-guest: cannot run %s: %s\n", g.cmd[0],
		strerror(errno));
	return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
}
