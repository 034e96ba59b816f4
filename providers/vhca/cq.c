// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: completion queues.
 *
 * One sealed memfd per CQ: the ring of cqe_count 64-byte struct vhca_cqe at
 * offset 0, then (page aligned) the struct vhca_cq_db.  The device writes a
 * CQE body, a release barrier, then its owner byte; CQE number i (counting
 * from 0 forever) is valid when (owner & 1) == ((i / cqe_count) & 1) ^ 1.
 * We read the owner byte with acquire, then the body, and publish how many
 * we consumed in db->consumer (release) so the device may reuse the slots.
 *
 * Arming is a store to db->arm; the device clears it when it raises the
 * completion event, which reaches libibverbs through the completion
 * channel's pipe (ibv_get_cq_event()/ibv_ack_cq_events() are libibverbs').
 *
 * Resizing hands the device a new memfd; the device copies the CQEs we
 * have not polled, in order, to indices 0.. of the new ring and carries
 * the arm state over, so we restart at consumer 0.  cq->lock is held
 * across the command (pollers and arming wait: the old ring is unmapped
 * once it returns).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "vhca.h"

/* Largest ring we ask for: the device's max_cqe is far below. */
#define VHCA_MAX_CQE_COUNT (1u << 22)

struct vhca_create_cq_req {
	struct ibv_create_cq ibv_cmd;
	struct vhca_create_cq_cmd drv;
};
static_assert(offsetof(struct vhca_create_cq_req, drv) ==
		      sizeof(struct ibv_create_cq),
	      "udata must directly follow the core command");

struct vhca_create_cq_rsp {
	struct ib_uverbs_create_cq_resp ibv_resp;
	struct vhca_create_cq_resp drv;
};
static_assert(offsetof(struct vhca_create_cq_rsp, drv) ==
		      sizeof(struct ib_uverbs_create_cq_resp),
	      "udata must directly follow the core response");

struct vhca_resize_cq_req {
	struct ibv_resize_cq ibv_cmd;
	struct vhca_create_cq_cmd drv;
};
static_assert(offsetof(struct vhca_resize_cq_req, drv) ==
		      sizeof(struct ibv_resize_cq),
	      "udata must directly follow the core command");

/* ib_uverbs_resize_cq_resp ends in a flexible array: spell it out */
union vhca_resize_cq_rsp {
	struct ib_uverbs_resize_cq_resp ibv_resp;
	struct {
		__u32 cqe;
		__u32 reserved;
		struct vhca_create_cq_resp drv;
	} full;
};
static_assert(offsetof(union vhca_resize_cq_rsp, full.drv) ==
		      sizeof(struct ib_uverbs_resize_cq_resp),
	      "udata must directly follow the core response");

/*
 * Allocates the memory of a CQ that can hold @cqe completions and fills
 * @drv to describe it.  Returns the entry count, or 0 with errno set.
 */
static uint32_t vhca_cq_buf_alloc(struct vhca_qbuf *buf, int cqe,
				  struct vhca_create_cq_cmd *drv)
{
	uint32_t count;
	size_t ring;

	if (cqe < 1 || (uint32_t)cqe >= VHCA_MAX_CQE_COUNT) {
		errno = EINVAL;
		return 0;
	}
	/* a power of two > cqe: one slot always stays free */
	count = vhca_roundup_pow2((uint32_t)cqe + 1);
	ring = vhca_page_align((size_t)count * sizeof(struct vhca_cqe));
	if (vhca_qbuf_alloc(buf, ring + VHCA_PAGE_SIZE, "vhca-cq"))
		return 0;

	memset(drv, 0, sizeof(*drv));
	drv->buf_fd = buf->fd;
	drv->cqe_count = count;
	drv->buf_size = buf->size;
	drv->ring_offset = 0;
	drv->db_offset = ring;
	return count;
}

static void vhca_cq_set_buf(struct vhca_cq *cq, struct vhca_qbuf *buf,
			    uint32_t count, uint32_t consumer)
{
	cq->buf = *buf;
	cq->ring = buf->addr;
	cq->db = (struct vhca_cq_db *)((uint8_t *)buf->addr +
				       vhca_page_align((size_t)count *
						       sizeof(struct vhca_cqe)));
	cq->cqe_count = count;
	cq->consumer = consumer;
	cq->ibv_cq.cqe = (int)(count - 1);
}

struct vhca_cq *vhca_cq_new(struct ibv_context *context, int cqe,
			    struct ibv_comp_channel *channel, int comp_vector)
{
	struct vhca_create_cq_req cmd;
	struct vhca_create_cq_rsp resp;
	struct vhca_qbuf buf;
	struct vhca_cq *cq;
	uint32_t count;
	int ret;

	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;
	if (pthread_spin_init(&cq->lock, PTHREAD_PROCESS_PRIVATE)) {
		free(cq);
		errno = ENOMEM;
		return NULL;
	}

	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));
	count = vhca_cq_buf_alloc(&buf, cqe, &cmd.drv);
	if (!count)
		goto err;

	/*
	 * The core cqe is what the application asked for (the device checks
	 * it against max_cqe and cqe_count against it); we then report the
	 * ring's usable size, cqe_count - 1.
	 */
	ret = ibv_cmd_create_cq(context, cqe, channel, comp_vector,
				&cq->ibv_cq, &cmd.ibv_cmd, sizeof(cmd),
				&resp.ibv_resp, sizeof(resp));
	if (ret) {
		vhca_qbuf_free(&buf);
		errno = ret;
		goto err;
	}

	vhca_cq_set_buf(cq, &buf, count, 0);
	cq->cqn = resp.drv.cqn;
	vhca_ctx_add_cq(to_vctx(context), cq);
	return cq;

