// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The responder: what the destination HCA does with a packet (packet.h).
 * Follows rxe's resp.c: a packet nobody may accept is dropped silently
 * (the requester times out); on RC a missing receive WQE is an RNR NAK,
 * a bad rkey or access a remote access NAK, a malformed request an
 * invalid request NAK; both are class C errors after which the responder
 * QP goes to the error state.  UC and UD never NAK: they drop.
 */
#include <endian.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "cq.h"
#include "engine.h"
#include "packet.h"
#include "qp.h"
#include "srq.h"

#define GRH_SIZE 40

struct find_lid {
	uint16_t lid;
	struct vhca_dev *dev;
};

static int match_lid(struct vhca_dev *dev, void *arg)
{
	struct find_lid *f = arg;

	if (dev->port.lid != f->lid || dev->port.state != IBV_PORT_ACTIVE)
		return 0;
	f->dev = dev;
	return 1;
}

/* The device whose port has LID @lid; pf->lock is taken shared. */
static struct vhca_dev *find_dev(struct vhca_dev *src, uint16_t lid)
{
	struct find_lid f = { .lid = lid };

	if (!lid || lid >= 0xc000)
		return NULL;	/* no multicast */
	pthread_rwlock_rdlock(&src->pf->lock);
	vhca_pf_for_each_dev(src->pf, match_lid, &f);
	pthread_rwlock_unlock(&src->pf->lock);
	return f.dev;
}

/* P_Key match: same partition, not both limited members (IBTA 10.9.3). */
static bool pkey_match(uint16_t a, uint16_t b)
{
	return a && b && (a & 0x7fff) == (b & 0x7fff) && ((a | b) & 0x8000);
}

/* Port and QP accept @pkey?  *index: the port table entry matched. */
static bool pkey_accepts(const struct vhca_qp *qp, uint16_t pkey,
			 uint16_t *index)
{
	const struct vhca_dev *dev = qp->uctx->dev;
	bool ok = false;

	pthread_rwlock_rdlock(&dev->pf->lock);
	if (pkey_match(dev->port.pkeys[qp->attr.pkey_index], pkey)) {
		for (uint16_t i = 0; i < VHCA_PKEY_TABLE_LEN && !ok; i++) {
			if (pkey_match(dev->port.pkeys[i], pkey)) {
				*index = i;
				ok = true;
			}
		}
	}
	pthread_rwlock_unlock(&dev->pf->lock);
	return ok;
}

/* A receive WQE, copied and validated, not yet consumed. */
struct recv_wqe {
	uint64_t wr_id;
	struct vhca_sgl sgl;
};

enum recv_result {
	RECV_OK,
	RECV_NONE,		/* nothing posted */
	RECV_BAD_RING,		/* a scribbled head: there is no WQE */
	RECV_BAD_WQE,		/* a WQE we consume and fail (bad SGE, lkey) */
};

/* The receive ring a QP consumes from: its own RQ or its SRQ's. */
struct recv_ring {
	const uint8_t *ring;
	uint32_t count, stride, max_sge, tail;
	_Atomic uint32_t *head;
	uint64_t pdn;
};

static bool recv_ring_of(const struct vhca_qp *qp, struct recv_ring *r)
{
	if (qp->srq) {
		const struct vhca_srq *srq = qp->srq;

		*r = (struct recv_ring){
			.ring = srq->ring,
			.count = srq->wqe_count,
			.stride = srq->stride,
			.max_sge = srq->max_sge,
			.tail = srq->tail,
			.head = (_Atomic uint32_t *)&srq->db->head,
			.pdn = srq->pd->pdn,
		};
		return true;
	}
	if (!qp->rq_count)
		return false;
	*r = (struct recv_ring){
		.ring = qp->rq,
		.count = qp->rq_count,
		.stride = qp->rq_stride,
		.max_sge = qp->max_recv_sge,
		.tail = qp->rq_tail,
		.head = (_Atomic uint32_t *)&qp->db->rq_head,
		.pdn = qp->pd->pdn,
	};
	return true;
}

