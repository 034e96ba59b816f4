// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* test_cmd: PDs, MRs (registration and re-registration), keys. */
#include "cmd_harness.h"

void test_pds(void)
{
	struct vhca_alloc_ucontext_cmd g1, g2;
	struct vhca_ucontext *u1 = open_context(&g1);
	struct vhca_ucontext *u2 = open_context(&g2);
	struct ib_uverbs_reg_mr_resp mr;
	static char buf[4096];
	uint32_t pd[3], pd_b, pd_again;

	CHECK(alloc_pd(u1, &pd[0]) == 0 && alloc_pd(u1, &pd[1]) == 0 &&
		      alloc_pd(u1, &pd[2]) == 0,
	      "three PDs");
	CHECK(pd[0] != pd[1] && pd[1] != pd[2] && pd[0] != pd[2],
	      "distinct handles %u %u %u", pd[0], pd[1], pd[2]);
	CHECK(alloc_pd(u2, &pd_b) == 0, "PD in another context");
	CHECK(stats_are(2, 4, 0, 0), STATS_FMT, STATS_ARGS);

	CHECK(dealloc_pd(u1, 12345) == EINVAL, "bogus handle");
	CHECK(dealloc_pd(u1, 0xffffffff) == EINVAL, "handle ~0");
	CHECK(dealloc_pd(u2, pd[2]) == EINVAL,
	      "handle only valid in the other context");
	CHECK(reg_mr(u1, pd[0], buf, sizeof(buf), 0, &mr) == 0, "an MR");
	CHECK(dealloc_pd(u1, mr.mr_handle) == EINVAL, "MR handle as PD");
	CHECK(dereg_mr(u1, pd[1]) == EINVAL, "PD handle as MR");
	CHECK(dealloc_pd(u1, pd[0]) == EBUSY, "PD with an MR");
	CHECK(dereg_mr(u1, mr.mr_handle) == 0, "dereg");
	CHECK(dealloc_pd(u1, pd[0]) == 0, "dealloc");
	CHECK(dealloc_pd(u1, pd[0]) == EINVAL, "double dealloc");
	CHECK(stats_are(2, 3, 0, 0), STATS_FMT, STATS_ARGS);

	/* Response fault: the PD never existed. */
	CHECK(alloc_pd_at(u1, unmapped, NULL) == EFAULT, "response unmapped");
	CHECK(alloc_pd_at(u1, (void *)0xffff800000000000ULL, NULL) == EFAULT,
	      "response at a kernel address");
	CHECK(stats_are(2, 3, 0, 0), STATS_FMT, STATS_ARGS);
	CHECK(alloc_pd(u1, &pd_again) == 0, "alloc after faults");
	{
		struct vhca_dctx *d1 = vhca_ucontext_dctx(u1);

		REQUIRE(d1, "device context of u1");
		CHECK(d1->objs.used == 4,
		      "handle slots used %u: faults leaked slots",
		      d1->objs.used);
		vhca_dctx_put(d1);
	}

	vhca_cmd_release(u1);
	CHECK(stats_are(1, 1, 0, 0), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u2);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g1);
	close_guest_fds(&g2);
}

/* The MR of @u's device context with @key, as the data path finds it. */
static struct vhca_mr *find_mr(struct vhca_ucontext *u, uint32_t key)
{
	struct vhca_dctx *dctx = vhca_ucontext_dctx(u);
	struct vhca_mr *mr;

	REQUIRE(dctx, "device context");
	vhca_dctx_lock(dctx);
	mr = vhca_mr_find(dctx, key);
	vhca_dctx_unlock(dctx);
	vhca_dctx_put(dctx);	/* the context's own reference stays */
	return mr;
}

