/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A raw client of a VF: the command file written directly and the rings
 * laid out by hand (include/vhca/abi.h, queue.h), without the provider.
 * A hostile guest is not bound to use our provider: it writes whatever it
 * likes into its rings, doorbells and commands, which is what the attacks
 * and the data-path fuzzer do with this.
 */
#ifndef VHCA_TESTS_RAW_H
#define VHCA_TESTS_RAW_H

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

/* The command file of device @name in $SYSFS_PATH, opened; -1 if none. */
static inline int raw_open(const char *name)
{
	const char *root = getenv("SYSFS_PATH");
	char path[4096], ibdev[64];
	int fd = -1;

	for (int n = 0; n < 512 && fd < 0; n++) {
		FILE *f;

		snprintf(path, sizeof(path),
			 "%s/class/infiniband_verbs/uverbs%d/ibdev",
			 root ? root : "/sys", n);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%63s", ibdev) == 1 && !strcmp(ibdev, name)) {
			snprintf(path, sizeof(path),
				 "%s/class/infiniband_verbs/uverbs%d/%s",
				 root ? root : "/sys", n, VHCA_CMD_FILE_NAME);
			fd = open(path, O_RDWR | O_CLOEXEC);
		}
		fclose(f);
	}
	return fd;
}

/* One legacy command: 0 or the errno it failed with. */
static inline int raw_cmd(int fd, uint32_t command, const void *core,
			  size_t core_len, const void *udata, size_t udata_len,
			  size_t out_len)
{
	uint8_t buf[1024];
	struct ib_uverbs_cmd_hdr hdr = {
		.command = command,
		.in_words = (uint16_t)((sizeof(hdr) + core_len + udata_len) / 4),
		.out_words = (uint16_t)(out_len / 4),
	};
	size_t len = sizeof(hdr) + core_len + udata_len;
	ssize_t ret;

	if (len > sizeof(buf))
		return E2BIG;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), core, core_len);
	if (udata_len)
		memcpy(buf + sizeof(hdr) + core_len, udata, udata_len);
	ret = write(fd, buf, len);
	if (ret < 0)
		return errno;
	return (size_t)ret == len ? 0 : EIO;
}

/* A sealed memfd of @size bytes, mapped; its fd (kept open). */
static inline int raw_memfd(size_t size, void **map)
{
	int fd = memfd_create("vhca-raw", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return -1;
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return *map == MAP_FAILED ? -1 : fd;
}

struct raw_ctx {
	int fd;			/* the command file */
	struct vhca_ctx_page *page;
	int wake_fd;
	int async_rd;
	int service_rd;		/* never served: no channel refills */
	uint32_t pd;
};

static inline void raw_pipe(struct vhca_fd_pair *p)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK))
		p->read_fd = p->write_fd = -1;
	else {
		p->read_fd = fds[0];
		p->write_fd = fds[1];
	}
}

/* GET_CONTEXT with a data path and @channels pooled channels, then a PD. */
static inline int raw_context(struct raw_ctx *c, const char *dev,
			      unsigned int channels)
{
	struct vhca_alloc_ucontext_cmd g = {
		.abi_version = VHCA_UVERBS_ABI_VERSION,
		.num_channels = channels,
	};
	struct {
		struct ib_uverbs_get_context_resp core;
		struct vhca_alloc_ucontext_resp udata;
	} resp;
	struct ib_uverbs_get_context core = { .response = (uintptr_t)&resp };
	struct ib_uverbs_alloc_pd_resp presp;
	struct ib_uverbs_alloc_pd pcore = { .response = (uintptr_t)&presp };
	void *page;
	int page_fd, ret;

	memset(c, 0, sizeof(*c));
	c->fd = raw_open(dev);
	if (c->fd < 0)
		return ENODEV;
	page_fd = raw_memfd(VHCA_PAGE_SIZE, &page);
	if (page_fd < 0)
		return errno;
	c->page = page;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	raw_pipe(&g.async_event);
	raw_pipe(&g.service);
	for (unsigned int i = 0; i < channels && i < VHCA_CHANNEL_BATCH; i++)
		raw_pipe(&g.channels[i]);
	g.ctx_page_fd = page_fd;
	g.wake_fd = c->wake_fd;
	ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_GET_CONTEXT, &core,
		      sizeof(core), &g, sizeof(g), sizeof(resp));
	close(page_fd);
	c->async_rd = g.async_event.read_fd;
	c->service_rd = g.service.read_fd;
	close(g.async_event.write_fd);
	close(g.service.write_fd);
	for (unsigned int i = 0; i < channels && i < VHCA_CHANNEL_BATCH; i++)
		close(g.channels[i].write_fd);
	if (ret)
		return ret;
	ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_ALLOC_PD, &pcore, sizeof(pcore),
		      NULL, 0, sizeof(presp));
	c->pd = presp.pd_handle;
	return ret;
}

