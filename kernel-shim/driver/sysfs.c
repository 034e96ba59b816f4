// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The sysfs view, a low-level FUSE filesystem.  Layout: sysfs.h.
 *
 * Every node is named by a struct node_ref (its kind plus the device, VF
 * and table index it stands for) which doubles as its inode number, so the
 * filesystem keeps no per-inode state: whether a node exists is decided
 * against struct vhca_pf, under pf->lock, on every request.  That is what
 * lets the tree follow sriov_numvfs at once, and it is also why nothing
 * may be cached by the kernel: entry and attribute timeouts are zero and
 * attribute files use direct_io, so every read reaches us and is rendered
 * from the current state.
 *
 * Formats follow the kernel (drivers/infiniband/core/sysfs.c, uverbs_main.c)
 * as rdma-core v44 parses them (libibverbs/init.c, device.c, verbs.c,
 * cmd_device.c): every value ends with "\n", which libibverbs strips.
 */
#define FUSE_USE_VERSION 314

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>

#include <vhca/abi.h>
#include <vhca/text.h>

#include "cmd.h"
#include "cmdq.h"
#include "device/pf.h"
#include "rundir.h"
#include "sysfs.h"

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Size sysfs reports for every attribute file: one page. */
#define ATTR_FILE_SIZE 4096
/* Longest value a sysfs attribute write may carry. */
#define ATTR_WRITE_MAX 64
/* Longest name of a node: device names, "uverbsN", counter names. */
#define NODE_NAME_MAX 64

/*
 * Interrupts the thread running the FUSE loop so that it notices the
 * session has been told to exit (see vhca_sysfs_stop()).
 */
#define KICK_SIGNAL SIGUSR2

/* The kernel's enum rdma_node_type value shown in node_type. */
#define SYSFS_NODE_TYPE_CA 1

/* ---- the tree -------------------------------------------------------------- */

enum node_kind {
	N_INVALID,
	N_ROOT,
	N_CLASS,
	N_VERBS_CLASS,
	N_VERBS_ABI,
	N_UVERBS,
	N_UVERBS_IBDEV,
	N_UVERBS_DEV,
	N_UVERBS_ABI,
	N_UVERBS_CMD,
	N_IB_CLASS,
	N_IBDEV,
	N_NODE_TYPE,
	N_NODE_GUID,
	N_SYS_IMAGE_GUID,
	N_NODE_DESC,
	N_FW_VER,
	N_HCA_TYPE,
	N_HW_REV,
	N_BOARD_ID,
	N_PORTS,
	N_PORT,
	N_PORT_STATE,
	N_PORT_PHYS_STATE,
	N_PORT_LID,
	N_PORT_LMC,
	N_PORT_SM_LID,
	N_PORT_SM_SL,
	N_PORT_CAP_MASK,
	N_PORT_RATE,
	N_PORT_LINK_LAYER,
	N_GIDS,
	N_GID,
	N_GID_ATTRS,
	N_GID_TYPES,
	N_GID_TYPE,
	N_PKEYS,
	N_PKEY,
	N_COUNTERS,
	N_COUNTER,
	N_HW_COUNTERS,
	N_HW_COUNTER,
	N_PCI,
	N_SRIOV_TOTALVFS,
	N_SRIOV_NUMVFS,
	N_SRIOV,
	N_VF,
	N_VF_NODE,
	N_VF_PORT,
	N_VF_POLICY,
	N_VF_PKEYS,
	N_VF_PKEY,
	N_MODULE,
	N_MODULE_VHCA,
	N_STATUS,
	N_KINDS
};

/* How a kind of node is named inside its parent, and how many there are. */
enum naming {
	NAME_FIXED,	/* one node called .name */
	NAME_INDEX,	/* .count nodes "0", "1", ...; the number in ref.item */
	NAME_LIST,	/* one node per .names[]; the index in ref.item */
	NAME_VF,	/* one node per VF, "0", "1", ...; the VF in ref.vf */
	NAME_UVERBS,	/* one node per device, "uverbsN"; N in ref.dev */
	NAME_IBDEV,	/* one node per device, its name; uverbs N in ref.dev */
};

/*
 * A node: its kind and, as far as its ancestors select them, the device
 * (by uverbs index), the VF and the table index.  Fields no ancestor sets
 * are zero, which makes the inode number of a node unique.
 */
struct node_ref {
	unsigned int kind;
	unsigned int dev;
	unsigned int vf;
	unsigned int item;
};

/* What a node_ref resolves to, under pf->lock. */
struct node_ctx {
	struct vhca_pf *pf;
	struct vhca_dev *dev;	/* per-device nodes */
	struct vhca_dev *vf;	/* nodes below device/sriov/<vf> */
	unsigned int item;
};

struct vhca_sysfs;

