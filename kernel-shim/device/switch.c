// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The internal switch: egress, routing, delivery to inboxes (switch.h). */
#include <stdlib.h>

#include "dctx.h"
#include "engine.h"
#include "mcast.h"
#include "packet.h"
#include "qp.h"
#include "switch.h"
#include "transport.h"

/* The first entry of @dev's P_Key table that matches @pkey, or false. */
static bool port_pkey_index(const struct vhca_dev *dev, uint16_t pkey,
			    uint16_t *index)
{
	for (uint16_t i = 0; i < VHCA_PKEY_TABLE_LEN; i++) {
		if (vhca_pkey_match(vhca_port_pkey(dev, i), pkey)) {
			*index = i;
			return true;
		}
	}
	return false;
}

bool vhca_port_accepts_pkey(const struct vhca_dev *dev, uint16_t qp_pkey_index,
			    uint16_t pkey, uint16_t *index)
{
	return vhca_pkey_match(vhca_port_pkey(dev, qp_pkey_index), pkey) &&
	       port_pkey_index(dev, pkey, index);
}

/*
 * Partition enforcement at the receiving port (IBTA 10.9.2): a packet
 * whose P_Key matches no entry of the port's table is dropped there and
 * counted, before it can take room in a context's inbox, so a tenant of
 * another partition cannot flood a port it may not talk to.  The QP's own
 * entry is checked again when the packet is consumed.
 */
static bool ingress_pkey_ok(struct vhca_dev *dst, uint16_t pkey)
{
	uint16_t index;

	if (port_pkey_index(dst, pkey, &index))
		return true;
	vhca_counter_add(dst, VHCA_CNT_RCV_CONSTRAINT_ERRORS, 1);
	return false;
}

/* Is there room for @pkt in the inbox (all input)? */
static bool room(const struct vhca_dctx *dctx, const struct vhca_pkt *pkt)
{
	return atomic_load(&dctx->queued_pkts) < VHCA_INBOX_MAX_PKTS &&
	       atomic_load(&dctx->queued_bytes) + pkt->len <=
		       VHCA_INBOX_MAX_BYTES;
}

/* Is there credit for the RC request @pkt? */
static bool credit(const struct vhca_dctx *dctx, const struct vhca_pkt *pkt)
{
	return atomic_load(&dctx->credit_pkts) < VHCA_INBOX_CREDIT_PKTS &&
	       atomic_load(&dctx->credit_bytes) + pkt->len <=
		       VHCA_INBOX_CREDIT_BYTES;
}

/*
 * Appends @pkt to @dctx's inbox.  An RC request of @waiter beyond the
 * credit is refused and @waiter waits on @dctx (BLOCKED: the packet
 * stays the caller's).  Anything beyond the inbox's maximum is dropped,
 * RC requests too: the credit covers RC requests only, so a flood of
 * other traffic cannot hold RC senders waiting; it competes with them
 * for the inbox as before, and RC retries what it loses.
 */
static enum vhca_send_result deliver(struct vhca_dctx *dctx,
				     struct vhca_pkt *pkt,
				     struct vhca_qp *waiter)
{
	enum vhca_send_result result = VHCA_SEND_OK;
	bool kick = false;

	pthread_mutex_lock(&dctx->inbox_lock);
	if (dctx->dead) {
		/* nobody will read it */
	} else if (waiter && !credit(dctx, pkt)) {
		if (!waiter->req.flow_listed) {
			waiter->req.flow_next = dctx->flow_waiters;
			dctx->flow_waiters = waiter;
			waiter->req.flow_listed = true;
		}
		if (!waiter->req.flow_dst) {
			vhca_dctx_get(dctx);
			waiter->req.flow_dst = dctx;
		}
		result = VHCA_SEND_BLOCKED;
	} else if (room(dctx, pkt)) {
		pkt->next = NULL;
		pkt->credited = waiter != NULL;
		if (pkt->credited) {
			atomic_fetch_add(&dctx->credit_pkts, 1);
			atomic_fetch_add(&dctx->credit_bytes, pkt->len);
		}
		if (dctx->inbox_tail)
			dctx->inbox_tail->next = pkt;
		else
			dctx->inbox_head = pkt;
		dctx->inbox_tail = pkt;
		atomic_fetch_add(&dctx->queued_pkts, 1);
		atomic_fetch_add(&dctx->queued_bytes, pkt->len);
		kick = true;
		pkt = NULL;
	}
	pthread_mutex_unlock(&dctx->inbox_lock);
	if (result == VHCA_SEND_BLOCKED)
		return result;
	if (pkt) {
		vhca_counter_add(dctx->dev, VHCA_CNT_RCV_DROPPED, 1);
		vhca_pkt_free(pkt);
	}
	if (kick)
		vhca_engine_kick(dctx);
	return VHCA_SEND_OK;
}

