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
#include <vhca/queue.h>

#include "pabi34.h"

#define vhca_container_of(ptr, type, member)                                   \
	((type *)((uintptr_t)(ptr) - offsetof(type, member)))

struct vhca_device {
	struct verbs_device ibv_dev;
};

/*
 * A completion-channel pipe given to the device's pool (channel.c): its
 * read end, and our copy of the write end, kept so that the pipe never
 * reads EOF when the device dies (lost.c).
 */
struct vhca_pool_ent {
	int fd;
	int write_fd;
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
	int read_fd;		/* service pipe, read end: EOF when the device dies */
	int quit_fd;		/* eventfd: vhca_service_stop() wakes the thread */
	void (*lost)(void *arg);	/* the device is gone (lost.c) */
	void *lost_arg;
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
	uint32_t max_send_sge;
	uint32_t max_recv_sge;

	/* data path: the doorbell page and the engine's wake eventfd */
	struct vhca_ctx_page *db_page;
	size_t db_page_size;
	int db_page_fd;
	int wake_fd;
	/* In a VM: the VF's doorbell register, one MMIO write wakes. */
	volatile uint32_t *mmio_doorbell;
	uint32_t mmio_doorbell_value;
	void *mmio_page;
	bool vm;			/* pin what we register (mlock) */
	pthread_spinlock_t db_lock;	/* serialises FIFO pushes */

	/* device loss (lost.c) */
	atomic_bool lost;		/* vhcad is gone: every verb fails */
	int async_write_fd;		/* our copy of the async pipe's writer */
	pthread_mutex_t cq_lock;	/* the CQ list */
	struct vhca_cq *cqs;
	pthread_mutex_t odp_lock;	/* the ODP MR list (odp.c) */
	struct vhca_mr *odp_mrs;
};

/*
 * A sealed memfd mapped MAP_SHARED: the memory of one queue (or the
 * context's doorbell page).  The device maps the same memfd.
 */
struct vhca_qbuf {
	void *addr;
	size_t size;
	int fd;
};

struct vhca_cq {
	union {
		struct ibv_cq ibv_cq;
		struct ibv_cq_ex ibv_cq_ex;	/* ibv_create_cq_ex (cq_ex.c) */
	};
	struct vhca_cq *next, **pprev;	/* the context's CQ list */
	pthread_spinlock_t lock;
	struct vhca_qbuf buf;
	struct vhca_cqe *ring;
	struct vhca_cq_db *db;
	uint32_t cqe_count;	/* power of two */
	uint32_t consumer;	/* CQEs consumed, free-running */
	uint32_t cqn;
	/* ibv_start_poll() .. ibv_end_poll(): the CQE being read, or NULL */
	const struct vhca_cqe *cur;
	bool single_threaded;	/* IBV_CREATE_CQ_ATTR_SINGLE_THREADED: no lock */
};

/* A work queue ring inside a QP's or SRQ's memfd. */
struct vhca_wq {
	pthread_spinlock_t lock;
	uint8_t *ring;
	uint32_t wqe_count;	/* power of two, 0 for none */
	uint32_t stride;	/* bytes per slot, power of two */
	uint32_t max_sge;
	uint32_t head;		/* posted, free-running (ours) */
};

struct vhca_qp {
	struct verbs_qp vqp;	/* vqp.qp is the struct ibv_qp */
	struct vhca_qbuf buf;
	struct vhca_qp_db *db;
	struct vhca_wq sq;
	struct vhca_wq rq;
	uint32_t max_inline_data;
	bool sq_sig_all;
	/* ibv_wr_* batch, between wr_start and wr_complete (sq.lock held) */
	struct vhca_send_wqe *wr_wqe;	/* the WQE the wr_set_* calls fill */
	uint32_t wr_cur;		/* next free index */
	int wr_err;			/* first error of the batch */
};

struct vhca_srq {
	struct ibv_srq ibv_srq;
	struct vhca_qbuf buf;
	struct vhca_srq_db *db;
	struct vhca_wq rq;
	uint32_t srqn;
};

