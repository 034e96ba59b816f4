// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: device memory (ibv_alloc_dm, ibv_memcpy_to_dm /
 * ibv_memcpy_from_dm, ibv_reg_dm_mr).
 *
 * A software HCA has no on-chip memory: a DM allocation is pages of our
 * own (up to VHCA_MAX_DM_SIZE, include/vhca/abi.h), and an MR on it is an
 * ordinary MR over those pages at I/O virtual address 0, so the
 * zero-based addressing of DM MRs (IBV_ACCESS_ZERO_BASED, required as
 * mlx5 requires it) comes from the device's iova translation, and local
 * and remote operations reach it like any MR.  No command: the device
 * sees only the MR.  As the kernel refuses to destroy a DM that an MR
 * still uses, free_dm is EBUSY while one exists.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vhca.h"

#define VHCA_DM_ALIGN_LOG 12	/* pages: the finest alignment we give */

static struct vhca_dm *to_vdm(struct ibv_dm *dm)
{
	return vhca_container_of(dm, struct vhca_dm, ibv_dm);
}

/* [off, off + len) inside the allocation, overflow-safe. */
static bool dm_range_ok(const struct vhca_dm *dm, uint64_t off, size_t len)
{
	return off <= dm->size && len <= dm->size - off;
}

static int dm_memcpy_to(struct ibv_dm *ibdm, uint64_t off, const void *src,
			size_t len)
{
	struct vhca_dm *dm = to_vdm(ibdm);

	if (!dm_range_ok(dm, off, len))
		return EINVAL;
	memcpy(dm->addr + off, src, len);
	return 0;
}

static int dm_memcpy_from(void *dst, struct ibv_dm *ibdm, uint64_t off,
			  size_t len)
{
	struct vhca_dm *dm = to_vdm(ibdm);

	if (!dm_range_ok(dm, off, len))
		return EINVAL;
	memcpy(dst, dm->addr + off, len);
	return 0;
}

struct ibv_dm *vhca_alloc_dm(struct ibv_context *context,
			     struct ibv_alloc_dm_attr *attr)
{
	struct vhca_dm *dm;
	void *addr;

	if (attr->comp_mask || !attr->length ||
	    attr->log_align_req > VHCA_DM_ALIGN_LOG) {
		errno = EINVAL;
		return NULL;
	}
	if (attr->length > VHCA_MAX_DM_SIZE) {
		errno = ENOMEM;	/* as a device whose memory is exhausted */
		return NULL;
	}
	dm = calloc(1, sizeof(*dm));
	if (!dm)
		return NULL;
	/* Zeroed, page aligned, ours alone (not inherited by a child). */
	addr = mmap(NULL, attr->length, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED) {
		free(dm);
		errno = ENOMEM;
		return NULL;
	}
	madvise(addr, attr->length, MADV_DONTFORK);
	dm->addr = addr;
	dm->size = attr->length;
	dm->ibv_dm.context = context;
	dm->ibv_dm.memcpy_to_dm = dm_memcpy_to;
	dm->ibv_dm.memcpy_from_dm = dm_memcpy_from;
	return &dm->ibv_dm;
}

int vhca_free_dm(struct ibv_dm *ibdm)
{
	struct vhca_dm *dm = to_vdm(ibdm);

	if (atomic_load(&dm->mrs))
		return EBUSY;
	munmap(dm->addr, dm->size);
	free(dm);
	return 0;
}

struct ibv_mr *vhca_reg_dm_mr(struct ibv_pd *pd, struct ibv_dm *ibdm,
			      uint64_t dm_offset, size_t length,
			      unsigned int access)
{
	struct vhca_dm *dm = to_vdm(ibdm);
	struct vhca_mr *mr;

	if (!(access & IBV_ACCESS_ZERO_BASED) || !length ||
	    !dm_range_ok(dm, dm_offset, length) ||
	    ibdm->context != pd->context) {
		errno = EINVAL;
		return NULL;
	}
	/* Counted first: a concurrent free_dm must not unmap under us. */
	atomic_fetch_add(&dm->mrs, 1);
	mr = vhca_mr_new(pd, dm->addr + dm_offset, length, 0,
			 (int)(access & ~(unsigned int)IBV_ACCESS_ZERO_BASED));
	if (!mr) {
		atomic_fetch_sub(&dm->mrs, 1);
		return NULL;
	}
	mr->dm = dm;
	return &mr->vmr.ibv_mr;
}

void vhca_dm_put(struct vhca_dm *dm)
{
	atomic_fetch_sub(&dm->mrs, 1);
}
