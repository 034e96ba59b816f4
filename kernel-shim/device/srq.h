/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Shared receive queues: a receive ring and doorbell in a guest memfd
 * (include/vhca/queue.h, struct vhca_srq_db), consumed by the responder
 * of every QP attached to it.  srq_limit arming: once armed by
 * MODIFY_SRQ, IBV_EVENT_SRQ_LIMIT_REACHED fires once when the posted but
 * unconsumed WQEs drop below the limit, and disarms.
 *
 * Locking: dctx->lock of the owning context, as for QPs and CQs.
 */
#ifndef VHCA_SRQ_H
#define VHCA_SRQ_H

#include <stdbool.h>
#include <stdint.h>

#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

#include "dctx.h"
#include "qmem.h"

struct vhca_srq {
	struct vhca_dctx *dctx;
	uint32_t handle;
	uint32_t srqn;
	uint64_t user_handle;
	struct vhca_pd *pd;
	struct vhca_qmem qmem;
	uint8_t *ring;
	struct vhca_srq_db *db;
	uint32_t wqe_count, stride;
	uint32_t max_wr, max_sge;
	uint32_t tail;			/* consumed (free-running) */
	uint32_t srq_limit;
	bool armed;
	unsigned int num_qps;		/* destroy is EBUSY while nonzero */
	bool charged;			/* counted in the function's quota */
};

/* Where the ring is in its queue memory (udata). */
struct vhca_srq_layout {
	uint32_t wqe_count, stride;
	uint64_t ring_offset, db_offset;
};

/* These take dctx->lock; @qmem is taken over, even on failure. */
int vhca_srq_create(struct vhca_dctx *dctx,
		    const struct ib_uverbs_create_srq *cmd,
		    struct vhca_qmem *qmem,
		    const struct vhca_srq_layout *layout,
		    struct ib_uverbs_create_srq_resp *resp);
int vhca_srq_modify(struct vhca_dctx *dctx,
		    const struct ib_uverbs_modify_srq *cmd);
int vhca_srq_query(struct vhca_dctx *dctx, uint32_t handle,
		   struct ib_uverbs_query_srq_resp *resp);
int vhca_srq_destroy(struct vhca_dctx *dctx, uint32_t handle);
/* Unconditional teardown; dctx->lock held. */
void vhca_srq_free(struct vhca_srq *srq);

/* A WQE was consumed: advance and fire the limit event if due. */
void vhca_srq_consumed(struct vhca_srq *srq);

#endif /* VHCA_SRQ_H */
