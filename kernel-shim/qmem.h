/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Queue memory: a guest's sealed memfd mapped into the daemon
 * (include/vhca/queue.h).  Creation takes the fd, checks seals and size,
 * maps it MAP_SHARED, and lets the caller carve checked regions out of it:
 * each inside the mapping, aligned as asked, and overlapping no other.
 * The guest may write anything into this memory at any time; users copy
 * before they validate.
 */
#ifndef VHCA_QMEM_H
#define VHCA_QMEM_H

#include <stdint.h>

#include "dma.h"

#define VHCA_QMEM_MAX_REGIONS 4
/* Doorbell records: 8-byte aligned, so every field is naturally aligned. */
#define VHCA_DB_ALIGN 8
/* Largest WQE slot (sq_stride, rq_stride, SRQ stride). */
#define VHCA_MAX_WQE_STRIDE 4096
/* Largest queue memfd we map: 16384 WQEs of 4 KiB plus doorbells. */
#define VHCA_QMEM_MAX_SIZE (1ULL << 30)

struct vhca_qmem {
	uint8_t *base;
	uint64_t size;
	unsigned int num_regions;
	struct {
		uint64_t offset, len;
	} regions[VHCA_QMEM_MAX_REGIONS];
};

/* Maps the peer's memfd @guest_fd of @size bytes; -EINVAL if unfit. */
int vhca_qmem_map(struct vhca_qmem *qm, const struct vhca_dma_peer *peer,
		  int guest_fd, uint64_t size);
void vhca_qmem_unmap(struct vhca_qmem *qm);

/*
 * The region [offset, offset + len), aligned to @align (a power of two),
 * inside the mapping and disjoint from every region claimed before;
 * NULL if not.  len 0 is never valid.
 */
void *vhca_qmem_claim(struct vhca_qmem *qm, uint64_t offset, uint64_t len,
		      uint64_t align);

static inline bool vhca_is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

#endif /* VHCA_QMEM_H */
