/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhca device interface shared by the provider (providers/vhca) and the
 * device (kernel-shim/vhcad).  Everything here crosses the trust boundary:
 * the daemon treats every field as hostile input.
 *
 * Commands use the kernel's uverbs write ABI (<rdma/ib_user_verbs.h>); the
 * structures below are the provider-specific "udata" that follows the core
 * payload, exactly as a hardware provider's <rdma/xxx-abi.h> does.
 * docs/prm.md explains every field.
 */
#ifndef VHCA_ABI_H
#define VHCA_ABI_H

#include <linux/types.h>

/*
 * Provider ABI version.  Published in sysfs as
 * class/infiniband_verbs/uverbsN/abi_version; the provider accepts exactly
 * this one.
 */
#define VHCA_UVERBS_ABI_VERSION 1

/* The kernel's uverbs ABI version (class/infiniband_verbs/abi_version). */
#define VHCA_UVERBS_CORE_ABI_VERSION 6

/*
 * Device memory (ibv_alloc_dm) is the provider's own pages, registered as
 * zero-based MRs: the device has no memory of its own to carve it from.
 * The largest allocation EX_QUERY_DEVICE advertises (max_dm_size), as a
 * ConnectX's MEMIC offers 256 KiB.
 */
#define VHCA_MAX_DM_SIZE (256u << 10)

/* Name of the command file in each class/infiniband_verbs/uverbsN/ dir. */
#define VHCA_CMD_FILE_NAME "vhca_cmd"

/*
 * Completion channels are created by libibverbs without asking the
 * provider, yet must be real fds in the caller.  So the provider pre-creates
 * pipes and hands them to the device in batches; the device keeps the write
 * ends (pidfd_getfd) and returns a read end for each CREATE_COMP_CHANNEL.
 */
#define VHCA_CHANNEL_BATCH 8

struct vhca_fd_pair {
	__s32 read_fd;	/* stays with the caller */
	__s32 write_fd;	/* taken by the device; caller closes it afterwards */
};

/* udata of IB_USER_VERBS_CMD_GET_CONTEXT (provider -> device) */
struct vhca_alloc_ucontext_cmd {
	__u32 abi_version;		/* VHCA_UVERBS_ABI_VERSION */
	__u32 num_channels;		/* valid entries in channels[] */
	struct vhca_fd_pair async_event;	/* read_fd becomes async_fd */
	/*
	 * The device writes one byte (VHCA_SERVICE_REFILL_CHANNELS) to
	 * service.write_fd when its channel pool runs low; the provider's
	 * service thread then sends VHCA_CMD_ADD_CHANNELS.  read_fd is
	 * informational only.
	 */
	struct vhca_fd_pair service;
	struct vhca_fd_pair channels[VHCA_CHANNEL_BATCH];
	/*
	 * Data path (include/vhca/queue.h): a sealed memfd holding the
	 * struct vhca_ctx_page, and an eventfd the provider writes to wake
	 * the engine when the page says needs_wakeup.  The device takes both
	 * with pidfd_getfd(); the provider keeps its own copies.
	 */
	__s32 ctx_page_fd;
	__s32 wake_fd;
};

/* udata of the GET_CONTEXT response (device -> provider) */
/* The context is a VM's (docs/vm.md): see vhca_alloc_ucontext_resp. */
#define VHCA_CTX_RESP_VM 0x1

struct vhca_alloc_ucontext_resp {
	__u32 abi_version;
	__u32 max_inline_data;
	__u32 max_send_sge;
	__u32 max_recv_sge;
	__u64 reserved[3];
	/*
	 * With VHCA_CTX_RESP_VM the provider pins what it registers
	 * (mlock(), as the kernel's umem would) and wakes the device with
	 * one MMIO write instead of the eventfd: the 32-bit register at
	 * @doorbell_offset of the first page of the file @doorbell_path
	 * (the VF's BAR0), written with @doorbell_value.
	 */
	__u32 flags;
	__u32 doorbell_offset;
	__u32 doorbell_value;
	__u32 reserved2;
	char doorbell_path[96];
};

/*
 * Queue memory: one sealed memfd per CQ, QP and SRQ (include/vhca/queue.h
 * for what is inside).  Offsets are from the start of the memfd; every
 * region must lie inside it, not overlap another, and rings must be
 * VHCA_PAGE_SIZE aligned.  Counts are powers of two.
 */

/* udata of IB_USER_VERBS_CMD_CREATE_CQ / RESIZE_CQ */
struct vhca_create_cq_cmd {
	__s32 buf_fd;
	__u32 cqe_count;	/* ring entries: power of two > requested cqe */
	__u64 buf_size;		/* bytes of the memfd the device maps */
	__u64 ring_offset;	/* struct vhca_cqe[cqe_count] */
	__u64 db_offset;	/* struct vhca_cq_db */
};

struct vhca_create_cq_resp {
	__u32 cqn;
	__u32 reserved;
};

/* udata of IB_USER_VERBS_CMD_CREATE_QP */
struct vhca_create_qp_cmd {
	__s32 buf_fd;
	__u32 reserved;
	__u64 buf_size;
	__u64 sq_offset;
	__u32 sq_wqe_count;	/* power of two, 0 for none */
	__u32 sq_stride;	/* bytes per send WQE slot, power of two */
	__u64 rq_offset;
	__u32 rq_wqe_count;	/* 0 with an SRQ */
	__u32 rq_stride;
	__u64 db_offset;	/* struct vhca_qp_db */
};

struct vhca_create_qp_resp {
	__u32 max_inline_data;
	__u32 reserved;
};

/* udata of IB_USER_VERBS_CMD_CREATE_SRQ */
struct vhca_create_srq_cmd {
	__s32 buf_fd;
	__u32 wqe_count;
	__u64 buf_size;
	__u64 ring_offset;
	__u32 stride;
	__u32 reserved;
	__u64 db_offset;	/* struct vhca_srq_db */
};

struct vhca_create_srq_resp {
	__u32 srqn;
	__u32 reserved;
};

#define VHCA_SERVICE_REFILL_CHANNELS 'R'

/*
 * vhca private commands: same framing as the uverbs write ABI
 * (struct ib_uverbs_cmd_hdr, command number in the low 8 bits, never
 * extended), in a range the kernel does not use.
 */
enum {
	VHCA_CMD_ADD_CHANNELS = 0xc0,
	VHCA_CMD_RETURN_CHANNELS = 0xc1,
};

/* payload of VHCA_CMD_ADD_CHANNELS; no response */
struct vhca_add_channels_cmd {
	__u32 num_channels;
	__u32 reserved;
	struct vhca_fd_pair channels[VHCA_CHANNEL_BATCH];
};

/*
 * payload of VHCA_CMD_RETURN_CHANNELS, sent by the provider when it closes
 * the context: the device forgets every pooled channel it never handed
 * out and lists their read ends in the response, so the provider closes
 * exactly those and nothing an application still owns.
 */
#define VHCA_CHANNEL_POOL_MAX 32

struct vhca_return_channels_cmd {
	__u64 response;		/* struct vhca_return_channels_resp */
};

struct vhca_return_channels_resp {
	__u32 num_fds;
	__u32 reserved;
	__s32 read_fds[VHCA_CHANNEL_POOL_MAX];
};

/*
 * REG_MR has no provider data: the device checks the range against the
 * caller's mappings itself.  ALLOC_PD and DEALLOC_PD have none either.
 */

#endif /* VHCA_ABI_H */
