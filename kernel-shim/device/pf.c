// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The physical function and its virtual functions: creation and
 * destruction of VFs with the kernel's sriov_numvfs rules, and the default
 * identity of every HCA (GUIDs, LIDs, P_Keys, port state).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "devcmd.h"
#include "mcast.h"
#include "pf.h"

/*
 * Default GUID layout: guid_base carries a locally administered 40-bit
 * host part; the low 16 bits number the function (0 = PF, 1 + k = VF k)
 * and bit 15 of those separates port GUIDs from node GUIDs, so every
 * default GUID of a host is distinct and stable across restarts.
 */
#define GUID_FUNCTION_MASK 0xffffULL
#define GUID_PORT_BIT 0x8000ULL

/* The PF is LID 1 and the SM; VF k is LID 2 + k. */
#define PF_LID 1

static uint64_t fnv1a64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t hash = 0xcbf29ce484222325ULL;

	while (len--) {
		hash ^= *p++;
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

uint64_t vhca_default_guid_base(void)
{
	char id[128] = "";
	uint64_t hash;
	ssize_t len = 0;
	int fd;

	fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		len = read(fd, id, sizeof(id) - 1);
		close(fd);
	}
	if (len <= 0)
		len = gethostname(id, sizeof(id) - 1) ? 0 : (ssize_t)strlen(id);

	hash = fnv1a64(id, len > 0 ? (size_t)len : 0);
	/* 0x02 in the top byte: locally administered, like a virtual MAC. */
	return (0x02ULL << 56) | ((hash << 16) & 0x00ffffffffff0000ULL);
}

void vhca_format_guid(uint64_t guid, char *buf, size_t len)
{
	snprintf(buf, len, "%04x:%04x:%04x:%04x",
		 (unsigned int)(guid >> 48) & 0xffff,
		 (unsigned int)(guid >> 32) & 0xffff,
		 (unsigned int)(guid >> 16) & 0xffff,
		 (unsigned int)guid & 0xffff);
}

static void init_port(struct vhca_port *port, uint16_t lid)
{
	memset(port, 0, sizeof(*port));
	port->state = IBV_PORT_ACTIVE;
	port->phys_state = 5;		/* LinkUp */
	port->active_mtu = IBV_MTU_4096;
	port->active_width = 2;		/* 4X */
	port->active_speed = 32;	/* EDR */
	port->lid = lid;
	port->sm_lid = PF_LID;
	/*
	 * CM_SUP: the port answers IB CM MADs on QP1 (gsi.c), as the
	 * kernel's cm.c sets it on every IB port it serves; librdmacm and
	 * ibv_devinfo read it.
	 */
	port->cap_flags = IBV_PORT_SYS_IMAGE_GUID_SUP |
			  IBV_PORT_PKEY_SW_EXT_PORT_TRAP_SUP |
			  IBV_PORT_CM_SUP;
	/* The PF hosts the subnet manager, as on a single-switch fabric. */
	if (lid == PF_LID)
		port->cap_flags |= IBV_PORT_SM;
	port->pkeys[0] = VHCA_DEFAULT_PKEY;
}

static void init_identity(struct vhca_dev *dev, struct vhca_pf *pf,
			  unsigned int function)
{
	dev->pf = pf;
	dev->node_guid = pf->guid_base | function;
	dev->port_guid = pf->guid_base | GUID_PORT_BIT | function;
	dev->sys_image_guid = pf->guid_base;
	atomic_init(&dev->open_files, 0);
	atomic_init(&dev->stats.contexts, 0);
	atomic_init(&dev->stats.pds, 0);
	atomic_init(&dev->stats.mrs, 0);
	atomic_init(&dev->stats.comp_channels, 0);
	vhca_gsi_init(&dev->gsi);
}

static char *host_name(char *buf, size_t len)
{
	if (gethostname(buf, len - 1))
		snprintf(buf, len, "localhost");
	buf[len - 1] = 0;
	return buf;
}

