/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Helpers the attack programs share: an RC endpoint on one VF, its
 * connection to another process's endpoint through small files in a
 * directory, and one-WR posts with a bounded wait for their completion.
 * Only the public libibverbs API: the attacks are what any local user or
 * guest could run.
 */
#ifndef VHCA_TESTS_ATTACK_H
#define VHCA_TESTS_ATTACK_H

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../integration/verbs_helpers.h"

#define ATTACK_ACCESS                                                         \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |                   \
	 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)

#define die(...)                                                              \
	do {                                                                  \
		fprintf(stderr, __VA_ARGS__);                                 \
		fputc('\n', stderr);                                          \
		exit(2);                                                      \
	} while (0)

/* What the other side needs to reach an endpoint and its memory. */
struct ep_info {
	uint32_t lid, qpn, rkey;
	uint64_t addr;
};

struct rc_ep {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;		/* over buf, or NULL */
	uint8_t *buf;
	size_t len;
	uint16_t lid;
};

/* An RC QP in INIT on @ctx/@pd, with a fresh CQ. */
static inline void rc_ep_create(struct rc_ep *e, struct ibv_context *ctx,
				struct ibv_pd *pd)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 64, .max_recv_wr = 64,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC,
	};
	struct ibv_port_attr port;

	e->ctx = ctx;
	e->pd = pd;
	e->cq = ibv_create_cq(ctx, 128, NULL, NULL, 0);
	if (!e->cq)
		die("create_cq: %s", strerror(errno));
	ia.send_cq = ia.recv_cq = e->cq;
	e->qp = ibv_create_qp(pd, &ia);
	if (!e->qp)
		die("create_qp: %s", strerror(errno));
	if (ibv_modify_qp(e->qp, &a,
			  IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				  IBV_QP_ACCESS_FLAGS))
		die("modify_qp INIT: %s", strerror(errno));
	if (ibv_query_port(ctx, 1, &port))
		die("query_port: %s", strerror(errno));
	e->lid = port.lid;
}

/* Registers @buf (@len bytes) with every remote right. */
static inline void rc_ep_reg(struct rc_ep *e, void *buf, size_t len)
{
	e->buf = buf;
	e->len = len;
	e->mr = ibv_reg_mr(e->pd, buf, len, ATTACK_ACCESS);
	if (!e->mr)
		die("reg_mr: %s", strerror(errno));
}

static inline struct ep_info rc_ep_info(const struct rc_ep *e)
{
	return (struct ep_info){ .lid = e->lid, .qpn = e->qp->qp_num,
				 .rkey = e->mr ? e->mr->rkey : 0,
				 .addr = (uintptr_t)e->buf };
}

/*
 * RTR then RTS towards @peer.  Short ACK timeout (4.2 ms, 3 retries), so a
 * responder that has gone silent is found in ~20 ms.
 */
static inline void rc_ep_connect(struct rc_ep *e, const struct ep_info *peer)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTR,
		.path_mtu = IBV_MTU_4096,
		.dest_qp_num = peer->qpn,
		.ah_attr = { .dlid = (uint16_t)peer->lid, .port_num = 1 },
		.max_dest_rd_atomic = 4,
		.min_rnr_timer = 1,
	};

	if (ibv_modify_qp(e->qp, &a,
			  IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				  IBV_QP_MAX_DEST_RD_ATOMIC |
				  IBV_QP_MIN_RNR_TIMER))
		die("modify_qp RTR: %s", strerror(errno));
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS, .timeout = 10,
				  .retry_cnt = 3, .rnr_retry = 3,
				  .max_rd_atomic = 4 };
	if (ibv_modify_qp(e->qp, &a,
			  IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT |
				  IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				  IBV_QP_MAX_QP_RD_ATOMIC))
		die("modify_qp RTS: %s", strerror(errno));
}

/* One signaled RDMA WRITE/READ of [off, off + len) of our buffer. */
static inline int rc_ep_post(struct rc_ep *e, enum ibv_wr_opcode op,
			     uint64_t wr_id, size_t off, uint32_t len,
			     uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = { .addr = (uintptr_t)(e->buf + off),
			       .length = len, .lkey = e->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = raddr, .rkey = rkey },
	}, *bad;

	return ibv_post_send(e->qp, &wr, &bad);
}

/* 1 with *wc, or 0 if nothing arrived within @ms. */
static inline int rc_ep_wait(struct rc_ep *e, struct ibv_wc *wc, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;

	for (;;) {
		int n = ibv_poll_cq(e->cq, 1, wc);

		if (n < 0)
			die("poll_cq failed");
		if (n)
			return 1;
		if (now_ms() >= deadline)
			return 0;
		usleep(50);
	}
}

static inline uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline struct ibv_context *must_open(const char *dev)
{
	struct ibv_context *ctx = open_by_name(dev);

	if (!ctx)
		die("cannot open %s: %s", dev, strerror(errno));
	return ctx;
}

static inline int post_recv(struct rc_ep *e, uint64_t wr_id, uint32_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)e->buf, .length = len,
			       .lkey = e->mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 }, *bad;

	return ibv_post_recv(e->qp, &wr, &bad);
}

static inline int post_send(struct rc_ep *e, uint64_t wr_id, uint32_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)e->buf, .length = len,
			       .lkey = e->mr->lkey };
	struct ibv_send_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1, .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;

	return ibv_post_send(e->qp, &wr, &bad);
}

/* One completion of @e with status SUCCESS within @ms; false otherwise. */
static inline bool wait_ok(struct rc_ep *e, int ms, const char *what)
{
	struct ibv_wc wc;

	if (!rc_ep_wait(e, &wc, ms)) {
		fprintf(stderr, "%s: no completion in %d ms\n", what, ms);
		return false;
	}
	if (wc.status != IBV_WC_SUCCESS) {
		fprintf(stderr, "%s: %s\n", what, ibv_wc_status_str(wc.status));
		return false;
	}
	return true;
}

/* ---- rendezvous through files in a shared directory ------------------ */

static inline void put_file(const char *dir, const char *name,
			    const char *text)
{
	char path[4096], tmp[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) || rename(tmp, path))
		die("cannot write %s: %s", path, strerror(errno));
}

/* Waits up to @ms for DIR/NAME; its text in @buf.  0, or -1 on timeout. */
static inline int get_file(const char *dir, const char *name, char *buf,
			   size_t size, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	do {
		FILE *f = fopen(path, "r");

		if (f) {
			size_t n = fread(buf, 1, size - 1, f);

			fclose(f);
			buf[n] = 0;
			return 0;
		}
		usleep(5000);
	} while (now_ms() < deadline);
	return -1;
}

static inline void put_info(const char *dir, const char *name,
			    const struct ep_info *i)
{
	char text[128];

	snprintf(text, sizeof(text), "%u %u %u %" PRIu64 "\n", i->lid, i->qpn,
		 i->rkey, i->addr);
	put_file(dir, name, text);
}

static inline struct ep_info get_info(const char *dir, const char *name)
{
	struct ep_info i;
	char text[128];

	if (get_file(dir, name, text, sizeof(text), 30000) ||
	    sscanf(text, "%u %u %u %" SCNu64, &i.lid, &i.qpn, &i.rkey,
		   &i.addr) != 4)
		die("no endpoint info %s/%s", dir, name);
	return i;
}

#endif /* VHCA_TESTS_ATTACK_H */
