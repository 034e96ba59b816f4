// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The attacks of security issue 9, one sub-command each, and the clean
 * pair that must keep running beside them.  The test_*.sh scripts here
 * run them; docs/security.md says what each shows.
 *
 *   attacks bystander DEV_A DEV_B SECONDS MAX_MS
 *       an RC ping-pong between two VFs for SECONDS; fails if it stops,
 *       errs, a message arrives changed, the unused rest of its buffers
 *       (registered with every remote right) changes, or one round trip
 *       takes longer than MAX_MS; prints its endpoints ("targets
 *       LID:QPN:RKEY:ADDR ...", for the fuzzers to aim at) and its
 *       latency percentiles ("p50 N us")
 *   attacks daemon_death DEV
 *       waits in ibv_get_cq_event, ibv_get_async_event and a poll loop
 *       while the test kills vhcad: each must come back with an error
 *   attacks stall_map DEV_A DEV_B FILE SECONDS
 *       an MR over a MAP_PRIVATE mapping of FILE (a file of vhcad's own
 *       sysfs view, or of a filesystem that stalls), RDMA WRITEs into it
 *       from the other VF, and 16 threads issuing commands meanwhile
 *   attacks uffd DEV_A DEV_B
 *       an MR over a userfaultfd range nobody serves, and a command whose
 *       response buffer is in one
 *   attacks channel_starve DEV THREADS
 *       THREADS threads in CREATE_COMP_CHANNEL on a context that never
 *       refills its channel pool
 *   attacks cq_flood DEV MAX
 *       CQs until the device refuses one (or MAX)
 *   attacks context_flood DEV MAX
 *       contexts until the device refuses one (or MAX)
 *   attacks ring_amplify DEV QPS
 *       QPs with sparse 64 MiB send rings whose heads the guest bumps to
 *       full without writing a WQE
 *   attacks big_writes DEV_A DEV_B SECONDS
 *       back-to-back 256 MiB RDMA WRITEs between the VFs
 *   attacks qp_timers DEV_A DEV_B QPS SECONDS
 *       QPS RC QPs each waiting for the ACK of a SEND nobody answers
 *   attacks idle_contexts DEV COUNT SECONDS
 *       COUNT open, idle contexts
 *   attacks qpn_churn DEV COUNT QPN
 *       creates and destroys COUNT QPs; fails if one gets number QPN
 *   attacks victim DEV_A DEV_B DIR
 *       an RC pair whose DEV_B side is destroyed: writes the surviving
 *       QP's address (DIR/victim.info) and the number the destroyed peer
 *       had (DIR/old_peer.qpn), then checks its memory is untouched once
 *       DIR/attacker.done appears
 *   attacks qkey DEV QKEY
 *       a UD QP set to Q_Key QKEY: prints "qkey: 0" or the errno
 *   attacks source_check DEV DIR
 *       a QP on DEV connects to the victim's QP (DIR/victim.info) and
 *       RDMA READs and WRITEs its MR: the victim's port must drop it
 *
 * Exit status: 0 contained (or the attack's effect as expected), 1 the
 * defence failed, 2 a broken set-up.
 */
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "attack.h"
#include "raw.h"

/* Two connected RC endpoints, on contexts of @a and @b, in this process. */
struct pair {
	struct rc_ep x, y;
	uint8_t *xbuf, *ybuf;
};

static void pair_open(struct pair *p, const char *a, const char *b,
		      size_t len)
{
	struct ibv_context *ca = must_open(a), *cb = must_open(b);
	struct ep_info ix, iy;

	memset(p, 0, sizeof(*p));
	p->xbuf = calloc(1, len);
	p->ybuf = calloc(1, len);
	if (!p->xbuf || !p->ybuf)
		die("buffers");
	rc_ep_create(&p->x, ca, ibv_alloc_pd(ca));
	rc_ep_create(&p->y, cb, ibv_alloc_pd(cb));
	rc_ep_reg(&p->x, p->xbuf, len);
	rc_ep_reg(&p->y, p->ybuf, len);
	ix = rc_ep_info(&p->x);
	iy = rc_ep_info(&p->y);
	rc_ep_connect(&p->x, &iy);
	rc_ep_connect(&p->y, &ix);
}

/* ---- the clean pair ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* What round trip @n carries from side @side ('x' or 'y'). */
static void message(uint8_t *buf, uint64_t n, char side)
{
	for (int i = 0; i < 64; i++)
		buf[i] = (uint8_t)(n * 131 + (uint64_t)i * 7 + (uint8_t)side);
}

/* @buf holds what round trip @n sends from @side; says so if not. */
static bool arrived(const uint8_t *buf, uint64_t n, char side,
		    const char *what)
{
	uint8_t expect[64];

	message(expect, n, side);
	if (!memcmp(buf, expect, sizeof(expect)))
		return true;
	printf("bystander: round trip %" PRIu64 ": the %s arrived changed\n",
	       n, what);
	return false;
}

/* The rest of each buffer is registered with every remote right, unused. */
static void guard_fill(uint8_t *buf, char side)
{
	for (int i = 64; i < 4096; i++)
		buf[i] = (uint8_t)(i * 13 + (uint8_t)side);
}

static bool guard_intact(const uint8_t *buf, char side)
{
	for (int i = 64; i < 4096; i++)
		if (buf[i] != (uint8_t)(i * 13 + (uint8_t)side))
			return false;
	return true;
}

static int bystander(const char *a, const char *b, int seconds, int max_ms)
{
	static uint64_t rtt[1 << 20];
	uint64_t end, n = 0, worst = 0;
	struct ep_info ix, iy;
	struct pair p;

	pair_open(&p, a, b, 4096);
	guard_fill(p.xbuf, 'x');
	guard_fill(p.ybuf, 'y');
	/* Where an attacker would aim (the fuzzers do): LID:QPN:RKEY:ADDR. */
	ix = rc_ep_info(&p.x);
	iy = rc_ep_info(&p.y);
	printf("bystander: targets %u:%u:%u:%" PRIu64 " %u:%u:%u:%" PRIu64 "\n",
	       ix.lid, ix.qpn, ix.rkey, ix.addr, iy.lid, iy.qpn, iy.rkey,
	       iy.addr);
	printf("bystander: running\n");
	end = now_us() + (uint64_t)seconds * 1000000;
	while (now_us() < end) {
		uint64_t t0 = now_us(), t;

		/* y answers x: x sends, y receives and sends back. */
		message(p.xbuf, n, 'x');
		if (post_recv(&p.y, 1, 64) || post_recv(&p.x, 2, 64) ||
		    post_send(&p.x, 3, 64))
			die("bystander: post: %s", strerror(errno));
		if (!wait_ok(&p.y, max_ms, "bystander: receive") ||
		    !arrived(p.ybuf, n, 'x', "message"))
			goto failed;
		message(p.ybuf, n, 'y');
		if (post_send(&p.y, 4, 64) ||
		    !wait_ok(&p.x, max_ms, "bystander: send") ||
		    !wait_ok(&p.y, max_ms, "bystander: answer sent") ||
		    !wait_ok(&p.x, max_ms, "bystander: answer") ||
		    !arrived(p.xbuf, n, 'y', "answer"))
			goto failed;
		if (!guard_intact(p.xbuf, 'x') || !guard_intact(p.ybuf, 'y')) {
			printf("bystander: round trip %" PRIu64
			       ": memory it never uses was written\n", n);
			goto failed;
		}
		t = now_us() - t0;
		if (t > worst)
			worst = t;
		if (n < sizeof(rtt) / sizeof(rtt[0]))
			rtt[n] = t;
		n++;
	}
	if (n > sizeof(rtt) / sizeof(rtt[0]))
		n = sizeof(rtt) / sizeof(rtt[0]);
	qsort(rtt, n, sizeof(rtt[0]), cmp_u64);
	printf("bystander: %" PRIu64 " round trips, p50 %" PRIu64
	       " us, p99 %" PRIu64 " us, max %" PRIu64 " us\n",
	       n, n ? rtt[n / 2] : 0, n ? rtt[n * 99 / 100] : 0, worst);
	return !n || worst > (uint64_t)max_ms * 1000;
failed:
	printf("bystander: FAILED after %" PRIu64 " round trips\n", n);
	return 1;
}

/* ---- the daemon dies --------------------------------------------------- */

struct death {
	struct ibv_context *ctx;
	struct ibv_comp_channel *ch;
	struct ibv_cq *ev_cq, *poll_cq;
	int cq_event_ret, cq_event_errno, poll_ret, async_type;
	bool cq_event_done, poll_done, async_done;
};

static void *wait_cq_event(void *arg)
{
	struct death *d = arg;
	struct ibv_cq *cq;
	void *cq_ctx;

	errno = 0;
	d->cq_event_ret = ibv_get_cq_event(d->ch, &cq, &cq_ctx);
	d->cq_event_errno = errno;
	if (!d->cq_event_ret) {
		struct ibv_wc wc;

		/* woken for our CQ: polling it must say the device is gone */
		d->cq_event_ret = cq == d->ev_cq ? ibv_poll_cq(cq, 1, &wc) :
						   -1000;
		ibv_ack_cq_events(cq, 1);
	}
	__atomic_store_n(&d->cq_event_done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void *wait_async(void *arg)
{
	struct death *d = arg;
	struct ibv_async_event ev;

	if (!ibv_get_async_event(d->ctx, &ev)) {
		d->async_type = ev.event_type;
		ibv_ack_async_event(&ev);
	} else {
		d->async_type = -1;
	}
	__atomic_store_n(&d->async_done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void *poll_forever(void *arg)
{
	struct death *d = arg;
	struct ibv_wc wc;
	int n;

	while (!(n = ibv_poll_cq(d->poll_cq, 1, &wc)))
		usleep(100);
	d->poll_ret = n;
	__atomic_store_n(&d->poll_done, true, __ATOMIC_RELEASE);
	return NULL;
}

static int daemon_death(const char *dev)
{
	struct death d = { .ctx = must_open(dev) };
	struct ibv_async_event ev;
	pthread_t t[3];
	uint64_t deadline;
	int bad = 0;

	d.ch = ibv_create_comp_channel(d.ctx);
	d.ev_cq = ibv_create_cq(d.ctx, 16, NULL, d.ch, 0);
	d.poll_cq = ibv_create_cq(d.ctx, 16, NULL, NULL, 0);
	if (!d.ch || !d.ev_cq || !d.poll_cq || ibv_req_notify_cq(d.ev_cq, 0))
		die("daemon_death: set-up: %s", strerror(errno));
	pthread_create(&t[0], NULL, wait_cq_event, &d);
	pthread_create(&t[1], NULL, wait_async, &d);
	pthread_create(&t[2], NULL, poll_forever, &d);
	printf("daemon_death: waiting\n");
	/* The test kills vhcad now; everyone must hear of it in time. */
	deadline = now_us() + 60ull * 1000000;
	while (now_us() < deadline &&
	       !(__atomic_load_n(&d.cq_event_done, __ATOMIC_ACQUIRE) &&
		 __atomic_load_n(&d.async_done, __ATOMIC_ACQUIRE) &&
		 __atomic_load_n(&d.poll_done, __ATOMIC_ACQUIRE)))
		usleep(10000);
	if (!d.cq_event_done || !d.async_done || !d.poll_done) {
		printf("daemon_death: HUNG: cq_event %d async %d poll %d\n",
		       d.cq_event_done, d.async_done, d.poll_done);
		return 1;
	}
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("daemon_death: get_cq_event then poll: %d (errno %s)\n",
	       d.cq_event_ret, strerror(d.cq_event_errno));
	printf("daemon_death: async event: %s\n",
	       d.async_type < 0 ? "none" :
				  ibv_event_type_str(
					  (enum ibv_event_type)d.async_type));
	printf("daemon_death: poller: %d\n", d.poll_ret);
	bad |= d.cq_event_ret >= 0;
	bad |= d.async_type != IBV_EVENT_DEVICE_FATAL;
	bad |= d.poll_ret >= 0;
	/*
	 * And from now on the event fds fail with an errno, not 0.  A waiter
	 * that was blocked at the death may see the last record twice (the
	 * provider's lost.c says why): the third read fails for sure.
	 */
	{
		struct ibv_cq *cq;
		void *cq_ctx;
		int r;

		errno = 0;
		r = ibv_get_async_event(d.ctx, &ev);
		if (!r && ev.event_type == IBV_EVENT_DEVICE_FATAL) {
			ibv_ack_async_event(&ev);	/* the duplicate */
			errno = 0;
			r = ibv_get_async_event(d.ctx, &ev);
		}
		if (!r || errno != EIO) {
			printf("daemon_death: async fd after the event: %d, errno %d\n",
			       r, errno);
			bad = 1;
		}
		errno = 0;
		r = ibv_get_cq_event(d.ch, &cq, &cq_ctx);
		if (!r && cq == d.ev_cq) {
			ibv_ack_cq_events(cq, 1);	/* the duplicate */
			errno = 0;
			r = ibv_get_cq_event(d.ch, &cq, &cq_ctx);
		}
		if (!r || errno != EIO) {
			printf("daemon_death: channel after the event: %d, errno %d\n",
			       r, errno);
			bad = 1;
		}
	}
	printf("daemon_death: %s\n", bad ? "FAILED" : "every waiter got an error");
	return bad;
}

/* ---- memory that faults slowly -------------------------------------- */

struct cmd_storm {
	struct ibv_context *ctx;
	atomic_bool stop;
	atomic_ulong done;
};

static void *storm(void *arg)
{
	struct cmd_storm *s = arg;

	while (!atomic_load(&s->stop)) {
		struct ibv_pd *pd = ibv_alloc_pd(s->ctx);

		if (pd)
			ibv_dealloc_pd(pd);
		atomic_fetch_add(&s->done, 1);
	}
	return NULL;
}

/*
 * The target side registers a MAP_PRIVATE mapping of @file; the other VF
 * RDMA WRITEs into it, so the target's engine turn takes the page faults.
 */
static int stall_map(const char *a, const char *b, const char *file,
		     int seconds)
{
	struct ibv_context *ca = must_open(a), *cb = must_open(b);
	struct cmd_storm s = { .ctx = ca };
	struct rc_ep x = { 0 }, y = { 0 };
	struct ep_info ix, iy;
	pthread_t threads[16];
	size_t len = 64 * 1024;
	uint64_t t0, took;
	struct ibv_wc wc;
	struct stat st;
	int fd, got;
	void *map;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st))
		die("stall_map: %s: %s", file, strerror(errno));
	/* Within the file: a page past its end would just fault (SIGBUS). */
	if ((size_t)st.st_size < len)
		len = (size_t)st.st_size;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		die("stall_map: mmap %s: %s", file, strerror(errno));
	rc_ep_create(&x, ca, ibv_alloc_pd(ca));
	rc_ep_create(&y, cb, ibv_alloc_pd(cb));
	rc_ep_reg(&x, map, len);	/* never touched here */
	rc_ep_reg(&y, calloc(1, len), len);
	ix = rc_ep_info(&x);
	iy = rc_ep_info(&y);
	rc_ep_connect(&x, &iy);
	rc_ep_connect(&y, &ix);
	for (int i = 0; i < 16; i++)
		pthread_create(&threads[i], NULL, storm, &s);
	printf("stall_map: writing into a mapping of %s\n", file);
	t0 = now_us();
	if (rc_ep_post(&y, IBV_WR_RDMA_WRITE, 1, 0, (uint32_t)len, ix.addr,
		       ix.rkey))
		die("stall_map: post: %s", strerror(errno));
	got = rc_ep_wait(&y, &wc, (seconds + 30) * 1000);
	took = now_us() - t0;
	atomic_store(&s.stop, true);
	for (int i = 0; i < 16; i++)
		pthread_join(threads[i], NULL);
	printf("stall_map: WRITE %s after %" PRIu64 " ms; %lu commands meanwhile\n",
	       got ? ibv_wc_status_str(wc.status) : "no completion",
	       took / 1000, atomic_load(&s.done));
	return got ? 0 : 1;
}

/* ---- userfaultfd ---------------------------------------------------------- */

static int uffd_register(void *addr, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) ||
	    ioctl(fd, UFFDIO_REGISTER, &reg))
		die("userfaultfd: %s (vm.unprivileged_userfaultfd?)",
		    strerror(errno));
	return fd;
}

struct blocked_cmd {
	int fd;
	void *response;
	int ret;
	atomic_bool done;
};

static void *alloc_pd_into(void *arg)
{
	struct blocked_cmd *b = arg;
	struct ib_uverbs_alloc_pd core = { .response = (uintptr_t)b->response };

	b->ret = raw_cmd(b->fd, IB_USER_VERBS_CMD_ALLOC_PD, &core, sizeof(core),
			 NULL, 0, sizeof(struct ib_uverbs_alloc_pd_resp));
	atomic_store(&b->done, true);
	return NULL;
}

static int uffd_attack(const char *a, const char *b)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 16 * page;
	struct blocked_cmd blocked = { 0 };
	struct rc_ep x = { 0 }, y = { 0 };
	struct ibv_context *ca = must_open(a), *cb = must_open(b);
	struct ep_info ix, iy;
	struct raw_ctx raw;
	struct ibv_wc wc;
	pthread_t t;
	uint8_t *area;
	int uffd, bad = 0, status;

	area = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uffd = uffd_register(area, 2 * len);
	/* 1. An MR over pages a uffd owns: the device fails at once. */
	rc_ep_create(&x, ca, ibv_alloc_pd(ca));
	rc_ep_create(&y, cb, ibv_alloc_pd(cb));
	rc_ep_reg(&x, area, len);
	rc_ep_reg(&y, calloc(1, len), len);
	ix = rc_ep_info(&x);
	iy = rc_ep_info(&y);
	rc_ep_connect(&x, &iy);
	rc_ep_connect(&y, &ix);
	rc_ep_post(&y, IBV_WR_RDMA_READ, 1, 0, (uint32_t)len, ix.addr, ix.rkey);
	if (!rc_ep_wait(&y, &wc, 10000)) {
		printf("uffd: READ of a uffd MR: no completion in 10 s\n");
		bad = 1;
	} else {
		status = wc.status;
		printf("uffd: READ of a uffd MR: %s\n",
		       ibv_wc_status_str((enum ibv_wc_status)status));
		bad |= status == IBV_WC_SUCCESS;
	}
	/* 2. A response buffer in a uffd range: only that command waits. */
	if (raw_context(&raw, a, 0))
		die("uffd: raw context");
	blocked.fd = raw.fd;
	blocked.response = area + len;
	pthread_create(&t, NULL, alloc_pd_into, &blocked);
	usleep(300000);
	printf("uffd: command with a uffd response buffer %s\n",
	       atomic_load(&blocked.done) ? "returned" : "is waiting");
	printf("uffd: ready\n");
	fflush(stdout);
	/* The test checks the other VF and the clean pair now. */
	sleep(3);
	/* Serve the fault: the waiting command completes. */
	{
		struct uffdio_zeropage zp = {
			.range = { .start = (uintptr_t)area + len,
				   .len = page },
		};

		ioctl(uffd, UFFDIO_ZEROPAGE, &zp);
	}
	for (int i = 0; i < 500 && !atomic_load(&blocked.done); i++)
		usleep(10000);
	printf("uffd: after the fault was served: %s\n",
	       !atomic_load(&blocked.done) ? "still waiting" :
	       blocked.ret ? strerror(blocked.ret) : "completed");
	bad |= !atomic_load(&blocked.done) || blocked.ret;
	if (atomic_load(&blocked.done))
		pthread_join(t, NULL);
	return bad;
}

/* ---- exhaustion ----------------------------------------------------------- */

struct creator {
	struct raw_ctx raw;
	int ret;
};

static void *create_channel(void *arg)
{
	struct creator *c = arg;
	struct ib_uverbs_create_comp_channel_resp resp;
	struct ib_uverbs_create_comp_channel core = {
		.response = (uintptr_t)&resp,
	};

	c->ret = raw_cmd(c->raw.fd, IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL,
			 &core, sizeof(core), NULL, 0, sizeof(resp));
	return NULL;
}

static int channel_starve(const char *dev, int threads)
{
	static struct creator c;
	pthread_t t[64];

	if (threads > 64)
		threads = 64;
	/* No pooled channels, and nobody answers the refill requests. */
	if (raw_context(&c.raw, dev, 0))
		die("channel_starve: raw context");
	printf("channel_starve: %d threads in CREATE_COMP_CHANNEL\n", threads);
	fflush(stdout);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, create_channel, &c);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("channel_starve: done (%s)\n", strerror(c.ret));
	return 0;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int cq_flood(const char *dev, int max)
{
	struct ibv_context *ctx = must_open(dev);
	int n = 0, err = 0;

	raise_fd_limit();
	for (; n < max; n++) {
		if (!ibv_create_cq(ctx, 1, NULL, NULL, 0)) {
			err = errno;
			break;
		}
	}
	printf("cq_flood: %d CQs, then %s\n", n,
	       n == max ? "the limit of the test" : strerror(err));
	printf("cq_flood: holding\n");
	fflush(stdout);
	pause();
	return 0;
}

static int context_flood(const char *dev, int max)
{
	struct ibv_device **list;
	struct ibv_device *d = NULL;
	int n = 0, err = 0;

	raise_fd_limit();
	list = ibv_get_device_list(NULL);
	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), dev))
			d = list[i];
	if (!d)
		die("context_flood: no %s", dev);
	for (; n < max; n++) {
		if (!ibv_open_device(d)) {
			err = errno;
			break;
		}
	}
	printf("context_flood: %d contexts, then %s\n", n,
	       n == max ? "the limit of the test" : strerror(err));
	printf("context_flood: holding\n");
	fflush(stdout);
	pause();
	return 0;
}

