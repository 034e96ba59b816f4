// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A VF attached to a VM: the device side of its BAR (vf_port.h,
 * include/vhca/vf_bar.h).  A thread takes the VM's commands from the
 * mailbox - copied out of the shared page before anything looks at
 * them - and runs them on the VM's command port (devcmd.c), which may
 * name only pages of the VM's RAM; events go to the BAR's ring.  The VM
 * reaches nothing else: not vhcad's fds, not another VM's pages, not its
 * own pages beyond its RAM.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "devcmd.h"
#include "vf_port.h"
#include "vm.h"

struct vhca_vf_port {
	struct vhca_dev *vf;
	struct vhca_vm *vm;
	struct vhca_devcmd_port port;
	int bar_fd;
	uint8_t *bar;
	int doorbell_fd[VHCA_VECTORS];	/* the VM rings these (peer 0) */
	int interrupt_fd[VHCA_VECTORS];	/* we write these: the VM's */
	int stop_fd;
	pthread_t thread;
	bool started;
	pthread_mutex_t events_lock;	/* producers of the event ring */
	struct vhca_dev_listener listener;
	/* a command, copied out of the mailbox */
	uint64_t in[(VHCA_MAILBOX_IN_MAX + 7) / 8];
	uint64_t out[VHCA_MAILBOX_OUT_MAX / 8];
};

static struct vhca_bar_header *header(struct vhca_vf_port *p)
{
	return (struct vhca_bar_header *)p->bar;
}

static struct vhca_bar_mailbox *mailbox(struct vhca_vf_port *p)
{
	return (struct vhca_bar_mailbox *)(p->bar + VHCA_BAR_MAILBOX_OFFSET);
}

static struct vhca_bar_events *events(struct vhca_vf_port *p)
{
	return (struct vhca_bar_events *)(p->bar + VHCA_BAR_EVENTS_OFFSET);
}

static void interrupt(struct vhca_vf_port *p)
{
	uint64_t one = 1;

	/* INTx through IntrStatus: any of the VM's vectors raises it. */
	if (write(p->interrupt_fd[0], &one, sizeof(one)) != sizeof(one)) {
		/* Counter saturated: an interrupt is pending anyway. */
	}
}

/* ---- events --------------------------------------------------------------------- */

/*
 * Never blocks (turns and the admin's provisioning call it): a ring the
 * VM does not drain drops the event and counts it, as a full event
 * queue would.  The VM's consumer index is its own business: garbage
 * there only makes the ring look full.
 */
static void post(struct vhca_vf_port *p, const struct vhca_devcmd_event *ev)
{
	struct vhca_bar_events *e = events(p);
	uint32_t consumer, producer;

	pthread_mutex_lock(&p->events_lock);
	producer = e->producer;
	consumer = atomic_load_explicit((_Atomic uint32_t *)&e->consumer,
					memory_order_acquire);
	if (producer - consumer >= VHCA_BAR_EVENTS_COUNT) {
		e->dropped++;
	} else {
		e->ring[producer & (VHCA_BAR_EVENTS_COUNT - 1)] = *ev;
		atomic_store_explicit((_Atomic uint32_t *)&e->producer,
				      producer + 1, memory_order_release);
	}
	pthread_mutex_unlock(&p->events_lock);
	interrupt(p);
}

static int sink_comp(struct vhca_dctx *dctx, uint32_t cq_handle,
		     uint32_t channel, uint64_t user_handle)
{
	post(dctx->sink_arg, &(struct vhca_devcmd_event){
				     .type = VHCA_DEVCMD_EV_COMP,
				     .context = dctx->id,
				     .cookie = dctx->cookie,
				     .user_handle = user_handle,
				     .handle = cq_handle,
				     .channel = channel,
			     });
	return 0;
}

static void sink_async(struct vhca_dctx *dctx, uint32_t handle,
		       uint64_t user_handle, uint32_t event_type)
{
	post(dctx->sink_arg, &(struct vhca_devcmd_event){
				     .type = VHCA_DEVCMD_EV_ASYNC,
				     .context = dctx->id,
				     .cookie = dctx->cookie,
				     .user_handle = user_handle,
				     .handle = handle,
				     .event = event_type,
			     });
}

static const struct vhca_event_sink vf_sink = {
	.comp = sink_comp,
	.async = sink_async,
};

/* The admin changed the VF (under pf->lock): the VM queries it again. */
static void function_changed(struct vhca_dev_listener *l, struct vhca_dev *dev,
			     enum vhca_change what)
{
	struct vhca_vf_port *p = (struct vhca_vf_port *)
		((char *)l - offsetof(struct vhca_vf_port, listener));

	(void)dev;
	post(p, &(struct vhca_devcmd_event){
			.type = VHCA_DEVCMD_EV_FUNCTION,
			.event = what,
		});
}

/* ---- the mailbox ------------------------------------------------------------------ */

static void serve_command(struct vhca_vf_port *p)
{
	struct vhca_bar_mailbox *m = mailbox(p);
	uint32_t request = atomic_load_explicit(
		(_Atomic uint32_t *)&m->request, memory_order_acquire);
	/* One load: the VM may change it under us. */
	uint32_t in_len = atomic_load_explicit((_Atomic uint32_t *)&m->in_len,
					       memory_order_relaxed);
	size_t out_len;

	if (request == m->answered)
		return;
	/* Copied, then checked: the VM may rewrite the mailbox meanwhile. */
	if (in_len > VHCA_MAILBOX_IN_MAX)
		in_len = 0;
	memcpy(p->in, m->in, in_len);
	out_len = vhca_devcmd_exec(&p->port, p->in, in_len, NULL, p->out,
				   sizeof(p->out));
	memcpy(m->out, p->out, out_len);
	m->out_len = (uint32_t)out_len;
	atomic_store_explicit((_Atomic uint32_t *)&m->answered, request,
			      memory_order_release);
	interrupt(p);
}

