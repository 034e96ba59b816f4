// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The requester: turns send WQEs into packets (transport.h), as rxe's
 * req.c does.
 *
 * Each WQE is copied out of the ring once, when it is fetched, and
 * validated against the QP and the opcode table (include/vhca/opcode.h):
 * the copy is what is sent and, for RC, sent again; the guest may
 * rewrite the slot at any time.  A fetched WQE gets its PSNs (one per
 * path-MTU packet, a READ as many as its responses).  Payload is gathered
 * from local memory into each packet as it is sent, so the destination
 * never reads the sender's memory.
 *
 * At most VHCA_REQ_WINDOW WQEs are in flight (fetched, not completed),
 * and at most max_rd_atomic of them READs or atomics; a fenced WQE waits
 * until no READ or atomic is outstanding.  UC and UD WQEs complete as
 * their last packet leaves; RC WQEs when the completer hears their ACK.
 * A WQE that fails validation completes in error in its turn (in order).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "engine.h"
#include "packet.h"
#include "qp.h"
#include "sgl.h"
#include "switch.h"
#include "transport.h"

int vhca_requester_init(struct vhca_qp *qp)
{
	if (!qp->req.wqes) {
		qp->req.wqes = calloc(VHCA_REQ_WINDOW, sizeof(*qp->req.wqes));
		if (!qp->req.wqes)
			return -ENOMEM;
	}
	qp->req.next = qp->sq_tail;
	qp->req.cur = qp->sq_tail;
	qp->req.rnr_wait = false;
	qp->req.retry_left = qp->attr.retry_cnt;
	qp->req.rnr_left = qp->attr.rnr_retry;
	return 0;
}

void vhca_requester_fini(struct vhca_qp *qp)
{
	vhca_flow_release(qp);
	free(qp->req.wqes);
	memset(&qp->req, 0, sizeof(qp->req));
}

struct vhca_swqe *vhca_req_wqe(struct vhca_qp *qp, uint32_t index)
{
	return &qp->req.wqes[index % VHCA_REQ_WINDOW];
}

/* READs and atomics sent and not completed. */
static unsigned int rd_atomic_outstanding(struct vhca_qp *qp)
{
	unsigned int n = 0;

	for (uint32_t i = qp->sq_tail; i != qp->req.cur; i++)
		if (vhca_req_wqe(qp, i)->info &&
		    (vhca_req_wqe(qp, i)->info->flags & VHCA_WR_RD_ATOMIC))
			n++;
	return n;
}

/* ---- fetch ---------------------------------------------------------------- */

static const uint8_t *ring_slot(const struct vhca_qp *qp, uint32_t index)
{
	return qp->sq + (size_t)(index & (qp->sq_count - 1)) * qp->sq_stride;
}

/* Validates the copy in @w; the completion status of a bad WQE. */
static enum ibv_wc_status validate(struct vhca_qp *qp, struct vhca_swqe *w)
{
	const struct vhca_send_wqe *h = &w->hdr;
	const struct vhca_wr_info *info = vhca_wr_info(h->opcode);
	uint32_t mtu = vhca_mtu_bytes(qp->type == IBV_QPT_UD ?
					      qp->dctx->dev->port.active_mtu :
					      qp->attr.path_mtu);
	uint64_t len = 0;

