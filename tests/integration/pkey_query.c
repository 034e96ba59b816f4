// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * pkey_query DEV: prints the non-empty entries of port 1's P_Key table as
 * libibverbs reports them (ibv_query_pkey), one "INDEX 0xPKEY" per line,
 * then "gid0 <GID 0>" (ibv_query_gid).  Exit 1 on any failure.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <infiniband/verbs.h>

int main(int argc, char **argv)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	struct ibv_port_attr port;
	union ibv_gid gid;
	int n, ret = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: pkey_query DEV\n");
		return 2;
	}
	list = ibv_get_device_list(&n);
	for (int i = 0; list && i < n && !ctx; i++)
		if (!strcmp(ibv_get_device_name(list[i]), argv[1]))
			ctx = ibv_open_device(list[i]);
	if (!ctx) {
		fprintf(stderr, "pkey_query: cannot open %s\n", argv[1]);
		goto out;
	}
	if (ibv_query_port(ctx, 1, &port)) {
		perror("ibv_query_port");
		goto out;
	}
	for (int i = 0; i < port.pkey_tbl_len; i++) {
		__be16 pkey;

		if (ibv_query_pkey(ctx, 1, i, &pkey)) {
			fprintf(stderr, "ibv_query_pkey %d failed\n", i);
			goto out;
		}
		if (ntohs(pkey))
			printf("%d 0x%04x\n", i, ntohs(pkey));
	}
	if (ibv_query_gid(ctx, 1, 0, &gid)) {
		fprintf(stderr, "ibv_query_gid failed\n");
		goto out;
	}
	printf("gid0");
	for (int i = 0; i < 16; i += 2)
		printf("%c%02x%02x", i ? ':' : ' ', gid.raw[i], gid.raw[i + 1]);
	printf("\n");
	ret = 0;
out:
	if (ctx)
		ibv_close_device(ctx);
	if (list)
		ibv_free_device_list(list);
	return ret;
}