struct vhca_ah {
	struct ibv_ah ibv_ah;
	struct ibv_ah_attr attr;
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

static inline struct vhca_cq *to_vcq(struct ibv_cq *ibcq)
{
	return vhca_container_of(ibcq, struct vhca_cq, ibv_cq);
}

/* Is CQE number @idx (free-running) of @cq written, by its owner byte? */
static inline bool vhca_cqe_valid(const struct vhca_cq *cq, uint32_t idx,
				  uint8_t owner)
{
	/* (idx / cqe_count) & 1, with cqe_count a power of two */
	return (owner & 1) == (((idx & cq->cqe_count) ? 1u : 0u) ^ 1u);
}

static inline struct vhca_qp *to_vqp(struct ibv_qp *ibqp)
{
	return vhca_container_of(ibqp, struct vhca_qp, vqp.qp);
}

static inline struct vhca_srq *to_vsrq(struct ibv_srq *ibsrq)
{
	return vhca_container_of(ibsrq, struct vhca_srq, ibv_srq);
}

static inline struct vhca_ah *to_vah(struct ibv_ah *ibah)
{
	return vhca_container_of(ibah, struct vhca_ah, ibv_ah);
}

/* Smallest power of two >= @n (n <= 2^31); 1 for 0. */
static inline uint32_t vhca_roundup_pow2(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static inline size_t vhca_page_align(size_t n)
{
	return (n + VHCA_PAGE_SIZE - 1) & ~(size_t)(VHCA_PAGE_SIZE - 1);
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
 * A read end whose every read(2) fails with EIO (and polls POLLHUP),
 * after returning @len bytes of @data once, if any: what the device's
 * event fds turn into when it is gone.  -1 with errno on failure.
 */
int vhca_eio_fd(const void *data, size_t len);
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
/*
 * After the device took its copies: the pool keeps @pairs' write ends
 * (their write_fd become -1), which lost.c writes its last events with.
 */
void vhca_pool_keep_writers(struct vhca_channel_pool *pool,
			    struct vhca_fd_pair *pairs, unsigned int n);
/* The pool entry of read end @fd, or NULL. */
struct vhca_pool_ent *vhca_pool_find(struct vhca_channel_pool *pool, int fd);
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
/*
 * At context close, before cmd_fd is closed: VHCA_CMD_RETURN_CHANNELS.
 * Closes exactly the read ends the device lists (if tracked) and frees
 * the pool.  Returns 0, or -1 with errno set and the pool untouched
 * (EOPNOTSUPP: the device does not know the command).
 */
int vhca_pool_return(struct vhca_channel_pool *pool, int cmd_fd);

/* service.c: service thread */

/*
 * Takes ownership of @pair's read end (our copy of the write end must be
 * closed already: EOF on it says the device is gone, and then @lost runs
 * in the thread) and starts the thread, which adds channels to @pool.
 * Returns 0 or an errno value; on failure @pair is left untouched.
 */
int vhca_service_start(struct vhca_service *svc, int cmd_fd,
		       struct vhca_fd_pair *pair,
		       struct vhca_channel_pool *pool,
		       void (*lost)(void *arg), void *lost_arg);
/* Stops and joins the thread, closes the service pipe.  Idempotent. */
void vhca_service_stop(struct vhca_service *svc);

/* lost.c: the device is gone */

/*
 * vhcad died: every verb fails from now on (EIO), pollers get -EIO once
 * their CQs are empty, the async fd reads IBV_EVENT_DEVICE_FATAL and
 * every completion channel wakes its waiters, then fails reads with EIO.
 */
void vhca_context_lost(void *ctx);
static inline bool vhca_ctx_lost(struct vhca_context *ctx)
{
	return atomic_load_explicit(&ctx->lost, memory_order_relaxed);
}
/* The CQ list, for the above. */
void vhca_ctx_add_cq(struct vhca_context *ctx, struct vhca_cq *cq);
void vhca_ctx_remove_cq(struct vhca_context *ctx, struct vhca_cq *cq);

/* verbs.c: context operations */
int vhca_query_device_ex(struct ibv_context *context,
			 const struct ibv_query_device_ex_input *input,
			 struct ibv_device_attr_ex *attr, size_t attr_size);
int vhca_query_port(struct ibv_context *context, uint8_t port_num,
		    struct ibv_port_attr *port_attr);
struct ibv_pd *vhca_alloc_pd(struct ibv_context *context);
int vhca_dealloc_pd(struct ibv_pd *pd);
/* An MR: libibverbs' part, and the device memory it lies in (dm.c). */
struct vhca_mr {
	struct verbs_mr vmr;
	int access;			/* as registered (rereg keeps it) */
	struct vhca_dm *dm;
	/* ODP MRs, on the context's list for ibv_advise_mr (odp.c) */
	struct vhca_mr *odp_next, **odp_pprev;
};
/*
 * Faults [addr, addr + length) in, for writing with MADV_POPULATE_WRITE
 * (from the enclosing page on): 0 or an errno.
 */
int vhca_populate(void *addr, size_t length, int advice);
/* Registers [addr, addr + length) at @hca_va; NULL with errno set. */
struct vhca_mr *vhca_mr_new(struct ibv_pd *pd, void *addr, size_t length,
			    uint64_t hca_va, int access);
int vhca_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
		  void *addr, size_t length, int access);
struct ibv_mr *vhca_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			   uint64_t hca_va, int access);
int vhca_dereg_mr(struct verbs_mr *vmr);

/* buf.c: queue memory and doorbells */

/*
 * Creates a sealed memfd of @size bytes (a multiple of VHCA_PAGE_SIZE)
 * and maps it.  Returns 0 or -1 with errno set (@buf then -1/NULL).
 */
int vhca_qbuf_alloc(struct vhca_qbuf *buf, size_t size, const char *name);
void vhca_qbuf_free(struct vhca_qbuf *buf);
/*
 * Rings the doorbell of queue @handle of @kind after its producer index
 * was published: pushes it onto the context FIFO unless *@queued was
 * already set, then wakes the engine if it sleeps.
 */
void vhca_ring_doorbell(struct vhca_context *ctx, uint32_t *queued,
			uint32_t handle, enum vhca_db_kind kind);
/* Initialises/destroys a work queue's lock (wq.lock). */
int vhca_wq_init(struct vhca_wq *wq);
void vhca_wq_destroy(struct vhca_wq *wq);
/*
 * Writes a chain of receive WRs into @wq (an RQ or SRQ ring) whose
 * consumer index is *@tail; publishes *@head.  Caller holds wq->lock.
 * Returns 0 or an errno with *bad_wr set; WRs before it were posted.
 * *@posted tells whether anything was published.
 */
int vhca_wq_post_recv(struct vhca_wq *wq, uint32_t *head, const uint32_t *tail,
		      struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr,
		      bool *posted);

/* cq.c */
/* A CQ of @cqe entries, the command done; NULL with errno set. */
struct vhca_cq *vhca_cq_new(struct ibv_context *context, int cqe,
			    struct ibv_comp_channel *channel, int comp_vector);
struct ibv_cq *vhca_create_cq(struct ibv_context *context, int cqe,
			      struct ibv_comp_channel *channel,
			      int comp_vector);
int vhca_poll_cq(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);
int vhca_req_notify_cq(struct ibv_cq *cq, int solicited_only);
int vhca_resize_cq(struct ibv_cq *cq, int cqe);
int vhca_destroy_cq(struct ibv_cq *cq);

/* odp.c: on-demand paging */
/* An ODP MR joins (registered) or leaves (deregistered) the list. */
void vhca_odp_add(struct vhca_context *ctx, struct vhca_mr *mr);
void vhca_odp_remove(struct vhca_context *ctx, struct vhca_mr *mr);
int vhca_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
		   uint32_t flags, struct ibv_sge *sg_list, uint32_t num_sge);

