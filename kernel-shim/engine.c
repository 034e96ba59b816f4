// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The engine thread and its scheduling (engine.h).  Execution of a QP's
 * work is transport.c's; this file decides who runs and when it sleeps.
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

#include "context.h"
#include "engine.h"
#include "qp.h"
#include "transport.h"

/* epoll tags: the low bits of data.u64 say what fired. */
enum { TAG_INTERNAL = 0, TAG_WAKE = 1, TAG_PIDFD = 2, TAG_MASK = 3 };

static struct {
	pthread_mutex_t lock;
	struct vhca_ucontext **ctxs;
	unsigned int num_ctxs, cap_ctxs;
	struct vhca_qp *run_head, *run_tail;
	int epfd, kick_fd;		/* -1 until the thread starts */
	pthread_t thread;
	atomic_bool running;
	enum vhca_engine_policy policy;
	atomic_uint waiters;		/* command threads wanting the lock */
	uint64_t owners_checked_ns;	/* last liveness sweep */
	bool owners_dirty;		/* a pidfd fired while we slept */
} engine = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.epfd = -1,
	.kick_fd = -1,
};

uint64_t vhca_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Commands announce themselves: a spinning engine re-takes the mutex
 * within nanoseconds, and pthread mutexes are not fair, so without this
 * a command could wait for as long as traffic flows.
 */
void vhca_engine_lock(void)
{
	atomic_fetch_add(&engine.waiters, 1);
	pthread_mutex_lock(&engine.lock);
	atomic_fetch_sub(&engine.waiters, 1);
}

void vhca_engine_unlock(void)
{
	pthread_mutex_unlock(&engine.lock);
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

static void kick(void)
{
	uint64_t one = 1;

	/* A failed write means a full counter: we will wake anyway. */
	if (engine.kick_fd >= 0 && write(engine.kick_fd, &one, sizeof(one)) < 0)
		return;
}

static void watch_context(struct vhca_ucontext *uctx)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };

	if (engine.epfd < 0)
		return;
	/*
	 * Edge-triggered and never read: every write to an eventfd is a new
	 * edge, and the guest shares the file, so a read of ours could
	 * block if it emptied the counter first.
	 */
	ev.data.u64 = (uint64_t)(uintptr_t)uctx | TAG_WAKE;
	epoll_ctl(engine.epfd, EPOLL_CTL_ADD, uctx->wake_fd, &ev);
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)(uintptr_t)uctx | TAG_PIDFD;
	epoll_ctl(engine.epfd, EPOLL_CTL_ADD, vhca_dma_peer_pidfd(uctx->peer),
		  &ev);
}

static void unwatch_context(struct vhca_ucontext *uctx)
{
	if (engine.epfd < 0)
		return;
	epoll_ctl(engine.epfd, EPOLL_CTL_DEL, uctx->wake_fd, NULL);
	epoll_ctl(engine.epfd, EPOLL_CTL_DEL, vhca_dma_peer_pidfd(uctx->peer),
		  NULL);
}

int vhca_engine_add_context(struct vhca_ucontext *uctx)
{
	if (engine.num_ctxs == engine.cap_ctxs) {
		unsigned int cap = engine.cap_ctxs ? 2 * engine.cap_ctxs : 16;
		void *p = realloc(engine.ctxs, cap * sizeof(*engine.ctxs));

		if (!p)
			return -ENOMEM;
		engine.ctxs = p;
		engine.cap_ctxs = cap;
	}
	engine.ctxs[engine.num_ctxs++] = uctx;
	uctx->in_engine = true;
	watch_context(uctx);
	kick();
	return 0;
}

void vhca_engine_remove_context(struct vhca_ucontext *uctx)
{
	if (!uctx->in_engine)
		return;
	unwatch_context(uctx);
	for (unsigned int i = 0; i < engine.num_ctxs; i++) {
		if (engine.ctxs[i] == uctx) {
			engine.ctxs[i] = engine.ctxs[--engine.num_ctxs];
			break;
		}
	}
	uctx->in_engine = false;
}

