/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Helpers the libibverbs test programs share. */
#ifndef VHCA_TESTS_VERBS_HELPERS_H
#define VHCA_TESTS_VERBS_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <infiniband/verbs.h>

#include "../common.h"

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Opens the device called @name (vhca0_vf1, ...); NULL if none is. */
static inline struct ibv_context *open_by_name(const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;

	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	return ctx;
}

/*
 * Takes RC @qp through INIT, RTR and RTS to QP @dest_qpn at @dlid (PSN 7
 * both ways, remote READ and WRITE allowed, one READ in flight, retries
 * as perftest's).  0 or the errno of the step that failed.
 */
static inline int rc_connect(struct ibv_qp *qp, uint32_t dest_qpn,
			     uint16_t dlid)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qp_access_flags = IBV_ACCESS_REMOTE_READ |
						    IBV_ACCESS_REMOTE_WRITE };
	int ret;

	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					   IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	if (ret)
		return ret;
	a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_4096,
		.dest_qp_num = dest_qpn, .rq_psn = 7,
		.max_dest_rd_atomic = 1, .min_rnr_timer = 1,
		.ah_attr = { .dlid = dlid, .port_num = 1 },
	};
	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV |
					   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					   IBV_QP_RQ_PSN |
					   IBV_QP_MAX_DEST_RD_ATOMIC |
					   IBV_QP_MIN_RNR_TIMER);
	if (ret)
		return ret;
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS, .sq_psn = 7,
				  .timeout = 14, .retry_cnt = 7,
				  .rnr_retry = 7, .max_rd_atomic = 1 };
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
					    IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					    IBV_QP_RNR_RETRY |
					    IBV_QP_MAX_QP_RD_ATOMIC);
}

/* A test program's sub-tests, by name (tests/lib.sh's run_subtests). */
struct subtest {
	const char *name;
	void (*fn)(void);
};

/* "PROG --list", "PROG [all]" or "PROG NAME...": exit status. */
static inline int subtests_main(const struct subtest *tests, size_t n,
				int argc, char **argv)
{
	bool all = argc < 2 || !strcmp(argv[1], "all");

	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		bool run = all;
		unsigned int before = test_failed;

		for (int j = 1; j < argc && !run; j++)
			run = !strcmp(argv[j], tests[i].name);
		if (!run)
			continue;
		tests[i].fn();
		printf("%s: %s\n", test_failed == before ? "ok" : "FAIL",
		       tests[i].name);
	}
	return test_report();
}

#endif
