// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A bounded fuzz of the data path (security issue 9): a hostile tenant on
 * one VF drives the device through the raw interface (raw.h, no provider)
 * while the clean pair of sec_lib.sh runs on two other VFs.
 *
 * Each round is a forked child with a fresh context (plus a second one,
 * "B", closed under traffic part-way), four CQs, two SRQs, MRs and QPs of
 * every type.  The QPs come in two kinds:
 *  - wild QPs get everything: random and semi-random WQEs (opcodes,
 *    flags, SGE counts, addresses, lengths and keys, rkeys, remote
 *    addresses, inline lengths, UD address fields), garbage over whole
 *    rings, producer indices that jump, wrap and go backwards, scribbled
 *    doorbell records, random modifies towards themselves, each other,
 *    the clean pair's QPs (TARGET arguments) and QPNs and LIDs that do
 *    not exist; their CQs' consumer indices and arm words are random too;
 *  - probed QPs (four pairs: RC, RC, UC, UD) get random WQEs at a rate
 *    of their own (1 to 50 %), garbage rings too, but honest indices, so
 *    what comes back can be checked exactly; a clean pair among them (RC
 *    or UC, some rounds) gets valid WQEs only and must never fail.
 * Meanwhile the context's doorbell page gets random FIFO entries, heads,
 * overflow and wake-up flags; CQs are resized; a second MR is
 * deregistered under traffic and registered again; QPs are destroyed and
 * created again; and two targeted cases come again and again: WQEs that
 * a device must refuse but that are otherwise sound (a range across an
 * MR's edge by 1 to 64 bytes, under a key without the right, in another
 * PD, under the dead key), and a retry that goes back over a WQE that
 * failed (it once made vhcad dereference NULL).
 *
 * What must hold (every failure prints "FAIL: round R (seed S) ..."):
 *  - no byte outside the MRs the device may write changes: canary
 *    regions beside the MR (the same pages included), an MR without
 *    remote or local-write access, an MR with every right in another PD,
 *    the second MR after DEREG_MR returned, context B's MR after B was
 *    freed, the send/receive/SRQ rings (the device only reads them) and
 *    the unused rest of every doorbell page;
 *  - every CQE of a probed QP is well formed and names a QP of its CQ,
 *    no queue completes more WQEs than were posted to it, the honest
 *    CQs never overrun, an error CQE means the QP is in ERR, and the
 *    clean pair's CQEs all say success;
 *  - after the storm every probed QP either works (a clean WQE completes
 *    with success, and an RDMA WRITE between a sane pair lands) or is in
 *    ERR with an error completion or error event to say why, and flushes
 *    what is posted to it; a fresh RC and UD pair on the same context
 *    moves verified data;
 *  - once the child is gone (it exits, closes nothing, or is killed at a
 *    random step) the VF holds nothing; vhcad lives throughout.
 * The clean pair's own checks (sec_lib.sh bystander_check) cover the
 * other tenant.
 *
 * usage: fuzz_datapath DEV SECONDS SEED VHCAD_PID [TARGET...]
 *   TARGET = LID:QPN:RKEY:ADDR, an endpoint of the clean pair.
 *   VHCA_FUZZ_ROUND=N in the environment runs round N of SEED alone.
 * Exit: 0 all held, 1 a check failed, 2 a broken set-up.
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

#include <vhca/opcode.h>

#include "fuzz.h"
#include "raw.h"

/* ---- failures ------------------------------------------------------------ */

static unsigned int round_no, step_no;
static uint64_t round_seed;
static int failures;
static pid_t vhcad_pid;
static const char *dev_name;	/* the VF the tenant has */
static const char *action = "set-up";	/* of the step, for reports */

/* A failed command may only mean that vhcad is gone: say so, and stop. */
static void died_check(void)
{
	if (vhcad_pid > 0 && !alive(vhcad_pid)) {
		printf("FAIL: round %u (seed %#" PRIx64 ") step %u: vhcad died (during: %s)\n",
		       round_no, round_seed, step_no, action);
		fflush(stdout);
		_exit(1);
	}
}

#define FAIL(...)                                                             \
	do {                                                                  \
		died_check();                                                 \
		failures++;                                                   \
		printf("FAIL: round %u (seed %#" PRIx64 ") step %u: ",        \
		       round_no, round_seed, step_no);                        \
		printf(__VA_ARGS__);                                          \
		printf("\n");                                                 \
		if (failures > 20)                                            \
			exit(1);                                              \
	} while (0)

#define SETUP(cond, what)                                                     \
	do {                                                                  \
		int err_ = (cond);                                            \
		if (err_) {                                                   \
			died_check();                                         \
			printf("round %u: set-up: %s: %s\n", round_no, what,  \
			       strerror(err_));                               \
			exit(2);                                              \
		}                                                             \
	} while (0)

/* ---- the tenant's memory ---------------------------------------------- */

/*
 * One mapping of 64 KiB regions.  Only the main MR may change (and
 * context B's while B lives); it starts 24 bytes into its region and ends
 * 40 before the next, so the canary shares its first and last page.
 */
#define REG 65536u
enum {
	R_CANARY_A,
	R_MR,
	R_CANARY_B,
	R_MR_NOACCESS,		/* registered with access 0 */
	R_MR_OTHER_PD,		/* every right, but another PD */
	R_CANARY_C,
	R_MR2,			/* every right; deregistered for a while */
	R_CANARY_D,
	R_MR_B,			/* context B's MR */
	R_CANARY_E,
	R_COUNT
};
#define MR_HEAD 24u
#define MR_TAIL 40u
#define MR_LEN (REG - MR_HEAD - MR_TAIL)
/* Probes write here; the storm is over by then. */
#define PROBE_AREA (MR_LEN - 8192)

#define ACCESS_ALL                                                            \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |                   \
	 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)

static uint8_t *mem;
static uint8_t *mr_base;	/* mem + R_MR * REG + MR_HEAD */

static uint8_t pattern_at(size_t off)
{
	return (uint8_t)((off * 2654435761u) >> 13) ^ 0x5a;
}

static void pattern_fill(uint8_t *p, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern_at(off + i);
}

/* The first offset in [off, off + len) of mem that lost its pattern. */
static long pattern_broken(const uint8_t *base, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (base[i] != pattern_at(off + i))
			return (long)(off + i);
	return -1;
}

static const char *const region_name[R_COUNT] = {
	"canary before the MR", "the MR", "canary after the MR",
	"the MR without access", "the MR of another PD", "canary",
	"the second MR", "canary", "context B's MR", "canary",
};

/* ---- objects --------------------------------------------------------- */

struct fz_cq {
	struct raw_cq cq;
	bool honest;		/* consumer index kept, CQEs checked */
	bool live;
	uint32_t consumer;
	uint64_t uh;		/* user_handle: async and comp events */
	int channel;
};

struct fz_srq {
	struct raw_srq srq;
	bool honest;
	bool live;
	uint32_t head;
	uint8_t *shadow;	/* what the ring must hold */
	uint64_t posted, cqes;
	uint64_t uh;
};

struct fz_qp {
	struct raw_qp qp;
	struct raw_ctx *ctx;
	uint8_t type;
	bool probed;
	bool clean;		/* only valid WQEs: it must keep working */
	unsigned int bad_pct;	/* of its WQEs, this many are random */
	bool live;
	int index;
	struct fz_cq *scq, *rcq;
	struct fz_srq *srq;
	uint8_t *sq_shadow, *rq_shadow;
	uint32_t sq_head, rq_head;
	uint32_t max_sge, max_inline;
	uint64_t uh;
	int partner;		/* probed pairs: the other QP's index */
	/* the target of its last connect */
	uint16_t dlid;
	uint32_t dqpn;
	bool sane;		/* connected to its partner, PSNs in step */
	/* counted since its last modify */
	uint64_t posted_send, posted_recv, cqe_send, cqe_recv;
	bool err_cqe, err_event, set_err, check_state;
	uint64_t probe_wrid;
	bool probe_seen;
	uint32_t probe_status;
};

#define N_PROBED 8
#define N_WILD 7
#define N_QP (N_PROBED + N_WILD)
#define N_CQ 4
#define N_SRQ 2
#define UH_QP 0x5150000000ull
#define UH_CQ 0xc0c0000000ull
#define UH_SRQ 0x5e50000000ull
#define QKEY 0x1234u

struct target {
	uint16_t lid;
	uint32_t qpn, rkey;
	uint64_t addr;
};

static struct {
	struct raw_ctx a, b;
	bool b_live;
	int channel;		/* the completion channel (-1: none) */
	uint32_t pd2;
	uint32_t mr_key, noacc_key, other_key, b_key;
	uint32_t mr2_key, mr2_handle;
	bool mr2_live;
	uint16_t lid;
	struct fz_cq cqs[N_CQ];
	struct fz_srq srqs[N_SRQ];
	struct fz_qp qps[N_QP];
	/* context B: a CQ, an RC and a UD QP */
	struct raw_cq b_cq;
	struct raw_qp b_rc, b_ud;
	/* QPNs that have been on each CQ (destroyed wild QPs included) */
	uint32_t cq_qpns[N_CQ][64];
	unsigned int cq_nqpns[N_CQ];
	uint8_t *mr2_snapshot;	/* the second MR while deregistered */
	uint8_t *b_snapshot;	/* B's MR once B is gone */
	uint64_t cqes, errors, flushes, probes_ok, probes_err, events;
} f;

/* The clean pair's endpoints (arguments). */
static struct target targets[8];
static unsigned int ntargets;

/* ---- commands ------------------------------------------------------- */

static int modify(struct raw_ctx *c, struct ib_uverbs_modify_qp *m)
{
	return raw_cmd(c->fd, IB_USER_VERBS_CMD_MODIFY_QP, m, sizeof(*m), NULL,
		       0, 0);
}

static int query(struct raw_ctx *c, uint32_t handle,
		 struct ib_uverbs_query_qp_resp *r)
{
	struct ib_uverbs_query_qp q = { .response = (uintptr_t)r,
					.qp_handle = handle };

	memset(r, 0, sizeof(*r));
	return raw_cmd(c->fd, IB_USER_VERBS_CMD_QUERY_QP, &q, sizeof(q), NULL,
		       0, sizeof(*r));
}

static int qp_state(struct fz_qp *q)
{
	struct ib_uverbs_query_qp_resp r;
	int ret = query(q->ctx, q->qp.handle, &r);

	if (ret) {
		FAIL("QUERY_QP of QP %d: %s", q->index, strerror(ret));
		return -1;
	}
	return r.qp_state;
}

struct conn {
	uint16_t dlid;
	uint32_t dqpn, sq_psn, rq_psn, access, qkey;
	uint8_t timeout, retry, rnr_retry, min_rnr, mtu, rd_atomic;
};

/* RESET, INIT, RTR, RTS with @k; 0 or the first errno. */
/* The transition connect_qp() failed in last, for the failure's message. */
static const char *connect_step = "";

static int connect_qp(struct raw_ctx *c, uint32_t handle, uint8_t type,
		      const struct conn *k)
{
	struct ib_uverbs_modify_qp m = { .qp_handle = handle,
					 .qp_state = IBV_QPS_RESET,
					 .attr_mask = IBV_QP_STATE };
	int ret;

	connect_step = "to RESET";
	ret = modify(c, &m);
	if (ret)
		return ret;
	connect_step = "RESET to INIT";
	m = (struct ib_uverbs_modify_qp){
		.qp_handle = handle, .qp_state = IBV_QPS_INIT, .port_num = 1,
		.qkey = k->qkey, .qp_access_flags = k->access,
		.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			     (type == IBV_QPT_UD ? IBV_QP_QKEY :
						   IBV_QP_ACCESS_FLAGS),
	};
	ret = modify(c, &m);
	if (ret)
		return ret;
	connect_step = "INIT to RTR";
	m = (struct ib_uverbs_modify_qp){ .qp_handle = handle,
					  .qp_state = IBV_QPS_RTR,
					  .attr_mask = IBV_QP_STATE };
	if (type != IBV_QPT_UD) {
		m.path_mtu = k->mtu;
		m.dest_qp_num = k->dqpn;
		m.rq_psn = k->rq_psn;
		m.dest.dlid = k->dlid;
		m.dest.port_num = 1;
		m.max_dest_rd_atomic = k->rd_atomic;
		m.min_rnr_timer = k->min_rnr;
		m.attr_mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			       IBV_QP_RQ_PSN;
		if (type == IBV_QPT_RC)
			m.attr_mask |= IBV_QP_MAX_DEST_RD_ATOMIC |
				       IBV_QP_MIN_RNR_TIMER;
	}
	ret = modify(c, &m);
	if (ret)
		return ret;
	connect_step = "RTR to RTS";
	m = (struct ib_uverbs_modify_qp){
		.qp_handle = handle, .qp_state = IBV_QPS_RTS,
		.sq_psn = k->sq_psn, .timeout = k->timeout,
		.retry_cnt = k->retry, .rnr_retry = k->rnr_retry,
		.max_rd_atomic = k->rd_atomic,
		.attr_mask = IBV_QP_STATE | IBV_QP_SQ_PSN,
	};
	if (type == IBV_QPT_RC)
		m.attr_mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			       IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
	return modify(c, &m);
}

