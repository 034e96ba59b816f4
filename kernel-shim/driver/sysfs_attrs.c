// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The sysfs view's attributes: how each is rendered from the device
 * model and parsed when written, and the node table that places them in
 * the tree (sysfs_nodes.h).
 *
 * Formats follow the kernel (drivers/infiniband/core/sysfs.c, uverbs_main.c)
 * as rdma-core v44 parses them (libibverbs/init.c, device.c, verbs.c,
 * cmd_device.c): every value ends with "\n", which libibverbs strips.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vhca/abi.h>
#include <vhca/text.h>

#include "ucma.h"

#include "device/pf.h"
#include "rundir.h"
#include "device.h"
#include "sysfs_nodes.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The kernel's enum rdma_node_type value shown in node_type. */
#define SYSFS_NODE_TYPE_CA 1

/* ---- attribute rendering ----------------------------------------------------- */

static int show_core_abi(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%d\n", VHCA_UVERBS_CORE_ABI_VERSION);
	return 0;
}

static int show_ucma_abi(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%d\n", UCMA_ABI_VERSION);
	return 0;
}

static int show_ibdev(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%s\n", c->dev->name);
	return 0;
}

/* libibverbs compares this with the rdev of /dev/infiniband/uverbsN. */
static int show_cdev(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%u:%u\n", VHCA_MARKER_MAJOR, VHCA_MARKER_MINOR);
	return 0;
}

static int show_provider_abi(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%d\n", VHCA_UVERBS_ABI_VERSION);
	return 0;
}

static int show_node_type(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%d: CA\n", SYSFS_NODE_TYPE_CA);
	return 0;
}

static void print_guid(FILE *out, uint64_t guid)
{
	char text[24];

	vhca_format_guid(guid, text, sizeof(text));
	fprintf(out, "%s\n", text);
}

static int show_node_guid(const struct node_ctx *c, FILE *out)
{
	print_guid(out, c->dev->node_guid);
	return 0;
}

static int show_sys_image_guid(const struct node_ctx *c, FILE *out)
{
	print_guid(out, c->dev->sys_image_guid);
	return 0;
}

static int show_node_desc(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%.64s\n", c->dev->node_desc);
	return 0;
}

static int show_fw_ver(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%s\n", VHCA_FW_VER);
	return 0;
}

static int show_hca_type(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "VHCA\n");
	return 0;
}

static int show_hw_rev(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%x\n", VHCA_HW_VER);
	return 0;
}

static int show_board_id(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%s\n", VHCA_BOARD_ID);
	return 0;
}

static int show_port_state(const struct node_ctx *c, FILE *out)
{
	static const char *const names[] = {
		"NOP", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER",
	};
	unsigned int state = c->dev->port.state;

	fprintf(out, "%u: %s\n", state,
		state < ARRAY_SIZE(names) ? names[state] : "UNKNOWN");
	return 0;
}

static int show_port_phys_state(const struct node_ctx *c, FILE *out)
{
	static const char *const names[] = {
		[1] = "Sleep", [2] = "Polling", [3] = "Disabled",
		[4] = "PortConfigurationTraining", [5] = "LinkUp",
		[6] = "LinkErrorRecovery", [7] = "Phy Test",
	};
	unsigned int state = c->dev->port.phys_state;

	fprintf(out, "%u: %s\n", state,
		state < ARRAY_SIZE(names) && names[state] ? names[state] :
							    "<unknown>");
	return 0;
}

static int show_port_lid(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "0x%x\n", c->dev->port.lid);
	return 0;
}

static int show_port_lmc(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%u\n", c->dev->port.lmc);
	return 0;
}

static int show_port_sm_lid(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "0x%x\n", c->dev->port.sm_lid);
	return 0;
}

static int show_port_sm_sl(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%u\n", c->dev->port.sm_sl);
	return 0;
}

static int show_port_cap_mask(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "0x%08x\n", c->dev->port.cap_flags);
	return 0;
}

/* IB link width encoding (IB_WIDTH_*) to lanes; 0 if unknown. */
static unsigned int width_to_lanes(unsigned int width)
{
	switch (width) {
	case 1: return 1;
	case 2: return 4;
	case 4: return 8;
	case 8: return 12;
	case 16: return 2;
	default: return 0;
	}
}