int vhca_dev_open_port(struct vhca_dev *dev,
		       const struct vhca_event_sink *sink)
{
	dev->devcmd = malloc(sizeof(*dev->devcmd));
	if (!dev->devcmd)
		return -ENOMEM;
	vhca_devcmd_port_init(dev->devcmd, dev, true, NULL, sink, NULL);
	return 0;
}

/* The function's in-process command port, for vhcad's own driver. */
static int open_port(struct vhca_pf *pf, struct vhca_dev *dev)
{
	return pf->hooks.sink ? vhca_dev_open_port(dev, pf->hooks.sink) : 0;
}

void vhca_dev_close_port(struct vhca_dev *dev)
{
	if (!dev->devcmd)
		return;
	vhca_devcmd_port_fini(dev->devcmd);
	free(dev->devcmd);
	dev->devcmd = NULL;
}

int vhca_pf_init(struct vhca_pf *pf, uint64_t guid_base,
		 const struct vhca_pf_hooks *hooks)
{
	char host[32];
	int index, ret;

	memset(pf, 0, sizeof(*pf));
	ret = pthread_rwlock_init(&pf->lock, NULL);
	if (ret)
		return -ret;
	ret = vhca_mcast_init(pf);
	if (ret) {
		pthread_rwlock_destroy(&pf->lock);
		return ret;
	}
	pf->guid_base = guid_base & ~GUID_FUNCTION_MASK;
	pf->total_vfs = VHCA_MAX_VFS;
	pf->hooks = *hooks;

	init_identity(&pf->dev, pf, 0);
	snprintf(pf->dev.name, sizeof(pf->dev.name), VHCA_PF_NAME);
	snprintf(pf->dev.node_desc, sizeof(pf->dev.node_desc), "%s vhca0",
		 host_name(host, sizeof(host)));
	init_port(&pf->dev.port, PF_LID);
	vhca_quota_share(1, &pf->dev.quota);

	ret = open_port(pf, &pf->dev);
	if (ret) {
		pthread_rwlock_destroy(&pf->lock);
		return ret;
	}
	index = pf->hooks.claim_uverbs(pf->hooks.arg);
	if (index < 0) {
		vhca_dev_close_port(&pf->dev);
		pthread_rwlock_destroy(&pf->lock);
		return index;
	}
	pf->dev.uverbs_index = index;
	return 0;
}

static struct vhca_dev *create_vf(struct vhca_pf *pf, unsigned int vf_index)
{
	struct vhca_dev *vf;
	char host[32];
	int index;

	vf = calloc(1, sizeof(*vf));
	if (!vf)
		return NULL;

	init_identity(vf, pf, 1 + vf_index);
	vf->is_vf = true;
	vf->vf_index = vf_index;
	vf->policy = VHCA_POLICY_FOLLOW;
	snprintf(vf->name, sizeof(vf->name), VHCA_PF_NAME "_vf%u", vf_index);
	snprintf(vf->node_desc, sizeof(vf->node_desc), "%s %s",
		 host_name(host, sizeof(host)), vf->name);
	init_port(&vf->port, PF_LID + 1 + vf_index);

	index = open_port(pf, vf);
	if (!index)
		index = pf->hooks.claim_uverbs(pf->hooks.arg);
	if (index < 0) {
		vhca_dev_close_port(vf);
		vhca_gsi_fini(&vf->gsi);
		free(vf);
		errno = -index;
		return NULL;
	}
	vf->uverbs_index = index;
	return vf;
}

static void destroy_vf(struct vhca_pf *pf, struct vhca_dev *vf)
{
	/* Only VFs without open files go: their contexts are gone too. */
	assert(!vf->listeners);
	if (pf->hooks.dev_removed)
		pf->hooks.dev_removed(pf->hooks.arg, vf);
	pf->hooks.release_uverbs(pf->hooks.arg, vf->uverbs_index);
	vhca_dev_close_port(vf);
	vhca_gsi_fini(&vf->gsi);
	free(vf);
}

