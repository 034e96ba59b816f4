/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The device model: one physical function and its virtual functions, what
 * a PF driver and the silicon would hold.  Every HCA (PF or VF) is a
 * struct vhca_dev; the sysfs view renders it, the command path executes
 * against it.
 *
 * Locking: pf->lock (rwlock) protects the VF array and every attribute
 * below it.  Readers (sysfs reads, command execution that needs attributes)
 * take it shared; changes (sriov_numvfs, provisioning) take it exclusive.
 * A device's lifetime is pinned by dev->open_files: a VF with open command
 * files cannot be destroyed (sriov_numvfs answers EBUSY).
 *
 * Change events: a device keeps a list of listeners (each user context's
 * async event file, as ib_register_event_handler() is in the kernel).
 * The list is protected by pf->lock: (un)registering takes it exclusive,
 * and every provisioning change calls the listeners with it held
 * exclusive, so a listener that has been removed is never called again
 * and a change is seen by every context open at the time, exactly once.
 */
#ifndef VHCA_PF_H
#define VHCA_PF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gsi.h"
#include "limits.h"

#define VHCA_MAX_VFS 127		/* sriov_totalvfs default */
#define VHCA_PKEY_TABLE_LEN 128
#define VHCA_GID_TABLE_LEN 16
#define VHCA_DEFAULT_PKEY 0xffff
/* The default GID prefix, fe80::/64: GID 0 is it and the port GUID. */
#define VHCA_SUBNET_PREFIX 0xfe80000000000000ULL
#define VHCA_NAME_MAX 32
#define VHCA_PF_NAME "vhca0"
#define VHCA_FW_VER "1.0.0"
#define VHCA_VENDOR_ID 0x02c9	/* shown as vendor id, like an IB HCA */
#define VHCA_VENDOR_PART_ID 0x1ca1
#define VHCA_HW_VER 1
#define VHCA_BOARD_ID "VHCA-0001"
/* IP addresses a VF's port may hold (its IPoIB interface's, addr.c). */
#define VHCA_ADDRS_MAX 8

enum vhca_vf_policy {
	VHCA_POLICY_DOWN,
	VHCA_POLICY_UP,
	VHCA_POLICY_FOLLOW,
};

/* Port attributes, kept in IB encodings (enum ibv_port_state etc.). */
struct vhca_port {
	uint8_t state;		/* IBV_PORT_ACTIVE */
	uint8_t phys_state;	/* 5 = LinkUp */
	uint8_t active_mtu;	/* IBV_MTU_4096 */
	uint8_t active_width;	/* 2 = 4X */
	uint8_t active_speed;	/* 32 = EDR (25 Gb/s per lane) */
	uint8_t lmc;
	uint8_t sm_sl;
	uint16_t lid;
	uint16_t sm_lid;
	uint32_t cap_flags;
	uint16_t pkeys[VHCA_PKEY_TABLE_LEN];	/* 0 = empty entry */
};

/*
 * Port counters (PMA PortCounters as the kernel names them under
 * ports/1/counters/, plus the driver-specific Q_Key violation count under
 * ports/1/hw_counters/).  Data counters count 4-octet words, like the PMA.
 * The engine bumps them with vhca_counter_add(); no lock needed.
 */
enum vhca_counter {
	VHCA_CNT_XMIT_DATA,
	VHCA_CNT_RCV_DATA,
	VHCA_CNT_XMIT_PACKETS,
	VHCA_CNT_RCV_PACKETS,
	VHCA_CNT_RCV_CONSTRAINT_ERRORS,
	VHCA_CNT_XMIT_CONSTRAINT_ERRORS,
	VHCA_CNT_QKEY_VIOLATIONS,
	VHCA_CNT_RCV_SOURCE_ERRORS,	/* RC/UC from a port or QP not its peer */
	VHCA_CNT_RCV_DROPPED,		/* a context's inbox was full */
	VHCA_CNT_MAX
};

struct vhca_port_counters {
	_Atomic uint64_t value[VHCA_CNT_MAX];
};