void test_mrs(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct ib_uverbs_reg_mr_resp r[16];
	const uint32_t lw = IB_UVERBS_ACCESS_LOCAL_WRITE;
	char *area;
	struct vhca_mr *mr;
	uint32_t pd;
	bool distinct = true;
	int ret;

	area = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(area != MAP_FAILED, "mmap");
	ret = mprotect(area + 2 * page, page, PROT_READ) |
	      mprotect(area + 3 * page, page, PROT_NONE);
	REQUIRE(ret == 0, "mprotect");
	ret = alloc_pd(u, &pd);
	REQUIRE(ret == 0, "alloc_pd");

	for (int i = 0; i < 16; i++) {
		ret = reg_mr(u, pd, area + i * 64, 64 + i,
			     lw | IB_UVERBS_ACCESS_REMOTE_WRITE |
				     IB_UVERBS_ACCESS_REMOTE_READ,
			     &r[i]);
		CHECK(ret == 0, "REG_MR %d: %s", i, strerror(ret));
	}
	for (int i = 0; i < 16; i++) {
		distinct &= r[i].lkey == r[i].rkey && (r[i].lkey >> 8) != 0;
		for (int j = 0; j < i; j++)
			distinct &= r[i].lkey != r[j].lkey &&
				    r[i].mr_handle != r[j].mr_handle;
	}
	CHECK(distinct, "keys unique, lkey == rkey, index nonzero");
	CHECK(stats_are(1, 1, 16, 0), STATS_FMT, STATS_ARGS);

	mr = find_mr(u, r[5].lkey);
	CHECK(mr && mr->addr == (uintptr_t)(area + 5 * 64) &&
		      mr->length == 69 && mr->iova == mr->addr &&
		      mr->lkey == r[5].lkey,
	      "lookup by key");
	CHECK(!find_mr(u, r[5].lkey ^ 1), "lookup with another key variant");
	for (int i = 0; i < 16; i++)
		CHECK(dereg_mr(u, r[i].mr_handle) == 0, "DEREG_MR %d", i);
	CHECK(!find_mr(u, r[5].lkey), "key gone after dereg");
	CHECK(dereg_mr(u, r[5].mr_handle) == EINVAL, "double dereg");
	CHECK(stats_are(1, 1, 0, 0), STATS_FMT, STATS_ARGS);

	/* hca_va may differ from start, keeping the page offset. */
	ret = reg_mr_full(u, pd, area + 100, 200, 0x10000000ULL + 100, lw,
			  NULL, &r[0]);
	CHECK(ret == 0, "REG_MR with hca_va: %s", strerror(ret));
	mr = find_mr(u, r[0].lkey);
	CHECK(mr && mr->iova == 0x10000000ULL + 100 &&
		      mr->addr == (uintptr_t)area + 100 && mr->access == lw,
	      "iova and addr recorded");
	CHECK(reg_mr_full(u, pd, area + 100, 200, 0x10000000ULL + 101, lw,
			  NULL, NULL) == EINVAL,
	      "hca_va with another page offset");
	dereg_mr(u, r[0].mr_handle);

	/* The range against the mappings, as get_user_pages would. */
	CHECK(reg_mr(u, pd, area, 2 * page, lw, NULL) == 0,
	      "writable MR over two writable pages");
	CHECK(reg_mr(u, pd, unmapped, page, 0, NULL) == EFAULT, "unmapped");
	CHECK(reg_mr(u, pd, area + 2 * page, page, lw, NULL) == EFAULT,
	      "LOCAL_WRITE on read-only memory");
	CHECK(reg_mr(u, pd, area + 2 * page, page,
		     IB_UVERBS_ACCESS_REMOTE_READ, NULL) == 0,
	      "read-only MR on read-only memory");
	CHECK(reg_mr(u, pd, area + 2 * page, page, IB_UVERBS_ACCESS_MW_BIND,
		     NULL) == EFAULT,
	      "MW_BIND (writable) on read-only memory");
	CHECK(reg_mr(u, pd, area + page, 2 * page, 0, NULL) == 0,
	      "read-only MR across rw and ro mappings");
	CHECK(reg_mr(u, pd, area + 3 * page, 1, 0, NULL) == EFAULT,
	      "PROT_NONE");
	CHECK(reg_mr(u, pd, area, 4 * page, 0, NULL) == EFAULT,
	      "range running into PROT_NONE");

	/* Flags and lengths, as ib_check_mr_access / ib_umem_get. */
	CHECK(reg_mr(u, pd, area, 64, IB_UVERBS_ACCESS_REMOTE_WRITE, NULL) ==
		      EINVAL,
	      "REMOTE_WRITE without LOCAL_WRITE");
	CHECK(reg_mr(u, pd, area, 64, IB_UVERBS_ACCESS_REMOTE_ATOMIC, NULL) ==
		      EINVAL,
	      "REMOTE_ATOMIC without LOCAL_WRITE");
	CHECK(reg_mr(u, pd, area, 64, 1u << 30, NULL) == EINVAL,
	      "unknown access bit");
	CHECK(reg_mr(u, pd, area, 64, 1u << 10, NULL) == EINVAL,
	      "unknown low access bit");
	/* A host process's MR may be on demand; flushes are not offered. */
	CHECK(reg_mr(u, pd, area, 64, IB_UVERBS_ACCESS_ON_DEMAND, NULL) == 0,
	      "ODP");
	CHECK(reg_mr(u, pd, area, 64, lw | (1u << 8), NULL) == EOPNOTSUPP,
	      "FLUSH_GLOBAL");
	CHECK(reg_mr(u, pd, area, 64, lw | IB_UVERBS_ACCESS_RELAXED_ORDERING |
					      IB_UVERBS_ACCESS_HUGETLB,
		     &r[0]) == 0,
	      "optional and hint bits accepted");
	dereg_mr(u, r[0].mr_handle);
	CHECK(reg_mr(u, pd, area, 0, lw, NULL) == EINVAL, "length 0");
	CHECK(reg_mr(u, pd, (void *)~0xfffULL, 1u << 20, 0, NULL) == EINVAL,
	      "range wrapping the address space");
	CHECK(reg_mr_full(u, pd, area, 2 * page, ~0xfffULL, 0, NULL, NULL) ==
		      EINVAL,
	      "iova range wrapping");
	CHECK(reg_mr(u, pd, area, (1ULL << 40) + 1, 0, NULL) == EINVAL,
	      "longer than max_mr_size");
	CHECK(reg_mr(u, pd + 77, area, 64, 0, NULL) == EINVAL, "bogus PD");

	/* Response fault: registration undone, key gone. */
	CHECK(reg_mr_full(u, pd, area, 64, (uintptr_t)area, lw, unmapped,
			  NULL) == EFAULT,
	      "REG_MR response unmapped");
	munmap(area, 4 * page);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g);
}

