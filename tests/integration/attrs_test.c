// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * For every vhca device: what the command path answers (query_device,
 * query_port) agrees with the sysfs view, and the GID and P_Key queries
 * (served from sysfs by libibverbs) hold the documented defaults.
 */
#include <endian.h>
#include <inttypes.h>
#include <infiniband/verbs.h>

#include "../common.h"

TEST_COUNTERS;

static int read_attr(const char *dev, const char *attr, char *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/class/infiniband/%s/%s",
		 getenv("SYSFS_PATH"), dev, attr);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static uint64_t parse_sysfs_guid(const char *text)
{
	unsigned int a, b, c, d;

	if (sscanf(text, "%4x:%4x:%4x:%4x", &a, &b, &c, &d) != 4)
		return 0;
	return (uint64_t)a << 48 | (uint64_t)b << 32 | (uint64_t)c << 16 | d;
}

static void check_device(struct ibv_device *device)
{
	const char *name = ibv_get_device_name(device);
	struct ibv_device_attr_ex dev_attr;
	struct ibv_port_attr port;
	struct ibv_context *ctx;
	union ibv_gid gid;
	char text[256];
	uint16_t pkey;

	ctx = ibv_open_device(device);
	REQUIRE(ctx, "open %s", name);
	REQUIRE(!ibv_query_device_ex(ctx, NULL, &dev_attr), "query_device_ex");
	REQUIRE(!ibv_query_port(ctx, 1, &port), "query_port");

	read_attr(name, "node_guid", text, sizeof(text));
	CHECK(be64toh(dev_attr.orig_attr.node_guid) == parse_sysfs_guid(text),
	      "%s node_guid %s", name, text);
	read_attr(name, "sys_image_guid", text, sizeof(text));
	CHECK(be64toh(dev_attr.orig_attr.sys_image_guid) ==
		      parse_sysfs_guid(text),
	      "%s sys_image_guid %s", name, text);
	read_attr(name, "fw_ver", text, sizeof(text));
	CHECK(!strcmp(dev_attr.orig_attr.fw_ver, text), "%s fw_ver '%s' '%s'",
	      name, dev_attr.orig_attr.fw_ver, text);
	CHECK(dev_attr.orig_attr.phys_port_cnt == 1, "ports");
	CHECK(dev_attr.orig_attr.max_pkeys > 0, "max_pkeys");

	read_attr(name, "ports/1/lid", text, sizeof(text));
	CHECK(port.lid == strtoul(text, NULL, 16) && port.lid, "%s lid %u %s",
	      name, port.lid, text);
	read_attr(name, "ports/1/sm_lid", text, sizeof(text));
	CHECK(port.sm_lid == strtoul(text, NULL, 16), "%s sm_lid", name);
	read_attr(name, "ports/1/state", text, sizeof(text));
	CHECK(port.state == IBV_PORT_ACTIVE && atoi(text) == (int)port.state,
	      "%s state %d '%s'", name, port.state, text);
	read_attr(name, "ports/1/phys_state", text, sizeof(text));
	CHECK(port.phys_state == 5 && atoi(text) == 5, "%s phys_state", name);
	CHECK(port.active_mtu == IBV_MTU_4096, "active_mtu %d",
	      port.active_mtu);
	CHECK(port.link_layer == IBV_LINK_LAYER_INFINIBAND, "link layer");
	read_attr(name, "ports/1/cap_mask", text, sizeof(text));
	CHECK(port.port_cap_flags == strtoul(text, NULL, 16),
	      "%s cap_mask 0x%x %s", name, port.port_cap_flags, text);
	/* librdmacm's users look for CM_SUP; 18 is OpenSM's default. */
	CHECK(port.port_cap_flags & IBV_PORT_CM_SUP, "%s no CM_SUP 0x%x", name,
	      port.port_cap_flags);
	CHECK(port.subnet_timeout == 18, "%s subnet_timeout %u", name,
	      port.subnet_timeout);
	CHECK(port.gid_tbl_len > 0 && port.pkey_tbl_len > 0, "table sizes");

	REQUIRE(!ibv_query_gid(ctx, 1, 0, &gid), "query_gid");
	read_attr(name, "ports/1/gids/0", text, sizeof(text));
	CHECK(be64toh(gid.global.subnet_prefix) == 0xfe80000000000000ULL,
	      "%s GID 0 prefix", name);
	CHECK(be64toh(gid.global.interface_id) ==
		      parse_sysfs_guid(text + 20),
	      "%s GID 0 interface id vs %s", name, text);
	read_attr(name, "ports/1/gids/0", text, sizeof(text));
	REQUIRE(!ibv_query_pkey(ctx, 1, 0, &pkey), "query_pkey");
	CHECK(be16toh(pkey) == 0xffff, "%s P_Key 0 0x%x", name, be16toh(pkey));

	CHECK(!ibv_close_device(ctx), "close");
}

int main(void)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	int checked = 0;

	REQUIRE(list, "device list");
	for (int i = 0; list[i]; i++) {
		if (strncmp(ibv_get_device_name(list[i]), "vhca", 4))
			continue;
		check_device(list[i]);
		checked++;
	}
	CHECK(checked >= 2, "only %d devices", checked);
	ibv_free_device_list(list);
	return test_report();
}
