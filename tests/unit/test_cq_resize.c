// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * RESIZE_CQ in-process, with hostile and failing inputs: this process is
 * the guest (its memfds, its response buffers) and produces CQEs through
 * the device's own vhca_cq_push(), so every step is deterministic.  A
 * refused resize (bad sizes, too many unconsumed CQEs, a garbage consumer
 * index, a bad memfd, an unwritable response) must leave the CQ exactly as
 * it was; a good one carries the unconsumed CQEs over in order and the arm
 * state with them.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

#include "../common.h"
#include "driver/cmd.h"
#include "driver/context.h"
#include "device/cq.h"
#include "device/engine.h"
#include "device/pf.h"

TEST_COUNTERS;

static struct vhca_pf pf;

static int submit_legacy(struct vhca_ucontext *u, uint32_t command,
			 const void *core, size_t core_len, const void *udata,
			 size_t udata_len, size_t out_len)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		uint64_t words[64];
	} c;
	size_t len = sizeof(c.hdr) + core_len + udata_len;
	ssize_t ret;

	memset(&c, 0, sizeof(c));
	memcpy(c.words, core, core_len);
	if (udata_len)
		memcpy((uint8_t *)c.words + core_len, udata, udata_len);
	c.hdr.command = command;
	c.hdr.in_words = (uint16_t)(len / 4);
	c.hdr.out_words = (uint16_t)(out_len / 4);
	ret = vhca_cmd_write(u, gettid(), &c, len);
	return ret < 0 ? (int)-ret : 0;
}

static int sealed_memfd(size_t size, void **map)
{
	int fd = memfd_create("vhca-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	REQUIRE(fd >= 0 && !ftruncate(fd, (off_t)size), "memfd");
	REQUIRE(!fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), "seal");
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(*map != MAP_FAILED, "mmap");
	return fd;
}

static void pipe_pair(struct vhca_fd_pair *p)
{
	int fds[2];

	REQUIRE(!pipe2(fds, O_CLOEXEC | O_NONBLOCK), "pipe");
	p->read_fd = fds[0];
	p->write_fd = fds[1];
}

static struct vhca_ucontext *guest_open(void)
{
	struct vhca_alloc_ucontext_cmd g = {
		.abi_version = VHCA_UVERBS_ABI_VERSION,
	};
	struct ib_uverbs_get_context core;
	struct vhca_ucontext *u = vhca_cmd_open(&pf.dev);
	uint8_t resp[8 + sizeof(struct vhca_alloc_ucontext_resp)];
	void *page;

	REQUIRE(u, "open");
	pipe_pair(&g.async_event);
	pipe_pair(&g.service);
	g.ctx_page_fd = sealed_memfd(VHCA_PAGE_SIZE, &page);
	g.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	core = (struct ib_uverbs_get_context){ .response = (uintptr_t)resp };
	REQUIRE(submit_legacy(u, IB_USER_VERBS_CMD_GET_CONTEXT, &core,
			      sizeof(core), &g, sizeof(g),
			      8 + sizeof(struct vhca_alloc_ucontext_resp)) == 0,
		"GET_CONTEXT");
	return u;
}

/* The guest's view of one CQ memfd. */
struct ring {
	int fd;
	struct vhca_cqe *cqes;
	struct vhca_cq_db *db;
	uint32_t count;
	struct vhca_create_cq_cmd layout;
};

static void ring_alloc(struct ring *r, uint32_t count)
{
	void *map;

	r->count = count;
	r->fd = sealed_memfd((size_t)count * 64 + VHCA_PAGE_SIZE, &map);
	r->cqes = map;
	r->db = (struct vhca_cq_db *)((uint8_t *)map + (size_t)count * 64);
	r->layout = (struct vhca_create_cq_cmd){
		.buf_fd = r->fd, .cqe_count = count,
		.buf_size = (uint64_t)count * 64 + VHCA_PAGE_SIZE,
		.db_offset = (uint64_t)count * 64,
	};
}

