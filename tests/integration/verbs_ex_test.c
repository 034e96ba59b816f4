// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The extended verbs through the public libibverbs API.  Extended CQs:
 * ibv_create_cq_ex with
 * the wc_flags vhca offers, ibv_start_poll/next_poll/end_poll and the
 * ibv_wc_read_* accessors on a real RC exchange between vhca0_vf0 (A) and
 * vhca0_vf1 (B), completion timestamps in the device clock
 * (hca_core_clock) checked against the clock the test reads around the
 * traffic, ibv_query_rt_values_ex, and the flags that must be refused.
 * ibv_create_qp_ex with IBV_QP_INIT_ATTR_CREATE_FLAGS: 0 accepted (as mlx5
 * and rxe), every flag refused with EOPNOTSUPP.  Device memory: bad
 * allocations, copies and registrations refused, RDMA WRITE/READ and SEND
 * on a zero-based DM MR between the VFs with the bytes checked, access
 * beyond it a remote access error, free_dm EBUSY while an MR uses it.
 * ODP: an MR over pages not mapped at registration, reached once they are
 * mapped and an access error while they are not; implicit ODP (the whole
 * address space); ibv_advise_mr's checks and prefetch.  RDMA ATOMIC
 * WRITE (IBTA 1.5): the 8 bytes land; misaligned, no REMOTE_WRITE, UC.
 *
 * usage: verbs_ex_test [all | TEST...] | --list
 * Environment: VHCA_DEV_A / VHCA_DEV_B override the two devices.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "../common.h"
#include "verbs_helpers.h"

TEST_COUNTERS;

#define MSGS 64
#define MSG_LEN 1000u
#define TS_FLAGS (IBV_WC_EX_WITH_COMPLETION_TIMESTAMP | \
		  IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK)

