// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * uverbs commands of the context and what hangs off it directly: the
 * context itself, device and port queries, PDs and completion channels
 * (MRs: cmd_mr.c).  Framing, dispatch and the errno rules: cmd.c.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

#include "cmd_call.h"
#include "context.h"
#include "device.h"
#include "device/limits.h"
#include "device/mr.h"
#include "device/pf.h"

/* Device attributes */

static uint64_t fw_ver_u64(void)
{
	unsigned int major = 0, minor = 0, sub = 0;

	sscanf(VHCA_FW_VER, "%u.%u.%u", &major, &minor, &sub);
	return (uint64_t)major << 32 | (uint64_t)(minor & 0xffff) << 16 |
	       (sub & 0xffff);
}

/* Identity under pf->lock: provisioning may change GUIDs at any time. */
static void snapshot_identity(struct vhca_dev *dev, uint64_t *node_guid,
			      uint64_t *sys_image_guid)
{
	pthread_rwlock_rdlock(&dev->pf->lock);
	*node_guid = dev->node_guid;
	*sys_image_guid = dev->sys_image_guid;
	pthread_rwlock_unlock(&dev->pf->lock);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/*
 * The device's limits, or the function's share of the daemon where that
 * is smaller (device/limits.h): what a tenant can really create.
 */
static void fill_device_attr(struct vhca_dev *dev,
			     struct ib_uverbs_query_device_resp *resp)
{
	const struct vhca_limits *l = &vhca_limits;
	const struct vhca_quota *q = &dev->quota;
	uint64_t node_guid, sys_image_guid;

	snapshot_identity(dev, &node_guid, &sys_image_guid);
	*resp = (struct ib_uverbs_query_device_resp){
		.fw_ver = fw_ver_u64(),
		.node_guid = htobe64(node_guid),
		.sys_image_guid = htobe64(sys_image_guid),
		.max_mr_size = l->max_mr_size,
		.page_size_cap = l->page_size_cap,
		.vendor_id = VHCA_VENDOR_ID,
		.vendor_part_id = VHCA_VENDOR_PART_ID,
		.hw_ver = VHCA_HW_VER,
		.max_qp = min_u32(l->max_qp, q->max_qp),
		.max_qp_wr = l->max_qp_wr,
		.device_cap_flags = (uint32_t)l->device_cap_flags,
		.max_sge = l->max_sge,
		.max_sge_rd = l->max_sge_rd,
		.max_cq = min_u32(l->max_cq, q->max_cq),
		.max_cqe = l->max_cqe,
		.max_mr = min_u32(l->max_mr, q->max_mr),
		.max_pd = min_u32(l->max_pd, q->max_pd),
		.max_qp_rd_atom = l->max_qp_rd_atom,
		.max_res_rd_atom = l->max_res_rd_atom,
		.max_qp_init_rd_atom = l->max_qp_init_rd_atom,
		.atomic_cap = l->atomic_cap,
		.max_mw = l->max_mw,
		.max_mcast_grp = l->max_mcast_grp,
		.max_mcast_qp_attach = l->max_mcast_qp_attach,
		.max_total_mcast_qp_attach = l->max_total_mcast_qp_attach,
		.max_ah = l->max_ah,
		.max_srq = min_u32(l->max_srq, q->max_srq),
		.max_srq_wr = l->max_srq_wr,
		.max_srq_sge = l->max_srq_sge,
		.max_pkeys = l->max_pkeys,
		.local_ca_ack_delay = l->local_ca_ack_delay,
		.phys_port_cnt = l->phys_port_cnt,
	};
}

/* Handlers */

int cmd_get_context(struct cmd_call *call)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct vhca_alloc_ucontext_resp uresp;
	struct ib_uverbs_get_context_resp resp;
	struct vhca_alloc_ucontext_cmd ucmd;
	struct ib_uverbs_get_context req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
	if (ret)
		return ret;
	if (ucmd.abi_version != VHCA_UVERBS_ABI_VERSION ||
	    ucmd.num_channels > VHCA_CHANNEL_BATCH)
		return -EINVAL;

	ret = vhca_ucontext_prepare(uctx, call->tid, &ucmd);
	if (ret)
		return ret;
	call->peer = uctx->peer;

	resp = (struct ib_uverbs_get_context_resp){
		.async_fd = (uint32_t)ucmd.async_event.read_fd,
		.num_comp_vectors = vhca_limits.num_comp_vectors,
	};
	uresp = (struct vhca_alloc_ucontext_resp){
		.abi_version = VHCA_UVERBS_ABI_VERSION,
		.max_inline_data = vhca_limits.max_inline_data,
	};
	vhca_device_context_info(&uresp);	/* a VM's doorbell */
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (!ret)
		ret = vhca_ucontext_commit(uctx);
	if (ret)
		vhca_ucontext_abort(uctx);
	return ret;
}

