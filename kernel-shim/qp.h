/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Queue pairs: creation, attributes and the IBTA state machine, and the
 * per-QP engine state.  Rings and doorbells live in a guest memfd
 * (include/vhca/queue.h); free-running indices we own (sq_tail, rq_tail)
 * are kept here, never trusted from guest memory.
 *
 * Locking: the engine lock (engine.h) covers every field after creation.
 */
#ifndef VHCA_QP_H
#define VHCA_QP_H

#include <stdbool.h>
#include <stdint.h>

#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

#include "context.h"
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

/* Why the head send WQE waits, if it does. */
enum vhca_qp_wait {
	VHCA_QP_RUNNABLE = 0,
	VHCA_QP_WAIT_RNR,	/* RNR NAK: rnr_left more tries */
	VHCA_QP_WAIT_ACK,	/* no answer: retry_left more tries */
};

struct vhca_qp {
	struct vhca_ucontext *uctx;
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
	uint32_t sq_tail, rq_tail;	/* consumed (free-running) */
	uint32_t async_events_read;	/* for DESTROY's events_reported */
	bool queued;			/* on the engine's run list */
	struct vhca_qp *run_next;
	struct vhca_qp *timer_next;	/* on the timer list while waiting */
	struct vhca_qp *qpn_next;	/* QPN hash chain */
	bool head_started;		/* retry budgets set for head WQE */
	enum vhca_qp_wait wait;
	uint64_t wait_until_ns;		/* CLOCK_MONOTONIC deadline */
	unsigned int rnr_left, retry_left;
	bool last_wqe_reported;
	bool dead_peer;			/* owner process exited */
	/* responder: a multi-packet SEND in progress */
	bool resp_active;
	uint64_t resp_wr_id;
	uint32_t resp_len;
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

/* Caller holds uctx->lock and the engine lock. */
int vhca_qp_create(struct vhca_ucontext *uctx,
		   const struct vhca_qp_create_args *args,
		   const struct vhca_create_qp_cmd *ucmd,
		   struct ib_uverbs_create_qp_resp *resp);
int vhca_qp_destroy(struct vhca_ucontext *uctx, uint32_t handle,
		    struct ib_uverbs_destroy_qp_resp *resp);
void vhca_qp_free(struct vhca_qp *qp);
int vhca_qp_modify(struct vhca_ucontext *uctx,
		   const struct ib_uverbs_modify_qp *cmd);
int vhca_qp_query(struct vhca_ucontext *uctx, uint32_t handle,
		  struct ib_uverbs_query_qp_resp *resp);

/* The live QP numbered @qpn on @dev, or NULL.  Engine lock held. */
struct vhca_qp *vhca_qp_find(const struct vhca_dev *dev, uint32_t qpn);

/*
 * Moves @qp to ERR (engine side: a completion error, a dead peer):
 * raises nothing itself; the engine flushes on its next visit.
 */
void vhca_qp_set_error(struct vhca_qp *qp);
/* An affiliated async event (enum ibv_event_type) of @qp. */
void vhca_qp_post_async(struct vhca_qp *qp, uint32_t event_type);

/* Is the state machine transition with this mask legal (verbs.c)? */
bool vhca_qp_transition_ok(unsigned int cur, unsigned int next,
			   unsigned int type, uint32_t mask);

#endif /* VHCA_QP_H */
