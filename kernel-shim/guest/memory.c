// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Guest memory for the device (guest.h, driver/device.h): what
 * ib_umem_get() does in a kernel, done from user space in the VM.
 *
 * The device reaches the VM's RAM by guest-physical address, so every
 * page it may touch is named by its page frame, read from
 * /proc/<pid>/pagemap (PFNs need CAP_SYS_ADMIN: vhcad --vm-guest runs as
 * root), and must stay where it is while the device may use it:
 *
 *  - queues (rings, CQEs, doorbell records) live in the provider's
 *    sealed memfds: we map each one and mlock() our mapping, so its pages
 *    stay allocated (the memfd holds them) and resident for as long as
 *    we hold the pin, whatever the process does;
 *  - MRs are the application's memory: the provider mlock()s them
 *    before REG_MR (which also breaks copy-on-write, so a writable MR is
 *    the process's own pages, never the zero page), and we refuse pages
 *    that are not present or, for writable MRs, not exclusively mapped.
 *
 * mlock() keeps pages resident; that they do not move is the VM image's
 * part (vm.compact_unevictable_allowed=0, no transparent huge pages, no
 * NUMA balancing, no swap: docs/vm.md).  An MR whose process unmaps its
 * memory before DEREG_MR leaves the device with pages the VM may reuse
 * (a kernel's pin would hold them): documented as the VM's own risk.
 *
 * Page lists go to the device in "list pages" of our own memory (locked
 * and translated the same way), 512 addresses each.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "driver/device.h"
#include "driver/peer.h"
#include "guest.h"

#define PAGE VHCA_DEVCMD_PAGE_SIZE
#define PM_PRESENT (1ULL << 63)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN_MASK ((1ULL << 55) - 1)

/* What a pin holds until the object is gone. */
struct pin {
	void *queue;			/* a queue's memfd, mapped and locked */
	size_t queue_len;
	uint64_t *lists;		/* list pages, locked */
	size_t lists_len;
};

/*
 * Guest-physical addresses of the @n pages from @addr of process @pid
 * (0: ourselves).  Each must be present and, if @exclusive, mapped only
 * there.  0 or -EFAULT.
 */
static int translate(pid_t pid, uint64_t addr, uint64_t n, bool exclusive,
		     uint64_t *gpa)
{
	char path[64];
	int fd, ret = 0;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/pagemap");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -EFAULT;
	for (uint64_t i = 0; i < n && !ret; i++) {
		uint64_t e;

		if (pread(fd, &e, sizeof(e),
			  (off_t)((addr / PAGE + i) * sizeof(e))) != sizeof(e) ||
		    !(e & PM_PRESENT) || !(e & PM_PFN_MASK) ||
		    (exclusive && !(e & PM_EXCLUSIVE)))
			ret = -EFAULT;
		else
			gpa[i] = (e & PM_PFN_MASK) * PAGE;
	}
	close(fd);
	return ret;
}

static void unpin(void *arg)
{
	struct pin *p = arg;

	if (!p)
		return;
	if (p->queue)
		munmap(p->queue, p->queue_len);
	if (p->lists)
		munmap(p->lists, p->lists_len);
	free(p);
}

/*
 * The list pages of @npages page addresses @gpa: written into locked
 * memory of ours, whose own addresses go to @list (at most @max).
 */
static int make_lists(struct pin *p, const uint64_t *gpa, uint32_t npages,
		      uint64_t *list, uint32_t max, uint32_t *nlist)
{
	uint32_t n = (npages + VHCA_DEVCMD_LIST_ENTRIES - 1) /
		     VHCA_DEVCMD_LIST_ENTRIES;

	if (n > max)
		return -EINVAL;
	p->lists_len = (size_t)n * PAGE;
	p->lists = mmap(NULL, p->lists_len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->lists == MAP_FAILED) {
		p->lists = NULL;
		return -ENOMEM;
	}
	memcpy(p->lists, gpa, (size_t)npages * sizeof(*gpa));
	if (mlock(p->lists, p->lists_len))
		return -ENOMEM;
	*nlist = n;
	return translate(0, (uint64_t)(uintptr_t)p->lists, n, true, list);
}

static int guest_queue(const struct vhca_peer *peer, int guest_fd,
		       uint64_t size, struct vhca_devcmd_mem *mem,
		       uint64_t *list, uint32_t max, void **pin_out)
{
	uint32_t npages = (uint32_t)((size + PAGE - 1) / PAGE);
	struct pin *p = calloc(1, sizeof(*p));
	uint64_t *gpa = calloc(npages, sizeof(*gpa));
	int fd, ret;

	if (!p || !gpa) {
		free(p);
		free(gpa);
		return -ENOMEM;
	}
	fd = vhca_peer_take_memfd(peer, guest_fd, size);
	ret = fd < 0 ? fd : 0;
	if (!ret) {
		p->queue_len = (size_t)npages * PAGE;
		p->queue = mmap(NULL, p->queue_len, PROT_READ | PROT_WRITE,
				MAP_SHARED, fd, 0);
		close(fd);
		if (p->queue == MAP_FAILED) {
			p->queue = NULL;
			ret = -EINVAL;
		}
	}
	/*
	 * Locked: resident for the pin's life; populated for writing first
	 * (the data stays as it is), which mlock() alone would do too, but
	 * not under AddressSanitizer, whose mlock() does nothing.
	 */
	if (!ret && (madvise(p->queue, p->queue_len, MADV_POPULATE_WRITE) ||
		     mlock(p->queue, p->queue_len)))
		ret = -ENOMEM;
	if (!ret)
		ret = translate(0, (uint64_t)(uintptr_t)p->queue, npages, false,
				gpa);
	if (!ret)
		ret = make_lists(p, gpa, npages, list, max, &mem->nlist);
	free(gpa);
	if (ret) {
		unpin(p);
		return ret;
	}
	mem->kind = VHCA_DEVCMD_MEM_PAGES;
	mem->fd = -1;
	mem->size = size;
	mem->npages = npages;
	*pin_out = p;
	return 0;
}

static int guest_region(const struct vhca_peer *peer, uint64_t addr,
			uint64_t len, bool writable,
			struct vhca_devcmd_mem *mem, uint64_t *offset,
			uint64_t **list_out, void **pin_out)
{
	uint64_t first = addr & ~(uint64_t)(PAGE - 1);
	uint64_t npages = (addr + len - first + PAGE - 1) / PAGE;
	uint32_t max = (uint32_t)((npages + VHCA_DEVCMD_LIST_ENTRIES - 1) /
				  VHCA_DEVCMD_LIST_ENTRIES);
	struct pin *p;
	uint64_t *gpa, *list;
	int ret;

	if (!len || npages > UINT32_MAX)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	gpa = calloc(npages, sizeof(*gpa));
	list = calloc(max, sizeof(*list));
	ret = p && gpa && list ? 0 : -ENOMEM;
	if (!ret)
		ret = translate(vhca_peer_tgid(peer), first, npages, writable,
				gpa);
	if (!ret)
		ret = make_lists(p, gpa, (uint32_t)npages, list, max,
				 &mem->nlist);
	free(gpa);
	if (ret) {
		unpin(p);
		free(list);
		return ret;
	}
	mem->kind = VHCA_DEVCMD_MEM_PAGES;
	mem->fd = -1;
	mem->size = len;
	mem->npages = (uint32_t)npages;
	*offset = addr - first;
	*list_out = list;
	*pin_out = p;
	return 0;
}

static const struct vhca_device_memory guest_memory = {
	.queue = guest_queue,
	.region = guest_region,
	.unpin = unpin,
};

void vhca_guest_memory_install(void)
{
	vhca_device_set_memory(&guest_memory);
}
