// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Device limits and per-function quotas (limits.h). */
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "limits.h"
#include "pf.h"

const struct vhca_limits vhca_limits = {
	.max_mr_size = 1ULL << 40,
	.page_size_cap = 0xfffff000,	/* 4 KiB .. 2 GiB pages */
	.device_cap_flags = IBV_DEVICE_BAD_PKEY_CNTR |
			    IBV_DEVICE_BAD_QKEY_CNTR |
			    IBV_DEVICE_UD_AV_PORT_ENFORCE |
			    IBV_DEVICE_PORT_ACTIVE_EVENT |
			    IBV_DEVICE_SYS_IMAGE_GUID |
			    IBV_DEVICE_RC_RNR_NAK_GEN,
	.max_qp = 16384,
	.max_qp_wr = 16384,
	.max_sge = 16,
	.max_sge_rd = 16,
	.max_cq = 65536,
	.max_cqe = 65536,
	.max_mr = 1u << 20,
	.max_pd = 1u << 16,
	.max_qp_rd_atom = 16,
	.max_qp_init_rd_atom = 16,
	.max_res_rd_atom = 16384 * 16,
	.atomic_cap = IBV_ATOMIC_HCA,
	.max_mw = 0,			/* no memory windows (yet) */
	.max_ah = 65536,
	.max_srq = 16384,
	.max_srq_wr = 16384,
	.max_srq_sge = 16,
	/*
	 * UD multicast (mcast.h): a function attaches at most 256 QPs to
	 * groups in all, so it is in at most 256 groups; 64 QPs a group.
	 */
	.max_mcast_grp = 256,
	.max_mcast_qp_attach = 64,
	.max_total_mcast_qp_attach = 256,
	.max_pkeys = VHCA_PKEY_TABLE_LEN,
	.local_ca_ack_delay = 15,
	.phys_port_cnt = 1,
	.max_msg_sz = 1u << 31,
	.gid_tbl_len = VHCA_GID_TABLE_LEN,
	.pkey_tbl_len = VHCA_PKEY_TABLE_LEN,
	.max_mtu = IBV_MTU_4096,
	.max_vl_num = 1,		/* VL0 only */
	/*
	 * 4.096 us * 2^18 = 1.07 s, OpenSM's default (subnet_timeout 18):
	 * what a client on a managed subnet reads until an SM sets it.
	 */
	.subnet_timeout = 18,
	.num_comp_vectors = 1,
	.max_inline_data = 256,
	.max_comp_channels = 1024,
	.max_objects = 1u << 21,
};

/*
 * What the daemon keeps for itself: mappings for its libraries, thread
 * stacks and caches; fds for FUSE, the run dir and the management socket.
 */
#define MAPPINGS_RESERVED 8192
#define FDS_RESERVED 1024
/*
 * File descriptors a context costs the daemon at least: its pidfd, mem
 * fd and wake eventfd, its async and service pipes, a batch of pooled
 * channel pipes.  Every fd is counted against the function's max_fds;
 * this only bounds the number of contexts the share could ever hold.
 */
#define FDS_PER_CONTEXT 13
/* Queue memory may take at most this share of the host's RAM. */
#define QUEUE_MEMORY_SHARE 4

static struct vhca_budget budget = {
	/* Until vhca_budget_init() (in-process tests): Linux defaults. */
	.mappings = 65530 - MAPPINGS_RESERVED,
	.fds = 1024 - FDS_RESERVED / 2,
	.queue_bytes = 1ULL << 32,
};

static uint64_t read_u64_file(const char *path, uint64_t fallback)
{
	unsigned long long v;
	FILE *f = fopen(path, "re");
	int n;

	if (!f)
		return fallback;
	n = fscanf(f, "%llu", &v);
	fclose(f);
	return n == 1 ? v : fallback;
}

