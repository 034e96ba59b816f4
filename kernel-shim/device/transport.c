// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A context's turn (transport.h): its doorbells, the packets in its
 * inbox, its due timers and the send work of its QPs, within a budget;
 * and what the requester, responder and completer share: the run list,
 * the timer heap, send completions and flushes.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cq.h"
#include "engine.h"
#include "packet.h"
#include "qp.h"
#include "srq.h"
#include "switch.h"
#include "transport.h"

/* ---- run list ---------------------------------------------------------- */

void vhca_qp_schedule(struct vhca_qp *qp)
{
	struct vhca_dctx *dctx = qp->dctx;

	if (!qp->queued) {
		qp->queued = true;
		qp->run_next = NULL;
		if (dctx->run_tail)
			dctx->run_tail->run_next = qp;
		else
			dctx->run_head = qp;
		dctx->run_tail = qp;
	}
	vhca_engine_kick(dctx);
}

void vhca_qp_unschedule(struct vhca_qp *qp)
{
	struct vhca_dctx *dctx = qp->dctx;
	struct vhca_qp **link = &dctx->run_head, *prev = NULL;

	if (!qp->queued)
		return;
	while (*link && *link != qp) {
		prev = *link;
		link = &(*link)->run_next;
	}
	if (*link) {
		*link = qp->run_next;
		if (dctx->run_tail == qp)
			dctx->run_tail = prev;
	}
	qp->queued = false;
	qp->run_next = NULL;
}

/* The head of the run list, taken off it. */
static struct vhca_qp *run_pop(struct vhca_dctx *dctx)
{
	struct vhca_qp *qp = dctx->run_head;

	if (!qp)
		return NULL;
	dctx->run_head = qp->run_next;
	if (!dctx->run_head)
		dctx->run_tail = NULL;
	qp->queued = false;
	qp->run_next = NULL;
	return qp;
}

/* ---- timers: a min-heap of QPs by deadline --------------------------- */

static bool heap_less(const struct vhca_qp_heap *h, uint32_t a, uint32_t b)
{
	return h->qps[a]->timer_deadline < h->qps[b]->timer_deadline;
}

static void heap_swap(struct vhca_qp_heap *h, uint32_t a, uint32_t b)
{
	struct vhca_qp *t = h->qps[a];

	h->qps[a] = h->qps[b];
	h->qps[b] = t;
	h->qps[a]->heap_index = a;
	h->qps[b]->heap_index = b;
}

static void heap_up(struct vhca_qp_heap *h, uint32_t i)
{
	while (i && heap_less(h, i, (i - 1) / 2)) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct vhca_qp_heap *h, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->len && heap_less(h, l, m))
			m = l;
		if (r < h->len && heap_less(h, r, m))
			m = r;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

static void heap_remove(struct vhca_qp_heap *h, uint32_t i)
{
	struct vhca_qp *qp = h->qps[i];

	h->len--;
	if (i != h->len) {
		h->qps[i] = h->qps[h->len];
		h->qps[i]->heap_index = i;
		heap_down(h, i);
		heap_up(h, i);
	}
	qp->heap_index = UINT32_MAX;
}

void vhca_qp_timer_set(struct vhca_qp *qp, int kind, uint64_t deadline_ns)
{
	struct vhca_qp_heap *h = &qp->dctx->timers;

	qp->timer = (enum vhca_qp_timer)kind;
	qp->timer_deadline = deadline_ns;
	if (qp->heap_index == UINT32_MAX) {
		if (h->len == h->cap) {
			uint32_t cap = h->cap ? 2 * h->cap : 16;
			struct vhca_qp **grown =
				realloc(h->qps, cap * sizeof(*grown));

			if (!grown) {
				/* No memory: act as if it fired at once. */
				qp->timer_deadline = 0;
				vhca_qp_schedule(qp);
				return;
			}
			h->qps = grown;
			h->cap = cap;
		}
		h->qps[h->len] = qp;
		qp->heap_index = h->len++;
	}
	heap_down(h, qp->heap_index);
	heap_up(h, qp->heap_index);
}

void vhca_qp_timer_cancel(struct vhca_qp *qp)
{
	if (qp->heap_index != UINT32_MAX)
		heap_remove(&qp->dctx->timers, qp->heap_index);
	qp->timer = VHCA_TIMER_NONE;
}

uint64_t vhca_transport_deadline(struct vhca_dctx *dctx)
{
	return dctx->timers.len ? dctx->timers.qps[0]->timer_deadline : 0;
}

/* Fires every timer due by @now. */
static void fire_timers(struct vhca_dctx *dctx, uint64_t now)
{
	struct vhca_qp_heap *h = &dctx->timers;

	while (h->len && h->qps[0]->timer_deadline <= now) {
		struct vhca_qp *qp = h->qps[0];

		heap_remove(h, 0);
		vhca_completer_timer(qp);
	}
}

/* ---- doorbells ---------------------------------------------------------- */

