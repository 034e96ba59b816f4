/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * VFs passed to VMs, the host side (vm_attach.c): what VFIO and the
 * hypervisor are to a real VF.  vhca-vm asks over mgmt.sock
 * (VHCA_MGMT_ATTACH_VM, include/vhca/mgmt.h) with the VM's RAM (a sealed
 * memfd); vhcad maps the RAM, creates the VF's BAR (device/vf_port.c)
 * and serves QEMU's ivshmem-doorbell device as its ivshmem server at
 * DIR/vm/<vf>.sock.  The attachment lasts as long as QEMU's connection:
 * when QEMU exits (or is killed) every resource of the VM is freed and
 * the VF can be used again.  While attached, the host cannot open the VF.
 */
#ifndef VHCA_DRIVER_VM_ATTACH_H
#define VHCA_DRIVER_VM_ATTACH_H

#include <stdint.h>

#include "device/pf.h"

struct vhca_guests;
struct vhca_vms;

#define VHCA_VM_DIR_NAME "vm"
/* How long an attach waits for the VF's previous VM to be torn down. */
#define VHCA_VM_DETACH_WAIT_MS 3000
/* QEMU must connect within this long after the attach. */
#define VHCA_VM_CONNECT_TIMEOUT_MS 60000

int vhca_vms_create(struct vhca_vms **out, struct vhca_pf *pf,
		    struct vhca_guests *guests, const char *run_dir);
/* Detaches every VM (their BARs say the device is gone) and frees. */
void vhca_vms_destroy(struct vhca_vms *vms);

/*
 * Attaches VF @vf to a VM whose RAM is @ram_fd (taken over) of
 * @ram_size bytes; its ivshmem socket listens when this returns 0.
 * -ENODEV no such VF, -EBUSY in use (contexts, a guest, a VM), -EINVAL
 * bad RAM.
 */
int vhca_vms_attach(struct vhca_vms *vms, unsigned int vf, int ram_fd,
		    uint64_t ram_size);

#endif /* VHCA_DRIVER_VM_ATTACH_H */
