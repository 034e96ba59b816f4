/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A user context as the driver sees it: what one open of
 * /dev/infiniband/uverbsN is to the kernel (struct ib_uverbs_file +
 * ib_ucontext).  It binds the process that ran GET_CONTEXT (its pidfd
 * and address space), owns its event fds (channel.h), and issues every
 * object command to its device context through device commands
 * (device.h); the device owns the objects themselves.  What the uverbs
 * layer keeps about an object (struct ib_uobject: its user handle, its
 * completion channel, how many of its events the application has read)
 * is kept here, by the object's device handle.
 *
 * Locking: uctx->lock serialises commands on one context (FUSE may run
 * several writes of one open file at once).  The channel set has its own
 * lock (channel.h); a context is initialised once and never goes back, so
 * channel commands check that under uctx->lock and then run without it.
 * uctx->events_lock (a leaf) orders the device's events (posted from its
 * turns) with the uobjects and with taking an object's events back.
 */
#ifndef VHCA_DRIVER_CONTEXT_H
#define VHCA_DRIVER_CONTEXT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <vhca/abi.h>

#include <vhca/devcmd.h>

#include "channel.h"
#include "device/dctx.h"
#include "device/pf.h"
#include "peer.h"

/* An MR as its owner last registered it (REREG_MR keeps what it omits). */
struct vhca_uobj_mr {
	uint64_t addr, length, iova;
	uint32_t access;
};

/* What the driver keeps of one device object (ib_uobject). */
struct vhca_uobject {
	uint8_t type;			/* enum vhca_obj_type */
	uint64_t user_handle;
	struct vhca_comp_channel *channel;	/* a CQ's, referenced */
	uint32_t comp_events_read;	/* for DESTROY's events_reported */
	uint32_t async_events_read;
	void *pin;			/* guest memory held for it (VM) */
	struct vhca_uobj_mr mr;		/* an MR's */
};

struct vhca_ucontext {
	struct vhca_dev *dev;
	pthread_mutex_t lock;
	bool initialised;		/* GET_CONTEXT succeeded */
	struct vhca_peer *peer;		/* the owner, once initialised */
	struct vhca_channels channels;
	uint32_t dctx;			/* device context id, once initialised */
	bool data_path;			/* it has a doorbell page */
	/* the doorbell page memory and wake eventfd, prepare to commit */
	struct vhca_devcmd_mem ctx_page;
	uint64_t ctx_page_list;		/* a VM's: its one list page */
	void *ctx_page_pin;		/* held until the context is freed */
	int wake_fd;
	bool fds_charged;		/* its pidfd, mem fd, wake eventfd */
	pthread_mutex_t events_lock;
	struct vhca_uobject **uobjs;	/* by device handle */
	uint32_t num_uobjs;
	/*
	 * Hears the device's provisioning changes (port state, GID, P_Key
	 * table) and posts them on the async event fd, from GET_CONTEXT's
	 * commit until the context is freed.
	 */
	struct vhca_dev_listener dev_events;
};

/* A new, uninitialised context of @dev; NULL with errno set. */
struct vhca_ucontext *vhca_ucontext_alloc(struct vhca_dev *dev);
/* Destroys the device context and its objects, the event fds, itself. */
void vhca_ucontext_free(struct vhca_ucontext *uctx);

/*
 * GET_CONTEXT in three steps, so the response can be written between
 * them: bind the caller's process and take its fds (prepare), then make
 * it live (commit; may fail, then abort) or drop everything (abort).
 * Caller holds uctx->lock.
 */
int vhca_ucontext_prepare(struct vhca_ucontext *uctx, pid_t caller_tid,
			  const struct vhca_alloc_ucontext_cmd *cmd);
int vhca_ucontext_commit(struct vhca_ucontext *uctx);
void vhca_ucontext_abort(struct vhca_ucontext *uctx);

/*
 * May thread @caller_tid use this initialised context?  0, -EACCES for
 * another process, -EIO if the owner is gone.  Caller holds uctx->lock.
 */
int vhca_ucontext_check_caller(struct vhca_ucontext *uctx, pid_t caller_tid);

/*
 * Queue memory from the guest, its sealed memfd @guest_fd of @size
 * bytes, described for a device command: in vhcad the memfd itself
 * (MEM_FD: the command takes it over); in a VM its pages (MEM_PAGES,
 * held in *pin until the object is gone, the list page addresses in
 * @list, at most @max).  0, -EINVAL or -ENOMEM.
 */
int vhca_ucontext_queue_mem(struct vhca_ucontext *uctx, int guest_fd,
			    uint64_t size, struct vhca_devcmd_mem *mem,
			    uint64_t *list, uint32_t max, void **pin);
/* Drops what vhca_ucontext_queue_mem() took, if no command took it. */
void vhca_ucontext_drop_mem(struct vhca_devcmd_mem *mem, void **pin);

/* A device command on this context (device.h). */
int vhca_ucontext_cmd(struct vhca_ucontext *uctx, uint16_t op,
		      const void *body, size_t len, const uint64_t *lists,
		      uint32_t nlist, void *out, size_t out_len);

/*
 * The uobject of a new device object (the caller holds uctx->lock):
 * 0 or -ENOMEM.  @channel, if any, is the uobject's reference now.
 */
int vhca_uobj_add(struct vhca_ucontext *uctx, uint32_t handle, uint8_t type,
		  uint64_t user_handle, struct vhca_comp_channel *channel,
		  void *pin);
/* Exchanges the pin of @handle's uobject (a resized CQ); the old one. */
void *vhca_uobj_swap_pin(struct vhca_ucontext *uctx, uint32_t handle,
			 void *pin);
/* An MR uobject's range and access: set, or got (false: no such MR). */
void vhca_uobj_set_mr(struct vhca_ucontext *uctx, uint32_t handle,
		      const struct vhca_uobj_mr *mr);
bool vhca_uobj_get_mr(struct vhca_ucontext *uctx, uint32_t handle,
		      struct vhca_uobj_mr *mr);
/* Is @handle a live object of @type? */
bool vhca_uobj_exists(struct vhca_ucontext *uctx, uint32_t handle,
		      uint8_t type);
/*
 * The device object @handle is gone: take its unread events back and
 * report how many the application read (either may be NULL), then
 * forget it.
 */
void vhca_uobj_remove(struct vhca_ucontext *uctx, uint32_t handle,
		      uint32_t *comp_read, uint32_t *async_read);

/*
 * The device's events for this context, from the in-process sink or a
 * VM's event ring: CQ @handle has a completion event; an affiliated
 * async event of object @handle.
 */
int vhca_ucontext_comp_event(struct vhca_ucontext *uctx, uint32_t handle);
void vhca_ucontext_async_event(struct vhca_ucontext *uctx, uint32_t handle,
			       uint64_t user_handle, uint32_t event_type);

/*
 * The device context of an in-process context, referenced (put it with
 * vhca_dctx_put()); NULL if none.  For tests that look at device state.
 */
struct vhca_dctx *vhca_ucontext_dctx(struct vhca_ucontext *uctx);

/* The sink vhcad's own driver gives its functions (pf hooks). */
extern const struct vhca_event_sink vhca_ucontext_sink;

#endif /* VHCA_DRIVER_CONTEXT_H */
