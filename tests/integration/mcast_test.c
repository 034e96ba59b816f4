// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * UD multicast (IBTA 10.5; ibv_attach_mcast) through the public API: a
 * datagram that vhca0_vf0 sends to a group reaches every UD QP attached
 * to it, on other ports and on the sender's own, with the GRH (the
 * group's MGID) in front of the payload, but not the sending QP, not a
 * QP that is not attached, not a member of another partition (the test
 * script gives vhca0_vf2 P_Key 0x8002 only); the kernel's rules for
 * attach and detach (UD only, ff00::/8 GIDs, multicast LIDs, attach twice
 * is one attachment, detach of what is not attached, no destroy while
 * attached); the per-group limit; a context's teardown detaches its QPs.
 *
 * usage: mcast_test [all | TEST...] | --list
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>

#include "../common.h"
#include "verbs_helpers.h"

TEST_COUNTERS;

#define QKEY 0x11111111u
#define MLID 0xc001
#define GRH_LEN 40
#define MSG_LEN 256
#define RECVS 8

static const uint8_t mgid[16] = { 0xff, 0x12, 0x40, 0x1b, 0xff, 0xff, 0, 0,
				  0, 0, 0, 0, 0, 0, 0, 1 };

struct port {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	uint8_t *buf;
};

struct ud {
	struct port *p;
	struct ibv_qp *qp;
	uint8_t *buf;		/* its own slice of the port's buffer */
};

static void port_open(struct port *p, const char *name)
{
	p->ctx = open_by_name(name);
	REQUIRE(p->ctx, "open %s: %s", name, strerror(errno));
	p->pd = ibv_alloc_pd(p->ctx);
	p->cq = ibv_create_cq(p->ctx, 1024, NULL, NULL, 0);
	p->buf = calloc(80, RECVS * (GRH_LEN + MSG_LEN));
	REQUIRE(p->pd && p->cq && p->buf, "pd/cq");
	p->mr = ibv_reg_mr(p->pd, p->buf, 80 * RECVS * (GRH_LEN + MSG_LEN),
			   IBV_ACCESS_LOCAL_WRITE);
	REQUIRE(p->mr, "reg_mr");
}

static void port_close(struct port *p)
{
	CHECK(!ibv_dereg_mr(p->mr) && !ibv_destroy_cq(p->cq) &&
		      !ibv_dealloc_pd(p->pd) && !ibv_close_device(p->ctx),
	      "close");
	free(p->buf);
}

/* A UD QP at RTS with RECVS receives posted, the @slot-th of its port. */
static void ud_open(struct ud *u, struct port *p, int slot)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_UD, .send_cq = p->cq, .recv_cq = p->cq,
		.cap = { .max_send_wr = 8, .max_recv_wr = RECVS,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qkey = QKEY };

	u->p = p;
	u->buf = p->buf + (size_t)slot * RECVS * (GRH_LEN + MSG_LEN);
	u->qp = ibv_create_qp(p->pd, &qa);
	REQUIRE(u->qp, "create_qp: %s", strerror(errno));
	REQUIRE(!ibv_modify_qp(u->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
						  IBV_QP_PORT | IBV_QP_QKEY),
		"INIT");
	a.qp_state = IBV_QPS_RTR;
	REQUIRE(!ibv_modify_qp(u->qp, &a, IBV_QP_STATE), "RTR");
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 1;
	REQUIRE(!ibv_modify_qp(u->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN),
		"RTS");
	for (int i = 0; i < RECVS; i++) {
		struct ibv_sge sge = {
			(uintptr_t)(u->buf + i * (GRH_LEN + MSG_LEN)),
			GRH_LEN + MSG_LEN, p->mr->lkey
		};
		struct ibv_recv_wr wr = { .wr_id = (uint64_t)i, .sg_list = &sge,
					  .num_sge = 1 },
				   *bad;

		REQUIRE(!ibv_post_recv(u->qp, &wr, &bad), "post_recv");
	}
}

