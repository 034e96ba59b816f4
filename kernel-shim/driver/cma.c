// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * rdma_cm ids (cma.h), as the kernel's drivers/infiniband/core/cma.c has
 * them: their states, the port spaces with the kernel's bind rules
 * (cma_check_port(), cma_alloc_any_port()), binding, address and route
 * resolution and listening.  Connections are cma_conn.c's.  Port spaces
 * are per domain (cm.h): a guest is a host of its own, so two guests can
 * both listen on port 7174 as two machines can.  Under cm_lock().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <infiniband/verbs.h>

#include "cma.h"
#include "device/pf.h"
#include "peer.h"

/* ---- sockaddrs ---------------------------------------------------------------------- */

socklen_t cm_addr_size(const struct sockaddr *a)
{
	switch (a->sa_family) {
	case AF_INET: return sizeof(struct sockaddr_in);
	case AF_INET6: return sizeof(struct sockaddr_in6);
	case AF_IB: return sizeof(struct sockaddr_ib);
	default: return 0;
	}
}

static bool zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		if (*b++)
			return false;
	return true;
}

bool cm_addr_any(const struct sockaddr *a)
{
	switch (a->sa_family) {
	case AF_INET:
		return !((const struct sockaddr_in *)a)->sin_addr.s_addr;
	case AF_INET6:
		return zero(&((const struct sockaddr_in6 *)a)->sin6_addr, 16);
	case AF_IB:
		return zero(&((const struct sockaddr_ib *)a)->sib_addr, 16);
	default:
		return false;
	}
}

uint16_t cm_addr_port(const struct sockaddr *a)
{
	const struct sockaddr_ib *ib = (const struct sockaddr_ib *)a;

	switch (a->sa_family) {
	case AF_INET: return ntohs(((const struct sockaddr_in *)a)->sin_port);
	case AF_INET6:
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	case AF_IB:
		return (uint16_t)(be64toh(ib->sib_sid) &
				  be64toh(ib->sib_sid_mask));
	default: return 0;
	}
}

void cm_addr_set_port(struct sockaddr *a, uint16_t port)
{
	struct sockaddr_ib *ib = (struct sockaddr_ib *)a;

	switch (a->sa_family) {
	case AF_INET: ((struct sockaddr_in *)a)->sin_port = htons(port); break;
	case AF_INET6:
		((struct sockaddr_in6 *)a)->sin6_port = htons(port);
		break;
	case AF_IB:
		ib->sib_sid = htobe64((be64toh(ib->sib_sid) & ~0xffffull) | port);
		ib->sib_sid_mask = htobe64(be64toh(ib->sib_sid_mask) | 0xffff);
		break;
	default: break;
	}
}

/* The same address (not port), as cma_addr_cmp() compares them. */
static bool addr_same(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	switch (a->sa_family) {
	case AF_INET:
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	case AF_INET6:
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
	default:
		return !memcmp(&((const struct sockaddr_ib *)a)->sib_addr,
			       &((const struct sockaddr_ib *)b)->sib_addr, 16);
	}
}

uint64_t cma_service_id(const struct cm_id *id, const struct sockaddr *a)
{
	if (a->sa_family == AF_IB)
		return be64toh(((const struct sockaddr_ib *)a)->sib_sid);
	return ((uint64_t)id->ps << 16) + cm_addr_port(a);
}

/* ---- ids ------------------------------------------------------------------------------ */

static unsigned int domain_ids[VHCA_MAX_VFS + 1], total_ids;
/* For the status view, read without the lock (cma_stats()). */
static atomic_uint stat_ids, stat_listeners;

void cma_stats(unsigned int *ids, unsigned int *listeners)
{
	*ids = atomic_load(&stat_ids);
	*listeners = atomic_load(&stat_listeners);
}

static unsigned int *ids_of(int domain)
{
	return &domain_ids[domain < 0 || domain >= VHCA_MAX_VFS ? 0 :
							       domain + 1];
}

