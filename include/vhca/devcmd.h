/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The device command interface: what the driver half asks of one function
 * (PF or VF) of the device, and the events the device sends back.  It is
 * to vhca what the PRM command set is to mlx5: the driver (the uverbs
 * layer, kernel-shim/driver/) never touches device state except through
 * these commands.
 *
 * One format, two transports (docs/prm.md, "Device commands"):
 *   - in-process: vhcad's driver half and device half in one process
 *     (host processes, namespace guests); commands are function calls
 *     (device/devcmd.h) and may name vhcad's own file descriptors;
 *   - the VF's mailbox in its BAR (docs/vm.md): the driver half runs in
 *     the VM, the device half in vhcad; memory is named by guest-physical
 *     pages, never by file descriptors.
 *
 * Every command is a header and a fixed body; every answer a status and
 * a fixed body.  Layouts are little-endian and naturally aligned.  Where
 * the uverbs ABI already lays out an object's attributes
 * (rdma/ib_user_verbs.h), the command carries that struct unchanged.
 */
#ifndef VHCA_DEVCMD_H
#define VHCA_DEVCMD_H

#include <linux/types.h>
#include <rdma/ib_user_verbs.h>

enum vhca_devcmd_op {
	VHCA_DEVCMD_QUERY_FUNCTION = 0x01,	/* identity, port, P_Keys */
	VHCA_DEVCMD_QUERY_COUNTERS = 0x02,	/* port counters */
	VHCA_DEVCMD_OPEN_CONTEXT = 0x03,
	VHCA_DEVCMD_CLOSE_CONTEXT = 0x04,
	VHCA_DEVCMD_QUERY_ADDRS = 0x05,		/* the function's IP addresses */
	VHCA_DEVCMD_RESOLVE_ADDR = 0x06,	/* ARP and the SA: a path to a holder */
	VHCA_DEVCMD_ALLOC_PD = 0x10,
	VHCA_DEVCMD_DEALLOC_PD = 0x11,
	VHCA_DEVCMD_REG_MR = 0x12,
	VHCA_DEVCMD_DEREG_MR = 0x13,
	VHCA_DEVCMD_REREG_MR = 0x14,
	VHCA_DEVCMD_CREATE_CQ = 0x20,
	VHCA_DEVCMD_RESIZE_CQ = 0x21,
	VHCA_DEVCMD_DESTROY_CQ = 0x22,
	VHCA_DEVCMD_CREATE_QP = 0x30,
	VHCA_DEVCMD_MODIFY_QP = 0x31,
	VHCA_DEVCMD_QUERY_QP = 0x32,
	VHCA_DEVCMD_DESTROY_QP = 0x33,
	VHCA_DEVCMD_ATTACH_MCAST = 0x34,	/* a UD QP joins a group */
	VHCA_DEVCMD_DETACH_MCAST = 0x35,
	VHCA_DEVCMD_CREATE_SRQ = 0x40,
	VHCA_DEVCMD_MODIFY_SRQ = 0x41,
	VHCA_DEVCMD_QUERY_SRQ = 0x42,
	VHCA_DEVCMD_DESTROY_SRQ = 0x43,
	VHCA_DEVCMD_SEND_MAD = 0x50,		/* a MAD out of the port's QP1 */
	VHCA_DEVCMD_RECV_MAD = 0x51,		/* the oldest MAD QP1 received */
	VHCA_DEVCMD_OP_MAX = 0x52,
};

struct vhca_devcmd_hdr {
	__u16 op;		/* enum vhca_devcmd_op */
	__u16 in_len;		/* bytes of body after this header */
	__u32 context;		/* the device context acted on, if any */
};

struct vhca_devcmd_status {
	__s32 status;		/* 0 or -errno */
	__u32 out_len;		/* bytes of body after this */
};

/* ---- memory ------------------------------------------------------------------ */

enum vhca_devcmd_mem_kind {
	VHCA_DEVCMD_MEM_NONE = 0,
	/* In-process only: a sealed memfd, an fd of vhcad's (taken over). */
	VHCA_DEVCMD_MEM_FD = 1,
	/*
	 * VMs: @npages guest-physical 4 KiB pages, in order.  Their
	 * addresses are listed in "list pages" of guest memory, 512 per
	 * page, whose own addresses follow the command's body (@nlist of
	 * them, __u64 each).  Every address is checked against the VM's RAM.
	 */
	VHCA_DEVCMD_MEM_PAGES = 2,
};

