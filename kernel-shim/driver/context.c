// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * User contexts: ownership, GET_CONTEXT, teardown, and the event sink
 * through which the device reaches the guest's event fds (context.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "cm.h"
#include "context.h"
#include "device.h"
#include "device/limits.h"

/* ---- uobjects and the device's events ------------------------------------ */

static struct vhca_uobject *uobj_of(struct vhca_ucontext *uctx,
				    uint32_t handle)
{
	return handle < uctx->num_uobjs ? uctx->uobjs[handle] : NULL;
}

int vhca_uobj_add(struct vhca_ucontext *uctx, uint32_t handle, uint8_t type,
		  uint64_t user_handle, struct vhca_comp_channel *channel,
		  void *pin)
{
	struct vhca_uobject *uobj = calloc(1, sizeof(*uobj));
	int ret = 0;

	if (!uobj)
		return -ENOMEM;
	*uobj = (struct vhca_uobject){
		.type = type,
		.user_handle = user_handle,
		.channel = channel,
		.pin = pin,
	};
	pthread_mutex_lock(&uctx->events_lock);
	if (handle >= uctx->num_uobjs) {
		uint32_t n = handle + 1 > 2 * uctx->num_uobjs ?
				     handle + 1 :
				     2 * uctx->num_uobjs;
		struct vhca_uobject **grown =
			reallocarray(uctx->uobjs, n, sizeof(*grown));

		if (grown) {
			memset(grown + uctx->num_uobjs, 0,
			       (n - uctx->num_uobjs) * sizeof(*grown));
			uctx->uobjs = grown;
			uctx->num_uobjs = n;
		} else {
			ret = -ENOMEM;
		}
	}
	if (!ret) {
		/* A handle the device reused: its old uobject is stale. */
		free(uctx->uobjs[handle]);
		uctx->uobjs[handle] = uobj;
	}
	pthread_mutex_unlock(&uctx->events_lock);
	if (ret)
		free(uobj);
	return ret;
}

void *vhca_uobj_swap_pin(struct vhca_ucontext *uctx, uint32_t handle,
			 void *pin)
{
	struct vhca_uobject *uobj;
	void *old = pin;

	pthread_mutex_lock(&uctx->events_lock);
	uobj = uobj_of(uctx, handle);
	if (uobj) {
		old = uobj->pin;
		uobj->pin = pin;
	}
	pthread_mutex_unlock(&uctx->events_lock);
	return old;
}

void vhca_uobj_set_mr(struct vhca_ucontext *uctx, uint32_t handle,
		      const struct vhca_uobj_mr *mr)
{
	struct vhca_uobject *uobj;

	pthread_mutex_lock(&uctx->events_lock);
	uobj = uobj_of(uctx, handle);
	if (uobj && uobj->type == VHCA_OBJ_MR)
		uobj->mr = *mr;
	pthread_mutex_unlock(&uctx->events_lock);
}

bool vhca_uobj_get_mr(struct vhca_ucontext *uctx, uint32_t handle,
		      struct vhca_uobj_mr *mr)
{
	struct vhca_uobject *uobj;
	bool live;

	pthread_mutex_lock(&uctx->events_lock);
	uobj = uobj_of(uctx, handle);
	live = uobj && uobj->type == VHCA_OBJ_MR;
	if (live)
		*mr = uobj->mr;
	pthread_mutex_unlock(&uctx->events_lock);
	return live;
}

bool vhca_uobj_exists(struct vhca_ucontext *uctx, uint32_t handle,
		      uint8_t type)
{
	struct vhca_uobject *uobj;
	bool live;

	pthread_mutex_lock(&uctx->events_lock);
	uobj = uobj_of(uctx, handle);
	live = uobj && uobj->type == type;
	pthread_mutex_unlock(&uctx->events_lock);
	return live;
}

/* Frees @uobj; events_lock held or the context dead. */
static void uobj_free(struct vhca_uobject *uobj)
{
	const struct vhca_device_memory *mem = vhca_device_memory();

	if (uobj->channel)
		vhca_comp_channel_put(uobj->channel);
	if (uobj->pin && mem)
		mem->unpin(uobj->pin);
	free(uobj);
}

