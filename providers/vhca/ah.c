// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: address handles, purely in userspace.  The device never
 * sees an AH: post_send copies its attributes into each UD WQE's
 * struct vhca_ud_dest, and the device validates them there.
 */
#include <errno.h>
#include <stdlib.h>

#include "vhca.h"

/* The device's GID table length (ibv_query_device: gid_tbl_len). */
#define VHCA_GID_TABLE_LEN 16
#define VHCA_PORT_NUM 1

struct ibv_ah *vhca_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
	struct vhca_ah *ah;

	(void)pd;

	/* One InfiniBand port: a LID is always needed to route. */
	if (attr->port_num != VHCA_PORT_NUM || !attr->dlid ||
	    attr->sl > 15 ||
	    (attr->is_global &&
	     attr->grh.sgid_index >= VHCA_GID_TABLE_LEN)) {
		errno = EINVAL;
		return NULL;
	}

	ah = calloc(1, sizeof(*ah));
	if (!ah)
		return NULL;
	ah->attr = *attr;
	return &ah->ibv_ah;
}

int vhca_destroy_ah(struct ibv_ah *ibah)
{
	free(to_vah(ibah));
	return 0;
}
