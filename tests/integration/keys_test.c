// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * keys_test DEV_A DEV_B: Q_Key and P_Key enforcement between two VFs of
 * one vhcad, from one process (one context per device).  DEV_A sends,
 * DEV_B receives.  Needs SYSFS_PATH (counters, and the PF's
 * device/sriov/<vf>/ files this test writes as the admin would) and
 * expects both VFs to hold P_Key 0xffff at index 0 and 0x8001 at index 1
 * when it starts; it leaves them so.
 *
 *  1. UD, wrong Q_Key: dropped, counted in B's hw_counters/qkey_violations;
 *     a good datagram sent after it is the first one B receives.
 *  2. UD, controlled Q_Key (high bit set in the WR): the sender's own QP
 *     Q_Key goes on the wire - delivered when it equals B's, dropped and
 *     counted when it does not.
 *  3. RC on P_Key index 1: works; once the admin clears A's entry 1 the
 *     next send never leaves A (port_xmit_constraint_errors rises, B
 *     counts nothing) and completes with IBV_WC_RETRY_EXC_ERR.
 *  4. UD on index 1 after the clear: completes (unreliable) but B gets
 *     nothing.
 *  5. RC with A's policy Down: the send never leaves (retry exceeded).
 *  6. RC to B with B's policy Down: nothing arrives at B either.
 *
 * Exit 0 when every check passed, 1 otherwise (each failure is printed).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#define GOOD_QKEY 0x11111111u
#define OTHER_QKEY 0x22222222u
#define MSG_SIZE 64
#define GRH_SIZE 40
#define RECV_DEPTH 16
#define CQ_TIMEOUT_S 30

static int failures;
static const char *sysfs;

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                       \
			fprintf(stderr, "\n");                              \
			failures++;                                         \
		}                                                           \
	} while (0)

/* Setup failures leave nothing to test: stop. */
#define MUST(cond, what)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "FATAL: %s: %s\n", what,          \
				strerror(errno));                         \
			exit(1);                                          \
		}                                                         \
	} while (0)

struct end {
	const char *name;
	unsigned int vf;	/* N of vhca0_vfN */
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	char *buf;
	uint16_t lid;
};

struct qpair {
	struct ibv_qp *a, *b;
};

static uint64_t counter(const struct end *e, const char *dir,
			const char *name)
{
	char path[512];
	unsigned long long value = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/class/infiniband/%s/ports/1/%s/%s",
		 sysfs, e->name, dir, name);
	f = fopen(path, "r");
	MUST(f, path);
	MUST(fscanf(f, "%llu", &value) == 1, path);
	fclose(f);
	return value;
}

/* The admin's write to the PF's device/sriov/<vf>/FILE. */
static void admin_write(const struct end *e, const char *file,
			const char *value)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path),
		 "%s/class/infiniband/vhca0/device/sriov/%u/%s", sysfs, e->vf,
		 file);
	f = fopen(path, "w");
	MUST(f, path);
	MUST(fputs(value, f) >= 0 && fclose(f) == 0, path);
}

