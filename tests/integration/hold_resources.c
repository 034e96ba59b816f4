// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Opens a device, takes PDs, MRs and completion channels, says "ready" on
 * stdout and waits to be killed: the daemon must free all of it.
 * usage: hold_resources DEVICE NUM_PDS NUM_MRS NUM_CHANNELS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "verbs_helpers.h"

int main(int argc, char **argv)
{
	static char buffer[1 << 20];
	struct ibv_context *ctx;
	struct ibv_pd *pd = NULL;
	int pds, mrs, channels;

	if (argc != 5) {
		fprintf(stderr, "usage: %s DEVICE PDS MRS CHANNELS\n", argv[0]);
		return 2;
	}
	pds = atoi(argv[2]);
	mrs = atoi(argv[3]);
	channels = atoi(argv[4]);

	ctx = open_by_name(argv[1]);
	if (!ctx) {
		perror("open device");
		return 1;
	}
	for (int i = 0; i < pds; i++) {
		pd = ibv_alloc_pd(ctx);
		if (!pd) {
			perror("alloc_pd");
			return 1;
		}
	}
	for (int i = 0; pd && i < mrs; i++) {
		if (!ibv_reg_mr(pd, buffer + i % 1024, 4096,
				IBV_ACCESS_LOCAL_WRITE)) {
			perror("reg_mr");
			return 1;
		}
	}
	for (int i = 0; i < channels; i++) {
		if (!ibv_create_comp_channel(ctx)) {
			perror("create_comp_channel");
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
