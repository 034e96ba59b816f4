/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A VF attached to a VM (vf_port.c): its BAR (include/vhca/vf_bar.h) as
 * the device serves it, the VM's command port, its event ring and the
 * eventfds its ivshmem connection carries (driver/vm_attach.c hands them
 * to QEMU).
 */
#ifndef VHCA_DEVICE_VF_PORT_H
#define VHCA_DEVICE_VF_PORT_H

#include <vhca/vf_bar.h>

#include "pf.h"

struct vhca_vm;
struct vhca_vf_port;

/* Serves @vf's BAR for VM @vm (its reference taken over).  0 or -errno. */
int vhca_vf_port_create(struct vhca_dev *vf, struct vhca_vm *vm,
			struct vhca_vf_port **out);
/*
 * The VM is gone (QEMU disconnected) or vhcad stops: the BAR says so,
 * no more DMA into the VM, every context of it closed.
 */
void vhca_vf_port_destroy(struct vhca_vf_port *port);

/* For the ivshmem server: the BAR's memfd and the vectors' eventfds. */
int vhca_vf_port_bar_fd(const struct vhca_vf_port *port);
int vhca_vf_port_doorbell_fd(const struct vhca_vf_port *port, unsigned int v);
int vhca_vf_port_interrupt_fd(const struct vhca_vf_port *port,
			      unsigned int v);

#endif /* VHCA_DEVICE_VF_PORT_H */
