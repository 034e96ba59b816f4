// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The responder: what the destination HCA does with a request packet
 * (transport.h), in the order of the kernel's rxe resp.c.
 *
 *  1. Who may send here: the QP's state admits requests (RTR and on), the
 *     packet's transport is the QP's, and for RC/UC it comes from the
 *     QP's path - the port that stamped its SLID and the QP number the
 *     port recorded must be the destination the QP was connected to
 *     (security finding 2: a stranger reusing a QP number of another
 *     port is dropped and counted).  Then the P_Key (o10-9.2.1), and for
 *     UD the Q_Key (o9-4.1).
 *  2. RC PSNs (9.7.5.1): the expected PSN executes; a later one is a gap
 *     (one sequence NAK until it is filled); an earlier one a duplicate
 *     (re-acknowledged, READs answered again, atomics replayed, nothing
 *     executed twice).  UC drops out of sequence and resynchronises on
 *     the next first or only packet.
 *  3. Opcode sequence, then execution: a SEND takes a receive WQE at its
 *     first packet (none: RNR NAK on RC, dropped on UC/UD), a WRITE
 *     checks its rkey at its first packet, a READ or an atomic at once.
 *  4. Errors: a bad rkey, access or length is a class C error (NAK, the
 *     responder QP goes to ERR with the affiliated async event, 11.6.3);
 *     a receive buffer we cannot write completes in error and NAKs
 *     remote operational error.  UC and UD never NAK.
 *
 * A responder whose owner has gone (its memory is gone) answers nothing:
 * its peers see a retry timeout, as from a node that lost power.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "cq.h"
#include "engine.h"
#include "packet.h"
#include "qp.h"
#include "sgl.h"
#include "srq.h"
#include "switch.h"
#include "transport.h"

#define GRH_SIZE 40
#define NO_MSG 0xff

void vhca_responder_reset(struct vhca_qp *qp)
{
	struct vhca_pkt *pkt = qp->resp.backlog_head;

	while (pkt) {
		struct vhca_pkt *next = pkt->next;

		vhca_pkt_free(pkt);
		pkt = next;
	}
	memset(&qp->resp, 0, sizeof(qp->resp));
	qp->resp.epsn = qp->attr.rq_psn & VHCA_PSN_MASK;
	qp->resp.msg_op = NO_MSG;
	qp->resp_pending = false;
}

/* ---- answers ---------------------------------------------------------- */

/* A response packet of @qp to its peer, payload @len bytes. */
static struct vhca_pkt *answer(struct vhca_qp *qp, uint8_t op, uint32_t psn,
			       uint32_t len)
{
	struct vhca_pkt *pkt = vhca_pkt_alloc(len);

	if (!pkt)
		return NULL;
	pkt->opcode = VHCA_TR_RC | op;
	pkt->dlid = qp->attr.av.dlid;
	pkt->sl = qp->attr.av.sl;
	pkt->dest_qpn = qp->attr.dest_qpn;
	pkt->psn = psn & VHCA_PSN_MASK;
	pkt->msn = qp->resp.msn & VHCA_PSN_MASK;
	pkt->syndrome = VHCA_AETH_ACK | 0x1f;	/* credits: unlimited */
	pkt->len = len;
	return pkt;
}

static void send_ack(struct vhca_qp *qp, uint8_t syndrome, uint32_t psn)
{
	struct vhca_pkt *pkt = answer(qp, VHCA_OP_ACK, psn, 0);

	if (!pkt)
		return;	/* no memory: as if lost, the requester retries */
	pkt->syndrome = syndrome;
	vhca_switch_send(qp, pkt);
}

/*
 * A class C error (IBTA 9.9.3.1.3): NAK, then the responder QP goes to
 * ERR with the affiliated asynchronous error IBTA names for it.
 */
static void class_c(struct vhca_qp *qp, uint8_t syndrome, uint32_t psn)
{
	send_ack(qp, syndrome, psn);
	vhca_qp_set_error(qp);
	vhca_qp_post_async(qp, syndrome == VHCA_AETH_NAK_REM_ACCESS ?
				       IBV_EVENT_QP_ACCESS_ERR :
				       IBV_EVENT_QP_REQ_ERR);
}

