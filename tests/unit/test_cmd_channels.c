// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * test_cmd: completion channels and their pool, a context's ownership,
 * commands from many threads, and what release frees.
 */
#include "cmd_harness.h"

void test_channels(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct ib_uverbs_comp_event_desc comp;
	struct ib_uverbs_async_event_desc async;
	struct vhca_comp_channel *chan;
	int fd[VHCA_CHANNEL_BATCH], again;
	struct stat st;
	bool pooled = true;
	unsigned int pool;
	char buf[16];

	for (int i = 0; i < 5; i++) {
		int ret = create_channel(u, &fd[i]);

		CHECK(ret == 0, "CREATE_COMP_CHANNEL %d: %s", i, strerror(ret));
	}
	for (int i = 0; i < 5; i++) {
		bool found = false;

		for (int j = 0; j < VHCA_CHANNEL_BATCH; j++)
			found |= fd[i] == g.channels[j].read_fd;
		pooled &= found && !fstat(fd[i], &st) && S_ISFIFO(st.st_mode);
	}
	CHECK(pooled, "channel fds are pooled read ends");
	CHECK(stats_are(1, 0, 0, 5), STATS_FMT, STATS_ARGS);
	/* 8 - 5 = 3 <= 4 left: the provider is asked, once. */
	CHECK(drain(g.service.read_fd, buf, sizeof(buf)) == 1 &&
		      buf[0] == VHCA_SERVICE_REFILL_CHANNELS,
	      "refill requested once");

	/* Events in the kernel formats, on the guest's fds. */
	chan = vhca_channels_get_comp(&u->channels, u->peer, fd[1]);
	CHECK(chan && chan->guest_fd == fd[1], "channel by fd");
	if (chan) {
		uint32_t read_a = 0, read_b = 0;

		CHECK(vhca_comp_channel_post(chan, 0x1122334455667788ULL,
					     &read_a) == 0,
		      "post comp event");
		CHECK(vhca_comp_channel_post(chan, 2, &read_b) == 0 &&
			      vhca_comp_channel_post(chan, 3, &read_a) == 0,
		      "post two more");
		CHECK(read(fd[1], &comp, sizeof(comp)) == sizeof(comp) &&
			      comp.cq_handle == 0x1122334455667788ULL,
		      "comp event record");
		int unread_bytes = -1;

		/*
		 * Only what the guest read counts as reported (DESTROY_CQ),
		 * and A's unread record (3) leaves the pipe with A, as the
		 * kernel drops it; B's stays.
		 */
		vhca_comp_channel_forget(chan, u->peer, &read_a);
		CHECK(read_a == 1, "read events of A: %u, expected 1", read_a);
		CHECK(ioctl(fd[1], FIONREAD, &unread_bytes) == 0 &&
			      unread_bytes == (int)sizeof(comp),
		      "one record left after purging A: %d bytes",
		      unread_bytes);
		CHECK(read(fd[1], &comp, sizeof(comp)) == sizeof(comp) &&
			      comp.cq_handle == 2,
		      "B's record survives the purge");
		vhca_comp_channel_forget(chan, u->peer, &read_b);
		CHECK(read_b == 1, "read events of B: %u, expected 1", read_b);
		vhca_comp_channel_forget(chan, u->peer, &read_b);
		CHECK(read_a == 1 && read_b == 1,
		      "nothing credited twice: a %u b %u", read_a, read_b);
		vhca_comp_channel_put(chan);
	}
	CHECK(!vhca_channels_get_comp(&u->channels, u->peer,
				      g.async_event.read_fd),
	      "async fd is no completion channel");
	CHECK(vhca_channels_post_async(&u->channels, 42,
				       IBV_EVENT_PORT_ACTIVE, NULL) == 0,
	      "post async event");
	CHECK(read(g.async_event.read_fd, &async, sizeof(async)) ==
			      sizeof(async) &&
		      async.element == 42 &&
		      async.event_type == IBV_EVENT_PORT_ACTIVE &&
		      !async.reserved,
	      "async event record");
	{
		/*
		 * DESTROY_QP/SRQ/CQ report the object's events the guest has
		 * read, not those posted: here object a gets 3 events and b
		 * 1, interleaved with a port event; the guest reads 2.
		 */
		uint32_t read_a = 0, read_b = 0;

		vhca_channels_post_async(&u->channels, 1,
					 IBV_EVENT_QP_LAST_WQE_REACHED, &read_a);
		vhca_channels_post_async(&u->channels, 1, IBV_EVENT_PORT_ERR,
					 NULL);
		vhca_channels_post_async(&u->channels, 2,
					 IBV_EVENT_SRQ_LIMIT_REACHED, &read_b);
		vhca_channels_post_async(&u->channels, 1,
					 IBV_EVENT_QP_ACCESS_ERR, &read_a);
		vhca_channels_post_async(&u->channels, 1,
					 IBV_EVENT_QP_REQ_ERR, &read_a);
		CHECK(read(g.async_event.read_fd, &async, sizeof(async)) ==
				      sizeof(async) &&
			      read(g.async_event.read_fd, &async,
				   sizeof(async)) == sizeof(async),
		      "read two async records");
		int unread_bytes = -1;

		/* Destroying a takes its two unread records out, as the
		 * kernel drops them; b's stays. */
		vhca_channels_forget_async(&u->channels, u->peer, &read_a);
		CHECK(read_a == 1 && read_b == 0,
		      "async events read: a %u (want 1) b %u (want 0)", read_a,
		      read_b);
		CHECK(ioctl(g.async_event.read_fd, FIONREAD, &unread_bytes) ==
				      0 &&
			      unread_bytes == (int)sizeof(async),
		      "one record left after purging a: %d bytes",
		      unread_bytes);
		CHECK(read(g.async_event.read_fd, &async, sizeof(async)) ==
				      sizeof(async) &&
			      async.element == 2 &&
			      async.event_type == IBV_EVENT_SRQ_LIMIT_REACHED,
		      "b's record survives the purge");
		vhca_channels_forget_async(&u->channels, u->peer, &read_b);
		CHECK(read_a == 1 && read_b == 1,
		      "b credited once read: a %u b %u", read_a, read_b);
		vhca_channels_forget_async(&u->channels, u->peer, &read_b);
		CHECK(read_a == 1 && read_b == 1,
		      "nothing credited twice: a %u b %u", read_a, read_b);
	}

	/* The guest closes channels: reaped on the next create. */
	guest_close_channel(&g, fd[0]);
	guest_close_channel(&g, fd[1]);
	chan = vhca_channels_get_comp(&u->channels, u->peer, fd[2]);
	REQUIRE(chan, "channel 2");
	CHECK(create_channel(u, &fd[5]) == 0, "create after closes");
	CHECK(stats_are(1, 0, 0, 4), "closed channels reaped: " STATS_FMT,
	      STATS_ARGS);
	guest_close_channel(&g, fd[2]);
	vhca_channels_reap(&u->channels);
	CHECK(stats_are(1, 0, 0, 3), STATS_FMT, STATS_ARGS);
	CHECK(vhca_comp_channel_post(chan, 1, NULL) == -EPIPE,
	      "post to a reaped channel a CQ still holds");
	vhca_comp_channel_put(chan);

	/* Response fault: the pipe goes back to the pool. */
	pool = u->channels.pool_len;
	CHECK(create_channel_at(u, unmapped, NULL) == EFAULT,
	      "CREATE_COMP_CHANNEL response unmapped");
	CHECK(stats_are(1, 0, 0, 3), STATS_FMT, STATS_ARGS);
	CHECK(u->channels.pool_len == pool, "pool %u -> %u", pool,
	      u->channels.pool_len);
	CHECK(create_channel(u, &again) == 0 && again >= 0,
	      "create after the fault");

	/* Async pipe closed by the guest: EPIPE, tolerated. */
	close(g.async_event.read_fd);
	g.async_event.read_fd = -1;
	CHECK(vhca_channels_post_async(&u->channels, 1, 1, NULL) == -EPIPE,
	      "async post after close");

	/* Pool exhausted, nobody refills: bounded wait, then EMFILE. */
	u->channels.refill_timeout_ms = 100;
	while (!create_channel(u, NULL))
		;
	{
		struct timespec t0, t1;
		int ret;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		ret = create_channel(u, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		CHECK(ret == EMFILE, "empty pool: %s", strerror(ret));
		CHECK(t1.tv_sec - t0.tv_sec < 2, "bounded wait");
	}
	CHECK(atomic_load(&dev->stats.comp_channels) == 4 + pool - 1,
	      STATS_FMT, STATS_ARGS);

	/* The service pipe gone too: EMFILE at once. */
	close(g.service.read_fd);
	g.service.read_fd = -1;
	u->channels.refill_pending = false;
	u->channels.refill_timeout_ms = 5000;
	{
		struct timespec t0, t1;
		int ret;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		ret = create_channel(u, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		CHECK(ret == EMFILE && t1.tv_sec - t0.tv_sec < 2,
		      "no service: %s", strerror(ret));
	}

	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g);
}

/* The provider's service thread: refills on request, on another thread. */
struct service {
	struct vhca_ucontext *u;
	int read_fd;
	atomic_bool stop;
	unsigned int batches, failures;
	struct vhca_fd_pair pairs[64][VHCA_CHANNEL_BATCH];
};

static void *service_thread(void *arg)
{
	struct service *s = arg;

	while (!atomic_load(&s->stop) && s->batches < 64) {
		struct pollfd pfd = { .fd = s->read_fd, .events = POLLIN };
		struct vhca_add_channels_cmd add = { 0 };
		char byte;

		if (poll(&pfd, 1, 20) != 1 || read(s->read_fd, &byte, 1) != 1)
			continue;
		/* No CHECK here: the counters belong to the main thread. */
		add.num_channels = VHCA_CHANNEL_BATCH;
		for (int i = 0; i < VHCA_CHANNEL_BATCH; i++) {
			if (try_open_pair(&s->pairs[s->batches][i]))
				s->failures++;
			add.channels[i] = s->pairs[s->batches][i];
		}
		if (add_channels_as(s->u, gettid(), &add, 0))
			s->failures++;
		for (int i = 0; i < VHCA_CHANNEL_BATCH; i++) {
			close(s->pairs[s->batches][i].write_fd);
			s->pairs[s->batches][i].write_fd = -1;
		}
		s->batches++;
	}
	return NULL;
}

void test_refill(void)
{
	static struct service s;
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	unsigned int created = 0;
	pthread_t thread;
	int ret;

	s.u = u;
	s.read_fd = g.service.read_fd;
	atomic_init(&s.stop, false);
	ret = pthread_create(&thread, NULL, service_thread, &s);
	REQUIRE(ret == 0, "pthread_create");
	for (int i = 0; i < 40; i++)
		created += !create_channel(u, NULL);
	CHECK(created == 40, "%u of 40 channels created", created);
	CHECK(atomic_load(&dev->stats.comp_channels) == 40, STATS_FMT,
	      STATS_ARGS);
	atomic_store(&s.stop, true);
	pthread_join(thread, NULL);
	CHECK(s.batches >= 4 && !s.failures, "batches %u failures %u",
	      s.batches, s.failures);
	CHECK(u->channels.pool_len <= VHCA_CHANNEL_POOL_MAX, "pool %u",
	      u->channels.pool_len);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	for (unsigned int b = 0; b < s.batches; b++)
		for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
			close_pair(&s.pairs[b][i]);
	close_guest_fds(&g);
}

void test_add_channels_errors(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u;
	struct vhca_add_channels_cmd add;
	struct vhca_fd_pair pairs[VHCA_CHANNEL_BATCH];
	unsigned int pool, fds_before;
	int ret;

	u = vhca_cmd_open(dev);
	REQUIRE(u, "open");
	open_guest_fds(&g, 2);
	ret = get_context(u, &g, &(struct get_context_resp){ 0 });
	REQUIRE(ret == 0, "GET_CONTEXT");
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		open_pair(&pairs[i]);
	fds_before = open_fds();
	pool = u->channels.pool_len;

	memset(&add, 0, sizeof(add));
	add.num_channels = 2;
	add.channels[0] = pairs[0];
	add.channels[1] = pairs[1];
	CHECK(add_channels_as(u, gettid(), &add, 8) == EINVAL, "out_words");
	add.num_channels = 0;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL, "0 channels");
	add.num_channels = VHCA_CHANNEL_BATCH + 1;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL, "too many");
	add.num_channels = 2;
	add.reserved = 1;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL, "reserved");
	add.reserved = 0;
	add.channels[1].write_fd = add.channels[1].read_fd;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL,
	      "second pair bad");
	add.channels[1] = pairs[1];
	add.channels[1].read_fd = pairs[2].read_fd;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL,
	      "mismatched ends");
	CHECK(u->channels.pool_len == pool && open_fds() == fds_before,
	      "a failed ADD_CHANNELS kept something");

	add.channels[1] = pairs[1];
	CHECK(add_channels_as(u, gettid(), &add, 0) == 0, "ADD_CHANNELS");
	CHECK(u->channels.pool_len == pool + 2, "pool %u",
	      u->channels.pool_len);

	/* Fill the pool to its cap, then one more batch is refused. */
	add.num_channels = VHCA_CHANNEL_BATCH;
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		add.channels[i] = pairs[i];
	while (u->channels.pool_len + VHCA_CHANNEL_BATCH <=
	       VHCA_CHANNEL_POOL_MAX) {
		ret = add_channels_as(u, gettid(), &add, 0);
		REQUIRE(ret == 0, "filling the pool");
	}
	CHECK(add_channels_as(u, gettid(), &add, 0) == ENOSPC, "pool full");

	vhca_cmd_release(u);
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		close_pair(&pairs[i]);
	close_guest_fds(&g);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
}