struct node_type {
	unsigned int parent;
	enum naming naming;
	const char *name;
	const char *const *names;
	unsigned int count;
	mode_t mode;
	bool pf_only;
	int (*show)(const struct node_ctx *c, FILE *out);
	int (*store)(struct vhca_sysfs *fs, struct node_ref ref,
		     const char *buf, size_t len);
};

struct cmd_file {
	struct vhca_ucontext *uctx;
	struct vhca_dev *dev;
	struct vhca_sysfs *fs;
	bool busy;			/* a command of it runs (cmdq.h) */
	struct cmd_file *prev, *next;
};

/* A command or a release waiting for its turn (cmdq.h). */
struct cmd_work {
	struct vhca_cmdq_item item;
	fuse_req_t req;
	struct cmd_file *file;
	pid_t pid;
	size_t len;
	uint8_t buf[];
};

struct vhca_sysfs {
	struct vhca_pf *pf;
	struct fuse_session *se;
	struct vhca_sysfs_events events;
	struct timespec mount_time;

	pthread_t loop_thread;
	bool serving;
	atomic_bool stopping;

	pthread_mutex_t cmd_files_lock;
	struct cmd_file cmd_files;	/* list head: every open command file */
};

/* ---- attribute rendering ----------------------------------------------------- */

static int show_core_abi(const struct node_ctx *c, FILE *out)
{
	fprintf(out, "%d\n", VHCA_UVERBS_CORE_ABI_VERSION);
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
		prefix = 0xfe80000000000000ULL;
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
static int show_counter(const struct node_ctx *c, FILE *out)
{
	int counter = vhca_counter_by_name(counter_names[c->item]);

	fprintf(out, "%llu\n",
		counter < 0 ? 0ULL :
		(unsigned long long)atomic_load(
			&c->dev->counters.value[counter]));
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
	int counter = vhca_counter_by_name(hw_counter_names[c->item]);

	fprintf(out, "%llu\n",
		counter < 0 ? 0ULL :
		(unsigned long long)atomic_load(
			&c->dev->counters.value[counter]));
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
		"%s uverbs%d contexts %u pds %u mrs %u comp_channels %u qps %u cqs %u srqs %u dctxs %u open %u queue_kib %llu fds %u\n",
		dev->name, dev->uverbs_index,
		atomic_load(&dev->stats.contexts), atomic_load(&dev->stats.pds),
		atomic_load(&dev->stats.mrs),
		atomic_load(&dev->stats.comp_channels),
		atomic_load(&dev->stats.qps), atomic_load(&dev->stats.cqs),
		atomic_load(&dev->stats.srqs), atomic_load(&dev->stats.dctxs),
		atomic_load(&dev->open_files),
		(unsigned long long)(atomic_load(&dev->stats.queue_bytes) /
				     1024),
		atomic_load(&dev->stats.fds));
	return 0;
}

