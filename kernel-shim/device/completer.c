// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The completer: what the requester's HCA does with the answers to its
 * RC requests (transport.h), as rxe's comp.c does.
 *
 * Answers are accepted only from the QP's path (the port and QP it is
 * connected to) and its partition.  An ACK completes, in order, every
 * sent SEND and WRITE whose last PSN it covers; a READ completes with
 * its last response, placed into the local SGL packet by packet, and an
 * atomic with its ACK, whose original value lands in the local buffer.
 * Either answer also acknowledges everything sent before its request.
 * A NAK completes the earlier WQEs, then: a sequence NAK goes back to its
 * PSN; an RNR NAK waits the responder's timer (IBTA table 45) and goes
 * back, up to rnr_retry times (7: forever); the other NAKs fail the WQE
 * (remote invalid request, access or operational error) and the QP.
 * Silence waits 4.096 us << timeout, then goes back, up to retry_cnt
 * times, then fails with IBV_WC_RETRY_EXC_ERR.
 */
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "engine.h"
#include "packet.h"
#include "qp.h"
#include "sgl.h"
#include "switch.h"
#include "transport.h"

/*
 * IBTA table 45: RNR NAK timer field -> the requester's minimum wait, in
 * units of 10 us (0.01 ms).  0 is the longest, 655.36 ms, not zero.
 */
static const uint32_t rnr_timer_10us[32] = {
	65536,    1,    2,    3,    4,    6,    8,    12,   16,   24,   32,
	48,	  64,   96,   128,  192,  256,  384,  512,  768,  1024, 1536,
	2048,	  3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768, 49152,
};

static uint64_t ack_timeout_ns(const struct vhca_qp *qp)
{
	return 4096ULL << (qp->attr.timeout ? qp->attr.timeout : 10);
}

/* The last PSN of a WQE's message. */
static uint32_t last_psn(const struct vhca_swqe *w)
{
	return vhca_psn_add(w->first_psn, w->npsn - 1);
}

/* Something was answered: the retry budgets start over. */
static void progress(struct vhca_qp *qp)
{
	qp->req.retry_left = qp->attr.retry_cnt;
	qp->req.rnr_left = qp->attr.rnr_retry;
	/* An RNR wait keeps its timer; otherwise the ACK timer restarts. */
	if (!qp->req.rnr_wait) {
		vhca_qp_timer_cancel(qp);
		if (qp->sq_tail != qp->req.cur)
			vhca_qp_timer_set(qp, VHCA_TIMER_ACK,
					  vhca_now_ns() + ack_timeout_ns(qp));
	}
	vhca_qp_schedule(qp);	/* the window has room again */
}

/*
 * Completes, in order, the sent WQEs an answer covers: SENDs, WRITEs and
 * ATOMIC WRITEs up to @psn (inclusive), stopping at a READ or atomic,
 * which only its own response completes.  A WQE that failed locally completes in error
 * when it comes up.  Returns true if any completed.
 */
static bool complete_up_to(struct vhca_qp *qp, uint32_t psn)
{
	bool any = false;

	while (qp->sq_tail != qp->req.cur && qp->state != IBV_QPS_ERR) {
		struct vhca_swqe *w = vhca_req_wqe(qp, qp->sq_tail);

		if (w->error) {
			vhca_complete_send(qp, w, (enum ibv_wc_status)w->error);
			return true;
		}
		if ((w->info->flags & VHCA_WR_READS_INTO) ||
		    vhca_psn_diff(psn, last_psn(w)) < 0)
			break;
		vhca_complete_send(qp, w, IBV_WC_SUCCESS);
		any = true;
	}
	/* A failed WQE right behind the completed ones comes up now. */
	if (qp->sq_tail != qp->req.cur && qp->state != IBV_QPS_ERR) {
		struct vhca_swqe *w = vhca_req_wqe(qp, qp->sq_tail);

		if (w->error) {
			vhca_complete_send(qp, w, (enum ibv_wc_status)w->error);
			return true;
		}
	}
	return any;
}