	w->info = info;
	if (!vhca_wr_allowed(h->opcode, qp->type))
		return IBV_WC_LOC_QP_OP_ERR;
	if (info->flags & VHCA_WR_WQE_DATA) {
		/* ATOMIC WRITE: its 8 bytes are in the WQE, nothing else. */
		if (h->num_sge || (h->flags & VHCA_WQE_INLINE))
			return IBV_WC_LOC_LEN_ERR;
		len = 8;
	} else if (h->flags & VHCA_WQE_INLINE) {
		if (!(info->flags & VHCA_WR_INLINE_OK) ||
		    h->inline_len > qp->max_inline ||
		    h->inline_len > VHCA_SWQE_BODY ||
		    sizeof(*h) + h->inline_len > qp->sq_stride)
			return IBV_WC_LOC_LEN_ERR;
		len = h->inline_len;
	} else {
		struct vhca_sge sge;
		struct vhca_sgl sgl;

		if (h->num_sge > qp->max_send_sge ||
		    h->num_sge * sizeof(sge) > VHCA_SWQE_BODY ||
		    sizeof(*h) + h->num_sge * sizeof(sge) > qp->sq_stride)
			return IBV_WC_LOC_LEN_ERR;
		for (unsigned int i = 0; i < h->num_sge; i++) {
			memcpy(&sge, w->body + i * sizeof(sge), sizeof(sge));
			len += sge.length;
		}
		/* The keys now; they are looked up again as data moves. */
		if (vhca_sgl_from_sges(&sgl, qp->dctx, qp->pd->pdn,
				       (const struct vhca_sge *)w->body,
				       h->num_sge, info->local_access))
			return IBV_WC_LOC_PROT_ERR;
	}
	if (len > vhca_limits.max_msg_sz)
		return IBV_WC_LOC_LEN_ERR;
	if ((info->flags & VHCA_WR_ATOMIC) && len != 8)
		return IBV_WC_LOC_LEN_ERR;
	/* UD: one packet, at most the path MTU. */
	if (qp->type == IBV_QPT_UD && len > mtu)
		return IBV_WC_LOC_LEN_ERR;
	w->len = (uint32_t)len;
	w->npsn = (info->flags & VHCA_WR_ATOMIC) || qp->type == IBV_QPT_UD ?
			  1 :
			  vhca_npsn(w->len, mtu);
	return IBV_WC_SUCCESS;
}

/*
 * Fetches the WQE at req.next into the window.  Returns false if it must
 * wait (the window, max_rd_atomic or a fence), true once fetched.
 */
static bool fetch(struct vhca_qp *qp, enum ibv_wc_status *status)
{
	struct vhca_swqe *w = vhca_req_wqe(qp, qp->req.next);
	const struct vhca_send_wqe *slot =
		(const struct vhca_send_wqe *)ring_slot(qp, qp->req.next);
	const struct vhca_wr_info *info;
	size_t len = qp->sq_stride < sizeof(w->hdr) + VHCA_SWQE_BODY ?
			     qp->sq_stride :
			     sizeof(w->hdr) + VHCA_SWQE_BODY;
	unsigned int rd_limit = qp->attr.max_rd_atomic ?
					qp->attr.max_rd_atomic :
					1;

	if (qp->req.next - qp->sq_tail >= VHCA_REQ_WINDOW)
		return false;
	/* Copy first: the guest may rewrite the slot at any time. */
	memset(w, 0, sizeof(*w));
	memcpy(&w->hdr, slot, len);
	info = vhca_wr_info(w->hdr.opcode);
	if (info && (info->flags & VHCA_WR_RD_ATOMIC) &&
	    rd_atomic_outstanding(qp) >= rd_limit)
		return false;
	if ((w->hdr.flags & VHCA_WQE_FENCE) && rd_atomic_outstanding(qp))
		return false;	/* IBTA 10.8.3.3: wait for READs/atomics */
	*status = validate(qp, w);
	w->first_psn = qp->req.psn;
	if (*status == IBV_WC_SUCCESS)
		qp->req.psn = vhca_psn_add(qp->req.psn, w->npsn);
	qp->req.next++;
	return true;
}

/* ---- packets -------------------------------------------------------------- */

/* Headers every packet of the QP shares: the destination. */
static void address(struct vhca_qp *qp, const struct vhca_swqe *w,
		    struct vhca_pkt *pkt)
{
	const struct vhca_dev *dev = qp->dctx->dev;