static void ring_free(struct ring *r)
{
	munmap(r->cqes, (size_t)r->count * 64 + VHCA_PAGE_SIZE);
	close(r->fd);
}

static uint32_t cq_create(struct vhca_ucontext *u, const struct ring *r)
{
	struct {
		struct ib_uverbs_create_cq_resp core;
		struct vhca_create_cq_resp udata;
	} resp;
	struct ib_uverbs_create_cq core = {
		.response = (uintptr_t)&resp, .cqe = r->count - 1,
		.comp_channel = -1,
	};

	REQUIRE(submit_legacy(u, IB_USER_VERBS_CMD_CREATE_CQ, &core,
			      sizeof(core), &r->layout, sizeof(r->layout),
			      sizeof(resp)) == 0, "CREATE_CQ");
	return resp.core.cq_handle;
}

static int cq_resize(struct vhca_ucontext *u, uint32_t handle, uint32_t cqe,
		     const struct vhca_create_cq_cmd *layout, uint64_t response)
{
	struct {
		struct ib_uverbs_resize_cq_resp core;
		struct vhca_create_cq_resp udata;
	} resp;
	struct ib_uverbs_resize_cq core = {
		.response = response ? response : (uintptr_t)&resp,
		.cq_handle = handle, .cqe = cqe,
	};

	return submit_legacy(u, IB_USER_VERBS_CMD_RESIZE_CQ, &core,
			     sizeof(core), layout, sizeof(*layout),
			     sizeof(resp));
}

/* Produces CQE wr_id @id the way the engine does. */
static int produce(struct vhca_cq *cq, uint64_t id)
{
	struct vhca_cqe c = { .wr_id = id, .byte_len = (uint32_t)id * 3 };
	int ret;

	vhca_dctx_lock(cq->dctx);
	ret = vhca_cq_push(cq, &c, false);
	vhca_dctx_unlock(cq->dctx);
	return ret;
}

/* Consumes the CQE at @*consumer of @r, which must be wr_id @id. */
static void consume(struct ring *r, uint32_t *consumer, uint64_t id)
{
	struct vhca_cqe *c = &r->cqes[*consumer & (r->count - 1)];
	uint8_t want = ((*consumer / r->count) & 1) ^ 1;

	CHECK((c->owner & 1) == want && c->wr_id == id &&
	      c->byte_len == (uint32_t)id * 3,
	      "CQE %u: owner %u (want %u) wr_id %llu, expected %llu",
	      *consumer, c->owner, want, (unsigned long long)c->wr_id,
	      (unsigned long long)id);
	++*consumer;
	atomic_store((_Atomic uint32_t *)&r->db->consumer, *consumer);
}

