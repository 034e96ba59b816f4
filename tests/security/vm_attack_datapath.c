// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vm_attacks datapath, host_target, vm_peer, host_peer, clean_pair: a
 * VM's data path towards another VM and a host process (WQEs naming
 * memory and keys it may not, doorbells beyond its queues), QEMU killed
 * mid-traffic, the clean pair beside the attacks, and vhcad stopped
 * under a VM (gone_watch).
 */
#include "vm_attacks.h"

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

int datapath(const char *run_dir, unsigned int va, unsigned int vb,
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
int host_target(const char *dev, const char *dir)
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

int vm_peer(const char *run_dir, unsigned int vf, const char *dir)
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

int host_peer(const char *dev, const char *dir)
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

int clean_pair(const char *run_dir, unsigned int va, unsigned int vb)
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

int gone_watch(const char *run_dir, unsigned int vf)
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
