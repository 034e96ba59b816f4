// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * User contexts: ownership, GET_CONTEXT, teardown, and the event sink
 * through which the device reaches the guest's event fds (context.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "context.h"
#include "device/cq.h"
#include "device/engine.h"
#include "device/limits.h"

/* ---- the event sink (device/dctx.h) ------------------------------------- */

static int sink_comp(void *arg, struct vhca_cq *cq)
{
	(void)arg;
	if (!cq->channel)
		return -ENOENT;
	return vhca_comp_channel_post(cq->channel, cq->user_handle,
				      &cq->comp_events_read);
}

static void sink_async(void *arg, uint64_t user_handle, uint32_t event_type,
		       uint32_t *read_counter)
{
	struct vhca_ucontext *uctx = arg;

	/* A full or closed async pipe drops the event (channel.h). */
	vhca_channels_post_async(&uctx->channels, user_handle, event_type,
				 read_counter);
}

static void sink_forget_async(void *arg, uint32_t *read_counter)
{
	struct vhca_ucontext *uctx = arg;

	vhca_channels_forget_async(&uctx->channels, uctx->peer, read_counter);
}

static void sink_cq_gone(void *arg, struct vhca_cq *cq)
{
	struct vhca_ucontext *uctx = arg;

	if (cq->channel) {
		vhca_comp_channel_forget(cq->channel, uctx->peer,
					 &cq->comp_events_read);
		vhca_comp_channel_put(cq->channel);
		cq->channel = NULL;
	}
	vhca_channels_forget_async(&uctx->channels, uctx->peer,
				   &cq->async_events_read);
}

static const struct vhca_event_sink sink = {
	.comp = sink_comp,
	.async = sink_async,
	.forget_async = sink_forget_async,
	.cq_gone = sink_cq_gone,
};

/* ---- lifetime ------------------------------------------------------------ */

/* A context's own fds: its peer's pidfd and mem fd, its wake eventfd. */
#define CONTEXT_FDS 3

static bool charge_fds(struct vhca_ucontext *uctx)
{
	struct vhca_dev *dev = uctx->dev;
	unsigned int cur = atomic_load(&dev->stats.fds);

	do {
		if (cur + CONTEXT_FDS > dev->quota.max_fds)
			return false;
	} while (!atomic_compare_exchange_weak(&dev->stats.fds, &cur,
					       cur + CONTEXT_FDS));
	uctx->fds_charged = true;
	return true;
}

static void uncharge_fds(struct vhca_ucontext *uctx)
{
	if (uctx->fds_charged)
		atomic_fetch_sub(&uctx->dev->stats.fds, CONTEXT_FDS);
	uctx->fds_charged = false;
}


struct vhca_ucontext *vhca_ucontext_alloc(struct vhca_dev *dev)
{
	struct vhca_ucontext *uctx;
	int ret;

	uctx = calloc(1, sizeof(*uctx));
	if (!uctx)
		return NULL;
	uctx->dev = dev;
	uctx->wake_fd = -1;
	ret = pthread_mutex_init(&uctx->lock, NULL);
	if (ret)
		goto err_free;
	ret = -vhca_channels_init(&uctx->channels, &dev->stats.comp_channels,
				  vhca_limits.max_comp_channels,
				  &dev->stats.fds, dev->quota.max_fds);
	if (ret)
		goto err_mutex;
	return uctx;

err_mutex:
	pthread_mutex_destroy(&uctx->lock);
err_free:
	free(uctx);
	errno = ret;
	return NULL;
}

static void drop_data_path(struct vhca_ucontext *uctx)
{
	vhca_qmem_unmap(&uctx->ctx_qmem);
	if (uctx->wake_fd >= 0)
		close(uctx->wake_fd);
	uctx->wake_fd = -1;
}

void vhca_ucontext_free(struct vhca_ucontext *uctx)
{
	/* First: once this returns no change event touches our fds. */
	vhca_dev_unlisten(uctx->dev, &uctx->dev_events);
	/* The device's objects go first: they post to our channels. */
	if (uctx->dctx)
		vhca_dctx_destroy(uctx->dctx);
	uctx->dctx = NULL;
	drop_data_path(uctx);
	vhca_channels_fini(&uctx->channels);
	if (uctx->initialised)
		vhca_stats_release(&uctx->dev->stats.contexts);
	vhca_peer_put(uctx->peer);
	uncharge_fds(uctx);
	pthread_mutex_destroy(&uctx->lock);
	free(uctx);
}

/* ---- GET_CONTEXT ------------------------------------------------------- */

int vhca_ucontext_map_queue(struct vhca_ucontext *uctx, int guest_fd,
			    uint64_t size, struct vhca_qmem *qmem)
{
	int fd, ret;

	memset(qmem, 0, sizeof(*qmem));
	if (!size || size > VHCA_QMEM_MAX_SIZE)
		return -EINVAL;
	fd = vhca_peer_take_memfd(uctx->peer, guest_fd, size);
	if (fd < 0)
		return fd;
	ret = vhca_qmem_map_fd(qmem, fd, size);
	close(fd);
	return ret;
}

/*
 * The doorbell page and wake eventfd.  Both fds equal (a provider that
 * predates the data path leaves both 0; -1/-1 says "none" explicitly)
 * means a context without a data path: CQ/QP creation is EOPNOTSUPP.
 */