static int show_status(const struct node_ctx *c, FILE *out)
{
	return vhca_pf_for_each_dev(c->pf, print_status_line, out);
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
static const struct node_type node_types[N_KINDS] = {
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
	[N_VF_PKEYS] = DIR_NODE(N_VF, "pkeys"),
	[N_VF_PKEY] = { .parent = N_VF_PKEYS, .naming = NAME_INDEX,
			.count = VHCA_PKEY_TABLE_LEN, .mode = RW_MODE,
			.show = show_vf_pkey, .store = store_vf_pkey },

	[N_MODULE] = DIR_NODE(N_ROOT, "module"),
	[N_MODULE_VHCA] = DIR_NODE(N_MODULE, "vhca"),
	[N_STATUS] = RO_NODE(N_MODULE_VHCA, "status", show_status),
};

/* ---- node references and inode numbers ---------------------------------------- */

/* Inode number layout: kind:16 | dev:24 | vf:8 | item:16. */
#define INO_KIND_SHIFT 48
#define INO_DEV_SHIFT 24
#define INO_VF_SHIFT 16
#define INO_DEV_MASK 0xffffffULL
#define INO_VF_MASK 0xffULL
#define INO_ITEM_MASK 0xffffULL

static_assert(VHCA_MAX_VFS <= INO_VF_MASK + 1, "VF number must fit");
static_assert(VHCA_PKEY_TABLE_LEN <= INO_ITEM_MASK + 1, "index must fit");

static fuse_ino_t ref_to_ino(struct node_ref ref)
{
	if (ref.kind == N_ROOT)
		return FUSE_ROOT_ID;
	return (fuse_ino_t)ref.kind << INO_KIND_SHIFT |
	       ((fuse_ino_t)ref.dev & INO_DEV_MASK) << INO_DEV_SHIFT |
	       ((fuse_ino_t)ref.vf & INO_VF_MASK) << INO_VF_SHIFT |
	       ((fuse_ino_t)ref.item & INO_ITEM_MASK);
}

static struct node_ref ino_to_ref(fuse_ino_t ino)
{
	struct node_ref ref = { .kind = N_INVALID };
	uint64_t kind = ino >> INO_KIND_SHIFT;

	if (ino == FUSE_ROOT_ID) {
		ref.kind = N_ROOT;
		return ref;
	}
	if (kind <= N_ROOT || kind >= N_KINDS)
		return ref;
	ref.kind = (unsigned int)kind;
	ref.dev = (unsigned int)((ino >> INO_DEV_SHIFT) & INO_DEV_MASK);
	ref.vf = (unsigned int)((ino >> INO_VF_SHIFT) & INO_VF_MASK);
	ref.item = (unsigned int)(ino & INO_ITEM_MASK);
	return ref;
}

static const struct node_type *type_of(struct node_ref ref)
{
	return &node_types[ref.kind];
}

/* The parent of a node: its kind, minus what this level selects. */
static struct node_ref parent_ref(struct node_ref ref)
{
	const struct node_type *type = type_of(ref);
	struct node_ref up = ref;

	if (ref.kind == N_ROOT)
		return ref;
	up.kind = type->parent;
	switch (type->naming) {
	case NAME_FIXED:
		break;
	case NAME_INDEX:
	case NAME_LIST:
		up.item = 0;
		break;
	case NAME_VF:
		up.vf = 0;
		break;
	case NAME_UVERBS:
	case NAME_IBDEV:
		up.dev = 0;
		break;
	}
	return up;
}

/*
 * Does the node exist right now?  Walks up to the root checking each level
 * against the device model, and fills ctx on the way back.  A reference
 * whose unused fields are not zero does not exist.  Caller holds pf->lock.
 */
static bool resolve(struct vhca_pf *pf, struct node_ref ref,
		    struct node_ctx *ctx)
{
	const struct node_type *type;

	if (ref.kind == N_ROOT) {
		*ctx = (struct node_ctx){ .pf = pf };
		return !ref.dev && !ref.vf && !ref.item;
	}
	if (ref.kind <= N_ROOT || ref.kind >= N_KINDS)
		return false;
	if (!resolve(pf, parent_ref(ref), ctx))
		return false;

	type = type_of(ref);
	switch (type->naming) {
	case NAME_FIXED:
		break;
	case NAME_INDEX:
	case NAME_LIST:
		if (ref.item >= type->count)
			return false;
		ctx->item = ref.item;
		break;
	case NAME_VF:
		if (ref.vf >= pf->num_vfs)
			return false;
		ctx->vf = pf->vfs[ref.vf];
		break;
	case NAME_UVERBS:
	case NAME_IBDEV:
		ctx->dev = vhca_pf_find_by_uverbs(pf, (int)ref.dev);
		if (!ctx->dev)
			return false;
		break;
	}
	return !type->pf_only || (ctx->dev && !ctx->dev->is_vf);
}

/* The PF, then each VF; NULL past the end.  Caller holds pf->lock. */
static struct vhca_dev *nth_dev(struct vhca_pf *pf, unsigned int n)
{
	if (n == 0)
		return &pf->dev;
	return n <= pf->num_vfs ? pf->vfs[n - 1] : NULL;
}

/* Returns true to stop the walk. */
typedef bool (*visit_fn)(struct node_ref child, const char *name, void *arg);

static bool visit_numbered(struct node_ref *child, unsigned int *field,
			   unsigned int count, const char *const *names,
			   visit_fn visit, void *arg)
{
	char name[16];

	for (unsigned int i = 0; i < count; i++) {
		*field = i;
		snprintf(name, sizeof(name), "%u", i);
		if (visit(*child, names ? names[i] : name, arg))
			return true;
	}
	return false;
}

static bool visit_devices(struct vhca_pf *pf, struct node_ref child,
			  bool by_uverbs, visit_fn visit, void *arg)
{
	char name[NODE_NAME_MAX];
	struct vhca_dev *dev;

	for (unsigned int n = 0; (dev = nth_dev(pf, n)); n++) {
		child.dev = (unsigned int)dev->uverbs_index;
		if (by_uverbs)
			snprintf(name, sizeof(name), "uverbs%d",
				 dev->uverbs_index);
		else
			snprintf(name, sizeof(name), "%s", dev->name);
		if (visit(child, name, arg))
			return true;
	}
	return false;
}

/*
 * Calls visit for every child of an existing directory, in table order;
 * parent_ctx is what it resolved to.  Caller holds pf->lock.
 */
static bool for_each_child(struct vhca_pf *pf, struct node_ref parent,
			   const struct node_ctx *parent_ctx, visit_fn visit,
			   void *arg)
{
	for (unsigned int kind = N_ROOT + 1; kind < N_KINDS; kind++) {
		const struct node_type *type = &node_types[kind];
		struct node_ref child = parent;
		bool stop = false;

		if (type->parent != parent.kind)
			continue;
		if (type->pf_only &&
		    (!parent_ctx->dev || parent_ctx->dev->is_vf))
			continue;
		child.kind = kind;
		switch (type->naming) {
		case NAME_FIXED:
			stop = visit(child, type->name, arg);
			break;
		case NAME_INDEX:
		case NAME_LIST:
			stop = visit_numbered(&child, &child.item, type->count,
					      type->names, visit, arg);
			break;
		case NAME_VF:
			stop = visit_numbered(&child, &child.vf, pf->num_vfs,
					      NULL, visit, arg);
			break;
		case NAME_UVERBS:
		case NAME_IBDEV:
			stop = visit_devices(pf, child,
					     type->naming == NAME_UVERBS,
					     visit, arg);
			break;
		}
		if (stop)
			return true;
	}
	return false;
}

struct name_search {
	const char *name;
	struct node_ref found;
};

static bool match_name(struct node_ref child, const char *name, void *arg)
{
	struct name_search *search = arg;

	if (strcmp(name, search->name))
		return false;
	search->found = child;
	return true;
}

/* ---- attributes (struct stat) ------------------------------------------------------- */

static bool is_writable(struct node_ref ref)
{
	return ref.kind == N_UVERBS_CMD || type_of(ref)->store;
}

/* Caller holds pf->lock and has resolved ref into ctx. */
static void fill_stat(const struct vhca_sysfs *fs, struct node_ref ref,
		      const struct node_ctx *ctx, struct stat *st)
{
	const struct node_type *type = type_of(ref);
	struct timespec when = fs->mount_time;
	struct stat node;

	memset(st, 0, sizeof(*st));
	st->st_ino = ref_to_ino(ref);
	st->st_mode = type->mode;
	st->st_nlink = S_ISDIR(type->mode) ? 2 : 1;
	st->st_blksize = ATTR_FILE_SIZE;
	if (S_ISREG(type->mode) && ref.kind != N_UVERBS_CMD)
		st->st_size = ATTR_FILE_SIZE;
	/*
	 * The kernel takes the inode lock exclusive for a write past EOF even
	 * with parallel direct writes; a huge size keeps every write inside.
	 */
	if (ref.kind == N_UVERBS_CMD)
		st->st_size = 1LL << 40;

	/*
	 * libibverbs takes the mtime of class/infiniband/<dev> as the
	 * device's creation time, to tell a re-created device from the one
	 * it already knows (init.c, same_sysfs_dev).  The marker node was
	 * created with the device, so its mtime is exactly that.
	 */
	if ((ref.kind == N_IBDEV || ref.kind == N_UVERBS) &&
	    !vhca_uverbs_node_stat(ctx->dev->uverbs_index, &node))
		when = node.st_mtim;
	st->st_atim = when;
	st->st_mtim = when;
	st->st_ctim = when;
}

/* Resolves ino and fills st; 0 or a positive errno. */
static int stat_ino(struct vhca_sysfs *fs, fuse_ino_t ino, struct stat *st)
{
	struct node_ref ref = ino_to_ref(ino);
	struct node_ctx ctx;
	int err = ENOENT;

	pthread_rwlock_rdlock(&fs->pf->lock);
	if (resolve(fs->pf, ref, &ctx)) {
		fill_stat(fs, ref, &ctx, st);
		err = 0;
	}
	pthread_rwlock_unlock(&fs->pf->lock);
	return err;
}

/* ---- FUSE: names and attributes ------------------------------------------------------ */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct name_search search = { .name = name };
	struct node_ref ref = ino_to_ref(parent);
	struct fuse_entry_param entry;
	struct node_ctx ctx;
	int err = ENOENT;

	/* Zero timeouts: the tree changes with sriov_numvfs. */
	memset(&entry, 0, sizeof(entry));
	pthread_rwlock_rdlock(&fs->pf->lock);
	if (resolve(fs->pf, ref, &ctx)) {
		if (!S_ISDIR(type_of(ref)->mode))
			err = ENOTDIR;
		else if (for_each_child(fs->pf, ref, &ctx, match_name,
					&search) &&
			 resolve(fs->pf, search.found, &ctx)) {
			fill_stat(fs, search.found, &ctx, &entry.attr);
			entry.ino = entry.attr.st_ino;
			err = 0;
		}
	}
	pthread_rwlock_unlock(&fs->pf->lock);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &entry);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct stat st;
	int err = stat_ino(fs, ino, &st);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 0.0);
}