/* Attributes that cannot keep a probed QP waiting for long. */
static struct conn tame_conn(uint16_t dlid, uint32_t dqpn, uint32_t psn_out,
			     uint32_t psn_in)
{
	return (struct conn){
		.dlid = dlid, .dqpn = dqpn, .sq_psn = psn_out,
		.rq_psn = psn_in, .qkey = QKEY,
		.access = chance(80) ? IBV_ACCESS_REMOTE_WRITE |
					       IBV_ACCESS_REMOTE_READ |
					       IBV_ACCESS_REMOTE_ATOMIC :
				       rn(16),
		.timeout = (uint8_t)(8 + rn(5)), .retry = (uint8_t)rn(4),
		.rnr_retry = (uint8_t)rn(4), .min_rnr = (uint8_t)(1 + rn(12)),
		.mtu = (uint8_t)(1 + rn(5)), .rd_atomic = (uint8_t)(1 + rn(16)),
	};
}

/* ---- event sources ------------------------------------------------------ */

static struct fz_qp *qp_by_uh(uint64_t uh)
{
	if ((uh & ~0xffffull) != UH_QP || (uh & 0xffff) >= N_QP)
		return NULL;
	return &f.qps[uh & 0xffff];
}

static void drain_async(void)
{
	struct ib_uverbs_async_event_desc ev[64];
	ssize_t n;

	while ((n = read(f.a.async_rd, ev, sizeof(ev))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++) {
			uint64_t el = ev[i].element;
			struct fz_qp *q = qp_by_uh(el);

			f.events++;
			switch (ev[i].event_type) {
			case IBV_EVENT_CQ_ERR:
				if ((el & ~0xffffull) != UH_CQ ||
				    (el & 0xffff) >= N_CQ)
					FAIL("CQ_ERR event for %#" PRIx64, el);
				else if (f.cqs[el & 0xffff].honest)
					FAIL("honest CQ %u overran: more CQEs than WQEs",
					     (unsigned int)(el & 0xffff));
				break;
			case IBV_EVENT_QP_FATAL:
			case IBV_EVENT_QP_REQ_ERR:
			case IBV_EVENT_QP_ACCESS_ERR:
				if (!q)
					FAIL("QP error event %u for %#" PRIx64,
					     ev[i].event_type, el);
				else
					q->err_event = true;
				break;
			case IBV_EVENT_QP_LAST_WQE_REACHED:
			case IBV_EVENT_COMM_EST:
			case IBV_EVENT_SQ_DRAINED:
				if (!q)
					FAIL("QP event %u for %#" PRIx64,
					     ev[i].event_type, el);
				break;
			case IBV_EVENT_SRQ_LIMIT_REACHED:
			case IBV_EVENT_SRQ_ERR:
				if ((el & ~0xffffull) != UH_SRQ ||
				    (el & 0xffff) >= N_SRQ)
					FAIL("SRQ event for %#" PRIx64, el);
				break;
			default:
				FAIL("unexpected async event %u (element %#" PRIx64
				     ")", ev[i].event_type, el);
			}
		}
	}
	/* context B's: whatever they are, they must not block it */
	if (f.b_live) {
		char junk[512];

		while (read(f.b.async_rd, junk, sizeof(junk)) > 0)
			;
	}
	if (f.channel >= 0) {
		struct ib_uverbs_comp_event_desc ce[32];

		while ((n = read(f.channel, ce, sizeof(ce))) > 0)
			for (size_t j = 0; j < (size_t)n / sizeof(ce[0]); j++) {
				bool known = false;

				for (int i = 0; i < N_CQ; i++)
					known |= f.cqs[i].channel == f.channel &&
						 ce[j].cq_handle == f.cqs[i].uh;
				if (!known)
					FAIL("comp event for %#" PRIx64
					     ", no CQ of that channel",
					     (uint64_t)ce[j].cq_handle);
			}
	}
}

static bool cq_knows(int cqi, uint32_t qpn)
{
	for (unsigned int i = 0; i < f.cq_nqpns[cqi]; i++)
		if (f.cq_qpns[cqi][i] == qpn)
			return true;
	return false;
}

static void cq_remember(struct fz_cq *c, uint32_t qpn)
{
	int i = (int)(c - f.cqs);

	if (!cq_knows(i, qpn) && f.cq_nqpns[i] < 64)
		f.cq_qpns[i][f.cq_nqpns[i]++] = qpn;
}

static struct fz_qp *qp_by_qpn(uint32_t qpn)
{
	for (int i = 0; i < N_QP; i++)
		if (f.qps[i].live && f.qps[i].qp.qpn == qpn)
			return &f.qps[i];
	return NULL;
}

/* A completion opcode the device may write: a table row's, or a receive. */
static bool wc_opcode_known(uint8_t op)
{
	if (op == IBV_WC_RECV || op == IBV_WC_RECV_RDMA_WITH_IMM)
		return true;
	for (unsigned int i = 0; i < VHCA_WQE_OPCODE_COUNT; i++)
		if (vhca_wr_table[i].name && vhca_wr_table[i].wc_opcode == op)
			return true;
	return false;
}

/* One CQE of an honest CQ, copied out. */
static void check_cqe(struct fz_cq *c, const struct vhca_cqe *e)
{
	static const uint8_t zero[sizeof(e->reserved)];
	struct fz_qp *q = qp_by_qpn(e->qp_num);
	bool recv = e->opcode & IBV_WC_RECV;

	f.cqes++;
	if (!cq_knows((int)(c - f.cqs), e->qp_num)) {
		FAIL("CQ %d: a CQE of QPN %#x, which never used it",
		     (int)(c - f.cqs), e->qp_num);
		return;
	}
	if (e->status > IBV_WC_GENERAL_ERR)
		FAIL("CQE status %u", e->status);
	if (!wc_opcode_known(e->opcode))
		FAIL("CQE opcode %u", e->opcode);
	if (memcmp(e->reserved, zero, sizeof(zero)))
		FAIL("CQE reserved bytes set");
	if (!q)
		return;		/* (cq_knows said it was on this CQ) */
	if (e->status != IBV_WC_SUCCESS && q->clean)
		FAIL("clean QP %d (type %u): a valid WQE completed with status %u (opcode %u)",
		     q->index, q->type, e->status, e->opcode);
	if (e->status != IBV_WC_SUCCESS) {
		f.errors += e->status != IBV_WC_WR_FLUSH_ERR;
		f.flushes += e->status == IBV_WC_WR_FLUSH_ERR;
		q->err_cqe = true;
		q->check_state = true;
	}
	if (recv && q->srq) {
		if (++q->srq->cqes > q->srq->posted)
			FAIL("SRQ %d: %" PRIu64 " receive CQEs, %" PRIu64
			     " WQEs posted", (int)(q->srq - f.srqs),
			     q->srq->cqes, q->srq->posted);
	} else if (recv) {
		if (++q->cqe_recv > q->posted_recv)
			FAIL("QP %d: %" PRIu64 " receive CQEs, %" PRIu64
			     " WQEs posted", q->index, q->cqe_recv,
			     q->posted_recv);
	} else {
		if (++q->cqe_send > q->posted_send)
			FAIL("QP %d: %" PRIu64 " send CQEs, %" PRIu64
			     " WQEs posted", q->index, q->cqe_send,
			     q->posted_send);
		if (e->wr_id == q->probe_wrid) {
			q->probe_seen = true;
			q->probe_status = e->status;
		}
	}
	if (e->status == IBV_WC_SUCCESS && !recv && e->byte_len > (1u << 31))
		FAIL("send CQE byte_len %u", e->byte_len);
}

static void poll_cq(struct fz_cq *c)
{
	uint32_t count = c->cq.count;

	if (!c->live)
		return;
	for (unsigned int n = 0; n < 4 * count; n++) {
		struct vhca_cqe *slot = &c->cq.ring[c->consumer & (count - 1)];
		uint8_t owner = atomic_load_explicit((_Atomic uint8_t *)&slot->owner,
						     memory_order_acquire);
		struct vhca_cqe e;

		if ((owner & 1) != (((c->consumer / count) & 1) ^ 1))
			break;
		memcpy(&e, slot, sizeof(e));
		if (c->honest)
			check_cqe(c, &e);
		c->consumer++;
		if (c->honest || chance(70))
			atomic_store_explicit(
				(_Atomic uint32_t *)&c->cq.db->consumer,
				c->consumer, memory_order_release);
	}
}

/* An error CQE says its QP is in ERR, right away. */
static void check_states(void)
{
	for (int i = 0; i < N_PROBED; i++) {
		struct fz_qp *q = &f.qps[i];
		int st;

		if (!q->check_state)
			continue;
		q->check_state = false;
		st = qp_state(q);
		if (st >= 0 && st != IBV_QPS_ERR)
			FAIL("QP %d (type %u) had an error CQE but is in state %d",
			     i, q->type, st);
	}
}

static void poll_all(void)
{
	for (int i = 0; i < N_CQ; i++)
		poll_cq(&f.cqs[i]);
	drain_async();
	check_states();
}

/*
 * Around a command that changes @q: whatever it produced before the
 * command returned is visible when it has, so a poll right after takes
 * the old generation's CQEs and events, counted and then forgotten.  The
 * state checks they ask for wait: @q's state is a new one now.
 */
static void settle_before(struct fz_qp *q)
{
	(void)q;
	poll_all();
}

static void settle_after(struct fz_qp *q)
{
	for (int i = 0; i < N_CQ; i++)
		poll_cq(&f.cqs[i]);
	drain_async();
	q->posted_send = q->posted_recv = q->cqe_send = q->cqe_recv = 0;
	q->err_cqe = q->err_event = q->set_err = false;
	q->check_state = false;
}

/* ---- rings ----------------------------------------------------------------- */

static void ring_write(uint8_t *ring, uint8_t *shadow, size_t off,
		       const void *src, size_t len)
{
	memcpy(ring + off, src, len);
	memcpy(shadow + off, src, len);
}

static void ring_garbage(uint8_t *ring, uint8_t *shadow, size_t len)
{
	rnd_fill(shadow, len);
	memcpy(ring, shadow, len);
}

/* The doorbell page's unused tail and every queue's doorbell-page tail. */
static void fill_db_tail(void *db, size_t used)
{
	pattern_fill((uint8_t *)db + used, used, VHCA_PAGE_SIZE - used);
}

static void check_db_tail(const void *db, size_t used, const char *what,
			  int index)
{
	long bad = pattern_broken((const uint8_t *)db + used, used,
				  VHCA_PAGE_SIZE - used);

	if (bad >= 0)
		FAIL("%s %d: byte %ld of its doorbell page (beyond the record) changed",
		     what, index, bad);
}

/* ---- addresses and keys ------------------------------------------------- */

static uint64_t at(int region, uint32_t off)
{
	return (uintptr_t)(mem + (size_t)region * REG + off);
}

/*
 * Where a local SGE or a remote range goes, with its key: mostly inside
 * the MR; often across one of its edges by 1 to 64 bytes (or exactly up
 * to it); into the canaries, the MR without access, the other PD's MR,
 * context B's, the second MR, the clean pair's (remote only) or
 * anywhere.  @len is chosen here unless @fixed_len (a remote range).
 */
static void gen_place(__u64 *addr, __u32 *len, __u32 *key, bool fixed_len)
{
	uint64_t end = (uintptr_t)mr_base + MR_LEN;
	uint32_t n = fixed_len ? *len :
		     chance(70) ? rn(2048) :
		     chance(50) ? rn(MR_LEN + 64) : (uint32_t)rnd();
	uint32_t over = chance(25) ? 0 : 1 + rn(64);

	*key = f.mr_key;
	switch (rn(16)) {
	case 0: case 1: case 2: case 3: case 4: case 5:
		if (!fixed_len)
			n = rn(2048);
		*addr = (uintptr_t)mr_base + (n < PROBE_AREA ?
					      rn(PROBE_AREA - n) : 0);
		break;
	case 6: case 7:
		if (!fixed_len)
			n = 1 + rn(128);
		*addr = end - n + over;
		break;
	case 8:
		if (!fixed_len)
			n = 1 + rn(128);
		*addr = (uintptr_t)mr_base - 1 - rn(n < MR_HEAD ? n : MR_HEAD);
		break;
	case 9:
		*addr = at(chance(50) ? R_CANARY_A : R_CANARY_B + 3 * (int)rn(2),
			   rn(REG));
		break;
	case 10:
		*addr = at(R_MR_NOACCESS, rn(REG / 2));
		*key = f.noacc_key;
		break;
	case 11:
		*addr = at(R_MR_OTHER_PD, rn(REG / 2));
		*key = f.other_key;
		break;
	case 12:
		*addr = at(R_MR_B, rn(REG / 2));
		*key = f.b_key;
		break;
	case 13:
		*addr = at(R_MR2, rn(REG / 2));
		*key = f.mr2_key;
		break;
	case 14:
		if (fixed_len && ntargets) {
			const struct target *t = &targets[rn(ntargets)];

			*addr = t->addr + rn(4096);
			*key = t->rkey;
			break;
		}
		/* fall through */
	default:
		*addr = chance(50) ? rnd() : UINT64_MAX - rn(4096);
		*key = chance(50) ? (uint32_t)rnd() : f.mr_key ^ (1u << rn(32));
		break;
	}
	if (!fixed_len)
		*len = chance(3) ? 0 : n;
}

