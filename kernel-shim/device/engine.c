// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The engine's threads and their scheduling (engine.h).  What a turn
 * does is transport.c's; this file decides who runs, when threads sleep,
 * and keeps stalled threads from taking the device down with them.
 *
 * Structures, each with a lock held for a few instructions only:
 *  - the run queue of contexts with work (each on it at most once; it
 *    holds a reference);
 *  - the polled set: contexts with recent work, whose doorbell FIFOs
 *    spinning threads look at (needs_wakeup 0 while a thread is awake);
 *  - the timer heap: contexts by their earliest timer (lazy: an entry is
 *    refreshed after the context's turn, never on every timer change);
 *  - the registry: epoll's view of contexts, by slot and generation, so
 *    an event retrieved just before a context leaves never touches it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dctx.h"
#include "engine.h"
#include "packet.h"
#include "transport.h"

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

static struct {
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
} engine = {
	.runq_lock = PTHREAD_MUTEX_INITIALIZER,
	.active_lock = PTHREAD_MUTEX_INITIALIZER,
	.timer_lock = PTHREAD_MUTEX_INITIALIZER,
	.reg_lock = PTHREAD_MUTEX_INITIALIZER,
	.threads_lock = PTHREAD_MUTEX_INITIALIZER,
	.monitor_lock = PTHREAD_MUTEX_INITIALIZER,
	.monitor_cond = PTHREAD_COND_INITIALIZER,
	.epfd = -1,
	.kick_fd = -1,
};

uint64_t vhca_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int vhca_engine_parse_policy(const char *name, enum vhca_engine_policy *p)
{
	if (!strcmp(name, "adaptive"))
		*p = VHCA_ENGINE_ADAPTIVE;
	else if (!strcmp(name, "poll"))
		*p = VHCA_ENGINE_POLL;
	else if (!strcmp(name, "event"))
		*p = VHCA_ENGINE_EVENT;
	else
		return -EINVAL;
	return 0;
}

static void kick_sleeper(void)
{
	uint64_t one = 1;

	/* A failed write means a full counter: someone wakes anyway. */
	if (engine.kick_fd >= 0 && write(engine.kick_fd, &one, sizeof(one)) < 0)
		return;
}

/* ---- run queue ----------------------------------------------------------- */

/* Appends @dctx to queue @cls; the queue takes over its reference. */
static void runq_push(struct vhca_dctx *dctx, int cls)
{
	struct runq *q = &engine.runq[cls];

	pthread_mutex_lock(&engine.runq_lock);
	dctx->runq_next = NULL;
	if (q->tail)
		q->tail->runq_next = dctx;
	else
		q->head = dctx;
	q->tail = dctx;
	pthread_mutex_unlock(&engine.runq_lock);
	/* Pairs with the sleeper's fence between sleepers++ and its look. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&engine.sleepers) && !atomic_load(&engine.awake))
		kick_sleeper();
}

/* Unlinks @dctx, found after @prev (NULL: the head) at *@link, from @q. */
static void runq_cut(struct runq *q, struct vhca_dctx **link,
		     struct vhca_dctx *prev, struct vhca_dctx *dctx)
{
	*link = dctx->runq_next;
	if (q->tail == dctx)
		q->tail = prev;
	dctx->runq_next = NULL;
}

/* The first context of @q whose function has a turn to spare, taken. */
static struct vhca_dctx *runq_take(struct runq *q)
{
	struct vhca_dctx **link, *prev = NULL, *dctx;

	for (link = &q->head; (dctx = *link);
	     prev = dctx, link = &dctx->runq_next) {
		unsigned int turns = atomic_load(&dctx->dev->engine_turns);

		/* One tenant never holds more than its share of threads. */
		if (turns >= VHCA_ENGINE_VF_TURNS)
			continue;
		runq_cut(q, link, prev, dctx);
		atomic_fetch_add(&dctx->dev->engine_turns, 1);
		return dctx;
	}
	return NULL;
}

/*
 * The next context to run, taken off its queue (with the queue's
 * reference), or NULL: woken ones first, a busy one after every
 * RUNQ_WOKEN_BURST of them.
 */
static struct vhca_dctx *runq_pop(void)
{
	struct vhca_dctx *dctx = NULL;

	pthread_mutex_lock(&engine.runq_lock);
	if (engine.woken_in_row < RUNQ_WOKEN_BURST)
		dctx = runq_take(&engine.runq[RUNQ_WOKEN]);
	if (dctx) {
		engine.woken_in_row++;
	} else {
		dctx = runq_take(&engine.runq[RUNQ_BUSY]);
		if (dctx)
			engine.woken_in_row = 0;
		else if ((dctx = runq_take(&engine.runq[RUNQ_WOKEN])))
			engine.woken_in_row = 1;
	}
	pthread_mutex_unlock(&engine.runq_lock);
	return dctx;
}

static bool runq_queued(void)
{
	return __atomic_load_n(&engine.runq[RUNQ_WOKEN].head,
			       __ATOMIC_RELAXED) ||
	       __atomic_load_n(&engine.runq[RUNQ_BUSY].head, __ATOMIC_RELAXED);
}

/* Takes @dctx off the run queues if it is there; true if it was. */
static bool runq_unlink(struct vhca_dctx *dctx)
{
	bool found = false;

	pthread_mutex_lock(&engine.runq_lock);
	for (int cls = 0; cls < RUNQ_CLASSES && !found; cls++) {
		struct runq *q = &engine.runq[cls];
		struct vhca_dctx **link, *prev = NULL;

		for (link = &q->head; *link;
		     prev = *link, link = &(*link)->runq_next) {
			if (*link != dctx)
				continue;
			runq_cut(q, link, prev, dctx);
			atomic_store(&dctx->sched, VHCA_SCHED_IDLE);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&engine.runq_lock);
	return found;
}

void vhca_engine_kick(struct vhca_dctx *dctx)
{
	int s = atomic_load(&dctx->sched);

	for (;;) {
		if (s == VHCA_SCHED_IDLE) {
			if (atomic_compare_exchange_weak(&dctx->sched, &s,
							 VHCA_SCHED_QUEUED)) {
				vhca_dctx_get(dctx);
				runq_push(dctx, RUNQ_WOKEN);
				return;
			}
		} else if (s == VHCA_SCHED_RUNNING) {
			if (atomic_compare_exchange_weak(&dctx->sched, &s,
							 VHCA_SCHED_AGAIN))
				return;
		} else {
			return;	/* queued, or will be */
		}
	}
}

/* ---- polled set ---------------------------------------------------------- */

static bool fifo_pending(const struct vhca_dctx *dctx)
{
	const struct vhca_ctx_page *page = dctx->ctx_page;

	return atomic_load((const _Atomic uint32_t *)&page->fifo_head) !=
		       __atomic_load_n(&dctx->fifo_tail, __ATOMIC_RELAXED) ||
	       atomic_load((const _Atomic uint32_t *)&page->overflow);
}

static void set_needs_wakeup(struct vhca_dctx *dctx, uint32_t value)
{
	atomic_store((_Atomic uint32_t *)&dctx->ctx_page->needs_wakeup, value);
}

/* Caller holds active_lock. */
static void active_remove(struct vhca_dctx *dctx)
{
	if (!dctx->polled)
		return;
	if (dctx->active_prev)
		dctx->active_prev->active_next = dctx->active_next;
	else
		engine.active_head = dctx->active_next;
	if (dctx->active_next)
		dctx->active_next->active_prev = dctx->active_prev;
	dctx->active_next = dctx->active_prev = NULL;
	dctx->polled = false;
}

/* After a turn: a context with a doorbell page is polled for a while. */
static void active_add(struct vhca_dctx *dctx)
{
	if (!dctx->ctx_page || dctx->polled)
		return;
	pthread_mutex_lock(&engine.active_lock);
	if (!dctx->polled && !dctx->dead && dctx->attached) {
		dctx->polled = true;
		dctx->active_prev = NULL;
		dctx->active_next = engine.active_head;
		if (engine.active_head)
			engine.active_head->active_prev = dctx;
		engine.active_head = dctx;
		set_needs_wakeup(dctx, 0);
	}
	pthread_mutex_unlock(&engine.active_lock);
}

/*
 * Looks at the polled contexts' FIFOs: kicks those with doorbells, drops
 * those quiet for long (their provider writes the eventfd from now on).
 * True if it kicked any.
 */
static bool poll_active(uint64_t now)
{
	struct vhca_dctx *dctx, *next;
	bool found = false;

	pthread_mutex_lock(&engine.active_lock);
	for (dctx = engine.active_head; dctx; dctx = next) {
		next = dctx->active_next;
		if (fifo_pending(dctx)) {
			vhca_engine_kick(dctx);
			found = true;
			continue;
		}
		if (now - __atomic_load_n(&dctx->last_work_ns,
					  __ATOMIC_RELAXED) <
		    VHCA_ENGINE_ACTIVE_NS)
			continue;
		active_remove(dctx);
		set_needs_wakeup(dctx, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (fifo_pending(dctx)) {
			vhca_engine_kick(dctx);
			found = true;
		}
	}
	pthread_mutex_unlock(&engine.active_lock);
	return found;
}

/* Every polled context says needs_wakeup (the last thread sleeps). */
static bool prepare_sleep_all(void)
{
	bool pending = false;

	pthread_mutex_lock(&engine.active_lock);
	for (struct vhca_dctx *d = engine.active_head; d; d = d->active_next)
		set_needs_wakeup(d, 1);
	atomic_thread_fence(memory_order_seq_cst);
	for (struct vhca_dctx *d = engine.active_head; d; d = d->active_next)
		if (fifo_pending(d)) {
			vhca_engine_kick(d);
			pending = true;
		}
	pthread_mutex_unlock(&engine.active_lock);
	return pending;
}

static void wake_all_polled(void)
{
	pthread_mutex_lock(&engine.active_lock);
	for (struct vhca_dctx *d = engine.active_head; d; d = d->active_next)
		set_needs_wakeup(d, 0);
	pthread_mutex_unlock(&engine.active_lock);
}

/* ---- timer heap ------------------------------------------------------------ */

static void theap_swap(uint32_t a, uint32_t b)
{
	struct vhca_dctx *t = engine.heap[a];

	engine.heap[a] = engine.heap[b];
	engine.heap[b] = t;
	engine.heap[a]->heap_index = a;
	engine.heap[b]->heap_index = b;
}

static void theap_up(uint32_t i)
{
	while (i && engine.heap[i]->heap_deadline <
			    engine.heap[(i - 1) / 2]->heap_deadline) {
		theap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void theap_down(uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < engine.heap_len &&
		    engine.heap[l]->heap_deadline < engine.heap[m]->heap_deadline)
			m = l;
		if (r < engine.heap_len &&
		    engine.heap[r]->heap_deadline < engine.heap[m]->heap_deadline)
			m = r;
		if (m == i)
			return;
		theap_swap(i, m);
		i = m;
	}
}

/* Caller holds timer_lock; the heap's reference goes to the caller. */
static void theap_remove(struct vhca_dctx *dctx)
{
	uint32_t i = (uint32_t)dctx->heap_index;

	engine.heap_len--;
	if (i != engine.heap_len) {
		engine.heap[i] = engine.heap[engine.heap_len];
		engine.heap[i]->heap_index = i;
		theap_down(i);
		theap_up(i);
	}
	dctx->heap_index = -1;
}

/* Room for one more heap entry; caller holds timer_lock. */
static bool theap_reserve(void)
{
	struct vhca_dctx **grown;
	uint32_t cap;

	if (engine.heap_len < engine.heap_cap)
		return true;
	cap = engine.heap_cap ? 2 * engine.heap_cap : 64;
	grown = realloc(engine.heap, cap * sizeof(*grown));
	if (!grown)
		return false;
	engine.heap = grown;
	engine.heap_cap = cap;
	return true;
}

void vhca_engine_set_deadline(struct vhca_dctx *dctx, uint64_t deadline)
{
	if (!deadline)
		return;		/* lazy: a stale entry fires harmlessly */
	pthread_mutex_lock(&engine.timer_lock);
	if (dctx->dead) {
		/* detached: no new entries */
	} else if (dctx->heap_index >= 0) {
		if (deadline < dctx->heap_deadline) {
			dctx->heap_deadline = deadline;
			theap_up((uint32_t)dctx->heap_index);
		}
	} else if (theap_reserve()) {
		vhca_dctx_get(dctx);
		dctx->heap_deadline = deadline;
		dctx->heap_index = engine.heap_len;
		engine.heap[engine.heap_len++] = dctx;
		theap_up((uint32_t)dctx->heap_index);
	}
	/* Out of memory: its next turn (a doorbell, a packet) tries again. */
	pthread_mutex_unlock(&engine.timer_lock);
}

/* Kicks the contexts whose timers are due; the next deadline, or 0. */
static uint64_t fire_due(uint64_t now, bool *fired)
{
	struct vhca_dctx *due[32];
	unsigned int n = 0;
	uint64_t next;

	pthread_mutex_lock(&engine.timer_lock);
	while (engine.heap_len && n < 32 &&
	       engine.heap[0]->heap_deadline <= now) {
		due[n] = engine.heap[0];
		theap_remove(due[n]);
		n++;
	}
	next = engine.heap_len ? engine.heap[0]->heap_deadline : 0;
	pthread_mutex_unlock(&engine.timer_lock);
	for (unsigned int i = 0; i < n; i++) {
		vhca_engine_kick(due[i]);
		vhca_dctx_put(due[i]);
	}
	if (n)
		*fired = true;
	return n == 32 ? now : next;
}

/* ---- registry and epoll ---------------------------------------------------- */

static uint64_t reg_tag(uint32_t slot, uint32_t generation, unsigned int tag)
{
	return (uint64_t)generation << 32 | (uint64_t)slot << 2 | tag;
}

/* The live context an epoll tag names, referenced, or NULL. */
static struct vhca_dctx *reg_lookup(uint64_t data)
{
	uint32_t slot = (uint32_t)(data >> 2) & 0x3fffffff;
	uint32_t generation = (uint32_t)(data >> 32);
	struct vhca_dctx *dctx = NULL;

	pthread_mutex_lock(&engine.reg_lock);
	if (slot < engine.reg_cap && engine.reg[slot].dctx &&
	    engine.reg[slot].generation == generation) {
		dctx = engine.reg[slot].dctx;
		vhca_dctx_get(dctx);
	}
	pthread_mutex_unlock(&engine.reg_lock);
	return dctx;
}

/* Watches the context's fds; caller holds reg_lock. */
static void watch(struct vhca_dctx *dctx)
{
	uint32_t slot = dctx->reg_slot, gen = engine.reg[slot].generation;
	struct epoll_event ev;

	if (engine.epfd < 0)
		return;
	/*
	 * Edge-triggered and never read: every write to an eventfd is a new
	 * edge, and the guest shares the file, so a read of ours could block
	 * if it emptied the counter first.
	 */
	if (dctx->wake_fd >= 0) {
		ev = (struct epoll_event){
			.events = EPOLLIN | EPOLLET,
			.data.u64 = reg_tag(slot, gen, TAG_WAKE),
		};
		epoll_ctl(engine.epfd, EPOLL_CTL_ADD, dctx->wake_fd, &ev);
	}
	if (dctx->owner_pidfd >= 0) {
		ev = (struct epoll_event){
			.events = EPOLLIN,
			.data.u64 = reg_tag(slot, gen, TAG_PIDFD),
		};
		epoll_ctl(engine.epfd, EPOLL_CTL_ADD, dctx->owner_pidfd, &ev);
	}
}

int vhca_engine_attach(struct vhca_dctx *dctx, int owner_pidfd)
{
	uint32_t slot;

	pthread_mutex_lock(&engine.reg_lock);
	for (slot = 0; slot < engine.reg_cap && engine.reg[slot].dctx; slot++)
		;
	if (slot == engine.reg_cap) {
		uint32_t cap = engine.reg_cap ? 2 * engine.reg_cap : 64;
		struct reg_slot *grown =
			realloc(engine.reg, cap * sizeof(*grown));

		if (!grown) {
			pthread_mutex_unlock(&engine.reg_lock);
			return -ENOMEM;
		}
		memset(grown + engine.reg_cap, 0,
		       (cap - engine.reg_cap) * sizeof(*grown));
		engine.reg = grown;
		engine.reg_cap = cap;
	}
	engine.reg[slot].dctx = dctx;
	engine.reg[slot].generation++;
	dctx->reg_slot = slot;
	dctx->owner_pidfd = owner_pidfd;
	dctx->attached = true;
	watch(dctx);
	pthread_mutex_unlock(&engine.reg_lock);
	if (vhca_trace_enabled)
		fprintf(stderr, "vhca: ctx %u %s attached in slot %u\n", dctx->id,
			dctx->dev->name, slot);
	if (dctx->ctx_page)
		set_needs_wakeup(dctx, 1);
	vhca_engine_kick(dctx);	/* doorbells rung before we watched */
	return 0;
}

void vhca_engine_detach(struct vhca_dctx *dctx)
{
	bool in_heap;

	pthread_mutex_lock(&engine.active_lock);
	if (!dctx->attached) {
		pthread_mutex_unlock(&engine.active_lock);
		return;
	}
	/* Under active_lock: no turn ending now puts it back in the set. */
	dctx->attached = false;
	active_remove(dctx);
	pthread_mutex_unlock(&engine.active_lock);
	pthread_mutex_lock(&engine.reg_lock);
	if (engine.epfd >= 0) {
		if (dctx->wake_fd >= 0)
			epoll_ctl(engine.epfd, EPOLL_CTL_DEL, dctx->wake_fd,
				  NULL);
		if (dctx->owner_pidfd >= 0)
			epoll_ctl(engine.epfd, EPOLL_CTL_DEL,
				  dctx->owner_pidfd, NULL);
	}
	engine.reg[dctx->reg_slot].dctx = NULL;
	pthread_mutex_unlock(&engine.reg_lock);
	if (vhca_trace_enabled)
		fprintf(stderr, "vhca: ctx %u %s detached from slot %u\n",
			dctx->id, dctx->dev->name, dctx->reg_slot);
	pthread_mutex_lock(&engine.timer_lock);
	dctx->dead = true;
	in_heap = dctx->heap_index >= 0;
	if (in_heap)
		theap_remove(dctx);
	pthread_mutex_unlock(&engine.timer_lock);
	if (in_heap)
		vhca_dctx_put(dctx);
	/* Off the run queue, if it waits there; a running turn lets go. */
	if (runq_unlink(dctx))
		vhca_dctx_put(dctx);
}

/* Handles what epoll reported. */
static void handle_events(const struct epoll_event *evs, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64 & TAG_MASK;
		struct vhca_dctx *dctx;
		uint64_t count;

		if (tag == TAG_KICK) {
			/* Nonblocking: a kick another thread read is gone. */
			if (read(engine.kick_fd, &count, sizeof(count)) < 0)
				continue;
			continue;
		}
		dctx = reg_lookup(evs[i].data.u64);
		if (!dctx)
			continue;
		if (tag == TAG_PIDFD)
			__atomic_store_n(&dctx->owner_exited, true,
					 __ATOMIC_RELEASE);
		vhca_engine_kick(dctx);
		vhca_dctx_put(dctx);
	}
}

/* ---- turns ------------------------------------------------------------------- */

/* Runs a turn of @dctx (popped, with the queue's reference). */
static void run_turn(struct engine_thread *t, struct vhca_dctx *dctx)
{
	uint64_t deadline = 0, now;
	bool more = false, kicked = false;
	int s;

	atomic_store(&dctx->sched, VHCA_SCHED_RUNNING);
	/* A command is waiting for the lock: let it in first. */
	while (atomic_load(&dctx->cmd_waiting))
		sched_yield();
	now = vhca_now_ns();
	if (t)
		atomic_store(&t->turn_started, now);
	pthread_mutex_lock(&dctx->lock);
	if (!dctx->dead || dctx->owner_exited) {
		more = vhca_transport_turn(dctx);
		deadline = dctx->dead ? 0 : vhca_transport_deadline(dctx);
	}
	__atomic_store_n(&dctx->last_work_ns, now, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&dctx->lock);
	/* Ended: whether the monitor claimed it meanwhile (monitor_main). */
	if (t && atomic_exchange(&t->turn_started, 0) == TURN_CLAIMED)
		t->claimed = true;
	atomic_fetch_sub(&dctx->dev->engine_turns, 1);
	vhca_engine_set_deadline(dctx, deadline);
	if (!dctx->dead)
		active_add(dctx);

	s = VHCA_SCHED_RUNNING;
	if (!more && !dctx->dead &&
	    !atomic_compare_exchange_strong(&dctx->sched, &s, VHCA_SCHED_IDLE))
		kicked = true;	/* new work arrived after the turn's last look */
	if ((more || kicked) && !dctx->dead) {
		atomic_store(&dctx->sched, VHCA_SCHED_QUEUED);
		/* With the reference it had; busy if its turn left work. */
		runq_push(dctx, more ? RUNQ_BUSY : RUNQ_WOKEN);
		return;
	}
	if (dctx->dead)
		atomic_store(&dctx->sched, VHCA_SCHED_IDLE);
	vhca_dctx_put(dctx);
}

/* A thread looks at timers and doorbells at least this often. */
#define ENGINE_BATCH_NS 20000ULL

/* Timers, the polled set and the run queue once; true if any work ran. */
static bool work_once(struct engine_thread *t, uint64_t *next_deadline)
{
	struct vhca_dctx *dctx;
	bool found = false;
	uint64_t now = vhca_now_ns();

	*next_deadline = fire_due(now, &found);
	found |= poll_active(now);
	/*
	 * A batch bounded in turns and in time, so the timers and the
	 * doorbells of the polled set are seen again soon: with every
	 * thread in bulk turns, a doorbell waits for the end of a batch
	 * (64 bulk turns held another tenant's round trips at 1.4 ms).
	 */
	for (int i = 0; i < 64 && (dctx = runq_pop()); i++) {
		run_turn(t, dctx);
		found = true;
		if ((t && t->claimed) ||
		    vhca_now_ns() - now >= ENGINE_BATCH_NS)
			break;
	}
	return found;
}

bool vhca_engine_poll_once(void)
{
	struct epoll_event evs[32];
	uint64_t next;
	bool found;
	int n;

	/* Without threads, nothing watches the eventfds: look at them all. */
	pthread_mutex_lock(&engine.reg_lock);
	for (uint32_t i = 0; i < engine.reg_cap; i++) {
		struct vhca_dctx *dctx = engine.reg[i].dctx;

		if (dctx && dctx->ctx_page && fifo_pending(dctx))
			vhca_engine_kick(dctx);
	}
	pthread_mutex_unlock(&engine.reg_lock);
	if (engine.epfd >= 0) {
		n = epoll_wait(engine.epfd, evs, 32, 0);
		if (n > 0)
			handle_events(evs, n);
	}
	found = work_once(NULL, &next);
	return found;
}

/* ---- threads ----------------------------------------------------------------- */

/*
 * Adaptive spinning pays only while a CPU is spare: when the guests'
 * busy pollers hold every CPU, a spinning engine keeps the poller that
 * shares its CPU from running (or waits for time slices itself), where a
 * sleeping one is woken at once by the doorbell.  So a thread spins only
 * while the runnable tasks, itself included, fit the CPUs; the count
 * comes from /proc/loadavg (2 us a read, so at most every 100 us).
 */
#define LOAD_CHECK_NS 100000ULL
/* Spinning threads look at epoll this often (eventfds of idle contexts). */
#define EPOLL_PEEK_NS 20000ULL

struct spin_state {
	uint64_t last_work;
	uint64_t load_checked;
	uint64_t epoll_peeked;
	bool cpu_spare;
	int loadavg_fd;
	long cpus;
};

/* Runnable tasks on the machine (the 4th field's numerator), or -1. */
static long runnable_tasks(int loadavg_fd)
{
	char text[128];
	ssize_t n = pread(loadavg_fd, text, sizeof(text) - 1, 0);
	long running = -1;

	if (n <= 0)
		return -1;
	text[n] = 0;
	if (sscanf(text, "%*s %*s %*s %ld/", &running) != 1)
		return -1;
	return running;
}

/* The eventfds of contexts that are not polled, every EPOLL_PEEK_NS. */
static void peek_epoll(struct spin_state *st, uint64_t now)
{
	struct epoll_event evs[32];
	int n;

	if (now - st->epoll_peeked < EPOLL_PEEK_NS)
		return;
	st->epoll_peeked = now;
	n = epoll_wait(engine.epfd, evs, 32, 0);
	if (n > 0)
		handle_events(evs, n);
}

static bool keep_spinning(struct spin_state *st, uint64_t now)
{
	if (engine.policy == VHCA_ENGINE_POLL)
		return true;
	if (engine.policy == VHCA_ENGINE_EVENT ||
	    now - st->last_work >= VHCA_ENGINE_SPIN_NS)
		return false;
	if (now - st->load_checked >= LOAD_CHECK_NS) {
		long running = runnable_tasks(st->loadavg_fd);

		st->cpu_spare = running >= 0 && running <= st->cpus;
		st->load_checked = now;
	}
	return st->cpu_spare;
}

/*
 * This thread stops being awake (to sleep or to retire).  The last one
 * awake arms every polled context's doorbell.  True if work is pending
 * that someone awake must do.
 */
static bool leave_awake(void)
{
	bool last = atomic_fetch_sub(&engine.awake, 1) == 1;

	atomic_thread_fence(memory_order_seq_cst);
	return (last && prepare_sleep_all()) ||
	       runq_queued();
}

/* Sleeps in epoll until a doorbell, a kick, a pidfd or @deadline. */
static void sleep_until_woken(uint64_t deadline)
{
	struct epoll_event evs[32];
	struct timespec ts, *timeout = NULL;
	int n;

	atomic_fetch_add(&engine.sleepers, 1);
	if (leave_awake()) {
		atomic_fetch_add(&engine.awake, 1);
		atomic_fetch_sub(&engine.sleepers, 1);
		return;
	}
	if (deadline) {
		uint64_t now = vhca_now_ns(), wait;

		wait = deadline > now ? deadline - now : 0;
		ts.tv_sec = (time_t)(wait / 1000000000ULL);
		ts.tv_nsec = (long)(wait % 1000000000ULL);
		timeout = &ts;
	}
	n = epoll_pwait2(engine.epfd, evs, 32, timeout, NULL);
	atomic_fetch_sub(&engine.sleepers, 1);
	if (atomic_fetch_add(&engine.awake, 1) == 0)
		wake_all_polled();
	if (n > 0)
		handle_events(evs, n);
}

/*
 * A short EEVDF slice (Linux 6.12+; ignored before) lets a woken thread
 * preempt a busy-polling guest at once instead of at the end of its
 * slice: the doorbell-to-execution latency becomes the wakeup latency.
 */
#define ENGINE_SLICE_NS 100000ULL

/*
 * struct sched_attr of the sched_setattr(2) ABI (SCHED_ATTR_SIZE_VER0);
 * <linux/sched/types.h> clashes with glibc's <sched.h>.
 */
struct engine_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

static void request_short_slice(void)
{
	struct engine_sched_attr attr = {
		.size = sizeof(attr),
		.sched_policy = SCHED_OTHER,
		.sched_runtime = ENGINE_SLICE_NS,
	};

	/* Best effort; the default slice only costs latency. */
	if (syscall(SYS_sched_setattr, 0, &attr, 0))
		return;
}

/*
 * A thread that stops being awake for good (a replacement retiring, or
 * the engine stopping) leaves as a sleeper would: if it was the last one
 * awake, the polled contexts' doorbells are armed again (or their
 * providers would skip the eventfd that wakes the sleepers), and work it
 * leaves queued wakes one of them (runq_push kicked no sleeper while we
 * were awake).  Without this a context requeued mid-message by the last
 * turn of a retiring thread waited for some other doorbell: a UC
 * ping-pong, which has no timers to fall back on, hung under load.
 */
static void retire_awake(void)
{
	if (leave_awake())
		kick_sleeper();
}

/*
 * A stalled thread came back: in service again, or retired.  The
 * monitor claimed its turn, took it out of the serving count and of the
 * awake set under threads_lock; taking that lock here waits for it to
 * have done so, so each happens once and in that order.
 */
static bool retire_if_spare(struct engine_thread *t)
{
	bool retire;

	if (!t->claimed)
		return false;
	t->claimed = false;
	pthread_mutex_lock(&engine.threads_lock);
	retire = atomic_load(&engine.serving) >= engine.target;
	if (!retire)
		atomic_fetch_add(&engine.serving, 1);
	pthread_mutex_unlock(&engine.threads_lock);
	/*
	 * Back in the awake set, if only to leave through retire_awake():
	 * its turn's active_add() may have cleared a doorbell's
	 * needs_wakeup after the monitor's leave_awake() armed them, and
	 * the last thread to leave must arm them again.
	 */
	if (atomic_fetch_add(&engine.awake, 1) == 0)
		wake_all_polled();
	return retire;
}

static void *engine_main(void *arg)
{
	struct engine_thread *t = arg;
	struct spin_state st = {
		.last_work = vhca_now_ns(),
		.loadavg_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC),
		.cpus = sysconf(_SC_NPROCESSORS_ONLN),
	};

	atomic_store(&t->os_tid, (pid_t)syscall(SYS_gettid));
	if (engine.policy != VHCA_ENGINE_POLL)
		request_short_slice();
	if (engine.rt_priority > 0) {
		struct sched_param sp = { .sched_priority = engine.rt_priority };

		/* Best effort: needs root (CAP_SYS_NICE). */
		pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	}
	atomic_fetch_add(&engine.awake, 1);
	while (atomic_load_explicit(&engine.running, memory_order_relaxed)) {
		uint64_t deadline, now;

		if (work_once(t, &deadline)) {
			st.last_work = vhca_now_ns();
			/*
			 * Busy threads look at epoll too: a context that left
			 * the polled set rings its eventfd, and with every
			 * thread kept busy by other tenants nobody would sleep
			 * in epoll to see it (test_sec_fairness: 1.4 ms round
			 * trips beside 256 MiB WRITEs, 0.26 ms alone).
			 */
			peek_epoll(&st, st.last_work);
			if (retire_if_spare(t))
				break;
			continue;
		}
		if (retire_if_spare(t))
			break;
		now = vhca_now_ns();
		if (keep_spinning(&st, now)) {
			peek_epoll(&st, now);
			continue;
		}
		sleep_until_woken(deadline);
		st.last_work = vhca_now_ns();
	}
	retire_awake();
	if (st.loadavg_fd >= 0)
		close(st.loadavg_fd);
	atomic_store(&t->done, true);
	return NULL;
}

/* Starts one more thread; caller holds threads_lock. */
static int spawn_locked(void)
{
	for (unsigned int i = 0; i < sizeof(engine.threads) /
					     sizeof(engine.threads[0]);
	     i++) {
		struct engine_thread *t = &engine.threads[i];
		int ret;

		if (t->used)
			continue;
		memset(t, 0, sizeof(*t));
		t->used = true;
		ret = pthread_create(&t->tid, NULL, engine_main, t);
		if (ret) {
			t->used = false;
			return -ret;
		}
		pthread_setname_np(t->tid, "vhca-engine");
		atomic_fetch_add(&engine.serving, 1);
		return 0;
	}
	return -EAGAIN;
}

/* Joins threads that retired; caller holds threads_lock. */
static void reap_retired_locked(void)
{
	for (unsigned int i = 0; i < sizeof(engine.threads) /
					     sizeof(engine.threads[0]);
	     i++) {
		struct engine_thread *t = &engine.threads[i];

		if (t->used && atomic_load(&t->done)) {
			pthread_join(t->tid, NULL);
			t->used = false;
		}
	}
}

/* Every 10 ms: a turn stuck for long gets its thread replaced. */
/*
 * Is the task @tid of this process waiting (asleep in the kernel: a page
 * fault on a slow filesystem, a userfaultfd, a lock), not running?  A
 * turn that is merely preempted (state R) is not stalled: another thread
 * would only compete with it for the same CPUs.  Unknown counts as
 * waiting, so a stall is never missed.
 */
static bool task_waiting(pid_t tid)
{
	char path[64], text[512], *state;
	ssize_t n;
	int fd;

	if (tid <= 0)
		return true;
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return true;
	text[n] = 0;
	/* "tid (comm) S ...": the comm may hold anything but the last ')'. */
	state = strrchr(text, ')');
	return !state || state[1] != ' ' || state[2] != 'R';
}

/*
 * With VHCA_TRACE: every 5 s, each watched context's doorbell state, for
 * telling a lost doorbell from a lost completion.
 */
static void trace_contexts(void)
{
	pthread_mutex_lock(&engine.reg_lock);
	for (uint32_t slot = 0; slot < engine.reg_cap; slot++) {
		struct vhca_dctx *d = engine.reg[slot].dctx;
		const struct vhca_ctx_page *page;

		if (!d)
			continue;
		if (!d->ctx_page) {
			fprintf(stderr, "vhca: ctx %u %s (no doorbells)\n",
				d->id, d->dev->name);
			continue;
		}
		page = d->ctx_page;
		fprintf(stderr,
			"vhca: ctx %u %s fifo head %u tail %u (ours %u) needs_wakeup %u overflow %u polled %d sched %d awake %u sleepers %u\n",
			d->id, d->dev->name,
			__atomic_load_n(&page->fifo_head, __ATOMIC_RELAXED),
			__atomic_load_n(&page->fifo_tail, __ATOMIC_RELAXED),
			__atomic_load_n(&d->fifo_tail, __ATOMIC_RELAXED),
			__atomic_load_n(&page->needs_wakeup, __ATOMIC_RELAXED),
			__atomic_load_n(&page->overflow, __ATOMIC_RELAXED),
			(int)__atomic_load_n(&d->polled, __ATOMIC_RELAXED),
			atomic_load(&d->sched), atomic_load(&engine.awake),
			atomic_load(&engine.sleepers));
	}
	pthread_mutex_unlock(&engine.reg_lock);
}

static void *monitor_main(void *arg)
{
	uint64_t traced = 0;

	(void)arg;
	pthread_mutex_lock(&engine.monitor_lock);
	while (atomic_load(&engine.running)) {
		struct timespec deadline;
		uint64_t now;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 10 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&engine.monitor_cond,
				       &engine.monitor_lock, &deadline);
		if (!atomic_load(&engine.running))
			break;
		now = vhca_now_ns();
		if (vhca_trace_enabled && now - traced > 5000000000ULL) {
			trace_contexts();
			traced = now;
		}
		pthread_mutex_lock(&engine.threads_lock);
		reap_retired_locked();
		for (unsigned int i = 0; i < sizeof(engine.threads) /
						     sizeof(engine.threads[0]);
		     i++) {
			struct engine_thread *t = &engine.threads[i];
			uint64_t started = atomic_load(&t->turn_started);

			if (!t->used || !started || started == TURN_CLAIMED ||
			    now - started < VHCA_ENGINE_STALL_NS ||
			    !task_waiting(atomic_load(&t->os_tid)))
				continue;
			/*
			 * Claim that very turn: if it ended meanwhile (and
			 * the thread perhaps sleeps in epoll, out of the awake
			 * set already), the claim fails and nothing changes.
			 */
			if (!atomic_compare_exchange_strong(&t->turn_started,
							    &started,
							    TURN_CLAIMED))
				continue;
			atomic_fetch_sub(&engine.serving, 1);
			/*
			 * A stalled thread polls nothing: it leaves the awake
			 * set, so the doorbells are armed if it was the last
			 * and queued work wakes a sleeper (counted as awake,
			 * it kept every other thread asleep until a timer:
			 * a clean pair's round trips took 4-8 ms beside a
			 * stalled tenant).
			 */
			if (leave_awake())
				kick_sleeper();
		}
		while (atomic_load(&engine.serving) < engine.target &&
		       !spawn_locked())
			;
		pthread_mutex_unlock(&engine.threads_lock);
	}
	pthread_mutex_unlock(&engine.monitor_lock);
	return NULL;
}

unsigned int vhca_engine_threads(void)
{
	return atomic_load(&engine.serving);
}

int vhca_engine_start(const struct vhca_engine_config *config)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_KICK };
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int ret = 0;

	engine.epfd = epoll_create1(EPOLL_CLOEXEC);
	engine.kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (engine.epfd < 0 || engine.kick_fd < 0 ||
	    epoll_ctl(engine.epfd, EPOLL_CTL_ADD, engine.kick_fd, &ev)) {
		ret = -errno;
		goto err;
	}
	engine.policy = config->policy;
	engine.rt_priority = config->rt_priority;
	engine.target = config->threads;
	if (!engine.target)
		engine.target = cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned int)cpus;
	if (engine.target > VHCA_ENGINE_MAX_THREADS)
		engine.target = VHCA_ENGINE_MAX_THREADS;
	/* Contexts attached before the threads are watched now. */
	pthread_mutex_lock(&engine.reg_lock);
	for (uint32_t i = 0; i < engine.reg_cap; i++)
		if (engine.reg[i].dctx)
			watch(engine.reg[i].dctx);
	pthread_mutex_unlock(&engine.reg_lock);
	atomic_store(&engine.running, true);
	pthread_mutex_lock(&engine.threads_lock);
	for (unsigned int i = 0; i < engine.target && !ret; i++)
		ret = spawn_locked();
	pthread_mutex_unlock(&engine.threads_lock);
	if (!ret)
		ret = -pthread_create(&engine.monitor, NULL, monitor_main, NULL);
	if (ret) {
		vhca_engine_stop();
		return ret;
	}
	return 0;
err:
	if (engine.epfd >= 0)
		close(engine.epfd);
	if (engine.kick_fd >= 0)
		close(engine.kick_fd);
	engine.epfd = engine.kick_fd = -1;
	return ret;
}

void vhca_engine_stop(void)
{
	if (!atomic_exchange(&engine.running, false))
		return;
	pthread_mutex_lock(&engine.monitor_lock);
	pthread_cond_broadcast(&engine.monitor_cond);
	pthread_mutex_unlock(&engine.monitor_lock);
	pthread_join(engine.monitor, NULL);
	for (unsigned int i = 0; i < sizeof(engine.threads) /
					     sizeof(engine.threads[0]);
	     i++) {
		struct engine_thread *t = &engine.threads[i];

		if (!t->used)
			continue;
		/* Every sleeper needs its own kick; one read may take two. */
		while (!atomic_load(&t->done)) {
			kick_sleeper();
			usleep(1000);
		}
		pthread_join(t->tid, NULL);
		t->used = false;
	}
	atomic_store(&engine.serving, 0);
	close(engine.epfd);
	close(engine.kick_fd);
	engine.epfd = engine.kick_fd = -1;
}
