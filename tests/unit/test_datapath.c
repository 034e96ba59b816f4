// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The data path driven in-process: this process is the guest (it creates
 * the memfds, writes WQEs per include/vhca/queue.h, rings doorbells) and
 * runs the engine itself with vhca_engine_poll_once(), so every step is
 * deterministic.  Covers CQ/QP create validation, the modify_qp state
 * machine, RC/UD operations with data checks, RNR, retry, flush and a
 * scribbler.
 */
#include <endian.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

#include "../common.h"
#include "driver/cmd.h"
#include "driver/context.h"
#include "device/engine.h"
#include "device/pf.h"
#include "device/qp.h"

TEST_COUNTERS;

static struct vhca_pf pf;
static struct vhca_dev *dev;

#define LID 7

static void setup_device(void)
{
	pthread_rwlock_init(&pf.lock, NULL);
	dev = &pf.dev;
	dev->pf = &pf;
	snprintf(dev->name, sizeof(dev->name), "vhca0");
	dev->port = (struct vhca_port){
		.state = IBV_PORT_ACTIVE,
		.active_mtu = IBV_MTU_4096,
		.lid = LID,
	};
	dev->port.pkeys[0] = 0xffff;
	dev->port.pkeys[1] = 0x8001;
	vhca_budget_init();
	vhca_quota_share(1, &dev->quota);
	REQUIRE(vhca_dev_open_port(dev, &vhca_ucontext_sink) == 0, "port");
}

/* ---- commands ---------------------------------------------------------- */

struct cmd_buf {
	struct ib_uverbs_cmd_hdr hdr;
	uint64_t words[256];
};

static int submit(struct vhca_ucontext *u, const void *buf, size_t len)
{
	ssize_t ret = vhca_cmd_write(u, gettid(), buf, len);

	return ret < 0 ? (int)-ret : 0;
}

static int legacy(struct vhca_ucontext *u, uint32_t command, const void *core,
		  size_t core_len, const void *udata, size_t udata_len,
		  size_t out_len)
{
	struct cmd_buf c;
	size_t len = sizeof(c.hdr) + core_len + udata_len;

	memset(&c, 0, sizeof(c));
	memcpy(c.words, core, core_len);
	if (udata_len)
		memcpy((uint8_t *)c.words + core_len, udata, udata_len);
	c.hdr.command = command;
	c.hdr.in_words = (uint16_t)(len / 4);
	c.hdr.out_words = (uint16_t)(out_len / 4);
	return submit(u, &c, len);
}

/* A sealed memfd of @size bytes, mapped here too. */
static int sealed_memfd(size_t size, void **map)
{
	int fd = memfd_create("vhca-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	REQUIRE(fd >= 0 && !ftruncate(fd, (off_t)size), "memfd");
	REQUIRE(!fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), "seal");
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(*map != MAP_FAILED, "mmap");
	memset(*map, 0, size);
	return fd;
}

struct guest {
	struct vhca_ucontext *u;
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ctx_page *page;
	int page_fd;
	int async_rd;
	uint32_t pd;
};

static void pipe_pair(struct vhca_fd_pair *p)
{
	int fds[2];

	REQUIRE(!pipe2(fds, O_CLOEXEC | O_NONBLOCK), "pipe");
	p->read_fd = fds[0];
	p->write_fd = fds[1];
}

static int guest_open_with(struct guest *gu, int page_fd, int wake_fd)
{
	struct ib_uverbs_get_context core;
	uint8_t resp[8 + sizeof(struct vhca_alloc_ucontext_resp)];
	int ret;

	memset(&gu->g, 0, sizeof(gu->g));
	gu->u = vhca_cmd_open(dev);
	REQUIRE(gu->u, "open");
	gu->g.abi_version = VHCA_UVERBS_ABI_VERSION;
	gu->g.num_channels = 2;
	pipe_pair(&gu->g.async_event);
	pipe_pair(&gu->g.service);
	pipe_pair(&gu->g.channels[0]);
	pipe_pair(&gu->g.channels[1]);
	gu->g.ctx_page_fd = page_fd;
	gu->g.wake_fd = wake_fd;
	gu->async_rd = gu->g.async_event.read_fd;
	core = (struct ib_uverbs_get_context){ .response = (uintptr_t)resp };
	ret = legacy(gu->u, IB_USER_VERBS_CMD_GET_CONTEXT, &core, sizeof(core),
		     &gu->g, sizeof(gu->g), 8 + sizeof(struct vhca_alloc_ucontext_resp));
	return ret;
}

