/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Scatter/gather lists over registered memory, resolved within one turn
 * of the owning context: each segment names an MR of that context by
 * pointer, valid until the turn ends (deregistration takes dctx->lock,
 * which the turn holds), so nothing is referenced across turns and an MR
 * deregistered meanwhile simply fails the next resolution.
 */
#ifndef VHCA_DEVICE_SGL_H
#define VHCA_DEVICE_SGL_H

#include <stdint.h>

#include <vhca/queue.h>

struct vhca_dctx;
struct vhca_mr;

#define VHCA_SGL_MAX 16

struct vhca_sgl {
	unsigned int num;
	uint32_t total;
	struct {
		struct vhca_mr *mr;
		uint64_t iova;		/* the address WRs use */
		uint32_t len;
	} seg[VHCA_SGL_MAX];
};

/*
 * Appends [iova, iova + len) of the MR with @key, if it is an MR of
 * @dctx on PD @pdn that allows @access (IB_UVERBS_ACCESS_*, 0 for a local
 * read) and contains the range.  len 0 appends nothing.  0, or -EPERM.
 */
int vhca_sgl_add(struct vhca_sgl *sgl, struct vhca_dctx *dctx, uint64_t pdn,
		 uint32_t key, uint64_t iova, uint32_t len, uint32_t access);
/* Every SGE of @sges[@num] (a copy out of a ring) in turn: 0 or -EPERM. */
int vhca_sgl_from_sges(struct vhca_sgl *sgl, struct vhca_dctx *dctx,
		       uint64_t pdn, const struct vhca_sge *sges,
		       unsigned int num, uint32_t access);

/*
 * Reads/writes [off, off + len) of the list: 0, -EFAULT (not mapped, or
 * beyond the list), -ESRCH (the owner's memory is gone), -ETIMEDOUT.
 */
int vhca_sgl_read(const struct vhca_sgl *sgl, uint32_t off, void *buf,
		  uint32_t len);
int vhca_sgl_write(const struct vhca_sgl *sgl, uint32_t off, const void *buf,
		   uint32_t len);

struct vhca_pkt;

/*
 * [off, off + len) of the list as @pkt's payload by reference, if every
 * piece of it is a VM's RAM (packet.h); otherwise the payload is left
 * empty and -EAGAIN tells the caller to copy (vhca_sgl_read).
 */
int vhca_sgl_map(const struct vhca_sgl *sgl, uint32_t off, uint32_t len,
		 struct vhca_pkt *pkt);
/* Writes @pkt's payload, by value or by reference, at @off of the list. */
int vhca_sgl_write_pkt(const struct vhca_sgl *sgl, uint32_t off,
		       const struct vhca_pkt *pkt);

#endif /* VHCA_DEVICE_SGL_H */
