// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Teardown under traffic, and RESIZE_CQ, through the public libibverbs API.
 *
 * usage: teardown_test [all | TEST...] | --list
 *
 * The teardown sub-tests fork: the parent is the requester on vhca0_vf0
 * (VHCA_DEV_A), the child the responder on vhca0_vf1 (VHCA_DEV_B), each
 * with its own context, as two applications on two nodes.  They talk over
 * a socketpair (LID/QPN/rkey, and "tear down now" / "done" / "my errors
 * are in").  The responder's buffer stays mapped when its MR goes: after
 * the teardown it fills it with a canary, and checks it byte for byte once
 * the requester has seen its errors, so a write that lands after the
 * teardown returned is caught.  The requester checks that no WR posted
 * after the teardown returned completes successfully, and the statuses:
 *
 *   dereg_write   RDMA WRITEs into an MR deregistered mid-stream:
 *                 IBV_WC_REM_ACCESS_ERR, then flushes; responder QP in ERR
 *   dereg_read    the same with RDMA READs; failed READs write nothing
 *                 into the requester's buffer
 *   dereg_atomic  the same with FETCH_AND_ADD
 *   dereg_recv    SENDs into posted receives whose MR is gone: that
 *                 receive completes IBV_WC_LOC_PROT_ERR (once), the rest
 *                 flush; the requester gets IBV_WC_REM_OP_ERR
 *   dereg_srq     (one process) the same through an SRQ shared by two
 *                 QPs: each bad WQE completes once, on the QP it reached
 *   destroy_qp    the responder destroys its QP mid-stream: its CQs are
 *                 EBUSY while the QP lives and destroyable after; the
 *                 requester gets IBV_WC_RETRY_EXC_ERR within its budget
 *   dereg_race    VHCA_RACE_ITERS (default 150) rounds of a dereg at a
 *                 random moment under 1 MiB writes
 * and, in one process with both devices:
 *   resize_cq     a CQ holding N completions resized up and down, bad
 *                 sizes refused with nothing changed, all polled in order
 *                 with their data; the arm state survives a resize
 *   resize_live   a send CQ resized again and again while completions
 *                 stream into it: none lost, none reordered
 *
 * Environment: VHCA_SEED, VHCA_RACE_ITERS.  Prints "ok: NAME" or
 * "FAIL: NAME"; failing checks go to stderr.
 */
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "../common.h"
#include "verbs_helpers.h"

TEST_COUNTERS;

#define BUF_SIZE (8u << 20)		/* each side's buffer */
#define AREA (4u << 20)			/* the responder's target area */
#define CANARY 0xa5
#define UNTOUCHED 0xcc			/* requester slots a WR must not fill */
#define RESP_SEED 4242
#define QP_DEPTH 128
#define STEP_TIMEOUT_MS 20000

/* ---- small helpers ------------------------------------------------------ */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void fill_pattern(void *p, size_t len, uint64_t seed)
{
	unsigned char *c = p;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		if (!(i & 7)) {
			s ^= s >> 12;
			s ^= s << 25;
			s ^= s >> 27;
		}
		/* never the canary: a landed byte must show */
		c[i] = (unsigned char)(s >> ((i & 7) * 8));
		if (c[i] == CANARY || c[i] == UNTOUCHED)
			c[i] ^= 0x11;
	}
}

/* Index of the first byte of p[0..len) that is not @byte, or -1. */
static long first_not(const unsigned char *p, size_t len, unsigned char byte)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != byte)
			return (long)i;
	return -1;
}

/* Yields while idle: on two shared cores the engine needs the CPU. */
static void idle(unsigned int *spins)
{
	if (++*spins < 200)
		return;
	if (*spins < 2000)
		sched_yield();
	else
		usleep(50);
}

/* One completion within @ms: 1, 0 on timeout, -1 if poll_cq fails. */
static int poll_one(struct ibv_cq *cq, struct ibv_wc *wc, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;
	unsigned int spins = 0;

	for (;;) {
		int n = ibv_poll_cq(cq, 1, wc);

		if (n)
			return n < 0 ? -1 : 1;
		if (now_ms() >= deadline)
			return 0;
		idle(&spins);
	}
}

static void expect_empty(struct ibv_cq *cq, int ms, const char *what)
{
	struct ibv_wc wc;
	int r = poll_one(cq, &wc, ms);

	CHECK(r == 0, "%s: unexpected completion %s wr_id %" PRIu64, what,
	      r == 1 ? ibv_wc_status_str(wc.status) : "?",
	      r == 1 ? wc.wr_id : 0);
}

static const char *dev_a(void)
{
	const char *d = getenv("VHCA_DEV_A");

	return d ? d : "vhca0_vf0";
}

static const char *dev_b(void)
{
	const char *d = getenv("VHCA_DEV_B");

	return d ? d : "vhca0_vf1";
}

/* ---- one side: context, PD, buffer, MR, CQs, an RC QP ----------------- */

struct side {
	const char *name;
	struct ibv_context *ctx;
	struct ibv_device_attr dev;
	struct ibv_port_attr port;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *scq, *rcq;
	struct ibv_qp *qp;
	unsigned char *buf;		/* stays mapped after dereg */
	struct ibv_mr *mr;
};

#define ALL_ACCESS                                                            \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |                   \
	 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)

static void side_open(struct side *s, const char *name, int cqe)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = QP_DEPTH, .max_recv_wr = QP_DEPTH,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};

	memset(s, 0, sizeof(*s));
	s->name = name;
	s->ctx = open_by_name(name);
	REQUIRE(s->ctx, "open %s: %s", name, strerror(errno));
	REQUIRE(!ibv_query_device(s->ctx, &s->dev) &&
		!ibv_query_port(s->ctx, 1, &s->port), "query %s", name);
	s->pd = ibv_alloc_pd(s->ctx);
	s->buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(s->pd && s->buf != MAP_FAILED, "%s: pd/buffer", name);
	s->mr = ibv_reg_mr(s->pd, s->buf, BUF_SIZE, ALL_ACCESS);
	s->ch = ibv_create_comp_channel(s->ctx);
	REQUIRE(s->mr && s->ch, "%s: reg_mr/channel: %s", name,
		strerror(errno));
	s->scq = ibv_create_cq(s->ctx, cqe, NULL, NULL, 0);
	s->rcq = ibv_create_cq(s->ctx, cqe, NULL, s->ch, 0);
	REQUIRE(s->scq && s->rcq, "%s: create_cq: %s", name, strerror(errno));
	ia.send_cq = s->scq;
	ia.recv_cq = s->rcq;
	s->qp = ibv_create_qp(s->pd, &ia);
	REQUIRE(s->qp, "%s: create_qp: %s", name, strerror(errno));
}

