// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * User contexts: ownership, the handle table, PDs, teardown (context.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "context.h"
#include "cq.h"
#include "engine.h"
#include "mr.h"
#include "qp.h"
#include "srq.h"

const struct vhca_limits vhca_limits = {
	.max_mr_size = 1ULL << 40,
	.page_size_cap = 0xfffff000,	/* 4 KiB .. 2 GiB pages */
	.device_cap_flags = IBV_DEVICE_BAD_PKEY_CNTR |
			    IBV_DEVICE_BAD_QKEY_CNTR |
			    IBV_DEVICE_UD_AV_PORT_ENFORCE |
			    IBV_DEVICE_PORT_ACTIVE_EVENT |
			    IBV_DEVICE_SYS_IMAGE_GUID |
			    IBV_DEVICE_RC_RNR_NAK_GEN,
	.max_qp = 16384,
	.max_qp_wr = 16384,
	.max_sge = 16,
	.max_sge_rd = 16,
	.max_cq = 65536,
	.max_cqe = 65536,
	.max_mr = 1u << 20,
	.max_pd = 1u << 16,
	.max_qp_rd_atom = 16,
	.max_qp_init_rd_atom = 16,
	.max_res_rd_atom = 16384 * 16,
	.atomic_cap = IBV_ATOMIC_HCA,
	.max_mw = 0,			/* no memory windows (yet) */
	.max_ah = 65536,
	.max_srq = 16384,
	.max_srq_wr = 16384,
	.max_srq_sge = 16,
	.max_mcast_grp = 0,		/* no multicast (yet) */
	.max_mcast_qp_attach = 0,
	.max_total_mcast_qp_attach = 0,
	.max_pkeys = VHCA_PKEY_TABLE_LEN,
	.local_ca_ack_delay = 15,
	.phys_port_cnt = 1,
	.max_msg_sz = 1u << 31,
	.gid_tbl_len = VHCA_GID_TABLE_LEN,
	.pkey_tbl_len = VHCA_PKEY_TABLE_LEN,
	.max_mtu = IBV_MTU_4096,
	.max_vl_num = 1,		/* VL0 only */
	.num_comp_vectors = 1,
	.max_inline_data = 256,
	.max_comp_channels = 1024,
	.max_objects = 1u << 21,
};

/* PD numbers are unique across devices and never reused. */
static _Atomic uint64_t next_pdn = 1;

bool vhca_stats_reserve(atomic_uint *counter, unsigned int max)
{
	unsigned int cur = atomic_load(counter);

	/* CAS, not add-then-undo: readers never see more than max. */
	do {
		if (cur >= max)
			return false;
	} while (!atomic_compare_exchange_weak(counter, &cur, cur + 1));
	return true;
}

void vhca_stats_release(atomic_uint *counter)
{
	atomic_fetch_sub(counter, 1);
}

struct vhca_ucontext *vhca_ucontext_alloc(struct vhca_dev *dev)
{
	struct vhca_ucontext *uctx;
	int ret;

	uctx = calloc(1, sizeof(*uctx));
	if (!uctx)
		return NULL;
	uctx->dev = dev;
	uctx->objs.free_head = VHCA_NO_HANDLE;
	uctx->wake_fd = -1;
	ret = pthread_mutex_init(&uctx->lock, NULL);
	if (ret)
		goto err_free;
	ret = -vhca_channels_init(&uctx->channels, &dev->stats.comp_channels,
				  vhca_limits.max_comp_channels);
	if (ret)
		goto err_mutex;
	return uctx;

err_mutex:
	pthread_mutex_destroy(&uctx->lock);
err_free:
	free(uctx);
	errno = ret;
	return NULL;
}

static void pd_destroy(struct vhca_ucontext *uctx, struct vhca_pd *pd)
{
	vhca_obj_erase(uctx, pd->handle);
	vhca_stats_release(&uctx->dev->stats.pds);
	free(pd);
}

static void destroy_objects_of(struct vhca_ucontext *uctx,
			       enum vhca_obj_type type)
{
	struct vhca_obj_table *t = &uctx->objs;

	for (uint32_t h = 0; h < t->used; h++) {
		if (t->slots[h].type != type)
			continue;
		switch (type) {
		case VHCA_OBJ_QP:
			vhca_qp_free(t->slots[h].obj);
			break;
		case VHCA_OBJ_CQ:
			vhca_cq_free(t->slots[h].obj);
			break;
		case VHCA_OBJ_SRQ:
			vhca_srq_free(t->slots[h].obj);
			break;
		case VHCA_OBJ_MR:
			vhca_mr_destroy(uctx, t->slots[h].obj);
			break;
		default:
			pd_destroy(uctx, t->slots[h].obj);
			break;
		}
	}
}

