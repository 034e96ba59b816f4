/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Queue memory: guest memory the device maps for good (rings, CQEs,
 * doorbell records; include/vhca/queue.h).  For a host process it is a
 * sealed memfd the driver took from the guest, mapped MAP_SHARED; the
 * caller then carves checked regions out of it: each inside the mapping,
 * aligned as asked, and overlapping no other.  Queue memory never blocks
 * the engine (it is shmem, sealed against shrinking).  The guest may
 * write anything into it at any time; users copy before they validate.
 */
#ifndef VHCA_QMEM_H
#define VHCA_QMEM_H

#include <stdbool.h>
#include <stdint.h>

#define VHCA_QMEM_MAX_REGIONS 4
/* Doorbell records: 8-byte aligned, so every field is naturally aligned. */
#define VHCA_DB_ALIGN 8
/* Largest WQE slot (sq_stride, rq_stride, SRQ stride). */
#define VHCA_MAX_WQE_STRIDE 4096
/* Largest queue memfd we map: 16384 WQEs of 4 KiB plus doorbells. */
#define VHCA_QMEM_MAX_SIZE (1ULL << 30)

struct vhca_vm;

struct vhca_qmem {
	uint8_t *base;
	uint64_t size;
	struct vhca_vm *vm;		/* a VM's pages (vm.h), referenced */
	unsigned int vm_runs;		/* mappings they took */
	unsigned int num_regions;
	struct {
		uint64_t offset, len;
	} regions[VHCA_QMEM_MAX_REGIONS];
};

/*
 * Maps @size bytes of the memfd @fd (which the caller keeps and closes);
 * -EINVAL for a size of 0 or above VHCA_QMEM_MAX_SIZE.
 */
int vhca_qmem_map_fd(struct vhca_qmem *qm, int fd, uint64_t size);
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
