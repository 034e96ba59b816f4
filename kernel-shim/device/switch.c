// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The internal switch: egress, routing, delivery to inboxes (switch.h). */
#include <stdlib.h>

#include "dctx.h"
#include "engine.h"
#include "packet.h"
#include "qp.h"
#include "switch.h"

bool vhca_port_accepts_pkey(const struct vhca_dev *dev, uint16_t qp_pkey_index,
			    uint16_t pkey, uint16_t *index)
{
	if (!vhca_pkey_match(vhca_port_pkey(dev, qp_pkey_index), pkey))
		return false;
	for (uint16_t i = 0; i < VHCA_PKEY_TABLE_LEN; i++) {
		if (vhca_pkey_match(vhca_port_pkey(dev, i), pkey)) {
			*index = i;
			return true;
		}
	}
	return false;
}

/* Appends @pkt to the inbox, or drops it if the inbox is full. */
static void deliver(struct vhca_dctx *dctx, struct vhca_pkt *pkt)
{
	bool kick = false;

	pthread_mutex_lock(&dctx->inbox_lock);
	if (!dctx->dead && dctx->inbox_pkts < VHCA_INBOX_MAX_PKTS &&
	    dctx->inbox_bytes + pkt->len <= VHCA_INBOX_MAX_BYTES) {
		pkt->next = NULL;
		if (dctx->inbox_tail)
			dctx->inbox_tail->next = pkt;
		else
			dctx->inbox_head = pkt;
		dctx->inbox_tail = pkt;
		dctx->inbox_pkts++;
		dctx->inbox_bytes += pkt->len;
		kick = true;
		pkt = NULL;
	}
	pthread_mutex_unlock(&dctx->inbox_lock);
	if (pkt) {
		vhca_counter_add(dctx->dev, VHCA_CNT_RCV_DROPPED, 1);
		vhca_pkt_free(pkt);
	}
	if (kick)
		vhca_engine_kick(dctx);
}

bool vhca_switch_send(struct vhca_qp *qp, struct vhca_pkt *pkt)
{
	struct vhca_dev *src = qp->dctx->dev, *dst;
	struct vhca_dctx *dctx;
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

	dst = vhca_pf_dev_by_lid(src->pf, pkt->dlid);
	/* A port without link receives nothing either (a pulled cable). */
	if (!dst || !vhca_port_active(dst) ||
	    !vhca_qp_find_ref(dst, pkt->dest_qpn, &dctx)) {
		vhca_pkt_free(pkt);	/* nobody there: lost on the fabric */
		return true;
	}
	deliver(dctx, pkt);
	vhca_dctx_put(dctx);
	return true;
}

struct vhca_pkt *vhca_inbox_take(struct vhca_dctx *dctx)
{
	struct vhca_pkt *list;

	pthread_mutex_lock(&dctx->inbox_lock);
	list = dctx->inbox_head;
	dctx->inbox_head = dctx->inbox_tail = NULL;
	dctx->inbox_pkts = 0;
	dctx->inbox_bytes = 0;
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
}
