// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Functions, addresses and paths as the CM sees them (cm.h).  Everything
 * the CM learns of a function it asks the device (include/vhca/devcmd.h):
 * its identity (QUERY_FUNCTION), its IP addresses (QUERY_ADDRS), the
 * holder of an address and the path to it (RESOLVE_ADDR, what ARP on an
 * IPoIB partition and the SA's PathRecord answer on a real subnet), and
 * its QP1 (SEND_MAD/RECV_MAD).  The same calls work where the device is
 * across a VF's mailbox.
 *
 * A struct cm_func never outlives its function unnoticed: devcmds run
 * under pf->lock shared, and the PF's dev_removed hook clears f->dev with
 * pf->lock exclusive, so a function found there is alive for the call.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <vhca/devcmd.h>

#include "cma.h"
#include "device.h"
#include "device/pf.h"
#include "guests.h"

static pthread_mutex_t funcs_lock = PTHREAD_MUTEX_INITIALIZER;	/* leaf */
static struct cm_func *funcs;

void cm_agent_wake(void);

/* ---- functions ---------------------------------------------------------------------- */

/* Found or made, with funcs_lock held; the caller keeps @dev alive. */
static struct cm_func *lookup(struct vhca_dev *dev, bool create)
{
	struct cm_func *f;

	for (f = funcs; f; f = f->next)
		if (atomic_load(&f->dev) == dev)
			return f;
	if (!create)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	atomic_init(&f->dev, dev);
	f->lid = dev->port.lid;
	f->is_vf = dev->is_vf;
	f->vf_index = dev->vf_index;
	f->node_guid = dev->node_guid;
	f->port_guid = dev->port_guid;
	f->next = funcs;
	funcs = f;
	return f;
}

/* Caller holds pf->lock (shared) and cm_lock(). */
struct cm_func *cm_func_of(struct vhca_dev *dev)
{
	struct cm_func *f;

	pthread_mutex_lock(&funcs_lock);
	f = lookup(dev, true);
	if (f)
		f->refs++;
	pthread_mutex_unlock(&funcs_lock);
	return f;
}

void cm_func_get(struct cm_func *f)
{
	f->refs++;
}

void cm_func_put(struct cm_func *f)
{
	struct cm_func **p;

	if (!f || --f->refs || atomic_load(&f->dev) ||
	    atomic_load(&f->removed))
		return;
	pthread_mutex_lock(&funcs_lock);
	for (p = &funcs; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&funcs_lock);
	free(f);
}

int cm_func_cmd(struct cm_func *f, uint16_t op, const void *body, size_t len,
		void *out, size_t out_len)
{
	struct vhca_pf *pf = cm_pf();
	struct vhca_dev *dev;
	int ret;

	pthread_rwlock_rdlock(&pf->lock);
	dev = atomic_load(&f->dev);
	ret = dev ? vhca_device_cmd(dev, op, 0, body, len, NULL, 0, NULL, out,
				    out_len) :
		    -ENODEV;
	pthread_rwlock_unlock(&pf->lock);
	return ret;
}

int cm_func_identity(struct cm_func *f, uint16_t *pkey0, uint64_t *port_guid,
		     uint64_t *node_guid)
{
	struct vhca_devcmd_function fn;
	int ret = cm_func_cmd(f, VHCA_DEVCMD_QUERY_FUNCTION, NULL, 0, &fn,
			      sizeof(fn));

	if (ret)
		return ret;
	f->node_guid = fn.node_guid;
	f->port_guid = fn.port_guid;
	if (pkey0)
		*pkey0 = fn.pkeys[0];
	if (port_guid)
		*port_guid = fn.port_guid;
	if (node_guid)
		*node_guid = fn.node_guid;
	return 0;
}

int cm_func_pkey_index(struct cm_func *f, uint16_t pkey)
{
	struct vhca_devcmd_function fn;
	int found = -1;

	if (!f || !(pkey & 0x7fff) ||
	    cm_func_cmd(f, VHCA_DEVCMD_QUERY_FUNCTION, NULL, 0, &fn,
			sizeof(fn)))
		return -1;
	/* ib_find_cached_pkey(): the partition, a full member's first. */
	for (int i = 0; i < 128; i++) {
		if ((fn.pkeys[i] & 0x7fff) != (pkey & 0x7fff))
			continue;
		if (fn.pkeys[i] & 0x8000)
			return i;
		if (found < 0)
			found = i;
	}
	return found;
}

int cm_func_domain(struct cm_func *f)
{
	if (f->is_vf && vhca_guests_own(cm_guests(), f->vf_index))
		return (int)f->vf_index;
	return CM_DOMAIN_HOST;
}

bool cm_func_usable(struct cm_func *f, int domain, pid_t tid)
{
	struct vhca_pf *pf = cm_pf();
	struct vhca_dev *dev;
	bool ok;

	/* A VM's VF is the VM's PCI function: not ours to use here. */
	pthread_rwlock_rdlock(&pf->lock);
	dev = atomic_load(&f->dev);
	ok = dev && !dev->vm_port;
	pthread_rwlock_unlock(&pf->lock);
	if (!ok || cm_func_domain(f) != domain)
		return false;
	return !tid || !vhca_guests_check(cm_guests(), f->is_vf, f->vf_index,
					  tid);
}

/* The functions a domain may use, referenced, in the PF's order. */
struct func_list {
	struct cm_func *f[VHCA_MAX_VFS + 1];
	unsigned int n;
};

static int collect(struct vhca_dev *dev, void *arg)
{
	struct func_list *l = arg;
	struct cm_func *f = cm_func_of(dev);

	if (f)
		l->f[l->n++] = f;
	return 0;
}

static void usable_funcs(int domain, pid_t tid, struct func_list *l)
{
	struct vhca_pf *pf = cm_pf();
	unsigned int kept = 0;

	l->n = 0;
	pthread_rwlock_rdlock(&pf->lock);
	vhca_pf_for_each_dev(pf, collect, l);
	pthread_rwlock_unlock(&pf->lock);
	for (unsigned int i = 0; i < l->n; i++) {
		if (cm_func_usable(l->f[i], domain, tid))
			l->f[kept++] = l->f[i];
		else
			cm_func_put(l->f[i]);
	}
	l->n = kept;
}

static void put_all(struct func_list *l, struct cm_func *keep)
{
	for (unsigned int i = 0; i < l->n; i++)
		if (l->f[i] != keep)
			cm_func_put(l->f[i]);
}

/* ---- addresses ------------------------------------------------------------------------- */

static int addrs_of(struct cm_func *f, struct vhca_devcmd_addrs *a)
{
	int ret = cm_func_cmd(f, VHCA_DEVCMD_QUERY_ADDRS, NULL, 0, a,
			      sizeof(*a));

	if (!ret && a->count > VHCA_DEVCMD_ADDRS_MAX)
		a->count = VHCA_DEVCMD_ADDRS_MAX;
	return ret;
}

static const uint8_t *ip_bytes(const struct sockaddr *a)
{
	return a->sa_family == AF_INET ?
		       (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr :
		       (const uint8_t *)&((const struct sockaddr_in6 *)a)->sin6_addr;
}

static unsigned int ip_len(const struct sockaddr *a)
{
	return a->sa_family == AF_INET ? 4 : 16;
}

bool cm_addr_multicast(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return (ip_bytes(a)[0] & 0xf0) == 0xe0;	/* 224.0.0.0/4 */
	return a->sa_family == AF_INET6 && ip_bytes(a)[0] == 0xff;
}

bool cm_addr_loopback(const struct sockaddr *a)
{
	static const uint8_t one6[16] = { [15] = 1 };

	if (a->sa_family == AF_INET)
		return ip_bytes(a)[0] == 127;
	return a->sa_family == AF_INET6 && !memcmp(ip_bytes(a), one6, 16);
}

static bool holds(const struct vhca_devcmd_addr *x, const struct sockaddr *a)
{
	return x->family == a->sa_family &&
	       !memcmp(x->addr, ip_bytes(a), ip_len(a));
}

static bool in_subnet(const struct vhca_devcmd_addr *x,
		      const struct sockaddr *a)
{
	const uint8_t *b = ip_bytes(a);
	unsigned int bits = x->prefix_len, n = bits / 8;

	if (x->family != a->sa_family || bits > 8 * ip_len(a) ||
	    memcmp(x->addr, b, n))
		return false;
	return !(bits % 8) ||
	       !((x->addr[n] ^ b[n]) & (uint8_t)(0xff00u >> (bits % 8)));
}

static uint64_t gid_half(const struct sockaddr_ib *sib, int half)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | sib->sib_addr.sib_raw[8 * half + i];
	return v;
}

int cm_addr_owner(const struct sockaddr *addr, int domain, pid_t tid,
		  struct cm_func **out)
{
	struct func_list l;
	struct cm_func *found = NULL;

	if (tid) {
		usable_funcs(domain, tid, &l);
	} else {
		struct vhca_pf *pf = cm_pf();

		l.n = 0;
		pthread_rwlock_rdlock(&pf->lock);
		vhca_pf_for_each_dev(pf, collect, &l);
		pthread_rwlock_unlock(&pf->lock);
	}
	/* cma_bind_loopback(): a loopback address binds the first port. */
	if (cm_addr_loopback(addr) && l.n)
		found = l.f[0];
	for (unsigned int i = 0; i < l.n && !found; i++) {
		struct vhca_devcmd_addrs a;
		uint64_t guid;

		if (addr->sa_family == AF_IB) {
			const struct sockaddr_ib *sib = (const void *)addr;

			if (gid_half(sib, 0) == 0xfe80000000000000ULL &&
			    !cm_func_identity(l.f[i], NULL, &guid, NULL) &&
			    guid == gid_half(sib, 1))
				found = l.f[i];
			continue;
		}
		if (addrs_of(l.f[i], &a))
			continue;
		for (unsigned int k = 0; k < a.count && !found; k++)
			if (holds(&a.addr[k], addr))
				found = l.f[i];
	}
	put_all(&l, found);
	*out = found;
	return found ? 0 : -EADDRNOTAVAIL;
}

static void set_ip(struct sockaddr_storage *src, const struct vhca_devcmd_addr *x)
{
	if (x->family == AF_INET)
		memcpy(&((struct sockaddr_in *)src)->sin_addr, x->addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)src)->sin6_addr, x->addr, 16);
}

