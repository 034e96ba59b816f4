/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A device context: what the device keeps for one user context of a
 * function (on real hardware, a ucontext's UAR page and the objects made
 * through it).  It owns those objects (PDs, MRs, CQs, QPs, SRQs) in a
 * table addressed by handles, the doorbell page, the DMA space of the
 * owner's memory, and its share of the engine: a turn lock, an inbox of
 * packets addressed to its QPs, the QPs that have work, and their timers.
 *
 * The driver half (driver/context.c) creates one per GET_CONTEXT and
 * issues every object command against it; the engine (engine.h) runs its
 * turns.  Objects of one context are only ever touched by that context's
 * turn or by a command on it, both under dctx->lock, so the data path
 * needs no other lock on them; contexts meet only through packets.
 *
 * Locking, in order: the driver's uctx->lock (one command at a time per
 * context) -> dctx->lock (the turn lock: held by an engine turn of this
 * context, which may wait on this context's own memory, and by commands
 * on it) -> leaf locks: the inbox lock, the QPN table, the engine's run
 * queue and timers, the driver's channel locks, pf->lock shared.  No one
 * holds dctx->lock of one context and touches another context's memory.
 */
#ifndef VHCA_DEVICE_DCTX_H
#define VHCA_DEVICE_DCTX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <vhca/queue.h>

#include "dma.h"
#include "pf.h"
#include "qmem.h"

struct vhca_cq;
struct vhca_dctx;
struct vhca_key_slot;
struct vhca_mr;
struct vhca_pkt;
struct vhca_qp;

enum vhca_obj_type {
	VHCA_OBJ_FREE = 0,
	VHCA_OBJ_PD,
	VHCA_OBJ_MR,
	VHCA_OBJ_CQ,
	VHCA_OBJ_QP,
	VHCA_OBJ_SRQ,
};

/* Handle table: a handle is an index; free slots chain through next_free. */
struct vhca_obj_slot {
	enum vhca_obj_type type;
	uint32_t next_free;
	void *obj;
};

struct vhca_obj_table {
	struct vhca_obj_slot *slots;
	uint32_t capacity;
	uint32_t used;		/* slots [0, used) were ever handed out */
	uint32_t free_head;	/* VHCA_NO_HANDLE when empty */
};

#define VHCA_NO_HANDLE UINT32_MAX

struct vhca_pd {
	uint64_t pdn;		/* unique PD number, for the engine */
	uint32_t handle;
	unsigned int num_mrs;	/* DEALLOC_PD is EBUSY while nonzero */
	unsigned int num_qps;	/* likewise (QPs and SRQs on it) */
};

/*
 * Where the device's events go (the events of include/vhca/devcmd.h):
 * the driver's event files for a host process (driver/context.c), the
 * VF's event ring for a VM (vf_port.c).  Objects are named by handle:
 * what the driver keeps about them (channels, counts of events read for
 * DESTROY's events_reported) is the driver's, as the kernel's uverbs
 * layer keeps it.  Called from turns and commands with dctx->lock held;
 * must not block and must not take dctx->lock.
 */
struct vhca_event_sink {
	/*
	 * CQ @cq_handle, bound to the driver's completion channel
	 * @channel, was armed and has a completion.  0 if posted.
	 */
	int (*comp)(struct vhca_dctx *dctx, uint32_t cq_handle,
		    uint32_t channel, uint64_t user_handle);
	/* An affiliated asynchronous event (enum ibv_event_type). */
	void (*async)(struct vhca_dctx *dctx, uint32_t handle,
		      uint64_t user_handle, uint32_t event_type);
	/*
	 * Optional, of the function rather than a context: QP1 of @fn
	 * received MADs (gsi.h).  Called with pf->lock held shared, from
	 * the sender's command; must not block.
	 */
	void (*mad)(struct vhca_dev *fn);
};

/* Engine scheduling state (engine.c). */
enum vhca_dctx_sched {
	VHCA_SCHED_IDLE = 0,
	VHCA_SCHED_QUEUED,	/* on the run queue */
	VHCA_SCHED_RUNNING,	/* a thread is in its turn */
	VHCA_SCHED_AGAIN,	/* running, and more work arrived */
};

/* A min-heap of QPs by timer deadline. */
struct vhca_qp_heap {
	struct vhca_qp **qps;
	uint32_t len, cap;
};

/*
 * What a context has received and not yet consumed (its inbox and its
 * turn's pending list): an RC request beyond the credit (counted over RC
 * requests alone, so other traffic cannot use it up) waits at its sender
 * (switch.h: flow control); anything beyond the maximum is dropped (UD,
 * UC, responses).
 */
#define VHCA_INBOX_MAX_PKTS 4096u
#define VHCA_INBOX_MAX_BYTES (8u << 20)
#define VHCA_INBOX_CREDIT_PKTS 1024u
#define VHCA_INBOX_CREDIT_BYTES (256u << 10)

struct vhca_dctx {
	struct vhca_dev *dev;
	atomic_uint refcount;		/* the owner's, and each enqueuer's */
	struct vhca_dma_space *space;	/* the owner's memory (referenced) */
	const struct vhca_event_sink *sink;
	void *sink_arg;
	uint64_t cookie;		/* the driver's, from OPEN_CONTEXT */
	uint32_t id;			/* in its port (devcmd.h) */