/* The owner's memory is gone: the context falls silent. */
static bool owner_gone(struct vhca_qp *qp, int err)
{
	if (err != -ESRCH)
		return false;
	vhca_dctx_owner_gone(qp->dctx);
	return true;
}

/* ---- receive WQEs ------------------------------------------------------ */

enum recv_result {
	RECV_OK,
	RECV_NONE,		/* nothing posted */
	RECV_BAD_RING,		/* a scribbled head: there is no WQE */
	RECV_BAD_WQE,		/* a WQE we consume and fail (too many SGEs) */
};

/* The receive ring a QP consumes from: its own RQ or its SRQ's. */
struct recv_ring {
	const uint8_t *ring;
	uint32_t count, stride, max_sge, tail;
	_Atomic uint32_t *head;
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
	};
	return true;
}

/* Copies the head receive WQE (wr_id, SGEs) into the responder state. */
static enum recv_result take_recv(struct vhca_qp *qp)
{
	uint8_t copy[sizeof(struct vhca_recv_wqe) +
		     16 * sizeof(struct vhca_sge)];
	struct vhca_recv_wqe hdr;
	struct recv_ring r;
	uint32_t head;

	if (!recv_ring_of(qp, &r))
		return RECV_NONE;
	head = atomic_load_explicit(r.head, memory_order_acquire);
	if (head == r.tail)
		return RECV_NONE;
	if (head - r.tail > r.count)
		return RECV_BAD_RING;	/* a head the guest scribbled */
	/* Copy first: the guest may rewrite the slot at any time. */
	memcpy(copy, r.ring + (size_t)(r.tail & (r.count - 1)) * r.stride,
	       sizeof(hdr) + r.max_sge * sizeof(struct vhca_sge));
	memcpy(&hdr, copy, sizeof(hdr));
	qp->resp.recv_wr_id = hdr.wr_id;
	qp->resp.recv_off = 0;
	/* Consumed whatever comes next: it completes exactly once. */
	if (qp->srq) {
		vhca_srq_consumed(qp->srq);
	} else {
		qp->rq_tail++;
		atomic_store_explicit((_Atomic uint32_t *)&qp->db->rq_tail,
				      qp->rq_tail, memory_order_release);
	}
	if (hdr.num_sge > r.max_sge)
		return RECV_BAD_WQE;
	qp->resp.recv_num_sge = (uint8_t)hdr.num_sge;
	memcpy(qp->resp.recv_sge, copy + sizeof(hdr),
	       hdr.num_sge * sizeof(struct vhca_sge));
	return RECV_OK;
}

/* The receive WQE's memory, for this turn; -EPERM for a bad lkey. */
static int recv_sgl(struct vhca_qp *qp, struct vhca_sgl *sgl)
{
	const struct vhca_pd *pd = qp->srq ? qp->srq->pd : qp->pd;

	return vhca_sgl_from_sges(sgl, qp->dctx, pd->pdn, qp->resp.recv_sge,
				  qp->resp.recv_num_sge,
				  IB_UVERBS_ACCESS_LOCAL_WRITE);
}

static void complete_recv(struct vhca_qp *qp, const struct vhca_pkt *pkt,
			  enum ibv_wc_status status, uint8_t opcode,
			  uint32_t byte_len, uint16_t pkey_index)
{
	struct vhca_cqe cqe = {
		.wr_id = qp->resp.recv_wr_id,
		.status = status,
		.opcode = opcode,
		.byte_len = status == IBV_WC_SUCCESS ? byte_len : 0,
		.qp_num = qp->qpn,
		.src_qp = pkt->src_qpn,
		.pkey_index = pkey_index,
		.slid = pkt->slid,
		.sl = pkt->sl,
	};
	const struct vhca_pkt_info *info = vhca_pkt_info(pkt->opcode);

	if (status == IBV_WC_SUCCESS && info && (info->flags & VHCA_PKT_IMM)) {
		cqe.imm_data = pkt->imm;
		cqe.wc_flags |= IBV_WC_WITH_IMM;
	}
	if (status == IBV_WC_SUCCESS && pkt->has_grh)
		cqe.wc_flags |= IBV_WC_GRH;
	qp->resp.msg_op = NO_MSG;
	vhca_cq_push(qp->recv_cq, &cqe, pkt->se);
	if (status != IBV_WC_SUCCESS)
		vhca_qp_set_error(qp);
}

