// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Run-directory lifecycle and ownership of /dev/infiniband/uverbsN nodes;
 * see rundir.h for the layout.
 *
 * Ownership rules:
 *  - DIR belongs to whoever holds the write lock on DIR/vhcad.pid.  The
 *    lock is a classic POSIX record lock so that F_GETLK names the holder:
 *    "already running (pid N)" and --stop need no trust in the file's text.
 *  - A uverbs number belongs to whoever created its node: mknod() fails
 *    with EEXIST for everybody else, so two daemons never share a number.
 *  - DIR/nodes lists our numbers so that a successor can remove the nodes
 *    of a daemon that was killed; it is rewritten by rename() so a reader
 *    never sees half a list.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <vhca/text.h>

#include "rundir.h"
#include "sysfs.h"

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

#define PID_FILE_NAME "vhcad.pid"
#define NODES_FILE_NAME "nodes"
#define READY_FILE_NAME "ready"
#define SYS_DIR_NAME "sys"

/*
 * DIR/ready is a symlink into our own mount rather than a plain file: it
 * resolves only while a daemon serves DIR/sys, so a SIGKILLed daemon's
 * "ready" dies with it and nobody waiting for the next daemon is fooled.
 */
#define READY_TARGET SYS_DIR_NAME "/" VHCA_SYSFS_STATUS_PATH

/* The sysfs view encodes uverbs indexes in 24 bits of an inode number. */
#define MAX_UVERBS_INDEX 65535

#define STOP_TIMEOUT_MS 10000

struct vhca_rundir {
	char *path;
	char *sys_path;
	char *pid_path;
	char *nodes_path;
	char *ready_path;
	int lock_fd;

	pthread_mutex_t nodes_lock;	/* nodes[] and DIR/nodes */
	int *nodes;
	size_t num_nodes;
	size_t max_nodes;
};

/* ---- small file helpers ------------------------------------------------ */

static int mkdir_p(const char *path, mode_t mode)
{
	char *copy;
	struct stat st;
	int ret = 0;

	if (!*path)
		return -EINVAL;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; ret == 0; p++) {
		char saved = *p;

		if (saved && saved != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) && errno != EEXIST)
			ret = -errno;
		*p = saved;
		if (!saved)
			break;
	}
	free(copy);
	if (ret)
		return ret;
	if (stat(path, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Replaces path with text so that readers see the old or the new content. */
static int write_file_atomic(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX];
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0)
		return -errno;
	ret = write_all(fd, text, len);
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

static void unlink_quietly(const char *path)
{
	if (unlink(path) && errno != ENOENT)
		log_msg("cannot remove %s: %s", path, strerror(errno));
}

/* Strict "N" or "N\n" with N a decimal in 0..max; false for anything else. */
static bool parse_index(const char *text, long max, int *out)
{
	unsigned long value;

	if (!vhca_parse_decimal(text,
				vhca_text_strip_newline(text, strlen(text)),
				(unsigned long)max, &value))
		return false;
	*out = (int)value;
	return true;
}

/* ---- /dev/infiniband nodes --------------------------------------------- */

static void uverbs_node_path(int index, char *buf, size_t len)
{
	snprintf(buf, len, VHCA_UVERBS_DEV_DIR "/uverbs%d", index);
}

int vhca_uverbs_node_stat(int index, struct stat *st)
{
	char path[64];

	uverbs_node_path(index, path, sizeof(path));
	return lstat(path, st) ? -errno : 0;
}

static bool is_marker_node(const struct stat *st)
{
	return S_ISCHR(st->st_mode) &&
	       st->st_rdev == makedev(VHCA_MARKER_MAJOR, VHCA_MARKER_MINOR);
}

/*
 * Removes uverbsN only if it still is one of our markers: a node somebody
 * else put there (a real uverbs device, say) is never ours to delete.
 */
static void remove_marker_node(int index)
{
	char path[64];
	struct stat st;

	uverbs_node_path(index, path, sizeof(path));
	if (lstat(path, &st)) {
		if (errno != ENOENT)
			log_msg("cannot stat %s: %s", path, strerror(errno));
		return;
	}
	if (!is_marker_node(&st)) {
		log_msg("leaving %s alone: not a vhca marker node", path);
		return;
	}
	unlink_quietly(path);
}

/* Creates the lowest free uverbsN; returns N or -errno. */
static int create_lowest_free_node(void)
{
	char path[64];
	int ret;

	ret = mkdir_p(VHCA_UVERBS_DEV_DIR, 0755);
	if (ret) {
		log_msg("cannot create " VHCA_UVERBS_DEV_DIR ": %s",
			strerror(-ret));
		return ret;
	}
	for (int index = 0; index <= MAX_UVERBS_INDEX; index++) {
		uverbs_node_path(index, path, sizeof(path));
		if (mknod(path, S_IFCHR | 0666,
			  makedev(VHCA_MARKER_MAJOR, VHCA_MARKER_MINOR))) {
			if (errno == EEXIST)
				continue;
			ret = -errno;
			log_msg("cannot create %s: %s", path, strerror(errno));
			return ret;
		}
		/* mknod() honours the umask; guests of any uid must open it. */
		if (chmod(path, 0666)) {
			ret = -errno;
			log_msg("cannot chmod %s: %s", path, strerror(errno));
			unlink(path);
			return ret;
		}
		return index;
	}
	log_msg("no free uverbs number up to %d", MAX_UVERBS_INDEX);
	return -ENOSPC;
}

/* ---- DIR/nodes ----------------------------------------------------------- */

/* Caller holds nodes_lock. */
static int save_nodes(struct vhca_rundir *rd)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	int ret;

	out = open_memstream(&text, &len);
	if (!out)
		return -errno;
	for (size_t i = 0; i < rd->num_nodes; i++)
		fprintf(out, "%d\n", rd->nodes[i]);
	if (fclose(out)) {
		free(text);
		return -ENOMEM;
	}
	ret = write_file_atomic(rd->nodes_path, text, len);
	free(text);
	if (ret)
		log_msg("cannot write %s: %s", rd->nodes_path, strerror(-ret));
	return ret;
}

