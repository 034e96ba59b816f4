/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The libibverbs private provider ABI "PABI 34" (symbol version
 * IBVERBS_PRIVATE_34, rdma-core v34 .. v57), declared by us.
 *
 * rdma-core does not install its provider headers (libibverbs/driver.h,
 * kern-abi.h), so an out-of-tree provider has to declare the part of the
 * interface it uses itself.  Only that subset is here, but every structure
 * that crosses the boundary has the exact PABI 34 layout: libibverbs reads
 * and writes these objects with its own definitions.  Where a size or an
 * offset can be derived from an installed public header (<infiniband/verbs.h>,
 * <rdma/ib_user_verbs.h>) it is checked with static_assert.
 *
 * Command buffers are built the way kern-abi.h builds them: a
 * struct ib_uverbs_cmd_hdr (or the extended header) followed by the kernel's
 * core payload, after which the provider's udata follows.  The core payload
 * fields are spelled out here instead of embedding the kernel structure,
 * because most of those end in a flexible array member and may not be
 * embedded portably; the asserts tie each copy to the kernel layout.
 */
#ifndef VHCA_PABI34_H
#define VHCA_PABI34_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>

#define VERBS_PABI_VERSION 34

/* ------------------------------------------------------------------ */
/* Device matching                                                     */
/* ------------------------------------------------------------------ */

enum {
	VERBS_MATCH_SENTINEL = 0,
	VERBS_MATCH_PCI = 1,
	VERBS_MATCH_MODALIAS = 2,
	VERBS_MATCH_DRIVER_ID = 3,
};

struct verbs_match_ent {
	void *driver_data;
	union {
		const char *modalias;
		uint64_t driver_id;
	} u;
	uint16_t vendor;
	uint16_t device;
	uint8_t kind;
};

/*
 * Match on the IB device name.  libibverbs formats "rdma_device:N<ibdev>"
 * and fnmatch()es it against the modalias pattern of the entry, so the
 * pattern below accepts every ibdev whose name starts with @prefix.
 */
#define VERBS_NAME_MATCH(prefix, data)                                         \
	{                                                                      \
		.driver_data = (data),                                         \
		.u.modalias = "rdma_device:*N" prefix "*",                     \
		.kind = VERBS_MATCH_MODALIAS,                                  \
	}

/* Layout-only stand-in for ccan's struct list_node. */
struct verbs_pabi_list_node {
	struct verbs_pabi_list_node *next;
	struct verbs_pabi_list_node *prev;
};

/*
 * An rdma device found in sysfs, owned by libibverbs.  The vhca provider
 * only passes the pointer around and reads none of the fields (they are
 * not guaranteed stable across PABI 34 releases); the layout is the
 * rdma-core v44 one for reference.
 */
struct verbs_sysfs_dev {
	struct verbs_pabi_list_node entry;
	void *provider_data;
	const struct verbs_match_ent *match;
	unsigned int flags;
	char sysfs_name[IBV_SYSFS_NAME_MAX];
	dev_t sysfs_cdev;
	char ibdev_name[IBV_SYSFS_NAME_MAX];
	char ibdev_path[IBV_SYSFS_PATH_MAX];
	char modalias[512];
	uint64_t node_guid;
	uint32_t driver_id;
	enum ibv_node_type node_type;
	int ibdev_idx;
	uint32_t num_ports;
	uint32_t abi_ver;
	struct timespec time_created;
};

/* ------------------------------------------------------------------ */
/* Provider and device objects                                         */
/* ------------------------------------------------------------------ */

struct verbs_device;

struct verbs_device_ops {
	const char *name;

	uint32_t match_min_abi_version;
	uint32_t match_max_abi_version;
	const struct verbs_match_ent *match_table;
	const struct verbs_device_ops **static_providers;

	bool (*match_device)(struct verbs_sysfs_dev *sysfs_dev);

	struct verbs_context *(*alloc_context)(struct ibv_device *device,
					       int cmd_fd, void *private_data);
	struct verbs_context *(*import_context)(struct ibv_device *device,
						int cmd_fd);

	struct verbs_device *(*alloc_device)(struct verbs_sysfs_dev *sysfs_dev);
	void (*uninit_device)(struct verbs_device *device);
};

/*
 * Allocated (zeroed) by the provider's alloc_device, usually embedded at the
 * start of a provider structure; libibverbs fills in ops, refcount, entry,
 * sysfs and core_support, and hands it back to uninit_device.
 */
