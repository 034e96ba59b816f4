// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vm_attacks garbage: a VM's mailbox full of garbage (lengths, unknown
 * ops, truncated bodies, trailing words, context ids never opened and
 * another VM's, random bytes, a second vCPU racing the mailbox): each
 * -EINVAL, and nothing changed.
 */
#include "vm_attacks.h"

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
	{ VHCA_DEVCMD_QUERY_ADDRS, 0, false },
	{ VHCA_DEVCMD_RESOLVE_ADDR, sizeof(struct vhca_devcmd_resolve), false },
	{ VHCA_DEVCMD_SEND_MAD, sizeof(struct vhca_devcmd_mad), false },
	{ VHCA_DEVCMD_RECV_MAD, 0, false },
	{ VHCA_DEVCMD_REREG_MR, sizeof(struct vhca_devcmd_rereg_mr), true },
	{ VHCA_DEVCMD_ATTACH_MCAST, sizeof(struct vhca_devcmd_mcast), true },
	{ VHCA_DEVCMD_DETACH_MCAST, sizeof(struct vhca_devcmd_mcast), true },
};

/* Every op of enum vhca_devcmd_op is above: "unknown" must mean it. */
_Static_assert(sizeof(ops) / sizeof(ops[0]) == 26,
	      "a new devcmd op belongs in ops[]");

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

int garbage(const char *run_dir, unsigned int va, unsigned int vb,
		   uint64_t seed)
{
	struct vhca_devcmd_function f0, f, fb0;
	struct vhca_devcmd_hdr q = { .op = VHCA_DEVCMD_QUERY_FUNCTION };
	struct fake_ctx a1, a2, b[3];
	struct fake_vm A, B;
	uint8_t body[1024];
	char line0[512], line1[512], what[160];
	uint32_t hb, pd;
	static const uint16_t unknown[] = { 0x00, 0x0e, 0x0f, 0x15, 0x23,
					    0x36, 0x44, 0x45, 0x7fff, 0xffff };
	static const uint32_t never[] = { 0, 2, 3, 4, 1000, 0x7fffffff,
					  0xffffffff };
	unsigned int random_cmds = 4000;

	rnd_seed(seed);
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