static int ring_amplify(const char *dev, int qps)
{
	struct raw_ctx c;
	struct raw_cq cq = { 0 };
	int made = 0, err = 0;

	if (raw_context(&c, dev, 0) || raw_cq(&c, &cq, 16))
		die("ring_amplify: set-up");
	for (int i = 0; i < qps; i++) {
		struct raw_qp qp = { 0 };

		/* 16384 slots of 4 KiB: 64 MiB this process never touches. */
		err = raw_qp(&c, &qp, IBV_QPT_UC, &cq, 16384, 4096);
		if (err)
			break;
		made++;
		if (raw_connect(&c, &qp, IBV_QPT_UC, 2, 2))
			die("ring_amplify: connect");
		atomic_store((_Atomic uint32_t *)&qp.db->sq_head, 16384);
		raw_ring(&c, &qp);
	}
	printf("ring_amplify: %d QPs of 64 MiB rings, then %s\n", made,
	       made == qps ? "the limit of the test" : strerror(err));
	printf("ring_amplify: holding\n");
	fflush(stdout);
	pause();
	return 0;
}

/* ---- monopoly and scans ----------------------------------------------- */

static int big_writes(const char *a, const char *b, int seconds)
{
	size_t len = 256u << 20;
	struct pair p;
	uint64_t end, n = 0;

	pair_open(&p, a, b, len);
	printf("big_writes: running\n");
	fflush(stdout);
	end = now_us() + (uint64_t)seconds * 1000000;
	while (now_us() < end) {
		struct ibv_wc wc;

		/* Four in flight, 1 GiB, from zero pages into zero pages. */
		for (int i = 0; i < 4; i++)
			if (rc_ep_post(&p.x, IBV_WR_RDMA_WRITE, 1, 0,
				       (uint32_t)len, (uintptr_t)p.ybuf,
				       p.y.mr->rkey))
				die("big_writes: post");
		for (int i = 0; i < 4; i++) {
			if (!rc_ep_wait(&p.x, &wc, 60000))
				die("big_writes: no completion in 60 s");
			if (wc.status != IBV_WC_SUCCESS)
				die("big_writes: completion %s",
				    ibv_wc_status_str(wc.status));
			n++;
		}
	}
	printf("big_writes: %" PRIu64 " writes of 256 MiB\n", n);
	return 0;
}