/* Egress checks and stamps; false if the port discarded @pkt (freed). */
static bool egress(struct vhca_qp *qp, struct vhca_pkt *pkt)
{
	struct vhca_dev *src = qp->dctx->dev;
	uint16_t pkey;

	/* No link: nothing leaves the port, as with a pulled cable. */
	if (!vhca_port_active(src)) {
		vhca_pkt_free(pkt);
		return false;
	}
	/*
	 * An emptied P_Key entry leaves the QP no P_Key to send with: the
	 * HCA discards the packet at transmit and counts it in
	 * PortXmitConstraintErrors (partition enforcement, IBTA 10.9.2).
	 */
	pkey = vhca_port_pkey(src, qp->attr.pkey_index);
	if (!(pkey & 0x7fff)) {
		vhca_counter_add(src, VHCA_CNT_XMIT_CONSTRAINT_ERRORS, 1);
		vhca_pkt_free(pkt);
		return false;
	}
	/* The port says who sent it; the guest never does. */
	pkt->pkey = pkey;
	pkt->slid = src->port.lid;
	pkt->src_qpn = qp->qpn;
	VHCA_TRACE("send", qp->qpn, pkt);
	vhca_counter_add(src, VHCA_CNT_XMIT_PACKETS, pkt->npsn);
	vhca_counter_add(src, VHCA_CNT_XMIT_DATA, pkt->len / 4);
	return true;
}

static void flow_unwait(struct vhca_qp *qp);

struct mcast_copy {
	const struct vhca_qp *src;
	const struct vhca_pkt *pkt;
};

/* One member of the group: a copy, checked at its port as any packet. */
static void mcast_deliver(struct vhca_dev *dev, uint32_t qpn, void *arg)
{
	const struct mcast_copy *m = arg;
	struct vhca_dctx *dctx;
	struct vhca_pkt *copy;

	/* Never back to the sending QP itself (other QPs of its port: yes). */
	if (dev == m->src->dctx->dev && qpn == m->src->qpn)
		return;
	if (!vhca_port_active(dev) || !ingress_pkey_ok(dev, m->pkt->pkey) ||
	    !vhca_qp_find_ref(dev, qpn, &dctx))
		return;
	copy = vhca_pkt_clone(m->pkt);
	if (copy) {
		copy->dest_qpn = qpn;	/* the wire says 0xffffff: the group's */
		deliver(dctx, copy, NULL);
	} else {
		vhca_counter_add(dev, VHCA_CNT_RCV_DROPPED, 1);
	}
	vhca_dctx_put(dctx);
}

/*
 * A datagram to a multicast LID (IBTA 10.5): the switch replicates it
 * to the group's QPs; only UD sends to a group (anything else is lost).
 */
static void mcast_route(struct vhca_qp *qp, struct vhca_pkt *pkt)
{
	struct mcast_copy m = { qp, pkt };

	if (qp->type == IBV_QPT_UD)
		vhca_mcast_for_each(qp->dctx->dev->pf, pkt, mcast_deliver, &m);
	vhca_pkt_free(pkt);
}

/* Routing (DLID, then QPN) and delivery; @waiter as for deliver(). */
static enum vhca_send_result route(struct vhca_qp *qp, struct vhca_pkt *pkt,
				   struct vhca_qp *waiter)
{
	struct vhca_dev *dst;
	enum vhca_send_result result;
	struct vhca_dctx *dctx;