struct end {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	uint8_t *buf;
	struct ibv_cq_ex *cq;
	struct ibv_qp *qp;
	uint16_t lid;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct ibv_cq_ex *cq_ex(struct ibv_context *ctx, uint64_t wc_flags,
			       uint32_t flags)
{
	struct ibv_cq_init_attr_ex attr = {
		.cqe = 2 * MSGS,
		.wc_flags = wc_flags,
		.comp_mask = flags ? IBV_CQ_INIT_ATTR_MASK_FLAGS : 0,
		.flags = flags,
	};

	return ibv_create_cq_ex(ctx, &attr);
}

static void end_open(struct end *e, const char *env, const char *dflt,
		     uint32_t cq_flags)
{
	const char *name = getenv(env) ? getenv(env) : dflt;
	struct ibv_qp_init_attr qa = { .qp_type = IBV_QPT_RC };
	struct ibv_port_attr port;

	e->ctx = open_by_name(name);
	REQUIRE(e->ctx, "open %s: %s", name, strerror(errno));
	REQUIRE(!ibv_query_port(e->ctx, 1, &port), "query_port");
	e->lid = port.lid;
	e->pd = ibv_alloc_pd(e->ctx);
	e->buf = calloc(MSGS, MSG_LEN);
	REQUIRE(e->pd && e->buf, "pd/buffer");
	e->mr = ibv_reg_mr(e->pd, e->buf, MSGS * MSG_LEN,
			   IBV_ACCESS_LOCAL_WRITE);
	REQUIRE(e->mr, "reg_mr: %s", strerror(errno));
	e->cq = cq_ex(e->ctx, IBV_WC_STANDARD_FLAGS | TS_FLAGS, cq_flags);
	REQUIRE(e->cq, "create_cq_ex: %s", strerror(errno));
	qa.send_cq = qa.recv_cq = ibv_cq_ex_to_cq(e->cq);
	qa.cap = (struct ibv_qp_cap){ .max_send_wr = MSGS,
				      .max_recv_wr = MSGS,
				      .max_send_sge = 1,
				      .max_recv_sge = 1 };
	e->qp = ibv_create_qp(e->pd, &qa);
	REQUIRE(e->qp, "create_qp: %s", strerror(errno));
}

static void end_connect(struct end *e, const struct end *peer)
{
	int ret = rc_connect(e->qp, peer->qp->qp_num, peer->lid);

	REQUIRE(!ret, "connect: %s", strerror(ret));
}

static void end_close(struct end *e)
{
	CHECK(!ibv_destroy_qp(e->qp), "destroy_qp");
	CHECK(!ibv_destroy_cq(ibv_cq_ex_to_cq(e->cq)), "destroy_cq");
	CHECK(!ibv_dereg_mr(e->mr), "dereg_mr");
	CHECK(!ibv_dealloc_pd(e->pd), "dealloc_pd");
	CHECK(!ibv_close_device(e->ctx), "close_device");
	free(e->buf);
}

/* Collects @n completions of @cq within 5 s through the ex poll API. */
struct seen {
	enum ibv_wc_status status;
	uint64_t wr_id, ts, wall;
	enum ibv_wc_opcode opcode;
	uint32_t byte_len, qp_num, src_qp, slid;
	unsigned int wc_flags;
	__be32 imm;
};

static int poll_ex(struct ibv_cq_ex *cq, struct seen *out, int n)
{
	struct ibv_poll_cq_attr pa = { 0 };
	uint64_t deadline = now_ms() + 5000;
	int got = 0, ret;

	while (got < n && now_ms() < deadline) {
		ret = ibv_start_poll(cq, &pa);
		if (ret == ENOENT)
			continue;
		REQUIRE(ret == 0, "start_poll: %d", ret);
		do {
			struct seen *s = &out[got++];

			s->status = cq->status;
			s->wr_id = cq->wr_id;
			s->opcode = ibv_wc_read_opcode(cq);
			s->byte_len = ibv_wc_read_byte_len(cq);
			s->qp_num = ibv_wc_read_qp_num(cq);
			s->src_qp = ibv_wc_read_src_qp(cq);
			s->slid = ibv_wc_read_slid(cq);
			s->wc_flags = ibv_wc_read_wc_flags(cq);
			s->imm = s->wc_flags & IBV_WC_WITH_IMM ?
					 ibv_wc_read_imm_data(cq) : 0;
			s->ts = ibv_wc_read_completion_ts(cq);
			s->wall = ibv_wc_read_completion_wallclock_ns(cq);
			ret = got < n ? ibv_next_poll(cq) : ENOENT;
		} while (ret == 0);
		CHECK(ret == ENOENT, "next_poll: %d", ret);
		ibv_end_poll(cq);
	}
	return got;
}

/* 64 SENDs with immediate A -> B, read back through both CQs. */
static void exchange(uint32_t cq_flags)
{
	struct seen rx[MSGS], tx[MSGS];
	struct ibv_device_attr_ex dev;
	struct end a = { 0 }, b = { 0 };
	uint64_t t0, t1, w0, w1;
	int i, n;

	end_open(&a, "VHCA_DEV_A", "vhca0_vf0", cq_flags);
	end_open(&b, "VHCA_DEV_B", "vhca0_vf1", cq_flags);
	REQUIRE(!ibv_query_device_ex(a.ctx, NULL, &dev), "query_device_ex");
	CHECK(dev.hca_core_clock == 1000000, "hca_core_clock %" PRIu64 " kHz",
	      dev.hca_core_clock);
	CHECK(dev.completion_timestamp_mask == UINT64_MAX,
	      "completion_timestamp_mask 0x%" PRIx64,
	      dev.completion_timestamp_mask);
	end_connect(&a, &b);
	end_connect(&b, &a);
	for (i = 0; i < MSGS; i++) {
		struct ibv_sge sge = { (uintptr_t)b.buf + i * MSG_LEN, MSG_LEN,
				       b.mr->lkey };
		struct ibv_recv_wr wr = { .wr_id = 1000 + i, .sg_list = &sge,
					  .num_sge = 1 }, *bad;

		REQUIRE(!ibv_post_recv(b.qp, &wr, &bad), "post_recv");
	}
	for (i = 0; i < MSGS * (int)MSG_LEN; i++)
		a.buf[i] = (uint8_t)(i * 7 + i / MSG_LEN);
	t0 = clock_ns(CLOCK_MONOTONIC);
	w0 = clock_ns(CLOCK_REALTIME);
	for (i = 0; i < MSGS; i++) {
		struct ibv_sge sge = { (uintptr_t)a.buf + i * MSG_LEN,
				       MSG_LEN - (uint32_t)i, a.mr->lkey };
		struct ibv_send_wr wr = {
			.wr_id = 2000 + i, .sg_list = &sge, .num_sge = 1,
			.opcode = IBV_WR_SEND_WITH_IMM,
			.send_flags = IBV_SEND_SIGNALED,
			.imm_data = htobe32(0xabc00 + i),
		}, *bad;

		REQUIRE(!ibv_post_send(a.qp, &wr, &bad), "post_send");
	}
	n = poll_ex(b.cq, rx, MSGS);
	CHECK(n == MSGS, "B: %d of %d receive completions", n, MSGS);
	n = poll_ex(a.cq, tx, MSGS);
	CHECK(n == MSGS, "A: %d of %d send completions", n, MSGS);
	t1 = clock_ns(CLOCK_MONOTONIC);
	w1 = clock_ns(CLOCK_REALTIME);
	for (i = 0; i < MSGS; i++) {
		CHECK(rx[i].status == IBV_WC_SUCCESS &&
			      tx[i].status == IBV_WC_SUCCESS,
		      "completion %d: %s / %s", i,
		      ibv_wc_status_str(rx[i].status),
		      ibv_wc_status_str(tx[i].status));
		CHECK(rx[i].wr_id == 1000u + i && rx[i].opcode == IBV_WC_RECV &&
			      rx[i].byte_len == MSG_LEN - (uint32_t)i &&
			      rx[i].qp_num == b.qp->qp_num &&
			      rx[i].src_qp == a.qp->qp_num &&
			      rx[i].slid == a.lid,
		      "receive %d: wr_id %" PRIu64 " opcode %d len %u qpn %u "
		      "src %u slid %u", i, rx[i].wr_id, rx[i].opcode,
		      rx[i].byte_len, rx[i].qp_num, rx[i].src_qp, rx[i].slid);
		CHECK((rx[i].wc_flags & IBV_WC_WITH_IMM) &&
			      be32toh(rx[i].imm) == 0xabc00u + i,
		      "receive %d: imm 0x%x", i, be32toh(rx[i].imm));
		CHECK(!memcmp(b.buf + i * MSG_LEN, a.buf + i * MSG_LEN,
			      MSG_LEN - (uint32_t)i), "receive %d: data", i);
		CHECK(tx[i].wr_id == 2000u + i && tx[i].opcode == IBV_WC_SEND,
		      "send %d: wr_id %" PRIu64 " opcode %d", i, tx[i].wr_id,
		      tx[i].opcode);
		/* Device time is the host's monotonic clock, in order. */
		CHECK(rx[i].ts >= t0 && rx[i].ts <= t1 && tx[i].ts >= t0 &&
			      tx[i].ts <= t1,
		      "completion %d: timestamps %" PRIu64 "/%" PRIu64
		      " outside [%" PRIu64 ", %" PRIu64 "]", i, rx[i].ts,
		      tx[i].ts, t0, t1);
		CHECK(!i || (rx[i].ts >= rx[i - 1].ts && tx[i].ts >= tx[i - 1].ts),
		      "completion %d: timestamps go back", i);
		CHECK(rx[i].wall + 1000000 >= w0 && rx[i].wall <= w1 + 1000000,
		      "receive %d: wallclock %" PRIu64 " outside [%" PRIu64
		      ", %" PRIu64 "]", i, rx[i].wall, w0, w1);
	}
	end_close(&a);
	end_close(&b);
}

static void t_poll(void)
{
	exchange(0);
}

static void t_single_threaded(void)
{
	exchange(IBV_CREATE_CQ_ATTR_SINGLE_THREADED);
}

/* An empty CQ: ENOENT, and no end_poll owed (a lock left held would hang). */
static void t_empty(void)
{
	struct ibv_context *ctx = open_by_name("vhca0_vf0");
	struct ibv_poll_cq_attr pa = { 0 };
	struct ibv_cq_ex *cq;
	struct ibv_wc wc;

	REQUIRE(ctx, "open");
	cq = cq_ex(ctx, IBV_WC_EX_WITH_COMPLETION_TIMESTAMP, 0);
	REQUIRE(cq, "create_cq_ex: %s", strerror(errno));
	CHECK(ibv_start_poll(cq, &pa) == ENOENT, "start_poll on empty CQ");
	CHECK(ibv_start_poll(cq, &pa) == ENOENT, "start_poll again");
	CHECK(ibv_poll_cq(ibv_cq_ex_to_cq(cq), 1, &wc) == 0, "poll_cq");
	pa.comp_mask = 1;
	CHECK(ibv_start_poll(cq, &pa) == EINVAL, "start_poll comp_mask 1");
	CHECK(!ibv_destroy_cq(ibv_cq_ex_to_cq(cq)), "destroy_cq");
	CHECK(!ibv_close_device(ctx), "close");
}

/* What vhca cannot do is refused, not ignored. */
static void t_refused(void)
{
	struct ibv_context *ctx = open_by_name("vhca0_vf0");
	struct ibv_values_ex v = { .comp_mask = IBV_VALUES_MASK_RAW_CLOCK };
	uint64_t t0, t1, raw;
	static const struct {
		uint64_t wc_flags;
		uint32_t flags;
	} bad[] = {
		{ IBV_WC_EX_WITH_CVLAN, 0 },
		{ IBV_WC_EX_WITH_FLOW_TAG, 0 },
		{ IBV_WC_EX_WITH_TM_INFO, 0 },
		{ 0, IBV_CREATE_CQ_ATTR_IGNORE_OVERRUN },
		{ 0, 1u << 7 },
	};

	REQUIRE(ctx, "open");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ibv_cq_init_attr_ex attr = {
			.cqe = 4, .wc_flags = bad[i].wc_flags,
			.comp_mask = IBV_CQ_INIT_ATTR_MASK_FLAGS,
			.flags = bad[i].flags,
		};
		struct ibv_cq_ex *cq = ibv_create_cq_ex(ctx, &attr);

		CHECK(!cq && errno == EOPNOTSUPP,
		      "wc_flags 0x%" PRIx64 " flags 0x%x: %s", bad[i].wc_flags,
		      bad[i].flags, cq ? "created" : strerror(errno));
		if (cq)
			ibv_destroy_cq(ibv_cq_ex_to_cq(cq));
	}
	t0 = clock_ns(CLOCK_MONOTONIC);
	CHECK(ibv_query_rt_values_ex(ctx, &v) == 0, "query_rt_values_ex");
	t1 = clock_ns(CLOCK_MONOTONIC);
	raw = (uint64_t)v.raw_clock.tv_sec * 1000000000ULL +
	      (uint64_t)v.raw_clock.tv_nsec;
	CHECK(v.comp_mask == IBV_VALUES_MASK_RAW_CLOCK && raw >= t0 &&
		      raw <= t1,
	      "raw clock %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]", raw,
	      t0, t1);
	CHECK(!ibv_close_device(ctx), "close");
}

