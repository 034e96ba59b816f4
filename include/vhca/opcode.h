/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The opcode tables, once, for the provider and the device (rxe's
 * rxe_opcode.c is the model): for each work request opcode, which QP
 * types may carry it, what it reads and writes locally and remotely, its
 * BTH operation and its send completion opcode; for each BTH opcode
 * (IBTA 9.2, table 35), its transport, its extension headers and where it
 * stands in a message.  Tables, not switches: a new operation is a new
 * row.
 */
#ifndef VHCA_OPCODE_H
#define VHCA_OPCODE_H

#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include <vhca/queue.h>

/* QP types as bits (enum ibv_qp_type values 2, 3, 4). */
#define VHCA_QPT_BIT(type) (1u << (type))
#define VHCA_QPT_RC_BIT VHCA_QPT_BIT(IBV_QPT_RC)
#define VHCA_QPT_UC_BIT VHCA_QPT_BIT(IBV_QPT_UC)
#define VHCA_QPT_UD_BIT VHCA_QPT_BIT(IBV_QPT_UD)

/* What a work request does. */
enum vhca_wr_flag {
	VHCA_WR_SENDS_PAYLOAD = 1 << 0,	/* gathers its SGL (or inline data) */
	VHCA_WR_READS_INTO = 1 << 1,	/* scatters a result into its SGL */
	VHCA_WR_RETH = 1 << 2,		/* remote address and rkey */
	VHCA_WR_ATOMIC = 1 << 3,	/* AtomicETH, one aligned 8-byte word */
	VHCA_WR_IMM = 1 << 4,		/* carries immediate data */
	VHCA_WR_CONSUMES_RECV = 1 << 5,	/* takes a receive WQE at the target */
	VHCA_WR_INLINE_OK = 1 << 6,	/* IBV_SEND_INLINE is honoured */
	VHCA_WR_RD_ATOMIC = 1 << 7,	/* counts against max_rd_atomic */
	/*
	 * Its 8-byte payload is in the WQE (atomic.compare_add), its
	 * target in atomic.remote_addr/rkey: ATOMIC WRITE.
	 */
	VHCA_WR_WQE_DATA = 1 << 8,
};

struct vhca_wr_info {
	const char *name;
	uint8_t qp_types;		/* VHCA_QPT_*_BIT */
	uint16_t flags;			/* enum vhca_wr_flag */
	uint8_t bth_op;			/* BTH operation of the first packet */
	uint8_t wc_opcode;		/* enum ibv_wc_opcode of its completion */
	uint64_t qp_ex_op;		/* IBV_QP_EX_WITH_* for ibv_wr_* */
	uint32_t remote_access;		/* IB_UVERBS_ACCESS_* the target needs */
	uint32_t local_access;		/* and the local SGL's MRs */
};

/* BTH operations, the low 5 bits of the opcode (IBTA table 35). */
enum vhca_bth_op {
	VHCA_OP_SEND_FIRST = 0x00,
	VHCA_OP_SEND_MIDDLE = 0x01,
	VHCA_OP_SEND_LAST = 0x02,
	VHCA_OP_SEND_LAST_IMM = 0x03,
	VHCA_OP_SEND_ONLY = 0x04,
	VHCA_OP_SEND_ONLY_IMM = 0x05,
	VHCA_OP_WRITE_FIRST = 0x06,
	VHCA_OP_WRITE_MIDDLE = 0x07,
	VHCA_OP_WRITE_LAST = 0x08,
	VHCA_OP_WRITE_LAST_IMM = 0x09,
	VHCA_OP_WRITE_ONLY = 0x0a,
	VHCA_OP_WRITE_ONLY_IMM = 0x0b,
	VHCA_OP_READ_REQUEST = 0x0c,
	VHCA_OP_READ_RESP_FIRST = 0x0d,
	VHCA_OP_READ_RESP_MIDDLE = 0x0e,
	VHCA_OP_READ_RESP_LAST = 0x0f,
	VHCA_OP_READ_RESP_ONLY = 0x10,
	VHCA_OP_ACK = 0x11,
	VHCA_OP_ATOMIC_ACK = 0x12,
	VHCA_OP_CMP_SWAP = 0x13,
	VHCA_OP_FETCH_ADD = 0x14,
	VHCA_OP_ATOMIC_WRITE = 0x1d,	/* IBTA 1.5 (A19), RC only */
};

