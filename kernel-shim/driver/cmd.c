// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The uverbs write ABI: framing, dispatch and the command handlers.
 *
 * Framing and errnos follow ib_uverbs_write() / verify_hdr() /
 * uapi_get_method() of drivers/infiniband/core/uverbs_main.c:
 *  - len < sizeof(hdr), or len > VHCA_CMD_MAX_LEN: -EINVAL
 *  - command bits outside FLAG_EXTENDED | COMMAND_MASK: -EINVAL
 *  - no such (or unsupported) command: -EOPNOTSUPP (the kernel's
 *    ib_uverbs_notsupp(); libibverbs treats it like the old -ENOSYS)
 *  - legacy: in_words * 4 != len: -EINVAL; core request or response
 *    shorter than the command's structure: -ENOSPC
 *  - extended: (in_words + provider_in_words) * 8 != len - headers,
 *    cmd_hdr_reserved != 0, response without out words or out words
 *    without response: -EINVAL; core structs too short: -ENOSPC
 * then per command: no context yet -EINVAL (GET_CONTEXT twice too),
 * trailing nonzero core request bytes -EOPNOTSUPP (uverbs_request()),
 * a caller outside the owner process -EACCES, a dead owner -EIO
 * (context.c explains both).  A handle that names no live object of the
 * right type in this context is -EINVAL, as for every object reference
 * in the kernel; its destroy path would say -ENOENT for a free handle,
 * but the project's contract (and its tests) is -EINVAL throughout.
 *
 * Responses go to the caller's memory: the core response truncated to
 * the caller's size and zero-filled up to it (uverbs_response()), driver
 * udata truncated.  If that write faults the command is undone and the
 * answer is -EFAULT, as when the kernel's copy_to_user() fails.
 */
#include <errno.h>
#include <endian.h>
#include <linux/capability.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>

#include "cmd.h"
#include "context.h"
#include "device/cq.h"
#include "device/limits.h"
#include "device/mr.h"
#include "device/pf.h"
#include "device/qp.h"
#include "device/srq.h"

/* Longest write we parse; real commands are a few hundred bytes. */
#define VHCA_CMD_MAX_LEN (64 * 1024)

#define offsetofend(type, member)                                             \
	(offsetof(type, member) + sizeof(((type *)0)->member))

/* One command after framing: where its parts are. */
struct cmd_call {
	struct vhca_ucontext *uctx;
	pid_t tid;
	const struct vhca_peer *peer;	/* for responses */
	const uint8_t *in;		/* core request (write buffer) */
	size_t inlen;
	const uint8_t *udata_in;	/* provider request */
	size_t udata_inlen;
	uint64_t out;			/* core response (guest address) */
	size_t outlen;
	uint64_t udata_out;		/* provider response (guest) */
	size_t udata_outlen;
};

enum cmd_flags {
	CMD_HAS_UDATA = 1 << 0,	/* legacy: provider data follows */
	CMD_HAS_RESP = 1 << 1,	/* legacy: starts with a response ptr */
	CMD_CREATES_CONTEXT = 1 << 2, /* GET_CONTEXT: needs no context */
	CMD_CHANNELS = 1 << 3,	/* runs under the channel lock only */
	CMD_NO_OUT = 1 << 4,	/* out_words must be 0 */
};

struct cmd_method {
	const char *name;
	int (*handler)(struct cmd_call *call);
	uint16_t req_size;		/* minimum core request */
	uint16_t resp_size;		/* minimum core response */
	uint8_t flags;
};

/* Request and response helpers */

/*
 * uverbs_request(): a shorter request is zero-extended, a longer one must
 * be zero beyond what we understand.
 */
static int read_request(const struct cmd_call *call, void *req, size_t len)
{
	size_t n = call->inlen < len ? call->inlen : len;

	memcpy(req, call->in, n);
	memset((uint8_t *)req + n, 0, len - n);
	for (size_t i = n; i < call->inlen; i++)
		if (call->in[i])
			return -EOPNOTSUPP;
	return 0;
}

/* Provider data: at least @len bytes; more must be zero (mlx5 rule). */
static int read_udata(const struct cmd_call *call, void *req, size_t len)
{
	if (call->udata_inlen < len)
		return -EINVAL;
	memcpy(req, call->udata_in, len);
	for (size_t i = len; i < call->udata_inlen; i++)
		if (call->udata_in[i])
			return -EOPNOTSUPP;
	return 0;
}

/* uverbs_response(): truncate to the caller's size, zero-fill up to it. */
static int write_response(const struct cmd_call *call, const void *resp,
			  size_t len)
{
	size_t n = call->outlen < len ? call->outlen : len;
	int ret;

	ret = vhca_peer_write(call->peer, call->out, resp, n);
	if (!ret && call->outlen > len)
		ret = vhca_peer_clear(call->peer, call->out + len,
				     call->outlen - len);
	return ret;
}

