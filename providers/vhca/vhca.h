/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhca libibverbs provider: internal objects.
 */
#ifndef VHCA_PROVIDER_H
#define VHCA_PROVIDER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vhca/abi.h>

#include "pabi34.h"

#define vhca_container_of(ptr, type, member)                                   \
	((type *)((uintptr_t)(ptr) - offsetof(type, member)))

struct vhca_device {
	struct verbs_device ibv_dev;
};

/* A completion-channel read end given to the device's pool (channel.c). */
struct vhca_pool_ent {
	int fd;
	dev_t dev;
	ino_t ino;
};

struct vhca_channel_pool {
	struct vhca_pool_ent *ents; /* at most one entry per fd number */
	size_t num;
	size_t cap;
};

/*
 * Per-context service thread.  The device asks for more completion-channel
 * pipes by writing VHCA_SERVICE_REFILL_CHANNELS into the service pipe; the
 * thread answers with VHCA_CMD_ADD_CHANNELS on the context's cmd_fd.
 */
struct vhca_service {
	int cmd_fd;		/* the context's command file (not owned) */
	int read_fd;		/* service pipe, read end */
	int write_fd;		/* our copy of the write end: the quit path */
	struct vhca_channel_pool *pool; /* written by the thread only */
	atomic_bool stop;
	bool running;
	pid_t owner;		/* the process the thread runs in */
	pthread_t thread;
};

struct vhca_context {
	struct verbs_context ibv_ctx;
	struct vhca_service service;
	/*
	 * Owned by alloc_context until the service thread starts, then by
	 * the thread until vhca_service_stop() has joined it.
	 */
	struct vhca_channel_pool pool;
	uint32_t max_inline_data;
};

static inline struct vhca_device *to_vdev(struct ibv_device *ibdev)
{
	return vhca_container_of(verbs_get_device(ibdev), struct vhca_device,
				 ibv_dev);
}

static inline struct vhca_context *to_vctx(struct ibv_context *ibctx)
{
	return vhca_container_of(ibctx, struct vhca_context, ibv_ctx.context);
}

/* channel.c: pipes handed to the device */

/* Closes *fd if open and sets it to -1. */
void vhca_close_fd(int *fd);
/*
 * Creates one pipe for the device: read end blocking, write end
 * O_NONBLOCK (the device must never block on a guest's pipe), both
 * O_CLOEXEC.  Returns 0 or -1 with errno set; on failure @pair is -1/-1.
 */
int vhca_fd_pair_open(struct vhca_fd_pair *pair);
/* Closes whichever ends of @pair are open and marks them -1. */
void vhca_fd_pair_close(struct vhca_fd_pair *pair);
/* Closes the write end only: the device has taken its own copy. */
void vhca_fd_pair_close_write(struct vhca_fd_pair *pair);
/*
 * Opens up to @max pairs into @pairs (the rest set to -1).  Returns the
 * number opened (>= 1), or -1 with errno set if none could be opened.
 */
int vhca_channel_batch_open(struct vhca_fd_pair *pairs, unsigned int max);
void vhca_channel_batch_close(struct vhca_fd_pair *pairs, unsigned int n);

/*
 * Remembers the read ends of @pairs as pool members.  Returns 0, or -1
 * with errno set and nothing remembered.
 */
int vhca_pool_track(struct vhca_channel_pool *pool,
		    const struct vhca_fd_pair *pairs, unsigned int n);
/* Forgets the read ends of @pairs (the device did not take them). */
void vhca_pool_untrack(struct vhca_channel_pool *pool,
		       const struct vhca_fd_pair *pairs, unsigned int n);
/*
 * At context close, after cmd_fd is closed: closes every remembered read
 * end that still refers to its pipe, then frees the pool.
 */
void vhca_pool_close_all(struct vhca_channel_pool *pool);
/* Frees the bookkeeping only. */
void vhca_pool_free(struct vhca_channel_pool *pool);

/* service.c: service thread */

/*
 * Takes ownership of @pair (read end and our copy of the write end) and
 * starts the thread, which adds channels to @pool.  Returns 0 or an errno
 * value; on failure @pair is left untouched (still owned by the caller).
 */
int vhca_service_start(struct vhca_service *svc, int cmd_fd,
		       struct vhca_fd_pair *pair,
		       struct vhca_channel_pool *pool);
/* Stops and joins the thread, closes the service pipe.  Idempotent. */
void vhca_service_stop(struct vhca_service *svc);

/* verbs.c: context operations */
int vhca_query_device_ex(struct ibv_context *context,
			 const struct ibv_query_device_ex_input *input,
			 struct ibv_device_attr_ex *attr, size_t attr_size);
int vhca_query_port(struct ibv_context *context, uint8_t port_num,
		    struct ibv_port_attr *port_attr);
struct ibv_pd *vhca_alloc_pd(struct ibv_context *context);
int vhca_dealloc_pd(struct ibv_pd *pd);
struct ibv_mr *vhca_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			   uint64_t hca_va, int access);
int vhca_dereg_mr(struct verbs_mr *vmr);

#endif /* VHCA_PROVIDER_H */