static int rereg_mr(struct vhca_ucontext *u, uint32_t handle, uint32_t flags,
		    const void *addr, uint64_t len, uint64_t hca_va,
		    uint32_t pd, uint32_t access,
		    struct ib_uverbs_rereg_mr_resp *out)
{
	struct ib_uverbs_rereg_mr_resp resp = { 0 };
	struct ib_uverbs_rereg_mr core = {
		.response = (uintptr_t)&resp,
		.mr_handle = handle, .flags = flags,
		.start = (uintptr_t)addr, .length = len, .hca_va = hca_va,
		.pd_handle = pd, .access_flags = access,
	};
	int ret = legacy(u, IB_USER_VERBS_CMD_REREG_MR, &core, sizeof(core),
			 sizeof(resp));

	if (out)
		*out = resp;
	return ret;
}

/* REREG_MR's raw inputs, as ib_uverbs_rereg_mr() checks them. */
void test_rereg_mr(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	const uint32_t lw = IB_UVERBS_ACCESS_LOCAL_WRITE;
	struct ib_uverbs_rereg_mr_resp rr;
	struct ib_uverbs_reg_mr_resp r;
	uint32_t pd, pd2, was;
	struct vhca_mr *mr;
	char *area;

	area = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(area != MAP_FAILED, "mmap");
	REQUIRE(!mprotect(area + 2 * page, page, PROT_READ), "mprotect");
	REQUIRE(!alloc_pd(u, &pd) && !alloc_pd(u, &pd2), "alloc_pd");
	REQUIRE(!reg_mr(u, pd, area, page, lw, &r), "reg_mr");

	CHECK(rereg_mr(u, r.mr_handle, 0, NULL, 0, 0, 0, 0, NULL) == EINVAL,
	      "flags 0");
	CHECK(rereg_mr(u, r.mr_handle, 8, NULL, 0, 0, 0, 0, NULL) ==
		      EOPNOTSUPP, "flag 8");
	CHECK(rereg_mr(u, pd, IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, 0, 0, lw,
		       NULL) == EINVAL, "a PD handle as the MR");
	CHECK(rereg_mr(u, r.mr_handle + 99, IBV_REREG_MR_CHANGE_ACCESS, NULL,
		       0, 0, 0, lw, NULL) == EINVAL, "no such MR");
	/* Without CHANGE_ACCESS the MR's own access is read: after the lookup. */
	CHECK(rereg_mr(u, r.mr_handle + 99, IBV_REREG_MR_CHANGE_PD, NULL, 0, 0,
		       pd, 0, NULL) == EINVAL, "no such MR, a new PD");
	CHECK(rereg_mr(u, pd, IBV_REREG_MR_CHANGE_TRANSLATION, area, page,
		       (uintptr_t)area, 0, 0, NULL) == EINVAL,
	      "a PD handle as the MR, a new range");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_PD, NULL, 0, 0,
		       pd2 + 50, 0, NULL) == EINVAL, "no such PD");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_PD, NULL, 0, 0,
		       r.mr_handle, 0, NULL) == EINVAL, "an MR handle as the PD");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION,
		       area + 1, 64, 2, 0, 0, NULL) == EINVAL,
	      "hca_va with another page offset");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION, area,
		       0, (uintptr_t)area, 0, 0, NULL) == EINVAL, "length 0");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION,
		       unmapped, page, (uintptr_t)unmapped, 0, 0, NULL) ==
		      EFAULT, "an unmapped range");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION,
		       area + 2 * page, page, (uintptr_t)area + 2 * page, 0, 0,
		       NULL) == EFAULT, "a writable MR moved to read-only memory");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, 0,
		       0, IB_UVERBS_ACCESS_REMOTE_WRITE, NULL) == EINVAL,
	      "REMOTE_WRITE without LOCAL_WRITE");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, 0,
		       0, lw | IB_UVERBS_ACCESS_ON_DEMAND, NULL) == EOPNOTSUPP,
	      "to ODP");
	mr = find_mr(u, r.lkey);
	CHECK(mr && mr->addr == (uintptr_t)area && mr->length == (uint64_t)page &&
		      mr->access == lw,
	      "every refusal left the MR as it was");

	/* All three at once: new range, PD and access, new keys. */
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION |
					       IBV_REREG_MR_CHANGE_PD |
					       IBV_REREG_MR_CHANGE_ACCESS,
		       area + page + 8, 100, 0x5000008, pd2,
		       IB_UVERBS_ACCESS_REMOTE_READ, &rr) == 0,
	      "rereg of everything");
	CHECK(!find_mr(u, r.lkey), "the old key is gone");
	mr = find_mr(u, rr.lkey);
	CHECK(mr && rr.rkey == rr.lkey && mr->addr == (uintptr_t)area + page + 8 &&
		      mr->iova == 0x5000008 && mr->length == 100 &&
		      mr->access == IB_UVERBS_ACCESS_REMOTE_READ,
	      "the MR as re-registered");
	CHECK(dealloc_pd(u, pd2) == EBUSY && dealloc_pd(u, pd) == 0,
	      "the MR moved to the new PD");
	/* Read-only now: moving it onto read-only memory is fine. */
	was = rr.lkey;
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION,
		       area + 2 * page, page, (uintptr_t)area + 2 * page, 0, 0,
		       &rr) == 0 && rr.lkey != was,
	      "a read-only MR onto read-only memory");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, 0,
		       0, lw, NULL) == EFAULT,
	      "write access gained on read-only memory");
	CHECK(dereg_mr(u, r.mr_handle) == 0 && dealloc_pd(u, pd2) == 0,
	      "dereg, dealloc");
	munmap(area, 3 * page);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g);
}