int cm_addr_route(const struct sockaddr *dst, int domain, pid_t tid,
		  struct cm_func **out, struct sockaddr_storage *src)
{
	struct vhca_devcmd_addr best = { 0 };
	struct cm_func *found = NULL;
	int rank = 0;	/* 3: holds dst, 2: in its subnet, 1: any address */
	struct func_list l;

	usable_funcs(domain, tid, &l);
	for (unsigned int i = 0; i < l.n && rank < 3; i++) {
		struct vhca_devcmd_addrs a;

		if (dst->sa_family == AF_IB) {
			found = l.f[i];
			rank = 3;
			break;
		}
		if (addrs_of(l.f[i], &a))
			continue;
		for (unsigned int k = 0; k < a.count; k++) {
			int r = a.addr[k].family != dst->sa_family ? 0 :
				cm_addr_any(dst)		   ? 1 :
				holds(&a.addr[k], dst)		   ? 3 :
				in_subnet(&a.addr[k], dst)	   ? 2 :
								     0;

			if (r > rank) {
				rank = r;
				best = a.addr[k];
				found = l.f[i];
			}
		}
	}
	/* Only the subnet an address is in is reachable: no default route. */
	if (rank == 1 && !cm_addr_any(dst))
		found = NULL;
	put_all(&l, found);
	if (!found)
		return -ENETUNREACH;
	if (dst->sa_family == AF_IB) {
		struct sockaddr_ib *sib = (struct sockaddr_ib *)src;
		uint64_t guid = 0;

		cm_func_identity(found, NULL, &guid, NULL);
		for (int i = 0; i < 8; i++) {
			sib->sib_addr.sib_raw[i] =
				(uint8_t)(0xfe80000000000000ULL >> (56 - 8 * i));
			sib->sib_addr.sib_raw[8 + i] =
				(uint8_t)(guid >> (56 - 8 * i));
		}
	} else if (cm_addr_any((struct sockaddr *)src)) {
		set_ip(src, &best);
	}
	*out = found;
	return 0;
}

