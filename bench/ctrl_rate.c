// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ctrl_rate: control-path rates of two vhca VFs through libibverbs.
 *
 *   ctrl_rate [options] DEV_A DEV_B      e.g. vhca0_vf0 vhca0_vf1
 *
 * Measures, each for a fixed duration (or a fixed count):
 *   qp      RC QP create, RESET->INIT->RTR->RTS against a QP on the other
 *           device (its QPN, the LID of ibv_query_port, random PSNs, the
 *           smaller active MTU), destroy; counted per QP (a pair is 2)
 *   mr4k    ibv_reg_mr + ibv_dereg_mr of 4 KiB: the next page of a
 *           freshly mapped pool each time ("fresh"), and one page again
 *           and again ("same")
 *   mr1g    ibv_reg_mr + ibv_dereg_mr of 1 GiB of anonymous memory, never
 *           touched ("untouched") and every page written ("touched")
 *   cmd     ibv_alloc_pd + ibv_dealloc_pd: the cost of one command that
 *           does almost nothing, the floor of every other verb here
 *
 * Output: one line per metric, "metric value unit", for awk.  Any failing
 * verb is printed with its errno and the exit status is 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define PAGE_4K 4096UL
#define SIZE_1G (1UL << 30)
/* Fresh 4 KiB pages come from pools of this many, remapped when used up. */
#define POOL_PAGES 8192UL

enum { RUN_QP = 1, RUN_MR4K = 2, RUN_MR1G = 4, RUN_CMD = 8, RUN_ALL = 15 };

struct opts {
	double duration;	/* seconds per measurement */
	uint64_t count;		/* if not 0: operations per measurement */
	unsigned int warmup;	/* untimed operations first */
	unsigned int depth;	/* send/recv queue depth of each QP */
	unsigned int which;	/* RUN_* */
};

struct side {
	const char *name;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_port_attr port;
};

static const char *prog = "ctrl_rate";

static void die(const char *verb, int err)
{
	fprintf(stderr, "%s: %s failed: errno %d (%s)\n", prog, verb, err,
		strerror(err));
	exit(1);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: %s [options] DEV_A DEV_B\n"
		"Control-path rates against two vhca VFs (e.g. vhca0_vf0 vhca0_vf1).\n"
		"\n"
		"  -d, --duration SEC  time per measurement (default 2)\n"
		"  -n, --count N       operations per measurement instead of a time\n"
		"                      (QPs for qp, registrations for mr*)\n"
		"  -w, --warmup N      untimed operations first (default 16)\n"
		"  -q, --depth N       send and receive queue depth (default 128)\n"
		"  -o, --only LIST     comma-separated subset of qp,mr4k,mr1g,cmd\n"
		"  -h, --help          this text\n"
		"\n"
		"Output, one line each, \"metric value unit\":\n"
		"  qp_rate qp/s, qp_us us/qp, qp_create_us, qp_modify_us (RESET to\n"
		"  RTS), qp_destroy_us, qp_init_us, qp_rtr_us, qp_rts_us (the\n"
		"  modify's steps) (us/qp), qp_count qp;\n"
		"  mr4k_fresh_rate, mr4k_same_rate, mr1g_untouched_rate,\n"
		"  mr1g_touched_rate (reg+dereg pairs/s), each also as _us (us per\n"
		"  reg+dereg), _reg_us, _dereg_us and _count;\n"
		"  cmd_us us/cmd (half an alloc_pd + dealloc_pd), cmd_count cmd.\n"
		"Errors: the failing verb and its errno on stderr, exit status 1.\n",
		prog);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether a measurement that began at @start has done enough after @done. */
static bool finished(const struct opts *o, uint64_t start, uint64_t done)
{
	if (o->count)
		return done >= o->count;
	return (double)(now_ns() - start) >= o->duration * 1e9;
}

static void print_metric(const char *prefix, const char *metric, double value,
			 const char *unit)
{
	printf("%s%s %.3f %s\n", prefix, metric, value, unit);
}

static void print_count(const char *prefix, const char *metric, uint64_t n,
			const char *unit)
{
	printf("%s%s %" PRIu64 " %s\n", prefix, metric, n, unit);
}