err:
	ret = errno;
	pthread_spin_destroy(&cq->lock);
	free(cq);
	errno = ret;
	return NULL;
}

struct ibv_cq *vhca_create_cq(struct ibv_context *context, int cqe,
			      struct ibv_comp_channel *channel,
			      int comp_vector)
{
	struct vhca_cq *cq = vhca_cq_new(context, cqe, channel, comp_vector);

	return cq ? &cq->ibv_cq : NULL;
}

int vhca_poll_cq(struct ibv_cq *ibcq, int num_entries, struct ibv_wc *wc)
{
	struct vhca_cq *cq = to_vcq(ibcq);
	const struct vhca_cqe *cqe;
	uint32_t idx;
	int n;

	pthread_spin_lock(&cq->lock);
	idx = cq->consumer;
	for (n = 0; n < num_entries; n++) {
		cqe = &cq->ring[idx & (cq->cqe_count - 1)];
		if (!vhca_cqe_valid(cq, idx, vhca_load_acquire8(&cqe->owner)))
			break;
		/* the acquire load above orders the body reads after it */

		wc[n] = (struct ibv_wc){
			.wr_id = cqe->wr_id,
			.status = (enum ibv_wc_status)cqe->status,
			.opcode = (enum ibv_wc_opcode)cqe->opcode,
			.vendor_err = cqe->vendor_err,
			.byte_len = cqe->byte_len,
			.imm_data = cqe->imm_data,
			.qp_num = cqe->qp_num,
			.src_qp = cqe->src_qp,
			.wc_flags = cqe->wc_flags,
			.pkey_index = cqe->pkey_index,
			.slid = cqe->slid,
			.sl = cqe->sl,
			.dlid_path_bits = cqe->dlid_path_bits,
		};
		idx++;
	}
	if (idx != cq->consumer) {
		cq->consumer = idx;
		/* our reads of the CQEs happen before the slots are reused */
		vhca_store_release32(&cq->db->consumer, idx);
	}
	pthread_spin_unlock(&cq->lock);
	/* The device is gone: what it wrote is polled, then an error. */
	if (!n && vhca_ctx_lost(to_vctx(ibcq->context)))
		return -EIO;
	return n;
}

int vhca_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct vhca_cq *cq = to_vcq(ibcq);
	uint32_t expected = VHCA_CQ_DISARMED;

	if (vhca_ctx_lost(to_vctx(ibcq->context)))
		return EIO;
	/* The lock: a concurrent resize may unmap the doorbell record. */
	pthread_spin_lock(&cq->lock);
	/*
	 * No system call: the device reads arm after each CQE it writes.
	 * This is a store-then-load handshake (we store arm, then poll the
	 * owner byte; the device stores the owner byte, then loads arm), so
	 * the store must be a full barrier, or both sides can miss each
	 * other and no event ever comes: xchg/cmpxchg, seq_cst.  A
	 * solicited-only request does not weaken an armed "next" request.
	 */
	if (solicited_only)
		__atomic_compare_exchange_n(&cq->db->arm, &expected,
					    VHCA_CQ_ARM_SOLICITED, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	else
		vhca_xchg32(&cq->db->arm, VHCA_CQ_ARM_NEXT);
	udma_full_barrier();
	pthread_spin_unlock(&cq->lock);
	return 0;
}

int vhca_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct vhca_cq *cq = to_vcq(ibcq);
	struct vhca_resize_cq_req cmd;
	union vhca_resize_cq_rsp resp;
	struct vhca_qbuf old;
	struct vhca_qbuf buf;
	uint32_t count;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));
	count = vhca_cq_buf_alloc(&buf, cqe, &cmd.drv);
	if (!count)
		return errno;

	/*
	 * The device decides whether the unpolled CQEs fit (EINVAL if not;
	 * it counts those produced up to the command, which we cannot).
	 * On any failure the old ring stays, untouched.
	 */
	pthread_spin_lock(&cq->lock);
	ret = ibv_cmd_resize_cq(ibcq, cqe, &cmd.ibv_cmd, sizeof(cmd),
				&resp.ibv_resp, sizeof(resp));
	if (ret) {
		pthread_spin_unlock(&cq->lock);
		vhca_qbuf_free(&buf);
		return ret;
	}
	old = cq->buf;
	vhca_cq_set_buf(cq, &buf, count, 0);
	pthread_spin_unlock(&cq->lock);
	vhca_qbuf_free(&old);
	return 0;
}

int vhca_destroy_cq(struct ibv_cq *ibcq)
{
	struct vhca_cq *cq = to_vcq(ibcq);
	int ret;

	ret = ibv_cmd_destroy_cq(ibcq);
	if (ret)
		return ret;

	vhca_ctx_remove_cq(to_vctx(ibcq->context), cq);
	vhca_qbuf_free(&cq->buf);
	pthread_spin_destroy(&cq->lock);
	free(cq);
	return 0;
}
