// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A hostile VM, played by fake_vm.h without QEMU (issue 10, "Bad input
 * and faults"); test_sec_vm.sh runs the modes.  Every check names the
 * exact answer it wants (an errno, a completion status, a QP state, a
 * byte count), prints "FAIL: ..." when it gets another, and the exit
 * status says whether any did.
 *
 *   vm_attacks garbage RUN_DIR VF_A VF_B SEED
 *       garbage in VM A's mailbox: lengths, unknown ops, truncated
 *       bodies, trailing words, context ids never opened and VM B's,
 *       random bytes, a second writer racing the mailbox; -EINVAL each,
 *       and nothing changed (QUERY_FUNCTION, the status line)
 *   vm_attacks memory RUN_DIR VF VHCAD_PID
 *       memory a VM may not name: vhcad's fds (MEM_FD), pages past its
 *       RAM, unaligned, list pages outside RAM, inconsistent counts; the
 *       pages-held budget (REG_MR until -ENOMEM) and the mapping budget
 *       (fragmented CREATE_CQ until -ENOMEM), and the device after both
 *   vm_attacks datapath RUN_DIR VF_A VF_B DIR
 *       RC QPs of VM A towards VM B and towards a host process
 *       (host_target, through DIR): WQEs with SGEs and remote addresses
 *       outside the MRs, keys of nothing or of others, doorbells beyond
 *       the queues; each the exact error completion and the QP in ERR;
 *       canaries in A's and B's RAM unchanged byte for byte
 *   vm_attacks host_target DEV DIR
 *       the host side of datapath: QPs towards VM A and a canary MR
 *       between two unregistered guards, checked once DIR/attacks.done
 *   vm_attacks vm_peer RUN_DIR VF DIR
 *       a VM whose QP carries RDMA WRITEs to and from host_peer until it
 *       is killed ("vm_peer: traffic" once it flows)
 *   vm_attacks host_peer DEV DIR
 *       the host side of vm_peer: WRITEs into the VM's MR until one
 *       fails; 0 if it fails IBV_WC_RETRY_EXC_ERR within 5 s
 *   vm_attacks clean_pair RUN_DIR VF_A VF_B
 *       two VMs, a WRITE and a READ between them that must succeed
 *   vm_attacks gone_watch RUN_DIR VF
 *       attached with a QP; once the BAR says VHCA_BAR_GONE (vhcad
 *       stopped), a command must get no answer
 *   vm_attacks hold RUN_DIR VF
 *       attached, until killed ("hold: attached")
 *   vm_attacks attach RUN_DIR VF
 *       attaches and detaches: prints "attach: 0" or "attach: -EBUSY"...
 *   vm_attacks attach_bad RUN_DIR VF NUM_VFS
 *       ATTACH_VM requests that must be refused, each with its errno
 *   vm_attacks write_file PATH TEXT
 *       writes TEXT to PATH: "write_file: written", or where it failed
 *       and the errno ("write_file: open: EACCES")
 *
 * Exit status: 0 every check held, 1 one did not, 2 a broken set-up.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "attack.h"
#include "device/vm.h"
#include "fake_vm.h"

#define RAM_SIZE (64ull << 20)
#define CANARY_ZONE (RAM_SIZE / 2)	/* the upper half: never a queue */
#define ALL_ACCESS                                                           \
	(IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |      \
	 IB_UVERBS_ACCESS_REMOTE_READ | IB_UVERBS_ACCESS_REMOTE_ATOMIC)

static int checks, failures;

/* "0", "-EINVAL", "no answer", ...: @e as the checks name it. */
static const char *name_of(int e, char *buf, size_t n)
{
	const char *s;

	switch (e) {
	case 0:
		return "0";
	case FAKE_VM_NO_ANSWER:
		return "no answer";
	case FAKE_VM_GONE:
		return "BAR gone";
	case FAKE_VM_BAD_ANSWER:
		return "a malformed answer";
	default:
		s = e < 0 ? strerrorname_np(-e) : NULL;
		if (s)
			snprintf(buf, n, "-%s", s);
		else
			snprintf(buf, n, "%d", e);
		return buf;
	}
}

static bool expect(const char *what, int got, int want)
{
	char g[32], w[32];

	checks++;
	if (got == want)
		return true;
	failures++;
	printf("FAIL: %s: %s, expected %s\n", what, name_of(got, g, sizeof(g)),
	       name_of(want, w, sizeof(w)));
	return false;
}

static bool expect_true(const char *what, bool ok)
{
	checks++;
	if (!ok) {
		failures++;
		printf("FAIL: %s\n", what);
	}
	return ok;
}

static int finish(const char *mode)
{
	printf("%s: %d checks, %d failed\n", mode, checks, failures);
	return failures ? 1 : 0;
}

static void must(int ret, const char *what)
{
	char b[32];

	if (ret)
		die("set-up: %s: %s", what, name_of(ret, b, sizeof(b)));
}

static void start(struct fake_vm *vm, const char *run_dir, unsigned int vf)
{
	char what[64];

	snprintf(what, sizeof(what), "attach VF %u", vf);
	must(fake_vm_start(vm, run_dir, vf, RAM_SIZE), what);
}

static uint64_t seed_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	seed_state ^= seed_state << 13;
	seed_state ^= seed_state >> 7;
	seed_state ^= seed_state << 17;
	return seed_state;
}

/* The status line of @dev in $SYSFS_PATH/module/vhca/status. */
static void status_line(const char *dev, char *buf, size_t n)
{
	char path[4096], line[512];
	size_t len = strlen(dev);
	FILE *f;

	snprintf(path, sizeof(path), "%s/module/vhca/status",
		 getenv("SYSFS_PATH") ? getenv("SYSFS_PATH") : "/sys");
	buf[0] = 0;
	f = fopen(path, "r");
	if (!f)
		die("cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, dev, len) && line[len] == ' ')
			snprintf(buf, n, "%s", line);
	fclose(f);
}

/* ---- 1. garbage in the mailbox ------------------------------------------------ */

/* The command bodies of include/vhca/devcmd.h, as a VM must send them. */
static const struct opdesc {
	uint16_t op, in_size;
	bool context;
} ops[] = {
	{ VHCA_DEVCMD_QUERY_FUNCTION, 0, false },
	{ VHCA_DEVCMD_QUERY_COUNTERS, 0, false },
	{ VHCA_DEVCMD_OPEN_CONTEXT, sizeof(struct vhca_devcmd_open_context),
	  false },
	{ VHCA_DEVCMD_CLOSE_CONTEXT, 0, true },
	{ VHCA_DEVCMD_ALLOC_PD, 0, true },
	{ VHCA_DEVCMD_DEALLOC_PD, sizeof(struct vhca_devcmd_handle), true },
	{ VHCA_DEVCMD_REG_MR, sizeof(struct vhca_devcmd_reg_mr), true },
	{ VHCA_DEVCMD_DEREG_MR, sizeof(struct vhca_devcmd_handle), true },
	{ VHCA_DEVCMD_CREATE_CQ, sizeof(struct vhca_devcmd_create_cq), true },
	{ VHCA_DEVCMD_RESIZE_CQ, sizeof(struct vhca_devcmd_resize_cq), true },
	{ VHCA_DEVCMD_DESTROY_CQ, sizeof(struct vhca_devcmd_handle), true },
	{ VHCA_DEVCMD_CREATE_QP, sizeof(struct vhca_devcmd_create_qp), true },
	{ VHCA_DEVCMD_MODIFY_QP, sizeof(struct ib_uverbs_modify_qp), true },
	{ VHCA_DEVCMD_QUERY_QP, sizeof(struct vhca_devcmd_query_qp), true },
	{ VHCA_DEVCMD_DESTROY_QP, sizeof(struct vhca_devcmd_handle), true },
	{ VHCA_DEVCMD_CREATE_SRQ, sizeof(struct vhca_devcmd_create_srq), true },
	{ VHCA_DEVCMD_MODIFY_SRQ, sizeof(struct ib_uverbs_modify_srq), true },
	{ VHCA_DEVCMD_QUERY_SRQ, sizeof(struct vhca_devcmd_handle), true },
	{ VHCA_DEVCMD_DESTROY_SRQ, sizeof(struct vhca_devcmd_handle), true },
};

#define NUM_OPS (sizeof(ops) / sizeof(ops[0]))

static const struct opdesc *op_desc(uint16_t op)
{
	for (size_t i = 0; i < NUM_OPS; i++)
		if (ops[i].op == op)
			return &ops[i];
	return NULL;
}

/*
 * @len bytes into the mailbox with in_len @in_len: the answer's status,
 * or FAKE_VM_*; a malformed answer (a positive status, a body with an
 * error, a length that is not the status and its body) is
 * FAKE_VM_BAD_ANSWER.
 */
static int mb(struct fake_vm *vm, const void *bytes, size_t len,
	      uint32_t in_len)
{
	uint64_t answer[VHCA_MAILBOX_OUT_MAX / 8];
	const struct vhca_devcmd_status *st = (const void *)answer;
	size_t n = 0;
	int ret = fake_vm_raw(vm, bytes, len, in_len, answer, sizeof(answer),
			      &n);

	if (ret)
		return ret;
	if (n < sizeof(*st) || n != sizeof(*st) + st->out_len ||
	    st->status > 0 || (st->status && st->out_len))
		return FAKE_VM_BAD_ANSWER;
	return st->status;
}

/* A command of @op on @context with @body_len bytes of @body. */
static int cmd(struct fake_vm *vm, uint16_t op, uint32_t context,
	       const void *body, size_t body_len)
{
	uint8_t buf[65536 + 16];
	struct vhca_devcmd_hdr *h = (void *)buf;

	*h = (struct vhca_devcmd_hdr){ .op = op,
				       .in_len = (uint16_t)body_len,
				       .context = context };
	if (body_len)
		memcpy(h + 1, body, body_len);
	return mb(vm, buf, sizeof(*h) + body_len,
		  (uint32_t)(sizeof(*h) + body_len));
}

struct scribbler {
	struct fake_vm *vm;
	atomic_bool stop;
	uint64_t writes;
};

/* A second vCPU of the VM, rewriting the mailbox all the time. */
static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	struct vhca_bar_mailbox *m = fake_vm_mailbox(s->vm);
	uint64_t x = 0x1234567;

	while (!atomic_load(&s->stop)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		((volatile uint64_t *)m->in)[x % 16] = x;
		((volatile uint32_t *)&m->in_len)[0] =
			(x >> 32) & 1 ? (uint32_t)x : (uint32_t)(x % 64);
		s->writes++;
	}
	return NULL;
}