/* Every QP of the context, once: the FIFO lost entries. */
static void schedule_all_qps(struct vhca_dctx *dctx)
{
	for (uint32_t h = 0; h < dctx->objs.used; h++) {
		struct vhca_qp *qp = vhca_obj_lookup(dctx, VHCA_OBJ_QP, h);

		if (qp) {
			atomic_store((_Atomic uint32_t *)&qp->db->queued, 0);
			vhca_qp_schedule(qp);
		}
	}
}

static void pop_entry(struct vhca_dctx *dctx, uint32_t entry)
{
	struct vhca_qp *qp;

	/*
	 * An SRQ doorbell needs nothing here: a requester that met an empty
	 * SRQ waits on its RNR timer, as on the wire.
	 */
	if ((entry & 1) == VHCA_DB_SRQ)
		return;
	/* A handle that is not a live QP of this context is ignored. */
	qp = vhca_obj_lookup(dctx, VHCA_OBJ_QP, entry >> 1);
	if (!qp)
		return;
	if (__builtin_expect(vhca_trace_enabled, 0))
		fprintf(stderr, "vhca: qp %06x doorbell sq_head %u sq_tail %u\n",
			qp->qpn, atomic_load((_Atomic uint32_t *)&qp->db->sq_head),
			qp->sq_tail);
	/* Clear first, then look: a doorbell after this pushes again. */
	atomic_store((_Atomic uint32_t *)&qp->db->queued, 0);
	atomic_thread_fence(memory_order_seq_cst);
	vhca_qp_schedule(qp);
}

/* Pops the context's doorbell FIFO. */
static void drain_fifo(struct vhca_dctx *dctx)
{
	struct vhca_ctx_page *page = dctx->ctx_page;
	_Atomic uint32_t *head_p = (_Atomic uint32_t *)&page->fifo_head;
	_Atomic uint32_t *ovf_p = (_Atomic uint32_t *)&page->overflow;
	uint32_t head = atomic_load_explicit(head_p, memory_order_acquire);

	if (head - dctx->fifo_tail > VHCA_DB_FIFO_LEN) {
		/* Garbage head: resynchronise and scan, like an overflow. */
		dctx->fifo_tail = head;
		atomic_store(ovf_p, 1);
	}
	while (dctx->fifo_tail != head) {
		uint32_t entry = atomic_load_explicit(
			(_Atomic uint32_t *)&page->fifo[dctx->fifo_tail %
							VHCA_DB_FIFO_LEN],
			memory_order_relaxed);

		dctx->fifo_tail++;
		pop_entry(dctx, entry);
	}
	atomic_store_explicit((_Atomic uint32_t *)&page->fifo_tail,
			      dctx->fifo_tail, memory_order_release);
	if (atomic_load(ovf_p) && atomic_exchange(ovf_p, 0))
		schedule_all_qps(dctx);
}

/* ---- completions and flushes ----------------------------------------- */

static uint32_t outstanding(uint32_t head, uint32_t tail, uint32_t count)
{
	/* A scribbled head flushes at most one ring's worth. */
	return head - tail > count ? count : head - tail;
}

static void advance_sq(struct vhca_qp *qp)
{
	qp->sq_tail++;
	atomic_store_explicit((_Atomic uint32_t *)&qp->db->sq_tail,
			      qp->sq_tail, memory_order_release);
}

void vhca_complete_send(struct vhca_qp *qp, struct vhca_swqe *w,
			enum ibv_wc_status status)
{
	const struct vhca_wr_info *info = w->info;
	struct vhca_cqe cqe = {
		.wr_id = w->hdr.wr_id,
		.status = status,
		.opcode = info ? info->wc_opcode : IBV_WC_SEND,
		.byte_len = status == IBV_WC_SUCCESS ? w->len : 0,
		.qp_num = qp->qpn,
	};

	advance_sq(qp);
	/*
	 * A WQE answered while it was still being sent (a NAK for one of its
	 * first packets) is no longer the one being sent: [sq_tail, cur)
	 * stays a range.
	 */
	if ((int32_t)(qp->req.cur - qp->sq_tail) < 0)
		qp->req.cur = qp->sq_tail;
	if (status == IBV_WC_SUCCESS && !qp->sq_sig_all &&
	    !(w->hdr.flags & VHCA_WQE_SIGNALED))
		return;
	vhca_cq_push(qp->send_cq, &cqe, false);
	if (status != IBV_WC_SUCCESS)
		vhca_qp_set_error(qp);	/* the rest is flushed */
}

/* A flush completion for send WQE @wr_id of opcode @opcode. */
static void flush_send(struct vhca_qp *qp, uint64_t wr_id, uint8_t opcode)
{
	const struct vhca_wr_info *info = vhca_wr_info(opcode);
	struct vhca_cqe cqe = {
		.wr_id = wr_id,
		.status = IBV_WC_WR_FLUSH_ERR,
		.opcode = info ? info->wc_opcode : IBV_WC_SEND,
		.qp_num = qp->qpn,
	};

	advance_sq(qp);
	vhca_cq_push(qp->send_cq, &cqe, false);
}