/* ib_copy_to_udata() of min(outlen, len), as drivers do. */
static int write_udata_response(const struct cmd_call *call, const void *resp,
				size_t len)
{
	size_t n = call->udata_outlen < len ? call->udata_outlen : len;

	return vhca_peer_write(call->peer, call->udata_out, resp, n);
}

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

static int cmd_get_context(struct cmd_call *call)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct vhca_alloc_ucontext_resp uresp;
	struct ib_uverbs_get_context_resp resp;
	struct vhca_alloc_ucontext_cmd ucmd;
	struct ib_uverbs_get_context req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = read_udata(call, &ucmd, sizeof(ucmd));
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
	ret = write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = write_udata_response(call, &uresp, sizeof(uresp));
	if (!ret)
		ret = vhca_ucontext_commit(uctx);
	if (ret)
		vhca_ucontext_abort(uctx);
	return ret;
}

static int cmd_query_device(struct cmd_call *call)
{
	struct ib_uverbs_query_device_resp resp;
	struct ib_uverbs_query_device req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	fill_device_attr(call->uctx->dev, &resp);
	return write_response(call, &resp, sizeof(resp));
}

static int cmd_ex_query_device(struct cmd_call *call)
{
	struct ib_uverbs_ex_query_device_resp resp = { 0 };
	struct ib_uverbs_ex_query_device req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (req.comp_mask || req.reserved)
		return -EINVAL;

	fill_device_attr(call->uctx->dev, &resp.base);
	resp.device_cap_flags_ex = vhca_limits.device_cap_flags;
	/* uverbs_response_length(): what the caller will actually get. */
	resp.response_length = (uint32_t)(call->outlen < sizeof(resp) ?
						  call->outlen :
						  sizeof(resp));
	return write_response(call, &resp, sizeof(resp));
}

static int cmd_query_port(struct cmd_call *call)
{
	struct ib_uverbs_query_port_resp resp;
	struct ib_uverbs_query_port req;
	struct vhca_dev *dev = call->uctx->dev;
	const struct vhca_limits *l = &vhca_limits;
	struct vhca_port port;
	int ret;

	ret = read_request(call, &req, sizeof(req));
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
		.sm_sl = port.sm_sl,
		.active_width = port.active_width,
		.active_speed = port.active_speed,
		.phys_state = port.phys_state,
		.link_layer = IBV_LINK_LAYER_INFINIBAND,
	};
	return write_response(call, &resp, sizeof(resp));
}

static int cmd_alloc_pd(struct cmd_call *call)
{
	struct ib_uverbs_alloc_pd_resp resp = { 0 };
	struct ib_uverbs_alloc_pd req;
	int ret;

	/* No provider data in either direction (abi.h); udata is ignored. */
	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_pd_alloc(call->uctx->dctx, &resp.pd_handle);
	if (ret)
		return ret;
	ret = write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_pd_dealloc(call->uctx->dctx, resp.pd_handle);
	return ret;
}

static int cmd_dealloc_pd(struct cmd_call *call)
{
	struct ib_uverbs_dealloc_pd req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	return ret ? ret : vhca_pd_dealloc(call->uctx->dctx, req.pd_handle);
}

/* Every MR may be read (it can source a send); some also written. */
static unsigned int mr_rights(uint32_t access)
{
	return VHCA_PEER_READ |
	       (vhca_mr_access_writable(access) ? VHCA_PEER_WRITE : 0);
}

/*
 * Order of checks and errnos as ib_uverbs_reg_mr() + ib_umem_get(); the
 * range against the caller's mappings is what get_user_pages() would
 * refuse, checked here because the driver knows the process.
 */
static int cmd_reg_mr(struct cmd_call *call)
{
	struct vhca_dctx *dctx = call->uctx->dctx;
	struct ib_uverbs_reg_mr_resp resp;
	struct ib_uverbs_reg_mr req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_mr_check_args(req.start, req.length, req.hca_va,
					 req.access_flags);
	if (!ret)
		ret = vhca_pd_check(dctx, req.pd_handle);
	if (!ret)
		ret = vhca_peer_check_range(call->peer, req.start, req.length,
					    mr_rights(req.access_flags));
	if (!ret)
		ret = vhca_mr_reg(dctx, req.pd_handle, req.start, req.length,
				  req.hca_va, req.access_flags, &resp);
	if (ret)
		return ret;
	ret = write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_mr_dereg(dctx, resp.mr_handle);
	return ret;
}

static int cmd_dereg_mr(struct cmd_call *call)
{
	struct ib_uverbs_dereg_mr req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	return ret ? ret : vhca_mr_dereg(call->uctx->dctx, req.mr_handle);
}

static int cmd_create_comp_channel(struct cmd_call *call)
{
	struct vhca_channels *ch = &call->uctx->channels;
	struct ib_uverbs_create_comp_channel_resp resp;
	struct ib_uverbs_create_comp_channel req;
	struct vhca_comp_channel *chan;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_channels_create(ch, &chan);
	if (ret)
		return ret;
	resp.fd = (uint32_t)chan->guest_fd;
	ret = write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_channels_uncreate(ch, chan);
	return ret;
}

