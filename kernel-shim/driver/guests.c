// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Guests bound to VFs (guests.h).  A guest is named by its PID namespace,
 * held open (an nsfs fd keeps the namespace, and so its inode number,
 * from being reused) together with a pidfd of its init, whose exit ends
 * the binding.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/nsfs.h>

#include "guests.h"

/* A guest nests PID namespaces at most this deep below vhcad's (the
 * kernel's own limit is 32). */
#define GUEST_NS_DEPTH_MAX 32

struct guest_binding {
	bool used;
	unsigned int vf;
	int pidfd;		/* the guest's init */
	int nsfd;		/* its PID namespace */
	dev_t ns_dev;
	ino_t ns_ino;
};

struct vhca_guests {
	pthread_mutex_t lock;
	dev_t own_dev;		/* vhcad's PID namespace */
	ino_t own_ino;
	struct guest_binding *bindings;
	unsigned int count;
};

struct vhca_guests *vhca_guests_create(void)
{
	struct vhca_guests *guests = calloc(1, sizeof(*guests));
	struct stat st;

	if (!guests)
		return NULL;
	if (stat("/proc/self/ns/pid", &st)) {
		free(guests);
		return NULL;
	}
	guests->own_dev = st.st_dev;
	guests->own_ino = st.st_ino;
	pthread_mutex_init(&guests->lock, NULL);
	return guests;
}

static void unbind(struct guest_binding *b)
{
	close(b->pidfd);
	close(b->nsfd);
	b->used = false;
}

void vhca_guests_destroy(struct vhca_guests *guests)
{
	if (!guests)
		return;
	for (unsigned int i = 0; i < guests->count; i++)
		if (guests->bindings[i].used)
			unbind(&guests->bindings[i]);
	free(guests->bindings);
	pthread_mutex_destroy(&guests->lock);
	free(guests);
}

/* A pidfd polls readable once its process has exited. */
static bool exited(int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

	return poll(&pfd, 1, 0) != 0;
}

/* Drops the bindings whose guests have ended.  Under guests->lock. */
static void reap(struct vhca_guests *guests)
{
	for (unsigned int i = 0; i < guests->count; i++)
		if (guests->bindings[i].used &&
		    exited(guests->bindings[i].pidfd))
			unbind(&guests->bindings[i]);
}

static struct guest_binding *binding_of_ns(struct vhca_guests *guests,
					   const struct stat *ns)
{
	for (unsigned int i = 0; i < guests->count; i++) {
		struct guest_binding *b = &guests->bindings[i];

		if (b->used && b->ns_dev == ns->st_dev && b->ns_ino == ns->st_ino)
			return b;
	}
	return NULL;
}

/*
 * The live guest @tid belongs to: its own PID namespace or one of that
 * namespace's ancestors below vhcad's (a guest may nest namespaces; it
 * cannot leave them).  NULL for a process of no guest, or one gone.
 * Under guests->lock.
 */
static struct guest_binding *guest_of(struct vhca_guests *guests, pid_t tid)
{
	struct guest_binding *found = NULL;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)tid);
	fd = tid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	for (int depth = 0; fd >= 0 && depth <= GUEST_NS_DEPTH_MAX; depth++) {
		struct stat st;
		int parent;

		if (fstat(fd, &st) ||
		    (st.st_dev == guests->own_dev && st.st_ino == guests->own_ino))
			break;
		found = binding_of_ns(guests, &st);
		if (found)
			break;
		/* EPERM above vhcad's own namespace: no guest of ours. */
		parent = ioctl(fd, NS_GET_PARENT);
		close(fd);
		fd = parent;
	}
	if (fd >= 0)
		close(fd);
	return found;
}

/* Whether some guest is bound.  Under guests->lock. */
static bool any_bound(const struct vhca_guests *guests)
{
	for (unsigned int i = 0; i < guests->count; i++)
		if (guests->bindings[i].used)
			return true;
	return false;
}

int vhca_guests_check(struct vhca_guests *guests, bool is_vf, unsigned int vf,
		      pid_t tid)
{
	struct guest_binding *caller, *owner = NULL;
	int ret = 0;

	pthread_mutex_lock(&guests->lock);
	reap(guests);
	/*
	 * With no guest bound, guest_of() can find none: every caller is
	 * of no guest, without its namespaces opened (a cost each command
	 * would pay).
	 */
	caller = any_bound(guests) ? guest_of(guests, tid) : NULL;
	for (unsigned int i = 0; is_vf && i < guests->count; i++)
		if (guests->bindings[i].used && guests->bindings[i].vf == vf)
			owner = &guests->bindings[i];
	/* A guest reaches its own VF only; an owned VF, its guest only. */
	if (caller != owner)
		ret = -EACCES;
	pthread_mutex_unlock(&guests->lock);
	return ret;
}

