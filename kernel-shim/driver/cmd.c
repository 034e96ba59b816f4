// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The uverbs write ABI: framing, dispatch, the command table and the
 * request and response helpers; the handlers are in cmd_context.c and
 * cmd_queues.c (cmd_call.h).
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
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>

#include "cmd.h"
#include "cmd_call.h"
#include "context.h"
#include "device/pf.h"

/* Longest write we parse; real commands are a few hundred bytes. */
#define VHCA_CMD_MAX_LEN (64 * 1024)

#define offsetofend(type, member)                                             \
	(offsetof(type, member) + sizeof(((type *)0)->member))

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
int cmd_read_request(const struct cmd_call *call, void *req, size_t len)
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
int cmd_read_udata(const struct cmd_call *call, void *req, size_t len)
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
int cmd_write_response(const struct cmd_call *call, const void *resp,
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
int cmd_write_udata_response(const struct cmd_call *call, const void *resp,
			     size_t len)
{
	size_t n = call->udata_outlen < len ? call->udata_outlen : len;

	return vhca_peer_write(call->peer, call->udata_out, resp, n);
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
	[IB_USER_VERBS_CMD_REREG_MR] =
		LEGACY("REREG_MR", cmd_rereg_mr, struct ib_uverbs_rereg_mr,
		       sizeof(struct ib_uverbs_rereg_mr_resp),
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
	[IB_USER_VERBS_CMD_ATTACH_MCAST] =
		LEGACY("ATTACH_MCAST", cmd_attach_mcast,
		       struct ib_uverbs_attach_mcast, 0, 0),
	[IB_USER_VERBS_CMD_DETACH_MCAST] =
		LEGACY("DETACH_MCAST", cmd_detach_mcast,
		       struct ib_uverbs_detach_mcast, 0, 0),
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
