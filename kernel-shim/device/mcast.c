// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* UD multicast groups of the PF's switch (mcast.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dctx.h"
#include "limits.h"
#include "mcast.h"
#include "packet.h"
#include "pf.h"
#include "qp.h"

struct mcast_member {
	struct vhca_dev *dev;
	uint32_t qpn;
};

struct mcast_group {
	struct mcast_group *next;
	uint8_t mgid[16];
	uint16_t mlid;
	uint32_t count, cap;
	/*
	 * Every function's members: each function may attach
	 * max_mcast_qp_attach QPs, whatever the others attached (a limit
	 * shared by the PF's functions would let one VF fill a group and
	 * keep every other VF out of it).
	 */
	struct mcast_member *members;
};

struct vhca_mcast_table {
	pthread_rwlock_t lock;
	struct mcast_group *groups;
};

int vhca_mcast_init(struct vhca_pf *pf)
{
	pf->mcast = calloc(1, sizeof(*pf->mcast));
	if (!pf->mcast)
		return -ENOMEM;
	pthread_rwlock_init(&pf->mcast->lock, NULL);
	return 0;
}

void vhca_mcast_fini(struct vhca_pf *pf)
{
	struct mcast_group *g, *next;

	if (!pf->mcast)
		return;
	for (g = pf->mcast->groups; g; g = next) {
		next = g->next;
		free(g->members);
		free(g);
	}
	pthread_rwlock_destroy(&pf->mcast->lock);
	free(pf->mcast);
	pf->mcast = NULL;
}

static struct mcast_group *find(struct vhca_mcast_table *t,
				const uint8_t mgid[16])
{
	for (struct mcast_group *g = t->groups; g; g = g->next)
		if (!memcmp(g->mgid, mgid, 16))
			return g;
	return NULL;
}

/* The members of @g that are QPs of @dev. */
static uint32_t members_of(const struct mcast_group *g,
			   const struct vhca_dev *dev)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < g->count; i++)
		n += g->members[i].dev == dev;
	return n;
}

/* Room in @g for one more member (write lock held). */
static bool make_room(struct mcast_group *g)
{
	struct mcast_member *m;
	uint32_t cap;

	if (g->count < g->cap)
		return true;
	cap = g->cap ? 2 * g->cap : 4;
	m = realloc(g->members, cap * sizeof(*m));
	if (!m)
		return false;
	g->members = m;
	g->cap = cap;
	return true;
}

static int member_index(const struct mcast_group *g, const struct vhca_qp *qp)
{
	for (uint32_t i = 0; i < g->count; i++)
		if (g->members[i].dev == qp->dctx->dev &&
		    g->members[i].qpn == qp->qpn)
			return (int)i;
	return -1;
}

/* Unlinks and frees @g (write lock held). */
static void remove_group(struct vhca_mcast_table *t, struct mcast_group *g)
{
	struct mcast_group **link;

	for (link = &t->groups; *link != g; link = &(*link)->next)
		;
	*link = g->next;
	free(g->members);
	free(g);
}

/* Drops member @i of @g, and @g once it is empty (write lock held). */
static void remove_member(struct vhca_mcast_table *t, struct mcast_group *g,
			  uint32_t i, struct vhca_qp *qp)
{
	g->members[i] = g->members[--g->count];
	qp->mcast_count--;
	atomic_fetch_sub(&qp->dctx->dev->stats.mcast_attached, 1);
	if (!g->count)
		remove_group(t, g);
}

/* The checks of the kernel's ib_attach_mcast(), in its order. */
static struct vhca_qp *check(struct vhca_dctx *dctx, uint32_t handle,
			     const uint8_t gid[16], uint16_t mlid, int *ret)
{
	struct vhca_qp *qp = vhca_obj_lookup(dctx, VHCA_OBJ_QP, handle);

	*ret = -EINVAL;
	if (!qp || qp->type != IBV_QPT_UD || gid[0] != 0xff ||
	    !vhca_lid_is_mcast(mlid))
		return NULL;
	*ret = 0;
	return qp;
}