int cmd_query_device(struct cmd_call *call)
{
	struct ib_uverbs_query_device_resp resp;
	struct ib_uverbs_query_device req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	fill_device_attr(call->uctx->dev, &resp);
	return cmd_write_response(call, &resp, sizeof(resp));
}

int cmd_ex_query_device(struct cmd_call *call)
{
	struct ib_uverbs_ex_query_device_resp resp = { 0 };
	struct ib_uverbs_ex_query_device req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (req.comp_mask || req.reserved)
		return -EINVAL;

	fill_device_attr(call->uctx->dev, &resp.base);
	resp.device_cap_flags_ex = vhca_limits.device_cap_flags;
	/* Every CQE carries the device clock: monotonic ns (1 GHz). */
	resp.timestamp_mask = UINT64_MAX;
	resp.hca_core_clock = VHCA_CORE_CLOCK_KHZ;
	resp.max_dm_size = VHCA_MAX_DM_SIZE;	/* the provider's (abi.h) */
	/*
	 * ODP: a host process's memory is reached through its address space
	 * at each access (device/dma.h), for every operation of every
	 * transport; inside a VM MRs are pinned lists, so nothing is offered.
	 */
	if (!vhca_device_memory()) {
		const uint32_t ops = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV |
				     IBV_ODP_SUPPORT_WRITE |
				     IBV_ODP_SUPPORT_READ |
				     IBV_ODP_SUPPORT_ATOMIC |
				     IBV_ODP_SUPPORT_SRQ_RECV;

		resp.odp_caps.general_caps =
			IBV_ODP_SUPPORT | IBV_ODP_SUPPORT_IMPLICIT;
		resp.odp_caps.per_transport_caps.rc_odp_caps = ops;
		resp.odp_caps.per_transport_caps.uc_odp_caps =
			ops & ~(uint32_t)(IBV_ODP_SUPPORT_READ |
					  IBV_ODP_SUPPORT_ATOMIC);
		resp.odp_caps.per_transport_caps.ud_odp_caps =
			IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV |
			IBV_ODP_SUPPORT_SRQ_RECV;
	}
	/* uverbs_response_length(): what the caller will actually get. */
	resp.response_length = (uint32_t)(call->outlen < sizeof(resp) ?
						  call->outlen :
						  sizeof(resp));
	return cmd_write_response(call, &resp, sizeof(resp));
}

int cmd_query_port(struct cmd_call *call)
{
	struct ib_uverbs_query_port_resp resp;
	struct ib_uverbs_query_port req;
	struct vhca_dev *dev = call->uctx->dev;
	const struct vhca_limits *l = &vhca_limits;
	struct vhca_port port;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (req.port_num != 1)
		return -EINVAL;	/* rdma_is_port_valid() */

	pthread_rwlock_rdlock(&dev->pf->lock);
	port = dev->port;
	pthread_rwlock_unlock(&dev->pf->lock);

	resp = (struct ib_uverbs_query_port_resp){
		.port_cap_flags = port.cap_flags,
		.max_msg_sz = l->max_msg_sz,
		.gid_tbl_len = l->gid_tbl_len,
		.pkey_tbl_len = l->pkey_tbl_len,
		.lid = port.lid,
		.sm_lid = port.sm_lid,
		.state = port.state,
		.max_mtu = l->max_mtu,
		.active_mtu = port.active_mtu,
		.lmc = port.lmc,
		.max_vl_num = l->max_vl_num,
		.subnet_timeout = l->subnet_timeout,
		.sm_sl = port.sm_sl,
		.active_width = port.active_width,
		.active_speed = port.active_speed,
		.phys_state = port.phys_state,
		.link_layer = IBV_LINK_LAYER_INFINIBAND,
	};
	return cmd_write_response(call, &resp, sizeof(resp));
}