bool vhca_guests_own(struct vhca_guests *guests, unsigned int vf)
{
	bool owned = false;

	pthread_mutex_lock(&guests->lock);
	reap(guests);
	for (unsigned int i = 0; i < guests->count && !owned; i++)
		owned = guests->bindings[i].used && guests->bindings[i].vf == vf;
	pthread_mutex_unlock(&guests->lock);
	return owned;
}

bool vhca_guests_contain(struct vhca_guests *guests, pid_t tid)
{
	bool inside;

	pthread_mutex_lock(&guests->lock);
	reap(guests);
	inside = guest_of(guests, tid) != NULL;
	pthread_mutex_unlock(&guests->lock);
	return inside;
}

/* PPid and the innermost NSpid of /proc/<pid>/status; false if gone. */
static bool read_parent_and_nspid(pid_t pid, pid_t *ppid, pid_t *inner)
{
	char path[64], line[256];
	bool have_ppid = false, have_nspid = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		int val;

		if (sscanf(line, "PPid: %d", &val) == 1) {
			*ppid = val;
			have_ppid = true;
		} else if (!strncmp(line, "NSpid:", 6)) {
			/* One pid per level, vhcad's first, the innermost last. */
			char *last = strrchr(line, '\t');

			have_nspid = last && sscanf(last, "%d", &val) == 1;
			if (have_nspid)
				*inner = val;
		}
	}
	fclose(f);
	return have_ppid && have_nspid;
}

static struct guest_binding *free_slot(struct vhca_guests *guests)
{
	struct guest_binding *grown;

	for (unsigned int i = 0; i < guests->count; i++)
		if (!guests->bindings[i].used)
			return &guests->bindings[i];
	grown = reallocarray(guests->bindings, guests->count + 1,
			     sizeof(*grown));
	if (!grown)
		return NULL;
	guests->bindings = grown;
	return &guests->bindings[guests->count++];
}

/*
 * Opens a pidfd and the PID namespace of @init_pid, checking that it is
 * the init of a namespace of its own and a child of @sender_pid; the
 * check is repeated after the pidfd exists, so the pid cannot have been
 * reused in between.
 */
static int open_guest_init(pid_t init_pid, pid_t sender_pid, int *pidfd,
			   int *nsfd)
{
	pid_t ppid = 0, inner = 0;
	char path[64];

	if (init_pid <= 0 || !read_parent_and_nspid(init_pid, &ppid, &inner))
		return -ESRCH;
	if (ppid != sender_pid || inner != 1)
		return -EPERM;
	*pidfd = pidfd_open(init_pid, 0);
	if (*pidfd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)init_pid);
	*nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (*nsfd < 0 || !read_parent_and_nspid(init_pid, &ppid, &inner) ||
	    ppid != sender_pid || inner != 1 || exited(*pidfd)) {
		if (*nsfd >= 0)
			close(*nsfd);
		close(*pidfd);
		return -ESRCH;
	}
	return 0;
}

int vhca_guests_bind(struct vhca_guests *guests, unsigned int vf,
		     pid_t init_pid, pid_t sender_pid)
{
	struct guest_binding *b;
	int pidfd = -1, nsfd = -1, ret;
	struct stat st;

	ret = open_guest_init(init_pid, sender_pid, &pidfd, &nsfd);
	if (ret)
		return ret;
	if (fstat(nsfd, &st)) {
		ret = -errno;
		goto err;
	}
	if (st.st_dev == guests->own_dev && st.st_ino == guests->own_ino) {
		ret = -EINVAL;	/* not a guest: vhcad's own namespace */
		goto err;
	}

	pthread_mutex_lock(&guests->lock);
	reap(guests);
	ret = binding_of_ns(guests, &st) ? -EBUSY : 0;
	for (unsigned int i = 0; !ret && i < guests->count; i++)
		if (guests->bindings[i].used && guests->bindings[i].vf == vf)
			ret = -EBUSY;
	b = ret ? NULL : free_slot(guests);
	if (!ret && !b)
		ret = -ENOMEM;
	if (b)
		*b = (struct guest_binding){
			.used = true,
			.vf = vf,
			.pidfd = pidfd,
			.nsfd = nsfd,
			.ns_dev = st.st_dev,
			.ns_ino = st.st_ino,
		};
	pthread_mutex_unlock(&guests->lock);
	if (!ret)
		return 0;
err:
	close(nsfd);
	close(pidfd);
	return ret;
}
