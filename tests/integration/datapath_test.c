// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Data-path tests through the public libibverbs API only (valid whatever
 * the provider and engine internals are).
 *
 * usage:
 *   datapath_test [all | TEST...]          one process opens vhca0_vf0 (A)
 *                                          and vhca0_vf1 (B) and connects
 *                                          QPs between them with modify_qp
 *   datapath_test --list                   the sub-tests
 *   datapath_test peer a|b DEV DIR ITERS [expect-death]
 *       one side of a two-process verified RC stream: side a RDMA-writes a
 *       random region of b's buffer and SENDs a header describing it plus
 *       a random payload; b verifies both and echoes.  The sides exchange
 *       LID/QPN/rkey through files in DIR.  ITERS 0 = until killed.  With
 *       expect-death, the side probes its peer while idle and succeeds
 *       (exit 0) only when its QP completes with IBV_WC_RETRY_EXC_ERR (or a
 *       flush) after the peer died, within the retry budget.
 *
 * Environment: VHCA_DEV_A / VHCA_DEV_B override the two devices;
 * VHCA_SEED the random seed; VHCA_ATOMIC_ITERS the concurrent
 * fetch-and-add count per thread (default 5000).
 *
 * Each sub-test prints "ok: NAME" or "FAIL: NAME"; the failing checks are
 * on stderr; the last line is "N passed, M failed".
 */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "../common.h"
#include "verbs_helpers.h"

TEST_COUNTERS;

#define BUF_SIZE (8u << 20)
#define DEFAULT_TIMEOUT_MS 5000
#define QKEY 0x11111111u
#define GRH_SIZE 40

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	/* xorshift64*: per-test reproducible with VHCA_SEED */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static uint32_t rnd_range(uint32_t lo, uint32_t hi) /* inclusive */
{
	return lo + (uint32_t)(rnd() % ((uint64_t)hi - lo + 1));
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
		c[i] = (unsigned char)(s >> ((i & 7) * 8));
	}
}

/* Returns the index of the first mismatch, or -1. */
static long check_pattern(const void *p, size_t len, uint64_t seed)
{
	static unsigned char tmp[BUF_SIZE];

	if (len > sizeof(tmp))
		return 0;
	fill_pattern(tmp, len, seed);
	if (!memcmp(p, tmp, len))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (((const unsigned char *)p)[i] != tmp[i])
			return (long)i;
	return -1;
}

/*
 * Polls until one completion arrives or timeout_ms passes.  Returns 1 with
 * *wc filled, 0 on timeout, -1 if ibv_poll_cq fails.  Yields the CPU while
 * idle: on a small machine the engine needs it.
 */
static int poll_one(struct ibv_cq *cq, struct ibv_wc *wc, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	unsigned int spins = 0;

	for (;;) {
		int n = ibv_poll_cq(cq, 1, wc);

		if (n)
			return n < 0 ? -1 : 1;
		if (++spins > 200) {
			if (now_ms() >= deadline)
				return 0;
			if (spins > 2000)
				usleep(20);
			else
				sched_yield();
		}
	}
}

/* Polls n completions into wcs; returns how many arrived in time. */
static int poll_n(struct ibv_cq *cq, struct ibv_wc *wcs, int n, int timeout_ms)
{
	int got = 0;

	while (got < n) {
		int r = poll_one(cq, &wcs[got], timeout_ms);

		if (r <= 0)
			break;
		got++;
	}
	return got;
}

/* Expects exactly one successful completion of the given opcode. */
static bool expect_wc(struct ibv_cq *cq, enum ibv_wc_opcode op,
		      uint64_t wr_id, struct ibv_wc *out, const char *what)
{
	struct ibv_wc wc;
	int r = poll_one(cq, &wc, DEFAULT_TIMEOUT_MS);

	CHECK(r == 1, "%s: no completion within %d ms", what,
	      DEFAULT_TIMEOUT_MS);
	if (r != 1)
		return false;
	CHECK(wc.status == IBV_WC_SUCCESS, "%s: status %s (%d) vendor_err %u",
	      what, ibv_wc_status_str(wc.status), wc.status, wc.vendor_err);
	if (wc.status != IBV_WC_SUCCESS)
		return false;
	CHECK(wc.opcode == op, "%s: opcode %d, expected %d", what, wc.opcode,
	      op);
	CHECK(wc.wr_id == wr_id, "%s: wr_id %" PRIu64 ", expected %" PRIu64,
	      what, wc.wr_id, wr_id);
	if (out)
		*out = wc;
	return wc.opcode == op && wc.wr_id == wr_id;
}

/* Nothing more arrives on cq within ms. */
static void expect_empty(struct ibv_cq *cq, int ms, const char *what)
{
	struct ibv_wc wc;
	int r = poll_one(cq, &wc, ms);

	CHECK(r == 0, "%s: unexpected completion: status %s opcode %d wr_id %"
	      PRIu64, what, r == 1 ? ibv_wc_status_str(wc.status) : "?",
	      r == 1 ? (int)wc.opcode : -1, r == 1 ? wc.wr_id : 0);
}

/* ---- devices, QPs and connections ------------------------------------ */

struct side {
	const char *name;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_device_attr dev;
	struct ibv_port_attr port;
	unsigned char *buf;
	struct ibv_mr *mr;
};

struct ep {
	struct side *s;
	struct ibv_comp_channel *ch;
	struct ibv_cq *scq, *rcq;
	struct ibv_qp *qp;
	enum ibv_qp_type type;
	uint32_t max_inline;
};

struct conn_opts {
	uint8_t timeout, retry_cnt, rnr_retry, min_rnr_timer;
	uint16_t pkey_index;
	struct ibv_srq *srq;          /* receive side uses this SRQ */
	bool rcq_channel;             /* recv CQ with a completion channel */
	bool shared_cq;               /* one CQ (with a channel) for both */
	int sq_sig_all;
};

static const struct conn_opts default_opts = {
	.timeout = 14, .retry_cnt = 7, .rnr_retry = 7, .min_rnr_timer = 12,
};

static struct side A, B;

static int side_open(struct side *s, const char *name)
{
	s->name = name;
	s->ctx = open_by_name(name);
	if (!s->ctx) {
		fprintf(stderr, "cannot open %s: %s\n", name, strerror(errno));
		return -1;
	}
	if (ibv_query_device(s->ctx, &s->dev) ||
	    ibv_query_port(s->ctx, 1, &s->port)) {
		fprintf(stderr, "%s: query: %s\n", name, strerror(errno));
		return -1;
	}
	s->pd = ibv_alloc_pd(s->ctx);
	s->buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!s->pd || s->buf == MAP_FAILED) {
		fprintf(stderr, "%s: pd/buffer: %s\n", name, strerror(errno));
		return -1;
	}
	s->mr = ibv_reg_mr(s->pd, s->buf, BUF_SIZE,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			   IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC);
	if (!s->mr) {
		fprintf(stderr, "%s: reg_mr: %s\n", name, strerror(errno));
		return -1;
	}
	return 0;
}

static int ep_create(struct ep *e, struct side *s, enum ibv_qp_type type,
		     const struct conn_opts *o)
{
	struct ibv_qp_init_attr ia;

	memset(e, 0, sizeof(*e));
	e->s = s;
	e->type = type;
	if (o->rcq_channel || o->shared_cq) {
		e->ch = ibv_create_comp_channel(s->ctx);
		if (!e->ch) {
			fprintf(stderr, "create_comp_channel: %s\n",
				strerror(errno));
			return -1;
		}
	}
	e->scq = ibv_create_cq(s->ctx, 512, NULL, o->shared_cq ? e->ch : NULL,
			       0);
	e->rcq = o->shared_cq ? e->scq :
				ibv_create_cq(s->ctx, 512, NULL, e->ch, 0);
	if (!e->scq || !e->rcq) {
		fprintf(stderr, "create_cq: %s\n", strerror(errno));
		return -1;
	}
	memset(&ia, 0, sizeof(ia));
	ia.send_cq = e->scq;
	ia.recv_cq = e->rcq;
	ia.srq = o->srq;
	ia.qp_type = type;
	ia.sq_sig_all = o->sq_sig_all;
	ia.cap.max_send_wr = 256;
	ia.cap.max_recv_wr = o->srq ? 0 : 256;
	ia.cap.max_send_sge = 4;
	ia.cap.max_recv_sge = o->srq ? 0 : 4;
	ia.cap.max_inline_data = 64;
	e->qp = ibv_create_qp(s->pd, &ia);
	if (!e->qp) {
		/* A device without inline support: still test the rest. */
		ia.cap.max_inline_data = 0;
		e->qp = ibv_create_qp(s->pd, &ia);
	}
	if (!e->qp) {
		fprintf(stderr, "%s: create_qp type %d: %s\n", s->name, type,
			strerror(errno));
		return -1;
	}
	e->max_inline = ia.cap.max_inline_data;
	return 0;
}

static void ep_destroy(struct ep *e)
{
	if (e->qp)
		CHECK(ibv_destroy_qp(e->qp) == 0, "destroy_qp: %s",
		      strerror(errno));
	if (e->scq)
		CHECK(ibv_destroy_cq(e->scq) == 0, "destroy_cq: %s",
		      strerror(errno));
	if (e->rcq && e->rcq != e->scq)
		CHECK(ibv_destroy_cq(e->rcq) == 0, "destroy_cq: %s",
		      strerror(errno));
	if (e->ch)
		CHECK(ibv_destroy_comp_channel(e->ch) == 0,
		      "destroy_comp_channel: %s", strerror(errno));
	memset(e, 0, sizeof(*e));
}

static int qp_to_init(struct ibv_qp *qp, enum ibv_qp_type type,
		      uint16_t pkey_index)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = pkey_index,
		.port_num = 1,
	};
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;

	if (type == IBV_QPT_UD) {
		a.qkey = QKEY;
		mask |= IBV_QP_QKEY;
	} else {
		a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
		if (type == IBV_QPT_RC)
			a.qp_access_flags |= IBV_ACCESS_REMOTE_READ |
					     IBV_ACCESS_REMOTE_ATOMIC;
		mask |= IBV_QP_ACCESS_FLAGS;
	}
	return ibv_modify_qp(qp, &a, mask);
}

static uint8_t rd_atomic(const struct side *s)
{
	int n = s->dev.max_qp_rd_atom < s->dev.max_qp_init_rd_atom ?
		s->dev.max_qp_rd_atom : s->dev.max_qp_init_rd_atom;

	if (n > 16)
		n = 16;
	return n < 1 ? 1 : (uint8_t)n;
}

static int qp_to_rtr(struct ep *e, uint16_t dlid, uint32_t dqpn,
		     const struct conn_opts *o)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTR };
	int mask = IBV_QP_STATE;

	if (e->type != IBV_QPT_UD) {
		a.path_mtu = e->s->port.active_mtu;
		a.dest_qp_num = dqpn;
		a.rq_psn = 0;
		a.ah_attr.dlid = dlid;
		a.ah_attr.port_num = 1;
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN;
		if (e->type == IBV_QPT_RC) {
			a.max_dest_rd_atomic = rd_atomic(e->s);
			a.min_rnr_timer = o->min_rnr_timer;
			mask |= IBV_QP_MAX_DEST_RD_ATOMIC |
				IBV_QP_MIN_RNR_TIMER;
		}
	}
	return ibv_modify_qp(e->qp, &a, mask);
}