static void t_qp_create_flags(void)
{
	struct ibv_context *ctx = open_by_name("vhca0_vf0");
	static const uint32_t bad[] = {
		IBV_QP_CREATE_BLOCK_SELF_MCAST_LB, IBV_QP_CREATE_SCATTER_FCS,
		IBV_QP_CREATE_CVLAN_STRIPPING, IBV_QP_CREATE_SOURCE_QPN,
		IBV_QP_CREATE_PCI_WRITE_END_PADDING, 1u << 30,
	};
	struct ibv_cq *cq;
	struct ibv_pd *pd;

	REQUIRE(ctx, "open");
	pd = ibv_alloc_pd(ctx);
	cq = ibv_create_cq(ctx, 8, NULL, NULL, 0);
	REQUIRE(pd && cq, "pd/cq");
	for (int i = -1; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		struct ibv_qp_init_attr_ex a = {
			.qp_type = IBV_QPT_RC, .send_cq = cq, .recv_cq = cq,
			.cap = { .max_send_wr = 4, .max_recv_wr = 4,
				 .max_send_sge = 1, .max_recv_sge = 1 },
			.comp_mask = IBV_QP_INIT_ATTR_PD |
				     IBV_QP_INIT_ATTR_CREATE_FLAGS,
			.pd = pd,
			.create_flags = i < 0 ? 0 : bad[i],
		};
		struct ibv_qp *qp = ibv_create_qp_ex(ctx, &a);

		if (i < 0)
			CHECK(qp, "create_flags 0: %s", strerror(errno));
		else
			CHECK(!qp && errno == EOPNOTSUPP,
			      "create_flags 0x%x: %s", bad[i],
			      qp ? "created" : strerror(errno));
		if (qp)
			CHECK(!ibv_destroy_qp(qp), "destroy_qp");
	}
	CHECK(!ibv_destroy_cq(cq), "destroy_cq");
	CHECK(!ibv_dealloc_pd(pd), "dealloc_pd");
	CHECK(!ibv_close_device(ctx), "close");
}

