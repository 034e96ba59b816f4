/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The engine: the silicon's execution units.  N threads (--engine-threads)
 * run the turns of device contexts (dctx.h): a turn takes the context's
 * lock, pops its doorbell FIFO, consumes the packets in its inbox, fires
 * its due timers and sends what its QPs have posted, within a budget of
 * packets and bytes, so one context cannot hold a thread for long.  A
 * context is in at most one turn at a time; different contexts run in
 * parallel.  There is no global lock on the data path: contexts meet only
 * through packets (switch.h), and the scheduler's own locks are held for
 * a few instructions.
 *
 * Scheduling follows io_uring's SQPOLL: a context with work is queued on
 * the run queue (one woken by a doorbell or a packet ahead of those that
 * used their turn and have more, so a ping-pong step never waits behind
 * bulk turns; engine.c, runq_pop); threads spin while work flows (policy adaptive: up to
 * 50 us, while a CPU is spare; event: never; poll: always); a context
 * that has been quiet for a while leaves the polled set and sets
 * needs_wakeup in its doorbell page, so its provider writes its wake
 * eventfd on the next doorbell; sleeping threads wait in one epoll on
 * every context's wake eventfd, its owner's pidfd and the earliest timer.
 * Work is O(active contexts): nothing scans idle ones.
 *
 * Stalls: a turn may wait on its own context's memory (a page fault on a
 * slow or hostile filesystem).  A monitor thread sees a turn that has run
 * longer than VHCA_ENGINE_STALL_NS asleep in the kernel (a preempted one
 * is not stalled) and starts a replacement thread, so the
 * other contexts keep their threads; at most VHCA_ENGINE_VF_TURNS turns
 * of one function run at once, which bounds the threads one tenant can
 * tie up.  The stalled context itself waits, and an access slower than
 * VHCA_DMA_STALL_LIMIT_NS fails its QP once it returns (dma.h).
 */
#ifndef VHCA_DEVICE_ENGINE_H
#define VHCA_DEVICE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

struct vhca_dctx;

enum vhca_engine_policy {
	VHCA_ENGINE_ADAPTIVE = 0,
	VHCA_ENGINE_POLL,
	VHCA_ENGINE_EVENT,
};

/* Spin this long without work before going to sleep (adaptive). */
#define VHCA_ENGINE_SPIN_NS 50000ULL
/* A context without work for this long leaves the polled set. */
#define VHCA_ENGINE_ACTIVE_NS 200000ULL
/* A turn running longer than this is stalled (it waits on memory). */
#define VHCA_ENGINE_STALL_NS (20ULL * 1000 * 1000)
/*
 * Engine threads run SCHED_FIFO at this priority by default, within a
 * CPU budget (engine_threads.c): a doorbell's wakeup then preempts a
 * busy poller at once.
 */
#define VHCA_ENGINE_RT_DEFAULT 1
/* Turns of one function that may run at once. */
#define VHCA_ENGINE_VF_TURNS 2
/* Threads the engine may add to replace stalled ones. */
#define VHCA_ENGINE_MAX_EXTRA 64
#define VHCA_ENGINE_MAX_THREADS 32

struct vhca_engine_config {
	enum vhca_engine_policy policy;
	unsigned int threads;		/* 0: one per online CPU, up to 4 */
	int rt_priority;		/* > 0: SCHED_FIFO within a budget */
};

/* Parses "poll", "adaptive", "event"; -EINVAL otherwise. */
int vhca_engine_parse_policy(const char *name, enum vhca_engine_policy *p);

/* Starts the threads (vhcad); tests may instead call poll_once. */
int vhca_engine_start(const struct vhca_engine_config *config);
void vhca_engine_stop(void);
/* Threads running now (not counting stalled ones), for tests and logs. */
unsigned int vhca_engine_threads(void);

/*
 * A context joins the engine (its wake eventfd and its owner's @pidfd,
 * -1 if none, are watched) / leaves it; dctx->lock held for detach.
 */
int vhca_engine_attach(struct vhca_dctx *dctx, int owner_pidfd);
void vhca_engine_detach(struct vhca_dctx *dctx);

/* @dctx has work: run a turn of it soon.  Any thread, no lock needed. */
void vhca_engine_kick(struct vhca_dctx *dctx);

/* A turn ended with @deadline as its earliest timer (0: none). */
void vhca_engine_set_deadline(struct vhca_dctx *dctx, uint64_t deadline);

/*
 * Runs, in the caller, every turn that is due (doorbells, packets,
 * timers).  Returns true if it found any work.  Tests drive the engine
 * with it instead of threads.
 */
bool vhca_engine_poll_once(void);

uint64_t vhca_now_ns(void);

#endif /* VHCA_DEVICE_ENGINE_H */