static void guest_open(struct guest *gu)
{
	struct ib_uverbs_alloc_pd_resp presp;
	struct ib_uverbs_alloc_pd pcore = { .response = (uintptr_t)&presp };
	void *map;
	int ret;

	gu->page_fd = sealed_memfd(VHCA_PAGE_SIZE, &map);
	gu->page = map;
	ret = guest_open_with(gu, gu->page_fd,
			      eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	REQUIRE(ret == 0, "GET_CONTEXT with data path: %s", strerror(ret));
	ret = legacy(gu->u, IB_USER_VERBS_CMD_ALLOC_PD, &pcore, sizeof(pcore),
		     NULL, 0, sizeof(presp));
	REQUIRE(ret == 0, "ALLOC_PD");
	gu->pd = presp.pd_handle;
}

static void guest_close(struct guest *gu)
{
	vhca_cmd_release(gu->u);
	gu->u = NULL;
}

static struct ib_uverbs_reg_mr_resp reg_mr(struct guest *gu, void *addr,
					   size_t len, uint32_t access)
{
	struct ib_uverbs_reg_mr_resp resp = { 0 };
	struct ib_uverbs_reg_mr core = {
		.response = (uintptr_t)&resp,
		.start = (uintptr_t)addr,
		.length = len,
		.hca_va = (uintptr_t)addr,
		.pd_handle = gu->pd,
		.access_flags = access,
	};
	int ret = legacy(gu->u, IB_USER_VERBS_CMD_REG_MR, &core, sizeof(core),
			 NULL, 0, sizeof(resp));

	REQUIRE(ret == 0, "REG_MR: %s", strerror(ret));
	return resp;
}

/* ---- CQs ------------------------------------------------------------- */

struct tcq {
	uint32_t handle;
	struct vhca_cqe *ring;
	struct vhca_cq_db *db;
	uint32_t count, consumer;
};

static int cq_create_raw(struct guest *gu, uint32_t cqe,
			 struct vhca_create_cq_cmd *ucmd, int32_t channel,
			 uint32_t *handle)
{
	struct {
		struct ib_uverbs_create_cq_resp core;
		struct vhca_create_cq_resp udata;
	} resp;
	struct ib_uverbs_create_cq core = {
		.response = (uintptr_t)&resp,
		.user_handle = 0x1234,
		.cqe = cqe,
		.comp_channel = channel,
	};
	int ret = legacy(gu->u, IB_USER_VERBS_CMD_CREATE_CQ, &core,
			 sizeof(core), ucmd, sizeof(*ucmd), sizeof(resp));

	if (!ret && handle)
		*handle = resp.core.cq_handle;
	return ret;
}

static void cq_layout(struct vhca_create_cq_cmd *c, int fd, uint32_t count)
{
	*c = (struct vhca_create_cq_cmd){
		.buf_fd = fd,
		.cqe_count = count,
		.buf_size = (uint64_t)count * 64 + VHCA_PAGE_SIZE,
		.ring_offset = 0,
		.db_offset = (uint64_t)count * 64,
	};
}

static void cq_create(struct guest *gu, struct tcq *cq, uint32_t count)
{
	struct vhca_create_cq_cmd c;
	void *map;
	int fd = sealed_memfd((size_t)count * 64 + VHCA_PAGE_SIZE, &map);
	int ret;

	cq_layout(&c, fd, count);
	ret = cq_create_raw(gu, count - 1, &c, -1, &cq->handle);
	REQUIRE(ret == 0, "CREATE_CQ: %s", strerror(ret));
	close(fd);
	cq->ring = map;
	cq->db = (struct vhca_cq_db *)((uint8_t *)map + (size_t)count * 64);
	cq->count = count;
	cq->consumer = 0;
}

static bool cq_peek(struct tcq *cq, struct vhca_cqe *out)
{
	struct vhca_cqe *c = &cq->ring[cq->consumer & (cq->count - 1)];
	uint8_t want = ((cq->consumer / cq->count) & 1) ^ 1;

	if ((atomic_load((_Atomic uint8_t *)&c->owner) & 1) != want)
		return false;
	*out = *c;
	cq->consumer++;
	atomic_store((_Atomic uint32_t *)&cq->db->consumer, cq->consumer);
	return true;
}

/* Runs the engine until a CQE arrives or @ms pass. */
static bool cq_wait(struct tcq *cq, struct vhca_cqe *out, int ms)
{
	uint64_t end = vhca_now_ns() + (uint64_t)ms * 1000000ULL;

	do {
		if (cq_peek(cq, out))
			return true;
		vhca_engine_poll_once();
	} while (vhca_now_ns() < end);
	return cq_peek(cq, out);
}

static void run_engine_ms(int ms)
{
	uint64_t end = vhca_now_ns() + (uint64_t)ms * 1000000ULL;

	while (vhca_now_ns() < end)
		vhca_engine_poll_once();
}

/* ---- QPs --------------------------------------------------------------- */

struct tqp {
	struct guest *gu;
	uint32_t handle, qpn;
	uint8_t *sq, *rq;
	struct vhca_qp_db *db;
	uint32_t sq_count, rq_count, sq_stride, rq_stride;
	uint32_t sq_head, rq_head;
};

#define QP_SQ 16
#define QP_RQ 16
#define SQ_STRIDE 512
#define RQ_STRIDE 256
#define QP_BUF (QP_SQ * SQ_STRIDE + QP_RQ * RQ_STRIDE + VHCA_PAGE_SIZE)

static void qp_layout(struct vhca_create_qp_cmd *c, int fd)
{
	*c = (struct vhca_create_qp_cmd){
		.buf_fd = fd,
		.buf_size = QP_BUF,
		.sq_offset = 0,
		.sq_wqe_count = QP_SQ,
		.sq_stride = SQ_STRIDE,
		.rq_offset = QP_SQ * SQ_STRIDE,
		.rq_wqe_count = QP_RQ,
		.rq_stride = RQ_STRIDE,
		.db_offset = QP_SQ * SQ_STRIDE + QP_RQ * RQ_STRIDE,
	};
}

static void qp_core(struct ib_uverbs_create_qp *core, void *resp,
		    struct guest *gu, uint8_t type, uint32_t cq)
{
	*core = (struct ib_uverbs_create_qp){
		.response = (uintptr_t)resp,
		.user_handle = 0x5678,
		.pd_handle = gu->pd,
		.send_cq_handle = cq,
		.recv_cq_handle = cq,
		.max_send_wr = QP_SQ,
		.max_recv_wr = QP_RQ,
		.max_send_sge = 4,
		.max_recv_sge = 4,
		.max_inline_data = 64,
		.qp_type = type,
	};
}

struct create_qp_resp {
	struct ib_uverbs_create_qp_resp core;
	struct vhca_create_qp_resp udata;
};

static int qp_create_raw(struct guest *gu, const struct ib_uverbs_create_qp *core,
			 const struct vhca_create_qp_cmd *ucmd,
			 struct create_qp_resp *resp)
{
	return legacy(gu->u, IB_USER_VERBS_CMD_CREATE_QP, core, sizeof(*core),
		      ucmd, sizeof(*ucmd), sizeof(*resp));
}

static void qp_create(struct guest *gu, struct tqp *qp, uint8_t type,
		      struct tcq *cq)
{
	struct ib_uverbs_create_qp core;
	struct vhca_create_qp_cmd c;
	struct create_qp_resp resp;
	void *map;
	int fd = sealed_memfd(QP_BUF, &map);
	int ret;

	qp_layout(&c, fd);
	qp_core(&core, &resp, gu, type, cq->handle);
	ret = qp_create_raw(gu, &core, &c, &resp);
	REQUIRE(ret == 0, "CREATE_QP: %s", strerror(ret));
	close(fd);
	memset(qp, 0, sizeof(*qp));
	qp->gu = gu;
	qp->handle = resp.core.qp_handle;
	qp->qpn = resp.core.qpn;
	qp->sq = map;
	qp->rq = (uint8_t *)map + QP_SQ * SQ_STRIDE;
	qp->db = (struct vhca_qp_db *)((uint8_t *)map + c.db_offset);
	qp->sq_count = QP_SQ;
	qp->rq_count = QP_RQ;
	qp->sq_stride = SQ_STRIDE;
	qp->rq_stride = RQ_STRIDE;
}

static int modify(struct tqp *qp, struct ib_uverbs_modify_qp *m)
{
	m->qp_handle = qp->handle;
	return legacy(qp->gu->u, IB_USER_VERBS_CMD_MODIFY_QP, m, sizeof(*m),
		      NULL, 0, 0);
}

static int to_state(struct tqp *qp, uint8_t state)
{
	struct ib_uverbs_modify_qp m = { .attr_mask = IBV_QP_STATE,
					 .qp_state = state };

	return modify(qp, &m);
}

static int query_state(struct tqp *qp)
{
	struct ib_uverbs_query_qp_resp resp;
	struct ib_uverbs_query_qp core = { .response = (uintptr_t)&resp,
					   .qp_handle = qp->handle };
	int ret = legacy(qp->gu->u, IB_USER_VERBS_CMD_QUERY_QP, &core,
			 sizeof(core), NULL, 0, sizeof(resp));

	return ret ? -ret : resp.qp_state;
}

/* RC/UC: RESET -> INIT -> RTR -> RTS, connected to @peer_qpn. */
static void connect_qp(struct tqp *qp, uint8_t type, uint32_t peer_qpn,
		       uint8_t rnr_retry, uint8_t min_rnr_timer,
		       uint8_t timeout, uint8_t retry_cnt)
{
	struct ib_uverbs_modify_qp m = {
		.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			     IBV_QP_ACCESS_FLAGS,
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IB_UVERBS_ACCESS_REMOTE_WRITE |
				   IB_UVERBS_ACCESS_REMOTE_READ |
				   IB_UVERBS_ACCESS_REMOTE_ATOMIC,
	};
	int ret;

	if (type == IBV_QPT_UD) {
		m.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			      IBV_QP_QKEY;
		m.qkey = 0x11111111;
	}
	ret = modify(qp, &m);
	REQUIRE(ret == 0, "to INIT: %s", strerror(ret));
	memset(&m, 0, sizeof(m));
	m.attr_mask = IBV_QP_STATE;
	m.qp_state = IBV_QPS_RTR;
	if (type != IBV_QPT_UD) {
		m.attr_mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			       IBV_QP_RQ_PSN;
		m.dest.dlid = LID;
		m.path_mtu = IBV_MTU_4096;
		m.dest_qp_num = peer_qpn;
	}
	if (type == IBV_QPT_RC) {
		m.attr_mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
		m.max_dest_rd_atomic = 4;
		m.min_rnr_timer = min_rnr_timer;
	}
	ret = modify(qp, &m);
	REQUIRE(ret == 0, "to RTR: %s", strerror(ret));
	memset(&m, 0, sizeof(m));
	m.attr_mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
	m.qp_state = IBV_QPS_RTS;
	if (type == IBV_QPT_RC) {
		m.attr_mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			       IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
		m.timeout = timeout;
		m.retry_cnt = retry_cnt;
		m.rnr_retry = rnr_retry;
		m.max_rd_atomic = 4;
	}
	ret = modify(qp, &m);
	REQUIRE(ret == 0, "to RTS: %s", strerror(ret));
}

static void ring(struct guest *gu, uint32_t handle, uint32_t kind,
		 _Atomic uint32_t *queued)
{
	struct vhca_ctx_page *p = gu->page;
	uint32_t head;

	if (atomic_exchange(queued, 1))
		return;
	head = atomic_load((_Atomic uint32_t *)&p->fifo_head);
	if (head - atomic_load((_Atomic uint32_t *)&p->fifo_tail) >=
	    VHCA_DB_FIFO_LEN) {
		atomic_store((_Atomic uint32_t *)&p->overflow, 1);
		return;
	}
	p->fifo[head % VHCA_DB_FIFO_LEN] = handle << 1 | kind;
	atomic_store_explicit((_Atomic uint32_t *)&p->fifo_head, head + 1,
			      memory_order_release);
}

static void post_send(struct tqp *qp, const struct vhca_send_wqe *w,
		      const struct vhca_sge *sges, const void *inl)
{
	uint8_t *slot = qp->sq + (qp->sq_head & (qp->sq_count - 1)) *
					 qp->sq_stride;

	memcpy(slot, w, sizeof(*w));
	if (inl)
		memcpy(slot + sizeof(*w), inl, w->inline_len);
	else if (w->num_sge)
		memcpy(slot + sizeof(*w), sges, w->num_sge * sizeof(*sges));
	qp->sq_head++;
	atomic_store_explicit((_Atomic uint32_t *)&qp->db->sq_head,
			      qp->sq_head, memory_order_release);
	ring(qp->gu, qp->handle, VHCA_DB_QP,
	     (_Atomic uint32_t *)&qp->db->queued);
}

static void post_recv(struct tqp *qp, uint64_t wr_id, void *addr,
		      uint32_t len, uint32_t lkey)
{
	uint8_t *slot = qp->rq + (qp->rq_head & (qp->rq_count - 1)) *
					 qp->rq_stride;
	struct vhca_recv_wqe w = { .wr_id = wr_id, .num_sge = 1 };
	struct vhca_sge sge = { (uintptr_t)addr, len, lkey };

	memcpy(slot, &w, sizeof(w));
	memcpy(slot + sizeof(w), &sge, sizeof(sge));
	qp->rq_head++;
	atomic_store_explicit((_Atomic uint32_t *)&qp->db->rq_head,
			      qp->rq_head, memory_order_release);
	ring(qp->gu, qp->handle, VHCA_DB_QP,
	     (_Atomic uint32_t *)&qp->db->queued);
}

static struct vhca_send_wqe wqe(uint64_t wr_id, uint8_t opcode,
				uint8_t num_sge)
{
	return (struct vhca_send_wqe){ .wr_id = wr_id,
				       .opcode = opcode,
				       .flags = VHCA_WQE_SIGNALED,
				       .num_sge = num_sge };
}

/* ---- tests ------------------------------------------------------------- */

static void test_context_data_path(void)
{
	struct guest gu;
	void *map;
	int small, unsealed, efd;

	/* Without a data path (both fds equal): control only. */
	CHECK(guest_open_with(&gu, -1, -1) == 0, "no data path");
	{
		struct vhca_create_cq_cmd c;

		cq_layout(&c, -1, 16);
		CHECK(cq_create_raw(&gu, 8, &c, -1, NULL) == EOPNOTSUPP,
		      "CQ without data path");
	}
	guest_close(&gu);

	efd = eventfd(0, EFD_CLOEXEC);
	small = memfd_create("small", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	REQUIRE(!ftruncate(small, 1024), "truncate");
	fcntl(small, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	CHECK(guest_open_with(&gu, small, efd) == EINVAL, "page too small");
	guest_close(&gu);
	unsealed = memfd_create("unsealed", MFD_CLOEXEC);
	REQUIRE(!ftruncate(unsealed, 4096), "truncate");
	CHECK(guest_open_with(&gu, unsealed, efd) == EINVAL, "page unsealed");
	guest_close(&gu);
	int page = sealed_memfd(4096, &map);
	CHECK(guest_open_with(&gu, page, gu.g.async_event.read_fd) == EINVAL,
	      "wake fd not an eventfd");
	guest_close(&gu);
	CHECK(guest_open_with(&gu, page, efd) == 0, "good page and eventfd");
	CHECK(atomic_load(&dev->stats.contexts) == 1, "one context");
	guest_close(&gu);
	CHECK(atomic_load(&dev->stats.contexts) == 0, "none after release");
	close(small);
	close(unsealed);
	close(page);
	close(efd);
	munmap(map, 4096);
}

static void test_return_channels(void)
{
	struct vhca_return_channels_resp resp;
	struct vhca_return_channels_cmd core = { .response = (uintptr_t)&resp };
	struct guest gu;
	int ret;

	guest_open(&gu);
	memset(&resp, 0xff, sizeof(resp));
	ret = legacy(gu.u, VHCA_CMD_RETURN_CHANNELS, &core, sizeof(core), NULL,
		     0, sizeof(resp));
	CHECK(ret == 0, "RETURN_CHANNELS: %s", strerror(ret));
	CHECK(resp.num_fds == 2 && resp.reserved == 0, "two pooled, got %u",
	      resp.num_fds);
	CHECK((resp.read_fds[0] == gu.g.channels[0].read_fd ||
	       resp.read_fds[0] == gu.g.channels[1].read_fd) &&
		      resp.read_fds[2] == 0,
	      "read ends listed, rest zero");
	ret = legacy(gu.u, VHCA_CMD_RETURN_CHANNELS, &core, sizeof(core), NULL,
		     0, sizeof(resp));
	CHECK(ret == 0 && resp.num_fds == 0, "second time: none");
	guest_close(&gu);
}

static void test_cq_create(void)
{
	struct vhca_create_cq_cmd c;
	struct guest gu;
	uint32_t h;
	void *map;
	int fd, pfd[2];

	guest_open(&gu);
	fd = sealed_memfd(64 * 64 + 4096, &map);
	cq_layout(&c, fd, 64);
	CHECK(cq_create_raw(&gu, 0, &c, -1, NULL) == EINVAL, "cqe 0");
	CHECK(cq_create_raw(&gu, 64, &c, -1, NULL) == EINVAL,
	      "ring not larger than cqe");
	c.cqe_count = 48;
	CHECK(cq_create_raw(&gu, 8, &c, -1, NULL) == EINVAL, "not pow2");
	cq_layout(&c, fd, 64);
	c.buf_size = 64 * 64 + 8192;
	CHECK(cq_create_raw(&gu, 8, &c, -1, NULL) == EINVAL, "size > memfd");
	cq_layout(&c, fd, 64);
	c.ring_offset = 64;
	CHECK(cq_create_raw(&gu, 8, &c, -1, NULL) == EINVAL, "ring unaligned");
	cq_layout(&c, fd, 64);
	c.db_offset = 128;
	CHECK(cq_create_raw(&gu, 8, &c, -1, NULL) == EINVAL, "db overlaps");
	cq_layout(&c, fd, 64);
	c.db_offset = 64 * 64 + 4;
	CHECK(cq_create_raw(&gu, 8, &c, -1, NULL) == EINVAL, "db unaligned");
	cq_layout(&c, fd, 64);
	c.db_offset = 64 * 64 + 4096 - 8;
	CHECK(cq_create_raw(&gu, 8, &c, -1, NULL) == EINVAL, "db outside");
	REQUIRE(!pipe2(pfd, O_CLOEXEC), "pipe");
	cq_layout(&c, pfd[0], 64);
	CHECK(cq_create_raw(&gu, 8, &c, -1, NULL) == EINVAL, "not a memfd");
	cq_layout(&c, fd, 64);
	CHECK(cq_create_raw(&gu, 8, &c, 999, NULL) == EINVAL, "bad channel");
	CHECK(cq_create_raw(&gu, 8, &c, -1, &h) == 0, "good CQ");
	CHECK(atomic_load(&dev->stats.cqs) == 1, "one CQ counted");
	{
		struct ib_uverbs_destroy_cq_resp r;
		struct ib_uverbs_destroy_cq d = { .response = (uintptr_t)&r,
						  .cq_handle = h };

		CHECK(legacy(gu.u, IB_USER_VERBS_CMD_DESTROY_CQ, &d, sizeof(d),
			     NULL, 0, sizeof(r)) == 0 &&
			      r.comp_events_reported == 0,
		      "destroy");
		CHECK(legacy(gu.u, IB_USER_VERBS_CMD_DESTROY_CQ, &d, sizeof(d),
			     NULL, 0, sizeof(r)) == EINVAL,
		      "destroy twice");
	}
	CHECK(atomic_load(&dev->stats.cqs) == 0, "no CQ counted");
	close(pfd[0]);
	close(pfd[1]);
	close(fd);
	munmap(map, 64 * 64 + 4096);
	guest_close(&gu);
}

static void test_qp_create(void)
{
	struct ib_uverbs_create_qp core;
	struct vhca_create_qp_cmd c;
	struct create_qp_resp resp;
	struct guest gu;
	struct tcq cq;
	void *map;
	int fd;

	guest_open(&gu);
	cq_create(&gu, &cq, 64);
	fd = sealed_memfd(QP_BUF, &map);

#define EXPECT(err, what, ...)                                               \
	do {                                                                 \
		qp_layout(&c, fd);                                           \
		qp_core(&core, &resp, &gu, IBV_QPT_RC, cq.handle);           \
		__VA_ARGS__;                                                 \
		CHECK(qp_create_raw(&gu, &core, &c, &resp) == err, what);    \
	} while (0)

	EXPECT(EINVAL, "bad pd", core.pd_handle = 999);
	EXPECT(EINVAL, "bad send cq", core.send_cq_handle = gu.pd);
	EXPECT(EINVAL, "bad recv cq", core.recv_cq_handle = 999);
	EXPECT(EINVAL, "srq handle", core.is_srq = 1; c.rq_wqe_count = 0);
	EXPECT(EINVAL, "type 99", core.qp_type = 99);
	EXPECT(EOPNOTSUPP, "raw packet", core.qp_type = IBV_QPT_RAW_PACKET);
	EXPECT(EINVAL, "max_send_wr", core.max_send_wr = 1u << 20);
	EXPECT(EINVAL, "max_send_sge", core.max_send_sge = 17);
	EXPECT(EINVAL, "max_inline", core.max_inline_data = 4096);
	EXPECT(EINVAL, "sq too small", core.max_send_wr = QP_SQ + 1);
	EXPECT(EINVAL, "sq count not pow2", c.sq_wqe_count = 12);
	EXPECT(EINVAL, "sq stride small", c.sq_stride = 64);
	EXPECT(EINVAL, "sq stride huge", c.sq_stride = 8192);
	EXPECT(EINVAL, "rq stride small", core.max_recv_sge = 16);
	EXPECT(EINVAL, "rq overlaps sq", c.rq_offset = 4096);
	EXPECT(EINVAL, "sq unaligned", c.sq_offset = 64);
	EXPECT(EINVAL, "db outside", c.db_offset = QP_BUF);
	EXPECT(EINVAL, "buf size > memfd", c.buf_size = QP_BUF + 4096);
	EXPECT(EINVAL, "reserved", c.reserved = 1);
	EXPECT(EINVAL, "bad fd", c.buf_fd = 9999);
	EXPECT(0, "good QP");
	CHECK(resp.core.qpn > 1 && resp.core.qpn <= 0xffffff, "qpn %u",
	      resp.core.qpn);
	CHECK(resp.core.max_send_wr == QP_SQ && resp.core.max_recv_wr == QP_RQ &&
		      resp.core.max_inline_data == 256 &&
		      resp.udata.max_inline_data == 256 &&
		      resp.core.max_send_sge == 16 &&
		      resp.core.max_recv_sge == 15,
	      "caps: wr %u/%u sge %u/%u inline %u", resp.core.max_send_wr,
	      resp.core.max_recv_wr, resp.core.max_send_sge,
	      resp.core.max_recv_sge, resp.core.max_inline_data);
	CHECK(atomic_load(&dev->stats.qps) == 1, "one QP counted");
	{
		struct ib_uverbs_destroy_cq_resp r;
		struct ib_uverbs_destroy_cq d = { .response = (uintptr_t)&r,
						  .cq_handle = cq.handle };
		struct ib_uverbs_dealloc_pd p = { .pd_handle = gu.pd };

		CHECK(legacy(gu.u, IB_USER_VERBS_CMD_DESTROY_CQ, &d, sizeof(d),
			     NULL, 0, sizeof(r)) == EBUSY,
		      "CQ busy while QP uses it");
		CHECK(legacy(gu.u, IB_USER_VERBS_CMD_DEALLOC_PD, &p, sizeof(p),
			     NULL, 0, 0) == EBUSY,
		      "PD busy while QP uses it");
	}
#undef EXPECT
	close(fd);
	munmap(map, QP_BUF);
	guest_close(&gu);
	CHECK(atomic_load(&dev->stats.qps) == 0 &&
		      atomic_load(&dev->stats.cqs) == 0,
	      "release frees QPs and CQs");
}

static void test_state_machine(void)
{
	struct ib_uverbs_modify_qp m;
	struct guest gu;
	struct tcq cq;
	struct tqp rc, ud;

	guest_open(&gu);
	cq_create(&gu, &cq, 64);
	qp_create(&gu, &rc, IBV_QPT_RC, &cq);
	qp_create(&gu, &ud, IBV_QPT_UD, &cq);

	CHECK(query_state(&rc) == IBV_QPS_RESET, "starts in RESET");
	CHECK(to_state(&rc, IBV_QPS_RTR) == EINVAL, "RESET->RTR");
	CHECK(to_state(&rc, IBV_QPS_INIT) == EINVAL, "INIT needs attrs");
	CHECK(to_state(&rc, IBV_QPS_RESET) == 0, "RESET->RESET");
	m = (struct ib_uverbs_modify_qp){
		.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			     IBV_QP_ACCESS_FLAGS | IBV_QP_AV,
		.qp_state = IBV_QPS_INIT, .port_num = 1,
	};
	m.dest.dlid = LID;
	CHECK(modify(&rc, &m) == EINVAL, "INIT with AV");
	m.attr_mask &= ~(uint32_t)IBV_QP_AV;
	m.port_num = 2;
	CHECK(modify(&rc, &m) == EINVAL, "port 2");
	m.port_num = 1;
	m.pkey_index = 5;
	CHECK(modify(&rc, &m) == EINVAL, "empty pkey entry");
	m.pkey_index = 200;
	CHECK(modify(&rc, &m) == EINVAL, "pkey index past table");
	m.pkey_index = 1;
	m.qp_access_flags = 1u << 30;
	CHECK(modify(&rc, &m) == EINVAL, "unknown access flag");
	m.qp_access_flags = 0;
	CHECK(query_state(&rc) == IBV_QPS_RESET, "failures changed nothing");
	CHECK(modify(&rc, &m) == 0, "RESET->INIT");
	m.attr_mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
		      IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
	m.qp_state = IBV_QPS_RTR;
	m.path_mtu = IBV_MTU_4096;
	m.dest_qp_num = ud.qpn;
	CHECK(modify(&rc, &m) == EINVAL, "RC RTR needs rnr timer, rd atomic");
	m.attr_mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	m.path_mtu = 6;
	CHECK(modify(&rc, &m) == EINVAL, "mtu 6");
	m.path_mtu = IBV_MTU_4096;
	m.dest.dlid = 0;
	CHECK(modify(&rc, &m) == EINVAL, "dlid 0");
	m.dest.dlid = 0xc001;
	CHECK(modify(&rc, &m) == EINVAL, "multicast dlid");
	m.dest.dlid = LID;
	m.min_rnr_timer = 32;
	CHECK(modify(&rc, &m) == EINVAL, "rnr timer 32");
	m.min_rnr_timer = 1;
	m.max_dest_rd_atomic = 17;
	CHECK(modify(&rc, &m) == EINVAL, "rd atomic 17");
	m.max_dest_rd_atomic = 1;
	m.cur_qp_state = IBV_QPS_RTS;
	m.attr_mask |= IBV_QP_CUR_STATE;
	CHECK(modify(&rc, &m) == EINVAL, "cur state INIT not allowed");
	m.attr_mask &= ~(uint32_t)IBV_QP_CUR_STATE;
	CHECK(modify(&rc, &m) == 0, "INIT->RTR");
	CHECK(to_state(&rc, IBV_QPS_RTS) == EINVAL, "RTS needs attrs");
	m = (struct ib_uverbs_modify_qp){
		.attr_mask = IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT |
			     IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			     IBV_QP_MAX_QP_RD_ATOMIC,
		.qp_state = IBV_QPS_RTS, .retry_cnt = 8,
	};
	CHECK(modify(&rc, &m) == EINVAL, "retry_cnt 8");
	m.retry_cnt = 7;
	m.attr_mask |= IBV_QP_QKEY;
	CHECK(modify(&rc, &m) == EINVAL, "qkey on RC");
	m.attr_mask &= ~(uint32_t)IBV_QP_QKEY;
	CHECK(modify(&rc, &m) == 0, "RTR->RTS");
	CHECK(query_state(&rc) == IBV_QPS_RTS, "in RTS");
	CHECK(to_state(&rc, IBV_QPS_SQD) == 0, "RTS->SQD");
	CHECK(to_state(&rc, IBV_QPS_RTS) == 0, "SQD->RTS");
	CHECK(to_state(&rc, IBV_QPS_INIT) == EINVAL, "RTS->INIT");
	CHECK(to_state(&rc, IBV_QPS_ERR) == 0, "RTS->ERR");
	CHECK(to_state(&rc, IBV_QPS_RTS) == EINVAL, "ERR->RTS");
	CHECK(to_state(&rc, IBV_QPS_RESET) == 0, "ERR->RESET");
	CHECK(to_state(&rc, 9) == EINVAL, "state 9");

	/* UD: QKEY is required for INIT, nothing but SQ_PSN for RTS. */
	m = (struct ib_uverbs_modify_qp){
		.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT,
		.qp_state = IBV_QPS_INIT, .port_num = 1,
	};
	CHECK(modify(&ud, &m) == EINVAL, "UD INIT without qkey");
	m.attr_mask |= IBV_QP_QKEY;
	CHECK(modify(&ud, &m) == 0, "UD INIT");
	CHECK(to_state(&ud, IBV_QPS_RTR) == 0, "UD RTR");
	CHECK(to_state(&ud, IBV_QPS_RTS) == EINVAL, "UD RTS needs SQ_PSN");
	m = (struct ib_uverbs_modify_qp){
		.attr_mask = IBV_QP_STATE | IBV_QP_SQ_PSN, .qp_state = IBV_QPS_RTS,
	};
	CHECK(modify(&ud, &m) == 0, "UD RTS");
	guest_close(&gu);
}

/* Two connected RC QPs on one context, with registered buffers. */
struct rc_pair {
	struct guest gu;
	struct tcq cq_a, cq_b;
	struct tqp a, b;
	uint8_t *mem;		/* 64 KiB: a's half, then b's half */
	uint32_t key;
};

#define HALF (32 * 1024)

static void rc_pair_open_rnr(struct rc_pair *p, uint8_t type,
			     uint8_t rnr_retry, uint8_t min_rnr_timer,
			     uint8_t timeout, uint8_t retry_cnt)
{
	guest_open(&p->gu);
	cq_create(&p->gu, &p->cq_a, 64);
	cq_create(&p->gu, &p->cq_b, 64);
	qp_create(&p->gu, &p->a, type, &p->cq_a);
	qp_create(&p->gu, &p->b, type, &p->cq_b);
	connect_qp(&p->a, type, p->b.qpn, rnr_retry, min_rnr_timer, timeout,
		   retry_cnt);
	connect_qp(&p->b, type, p->a.qpn, rnr_retry, min_rnr_timer, timeout,
		   retry_cnt);
	p->mem = aligned_alloc(4096, 2 * HALF);
	memset(p->mem, 0, 2 * HALF);
	p->key = reg_mr(&p->gu, p->mem, 2 * HALF,
			IB_UVERBS_ACCESS_LOCAL_WRITE |
				IB_UVERBS_ACCESS_REMOTE_WRITE |
				IB_UVERBS_ACCESS_REMOTE_READ |
				IB_UVERBS_ACCESS_REMOTE_ATOMIC)
			 .lkey;
}

static void rc_pair_open(struct rc_pair *p, uint8_t type, uint8_t rnr_retry,
			 uint8_t timeout, uint8_t retry_cnt)
{
	rc_pair_open_rnr(p, type, rnr_retry, 1, timeout, retry_cnt);
}

static void rc_pair_close(struct rc_pair *p)
{
	guest_close(&p->gu);
	free(p->mem);
}

static void test_rc_operations(void)
{
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	uint8_t *a, *b;
	uint64_t word;

	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	a = p.mem;
	b = p.mem + HALF;

	/* SEND with immediate, solicited, 3000 bytes. */
	for (int i = 0; i < 3000; i++)
		a[i] = (uint8_t)(i * 7);
	post_recv(&p.b, 100, b, 4096, p.key);
	w = wqe(1, VHCA_WQE_SEND_WITH_IMM, 1);
	w.imm_data = htobe32(0xabcd);
	sge = (struct vhca_sge){ (uintptr_t)a, 3000, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.wr_id == 1 && c.opcode == IBV_WC_SEND &&
		      c.qp_num == p.a.qpn,
	      "send completion: status %u", c.status);
	CHECK(cq_wait(&p.cq_b, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.wr_id == 100 && c.opcode == IBV_WC_RECV &&
		      c.byte_len == 3000 && (c.wc_flags & IBV_WC_WITH_IMM) &&
		      be32toh(c.imm_data) == 0xabcd && c.src_qp == p.a.qpn,
	      "recv completion: status %u len %u", c.status, c.byte_len);
	CHECK(!memcmp(a, b, 3000), "send data");

	/* RDMA WRITE, inline, unsignaled: no CQE, data lands. */
	w = wqe(2, VHCA_WQE_RDMA_WRITE, 0);
	w.flags = VHCA_WQE_INLINE;
	w.inline_len = 5;
	w.rdma.remote_addr = (uintptr_t)(b + 100);
	w.rdma.rkey = p.key;
	post_send(&p.a, &w, NULL, "hello");
	run_engine_ms(5);
	CHECK(!cq_peek(&p.cq_a, &c), "unsignaled write: no CQE");
	CHECK(!memcmp(b + 100, "hello", 5), "inline write data");

	/* RDMA WRITE with immediate consumes a receive. */
	post_recv(&p.b, 101, b, 16, p.key);
	w = wqe(3, VHCA_WQE_RDMA_WRITE_WITH_IMM, 1);
	w.imm_data = htobe32(77);
	w.rdma.remote_addr = (uintptr_t)(b + 1000);
	w.rdma.rkey = p.key;
	sge = (struct vhca_sge){ (uintptr_t)a, 2000, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.opcode == IBV_WC_RDMA_WRITE,
	      "write_imm completion");
	CHECK(cq_wait(&p.cq_b, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.opcode == IBV_WC_RECV_RDMA_WITH_IMM &&
		      c.byte_len == 2000 && be32toh(c.imm_data) == 77,
	      "write_imm receive: opcode %u len %u", c.opcode, c.byte_len);
	CHECK(!memcmp(a, b + 1000, 2000), "write_imm data");

	/* RDMA READ of b's bytes into a. */
	memset(b + 8192, 0x5a, 700);
	w = wqe(4, VHCA_WQE_RDMA_READ, 1);
	w.rdma.remote_addr = (uintptr_t)(b + 8192);
	w.rdma.rkey = p.key;
	sge = (struct vhca_sge){ (uintptr_t)(a + 8192), 700, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.opcode == IBV_WC_RDMA_READ && c.byte_len == 700,
	      "read completion %u", c.status);
	CHECK(!memcmp(a + 8192, b + 8192, 700), "read data");

	/* Atomics: compare-and-swap then fetch-and-add on b's word. */
	word = 41;
	memcpy(b + 16384, &word, 8);
	w = wqe(5, VHCA_WQE_ATOMIC_CMP_AND_SWP, 1);
	w.atomic.remote_addr = (uintptr_t)(b + 16384);
	w.atomic.rkey = p.key;
	w.atomic.compare_add = 41;
	w.atomic.swap = 1000;
	sge = (struct vhca_sge){ (uintptr_t)(a + 16384), 8, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.opcode == IBV_WC_COMP_SWAP,
	      "cmp_swap completion");
	memcpy(&word, a + 16384, 8);
	CHECK(word == 41, "cmp_swap returns original %llu",
	      (unsigned long long)word);
	memcpy(&word, b + 16384, 8);
	CHECK(word == 1000, "cmp_swap swapped");
	w = wqe(6, VHCA_WQE_ATOMIC_FETCH_AND_ADD, 1);
	w.atomic.remote_addr = (uintptr_t)(b + 16384);
	w.atomic.rkey = p.key;
	w.atomic.compare_add = 5;
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.opcode == IBV_WC_FETCH_ADD,
	      "fetch_add completion");
	memcpy(&word, a + 16384, 8);
	CHECK(word == 1000, "fetch_add returns original");
	memcpy(&word, b + 16384, 8);
	CHECK(word == 1005, "fetch_add added");

	/* Misaligned atomic: remote invalid request (rxe). */
	w.atomic.remote_addr = (uintptr_t)(b + 16385);
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) &&
		      c.status == IBV_WC_REM_INV_REQ_ERR,
	      "misaligned atomic: %u", c.status);
	CHECK(query_state(&p.a) == IBV_QPS_ERR, "requester in ERR");
	rc_pair_close(&p);
}

static void test_rc_errors(void)
{
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;

	/* Bad rkey: REM_ACCESS_ERR; the responder goes to ERR (rxe). */
	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	post_recv(&p.b, 200, p.mem + HALF, 64, p.key);
	w = wqe(1, VHCA_WQE_RDMA_WRITE, 1);
	w.rdma.remote_addr = (uintptr_t)(p.mem + HALF);
	w.rdma.rkey = p.key + 1;
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 8, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_REM_ACCESS_ERR,
	      "bad rkey: %u", c.status);
	CHECK(query_state(&p.b) == IBV_QPS_ERR, "responder to ERR");
	CHECK(cq_wait(&p.cq_b, &c, 200) && c.status == IBV_WC_WR_FLUSH_ERR &&
		      c.wr_id == 200,
	      "responder's receive flushed");
	rc_pair_close(&p);

	/* Bad lkey: local protection error, nothing sent. */
	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	w = wqe(2, VHCA_WQE_SEND, 1);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 8, p.key ^ 0x100 };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_LOC_PROT_ERR,
	      "bad lkey: %u", c.status);
	rc_pair_close(&p);

	/* Receive too small: responder LOC_LEN_ERR, requester INV_REQ. */
	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	post_recv(&p.b, 300, p.mem + HALF, 16, p.key);
	w = wqe(3, VHCA_WQE_SEND, 1);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 64, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_REM_INV_REQ_ERR,
	      "short receive, requester: %u", c.status);
	CHECK(cq_wait(&p.cq_b, &c, 200) && c.status == IBV_WC_LOC_LEN_ERR &&
		      c.wr_id == 300,
	      "short receive, responder: %u", c.status);
	rc_pair_close(&p);

	/* Opcode the QP type does not allow: UC READ. */
	rc_pair_open(&p, IBV_QPT_UC, 0, 14, 7);
	w = wqe(4, VHCA_WQE_RDMA_READ, 1);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 8, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_LOC_QP_OP_ERR,
	      "UC read: %u", c.status);
	rc_pair_close(&p);
}

