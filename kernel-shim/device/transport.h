/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The transport, as the kernel's rxe splits it: the requester turns send
 * WQEs into packets (requester.c), the responder executes the requests
 * that arrive and answers them (responder.c), the completer consumes the
 * answers and completes send WQEs (completer.c); transport.c runs a
 * context's turn around them (doorbells, inbox, timers) and holds what
 * the three share (completions, flushes, run list, timers).
 *
 * Reliability follows IBTA chapter 9.7 for RC: PSNs, one ACK per message
 * (ackreq on its last packet), go-back-N from the first unacknowledged
 * PSN on a sequence NAK or an ACK timeout (4.096 us << timeout, up to
 * retry_cnt times), RNR NAKs waiting the responder's min_rnr_timer up to
 * rnr_retry times (7: forever), duplicates re-acknowledged and atomics
 * replayed, never executed twice.  UC checks PSNs and drops out of
 * sequence; UD checks neither.
 *
 * Everything here runs in a turn of the QP's context: dctx->lock held.
 */
#ifndef VHCA_DEVICE_TRANSPORT_H
#define VHCA_DEVICE_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>

struct vhca_dctx;
struct vhca_pkt;
struct vhca_qp;
struct vhca_swqe;

/* What one turn may spend before the context yields its thread. */
struct vhca_turn_budget {
	uint64_t bytes;
	unsigned int pkts;
};

#define VHCA_TURN_BYTES (64u << 10)
#define VHCA_TURN_PKTS 64u

static inline bool vhca_budget_left(const struct vhca_turn_budget *b)
{
	return b->bytes && b->pkts;
}

static inline void vhca_budget_spend(struct vhca_turn_budget *b,
				     uint32_t bytes)
{
	b->bytes = bytes >= b->bytes ? 0 : b->bytes - bytes;
	if (b->pkts)
		b->pkts--;
}

/* One turn of @dctx; true if it has more work right now. */
bool vhca_transport_turn(struct vhca_dctx *dctx);
/* The earliest timer of the context, 0 if none. */
uint64_t vhca_transport_deadline(struct vhca_dctx *dctx);

/* The QP has send-side work (or a flush): put it on the run list. */
void vhca_qp_schedule(struct vhca_qp *qp);
void vhca_qp_unschedule(struct vhca_qp *qp);
void vhca_qp_timer_set(struct vhca_qp *qp, int kind, uint64_t deadline_ns);
void vhca_qp_timer_cancel(struct vhca_qp *qp);

/* requester.c */
/* Prepares the send side when the QP reaches RTS; -ENOMEM. */
int vhca_requester_init(struct vhca_qp *qp);
void vhca_requester_fini(struct vhca_qp *qp);
/* Sends what the SQ holds, within @budget; true if more is left. */
bool vhca_requester_run(struct vhca_qp *qp, struct vhca_turn_budget *budget);
/* Sends again from @psn on (go-back-N). */
void vhca_requester_go_back(struct vhca_qp *qp, uint32_t psn);
/* The in-flight WQE at SQ index @index. */
struct vhca_swqe *vhca_req_wqe(struct vhca_qp *qp, uint32_t index);
/*
 * The WQE at SQ index @index whose packets hold @psn and have left (the
 * one being sent counts up to where it is: a turn's budget may stop it
 * mid-message, and its first packets may be answered before the rest
 * leave), or NULL.
 */
struct vhca_swqe *vhca_req_wqe_of_psn(struct vhca_qp *qp, uint32_t psn,
				      uint32_t *index);

/* completer.c */
void vhca_completer_recv(struct vhca_qp *qp, struct vhca_pkt *pkt);
void vhca_completer_timer(struct vhca_qp *qp);

/* responder.c */
/* A request for @qp; the caller frees @pkt (it may take the payload). */
void vhca_responder_recv(struct vhca_qp *qp, struct vhca_pkt *pkt);
/* Continues a READ's responses, then the backlog; true if more. */
bool vhca_responder_run(struct vhca_qp *qp, struct vhca_turn_budget *budget);
/* The responder state a QP starts RTR with (and leaves RESET with). */
void vhca_responder_reset(struct vhca_qp *qp);

/* transport.c */
/*
 * Completes the oldest send WQE (@w, at sq_tail) with @status: a CQE if
 * it is signaled or failed; a failure takes the QP to ERR.
 */
void vhca_complete_send(struct vhca_qp *qp, struct vhca_swqe *w,
			enum ibv_wc_status status);
/* Flushes every outstanding WQE of an ERR QP: IBV_WC_WR_FLUSH_ERR. */
void vhca_transport_flush(struct vhca_qp *qp);

#endif /* VHCA_DEVICE_TRANSPORT_H */
