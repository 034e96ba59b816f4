// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The requester side of the transport, flushes and timers
 * (transport.h).  Each send WQE is copied out of the ring, validated
 * against the QP (opcode vs type, SGE count, inline size, lkeys), turned
 * into a packet and delivered; the ACK or NAK decides its completion.
 * Retries follow the IBTA: an RNR NAK waits the responder's
 * min_rnr_timer, up to rnr_retry times (7: forever); silence waits
 * 4.096 us << timeout (0: forever), up to retry_cnt times.
 */
#include <endian.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "cq.h"
#include "engine.h"
#include "packet.h"
#include "qp.h"
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

static struct vhca_qp *timer_head;

static uint64_t rnr_wait_ns(uint8_t timer)
{
	return (uint64_t)rnr_timer_10us[timer & 31] * 10000ULL;
}

static void wait_for(struct vhca_qp *qp, enum vhca_qp_wait why,
		     uint64_t delay_ns)
{
	qp->wait = why;
	qp->wait_until_ns = vhca_now_ns() + delay_ns;
	qp->timer_next = timer_head;
	timer_head = qp;
}

void vhca_transport_cancel_timer(struct vhca_qp *qp)
{
	for (struct vhca_qp **p = &timer_head; *p; p = &(*p)->timer_next) {
		if (*p == qp) {
			*p = qp->timer_next;
			break;
		}
	}
	qp->timer_next = NULL;
	qp->wait = VHCA_QP_RUNNABLE;
}

bool vhca_transport_fire_timers(uint64_t now)
{
	bool fired = false;

	for (struct vhca_qp **p = &timer_head; *p;) {
		struct vhca_qp *qp = *p;

		if (qp->wait_until_ns > now) {
			p = &qp->timer_next;
			continue;
		}
		*p = qp->timer_next;
		qp->timer_next = NULL;
		qp->wait = VHCA_QP_RUNNABLE;	/* budgets stay: a retry */
		vhca_engine_schedule(qp);
		fired = true;
	}
	return fired;
}

uint64_t vhca_transport_next_timer(void)
{
	uint64_t next = 0;

	for (struct vhca_qp *qp = timer_head; qp; qp = qp->timer_next)
		if (!next || qp->wait_until_ns < next)
			next = qp->wait_until_ns;
	return next;
}

void vhca_transport_srqs_changed(struct vhca_ucontext *uctx, uint32_t handle)
{
	/* SRQs are not implemented: nothing waits on one. */
	(void)uctx;
	(void)handle;
}

/* ---- completions ---------------------------------------------------- */

static const enum ibv_wc_opcode wc_opcode_of[] = {
	[VHCA_WQE_RDMA_WRITE] = IBV_WC_RDMA_WRITE,
	[VHCA_WQE_RDMA_WRITE_WITH_IMM] = IBV_WC_RDMA_WRITE,
	[VHCA_WQE_SEND] = IBV_WC_SEND,
	[VHCA_WQE_SEND_WITH_IMM] = IBV_WC_SEND,
	[VHCA_WQE_RDMA_READ] = IBV_WC_RDMA_READ,
	[VHCA_WQE_ATOMIC_CMP_AND_SWP] = IBV_WC_COMP_SWAP,
	[VHCA_WQE_ATOMIC_FETCH_AND_ADD] = IBV_WC_FETCH_ADD,
};

static void advance_sq(struct vhca_qp *qp)
{
	qp->sq_tail++;
	qp->head_started = false;
	atomic_store_explicit((_Atomic uint32_t *)&qp->db->sq_tail,
			      qp->sq_tail, memory_order_release);
}

static void complete_send(struct vhca_qp *qp, const struct vhca_send_wqe *w,
			  enum ibv_wc_status status, uint32_t byte_len)
{
	struct vhca_cqe cqe = {
		.wr_id = w->wr_id,
		.status = status,
		.opcode = w->opcode < sizeof(wc_opcode_of) /
						sizeof(*wc_opcode_of) ?
				  wc_opcode_of[w->opcode] :
				  IBV_WC_SEND,
		.byte_len = byte_len,
		.qp_num = qp->qpn,
	};