static void test_rnr(void)
{
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;

	/* rnr_retry 7: waits until a receive is posted. */
	rc_pair_open(&p, IBV_QPT_RC, 7, 14, 7);
	w = wqe(1, VHCA_WQE_SEND, 1);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 32, p.key };
	post_send(&p.a, &w, &sge, NULL);
	run_engine_ms(20);
	CHECK(!cq_peek(&p.cq_a, &c), "still waiting for a receive");
	post_recv(&p.b, 9, p.mem + HALF, 64, p.key);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS,
	      "RNR retry succeeds: %u", c.status);
	CHECK(cq_wait(&p.cq_b, &c, 200) && c.byte_len == 32, "received");
	rc_pair_close(&p);

	/*
	 * rnr_retry 2 set by the RTR -> RTS modify counts from the first
	 * WQE: its first RNR NAK waits the responder's 10.24 ms, and a
	 * receive posted meanwhile lets the retry through.
	 */
	rc_pair_open_rnr(&p, IBV_QPT_RC, 2, 20, 14, 7);
	w = wqe(1, VHCA_WQE_SEND, 1);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 32, p.key };
	post_send(&p.a, &w, &sge, NULL);
	run_engine_ms(3);
	CHECK(!cq_peek(&p.cq_a, &c),
	      "the first RNR NAK does not exhaust rnr_retry 2: %u", c.status);
	post_recv(&p.b, 9, p.mem + HALF, 64, p.key);
	CHECK(cq_wait(&p.cq_a, &c, 500) && c.status == IBV_WC_SUCCESS,
	      "the RNR retry succeeds: %u", c.status);
	rc_pair_close(&p);

	/* rnr_retry 2: exhausted after 3 tries; the next WQE flushes. */
	rc_pair_open(&p, IBV_QPT_RC, 2, 14, 7);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 32, p.key };
	post_send(&p.a, &w, &sge, NULL);
	w.wr_id = 2;
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 500) &&
		      c.status == IBV_WC_RNR_RETRY_EXC_ERR && c.wr_id == 1,
	      "RNR retries exhausted: %u", c.status);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_WR_FLUSH_ERR &&
		      c.wr_id == 2,
	      "second WQE flushed");
	rc_pair_close(&p);
}

