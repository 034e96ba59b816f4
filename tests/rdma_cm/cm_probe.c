// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Connection outcomes through unmodified librdmacm (test_rdma_cm.sh):
 *
 *   cm_probe reject-server ADDR PORT   listen; take one request, check its
 *                                      private data is "hello", reject it
 *                                      with "no-thanks"
 *   cm_probe connect ADDR PORT         connect with "hello"; print the
 *                                      event it ends in, its status and
 *                                      the peer's private data (as text)
 *   cm_probe resolve ADDR              resolve ADDR; print the event
 *
 * Output lines are "event NAME status N data TEXT"; exit 0 when the
 * librdmacm calls themselves behaved (the script judges the outcome).
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rdma/rdma_cma.h>

#define TIMEOUT_MS 2000

static struct rdma_event_channel *ch;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void get_addr(const char *host, const char *port, struct sockaddr *sa)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST }, *ai;

	if (getaddrinfo(host, port, &hints, &ai))
		die("getaddrinfo");
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
}

static struct rdma_cm_event *next_event(void)
{
	struct rdma_cm_event *ev;

	if (rdma_get_cm_event(ch, &ev))
		die("rdma_get_cm_event");
	return ev;
}

static void print_event(const struct rdma_cm_event *ev)
{
	char data[64] = "";
	const struct rdma_conn_param *p = &ev->param.conn;

	if (p->private_data && p->private_data_len)
		snprintf(data, sizeof(data), "%.*s",
			 (int)strnlen(p->private_data, p->private_data_len),
			 (const char *)p->private_data);
	printf("event %s status %d data %s\n", rdma_event_str(ev->event),
	       ev->status, data[0] ? data : "-");
	fflush(stdout);
}

/* A QP so that connect/accept have something to name. */
static void make_qp(struct rdma_cm_id *id)
{
	struct ibv_qp_init_attr attr = {
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};

	if (rdma_create_qp(id, NULL, &attr))
		die("rdma_create_qp");
}

static int reject_server(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	struct rdma_cm_id *l;
	struct rdma_cm_event *ev;
	const char *want = "hello";
	int ok;

	get_addr(host, port, (struct sockaddr *)&ss);
	if (rdma_create_id(ch, &l, NULL, RDMA_PS_TCP) ||
	    rdma_bind_addr(l, (struct sockaddr *)&ss) || rdma_listen(l, 4))
		die("listen");
	printf("listening\n");
	fflush(stdout);
	ev = next_event();
	print_event(ev);
	if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST)
		return 1;
	ok = ev->param.conn.private_data_len >= strlen(want) &&
	     !memcmp(ev->param.conn.private_data, want, strlen(want));
	if (rdma_reject(ev->id, "no-thanks", 10))
		die("rdma_reject");
	rdma_destroy_id(ev->id);
	rdma_ack_cm_event(ev);
	rdma_destroy_id(l);
	return ok ? 0 : 1;
}

/* Waits for @want; prints whatever ended the wait. */
static struct rdma_cm_event *expect(enum rdma_cm_event_type want)
{
	struct rdma_cm_event *ev = next_event();

	if (ev->event != want) {
		print_event(ev);
		exit(0);
	}
	return ev;
}

static int connect_client(const char *host, const char *port)
{
	struct rdma_conn_param param = {
		.private_data = "hello", .private_data_len = 6,
		.retry_count = 7, .rnr_retry_count = 7,
	};
	struct sockaddr_storage ss;
	struct rdma_cm_id *id;
	struct rdma_cm_event *ev;

	get_addr(host, port, (struct sockaddr *)&ss);
	if (rdma_create_id(ch, &id, NULL, RDMA_PS_TCP) ||
	    rdma_resolve_addr(id, NULL, (struct sockaddr *)&ss, TIMEOUT_MS))
		die("rdma_resolve_addr");
	rdma_ack_cm_event(expect(RDMA_CM_EVENT_ADDR_RESOLVED));
	if (rdma_resolve_route(id, TIMEOUT_MS))
		die("rdma_resolve_route");
	rdma_ack_cm_event(expect(RDMA_CM_EVENT_ROUTE_RESOLVED));
	make_qp(id);
	if (rdma_connect(id, &param))
		die("rdma_connect");
	ev = next_event();
	print_event(ev);
	rdma_ack_cm_event(ev);
	rdma_destroy_qp(id);
	rdma_destroy_id(id);
	return 0;
}

static int resolve(const char *host)
{
	struct sockaddr_storage ss;
	struct rdma_cm_id *id;
	struct rdma_cm_event *ev;

	get_addr(host, "1", (struct sockaddr *)&ss);
	if (rdma_create_id(ch, &id, NULL, RDMA_PS_TCP))
		die("rdma_create_id");
	if (rdma_resolve_addr(id, NULL, (struct sockaddr *)&ss, TIMEOUT_MS)) {
		printf("resolve_addr failed: %m\n");
		return 0;
	}
	ev = next_event();
	print_event(ev);
	rdma_ack_cm_event(ev);
	rdma_destroy_id(id);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	ch = rdma_create_event_channel();
	if (!ch)
		die("rdma_create_event_channel");
	if (!strcmp(argv[1], "reject-server") && argc == 4)
		return reject_server(argv[2], argv[3]);
	if (!strcmp(argv[1], "connect") && argc == 4)
		return connect_client(argv[2], argv[3]);
	if (!strcmp(argv[1], "resolve"))
		return resolve(argv[2]);
	return 2;
}
