// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * async_events DEV NCTX: opens DEV NCTX times (NCTX separate contexts,
 * each with its own async event fd) and then obeys one command per line
 * on stdin, answering "ok" or "FAIL: why" (and exiting 1) on stdout:
 *
 *   event TYPE         every context's next async event is TYPE
 *                      (PORT_ERR, PORT_ACTIVE, GID_CHANGE, PKEY_CHANGE)
 *                      for port 1, within 20 s; it is acked
 *   quiet MS           no context has an event within MS milliseconds
 *   state DOWN|ACTIVE  ibv_query_port(1).state on every context
 *   pkey INDEX 0xP     ibv_query_pkey(1, INDEX) on every context
 *   gid0 GID           ibv_query_gid(1, 0), "fe80:0000:...:xxxx"
 *   node_guid G        ibv_query_device().node_guid, "xxxx:xxxx:xxxx:xxxx"
 *   shrink             context 0's async pipe shrinks to one page
 *   drain              reads (and acks) every queued event of each
 *                      context; answers "ok N0 N1 ..." (events per
 *                      context), each of them a port event of port 1
 *   quit               closes everything, exit 0
 *
 * The test script drives the device (vhcactl, sysfs) between commands;
 * events arriving before their "event" line simply wait in the pipe.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>

#define MAX_CONTEXTS 8
#define EVENT_TIMEOUT_MS 20000

static struct ibv_context *ctxs[MAX_CONTEXTS];
static int num_ctxs;

__attribute__((noreturn, format(printf, 1, 2)))
static void answer_fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static void answer_ok(void)
{
	printf("ok\n");
	fflush(stdout);
}

static const struct {
	const char *name;
	enum ibv_event_type type;
} event_names[] = {
	{ "PORT_ERR", IBV_EVENT_PORT_ERR },
	{ "PORT_ACTIVE", IBV_EVENT_PORT_ACTIVE },
	{ "GID_CHANGE", IBV_EVENT_GID_CHANGE },
	{ "PKEY_CHANGE", IBV_EVENT_PKEY_CHANGE },
};

static bool is_port_event(enum ibv_event_type type)
{
	for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]);
	     i++)
		if (event_names[i].type == type)
			return true;
	return false;
}

/* 1: readable, 0: nothing within timeout_ms. */
static int wait_readable(struct ibv_context *ctx, int timeout_ms)
{
	struct pollfd pfd = { .fd = ctx->async_fd, .events = POLLIN };
	int ret;

	do {
		ret = poll(&pfd, 1, timeout_ms);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0)
		answer_fail("poll: %s", strerror(errno));
	return ret;
}

static void get_event(int i, struct ibv_async_event *ev)
{
	if (ibv_get_async_event(ctxs[i], ev))
		answer_fail("context %d: ibv_get_async_event: %s", i,
			    strerror(errno));
	ibv_ack_async_event(ev);
}

static void cmd_event(const char *name)
{
	enum ibv_event_type want = 0;
	bool known = false;

	for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]);
	     i++)
		if (!strcmp(event_names[i].name, name)) {
			want = event_names[i].type;
			known = true;
		}
	if (!known)
		answer_fail("unknown event %s", name);
	for (int i = 0; i < num_ctxs; i++) {
		struct ibv_async_event ev;

		if (!wait_readable(ctxs[i], EVENT_TIMEOUT_MS))
			answer_fail("context %d: no %s within %d ms", i, name,
				    EVENT_TIMEOUT_MS);
		get_event(i, &ev);
		if (ev.event_type != want)
			answer_fail("context %d: got %s, want %s", i,
				    ibv_event_type_str(ev.event_type),
				    ibv_event_type_str(want));
		if (ev.element.port_num != 1)
			answer_fail("context %d: %s for port %d", i, name,
				    ev.element.port_num);
	}
	answer_ok();
}

static void cmd_quiet(int ms)
{
	for (int i = 0; i < num_ctxs; i++) {
		/* The window is shared: later contexts get what is left. */
		if (wait_readable(ctxs[i], i ? 0 : ms)) {
			struct ibv_async_event ev;

			get_event(i, &ev);
			answer_fail("context %d: unexpected %s", i,
				    ibv_event_type_str(ev.event_type));
		}
	}
	answer_ok();
}

static void cmd_state(const char *want)
{
	enum ibv_port_state state;

	if (!strcmp(want, "DOWN"))
		state = IBV_PORT_DOWN;
	else if (!strcmp(want, "ACTIVE"))
		state = IBV_PORT_ACTIVE;
	else
		answer_fail("unknown state %s", want);
	for (int i = 0; i < num_ctxs; i++) {
		struct ibv_port_attr attr;

		if (ibv_query_port(ctxs[i], 1, &attr))
			answer_fail("ibv_query_port: %s", strerror(errno));
		if (attr.state != state)
			answer_fail("context %d: port state %s, want %s", i,
				    ibv_port_state_str(attr.state), want);
	}
	answer_ok();
}

