/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The device's internal switch and its ports: where packets leave a QP
 * and arrive at another.
 *
 * Egress (the sending port): a port that is not ACTIVE has no link; a QP
 * whose P_Key index names an empty entry has no P_Key to send with (the
 * packet is discarded and counted in PortXmitConstraintErrors).  The
 * port stamps the LRH SLID and the source QPN itself: no guest input
 * says where a packet came from.
 *
 * Routing: DLID to the destination function (LIDs are static, PF 1,
 * VF k 2 + k), then the destination QPN to a live QP of that function,
 * then into that QP's context inbox, which is bounded.
 *
 * Flow control: an IB link is lossless (credit-based link-level flow
 * control, IBTA 7.9), so RC requests are never dropped for want of room:
 * one that finds the destination context holding more than its credit
 * (VHCA_INBOX_CREDIT_*) of unconsumed RC requests stays at the sender, held by
 * its QP, and the QP waits (off its context's run list) until that
 * context has consumed half of it; the QP's other work and every other
 * QP go on, and its ACK timer runs as for any request in flight, so a
 * destination that never drains fails only the QPs that send to it
 * (retry exceeded), as on a fabric.  The credit keeps what waits in an
 * inbox, and so the delay of an ACK behind it, short.  UD, UC and
 * responses are dropped beyond VHCA_INBOX_MAX_* (a receiver that cannot
 * keep up loses unreliable traffic; RC requests retry what is lost).
 * Delivery is an enqueue and a kick of the destination's engine turn;
 * the sender's thread never touches the destination's memory or state.
 *
 * Ingress checks (P_Key, Q_Key, source) are the responder's, in the
 * destination's turn.
 */
#ifndef VHCA_DEVICE_SWITCH_H
#define VHCA_DEVICE_SWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include "pf.h"

struct vhca_dctx;
struct vhca_pkt;
struct vhca_qp;

/*
 * Sends @pkt (ownership taken) out of @qp's port: egress checks, then
 * routing and delivery.  Returns false if the port discarded it.
 */
bool vhca_switch_send(struct vhca_qp *qp, struct vhca_pkt *pkt);

enum vhca_send_result {
	VHCA_SEND_OK,		/* delivered, or lost on the fabric */
	VHCA_SEND_DISCARDED,	/* the sending port discarded it */
	VHCA_SEND_BLOCKED,	/* no room: held by the QP, which waits */
};

/*
 * Sends the request @pkt of the requester of @qp (ownership taken): as
 * vhca_switch_send, and an RC request beyond the destination's credit is
 * held (BLOCKED) until vhca_flow_resume() reschedules the QP, which then
 * calls vhca_switch_send_held() before anything else.
 */
enum vhca_send_result vhca_switch_send_request(struct vhca_qp *qp,
					       struct vhca_pkt *pkt);
enum vhca_send_result vhca_switch_send_held(struct vhca_qp *qp);
/* Forgets @qp's wait and its held request (go-back, error, reset, free). */
void vhca_flow_release(struct vhca_qp *qp);
/* In @dctx's turn: its waiting QPs that have room again, rescheduled. */
void vhca_flow_resume(struct vhca_dctx *dctx);
/* In @dctx's turn: @pkt, taken from the inbox, is consumed. */
void vhca_inbox_consumed(struct vhca_dctx *dctx, const struct vhca_pkt *pkt);
/* In @dctx's turn, after consuming input: wakes senders if room. */
void vhca_inbox_wake_senders(struct vhca_dctx *dctx);

/* Every packet in @dctx's inbox, oldest first, taken out of it. */
struct vhca_pkt *vhca_inbox_take(struct vhca_dctx *dctx);
/* Frees what the inbox still holds (a context going away). */
void vhca_inbox_purge(struct vhca_dctx *dctx);

/* P_Key match: same partition, not both limited members (IBTA 10.9.3). */
static inline bool vhca_pkey_match(uint16_t a, uint16_t b)
{
	return a && b && (a & 0x7fff) == (b & 0x7fff) && ((a | b) & 0x8000);
}

/*
 * Port attributes the data path reads without pf->lock: provisioning
 * writes them under it, one 16-bit or 8-bit store at a time, and the data
 * path may see either value around a change (the change's events follow).
 */
static inline uint16_t vhca_port_pkey(const struct vhca_dev *dev,
				      uint16_t index)
{
	if (index >= VHCA_PKEY_TABLE_LEN)
		return 0;
	return __atomic_load_n(&dev->port.pkeys[index], __ATOMIC_RELAXED);
}

static inline bool vhca_port_active(const struct vhca_dev *dev)
{
	return __atomic_load_n(&dev->port.state, __ATOMIC_RELAXED) ==
	       4 /* IBV_PORT_ACTIVE */;
}

/*
 * Does @dev's port accept @pkey for a QP at @qp_pkey_index?  The QP's own
 * entry must match, and *index is the first port entry that does.
 */
bool vhca_port_accepts_pkey(const struct vhca_dev *dev, uint16_t qp_pkey_index,
			    uint16_t pkey, uint16_t *index);

#endif /* VHCA_DEVICE_SWITCH_H */
