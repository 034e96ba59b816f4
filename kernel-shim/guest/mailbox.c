// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Device commands through the VF's mailbox, and its event ring (guest.h,
 * include/vhca/vf_bar.h).
 *
 * One command at a time: the caller writes it, rings vector 0 (one MMIO
 * write) and polls for the answer - a spin, then short sleeps - so that
 * no command depends on the interrupt, which only the event thread
 * takes.  A device that does not answer within COMMAND_TIMEOUT_MS, or
 * that says it is gone, is gone for good: every later command fails at
 * once (-EIO to the verb), every live context hears
 * IBV_EVENT_DEVICE_FATAL, and vhcad --vm-guest stops, which its
 * providers see as the device's death (providers/vhca/lost.c).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "driver/context.h"
#include "driver/device.h"
#include "guest.h"

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

/* Longer than any command of a healthy device, even under TCG. */
#define COMMAND_TIMEOUT_MS 20000
#define SPIN_NS 50000
#define EVENT_WAIT_MS 20

static struct {
	struct vhca_guest_vf *vf;
	struct vhca_pf *pf;
	pthread_mutex_t cmd_lock;	/* one command in the mailbox */
	pthread_mutex_t event_lock;	/* one consumer of the event ring */
	atomic_bool gone;
	atomic_bool stop;
	pthread_t thread;
	bool started;
	/* contexts events may be delivered to (their cookies) */
	pthread_mutex_t live_lock;
	struct vhca_ucontext **live;
	size_t num_live, cap_live;
} mb = {
	.cmd_lock = PTHREAD_MUTEX_INITIALIZER,
	.event_lock = PTHREAD_MUTEX_INITIALIZER,
	.live_lock = PTHREAD_MUTEX_INITIALIZER,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct vhca_bar_header *header(void)
{
	return (struct vhca_bar_header *)mb.vf->bar;
}

static struct vhca_bar_mailbox *mailbox(void)
{
	return (struct vhca_bar_mailbox *)(mb.vf->bar + VHCA_BAR_MAILBOX_OFFSET);
}

static struct vhca_bar_events *events(void)
{
	return (struct vhca_bar_events *)(mb.vf->bar + VHCA_BAR_EVENTS_OFFSET);
}

static void device_gone(const char *why)
{
	if (atomic_exchange(&mb.gone, true))
		return;
	log_msg("the VF's device is gone (%s): its contexts are lost", why);
	pthread_mutex_lock(&mb.live_lock);
	for (size_t i = 0; i < mb.num_live; i++)
		vhca_ucontext_async_event(mb.live[i], UINT32_MAX, 0,
					  IBV_EVENT_DEVICE_FATAL);
	pthread_mutex_unlock(&mb.live_lock);
	/* main.c's orderly stop: the providers see their device die. */
	kill(getpid(), SIGTERM);
}

/* Waits for the answer to request @seq; false if the device is gone. */
static bool wait_answer(uint32_t seq)
{
	_Atomic uint32_t *answered =
		(_Atomic uint32_t *)&mailbox()->answered;
	uint64_t start = now_ns();
	long sleep_ns = 20000;

	for (;;) {
		uint64_t waited;

		if (atomic_load_explicit(answered, memory_order_acquire) == seq)
			return true;
		if (header()->state == VHCA_BAR_GONE) {
			device_gone("vhcad stopped");
			return false;
		}
		waited = now_ns() - start;
		if (waited > (uint64_t)COMMAND_TIMEOUT_MS * 1000000ULL) {
			device_gone("no answer");
			return false;
		}
		if (waited < SPIN_NS) {
			sched_yield();
			continue;
		}
		nanosleep(&(struct timespec){ .tv_nsec = sleep_ns }, NULL);
		if (sleep_ns < 1000000)
			sleep_ns *= 2;
	}
}

static size_t call(const void *in, size_t in_len, void *out, size_t out_cap)
{
	struct vhca_bar_mailbox *m = mailbox();
	uint32_t seq, out_len;

	if (in_len > VHCA_MAILBOX_IN_MAX || atomic_load(&mb.gone))
		return 0;
	pthread_mutex_lock(&mb.cmd_lock);
	memcpy(m->in, in, in_len);
	m->in_len = (uint32_t)in_len;
	seq = m->answered + 1;
	atomic_store_explicit((_Atomic uint32_t *)&m->request, seq,
			      memory_order_release);
	vhca_guest_vf_ring(mb.vf, VHCA_VECTOR_MAILBOX);
	if (!wait_answer(seq)) {
		pthread_mutex_unlock(&mb.cmd_lock);
		return 0;
	}
	out_len = m->out_len;
	if (out_len > out_cap || out_len > sizeof(m->out))
		out_len = 0;	/* a device we do not understand */
	memcpy(out, m->out, out_len);
	pthread_mutex_unlock(&mb.cmd_lock);
	return out_len;
}

static void drain_events(void);

/*
 * A command, then every event the device posted before answering it
 * (the ring is written before the answer): so an object's events are
 * delivered before the command that destroys it returns, as the kernel
 * queues them before its destroy does, and none is left to reach the
 * object after it is gone, or a new one under the same handle.  (Seen:
 * a QP's LAST_WQE_REACHED, taken from the ring 20 ms after its destroy,
 * went to the application as an event of a freed QP; its ack landed on
 * the next QP at that address, whose destroy then waited for ever.)
 */
static size_t exec_cmd(struct vhca_dev *dev, const void *in, size_t in_len,
		       void *out, size_t out_cap)
{
	size_t n;

	(void)dev;	/* the VM has one function */
	n = call(in, in_len, out, out_cap);
	drain_events();
	return n;
}

static void context_live(struct vhca_ucontext *uctx, bool live)
{
	pthread_mutex_lock(&mb.live_lock);
	if (live) {
		if (mb.num_live == mb.cap_live) {
			size_t cap = mb.cap_live ? 2 * mb.cap_live : 16;
			struct vhca_ucontext **grown =
				reallocarray(mb.live, cap, sizeof(*grown));

			if (grown) {
				mb.live = grown;
				mb.cap_live = cap;
			}
		}
		if (mb.num_live < mb.cap_live)
			mb.live[mb.num_live++] = uctx;
	} else {
		for (size_t i = 0; i < mb.num_live; i++)
			if (mb.live[i] == uctx)
				mb.live[i] = mb.live[--mb.num_live];
	}
	pthread_mutex_unlock(&mb.live_lock);
}

/* The provider wakes the device itself: one write to BAR0's Doorbell. */
static void context_info(struct vhca_alloc_ucontext_resp *resp)
{
	resp->flags |= VHCA_CTX_RESP_VM;
	resp->doorbell_offset = mb.vf->doorbell_offset;
	resp->doorbell_value = (uint32_t)VHCA_DEVICE_PEER << 16 |
			       VHCA_VECTOR_DATA_PATH;
	snprintf(resp->doorbell_path, sizeof(resp->doorbell_path), "%s",
		 mb.vf->resource0);
}

static const struct vhca_device_transport mailbox_transport = {
	.exec = exec_cmd,
	.context_live = context_live,
	.context_info = context_info,
};

int vhca_guest_mailbox_query(struct vhca_guest_vf *vf, uint16_t op,
			     void *out, size_t out_len)
{
	struct vhca_devcmd_hdr hdr = { .op = op };
	uint64_t answer[VHCA_MAILBOX_OUT_MAX / 8];
	struct vhca_devcmd_status *status = (void *)answer;
	size_t n;

	mb.vf = vf;
	n = call(&hdr, sizeof(hdr), answer, sizeof(answer));
	if (n < sizeof(*status))
		return -EIO;
	if (status->status)
		return status->status;
	if (status->out_len < out_len)
		return -EPROTO;
	memcpy(out, status + 1, out_len);
	return 0;
}

/* ---- events ------------------------------------------------------------------- */

static void deliver(const struct vhca_devcmd_event *ev)
{
	struct vhca_ucontext *uctx = (void *)(uintptr_t)ev->cookie;
	struct vhca_devcmd_function f;
	bool live = false;

	if (ev->type == VHCA_DEVCMD_EV_FUNCTION) {
		if (!vhca_guest_mailbox_query(mb.vf,
					      VHCA_DEVCMD_QUERY_FUNCTION, &f,
					      sizeof(f)))
			vhca_guest_function_update(mb.pf, &f);
		return;
	}
	/* Only a live context of ours: the cookie is nothing else to us. */
	pthread_mutex_lock(&mb.live_lock);
	for (size_t i = 0; i < mb.num_live && !live; i++)
		live = mb.live[i] == uctx;
	if (live && ev->type == VHCA_DEVCMD_EV_COMP)
		vhca_ucontext_comp_event(uctx, ev->handle);
	else if (live && ev->type == VHCA_DEVCMD_EV_ASYNC)
		vhca_ucontext_async_event(uctx, ev->handle, ev->user_handle,
					  ev->event);
	pthread_mutex_unlock(&mb.live_lock);
}

/* Delivers what the event ring holds; the event thread and commands. */
static void drain_events(void)
{
	struct vhca_bar_events *e = events();
	uint32_t count = header()->events_count;
	uint32_t producer;

	pthread_mutex_lock(&mb.event_lock);
	producer = atomic_load_explicit((_Atomic uint32_t *)&e->producer,
					memory_order_acquire);
	while (e->consumer != producer) {
		struct vhca_devcmd_event ev = e->ring[e->consumer & (count - 1)];

		atomic_store_explicit((_Atomic uint32_t *)&e->consumer,
				      e->consumer + 1, memory_order_release);
		deliver(&ev);
	}
	pthread_mutex_unlock(&mb.event_lock);
}

static void *event_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&mb.stop) && !atomic_load(&mb.gone)) {
		vhca_guest_vf_wait(mb.vf, EVENT_WAIT_MS);
		drain_events();
		if (header()->state == VHCA_BAR_GONE)
			device_gone("vhcad stopped");
	}
	return NULL;
}

int vhca_guest_mailbox_start(struct vhca_guest_vf *vf, struct vhca_pf *pf)
{
	uint32_t count = ((struct vhca_bar_header *)vf->bar)->events_count;
	int ret;

	if (!count || count & (count - 1) ||
	    VHCA_BAR_EVENTS_OFFSET + sizeof(struct vhca_bar_events) +
			    (uint64_t)count * sizeof(struct vhca_devcmd_event) >
		    VHCA_BAR_SIZE)
		return -EPROTO;
	mb.vf = vf;
	mb.pf = pf;
	/* Events from before we came are of no context of ours. */
	events()->consumer = events()->producer;
	vhca_device_set_transport(&mailbox_transport);
	ret = pthread_create(&mb.thread, NULL, event_loop, NULL);
	if (ret)
		return -ret;
	mb.started = true;
	return 0;
}

void vhca_guest_mailbox_stop(void)
{
	atomic_store(&mb.stop, true);
	if (mb.started)
		pthread_join(mb.thread, NULL);
	mb.started = false;
	free(mb.live);
	mb.live = NULL;
	mb.num_live = mb.cap_live = 0;
}