/* A NAK or RNR NAK for @psn: what is before it was received. */
static void nak(struct vhca_qp *qp, const struct vhca_pkt *pkt)
{
	uint8_t syndrome = pkt->syndrome;
	struct vhca_swqe *w;
	uint32_t index;

	complete_up_to(qp, vhca_psn_add(pkt->psn, VHCA_PSN_MASK));
	if (qp->state == IBV_QPS_ERR)
		return;
	w = vhca_req_wqe_of_psn(qp, pkt->psn, &index);
	if (!w || index != qp->sq_tail)
		return;		/* stale: for something already done */
	if (VHCA_AETH_TYPE(syndrome) == VHCA_AETH_RNR_NAK) {
		/* rnr_retry 7 retries forever (IBTA 9.7.5.2.8). */
		if (qp->attr.rnr_retry != 7) {
			if (!qp->req.rnr_left) {
				vhca_complete_send(qp, w,
						   IBV_WC_RNR_RETRY_EXC_ERR);
				return;
			}
			qp->req.rnr_left--;
		}
		qp->req.rnr_wait = true;
		vhca_qp_timer_cancel(qp);
		vhca_qp_timer_set(qp, VHCA_TIMER_RNR,
				  vhca_now_ns() +
					  (uint64_t)rnr_timer_10us[syndrome & 31] *
						  10000ULL);
		return;
	}
	switch (syndrome) {
	case VHCA_AETH_NAK_PSN_SEQ:
		/*
		 * Inside the WQE still being sent, a sequence NAK means the
		 * receiver's inbox overflowed under a large message: going
		 * back at once keeps the sender at full speed against a full
		 * inbox (another tenant's round trips on the same engine went
		 * from 0.26 to 1.4 ms beside 256 MiB WRITEs); the ACK timer
		 * goes back instead, after the burst.
		 */
		if (index == qp->req.cur)
			break;
		vhca_requester_go_back(qp, pkt->psn);
		break;
	case VHCA_AETH_NAK_INV_REQ:
		vhca_complete_send(qp, w, IBV_WC_REM_INV_REQ_ERR);
		break;
	case VHCA_AETH_NAK_REM_ACCESS:
		vhca_complete_send(qp, w, IBV_WC_REM_ACCESS_ERR);
		break;
	default:
		vhca_complete_send(qp, w, IBV_WC_REM_OP_ERR);
		break;
	}
}

/* The local SGL of a READ or atomic, for this turn. */
static int local_sgl(struct vhca_qp *qp, const struct vhca_swqe *w,
		     struct vhca_sgl *sgl)
{
	return vhca_sgl_from_sges(sgl, qp->dctx, qp->pd->pdn,
				  (const struct vhca_sge *)w->body,
				  w->hdr.num_sge, IB_UVERBS_ACCESS_LOCAL_WRITE);
}

/* A READ response: its data where the WQE wants it. */
static void read_response(struct vhca_qp *qp, const struct vhca_pkt *pkt,
			  const struct vhca_pkt_info *info)
{
	uint32_t mtu = vhca_mtu_bytes(qp->attr.path_mtu), index, off;
	struct vhca_swqe *w = vhca_req_wqe_of_psn(qp, pkt->psn, &index);
	struct vhca_sgl sgl;
	int ret;

	if (!w || VHCA_BTH_OP(w->info->bth_op) != VHCA_OP_READ_REQUEST)
		return;
	/* Responses come in order; a repeat or a gap is dropped. */
	if (vhca_psn_diff(pkt->psn, w->first_psn) != (int32_t)w->resp_pkts)
		return;
	/* It answers the READ: everything sent before it arrived. */
	complete_up_to(qp, vhca_psn_add(w->first_psn, VHCA_PSN_MASK));
	if (qp->state == IBV_QPS_ERR || qp->sq_tail != index)
		return;
	off = w->resp_pkts * mtu;
	if (pkt->len > w->len - off || (pkt->len % mtu && !(info->flags &
							    VHCA_PKT_END))) {
		vhca_complete_send(qp, w, IBV_WC_BAD_RESP_ERR);
		return;
	}
	ret = local_sgl(qp, w, &sgl);
	if (!ret && pkt->len)
		ret = vhca_sgl_write_pkt(&sgl, off, pkt);
	if (ret == -ESRCH) {
		vhca_dctx_owner_gone(qp->dctx);
		return;
	}
	if (ret) {
		vhca_complete_send(qp, w, IBV_WC_LOC_PROT_ERR);
		return;
	}
	w->resp_pkts += pkt->npsn;
	if (info->flags & VHCA_PKT_END) {
		if (off + pkt->len != w->len) {
			vhca_complete_send(qp, w, IBV_WC_BAD_RESP_ERR);
			return;
		}
		vhca_complete_send(qp, w, IBV_WC_SUCCESS);
	}
	progress(qp);
}