/* Per-lane rate in units of 100 Mb/s and its name, as the kernel's rate_show. */
static unsigned int speed_to_lane_rate(unsigned int speed, const char **name)
{
	switch (speed) {
	case 2: *name = " DDR"; return 50;
	case 4: *name = " QDR"; return 100;
	case 8: *name = " FDR10"; return 100;
	case 16: *name = " FDR"; return 140;
	case 32: *name = " EDR"; return 250;
	case 64: *name = " HDR"; return 500;
	case 128: *name = " NDR"; return 1000;
	default: *name = " SDR"; return 25;	/* the kernel's fallback */
	}
}

static int show_port_rate(const struct node_ctx *c, FILE *out)
{
	unsigned int lanes = width_to_lanes(c->dev->port.active_width);
	const char *speed;
	unsigned int rate = speed_to_lane_rate(c->dev->port.active_speed,
					       &speed) * lanes;

	if (!lanes)
		return -EINVAL;
	fprintf(out, "%u%s Gb/sec (%uX%s)\n", rate / 10,
		rate % 10 ? ".5" : "", lanes, speed);
	return 0;
}

static int show_port_link_layer(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "InfiniBand\n");
	return 0;
}

/*
 * "%pI6" of the kernel: eight groups of four hex digits.  Entry 0 is the
 * link-local GID (default subnet prefix fe80::/64 + port GUID), the rest of
 * the table is empty, which the kernel shows as an all-zero GID.
 */
static int show_gid(const struct node_ctx *c, FILE *out)
{
	uint64_t prefix = 0, id = 0;

	if (c->item == 0) {
		prefix = VHCA_SUBNET_PREFIX;
		id = c->dev->port_guid;
	}
	fprintf(out, "%04x:%04x:%04x:%04x:%04x:%04x:%04x:%04x\n",
		(unsigned int)(prefix >> 48) & 0xffff,
		(unsigned int)(prefix >> 32) & 0xffff,
		(unsigned int)(prefix >> 16) & 0xffff,
		(unsigned int)prefix & 0xffff,
		(unsigned int)(id >> 48) & 0xffff,
		(unsigned int)(id >> 32) & 0xffff,
		(unsigned int)(id >> 16) & 0xffff, (unsigned int)id & 0xffff);
	return 0;
}

/*
 * libibverbs (cmd_device.c, query_sysfs_gid_type) wants "IB/RoCE v1" for
 * an IB GID.  The kernel fails the read for an empty entry, but then
 * libibverbs' GID-table fallback (query_gid_table_fb) fails as a whole, so
 * every entry answers: the GID type of an IB port is IB, empty or not.
 */
static int show_gid_type(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "IB/RoCE v1\n");
	return 0;
}

static int show_pkey(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "0x%04x\n", c->dev->port.pkeys[c->item]);
	return 0;
}

/* The PMA port counters the kernel shows under ports/N/counters/. */
static const char *const counter_names[] = {
	"symbol_error",
	"link_error_recovery",
	"link_downed",
	"port_rcv_errors",
	"port_rcv_remote_physical_errors",
	"port_rcv_switch_relay_errors",
	"port_xmit_discards",
	"port_xmit_constraint_errors",
	"port_rcv_constraint_errors",
	"local_link_integrity_errors",
	"excessive_buffer_overrun_errors",
	"VL15_dropped",
	"port_xmit_data",
	"port_rcv_data",
	"port_xmit_packets",
	"port_rcv_packets",
	"port_xmit_wait",
	"unicast_xmit_packets",
	"unicast_rcv_packets",
	"multicast_xmit_packets",
	"multicast_rcv_packets",
};

/* Counters the device model keeps (pf.h); the others stay 0. */
/*
 * A port counter: the device's own memory in vhcad; a VM asks its
 * device (one command per read, as a PMA query would be).
 */