void vhca_uobj_remove(struct vhca_ucontext *uctx, uint32_t handle,
		      uint32_t *comp_read, uint32_t *async_read)
{
	struct vhca_uobject *uobj;

	pthread_mutex_lock(&uctx->events_lock);
	uobj = uobj_of(uctx, handle);
	if (uobj) {
		/*
		 * Like the kernel: take the unread events back and report
		 * how many the application read (libibverbs waits until it
		 * has acked exactly that many).
		 */
		if (uobj->channel)
			vhca_comp_channel_forget(uobj->channel, uctx->peer,
						 &uobj->comp_events_read);
		vhca_channels_forget_async(&uctx->channels, uctx->peer,
					   &uobj->async_events_read);
		if (comp_read)
			*comp_read = uobj->comp_events_read;
		if (async_read)
			*async_read = uobj->async_events_read;
		uctx->uobjs[handle] = NULL;
		uobj_free(uobj);
	}
	pthread_mutex_unlock(&uctx->events_lock);
}

int vhca_ucontext_comp_event(struct vhca_ucontext *uctx, uint32_t handle)
{
	struct vhca_uobject *uobj;
	int ret = -ENOENT;

	pthread_mutex_lock(&uctx->events_lock);
	uobj = uobj_of(uctx, handle);
	if (uobj && uobj->type == VHCA_OBJ_CQ && uobj->channel)
		ret = vhca_comp_channel_post(uobj->channel, uobj->user_handle,
					     &uobj->comp_events_read);
	pthread_mutex_unlock(&uctx->events_lock);
	return ret;
}

void vhca_ucontext_async_event(struct vhca_ucontext *uctx, uint32_t handle,
			       uint64_t user_handle, uint32_t event_type)
{
	struct vhca_uobject *uobj;

	pthread_mutex_lock(&uctx->events_lock);
	uobj = uobj_of(uctx, handle);
	/* A full or closed async pipe drops the event (channel.h). */
	vhca_channels_post_async(&uctx->channels,
				 uobj ? uobj->user_handle : user_handle,
				 event_type,
				 uobj ? &uobj->async_events_read : NULL);
	pthread_mutex_unlock(&uctx->events_lock);
}

/* The in-process sink: the device's context carries our uctx. */
static int sink_comp(struct vhca_dctx *dctx, uint32_t cq_handle,
		     uint32_t channel, uint64_t user_handle)
{
	(void)channel;
	(void)user_handle;
	return vhca_ucontext_comp_event(
		(struct vhca_ucontext *)(uintptr_t)dctx->cookie, cq_handle);
}

static void sink_async(struct vhca_dctx *dctx, uint32_t handle,
		       uint64_t user_handle, uint32_t event_type)
{
	vhca_ucontext_async_event(
		(struct vhca_ucontext *)(uintptr_t)dctx->cookie, handle,
		user_handle, event_type);
}

const struct vhca_event_sink vhca_ucontext_sink = {
	.comp = sink_comp,
	.async = sink_async,
	.mad = cm_note_mads,	/* QP1's MADs are the CM's (cm.h) */
};

struct vhca_dctx *vhca_ucontext_dctx(struct vhca_ucontext *uctx)
{
	return uctx->dev->devcmd ?
		       vhca_devcmd_context(uctx->dev->devcmd, uctx->dctx) :
		       NULL;
}

int vhca_ucontext_cmd(struct vhca_ucontext *uctx, uint16_t op,
		      const void *body, size_t len, const uint64_t *lists,
		      uint32_t nlist, void *out, size_t out_len)
{
	return vhca_device_cmd(uctx->dev, op, uctx->dctx, body, len, lists,
			       nlist, NULL, out, out_len);
}

/* ---- lifetime ------------------------------------------------------------ */

/*
 * A context's own fds: its peer's pidfd, mem fd and maps fd, its wake
 * eventfd.
 */
#define CONTEXT_FDS 4

static bool charge_fds(struct vhca_ucontext *uctx)
{
	struct vhca_dev *dev = uctx->dev;
	unsigned int cur = atomic_load(&dev->stats.fds);

	do {
		if (cur + CONTEXT_FDS > dev->quota.max_fds)
			return false;
	} while (!atomic_compare_exchange_weak(&dev->stats.fds, &cur,
					       cur + CONTEXT_FDS));
	uctx->fds_charged = true;
	return true;
}