static void open_end(struct end *e, const char *name)
{
	struct ibv_device **list;
	struct ibv_port_attr port;
	int n;

	e->name = name;
	MUST(sscanf(name, "vhca0_vf%u", &e->vf) == 1, "device name vhca0_vfN");
	list = ibv_get_device_list(&n);
	MUST(list, "ibv_get_device_list");
	for (int i = 0; i < n && !e->ctx; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			e->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	MUST(e->ctx, name);
	MUST(!ibv_query_port(e->ctx, 1, &port), "ibv_query_port");
	e->lid = port.lid;
	MUST(e->pd = ibv_alloc_pd(e->ctx), "ibv_alloc_pd");
	MUST(e->cq = ibv_create_cq(e->ctx, 4 * RECV_DEPTH, NULL, NULL, 0),
	     "ibv_create_cq");
	e->buf = calloc(RECV_DEPTH, MSG_SIZE + GRH_SIZE);
	MUST(e->buf, "calloc");
	MUST(e->mr = ibv_reg_mr(e->pd, e->buf,
				RECV_DEPTH * (MSG_SIZE + GRH_SIZE),
				IBV_ACCESS_LOCAL_WRITE),
	     "ibv_reg_mr");
}

static void close_end(struct end *e)
{
	ibv_dereg_mr(e->mr);
	ibv_destroy_cq(e->cq);
	ibv_dealloc_pd(e->pd);
	ibv_close_device(e->ctx);
	free(e->buf);
}

static struct ibv_qp *create_qp(struct end *e, enum ibv_qp_type type)
{
	struct ibv_qp_init_attr init = {
		.send_cq = e->cq,
		.recv_cq = e->cq,
		.cap = { .max_send_wr = RECV_DEPTH, .max_recv_wr = RECV_DEPTH,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = type,
	};
	struct ibv_qp *qp = ibv_create_qp(e->pd, &init);

	MUST(qp, "ibv_create_qp");
	return qp;
}

static void ud_up(struct ibv_qp *qp, uint16_t pkey_index, uint32_t qkey)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT,
				 .pkey_index = pkey_index, .port_num = 1,
				 .qkey = qkey };

	MUST(!ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					   IBV_QP_PORT | IBV_QP_QKEY),
	     "UD to INIT");
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTR };
	MUST(!ibv_modify_qp(qp, &a, IBV_QP_STATE), "UD to RTR");
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS, .sq_psn = 1 };
	MUST(!ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN),
	     "UD to RTS");
}

static void rc_up(struct ibv_qp *qp, uint16_t pkey_index, uint16_t dlid,
		  uint32_t dest_qpn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT, .pkey_index = pkey_index,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};

	MUST(!ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					   IBV_QP_PORT | IBV_QP_ACCESS_FLAGS),
	     "RC to INIT");
	a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_1024,
		.dest_qp_num = dest_qpn, .rq_psn = 1,
		.max_dest_rd_atomic = 1, .min_rnr_timer = 1,
		.ah_attr = { .dlid = dlid, .port_num = 1 },
	};
	MUST(!ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV |
					   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					   IBV_QP_RQ_PSN |
					   IBV_QP_MAX_DEST_RD_ATOMIC |
					   IBV_QP_MIN_RNR_TIMER),
	     "RC to RTR");
	/* timeout 8 (~1 ms), 2 retries: a lost packet fails quickly. */
	a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_RTS, .sq_psn = 1, .timeout = 8,
		.retry_cnt = 2, .rnr_retry = 7, .max_rd_atomic = 1,
	};
	MUST(!ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
					   IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					   IBV_QP_RNR_RETRY |
					   IBV_QP_MAX_QP_RD_ATOMIC),
	     "RC to RTS");
}

static void post_recv(struct end *e, struct ibv_qp *qp, unsigned int slot)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)e->buf + slot * (MSG_SIZE + GRH_SIZE),
		.length = MSG_SIZE + GRH_SIZE, .lkey = e->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = slot, .sg_list = &sge,
				  .num_sge = 1 };
	struct ibv_recv_wr *bad;

	MUST(!ibv_post_recv(qp, &wr, &bad), "ibv_post_recv");
}