/* Caller holds nodes_lock. */
static int reserve_node_slot(struct vhca_rundir *rd)
{
	size_t max = rd->max_nodes ? 2 * rd->max_nodes : 16;
	int *grown;

	if (rd->num_nodes < rd->max_nodes)
		return 0;
	grown = realloc(rd->nodes, max * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	rd->nodes = grown;
	rd->max_nodes = max;
	return 0;
}

int vhca_rundir_claim_uverbs(void *arg)
{
	struct vhca_rundir *rd = arg;
	int index, ret;

	pthread_mutex_lock(&rd->nodes_lock);
	ret = reserve_node_slot(rd);
	if (ret)
		goto out;
	index = create_lowest_free_node();
	if (index < 0) {
		ret = index;
		goto out;
	}
	rd->nodes[rd->num_nodes++] = index;
	ret = save_nodes(rd);
	if (ret) {
		/* Unrecorded, the node would outlive a crash: give it back. */
		rd->num_nodes--;
		remove_marker_node(index);
		goto out;
	}
	ret = index;
out:
	pthread_mutex_unlock(&rd->nodes_lock);
	return ret;
}

/* Caller holds nodes_lock. */
static void forget_node(struct vhca_rundir *rd, size_t slot)
{
	remove_marker_node(rd->nodes[slot]);
	memmove(&rd->nodes[slot], &rd->nodes[slot + 1],
		(rd->num_nodes - slot - 1) * sizeof(rd->nodes[0]));
	rd->num_nodes--;
}

void vhca_rundir_release_uverbs(void *arg, int index)
{
	struct vhca_rundir *rd = arg;

	pthread_mutex_lock(&rd->nodes_lock);
	for (size_t slot = 0; slot < rd->num_nodes; slot++) {
		if (rd->nodes[slot] == index) {
			forget_node(rd, slot);
			save_nodes(rd);
			break;
		}
	}
	pthread_mutex_unlock(&rd->nodes_lock);
}

/* ---- the pid lock ---------------------------------------------------------- */

/* Pid of the process holding a write lock on fd's file, 0 if none. */
static pid_t lock_holder(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(fd, F_GETLK, &fl))
		return -errno;
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

/* True if fd still is the file named path (not unlinked or replaced). */
static bool still_linked(int fd, const char *path)
{
	struct stat by_fd, by_path;

	return !fstat(fd, &by_fd) && !stat(path, &by_path) &&
	       by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

static int write_pid(int fd)
{
	char text[24];
	int len = snprintf(text, sizeof(text), "%d\n", (int)getpid());

	if (ftruncate(fd, 0))
		return -errno;
	if (pwrite(fd, text, (size_t)len, 0) != len)
		return errno ? -errno : -EIO;
	return 0;
}

static int lock_run_dir(struct vhca_rundir *rd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	pid_t holder = 0;

	/*
	 * A few rounds, because a daemon that is just exiting unlinks the pid
	 * file and drops its lock: if we locked the unlinked file we would own
	 * nothing and must retry on the new one.
	 */
	for (int round = 0; round < 8; round++) {
		int fd = open(rd->pid_path,
			      O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

		if (fd < 0) {
			int err = errno;

			log_msg("cannot open %s: %s", rd->pid_path,
				strerror(err));
			return -err;
		}
		if (fcntl(fd, F_SETLK, &fl)) {
			int err = errno;

			holder = (err == EAGAIN || err == EACCES) ?
					 lock_holder(fd) : 0;
			close(fd);
			if (err != EAGAIN && err != EACCES) {
				log_msg("cannot lock %s: %s", rd->pid_path,
					strerror(err));
				return -err;
			}
			if (holder > 0)
				break;
			continue;	/* released meanwhile */
		}
		if (still_linked(fd, rd->pid_path)) {
			int ret = write_pid(fd);

			if (ret) {
				log_msg("cannot write %s: %s", rd->pid_path,
					strerror(-ret));
				close(fd);
				return ret;
			}
			rd->lock_fd = fd;
			return 0;
		}
		close(fd);
	}
	/* This line names the daemon itself: no "vhcad: " prefix needed. */
	if (holder > 0)
		fprintf(stderr, "vhcad already running (pid %d) on %s\n",
			(int)holder, rd->path);
	else
		fprintf(stderr, "vhcad already running on %s\n", rd->path);
	return -EBUSY;
}

/* ---- leftovers of a killed predecessor ------------------------------------- */

static void detach_stale_mounts(const char *sys_path)
{
	int detached = 0;

	/* A daemon killed repeatedly can leave several mounts stacked. */
	while (detached < 16 && !umount2(sys_path, MNT_DETACH))
		detached++;
	if (detached)
		log_msg("detached %d stale mount(s) from %s", detached,
			sys_path);
	else if (errno != EINVAL && errno != ENOENT)
		log_msg("cannot unmount %s: %s", sys_path, strerror(errno));
}

static void remove_listed_nodes(const char *nodes_path)
{
	char *line = NULL;
	size_t cap = 0;
	int removed = 0;
	FILE *in;

	in = fopen(nodes_path, "re");
	if (!in) {
		if (errno != ENOENT)
			log_msg("cannot read %s: %s", nodes_path,
				strerror(errno));
		return;
	}
	while (getline(&line, &cap, in) > 0) {
		int index;

		if (!parse_index(line, MAX_UVERBS_INDEX, &index)) {
			log_msg("ignoring malformed line in %s", nodes_path);
			continue;
		}
		remove_marker_node(index);
		removed++;
	}
	free(line);
	fclose(in);
	unlink_quietly(nodes_path);
	if (removed)
		log_msg("removed %d node(s) left by a previous daemon", removed);
}

static void clean_up_after_predecessor(struct vhca_rundir *rd)
{
	char tmp[PATH_MAX];

	vhca_rundir_clear_ready(rd);
	detach_stale_mounts(rd->sys_path);
	remove_listed_nodes(rd->nodes_path);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", rd->nodes_path) <
	    (int)sizeof(tmp))
		unlink(tmp);
}

/* ---- open / close ---------------------------------------------------------- */

static void free_rundir(struct vhca_rundir *rd)
{
	free(rd->path);
	free(rd->sys_path);
	free(rd->pid_path);
	free(rd->nodes_path);
	free(rd->ready_path);
	free(rd->nodes);
	pthread_mutex_destroy(&rd->nodes_lock);
	free(rd);
}

static int build_paths(struct vhca_rundir *rd, const char *dir)
{
	if (strlen(dir) > PATH_MAX - 64)
		return -ENAMETOOLONG;
	rd->path = strdup(dir);
	if (!rd->path ||
	    asprintf(&rd->sys_path, "%s/" SYS_DIR_NAME, dir) < 0 ||
	    asprintf(&rd->pid_path, "%s/" PID_FILE_NAME, dir) < 0 ||
	    asprintf(&rd->nodes_path, "%s/" NODES_FILE_NAME, dir) < 0 ||
	    asprintf(&rd->ready_path, "%s/" READY_FILE_NAME, dir) < 0)
		return -ENOMEM;
	return 0;
}

int vhca_rundir_open(const char *dir, struct vhca_rundir **out)
{
	struct vhca_rundir *rd;
	int ret;

	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	rd->lock_fd = -1;
	pthread_mutex_init(&rd->nodes_lock, NULL);

	ret = build_paths(rd, dir);
	if (ret) {
		log_msg("run dir %s: %s", dir, strerror(-ret));
		goto err;
	}
	ret = mkdir_p(dir, 0755);
	if (ret) {
		log_msg("cannot create run dir %s: %s", dir, strerror(-ret));
		goto err;
	}
	ret = lock_run_dir(rd);
	if (ret)
		goto err;

	clean_up_after_predecessor(rd);
	if (mkdir(rd->sys_path, 0755) && errno != EEXIST) {
		ret = -errno;
		log_msg("cannot create %s: %s", rd->sys_path, strerror(errno));
		goto err_unlock;
	}
	*out = rd;
	return 0;

err_unlock:
	unlink_quietly(rd->pid_path);
	close(rd->lock_fd);
err:
	free_rundir(rd);
	return ret;
}

void vhca_rundir_close(struct vhca_rundir *rd)
{
	vhca_rundir_clear_ready(rd);

	pthread_mutex_lock(&rd->nodes_lock);
	while (rd->num_nodes)
		forget_node(rd, rd->num_nodes - 1);
	pthread_mutex_unlock(&rd->nodes_lock);
	unlink_quietly(rd->nodes_path);

	/* Unlink before unlocking: see lock_run_dir() for why. */
	unlink_quietly(rd->pid_path);
	close(rd->lock_fd);
	free_rundir(rd);
}

const char *vhca_rundir_path(const struct vhca_rundir *rd)
{
	return rd->path;
}

const char *vhca_rundir_sys_path(const struct vhca_rundir *rd)
{
	return rd->sys_path;
}

int vhca_rundir_mark_ready(struct vhca_rundir *rd)
{
	unlink(rd->ready_path);
	if (symlink(READY_TARGET, rd->ready_path)) {
		int err = errno;

		log_msg("cannot create %s: %s", rd->ready_path, strerror(err));
		return -err;
	}
	return 0;
}

void vhca_rundir_clear_ready(struct vhca_rundir *rd)
{
	unlink_quietly(rd->ready_path);
}

/* ---- vhcad --stop ---------------------------------------------------------- */

static int wait_for_exit(int pidfd, int timeout_ms)
{
	struct timespec start, now;
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		long elapsed;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed = (now.tv_sec - start.tv_sec) * 1000 +
			  (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= timeout_ms)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)(timeout_ms - elapsed));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * A pidfd of the daemon that owns dir, or -ESRCH.  The pid comes from the
 * lock, and the lock is checked again once the pidfd exists: if the same
 * pid still holds it, the pidfd is that daemon and not a process that
 * inherited a recycled pid.
 */
static int open_daemon_pidfd(const char *pid_path, pid_t *pid_out)
{
	int fd, pidfd = -ESRCH;
	pid_t pid;

	fd = open(pid_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	pid = lock_holder(fd);
	if (pid > 0) {
		pidfd = pidfd_open(pid, 0);
		if (pidfd < 0)
			pidfd = errno == ESRCH ? -ESRCH : -errno;
		else if (lock_holder(fd) != pid) {
			close(pidfd);
			pidfd = -ESRCH;
		}
	} else if (pid < 0) {
		pidfd = pid;
	}
	close(fd);
	*pid_out = pid;
	return pidfd;
}

int vhca_rundir_stop_daemon(const char *dir)
{
	char pid_path[PATH_MAX];
	pid_t pid = 0;
	int pidfd, ret;

	if (snprintf(pid_path, sizeof(pid_path), "%s/" PID_FILE_NAME, dir) >=
	    (int)sizeof(pid_path)) {
		log_msg("run dir %s: %s", dir, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	pidfd = open_daemon_pidfd(pid_path, &pid);
	if (pidfd == -ESRCH) {
		log_msg("not running on %s", dir);
		return -ESRCH;
	}
	if (pidfd < 0) {
		log_msg("cannot find the daemon of %s: %s", dir,
			strerror(-pidfd));
		return pidfd;
	}
	if (pidfd_send_signal(pidfd, SIGTERM, NULL, 0) && errno != ESRCH) {
		ret = -errno;
		log_msg("cannot signal vhcad (pid %d): %s", (int)pid,
			strerror(errno));
		close(pidfd);
		return ret;
	}
	ret = wait_for_exit(pidfd, STOP_TIMEOUT_MS);
	close(pidfd);
	if (ret == -ETIMEDOUT)
		log_msg("vhcad (pid %d) did not exit within %d s", (int)pid,
			STOP_TIMEOUT_MS / 1000);
	else if (ret)
		log_msg("waiting for vhcad (pid %d): %s", (int)pid,
			strerror(-ret));
	else
		log_msg("stopped vhcad (pid %d) on %s", (int)pid, dir);
	return ret;
}
