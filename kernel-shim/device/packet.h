/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * IB packets inside the device.
 *
 * Every transfer between two queue pairs is a sequence of packets with the
 * fields of the LRH, BTH and extension headers (IBTA 9.2): the requester
 * builds them, the switch (switch.c) delivers them to the destination
 * context's inbox, the responder and completer consume them.  A packet
 * carries its payload by value, in a buffer of its own, so the side that
 * consumes it never touches the memory of the side that made it (a
 * sender's memory may stall; the receiver must not stall with it) - or,
 * where the maker's memory can never stall (a VM's RAM, mapped in vhcad:
 * vm.h), by reference: then the one copy is the consumer's, straight
 * from the sender's pages into the receiver's (single copy, as DMA).
 *
 * Packets may be coalesced: one packet stands for the npsn consecutive
 * MTU-sized packets a real link would carry (PSNs psn .. psn + npsn - 1,
 * all but the last full), so PSN arithmetic is exactly the wire's while a
 * 64 KiB segment costs one delivery.  A remote link would split them.
 */
#ifndef VHCA_PACKET_H
#define VHCA_PACKET_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>

/* Largest payload of one (coalesced) packet. */
#define VHCA_SEG_MAX (64u * 1024)
/* Pieces a payload by reference may have: 64 KiB over 4 KiB pages. */
#define VHCA_PKT_REFS 18

struct vhca_dma_space;
/* PSNs are 24 bits (IBTA 9.7.1). */
#define VHCA_PSN_MASK 0xffffffu

/* AETH syndromes (IBTA 9.7.5.2.3, table 43). */
enum vhca_aeth {
	VHCA_AETH_ACK = 0x00,		/* | credit count; we send 0x1f */
	VHCA_AETH_RNR_NAK = 0x20,	/* | RNR timer */
	VHCA_AETH_NAK_PSN_SEQ = 0x60,
	VHCA_AETH_NAK_INV_REQ = 0x61,
	VHCA_AETH_NAK_REM_ACCESS = 0x62,
	VHCA_AETH_NAK_REM_OP = 0x63,
};

#define VHCA_AETH_TYPE(s) ((s) & 0x60)

struct vhca_grh_fields {
	uint8_t sgid[16], dgid[16];
	uint8_t traffic_class, hop_limit;
	uint32_t flow_label;
};

struct vhca_pkt {
	struct vhca_pkt *next;		/* inbox / pool link */
	bool credited;			/* an RC request: in the inbox's credit */
	/* LRH */
	uint16_t dlid, slid;
	uint8_t sl;
	/* BTH */
	uint8_t opcode;			/* transport | enum vhca_bth_op */
	bool se;			/* solicited event */
	bool ackreq;
	uint16_t pkey;
	uint32_t dest_qpn;
	uint32_t psn;
	uint32_t npsn;			/* PSNs it stands for, >= 1 */
	/*
	 * The source QPN.  A DETH field for UD; for RC/UC the switch stamps
	 * it as the port knows it (the wire's connection context), never
	 * from guest input.
	 */
	uint32_t src_qpn;
	/* DETH */
	uint32_t qkey;
	/* RETH */
	uint64_t va;
	uint32_t rkey;
	uint32_t dma_len;
	/* AtomicETH */
	uint64_t swap_add, compare;
	/* AETH */
	uint8_t syndrome;
	uint32_t msn;
	/* AtomicAckETH */
	uint64_t atomic_orig;
	/* ImmDt */
	__be32 imm;
	/* GRH */
	bool has_grh;
	struct vhca_grh_fields grh;
	/* payload */
	uint32_t len;
	uint32_t cap;			/* bytes data can hold */
	uint8_t *data;
	/*
	 * Or, when nref > 0, the payload is these pieces of a VM's RAM, in
	 * order, held by a reference on its space (released with the
	 * packet).
	 */
	struct vhca_dma_space *ref_space;
	uint8_t nref;
	struct vhca_pkt_ref {
		const uint8_t *ptr;
		uint32_t len;
	} ref[VHCA_PKT_REFS];
};

/*
 * A packet able to carry @len payload bytes, zeroed but for its buffer;
 * NULL if memory is short.  Packets come from a per-thread cache.
 */
struct vhca_pkt *vhca_pkt_alloc(uint32_t len);
void vhca_pkt_free(struct vhca_pkt *pkt);
/*
 * Frees the calling thread's cache of free packets (each thread keeps
 * its own); runs by itself when a thread that used packets exits.
 */
void vhca_pkt_thread_exit(void);
/* A whole copy of @pkt, its payload in the copy's own buffer. */
struct vhca_pkt *vhca_pkt_clone(const struct vhca_pkt *pkt);

/*
 * Packet trace on stderr, for debugging the transport: set VHCA_TRACE=1
 * in vhcad's environment.  @what says where (send, drop: why, ...).
 */
extern int vhca_trace_enabled;
void vhca_trace_pkt(const char *what, uint32_t qpn, const struct vhca_pkt *pkt);
#define VHCA_TRACE(what, qpn, pkt)                                            \
	do {                                                                  \
		if (__builtin_expect(vhca_trace_enabled, 0))                  \
			vhca_trace_pkt(what, qpn, pkt);                       \
	} while (0)

/* 24-bit PSN arithmetic: a - b as a signed distance. */
static inline int32_t vhca_psn_diff(uint32_t a, uint32_t b)
{
	return (int32_t)((a - b) << 8) >> 8;
}

static inline uint32_t vhca_psn_add(uint32_t psn, uint32_t n)
{
	return (psn + n) & VHCA_PSN_MASK;
}

/* Wire packets of @len payload bytes at path MTU @mtu_bytes (>= 1). */
static inline uint32_t vhca_npsn(uint32_t len, uint32_t mtu_bytes)
{
	return len ? (len + mtu_bytes - 1) / mtu_bytes : 1;
}

#endif /* VHCA_PACKET_H */