static void test_resize(void)
{
	struct vhca_ucontext *u = guest_open();
	struct ring old, next, small;
	struct vhca_cq *cq;
	uint32_t handle, consumer = 0, saved;
	struct vhca_create_cq_cmd bad;

	ring_alloc(&old, 16);
	handle = cq_create(u, &old);
	{
		struct vhca_dctx *dctx = vhca_ucontext_dctx(u);

		REQUIRE(dctx, "device context");
		vhca_dctx_lock(dctx);
		cq = vhca_obj_lookup(dctx, VHCA_OBJ_CQ, handle);
		vhca_dctx_unlock(dctx);
		vhca_dctx_put(dctx);
	}
	REQUIRE(cq, "the CQ object");
	for (uint64_t i = 0; i < 10; i++)
		REQUIRE(produce(cq, i) == 0, "produce %llu",
			(unsigned long long)i);
	consume(&old, &consumer, 0);
	consume(&old, &consumer, 1);
	consume(&old, &consumer, 2);	/* 7 unconsumed: 3..9 */

	ring_alloc(&next, 8);
	ring_alloc(&small, 4);
	/* Refused, each leaving the CQ as it was. */
	CHECK(cq_resize(u, handle, 6, &next.layout, 0) == EINVAL,
	      "fewer entries than unconsumed CQEs");
	CHECK(cq_resize(u, handle, 0, &next.layout, 0) == EINVAL, "cqe 0");
	CHECK(cq_resize(u, handle, 7, &small.layout, 0) == EINVAL,
	      "a ring not above cqe");
	CHECK(cq_resize(u, handle + 1000, 7, &next.layout, 0) == EINVAL,
	      "no such CQ");
	bad = next.layout;
	bad.buf_fd = 0;			/* not a sealed memfd */
	CHECK(cq_resize(u, handle, 7, &bad, 0) == EINVAL, "bad memfd");
	bad = next.layout;
	bad.db_offset = 64;		/* overlaps the ring */
	CHECK(cq_resize(u, handle, 7, &bad, 0) == EINVAL, "overlapping db");
	bad = next.layout;
	bad.cqe_count = 6;
	CHECK(cq_resize(u, handle, 5, &bad, 0) == EINVAL, "count not pow2");
	saved = old.db->consumer;	/* a consumer ahead of the producer */
	atomic_store((_Atomic uint32_t *)&old.db->consumer, saved + 20);
	CHECK(cq_resize(u, handle, 7, &next.layout, 0) == EINVAL,
	      "garbage consumer index");
	atomic_store((_Atomic uint32_t *)&old.db->consumer, saved);
	CHECK(cq_resize(u, handle, 7, &next.layout, 8) == EFAULT,
	      "unwritable response");
	CHECK(cq->cqe_count == 16 && cq->producer == 10,
	      "a refused resize changed the CQ: count %u producer %u",
	      cq->cqe_count, cq->producer);
	/* Still the old ring: one more CQE lands there, in order. */
	REQUIRE(produce(cq, 10) == 0, "produce 10");
	consume(&old, &consumer, 3);	/* 7 unconsumed again: 4..10 */

	/* Armed before: armed after, in the new doorbell record. */
	atomic_store((_Atomic uint32_t *)&old.db->arm, VHCA_CQ_ARM_NEXT);
	memset(next.cqes, 0, (size_t)next.count * 64);
	CHECK(cq_resize(u, handle, 7, &next.layout, 0) == 0, "resize to 8");
	CHECK(cq->cqe_count == 8 && cq->producer == 7,
	      "after resize: count %u producer %u", cq->cqe_count,
	      cq->producer);
	CHECK(next.db->arm == VHCA_CQ_ARM_NEXT && old.db->arm ==
	      VHCA_CQ_DISARMED, "arm state not carried over (%u, %u)",
	      next.db->arm, old.db->arm);
	CHECK(next.db->producer == 7 && next.db->consumer == 0,
	      "new doorbell record: producer %u consumer %u",
	      next.db->producer, next.db->consumer);
	CHECK(next.cqes[7].owner == 0, "slot 7 looks valid");
	consumer = 0;
	for (uint64_t i = 4; i < 8; i++)
		consume(&next, &consumer, i);
	/* wrap the 8-entry ring: 3 left (8..10) + 5 new = 8, full */
	for (uint64_t i = 11; i < 16; i++)
		CHECK(produce(cq, i) == 0, "produce %llu after resize",
		      (unsigned long long)i);
	for (uint64_t i = 8; i < 16; i++)
		consume(&next, &consumer, i);
	/* the old memfd is ours alone now */
	CHECK(old.cqes[10 & 15].wr_id == 10, "the old ring was touched");
	ring_free(&old);
	ring_free(&small);
	vhca_cmd_release(u);
	ring_free(&next);
}

int main(void)
{
	pthread_rwlock_init(&pf.lock, NULL);
	pf.dev.pf = &pf;
	snprintf(pf.dev.name, sizeof(pf.dev.name), "vhca0");
	vhca_budget_init();
	vhca_quota_share(1, &pf.dev.quota);
	REQUIRE(vhca_dev_open_port(&pf.dev, &vhca_ucontext_sink) == 0,
		"port");
	test_resize();
	return test_report();
}