static int garbage(const char *run_dir, unsigned int va, unsigned int vb,
		   uint64_t seed)
{
	struct vhca_devcmd_function f0, f, fb0;
	struct vhca_devcmd_hdr q = { .op = VHCA_DEVCMD_QUERY_FUNCTION };
	struct fake_ctx a1, a2, b[3];
	struct fake_vm A, B;
	uint8_t body[1024];
	char line0[512], line1[512], what[160];
	uint32_t hb, pd;
	static const uint16_t unknown[] = { 0x00, 0x0e, 0x0f, 0x14, 0x23,
					    0x34, 0x44, 0x45, 0x7fff, 0xffff };
	static const uint32_t never[] = { 0, 2, 3, 4, 1000, 0x7fffffff,
					  0xffffffff };
	unsigned int random_cmds = 4000;

	seed_state = seed ? seed : 1;
	printf("garbage: seed %" PRIu64 " (VHCA_FUZZ_SEED replays it)\n", seed);
	start(&A, run_dir, va);
	start(&B, run_dir, vb);
	must(fake_vm_query_function(&A, &f0), "QUERY_FUNCTION");
	must(fake_vm_query_function(&B, &fb0), "QUERY_FUNCTION of B");
	expect_true("QUERY_FUNCTION names the VF",
		    !strcmp(f0.name, A.name) && f0.is_vf && f0.vf_index == va);
	/* B has contexts 1 to 3 and a PD in its third; A has context 1. */
	for (int i = 0; i < 3; i++)
		must(fake_ctx_open(&B, &b[i], false), "B's contexts");
	must(fake_pd_alloc(&B, &b[2], &hb), "B's PD");
	must(fake_ctx_open(&A, &a1, false), "A's context");
	expect_true("A's first context is number 1", a1.id == 1);
	status_line(A.name, line0, sizeof(line0));

	/* Lengths. */
	expect("in_len VHCA_MAILBOX_IN_MAX + 1",
	       mb(&A, &q, sizeof(q), VHCA_MAILBOX_IN_MAX + 1), -EINVAL);
	expect("in_len 0x80000000", mb(&A, &q, sizeof(q), 0x80000000u),
	       -EINVAL);
	expect("in_len 0xffffffff", mb(&A, &q, sizeof(q), 0xffffffffu),
	       -EINVAL);
	expect("the same QUERY_FUNCTION with in_len 8", mb(&A, &q, sizeof(q), 8),
	       0);
	for (uint32_t n = 0; n < sizeof(q); n++) {
		snprintf(what, sizeof(what), "in_len %u (shorter than a header)",
			 n);
		expect(what, mb(&A, &q, sizeof(q), n), -EINVAL);
	}
	q.in_len = 8;
	expect("header in_len 8, mailbox in_len 8", mb(&A, &q, sizeof(q), 8),
	       -EINVAL);
	q.in_len = 0xffff;
	expect("header in_len 0xffff, mailbox in_len 8",
	       mb(&A, &q, sizeof(q), 8), -EINVAL);
	q.in_len = 0;
	memset(body, 0, sizeof(body));
	memcpy(body, &q, sizeof(q));
	expect("header in_len 0, mailbox in_len 16", mb(&A, body, 16, 16),
	       -EINVAL);

	/* Ops the device does not have. */
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		snprintf(what, sizeof(what), "unknown op %#x", unknown[i]);
		expect(what, cmd(&A, unknown[i], a1.id, NULL, 0), -EINVAL);
		snprintf(what, sizeof(what), "unknown op %#x with a body",
			 unknown[i]);
		memset(body, 0, sizeof(body));
		expect(what, cmd(&A, unknown[i], a1.id, body, 64), -EINVAL);
	}

	/* Truncated bodies, and bodies beyond the op's not in words. */
	memset(body, 0, sizeof(body));
	for (size_t i = 0; i < NUM_OPS; i++) {
		const struct opdesc *d = &ops[i];
		uint32_t ctx = d->context ? a1.id : 0;
		uint16_t cut[3] = { 0, (uint16_t)(d->in_size & ~7u) - 8,
				    (uint16_t)(d->in_size - 1) };

		if (!d->in_size)
			continue;
		for (int k = 0; k < 3; k++) {
			if (cut[k] >= d->in_size)
				continue;
			snprintf(what, sizeof(what),
				 "op %#x with %u of its %u body bytes", d->op,
				 cut[k], d->in_size);
			expect(what, cmd(&A, d->op, ctx, body, cut[k]), -EINVAL);
		}
		snprintf(what, sizeof(what), "op %#x with 4 bytes after its body",
			 d->op);
		expect(what, cmd(&A, d->op, ctx, body, d->in_size + 4u),
		       -EINVAL);
	}

	/*
	 * Words after the body are list page addresses: only commands that
	 * name memory have any (docs/prm.md: "a length that does not match
	 * its op" is -EINVAL).  A throwaway context for CLOSE_CONTEXT.
	 */
	must(fake_ctx_open(&A, &a2, false), "A's second context");
	memset(body, 0, sizeof(body));
	expect("QUERY_FUNCTION with a list address",
	       cmd(&A, VHCA_DEVCMD_QUERY_FUNCTION, 0, body, 8), -EINVAL);
	expect("QUERY_COUNTERS with a list address",
	       cmd(&A, VHCA_DEVCMD_QUERY_COUNTERS, 0, body, 8), -EINVAL);
	expect("ALLOC_PD with a list address",
	       cmd(&A, VHCA_DEVCMD_ALLOC_PD, a1.id, body, 8), -EINVAL);
	expect("CLOSE_CONTEXT with a list address",
	       cmd(&A, VHCA_DEVCMD_CLOSE_CONTEXT, a2.id, body, 8), -EINVAL);
	{
		struct vhca_devcmd_open_context oc = { .wake_fd = -1 };

		memcpy(body, &oc, sizeof(oc));
		expect("OPEN_CONTEXT without a data path, with a list address",
		       cmd(&A, VHCA_DEVCMD_OPEN_CONTEXT, 0, body,
			   sizeof(oc) + 8),
		       -EINVAL);
		memset(body, 0, sizeof(body));
	}
	expect("CLOSE_CONTEXT of the throwaway context",
	       cmd(&A, VHCA_DEVCMD_CLOSE_CONTEXT, a2.id, NULL, 0), 0);

	/* Context ids A never opened, some of which B has. */
	for (size_t i = 0; i < NUM_OPS; i++) {
		if (!ops[i].context)
			continue;
		for (size_t k = 0; k < sizeof(never) / sizeof(never[0]); k++) {
			snprintf(what, sizeof(what),
				 "op %#x on context %#x, never opened by A",
				 ops[i].op, never[k]);
			expect(what,
			       cmd(&A, ops[i].op, never[k], body,
				   ops[i].in_size),
			       -EINVAL);
		}
	}
	{
		struct vhca_devcmd_handle h = { .handle = hb };

		expect("A's DEALLOC_PD of B's PD handle on A's context",
		       cmd(&A, VHCA_DEVCMD_DEALLOC_PD, a1.id, &h, sizeof(h)),
		       -EINVAL);
		expect("A's DEALLOC_PD of B's PD on B's context number",
		       cmd(&A, VHCA_DEVCMD_DEALLOC_PD, b[2].id, &h, sizeof(h)),
		       -EINVAL);
		expect("A's CLOSE_CONTEXT of B's context number",
		       cmd(&A, VHCA_DEVCMD_CLOSE_CONTEXT, b[2].id, NULL, 0),
		       -EINVAL);
	}

	/* Random requests; each one's answer is known exactly. */
	for (unsigned int i = 0; i < random_cmds; i++) {
		uint8_t buf[4096];
		struct vhca_devcmd_hdr *h = (void *)buf;
		unsigned int kind = (unsigned int)(rnd() % 4);
		size_t len;
		uint32_t in_len;

		for (size_t k = 0; k < sizeof(buf) / 8; k++)
			((uint64_t *)buf)[k] = rnd();
		if (kind == 0) {
			/* Any bytes, lengths that do not match. */
			len = rnd() % 4 ? rnd() % 128 : rnd() % sizeof(buf);
			if (len >= sizeof(*h) && h->in_len == len - sizeof(*h))
				h->in_len++;
			in_len = (uint32_t)len;
		} else if (kind == 1) {
			/* An op the device does not have, framed right. */
			while (op_desc(h->op))
				h->op = (uint16_t)rnd();
			len = sizeof(*h) + (rnd() % 64) * 8;
			h->in_len = (uint16_t)(len - sizeof(*h));
			in_len = (uint32_t)len;
		} else if (kind == 2) {
			/* A context op on a context A does not have. */
			const struct opdesc *d = &ops[rnd() % NUM_OPS];

			if (!d->context)
				d = &ops[3];
			h->op = d->op;
			while (h->context == a1.id)
				h->context = (uint32_t)rnd();
			len = sizeof(*h) + d->in_size;
			h->in_len = d->in_size;
			in_len = (uint32_t)len;
		} else {
			/* A mailbox length above its maximum. */
			len = 64;
			in_len = VHCA_MAILBOX_IN_MAX + 1 +
				 (uint32_t)(rnd() % (UINT32_MAX -
						     VHCA_MAILBOX_IN_MAX - 1));
		}
		snprintf(what, sizeof(what),
			 "random request %u (kind %u, op %#x, %zu bytes, in_len %u)",
			 i, kind, h->op, len, in_len);
		if (!expect(what, mb(&A, buf, len, in_len), -EINVAL))
			break;
	}

	/* A request that was never made: request == answered. */
	{
		struct vhca_bar_mailbox *m = fake_vm_mailbox(&A);
		uint32_t answered = m->answered;

		memcpy(m->in, &q, sizeof(q));
		m->in_len = sizeof(q);
		atomic_store((_Atomic uint32_t *)&m->request, answered);
		fake_vm_ring_vector(&A, VHCA_VECTOR_MAILBOX);
		usleep(300000);
		expect_true("a doorbell without a new request is not answered",
			    m->answered == answered);
	}

	/* Another vCPU rewrites the mailbox while the driver uses it. */
	{
		struct scribbler s = { .vm = &A };
		pthread_t t;
		unsigned int ok = 0, refused = 0, bad = 0;

		if (pthread_create(&t, NULL, scribble, &s))
			die("thread");
		for (int i = 0; i < 1000; i++) {
			int ret = mb(&A, &q, sizeof(q), sizeof(q));

			if (ret == 0)
				ok++;
			else if (ret < 0)
				refused++;
			else
				bad++;
		}
		atomic_store(&s.stop, true);
		pthread_join(t, NULL);
		printf("garbage: racing writer: %u answered 0, %u refused, %u malformed (%" PRIu64 " scribbles)\n",
		       ok, refused, bad, s.writes);
		expect("malformed answers under a racing writer", (int)bad, 0);
	}

	/* Nothing changed: the function, both VMs' objects, the counts. */
	must(fake_vm_query_function(&A, &f), "QUERY_FUNCTION after");
	expect_true("QUERY_FUNCTION of A unchanged", !memcmp(&f, &f0, sizeof(f)));
	must(fake_vm_query_function(&B, &f), "QUERY_FUNCTION of B after");
	expect_true("QUERY_FUNCTION of B unchanged",
		    !memcmp(&f, &fb0, sizeof(f)));
	status_line(A.name, line1, sizeof(line1));
	if (!expect_true("A's status line unchanged", !strcmp(line0, line1)))
		printf("  before: %s  after:  %s", line0, line1);
	expect("A's context 1 still serves ALLOC_PD",
	       fake_pd_alloc(&A, &a1, &pd), 0);
	expect("and DEALLOC_PD", fake_destroy(&A, &a1, VHCA_DEVCMD_DEALLOC_PD, pd),
	       0);
	expect("B's context 2 still serves ALLOC_PD",
	       fake_pd_alloc(&B, &b[1], &pd), 0);
	expect("B's PD in its context 3 is still there",
	       fake_destroy(&B, &b[2], VHCA_DEVCMD_DEALLOC_PD, hb), 0);
	printf("garbage: %" PRIu64 " requests answered by VM A's VF, %" PRIu64 " by B's\n",
	       A.commands, B.commands);
	fake_vm_stop(&A);
	fake_vm_stop(&B);
	return finish("garbage");
}