static void uncharge_fds(struct vhca_ucontext *uctx)
{
	if (uctx->fds_charged)
		atomic_fetch_sub(&uctx->dev->stats.fds, CONTEXT_FDS);
	uctx->fds_charged = false;
}


struct vhca_ucontext *vhca_ucontext_alloc(struct vhca_dev *dev)
{
	struct vhca_ucontext *uctx;
	int ret;

	uctx = calloc(1, sizeof(*uctx));
	if (!uctx)
		return NULL;
	uctx->dev = dev;
	uctx->wake_fd = -1;
	ret = pthread_mutex_init(&uctx->lock, NULL);
	if (ret)
		goto err_free;
	pthread_mutex_init(&uctx->events_lock, NULL);
	ret = -vhca_channels_init(&uctx->channels, &dev->stats.comp_channels,
				  vhca_limits.max_comp_channels,
				  &dev->stats.fds, dev->quota.max_fds);
	if (ret)
		goto err_mutex;
	return uctx;

err_mutex:
	pthread_mutex_destroy(&uctx->events_lock);
	pthread_mutex_destroy(&uctx->lock);
err_free:
	free(uctx);
	errno = ret;
	return NULL;
}

static void drop_data_path(struct vhca_ucontext *uctx)
{
	vhca_ucontext_drop_mem(&uctx->ctx_page, &uctx->ctx_page_pin);
	if (uctx->wake_fd >= 0)
		close(uctx->wake_fd);
	uctx->wake_fd = -1;
}

void vhca_ucontext_free(struct vhca_ucontext *uctx)
{
	/* First: once this returns no change event touches our fds. */
	vhca_dev_unlisten(uctx->dev, &uctx->dev_events);
	/*
	 * The device's objects go first: they post to our channels.  A
	 * device that cannot answer (a VM whose vhcad is gone) has lost
	 * them anyway.
	 */
	if (uctx->dctx) {
		vhca_ucontext_cmd(uctx, VHCA_DEVCMD_CLOSE_CONTEXT, NULL, 0,
				  NULL, 0, NULL, 0);
		vhca_device_context_live(uctx, false);
	}
	uctx->dctx = 0;
	drop_data_path(uctx);
	for (uint32_t h = 0; h < uctx->num_uobjs; h++)
		if (uctx->uobjs[h])
			uobj_free(uctx->uobjs[h]);
	free(uctx->uobjs);
	vhca_channels_fini(&uctx->channels);
	vhca_peer_put(uctx->peer);
	uncharge_fds(uctx);
	pthread_mutex_destroy(&uctx->events_lock);
	pthread_mutex_destroy(&uctx->lock);
	free(uctx);
}

/* ---- GET_CONTEXT ------------------------------------------------------- */

void vhca_ucontext_drop_mem(struct vhca_devcmd_mem *mem, void **pin)
{
	const struct vhca_device_memory *m = vhca_device_memory();

	if (mem->kind == VHCA_DEVCMD_MEM_FD && mem->fd >= 0)
		close(mem->fd);
	*mem = (struct vhca_devcmd_mem){ .fd = -1 };
	if (*pin && m)
		m->unpin(*pin);
	*pin = NULL;
}

int vhca_ucontext_queue_mem(struct vhca_ucontext *uctx, int guest_fd,
			    uint64_t size, struct vhca_devcmd_mem *mem,
			    uint64_t *list, uint32_t max, void **pin)
{
	const struct vhca_device_memory *m = vhca_device_memory();
	int fd;

	*mem = (struct vhca_devcmd_mem){ .fd = -1 };
	*pin = NULL;
	if (!size || size > VHCA_QMEM_MAX_SIZE)
		return -EINVAL;
	if (m)
		return m->queue(uctx->peer, guest_fd, size, mem, list, max,
				pin);
	fd = vhca_peer_take_memfd(uctx->peer, guest_fd, size);
	if (fd < 0)
		return fd;
	*mem = (struct vhca_devcmd_mem){
		.kind = VHCA_DEVCMD_MEM_FD,
		.fd = fd,
		.size = size,
	};
	return 0;
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
	ret = vhca_ucontext_queue_mem(uctx, cmd->ctx_page_fd,
				      sizeof(struct vhca_ctx_page),
				      &uctx->ctx_page, &uctx->ctx_page_list, 1,
				      &uctx->ctx_page_pin);
	if (ret)
		return ret;
	/* In a VM the wake-up is the VF's doorbell (guest/README): none. */
	if (!vhca_device_is_remote()) {
		uctx->wake_fd = vhca_peer_take_eventfd(uctx->peer,
						       cmd->wake_fd);
		if (uctx->wake_fd < 0) {
			ret = uctx->wake_fd;
			uctx->wake_fd = -1;
			drop_data_path(uctx);
			return ret;
		}
	}
	uctx->data_path = true;
	return 0;
}

