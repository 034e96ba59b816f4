/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Inside the uverbs write ABI (cmd.h): one command after framing, the
 * request and response helpers every handler uses (cmd.c), and the
 * handlers the command table of cmd.c names:
 *   cmd_context.c  the context, device and port queries, PDs, MRs and
 *                  completion channels
 *   cmd_queues.c   CQs, QPs and SRQs
 * A handler returns 0 or a negative errno; one that has created an
 * object undoes it if its response cannot be written.
 */
#ifndef VHCA_CMD_CALL_H
#define VHCA_CMD_CALL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vhca_peer;
struct vhca_ucontext;

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

/* ---- request and response helpers (cmd.c) ------------------------------------ */

/*
 * uverbs_request(): a shorter request is zero-extended, a longer one must
 * be zero beyond what we understand.
 */
int cmd_read_request(const struct cmd_call *call, void *req, size_t len);
/* Provider data: at least @len bytes; more must be zero (mlx5 rule). */
int cmd_read_udata(const struct cmd_call *call, void *req, size_t len);
/* uverbs_response(): truncate to the caller's size, zero-fill up to it. */
int cmd_write_response(const struct cmd_call *call, const void *resp,
		       size_t len);
/* ib_copy_to_udata() of min(outlen, len), as drivers do. */
int cmd_write_udata_response(const struct cmd_call *call, const void *resp,
			     size_t len);

/* ---- cmd_context.c ---------------------------------------------------------------- */

/* Destroys the device object a handler created (its uobject too). */
void cmd_undo_create(struct cmd_call *call, uint16_t destroy_op,
		     uint32_t handle);
/* DESTROY of a device object and its uobject; the events read, if asked. */
int cmd_destroy_object(struct cmd_call *call, uint16_t op, uint32_t handle,
		       uint32_t *comp_read, uint32_t *async_read);

int cmd_get_context(struct cmd_call *call);
int cmd_query_device(struct cmd_call *call);
int cmd_ex_query_device(struct cmd_call *call);
int cmd_query_port(struct cmd_call *call);
int cmd_alloc_pd(struct cmd_call *call);
int cmd_dealloc_pd(struct cmd_call *call);
int cmd_reg_mr(struct cmd_call *call);
int cmd_rereg_mr(struct cmd_call *call);
int cmd_attach_mcast(struct cmd_call *call);
int cmd_detach_mcast(struct cmd_call *call);
int cmd_dereg_mr(struct cmd_call *call);
int cmd_create_comp_channel(struct cmd_call *call);
int cmd_add_channels(struct cmd_call *call);
int cmd_return_channels(struct cmd_call *call);

/* ---- cmd_queues.c ----------------------------------------------------------------- */

int cmd_create_cq(struct cmd_call *call);
int cmd_ex_create_cq(struct cmd_call *call);
int cmd_resize_cq(struct cmd_call *call);
int cmd_destroy_cq(struct cmd_call *call);
int cmd_create_qp(struct cmd_call *call);
int cmd_ex_create_qp(struct cmd_call *call);
int cmd_destroy_qp(struct cmd_call *call);
int cmd_modify_qp(struct cmd_call *call);
int cmd_ex_modify_qp(struct cmd_call *call);
int cmd_query_qp(struct cmd_call *call);
int cmd_create_srq(struct cmd_call *call);
int cmd_modify_srq(struct cmd_call *call);
int cmd_query_srq(struct cmd_call *call);
int cmd_destroy_srq(struct cmd_call *call);

#endif /* VHCA_CMD_CALL_H */