/* What changed on a device (for vhca_pf_hooks.dev_changed). */
enum vhca_change {
	VHCA_CHANGE_GID,	/* port GUID, hence GID 0 (IBV_EVENT_GID_CHANGE) */
	VHCA_CHANGE_PKEY,	/* P_Key table (IBV_EVENT_PKEY_CHANGE) */
	VHCA_CHANGE_PORT_ACTIVE,	/* port went ACTIVE (IBV_EVENT_PORT_ACTIVE) */
	VHCA_CHANGE_PORT_ERR,	/* port left ACTIVE (IBV_EVENT_PORT_ERR) */
	VHCA_CHANGE_ADDR,	/* its IP addresses (no verbs event) */
};

/* An IP address of a port, as `ip addr` shows it (addr.c). */
struct vhca_ip_addr {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t prefix_len;	/* at most 32 or 128 */
	uint8_t addr[16];	/* network order; IPv4 in the first 4 bytes */
};

/* Resource counts of a device, for the status view and leak tests. */
struct vhca_dev_stats {
	atomic_uint contexts;
	atomic_uint dctxs;		/* device contexts, until their last user */
	atomic_uint pds;
	atomic_uint mrs;
	atomic_uint comp_channels;
	atomic_uint qps;
	atomic_uint cqs;
	atomic_uint srqs;
	_Atomic uint64_t queue_bytes;	/* queue memory mapped for it */
	atomic_uint fds;		/* vhcad fds its contexts hold */
	atomic_uint mcast_attached;	/* its QPs' multicast attachments */
};

struct vhca_pf;
struct vhca_dev;
struct vhca_mcast_table;
struct vhca_devcmd_port;
struct vhca_event_sink;
struct vhca_vf_port;

/*
 * Someone to tell about a device's changes.  Called with pf->lock held
 * exclusive: must not take pf->lock and must not block (it runs on the
 * provisioning path, which an admin is waiting on).  The list is an
 * hlist: a zeroed device has an empty one.
 */
struct vhca_dev_listener {
	struct vhca_dev_listener *next;
	struct vhca_dev_listener **pprev;	/* NULL while not listening */
	void (*changed)(struct vhca_dev_listener *listener,
			struct vhca_dev *dev, enum vhca_change what);
};

struct vhca_dev {
	struct vhca_pf *pf;
	char name[VHCA_NAME_MAX];	/* vhca0, vhca0_vf3 */
	bool is_vf;
	unsigned int vf_index;		/* valid when is_vf */
	int uverbs_index;		/* N of /dev/infiniband/uverbsN */
	uint64_t node_guid;		/* host byte order */
	uint64_t port_guid;
	uint64_t sys_image_guid;
	char node_desc[64];
	enum vhca_vf_policy policy;	/* VFs only */
	struct vhca_port port;		/* one port, number 1 */
	/* IPoIB addresses of the port, provisioned through the PF */
	struct vhca_ip_addr addrs[VHCA_ADDRS_MAX];
	unsigned int num_addrs;
	struct vhca_gsi gsi;		/* QP1's receive queue (gsi.h) */
	/*
	 * Users that pin the device: open command files, and device
	 * contexts until their last reference (a packet in flight to them).
	 */
	atomic_uint open_files;
	struct vhca_quota quota;	/* its share of the daemon (limits.h) */
	atomic_uint engine_turns;	/* turns of its contexts running now */
	struct vhca_dev_stats stats;
	struct vhca_port_counters counters;	/* port 1 */
	struct vhca_dev_listener *listeners;	/* under pf->lock */
	/*
	 * The in-process command port (devcmd.h) of vhcad's own driver, or
	 * NULL (a VM's copy of its function has none: its device is
	 * elsewhere).
	 */
	struct vhca_devcmd_port *devcmd;
	/* Attached to a VM (driver/vm_attach.c): the host cannot open it. */
	struct vhca_vf_port *vm_port;	/* under pf->lock */
};

/* Hooks the device model calls when a device appears or goes away. */
struct vhca_pf_hooks {
	/* claim /dev/infiniband/uverbsN; returns N or -errno */
	int (*claim_uverbs)(void *arg);
	void (*release_uverbs)(void *arg, int index);
	/*
	 * Optional: called after each applied provisioning change, with
	 * pf->lock held exclusive (dev stays valid; must not take pf->lock).
	 */
	void (*dev_changed)(void *arg, struct vhca_dev *dev,
			    enum vhca_change what);
	/*
	 * Optional: @dev is about to be freed (a VF destroyed), with
	 * pf->lock held exclusive; whoever kept its pointer forgets it.
	 */
	void (*dev_removed)(void *arg, struct vhca_dev *dev);
	/* Where events of vhcad's own driver's contexts go (in-process). */
	const struct vhca_event_sink *sink;
	void *arg;
};

