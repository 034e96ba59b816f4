// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * uverbs commands of the data path's queues: CQs, QPs and SRQs.  The
 * create and resize commands take the queue memory the provider passes
 * (an fd and a layout in its udata) and hand it to the device in a
 * device command (include/vhca/devcmd.h).  Framing, dispatch and the
 * errno rules: cmd.c.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>

#include "cmd_call.h"
#include "context.h"

/* List pages a queue's memory may take in a VM (1 GiB of queue). */
#define QUEUE_LISTS_MAX 512

/* Queue memory of a create or resize: described, and held (VM) in @pin. */
struct queue_mem {
	struct vhca_devcmd_mem mem;
	uint64_t lists[QUEUE_LISTS_MAX];
	void *pin;
};

static int take_queue(struct cmd_call *call, int fd, uint64_t size,
		      struct queue_mem *q)
{
	return vhca_ucontext_queue_mem(call->uctx, fd, size, &q->mem, q->lists,
				       QUEUE_LISTS_MAX, &q->pin);
}

/*
 * A create command with its queue memory: the command takes the memory
 * (the fd, in-process) over; a created object's uobject holds the pin.
 */
static int create_queue(struct cmd_call *call, uint16_t op, void *body,
			size_t len, struct queue_mem *q, void *out,
			size_t out_len)
{
	int ret = vhca_ucontext_cmd(call->uctx, op, body, len, q->lists,
				    q->mem.kind == VHCA_DEVCMD_MEM_PAGES ?
					    q->mem.nlist :
					    0,
				    out, out_len);

	q->mem = (struct vhca_devcmd_mem){ .fd = -1 };
	if (ret)
		vhca_ucontext_drop_mem(&q->mem, &q->pin);
	return ret;
}

/* The uobject of a created queue, or the queue destroyed again. */
static int add_queue_uobj(struct cmd_call *call, uint16_t destroy_op,
			  uint32_t handle, uint8_t type, uint64_t user_handle,
			  struct vhca_comp_channel *channel, struct queue_mem *q)
{
	int ret = vhca_uobj_add(call->uctx, handle, type, user_handle, channel,
				q->pin);

	if (ret) {
		cmd_undo_create(call, destroy_op, handle);
		if (channel)
			vhca_comp_channel_put(channel);
		vhca_ucontext_drop_mem(&q->mem, &q->pin);
	}
	q->pin = NULL;
	return ret;
}

/* Data path objects: CQs and QPs */

static int create_cq(struct cmd_call *call, int32_t comp_channel,
		     struct vhca_devcmd_create_cq *cmd,
		     struct ib_uverbs_create_cq_resp *resp)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct vhca_create_cq_resp uresp = { 0 };
	struct vhca_comp_channel *channel = NULL;
	struct vhca_devcmd_cq_out out;
	struct vhca_create_cq_cmd ucmd;
	struct queue_mem q;
	int ret;

	ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
	if (ret)
		return ret;
	if (!uctx->data_path)
		return -EOPNOTSUPP;	/* a context without a data path */
	if (comp_channel >= 0) {
		channel = vhca_channels_get_comp(&uctx->channels, uctx->peer,
						 comp_channel);
		if (!channel)
			return -EINVAL;
	}
	ret = take_queue(call, ucmd.buf_fd, ucmd.buf_size, &q);
	if (ret) {
		if (channel)
			vhca_comp_channel_put(channel);
		return ret;
	}
	cmd->channel = channel ? (uint32_t)comp_channel :
				 VHCA_DEVCMD_NO_CHANNEL;
	cmd->cqe_count = ucmd.cqe_count;
	cmd->ring_offset = ucmd.ring_offset;
	cmd->db_offset = ucmd.db_offset;
	cmd->mem = q.mem;
	ret = create_queue(call, VHCA_DEVCMD_CREATE_CQ, cmd, sizeof(*cmd), &q,
			   &out, sizeof(out));
	if (!ret)
		ret = add_queue_uobj(call, VHCA_DEVCMD_DESTROY_CQ, out.handle,
				     VHCA_OBJ_CQ, cmd->user_handle, channel,
				     &q);
	else if (channel)
		vhca_comp_channel_put(channel);
	if (ret)
		return ret;
	resp->cq_handle = out.handle;
	resp->cqe = out.cqe;
	uresp.cqn = out.cqn;
	ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DESTROY_CQ, out.handle);
	return ret;
}

