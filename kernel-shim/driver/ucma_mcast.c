// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * rdma_cm multicast (ucma.h): JOIN_IP_MCAST, JOIN_MCAST and LEAVE_MCAST
 * as the kernel's ucma.c and cma_join_multicast() answer them.  There is
 * no subnet manager to join at: the group's MGID comes from the address
 * as cma_set_mgid() makes it (the IPv4/IPv6 multicast mapping of the
 * id's P_Key, with the RDMA CM signature for the UDP port space), its
 * MLID from the MGID (one MGID, one MLID, everywhere), and the join
 * completes at once with MULTICAST_JOIN carrying the address vector and
 * Q_Key.  librdmacm then attaches the id's QP itself (ibv_attach_mcast,
 * verbs multicast: device/mcast.h).  Under cm_lock().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_user_cm.h>

#include "cma.h"
#include "ucma.h"

/* Joins one file may hold (the kernel has no limit but memory). */
#define MC_PER_FILE_MAX 256

struct cma_mc {
	struct cma_mc *next;
	struct ucma_file *file;
	struct cm_id *id;
	uint32_t handle;		/* the ABI's id of the join */
	uint64_t uid;			/* librdmacm's */
	uint32_t events_reported;
	uint8_t mgid[16];
	uint16_t mlid;
};

static struct cma_mc *mcs;
static uint32_t last_handle;
static atomic_uint stat_joins;

unsigned int ucma_joins(void)
{
	return atomic_load(&stat_joins);
}

/*
 * cma_set_mgid() for IB: ip_ib_mc_map() / ipv6_ib_mc_map() with the id's
 * P_Key and link-local scope (2), the RDMA CM signature (0x01) for the
 * UDP port space; an IPv6 address that is an SA-assigned MGID, or an
 * AF_IB one, as it is.  -EINVAL for the any address (an SA would assign
 * a group; there is none).
 */