static union ibv_gid group(void)
{
	union ibv_gid g;

	memcpy(g.raw, mgid, 16);
	return g;
}

/* One datagram from @u to the group, completed. */
static void send_group(struct ud *u, uint8_t fill)
{
	struct ibv_ah_attr aa = {
		.dlid = MLID, .port_num = 1, .is_global = 1,
		.grh = { .dgid = group(), .hop_limit = 1 },
	};
	struct ibv_ah *ah = ibv_create_ah(u->p->pd, &aa);
	struct ibv_sge sge;
	struct ibv_send_wr wr, *bad;
	uint64_t deadline = now_ms() + 5000;
	uint8_t *msg = u->p->buf + 79 * RECVS * (GRH_LEN + MSG_LEN);
	struct ibv_wc wc = { .status = IBV_WC_GENERAL_ERR };

	REQUIRE(ah, "create_ah: %s", strerror(errno));
	memset(msg, fill, MSG_LEN);
	sge = (struct ibv_sge){ (uintptr_t)msg, MSG_LEN, u->p->mr->lkey };
	wr = (struct ibv_send_wr){
		.wr_id = 999, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
		.wr.ud = { .ah = ah, .remote_qpn = 0xffffff,
			   .remote_qkey = QKEY },
	};
	REQUIRE(!ibv_post_send(u->qp, &wr, &bad), "post_send");
	while (now_ms() < deadline) {
		if (ibv_poll_cq(u->p->cq, 1, &wc) == 1 && wc.wr_id == 999)
			break;
	}
	CHECK(wc.wr_id == 999 && wc.status == IBV_WC_SUCCESS, "send: %s",
	      ibv_wc_status_str(wc.status));
	CHECK(!ibv_destroy_ah(ah), "destroy_ah");
}

/*
 * Receives within @ms on @p's CQ: how many for @qp (each a GRH and a
 * payload, datagram_ok() checks them); others are counted in *other.
 */
static int received(struct port *p, const struct ibv_qp *qp, int ms,
		    int *other)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;
	struct ibv_wc wc;
	int n = 0;

	while (now_ms() < deadline) {
		if (ibv_poll_cq(p->cq, 1, &wc) != 1)
			continue;
		if (wc.qp_num != qp->qp_num) {
			++*other;
			continue;
		}
		n++;
		CHECK(wc.status == IBV_WC_SUCCESS && wc.opcode == IBV_WC_RECV &&
			      (wc.wc_flags & IBV_WC_GRH) &&
			      wc.byte_len == GRH_LEN + MSG_LEN,
		      "receive: %s, flags %x, %u bytes",
		      ibv_wc_status_str(wc.status), wc.wc_flags, wc.byte_len);
	}
	return n;
}

/*
 * The buffer of receive @wr_id of @u: the MGID as the GRH's DGID (bytes
 * 24..39, IBTA 8.3), then @fill.
 */
static bool datagram_ok(const struct ud *u, uint64_t wr_id, uint8_t fill)
{
	const uint8_t *b = u->buf + wr_id * (GRH_LEN + MSG_LEN);

	if (memcmp(b + 24, mgid, 16))
		return false;
	for (int i = 0; i < MSG_LEN; i++)
		if (b[GRH_LEN + i] != fill)
			return false;
	return true;
}