/*
 * Like sysfs: ownership and mode are fixed; truncation of a writable file
 * (the O_TRUNC of "echo N > file") and time updates are accepted and
 * change nothing.
 */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct node_ref ref = ino_to_ref(ino);
	struct stat st;
	int err;

	err = stat_ino(fs, ino, &st);
	if (!err && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
			       FUSE_SET_ATTR_GID)))
		err = EPERM;
	if (!err && (to_set & FUSE_SET_ATTR_SIZE) && !is_writable(ref))
		err = EPERM;

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 0.0);
}

/* Nothing can be created, removed or renamed (errnos as sysfs gives them). */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EPERM);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	fuse_reply_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fuse_reply_err(req, EPERM);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	fuse_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fuse_reply_err(req, EPERM);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EACCES);
}

/* ---- FUSE: directories ------------------------------------------------------------------- */

struct dir_entry {
	fuse_ino_t ino;
	mode_t mode;
	char name[NODE_NAME_MAX];
};

/* A snapshot of one directory, taken at opendir and at every rewind. */
struct dir_listing {
	struct node_ref ref;
	pthread_mutex_t lock;
	size_t count, max;
	struct dir_entry *entries;
	bool out_of_memory;
};

static void add_entry(struct dir_listing *dir, const char *name,
		      struct node_ref ref)
{
	struct dir_entry *entry;

