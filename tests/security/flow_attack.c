// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * RC flow control against a receiver that stops consuming
 * (docs/decisions.md, "Lossless RC, credit-based").
 *
 *   flow_attack SINK SENDER PEER FILE RELEASE
 *
 * The sink (on SINK, the attacker, a process of its own: the stalled
 * fault holds its address space) registers an MR over a MAP_PRIVATE
 * mapping of FILE, on a filesystem whose reads wait until RELEASE exists
 * (stall_fs): the first WRITE into it stalls the sink's turn, so its
 * inbox stops draining.  A clean tenant's context on SENDER has two RC
 * QPs: one sends 64 KiB WRITEs to the sink, far beyond the sink's credit,
 * so that QP holds a request and waits on the sink; the other ping-pongs
 * with PEER.  What must hold:
 *   - the ping-pong goes on while the sink is stalled (flow control
 *     stops one QP, never its context or its other QPs);
 *   - the QP towards the sink fails with retry exceeded (its ACK timer
 *     runs while it waits), its other WRITEs flushed; so does a second
 *     QP whose only WRITE (1 MiB) waits with its first packet held (no
 *     packet of it answered, nothing else to time);
 *   - destroying that QP while it is on the sink's list of waiting
 *     senders, then letting the sink drain, is safe (the sanitizer build
 *     sees a use after free if the sink wakes a QP that is gone);
 *   - the ping-pong still works afterwards.
 * Exit status: 0 contained, 1 the defence failed, 2 a broken set-up.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "attack.h"

#define WRITES 32
#define WRITE_LEN (64u << 10)
#define BIG_LEN (1u << 20)		/* one WRITE of 16 packets */

/* Round trips of @x with @y for @ms; the slowest in *worst_us, or -1. */
static long ping_pong(struct rc_ep *x, struct rc_ep *y, int ms,
		      uint64_t *worst_us)
{
	uint64_t end = now_us() + (uint64_t)ms * 1000;
	long n = 0;

	*worst_us = 0;
	while (now_us() < end) {
		uint64_t t0 = now_us(), t;

		if (post_recv(y, 1, 64) || post_recv(x, 2, 64) ||
		    post_send(x, 3, 64))
			die("flow: post: %s", strerror(errno));
		if (!wait_ok(y, 2000, "flow: peer receive") ||
		    post_send(y, 4, 64) || !wait_ok(x, 2000, "flow: send") ||
		    !wait_ok(y, 2000, "flow: answer sent") ||
		    !wait_ok(x, 2000, "flow: answer"))
			return -1;
		t = now_us() - t0;
		if (t > *worst_us)
			*worst_us = t;
		n++;
	}
	return n;
}