/* BTH transport, the high 3 bits. */
enum vhca_bth_transport {
	VHCA_TR_RC = 0x00,
	VHCA_TR_UC = 0x20,
	VHCA_TR_UD = 0x60,
};

#define VHCA_BTH_OP(opcode) ((opcode) & 0x1f)
#define VHCA_BTH_TR(opcode) ((opcode) & 0xe0)

/* Work request opcodes, indexed by enum vhca_wqe_opcode. */
#define VHCA_WQE_OPCODE_COUNT 16

static const struct vhca_wr_info vhca_wr_table[VHCA_WQE_OPCODE_COUNT] = {
	[VHCA_WQE_RDMA_WRITE] = {
		.name = "RDMA_WRITE",
		.qp_types = VHCA_QPT_RC_BIT | VHCA_QPT_UC_BIT,
		.flags = VHCA_WR_SENDS_PAYLOAD | VHCA_WR_RETH |
			 VHCA_WR_INLINE_OK,
		.bth_op = VHCA_OP_WRITE_FIRST,
		.wc_opcode = IBV_WC_RDMA_WRITE,
		.qp_ex_op = IBV_QP_EX_WITH_RDMA_WRITE,
		.remote_access = IB_UVERBS_ACCESS_REMOTE_WRITE,
	},
	[VHCA_WQE_RDMA_WRITE_WITH_IMM] = {
		.name = "RDMA_WRITE_WITH_IMM",
		.qp_types = VHCA_QPT_RC_BIT | VHCA_QPT_UC_BIT,
		.flags = VHCA_WR_SENDS_PAYLOAD | VHCA_WR_RETH | VHCA_WR_IMM |
			 VHCA_WR_CONSUMES_RECV | VHCA_WR_INLINE_OK,
		.bth_op = VHCA_OP_WRITE_FIRST,
		.wc_opcode = IBV_WC_RDMA_WRITE,
		.qp_ex_op = IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM,
		.remote_access = IB_UVERBS_ACCESS_REMOTE_WRITE,
	},
	[VHCA_WQE_SEND] = {
		.name = "SEND",
		.qp_types = VHCA_QPT_RC_BIT | VHCA_QPT_UC_BIT | VHCA_QPT_UD_BIT,
		.flags = VHCA_WR_SENDS_PAYLOAD | VHCA_WR_CONSUMES_RECV |
			 VHCA_WR_INLINE_OK,
		.bth_op = VHCA_OP_SEND_FIRST,
		.wc_opcode = IBV_WC_SEND,
		.qp_ex_op = IBV_QP_EX_WITH_SEND,
	},
	[VHCA_WQE_SEND_WITH_IMM] = {
		.name = "SEND_WITH_IMM",
		.qp_types = VHCA_QPT_RC_BIT | VHCA_QPT_UC_BIT | VHCA_QPT_UD_BIT,
		.flags = VHCA_WR_SENDS_PAYLOAD | VHCA_WR_IMM |
			 VHCA_WR_CONSUMES_RECV | VHCA_WR_INLINE_OK,
		.bth_op = VHCA_OP_SEND_FIRST,
		.wc_opcode = IBV_WC_SEND,
		.qp_ex_op = IBV_QP_EX_WITH_SEND_WITH_IMM,
	},
	[VHCA_WQE_RDMA_READ] = {
		.name = "RDMA_READ",
		.qp_types = VHCA_QPT_RC_BIT,
		.flags = VHCA_WR_READS_INTO | VHCA_WR_RETH |
			 VHCA_WR_RD_ATOMIC,
		.bth_op = VHCA_OP_READ_REQUEST,
		.wc_opcode = IBV_WC_RDMA_READ,
		.qp_ex_op = IBV_QP_EX_WITH_RDMA_READ,
		.remote_access = IB_UVERBS_ACCESS_REMOTE_READ,
		.local_access = IB_UVERBS_ACCESS_LOCAL_WRITE,
	},
	[VHCA_WQE_ATOMIC_CMP_AND_SWP] = {
		.name = "ATOMIC_CMP_AND_SWP",
		.qp_types = VHCA_QPT_RC_BIT,
		.flags = VHCA_WR_READS_INTO | VHCA_WR_ATOMIC |
			 VHCA_WR_RD_ATOMIC,
		.bth_op = VHCA_OP_CMP_SWAP,
		.wc_opcode = IBV_WC_COMP_SWAP,
		.qp_ex_op = IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP,
		.remote_access = IB_UVERBS_ACCESS_REMOTE_ATOMIC,
		.local_access = IB_UVERBS_ACCESS_LOCAL_WRITE,
	},
	[VHCA_WQE_ATOMIC_FETCH_AND_ADD] = {
		.name = "ATOMIC_FETCH_AND_ADD",
		.qp_types = VHCA_QPT_RC_BIT,
		.flags = VHCA_WR_READS_INTO | VHCA_WR_ATOMIC |
			 VHCA_WR_RD_ATOMIC,
		.bth_op = VHCA_OP_FETCH_ADD,
		.wc_opcode = IBV_WC_FETCH_ADD,
		.qp_ex_op = IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD,
		.remote_access = IB_UVERBS_ACCESS_REMOTE_ATOMIC,
		.local_access = IB_UVERBS_ACCESS_LOCAL_WRITE,
	},
	/*
	 * RDMA ATOMIC WRITE (IBTA 1.5, annex A19; rxe's IB_WR_ATOMIC_WRITE):
	 * 8 bytes from the WQE to an 8-byte aligned remote address of an MR
	 * with REMOTE_WRITE, written as one store; acknowledged as a WRITE.
	 */
	[VHCA_WQE_ATOMIC_WRITE] = {
		.name = "ATOMIC_WRITE",
		.qp_types = VHCA_QPT_RC_BIT,
		.flags = VHCA_WR_WQE_DATA,
		.bth_op = VHCA_OP_ATOMIC_WRITE,
		.wc_opcode = IBV_WC_ATOMIC_WRITE,
		.qp_ex_op = IBV_QP_EX_WITH_ATOMIC_WRITE,
		.remote_access = IB_UVERBS_ACCESS_REMOTE_WRITE,
	},
};

