// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The engine (engine.h): its registry of contexts and epoll, attach and
 * detach, and one pass of a thread over timers, doorbells and the run
 * queue.  What a turn does is transport.c's; who has work is
 * engine_queues.c's; the threads are engine_threads.c's (engine_state.h).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_state.h"
#include "packet.h"
#include "transport.h"

struct engine_state engine = {
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

void engine_kick_sleeper(void)
{
	uint64_t one = 1;

	/* A failed write means a full counter: someone wakes anyway. */
	if (engine.kick_fd >= 0 && write(engine.kick_fd, &one, sizeof(one)) < 0)
		return;
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
void engine_watch(struct vhca_dctx *dctx)
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
	engine_watch(dctx);
	pthread_mutex_unlock(&engine.reg_lock);
	if (vhca_trace_enabled)
		fprintf(stderr, "vhca: ctx %u %s attached in slot %u\n", dctx->id,
			dctx->dev->name, slot);
	if (dctx->ctx_page)
		engine_set_needs_wakeup(dctx, 1);
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
	engine_active_remove(dctx);
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
		engine_theap_remove(dctx);
	pthread_mutex_unlock(&engine.timer_lock);
	if (in_heap)
		vhca_dctx_put(dctx);
	/* Off the run queue, if it waits there; a running turn lets go. */
	if (engine_runq_unlink(dctx))
		vhca_dctx_put(dctx);
}

/* Handles what epoll reported. */
void engine_handle_events(const struct epoll_event *evs, int n)
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
		engine_active_add(dctx);

	s = VHCA_SCHED_RUNNING;
	if (!more && !dctx->dead &&
	    !atomic_compare_exchange_strong(&dctx->sched, &s, VHCA_SCHED_IDLE))
		kicked = true;	/* new work arrived after the turn's last look */
	if ((more || kicked) && !dctx->dead) {
		atomic_store(&dctx->sched, VHCA_SCHED_QUEUED);
		/* With the reference it had; busy if its turn left work. */
		engine_runq_push(dctx, more ? RUNQ_BUSY : RUNQ_WOKEN);
		return;
	}
	if (dctx->dead)
		atomic_store(&dctx->sched, VHCA_SCHED_IDLE);
	vhca_dctx_put(dctx);
}

/* A thread looks at timers and doorbells at least this often. */
#define ENGINE_BATCH_NS 20000ULL

/* Timers, the polled set and the run queue once; true if any work ran. */
bool engine_work_once(struct engine_thread *t, uint64_t *next_deadline)
{
	struct vhca_dctx *dctx;
	bool found = false;
	uint64_t now = vhca_now_ns();

	*next_deadline = engine_fire_due(now, &found);
	found |= engine_poll_active(now);
	/*
	 * A batch bounded in turns and in time, so the timers and the
	 * doorbells of the polled set are seen again soon: with every
	 * thread in bulk turns, a doorbell waits for the end of a batch
	 * (64 bulk turns held another tenant's round trips at 1.4 ms).
	 */
	for (int i = 0; i < 64 && (dctx = engine_runq_pop()); i++) {
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

		if (dctx && dctx->ctx_page && engine_fifo_pending(dctx))
			vhca_engine_kick(dctx);
	}
	pthread_mutex_unlock(&engine.reg_lock);
	if (engine.epfd >= 0) {
		n = epoll_wait(engine.epfd, evs, 32, 0);
		if (n > 0)
			engine_handle_events(evs, n);
	}
	found = engine_work_once(NULL, &next);
	return found;
}

/*
 * With VHCA_TRACE: every 5 s, each watched context's doorbell state, for
 * telling a lost doorbell from a lost completion.
 */
void engine_trace_contexts(void)
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