/* One signalled work request on @e's QP; its completion through poll_ex. */
static enum ibv_wc_status one_wr(struct end *e, enum ibv_wr_opcode op,
				 uint64_t addr, uint32_t len, uint32_t lkey,
				 uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = { addr, len, lkey };
	struct ibv_send_wr wr = { .wr_id = 77, .sg_list = &sge, .num_sge = 1,
				  .opcode = op,
				  .send_flags = IBV_SEND_SIGNALED,
				  .wr.rdma = { raddr, rkey } }, *bad;
	struct seen s;

	REQUIRE(!ibv_post_send(e->qp, &wr, &bad), "post_send");
	REQUIRE(poll_ex(e->cq, &s, 1) == 1, "no completion");
	return s.status;
}

#define DM_LEN (64u << 10)

static void t_dm(void)
{
	struct ibv_alloc_dm_attr da = { .length = DM_LEN };
	struct ibv_device_attr_ex dev;
	struct end a = { 0 }, b = { 0 };
	uint8_t pat[DM_LEN], back[DM_LEN];
	struct ibv_mr *mr;
	struct ibv_dm *dm;
	struct seen s;

	end_open(&a, "VHCA_DEV_A", "vhca0_vf0", 0);
	end_open(&b, "VHCA_DEV_B", "vhca0_vf1", 0);
	REQUIRE(!ibv_query_device_ex(b.ctx, NULL, &dev), "query_device_ex");
	CHECK(dev.max_dm_size == 256u << 10, "max_dm_size %" PRIu64,
	      dev.max_dm_size);
	{
		struct ibv_alloc_dm_attr bad[] = {
			{ .length = 4096, .comp_mask = 1 },
			{ .length = 0 },
			{ .length = 4096, .log_align_req = 13 },
			{ .length = dev.max_dm_size + 1 },
		};
		int want[] = { EINVAL, EINVAL, EINVAL, ENOMEM };

		for (int i = 0; i < 4; i++) {
			struct ibv_dm *d = ibv_alloc_dm(b.ctx, &bad[i]);

			CHECK(!d && errno == want[i], "alloc_dm case %d: %s",
			      i, d ? "allocated" : strerror(errno));
		}
	}
	dm = ibv_alloc_dm(b.ctx, &da);
	REQUIRE(dm, "alloc_dm: %s", strerror(errno));
	for (unsigned int i = 0; i < DM_LEN; i++)
		pat[i] = (uint8_t)(i * 31 + 5);
	CHECK(!ibv_memcpy_to_dm(dm, 0, pat, DM_LEN), "memcpy_to_dm");
	CHECK(ibv_memcpy_to_dm(dm, DM_LEN - 1, pat, 2) == EINVAL,
	      "memcpy_to_dm past the end");
	CHECK(ibv_memcpy_from_dm(back, dm, UINT64_MAX, 2) == EINVAL,
	      "memcpy_from_dm offset wrapping");
	CHECK(!ibv_reg_dm_mr(b.pd, dm, 0, 4096, IBV_ACCESS_LOCAL_WRITE) &&
		      errno == EINVAL, "reg_dm_mr without ZERO_BASED");
	CHECK(!ibv_reg_dm_mr(b.pd, dm, 4096, DM_LEN,
			     IBV_ACCESS_ZERO_BASED) && errno == EINVAL,
	      "reg_dm_mr beyond the allocation");
	/* The MR covers [4 KiB, 64 KiB) of the DM, addressed from 0. */
	mr = ibv_reg_dm_mr(b.pd, dm, 4096, DM_LEN - 4096,
			   IBV_ACCESS_ZERO_BASED | IBV_ACCESS_LOCAL_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_WRITE);
	REQUIRE(mr, "reg_dm_mr: %s", strerror(errno));
	end_connect(&a, &b);
	end_connect(&b, &a);

	/* A reads what memcpy_to_dm put there. */
	memset(a.buf, 0, 8192);
	CHECK(one_wr(&a, IBV_WR_RDMA_READ, (uintptr_t)a.buf, 8192, a.mr->lkey,
		     0, mr->rkey) == IBV_WC_SUCCESS, "RDMA READ of DM");
	CHECK(!memcmp(a.buf, pat + 4096, 8192), "RDMA READ of DM: bytes");
	/* A writes at MR offset 1000; memcpy_from_dm sees it. */
	for (int i = 0; i < 3000; i++)
		a.buf[i] = (uint8_t)(i ^ 0x5a);
	CHECK(one_wr(&a, IBV_WR_RDMA_WRITE, (uintptr_t)a.buf, 3000,
		     a.mr->lkey, 1000, mr->rkey) == IBV_WC_SUCCESS,
	      "RDMA WRITE to DM");
	CHECK(!ibv_memcpy_from_dm(back, dm, 4096 + 1000, 3000) &&
		      !memcmp(back, a.buf, 3000), "RDMA WRITE to DM: bytes");
	/* B sends from its DM MR (local key, zero-based address). */
	{
		struct ibv_sge sge = { (uintptr_t)a.buf, 4096, a.mr->lkey };
		struct ibv_recv_wr rw = { .wr_id = 5, .sg_list = &sge,
					  .num_sge = 1 }, *rbad;

		REQUIRE(!ibv_post_recv(a.qp, &rw, &rbad), "post_recv");
		CHECK(one_wr(&b, IBV_WR_SEND, 8192, 4096, mr->lkey, 0, 0) ==
			      IBV_WC_SUCCESS, "SEND from DM");
		CHECK(poll_ex(a.cq, &s, 1) == 1 && s.status == IBV_WC_SUCCESS &&
			      s.byte_len == 4096 &&
			      !memcmp(a.buf, pat + 4096 + 8192, 4096),
		      "SEND from DM: received");
	}
	CHECK(ibv_free_dm(dm) == EBUSY, "free_dm with an MR on it");
	/* Past the MR's end: the responder refuses it (9.7.5.2.3). */
	CHECK(one_wr(&a, IBV_WR_RDMA_READ, (uintptr_t)a.buf, 16, a.mr->lkey,
		     DM_LEN - 4096 - 8, mr->rkey) == IBV_WC_REM_ACCESS_ERR,
	      "RDMA READ past the DM MR");
	CHECK(!ibv_dereg_mr(mr), "dereg_mr");
	CHECK(!ibv_free_dm(dm), "free_dm");
	end_close(&a);
	end_close(&b);
}