/* An MR in PD @pd; its key (lkey == rkey) and handle. */
static inline int raw_reg_mr_ex(struct raw_ctx *c, uint32_t pd, void *addr,
				size_t len, uint32_t access, uint32_t *key,
				uint32_t *handle)
{
	struct ib_uverbs_reg_mr_resp resp = { 0 };
	struct ib_uverbs_reg_mr core = {
		.response = (uintptr_t)&resp, .start = (uintptr_t)addr,
		.length = len, .hca_va = (uintptr_t)addr, .pd_handle = pd,
		.access_flags = access,
	};
	int ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_REG_MR, &core, sizeof(core),
			  NULL, 0, sizeof(resp));

	*key = resp.lkey;
	if (handle)
		*handle = resp.mr_handle;
	return ret;
}

static inline int raw_reg_mr(struct raw_ctx *c, void *addr, size_t len,
			     uint32_t access, uint32_t *lkey)
{
	return raw_reg_mr_ex(c, c->pd, addr, len, access, lkey, NULL);
}

/* Another PD of the context. */
static inline int raw_alloc_pd(struct raw_ctx *c, uint32_t *pd)
{
	struct ib_uverbs_alloc_pd_resp resp = { 0 };
	struct ib_uverbs_alloc_pd core = { .response = (uintptr_t)&resp };
	int ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_ALLOC_PD, &core,
			  sizeof(core), NULL, 0, sizeof(resp));

	*pd = resp.pd_handle;
	return ret;
}

struct raw_cq {
	uint32_t handle;
	struct vhca_cqe *ring;
	struct vhca_cq_db *db;
	uint32_t count, consumer;
};

/*
 * A CQ of @count entries (ring, then its doorbell record on a page of its
 * own), tagged @user_handle in its async events, on completion channel
 * @channel (-1: none).
 */
/*
 * The memfd (mapped at *@map) and udata of a CQ ring of @count entries,
 * its doorbell record on a page of its own after it.
 */
static inline int raw_cq_mem(uint32_t count, struct vhca_create_cq_cmd *u,
			     void **map)
{
	*u = (struct vhca_create_cq_cmd){
		.cqe_count = count,
		.buf_size = (uint64_t)count * 64 + VHCA_PAGE_SIZE,
		.db_offset = (uint64_t)count * 64,
	};
	u->buf_fd = raw_memfd(u->buf_size, map);
	return u->buf_fd < 0 ? errno : 0;
}

static inline int raw_cq_ex(struct raw_ctx *c, struct raw_cq *cq,
			    uint32_t count, uint64_t user_handle, int channel)
{
	struct {
		struct ib_uverbs_create_cq_resp core;
		struct vhca_create_cq_resp udata;
	} resp;
	struct ib_uverbs_create_cq core = {
		.response = (uintptr_t)&resp, .user_handle = user_handle,
		.cqe = count - 1, .comp_channel = channel,
	};
	struct vhca_create_cq_cmd u;
	void *map;
	int ret = raw_cq_mem(count, &u, &map);

	if (ret)
		return ret;
	ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_CREATE_CQ, &core, sizeof(core),
		      &u, sizeof(u), sizeof(resp));
	close(u.buf_fd);
	*cq = (struct raw_cq){ .handle = resp.core.cq_handle, .ring = map,
			       .db = (struct vhca_cq_db *)((uint8_t *)map +
							   u.db_offset),
			       .count = count };
	return ret;
}

static inline int raw_cq(struct raw_ctx *c, struct raw_cq *cq, uint32_t count)
{
	return raw_cq_ex(c, cq, count, 0, -1);
}

/*
 * An SRQ of @count slots of @stride bytes, its doorbell on a page after;
 * its async events name @user_handle.
 */
struct raw_srq {
	uint32_t handle, srqn;
	uint8_t *ring;
	struct vhca_srq_db *db;
	uint32_t count, stride;
	uint64_t size;
};