static void t_deliver(void)
{
	struct port a, b, c;
	struct ud sender, same_port, member, stranger, foreign;
	union ibv_gid g = group();
	int other = 0;

	port_open(&a, "vhca0_vf0");
	port_open(&b, "vhca0_vf1");
	port_open(&c, "vhca0_vf2");	/* P_Key 0x8002: another partition */
	ud_open(&sender, &a, 0);
	ud_open(&same_port, &a, 1);
	ud_open(&member, &b, 0);
	ud_open(&stranger, &b, 1);
	ud_open(&foreign, &c, 0);
	CHECK(!ibv_attach_mcast(sender.qp, &g, MLID), "attach the sender");
	CHECK(!ibv_attach_mcast(same_port.qp, &g, MLID), "attach same port");
	CHECK(!ibv_attach_mcast(member.qp, &g, MLID), "attach member");
	CHECK(!ibv_attach_mcast(member.qp, &g, MLID), "attach member twice");
	CHECK(!ibv_attach_mcast(foreign.qp, &g, MLID), "attach foreign");

	send_group(&sender, 0x5a);
	CHECK(received(&b, member.qp, 300, &other) == 1 && !other,
	      "the member got it once (others %d)", other);
	CHECK(datagram_ok(&member, 0, 0x5a), "its GRH and payload");
	other = 0;
	CHECK(received(&a, same_port.qp, 100, &other) == 1 && !other,
	      "a QP on the sender's port got it, the sender did not (%d)",
	      other);
	CHECK(datagram_ok(&same_port, 0, 0x5a), "same port: GRH and payload");
	other = 0;
	CHECK(!received(&c, foreign.qp, 100, &other) && !other,
	      "the member of another partition got nothing");

	/* Detached: no more; detach again is EINVAL. */
	CHECK(!ibv_detach_mcast(member.qp, &g, MLID), "detach");
	CHECK(ibv_detach_mcast(member.qp, &g, MLID) == EINVAL,
	      "detach of what is not attached");
	CHECK(ibv_destroy_qp(same_port.qp) == EBUSY,
	      "destroy of an attached QP");
	send_group(&sender, 0x6b);
	other = 0;
	CHECK(!received(&b, member.qp, 200, &other) && !other,
	      "a detached QP gets nothing");
	other = 0;
	CHECK(received(&a, same_port.qp, 100, &other) == 1,
	      "the other member still does");
	CHECK(datagram_ok(&same_port, 1, 0x6b), "its second datagram");
	CHECK(!ibv_detach_mcast(same_port.qp, &g, MLID) &&
		      !ibv_destroy_qp(same_port.qp),
	      "detach, then destroy");
	CHECK(!ibv_detach_mcast(sender.qp, &g, MLID) &&
		      !ibv_detach_mcast(foreign.qp, &g, MLID),
	      "detach the rest");
	for (struct ud *u = &sender; u; u = u == &sender ? &member :
					 u == &member ? &stranger :
					 u == &stranger ? &foreign : NULL)
		CHECK(!ibv_destroy_qp(u->qp), "destroy_qp");
	port_close(&a);
	port_close(&b);
	port_close(&c);
}

static void t_refused(void)
{
	struct ibv_qp_init_attr qa = { .qp_type = IBV_QPT_RC,
				       .cap = { .max_send_wr = 1,
						.max_recv_wr = 1,
						.max_send_sge = 1,
						.max_recv_sge = 1 } };
	union ibv_gid g = group(), unicast = { .raw = { 0xfe, 0x80 } };
	struct ibv_qp *rc;
	struct port a;
	struct ud u;

	port_open(&a, "vhca0_vf0");
	ud_open(&u, &a, 0);
	qa.send_cq = qa.recv_cq = a.cq;
	rc = ibv_create_qp(a.pd, &qa);
	REQUIRE(rc, "create RC QP");
	CHECK(ibv_attach_mcast(rc, &g, MLID) == EINVAL, "an RC QP");
	CHECK(ibv_attach_mcast(u.qp, &unicast, MLID) == EINVAL,
	      "a unicast GID");
	CHECK(ibv_attach_mcast(u.qp, &g, 0x1234) == EINVAL, "a unicast LID");
	CHECK(ibv_attach_mcast(u.qp, &g, 0xffff) == EINVAL,
	      "the permissive LID");
	CHECK(!ibv_destroy_qp(rc) && !ibv_destroy_qp(u.qp), "destroy");
	port_close(&a);
}