static void gen_sge(struct vhca_sge *s)
{
	gen_place(&s->addr, &s->length, &s->lkey, false);
}

static void gen_remote(__u64 *addr, __u32 *rkey, uint32_t len)
{
	gen_place(addr, &len, rkey, true);
	if (chance(20))
		*addr &= ~7ull;
}

/* A destination: (LID, QPN) of something that exists or not. */
static void gen_dest(struct fz_qp *q, uint16_t *dlid, uint32_t *dqpn)
{
	const struct fz_qp *p;

	*dlid = f.lid;
	switch (rn(10)) {
	case 0:
		*dqpn = q->qp.qpn;
		break;
	case 1: case 2:
		p = &f.qps[rn(N_QP)];
		*dqpn = p->qp.qpn;
		break;
	case 3: case 4:
		if (ntargets) {
			const struct target *t = &targets[rn(ntargets)];

			*dlid = t->lid;
			*dqpn = t->qpn;
			break;
		}
		/* fall through */
	case 5:
		*dqpn = chance(50) ? f.b_rc.qpn : f.b_ud.qpn;
		break;
	case 6:
		*dqpn = 2 + rn(0xfffffd);	/* most likely nobody */
		break;
	case 7:
		*dlid = (uint16_t)(1 + rn(8));	/* the PF and the other VFs */
		*dqpn = chance(50) ? 2 + rn(0xfffffd) : f.qps[rn(N_QP)].qp.qpn;
		break;
	case 8:
		*dlid = (uint16_t)(0x100 + rn(0xbe00));	/* no such port */
		*dqpn = rn(0x1000000);
		break;
	default:
		*dlid = (uint16_t)rnd();
		*dqpn = (uint32_t)rnd();
		break;
	}
}

/* ---- work requests ---------------------------------------------------------- */

static uint8_t gen_opcode(uint8_t type)
{
	static const uint8_t rc_ops[] = { 0, 1, 2, 3, 4, 5, 6, 15 };
	static const uint8_t uc_ops[] = { 0, 1, 2, 3 };
	static const uint8_t ud_ops[] = { 2, 3 };

	if (chance(10))
		return (uint8_t)rnd();
	if (chance(10))
		return (uint8_t)rn(8);
	switch (type) {
	case IBV_QPT_RC: return rc_ops[rn(sizeof(rc_ops))];
	case IBV_QPT_UC: return uc_ops[rn(sizeof(uc_ops))];
	default: return ud_ops[rn(sizeof(ud_ops))];
	}
}

/*
 * A WQE a correct provider could have written for @q: a valid opcode
 * for its type (on a clean RC pair none that needs a receive), SGEs and
 * remote addresses inside the MR, atomics aligned, inline data that fits.
 */
static void gen_valid_send(struct fz_qp *q, uint8_t *slot, uint64_t wr_id)
{
	static const uint8_t rc_clean[] = { VHCA_WQE_RDMA_WRITE,
					    VHCA_WQE_RDMA_READ,
					    VHCA_WQE_ATOMIC_CMP_AND_SWP,
					    VHCA_WQE_ATOMIC_FETCH_AND_ADD };
	struct vhca_send_wqe *w = (struct vhca_send_wqe *)slot;
	struct vhca_sge *sge = (struct vhca_sge *)(slot + sizeof(*w));
	uint32_t n, len = 0, max = q->type == IBV_QPT_UD ? 256 : 4096;
	bool atomic;

	memset(slot, 0, q->qp.sq_stride);
	w->wr_id = wr_id;
	if (q->type == IBV_QPT_RC && q->clean)
		w->opcode = rc_clean[rn(sizeof(rc_clean))];
	else if (q->type == IBV_QPT_RC)
		w->opcode = (uint8_t)rn(7);
	else if (q->type == IBV_QPT_UC)
		w->opcode = (uint8_t)rn(4);
	else
		w->opcode = (uint8_t)(VHCA_WQE_SEND + rn(2));
	atomic = w->opcode == VHCA_WQE_ATOMIC_CMP_AND_SWP ||
		 w->opcode == VHCA_WQE_ATOMIC_FETCH_AND_ADD;
	w->flags = (uint8_t)((chance(70) ? VHCA_WQE_SIGNALED : 0) |
			     (chance(20) ? VHCA_WQE_SOLICITED : 0) |
			     (chance(10) ? VHCA_WQE_FENCE : 0));
	w->imm_data = (uint32_t)rnd();
	if (atomic) {
		w->num_sge = 1;
		sge->addr = (uintptr_t)mr_base + (rn(PROBE_AREA / 8 - 1) * 8);
		sge->length = 8;
		sge->lkey = f.mr_key;
		len = 8;
	} else if (w->opcode != VHCA_WQE_RDMA_READ && chance(20) &&
		   q->max_inline) {
		w->flags |= VHCA_WQE_INLINE;
		w->inline_len = rn(q->max_inline + 1);
		rnd_fill(slot + sizeof(*w), w->inline_len);
		len = w->inline_len;
	} else {
		n = rn((q->max_sge < 4 ? q->max_sge : 4) + 1);
		w->num_sge = (uint8_t)n;
		for (uint32_t i = 0; i < n; i++) {
			sge[i].length = rn(max / 4 + 1);
			sge[i].addr = (uintptr_t)mr_base +
				      rn(PROBE_AREA - sge[i].length);
			sge[i].lkey = f.mr_key;
			len += sge[i].length;
		}
	}
	if (q->type == IBV_QPT_UD) {
		const struct fz_qp *p = &f.qps[q->partner];

		w->ud.remote_qpn = p->qp.qpn;
		w->ud.remote_qkey = QKEY;
		w->ud.dlid = f.lid;
		w->ud.port_num = 1;
	} else if (atomic) {
		w->atomic.remote_addr = (uintptr_t)mr_base +
					rn(PROBE_AREA / 8 - 1) * 8;
		w->atomic.rkey = f.mr_key;
		w->atomic.compare_add = rnd();
		w->atomic.swap = rnd();
	} else {
		w->rdma.remote_addr = (uintptr_t)mr_base + rn(PROBE_AREA - len);
		w->rdma.rkey = f.mr_key;
	}
}

/* A random or semi-random send WQE for @q into @slot (sq_stride bytes). */
static void gen_send(struct fz_qp *q, uint8_t *slot, uint64_t wr_id)
{
	if (!chance(q->bad_pct)) {
		gen_valid_send(q, slot, wr_id);
		return;
	}
	uint32_t stride = q->qp.sq_stride;
	struct vhca_send_wqe *w = (struct vhca_send_wqe *)slot;
	struct vhca_sge *sge = (struct vhca_sge *)(slot + sizeof(*w));
	uint32_t len = 0, room = (stride - (uint32_t)sizeof(*w)) /
				(uint32_t)sizeof(*sge);

	if (chance(5)) {
		rnd_fill(slot, stride);	/* pure garbage */
		return;
	}
	if (chance(20))
		rnd_fill(slot, stride);
	else
		memset(slot, 0, stride);
	w->wr_id = wr_id;
	w->opcode = gen_opcode(q->type);
	w->flags = chance(80) ? VHCA_WQE_SIGNALED : 0;
	if (chance(20))
		w->flags |= (uint8_t)rn(16);
	if (chance(3))
		w->flags = (uint8_t)rnd();
	w->imm_data = (uint32_t)rnd();
	if (w->flags & VHCA_WQE_INLINE) {
		static const uint32_t lens[] = { 0, 1, 8, 64, 255, 256, 257 };

		w->inline_len = chance(70) ? lens[rn(sizeof(lens) / 4)] :
				chance(50) ? stride - (uint32_t)sizeof(*w) +
						     rn(3) - 1 :
					     (uint32_t)rnd();
		rnd_fill(slot + sizeof(*w),
			 stride - sizeof(*w));
		len = w->inline_len;
	} else {
		uint32_t n = chance(80) ? rn((q->max_sge < room ? q->max_sge :
								  room) + 1) :
			     chance(50) ? q->max_sge + 1 : rn(256);

		w->num_sge = (uint8_t)n;
		if (n > room)
			n = room;
		for (uint32_t i = 0; i < n; i++) {
			gen_sge(&sge[i]);
			len += sge[i].length;
		}
		if (chance(50) && (w->opcode == 5 || w->opcode == 6) && n) {
			sge[0].length = 8;	/* atomics want 8 bytes */
			sge[0].addr &= ~7ull;
			w->num_sge = 1;
		}
	}
	if (w->opcode == 5 || w->opcode == 6) {
		gen_remote(&w->atomic.remote_addr, &w->atomic.rkey, 8);
		w->atomic.compare_add = rnd();
		w->atomic.swap = rnd();
	} else if (q->type == IBV_QPT_UD) {
		uint16_t dlid;
		uint32_t dqpn;

		gen_dest(q, &dlid, &dqpn);
		if (chance(40)) {
			const struct fz_qp *p = &f.qps[q->partner >= 0 ?
						       q->partner :
						       (int)rn(N_QP)];

			dlid = f.lid;
			dqpn = p->qp.qpn;
		}
		w->ud.remote_qpn = chance(95) ? dqpn : (uint32_t)rnd();
		w->ud.remote_qkey = chance(70) ? QKEY : (uint32_t)rnd();
		w->ud.dlid = dlid;
		w->ud.sl = (uint8_t)(chance(80) ? 0 : rnd());
		w->ud.port_num = (uint8_t)(chance(80) ? 1 : rnd());
		w->ud.is_global = (uint8_t)(chance(80) ? 0 : rnd());
		w->ud.hop_limit = (uint8_t)rnd();
		w->ud.sgid_index = (uint8_t)(chance(80) ? 0 : rnd());
		w->ud.traffic_class = (uint8_t)rnd();
		w->ud.flow_label = (uint32_t)rnd();
		rnd_fill(w->ud.dgid, 16);
	} else {
		gen_remote(&w->rdma.remote_addr, &w->rdma.rkey, len);
	}
}

/*
 * A receive WQE for a ring of @stride bytes a slot; valid (room for any
 * valid message and a GRH, in the MR) but for @bad_pct of them.
 */
static void gen_recv(uint8_t *slot, uint32_t stride, uint64_t wr_id,
		     unsigned int bad_pct)
{
	struct vhca_recv_wqe *w = (struct vhca_recv_wqe *)slot;
	struct vhca_sge *sge = (struct vhca_sge *)(slot + sizeof(*w));
	uint32_t room = (stride - (uint32_t)sizeof(*w)) / (uint32_t)sizeof(*sge);
	uint32_t n;

	if (!chance(bad_pct) && room) {
		memset(slot, 0, stride);
		w->wr_id = wr_id;
		w->num_sge = 1;
		sge->length = 4096 + 64;
		sge->addr = (uintptr_t)mr_base + rn(PROBE_AREA - 4096 - 64);
		sge->lkey = f.mr_key;
		return;
	}
	if (chance(5)) {
		rnd_fill(slot, stride);
		return;
	}
	memset(slot, 0, stride);
	w->wr_id = wr_id;
	n = chance(85) ? rn((room < 4 ? room : 4) + 1) :
	    chance(50) ? room + rn(3) : (uint32_t)rnd();
	w->num_sge = n;
	if (n > room)
		n = room;
	for (uint32_t i = 0; i < n; i++) {
		gen_sge(&sge[i]);
		if (chance(60)) {	/* room for a UD GRH and a message */
			sge[i].addr = (uintptr_t)mr_base + rn(PROBE_AREA - 8192);
			sge[i].length = 64 + rn(8192);
			sge[i].lkey = f.mr_key;
		}
	}
}

/* ---- doorbells ----------------------------------------------------------------- */

static void wake(struct raw_ctx *c)
{
	uint64_t one = 1;

	if (write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* a full counter wakes it anyway */
	}
}

/* Pushes @q's handle whatever its queued flag says. */
static void push(struct raw_ctx *c, uint32_t handle, uint32_t *queued)
{
	struct vhca_ctx_page *p = c->page;
	uint32_t head = atomic_load((_Atomic uint32_t *)&p->fifo_head);

	atomic_store((_Atomic uint32_t *)queued, 1);
	p->fifo[head % VHCA_DB_FIFO_LEN] = handle << 1 | VHCA_DB_QP;
	atomic_store((_Atomic uint32_t *)&p->fifo_head, head + 1);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_exchange((_Atomic uint32_t *)&p->needs_wakeup, 0))
		wake(c);
}

static void ring(struct fz_qp *q)
{
	if (chance(70))
		raw_ring(q->ctx, &q->qp);
	else
		push(q->ctx, q->qp.handle, &q->qp.db->queued);
}

