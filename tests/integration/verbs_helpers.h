/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Helpers the libibverbs test programs share. */
#ifndef VHCA_TESTS_VERBS_HELPERS_H
#define VHCA_TESTS_VERBS_HELPERS_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <infiniband/verbs.h>

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

#endif