/* The row of a WQE opcode, or NULL for one the device does not have. */
static inline const struct vhca_wr_info *vhca_wr_info(unsigned int opcode)
{
	if (opcode >= VHCA_WQE_OPCODE_COUNT || !vhca_wr_table[opcode].name)
		return NULL;
	return &vhca_wr_table[opcode];
}

/* May a QP of @qp_type post @opcode? */
static inline bool vhca_wr_allowed(unsigned int opcode, unsigned int qp_type)
{
	const struct vhca_wr_info *info = vhca_wr_info(opcode);

	return info && qp_type < 8 && (info->qp_types & VHCA_QPT_BIT(qp_type));
}

/* The ibv_wr_* operations a QP type may carry (IBV_QP_EX_WITH_*). */
static inline uint64_t vhca_wr_ops_of(unsigned int qp_type)
{
	uint64_t ops = 0;

	for (unsigned int op = 0; op < VHCA_WQE_OPCODE_COUNT; op++)
		if (vhca_wr_allowed(op, qp_type))
			ops |= vhca_wr_table[op].qp_ex_op;
	return ops;
}

/* What a BTH opcode carries and where it stands (rxe's opcode masks). */
enum vhca_pkt_flag {
	VHCA_PKT_REQ = 1u << 0,		/* a request (else a response) */
	VHCA_PKT_RETH = 1u << 1,
	VHCA_PKT_AETH = 1u << 2,
	VHCA_PKT_ATOMIC_ETH = 1u << 3,
	VHCA_PKT_ATOMIC_ACK = 1u << 4,
	VHCA_PKT_DETH = 1u << 5,
	VHCA_PKT_IMM = 1u << 6,
	VHCA_PKT_PAYLOAD = 1u << 7,	/* may carry data */
	VHCA_PKT_START = 1u << 8,	/* first (or only) packet */
	VHCA_PKT_END = 1u << 9,		/* last (or only) packet */
	VHCA_PKT_SEND = 1u << 10,
	VHCA_PKT_WRITE = 1u << 11,
	VHCA_PKT_READ = 1u << 12,	/* READ request */
	VHCA_PKT_ATOMIC = 1u << 13,	/* atomic request */
	VHCA_PKT_READ_RESP = 1u << 14,
	VHCA_PKT_RWR = 1u << 15,	/* consumes a receive WQE */
	VHCA_PKT_ATOMIC_WRITE = 1u << 16,	/* 8 aligned bytes, one store */
};

struct vhca_pkt_info {
	const char *name;
	uint32_t flags;			/* enum vhca_pkt_flag */
	uint8_t qp_types;		/* VHCA_QPT_*_BIT: who may receive it */
	uint8_t wc_opcode;		/* receive completion, if RWR */
};

