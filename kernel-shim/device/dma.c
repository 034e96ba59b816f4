// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * DMA spaces (dma.h): the common part and the host-process backend.
 *
 * A host process is reached through /proc/<pid>/mem opened at bind: the
 * fd names the address space the process had then (as the kernel's umem
 * pins current->mm), so nothing reaches a process that reused the pid or
 * the new image of a process that exec'd.  Once that address space has
 * no users it reads and writes 0 bytes: the space is gone.  Its remote
 * faults cannot be retried, so a userfaultfd range fails at once instead
 * of waiting on the guest; a page of a slow filesystem still blocks until
 * it is read, which is why only the owner's turn comes here.  Its
 * page-sized bounce copies cost bandwidth (1 MiB: 140 us against
 * process_vm_*'s 75 us here), the price of binding to the address space
 * rather than to a pid number.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "dma.h"

struct process_space {
	struct vhca_dma_space base;
	int mem_fd;
	atomic_bool gone;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int process_rw(struct vhca_dma_space *s, uint64_t addr, void *buf,
		      size_t len, bool write)
{
	struct process_space *p = (struct process_space *)s;
	uint64_t started;
	ssize_t done;

	if (!len)
		return 0;
	if (addr > (uint64_t)INT64_MAX - len)
		return -EFAULT;	/* beyond what a file offset can say */
	if (atomic_load_explicit(&p->gone, memory_order_relaxed))
		return -ESRCH;
	started = now_ns();
	if (write)
		done = pwrite(p->mem_fd, buf, len, (off_t)addr);
	else
		done = pread(p->mem_fd, buf, len, (off_t)addr);
	if (done == 0) {
		/* No users left: the process exited or exec'd. */
		atomic_store(&p->gone, true);
		return -ESRCH;
	}
	if (done < 0)
		return errno == ENOMEM ? -ENOMEM : -EFAULT;
	if (now_ns() - started > VHCA_DMA_STALL_LIMIT_NS)
		return -ETIMEDOUT;
	/* Short: it stopped at the first unmapped page. */
	return (size_t)done == len ? 0 : -EFAULT;
}

static int process_read(struct vhca_dma_space *s, uint64_t addr, void *buf,
			size_t len)
{
	return process_rw(s, addr, buf, len, false);
}

static int process_write(struct vhca_dma_space *s, uint64_t addr,
			 const void *buf, size_t len)
{
	return process_rw(s, addr, (void *)buf, len, true);
}

static bool process_gone(struct vhca_dma_space *s)
{
	struct process_space *p = (struct process_space *)s;
	uint8_t byte;

	if (atomic_load(&p->gone))
		return true;
	/* 0 bytes once the address space has no users; EIO (page 0) else. */
	if (pread(p->mem_fd, &byte, 1, 0) == 0)
		atomic_store(&p->gone, true);
	return atomic_load(&p->gone);
}

static void process_release(struct vhca_dma_space *s)
{
	struct process_space *p = (struct process_space *)s;

	close(p->mem_fd);
	free(p);
}

static const struct vhca_dma_ops process_ops = {
	.read = process_read,
	.write = process_write,
	.gone = process_gone,
	.release = process_release,
};

struct vhca_dma_space *vhca_dma_process_space(int mem_fd)
{
	struct process_space *p = calloc(1, sizeof(*p));

	if (!p) {
		close(mem_fd);
		return NULL;
	}
	p->base.ops = &process_ops;
	p->base.refcount = 1;
	p->base.blocking = true;
	p->mem_fd = mem_fd;
	atomic_init(&p->gone, false);
	return &p->base;
}

void vhca_dma_space_get(struct vhca_dma_space *s)
{
	__atomic_fetch_add(&s->refcount, 1, __ATOMIC_RELAXED);
}

void vhca_dma_space_put(struct vhca_dma_space *s)
{
	if (s && __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) == 0)
		s->ops->release(s);
}

int vhca_dma_read(struct vhca_dma_space *s, uint64_t addr, void *buf,
		  size_t len)
{
	return s->ops->read(s, addr, buf, len);
}

int vhca_dma_write(struct vhca_dma_space *s, uint64_t addr, const void *buf,
		   size_t len)
{
	return s->ops->write(s, addr, buf, len);
}

int vhca_dma_clear(struct vhca_dma_space *s, uint64_t addr, size_t len)
{
	static const uint8_t zeros[4096];

	while (len) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		int ret = vhca_dma_write(s, addr, zeros, n);

		if (ret)
			return ret;
		addr += n;
		len -= n;
	}
	return 0;
}

bool vhca_dma_gone(struct vhca_dma_space *s)
{
	return s->ops->gone(s);
}
