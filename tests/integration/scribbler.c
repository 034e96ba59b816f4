// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A hostile guest.  It creates PDs, MRs, CQs and RC/UC/UD QPs normally
 * (its RC/UC QPs connected to partners of its own), then, in a loop:
 *  - posts work requests full of garbage through the public API: bogus
 *    lkeys and rkeys, huge lengths, random remote addresses, random and
 *    invalid opcodes and flags, too many SGEs, UD sends to random QPNs
 *    with random Q_Keys;
 *  - best effort, scribbles random bytes over every writable mapping of
 *    its own process that /proc/self/maps shows as a memfd: that is where
 *    a provider keeps its rings and doorbell records (we cannot know the
 *    internals, so we hit all of them);
 *  - polls its CQs and discards whatever comes back.
 * Each round runs in a forked child, so a child that crashes on its own
 * corrupted rings (its business) or is stuck is replaced by the next one;
 * the parent kills a child that outlives its round, by pid.  The device
 * must not crash and must not let any of it reach another guest.
 *
 * usage: scribbler DEVICE SECONDS [SEED]
 * Prints "scribbler: R rounds, C crashed children, K killed" and exits 0.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "verbs_helpers.h"

#define NQP 6
#define BUF 65536

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t rnd(void)
{
	rs ^= rs >> 12;
	rs ^= rs << 25;
	rs ^= rs >> 27;
	return rs * 2685821657736338717ull;
}

struct guest {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	unsigned char *buf;
	struct ibv_cq *cq[NQP];
	struct ibv_qp *qp[NQP];
	struct ibv_srq *srq;
	struct ibv_ah *ah;
	struct ibv_port_attr port;
};

static void to_rts(struct ibv_qp *qp, enum ibv_qp_type t, uint16_t dlid,
		   uint32_t dqpn, enum ibv_mtu mtu)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qkey = 0x1234 };
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;

	if (t == IBV_QPT_UD) {
		mask |= IBV_QP_QKEY;
	} else {
		a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				    (t == IBV_QPT_RC ? IBV_ACCESS_REMOTE_READ |
				     IBV_ACCESS_REMOTE_ATOMIC : 0);
		mask |= IBV_QP_ACCESS_FLAGS;
	}
	if (ibv_modify_qp(qp, &a, mask))
		return;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	mask = IBV_QP_STATE;
	if (t != IBV_QPT_UD) {
		a.path_mtu = mtu;
		a.dest_qp_num = dqpn;
		a.ah_attr.dlid = dlid;
		a.ah_attr.port_num = 1;
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN;
		if (t == IBV_QPT_RC) {
			a.max_dest_rd_atomic = 1;
			a.min_rnr_timer = 1;
			mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
		}
	}
	if (ibv_modify_qp(qp, &a, mask))
		return;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
	if (t == IBV_QPT_RC) {
		a.timeout = 8;
		a.retry_cnt = 1;
		a.rnr_retry = 1;
		a.max_rd_atomic = 1;
		mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			IBV_QP_MAX_QP_RD_ATOMIC;
	}
	ibv_modify_qp(qp, &a, mask);
}

static int guest_setup(struct guest *g, const char *dev)
{
	static const enum ibv_qp_type types[NQP] = {
		IBV_QPT_RC, IBV_QPT_RC, IBV_QPT_UC, IBV_QPT_UC, IBV_QPT_UD,
		IBV_QPT_RC,
	};

	memset(g, 0, sizeof(*g));
	g->ctx = open_by_name(dev);
	if (!g->ctx || ibv_query_port(g->ctx, 1, &g->port))
		return -1;
	g->pd = ibv_alloc_pd(g->ctx);
	g->buf = aligned_alloc(4096, BUF);
	if (!g->pd || !g->buf)
		return -1;
	g->mr = ibv_reg_mr(g->pd, g->buf, BUF,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			   IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC);
	struct ibv_srq_init_attr sia = { .attr = { .max_wr = 32, .max_sge = 1 } };
	g->srq = ibv_create_srq(g->pd, &sia);
	for (int i = 0; i < NQP; i++) {
		struct ibv_qp_init_attr ia = {
			.qp_type = types[i],
			.cap = { .max_send_wr = 64, .max_recv_wr = 64,
				 .max_send_sge = 2, .max_recv_sge = 2,
				 .max_inline_data = 32 },
		};

		g->cq[i] = ibv_create_cq(g->ctx, 256, NULL, NULL, 0);
		if (!g->cq[i])
			return -1;
		ia.send_cq = ia.recv_cq = g->cq[i];
		if (i == NQP - 1 && g->srq) {
			ia.srq = g->srq;
			ia.cap.max_recv_wr = ia.cap.max_recv_sge = 0;
		}
		g->qp[i] = ibv_create_qp(g->pd, &ia);
		if (!g->qp[i]) {
			ia.cap.max_inline_data = 0;
			g->qp[i] = ibv_create_qp(g->pd, &ia);
		}
		if (!g->qp[i])
			return -1;
	}
	/* RC 0 <-> RC 1 and UC 2 <-> UC 3 inside this guest; RC 5 to RC 0 */
	for (int i = 0; i < NQP; i++) {
		int peer = i == 4 ? i : i == 5 ? 0 : i ^ 1;

		to_rts(g->qp[i], types[i], g->port.lid, g->qp[peer]->qp_num,
		       g->port.active_mtu);
	}
	struct ibv_ah_attr aa = { .dlid = g->port.lid, .port_num = 1 };
	g->ah = ibv_create_ah(g->pd, &aa);
	return 0;
}

