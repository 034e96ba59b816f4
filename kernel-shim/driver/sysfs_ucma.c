// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The rdma_cm command file of the sysfs view, class/misc/rdma_cm/
 * vhca_cmd: what /dev/infiniband/rdma_cm is on Linux, one open per
 * librdmacm event channel (ucma.h).  A guest's supervisor opens it and
 * hands the fd to librdmacm (tools/guest/), which sees a character
 * device.
 *
 * FUSE: a GET_EVENT may be held until an event comes, so the open reply
 * carries FOPEN_DIRECT_IO | FOPEN_STREAM | FOPEN_PARALLEL_DIRECT_WRITES
 * (raw, libfuse 3.14 cannot say the last) and the file is huge: without
 * them a held write would block every other writer of the inode.  A held
 * request answers FUSE_INTERRUPT with EINTR, or its caller could not
 * even be killed.  poll() is served with fuse_lowlevel_notify_poll().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guests.h"
#include "sysfs_nodes.h"
#include "ucma.h"

void ucma_fuse_reply(void *req, ssize_t ret)
{
	if (ret < 0)
		fuse_reply_err(req, (int)-ret);
	else
		fuse_reply_write(req, (size_t)ret);
}

bool ucma_fuse_interrupted(void *req)
{
	return fuse_req_interrupted(req);
}

void ucma_fuse_notify(void *ph)
{
	fuse_lowlevel_notify_poll(ph);
}

void ucma_fuse_forget(void *ph)
{
	fuse_pollhandle_destroy(ph);
}

/* Where the view is mounted: MIGRATE_ID's check of an fd. */
static char mount_path[4096];

/*
 * The fd's inode must be the rdma_cm file's (our inode number) on our
 * mount.  Stat'ed when asked, from a worker: the others serve it.
 */
bool ucma_fuse_is_ours(int fd)
{
	struct node_ref ref = { .kind = N_RDMA_CM_CMD };
	struct stat st, mnt;

	return mount_path[0] && !fstat(fd, &st) && S_ISREG(st.st_mode) &&
	       st.st_ino == sysfs_ref_to_ino(ref) && !stat(mount_path, &mnt) &&
	       st.st_dev == mnt.st_dev;
}

void sysfs_ucma_mounted(const char *sys_path)
{
	snprintf(mount_path, sizeof(mount_path), "%s", sys_path);
}

void sysfs_open_ucma(fuse_req_t req, struct vhca_sysfs *fs,
		     struct fuse_file_info *fi)
{
	struct ucma_file *file = ucma_open();

	if (!file) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)file;
	if (sysfs_reply_open_stream(req, fi->fh))
		ucma_release(file);	/* the opener is gone */
}

static void interrupted(fuse_req_t req, void *data)
{
	ucma_interrupt(data, req);
}

void sysfs_write_ucma(fuse_req_t req, struct fuse_file_info *fi,
		      const char *buf, size_t size)
{
	struct ucma_file *file = (struct ucma_file *)(uintptr_t)fi->fh;
	ssize_t ret;

	/*
	 * Before the request can be held: once it is, another thread may
	 * answer (and free) it at any time.  An interrupt that comes before
	 * it is held finds no waiter; ucma.c looks at fuse_req_interrupted()
	 * before holding it.
	 */
	fuse_req_interrupt_func(req, interrupted, file);
	ret = ucma_write(file, fuse_req_ctx(req)->pid,
			 (fi->flags & O_NONBLOCK) != 0, buf, size, req);
	if (ret != UCMA_HELD)
		ucma_fuse_reply(req, ret);
}

void sysfs_release_ucma(fuse_req_t req, struct fuse_file_info *fi)
{
	ucma_release((struct ucma_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void sysfs_poll_ucma(fuse_req_t req, struct fuse_file_info *fi,
		     struct fuse_pollhandle *ph)
{
	bool ready = ucma_poll((struct ucma_file *)(uintptr_t)fi->fh, ph);

	/* Always writable: a command never waits for room. */
	fuse_reply_poll(req, POLLOUT | POLLWRNORM |
			(ready ? POLLIN | POLLRDNORM : 0));
}