	if (dir->count == dir->max) {
		size_t max = dir->max ? 2 * dir->max : 32;
		struct dir_entry *grown;

		grown = realloc(dir->entries, max * sizeof(*grown));
		if (!grown) {
			dir->out_of_memory = true;
			return;
		}
		dir->entries = grown;
		dir->max = max;
	}
	entry = &dir->entries[dir->count++];
	entry->ino = ref_to_ino(ref);
	entry->mode = type_of(ref)->mode;
	snprintf(entry->name, sizeof(entry->name), "%s", name);
}

static bool add_child_entry(struct node_ref child, const char *name,
			    void *arg)
{
	struct dir_listing *dir = arg;

	add_entry(dir, name, child);
	return dir->out_of_memory;
}

/* (Re)takes the snapshot; 0 or a positive errno. */
static int list_dir(struct vhca_sysfs *fs, struct dir_listing *dir)
{
	struct node_ctx ctx;
	int err = 0;

	dir->count = 0;
	dir->out_of_memory = false;
	pthread_rwlock_rdlock(&fs->pf->lock);
	if (!resolve(fs->pf, dir->ref, &ctx)) {
		err = ENOENT;
	} else if (!S_ISDIR(type_of(dir->ref)->mode)) {
		err = ENOTDIR;
	} else {
		add_entry(dir, ".", dir->ref);
		add_entry(dir, "..", parent_ref(dir->ref));
		for_each_child(fs->pf, dir->ref, &ctx, add_child_entry, dir);
		if (dir->out_of_memory)
			err = ENOMEM;
	}
	pthread_rwlock_unlock(&fs->pf->lock);
	return err;
}

static void free_listing(struct dir_listing *dir)
{
	pthread_mutex_destroy(&dir->lock);
	free(dir->entries);
	free(dir);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct dir_listing *dir;
	int err;

	dir = calloc(1, sizeof(*dir));
	if (!dir) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dir->ref = ino_to_ref(ino);
	pthread_mutex_init(&dir->lock, NULL);
	err = list_dir(fs, dir);
	if (err) {
		free_listing(dir);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)dir;
	if (fuse_reply_open(req, fi))
		free_listing(dir);
}