static void test_retry_exceeded(void)
{
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	struct ib_uverbs_destroy_qp_resp r;
	struct ib_uverbs_destroy_qp d;

	rc_pair_open(&p, IBV_QPT_RC, 0, 1, 3);
	d = (struct ib_uverbs_destroy_qp){ .response = (uintptr_t)&r,
					   .qp_handle = p.b.handle };
	CHECK(legacy(p.gu.u, IB_USER_VERBS_CMD_DESTROY_QP, &d, sizeof(d), NULL,
		     0, sizeof(r)) == 0,
	      "destroy the peer");
	w = wqe(1, VHCA_WQE_SEND, 1);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 32, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 500) && c.status == IBV_WC_RETRY_EXC_ERR,
	      "retry exceeded: %u", c.status);
	rc_pair_close(&p);
}

/*
 * A retry goes back over a WQE that failed validation (found by
 * tests/security/fuzz_datapath.c): it was "sent again" and, with an
 * opcode that has no row, took vhcad down.  It stays failed: the WRITE
 * before it exceeds its retries, then it is flushed.
 */
static void test_retry_over_failed(void)
{
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;

	for (int bad = 0; bad < 2; bad++) {
		rc_pair_open(&p, IBV_QPT_RC, 0, 1, 3);
		/* One ACK first: the retry budget is loaded from then on. */
		w = wqe(1, VHCA_WQE_RDMA_WRITE, 1);
		w.rdma.remote_addr = (uintptr_t)(p.mem + HALF);
		w.rdma.rkey = p.key;
		sge = (struct vhca_sge){ (uintptr_t)p.mem, 32, p.key };
		post_send(&p.a, &w, &sge, NULL);
		CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS,
		      "first WRITE: %u", c.status);
		CHECK(to_state(&p.b, IBV_QPS_ERR) == 0, "peer falls silent");
		w.wr_id = 2;
		post_send(&p.a, &w, &sge, NULL);
		/* no such opcode, or inline data far beyond max_inline */
		w = wqe(3, bad ? 0x77 : VHCA_WQE_RDMA_WRITE, 0);
		if (!bad) {
			w.flags |= VHCA_WQE_INLINE;
			w.inline_len = 100000;
		}
		post_send(&p.a, &w, NULL, NULL);
		CHECK(cq_wait(&p.cq_a, &c, 500) &&
			      c.status == IBV_WC_RETRY_EXC_ERR && c.wr_id == 2,
		      "the WRITE exceeds its retries: %u (wr %llu)", c.status,
		      (unsigned long long)c.wr_id);
		CHECK(cq_wait(&p.cq_a, &c, 200) && c.wr_id == 3 &&
			      c.status != IBV_WC_SUCCESS,
		      "the failed WQE completes in error: %u (wr %llu)",
		      c.status, (unsigned long long)c.wr_id);
		rc_pair_close(&p);
	}
}

