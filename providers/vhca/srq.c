// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: shared receive queues.
 *
 * One sealed memfd per SRQ: the ring (wqe_count slots of stride bytes, each
 * a struct vhca_recv_wqe and its SGEs) at offset 0, then (page aligned) the
 * struct vhca_srq_db.  post_srq_recv publishes db->head and rings the
 * doorbell with VHCA_DB_SRQ; a slot is free again once the device's
 * db->tail has passed it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "vhca.h"

#define VHCA_MAX_SRQ_WQE_COUNT (1u << 20)
#define VHCA_MIN_SRQ_STRIDE 32u

struct vhca_create_srq_req {
	struct ibv_create_srq ibv_cmd;
	struct vhca_create_srq_cmd drv;
};
static_assert(offsetof(struct vhca_create_srq_req, drv) ==
		      sizeof(struct ibv_create_srq),
	      "udata must directly follow the core command");

/* ib_uverbs_create_srq_resp ends in a flexible array: spell it out */
union vhca_create_srq_rsp {
	struct ib_uverbs_create_srq_resp ibv_resp;
	struct {
		__u32 srq_handle;
		__u32 max_wr;
		__u32 max_sge;
		__u32 srqn;
		struct vhca_create_srq_resp drv;
	} full;
};
static_assert(offsetof(union vhca_create_srq_rsp, full.drv) ==
		      sizeof(struct ib_uverbs_create_srq_resp),
	      "udata must directly follow the core response");
static_assert(offsetof(union vhca_create_srq_rsp, full.srqn) ==
		      offsetof(struct ib_uverbs_create_srq_resp, srqn),
	      "bad CREATE_SRQ response layout");

struct ibv_srq *vhca_create_srq(struct ibv_pd *pd,
				struct ibv_srq_init_attr *attr)
{
	struct vhca_context *ctx = to_vctx(pd->context);
	struct vhca_create_srq_req cmd;
	union vhca_create_srq_rsp resp;
	struct ibv_srq_init_attr init;
	struct vhca_srq *srq;
	uint32_t hdr = sizeof(struct vhca_recv_wqe);
	uint32_t sge = sizeof(struct vhca_sge);
	uint32_t stride;
	size_t ring;
	int ret;

	if (!attr->attr.max_wr || attr->attr.max_wr > VHCA_MAX_SRQ_WQE_COUNT ||
	    attr->attr.max_sge > ctx->max_recv_sge) {
		errno = EINVAL;
		return NULL;
	}

	srq = calloc(1, sizeof(*srq));
	if (!srq)
		return NULL;
	srq->buf.fd = -1;
	ret = vhca_wq_init(&srq->rq);
	if (ret)
		goto err_free;

	srq->rq.wqe_count = vhca_roundup_pow2(attr->attr.max_wr);
	stride = hdr + attr->attr.max_sge * sge;
	stride = vhca_roundup_pow2(stride > VHCA_MIN_SRQ_STRIDE ?
					   stride :
					   VHCA_MIN_SRQ_STRIDE);
	srq->rq.stride = stride;
	srq->rq.max_sge = (stride - hdr) / sge;
	if (srq->rq.max_sge > ctx->max_recv_sge)
		srq->rq.max_sge = ctx->max_recv_sge;

	ring = vhca_page_align((size_t)srq->rq.wqe_count * stride);
	if (vhca_qbuf_alloc(&srq->buf, ring + VHCA_PAGE_SIZE, "vhca-srq")) {
		ret = errno;
		goto err_lock;
	}
	srq->rq.ring = srq->buf.addr;
	srq->db = (struct vhca_srq_db *)((uint8_t *)srq->buf.addr + ring);

	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));
	cmd.drv = (struct vhca_create_srq_cmd){
		.buf_fd = srq->buf.fd,
		.wqe_count = srq->rq.wqe_count,
		.buf_size = srq->buf.size,
		.ring_offset = 0,
		.stride = stride,
		.db_offset = ring,
	};

	init = *attr;
	init.attr.max_wr = srq->rq.wqe_count;
	init.attr.max_sge = srq->rq.max_sge;
	ret = ibv_cmd_create_srq(pd, &srq->ibv_srq, &init, &cmd.ibv_cmd,
				 sizeof(cmd), &resp.ibv_resp, sizeof(resp));
	if (ret)
		goto err_buf;

	if (init.attr.max_sge && init.attr.max_sge < srq->rq.max_sge)
		srq->rq.max_sge = init.attr.max_sge;
	srq->srqn = resp.full.srqn ? resp.full.srqn : resp.full.drv.srqn;
	attr->attr.max_wr = srq->rq.wqe_count;
	attr->attr.max_sge = srq->rq.max_sge;
	return &srq->ibv_srq;

err_buf:
	vhca_qbuf_free(&srq->buf);
err_lock:
	vhca_wq_destroy(&srq->rq);
err_free:
	free(srq);
	errno = ret;
	return NULL;
}

int vhca_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
		    int attr_mask)
{
	struct ibv_modify_srq cmd;

	/* The ring cannot grow under posted WQEs: no SRQ resize. */
	if (attr_mask & IBV_SRQ_MAX_WR)
		return EOPNOTSUPP;

	memset(&cmd, 0, sizeof(cmd));
	return ibv_cmd_modify_srq(ibsrq, attr, attr_mask, &cmd, sizeof(cmd));
}

int vhca_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	struct vhca_srq *srq = to_vsrq(ibsrq);
	struct ibv_query_srq cmd;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	ret = ibv_cmd_query_srq(ibsrq, attr, &cmd, sizeof(cmd));
	if (ret)
		return ret;
	attr->max_wr = srq->rq.wqe_count;
	attr->max_sge = srq->rq.max_sge;
	return 0;
}

int vhca_destroy_srq(struct ibv_srq *ibsrq)
{
	struct vhca_srq *srq = to_vsrq(ibsrq);
	int ret;

	ret = ibv_cmd_destroy_srq(ibsrq);
	if (ret)
		return ret;

	vhca_qbuf_free(&srq->buf);
	vhca_wq_destroy(&srq->rq);
	free(srq);
	return 0;
}

int vhca_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
		       struct ibv_recv_wr **bad_wr)
{
	struct vhca_context *ctx = to_vctx(ibsrq->context);
	struct vhca_srq *srq = to_vsrq(ibsrq);
	bool posted;
	int err;

	if (vhca_ctx_lost(ctx)) {
		*bad_wr = wr;
		return EIO;
	}
	pthread_spin_lock(&srq->rq.lock);
	err = vhca_wq_post_recv(&srq->rq, &srq->db->head, &srq->db->tail, wr,
				bad_wr, &posted);
	pthread_spin_unlock(&srq->rq.lock);

	if (posted)
		vhca_ring_doorbell(ctx, &srq->db->queued, ibsrq->handle,
				   VHCA_DB_SRQ);
	return err;
}