/* A doorbell that gets through whatever the FIFO looks like. */
static void ring_hard(struct raw_ctx *c, uint32_t handle)
{
	struct vhca_ctx_page *p = c->page;

	for (unsigned int i = 0; i < VHCA_DB_FIFO_LEN; i++)
		p->fifo[i] = handle << 1 | VHCA_DB_QP;
	atomic_fetch_add((_Atomic uint32_t *)&p->fifo_head, 1);
	atomic_store((_Atomic uint32_t *)&p->overflow, 1);
	atomic_thread_fence(memory_order_seq_cst);
	wake(c);
}

/* Garbage on the doorbell page. */
static void fifo_chaos(struct raw_ctx *c)
{
	struct vhca_ctx_page *p = c->page;
	_Atomic uint32_t *head = (_Atomic uint32_t *)&p->fifo_head;

	switch (rn(10)) {
	case 0:
		p->fifo[rn(VHCA_DB_FIFO_LEN)] = (uint32_t)(chance(50) ?
							   rnd() : rn(64));
		atomic_fetch_add(head, 1);
		break;
	case 1:
		atomic_fetch_add(head, rn(2 * VHCA_DB_FIFO_LEN));
		break;
	case 2:
		atomic_fetch_sub(head, 1 + rn(100));
		break;
	case 3:
		atomic_store(head, (uint32_t)rnd());
		break;
	case 4:
		for (unsigned int i = 0; i < VHCA_DB_FIFO_LEN; i++)
			p->fifo[i] = chance(50) ? (uint32_t)rnd() : rn(64);
		break;
	case 5:
		atomic_store((_Atomic uint32_t *)&p->overflow,
			     chance(50) ? 1 : (uint32_t)rnd());
		break;
	case 6:
		p->fifo_tail = (uint32_t)rnd();
		break;
	case 7:
		atomic_store((_Atomic uint32_t *)&p->needs_wakeup,
			     (uint32_t)rnd());
		break;
	case 8:
		rnd_fill(p->reserved, sizeof(p->reserved));
		break;
	default:
		wake(c);
		break;
	}
	if (chance(30))
		wake(c);
}

/* An index a hostile guest might publish, relative to @tail and @count. */
static uint32_t wild_index(uint32_t tail, uint32_t count, uint32_t mine)
{
	switch (rn(9)) {
	case 0: return tail + rn(count + 1);
	case 1: return tail + count + 1 + rn(4);	/* overfull */
	case 2: return tail - 1 - rn(4);		/* backwards */
	case 3: return tail + 0x80000000u;
	case 4: return UINT32_MAX - rn(4);		/* about to wrap */
	case 5: return (uint32_t)rnd();
	case 6: return mine + 1 + rn(count * 2);
	default: return mine;
	}
}

/* ---- posting ----------------------------------------------------------------- */

static uint64_t wr_seq;

static uint32_t honest_room(uint32_t head, const uint32_t *tail_p,
			    uint32_t count)
{
	uint32_t used = head - atomic_load((_Atomic uint32_t *)tail_p);

	return used > count ? 0 : count - used;
}

/* A ring the guest fills: its memory, its head and the device's tail. */
struct wq {
	uint8_t *ring, *shadow;
	uint32_t count, stride;
	uint32_t *head;			/* the guest's, published after */
	const uint32_t *tail;		/* the device's, in the record */
	uint64_t *posted;
	bool honest;			/* only what fits, heads as they are */
};

/*
 * @n WQEs made by @gen at the head.  Each is drawn even if an honest
 * poster has no room for it, so a seed replays the same stream.
 */
static void wq_post(const struct wq *q, uint32_t n,
		    void (*gen)(void *arg, uint8_t *slot, uint32_t stride),
		    void *arg)
{
	uint8_t slot[4096];

	for (uint32_t i = 0; i < n; i++) {
		gen(arg, slot, q->stride);
		if (q->honest && !honest_room(*q->head, q->tail, q->count))
			continue;
		ring_write(q->ring, q->shadow,
			   (size_t)(*q->head & (q->count - 1)) * q->stride,
			   slot, q->stride);
		(*q->head)++;
		(*q->posted)++;
	}
	if (!q->honest && chance(25))
		*q->head = wild_index(*q->tail, q->count, *q->head);
}

static void gen_send_of(void *arg, uint8_t *slot, uint32_t stride)
{
	struct fz_qp *q = arg;

	(void)stride;
	gen_send(q, slot, 0xf0ull << 56 | (uint64_t)q->index << 40 |
				  (++wr_seq & 0xffffffffffull));
}

static void gen_recv_of(void *arg, uint8_t *slot, uint32_t stride)
{
	const unsigned int *bad_pct = arg;

	gen_recv(slot, stride, 0xd0ull << 56 | ++wr_seq, *bad_pct);
}

static void post_send(struct fz_qp *q)
{
	struct wq w = { .ring = q->qp.sq, .shadow = q->sq_shadow,
			.count = q->qp.sq_count, .stride = q->qp.sq_stride,
			.head = &q->sq_head, .tail = &q->qp.db->sq_tail,
			.posted = &q->posted_send, .honest = q->probed };

	if (!q->live || !w.count)
		return;
	wq_post(&w, 1 + rn(chance(80) ? 4 : 32), gen_send_of, q);
	atomic_store_explicit((_Atomic uint32_t *)&q->qp.db->sq_head,
			      q->sq_head, memory_order_release);
	if (chance(95))
		ring(q);
}

/* Receives: into the QP's own RQ, or its SRQ. */
static void post_recv(struct fz_qp *q)
{
	uint32_t n = 1 + rn(8);

	if (!q->live)
		return;
	if (q->srq) {
		struct fz_srq *s = q->srq;
		unsigned int bad = s->honest ? 10 : 100;
		struct wq w = { .ring = s->srq.ring, .shadow = s->shadow,
				.count = s->srq.count, .stride = s->srq.stride,
				.head = &s->head, .tail = &s->srq.db->tail,
				.posted = &s->posted, .honest = s->honest };

		if (!s->live)
			return;
		wq_post(&w, n, gen_recv_of, &bad);
		atomic_store_explicit((_Atomic uint32_t *)&s->srq.db->head,
				      s->head, memory_order_release);
		if (chance(20)) {	/* the device ignores these */
			struct vhca_ctx_page *p = q->ctx->page;
			uint32_t h = atomic_load((_Atomic uint32_t *)&p->fifo_head);

			p->fifo[h % VHCA_DB_FIFO_LEN] =
				s->srq.handle << 1 | VHCA_DB_SRQ;
			atomic_store((_Atomic uint32_t *)&p->fifo_head, h + 1);
		}
		return;
	}
	if (!q->qp.rq_count)
		return;
	{
		struct wq w = { .ring = q->qp.rq, .shadow = q->rq_shadow,
				.count = q->qp.rq_count, .stride = q->qp.rq_stride,
				.head = &q->rq_head, .tail = &q->qp.db->rq_tail,
				.posted = &q->posted_recv, .honest = q->probed };

		wq_post(&w, n, gen_recv_of, &q->bad_pct);
	}
	atomic_store_explicit((_Atomic uint32_t *)&q->qp.db->rq_head,
			      q->rq_head, memory_order_seq_cst);
	/* In ERR the receives must ring (rq_notify); a guest may anyway. */
	if (atomic_load((_Atomic uint32_t *)&q->qp.db->rq_notify) ||
	    chance(10))
		ring(q);
}

/* ---- the objects of a round ------------------------------------------------ */

static uint32_t pick(const uint32_t *v, size_t n)
{
	return v[rn((uint32_t)n)];
}

static void make_cq(int i, bool honest, uint32_t count, int channel)
{
	struct fz_cq *c = &f.cqs[i];

	c->honest = honest;
	c->uh = UH_CQ | (uint64_t)i;
	c->channel = channel;
	c->consumer = 0;
	SETUP(raw_cq_ex(&f.a, &c->cq, count, c->uh, channel), "CREATE_CQ");
	fill_db_tail(c->cq.db, sizeof(struct vhca_cq_db));
	c->live = true;
}

static void make_srq(int i, bool honest)
{
	static const uint32_t counts[] = { 16, 32, 64 };
	static const uint32_t strides[] = { 32, 64, 256, 1024 };
	struct fz_srq *s = &f.srqs[i];

	s->honest = honest;
	s->uh = UH_SRQ | (uint64_t)i;
	SETUP(raw_srq(&f.a, &s->srq, pick(counts, 3), pick(strides, 4), s->uh),
	      "CREATE_SRQ");
	s->shadow = calloc(1, (size_t)s->srq.count * s->srq.stride);
	fill_db_tail(s->srq.db, sizeof(struct vhca_srq_db));
	s->head = 0;
	s->live = true;
}

static void make_qp(int i, uint8_t type, bool probed, int cq_s, int cq_r,
		    int srq)
{
	static const uint32_t probed_counts[] = { 16, 32, 64 };
	static const uint32_t wild_counts[] = { 1, 2, 16, 64, 256 };
	static const uint32_t strides[] = { 128, 256, 512, 1024, 4096 };
	struct fz_qp *q = &f.qps[i];
	uint32_t count = probed ? pick(probed_counts, 3) : pick(wild_counts, 5);
	uint32_t stride = pick(strides, probed ? 4 : 5);
	int ret;

	memset(q, 0, sizeof(*q));
	q->ctx = &f.a;
	q->type = type;
	q->probed = probed;
	q->index = i;
	q->partner = -1;
	q->scq = &f.cqs[cq_s];
	q->rcq = &f.cqs[cq_r];
	q->srq = srq >= 0 ? &f.srqs[srq] : NULL;
	q->uh = UH_QP | (uint64_t)i;
	ret = raw_qp_ex(&f.a, &q->qp, type, &q->scq->cq, &q->rcq->cq,
			q->srq ? &q->srq->srq : NULL, count, stride, count,
			q->uh);
	SETUP(ret, "CREATE_QP");
	q->max_sge = (stride - 96) / 16 < 16 ? (stride - 96) / 16 : 16;
	q->max_inline = stride - 96 < 256 ? stride - 96 : 256;
	q->sq_shadow = calloc(1, (size_t)count * stride);
	q->rq_shadow = q->qp.rq_count ?
			       calloc(1, (size_t)q->qp.rq_count * q->qp.rq_stride) :
			       NULL;
	fill_db_tail(q->qp.db, sizeof(struct vhca_qp_db));
	cq_remember(q->scq, q->qp.qpn);
	cq_remember(q->rcq, q->qp.qpn);
	q->live = true;
}

static void unmap_qp(struct fz_qp *q)
{
	munmap(q->qp.sq, q->qp.size);
	free(q->sq_shadow);
	free(q->rq_shadow);
	q->sq_shadow = q->rq_shadow = NULL;
}

/* Connects probed pair (@i, @j) sanely: same PSNs on both sides. */
static void connect_pair(int i, int j)
{
	struct fz_qp *a = &f.qps[i], *b = &f.qps[j];
	uint32_t pa = rn(1u << 24), pb = rn(1u << 24);
	struct conn ka = tame_conn(f.lid, b->qp.qpn, pa, pb);
	struct conn kb = tame_conn(f.lid, a->qp.qpn, pb, pa);
	int ret;

	ka.access |= IBV_ACCESS_REMOTE_WRITE;
	kb.access |= IBV_ACCESS_REMOTE_WRITE;
	if (a->clean) {
		/* every right, and no retry count that load could exhaust */
		ka.access = kb.access = IBV_ACCESS_REMOTE_WRITE |
					IBV_ACCESS_REMOTE_READ |
					IBV_ACCESS_REMOTE_ATOMIC;
		ka.timeout = kb.timeout = 0;
		ka.rnr_retry = kb.rnr_retry = 7;
	}
	settle_before(a);
	settle_before(b);
	ret = connect_qp(&f.a, a->qp.handle, a->type, &ka);
	if (!ret)
		ret = connect_qp(&f.a, b->qp.handle, b->type, &kb);
	if (ret)
		FAIL("connecting probed pair %d-%d (type %u): %s: %s (states %d, %d)",
		     i, j, a->type, connect_step, strerror(ret), qp_state(a),
		     qp_state(b));
	a->sq_head = a->rq_head = b->sq_head = b->rq_head = 0;
	settle_after(a);
	settle_after(b);
	a->dlid = b->dlid = f.lid;
	a->dqpn = b->qp.qpn;
	b->dqpn = a->qp.qpn;
	a->sane = b->sane = !ret;
}

/* A probed QP elsewhere (tame timers: it fails in bounded time). */
static void connect_away(struct fz_qp *q)
{
	uint16_t dlid;
	uint32_t dqpn;
	struct conn k;
	int ret;

	gen_dest(q, &dlid, &dqpn);
	if (!dlid || dlid >= 0xc000)
		dlid = f.lid;
	k = tame_conn(dlid, dqpn & 0xffffff, rn(1u << 24), rn(1u << 24));
	settle_before(q);
	ret = connect_qp(&f.a, q->qp.handle, q->type, &k);
	if (ret)
		FAIL("connecting probed QP %d (type %u) to %#x/%#x: %s: %s (state %d)",
		     q->index, q->type, dlid, dqpn, connect_step,
		     strerror(ret), qp_state(q));
	q->sq_head = q->rq_head = 0;
	settle_after(q);
	q->dlid = dlid;
	q->dqpn = dqpn;
	q->sane = false;
	if (q->partner >= 0)
		f.qps[q->partner].sane = false;
}