/*
 * Keys are capabilities (security finding 2): random, unique among a
 * context's live MRs, index part never 0, unrelated to one another and
 * to another device's, and found only through their own context.
 */
#define KEY_COUNT 1000

void test_keys(void)
{
	struct vhca_alloc_ucontext_cmd g1, g2;
	struct vhca_ucontext *u1, *u2;
	static struct ib_uverbs_reg_mr_resp r1[KEY_COUNT], r2[KEY_COUNT];
	static struct vhca_pf pf2;
	static char buf[64];
	struct vhca_dev *dev2 = &pf2.dev;
	unsigned int same = 0, stride = 0, dup = 0, zero_index = 0;
	uint32_t pd1, pd2;
	int ret;

	pthread_rwlock_init(&pf2.lock, NULL);
	*dev2 = *dev;
	dev2->pf = &pf2;
	dev2->listeners = NULL;	/* dev's contexts are not dev2's */
	memset(&dev2->stats, 0, sizeof(dev2->stats));
	atomic_init(&dev2->open_files, 0);
	REQUIRE(vhca_dev_open_port(dev2, &vhca_ucontext_sink) == 0, "port 2");

	u1 = open_context(&g1);
	u2 = vhca_cmd_open(dev2);
	REQUIRE(u2, "open on dev2");
	open_guest_fds(&g2, VHCA_CHANNEL_BATCH);
	ret = get_context(u2, &g2, &(struct get_context_resp){ 0 });
	REQUIRE(ret == 0, "GET_CONTEXT on dev2");
	ret = alloc_pd(u1, &pd1) | alloc_pd(u2, &pd2);
	REQUIRE(ret == 0, "PDs");

	for (int i = 0; i < KEY_COUNT; i++) {
		ret = reg_mr(u1, pd1, buf, sizeof(buf), 0, &r1[i]) |
		      reg_mr(u2, pd2, buf, sizeof(buf), 0, &r2[i]);
		REQUIRE(ret == 0, "MR %d on each device", i);
		same += r1[i].lkey == r2[i].lkey;
		zero_index += !(r1[i].lkey >> 8) || !(r2[i].lkey >> 8);
		if (i)
			stride += r1[i].lkey - r1[i - 1].lkey ==
				  r1[1].lkey - r1[0].lkey;
	}
	for (int i = 0; i < KEY_COUNT; i++)
		for (int j = 0; j < i; j++)
			dup += r1[i].lkey == r1[j].lkey;
	CHECK(!dup, "%u duplicate keys among %d live MRs", dup, KEY_COUNT);
	CHECK(!zero_index, "%u keys with index 0", zero_index);
	CHECK(same <= 1, "%u of %d keys equal on two devices", same,
	      KEY_COUNT);
	CHECK(stride <= 2, "%u keys one stride after the last: predictable",
	      stride);
	CHECK(find_mr(u2, r2[7].lkey) && !find_mr(u1, r2[7].lkey),
	      "a key is found only in its own context");
	CHECK(dereg_mr(u1, r1[3].mr_handle) == 0 && !find_mr(u1, r1[3].lkey) &&
		      find_mr(u2, r2[3].lkey),
	      "dereg removes one context's key, not the other's");

	vhca_cmd_release(u1);
	vhca_cmd_release(u2);
	CHECK(stats_are(0, 0, 0, 0) && !atomic_load(&dev2->stats.mrs),
	      STATS_FMT, STATS_ARGS);
	close_guest_fds(&g1);
	close_guest_fds(&g2);
	vhca_dev_close_port(dev2);
	pthread_rwlock_destroy(&pf2.lock);
}
