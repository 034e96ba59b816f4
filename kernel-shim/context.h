/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A user context: what one open of /dev/infiniband/uverbsN is to the
 * kernel (struct ib_uverbs_file + ib_ucontext).  It owns the objects the
 * guest created through it, addressed by u32 handles, and its event fds.
 *
 * Locking: uctx->lock serialises commands on one context (FUSE may run
 * several writes of one open file at once).  The channel set has its own
 * lock (channel.h); a context is initialised once and never goes back, so
 * channel commands check that under uctx->lock and then run without it.
 */
#ifndef VHCA_CONTEXT_H
#define VHCA_CONTEXT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <vhca/abi.h>

#include "channel.h"
#include "dma.h"
#include "pf.h"
#include "qmem.h"

/*
 * What the device claims and enforces, in one place: QUERY_DEVICE and
 * QUERY_PORT report these, the command path enforces the ones that
 * exist so far (max_pd, max_mr, max_mr_size per device; channels per
 * context).  Values are for a software HCA on a small host.
 */
struct vhca_limits {
	uint64_t max_mr_size;
	uint64_t page_size_cap;
	uint64_t device_cap_flags;	/* enum ibv_device_cap_flags */
	uint32_t max_qp;
	uint32_t max_qp_wr;
	uint32_t max_sge;
	uint32_t max_sge_rd;
	uint32_t max_cq;
	uint32_t max_cqe;
	uint32_t max_mr;
	uint32_t max_pd;
	uint32_t max_qp_rd_atom;
	uint32_t max_qp_init_rd_atom;
	uint32_t max_res_rd_atom;
	uint32_t atomic_cap;		/* enum ibv_atomic_cap */
	uint32_t max_mw;
	uint32_t max_ah;
	uint32_t max_srq;
	uint32_t max_srq_wr;
	uint32_t max_srq_sge;
	uint32_t max_mcast_grp;
	uint32_t max_mcast_qp_attach;
	uint32_t max_total_mcast_qp_attach;
	uint16_t max_pkeys;
	uint8_t local_ca_ack_delay;
	uint8_t phys_port_cnt;
	/* port */
	uint32_t max_msg_sz;
	uint32_t gid_tbl_len;
	uint16_t pkey_tbl_len;
	uint8_t max_mtu;		/* enum ibv_mtu */
	uint8_t max_vl_num;
	/* context */
	uint32_t num_comp_vectors;
	uint32_t max_inline_data;	/* bytes of inline send data per WQE */
	uint32_t max_comp_channels;	/* per context */
	uint32_t max_objects;		/* handles per context */
};

extern const struct vhca_limits vhca_limits;

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

struct vhca_ucontext {
	struct vhca_dev *dev;
	pthread_mutex_t lock;
	bool initialised;		/* GET_CONTEXT succeeded */
	struct vhca_dma_peer *peer;	/* the owner, once initialised */
	struct vhca_obj_table objs;
	struct vhca_channels channels;
	/*
	 * Data path (queue.h), when GET_CONTEXT supplied it: the doorbell
	 * page and the wake eventfd (daemon-side fd), -1 without.
	 */
	struct vhca_qmem ctx_qmem;
	struct vhca_ctx_page *ctx_page;
	int wake_fd;
	uint32_t fifo_tail;		/* our copy: the page's is advisory */
	bool in_engine;			/* registered with the engine */
	bool owner_dead;		/* engine saw the pidfd fire */
	/*
	 * Hears the device's provisioning changes (port state, GID, P_Key
	 * table) and posts them on the async event fd, from GET_CONTEXT's
	 * commit until the context is freed.
	 */
	struct vhca_dev_listener dev_events;
};

/* A new, uninitialised context of @dev; NULL with errno set. */
struct vhca_ucontext *vhca_ucontext_alloc(struct vhca_dev *dev);
/* Frees MRs, then PDs, then the event fds, and the context itself. */
void vhca_ucontext_free(struct vhca_ucontext *uctx);

/*
 * GET_CONTEXT in three steps, so the response can be written between
 * them: bind the caller's process and take its fds (prepare), then make
 * it live (commit; may fail with -ENOMEM, then abort) or drop everything
 * (abort).  Caller holds uctx->lock.
 */
int vhca_ucontext_prepare(struct vhca_ucontext *uctx, pid_t caller_tid,
			  const struct vhca_alloc_ucontext_cmd *cmd);
int vhca_ucontext_commit(struct vhca_ucontext *uctx);
void vhca_ucontext_abort(struct vhca_ucontext *uctx);

/*
 * May thread @caller_tid use this initialised context?  0, -EACCES for
 * another process, -EIO if the owner is gone.  Caller holds uctx->lock.
 */
int vhca_ucontext_check_caller(struct vhca_ucontext *uctx, pid_t caller_tid);

/* Handle table; caller holds uctx->lock. */
int vhca_obj_insert(struct vhca_ucontext *uctx, enum vhca_obj_type type,
		    void *obj, uint32_t *handle);
/* The object, or NULL if @handle is not a live object of @type. */
void *vhca_obj_lookup(struct vhca_ucontext *uctx, enum vhca_obj_type type,
		      uint32_t handle);
void vhca_obj_erase(struct vhca_ucontext *uctx, uint32_t handle);

/* PDs; caller holds uctx->lock. */
int vhca_pd_alloc(struct vhca_ucontext *uctx, uint32_t *handle);
/* -EINVAL for a bad handle, -EBUSY while MRs use it. */
int vhca_pd_dealloc(struct vhca_ucontext *uctx, uint32_t handle);

/*
 * Takes one unit of a device-wide resource counted in @counter, unless
 * @max are taken already.  Keeps dev->stats both exact and a limit.
 */
bool vhca_stats_reserve(atomic_uint *counter, unsigned int max);
void vhca_stats_release(atomic_uint *counter);

#endif /* VHCA_CONTEXT_H */