	if (vhca_lid_is_mcast(pkt->dlid)) {
		mcast_route(qp, pkt);
		return VHCA_SEND_OK;
	}
	dst = vhca_pf_dev_by_lid(qp->dctx->dev->pf, pkt->dlid);

	/* A port without link receives nothing either (a pulled cable). */
	if (!dst || !vhca_port_active(dst) || !ingress_pkey_ok(dst, pkt->pkey) ||
	    !vhca_qp_find_ref(dst, pkt->dest_qpn, &dctx)) {
		vhca_pkt_free(pkt);	/* nobody there: lost on the fabric */
		return VHCA_SEND_OK;
	}
	/*
	 * A QP waits on one destination: if its path moved (SQD, a new
	 * address vector) it forgets the old one first, outside any
	 * inbox lock.
	 */
	if (waiter && waiter->req.flow_dst && waiter->req.flow_dst != dctx)
		flow_unwait(waiter);
	result = deliver(dctx, pkt, waiter);
	vhca_dctx_put(dctx);
	return result;
}

bool vhca_switch_send(struct vhca_qp *qp, struct vhca_pkt *pkt)
{
	if (!egress(qp, pkt))
		return false;
	route(qp, pkt, NULL);
	return true;
}

/* Puts @qp on its context's blocked list (turn lock held). */
static void block(struct vhca_qp *qp)
{
	struct vhca_dctx *dctx = qp->dctx;

	if (qp->req.blocked)
		return;
	qp->req.blocked = true;
	qp->req.blocked_prev = NULL;
	qp->req.blocked_next = dctx->blocked_head;
	if (dctx->blocked_head)
		dctx->blocked_head->req.blocked_prev = qp;
	dctx->blocked_head = qp;
}

static void unblock(struct vhca_qp *qp)
{
	struct vhca_dctx *dctx = qp->dctx;

	if (!qp->req.blocked)
		return;
	if (qp->req.blocked_prev)
		qp->req.blocked_prev->req.blocked_next = qp->req.blocked_next;
	else
		dctx->blocked_head = qp->req.blocked_next;
	if (qp->req.blocked_next)
		qp->req.blocked_next->req.blocked_prev = qp->req.blocked_prev;
	qp->req.blocked = false;
	qp->req.blocked_next = qp->req.blocked_prev = NULL;
}

/* Sends the held request again; BLOCKED if there is still no room. */
static enum vhca_send_result send_held(struct vhca_qp *qp)
{
	struct vhca_qp *waiter = qp->type == IBV_QPT_RC ? qp : NULL;
	enum vhca_send_result result = route(qp, qp->req.held, waiter);

	if (result == VHCA_SEND_BLOCKED) {
		block(qp);
		return result;
	}
	qp->req.held = NULL;
	qp->req.held_timeouts = 0;	/* it moves: no timeout */
	return result;
}

enum vhca_send_result vhca_switch_send_request(struct vhca_qp *qp,
					       struct vhca_pkt *pkt)
{
	if (!egress(qp, pkt))
		return VHCA_SEND_DISCARDED;
	qp->req.held = pkt;
	return send_held(qp);
}

enum vhca_send_result vhca_switch_send_held(struct vhca_qp *qp)
{
	return qp->req.held ? send_held(qp) : VHCA_SEND_OK;
}

/* @qp waits no more: off flow_dst's list, its reference dropped. */
static void flow_unwait(struct vhca_qp *qp)
{
	struct vhca_dctx *dst = qp->req.flow_dst;

	if (dst) {
		pthread_mutex_lock(&dst->inbox_lock);
		if (qp->req.flow_listed) {
			struct vhca_qp **link = &dst->flow_waiters;

			while (*link && *link != qp)
				link = &(*link)->req.flow_next;
			if (*link)
				*link = qp->req.flow_next;
			qp->req.flow_listed = false;
		}
		pthread_mutex_unlock(&dst->inbox_lock);
		qp->req.flow_dst = NULL;
		vhca_dctx_put(dst);
	}
	unblock(qp);
	atomic_store(&qp->req.flow_resume, false);
}