static void open_side(struct side *s, const char *name)
{
	struct ibv_device **list;
	int n = 0, err;

	s->name = name;
	list = ibv_get_device_list(&n);
	if (!list)
		die("ibv_get_device_list", errno);
	for (int i = 0; i < n && !s->ctx; i++) {
		if (strcmp(ibv_get_device_name(list[i]), name))
			continue;
		s->ctx = ibv_open_device(list[i]);
		if (!s->ctx)
			die("ibv_open_device", errno);
	}
	ibv_free_device_list(list);
	if (!s->ctx) {
		fprintf(stderr, "%s: no device %s\n", prog, name);
		exit(1);
	}
	err = ibv_query_port(s->ctx, 1, &s->port);
	if (err)
		die("ibv_query_port", err);
	s->pd = ibv_alloc_pd(s->ctx);
	if (!s->pd)
		die("ibv_alloc_pd", errno);
	s->cq = ibv_create_cq(s->ctx, 256, NULL, NULL, 0);
	if (!s->cq)
		die("ibv_create_cq", errno);
}

static void close_side(struct side *s)
{
	int err;

	if ((err = ibv_destroy_cq(s->cq)))
		die("ibv_destroy_cq", err);
	if ((err = ibv_dealloc_pd(s->pd)))
		die("ibv_dealloc_pd", err);
	if ((err = ibv_close_device(s->ctx)))
		die("ibv_close_device", err);
}

/* ---- QP create + connect + destroy ------------------------------------ */

static struct ibv_qp *qp_create(const struct side *s, unsigned int depth)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = s->cq,
		.recv_cq = s->cq,
		.cap = { .max_send_wr = depth, .max_recv_wr = depth,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};
	struct ibv_qp *qp = ibv_create_qp(s->pd, &attr);

	if (!qp)
		die("ibv_create_qp", errno);
	return qp;
}

static uint32_t random_psn(void)
{
	return (uint32_t)lrand48() & 0xffffff;
}

/*
 * RESET -> INIT -> RTR -> RTS of @qp (whose first send PSN is @my_psn)
 * towards QP @dqpn at @dlid, which starts sending at @peer_psn.
 */
static void qp_connect(struct ibv_qp *qp, uint32_t my_psn, uint32_t dqpn,
		       uint16_t dlid, uint32_t peer_psn, enum ibv_mtu mtu,
		       uint64_t step[3])
{
	uint64_t t0 = now_ns(), t1, t2;
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_LOCAL_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_WRITE,
	};
	int err;

	err = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					   IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	if (err)
		die("ibv_modify_qp(INIT)", err);
	t1 = now_ns();
	a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_RTR,
		.path_mtu = mtu,
		.dest_qp_num = dqpn,
		.rq_psn = peer_psn,
		.max_dest_rd_atomic = 1,
		.min_rnr_timer = 12,
		.ah_attr = { .dlid = dlid, .sl = 0, .src_path_bits = 0,
			     .is_global = 0, .port_num = 1 },
	};
	err = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV |
					   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					   IBV_QP_RQ_PSN |
					   IBV_QP_MAX_DEST_RD_ATOMIC |
					   IBV_QP_MIN_RNR_TIMER);
	if (err)
		die("ibv_modify_qp(RTR)", err);
	t2 = now_ns();
	a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_RTS,
		.sq_psn = my_psn,
		.timeout = 14,
		.retry_cnt = 7,
		.rnr_retry = 7,
		.max_rd_atomic = 1,
	};
	err = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
					   IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					   IBV_QP_RNR_RETRY |
					   IBV_QP_MAX_QP_RD_ATOMIC);
	if (err)
		die("ibv_modify_qp(RTS)", err);
	step[0] += t1 - t0;
	step[1] += t2 - t1;
	step[2] += now_ns() - t2;
}

/*
 * Phase times of one pair, in ns, added to @t: create, modify, destroy,
 * then the modify's three steps (INIT, RTR, RTS).
 */
static void qp_pair(const struct side *a, const struct side *b,
		    const struct opts *o, enum ibv_mtu mtu, uint64_t t[6])
{
	uint32_t psn_a = random_psn(), psn_b = random_psn();
	struct ibv_qp *qa, *qb;
	uint64_t t0, t1, t2, t3;
	int err;

	t0 = now_ns();
	qa = qp_create(a, o->depth);
	qb = qp_create(b, o->depth);
	t1 = now_ns();
	qp_connect(qa, psn_a, qb->qp_num, b->port.lid, psn_b, mtu, t + 3);
	qp_connect(qb, psn_b, qa->qp_num, a->port.lid, psn_a, mtu, t + 3);
	t2 = now_ns();
	if ((err = ibv_destroy_qp(qa)) || (err = ibv_destroy_qp(qb)))
		die("ibv_destroy_qp", err);
	t3 = now_ns();
	t[0] += t1 - t0;
	t[1] += t2 - t1;
	t[2] += t3 - t2;
}