static int mgid_of(const struct cm_id *id, const struct sockaddr *a,
		   uint8_t mgid[16])
{
	bool udp = id->ps == RDMA_PS_UDP;

	memset(mgid, 0, 16);
	if (a->sa_family == AF_INET) {
		uint32_t ip = ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr);

		if (!ip)
			return -EINVAL;
		mgid[0] = 0xff;
		mgid[1] = 0x12;
		mgid[2] = 0x40;
		mgid[3] = udp ? 0x01 : 0x1b;
		mgid[4] = (uint8_t)(id->pkey >> 8);
		mgid[5] = (uint8_t)id->pkey;
		mgid[12] = (uint8_t)((ip >> 24) & 0x0f);
		mgid[13] = (uint8_t)(ip >> 16);
		mgid[14] = (uint8_t)(ip >> 8);
		mgid[15] = (uint8_t)ip;
		return 0;
	}
	if (a->sa_family == AF_INET6) {
		const uint8_t *s = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
		static const uint8_t any[16];

		if (!memcmp(s, any, 16))
			return -EINVAL;
		if (s[0] == 0xff && (s[1] & 0xf0) == 0x10 && s[2] == 0xa0 &&
		    s[3] == 0x1b) {
			memcpy(mgid, s, 16);	/* SA-assigned */
			return 0;
		}
		mgid[0] = 0xff;
		mgid[1] = 0x12;
		mgid[2] = 0x60;
		mgid[3] = udp ? 0x01 : 0x1b;
		mgid[4] = (uint8_t)(id->pkey >> 8);
		mgid[5] = (uint8_t)id->pkey;
		memcpy(mgid + 6, s + 6, 10);
		return 0;
	}
	if (a->sa_family == AF_IB) {
		memcpy(mgid, &((const struct sockaddr_ib *)a)->sib_addr, 16);
		return mgid[0] == 0xff ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/* The group's MLID: a function of its MGID, 0xc000..0xfffe (FNV-1a). */
static uint16_t mlid_of(const uint8_t mgid[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ mgid[i]) * 16777619u;
	return (uint16_t)(0xc000u + h % 0x3fffu);
}

static unsigned int joins_of(const struct ucma_file *file)
{
	unsigned int n = 0;

	for (const struct cma_mc *mc = mcs; mc; mc = mc->next)
		n += mc->file == file;
	return n;
}

static uint32_t new_handle(void)
{
	for (;;) {
		bool used = false;

		if (!++last_handle)
			continue;
		for (const struct cma_mc *mc = mcs; mc && !used; mc = mc->next)
			used = mc->handle == last_handle;
		if (!used)
			return last_handle;
	}
}

int ucma_join(struct ucma_file *file, uint32_t id_handle, uint64_t uid,
	      const struct sockaddr *addr, uint16_t addr_size,
	      uint16_t join_flags, uint32_t *mc_handle)
{
	struct rdma_ucm_event_resp ev = { 0 };
	struct rdma_ucm_ud_param *ud = &ev.param.ud;
	struct cma_mc *mc;
	struct cm_id *id;
	uint8_t mgid[16];
	int ret;

	ret = ucma_find(file, id_handle, &id);
	if (ret)
		return ret;
	if (join_flags >= RDMA_MC_JOIN_FLAG_RESERVED ||
	    cm_addr_size(addr) != addr_size || !addr_size)
		return -EINVAL;
	/* rdma_join_multicast(): a UD id with an address on a device. */
	if (!id->func || id->qp_type != IBV_QPT_UD ||
	    (id->state != CMA_ADDR_BOUND && id->state != CMA_ADDR_RESOLVED))
		return -EINVAL;
	ret = mgid_of(id, addr, mgid);
	if (ret)
		return ret;
	if (joins_of(file) >= MC_PER_FILE_MAX)
		return -ENOMEM;
	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;
	*mc = (struct cma_mc){ .next = mcs, .file = file, .id = id,
			       .handle = new_handle(), .uid = uid,
			       .mlid = mlid_of(mgid) };
	memcpy(mc->mgid, mgid, 16);
	mcs = mc;
	atomic_fetch_add(&stat_joins, 1);
	/* cma_set_qkey(): the port space's, unless the id has one. */
	if (!id->qkey)
		id->qkey = id->ps == RDMA_PS_IPOIB ? CM_IPOIB_QKEY : CM_UDP_QKEY;
	ud->qp_num = 0xffffff;
	ud->qkey = id->qkey;
	ud->ah_attr.dlid = mc->mlid;
	ud->ah_attr.is_global = 1;
	ud->ah_attr.port_num = 1;
	memcpy(ud->ah_attr.grh.dgid, mgid, 16);
	ev.uid = mc->uid;
	ev.id = mc->handle;
	ucma_post_mc(id, mc, &mc->events_reported, CM_EV_MULTICAST_JOIN, &ev);
	*mc_handle = mc->handle;
	return 0;
}

static void mc_free(struct cma_mc **link)
{
	struct cma_mc *mc = *link;

	*link = mc->next;
	ucma_drop_mc_events(mc->id, mc);
	free(mc);
	atomic_fetch_sub(&stat_joins, 1);
}

int ucma_leave(struct ucma_file *file, uint32_t mc_handle,
	       uint32_t *events_reported)
{
	struct cma_mc **link;

	for (link = &mcs; *link; link = &(*link)->next) {
		if ((*link)->handle != mc_handle)
			continue;
		if ((*link)->file != file)
			return -EINVAL;
		*events_reported = (*link)->events_reported;
		mc_free(link);
		return 0;
	}
	return -ENOENT;
}

void ucma_forget_joins(struct cm_id *id)
{
	struct cma_mc **link = &mcs;

	while (*link) {
		if ((*link)->id == id)
			mc_free(link);
		else
			link = &(*link)->next;
	}
}

void ucma_move_joins(struct cm_id *id, struct ucma_file *to)
{
	for (struct cma_mc *mc = mcs; mc; mc = mc->next)
		if (mc->id == id)
			mc->file = to;
}