static int qp_to_rts(struct ep *e, const struct conn_opts *o)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTS, .sq_psn = 0 };
	int mask = IBV_QP_STATE | IBV_QP_SQ_PSN;

	if (e->type == IBV_QPT_RC) {
		a.timeout = o->timeout;
		a.retry_cnt = o->retry_cnt;
		a.rnr_retry = o->rnr_retry;
		a.max_rd_atomic = rd_atomic(e->s);
		mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			IBV_QP_MAX_QP_RD_ATOMIC;
	}
	return ibv_modify_qp(e->qp, &a, mask);
}

/*
 * Creates a connected pair x (on side sx) <-> y (on sy).  ox applies to
 * x's requester attributes and y's responder ones and vice versa.
 */
static int pair_create(struct ep *x, struct side *sx, const struct conn_opts *ox,
		       struct ep *y, struct side *sy, const struct conn_opts *oy,
		       enum ibv_qp_type type)
{
	int r;

	if (ep_create(x, sx, type, ox) || ep_create(y, sy, type, oy))
		return -1;
	if ((r = qp_to_init(x->qp, type, ox->pkey_index)) ||
	    (r = qp_to_init(y->qp, type, oy->pkey_index)) ||
	    (r = qp_to_rtr(x, sy->port.lid, y->qp->qp_num, ox)) ||
	    (r = qp_to_rtr(y, sx->port.lid, x->qp->qp_num, oy)) ||
	    (r = qp_to_rts(x, ox)) || (r = qp_to_rts(y, oy))) {
		fprintf(stderr, "connect: modify_qp: %s\n", strerror(r));
		return -1;
	}
	return 0;
}

static int post_recv1(struct ibv_qp *qp, struct ibv_srq *srq, uint64_t wr_id,
		      struct side *s, size_t off, uint32_t len)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(s->buf + off), .length = len,
		.lkey = s->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 }, *bad;

	return srq ? ibv_post_srq_recv(srq, &wr, &bad) :
		     ibv_post_recv(qp, &wr, &bad);
}

static int post_send1(struct ep *e, enum ibv_wr_opcode op, uint64_t wr_id,
		      size_t off, uint32_t len, uint64_t raddr, uint32_t rkey,
		      unsigned int flags)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(e->s->buf + off), .length = len,
		.lkey = e->s->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = len ? 1 : 0,
		.opcode = op, .send_flags = flags,
	}, *bad;

	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	return ibv_post_send(e->qp, &wr, &bad);
}

/* Splits [off, off + len) of side s into n SGEs (n <= 4). */
static int split_sges(struct side *s, size_t off, uint32_t len,
		      struct ibv_sge *sges, int n)
{
	uint32_t left = len;

	if (len < (uint32_t)n)
		n = len ? (int)len : 1;
	for (int i = 0; i < n; i++) {
		uint32_t part = i == n - 1 ? left : left / (uint32_t)(n - i);

		sges[i].addr = (uintptr_t)(s->buf + off);
		sges[i].length = part;
		sges[i].lkey = s->mr->lkey;
		off += part;
		left -= part;
	}
	return n;
}

/* ---- sub-tests --------------------------------------------------------- */

/* The two-sided operations of RC and UC: SEND, SEND_WITH_IMM, inline. */
static void sends(struct ep *x, struct ep *y, int rounds, const char *what)
{
	const size_t rbase = 4u << 20;   /* receive area in y's buffer */

	for (int i = 0; i < rounds; i++) {
		uint32_t len = i == 0 ? 0 : rnd_range(1, i % 10 ? 8192 : 262144);
		size_t soff = rnd_range(0, (2u << 20) - len);
		size_t roff = rbase + rnd_range(0, (2u << 20) - len);
		bool imm = i & 1;
		bool inl = x->max_inline && len <= x->max_inline && i % 3 == 0;
		struct ibv_sge ssg[4], rsg[4];
		int ns = split_sges(x->s, soff, len, ssg, (int)rnd_range(1, 4));
		int nr = split_sges(y->s, roff, len + 64, rsg,
				    (int)rnd_range(1, 4));
		struct ibv_send_wr swr = {
			.wr_id = 1000 + (uint64_t)i, .sg_list = ssg,
			.num_sge = len ? ns : 0,
			.opcode = imm ? IBV_WR_SEND_WITH_IMM : IBV_WR_SEND,
			.send_flags = IBV_SEND_SIGNALED |
				      (inl ? IBV_SEND_INLINE : 0),
			.imm_data = htobe32(0xabc00000u + (uint32_t)i),
		}, *sbad;
		struct ibv_recv_wr rwr = { .wr_id = 2000 + (uint64_t)i,
					   .sg_list = rsg, .num_sge = nr }, *rbad;
		struct ibv_wc wc;
		long bad;

		fill_pattern(x->s->buf + soff, len, (uint64_t)i + 77);
		memset(y->s->buf + roff, 0xee, len + 64);
		REQUIRE(ibv_post_recv(y->qp, &rwr, &rbad) == 0,
			"%s: post_recv: %s", what, strerror(errno));
		int r = ibv_post_send(x->qp, &swr, &sbad);
		CHECK(r == 0, "%s: post_send %d (len %u, %d sges, inline %d): %s",
		      what, i, len, ns, inl, strerror(r));
		if (r)
			return;
		if (inl) /* inline data was copied at post time */
			memset(x->s->buf + soff, 0x5a, len);
		if (!expect_wc(x->scq, IBV_WC_SEND, swr.wr_id, NULL, what))
			return;
		if (!expect_wc(y->rcq, IBV_WC_RECV, rwr.wr_id, &wc, what))
			return;
		CHECK(wc.byte_len == len, "%s: byte_len %u, sent %u", what,
		      wc.byte_len, len);
		CHECK(wc.qp_num == y->qp->qp_num, "%s: wc qp_num %u", what,
		      wc.qp_num);
		CHECK(!!(wc.wc_flags & IBV_WC_WITH_IMM) == imm,
		      "%s: WITH_IMM flag %d, imm %d", what,
		      !!(wc.wc_flags & IBV_WC_WITH_IMM), imm);
		if (imm)
			CHECK(be32toh(wc.imm_data) == 0xabc00000u + (uint32_t)i,
			      "%s: imm 0x%x", what, be32toh(wc.imm_data));
		bad = check_pattern(y->s->buf + roff, len, (uint64_t)i + 77);
		CHECK(bad < 0, "%s: round %d len %u (%d->%d sges, inline %d): "
		      "data differs at byte %ld", what, i, len, ns, nr, inl, bad);
		CHECK(y->s->buf[roff + len] == 0xee,
		      "%s: wrote past the message end", what);
		if (bad >= 0)
			return;
	}
}

/* RDMA WRITE (with and without immediate) from x into y's buffer. */
static void writes(struct ep *x, struct ep *y, int rounds, const char *what)
{
	for (int i = 0; i < rounds; i++) {
		uint32_t len = rnd_range(1, i % 10 ? 8192 : 1u << 20);
		size_t soff = rnd_range(0, (2u << 20) - len);
		size_t doff = (4u << 20) + rnd_range(0, (2u << 20) - len);
		bool imm = i % 4 == 3;
		struct ibv_sge ssg[4];
		int ns = split_sges(x->s, soff, len, ssg, (int)rnd_range(1, 4));
		struct ibv_send_wr wr = {
			.wr_id = 3000 + (uint64_t)i, .sg_list = ssg,
			.num_sge = ns,
			.opcode = imm ? IBV_WR_RDMA_WRITE_WITH_IMM :
					IBV_WR_RDMA_WRITE,
			.send_flags = IBV_SEND_SIGNALED,
			.imm_data = htobe32(0x77000000u + (uint32_t)i),
		}, *bad_wr;
		struct ibv_wc wc;
		long bad;

		wr.wr.rdma.remote_addr = (uintptr_t)(y->s->buf + doff);
		wr.wr.rdma.rkey = y->s->mr->rkey;
		fill_pattern(x->s->buf + soff, len, (uint64_t)i + 999);
		memset(y->s->buf + doff, 0, len + 1);
		if (imm) /* consumes a receive WQE, no data lands in it */
			REQUIRE(post_recv1(y->qp, NULL, 4000 + (uint64_t)i, y->s,
					   7u << 20, 16) == 0, "post_recv");
		int r = ibv_post_send(x->qp, &wr, &bad_wr);
		CHECK(r == 0, "%s: post_send: %s", what, strerror(r));
		if (r)
			return;
		if (!expect_wc(x->scq, IBV_WC_RDMA_WRITE, wr.wr_id, NULL, what))
			return;
		if (imm) {
			if (!expect_wc(y->rcq, IBV_WC_RECV_RDMA_WITH_IMM,
				       4000 + (uint64_t)i, &wc, what))
				return;
			CHECK(wc.wc_flags & IBV_WC_WITH_IMM,
			      "%s: no WITH_IMM flag", what);
			CHECK(be32toh(wc.imm_data) == 0x77000000u + (uint32_t)i,
			      "%s: imm 0x%x", what, be32toh(wc.imm_data));
			CHECK(wc.byte_len == len,
			      "%s: WRITE_WITH_IMM byte_len %u, written %u", what,
			      wc.byte_len, len);
		}
		/* RC: completion at the requester means the data is placed.
		 * UC: it only means sent, so give placement a moment. */
		bad = check_pattern(y->s->buf + doff, len, (uint64_t)i + 999);
		for (int w = 0; bad >= 0 && y->type == IBV_QPT_UC && w < 200;
		     w++) {
			usleep(10000);
			bad = check_pattern(y->s->buf + doff, len,
					    (uint64_t)i + 999);
		}
		CHECK(bad < 0, "%s: write %d len %u (%d sges) differs at %ld",
		      what, i, len, ns, bad);
		CHECK(y->s->buf[doff + len] == 0, "%s: wrote past the end", what);
		if (bad >= 0)
			return;
	}
	if (y->type == IBV_QPT_UC || y->type == IBV_QPT_RC)
		expect_empty(y->rcq, 10, what);
}

static void reads(struct ep *x, struct ep *y, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		uint32_t len = rnd_range(1, i % 10 ? 8192 : 1u << 20);
		size_t roff = rnd_range(0, (2u << 20) - len);
		size_t loff = (2u << 20) + rnd_range(0, (2u << 20) - len);
		struct ibv_sge sg[4];
		int ns = split_sges(x->s, loff, len, sg, (int)rnd_range(1, 4));
		struct ibv_send_wr wr = {
			.wr_id = 5000 + (uint64_t)i, .sg_list = sg,
			.num_sge = ns, .opcode = IBV_WR_RDMA_READ,
			.send_flags = IBV_SEND_SIGNALED,
		}, *bad_wr;
		struct ibv_wc wc;
		long bad;

		wr.wr.rdma.remote_addr = (uintptr_t)(y->s->buf + roff);
		wr.wr.rdma.rkey = y->s->mr->rkey;
		fill_pattern(y->s->buf + roff, len, (uint64_t)i + 4242);
		memset(x->s->buf + loff, 0, len + 1);
		int r = ibv_post_send(x->qp, &wr, &bad_wr);
		CHECK(r == 0, "read: post_send: %s", strerror(r));
		if (r)
			return;
		if (!expect_wc(x->scq, IBV_WC_RDMA_READ, wr.wr_id, &wc, "read"))
			return;
		CHECK(wc.byte_len == len, "read: byte_len %u, expected %u",
		      wc.byte_len, len);
		bad = check_pattern(x->s->buf + loff, len, (uint64_t)i + 4242);
		CHECK(bad < 0, "read %d len %u (%d sges) differs at %ld", i, len,
		      ns, bad);
		CHECK(x->s->buf[loff + len] == 0, "read: past the end");
		if (bad >= 0)
			return;
	}
}