#define VHCA_PKT_SEND_ANY                                                     \
	(VHCA_PKT_REQ | VHCA_PKT_PAYLOAD | VHCA_PKT_SEND | VHCA_PKT_RWR)
#define VHCA_PKT_WRITE_ANY (VHCA_PKT_REQ | VHCA_PKT_PAYLOAD | VHCA_PKT_WRITE)

/* The RC and UC rows share operations; UC is RC's table offset by 0x20. */
#define VHCA_RC_UC_ROWS(tr, types)                                            \
	[(tr) | VHCA_OP_SEND_FIRST] = { "SEND_FIRST",                         \
		VHCA_PKT_SEND_ANY | VHCA_PKT_START, types, IBV_WC_RECV },     \
	[(tr) | VHCA_OP_SEND_MIDDLE] = { "SEND_MIDDLE",                       \
		VHCA_PKT_SEND_ANY, types, IBV_WC_RECV },                      \
	[(tr) | VHCA_OP_SEND_LAST] = { "SEND_LAST",                           \
		VHCA_PKT_SEND_ANY | VHCA_PKT_END, types, IBV_WC_RECV },       \
	[(tr) | VHCA_OP_SEND_LAST_IMM] = { "SEND_LAST_IMM",                   \
		VHCA_PKT_SEND_ANY | VHCA_PKT_END | VHCA_PKT_IMM, types,       \
		IBV_WC_RECV },                                                \
	[(tr) | VHCA_OP_SEND_ONLY] = { "SEND_ONLY",                           \
		VHCA_PKT_SEND_ANY | VHCA_PKT_START | VHCA_PKT_END, types,     \
		IBV_WC_RECV },                                                \
	[(tr) | VHCA_OP_SEND_ONLY_IMM] = { "SEND_ONLY_IMM",                   \
		VHCA_PKT_SEND_ANY | VHCA_PKT_START | VHCA_PKT_END |           \
			VHCA_PKT_IMM, types, IBV_WC_RECV },                   \
	[(tr) | VHCA_OP_WRITE_FIRST] = { "WRITE_FIRST",                       \
		VHCA_PKT_WRITE_ANY | VHCA_PKT_START | VHCA_PKT_RETH, types,   \
		0 },                                                          \
	[(tr) | VHCA_OP_WRITE_MIDDLE] = { "WRITE_MIDDLE",                     \
		VHCA_PKT_WRITE_ANY, types, 0 },                               \
	[(tr) | VHCA_OP_WRITE_LAST] = { "WRITE_LAST",                         \
		VHCA_PKT_WRITE_ANY | VHCA_PKT_END, types, 0 },                \
	[(tr) | VHCA_OP_WRITE_LAST_IMM] = { "WRITE_LAST_IMM",                 \
		VHCA_PKT_WRITE_ANY | VHCA_PKT_END | VHCA_PKT_IMM |            \
			VHCA_PKT_RWR, types, IBV_WC_RECV_RDMA_WITH_IMM },     \
	[(tr) | VHCA_OP_WRITE_ONLY] = { "WRITE_ONLY",                         \
		VHCA_PKT_WRITE_ANY | VHCA_PKT_START | VHCA_PKT_END |          \
			VHCA_PKT_RETH, types, 0 },                            \
	[(tr) | VHCA_OP_WRITE_ONLY_IMM] = { "WRITE_ONLY_IMM",                 \
		VHCA_PKT_WRITE_ANY | VHCA_PKT_START | VHCA_PKT_END |          \
			VHCA_PKT_RETH | VHCA_PKT_IMM | VHCA_PKT_RWR, types,   \
		IBV_WC_RECV_RDMA_WITH_IMM }