struct conn {
	uint16_t dlid;
	uint32_t dqpn;
	uint8_t timeout, retry_cnt;
};

/* RESET (if needed) -> INIT -> RTR -> RTS toward @c. */
static int qp_connect(struct side *s, const struct conn *c)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
	int r;

	if ((r = ibv_modify_qp(s->qp, &a, IBV_QP_STATE)))
		return r;
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_INIT, .port_num = 1,
				  .qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
						     IBV_ACCESS_REMOTE_READ |
						     IBV_ACCESS_REMOTE_ATOMIC };
	if ((r = ibv_modify_qp(s->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					       IBV_QP_PORT |
					       IBV_QP_ACCESS_FLAGS)))
		return r;
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTR,
				  .path_mtu = s->port.active_mtu,
				  .dest_qp_num = c->dqpn,
				  .ah_attr = { .dlid = c->dlid, .port_num = 1 },
				  .max_dest_rd_atomic = 1,
				  .min_rnr_timer = 12 };
	if ((r = ibv_modify_qp(s->qp, &a, IBV_QP_STATE | IBV_QP_AV |
					       IBV_QP_PATH_MTU |
					       IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
					       IBV_QP_MAX_DEST_RD_ATOMIC |
					       IBV_QP_MIN_RNR_TIMER)))
		return r;
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS,
				  .timeout = c->timeout,
				  .retry_cnt = c->retry_cnt,
				  .rnr_retry = 7, .max_rd_atomic = 1 };
	return ibv_modify_qp(s->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
						IBV_QP_TIMEOUT |
						IBV_QP_RETRY_CNT |
						IBV_QP_RNR_RETRY |
						IBV_QP_MAX_QP_RD_ATOMIC);
}

static int qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;

	return ibv_query_qp(qp, &a, IBV_QP_STATE, &ia) ? -1 : (int)a.qp_state;
}

/* Closes what side_open opened (what is left of it). */
static void side_close(struct side *s)
{
	if (s->qp)
		CHECK(!ibv_destroy_qp(s->qp), "%s: destroy_qp", s->name);
	if (s->scq)
		CHECK(!ibv_destroy_cq(s->scq), "%s: destroy scq", s->name);
	if (s->rcq)
		CHECK(!ibv_destroy_cq(s->rcq), "%s: destroy rcq", s->name);
	if (s->ch)
		CHECK(!ibv_destroy_comp_channel(s->ch), "%s: destroy channel",
		      s->name);
	if (s->mr)
		CHECK(!ibv_dereg_mr(s->mr), "%s: dereg_mr", s->name);
	if (s->pd)
		CHECK(!ibv_dealloc_pd(s->pd), "%s: dealloc_pd", s->name);
	if (s->ctx)
		CHECK(!ibv_close_device(s->ctx), "%s: close", s->name);
	munmap(s->buf, BUF_SIZE);
	memset(s, 0, sizeof(*s));
}

static int post_recv(struct side *s, uint64_t wr_id, size_t off,
		     uint32_t len)
{
	struct ibv_sge sge = { (uintptr_t)(s->buf + off), len, s->mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 }, *bad;

	return ibv_post_recv(s->qp, &wr, &bad);
}

/* ---- control channel between the two processes ---------------------- */

enum ctl_kind {
	CTL_INFO = 1,	/* lid, qpn, rkey, addr */
	CTL_READY,	/* responder at RTS */
	CTL_GO,		/* requester: tear down now */
	CTL_DONE,	/* responder: the teardown call has returned */
	CTL_RESULT,	/* requester: all my completions are in */
	CTL_VERDICT,	/* responder: value = its failed checks */
};

struct ctl {
	uint32_t kind, lid, qpn, rkey;
	uint64_t addr, value;
};

static int ctl_fd = -1;

static void ctl_send(const struct ctl *m)
{
	REQUIRE(send(ctl_fd, m, sizeof(*m), MSG_NOSIGNAL) == sizeof(*m),
		"control send: %s", strerror(errno));
}

static void ctl_say(uint32_t kind, uint64_t value)
{
	ctl_send(&(struct ctl){ .kind = kind, .value = value });
}

/* The next message, which must be of @kind; waits up to @ms (-1: poll). */
static bool ctl_recv(struct ctl *m, uint32_t kind, int ms)
{
	struct pollfd p = { .fd = ctl_fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms < 0 ? 0 : ms) != 1)
		return false;
	n = recv(ctl_fd, m, sizeof(*m), 0);
	REQUIRE(n == sizeof(*m), "control channel closed (peer failed?)");
	REQUIRE(m->kind == kind, "control message %u, expected %u", m->kind,
		kind);
	return true;
}

static void ctl_wait(struct ctl *m, uint32_t kind)
{
	REQUIRE(ctl_recv(m, kind, STEP_TIMEOUT_MS),
		"no control message %u in %d ms", kind, STEP_TIMEOUT_MS);
}

/* Both sides: publish ours, learn theirs. */
static struct ctl exchange_info(const struct side *s)
{
	struct ctl me = { .kind = CTL_INFO, .lid = s->port.lid,
			  .qpn = s->qp->qp_num,
			  .rkey = s->mr ? s->mr->rkey : 0,
			  .addr = (uintptr_t)s->buf }, them;

	ctl_send(&me);
	ctl_wait(&them, CTL_INFO);
	return them;
}

/*
 * Runs @responder in a child and @requester here; the child's checks
 * count through its exit status.
 */
static void run_two(void (*requester)(void), void (*responder)(void))
{
	int sv[2], status = 0;
	pid_t pid;

	REQUIRE(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv),
		"socketpair: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		ctl_fd = sv[1];
		rng_state ^= 0x5bd1e995u;
		responder();
		exit(test_report());
	}
	close(sv[1]);
	ctl_fd = sv[0];
	requester();
	/* A responder still waiting for us (we failed) sees EOF at once. */
	close(ctl_fd);
	ctl_fd = -1;
	REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "responder process failed (status 0x%x)", status);
}