static int cmd_add_channels(struct cmd_call *call)
{
	struct vhca_add_channels_cmd req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	return ret ? ret :
		     vhca_channels_add(&call->uctx->channels, call->peer, &req);
}

/* Data path objects: CQs and QPs */

static int create_cq(struct cmd_call *call, int32_t comp_channel,
		     struct vhca_cq_create_args *args,
		     struct ib_uverbs_create_cq_resp *resp)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct vhca_create_cq_resp uresp = { 0 };
	struct vhca_create_cq_cmd ucmd;
	struct vhca_cq_layout layout;
	struct vhca_qmem qmem;
	struct vhca_cq *cq;
	int ret;

	ret = read_udata(call, &ucmd, sizeof(ucmd));
	if (ret)
		return ret;
	if (!uctx->dctx->ctx_page)
		return -EOPNOTSUPP;	/* a context without a data path */
	ret = vhca_ucontext_map_queue(uctx, ucmd.buf_fd, ucmd.buf_size, &qmem);
	if (ret)
		return ret;
	if (comp_channel >= 0) {
		args->channel = vhca_channels_get_comp(&uctx->channels,
						       uctx->peer,
						       comp_channel);
		if (!args->channel) {
			vhca_qmem_unmap(&qmem);
			return -EINVAL;
		}
	}
	layout = (struct vhca_cq_layout){
		.cqe_count = ucmd.cqe_count,
		.ring_offset = ucmd.ring_offset,
		.db_offset = ucmd.db_offset,
	};
	ret = vhca_cq_create(uctx->dctx, args, &qmem, &layout, &cq);
	if (ret) {
		if (args->channel)
			vhca_comp_channel_put(args->channel);
		return ret;
	}
	resp->cq_handle = cq->handle;
	resp->cqe = cq->cqe_count;
	uresp.cqn = cq->cqn;
	ret = write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		vhca_cq_destroy(uctx->dctx, cq->handle,
				&(struct ib_uverbs_destroy_cq_resp){ 0 });
	return ret;
}

static int cmd_create_cq(struct cmd_call *call)
{
	struct ib_uverbs_create_cq_resp resp = { 0 };
	struct ib_uverbs_create_cq req;
	struct vhca_cq_create_args args;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	args = (struct vhca_cq_create_args){
		.user_handle = req.user_handle,
		.cqe = req.cqe,
		.comp_vector = req.comp_vector,
	};
	ret = create_cq(call, req.comp_channel, &args, &resp);
	if (ret)
		return ret;
	ret = write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_cq_destroy(call->uctx->dctx, resp.cq_handle,
				&(struct ib_uverbs_destroy_cq_resp){ 0 });
	return ret;
}

static int cmd_ex_create_cq(struct cmd_call *call)
{
	struct ib_uverbs_ex_create_cq_resp resp = { 0 };
	struct ib_uverbs_ex_create_cq req;
	struct vhca_cq_create_args args;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (req.comp_mask || req.reserved)
		return -EINVAL;
	if (req.flags)
		return -EOPNOTSUPP;	/* no completion timestamps */
	args = (struct vhca_cq_create_args){
		.user_handle = req.user_handle,
		.cqe = req.cqe,
		.comp_vector = req.comp_vector,
	};
	ret = create_cq(call, req.comp_channel, &args, &resp.base);
	if (ret)
		return ret;
	resp.response_length = (uint32_t)(call->outlen < sizeof(resp) ?
						  call->outlen :
						  sizeof(resp));
	ret = write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_cq_destroy(call->uctx->dctx, resp.base.cq_handle,
				&(struct ib_uverbs_destroy_cq_resp){ 0 });
	return ret;
}

static int cmd_resize_cq(struct cmd_call *call)
{
	struct ib_uverbs_resize_cq_resp resp = { 0 };
	struct vhca_create_cq_resp uresp = { 0 };
	struct vhca_create_cq_cmd ucmd;
	struct ib_uverbs_resize_cq req;
	struct vhca_cq_layout layout;
	struct vhca_cq_resize next;
	struct vhca_qmem qmem;
	struct vhca_cq *cq;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = read_udata(call, &ucmd, sizeof(ucmd));
	if (!ret)
		ret = vhca_ucontext_map_queue(call->uctx, ucmd.buf_fd,
					      ucmd.buf_size, &qmem);
	if (ret)
		return ret;
	layout = (struct vhca_cq_layout){
		.cqe_count = ucmd.cqe_count,
		.ring_offset = ucmd.ring_offset,
		.db_offset = ucmd.db_offset,
	};
	ret = vhca_cq_resize_prepare(call->uctx->dctx, req.cq_handle, req.cqe,
				     &qmem, &layout, &cq, &next);
	if (ret)
		return ret;
	/* Answer first: a response we cannot write leaves the old ring. */
	resp.cqe = next.cqe_count;
	uresp.cqn = cq->cqn;
	ret = write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = write_udata_response(call, &uresp, sizeof(uresp));
	if (ret) {
		vhca_cq_resize_abort(cq, &next);
		return ret;
	}
	vhca_cq_resize_commit(cq, &next);
	return 0;
}

