// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Queue memory mapped into the daemon (qmem.h). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qmem.h"
#include "vm.h"

int vhca_qmem_map_fd(struct vhca_qmem *qm, int fd, uint64_t size)
{
	void *base;

	memset(qm, 0, sizeof(*qm));
	if (!size || size > VHCA_QMEM_MAX_SIZE)
		return -EINVAL;
	/* Sealed against shrinking: no SIGBUS from a truncate later. */
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	qm->base = base;
	qm->size = size;
	return 0;
}

void vhca_qmem_unmap(struct vhca_qmem *qm)
{
	if (qm->base)
		munmap(qm->base, qm->size);
	if (qm->vm) {
		vhca_vm_queue_unmapped(qm->vm, qm->vm_runs);
		vhca_vm_put(qm->vm);
	}
	memset(qm, 0, sizeof(*qm));
}

void *vhca_qmem_claim(struct vhca_qmem *qm, uint64_t offset, uint64_t len,
		      uint64_t align)
{
	if (!len || offset & (align - 1) || offset > qm->size ||
	    len > qm->size - offset ||
	    qm->num_regions == VHCA_QMEM_MAX_REGIONS)
		return NULL;
	for (unsigned int i = 0; i < qm->num_regions; i++) {
		uint64_t o = qm->regions[i].offset, l = qm->regions[i].len;

		if (offset < o + l && o < offset + len)
			return NULL;
	}
	qm->regions[qm->num_regions].offset = offset;
	qm->regions[qm->num_regions].len = len;
	qm->num_regions++;
	return qm->base + offset;
}