#define VHCA_DEVCMD_PAGE_SIZE 4096u
#define VHCA_DEVCMD_LIST_ENTRIES (VHCA_DEVCMD_PAGE_SIZE / 8)

struct vhca_devcmd_mem {
	__u32 kind;		/* enum vhca_devcmd_mem_kind */
	__s32 fd;		/* MEM_FD */
	__u64 size;		/* bytes the object may use */
	__u32 npages;		/* MEM_PAGES */
	__u32 nlist;		/* MEM_PAGES: list pages after the body */
};

/* ---- the function ---------------------------------------------------------------- */

struct vhca_devcmd_function {
	char name[32];		/* vhca0_vf3 */
	__u32 is_vf;
	__u32 vf_index;
	__u64 node_guid;	/* host byte order */
	__u64 port_guid;
	__u64 sys_image_guid;
	char node_desc[64];
	/* port 1 */
	__u32 port_state;	/* enum ibv_port_state */
	__u32 phys_state;
	__u32 cap_flags;
	__u16 lid;
	__u16 sm_lid;
	__u8 lmc;
	__u8 sm_sl;
	__u8 active_mtu;
	__u8 active_width;
	__u8 active_speed;
	__u8 reserved[3];
	__u64 subnet_prefix;	/* GID 0 = prefix + port GUID */
	__u16 pkeys[128];
	/* what the function may hold (device/limits.h: its quota) */
	__u32 max_qp, max_cq, max_srq, max_mr, max_pd, max_contexts;
};

/* Port counters, indexed by enum vhca_counter (device/pf.h). */
#define VHCA_DEVCMD_COUNTERS 16

struct vhca_devcmd_counters {
	__u64 value[VHCA_DEVCMD_COUNTERS];
};

/* ---- contexts -------------------------------------------------------------------- */

#define VHCA_DEVCMD_CTX_DATA_PATH 0x1	/* a doorbell page and a wake-up */

/*
 * In-process, the owner's memory and liveness come with the command as
 * objects (device/devcmd.h); over a mailbox the context's memory is its
 * VM's RAM and its wake-up the VF's doorbell.
 */
struct vhca_devcmd_open_context {
	__u32 flags;
	__s32 wake_fd;		/* in-process: eventfd, taken over; else -1 */
	struct vhca_devcmd_mem ctx_page;	/* struct vhca_ctx_page */
	__u64 cookie;		/* the driver's: comes back in events */
};

struct vhca_devcmd_context_out {
	__u32 context;
	__u32 reserved;
};

/* ---- objects --------------------------------------------------------------------- */

struct vhca_devcmd_handle {
	__u32 handle;
	__u32 reserved;
};

struct vhca_devcmd_reg_mr {
	__u32 pd_handle;
	__u32 access;		/* IB_UVERBS_ACCESS_* */
	/*
	 * In-process: the owner's virtual address.  MEM_PAGES: the offset
	 * of the first byte in the first page (below 4096).
	 */
	__u64 addr;
	__u64 length;
	__u64 iova;		/* hca_va: what work requests use */
	struct vhca_devcmd_mem mem;	/* NONE in-process, else PAGES */
};

struct vhca_devcmd_reg_mr_out {
	__u32 handle;
	__u32 lkey;
	__u32 rkey;
	__u32 reserved;
};

/* REREG_MR's flags: what changes (IBV_REREG_MR_CHANGE_*). */
#define VHCA_DEVCMD_REREG_TRANS 0x1u	/* the range (and its pages) */
#define VHCA_DEVCMD_REREG_PD 0x2u
#define VHCA_DEVCMD_REREG_ACCESS 0x4u
#define VHCA_DEVCMD_REREG_ALL 0x7u

/*
 * IBTA 11.2.8.3 Reregister Memory Region: the MR keeps its handle and
 * gets new keys; the old ones stop working at once.
 */
struct vhca_devcmd_rereg_mr {
	__u32 handle;
	__u32 flags;		/* VHCA_DEVCMD_REREG_*, not 0 */
	__u32 pd_handle;	/* REREG_PD */
	__u32 access;		/* REREG_ACCESS: IB_UVERBS_ACCESS_* */
	__u64 addr;		/* REREG_TRANS: as REG_MR's */
	__u64 length;
	__u64 iova;
	struct vhca_devcmd_mem mem;	/* REREG_TRANS: as REG_MR's */
};