struct cm_id *cma_create(struct ucma_file *file, uint16_t ps, uint8_t qp_type,
			 int domain, int *err)
{
	struct cm_id *id;

	switch (ps) {
	case RDMA_PS_TCP: qp_type = IBV_QPT_RC; break;
	case RDMA_PS_UDP:
	case RDMA_PS_IPOIB: qp_type = IBV_QPT_UD; break;
	case RDMA_PS_IB:
		if (qp_type != IBV_QPT_RC && qp_type != IBV_QPT_UC &&
		    qp_type != IBV_QPT_UD) {
			*err = -EINVAL;
			return NULL;
		}
		break;
	default:
		*err = -EINVAL;		/* ucma_get_qp_type() */
		return NULL;
	}
	/* A tenant's ids are daemon memory: a share of them each. */
	if (*ids_of(domain) >= CM_IDS_PER_DOMAIN || total_ids >= CM_IDS_MAX) {
		*err = -ENOMEM;
		return NULL;
	}
	id = calloc(1, sizeof(*id));
	if (!id) {
		*err = -ENOMEM;
		return NULL;
	}
	id->file = file;
	id->domain = domain;
	id->state = CMA_IDLE;
	id->ps = ps;
	id->qp_type = qp_type;
	id->seq_num = cm_random32() & 0xffffff;
	(*ids_of(domain))++;
	total_ids++;
	atomic_fetch_add(&stat_ids, 1);
	return id;
}

/* ---- port spaces ------------------------------------------------------------------------- */

#define BIND_BUCKETS 4096u
/* The kernel's default ip_local_port_range. */
#define PORT_LOW 32768u
#define PORT_HIGH 60999u

static struct cm_bind *binds[BIND_BUCKETS];

static unsigned int bind_bucket(int domain, uint16_t ps, uint16_t port)
{
	return ((unsigned int)(domain + 1) * 131u + ps * 7u + port) %
	       BIND_BUCKETS;
}

struct cm_bind *cma_bind_of(int domain, uint16_t ps, uint16_t port)
{
	struct cm_bind *b = binds[bind_bucket(domain, ps, port)];

	while (b && (b->domain != domain || b->ps != ps || b->port != port))
		b = b->next;
	return b;
}

static void bind_add(struct cm_bind *b, struct cm_id *id)
{
	id->bind = b;
	id->bind_next = b->owners;
	b->owners = id;
}

static int bind_new(struct cm_id *id, uint16_t ps, uint16_t port)
{
	struct cm_bind *b = calloc(1, sizeof(*b));
	unsigned int i;

	if (!b)
		return -ENOMEM;
	b->domain = id->domain;
	b->ps = ps;
	b->port = port;
	i = bind_bucket(b->domain, ps, port);
	b->next = binds[i];
	binds[i] = b;
	bind_add(b, id);
	cm_addr_set_port((struct sockaddr *)&id->src, port);
	return 0;
}