static void path_of(const struct vhca_devcmd_path *p, struct cm_path *out)
{
	*out = (struct cm_path){
		.subnet_prefix = p->subnet_prefix,
		.sgid_guid = p->sgid_guid,
		.dgid_guid = p->dgid_guid,
		.slid = p->slid,
		.dlid = p->dlid,
		.pkey = p->pkey,
		.mtu = p->mtu,
		.rate = p->rate,
		.sl = p->sl,
		.packet_life_time = p->packet_life_time,
		.hop_limit = p->hop_limit,
	};
}

int cm_addr_resolve(struct cm_func *f, const struct sockaddr *dst,
		    uint16_t pkey, struct cm_path *path)
{
	struct vhca_devcmd_resolve r = { .pkey = pkey };
	struct vhca_devcmd_path p;
	int ret;

	if (dst->sa_family == AF_IB) {
		r.kind = VHCA_DEVCMD_RESOLVE_GID;
		memcpy(r.addr, &((const struct sockaddr_ib *)dst)->sib_addr, 16);
	} else if (cm_addr_loopback(dst)) {
		/* To ourselves: the path to our own GID (cma_resolve_loopback()). */
		uint64_t guid;

		ret = cm_func_identity(f, NULL, &guid, NULL);
		if (ret)
			return ret;
		r.kind = VHCA_DEVCMD_RESOLVE_GID;
		for (int i = 0; i < 8; i++) {
			r.addr[i] = (uint8_t)(VHCA_SUBNET_PREFIX >> (56 - 8 * i));
			r.addr[8 + i] = (uint8_t)(guid >> (56 - 8 * i));
		}
	} else {
		r.kind = VHCA_DEVCMD_RESOLVE_IP;
		r.family = (uint8_t)dst->sa_family;
		memcpy(r.addr, ip_bytes(dst), ip_len(dst));
	}
	ret = cm_func_cmd(f, VHCA_DEVCMD_RESOLVE_ADDR, &r, sizeof(r), &p,
			  sizeof(p));
	if (ret)
		return ret == -EINVAL ? -EHOSTUNREACH : ret;
	path_of(&p, path);
	return 0;
}