struct vhca_devcmd_rereg_mr_out {
	__u32 lkey;
	__u32 rkey;
};

/* ATTACH_MCAST, DETACH_MCAST (IBTA 10.5; ib_uverbs_attach_mcast). */
struct vhca_devcmd_mcast {
	__u8 gid[16];		/* the group's MGID (ff00::/8) */
	__u32 qp_handle;	/* a UD QP of the context */
	__u16 mlid;		/* its multicast LID, 0xc000..0xfffe */
	__u16 reserved;
};

#define VHCA_DEVCMD_NO_CHANNEL 0xffffffffu

struct vhca_devcmd_create_cq {
	__u64 user_handle;
	__u32 cqe;		/* asked for */
	__u32 comp_vector;
	__u32 channel;		/* driver's id, or VHCA_DEVCMD_NO_CHANNEL */
	__u32 cqe_count;	/* ring entries (a power of two) */
	__u64 ring_offset;
	__u64 db_offset;
	struct vhca_devcmd_mem mem;
};

struct vhca_devcmd_cq_out {
	__u32 handle;
	__u32 cqn;
	__u32 cqe;
	__u32 reserved;
};

struct vhca_devcmd_resize_cq {
	__u32 handle;
	__u32 cqe;
	__u32 cqe_count;
	__u32 reserved;
	__u64 ring_offset;
	__u64 db_offset;
	struct vhca_devcmd_mem mem;
};

struct vhca_devcmd_create_qp {
	__u64 user_handle;
	__u32 pd_handle, send_cq_handle, recv_cq_handle, srq_handle;
	__u32 max_send_wr, max_recv_wr, max_send_sge, max_recv_sge;
	__u32 max_inline_data;
	__u8 sq_sig_all, qp_type, is_srq, reserved;
	__u32 create_flags;
	/* where the rings are in the queue memory */
	__u64 sq_offset;
	__u32 sq_wqe_count, sq_stride;
	__u64 rq_offset;
	__u32 rq_wqe_count, rq_stride;
	__u64 db_offset;
	struct vhca_devcmd_mem mem;
};

struct vhca_devcmd_query_qp {
	__u32 handle;
	__u32 attr_mask;
};

struct vhca_devcmd_create_srq {
	struct ib_uverbs_create_srq core;
	__u32 wqe_count, stride;
	__u64 ring_offset, db_offset;
	struct vhca_devcmd_mem mem;
};

/*
 * Bodies not defined above: ALLOC_PD -> struct vhca_devcmd_handle;
 * DEALLOC_PD, DEREG_MR, DESTROY_CQ/QP/SRQ <- struct vhca_devcmd_handle;
 * RESIZE_CQ -> struct vhca_devcmd_cq_out; CREATE_QP -> struct
 * ib_uverbs_create_qp_resp; MODIFY_QP <- struct ib_uverbs_modify_qp;
 * QUERY_QP -> struct ib_uverbs_query_qp_resp; CREATE_SRQ -> struct
 * ib_uverbs_create_srq_resp; MODIFY_SRQ <- struct ib_uverbs_modify_srq;
 * QUERY_SRQ <- struct vhca_devcmd_handle, -> struct
 * ib_uverbs_query_srq_resp; QUERY_FUNCTION -> struct
 * vhca_devcmd_function; QUERY_COUNTERS -> struct vhca_devcmd_counters;
 * OPEN_CONTEXT -> struct vhca_devcmd_context_out; QUERY_ADDRS -> struct
 * vhca_devcmd_addrs; RESOLVE_ADDR <- struct vhca_devcmd_resolve, -> struct
 * vhca_devcmd_path; SEND_MAD <- struct vhca_devcmd_mad; RECV_MAD -> struct
 * vhca_devcmd_mad (-EAGAIN when QP1 holds none).
 */

/* ---- addresses (the IPoIB view of a port) -------------------------------------------
 *
 * The PF gives each VF's port IP addresses (IPv4 and IPv6, with a prefix
 * length), as an IPoIB interface on top of the port would have: the admin
 * provisions them (vhcactl, plans), the device keeps them.  RESOLVE_ADDR
 * is what ARP over IPoIB and the SA's PathRecord query together answer on
 * a real subnet: which port holds an address (or a GID), and the path from
 * this function's port to it (LIDs, the partition, MTU and rate).  It
 * fails with -EHOSTUNREACH when nobody holds the address or the holder
 * shares no partition with @pkey (ARP stays inside a partition), and with
 * -ENETDOWN when this port has no link.
 */
