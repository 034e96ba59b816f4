/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Memory regions.  REG_MR checks the range against the owner's mappings
 * (we do not pin: a later munmap by the guest makes transfers fail, and
 * the engine turns that into a protection error completion) and gives the
 * MR a key.  lkey == rkey == (24-bit index << 8) | 8-bit variant, drawn
 * from dev->next_key, so a key comes back only after 2^32 registrations
 * on that device, like an mlx5 mkey.  Keys are unique per device among
 * live MRs; a per-device key -> MR map serves the data path.
 */
#ifndef VHCA_MR_H
#define VHCA_MR_H

#include <stdatomic.h>
#include <stdint.h>

#include <rdma/ib_user_verbs.h>

#include "context.h"
#include "dma.h"

struct vhca_mr {
	atomic_uint refcount;		/* the context's + each lookup's */
	struct vhca_dev *dev;
	struct vhca_dma_peer *peer;	/* whose memory it is */
	struct vhca_pd *pd;		/* while registered; context use */
	uint64_t pdn;			/* PD identity for the engine */
	uint64_t addr;			/* guest virtual address */
	uint64_t iova;			/* hca_va: the address WRs use */
	uint64_t length;
	uint32_t access;		/* IB_UVERBS_ACCESS_* as registered */
	uint32_t lkey;
	uint32_t rkey;
	uint32_t handle;
};

/* 0, -EINVAL or -EOPNOTSUPP, as ib_check_mr_access(). */
int vhca_mr_check_access(uint32_t access);

/*
 * REG_MR: caller holds uctx->lock and NOT the engine lock (the maps
 * check runs without it; the function takes it to publish the MR).
 */
int vhca_mr_reg(struct vhca_ucontext *uctx, const struct ib_uverbs_reg_mr *cmd,
		struct ib_uverbs_reg_mr_resp *resp);
/*
 * DEREG_MR: caller holds uctx->lock and the engine lock, which is what
 * guarantees no transfer touches the memory once this returns (mr.c).
 * -EINVAL if @handle is not a live MR of the context.
 */
int vhca_mr_dereg(struct vhca_ucontext *uctx, uint32_t handle);
/* Unconditional teardown (context release); locks as DEREG_MR. */
void vhca_mr_destroy(struct vhca_ucontext *uctx, struct vhca_mr *mr);

/*
 * Data path: the live MR of @dev with lkey/rkey @key, referenced, or NULL.
 * The caller checks PD, access and bounds, and drops it with vhca_mr_put.
 */
struct vhca_mr *vhca_mr_lookup(const struct vhca_dev *dev, uint32_t key);
void vhca_mr_put(struct vhca_mr *mr);

#endif /* VHCA_MR_H */
