/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The engine's own state, shared by its three files and nothing else:
 *  - engine.c: the registry (epoll's view of contexts), attach and
 *    detach, and what a thread does in one pass (turns);
 *  - engine_queues.c: who has work: the run queues, the polled set of
 *    doorbell FIFOs, the timer heap;
 *  - engine_threads.c: the threads: spinning and sleeping, the stall
 *    monitor that replaces a thread stuck in a guest's memory, start and
 *    stop.
 * Each structure has a lock held for a few instructions only:
 *  - the run queue of contexts with work (each on it at most once; it
 *    holds a reference);
 *  - the polled set: contexts with recent work, whose doorbell FIFOs
 *    spinning threads look at (needs_wakeup 0 while a thread is awake);
 *  - the timer heap: contexts by their earliest timer (lazy: an entry is
 *    refreshed after the context's turn, never on every timer change);
 *  - the registry: epoll's view of contexts, by slot and generation, so
 *    an event retrieved just before a context leaves never touches it.
 */
#ifndef VHCA_DEVICE_ENGINE_STATE_H
#define VHCA_DEVICE_ENGINE_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include "dctx.h"
#include "engine.h"

/* epoll tags: the low bits of data.u64 say what fired. */
enum { TAG_KICK = 0, TAG_WAKE = 1, TAG_PIDFD = 2, TAG_MASK = 3 };

struct engine_thread {
	pthread_t tid;
	bool used;			/* the slot holds a thread */
	atomic_bool done;		/* it has left its loop */
	/* 0 while not in a turn; TURN_CLAIMED once the monitor gave up on it */
	_Atomic uint64_t turn_started;
	_Atomic pid_t os_tid;		/* its kernel task, once running */
	bool claimed;			/* its last turn was claimed (its own) */
};

/*
 * Two classes of queued contexts: WOKEN ones had no work until a doorbell
 * or a packet arrived (a latency-bound exchange: a ping-pong's every
 * step), BUSY ones used their turn and have more (a bulk transfer).
 * Woken contexts go first, so a small message waits for at most the
 * turns already running, not for every bulk context's turn; every
 * RUNQ_WOKEN_BURST woken turns a busy one runs, so no flood of wake-ups
 * starves bulk work.  A context is on at most one queue.
 */
enum { RUNQ_WOKEN = 0, RUNQ_BUSY = 1, RUNQ_CLASSES = 2 };
#define RUNQ_WOKEN_BURST 4u

struct runq {
	struct vhca_dctx *head, *tail;
};

/* turn_started of a turn the monitor found stalled (never a real time). */
#define TURN_CLAIMED UINT64_MAX

struct reg_slot {
	struct vhca_dctx *dctx;		/* NULL: free */
	uint32_t generation;
};

struct engine_state {
	/* run queues (see runq_pop) */
	pthread_mutex_t runq_lock;
	struct runq runq[RUNQ_CLASSES];
	unsigned int woken_in_row;	/* woken turns since a busy one */
	/* polled set */
	pthread_mutex_t active_lock;
	struct vhca_dctx *active_head;
	/* timer heap */
	pthread_mutex_t timer_lock;
	struct vhca_dctx **heap;
	uint32_t heap_len, heap_cap;
	/* registry */
	pthread_mutex_t reg_lock;
	struct reg_slot *reg;
	uint32_t reg_cap;
	/* threads */
	pthread_mutex_t threads_lock;
	struct engine_thread threads[VHCA_ENGINE_MAX_THREADS +
				     VHCA_ENGINE_MAX_EXTRA];
	unsigned int target;		/* threads wanted */
	atomic_uint serving;		/* threads not stalled, not retired */
	atomic_uint awake;		/* threads not in epoll_wait */
	atomic_uint sleepers;		/* threads in epoll_wait */
	pthread_t monitor;
	pthread_mutex_t monitor_lock;
	pthread_cond_t monitor_cond;
	atomic_bool running;
	enum vhca_engine_policy policy;
	int rt_priority;
	int epfd, kick_fd;
};

extern struct engine_state engine;

/* engine.c */
void engine_kick_sleeper(void);
void engine_watch(struct vhca_dctx *dctx);
void engine_handle_events(const struct epoll_event *evs, int n);
bool engine_work_once(struct engine_thread *t, uint64_t *next_deadline);
void engine_trace_contexts(void);

/* engine_queues.c */
void engine_runq_push(struct vhca_dctx *dctx, int cls);
struct vhca_dctx *engine_runq_pop(void);
bool engine_runq_queued(void);
bool engine_runq_unlink(struct vhca_dctx *dctx);
bool engine_fifo_pending(const struct vhca_dctx *dctx);
void engine_set_needs_wakeup(struct vhca_dctx *dctx, uint32_t value);
void engine_active_remove(struct vhca_dctx *dctx);
void engine_active_add(struct vhca_dctx *dctx);
bool engine_poll_active(uint64_t now);
bool engine_prepare_sleep_all(void);
void engine_wake_all_polled(void);
void engine_theap_remove(struct vhca_dctx *dctx);
uint64_t engine_fire_due(uint64_t now, bool *fired);

#endif
