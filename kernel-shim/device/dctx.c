// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Device contexts: lifetime, the handle table, PDs, quotas (dctx.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cq.h"
#include "dctx.h"
#include "engine.h"
#include "mr.h"
#include "qp.h"
#include "srq.h"
#include "switch.h"
#include "transport.h"

/* PD numbers are unique across devices and never reused. */
static _Atomic uint64_t next_pdn = 1;

int vhca_dctx_create(struct vhca_dev *dev, struct vhca_dma_space *space,
		     const struct vhca_event_sink *sink, void *sink_arg,
		     struct vhca_qmem *ctx_qmem, int wake_fd,
		     struct vhca_dctx **out)
{
	struct vhca_dctx *dctx;

	/*
	 * The driver limits live contexts to the quota; a destroyed one may
	 * linger a moment (a packet in flight to it holds it), so the device
	 * allows twice as many before it refuses.
	 */
	if (!vhca_stats_reserve(&dev->stats.dctxs,
				2 * dev->quota.max_contexts)) {
		vhca_qmem_unmap(ctx_qmem);
		if (wake_fd >= 0)
			close(wake_fd);
		return -EUSERS;
	}
	dctx = calloc(1, sizeof(*dctx));
	if (!dctx || pthread_mutex_init(&dctx->lock, NULL)) {
		free(dctx);
		vhca_stats_release(&dev->stats.dctxs);
		vhca_qmem_unmap(ctx_qmem);
		if (wake_fd >= 0)
			close(wake_fd);
		return -ENOMEM;
	}
	pthread_mutex_init(&dctx->inbox_lock, NULL);
	dctx->dev = dev;
	atomic_init(&dctx->refcount, 1);
	dctx->space = space;
	if (space)
		vhca_dma_space_get(space);
	dctx->sink = sink;
	dctx->sink_arg = sink_arg;
	dctx->objs.free_head = VHCA_NO_HANDLE;
	dctx->ctx_qmem = *ctx_qmem;
	memset(ctx_qmem, 0, sizeof(*ctx_qmem));
	dctx->ctx_page = dctx->ctx_qmem.base ?
				 (struct vhca_ctx_page *)dctx->ctx_qmem.base :
				 NULL;
	dctx->wake_fd = wake_fd;
	/* The FIFO starts wherever the provider has it. */
	if (dctx->ctx_page)
		dctx->fifo_tail = atomic_load(
			(_Atomic uint32_t *)&dctx->ctx_page->fifo_tail);
	atomic_init(&dctx->sched, VHCA_SCHED_IDLE);
	dctx->heap_index = -1;
	dctx->owner_pidfd = -1;
	/* Pins the function: a VF with contexts is not destroyed. */
	atomic_fetch_add(&dev->open_files, 1);
	*out = dctx;
	return 0;
}

static void destroy_objects_of(struct vhca_dctx *dctx,
			       enum vhca_obj_type type)
{
	struct vhca_obj_table *t = &dctx->objs;

	for (uint32_t h = 0; h < t->used; h++) {
		void *obj = t->slots[h].obj;

		if (t->slots[h].type != type)
			continue;
		switch (type) {
		case VHCA_OBJ_QP:
			vhca_qp_free(obj);
			break;
		case VHCA_OBJ_CQ:
			vhca_cq_free(obj);
			break;
		case VHCA_OBJ_SRQ:
			vhca_srq_free(obj);
			break;
		case VHCA_OBJ_MR:
			vhca_mr_destroy(dctx, obj);
			break;
		case VHCA_OBJ_PD:
			vhca_obj_erase(dctx, h);
			vhca_stats_release(&dctx->dev->stats.pds);
			free(obj);
			break;
		default:
			break;
		}
	}
}

void vhca_dctx_destroy(struct vhca_dctx *dctx)
{
	vhca_dctx_lock(dctx);
	vhca_engine_detach(dctx);
	dctx->dead = true;
	/*
	 * No more turns: what it holds is freed here, and the senders
	 * waiting for its room go on (each holds a reference to it).
	 */
	vhca_inbox_purge(dctx);
	/* QPs hold CQs, SRQs and PDs busy, MRs hold PDs: users first. */
	destroy_objects_of(dctx, VHCA_OBJ_QP);
	destroy_objects_of(dctx, VHCA_OBJ_SRQ);
	destroy_objects_of(dctx, VHCA_OBJ_CQ);
	destroy_objects_of(dctx, VHCA_OBJ_MR);
	destroy_objects_of(dctx, VHCA_OBJ_PD);
	vhca_mr_map_free(dctx);
	free(dctx->timers.qps);
	dctx->timers = (struct vhca_qp_heap){ 0 };
	vhca_qmem_unmap(&dctx->ctx_qmem);
	dctx->ctx_page = NULL;
	if (dctx->wake_fd >= 0)
		close(dctx->wake_fd);
	dctx->wake_fd = -1;
	vhca_dctx_unlock(dctx);
	vhca_dctx_put(dctx);
}

void vhca_dctx_get(struct vhca_dctx *dctx)
{
	atomic_fetch_add_explicit(&dctx->refcount, 1, memory_order_relaxed);
}