static int cmd_destroy_cq(struct cmd_call *call)
{
	struct ib_uverbs_destroy_cq_resp resp = { 0 };
	struct ib_uverbs_destroy_cq req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_cq_destroy(call->uctx->dctx, req.cq_handle, &resp);
	/* The CQ is gone either way, as in the kernel. */
	return ret ? ret : write_response(call, &resp, sizeof(resp));
}

static int create_qp(struct cmd_call *call,
		     const struct vhca_qp_create_args *args,
		     struct ib_uverbs_create_qp_resp *resp)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct vhca_create_qp_resp uresp = { 0 };
	struct vhca_create_qp_cmd ucmd;
	struct vhca_qp_layout layout;
	struct vhca_qmem qmem;
	uint32_t events;
	int ret;

	ret = read_udata(call, &ucmd, sizeof(ucmd));
	if (ret)
		return ret;
	if (ucmd.reserved)
		return -EINVAL;
	if (!uctx->dctx->ctx_page)
		return -EOPNOTSUPP;	/* a context without a data path */
	ret = vhca_ucontext_map_queue(uctx, ucmd.buf_fd, ucmd.buf_size, &qmem);
	if (ret)
		return ret;
	layout = (struct vhca_qp_layout){
		.sq_offset = ucmd.sq_offset,
		.sq_wqe_count = ucmd.sq_wqe_count,
		.sq_stride = ucmd.sq_stride,
		.rq_offset = ucmd.rq_offset,
		.rq_wqe_count = ucmd.rq_wqe_count,
		.rq_stride = ucmd.rq_stride,
		.db_offset = ucmd.db_offset,
	};
	ret = vhca_qp_create(uctx->dctx, args, &qmem, &layout, resp);
	if (ret)
		return ret;
	uresp.max_inline_data = resp->max_inline_data;
	ret = write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		vhca_qp_destroy(uctx->dctx, resp->qp_handle, &events);
	return ret;
}

static int cmd_create_qp(struct cmd_call *call)
{
	struct ib_uverbs_create_qp_resp resp = { 0 };
	struct vhca_qp_create_args args;
	struct ib_uverbs_create_qp req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	args = (struct vhca_qp_create_args){
		.user_handle = req.user_handle,
		.pd_handle = req.pd_handle,
		.send_cq_handle = req.send_cq_handle,
		.recv_cq_handle = req.recv_cq_handle,
		.srq_handle = req.srq_handle,
		.max_send_wr = req.max_send_wr,
		.max_recv_wr = req.max_recv_wr,
		.max_send_sge = req.max_send_sge,
		.max_recv_sge = req.max_recv_sge,
		.max_inline_data = req.max_inline_data,
		.sq_sig_all = req.sq_sig_all,
		.qp_type = req.qp_type,
		.is_srq = req.is_srq,
	};
	ret = create_qp(call, &args, &resp);
	if (ret)
		return ret;
	ret = write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_qp_destroy(call->uctx->dctx, resp.qp_handle,
				&(uint32_t){ 0 });
	return ret;
}

static int cmd_ex_create_qp(struct cmd_call *call)
{
	struct ib_uverbs_ex_create_qp_resp resp = { 0 };
	struct vhca_qp_create_args args;
	struct ib_uverbs_ex_create_qp req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (req.comp_mask & ~(uint32_t)IB_UVERBS_CREATE_QP_MASK_IND_TABLE)
		return -EINVAL;
	if (req.comp_mask || req.source_qpn || req.reserved)
		return -EOPNOTSUPP;
	args = (struct vhca_qp_create_args){
		.user_handle = req.user_handle,
		.pd_handle = req.pd_handle,
		.send_cq_handle = req.send_cq_handle,
		.recv_cq_handle = req.recv_cq_handle,
		.srq_handle = req.srq_handle,
		.max_send_wr = req.max_send_wr,
		.max_recv_wr = req.max_recv_wr,
		.max_send_sge = req.max_send_sge,
		.max_recv_sge = req.max_recv_sge,
		.max_inline_data = req.max_inline_data,
		.sq_sig_all = req.sq_sig_all,
		.qp_type = req.qp_type,
		.is_srq = req.is_srq,
		.create_flags = req.create_flags,
	};
	ret = create_qp(call, &args, &resp.base);
	if (ret)
		return ret;
	resp.response_length = (uint32_t)(call->outlen < sizeof(resp) ?
						  call->outlen :
						  sizeof(resp));
	ret = write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_qp_destroy(call->uctx->dctx, resp.base.qp_handle,
				&(uint32_t){ 0 });
	return ret;
}

static int cmd_destroy_qp(struct cmd_call *call)
{
	struct ib_uverbs_destroy_qp_resp resp = { 0 };
	struct ib_uverbs_destroy_qp req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_qp_destroy(call->uctx->dctx, req.qp_handle,
				      &resp.events_reported);
	return ret ? ret : write_response(call, &resp, sizeof(resp));
}

