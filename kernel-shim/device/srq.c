// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Shared receive queues (srq.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "limits.h"
#include "srq.h"

static _Atomic uint32_t next_srqn = 1;

static int check_layout(const struct ib_uverbs_create_srq *c,
			const struct vhca_srq_layout *u)
{
	const struct vhca_limits *l = &vhca_limits;

	if (!c->max_wr || c->max_wr > l->max_srq_wr ||
	    c->max_sge > l->max_srq_sge)
		return -EINVAL;
	if (!vhca_is_pow2(u->wqe_count) || u->wqe_count < c->max_wr ||
	    u->wqe_count > l->max_srq_wr || !vhca_is_pow2(u->stride) ||
	    u->stride < sizeof(struct vhca_recv_wqe) +
				c->max_sge * sizeof(struct vhca_sge) ||
	    u->stride > VHCA_MAX_WQE_STRIDE)
		return -EINVAL;
	return 0;
}

static unsigned int srq_quota(const struct vhca_dev *dev)
{
	return dev->quota.max_srq < vhca_limits.max_srq ? dev->quota.max_srq :
							  vhca_limits.max_srq;
}

/* Claims the ring and doorbell and takes the function's quota. */
static int setup(struct vhca_dctx *dctx, struct vhca_srq *srq,
		 const struct ib_uverbs_create_srq *c,
		 const struct vhca_srq_layout *u)
{
	struct vhca_dev *dev = dctx->dev;

	srq->ring = vhca_qmem_claim(&srq->qmem, u->ring_offset,
				    (uint64_t)u->wqe_count * u->stride,
				    VHCA_PAGE_SIZE);
	srq->db = vhca_qmem_claim(&srq->qmem, u->db_offset,
				  sizeof(struct vhca_srq_db), VHCA_DB_ALIGN);
	if (!srq->ring || !srq->db)
		return -EINVAL;
	srq->pd = vhca_obj_lookup(dctx, VHCA_OBJ_PD, c->pd_handle);
	if (!srq->pd)
		return -EINVAL;
	if (!vhca_stats_reserve(&dev->stats.srqs, srq_quota(dev)))
		return -ENOMEM;
	if (vhca_dctx_charge_queue(dctx, srq->qmem.size)) {
		vhca_stats_release(&dev->stats.srqs);
		return -ENOMEM;
	}
	srq->charged = true;
	return vhca_obj_insert(dctx, VHCA_OBJ_SRQ, srq, &srq->handle);
}

int vhca_srq_create(struct vhca_dctx *dctx,
		    const struct ib_uverbs_create_srq *c,
		    struct vhca_qmem *qmem, const struct vhca_srq_layout *u,
		    struct ib_uverbs_create_srq_resp *resp)
{
	struct vhca_srq *srq;
	int ret;

	ret = dctx->ctx_page ? check_layout(c, u) : -EOPNOTSUPP;
	srq = ret ? NULL : calloc(1, sizeof(*srq));
	if (!srq) {
		vhca_qmem_unmap(qmem);
		return ret ? ret : -ENOMEM;
	}
	srq->dctx = dctx;
	srq->handle = VHCA_NO_HANDLE;
	srq->user_handle = c->user_handle;
	srq->wqe_count = u->wqe_count;
	srq->stride = u->stride;
	srq->qmem = *qmem;
	memset(qmem, 0, sizeof(*qmem));
	vhca_dctx_lock(dctx);
	ret = setup(dctx, srq, c, u);
	if (ret) {
		srq->pd = NULL;
		vhca_srq_free(srq);
		vhca_dctx_unlock(dctx);
		return ret;
	}
	srq->pd->num_qps++;
	srq->max_wr = srq->wqe_count;
	srq->max_sge = (srq->stride - sizeof(struct vhca_recv_wqe)) /
		       sizeof(struct vhca_sge);
	if (srq->max_sge > vhca_limits.max_srq_sge)
		srq->max_sge = vhca_limits.max_srq_sge;
	srq->srqn = atomic_fetch_add(&next_srqn, 1) & 0xffffff;
	/* srq_limit at create is ignored, as ib_create_srq does. */
	*resp = (struct ib_uverbs_create_srq_resp){
		.srq_handle = srq->handle,
		.max_wr = srq->max_wr,
		.max_sge = srq->max_sge,
		.srqn = srq->srqn,
	};
	vhca_dctx_unlock(dctx);
	return 0;
}