#define ODP_ACCESS (IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
		    IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE)

static void t_odp(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct ibv_device_attr_ex dev;
	struct end a = { 0 }, b = { 0 };
	struct ibv_mr *odp, *imp;
	struct ibv_sge sge;
	uint8_t *area, *later;

	end_open(&a, "VHCA_DEV_A", "vhca0_vf0", 0);
	end_open(&b, "VHCA_DEV_B", "vhca0_vf1", 0);
	REQUIRE(!ibv_query_device_ex(b.ctx, NULL, &dev), "query_device_ex");
	CHECK((dev.odp_caps.general_caps &
	       (IBV_ODP_SUPPORT | IBV_ODP_SUPPORT_IMPLICIT)) ==
		      (IBV_ODP_SUPPORT | IBV_ODP_SUPPORT_IMPLICIT),
	      "odp general caps 0x%" PRIx64, dev.odp_caps.general_caps);
	CHECK((dev.odp_caps.per_transport_caps.rc_odp_caps & 0x1f) == 0x1f,
	      "rc odp caps 0x%x", dev.odp_caps.per_transport_caps.rc_odp_caps);

	/* Three pages, the middle one not mapped at registration. */
	area = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(area != MAP_FAILED, "mmap");
	REQUIRE(!munmap(area + pg, pg), "munmap");
	CHECK(!ibv_reg_mr(b.pd, area, 3 * pg, ODP_ACCESS & ~IBV_ACCESS_ON_DEMAND)
		      && errno == EFAULT, "a plain MR over a hole: %s",
	      strerror(errno));
	odp = ibv_reg_mr(b.pd, area, 3 * pg, ODP_ACCESS);
	REQUIRE(odp, "ODP reg_mr over a hole: %s", strerror(errno));
	CHECK(!ibv_reg_mr_iova(b.pd, NULL, SIZE_MAX, 5, ODP_ACCESS) &&
		      errno == EINVAL, "implicit ODP at iova 5");
	imp = ibv_reg_mr(b.pd, NULL, SIZE_MAX, ODP_ACCESS);
	REQUIRE(imp, "implicit ODP: %s", strerror(errno));
	end_connect(&a, &b);
	end_connect(&b, &a);

	for (int i = 0; i < 512; i++)
		a.buf[i] = (uint8_t)(i * 3 + 1);
	CHECK(one_wr(&a, IBV_WR_RDMA_WRITE, (uintptr_t)a.buf, 512, a.mr->lkey,
		     (uintptr_t)area + 100, odp->rkey) == IBV_WC_SUCCESS &&
		      !memcmp(area + 100, a.buf, 512), "WRITE into ODP page 0");
	/* Mapped after registration: reached now. */
	REQUIRE(mmap(area + pg, pg, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
			area + pg, "mmap the hole");
	CHECK(one_wr(&a, IBV_WR_RDMA_WRITE, (uintptr_t)a.buf, 512, a.mr->lkey,
		     (uintptr_t)area + pg + 7, odp->rkey) == IBV_WC_SUCCESS &&
		      !memcmp(area + pg + 7, a.buf, 512),
	      "WRITE into a page mapped after registration");
	/* Implicit: memory allocated after registration, at its address. */
	later = malloc(4096);
	REQUIRE(later, "malloc");
	for (int i = 0; i < 4096; i++)
		later[i] = (uint8_t)(i * 13);
	memset(a.buf, 0, 4096);
	CHECK(one_wr(&a, IBV_WR_RDMA_READ, (uintptr_t)a.buf, 4096, a.mr->lkey,
		     (uintptr_t)later, imp->rkey) == IBV_WC_SUCCESS &&
		      !memcmp(a.buf, later, 4096), "READ through implicit ODP");

	/* ibv_advise_mr: ODP MRs of the PD only, the known flags only. */
	sge = (struct ibv_sge){ (uintptr_t)area, (uint32_t)pg, odp->lkey };
	CHECK(!ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
			     IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1),
	      "prefetch an ODP page");
	CHECK(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 2, &sge, 1) ==
		      EINVAL, "advise flags 2");
	CHECK(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 0) ==
		      EINVAL, "advise 0 elements");
	sge.lkey = b.mr->lkey;
	CHECK(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1) ==
		      EINVAL, "advise a non-ODP MR");
	sge = (struct ibv_sge){ (uintptr_t)area + 2 * pg, (uint32_t)pg + 1,
				odp->lkey };
	CHECK(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1) ==
		      EINVAL, "advise beyond the MR");
	CHECK(ibv_advise_mr(a.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1) ==
		      EINVAL, "advise with another PD");

	/* Not mapped when the device gets there: an access error, no crash. */
	REQUIRE(!munmap(area + 2 * pg, pg), "munmap");
	sge = (struct ibv_sge){ (uintptr_t)area + 2 * pg, 64, odp->lkey };
	CHECK(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
			    IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1) == EFAULT,
	      "prefetch of an unmapped page with FLUSH");
	CHECK(one_wr(&a, IBV_WR_RDMA_WRITE, (uintptr_t)a.buf, 64, a.mr->lkey,
		     (uintptr_t)area + 2 * pg, odp->rkey) ==
		      IBV_WC_REM_ACCESS_ERR, "WRITE into an unmapped ODP page");
	CHECK(!ibv_dereg_mr(odp) && !ibv_dereg_mr(imp), "dereg_mr");
	munmap(area, 2 * pg);
	free(later);
	end_close(&a);
	end_close(&b);
}

