/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The management socket's wire format, shared by vhcad
 * (kernel-shim/driver/mgmt.c) and its clients (vhcactl, vhca-guest).
 *
 * DIR/mgmt.sock is what rtnetlink is to a real PF driver.  AF_NETLINK
 * cannot be served from user space, so the same bytes travel over an
 * AF_UNIX SOCK_SEQPACKET socket: each record carries netlink messages and
 * each message is answered as the kernel answers it, NLMSG_ERROR with 0
 * (only if NLM_F_ACK was asked) or -errno.  As rtnetlink does for
 * RTM_SETLINK (netlink_net_capable(skb, CAP_NET_ADMIN)), every request
 * needs CAP_NET_ADMIN in vhcad's user namespace; the socket is mode 0600.
 */
#ifndef VHCA_MGMT_WIRE_H
#define VHCA_MGMT_WIRE_H

#include <linux/types.h>

#define VHCA_MGMT_SOCK_NAME "mgmt.sock"

/*
 * vhca's extension for whole plans (vhcactl apply): inside an
 * IFLA_VF_INFO, the VF's full P_Key table, payload
 * { __u32 vf; __u16 pkeys[n]; } with n <= 128 (the table's length), entries
 * past n empty.  The type is far above the kernel's IFLA_VF_* numbers and
 * a kernel ignores it (do_setvfinfo parses leniently).  A plan is one
 * RTM_SETLINK whose IFLA_VFINFO_LIST carries one IFLA_VF_INFO per VF.
 */
#define VHCA_IFLA_VF_PKEY_TABLE 0x3f01

/*
 * A message type of vhca's own, far above RTM_MAX: vhca-guest binds a VF
 * to the guest it has just created, naming the guest's init process (the
 * first process of its PID namespace, a child of the sender).  From then
 * on, until that process exits, the VF's command file serves only
 * processes of that PID namespace, and processes of that namespace reach
 * no other function (docs/security.md).  Answered with NLMSG_ERROR.
 */
#define VHCA_MGMT_BIND_GUEST 0x3f10

struct vhca_mgmt_guest {
	__u32 vf;		/* VF number of the PF */
	__s32 init_pid;		/* in the sender's PID namespace */
};

/*
 * vhca-vm attaches a VF to the virtual machine it is about to start
 * (docs/vm.md).  The request carries the VM's RAM, a memfd of exactly
 * ram_size bytes (sealed against growing and shrinking), in SCM_RIGHTS:
 * guest-physical address = offset in that file (RAM of at most 3 GiB, all
 * below the PCI hole).  On ack 0 vhcad serves the VF's ivshmem server
 * socket DIR/vm/vhca0_vfN.sock, which QEMU connects to as the VF's PCI
 * device.  The sender owns the VF (its lock, tools/common/vf.h).
 * Answered with NLMSG_ERROR.
 */
#define VHCA_MGMT_ATTACH_VM 0x3f11

struct vhca_mgmt_vm {
	__u32 vf;		/* VF number of the PF */
	__u32 flags;		/* none defined: 0 */
	__u64 ram_size;		/* bytes of guest RAM in the memfd */
};

#endif /* VHCA_MGMT_WIRE_H */