static void test_flush(void)
{
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	int recvs = 0, sends = 0;

	rc_pair_open(&p, IBV_QPT_RC, 7, 14, 7);
	for (int i = 0; i < 5; i++)
		post_recv(&p.a, 50 + i, p.mem, 64, p.key);
	/* The peer has no receives: these wait on RNR until the flush. */
	w = wqe(1, VHCA_WQE_SEND, 1);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 8, p.key };
	for (int i = 0; i < 3; i++) {
		w.wr_id = 10 + i;
		w.flags = i == 1 ? 0 : VHCA_WQE_SIGNALED;
		post_send(&p.a, &w, &sge, NULL);
	}
	run_engine_ms(5);
	CHECK(to_state(&p.a, IBV_QPS_ERR) == 0, "to ERR");
	while (cq_wait(&p.cq_a, &c, 20)) {
		CHECK(c.status == IBV_WC_WR_FLUSH_ERR, "flush status %u",
		      c.status);
		if (c.opcode == IBV_WC_RECV)
			recvs++;
		else
			sends++;
	}
	CHECK(recvs == 5 && sends == 3, "flushed %d recvs %d sends", recvs,
	      sends);
	rc_pair_close(&p);
}

static void test_ud(void)
{
	struct guest gu;
	struct tcq cq_a, cq_b;
	struct tqp a, b;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	uint8_t *mem = aligned_alloc(4096, 8192);
	uint32_t key;

	guest_open(&gu);
	cq_create(&gu, &cq_a, 64);
	cq_create(&gu, &cq_b, 64);
	qp_create(&gu, &a, IBV_QPT_UD, &cq_a);
	qp_create(&gu, &b, IBV_QPT_UD, &cq_b);
	connect_qp(&a, IBV_QPT_UD, 0, 0, 0, 0, 0);
	connect_qp(&b, IBV_QPT_UD, 0, 0, 0, 0, 0);
	key = reg_mr(&gu, mem, 8192, IB_UVERBS_ACCESS_LOCAL_WRITE).lkey;
	memset(mem, 0, 8192);
	memcpy(mem, "datagram", 8);

	post_recv(&b, 7, mem + 4096, 1024, key);
	w = wqe(1, VHCA_WQE_SEND, 1);
	w.ud.remote_qpn = b.qpn;
	w.ud.remote_qkey = 0x11111111;
	w.ud.dlid = LID;
	w.ud.is_global = 1;
	w.ud.hop_limit = 64;
	sge = (struct vhca_sge){ (uintptr_t)mem, 8, key };
	post_send(&a, &w, &sge, NULL);
	CHECK(cq_wait(&cq_a, &c, 200) && c.status == IBV_WC_SUCCESS,
	      "UD send");
	CHECK(cq_wait(&cq_b, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.byte_len == 48 && (c.wc_flags & IBV_WC_GRH) &&
		      c.src_qp == a.qpn && c.slid == LID,
	      "UD recv: len %u flags %x", c.byte_len, c.wc_flags);
	CHECK(!memcmp(mem + 4096 + 40, "datagram", 8), "data after GRH");
	CHECK(mem[4096] >> 4 == 6, "GRH written");

	/* Q_Key mismatch: dropped, the sender still succeeds. */
	post_recv(&b, 8, mem + 4096, 1024, key);
	w.ud.remote_qkey = 0x22222222;
	w.ud.is_global = 0;
	post_send(&a, &w, &sge, NULL);
	CHECK(cq_wait(&cq_a, &c, 200) && c.status == IBV_WC_SUCCESS,
	      "UD send, wrong qkey");
	CHECK(!cq_wait(&cq_b, &c, 20), "nothing received");
	/* MSB set: the sender QP's own qkey is used. */
	w.ud.remote_qkey = 0x80000000;
	post_send(&a, &w, &sge, NULL);
	CHECK(cq_wait(&cq_b, &c, 200) && c.status == IBV_WC_SUCCESS &&
		      c.byte_len == 48 && !(c.wc_flags & IBV_WC_GRH),
	      "qkey from QP");
	/* UD cannot WRITE. */
	w.opcode = VHCA_WQE_RDMA_WRITE;
	post_send(&a, &w, &sge, NULL);
	CHECK(cq_wait(&cq_a, &c, 200) && cq_wait(&cq_a, &c, 200) &&
		      c.status == IBV_WC_LOC_QP_OP_ERR,
	      "UD write refused: %u", c.status);
	guest_close(&gu);
	free(mem);
}

static void test_scribbler(void)
{
	struct rc_pair p, q;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	unsigned int seed = 1;

	rc_pair_open(&p, IBV_QPT_RC, 0, 1, 1);
	rc_pair_open(&q, IBV_QPT_RC, 0, 14, 7);
	for (int round = 0; round < 200; round++) {
		uint8_t *targets[] = { p.a.sq, p.a.rq, (uint8_t *)p.a.db,
				       (uint8_t *)p.gu.page,
				       (uint8_t *)p.cq_a.db };
		size_t sizes[] = { QP_SQ * SQ_STRIDE, QP_RQ * RQ_STRIDE, 32,
				   4096, 16 };
		int t = rand_r(&seed) % 5;

		for (int i = 0; i < 64; i++)
			targets[t][rand_r(&seed) % sizes[t]] =
				(uint8_t)rand_r(&seed);
		vhca_engine_poll_once();
	}
	/* The other context's QPs still work. */
	post_recv(&q.b, 1, q.mem + HALF, 64, q.key);
	w = wqe(1, VHCA_WQE_SEND, 1);
	sge = (struct vhca_sge){ (uintptr_t)q.mem, 16, q.key };
	post_send(&q.a, &w, &sge, NULL);
	CHECK(cq_wait(&q.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS,
	      "bystander works after scribbling");
	rc_pair_close(&p);
	rc_pair_close(&q);
	CHECK(atomic_load(&dev->stats.qps) == 0 &&
		      atomic_load(&dev->stats.cqs) == 0 &&
		      atomic_load(&dev->stats.mrs) == 0,
	      "all freed");
}

/*
 * The VM stall (docs/cluster.md): a guest whose exchange of a QP's
 * queued flag is not atomic can lose the device's clear, leaving the flag
 * set with nothing on the FIFO, so that its later posts skip the
 * doorbell.  The next time the QP runs (here: a SEND from its peer
 * arrives) it finds what was posted and, dry again, clears the flag
 * itself, so the post after that rings.  Without that, WRITE 2 waits
 * for ever.  (A QP nothing ever reaches again waits for its own next
 * doorbell: the guest's own loss, nobody else's.)
 */
static void test_lost_doorbell_clear(void)
{
	_Atomic uint32_t *queued;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	struct rc_pair p;

	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	queued = (_Atomic uint32_t *)&p.a.db->queued;
	post_recv(&p.a, 50, p.mem + 1024, 64, p.key);
	w = wqe(0, VHCA_WQE_RDMA_WRITE, 1);
	w.rdma.remote_addr = (uintptr_t)p.mem + HALF;
	w.rdma.rkey = p.key;
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 64, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.status == IBV_WC_SUCCESS,
	      "WRITE 0");
	atomic_store(queued, 1);	/* the device's clear, lost */
	w.wr_id = 1;
	post_send(&p.a, &w, &sge, NULL);	/* skips the FIFO */
	run_engine_ms(5);
	CHECK(!cq_peek(&p.cq_a, &c), "WRITE 1 ran without a doorbell");
	/* The peer's SEND brings the QP back. */
	w = wqe(9, VHCA_WQE_SEND, 1);
	post_send(&p.b, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.wr_id == 50, "the SEND arrived");
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.wr_id == 1 &&
		      c.status == IBV_WC_SUCCESS,
	      "WRITE 1, found when the QP ran again");
	run_engine_ms(5);
	CHECK(!atomic_load(queued), "the QP left its flag set");
	w = wqe(2, VHCA_WQE_RDMA_WRITE, 1);
	w.rdma.remote_addr = (uintptr_t)p.mem + HALF;
	w.rdma.rkey = p.key;
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&p.cq_a, &c, 200) && c.wr_id == 2 &&
		      c.status == IBV_WC_SUCCESS,
	      "WRITE 2 rang its doorbell again");
	rc_pair_close(&p);
}

