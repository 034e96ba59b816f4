// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ibv_rereg_mr (IBTA 11.2.8.3 Reregister Memory Region) between two VFs:
 * A (vhca0_vf0) reaches an MR of B (vhca0_vf1) with RDMA WRITE and READ
 * while B changes the MR's access, range or PD.  Each change gives new
 * keys and the old ones stop working; what the MR no longer allows is a
 * remote access error; a refused change (bad flags or access, a range
 * that is not mapped, write access to read-only memory, an ODP MR)
 * changes nothing.  And the attack: B moves the MR while A's WRITEs
 * stream into it, and not a byte of a WRITE under the old key lands in
 * the new range.
 *
 * usage: mr_rereg_test [all | TEST...] | --list
 * Environment: VHCA_DEV_A / VHCA_DEV_B override the two devices.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "../common.h"
#include "verbs_helpers.h"

TEST_COUNTERS;

#define BUF_LEN (64u * 1024)
#define SQ_DEPTH 256

struct side {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	uint16_t lid;
	uint8_t *buf;		/* A: its source; B: the MR's first range */
	uint8_t *buf2;		/* B: the range the MR moves to */
	struct ibv_mr *mr;
};

static uint8_t *page_buf(void)
{
	void *p = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	REQUIRE(p != MAP_FAILED, "mmap");
	return p;
}

static void side_open(struct side *s, const char *env, const char *dflt)
{
	const char *name = getenv(env) ? getenv(env) : dflt;
	struct ibv_port_attr port;

	memset(s, 0, sizeof(*s));
	s->ctx = open_by_name(name);
	REQUIRE(s->ctx, "open %s: %s", name, strerror(errno));
	REQUIRE(!ibv_query_port(s->ctx, 1, &port), "query_port");
	s->lid = port.lid;
	s->pd = ibv_alloc_pd(s->ctx);
	s->cq = ibv_create_cq(s->ctx, 2 * SQ_DEPTH, NULL, NULL, 0);
	REQUIRE(s->pd && s->cq, "pd/cq: %s", strerror(errno));
	s->buf = page_buf();
	s->buf2 = page_buf();
}

static void side_close(struct side *s)
{
	if (s->qp)
		CHECK(!ibv_destroy_qp(s->qp), "destroy_qp");
	if (s->mr)
		CHECK(!ibv_dereg_mr(s->mr), "dereg_mr");
	CHECK(!ibv_destroy_cq(s->cq), "destroy_cq");
	CHECK(!ibv_dealloc_pd(s->pd), "dealloc_pd");
	CHECK(!ibv_close_device(s->ctx), "close_device");
	munmap(s->buf, BUF_LEN);
	munmap(s->buf2, BUF_LEN);
}

static struct ibv_qp *rc_qp(struct side *s, struct ibv_pd *pd)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.send_cq = s->cq,
		.recv_cq = s->cq,
		.cap = { .max_send_wr = SQ_DEPTH, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp *qp = ibv_create_qp(pd, &qa);

	REQUIRE(qp, "create_qp: %s", strerror(errno));
	return qp;
}

static void drain(struct ibv_cq *cq)
{
	struct ibv_wc wc;

	while (ibv_poll_cq(cq, 1, &wc) > 0)
		;
}

/*
 * A new connected pair (an error completion leaves the old one in the
 * error state), B's QP on @b_pd.
 */
static void pair(struct side *a, struct side *b, struct ibv_pd *b_pd)
{
	int ret;

	if (a->qp)
		CHECK(!ibv_destroy_qp(a->qp), "destroy_qp");
	if (b->qp)
		CHECK(!ibv_destroy_qp(b->qp), "destroy_qp");
	drain(a->cq);
	drain(b->cq);
	a->qp = rc_qp(a, a->pd);
	b->qp = rc_qp(b, b_pd);
	ret = rc_connect(a->qp, b->qp->qp_num, b->lid);
	if (!ret)
		ret = rc_connect(b->qp, a->qp->qp_num, a->lid);
	REQUIRE(!ret, "connect: %s", strerror(ret));
}

static int post_rdma(struct side *a, struct ibv_mr *lmr,
		     enum ibv_wr_opcode op, uint32_t len, uint64_t raddr,
		     uint32_t rkey, uint64_t wr_id)
{
	struct ibv_sge sge = { (uintptr_t)lmr->addr, len, lmr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = raddr, .rkey = rkey },
	}, *bad;

	return ibv_post_send(a->qp, &wr, &bad);
}

static enum ibv_wc_status wait_wc(struct ibv_cq *cq)
{
	uint64_t deadline = now_ms() + 10000;
	struct ibv_wc wc;
	int n;

