// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: the device is gone (vhcad died or was killed).
 *
 * A kernel that loses a device disassociates its contexts: every verb
 * fails, IBV_EVENT_DEVICE_FATAL reaches the async fd, and the event fds
 * fail their reads with EIO.  A real HCA that dies stops writing CQEs,
 * and its driver makes pollers see the error.  Here the service thread
 * sees EOF on the service pipe, whose only writer was vhcad, and calls
 * vhca_context_lost():
 *
 *  - ctx->lost is set: post and poll verbs return EIO (poll_cq once the
 *    CQ has no valid CQE left), so pure pollers do not spin forever;
 *  - the async fd reads one IBV_EVENT_DEVICE_FATAL record, then EIO;
 *  - every completion channel a CQ uses reads one completion event for
 *    that CQ (waking a thread blocked in ibv_get_cq_event(), which then
 *    polls and sees the error), then EIO.
 *
 * The event fds are replaced under their numbers (dup3) by pty masters
 * that hold the record and then fail with EIO (vhca_eio_fd); a thread
 * blocked in read() on the old pipe is woken by the same record written
 * through the write end we kept (channel.c), so the pipe never reads EOF
 * and errno is never left at 0.  The write ends stay open until the
 * context is closed, so that a reader of the old pipe never sees EOF.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <rdma/ib_user_verbs.h>

#include "vhca.h"

void vhca_ctx_add_cq(struct vhca_context *ctx, struct vhca_cq *cq)
{
	pthread_mutex_lock(&ctx->cq_lock);
	cq->next = ctx->cqs;
	if (ctx->cqs)
		ctx->cqs->pprev = &cq->next;
	cq->pprev = &ctx->cqs;
	ctx->cqs = cq;
	pthread_mutex_unlock(&ctx->cq_lock);
}

void vhca_ctx_remove_cq(struct vhca_context *ctx, struct vhca_cq *cq)
{
	pthread_mutex_lock(&ctx->cq_lock);
	if (cq->pprev) {
		*cq->pprev = cq->next;
		if (cq->next)
			cq->next->pprev = cq->pprev;
		cq->pprev = NULL;
	}
	pthread_mutex_unlock(&ctx->cq_lock);
}

/*
 * Event fd @fd (whose pipe's write end we hold as @write_fd) gets its
 * last record: written into the pipe for a thread blocked on it now, and
 * the number becomes a fd that reads the record once, then fails with
 * EIO.  A thread that was blocked sees the record twice (once from each):
 * a duplicate DEVICE_FATAL or completion event, which polling answers
 * with the same error.  Anything unread in the pipe before it is lost,
 * as the kernel drops a disassociated file's queue.
 */
static void last_record(int fd, int write_fd, const void *rec, size_t len)
{
	int eio;

	if (write_fd >= 0 && write(write_fd, rec, len) < 0) {
		/* full: a reader has records to read anyway */
	}
	eio = vhca_eio_fd(rec, len);
	if (eio < 0)
		return;
	/* Keeps the number: libibverbs and the application hold it. */
	if (dup3(eio, fd, O_CLOEXEC) < 0) {
		/* closed meanwhile: nothing to replace */
	}
	close(eio);
}

void vhca_context_lost(void *arg)
{
	struct vhca_context *ctx = arg;
	struct ib_uverbs_async_event_desc fatal = {
		.event_type = IBV_EVENT_DEVICE_FATAL,
	};
	struct vhca_cq *cq;

	atomic_store(&ctx->lost, true);
	last_record(ctx->ibv_ctx.context.async_fd, ctx->async_write_fd,
		    &fatal, sizeof(fatal));

	/*
	 * One completion event per channel, naming a CQ on it, so that a
	 * waiter learns which CQ to poll (and finds the error there).
	 */
	pthread_mutex_lock(&ctx->cq_lock);
	for (cq = ctx->cqs; cq; cq = cq->next) {
		struct ibv_comp_channel *ch = cq->ibv_cq.channel;
		struct ib_uverbs_comp_event_desc ev = {
			.cq_handle = (uintptr_t)&cq->ibv_cq,
		};
		struct vhca_pool_ent *ent;
		struct vhca_cq *seen;

		if (!ch)
			continue;
		for (seen = ctx->cqs; seen != cq; seen = seen->next)
			if (seen->ibv_cq.channel == ch)
				break;
		if (seen != cq)
			continue;	/* this channel has its record */
		ent = vhca_pool_find(&ctx->pool, ch->fd);
		last_record(ch->fd, ent ? ent->write_fd : -1, &ev, sizeof(ev));
	}
	pthread_mutex_unlock(&ctx->cq_lock);
}