void vhca_transport_flush(struct vhca_qp *qp)
{
	struct vhca_cqe cqe = { .status = IBV_WC_WR_FLUSH_ERR,
				.qp_num = qp->qpn };
	uint32_t n;

	qp->flush_pending = false;
	vhca_qp_timer_cancel(qp);
	/* Started WQEs complete from our copies, the rest from the ring. */
	while (qp->req.wqes && qp->sq_tail != qp->req.next) {
		struct vhca_swqe *w = vhca_req_wqe(qp, qp->sq_tail);

		flush_send(qp, w->hdr.wr_id, w->hdr.opcode);
	}
	qp->req.cur = qp->req.next = qp->sq_tail;
	n = qp->sq_count ?
		    outstanding(atomic_load((_Atomic uint32_t *)&qp->db->sq_head),
				qp->sq_tail, qp->sq_count) :
		    0;
	while (n--) {
		struct vhca_send_wqe w;

		memcpy(&w, qp->sq + (size_t)(qp->sq_tail & (qp->sq_count - 1)) *
					    qp->sq_stride,
		       sizeof(w));
		flush_send(qp, w.wr_id, w.opcode);
	}
	qp->req.cur = qp->req.next = qp->sq_tail;
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

/* ---- the turn ---------------------------------------------------------- */

/* Requests go to the responder, everything else to the completer. */
static void dispatch(struct vhca_dctx *dctx, struct vhca_pkt *pkt)
{
	const struct vhca_pkt_info *info = vhca_pkt_info(pkt->opcode);
	struct vhca_qp *qp = vhca_qp_of(dctx, pkt->dest_qpn);

	if (!qp || !info) {
		vhca_pkt_free(pkt);	/* gone, or a reserved opcode */
		return;
	}
	if (info->flags & VHCA_PKT_REQ)
		vhca_responder_recv(qp, pkt);
	else
		vhca_completer_recv(qp, pkt);
	/*
	 * The FIFO was drained at the start of the turn, so a flag still set
	 * may be a clear the guest lost (requester.c, rearm_doorbell): any
	 * packet for the QP lets its requester look at sq_head and, dry,
	 * clear the flag.  At worst a visit too many.
	 */
	if (qp->sq_count &&
	    atomic_load_explicit((_Atomic uint32_t *)&qp->db->queued,
				 memory_order_relaxed))
		vhca_qp_schedule(qp);
}

/* Packets of the inbox, oldest first, within the budget. */
static void receive(struct vhca_dctx *dctx, struct vhca_turn_budget *budget)
{
	bool consumed = false;

	if (!dctx->pending_head) {
		struct vhca_pkt *list = vhca_inbox_take(dctx), *last = list;

		while (last && last->next)
			last = last->next;
		dctx->pending_head = list;
		dctx->pending_tail = last;
	}
	while (dctx->pending_head && vhca_budget_left(budget) && !dctx->dead) {
		struct vhca_pkt *pkt = dctx->pending_head;

		dctx->pending_head = pkt->next;
		if (!dctx->pending_head)
			dctx->pending_tail = NULL;
		pkt->next = NULL;
		vhca_budget_spend(budget, pkt->len);
		vhca_inbox_consumed(dctx, pkt);
		consumed = true;
		dispatch(dctx, pkt);	/* takes the packet */
	}
	if (consumed)
		vhca_inbox_wake_senders(dctx);
}

/* Send work: each QP queued now gets one visit. */
static void send(struct vhca_dctx *dctx, struct vhca_turn_budget *budget)
{
	struct vhca_qp *stop = dctx->run_tail, *qp;

	while (vhca_budget_left(budget) && !dctx->dead &&
	       (qp = run_pop(dctx))) {
		bool last = qp == stop;

		/* In ERR, every visit flushes what has been posted since. */
		if (qp->flush_pending || qp->state == IBV_QPS_ERR)
			vhca_transport_flush(qp);
		else if (vhca_requester_run(qp, budget))
			vhca_qp_schedule(qp);	/* more: after the others */
		if (last)
			break;
	}
}

bool vhca_transport_turn(struct vhca_dctx *dctx)
{
	struct vhca_turn_budget budget = { .bytes = VHCA_TURN_BYTES,
					   .pkts = VHCA_TURN_PKTS };

	if (dctx->owner_exited)
		vhca_dctx_owner_gone(dctx);
	if (dctx->dead) {
		vhca_inbox_purge(dctx);
		return false;
	}
	if (dctx->ctx_page)
		drain_fifo(dctx);
	vhca_flow_resume(dctx);
	receive(dctx, &budget);
	fire_timers(dctx, vhca_now_ns());
	send(dctx, &budget);
	if (dctx->dead)
		return false;
	return dctx->run_head || dctx->pending_head ||
	       __atomic_load_n(&dctx->inbox_head, __ATOMIC_RELAXED);
}