static inline int raw_srq(struct raw_ctx *c, struct raw_srq *srq,
			  uint32_t count, uint32_t stride, uint64_t user_handle)
{
	struct {
		struct ib_uverbs_create_srq_resp core;
		struct vhca_create_srq_resp udata;
	} resp = { 0 };
	struct ib_uverbs_create_srq core = {
		.response = (uintptr_t)&resp, .user_handle = user_handle,
		.pd_handle = c->pd, .max_wr = count, .max_sge = 1,
	};
	struct vhca_create_srq_cmd u = {
		.wqe_count = count, .stride = stride,
		.db_offset = (uint64_t)count * stride,
	};
	void *map;
	int ret;

	u.buf_size = u.db_offset + VHCA_PAGE_SIZE;
	u.buf_fd = raw_memfd(u.buf_size, &map);
	if (u.buf_fd < 0)
		return errno;
	ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_CREATE_SRQ, &core, sizeof(core),
		      &u, sizeof(u), sizeof(resp));
	close(u.buf_fd);
	*srq = (struct raw_srq){
		.handle = resp.core.srq_handle, .srqn = resp.core.srqn,
		.ring = map,
		.db = (struct vhca_srq_db *)((uint8_t *)map + u.db_offset),
		.count = count, .stride = stride, .size = u.buf_size,
	};
	if (ret)
		munmap(map, u.buf_size);
	return ret;
}

struct raw_qp {
	uint32_t handle, qpn;
	uint8_t *sq, *rq;
	struct vhca_qp_db *db;
	uint32_t sq_count, sq_stride, rq_count, rq_stride;
	uint64_t size;
};

/*
 * An RC/UC/UD QP with @sq_count slots of @sq_stride bytes and @rq_count
 * receive slots of 256 bytes (15 SGEs), in one memfd of its own (the
 * doorbell record on the last page); with @srq (not NULL) it takes its
 * receives from that SRQ and has no RQ.  Sends and receives complete on
 * @scq and @rcq; its async events name @user_handle.
 */
static inline int raw_qp_ex(struct raw_ctx *c, struct raw_qp *qp,
			    uint8_t type, struct raw_cq *scq,
			    struct raw_cq *rcq, const struct raw_srq *srq,
			    uint32_t sq_count, uint32_t sq_stride,
			    uint32_t rq_count, uint64_t user_handle)
{
	struct {
		struct ib_uverbs_create_qp_resp core;
		struct vhca_create_qp_resp udata;
	} resp;
	struct ib_uverbs_create_qp core = {
		.response = (uintptr_t)&resp, .user_handle = user_handle,
		.pd_handle = c->pd,
		.send_cq_handle = scq->handle, .recv_cq_handle = rcq->handle,
		.srq_handle = srq ? srq->handle : 0, .is_srq = srq != NULL,
		.max_send_wr = sq_count, .max_recv_wr = srq ? 0 : rq_count,
		.max_send_sge = 1, .max_recv_sge = 1, .qp_type = type,
	};
	/* Rings start on pages of their own (docs/prm.md). */
	uint64_t sq_bytes = ((uint64_t)sq_count * sq_stride + VHCA_PAGE_SIZE -
			     1) & ~(uint64_t)(VHCA_PAGE_SIZE - 1);
	uint64_t rq_bytes = srq ? 0 :
			    ((uint64_t)rq_count * 256 + VHCA_PAGE_SIZE - 1) &
				    ~(uint64_t)(VHCA_PAGE_SIZE - 1);
	struct vhca_create_qp_cmd u = {
		.sq_offset = 0, .sq_wqe_count = sq_count,
		.sq_stride = sq_stride, .rq_offset = sq_bytes,
		.rq_wqe_count = srq ? 0 : rq_count,
		.rq_stride = srq ? 0 : 256,
		.db_offset = sq_bytes + rq_bytes,
	};
	void *map;
	int ret;

	u.buf_size = u.db_offset + VHCA_PAGE_SIZE;
	u.buf_fd = raw_memfd(u.buf_size, &map);
	if (u.buf_fd < 0)
		return errno;
	ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_CREATE_QP, &core, sizeof(core),
		      &u, sizeof(u), sizeof(resp));
	close(u.buf_fd);
	*qp = (struct raw_qp){
		.handle = resp.core.qp_handle, .qpn = resp.core.qpn,
		.sq = map, .rq = srq ? NULL : (uint8_t *)map + sq_bytes,
		.db = (struct vhca_qp_db *)((uint8_t *)map + u.db_offset),
		.sq_count = sq_count, .sq_stride = sq_stride,
		.rq_count = srq ? 0 : rq_count, .rq_stride = srq ? 0 : 256,
		.size = u.buf_size,
	};
	if (ret)
		munmap(map, u.buf_size);
	return ret;
}

static inline int raw_qp(struct raw_ctx *c, struct raw_qp *qp, uint8_t type,
			 struct raw_cq *cq, uint32_t sq_count,
			 uint32_t sq_stride)
{
	return raw_qp_ex(c, qp, type, cq, cq, NULL, sq_count, sq_stride,
			 sq_count, 0);
}

/*
 * DESTROY_QP, DESTROY_CQ or DESTROY_SRQ (@command) of @handle: 0 or the
 * errno.  The three share their layout: response pointer, then handle.
 */