int cmd_create_cq(struct cmd_call *call)
{
	struct ib_uverbs_create_cq_resp resp = { 0 };
	struct ib_uverbs_create_cq req;
	struct vhca_devcmd_create_cq cmd;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	cmd = (struct vhca_devcmd_create_cq){
		.user_handle = req.user_handle,
		.cqe = req.cqe,
		.comp_vector = req.comp_vector,
	};
	ret = create_cq(call, req.comp_channel, &cmd, &resp);
	if (ret)
		return ret;
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DESTROY_CQ, resp.cq_handle);
	return ret;
}

int cmd_ex_create_cq(struct cmd_call *call)
{
	struct ib_uverbs_ex_create_cq_resp resp = { 0 };
	struct ib_uverbs_ex_create_cq req;
	struct vhca_devcmd_create_cq cmd;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (req.comp_mask || req.reserved)
		return -EINVAL;
	/* Every CQE is stamped; overruns are always errors (no IGNORE). */
	if (req.flags & ~(uint32_t)IB_UVERBS_CQ_FLAGS_TIMESTAMP_COMPLETION)
		return -EOPNOTSUPP;
	cmd = (struct vhca_devcmd_create_cq){
		.user_handle = req.user_handle,
		.cqe = req.cqe,
		.comp_vector = req.comp_vector,
	};
	ret = create_cq(call, req.comp_channel, &cmd, &resp.base);
	if (ret)
		return ret;
	resp.response_length = (uint32_t)(call->outlen < sizeof(resp) ?
						  call->outlen :
						  sizeof(resp));
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DESTROY_CQ,
				resp.base.cq_handle);
	return ret;
}

/*
 * The kernel resizes first and writes the response after; we make sure
 * the response can be written first, so that a caller who cannot take it
 * keeps its old ring (a resize is not undone).
 */
int cmd_resize_cq(struct cmd_call *call)
{
	struct ib_uverbs_resize_cq_resp resp = { 0 };
	struct vhca_create_cq_resp uresp = { 0 };
	struct vhca_devcmd_resize_cq cmd;
	struct vhca_devcmd_cq_out out;
	struct vhca_create_cq_cmd ucmd;
	struct ib_uverbs_resize_cq req;
	struct queue_mem q;
	void *old_pin;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
	if (!ret && !vhca_uobj_exists(call->uctx, req.cq_handle, VHCA_OBJ_CQ))
		ret = -EINVAL;
	if (!ret)
		ret = cmd_write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (!ret)
		ret = take_queue(call, ucmd.buf_fd, ucmd.buf_size, &q);
	if (ret)
		return ret;
	cmd = (struct vhca_devcmd_resize_cq){
		.handle = req.cq_handle,
		.cqe = req.cqe,
		.cqe_count = ucmd.cqe_count,
		.ring_offset = ucmd.ring_offset,
		.db_offset = ucmd.db_offset,
		.mem = q.mem,
	};
	ret = create_queue(call, VHCA_DEVCMD_RESIZE_CQ, &cmd, sizeof(cmd), &q,
			   &out, sizeof(out));
	if (ret)
		return ret;
	/* The new ring is the CQ's: its memory is held instead of the old. */
	old_pin = vhca_uobj_swap_pin(call->uctx, req.cq_handle, q.pin);
	vhca_ucontext_drop_mem(&q.mem, &old_pin);
	resp.cqe = out.cqe;
	uresp.cqn = out.cqn;
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	return ret;
}

int cmd_destroy_cq(struct cmd_call *call)
{
	struct ib_uverbs_destroy_cq_resp resp = { 0 };
	struct ib_uverbs_destroy_cq req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = cmd_destroy_object(call, VHCA_DEVCMD_DESTROY_CQ,
					 req.cq_handle,
					 &resp.comp_events_reported,
					 &resp.async_events_reported);
	/* The CQ is gone either way, as in the kernel. */
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
}