	while (!(n = ibv_poll_cq(cq, 1, &wc)) && now_ms() < deadline)
		;
	REQUIRE(n == 1, "no completion in 10 s");
	return wc.status;
}

/* One RDMA operation of A on B's memory, its completion status. */
static enum ibv_wc_status rdma(struct side *a, struct ibv_mr *lmr,
			       enum ibv_wr_opcode op, uint64_t raddr,
			       uint32_t rkey, uint32_t len)
{
	REQUIRE(!post_rdma(a, lmr, op, len, raddr, rkey, 1), "post_send");
	return wait_wc(a->cq);
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t value)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != value)
			return false;
	return true;
}

#define RW (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
	    IBV_ACCESS_REMOTE_READ)

struct fixture {
	struct side a, b;
	struct ibv_mr *amr;	/* A's source buffer */
};

static void setup(struct fixture *f, int b_access)
{
	side_open(&f->a, "VHCA_DEV_A", "vhca0_vf0");
	side_open(&f->b, "VHCA_DEV_B", "vhca0_vf1");
	f->amr = ibv_reg_mr(f->a.pd, f->a.buf, BUF_LEN,
			    IBV_ACCESS_LOCAL_WRITE);
	f->b.mr = ibv_reg_mr(f->b.pd, f->b.buf, BUF_LEN, b_access);
	REQUIRE(f->amr && f->b.mr, "reg_mr: %s", strerror(errno));
	pair(&f->a, &f->b, f->b.pd);
}

static void teardown(struct fixture *f)
{
	if (f->a.qp)
		CHECK(!ibv_destroy_qp(f->a.qp), "destroy_qp");
	f->a.qp = NULL;
	CHECK(!ibv_dereg_mr(f->amr), "dereg_mr");
	side_close(&f->a);
	side_close(&f->b);
}

static void t_access(void)
{
	struct fixture f;
	uint32_t old_rkey, old_lkey;
	uint64_t at;

	setup(&f, RW);
	at = (uintptr_t)f.b.buf;
	memset(f.a.buf, 0x11, BUF_LEN);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, at, f.b.mr->rkey, 4096) ==
		      IBV_WC_SUCCESS, "WRITE before");
	CHECK(all_bytes(f.b.buf, 4096, 0x11), "the WRITE landed");
	old_rkey = f.b.mr->rkey;
	old_lkey = f.b.mr->lkey;
	CHECK(!ibv_rereg_mr(f.b.mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ),
	      "rereg access: %s", strerror(errno));
	CHECK(f.b.mr->rkey != old_rkey && f.b.mr->lkey != old_lkey,
	      "new keys %x/%x (were %x/%x)", f.b.mr->lkey, f.b.mr->rkey,
	      old_lkey, old_rkey);

	memset(f.a.buf, 0x22, BUF_LEN);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, at, f.b.mr->rkey, 4096) ==
		      IBV_WC_REM_ACCESS_ERR, "WRITE without REMOTE_WRITE");
	pair(&f.a, &f.b, f.b.pd);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, at, old_rkey, 4096) ==
		      IBV_WC_REM_ACCESS_ERR, "WRITE with the old rkey");
	CHECK(all_bytes(f.b.buf, 4096, 0x11), "neither WRITE landed");
	pair(&f.a, &f.b, f.b.pd);
	memset(f.a.buf, 0, BUF_LEN);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_READ, at, f.b.mr->rkey, 4096) ==
		      IBV_WC_SUCCESS, "READ with the new rkey");
	CHECK(all_bytes(f.a.buf, 4096, 0x11), "READ brought B's bytes");
	teardown(&f);
}

