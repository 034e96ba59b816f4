// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: queue pairs (RC, UC, UD).
 *
 * One sealed memfd per QP (include/vhca/queue.h):
 *   [0, sq_size)            SQ ring: sq_wqe_count slots of sq_stride bytes
 *   [sq_size, +rq_size)     RQ ring: rq_wqe_count slots of rq_stride bytes
 *                           (none when the QP uses an SRQ)
 *   [sq_size + rq_size, +1 page)  struct vhca_qp_db
 * Ring sizes are rounded up to whole pages so every ring is page aligned.
 *
 * post_send/post_recv (and the ibv_wr_* API of ibv_create_qp_ex QPs)
 * build WQEs in the slots, then publish the producer index and ring the
 * doorbell once per call (buf.c).  A slot is free again once the device's
 * consumer index (sq_tail/rq_tail) has passed it: the device copies each
 * WQE out of the ring before it looks at it.  Moving the QP to RESET makes
 * the device zero the doorbell record; both sides restart at index 0.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vhca/opcode.h>

#include "barrier.h"
#include "vhca.h"

/* Far above the device's max_qp_wr; keeps every size computation small. */
#define VHCA_MAX_WQE_COUNT (1u << 20)
#define VHCA_MIN_SQ_STRIDE 128u
#define VHCA_MIN_RQ_STRIDE 32u

struct vhca_create_qp_req {
	struct ibv_create_qp ibv_cmd;
	struct vhca_create_qp_cmd drv;
};
static_assert(offsetof(struct vhca_create_qp_req, drv) ==
		      sizeof(struct ibv_create_qp),
	      "udata must directly follow the core command");

struct vhca_create_qp_rsp {
	struct ib_uverbs_create_qp_resp ibv_resp;
	struct vhca_create_qp_resp drv;
};
static_assert(offsetof(struct vhca_create_qp_rsp, drv) ==
		      sizeof(struct ib_uverbs_create_qp_resp),
	      "udata must directly follow the core response");

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/*
 * Sizes the rings for @cap within the context's limits; on success the
 * QP's sq/rq describe them (ring pointers still NULL).
 */
static int vhca_qp_size(struct vhca_context *ctx, struct vhca_qp *qp,
			const struct ibv_qp_cap *cap, bool has_rq)
{
	uint32_t hdr = sizeof(struct vhca_send_wqe);
	uint32_t sge = sizeof(struct vhca_sge);
	uint32_t stride;

	if (cap->max_send_wr > VHCA_MAX_WQE_COUNT ||
	    cap->max_recv_wr > VHCA_MAX_WQE_COUNT ||
	    cap->max_send_sge > ctx->max_send_sge ||
	    cap->max_inline_data > ctx->max_inline_data ||
	    (has_rq && cap->max_recv_sge > ctx->max_recv_sge))
		return EINVAL;

	/* SQ */
	qp->sq.wqe_count =
		cap->max_send_wr ? vhca_roundup_pow2(cap->max_send_wr) : 0;
	stride = max_u32(hdr + cap->max_send_sge * sge,
			 hdr + cap->max_inline_data);
	stride = vhca_roundup_pow2(max_u32(stride, VHCA_MIN_SQ_STRIDE));
	qp->sq.stride = stride;
	qp->sq.max_sge = min_u32((stride - hdr) / sge, ctx->max_send_sge);
	qp->max_inline_data = min_u32(stride - hdr, ctx->max_inline_data);

	/* RQ */
	if (has_rq) {
		qp->rq.wqe_count = cap->max_recv_wr ?
					   vhca_roundup_pow2(cap->max_recv_wr) :
					   0;
		stride = sizeof(struct vhca_recv_wqe) + cap->max_recv_sge * sge;
		stride = vhca_roundup_pow2(max_u32(stride, VHCA_MIN_RQ_STRIDE));
		qp->rq.stride = stride;
		qp->rq.max_sge =
			min_u32((stride - (uint32_t)sizeof(struct vhca_recv_wqe)) /
					sge,
				ctx->max_recv_sge);
	}
	return 0;
}

static void vhca_qp_init_wr_ops(struct vhca_qp *qp, uint64_t send_ops);

/*
 * Both create verbs end here.  @attr->comp_mask holds IBV_QP_INIT_ATTR_PD
 * and at most IBV_QP_INIT_ATTR_CREATE_FLAGS (0) and
 * IBV_QP_INIT_ATTR_SEND_OPS_FLAGS.  On success attr->cap holds
 * what the rings really hold.
 */