/* Caller holds pf->lock exclusive. */
static void destroy_vfs(struct vhca_pf *pf)
{
	while (pf->num_vfs) {
		struct vhca_dev *vf = pf->vfs[pf->num_vfs - 1];

		__atomic_store_n(&pf->num_vfs, pf->num_vfs - 1,
				 __ATOMIC_RELEASE);
		__atomic_store_n(&pf->vfs[pf->num_vfs], NULL, __ATOMIC_RELEASE);
		destroy_vf(pf, vf);
	}
	vhca_quota_share(1, &pf->dev.quota);
}

static bool vfs_in_use(struct vhca_pf *pf)
{
	for (unsigned int i = 0; i < pf->num_vfs; i++)
		if (atomic_load(&pf->vfs[i]->open_files))
			return true;
	return false;
}

static int create_vfs(struct vhca_pf *pf, unsigned int num_vfs)
{
	struct vhca_quota share;

	/* Every function gets an equal share of the daemon (limits.h). */
	vhca_quota_share(num_vfs + 1, &share);
	pf->dev.quota = share;
	for (unsigned int i = 0; i < num_vfs; i++) {
		struct vhca_dev *vf = create_vf(pf, i);

		if (!vf) {
			int err = errno;

			destroy_vfs(pf);
			return -err;
		}
		vf->quota = share;
		__atomic_store_n(&pf->vfs[i], vf, __ATOMIC_RELEASE);
		__atomic_store_n(&pf->num_vfs, i + 1, __ATOMIC_RELEASE);
	}
	return 0;
}

int vhca_pf_set_num_vfs(struct vhca_pf *pf, unsigned int num_vfs)
{
	int ret = 0;

	if (num_vfs > pf->total_vfs)
		return -EINVAL;

	pthread_rwlock_wrlock(&pf->lock);
	if (num_vfs == pf->num_vfs)
		goto out;
	/* The kernel only goes 0 -> N or N -> 0 (sriov_numvfs_store). */
	if (num_vfs && pf->num_vfs) {
		ret = -EBUSY;
		goto out;
	}
	if (!num_vfs) {
		/*
		 * A VF with open contexts is "assigned to a guest"; tearing
		 * it out from under the guest is refused rather than
		 * disassociated (docs/decisions.md).
		 */
		if (vfs_in_use(pf)) {
			ret = -EBUSY;
			goto out;
		}
		destroy_vfs(pf);
		goto out;
	}
	ret = create_vfs(pf, num_vfs);
out:
	pthread_rwlock_unlock(&pf->lock);
	return ret;
}

void vhca_pf_fini(struct vhca_pf *pf)
{
	pthread_rwlock_wrlock(&pf->lock);
	destroy_vfs(pf);
	if (pf->hooks.dev_removed)
		pf->hooks.dev_removed(pf->hooks.arg, &pf->dev);
	pf->hooks.release_uverbs(pf->hooks.arg, pf->dev.uverbs_index);
	vhca_dev_close_port(&pf->dev);
	vhca_gsi_fini(&pf->dev.gsi);
	pthread_rwlock_unlock(&pf->lock);
	pthread_rwlock_destroy(&pf->lock);
	vhca_mcast_fini(pf);
}

struct vhca_dev *vhca_pf_dev_by_lid(struct vhca_pf *pf, uint16_t lid)
{
	unsigned int vf;

	if (!lid || lid >= 0xc000)
		return NULL;	/* reserved, permissive or multicast */
	if (__atomic_load_n(&pf->dev.port.lid, __ATOMIC_RELAXED) == lid)
		return &pf->dev;
	if (lid <= PF_LID)
		return NULL;
	vf = lid - PF_LID - 1u;
	if (vf >= __atomic_load_n(&pf->num_vfs, __ATOMIC_ACQUIRE))
		return NULL;
	/* Not dereferenced: it may be going away (see pf.h). */
	return __atomic_load_n(&pf->vfs[vf], __ATOMIC_ACQUIRE);
}