/*
 * A Q_Key with the high bit set is a controlled Q_Key (IBTA 10.2.4):
 * only a privileged consumer may use one, so Linux refuses it to a
 * caller without CAP_NET_RAW (ib_uverbs modify_qp), as we do.
 */
static int check_qkey(const struct cmd_call *call,
		      const struct ib_uverbs_modify_qp *req)
{
	if ((req->attr_mask & IBV_QP_QKEY) && (req->qkey & 0x80000000u) &&
	    !vhca_peer_capable(call->tid, CAP_NET_RAW))
		return -EPERM;
	return 0;
}

static int cmd_modify_qp(struct cmd_call *call)
{
	struct ib_uverbs_modify_qp req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = check_qkey(call, &req);
	if (ret)
		return ret;
	/* Attributes from IBV_QP_RATE_LIMIT on need the extended command. */
	if (req.attr_mask & ~((uint32_t)IBV_QP_RATE_LIMIT - 1))
		return -EOPNOTSUPP;
	return vhca_qp_modify(call->uctx->dctx, &req);
}

static int cmd_ex_modify_qp(struct cmd_call *call)
{
	struct ib_uverbs_ex_modify_qp_resp resp = { 0 };
	struct ib_uverbs_ex_modify_qp req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (req.reserved)
		return -EINVAL;
	if (req.base.attr_mask & ~((uint32_t)IBV_QP_RATE_LIMIT - 1))
		return -EOPNOTSUPP;	/* no rate limits */
	ret = check_qkey(call, &req.base);
	if (ret)
		return ret;
	ret = vhca_qp_modify(call->uctx->dctx, &req.base);
	if (ret || !call->out)
		return ret;
	resp.response_length = (uint32_t)(call->outlen < sizeof(resp) ?
						  call->outlen :
						  sizeof(resp));
	return write_response(call, &resp, sizeof(resp));
}

static int cmd_query_qp(struct cmd_call *call)
{
	struct ib_uverbs_query_qp_resp resp;
	struct ib_uverbs_query_qp req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_qp_query(call->uctx->dctx, req.qp_handle, &resp);
	return ret ? ret : write_response(call, &resp, sizeof(resp));
}

static int cmd_create_srq(struct cmd_call *call)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct ib_uverbs_create_srq_resp resp = { 0 };
	struct vhca_create_srq_resp uresp = { 0 };
	struct vhca_create_srq_cmd ucmd;
	struct ib_uverbs_create_srq req;
	struct vhca_srq_layout layout;
	struct vhca_qmem qmem;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = read_udata(call, &ucmd, sizeof(ucmd));
	if (!ret && ucmd.reserved)
		ret = -EINVAL;
	if (!ret && !uctx->dctx->ctx_page)
		ret = -EOPNOTSUPP;
	if (!ret)
		ret = vhca_ucontext_map_queue(uctx, ucmd.buf_fd, ucmd.buf_size,
					      &qmem);
	if (ret)
		return ret;
	layout = (struct vhca_srq_layout){
		.wqe_count = ucmd.wqe_count,
		.stride = ucmd.stride,
		.ring_offset = ucmd.ring_offset,
		.db_offset = ucmd.db_offset,
	};
	ret = vhca_srq_create(uctx->dctx, &req, &qmem, &layout, &resp);
	if (ret)
		return ret;
	uresp.srqn = resp.srqn;
	ret = write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		vhca_srq_destroy(uctx->dctx, resp.srq_handle,
				 &(struct ib_uverbs_destroy_srq_resp){ 0 });
	return ret;
}

static int cmd_modify_srq(struct cmd_call *call)
{
	struct ib_uverbs_modify_srq req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	return ret ? ret : vhca_srq_modify(call->uctx->dctx, &req);
}

static int cmd_query_srq(struct cmd_call *call)
{
	struct ib_uverbs_query_srq_resp resp;
	struct ib_uverbs_query_srq req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_srq_query(call->uctx->dctx, req.srq_handle, &resp);
	return ret ? ret : write_response(call, &resp, sizeof(resp));
}

static int cmd_destroy_srq(struct cmd_call *call)
{
	struct ib_uverbs_destroy_srq_resp resp = { 0 };
	struct ib_uverbs_destroy_srq req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_srq_destroy(call->uctx->dctx, req.srq_handle, &resp);
	return ret ? ret : write_response(call, &resp, sizeof(resp));
}

static int deliver_returned(void *arg,
			    const struct vhca_return_channels_resp *resp)
{
	return write_response(arg, resp, sizeof(*resp));
}

static int cmd_return_channels(struct cmd_call *call)
{
	struct vhca_return_channels_cmd req;
	int ret;

	ret = read_request(call, &req, sizeof(req));
	return ret ? ret :
		     vhca_channels_return(&call->uctx->channels,
					  deliver_returned, call);
}

/* The command table */

#define LEGACY(_name, _handler, _req, _resp, _flags)                          \
	{ .name = _name, .handler = _handler, .req_size = sizeof(_req),       \
	  .resp_size = _resp, .flags = _flags }