static void drop_data_path(struct vhca_ucontext *uctx)
{
	vhca_qmem_unmap(&uctx->ctx_qmem);
	uctx->ctx_page = NULL;
	if (uctx->wake_fd >= 0)
		close(uctx->wake_fd);
	uctx->wake_fd = -1;
}

void vhca_ucontext_free(struct vhca_ucontext *uctx)
{
	/* First: once this returns no change event touches our fds. */
	vhca_dev_unlisten(uctx->dev, &uctx->dev_events);
	/*
	 * Under the engine lock: the engine must not be inside one of our
	 * QPs.  QPs hold CQs, SRQs and PDs busy, MRs hold PDs: users first.
	 */
	vhca_engine_lock();
	vhca_engine_remove_context(uctx);
	destroy_objects_of(uctx, VHCA_OBJ_QP);
	destroy_objects_of(uctx, VHCA_OBJ_SRQ);
	destroy_objects_of(uctx, VHCA_OBJ_CQ);
	destroy_objects_of(uctx, VHCA_OBJ_MR);
	destroy_objects_of(uctx, VHCA_OBJ_PD);
	drop_data_path(uctx);
	vhca_engine_unlock();
	vhca_channels_fini(&uctx->channels);
	if (uctx->initialised)
		vhca_stats_release(&uctx->dev->stats.contexts);
	vhca_dma_peer_put(uctx->peer);
	free(uctx->objs.slots);
	pthread_mutex_destroy(&uctx->lock);
	free(uctx);
}

/*
 * The doorbell page and wake eventfd.  Both fds equal (a provider that
 * predates the data path leaves both 0; -1/-1 says "none" explicitly)
 * means a context without a data path: CQ/QP creation is EOPNOTSUPP.
 */
static int take_data_path(struct vhca_ucontext *uctx,
			  const struct vhca_alloc_ucontext_cmd *cmd)
{
	int ret;

	if (cmd->ctx_page_fd == cmd->wake_fd)
		return 0;
	ret = vhca_qmem_map(&uctx->ctx_qmem, uctx->peer, cmd->ctx_page_fd,
			    sizeof(struct vhca_ctx_page));
	if (ret)
		return ret;
	uctx->ctx_page = (struct vhca_ctx_page *)uctx->ctx_qmem.base;
	uctx->wake_fd = vhca_dma_take_eventfd(uctx->peer, cmd->wake_fd);
	if (uctx->wake_fd < 0) {
		ret = uctx->wake_fd;
		uctx->wake_fd = -1;
		drop_data_path(uctx);
		return ret;
	}
	/* The FIFO starts wherever the provider has it. */
	uctx->fifo_tail = atomic_load(
		(_Atomic uint32_t *)&uctx->ctx_page->fifo_tail);
	return 0;
}

int vhca_ucontext_prepare(struct vhca_ucontext *uctx, pid_t caller_tid,
			  const struct vhca_alloc_ucontext_cmd *cmd)
{
	struct vhca_dma_peer *peer;
	int ret;

	ret = vhca_dma_peer_bind(caller_tid, &peer);
	if (ret)
		return ret;
	ret = vhca_channels_setup(&uctx->channels, peer, cmd);
	if (ret) {
		vhca_dma_peer_put(peer);
		return ret;
	}
	uctx->peer = peer;
	ret = take_data_path(uctx, cmd);
	if (ret) {
		vhca_channels_reset(&uctx->channels);
		vhca_dma_peer_put(peer);
		uctx->peer = NULL;
	}
	return ret;
}

/*
 * A provisioning change of our device, as the kernel's
 * ib_uverbs_event_handler() reports port events: element = port number.
 * Runs under pf->lock (exclusive) on the admin's thread, so it must not
 * block: the write is nonblocking and a full pipe loses the event
 * (channel.h) - the guest re-reads the port state anyway.  A dead owner's
 * pipe answers EPIPE, which the channel remembers.
 */
static void on_dev_changed(struct vhca_dev_listener *listener,
			   struct vhca_dev *dev, enum vhca_change what)
{
	static const uint32_t event_of[] = {
		[VHCA_CHANGE_GID] = IBV_EVENT_GID_CHANGE,
		[VHCA_CHANGE_PKEY] = IBV_EVENT_PKEY_CHANGE,
		[VHCA_CHANGE_PORT_ACTIVE] = IBV_EVENT_PORT_ACTIVE,
		[VHCA_CHANGE_PORT_ERR] = IBV_EVENT_PORT_ERR,
	};
	struct vhca_ucontext *uctx = (struct vhca_ucontext *)
		((char *)listener - offsetof(struct vhca_ucontext, dev_events));