static struct ibv_qp *vhca_create_qp_common(struct ibv_context *context,
					    struct ibv_qp_init_attr_ex *attr)
{
	struct vhca_context *ctx = to_vctx(context);
	struct vhca_create_qp_req cmd;
	struct vhca_create_qp_rsp resp;
	struct ibv_qp_init_attr_ex init;
	uint64_t send_ops = 0;
	size_t sq_size, rq_size;
	struct vhca_qp *qp;
	bool has_rq;
	int ret;

	if (attr->comp_mask & ~(uint32_t)(IBV_QP_INIT_ATTR_PD |
					  IBV_QP_INIT_ATTR_CREATE_FLAGS |
					  IBV_QP_INIT_ATTR_SEND_OPS_FLAGS)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	/*
	 * No create flag is one a software IB device can honour (they are
	 * Ethernet offloads, multicast loopback, source QPNs): 0 is accepted,
	 * as mlx5 and rxe do, the others refused as mlx5 refuses what it lacks.
	 */
	if ((attr->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) &&
	    attr->create_flags) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (!(attr->comp_mask & IBV_QP_INIT_ATTR_PD) || !attr->pd ||
	    !attr->send_cq || !attr->recv_cq) {
		errno = EINVAL;
		return NULL;
	}
	switch (attr->qp_type) {
	case IBV_QPT_RC:
	case IBV_QPT_UC:
	case IBV_QPT_UD:
		break;
	default:
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) {
		/* Only the ibv_wr_* operations the QP type may carry. */
		send_ops = attr->send_ops_flags;
		if (send_ops & ~vhca_wr_ops_of(attr->qp_type)) {
			errno = EOPNOTSUPP;
			return NULL;
		}
	}

	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	qp->buf.fd = -1;
	has_rq = !attr->srq;

	ret = vhca_qp_size(ctx, qp, &attr->cap, has_rq);
	if (ret)
		goto err_free;

	ret = vhca_wq_init(&qp->sq);
	if (ret)
		goto err_free;
	ret = vhca_wq_init(&qp->rq);
	if (ret)
		goto err_sq_lock;

	sq_size = vhca_page_align((size_t)qp->sq.wqe_count * qp->sq.stride);
	rq_size = vhca_page_align((size_t)qp->rq.wqe_count * qp->rq.stride);
	if (vhca_qbuf_alloc(&qp->buf, sq_size + rq_size + VHCA_PAGE_SIZE,
			    "vhca-qp")) {
		ret = errno;
		goto err_rq_lock;
	}
	qp->sq.ring = qp->buf.addr;
	qp->rq.ring = (uint8_t *)qp->buf.addr + sq_size;
	qp->db = (struct vhca_qp_db *)((uint8_t *)qp->buf.addr + sq_size +
				       rq_size);
	qp->sq_sig_all = attr->sq_sig_all;

	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));
	cmd.drv = (struct vhca_create_qp_cmd){
		.buf_fd = qp->buf.fd,
		.buf_size = qp->buf.size,
		.sq_offset = 0,
		.sq_wqe_count = qp->sq.wqe_count,
		.sq_stride = qp->sq.stride,
		.rq_offset = has_rq ? sq_size : 0,
		.rq_wqe_count = qp->rq.wqe_count,
		.rq_stride = has_rq ? qp->rq.stride : 0,
		.db_offset = sq_size + rq_size,
	};

	/* Ask the device for exactly what the rings hold. */
	init = *attr;
	init.comp_mask &= ~(uint32_t)IBV_QP_INIT_ATTR_CREATE_FLAGS;	/* all 0 */
	init.cap.max_send_wr = qp->sq.wqe_count;
	init.cap.max_send_sge = qp->sq.max_sge;
	init.cap.max_inline_data = qp->max_inline_data;
	init.cap.max_recv_wr = has_rq ? qp->rq.wqe_count : 0;
	init.cap.max_recv_sge = has_rq ? qp->rq.max_sge : 0;

	ret = ibv_cmd_create_qp_ex(context, &qp->vqp, &init, &cmd.ibv_cmd,
				   sizeof(cmd), &resp.ibv_resp, sizeof(resp));
	if (ret)
		goto err_buf;

	/* The device may grant less; it never gets more than the rings. */
	if (resp.drv.max_inline_data)
		qp->max_inline_data =
			min_u32(qp->max_inline_data, resp.drv.max_inline_data);
	if (init.cap.max_inline_data)
		qp->max_inline_data =
			min_u32(qp->max_inline_data, init.cap.max_inline_data);
	if (init.cap.max_send_sge)
		qp->sq.max_sge = min_u32(qp->sq.max_sge, init.cap.max_send_sge);
	if (has_rq && init.cap.max_recv_sge)
		qp->rq.max_sge = min_u32(qp->rq.max_sge, init.cap.max_recv_sge);

	attr->cap.max_send_wr = qp->sq.wqe_count;
	attr->cap.max_send_sge = qp->sq.max_sge;
	attr->cap.max_inline_data = qp->max_inline_data;
	attr->cap.max_recv_wr = has_rq ? qp->rq.wqe_count : 0;
	attr->cap.max_recv_sge = has_rq ? qp->rq.max_sge : 0;

	if (attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) {
		vhca_qp_init_wr_ops(qp, send_ops);
		qp->vqp.comp_mask |= VERBS_QP_EX;
	}
	return &qp->vqp.qp;