static void t_translation(void)
{
	struct fixture f;
	uint32_t old_rkey;

	setup(&f, RW);
	old_rkey = f.b.mr->rkey;
	CHECK(!ibv_rereg_mr(f.b.mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
			    f.b.buf2, BUF_LEN / 2, 0),
	      "rereg translation: %s", strerror(errno));
	CHECK(f.b.mr->addr == f.b.buf2 && f.b.mr->length == BUF_LEN / 2,
	      "mr addr/length");
	CHECK(f.b.mr->rkey != old_rkey, "a new rkey");

	memset(f.a.buf, 0x33, BUF_LEN);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, (uintptr_t)f.b.buf2 + 100,
		   f.b.mr->rkey, 8000) == IBV_WC_SUCCESS,
	      "WRITE into the new range");
	CHECK(all_bytes(f.b.buf2 + 100, 8000, 0x33) && !f.b.buf2[99] &&
		      !f.b.buf2[8100],
	      "exactly the WRITE's bytes in the new range");
	CHECK(all_bytes(f.b.buf, BUF_LEN, 0), "the old range untouched");
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE,
		   (uintptr_t)f.b.buf2 + BUF_LEN / 2 - 100, f.b.mr->rkey,
		   200) == IBV_WC_REM_ACCESS_ERR,
	      "WRITE across the new end");
	pair(&f.a, &f.b, f.b.pd);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, (uintptr_t)f.b.buf,
		   f.b.mr->rkey, 64) == IBV_WC_REM_ACCESS_ERR,
	      "WRITE into the old range, new rkey");
	pair(&f.a, &f.b, f.b.pd);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, (uintptr_t)f.b.buf,
		   old_rkey, 64) == IBV_WC_REM_ACCESS_ERR,
	      "WRITE into the old range, old rkey");
	CHECK(all_bytes(f.b.buf, BUF_LEN, 0), "the old range still untouched");
	teardown(&f);
}

static void t_pd(void)
{
	struct ibv_pd *pd2;
	struct fixture f;

	setup(&f, RW);
	pd2 = ibv_alloc_pd(f.b.ctx);
	REQUIRE(pd2, "alloc_pd");
	CHECK(!ibv_rereg_mr(f.b.mr, IBV_REREG_MR_CHANGE_PD, pd2, NULL, 0, 0),
	      "rereg pd: %s", strerror(errno));
	CHECK(f.b.mr->pd == pd2, "mr->pd");
	CHECK(ibv_dealloc_pd(pd2) == EBUSY, "dealloc of the MR's new PD");
	memset(f.a.buf, 0x44, BUF_LEN);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, (uintptr_t)f.b.buf,
		   f.b.mr->rkey, 4096) == IBV_WC_REM_ACCESS_ERR,
	      "WRITE through a QP of the MR's old PD");
	CHECK(all_bytes(f.b.buf, BUF_LEN, 0), "it did not land");
	pair(&f.a, &f.b, pd2);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, (uintptr_t)f.b.buf,
		   f.b.mr->rkey, 4096) == IBV_WC_SUCCESS,
	      "WRITE through a QP of its new PD");
	CHECK(all_bytes(f.b.buf, 4096, 0x44), "it landed");
	CHECK(!ibv_destroy_qp(f.b.qp), "destroy_qp");
	f.b.qp = NULL;
	CHECK(!ibv_dereg_mr(f.b.mr), "dereg_mr");
	f.b.mr = NULL;
	CHECK(!ibv_dealloc_pd(pd2), "dealloc_pd");
	teardown(&f);
}

/* A refused change: an error, and the MR as it was (keys included). */
static void refused(struct fixture *f, const char *what, int flags,
		    void *addr, size_t len, int access, int want_errno)
{
	uint32_t rkey = f->b.mr->rkey, lkey = f->b.mr->lkey;
	void *was = f->b.mr->addr;
	int ret;

	errno = 0;
	ret = ibv_rereg_mr(f->b.mr, flags, NULL, addr, len, access);
	CHECK(ret == IBV_REREG_MR_ERR_CMD && errno == want_errno,
	      "%s: %d (%s)", what, ret, strerror(errno));
	CHECK(f->b.mr->rkey == rkey && f->b.mr->lkey == lkey &&
		      f->b.mr->addr == was,
	      "%s changed the MR", what);
}