static inline int raw_destroy(struct raw_ctx *c, uint32_t command,
			      uint32_t handle)
{
	struct ib_uverbs_destroy_cq_resp resp;	/* the largest answer */
	struct ib_uverbs_destroy_cq core = { .response = (uintptr_t)&resp,
					     .cq_handle = handle };
	size_t out = command == IB_USER_VERBS_CMD_DESTROY_CQ ?
			     sizeof(resp) :
			     sizeof(struct ib_uverbs_destroy_qp_resp);

	_Static_assert(sizeof(struct ib_uverbs_destroy_qp) == sizeof(core) &&
			       sizeof(struct ib_uverbs_destroy_srq) ==
				       sizeof(core),
		       "one layout");
	return raw_cmd(c->fd, command, &core, sizeof(core), NULL, 0, out);
}

static inline int raw_dereg_mr(struct raw_ctx *c, uint32_t handle)
{
	struct ib_uverbs_dereg_mr core = { .mr_handle = handle };

	return raw_cmd(c->fd, IB_USER_VERBS_CMD_DEREG_MR, &core, sizeof(core),
		       NULL, 0, 0);
}

/* RESET -> INIT -> RTR -> RTS towards (@dlid, @dqpn); UD needs neither. */
static inline int raw_connect(struct raw_ctx *c, struct raw_qp *qp,
			      uint8_t type, uint16_t dlid, uint32_t dqpn)
{
	struct ib_uverbs_modify_qp m = {
		.qp_handle = qp->handle, .qp_state = IBV_QPS_INIT,
		.port_num = 1, .qkey = 0x1234,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ,
		.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			     (type == IBV_QPT_UD ? IBV_QP_QKEY :
						   IBV_QP_ACCESS_FLAGS),
	};
	int ret;

	if (type == IBV_QPT_UC)
		m.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
	ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_MODIFY_QP, &m, sizeof(m), NULL,
		      0, 0);
	if (ret)
		return ret;
	m = (struct ib_uverbs_modify_qp){ .qp_handle = qp->handle,
					  .qp_state = IBV_QPS_RTR,
					  .attr_mask = IBV_QP_STATE };
	if (type != IBV_QPT_UD) {
		m.path_mtu = IBV_MTU_4096;
		m.dest_qp_num = dqpn;
		m.dest.dlid = dlid;
		m.dest.port_num = 1;
		m.max_dest_rd_atomic = 1;
		m.min_rnr_timer = 1;
		m.attr_mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			       IBV_QP_RQ_PSN;
		if (type == IBV_QPT_RC)
			m.attr_mask |= IBV_QP_MAX_DEST_RD_ATOMIC |
				       IBV_QP_MIN_RNR_TIMER;
	}
	ret = raw_cmd(c->fd, IB_USER_VERBS_CMD_MODIFY_QP, &m, sizeof(m), NULL,
		      0, 0);
	if (ret)
		return ret;
	m = (struct ib_uverbs_modify_qp){
		.qp_handle = qp->handle, .qp_state = IBV_QPS_RTS,
		.timeout = 10, .retry_cnt = 1, .rnr_retry = 1,
		.max_rd_atomic = 1,
		.attr_mask = IBV_QP_STATE | IBV_QP_SQ_PSN,
	};
	if (type == IBV_QPT_RC)
		m.attr_mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			       IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
	return raw_cmd(c->fd, IB_USER_VERBS_CMD_MODIFY_QP, &m, sizeof(m), NULL,
		       0, 0);
}

/*
 * The doorbell of QP @handle (SQ or RQ head already published), as the
 * provider rings it (include/vhca/queue.h): the FIFO, then the eventfd
 * if the engine sleeps.
 */
static inline void raw_ring(struct raw_ctx *c, struct raw_qp *qp)
{
	_Atomic uint32_t *queued = (_Atomic uint32_t *)&qp->db->queued;
	struct vhca_ctx_page *p = c->page;

	if (!atomic_exchange(queued, 1)) {
		uint32_t head = atomic_load((_Atomic uint32_t *)&p->fifo_head);
		uint32_t tail = atomic_load((_Atomic uint32_t *)&p->fifo_tail);

		if (head - tail < VHCA_DB_FIFO_LEN) {
			p->fifo[head % VHCA_DB_FIFO_LEN] =
				qp->handle << 1 | VHCA_DB_QP;
			atomic_store((_Atomic uint32_t *)&p->fifo_head,
				     head + 1);
		} else {
			atomic_store((_Atomic uint32_t *)&p->overflow, 1);
		}
	}
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_exchange((_Atomic uint32_t *)&p->needs_wakeup, 0)) {
		uint64_t one = 1;

		if (write(c->wake_fd, &one, sizeof(one)) < 0) {
			/* a full counter wakes it anyway */
		}
	}
}

#endif /* VHCA_TESTS_RAW_H */