	pkt->opcode = vhca_bth_transport_of(qp->type);
	if (qp->type != IBV_QPT_UD) {
		pkt->dlid = qp->attr.av.dlid;
		pkt->sl = qp->attr.av.sl;
		pkt->dest_qpn = qp->attr.dest_qpn;
		return;
	}
	pkt->dlid = w->hdr.ud.dlid;
	pkt->sl = w->hdr.ud.sl;
	pkt->dest_qpn = w->hdr.ud.remote_qpn & 0xffffff;
	/* o10-15.2.3: a Q_Key with the high bit set means the QP's. */
	pkt->qkey = (w->hdr.ud.remote_qkey & 0x80000000u) ?
			    qp->attr.qkey :
			    w->hdr.ud.remote_qkey;
	pkt->has_grh = w->hdr.ud.is_global;
	if (pkt->has_grh) {
		/* GID 0: link-local prefix fe80::/64 + port GUID. */
		uint64_t guid = htobe64(dev->port_guid);

		pkt->grh.sgid[0] = 0xfe;
		pkt->grh.sgid[1] = 0x80;
		memcpy(pkt->grh.sgid + 8, &guid, 8);
		memcpy(pkt->grh.dgid, w->hdr.ud.dgid, 16);
		pkt->grh.traffic_class = w->hdr.ud.traffic_class;
		pkt->grh.hop_limit = w->hdr.ud.hop_limit;
		pkt->grh.flow_label = w->hdr.ud.flow_label;
	}
}

/* Gathers [off, off + len) of the WQE's payload into @pkt. */
static int gather(struct vhca_qp *qp, const struct vhca_swqe *w,
		  struct vhca_pkt *pkt, uint32_t off, uint32_t len)
{
	struct vhca_sgl sgl;
	int ret;

	pkt->len = len;
	if (!len)
		return 0;
	if (w->hdr.flags & VHCA_WQE_INLINE) {
		memcpy(pkt->data, w->body + off, len);
		return 0;
	}
	ret = vhca_sgl_from_sges(&sgl, qp->dctx, qp->pd->pdn,
				 (const struct vhca_sge *)w->body,
				 w->hdr.num_sge, 0);
	if (ret)
		return ret;
	/* A VM's pages go by reference: the receiver's copy is the only one. */
	if (!vhca_sgl_map(&sgl, off, len, pkt))
		return 0;
	return vhca_sgl_read(&sgl, off, pkt->data, len);
}

/* The ACK timeout: 4.096 us << timeout; 0 is forever (look every 4 ms). */
static uint64_t ack_timeout_ns(const struct vhca_qp *qp)
{
	return 4096ULL << (qp->attr.timeout ? qp->attr.timeout : 10);
}

static void arm_ack_timer(struct vhca_qp *qp)
{
	if (qp->type == IBV_QPT_RC && qp->timer == VHCA_TIMER_NONE)
		vhca_qp_timer_set(qp, VHCA_TIMER_ACK,
				  vhca_now_ns() + ack_timeout_ns(qp));
}

/*
 * Sends the next packet of @w.  Returns 0 (sent, or lost at egress),
 * or the completion status of a local failure.
 */
static enum ibv_wc_status send_next(struct vhca_qp *qp, struct vhca_swqe *w,
				    struct vhca_turn_budget *budget)
{
	const struct vhca_wr_info *info = w->info;
	uint32_t mtu = vhca_mtu_bytes(qp->attr.path_mtu);
	bool payload = info->flags & (VHCA_WR_SENDS_PAYLOAD | VHCA_WR_WQE_DATA);
	uint32_t seg = 0, first_psn_off;
	bool first = w->sent == 0, last = true;
	struct vhca_pkt *pkt;
	int ret;