static const struct vhca_pkt_info vhca_pkt_table[256] = {
	VHCA_RC_UC_ROWS(VHCA_TR_RC, VHCA_QPT_RC_BIT),
	VHCA_RC_UC_ROWS(VHCA_TR_UC, VHCA_QPT_UC_BIT),
	[VHCA_TR_RC | VHCA_OP_READ_REQUEST] = { "READ_REQUEST",
		VHCA_PKT_REQ | VHCA_PKT_RETH | VHCA_PKT_READ | VHCA_PKT_START |
			VHCA_PKT_END, VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_RC | VHCA_OP_READ_RESP_FIRST] = { "READ_RESPONSE_FIRST",
		VHCA_PKT_AETH | VHCA_PKT_PAYLOAD | VHCA_PKT_READ_RESP |
			VHCA_PKT_START, VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_RC | VHCA_OP_READ_RESP_MIDDLE] = { "READ_RESPONSE_MIDDLE",
		VHCA_PKT_PAYLOAD | VHCA_PKT_READ_RESP, VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_RC | VHCA_OP_READ_RESP_LAST] = { "READ_RESPONSE_LAST",
		VHCA_PKT_AETH | VHCA_PKT_PAYLOAD | VHCA_PKT_READ_RESP |
			VHCA_PKT_END, VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_RC | VHCA_OP_READ_RESP_ONLY] = { "READ_RESPONSE_ONLY",
		VHCA_PKT_AETH | VHCA_PKT_PAYLOAD | VHCA_PKT_READ_RESP |
			VHCA_PKT_START | VHCA_PKT_END, VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_RC | VHCA_OP_ACK] = { "ACKNOWLEDGE",
		VHCA_PKT_AETH | VHCA_PKT_START | VHCA_PKT_END,
		VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_RC | VHCA_OP_ATOMIC_ACK] = { "ATOMIC_ACKNOWLEDGE",
		VHCA_PKT_AETH | VHCA_PKT_ATOMIC_ACK | VHCA_PKT_START |
			VHCA_PKT_END, VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_RC | VHCA_OP_CMP_SWAP] = { "COMPARE_SWAP",
		VHCA_PKT_REQ | VHCA_PKT_ATOMIC_ETH | VHCA_PKT_ATOMIC |
			VHCA_PKT_START | VHCA_PKT_END, VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_RC | VHCA_OP_FETCH_ADD] = { "FETCH_ADD",
		VHCA_PKT_REQ | VHCA_PKT_ATOMIC_ETH | VHCA_PKT_ATOMIC |
			VHCA_PKT_START | VHCA_PKT_END, VHCA_QPT_RC_BIT, 0 },
	/* A single-packet WRITE of exactly 8 aligned bytes (A19). */
	[VHCA_TR_RC | VHCA_OP_ATOMIC_WRITE] = { "ATOMIC_WRITE",
		VHCA_PKT_WRITE_ANY | VHCA_PKT_RETH | VHCA_PKT_ATOMIC_WRITE |
			VHCA_PKT_START | VHCA_PKT_END, VHCA_QPT_RC_BIT, 0 },
	[VHCA_TR_UD | VHCA_OP_SEND_ONLY] = { "UD_SEND_ONLY",
		VHCA_PKT_SEND_ANY | VHCA_PKT_DETH | VHCA_PKT_START |
			VHCA_PKT_END, VHCA_QPT_UD_BIT, IBV_WC_RECV },
	[VHCA_TR_UD | VHCA_OP_SEND_ONLY_IMM] = { "UD_SEND_ONLY_IMM",
		VHCA_PKT_SEND_ANY | VHCA_PKT_DETH | VHCA_PKT_IMM |
			VHCA_PKT_START | VHCA_PKT_END, VHCA_QPT_UD_BIT,
		IBV_WC_RECV },
};

/* The row of a BTH opcode, or NULL for a reserved one. */
static inline const struct vhca_pkt_info *vhca_pkt_info(uint8_t opcode)
{
	return vhca_pkt_table[opcode].name ? &vhca_pkt_table[opcode] : NULL;
}

/*
 * The BTH operation of one packet of a request whose first packet is
 * @first (SEND_FIRST, WRITE_FIRST or a single-packet operation), placed
 * @first_pkt / @last_pkt in its message, with or without immediate data.
 */
static inline uint8_t vhca_bth_op_of(uint8_t first, bool first_pkt,
				     bool last_pkt, bool imm)
{
	if (first != VHCA_OP_SEND_FIRST && first != VHCA_OP_WRITE_FIRST)
		return first;	/* READ request, atomics, atomic write: one */
	if (first_pkt && last_pkt)	/* ONLY is FIRST + 4 */
		return (uint8_t)(first + 4 + imm);
	if (first_pkt)
		return first;
	if (!last_pkt)
		return (uint8_t)(first + 1);	/* MIDDLE */
	return (uint8_t)(first + 2 + imm);	/* LAST, LAST_IMM */
}

/* The BTH transport bits of a QP type. */
static inline uint8_t vhca_bth_transport_of(unsigned int qp_type)
{
	return qp_type == IBV_QPT_UC ? VHCA_TR_UC :
	       qp_type == IBV_QPT_UD ? VHCA_TR_UD :
				       VHCA_TR_RC;
}

#endif /* VHCA_OPCODE_H */