/*
 * max_mcast_qp_attach QPs a group; a context that goes away with its QPs
 * attached gives its attachments back (the next one gets them all).
 */
static void t_limits(void)
{
	struct ibv_device_attr attr;
	union ibv_gid g = group();
	struct ibv_qp *qps[65];
	struct port a;
	int n;

	for (int round = 0; round < 2; round++) {
		port_open(&a, "vhca0_vf1");
		REQUIRE(!ibv_query_device(a.ctx, &attr), "query_device");
		CHECK(attr.max_mcast_qp_attach == 64 &&
			      attr.max_total_mcast_qp_attach == 256 &&
			      attr.max_mcast_grp == 256,
		      "limits %d %d %d", attr.max_mcast_grp,
		      attr.max_mcast_qp_attach, attr.max_total_mcast_qp_attach);
		for (n = 0; n < 65; n++) {
			struct ibv_qp_init_attr qa = {
				.qp_type = IBV_QPT_UD, .send_cq = a.cq,
				.recv_cq = a.cq,
				.cap = { .max_send_wr = 1, .max_recv_wr = 1,
					 .max_send_sge = 1,
					 .max_recv_sge = 1 },
			};

			qps[n] = ibv_create_qp(a.pd, &qa);
			REQUIRE(qps[n], "create_qp %d", n);
			if (ibv_attach_mcast(qps[n], &g, MLID))
				break;
		}
		CHECK(n == 64, "round %d: %d QPs attached to one group", round,
		      n);
		/* Closed with 64 attachments: the device detaches them. */
		ibv_destroy_qp(qps[n < 65 ? n : 64]);
		CHECK(!ibv_close_device(a.ctx), "close with QPs attached");
		free(a.buf);
	}
}

/*
 * The attack: VF 1 fills a group with its max_mcast_qp_attach QPs.  VF 0
 * must still join it and get the group's datagrams, as on hardware where
 * each HCA's limit is its own.
 */
static void t_crowded(void)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	union ibv_gid g = group();
	struct ibv_qp *filler[65];
	struct port a, b;
	struct ud sender, member;
	int n, other = 0;

	port_open(&a, "vhca0_vf0");
	port_open(&b, "vhca0_vf1");
	qa.send_cq = qa.recv_cq = b.cq;
	for (n = 0; n < 65; n++) {
		filler[n] = ibv_create_qp(b.pd, &qa);
		REQUIRE(filler[n], "create_qp %d", n);
		if (ibv_attach_mcast(filler[n], &g, MLID))
			break;
	}
	CHECK(n == 64, "VF 1 attached %d QPs to the group", n);
	ud_open(&sender, &b, 0);
	ud_open(&member, &a, 0);
	CHECK(!ibv_attach_mcast(member.qp, &g, MLID),
	      "VF 0 joins the group VF 1 filled: %s", strerror(errno));
	send_group(&sender, 0x3c);
	CHECK(received(&a, member.qp, 300, &other) == 1 && !other,
	      "VF 0's member got the datagram once (others %d)", other);
	CHECK(datagram_ok(&member, 0, 0x3c), "its GRH and payload");
	CHECK(!ibv_detach_mcast(member.qp, &g, MLID) &&
		      !ibv_destroy_qp(member.qp) && !ibv_destroy_qp(sender.qp),
	      "VF 0 leaves");
	for (int i = 0; i <= n && i < 65; i++) {
		if (i < n)
			CHECK(!ibv_detach_mcast(filler[i], &g, MLID), "detach %d",
			      i);
		CHECK(!ibv_destroy_qp(filler[i]), "destroy %d", i);
	}
	port_close(&a);
	port_close(&b);
}

static const struct subtest tests[] = {
	{ "deliver", t_deliver },
	{ "refused", t_refused },
	{ "limits", t_limits },
	{ "crowded", t_crowded },
};

int main(int argc, char **argv)
{
	return subtests_main(tests, sizeof(tests) / sizeof(tests[0]), argc,
			     argv);
}