/* ---- 2. memory a VM may not name ------------------------------------------------ */

/*
 * vhcad's fds whose link contains @what (at most @max), and how many it
 * has besides sockets (a management connection closes when vhcad sees
 * its end) and FUSE's (worker threads clone /dev/fuse as they start).
 */
static int vhcad_fds(pid_t pid, const char *what, int *found, int max,
		     int *nfound)
{
	char dir[64], path[400], link[256];
	struct dirent *e;
	DIR *d;
	int count = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		die("cannot list %s: %s", dir, strerror(errno));
	*nfound = 0;
	while ((e = readdir(d))) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		count += strcmp(link, "/dev/fuse") && strncmp(link, "socket:", 7);
		if (what && strstr(link, what) && *nfound < max)
			found[(*nfound)++] = atoi(e->d_name);
	}
	closedir(d);
	return count;
}

static long proc_field(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	long v = -1, lines = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		lines++;
		if (key && !strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	}
	fclose(f);
	return key ? v : lines;
}

/* A create's answer: the handle to *@handle, or (NULL) destroyed at once. */
static int created(struct fake_vm *vm, struct fake_ctx *c, int ret,
		   uint32_t h, uint16_t destroy_op, uint32_t *handle)
{
	if (!ret && handle)
		*handle = h;
	else if (!ret)
		fake_destroy(vm, c, destroy_op, h);
	return ret;
}

/* REG_MR with memory @m and @nlist list addresses. */
static int reg_raw(struct fake_vm *vm, struct fake_ctx *c, uint32_t pd,
		   const struct vhca_devcmd_mem *m, uint64_t addr, uint64_t len,
		   const uint64_t *lists, uint32_t nlist, uint32_t *handle)
{
	struct vhca_devcmd_reg_mr in = { .pd_handle = pd, .access = ALL_ACCESS,
					 .addr = addr, .length = len,
					 .iova = addr, .mem = *m };
	struct vhca_devcmd_reg_mr_out out;
	int ret = fake_vm_call(vm, VHCA_DEVCMD_REG_MR, c->id, &in, sizeof(in),
			       lists, nlist, &out, sizeof(out));

	return created(vm, c, ret, out.handle, VHCA_DEVCMD_DEREG_MR, handle);
}

/* CREATE_CQ of 64 entries (ring at 0, doorbell at 4096) in memory @m. */
static int cq_raw(struct fake_vm *vm, struct fake_ctx *c,
		  const struct vhca_devcmd_mem *m, const uint64_t *lists,
		  uint32_t nlist, uint32_t *handle)
{
	struct vhca_devcmd_create_cq in = {
		.cqe = 63, .channel = VHCA_DEVCMD_NO_CHANNEL, .cqe_count = 64,
		.ring_offset = 0, .db_offset = FAKE_VM_PAGE, .mem = *m,
	};
	struct vhca_devcmd_cq_out out;
	int ret = fake_vm_call(vm, VHCA_DEVCMD_CREATE_CQ, c->id, &in, sizeof(in),
			       lists, nlist, &out, sizeof(out));

	return created(vm, c, ret, out.handle, VHCA_DEVCMD_DESTROY_CQ, handle);
}

static struct vhca_devcmd_mem pages_mem(uint64_t size, uint32_t npages,
					uint32_t nlist)
{
	return (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_PAGES,
					 .fd = -1, .size = size,
					 .npages = npages, .nlist = nlist };
}

/* A list page of RAM whose 512 entries are @a and @b, alternating. */
static uint64_t list_page(struct fake_vm *vm, uint64_t a, uint64_t b)
{
	uint64_t gpa = fake_vm_alloc(vm, FAKE_VM_PAGE);
	uint64_t *e = fake_vm_va(vm, gpa);

	for (uint32_t i = 0; i < VHCA_DEVCMD_LIST_ENTRIES; i++)
		e[i] = i % 2 ? b : a;
	return gpa;
}

