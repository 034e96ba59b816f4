/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the device claims and enforces, in one place.
 *
 * vhca_limits are the device's architectural limits (QUERY_DEVICE and
 * QUERY_PORT report them).  Each function (PF or VF) also gets a quota, a
 * fair share of what the daemon itself has (mappings, file descriptors,
 * memory) among the functions that exist: no tenant may exhaust a
 * daemon-wide resource and lock the others out (docs/security.md).  The
 * quota is fixed when the VFs are created (sriov_numvfs 0 -> N, when no
 * context exists) and QUERY_DEVICE reports the smaller of the two.
 */
#ifndef VHCA_DEVICE_LIMITS_H
#define VHCA_DEVICE_LIMITS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vhca_limits {
	uint64_t max_mr_size;
	uint64_t page_size_cap;
	uint64_t device_cap_flags;	/* enum ibv_device_cap_flags */
	uint32_t max_qp;
	uint32_t max_qp_wr;
	uint32_t max_sge;
	uint32_t max_sge_rd;
	uint32_t max_cq;
	uint32_t max_cqe;
	uint32_t max_mr;
	uint32_t max_pd;
	uint32_t max_qp_rd_atom;
	uint32_t max_qp_init_rd_atom;
	uint32_t max_res_rd_atom;
	uint32_t atomic_cap;		/* enum ibv_atomic_cap */
	uint32_t max_mw;
	uint32_t max_ah;
	uint32_t max_srq;
	uint32_t max_srq_wr;
	uint32_t max_srq_sge;
	uint32_t max_mcast_grp;
	uint32_t max_mcast_qp_attach;
	uint32_t max_total_mcast_qp_attach;
	uint16_t max_pkeys;
	uint8_t local_ca_ack_delay;
	uint8_t phys_port_cnt;
	/* port */
	uint32_t max_msg_sz;
	uint32_t gid_tbl_len;
	uint16_t pkey_tbl_len;
	uint8_t max_mtu;		/* enum ibv_mtu */
	uint8_t max_vl_num;
	uint8_t subnet_timeout;		/* PortInfo:SubnetTimeOut */
	/* context */
	uint32_t num_comp_vectors;
	uint32_t max_inline_data;	/* bytes of inline send data per WQE */
	uint32_t max_comp_channels;	/* per context */
	uint32_t max_objects;		/* handles per context */
};

extern const struct vhca_limits vhca_limits;

/*
 * One function's share of the daemon.  Every queue (CQ, QP, SRQ) and
 * every context costs the daemon one memory mapping; every context a
 * dozen file descriptors; queue memory is mapped memory.
 */
struct vhca_quota {
	uint32_t max_contexts;
	uint32_t max_fds;		/* vhcad fds its contexts may hold */
	uint32_t max_qp;
	uint32_t max_cq;
	uint32_t max_srq;
	uint32_t max_mr;
	uint32_t max_pd;
	uint64_t max_queue_bytes;	/* sum of the queue memfds mapped */
};

/* Daemon-wide budgets the quotas are carved from (limits.c). */
struct vhca_budget {
	uint64_t mappings;	/* vm.max_map_count less our own reserve */
	uint64_t fds;		/* RLIMIT_NOFILE less our own reserve */
	uint64_t queue_bytes;	/* memory for queues */
	uint64_t queue_bytes_per_function;	/* the admin's cap, 0: none */
	uint32_t contexts_per_function;		/* likewise */
};

/*
 * Measures the daemon's budgets once (vm.max_map_count, RLIMIT_NOFILE
 * after raising it to the hard limit, physical memory).  Safe to call
 * more than once; tests get a default budget without calling it.
 */
void vhca_budget_init(void);
const struct vhca_budget *vhca_budget(void);
/* vhcad --queue-memory: each function's queue memory at most @bytes. */
void vhca_budget_cap_queue_bytes(uint64_t bytes);
/* vhcad --max-contexts: each function's contexts at most @n. */
void vhca_budget_cap_contexts(uint32_t n);

/* The fair share of @functions functions (the PF and its VFs). */
void vhca_quota_share(unsigned int functions, struct vhca_quota *quota);

/*
 * Takes one unit (or @n bytes) of a resource counted in @counter, unless
 * @max are taken already; counters stay exact and are the limit.
 */
bool vhca_stats_reserve(atomic_uint *counter, unsigned int max);
void vhca_stats_release(atomic_uint *counter);
bool vhca_bytes_reserve(_Atomic uint64_t *counter, uint64_t n, uint64_t max);
void vhca_bytes_release(_Atomic uint64_t *counter, uint64_t n);

#endif /* VHCA_DEVICE_LIMITS_H */