static void to_error(struct fz_qp *q)
{
	struct ib_uverbs_modify_qp m = { .qp_handle = q->qp.handle,
					 .qp_state = IBV_QPS_ERR,
					 .attr_mask = IBV_QP_STATE };
	int ret;

	settle_before(q);
	ret = modify(q->ctx, &m);
	if (ret && q->probed)
		FAIL("probed QP %d to ERR: %s", q->index, strerror(ret));
	/* ERR flushed at once: the rings are empty from here on */
	settle_after(q);
	q->set_err = true;
	q->sane = false;
	if (q->partner >= 0)
		f.qps[q->partner].sane = false;
}

/* Anything a MODIFY_QP can say, mostly wrong. */
static void wild_modify(struct fz_qp *q)
{
	struct ib_uverbs_modify_qp m;
	uint16_t dlid;
	uint32_t dqpn;

	if (chance(40)) {
		struct conn k = {
			.sq_psn = (uint32_t)rnd(), .rq_psn = (uint32_t)rnd(),
			.access = rn(32), .qkey = chance(50) ? QKEY :
							       (uint32_t)rnd(),
			.timeout = (uint8_t)rn(32), .retry = (uint8_t)rn(8),
			.rnr_retry = (uint8_t)rn(8),
			.min_rnr = (uint8_t)rn(32), .mtu = (uint8_t)(1 + rn(5)),
			.rd_atomic = (uint8_t)rn(17),
		};

		gen_dest(q, &dlid, &dqpn);
		k.dlid = dlid;
		k.dqpn = dqpn;
		connect_qp(q->ctx, q->qp.handle, q->type, &k);
		q->sq_head = q->rq_head = 0;
		q->dlid = dlid;
		q->dqpn = dqpn;
		return;
	}
	rnd_fill(&m, sizeof(m));
	m.qp_handle = q->qp.handle;
	if (chance(70))
		m.attr_mask &= 0x1fffff;
	if (chance(50))
		m.qp_state = (uint8_t)rn(8);
	if (chance(50))
		m.port_num = 1;
	if (chance(50))
		m.pkey_index = (uint16_t)rn(3);
	if (chance(50)) {
		gen_dest(q, &dlid, &dqpn);
		m.dest.dlid = dlid;
		m.dest_qp_num = dqpn;
	}
	if (!modify(q->ctx, &m) && (m.attr_mask & IBV_QP_STATE) &&
	    m.qp_state == IBV_QPS_RESET)
		q->sq_head = q->rq_head = 0;
}

static void scribble_db(struct fz_qp *q)
{
	struct vhca_qp_db *db = q->qp.db;

	switch (rn(6)) {
	case 0: db->sq_tail = (uint32_t)rnd(); break;
	case 1: db->rq_tail = (uint32_t)rnd(); break;
	case 2: atomic_store((_Atomic uint32_t *)&db->queued, (uint32_t)rn(3)); break;
	case 3: db->rq_notify = (uint32_t)rnd(); break;
	case 4: rnd_fill(db->reserved, sizeof(db->reserved)); break;
	default:
		atomic_store((_Atomic uint32_t *)&db->rq_head,
			     q->rq_head = wild_index(db->rq_tail,
						     q->qp.rq_count + 1,
						     q->rq_head));
		break;
	}
}

/* One WQE at @q's head, published and rung. */
static void put_one(struct fz_qp *q, const uint8_t *slot)
{
	ring_write(q->qp.sq, q->sq_shadow,
		   (size_t)(q->sq_head & (q->qp.sq_count - 1)) * q->qp.sq_stride,
		   slot, q->qp.sq_stride);
	q->sq_head++;
	atomic_store_explicit((_Atomic uint32_t *)&q->qp.db->sq_head,
			      q->sq_head, memory_order_release);
	push(q->ctx, q->qp.handle, &q->qp.db->queued);
}

/*
 * A retry over a WQE that failed: wild RC QP 9 gets an ACK from 10 (its
 * retry budget loaded), 10 falls silent, then 9 posts a valid WRITE and
 * one that fails validation; the ACK timeout goes back over both.  The
 * failed one must stay failed (it once was sent again: a NULL opcode
 * row, vhcad dead).
 */
static void retry_over_failed(void)
{
	struct fz_qp *x = &f.qps[N_PROBED + 1], *y = &f.qps[N_PROBED + 2];
	struct conn kx = tame_conn(f.lid, y->qp.qpn, 5, 9);
	struct conn ky = tame_conn(f.lid, x->qp.qpn, 9, 5);
	struct ib_uverbs_modify_qp m = { .qp_handle = y->qp.handle,
					 .qp_state = IBV_QPS_ERR,
					 .attr_mask = IBV_QP_STATE };
	uint8_t slot[4096];
	struct vhca_send_wqe *w = (struct vhca_send_wqe *)slot;

	if (x->qp.sq_count < 4 || !x->live || !y->live)
		return;
	kx.retry = ky.retry = (uint8_t)(1 + rn(3));
	kx.access = ky.access = IBV_ACCESS_REMOTE_WRITE;
	if (connect_qp(&f.a, x->qp.handle, IBV_QPT_RC, &kx) ||
	    connect_qp(&f.a, y->qp.handle, IBV_QPT_RC, &ky))
		return;
	x->sq_head = x->rq_head = y->sq_head = y->rq_head = 0;
	x->bad_pct = 0;
	gen_valid_send(x, slot, 1);
	w->opcode = VHCA_WQE_RDMA_WRITE;
	w->flags = VHCA_WQE_SIGNALED;
	put_one(x, slot);
	usleep(3000);
	modify(&f.a, &m);
	gen_valid_send(x, slot, 2);
	w->opcode = VHCA_WQE_RDMA_WRITE;
	put_one(x, slot);
	gen_send(x, slot, 3);
	w->opcode = (uint8_t)(chance(50) ? 7 + rn(249) : 0);
	if (!w->opcode) {	/* a known opcode the QP may not use */
		w->flags |= VHCA_WQE_INLINE;
		w->inline_len = 100000;
	}
	put_one(x, slot);
	x->bad_pct = 90;
}

/*
 * A range that crosses an MR edge, lies in memory the key forbids, or
 * (while it is deregistered) in the second MR under its dead key.
 */
static void gen_forbidden(__u64 *addr, __u32 *len, __u32 *key)
{
	uint32_t n = 8 + rn(121), over = 1 + rn(64), k = 1 + rn(MR_HEAD);

	*len = n;
	*key = f.mr_key;
	if (!f.mr2_live && chance(50)) {
		*addr = at(R_MR2, rn(REG - n));
		*key = f.mr2_key;
		return;
	}
	switch (rn(5)) {
	case 0:
	case 1:
		*addr = (uintptr_t)mr_base + MR_LEN - n + over;
		break;
	case 2:
		*addr = (uintptr_t)mr_base - k;
		break;
	case 3:
		*addr = at(R_MR_NOACCESS, rn(REG - n));
		*key = f.noacc_key;
		break;
	default:
		*addr = at(R_MR_OTHER_PD, rn(REG - n));
		*key = f.other_key;
		break;
	}
}

/*
 * One operation a correct device must refuse, between QPs that would
 * otherwise carry it: wild RC 9 and 10 (or UD 13 and 14) connected in
 * step, and one range across an MR edge or under the wrong key - the
 * WRITE's target, the READ's or atomic's local buffer or target, the
 * receive buffer of a SEND.  The canaries say whether a byte moved.
 */
static void edge_attack(void)
{
	bool ud = chance(25);
	struct fz_qp *x = &f.qps[ud ? N_PROBED + 5 : N_PROBED + 1];
	struct fz_qp *y = &f.qps[ud ? N_PROBED + 6 : N_PROBED + 2];
	struct conn kx = tame_conn(f.lid, y->qp.qpn, 3, 4);
	struct conn ky = tame_conn(f.lid, x->qp.qpn, 4, 3);
	uint8_t slot[4096] = { 0 };
	struct vhca_send_wqe *w = (struct vhca_send_wqe *)slot;
	struct vhca_sge *sge = (struct vhca_sge *)(w + 1);
	uint32_t op = ud ? 4 : rn(5);

	if (!x->live || !y->live || x->qp.sq_stride < 128 ||
	    (op >= 3 && (!y->qp.rq_count || y->qp.rq_stride < 32)))
		return;
	kx.access = ky.access = IBV_ACCESS_REMOTE_WRITE |
				IBV_ACCESS_REMOTE_READ |
				IBV_ACCESS_REMOTE_ATOMIC;
	if (connect_qp(&f.a, x->qp.handle, x->type, &kx) ||
	    connect_qp(&f.a, y->qp.handle, y->type, &ky))
		return;
	x->sq_head = x->rq_head = y->sq_head = y->rq_head = 0;
	w->wr_id = 0xed9e;
	w->flags = VHCA_WQE_SIGNALED;
	w->num_sge = 1;
	sge->addr = (uintptr_t)mr_base + rn(PROBE_AREA - 4096);
	sge->lkey = f.mr_key;
	switch (op) {
	case 0:		/* WRITE into a forbidden target */
		w->opcode = VHCA_WQE_RDMA_WRITE;
		gen_forbidden(&w->rdma.remote_addr, &sge->length,
			      &w->rdma.rkey);
		break;
	case 1:		/* READ into a forbidden local buffer, or from one */
		w->opcode = VHCA_WQE_RDMA_READ;
		w->rdma.remote_addr = (uintptr_t)mr_base + rn(PROBE_AREA - 4096);
		w->rdma.rkey = f.mr_key;
		if (chance(50))
			gen_forbidden(&sge->addr, &sge->length, &sge->lkey);
		else
			gen_forbidden(&w->rdma.remote_addr, &sge->length,
				      &w->rdma.rkey);
		break;
	case 2:		/* an atomic whose word or target crosses */
		w->opcode = (uint8_t)(chance(50) ? VHCA_WQE_ATOMIC_CMP_AND_SWP :
					   VHCA_WQE_ATOMIC_FETCH_AND_ADD);
		sge->length = 8;
		w->atomic.remote_addr = (uintptr_t)mr_base + 8 * rn(100);
		w->atomic.rkey = f.mr_key;
		w->atomic.compare_add = rnd();
		w->atomic.swap = rnd();
		if (chance(50)) {
			sge->addr = (uintptr_t)mr_base + MR_LEN - 8 + 4 * (1 + rn(2));
			if (chance(30))
				sge->lkey = f.noacc_key, sge->addr = at(R_MR_NOACCESS, 8 * rn(64));
		} else {
			w->atomic.remote_addr = (uintptr_t)mr_base + MR_LEN - 8 +
						4 * (1 + rn(2));
			if (chance(30))
				w->atomic.rkey = f.other_key,
				w->atomic.remote_addr = at(R_MR_OTHER_PD, 8 * rn(64));
		}
		break;
	default: {	/* a SEND into a forbidden receive buffer */
		uint8_t rslot[4096] = { 0 };
		struct vhca_recv_wqe *r = (struct vhca_recv_wqe *)rslot;
		struct vhca_sge *rsge = (struct vhca_sge *)(r + 1);
		uint32_t n;

		r->wr_id = 0xed9f;
		r->num_sge = 1;
		gen_forbidden(&rsge->addr, &rsge->length, &rsge->lkey);
		n = rsge->length;
		if (ud) {	/* the GRH lands first: the message crosses */
			rsge->length = 40 + n;
			rsge->addr -= 40;
		}
		ring_write(y->qp.rq, y->rq_shadow, 0, rslot, y->qp.rq_stride);
		y->rq_head = 1;
		atomic_store((_Atomic uint32_t *)&y->qp.db->rq_head, 1);
		w->opcode = VHCA_WQE_SEND;
		sge->length = n;
		if (ud) {
			w->ud.remote_qpn = y->qp.qpn;
			w->ud.remote_qkey = QKEY;
			w->ud.dlid = f.lid;
			w->ud.port_num = 1;
		}
		break;
	}
	}
	put_one(x, slot);
}

/* RESIZE_CQ to a fresh ring of @count entries. */
static int resize_cq(struct fz_cq *c, uint32_t count)
{
	struct {
		struct ib_uverbs_resize_cq_resp core;
		struct vhca_create_cq_resp udata;
	} resp;
	struct ib_uverbs_resize_cq core = { .response = (uintptr_t)&resp,
					    .cq_handle = c->cq.handle,
					    .cqe = count - 1 };
	struct vhca_create_cq_cmd u;
	void *map;
	int ret = raw_cq_mem(count, &u, &map);

	if (ret)
		return ret;
	if (chance(20))
		core.cqe = rn(2 * count);	/* maybe too small */
	fill_db_tail((uint8_t *)map + u.db_offset, sizeof(struct vhca_cq_db));
	ret = raw_cmd(f.a.fd, IB_USER_VERBS_CMD_RESIZE_CQ, &core, sizeof(core),
		      &u, sizeof(u), sizeof(resp));
	close(u.buf_fd);
	if (ret) {
		munmap(map, u.buf_size);
		return ret;
	}
	check_db_tail(c->cq.db, sizeof(struct vhca_cq_db), "old CQ",
		      (int)(c - f.cqs));
	munmap(c->cq.ring, (size_t)c->cq.count * 64 + VHCA_PAGE_SIZE);
	c->cq.ring = map;
	c->cq.db = (struct vhca_cq_db *)((uint8_t *)map + u.db_offset);
	c->cq.count = count;
	c->consumer = 0;	/* the unconsumed ones are at 0.. now */
	return 0;
}