	pthread_mutex_t lock;		/* the turn lock (see above) */
	bool dead;			/* the owner is gone: silent */
	bool owner_exited;		/* its pidfd fired (engine.c) */
	struct vhca_obj_table objs;
	/* MR keys of this context (mr.c) */
	struct vhca_key_slot *key_slots;
	size_t key_cap, key_count;

	/* doorbells (include/vhca/queue.h) */
	struct vhca_qmem ctx_qmem;
	struct vhca_ctx_page *ctx_page;
	int wake_fd;			/* daemon-side eventfd */
	uint32_t fifo_tail;		/* our copy: the page's is advisory */

	/* transport: the QPs with send-side work, and the timers */
	struct vhca_qp *run_head, *run_tail;
	struct vhca_qp_heap timers;

	/*
	 * inbox: packets for our QPs, in arrival order; a turn moves them to
	 * its own pending list (dctx->lock) when that is empty, and takes
	 * from there within its budget.
	 */
	struct vhca_pkt *pending_head, *pending_tail;
	pthread_mutex_t inbox_lock;
	struct vhca_pkt *inbox_head, *inbox_tail;
	/* received, not yet consumed: the inbox and the pending list */
	atomic_uint queued_pkts;
	_Atomic uint64_t queued_bytes;
	/* of which RC requests, held to the credit (switch.c) */
	atomic_uint credit_pkts;
	_Atomic uint64_t credit_bytes;
	/* flow control (switch.c) */
	struct vhca_qp *flow_waiters;	/* senders waiting for room (inbox_lock) */
	struct vhca_qp *blocked_head;	/* our QPs waiting for room elsewhere */
	atomic_bool flow_resumed;	/* some of them may go on */

	/* engine (engine.c) */
	atomic_uint cmd_waiting;	/* commands waiting for the lock */
	_Atomic int sched;		/* enum vhca_dctx_sched */
	struct vhca_dctx *runq_next;
	bool attached;			/* watched by the engine */
	bool polled;			/* in the engine's active set */
	struct vhca_dctx *active_next, *active_prev;
	uint64_t last_work_ns;
	int64_t heap_index;		/* in the engine's timer heap, or -1 */
	uint64_t heap_deadline;
	uint32_t reg_slot;		/* in the engine's epoll registry */
	int owner_pidfd;		/* watched: the owner exited, or -1 */
};

/*
 * A new device context of @dev for memory @space (referenced), events to
 * @sink.  The doorbell page memory @ctx_qmem and @wake_fd (taken over,
 * even on failure) may be empty/-1: a context without a data path.
 * -ENOMEM, or -EUSERS when the function's context quota is used up.
 */
int vhca_dctx_create(struct vhca_dev *dev, struct vhca_dma_space *space,
		     const struct vhca_event_sink *sink, void *sink_arg,
		     struct vhca_qmem *ctx_qmem, int wake_fd,
		     struct vhca_dctx **out);
/*
 * Destroys every object (QPs first, then SRQs, CQs, MRs, PDs), detaches
 * from the engine and drops the owner's reference: the memory goes with
 * the last packet addressed to it.
 */
void vhca_dctx_destroy(struct vhca_dctx *dctx);

void vhca_dctx_get(struct vhca_dctx *dctx);
void vhca_dctx_put(struct vhca_dctx *dctx);

/*
 * Commands announce themselves, so that a context whose turns follow one
 * another without a pause cannot keep its commands waiting (pthread
 * mutexes are not fair): the engine lets a waiting command in first.
 */
static inline void vhca_dctx_lock(struct vhca_dctx *dctx)
{
	atomic_fetch_add(&dctx->cmd_waiting, 1);
	pthread_mutex_lock(&dctx->lock);
	atomic_fetch_sub(&dctx->cmd_waiting, 1);
}

static inline void vhca_dctx_unlock(struct vhca_dctx *dctx)
{
	pthread_mutex_unlock(&dctx->lock);
}

/*
 * The owner is gone (it exited, or exec'd): its QPs answer nothing and
 * send nothing from now on, as a node that lost power.  dctx->lock held.
 */
void vhca_dctx_owner_gone(struct vhca_dctx *dctx);

/* Handle table; caller holds dctx->lock. */
int vhca_obj_insert(struct vhca_dctx *dctx, enum vhca_obj_type type,
		    void *obj, uint32_t *handle);
/* The object, or NULL if @handle is not a live object of @type. */
void *vhca_obj_lookup(struct vhca_dctx *dctx, enum vhca_obj_type type,
		      uint32_t handle);
void vhca_obj_erase(struct vhca_dctx *dctx, uint32_t handle);

/* PDs; these take dctx->lock. */
int vhca_pd_alloc(struct vhca_dctx *dctx, uint32_t *handle);
/* -EINVAL for a bad handle, -EBUSY while MRs or QPs use it. */
int vhca_pd_dealloc(struct vhca_dctx *dctx, uint32_t handle);
/* 0 if @handle is a live PD of the context, else -EINVAL. */
int vhca_pd_check(struct vhca_dctx *dctx, uint32_t handle);

/*
 * Queue memory of this context's function: @bytes more of it, within the
 * function's quota (-ENOMEM beyond), and back.
 */
int vhca_dctx_charge_queue(struct vhca_dctx *dctx, uint64_t bytes);
void vhca_dctx_uncharge_queue(struct vhca_dctx *dctx, uint64_t bytes);

#endif /* VHCA_DEVICE_DCTX_H */