/*
 * The head receive WQE.  @check_sges: its SGEs must name local-write
 * memory of the QP's PD (a deregistered MR fails here); WRITE_WITH_IMM
 * places no data in the WQE, so it does not look at them.
 */
static enum recv_result peek_recv(struct vhca_qp *qp, struct recv_wqe *w,
				  bool check_sges)
{
	uint8_t copy[sizeof(struct vhca_recv_wqe) +
		     VHCA_SGL_MAX * sizeof(struct vhca_sge)];
	struct vhca_recv_wqe hdr;
	struct recv_ring r;
	struct vhca_sge sge;
	uint32_t head;
	size_t len;

	memset(w, 0, sizeof(*w));
	if (!recv_ring_of(qp, &r))
		return RECV_NONE;
	head = atomic_load_explicit(r.head, memory_order_acquire);
	if (head == r.tail)
		return RECV_NONE;
	if (head - r.tail > r.count)
		return RECV_BAD_RING;	/* a head the guest scribbled */
	/* Copy first: the guest may rewrite the slot at any time. */
	len = sizeof(hdr) + r.max_sge * sizeof(sge);
	memcpy(copy, r.ring + (size_t)(r.tail & (r.count - 1)) * r.stride, len);
	memcpy(&hdr, copy, sizeof(hdr));
	w->wr_id = hdr.wr_id;
	if (hdr.num_sge > r.max_sge)
		return RECV_BAD_WQE;
	for (uint32_t i = 0; check_sges && i < hdr.num_sge; i++) {
		memcpy(&sge, copy + sizeof(hdr) + i * sizeof(sge), sizeof(sge));
		if (vhca_sgl_add(&w->sgl, qp->uctx->dev, r.pdn, sge.lkey,
				 sge.addr, sge.length,
				 IB_UVERBS_ACCESS_LOCAL_WRITE)) {
			vhca_sgl_release(&w->sgl);
			return RECV_BAD_WQE;
		}
	}
	return RECV_OK;
}

static void commit_recv(struct vhca_qp *qp)
{
	if (qp->srq) {
		vhca_srq_consumed(qp->srq);
		return;
	}
	qp->rq_tail++;
	atomic_store_explicit((_Atomic uint32_t *)&qp->db->rq_tail,
			      qp->rq_tail, memory_order_release);
}

/* The responder QP goes to error: flushed by the engine. */
static void responder_error(struct vhca_qp *qp)
{
	vhca_qp_set_error(qp);
	vhca_engine_schedule(qp);
}

static void complete_recv(struct vhca_qp *qp, const struct vhca_pkt *pkt,
			  uint64_t wr_id, enum ibv_wc_status status,
			  enum ibv_wc_opcode opcode, uint32_t byte_len,
			  uint16_t pkey_index)
{
	struct vhca_cqe cqe = {
		.wr_id = wr_id,
		.status = status,
		.opcode = opcode,
		.byte_len = byte_len,
		.qp_num = qp->qpn,
		.src_qp = pkt->src_qpn,
		.pkey_index = pkey_index,
		.slid = pkt->slid,
		.sl = pkt->sl,
	};

	if (pkt->has_imm && status == IBV_WC_SUCCESS) {
		cqe.imm_data = pkt->imm;
		cqe.wc_flags |= IBV_WC_WITH_IMM;
	}
	if (pkt->has_grh && status == IBV_WC_SUCCESS)
		cqe.wc_flags |= IBV_WC_GRH;
	vhca_cq_push(qp->recv_cq, &cqe, pkt->solicited);
	if (status != IBV_WC_SUCCESS)
		responder_error(qp);
}

static void write_grh(const struct vhca_pkt *pkt, struct vhca_sgl *sgl)
{
	struct ibv_grh grh = { 0 };
	const struct vhca_ud_dest *d = pkt->grh_dest;
	struct vhca_payload p = { .inline_data = (const uint8_t *)&grh,
				  .len = GRH_SIZE };

	grh.version_tclass_flow = htobe32(6u << 28 |
					  (uint32_t)d->traffic_class << 20 |
					  (d->flow_label & 0xfffff));
	grh.paylen = htobe16((uint16_t)(pkt->payload.len + 8 + 4 + 4));
	grh.next_hdr = 0x1b;	/* IBA transport */
	grh.hop_limit = d->hop_limit;
	memcpy(&grh.sgid, pkt->sgid, 16);
	memcpy(&grh.dgid, d->dgid, 16);
	vhca_copy(&p, sgl, 0);
}