err_buf:
	vhca_qbuf_free(&qp->buf);
err_rq_lock:
	vhca_wq_destroy(&qp->rq);
err_sq_lock:
	vhca_wq_destroy(&qp->sq);
err_free:
	free(qp);
	errno = ret;
	return NULL;
}

struct ibv_qp *vhca_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct ibv_qp_init_attr_ex attr_ex = {
		.qp_context = attr->qp_context,
		.send_cq = attr->send_cq,
		.recv_cq = attr->recv_cq,
		.srq = attr->srq,
		.cap = attr->cap,
		.qp_type = attr->qp_type,
		.sq_sig_all = attr->sq_sig_all,
		.comp_mask = IBV_QP_INIT_ATTR_PD,
		.pd = pd,
	};
	struct ibv_qp *qp;

	qp = vhca_create_qp_common(pd->context, &attr_ex);
	if (qp)
		attr->cap = attr_ex.cap;
	return qp;
}

struct ibv_qp *vhca_create_qp_ex(struct ibv_context *context,
				 struct ibv_qp_init_attr_ex *attr)
{
	return vhca_create_qp_common(context, attr);
}

int vhca_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int attr_mask,
		  struct ibv_qp_init_attr *init_attr)
{
	struct vhca_qp *qp = to_vqp(ibqp);
	struct ibv_query_qp cmd;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	ret = ibv_cmd_query_qp(ibqp, attr, attr_mask, init_attr, &cmd,
			       sizeof(cmd));
	if (ret)
		return ret;

	/* What the rings actually hold is ours to tell. */
	attr->cap.max_send_wr = qp->sq.wqe_count;
	attr->cap.max_send_sge = qp->sq.max_sge;
	attr->cap.max_inline_data = qp->max_inline_data;
	attr->cap.max_recv_wr = ibqp->srq ? 0 : qp->rq.wqe_count;
	attr->cap.max_recv_sge = ibqp->srq ? 0 : qp->rq.max_sge;
	init_attr->cap = attr->cap;
	return 0;
}

int vhca_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int attr_mask)
{
	struct vhca_qp *qp = to_vqp(ibqp);
	struct ibv_modify_qp cmd;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	ret = ibv_cmd_modify_qp(ibqp, attr, attr_mask, &cmd, sizeof(cmd));
	if (ret)
		return ret;

	/*
	 * RESET discards every posted WQE: the device zeroes the doorbell
	 * record and both sides restart their indices at 0.
	 */
	if ((attr_mask & IBV_QP_STATE) && attr->qp_state == IBV_QPS_RESET) {
		pthread_spin_lock(&qp->sq.lock);
		qp->sq.head = 0;
		pthread_spin_unlock(&qp->sq.lock);
		pthread_spin_lock(&qp->rq.lock);
		qp->rq.head = 0;
		pthread_spin_unlock(&qp->rq.lock);
	}
	return 0;
}

int vhca_destroy_qp(struct ibv_qp *ibqp)
{
	struct vhca_qp *qp = to_vqp(ibqp);
	int ret;

	ret = ibv_cmd_destroy_qp(ibqp);
	if (ret)
		return ret;

	vhca_qbuf_free(&qp->buf);
	vhca_wq_destroy(&qp->rq);
	vhca_wq_destroy(&qp->sq);
	free(qp);
	return 0;
}

/* --- post_send ---------------------------------------------------------
 *
 * What a work request may do is the opcode table's (include/vhca/opcode.h),
 * the one the device checks each WQE against: which QP types carry it (UC
 * has no READ or atomics, UD only SENDs: IBTA table 35's opcodes per
 * transport), whether IBV_SEND_INLINE is honoured (only where a local
 * payload is gathered), which fields its WQE carries.  An opcode the table
 * has no row for fails here, before the device sees it.
 */