void vhca_flow_release(struct vhca_qp *qp)
{
	flow_unwait(qp);
	if (qp->req.held) {
		vhca_pkt_free(qp->req.held);
		qp->req.held = NULL;
	}
}

/* Every sender waiting on @dctx may go on (inbox_lock held). */
static void wake_senders_locked(struct vhca_dctx *dctx)
{
	struct vhca_qp *qp = dctx->flow_waiters;

	dctx->flow_waiters = NULL;
	while (qp) {
		struct vhca_qp *next = qp->req.flow_next;

		/*
		 * Under our inbox_lock the QP cannot be freed (its release
		 * takes this lock first), so its context is alive to kick.
		 */
		qp->req.flow_listed = false;
		qp->req.flow_next = NULL;
		atomic_store(&qp->req.flow_resume, true);
		atomic_store(&qp->dctx->flow_resumed, true);
		vhca_engine_kick(qp->dctx);
		qp = next;
	}
}

void vhca_inbox_consumed(struct vhca_dctx *dctx, const struct vhca_pkt *pkt)
{
	atomic_fetch_sub(&dctx->queued_pkts, 1);
	atomic_fetch_sub(&dctx->queued_bytes, pkt->len);
	if (pkt->credited) {
		atomic_fetch_sub(&dctx->credit_pkts, 1);
		atomic_fetch_sub(&dctx->credit_bytes, pkt->len);
	}
}

void vhca_inbox_wake_senders(struct vhca_dctx *dctx)
{
	/*
	 * Half the credit free before the senders resume, so a sender
	 * sends a burst, not a packet per wake-up.  Always under the lock:
	 * a sender checks for room and joins the list in one hold of it,
	 * so either it saw what we consumed or we see it (no unlocked
	 * peek: a sender preempted between the two would be missed).
	 */
	pthread_mutex_lock(&dctx->inbox_lock);
	if (dctx->flow_waiters &&
	    atomic_load(&dctx->credit_bytes) <= VHCA_INBOX_CREDIT_BYTES / 2 &&
	    atomic_load(&dctx->credit_pkts) <= VHCA_INBOX_CREDIT_PKTS / 2)
		wake_senders_locked(dctx);
	pthread_mutex_unlock(&dctx->inbox_lock);
}

void vhca_flow_resume(struct vhca_dctx *dctx)
{
	struct vhca_qp *qp, *next;

	if (!atomic_exchange(&dctx->flow_resumed, false))
		return;
	for (qp = dctx->blocked_head; qp; qp = next) {
		next = qp->req.blocked_next;
		if (!atomic_load(&qp->req.flow_resume))
			continue;
		/*
		 * Not even a reference to the destination stays behind (it
		 * would keep a gone tenant's context and address space).
		 */
		flow_unwait(qp);
		vhca_qp_schedule(qp);	/* it sends its held packet first */
	}
}

struct vhca_pkt *vhca_inbox_take(struct vhca_dctx *dctx)
{
	struct vhca_pkt *list;

	pthread_mutex_lock(&dctx->inbox_lock);
	list = dctx->inbox_head;
	dctx->inbox_head = dctx->inbox_tail = NULL;
	pthread_mutex_unlock(&dctx->inbox_lock);
	return list;
}

static void free_list(struct vhca_pkt *pkt)
{
	while (pkt) {
		struct vhca_pkt *next = pkt->next;

		vhca_pkt_free(pkt);
		pkt = next;
	}
}

void vhca_inbox_purge(struct vhca_dctx *dctx)
{
	free_list(vhca_inbox_take(dctx));
	free_list(dctx->pending_head);
	dctx->pending_head = dctx->pending_tail = NULL;
	pthread_mutex_lock(&dctx->inbox_lock);
	atomic_store(&dctx->queued_pkts, 0);
	atomic_store(&dctx->queued_bytes, 0);
	atomic_store(&dctx->credit_pkts, 0);
	atomic_store(&dctx->credit_bytes, 0);
	wake_senders_locked(dctx);
	pthread_mutex_unlock(&dctx->inbox_lock);
}