static unsigned long long counter_value(struct vhca_dev *dev, int counter)
{
	struct vhca_devcmd_counters now;

	if (counter < 0)
		return 0;
	if (vhca_device_is_remote() &&
	    !vhca_device_cmd(dev, VHCA_DEVCMD_QUERY_COUNTERS, 0, NULL, 0, NULL,
			     0, NULL, &now, sizeof(now)) &&
	    counter < VHCA_DEVCMD_COUNTERS)
		return (unsigned long long)now.value[counter];
	return (unsigned long long)atomic_load(&dev->counters.value[counter]);
}

static int show_counter(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%llu\n",
		counter_value(c->dev,
			      vhca_counter_by_name(counter_names[c->item])));
	return 0;
}

/* Driver-specific counters (ports/N/hw_counters/, as mlx5 has them). */
static const char *const hw_counter_names[] = {
	"qkey_violations",
	"rcv_source_errors",	/* RC/UC packets not from the QP's path */
	"rcv_dropped",		/* a context's inbox was full */
};

static int show_hw_counter(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%llu\n",
		counter_value(c->dev,
			      vhca_counter_by_name(hw_counter_names[c->item])));
	return 0;
}

static int show_totalvfs(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%u\n", c->pf->total_vfs);
	return 0;
}

static int show_numvfs(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%u\n", c->pf->num_vfs);
	return 0;
}

/* Strictly "N" or "N\n", N decimal; -EINVAL for anything else. */
static int parse_decimal(const char *buf, size_t len, unsigned int *out)
{
	unsigned long value;

	if (!vhca_parse_decimal(buf, vhca_text_strip_newline(buf, len),
				UINT_MAX, &value))
		return -EINVAL;
	*out = (unsigned int)value;
	return 0;
}

static int store_numvfs(struct vhca_sysfs *fs, struct node_ref ref,
			const char *buf, size_t len)
{
	unsigned int num_vfs;
	int ret;

	ret = parse_decimal(buf, len, &num_vfs);
	if (ret)
		return ret;
	ret = vhca_pf_set_num_vfs(fs->pf, num_vfs);
	if (!ret)
		log_msg("sriov_numvfs set to %u", num_vfs);
	return ret;
}

/* GUIDs under device/sriov/<vf>/ look as mlx5 shows them: bytes, MSB first. */
static void print_vf_guid(FILE *out, uint64_t guid)
{
	char text[VHCA_GUID_TEXT_SIZE];

	vhca_print_guid(guid, text);
	fprintf(out, "%s\n", text);
}

static int show_vf_node(const struct node_ctx *c, FILE *out)
{
	print_vf_guid(out, c->vf->node_guid);
	return 0;
}

static int show_vf_port(const struct node_ctx *c, FILE *out)
{
	print_vf_guid(out, c->vf->port_guid);
	return 0;
}

static int show_vf_policy(const struct node_ctx *c, FILE *out)
{
	switch (c->vf->policy) {
	case VHCA_POLICY_DOWN: fprintf(out, "Down\n"); break;
	case VHCA_POLICY_UP: fprintf(out, "Up\n"); break;
	case VHCA_POLICY_FOLLOW: fprintf(out, "Follow\n"); break;
	default: return -EINVAL;
	}
	return 0;
}

static int show_vf_pkey(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "0x%04x\n", c->vf->port.pkeys[c->item]);
	return 0;
}



/* Strictly "xx:xx:xx:xx:xx:xx:xx:xx" (hex, MSB first), optional "\n". */
static int parse_vf_guid(const char *buf, size_t len, uint64_t *out)
{
	return vhca_parse_guid(buf, vhca_text_strip_newline(buf, len), out) ?
		       0 :
		       -EINVAL;
}

/* "0x8001", "8001" (1-4 hex digits), or "none" = 0; optional "\n". */
static int parse_vf_pkey(const char *buf, size_t len, uint16_t *out)
{
	len = vhca_text_strip_newline(buf, len);
	if (len == 4 && !memcmp(buf, "none", 4)) {
		*out = 0;
		return 0;
	}
	return vhca_parse_pkey(buf, len, out) ? 0 : -EINVAL;
}

static int store_vf_node(struct vhca_sysfs *fs, struct node_ref ref,
			 const char *buf, size_t len)
{
	uint64_t guid;
	int ret = parse_vf_guid(buf, len, &guid);

	return ret ? ret : vhca_pf_set_vf_node_guid(fs->pf, ref.vf, guid);
}