/*
 * A context belongs to the process that ran GET_CONTEXT.  The owner here
 * is a forked child (its memory receives the responses; it inherited our
 * pipes under the same numbers), so we are the foreign process; once the
 * child dies the context refuses everything with EIO.
 */
void test_ownership(void)
{
	static struct get_context_resp child_resp;
	static struct ib_uverbs_alloc_pd_resp child_pd;
	struct ib_uverbs_alloc_pd ap = { .response = (uintptr_t)&child_pd };
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u;
	struct cmd_buf c;
	int status, ret;
	size_t len;
	pid_t child;

	u = vhca_cmd_open(dev);
	REQUIRE(u, "open");
	open_guest_fds(&g, VHCA_CHANNEL_BATCH);
	child = fork();
	REQUIRE(child >= 0, "fork");
	if (!child) {
		pause();
		_exit(0);
	}

	ret = get_context_as(u, child, &g, sizeof(g), &child_resp);
	CHECK(ret == 0, "GET_CONTEXT for the child: %s", strerror(ret));
	len = frame(&c, IB_USER_VERBS_CMD_ALLOC_PD, &ap, sizeof(ap), NULL, 0,
		    sizeof(child_pd));
	CHECK(submit_as(u, child, &c, len) == 0, "owner's ALLOC_PD");
	CHECK(submit(u, &c, len) == EACCES, "foreign ALLOC_PD");
	CHECK(submit_as(u, 1, &c, len) == EACCES, "pid 1's ALLOC_PD");
	CHECK(get_context_as(u, gettid(), &g, sizeof(g), &child_resp) ==
		      EACCES,
	      "foreign GET_CONTEXT");
	CHECK(stats_are(1, 1, 0, 0), STATS_FMT, STATS_ARGS);

	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	CHECK(submit_as(u, child, &c, len) == EIO, "dead owner's pid");
	CHECK(submit(u, &c, len) == EIO, "anyone, after the owner died");
	CHECK(create_channel(u, NULL) == EIO, "channels after owner died");

	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g);
}