static int qp_timers(const char *a, const char *b, int qps, int seconds)
{
	struct ibv_context *ca = must_open(a), *cb = must_open(b);
	struct ibv_pd *pd = ibv_alloc_pd(ca);
	struct ibv_cq *cq = ibv_create_cq(ca, 4096, NULL, NULL, 0);
	uint8_t *buf = calloc(1, 4096);
	struct ibv_port_attr port;
	struct ibv_mr *mr;
	int made = 0;

	raise_fd_limit();
	if (!pd || !cq || !buf || ibv_query_port(cb, 1, &port))
		die("qp_timers: set-up");
	mr = ibv_reg_mr(pd, buf, 4096, IBV_ACCESS_LOCAL_WRITE);
	for (; made < qps; made++) {
		struct ibv_qp_init_attr ia = {
			.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC,
			.cap = { .max_send_wr = 1, .max_recv_wr = 1,
				 .max_send_sge = 1, .max_recv_sge = 1 },
		};
		struct ibv_qp *qp = ibv_create_qp(pd, &ia);
		struct rc_ep e = { .ctx = ca, .pd = pd, .cq = cq, .qp = qp,
				   .mr = mr, .buf = buf, .len = 4096 };
		struct ibv_qp_attr attr = {
			.qp_state = IBV_QPS_INIT, .port_num = 1,
		};
		struct ep_info nobody = { .lid = port.lid, .qpn = 0xfffff0 };

		if (!qp) {
			printf("qp_timers: QP %d: %s\n", made, strerror(errno));
			break;
		}
		if (ibv_modify_qp(qp, &attr,
				  IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
			die("qp_timers: INIT");
		rc_ep_connect(&e, &nobody);
		/* A 4.3 s ACK timeout: the QP mostly waits, as in the finding. */
		attr = (struct ibv_qp_attr){ .timeout = 20 };
		ibv_modify_qp(qp, &attr, IBV_QP_TIMEOUT);
		post_send(&e, 1, 8);
	}
	printf("qp_timers: %d QPs waiting for an ACK\n", made);
	printf("qp_timers: holding\n");
	fflush(stdout);
	sleep((unsigned int)seconds);
	return 0;
}

static int idle_contexts(const char *dev, int count, int seconds)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_device *d = NULL;
	int n = 0;

	raise_fd_limit();
	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), dev))
			d = list[i];
	for (; d && n < count; n++)
		if (!ibv_open_device(d))
			break;
	printf("idle_contexts: %d idle contexts%s%s\n", n,
	       n < count ? ", then " : "", n < count ? strerror(errno) : "");
	printf("idle_contexts: holding\n");
	fflush(stdout);
	sleep((unsigned int)seconds);
	return 0;
}