void vhca_engine_schedule(struct vhca_qp *qp)
{
	if (qp->queued)
		return;
	qp->queued = true;
	qp->run_next = NULL;
	if (engine.run_tail)
		engine.run_tail->run_next = qp;
	else
		engine.run_head = qp;
	engine.run_tail = qp;
}

void vhca_engine_unschedule(struct vhca_qp *qp)
{
	struct vhca_qp **link = &engine.run_head, *prev = NULL;

	if (!qp->queued)
		return;
	while (*link && *link != qp) {
		prev = *link;
		link = &(*link)->run_next;
	}
	if (*link) {
		*link = qp->run_next;
		if (engine.run_tail == qp)
			engine.run_tail = prev;
	}
	qp->queued = false;
	qp->run_next = NULL;
}

/* Every QP of the context, once: the FIFO lost entries. */
static void schedule_all_qps(struct vhca_ucontext *uctx)
{
	for (uint32_t h = 0; h < uctx->objs.used; h++) {
		struct vhca_qp *qp = vhca_obj_lookup(uctx, VHCA_OBJ_QP, h);

		if (qp) {
			atomic_store((_Atomic uint32_t *)&qp->db->queued, 0);
			vhca_engine_schedule(qp);
		}
	}
	vhca_transport_srqs_changed(uctx, VHCA_NO_HANDLE);
}

static void pop_entry(struct vhca_ucontext *uctx, uint32_t entry)
{
	uint32_t handle = entry >> 1;
	struct vhca_qp *qp;

	if ((entry & 1) == VHCA_DB_SRQ) {
		vhca_transport_srqs_changed(uctx, handle);
		return;
	}
	/* A handle that is not a live QP of this context is ignored. */
	qp = vhca_obj_lookup(uctx, VHCA_OBJ_QP, handle);
	if (!qp)
		return;
	/* Clear first, then look: a doorbell after this pushes again. */
	atomic_store((_Atomic uint32_t *)&qp->db->queued, 0);
	atomic_thread_fence(memory_order_seq_cst);
	vhca_engine_schedule(qp);
}

/* Pops the context's FIFO; true if it held anything. */
static bool drain_fifo(struct vhca_ucontext *uctx)
{
	struct vhca_ctx_page *page = uctx->ctx_page;
	_Atomic uint32_t *head_p = (_Atomic uint32_t *)&page->fifo_head;
	_Atomic uint32_t *ovf_p = (_Atomic uint32_t *)&page->overflow;
	uint32_t head = atomic_load_explicit(head_p, memory_order_acquire);
	bool found = false;

	if (head - uctx->fifo_tail > VHCA_DB_FIFO_LEN) {
		/* Garbage head: resynchronise and scan, like an overflow. */
		uctx->fifo_tail = head;
		atomic_store(ovf_p, 1);
	}
	while (uctx->fifo_tail != head) {
		uint32_t entry = atomic_load_explicit(
			(_Atomic uint32_t *)&page->fifo[uctx->fifo_tail %
							VHCA_DB_FIFO_LEN],
			memory_order_relaxed);

		uctx->fifo_tail++;
		pop_entry(uctx, entry);
		found = true;
	}
	atomic_store_explicit((_Atomic uint32_t *)&page->fifo_tail,
			      uctx->fifo_tail, memory_order_release);
	if (atomic_load(ovf_p) && atomic_exchange(ovf_p, 0)) {
		schedule_all_qps(uctx);
		found = true;
	}
	return found;
}

static bool fifo_pending(struct vhca_ucontext *uctx)
{
	struct vhca_ctx_page *page = uctx->ctx_page;

	return atomic_load((_Atomic uint32_t *)&page->fifo_head) !=
		       uctx->fifo_tail ||
	       atomic_load((_Atomic uint32_t *)&page->overflow);
}