	advance_sq(qp);
	if (status == IBV_WC_SUCCESS && !qp->sq_sig_all &&
	    !(w->flags & VHCA_WQE_SIGNALED))
		return;
	vhca_cq_push(qp->send_cq, &cqe, false);
	if (status != IBV_WC_SUCCESS)
		vhca_qp_set_error(qp);	/* the rest is flushed */
}

/* ---- flush ------------------------------------------------------------- */

static uint32_t outstanding(uint32_t head, uint32_t tail, uint32_t count)
{
	/* A scribbled head flushes at most one ring's worth. */
	return head - tail > count ? count : head - tail;
}

void vhca_transport_flush(struct vhca_qp *qp)
{
	struct vhca_cqe cqe = { .status = IBV_WC_WR_FLUSH_ERR,
				.qp_num = qp->qpn };
	uint32_t n;

	if (qp->dead_peer)
		return;
	vhca_transport_cancel_timer(qp);
	n = outstanding(atomic_load((_Atomic uint32_t *)&qp->db->sq_head),
			qp->sq_tail, qp->sq_count);
	while (n--) {
		struct vhca_send_wqe w;

		memcpy(&w, qp->sq + (size_t)(qp->sq_tail & (qp->sq_count - 1)) *
					    qp->sq_stride,
		       sizeof(w));
		cqe.wr_id = w.wr_id;
		cqe.opcode = w.opcode < sizeof(wc_opcode_of) /
						sizeof(*wc_opcode_of) ?
				     wc_opcode_of[w.opcode] :
				     IBV_WC_SEND;
		advance_sq(qp);
		vhca_cq_push(qp->send_cq, &cqe, false);
	}
	if (qp->srq && !qp->last_wqe_reported) {
		/* o11-5.2.5: no more WQEs of the SRQ will reach this QP. */
		qp->last_wqe_reported = true;
		vhca_qp_post_async(qp, IBV_EVENT_QP_LAST_WQE_REACHED);
	}
	if (qp->srq || !qp->rq_count)
		return;
	n = outstanding(atomic_load((_Atomic uint32_t *)&qp->db->rq_head),
			qp->rq_tail, qp->rq_count);
	cqe.opcode = IBV_WC_RECV;
	while (n--) {
		struct vhca_recv_wqe w;

		memcpy(&w, qp->rq + (size_t)(qp->rq_tail & (qp->rq_count - 1)) *
					    qp->rq_stride,
		       sizeof(w));
		cqe.wr_id = w.wr_id;
		qp->rq_tail++;
		atomic_store((_Atomic uint32_t *)&qp->db->rq_tail, qp->rq_tail);
		vhca_cq_push(qp->recv_cq, &cqe, false);
	}
}

/* ---- requester -------------------------------------------------------- */

/* What an opcode needs: allowed QP types, and its local access. */
static bool opcode_allowed(uint8_t opcode, uint8_t qp_type)
{
	switch (opcode) {
	case VHCA_WQE_SEND:
	case VHCA_WQE_SEND_WITH_IMM:
		return true;
	case VHCA_WQE_RDMA_WRITE:
	case VHCA_WQE_RDMA_WRITE_WITH_IMM:
		return qp_type != IBV_QPT_UD;
	case VHCA_WQE_RDMA_READ:
	case VHCA_WQE_ATOMIC_CMP_AND_SWP:
	case VHCA_WQE_ATOMIC_FETCH_AND_ADD:
		return qp_type == IBV_QPT_RC;
	}
	return false;
}

static const uint8_t bth_op_of[] = {
	[VHCA_WQE_RDMA_WRITE] = VHCA_OP_WRITE_ONLY,
	[VHCA_WQE_RDMA_WRITE_WITH_IMM] = VHCA_OP_WRITE_ONLY_IMM,
	[VHCA_WQE_SEND] = VHCA_OP_SEND_ONLY,
	[VHCA_WQE_SEND_WITH_IMM] = VHCA_OP_SEND_ONLY_IMM,
	[VHCA_WQE_RDMA_READ] = VHCA_OP_READ_REQUEST,
	[VHCA_WQE_ATOMIC_CMP_AND_SWP] = VHCA_OP_CMP_SWAP,
	[VHCA_WQE_ATOMIC_FETCH_AND_ADD] = VHCA_OP_FETCH_ADD,
};

