/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The management socket, DIR/mgmt.sock: what rtnetlink is to a real PF
 * driver.  AF_NETLINK cannot be served from user space, so the same bytes
 * travel over an AF_UNIX SOCK_SEQPACKET socket (mode 0600, peers must be
 * uid 0): each record carries one or more netlink messages, RTM_SETLINK +
 * struct ifinfomsg + IFLA_VFINFO_LIST / IFLA_VF_INFO /
 * IFLA_VF_IB_NODE_GUID / IFLA_VF_IB_PORT_GUID / IFLA_VF_LINK_STATE, as
 * `ip link set DEV vf N node_guid G` sends them.  Every message is applied
 * through vhca_pf_apply_plan() all or nothing and answered as the kernel
 * does: NLMSG_ERROR with error 0 (only if NLM_F_ACK) or -errno.
 */
#ifndef VHCA_MGMT_H
#define VHCA_MGMT_H

#include "device/pf.h"

#define VHCA_MGMT_SOCK_NAME "mgmt.sock"

/*
 * vhca's one extension, for whole plans (vhcactl apply): inside an
 * IFLA_VF_INFO, the VF's full P_Key table, payload
 * { __u32 vf; __u16 pkeys[n]; } with n <= VHCA_PKEY_TABLE_LEN, entries
 * past n empty.  The type is far above the kernel's IFLA_VF_* numbers and
 * a kernel ignores it (do_setvfinfo parses leniently).  A plan is one
 * RTM_SETLINK whose IFLA_VFINFO_LIST carries one IFLA_VF_INFO per VF.
 */
#define VHCA_IFLA_VF_PKEY_TABLE 0x3f01

struct vhca_mgmt;

/* Binds DIR/mgmt.sock and starts serving it; 0 or -errno. */
int vhca_mgmt_start(struct vhca_mgmt **out, struct vhca_pf *pf,
		    const char *run_dir);
/* Stops the thread, closes and removes the socket. */
void vhca_mgmt_stop(struct vhca_mgmt *mgmt);

/*
 * Handles one netlink message (exposed for tests); returns 0 or -errno,
 * the error the ack carries.
 */
int vhca_mgmt_handle(struct vhca_pf *pf, const void *msg, size_t len);

#endif /* VHCA_MGMT_H */
