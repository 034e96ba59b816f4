// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Shared receive queues (srq.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <infiniband/verbs.h>

#include "srq.h"

static uint32_t next_srqn = 1;

static int check_layout(const struct ib_uverbs_create_srq *c,
			const struct vhca_create_srq_cmd *u)
{
	const struct vhca_limits *l = &vhca_limits;

	if (!c->max_wr || c->max_wr > l->max_srq_wr ||
	    c->max_sge > l->max_srq_sge || u->reserved)
		return -EINVAL;
	if (!vhca_is_pow2(u->wqe_count) || u->wqe_count < c->max_wr ||
	    u->wqe_count > l->max_srq_wr || !vhca_is_pow2(u->stride) ||
	    u->stride < sizeof(struct vhca_recv_wqe) +
				c->max_sge * sizeof(struct vhca_sge) ||
	    u->stride > VHCA_MAX_WQE_STRIDE)
		return -EINVAL;
	return 0;
}

int vhca_srq_create(struct vhca_ucontext *uctx,
		    const struct ib_uverbs_create_srq *c,
		    const struct vhca_create_srq_cmd *u,
		    struct ib_uverbs_create_srq_resp *resp)
{
	struct vhca_srq *srq;
	int ret;

	if (!uctx->ctx_page)
		return -EOPNOTSUPP;
	ret = check_layout(c, u);
	if (ret)
		return ret;
	if (!vhca_stats_reserve(&uctx->dev->stats.srqs, vhca_limits.max_srq))
		return -ENOMEM;
	srq = calloc(1, sizeof(*srq));
	if (!srq) {
		vhca_stats_release(&uctx->dev->stats.srqs);
		return -ENOMEM;
	}
	srq->uctx = uctx;
	srq->handle = VHCA_NO_HANDLE;
	srq->user_handle = c->user_handle;
	srq->wqe_count = u->wqe_count;
	srq->stride = u->stride;
	ret = vhca_qmem_map(&srq->qmem, uctx->peer, u->buf_fd, u->buf_size);
	if (!ret) {
		srq->ring = vhca_qmem_claim(&srq->qmem, u->ring_offset,
					    (uint64_t)u->wqe_count * u->stride,
					    VHCA_PAGE_SIZE);
		srq->db = vhca_qmem_claim(&srq->qmem, u->db_offset,
					  sizeof(struct vhca_srq_db),
					  VHCA_DB_ALIGN);
		if (!srq->ring || !srq->db)
			ret = -EINVAL;
	}
	if (!ret) {
		srq->pd = vhca_obj_lookup(uctx, VHCA_OBJ_PD, c->pd_handle);
		if (!srq->pd)
			ret = -EINVAL;
	}
	if (!ret)
		ret = vhca_obj_insert(uctx, VHCA_OBJ_SRQ, srq, &srq->handle);
	if (ret) {
		srq->pd = NULL;
		vhca_srq_free(srq);
		return ret;
	}
	srq->pd->num_qps++;
	srq->max_wr = srq->wqe_count;
	srq->max_sge = (srq->stride - sizeof(struct vhca_recv_wqe)) /
		       sizeof(struct vhca_sge);
	if (srq->max_sge > vhca_limits.max_srq_sge)
		srq->max_sge = vhca_limits.max_srq_sge;
	srq->srqn = next_srqn++ & 0xffffff;
	/* srq_limit at create is ignored, as ib_create_srq does. */
	*resp = (struct ib_uverbs_create_srq_resp){
		.srq_handle = srq->handle,
		.max_wr = srq->max_wr,
		.max_sge = srq->max_sge,
		.srqn = srq->srqn,
	};
	return 0;
}

void vhca_srq_free(struct vhca_srq *srq)
{
	if (srq->handle != VHCA_NO_HANDLE)
		vhca_obj_erase(srq->uctx, srq->handle);
	if (srq->pd)
		srq->pd->num_qps--;
	vhca_channels_forget_async(&srq->uctx->channels, srq->uctx->peer,
				   &srq->async_events_read);
	vhca_qmem_unmap(&srq->qmem);
	vhca_stats_release(&srq->uctx->dev->stats.srqs);
	free(srq);
}

int vhca_srq_destroy(struct vhca_ucontext *uctx, uint32_t handle,
		     struct ib_uverbs_destroy_srq_resp *resp)
{
	struct vhca_srq *srq = vhca_obj_lookup(uctx, VHCA_OBJ_SRQ, handle);

	if (!srq)
		return -EINVAL;
	if (srq->num_qps)
		return -EBUSY;
	/* Like the kernel: the events the application has read. */
	vhca_channels_forget_async(&uctx->channels, uctx->peer,
				   &srq->async_events_read);
	resp->events_reported = srq->async_events_read;
	vhca_srq_free(srq);
	return 0;
}

int vhca_srq_modify(struct vhca_ucontext *uctx,
		    const struct ib_uverbs_modify_srq *c)
{
	struct vhca_srq *srq = vhca_obj_lookup(uctx, VHCA_OBJ_SRQ,
					       c->srq_handle);

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

int vhca_srq_query(struct vhca_ucontext *uctx, uint32_t handle,
		   struct ib_uverbs_query_srq_resp *resp)
{
	struct vhca_srq *srq = vhca_obj_lookup(uctx, VHCA_OBJ_SRQ, handle);

	if (!srq)
		return -EINVAL;
	*resp = (struct ib_uverbs_query_srq_resp){
		.max_wr = srq->max_wr,
		.max_sge = srq->max_sge,
		.srq_limit = srq->srq_limit,
	};
	return 0;
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
	vhca_channels_post_async(&srq->uctx->channels, srq->user_handle,
				 IBV_EVENT_SRQ_LIMIT_REACHED,
				 &srq->async_events_read);
}