/* Destroys device object @handle again (a response we cannot write). */
void cmd_undo_create(struct cmd_call *call, uint16_t destroy_op,
		     uint32_t handle)
{
	struct vhca_devcmd_handle h = { .handle = handle };

	vhca_ucontext_cmd(call->uctx, destroy_op, &h, sizeof(h), NULL, 0,
			  NULL, 0);
	vhca_uobj_remove(call->uctx, handle, NULL, NULL);
}

/* DESTROY of a device object; its uobject goes with it. */
int cmd_destroy_object(struct cmd_call *call, uint16_t op, uint32_t handle,
		       uint32_t *comp_read, uint32_t *async_read)
{
	struct vhca_devcmd_handle h = { .handle = handle };
	int ret;

	ret = vhca_ucontext_cmd(call->uctx, op, &h, sizeof(h), NULL, 0, NULL,
				0);
	if (!ret)
		vhca_uobj_remove(call->uctx, handle, comp_read, async_read);
	return ret;
}

int cmd_alloc_pd(struct cmd_call *call)
{
	struct ib_uverbs_alloc_pd_resp resp = { 0 };
	struct ib_uverbs_alloc_pd req;
	struct vhca_devcmd_handle pd;
	int ret;

	/* No provider data in either direction (abi.h); udata is ignored. */
	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_ucontext_cmd(call->uctx, VHCA_DEVCMD_ALLOC_PD, NULL,
					0, NULL, 0, &pd, sizeof(pd));
	if (!ret) {
		ret = vhca_uobj_add(call->uctx, pd.handle, VHCA_OBJ_PD, 0,
				    NULL, NULL);
		if (ret)
			cmd_undo_create(call, VHCA_DEVCMD_DEALLOC_PD,
					pd.handle);
	}
	if (ret)
		return ret;
	resp.pd_handle = pd.handle;
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DEALLOC_PD, pd.handle);
	return ret;
}

int cmd_dealloc_pd(struct cmd_call *call)
{
	struct ib_uverbs_dealloc_pd req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	return ret ? ret :
		     cmd_destroy_object(call, VHCA_DEVCMD_DEALLOC_PD,
					req.pd_handle, NULL, NULL);
}

int cmd_create_comp_channel(struct cmd_call *call)
{
	struct vhca_channels *ch = &call->uctx->channels;
	struct ib_uverbs_create_comp_channel_resp resp;
	struct ib_uverbs_create_comp_channel req;
	struct vhca_comp_channel *chan;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_channels_create(ch, &chan);
	if (ret)
		return ret;
	resp.fd = (uint32_t)chan->guest_fd;
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_channels_uncreate(ch, chan);
	return ret;
}

int cmd_add_channels(struct cmd_call *call)
{
	struct vhca_add_channels_cmd req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	return ret ? ret :
		     vhca_channels_add(&call->uctx->channels, call->peer, &req);
}

static int deliver_returned(void *arg,
			    const struct vhca_return_channels_resp *resp)
{
	return cmd_write_response(arg, resp, sizeof(*resp));
}

int cmd_return_channels(struct cmd_call *call)
{
	struct vhca_return_channels_cmd req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	return ret ? ret :
		     vhca_channels_return(&call->uctx->channels,
					  deliver_returned, call);
}