static void bind_release(struct cm_id *id)
{
	struct cm_bind *b = id->bind, **p;
	struct cm_id **o;

	if (!b)
		return;
	for (o = &b->owners; *o; o = &(*o)->bind_next)
		if (*o == id) {
			*o = id->bind_next;
			break;
		}
	id->bind = NULL;
	if (b->owners)
		return;
	for (p = &binds[bind_bucket(b->domain, b->ps, b->port)]; *p;
	     p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	free(b);
}

/* cma_check_port(): may @id share @b's port? */
static int check_port(const struct cm_bind *b, const struct cm_id *id,
		      bool reuseaddr)
{
	const struct sockaddr *addr = (const struct sockaddr *)&id->src;

	for (const struct cm_id *cur = b->owners; cur; cur = cur->bind_next) {
		const struct sockaddr *cur_addr =
			(const struct sockaddr *)&cur->src;

		if (cur == id || (reuseaddr && cur->reuseaddr))
			continue;
		if (id->afonly && cur->afonly &&
		    addr->sa_family != cur_addr->sa_family)
			continue;
		if (cm_addr_any(addr) || cm_addr_any(cur_addr))
			return -EADDRNOTAVAIL;
		if (addr_same(addr, cur_addr))
			return -EADDRINUSE;
	}
	return 0;
}

/* cma_select_ib_ps(): the port space an AF_IB service ID names. */
static uint16_t select_ps(struct cm_id *id)
{
	struct sockaddr_ib *sib = (struct sockaddr_ib *)&id->src;
	uint64_t mask, sid;

	if (sib->sib_family != AF_IB)
		return id->ps;
	mask = be64toh(sib->sib_sid_mask) & CM_IB_IP_PS_MASK;
	sid = be64toh(sib->sib_sid) & mask;
	if (id->ps == RDMA_PS_IB && sid == (CM_IB_IP_PS_IB & mask))
		return RDMA_PS_IB;
	if ((id->ps == RDMA_PS_IB || id->ps == RDMA_PS_TCP) &&
	    sid == (CM_IB_IP_PS_TCP & mask)) {
		sib->sib_sid = htobe64(CM_IB_IP_PS_TCP | cm_addr_port((void *)sib));
		sib->sib_sid_mask = htobe64(CM_IB_IP_PS_MASK |
					    be64toh(sib->sib_sid_mask));
		return RDMA_PS_TCP;
	}
	if ((id->ps == RDMA_PS_IB || id->ps == RDMA_PS_UDP) &&
	    sid == (CM_IB_IP_PS_UDP & mask)) {
		sib->sib_sid = htobe64(CM_IB_IP_PS_UDP | cm_addr_port((void *)sib));
		sib->sib_sid_mask = htobe64(CM_IB_IP_PS_MASK |
					    be64toh(sib->sib_sid_mask));
		return RDMA_PS_UDP;
	}
	return 0;
}

static int get_port(struct cm_id *id, pid_t tid)
{
	uint16_t ps = select_ps(id), port;
	struct cm_bind *b;
	int ret;

	if (!ps)
		return -EPROTONOSUPPORT;
	port = cm_addr_port((struct sockaddr *)&id->src);
	if (!port) {
		/* cma_alloc_any_port(): a random start, the next free one. */
		unsigned int range = PORT_HIGH - PORT_LOW + 1;
		unsigned int start = cm_random32() % range;

		for (unsigned int i = 0; i < range; i++) {
			uint16_t p = (uint16_t)(PORT_LOW + (start + i) % range);

			if (!cma_bind_of(id->domain, ps, p))
				return bind_new(id, ps, p);
		}
		return -EADDRNOTAVAIL;
	}
	/* cma_use_port(): below 1024 needs CAP_NET_BIND_SERVICE. */
	if (port < 1024 && !vhca_peer_capable(tid, CAP_NET_BIND_SERVICE))
		return -EACCES;
	b = cma_bind_of(id->domain, ps, port);
	if (!b)
		return bind_new(id, ps, port);
	ret = check_port(b, id, id->reuseaddr);
	if (!ret)
		bind_add(b, id);
	return ret;
}

/* ---- bind, resolve, listen ------------------------------------------------------------- */

static void set_func(struct cm_id *id, struct cm_func *f)
{
	if (id->func == f)
		return;
	if (f)
		cm_func_get(f);
	if (id->func)
		cm_func_put(id->func);
	id->func = f;
}

/* The partition of a bound id: AF_IB names it, else the port's entry 0. */
static void set_pkey(struct cm_id *id)
{
	const struct sockaddr_ib *sib = (const struct sockaddr_ib *)&id->src;
	uint16_t pkeys[1];

	if (sib->sib_family == AF_IB && sib->sib_pkey)
		id->pkey = be16toh(sib->sib_pkey);
	else if (id->func && !cm_func_identity(id->func, pkeys, NULL, NULL))
		id->pkey = pkeys[0];
}

int cma_bind(struct cm_id *id, const struct sockaddr *addr, pid_t tid)
{
	struct cm_func *f = NULL;
	socklen_t len = cm_addr_size(addr);
	int ret;

	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6 &&
	    addr->sa_family != AF_IB)
		return -EAFNOSUPPORT;
	if (id->state != CMA_IDLE)
		return -EINVAL;
	memset(&id->src, 0, sizeof(id->src));
	memcpy(&id->src, addr, len);
	if (!cm_addr_any(addr)) {
		ret = cm_addr_owner(addr, id->domain, tid, &f);
		if (ret)
			return ret;
		set_func(id, f);
		cm_func_put(f);
		set_pkey(id);
	}
	if (!id->afonly_set)
		id->afonly = addr->sa_family == AF_INET;
	memset(&id->dst, 0, sizeof(id->dst));
	id->dst.ss_family = addr->sa_family;
	ret = get_port(id, tid);
	if (ret) {
		set_func(id, NULL);
		return ret;
	}
	id->state = CMA_ADDR_BOUND;
	return 0;
}