static int post_atomic(struct ep *x, enum ibv_wr_opcode op, uint64_t wr_id,
		       size_t loff, uint64_t raddr, uint32_t rkey,
		       uint64_t compare_add, uint64_t swap)
{
	struct ibv_sge sge = { .addr = (uintptr_t)(x->s->buf + loff),
			       .length = 8, .lkey = x->s->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	wr.wr.atomic.remote_addr = raddr;
	wr.wr.atomic.rkey = rkey;
	wr.wr.atomic.compare_add = compare_add;
	wr.wr.atomic.swap = swap;
	return ibv_post_send(x->qp, &wr, &bad);
}

static void atomics(struct ep *x, struct ep *y)
{
	volatile uint64_t *target = (volatile uint64_t *)(y->s->buf + 6u * 4096);
	volatile uint64_t *result = (volatile uint64_t *)(x->s->buf + 64);
	uintptr_t raddr = (uintptr_t)target;
	struct ibv_wc wc;

	CHECK(x->s->dev.atomic_cap != IBV_ATOMIC_NONE,
	      "device reports no atomics (atomic_cap %d)", x->s->dev.atomic_cap);
	for (int i = 0; i < 50; i++) {
		uint64_t old = rnd(), add = rnd(), swap = rnd();

		*target = old;
		*result = 0;
		REQUIRE(post_atomic(x, IBV_WR_ATOMIC_FETCH_AND_ADD, 60,
				    64, raddr, y->s->mr->rkey, add, 0) == 0,
			"post fetch_add");
		if (!expect_wc(x->scq, IBV_WC_FETCH_ADD, 60, &wc, "fetch_add"))
			return;
		CHECK(wc.byte_len == 8, "fetch_add byte_len %u", wc.byte_len);
		CHECK(*result == old, "fetch_add returned %" PRIx64 ", was %"
		      PRIx64, *result, old);
		CHECK(*target == old + add, "fetch_add left %" PRIx64
		      ", expected %" PRIx64, *target, old + add);

		/* compare and swap, matching */
		old = *target;
		*result = 0;
		REQUIRE(post_atomic(x, IBV_WR_ATOMIC_CMP_AND_SWP, 61, 64,
				    raddr, y->s->mr->rkey, old, swap) == 0,
			"post cmp_swp");
		if (!expect_wc(x->scq, IBV_WC_COMP_SWAP, 61, &wc, "cmp_swp"))
			return;
		CHECK(*result == old, "cmp_swp returned %" PRIx64, *result);
		CHECK(*target == swap, "cmp_swp (match) left %" PRIx64
		      ", expected %" PRIx64, *target, swap);

		/* compare and swap, not matching: memory unchanged */
		*result = 0;
		REQUIRE(post_atomic(x, IBV_WR_ATOMIC_CMP_AND_SWP, 62, 64,
				    raddr, y->s->mr->rkey, ~swap, old) == 0,
			"post cmp_swp");
		if (!expect_wc(x->scq, IBV_WC_COMP_SWAP, 62, &wc, "cmp_swp"))
			return;
		CHECK(*result == swap, "cmp_swp (miss) returned %" PRIx64,
		      *result);
		CHECK(*target == swap, "cmp_swp (miss) changed memory to %"
		      PRIx64, *target);
	}
}

static void t_rc_ops(void)
{
	struct ep x, y;

	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &default_opts,
			    IBV_QPT_RC) == 0, "RC pair");
	printf("  RC max_inline_data %u\n", x.max_inline);
	sends(&x, &y, 300, "rc send");
	sends(&y, &x, 50, "rc send (B->A)");
	writes(&x, &y, 200, "rc write");
	reads(&x, &y, 200);
	atomics(&x, &y);

	/* Too many SGEs is refused at post time, with bad_wr set. */
	{
		struct ibv_sge sg[32];
		struct ibv_send_wr wr = { .wr_id = 1, .sg_list = sg,
					  .num_sge = 32,
					  .opcode = IBV_WR_SEND }, *bad = NULL;

		for (int i = 0; i < 32; i++)
			sg[i] = (struct ibv_sge){ (uintptr_t)A.buf + i, 1,
						  A.mr->lkey };
		CHECK(ibv_post_send(x.qp, &wr, &bad) != 0 && bad == &wr,
		      "post_send with 32 SGEs (max 4) accepted");
		expect_empty(x.scq, 50, "after refused post");
	}
	ep_destroy(&x);
	ep_destroy(&y);
}

static void t_uc_ops(void)
{
	struct ep x, y;

	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &default_opts,
			    IBV_QPT_UC) == 0, "UC pair");
	sends(&x, &y, 200, "uc send");
	writes(&x, &y, 100, "uc write");
	ep_destroy(&x);
	ep_destroy(&y);
}

static struct ibv_ah *make_ah(struct side *s, uint16_t dlid)
{
	struct ibv_ah_attr ah = { .dlid = dlid, .port_num = 1 };

	return ibv_create_ah(s->pd, &ah);
}

static int post_ud(struct ep *x, struct ibv_ah *ah, uint32_t qpn, uint32_t qkey,
		   uint64_t wr_id, size_t off, uint32_t len, uint32_t imm)
{
	struct ibv_sge sge = { .addr = (uintptr_t)(x->s->buf + off),
			       .length = len, .lkey = x->s->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = len ? 1 : 0,
		.opcode = IBV_WR_SEND_WITH_IMM, .send_flags = IBV_SEND_SIGNALED,
		.imm_data = htobe32(imm),
	}, *bad;

	wr.wr.ud.ah = ah;
	wr.wr.ud.remote_qpn = qpn;
	wr.wr.ud.remote_qkey = qkey;
	return ibv_post_send(x->qp, &wr, &bad);
}

static void t_ud(void)
{
	struct ep x, y;
	struct ibv_ah *ah;
	struct ibv_wc wc;
	uint32_t maxlen = 2048;

	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &default_opts,
			    IBV_QPT_UD) == 0, "UD pair");
	ah = make_ah(&A, B.port.lid);
	REQUIRE(ah, "create_ah: %s", strerror(errno));

	for (int i = 0; i < 200; i++) {
		uint32_t len = i == 0 ? maxlen : rnd_range(0, maxlen);
		size_t soff = rnd_range(0, 1u << 20);
		size_t roff = (4u << 20) + 4096 * (size_t)rnd_range(0, 100);
		long bad;

		fill_pattern(A.buf + soff, len, (uint64_t)i + 5);
		memset(B.buf + roff, 0xcc, maxlen + GRH_SIZE);
		REQUIRE(post_recv1(y.qp, NULL, 7000 + (uint64_t)i, &B, roff,
				   maxlen + GRH_SIZE) == 0, "ud post_recv");
		REQUIRE(post_ud(&x, ah, y.qp->qp_num, QKEY, 6000 + (uint64_t)i,
				soff, len, (uint32_t)i) == 0, "ud post_send");
		if (!expect_wc(x.scq, IBV_WC_SEND, 6000 + (uint64_t)i, NULL,
			       "ud send"))
			break;
		if (!expect_wc(y.rcq, IBV_WC_RECV, 7000 + (uint64_t)i, &wc,
			       "ud recv"))
			break;
		CHECK(wc.byte_len == len + GRH_SIZE,
		      "ud byte_len %u, expected %u + 40", wc.byte_len, len);
		CHECK(wc.src_qp == x.qp->qp_num, "ud src_qp %u, expected %u",
		      wc.src_qp, x.qp->qp_num);
		CHECK(wc.slid == A.port.lid, "ud slid %u, expected %u", wc.slid,
		      A.port.lid);
		CHECK(!(wc.wc_flags & IBV_WC_GRH), "ud GRH flag without a GRH");
		CHECK((wc.wc_flags & IBV_WC_WITH_IMM) &&
		      be32toh(wc.imm_data) == (uint32_t)i, "ud imm");
		bad = check_pattern(B.buf + roff + GRH_SIZE, len, (uint64_t)i + 5);
		CHECK(bad < 0, "ud message %d len %u differs at %ld", i, len,
		      bad);
		CHECK(B.buf[roff + GRH_SIZE + len] == 0xcc || len == maxlen,
		      "ud wrote past the message");
		if (bad >= 0)
			break;
	}

	/* Q_Key mismatch: the send completes, nothing is received. */
	REQUIRE(post_recv1(y.qp, NULL, 7999, &B, 4u << 20, maxlen + GRH_SIZE) ==
		0, "ud post_recv");
	REQUIRE(post_ud(&x, ah, y.qp->qp_num, QKEY ^ 0x10101, 6999, 0, 100, 1) ==
		0, "ud post_send");
	expect_wc(x.scq, IBV_WC_SEND, 6999, NULL, "ud send (bad qkey)");
	expect_empty(y.rcq, 300, "ud Q_Key mismatch delivered");
	/* ... and the next good one takes the receive that is still there. */
	REQUIRE(post_ud(&x, ah, y.qp->qp_num, QKEY, 6998, 0, 100, 2) == 0,
		"ud post_send");
	expect_wc(x.scq, IBV_WC_SEND, 6998, NULL, "ud send (good qkey)");
	if (expect_wc(y.rcq, IBV_WC_RECV, 7999, &wc, "ud recv after mismatch"))
		CHECK(be32toh(wc.imm_data) == 2, "ud got imm %u (the bad-qkey one?)",
		      be32toh(wc.imm_data));

	/* Wrong destination QPN: dropped, nothing received. */
	REQUIRE(post_recv1(y.qp, NULL, 7998, &B, 4u << 20, maxlen + GRH_SIZE) ==
		0, "ud post_recv");
	REQUIRE(post_ud(&x, ah, y.qp->qp_num + 1000, QKEY, 6997, 0, 100, 3) ==
		0, "ud post_send");
	expect_wc(x.scq, IBV_WC_SEND, 6997, NULL, "ud send (bad qpn)");
	expect_empty(y.rcq, 200, "ud wrong QPN delivered");

	CHECK(ibv_destroy_ah(ah) == 0, "destroy_ah");
	ep_destroy(&x);
	ep_destroy(&y);
}