static int memory(const char *run_dir, unsigned int vf, pid_t vhcad)
{
	const uint32_t ram_pages = (uint32_t)(RAM_SIZE / FAKE_VM_PAGE);
	const uint32_t budget = 2 * ram_pages;	/* pages held: twice the RAM */
	static uint64_t lists[8192];
	struct vhca_devcmd_function f;
	struct fake_vm vm;
	struct fake_ctx c, c2;
	char what[200], line0[512], line1[512];
	int bar_fd[4], ram_fd[4], nbar, nram, fds0, fds1;
	uint32_t pd, mrs[8], cqs[64];
	uint64_t P, L;
	long rss0, rss1, maps0, maps1;
	int nmr, ncq;

	start(&vm, run_dir, vf);
	must(fake_vm_query_function(&vm, &f), "QUERY_FUNCTION");
	must(fake_ctx_open(&vm, &c, true), "a context with a data path");
	must(fake_pd_alloc(&vm, &c, &pd), "a PD");
	P = fake_vm_alloc(&vm, 4 * FAKE_VM_PAGE);	/* pages to name */
	fds0 = vhcad_fds(vhcad, "vhca-vf-bar", bar_fd, 4, &nbar);
	vhcad_fds(vhcad, "fake-vm-ram", ram_fd, 4, &nram);
	if (nbar != 1 || nram != 1)
		die("set-up: vhcad holds %d BARs and %d VM RAMs, not one each",
		    nbar, nram);
	status_line(vm.name, line0, sizeof(line0));

	/* vhcad's own fds, named as MEM_FD: never (only in-process may). */
	{
		int fds[] = { 0, 1, 2, 3, bar_fd[0], ram_fd[0], 1000 };
		struct vhca_devcmd_open_context oc = {
			.flags = VHCA_DEVCMD_CTX_DATA_PATH, .wake_fd = -1,
		};
		struct vhca_devcmd_mem m;

		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
			m = (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_FD,
						      .fd = fds[i],
						      .size = FAKE_VM_PAGE };
			oc.ctx_page = m;
			snprintf(what, sizeof(what),
				 "OPEN_CONTEXT's doorbell page as vhcad's fd %d%s",
				 fds[i],
				 fds[i] == bar_fd[0] ? " (the VF's BAR)" :
				 fds[i] == ram_fd[0] ? " (the VM's RAM)" : "");
			expect(what,
			       fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &oc,
					    sizeof(oc), NULL, 0, NULL, 0),
			       -EINVAL);
			m.size = 2 * FAKE_VM_PAGE;
			snprintf(what, sizeof(what), "CREATE_CQ in vhcad's fd %d",
				 fds[i]);
			expect(what, cq_raw(&vm, &c, &m, NULL, 0, NULL), -EINVAL);
			m.size = FAKE_VM_PAGE;
			snprintf(what, sizeof(what), "REG_MR of vhcad's fd %d",
				 fds[i]);
			expect(what, reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE,
					     NULL, 0, NULL),
			       -EINVAL);
		}
		oc.ctx_page = (struct vhca_devcmd_mem){ 0 };
		oc.wake_fd = 3;
		oc.flags = 0;
		expect("OPEN_CONTEXT naming a wake-up fd",
		       fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &oc,
				    sizeof(oc), NULL, 0, NULL, 0),
		       -EINVAL);
		m = (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_NONE };
		expect("REG_MR of MEM_NONE (the in-process kind)",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE, NULL, 0, NULL),
		       -EINVAL);
		m.kind = 3;
		expect("REG_MR of memory kind 3",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE, NULL, 0, NULL),
		       -EINVAL);
		m.kind = 0xffffffff;
		expect("CREATE_CQ in memory kind 0xffffffff",
		       cq_raw(&vm, &c, &m, NULL, 0, NULL), -EINVAL);
		fds1 = vhcad_fds(vhcad, NULL, NULL, 0, &nbar);
		expect("vhcad's fds after the MEM_FD commands", fds1, fds0);
		vhcad_fds(vhcad, "vhca-vf-bar", bar_fd + 1, 1, &nbar);
		vhcad_fds(vhcad, "fake-vm-ram", ram_fd + 1, 1, &nram);
		expect_true("vhcad still holds the BAR's and the RAM's fds",
			    nbar == 1 && bar_fd[1] == bar_fd[0] && nram == 1 &&
				    ram_fd[1] == ram_fd[0]);
	}

	/* Page addresses: past the RAM, unaligned.  The last page is fine. */
	{
		const uint64_t bads[] = {
			RAM_SIZE, RAM_SIZE + FAKE_VM_PAGE, 1ull << 40,
			UINT64_MAX & ~(uint64_t)(FAKE_VM_PAGE - 1),
			1ull << 63, 1, 2048, FAKE_VM_PAGE - 1, RAM_SIZE - 1,
			P + 8,
		};
		struct vhca_devcmd_mem m1 = pages_mem(FAKE_VM_PAGE, 1, 1);
		struct vhca_devcmd_mem m2 = pages_mem(2 * FAKE_VM_PAGE, 2, 1);

		L = fake_vm_alloc(&vm, FAKE_VM_PAGE);
		for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
			uint64_t *e = fake_vm_va(&vm, L);

			e[0] = bads[i];
			lists[0] = L;
			snprintf(what, sizeof(what), "REG_MR of page %#" PRIx64,
				 bads[i]);
			expect(what, reg_raw(&vm, &c, pd, &m1, 0, FAKE_VM_PAGE,
					     lists, 1, NULL),
			       -EINVAL);
			e[0] = P;
			e[1] = bads[i];
			snprintf(what, sizeof(what),
				 "CREATE_CQ with its second page %#" PRIx64,
				 bads[i]);
			expect(what, cq_raw(&vm, &c, &m2, lists, 1, NULL),
			       -EINVAL);
			e[1] = P + FAKE_VM_PAGE;
		}
		((uint64_t *)fake_vm_va(&vm, L))[0] = RAM_SIZE - FAKE_VM_PAGE;
		expect("REG_MR of the RAM's last page",
		       reg_raw(&vm, &c, pd, &m1, 0, FAKE_VM_PAGE, lists, 1,
			       NULL),
		       0);
		((uint64_t *)fake_vm_va(&vm, L))[0] = P;

		/* List pages outside the RAM or unaligned. */
		for (int k = 0; k < 5; k++) {
			const uint64_t where[] = { RAM_SIZE, RAM_SIZE + FAKE_VM_PAGE,
						   UINT64_MAX & ~4095ull, L + 8,
						   RAM_SIZE - 8 };

			lists[0] = where[k];
			snprintf(what, sizeof(what),
				 "REG_MR whose list page is at %#" PRIx64, where[k]);
			expect(what, reg_raw(&vm, &c, pd, &m1, 0, FAKE_VM_PAGE,
					     lists, 1, NULL),
			       -EINVAL);
			snprintf(what, sizeof(what),
				 "CREATE_CQ whose list page is at %#" PRIx64,
				 where[k]);
			expect(what, cq_raw(&vm, &c, &m2, lists, 1, NULL),
			       -EINVAL);
			snprintf(what, sizeof(what),
				 "OPEN_CONTEXT whose list page is at %#" PRIx64,
				 where[k]);
			{
				struct vhca_devcmd_open_context oc = {
					.flags = VHCA_DEVCMD_CTX_DATA_PATH,
					.wake_fd = -1, .ctx_page = m1,
				};

				expect(what,
				       fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT,
						    0, &oc, sizeof(oc), lists, 1,
						    NULL, 0),
				       -EINVAL);
			}
		}
		lists[0] = L;
	}

	/* Counts that do not agree. */
	{
		struct vhca_devcmd_mem m;
		uint64_t L2 = list_page(&vm, P, P + FAKE_VM_PAGE);

		for (int i = 0; i < 8; i++)
			lists[i] = L2;
		static const struct {
			const char *what;
			uint64_t size;
			uint32_t npages, nlist, addresses;
		} bad_counts[] = {
			{ "2 pages, nlist 2 (1 needed), 2 addresses",
			  2 * FAKE_VM_PAGE, 2, 2, 2 },
			{ "nlist 1, 2 addresses after the body", 2 * FAKE_VM_PAGE,
			  2, 1, 2 },
			{ "nlist 1, no address after the body", 2 * FAKE_VM_PAGE,
			  2, 1, 0 },
			{ "2 pages, nlist 0", 2 * FAKE_VM_PAGE, 2, 0, 0 },
			{ "513 pages, nlist 1 (2 needed)", 513 * FAKE_VM_PAGE, 513,
			  1, 1 },
			{ "npages 0", 0, 0, 0, 0 },
			{ "npages 0, one list", 2 * FAKE_VM_PAGE, 0, 1, 1 },
			{ "size of 2 pages in 3", 2 * FAKE_VM_PAGE, 3, 1, 1 },
			{ "size 0 in 2 pages", 0, 2, 1, 1 },
			{ "size of 3 pages in 2", 3 * FAKE_VM_PAGE, 2, 1, 1 },
		};

		for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]);
		     i++) {
			m = pages_mem(bad_counts[i].size, bad_counts[i].npages,
				      bad_counts[i].nlist);
			snprintf(what, sizeof(what), "CREATE_CQ: %s",
				 bad_counts[i].what);
			expect(what,
			       cq_raw(&vm, &c, &m, lists, bad_counts[i].addresses,
				      NULL),
			       -EINVAL);
		}
		/* Above the limits: a queue of 1 GiB + 1 page, an MR's. */
		for (int i = 0; i < 8192; i++)
			lists[i] = L2;
		m = pages_mem((uint64_t)(VHCA_VM_QUEUE_PAGES_MAX + 1) *
				      FAKE_VM_PAGE,
			      VHCA_VM_QUEUE_PAGES_MAX + 1,
			      (VHCA_VM_QUEUE_PAGES_MAX + 1 + 511) / 512);
		expect("CREATE_CQ of VHCA_VM_QUEUE_PAGES_MAX + 1 pages",
		       cq_raw(&vm, &c, &m, lists, m.nlist, NULL), -EINVAL);
		m = pages_mem((uint64_t)VHCA_VM_MR_PAGES_MAX * FAKE_VM_PAGE,
			      VHCA_VM_MR_PAGES_MAX + 1, 8184);
		expect("REG_MR of VHCA_VM_MR_PAGES_MAX + 1 pages",
		       reg_raw(&vm, &c, pd, &m, 0,
			       (uint64_t)(VHCA_VM_MR_PAGES_MAX + 1) * FAKE_VM_PAGE,
			       lists, 8184, NULL),
		       -EINVAL);
		/* MR layout: the offset is in the first page, the pages cover it. */
		m = pages_mem(FAKE_VM_PAGE, 1, 1);
		expect("REG_MR at offset 4096 of its first page",
		       reg_raw(&vm, &c, pd, &m, FAKE_VM_PAGE, 8, lists, 1, NULL),
		       -EINVAL);
		expect("REG_MR of 4097 bytes in 1 page",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE + 1, lists, 1,
			       NULL),
		       -EINVAL);
		expect("REG_MR of 8 bytes at offset 4092 in 1 page",
		       reg_raw(&vm, &c, pd, &m, 4092, 8, lists, 1, NULL),
		       -EINVAL);
		expect("REG_MR of 0 bytes",
		       reg_raw(&vm, &c, pd, &m, 0, 0, lists, 1, NULL), -EINVAL);
		m = pages_mem(2 * FAKE_VM_PAGE, 2, 1);
		expect("REG_MR of 1 page in 2",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE, lists, 1, NULL),
		       -EINVAL);
		expect("and of 2 pages in 2 (fine)",
		       reg_raw(&vm, &c, pd, &m, 0, 2 * FAKE_VM_PAGE, lists, 1,
			       NULL),
		       0);
	}
	status_line(vm.name, line1, sizeof(line1));
	if (!expect_true("the status line unchanged by refused memory",
			 !strcmp(line0, line1)))
		printf("  before: %s  after:  %s", line0, line1);

	/*
	 * Pages held: at most twice the RAM.  One page named over and over
	 * through one list page named over and over: huge lists for free.
	 */
	L = list_page(&vm, P, P);
	for (int i = 0; i < 8184; i++)
		lists[i] = L;
	rss0 = proc_field(vhcad, "status", "VmRSS:");
	{
		struct vhca_devcmd_mem m = pages_mem(0, budget + 1,
						     (budget + 1 + 511) / 512);
		uint32_t n = 4190208;	/* 8184 list pages: a full mailbox */

		expect("REG_MR of budget + 1 pages",
		       reg_raw(&vm, &c, pd, &m, 0,
			       (uint64_t)(budget + 1) * FAKE_VM_PAGE, lists,
			       m.nlist, NULL),
		       -ENOMEM);
		m = pages_mem(0, n, 8184);
		for (int i = 0; i < 100; i++) {
			snprintf(what, sizeof(what),
				 "REG_MR of %u pages, attempt %d", n, i + 1);
			if (!expect(what,
				    reg_raw(&vm, &c, pd, &m, 0,
					    (uint64_t)n * FAKE_VM_PAGE, lists,
					    8184, NULL),
				    -ENOMEM))
				break;
		}
	}
	{
		struct vhca_devcmd_mem m = pages_mem(0, budget / 4, budget / 4 / 512);
		int ret = 0;

		for (nmr = 0; nmr < 8 && !ret;) {
			ret = reg_raw(&vm, &c, pd, &m, 0,
				      (uint64_t)m.npages * FAKE_VM_PAGE, lists,
				      m.nlist, &mrs[nmr]);
			if (!ret)
				nmr++;
		}
		snprintf(what, sizeof(what),
			 "REG_MR of %u pages each, until refused: the %dth",
			 m.npages, nmr + 1);
		expect(what, ret, -ENOMEM);
		expect("MRs of a quarter of the budget that fit", nmr, 4);
		m = pages_mem(2 * FAKE_VM_PAGE, 2, 1);
		lists[0] = list_page(&vm, P, P + FAKE_VM_PAGE);
		expect("CREATE_CQ while MRs hold the budget",
		       cq_raw(&vm, &c, &m, lists, 1, NULL), -ENOMEM);
		m = pages_mem(FAKE_VM_PAGE, 1, 1);
		expect("REG_MR of 1 page while MRs hold the budget",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE, lists, 1,
			       NULL),
		       -ENOMEM);
		expect("QUERY_FUNCTION meanwhile", fake_vm_query_function(&vm, &f),
		       0);
		expect("DEREG_MR of one",
		       fake_destroy(&vm, &c, VHCA_DEVCMD_DEREG_MR, mrs[--nmr]), 0);
		for (int i = 0; i < 8184; i++)
			lists[i] = L;
		m = pages_mem(0, budget / 4, budget / 4 / 512);
		expect("REG_MR of as many again, after it",
		       reg_raw(&vm, &c, pd, &m, 0,
			       (uint64_t)m.npages * FAKE_VM_PAGE, lists,
			       m.nlist, &mrs[nmr]),
		       0);
		nmr++;
		while (nmr > 0)
			expect("DEREG_MR",
			       fake_destroy(&vm, &c, VHCA_DEVCMD_DEREG_MR,
					    mrs[--nmr]),
			       0);
	}
	rss1 = proc_field(vhcad, "status", "VmRSS:");
	printf("memory: vhcad's RSS %ld KiB before the budget, %ld KiB after\n",
	       rss0, rss1);
	expect_true("vhcad's RSS grew by less than 16 MiB",
		    rss1 >= 0 && rss1 - rss0 < 16 * 1024);

	/*
	 * Mappings: every run of contiguous pages of a queue is one of
	 * vhcad's; the VM's share is its function's QPs, CQs and SRQs.
	 * Alternating pages make every page a run.
	 */
	{
		const uint32_t share = f.max_qp + f.max_cq + f.max_srq;
		const uint32_t per_cq = 1024;
		uint32_t used = 1, want_cqs = (share - used) / per_cq, rest;
		struct vhca_devcmd_mem m = pages_mem(
			(uint64_t)per_cq * FAKE_VM_PAGE, per_cq, per_cq / 512);
		int ret = 0;

		L = list_page(&vm, P, P + 2 * FAKE_VM_PAGE);
		for (uint32_t i = 0; i < per_cq / 512; i++)
			lists[i] = L;
		maps0 = proc_field(vhcad, "maps", NULL);
		for (ncq = 0; ncq < 64 && !ret;) {
			ret = cq_raw(&vm, &c, &m, lists, m.nlist, &cqs[ncq]);
			if (!ret)
				ncq++;
		}
		snprintf(what, sizeof(what),
			 "CREATE_CQ of %u one-page runs, until refused: the %dth",
			 per_cq, ncq + 1);
		expect(what, ret, -ENOMEM);
		snprintf(what, sizeof(what),
			 "fragmented CQs that fit in a share of %u mappings",
			 share);
		expect(what, ncq, (int)want_cqs);
		used += (uint32_t)ncq * per_cq;
		rest = share - used;
		if (rest >= 2) {
			m = pages_mem((uint64_t)rest * FAKE_VM_PAGE, rest,
				      (rest + 511) / 512);
			snprintf(what, sizeof(what),
				 "CREATE_CQ of the last %u runs of the share", rest);
			expect(what, cq_raw(&vm, &c, &m, lists, m.nlist, &cqs[ncq]),
			       0);
			ncq++;
		}
		maps1 = proc_field(vhcad, "maps", NULL);
		printf("memory: mapping share %u: %d CQs, vhcad's mappings %ld -> %ld\n",
		       share, ncq, maps0, maps1);
		lists[0] = list_page(&vm, P, P + FAKE_VM_PAGE);
		m = pages_mem(2 * FAKE_VM_PAGE, 2, 1);
		expect("a CQ of one run beyond the share",
		       cq_raw(&vm, &c, &m, lists, 1, NULL), -ENOMEM);
		expect("a context with a data path beyond the share",
		       fake_ctx_open(&vm, &c2, true), -ENOMEM);
		expect("QUERY_FUNCTION with the share used",
		       fake_vm_query_function(&vm, &f), 0);
		while (ncq > 0)
			expect("DESTROY_CQ",
			       fake_destroy(&vm, &c, VHCA_DEVCMD_DESTROY_CQ,
					    cqs[--ncq]),
			       0);
		expect("a CQ of one run once they are gone",
		       cq_raw(&vm, &c, &m, lists, 1, NULL), 0);
		expect_true("vhcad's mappings back where they were",
			    labs(proc_field(vhcad, "maps", NULL) - maps0) < 64);
	}
	/*
	 * Contexts: the function's share, each with a data path (a page of
	 * RAM mapped, a descriptor of vhcad's for its wake-up), then -EUSERS.
	 * All of them on one doorbell page: a VM may alias its pages.
	 */
	{
		uint32_t *ids = calloc(f.max_contexts + 1, sizeof(*ids));
		struct vhca_devcmd_open_context oc = {
			.flags = VHCA_DEVCMD_CTX_DATA_PATH, .wake_fd = -1,
		};
		struct vhca_devcmd_context_out out;
		uint32_t opened = 0;
		int ret = 0, fds_full;

		if (!ids)
			die("contexts");
		lists[0] = fake_vm_alloc(&vm, FAKE_VM_PAGE);
		((uint64_t *)fake_vm_va(&vm, lists[0]))[0] = P + FAKE_VM_PAGE;
		oc.ctx_page = pages_mem(16, 1, 1);
		expect("OPEN_CONTEXT whose doorbell page is 16 bytes",
		       fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &oc,
				    sizeof(oc), lists, 1, NULL, 0),
		       -EINVAL);
		oc.ctx_page = pages_mem(FAKE_VM_PAGE, 1, 1);
		fds0 = vhcad_fds(vhcad, NULL, NULL, 0, &nbar);
		while (!ret && opened <= f.max_contexts) {
			ret = fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &oc,
					   sizeof(oc), lists, 1, &out, sizeof(out));
			if (!ret)
				ids[opened++] = out.context;
		}
		fds_full = vhcad_fds(vhcad, NULL, NULL, 0, &nbar);
		snprintf(what, sizeof(what),
			 "OPEN_CONTEXT beyond the share of %u contexts",
			 f.max_contexts);
		expect(what, ret, -EUSERS);
		expect("contexts opened besides the first", (int)opened,
		       (int)f.max_contexts - 1);
		expect("vhcad's fds for them: one each (its wake-up)",
		       fds_full - fds0, (int)opened);
		expect("QUERY_FUNCTION with every context open",
		       fake_vm_query_function(&vm, &f), 0);
		while (opened > 0)
			if (!expect("CLOSE_CONTEXT",
				    fake_vm_call(&vm, VHCA_DEVCMD_CLOSE_CONTEXT,
						 ids[--opened], NULL, 0, NULL, 0,
						 NULL, 0),
				    0))
				break;
		expect("vhcad's fds once they are closed",
		       vhcad_fds(vhcad, NULL, NULL, 0, &nbar), fds0);
		free(ids);
	}
	status_line(vm.name, line1, sizeof(line1));
	if (!expect_true("the status line back to where it was",
			 !strcmp(line0, line1)))
		printf("  before: %s  after:  %s", line0, line1);
	fake_vm_stop(&vm);
	return finish("memory");
}