static void garbage_send(struct guest *g)
{
	struct ibv_qp *qp = g->qp[rnd() % NQP];
	struct ibv_sge sge[8];
	struct ibv_send_wr wr, *bad;
	int nsge = (int)(rnd() % 9);

	for (int i = 0; i < nsge; i++) {
		switch (rnd() % 4) {
		case 0: /* valid */
			sge[i].addr = (uintptr_t)g->buf + rnd() % BUF;
			sge[i].length = (uint32_t)(rnd() % 256);
			sge[i].lkey = g->mr->lkey;
			break;
		case 1: /* huge length */
			sge[i].addr = (uintptr_t)g->buf;
			sge[i].length = (uint32_t)rnd() | 0x80000000u;
			sge[i].lkey = g->mr->lkey;
			break;
		case 2: /* random key */
			sge[i].addr = (uintptr_t)g->buf;
			sge[i].length = 64;
			sge[i].lkey = (uint32_t)rnd();
			break;
		default: /* random address (not dereferenced by us) */
			sge[i].addr = rnd();
			sge[i].length = (uint32_t)(rnd() % 65536);
			sge[i].lkey = g->mr->lkey;
		}
	}
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = rnd();
	wr.sg_list = sge;
	wr.num_sge = nsge;
	wr.opcode = (enum ibv_wr_opcode)(rnd() % 16);  /* includes invalid */
	/* flags: no INLINE here — the provider would copy from our bogus
	 * addresses in our own process */
	wr.send_flags = (unsigned int)(rnd() &
				       (IBV_SEND_SIGNALED | IBV_SEND_FENCE |
					IBV_SEND_SOLICITED));
	wr.imm_data = (uint32_t)rnd();
	if (qp->qp_type == IBV_QPT_UD) {
		if (!g->ah)
			return;
		wr.wr.ud.ah = g->ah;
		wr.wr.ud.remote_qpn = (uint32_t)rnd() & 0xffffff;
		wr.wr.ud.remote_qkey = (uint32_t)rnd();
		if (rnd() & 1)
			wr.wr.ud.remote_qpn = qp->qp_num;
	} else if (wr.opcode == IBV_WR_ATOMIC_CMP_AND_SWP ||
		   wr.opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		wr.wr.atomic.remote_addr = rnd() & 1 ? rnd() :
					   (uintptr_t)g->buf + (rnd() % BUF);
		wr.wr.atomic.rkey = rnd() & 1 ? (uint32_t)rnd() : g->mr->rkey;
		wr.wr.atomic.compare_add = rnd();
		wr.wr.atomic.swap = rnd();
	} else {
		wr.wr.rdma.remote_addr = rnd() & 1 ? rnd() :
					 (uintptr_t)g->buf + (rnd() % BUF);
		wr.wr.rdma.rkey = rnd() & 1 ? (uint32_t)rnd() : g->mr->rkey;
	}
	if (rnd() % 8 == 0 && nsge > 0) {
		/* inline with a valid source but an oversized length */
		sge[0].addr = (uintptr_t)g->buf;
		sge[0].length = (uint32_t)(rnd() % BUF);
		wr.num_sge = 1;
		wr.send_flags |= IBV_SEND_INLINE;
	}
	ibv_post_send(qp, &wr, &bad);
}

static void garbage_recv(struct guest *g)
{
	struct ibv_sge sge[4];
	struct ibv_recv_wr wr = { .wr_id = rnd(), .sg_list = sge,
				  .num_sge = (int)(rnd() % 5) }, *bad;

	for (int i = 0; i < wr.num_sge; i++) {
		sge[i].addr = rnd() & 1 ? rnd() : (uintptr_t)g->buf + rnd() % BUF;
		sge[i].length = (uint32_t)rnd();
		sge[i].lkey = rnd() & 1 ? (uint32_t)rnd() : g->mr->lkey;
	}
	if (rnd() % 4 == 0 && g->srq)
		ibv_post_srq_recv(g->srq, &wr, &bad);
	else
		ibv_post_recv(g->qp[rnd() % (NQP - 1)], &wr, &bad);
}

