// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A VM's memory (vm.h): its RAM mapped into vhcad, guest-physical DMA
 * with every address checked, page lists, and queues mapped page by page
 * next to each other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm.h"

#define PAGE VHCA_DEVCMD_PAGE_SIZE

static struct vhca_vm *vm_of(struct vhca_dma_space *s)
{
	return (struct vhca_vm *)s;
}

/* [gpa, gpa + len) inside the RAM; false for anything else. */
static bool in_ram(const struct vhca_vm *vm, uint64_t gpa, uint64_t len)
{
	return gpa <= vm->ram_size && len <= vm->ram_size - gpa;
}

static int vm_rw(struct vhca_dma_space *s, uint64_t gpa, void *buf,
		 size_t len, bool write)
{
	struct vhca_vm *vm = vm_of(s);

	if (atomic_load_explicit(&vm->gone, memory_order_relaxed))
		return -ESRCH;
	if (!in_ram(vm, gpa, len))
		return -EFAULT;
	if (write)
		memcpy(vm->ram + gpa, buf, len);
	else
		memcpy(buf, vm->ram + gpa, len);
	return 0;
}

static int vm_read(struct vhca_dma_space *s, uint64_t gpa, void *buf,
		   size_t len)
{
	return vm_rw(s, gpa, buf, len, false);
}

static int vm_write(struct vhca_dma_space *s, uint64_t gpa, const void *buf,
		    size_t len)
{
	return vm_rw(s, gpa, (void *)buf, len, true);
}

static bool vm_gone(struct vhca_dma_space *s)
{
	return atomic_load(&vm_of(s)->gone);
}

/* The VM lives as long as its space is referenced (vm.h). */
static void vm_release(struct vhca_dma_space *s)
{
	struct vhca_vm *vm = vm_of(s);

	munmap(vm->ram, vm->ram_size);
	close(vm->ram_fd);
	free(vm);
}

static const struct vhca_dma_ops vm_dma_ops = {
	.read = vm_read,
	.write = vm_write,
	.gone = vm_gone,
	.release = vm_release,
};

int vhca_vm_create(int ram_fd, uint64_t ram_size, unsigned int max_mappings,
		   struct vhca_vm **out)
{
	struct vhca_vm *vm;
	void *ram;

	if (!ram_size || ram_size > VHCA_VM_RAM_MAX || ram_size % PAGE) {
		close(ram_fd);
		return -EINVAL;
	}
	ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd,
		   0);
	if (ram == MAP_FAILED) {
		close(ram_fd);
		return -EINVAL;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		munmap(ram, ram_size);
		close(ram_fd);
		return -ENOMEM;
	}
	vm->space = (struct vhca_dma_space){ .ops = &vm_dma_ops, .refcount = 1 };
	vm->ram_fd = ram_fd;
	vm->ram = ram;
	vm->ram_size = ram_size;
	vm->max_mappings = max_mappings;
	vm->max_pages_held = 2 * (ram_size / PAGE);
	*out = vm;
	return 0;
}

void vhca_vm_get(struct vhca_vm *vm)
{
	vhca_dma_space_get(&vm->space);
}

void vhca_vm_put(struct vhca_vm *vm)
{
	if (vm)
		vhca_dma_space_put(&vm->space);
}

void vhca_vm_stop(struct vhca_vm *vm)
{
	atomic_store(&vm->gone, true);
}

int vhca_vm_read_pages(struct vhca_vm *vm, const struct vhca_devcmd_mem *m,
		       const uint64_t *lists, uint32_t max, uint64_t **out)
{
	uint32_t need = (m->npages + VHCA_DEVCMD_LIST_ENTRIES - 1) /
			VHCA_DEVCMD_LIST_ENTRIES;
	uint64_t *pages;

	uint64_t held;

	if (m->kind != VHCA_DEVCMD_MEM_PAGES || !m->npages || m->npages > max ||
	    m->nlist != need)
		return -EINVAL;
	held = atomic_fetch_add(&vm->pages_held, m->npages);
	if (held + m->npages > vm->max_pages_held) {
		vhca_vm_pages_released(&vm->space, m->npages);
		return -ENOMEM;
	}
	pages = malloc((size_t)m->npages * sizeof(*pages));
	if (!pages) {
		vhca_vm_pages_released(&vm->space, m->npages);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->nlist; i++) {
		uint32_t first = i * VHCA_DEVCMD_LIST_ENTRIES;
		uint32_t n = m->npages - first < VHCA_DEVCMD_LIST_ENTRIES ?
				     m->npages - first :
				     VHCA_DEVCMD_LIST_ENTRIES;

		if (lists[i] % PAGE ||
		    vm_read(&vm->space, lists[i], pages + first,
			    n * sizeof(*pages)))
			goto bad;
	}
	/* Copied first, checked after: the guest may change its list. */
	for (uint32_t i = 0; i < m->npages; i++)
		if (pages[i] % PAGE || !in_ram(vm, pages[i], PAGE))
			goto bad;
	*out = pages;
	return 0;
bad:
	free(pages);
	vhca_vm_pages_released(&vm->space, m->npages);
	return -EINVAL;
}

const uint8_t *vhca_vm_ptr(struct vhca_dma_space *space, uint64_t gpa,
			   uint64_t len)
{
	struct vhca_vm *vm = vm_of(space);

	if (space->ops != &vm_dma_ops || atomic_load(&vm->gone) ||
	    !in_ram(vm, gpa, len))
		return NULL;
	return vm->ram + gpa;
}

void vhca_vm_pages_released(struct vhca_dma_space *space, uint64_t n)
{
	atomic_fetch_sub(&vm_of(space)->pages_held, n);
}

static bool take_mappings(struct vhca_vm *vm, unsigned int n)
{
	unsigned int cur = atomic_load(&vm->mappings);

	do {
		if (n > vm->max_mappings || cur > vm->max_mappings - n)
			return false;
	} while (!atomic_compare_exchange_weak(&vm->mappings, &cur, cur + n));
	return true;
}

void vhca_vm_queue_unmapped(struct vhca_vm *vm, unsigned int runs)
{
	atomic_fetch_sub(&vm->mappings, runs);
}

int vhca_vm_map_queue(struct vhca_vm *vm, const uint64_t *pages,
		      uint32_t npages, uint64_t size, struct vhca_qmem *qm)
{
	unsigned int runs = 1;
	uint8_t *base;

	memset(qm, 0, sizeof(*qm));
	if (!size || size > VHCA_QMEM_MAX_SIZE ||
	    npages != (size + PAGE - 1) / PAGE)
		return -EINVAL;
	for (uint32_t i = 1; i < npages; i++)
		if (pages[i] != pages[i - 1] + PAGE)
			runs++;
	if (!take_mappings(vm, runs))
		return -ENOMEM;
	/* A reservation, then each run of contiguous pages over it. */
	base = mmap(NULL, (size_t)npages * PAGE, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		vhca_vm_queue_unmapped(vm, runs);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < npages;) {
		uint32_t n = 1;

		while (i + n < npages && pages[i + n] == pages[i] + n * PAGE)
			n++;
		if (mmap(base + (size_t)i * PAGE, (size_t)n * PAGE,
			 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 vm->ram_fd, (off_t)pages[i]) == MAP_FAILED) {
			munmap(base, (size_t)npages * PAGE);
			vhca_vm_queue_unmapped(vm, runs);
			return -ENOMEM;
		}
		i += n;
	}
	vhca_vm_get(vm);
	qm->base = base;
	qm->size = size;
	qm->vm = vm;
	qm->vm_runs = runs;
	return 0;
}