static int create_qp(struct cmd_call *call, struct vhca_devcmd_create_qp *cmd,
		     struct ib_uverbs_create_qp_resp *resp)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct vhca_create_qp_resp uresp = { 0 };
	struct vhca_create_qp_cmd ucmd;
	struct queue_mem q;
	int ret;

	ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
	if (ret)
		return ret;
	if (ucmd.reserved)
		return -EINVAL;
	if (!uctx->data_path)
		return -EOPNOTSUPP;	/* a context without a data path */
	ret = take_queue(call, ucmd.buf_fd, ucmd.buf_size, &q);
	if (ret)
		return ret;
	cmd->sq_offset = ucmd.sq_offset;
	cmd->sq_wqe_count = ucmd.sq_wqe_count;
	cmd->sq_stride = ucmd.sq_stride;
	cmd->rq_offset = ucmd.rq_offset;
	cmd->rq_wqe_count = ucmd.rq_wqe_count;
	cmd->rq_stride = ucmd.rq_stride;
	cmd->db_offset = ucmd.db_offset;
	cmd->mem = q.mem;
	ret = create_queue(call, VHCA_DEVCMD_CREATE_QP, cmd, sizeof(*cmd), &q,
			   resp, sizeof(*resp));
	if (!ret)
		ret = add_queue_uobj(call, VHCA_DEVCMD_DESTROY_QP,
				     resp->qp_handle, VHCA_OBJ_QP,
				     cmd->user_handle, NULL, &q);
	if (ret)
		return ret;
	uresp.max_inline_data = resp->max_inline_data;
	ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DESTROY_QP, resp->qp_handle);
	return ret;
}

int cmd_create_qp(struct cmd_call *call)
{
	struct ib_uverbs_create_qp_resp resp = { 0 };
	struct vhca_devcmd_create_qp cmd;
	struct ib_uverbs_create_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	cmd = (struct vhca_devcmd_create_qp){
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
	ret = create_qp(call, &cmd, &resp);
	if (ret)
		return ret;
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DESTROY_QP, resp.qp_handle);
	return ret;
}

int cmd_ex_create_qp(struct cmd_call *call)
{
	struct ib_uverbs_ex_create_qp_resp resp = { 0 };
	struct vhca_devcmd_create_qp cmd;
	struct ib_uverbs_ex_create_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (req.comp_mask & ~(uint32_t)IB_UVERBS_CREATE_QP_MASK_IND_TABLE)
		return -EINVAL;
	if (req.comp_mask || req.source_qpn || req.reserved)
		return -EOPNOTSUPP;
	cmd = (struct vhca_devcmd_create_qp){
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
	ret = create_qp(call, &cmd, &resp.base);
	if (ret)
		return ret;
	resp.response_length = (uint32_t)(call->outlen < sizeof(resp) ?
						  call->outlen :
						  sizeof(resp));
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DESTROY_QP,
				resp.base.qp_handle);
	return ret;
}

int cmd_destroy_qp(struct cmd_call *call)
{
	struct ib_uverbs_destroy_qp_resp resp = { 0 };
	struct ib_uverbs_destroy_qp req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = cmd_destroy_object(call, VHCA_DEVCMD_DESTROY_QP,
					 req.qp_handle, NULL,
					 &resp.events_reported);
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
}

/* ATTACH_MCAST and DETACH_MCAST: the checks are the device's (mcast.h). */
static int mcast_cmd(struct cmd_call *call, uint16_t op)
{
	struct ib_uverbs_attach_mcast req;	/* DETACH's has this layout */
	struct vhca_devcmd_mcast cmd;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	if (!vhca_uobj_exists(call->uctx, req.qp_handle, VHCA_OBJ_QP))
		return -EINVAL;
	cmd = (struct vhca_devcmd_mcast){ .qp_handle = req.qp_handle,
					  .mlid = req.mlid };
	memcpy(cmd.gid, req.gid, sizeof(cmd.gid));
	return vhca_ucontext_cmd(call->uctx, op, &cmd, sizeof(cmd), NULL, 0,
				 NULL, 0);
}

int cmd_attach_mcast(struct cmd_call *call)
{
	return mcast_cmd(call, VHCA_DEVCMD_ATTACH_MCAST);
}