/*
 * RDMA ATOMIC WRITE (IBTA 1.5, A19) through ibv_wr_atomic_write and the
 * legacy ibv_post_send, A -> B: the 8 bytes land, a misaligned target is
 * an invalid request, an MR without REMOTE_WRITE a remote access error;
 * UC QPs cannot carry it.
 */
struct aw_side {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	uint16_t lid;
};

static void aw_open(struct aw_side *s, const char *name)
{
	struct ibv_port_attr port;

	s->ctx = open_by_name(name);
	REQUIRE(s->ctx && !ibv_query_port(s->ctx, 1, &port), "open %s", name);
	s->lid = port.lid;
	s->pd = ibv_alloc_pd(s->ctx);
	s->cq = ibv_create_cq(s->ctx, 16, NULL, NULL, 0);
	REQUIRE(s->pd && s->cq, "pd/cq");
}

static struct ibv_qp *aw_qp(struct aw_side *s, enum ibv_qp_type type)
{
	struct ibv_qp_init_attr_ex a = {
		.qp_type = type, .send_cq = s->cq, .recv_cq = s->cq,
		.cap = { .max_send_wr = 8, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.comp_mask = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = s->pd,
		.send_ops_flags = IBV_QP_EX_WITH_ATOMIC_WRITE |
				  IBV_QP_EX_WITH_RDMA_WRITE,
	};

