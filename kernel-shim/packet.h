/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Modelled IB packets and the memory they move.
 *
 * A packet carries the LRH/BTH fields and extension headers the IBTA
 * defines; local delivery hands it to the responder by function call, and
 * a remote link would serialize the same fields.  Packets are message
 * sized: MTU segmentation is not modelled for local delivery (payload
 * moves through the engine's bounce buffer in 256 KiB chunks instead).
 * The payload is described, not carried: a scatter/gather list of
 * validated guest memory (or inline bytes from the WQE copy), which the
 * responder pulls from when it places the data.
 */
#ifndef VHCA_PACKET_H
#define VHCA_PACKET_H

#include <stdbool.h>
#include <stdint.h>

#include <vhca/queue.h>

#include "dma.h"

struct vhca_dev;
struct vhca_mr;
struct vhca_qp;

/* BTH opcode low 5 bits (IBTA 9.2, table 35); the high 3 are the type. */
enum vhca_bth_op {
	VHCA_OP_SEND_ONLY = 0x04,
	VHCA_OP_SEND_ONLY_IMM = 0x05,
	VHCA_OP_WRITE_ONLY = 0x0a,
	VHCA_OP_WRITE_ONLY_IMM = 0x0b,
	VHCA_OP_READ_REQUEST = 0x0c,
	VHCA_OP_CMP_SWAP = 0x13,
	VHCA_OP_FETCH_ADD = 0x14,
};

enum vhca_bth_transport {
	VHCA_TRANSPORT_RC = 0x00,
	VHCA_TRANSPORT_UC = 0x20,
	VHCA_TRANSPORT_UD = 0x60,
};

/* Chunk of the engine's bounce buffer. */
#define VHCA_BOUNCE_SIZE (256 * 1024)
#define VHCA_SGL_MAX 16

/* Validated guest memory: segments of one process, MRs referenced. */
struct vhca_sgl {
	unsigned int num;
	uint32_t total;
	struct {
		struct vhca_mr *mr;
		uint64_t addr;		/* guest virtual address */
		uint32_t len;
	} seg[VHCA_SGL_MAX];
};

struct vhca_payload {
	const struct vhca_sgl *sgl;	/* or */
	const uint8_t *inline_data;	/* bytes from the WQE copy */
	uint32_t len;
};

struct vhca_pkt {
	/* LRH */
	uint16_t dlid, slid;
	uint8_t sl;
	/* BTH */
	uint8_t opcode;			/* transport | enum vhca_bth_op */
	bool solicited;
	uint16_t pkey;
	uint32_t dest_qpn;
	uint32_t psn;
	/* DETH (UD) */
	uint32_t qkey;
	uint32_t src_qpn;
	/* RETH */
	uint64_t va;
	uint32_t rkey;
	uint32_t dma_len;
	/* AtomicETH */
	uint64_t swap_add, compare;
	/* ImmDt */
	bool has_imm;
	__be32 imm;
	/* GRH (UD with a global route) */
	bool has_grh;
	const struct vhca_ud_dest *grh_dest;
	const uint8_t *sgid;		/* 16 bytes */
	/* payload of SEND/WRITE; destination of a READ */
	struct vhca_payload payload;
	struct vhca_sgl *read_dest;
	/* source of the packet, for CQEs */
	const struct vhca_qp *src_qp;
};

/* The responder's answer (AETH syndrome, atomic ACK). */
enum vhca_ack_kind {
	VHCA_ACK = 0,
	VHCA_NAK_RNR,			/* no receive WQE yet */
	VHCA_NAK_INV_REQ,		/* invalid request */
	VHCA_NAK_REM_ACCESS,		/* rkey/bounds/access */
	VHCA_NAK_REM_OP,		/* responder's own failure */
	VHCA_DROPPED,			/* nobody answered */
	VHCA_LOCAL_FAULT,		/* the requester's own memory failed */
};

struct vhca_ack {
	enum vhca_ack_kind kind;
	uint8_t rnr_timer;		/* responder's min_rnr_timer */
	uint64_t atomic_orig;
};

/* Local delivery: the responder side of a packet. */
void vhca_deliver(struct vhca_dev *src_dev, const struct vhca_pkt *pkt,
		  struct vhca_ack *ack);

/* Validated access to one key's memory, appended to @sgl. */
enum vhca_key_check {
	VHCA_KEY_OK = 0,
	VHCA_KEY_BAD,		/* unknown key, PD, access or bounds */
};

/*
 * Appends [iova, iova + len) of the MR with @key to @sgl, if the MR
 * belongs to @dev and PD @pdn, allows @access (IB_UVERBS_ACCESS_*, 0 for
 * a local read) and contains the range.  len 0 appends nothing.
 */
enum vhca_key_check vhca_sgl_add(struct vhca_sgl *sgl,
				 const struct vhca_dev *dev, uint64_t pdn,
				 uint32_t key, uint64_t iova, uint32_t len,
				 uint32_t access);
void vhca_sgl_release(struct vhca_sgl *sgl);

/* Copy outcome: which side's memory failed, if any. */
enum vhca_copy_result {
	VHCA_COPY_OK = 0,
	VHCA_COPY_SRC_FAULT,
	VHCA_COPY_DST_FAULT,
	VHCA_COPY_DST_SHORT,	/* destination smaller than the payload */
};

/* Moves @src into @dst at offset @dst_off through the bounce buffer. */
enum vhca_copy_result vhca_copy(const struct vhca_payload *src,
				const struct vhca_sgl *dst, uint32_t dst_off);

/* Reads/writes one 8-byte word of an sgl's first segment. */
int vhca_sgl_read64(const struct vhca_sgl *sgl, uint64_t *val);
int vhca_sgl_write64(const struct vhca_sgl *sgl, uint64_t val);

#endif /* VHCA_PACKET_H */