void vhca_budget_init(void)
{
	uint64_t maps = read_u64_file("/proc/sys/vm/max_map_count", 65530);
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;

	/* A context costs fds: take all the kernel lets us have. */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rlim_t want = rl.rlim_max;
		uint64_t nr_open = read_u64_file("/proc/sys/fs/nr_open", 0);

		/* Root may raise the hard limit itself, up to fs.nr_open. */
		if (nr_open > want) {
			struct rlimit raised = { nr_open, nr_open };

			if (!setrlimit(RLIMIT_NOFILE, &raised))
				want = nr_open;
		}
		rl.rlim_cur = want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	budget.mappings = maps > 2 * MAPPINGS_RESERVED ?
				  maps - MAPPINGS_RESERVED :
				  maps / 2;
	budget.fds = rl.rlim_cur > 2 * FDS_RESERVED ?
			     rl.rlim_cur - FDS_RESERVED :
			     rl.rlim_cur / 2;
	if (pages > 0 && page > 0)
		budget.queue_bytes = (uint64_t)pages * (uint64_t)page /
				     QUEUE_MEMORY_SHARE;
}

const struct vhca_budget *vhca_budget(void)
{
	return &budget;
}

void vhca_budget_cap_queue_bytes(uint64_t bytes)
{
	budget.queue_bytes_per_function = bytes;
}

void vhca_budget_cap_contexts(uint32_t n)
{
	budget.contexts_per_function = n;
}

static uint32_t min32(uint64_t a, uint32_t b)
{
	return a < b ? (uint32_t)a : b;
}

void vhca_quota_share(unsigned int functions, struct vhca_quota *q)
{
	uint64_t maps, fds;

	if (!functions)
		functions = 1;
	maps = budget.mappings / functions;
	fds = budget.fds / functions;
	/* Contexts cost fds and one mapping each; queues a mapping each. */
	q->max_fds = min32(fds, UINT32_MAX);
	q->max_contexts = min32(fds / FDS_PER_CONTEXT, 4096);
	if (budget.contexts_per_function &&
	    budget.contexts_per_function < q->max_contexts)
		q->max_contexts = budget.contexts_per_function;
	if (q->max_contexts < 1)
		q->max_contexts = 1;
	maps = maps > q->max_contexts ? maps - q->max_contexts : 1;
	/* Half the mappings for CQs, the rest for QPs and SRQs. */
	q->max_cq = min32(maps / 2, vhca_limits.max_cq);
	q->max_qp = min32(maps / 2 - maps / 8, vhca_limits.max_qp);
	q->max_srq = min32(maps / 8, vhca_limits.max_srq);
	if (!q->max_qp)
		q->max_qp = 1;
	if (!q->max_cq)
		q->max_cq = 1;
	q->max_mr = vhca_limits.max_mr;
	q->max_pd = vhca_limits.max_pd;
	q->max_queue_bytes = budget.queue_bytes / functions;
	if (budget.queue_bytes_per_function &&
	    budget.queue_bytes_per_function < q->max_queue_bytes)
		q->max_queue_bytes = budget.queue_bytes_per_function;
}

bool vhca_stats_reserve(atomic_uint *counter, unsigned int max)
{
	unsigned int cur = atomic_load(counter);

	/* CAS, not add-then-undo: readers never see more than max. */
	do {
		if (cur >= max)
			return false;
	} while (!atomic_compare_exchange_weak(counter, &cur, cur + 1));
	return true;
}

void vhca_stats_release(atomic_uint *counter)
{
	atomic_fetch_sub(counter, 1);
}

bool vhca_bytes_reserve(_Atomic uint64_t *counter, uint64_t n, uint64_t max)
{
	uint64_t cur = atomic_load(counter);

	do {
		if (n > max || cur > max - n)
			return false;
	} while (!atomic_compare_exchange_weak(counter, &cur, cur + n));
	return true;
}

void vhca_bytes_release(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_fetch_sub(counter, n);
}