static int take_data_path(struct vhca_ucontext *uctx,
			  const struct vhca_alloc_ucontext_cmd *cmd)
{
	int ret;

	if (cmd->ctx_page_fd == cmd->wake_fd)
		return 0;
	ret = vhca_ucontext_map_queue(uctx, cmd->ctx_page_fd,
				      sizeof(struct vhca_ctx_page),
				      &uctx->ctx_qmem);
	if (ret)
		return ret;
	uctx->wake_fd = vhca_peer_take_eventfd(uctx->peer, cmd->wake_fd);
	if (uctx->wake_fd < 0) {
		ret = uctx->wake_fd;
		uctx->wake_fd = -1;
		drop_data_path(uctx);
		return ret;
	}
	return 0;
}

int vhca_ucontext_prepare(struct vhca_ucontext *uctx, pid_t caller_tid,
			  const struct vhca_alloc_ucontext_cmd *cmd)
{
	struct vhca_peer *peer;
	int ret;

	/* vhcad's fds are shared out among functions (device/limits.h). */
	if (!charge_fds(uctx))
		return -EMFILE;
	ret = vhca_peer_bind(caller_tid, &peer);
	if (ret) {
		uncharge_fds(uctx);
		return ret;
	}
	ret = vhca_channels_setup(&uctx->channels, peer, cmd);
	if (ret) {
		vhca_peer_put(peer);
		uncharge_fds(uctx);
		return ret;
	}
	uctx->peer = peer;
	ret = take_data_path(uctx, cmd);
	if (ret) {
		vhca_channels_reset(&uctx->channels);
		vhca_peer_put(peer);
		uctx->peer = NULL;
		uncharge_fds(uctx);
	}
	return ret;
}

/*
 * A provisioning change of our device, as the kernel's
 * ib_uverbs_event_handler() reports port events: element = port number.
 * Runs under pf->lock (exclusive) on the admin's thread, so it must not
 * block: the write is nonblocking and a full pipe loses the event
 * (channel.h) - the guest re-reads the port state anyway.  A dead owner's
 * pipe answers EPIPE, which the channel remembers.
 */
static void on_dev_changed(struct vhca_dev_listener *listener,
			   struct vhca_dev *dev, enum vhca_change what)
{
	static const uint32_t event_of[] = {
		[VHCA_CHANGE_GID] = IBV_EVENT_GID_CHANGE,
		[VHCA_CHANGE_PKEY] = IBV_EVENT_PKEY_CHANGE,
		[VHCA_CHANGE_PORT_ACTIVE] = IBV_EVENT_PORT_ACTIVE,
		[VHCA_CHANGE_PORT_ERR] = IBV_EVENT_PORT_ERR,
	};
	struct vhca_ucontext *uctx = (struct vhca_ucontext *)
		((char *)listener - offsetof(struct vhca_ucontext, dev_events));

	(void)dev;
	if ((unsigned int)what >= sizeof(event_of) / sizeof(event_of[0]))
		return;
	vhca_channels_post_async(&uctx->channels, 1, event_of[what], NULL);
}

int vhca_ucontext_commit(struct vhca_ucontext *uctx)
{
	struct vhca_dctx *dctx;
	int ret;

	if (!vhca_stats_reserve(&uctx->dev->stats.contexts,
				uctx->dev->quota.max_contexts))
		return -EUSERS;	/* the function's share of contexts is used */
	ret = vhca_dctx_create(uctx->dev, vhca_peer_dma_space(uctx->peer),
			       &sink, uctx, &uctx->ctx_qmem, uctx->wake_fd,
			       &dctx);
	uctx->wake_fd = -1;	/* the device context has it now */
	if (!ret) {
		ret = vhca_engine_attach(dctx, vhca_peer_pidfd(uctx->peer));
		if (ret)
			vhca_dctx_destroy(dctx);
	}
	if (ret) {
		vhca_stats_release(&uctx->dev->stats.contexts);
		return ret;
	}
	uctx->dctx = dctx;
	/* Channel commands read it without uctx->lock (cmd.c). */
	__atomic_store_n(&uctx->initialised, true, __ATOMIC_RELEASE);
	/* Live now: changes from here on reach its async fd. */
	uctx->dev_events.changed = on_dev_changed;
	vhca_dev_listen(uctx->dev, &uctx->dev_events);
	/* Only a live context asks the provider for pipes. */
	vhca_channels_check_low(&uctx->channels);
	return 0;
}

void vhca_ucontext_abort(struct vhca_ucontext *uctx)
{
	drop_data_path(uctx);
	vhca_channels_reset(&uctx->channels);
	vhca_peer_put(uctx->peer);
	uctx->peer = NULL;
	uncharge_fds(uctx);
}

/*
 * The kernel lets any holder of the uverbs fd issue commands, but every
 * memory operation acts on current->mm, so a forked child or a process
 * that received the fd would pin its own pages into the parent's
 * context.  Our DMA is bound to the owner's address space: a command
 * from another process would register or write the wrong one.  So a
 * context belongs to the process that ran GET_CONTEXT (as
 * ib_ucontext->tgid did in older kernels): others get -EACCES, which is
 * what ib_uverbs_write() answers a caller not entitled to the file; a
 * dead owner (or one that exec'd: its address space is gone) makes the
 * context disassociated, -EIO for everything, as after hot-unplug.
 */
int vhca_ucontext_check_caller(struct vhca_ucontext *uctx, pid_t caller_tid)
{
	int ret = vhca_peer_check_caller(uctx->peer, caller_tid);

	return ret == -ESRCH ? -EIO : ret;
}