/* ---- 3. the data path ------------------------------------------------------------- */

#define HOST_QPS 4
#define TARGET_LEN (64u * 1024)
#define HOST_MR_LEN (1u << 20)

struct vmside {
	struct fake_vm vm;
	struct fake_ctx c;
	uint32_t pd;
	uint16_t lid;
	/* what the device may write: queues, and MRs written legitimately */
	struct { uint64_t lo, hi; } excl[512];
	int nexcl;
	uint8_t *snapshot;
};

static void side_excl(struct vmside *s, uint64_t lo, uint64_t hi)
{
	if (s->nexcl == 512)
		die("set-up: too many exclusions");
	s->excl[s->nexcl].lo = lo;
	s->excl[s->nexcl].hi = hi;
	s->nexcl++;
}

static void side_start(struct vmside *s, const char *run_dir, unsigned int vf)
{
	struct vhca_devcmd_function f;
	uint64_t lo;

	start(&s->vm, run_dir, vf);
	must(fake_vm_query_function(&s->vm, &f), "QUERY_FUNCTION");
	s->lid = f.lid;
	lo = s->vm.brk;
	must(fake_ctx_open(&s->vm, &s->c, true), "a context with a data path");
	side_excl(s, lo, s->vm.brk);
	must(fake_pd_alloc(&s->vm, &s->c, &s->pd), "a PD");
}

/* Bytes of the side's RAM that differ from its snapshot, outside excl. */
static uint64_t side_changed(struct vmside *s, uint64_t *first)
{
	uint64_t n = 0;

	*first = UINT64_MAX;
	for (uint64_t i = 0; i < s->vm.ram_size; i++) {
		bool skip = false;

		if (s->vm.ram[i] == s->snapshot[i])
			continue;
		for (int k = 0; k < s->nexcl && !skip; k++)
			skip = i >= s->excl[k].lo && i < s->excl[k].hi;
		if (skip)
			continue;
		if (*first == UINT64_MAX)
			*first = i;
		n++;
	}
	return n;
}

struct endpoint {
	struct fake_cq cq;
	struct fake_qp qp;
};

static void ep_make(struct vmside *s, struct endpoint *e)
{
	uint64_t lo = s->vm.brk;

	must(fake_cq_create(&s->vm, &s->c, 64, &e->cq), "a CQ");
	must(fake_qp_create(&s->vm, &s->c, s->pd, &e->cq, &e->qp), "a QP");
	side_excl(s, lo, s->vm.brk);
}

static void pair_make(struct vmside *a, struct endpoint *ea, struct vmside *b,
		      struct endpoint *eb)
{
	ep_make(a, ea);
	ep_make(b, eb);
	must(fake_qp_connect(&a->vm, &a->c, &ea->qp, b->lid, eb->qp.qpn),
	     "connect A's QP");
	must(fake_qp_connect(&b->vm, &b->c, &eb->qp, a->lid, ea->qp.qpn),
	     "connect B's QP");
}

static const char *wc_name(int status)
{
	return ibv_wc_status_str((enum ibv_wc_status)status);
}

static bool expect_wc(const char *what, int got, int want)
{
	checks++;
	if (got == want)
		return true;
	failures++;
	printf("FAIL: %s: %s, expected %s\n", what,
	       got < 0 ? "no completion" : wc_name(got), wc_name(want));
	return false;
}

static bool expect_state(const char *what, struct vmside *s,
			 struct endpoint *e, int want)
{
	int state = -1, ret = fake_qp_state(&s->vm, &s->c, &e->qp, &state);

	checks++;
	if (!ret && state == want)
		return true;
	failures++;
	printf("FAIL: %s: QUERY_QP %d, state %d, expected state %d\n", what,
	       ret, state, want);
	return false;
}

/* Until the QP is in @state, at most @ms. */
static void wait_state(struct vmside *s, struct endpoint *e, int state, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;
	int now = -1;

	while (!fake_qp_state(&s->vm, &s->c, &e->qp, &now) && now != state &&
	       now_ms() < deadline)
		usleep(1000);
}

/* One signaled WQE on A's endpoint; its completion's status, or -1. */
static int post_one(struct vmside *a, struct endpoint *e, uint8_t opcode,
		    uint64_t wr_id, const struct vhca_sge *sge,
		    unsigned int nsge, uint64_t raddr, uint32_t rkey,
		    uint64_t add)
{
	struct vhca_send_wqe w = { .wr_id = wr_id, .opcode = opcode,
				   .flags = VHCA_WQE_SIGNALED,
				   .num_sge = (uint8_t)nsge };
	struct vhca_sge sges[32];
	struct vhca_cqe cqe;

	if (opcode == VHCA_WQE_ATOMIC_FETCH_AND_ADD ||
	    opcode == VHCA_WQE_ATOMIC_CMP_AND_SWP) {
		w.atomic.remote_addr = raddr;
		w.atomic.rkey = rkey;
		w.atomic.compare_add = add;
	} else {
		w.rdma.remote_addr = raddr;
		w.rdma.rkey = rkey;
	}
	/* @nsge copies of @sge, as many as the slot holds (9). */
	for (unsigned int i = 0; i < nsge && i < 32; i++)
		sges[i] = *sge;
	fake_qp_post_send(&a->vm, &a->c, &e->qp, &w, sges, nsge > 9 ? 9 : nsge);
	if (!fake_cq_poll(&e->cq, &cqe, 5000))
		return -1;
	if (cqe.wr_id != wr_id || cqe.qp_num != e->qp.qpn) {
		printf("FAIL: a completion of wr_id %#" PRIx64 " QP %#x, expected %#" PRIx64 " QP %#x\n",
		       (uint64_t)cqe.wr_id, cqe.qp_num, wr_id, e->qp.qpn);
		failures++;
	}
	return (int)cqe.status;
}