/* Random bytes over every writable memfd mapping (rings, doorbells). */
static int scribble_memfds(int intensity)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int hit = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];

		if (!strstr(line, "memfd:") ||
		    sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
		    perms[1] != 'w')
			continue;
		hit++;
		unsigned char *p = (unsigned char *)lo;
		size_t len = hi - lo;

		for (int k = 0; k < intensity; k++) {
			size_t off = rnd() % len;
			size_t n = 1 + rnd() % 64;

			if (off + n > len)
				n = len - off;
			switch (rnd() % 3) {
			case 0:
				for (size_t j = 0; j < n; j++)
					p[off + j] = (unsigned char)rnd();
				break;
			case 1:
				memset(p + off, 0xff, n);
				break;
			default:
				memset(p + off, 0, n);
			}
		}
		if (rnd() % 16 == 0) /* sometimes the whole mapping */
			for (size_t j = 0; j < len; j += 8) {
				uint64_t v = rnd();
				memcpy(p + j, &v, len - j < 8 ? len - j : 8);
			}
	}
	fclose(f);
	return hit;
}

/* Reads and acks every pending async event (QP fatal, CQ overrun, ...):
 * ibv_destroy_cq/qp wait until the events the device reported are acked. */
static unsigned int drain_async(struct ibv_context *ctx)
{
	struct ibv_async_event ev;
	unsigned int n = 0;

	fcntl(ctx->async_fd, F_SETFL, fcntl(ctx->async_fd, F_GETFL) | O_NONBLOCK);
	while (ibv_get_async_event(ctx, &ev) == 0) {
		ibv_ack_async_event(&ev);
		n++;
	}
	return n;
}

/* One round in a child: set up, abuse, poll, exit (teardown or not). */
static int child_round(const char *dev, int ms)
{
	struct guest g;
	struct ibv_wc wc[16];
	uint64_t end = now_ms() + (uint64_t)ms;
	int maps = 0;

	if (guest_setup(&g, dev)) {
		fprintf(stderr, "scribbler: setup on %s failed: %s\n", dev,
			strerror(errno));
		return 3;
	}
	while (now_ms() < end) {
		for (int i = 0; i < 32; i++) {
			garbage_send(&g);
			if (i % 4 == 0)
				garbage_recv(&g);
		}
		if (rnd() % 4 == 0)
			maps = scribble_memfds(64);
		for (int i = 0; i < NQP; i++)
			ibv_poll_cq(g.cq[i], 16, wc);
		drain_async(g.ctx);
		/* sometimes reconnect a QP: state changes mid-garbage */
		if (rnd() % 16 == 0) {
			int i = (int)(rnd() % NQP);
			struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

			ibv_modify_qp(g.qp[i], &a, IBV_QP_STATE);
			to_rts(g.qp[i], g.qp[i]->qp_type, g.port.lid,
			       g.qp[i]->qp_num, g.port.active_mtu);
		}
		usleep(500);
	}
	if (maps == 0)
		maps = scribble_memfds(0);
	/* half the children tear down, half just exit */
	if (rnd() & 1) {
		drain_async(g.ctx);
		for (int i = 0; i < NQP; i++) {
			ibv_destroy_qp(g.qp[i]);
			ibv_destroy_cq(g.cq[i]);
		}
		if (g.srq)
			ibv_destroy_srq(g.srq);
		if (g.ah)
			ibv_destroy_ah(g.ah);
		ibv_dereg_mr(g.mr);
		ibv_dealloc_pd(g.pd);
		ibv_close_device(g.ctx);
	}
	/* exit status tells the parent whether memfd mappings were seen */
	return maps ? 0 : 4;
}

int main(int argc, char **argv)
{
	unsigned int rounds = 0, crashed = 0, killed = 0, setup_failed = 0,
		     no_memfd = 0;
	uint64_t end;

	if (argc < 3) {
		fprintf(stderr, "usage: scribbler DEVICE SECONDS [SEED]\n");
		return 2;
	}
	end = now_ms() + 1000 * (uint64_t)atoi(argv[2]);
	rs ^= argc > 3 ? strtoull(argv[3], NULL, 0) : (uint64_t)getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* SIGTERM: finish the current round, report, exit */
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);

	while (now_ms() < end && !stop) {
		uint64_t seed = rnd();
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			rs ^= seed;
			_exit(child_round(argv[1], 300 + (int)(seed % 700)));
		}
		rounds++;
		/* a child gets 10 s; one that is stuck is killed */
		uint64_t deadline = now_ms() + 10000;
		int status = 0;
		pid_t w;

		while ((w = waitpid(pid, &status, WNOHANG)) == 0 &&
		       now_ms() < deadline)
			usleep(10000);
		if (w == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			killed++;
			fprintf(stderr, "scribbler: round %u stuck, killed\n",
				rounds);
		} else if (WIFSIGNALED(status)) {
			crashed++;
		} else if (WEXITSTATUS(status) == 3) {
			setup_failed++;
		} else if (WEXITSTATUS(status) == 4) {
			no_memfd++;
		}
	}
	printf("scribbler: %u rounds, %u crashed children (their own rings), "
	       "%u killed stuck, %u setup failures, %u without memfd maps\n",
	       rounds, crashed, killed, setup_failed, no_memfd);
	/* Setup must keep working: the device still serves this guest. */
	return setup_failed == rounds ? 1 : 0;
}
