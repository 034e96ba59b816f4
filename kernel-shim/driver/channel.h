/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Event fds of one user context: the async event pipe, the service pipe
 * and the completion channels.
 *
 * The daemon cannot create fds in a guest, so the provider creates the
 * pipes and the daemon takes the write ends (include/vhca/abi.h).  For
 * completion channels, which libibverbs creates without asking the
 * provider, the context keeps a pool of ready pipes: CREATE_COMP_CHANNEL
 * hands out the read end of one, and when the pool runs low the daemon
 * asks the provider's service thread for more (VHCA_SERVICE_REFILL_CHANNELS
 * on the service pipe, answered by VHCA_CMD_ADD_CHANNELS).
 *
 * A guest may close any of these fds at any time.  A completion channel
 * whose read end is closed is "gone": it is reaped (and stops counting in
 * dev->stats.comp_channels) the next time a channel is created or
 * vhca_channels_reap() runs; writes to it fail with -EPIPE meanwhile.
 *
 * Every write is nonblocking and record-sized (<= PIPE_BUF, so atomic):
 * a full pipe drops the record with -EAGAIN rather than stall the daemon.
 * A closed reader gives -EPIPE; vhcad ignores SIGPIPE (main.c), which
 * these writes rely on.  The async pipe also carries the device's port
 * events (context.c), posted from the admin's provisioning path under
 * pf->lock: the same drop-when-full rule keeps a guest that never reads
 * from stalling provisioning (docs/admin.md).
 */
#ifndef VHCA_CHANNEL_H
#define VHCA_CHANNEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <vhca/abi.h>

#include "peer.h"

/* Pipes the pool holds at most; ADD_CHANNELS beyond it is -ENOSPC. */
/* Ask for a refill when the pool drops to this many. */
#define VHCA_CHANNEL_POOL_LOW (VHCA_CHANNEL_BATCH / 2)
/* How long CREATE_COMP_CHANNEL waits for a refill of an empty pool. */
#define VHCA_CHANNEL_REFILL_TIMEOUT_MS 2000

/* A pooled pipe: the guest's read end (a number) and our write end. */
struct vhca_pooled_pipe {
	int guest_fd;
	int write_fd;
	struct vhca_pipe_id id;
};

/*
 * The kernel reports at DESTROY_CQ/QP/SRQ how many of the object's events
 * the application has read (libibverbs waits until it has acked exactly
 * that many).  A pipe cannot tell whose records were read, so we log, in
 * pipe order, the read counter of the object each unread record belongs
 * to (NULL: a port event, or an object destroyed since); FIONREAD says how
 * many are still unread, and the oldest records beyond that were read.
 */
struct vhca_event_log {
	uint32_t **counters;
	uint32_t cap, head, len;
};

/*
 * A completion channel handed out by CREATE_COMP_CHANNEL.  Reference
 * counted so that later users (a CQ bound to it) may keep it while the
 * context reaps it; the write fd closes with the last reference.
 */
struct vhca_comp_channel {
	atomic_uint refcount;
	atomic_bool gone;	/* the guest closed its read end */
	atomic_uint *fds;	/* the function's fd count (vhca_channels) */
	int guest_fd;		/* the fd number we returned */
	int write_fd;
	struct vhca_pipe_id id;
	/* Serialized by dctx->lock (posts and DESTROY_CQ run under it). */
	struct vhca_event_log unread;
};

struct vhca_channels {
	pthread_mutex_t lock;
	pthread_cond_t refilled;	/* ADD_CHANNELS arrived */
	atomic_uint *counter;		/* &dev->stats.comp_channels */
	/*
	 * The daemon fds this set holds count in the function's share
	 * (device/limits.h): taking one beyond it is -EMFILE.
	 */
	atomic_uint *fds;		/* &dev->stats.fds */
	unsigned int fds_max;
	unsigned int max_active;	/* per-context cap: -EMFILE beyond */
	unsigned int refill_timeout_ms;

	int async_fd;			/* write end, or -1 */
	atomic_bool async_gone;
	/*
	 * Async records come from the engine (object events, under the
	 * context's dctx->lock) and from provisioning (port events, under pf->lock):
	 * this leaf lock orders each write with its log entry.
	 */
	pthread_mutex_t async_lock;
	struct vhca_event_log async_unread;
	/*
	 * The guest's read end of the async pipe (its number, and the pipe):
	 * destroying an object takes its unread events back out of the pipe,
	 * through a reader taken for the moment, as the kernel drops them from
	 * its queue (libibverbs would otherwise hand them to the application
	 * with a pointer to the freed object).  Not kept open: a reader of
	 * ours would hide that the guest closed its end (-EPIPE).
	 */
	int async_guest_read_fd;
	struct vhca_pipe_id async_id;
	int service_fd;			/* write end, or -1 */
	bool service_gone;
	bool refill_pending;		/* asked, no ADD_CHANNELS yet */