	if (payload && qp->type != IBV_QPT_UD) {
		seg = w->len - w->sent;
		if (seg > VHCA_SEG_MAX)
			seg = VHCA_SEG_MAX / mtu * mtu;
		last = w->sent + seg == w->len;
	} else if (payload) {
		seg = w->len;
	}
	pkt = vhca_pkt_alloc(seg);
	if (!pkt) {
		budget->pkts = 0;	/* no memory now: next turn */
		return IBV_WC_SUCCESS;
	}
	address(qp, w, pkt);
	first_psn_off = qp->type == IBV_QPT_UD ? 0 : w->sent / mtu;
	pkt->psn = vhca_psn_add(w->first_psn, first_psn_off);
	pkt->opcode |= vhca_bth_op_of(info->bth_op, first, last,
				      info->flags & VHCA_WR_IMM);
	if (last) {
		pkt->se = w->hdr.flags & VHCA_WQE_SOLICITED;
		pkt->ackreq = qp->type == IBV_QPT_RC;
		pkt->imm = w->hdr.imm_data;
	}
	if (info->flags & VHCA_WR_ATOMIC) {
		pkt->va = w->hdr.atomic.remote_addr;
		pkt->rkey = w->hdr.atomic.rkey;
		pkt->compare = w->hdr.atomic.compare_add;
		pkt->swap_add = VHCA_BTH_OP(pkt->opcode) == VHCA_OP_CMP_SWAP ?
					w->hdr.atomic.swap :
					w->hdr.atomic.compare_add;
		pkt->dma_len = 8;
	} else if ((info->flags & VHCA_WR_RETH) && first) {
		pkt->va = w->hdr.rdma.remote_addr;
		pkt->rkey = w->hdr.rdma.rkey;
		pkt->dma_len = w->len;
	} else if (info->flags & VHCA_WR_WQE_DATA) {
		pkt->va = w->hdr.atomic.remote_addr;
		pkt->rkey = w->hdr.atomic.rkey;
		pkt->dma_len = 8;
		memcpy(pkt->data, &w->hdr.atomic.compare_add, 8);
		pkt->len = 8;
		pkt->npsn = 1;
	}
	if (info->flags & VHCA_WR_WQE_DATA) {
		/* the payload is in place */
	} else if (payload) {
		ret = gather(qp, w, pkt, w->sent, seg);
		if (ret) {
			vhca_pkt_free(pkt);
			if (ret == -ESRCH) {
				vhca_dctx_owner_gone(qp->dctx);
				return IBV_WC_SUCCESS;
			}
			return IBV_WC_LOC_PROT_ERR;
		}
		pkt->npsn = vhca_npsn(seg, mtu);
	} else {
		/* A READ takes the PSNs of its responses. */
		pkt->npsn = w->npsn;
	}
	if (qp->type == IBV_QPT_UD)
		pkt->npsn = 1;
	w->started = true;
	w->sent += seg;
	w->done = last;
	vhca_budget_spend(budget, seg);
	/* Held if the destination has no room: it counts as in flight. */
	vhca_switch_send_request(qp, pkt);
	arm_ack_timer(qp);
	return IBV_WC_SUCCESS;
}

/* ---- the send queue -------------------------------------------------------- */

struct vhca_swqe *vhca_req_wqe_of_psn(struct vhca_qp *qp, uint32_t psn,
				      uint32_t *index)
{
	uint32_t mtu = vhca_mtu_bytes(qp->attr.path_mtu);
	uint32_t end = qp->req.cur;

	/* The WQE being sent, once its first packet has left. */
	if (qp->req.cur != qp->req.next && vhca_req_wqe(qp, qp->req.cur)->sent)
		end++;
	for (uint32_t i = qp->sq_tail; i != end; i++) {
		struct vhca_swqe *w = vhca_req_wqe(qp, i);
		int32_t off = vhca_psn_diff(psn, w->first_psn);

		if (off < 0 || (uint32_t)off >= w->npsn)
			continue;
		if (i == qp->req.cur && (uint64_t)off * mtu >= w->sent)
			return NULL;	/* not sent yet: nobody can answer it */
		*index = i;
		return w;
	}
	return NULL;
}

void vhca_requester_go_back(struct vhca_qp *qp, uint32_t psn)
{
	uint32_t mtu = vhca_mtu_bytes(qp->attr.path_mtu);
	uint32_t i;
	struct vhca_swqe *w = vhca_req_wqe_of_psn(qp, psn, &i);

	if (w) {
		int32_t off = vhca_psn_diff(psn, w->first_psn);

		/* A held request is sent again with the rest. */
		vhca_flow_release(qp);
		/*
		 * Sends and writes resume at the packet; a READ or an atomic
		 * is asked again in full (its responses restart).
		 */
		if (w->info->flags & VHCA_WR_SENDS_PAYLOAD)
			w->sent = (uint32_t)off * mtu;
		else
			w->sent = 0;
		w->done = false;
		w->resp_pkts = 0;
		/* (i may be the WQE being sent: then none is later.) */
		for (uint32_t j = i + 1; (int32_t)(qp->req.cur - j) > 0; j++) {
			struct vhca_swqe *later = vhca_req_wqe(qp, j);

			/*
			 * One that failed locally was never sent and never
			 * will be (it may have no opcode row at all): it
			 * stays done, and completes in error in its turn.
			 */
			if (later->error)
				continue;
			later->sent = 0;
			later->done = false;
			later->resp_pkts = 0;
		}
		qp->req.cur = i;
		vhca_qp_schedule(qp);
	}
}

