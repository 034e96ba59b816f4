// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Completion queues (cq.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "cq.h"
#include "packet.h"
#include "engine.h"
#include "limits.h"

/* CQ numbers: unique, never 0, recycled only after 2^24 creations. */
static _Atomic uint32_t next_cqn = 1;

/* The ring and doorbell record of queue memory described by udata. */
static int claim_ring(struct vhca_qmem *qmem, struct vhca_cqe **ring,
		      struct vhca_cq_db **db, const struct vhca_cq_layout *l)
{
	uint64_t ring_len = (uint64_t)l->cqe_count * sizeof(struct vhca_cqe);

	*ring = vhca_qmem_claim(qmem, l->ring_offset, ring_len,
				VHCA_PAGE_SIZE);
	*db = vhca_qmem_claim(qmem, l->db_offset, sizeof(struct vhca_cq_db),
			      VHCA_DB_ALIGN);
	return *ring && *db ? 0 : -EINVAL;
}

static int check_sizes(uint32_t cqe, uint32_t comp_vector,
		       const struct vhca_cq_layout *l)
{
	/* ib_uverbs create_cq: cqe 1..max_cqe, one comp vector here. */
	if (!cqe || cqe > vhca_limits.max_cqe ||
	    comp_vector >= vhca_limits.num_comp_vectors)
		return -EINVAL;
	if (!vhca_is_pow2(l->cqe_count) || l->cqe_count <= cqe ||
	    l->cqe_count > 2 * vhca_limits.max_cqe)
		return -EINVAL;
	return 0;
}

static unsigned int cq_quota(const struct vhca_dev *dev)
{
	return dev->quota.max_cq < vhca_limits.max_cq ? dev->quota.max_cq :
							vhca_limits.max_cq;
}

int vhca_cq_create(struct vhca_dctx *dctx,
		   const struct vhca_cq_create_args *args,
		   struct vhca_qmem *qmem, const struct vhca_cq_layout *layout,
		   struct vhca_cq **out)
{
	struct vhca_dev *dev = dctx->dev;
	struct vhca_cq *cq;
	int ret;

	if (!dctx->ctx_page) {
		vhca_qmem_unmap(qmem);
		return -EOPNOTSUPP;	/* a context without a data path */
	}
	ret = check_sizes(args->cqe, args->comp_vector, layout);
	if (ret) {
		vhca_qmem_unmap(qmem);
		return ret;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		vhca_qmem_unmap(qmem);
		return -ENOMEM;
	}
	cq->dctx = dctx;
	cq->handle = VHCA_NO_HANDLE;
	cq->user_handle = args->user_handle;
	cq->cqe_count = layout->cqe_count;
	cq->qmem = *qmem;
	memset(qmem, 0, sizeof(*qmem));
	ret = claim_ring(&cq->qmem, &cq->ring, &cq->db, layout);
	if (ret) {
		vhca_qmem_unmap(&cq->qmem);
		free(cq);
		return ret;
	}
	vhca_dctx_lock(dctx);
	if (!vhca_stats_reserve(&dev->stats.cqs, cq_quota(dev))) {
		ret = -ENOMEM;
	} else if (vhca_dctx_charge_queue(dctx, cq->qmem.size)) {
		vhca_stats_release(&dev->stats.cqs);
		ret = -ENOMEM;
	} else {
		cq->charged = true;
		ret = vhca_obj_insert(dctx, VHCA_OBJ_CQ, cq, &cq->handle);
	}
	if (ret) {
		vhca_cq_free(cq);
		vhca_dctx_unlock(dctx);
		return ret;
	}
	cq->channel = args->channel;
	cq->cqn = atomic_fetch_add(&next_cqn, 1) & 0xffffff;
	if (!cq->cqn)
		cq->cqn = atomic_fetch_add(&next_cqn, 1) & 0xffffff;
	vhca_dctx_unlock(dctx);
	*out = cq;
	return 0;
}

void vhca_cq_free(struct vhca_cq *cq)
{
	struct vhca_dctx *dctx = cq->dctx;

	if (cq->handle != VHCA_NO_HANDLE)
		vhca_obj_erase(dctx, cq->handle);
	if (cq->charged) {
		vhca_dctx_uncharge_queue(dctx, cq->qmem.size);
		vhca_stats_release(&dctx->dev->stats.cqs);
	}
	vhca_qmem_unmap(&cq->qmem);
	free(cq);
}

int vhca_cq_destroy(struct vhca_dctx *dctx, uint32_t handle)
{
	struct vhca_cq *cq;
	int ret = 0;

	vhca_dctx_lock(dctx);
	cq = vhca_obj_lookup(dctx, VHCA_OBJ_CQ, handle);
	if (!cq) {
		ret = -EINVAL;
	} else if (cq->num_qps) {
		ret = -EBUSY;
	} else {
		vhca_obj_erase(dctx, cq->handle);
		cq->handle = VHCA_NO_HANDLE;
		vhca_cq_free(cq);
	}
	vhca_dctx_unlock(dctx);
	return ret;
}