/* Where a resolution ends: an event, and the state it leaves. */
static void addr_done(struct cm_id *id, int status, const struct cm_path *p)
{
	if (status) {
		id->state = CMA_ADDR_BOUND;
		ucma_post(id, NULL, CM_EV_ADDR_ERROR, status, NULL);
		return;
	}
	id->path = *p;
	id->pkey = p->pkey;
	id->state = CMA_ADDR_RESOLVED;
	ucma_post(id, NULL, CM_EV_ADDR_RESOLVED, 0, NULL);
}

/* @to takes @from's IP address, keeping its own port. */
static void set_ip_of(struct sockaddr_storage *to, const struct sockaddr *from)
{
	uint16_t port = cm_addr_port((struct sockaddr *)to);

	memcpy(to, from, cm_addr_size(from));
	cm_addr_set_port((struct sockaddr *)to, port);
}

int cma_resolve_addr(struct cm_id *id, const struct sockaddr *src,
		     const struct sockaddr *dst, pid_t tid)
{
	struct sockaddr_storage from;
	struct cm_func *f = NULL;
	struct cm_path path;
	int ret;

	if (id->state == CMA_IDLE) {
		/* cma_bind_addr(): the source given, or any of the family. */
		memset(&from, 0, sizeof(from));
		if (src && src->sa_family)
			memcpy(&from, src, cm_addr_size(src));
		else
			from.ss_family = dst->sa_family;
		if (dst->sa_family == AF_IB)
			((struct sockaddr_ib *)&from)->sib_pkey =
				((const struct sockaddr_ib *)dst)->sib_pkey;
		ret = cma_bind(id, (struct sockaddr *)&from, tid);
		if (ret)
			return ret;
	}
	if (id->src.ss_family != dst->sa_family || id->state != CMA_ADDR_BOUND)
		return -EINVAL;
	memset(&id->dst, 0, sizeof(id->dst));
	memcpy(&id->dst, dst, cm_addr_size(dst));
	id->state = CMA_ADDR_QUERY;

	if (!id->func && cm_addr_loopback(dst)) {
		/* To ourselves through the first port, from the same address. */
		ret = cm_addr_owner(dst, id->domain, tid, &f);
		if (!ret) {
			set_func(id, f);
			cm_func_put(f);
			set_pkey(id);
			set_ip_of(&id->src, dst);
			ret = cm_addr_resolve(id->func, dst, id->pkey, &path);
		}
	} else if (cm_addr_multicast(dst)) {
		/*
		 * addr_resolve() of a group: no neighbour to ask, the group is
		 * joined later (JOIN_MCAST), through the port the id is bound
		 * to (a wildcard source has none to choose here).
		 */
		memset(&path, 0, sizeof(path));
		path.pkey = id->pkey;
		ret = id->func ? 0 : -EHOSTUNREACH;
	} else if (cm_addr_any(dst)) {
		/* cma_resolve_loopback(): to ourselves. */
		f = id->func;
		ret = f ? 0 : cm_addr_route(dst, id->domain, tid, &f, &id->src);
		if (!ret) {
			set_func(id, f);
			memcpy(&id->dst, &id->src, cm_addr_size(dst));
			ret = cm_addr_resolve(id->func, (void *)&id->dst,
					      id->pkey, &path);
		}
	} else if (id->func) {
		ret = cm_addr_resolve(id->func, dst, id->pkey, &path);
	} else {
		ret = cm_addr_route(dst, id->domain, tid, &f, &id->src);
		if (!ret) {
			set_func(id, f);
			set_pkey(id);
			ret = cm_addr_resolve(f, dst, id->pkey, &path);
		}
	}
	addr_done(id, ret, &path);
	return 0;
}