/* ---- QP numbers and sources ------------------------------------------- */

static int qpn_churn(const char *dev, int count, uint32_t qpn)
{
	struct ibv_context *ctx = must_open(dev);
	struct ibv_pd *pd = ibv_alloc_pd(ctx);
	struct ibv_cq *cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	uint32_t last = 0;
	int hits = 0, sequential = 0;

	if (!pd || !cq)
		die("qpn_churn: set-up");
	for (int i = 0; i < count; i++) {
		struct ibv_qp_init_attr ia = {
			.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC,
			.cap = { .max_send_wr = 1, .max_recv_wr = 1,
				 .max_send_sge = 1, .max_recv_sge = 1 },
		};
		struct ibv_qp *qp = ibv_create_qp(pd, &ia);

		if (!qp)
			die("qpn_churn: create %d: %s", i, strerror(errno));
		hits += qp->qp_num == qpn;
		sequential += qp->qp_num == last + 1;
		last = qp->qp_num;
		ibv_destroy_qp(qp);
	}
	printf("qpn_churn: %d QPs; the victim's former number %06x came back %d times; %d numbers followed the last\n",
	       count, qpn, hits, sequential);
	return hits || sequential > count / 100;
}

#define CANARY 'V'

static int qkey(const char *dev, uint32_t key)
{
	struct ibv_context *ctx = must_open(dev);
	struct ibv_pd *pd = ibv_alloc_pd(ctx);
	struct ibv_cq *cq = ibv_create_cq(ctx, 4, NULL, NULL, 0);
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qkey = key };
	struct ibv_qp *qp;
	int ret;

	ia.send_cq = ia.recv_cq = cq;
	qp = pd && cq ? ibv_create_qp(pd, &ia) : NULL;
	if (!qp)
		die("qkey: set-up: %s", strerror(errno));
	ret = ibv_modify_qp(qp, &a,
			    IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				    IBV_QP_QKEY);
	printf("qkey: %s\n", ret ? strerror(ret) : "0");
	return 0;
}