/*
 * RESET of a responder in the middle of a long READ response, with
 * requests waiting behind it (IBTA 9.5: responses go in PSN order): the
 * waiting packets are freed, with the references they hold to their
 * sender's memory (a VM's RAM stays mapped while one exists); LSan in the
 * sanitizer build sees any that leak.  The QP then connects again.
 */
static void test_reset_mid_read(void)
{
	const uint32_t len = 1u << 20;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct rc_pair p;
	struct vhca_dctx *dctx;
	struct vhca_qp *qp;
	uint32_t backlog = 0, key;
	uint8_t *big;

	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	big = aligned_alloc(4096, 2 * (size_t)len);
	REQUIRE(big, "buffer");
	memset(big, 0x3c, 2 * (size_t)len);
	key = reg_mr(&p.gu, big, 2 * len,
		     IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |
			     IB_UVERBS_ACCESS_REMOTE_READ)
		      .lkey;
	w = wqe(1, VHCA_WQE_RDMA_READ, 1);
	w.rdma.remote_addr = (uintptr_t)big + len;
	w.rdma.rkey = key;
	sge = (struct vhca_sge){ (uintptr_t)big, len, key };
	post_send(&p.a, &w, &sge, NULL);
	for (int i = 2; i < 6; i++) {
		w = wqe((uint64_t)i, VHCA_WQE_RDMA_WRITE, 1);
		w.rdma.remote_addr = (uintptr_t)big + len;
		w.rdma.rkey = key;
		sge = (struct vhca_sge){ (uintptr_t)big + len, 4096, key };
		post_send(&p.a, &w, &sge, NULL);
	}
	dctx = vhca_ucontext_dctx(p.gu.u);
	REQUIRE(dctx, "the device context");
	for (int i = 0; i < 1000 && !backlog; i++) {
		vhca_engine_poll_once();
		vhca_dctx_lock(dctx);
		qp = vhca_obj_lookup(dctx, VHCA_OBJ_QP, p.b.handle);
		backlog = qp && qp->resp.read_active ? qp->resp.backlog_len : 0;
		vhca_dctx_unlock(dctx);
	}
	/* The engine runs only in vhca_engine_poll_once(): still mid-READ. */
	CHECK(!to_state(&p.b, IBV_QPS_RESET), "RESET mid-READ");
	vhca_dctx_put(dctx);
	CHECK(backlog > 0, "the responder had requests behind its READ");
	CHECK(query_state(&p.b) == IBV_QPS_RESET, "the responder in RESET");
	rc_pair_close(&p);
	free(big);
}