int cma_resolve_route(struct cm_id *id)
{
	int ret;

	if (id->state != CMA_ADDR_RESOLVED)
		return -EINVAL;
	id->state = CMA_ROUTE_QUERY;
	/* The SA's PathRecord, asked again: the subnet may have changed. */
	ret = cm_path_query(id->func, &id->path);
	if (ret) {
		id->state = CMA_ADDR_RESOLVED;
		ucma_post(id, NULL, CM_EV_ROUTE_ERROR, ret, NULL);
		return 0;
	}
	id->num_paths = 1;
	id->state = CMA_ROUTE_RESOLVED;
	ucma_post(id, NULL, CM_EV_ROUTE_RESOLVED, 0, NULL);
	return 0;
}

int cma_set_ib_path(struct cm_id *id, const struct cm_path *path)
{
	struct cm_path own;

	if (id->state != CMA_ADDR_RESOLVED)
		return -EINVAL;
	/* A path given by the user must start at our port, in our table. */
	own = id->path;
	if (path->slid != own.slid || path->sgid_guid != own.sgid_guid ||
	    cm_func_pkey_index(id->func, path->pkey) < 0)
		return -EINVAL;
	id->path = *path;
	id->pkey = path->pkey;
	id->num_paths = 1;
	id->state = CMA_ROUTE_RESOLVED;
	ucma_post(id, NULL, CM_EV_ROUTE_RESOLVED, 0, NULL);
	return 0;
}

int cma_listen(struct cm_id *id, int backlog, pid_t tid)
{
	int ret;

	if (id->state != CMA_ADDR_BOUND) {
		/* rdma_listen() on an unbound id binds it to AF_INET any. */
		struct sockaddr_in any = { .sin_family = AF_INET };

		ret = cma_bind(id, (struct sockaddr *)&any, tid);
		if (ret)
			return ret;
	}
	/* A listener is unique in its port, reuseaddr or not. */
	if (id->reuseaddr) {
		ret = check_port(id->bind, id, false);
		if (ret)
			return ret;
		id->reuseaddr = false;
	}
	id->backlog = backlog;
	id->state = CMA_LISTEN;
	atomic_fetch_add(&stat_listeners, 1);
	return 0;
}

/* ---- the end of an id, and of its function -------------------------------------------- */

void cma_destroy(struct cm_id *id)
{
	if (id->state == CMA_LISTEN)
		atomic_fetch_sub(&stat_listeners, 1);
	id->state = CMA_DESTROYING;
	atomic_fetch_sub(&stat_ids, 1);
	if (id->conn) {
		cm_ib_release(id->conn);
		id->conn = NULL;
	}
	bind_release(id);
	set_func(id, NULL);
	(*ids_of(id->domain))--;
	total_ids--;
}

void cma_func_removed(struct cm_func *f, struct cm_id *id)
{
	if (id->func != f || id->state == CMA_DEVICE_REMOVAL ||
	    id->state == CMA_DESTROYING)
		return;
	/* cma_send_device_removal_put(): the user must destroy the id. */
	if (id->conn) {
		cm_ib_release(id->conn);
		id->conn = NULL;
	}
	id->state = CMA_DEVICE_REMOVAL;
	ucma_post(id, NULL, CM_EV_DEVICE_REMOVAL, 0, NULL);
}

void cma_func_changed(struct cm_func *f, struct cm_id *id, bool gid_changed)
{
	struct cm_func *owner = NULL;

	if (id->func != f || id->state == CMA_DEVICE_REMOVAL ||
	    id->state == CMA_DESTROYING || id->state == CMA_IDLE)
		return;
	/*
	 * cma_netdev_callback(): the interface's hardware address (for
	 * IPoIB the port GID) changed, or it lost the address the id has.
	 */
	if (!gid_changed && id->src.ss_family != AF_IB &&
	    !cm_addr_any((struct sockaddr *)&id->src) &&
	    !cm_addr_owner((struct sockaddr *)&id->src, CM_DOMAIN_HOST, 0,
			   &owner)) {
		cm_func_put(owner);
		if (owner == f)
			return;
	}
	ucma_post(id, NULL, CM_EV_ADDR_CHANGE, 0, NULL);
}