static void t_refused(void)
{
	struct fixture f;
	uint8_t *gone, *ro;
	struct ibv_mr *mr;

	setup(&f, RW);
	refused(&f, "flags 0", 0, NULL, 0, 0, EINVAL);
	CHECK(ibv_rereg_mr(f.b.mr, 8, NULL, NULL, 0, 0) ==
		      IBV_REREG_MR_ERR_INPUT, "flag 8");
	refused(&f, "REMOTE_WRITE without LOCAL_WRITE",
		IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, IBV_ACCESS_REMOTE_WRITE,
		EINVAL);
	gone = page_buf();
	munmap(gone, BUF_LEN);
	refused(&f, "an unmapped range", IBV_REREG_MR_CHANGE_TRANSLATION,
		gone, BUF_LEN, 0, EFAULT);
	memset(f.a.buf, 0x55, BUF_LEN);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, (uintptr_t)f.b.buf,
		   f.b.mr->rkey, 4096) == IBV_WC_SUCCESS,
	      "the MR still works after the refusals");
	CHECK(all_bytes(f.b.buf, 4096, 0x55), "its WRITE landed");

	/* Write access to read-only memory, as ib_umem_get() refuses it. */
	ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(ro != MAP_FAILED, "mmap");
	mr = ibv_reg_mr(f.b.pd, ro, 4096, IBV_ACCESS_REMOTE_READ);
	REQUIRE(mr, "reg_mr of read-only memory: %s", strerror(errno));
	errno = 0;
	CHECK(ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			   IBV_ACCESS_LOCAL_WRITE) == IBV_REREG_MR_ERR_CMD &&
		      errno == EFAULT,
	      "write access to read-only memory: %s", strerror(errno));
	CHECK(!ibv_dereg_mr(mr), "dereg_mr");
	munmap(ro, 4096);

	/* ODP MRs are deregistered and registered instead (docs/prm.md). */
	mr = ibv_reg_mr(f.b.pd, f.b.buf2, BUF_LEN,
			IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE);
	if (mr) {
		errno = 0;
		CHECK(ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL,
				   0, IBV_ACCESS_ON_DEMAND) ==
				      IBV_REREG_MR_ERR_CMD &&
			      errno == EOPNOTSUPP,
		      "rereg of an ODP MR: %s", strerror(errno));
		CHECK(!ibv_dereg_mr(mr), "dereg_mr");
	} else {
		CHECK(errno == EOPNOTSUPP, "ODP reg_mr: %s", strerror(errno));
	}
	errno = 0;
	CHECK(ibv_rereg_mr(f.b.mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			   IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE) ==
			      IBV_REREG_MR_ERR_CMD &&
		      errno == EOPNOTSUPP,
	      "rereg to ODP: %s", strerror(errno));
	teardown(&f);
}

/*
 * The attack: A streams 4 KiB WRITEs into B's MR under its first key;
 * once some have landed, B moves the MR to another range.  The stream
 * must end in a remote access error, and nothing may land in the new
 * range: a WRITE is checked against the MR as it is when its packets
 * arrive, never as it was when they were sent.
 */
static void t_in_flight(void)
{
	unsigned int posted = 0, done = 0, ok = 0, errors = 0;
	uint64_t deadline = now_ms() + 10000, base;
	enum ibv_wc_status first_error = IBV_WC_SUCCESS;
	bool moved = false;
	struct fixture f;
	uint32_t rkey;

	setup(&f, RW);
	rkey = f.b.mr->rkey;
	base = (uintptr_t)f.b.buf;
	memset(f.a.buf, 0x66, BUF_LEN);
	while (!errors && now_ms() < deadline) {
		struct ibv_wc wc[32];
		int n;

		while (posted - done < SQ_DEPTH &&
		       !post_rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, 4096,
				  base + (posted % 16) * 4096, rkey, posted))
			posted++;
		n = ibv_poll_cq(f.a.cq, 32, wc);
		for (int i = 0; i < n; i++, done++) {
			if (wc[i].status == IBV_WC_SUCCESS) {
				ok++;
			} else if (!errors++) {
				first_error = wc[i].status;
			}
		}
		if (!moved && ok >= 16) {
			CHECK(!ibv_rereg_mr(f.b.mr,
					    IBV_REREG_MR_CHANGE_TRANSLATION,
					    NULL, f.b.buf2, BUF_LEN, 0),
			      "rereg under traffic: %s", strerror(errno));
			moved = true;
		}
	}
	printf("  %u WRITEs completed before the move took effect, then %s\n",
	       ok, ibv_wc_status_str(first_error));
	CHECK(moved && errors, "the stream under the old key never failed");
	CHECK(first_error == IBV_WC_REM_ACCESS_ERR, "first error %s",
	      ibv_wc_status_str(first_error));
	CHECK(all_bytes(f.b.buf2, BUF_LEN, 0),
	      "a WRITE under the old key landed in the new range");
	pair(&f.a, &f.b, f.b.pd);
	memset(f.a.buf, 0x77, BUF_LEN);
	CHECK(rdma(&f.a, f.amr, IBV_WR_RDMA_WRITE, (uintptr_t)f.b.buf2,
		   f.b.mr->rkey, 4096) == IBV_WC_SUCCESS,
	      "WRITE under the new key");
	CHECK(all_bytes(f.b.buf2, 4096, 0x77), "it landed in the new range");
	teardown(&f);
}

static const struct subtest tests[] = {
	{ "access", t_access },
	{ "translation", t_translation },
	{ "pd", t_pd },
	{ "refused", t_refused },
	{ "in_flight", t_in_flight },
};

int main(int argc, char **argv)
{
	return subtests_main(tests, sizeof(tests) / sizeof(tests[0]), argc,
			     argv);
}
