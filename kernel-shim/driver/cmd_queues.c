// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * uverbs commands of the data path's queues: CQs, QPs and SRQs.  The
 * create and resize commands map the queue memory the provider passes
 * (an fd and a layout in its udata) and hand it to the device
 * (device/cq.h, qp.h, srq.h).  Framing, dispatch and the errno rules:
 * cmd.c.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>

#include "cmd_call.h"
#include "context.h"
#include "device/cq.h"
#include "device/qp.h"
#include "device/srq.h"

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

	ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
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
	ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		vhca_cq_destroy(uctx->dctx, cq->handle,
				&(struct ib_uverbs_destroy_cq_resp){ 0 });
	return ret;
}

int cmd_create_cq(struct cmd_call *call)
{
	struct ib_uverbs_create_cq_resp resp = { 0 };
	struct ib_uverbs_create_cq req;
	struct vhca_cq_create_args args;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
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
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_cq_destroy(call->uctx->dctx, resp.cq_handle,
				&(struct ib_uverbs_destroy_cq_resp){ 0 });
	return ret;
}

int cmd_ex_create_cq(struct cmd_call *call)
{
	struct ib_uverbs_ex_create_cq_resp resp = { 0 };
	struct ib_uverbs_ex_create_cq req;
	struct vhca_cq_create_args args;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
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
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_cq_destroy(call->uctx->dctx, resp.base.cq_handle,
				&(struct ib_uverbs_destroy_cq_resp){ 0 });
	return ret;
}

int cmd_resize_cq(struct cmd_call *call)
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

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
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
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (ret) {
		vhca_cq_resize_abort(cq, &next);
		return ret;
	}
	vhca_cq_resize_commit(cq, &next);
	return 0;
}

int cmd_destroy_cq(struct cmd_call *call)
{
	struct ib_uverbs_destroy_cq_resp resp = { 0 };
	struct ib_uverbs_destroy_cq req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_cq_destroy(call->uctx->dctx, req.cq_handle, &resp);
	/* The CQ is gone either way, as in the kernel. */
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
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

	ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
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
	ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		vhca_qp_destroy(uctx->dctx, resp->qp_handle, &events);
	return ret;
}

int cmd_create_qp(struct cmd_call *call)
{
	struct ib_uverbs_create_qp_resp resp = { 0 };
	struct vhca_qp_create_args args;
	struct ib_uverbs_create_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
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
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_qp_destroy(call->uctx->dctx, resp.qp_handle,
				&(uint32_t){ 0 });
	return ret;
}

int cmd_ex_create_qp(struct cmd_call *call)
{
	struct ib_uverbs_ex_create_qp_resp resp = { 0 };
	struct vhca_qp_create_args args;
	struct ib_uverbs_ex_create_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
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
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		vhca_qp_destroy(call->uctx->dctx, resp.base.qp_handle,
				&(uint32_t){ 0 });
	return ret;
}

int cmd_destroy_qp(struct cmd_call *call)
{
	struct ib_uverbs_destroy_qp_resp resp = { 0 };
	struct ib_uverbs_destroy_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_qp_destroy(call->uctx->dctx, req.qp_handle,
				      &resp.events_reported);
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
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

int cmd_modify_qp(struct cmd_call *call)
{
	struct ib_uverbs_modify_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = check_qkey(call, &req);
	if (ret)
		return ret;
	/* Attributes from IBV_QP_RATE_LIMIT on need the extended command. */
	if (req.attr_mask & ~((uint32_t)IBV_QP_RATE_LIMIT - 1))
		return -EOPNOTSUPP;
	return vhca_qp_modify(call->uctx->dctx, &req);
}

int cmd_ex_modify_qp(struct cmd_call *call)
{
	struct ib_uverbs_ex_modify_qp_resp resp = { 0 };
	struct ib_uverbs_ex_modify_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
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
	return cmd_write_response(call, &resp, sizeof(resp));
}

int cmd_query_qp(struct cmd_call *call)
{
	struct ib_uverbs_query_qp_resp resp;
	struct ib_uverbs_query_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_qp_query(call->uctx->dctx, req.qp_handle, &resp);
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
}

int cmd_create_srq(struct cmd_call *call)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct ib_uverbs_create_srq_resp resp = { 0 };
	struct vhca_create_srq_resp uresp = { 0 };
	struct vhca_create_srq_cmd ucmd;
	struct ib_uverbs_create_srq req;
	struct vhca_srq_layout layout;
	struct vhca_qmem qmem;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
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
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		vhca_srq_destroy(uctx->dctx, resp.srq_handle,
				 &(struct ib_uverbs_destroy_srq_resp){ 0 });
	return ret;
}

int cmd_modify_srq(struct cmd_call *call)
{
	struct ib_uverbs_modify_srq req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	return ret ? ret : vhca_srq_modify(call->uctx->dctx, &req);
}

int cmd_query_srq(struct cmd_call *call)
{
	struct ib_uverbs_query_srq_resp resp;
	struct ib_uverbs_query_srq req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_srq_query(call->uctx->dctx, req.srq_handle, &resp);
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
}

int cmd_destroy_srq(struct cmd_call *call)
{
	struct ib_uverbs_destroy_srq_resp resp = { 0 };
	struct ib_uverbs_destroy_srq req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_srq_destroy(call->uctx->dctx, req.srq_handle, &resp);
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
}

