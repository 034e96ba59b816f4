// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Who has work (engine_state.h): the run queues, the polled set of
 * doorbell FIFOs, the timer heap.
 */
#include <stdlib.h>

#include "engine_state.h"

/* ---- run queue ----------------------------------------------------------- */

/* Appends @dctx to queue @cls; the queue takes over its reference. */
void engine_runq_push(struct vhca_dctx *dctx, int cls)
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
		engine_kick_sleeper();
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
struct vhca_dctx *engine_runq_pop(void)
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

bool engine_runq_queued(void)
{
	return __atomic_load_n(&engine.runq[RUNQ_WOKEN].head,
			       __ATOMIC_RELAXED) ||
	       __atomic_load_n(&engine.runq[RUNQ_BUSY].head, __ATOMIC_RELAXED);
}

/* Takes @dctx off the run queues if it is there; true if it was. */
bool engine_runq_unlink(struct vhca_dctx *dctx)
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
				engine_runq_push(dctx, RUNQ_WOKEN);
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

bool engine_fifo_pending(const struct vhca_dctx *dctx)
{
	const struct vhca_ctx_page *page = dctx->ctx_page;

	return atomic_load((const _Atomic uint32_t *)&page->fifo_head) !=
		       __atomic_load_n(&dctx->fifo_tail, __ATOMIC_RELAXED) ||
	       atomic_load((const _Atomic uint32_t *)&page->overflow);
}

void engine_set_needs_wakeup(struct vhca_dctx *dctx, uint32_t value)
{
	atomic_store((_Atomic uint32_t *)&dctx->ctx_page->needs_wakeup, value);
}

/* Caller holds active_lock. */
void engine_active_remove(struct vhca_dctx *dctx)
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
void engine_active_add(struct vhca_dctx *dctx)
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
		engine_set_needs_wakeup(dctx, 0);
	}
	pthread_mutex_unlock(&engine.active_lock);
}

/*
 * Looks at the polled contexts' FIFOs: kicks those with doorbells, drops
 * those quiet for long (their provider writes the eventfd from now on).
 * True if it kicked any.
 */
bool engine_poll_active(uint64_t now)
{
	struct vhca_dctx *dctx, *next;
	bool found = false;

	pthread_mutex_lock(&engine.active_lock);
	for (dctx = engine.active_head; dctx; dctx = next) {
		next = dctx->active_next;
		if (engine_fifo_pending(dctx)) {
			vhca_engine_kick(dctx);
			found = true;
			continue;
		}
		if (now - __atomic_load_n(&dctx->last_work_ns,
					  __ATOMIC_RELAXED) <
		    VHCA_ENGINE_ACTIVE_NS)
			continue;
		engine_active_remove(dctx);
		engine_set_needs_wakeup(dctx, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (engine_fifo_pending(dctx)) {
			vhca_engine_kick(dctx);
			found = true;
		}
	}
	pthread_mutex_unlock(&engine.active_lock);
	return found;
}

/* Every polled context says needs_wakeup (the last thread sleeps). */
bool engine_prepare_sleep_all(void)
{
	bool pending = false;

	pthread_mutex_lock(&engine.active_lock);
	for (struct vhca_dctx *d = engine.active_head; d; d = d->active_next)
		engine_set_needs_wakeup(d, 1);
	atomic_thread_fence(memory_order_seq_cst);
	for (struct vhca_dctx *d = engine.active_head; d; d = d->active_next)
		if (engine_fifo_pending(d)) {
			vhca_engine_kick(d);
			pending = true;
		}
	pthread_mutex_unlock(&engine.active_lock);
	return pending;
}

void engine_wake_all_polled(void)
{
	pthread_mutex_lock(&engine.active_lock);
	for (struct vhca_dctx *d = engine.active_head; d; d = d->active_next)
		engine_set_needs_wakeup(d, 0);
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
void engine_theap_remove(struct vhca_dctx *dctx)
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
uint64_t engine_fire_due(uint64_t now, bool *fired)
{
	struct vhca_dctx *due[32];
	unsigned int n = 0;
	uint64_t next;

	pthread_mutex_lock(&engine.timer_lock);
	while (engine.heap_len && n < 32 &&
	       engine.heap[0]->heap_deadline <= now) {
		due[n] = engine.heap[0];
		engine_theap_remove(due[n]);
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