static uint8_t transport_bits(uint8_t qp_type)
{
	return qp_type == IBV_QPT_RC ? VHCA_TRANSPORT_RC :
	       qp_type == IBV_QPT_UC ? VHCA_TRANSPORT_UC :
				       VHCA_TRANSPORT_UD;
}

/* A send WQE copied out of the ring, header and SGEs or inline data. */
struct send_copy {
	struct vhca_send_wqe hdr;
	uint8_t body[VHCA_MAX_WQE_STRIDE];
};

/*
 * Validates the copy and resolves its local memory.  Returns the error
 * completion status, or IBV_WC_SUCCESS with @pkt's payload set.
 */
static enum ibv_wc_status prepare(struct vhca_qp *qp, struct send_copy *c,
				  struct vhca_sgl *local,
				  struct vhca_payload *payload)
{
	const struct vhca_send_wqe *w = &c->hdr;
	bool reads_into = w->opcode == VHCA_WQE_RDMA_READ ||
			  w->opcode == VHCA_WQE_ATOMIC_CMP_AND_SWP ||
			  w->opcode == VHCA_WQE_ATOMIC_FETCH_AND_ADD;

	if (!opcode_allowed(w->opcode, qp->type))
		return IBV_WC_LOC_QP_OP_ERR;
	memset(payload, 0, sizeof(*payload));
	if (w->flags & VHCA_WQE_INLINE) {
		if (reads_into || w->inline_len > qp->max_inline ||
		    sizeof(*w) + w->inline_len > qp->sq_stride)
			return IBV_WC_LOC_LEN_ERR;
		payload->inline_data = c->body;
		payload->len = w->inline_len;
		return IBV_WC_SUCCESS;
	}
	if (w->num_sge > qp->max_send_sge ||
	    sizeof(*w) + w->num_sge * sizeof(struct vhca_sge) > qp->sq_stride)
		return IBV_WC_LOC_LEN_ERR;
	for (unsigned int i = 0; i < w->num_sge; i++) {
		struct vhca_sge sge;

		memcpy(&sge, c->body + i * sizeof(sge), sizeof(sge));
		if (vhca_sgl_add(local, qp->uctx->dev, qp->pd->pdn, sge.lkey,
				 sge.addr, sge.length,
				 reads_into ? IB_UVERBS_ACCESS_LOCAL_WRITE : 0))
			return IBV_WC_LOC_PROT_ERR;
	}
	if (local->total > vhca_limits.max_msg_sz)
		return IBV_WC_LOC_LEN_ERR;
	if (w->opcode >= VHCA_WQE_ATOMIC_CMP_AND_SWP && local->total != 8)
		return IBV_WC_LOC_LEN_ERR;
	/* UD: one packet, at most the path MTU (4096 here). */
	if (qp->type == IBV_QPT_UD && local->total > 4096)
		return IBV_WC_LOC_LEN_ERR;
	payload->sgl = local;
	payload->len = local->total;
	return IBV_WC_SUCCESS;
}

/*
 * What the port lets this QP transmit, read under pf->lock because the
 * admin may reprovision the VF at any time: the P_Key the QP's index
 * names now, and whether the port is up.
 */
static bool port_may_send(const struct vhca_qp *qp, uint16_t *pkey)
{
	const struct vhca_dev *dev = qp->uctx->dev;
	bool active;

	pthread_rwlock_rdlock(&dev->pf->lock);
	*pkey = dev->port.pkeys[qp->attr.pkey_index];
	active = dev->port.state == IBV_PORT_ACTIVE;
	pthread_rwlock_unlock(&dev->pf->lock);
	return active;
}

/*
 * Egress checks of the sending port, before the packet leaves.
 *  - A port that is not ACTIVE (policy Down) has no link: nothing goes
 *    out, as with a pulled cable.
 *  - A QP whose P_Key index names an empty entry (0x0000: the admin
 *    removed its partition) has no valid P_Key to put in the BTH.  Such a
 *    packet would carry the invalid P_Key, which the IBTA says matches
 *    nothing, so the HCA discards it at transmit instead, and counts it
 *    in PortXmitConstraintErrors, the PMA counter for packets not sent
 *    because of partition enforcement.
 * Either way the packet is lost, not failed: RC retries and ends in
 * IBV_WC_RETRY_EXC_ERR, UC/UD complete successfully (unreliable).
 */
