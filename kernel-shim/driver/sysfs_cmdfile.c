// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The sysfs view's uverbs command files (class/infiniband_verbs/uverbsN/
 * vhca_cmd): each open is one user context (cmd.h); every command and
 * the release wait their function's turn (cmdq.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fuse.h>

#include "cmd.h"
#include "cmdq.h"
#include "device/pf.h"
#include "guests.h"
#include "sysfs_nodes.h"

/* A command or a release waiting for its turn (cmdq.h). */
struct cmd_work {
	struct vhca_cmdq_item item;
	fuse_req_t req;
	struct cmd_file *file;
	pid_t pid;
	size_t len;
	uint8_t buf[];
};

static void track_cmd_file(struct vhca_sysfs *fs, struct cmd_file *file)
{
	pthread_mutex_lock(&fs->cmd_files_lock);
	file->next = fs->cmd_files.next;
	file->prev = &fs->cmd_files;
	file->next->prev = file;
	fs->cmd_files.next = file;
	pthread_mutex_unlock(&fs->cmd_files_lock);
}

static void untrack_cmd_file(struct vhca_sysfs *fs, struct cmd_file *file)
{
	pthread_mutex_lock(&fs->cmd_files_lock);
	file->prev->next = file->next;
	file->next->prev = file->prev;
	pthread_mutex_unlock(&fs->cmd_files_lock);
}

static void close_cmd_file(struct vhca_sysfs *fs, struct cmd_file *file)
{
	untrack_cmd_file(fs, file);
	vhca_cmd_release(file->uctx);
	free(file);
}

static void run_release(struct vhca_cmdq_item *item)
{
	struct cmd_work *w = (struct cmd_work *)item;

	close_cmd_file(w->file->fs, w->file);
	fuse_reply_err(w->req, 0);
	free(w);
}

static void refuse_release(struct vhca_cmdq_item *item)
{
	/* A release cannot be refused: it waits for nothing, run it. */
	run_release(item);
}

/*
 * A release may wait for the context's stalled engine turn: it takes its
 * function's turn like a command, never a worker's time.
 */
void sysfs_release_cmd_file(fuse_req_t req, struct cmd_file *file)
{
	struct cmd_work *w = malloc(sizeof(*w));

	if (!w) {
		close_cmd_file(file->fs, file);
		fuse_reply_err(req, 0);
		return;
	}
	*w = (struct cmd_work){
		.item = {
			.owner_busy = &file->busy,
			.frees_owner = true,
			.run = run_release,
			.refuse = refuse_release,
		},
		.req = req,
		.file = file,
	};
	vhca_cmdq_submit(file->dev, &w->item);
}

/*
 * Each open is one user context, as an open of /dev/infiniband/uverbsN is
 * on a real kernel.  pf->lock is held across vhca_cmd_open() so that the
 * device cannot be destroyed before the new context pins it.
 */
void sysfs_open_cmd_file(fuse_req_t req, struct vhca_sysfs *fs,
			 struct node_ref ref, struct fuse_file_info *fi)
{
	struct cmd_file *file;
	struct node_ctx ctx;
	int err = 0;

	file = calloc(1, sizeof(*file));
	if (!file) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_rwlock_rdlock(&fs->pf->lock);
	if (!sysfs_resolve(fs->pf, ref, &ctx)) {
		err = ENOENT;
	} else if (ctx.dev->vm_port) {
		err = EACCES;	/* a VM's VF: its PCI function is the VM's */
	} else if (vhca_guests_check(fs->guests, ctx.dev->is_vf,
				     ctx.dev->vf_index,
				     fuse_req_ctx(req)->pid)) {
		err = EACCES;	/* another guest's VF, or not our guest's */
	} else {
		errno = 0;
		file->uctx = vhca_cmd_open(ctx.dev);
		if (!file->uctx)
			err = errno ? errno : EIO;
	}
	pthread_rwlock_unlock(&fs->pf->lock);
	if (err) {
		free(file);
		fuse_reply_err(req, err);
		return;
	}

	file->dev = ctx.dev;
	file->fs = fs;
	track_cmd_file(fs, file);
	fi->fh = (uintptr_t)file;
	/*
	 * A CREATE_COMP_CHANNEL waiting for its pool to be refilled must not
	 * hold out the provider's ADD_CHANNELS on the same file.
	 */
	if (sysfs_reply_open_stream(req, fi->fh))
		close_cmd_file(fs, file);	/* the opener is gone */
}

/*
 * Every write must reach us, synchronously and unmerged, and writes of
 * different threads and processes must run in parallel.  libfuse 3.14
 * cannot express FOPEN_PARALLEL_DIRECT_WRITES (kernel 6.2+), so the open
 * reply is sent as raw bytes.
 */
int sysfs_reply_open_stream(fuse_req_t req, uint64_t fh)
{
	struct fuse_open_out out = {
		.fh = fh,
		.open_flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE |
			      FOPEN_STREAM | FOPEN_PARALLEL_DIRECT_WRITES,
	};

	return fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

static void run_cmd(struct vhca_cmdq_item *item)
{
	struct cmd_work *w = (struct cmd_work *)item;
	ssize_t ret;

	ret = vhca_cmd_write(w->file->uctx, w->pid, w->buf, w->len);
	if (ret < 0)
		fuse_reply_err(w->req, (int)-ret);
	else
		fuse_reply_write(w->req, (size_t)ret);
	free(w);
}

static void refuse_cmd(struct vhca_cmdq_item *item)
{
	struct cmd_work *w = (struct cmd_work *)item;

	fuse_reply_err(w->req, EAGAIN);
	free(w);
}

/*
 * Every command waits its turn in its function's queue (cmdq.h), so
 * this worker never waits on a tenant; the provider's channel refill
 * runs at once, without ever waiting.
 */
void sysfs_write_cmd_file(fuse_req_t req, struct cmd_file *file,
			  const char *buf, size_t size)
{
	enum vhca_cmd_class class = vhca_cmd_classify(buf, size);
	pid_t pid = fuse_req_ctx(req)->pid;
	struct cmd_work *w;
	ssize_t ret;

	/*
	 * Every command, not only the open: the fd may have been handed to
	 * a process outside the guest that owns the VF (guests.h).
	 */
	if (vhca_guests_check(file->fs->guests, file->dev->is_vf,
			      file->dev->vf_index, pid)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (class == VHCA_CMD_CLASS_IMMEDIATE) {
		ret = vhca_cmd_write(file->uctx, pid, buf, size);
		if (ret < 0)
			fuse_reply_err(req, (int)-ret);
		else
			fuse_reply_write(req, (size_t)ret);
		return;
	}
	w = malloc(sizeof(*w) + size);
	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	*w = (struct cmd_work){
		.item = {
			.owner_busy = class == VHCA_CMD_CLASS_CONTEXT ?
					      &file->busy :
					      NULL,
			.run = run_cmd,
			.refuse = refuse_cmd,
		},
		.req = req,
		.file = file,
		.pid = pid,
		.len = size,
	};
	memcpy(w->buf, buf, size);
	vhca_cmdq_submit(file->dev, &w->item);
}

/*
 * Command files still open now belong to processes that lose the device,
 * as on a hot unplug: the kernel will never send their release, so their
 * contexts are released here.
 */
void sysfs_release_abandoned_cmd_files(struct vhca_sysfs *fs)
{
	unsigned int count = 0;

	while (fs->cmd_files.next != &fs->cmd_files) {
		close_cmd_file(fs, fs->cmd_files.next);
		count++;
	}
	if (count)
		log_msg("released %u context(s) of processes still attached",
			count);
}