/* ---- UD ------------------------------------------------------------------ */

static void write_grh(struct vhca_sgl *sgl, const struct vhca_pkt *pkt)
{
	struct ibv_grh grh = { 0 };
	const struct vhca_grh_fields *g = &pkt->grh;

	grh.version_tclass_flow = htobe32(6u << 28 |
					  (uint32_t)g->traffic_class << 20 |
					  (g->flow_label & 0xfffff));
	grh.paylen = htobe16((uint16_t)(pkt->len + 8 + 4 + 4));
	grh.next_hdr = 0x1b;	/* IBA transport */
	grh.hop_limit = g->hop_limit;
	memcpy(&grh.sgid, g->sgid, 16);
	memcpy(&grh.dgid, g->dgid, 16);
	vhca_sgl_write(sgl, 0, &grh, GRH_SIZE);
}

/* UD: the first GRH_SIZE bytes of every receive buffer hold the GRH. */
static void ud_receive(struct vhca_qp *qp, const struct vhca_pkt *pkt,
		       uint16_t pkey_index)
{
	struct vhca_sgl sgl;
	int ret;

	switch (take_recv(qp)) {
	case RECV_NONE:
		return;		/* unreliable: lost */
	case RECV_BAD_RING:
		vhca_qp_set_error(qp);
		return;
	case RECV_BAD_WQE:
		complete_recv(qp, pkt, IBV_WC_LOC_LEN_ERR, IBV_WC_RECV, 0,
			      pkey_index);
		return;
	case RECV_OK:
		break;
	}
	if (recv_sgl(qp, &sgl)) {
		complete_recv(qp, pkt, IBV_WC_LOC_PROT_ERR, IBV_WC_RECV, 0,
			      pkey_index);
		return;
	}
	if (sgl.total < GRH_SIZE || pkt->len > sgl.total - GRH_SIZE) {
		complete_recv(qp, pkt, IBV_WC_LOC_LEN_ERR, IBV_WC_RECV, 0,
			      pkey_index);
		return;
	}
	ret = vhca_sgl_write_pkt(&sgl, GRH_SIZE, pkt);
	if (owner_gone(qp, ret))
		return;
	if (ret) {
		complete_recv(qp, pkt, IBV_WC_LOC_PROT_ERR, IBV_WC_RECV, 0,
			      pkey_index);
		return;
	}
	if (pkt->has_grh)
		write_grh(&sgl, pkt);
	vhca_counter_add(qp->dctx->dev, VHCA_CNT_RCV_PACKETS, 1);
	vhca_counter_add(qp->dctx->dev, VHCA_CNT_RCV_DATA, pkt->len / 4);
	complete_recv(qp, pkt, IBV_WC_SUCCESS, IBV_WC_RECV,
		      pkt->len + GRH_SIZE, pkey_index);
}

/* ---- SEND and WRITE ------------------------------------------------------ */

/*
 * The payload of a SEND packet into the current receive WQE.  Returns the
 * AETH syndrome to answer with for RC (ACK, RNR or a NAK), or -1 if
 * nothing may be answered (dropped, or the owner is gone).
 */