/* A WQE that must succeed, from [gpa, gpa + len) of @mr. */
static bool post_ok(const char *what, struct vmside *a, struct endpoint *e,
		    uint8_t opcode, uint64_t wr_id, const struct fake_mr *mr,
		    uint32_t len, uint64_t raddr, uint32_t rkey)
{
	struct vhca_sge sge = { mr->gpa, len, mr->lkey };

	return expect_wc(what,
			 post_one(a, e, opcode, wr_id, &sge, 1, raddr, rkey, 5),
			 IBV_WC_SUCCESS);
}

struct attack {
	const char *what;
	bool to_host;
	uint8_t opcode;
	unsigned int nsge;
	struct vhca_sge sge;
	uint64_t raddr;
	uint32_t rkey;
	int want;		/* enum ibv_wc_status */
	bool responder_errs;	/* the responder's QP goes to ERR too */
};

static int datapath(const char *run_dir, unsigned int va, unsigned int vb,
		    const char *dir)
{
	static struct vmside A, B;
	struct fake_mr a_src, a_dst, a_lmr, a_tmp, b_ok, b_target, b_recv;
	struct endpoint host_ep[HOST_QPS], ea, eb;
	struct ep_info host[HOST_QPS];
	uint64_t gpa, first, n;
	char name[32], what[200];
	int host_next = 0, ret;

	side_start(&A, run_dir, va);
	side_start(&B, run_dir, vb);
	/* The lower halves: positive-control MRs (written legitimately). */
	gpa = fake_vm_alloc(&A.vm, TARGET_LEN);
	must(fake_mr_reg(&A.vm, &A.c, A.pd, gpa, TARGET_LEN, ALL_ACCESS, &a_src),
	     "A's source MR");
	for (uint32_t i = 0; i < TARGET_LEN; i++)
		A.vm.ram[gpa + i] = (uint8_t)(i * 7 + 1);
	gpa = fake_vm_alloc(&A.vm, TARGET_LEN);
	must(fake_mr_reg(&A.vm, &A.c, A.pd, gpa, TARGET_LEN, ALL_ACCESS, &a_dst),
	     "A's destination MR");
	side_excl(&A, gpa, gpa + TARGET_LEN);
	gpa = fake_vm_alloc(&B.vm, TARGET_LEN);
	must(fake_mr_reg(&B.vm, &B.c, B.pd, gpa, TARGET_LEN, ALL_ACCESS, &b_ok),
	     "B's MR for the controls");
	side_excl(&B, gpa, gpa + TARGET_LEN);
	gpa = fake_vm_alloc(&B.vm, TARGET_LEN);
	must(fake_mr_reg(&B.vm, &B.c, B.pd, gpa, TARGET_LEN, ALL_ACCESS, &b_recv),
	     "B's receive MR");
	/*
	 * The upper halves are canaries, with the attacked MRs in their
	 * middle: A's local one, B's target.  Never written legitimately.
	 */
	memset(A.vm.ram + CANARY_ZONE, 0xa5, RAM_SIZE - CANARY_ZONE);
	memset(B.vm.ram + CANARY_ZONE, 0xb5, RAM_SIZE - CANARY_ZONE);
	must(fake_mr_reg(&A.vm, &A.c, A.pd, CANARY_ZONE + RAM_SIZE / 4,
			 TARGET_LEN, ALL_ACCESS, &a_lmr),
	     "A's attacked MR");
	must(fake_mr_reg(&B.vm, &B.c, B.pd, CANARY_ZONE + RAM_SIZE / 4,
			 TARGET_LEN, ALL_ACCESS, &b_target),
	     "B's attacked MR");
	gpa = fake_vm_alloc(&A.vm, FAKE_VM_PAGE);
	must(fake_mr_reg(&A.vm, &A.c, A.pd, gpa, FAKE_VM_PAGE, ALL_ACCESS,
			 &a_tmp),
	     "A's temporary MR");
	must(fake_destroy(&A.vm, &A.c, VHCA_DEVCMD_DEREG_MR, a_tmp.handle),
	     "deregister it");

	/* A's QPs towards the host process (host_target). */
	for (int i = 0; i < HOST_QPS; i++) {
		struct ep_info me;

		ep_make(&A, &host_ep[i]);
		me = (struct ep_info){ .lid = A.lid, .qpn = host_ep[i].qp.qpn };
		snprintf(name, sizeof(name), "vm.qp.%d", i);
		put_info(dir, name, &me);
	}
	for (int i = 0; i < HOST_QPS; i++) {
		snprintf(name, sizeof(name), "host.qp.%d", i);
		host[i] = get_info(dir, name);
		must(fake_qp_connect(&A.vm, &A.c, &host_ep[i].qp,
				     (uint16_t)host[i].lid, host[i].qpn),
		     "connect to the host");
	}
	A.snapshot = malloc(RAM_SIZE);
	B.snapshot = malloc(RAM_SIZE);
	if (!A.snapshot || !B.snapshot)
		die("snapshots");
	memcpy(A.snapshot, A.vm.ram, RAM_SIZE);
	memcpy(B.snapshot, B.vm.ram, RAM_SIZE);

	/* The controls: the path works, so errors below are the checks'. */
	pair_make(&A, &ea, &B, &eb);
	post_ok("control: A WRITEs 64 KiB into B's MR", &A, &ea,
		VHCA_WQE_RDMA_WRITE, 1, &a_src, TARGET_LEN, b_ok.gpa, b_ok.rkey);
	expect_true("control: the bytes arrived",
		    !memcmp(B.vm.ram + b_ok.gpa, A.vm.ram + a_src.gpa,
			    TARGET_LEN));
	post_ok("control: A READs them back", &A, &ea, VHCA_WQE_RDMA_READ, 2,
		&a_dst, TARGET_LEN, b_ok.gpa, b_ok.rkey);
	expect_true("control: the bytes came back",
		    !memcmp(A.vm.ram + a_dst.gpa, A.vm.ram + a_src.gpa,
			    TARGET_LEN));
	post_ok("control: A's FETCH_ADD on B's MR", &A, &ea,
		VHCA_WQE_ATOMIC_FETCH_AND_ADD, 3, &a_dst, 8, b_ok.gpa, b_ok.rkey);

	{
		const uint32_t nokey = 0x5a5a5a01;
		struct vhca_sge in_src = { a_src.gpa, 64, a_src.lkey };
		struct vhca_sge in_lmr = { a_lmr.gpa, 64, a_lmr.lkey };
		const struct attack attacks[] = {
			{ "SGE past the end of its MR", false, VHCA_WQE_RDMA_WRITE, 1,
			  { a_src.gpa + TARGET_LEN - 8, 64, a_src.lkey },
			  b_ok.gpa, b_ok.rkey, IBV_WC_LOC_PROT_ERR, false },
			{ "SGE before the start of its MR", false,
			  VHCA_WQE_RDMA_WRITE, 1,
			  { a_src.gpa - FAKE_VM_PAGE, 64, a_src.lkey },
			  b_ok.gpa, b_ok.rkey, IBV_WC_LOC_PROT_ERR, false },
			{ "SGE at the gpa of its unregistered canary", false,
			  VHCA_WQE_RDMA_WRITE, 1,
			  { CANARY_ZONE + 4096, 64, a_src.lkey },
			  b_ok.gpa, b_ok.rkey, IBV_WC_LOC_PROT_ERR, false },
			{ "SGE at the gpa of its own QP ring", false,
			  VHCA_WQE_RDMA_WRITE, 1,
			  { (uint64_t)((uint8_t *)ea.qp.sq - A.vm.ram), 64,
			    a_src.lkey },
			  b_ok.gpa, b_ok.rkey, IBV_WC_LOC_PROT_ERR, false },
			{ "SGE of 4 GiB - 1 bytes", false, VHCA_WQE_RDMA_WRITE, 1,
			  { a_src.gpa + 8, 0xffffffffu, a_src.lkey },
			  b_ok.gpa, b_ok.rkey, IBV_WC_LOC_PROT_ERR, false },
			{ "lkey of nothing", false, VHCA_WQE_RDMA_WRITE, 1,
			  { a_src.gpa, 64, nokey }, b_ok.gpa, b_ok.rkey,
			  IBV_WC_LOC_PROT_ERR, false },
			{ "lkey of B's MR (another VM's key)", false,
			  VHCA_WQE_RDMA_WRITE, 1, { b_ok.gpa, 64, b_ok.lkey },
			  b_ok.gpa, b_ok.rkey, IBV_WC_LOC_PROT_ERR, false },
			{ "lkey of a deregistered MR", false, VHCA_WQE_RDMA_WRITE,
			  1, { a_tmp.gpa, 64, a_tmp.lkey }, b_ok.gpa, b_ok.rkey,
			  IBV_WC_LOC_PROT_ERR, false },
			{ "READ into an SGE past the end of its MR", false,
			  VHCA_WQE_RDMA_READ, 1,
			  { a_lmr.gpa + TARGET_LEN - 8, 64, a_lmr.lkey },
			  b_ok.gpa, b_ok.rkey, IBV_WC_LOC_PROT_ERR, false },
			{ "17 SGEs (the QP takes 4)", false, VHCA_WQE_RDMA_WRITE,
			  17, in_src, b_ok.gpa, b_ok.rkey, IBV_WC_LOC_LEN_ERR,
			  false },
			{ "opcode 0x77", false, 0x77, 1, in_src, b_ok.gpa,
			  b_ok.rkey, IBV_WC_LOC_QP_OP_ERR, false },
			{ "WRITE past the end of B's MR", false,
			  VHCA_WQE_RDMA_WRITE, 1, in_src,
			  b_target.gpa + TARGET_LEN - 8, b_target.rkey,
			  IBV_WC_REM_ACCESS_ERR, true },
			{ "WRITE before the start of B's MR", false,
			  VHCA_WQE_RDMA_WRITE, 1, in_src, b_target.gpa - 64,
			  b_target.rkey, IBV_WC_REM_ACCESS_ERR, true },
			{ "WRITE at B's canary gpa with B's rkey", false,
			  VHCA_WQE_RDMA_WRITE, 1, in_src, CANARY_ZONE,
			  b_target.rkey, IBV_WC_REM_ACCESS_ERR, true },
			{ "WRITE at the gpa of B's QP ring with B's rkey", false,
			  VHCA_WQE_RDMA_WRITE, 1, in_src,
			  (uint64_t)((uint8_t *)eb.qp.sq - B.vm.ram),
			  b_target.rkey, IBV_WC_REM_ACCESS_ERR, true },
			{ "WRITE with an rkey of nothing", false,
			  VHCA_WQE_RDMA_WRITE, 1, in_src, b_target.gpa, nokey,
			  IBV_WC_REM_ACCESS_ERR, true },
			{ "WRITE to B with an rkey of A's own", false,
			  VHCA_WQE_RDMA_WRITE, 1, in_src, a_lmr.gpa, a_lmr.rkey,
			  IBV_WC_REM_ACCESS_ERR, true },
			{ "WRITE to B with the host canary MR's rkey", false,
			  VHCA_WQE_RDMA_WRITE, 1, in_src, host[0].addr,
			  host[0].rkey, IBV_WC_REM_ACCESS_ERR, true },
			{ "READ past the end of B's MR", false, VHCA_WQE_RDMA_READ,
			  1, in_lmr, b_target.gpa + TARGET_LEN - 8,
			  b_target.rkey, IBV_WC_REM_ACCESS_ERR, true },
			{ "FETCH_ADD past the end of B's MR", false,
			  VHCA_WQE_ATOMIC_FETCH_AND_ADD, 1,
			  { a_lmr.gpa, 8, a_lmr.lkey }, b_target.gpa + TARGET_LEN,
			  b_target.rkey, IBV_WC_REM_ACCESS_ERR, true },
			{ "FETCH_ADD misaligned inside B's MR", false,
			  VHCA_WQE_ATOMIC_FETCH_AND_ADD, 1,
			  { a_lmr.gpa, 8, a_lmr.lkey }, b_target.gpa + 4,
			  b_target.rkey, IBV_WC_REM_INV_REQ_ERR, true },
			{ "WRITE past the end of the host's MR", true,
			  VHCA_WQE_RDMA_WRITE, 1, in_src,
			  host[0].addr + HOST_MR_LEN - 8, host[0].rkey,
			  IBV_WC_REM_ACCESS_ERR, true },
			{ "WRITE before the start of the host's MR", true,
			  VHCA_WQE_RDMA_WRITE, 1, in_src, host[0].addr - 64,
			  host[0].rkey, IBV_WC_REM_ACCESS_ERR, true },
			{ "READ past the end of the host's MR", true,
			  VHCA_WQE_RDMA_READ, 1, in_lmr,
			  host[0].addr + HOST_MR_LEN, host[0].rkey,
			  IBV_WC_REM_ACCESS_ERR, true },
			{ "WRITE to the host with B's rkey", true,
			  VHCA_WQE_RDMA_WRITE, 1, in_src, b_target.gpa,
			  b_target.rkey, IBV_WC_REM_ACCESS_ERR, true },
		};

		for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
			const struct attack *t = &attacks[i];
			struct endpoint pa, pb, *e = &pa;

			if (t->to_host) {
				if (host_next == HOST_QPS)
					die("set-up: too few host QPs");
				e = &host_ep[host_next++];
			} else {
				pair_make(&A, &pa, &B, &pb);
			}
			ret = post_one(&A, e, t->opcode, 100 + i, &t->sge,
				       t->nsge, t->raddr, t->rkey, 1);
			snprintf(what, sizeof(what), "%s", t->what);
			expect_wc(what, ret, t->want);
			snprintf(what, sizeof(what), "%s: A's QP in ERR", t->what);
			expect_state(what, &A, e, IBV_QPS_ERR);
			if (!t->to_host) {
				snprintf(what, sizeof(what), "%s: B's QP %s",
					 t->what,
					 t->responder_errs ? "in ERR" : "still RTS");
				expect_state(what, &B, &pb,
					     t->responder_errs ? IBV_QPS_ERR :
								 IBV_QPS_RTS);
			}
		}
	}

	/* B as a hostile responder: its receive buffer outside its MR. */
	{
		struct endpoint pa, pb;
		struct vhca_cqe cqe;

		pair_make(&A, &pa, &B, &pb);
		fake_qp_post_recv(&B.vm, &B.c, &pb.qp, 77,
				  &(struct vhca_sge){ b_recv.gpa + TARGET_LEN - 8,
						      64, b_recv.lkey },
				  1);
		ret = post_one(&A, &pa, VHCA_WQE_SEND, 78,
			       &(struct vhca_sge){ a_src.gpa, 64, a_src.lkey }, 1,
			       0, 0, 0);
		expect_wc("SEND into B's receive SGE past its MR", ret,
			  IBV_WC_REM_OP_ERR);
		ret = fake_cq_poll(&pb.cq, &cqe, 5000) ? (int)cqe.status : -1;
		expect_wc("B's receive of it", ret, IBV_WC_LOC_PROT_ERR);
		expect_true("B's receive completion names its WQE",
			    ret < 0 || cqe.wr_id == 77);
		expect_state("the SEND: A's QP in ERR", &A, &pa, IBV_QPS_ERR);
		expect_state("the SEND: B's QP in ERR", &B, &pb, IBV_QPS_ERR);
	}

	/* Doorbells beyond its queues. */
	{
		struct endpoint pa, pb, qa, qb;

		pair_make(&A, &pa, &B, &pb);
		/* Garbage in the FIFO: handles of nothing, of a CQ, SRQs. */
		fake_ring(&A.vm, &A.c, 0xfffffe << 1 | VHCA_DB_QP);
		fake_ring(&A.vm, &A.c, pa.cq.handle << 1 | VHCA_DB_QP);
		fake_ring(&A.vm, &A.c, pa.qp.handle << 1 | VHCA_DB_SRQ);
		fake_ring(&A.vm, &A.c, 0xffffffff);
		/* A head far ahead of the tail: resynchronised, scanned. */
		atomic_fetch_add((_Atomic uint32_t *)&A.c.page->fifo_head, 5000);
		fake_ring(&A.vm, &A.c, 12345 << 1);
		/* A send queue head beyond its ring: that QP alone fails. */
		atomic_store((_Atomic uint32_t *)&pa.qp.db->sq_head,
			     pa.qp.sq_head + 1000);
		fake_ring(&A.vm, &A.c, pa.qp.handle << 1 | VHCA_DB_QP);
		wait_state(&A, &pa, IBV_QPS_ERR, 5000);
		expect_state("a send queue head 1000 beyond its ring: the QP in ERR",
			     &A, &pa, IBV_QPS_ERR);
		pair_make(&A, &qa, &B, &qb);
		post_ok("after the doorbell garbage, a WRITE on another QP", &A,
			&qa, VHCA_WQE_RDMA_WRITE, 90, &a_src, TARGET_LEN, b_ok.gpa,
			b_ok.rkey);
		expect_state("and that QP still RTS", &A, &qa, IBV_QPS_RTS);
	}

	/* Canaries: everything but queues and the controls' MRs, unchanged. */
	n = side_changed(&A, &first);
	if (!expect_true("A's RAM outside its queues and control MR unchanged",
			 n == 0))
		printf("  %" PRIu64 " bytes changed, the first at gpa %#" PRIx64 "\n",
		       n, first);
	n = side_changed(&B, &first);
	if (!expect_true("B's RAM outside its queues and control MR unchanged",
			 n == 0))
		printf("  %" PRIu64 " bytes changed, the first at gpa %#" PRIx64 "\n",
		       n, first);
	put_file(dir, "attacks.done", "done\n");
	printf("datapath: %d host QPs used, VM A's RAM and VM B's RAM checked byte for byte\n",
	       host_next);
	fake_vm_stop(&A.vm);
	fake_vm_stop(&B.vm);
	return finish("datapath");
}

