/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Queue pairs: creation, attributes and the IBTA state machine, and the
 * per-QP transport state of the requester, completer and responder
 * (transport.h).  Rings and doorbells live in guest memory
 * (include/vhca/queue.h); the indices we own (sq_tail, rq_tail, PSNs)
 * are kept here, never trusted from guest memory.
 *
 * Locking: dctx->lock of the owning context covers every field after
 * creation (dctx.h).
 */
#ifndef VHCA_DEVICE_QP_H
#define VHCA_DEVICE_QP_H

#include <stdbool.h>
#include <stdint.h>

#include <rdma/ib_user_verbs.h>
#include <vhca/opcode.h>
#include <vhca/queue.h>

#include "dctx.h"
#include "qmem.h"

struct vhca_cq;
struct vhca_srq;

/* Address vector of an RC/UC QP, as MODIFY_QP set it. */
struct vhca_qp_av {
	uint16_t dlid;
	uint8_t sl;
	uint8_t is_global;
	uint8_t hop_limit;
	uint8_t sgid_index;
	uint8_t traffic_class;
	uint32_t flow_label;
	uint8_t dgid[16];
};

struct vhca_qp_attrs {
	uint8_t port_num;
	uint16_t pkey_index;
	uint32_t qkey;
	uint32_t access_flags;		/* IB_UVERBS_ACCESS_REMOTE_* */
	uint32_t dest_qpn;
	uint32_t rq_psn, sq_psn;	/* 24 bit */
	uint8_t path_mtu;		/* enum ibv_mtu */
	uint8_t path_mig_state;
	uint8_t max_rd_atomic, max_dest_rd_atomic;
	uint8_t min_rnr_timer;
	uint8_t timeout, retry_cnt, rnr_retry;
	uint8_t en_sqd_async_notify;
	struct vhca_qp_av av;
};

/* Atomic results a responder keeps for duplicates (max_dest_rd_atomic). */
#define VHCA_RESP_ATOMICS 16u

/* Send WQEs the requester has in flight at most (started, not done). */
#define VHCA_REQ_WINDOW 16u
/* The largest body of a send WQE we copy: 16 SGEs, or inline data. */
#define VHCA_SWQE_BODY 256u

/* A send WQE the requester has started: its validated copy. */
struct vhca_swqe {
	struct vhca_send_wqe hdr;
	uint8_t body[VHCA_SWQE_BODY];	/* SGEs, or inline bytes */
	const struct vhca_wr_info *info;
	uint32_t len;			/* message length */
	uint32_t first_psn;
	uint32_t npsn;			/* PSNs the message takes */
	uint32_t sent;			/* bytes sent (SEND/WRITE progress) */
	bool started;			/* its first packet has gone out */
	bool done;			/* every packet has gone out */
	uint8_t error;			/* enum ibv_wc_status it fails with */
	uint32_t resp_pkts;		/* READ: response PSNs received */
};

/* What the QP's one timer waits for (RC requester). */
enum vhca_qp_timer {
	VHCA_TIMER_NONE = 0,
	VHCA_TIMER_ACK,			/* retransmit unless answered */
	VHCA_TIMER_RNR,			/* resend after an RNR NAK */
};

/*
 * Requester and completer state (requester.c, completer.c).  SQ indices,
 * free-running: [sq_tail, cur) are sent and await completion, [cur, next)
 * are fetched (copied, with PSNs) and not yet sent in full.
 */
struct vhca_req {
	struct vhca_swqe *wqes;		/* VHCA_REQ_WINDOW, by SQ index */
	uint32_t cur;			/* SQ index of the WQE being sent */
	uint32_t next;			/* SQ index of the next WQE to fetch */
	uint32_t psn;			/* PSN of the next WQE fetched */
	unsigned int retry_left, rnr_left;
	bool rnr_wait;			/* hold sending until the RNR timer */
	/*
	 * Flow control (switch.c): a request the destination had no room
	 * for is held here, and the QP waits on that context's list of
	 * senders (flow_dst, referenced; flow_next under its inbox_lock)
	 * and on its own context's blocked list until room is made.
	 */
	struct vhca_pkt *held;
	unsigned int held_timeouts;	/* ACK timeouts with nothing leaving */
	struct vhca_dctx *flow_dst;
	struct vhca_qp *flow_next;
	bool flow_listed;		/* on flow_dst's waiters */
	atomic_bool flow_resume;	/* flow_dst made room */
	bool blocked;			/* on our context's blocked list */
	struct vhca_qp *blocked_next, *blocked_prev;
};

/* Responder state (responder.c). */
struct vhca_resp {
	uint32_t epsn;			/* next PSN expected */
	uint32_t msn;			/* messages completed */
	bool nak_seq_sent;		/* one sequence NAK per gap */
	uint8_t msg_op;			/* SEND_FIRST/WRITE_FIRST in progress, or 0xff */
	bool uc_drop;			/* UC: skip to the next FIRST/ONLY */
	/* a SEND being received: its receive WQE, consumed at FIRST */
	uint64_t recv_wr_id;
	uint32_t recv_off;
	uint8_t recv_num_sge;
	struct vhca_sge recv_sge[16];
	uint16_t recv_pkey_index;
	/* a WRITE being placed */
	uint32_t write_rkey;
	uint64_t write_va;
	uint32_t write_left;
	uint32_t write_len;		/* its RETH length */
	/* a READ being answered, a segment per step */
	bool read_active;
	uint32_t read_rkey;
	uint64_t read_va;
	uint32_t read_left;
	uint32_t read_psn;		/* PSN of the next response */
	bool read_first;		/* the next response is the first */
	/* requests that arrived while a READ was answered, in order */
	struct vhca_pkt *backlog_head, *backlog_tail;
	uint32_t backlog_len;
	/* atomics already done, for a duplicate request (o9-20) */
	struct {
		uint32_t psn;
		uint64_t orig;
		bool valid;
	} atomics[VHCA_RESP_ATOMICS];
	unsigned int atomic_next;
};