	return ibv_create_qp_ex(s->ctx, &a);
}

static void aw_pair(struct aw_side *a, struct aw_side *b)
{
	int ret;

	for (struct aw_side *s = a; s; s = s == a ? b : NULL) {
		if (s->qp)
			CHECK(!ibv_destroy_qp(s->qp), "destroy_qp");
		s->qp = aw_qp(s, IBV_QPT_RC);
		REQUIRE(s->qp, "create_qp_ex: %s", strerror(errno));
	}
	ret = rc_connect(a->qp, b->qp->qp_num, b->lid);
	if (!ret)
		ret = rc_connect(b->qp, a->qp->qp_num, a->lid);
	REQUIRE(!ret, "connect: %s", strerror(ret));
}

static struct ibv_wc aw_post(struct aw_side *a, uint32_t rkey, uint64_t at,
			     uint64_t value)
{
	struct ibv_qp_ex *qpx = ibv_qp_to_qp_ex(a->qp);
	uint64_t deadline = now_ms() + 5000;
	struct ibv_wc wc = { .status = IBV_WC_GENERAL_ERR };

	ibv_wr_start(qpx);
	qpx->wr_id = 7;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_atomic_write(qpx, rkey, at, &value);
	REQUIRE(!ibv_wr_complete(qpx), "wr_complete");
	while (!ibv_poll_cq(a->cq, 1, &wc) && now_ms() < deadline)
		;
	return wc;
}

static void t_atomic_write(void)
{
	struct aw_side a = { 0 }, b = { 0 };
	uint64_t *mem = aligned_alloc(64, 4096), src = 0x0102030405060708ULL;
	struct ibv_mr *mr, *ro, *smr;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	struct ibv_wc wc;
	struct ibv_qp *uc;

	REQUIRE(mem, "memory");
	memset(mem, 0, 4096);
	aw_open(&a, "vhca0_vf0");
	aw_open(&b, "vhca0_vf1");
	mr = ibv_reg_mr(b.pd, mem, 2048, IBV_ACCESS_LOCAL_WRITE |
					   IBV_ACCESS_REMOTE_WRITE);
	ro = ibv_reg_mr(b.pd, (uint8_t *)mem + 2048, 2048,
			IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
				IBV_ACCESS_REMOTE_ATOMIC);
	smr = ibv_reg_mr(a.pd, &src, sizeof(src), 0);
	REQUIRE(mr && ro && smr, "reg_mr: %s", strerror(errno));
	aw_pair(&a, &b);

	wc = aw_post(&a, mr->rkey, (uintptr_t)&mem[3], 0x1122334455667788ULL);
	CHECK(wc.status == IBV_WC_SUCCESS && wc.opcode == IBV_WC_ATOMIC_WRITE &&
		      wc.wr_id == 7,
	      "ibv_wr_atomic_write: %s, opcode %d", ibv_wc_status_str(wc.status),
	      wc.opcode);
	CHECK(mem[3] == 0x1122334455667788ULL && !mem[2] && !mem[4],
	      "the 8 bytes landed, and only they: %" PRIx64, mem[3]);

	/* The legacy way: the value at the one 8-byte SGE. */
	sge = (struct ibv_sge){ (uintptr_t)&src, 8, smr->lkey };
	wr = (struct ibv_send_wr){
		.wr_id = 8, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_ATOMIC_WRITE, .send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = (uintptr_t)&mem[5],
			     .rkey = mr->rkey },
	};
	CHECK(!ibv_post_send(a.qp, &wr, &bad), "post_send ATOMIC_WRITE");
	wc.status = IBV_WC_GENERAL_ERR;
	for (uint64_t d = now_ms() + 5000; !ibv_poll_cq(a.cq, 1, &wc) &&
					   now_ms() < d;)
		;
	CHECK(wc.status == IBV_WC_SUCCESS && mem[5] == src,
	      "legacy ATOMIC_WRITE: %s", ibv_wc_status_str(wc.status));
	sge.length = 4;
	CHECK(ibv_post_send(a.qp, &wr, &bad) == EINVAL,
	      "legacy ATOMIC_WRITE of 4 bytes");