struct verbs_device {
	struct ibv_device device; /* must be first */
	const struct verbs_device_ops *ops;
	atomic_int refcount;
	struct verbs_pabi_list_node entry;
	struct verbs_sysfs_dev *sysfs;
	uint64_t core_support;
};
static_assert(offsetof(struct verbs_device, device) == 0,
	      "struct ibv_device must start struct verbs_device");

static inline struct verbs_device *verbs_get_device(const struct ibv_device *dev)
{
	return (struct verbs_device *)((uintptr_t)dev -
				       offsetof(struct verbs_device, device));
}

/* struct verbs_context itself is public (<infiniband/verbs.h>). */
static_assert(offsetof(struct verbs_context, context) +
			      sizeof(struct ibv_context) ==
		      sizeof(struct verbs_context),
	      "struct ibv_context must end struct verbs_context");

/* Opaque here: the vhca provider has no XRC domains. */
struct verbs_xrcd;

enum verbs_qp_mask {
	VERBS_QP_XRCD = 1 << 0,
	VERBS_QP_EX = 1 << 1, /* qp_ex is valid: ibv_qp_to_qp_ex() works */
};

/*
 * What ibv_cmd_create_qp_ex() fills in (it sets comp_mask to 0); the
 * provider sets VERBS_QP_EX when it offers the ibv_wr_* send API.
 */
struct verbs_qp {
	union {
		struct ibv_qp qp;
		struct ibv_qp_ex qp_ex;
	};
	uint32_t comp_mask;
	struct verbs_xrcd *xrcd;
};
static_assert(offsetof(struct ibv_qp_ex, qp_base) == 0, "Invalid qp layout");
static_assert(offsetof(struct verbs_qp, qp) == 0 &&
		      offsetof(struct verbs_qp, qp_ex) == 0,
	      "struct ibv_qp must start struct verbs_qp");

enum ibv_mr_type {
	IBV_MR_TYPE_MR,
	IBV_MR_TYPE_NULL_MR,
	IBV_MR_TYPE_IMPORTED_MR,
	IBV_MR_TYPE_DMABUF_MR,
};

/* What ibv_cmd_reg_mr() fills in and reg_mr/dereg_mr exchange. */
struct verbs_mr {
	struct ibv_mr ibv_mr; /* must be first */
	enum ibv_mr_type mr_type;
	int access;
};
static_assert(offsetof(struct verbs_mr, ibv_mr) == 0,
	      "struct ibv_mr must start struct verbs_mr");

/*
 * Every operation a provider can supply, in the PABI 34 order (the list is
 * kept sorted by name in rdma-core).  verbs_set_ops() copies the non-NULL
 * members, so the whole layout must match, not just the members we set.
 */