static bool wait_async(struct ibv_context *ctx, enum ibv_event_type type,
		       void *obj, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;
	int flags = fcntl(ctx->async_fd, F_GETFL);

	fcntl(ctx->async_fd, F_SETFL, flags | O_NONBLOCK);
	for (;;) {
		struct pollfd pfd = { .fd = ctx->async_fd, .events = POLLIN };
		struct ibv_async_event ev;
		int64_t left = (int64_t)(deadline - now_ms());

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		if (ibv_get_async_event(ctx, &ev))
			continue;
		bool match = ev.event_type == type &&
			     (!obj || ev.element.srq == obj ||
			      ev.element.qp == obj || ev.element.cq == obj);
		printf("  async event: %s\n", ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
		if (match) {
			fcntl(ctx->async_fd, F_SETFL, flags);
			return true;
		}
	}
	fcntl(ctx->async_fd, F_SETFL, flags);
	return false;
}

static void t_srq(void)
{
	struct ibv_srq_init_attr sia = { .attr = { .max_wr = 64, .max_sge = 2 } };
	struct ibv_srq *srq = ibv_create_srq(B.pd, &sia);
	struct conn_opts oy = default_opts;
	struct ep x1, y1, x2, y2;
	struct ibv_wc wcs[64];
	const size_t rbase = 4u << 20, slot = 4096;
	const int per_qp = 16;
	bool seen[64] = { false };
	int got;

	REQUIRE(srq, "create_srq: %s", strerror(errno));
	oy.srq = srq;
	REQUIRE(pair_create(&x1, &A, &default_opts, &y1, &B, &oy, IBV_QPT_RC) ==
		0, "SRQ pair 1");
	REQUIRE(pair_create(&x2, &A, &default_opts, &y2, &B, &oy, IBV_QPT_RC) ==
		0, "SRQ pair 2");

	/* A receive posted on a QP with an SRQ is refused. */
	CHECK(post_recv1(y1.qp, NULL, 1, &B, 0, 16) != 0,
	      "post_recv on an SRQ-attached QP accepted");

	for (int i = 0; i < 2 * per_qp; i++)
		REQUIRE(post_recv1(NULL, srq, (uint64_t)i, &B,
				   rbase + slot * (size_t)i, (uint32_t)slot) == 0,
			"post_srq_recv");
	for (int i = 0; i < per_qp; i++) {
		fill_pattern(A.buf + slot * (size_t)i, 1000 + (size_t)i,
			     100 + (uint64_t)i);
		fill_pattern(A.buf + (1u << 20) + slot * (size_t)i,
			     2000 + (size_t)i, 200 + (uint64_t)i);
		REQUIRE(post_send1(&x1, IBV_WR_SEND, 100 + (uint64_t)i,
				   slot * (size_t)i, 1000 + (uint32_t)i, 0, 0,
				   IBV_SEND_SIGNALED) == 0, "post_send 1");
		REQUIRE(post_send1(&x2, IBV_WR_SEND, 200 + (uint64_t)i,
				   (1u << 20) + slot * (size_t)i,
				   2000 + (uint32_t)i, 0, 0,
				   IBV_SEND_SIGNALED) == 0, "post_send 2");
	}
	CHECK(poll_n(x1.scq, wcs, per_qp, DEFAULT_TIMEOUT_MS) == per_qp,
	      "srq: sender 1 completions");
	CHECK(poll_n(x2.scq, wcs, per_qp, DEFAULT_TIMEOUT_MS) == per_qp,
	      "srq: sender 2 completions");
	/* Receives land on each QP's receive CQ, from the shared queue. */
	int next1 = 0, next2 = 0;
	for (int q = 0; q < 2; q++) {
		struct ep *y = q ? &y2 : &y1;

		got = poll_n(y->rcq, wcs, per_qp, DEFAULT_TIMEOUT_MS);
		CHECK(got == per_qp, "srq: qp %d got %d receives", q, got);
		for (int k = 0; k < got; k++) {
			struct ibv_wc *w = &wcs[k];
			int *next = q ? &next2 : &next1;

			CHECK(w->status == IBV_WC_SUCCESS, "srq recv status %s",
			      ibv_wc_status_str(w->status));
			if (w->status != IBV_WC_SUCCESS || w->wr_id >= 64)
				continue;
			CHECK(!seen[w->wr_id], "srq: wr_id %" PRIu64 " twice",
			      w->wr_id);
			seen[w->wr_id] = true;
			CHECK(w->qp_num == y->qp->qp_num, "srq: qp_num");
			/* per-QP order is the sender's order */
			uint32_t len = (q ? 2000u : 1000u) + (uint32_t)*next;
			CHECK(w->byte_len == len, "srq: qp %d msg %d byte_len %u,"
			      " expected %u", q, *next, w->byte_len, len);
			CHECK(check_pattern(B.buf + rbase + slot * w->wr_id,
					    len, (q ? 200u : 100u) +
					    (uint64_t)*next) < 0,
			      "srq: qp %d message %d data", q, *next);
			(*next)++;
		}
	}

	/* SRQ limit: arm at 8 with 16 posted, consume 9 -> event. */
	for (int i = 0; i < 16; i++)
		REQUIRE(post_recv1(NULL, srq, 100 + (uint64_t)i, &B,
				   rbase + slot * (size_t)i, (uint32_t)slot) == 0,
			"post_srq_recv");
	struct ibv_srq_attr sa = { .srq_limit = 8 };
	int r = ibv_modify_srq(srq, &sa, IBV_SRQ_LIMIT);
	CHECK(r == 0, "modify_srq(limit 8): %s", strerror(r));
	CHECK(!wait_async(B.ctx, IBV_EVENT_SRQ_LIMIT_REACHED, srq, 100),
	      "SRQ limit event with 16 > 8 posted");
	for (int i = 0; i < 9; i++)
		REQUIRE(post_send1(&x1, IBV_WR_SEND, 300 + (uint64_t)i, 0, 64, 0,
				   0, IBV_SEND_SIGNALED) == 0, "post_send");
	CHECK(poll_n(x1.scq, wcs, 9, DEFAULT_TIMEOUT_MS) == 9, "srq sends");
	CHECK(poll_n(y1.rcq, wcs, 9, DEFAULT_TIMEOUT_MS) == 9, "srq receives");
	CHECK(wait_async(B.ctx, IBV_EVENT_SRQ_LIMIT_REACHED, srq, 2000),
	      "no IBV_EVENT_SRQ_LIMIT_REACHED after going below the limit");
	memset(&sa, 0xff, sizeof(sa));
	if (ibv_query_srq(srq, &sa) == 0)
		CHECK(sa.srq_limit == 0, "srq_limit %u after the event (disarmed)",
		      sa.srq_limit);

	/*
	 * A second limit event the application never reads: destroy must
	 * report only the events read (the kernel's rule), or libibverbs'
	 * ibv_destroy_srq waits forever for an ack that cannot come.  The
	 * alarm turns such a hang into a failure.
	 */
	for (int i = 0; i < 4; i++)
		REQUIRE(post_recv1(NULL, srq, 400 + (uint64_t)i, &B,
				   rbase + slot * (size_t)i, (uint32_t)slot) == 0,
			"post_srq_recv");
	sa.srq_limit = 10;
	r = ibv_modify_srq(srq, &sa, IBV_SRQ_LIMIT);
	CHECK(r == 0, "modify_srq(limit 10): %s", strerror(r));
	/* 7 + 4 posted, limit 10: two receives take it below. */
	for (int i = 0; i < 2; i++)
		REQUIRE(post_send1(&x1, IBV_WR_SEND, 500 + (uint64_t)i, 0, 64,
				   0, 0, IBV_SEND_SIGNALED) == 0, "post_send");
	CHECK(poll_n(x1.scq, wcs, 2, DEFAULT_TIMEOUT_MS) == 2, "srq sends");
	CHECK(poll_n(y1.rcq, wcs, 2, DEFAULT_TIMEOUT_MS) == 2, "srq receives");
	memset(&sa, 0xff, sizeof(sa));
	CHECK(ibv_query_srq(srq, &sa) == 0 && sa.srq_limit == 0,
	      "second limit event fired (limit %u)", sa.srq_limit);

	ep_destroy(&x1);
	ep_destroy(&y1);
	ep_destroy(&x2);
	ep_destroy(&y2);
	alarm(30);
	CHECK(ibv_destroy_srq(srq) == 0, "destroy_srq: %s", strerror(errno));
	alarm(0);
	/*
	 * Like the kernel, destroy took the unread event back: reading it
	 * now would hand libibverbs a pointer to the freed SRQ.
	 */
	CHECK(!wait_async(B.ctx, IBV_EVENT_SRQ_LIMIT_REACHED, NULL, 200),
	      "an event of the destroyed SRQ was still delivered");
}

static void t_unsignaled(void)
{
	struct ep x, y;
	struct ibv_wc wcs[64];
	const int n = 50;

	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &default_opts,
			    IBV_QPT_RC) == 0, "RC pair");
	for (int i = 0; i < n; i++)
		REQUIRE(post_recv1(y.qp, NULL, (uint64_t)i, &B,
				   (4u << 20) + 256 * (size_t)i, 256) == 0,
			"post_recv");
	for (int i = 0; i < n; i++) {
		A.buf[i * 256] = (unsigned char)i;
		REQUIRE(post_send1(&x, IBV_WR_SEND, (uint64_t)i, (size_t)i * 256,
				   1 + (uint32_t)i, 0, 0,
				   i % 10 == 9 ? IBV_SEND_SIGNALED : 0) == 0,
			"post_send %d", i);
	}
	int got = poll_n(x.scq, wcs, n / 10, DEFAULT_TIMEOUT_MS);
	CHECK(got == n / 10, "%d signaled completions, expected %d", got,
	      n / 10);
	for (int k = 0; k < got; k++)
		CHECK(wcs[k].status == IBV_WC_SUCCESS &&
		      wcs[k].wr_id == (uint64_t)(10 * k + 9),
		      "completion %d: wr_id %" PRIu64 " status %s", k,
		      wcs[k].wr_id, ibv_wc_status_str(wcs[k].status));
	expect_empty(x.scq, 200, "unsignaled send completed");
	got = poll_n(y.rcq, wcs, n, DEFAULT_TIMEOUT_MS);
	CHECK(got == n, "%d receives, expected %d", got, n);
	for (int k = 0; k < got; k++)
		CHECK(wcs[k].wr_id == (uint64_t)k &&
		      wcs[k].byte_len == 1 + (uint32_t)k &&
		      B.buf[(4u << 20) + 256 * (size_t)k] == (unsigned char)k,
		      "receive %d out of order or wrong (wr_id %" PRIu64
		      " len %u)", k, wcs[k].wr_id, wcs[k].byte_len);

	/* sq_sig_all = 1: every WR completes, flags or not. */
	ep_destroy(&x);
	ep_destroy(&y);
	struct conn_opts all = default_opts;
	all.sq_sig_all = 1;
	REQUIRE(pair_create(&x, &A, &all, &y, &B, &default_opts, IBV_QPT_RC) ==
		0, "RC pair");
	for (int i = 0; i < 10; i++)
		REQUIRE(post_send1(&x, IBV_WR_RDMA_WRITE, (uint64_t)i, 0, 8,
				   (uintptr_t)B.buf, B.mr->rkey, 0) == 0,
			"post_send");
	CHECK(poll_n(x.scq, wcs, 10, DEFAULT_TIMEOUT_MS) == 10,
	      "sq_sig_all: not every WR completed");
	ep_destroy(&x);
	ep_destroy(&y);
}

static bool fd_readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1;
}