/* The host process datapath attacks: QPs and a canary MR between guards. */
static int host_target(const char *dev, const char *dir)
{
	struct ibv_context *ctx = open_by_name(dev);
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	struct rc_ep e[HOST_QPS];
	size_t len = 3 * HOST_MR_LEN;
	uint8_t *buf;
	char name[32], text[16];
	size_t changed = 0;

	if (!ctx)
		die("cannot open %s: %s", dev, strerror(errno));
	pd = ibv_alloc_pd(ctx);
	buf = aligned_alloc(4096, len);
	if (!pd || !buf)
		die("host_target: set-up");
	memset(buf, 0xc3, len);
	mr = ibv_reg_mr(pd, buf + HOST_MR_LEN, HOST_MR_LEN, ATTACK_ACCESS);
	if (!mr)
		die("reg_mr: %s", strerror(errno));
	for (int i = 0; i < HOST_QPS; i++) {
		struct ep_info vm, me;

		memset(&e[i], 0, sizeof(e[i]));
		rc_ep_create(&e[i], ctx, pd);
		snprintf(name, sizeof(name), "vm.qp.%d", i);
		vm = get_info(dir, name);
		rc_ep_connect(&e[i], &vm);
		me = (struct ep_info){ .lid = e[i].lid, .qpn = e[i].qp->qp_num,
				       .rkey = mr->rkey,
				       .addr = (uintptr_t)mr->addr };
		snprintf(name, sizeof(name), "host.qp.%d", i);
		put_info(dir, name, &me);
	}
	printf("host_target: %d QPs, canary MR of %u bytes between guards\n",
	       HOST_QPS, HOST_MR_LEN);
	if (get_file(dir, "attacks.done", text, sizeof(text), 120000))
		die("host_target: the attacks never finished");
	for (size_t i = 0; i < len; i++)
		changed += buf[i] != 0xc3;
	printf("host_target: %zu bytes of the canary MR and its guards changed\n",
	       changed);
	return changed != 0;
}

/* ---- 4. QEMU killed mid-traffic ---------------------------------------------------- */

static int vm_peer(const char *run_dir, unsigned int vf, const char *dir)
{
	struct vmside s = { 0 };
	struct endpoint e;
	struct fake_mr mr;
	struct ep_info me, host;
	uint64_t gpa, done = 0;

	side_start(&s, run_dir, vf);
	gpa = fake_vm_alloc(&s.vm, HOST_MR_LEN);
	must(fake_mr_reg(&s.vm, &s.c, s.pd, gpa, HOST_MR_LEN, ALL_ACCESS, &mr),
	     "the VM's MR");
	ep_make(&s, &e);
	me = (struct ep_info){ .lid = s.lid, .qpn = e.qp.qpn, .rkey = mr.rkey,
			       .addr = mr.gpa };
	put_info(dir, "vm.info", &me);
	host = get_info(dir, "host.info");
	must(fake_qp_connect(&s.vm, &s.c, &e.qp, (uint16_t)host.lid, host.qpn),
	     "connect to the host");
	for (;;) {
		int ret = post_one(&s, &e, VHCA_WQE_RDMA_WRITE, done,
				   &(struct vhca_sge){ mr.gpa, 4096, mr.lkey }, 1,
				   host.addr, host.rkey, 0);

		if (ret != IBV_WC_SUCCESS) {
			printf("vm_peer: WRITE %" PRIu64 ": %s\n", done,
			       ret < 0 ? "no completion" : wc_name(ret));
			return 1;
		}
		if (++done == 100)
			printf("vm_peer: traffic\n");
	}
}