/* ---- the checks of memory ----------------------------------------------------- */

/* The device only reads the rings: each must hold what the guest wrote. */
static void check_ring(const uint8_t *ring, const uint8_t *shadow,
		       uint32_t count, uint32_t stride, const char *what,
		       const char *owner, int index)
{
	if (count && memcmp(ring, shadow, (size_t)count * stride))
		FAIL("the %s of %s %d changed under the guest", what, owner,
		     index);
}

static void check_memory(void)
{
	static const int canary[] = { R_CANARY_A, R_CANARY_B, R_MR_NOACCESS,
				      R_MR_OTHER_PD, R_CANARY_C, R_CANARY_D,
				      R_CANARY_E };
	long bad;

	for (size_t i = 0; i < sizeof(canary) / sizeof(canary[0]); i++) {
		size_t off = (size_t)canary[i] * REG;

		bad = pattern_broken(mem + off, off, REG);
		if (bad >= 0)
			FAIL("%s changed (byte %ld)", region_name[canary[i]],
			     bad - (long)off);
	}
	bad = pattern_broken(mem + R_MR * REG, R_MR * REG, MR_HEAD);
	if (bad < 0)
		bad = pattern_broken(mr_base + MR_LEN,
				     R_MR * REG + MR_HEAD + MR_LEN, MR_TAIL);
	if (bad >= 0)
		FAIL("a byte beside the MR, in its own page, changed (%ld)",
		     bad - (long)(R_MR * REG));
	if (f.mr2_snapshot && memcmp(f.mr2_snapshot, mem + R_MR2 * REG, REG))
		FAIL("the second MR changed after DEREG_MR returned");
	if (f.b_snapshot && memcmp(f.b_snapshot, mem + R_MR_B * REG, REG))
		FAIL("context B's MR changed after B was freed");
	for (int i = 0; i < N_QP; i++) {
		struct fz_qp *q = &f.qps[i];

		if (!q->live)
			continue;
		check_ring(q->qp.sq, q->sq_shadow, q->qp.sq_count, q->qp.sq_stride,
			   "send ring", "QP", i);
		check_ring(q->qp.rq, q->rq_shadow, q->qp.rq_count, q->qp.rq_stride,
			   "receive ring", "QP", i);
		check_db_tail(q->qp.db, sizeof(struct vhca_qp_db), "QP", i);
	}
	for (int i = 0; i < N_SRQ; i++) {
		struct fz_srq *s = &f.srqs[i];

		if (!s->live)
			continue;
		check_ring(s->srq.ring, s->shadow, s->srq.count, s->srq.stride,
			   "ring", "SRQ", i);
		check_db_tail(s->srq.db, sizeof(struct vhca_srq_db), "SRQ", i);
	}
	for (int i = 0; i < N_CQ; i++)
		if (f.cqs[i].live)
			check_db_tail(f.cqs[i].cq.db, sizeof(struct vhca_cq_db),
				      "CQ", i);
	check_db_tail(f.a.page, sizeof(struct vhca_ctx_page), "context page",
		      0);
}

/* ---- context B -------------------------------------------------------------- */

/*
 * A second context on the VF, with an RC QP connected to wild QP 8 and
 * a UD QP; its MR has every right.  Closed under traffic (close_b).
 */
static void make_b(void)
{
	struct conn k;

	SETUP(raw_context(&f.b, dev_name, 0), "context B");
	SETUP(raw_reg_mr_ex(&f.b, f.b.pd, mem + R_MR_B * REG, REG, ACCESS_ALL,
			    &f.b_key, NULL), "B's REG_MR");
	SETUP(raw_cq(&f.b, &f.b_cq, 64), "B's CQ");
	SETUP(raw_qp(&f.b, &f.b_rc, IBV_QPT_RC, &f.b_cq, 64, 256), "B's RC");
	SETUP(raw_qp(&f.b, &f.b_ud, IBV_QPT_UD, &f.b_cq, 64, 256), "B's UD");
	k = tame_conn(f.lid, f.qps[N_PROBED].qp.qpn, 0, 0);
	k.timeout = 0;		/* waits forever: only teardown ends it */
	k.rnr_retry = 7;
	SETUP(connect_qp(&f.b, f.b_rc.handle, IBV_QPT_RC, &k), "B's RC RTS");
	SETUP(connect_qp(&f.b, f.b_ud.handle, IBV_QPT_UD, &k), "B's UD RTS");
	f.b_live = true;
}

/* B posts WRITEs and SENDs into A's MR and its own. */
static void b_traffic(void)
{
	struct raw_qp *qp = chance(50) ? &f.b_rc : &f.b_ud;
	uint32_t head = qp->db->sq_head, n = 1 + rn(4);

	for (uint32_t i = 0; i < n; i++) {
		struct vhca_send_wqe *w = (struct vhca_send_wqe *)
			(qp->sq + (size_t)(head & (qp->sq_count - 1)) *
					  qp->sq_stride);
		struct vhca_sge *sge = (struct vhca_sge *)(w + 1);

		memset(w, 0, qp->sq_stride);
		w->wr_id = head;
		w->opcode = qp == &f.b_ud ? VHCA_WQE_SEND :
			    (uint8_t)(chance(50) ? VHCA_WQE_RDMA_WRITE :
						   VHCA_WQE_SEND);
		w->flags = VHCA_WQE_SIGNALED;
		w->num_sge = 1;
		sge->addr = at(R_MR_B, rn(REG / 2));
		sge->length = rn(4096);
		sge->lkey = f.b_key;
		w->rdma.remote_addr = (uintptr_t)mr_base + rn(PROBE_AREA - 4096);
		w->rdma.rkey = f.mr_key;
		if (qp == &f.b_ud) {
			w->ud.remote_qpn = f.qps[rn(N_QP)].qp.qpn;
			w->ud.remote_qkey = QKEY;
			w->ud.dlid = f.lid;
			w->ud.port_num = 1;
			sge->length = rn(2048);
		}
		head++;
	}
	atomic_store((_Atomic uint32_t *)&qp->db->sq_head, head);
	raw_ring(&f.b, qp);
	/* B never polls: its CQ overruns, its QPs go to ERR */
}

static bool vf_counts(const char *dev, unsigned int *contexts,
		      unsigned int *dctxs);

/* Closes B's command file and waits until the device freed it. */
static void close_b(void)
{
	unsigned int contexts = 0, dctxs = 0;

	close(f.b.fd);
	close(f.b.async_rd);
	close(f.b.service_rd);
	close(f.b.wake_fd);
	f.b_live = false;
	for (int i = 0; i < 1000; i++) {
		if (vf_counts(dev_name, &contexts, &dctxs) &&
		    contexts <= 1 && dctxs <= 1)
			break;
		poll_all();
		usleep(5000);
	}
	if (contexts > 1 || dctxs > 1) {
		FAIL("context B not freed 5 s after its close (%u contexts, %u dctxs)",
		     contexts, dctxs);
		return;
	}
	/* From now on nothing may write B's MR. */
	f.b_snapshot = malloc(REG);
	memcpy(f.b_snapshot, mem + R_MR_B * REG, REG);
}

/* ---- the status view ---------------------------------------------------------- */

/* The status line of @dev: true if every count is 0 (*line = the line). */
static bool vf_idle(const char *dev, char *line, size_t size)
{
	char path[4096], buf[1024];
	bool found = false, idle = false;
	FILE *st;

	snprintf(path, sizeof(path), "%s/module/vhca/status",
		 getenv("SYSFS_PATH"));
	st = fopen(path, "r");
	if (!st) {
		snprintf(line, size, "cannot read the status: %s",
			 strerror(errno));
		return false;
	}
	while (!found && fgets(buf, sizeof(buf), st)) {
		char name[64], *p, *save = NULL;
		int field = 0;

		if (sscanf(buf, "%63s", name) != 1 || strcmp(name, dev))
			continue;
		found = true;
		idle = true;
		snprintf(line, size, "%s", buf);
		line[strcspn(line, "\n")] = 0;
		for (p = strtok_r(buf, " \n", &save); p;
		     p = strtok_r(NULL, " \n", &save), field++)
			if (field >= 3 && field % 2 == 1 && strcmp(p, "0"))
				idle = false;
	}
	fclose(st);
	if (!found)
		snprintf(line, size, "no status line for %s", dev);
	return found && idle;
}

static bool vf_counts(const char *dev, unsigned int *contexts,
		      unsigned int *dctxs)
{
	char path[4096], buf[1024], name[64];
	bool found = false;
	FILE *st;

	snprintf(path, sizeof(path), "%s/module/vhca/status",
		 getenv("SYSFS_PATH"));
	st = fopen(path, "r");
	if (!st)
		return false;
	while (!found && fgets(buf, sizeof(buf), st)) {
		char *p;

		if (sscanf(buf, "%63s", name) != 1 || strcmp(name, dev))
			continue;
		p = strstr(buf, " contexts ");
		found = p && sscanf(p, " contexts %u", contexts) == 1;
		p = strstr(buf, " dctxs ");
		found = found && p && sscanf(p, " dctxs %u", dctxs) == 1;
	}
	fclose(st);
	return found;
}

/* ---- probes ----------------------------------------------------------------- */

/* Waits up to @ms for @q's probe CQE. */
static bool wait_probe(struct fz_qp *q, int ms)
{
	uint64_t end = now_us() + (uint64_t)ms * 1000;

	while (!q->probe_seen && now_us() < end) {
		poll_all();
		if (!q->probe_seen)
			usleep(200);
	}
	return q->probe_seen;
}

/*
 * A clean, signaled WQE after whatever is pending: it must complete,
 * with success or (the QP then in ERR) an error.
 */
static void probe(struct fz_qp *q, unsigned int k)
{
	uint32_t count = q->qp.sq_count, off = PROBE_AREA + 128 * (uint32_t)q->index;
	uint8_t slot[4096] = { 0 };
	struct vhca_send_wqe *w = (struct vhca_send_wqe *)slot;
	struct vhca_sge *sge = (struct vhca_sge *)(w + 1);
	int st = qp_state(q), after;
	uint8_t expect[64];
	bool lands;

	if (st != IBV_QPS_RTS && st != IBV_QPS_ERR) {
		FAIL("probed QP %d is in state %d", q->index, st);
		return;
	}
	if (q->clean && st != IBV_QPS_RTS)
		FAIL("clean QP %d (type %u) is in state %d after the storm",
		     q->index, q->type, st);
	if (st == IBV_QPS_ERR && !q->err_cqe && !q->err_event && !q->set_err)
		FAIL("probed QP %d (type %u) went to ERR without an error CQE or event",
		     q->index, q->type);
	for (int i = 0; i < 50 && !honest_room(q->sq_head, &q->qp.db->sq_tail,
					      count); i++) {
		ring_hard(q->ctx, q->qp.handle);
		poll_all();
		usleep(20000);
	}
	if (!honest_room(q->sq_head, &q->qp.db->sq_tail, count)) {
		FAIL("probed QP %d: its send queue never drains (state %d)",
		     q->index, st);
		return;
	}
	/* the partner's probe target, fresh */
	for (int i = 0; i < 64; i++)
		expect[i] = (uint8_t)(k * 31 + (unsigned int)i + 1);
	memcpy(mr_base + off, expect, 64);
	memset(mr_base + off + 64, 0, 64);
	q->probe_wrid = 0xb0b0ull << 48 | (uint64_t)q->index << 32 | k;
	q->probe_seen = false;
	w->wr_id = q->probe_wrid;
	w->flags = VHCA_WQE_SIGNALED;
	w->num_sge = 1;
	sge->addr = (uintptr_t)mr_base + off;
	sge->length = 64;
	sge->lkey = f.mr_key;
	if (q->type == IBV_QPT_UD) {
		w->opcode = VHCA_WQE_SEND;
		w->ud.remote_qpn = q->partner >= 0 ? f.qps[q->partner].qp.qpn :
						     q->qp.qpn;
		w->ud.remote_qkey = QKEY;
		w->ud.dlid = f.lid;
		w->ud.port_num = 1;
	} else {
		w->opcode = VHCA_WQE_RDMA_WRITE;
		w->rdma.remote_addr = (uintptr_t)mr_base + off + 64;
		w->rdma.rkey = f.mr_key;
	}
	lands = q->sane && q->type != IBV_QPT_UD && st == IBV_QPS_RTS &&
		q->partner >= 0 && qp_state(&f.qps[q->partner]) >= IBV_QPS_RTR &&
		qp_state(&f.qps[q->partner]) <= IBV_QPS_RTS;
	ring_write(q->qp.sq, q->sq_shadow,
		   (size_t)(q->sq_head & (count - 1)) * q->qp.sq_stride, slot,
		   q->qp.sq_stride);
	q->sq_head++;
	q->posted_send++;
	atomic_store_explicit((_Atomic uint32_t *)&q->qp.db->sq_head,
			      q->sq_head, memory_order_release);
	ring_hard(q->ctx, q->qp.handle);
	if (!wait_probe(q, 10000)) {
		FAIL("probed QP %d (type %u, state %d): a clean WQE did not complete in 10 s",
		     q->index, q->type, st);
		return;
	}
	after = qp_state(q);
	if (q->probe_status == IBV_WC_SUCCESS) {
		f.probes_ok++;
		if (st == IBV_QPS_ERR)
			FAIL("probed QP %d: a WQE posted in ERR completed with success",
			     q->index);
		if (lands) {
			uint64_t end = now_us() + 2000000;

			while (memcmp(mr_base + off + 64, expect, 64) &&
			       now_us() < end)
				usleep(1000);
			if (memcmp(mr_base + off + 64, expect, 64) &&
			    (q->type == IBV_QPT_RC ||
			     qp_state(&f.qps[q->partner]) != IBV_QPS_ERR))
				FAIL("probed QP %d (type %u): RDMA WRITE to its sane partner completed but did not land",
				     q->index, q->type);
		}
	} else {
		f.probes_err++;
		if (q->clean)
			FAIL("clean QP %d: its probe completed with status %u",
			     q->index, q->probe_status);
		if (after != IBV_QPS_ERR)
			FAIL("probed QP %d: its WQE completed with status %u, QP in state %d",
			     q->index, q->probe_status, after);
		if (st == IBV_QPS_ERR && q->probe_status != IBV_WC_WR_FLUSH_ERR)
			FAIL("probed QP %d: in ERR its WQE completed %u, not flushed",
			     q->index, q->probe_status);
	}
}