static void t_solicited(void)
{
	struct conn_opts oy = default_opts;
	struct ep x, y;
	struct ibv_wc wcs[4];
	struct ibv_cq *ev_cq;
	void *ev_ctx;

	oy.rcq_channel = true;
	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &oy, IBV_QPT_RC) ==
		0, "RC pair");
	for (int i = 0; i < 4; i++)
		REQUIRE(post_recv1(y.qp, NULL, (uint64_t)i, &B, 4096 * (size_t)i,
				   4096) == 0, "post_recv");
	REQUIRE(ibv_req_notify_cq(y.rcq, 1) == 0, "req_notify_cq(solicited)");

	/* An unsolicited message: a completion but no event. */
	REQUIRE(post_send1(&x, IBV_WR_SEND, 1, 0, 100, 0, 0,
			   IBV_SEND_SIGNALED) == 0, "post_send");
	expect_wc(x.scq, IBV_WC_SEND, 1, NULL, "unsolicited send");
	CHECK(!fd_readable(y.ch->fd, 300),
	      "event for an unsolicited message with solicited_only");

	/* A solicited one: the event. */
	REQUIRE(post_send1(&x, IBV_WR_SEND_WITH_IMM, 2, 0, 100, 0, 0,
			   IBV_SEND_SIGNALED | IBV_SEND_SOLICITED) == 0,
		"post_send");
	expect_wc(x.scq, IBV_WC_SEND, 2, NULL, "solicited send");
	CHECK(fd_readable(y.ch->fd, 2000), "no event for a solicited message");
	if (fd_readable(y.ch->fd, 0)) {
		CHECK(ibv_get_cq_event(y.ch, &ev_cq, &ev_ctx) == 0 &&
		      ev_cq == y.rcq, "get_cq_event");
		ibv_ack_cq_events(y.rcq, 1);
	}
	CHECK(poll_n(y.rcq, wcs, 2, DEFAULT_TIMEOUT_MS) == 2 &&
	      wcs[0].wr_id == 0 && wcs[1].wr_id == 1, "both receives");

	/* Not re-armed: no event even for a solicited message. */
	REQUIRE(post_send1(&x, IBV_WR_SEND, 3, 0, 10, 0, 0,
			   IBV_SEND_SIGNALED | IBV_SEND_SOLICITED) == 0,
		"post_send");
	expect_wc(x.scq, IBV_WC_SEND, 3, NULL, "send");
	CHECK(!fd_readable(y.ch->fd, 200), "event without req_notify_cq");
	CHECK(poll_n(y.rcq, wcs, 1, DEFAULT_TIMEOUT_MS) == 1, "receive");

	/* Armed for any completion: an unsolicited one raises it. */
	REQUIRE(ibv_req_notify_cq(y.rcq, 0) == 0, "req_notify_cq(any)");
	REQUIRE(post_send1(&x, IBV_WR_SEND, 4, 0, 10, 0, 0,
			   IBV_SEND_SIGNALED) == 0, "post_send");
	expect_wc(x.scq, IBV_WC_SEND, 4, NULL, "send");
	CHECK(fd_readable(y.ch->fd, 2000), "no event with req_notify_cq(0)");
	if (fd_readable(y.ch->fd, 0)) {
		CHECK(ibv_get_cq_event(y.ch, &ev_cq, &ev_ctx) == 0 &&
		      ev_cq == y.rcq, "get_cq_event");
		ibv_ack_cq_events(y.rcq, 1);
	}
	CHECK(poll_n(y.rcq, wcs, 1, DEFAULT_TIMEOUT_MS) == 1, "receive");

	/*
	 * An event never read: the CQ's destroy must not wait for it, and,
	 * as the kernel drops it, it must not be read afterwards (it would
	 * name the freed CQ).
	 */
	REQUIRE(post_recv1(y.qp, NULL, 5, &B, 0, 4096) == 0, "post_recv");
	REQUIRE(ibv_req_notify_cq(y.rcq, 0) == 0, "req_notify_cq(any)");
	REQUIRE(post_send1(&x, IBV_WR_SEND, 5, 0, 10, 0, 0,
			   IBV_SEND_SIGNALED) == 0, "post_send");
	expect_wc(x.scq, IBV_WC_SEND, 5, NULL, "send");
	CHECK(fd_readable(y.ch->fd, 2000), "no event for the last receive");
	CHECK(ibv_destroy_qp(y.qp) == 0, "destroy_qp: %s", strerror(errno));
	y.qp = NULL;
	alarm(30);
	CHECK(ibv_destroy_cq(y.rcq) == 0, "destroy_cq: %s", strerror(errno));
	alarm(0);
	y.rcq = NULL;
	CHECK(!fd_readable(y.ch->fd, 200),
	      "an event of the destroyed CQ is still in its channel");
	ep_destroy(&x);
	ep_destroy(&y);
}

/*
 * Event-driven ping-pong as ibv_rc_pingpong -e does it: one CQ per QP for
 * sends and receives, with a completion channel; arm, sleep on the
 * channel, ack, poll.  A wait that times out tells whether the event or
 * the message was lost.
 */
static void t_cq_events(void)
{
	const char *env = getenv("VHCA_EVENT_ITERS");
	int iters = env ? atoi(env) : 20000, lost_events = 0, lost_msgs = 0;
	struct conn_opts o = default_opts;
	struct ep x, y;

	o.shared_cq = true;
	REQUIRE(pair_create(&x, &A, &o, &y, &B, &o, IBV_QPT_RC) == 0,
		"RC pair");
	for (int i = 0; i < 16; i++) {
		REQUIRE(post_recv1(x.qp, NULL, 1, &A, 0, 64) == 0, "post_recv");
		REQUIRE(post_recv1(y.qp, NULL, 1, &B, 0, 64) == 0, "post_recv");
	}
	REQUIRE(ibv_req_notify_cq(x.rcq, 0) == 0, "arm");
	REQUIRE(ibv_req_notify_cq(y.rcq, 0) == 0, "arm");
	for (int i = 0; i < iters && lost_events + lost_msgs < 3; i++) {
		struct ep *snd = i & 1 ? &y : &x, *rcv = i & 1 ? &x : &y;
		bool got_recv = false, got_send = false;

		REQUIRE(post_send1(snd, IBV_WR_SEND, 2, 0, 1, 0, 0,
				   IBV_SEND_SIGNALED) == 0, "post_send");
		/* the receiver sleeps until its receive completes; the
		 * sender reaps its send completion the same way */
		for (int side = 0; side < 2; side++) {
			struct ep *e = side ? snd : rcv;
			bool *flag = side ? &got_send : &got_recv;

			while (!*flag) {
				struct ibv_cq *cq;
				void *cq_ctx;
				struct ibv_wc wc;

				if (!fd_readable(e->ch->fd, 2000)) {
					int n = ibv_poll_cq(e->rcq, 1, &wc);

					if (n > 0) {
						lost_events++;
						fprintf(stderr, "iteration %d: "
							"completion (%s, opcode %d) "
							"in the CQ but no event\n",
							i, ibv_wc_status_str(wc.status),
							wc.opcode);
					} else {
						lost_msgs++;
						fprintf(stderr, "iteration %d: no "
							"event and the CQ is empty "
							"(%s side)\n", i,
							side ? "sender" : "receiver");
					}
					break;
				}
				REQUIRE(ibv_get_cq_event(e->ch, &cq, &cq_ctx) ==
					0, "get_cq_event");
				ibv_ack_cq_events(cq, 1);
				REQUIRE(ibv_req_notify_cq(cq, 0) == 0, "re-arm");
				int n;
				while ((n = ibv_poll_cq(cq, 1, &wc)) > 0) {
					CHECK(wc.status == IBV_WC_SUCCESS,
					      "status %s",
					      ibv_wc_status_str(wc.status));
					if (wc.opcode == IBV_WC_RECV) {
						if (e == rcv)
							got_recv = true;
						REQUIRE(post_recv1(e->qp, NULL, 1,
							e->s, 0, 64) == 0,
							"post_recv");
					} else if (e == snd) {
						got_send = true;
					}
				}
			}
			if (!*flag)
				break;
		}
		if (!got_recv || !got_send)
			break;
	}
	CHECK(lost_events == 0, "%d lost completion events", lost_events);
	CHECK(lost_msgs == 0, "%d waits with neither event nor completion",
	      lost_msgs);
	ep_destroy(&x);
	ep_destroy(&y);
}

/* The same with each side in its own thread, as two processes would be:
 * both sleep on their channels at once, the device must wake the right
 * one every time. */
struct ev_side {
	struct ep *e;
	int iters, lost_events, lost_msgs, errors;
	bool starts;
};

static void *ev_thread(void *p)
{
	struct ev_side *v = p;
	struct ep *e = v->e;
	int sent = 0, received = 0, send_done = 0;

	if (v->starts) {
		if (post_send1(e, IBV_WR_SEND, 2, 0, 1, 0, 0, IBV_SEND_SIGNALED))
			v->errors++;
		sent++;
	}
	while ((received < v->iters || send_done < sent) && !v->errors) {
		struct ibv_cq *cq;
		void *cq_ctx;
		struct ibv_wc wc;
		int n;

		if (!fd_readable(e->ch->fd, 3000)) {
			if (ibv_poll_cq(e->rcq, 1, &wc) > 0) {
				v->lost_events++;
				fprintf(stderr, "%s: after %d receives: a completion"
					" in the CQ but no event\n", e->s->name,
					received);
			} else {
				v->lost_msgs++;
				fprintf(stderr, "%s: after %d receives, %d/%d "
					"sends done: no event, CQ empty\n",
					e->s->name, received, send_done, sent);
			}
			return NULL;
		}
		if (ibv_get_cq_event(e->ch, &cq, &cq_ctx)) {
			v->errors++;
			break;
		}
		ibv_ack_cq_events(cq, 1);
		if (ibv_req_notify_cq(cq, 0))
			v->errors++;
		while ((n = ibv_poll_cq(cq, 1, &wc)) > 0) {
			if (wc.status != IBV_WC_SUCCESS) {
				v->errors++;
				break;
			}
			if (wc.opcode == IBV_WC_RECV) {
				received++;
				if (post_recv1(e->qp, NULL, 1, e->s, 0, 64))
					v->errors++;
				bool reply = v->starts ? received < v->iters :
							 received <= v->iters;
				if (reply) {
					if (post_send1(e, IBV_WR_SEND, 2, 0, 1, 0,
						       0, IBV_SEND_SIGNALED))
						v->errors++;
					sent++;
				}
			} else {
				send_done++;
			}
		}
	}
	return NULL;
}

static void t_cq_events_mt(void)
{
	const char *env = getenv("VHCA_EVENT_ITERS");
	int iters = env ? atoi(env) : 50000;
	struct conn_opts o = default_opts;
	struct ep x, y;
	struct ev_side vx, vy;
	pthread_t tx, ty;

	o.shared_cq = true;
	REQUIRE(pair_create(&x, &A, &o, &y, &B, &o, IBV_QPT_RC) == 0,
		"RC pair");
	for (int i = 0; i < 16; i++) {
		REQUIRE(post_recv1(x.qp, NULL, 1, &A, 0, 64) == 0, "post_recv");
		REQUIRE(post_recv1(y.qp, NULL, 1, &B, 0, 64) == 0, "post_recv");
	}
	REQUIRE(ibv_req_notify_cq(x.rcq, 0) == 0, "arm");
	REQUIRE(ibv_req_notify_cq(y.rcq, 0) == 0, "arm");
	vx = (struct ev_side){ .e = &x, .iters = iters, .starts = true };
	vy = (struct ev_side){ .e = &y, .iters = iters };
	REQUIRE(pthread_create(&ty, NULL, ev_thread, &vy) == 0, "thread");
	REQUIRE(pthread_create(&tx, NULL, ev_thread, &vx) == 0, "thread");
	pthread_join(tx, NULL);
	pthread_join(ty, NULL);
	CHECK(vx.lost_events + vy.lost_events == 0,
	      "lost completion events (%d, %d)", vx.lost_events, vy.lost_events);
	CHECK(vx.lost_msgs + vy.lost_msgs == 0,
	      "stalls with neither event nor completion (%d, %d)",
	      vx.lost_msgs, vy.lost_msgs);
	CHECK(vx.errors + vy.errors == 0, "errors (%d, %d)", vx.errors,
	      vy.errors);
	ep_destroy(&x);
	ep_destroy(&y);
}

static void t_rnr_ok(void)
{
	struct conn_opts oy = default_opts;
	struct ep x, y;
	struct ibv_wc wc;

	oy.min_rnr_timer = 1; /* 0.01 ms */
	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &oy, IBV_QPT_RC) ==
		0, "RC pair");
	fill_pattern(A.buf, 3000, 31);
	REQUIRE(post_send1(&x, IBV_WR_SEND, 1, 0, 3000, 0, 0,
			   IBV_SEND_SIGNALED) == 0, "post_send");
	/* rnr_retry 7 = retry forever while no receive is posted */
	expect_empty(x.scq, 300, "send completed with no receive posted");
	REQUIRE(post_recv1(y.qp, NULL, 2, &B, 8192, 4096) == 0, "post_recv");
	expect_wc(x.scq, IBV_WC_SEND, 1, NULL, "send after the late receive");
	if (expect_wc(y.rcq, IBV_WC_RECV, 2, &wc, "late receive"))
		CHECK(wc.byte_len == 3000 && check_pattern(B.buf + 8192, 3000,
							   31) < 0,
		      "late receive data (len %u)", wc.byte_len);
	ep_destroy(&x);
	ep_destroy(&y);
}