int vhca_ucontext_prepare(struct vhca_ucontext *uctx, pid_t caller_tid,
			  const struct vhca_alloc_ucontext_cmd *cmd)
{
	struct vhca_peer *peer;
	int ret;

	/* vhcad's fds are shared out among functions (device/limits.h). */
	if (!charge_fds(uctx))
		return -EMFILE;
	ret = vhca_peer_bind(caller_tid, VHCA_PEER_MAPS, &peer);
	if (ret) {
		uncharge_fds(uctx);
		return ret;
	}
	ret = vhca_channels_setup(&uctx->channels, peer, cmd);
	if (ret) {
		vhca_peer_put(peer);
		uncharge_fds(uctx);
		return ret;
	}
	uctx->peer = peer;
	ret = take_data_path(uctx, cmd);
	if (ret) {
		vhca_channels_reset(&uctx->channels);
		vhca_peer_put(peer);
		uctx->peer = NULL;
		uncharge_fds(uctx);
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
	struct vhca_devcmd_open_context open = {
		.flags = uctx->data_path ? VHCA_DEVCMD_CTX_DATA_PATH : 0,
		.wake_fd = uctx->wake_fd,
		.ctx_page = uctx->ctx_page,
		.cookie = (uint64_t)(uintptr_t)uctx,
	};
	struct vhca_devcmd_local local = {
		.space = vhca_peer_dma_space(uctx->peer),
		.owner_pidfd = vhca_peer_pidfd(uctx->peer),
	};
	struct vhca_devcmd_context_out out;
	int ret;

	/* The command takes the eventfd and the page's memfd over. */
	ret = vhca_device_cmd(uctx->dev, VHCA_DEVCMD_OPEN_CONTEXT, 0, &open,
			      sizeof(open),
			      uctx->ctx_page.kind == VHCA_DEVCMD_MEM_PAGES ?
				      &uctx->ctx_page_list :
				      NULL,
			      uctx->ctx_page.nlist,
			      vhca_device_is_remote() ? NULL : &local, &out,
			      sizeof(out));
	uctx->wake_fd = -1;
	uctx->ctx_page = (struct vhca_devcmd_mem){ .fd = -1 };
	if (ret)
		return ret;
	uctx->dctx = out.context;
	vhca_device_context_live(uctx, true);
	/* Channel commands read it without uctx->lock (cmd.c). */
	__atomic_store_n(&uctx->initialised, true, __ATOMIC_RELEASE);
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
	vhca_peer_put(uctx->peer);
	uctx->peer = NULL;
	uncharge_fds(uctx);
}

/*
 * The kernel lets any holder of the uverbs fd issue commands, but every
 * memory operation acts on current->mm, so a forked child or a process
 * that received the fd would pin its own pages into the parent's
 * context.  Our DMA is bound to the owner's address space: a command
 * from another process would register or write the wrong one.  So a
 * context belongs to the process that ran GET_CONTEXT (as
 * ib_ucontext->tgid did in older kernels): others get -EACCES, which is
 * what ib_uverbs_write() answers a caller not entitled to the file; a
 * dead owner (or one that exec'd: its address space is gone) makes the
 * context disassociated, -EIO for everything, as after hot-unplug.
 */
int vhca_ucontext_check_caller(struct vhca_ucontext *uctx, pid_t caller_tid)
{
	int ret = vhca_peer_check_caller(uctx->peer, caller_tid);

	return ret == -ESRCH ? -EIO : ret;
}