struct vhca_pf {
	pthread_rwlock_t lock;
	struct vhca_dev dev;		/* the PF itself, vhca0 */
	struct vhca_dev *vfs[VHCA_MAX_VFS];
	unsigned int num_vfs;
	unsigned int total_vfs;
	uint64_t guid_base;		/* per-host base of all default GUIDs */
	/*
	 * A VM's copy of its function (kernel-shim/guest/function.c): the
	 * PF is not the VM's, and is in no listing; vfs[0] is the VF.
	 */
	bool pf_hidden;
	struct vhca_pf_hooks hooks;
	struct vhca_mcast_table *mcast;	/* its switch's groups (mcast.h) */
};

int vhca_pf_init(struct vhca_pf *pf, uint64_t guid_base,
		 const struct vhca_pf_hooks *hooks);
/*
 * The in-process command port of @dev (pf.c opens one for each function
 * when the hooks name a sink; tests that build a device by hand call
 * these).
 */
int vhca_dev_open_port(struct vhca_dev *dev,
		       const struct vhca_event_sink *sink);
void vhca_dev_close_port(struct vhca_dev *dev);
void vhca_pf_fini(struct vhca_pf *pf);

/*
 * sriov_numvfs semantics of the kernel: 0 -> N or N -> 0 only (N == current
 * is a no-op), N <= total_vfs.  Returns 0 or -EINVAL/-EBUSY/-errno; on error
 * nothing changed.  Takes pf->lock exclusive itself.
 */
int vhca_pf_set_num_vfs(struct vhca_pf *pf, unsigned int num_vfs);

/*
 * Tells the pf hook and @dev's listeners that @what changed; caller holds
 * pf->lock exclusive (listeners cannot come or go).
 */
void vhca_dev_notify(struct vhca_dev *dev, enum vhca_change what);

/* Lookups; caller holds pf->lock (shared or exclusive). */
struct vhca_dev *vhca_pf_find_by_name(struct vhca_pf *pf, const char *name);
/*
 * The device whose port has @lid, without pf->lock: the data path's
 * lookup.  LIDs are static (PF 1, VF k 2 + k), so this is an index; the
 * pointer may name a VF being destroyed, so the caller only compares it
 * with the device of a live object it found otherwise.
 */
struct vhca_dev *vhca_pf_dev_by_lid(struct vhca_pf *pf, uint16_t lid);
struct vhca_dev *vhca_pf_find_by_uverbs(struct vhca_pf *pf, int index);
/*
 * Change listeners (see the top of this file).  Both take pf->lock
 * exclusive, so the caller must not hold it.  Unlisten is a no-op for a
 * listener not listening; once it returns, @l is not called again.
 */
void vhca_dev_listen(struct vhca_dev *dev, struct vhca_dev_listener *l);
void vhca_dev_unlisten(struct vhca_dev *dev, struct vhca_dev_listener *l);

/* Calls fn for the PF then each VF in order; stops at nonzero return. */
int vhca_pf_for_each_dev(struct vhca_pf *pf,
			 int (*fn)(struct vhca_dev *dev, void *arg), void *arg);

/* ---- provisioning (pf.c) ----
 * VFs are named by index; -ENODEV if vf >= num_vfs.  Re-created VFs
 * (sriov_numvfs 0 -> N) start with the default identity: provisioning
 * lives and dies with the VF, as on mlx5.  Each call takes
 * pf->lock exclusive, validates, and applies all or nothing (-EINVAL and
 * no change on a bad value).  GUIDs: not 0, not all-ones, not equal to any
 * other device's node or port GUID on this PF.  P_Keys: 0 = empty entry;
 * 0x8000 (membership bit, no partition) is invalid; a partition (low 15
 * bits) appears at most once per table.
 */
int vhca_pf_set_vf_node_guid(struct vhca_pf *pf, unsigned int vf,
			     uint64_t guid);
int vhca_pf_set_vf_port_guid(struct vhca_pf *pf, unsigned int vf,
			     uint64_t guid);
int vhca_pf_set_vf_policy(struct vhca_pf *pf, unsigned int vf,
			  enum vhca_vf_policy policy);