static int send_payload(struct vhca_qp *qp, const struct vhca_pkt *pkt,
			const struct vhca_pkt_info *info, uint16_t pkey_index)
{
	bool rc = qp->type == IBV_QPT_RC;
	struct vhca_sgl sgl;
	int ret;

	if (info->flags & VHCA_PKT_START) {
		enum recv_result r = take_recv(qp);

		if (r == RECV_NONE)
			return rc ? VHCA_AETH_RNR_NAK |
					    (qp->attr.min_rnr_timer & 0x1f) :
				    -1;
		if (r == RECV_BAD_RING) {
			/* No WQE to complete: the QP fails, the flush says the rest. */
			vhca_qp_set_error(qp);
			return rc ? VHCA_AETH_NAK_REM_OP : -1;
		}
		qp->resp.msg_op = VHCA_OP_SEND_FIRST;
		qp->resp.recv_pkey_index = pkey_index;
		if (r == RECV_BAD_WQE) {
			/* Consumed, so it completes once (not as a flush). */
			complete_recv(qp, pkt, IBV_WC_LOC_PROT_ERR, IBV_WC_RECV,
				      0, pkey_index);
			return rc ? VHCA_AETH_NAK_REM_OP : -1;
		}
	}
	if (recv_sgl(qp, &sgl)) {
		/*
		 * A receive buffer the responder may not write: a local
		 * protection error (rxe says LOC_QP_OP_ERR), and the
		 * requester gets a remote operational error.
		 */
		complete_recv(qp, pkt, IBV_WC_LOC_PROT_ERR, info->wc_opcode, 0,
			      pkey_index);
		return rc ? VHCA_AETH_NAK_REM_OP : -1;
	}
	if (pkt->len > sgl.total - qp->resp.recv_off) {
		complete_recv(qp, pkt, IBV_WC_LOC_LEN_ERR, info->wc_opcode, 0,
			      pkey_index);
		return rc ? VHCA_AETH_NAK_INV_REQ : -1;
	}
	ret = vhca_sgl_write_pkt(&sgl, qp->resp.recv_off, pkt);
	if (owner_gone(qp, ret))
		return -1;
	if (ret) {
		complete_recv(qp, pkt, IBV_WC_LOC_PROT_ERR, info->wc_opcode, 0,
			      pkey_index);
		return rc ? VHCA_AETH_NAK_REM_OP : -1;
	}
	qp->resp.recv_off += pkt->len;
	if (info->flags & VHCA_PKT_END)
		complete_recv(qp, pkt, IBV_WC_SUCCESS, info->wc_opcode,
			      qp->resp.recv_off, pkey_index);
	return VHCA_AETH_ACK | 0x1f;
}

/* The target of a WRITE or READ, for this turn; -EPERM if refused. */
static int remote_target(struct vhca_qp *qp, struct vhca_sgl *sgl,
			 uint32_t rkey, uint64_t va, uint32_t len,
			 uint32_t access)
{
	memset(sgl, 0, sizeof(*sgl));
	if (!(qp->attr.access_flags & access))
		return -EPERM;
	return vhca_sgl_add(sgl, qp->dctx, qp->pd->pdn, rkey, va, len,
			    access);
}

static int write_payload(struct vhca_qp *qp, const struct vhca_pkt *pkt,
			 const struct vhca_pkt_info *info, uint16_t pkey_index)
{
	bool rc = qp->type == IBV_QPT_RC;
	struct vhca_sgl sgl;
	int ret;

	if (info->flags & VHCA_PKT_START) {
		/*
		 * A single-packet WRITE with immediate needs its receive WQE
		 * before any data lands: no WQE, no data (an RNR NAK).
		 */
		if ((info->flags & (VHCA_PKT_RWR | VHCA_PKT_END)) ==
		    (VHCA_PKT_RWR | VHCA_PKT_END)) {
			struct recv_ring r;

			if (!recv_ring_of(qp, &r) ||
			    atomic_load(r.head) == r.tail)
				return rc ? VHCA_AETH_RNR_NAK |
						    (qp->attr.min_rnr_timer &
						     0x1f) :
					    -1;
		}
		/* A19: exactly 8 bytes to an 8-byte aligned address. */
		if ((info->flags & VHCA_PKT_ATOMIC_WRITE) &&
		    (pkt->dma_len != 8 || pkt->len != 8 || (pkt->va & 7)))
			return VHCA_AETH_NAK_INV_REQ;
		qp->resp.write_rkey = pkt->rkey;
		qp->resp.write_va = pkt->va;
		qp->resp.write_left = pkt->dma_len;
		qp->resp.write_len = pkt->dma_len;
		qp->resp.msg_op = VHCA_OP_WRITE_FIRST;
	}
	if (pkt->len > qp->resp.write_left ||
	    ((info->flags & VHCA_PKT_END) && pkt->len != qp->resp.write_left))
		return rc ? VHCA_AETH_NAK_INV_REQ : -1;
	if (pkt->len) {
		if (remote_target(qp, &sgl, qp->resp.write_rkey,
				  qp->resp.write_va, pkt->len,
				  IB_UVERBS_ACCESS_REMOTE_WRITE))
			return rc ? VHCA_AETH_NAK_REM_ACCESS : -1;
		ret = vhca_sgl_write_pkt(&sgl, 0, pkt);
		if (owner_gone(qp, ret))
			return -1;
		if (ret)
			return rc ? VHCA_AETH_NAK_REM_ACCESS : -1;
	} else if ((info->flags & VHCA_PKT_START) &&
		   !(qp->attr.access_flags & IB_UVERBS_ACCESS_REMOTE_WRITE)) {
		return rc ? VHCA_AETH_NAK_REM_ACCESS : -1;
	}
	qp->resp.write_va += pkt->len;
	qp->resp.write_left -= pkt->len;
	if (!(info->flags & VHCA_PKT_END))
		return VHCA_AETH_ACK | 0x1f;
	qp->resp.msg_op = NO_MSG;
	if (!(info->flags & VHCA_PKT_RWR))
		return VHCA_AETH_ACK | 0x1f;
	/* WRITE with immediate: its receive WQE completes, placing nothing. */
	switch (take_recv(qp)) {
	case RECV_NONE:
		return rc ? VHCA_AETH_RNR_NAK |
				    (qp->attr.min_rnr_timer & 0x1f) :
			    -1;
	case RECV_BAD_RING:
		vhca_qp_set_error(qp);
		return rc ? VHCA_AETH_NAK_REM_OP : -1;
	case RECV_BAD_WQE:
		complete_recv(qp, pkt, IBV_WC_LOC_LEN_ERR,
			      IBV_WC_RECV_RDMA_WITH_IMM, 0, pkey_index);
		return rc ? VHCA_AETH_NAK_REM_OP : -1;
	case RECV_OK:
		break;
	}
	complete_recv(qp, pkt, IBV_WC_SUCCESS, IBV_WC_RECV_RDMA_WITH_IMM,
		      qp->resp.write_len, pkey_index);
	return VHCA_AETH_ACK | 0x1f;
}