int cm_path_query(struct cm_func *f, struct cm_path *path)
{
	struct vhca_devcmd_resolve r = { .kind = VHCA_DEVCMD_RESOLVE_GID,
					 .pkey = path->pkey };
	struct vhca_devcmd_path p;
	int ret;

	for (int i = 0; i < 8; i++) {
		r.addr[i] = (uint8_t)(path->subnet_prefix >> (56 - 8 * i));
		r.addr[8 + i] = (uint8_t)(path->dgid_guid >> (56 - 8 * i));
	}
	ret = cm_func_cmd(f, VHCA_DEVCMD_RESOLVE_ADDR, &r, sizeof(r), &p,
			  sizeof(p));
	if (!ret)
		path_of(&p, path);
	return ret;
}

int cm_func_send_mad(struct cm_func *f, uint16_t dlid, uint16_t pkey_index,
		     const uint8_t mad[CM_MAD_SIZE])
{
	struct vhca_devcmd_mad m = {
		.lid = dlid,
		.pkey_index = pkey_index,
		.remote_qpn = VHCA_GSI_QPN,
	};

	memcpy(m.mad, mad, CM_MAD_SIZE);
	return cm_func_cmd(f, VHCA_DEVCMD_SEND_MAD, &m, sizeof(m), NULL, 0);
}

/* ---- notes from the device and the PF ------------------------------------------------- */

/* From the device's sink: pf->lock held shared, so @dev is alive. */
void cm_note_mads(struct vhca_dev *dev)
{
	struct cm_func *f;

	pthread_mutex_lock(&funcs_lock);
	f = lookup(dev, true);
	if (f)
		atomic_store(&f->mads, true);
	pthread_mutex_unlock(&funcs_lock);
	cm_agent_wake();
}

/* From the PF's hook, pf->lock held exclusive: @dev is about to go. */
void cm_note_removed(struct vhca_dev *dev)
{
	struct cm_func *f;

	pthread_mutex_lock(&funcs_lock);
	f = lookup(dev, false);
	if (f) {
		atomic_store(&f->dev, NULL);
		atomic_store(&f->removed, true);
	}
	pthread_mutex_unlock(&funcs_lock);
	if (f)
		cm_agent_wake();
}

void cm_note_changed(struct vhca_dev *dev, bool gid)
{
	struct cm_func *f;

	pthread_mutex_lock(&funcs_lock);
	f = lookup(dev, false);
	if (f)
		atomic_store(gid ? &f->gid_changed : &f->addr_changed, true);
	pthread_mutex_unlock(&funcs_lock);
	if (f)
		cm_agent_wake();
}

struct change {
	struct cm_func *f;
	bool gid;
};

static void removed_one(struct cm_id *id, void *arg)
{
	cma_func_removed(arg, id);
}

static void changed_one(struct cm_id *id, void *arg)
{
	const struct change *c = arg;

	cma_func_changed(c->f, id, c->gid);
}

/* At most this many MADs of one function per pass: others get a turn. */
#define MADS_PER_PASS 64

void cm_funcs_poll(void)
{
	struct cm_func *todo[VHCA_MAX_VFS * 2 + 2];
	unsigned int n = 0;
	bool again = false;

	pthread_mutex_lock(&funcs_lock);
	for (struct cm_func *f = funcs; f && n < sizeof(todo) / sizeof(*todo);
	     f = f->next) {
		f->refs++;
		todo[n++] = f;
	}
	pthread_mutex_unlock(&funcs_lock);

	for (unsigned int i = 0; i < n; i++) {
		struct cm_func *f = todo[i];

		if (atomic_exchange(&f->mads, false)) {
			struct vhca_devcmd_mad m;
			unsigned int k;

			for (k = 0; k < MADS_PER_PASS &&
				    !cm_func_cmd(f, VHCA_DEVCMD_RECV_MAD, NULL, 0,
						 &m, sizeof(m));
			     k++)
				cm_ib_recv(f, &m);
			if (k == MADS_PER_PASS) {
				atomic_store(&f->mads, true);
				again = true;
			}
		}
		if (atomic_exchange(&f->gid_changed, false))
			ucma_for_each_id(changed_one,
					 &(struct change){ f, true });
		if (atomic_exchange(&f->addr_changed, false))
			ucma_for_each_id(changed_one,
					 &(struct change){ f, false });
		if (atomic_exchange(&f->removed, false))
			ucma_for_each_id(removed_one, f);
		cm_func_put(f);
	}
	if (again)
		cm_agent_wake();
}