static void bench_qp(const struct side *a, const struct side *b,
		     const struct opts *o)
{
	enum ibv_mtu mtu = a->port.active_mtu < b->port.active_mtu ?
				   a->port.active_mtu :
				   b->port.active_mtu;
	uint64_t t[6] = { 0 }, qps = 0, start, total;

	for (unsigned int i = 0; i < (o->warmup + 1) / 2; i++)
		qp_pair(a, b, o, mtu, t);
	memset(t, 0, sizeof(t));
	start = now_ns();
	while (!finished(o, start, qps)) {
		qp_pair(a, b, o, mtu, t);
		qps += 2;
	}
	total = now_ns() - start;
	print_metric("", "qp_rate", (double)qps * 1e9 / (double)total, "qp/s");
	print_metric("", "qp_us", (double)total / 1e3 / (double)qps, "us/qp");
	print_metric("", "qp_create_us", (double)t[0] / 1e3 / (double)qps,
		     "us/qp");
	print_metric("", "qp_modify_us", (double)t[1] / 1e3 / (double)qps,
		     "us/qp");
	print_metric("", "qp_destroy_us", (double)t[2] / 1e3 / (double)qps,
		     "us/qp");
	print_metric("", "qp_init_us", (double)t[3] / 1e3 / (double)qps,
		     "us/qp");
	print_metric("", "qp_rtr_us", (double)t[4] / 1e3 / (double)qps,
		     "us/qp");
	print_metric("", "qp_rts_us", (double)t[5] / 1e3 / (double)qps,
		     "us/qp");
	print_count("", "qp_count", qps, "qp");
}

/* ---- MR registration ---------------------------------------------------- */

static const int mr_access = IBV_ACCESS_LOCAL_WRITE |
			     IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;

static void *map_anon(size_t len, bool touch)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap", errno);
	if (touch)
		for (size_t off = 0; off < len; off += PAGE_4K)
			((volatile char *)p)[off] = 1;
	return p;
}

static void unmap(void *p, size_t len)
{
	if (munmap(p, len))
		die("munmap", errno);
}

/* One ibv_reg_mr + ibv_dereg_mr of @len at @addr; the two times in ns. */
static void reg_dereg(const struct side *s, void *addr, size_t len,
		      uint64_t t[2])
{
	uint64_t t0, t1, t2;
	struct ibv_mr *mr;
	int err;

	t0 = now_ns();
	mr = ibv_reg_mr(s->pd, addr, len, mr_access);
	if (!mr)
		die("ibv_reg_mr", errno);
	t1 = now_ns();
	if ((err = ibv_dereg_mr(mr)))
		die("ibv_dereg_mr", err);
	t2 = now_ns();
	t[0] += t1 - t0;
	t[1] += t2 - t1;
}

static void report_mr(const char *prefix, uint64_t n, const uint64_t t[2])
{
	double total = (double)(t[0] + t[1]);

	print_metric(prefix, "_rate", (double)n * 1e9 / total, "reg/s");
	print_metric(prefix, "_us", total / 1e3 / (double)n, "us/reg");
	print_metric(prefix, "_reg_us", (double)t[0] / 1e3 / (double)n,
		     "us/reg");
	print_metric(prefix, "_dereg_us", (double)t[1] / 1e3 / (double)n,
		     "us/reg");
	print_count(prefix, "_count", n, "reg");
}

/*
 * 4 KiB, a fresh page each time: the pages of a pool (written once, so
 * each is a real page) are registered in turn; a used-up pool is unmapped
 * and a new one mapped, outside the timed calls.  Only the verbs are
 * timed, so the rate is of reg + dereg alone.
 */
static void bench_mr4k_fresh(const struct side *s, const struct opts *o)
{
	size_t pool_len = POOL_PAGES * PAGE_4K, next = 0;
	char *pool = map_anon(pool_len, true);
	uint64_t t[2] = { 0 }, n = 0, start;

	for (unsigned int i = 0; i < o->warmup; i++)
		reg_dereg(s, pool + (next++) * PAGE_4K, PAGE_4K, t);
	memset(t, 0, sizeof(t));
	start = now_ns();
	while (!finished(o, start, n)) {
		if (next == POOL_PAGES) {
			unmap(pool, pool_len);
			pool = map_anon(pool_len, true);
			next = 0;
		}
		reg_dereg(s, pool + (next++) * PAGE_4K, PAGE_4K, t);
		n++;
	}
	unmap(pool, pool_len);
	report_mr("mr4k_fresh", n, t);
}