struct vhca_dev *vhca_pf_find_by_name(struct vhca_pf *pf, const char *name)
{
	if (!strcmp(pf->dev.name, name))
		return &pf->dev;
	for (unsigned int i = 0; i < pf->num_vfs; i++)
		if (!strcmp(pf->vfs[i]->name, name))
			return pf->vfs[i];
	return NULL;
}

struct vhca_dev *vhca_pf_find_by_uverbs(struct vhca_pf *pf, int index)
{
	if (!pf->pf_hidden && pf->dev.uverbs_index == index)
		return &pf->dev;
	for (unsigned int i = 0; i < pf->num_vfs; i++)
		if (pf->vfs[i]->uverbs_index == index)
			return pf->vfs[i];
	return NULL;
}

int vhca_pf_for_each_dev(struct vhca_pf *pf,
			 int (*fn)(struct vhca_dev *dev, void *arg), void *arg)
{
	int ret = pf->pf_hidden ? 0 : fn(&pf->dev, arg);

	for (unsigned int i = 0; !ret && i < pf->num_vfs; i++)
		ret = fn(pf->vfs[i], arg);
	return ret;
}

/* ---- provisioning ---------------------------------------------------------------- */

const char *vhca_policy_name(enum vhca_vf_policy policy)
{
	switch (policy) {
	case VHCA_POLICY_DOWN: return "Down";
	case VHCA_POLICY_UP: return "Up";
	case VHCA_POLICY_FOLLOW: return "Follow";
	}
	return NULL;
}