/* dm.c: device memory */
struct vhca_dm {
	struct ibv_dm ibv_dm;
	uint8_t *addr;
	size_t size;
	atomic_uint mrs;	/* MRs registered on it: free_dm is EBUSY */
};
struct ibv_dm *vhca_alloc_dm(struct ibv_context *context,
			     struct ibv_alloc_dm_attr *attr);
int vhca_free_dm(struct ibv_dm *dm);
struct ibv_mr *vhca_reg_dm_mr(struct ibv_pd *pd, struct ibv_dm *dm,
			      uint64_t dm_offset, size_t length,
			      unsigned int access);
/* An MR on @dm went away. */
void vhca_dm_put(struct vhca_dm *dm);

/* cq_ex.c: ibv_create_cq_ex and the device clock */
struct ibv_cq_ex *vhca_create_cq_ex(struct ibv_context *context,
				    struct ibv_cq_init_attr_ex *attr);
int vhca_query_rt_values(struct ibv_context *context,
			 struct ibv_values_ex *values);

/* qp.c */
struct ibv_qp *vhca_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
struct ibv_qp *vhca_create_qp_ex(struct ibv_context *context,
				 struct ibv_qp_init_attr_ex *attr);
int vhca_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask,
		  struct ibv_qp_init_attr *init_attr);
int vhca_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask);
int vhca_destroy_qp(struct ibv_qp *qp);
int vhca_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
		   struct ibv_send_wr **bad_wr);
int vhca_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
		   struct ibv_recv_wr **bad_wr);

/* srq.c */
struct ibv_srq *vhca_create_srq(struct ibv_pd *pd,
				struct ibv_srq_init_attr *attr);
int vhca_modify_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr,
		    int attr_mask);
int vhca_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr);
int vhca_destroy_srq(struct ibv_srq *srq);
int vhca_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr,
		       struct ibv_recv_wr **bad_wr);

/* ah.c */
struct ibv_ah *vhca_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr);
int vhca_destroy_ah(struct ibv_ah *ah);

#endif /* VHCA_PROVIDER_H */
