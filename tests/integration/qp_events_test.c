// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Async events of QPs and their destroy, as the kernel's uverbs orders
 * them (IBTA o11-5.2.5 for LAST_WQE_REACHED): a QP on an SRQ that enters
 * the error state reports IBV_EVENT_QP_LAST_WQE_REACHED once, for that
 * QP; ibv_destroy_qp returns whether the application read it (and acked)
 * or not; and no event of a destroyed QP reaches the application later,
 * neither as its own nor as that of a new QP under the same handle or at
 * the same address (libibverbs would ack it on the wrong QP, whose
 * destroy then waits for ever).  In a VM the device's events come through
 * the VF's event ring, which is where that went wrong.
 *
 * usage: qp_events_test [all | TEST...] | --list
 * Environment: VHCA_DEV_A names the device (default vhca0_vf0).
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>

#include "../common.h"
#include "verbs_helpers.h"

TEST_COUNTERS;

struct dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_srq *srq;
};

static void dev_open(struct dev *d)
{
	const char *name = getenv("VHCA_DEV_A") ? getenv("VHCA_DEV_A") :
						  "vhca0_vf0";
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 16, .max_sge = 1 } };

	d->ctx = open_by_name(name);
	REQUIRE(d->ctx, "open %s: %s", name, strerror(errno));
	d->pd = ibv_alloc_pd(d->ctx);
	d->cq = ibv_create_cq(d->ctx, 16, NULL, NULL, 0);
	d->srq = d->pd ? ibv_create_srq(d->pd, &sa) : NULL;
	REQUIRE(d->pd && d->cq && d->srq, "pd/cq/srq: %s", strerror(errno));
}

static void dev_close(struct dev *d)
{
	CHECK(!ibv_destroy_srq(d->srq), "destroy_srq");
	CHECK(!ibv_destroy_cq(d->cq), "destroy_cq");
	CHECK(!ibv_dealloc_pd(d->pd), "dealloc_pd");
	CHECK(!ibv_close_device(d->ctx), "close_device");
}

/* An RC QP on the SRQ, taken to INIT and then to the error state. */
static struct ibv_qp *qp_to_error(struct dev *d)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC, .send_cq = d->cq, .recv_cq = d->cq,
		.srq = d->srq,
		.cap = { .max_send_wr = 4, .max_send_sge = 1 },
	};
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1 };
	struct ibv_qp *qp = ibv_create_qp(d->pd, &qa);

	REQUIRE(qp, "create_qp: %s", strerror(errno));
	REQUIRE(!ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					       IBV_QP_PORT |
					       IBV_QP_ACCESS_FLAGS),
		"INIT");
	a.qp_state = IBV_QPS_ERR;
	REQUIRE(!ibv_modify_qp(qp, &a, IBV_QP_STATE), "ERR");
	return qp;
}

/* The next async event within @ms, acked; false if none came. */
static bool next_event(struct ibv_context *ctx, int ms,
		       struct ibv_async_event *out)
{
	struct pollfd p = { .fd = ctx->async_fd, .events = POLLIN };
	struct ibv_async_event ev;

	if (poll(&p, 1, ms) != 1)
		return false;
	REQUIRE(!ibv_get_async_event(ctx, &ev), "get_async_event");
	*out = ev;
	ibv_ack_async_event(&ev);
	return true;
}

/* The event comes, once, for that QP; destroy returns after its ack. */
static void t_read(void)
{
	struct ibv_async_event ev;
	struct ibv_qp *qp;
	struct dev d;

	dev_open(&d);
	qp = qp_to_error(&d);
	CHECK(next_event(d.ctx, 5000, &ev) &&
		      ev.event_type == IBV_EVENT_QP_LAST_WQE_REACHED &&
		      ev.element.qp == qp,
	      "LAST_WQE_REACHED for the QP");
	CHECK(!next_event(d.ctx, 300, &ev), "a second event: %s",
	      ibv_event_type_str(ev.event_type));
	CHECK(!ibv_destroy_qp(qp), "destroy_qp");
	dev_close(&d);
}

/*
 * Destroyed before its event is read, again and again (the next QP gets
 * the handle and, from malloc, the address): every destroy returns, and
 * no event reaches the application afterwards.
 */
static void t_unread(void)
{
	struct ibv_async_event ev;
	unsigned int late = 0;
	struct dev d;

	dev_open(&d);
	for (int i = 0; i < 50; i++) {
		struct ibv_qp *qp = qp_to_error(&d);

		CHECK(!ibv_destroy_qp(qp), "destroy_qp %d", i);
		while (next_event(d.ctx, i % 10 ? 0 : 100, &ev))
			late++;
	}
	while (next_event(d.ctx, 300, &ev))
		late++;
	CHECK(!late, "%u events of destroyed QPs reached the application",
	      late);
	dev_close(&d);
}

static const struct subtest tests[] = {
	{ "read", t_read },
	{ "unread", t_unread },
};

int main(int argc, char **argv)
{
	return subtests_main(tests, sizeof(tests) / sizeof(tests[0]), argc,
			     argv);
}