int cmd_detach_mcast(struct cmd_call *call)
{
	return mcast_cmd(call, VHCA_DEVCMD_DETACH_MCAST);
}

_Static_assert(sizeof(struct ib_uverbs_attach_mcast) ==
		       sizeof(struct ib_uverbs_detach_mcast),
	       "ATTACH_MCAST and DETACH_MCAST have one layout");

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
	return vhca_ucontext_cmd(call->uctx, VHCA_DEVCMD_MODIFY_QP, &req,
				 sizeof(req), NULL, 0, NULL, 0);
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
	ret = vhca_ucontext_cmd(call->uctx, VHCA_DEVCMD_MODIFY_QP, &req.base,
				sizeof(req.base), NULL, 0, NULL, 0);
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
		ret = vhca_ucontext_cmd(call->uctx, VHCA_DEVCMD_QUERY_QP,
					&(struct vhca_devcmd_query_qp){
						.handle = req.qp_handle,
						.attr_mask = req.attr_mask,
					},
					sizeof(struct vhca_devcmd_query_qp),
					NULL, 0, &resp, sizeof(resp));
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
}

int cmd_create_srq(struct cmd_call *call)
{
	struct vhca_ucontext *uctx = call->uctx;
	struct ib_uverbs_create_srq_resp resp = { 0 };
	struct vhca_create_srq_resp uresp = { 0 };
	struct vhca_devcmd_create_srq cmd;
	struct vhca_create_srq_cmd ucmd;
	struct queue_mem q;
	int ret;

	ret = cmd_read_request(call, &cmd.core, sizeof(cmd.core));
	if (!ret)
		ret = cmd_read_udata(call, &ucmd, sizeof(ucmd));
	if (!ret && ucmd.reserved)
		ret = -EINVAL;
	if (!ret && !uctx->data_path)
		ret = -EOPNOTSUPP;
	if (!ret)
		ret = take_queue(call, ucmd.buf_fd, ucmd.buf_size, &q);
	if (ret)
		return ret;
	cmd.wqe_count = ucmd.wqe_count;
	cmd.stride = ucmd.stride;
	cmd.ring_offset = ucmd.ring_offset;
	cmd.db_offset = ucmd.db_offset;
	cmd.mem = q.mem;
	ret = create_queue(call, VHCA_DEVCMD_CREATE_SRQ, &cmd, sizeof(cmd), &q,
			   &resp, sizeof(resp));
	if (!ret)
		ret = add_queue_uobj(call, VHCA_DEVCMD_DESTROY_SRQ,
				     resp.srq_handle, VHCA_OBJ_SRQ,
				     cmd.core.user_handle, NULL, &q);
	if (ret)
		return ret;
	uresp.srqn = resp.srqn;
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (!ret)
		ret = cmd_write_udata_response(call, &uresp, sizeof(uresp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DESTROY_SRQ, resp.srq_handle);
	return ret;
}

int cmd_modify_srq(struct cmd_call *call)
{
	struct ib_uverbs_modify_srq req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	return ret ? ret :
		     vhca_ucontext_cmd(call->uctx, VHCA_DEVCMD_MODIFY_SRQ, &req,
				       sizeof(req), NULL, 0, NULL, 0);
}

int cmd_query_srq(struct cmd_call *call)
{
	struct ib_uverbs_query_srq_resp resp;
	struct ib_uverbs_query_srq req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_ucontext_cmd(call->uctx, VHCA_DEVCMD_QUERY_SRQ,
					&(struct vhca_devcmd_handle){
						.handle = req.srq_handle,
					},
					sizeof(struct vhca_devcmd_handle),
					NULL, 0, &resp, sizeof(resp));
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
}

int cmd_destroy_srq(struct cmd_call *call)
{
	struct ib_uverbs_destroy_srq_resp resp = { 0 };
	struct ib_uverbs_destroy_srq req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = cmd_destroy_object(call, VHCA_DEVCMD_DESTROY_SRQ,
					 req.srq_handle, NULL,
					 &resp.events_reported);
	return ret ? ret : cmd_write_response(call, &resp, sizeof(resp));
}