static bool egress_allowed(struct vhca_qp *qp, struct vhca_pkt *pkt)
{
	uint16_t pkey;

	if (!port_may_send(qp, &pkey))
		return false;
	if (!(pkey & 0x7fff)) {
		vhca_counter_add(qp->uctx->dev, VHCA_CNT_XMIT_CONSTRAINT_ERRORS,
				 1);
		return false;
	}
	pkt->pkey = pkey;
	return true;
}

static void build_packet(struct vhca_qp *qp, const struct send_copy *c,
			 struct vhca_pkt *pkt, uint8_t *sgid)
{
	const struct vhca_send_wqe *w = &c->hdr;
	struct vhca_dev *dev = qp->uctx->dev;

	memset(pkt, 0, sizeof(*pkt));
	pkt->slid = dev->port.lid;
	pkt->opcode = transport_bits(qp->type) | bth_op_of[w->opcode];
	pkt->solicited = w->flags & VHCA_WQE_SOLICITED;
	/* pkt->pkey: egress_allowed() fills it from the live table. */
	pkt->psn = qp->attr.sq_psn;
	pkt->src_qpn = qp->qpn;
	pkt->src_qp = qp;
	pkt->has_imm = w->opcode == VHCA_WQE_SEND_WITH_IMM ||
		       w->opcode == VHCA_WQE_RDMA_WRITE_WITH_IMM;
	pkt->imm = w->imm_data;
	if (qp->type == IBV_QPT_UD) {
		pkt->dlid = w->ud.dlid;
		pkt->sl = w->ud.sl;
		pkt->dest_qpn = w->ud.remote_qpn & 0xffffff;
		/* o10-15.2.3: a Q_Key with the high bit set means the QP's. */
		pkt->qkey = (w->ud.remote_qkey & 0x80000000u) ? qp->attr.qkey :
								w->ud.remote_qkey;
		pkt->has_grh = w->ud.is_global;
		pkt->grh_dest = &w->ud;
		if (pkt->has_grh) {
			/* GID 0: link-local prefix fe80::/64 + port GUID. */
			uint64_t guid = htobe64(dev->port_guid);

			sgid[0] = 0xfe;
			sgid[1] = 0x80;
			memcpy(sgid + 8, &guid, 8);
		}
		pkt->sgid = sgid;
		return;
	}
	pkt->dlid = qp->attr.av.dlid;
	pkt->sl = qp->attr.av.sl;
	pkt->dest_qpn = qp->attr.dest_qpn;
	if (w->opcode == VHCA_WQE_ATOMIC_CMP_AND_SWP ||
	    w->opcode == VHCA_WQE_ATOMIC_FETCH_AND_ADD) {
		pkt->va = w->atomic.remote_addr;
		pkt->rkey = w->atomic.rkey;
		pkt->compare = w->atomic.compare_add;
		pkt->swap_add = w->opcode == VHCA_WQE_ATOMIC_CMP_AND_SWP ?
					w->atomic.swap :
					w->atomic.compare_add;
		pkt->dma_len = 8;
	} else {
		pkt->va = w->rdma.remote_addr;
		pkt->rkey = w->rdma.rkey;
	}
}