int vhca_policy_parse(const char *name, size_t len, enum vhca_vf_policy *out)
{
	static const enum vhca_vf_policy all[] = {
		VHCA_POLICY_DOWN, VHCA_POLICY_UP, VHCA_POLICY_FOLLOW,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *text = vhca_policy_name(all[i]);

		if (strlen(text) == len && !memcmp(text, name, len)) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const counter_names[VHCA_CNT_MAX] = {
	[VHCA_CNT_XMIT_DATA] = "port_xmit_data",
	[VHCA_CNT_RCV_DATA] = "port_rcv_data",
	[VHCA_CNT_XMIT_PACKETS] = "port_xmit_packets",
	[VHCA_CNT_RCV_PACKETS] = "port_rcv_packets",
	[VHCA_CNT_RCV_CONSTRAINT_ERRORS] = "port_rcv_constraint_errors",
	[VHCA_CNT_XMIT_CONSTRAINT_ERRORS] = "port_xmit_constraint_errors",
	[VHCA_CNT_QKEY_VIOLATIONS] = "qkey_violations",
	[VHCA_CNT_RCV_SOURCE_ERRORS] = "rcv_source_errors",
	[VHCA_CNT_RCV_DROPPED] = "rcv_dropped",
};

const char *vhca_counter_name(enum vhca_counter counter)
{
	return (unsigned int)counter < VHCA_CNT_MAX ? counter_names[counter] :
						      NULL;
}

int vhca_counter_by_name(const char *name)
{
	for (int i = 0; i < VHCA_CNT_MAX; i++)
		if (!strcmp(counter_names[i], name))
			return i;
	return -1;
}

/* What provisioning may change on a VF. */
struct vf_shadow {
	uint64_t node_guid;
	uint64_t port_guid;
	enum vhca_vf_policy policy;
	uint16_t pkeys[VHCA_PKEY_TABLE_LEN];
	unsigned int num_addrs;
	struct vhca_ip_addr addrs[VHCA_ADDRS_MAX];
};

static bool guid_valid(uint64_t guid)
{
	return guid != 0 && guid != UINT64_MAX;
}

/* 0 = empty; otherwise a partition number (low 15 bits) is needed. */
static bool pkey_valid(uint16_t pkey)
{
	return pkey == 0 || (pkey & 0x7fff) != 0;
}

static bool pkey_table_valid(const uint16_t *pkeys)
{
	for (unsigned int i = 0; i < VHCA_PKEY_TABLE_LEN; i++) {
		if (!pkey_valid(pkeys[i]))
			return false;
		if (!pkeys[i])
			continue;
		for (unsigned int j = 0; j < i; j++)
			if (pkeys[j] && (pkeys[j] & 0x7fff) ==
					(pkeys[i] & 0x7fff))
				return false;
	}
	return true;
}

/* Is guid the node or port GUID of the PF or of a VF other than self? */
static bool guid_taken(const struct vhca_pf *pf, const struct vf_shadow *vfs,
		       unsigned int self, uint64_t guid)
{
	if (pf->dev.node_guid == guid || pf->dev.port_guid == guid)
		return true;
	for (unsigned int i = 0; i < pf->num_vfs; i++)
		if (i != self && (vfs[i].node_guid == guid ||
				  vfs[i].port_guid == guid))
			return true;
	return false;
}

static int validate_shadow(const struct vhca_pf *pf,
			   const struct vf_shadow *vfs)
{
	for (unsigned int i = 0; i < pf->num_vfs; i++) {
		const struct vf_shadow *s = &vfs[i];

		if (!guid_valid(s->node_guid) || !guid_valid(s->port_guid))
			return -EINVAL;
		if (guid_taken(pf, vfs, i, s->node_guid) ||
		    guid_taken(pf, vfs, i, s->port_guid))
			return -EINVAL;
		if (s->policy != VHCA_POLICY_DOWN &&
		    s->policy != VHCA_POLICY_UP &&
		    s->policy != VHCA_POLICY_FOLLOW)
			return -EINVAL;
		if (!pkey_table_valid(s->pkeys))
			return -EINVAL;
		/* An address belongs to one port of the subnet, like an IP. */
		if (vhca_ip_addrs_check(s->addrs, s->num_addrs))
			return -EINVAL;
		for (unsigned int a = 0; a < s->num_addrs; a++)
			for (unsigned int j = 0; j < i; j++)
				for (unsigned int b = 0; b < vfs[j].num_addrs; b++)
					if (vhca_ip_addr_same(&s->addrs[a],
							      &vfs[j].addrs[b]))
						return -EINVAL;
	}
	return 0;
}

void vhca_dev_listen(struct vhca_dev *dev, struct vhca_dev_listener *l)
{
	pthread_rwlock_wrlock(&dev->pf->lock);
	l->next = dev->listeners;
	if (l->next)
		l->next->pprev = &l->next;
	l->pprev = &dev->listeners;
	dev->listeners = l;
	pthread_rwlock_unlock(&dev->pf->lock);
}

void vhca_dev_unlisten(struct vhca_dev *dev, struct vhca_dev_listener *l)
{
	pthread_rwlock_wrlock(&dev->pf->lock);
	if (l->pprev) {
		*l->pprev = l->next;
		if (l->next)
			l->next->pprev = l->pprev;
		l->next = NULL;
		l->pprev = NULL;
	}
	pthread_rwlock_unlock(&dev->pf->lock);
}

void vhca_dev_notify(struct vhca_dev *dev, enum vhca_change what)
{
	struct vhca_pf *pf = dev->pf;

	if (pf->hooks.dev_changed)
		pf->hooks.dev_changed(pf->hooks.arg, dev, what);
	for (struct vhca_dev_listener *l = dev->listeners; l; l = l->next)
		l->changed(l, dev, what);
}

/* The port state a policy gives a VF: Follow copies the PF's port. */
static void apply_policy(struct vhca_pf *pf, struct vhca_dev *vf)
{
	switch (vf->policy) {
	case VHCA_POLICY_DOWN:
		vf->port.state = IBV_PORT_DOWN;
		vf->port.phys_state = 3;	/* Disabled */
		break;
	case VHCA_POLICY_UP:
		vf->port.state = IBV_PORT_ACTIVE;
		vf->port.phys_state = 5;	/* LinkUp */
		break;
	case VHCA_POLICY_FOLLOW:
		vf->port.state = pf->dev.port.state;
		vf->port.phys_state = pf->dev.port.phys_state;
		break;
	}
}

/* Makes VF i look like its shadow and tells the hook what changed. */
static void commit_vf(struct vhca_pf *pf, struct vhca_dev *vf,
		      const struct vf_shadow *s)
{
	bool was_active = vf->port.state == IBV_PORT_ACTIVE;
	bool gid_changed = vf->port_guid != s->port_guid;
	bool pkeys_changed = memcmp(vf->port.pkeys, s->pkeys,
				    sizeof(s->pkeys)) != 0;
	bool addrs_changed = vf->num_addrs != s->num_addrs ||
			     memcmp(vf->addrs, s->addrs,
				    s->num_addrs * sizeof(s->addrs[0]));
	bool is_active;

	vf->node_guid = s->node_guid;
	vf->port_guid = s->port_guid;
	vf->policy = s->policy;
	memcpy(vf->port.pkeys, s->pkeys, sizeof(s->pkeys));
	memcpy(vf->addrs, s->addrs, sizeof(s->addrs));
	vf->num_addrs = s->num_addrs;
	apply_policy(pf, vf);
	is_active = vf->port.state == IBV_PORT_ACTIVE;

	/* A port going down says so first, one coming up last. */
	if (!is_active && was_active)
		vhca_dev_notify(vf, VHCA_CHANGE_PORT_ERR);
	if (gid_changed)
		vhca_dev_notify(vf, VHCA_CHANGE_GID);
	if (pkeys_changed)
		vhca_dev_notify(vf, VHCA_CHANGE_PKEY);
	if (addrs_changed)
		vhca_dev_notify(vf, VHCA_CHANGE_ADDR);
	if (is_active && !was_active)
		vhca_dev_notify(vf, VHCA_CHANGE_PORT_ACTIVE);
}

/* Caller holds pf->lock exclusive. */
static int apply_plan_locked(struct vhca_pf *pf, const struct vhca_plan *plan)
{
	struct vf_shadow *vfs;
	int ret;

	for (unsigned int i = 0; i < plan->count; i++)
		if (plan->vfs[i].vf >= pf->num_vfs)
			return -ENODEV;

	vfs = calloc(pf->num_vfs ? pf->num_vfs : 1, sizeof(*vfs));
	if (!vfs)
		return -ENOMEM;
	for (unsigned int i = 0; i < pf->num_vfs; i++) {
		const struct vhca_dev *vf = pf->vfs[i];

		vfs[i].node_guid = vf->node_guid;
		vfs[i].port_guid = vf->port_guid;
		vfs[i].policy = vf->policy;
		memcpy(vfs[i].pkeys, vf->port.pkeys, sizeof(vfs[i].pkeys));
		memcpy(vfs[i].addrs, vf->addrs, sizeof(vfs[i].addrs));
		vfs[i].num_addrs = vf->num_addrs;
	}
	for (unsigned int i = 0; i < plan->count; i++) {
		const struct vhca_vf_plan *p = &plan->vfs[i];
		struct vf_shadow *s = &vfs[p->vf];

		if (p->set & VHCA_PLAN_NODE_GUID)
			s->node_guid = p->node_guid;
		if (p->set & VHCA_PLAN_PORT_GUID)
			s->port_guid = p->port_guid;
		if (p->set & VHCA_PLAN_POLICY)
			s->policy = p->policy;
		if (p->set & VHCA_PLAN_PKEYS)
			memcpy(s->pkeys, p->pkeys, sizeof(s->pkeys));
		if (p->set & VHCA_PLAN_ADDRS) {
			if (p->num_addrs > VHCA_ADDRS_MAX) {
				free(vfs);
				return -EINVAL;
			}
			memset(s->addrs, 0, sizeof(s->addrs));
			memcpy(s->addrs, p->addrs,
			       p->num_addrs * sizeof(p->addrs[0]));
			s->num_addrs = p->num_addrs;
		}
	}
	ret = validate_shadow(pf, vfs);
	if (!ret)
		for (unsigned int i = 0; i < pf->num_vfs; i++)
			commit_vf(pf, pf->vfs[i], &vfs[i]);
	free(vfs);
	return ret;
}

int vhca_pf_apply_plan(struct vhca_pf *pf, const struct vhca_plan *plan)
{
	int ret;

	pthread_rwlock_wrlock(&pf->lock);
	ret = apply_plan_locked(pf, plan);
	pthread_rwlock_unlock(&pf->lock);
	return ret;
}

/*
 * A one-field plan; the P_Key table is filled from the VF's current one
 * under the lock, so a single entry changes and the rest stays.
 */
static int set_one(struct vhca_pf *pf, struct vhca_vf_plan *p,
		   int pkey_index, uint16_t pkey)
{
	struct vhca_plan plan = { .count = 1, .vfs = p };
	int ret;

	pthread_rwlock_wrlock(&pf->lock);
	if (p->vf >= pf->num_vfs) {
		ret = -ENODEV;
	} else {
		if (pkey_index >= 0) {
			memcpy(p->pkeys, pf->vfs[p->vf]->port.pkeys,
			       sizeof(p->pkeys));
			p->pkeys[pkey_index] = pkey;
			p->set = VHCA_PLAN_PKEYS;
		}
		ret = apply_plan_locked(pf, &plan);
	}
	pthread_rwlock_unlock(&pf->lock);
	return ret;
}

int vhca_pf_set_vf_node_guid(struct vhca_pf *pf, unsigned int vf,
			     uint64_t guid)
{
	struct vhca_vf_plan p = { .vf = vf, .set = VHCA_PLAN_NODE_GUID,
				  .node_guid = guid };

	return set_one(pf, &p, -1, 0);
}

int vhca_pf_set_vf_port_guid(struct vhca_pf *pf, unsigned int vf,
			     uint64_t guid)
{
	struct vhca_vf_plan p = { .vf = vf, .set = VHCA_PLAN_PORT_GUID,
				  .port_guid = guid };

	return set_one(pf, &p, -1, 0);
}

int vhca_pf_set_vf_policy(struct vhca_pf *pf, unsigned int vf,
			  enum vhca_vf_policy policy)
{
	struct vhca_vf_plan p = { .vf = vf, .set = VHCA_PLAN_POLICY,
				  .policy = policy };

	return set_one(pf, &p, -1, 0);
}

int vhca_pf_set_vf_pkey(struct vhca_pf *pf, unsigned int vf,
			unsigned int index, uint16_t pkey)
{
	struct vhca_vf_plan p = { .vf = vf };

	if (index >= VHCA_PKEY_TABLE_LEN)
		return -EINVAL;
	return set_one(pf, &p, (int)index, pkey);
}

int vhca_pf_set_vf_addrs(struct vhca_pf *pf, unsigned int vf,
			 const struct vhca_ip_addr *addrs, unsigned int n)
{
	struct vhca_vf_plan p = { .vf = vf, .set = VHCA_PLAN_ADDRS,
				  .num_addrs = n };

	if (n > VHCA_ADDRS_MAX)
		return -EINVAL;
	memcpy(p.addrs, addrs, n * sizeof(addrs[0]));
	return set_one(pf, &p, -1, 0);
}