static int store_vf_port(struct vhca_sysfs *fs, struct node_ref ref,
			 const char *buf, size_t len)
{
	uint64_t guid;
	int ret = parse_vf_guid(buf, len, &guid);

	return ret ? ret : vhca_pf_set_vf_port_guid(fs->pf, ref.vf, guid);
}

static int show_port_ip_addrs(const struct node_ctx *c, FILE *out)
{
	return sysfs_show_addrs(c->dev, out);
}

static int show_vf_ip(const struct node_ctx *c, FILE *out)
{
	return sysfs_show_addrs(c->vf, out);
}

static int store_vf_ip(struct vhca_sysfs *fs, struct node_ref ref,
		       const char *buf, size_t len)
{
	return sysfs_store_vf_addrs(fs, ref.vf, buf, len);
}

static int store_vf_policy(struct vhca_sysfs *fs, struct node_ref ref,
			   const char *buf, size_t len)
{
	enum vhca_vf_policy policy;
	int ret = vhca_policy_parse(buf, vhca_text_strip_newline(buf, len),
				    &policy);

	return ret ? ret : vhca_pf_set_vf_policy(fs->pf, ref.vf, policy);
}

static int store_vf_pkey(struct vhca_sysfs *fs, struct node_ref ref,
			 const char *buf, size_t len)
{
	uint16_t pkey;
	int ret = parse_vf_pkey(buf, len, &pkey);

	return ret ? ret : vhca_pf_set_vf_pkey(fs->pf, ref.vf, ref.item, pkey);
}

static int print_status_line(struct vhca_dev *dev, void *arg)
{
	FILE *out = arg;

	/* New fields go at the end: parsers of the older line keep working. */
	fprintf(out,
		"%s uverbs%d contexts %u pds %u mrs %u comp_channels %u qps %u cqs %u srqs %u dctxs %u open %u queue_kib %llu fds %u mcast %u\n",
		dev->name, dev->uverbs_index,
		atomic_load(&dev->stats.contexts), atomic_load(&dev->stats.pds),
		atomic_load(&dev->stats.mrs),
		atomic_load(&dev->stats.comp_channels),
		atomic_load(&dev->stats.qps), atomic_load(&dev->stats.cqs),
		atomic_load(&dev->stats.srqs), atomic_load(&dev->stats.dctxs),
		atomic_load(&dev->open_files),
		(unsigned long long)(atomic_load(&dev->stats.queue_bytes) /
				     1024),
		atomic_load(&dev->stats.fds),
		atomic_load(&dev->stats.mcast_attached));
	return 0;
}

static int show_status(const struct node_ctx *c, FILE *out)
{
	return vhca_pf_for_each_dev(c->pf, print_status_line, out);
}

/* The rdma_cm's ids, for the admin and for tests (waiting for a listener). */
static int show_cm_status(const struct node_ctx *c, FILE *out)
{
	unsigned int ids, listeners;

	cma_stats(&ids, &listeners);
	fprintf(out, "ids %u\nlisteners %u\nmulticast_joins %u\n", ids,
		listeners, ucma_joins());
	return 0;
}

/* ---- the node table ------------------------------------------------------------ */

#define DIR_MODE (S_IFDIR | 0555)
#define RO_MODE (S_IFREG | 0444)
#define RW_MODE (S_IFREG | 0644)

#define DIR_NODE(p, n) { .parent = (p), .name = (n), .mode = DIR_MODE }
#define RO_NODE(p, n, fn) \
	{ .parent = (p), .name = (n), .mode = RO_MODE, .show = (fn) }
#define RW_NODE(p, n, fn, st) \
	{ .parent = (p), .name = (n), .mode = RW_MODE, .show = (fn), \
	  .store = (st) }