/* So an enum ibv_wr_opcode indexes the table and is the WQE's opcode. */
static_assert(IBV_WR_RDMA_WRITE == (int)VHCA_WQE_RDMA_WRITE &&
		      IBV_WR_RDMA_WRITE_WITH_IMM ==
			      (int)VHCA_WQE_RDMA_WRITE_WITH_IMM &&
		      IBV_WR_SEND == (int)VHCA_WQE_SEND &&
		      IBV_WR_SEND_WITH_IMM == (int)VHCA_WQE_SEND_WITH_IMM &&
		      IBV_WR_RDMA_READ == (int)VHCA_WQE_RDMA_READ &&
		      IBV_WR_ATOMIC_CMP_AND_SWP ==
			      (int)VHCA_WQE_ATOMIC_CMP_AND_SWP &&
		      IBV_WR_ATOMIC_FETCH_AND_ADD ==
			      (int)VHCA_WQE_ATOMIC_FETCH_AND_ADD &&
		      IBV_WR_ATOMIC_WRITE == (int)VHCA_WQE_ATOMIC_WRITE,
	      "WQE opcodes are the enum ibv_wr_opcode values");

static void vhca_set_ud_dest(struct vhca_ud_dest *ud,
			     const struct ibv_send_wr *wr)
{
	const struct ibv_ah_attr *ah = &to_vah(wr->wr.ud.ah)->attr;

	ud->remote_qpn = wr->wr.ud.remote_qpn;
	ud->remote_qkey = wr->wr.ud.remote_qkey;
	ud->dlid = ah->dlid;
	ud->sl = ah->sl;
	ud->port_num = ah->port_num;
	ud->is_global = ah->is_global;
	if (ah->is_global) {
		ud->hop_limit = ah->grh.hop_limit;
		ud->sgid_index = ah->grh.sgid_index;
		ud->traffic_class = ah->grh.traffic_class;
		ud->flow_label = ah->grh.flow_label;
		memcpy(ud->dgid, ah->grh.dgid.raw, sizeof(ud->dgid));
	}
}

/*
 * Validates @wr and writes it into @slot.  Returns 0 or an errno value
 * (the slot may then hold garbage; it is not published).
 */