/* ---- READ ---------------------------------------------------------------- */

/*
 * Starts answering a READ request (or a duplicate of one, which is
 * answered again in full).  0, or the NAK syndrome.
 */
static int read_start(struct vhca_qp *qp, const struct vhca_pkt *pkt)
{
	struct vhca_sgl sgl;

	if (pkt->dma_len &&
	    remote_target(qp, &sgl, pkt->rkey, pkt->va, pkt->dma_len,
			  IB_UVERBS_ACCESS_REMOTE_READ))
		return VHCA_AETH_NAK_REM_ACCESS;
	if (!pkt->dma_len &&
	    !(qp->attr.access_flags & IB_UVERBS_ACCESS_REMOTE_READ))
		return VHCA_AETH_NAK_REM_ACCESS;
	qp->resp.read_active = true;
	qp->resp.read_rkey = pkt->rkey;
	qp->resp.read_va = pkt->va;
	qp->resp.read_left = pkt->dma_len;
	qp->resp.read_psn = pkt->psn;
	qp->resp.read_first = true;
	qp->resp_pending = true;
	vhca_qp_schedule(qp);
	return 0;
}

/* One response segment of the READ in progress; false when done. */
static bool read_step(struct vhca_qp *qp, struct vhca_turn_budget *budget)
{
	uint32_t mtu = vhca_mtu_bytes(qp->attr.path_mtu);
	uint32_t seg = qp->resp.read_left;
	bool first = qp->resp.read_first, last;
	struct vhca_sgl sgl;
	struct vhca_pkt *pkt;
	uint8_t op;
	int ret;

	if (seg > VHCA_SEG_MAX)
		seg = VHCA_SEG_MAX / mtu * mtu;
	last = seg == qp->resp.read_left;
	op = first && last ? VHCA_OP_READ_RESP_ONLY :
	     first	   ? VHCA_OP_READ_RESP_FIRST :
	     last	   ? VHCA_OP_READ_RESP_LAST :
			     VHCA_OP_READ_RESP_MIDDLE;
	pkt = answer(qp, op, qp->resp.read_psn, seg);
	if (!pkt) {
		budget->pkts = 0;	/* no memory now: next turn */
		return true;
	}
	if (seg) {
		ret = remote_target(qp, &sgl, qp->resp.read_rkey,
				    qp->resp.read_va, seg,
				    IB_UVERBS_ACCESS_REMOTE_READ);
		if (!ret && vhca_sgl_map(&sgl, 0, seg, pkt))
			ret = vhca_sgl_read(&sgl, 0, pkt->data, seg);
		if (ret) {
			vhca_pkt_free(pkt);
			qp->resp.read_active = false;
			if (!owner_gone(qp, ret))
				class_c(qp, VHCA_AETH_NAK_REM_ACCESS,
					qp->resp.read_psn);
			return false;
		}
	}
	pkt->npsn = vhca_npsn(seg, mtu);
	vhca_budget_spend(budget, seg);
	vhca_switch_send(qp, pkt);
	qp->resp.read_va += seg;
	qp->resp.read_left -= seg;
	qp->resp.read_psn = vhca_psn_add(qp->resp.read_psn,
					 vhca_npsn(seg, mtu));
	qp->resp.read_first = false;
	if (!last)
		return true;
	qp->resp.read_active = false;
	return false;
}