/* SEND, and the receive half of WRITE_WITH_IMM (data placed already). */
static enum vhca_ack_kind receive(struct vhca_qp *qp,
				  const struct vhca_pkt *pkt,
				  uint16_t pkey_index, bool write_imm)
{
	bool ud = qp->type == IBV_QPT_UD;
	uint32_t skip = ud ? GRH_SIZE : 0;
	enum vhca_copy_result res = VHCA_COPY_OK;
	struct recv_wqe w;

	switch (peek_recv(qp, &w, !write_imm)) {
	case RECV_NONE:
		return qp->type == IBV_QPT_RC ? VHCA_NAK_RNR : VHCA_DROPPED;
	case RECV_BAD_RING:
		/* No WQE to complete: the QP fails, the flush says the rest. */
		responder_error(qp);
		return VHCA_NAK_REM_OP;
	case RECV_BAD_WQE:
		/*
		 * Consumed, so it completes exactly once (not again as a
		 * flush): a local protection error here, IBTA's status for a
		 * receive buffer the responder may not write (rxe says
		 * LOC_QP_OP_ERR); the requester gets a remote operational
		 * error NAK.  Nothing was written.
		 */
		commit_recv(qp);
		complete_recv(qp, pkt, w.wr_id, IBV_WC_LOC_PROT_ERR,
			      write_imm ? IBV_WC_RECV_RDMA_WITH_IMM :
					  IBV_WC_RECV,
			      0, pkey_index);
		return VHCA_NAK_REM_OP;
	case RECV_OK:
		break;
	}
	if (!write_imm) {
		if (ud && w.sgl.total < GRH_SIZE)
			res = VHCA_COPY_DST_SHORT;
		else
			res = vhca_copy(&pkt->payload, &w.sgl, skip);
	}
	if (res == VHCA_COPY_SRC_FAULT) {
		vhca_sgl_release(&w.sgl);
		return VHCA_LOCAL_FAULT;	/* WQE stays for the retry */
	}
	commit_recv(qp);
	if (res == VHCA_COPY_OK && ud && pkt->has_grh)
		write_grh(pkt, &w.sgl);
	vhca_sgl_release(&w.sgl);
	if (res == VHCA_COPY_DST_SHORT) {
		complete_recv(qp, pkt, w.wr_id, IBV_WC_LOC_LEN_ERR,
			      IBV_WC_RECV, 0, pkey_index);
		return VHCA_NAK_INV_REQ;
	}
	if (res == VHCA_COPY_DST_FAULT) {
		complete_recv(qp, pkt, w.wr_id, IBV_WC_LOC_PROT_ERR,
			      IBV_WC_RECV, 0, pkey_index);
		return VHCA_NAK_REM_OP;
	}
	complete_recv(qp, pkt, w.wr_id, IBV_WC_SUCCESS,
		      write_imm ? IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV,
		      pkt->payload.len + skip, pkey_index);
	return VHCA_ACK;
}