/* The sink: its end of the pair, until RELEASE lets its turn go on. */
static int sink_main(const char *dev, const char *file, int rd, int wr)
{
	struct ibv_context *cs = must_open(dev);
	struct rc_ep sink = { 0 }, sink2 = { 0 };
	struct ep_info me[2], peer[2];
	struct ibv_pd *pd;
	struct stat st;
	char done;
	void *map;
	int fd;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || (size_t)st.st_size < BIG_LEN)
		die("flow: %s: %s", file, strerror(errno));
	map = mmap(NULL, BIG_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		die("flow: mmap: %s", strerror(errno));
	pd = ibv_alloc_pd(cs);
	rc_ep_create(&sink, cs, pd);
	rc_ep_reg(&sink, map, BIG_LEN);	/* never touched here */
	rc_ep_create(&sink2, cs, pd);
	rc_ep_reg(&sink2, map, BIG_LEN);
	me[0] = rc_ep_info(&sink);
	me[1] = rc_ep_info(&sink2);
	if (write(wr, me, sizeof(me)) != sizeof(me) ||
	    read(rd, peer, sizeof(peer)) != sizeof(peer))
		die("flow: sink: pipe");
	rc_ep_connect(&sink, &peer[0]);
	rc_ep_connect(&sink2, &peer[1]);
	if (write(wr, "c", 1) != 1)
		die("flow: sink: pipe");
	/* Until the sender is done (EOF). */
	while (read(rd, &done, 1) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	struct ibv_context *cx, *cp;
	struct rc_ep to_sink = { 0 }, to_sink2 = { 0 }, x = { 0 }, peer = { 0 };
	struct ep_info isink[2], ito[2], ix, ipeer;
	struct ibv_wc wc;
	int down[2], up[2], bad = 0, errors = 0, flushed = 0, other = 0;
	uint64_t worst;
	struct ibv_pd *pd;
	pid_t child;
	char c;
	long n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 6)
		die("usage: flow_attack SINK SENDER PEER FILE RELEASE");
	if (pipe(down) || pipe(up))
		die("flow: pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		die("flow: fork: %s", strerror(errno));
	if (!child) {
		close(down[1]);
		close(up[0]);
		_exit(sink_main(argv[1], argv[4], down[0], up[1]));
	}
	close(down[0]);
	close(up[1]);
	cx = must_open(argv[2]);
	cp = must_open(argv[3]);
	pd = ibv_alloc_pd(cx);
	rc_ep_create(&to_sink, cx, pd);
	rc_ep_reg(&to_sink, calloc(1, WRITE_LEN), WRITE_LEN);
	rc_ep_create(&to_sink2, cx, pd);
	rc_ep_reg(&to_sink2, calloc(1, BIG_LEN), BIG_LEN);
	rc_ep_create(&x, cx, pd);
	rc_ep_reg(&x, calloc(1, 4096), 4096);
	rc_ep_create(&peer, cp, ibv_alloc_pd(cp));
	rc_ep_reg(&peer, calloc(1, 4096), 4096);
	ito[0] = rc_ep_info(&to_sink);
	ito[1] = rc_ep_info(&to_sink2);
	ix = rc_ep_info(&x);
	ipeer = rc_ep_info(&peer);
	if (read(up[0], isink, sizeof(isink)) != sizeof(isink) ||
	    write(down[1], ito, sizeof(ito)) != sizeof(ito) ||
	    read(up[0], &c, 1) != 1)
		die("flow: the sink did not start");
	rc_ep_connect(&to_sink, &isink[0]);
	rc_ep_connect(&to_sink2, &isink[1]);
	rc_ep_connect(&x, &ipeer);
	rc_ep_connect(&peer, &ix);

	/* 2 MiB towards a sink whose first page fault stalls its turn. */
	for (int i = 0; i < WRITES; i++)
		if (rc_ep_post(&to_sink, IBV_WR_RDMA_WRITE, (uint64_t)i, 0,
			       WRITE_LEN, isink[0].addr, isink[0].rkey))
			die("flow: post WRITE %d: %s", i, strerror(errno));
	/* After those fill the sink's credit: held from its first packet. */
	usleep(100000);
	if (rc_ep_post(&to_sink2, IBV_WR_RDMA_WRITE, 1, 0, BIG_LEN,
		       isink[1].addr, isink[1].rkey))
		die("flow: post the 1 MiB WRITE: %s", strerror(errno));
	n = ping_pong(&x, &peer, 2000, &worst);
	printf("flow: beside the stalled sink: %ld round trips, slowest %" PRIu64
	       " us\n", n, worst);
	if (n < 20 || worst > 500000)
		bad = 1;

	/* Its QP fails (retry exceeded), the rest flushed. */
	for (int i = 0; i < WRITES; i++) {
		if (!rc_ep_wait(&to_sink, &wc, 10000)) {
			printf("flow: WRITE %d towards the sink: no completion in 10 s\n",
			       i);
			bad = 1;
			break;
		}
		if (wc.status == IBV_WC_RETRY_EXC_ERR)
			errors++;
		else if (wc.status == IBV_WC_WR_FLUSH_ERR)
			flushed++;
		else
			other++;
	}
	printf("flow: towards the sink: %d retry exceeded, %d flushed, %d other\n",
	       errors, flushed, other);
	if (errors != 1 || other)
		bad = 1;
	if (!rc_ep_wait(&to_sink2, &wc, 10000)) {
		printf("flow: the held 1 MiB WRITE: no completion in 10 s\n");
		bad = 1;
	} else {
		printf("flow: the held 1 MiB WRITE: %s\n",
		       ibv_wc_status_str(wc.status));
		bad |= wc.status != IBV_WC_RETRY_EXC_ERR;
	}

	/* Gone while (perhaps) listed at the sink; then the sink drains. */
	if (ibv_destroy_qp(to_sink.qp) || ibv_destroy_qp(to_sink2.qp))
		die("flow: destroy_qp: %s", strerror(errno));
	close(open(argv[5], O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	usleep(300000);
	n = ping_pong(&x, &peer, 500, &worst);
	printf("flow: after the sink drained: %ld round trips, slowest %" PRIu64
	       " us\n", n, worst);
	if (n < 5)
		bad = 1;
	close(down[1]);		/* the sink may go */
	waitpid(child, NULL, 0);
	printf("flow: %s\n", bad ? "FAILED" : "contained");
	return bad;
}