/* ---- atomics ---------------------------------------------------------- */

static int atomic_execute(struct vhca_qp *qp, const struct vhca_pkt *pkt)
{
	struct vhca_pkt *ack;
	struct vhca_sgl sgl;
	uint64_t orig, val;
	int ret;

	if (pkt->va & 7)
		return VHCA_AETH_NAK_INV_REQ;	/* rxe: misaligned atomic */
	if (remote_target(qp, &sgl, pkt->rkey, pkt->va, 8,
			  IB_UVERBS_ACCESS_REMOTE_ATOMIC))
		return VHCA_AETH_NAK_REM_ACCESS;
	/*
	 * Atomic with respect to every other atomic of this device on this
	 * memory (IBV_ATOMIC_HCA): they all run in turns of this context.
	 */
	ret = vhca_sgl_read(&sgl, 0, &orig, 8);
	if (!ret) {
		if (VHCA_BTH_OP(pkt->opcode) == VHCA_OP_CMP_SWAP)
			val = orig == pkt->compare ? pkt->swap_add : orig;
		else
			val = orig + pkt->swap_add;
		ret = vhca_sgl_write(&sgl, 0, &val, 8);
	}
	if (ret)
		return owner_gone(qp, ret) ? -1 : VHCA_AETH_NAK_REM_ACCESS;
	qp->resp.atomics[qp->resp.atomic_next % VHCA_RESP_ATOMICS] =
		(typeof(qp->resp.atomics[0])){ .psn = pkt->psn,
						 .orig = orig,
						 .valid = true };
	qp->resp.atomic_next++;
	ack = answer(qp, VHCA_OP_ATOMIC_ACK, pkt->psn, 0);
	if (ack) {
		ack->atomic_orig = orig;
		vhca_switch_send(qp, ack);
	}
	return 0;
}

/* ---- duplicates ---------------------------------------------------------- */

/* An RC request with a PSN before the expected one (9.7.5.1.2). */
static void duplicate(struct vhca_qp *qp, const struct vhca_pkt *pkt,
		      const struct vhca_pkt_info *info)
{
	if (info->flags & VHCA_PKT_READ) {
		/* The requester lost responses: answer it again in full. */
		int nak = read_start(qp, pkt);

		if (nak)
			send_ack(qp, (uint8_t)nak, pkt->psn);
		return;
	}
	if (info->flags & VHCA_PKT_ATOMIC) {
		for (unsigned int i = 0; i < VHCA_RESP_ATOMICS; i++) {
			struct vhca_pkt *ack;

			if (!qp->resp.atomics[i].valid ||
			    qp->resp.atomics[i].psn != pkt->psn)
				continue;
			/* Replayed, never executed twice. */
			ack = answer(qp, VHCA_OP_ATOMIC_ACK, pkt->psn, 0);
			if (ack) {
				ack->atomic_orig = qp->resp.atomics[i].orig;
				vhca_switch_send(qp, ack);
			}
			return;
		}
		return;	/* too old to replay: dropped */
	}
	/* Already done: say how far we are. */
	send_ack(qp, VHCA_AETH_ACK | 0x1f,
		 vhca_psn_add(qp->resp.epsn, VHCA_PSN_MASK));
}

/* ---- the packet --------------------------------------------------------- */