void vhca_srq_free(struct vhca_srq *srq)
{
	struct vhca_dctx *dctx = srq->dctx;

	if (srq->handle != VHCA_NO_HANDLE)
		vhca_obj_erase(dctx, srq->handle);
	if (srq->pd)
		srq->pd->num_qps--;
	if (srq->charged) {
		vhca_dctx_uncharge_queue(dctx, srq->qmem.size);
		vhca_stats_release(&dctx->dev->stats.srqs);
	}
	vhca_qmem_unmap(&srq->qmem);
	free(srq);
}

int vhca_srq_destroy(struct vhca_dctx *dctx, uint32_t handle)
{
	struct vhca_srq *srq;
	int ret = 0;

	vhca_dctx_lock(dctx);
	srq = vhca_obj_lookup(dctx, VHCA_OBJ_SRQ, handle);
	if (!srq) {
		ret = -EINVAL;
	} else if (srq->num_qps) {
		ret = -EBUSY;
	} else {
		vhca_obj_erase(dctx, srq->handle);
		srq->handle = VHCA_NO_HANDLE;
		vhca_srq_free(srq);
	}
	vhca_dctx_unlock(dctx);
	return ret;
}
static int modify_locked(struct vhca_srq *srq,
			 const struct ib_uverbs_modify_srq *c)
{
	if (!srq || c->attr_mask & ~(uint32_t)(IBV_SRQ_MAX_WR | IBV_SRQ_LIMIT))
		return -EINVAL;
	if (c->attr_mask & IBV_SRQ_MAX_WR)
		return -EINVAL;	/* no SRQ resize (no IBV_DEVICE_SRQ_RESIZE) */
	if (c->attr_mask & IBV_SRQ_LIMIT) {
		if (c->srq_limit > srq->max_wr)
			return -EINVAL;
		srq->srq_limit = c->srq_limit;
		srq->armed = c->srq_limit != 0;
	}
	return 0;
}

int vhca_srq_modify(struct vhca_dctx *dctx,
		    const struct ib_uverbs_modify_srq *c)
{
	int ret;

	vhca_dctx_lock(dctx);
	ret = modify_locked(vhca_obj_lookup(dctx, VHCA_OBJ_SRQ, c->srq_handle),
			    c);
	vhca_dctx_unlock(dctx);
	return ret;
}

int vhca_srq_query(struct vhca_dctx *dctx, uint32_t handle,
		   struct ib_uverbs_query_srq_resp *resp)
{
	struct vhca_srq *srq;
	int ret = 0;

	vhca_dctx_lock(dctx);
	srq = vhca_obj_lookup(dctx, VHCA_OBJ_SRQ, handle);
	if (srq)
		*resp = (struct ib_uverbs_query_srq_resp){
			.max_wr = srq->max_wr,
			.max_sge = srq->max_sge,
			.srq_limit = srq->srq_limit,
		};
	else
		ret = -EINVAL;
	vhca_dctx_unlock(dctx);
	return ret;
}

void vhca_srq_consumed(struct vhca_srq *srq)
{
	uint32_t head;

	srq->tail++;
	atomic_store_explicit((_Atomic uint32_t *)&srq->db->tail, srq->tail,
			      memory_order_release);
	if (!srq->armed)
		return;
	head = atomic_load((_Atomic uint32_t *)&srq->db->head);
	if (head - srq->tail >= srq->srq_limit)
		return;
	/* The limit is consumed by the event: it reads 0 until re-armed. */
	srq->armed = false;
	srq->srq_limit = 0;
	srq->dctx->sink->async(srq->dctx, srq->handle, srq->user_handle,
			       IBV_EVENT_SRQ_LIMIT_REACHED);
}