/* A fresh RC and UD pair on the stormed context moves verified data. */
static void fresh_pairs(void)
{
	struct raw_cq cq;
	struct raw_qp x, y, u, v;
	struct conn kx, ky;
	uint8_t *src = mr_base + PROBE_AREA + 4096, *dst = src + 1024;
	int ret;

	if ((ret = raw_cq(&f.a, &cq, 256)) ||
	    (ret = raw_qp(&f.a, &x, IBV_QPT_RC, &cq, 16, 256)) ||
	    (ret = raw_qp(&f.a, &y, IBV_QPT_RC, &cq, 16, 256)) ||
	    (ret = raw_qp(&f.a, &u, IBV_QPT_UD, &cq, 16, 256)) ||
	    (ret = raw_qp(&f.a, &v, IBV_QPT_UD, &cq, 16, 256))) {
		FAIL("fresh QPs on the stormed context: %s", strerror(ret));
		return;
	}
	kx = tame_conn(f.lid, y.qpn, 7, 9);
	ky = tame_conn(f.lid, x.qpn, 9, 7);
	kx.access = ky.access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	kx.timeout = ky.timeout = 14;
	kx.retry = ky.retry = 7;
	if ((ret = connect_qp(&f.a, x.handle, IBV_QPT_RC, &kx)) ||
	    (ret = connect_qp(&f.a, y.handle, IBV_QPT_RC, &ky)) ||
	    (ret = connect_qp(&f.a, u.handle, IBV_QPT_UD, &kx)) ||
	    (ret = connect_qp(&f.a, v.handle, IBV_QPT_UD, &ky))) {
		FAIL("connecting fresh QPs: %s", strerror(ret));
		return;
	}
	for (int i = 0; i < 512; i++)
		src[i] = (uint8_t)(i * 7 + round_no);
	memset(dst, 0, 1024);
	/* x: WRITE 512 bytes into dst; v: a receive; u: SEND 256 to v */
	{
		struct vhca_send_wqe *w = (struct vhca_send_wqe *)x.sq;
		struct vhca_sge *s = (struct vhca_sge *)(w + 1);
		struct vhca_recv_wqe *r = (struct vhca_recv_wqe *)v.rq;
		struct vhca_sge *rs_ = (struct vhca_sge *)(r + 1);

		*w = (struct vhca_send_wqe){ .wr_id = 1,
					     .opcode = VHCA_WQE_RDMA_WRITE,
					     .flags = VHCA_WQE_SIGNALED,
					     .num_sge = 1 };
		*s = (struct vhca_sge){ .addr = (uintptr_t)src, .length = 512,
					.lkey = f.mr_key };
		w->rdma.remote_addr = (uintptr_t)dst;
		w->rdma.rkey = f.mr_key;
		*r = (struct vhca_recv_wqe){ .wr_id = 2, .num_sge = 1 };
		*rs_ = (struct vhca_sge){ .addr = (uintptr_t)dst + 512,
					  .length = 512, .lkey = f.mr_key };
		atomic_store((_Atomic uint32_t *)&v.db->rq_head, 1);
		w = (struct vhca_send_wqe *)u.sq;
		s = (struct vhca_sge *)(w + 1);
		*w = (struct vhca_send_wqe){ .wr_id = 3, .opcode = VHCA_WQE_SEND,
					     .flags = VHCA_WQE_SIGNALED,
					     .num_sge = 1 };
		*s = (struct vhca_sge){ .addr = (uintptr_t)src + 256,
					.length = 256, .lkey = f.mr_key };
		w->ud.remote_qpn = v.qpn;
		w->ud.remote_qkey = QKEY;
		w->ud.dlid = f.lid;
		w->ud.port_num = 1;
		atomic_store((_Atomic uint32_t *)&x.db->sq_head, 1);
		atomic_store((_Atomic uint32_t *)&u.db->sq_head, 1);
		ring_hard(&f.a, x.handle);
		ring_hard(&f.a, u.handle);
	}
	{
		uint64_t end = now_us() + 10000000;
		uint32_t consumer = 0;
		int got = 0;

		while (got < 3 && now_us() < end) {
			struct vhca_cqe *e = &cq.ring[consumer & 255];

			if ((atomic_load((_Atomic uint8_t *)&e->owner) & 1) !=
			    (((consumer / 256) & 1) ^ 1)) {
				poll_all();
				usleep(200);
				continue;
			}
			if (e->status != IBV_WC_SUCCESS)
				FAIL("fresh pair: WR %" PRIu64 " completed with status %u",
				     (uint64_t)e->wr_id, e->status);
			got++;
			consumer++;
			atomic_store((_Atomic uint32_t *)&cq.db->consumer,
				     consumer);
		}
		if (got < 3)
			FAIL("fresh pairs on the stormed context: %d of 3 completions in 10 s",
			     got);
		else if (memcmp(dst, src, 512) ||
			 memcmp(dst + 512 + 40, src + 256, 256))
			FAIL("fresh pairs: the data arrived wrong");
		else
			f.probes_ok++;
	}
}

/* ---- a round ----------------------------------------------------------------- */

/* The second MR comes back (a new key: the old one stays dead). */
static void rereg_mr2(void)
{
	check_memory();
	free(f.mr2_snapshot);
	f.mr2_snapshot = NULL;
	if (raw_reg_mr_ex(&f.a, f.a.pd, mem + R_MR2 * REG, REG, ACCESS_ALL,
			  &f.mr2_key, &f.mr2_handle))
		FAIL("REG_MR again");
	f.mr2_live = true;
}