/* One buffer of @len (written first if @touch), again and again. */
static void bench_mr_same(const struct side *s, const struct opts *o,
			  const char *prefix, size_t len, bool touch)
{
	void *buf = map_anon(len, touch);
	uint64_t t[2] = { 0 }, n = 0, start;

	for (unsigned int i = 0; i < o->warmup; i++)
		reg_dereg(s, buf, len, t);
	memset(t, 0, sizeof(t));
	start = now_ns();
	while (!finished(o, start, n)) {
		reg_dereg(s, buf, len, t);
		n++;
	}
	unmap(buf, len);
	report_mr(prefix, n, t);
}

/* ---- the floor: a command that does next to nothing ----------------- */

static void alloc_dealloc(const struct side *s)
{
	struct ibv_pd *pd = ibv_alloc_pd(s->ctx);
	int err;

	if (!pd)
		die("ibv_alloc_pd", errno);
	if ((err = ibv_dealloc_pd(pd)))
		die("ibv_dealloc_pd", err);
}

static void bench_cmd(const struct side *s, const struct opts *o)
{
	uint64_t n = 0, start, total;

	for (unsigned int i = 0; i < (o->warmup + 1) / 2; i++)
		alloc_dealloc(s);
	start = now_ns();
	while (!finished(o, start, n)) {
		alloc_dealloc(s);
		n += 2;
	}
	total = now_ns() - start;
	print_metric("", "cmd_us", (double)total / 1e3 / (double)n, "us/cmd");
	print_count("", "cmd_count", n, "cmd");
}

/* ---- main ----------------------------------------------------------- */

static unsigned int parse_only(const char *list)
{
	unsigned int which = 0;
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		die("strdup", errno);
	for (char *w = strtok_r(copy, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		if (!strcmp(w, "qp"))
			which |= RUN_QP;
		else if (!strcmp(w, "mr4k"))
			which |= RUN_MR4K;
		else if (!strcmp(w, "mr1g"))
			which |= RUN_MR1G;
		else if (!strcmp(w, "cmd"))
			which |= RUN_CMD;
		else {
			fprintf(stderr, "%s: unknown measurement '%s'\n", prog,
				w);
			exit(2);
		}
	}
	free(copy);
	return which;
}

/* A number in 0..@max, or a message and exit status 2. */
static uint64_t parse_u64(const char *arg, const char *what, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || v > max) {
		fprintf(stderr, "%s: bad %s '%s'\n", prog, what, arg);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "depth", required_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .duration = 2.0, .warmup = 16, .depth = 128,
			  .which = RUN_ALL };
	struct side a = { 0 }, b = { 0 };
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "d:n:w:q:o:h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd':
			o.duration = strtod(optarg, &end);
			if (*end || !(o.duration > 0)) {
				fprintf(stderr, "%s: bad duration '%s'\n", prog,
					optarg);
				return 2;
			}
			break;
		case 'n':
			o.count = parse_u64(optarg, "count", UINT64_MAX);
			break;
		case 'w':
			o.warmup = (unsigned int)parse_u64(optarg, "warmup", UINT_MAX);
			break;
		case 'q':
			o.depth = (unsigned int)parse_u64(optarg, "depth", UINT_MAX);
			break;
		case 'o':
			o.which = parse_only(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	srand48((long)now_ns());
	open_side(&a, argv[optind]);
	open_side(&b, argv[optind + 1]);
	if (o.which & RUN_CMD)
		bench_cmd(&a, &o);
	if (o.which & RUN_QP)
		bench_qp(&a, &b, &o);
	if (o.which & RUN_MR4K) {
		bench_mr4k_fresh(&a, &o);
		bench_mr_same(&a, &o, "mr4k_same", PAGE_4K, true);
	}
	if (o.which & RUN_MR1G) {
		bench_mr_same(&a, &o, "mr1g_untouched", SIZE_1G, false);
		bench_mr_same(&a, &o, "mr1g_touched", SIZE_1G, true);
	}
	close_side(&b);
	close_side(&a);
	return 0;
}