	(void)dev;
	if ((unsigned int)what >= sizeof(event_of) / sizeof(event_of[0]))
		return;
	vhca_channels_post_async(&uctx->channels, 1, event_of[what], NULL);
}

int vhca_ucontext_commit(struct vhca_ucontext *uctx)
{
	if (uctx->ctx_page) {
		int ret;

		vhca_engine_lock();
		ret = vhca_engine_add_context(uctx);
		vhca_engine_unlock();
		if (ret)
			return ret;
	}
	uctx->initialised = true;
	atomic_fetch_add(&uctx->dev->stats.contexts, 1);
	/* Live now: changes from here on reach its async fd. */
	uctx->dev_events.changed = on_dev_changed;
	vhca_dev_listen(uctx->dev, &uctx->dev_events);
	/* Only a live context asks the provider for pipes. */
	vhca_channels_check_low(&uctx->channels);
	return 0;
}

void vhca_ucontext_abort(struct vhca_ucontext *uctx)
{
	drop_data_path(uctx);
	vhca_channels_reset(&uctx->channels);
	vhca_dma_peer_put(uctx->peer);
	uctx->peer = NULL;
}

/*
 * The kernel lets any holder of the uverbs fd issue commands, but every
 * memory operation acts on current->mm, so a forked child or a process
 * that received the fd would pin its own pages into the parent's
 * context.  Our DMA is bound to the owner's pidfd: a command from another
 * process would register or write the wrong address space.  So a context
 * belongs to the process that ran GET_CONTEXT (as ib_ucontext->tgid did
 * in older kernels): others get -EACCES, which is what ib_uverbs_write()
 * answers a caller not entitled to the file; a dead owner makes the
 * context disassociated, -EIO for everything, as after hot-unplug.
 */
int vhca_ucontext_check_caller(struct vhca_ucontext *uctx, pid_t caller_tid)
{
	int ret = vhca_dma_peer_check_caller(uctx->peer, caller_tid);

	return ret == -ESRCH ? -EIO : ret;
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

int vhca_obj_insert(struct vhca_ucontext *uctx, enum vhca_obj_type type,
		    void *obj, uint32_t *handle)
{
	struct vhca_obj_table *t = &uctx->objs;
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

void *vhca_obj_lookup(struct vhca_ucontext *uctx, enum vhca_obj_type type,
		      uint32_t handle)
{
	struct vhca_obj_table *t = &uctx->objs;

	if (handle >= t->used || t->slots[handle].type != type)
		return NULL;
	return t->slots[handle].obj;
}

void vhca_obj_erase(struct vhca_ucontext *uctx, uint32_t handle)
{
	struct vhca_obj_table *t = &uctx->objs;

	if (handle >= t->used || t->slots[handle].type == VHCA_OBJ_FREE)
		return;
	t->slots[handle] = (struct vhca_obj_slot){
		.type = VHCA_OBJ_FREE,
		.next_free = t->free_head,
	};
	t->free_head = handle;
}

int vhca_pd_alloc(struct vhca_ucontext *uctx, uint32_t *handle)
{
	struct vhca_pd *pd;
	int ret;

	if (!vhca_stats_reserve(&uctx->dev->stats.pds, vhca_limits.max_pd))
		return -ENOMEM;	/* what a HCA out of PDs answers */
	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		vhca_stats_release(&uctx->dev->stats.pds);
		return -ENOMEM;
	}
	pd->pdn = atomic_fetch_add(&next_pdn, 1);
	ret = vhca_obj_insert(uctx, VHCA_OBJ_PD, pd, &pd->handle);
	if (ret) {
		free(pd);
		vhca_stats_release(&uctx->dev->stats.pds);
		return ret;
	}
	*handle = pd->handle;
	return 0;
}

int vhca_pd_dealloc(struct vhca_ucontext *uctx, uint32_t handle)
{
	struct vhca_pd *pd = vhca_obj_lookup(uctx, VHCA_OBJ_PD, handle);

	if (!pd)
		return -EINVAL;
	if (pd->num_mrs || pd->num_qps)
		return -EBUSY;	/* uverbs_free_pd(): pd->usecnt */
	pd_destroy(uctx, pd);
	return 0;
}
