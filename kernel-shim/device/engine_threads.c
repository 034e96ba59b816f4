// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The engine's threads (engine_state.h): when they spin and when they
 * sleep, and the monitor that replaces one stalled in a guest's memory,
 * so a page that faults for ever stalls its own context only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine_state.h"
#include "packet.h"

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
		engine_handle_events(evs, n);
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
	return (last && engine_prepare_sleep_all()) ||
	       engine_runq_queued();
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
		engine_wake_all_polled();
	if (n > 0)
		engine_handle_events(evs, n);
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
 * SCHED_FIFO within a budget, as the kernel runs softirqs.  Engine work
 * is what an HCA's silicon would do beside the host's CPUs; here it
 * shares them with the tenants' busy pollers, and under SCHED_OTHER a
 * woken thread could wait for a poller's whole slice: `ib_write_lat -n
 * 100000` on two CPUs had a 99.9th percentile of 1.86 ms (220x typical)
 * and the guests' MPI 8-byte latency was 2x TCP's.  Under SCHED_FIFO the
 * wakeup preempts the poller at once (99.9th percentile 34 us).  But a
 * tenant that keeps the engine busy must not take CPUs from everyone
 * else, so the FIFO time is metered: a thread earns half the wall time
 * as budget (at most RT_BURST_NS, softirq's MAX_SOFTIRQ_TIME) and spends
 * it while it works or spins under FIFO; when it is spent the thread
 * goes back to SCHED_OTHER (ksoftirqd's role) until half of the burst is
 * earned again.  So a busy thread alternates 2 ms FIFO with 2 ms
 * SCHED_OTHER, and at most half of a CPU is taken ahead of other tasks.
 */
#define RT_BURST_NS 2000000LL

struct rt_budget {
	bool enabled;	/* FIFO wanted and allowed */
	bool fifo;	/* running SCHED_FIFO now */
	int64_t budget;	/* FIFO time left, ns */
	uint64_t last;	/* accounted up to here */
};

/* Never under `poll` (engine_main): back to SCHED_OTHER is its short slice. */
static void rt_switch(struct rt_budget *rt, bool fifo)
{
	struct sched_param sp = { .sched_priority = engine.rt_priority };

	if (fifo) {
		/* Refused (no CAP_SYS_NICE, an RT-less cgroup): never again. */
		if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
			rt->enabled = false;
		else
			rt->fifo = true;
		return;
	}
	request_short_slice();	/* sched_setattr: SCHED_OTHER and the slice */
	rt->fifo = false;
}

/* Accounts the time since the last call: the thread ran if @ran, else slept. */
static void rt_account(struct rt_budget *rt, uint64_t now, bool ran)
{
	int64_t dt = (int64_t)(now - rt->last);

	rt->last = now;
	if (!rt->enabled)
		return;
	rt->budget += dt / 2;
	if (ran && rt->fifo)
		rt->budget -= dt;
	/* A turn asleep in a page fault spent no CPU: bounded debt only. */
	if (rt->budget < -RT_BURST_NS)
		rt->budget = -RT_BURST_NS;
	if (rt->budget > RT_BURST_NS)
		rt->budget = RT_BURST_NS;
	if (rt->fifo && rt->budget <= 0)
		rt_switch(rt, false);
	else if (!rt->fifo && rt->budget >= RT_BURST_NS / 2)
		rt_switch(rt, true);
}

/*
 * Going to sleep: a thread sent back to SCHED_OTHER while busy sleeps as
 * FIFO, so its next wakeup preempts too (it would otherwise stay
 * SCHED_OTHER for as long as it sleeps, an idle device included).  The
 * sleep earns budget; if it was too short, the accounting right after
 * the wakeup sends the thread back before it works.
 */
static void rt_before_sleep(struct rt_budget *rt, uint64_t now)
{
	rt_account(rt, now, true);
	if (rt->enabled && !rt->fifo)
		rt_switch(rt, true);
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
		engine_kick_sleeper();
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
	 * its turn's engine_active_add() may have cleared a doorbell's
	 * needs_wakeup after the monitor's leave_awake() armed them, and
	 * the last thread to leave must arm them again.
	 */
	if (atomic_fetch_add(&engine.awake, 1) == 0)
		engine_wake_all_polled();
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

	/* Under `poll` a thread never sleeps: FIFO would only take CPUs. */
	struct rt_budget rt = {
		.enabled = engine.rt_priority > 0 &&
			   engine.policy != VHCA_ENGINE_POLL,
		.budget = RT_BURST_NS,
		.last = st.last_work,
	};

	atomic_store(&t->os_tid, (pid_t)syscall(SYS_gettid));
	if (engine.policy != VHCA_ENGINE_POLL)
		request_short_slice();
	if (rt.enabled)
		rt_switch(&rt, true);
	atomic_fetch_add(&engine.awake, 1);
	while (atomic_load_explicit(&engine.running, memory_order_relaxed)) {
		uint64_t deadline, now;

		if (engine_work_once(t, &deadline)) {
			st.last_work = vhca_now_ns();
			rt_account(&rt, st.last_work, true);
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
			rt_account(&rt, now, true);
			peek_epoll(&st, now);
			continue;
		}
		rt_before_sleep(&rt, now);
		sleep_until_woken(deadline);
		st.last_work = vhca_now_ns();
		rt_account(&rt, st.last_work, false);
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
			engine_trace_contexts();
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
				engine_kick_sleeper();
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
			engine_watch(engine.reg[i].dctx);
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
			engine_kick_sleeper();
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