static int vhca_build_send_wqe(struct vhca_qp *qp, const struct ibv_send_wr *wr,
			       uint8_t *slot)
{
	struct vhca_send_wqe *wqe = (struct vhca_send_wqe *)slot;
	enum ibv_qp_type type = qp->vqp.qp.qp_type;
	const struct vhca_wr_info *info = vhca_wr_info(wr->opcode);
	struct vhca_sge *sge;
	uint8_t *data;
	uint64_t total;
	uint8_t flags = 0;
	bool inl;
	int i;

	if (!vhca_wr_allowed(wr->opcode, type))
		return EINVAL;
	if (wr->num_sge < 0)
		return EINVAL;
	if (type == IBV_QPT_UD && !wr->wr.ud.ah)
		return EINVAL;

	/* Inline is for SEND and RDMA WRITE (ibv_post_send(3)); else ignored. */
	inl = (wr->send_flags & IBV_SEND_INLINE) &&
	      (info->flags & VHCA_WR_INLINE_OK);
	if (inl) {
		total = 0;
		for (i = 0; i < wr->num_sge; i++)
			total += wr->sg_list[i].length;
		if (total > qp->max_inline_data)
			return EINVAL;
	} else if ((uint32_t)wr->num_sge > qp->sq.max_sge) {
		return EINVAL;
	}

	if ((wr->send_flags & IBV_SEND_SIGNALED) || qp->sq_sig_all)
		flags |= VHCA_WQE_SIGNALED;
	if (wr->send_flags & IBV_SEND_SOLICITED)
		flags |= VHCA_WQE_SOLICITED;
	if (wr->send_flags & IBV_SEND_FENCE)
		flags |= VHCA_WQE_FENCE;

	memset(wqe, 0, sizeof(*wqe));
	wqe->wr_id = wr->wr_id;
	wqe->opcode = (uint8_t)wr->opcode; /* enum vhca_wqe_opcode values */
	if (info->flags & VHCA_WR_IMM)
		wqe->imm_data = wr->imm_data;

	/*
	 * ATOMIC WRITE posted the legacy way (rxe's convention): its 8
	 * bytes are at the one SGE's address, copied into the WQE now.
	 */
	if (info->flags & VHCA_WR_WQE_DATA) {
		if (wr->num_sge != 1 || wr->sg_list[0].length != 8)
			return EINVAL;
		wqe->atomic.remote_addr = wr->wr.rdma.remote_addr;
		wqe->atomic.rkey = wr->wr.rdma.rkey;
		memcpy(&wqe->atomic.compare_add,
		       (const void *)(uintptr_t)wr->sg_list[0].addr, 8);
		wqe->flags = flags;
		return 0;
	}
	/* One of rdma, atomic and ud (a union): no row has two. */
	if (info->flags & VHCA_WR_RETH) {
		wqe->rdma.remote_addr = wr->wr.rdma.remote_addr;
		wqe->rdma.rkey = wr->wr.rdma.rkey;
	} else if (info->flags & VHCA_WR_ATOMIC) {
		wqe->atomic.remote_addr = wr->wr.atomic.remote_addr;
		wqe->atomic.compare_add = wr->wr.atomic.compare_add;
		wqe->atomic.swap = wr->wr.atomic.swap;
		wqe->atomic.rkey = wr->wr.atomic.rkey;
	} else if (type == IBV_QPT_UD) {
		/* No fixed peer: each UD send names its own (and a DETH). */
		vhca_set_ud_dest(&wqe->ud, wr);
	}

	if (inl) {
		flags |= VHCA_WQE_INLINE;
		data = (uint8_t *)(wqe + 1);
		for (i = 0; i < wr->num_sge; i++) {
			/* UCX posts empty SGEs with a NULL address. */
			if (!wr->sg_list[i].length)
				continue;
			memcpy(data, (const void *)(uintptr_t)wr->sg_list[i].addr,
			       wr->sg_list[i].length);
			data += wr->sg_list[i].length;
		}
		wqe->inline_len = (uint32_t)(data - (uint8_t *)(wqe + 1));
	} else {
		wqe->num_sge = (uint8_t)wr->num_sge;
		sge = (struct vhca_sge *)(wqe + 1);
		for (i = 0; i < wr->num_sge; i++) {
			sge[i].addr = wr->sg_list[i].addr;
			sge[i].length = wr->sg_list[i].length;
			sge[i].lkey = wr->sg_list[i].lkey;
		}
	}
	wqe->flags = flags;
	return 0;
}

int vhca_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		   struct ibv_send_wr **bad_wr)
{
	struct vhca_context *ctx = to_vctx(ibqp->context);
	struct vhca_qp *qp = to_vqp(ibqp);
	struct vhca_wq *sq = &qp->sq;
	uint32_t idx;
	uint32_t used;
	int err = 0;

	if (vhca_ctx_lost(ctx)) {
		*bad_wr = wr;
		return EIO;	/* the device is gone (lost.c) */
	}
	switch (ibqp->state) {
	case IBV_QPS_RESET:
	case IBV_QPS_INIT:
	case IBV_QPS_RTR:
		*bad_wr = wr;
		return EINVAL;
	default:
		break;
	}

	pthread_spin_lock(&sq->lock);
	idx = sq->head;
	used = idx - vhca_load_acquire32(&qp->db->sq_tail);
	for (; wr; wr = wr->next) {
		if (used >= sq->wqe_count) {
			used = idx - vhca_load_acquire32(&qp->db->sq_tail);
			if (used >= sq->wqe_count) {
				err = ENOMEM;
				break;
			}
		}
		err = vhca_build_send_wqe(
			qp, wr,
			sq->ring + (size_t)(idx & (sq->wqe_count - 1)) *
					   sq->stride);
		if (err)
			break;
		idx++;
		used++;
	}
	if (idx != sq->head) {
		sq->head = idx;
		udma_to_device_barrier();
		vhca_store_release32(&qp->db->sq_head, idx);
	} else {
		pthread_spin_unlock(&sq->lock);
		goto out;
	}
	pthread_spin_unlock(&sq->lock);

	vhca_ring_doorbell(ctx, &qp->db->queued, ibqp->handle, VHCA_DB_QP);
out:
	if (err)
		*bad_wr = wr;
	return err;
}