/* Executes the head WQE; false if the QP must stop (wait or error). */
static bool execute_head(struct vhca_qp *qp)
{
	struct send_copy c;
	struct vhca_sgl local = { 0 };
	struct vhca_payload payload;
	enum ibv_wc_status status;
	struct vhca_pkt pkt;
	struct vhca_ack ack = { 0 };
	uint8_t sgid[16] = { 0 };
	size_t len = qp->sq_stride;

	/* Copy first: the guest may rewrite the slot at any time. */
	memcpy(&c, qp->sq + (size_t)(qp->sq_tail & (qp->sq_count - 1)) *
				    qp->sq_stride,
	       len);
	status = prepare(qp, &c, &local, &payload);
	if (status != IBV_WC_SUCCESS) {
		vhca_sgl_release(&local);
		complete_send(qp, &c.hdr, status, 0);
		return false;
	}
	if (!qp->head_started) {
		qp->head_started = true;
		qp->rnr_left = qp->attr.rnr_retry;
		qp->retry_left = qp->attr.retry_cnt;
	}
	build_packet(qp, &c, &pkt, sgid);
	if (c.hdr.opcode == VHCA_WQE_RDMA_READ) {
		pkt.dma_len = local.total;
		pkt.read_dest = &local;
	} else if (c.hdr.opcode <= VHCA_WQE_SEND_WITH_IMM) {
		pkt.payload = payload;
		pkt.dma_len = payload.len;
	}
	if (egress_allowed(qp, &pkt))
		vhca_deliver(qp->uctx->dev, &pkt, &ack);
	else
		ack.kind = VHCA_DROPPED;	/* never left the port */

	if (ack.kind == VHCA_ACK &&
	    (c.hdr.opcode == VHCA_WQE_ATOMIC_CMP_AND_SWP ||
	     c.hdr.opcode == VHCA_WQE_ATOMIC_FETCH_AND_ADD) &&
	    vhca_sgl_write64(&local, ack.atomic_orig))
		ack.kind = VHCA_LOCAL_FAULT;
	vhca_sgl_release(&local);

	switch (ack.kind) {
	case VHCA_ACK:
		complete_send(qp, &c.hdr, IBV_WC_SUCCESS,
			      c.hdr.opcode == VHCA_WQE_RDMA_READ ||
					      c.hdr.opcode >=
						      VHCA_WQE_ATOMIC_CMP_AND_SWP ?
				      pkt.dma_len :
				      payload.len);
		return true;
	case VHCA_DROPPED:
		if (qp->type != IBV_QPT_RC) {
			/* Unreliable: the message is simply lost. */
			complete_send(qp, &c.hdr, IBV_WC_SUCCESS, payload.len);
			return true;
		}
		/* timeout 0 waits forever (we look again every 4 ms). */
		if (qp->attr.timeout) {
			if (!qp->retry_left) {
				complete_send(qp, &c.hdr, IBV_WC_RETRY_EXC_ERR,
					      0);
				return false;
			}
			qp->retry_left--;
		}
		wait_for(qp, VHCA_QP_WAIT_ACK,
			 4096ULL << (qp->attr.timeout ? qp->attr.timeout : 10));
		return false;
	case VHCA_NAK_RNR:
		/* rnr_retry 7 retries forever (IBTA 9.7.5.2.8). */
		if (qp->attr.rnr_retry != 7) {
			if (!qp->rnr_left) {
				complete_send(qp, &c.hdr,
					      IBV_WC_RNR_RETRY_EXC_ERR, 0);
				return false;
			}
			qp->rnr_left--;
		}
		wait_for(qp, VHCA_QP_WAIT_RNR, rnr_wait_ns(ack.rnr_timer));
		return false;
	case VHCA_NAK_INV_REQ:
		complete_send(qp, &c.hdr, IBV_WC_REM_INV_REQ_ERR, 0);
		return false;
	case VHCA_NAK_REM_ACCESS:
		complete_send(qp, &c.hdr, IBV_WC_REM_ACCESS_ERR, 0);
		return false;
	case VHCA_NAK_REM_OP:
		complete_send(qp, &c.hdr, IBV_WC_REM_OP_ERR, 0);
		return false;
	case VHCA_LOCAL_FAULT:
		complete_send(qp, &c.hdr, IBV_WC_LOC_PROT_ERR, 0);
		return false;
	}
	return false;
}

bool vhca_transport_execute(struct vhca_qp *qp, unsigned int budget)
{
	uint32_t head;

	if (qp->dead_peer)
		return false;
	if (qp->state == IBV_QPS_ERR) {
		vhca_transport_flush(qp);
		return false;
	}
	/* Only RTS sends; SQD finishes nothing new (no WQE in flight here). */
	if (qp->state != IBV_QPS_RTS || qp->wait != VHCA_QP_RUNNABLE ||
	    !qp->sq_count)
		return false;
	head = atomic_load_explicit((_Atomic uint32_t *)&qp->db->sq_head,
				    memory_order_acquire);
	if (head - qp->sq_tail > qp->sq_count) {
		/* The guest scribbled its doorbell: that QP alone fails. */
		vhca_qp_set_error(qp);
		vhca_transport_flush(qp);
		return false;
	}
	while (head != qp->sq_tail && budget--) {
		if (!execute_head(qp))
			return qp->state == IBV_QPS_ERR;
	}
	return head != qp->sq_tail;
}