/* The owner exited: its QPs vanish from the fabric at once. */
static void reap_dead_owner(struct vhca_ucontext *uctx)
{
	uctx->owner_dead = true;
	for (uint32_t h = 0; h < uctx->objs.used; h++) {
		struct vhca_qp *qp = vhca_obj_lookup(uctx, VHCA_OBJ_QP, h);

		if (qp) {
			qp->dead_peer = true;
			vhca_engine_unschedule(qp);
			vhca_transport_cancel_timer(qp);
		}
	}
	vhca_engine_remove_context(uctx);
}

/* How often a spinning engine sweeps the owners' pidfds. */
#define OWNER_CHECK_NS 1000000ULL

static void check_owners(void)
{
	uint64_t now = vhca_now_ns();

	/* One poll(2) per context: not on every spin, but within 1 ms. */
	if (!engine.owners_dirty &&
	    now - engine.owners_checked_ns < OWNER_CHECK_NS)
		return;
	engine.owners_dirty = false;
	engine.owners_checked_ns = now;
	for (unsigned int i = 0; i < engine.num_ctxs;) {
		struct vhca_ucontext *uctx = engine.ctxs[i];

		if (!vhca_dma_peer_alive(uctx->peer))
			reap_dead_owner(uctx);	/* swaps in the last one */
		else
			i++;
	}
}

static bool run_batch_locked(void)
{
	bool found = false;
	struct vhca_qp *qp;
	unsigned int n;

	for (unsigned int i = 0; i < engine.num_ctxs; i++)
		found |= drain_fifo(engine.ctxs[i]);
	found |= vhca_transport_fire_timers(vhca_now_ns());

	/* Visit each QP queued now once; requeue those with more work. */
	n = 0;
	for (qp = engine.run_head; qp; qp = qp->run_next)
		n++;
	while (n-- && (qp = engine.run_head)) {
		engine.run_head = qp->run_next;
		if (!engine.run_head)
			engine.run_tail = NULL;
		qp->queued = false;
		qp->run_next = NULL;
		found = true;
		if (vhca_transport_execute(qp, VHCA_ENGINE_QP_BUDGET))
			vhca_engine_schedule(qp);
	}
	return found;
}

bool vhca_engine_poll_once(void)
{
	bool found;

	pthread_mutex_lock(&engine.lock);
	check_owners();
	found = run_batch_locked();
	pthread_mutex_unlock(&engine.lock);
	/* Let waiting commands in before the next batch. */
	while (atomic_load_explicit(&engine.waiters, memory_order_relaxed))
		sched_yield();
	return found;
}

static void set_needs_wakeup(uint32_t value)
{
	for (unsigned int i = 0; i < engine.num_ctxs; i++)
		atomic_store((_Atomic uint32_t *)&engine.ctxs[i]
				     ->ctx_page->needs_wakeup,
			     value);
}

/* Announces sleep, then re-checks: true if we may really sleep. */
static bool prepare_sleep(int *timeout_ms)
{
	uint64_t next, now;
	bool idle = true;

	vhca_engine_lock();
	set_needs_wakeup(1);
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned int i = 0; i < engine.num_ctxs && idle; i++)
		idle = !fifo_pending(engine.ctxs[i]);
	if (engine.run_head)
		idle = false;
	next = vhca_transport_next_timer();
	now = vhca_now_ns();
	if (next && next <= now + 1000000ULL)
		idle = false;	/* a timer within 1 ms: keep spinning */
	if (!idle)
		set_needs_wakeup(0);
	vhca_engine_unlock();
	*timeout_ms = next ? (int)((next - now) / 1000000ULL) : -1;
	return idle;
}