struct verbs_context_ops {
	int (*advise_mr)(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
			 uint32_t flags, struct ibv_sge *sg_list,
			 uint32_t num_sges);
	struct ibv_dm *(*alloc_dm)(struct ibv_context *context,
				   struct ibv_alloc_dm_attr *attr);
	struct ibv_mw *(*alloc_mw)(struct ibv_pd *pd, enum ibv_mw_type type);
	struct ibv_mr *(*alloc_null_mr)(struct ibv_pd *pd);
	struct ibv_pd *(*alloc_parent_domain)(
		struct ibv_context *context,
		struct ibv_parent_domain_init_attr *attr);
	struct ibv_pd *(*alloc_pd)(struct ibv_context *context);
	struct ibv_td *(*alloc_td)(struct ibv_context *context,
				   struct ibv_td_init_attr *init_attr);
	void (*async_event)(struct ibv_context *context,
			    struct ibv_async_event *event);
	int (*attach_counters_point_flow)(struct ibv_counters *counters,
					  struct ibv_counter_attach_attr *attr,
					  struct ibv_flow *flow);
	int (*attach_mcast)(struct ibv_qp *qp, const union ibv_gid *gid,
			    uint16_t lid);
	int (*bind_mw)(struct ibv_qp *qp, struct ibv_mw *mw,
		       struct ibv_mw_bind *mw_bind);
	int (*close_xrcd)(struct ibv_xrcd *xrcd);
	void (*cq_event)(struct ibv_cq *cq);
	struct ibv_ah *(*create_ah)(struct ibv_pd *pd, struct ibv_ah_attr *attr);
	struct ibv_counters *(*create_counters)(
		struct ibv_context *context,
		struct ibv_counters_init_attr *init_attr);
	struct ibv_cq *(*create_cq)(struct ibv_context *context, int cqe,
				    struct ibv_comp_channel *channel,
				    int comp_vector);
	struct ibv_cq_ex *(*create_cq_ex)(struct ibv_context *context,
					  struct ibv_cq_init_attr_ex *init_attr);
	struct ibv_flow *(*create_flow)(struct ibv_qp *qp,
					struct ibv_flow_attr *flow_attr);
	struct ibv_flow_action *(*create_flow_action_esp)(
		struct ibv_context *context,
		struct ibv_flow_action_esp_attr *attr);
	struct ibv_qp *(*create_qp)(struct ibv_pd *pd,
				    struct ibv_qp_init_attr *attr);
	struct ibv_qp *(*create_qp_ex)(struct ibv_context *context,
				       struct ibv_qp_init_attr_ex *qp_init_attr_ex);
	struct ibv_rwq_ind_table *(*create_rwq_ind_table)(
		struct ibv_context *context,
		struct ibv_rwq_ind_table_init_attr *init_attr);
	struct ibv_srq *(*create_srq)(struct ibv_pd *pd,
				      struct ibv_srq_init_attr *srq_init_attr);
	struct ibv_srq *(*create_srq_ex)(
		struct ibv_context *context,
		struct ibv_srq_init_attr_ex *srq_init_attr_ex);
	struct ibv_wq *(*create_wq)(struct ibv_context *context,
				    struct ibv_wq_init_attr *wq_init_attr);
	int (*dealloc_mw)(struct ibv_mw *mw);
	int (*dealloc_pd)(struct ibv_pd *pd);
	int (*dealloc_td)(struct ibv_td *td);
	int (*dereg_mr)(struct verbs_mr *vmr);
	int (*destroy_ah)(struct ibv_ah *ah);
	int (*destroy_counters)(struct ibv_counters *counters);
	int (*destroy_cq)(struct ibv_cq *cq);
	int (*destroy_flow)(struct ibv_flow *flow);
	int (*destroy_flow_action)(struct ibv_flow_action *action);
	int (*destroy_qp)(struct ibv_qp *qp);
	int (*destroy_rwq_ind_table)(struct ibv_rwq_ind_table *rwq_ind_table);
	int (*destroy_srq)(struct ibv_srq *srq);
	int (*destroy_wq)(struct ibv_wq *wq);
	int (*detach_mcast)(struct ibv_qp *qp, const union ibv_gid *gid,
			    uint16_t lid);
	void (*free_context)(struct ibv_context *context);
	int (*free_dm)(struct ibv_dm *dm);
	int (*get_srq_num)(struct ibv_srq *srq, uint32_t *srq_num);
	struct ibv_dm *(*import_dm)(struct ibv_context *context,
				    uint32_t dm_handle);
	struct ibv_mr *(*import_mr)(struct ibv_pd *pd, uint32_t mr_handle);
	struct ibv_pd *(*import_pd)(struct ibv_context *context,
				    uint32_t pd_handle);
	int (*modify_cq)(struct ibv_cq *cq, struct ibv_modify_cq_attr *attr);
	int (*modify_flow_action_esp)(struct ibv_flow_action *action,
				      struct ibv_flow_action_esp_attr *attr);
	int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr,
			 int attr_mask);
	int (*modify_qp_rate_limit)(struct ibv_qp *qp,
				    struct ibv_qp_rate_limit_attr *attr);
	int (*modify_srq)(struct ibv_srq *srq, struct ibv_srq_attr *srq_attr,
			  int srq_attr_mask);
	int (*modify_wq)(struct ibv_wq *wq, struct ibv_wq_attr *wq_attr);
	struct ibv_qp *(*open_qp)(struct ibv_context *context,
				  struct ibv_qp_open_attr *attr);
	struct ibv_xrcd *(*open_xrcd)(struct ibv_context *context,
				      struct ibv_xrcd_init_attr *xrcd_init_attr);
	int (*poll_cq)(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);
	int (*post_recv)(struct ibv_qp *qp, struct ibv_recv_wr *wr,
			 struct ibv_recv_wr **bad_wr);
	int (*post_send)(struct ibv_qp *qp, struct ibv_send_wr *wr,
			 struct ibv_send_wr **bad_wr);
	int (*post_srq_ops)(struct ibv_srq *srq, struct ibv_ops_wr *op,
			    struct ibv_ops_wr **bad_op);
	int (*post_srq_recv)(struct ibv_srq *srq, struct ibv_recv_wr *recv_wr,
			     struct ibv_recv_wr **bad_recv_wr);
	int (*query_device_ex)(struct ibv_context *context,
			       const struct ibv_query_device_ex_input *input,
			       struct ibv_device_attr_ex *attr,
			       size_t attr_size);
	int (*query_ece)(struct ibv_qp *qp, struct ibv_ece *ece);
	int (*query_port)(struct ibv_context *context, uint8_t port_num,
			  struct ibv_port_attr *port_attr);
	int (*query_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr,
			int attr_mask, struct ibv_qp_init_attr *init_attr);
	int (*query_qp_data_in_order)(struct ibv_qp *qp, enum ibv_wr_opcode op,
				      uint32_t flags);
	int (*query_rt_values)(struct ibv_context *context,
			       struct ibv_values_ex *values);
	int (*query_srq)(struct ibv_srq *srq, struct ibv_srq_attr *srq_attr);
	int (*read_counters)(struct ibv_counters *counters,
			     uint64_t *counters_value, uint32_t ncounters,
			     uint32_t flags);
	struct ibv_mr *(*reg_dm_mr)(struct ibv_pd *pd, struct ibv_dm *dm,
				    uint64_t dm_offset, size_t length,
				    unsigned int access);
	struct ibv_mr *(*reg_dmabuf_mr)(struct ibv_pd *pd, uint64_t offset,
					size_t length, uint64_t iova, int fd,
					int access);
	struct ibv_mr *(*reg_mr)(struct ibv_pd *pd, void *addr, size_t length,
				 uint64_t hca_va, int access);
	int (*req_notify_cq)(struct ibv_cq *cq, int solicited_only);
	int (*rereg_mr)(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
			void *addr, size_t length, int access);
	int (*resize_cq)(struct ibv_cq *cq, int cqe);
	int (*set_ece)(struct ibv_qp *qp, struct ibv_ece *ece);
	void (*unimport_dm)(struct ibv_dm *dm);
	void (*unimport_mr)(struct ibv_mr *mr);
	void (*unimport_pd)(struct ibv_pd *pd);
};
/* 76 operations in PABI 34 (rdma-core v44: VERBS_OPS_NUM). */
static_assert(sizeof(struct verbs_context_ops) == 76 * sizeof(void *),
	      "verbs_context_ops must have the 76 PABI 34 members");