static int host_peer(const char *dev, const char *dir)
{
	struct ibv_context *ctx = open_by_name(dev);
	struct ep_info vm, me;
	struct rc_ep e = { 0 };
	struct ibv_wc wc;
	uint64_t done = 0, last = 0;

	if (!ctx)
		die("cannot open %s: %s", dev, strerror(errno));
	rc_ep_create(&e, ctx, ibv_alloc_pd(ctx));
	rc_ep_reg(&e, aligned_alloc(4096, HOST_MR_LEN), HOST_MR_LEN);
	vm = get_info(dir, "vm.info");
	rc_ep_connect(&e, &vm);
	me = rc_ep_info(&e);
	put_info(dir, "host.info", &me);
	for (;;) {
		if (rc_ep_post(&e, IBV_WR_RDMA_WRITE, done, 0, 4096, vm.addr,
			       vm.rkey))
			die("post_send: %s", strerror(errno));
		if (!rc_ep_wait(&e, &wc, 10000)) {
			printf("host_peer: no completion within 10 s after %" PRIu64 " WRITEs: a hang\n",
			       done);
			return 1;
		}
		if (wc.status != IBV_WC_SUCCESS)
			break;
		last = now_ms();
		if (++done == 100)
			printf("host_peer: traffic\n");
	}
	printf("host_peer: after %" PRIu64 " WRITEs: %s, %" PRIu64 " ms after the last success\n",
	       done, ibv_wc_status_str(wc.status), now_ms() - last);
	return !(wc.status == IBV_WC_RETRY_EXC_ERR && done >= 100 &&
		 now_ms() - last < 5000);
}

static int clean_pair(const char *run_dir, unsigned int va, unsigned int vb)
{
	static struct vmside A, B;
	struct endpoint ea, eb;
	struct fake_mr ma, mb_;
	uint64_t ga, gb;

	side_start(&A, run_dir, va);
	side_start(&B, run_dir, vb);
	ga = fake_vm_alloc(&A.vm, TARGET_LEN);
	gb = fake_vm_alloc(&B.vm, TARGET_LEN);
	must(fake_mr_reg(&A.vm, &A.c, A.pd, ga, TARGET_LEN, ALL_ACCESS, &ma),
	     "A's MR");
	must(fake_mr_reg(&B.vm, &B.c, B.pd, gb, TARGET_LEN, ALL_ACCESS, &mb_),
	     "B's MR");
	for (uint32_t i = 0; i < TARGET_LEN; i++)
		A.vm.ram[ga + i] = (uint8_t)(i * 13 + 5);
	pair_make(&A, &ea, &B, &eb);
	post_ok("WRITE from A into B", &A, &ea, VHCA_WQE_RDMA_WRITE, 1, &ma,
		TARGET_LEN, gb, mb_.rkey);
	expect_true("the bytes arrived",
		    !memcmp(A.vm.ram + ga, B.vm.ram + gb, TARGET_LEN));
	memset(A.vm.ram + ga, 0, TARGET_LEN);
	post_ok("READ back", &A, &ea, VHCA_WQE_RDMA_READ, 2, &ma, TARGET_LEN,
		gb, mb_.rkey);
	expect_true("the bytes came back",
		    !memcmp(A.vm.ram + ga, B.vm.ram + gb, TARGET_LEN));
	fake_vm_stop(&A.vm);
	fake_vm_stop(&B.vm);
	return finish("clean_pair");
}

/* ---- 5. vhcad stopped under a VM ---------------------------------------------------- */

static int gone_watch(const char *run_dir, unsigned int vf)
{
	static struct vmside s;
	struct endpoint e;
	struct vhca_bar_mailbox *m;
	struct pollfd pfd;
	uint64_t t0;
	uint32_t seq;

	side_start(&s, run_dir, vf);
	ep_make(&s, &e);
	printf("gone_watch: attached\n");
	while (fake_vm_header(&s.vm)->state == VHCA_BAR_READY)
		usleep(1000);
	t0 = now_ms();
	expect("the BAR's state", (int)fake_vm_header(&s.vm)->state,
	       VHCA_BAR_GONE);
	/* The mailbox answers nothing any more. */
	m = fake_vm_mailbox(&s.vm);
	seq = m->answered + 1;
	memcpy(m->in, &(struct vhca_devcmd_hdr){ .op = VHCA_DEVCMD_QUERY_FUNCTION },
	       sizeof(struct vhca_devcmd_hdr));
	m->in_len = sizeof(struct vhca_devcmd_hdr);
	atomic_store((_Atomic uint32_t *)&m->request, seq);
	fake_vm_ring_vector(&s.vm, VHCA_VECTOR_MAILBOX);
	usleep(1500000);
	expect_true("a command after GONE is not answered (1.5 s)",
		    m->answered != seq);
	/* And QEMU's ivshmem connection has been closed by the server. */
	pfd = (struct pollfd){ .fd = s.vm.sock, .events = POLLIN };
	expect_true("the ivshmem server closed its connection",
		    poll(&pfd, 1, 5000) == 1 &&
			    recv(s.vm.sock, &seq, sizeof(seq), MSG_DONTWAIT) == 0);
	printf("gone_watch: checked %" PRIu64 " ms after the BAR said GONE\n",
	       now_ms() - t0);
	fake_vm_stop(&s.vm);
	return finish("gone_watch");
}

/* ---- 6. who may attach ------------------------------------------------------------ */

static int hold(const char *run_dir, unsigned int vf)
{
	struct fake_vm vm;

	start(&vm, run_dir, vf);
	printf("hold: attached\n");
	for (;;)
		pause();
	return 0;
}

static int attach(const char *run_dir, unsigned int vf)
{
	struct fake_vm vm;
	char b[32];
	int ret = fake_vm_start(&vm, run_dir, vf, RAM_SIZE);

	printf("attach: %s\n", name_of(ret, b, sizeof(b)));
	if (!ret)
		fake_vm_stop(&vm);
	return 0;
}

static int attach_bad(const char *run_dir, unsigned int vf,
		      unsigned int num_vfs)
{
	const int sealed = F_SEAL_SHRINK | F_SEAL_GROW;
	int fd, pipefd[2];
	struct fake_vm vm;

	expect("ATTACH_VM without a descriptor",
	       fake_vm_attach_req(run_dir, vf, 0, -1, RAM_SIZE), -EINVAL);
	fd = fake_vm_memfd(RAM_SIZE, 0);
	expect("ATTACH_VM of a memfd without seals",
	       fake_vm_attach_req(run_dir, vf, 0, fd, RAM_SIZE), -EINVAL);
	close(fd);
	fd = fake_vm_memfd(RAM_SIZE, F_SEAL_GROW);
	expect("ATTACH_VM of a memfd that may shrink",
	       fake_vm_attach_req(run_dir, vf, 0, fd, RAM_SIZE), -EINVAL);
	close(fd);
	fd = fake_vm_memfd(RAM_SIZE, sealed);
	expect("ATTACH_VM of more RAM than the memfd has",
	       fake_vm_attach_req(run_dir, vf, 0, fd, RAM_SIZE + FAKE_VM_PAGE),
	       -EINVAL);
	expect("ATTACH_VM of 0 bytes",
	       fake_vm_attach_req(run_dir, vf, 0, fd, 0), -EINVAL);
	expect("ATTACH_VM of RAM not in pages",
	       fake_vm_attach_req(run_dir, vf, 0, fd, RAM_SIZE - 1), -EINVAL);
	expect("ATTACH_VM with flags 1",
	       fake_vm_attach_req(run_dir, vf, 1, fd, RAM_SIZE), -EINVAL);
	expect("ATTACH_VM of VF NUM_VFS",
	       fake_vm_attach_req(run_dir, num_vfs, 0, fd, RAM_SIZE), -ENODEV);
	expect("ATTACH_VM of VF 0xffffffff",
	       fake_vm_attach_req(run_dir, 0xffffffffu, 0, fd, RAM_SIZE),
	       -ENODEV);
	close(fd);
	fd = fake_vm_memfd(VHCA_VM_RAM_MAX + FAKE_VM_PAGE, sealed);
	expect("ATTACH_VM of 3 GiB + 4 KiB (above the PCI hole)",
	       fake_vm_attach_req(run_dir, vf, 0, fd,
				  VHCA_VM_RAM_MAX + FAKE_VM_PAGE),
	       -EINVAL);
	close(fd);
	if (pipe2(pipefd, O_CLOEXEC))
		die("pipe");
	expect("ATTACH_VM of a pipe",
	       fake_vm_attach_req(run_dir, vf, 0, pipefd[0], RAM_SIZE), -EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);
	expect("after all that, the VF attaches",
	       fake_vm_start(&vm, run_dir, vf, RAM_SIZE), 0);
	fake_vm_stop(&vm);
	return finish("attach_bad");
}

/* Opens @path for writing and writes @text: where it failed, and how. */
static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		printf("write_file: open: %s\n", strerrorname_np(errno));
	else if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		printf("write_file: write: %s\n", strerrorname_np(errno));
	else
		printf("write_file: written\n");
	if (fd >= 0)
		close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 6 && !strcmp(argv[1], "garbage"))
		return garbage(argv[2], (unsigned int)atoi(argv[3]),
			       (unsigned int)atoi(argv[4]),
			       strtoull(argv[5], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "memory"))
		return memory(argv[2], (unsigned int)atoi(argv[3]),
			      (pid_t)atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "datapath"))
		return datapath(argv[2], (unsigned int)atoi(argv[3]),
				(unsigned int)atoi(argv[4]), argv[5]);
	if (argc == 4 && !strcmp(argv[1], "host_target"))
		return host_target(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "vm_peer"))
		return vm_peer(argv[2], (unsigned int)atoi(argv[3]), argv[4]);
	if (argc == 4 && !strcmp(argv[1], "host_peer"))
		return host_peer(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "clean_pair"))
		return clean_pair(argv[2], (unsigned int)atoi(argv[3]),
				  (unsigned int)atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "gone_watch"))
		return gone_watch(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "hold"))
		return hold(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "attach"))
		return attach(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "attach_bad"))
		return attach_bad(argv[2], (unsigned int)atoi(argv[3]),
				  (unsigned int)atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "write_file"))
		return write_file(argv[2], argv[3]);
	fprintf(stderr, "usage: see the top of vm_attacks.c\n");
	return 2;
}
