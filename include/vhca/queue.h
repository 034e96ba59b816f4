/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhca data-path layouts: work queue entries, completion queue entries,
 * doorbell records and the per-context doorbell page.  The provider writes
 * WQEs and doorbells, the device (vhcad's engine) reads them; the device
 * writes CQEs, the provider reads them.  All of it lives in memfd-backed
 * shared mappings: the provider creates each memfd (MFD_ALLOW_SEALING),
 * seals it against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW |
 * F_SEAL_SEAL), and passes (fd, size) in the create command's udata; the
 * device takes the fd with pidfd_getfd(), checks the seals and the size,
 * and maps it MAP_SHARED.  The device copies every WQE out of the ring
 * before validating it: the guest can rewrite its rings at any time.
 *
 * All multi-byte fields are little-endian host order (x86-64, aarch64),
 * except imm_data which is carried as the __be32 the verbs API uses.
 * docs/prm.md is the reference for every field.
 *
 * Ordering rules (rdma-core naming):
 *  - provider: write the WQE, udma_to_device_barrier() (release), then
 *    publish the new producer index with a release store; then, if
 *    ctx page needs_wakeup is set (read after a full barrier), write(2)
 *    8 bytes to the context's wake eventfd.
 *  - device: set needs_wakeup, full barrier, re-check every doorbell,
 *    then sleep.  CQE: write the body, release barrier, then the owner
 *    byte; the provider reads the owner byte with acquire, then the body.
 */
#ifndef VHCA_QUEUE_H
#define VHCA_QUEUE_H

#include <linux/types.h>

#define VHCA_PAGE_SIZE 4096

/* ---- work requests ---------------------------------------------------- */

/* opcodes: the values of enum ibv_wr_opcode for the ones we support */
enum vhca_wqe_opcode {
	VHCA_WQE_RDMA_WRITE = 0,
	VHCA_WQE_RDMA_WRITE_WITH_IMM = 1,
	VHCA_WQE_SEND = 2,
	VHCA_WQE_SEND_WITH_IMM = 3,
	VHCA_WQE_RDMA_READ = 4,
	VHCA_WQE_ATOMIC_CMP_AND_SWP = 5,
	VHCA_WQE_ATOMIC_FETCH_AND_ADD = 6,
	/* IBTA 1.5 (A19): 8 bytes, in atomic.compare_add, stored at once */
	VHCA_WQE_ATOMIC_WRITE = 15,
};

enum vhca_wqe_flags {
	VHCA_WQE_SIGNALED = 1 << 0,
	VHCA_WQE_SOLICITED = 1 << 1,
	VHCA_WQE_INLINE = 1 << 2,
	VHCA_WQE_FENCE = 1 << 3,
};

struct vhca_sge {
	__u64 addr;
	__u32 length;
	__u32 lkey;
};

/* UD destination, copied from the AH (the provider keeps AHs itself). */
struct vhca_ud_dest {
	__u32 remote_qpn;
	__u32 remote_qkey;
	__u16 dlid;
	__u8 sl;
	__u8 port_num;
	__u8 is_global;
	__u8 hop_limit;
	__u8 sgid_index;
	__u8 traffic_class;
	__u32 flow_label;
	__u8 dgid[16];
};

/*
 * Send WQE: a 96-byte header followed by num_sge struct vhca_sge, or by
 * inline_len bytes of data when VHCA_WQE_INLINE.  Slots are sq_stride
 * bytes (a power of two >= 128, chosen at create time).
 */
struct vhca_send_wqe {
	__u64 wr_id;
	__u8 opcode;		/* enum vhca_wqe_opcode */
	__u8 flags;		/* enum vhca_wqe_flags */
	__u8 num_sge;
	__u8 reserved0;
	__be32 imm_data;
	__u32 inline_len;
	__u32 reserved1;
	union {
		struct {
			__u64 remote_addr;
			__u32 rkey;
			__u32 reserved;
		} rdma;
		struct {
			__u64 remote_addr;
			__u64 compare_add;
			__u64 swap;
			__u32 rkey;
			__u32 reserved;
		} atomic;
		struct vhca_ud_dest ud;
		__u8 raw[72];
	};
};

/* Receive WQE: header then num_sge struct vhca_sge; rq_stride slots. */
struct vhca_recv_wqe {
	__u64 wr_id;
	__u32 num_sge;
	__u32 reserved;
};

/* ---- completions ------------------------------------------------------ */

/* The device clock CQEs are stamped with (hca_core_clock, kHz): 1 GHz. */
#define VHCA_CORE_CLOCK_KHZ 1000000u

