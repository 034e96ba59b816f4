// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: the per-context service thread, which keeps the device's
 * completion-channel pool filled.
 *
 * The device writes one VHCA_SERVICE_REFILL_CHANNELS byte into the service
 * pipe whenever its pool runs low; for each such byte the thread creates
 * VHCA_CHANNEL_BATCH pipes and hands them over with VHCA_CMD_ADD_CHANNELS.
 * The device holds the pipe's only write end, so EOF on it means the
 * device is gone (vhcad died): the thread then runs the context's loss
 * handler (lost.c).  vhca_service_stop() wakes it through an eventfd.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vhca.h"

/* VHCA_CMD_ADD_CHANNELS as written to the command file. */
struct vhca_add_channels_req {
	struct ib_uverbs_cmd_hdr hdr;
	struct vhca_add_channels_cmd cmd;
};
static_assert(sizeof(struct vhca_add_channels_req) ==
		      sizeof(struct ib_uverbs_cmd_hdr) +
			      sizeof(struct vhca_add_channels_cmd),
	      "ADD_CHANNELS request must not contain padding");
static_assert(sizeof(struct vhca_add_channels_req) % 4 == 0,
	      "write-ABI commands are a whole number of words");

/* Hands one batch of new pipes to the device. */
static void vhca_service_refill(struct vhca_service *svc)
{
	struct vhca_add_channels_req req;
	struct vhca_fd_pair *chan = req.cmd.channels;
	unsigned int n;
	ssize_t ret;
	int num;

	memset(&req, 0, sizeof(req));
	num = vhca_channel_batch_open(chan, VHCA_CHANNEL_BATCH);
	if (num < 0)
		return; /* out of fds: the device will ask again */
	n = (unsigned int)num;

	if (vhca_pool_track(svc->pool, chan, n)) {
		vhca_channel_batch_close(chan, n);
		return;
	}

	req.hdr.command = VHCA_CMD_ADD_CHANNELS;
	req.hdr.in_words = sizeof(req) / 4;
	req.hdr.out_words = 0;
	req.cmd.num_channels = n;

	/*
	 * One synchronous command.  Signals are blocked in this thread, and
	 * an interrupted FUSE request only fails if the device answered
	 * EINTR itself, so a failure always means the device kept nothing.
	 */
	ret = write(svc->cmd_fd, &req, sizeof(req));
	if (ret != (ssize_t)sizeof(req)) {
		vhca_pool_untrack(svc->pool, chan, n);
		vhca_channel_batch_close(chan, n);
		return;
	}

	vhca_pool_keep_writers(svc->pool, chan, n);
}

static void *vhca_service_thread(void *arg)
{
	struct vhca_service *svc = arg;
	char buf[64];
	ssize_t n;
	ssize_t i;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = svc->read_fd, .events = POLLIN },
			{ .fd = svc->quit_fd, .events = POLLIN },
		};

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents || atomic_load(&svc->stop))
			break;
		n = read(svc->read_fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		if (n == 0) {
			/* No writer left: the device is gone. */
			if (svc->lost)
				svc->lost(svc->lost_arg);
			break;
		}
		for (i = 0; i < n; i++) {
			if (atomic_load(&svc->stop))
				return NULL;
			if (buf[i] == VHCA_SERVICE_REFILL_CHANNELS)
				vhca_service_refill(svc);
			/* anything else only wakes us up */
		}
	}
	return NULL;
}

int vhca_service_start(struct vhca_service *svc, int cmd_fd,
		       struct vhca_fd_pair *pair,
		       struct vhca_channel_pool *pool,
		       void (*lost)(void *arg), void *lost_arg)
{
	sigset_t all;
	sigset_t old;
	int ret;

	svc->cmd_fd = cmd_fd;
	svc->read_fd = pair->read_fd;
	svc->pool = pool;
	svc->lost = lost;
	svc->lost_arg = lost_arg;
	atomic_init(&svc->stop, false);
	svc->running = false;
	svc->owner = getpid();
	svc->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (svc->quit_fd < 0) {
		ret = errno;
		goto err;
	}

	/* The thread must never take the application's signals. */
	sigfillset(&all);
	ret = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (ret)
		goto err;
	ret = pthread_create(&svc->thread, NULL, vhca_service_thread, svc);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		goto err;

	pthread_setname_np(svc->thread, "vhca-service");
	svc->running = true;
	pair->read_fd = -1;
	return 0;

err:
	vhca_close_fd(&svc->quit_fd);
	svc->read_fd = -1;
	return ret;
}

void vhca_service_stop(struct vhca_service *svc)
{
	uint64_t one = 1;
	ssize_t ret;

	/*
	 * A forked child that closes an inherited context has no thread to
	 * stop (and must not wake the parent's through the shared eventfd).
	 */
	if (svc->running && svc->owner != getpid())
		svc->running = false;

	if (svc->running) {
		atomic_store(&svc->stop, true);
		do {
			ret = write(svc->quit_fd, &one, sizeof(one));
		} while (ret < 0 && errno == EINTR);
		pthread_join(svc->thread, NULL);
		svc->running = false;
	}
	vhca_close_fd(&svc->read_fd);
	vhca_close_fd(&svc->quit_fd);
}