/* CQEs written and not yet consumed; -1 if the guest's count is garbage. */
static int64_t unconsumed(const struct vhca_cq *cq)
{
	uint32_t consumer = atomic_load_explicit(
		(_Atomic uint32_t *)&cq->db->consumer, memory_order_acquire);
	uint32_t n = cq->producer - consumer;

	return n > cq->cqe_count ? -1 : (int64_t)n;
}

int vhca_cq_resize_prepare(struct vhca_dctx *dctx, uint32_t handle,
			   uint32_t cqe, struct vhca_qmem *qmem,
			   const struct vhca_cq_layout *layout,
			   struct vhca_cq **out, struct vhca_cq_resize *next)
{
	struct vhca_cq *cq;
	uint32_t consumer;
	int64_t pending;
	int ret;

	memset(next, 0, sizeof(*next));
	next->qmem = *qmem;
	memset(qmem, 0, sizeof(*qmem));
	ret = check_sizes(cqe, 0, layout);
	if (!ret)
		ret = claim_ring(&next->qmem, &next->ring, &next->db, layout);
	if (ret) {
		vhca_qmem_unmap(&next->qmem);
		return ret;
	}
	vhca_dctx_lock(dctx);
	cq = vhca_obj_lookup(dctx, VHCA_OBJ_CQ, handle);
	/* As mlx4 and rxe: the completions not yet polled must fit. */
	pending = cq ? unconsumed(cq) : -1;
	if (pending < 0 || pending > cqe)
		ret = -EINVAL;
	else if (vhca_dctx_charge_queue(dctx, next->qmem.size))
		ret = -ENOMEM;
	if (ret) {
		vhca_dctx_unlock(dctx);
		vhca_qmem_unmap(&next->qmem);
		memset(next, 0, sizeof(*next));
		return ret;
	}
	next->cqe_count = layout->cqe_count;
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
	vhca_dctx_uncharge_queue(cq->dctx, cq->qmem.size);
	vhca_qmem_unmap(&cq->qmem);
	cq->qmem = next->qmem;
	cq->ring = next->ring;
	cq->db = next->db;
	cq->cqe_count = next->cqe_count;
	cq->producer = next->pending;
	memset(next, 0, sizeof(*next));
	vhca_dctx_unlock(cq->dctx);
}

void vhca_cq_resize_abort(struct vhca_cq *cq, struct vhca_cq_resize *next)
{
	vhca_dctx_uncharge_queue(cq->dctx, next->qmem.size);
	vhca_dctx_unlock(cq->dctx);
	vhca_qmem_unmap(&next->qmem);
	memset(next, 0, sizeof(*next));
}

static void report_overrun(struct vhca_cq *cq)
{
	struct vhca_dctx *dctx = cq->dctx;

	cq->error = true;
	dctx->sink->async(dctx, cq->handle, cq->user_handle,
			  IBV_EVENT_CQ_ERR);
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

	if (state == VHCA_CQ_DISARMED || cq->channel == VHCA_DEVCMD_NO_CHANNEL)
		return;
	if (state != VHCA_CQ_ARM_NEXT && !solicited && !error)
		return;
	/* One event per arming: whoever takes the arm state fires. */
	state = atomic_exchange_explicit(arm, VHCA_CQ_DISARMED,
					 memory_order_acq_rel);
	if (state != VHCA_CQ_ARM_NEXT && state != VHCA_CQ_ARM_SOLICITED)
		return;	/* raced with the guest, or garbage: not armed */
	cq->dctx->sink->comp(cq->dctx, cq->handle, cq->channel,
			     cq->user_handle);
}

int vhca_cq_push(struct vhca_cq *cq, const struct vhca_cqe *cqe,
		 bool solicited)
{
	_Atomic uint32_t *consumer = (_Atomic uint32_t *)&cq->db->consumer;
	struct vhca_cqe *slot;
	uint8_t owner;

	if (__builtin_expect(vhca_trace_enabled, 0))
		fprintf(stderr,
			"vhca: qp %06x cqe cq %u wr_id %llx status %u opcode %u len %u producer %u consumer %u%s\n",
			cqe->qp_num, cq->cqn, (unsigned long long)cqe->wr_id,
			cqe->status, cqe->opcode, cqe->byte_len, cq->producer,
			atomic_load(consumer), cq->error ? " (CQ in error)" : "");
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
	/* Every CQE is stamped: a vDSO clock read costs ~20 ns. */
	slot->timestamp = vhca_now_ns();
	atomic_store_explicit((_Atomic uint8_t *)&slot->owner, owner,
			      memory_order_release);
	cq->producer++;
	atomic_store_explicit((_Atomic uint32_t *)&cq->db->producer,
			      cq->producer, memory_order_release);
	maybe_notify(cq, solicited, cqe->status != IBV_WC_SUCCESS);
	return 0;
}