/* A's message: MSG_SIZE bytes of @tag, sent from slot 0 of A's buffer. */
static void post_send(struct end *a, struct ibv_qp *qp, struct ibv_ah *ah,
		      uint32_t remote_qpn, uint32_t remote_qkey, char tag)
{
	struct ibv_sge sge = { .addr = (uintptr_t)a->buf, .length = MSG_SIZE,
			       .lkey = a->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = (uint64_t)(unsigned char)tag, .sg_list = &sge,
		.num_sge = 1, .opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;

	memset(a->buf, tag, MSG_SIZE);
	if (ah) {
		wr.wr.ud.ah = ah;
		wr.wr.ud.remote_qpn = remote_qpn;
		wr.wr.ud.remote_qkey = remote_qkey;
	}
	MUST(!ibv_post_send(qp, &wr, &bad), "ibv_post_send");
}

/* The next completion of @e's CQ (false: none within CQ_TIMEOUT_S). */
static bool poll_one(struct end *e, struct ibv_wc *wc)
{
	time_t deadline = time(NULL) + CQ_TIMEOUT_S;

	while (time(NULL) < deadline) {
		int n = ibv_poll_cq(e->cq, 1, wc);

		MUST(n >= 0, "ibv_poll_cq");
		if (n)
			return true;
		usleep(100);
	}
	return false;
}

/* Sends @tag and waits for A's send completion (both CQs are separate). */
static enum ibv_wc_status send_and_complete(struct end *a, struct ibv_qp *qp,
					    struct ibv_ah *ah, uint32_t qpn,
					    uint32_t qkey, char tag)
{
	struct ibv_wc wc;

	post_send(a, qp, ah, qpn, qkey, tag);
	if (!poll_one(a, &wc)) {
		CHECK(0, "no send completion for '%c'", tag);
		return IBV_WC_GENERAL_ERR;
	}
	CHECK(wc.wr_id == (uint64_t)(unsigned char)tag,
	      "send completion for %" PRIu64 ", want '%c'", wc.wr_id, tag);
	return wc.status;
}

/* B's next receive carries @tag (UD: after the GRH space). */
static void expect_received(struct end *b, char tag, bool ud)
{
	struct ibv_wc wc;
	const char *data;

	if (!poll_one(b, &wc)) {
		CHECK(0, "'%c' never arrived", tag);
		return;
	}
	CHECK(wc.status == IBV_WC_SUCCESS, "receive status %s",
	      ibv_wc_status_str(wc.status));
	data = b->buf + wc.wr_id * (MSG_SIZE + GRH_SIZE) + (ud ? GRH_SIZE : 0);
	CHECK(data[0] == tag && data[MSG_SIZE - 1] == tag,
	      "received '%c', want '%c' (an earlier datagram got through)",
	      data[0], tag);
}

static struct ibv_ah *ah_to(struct end *a, const struct end *b)
{
	struct ibv_ah_attr attr = { .dlid = b->lid, .port_num = 1 };
	struct ibv_ah *ah = ibv_create_ah(a->pd, &attr);

	MUST(ah, "ibv_create_ah");
	return ah;
}

static void test_qkeys(struct end *a, struct end *b)
{
	struct ibv_qp *sa = create_qp(a, IBV_QPT_UD);
	struct ibv_qp *sa_other = create_qp(a, IBV_QPT_UD);
	struct ibv_qp *rb = create_qp(b, IBV_QPT_UD);
	struct ibv_ah *ah = ah_to(a, b);
	uint64_t before;

	ud_up(sa, 0, GOOD_QKEY);
	ud_up(sa_other, 0, OTHER_QKEY);
	ud_up(rb, 0, GOOD_QKEY);
	for (unsigned int i = 0; i < RECV_DEPTH; i++)
		post_recv(b, rb, i);

	/* 1: a wrong Q_Key in the WR. */
	before = counter(b, "hw_counters", "qkey_violations");
	CHECK(send_and_complete(a, sa, ah, rb->qp_num, OTHER_QKEY, 'x') ==
		      IBV_WC_SUCCESS,
	      "UD send with a wrong Q_Key must complete (it is lost)");
	CHECK(send_and_complete(a, sa, ah, rb->qp_num, GOOD_QKEY, 'g') ==
		      IBV_WC_SUCCESS,
	      "UD send with the right Q_Key");
	expect_received(b, 'g', true);
	CHECK(counter(b, "hw_counters", "qkey_violations") == before + 1,
	      "qkey_violations %" PRIu64 " -> %" PRIu64 ", want +1", before,
	      counter(b, "hw_counters", "qkey_violations"));

	/* 2: controlled Q_Key - the sending QP's own goes on the wire. */
	CHECK(send_and_complete(a, sa, ah, rb->qp_num, 0x80000000u, 'c') ==
		      IBV_WC_SUCCESS,
	      "controlled Q_Key send");
	expect_received(b, 'c', true);
	before = counter(b, "hw_counters", "qkey_violations");
	/* Whatever the low bits say, the high bit means "the QP's own". */
	CHECK(send_and_complete(a, sa_other, ah, rb->qp_num,
				0x80000000u | GOOD_QKEY, 'o') == IBV_WC_SUCCESS,
	      "controlled Q_Key send from the other QP");
	CHECK(send_and_complete(a, sa, ah, rb->qp_num, GOOD_QKEY, 'h') ==
		      IBV_WC_SUCCESS,
	      "UD send after the controlled one");
	expect_received(b, 'h', true);
	CHECK(counter(b, "hw_counters", "qkey_violations") == before + 1,
	      "controlled Q_Key of the other QP (0x%x) must be refused",
	      OTHER_QKEY);

	ibv_destroy_ah(ah);
	ibv_destroy_qp(sa);
	ibv_destroy_qp(sa_other);
	ibv_destroy_qp(rb);
	printf("ok: Q_Key violations dropped and counted; controlled Q_Key\n");
}

static void drain_cq(struct end *e)
{
	struct ibv_wc wc;

	while (ibv_poll_cq(e->cq, 1, &wc) > 0)
		;
}

static void test_pkey_cleared(struct end *a, struct end *b)
{
	struct ibv_qp *qa = create_qp(a, IBV_QPT_RC);
	struct ibv_qp *qb = create_qp(b, IBV_QPT_RC);
	struct ibv_qp *ua = create_qp(a, IBV_QPT_UD);
	struct ibv_qp *ub = create_qp(b, IBV_QPT_UD);
	struct ibv_ah *ah = ah_to(a, b);
	uint64_t xmit, rcv, rcv_packets;
	enum ibv_wc_status st;

	rc_up(qa, 1, b->lid, qb->qp_num);
	rc_up(qb, 1, a->lid, qa->qp_num);
	ud_up(ua, 1, GOOD_QKEY);
	ud_up(ub, 1, GOOD_QKEY);
	for (unsigned int i = 0; i < RECV_DEPTH / 2; i++) {
		post_recv(b, qb, i);
		post_recv(b, ub, RECV_DEPTH / 2 + i);
	}

	st = send_and_complete(a, qa, NULL, 0, 0, 'r');
	CHECK(st == IBV_WC_SUCCESS, "RC on 0x8001 before the change: %s",
	      ibv_wc_status_str(st));
	expect_received(b, 'r', false);

	/* 3: the admin takes partition 0x8001 away from A. */
	xmit = counter(a, "counters", "port_xmit_constraint_errors");
	rcv = counter(b, "counters", "port_rcv_constraint_errors");
	rcv_packets = counter(b, "counters", "port_rcv_packets");
	admin_write(a, "pkeys/1", "0x0000");
	st = send_and_complete(a, qa, NULL, 0, 0, 's');
	CHECK(st == IBV_WC_RETRY_EXC_ERR,
	      "RC on an emptied P_Key entry: %s, want %s",
	      ibv_wc_status_str(st), ibv_wc_status_str(IBV_WC_RETRY_EXC_ERR));
	/* The first try and both retries were discarded at transmit. */
	CHECK(counter(a, "counters", "port_xmit_constraint_errors") ==
		      xmit + 3,
	      "port_xmit_constraint_errors %" PRIu64 " -> %" PRIu64
	      ", want +3",
	      xmit, counter(a, "counters", "port_xmit_constraint_errors"));

	/* 4: UD on the emptied entry: "sent", never received. */
	CHECK(send_and_complete(a, ua, ah, ub->qp_num, GOOD_QKEY, 'u') ==
		      IBV_WC_SUCCESS,
	      "UD on an emptied P_Key entry completes (unreliable)");
	CHECK(counter(a, "counters", "port_xmit_constraint_errors") ==
		      xmit + 4,
	      "UD discard not counted");
	CHECK(counter(b, "counters", "port_rcv_constraint_errors") == rcv &&
		      counter(b, "counters", "port_rcv_packets") == rcv_packets,
	      "B saw packets A must not have sent");
	{
		struct ibv_wc wc;
		int n = ibv_poll_cq(b->cq, 1, &wc);

		CHECK(n == 0, "B received something on a dead partition");
	}
	admin_write(a, "pkeys/1", "0x8001");

	ibv_destroy_ah(ah);
	ibv_destroy_qp(qa);
	ibv_destroy_qp(qb);
	ibv_destroy_qp(ua);
	ibv_destroy_qp(ub);
	drain_cq(a);
	drain_cq(b);
	printf("ok: an emptied P_Key entry stops the QP's sends at transmit\n");
}

static void test_port_down(struct end *a, struct end *b)
{
	struct ibv_qp *qa = create_qp(a, IBV_QPT_RC);
	struct ibv_qp *qb = create_qp(b, IBV_QPT_RC);
	enum ibv_wc_status st;

	rc_up(qa, 0, b->lid, qb->qp_num);
	rc_up(qb, 0, a->lid, qa->qp_num);
	post_recv(b, qb, 0);
	post_recv(b, qb, 1);
	st = send_and_complete(a, qa, NULL, 0, 0, 'p');
	CHECK(st == IBV_WC_SUCCESS, "RC with the port up: %s",
	      ibv_wc_status_str(st));
	expect_received(b, 'p', false);

	/* 5: no link, no packet. */
	admin_write(a, "policy", "Down");
	st = send_and_complete(a, qa, NULL, 0, 0, 'q');
	admin_write(a, "policy", "Follow");
	CHECK(st == IBV_WC_RETRY_EXC_ERR, "RC with the port Down: %s",
	      ibv_wc_status_str(st));
	{
		struct ibv_wc wc;

		CHECK(ibv_poll_cq(b->cq, 1, &wc) == 0,
		      "B received from a port that is Down");
	}
	ibv_destroy_qp(qa);
	ibv_destroy_qp(qb);
	drain_cq(a);
	drain_cq(b);

	/* 6: nor does it receive anything (the receiver's port Down). */
	qa = create_qp(a, IBV_QPT_RC);
	qb = create_qp(b, IBV_QPT_RC);
	rc_up(qa, 0, b->lid, qb->qp_num);
	rc_up(qb, 0, a->lid, qa->qp_num);
	post_recv(b, qb, 0);
	admin_write(b, "policy", "Down");
	st = send_and_complete(a, qa, NULL, 0, 0, 'r');
	admin_write(b, "policy", "Follow");
	CHECK(st == IBV_WC_RETRY_EXC_ERR, "RC to a port that is Down: %s",
	      ibv_wc_status_str(st));
	{
		struct ibv_wc wc;

		CHECK(ibv_poll_cq(b->cq, 1, &wc) == 0,
		      "a port that is Down received a packet");
	}
	ibv_destroy_qp(qa);
	ibv_destroy_qp(qb);
	drain_cq(a);
	drain_cq(b);
	printf("ok: a port that is Down sends and receives nothing\n");
}

int main(int argc, char **argv)
{
	struct end a = { 0 }, b = { 0 };

	if (argc != 3) {
		fprintf(stderr, "usage: keys_test DEV_A DEV_B\n");
		return 2;
	}
	sysfs = getenv("SYSFS_PATH");
	if (!sysfs) {
		fprintf(stderr, "keys_test: SYSFS_PATH is not set\n");
		return 2;
	}
	open_end(&a, argv[1]);
	open_end(&b, argv[2]);
	test_qkeys(&a, &b);
	test_pkey_cleared(&a, &b);
	test_port_down(&a, &b);
	close_end(&a);
	close_end(&b);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