static void test_srq(void)
{
	struct ib_uverbs_create_srq_resp sresp[2];
	struct ib_uverbs_create_srq score;
	struct vhca_create_srq_cmd u;
	struct ib_uverbs_create_qp core;
	struct vhca_create_qp_cmd qc;
	struct create_qp_resp qresp;
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	struct ib_uverbs_async_event_desc ev;
	struct tqp b2;
	uint8_t *ring;
	struct vhca_srq_db *db;
	void *map, *qmap;
	int fd, qfd, ret;

	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	fd = sealed_memfd(8 * 256 + 4096, &map);
	ring = map;
	db = (struct vhca_srq_db *)(ring + 8 * 256);
	u = (struct vhca_create_srq_cmd){ .buf_fd = fd, .wqe_count = 8,
					  .buf_size = 8 * 256 + 4096,
					  .ring_offset = 0, .stride = 256,
					  .db_offset = 8 * 256 };
	score = (struct ib_uverbs_create_srq){ .response = (uintptr_t)sresp,
					       .user_handle = 0xdead,
					       .pd_handle = p.gu.pd,
					       .max_wr = 8, .max_sge = 2 };
	u.wqe_count = 6;
	CHECK(legacy(p.gu.u, IB_USER_VERBS_CMD_CREATE_SRQ, &score,
		     sizeof(score), &u, sizeof(u), sizeof(sresp)) == EINVAL,
	      "SRQ count not pow2");
	u.wqe_count = 8;
	score.max_wr = 9;
	CHECK(legacy(p.gu.u, IB_USER_VERBS_CMD_CREATE_SRQ, &score,
		     sizeof(score), &u, sizeof(u), sizeof(sresp)) == EINVAL,
	      "SRQ ring smaller than max_wr");
	score.max_wr = 8;
	ret = legacy(p.gu.u, IB_USER_VERBS_CMD_CREATE_SRQ, &score,
		     sizeof(score), &u, sizeof(u), sizeof(sresp));
	REQUIRE(ret == 0, "CREATE_SRQ: %s", strerror(ret));
	CHECK(sresp[0].max_wr == 8 && sresp[0].max_sge == 15 &&
		      atomic_load(&dev->stats.srqs) == 1,
	      "SRQ caps");

	/* A QP on the SRQ, connected to a in place of b. */
	qfd = sealed_memfd(QP_BUF, &qmap);
	qp_layout(&qc, qfd);
	qc.rq_wqe_count = 0;
	qp_core(&core, &qresp, &p.gu, IBV_QPT_RC, p.cq_b.handle);
	core.is_srq = 1;
	core.srq_handle = sresp[0].srq_handle;
	core.max_recv_wr = 0;
	ret = qp_create_raw(&p.gu, &core, &qc, &qresp);
	REQUIRE(ret == 0, "CREATE_QP on SRQ: %s", strerror(ret));
	memset(&b2, 0, sizeof(b2));
	b2.gu = &p.gu;
	b2.handle = qresp.core.qp_handle;
	b2.qpn = qresp.core.qpn;
	b2.sq = qmap;
	b2.db = (struct vhca_qp_db *)((uint8_t *)qmap + qc.db_offset);
	b2.sq_count = QP_SQ;
	b2.sq_stride = SQ_STRIDE;
	connect_qp(&b2, IBV_QPT_RC, p.a.qpn, 0, 1, 14, 7);
	CHECK(to_state(&p.b, IBV_QPS_RESET) == 0, "old peer reset");
	/* a now talks to b2: re-point a by cycling it through RESET. */
	CHECK(to_state(&p.a, IBV_QPS_RESET) == 0, "a reset");
	p.a.sq_head = 0;
	connect_qp(&p.a, IBV_QPT_RC, b2.qpn, 0, 1, 14, 7);

	/* Arm the limit at 3, post 4 receives: consuming 2 fires it once. */
	{
		struct ib_uverbs_modify_srq ms = {
			.srq_handle = sresp[0].srq_handle,
			.attr_mask = IBV_SRQ_LIMIT, .srq_limit = 9 };

		CHECK(legacy(p.gu.u, IB_USER_VERBS_CMD_MODIFY_SRQ, &ms,
			     sizeof(ms), NULL, 0, 0) == EINVAL,
		      "limit above max_wr");
		ms.srq_limit = 3;
		CHECK(legacy(p.gu.u, IB_USER_VERBS_CMD_MODIFY_SRQ, &ms,
			     sizeof(ms), NULL, 0, 0) == 0,
		      "arm limit");
	}
	for (int i = 0; i < 4; i++) {
		struct vhca_recv_wqe rw = { .wr_id = 500 + i, .num_sge = 1 };
		struct vhca_sge s = { (uintptr_t)(p.mem + HALF + i * 64), 64,
				      p.key };

		memcpy(ring + i * 256, &rw, sizeof(rw));
		memcpy(ring + i * 256 + sizeof(rw), &s, sizeof(s));
	}
	atomic_store((_Atomic uint32_t *)&db->head, 4);
	w = wqe(1, VHCA_WQE_SEND, 1);
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 16, p.key };
	for (int i = 0; i < 2; i++)
		post_send(&p.a, &w, &sge, NULL);
	for (int i = 0; i < 2; i++)
		CHECK(cq_wait(&p.cq_b, &c, 200) && c.status == IBV_WC_SUCCESS &&
			      c.wr_id == 500u + i && c.qp_num == b2.qpn,
		      "SRQ receive %d", i);
	CHECK(atomic_load((_Atomic uint32_t *)&db->tail) == 2, "SRQ tail");
	CHECK(read(p.gu.async_rd, &ev, sizeof(ev)) == sizeof(ev) &&
		      ev.element == 0xdead &&
		      ev.event_type == IBV_EVENT_SRQ_LIMIT_REACHED,
	      "SRQ limit event");
	CHECK(read(p.gu.async_rd, &ev, sizeof(ev)) < 0, "only once");

	/* QP on an SRQ to ERR: LAST_WQE_REACHED. */
	CHECK(to_state(&b2, IBV_QPS_ERR) == 0, "b2 to ERR");
	CHECK(read(p.gu.async_rd, &ev, sizeof(ev)) == sizeof(ev) &&
		      ev.element == 0x5678 &&
		      ev.event_type == IBV_EVENT_QP_LAST_WQE_REACHED,
	      "last WQE reached");
	{
		struct ib_uverbs_destroy_srq_resp r;
		struct ib_uverbs_destroy_srq d = {
			.response = (uintptr_t)&r,
			.srq_handle = sresp[0].srq_handle };

		CHECK(legacy(p.gu.u, IB_USER_VERBS_CMD_DESTROY_SRQ, &d,
			     sizeof(d), NULL, 0, sizeof(r)) == EBUSY,
		      "SRQ busy");
	}
	rc_pair_close(&p);
	CHECK(atomic_load(&dev->stats.srqs) == 0, "SRQ freed");
	close(fd);
	close(qfd);
}