static void atomic_ack(struct vhca_qp *qp, const struct vhca_pkt *pkt)
{
	struct vhca_swqe *w;
	struct vhca_sgl sgl;
	uint32_t index;
	int ret;

	w = vhca_req_wqe_of_psn(qp, pkt->psn, &index);
	if (!w || !(w->info->flags & VHCA_WR_ATOMIC))
		return;
	complete_up_to(qp, vhca_psn_add(w->first_psn, VHCA_PSN_MASK));
	if (qp->state == IBV_QPS_ERR || qp->sq_tail != index)
		return;
	ret = local_sgl(qp, w, &sgl);
	if (!ret)
		ret = vhca_sgl_write(&sgl, 0, &pkt->atomic_orig, 8);
	if (ret == -ESRCH) {
		vhca_dctx_owner_gone(qp->dctx);
		return;
	}
	vhca_complete_send(qp, w, ret ? IBV_WC_LOC_PROT_ERR : IBV_WC_SUCCESS);
	progress(qp);
}

void vhca_completer_recv(struct vhca_qp *qp, struct vhca_pkt *pkt)
{
	const struct vhca_pkt_info *info = vhca_pkt_info(pkt->opcode);
	uint16_t pkey_index;

	if (qp->type != IBV_QPT_RC || !info || !qp->req.wqes ||
	    (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_SQD))
		goto out;
	/* Only the QP's peer may answer it. */
	if (pkt->slid != qp->attr.av.dlid ||
	    pkt->src_qpn != qp->attr.dest_qpn) {
		vhca_counter_add(qp->dctx->dev, VHCA_CNT_RCV_SOURCE_ERRORS, 1);
		goto out;
	}
	if (!vhca_port_accepts_pkey(qp->dctx->dev, qp->attr.pkey_index,
				    pkt->pkey, &pkey_index)) {
		vhca_counter_add(qp->dctx->dev, VHCA_CNT_RCV_CONSTRAINT_ERRORS,
				 1);
		goto out;
	}
	VHCA_TRACE("comp: recv", qp->qpn, pkt);
	if (info->flags & VHCA_PKT_READ_RESP) {
		read_response(qp, pkt, info);
	} else if (info->flags & VHCA_PKT_ATOMIC_ACK) {
		atomic_ack(qp, pkt);
	} else if (VHCA_AETH_TYPE(pkt->syndrome) == VHCA_AETH_ACK) {
		if (complete_up_to(qp, pkt->psn))
			progress(qp);
	} else {
		nak(qp, pkt);
	}
out:
	vhca_pkt_free(pkt);
}

void vhca_completer_timer(struct vhca_qp *qp)
{
	enum vhca_qp_timer kind = qp->timer;
	struct vhca_swqe *w;

	qp->timer = VHCA_TIMER_NONE;
	if (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_SQD)
		return;
	if (kind == VHCA_TIMER_RNR) {
		qp->req.rnr_wait = false;
		if (qp->sq_tail != qp->req.cur)
			vhca_requester_go_back(
				qp, vhca_req_wqe(qp, qp->sq_tail)->first_psn);
		vhca_qp_schedule(qp);
		return;
	}
	w = vhca_req_wqe(qp, qp->sq_tail);
	if (qp->sq_tail == qp->req.cur) {
		/*
		 * Everything sent was answered.  The WQE being sent may have
		 * a request held for want of room (switch.h): while the
		 * receiver drains, the QP sends on and this is no timeout;
		 * if nothing left for retry_cnt + 1 periods in a row, the
		 * receiver does not drain and the QP fails as with a silent
		 * peer (nothing else would arm the timer again).
		 */
		if (!qp->req.held)
			return;
		if (qp->attr.timeout &&
		    ++qp->req.held_timeouts > qp->attr.retry_cnt) {
			vhca_complete_send(qp, w, IBV_WC_RETRY_EXC_ERR);
			return;
		}
		vhca_qp_timer_set(qp, VHCA_TIMER_ACK,
				  vhca_now_ns() + ack_timeout_ns(qp));
		return;
	}
	/* timeout 0 waits forever (we look again every 4 ms). */
	if (qp->attr.timeout) {
		if (!qp->req.retry_left) {
			vhca_complete_send(qp, w, IBV_WC_RETRY_EXC_ERR);
			return;
		}
		qp->req.retry_left--;
	}
	vhca_requester_go_back(qp, w->first_psn);
	vhca_qp_timer_set(qp, VHCA_TIMER_ACK, vhca_now_ns() + ack_timeout_ns(qp));
}