static void *serve(void *arg)
{
	struct vhca_vf_port *p = arg;

	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = p->doorbell_fd[VHCA_VECTOR_MAILBOX],
			  .events = POLLIN },
			{ .fd = p->stop_fd, .events = POLLIN },
		};
		uint64_t count;

		/* A lost doorbell costs at most this long. */
		if (poll(fds, 2, 100) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (fds[0].revents &&
		    read(fds[0].fd, &count, sizeof(count)) != sizeof(count)) {
			/* Nothing to take: a spurious wake-up. */
		}
		serve_command(p);
	}
	return NULL;
}

/* ---- lifetime -------------------------------------------------------------------- */

static int make_bar(struct vhca_vf_port *p)
{
	struct vhca_bar_header *h;

	p->bar_fd = memfd_create("vhca-vf-bar", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (p->bar_fd < 0 || ftruncate(p->bar_fd, VHCA_BAR_SIZE) ||
	    fcntl(p->bar_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return -errno;
	p->bar = mmap(NULL, VHCA_BAR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      p->bar_fd, 0);
	if (p->bar == MAP_FAILED) {
		p->bar = NULL;
		return -ENOMEM;
	}
	h = header(p);
	*h = (struct vhca_bar_header){
		.magic = VHCA_BAR_MAGIC,
		.version = VHCA_BAR_VERSION,
		.state = VHCA_BAR_READY,
		.vf_index = p->vf->vf_index,
		.mailbox_offset = VHCA_BAR_MAILBOX_OFFSET,
		.events_offset = VHCA_BAR_EVENTS_OFFSET,
		.events_count = VHCA_BAR_EVENTS_COUNT,
	};
	return 0;
}

int vhca_vf_port_create(struct vhca_dev *vf, struct vhca_vm *vm,
			struct vhca_vf_port **out)
{
	struct vhca_vf_port *p = calloc(1, sizeof(*p));
	int ret;

	if (!p) {
		vhca_vm_put(vm);
		return -ENOMEM;
	}
	p->vf = vf;
	p->vm = vm;
	p->bar_fd = p->stop_fd = -1;
	for (int v = 0; v < VHCA_VECTORS; v++)
		p->doorbell_fd[v] = p->interrupt_fd[v] = -1;
	pthread_mutex_init(&p->events_lock, NULL);
	vhca_devcmd_port_init(&p->port, vf, false, vm, &vf_sink, p);
	ret = make_bar(p);
	for (int v = 0; !ret && v < VHCA_VECTORS; v++) {
		p->doorbell_fd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		p->interrupt_fd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->doorbell_fd[v] < 0 || p->interrupt_fd[v] < 0)
			ret = -errno;
	}
	p->stop_fd = ret ? -1 : eventfd(0, EFD_CLOEXEC);
	if (!ret && p->stop_fd < 0)
		ret = -errno;
	/* Every context's wake-up is the data path's doorbell (a dup). */
	p->port.vm_wake_fd = p->doorbell_fd[VHCA_VECTOR_DATA_PATH];
	if (!ret) {
		ret = -pthread_create(&p->thread, NULL, serve, p);
		p->started = !ret;
	}
	if (ret) {
		vhca_vf_port_destroy(p);
		return ret;
	}
	p->listener.changed = function_changed;
	vhca_dev_listen(vf, &p->listener);
	*out = p;
	return 0;
}

void vhca_vf_port_destroy(struct vhca_vf_port *p)
{
	uint64_t one = 1;

	if (!p)
		return;
	if (p->listener.changed)
		vhca_dev_unlisten(p->vf, &p->listener);
	if (p->started) {
		if (write(p->stop_fd, &one, sizeof(one)) != sizeof(one)) {
			/* An eventfd write of 1 cannot fail here. */
		}
		pthread_join(p->thread, NULL);
	}
	/* The VM's driver sees it at once; its commands fail from now on. */
	if (p->bar)
		header(p)->state = VHCA_BAR_GONE;
	if (p->vm)
		vhca_vm_stop(p->vm);
	/* Every context: QPs destroyed, peers time out (RETRY_EXC). */
	vhca_devcmd_port_fini(&p->port);
	if (p->bar) {
		interrupt(p);
		munmap(p->bar, VHCA_BAR_SIZE);
	}
	for (int v = 0; v < VHCA_VECTORS; v++) {
		if (p->doorbell_fd[v] >= 0)
			close(p->doorbell_fd[v]);
		if (p->interrupt_fd[v] >= 0)
			close(p->interrupt_fd[v]);
	}
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	if (p->bar_fd >= 0)
		close(p->bar_fd);
	vhca_vm_put(p->vm);
	pthread_mutex_destroy(&p->events_lock);
	free(p);
}

int vhca_vf_port_bar_fd(const struct vhca_vf_port *p)
{
	return p->bar_fd;
}

int vhca_vf_port_doorbell_fd(const struct vhca_vf_port *p, unsigned int v)
{
	return v < VHCA_VECTORS ? p->doorbell_fd[v] : -1;
}

int vhca_vf_port_interrupt_fd(const struct vhca_vf_port *p, unsigned int v)
{
	return v < VHCA_VECTORS ? p->interrupt_fd[v] : -1;
}