static enum vhca_ack_kind rdma_write(struct vhca_qp *qp,
				     const struct vhca_pkt *pkt,
				     uint16_t pkey_index)
{
	bool imm = (pkt->opcode & 0x1f) == VHCA_OP_WRITE_ONLY_IMM;
	struct vhca_sgl sgl = { 0 };
	enum vhca_copy_result res;
	struct recv_wqe w;

	/* A receive WQE first: no data lands unless one is there and sane. */
	if (imm) {
		enum recv_result r = peek_recv(qp, &w, false);

		if (r == RECV_NONE)
			return qp->type == IBV_QPT_RC ? VHCA_NAK_RNR :
							VHCA_DROPPED;
		if (r != RECV_OK)
			return receive(qp, pkt, pkey_index, true);
		vhca_sgl_release(&w.sgl);
	}
	if (!(qp->attr.access_flags & IB_UVERBS_ACCESS_REMOTE_WRITE) ||
	    pkt->dma_len != pkt->payload.len ||
	    vhca_sgl_add(&sgl, qp->uctx->dev, qp->pd->pdn, pkt->rkey, pkt->va,
			 pkt->dma_len, IB_UVERBS_ACCESS_REMOTE_WRITE))
		return VHCA_NAK_REM_ACCESS;
	res = sgl.num ? vhca_copy(&pkt->payload, &sgl, 0) : VHCA_COPY_OK;
	vhca_sgl_release(&sgl);
	if (res == VHCA_COPY_SRC_FAULT)
		return VHCA_LOCAL_FAULT;
	if (res != VHCA_COPY_OK)
		return VHCA_NAK_REM_ACCESS;
	return imm ? receive(qp, pkt, pkey_index, true) : VHCA_ACK;
}

static enum vhca_ack_kind rdma_read(struct vhca_qp *qp,
				    const struct vhca_pkt *pkt)
{
	struct vhca_sgl sgl = { 0 };
	struct vhca_payload src = { .sgl = &sgl, .len = pkt->dma_len };
	enum vhca_copy_result res;

	if (!(qp->attr.access_flags & IB_UVERBS_ACCESS_REMOTE_READ) ||
	    vhca_sgl_add(&sgl, qp->uctx->dev, qp->pd->pdn, pkt->rkey, pkt->va,
			 pkt->dma_len, IB_UVERBS_ACCESS_REMOTE_READ))
		return VHCA_NAK_REM_ACCESS;
	res = pkt->dma_len ? vhca_copy(&src, pkt->read_dest, 0) :
			     VHCA_COPY_OK;
	vhca_sgl_release(&sgl);
	if (res == VHCA_COPY_SRC_FAULT)
		return VHCA_NAK_REM_ACCESS;
	return res == VHCA_COPY_OK ? VHCA_ACK : VHCA_LOCAL_FAULT;
}

/* Atomics are serialised by the engine lock: one engine, one at a time. */
static enum vhca_ack_kind atomic_op(struct vhca_qp *qp,
				    const struct vhca_pkt *pkt,
				    struct vhca_ack *ack)
{
	struct vhca_sgl sgl = { 0 };
	uint64_t orig, val;
	int ret;

	if (pkt->va & 7)
		return VHCA_NAK_INV_REQ;	/* rxe: misaligned atomic */
	if (!(qp->attr.access_flags & IB_UVERBS_ACCESS_REMOTE_ATOMIC) ||
	    vhca_sgl_add(&sgl, qp->uctx->dev, qp->pd->pdn, pkt->rkey, pkt->va,
			 8, IB_UVERBS_ACCESS_REMOTE_ATOMIC))
		return VHCA_NAK_REM_ACCESS;
	ret = vhca_sgl_read64(&sgl, &orig);
	if (!ret) {
		if ((pkt->opcode & 0x1f) == VHCA_OP_CMP_SWAP)
			val = orig == pkt->compare ? pkt->swap_add : orig;
		else
			val = orig + pkt->swap_add;
		ret = vhca_sgl_write64(&sgl, val);
	}
	vhca_sgl_release(&sgl);
	if (ret)
		return VHCA_NAK_REM_ACCESS;
	ack->atomic_orig = orig;
	return VHCA_ACK;
}

static bool accepts(const struct vhca_qp *qp, const struct vhca_pkt *pkt)
{
	uint8_t transport = pkt->opcode & 0xe0;

	if (qp->dead_peer || qp->state < IBV_QPS_RTR || qp->state > IBV_QPS_SQE)
		return false;
	switch (qp->type) {
	case IBV_QPT_RC:
		return transport == VHCA_TRANSPORT_RC &&
		       pkt->src_qpn == qp->attr.dest_qpn;
	case IBV_QPT_UC:
		return transport == VHCA_TRANSPORT_UC &&
		       pkt->src_qpn == qp->attr.dest_qpn;
	case IBV_QPT_UD:
		return transport == VHCA_TRANSPORT_UD;
	}
	return false;
}