#define NUM_METHODS (IB_USER_VERBS_CMD_COMMAND_MASK + 1)

static const struct cmd_method write_methods[NUM_METHODS] = {
	[IB_USER_VERBS_CMD_GET_CONTEXT] =
		LEGACY("GET_CONTEXT", cmd_get_context,
		       struct ib_uverbs_get_context,
		       sizeof(struct ib_uverbs_get_context_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP | CMD_CREATES_CONTEXT),
	[IB_USER_VERBS_CMD_QUERY_DEVICE] =
		LEGACY("QUERY_DEVICE", cmd_query_device,
		       struct ib_uverbs_query_device,
		       sizeof(struct ib_uverbs_query_device_resp),
		       CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_QUERY_PORT] =
		LEGACY("QUERY_PORT", cmd_query_port,
		       struct ib_uverbs_query_port,
		       sizeof(struct ib_uverbs_query_port_resp), CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_ALLOC_PD] =
		LEGACY("ALLOC_PD", cmd_alloc_pd, struct ib_uverbs_alloc_pd,
		       sizeof(struct ib_uverbs_alloc_pd_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_DEALLOC_PD] =
		LEGACY("DEALLOC_PD", cmd_dealloc_pd,
		       struct ib_uverbs_dealloc_pd, 0, 0),
	[IB_USER_VERBS_CMD_REG_MR] =
		LEGACY("REG_MR", cmd_reg_mr, struct ib_uverbs_reg_mr,
		       sizeof(struct ib_uverbs_reg_mr_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_DEREG_MR] =
		LEGACY("DEREG_MR", cmd_dereg_mr, struct ib_uverbs_dereg_mr, 0,
		       0),
	[IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL] =
		LEGACY("CREATE_COMP_CHANNEL", cmd_create_comp_channel,
		       struct ib_uverbs_create_comp_channel,
		       sizeof(struct ib_uverbs_create_comp_channel_resp),
		       CMD_HAS_RESP | CMD_CHANNELS),
	[IB_USER_VERBS_CMD_CREATE_CQ] =
		LEGACY("CREATE_CQ", cmd_create_cq, struct ib_uverbs_create_cq,
		       sizeof(struct ib_uverbs_create_cq_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_RESIZE_CQ] =
		LEGACY("RESIZE_CQ", cmd_resize_cq, struct ib_uverbs_resize_cq,
		       sizeof(struct ib_uverbs_resize_cq_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_DESTROY_CQ] =
		LEGACY("DESTROY_CQ", cmd_destroy_cq,
		       struct ib_uverbs_destroy_cq,
		       sizeof(struct ib_uverbs_destroy_cq_resp), CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_CREATE_QP] =
		LEGACY("CREATE_QP", cmd_create_qp, struct ib_uverbs_create_qp,
		       sizeof(struct ib_uverbs_create_qp_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_QUERY_QP] =
		LEGACY("QUERY_QP", cmd_query_qp, struct ib_uverbs_query_qp,
		       sizeof(struct ib_uverbs_query_qp_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_MODIFY_QP] =
		LEGACY("MODIFY_QP", cmd_modify_qp, struct ib_uverbs_modify_qp,
		       0, CMD_HAS_UDATA),
	[IB_USER_VERBS_CMD_DESTROY_QP] =
		LEGACY("DESTROY_QP", cmd_destroy_qp,
		       struct ib_uverbs_destroy_qp,
		       sizeof(struct ib_uverbs_destroy_qp_resp), CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_CREATE_SRQ] =
		LEGACY("CREATE_SRQ", cmd_create_srq,
		       struct ib_uverbs_create_srq,
		       sizeof(struct ib_uverbs_create_srq_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_MODIFY_SRQ] =
		LEGACY("MODIFY_SRQ", cmd_modify_srq,
		       struct ib_uverbs_modify_srq, 0, CMD_HAS_UDATA),
	[IB_USER_VERBS_CMD_QUERY_SRQ] =
		LEGACY("QUERY_SRQ", cmd_query_srq, struct ib_uverbs_query_srq,
		       sizeof(struct ib_uverbs_query_srq_resp),
		       CMD_HAS_UDATA | CMD_HAS_RESP),
	[IB_USER_VERBS_CMD_DESTROY_SRQ] =
		LEGACY("DESTROY_SRQ", cmd_destroy_srq,
		       struct ib_uverbs_destroy_srq,
		       sizeof(struct ib_uverbs_destroy_srq_resp), CMD_HAS_RESP),
	[VHCA_CMD_RETURN_CHANNELS] =
		LEGACY("RETURN_CHANNELS", cmd_return_channels,
		       struct vhca_return_channels_cmd,
		       sizeof(struct vhca_return_channels_resp),
		       CMD_HAS_RESP | CMD_CHANNELS),
	[VHCA_CMD_ADD_CHANNELS] =
		LEGACY("ADD_CHANNELS", cmd_add_channels,
		       struct vhca_add_channels_cmd, 0,
		       CMD_CHANNELS | CMD_NO_OUT),
};

static const struct cmd_method write_ex_methods[NUM_METHODS] = {
	[IB_USER_VERBS_EX_CMD_QUERY_DEVICE] = {
		.name = "EX_QUERY_DEVICE",
		.handler = cmd_ex_query_device,
		.req_size = offsetofend(struct ib_uverbs_ex_query_device,
					reserved),
		.resp_size = offsetofend(struct ib_uverbs_ex_query_device_resp,
					 response_length),
	},
	[IB_USER_VERBS_EX_CMD_CREATE_CQ] = {
		.name = "EX_CREATE_CQ",
		.handler = cmd_ex_create_cq,
		.req_size = offsetofend(struct ib_uverbs_ex_create_cq,
					comp_channel),
		.resp_size = sizeof(struct ib_uverbs_create_cq_resp),
	},
	[IB_USER_VERBS_EX_CMD_CREATE_QP] = {
		.name = "EX_CREATE_QP",
		.handler = cmd_ex_create_qp,
		.req_size = offsetofend(struct ib_uverbs_ex_create_qp,
					comp_mask),
		.resp_size = sizeof(struct ib_uverbs_create_qp_resp),
	},
	[IB_USER_VERBS_EX_CMD_MODIFY_QP] = {
		.name = "EX_MODIFY_QP",
		.handler = cmd_ex_modify_qp,
		.req_size = sizeof(struct ib_uverbs_modify_qp),
		.resp_size = 0,	/* the response is optional */
	},
};

/* Framing */

static int find_method(uint32_t command, const struct cmd_method **method)
{
	uint32_t index = command & IB_USER_VERBS_CMD_COMMAND_MASK;
	const struct cmd_method *m;

	if (command & ~(IB_USER_VERBS_CMD_FLAG_EXTENDED |
			IB_USER_VERBS_CMD_COMMAND_MASK))
		return -EINVAL;
	if (command & IB_USER_VERBS_CMD_FLAG_EXTENDED)
		m = &write_ex_methods[index];
	else
		m = &write_methods[index];
	if (!m->handler)
		return -EOPNOTSUPP;
	*method = m;
	return 0;
}

static int frame_legacy(const struct cmd_method *m,
			const struct ib_uverbs_cmd_hdr *hdr,
			const uint8_t *buf, size_t len, struct cmd_call *call)
{
	size_t out_len = (size_t)hdr->out_words * 4;

	if ((size_t)hdr->in_words * 4 != len)
		return -EINVAL;
	if (len < sizeof(*hdr) + m->req_size || out_len < m->resp_size)
		return -ENOSPC;
	if ((m->flags & CMD_NO_OUT) && hdr->out_words)
		return -EINVAL;

	call->in = buf + sizeof(*hdr);
	call->inlen = len - sizeof(*hdr);
	if (m->flags & CMD_HAS_UDATA) {
		call->udata_in = call->in + m->req_size;
		call->udata_inlen = call->inlen - m->req_size;
		call->inlen = m->req_size;
	}
	if (m->flags & CMD_HAS_RESP) {
		/* Every such request starts with __aligned_u64 response. */
		memcpy(&call->out, call->in, sizeof(call->out));
		call->outlen = out_len;
		if (m->flags & CMD_HAS_UDATA) {
			call->udata_out = call->out + m->resp_size;
			call->udata_outlen = out_len - m->resp_size;
			call->outlen = m->resp_size;
		}
	}
	return 0;
}

static int frame_ex(const struct cmd_method *m,
		    const struct ib_uverbs_cmd_hdr *hdr, const uint8_t *buf,
		    size_t len, struct cmd_call *call)
{
	struct ib_uverbs_ex_cmd_hdr ex;
	size_t payload;

	if (len < sizeof(*hdr) + sizeof(ex))
		return -EINVAL;
	memcpy(&ex, buf + sizeof(*hdr), sizeof(ex));
	payload = len - sizeof(*hdr) - sizeof(ex);

	if (((size_t)hdr->in_words + ex.provider_in_words) * 8 != payload)
		return -EINVAL;
	if ((size_t)hdr->in_words * 8 < m->req_size)
		return -ENOSPC;
	if (ex.cmd_hdr_reserved)
		return -EINVAL;
	if (ex.response) {
		if (!hdr->out_words && !ex.provider_out_words)
			return -EINVAL;
		if ((size_t)hdr->out_words * 8 < m->resp_size)
			return -ENOSPC;
	} else if (hdr->out_words || ex.provider_out_words) {
		return -EINVAL;
	}

	call->in = buf + sizeof(*hdr) + sizeof(ex);
	call->inlen = (size_t)hdr->in_words * 8;
	call->udata_in = call->in + call->inlen;
	call->udata_inlen = (size_t)ex.provider_in_words * 8;
	call->out = ex.response;
	call->outlen = (size_t)hdr->out_words * 8;
	call->udata_out = ex.response + call->outlen;
	call->udata_outlen = (size_t)ex.provider_out_words * 8;
	return 0;
}

static int frame_call(const void *buf, size_t len,
		      const struct cmd_method **method, struct cmd_call *call)
{
	struct ib_uverbs_cmd_hdr hdr;
	int ret;

	if (len < sizeof(hdr) || len > VHCA_CMD_MAX_LEN)
		return -EINVAL;
	memcpy(&hdr, buf, sizeof(hdr));
	ret = find_method(hdr.command, method);
	if (ret)
		return ret;
	if (hdr.command & IB_USER_VERBS_CMD_FLAG_EXTENDED)
		return frame_ex(*method, &hdr, buf, len, call);
	return frame_legacy(*method, &hdr, buf, len, call);
}

/* Dispatch */

/* Caller holds uctx->lock. */
static int admit(struct vhca_ucontext *uctx, const struct cmd_method *m,
		 struct cmd_call *call)
{
	int ret;

	if (!uctx->initialised)
		return (m->flags & CMD_CREATES_CONTEXT) ? 0 : -EINVAL;
	ret = vhca_ucontext_check_caller(uctx, call->tid);
	if (ret)
		return ret;
	if (m->flags & CMD_CREATES_CONTEXT)
		return -EINVAL;	/* ib_init_ucontext(): one per file */
	call->peer = uctx->peer;
	return 0;
}

static int run(struct vhca_ucontext *uctx, const struct cmd_method *m,
	       struct cmd_call *call)
{
	int ret;

	/*
	 * Channel commands may sleep waiting for a refill that arrives as
	 * another command on this context, and a refill must not wait for
	 * a command of the context that stalls: they run outside
	 * uctx->lock.  Safe because an initialised context stays so (and
	 * keeps its peer) until release.
	 */
	if (m->flags & CMD_CHANNELS) {
		if (!__atomic_load_n(&uctx->initialised, __ATOMIC_ACQUIRE))
			return -EINVAL;
		ret = admit(uctx, m, call);
		return ret ? ret : m->handler(call);
	}
	/*
	 * Object commands take the device context's lock themselves, for
	 * as long as they change what its engine turns read.
	 */
	pthread_mutex_lock(&uctx->lock);
	ret = admit(uctx, m, call);
	if (!ret)
		ret = m->handler(call);
	pthread_mutex_unlock(&uctx->lock);
	return ret;
}

enum vhca_cmd_class vhca_cmd_classify(const void *buf, size_t len)
{
	struct ib_uverbs_cmd_hdr hdr;

	if (len < sizeof(hdr))
		return VHCA_CMD_CLASS_CONTEXT;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.command & IB_USER_VERBS_CMD_FLAG_EXTENDED)
		return VHCA_CMD_CLASS_CONTEXT;
	switch (hdr.command) {
	case VHCA_CMD_ADD_CHANNELS:
		return VHCA_CMD_CLASS_IMMEDIATE;
	case IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL:
		return VHCA_CMD_CLASS_FUNCTION;
	default:
		return VHCA_CMD_CLASS_CONTEXT;
	}
}

static bool debug_enabled(void)
{
	static atomic_int enabled = -1;
	int val = atomic_load_explicit(&enabled, memory_order_relaxed);

	if (val < 0) {
		const char *env = getenv("VHCA_CMD_DEBUG");

		val = env && *env && strcmp(env, "0");
		atomic_store_explicit(&enabled, val, memory_order_relaxed);
	}
	return val;
}

static void debug_failure(const struct vhca_ucontext *uctx, pid_t tid,
			  const void *buf, size_t len,
			  const struct cmd_method *m, int err)
{
	uint32_t command = 0;

	if (len >= sizeof(command))
		memcpy(&command, buf, sizeof(command));
	fprintf(stderr, "vhcad: %s: tid %d: command 0x%x (%s), %zu bytes: %s\n",
		uctx->dev->name, (int)tid, command, m ? m->name : "?", len,
		strerror(-err));
}

struct vhca_ucontext *vhca_cmd_open(struct vhca_dev *dev)
{
	struct vhca_ucontext *uctx = vhca_ucontext_alloc(dev);

	/* Pins the device: a VF with open command files is not destroyed. */
	if (uctx)
		atomic_fetch_add(&dev->open_files, 1);
	return uctx;
}

ssize_t vhca_cmd_write(struct vhca_ucontext *uctx, pid_t caller_tid,
		       const void *buf, size_t len)
{
	const struct cmd_method *m = NULL;
	struct cmd_call call = { .uctx = uctx, .tid = caller_tid };
	int ret;

	ret = frame_call(buf, len, &m, &call);
	if (!ret)
		ret = run(uctx, m, &call);
	/* The owner died under us: the context is disassociated. */
	if (ret == -ESRCH)
		ret = -EIO;
	if (ret && debug_enabled())
		debug_failure(uctx, caller_tid, buf, len, m, ret);
	return ret ? ret : (ssize_t)len;
}

void vhca_cmd_release(struct vhca_ucontext *uctx)
{
	struct vhca_dev *dev;

	if (!uctx)
		return;
	dev = uctx->dev;
	vhca_ucontext_free(uctx);
	atomic_fetch_sub(&dev->open_files, 1);
}
