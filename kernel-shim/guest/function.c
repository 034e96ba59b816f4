// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The VM's copy of its function (guest.h): a struct vhca_pf whose PF is
 * hidden and whose one VF is the VM's, filled from QUERY_FUNCTION.  The
 * driver reads it as vhcad's driver reads the real model (attributes,
 * QUERY_DEVICE's limits, QUERY_PORT); a FUNCTION event from the device
 * (the admin changed GUIDs, P_Keys or the link) refreshes it, and the
 * changes reach the contexts' async fds exactly as on the host
 * (vhca_dev_notify).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "device/limits.h"
#include "guest.h"

/* Copies @f into @vf; caller holds pf->lock exclusive (or owns @vf). */
static void copy_function(struct vhca_dev *vf,
			  const struct vhca_devcmd_function *f)
{
	snprintf(vf->name, sizeof(vf->name), "%.*s", (int)sizeof(f->name),
		 f->name);
	vf->is_vf = true;
	vf->vf_index = f->vf_index;
	vf->node_guid = f->node_guid;
	vf->port_guid = f->port_guid;
	vf->sys_image_guid = f->sys_image_guid;
	memcpy(vf->node_desc, f->node_desc, sizeof(vf->node_desc));
	vf->node_desc[sizeof(vf->node_desc) - 1] = '\0';
	vf->port.state = (uint8_t)f->port_state;
	vf->port.phys_state = (uint8_t)f->phys_state;
	vf->port.cap_flags = f->cap_flags;
	vf->port.lid = f->lid;
	vf->port.sm_lid = f->sm_lid;
	vf->port.lmc = f->lmc;
	vf->port.sm_sl = f->sm_sl;
	vf->port.active_mtu = f->active_mtu;
	vf->port.active_width = f->active_width;
	vf->port.active_speed = f->active_speed;
	memcpy(vf->port.pkeys, f->pkeys, sizeof(vf->port.pkeys));
	/* The device enforces the quota; QUERY_DEVICE reports it. */
	vf->quota.max_qp = f->max_qp;
	vf->quota.max_cq = f->max_cq;
	vf->quota.max_srq = f->max_srq;
	vf->quota.max_mr = f->max_mr;
	vf->quota.max_pd = f->max_pd;
	vf->quota.max_contexts = f->max_contexts;
}

int vhca_guest_function_init(struct vhca_pf *pf,
			     const struct vhca_pf_hooks *hooks,
			     const struct vhca_devcmd_function *f)
{
	struct vhca_dev *vf;
	int index, ret;

	if (!f->is_vf)
		return -ENODEV;	/* a VM gets a VF, never the PF */
	memset(pf, 0, sizeof(*pf));
	ret = pthread_rwlock_init(&pf->lock, NULL);
	if (ret)
		return -ret;
	pf->hooks = *hooks;
	pf->pf_hidden = true;
	pf->dev.pf = pf;
	pf->dev.uverbs_index = -1;
	snprintf(pf->dev.name, sizeof(pf->dev.name), VHCA_PF_NAME);
	vf = calloc(1, sizeof(*vf));
	if (!vf) {
		pthread_rwlock_destroy(&pf->lock);
		return -ENOMEM;
	}
	vf->pf = pf;
	copy_function(vf, f);
	/* Our own share of this daemon (fds, channels), as on the host. */
	vhca_quota_share(1, &pf->dev.quota);
	vf->quota.max_fds = pf->dev.quota.max_fds;
	vf->quota.max_queue_bytes = pf->dev.quota.max_queue_bytes;
	index = hooks->claim_uverbs(hooks->arg);
	if (index < 0) {
		free(vf);
		pthread_rwlock_destroy(&pf->lock);
		return index;
	}
	vf->uverbs_index = index;
	pf->vfs[0] = vf;
	pf->num_vfs = pf->total_vfs = 1;
	return 0;
}

void vhca_guest_function_update(struct vhca_pf *pf,
				const struct vhca_devcmd_function *f)
{
	struct vhca_dev *vf = pf->vfs[0];
	bool was_active, gid, pkeys;

	pthread_rwlock_wrlock(&pf->lock);
	was_active = vf->port.state == IBV_PORT_ACTIVE;
	gid = vf->port_guid != f->port_guid;
	pkeys = memcmp(vf->port.pkeys, f->pkeys, sizeof(f->pkeys)) != 0;
	copy_function(vf, f);
	/* The host's order (pf.c commit_vf): down first, active last. */
	if (was_active && vf->port.state != IBV_PORT_ACTIVE)
		vhca_dev_notify(vf, VHCA_CHANGE_PORT_ERR);
	if (gid)
		vhca_dev_notify(vf, VHCA_CHANGE_GID);
	if (pkeys)
		vhca_dev_notify(vf, VHCA_CHANGE_PKEY);
	if (!was_active && vf->port.state == IBV_PORT_ACTIVE)
		vhca_dev_notify(vf, VHCA_CHANGE_PORT_ACTIVE);
	pthread_rwlock_unlock(&pf->lock);
}

void vhca_guest_function_fini(struct vhca_pf *pf)
{
	struct vhca_dev *vf = pf->vfs[0];

	if (vf) {
		pf->hooks.release_uverbs(pf->hooks.arg, vf->uverbs_index);
		free(vf);
	}
	pf->vfs[0] = NULL;
	pf->num_vfs = 0;
	pthread_rwlock_destroy(&pf->lock);
}