/*
 * 64-byte CQE.  owner is written last: a CQE at ring index i (counting
 * from 0 forever) is valid when (owner & 1) == ((i / cqe_count) & 1) ^ 1,
 * i.e. the first pass over a zeroed ring writes owner 1, the second 0, …
 *
 * RESIZE_CQ passes a new memfd (struct vhca_create_cq_cmd, zeroed ring):
 * the device copies the CQEs not yet consumed (db->consumer up to its
 * producer), in order, to indices 0.. of the new ring (owner 1), moves
 * the arm state to the new doorbell record, and continues there; the
 * provider restarts its consumer at 0.  EINVAL (nothing changed) when
 * more CQEs are unconsumed than the new size.
 */
struct vhca_cqe {
	__u64 wr_id;
	__u32 status;		/* enum ibv_wc_status */
	__u32 opcode;		/* enum ibv_wc_opcode */
	__u32 vendor_err;
	__u32 byte_len;
	__be32 imm_data;	/* or invalidated rkey */
	__u32 qp_num;
	__u32 src_qp;
	__u32 wc_flags;		/* enum ibv_wc_flags */
	__u16 pkey_index;
	__u16 slid;
	__u8 sl;
	__u8 dlid_path_bits;
	__u8 reserved[2];
	/*
	 * When the device wrote the CQE, in its clock's ticks: nanoseconds
	 * of the device host's CLOCK_MONOTONIC (hca_core_clock 1 GHz).
	 */
	__u64 timestamp;
	__u8 reserved2[3];
	__u8 owner;
};
_Static_assert(sizeof(struct vhca_cqe) == 64, "a CQE is 64 bytes");
_Static_assert(__builtin_offsetof(struct vhca_cqe, owner) == 59,
	       "owner is the CQE's last byte written");

/* ---- doorbell records (inside each queue's memfd, at db_offset) ------- */

/*
 * queued: the provider sets it (atomic exchange) when it pushes the queue
 * onto the context's doorbell FIFO; the device clears it when it pops the
 * entry.  A queue whose flag is already set is not pushed again.
 */
struct vhca_qp_db {
	__u32 sq_head;		/* provider: WQEs posted (free-running) */
	__u32 rq_head;		/* provider: receive WQEs posted */
	__u32 sq_tail;		/* device: WQEs consumed (informational) */
	__u32 rq_tail;		/* device: receive WQEs consumed */
	__u32 queued;
	/*
	 * device: 1 once the QP is in the error state, where every receive
	 * posted must be flushed.  Until then the device reads the RQ when
	 * a message arrives and needs no doorbell for a receive post (a
	 * requester in RNR wait retries on its timer, as on the wire), so
	 * the provider rings for receives only while this is set; it loads
	 * it after a full barrier that follows its rq_head store.
	 */
	__u32 rq_notify;
	__u32 reserved[2];
};

struct vhca_srq_db {
	__u32 head;		/* provider: receive WQEs posted */
	__u32 tail;		/* device: receive WQEs consumed */
	__u32 queued;
	__u32 reserved;
};

enum vhca_cq_arm {
	VHCA_CQ_DISARMED = 0,
	VHCA_CQ_ARM_NEXT = 1,		/* any completion */
	VHCA_CQ_ARM_SOLICITED = 2,	/* solicited or error completions */
};

struct vhca_cq_db {
	__u32 consumer;		/* provider: CQEs consumed (free-running) */
	__u32 arm;		/* provider sets, device clears (xchg) */
	__u32 producer;		/* device: CQEs written (informational) */
	__u32 reserved;
};

/* ---- per-context doorbell page ---------------------------------------- */

/*
 * One page per context (a sealed memfd passed at GET_CONTEXT).  When the
 * provider rings a QP or SRQ doorbell whose `queued` flag it finds clear,
 * it sets the flag and pushes the queue's handle onto this FIFO, so the
 * engine visits only queues that have work.  The engine pops, clears the
 * flag, then re-reads the doorbell; overflow (FIFO full) sets
 * `overflow`, which makes the engine scan the context's queues once.
 */
#define VHCA_DB_FIFO_LEN 960

enum vhca_db_kind {
	VHCA_DB_QP = 0,
	VHCA_DB_SRQ = 1,
};

struct vhca_ctx_page {
	__u32 needs_wakeup;	/* device: set before sleeping */
	__u32 overflow;		/* provider sets, device clears */
	__u32 fifo_head;	/* provider: entries pushed */
	__u32 fifo_tail;	/* device: entries popped */
	__u64 reserved[6];
	/* entry: handle << 1 | enum vhca_db_kind */
	__u32 fifo[VHCA_DB_FIFO_LEN];
};

#endif /* VHCA_QUEUE_H */
