// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Completion queues (cq.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "cq.h"

/* CQ numbers: unique, never 0, recycled only after 2^24 creations. */
static _Atomic uint32_t next_cqn = 1;

/* The ring and doorbell record of a CQ memfd described by udata. */
static int map_ring(struct vhca_qmem *qmem, struct vhca_cqe **ring,
		    struct vhca_cq_db **db, const struct vhca_dma_peer *peer,
		    const struct vhca_create_cq_cmd *ucmd)
{
	uint64_t ring_len = (uint64_t)ucmd->cqe_count * sizeof(struct vhca_cqe);
	int ret;

	ret = vhca_qmem_map(qmem, peer, ucmd->buf_fd, ucmd->buf_size);
	if (ret)
		return ret;
	*ring = vhca_qmem_claim(qmem, ucmd->ring_offset, ring_len,
				VHCA_PAGE_SIZE);
	*db = vhca_qmem_claim(qmem, ucmd->db_offset, sizeof(struct vhca_cq_db),
			      VHCA_DB_ALIGN);
	return *ring && *db ? 0 : -EINVAL;
}

static int check_sizes(const struct vhca_cq_create_args *args,
		       const struct vhca_create_cq_cmd *ucmd)
{
	/* ib_uverbs create_cq: cqe 1..max_cqe, one comp vector here. */
	if (!args->cqe || args->cqe > vhca_limits.max_cqe ||
	    args->comp_vector >= vhca_limits.num_comp_vectors)
		return -EINVAL;
	if (!vhca_is_pow2(ucmd->cqe_count) || ucmd->cqe_count <= args->cqe ||
	    ucmd->cqe_count > 2 * vhca_limits.max_cqe)
		return -EINVAL;
	return 0;
}

int vhca_cq_create(struct vhca_ucontext *uctx,
		   const struct vhca_cq_create_args *args,
		   const struct vhca_create_cq_cmd *ucmd, struct vhca_cq **out)
{
	struct vhca_cq *cq;
	int ret;

	if (!uctx->ctx_page)
		return -EOPNOTSUPP;	/* a context without a data path */
	ret = check_sizes(args, ucmd);
	if (ret)
		return ret;
	if (!vhca_stats_reserve(&uctx->dev->stats.cqs, vhca_limits.max_cq))
		return -ENOMEM;
	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		vhca_stats_release(&uctx->dev->stats.cqs);
		return -ENOMEM;
	}
	cq->uctx = uctx;
	cq->handle = VHCA_NO_HANDLE;
	cq->user_handle = args->user_handle;
	cq->cqe_count = ucmd->cqe_count;
	ret = map_ring(&cq->qmem, &cq->ring, &cq->db, uctx->peer, ucmd);
	if (!ret && args->comp_channel >= 0) {
		cq->channel = vhca_channels_get_comp(&uctx->channels,
						     uctx->peer,
						     args->comp_channel);
		if (!cq->channel)
			ret = -EINVAL;
	}
	if (!ret)
		ret = vhca_obj_insert(uctx, VHCA_OBJ_CQ, cq, &cq->handle);
	if (ret) {
		vhca_cq_free(cq);
		return ret;
	}
	cq->cqn = atomic_fetch_add(&next_cqn, 1) & 0xffffff;
	if (!cq->cqn)
		cq->cqn = atomic_fetch_add(&next_cqn, 1) & 0xffffff;
	*out = cq;
	return 0;
}

void vhca_cq_free(struct vhca_cq *cq)
{
	if (cq->handle != VHCA_NO_HANDLE)
		vhca_obj_erase(cq->uctx, cq->handle);
	if (cq->channel) {
		vhca_comp_channel_forget(cq->channel, cq->uctx->peer,
					 &cq->comp_events_read);
		vhca_comp_channel_put(cq->channel);
	}
	vhca_channels_forget_async(&cq->uctx->channels, cq->uctx->peer,
				   &cq->async_events_read);
	vhca_qmem_unmap(&cq->qmem);
	vhca_stats_release(&cq->uctx->dev->stats.cqs);
	free(cq);
}

int vhca_cq_destroy(struct vhca_ucontext *uctx, uint32_t handle,
		    struct ib_uverbs_destroy_cq_resp *resp)
{
	struct vhca_cq *cq = vhca_obj_lookup(uctx, VHCA_OBJ_CQ, handle);

	if (!cq)
		return -EINVAL;
	if (cq->num_qps)
		return -EBUSY;
	/*
	 * Like the kernel, report the events the application has read:
	 * libibverbs waits until it has acked exactly that many.
	 */
	if (cq->channel)
		vhca_comp_channel_forget(cq->channel, cq->uctx->peer,
					 &cq->comp_events_read);
	vhca_channels_forget_async(&uctx->channels, uctx->peer,
				   &cq->async_events_read);
	resp->comp_events_reported = cq->comp_events_read;
	resp->async_events_reported = cq->async_events_read;
	vhca_cq_free(cq);
	return 0;
}

/* CQEs written and not yet consumed; -1 if the guest's count is garbage. */
static int64_t unconsumed(const struct vhca_cq *cq)
{
	uint32_t consumer = atomic_load_explicit(
		(_Atomic uint32_t *)&cq->db->consumer, memory_order_acquire);
	uint32_t n = cq->producer - consumer;

	return n > cq->cqe_count ? -1 : (int64_t)n;
}