/* ------------------------------------------------------------------ */
/* Write-ABI command buffers (kern-abi.h equivalents)                  */
/* ------------------------------------------------------------------ */

/* Header of the extended write commands. */
struct ex_hdr {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_ex_cmd_hdr ex_hdr;
};

/*
 * Check that struct @name is @hdr followed by exactly the kernel's
 * struct @kabi, and that its member @memb sits where the kernel's does.
 */
#define VERBS_PABI_CHECK_CMD(name, hdr, kabi, memb)                            \
	static_assert(sizeof(struct name) ==                                   \
			      sizeof(hdr) + sizeof(struct kabi),               \
		      "bad size of struct " #name);                            \
	static_assert(offsetof(struct name, memb) ==                           \
			      sizeof(hdr) + offsetof(struct kabi, memb),       \
		      "bad offset of " #name "." #memb)

/* IB_USER_VERBS_CMD_GET_CONTEXT */
struct ibv_get_context {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
};
VERBS_PABI_CHECK_CMD(ibv_get_context, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_get_context, response);

/* IB_USER_VERBS_CMD_QUERY_DEVICE */
struct ibv_query_device {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
};
VERBS_PABI_CHECK_CMD(ibv_query_device, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_query_device, response);

/* IB_USER_VERBS_EX_CMD_QUERY_DEVICE */
struct ibv_query_device_ex {
	struct ex_hdr hdr;
	__u32 comp_mask;
	__u32 reserved;
};
VERBS_PABI_CHECK_CMD(ibv_query_device_ex, struct ex_hdr,
		     ib_uverbs_ex_query_device, reserved);

/* IB_USER_VERBS_CMD_QUERY_PORT */
struct ibv_query_port {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__u8 port_num;
	__u8 reserved[7];
};
VERBS_PABI_CHECK_CMD(ibv_query_port, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_query_port, port_num);

/* IB_USER_VERBS_CMD_ALLOC_PD */
struct ibv_alloc_pd {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
};
VERBS_PABI_CHECK_CMD(ibv_alloc_pd, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_alloc_pd, response);

/* IB_USER_VERBS_CMD_DEALLOC_PD */
struct ibv_dealloc_pd {
	struct ib_uverbs_cmd_hdr hdr;
	__u32 pd_handle;
};
VERBS_PABI_CHECK_CMD(ibv_dealloc_pd, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_dealloc_pd, pd_handle);

/* IB_USER_VERBS_CMD_REG_MR */
struct ibv_reg_mr {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__aligned_u64 start;
	__aligned_u64 length;
	__aligned_u64 hca_va;
	__u32 pd_handle;
	__u32 access_flags;
};
VERBS_PABI_CHECK_CMD(ibv_reg_mr, struct ib_uverbs_cmd_hdr, ib_uverbs_reg_mr,
		     access_flags);

/* IB_USER_VERBS_CMD_REREG_MR */
struct ibv_rereg_mr {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__u32 mr_handle;
	__u32 flags;
	__aligned_u64 start;
	__aligned_u64 length;
	__aligned_u64 hca_va;
	__u32 pd_handle;
	__u32 access_flags;
};
VERBS_PABI_CHECK_CMD(ibv_rereg_mr, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_rereg_mr, access_flags);

/* IB_USER_VERBS_CMD_DEREG_MR */
struct ibv_dereg_mr {
	struct ib_uverbs_cmd_hdr hdr;
	__u32 mr_handle;
};
VERBS_PABI_CHECK_CMD(ibv_dereg_mr, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_dereg_mr, mr_handle);

/* IB_USER_VERBS_CMD_CREATE_CQ */
struct ibv_create_cq {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__aligned_u64 user_handle;
	__u32 cqe;
	__u32 comp_vector;
	__s32 comp_channel;
	__u32 reserved;
};
VERBS_PABI_CHECK_CMD(ibv_create_cq, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_create_cq, comp_channel);

/* IB_USER_VERBS_CMD_RESIZE_CQ */
struct ibv_resize_cq {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__u32 cq_handle;
	__u32 cqe;
};
VERBS_PABI_CHECK_CMD(ibv_resize_cq, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_resize_cq, cqe);

/* IB_USER_VERBS_CMD_CREATE_QP */
struct ibv_create_qp {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__aligned_u64 user_handle;
	__u32 pd_handle;
	__u32 send_cq_handle;
	__u32 recv_cq_handle;
	__u32 srq_handle;
	__u32 max_send_wr;
	__u32 max_recv_wr;
	__u32 max_send_sge;
	__u32 max_recv_sge;
	__u32 max_inline_data;
	__u8 sq_sig_all;
	__u8 qp_type;
	__u8 is_srq;
	__u8 reserved;
};
VERBS_PABI_CHECK_CMD(ibv_create_qp, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_create_qp, is_srq);

/* IB_USER_VERBS_CMD_MODIFY_QP (no response) */
struct ibv_modify_qp {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_qp_dest dest;
	struct ib_uverbs_qp_dest alt_dest;
	__u32 qp_handle;
	__u32 attr_mask;
	__u32 qkey;
	__u32 rq_psn;
	__u32 sq_psn;
	__u32 dest_qp_num;
	__u32 qp_access_flags;
	__u16 pkey_index;
	__u16 alt_pkey_index;
	__u8 qp_state;
	__u8 cur_qp_state;
	__u8 path_mtu;
	__u8 path_mig_state;
	__u8 en_sqd_async_notify;
	__u8 max_rd_atomic;
	__u8 max_dest_rd_atomic;
	__u8 min_rnr_timer;
	__u8 port_num;
	__u8 timeout;
	__u8 retry_cnt;
	__u8 rnr_retry;
	__u8 alt_port_num;
	__u8 alt_timeout;
	__u8 reserved[2];
};
VERBS_PABI_CHECK_CMD(ibv_modify_qp, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_modify_qp, alt_timeout);

/* IB_USER_VERBS_CMD_QUERY_QP */
struct ibv_query_qp {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__u32 qp_handle;
	__u32 attr_mask;
};
VERBS_PABI_CHECK_CMD(ibv_query_qp, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_query_qp, attr_mask);

/* IB_USER_VERBS_CMD_CREATE_SRQ */
struct ibv_create_srq {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__aligned_u64 user_handle;
	__u32 pd_handle;
	__u32 max_wr;
	__u32 max_sge;
	__u32 srq_limit;
};
VERBS_PABI_CHECK_CMD(ibv_create_srq, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_create_srq, srq_limit);

/* IB_USER_VERBS_CMD_MODIFY_SRQ (no response) */
struct ibv_modify_srq {
	struct ib_uverbs_cmd_hdr hdr;
	__u32 srq_handle;
	__u32 attr_mask;
	__u32 max_wr;
	__u32 srq_limit;
};
VERBS_PABI_CHECK_CMD(ibv_modify_srq, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_modify_srq, srq_limit);

/* IB_USER_VERBS_CMD_QUERY_SRQ */
struct ibv_query_srq {
	struct ib_uverbs_cmd_hdr hdr;
	__aligned_u64 response;
	__u32 srq_handle;
	__u32 reserved;
};
VERBS_PABI_CHECK_CMD(ibv_query_srq, struct ib_uverbs_cmd_hdr,
		     ib_uverbs_query_srq, reserved);

/* ------------------------------------------------------------------ */
/* Functions exported by libibverbs at IBVERBS_PRIVATE_34              */
/* ------------------------------------------------------------------ */

/* The PABI number is part of the name, so a mismatch fails to link/load. */
void verbs_register_driver_34(const struct verbs_device_ops *ops);

/*
 * Registers @drv with libibverbs when the provider is loaded (dlopen runs
 * the constructor).  The equivalent of rdma-core's PROVIDER_DRIVER() for a
 * dynamically loaded provider; nothing needs to be exported.
 */
#define VERBS_PROVIDER_DRIVER(name, drv)                                       \
	static __attribute__((constructor)) void name##_register_driver(void)  \
	{                                                                      \
		verbs_register_driver_34(&(drv));                              \
	}

/*
 * Allocates @alloc_size zeroed bytes and initialises the struct
 * verbs_context found @context_offset bytes in (passed as a pointer value).
 * Takes ownership of @cmd_fd: closes it on failure, verbs_uninit_context()
 * closes it later.  Probes the ioctl interface on @cmd_fd.
 */
void *_verbs_init_and_alloc_context(struct ibv_device *device, int cmd_fd,
				    size_t alloc_size,
				    struct verbs_context *context_offset,
				    uint32_t driver_id);

#define verbs_init_and_alloc_context(ibdev, cmd_fd, type, member, driver_id)  \
	((type *)_verbs_init_and_alloc_context(                                \
		(ibdev), (cmd_fd), sizeof(type),                               \
		(struct verbs_context *)(uintptr_t)offsetof(type, member),     \
		(driver_id)))

/* Frees the private part, closes cmd_fd and async_fd, drops the device. */
void verbs_uninit_context(struct verbs_context *context);
void verbs_set_ops(struct verbs_context *vctx,
		   const struct verbs_context_ops *ops);

/*
 * The ibv_cmd_* helpers return 0 or a positive errno value.  @cmd_size and
 * @resp_size cover the core structure plus the provider's udata that
 * immediately follows it.
 */
int ibv_cmd_get_context(struct verbs_context *context,
			struct ibv_get_context *cmd, size_t cmd_size,
			struct ib_uverbs_get_context_resp *resp,
			size_t resp_size);
int ibv_cmd_query_device_any(struct ibv_context *context,
			     const struct ibv_query_device_ex_input *input,
			     struct ibv_device_attr_ex *attr, size_t attr_size,
			     struct ib_uverbs_ex_query_device_resp *resp,
			     size_t *resp_size);
int ibv_cmd_query_port(struct ibv_context *context, uint8_t port_num,
		       struct ibv_port_attr *port_attr,
		       struct ibv_query_port *cmd, size_t cmd_size);
int ibv_cmd_alloc_pd(struct ibv_context *context, struct ibv_pd *pd,
		     struct ibv_alloc_pd *cmd, size_t cmd_size,
		     struct ib_uverbs_alloc_pd_resp *resp, size_t resp_size);
int ibv_cmd_dealloc_pd(struct ibv_pd *pd);
int ibv_cmd_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
		   uint64_t hca_va, int access, struct verbs_mr *vmr,
		   struct ibv_reg_mr *cmd, size_t cmd_size,
		   struct ib_uverbs_reg_mr_resp *resp, size_t resp_size);
/* Sets vmr's lkey and rkey from the response. */
int ibv_cmd_rereg_mr(struct verbs_mr *vmr, uint32_t flags, void *addr,
		     size_t length, uint64_t hca_va, int access,
		     struct ibv_pd *pd, struct ibv_rereg_mr *cmd,
		     size_t cmd_sz, struct ib_uverbs_rereg_mr_resp *resp,
		     size_t resp_sz);
int ibv_cmd_dereg_mr(struct verbs_mr *vmr);
/* IB_USER_VERBS_CMD_ATTACH_MCAST / DETACH_MCAST for @qp. */
int ibv_cmd_attach_mcast(struct ibv_qp *qp, const union ibv_gid *gid,
			 uint16_t lid);
int ibv_cmd_detach_mcast(struct ibv_qp *qp, const union ibv_gid *gid,
			 uint16_t lid);

/*
 * Completion queues.  The helpers fill in the core payload of @cmd
 * (user_handle = @cq, comp_channel = @channel's fd), set cq->context,
 * cq->handle and cq->cqe (from the response).
 */
int ibv_cmd_create_cq(struct ibv_context *context, int cqe,
		      struct ibv_comp_channel *channel, int comp_vector,
		      struct ibv_cq *cq, struct ibv_create_cq *cmd,
		      size_t cmd_size, struct ib_uverbs_create_cq_resp *resp,
		      size_t resp_size);
int ibv_cmd_resize_cq(struct ibv_cq *cq, int cqe, struct ibv_resize_cq *cmd,
		      size_t cmd_size, struct ib_uverbs_resize_cq_resp *resp,
		      size_t resp_size);
/* Waits until every reported completion event has been acknowledged. */
int ibv_cmd_destroy_cq(struct ibv_cq *cq);

/*
 * Queue pairs.  ibv_cmd_create_qp() sets qp->handle, qp->qp_num, the
 * QP's pd/cqs/srq/type/state (RESET) and copies the capabilities of the
 * response into attr->cap.  ibv_cmd_modify_qp() updates qp->state when
 * IBV_QP_STATE is in @attr_mask and the command succeeds.
 */
int ibv_cmd_create_qp(struct ibv_pd *pd, struct ibv_qp *qp,
		      struct ibv_qp_init_attr *attr, struct ibv_create_qp *cmd,
		      size_t cmd_size, struct ib_uverbs_create_qp_resp *resp,
		      size_t resp_size);
/*
 * The same for ibv_create_qp_ex(): @attr_ex->comp_mask may hold only
 * IBV_QP_INIT_ATTR_PD, _XRCD and _SEND_OPS_FLAGS (EINVAL otherwise);
 * the response's capabilities are copied into attr_ex->cap.
 */
int ibv_cmd_create_qp_ex(struct ibv_context *context, struct verbs_qp *qp,
			 struct ibv_qp_init_attr_ex *attr_ex,
			 struct ibv_create_qp *cmd, size_t cmd_size,
			 struct ib_uverbs_create_qp_resp *resp,
			 size_t resp_size);
int ibv_cmd_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr,
		      int attr_mask, struct ibv_modify_qp *cmd,
		      size_t cmd_size);
int ibv_cmd_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *qp_attr,
		     int attr_mask, struct ibv_qp_init_attr *qp_init_attr,
		     struct ibv_query_qp *cmd, size_t cmd_size);
/* Waits until every reported async event has been acknowledged. */
int ibv_cmd_destroy_qp(struct ibv_qp *qp);

/*
 * Shared receive queues.  ibv_cmd_create_srq() sets srq->handle and
 * copies max_wr/max_sge of the response into attr->attr.
 */
int ibv_cmd_create_srq(struct ibv_pd *pd, struct ibv_srq *srq,
		       struct ibv_srq_init_attr *attr,
		       struct ibv_create_srq *cmd, size_t cmd_size,
		       struct ib_uverbs_create_srq_resp *resp,
		       size_t resp_size);
int ibv_cmd_modify_srq(struct ibv_srq *srq, struct ibv_srq_attr *srq_attr,
		       int srq_attr_mask, struct ibv_modify_srq *cmd,
		       size_t cmd_size);
int ibv_cmd_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *srq_attr,
		      struct ibv_query_srq *cmd, size_t cmd_size);
int ibv_cmd_destroy_srq(struct ibv_srq *srq);

#endif /* VHCA_PABI34_H */