	struct vhca_pooled_pipe pool[VHCA_CHANNEL_POOL_MAX];
	unsigned int pool_len;

	struct vhca_comp_channel **active;
	unsigned int num_active;
	unsigned int active_cap;
};

/*
 * An empty set (all fds -1) that vhca_channels_fini() may free; its fds
 * count in @fds, at most @fds_max.
 */
int vhca_channels_init(struct vhca_channels *ch, atomic_uint *counter,
		       unsigned int max_active, atomic_uint *fds,
		       unsigned int fds_max);
/* Closes every fd and uncounts the live completion channels. */
void vhca_channels_fini(struct vhca_channels *ch);
/* Like fini, but the set stays usable (a failed GET_CONTEXT's undo). */
void vhca_channels_reset(struct vhca_channels *ch);

/*
 * GET_CONTEXT: takes the async, service and channel write ends named in
 * @cmd (num_channels already checked <= VHCA_CHANNEL_BATCH).  Any invalid
 * fd is -EINVAL and nothing is kept.
 */
int vhca_channels_setup(struct vhca_channels *ch,
			const struct vhca_peer *peer,
			const struct vhca_alloc_ucontext_cmd *cmd);
/* Asks for a refill if the pool is low; for the end of GET_CONTEXT. */
void vhca_channels_check_low(struct vhca_channels *ch);

/* VHCA_CMD_ADD_CHANNELS: all-or-nothing. */
int vhca_channels_add(struct vhca_channels *ch,
		      const struct vhca_peer *peer,
		      const struct vhca_add_channels_cmd *cmd);

/*
 * CREATE_COMP_CHANNEL: reaps, then hands out a pooled pipe, waiting up to
 * refill_timeout_ms for a refill if the pool is empty (-EMFILE then, or
 * at once if the service pipe is gone).  On success *chan is owned by the
 * context (no reference is taken for the caller) and counted.
 */
int vhca_channels_create(struct vhca_channels *ch,
			 struct vhca_comp_channel **chan);
/* Undoes a create whose response could not be delivered. */
void vhca_channels_uncreate(struct vhca_channels *ch,
			    struct vhca_comp_channel *chan);

/* Drops gone channels (closed read ends) from the pool and the count. */
void vhca_channels_reap(struct vhca_channels *ch);

/*
 * The live channel the guest knows as @guest_fd, referenced, or NULL.
 * The number alone is not trusted (the guest may have closed and reused
 * it): the fd must be, in the guest now, the read end of that pipe.
 */
struct vhca_comp_channel *
vhca_channels_get_comp(struct vhca_channels *ch,
		       const struct vhca_peer *peer, int guest_fd);
void vhca_comp_channel_put(struct vhca_comp_channel *chan);

/*
 * VHCA_CMD_RETURN_CHANNELS: lists the read ends of every pooled channel
 * never handed out and, once @deliver has written that list to the
 * guest, forgets them (closing our write ends).  If @deliver fails,
 * nothing changes.  No refill is asked for afterwards.
 */
int vhca_channels_return(struct vhca_channels *ch,
			 int (*deliver)(void *arg,
					const struct vhca_return_channels_resp *),
			 void *arg);

/*
 * Event records in the kernel formats; 0, -EAGAIN (full), -EPIPE or
 * -ENOMEM.  @read_counter counts the records of the object that the guest
 * has read (NULL for port events).
 */
int vhca_channels_post_async(struct vhca_channels *ch, uint64_t element,
			     uint32_t event_type, uint32_t *read_counter);
/*
 * Brings @read_counter up to date and takes the object's unread records
 * out of the async pipe (the others stay, in order); call before the
 * object owning the counter goes away, then report the count.
 */
void vhca_channels_forget_async(struct vhca_channels *ch,
				const struct vhca_peer *peer,
				uint32_t *read_counter);
/*
 * Credits every record the guest has read so far and takes the CQ's
 * unread records out of the channel's pipe (the others stay, in order),
 * as vhca_channels_forget_async does; call before the CQ owning
 * @read_counter goes away.
 */
void vhca_comp_channel_forget(struct vhca_comp_channel *chan,
			      const struct vhca_peer *peer,
			      uint32_t *read_counter);
/* Posts one event for the CQ @cq_handle, whose reads @read_counter counts. */
int vhca_comp_channel_post(struct vhca_comp_channel *chan,
			   uint64_t cq_handle, uint32_t *read_counter);

#endif /* VHCA_CHANNEL_H */
