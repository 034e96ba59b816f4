/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * DMA: how the device reaches the memory a guest registered, behind one
 * small interface.  A DMA space is one guest's memory:
 *
 *  - a host process (namespace guests, plain host processes): its address
 *    space through a /proc/<pid>/mem fd opened when its context was bound
 *    (driver/peer.c), so addresses are its virtual addresses and nothing
 *    can reach another process that reuses the pid or the image the
 *    process execs into.  An access may block on a page fault (a file on
 *    a slow or hostile filesystem), so only the owning context's engine
 *    turn makes it (engine.h says how a stall stays contained), never
 *    while holding anything another tenant needs.
 *  - a VM (vm_dma.c): its RAM mapped into vhcad; addresses are
 *    guest-physical, checked against the RAM size; never blocks.
 *
 * Every access returns 0, -EFAULT (not mapped, beyond the space),
 * -ESRCH (the space is gone: the process exited or exec'd, the VM
 * stopped) or -ETIMEDOUT (it completed, but took longer than
 * VHCA_DMA_STALL_LIMIT_NS: the transport fails the QP rather than wait
 * on that memory again).
 */
#ifndef VHCA_DEVICE_DMA_H
#define VHCA_DEVICE_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An access slower than this fails its QP (it still completes first). */
#define VHCA_DMA_STALL_LIMIT_NS (1000ULL * 1000 * 1000)

struct vhca_dma_space;

struct vhca_dma_ops {
	int (*read)(struct vhca_dma_space *s, uint64_t addr, void *buf,
		    size_t len);
	int (*write)(struct vhca_dma_space *s, uint64_t addr, const void *buf,
		     size_t len);
	bool (*gone)(struct vhca_dma_space *s);
	void (*release)(struct vhca_dma_space *s);
};

struct vhca_dma_space {
	const struct vhca_dma_ops *ops;
	unsigned int refcount;		/* atomic */
	bool blocking;			/* accesses may wait on page faults */
};

/* A host process's address space through @mem_fd (taken over). */
struct vhca_dma_space *vhca_dma_process_space(int mem_fd);

void vhca_dma_space_get(struct vhca_dma_space *s);
void vhca_dma_space_put(struct vhca_dma_space *s);

int vhca_dma_read(struct vhca_dma_space *s, uint64_t addr, void *buf,
		  size_t len);
int vhca_dma_write(struct vhca_dma_space *s, uint64_t addr, const void *buf,
		   size_t len);
/* Writes @len zero bytes. */
int vhca_dma_clear(struct vhca_dma_space *s, uint64_t addr, size_t len);
/* The memory behind @s is gone for good (exit, exec, VM stopped). */
bool vhca_dma_gone(struct vhca_dma_space *s);

#endif /* VHCA_DEVICE_DMA_H */
