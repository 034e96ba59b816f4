/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Memory regions.  An MR is a range of its context's DMA space (dma.h)
 * with a PD, access rights and a key.  The driver checked the range
 * against the owner's mappings (the pinning a kernel would do); the device
 * does not pin, so memory the guest unmaps later fails its transfers, and
 * the transport turns that into an error completion.
 *
 * Keys: lkey == rkey, 32 random bits (arc4random) whose 24-bit index part
 * is not 0, unique among the context's live MRs.  They are capabilities:
 * nothing about one key (or one tenant's keys) tells another.  An MR is
 * found only through its own context (MRs serve QPs of their own PD, so
 * the lookup never crosses contexts), under dctx->lock.
 */
#ifndef VHCA_DEVICE_MR_H
#define VHCA_DEVICE_MR_H

#include <stdbool.h>
#include <stdint.h>

#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>

#include "dctx.h"

struct vhca_mr {
	struct vhca_dctx *dctx;
	struct vhca_pd *pd;
	uint64_t pdn;			/* PD identity for the engine */
	uint64_t addr;			/* address in the DMA space */
	uint64_t iova;			/* hca_va: the address WRs use */
	uint64_t length;
	uint32_t access;		/* IB_UVERBS_ACCESS_* as registered */
	uint32_t lkey;
	uint32_t rkey;
	uint32_t handle;
	/*
	 * A VM's MR (vm.h): the guest-physical address of each 4 KiB page
	 * from the one holding the first byte, which is at offset @addr of
	 * it.  NULL: @addr is an address of the context's space.
	 */
	uint64_t *pages;
	uint32_t npages;
};

/* 0, -EINVAL or -EOPNOTSUPP, as ib_check_mr_access(). */
int vhca_mr_check_access(uint32_t access);

/*
 * An implicit ODP MR (IBV_ODP_SUPPORT_IMPLICIT): the owner's whole
 * address space, registered as start 0, length U64_MAX, ON_DEMAND.
 */
static inline bool vhca_mr_implicit(uint64_t addr, uint64_t length,
				    uint32_t access)
{
	return (access & IB_UVERBS_ACCESS_ON_DEMAND) && !addr &&
	       length == UINT64_MAX;
}

/*
 * REG_MR's arguments as ib_uverbs_reg_mr() and ib_umem_get() check them,
 * and our size limit: 0, -EINVAL or -EOPNOTSUPP.
 */
int vhca_mr_check_args(uint64_t addr, uint64_t length, uint64_t iova,
		       uint32_t access);

/* ib_access_writable(): may the HCA modify the memory (or let others)? */
static inline bool vhca_mr_access_writable(uint32_t access)
{
	return access & (IB_UVERBS_ACCESS_LOCAL_WRITE |
			 IB_UVERBS_ACCESS_REMOTE_WRITE |
			 IB_UVERBS_ACCESS_REMOTE_ATOMIC |
			 IB_UVERBS_ACCESS_MW_BIND);
}

/*
 * REG_MR of [addr, addr + length) of the context's space, seen by WRs at
 * @iova.  The driver has checked the range already.  With @pages (a VM's
 * checked page list, taken over even on failure), @addr is the offset in
 * the first of @npages pages, which must cover the MR exactly.  Takes
 * dctx->lock.
 */
int vhca_mr_reg(struct vhca_dctx *dctx, uint32_t pd_handle, uint64_t addr,
		uint64_t length, uint64_t iova, uint32_t access,
		uint64_t *pages, uint32_t npages,
		struct ib_uverbs_reg_mr_resp *resp);
/*
 * DEREG_MR: once it returns no transfer touches the memory (transfers run
 * in turns, which hold dctx->lock).  -EINVAL if @handle is not a live MR
 * of the context.  Takes dctx->lock.
 */
int vhca_mr_dereg(struct vhca_dctx *dctx, uint32_t handle);
/* Unconditional teardown; dctx->lock held. */
void vhca_mr_destroy(struct vhca_dctx *dctx, struct vhca_mr *mr);

/*
 * REREG_MR (vhca/devcmd.h): the MR @handle gets what @flags names of
 * the rest of @in (a VM's new @pages with REREG_TRANS, taken over as by
 * vhca_mr_reg) and new keys.  All or nothing: 0, -EINVAL (no such MR
 * or PD, bad flags or range), -EOPNOTSUPP (an ODP MR, or to one).
 */
struct vhca_devcmd_rereg_mr;
int vhca_mr_rereg(struct vhca_dctx *dctx,
		  const struct vhca_devcmd_rereg_mr *in, uint64_t *pages,
		  uint32_t npages, uint32_t *lkey, uint32_t *rkey);
/* Frees the context's key map (after every MR is gone). */
void vhca_mr_map_free(struct vhca_dctx *dctx);

/* The live MR of @dctx with lkey/rkey @key, or NULL; dctx->lock held. */
struct vhca_mr *vhca_mr_find(struct vhca_dctx *dctx, uint32_t key);

struct vhca_pkt;

/*
 * Appends [iova, iova + len) of a VM's MR to @pkt's payload by reference
 * (packet.h): 0, or -EAGAIN when it cannot be (not a VM's MR, too many
 * pieces): then the caller copies.  Bounds checked by the caller.
 */
int vhca_mr_map(const struct vhca_mr *mr, uint64_t iova, uint32_t len,
		struct vhca_pkt *pkt);

/* [iova, iova + len) of the MR (bounds checked by the caller). */
int vhca_mr_read(const struct vhca_mr *mr, uint64_t iova, void *buf,
		 uint32_t len);
int vhca_mr_write(const struct vhca_mr *mr, uint64_t iova, const void *buf,
		  uint32_t len);

#endif /* VHCA_DEVICE_MR_H */