int vhca_pf_set_vf_pkey(struct vhca_pf *pf, unsigned int vf,
			unsigned int index, uint16_t pkey);
/*
 * The VF's whole address list (@n <= VHCA_ADDRS_MAX).  An address is
 * valid when it is a unicast address of its family (not unspecified,
 * loopback, multicast or IPv4 broadcast) with a prefix length the family
 * allows, and it is held by one port of the PF at most.
 */
int vhca_pf_set_vf_addrs(struct vhca_pf *pf, unsigned int vf,
			 const struct vhca_ip_addr *addrs, unsigned int n);

/* ---- addresses (addr.c); callers hold pf->lock (shared or exclusive) ---- */

bool vhca_ip_addr_valid(const struct vhca_ip_addr *a);
bool vhca_ip_addr_same(const struct vhca_ip_addr *a,
		       const struct vhca_ip_addr *b);	/* ignores prefixes */
/* Does @prefix (an address and its length) contain @addr? */
bool vhca_ip_addr_in_prefix(const struct vhca_ip_addr *prefix,
			    const struct vhca_ip_addr *addr);
/* The function whose port holds @a (family and bytes), or NULL. */
struct vhca_dev *vhca_pf_dev_by_addr(struct vhca_pf *pf,
				     const struct vhca_ip_addr *a);
/* The function whose port GID 0 is @prefix:@guid, or NULL. */
struct vhca_dev *vhca_pf_dev_by_gid(struct vhca_pf *pf, uint64_t prefix,
				    uint64_t guid);
/*
 * Validates a whole list of one function: each valid, none twice.
 * -EINVAL otherwise.
 */
int vhca_ip_addrs_check(const struct vhca_ip_addr *addrs, unsigned int n);
/*
 * "10.0.0.1/24" or "fd00::1/64" (a missing prefix means /32 or /128);
 * 0 or -EINVAL.  Formats into @buf (at least 64 bytes).
 */
int vhca_ip_addr_parse(const char *text, size_t len, struct vhca_ip_addr *a);
void vhca_ip_addr_format(const struct vhca_ip_addr *a, char *buf,
			 size_t len);

/* One VF's part of a plan; .set says which fields apply. */
#define VHCA_PLAN_NODE_GUID 0x1u
#define VHCA_PLAN_PORT_GUID 0x2u
#define VHCA_PLAN_POLICY 0x4u
#define VHCA_PLAN_PKEYS 0x8u	/* the whole table */
#define VHCA_PLAN_ADDRS 0x10u	/* the whole address list */
struct vhca_vf_plan {
	unsigned int vf;
	unsigned int set;
	uint64_t node_guid;
	uint64_t port_guid;
	enum vhca_vf_policy policy;
	uint16_t pkeys[VHCA_PKEY_TABLE_LEN];
	unsigned int num_addrs;
	struct vhca_ip_addr addrs[VHCA_ADDRS_MAX];
};

struct vhca_plan {
	unsigned int count;
	const struct vhca_vf_plan *vfs;	/* in order; later entries win */
};

/*
 * Validates the state the whole plan produces, then applies it all or
 * nothing.  0, -ENODEV (no such VF), -EINVAL (bad value), -ENOMEM.
 */
int vhca_pf_apply_plan(struct vhca_pf *pf, const struct vhca_plan *plan);

/* Policy names "Up", "Down", "Follow"; parse returns -EINVAL if unknown. */
const char *vhca_policy_name(enum vhca_vf_policy policy);
int vhca_policy_parse(const char *name, size_t len,
		      enum vhca_vf_policy *out);

/* Counter names as sysfs shows them; NULL past the end. */
const char *vhca_counter_name(enum vhca_counter counter);
/* The counter called name (sysfs file name), or -1. */
int vhca_counter_by_name(const char *name);
static inline void vhca_counter_add(struct vhca_dev *dev,
				    enum vhca_counter counter, uint64_t n)
{
	atomic_fetch_add_explicit(&dev->counters.value[counter], n,
				  memory_order_relaxed);
}

/* Derive a per-host GUID base from /etc/machine-id (stable across runs). */
uint64_t vhca_default_guid_base(void);

/* Formats "xxxx:xxxx:xxxx:xxxx" (sysfs node_guid style); buf >= 20 bytes. */
void vhca_format_guid(uint64_t guid, char *buf, size_t len);

#endif /* VHCA_PF_H */
