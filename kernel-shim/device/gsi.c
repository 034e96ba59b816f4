// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* QP1 of every port: MADs out, through the switch, and in (gsi.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vhca/devcmd.h>

#include "dctx.h"
#include "devcmd.h"
#include "gsi.h"
#include "pf.h"
#include "switch.h"

void vhca_gsi_init(struct vhca_gsi *gsi)
{
	memset(gsi, 0, sizeof(*gsi));
	pthread_mutex_init(&gsi->lock, NULL);
}

void vhca_gsi_fini(struct vhca_gsi *gsi)
{
	free(gsi->ring);
	gsi->ring = NULL;
	gsi->count = 0;
	pthread_mutex_destroy(&gsi->lock);
}

/* Appends to @dst's queue; false if it is full (or memory is short). */
static bool enqueue(struct vhca_gsi *gsi, const struct vhca_devcmd_mad *mad)
{
	bool ok = false;

	pthread_mutex_lock(&gsi->lock);
	if (!gsi->ring)
		gsi->ring = calloc(VHCA_GSI_QUEUE, sizeof(*gsi->ring));
	if (gsi->ring && gsi->count < VHCA_GSI_QUEUE) {
		gsi->ring[(gsi->head + gsi->count) % VHCA_GSI_QUEUE] = *mad;
		gsi->count++;
		ok = true;
	}
	pthread_mutex_unlock(&gsi->lock);
	return ok;
}

/* The first entry of @dev's table that admits @pkey, or -1 (IBTA 10.9.3). */
static int matching_entry(const struct vhca_dev *dev, uint16_t pkey)
{
	for (int i = 0; i < VHCA_PKEY_TABLE_LEN; i++)
		if (vhca_pkey_match(vhca_port_pkey(dev, (uint16_t)i), pkey))
			return i;
	return -1;
}

/* Whose driver hears of @dst's MADs: vhcad's own, unless a VM has it. */
static void tell_driver(struct vhca_dev *dst)
{
	struct vhca_devcmd_port *port = dst->devcmd;

	if (!dst->vm_port && port && port->sink && port->sink->mad)
		port->sink->mad(dst);
}

int vhca_gsi_send(struct vhca_dev *src, const struct vhca_devcmd_mad *mad)
{
	struct vhca_pf *pf = src->pf;
	struct vhca_devcmd_mad in;
	struct vhca_dev *dst;
	uint16_t pkey;
	int index, ret = 0;

	if (mad->pkey_index >= VHCA_PKEY_TABLE_LEN ||
	    mad->remote_qpn != VHCA_GSI_QPN)
		return -EINVAL;
	pthread_rwlock_rdlock(&pf->lock);
	if (!vhca_port_active(src)) {
		ret = -ENETDOWN;
		goto out;
	}
	pkey = vhca_port_pkey(src, mad->pkey_index);
	if (!(pkey & 0x7fff)) {
		/* No P_Key to send with (partition enforcement, 10.9.2). */
		vhca_counter_add(src, VHCA_CNT_XMIT_CONSTRAINT_ERRORS, 1);
		goto out;
	}
	vhca_counter_add(src, VHCA_CNT_XMIT_PACKETS, 1);
	vhca_counter_add(src, VHCA_CNT_XMIT_DATA, VHCA_MAD_SIZE / 4);

	/* Under pf->lock the function found by LID stays while we use it. */
	dst = vhca_pf_dev_by_lid(pf, mad->lid);
	if (!dst || !vhca_port_active(dst))
		goto out;	/* nobody there: lost on the fabric */
	index = matching_entry(dst, pkey);
	if (index < 0) {
		vhca_counter_add(dst, VHCA_CNT_RCV_CONSTRAINT_ERRORS, 1);
		goto out;
	}
	/* What the receiver learns comes from the port, never the sender. */
	in = *mad;
	in.lid = src->port.lid;
	in.remote_qpn = VHCA_GSI_QPN;
	in.pkey = pkey;
	in.pkey_index = (uint16_t)index;
	memset(in.reserved, 0, sizeof(in.reserved));
	if (!enqueue(&dst->gsi, &in)) {
		vhca_counter_add(dst, VHCA_CNT_RCV_DROPPED, 1);
		goto out;
	}
	vhca_counter_add(dst, VHCA_CNT_RCV_PACKETS, 1);
	vhca_counter_add(dst, VHCA_CNT_RCV_DATA, VHCA_MAD_SIZE / 4);
	tell_driver(dst);
out:
	pthread_rwlock_unlock(&pf->lock);
	return ret;
}

int vhca_gsi_recv(struct vhca_dev *dev, struct vhca_devcmd_mad *out)
{
	struct vhca_gsi *gsi = &dev->gsi;
	int ret = -EAGAIN;

	pthread_mutex_lock(&gsi->lock);
	if (gsi->count) {
		*out = gsi->ring[gsi->head];
		gsi->head = (gsi->head + 1) % VHCA_GSI_QUEUE;
		gsi->count--;
		ret = 0;
	}
	pthread_mutex_unlock(&gsi->lock);
	return ret;
}
