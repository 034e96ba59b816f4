/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Completion queues: the CQE ring and doorbell record in guest memory
 * (include/vhca/queue.h), and the arming rules of completion events.
 *
 * Locking: dctx->lock of the owning context (dctx.h).
 */
#ifndef VHCA_CQ_H
#define VHCA_CQ_H

#include <stdbool.h>
#include <stdint.h>

#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

#include <vhca/devcmd.h>

#include "dctx.h"
#include "qmem.h"

struct vhca_cq {
	struct vhca_dctx *dctx;
	uint32_t handle;
	uint32_t cqn;
	uint64_t user_handle;		/* for comp and async events */
	struct vhca_qmem qmem;
	struct vhca_cqe *ring;
	struct vhca_cq_db *db;
	uint32_t cqe_count;		/* ring entries, a power of two */
	uint32_t producer;		/* our count; db->producer is a copy */
	/*
	 * The driver's completion channel its events go to, or
	 * VHCA_DEVCMD_NO_CHANNEL: the event sink's business.
	 */
	uint32_t channel;
	bool error;			/* overrun: no more CQEs */
	bool charged;			/* counted in the function's quota */
	unsigned int num_qps;		/* QPs using it: destroy is EBUSY */
};

/* CREATE_CQ core fields the device needs, legacy or extended. */
struct vhca_cq_create_args {
	uint64_t user_handle;
	uint32_t cqe;
	uint32_t comp_vector;
	uint32_t channel;		/* or VHCA_DEVCMD_NO_CHANNEL */
};

/* Where the ring is in its queue memory (udata). */
struct vhca_cq_layout {
	uint32_t cqe_count;
	uint64_t ring_offset;
	uint64_t db_offset;
};

/*
 * CREATE_CQ in queue memory @qmem (taken over, even on failure).  Takes
 * dctx->lock; *cq stays valid while the caller holds the context's
 * command lock.
 */
int vhca_cq_create(struct vhca_dctx *dctx,
		   const struct vhca_cq_create_args *args,
		   struct vhca_qmem *qmem, const struct vhca_cq_layout *layout,
		   struct vhca_cq **cq);
/*
 * -EINVAL bad handle, -EBUSY while QPs use it.  No event of the CQ is
 * posted once it returns.  Takes dctx->lock.
 */
int vhca_cq_destroy(struct vhca_dctx *dctx, uint32_t handle);
/* Unconditional teardown (context release, failed create); lock held. */
void vhca_cq_free(struct vhca_cq *cq);

/*
 * RESIZE_CQ, in two steps around the response so a failed response
 * write changes nothing (dctx->lock held from prepare to commit or abort,
 * so no CQE is produced in between).  Prepare checks the sizes as CREATE_CQ does,
 * refuses (-EINVAL) a new @cqe smaller than the CQEs the guest has not
 * consumed yet, maps the new memfd and copies those CQEs, in order, to
 * indices 0.. of the new ring; nothing visible changes.  Commit makes
 * the new ring the CQ's (producer = that count, the arm state carried
 * over) and unmaps the old one; abort drops the new one.
 */
struct vhca_cq_resize {
	struct vhca_qmem qmem;
	struct vhca_cqe *ring;
	struct vhca_cq_db *db;
	uint32_t cqe_count;
	uint32_t pending;		/* CQEs carried over */
};

/*
 * On success returns with dctx->lock held; commit or abort release it.
 * @qmem is taken over, even on failure.
 */
int vhca_cq_resize_prepare(struct vhca_dctx *dctx, uint32_t handle,
			   uint32_t cqe, struct vhca_qmem *qmem,
			   const struct vhca_cq_layout *layout,
			   struct vhca_cq **cq, struct vhca_cq_resize *next);
void vhca_cq_resize_commit(struct vhca_cq *cq, struct vhca_cq_resize *next);
void vhca_cq_resize_abort(struct vhca_cq *cq, struct vhca_cq_resize *next);

/*
 * Writes one CQE (owner bit last) and fires the comp event if armed for
 * it.  @solicited: the completion is of a solicited message.  Returns 0,
 * or -ENOSPC once the CQ is in error (overrun): the CQE is lost, as on
 * hardware, and IBV_EVENT_CQ_ERR has been reported once.
 */
int vhca_cq_push(struct vhca_cq *cq, const struct vhca_cqe *cqe,
		 bool solicited);

#endif /* VHCA_CQ_H */
