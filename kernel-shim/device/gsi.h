/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * QP1 of every port, the general services interface (IBTA 13.5.1): how
 * management datagrams (the connection manager's REQ, REP, ... among
 * them) leave one port and reach another.  The device half owns it as
 * HCA firmware owns a special QP: the driver hands it whole MADs
 * (VHCA_DEVCMD_SEND_MAD) and takes the ones that arrived
 * (VHCA_DEVCMD_RECV_MAD, include/vhca/devcmd.h).
 *
 * A MAD travels the way a UD packet does (switch.h): the sending port
 * must be ACTIVE and send with a P_Key its table holds (an emptied entry
 * is a transmit constraint error); the port stamps the SLID and the
 * source QPN 1; routing is by DLID; the receiving port must be ACTIVE,
 * QP1 there takes only the GSI Q_Key (implied: only QP1 sends with it)
 * and a P_Key that matches an entry of its table (IBTA 10.9.3, a receive
 * constraint error otherwise).  What arrives waits in a bounded queue per
 * function, VHCA_GSI_QUEUE deep: beyond it MADs are dropped and counted
 * (rcv_dropped), as a full receive queue of QP1 drops them on real
 * hardware; the sender's CM retries.  The sending thread only appends to
 * that queue and tells the receiver's driver (its event sink's mad()).
 *
 * A MAD to a function attached to a VM waits in its queue too; the VM's
 * driver takes it with RECV_MAD through the mailbox (no event tells it
 * yet: docs/architecture.md, rdma_cm).
 */
#ifndef VHCA_DEVICE_GSI_H
#define VHCA_DEVICE_GSI_H

#include <pthread.h>
#include <stdint.h>

#define VHCA_GSI_QUEUE 256u

struct vhca_devcmd_mad;
struct vhca_dev;

/* Lives in struct vhca_dev; zeroed is valid (an empty queue). */
struct vhca_gsi {
	pthread_mutex_t lock;
	struct vhca_devcmd_mad *ring;	/* VHCA_GSI_QUEUE, on first use */
	uint32_t head, count;
};

void vhca_gsi_init(struct vhca_gsi *gsi);
void vhca_gsi_fini(struct vhca_gsi *gsi);

/*
 * Sends @mad (lid = DLID, pkey_index, remote_qpn 1, sl) out of @src's
 * QP1.  0 once the port has sent it (it may still be lost on the way),
 * -ENETDOWN without link, -EINVAL for a P_Key index past the table or a
 * destination QP other than 1.  Takes pf->lock shared: the caller must
 * not hold it exclusive.
 */
int vhca_gsi_send(struct vhca_dev *src, const struct vhca_devcmd_mad *mad);

/* The oldest MAD @dev's QP1 holds, taken; -EAGAIN if none. */
int vhca_gsi_recv(struct vhca_dev *dev, struct vhca_devcmd_mad *out);

#endif /* VHCA_DEVICE_GSI_H */