static void t_rnr_exceeded(void)
{
	struct conn_opts ox = default_opts, oy = default_opts;
	struct ep x, y;
	struct ibv_wc wc;
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qia;

	ox.rnr_retry = 1;
	oy.min_rnr_timer = 1;
	REQUIRE(pair_create(&x, &A, &ox, &y, &B, &oy, IBV_QPT_RC) == 0,
		"RC pair");
	uint64_t t0 = now_ms();
	REQUIRE(post_send1(&x, IBV_WR_SEND, 9, 0, 100, 0, 0,
			   IBV_SEND_SIGNALED) == 0, "post_send");
	int r = poll_one(x.scq, &wc, DEFAULT_TIMEOUT_MS);
	CHECK(r == 1 && wc.status == IBV_WC_RNR_RETRY_EXC_ERR && wc.wr_id == 9,
	      "expected IBV_WC_RNR_RETRY_EXC_ERR, got %s",
	      r == 1 ? ibv_wc_status_str(wc.status) : "nothing");
	printf("  RNR retry exceeded after %" PRIu64 " ms\n", now_ms() - t0);
	CHECK(ibv_query_qp(x.qp, &qa, IBV_QP_STATE, &qia) == 0 &&
	      qa.qp_state == IBV_QPS_ERR, "requester QP state %d, not ERR",
	      qa.qp_state);
	ep_destroy(&x);
	ep_destroy(&y);
}

/* The responder is gone (destroyed, or moved to RESET): retry exceeded. */
static void retry_exceeded(bool destroy)
{
	struct conn_opts ox = default_opts;
	struct ep x, y;
	struct ibv_wc wc;

	ox.timeout = 10;      /* 4.096 us * 2^10 = 4.2 ms */
	ox.retry_cnt = 2;
	REQUIRE(pair_create(&x, &A, &ox, &y, &B, &default_opts, IBV_QPT_RC) ==
		0, "RC pair");
	if (destroy) {
		CHECK(ibv_destroy_qp(y.qp) == 0, "destroy responder");
		y.qp = NULL;
	} else {
		struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

		CHECK(ibv_modify_qp(y.qp, &a, IBV_QP_STATE) == 0,
		      "responder to RESET");
	}
	uint64_t t0 = now_ms();
	REQUIRE(post_send1(&x, IBV_WR_RDMA_WRITE, 77, 0, 64,
			   (uintptr_t)B.buf, B.mr->rkey, IBV_SEND_SIGNALED) == 0,
		"post_send");
	int r = poll_one(x.scq, &wc, 10000);
	uint64_t dt = now_ms() - t0;
	CHECK(r == 1 && wc.status == IBV_WC_RETRY_EXC_ERR && wc.wr_id == 77,
	      "expected IBV_WC_RETRY_EXC_ERR, got %s",
	      r == 1 ? ibv_wc_status_str(wc.status) : "nothing in 10 s");
	printf("  retry exceeded after %" PRIu64 " ms\n", dt);
	CHECK(dt < 2000, "retry exceeded took %" PRIu64 " ms (budget ~13 ms)",
	      dt);
	ep_destroy(&x);
	ep_destroy(&y);
}

static void t_retry_destroyed(void) { retry_exceeded(true); }
static void t_retry_reset(void) { retry_exceeded(false); }

static void t_rem_access(void)
{
	struct ep x, y;
	struct ibv_wc wc, wcs[16];
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qia;

	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &default_opts,
			    IBV_QPT_RC) == 0, "RC pair");
	for (int i = 0; i < 5; i++)
		REQUIRE(post_recv1(x.qp, NULL, 500 + (uint64_t)i, &A,
				   4096 * (size_t)i, 4096) == 0, "post_recv");
	for (int i = 0; i < 3; i++)
		REQUIRE(post_recv1(y.qp, NULL, 600 + (uint64_t)i, &B,
				   4096 * (size_t)i, 4096) == 0, "post_recv");
	memset(B.buf, 0x11, 4096);
	REQUIRE(post_send1(&x, IBV_WR_RDMA_WRITE, 1, 0, 64, (uintptr_t)B.buf,
			   B.mr->rkey ^ 0x5a5a00, IBV_SEND_SIGNALED) == 0,
		"post_send");
	int r = poll_one(x.scq, &wc, DEFAULT_TIMEOUT_MS);
	CHECK(r == 1 && wc.status == IBV_WC_REM_ACCESS_ERR && wc.wr_id == 1,
	      "bad rkey: expected IBV_WC_REM_ACCESS_ERR, got %s",
	      r == 1 ? ibv_wc_status_str(wc.status) : "nothing");
	CHECK(B.buf[0] == 0x11, "a write with a bad rkey changed memory");

	/* The requester QP is in error: each new WR flushes, one for one. */
	for (int i = 0; i < 10; i++)
		CHECK(post_send1(&x, IBV_WR_SEND, 10 + (uint64_t)i, 0, 8, 0, 0,
				 IBV_SEND_SIGNALED) == 0,
		      "post_send on a QP in error must be accepted: %s",
		      strerror(errno));
	int got = poll_n(x.scq, wcs, 10, DEFAULT_TIMEOUT_MS);
	CHECK(got == 10, "%d flush completions, expected 10", got);
	for (int k = 0; k < got; k++)
		CHECK(wcs[k].status == IBV_WC_WR_FLUSH_ERR &&
		      wcs[k].wr_id == 10 + (uint64_t)k,
		      "flush %d: %s wr_id %" PRIu64, k,
		      ibv_wc_status_str(wcs[k].status), wcs[k].wr_id);
	expect_empty(x.scq, 100, "extra completion after flushes");
	/* and its receive queue flushes too */
	got = poll_n(x.rcq, wcs, 5, DEFAULT_TIMEOUT_MS);
	CHECK(got == 5, "%d receive flushes, expected 5", got);
	for (int k = 0; k < got; k++)
		CHECK(wcs[k].status == IBV_WC_WR_FLUSH_ERR &&
		      wcs[k].wr_id == 500 + (uint64_t)k,
		      "recv flush %d: %s wr_id %" PRIu64, k,
		      ibv_wc_status_str(wcs[k].status), wcs[k].wr_id);
	/* a receive posted now flushes as well */
	CHECK(post_recv1(x.qp, NULL, 700, &A, 0, 64) == 0, "post_recv in ERR");
	got = poll_n(x.rcq, wcs, 1, DEFAULT_TIMEOUT_MS);
	CHECK(got == 1 && wcs[0].status == IBV_WC_WR_FLUSH_ERR &&
	      wcs[0].wr_id == 700, "late receive flush");
	CHECK(ibv_query_qp(x.qp, &qa, IBV_QP_STATE, &qia) == 0 &&
	      qa.qp_state == IBV_QPS_ERR, "requester state %d", qa.qp_state);
	/*
	 * The responder: a class C error takes it to the error state with
	 * the local access violation work queue error (IBTA 11.6.3).
	 */
	CHECK(ibv_query_qp(y.qp, &qa, IBV_QP_STATE, &qia) == 0 &&
	      qa.qp_state == IBV_QPS_ERR,
	      "responder state %d after the access error", qa.qp_state);
	CHECK(wait_async(B.ctx, IBV_EVENT_QP_ACCESS_ERR, y.qp, 2000),
	      "no IBV_EVENT_QP_ACCESS_ERR for the responder QP");

	/* Recovery: RESET -> INIT -> RTR -> RTS works again. */
	struct ibv_qp_attr ra = { .qp_state = IBV_QPS_RESET };
	CHECK(ibv_modify_qp(x.qp, &ra, IBV_QP_STATE) == 0, "to RESET");
	ep_destroy(&x);
	ep_destroy(&y);
}

static void t_local_errors(void)
{
	struct ep x, y;
	struct ibv_wc wc;
	struct ibv_send_wr wr;
	struct ibv_sge sge;

	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &default_opts,
			    IBV_QPT_RC) == 0, "RC pair");
	/* Bad lkey: local protection error. */
	sge = (struct ibv_sge){ (uintptr_t)A.buf, 64, A.mr->lkey ^ 0x777700 };
	wr = (struct ibv_send_wr){ .wr_id = 1, .sg_list = &sge, .num_sge = 1,
				   .opcode = IBV_WR_RDMA_WRITE,
				   .send_flags = IBV_SEND_SIGNALED };
	wr.wr.rdma.remote_addr = (uintptr_t)B.buf;
	wr.wr.rdma.rkey = B.mr->rkey;
	struct ibv_send_wr *bad;
	if (ibv_post_send(x.qp, &wr, &bad) == 0) {
		int r = poll_one(x.scq, &wc, DEFAULT_TIMEOUT_MS);
		CHECK(r == 1 && wc.status == IBV_WC_LOC_PROT_ERR,
		      "bad lkey: expected IBV_WC_LOC_PROT_ERR, got %s",
		      r == 1 ? ibv_wc_status_str(wc.status) : "nothing");
	}
	ep_destroy(&x);
	ep_destroy(&y);

	/* An SGE outside its MR: local protection error too. */
	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &default_opts,
			    IBV_QPT_RC) == 0, "RC pair");
	sge = (struct ibv_sge){ (uintptr_t)A.buf + BUF_SIZE - 8, 64, A.mr->lkey };
	wr.wr_id = 2;
	if (ibv_post_send(x.qp, &wr, &bad) == 0) {
		int r = poll_one(x.scq, &wc, DEFAULT_TIMEOUT_MS);
		CHECK(r == 1 && wc.status == IBV_WC_LOC_PROT_ERR,
		      "SGE past its MR: expected IBV_WC_LOC_PROT_ERR, got %s",
		      r == 1 ? ibv_wc_status_str(wc.status) : "nothing");
	}
	/* A receive buffer too small for the message: local length error. */
	ep_destroy(&x);
	ep_destroy(&y);
	REQUIRE(pair_create(&x, &A, &default_opts, &y, &B, &default_opts,
			    IBV_QPT_RC) == 0, "RC pair");
	REQUIRE(post_recv1(y.qp, NULL, 3, &B, 0, 16) == 0, "post_recv");
	REQUIRE(post_send1(&x, IBV_WR_SEND, 4, 0, 100, 0, 0,
			   IBV_SEND_SIGNALED) == 0, "post_send");
	int r = poll_one(y.rcq, &wc, DEFAULT_TIMEOUT_MS);
	CHECK(r == 1 && wc.status == IBV_WC_LOC_LEN_ERR && wc.wr_id == 3,
	      "short receive: expected IBV_WC_LOC_LEN_ERR, got %s",
	      r == 1 ? ibv_wc_status_str(wc.status) : "nothing");
	r = poll_one(x.scq, &wc, DEFAULT_TIMEOUT_MS);
	CHECK(r == 1 && wc.status == IBV_WC_REM_INV_REQ_ERR,
	      "sender of a too-long message: expected IBV_WC_REM_INV_REQ_ERR, "
	      "got %s", r == 1 ? ibv_wc_status_str(wc.status) : "nothing");
	ep_destroy(&x);
	ep_destroy(&y);
}

/* ---- concurrent atomics --------------------------------------------- */

struct faa_arg {
	struct ep *x;
	uint64_t raddr;
	uint32_t rkey;
	int n, id;
	uint64_t *olds;
	int errors;
};