void vhca_dctx_put(struct vhca_dctx *dctx)
{
	struct vhca_dev *dev;

	if (atomic_fetch_sub_explicit(&dctx->refcount, 1,
				      memory_order_acq_rel) != 1)
		return;
	dev = dctx->dev;
	vhca_inbox_purge(dctx);
	vhca_dma_space_put(dctx->space);
	free(dctx->objs.slots);
	pthread_mutex_destroy(&dctx->inbox_lock);
	pthread_mutex_destroy(&dctx->lock);
	free(dctx);
	vhca_stats_release(&dev->stats.dctxs);
	atomic_fetch_sub(&dev->open_files, 1);
}

void vhca_dctx_owner_gone(struct vhca_dctx *dctx)
{
	struct vhca_obj_table *t = &dctx->objs;

	if (dctx->dead)
		return;
	dctx->dead = true;
	for (uint32_t h = 0; h < t->used; h++) {
		struct vhca_qp *qp = vhca_obj_lookup(dctx, VHCA_OBJ_QP, h);

		if (qp) {
			vhca_qp_unschedule(qp);
			vhca_qp_timer_cancel(qp);
			vhca_flow_release(qp);
		}
	}
	vhca_inbox_purge(dctx);
}

static int grow_table(struct vhca_obj_table *t)
{
	struct vhca_obj_slot *slots;
	uint32_t cap;

	if (t->capacity >= vhca_limits.max_objects)
		return -ENOMEM;
	cap = t->capacity ? 2 * t->capacity : 64;
	if (cap > vhca_limits.max_objects)
		cap = vhca_limits.max_objects;
	slots = realloc(t->slots, (size_t)cap * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	memset(&slots[t->capacity], 0,
	       (size_t)(cap - t->capacity) * sizeof(*slots));
	t->slots = slots;
	t->capacity = cap;
	return 0;
}

int vhca_obj_insert(struct vhca_dctx *dctx, enum vhca_obj_type type,
		    void *obj, uint32_t *handle)
{
	struct vhca_obj_table *t = &dctx->objs;
	uint32_t h;

	if (t->free_head != VHCA_NO_HANDLE) {
		h = t->free_head;
		t->free_head = t->slots[h].next_free;
	} else {
		if (t->used == t->capacity && grow_table(t))
			return -ENOMEM;
		h = t->used++;
	}
	t->slots[h] = (struct vhca_obj_slot){
		.type = type,
		.next_free = VHCA_NO_HANDLE,
		.obj = obj,
	};
	*handle = h;
	return 0;
}

void *vhca_obj_lookup(struct vhca_dctx *dctx, enum vhca_obj_type type,
		      uint32_t handle)
{
	struct vhca_obj_table *t = &dctx->objs;

	if (handle >= t->used || t->slots[handle].type != type)
		return NULL;
	return t->slots[handle].obj;
}

void vhca_obj_erase(struct vhca_dctx *dctx, uint32_t handle)
{
	struct vhca_obj_table *t = &dctx->objs;

	if (handle >= t->used || t->slots[handle].type == VHCA_OBJ_FREE)
		return;
	t->slots[handle] = (struct vhca_obj_slot){
		.type = VHCA_OBJ_FREE,
		.next_free = t->free_head,
	};
	t->free_head = handle;
}

int vhca_pd_alloc(struct vhca_dctx *dctx, uint32_t *handle)
{
	struct vhca_dev *dev = dctx->dev;
	struct vhca_pd *pd;
	int ret;

	if (!vhca_stats_reserve(&dev->stats.pds, dev->quota.max_pd))
		return -ENOMEM;	/* what a HCA out of PDs answers */
	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		vhca_stats_release(&dev->stats.pds);
		return -ENOMEM;
	}
	pd->pdn = atomic_fetch_add(&next_pdn, 1);
	vhca_dctx_lock(dctx);
	ret = vhca_obj_insert(dctx, VHCA_OBJ_PD, pd, &pd->handle);
	vhca_dctx_unlock(dctx);
	if (ret) {
		free(pd);
		vhca_stats_release(&dev->stats.pds);
		return ret;
	}
	*handle = pd->handle;
	return 0;
}

int vhca_pd_dealloc(struct vhca_dctx *dctx, uint32_t handle)
{
	struct vhca_pd *pd;
	int ret = 0;

	vhca_dctx_lock(dctx);
	pd = vhca_obj_lookup(dctx, VHCA_OBJ_PD, handle);
	if (!pd) {
		ret = -EINVAL;
	} else if (pd->num_mrs || pd->num_qps) {
		ret = -EBUSY;	/* uverbs_free_pd(): pd->usecnt */
	} else {
		vhca_obj_erase(dctx, handle);
		vhca_stats_release(&dctx->dev->stats.pds);
		free(pd);
	}
	vhca_dctx_unlock(dctx);
	return ret;
}

int vhca_pd_check(struct vhca_dctx *dctx, uint32_t handle)
{
	bool ok;

	vhca_dctx_lock(dctx);
	ok = vhca_obj_lookup(dctx, VHCA_OBJ_PD, handle);
	vhca_dctx_unlock(dctx);
	return ok ? 0 : -EINVAL;
}

int vhca_dctx_charge_queue(struct vhca_dctx *dctx, uint64_t bytes)
{
	struct vhca_dev *dev = dctx->dev;

	return vhca_bytes_reserve(&dev->stats.queue_bytes, bytes,
				  dev->quota.max_queue_bytes) ?
		       0 :
		       -ENOMEM;
}

void vhca_dctx_uncharge_queue(struct vhca_dctx *dctx, uint64_t bytes)
{
	vhca_bytes_release(&dctx->dev->stats.queue_bytes, bytes);
}