int vhca_cq_resize_prepare(struct vhca_ucontext *uctx, uint32_t handle,
			   uint32_t cqe, const struct vhca_create_cq_cmd *ucmd,
			   struct vhca_cq **out, struct vhca_cq_resize *next)
{
	const struct vhca_cq_create_args args = { .cqe = cqe };
	struct vhca_cq *cq = vhca_obj_lookup(uctx, VHCA_OBJ_CQ, handle);
	uint32_t consumer;
	int64_t pending;
	int ret;

	memset(next, 0, sizeof(*next));
	if (!cq)
		return -EINVAL;
	ret = check_sizes(&args, ucmd);
	if (ret)
		return ret;
	/* As mlx4 and rxe: the completions not yet polled must fit. */
	pending = unconsumed(cq);
	if (pending < 0 || pending > cqe)
		return -EINVAL;
	ret = map_ring(&next->qmem, &next->ring, &next->db, uctx->peer, ucmd);
	if (ret) {
		vhca_cq_resize_abort(next);
		return ret;
	}
	next->cqe_count = ucmd->cqe_count;
	next->pending = (uint32_t)pending;
	/*
	 * The consumer we counted from, not a second read: the guest may
	 * move it meanwhile, and then loses what it skipped, nothing more.
	 * pending <= cqe < cqe_count: all land in the first pass (owner 1).
	 */
	consumer = cq->producer - next->pending;
	for (uint32_t i = 0; i < next->pending; i++) {
		struct vhca_cqe c;

		memcpy(&c, &cq->ring[(consumer + i) & (cq->cqe_count - 1)],
		       sizeof(c));
		memcpy(&next->ring[i], &c, offsetof(struct vhca_cqe, owner));
		atomic_store_explicit((_Atomic uint8_t *)&next->ring[i].owner,
				      1, memory_order_release);
	}
	atomic_store((_Atomic uint32_t *)&next->db->consumer, 0);
	atomic_store((_Atomic uint32_t *)&next->db->producer, next->pending);
	*out = cq;
	return 0;
}

void vhca_cq_resize_commit(struct vhca_cq *cq, struct vhca_cq_resize *next)
{
	/* An armed CQ stays armed: its next completion raises the event. */
	uint32_t arm = atomic_exchange((_Atomic uint32_t *)&cq->db->arm,
				       VHCA_CQ_DISARMED);

	atomic_store((_Atomic uint32_t *)&next->db->arm, arm);
	vhca_qmem_unmap(&cq->qmem);
	cq->qmem = next->qmem;
	cq->ring = next->ring;
	cq->db = next->db;
	cq->cqe_count = next->cqe_count;
	cq->producer = next->pending;
	memset(next, 0, sizeof(*next));
}

void vhca_cq_resize_abort(struct vhca_cq_resize *next)
{
	vhca_qmem_unmap(&next->qmem);
	memset(next, 0, sizeof(*next));
}

static void report_overrun(struct vhca_cq *cq)
{
	cq->error = true;
	vhca_channels_post_async(&cq->uctx->channels, cq->user_handle,
				 IBV_EVENT_CQ_ERR, &cq->async_events_read);
}

/* ARM_NEXT fires on any CQE, ARM_SOLICITED on solicited or error ones. */
static void maybe_notify(struct vhca_cq *cq, bool solicited, bool error)
{
	_Atomic uint32_t *arm = (_Atomic uint32_t *)&cq->db->arm;
	uint32_t state;

	/*
	 * Store (owner) then load (arm) against the provider's store (arm)
	 * then load (owner): only a full barrier on both sides makes sure
	 * one of us sees the other, so no event is lost.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	state = atomic_load_explicit(arm, memory_order_acquire);

	if (state == VHCA_CQ_DISARMED || !cq->channel)
		return;
	if (state != VHCA_CQ_ARM_NEXT && !solicited && !error)
		return;
	/* One event per arming: whoever takes the arm state fires. */
	state = atomic_exchange_explicit(arm, VHCA_CQ_DISARMED,
					 memory_order_acq_rel);
	if (state != VHCA_CQ_ARM_NEXT && state != VHCA_CQ_ARM_SOLICITED)
		return;	/* raced with the guest, or garbage: not armed */
	if (!vhca_comp_channel_post(cq->channel, cq->user_handle,
				    &cq->comp_events_read))
		cq->comp_events++;
}

int vhca_cq_push(struct vhca_cq *cq, const struct vhca_cqe *cqe,
		 bool solicited)
{
	_Atomic uint32_t *consumer = (_Atomic uint32_t *)&cq->db->consumer;
	struct vhca_cqe *slot;
	uint8_t owner;

	if (cq->error)
		return -ENOSPC;
	/* A consumer ahead of us is garbage: unsigned distance overflows. */
	if (cq->producer -
		    atomic_load_explicit(consumer, memory_order_acquire) >=
	    cq->cqe_count) {
		report_overrun(cq);
		return -ENOSPC;
	}
	slot = &cq->ring[cq->producer & (cq->cqe_count - 1)];
	owner = (uint8_t)(((cq->producer / cq->cqe_count) & 1) ^ 1);
	memcpy(slot, cqe, offsetof(struct vhca_cqe, owner));
	atomic_store_explicit((_Atomic uint8_t *)&slot->owner, owner,
			      memory_order_release);
	cq->producer++;
	atomic_store_explicit((_Atomic uint32_t *)&cq->db->producer,
			      cq->producer, memory_order_release);
	maybe_notify(cq, solicited, cqe->status != IBV_WC_SUCCESS);
	return 0;
}
