// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * uverbs commands of memory regions: REG_MR, REREG_MR, DEREG_MR.  The
 * driver checks what the kernel's uverbs and umem would (arguments, the
 * caller's mappings, in a VM the pages); the device checks the objects.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/devcmd.h>

#include "cmd_call.h"
#include "context.h"
#include "device.h"
#include "device/mr.h"

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
/*
 * Device command @op (REG_MR, REREG_MR) whose body holds @mem and @addr:
 * in a VM, with @translate, @range's pages first (the pinning
 * ib_umem_get() does; held in *pin on success); in vhcad the device
 * reaches the owner's address space itself.  0 or -errno.
 */
static int mr_devcmd(struct cmd_call *call, uint16_t op, void *body,
		     size_t len, struct vhca_devcmd_mem *mem, __u64 *addr,
		     const struct vhca_uobj_mr *range, bool translate,
		     void *out, size_t out_len, void **pin)
{
	const struct vhca_device_memory *m = vhca_device_memory();
	uint64_t *list = NULL, offset;
	int ret;

	*pin = NULL;
	if (m && translate) {
		ret = m->region(call->peer, range->addr, range->length,
				vhca_mr_access_writable(range->access), mem,
				&offset, &list, pin);
		if (ret)
			return ret;
		*addr = offset;
	}
	ret = vhca_ucontext_cmd(call->uctx, op, body, len, list, mem->nlist,
				out, out_len);
	free(list);
	if (ret && *pin) {
		m->unpin(*pin);
		*pin = NULL;
	}
	return ret;
}

static int reg_mr_cmd(struct cmd_call *call, const struct ib_uverbs_reg_mr *req,
		      struct vhca_devcmd_reg_mr_out *out)
{
	const struct vhca_uobj_mr range = {
		.addr = req->start,
		.length = req->length,
		.iova = req->hca_va,
		.access = req->access_flags,
	};
	struct vhca_devcmd_reg_mr mr = {
		.pd_handle = req->pd_handle,
		.access = req->access_flags,
		.addr = req->start,
		.length = req->length,
		.iova = req->hca_va,
	};
	void *pin;
	int ret;

	ret = mr_devcmd(call, VHCA_DEVCMD_REG_MR, &mr, sizeof(mr), &mr.mem,
			&mr.addr, &range, true, out, sizeof(*out), &pin);
	if (ret)
		return ret;
	ret = vhca_uobj_add(call->uctx, out->handle, VHCA_OBJ_MR, 0, NULL, pin);
	if (ret) {
		cmd_undo_create(call, VHCA_DEVCMD_DEREG_MR, out->handle);
		if (pin)
			vhca_device_memory()->unpin(pin);
		return ret;
	}
	vhca_uobj_set_mr(call->uctx, out->handle, &range);
	return 0;
}

int cmd_reg_mr(struct cmd_call *call)
{
	struct vhca_devcmd_reg_mr_out out;
	struct ib_uverbs_reg_mr_resp resp;
	struct ib_uverbs_reg_mr req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (!ret)
		ret = vhca_mr_check_args(req.start, req.length, req.hca_va,
					 req.access_flags);
	/* Inside a VM, MRs are pinned page lists: nothing is on demand. */
	if (!ret && (req.access_flags & IB_UVERBS_ACCESS_ON_DEMAND) &&
	    vhca_device_memory())
		ret = -EOPNOTSUPP;
	if (!ret && !vhca_uobj_exists(call->uctx, req.pd_handle, VHCA_OBJ_PD))
		ret = -EINVAL;
	/*
	 * ib_umem_get() faults the range in (EFAULT if unmapped); an ODP MR
	 * promises nothing about its pages until they are accessed.
	 */
	if (!ret && !(req.access_flags & IB_UVERBS_ACCESS_ON_DEMAND))
		ret = vhca_peer_check_range(call->peer, req.start, req.length,
					    mr_rights(req.access_flags));
	if (!ret)
		ret = reg_mr_cmd(call, &req, &out);
	if (ret)
		return ret;
	resp = (struct ib_uverbs_reg_mr_resp){
		.mr_handle = out.handle,
		.lkey = out.lkey,
		.rkey = out.rkey,
	};
	ret = cmd_write_response(call, &resp, sizeof(resp));
	if (ret)
		cmd_undo_create(call, VHCA_DEVCMD_DEREG_MR, out.handle);
	return ret;
}

