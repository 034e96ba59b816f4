/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * UD multicast (IBTA 10.5, ibv_attach_mcast): the PF's embedded switch
 * keeps, for each multicast group (MGID, MLID), the UD QPs attached to
 * it, on any of its ports; a UD datagram sent to a multicast LID is
 * replicated to each of them but the sender, each copy checked as any
 * packet (the receiving port's P_Keys, the QP's P_Key and Q_Key).
 *
 * Limits (vhca_limits, advertised by QUERY_DEVICE), each per function:
 * max_mcast_qp_attach of its QPs in a group (another VF's members do not
 * count: one VF must not fill a group and keep the others out of it),
 * max_total_mcast_qp_attach attachments (its groups are at most that
 * many), so no tenant fills the switch or a group.
 */
#ifndef VHCA_DEVICE_MCAST_H
#define VHCA_DEVICE_MCAST_H

#include <stdbool.h>
#include <stdint.h>

struct vhca_pf;
struct vhca_qp;
struct vhca_pkt;

/* The lowest multicast LID; 0xffff is the permissive LID, not a group. */
#define VHCA_MCAST_LID_BASE 0xc000u
#define VHCA_LID_PERMISSIVE 0xffffu

static inline bool vhca_lid_is_mcast(uint16_t lid)
{
	return lid >= VHCA_MCAST_LID_BASE && lid != VHCA_LID_PERMISSIVE;
}

int vhca_mcast_init(struct vhca_pf *pf);
void vhca_mcast_fini(struct vhca_pf *pf);

/*
 * ATTACH_MCAST / DETACH_MCAST of the QP @handle of @dctx (the turn lock
 * is taken here), as the kernel's ib_attach_mcast() and uverbs: a UD QP,
 * a multicast GID (ff00::/8), a multicast LID; attaching twice is 0;
 * detaching what is not attached -EINVAL; beyond the limits -ENOMEM.
 */
struct vhca_dctx;
int vhca_mcast_attach(struct vhca_dctx *dctx, uint32_t handle,
		      const uint8_t gid[16], uint16_t mlid);
int vhca_mcast_detach(struct vhca_dctx *dctx, uint32_t handle,
		      const uint8_t gid[16], uint16_t mlid);
/* Every attachment of @qp, gone (its destroy; its context's teardown). */
void vhca_mcast_detach_all(struct vhca_qp *qp);

/*
 * Calls @fn for each QP attached to @pkt's group (by its GRH's MGID, or
 * by its DLID without a GRH), the table read-locked meanwhile: @fn must
 * not attach or detach (the switch's delivery takes only inbox locks).
 */
struct vhca_dev;
void vhca_mcast_for_each(struct vhca_pf *pf, const struct vhca_pkt *pkt,
			 void (*fn)(struct vhca_dev *dev, uint32_t qpn,
				    void *arg),
			 void *arg);

#endif /* VHCA_DEVICE_MCAST_H */