int vhca_mcast_attach(struct vhca_dctx *dctx, uint32_t handle,
		      const uint8_t gid[16], uint16_t mlid)
{
	struct vhca_mcast_table *t = dctx->dev->pf->mcast;
	struct mcast_group *g;
	struct vhca_qp *qp;
	int ret;

	vhca_dctx_lock(dctx);
	qp = check(dctx, handle, gid, mlid, &ret);
	if (!qp)
		goto out;
	pthread_rwlock_wrlock(&t->lock);
	g = find(t, gid);
	if (g && member_index(g, qp) >= 0)
		goto unlock;	/* attached already: 0, as uverbs answers */
	ret = -ENOMEM;
	if ((g && members_of(g, dctx->dev) ==
			  vhca_limits.max_mcast_qp_attach) ||
	    !vhca_stats_reserve(&dctx->dev->stats.mcast_attached,
				vhca_limits.max_total_mcast_qp_attach))
		goto unlock;
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g) {
			vhca_stats_release(&dctx->dev->stats.mcast_attached);
			goto unlock;
		}
		memcpy(g->mgid, gid, 16);
		g->mlid = mlid;
		g->next = t->groups;
		t->groups = g;
	}
	if (!make_room(g)) {
		vhca_stats_release(&dctx->dev->stats.mcast_attached);
		if (!g->count)
			remove_group(t, g);
		goto unlock;
	}
	g->members[g->count++] = (struct mcast_member){ dctx->dev, qp->qpn };
	qp->mcast_count++;
	ret = 0;
unlock:
	pthread_rwlock_unlock(&t->lock);
out:
	vhca_dctx_unlock(dctx);
	return ret;
}

int vhca_mcast_detach(struct vhca_dctx *dctx, uint32_t handle,
		      const uint8_t gid[16], uint16_t mlid)
{
	struct vhca_mcast_table *t = dctx->dev->pf->mcast;
	struct mcast_group *g;
	struct vhca_qp *qp;
	int ret, i = -1;

	vhca_dctx_lock(dctx);
	qp = check(dctx, handle, gid, mlid, &ret);
	if (qp) {
		pthread_rwlock_wrlock(&t->lock);
		g = find(t, gid);
		if (g)
			i = member_index(g, qp);
		if (i >= 0)
			remove_member(t, g, (uint32_t)i, qp);
		else
			ret = -EINVAL;	/* not attached */
		pthread_rwlock_unlock(&t->lock);
	}
	vhca_dctx_unlock(dctx);
	return ret;
}

void vhca_mcast_detach_all(struct vhca_qp *qp)
{
	struct vhca_mcast_table *t = qp->dctx->dev->pf->mcast;
	struct mcast_group *g, *next;

	if (!qp->mcast_count || !t)
		return;
	pthread_rwlock_wrlock(&t->lock);
	for (g = t->groups; g && qp->mcast_count; g = next) {
		int i = member_index(g, qp);

		next = g->next;
		if (i >= 0)
			remove_member(t, g, (uint32_t)i, qp);
	}
	pthread_rwlock_unlock(&t->lock);
}

void vhca_mcast_for_each(struct vhca_pf *pf, const struct vhca_pkt *pkt,
			 void (*fn)(struct vhca_dev *dev, uint32_t qpn,
				    void *arg),
			 void *arg)
{
	struct vhca_mcast_table *t = pf->mcast;

	if (!t)
		return;
	pthread_rwlock_rdlock(&t->lock);
	for (struct mcast_group *g = t->groups; g; g = g->next) {
		if (pkt->has_grh ? memcmp(g->mgid, pkt->grh.dgid, 16) :
				   g->mlid != pkt->dlid)
			continue;
		for (uint32_t i = 0; i < g->count; i++)
			fn(g->members[i].dev, g->members[i].qpn, arg);
		if (pkt->has_grh)
			break;	/* one group per MGID */
	}
	pthread_rwlock_unlock(&t->lock);
}