/* The device command of REREG_MR for @next, what the MR becomes. */
static int rereg_mr_cmd(struct cmd_call *call,
			const struct ib_uverbs_rereg_mr *req, uint32_t flags,
			const struct vhca_uobj_mr *next,
			struct vhca_devcmd_rereg_mr_out *out, void **pin)
{
	struct vhca_devcmd_rereg_mr cmd = {
		.handle = req->mr_handle,
		.flags = flags,
		.pd_handle = req->pd_handle,
		.access = next->access,
		.addr = next->addr,
		.length = next->length,
		.iova = next->iova,
	};

	return mr_devcmd(call, VHCA_DEVCMD_REREG_MR, &cmd, sizeof(cmd),
			 &cmd.mem, &cmd.addr, next,
			 flags & VHCA_DEVCMD_REREG_TRANS, out, sizeof(*out),
			 pin);
}

/*
 * REREG_MR in ib_uverbs_rereg_mr()'s order of checks and errnos.  What
 * the kernel would find by faulting the new range in (ib_umem_get()) is
 * checked against the caller's mappings, and so is the old range when it
 * becomes writable; in a VM that range is translated (and pinned) again.
 */
int cmd_rereg_mr(struct cmd_call *call)
{
	struct vhca_devcmd_rereg_mr_out out;
	struct ib_uverbs_rereg_mr_resp resp;
	struct ib_uverbs_rereg_mr req;
	struct vhca_uobj_mr old, next;
	void *pin = NULL, *old_pin;
	uint32_t flags;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	if (ret)
		return ret;
	flags = req.flags;
	if (!flags)
		return -EINVAL;
	if (flags & ~VHCA_DEVCMD_REREG_ALL)
		return -EOPNOTSUPP;
	if ((flags & VHCA_DEVCMD_REREG_TRANS) &&
	    (req.start & 4095) != (req.hca_va & 4095))
		return -EINVAL;
	if (!vhca_uobj_get_mr(call->uctx, req.mr_handle, &old))
		return -EINVAL;
	next = old;
	if (flags & VHCA_DEVCMD_REREG_ACCESS)
		next.access = req.access_flags;
	if (flags & VHCA_DEVCMD_REREG_TRANS) {
		next.addr = req.start;
		next.length = req.length;
		next.iova = req.hca_va;
	}
	/* ODP promises no pages: deregister and register such an MR. */
	if ((old.access | next.access) & IB_UVERBS_ACCESS_ON_DEMAND)
		return -EOPNOTSUPP;
	ret = vhca_mr_check_args(next.addr, next.length, next.iova,
				 next.access);
	if (ret)
		return ret;
	if ((flags & VHCA_DEVCMD_REREG_PD) &&
	    !vhca_uobj_exists(call->uctx, req.pd_handle, VHCA_OBJ_PD))
		return -EINVAL;
	if (vhca_mr_access_writable(next.access) &&
	    !vhca_mr_access_writable(old.access))
		flags |= VHCA_DEVCMD_REREG_TRANS;	/* the same range, writable */
	if (flags & VHCA_DEVCMD_REREG_TRANS)
		ret = vhca_peer_check_range(call->peer, next.addr, next.length,
					    mr_rights(next.access));
	if (!ret)
		ret = rereg_mr_cmd(call, &req, flags, &next, &out, &pin);
	if (ret)
		return ret;
	/* Done, as in the kernel, even if the response cannot be written. */
	if (pin) {
		old_pin = vhca_uobj_swap_pin(call->uctx, req.mr_handle, pin);
		if (old_pin)
			vhca_device_memory()->unpin(old_pin);
	}
	vhca_uobj_set_mr(call->uctx, req.mr_handle, &next);
	resp = (struct ib_uverbs_rereg_mr_resp){
		.lkey = out.lkey,
		.rkey = out.rkey,
	};
	return cmd_write_response(call, &resp, sizeof(resp));
}

int cmd_dereg_mr(struct cmd_call *call)
{
	struct ib_uverbs_dereg_mr req;
	int ret;

	ret = cmd_read_request(call, &req, sizeof(req));
	return ret ? ret :
		     cmd_destroy_object(call, VHCA_DEVCMD_DEREG_MR,
					req.mr_handle, NULL, NULL);
}