/* Port counters as the PMA keeps them: data in 4-octet words. */
static void count_delivery(struct vhca_dev *src, struct vhca_dev *dst,
			   const struct vhca_pkt *pkt)
{
	uint64_t len = pkt->payload.len ? pkt->payload.len : pkt->dma_len;

	vhca_counter_add(src, VHCA_CNT_XMIT_PACKETS, 1);
	vhca_counter_add(src, VHCA_CNT_XMIT_DATA, len / 4);
	vhca_counter_add(dst, VHCA_CNT_RCV_PACKETS, 1);
	vhca_counter_add(dst, VHCA_CNT_RCV_DATA, len / 4);
}

void vhca_deliver(struct vhca_dev *src_dev, const struct vhca_pkt *pkt,
		  struct vhca_ack *ack)
{
	struct vhca_dev *dev = find_dev(src_dev, pkt->dlid);
	enum vhca_ack_kind kind;
	uint16_t pkey_index = 0;
	struct vhca_qp *qp;

	ack->kind = VHCA_DROPPED;
	qp = dev ? vhca_qp_find(dev, pkt->dest_qpn) : NULL;
	if (!qp || !accepts(qp, pkt))
		return;
	/* Partition enforcement, then Q_Key (o9-4.1): dropped and counted. */
	if (!pkey_accepts(qp, pkt->pkey, &pkey_index)) {
		vhca_counter_add(dev, VHCA_CNT_RCV_CONSTRAINT_ERRORS, 1);
		return;
	}
	if (qp->type == IBV_QPT_UD && pkt->qkey != qp->attr.qkey) {
		vhca_counter_add(dev, VHCA_CNT_QKEY_VIOLATIONS, 1);
		return;
	}

	switch (pkt->opcode & 0x1f) {
	case VHCA_OP_SEND_ONLY:
	case VHCA_OP_SEND_ONLY_IMM:
		kind = receive(qp, pkt, pkey_index, false);
		break;
	case VHCA_OP_WRITE_ONLY:
	case VHCA_OP_WRITE_ONLY_IMM:
		kind = rdma_write(qp, pkt, pkey_index);
		break;
	case VHCA_OP_READ_REQUEST:
		kind = rdma_read(qp, pkt);
		break;
	case VHCA_OP_CMP_SWAP:
	case VHCA_OP_FETCH_ADD:
		kind = atomic_op(qp, pkt, ack);
		break;
	default:
		kind = VHCA_NAK_INV_REQ;
		break;
	}
	/*
	 * A responder whose process is dying cannot answer: like a node
	 * that lost power it goes silent, so its peers see a retry timeout
	 * rather than an error it never sent.
	 */
	if (kind != VHCA_ACK && vhca_dma_peer_gone(qp->uctx->peer)) {
		qp->dead_peer = true;
		return;		/* ack->kind is VHCA_DROPPED */
	}
	if (kind == VHCA_ACK)
		count_delivery(src_dev, dev, pkt);
	if (qp->type != IBV_QPT_RC && kind != VHCA_LOCAL_FAULT) {
		ack->kind = VHCA_DROPPED;	/* UC/UD: no ACK, no NAK */
		if (kind == VHCA_ACK)
			ack->kind = VHCA_ACK;
		return;
	}
	/*
	 * Class C errors take the RC responder to the error state (rxe),
	 * with the affiliated asynchronous error IBTA names for each (11.6.3:
	 * local access violation / invalid request work queue error).
	 */
	if (kind == VHCA_NAK_REM_ACCESS || kind == VHCA_NAK_INV_REQ) {
		responder_error(qp);
		vhca_qp_post_async(qp, kind == VHCA_NAK_REM_ACCESS ?
					       IBV_EVENT_QP_ACCESS_ERR :
					       IBV_EVENT_QP_REQ_ERR);
	}
	ack->kind = kind;
	ack->rnr_timer = qp->attr.min_rnr_timer;
}