	wc = aw_post(&a, mr->rkey, (uintptr_t)&mem[6] + 4, 1);
	CHECK(wc.status == IBV_WC_REM_INV_REQ_ERR, "misaligned: %s",
	      ibv_wc_status_str(wc.status));
	CHECK(!mem[6] && !mem[7], "nothing landed");
	aw_pair(&a, &b);
	wc = aw_post(&a, ro->rkey, (uintptr_t)&mem[256], 1);
	CHECK(wc.status == IBV_WC_REM_ACCESS_ERR,
	      "an MR without REMOTE_WRITE: %s", ibv_wc_status_str(wc.status));
	CHECK(!mem[256], "nothing landed");

	errno = 0;
	uc = aw_qp(&a, IBV_QPT_UC);
	CHECK(!uc && errno == EOPNOTSUPP, "UC with ATOMIC_WRITE: %s",
	      uc ? "created" : strerror(errno));
	CHECK(!ibv_destroy_qp(a.qp) && !ibv_destroy_qp(b.qp), "destroy_qp");
	CHECK(!ibv_dereg_mr(mr) && !ibv_dereg_mr(ro) && !ibv_dereg_mr(smr),
	      "dereg");
	for (struct aw_side *s = &a; s; s = s == &a ? &b : NULL)
		CHECK(!ibv_destroy_cq(s->cq) && !ibv_dealloc_pd(s->pd) &&
			      !ibv_close_device(s->ctx),
		      "close");
	free(mem);
}

static const struct subtest tests[] = {
	{ "poll", t_poll },
	{ "single_threaded", t_single_threaded },
	{ "empty", t_empty },
	{ "refused", t_refused },
	{ "qp_create_flags", t_qp_create_flags },
	{ "dm", t_dm },
	{ "odp", t_odp },
	{ "atomic_write", t_atomic_write },
};

int main(int argc, char **argv)
{
	return subtests_main(tests, sizeof(tests) / sizeof(tests[0]), argc,
			     argv);
}
