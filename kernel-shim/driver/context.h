/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A user context as the driver sees it: what one open of
 * /dev/infiniband/uverbsN is to the kernel (struct ib_uverbs_file +
 * ib_ucontext).  It binds the process that ran GET_CONTEXT (its pidfd
 * and address space), owns its event fds (channel.h), and issues every
 * object command to its device context (device/dctx.h), which owns the
 * objects themselves.
 *
 * Locking: uctx->lock serialises commands on one context (FUSE may run
 * several writes of one open file at once).  The channel set has its own
 * lock (channel.h); a context is initialised once and never goes back, so
 * channel commands check that under uctx->lock and then run without it.
 */
#ifndef VHCA_DRIVER_CONTEXT_H
#define VHCA_DRIVER_CONTEXT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <vhca/abi.h>

#include "channel.h"
#include "device/dctx.h"
#include "device/pf.h"
#include "device/qmem.h"
#include "peer.h"

struct vhca_ucontext {
	struct vhca_dev *dev;
	pthread_mutex_t lock;
	bool initialised;		/* GET_CONTEXT succeeded */
	struct vhca_peer *peer;		/* the owner, once initialised */
	struct vhca_channels channels;
	struct vhca_dctx *dctx;		/* once initialised */
	/* the doorbell page and wake eventfd, between prepare and commit */
	struct vhca_qmem ctx_qmem;
	int wake_fd;
	bool fds_charged;		/* its pidfd, mem fd, wake eventfd */
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
 * Queue memory from the guest: takes its sealed memfd @guest_fd of
 * @size bytes and maps it into @qmem.  0, -EINVAL or -ENOMEM.
 */
int vhca_ucontext_map_queue(struct vhca_ucontext *uctx, int guest_fd,
			    uint64_t size, struct vhca_qmem *qmem);

#endif /* VHCA_DRIVER_CONTEXT_H */
