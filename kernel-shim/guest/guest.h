/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhcad --vm-guest: the driver half inside a VM (docs/vm.md).  The same
 * driver as on the host (kernel-shim/driver/: sysfs view, command files,
 * channels, process binding) serves the VM's processes; the device is the
 * VF's PCI function, whose other side is vhcad on the host.
 *
 *   vf_pci.c     finds the VF's PCI function, binds it to uio_pci_generic,
 *                maps its BARs, rings vhcad, waits for its interrupt
 *   mailbox.c    device commands through the BAR's mailbox (the driver's
 *                transport, driver/device.h) and the event ring
 *   memory.c     guest memory for the device: queue memfds and MRs as
 *                guest-physical page lists (/proc/<pid>/pagemap), held
 *   function.c   the VM's copy of its function (struct vhca_pf with one
 *                VF, the PF hidden), kept up to date from FUNCTION events
 *   start.c      start-up and shutdown of all of it (main.c calls them)
 */
#ifndef VHCA_GUEST_H
#define VHCA_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <vhca/devcmd.h>
#include <vhca/vf_bar.h>

#include "device/pf.h"

struct vhca_guest_vf {
	char bdf[16];			/* 0000:00:04.0 */
	char resource0[96];		/* its BAR0's sysfs file */
	uint32_t doorbell_offset;	/* of Doorbell in its first page */
	int uio_fd;			/* /dev/uioN: interrupts */
	int config_fd;			/* its PCI config space */
	volatile uint32_t *regs;	/* BAR0 */
	uint8_t *bar;			/* BAR2 */
};

/* ---- vf_pci.c ---------------------------------------------------------------- */

/*
 * The first ivshmem function whose BAR2 carries our header, bound to
 * uio_pci_generic and mapped, interrupts on.  0 or -errno (logged).
 */
int vhca_guest_vf_open(struct vhca_guest_vf *vf);
void vhca_guest_vf_close(struct vhca_guest_vf *vf);
/* Rings vhcad's @vector (one MMIO write). */
void vhca_guest_vf_ring(struct vhca_guest_vf *vf, unsigned int vector);
/*
 * Waits up to @timeout_ms for the VF's interrupt (and acknowledges it):
 * 1 if one came, 0 on timeout, -errno.
 */
int vhca_guest_vf_wait(struct vhca_guest_vf *vf, int timeout_ms);

/* ---- mailbox.c --------------------------------------------------------------- */

/*
 * Serves the VF: device commands go through its mailbox from now on, and
 * a thread takes its events to the contexts (and function changes to
 * @pf).  0 or -errno.
 */
int vhca_guest_mailbox_start(struct vhca_guest_vf *vf, struct vhca_pf *pf);
void vhca_guest_mailbox_stop(void);
/* One command before the function model exists (QUERY_FUNCTION). */
int vhca_guest_mailbox_query(struct vhca_guest_vf *vf, uint16_t op,
			     void *out, size_t out_len);

/* ---- memory.c ----------------------------------------------------------------- */

/* Installs the VM's way to name memory (driver/device.h). */
void vhca_guest_memory_install(void);

/* ---- function.c ---------------------------------------------------------------- */

/* The VM's copy of its function, from QUERY_FUNCTION @f. */
int vhca_guest_function_init(struct vhca_pf *pf,
			     const struct vhca_pf_hooks *hooks,
			     const struct vhca_devcmd_function *f);
/* A FUNCTION event: @f is its new state; listeners hear what changed. */
void vhca_guest_function_update(struct vhca_pf *pf,
				const struct vhca_devcmd_function *f);
void vhca_guest_function_fini(struct vhca_pf *pf);

/* ---- start.c ------------------------------------------------------------------- */

/*
 * vhcad --vm-guest's device: the VF found and served, @pf the VM's copy
 * of its function (its uverbs node claimed through @hooks).  0 or -errno
 * (logged).
 */
int vhca_guest_start(struct vhca_pf *pf, const struct vhca_pf_hooks *hooks);
void vhca_guest_stop(struct vhca_pf *pf);

#endif /* VHCA_GUEST_H */