static int run_round(const char *dev, uint64_t deadline_us)
{
	unsigned int steps = 1500 + rn(2500), kill_at = 0, close_b_at;
	unsigned int dereg_at = rn(steps), rereg_at, resize_at = rn(steps);
	int channel = -1, exit_mode = (int)rn(4);
	struct ib_uverbs_create_comp_channel_resp chr;
	struct ib_uverbs_create_comp_channel chc = { .response = (uintptr_t)&chr };
	char path[4096];
	FILE *lidf;
	unsigned int lid;

	memset(&f, 0, sizeof(f));
	f.channel = -1;
	dev_name = dev;
	if (exit_mode == 3)
		kill_at = 1 + rn(steps);
	close_b_at = rn(steps);
	rereg_at = dereg_at + 50 + rn(200);
	signal(SIGPIPE, SIG_IGN);

	mem = mmap(NULL, (size_t)R_COUNT * REG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		SETUP(errno, "mmap");
	pattern_fill(mem, 0, (size_t)R_COUNT * REG);
	mr_base = mem + R_MR * REG + MR_HEAD;

	SETUP(raw_context(&f.a, dev, 2), "GET_CONTEXT");
	fill_db_tail(f.a.page, sizeof(struct vhca_ctx_page));
	snprintf(path, sizeof(path), "%s/class/infiniband/%s/ports/1/lid",
		 getenv("SYSFS_PATH"), dev);
	lidf = fopen(path, "r");
	if (!lidf || fscanf(lidf, "%x", &lid) != 1)
		SETUP(EIO, "the VF's LID");
	fclose(lidf);
	f.lid = (uint16_t)lid;
	SETUP(raw_cmd(f.a.fd, IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL, &chc,
		      sizeof(chc), NULL, 0, sizeof(chr)), "CREATE_COMP_CHANNEL");
	channel = f.channel = (int)chr.fd;
	fcntl(channel, F_SETFL, O_NONBLOCK);
	SETUP(raw_reg_mr_ex(&f.a, f.a.pd, mr_base, MR_LEN, ACCESS_ALL,
			    &f.mr_key, NULL), "REG_MR");
	SETUP(raw_reg_mr_ex(&f.a, f.a.pd, mem + R_MR2 * REG, REG, ACCESS_ALL,
			    &f.mr2_key, &f.mr2_handle), "REG_MR");
	f.mr2_live = true;
	SETUP(raw_reg_mr_ex(&f.a, f.a.pd, mem + R_MR_NOACCESS * REG, REG, 0,
			    &f.noacc_key, NULL), "REG_MR without access");
	SETUP(raw_alloc_pd(&f.a, &f.pd2), "ALLOC_PD");
	SETUP(raw_reg_mr_ex(&f.a, f.pd2, mem + R_MR_OTHER_PD * REG, REG,
			    ACCESS_ALL, &f.other_key, NULL), "REG_MR, PD 2");

	make_cq(0, true, 4096, chance(50) ? channel : -1);
	make_cq(1, true, 4096, -1);
	make_cq(2, false, 1u << (1 + rn(8)), chance(50) ? channel : -1);
	make_cq(3, false, 1u << (1 + rn(8)), -1);
	make_srq(0, true);
	make_srq(1, false);
	/* probed: RC 0-1 (1 on SRQ 0), RC 2-3, UC 4-5, UD 6-7 (7 on SRQ 0) */
	make_qp(0, IBV_QPT_RC, true, 0, 0, -1);
	make_qp(1, IBV_QPT_RC, true, 0, 0, 0);
	make_qp(2, IBV_QPT_RC, true, 1, 1, -1);
	make_qp(3, IBV_QPT_RC, true, 1, 1, -1);
	make_qp(4, IBV_QPT_UC, true, 0, 0, -1);
	make_qp(5, IBV_QPT_UC, true, 0, 0, -1);
	make_qp(6, IBV_QPT_UD, true, 1, 1, -1);
	make_qp(7, IBV_QPT_UD, true, 1, 1, 0);
	/* wild: RC 8-10 (8 on SRQ 1), UC 11-12, UD 13-14 (14 on SRQ 1) */
	make_qp(8, IBV_QPT_RC, false, 2, 3, 1);
	make_qp(9, IBV_QPT_RC, false, 2, 2, -1);
	make_qp(10, IBV_QPT_RC, false, 3, 3, -1);
	make_qp(11, IBV_QPT_UC, false, 3, 2, -1);
	make_qp(12, IBV_QPT_UC, false, 3, 3, -1);
	make_qp(13, IBV_QPT_UD, false, 2, 2, -1);
	make_qp(14, IBV_QPT_UD, false, 2, 3, 1);
	/*
	 * Each probed QP gets its share of random WQEs; RC 2-3 or UC 4-5
	 * (their receives come from their own RQs, which strangers cannot
	 * reach) may be clean: valid WQEs only, and never an error.
	 */
	for (int i = 0; i < N_QP; i++) {
		static const unsigned int rates[] = { 1, 5, 20, 50 };

		f.qps[i].bad_pct = i < N_PROBED ? rates[rn(4)] : 90;
	}
	{
		int c = (int)rn(4);

		for (int i = 2; i < 6; i++)
			f.qps[i].clean = (c == 1 && i < 4) || (c == 2 && i >= 4) ||
					 c == 3;
		for (int i = 2; i < 6; i++)
			if (f.qps[i].clean)
				f.qps[i].bad_pct = 0;
	}
	for (int i = 0; i < N_PROBED; i += 2) {
		f.qps[i].partner = i + 1;
		f.qps[i + 1].partner = i;
		connect_pair(i, i + 1);
	}
	for (int i = N_PROBED; i < N_QP; i++) {
		f.qps[i].partner = N_PROBED + (int)rn(N_WILD);
		wild_modify(&f.qps[i]);
	}
	make_b();
	{
		/* wild RC 8 and B's RC are a pair across contexts */
		struct conn k = tame_conn(f.lid, f.b_rc.qpn, 0, 0);

		connect_qp(&f.a, f.qps[N_PROBED].qp.handle, IBV_QPT_RC, &k);
	}

	printf("round %u: seed %#" PRIx64 ", %u steps%s, exit %s\n", round_no,
	       round_seed, steps, "", exit_mode == 0 ? "destroying all" :
	       exit_mode == 1 ? "without cleanup" : exit_mode == 2 ?
	       "closing the context" : "killed");
	fflush(stdout);

	/* ---- the storm ---- */
	for (step_no = 0; step_no < steps; step_no++) {
		struct fz_qp *q = &f.qps[rn(N_QP)];
		struct fz_qp *w = &f.qps[N_PROBED + rn(N_WILD)];
		struct fz_qp *p = &f.qps[rn(N_PROBED)];
		uint32_t what = rn(100);

		if (kill_at && step_no == kill_at) {
			printf("round %u: killed at step %u\n", round_no,
			       step_no);
			fflush(stdout);
			kill(getpid(), SIGKILL);
		}
		if (now_us() > deadline_us)
			break;
		action = "closing context B";
		if (step_no == close_b_at && f.b_live)
			close_b();
		action = "DEREG_MR, REG_MR, RESIZE_CQ";
		if (step_no == dereg_at && f.mr2_live) {
			/* DEREG_MR under traffic: nothing touches it after */
			if (raw_dereg_mr(&f.a, f.mr2_handle))
				FAIL("DEREG_MR under traffic");
			f.mr2_live = false;
			f.mr2_snapshot = malloc(REG);
			memcpy(f.mr2_snapshot, mem + R_MR2 * REG, REG);
		}
		if (step_no == rereg_at && !f.mr2_live)
			rereg_mr2();
		if (step_no == resize_at) {
			struct fz_cq *c = &f.cqs[rn(N_CQ)];
			int ret;

			poll_all();
			ret = resize_cq(c, c->honest ? 4096u << rn(2) :
						       1u << (1 + rn(8)));
			if (ret && c->honest && ret != EINVAL)
				FAIL("RESIZE_CQ of an honest CQ: %s",
				     strerror(ret));
		}
		if (what < 30) {
			action = "posting send WQEs";
			post_send(q);
		} else if (what < 45) {
			action = "posting receive WQEs";
			post_recv(q);
		} else if (what < 52) {
			action = "garbage on the doorbell page";
			fifo_chaos(&f.a);
		} else if (what < 57) {
			action = "garbage over a ring";
			/* garbage over a whole ring */
			uint32_t r = rn(3);

			if (q->clean)
				q = w;
			if (r == 0)
				ring_garbage(q->qp.sq, q->sq_shadow,
					     (size_t)q->qp.sq_count *
						     q->qp.sq_stride);
			else if (r == 1 && q->qp.rq_count)
				ring_garbage(q->qp.rq, q->rq_shadow,
					     (size_t)q->qp.rq_count *
						     q->qp.rq_stride);
			else if (q->srq && !q->srq->honest)
				ring_garbage(q->srq->srq.ring, q->srq->shadow,
					     (size_t)q->srq->srq.count *
						     q->srq->srq.stride);
			if (chance(50))
				post_send(q);
		} else if (what < 63) {
			action = "scribbling a doorbell record";
			scribble_db(w);
			if (chance(50))
				ring(w);
		} else if (what < 68) {
			action = "CQ consumer index and arm garbage";
			/* wild CQs: consumer, arm; every CQ: arm */
			struct fz_cq *c = &f.cqs[2 + rn(2)];

			if (chance(60))
				atomic_store((_Atomic uint32_t *)&c->cq.db->consumer,
					     c->consumer = wild_index(
						     c->cq.db->producer,
						     c->cq.count, c->consumer));
			else if (chance(50))
				rnd_fill(c->cq.ring, (size_t)c->cq.count * 64);
			atomic_store((_Atomic uint32_t *)&f.cqs[rn(N_CQ)].cq.db->arm,
				     chance(70) ? rn(3) : (uint32_t)rnd());
		} else if (what < 72) {
			action = "a random MODIFY_QP";
			wild_modify(w);
		} else if (what < 74) {
			action = "moving a probed QP";
			uint32_t r = rn(10);

			if (p->clean)
				r = 5;
			if (r < 4)
				to_error(p);
			else if (r < 8)
				connect_pair(p->index & ~1, p->index | 1);
			else
				connect_away(p);
		} else if (what < 76) {
			action = "QUERY_QP";
			struct ib_uverbs_query_qp_resp r;

			if (!query(&f.a, q->qp.handle, &r) &&
			    r.qp_state > IBV_QPS_ERR)
				FAIL("QUERY_QP says state %u", r.qp_state);
		} else if (what < 77) {
			action = "destroying and creating a QP";
			/* a wild QP destroyed and created again */
			int i = w->index, cs = (int)(w->scq - f.cqs),
			    cr = (int)(w->rcq - f.cqs);
			int srq = w->srq ? (int)(w->srq - f.srqs) : -1;
			uint8_t type = w->type;

			if (raw_destroy(&f.a, IB_USER_VERBS_CMD_DESTROY_QP, w->qp.handle))
				FAIL("DESTROY_QP of wild QP %d", i);
			unmap_qp(w);
			make_qp(i, type, false, cs, cr, srq);
			f.qps[i].partner = N_PROBED + (int)rn(N_WILD);
			wild_modify(&f.qps[i]);
		} else if (what < 79) {
			action = "SRQ commands";
			/* SRQ commands: limits, and a destroy that must fail */
			struct fz_srq *s = &f.srqs[rn(N_SRQ)];
			struct ib_uverbs_modify_srq m = {
				.srq_handle = s->srq.handle,
				.attr_mask = chance(80) ? IBV_SRQ_LIMIT : (uint32_t)rnd(),
				.srq_limit = rn(s->srq.count + 2),
				.max_wr = (uint32_t)rnd(),
			};

			raw_cmd(f.a.fd, IB_USER_VERBS_CMD_MODIFY_SRQ, &m,
				sizeof(m), NULL, 0, 0);
			if (chance(20) && raw_destroy(&f.a, IB_USER_VERBS_CMD_DESTROY_SRQ, s->srq.handle) != EBUSY)
				FAIL("DESTROY_SRQ of an SRQ in use did not say EBUSY");
			if (chance(20) &&
			    raw_destroy(&f.a, IB_USER_VERBS_CMD_DESTROY_CQ, f.cqs[rn(N_CQ)].cq.handle) != EBUSY)
				FAIL("DESTROY_CQ of a CQ in use did not say EBUSY");
		} else if (what < 83) {
			action = "context B traffic";
			if (f.b_live)
				b_traffic();
		} else if (what < 86) {
			action = "sleeping";
			usleep(rn(2000));
		} else if (what < 88) {
			action = "a forced doorbell";
			ring_hard(&f.a, q->qp.handle);
		} else if (what < 89) {
			action = "a retry over a failed WQE";
			retry_over_failed();
		} else if (what < 91 || (!f.mr2_live && what < 95)) {
			action = "a WQE across an MR's edge";
			edge_attack();
		} else {
			action = "traffic of a probed pair";
			post_send(p);
			post_recv(&f.qps[p->partner]);
		}
		poll_all();
		if (step_no % 256 == 0)
			check_memory();
	}
	if (f.b_live)
		close_b();
	if (!f.mr2_live)
		rereg_mr2();

	/* ---- quiet: the wild QPs stop, what is in flight finishes ---- */
	action = "the quiet after the storm";
	for (int i = N_PROBED; i < N_QP; i++)
		to_error(&f.qps[i]);
	{
		uint64_t end = now_us() + 600000;

		while (now_us() < end) {
			poll_all();
			usleep(1000);
		}
	}
	check_memory();

	/* ---- probes ---- */
	action = "the probes";
	for (int i = 0; i < N_PROBED; i++)
		probe(&f.qps[i], 1);
	fresh_pairs();
	check_memory();
	printf("round %u: %u steps, %" PRIu64 " CQEs checked (%" PRIu64
	       " errors, %" PRIu64 " flushes), %" PRIu64 " async events; probes: %"
	       PRIu64 " worked, %" PRIu64 " failed as they should\n",
	       round_no, step_no, f.cqes, f.errors, f.flushes, f.events,
	       f.probes_ok, f.probes_err);

	/* ---- the end ---- */
	action = "the end of the round";
	if (exit_mode == 0) {
		int ret;

		for (int i = 0; i < N_CQ; i++)
			if ((ret = raw_destroy(&f.a, IB_USER_VERBS_CMD_DESTROY_CQ, f.cqs[i].cq.handle)) != EBUSY)
				FAIL("DESTROY_CQ of a CQ in use: %s", strerror(ret));
		for (int i = 0; i < N_QP; i++)
			if ((ret = raw_destroy(&f.a, IB_USER_VERBS_CMD_DESTROY_QP, f.qps[i].qp.handle)))
				FAIL("DESTROY_QP %d: %s", i, strerror(ret));
		for (int i = 0; i < N_SRQ; i++)
			if ((ret = raw_destroy(&f.a, IB_USER_VERBS_CMD_DESTROY_SRQ, f.srqs[i].srq.handle)))
				FAIL("DESTROY_SRQ %d: %s", i, strerror(ret));
		for (int i = 0; i < N_CQ; i++)
			if ((ret = raw_destroy(&f.a, IB_USER_VERBS_CMD_DESTROY_CQ, f.cqs[i].cq.handle)))
				FAIL("DESTROY_CQ %d: %s", i, strerror(ret));
		if ((ret = raw_dereg_mr(&f.a, f.mr2_handle)))
			FAIL("DEREG_MR: %s", strerror(ret));
	}
	if (exit_mode == 0 || exit_mode == 2) {
		close(f.a.fd);
		close(channel);
	}
	return failures ? 1 : 0;
}

/* ---- the parent -------------------------------------------------------------- */

static bool parse_target(const char *s, struct target *t)
{
	unsigned int lid, qpn, rkey;
	unsigned long long addr;

	if (sscanf(s, "%u:%u:%u:%llu", &lid, &qpn, &rkey, &addr) != 4)
		return false;
	*t = (struct target){ .lid = (uint16_t)lid, .qpn = qpn, .rkey = rkey,
			      .addr = addr };
	return true;
}

int main(int argc, char **argv)
{
	const char *dev, *only = getenv("VHCA_FUZZ_ROUND");
	uint64_t seed, start, deadline;
	unsigned int rounds = 0, killed = 0, first = 0;
	pid_t vhcad;
	int seconds, bad = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 5) {
		fprintf(stderr, "usage: fuzz_datapath DEV SECONDS SEED VHCAD_PID [LID:QPN:RKEY:ADDR...]\n");
		return 2;
	}
	dev = argv[1];
	seconds = atoi(argv[2]);
	seed = strtoull(argv[3], NULL, 0);
	vhcad = vhcad_pid = (pid_t)atoi(argv[4]);
	for (int i = 5; i < argc && ntargets < 8; i++)
		if (parse_target(argv[i], &targets[ntargets]))
			ntargets++;
	if (only)
		first = (unsigned int)atoi(only);
	printf("fuzz_datapath: %s for %d s, seed %#" PRIx64
	       " (VHCA_FUZZ_SEED replays it; VHCA_FUZZ_ROUND=N one round), %u targets\n",
	       dev, seconds, seed, ntargets);
	start = now_us();
	deadline = start + (uint64_t)seconds * 1000000;
	for (unsigned int r = first; only ? r == first : now_us() < deadline;
	     r++) {
		uint64_t rseed = mix64(seed ^ mix64(r));
		char line[1024];
		int status = 0;
		bool idle = false;
		pid_t pid;

		fflush(stdout);
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (!pid) {
			round_no = r;
			round_seed = rseed;
			rnd_seed(rseed);
			bad = run_round(dev, only ? UINT64_MAX : deadline);
			fflush(stdout);
			_exit(bad);
		}
		/* A round that does not end is a hung device. */
		for (int i = 0;; i++) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid)
				break;
			if (i > 120 * 100) {
				printf("FAIL: round %u (seed %#" PRIx64
				       ") hung for 120 s\n", r, rseed);
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				bad = 1;
				break;
			}
			usleep(10000);
		}
		rounds++;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
			killed++;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("FAIL: round %u (seed %#" PRIx64 ") %s %d\n", r,
			       rseed, WIFEXITED(status) ? "exit" : "signal",
			       WIFEXITED(status) ? WEXITSTATUS(status) :
						   WTERMSIG(status));
			bad = 1;
		}
		if (!alive(vhcad)) {
			printf("FAIL: vhcad died in round %u (seed %#" PRIx64
			       ")\n", r, rseed);
			return 1;
		}
		/* Everything of the round is released once it is gone. */
		for (int i = 0; i < 1000 && !(idle = vf_idle(dev, line,
							     sizeof(line)));
		     i++)
			usleep(10000);
		if (!idle) {
			printf("FAIL: round %u (seed %#" PRIx64
			       "): 10 s after its end the VF still holds: %s\n",
			       r, rseed, line);
			bad = 1;
		}
		if (bad)
			break;
	}
	printf("fuzz_datapath: %u rounds (%u killed) in %.1f s: %s\n", rounds,
	       killed, (double)(now_us() - start) / 1e6,
	       bad ? "FAILED" : "every check held");
	return bad;
}