static void *faa_thread(void *p)
{
	struct faa_arg *a = p;
	int window = 8, posted = 0, done = 0;
	/* each thread's result slots: 8 bytes per outstanding WR */
	size_t rbase = (size_t)a->id * 4096 + 8192;

	while (done < a->n) {
		while (posted < a->n && posted - done < window) {
			size_t slot = rbase + 8 * (size_t)(posted % window);

			if (post_atomic(a->x, IBV_WR_ATOMIC_FETCH_AND_ADD,
					(uint64_t)posted, slot, a->raddr,
					a->rkey, 1, 0)) {
				a->errors++;
				return NULL;
			}
			posted++;
		}
		struct ibv_wc wc;
		if (poll_one(a->x->scq, &wc, DEFAULT_TIMEOUT_MS) != 1 ||
		    wc.status != IBV_WC_SUCCESS ||
		    wc.wr_id != (uint64_t)done) {
			a->errors++;
			return NULL;
		}
		a->olds[done] = *(volatile uint64_t *)(a->x->s->buf + rbase +
						       8 * (size_t)(done % window));
		done++;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void t_atomic_concurrent(void)
{
	const char *env = getenv("VHCA_ATOMIC_ITERS");
	int n = env ? atoi(env) : 5000;
	struct ep x1, y1, x2, y2;
	volatile uint64_t *counter = (volatile uint64_t *)(B.buf + 3 * 4096);
	struct faa_arg args[2];
	pthread_t th[2];
	uint64_t *all = calloc(2 * (size_t)n, sizeof(*all));

	REQUIRE(all && n > 0, "alloc");
	REQUIRE(pair_create(&x1, &A, &default_opts, &y1, &B, &default_opts,
			    IBV_QPT_RC) == 0, "pair 1");
	REQUIRE(pair_create(&x2, &A, &default_opts, &y2, &B, &default_opts,
			    IBV_QPT_RC) == 0, "pair 2");
	*counter = 0;
	for (int t = 0; t < 2; t++) {
		args[t] = (struct faa_arg){ .x = t ? &x2 : &x1,
					    .raddr = (uintptr_t)counter,
					    .rkey = B.mr->rkey, .n = n, .id = t,
					    .olds = all + (size_t)t * n };
		REQUIRE(pthread_create(&th[t], NULL, faa_thread, &args[t]) == 0,
			"pthread_create");
	}
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	CHECK(args[0].errors == 0 && args[1].errors == 0,
	      "fetch_add threads failed (%d, %d)", args[0].errors,
	      args[1].errors);
	CHECK(*counter == 2 * (uint64_t)n, "counter %" PRIu64 ", expected %d",
	      *counter, 2 * n);
	/* every old value 0..2n-1 returned exactly once: truly atomic */
	if (!args[0].errors && !args[1].errors) {
		qsort(all, 2 * (size_t)n, sizeof(*all), cmp_u64);
		int dup = 0;
		for (int i = 0; i < 2 * n; i++)
			if (all[i] != (uint64_t)i)
				dup++;
		CHECK(dup == 0, "%d fetched values out of 0..%d (lost or "
		      "duplicated updates)", dup, 2 * n - 1);
	}
	free(all);
	ep_destroy(&x1);
	ep_destroy(&y1);
	ep_destroy(&x2);
	ep_destroy(&y2);
}

/* ---- QP state machine and P_Keys --------------------------------------- */

static void t_modify_illegal(void)
{
	struct ep x;
	struct ibv_qp_attr a;
	int r;

	REQUIRE(ep_create(&x, &A, IBV_QPT_RC, &default_opts) == 0, "create");

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = 1;
	a.ah_attr.dlid = B.port.lid;
	a.ah_attr.port_num = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 1;
	r = ibv_modify_qp(x.qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
	CHECK(r == EINVAL, "RESET -> RTR: %d (%s), expected EINVAL", r,
	      strerror(r));

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	r = ibv_modify_qp(x.qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
	CHECK(r == EINVAL, "RESET -> RTS: %d, expected EINVAL", r);

	/* INIT without its required attributes */
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	r = ibv_modify_qp(x.qp, &a, IBV_QP_STATE);
	CHECK(r == EINVAL, "RESET -> INIT without port/pkey/access: %d", r);

	/* an attribute not allowed in this transition */
	a.pkey_index = 0;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
	a.sq_psn = 5;
	r = ibv_modify_qp(x.qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS | IBV_QP_SQ_PSN);
	CHECK(r == EINVAL, "RESET -> INIT with SQ_PSN: %d, expected EINVAL", r);

	/* a bad port */
	a.port_num = 2;
	r = ibv_modify_qp(x.qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	CHECK(r == EINVAL, "INIT on port 2: %d, expected EINVAL", r);

	r = qp_to_init(x.qp, IBV_QPT_RC, 0);
	CHECK(r == 0, "RESET -> INIT: %s", strerror(r));

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	r = ibv_modify_qp(x.qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
			  IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			  IBV_QP_MAX_QP_RD_ATOMIC);
	CHECK(r == EINVAL, "INIT -> RTS: %d, expected EINVAL", r);

	/* RTR without DEST_QPN */
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.ah_attr.dlid = B.port.lid;
	a.ah_attr.port_num = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 1;
	r = ibv_modify_qp(x.qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			  IBV_QP_MIN_RNR_TIMER);
	CHECK(r == EINVAL, "INIT -> RTR without DEST_QPN: %d", r);

	/* Each failure changed nothing: the QP is still in INIT. */
	struct ibv_qp_init_attr qia;
	CHECK(ibv_query_qp(x.qp, &a, IBV_QP_STATE, &qia) == 0 &&
	      a.qp_state == IBV_QPS_INIT, "state after failures: %d",
	      a.qp_state);

	/* ERR is reachable from anywhere, RESET from ERR. */
	a.qp_state = IBV_QPS_ERR;
	CHECK(ibv_modify_qp(x.qp, &a, IBV_QP_STATE) == 0, "INIT -> ERR");
	a.qp_state = IBV_QPS_RTS;
	r = ibv_modify_qp(x.qp, &a, IBV_QP_STATE);
	CHECK(r == EINVAL, "ERR -> RTS: %d, expected EINVAL", r);
	a.qp_state = IBV_QPS_RESET;
	CHECK(ibv_modify_qp(x.qp, &a, IBV_QP_STATE) == 0, "ERR -> RESET");
	ep_destroy(&x);
}

static void t_pkey(void)
{
	struct ep x;
	int empty = -1, r;
	__be16 pk;

	REQUIRE(ep_create(&x, &A, IBV_QPT_RC, &default_opts) == 0, "create");
	for (int i = 0; i < A.dev.max_pkeys && i < 128; i++)
		if (ibv_query_pkey(A.ctx, 1, i, &pk) == 0 &&
		    (be16toh(pk) & 0x7fff) == 0) {
			empty = i;
			break;
		}
	CHECK(empty > 0, "no empty P_Key entry (max_pkeys %u)",
	      A.dev.max_pkeys);
	if (empty > 0) {
		r = qp_to_init(x.qp, IBV_QPT_RC, (uint16_t)empty);
		CHECK(r != 0, "INIT with pkey_index %d (an empty entry) accepted",
		      empty);
		printf("  pkey_index %d (empty): %s\n", empty, strerror(r));
	}
	r = qp_to_init(x.qp, IBV_QPT_RC, A.dev.max_pkeys);
	CHECK(r == EINVAL, "pkey_index %u (past the table): %d",
	      A.dev.max_pkeys, r);
	r = qp_to_init(x.qp, IBV_QPT_RC, 0);
	CHECK(r == 0, "pkey_index 0: %s", strerror(r));
	ep_destroy(&x);

	/* UD QP too */
	REQUIRE(ep_create(&x, &A, IBV_QPT_UD, &default_opts) == 0, "create");
	if (empty > 0)
		CHECK(qp_to_init(x.qp, IBV_QPT_UD, (uint16_t)empty) != 0,
		      "UD INIT with an empty P_Key entry accepted");
	ep_destroy(&x);
}

/* Many QPs at once, each a short verified exchange (resource scaling). */
static void t_many_qps(void)
{
	enum { N = 64 };
	static struct ep xs[N], ys[N];
	struct ibv_wc wc;
	int created = 0;

	for (int i = 0; i < N; i++, created++)
		if (pair_create(&xs[i], &A, &default_opts, &ys[i], &B,
				&default_opts, IBV_QPT_RC))
			break;
	CHECK(created == N, "created %d of %d QP pairs", created, N);
	for (int i = 0; i < created; i++) {
		A.buf[i * 64] = (unsigned char)i;
		REQUIRE(post_recv1(ys[i].qp, NULL, (uint64_t)i, &B,
				   (size_t)i * 64, 64) == 0, "post_recv");
	}
	for (int i = 0; i < created; i++)
		REQUIRE(post_send1(&xs[i], IBV_WR_SEND, (uint64_t)i,
				   (size_t)i * 64, 64, 0, 0,
				   IBV_SEND_SIGNALED) == 0, "post_send");
	for (int i = 0; i < created; i++) {
		expect_wc(xs[i].scq, IBV_WC_SEND, (uint64_t)i, NULL, "many send");
		if (expect_wc(ys[i].rcq, IBV_WC_RECV, (uint64_t)i, &wc,
			      "many recv"))
			CHECK(B.buf[i * 64] == (unsigned char)i, "qp %d data", i);
	}
	for (int i = 0; i < created; i++) {
		ep_destroy(&xs[i]);
		ep_destroy(&ys[i]);
	}
	if (created < N) {
		ep_destroy(&xs[created]);
		ep_destroy(&ys[created]);
	}
}

static const struct subtest tests[] = {
	{ "rc_ops", t_rc_ops },
	{ "uc_ops", t_uc_ops },
	{ "ud", t_ud },
	{ "srq", t_srq },
	{ "unsignaled", t_unsignaled },
	{ "solicited", t_solicited },
	{ "cq_events", t_cq_events },
	{ "cq_events_mt", t_cq_events_mt },
	{ "rnr_ok", t_rnr_ok },
	{ "rnr_exceeded", t_rnr_exceeded },
	{ "retry_destroyed", t_retry_destroyed },
	{ "retry_reset", t_retry_reset },
	{ "rem_access_flush", t_rem_access },
	{ "local_errors", t_local_errors },
	{ "atomic_concurrent", t_atomic_concurrent },
	{ "modify_illegal", t_modify_illegal },
	{ "pkey", t_pkey },
	{ "many_qps", t_many_qps },
};

/* ---- two-process stream ----------------------------------------------- */

struct peer_info {
	uint32_t lid, qpn, rkey;
	uint64_t addr;
};

#define STREAM_MSG 65536u
#define STREAM_RECVS 32
#define WRITE_AREA (2u << 20)      /* a writes into b's [0, 2 MiB) */
#define RECV_AREA (4u << 20)       /* receive slots */
#define SCRATCH_OFF (7u << 20)     /* probes land here */

struct msg_hdr {
	uint32_t magic, seq, len, kind; /* kind 0 data, 1 echo, 2 done */
	uint64_t woff, wlen, wseed;
};

#define MSG_MAGIC 0x76686361u

static int write_file(const char *path, const char *text)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fputs(text, f);
	if (fclose(f))
		return -1;
	return rename(tmp, path);
}

static int wait_file(const char *path, char *buf, size_t size, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;

	while (now_ms() < deadline) {
		FILE *f = fopen(path, "r");

		if (f) {
			size_t n = fread(buf, 1, size - 1, f);

			fclose(f);
			buf[n] = 0;
			return 0;
		}
		usleep(10000);
	}
	return -1;
}

static int peer_main(int argc, char **argv)
{
	const char *role, *dev, *dir;
	long iters;
	bool expect_death, active;
	struct side S;
	struct ep e;
	struct conn_opts o = default_opts;
	char path[4096], text[512];
	struct peer_info me, them;
	uint64_t verified = 0, badmsgs = 0, last_progress;

	if (argc < 6) {
		fprintf(stderr, "usage: datapath_test peer a|b DEV DIR ITERS "
			"[expect-death]\n");
		return 2;
	}
	role = argv[2];
	dev = argv[3];
	dir = argv[4];
	iters = atol(argv[5]);
	expect_death = argc > 6 && !strcmp(argv[6], "expect-death");
	active = !strcmp(role, "a");
	setvbuf(stdout, NULL, _IOLBF, 0);
	rng_state ^= (uint64_t)getpid() << 20;

	/* 16.8 ms ACK timeout, 7 retries: the peer's death is known in
	 * about 8 * 16.8 ms = 134 ms after the last packet */
	o.timeout = 12;
	if (side_open(&S, dev) || ep_create(&e, &S, IBV_QPT_RC, &o))
		return 1;
	if (qp_to_init(e.qp, IBV_QPT_RC, 0))
		return 1;
	for (int i = 0; i < STREAM_RECVS; i++)
		if (post_recv1(e.qp, NULL, (uint64_t)i, &S,
			       RECV_AREA + (size_t)i * STREAM_MSG, STREAM_MSG))
			return 1;
	me = (struct peer_info){ S.port.lid, e.qp->qp_num, S.mr->rkey,
				 (uintptr_t)S.buf };
	snprintf(text, sizeof(text), "%u %u %u %" PRIu64 "\n", me.lid, me.qpn,
		 me.rkey, me.addr);
	snprintf(path, sizeof(path), "%s/%s.info", dir, role);
	if (write_file(path, text))
		return 1;
	snprintf(path, sizeof(path), "%s/%s.info", dir, active ? "b" : "a");
	if (wait_file(path, text, sizeof(text), 60000) ||
	    sscanf(text, "%u %u %u %" SCNu64, &them.lid, &them.qpn, &them.rkey,
		   &them.addr) != 4) {
		fprintf(stderr, "peer %s: no peer info in %s\n", role, path);
		return 1;
	}
	if (qp_to_rtr(&e, (uint16_t)them.lid, them.qpn, &o) ||
	    qp_to_rts(&e, &o)) {
		fprintf(stderr, "peer %s: connect failed\n", role);
		return 1;
	}
	/* both sides at RTS with receives posted before any traffic */
	snprintf(path, sizeof(path), "%s/%s.rts", dir, role);
	write_file(path, "rts\n");
	snprintf(path, sizeof(path), "%s/%s.rts", dir, active ? "b" : "a");
	if (wait_file(path, text, sizeof(text), 60000)) {
		fprintf(stderr, "peer %s: peer never reached RTS\n", role);
		return 1;
	}
	printf("peer %s: streaming (lid %u qpn %u -> lid %u qpn %u)\n", role,
	       me.lid, me.qpn, them.lid, them.qpn);

	uint64_t seq = 0, probes = 0, wr_seq = 1000000;
	bool done = false, waiting_echo = false;
	int outstanding_sends = 0;
	last_progress = now_ms();
	uint64_t last_probe = last_progress;

	while (!done) {
		struct ibv_wc wc;

		/* a: one message in flight at a time */
		if (active && !waiting_echo && !outstanding_sends) {
			bool finish = iters > 0 && seq >= (uint64_t)iters;
			struct msg_hdr *h = (struct msg_hdr *)(S.buf + (1u << 20));
			uint32_t plen = finish ? 0 : rnd_range(0, 30000);

			h->magic = MSG_MAGIC;
			h->seq = (uint32_t)seq;
			h->kind = finish ? 2 : 0;
			h->len = plen;
			h->wlen = finish ? 0 : rnd_range(1, STREAM_MSG);
			h->woff = rnd_range(0, WRITE_AREA - (uint32_t)h->wlen);
			h->wseed = seq * 7919 + 13;
			fill_pattern(h + 1, plen, seq);
			if (h->wlen) {
				fill_pattern(S.buf + (3u << 20), h->wlen,
					     h->wseed);
				if (post_send1(&e, IBV_WR_RDMA_WRITE, wr_seq++,
					       3u << 20, (uint32_t)h->wlen,
					       them.addr + h->woff, them.rkey,
					       0)) {
					fprintf(stderr, "post write failed\n");
					return 1;
				}
			}
			if (post_send1(&e, IBV_WR_SEND, seq, 1u << 20,
				       (uint32_t)sizeof(*h) + plen, 0, 0,
				       IBV_SEND_SIGNALED)) {
				fprintf(stderr, "post send failed\n");
				return 1;
			}
			outstanding_sends = 1;
			waiting_echo = !finish;
			if (finish)
				done = true;
		}

		int r = poll_one(e.scq, &wc, 0);
		if (r == 0)
			r = poll_one(e.rcq, &wc, 0);
		if (r < 0) {
			fprintf(stderr, "poll_cq failed\n");
			return 1;
		}
		if (r == 1 && wc.status != IBV_WC_SUCCESS) {
			uint64_t dt = now_ms() - last_progress;

			printf("peer %s: error completion %s (wr_id %" PRIu64
			       ") %" PRIu64 " ms after the last progress, %"
			       PRIu64 " messages verified\n", role,
			       ibv_wc_status_str(wc.status), wc.wr_id, dt,
			       verified);
			if (!expect_death)
				return 1;
			bool good = wc.status == IBV_WC_RETRY_EXC_ERR ||
				    wc.status == IBV_WC_WR_FLUSH_ERR;
			/* drain: flushes for all the rest, nothing hangs */
			int flushed = 0;
			while (poll_one(e.scq, &wc, 500) == 1 ||
			       poll_one(e.rcq, &wc, 0) == 1)
				flushed += wc.status == IBV_WC_WR_FLUSH_ERR;
			printf("peer %s: %d flush completions after it\n", role,
			       flushed);
			ep_destroy(&e);
			return good && badmsgs == 0 ? 0 : 1;
		}
		if (r == 1 && !(wc.opcode & IBV_WC_RECV)) {
			if (wc.wr_id < 1000000 && outstanding_sends > 0)
				outstanding_sends--;
			last_progress = now_ms();
			continue;
		}
		if (r == 1) {
			struct msg_hdr *h = (struct msg_hdr *)(S.buf + RECV_AREA +
						wc.wr_id * STREAM_MSG);
			bool ok = wc.byte_len >= sizeof(*h) &&
				  h->magic == MSG_MAGIC &&
				  wc.byte_len == sizeof(*h) + h->len &&
				  check_pattern(h + 1, h->len, h->seq) < 0;

			last_progress = now_ms();
			if (!active && ok && h->kind == 0 &&
			    (h->wlen > STREAM_MSG || h->woff > WRITE_AREA ||
			     h->woff + h->wlen > WRITE_AREA))
				ok = false;
			if (!active && ok && h->kind == 0) {
				/* the RDMA write before this send has landed */
				long bad = check_pattern(S.buf + h->woff, h->wlen,
							 h->wseed);
				if (bad >= 0) {
					fprintf(stderr, "peer b: message %u: "
						"written region differs at %ld\n",
						h->seq, bad);
					ok = false;
				}
			}
			if (!ok) {
				badmsgs++;
				fprintf(stderr, "peer %s: bad message (len %u "
					"seq %u)\n", role, wc.byte_len, h->seq);
			} else if (active) {
				if (h->kind != 1 || h->seq != seq)
					badmsgs++;
				verified++;
				seq++;
				waiting_echo = false;
			} else if (h->kind == 2) {
				done = true;
			} else {
				verified++;
				struct msg_hdr *eh = (struct msg_hdr *)(S.buf +
								(1u << 20));
				*eh = (struct msg_hdr){ .magic = MSG_MAGIC,
							.seq = h->seq,
							.kind = 1,
							.len = 16 };
				fill_pattern(eh + 1, 16, h->seq);
				if (post_send1(&e, IBV_WR_SEND, h->seq, 1u << 20,
					       sizeof(*eh) + 16, 0, 0,
					       IBV_SEND_SIGNALED))
					return 1;
				outstanding_sends++;
			}
			if (post_recv1(e.qp, NULL, wc.wr_id, &S,
				       RECV_AREA + wc.wr_id * STREAM_MSG,
				       STREAM_MSG))
				return 1;
			if (ok && h->kind != 2 && verified % 5000 == 0)
				printf("peer %s: %" PRIu64 " verified\n", role,
				       verified);
			continue;
		}
		/* idle */
		uint64_t now = now_ms();
		if (expect_death && now - last_progress > 200 &&
		    now - last_probe > 200) {
			/* a peer that vanished is found by sending to it */
			last_probe = now;
			probes++;
			if (post_send1(&e, IBV_WR_RDMA_WRITE, 2000000 + probes,
				       SCRATCH_OFF, 8, them.addr + SCRATCH_OFF,
				       them.rkey, IBV_SEND_SIGNALED))
				return 1;
		}
		if (now - last_progress > 30000 && !expect_death) {
			fprintf(stderr, "peer %s: no progress for 30 s\n", role);
			return 1;
		}
		usleep(now - last_progress > 5 ? 200 : 0);
	}
	/* a: wait for the "done" send's completion; b: its last echo */
	struct ibv_wc wc;
	while (outstanding_sends > 0) {
		if (poll_one(e.scq, &wc, DEFAULT_TIMEOUT_MS) != 1 ||
		    wc.status != IBV_WC_SUCCESS) {
			badmsgs++;
			break;
		}
		if (wc.wr_id < 1000000)
			outstanding_sends--;
	}
	printf("peer %s: %" PRIu64 " messages verified, %" PRIu64 " bad\n",
	       role, verified, badmsgs);
	if (expect_death) {
		printf("peer %s: the peer did not die\n", role);
		return 1;
	}
	return badmsgs ? 1 : 0;
}

/* ---- main ----------------------------------------------------------- */

int main(int argc, char **argv)
{
	const char *da = getenv("VHCA_DEV_A"), *db = getenv("VHCA_DEV_B");
	const char *seed = getenv("VHCA_SEED");
	int ran = 0;

	if (argc > 1 && !strcmp(argv[1], "peer"))
		return peer_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			puts(tests[i].name);
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (seed)
		rng_state = strtoull(seed, NULL, 0) | 1;
	printf("seed %" PRIu64 "\n", rng_state);
	REQUIRE(side_open(&A, da ? da : "vhca0_vf0") == 0, "open A");
	REQUIRE(side_open(&B, db ? db : "vhca0_vf1") == 0, "open B");
	printf("A %s lid %u, B %s lid %u, mtu %d\n", A.name, A.port.lid, B.name,
	       B.port.lid, A.port.active_mtu);

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		bool selected = argc < 2 || !strcmp(argv[1], "all");

		for (int k = 1; k < argc; k++)
			if (!strcmp(argv[k], tests[i].name))
				selected = true;
		if (!selected)
			continue;
		unsigned int before = test_failed;
		uint64_t t0 = now_ms();

		tests[i].fn();
		ran++;
		printf("%s: %s (%" PRIu64 " ms)\n",
		       test_failed == before ? "ok" : "FAIL", tests[i].name,
		       now_ms() - t0);
	}
	CHECK(ran > 0, "no sub-test matched");
	ibv_dereg_mr(A.mr);
	ibv_dereg_mr(B.mr);
	ibv_dealloc_pd(A.pd);
	ibv_dealloc_pd(B.pd);
	ibv_close_device(A.ctx);
	ibv_close_device(B.ctx);
	return test_report();
}
