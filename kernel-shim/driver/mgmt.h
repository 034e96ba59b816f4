/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The management socket, DIR/mgmt.sock (wire format: include/vhca/mgmt.h):
 * rtnetlink RTM_SETLINK requests for the VFs of the PF, with
 * IFLA_VFINFO_LIST / IFLA_VF_INFO / IFLA_VF_IB_NODE_GUID /
 * IFLA_VF_IB_PORT_GUID / IFLA_VF_LINK_STATE, as `ip link set DEV vf N
 * node_guid G` sends them, each applied through vhca_pf_apply_plan() all
 * or nothing; and vhca's VHCA_MGMT_BIND_GUEST (guests.h) and
 * VHCA_MGMT_ATTACH_VM (vm_attach.h).
 */
#ifndef VHCA_MGMT_H
#define VHCA_MGMT_H

#include <vhca/mgmt.h>

#include "device/pf.h"

struct vhca_guests;
struct vhca_vms;

struct vhca_mgmt;

/* Binds DIR/mgmt.sock and starts serving it; 0 or -errno. */
int vhca_mgmt_start(struct vhca_mgmt **out, struct vhca_pf *pf,
		    struct vhca_guests *guests, struct vhca_vms *vms,
		    const char *run_dir);
/* Stops the thread, closes and removes the socket. */
void vhca_mgmt_stop(struct vhca_mgmt *mgmt);

/*
 * Handles one netlink message (exposed for tests); returns 0 or -errno,
 * the error the ack carries.
 */
int vhca_mgmt_handle(struct vhca_pf *pf, const void *msg, size_t len);

#endif /* VHCA_MGMT_H */