/* May @qp take this packet at all?  Counts what it drops. */
static bool admit(struct vhca_qp *qp, const struct vhca_pkt *pkt,
		  const struct vhca_pkt_info *info, uint16_t *pkey_index)
{
	struct vhca_dev *dev = qp->dctx->dev;

	if (qp->state < IBV_QPS_RTR || qp->state > IBV_QPS_SQE)
		return false;
	if (qp->type >= 8 || !(info->qp_types & VHCA_QPT_BIT(qp->type)))
		return false;
	if (qp->type != IBV_QPT_UD &&
	    (pkt->slid != qp->attr.av.dlid ||
	     pkt->src_qpn != qp->attr.dest_qpn)) {
		vhca_counter_add(dev, VHCA_CNT_RCV_SOURCE_ERRORS, 1);
		return false;
	}
	/* Partition enforcement, then Q_Key (o9-4.1): dropped and counted. */
	if (!vhca_port_accepts_pkey(dev, qp->attr.pkey_index, pkt->pkey,
				    pkey_index)) {
		vhca_counter_add(dev, VHCA_CNT_RCV_CONSTRAINT_ERRORS, 1);
		return false;
	}
	if (qp->type == IBV_QPT_UD && pkt->qkey != qp->attr.qkey) {
		vhca_counter_add(dev, VHCA_CNT_QKEY_VIOLATIONS, 1);
		return false;
	}
	return true;
}

/*
 * PSN and opcode sequence for RC and UC; true to execute the packet.
 * RC answers gaps and duplicates here.
 */
static bool in_sequence(struct vhca_qp *qp, const struct vhca_pkt *pkt,
			const struct vhca_pkt_info *info)
{
	int32_t d = vhca_psn_diff(pkt->psn, qp->resp.epsn);
	bool start = info->flags & VHCA_PKT_START;
	uint8_t first = info->flags & VHCA_PKT_SEND ? VHCA_OP_SEND_FIRST :
						      VHCA_OP_WRITE_FIRST;

	if (qp->type == IBV_QPT_UC) {
		/* A lost packet loses its message; the next one resyncs. */
		if (d != 0 || qp->resp.uc_drop) {
			if (!start) {
				qp->resp.uc_drop = true;
				return false;
			}
			qp->resp.epsn = pkt->psn;
			qp->resp.uc_drop = false;
		}
		if (start && qp->resp.msg_op != NO_MSG) {
			/* Reuse the WQE of the message that was lost. */
			if (qp->resp.msg_op == VHCA_OP_SEND_FIRST &&
			    (info->flags & VHCA_PKT_SEND)) {
				qp->resp.recv_off = 0;
				return true;
			}
			qp->resp.msg_op = NO_MSG;
		}
		if (!start && qp->resp.msg_op != first) {
			qp->resp.uc_drop = true;
			return false;
		}
		return true;
	}
	if (d > 0) {
		/* A gap: one NAK, and nothing until the gap is filled. */
		if (!qp->resp.nak_seq_sent) {
			qp->resp.nak_seq_sent = true;
			send_ack(qp, VHCA_AETH_NAK_PSN_SEQ, qp->resp.epsn);
		}
		return false;
	}
	if (d < 0) {
		duplicate(qp, pkt, info);
		return false;
	}
	qp->resp.nak_seq_sent = false;
	/* A message must finish before the next starts (9.8.3.2). */
	if ((start && qp->resp.msg_op != NO_MSG) ||
	    (!start && (info->flags & (VHCA_PKT_SEND | VHCA_PKT_WRITE)) &&
	     qp->resp.msg_op != first)) {
		class_c(qp, VHCA_AETH_NAK_INV_REQ, pkt->psn);
		return false;
	}
	return true;
}

