// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The CM's lock, its deferred work and its thread (cm.h): the thread is
 * what the kernel's cm workqueue and MAD completion handler are - it
 * takes the MADs the device says arrived (cm_funcs_poll()), runs the
 * timers of the IB CM (retransmissions, timewait) and passes on what the
 * PF's hooks noted (a function gone, its GID or addresses changed).  It
 * sleeps in poll() on an eventfd and the earliest timer.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "cma.h"
#include "device/pf.h"
#include "ucma.h"

static struct {
	pthread_mutex_t lock;
	struct cm_deferred *deferred;
	struct vhca_pf *pf;
	struct vhca_guests *guests;
	int wake_fd;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	struct cm_timer **heap;		/* min-heap by deadline */
	size_t len, cap;
} cm = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake_fd = -1 };

void cm_lock(void)
{
	pthread_mutex_lock(&cm.lock);
}

void cm_unlock(void)
{
	struct cm_deferred *d = cm.deferred, *rev = NULL;

	cm.deferred = NULL;
	pthread_mutex_unlock(&cm.lock);
	/* In the order they were deferred. */
	while (d) {
		struct cm_deferred *next = d->next;

		d->next = rev;
		rev = d;
		d = next;
	}
	while (rev) {
		struct cm_deferred *next = rev->next;

		rev->run(rev);
		rev = next;
	}
}

void cm_defer(struct cm_deferred *d)
{
	d->next = cm.deferred;
	cm.deferred = d;
}

struct vhca_pf *cm_pf(void)
{
	return cm.pf;
}

struct vhca_guests *cm_guests(void)
{
	return cm.guests;
}

uint64_t cm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t cm_random32(void)
{
	return arc4random();
}

void cm_agent_wake(void)
{
	uint64_t one = 1;

	if (cm.wake_fd >= 0 && write(cm.wake_fd, &one, sizeof(one)) < 0) {
		/* Saturated: a wake-up is pending anyway. */
	}
}

/* ---- timers: a binary heap of deadlines ------------------------------------------------ */

static bool earlier(size_t a, size_t b)
{
	return cm.heap[a]->deadline_ns < cm.heap[b]->deadline_ns;
}

static void swap(size_t a, size_t b)
{
	struct cm_timer *t = cm.heap[a];

	cm.heap[a] = cm.heap[b];
	cm.heap[b] = t;
	cm.heap[a]->heap_index = a;
	cm.heap[b]->heap_index = b;
}

static void sift(size_t i)
{
	while (i && earlier(i, (i - 1) / 2)) {
		swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < cm.len && earlier(l, m))
			m = l;
		if (r < cm.len && earlier(r, m))
			m = r;
		if (m == i)
			return;
		swap(i, m);
		i = m;
	}
}

void cm_timer_init(struct cm_timer *t, void (*fire)(struct cm_timer *t))
{
	t->heap_index = SIZE_MAX;
	t->fire = fire;
}

void cm_timer_cancel(struct cm_timer *t)
{
	size_t i = t->heap_index;

	if (i == SIZE_MAX)
		return;
	t->heap_index = SIZE_MAX;
	if (i != --cm.len) {
		cm.heap[i] = cm.heap[cm.len];
		cm.heap[i]->heap_index = i;
		sift(i);
	}
}

void cm_timer_arm(struct cm_timer *t, uint64_t delay_ns)
{
	cm_timer_cancel(t);
	if (cm.len == cm.cap) {
		size_t cap = cm.cap ? 2 * cm.cap : 64;
		struct cm_timer **grown = reallocarray(cm.heap, cap,
						       sizeof(*grown));

		if (!grown)
			return;	/* memory is short: the timer never fires */
		cm.heap = grown;
		cm.cap = cap;
	}
	t->deadline_ns = cm_now_ns() + delay_ns;
	t->heap_index = cm.len;
	cm.heap[cm.len++] = t;
	sift(t->heap_index);
	cm_agent_wake();
}

/* Fires what is due; returns the wait until the next, in ms (-1: none). */
static int run_timers(void)
{
	uint64_t now = cm_now_ns();

	while (cm.len && cm.heap[0]->deadline_ns <= now) {
		struct cm_timer *t = cm.heap[0];

		cm_timer_cancel(t);
		t->fire(t);
	}
	if (!cm.len)
		return -1;
	return (int)((cm.heap[0]->deadline_ns - now) / 1000000ull) + 1;
}

/* ---- the thread ---------------------------------------------------------------------- */

static void *agent(void *arg)
{
	int wait = -1;

	(void)arg;
	while (!atomic_load(&cm.stop)) {
		struct pollfd pfd = { .fd = cm.wake_fd, .events = POLLIN };
		uint64_t count;

		if (poll(&pfd, 1, wait) > 0 &&
		    read(cm.wake_fd, &count, sizeof(count)) < 0) {
			/* Spurious: nothing to take. */
		}
		cm_lock();
		cm_funcs_poll();
		wait = run_timers();
		cm_unlock();
	}
	return NULL;
}

int vhca_cm_start(struct vhca_pf *pf, struct vhca_guests *guests)
{
	int ret;

	cm.pf = pf;
	cm.guests = guests;
	cm.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cm.wake_fd < 0)
		return -errno;
	ret = pthread_create(&cm.thread, NULL, agent, NULL);
	if (ret) {
		close(cm.wake_fd);
		cm.wake_fd = -1;
		return -ret;
	}
	cm.running = true;
	return 0;
}

void vhca_cm_stop(void)
{
	if (!cm.running)
		return;
	atomic_store(&cm.stop, true);
	cm_agent_wake();
	pthread_join(cm.thread, NULL);
	cm.running = false;
	close(cm.wake_fd);
	cm.wake_fd = -1;
	free(cm.heap);
	cm.heap = NULL;
	cm.len = cm.cap = 0;
}

void vhca_cm_dev_changed(struct vhca_dev *dev, enum vhca_change what)
{
	if (what == VHCA_CHANGE_GID || what == VHCA_CHANGE_ADDR)
		cm_note_changed(dev, what == VHCA_CHANGE_GID);
}

void vhca_cm_dev_removed(struct vhca_dev *dev)
{
	cm_note_removed(dev);
}
