// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: extended CQs (ibv_create_cq_ex, ibv_start_poll /
 * ibv_next_poll / ibv_end_poll, the ibv_wc_read_* accessors) and the
 * device clock (ibv_query_rt_values_ex).
 *
 * The ring is the one cq.c makes; only the way it is read differs.  The
 * device stamps every CQE with its clock (struct vhca_cqe.timestamp:
 * nanoseconds of the device host's CLOCK_MONOTONIC, hca_core_clock 1 GHz),
 * so a CQ needs no mode to carry timestamps.  A process on the device's
 * host (a namespace guest shares the host's monotonic clock: vhca-guest
 * makes no time namespace) can read that clock itself, which gives
 * ibv_query_rt_values_ex and wallclock conversion without a system call
 * to vhcad; a VM's clock is not the device's, so there both are refused
 * (EOPNOTSUPP) and raw timestamps, which still order and time
 * completions, remain.
 *
 * Between start_poll and end_poll, cq->cur is the CQE being read and
 * cq->consumer its index; the slot is given back to the device (the
 * consumer published) at end_poll, as mlx5 does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "vhca.h"

#define VHCA_WC_FLAGS                                                        \
	(IBV_WC_STANDARD_FLAGS | IBV_WC_EX_WITH_COMPLETION_TIMESTAMP |        \
	 IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK)

static struct vhca_cq *ex_to_vcq(struct ibv_cq_ex *ibcq)
{
	return to_vcq(ibv_cq_ex_to_cq(ibcq));
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The CQE at cq->consumer, if written: then it is current. */
static int cq_ex_load(struct vhca_cq *cq)
{
	const struct vhca_cqe *cqe =
		&cq->ring[cq->consumer & (cq->cqe_count - 1)];

	if (!vhca_cqe_valid(cq, cq->consumer,
			    vhca_load_acquire8(&cqe->owner))) {
		cq->cur = NULL;
		return ENOENT;
	}
	/* the acquire load above orders the body reads after it */
	cq->cur = cqe;
	cq->ibv_cq_ex.status = (enum ibv_wc_status)cqe->status;
	cq->ibv_cq_ex.wr_id = cqe->wr_id;
	return 0;
}

static void cq_ex_unlock(struct vhca_cq *cq)
{
	if (!cq->single_threaded)
		pthread_spin_unlock(&cq->lock);
}

static int cq_ex_start_poll(struct ibv_cq_ex *ibcq,
			    struct ibv_poll_cq_attr *attr)
{
	struct vhca_cq *cq = ex_to_vcq(ibcq);
	int ret;

	if (attr->comp_mask)
		return EINVAL;
	if (!cq->single_threaded)
		pthread_spin_lock(&cq->lock);
	ret = cq_ex_load(cq);
	if (ret) {
		cq_ex_unlock(cq);
		/* The device is gone: what it wrote is polled, then an error. */
		if (vhca_ctx_lost(to_vctx(ibcq->context)))
			return EIO;
	}
	return ret;	/* ENOENT: no end_poll follows */
}

static int cq_ex_next_poll(struct ibv_cq_ex *ibcq)
{
	struct vhca_cq *cq = ex_to_vcq(ibcq);

	if (cq->cur)
		cq->consumer++;
	return cq_ex_load(cq);
}

static void cq_ex_end_poll(struct ibv_cq_ex *ibcq)
{
	struct vhca_cq *cq = ex_to_vcq(ibcq);

	if (cq->cur) {
		cq->consumer++;
		cq->cur = NULL;
	}
	/* our reads of the CQEs happen before the slots are reused */
	vhca_store_release32(&cq->db->consumer, cq->consumer);
	cq_ex_unlock(cq);
}

static enum ibv_wc_opcode cq_ex_read_opcode(struct ibv_cq_ex *ibcq)
{
	return (enum ibv_wc_opcode)ex_to_vcq(ibcq)->cur->opcode;
}

static uint32_t cq_ex_read_vendor_err(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->vendor_err;
}

static uint32_t cq_ex_read_byte_len(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->byte_len;
}

static __be32 cq_ex_read_imm_data(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->imm_data;
}

static uint32_t cq_ex_read_qp_num(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->qp_num;
}

static uint32_t cq_ex_read_src_qp(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->src_qp;
}

static unsigned int cq_ex_read_wc_flags(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->wc_flags;
}

static uint32_t cq_ex_read_slid(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->slid;
}

static uint8_t cq_ex_read_sl(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->sl;
}

static uint8_t cq_ex_read_dlid_path_bits(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->dlid_path_bits;
}

static uint64_t cq_ex_read_completion_ts(struct ibv_cq_ex *ibcq)
{
	return ex_to_vcq(ibcq)->cur->timestamp;
}

/* Device ticks are monotonic nanoseconds: shift them to the epoch. */
static uint64_t cq_ex_read_wallclock_ns(struct ibv_cq_ex *ibcq)
{
	uint64_t ts = ex_to_vcq(ibcq)->cur->timestamp;

	return ts + (clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC));
}

/* Refuses what the CQ cannot be, as mlx5 does: EOPNOTSUPP. */
static int cq_ex_check(const struct vhca_context *ctx,
		       const struct ibv_cq_init_attr_ex *attr)
{
	uint64_t wc_flags = VHCA_WC_FLAGS;

	if (ctx->vm)	/* a VM's clock is not the device's */
		wc_flags &= ~(uint64_t)IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK;
	if (attr->comp_mask & ~(uint32_t)IBV_CQ_INIT_ATTR_MASK_FLAGS)
		return EOPNOTSUPP;	/* parent domains: none */
	if (attr->wc_flags & ~wc_flags)
		return EOPNOTSUPP;
	if ((attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS) &&
	    (attr->flags & ~(uint32_t)IBV_CREATE_CQ_ATTR_SINGLE_THREADED))
		return EOPNOTSUPP;	/* IGNORE_OVERRUN: overruns are errors */
	if (attr->cqe > (uint32_t)INT32_MAX)
		return EINVAL;
	return 0;
}

struct ibv_cq_ex *vhca_create_cq_ex(struct ibv_context *context,
				    struct ibv_cq_init_attr_ex *attr)
{
	struct ibv_cq_ex *ex;
	struct vhca_cq *cq;
	int ret;

	ret = cq_ex_check(to_vctx(context), attr);
	if (ret) {
		errno = ret;
		return NULL;
	}
	cq = vhca_cq_new(context, (int)attr->cqe, attr->channel,
			 (int)attr->comp_vector);
	if (!cq)
		return NULL;
	cq->single_threaded = (attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS) &&
			      (attr->flags & IBV_CREATE_CQ_ATTR_SINGLE_THREADED);
	ex = &cq->ibv_cq_ex;
	ex->start_poll = cq_ex_start_poll;
	ex->next_poll = cq_ex_next_poll;
	ex->end_poll = cq_ex_end_poll;
	ex->read_opcode = cq_ex_read_opcode;
	ex->read_vendor_err = cq_ex_read_vendor_err;
	ex->read_wc_flags = cq_ex_read_wc_flags;
	/* Only the accessors asked for are set, as the verbs man page says. */
	if (attr->wc_flags & IBV_WC_EX_WITH_BYTE_LEN)
		ex->read_byte_len = cq_ex_read_byte_len;
	if (attr->wc_flags & IBV_WC_EX_WITH_IMM)
		ex->read_imm_data = cq_ex_read_imm_data;
	if (attr->wc_flags & IBV_WC_EX_WITH_QP_NUM)
		ex->read_qp_num = cq_ex_read_qp_num;
	if (attr->wc_flags & IBV_WC_EX_WITH_SRC_QP)
		ex->read_src_qp = cq_ex_read_src_qp;
	if (attr->wc_flags & IBV_WC_EX_WITH_SLID)
		ex->read_slid = cq_ex_read_slid;
	if (attr->wc_flags & IBV_WC_EX_WITH_SL)
		ex->read_sl = cq_ex_read_sl;
	if (attr->wc_flags & IBV_WC_EX_WITH_DLID_PATH_BITS)
		ex->read_dlid_path_bits = cq_ex_read_dlid_path_bits;
	if (attr->wc_flags & IBV_WC_EX_WITH_COMPLETION_TIMESTAMP)
		ex->read_completion_ts = cq_ex_read_completion_ts;
	if (attr->wc_flags & IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK)
		ex->read_completion_wallclock_ns = cq_ex_read_wallclock_ns;
	return ex;
}

int vhca_query_rt_values(struct ibv_context *context,
			 struct ibv_values_ex *values)
{
	if (to_vctx(context)->vm)
		return EOPNOTSUPP;	/* a VM cannot read the device's clock */
	/* As mlx5: comp_mask says back what was filled in. */
	if (values->comp_mask & IBV_VALUES_MASK_RAW_CLOCK) {
		/* the cycle count in tv_nsec, tv_sec 0 */
		values->raw_clock.tv_sec = 0;
		values->raw_clock.tv_nsec = (long)clock_ns(CLOCK_MONOTONIC);
		values->comp_mask = IBV_VALUES_MASK_RAW_CLOCK;
	} else {
		values->comp_mask = 0;
	}
	return 0;
}