/*
 * Offsets index the snapshot, so a listing read in several calls is
 * consistent even if VFs come and go meanwhile; offset 0 (a fresh read
 * or rewinddir) takes a new snapshot.
 */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct dir_listing *dir = (struct dir_listing *)(uintptr_t)fi->fh;
	size_t used = 0;
	char *buf;
	int err = 0;

	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&dir->lock);
	if (off == 0)
		err = list_dir(fs, dir);
	for (size_t i = (size_t)off; !err && off >= 0 && i < dir->count;
	     i++) {
		struct stat st = { .st_ino = dir->entries[i].ino,
				   .st_mode = dir->entries[i].mode };
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						dir->entries[i].name, &st,
						(off_t)(i + 1));

		if (need > size - used)
			break;
		used += need;
	}
	pthread_mutex_unlock(&dir->lock);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	free_listing((struct dir_listing *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- FUSE: attribute files ------------------------------------------------------------- */

/* An open attribute: the text the last read from offset 0 rendered. */
struct attr_file {
	struct node_ref ref;
	pthread_mutex_t lock;	/* reads on one open file may run in parallel */
	char *text;
	size_t len;
};

/* Renders an attribute from the current state; 0 or -errno. */
static int render(struct vhca_sysfs *fs, struct node_ref ref, char **text,
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
	if (resolve(fs->pf, ref, &ctx))
		ret = type_of(ref)->show(&ctx, out);
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

static void free_attr_file(struct attr_file *file)
{
	pthread_mutex_destroy(&file->lock);
	free(file->text);
	free(file);
}

static void open_attribute(fuse_req_t req, struct vhca_sysfs *fs,
			   struct node_ref ref, struct fuse_file_info *fi)
{
	const struct node_type *type = type_of(ref);
	int access = fi->flags & O_ACCMODE;
	struct attr_file *file;
	struct node_ctx ctx;
	bool exists;

	pthread_rwlock_rdlock(&fs->pf->lock);
	exists = resolve(fs->pf, ref, &ctx);
	pthread_rwlock_unlock(&fs->pf->lock);
	if (!exists) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (S_ISDIR(type->mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* As kernfs: no write access to a file without a store method. */
	if (access != O_RDONLY && !type->store) {
		fuse_reply_err(req, EACCES);
		return;
	}

	file = calloc(1, sizeof(*file));
	if (!file) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	file->ref = ref;
	pthread_mutex_init(&file->lock, NULL);
	fi->fh = (uintptr_t)file;
	fi->direct_io = 1;	/* every read is rendered afresh */
	if (fuse_reply_open(req, fi))
		free_attr_file(file);
}

/*
 * Like sysfs: a read from offset 0 renders the value anew, later offsets
 * continue in that same text, so a reader never sees two versions mixed.
 * The reply goes out from a copy, after the lock is dropped: the moment it
 * reaches the kernel the reader may close, and its release free the file.
 */
static void read_attribute(fuse_req_t req, struct vhca_sysfs *fs,
			   struct attr_file *file, size_t size, off_t off)
{
	char *reply = NULL;
	size_t len = 0;
	int ret = 0;

	pthread_mutex_lock(&file->lock);
	if (off == 0 || !file->text) {
		char *text;
		size_t text_len;

		ret = render(fs, file->ref, &text, &text_len);
		if (!ret) {
			free(file->text);
			file->text = text;
			file->len = text_len;
		}
	}
	if (!ret && off >= 0 && (size_t)off < file->len) {
		len = file->len - (size_t)off;
		if (len > size)
			len = size;
		reply = malloc(len);
		if (reply)
			memcpy(reply, file->text + off, len);
		else
			ret = -ENOMEM;
	}
	pthread_mutex_unlock(&file->lock);

	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, reply, len);
	free(reply);
}

/*
 * Each write() is one whole value, judged on its own as sysfs does; the
 * offset is ignored.
 */
static void write_attribute(fuse_req_t req, struct vhca_sysfs *fs,
			    struct attr_file *file, const char *buf,
			    size_t size)
{
	const struct node_type *type = type_of(file->ref);
	int ret;

	if (!type->store)
		ret = -EACCES;
	else if (size > ATTR_WRITE_MAX)
		ret = -EINVAL;
	else
		ret = type->store(fs, file->ref, buf, size);

	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, size);
}

/* ---- FUSE: command files ---------------------------------------------------------------- */

static void track_cmd_file(struct vhca_sysfs *fs, struct cmd_file *file)
{
	pthread_mutex_lock(&fs->cmd_files_lock);
	file->next = fs->cmd_files.next;
	file->prev = &fs->cmd_files;
	file->next->prev = file;
	fs->cmd_files.next = file;
	pthread_mutex_unlock(&fs->cmd_files_lock);
}

static void untrack_cmd_file(struct vhca_sysfs *fs, struct cmd_file *file)
{
	pthread_mutex_lock(&fs->cmd_files_lock);
	file->prev->next = file->next;
	file->next->prev = file->prev;
	pthread_mutex_unlock(&fs->cmd_files_lock);
}

static void close_cmd_file(struct vhca_sysfs *fs, struct cmd_file *file)
{
	untrack_cmd_file(fs, file);
	vhca_cmd_release(file->uctx);
	free(file);
}

static void run_release(struct vhca_cmdq_item *item)
{
	struct cmd_work *w = (struct cmd_work *)item;

	close_cmd_file(w->file->fs, w->file);
	fuse_reply_err(w->req, 0);
	free(w);
}

static void refuse_release(struct vhca_cmdq_item *item)
{
	/* A release cannot be refused: it waits for nothing, run it. */
	run_release(item);
}

/*
 * A release may wait for the context's stalled engine turn: it takes its
 * function's turn like a command, never a worker's time.
 */
static void release_cmd_file(fuse_req_t req, struct cmd_file *file)
{
	struct cmd_work *w = malloc(sizeof(*w));

	if (!w) {
		close_cmd_file(file->fs, file);
		fuse_reply_err(req, 0);
		return;
	}
	*w = (struct cmd_work){
		.item = {
			.owner_busy = &file->busy,
			.frees_owner = true,
			.run = run_release,
			.refuse = refuse_release,
		},
		.req = req,
		.file = file,
	};
	vhca_cmdq_submit(file->dev, &w->item);
}

/*
 * Each open is one user context, as an open of /dev/infiniband/uverbsN is
 * on a real kernel.  pf->lock is held across vhca_cmd_open() so that the
 * device cannot be destroyed before the new context pins it.
 */
static void open_cmd_file(fuse_req_t req, struct vhca_sysfs *fs,
			  struct node_ref ref, struct fuse_file_info *fi)
{
	struct cmd_file *file;
	struct node_ctx ctx;
	int err = 0;

	file = calloc(1, sizeof(*file));
	if (!file) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_rwlock_rdlock(&fs->pf->lock);
	if (!resolve(fs->pf, ref, &ctx)) {
		err = ENOENT;
	} else {
		errno = 0;
		file->uctx = vhca_cmd_open(ctx.dev);
		if (!file->uctx)
			err = errno ? errno : EIO;
	}
	pthread_rwlock_unlock(&fs->pf->lock);
	if (err) {
		free(file);
		fuse_reply_err(req, err);
		return;
	}

	file->dev = ctx.dev;
	file->fs = fs;
	track_cmd_file(fs, file);
	fi->fh = (uintptr_t)file;
	/*
	 * Every write must reach us, synchronously and unmerged, and writes
	 * of different threads and processes must run in parallel: a
	 * CREATE_COMP_CHANNEL waiting for its pool to be refilled must not
	 * hold out the provider's ADD_CHANNELS on the same file.  libfuse
	 * 3.14 cannot express FOPEN_PARALLEL_DIRECT_WRITES (kernel 6.2+),
	 * so the open reply is sent as raw bytes.
	 */
	struct fuse_open_out out = {
		.fh = fi->fh,
		.open_flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE |
			      FOPEN_STREAM | FOPEN_PARALLEL_DIRECT_WRITES,
	};

	if (fuse_reply_buf(req, (const char *)&out, sizeof(out)))
		close_cmd_file(fs, file);	/* the opener is gone */
}

static void run_cmd(struct vhca_cmdq_item *item)
{
	struct cmd_work *w = (struct cmd_work *)item;
	ssize_t ret;

	ret = vhca_cmd_write(w->file->uctx, w->pid, w->buf, w->len);
	if (ret < 0)
		fuse_reply_err(w->req, (int)-ret);
	else
		fuse_reply_write(w->req, (size_t)ret);
	free(w);
}

static void refuse_cmd(struct vhca_cmdq_item *item)
{
	struct cmd_work *w = (struct cmd_work *)item;

	fuse_reply_err(w->req, EAGAIN);
	free(w);
}

/*
 * Every command waits its turn in its function's queue (cmdq.h), so
 * this worker never waits on a tenant; the provider's channel refill
 * runs at once, without ever waiting.
 */
static void write_cmd_file(fuse_req_t req, struct cmd_file *file,
			   const char *buf, size_t size)
{
	enum vhca_cmd_class class = vhca_cmd_classify(buf, size);
	pid_t pid = fuse_req_ctx(req)->pid;
	struct cmd_work *w;
	ssize_t ret;

	if (class == VHCA_CMD_CLASS_IMMEDIATE) {
		ret = vhca_cmd_write(file->uctx, pid, buf, size);
		if (ret < 0)
			fuse_reply_err(req, (int)-ret);
		else
			fuse_reply_write(req, (size_t)ret);
		return;
	}
	w = malloc(sizeof(*w) + size);
	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	*w = (struct cmd_work){
		.item = {
			.owner_busy = class == VHCA_CMD_CLASS_CONTEXT ?
					      &file->busy :
					      NULL,
			.run = run_cmd,
			.refuse = refuse_cmd,
		},
		.req = req,
		.file = file,
		.pid = pid,
		.len = size,
	};
	memcpy(w->buf, buf, size);
	vhca_cmdq_submit(file->dev, &w->item);
}

/* ---- FUSE: open files ------------------------------------------------------------------- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct node_ref ref = ino_to_ref(ino);

	if (ref.kind == N_UVERBS_CMD)
		open_cmd_file(req, fs, ref, fi);
	else
		open_attribute(req, fs, ref, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);

	/* Responses go to the caller's memory, never through read(). */
	if (ino_to_ref(ino).kind == N_UVERBS_CMD)
		fuse_reply_err(req, EINVAL);
	else
		read_attribute(req, fs, (struct attr_file *)(uintptr_t)fi->fh,
			       size, off);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);

	if (ino_to_ref(ino).kind == N_UVERBS_CMD)
		write_cmd_file(req, (struct cmd_file *)(uintptr_t)fi->fh, buf,
			       size);
	else
		write_attribute(req, fs, (struct attr_file *)(uintptr_t)fi->fh,
				buf, size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (ino_to_ref(ino).kind == N_UVERBS_CMD) {
		release_cmd_file(req, (struct cmd_file *)(uintptr_t)fi->fh);
		return;
	}
	free_attr_file((struct attr_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/*
 * libibverbs probes the ioctl uAPI on the command fd and falls back to the
 * write ABI (and to sysfs for GIDs and P_Keys) only on ENOTTY; libfuse's
 * default answer, ENOSYS, would make it give up instead.
 */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		     void *arg, struct fuse_file_info *fi, unsigned int flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	fuse_reply_err(req, ENOTTY);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct vhca_sysfs *fs = userdata;

	if (fs->events.ready)
		fs->events.ready(fs->events.arg);
}

static const struct fuse_lowlevel_ops sysfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.ioctl = op_ioctl,
};

/* ---- session lifetime ----------------------------------------------------------------- */

int vhca_sysfs_mount(struct vhca_sysfs **out, struct vhca_pf *pf,
		     const char *mountpoint,
		     const struct vhca_sysfs_events *events)
{
	char arg0[] = "vhcad", arg1[] = "-o",
	     arg2[] = "allow_other,default_permissions,fsname=vhca,subtype=vhca";
	char *argv[] = { arg0, arg1, arg2, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct vhca_sysfs *fs;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->pf = pf;
	fs->events = *events;
	atomic_init(&fs->stopping, false);
	clock_gettime(CLOCK_REALTIME, &fs->mount_time);
	pthread_mutex_init(&fs->cmd_files_lock, NULL);
	fs->cmd_files.next = fs->cmd_files.prev = &fs->cmd_files;

	fs->se = fuse_session_new(&args, &sysfs_ops, sizeof(sysfs_ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->se) {
		log_msg("cannot create the FUSE session for %s", mountpoint);
		goto err;
	}
	if (fuse_session_mount(fs->se, mountpoint)) {
		log_msg("cannot mount %s", mountpoint);
		fuse_session_destroy(fs->se);
		goto err;
	}
	*out = fs;
	return 0;

err:
	pthread_mutex_destroy(&fs->cmd_files_lock);
	free(fs);
	return -EIO;
}

static void ignore_kick(int sig)
{
}

static void *serve(void *arg)
{
	struct vhca_sysfs *fs = arg;
	struct fuse_loop_config *config = fuse_loop_cfg_create();
	sigset_t kick;
	int ret;

	sigemptyset(&kick);
	sigaddset(&kick, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	if (!config) {
		log_msg("cannot configure the FUSE loop");
		ret = -ENOMEM;
	} else {
		fuse_loop_cfg_set_clone_fd(config, 1);	/* a /dev/fuse fd each */
		fuse_loop_cfg_set_idle_threads(config, 10);
		/*
		 * Enough workers for every function's executions at once
		 * (cmdq.h) and the attribute reads beside them.
		 */
		fuse_loop_cfg_set_max_threads(config,
					      VHCA_CMDQ_RUNNING *
						      (VHCA_MAX_VFS + 1) +
					      64);
		ret = fuse_session_loop_mt(fs->se, config);
		fuse_loop_cfg_destroy(config);
	}
	if (ret < 0)
		log_msg("serving the sysfs view failed: %s", strerror(-ret));
	if (!atomic_load(&fs->stopping) && fs->events.stopped)
		fs->events.stopped(fs->events.arg);
	return NULL;
}

int vhca_sysfs_start(struct vhca_sysfs *fs)
{
	struct sigaction sa = { .sa_handler = ignore_kick };
	int ret;

	/* No SA_RESTART: the kick must interrupt sem_wait(). */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL))
		return -errno;
	ret = pthread_create(&fs->loop_thread, NULL, serve, fs);
	if (ret) {
		log_msg("cannot start serving: %s", strerror(ret));
		return -ret;
	}
	fs->serving = true;
	return 0;
}

void vhca_sysfs_stop(struct vhca_sysfs *fs)
{
	if (!fs->serving)
		return;
	atomic_store(&fs->stopping, true);
	fuse_session_exit(fs->se);
	/*
	 * The loop's thread sleeps in sem_wait() until a worker finishes or a
	 * signal interrupts it, and a signal that lands just before it goes
	 * to sleep is lost: kick until it has returned.
	 */
	for (;;) {
		struct timespec deadline;

		pthread_kill(fs->loop_thread, KICK_SIGNAL);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 20 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(fs->loop_thread, NULL, &deadline) !=
		    ETIMEDOUT)
			break;
	}
	fs->serving = false;
}

/*
 * Command files still open now belong to processes that lose the device,
 * as on a hot unplug: the kernel will never send their release, so their
 * contexts are released here.
 */
static void release_abandoned_cmd_files(struct vhca_sysfs *fs)
{
	unsigned int count = 0;

	while (fs->cmd_files.next != &fs->cmd_files) {
		close_cmd_file(fs, fs->cmd_files.next);
		count++;
	}
	if (count)
		log_msg("released %u context(s) of processes still attached",
			count);
}

void vhca_sysfs_unmount(struct vhca_sysfs *fs)
{
	vhca_sysfs_stop(fs);
	fuse_session_unmount(fs->se);
	fuse_session_destroy(fs->se);
	release_abandoned_cmd_files(fs);
	pthread_mutex_destroy(&fs->cmd_files_lock);
	free(fs);
}