/* Threads of the owner share its context, serialised per command. */
struct hammer {
	struct vhca_ucontext *u;
	uint32_t pd;
	unsigned int errors;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	static char buf[4096];

	for (int i = 0; i < 200; i++) {
		struct ib_uverbs_reg_mr_resp r;
		uint32_t pd;

		if (alloc_pd(h->u, &pd) || dealloc_pd(h->u, pd))
			h->errors++;
		if (reg_mr(h->u, h->pd, buf, sizeof(buf), 0, &r) ||
		    dereg_mr(h->u, r.mr_handle))
			h->errors++;
	}
	return NULL;
}

void test_threads(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct hammer h[4];
	pthread_t t[4];
	uint32_t pd;
	int ret;

	ret = alloc_pd(u, &pd);
	REQUIRE(ret == 0, "alloc_pd");
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ .u = u, .pd = pd };
		ret = pthread_create(&t[i], NULL, hammer_thread, &h[i]);
		REQUIRE(ret == 0, "pthread_create");
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(!h[i].errors, "thread %d: %u errors", i, h[i].errors);
	}
	CHECK(stats_are(1, 1, 0, 0), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u);
	close_guest_fds(&g);
}

/* Release with everything held: all of it goes, counts exact. */
void test_release_frees_all(void)
{
	unsigned int fds_before = open_fds();
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	static char buf[1 << 16];
	uint32_t pd[3];
	int ret = 0;

	for (int i = 0; i < 3; i++)
		ret |= alloc_pd(u, &pd[i]);
	for (int i = 0; i < 50; i++)
		ret |= reg_mr(u, pd[i % 3], buf + i, 100, 0, NULL);
	for (int i = 0; i < 5; i++)
		ret |= create_channel(u, NULL);
	CHECK(ret == 0, "resources");
	CHECK(stats_are(1, 3, 50, 5), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	CHECK(atomic_load(&dev->open_files) == 0, "open_files");
	close_guest_fds(&g);
	CHECK(open_fds() == fds_before, "fds %u -> %u", fds_before,
	      open_fds());
}