/*
 * Everything posted is sent: the next post must ring.  The QP's queued
 * flag is cleared when its doorbell is popped; a flag left set makes the
 * provider skip the FIFO for every later post, and nothing but an ACK
 * would bring the QP back.  Seen between VMs: a QP with three WQEs
 * posted, queued 1, an empty FIFO, both ranks waiting for ever (the
 * guest's xchg was not atomic: one-vCPU TCG, tools/vm/qemu.c).  A guest
 * whose atomics are not atomic, or that scribbles the flag, must cost
 * itself at most a doorbell's wait, never a stuck QP: so a QP that runs
 * dry clears the flag itself and looks at sq_head once more (the
 * provider stores sq_head before its xchg; this pairs with that as the
 * pop does).  Returns the sq_head seen last.
 */
static uint32_t rearm_doorbell(struct vhca_qp *qp, uint32_t head)
{
	_Atomic uint32_t *queued = (_Atomic uint32_t *)&qp->db->queued;

	if (!atomic_load_explicit(queued, memory_order_relaxed))
		return head;
	atomic_store(queued, 0);
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit((_Atomic uint32_t *)&qp->db->sq_head,
				    memory_order_acquire);
}

bool vhca_requester_run(struct vhca_qp *qp, struct vhca_turn_budget *budget)
{
	bool more = false;
	uint32_t head;

	if (qp->resp_pending)
		more = vhca_responder_run(qp, budget);
	if (qp->state != IBV_QPS_RTS || qp->req.rnr_wait || !qp->sq_count ||
	    !qp->req.wqes)
		return more;
	/* What waited for room goes first; if there is none, we wait on. */
	if (vhca_switch_send_held(qp) == VHCA_SEND_BLOCKED)
		return more;
	head = atomic_load_explicit((_Atomic uint32_t *)&qp->db->sq_head,
				    memory_order_acquire);
	if (head - qp->sq_tail > qp->sq_count) {
		/* The guest scribbled its doorbell: that QP alone fails. */
		vhca_qp_set_error(qp);
		return false;
	}
	while (vhca_budget_left(budget) && qp->state == IBV_QPS_RTS &&
	       !qp->req.rnr_wait && !qp->req.held && !qp->dctx->dead) {
		enum ibv_wc_status status = IBV_WC_SUCCESS;
		struct vhca_swqe *w;

		/* A failed WQE waits for those before it; nothing after it. */
		if (qp->req.cur != qp->sq_tail &&
		    vhca_req_wqe(qp, qp->req.cur - 1)->error)
			break;
		if (qp->req.cur == qp->req.next) {
			if (qp->req.next == head || !fetch(qp, &status))
				break;
		}
		w = vhca_req_wqe(qp, qp->req.cur);
		if (status == IBV_WC_SUCCESS && !w->done)
			status = send_next(qp, w, budget);
		if (status != IBV_WC_SUCCESS) {
			/* In order: after what is still in flight, if RC. */
			w->error = status;
			w->done = true;
		}
		if (!w->done)
			continue;
		qp->req.cur++;
		/* Unreliable: complete as the last packet leaves. */
		if (qp->type != IBV_QPT_RC || w->error)
			while (qp->sq_tail != qp->req.cur) {
				struct vhca_swqe *done =
					vhca_req_wqe(qp, qp->sq_tail);

				if (qp->type == IBV_QPT_RC && !done->error)
					break;
				vhca_complete_send(qp, done,
						   done->error ?
							   (enum ibv_wc_status)
								   done->error :
							   IBV_WC_SUCCESS);
				if (qp->state == IBV_QPS_ERR)
					return false;
			}
	}
	if (qp->state == IBV_QPS_RTS && qp->req.cur == qp->req.next &&
	    qp->req.next == head && !qp->req.held)
		head = rearm_doorbell(qp, head);
	return more || (qp->state == IBV_QPS_RTS && !qp->req.rnr_wait &&
			!qp->req.held &&
			(qp->req.cur != qp->req.next ||
			 (qp->req.next != head &&
			  qp->req.next - qp->sq_tail < VHCA_REQ_WINDOW)));
}