int vhca_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		   struct ibv_recv_wr **bad_wr)
{
	struct vhca_context *ctx = to_vctx(ibqp->context);
	struct vhca_qp *qp = to_vqp(ibqp);
	bool posted;
	int err;

	if (ibqp->srq || ibqp->state == IBV_QPS_RESET) {
		*bad_wr = wr;
		return EINVAL;
	}
	if (vhca_ctx_lost(ctx)) {
		*bad_wr = wr;
		return EIO;
	}

	pthread_spin_lock(&qp->rq.lock);
	err = vhca_wq_post_recv(&qp->rq, &qp->db->rq_head, &qp->db->rq_tail,
				wr, bad_wr, &posted);
	pthread_spin_unlock(&qp->rq.lock);

	if (!posted)
		return err;
	/*
	 * The device reads the RQ when a message arrives; only a QP in error
	 * needs to hear of receives (to flush them).  rq_head before
	 * rq_notify: the device stores them in the other order.
	 */
	udma_full_barrier();
	if (vhca_load_acquire32(&qp->db->rq_notify))
		vhca_ring_doorbell(ctx, &qp->db->queued, ibqp->handle,
				   VHCA_DB_QP);
	return err;
}

/* --- the ibv_wr_* send API (ibv_qp_ex) ------------------------------------
 *
 * wr_start takes the SQ lock; each wr_<opcode> starts a WQE in the next
 * slot and the wr_set_* calls complete it; wr_complete publishes sq_head
 * and rings the doorbell once, or, if any call of the batch failed, drops
 * the whole batch and returns that error (the slots were never published).
 * wr_abort drops the batch.
 */

static struct vhca_qp *qpx_to_vqp(struct ibv_qp_ex *qpx)
{
	return vhca_container_of(qpx, struct vhca_qp, vqp.qp_ex);
}

static void vhca_wr_start(struct ibv_qp_ex *qpx)
{
	struct vhca_qp *qp = qpx_to_vqp(qpx);

	pthread_spin_lock(&qp->sq.lock);
	qp->wr_cur = qp->sq.head;
	qp->wr_wqe = NULL;
	switch (qp->vqp.qp.state) {
	case IBV_QPS_RESET:
	case IBV_QPS_INIT:
	case IBV_QPS_RTR:
		qp->wr_err = EINVAL;
		break;
	default:
		qp->wr_err = 0;
		break;
	}
}

static int vhca_wr_complete(struct ibv_qp_ex *qpx)
{
	struct vhca_qp *qp = qpx_to_vqp(qpx);
	struct vhca_context *ctx = to_vctx(qp->vqp.qp.context);
	int err = qp->wr_err;
	bool posted = false;

	if (!err && qp->wr_cur != qp->sq.head) {
		qp->sq.head = qp->wr_cur;
		udma_to_device_barrier();
		vhca_store_release32(&qp->db->sq_head, qp->wr_cur);
		posted = true;
	}
	qp->wr_wqe = NULL;
	pthread_spin_unlock(&qp->sq.lock);

	if (posted)
		vhca_ring_doorbell(ctx, &qp->db->queued, qp->vqp.qp.handle,
				   VHCA_DB_QP);
	return err;
}

static void vhca_wr_abort(struct ibv_qp_ex *qpx)
{
	struct vhca_qp *qp = qpx_to_vqp(qpx);

	qp->wr_wqe = NULL;
	pthread_spin_unlock(&qp->sq.lock);
}

/* Starts a WQE of @op in the next free slot; NULL once the batch failed. */
static struct vhca_send_wqe *vhca_wr_new(struct ibv_qp_ex *qpx,
					 enum ibv_wr_opcode op)
{
	struct vhca_qp *qp = qpx_to_vqp(qpx);
	struct vhca_send_wqe *wqe;
	uint8_t flags = 0;

	qp->wr_wqe = NULL;
	if (qp->wr_err)
		return NULL;
	if (!vhca_wr_allowed(op, qp->vqp.qp.qp_type)) {
		qp->wr_err = EINVAL;
		return NULL;
	}
	if (qp->wr_cur - vhca_load_acquire32(&qp->db->sq_tail) >=
	    qp->sq.wqe_count) {
		qp->wr_err = ENOMEM;
		return NULL;
	}

	if ((qpx->wr_flags & IBV_SEND_SIGNALED) || qp->sq_sig_all)
		flags |= VHCA_WQE_SIGNALED;
	if (qpx->wr_flags & IBV_SEND_SOLICITED)
		flags |= VHCA_WQE_SOLICITED;
	if (qpx->wr_flags & IBV_SEND_FENCE)
		flags |= VHCA_WQE_FENCE;

	wqe = (struct vhca_send_wqe *)(qp->sq.ring +
				       (size_t)(qp->wr_cur &
						(qp->sq.wqe_count - 1)) *
					       qp->sq.stride);
	memset(wqe, 0, sizeof(*wqe));
	wqe->wr_id = qpx->wr_id;
	wqe->opcode = (uint8_t)op;
	wqe->flags = flags;
	qp->wr_cur++;
	qp->wr_wqe = wqe;
	return wqe;
}