/* Executes an admitted, in-sequence request. */
static void execute(struct vhca_qp *qp, const struct vhca_pkt *pkt,
		    const struct vhca_pkt_info *info, uint16_t pkey_index)
{
	bool rc = qp->type == IBV_QPT_RC;
	int syndrome;

	if (info->flags & VHCA_PKT_SEND)
		syndrome = send_payload(qp, pkt, info, pkey_index);
	else if (info->flags & VHCA_PKT_WRITE)
		syndrome = write_payload(qp, pkt, info, pkey_index);
	else if (info->flags & VHCA_PKT_READ)
		syndrome = read_start(qp, pkt);
	else
		syndrome = atomic_execute(qp, pkt);
	if (syndrome < 0 || qp->dctx->dead)
		return;		/* dropped, or silent */
	if (VHCA_AETH_TYPE(syndrome) == VHCA_AETH_RNR_NAK) {
		/* Not executed: the requester sends it again. */
		send_ack(qp, (uint8_t)syndrome, pkt->psn);
		return;
	}
	if (rc && (syndrome == VHCA_AETH_NAK_INV_REQ ||
		   syndrome == VHCA_AETH_NAK_REM_ACCESS)) {
		class_c(qp, (uint8_t)syndrome, pkt->psn);
		return;
	}
	if (rc && syndrome == VHCA_AETH_NAK_REM_OP) {
		send_ack(qp, VHCA_AETH_NAK_REM_OP, pkt->psn);
		return;
	}
	vhca_counter_add(qp->dctx->dev, VHCA_CNT_RCV_PACKETS, pkt->npsn);
	vhca_counter_add(qp->dctx->dev, VHCA_CNT_RCV_DATA, pkt->len / 4);
	qp->resp.epsn = vhca_psn_add(pkt->psn, pkt->npsn);
	if (info->flags & VHCA_PKT_END)
		qp->resp.msn++;
	/* READs and atomics are answered by their responses. */
	if (rc && (info->flags & (VHCA_PKT_SEND | VHCA_PKT_WRITE)) &&
	    (pkt->ackreq || (info->flags & VHCA_PKT_END)))
		send_ack(qp, VHCA_AETH_ACK | 0x1f,
			 vhca_psn_add(qp->resp.epsn, VHCA_PSN_MASK));
}

/* One request, in order; READs in progress hold the rest back. */
static void handle(struct vhca_qp *qp, struct vhca_pkt *pkt)
{
	const struct vhca_pkt_info *info = vhca_pkt_info(pkt->opcode);
	uint16_t pkey_index = 0;

	if (!info || !admit(qp, pkt, info, &pkey_index)) {
		VHCA_TRACE("resp: refused", qp->qpn, pkt);
		return;
	}
	VHCA_TRACE("resp: recv", qp->qpn, pkt);
	if (qp->type == IBV_QPT_UD) {
		ud_receive(qp, pkt, pkey_index);
		return;
	}
	if (in_sequence(qp, pkt, info))
		execute(qp, pkt, info, pkey_index);
}

void vhca_responder_recv(struct vhca_qp *qp, struct vhca_pkt *pkt)
{
	if (qp->dctx->dead) {
		vhca_pkt_free(pkt);
		return;
	}
	if (qp->resp.read_active) {
		/* Answers go out in PSN order: this one waits its turn. */
		if (qp->resp.backlog_len >= VHCA_RESP_BACKLOG_MAX) {
			vhca_pkt_free(pkt);	/* as if lost: RC retries */
			return;
		}
		pkt->next = NULL;
		if (qp->resp.backlog_tail)
			qp->resp.backlog_tail->next = pkt;
		else
			qp->resp.backlog_head = pkt;
		qp->resp.backlog_tail = pkt;
		qp->resp.backlog_len++;
		return;
	}
	handle(qp, pkt);
	vhca_pkt_free(pkt);
}

bool vhca_responder_run(struct vhca_qp *qp, struct vhca_turn_budget *budget)
{
	while (vhca_budget_left(budget) && !qp->dctx->dead) {
		struct vhca_pkt *pkt;

		if (qp->resp.read_active) {
			if (qp->state == IBV_QPS_ERR || qp->state < IBV_QPS_RTR) {
				qp->resp.read_active = false;
				continue;
			}
			read_step(qp, budget);
			continue;
		}
		pkt = qp->resp.backlog_head;
		if (!pkt)
			break;
		qp->resp.backlog_head = pkt->next;
		if (!qp->resp.backlog_head)
			qp->resp.backlog_tail = NULL;
		qp->resp.backlog_len--;
		vhca_budget_spend(budget, pkt->len);
		handle(qp, pkt);
		vhca_pkt_free(pkt);
	}
	qp->resp_pending = qp->resp.read_active || qp->resp.backlog_head;
	return qp->resp_pending;
}