/* ---- the requester's stream ----------------------------------------- */

struct stream {
	/* configuration */
	enum ibv_wr_opcode op;
	uint32_t len;			/* bytes per WR (8 for atomics) */
	uint32_t window;		/* WRs in flight */
	uint64_t go_after;		/* successes before CTL_GO */
	bool pause_after_go;		/* post nothing more until CTL_DONE */
	uint32_t after_max;		/* WRs posted after CTL_DONE, at most */
	enum ibv_wc_status want;	/* the first error's status */
	uint64_t max_err_ms;		/* after CTL_DONE; 0: no limit */
	struct ctl peer;		/* remote addr, rkey */
	/* results */
	uint64_t posted, completed, ok, flushed;
	uint64_t posted_at_done;
	bool err;
	struct ibv_wc first_err;
	uint64_t done_at_ms;		/* when CTL_DONE arrived */
	uint64_t err_ms;		/* from CTL_DONE to the error */
};

#define NSLOTS 64

/* The requester's own slot of a WR: more slots than WRs in flight. */
static size_t slot_off(const struct stream *st, uint64_t wr_id)
{
	uint64_t nslots = BUF_SIZE / st->len < NSLOTS ? BUF_SIZE / st->len :
							NSLOTS;

	return (size_t)((wr_id % nslots) * st->len);
}

static uint64_t remote_off(const struct stream *st, uint64_t wr_id)
{
	if (st->op == IBV_WR_ATOMIC_FETCH_AND_ADD)
		return 0;
	return (wr_id * st->len) % AREA;
}