static void vhca_wr_send(struct ibv_qp_ex *qpx)
{
	vhca_wr_new(qpx, IBV_WR_SEND);
}

static void vhca_wr_send_imm(struct ibv_qp_ex *qpx, __be32 imm_data)
{
	struct vhca_send_wqe *wqe = vhca_wr_new(qpx, IBV_WR_SEND_WITH_IMM);

	if (wqe)
		wqe->imm_data = imm_data;
}

static void vhca_wr_rdma(struct ibv_qp_ex *qpx, enum ibv_wr_opcode op,
			 uint32_t rkey, uint64_t remote_addr, __be32 imm_data)
{
	struct vhca_send_wqe *wqe = vhca_wr_new(qpx, op);

	if (!wqe)
		return;
	wqe->rdma.remote_addr = remote_addr;
	wqe->rdma.rkey = rkey;
	wqe->imm_data = imm_data;
}

static void vhca_wr_rdma_write(struct ibv_qp_ex *qpx, uint32_t rkey,
			       uint64_t remote_addr)
{
	vhca_wr_rdma(qpx, IBV_WR_RDMA_WRITE, rkey, remote_addr, 0);
}

static void vhca_wr_rdma_write_imm(struct ibv_qp_ex *qpx, uint32_t rkey,
				   uint64_t remote_addr, __be32 imm_data)
{
	vhca_wr_rdma(qpx, IBV_WR_RDMA_WRITE_WITH_IMM, rkey, remote_addr,
		     imm_data);
}

static void vhca_wr_rdma_read(struct ibv_qp_ex *qpx, uint32_t rkey,
			      uint64_t remote_addr)
{
	vhca_wr_rdma(qpx, IBV_WR_RDMA_READ, rkey, remote_addr, 0);
}

static void vhca_wr_atomic(struct ibv_qp_ex *qpx, enum ibv_wr_opcode op,
			   uint32_t rkey, uint64_t remote_addr,
			   uint64_t compare_add, uint64_t swap)
{
	struct vhca_send_wqe *wqe = vhca_wr_new(qpx, op);

	if (!wqe)
		return;
	wqe->atomic.remote_addr = remote_addr;
	wqe->atomic.compare_add = compare_add;
	wqe->atomic.swap = swap;
	wqe->atomic.rkey = rkey;
}

static void vhca_wr_atomic_cmp_swp(struct ibv_qp_ex *qpx, uint32_t rkey,
				   uint64_t remote_addr, uint64_t compare,
				   uint64_t swap)
{
	vhca_wr_atomic(qpx, IBV_WR_ATOMIC_CMP_AND_SWP, rkey, remote_addr,
		       compare, swap);
}

static void vhca_wr_atomic_fetch_add(struct ibv_qp_ex *qpx, uint32_t rkey,
				     uint64_t remote_addr, uint64_t add)
{
	vhca_wr_atomic(qpx, IBV_WR_ATOMIC_FETCH_AND_ADD, rkey, remote_addr,
		       add, 0);
}

static void vhca_wr_atomic_write(struct ibv_qp_ex *qpx, uint32_t rkey,
				 uint64_t remote_addr, const void *atomic_wr)
{
	struct vhca_send_wqe *wqe = vhca_wr_new(qpx, IBV_WR_ATOMIC_WRITE);

	if (!wqe)
		return;
	wqe->atomic.remote_addr = remote_addr;
	wqe->atomic.rkey = rkey;
	memcpy(&wqe->atomic.compare_add, atomic_wr, 8);
}

static void vhca_wr_set_ud_addr(struct ibv_qp_ex *qpx, struct ibv_ah *ah,
				uint32_t remote_qpn, uint32_t remote_qkey)
{
	struct vhca_qp *qp = qpx_to_vqp(qpx);
	struct ibv_send_wr wr = {
		.wr.ud = { .ah = ah, .remote_qpn = remote_qpn,
			   .remote_qkey = remote_qkey },
	};

	if (!qp->wr_wqe)
		return;
	if (qp->vqp.qp.qp_type != IBV_QPT_UD || !ah) {
		qp->wr_err = EINVAL;
		return;
	}
	vhca_set_ud_dest(&qp->wr_wqe->ud, &wr);
}

