// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: on-demand paging.
 *
 * The device reaches a host process's memory through its address space
 * at each access, never through pages pinned at registration, so every
 * MR of a host process already behaves as ODP promises: pages mapped
 * later are reached, a page that is not mapped when the device needs it
 * is an access error completion.  IBV_ACCESS_ON_DEMAND therefore only
 * skips the registration-time check that the range is mapped, and start
 * 0 / length SIZE_MAX registers the whole address space (implicit ODP).
 * Inside a VM the device needs pinned guest-physical pages: ODP is not
 * advertised there and is refused (verbs.c).
 *
 * ibv_advise_mr prefetches what an application will use soon: here that
 * means faulting the pages in now (MADV_POPULATE_READ / _WRITE), as the
 * kernel's ODP prefetch faults them into the HCA's page tables.  The
 * scatter list must lie in ODP MRs of the PD, as ib_uverbs checks; we
 * keep the context's ODP MRs on a list for that (prefetches are rare and
 * ODP MRs few, so a walk is enough).
 */
#include <errno.h>
#include <sys/mman.h>

#include "vhca.h"

void vhca_odp_add(struct vhca_context *ctx, struct vhca_mr *mr)
{
	pthread_mutex_lock(&ctx->odp_lock);
	mr->odp_next = ctx->odp_mrs;
	if (mr->odp_next)
		mr->odp_next->odp_pprev = &mr->odp_next;
	mr->odp_pprev = &ctx->odp_mrs;
	ctx->odp_mrs = mr;
	pthread_mutex_unlock(&ctx->odp_lock);
}

void vhca_odp_remove(struct vhca_context *ctx, struct vhca_mr *mr)
{
	pthread_mutex_lock(&ctx->odp_lock);
	*mr->odp_pprev = mr->odp_next;
	if (mr->odp_next)
		mr->odp_next->odp_pprev = mr->odp_pprev;
	mr->odp_pprev = NULL;
	pthread_mutex_unlock(&ctx->odp_lock);
}

/* Does an ODP MR of @pd with local key @sge->lkey cover the element? */
static bool odp_covers(struct vhca_context *ctx, struct ibv_pd *pd,
		       const struct ibv_sge *sge)
{
	bool found = false;

	pthread_mutex_lock(&ctx->odp_lock);
	for (struct vhca_mr *mr = ctx->odp_mrs; mr && !found;
	     mr = mr->odp_next) {
		const struct ibv_mr *m = &mr->vmr.ibv_mr;

		uint64_t start = (uintptr_t)m->addr, len = m->length;

		found = m->lkey == sge->lkey && m->pd == pd &&
			sge->addr >= start && sge->addr - start <= len &&
			sge->length <= len - (sge->addr - start);
	}
	pthread_mutex_unlock(&ctx->odp_lock);
	return found;
}

int vhca_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
		   uint32_t flags, struct ibv_sge *sg_list, uint32_t num_sge)
{
	struct vhca_context *ctx = to_vctx(pd->context);
	int madv, ret = 0;

	switch (advice) {
	case IBV_ADVISE_MR_ADVICE_PREFETCH:
		madv = MADV_POPULATE_READ;
		break;
	case IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE:
		madv = MADV_POPULATE_WRITE;
		break;
	case IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT:
		madv = 0;	/* only what is mapped already: nothing to do */
		break;
	default:
		return EOPNOTSUPP;
	}
	if (flags & ~(uint32_t)IBV_ADVISE_MR_FLAG_FLUSH || !num_sge || !sg_list)
		return EINVAL;
	for (uint32_t i = 0; i < num_sge; i++)
		if (!sg_list[i].length || !odp_covers(ctx, pd, &sg_list[i]))
			return EINVAL;
	for (uint32_t i = 0; i < num_sge && madv && !ret; i++)
		ret = vhca_populate((void *)(uintptr_t)sg_list[i].addr,
				    sg_list[i].length, madv);
	/*
	 * Without FLUSH a prefetch is a hint the kernel runs later and whose
	 * failure nobody sees; with it, the caller waits and learns.
	 */
	if (!(flags & IBV_ADVISE_MR_FLAG_FLUSH))
		return 0;
	return ret ? EFAULT : 0;
}
