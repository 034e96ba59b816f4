/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A VM's memory as the device reaches it (vm_dma.c): the VM's RAM, a
 * memfd QEMU uses as its memory backend, mapped whole into vhcad.  A
 * guest-physical address is an offset into it (the VM's RAM lies below
 * the PCI hole: vhca-vm gives a VM at most 3 GiB); every address a VM
 * names is checked against the RAM's size, so no VM reaches anything but
 * its own RAM, and only pages it registered (docs/vm.md, "DMA rules").
 *
 *  - DMA space: addresses are guest-physical; never blocks (the RAM is
 *    shmem, sealed against shrinking, and there is no swap).
 *  - Page lists: MEM_PAGES of a command (include/vhca/devcmd.h) read out
 *    of guest memory and checked page by page.
 *  - Queue memory: the pages of a queue mapped next to each other into
 *    vhcad (MAP_FIXED per run of contiguous pages), so rings and
 *    doorbell records are plain memory to the engine, as on the host.
 *    Each run is one mapping of vhcad's; a VM's runs count against its
 *    function's share of mappings (device/limits.h).
 */
#ifndef VHCA_DEVICE_VM_H
#define VHCA_DEVICE_VM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <vhca/devcmd.h>

#include "dma.h"
#include "qmem.h"

/* Largest VM RAM: below the PCI hole of QEMU's pc and q35 machines. */
#define VHCA_VM_RAM_MAX (3ULL << 30)
/* Pages one MEM_PAGES may name: 1 GiB of queue, 16 GiB of MR. */
#define VHCA_VM_QUEUE_PAGES_MAX (1u << 18)
#define VHCA_VM_MR_PAGES_MAX (1u << 22)

/*
 * Referenced through its DMA space: the creator's reference, each device
 * context's (dctx->space), each queue mapping's.
 */
struct vhca_vm {
	struct vhca_dma_space space;	/* first: the ops cast back */
	int ram_fd;
	uint8_t *ram;
	uint64_t ram_size;
	atomic_bool gone;		/* the VM stopped: no more DMA */
	atomic_uint mappings;		/* queue runs mapped */
	unsigned int max_mappings;
	/*
	 * Page addresses vhcad holds for the VM (MRs' lists): at most
	 * twice its RAM, so that a VM registering the same pages again
	 * and again cannot make vhcad's memory grow without bound.
	 */
	_Atomic uint64_t pages_held;
	uint64_t max_pages_held;
};

/* The VM whose RAM is @ram_fd (taken over) of @ram_size bytes; one
 * reference, the caller's. */
int vhca_vm_create(int ram_fd, uint64_t ram_size, unsigned int max_mappings,
		   struct vhca_vm **out);
void vhca_vm_get(struct vhca_vm *vm);
void vhca_vm_put(struct vhca_vm *vm);
/* No more DMA: accesses fail with -ESRCH from now on. */
void vhca_vm_stop(struct vhca_vm *vm);

/*
 * The @m->npages page addresses of MEM_PAGES @m, whose list pages are
 * @lists[0 .. m->nlist), into a new array (*pages, to free()).  Every
 * address must be page aligned and inside the RAM; @max bounds npages.
 * They count in the VM's pages held until vhca_vm_pages_released().
 * 0, -EINVAL or -ENOMEM.
 */
int vhca_vm_read_pages(struct vhca_vm *vm, const struct vhca_devcmd_mem *m,
		       const uint64_t *lists, uint32_t max, uint64_t **pages);

/*
 * Maps @npages pages (checked by vhca_vm_read_pages) next to each other
 * into @qm, @size bytes of them usable (npages covers exactly @size);
 * vhca_qmem_unmap() undoes it.  0, -EINVAL, or -ENOMEM (also: the VM's
 * share of mappings is used).
 */
int vhca_vm_map_queue(struct vhca_vm *vm, const uint64_t *pages,
		      uint32_t npages, uint64_t size, struct vhca_qmem *qm);
/*
 * Where [gpa, gpa + len) of the VM whose space is @space is mapped in
 * vhcad, or NULL (not a VM's space, beyond its RAM, the VM stopped): what
 * a packet may carry by reference (packet.h).
 */
const uint8_t *vhca_vm_ptr(struct vhca_dma_space *space, uint64_t gpa,
			   uint64_t len);

/* @n page addresses of the VM whose space is @space are freed. */
void vhca_vm_pages_released(struct vhca_dma_space *space, uint64_t n);

/* For vhca_qmem_unmap(): the runs of @qm are unmapped. */
void vhca_vm_queue_unmapped(struct vhca_vm *vm, unsigned int runs);

#endif /* VHCA_DEVICE_VM_H */