static void vhca_wr_set_sge_list(struct ibv_qp_ex *qpx, size_t num_sge,
				 const struct ibv_sge *sg_list)
{
	struct vhca_qp *qp = qpx_to_vqp(qpx);
	struct vhca_send_wqe *wqe = qp->wr_wqe;
	struct vhca_sge *sge;
	size_t i;

	if (!wqe)
		return;
	if (num_sge > qp->sq.max_sge) {
		qp->wr_err = EINVAL;
		return;
	}
	sge = (struct vhca_sge *)(wqe + 1);
	for (i = 0; i < num_sge; i++) {
		sge[i].addr = sg_list[i].addr;
		sge[i].length = sg_list[i].length;
		sge[i].lkey = sg_list[i].lkey;
	}
	wqe->num_sge = (uint8_t)num_sge;
	wqe->flags &= (uint8_t)~VHCA_WQE_INLINE;
	wqe->inline_len = 0;
}

static void vhca_wr_set_sge(struct ibv_qp_ex *qpx, uint32_t lkey,
			    uint64_t addr, uint32_t length)
{
	struct ibv_sge sge = { .addr = addr, .length = length, .lkey = lkey };

	vhca_wr_set_sge_list(qpx, 1, &sge);
}

static void vhca_wr_set_inline_data_list(struct ibv_qp_ex *qpx, size_t num_buf,
					 const struct ibv_data_buf *buf_list)
{
	struct vhca_qp *qp = qpx_to_vqp(qpx);
	struct vhca_send_wqe *wqe = qp->wr_wqe;
	const struct vhca_wr_info *info;
	uint8_t *data;
	size_t total = 0;
	size_t i;

	if (!wqe)
		return;
	info = vhca_wr_info(wqe->opcode);	/* checked by vhca_wr_new() */
	for (i = 0; i < num_buf; i++)
		total += buf_list[i].length;
	if (!info || !(info->flags & VHCA_WR_INLINE_OK) ||
	    total > qp->max_inline_data) {
		qp->wr_err = EINVAL;
		return;
	}
	data = (uint8_t *)(wqe + 1);
	for (i = 0; i < num_buf; i++) {
		if (!buf_list[i].length)
			continue;	/* may come with a NULL address */
		memcpy(data, buf_list[i].addr, buf_list[i].length);
		data += buf_list[i].length;
	}
	wqe->num_sge = 0;
	wqe->inline_len = (uint32_t)total;
	wqe->flags |= VHCA_WQE_INLINE;
}

static void vhca_wr_set_inline_data(struct ibv_qp_ex *qpx, void *addr,
				    size_t length)
{
	struct ibv_data_buf buf = { .addr = addr, .length = length };

	vhca_wr_set_inline_data_list(qpx, 1, &buf);
}

static void vhca_qp_init_wr_ops(struct vhca_qp *qp, uint64_t send_ops)
{
	struct ibv_qp_ex *qpx = &qp->vqp.qp_ex;

	qpx->wr_start = vhca_wr_start;
	qpx->wr_complete = vhca_wr_complete;
	qpx->wr_abort = vhca_wr_abort;
	qpx->wr_set_sge = vhca_wr_set_sge;
	qpx->wr_set_sge_list = vhca_wr_set_sge_list;
	qpx->wr_set_inline_data = vhca_wr_set_inline_data;
	qpx->wr_set_inline_data_list = vhca_wr_set_inline_data_list;
	if (qp->vqp.qp.qp_type == IBV_QPT_UD)
		qpx->wr_set_ud_addr = vhca_wr_set_ud_addr;

	if (send_ops & IBV_QP_EX_WITH_SEND)
		qpx->wr_send = vhca_wr_send;
	if (send_ops & IBV_QP_EX_WITH_SEND_WITH_IMM)
		qpx->wr_send_imm = vhca_wr_send_imm;
	if (send_ops & IBV_QP_EX_WITH_RDMA_WRITE)
		qpx->wr_rdma_write = vhca_wr_rdma_write;
	if (send_ops & IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM)
		qpx->wr_rdma_write_imm = vhca_wr_rdma_write_imm;
	if (send_ops & IBV_QP_EX_WITH_RDMA_READ)
		qpx->wr_rdma_read = vhca_wr_rdma_read;
	if (send_ops & IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP)
		qpx->wr_atomic_cmp_swp = vhca_wr_atomic_cmp_swp;
	if (send_ops & IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD)
		qpx->wr_atomic_fetch_add = vhca_wr_atomic_fetch_add;
	if (send_ops & IBV_QP_EX_WITH_ATOMIC_WRITE)
		qpx->wr_atomic_write = vhca_wr_atomic_write;
}