/* Requests a QP holds back at most while it answers a READ. */
#define VHCA_RESP_BACKLOG_MAX 256u

struct vhca_qp {
	struct vhca_dctx *dctx;
	uint32_t handle;
	uint32_t qpn;
	uint64_t user_handle;
	uint8_t type;			/* IB_UVERBS_QPT_* = IBV_QPT_* */
	uint8_t state;			/* IBV_QPS_* */
	bool sq_sig_all;
	struct vhca_pd *pd;
	struct vhca_cq *send_cq, *recv_cq;
	struct vhca_srq *srq;

	struct vhca_qmem qmem;
	uint8_t *sq, *rq;
	struct vhca_qp_db *db;
	uint32_t sq_count, sq_stride, rq_count, rq_stride;
	uint32_t max_send_wr, max_recv_wr;
	uint32_t max_send_sge, max_recv_sge, max_inline;

	struct vhca_qp_attrs attr;

	/* engine state */
	uint32_t sq_tail, rq_tail;	/* completed / consumed (free-running) */
	bool queued;			/* on the context's run list */
	struct vhca_qp *run_next;
	struct vhca_qp *qpn_next;	/* QPN hash chain */
	enum vhca_qp_timer timer;
	uint64_t timer_deadline;	/* CLOCK_MONOTONIC ns, when timer */
	uint32_t heap_index;		/* in dctx->timers, or UINT32_MAX */
	bool charged;			/* counted in the function's quota */
	bool last_wqe_reported;
	uint16_t mcast_count;		/* multicast groups attached (mcast.h) */
	bool flush_pending;		/* ERR: WQEs to flush on the next visit */
	bool resp_pending;		/* the responder has work (a READ) */
	struct vhca_req req;
	struct vhca_resp resp;
};

/* CREATE_QP core fields, legacy or extended. */
struct vhca_qp_create_args {
	uint64_t user_handle;
	uint32_t pd_handle, send_cq_handle, recv_cq_handle, srq_handle;
	uint32_t max_send_wr, max_recv_wr, max_send_sge, max_recv_sge;
	uint32_t max_inline_data;
	uint8_t sq_sig_all, qp_type, is_srq;
	uint32_t create_flags;
};

/* Where a QP's rings are in its queue memory (udata). */
struct vhca_qp_layout {
	uint64_t sq_offset;
	uint32_t sq_wqe_count, sq_stride;
	uint64_t rq_offset;
	uint32_t rq_wqe_count, rq_stride;
	uint64_t db_offset;
};

/*
 * CREATE_QP with its queue memory @qmem (taken over, even on failure).
 * Takes dctx->lock.
 */
int vhca_qp_create(struct vhca_dctx *dctx,
		   const struct vhca_qp_create_args *args,
		   struct vhca_qmem *qmem, const struct vhca_qp_layout *layout,
		   struct ib_uverbs_create_qp_resp *resp);
/* Takes dctx->lock.  No event of the QP is posted once it returns. */
int vhca_qp_destroy(struct vhca_dctx *dctx, uint32_t handle);
int vhca_qp_modify(struct vhca_dctx *dctx,
		   const struct ib_uverbs_modify_qp *cmd);
int vhca_qp_query(struct vhca_dctx *dctx, uint32_t handle,
		  struct ib_uverbs_query_qp_resp *resp);
/* Unconditional teardown; dctx->lock held. */
void vhca_qp_free(struct vhca_qp *qp);

/*
 * The live QP numbered @qpn on @dev, referencing its context (the caller
 * puts it), or NULL.  Any thread; the QPN table has its own lock.
 */
struct vhca_qp *vhca_qp_find_ref(const struct vhca_dev *dev, uint32_t qpn,
				 struct vhca_dctx **dctx);
/* The live QP @qpn of @dctx, or NULL; dctx->lock held. */
struct vhca_qp *vhca_qp_of(struct vhca_dctx *dctx, uint32_t qpn);

/*
 * Moves @qp to ERR (a completion error, a dead peer): raises nothing
 * itself; the rest is flushed on its next visit.  dctx->lock held.
 */
void vhca_qp_set_error(struct vhca_qp *qp);
/* An affiliated async event (enum ibv_event_type) of @qp. */
void vhca_qp_post_async(struct vhca_qp *qp, uint32_t event_type);

/* Is the state machine transition with this mask legal (qp_state.c)? */
bool vhca_qp_transition_ok(unsigned int cur, unsigned int next,
			   unsigned int type, uint32_t mask);

/* Path MTU in bytes (IBV_MTU_256 .. IBV_MTU_4096). */
static inline uint32_t vhca_mtu_bytes(uint8_t mtu)
{
	return mtu >= IBV_MTU_256 && mtu <= IBV_MTU_4096 ? 128u << mtu : 4096u;
}

#endif /* VHCA_DEVICE_QP_H */