static void test_cq_events(void)
{
	struct ib_uverbs_comp_event_desc ev;
	struct ib_uverbs_create_comp_channel_resp chresp;
	struct ib_uverbs_create_comp_channel ch = {
		.response = (uintptr_t)&chresp };
	struct vhca_create_cq_cmd cc;
	struct ib_uverbs_async_event_desc aev;
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	struct tcq cq;
	uint32_t h;
	void *map;
	int fd, ret;

	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	ret = legacy(p.gu.u, IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL, &ch,
		     sizeof(ch), NULL, 0, sizeof(chresp));
	REQUIRE(ret == 0, "comp channel: %s", strerror(ret));
	/* A 4-entry CQ on the channel for a's sends. */
	fd = sealed_memfd(4 * 64 + 4096, &map);
	cq_layout(&cc, fd, 4);
	ret = cq_create_raw(&p.gu, 3, &cc, (int32_t)chresp.fd, &h);
	REQUIRE(ret == 0, "CQ with channel: %s", strerror(ret));
	cq = (struct tcq){ .handle = h, .ring = map,
			   .db = (struct vhca_cq_db *)((uint8_t *)map + 256),
			   .count = 4 };
	/* Point a's send completions at it: swap through a new QP pair. */
	{
		struct ib_uverbs_create_qp core;
		struct vhca_create_qp_cmd qc;
		struct create_qp_resp qresp;
		void *qmap;
		int qfd = sealed_memfd(QP_BUF, &qmap);

		qp_layout(&qc, qfd);
		qp_core(&core, &qresp, &p.gu, IBV_QPT_RC, h);
		core.recv_cq_handle = p.cq_a.handle;
		ret = qp_create_raw(&p.gu, &core, &qc, &qresp);
		REQUIRE(ret == 0, "QP on channel CQ");
		close(qfd);
		memset(&p.a, 0, sizeof(p.a));
		p.a.gu = &p.gu;
		p.a.handle = qresp.core.qp_handle;
		p.a.qpn = qresp.core.qpn;
		p.a.sq = qmap;
		p.a.rq = (uint8_t *)qmap + QP_SQ * SQ_STRIDE;
		p.a.db = (struct vhca_qp_db *)((uint8_t *)qmap + qc.db_offset);
		p.a.sq_count = p.a.rq_count = QP_SQ;
		p.a.sq_stride = SQ_STRIDE;
		p.a.rq_stride = RQ_STRIDE;
	}
	CHECK(to_state(&p.b, IBV_QPS_RESET) == 0, "b reset");
	p.b.rq_head = 0;
	connect_qp(&p.b, IBV_QPT_RC, p.a.qpn, 0, 1, 14, 7);
	connect_qp(&p.a, IBV_QPT_RC, p.b.qpn, 0, 1, 14, 7);

	/* Armed for solicited only: a plain success CQE fires nothing. */
	atomic_store((_Atomic uint32_t *)&cq.db->arm, VHCA_CQ_ARM_SOLICITED);
	w = wqe(1, VHCA_WQE_RDMA_WRITE, 1);
	w.rdma.remote_addr = (uintptr_t)(p.mem + HALF);
	w.rdma.rkey = p.key;
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 8, p.key };
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&cq, &c, 200) && c.status == IBV_WC_SUCCESS, "write");
	CHECK(read(chresp.fd, &ev, sizeof(ev)) < 0, "no event for unsolicited");
	atomic_store((_Atomic uint32_t *)&cq.db->arm, VHCA_CQ_ARM_NEXT);
	post_send(&p.a, &w, &sge, NULL);
	CHECK(cq_wait(&cq, &c, 200), "second write");
	CHECK(read(chresp.fd, &ev, sizeof(ev)) == sizeof(ev) &&
		      ev.cq_handle == 0x1234,
	      "comp event with user_handle");
	CHECK(atomic_load((_Atomic uint32_t *)&cq.db->arm) == VHCA_CQ_DISARMED,
	      "disarmed by the event");
	/* Overrun: 5 CQEs into 4 entries without consuming. */
	for (int i = 0; i < 5; i++)
		post_send(&p.a, &w, &sge, NULL);
	run_engine_ms(10);
	CHECK(read(p.gu.async_rd, &aev, sizeof(aev)) == sizeof(aev) &&
		      aev.event_type == IBV_EVENT_CQ_ERR &&
		      aev.element == 0x1234,
	      "CQ overrun -> CQ_ERR");
	{
		struct ib_uverbs_destroy_qp_resp qr;
		struct ib_uverbs_destroy_qp dq = { .response = (uintptr_t)&qr,
						   .qp_handle = p.a.handle };
		struct ib_uverbs_destroy_cq_resp r;
		struct ib_uverbs_destroy_cq d = { .response = (uintptr_t)&r,
						  .cq_handle = h };

		CHECK(legacy(p.gu.u, IB_USER_VERBS_CMD_DESTROY_QP, &dq,
			     sizeof(dq), NULL, 0, sizeof(qr)) == 0,
		      "destroy QP");
		CHECK(legacy(p.gu.u, IB_USER_VERBS_CMD_DESTROY_CQ, &d,
			     sizeof(d), NULL, 0, sizeof(r)) == 0 &&
			      r.comp_events_reported == 1 &&
			      r.async_events_reported == 1,
		      "events reported: comp %u async %u",
		      r.comp_events_reported, r.async_events_reported);
	}
	rc_pair_close(&p);
	close(fd);
}

/* The real engine thread: spins, sleeps, and is woken by the eventfd. */
static void test_engine_thread(void)
{
	struct rc_pair p;
	struct vhca_send_wqe w;
	struct vhca_sge sge;
	struct vhca_cqe c;
	bool got;
	uint64_t end;

	REQUIRE(vhca_engine_start(&(struct vhca_engine_config){ .threads = 1 }) == 0, "start");
	rc_pair_open(&p, IBV_QPT_RC, 0, 14, 7);
	w = wqe(1, VHCA_WQE_RDMA_WRITE, 1);
	w.rdma.remote_addr = (uintptr_t)(p.mem + HALF);
	w.rdma.rkey = p.key;
	sge = (struct vhca_sge){ (uintptr_t)p.mem, 8, p.key };
	for (int round = 0; round < 3; round++) {
		usleep(20000);	/* let it fall asleep */
		CHECK(atomic_load((_Atomic uint32_t *)&p.gu.page->needs_wakeup),
		      "engine asleep says needs_wakeup");
		post_send(&p.a, &w, &sge, NULL);
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load((_Atomic uint32_t *)&p.gu.page->needs_wakeup)) {
			uint64_t one = 1;

			CHECK(write(p.gu.g.wake_fd, &one, 8) == 8, "wake");
		}
		end = vhca_now_ns() + 1000000000ULL;
		got = false;
		while (!got && vhca_now_ns() < end)
			got = cq_peek(&p.cq_a, &c);
		CHECK(got && c.status == IBV_WC_SUCCESS,
		      "woken engine completes, round %d", round);
	}
	rc_pair_close(&p);
	vhca_engine_stop();
}

int main(void)
{
	setup_device();
	test_context_data_path();
	test_return_channels();
	test_cq_create();
	test_qp_create();
	test_state_machine();
	test_rc_operations();
	test_rc_errors();
	test_rnr();
	test_retry_exceeded();
	test_retry_over_failed();
	test_flush();
	test_ud();
	test_scribbler();
	test_lost_doorbell_clear();
	test_reset_mid_read();
	test_srq();
	test_cq_events();
	test_engine_thread();
	return test_report();
}