#define VHCA_DEVCMD_ADDRS_MAX 8

struct vhca_devcmd_addr {
	__u8 family;		/* AF_INET or AF_INET6 */
	__u8 prefix_len;
	__u8 reserved[2];
	__u8 addr[16];		/* network order; IPv4 in the first 4 bytes */
};

struct vhca_devcmd_addrs {
	__u32 count;
	__u32 reserved;
	struct vhca_devcmd_addr addr[VHCA_DEVCMD_ADDRS_MAX];
};

enum vhca_devcmd_resolve_kind {
	VHCA_DEVCMD_RESOLVE_IP = 1,	/* @addr is an IP address of @family */
	VHCA_DEVCMD_RESOLVE_GID = 2,	/* @addr is a port GID */
};

struct vhca_devcmd_resolve {
	__u32 kind;		/* enum vhca_devcmd_resolve_kind */
	__u16 pkey;		/* the partition; 0: this port's entry 0 */
	__u8 family;		/* RESOLVE_IP */
	__u8 reserved;
	__u8 addr[16];
};

/* A path record (IBTA 15.2.5.16) from this port to the holder. */
struct vhca_devcmd_path {
	__u64 subnet_prefix;	/* host byte order, as the GUIDs */
	__u64 sgid_guid;	/* this port's GUID: SGID = prefix + it */
	__u64 dgid_guid;	/* the holder's port GUID */
	__u64 dst_node_guid;
	__u16 slid, dlid;
	__u16 pkey;
	__u8 mtu;		/* enum ibv_mtu: the smaller of the two ports */
	__u8 rate;		/* IB static rate code (enum ibv_rate) */
	__u8 sl;
	__u8 packet_life_time;	/* 4.096 us * 2^n, one way */
	__u8 hop_limit;
	__u8 reserved[5];
};

/* ---- management datagrams (QP1, the GSI) --------------------------------------------
 *
 * Every port has QP1, the general services interface (IBTA 13.5): the
 * driver sends and receives 256-byte MADs on it, the connection manager's
 * among them.  The device builds the UD packet itself (source LID and
 * QPN 1, the P_Key of @pkey_index, the GSI Q_Key) and puts it through the
 * switch like any other: a port without link sends nothing (-ENETDOWN),
 * an empty P_Key entry is a transmit constraint error, the receiving port
 * takes only MADs whose P_Key is in its table and keeps at most
 * VHCA_GSI_QUEUE of them (more are dropped and counted).  The MAD's
 * contents are not the device's business: they are hostile input for the
 * receiving driver.
 */
#define VHCA_MAD_SIZE 256
#define VHCA_GSI_QPN 1u
#define VHCA_GSI_QKEY 0x80010000u

struct vhca_devcmd_mad {
	__u16 lid;		/* send: the DLID; received: the SLID */
	__u16 pkey_index;	/* send: P_Key to use; received: the entry it matched */
	__u32 remote_qpn;	/* send: 1; received: the source QPN (1) */
	__u16 pkey;		/* received: the packet's P_Key */
	__u8 sl;
	__u8 reserved[5];
	__u8 mad[VHCA_MAD_SIZE];
};

/* ---- events ---------------------------------------------------------------------- */

enum vhca_devcmd_event_type {
	/* CQ @handle of the context has a completion event (it was armed). */
	VHCA_DEVCMD_EV_COMP = 1,
	/* An affiliated async event (@event: enum ibv_event_type) of @handle. */
	VHCA_DEVCMD_EV_ASYNC = 2,
	/* The function changed (@event: GID, P_Key, port): query it again. */
	VHCA_DEVCMD_EV_FUNCTION = 3,
	/* QP1 of the function received MADs: take them with RECV_MAD. */
	VHCA_DEVCMD_EV_MAD = 4,
};

struct vhca_devcmd_event {
	__u16 type;		/* enum vhca_devcmd_event_type */
	__u16 reserved;
	__u32 context;
	__u64 cookie;		/* the context's, from OPEN_CONTEXT */
	__u64 user_handle;	/* of the object */
	__u32 handle;		/* the object's */
	__u32 event;
	__u32 channel;		/* COMP: the CQ's channel */
	__u32 reserved2;
};

#endif /* VHCA_DEVCMD_H */