static int victim(const char *a, const char *b, const char *dir)
{
	struct pair p;
	struct ep_info info;
	char text[64];
	int touched = 0;

	pair_open(&p, a, b, 4096);
	memset(p.xbuf, CANARY, 4096);
	info = rc_ep_info(&p.x);
	put_info(dir, "victim.info", &info);
	snprintf(text, sizeof(text), "0x%06x\n", p.y.qp->qp_num);
	/* The peer goes away; its number is what an attacker would want. */
	if (ibv_destroy_qp(p.y.qp))
		die("victim: destroy_qp: %s", strerror(errno));
	put_file(dir, "old_peer.qpn", text);
	if (get_file(dir, "attacker.done", text, sizeof(text), 600000))
		die("victim: the attacker never finished");
	for (int i = 0; i < 4096; i++)
		touched += p.xbuf[i] != CANARY;
	printf("victim: %d bytes of its memory changed\n", touched);
	return touched != 0;
}

static int source_check(const char *dev, const char *dir)
{
	struct ibv_context *ctx = must_open(dev);
	struct ep_info victim = get_info(dir, "victim.info");
	struct rc_ep e = { 0 };
	struct ibv_wc wc;
	int bad = 0;

	rc_ep_create(&e, ctx, ibv_alloc_pd(ctx));
	rc_ep_reg(&e, calloc(1, 4096), 4096);
	memset(e.buf, 'A', 4096);
	/*
	 * The attacker knows the victim's QPN, address and rkey (as if it
	 * had got hold of the number of the victim's former peer): it sends
	 * from another port, so the victim's QP must not take it.
	 */
	rc_ep_connect(&e, &victim);
	rc_ep_post(&e, IBV_WR_RDMA_WRITE, 1, 0, 4096, victim.addr, victim.rkey);
	if (!rc_ep_wait(&e, &wc, 10000)) {
		printf("source_check: WRITE from a stranger: no completion\n");
		bad = 1;
	} else {
		printf("source_check: WRITE from a stranger: %s\n",
		       ibv_wc_status_str(wc.status));
		bad = wc.status == IBV_WC_SUCCESS;
	}
	put_file(dir, "attacker.done", "done\n");
	return bad;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 6 && !strcmp(argv[1], "bystander"))
		return bystander(argv[2], argv[3], atoi(argv[4]),
				 atoi(argv[5]));
	if (argc == 3 && !strcmp(argv[1], "daemon_death"))
		return daemon_death(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "stall_map"))
		return stall_map(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (argc == 4 && !strcmp(argv[1], "uffd"))
		return uffd_attack(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "channel_starve"))
		return channel_starve(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "cq_flood"))
		return cq_flood(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "context_flood"))
		return context_flood(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "ring_amplify"))
		return ring_amplify(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "big_writes"))
		return big_writes(argv[2], argv[3], atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "qp_timers"))
		return qp_timers(argv[2], argv[3], atoi(argv[4]),
				 atoi(argv[5]));
	if (argc == 5 && !strcmp(argv[1], "idle_contexts"))
		return idle_contexts(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "qpn_churn"))
		return qpn_churn(argv[2], atoi(argv[3]),
				 (uint32_t)strtoul(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "qkey"))
		return qkey(argv[2], (uint32_t)strtoul(argv[3], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "victim"))
		return victim(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "source_check"))
		return source_check(argv[2], argv[3]);
	fprintf(stderr, "usage: see the top of attacks.c\n");
	return 2;
}