/* Children are listed in table order, so listings are stable. */
const struct node_type sysfs_node_types[N_KINDS] = {
	[N_ROOT] = { .mode = DIR_MODE },
	[N_CLASS] = DIR_NODE(N_ROOT, "class"),

	[N_VERBS_CLASS] = DIR_NODE(N_CLASS, "infiniband_verbs"),
	[N_VERBS_ABI] = RO_NODE(N_VERBS_CLASS, "abi_version", show_core_abi),
	[N_UVERBS] = { .parent = N_VERBS_CLASS, .naming = NAME_UVERBS,
		       .mode = DIR_MODE },
	[N_UVERBS_IBDEV] = RO_NODE(N_UVERBS, "ibdev", show_ibdev),
	[N_UVERBS_DEV] = RO_NODE(N_UVERBS, "dev", show_cdev),
	[N_UVERBS_ABI] = RO_NODE(N_UVERBS, "abi_version", show_provider_abi),
	[N_UVERBS_CMD] = { .parent = N_UVERBS, .name = VHCA_CMD_FILE_NAME,
			   .mode = S_IFREG | 0666 },

	[N_IB_CLASS] = DIR_NODE(N_CLASS, "infiniband"),
	[N_IBDEV] = { .parent = N_IB_CLASS, .naming = NAME_IBDEV,
		      .mode = DIR_MODE },
	[N_NODE_TYPE] = RO_NODE(N_IBDEV, "node_type", show_node_type),
	[N_NODE_GUID] = RO_NODE(N_IBDEV, "node_guid", show_node_guid),
	[N_SYS_IMAGE_GUID] = RO_NODE(N_IBDEV, "sys_image_guid",
				     show_sys_image_guid),
	[N_NODE_DESC] = RO_NODE(N_IBDEV, "node_desc", show_node_desc),
	[N_FW_VER] = RO_NODE(N_IBDEV, "fw_ver", show_fw_ver),
	[N_HCA_TYPE] = RO_NODE(N_IBDEV, "hca_type", show_hca_type),
	[N_HW_REV] = RO_NODE(N_IBDEV, "hw_rev", show_hw_rev),
	[N_BOARD_ID] = RO_NODE(N_IBDEV, "board_id", show_board_id),

	[N_PORTS] = DIR_NODE(N_IBDEV, "ports"),
	[N_PORT] = DIR_NODE(N_PORTS, "1"),
	[N_PORT_STATE] = RO_NODE(N_PORT, "state", show_port_state),
	[N_PORT_PHYS_STATE] = RO_NODE(N_PORT, "phys_state",
				      show_port_phys_state),
	[N_PORT_LID] = RO_NODE(N_PORT, "lid", show_port_lid),
	[N_PORT_LMC] = RO_NODE(N_PORT, "lid_mask_count", show_port_lmc),
	[N_PORT_SM_LID] = RO_NODE(N_PORT, "sm_lid", show_port_sm_lid),
	[N_PORT_SM_SL] = RO_NODE(N_PORT, "sm_sl", show_port_sm_sl),
	[N_PORT_CAP_MASK] = RO_NODE(N_PORT, "cap_mask", show_port_cap_mask),
	[N_PORT_RATE] = RO_NODE(N_PORT, "rate", show_port_rate),
	[N_PORT_LINK_LAYER] = RO_NODE(N_PORT, "link_layer",
				      show_port_link_layer),
	[N_PORT_IP_ADDRS] = RO_NODE(N_PORT, "ip_addrs", show_port_ip_addrs),
	[N_GIDS] = DIR_NODE(N_PORT, "gids"),
	[N_GID] = { .parent = N_GIDS, .naming = NAME_INDEX,
		    .count = VHCA_GID_TABLE_LEN, .mode = RO_MODE,
		    .show = show_gid },
	[N_GID_ATTRS] = DIR_NODE(N_PORT, "gid_attrs"),
	[N_GID_TYPES] = DIR_NODE(N_GID_ATTRS, "types"),
	[N_GID_TYPE] = { .parent = N_GID_TYPES, .naming = NAME_INDEX,
			 .count = VHCA_GID_TABLE_LEN, .mode = RO_MODE,
			 .show = show_gid_type },
	[N_PKEYS] = DIR_NODE(N_PORT, "pkeys"),
	[N_PKEY] = { .parent = N_PKEYS, .naming = NAME_INDEX,
		     .count = VHCA_PKEY_TABLE_LEN, .mode = RO_MODE,
		     .show = show_pkey },
	[N_COUNTERS] = DIR_NODE(N_PORT, "counters"),
	[N_COUNTER] = { .parent = N_COUNTERS, .naming = NAME_LIST,
			.names = counter_names,
			.count = ARRAY_SIZE(counter_names), .mode = RO_MODE,
			.show = show_counter },
	[N_HW_COUNTERS] = DIR_NODE(N_PORT, "hw_counters"),
	[N_HW_COUNTER] = { .parent = N_HW_COUNTERS, .naming = NAME_LIST,
			   .names = hw_counter_names,
			   .count = ARRAY_SIZE(hw_counter_names),
			   .mode = RO_MODE, .show = show_hw_counter },

	/* The PCI function behind the PF; VFs have no SR-IOV controls. */
	[N_PCI] = { .parent = N_IBDEV, .name = "device", .mode = DIR_MODE,
		    .pf_only = true },
	[N_SRIOV_TOTALVFS] = RO_NODE(N_PCI, "sriov_totalvfs", show_totalvfs),
	[N_SRIOV_NUMVFS] = { .parent = N_PCI, .name = "sriov_numvfs",
			     .mode = RW_MODE, .show = show_numvfs,
			     .store = store_numvfs },
	[N_SRIOV] = DIR_NODE(N_PCI, "sriov"),
	[N_VF] = { .parent = N_SRIOV, .naming = NAME_VF, .mode = DIR_MODE },
	[N_VF_NODE] = RW_NODE(N_VF, "node", show_vf_node, store_vf_node),
	[N_VF_PORT] = RW_NODE(N_VF, "port", show_vf_port, store_vf_port),
	[N_VF_POLICY] = RW_NODE(N_VF, "policy", show_vf_policy,
				store_vf_policy),
	[N_VF_IP] = RW_NODE(N_VF, "ip", show_vf_ip, store_vf_ip),
	[N_VF_PKEYS] = DIR_NODE(N_VF, "pkeys"),
	[N_VF_PKEY] = { .parent = N_VF_PKEYS, .naming = NAME_INDEX,
			.count = VHCA_PKEY_TABLE_LEN, .mode = RW_MODE,
			.show = show_vf_pkey, .store = store_vf_pkey },

	/* The rdma_cm misc device: librdmacm reads its ABI here (ucma.h). */
	[N_MISC_CLASS] = DIR_NODE(N_CLASS, "misc"),
	[N_RDMA_CM] = DIR_NODE(N_MISC_CLASS, "rdma_cm"),
	[N_RDMA_CM_ABI] = RO_NODE(N_RDMA_CM, "abi_version", show_ucma_abi),
	[N_RDMA_CM_CMD] = { .parent = N_RDMA_CM, .name = VHCA_CMD_FILE_NAME,
			    .mode = S_IFREG | 0666 },

	[N_MODULE] = DIR_NODE(N_ROOT, "module"),
	[N_MODULE_VHCA] = DIR_NODE(N_MODULE, "vhca"),
	[N_STATUS] = RO_NODE(N_MODULE_VHCA, "status", show_status),
	[N_CM_STATUS] = RO_NODE(N_MODULE_VHCA, "rdma_cm", show_cm_status),
};

/* ---- rendering ------------------------------------------------------------------ */

/* Renders an attribute from the current state; 0 or -errno. */
int sysfs_render(struct vhca_sysfs *fs, struct node_ref ref, char **text,
		 size_t *len)
{
	struct node_ctx ctx;
	FILE *out;
	int ret;

	*text = NULL;
	out = open_memstream(text, len);
	if (!out)
		return -ENOMEM;
	pthread_rwlock_rdlock(&fs->pf->lock);
	if (sysfs_resolve(fs->pf, ref, &ctx))
		ret = sysfs_type_of(ref)->show(&ctx, out);
	else
		ret = -ENODEV;	/* the device went away under an open file */
	pthread_rwlock_unlock(&fs->pf->lock);
	if (fclose(out) && !ret)
		ret = -ENOMEM;
	if (ret) {
		free(*text);
		*text = NULL;
	}
	return ret;
}