static void cmd_pkey(int index, unsigned int want)
{
	for (int i = 0; i < num_ctxs; i++) {
		__be16 pkey;

		if (ibv_query_pkey(ctxs[i], 1, index, &pkey))
			answer_fail("ibv_query_pkey %d: %s", index,
				    strerror(errno));
		if (ntohs(pkey) != want)
			answer_fail("context %d: pkey[%d] 0x%04x, want 0x%04x",
				    i, index, ntohs(pkey), want);
	}
	answer_ok();
}

static void cmd_gid0(const char *want)
{
	for (int i = 0; i < num_ctxs; i++) {
		union ibv_gid gid;
		char text[40];
		int len = 0;

		if (ibv_query_gid(ctxs[i], 1, 0, &gid))
			answer_fail("ibv_query_gid: %s", strerror(errno));
		for (int b = 0; b < 16; b += 2)
			len += snprintf(text + len, sizeof(text) - len,
					"%s%02x%02x", b ? ":" : "", gid.raw[b],
					gid.raw[b + 1]);
		if (strcmp(text, want))
			answer_fail("context %d: gid0 %s, want %s", i, text,
				    want);
	}
	answer_ok();
}

static void cmd_node_guid(const char *want)
{
	for (int i = 0; i < num_ctxs; i++) {
		struct ibv_device_attr attr;
		uint64_t guid;
		char text[24];

		if (ibv_query_device(ctxs[i], &attr))
			answer_fail("ibv_query_device: %s", strerror(errno));
		guid = be64toh(attr.node_guid);
		snprintf(text, sizeof(text), "%04x:%04x:%04x:%04x",
			 (unsigned int)(guid >> 48) & 0xffff,
			 (unsigned int)(guid >> 32) & 0xffff,
			 (unsigned int)(guid >> 16) & 0xffff,
			 (unsigned int)guid & 0xffff);
		if (strcmp(text, want))
			answer_fail("context %d: node_guid %s, want %s", i,
				    text, want);
	}
	answer_ok();
}

static void cmd_shrink(void)
{
	/* One page: 256 records of struct ib_uverbs_async_event_desc. */
	if (fcntl(ctxs[0]->async_fd, F_SETPIPE_SZ, 4096) < 0)
		answer_fail("F_SETPIPE_SZ: %s", strerror(errno));
	answer_ok();
}

static void cmd_drain(void)
{
	printf("ok");
	for (int i = 0; i < num_ctxs; i++) {
		unsigned int n = 0;

		while (wait_readable(ctxs[i], 0)) {
			struct ibv_async_event ev;

			get_event(i, &ev);
			if (!is_port_event(ev.event_type) ||
			    ev.element.port_num != 1)
				answer_fail("context %d: drained %s port %d", i,
					    ibv_event_type_str(ev.event_type),
					    ev.element.port_num);
			n++;
		}
		printf(" %u", n);
	}
	printf("\n");
	fflush(stdout);
}

static int open_contexts(const char *name, int n)
{
	struct ibv_device **list;
	int num;

	list = ibv_get_device_list(&num);
	for (int i = 0; list && i < num; i++) {
		if (strcmp(ibv_get_device_name(list[i]), name))
			continue;
		while (num_ctxs < n) {
			ctxs[num_ctxs] = ibv_open_device(list[i]);
			if (!ctxs[num_ctxs])
				break;
			num_ctxs++;
		}
	}
	if (list)
		ibv_free_device_list(list);
	return num_ctxs == n ? 0 : -1;
}

int main(int argc, char **argv)
{
	char line[256];
	int n;

	if (argc != 3 || (n = atoi(argv[2])) < 1 || n > MAX_CONTEXTS) {
		fprintf(stderr, "usage: async_events DEV NCTX (1..%d)\n",
			MAX_CONTEXTS);
		return 2;
	}
	if (open_contexts(argv[1], n)) {
		printf("FAIL: cannot open %s %d times\n", argv[1], n);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		char word[32], arg[64];
		unsigned int value;
		int fields, index;

		fields = sscanf(line, "%31s %63s", word, arg);
		if (fields < 1)
			continue;
		if (!strcmp(word, "quit"))
			break;
		if (!strcmp(word, "shrink"))
			cmd_shrink();
		else if (!strcmp(word, "drain"))
			cmd_drain();
		else if (fields < 2)
			answer_fail("command %s needs an argument", word);
		else if (!strcmp(word, "event"))
			cmd_event(arg);
		else if (!strcmp(word, "quiet"))
			cmd_quiet(atoi(arg));
		else if (!strcmp(word, "state"))
			cmd_state(arg);
		else if (!strcmp(word, "gid0"))
			cmd_gid0(arg);
		else if (!strcmp(word, "node_guid"))
			cmd_node_guid(arg);
		else if (!strcmp(word, "pkey") &&
			 sscanf(line, "%*s %d 0x%x", &index, &value) == 2)
			cmd_pkey(index, value);
		else
			answer_fail("bad command: %s", line);
	}
	for (int i = 0; i < num_ctxs; i++)
		ibv_close_device(ctxs[i]);
	return 0;
}
