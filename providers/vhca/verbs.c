// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: device/port queries, protection domains and memory
 * regions.  These are plain uverbs write commands without vhca udata
 * (include/vhca/abi.h); the device validates everything itself.
 *
 * Operations return a positive errno value; constructors return NULL with
 * errno set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhca.h"

int vhca_query_device_ex(struct ibv_context *context,
			 const struct ibv_query_device_ex_input *input,
			 struct ibv_device_attr_ex *attr, size_t attr_size)
{
	struct ib_uverbs_ex_query_device_resp resp;
	size_t resp_size = sizeof(resp);
	uint64_t fw;
	int ret;

	memset(&resp, 0, sizeof(resp));
	ret = ibv_cmd_query_device_any(context, input, attr, attr_size, &resp,
				       &resp_size);
	if (ret)
		return ret;

	/* The device reports fw_ver as major:16 minor:16 sub_minor:16. */
	fw = resp.base.fw_ver;
	snprintf(attr->orig_attr.fw_ver, sizeof(attr->orig_attr.fw_ver),
		 "%u.%u.%u", (unsigned int)((fw >> 32) & 0xffff),
		 (unsigned int)((fw >> 16) & 0xffff),
		 (unsigned int)(fw & 0xffff));
	return 0;
}

int vhca_query_port(struct ibv_context *context, uint8_t port_num,
		    struct ibv_port_attr *port_attr)
{
	struct ibv_query_port cmd;

	memset(&cmd, 0, sizeof(cmd));
	return ibv_cmd_query_port(context, port_num, port_attr, &cmd,
				  sizeof(cmd));
}

struct ibv_pd *vhca_alloc_pd(struct ibv_context *context)
{
	struct ib_uverbs_alloc_pd_resp resp;
	struct ibv_alloc_pd cmd;
	struct ibv_pd *pd;
	int ret;

	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return NULL;

	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));
	ret = ibv_cmd_alloc_pd(context, pd, &cmd, sizeof(cmd), &resp,
			       sizeof(resp));
	if (ret) {
		free(pd);
		errno = ret;
		return NULL;
	}
	return pd;
}

int vhca_dealloc_pd(struct ibv_pd *pd)
{
	int ret;

	ret = ibv_cmd_dealloc_pd(pd);
	if (ret)
		return ret;

	free(pd);
	return 0;
}

/*
 * Faults the range in (for writing if the HCA may write it, which breaks
 * copy-on-write) and locks it.  The explicit populate is what a kernel's
 * get_user_pages() does; mlock() alone would too, except under
 * AddressSanitizer, whose mlock() does nothing.
 */
int vhca_populate(void *addr, size_t length, int advice)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)addr & ~(page - 1);
	size_t len = (uintptr_t)addr + length - start;

	return madvise((void *)start, len, advice) ? errno : 0;
}

/*
 * Pins [addr, addr + length) for the device: 0, EFAULT where
 * get_user_pages() would fail (not mapped, or not writable for a
 * writable MR), ENOMEM beyond RLIMIT_MEMLOCK.
 */
static int vhca_pin(void *addr, size_t length, int access)
{
	int advice = (access & (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
				IBV_ACCESS_REMOTE_ATOMIC)) ?
			     MADV_POPULATE_WRITE :
			     MADV_POPULATE_READ;
	int ret = vhca_populate(addr, length, advice);

	/* EINVAL: a kernel without MADV_POPULATE_*; mlock() faults in. */
	if (ret && ret != EINVAL)
		return EFAULT;
	return mlock(addr, length) ? ENOMEM : 0;
}

struct ibv_mr *vhca_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			   uint64_t hca_va, int access)
{
	struct vhca_mr *mr = vhca_mr_new(pd, addr, length, hca_va, access);

	return mr ? &mr->vmr.ibv_mr : NULL;
}

struct vhca_mr *vhca_mr_new(struct ibv_pd *pd, void *addr, size_t length,
			    uint64_t hca_va, int access)
{
	struct ib_uverbs_reg_mr_resp resp;
	struct ibv_reg_mr cmd;
	struct vhca_mr *mr;
	int ret;

	/*
	 * In a VM the device reaches the pages themselves: pinned, as the
	 * kernel's umem pins them (and within RLIMIT_MEMLOCK, as there).
	 * mlock() faults a writable private mapping in for writing, so a
	 * writable MR is our own copy, never the shared zero page.  Not
	 * undone at deregistration: locks do not nest, and another MR may
	 * share the pages.
	 */
	/* ...so nothing there can be on demand (the VM's device refuses too). */
	if (to_vctx(pd->context)->vm && (access & IBV_ACCESS_ON_DEMAND)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (to_vctx(pd->context)->vm && length &&
	    (errno = vhca_pin(addr, length, access)))
		return NULL;
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return NULL;

	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));
	ret = ibv_cmd_reg_mr(pd, addr, length, hca_va, access, &mr->vmr, &cmd,
			     sizeof(cmd), &resp, sizeof(resp));
	if (ret) {
		free(mr);
		errno = ret;
		return NULL;
	}
	mr->access = access;
	if (access & IBV_ACCESS_ON_DEMAND)
		vhca_odp_add(to_vctx(pd->context), mr);
	return mr;
}

/*
 * ibv_rereg_mr() checked the flags and that a new range is given; the
 * device checks the rest.  0 or an errno (libibverbs turns it into
 * IBV_REREG_MR_ERR_CMD).
 */
int vhca_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
		  void *addr, size_t length, int access)
{
	struct vhca_mr *mr = vhca_container_of(vmr, struct vhca_mr, vmr);
	struct vhca_context *vctx = to_vctx(vmr->ibv_mr.context);
	int now = flags & IBV_REREG_MR_CHANGE_ACCESS ? access : mr->access;
	struct ib_uverbs_rereg_mr_resp resp;
	struct ibv_rereg_mr cmd;
	int ret;

	/* As the kernel: device memory's MRs are not re-registered. */
	if (mr->dm) {
		errno = EINVAL;
		return EINVAL;
	}
	/*
	 * In a VM the device takes the pages as they are: a new range is
	 * pinned as at registration, with the access the MR will have (a
	 * writable MR's pages faulted in for writing, its own copies, not
	 * the shared zero page), and so is the old one when it becomes
	 * writable (mlock() breaks copy-on-write for a writable MR).
	 */
	if (vctx->vm && (flags & IBV_REREG_MR_CHANGE_TRANSLATION) &&
	    (errno = vhca_pin(addr, length, now)))
		return errno;
	if (vctx->vm && !(flags & IBV_REREG_MR_CHANGE_TRANSLATION) &&
	    (flags & IBV_REREG_MR_CHANGE_ACCESS) && vmr->ibv_mr.length &&
	    (errno = vhca_pin(vmr->ibv_mr.addr, vmr->ibv_mr.length, now)))
		return errno;
	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));
	ret = ibv_cmd_rereg_mr(vmr, (uint32_t)flags, addr, length,
			       (uintptr_t)addr, access, pd, &cmd, sizeof(cmd),
			       &resp, sizeof(resp));
	if (!ret)
		mr->access = now;
	return ret;
}

int vhca_dereg_mr(struct verbs_mr *vmr)
{
	struct vhca_mr *mr = vhca_container_of(vmr, struct vhca_mr, vmr);
	int ret;

	ret = ibv_cmd_dereg_mr(vmr);
	if (ret)
		return ret;

	if (mr->dm)
		vhca_dm_put(mr->dm);
	if (mr->odp_pprev)
		vhca_odp_remove(to_vctx(vmr->ibv_mr.context), mr);
	free(mr);
	return 0;
}