static void sleep_until_woken(int timeout_ms)
{
	struct epoll_event evs[32];
	int n = epoll_wait(engine.epfd, evs, 32, timeout_ms);
	bool owner_exited = false;
	uint64_t count;

	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64 & TAG_MASK;

		/* Nonblocking: a kick someone else consumed reads nothing. */
		if (tag == TAG_INTERNAL &&
		    read(engine.kick_fd, &count, sizeof(count)) < 0)
			continue;
		owner_exited |= tag == TAG_PIDFD;
	}
	/*
	 * Dead owners are found by check_owners() in the next batch; only a
	 * pidfd that fired makes it sweep at once, a doorbell wake must not
	 * cost a poll(2) per context.
	 */
	vhca_engine_lock();
	engine.owners_dirty |= owner_exited;
	set_needs_wakeup(0);
	vhca_engine_unlock();
}

/*
 * Adaptive spinning pays only while a CPU is spare: when the guests'
 * busy pollers hold every CPU, a spinning engine keeps the poller that
 * shares its CPU from running (or waits for time slices itself), where a
 * sleeping one is woken at once by the doorbell.  So the engine spins
 * only while the runnable tasks, itself included, fit the CPUs; the
 * count comes from /proc/loadavg (2 us a read, so at most every 100 us).
 */
#define LOAD_CHECK_NS 100000ULL

struct spin_state {
	uint64_t last_work;
	uint64_t load_checked;
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

/* True if an idle adaptive engine should keep spinning. */
static bool adaptive_keep_spinning(struct spin_state *st, uint64_t now)
{
	if (now - st->last_work >= VHCA_ENGINE_SPIN_NS)
		return false;
	if (now - st->load_checked >= LOAD_CHECK_NS) {
		long running = runnable_tasks(st->loadavg_fd);

		st->cpu_spare = running >= 0 && running <= st->cpus;
		st->load_checked = now;
	}
	return st->cpu_spare;
}

/*
 * A short EEVDF slice (Linux 6.12+; ignored before) lets the woken engine
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

static void *engine_main(void *arg)
{
	struct spin_state st = {
		.last_work = vhca_now_ns(),
		.loadavg_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC),
		.cpus = sysconf(_SC_NPROCESSORS_ONLN),
	};

	(void)arg;
	if (engine.policy != VHCA_ENGINE_POLL)
		request_short_slice();
	while (atomic_load_explicit(&engine.running, memory_order_relaxed)) {
		int timeout_ms;

		if (vhca_engine_poll_once()) {
			st.last_work = vhca_now_ns();
			continue;
		}
		if (engine.policy == VHCA_ENGINE_POLL)
			continue;
		if (engine.policy == VHCA_ENGINE_ADAPTIVE &&
		    adaptive_keep_spinning(&st, vhca_now_ns()))
			continue;
		if (prepare_sleep(&timeout_ms))
			sleep_until_woken(timeout_ms);
		st.last_work = vhca_now_ns();
	}
	if (st.loadavg_fd >= 0)
		close(st.loadavg_fd);
	return NULL;
}

int vhca_engine_start(enum vhca_engine_policy policy, int rt_priority)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_INTERNAL };
	int ret;

	engine.epfd = epoll_create1(EPOLL_CLOEXEC);
	engine.kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (engine.epfd < 0 || engine.kick_fd < 0 ||
	    epoll_ctl(engine.epfd, EPOLL_CTL_ADD, engine.kick_fd, &ev)) {
		ret = -errno;
		goto err;
	}
	engine.policy = policy;
	vhca_engine_lock();
	for (unsigned int i = 0; i < engine.num_ctxs; i++)
		watch_context(engine.ctxs[i]);
	vhca_engine_unlock();
	atomic_store(&engine.running, true);
	ret = -pthread_create(&engine.thread, NULL, engine_main, NULL);
	if (ret)
		goto err;
	if (rt_priority > 0) {
		struct sched_param sp = { .sched_priority = rt_priority };

		/* Best effort: needs root (CAP_SYS_NICE). */
		pthread_setschedparam(engine.thread, SCHED_FIFO, &sp);
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
	kick();
	pthread_join(engine.thread, NULL);
	close(engine.epfd);
	close(engine.kick_fd);
	engine.epfd = engine.kick_fd = -1;
}