static void stream_post(struct side *s, struct stream *st)
{
	uint64_t id = st->posted;
	size_t off = slot_off(st, id);
	struct ibv_sge sge = { (uintptr_t)(s->buf + off), st->len,
			       s->mr->lkey };
	struct ibv_send_wr wr = { .wr_id = id, .sg_list = &sge, .num_sge = 1,
				  .opcode = st->op,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;
	int r;

	/* READ/atomic results land here: a failed one must leave it. */
	if (st->op == IBV_WR_RDMA_READ ||
	    st->op == IBV_WR_ATOMIC_FETCH_AND_ADD)
		memset(s->buf + off, UNTOUCHED, st->len);
	if (st->op == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		wr.wr.atomic.remote_addr = st->peer.addr;
		wr.wr.atomic.rkey = st->peer.rkey;
		wr.wr.atomic.compare_add = 1;
	} else {
		wr.wr.rdma.remote_addr = st->peer.addr + remote_off(st, id);
		wr.wr.rdma.rkey = st->peer.rkey;
	}
	r = ibv_post_send(s->qp, &wr, &bad);
	REQUIRE(r == 0, "post_send %" PRIu64 ": %s", id, strerror(r));
	st->posted++;
}

/* What a successful WR left in the requester's buffer. */
static void stream_check_ok(struct side *s, struct stream *st,
			    const struct ibv_wc *wc,
			    const unsigned char *expect)
{
	const unsigned char *slot = s->buf + slot_off(st, wc->wr_id);

	if (st->op == IBV_WR_RDMA_READ) {
		CHECK(!memcmp(slot, expect + remote_off(st, wc->wr_id),
			      st->len),
		      "READ %" PRIu64 " returned wrong data", wc->wr_id);
	} else if (st->op == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		uint64_t old;

		memcpy(&old, slot, 8);
		/* all earlier ones succeeded, in order: the count before */
		CHECK(old == wc->wr_id, "FETCH_ADD %" PRIu64 " returned %"
		      PRIu64, wc->wr_id, old);
	}
}

/* A failed or flushed WR wrote nothing into the requester's buffer. */
static void stream_check_failed(struct side *s, struct stream *st,
				const struct ibv_wc *wc)
{
	long bad;

	if (st->op != IBV_WR_RDMA_READ &&
	    st->op != IBV_WR_ATOMIC_FETCH_AND_ADD)
		return;
	bad = first_not(s->buf + slot_off(st, wc->wr_id), st->len, UNTOUCHED);
	CHECK(bad < 0, "%s WR %" PRIu64 " changed its local buffer at %ld",
	      ibv_wc_status_str(wc->status), wc->wr_id, bad);
}

static void stream_complete(struct side *s, struct stream *st,
			    const struct ibv_wc *wc,
			    const unsigned char *expect)
{
	CHECK(wc->wr_id == st->completed, "completion for WR %" PRIu64
	      ", expected %" PRIu64 " (order)", wc->wr_id, st->completed);
	st->completed++;
	if (wc->status == IBV_WC_SUCCESS) {
		CHECK(!st->err, "WR %" PRIu64 " succeeded after an error",
		      wc->wr_id);
		/* The teardown had returned before this WR was posted. */
		CHECK(wc->wr_id < st->posted_at_done,
		      "WR %" PRIu64 " posted after the teardown (at %" PRIu64
		      ") succeeded", wc->wr_id, st->posted_at_done);
		st->ok++;
		stream_check_ok(s, st, wc, expect);
		return;
	}
	stream_check_failed(s, st, wc);
	if (!st->err) {
		st->err = true;
		st->first_err = *wc;
		st->err_ms = st->posted_at_done == UINT64_MAX ?
				     0 :
				     now_ms() - st->done_at_ms;
		return;
	}
	CHECK(wc->status == IBV_WC_WR_FLUSH_ERR, "after the error, WR %"
	      PRIu64 ": %s, expected a flush", wc->wr_id,
	      ibv_wc_status_str(wc->status));
	st->flushed++;
}

/*
 * Streams WRs until the first error completion, sending CTL_GO once
 * go_after succeeded and noting when CTL_DONE arrives; then drains the
 * flushes.  @expect: READ data expected at each remote offset.
 */
static void stream_run(struct side *s, struct stream *st,
		       const unsigned char *expect, const char *what)
{
	uint64_t deadline = now_ms() + STEP_TIMEOUT_MS;
	bool go_sent = false, done = false;
	unsigned int spins = 0;
	struct ibv_wc wcs[16];
	struct ctl m;

	st->posted = st->completed = st->ok = st->flushed = 0;
	st->posted_at_done = UINT64_MAX;
	st->err = false;
	while (!st->err) {
		if (!go_sent && st->ok >= st->go_after) {
			ctl_say(CTL_GO, 0);
			go_sent = true;
		}
		if (go_sent && !done && ctl_recv(&m, CTL_DONE, -1)) {
			done = true;
			st->posted_at_done = st->posted;
			st->done_at_ms = now_ms();
		}
		while (st->posted - st->completed < st->window &&
		       !(st->pause_after_go && !done &&
			 st->posted >= st->go_after) &&
		       !(done && st->posted - st->posted_at_done >=
					 st->after_max))
			stream_post(s, st);

		int n = ibv_poll_cq(s->scq, 16, wcs);

		REQUIRE(n >= 0, "%s: poll_cq failed", what);
		for (int i = 0; i < n; i++)
			stream_complete(s, st, &wcs[i], expect);
		if (n) {
			spins = 0;
			continue;
		}
		if (now_ms() > deadline ||
		    (done && now_ms() - st->done_at_ms > STEP_TIMEOUT_MS / 2)) {
			CHECK(false, "%s: no error completion (%" PRIu64
			      " posted, %" PRIu64 " ok, done %d)", what,
			      st->posted, st->ok, done);
			break;
		}
		idle(&spins);
	}
	/* Everything still queued flushes, once each, in order. */
	while (st->completed < st->posted) {
		struct ibv_wc wc;

		if (poll_one(s->scq, &wc, 5000) != 1) {
			CHECK(false, "%s: %" PRIu64 " WRs never completed",
			      what, st->posted - st->completed);
			break;
		}
		stream_complete(s, st, &wc, expect);
	}
	expect_empty(s->scq, 20, what);
	/*
	 * The error may beat the news of the teardown: then every WR was
	 * posted before the teardown returned, and may have succeeded.
	 */
	if (!done)
		CHECK(ctl_recv(&m, CTL_DONE, STEP_TIMEOUT_MS),
		      "%s: the responder never reported its teardown", what);
	if (st->err) {
		CHECK(st->first_err.status == st->want,
		      "%s: first error %s (WR %" PRIu64 "), expected %s", what,
		      ibv_wc_status_str(st->first_err.status),
		      st->first_err.wr_id, ibv_wc_status_str(st->want));
		if (st->max_err_ms)
			CHECK(st->err_ms <= st->max_err_ms,
			      "%s: error %" PRIu64 " ms after the teardown",
			      what, st->err_ms);
	}
	printf("  %s: %" PRIu64 " ok, then %s (WR %" PRIu64 ", %" PRIu64
	       " ms after the teardown), %" PRIu64 " flushed\n", what, st->ok,
	       st->err ? ibv_wc_status_str(st->first_err.status) : "nothing",
	       st->err ? st->first_err.wr_id : 0, st->err_ms, st->flushed);
}

/* ---- dereg / destroy under RDMA WRITE, READ, atomics ----------------- */

enum teardown { TD_DEREG, TD_DESTROY_QP };

static struct {
	enum ibv_wr_opcode op;
	enum teardown how;
} cur;

static const struct conn base_conn = { .timeout = 14, .retry_cnt = 7 };

static void requester_connect(struct side *s, struct ctl *peer,
			      const struct conn *c)
{
	struct conn cc = *c;
	struct ctl m;

	*peer = exchange_info(s);
	cc.dlid = (uint16_t)peer->lid;
	cc.dqpn = peer->qpn;
	ctl_wait(&m, CTL_READY);
	REQUIRE(qp_connect(s, &cc) == 0, "requester connect");
}

static void responder_connect(struct side *s, const struct conn *c)
{
	struct ctl peer = exchange_info(s);
	struct conn cc = *c;

	cc.dlid = (uint16_t)peer.lid;
	cc.dqpn = peer.qpn;
	REQUIRE(qp_connect(s, &cc) == 0, "responder connect");
	ctl_say(CTL_READY, 0);
}

static void stream_requester(void)
{
	static unsigned char expect[AREA];
	struct side s;
	struct stream st = {
		.op = cur.op,
		.len = cur.op == IBV_WR_ATOMIC_FETCH_AND_ADD ? 8 : 65536,
		.window = 8,
		.go_after = 40,
		.after_max = 16,
		.want = cur.how == TD_DESTROY_QP ? IBV_WC_RETRY_EXC_ERR :
						   IBV_WC_REM_ACCESS_ERR,
	};
	struct conn c = base_conn;
	struct ctl m;

	if (cur.how == TD_DESTROY_QP) {
		/* 4.096 us << 10 = 4.2 ms, 3 retries: ~17 ms of silence */
		c.timeout = 10;
		c.retry_cnt = 3;
		st.max_err_ms = 5000;	/* generous on a loaded machine */
	}
	side_open(&s, dev_a(), 256);
	fill_pattern(s.buf, BUF_SIZE, 1);
	fill_pattern(expect, AREA, RESP_SEED);
	memset(expect, 0, 8);	/* the responder's atomic counter */
	requester_connect(&s, &st.peer, &c);
	stream_run(&s, &st, expect, "requester");
	CHECK(st.ok >= st.go_after, "only %" PRIu64 " WRs succeeded", st.ok);
	ctl_say(CTL_RESULT, st.posted);
	ctl_wait(&m, CTL_VERDICT);
	CHECK(qp_state(s.qp) == IBV_QPS_ERR, "requester QP state %d",
	      qp_state(s.qp));
	side_close(&s);
}

/* The canary is intact, byte for byte, across the whole buffer. */
static void check_canary(const struct side *s, const char *what)
{
	long bad = first_not(s->buf, BUF_SIZE, CANARY);

	CHECK(bad < 0, "%s: memory changed after the teardown returned, at "
	      "offset %ld (0x%02x)", what, bad, bad < 0 ? 0 : s->buf[bad]);
}

static void stream_responder(void)
{
	struct side s;
	struct ctl m;
	int r;

	side_open(&s, dev_b(), 256);
	fill_pattern(s.buf, BUF_SIZE, RESP_SEED);
	memset(s.buf, 0, 8);	/* the atomic counter */
	responder_connect(&s, &base_conn);
	ctl_wait(&m, CTL_GO);
	if (cur.how == TD_DEREG) {
		CHECK(ibv_dereg_mr(s.mr) == 0, "dereg_mr under traffic: %s",
		      strerror(errno));
		s.mr = NULL;
	} else {
		/* CQs in use by a live QP: refused, as the kernel does. */
		r = ibv_destroy_cq(s.rcq);
		CHECK(r == EBUSY, "destroy_cq of a CQ in use: %d (%s), "
		      "expected EBUSY", r, strerror(r));
		r = ibv_destroy_cq(s.scq);
		CHECK(r == EBUSY, "destroy_cq of a CQ in use: %d (%s), "
		      "expected EBUSY", r, strerror(r));
		CHECK(ibv_destroy_qp(s.qp) == 0, "destroy_qp under traffic: %s",
		      strerror(errno));
		s.qp = NULL;
	}
	memset(s.buf, CANARY, BUF_SIZE);
	ctl_say(CTL_DONE, 0);
	ctl_wait(&m, CTL_RESULT);
	usleep(20000);	/* a straggler would land by now */
	check_canary(&s, "responder");
	if (s.qp)	/* a class C error takes the responder to ERR too */
		CHECK(qp_state(s.qp) == IBV_QPS_ERR, "responder QP state %d",
		      qp_state(s.qp));
	ctl_say(CTL_VERDICT, test_failed);
	/* After the QP, the CQs go (side_close checks it). */
	side_close(&s);
}

static void stream_test(enum ibv_wr_opcode op, enum teardown how)
{
	cur.op = op;
	cur.how = how;
	run_two(stream_requester, stream_responder);
}

static void t_dereg_write(void) { stream_test(IBV_WR_RDMA_WRITE, TD_DEREG); }
static void t_dereg_read(void) { stream_test(IBV_WR_RDMA_READ, TD_DEREG); }
static void t_dereg_atomic(void)
{
	stream_test(IBV_WR_ATOMIC_FETCH_AND_ADD, TD_DEREG);
}
static void t_destroy_qp(void)
{
	stream_test(IBV_WR_RDMA_WRITE, TD_DESTROY_QP);
}

/* ---- SEND into receives whose MR is gone ------------------------------ */

#define RECV_SLOTS 64
#define RECV_SLOT (64u * 1024)
#define SEND_WARMUP 16

static void recv_requester(void)
{
	struct side s;
	struct stream st = {
		.op = IBV_WR_SEND, .len = 1000, .window = 4,
		.go_after = SEND_WARMUP, .pause_after_go = true,
		.after_max = 8, .want = IBV_WC_REM_OP_ERR,
	};
	struct ctl m;

	side_open(&s, dev_a(), 256);
	for (int i = 0; i < NSLOTS; i++)
		fill_pattern(s.buf + (size_t)i * st.len, st.len, (uint64_t)i);
	requester_connect(&s, &st.peer, &base_conn);
	stream_run(&s, &st, NULL, "requester");
	CHECK(st.ok == SEND_WARMUP, "%" PRIu64 " SENDs succeeded, expected %d",
	      st.ok, SEND_WARMUP);
	ctl_say(CTL_RESULT, st.posted);
	ctl_wait(&m, CTL_VERDICT);
	side_close(&s);
}

static void recv_responder(void)
{
	struct side s;
	struct ibv_wc wc;
	struct ctl m;

	struct ctl peer;
	struct conn c = base_conn;

	side_open(&s, dev_b(), 256);
	memset(s.buf, 0, BUF_SIZE);
	peer = exchange_info(&s);
	c.dlid = (uint16_t)peer.lid;
	c.dqpn = peer.qpn;
	REQUIRE(qp_connect(&s, &c) == 0, "responder connect");
	/* all receives posted (from INIT on) before the requester starts */
	for (int i = 0; i < RECV_SLOTS; i++)
		REQUIRE(post_recv(&s, (uint64_t)i, (size_t)i * RECV_SLOT,
				  RECV_SLOT) == 0, "post_recv");
	ctl_say(CTL_READY, 0);
	/* The warm-up arrives intact. */
	for (int i = 0; i < SEND_WARMUP; i++) {
		unsigned char want[1000];

		REQUIRE(poll_one(s.rcq, &wc, STEP_TIMEOUT_MS) == 1,
			"warm-up receive %d", i);
		CHECK(wc.status == IBV_WC_SUCCESS && wc.wr_id == (uint64_t)i &&
		      wc.byte_len == 1000, "receive %d: %s wr_id %" PRIu64
		      " len %u", i, ibv_wc_status_str(wc.status), wc.wr_id,
		      wc.byte_len);
		fill_pattern(want, sizeof(want), (uint64_t)i);
		CHECK(!memcmp(s.buf + (size_t)i * RECV_SLOT, want, 1000),
		      "receive %d: data differs", i);
	}
	ctl_wait(&m, CTL_GO);
	CHECK(ibv_dereg_mr(s.mr) == 0, "dereg_mr with receives posted: %s",
	      strerror(errno));
	s.mr = NULL;
	memset(s.buf, CANARY, BUF_SIZE);
	ctl_say(CTL_DONE, 0);
	/*
	 * The next receive WQE fails, once, with a local protection error;
	 * the QP goes to ERR and every later one flushes, once, in order.
	 */
	REQUIRE(poll_one(s.rcq, &wc, STEP_TIMEOUT_MS) == 1,
		"no completion for the receive whose MR is gone");
	CHECK(wc.status == IBV_WC_LOC_PROT_ERR && wc.wr_id == SEND_WARMUP,
	      "receive into a deregistered MR: %s wr_id %" PRIu64
	      ", expected %s wr_id %d", ibv_wc_status_str(wc.status),
	      wc.wr_id, ibv_wc_status_str(IBV_WC_LOC_PROT_ERR), SEND_WARMUP);
	for (int i = SEND_WARMUP + 1; i < RECV_SLOTS; i++) {
		if (poll_one(s.rcq, &wc, 5000) != 1) {
			CHECK(false, "receive %d never flushed", i);
			break;
		}
		CHECK(wc.status == IBV_WC_WR_FLUSH_ERR &&
		      wc.wr_id == (uint64_t)i, "receive %d: %s wr_id %" PRIu64,
		      i, ibv_wc_status_str(wc.status), wc.wr_id);
	}
	expect_empty(s.rcq, 50, "receive CQ after the flushes");
	ctl_wait(&m, CTL_RESULT);
	usleep(20000);
	check_canary(&s, "responder");
	CHECK(qp_state(s.qp) == IBV_QPS_ERR, "responder QP state %d",
	      qp_state(s.qp));
	ctl_say(CTL_VERDICT, test_failed);
	side_close(&s);
}

static void t_dereg_recv(void) { run_two(recv_requester, recv_responder); }

/* ---- the same with an SRQ: each bad WQE is consumed, once ------------- */

/*
 * Two QPs of y share an SRQ whose WQEs point into an MR that is then
 * deregistered.  Each SEND that reaches a bad WQE consumes it: its QP
 * gets that WQE's LOC_PROT_ERR and goes to ERR; the next QP to receive
 * gets the next WQE, not the same one again.
 */
static void t_dereg_srq(void)
{
	struct side x1, x2, y;
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 16,
						  .max_sge = 1 } };
	struct ibv_qp_init_attr ia = { .qp_type = IBV_QPT_RC,
				       .cap = { .max_send_wr = 16,
						.max_send_sge = 1 } };
	struct ibv_srq *srq;
	struct ibv_mr *gone;
	struct ibv_qp *q[2];
	struct side *x[2] = { &x1, &x2 };
	struct ibv_wc wc;

	side_open(&x1, dev_a(), 64);
	side_open(&x2, dev_a(), 64);
	side_open(&y, dev_b(), 64);
	srq = ibv_create_srq(y.pd, &sa);
	gone = ibv_reg_mr(y.pd, y.buf, AREA, IBV_ACCESS_LOCAL_WRITE);
	REQUIRE(srq && gone, "SRQ / second MR: %s", strerror(errno));
	ia.send_cq = y.scq;
	ia.recv_cq = y.rcq;
	ia.srq = srq;
	for (int i = 0; i < 2; i++) {
		struct side tmp = y;
		struct conn cx = base_conn, cy = base_conn;

		q[i] = ibv_create_qp(y.pd, &ia);
		REQUIRE(q[i], "QP on the SRQ: %s", strerror(errno));
		tmp.qp = q[i];
		cy.dlid = x[i]->port.lid;
		cy.dqpn = x[i]->qp->qp_num;
		cx.dlid = y.port.lid;
		cx.dqpn = q[i]->qp_num;
		REQUIRE(qp_connect(&tmp, &cy) == 0 &&
			qp_connect(x[i], &cx) == 0, "connect %d", i);
	}
	for (int i = 0; i < 8; i++) {
		struct ibv_sge sge = { (uintptr_t)(y.buf + (size_t)i * 4096),
				       4096, gone->lkey };
		struct ibv_recv_wr wr = { .wr_id = (uint64_t)i,
					  .sg_list = &sge, .num_sge = 1 }, *bad;

		REQUIRE(ibv_post_srq_recv(srq, &wr, &bad) == 0,
			"post_srq_recv");
	}
	CHECK(ibv_dereg_mr(gone) == 0, "dereg_mr under the SRQ's WQEs");
	memset(y.buf, CANARY, BUF_SIZE);
	for (int i = 0; i < 2; i++) {
		struct ibv_sge sge = { (uintptr_t)x[i]->buf, 100,
				       x[i]->mr->lkey };
		struct ibv_send_wr wr = { .wr_id = 50 + (uint64_t)i,
					  .sg_list = &sge, .num_sge = 1,
					  .opcode = IBV_WR_SEND,
					  .send_flags = IBV_SEND_SIGNALED },
				    *bad;

		memset(x[i]->buf, 0x42, 100);
		REQUIRE(ibv_post_send(x[i]->qp, &wr, &bad) == 0, "post_send");
		CHECK(poll_one(x[i]->scq, &wc, STEP_TIMEOUT_MS) == 1 &&
		      wc.status == IBV_WC_REM_OP_ERR, "sender %d: %s", i,
		      ibv_wc_status_str(wc.status));
		CHECK(poll_one(y.rcq, &wc, STEP_TIMEOUT_MS) == 1 &&
		      wc.status == IBV_WC_LOC_PROT_ERR &&
		      wc.wr_id == (uint64_t)i && wc.qp_num == q[i]->qp_num,
		      "receiver QP %d: %s wr_id %" PRIu64 " (each bad SRQ WQE "
		      "completes once, in order)", i,
		      ibv_wc_status_str(wc.status), wc.wr_id);
		CHECK(qp_state(q[i]) == IBV_QPS_ERR, "QP %d state %d", i,
		      qp_state(q[i]));
	}
	/* The other six stay with the SRQ: no flush for them. */
	expect_empty(y.rcq, 50, "SRQ receive CQ");
	/*
	 * Each QP in ERR reports LAST_WQE_REACHED (o11-5.2.5); acked, or
	 * ibv_destroy_qp() would wait for it forever.
	 */
	for (int i = 0; i < 2; i++) {
		struct pollfd p = { .fd = y.ctx->async_fd, .events = POLLIN };
		struct ibv_async_event ev;

		if (poll(&p, 1, 5000) != 1) {
			CHECK(false, "no LAST_WQE_REACHED event %d", i);
			break;
		}
		REQUIRE(ibv_get_async_event(y.ctx, &ev) == 0, "async event");
		CHECK(ev.event_type == IBV_EVENT_QP_LAST_WQE_REACHED &&
		      (ev.element.qp == q[0] || ev.element.qp == q[1]),
		      "async event %d: %s", i,
		      ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
	check_canary(&y, "dereg_srq");
	for (int i = 0; i < 2; i++)
		CHECK(ibv_destroy_qp(q[i]) == 0, "destroy QP %d", i);
	CHECK(ibv_destroy_srq(srq) == 0, "destroy SRQ");
	side_close(&x1);
	side_close(&x2);
	side_close(&y);
}

/* ---- many deregistrations racing large writes ------------------------ */

static int race_iters(void)
{
	const char *e = getenv("VHCA_RACE_ITERS");
	int n = e ? atoi(e) : 150;

	return n > 0 ? n : 150;
}

static void race_requester(void)
{
	struct side s;
	struct conn c = base_conn;
	struct ctl peer, m;
	uint64_t early = 0;
	int it;

	side_open(&s, dev_a(), 256);
	fill_pattern(s.buf, BUF_SIZE, 1);
	for (it = 0; it < race_iters(); it++) {
		struct stream st = {
			.op = IBV_WR_RDMA_WRITE, .len = 1u << 20, .window = 4,
			.go_after = 0, .after_max = 4,
			.want = IBV_WC_REM_ACCESS_ERR,
		};
		unsigned int before = test_failed;

		/* Each round: a new MR at the responder, QPs from RESET. */
		peer = exchange_info(&s);
		c.dlid = (uint16_t)peer.lid;
		c.dqpn = peer.qpn;
		ctl_wait(&m, CTL_READY);
		REQUIRE(qp_connect(&s, &c) == 0, "requester connect");
		st.peer = peer;
		stream_run(&s, &st, NULL, "race");
		early += st.ok == 0;
		ctl_say(CTL_RESULT, st.posted);
		ctl_wait(&m, CTL_VERDICT);
		if (test_failed != before || m.value) {
			fprintf(stderr, "dereg_race: round %d failed\n", it);
			break;
		}
	}
	printf("  %d of %d rounds (%" PRIu64 " with the dereg before any "
	       "write)\n", it, race_iters(), early);
	side_close(&s);
}

static void race_responder(void)
{
	struct side s;
	struct conn c = base_conn;
	struct ctl peer, m;

	side_open(&s, dev_b(), 256);
	for (int it = 0; it < race_iters(); it++) {
		unsigned int before = test_failed;

		if (!s.mr)
			s.mr = ibv_reg_mr(s.pd, s.buf, BUF_SIZE, ALL_ACCESS);
		REQUIRE(s.mr, "reg_mr round %d: %s", it, strerror(errno));
		peer = exchange_info(&s);
		c.dlid = (uint16_t)peer.lid;
		c.dqpn = peer.qpn;
		REQUIRE(qp_connect(&s, &c) == 0, "responder connect");
		ctl_say(CTL_READY, 0);
		ctl_wait(&m, CTL_GO);
		/* 0..3 ms into the stream: before, during, between writes */
		usleep((useconds_t)(rnd() % 3000));
		CHECK(ibv_dereg_mr(s.mr) == 0, "dereg_mr round %d", it);
		s.mr = NULL;
		memset(s.buf, CANARY, BUF_SIZE);
		ctl_say(CTL_DONE, 0);
		ctl_wait(&m, CTL_RESULT);
		usleep(5000);
		check_canary(&s, "dereg_race");
		ctl_say(CTL_VERDICT, test_failed - before);
		if (test_failed != before) {
			fprintf(stderr, "dereg_race: round %d failed\n", it);
			break;
		}
	}
	side_close(&s);
}

static void t_dereg_race(void) { run_two(race_requester, race_responder); }

/* ---- RESIZE_CQ --------------------------------------------------------- */

#define RS_SLOT 256

/* Both sides in this process; x sends to y. */
static void pair_open(struct side *x, struct side *y, int cqe)
{
	struct conn cx = base_conn, cy = base_conn;

	side_open(x, dev_a(), cqe);
	side_open(y, dev_b(), cqe);
	cx.dlid = y->port.lid;
	cx.dqpn = y->qp->qp_num;
	cy.dlid = x->port.lid;
	cy.dqpn = x->qp->qp_num;
	REQUIRE(qp_connect(y, &cy) == 0 && qp_connect(x, &cx) == 0,
		"connect the pair");
}

/* SEND_WITH_IMM number i: 16 + i bytes of pattern i, imm 0xc0de0000 + i. */
static void send_numbered(struct side *x, struct side *y, int from, int to)
{
	for (int i = from; i < to; i++) {
		uint32_t len = 16 + (uint32_t)i;
		size_t off = (size_t)i * RS_SLOT;
		struct ibv_sge sge = { (uintptr_t)(x->buf + off), len,
				       x->mr->lkey };
		struct ibv_send_wr wr = {
			.wr_id = (uint64_t)i, .sg_list = &sge, .num_sge = 1,
			.opcode = IBV_WR_SEND_WITH_IMM,
			.send_flags = IBV_SEND_SIGNALED,
			.imm_data = htobe32(0xc0de0000u + (uint32_t)i),
		}, *bad;
		struct ibv_wc wc;

		fill_pattern(x->buf + off, len, (uint64_t)i + 100);
		REQUIRE(post_recv(y, (uint64_t)i, off, RS_SLOT) == 0,
			"post_recv %d", i);
		REQUIRE(ibv_post_send(x->qp, &wr, &bad) == 0, "post_send %d",
			i);
		/* RC: the send completes once the receive CQE is written */
		REQUIRE(poll_one(x->scq, &wc, STEP_TIMEOUT_MS) == 1 &&
			wc.status == IBV_WC_SUCCESS && wc.wr_id == (uint64_t)i,
			"send %d did not complete", i);
	}
}

/* Polls @n receive completions and checks they are from..from+n-1. */
static void poll_numbered(struct side *y, const struct side *x, int from,
			  int n)
{
	for (int i = from; i < from + n; i++) {
		struct ibv_wc wc;
		unsigned char want[16 + 256];
		uint32_t len = 16 + (uint32_t)i;

		if (poll_one(y->rcq, &wc, 2000) != 1) {
			CHECK(false, "completion %d missing", i);
			return;
		}
		CHECK(wc.status == IBV_WC_SUCCESS && wc.wr_id == (uint64_t)i &&
		      wc.opcode == IBV_WC_RECV && wc.byte_len == len &&
		      (wc.wc_flags & IBV_WC_WITH_IMM) &&
		      be32toh(wc.imm_data) == 0xc0de0000u + (uint32_t)i &&
		      wc.qp_num == y->qp->qp_num &&
		      wc.src_qp == x->qp->qp_num,
		      "completion %d: %s wr_id %" PRIu64 " opcode %d len %u "
		      "imm 0x%x", i, ibv_wc_status_str(wc.status), wc.wr_id,
		      wc.opcode, wc.byte_len, be32toh(wc.imm_data));
		fill_pattern(want, len, (uint64_t)i + 100);
		CHECK(!memcmp(y->buf + (size_t)i * RS_SLOT, want, len),
		      "completion %d: data differs", i);
	}
}

static void expect_resize(struct ibv_cq *cq, int cqe, int want,
			  const char *what)
{
	int before = cq->cqe;
	int r = ibv_resize_cq(cq, cqe);

	CHECK(r == want, "%s: resize_cq(%d) = %d (%s), expected %d", what, cqe,
	      r, strerror(r), want);
	if (want)
		CHECK(cq->cqe == before, "%s: cqe %d -> %d after a refused "
		      "resize", what, before, cq->cqe);
	else
		CHECK(cq->cqe >= cqe, "%s: cqe %d after resize to %d", what,
		      cq->cqe, cqe);
}

static void t_resize_cq(void)
{
	struct side x, y;
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	struct pollfd p;

	pair_open(&x, &y, 64);
	send_numbered(&x, &y, 0, 48);	/* 48 completions wait in y.rcq */

	expect_resize(y.rcq, 47, EINVAL, "fewer than outstanding");
	expect_resize(y.rcq, 0, EINVAL, "zero");
	expect_resize(y.rcq, -1, EINVAL, "negative");
	expect_resize(y.rcq, (int)y.dev.max_cqe + 1, EINVAL, "above max_cqe");
	expect_resize(y.rcq, 1000, 0, "grow");
	poll_numbered(&y, &x, 0, 10);
	expect_resize(y.rcq, 37, EINVAL, "shrink below outstanding");
	expect_resize(y.rcq, 38, 0, "shrink to exactly outstanding");
	poll_numbered(&y, &x, 10, 8);
	/* armed before the resize: the next completion after it fires */
	REQUIRE(ibv_req_notify_cq(y.rcq, 0) == 0, "req_notify_cq");
	expect_resize(y.rcq, 31, 0, "shrink to a 32-entry ring");
	poll_numbered(&y, &x, 18, 20);
	p = (struct pollfd){ .fd = y.ch->fd, .events = POLLIN };
	CHECK(poll(&p, 1, 0) == 0, "a completion event with no completion");
	/* 10 left at 20..29; 16 more wrap the 32-entry ring */
	send_numbered(&x, &y, 48, 64);
	CHECK(poll(&p, 1, 5000) == 1, "no completion event after the resize "
	      "(arm state lost)");
	if (p.revents & POLLIN) {
		CHECK(ibv_get_cq_event(y.ch, &ev_cq, &ev_ctx) == 0 &&
		      ev_cq == y.rcq, "get_cq_event");
		ibv_ack_cq_events(y.rcq, 1);
	}
	poll_numbered(&y, &x, 38, 26);
	expect_empty(y.rcq, 20, "after all 64");
	expect_resize(y.rcq, 1, 0, "an empty CQ to 1");
	/* and it still works */
	send_numbered(&x, &y, 64, 65);
	poll_numbered(&y, &x, 64, 1);
	side_close(&x);
	side_close(&y);
}

/* Resizes while completions stream in: none lost, none reordered. */
static void t_resize_live(void)
{
	const uint64_t total = 4000;
	const uint32_t window = 16;
	uint64_t posted = 0, done = 0, resizes = 0;
	struct side x, y;
	unsigned int spins = 0;

	pair_open(&x, &y, 64);
	while (done < total) {
		struct ibv_wc wcs[8];
		int n;

		while (posted < total && posted - done < window) {
			struct ibv_sge sge = { (uintptr_t)x.buf, 64,
					       x.mr->lkey };
			struct ibv_send_wr wr = {
				.wr_id = posted, .sg_list = &sge,
				.num_sge = 1, .opcode = IBV_WR_RDMA_WRITE,
				.send_flags = IBV_SEND_SIGNALED,
			}, *bad;

			wr.wr.rdma.remote_addr = (uintptr_t)y.buf +
						 (posted % 1024) * 64;
			wr.wr.rdma.rkey = y.mr->rkey;
			REQUIRE(ibv_post_send(x.qp, &wr, &bad) == 0,
				"post_send");
			posted++;
		}
		if (rnd() % 8 == 0) {
			/* never below what can be in flight: must succeed */
			int cqe = (int)window + (int)(rnd() % 200);
			int r = ibv_resize_cq(x.scq, cqe);

			CHECK(r == 0, "resize_cq(%d) under traffic: %s", cqe,
			      strerror(r));
			if (r)
				break;
			resizes++;
		}
		n = ibv_poll_cq(x.scq, (int)(rnd() % 8) + 1, wcs);
		REQUIRE(n >= 0, "poll_cq");
		for (int i = 0; i < n; i++, done++)
			CHECK(wcs[i].status == IBV_WC_SUCCESS &&
			      wcs[i].wr_id == done,
			      "completion %" PRIu64 ": %s wr_id %" PRIu64, done,
			      ibv_wc_status_str(wcs[i].status), wcs[i].wr_id);
		if (test_failed)
			break;
		if (!n)
			idle(&spins);
		else
			spins = 0;
	}
	printf("  %" PRIu64 " completions through %" PRIu64 " resizes\n", done,
	       resizes);
	expect_empty(x.scq, 20, "after the stream");
	side_close(&x);
	side_close(&y);
}

/* ---- main ----------------------------------------------------------- */

static const struct subtest tests[] = {
	{ "dereg_write", t_dereg_write },
	{ "dereg_read", t_dereg_read },
	{ "dereg_atomic", t_dereg_atomic },
	{ "dereg_recv", t_dereg_recv },
	{ "dereg_srq", t_dereg_srq },
	{ "destroy_qp", t_destroy_qp },
	{ "dereg_race", t_dereg_race },
	{ "resize_cq", t_resize_cq },
	{ "resize_live", t_resize_live },
};

int main(int argc, char **argv)
{
	const char *seed = getenv("VHCA_SEED");
	int ran = 0;

	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			puts(tests[i].name);
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rng_state = seed ? strtoull(seed, NULL, 0) | 1 :
			   ((uint64_t)time(NULL) << 16 ^ (uint64_t)getpid()) |
				   1;
	printf("seed %" PRIu64 "\n", rng_state);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		bool selected = argc < 2 || !strcmp(argv[1], "all");
		unsigned int before = test_failed;
		uint64_t t0;

		for (int k = 1; k < argc; k++)
			selected |= !strcmp(argv[k], tests[i].name);
		if (!selected)
			continue;
		t0 = now_ms();
		tests[i].fn();
		ran++;
		printf("%s: %s (%" PRIu64 " ms)\n",
		       test_failed == before ? "ok" : "FAIL", tests[i].name,
		       now_ms() - t0);
	}
	CHECK(ran > 0, "no sub-test matched");
	return test_report();
}
