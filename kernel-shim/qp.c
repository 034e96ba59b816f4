// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Queue pairs: CREATE/DESTROY/MODIFY/QUERY (qp.h).  Attribute checks
 * follow the kernel's ib_modify_qp_is_ok() (qp_state.c) plus what the
 * device supports: port 1, path MTU <= 4096, P_Key indexes that name a
 * nonzero entry, unicast DLIDs.  An invalid request changes nothing.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "cq.h"
#include "engine.h"
#include "qp.h"
#include "srq.h"
#include "transport.h"

/* QPNs: 24 bit, unique among live QPs, never 0 or 1 (SMI/GSI). */
#define QPN_BUCKETS 4096
static struct vhca_qp *qpn_hash[QPN_BUCKETS];
static uint32_t next_qpn = 2;

struct vhca_qp *vhca_qp_find(const struct vhca_dev *dev, uint32_t qpn)
{
	for (struct vhca_qp *qp = qpn_hash[qpn % QPN_BUCKETS]; qp;
	     qp = qp->qpn_next)
		if (qp->qpn == qpn)
			return qp->uctx->dev == dev ? qp : NULL;
	return NULL;
}

static bool qpn_in_use(uint32_t qpn)
{
	for (struct vhca_qp *qp = qpn_hash[qpn % QPN_BUCKETS]; qp;
	     qp = qp->qpn_next)
		if (qp->qpn == qpn)
			return true;
	return false;
}

static void assign_qpn(struct vhca_qp *qp)
{
	uint32_t qpn;

	/* max_qp (16384) live QPs leave plenty of the 2^24 space free. */
	do {
		qpn = next_qpn;
		next_qpn = next_qpn >= 0xffffff ? 2 : next_qpn + 1;
	} while (qpn_in_use(qpn));
	qp->qpn = qpn;
	qp->qpn_next = qpn_hash[qpn % QPN_BUCKETS];
	qpn_hash[qpn % QPN_BUCKETS] = qp;
}

static void remove_qpn(struct vhca_qp *qp)
{
	for (struct vhca_qp **p = &qpn_hash[qp->qpn % QPN_BUCKETS]; *p;
	     p = &(*p)->qpn_next) {
		if (*p == qp) {
			*p = qp->qpn_next;
			return;
		}
	}
}

void vhca_qp_post_async(struct vhca_qp *qp, uint32_t event_type)
{
	/* A full or closed async pipe drops the event (channel.h). */
	vhca_channels_post_async(&qp->uctx->channels, qp->user_handle,
				 event_type, &qp->async_events_read);
}

void vhca_qp_set_error(struct vhca_qp *qp)
{
	qp->state = IBV_QPS_ERR;
	/*
	 * From now on receive posts must ring; the fence orders this store
	 * before the flush's rq_head load (see struct vhca_qp_db).
	 */
	atomic_store((_Atomic uint32_t *)&qp->db->rq_notify, 1);
	atomic_thread_fence(memory_order_seq_cst);
}

/* ---- create ---------------------------------------------------------- */

static int check_caps(const struct vhca_qp_create_args *a)
{
	const struct vhca_limits *l = &vhca_limits;

	if (a->max_send_wr > l->max_qp_wr || a->max_recv_wr > l->max_qp_wr ||
	    a->max_send_sge > l->max_sge || a->max_recv_sge > l->max_sge ||
	    a->max_inline_data > l->max_inline_data)
		return -EINVAL;
	return 0;
}

/* A ring described by udata: count 0 (none) or fit for @wr WQEs. */
static int check_ring(uint32_t count, uint32_t stride, uint32_t wr,
		      uint32_t min_stride)
{
	if (!count)
		return wr ? -EINVAL : 0;
	if (!vhca_is_pow2(count) || count < wr ||
	    count > vhca_limits.max_qp_wr || !vhca_is_pow2(stride) ||
	    stride < min_stride || stride > VHCA_MAX_WQE_STRIDE)
		return -EINVAL;
	return 0;
}

static int check_layout(const struct vhca_qp_create_args *a,
			const struct vhca_create_qp_cmd *u)
{
	uint32_t send_body = a->max_send_sge * sizeof(struct vhca_sge);
	int ret;

	if (a->max_inline_data > send_body)
		send_body = a->max_inline_data;
	if (u->reserved)
		return -EINVAL;
	ret = check_ring(u->sq_wqe_count, u->sq_stride, a->max_send_wr,
			 sizeof(struct vhca_send_wqe) + send_body < 128 ?
				 128 :
				 sizeof(struct vhca_send_wqe) + send_body);
	if (ret)
		return ret;
	if (a->is_srq)
		return u->rq_wqe_count ? -EINVAL : 0;
	return check_ring(u->rq_wqe_count, u->rq_stride, a->max_recv_wr,
			  sizeof(struct vhca_recv_wqe) +
				  a->max_recv_sge * sizeof(struct vhca_sge));
}

static int map_queues(struct vhca_qp *qp, const struct vhca_create_qp_cmd *u)
{
	int ret = vhca_qmem_map(&qp->qmem, qp->uctx->peer, u->buf_fd,
				u->buf_size);

	if (ret)
		return ret;
	qp->sq_count = u->sq_wqe_count;
	qp->sq_stride = u->sq_stride;
	qp->rq_count = u->rq_wqe_count;
	qp->rq_stride = u->rq_stride;
	if (qp->sq_count) {
		qp->sq = vhca_qmem_claim(&qp->qmem, u->sq_offset,
					 (uint64_t)qp->sq_count * qp->sq_stride,
					 VHCA_PAGE_SIZE);
		if (!qp->sq)
			return -EINVAL;
	}
	if (qp->rq_count) {
		qp->rq = vhca_qmem_claim(&qp->qmem, u->rq_offset,
					 (uint64_t)qp->rq_count * qp->rq_stride,
					 VHCA_PAGE_SIZE);
		if (!qp->rq)
			return -EINVAL;
	}
	qp->db = vhca_qmem_claim(&qp->qmem, u->db_offset,
				 sizeof(struct vhca_qp_db), VHCA_DB_ALIGN);
	return qp->db ? 0 : -EINVAL;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* What the rings really hold: reported back, as mlx5 does. */
static void derive_caps(struct vhca_qp *qp)
{
	uint32_t send_body = qp->sq_count ? qp->sq_stride -
						    sizeof(struct vhca_send_wqe) :
					    0;
	uint32_t recv_body = qp->rq_count ? qp->rq_stride -
						    sizeof(struct vhca_recv_wqe) :
					    0;

	qp->max_send_wr = qp->sq_count;
	qp->max_recv_wr = qp->rq_count;
	qp->max_send_sge = min_u32(send_body / sizeof(struct vhca_sge),
				   vhca_limits.max_sge);
	qp->max_recv_sge = min_u32(recv_body / sizeof(struct vhca_sge),
				   vhca_limits.max_sge);
	qp->max_inline = min_u32(send_body, vhca_limits.max_inline_data);
}

static int resolve_objects(struct vhca_ucontext *uctx, struct vhca_qp *qp,
			   const struct vhca_qp_create_args *a)
{
	qp->pd = vhca_obj_lookup(uctx, VHCA_OBJ_PD, a->pd_handle);
	qp->send_cq = vhca_obj_lookup(uctx, VHCA_OBJ_CQ, a->send_cq_handle);
	qp->recv_cq = vhca_obj_lookup(uctx, VHCA_OBJ_CQ, a->recv_cq_handle);
	if (!qp->pd || !qp->send_cq || !qp->recv_cq)
		return -EINVAL;
	if (a->is_srq) {
		qp->srq = vhca_obj_lookup(uctx, VHCA_OBJ_SRQ, a->srq_handle);
		if (!qp->srq)
			return -EINVAL;
	}
	return 0;
}

int vhca_qp_create(struct vhca_ucontext *uctx,
		   const struct vhca_qp_create_args *a,
		   const struct vhca_create_qp_cmd *u,
		   struct ib_uverbs_create_qp_resp *resp)
{
	struct vhca_qp *qp;
	int ret;

	if (!uctx->ctx_page)
		return -EOPNOTSUPP;
	if (a->qp_type != IBV_QPT_RC && a->qp_type != IBV_QPT_UC &&
	    a->qp_type != IBV_QPT_UD)
		return a->qp_type == IBV_QPT_RAW_PACKET ||
				       a->qp_type == IBV_QPT_XRC_SEND ||
				       a->qp_type == IBV_QPT_XRC_RECV ||
				       a->qp_type == IBV_QPT_DRIVER ?
			       -EOPNOTSUPP :
			       -EINVAL;
	if (a->create_flags)
		return -EOPNOTSUPP;
	ret = check_caps(a);
	if (!ret)
		ret = check_layout(a, u);
	if (ret)
		return ret;
	if (!vhca_stats_reserve(&uctx->dev->stats.qps, vhca_limits.max_qp))
		return -ENOMEM;
	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		vhca_stats_release(&uctx->dev->stats.qps);
		return -ENOMEM;
	}
	qp->uctx = uctx;
	qp->handle = VHCA_NO_HANDLE;
	qp->type = a->qp_type;
	qp->state = IBV_QPS_RESET;
	qp->user_handle = a->user_handle;
	qp->sq_sig_all = a->sq_sig_all;
	ret = resolve_objects(uctx, qp, a);
	if (!ret)
		ret = map_queues(qp, u);
	if (!ret)
		ret = vhca_obj_insert(uctx, VHCA_OBJ_QP, qp, &qp->handle);
	if (ret) {
		qp->pd = NULL;	/* not yet counted on */
		qp->send_cq = qp->recv_cq = NULL;
		qp->srq = NULL;
		vhca_qp_free(qp);
		return ret;
	}
	derive_caps(qp);
	qp->pd->num_qps++;
	qp->send_cq->num_qps++;
	qp->recv_cq->num_qps++;
	if (qp->srq)
		qp->srq->num_qps++;
	assign_qpn(qp);
	*resp = (struct ib_uverbs_create_qp_resp){
		.qp_handle = qp->handle,
		.qpn = qp->qpn,
		.max_send_wr = qp->max_send_wr,
		.max_recv_wr = qp->max_recv_wr,
		.max_send_sge = qp->max_send_sge,
		.max_recv_sge = qp->max_recv_sge,
		.max_inline_data = qp->max_inline,
	};
	return 0;
}

/* ---- destroy ----------------------------------------------------------- */

void vhca_qp_free(struct vhca_qp *qp)
{
	vhca_engine_unschedule(qp);
	vhca_transport_cancel_timer(qp);
	if (qp->qpn)
		remove_qpn(qp);
	if (qp->handle != VHCA_NO_HANDLE)
		vhca_obj_erase(qp->uctx, qp->handle);
	if (qp->pd)
		qp->pd->num_qps--;
	if (qp->send_cq)
		qp->send_cq->num_qps--;
	if (qp->recv_cq)
		qp->recv_cq->num_qps--;
	if (qp->srq && qp->handle != VHCA_NO_HANDLE)
		qp->srq->num_qps--;
	vhca_channels_forget_async(&qp->uctx->channels, qp->uctx->peer,
				   &qp->async_events_read);
	vhca_qmem_unmap(&qp->qmem);
	vhca_stats_release(&qp->uctx->dev->stats.qps);
	free(qp);
}

int vhca_qp_destroy(struct vhca_ucontext *uctx, uint32_t handle,
		    struct ib_uverbs_destroy_qp_resp *resp)
{
	struct vhca_qp *qp = vhca_obj_lookup(uctx, VHCA_OBJ_QP, handle);

	if (!qp)
		return -EINVAL;
	/* Like the kernel: the events the application has read. */
	vhca_channels_forget_async(&uctx->channels, uctx->peer,
				   &qp->async_events_read);
	resp->events_reported = qp->async_events_read;
	vhca_qp_free(qp);
	return 0;
}

/* ---- modify ------------------------------------------------------------ */

static bool pkey_index_ok(const struct vhca_dev *dev, uint16_t index)
{
	bool ok;

	if (index >= VHCA_PKEY_TABLE_LEN)
		return false;
	pthread_rwlock_rdlock(&dev->pf->lock);
	ok = dev->port.pkeys[index] != 0;
	pthread_rwlock_unlock(&dev->pf->lock);
	return ok;
}

#define QP_ACCESS_KNOWN                                                       \
	(IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |       \
	 IB_UVERBS_ACCESS_REMOTE_READ | IB_UVERBS_ACCESS_REMOTE_ATOMIC |      \
	 IB_UVERBS_ACCESS_MW_BIND)

/* Values of the attributes named in the mask: all checked first. */
static int check_attrs(const struct vhca_qp *qp,
		       const struct ib_uverbs_modify_qp *c, uint32_t mask)
{
	const struct vhca_dev *dev = qp->uctx->dev;

	if ((mask & IBV_QP_PKEY_INDEX) && !pkey_index_ok(dev, c->pkey_index))
		return -EINVAL;
	if ((mask & IBV_QP_PORT) && c->port_num != 1)
		return -EINVAL;
	if ((mask & IBV_QP_PATH_MTU) &&
	    (c->path_mtu < IBV_MTU_256 || c->path_mtu > IBV_MTU_4096))
		return -EINVAL;
	if ((mask & IBV_QP_ACCESS_FLAGS) &&
	    (c->qp_access_flags & ~(uint32_t)QP_ACCESS_KNOWN))
		return -EINVAL;
	if ((mask & IBV_QP_AV) &&
	    (!c->dest.dlid || c->dest.dlid >= 0xc000 ||
	     (c->dest.port_num && c->dest.port_num != 1) ||
	     (c->dest.is_global &&
	      c->dest.sgid_index >= vhca_limits.gid_tbl_len)))
		return -EINVAL;
	if ((mask & IBV_QP_ALT_PATH))
		return -EOPNOTSUPP;	/* no automatic path migration */
	if ((mask & IBV_QP_MAX_QP_RD_ATOMIC) &&
	    c->max_rd_atomic > vhca_limits.max_qp_init_rd_atom)
		return -EINVAL;
	if ((mask & IBV_QP_MAX_DEST_RD_ATOMIC) &&
	    c->max_dest_rd_atomic > vhca_limits.max_qp_rd_atom)
		return -EINVAL;
	if (((mask & IBV_QP_MIN_RNR_TIMER) && c->min_rnr_timer > 31) ||
	    ((mask & IBV_QP_TIMEOUT) && c->timeout > 31) ||
	    ((mask & IBV_QP_RETRY_CNT) && c->retry_cnt > 7) ||
	    ((mask & IBV_QP_RNR_RETRY) && c->rnr_retry > 7) ||
	    ((mask & IBV_QP_PATH_MIG_STATE) &&
	     c->path_mig_state > IBV_MIG_ARMED) ||
	    ((mask & IBV_QP_DEST_QPN) && c->dest_qp_num > 0xffffff))
		return -EINVAL;
	return 0;
}

static void apply_attrs(struct vhca_qp *qp,
			const struct ib_uverbs_modify_qp *c, uint32_t mask)
{
	struct vhca_qp_attrs *a = &qp->attr;

	if (mask & IBV_QP_PKEY_INDEX)
		a->pkey_index = c->pkey_index;
	if (mask & IBV_QP_PORT)
		a->port_num = c->port_num;
	if (mask & IBV_QP_QKEY)
		a->qkey = c->qkey;
	if (mask & IBV_QP_ACCESS_FLAGS)
		a->access_flags = c->qp_access_flags;
	if (mask & IBV_QP_PATH_MTU)
		a->path_mtu = c->path_mtu;
	if (mask & IBV_QP_DEST_QPN)
		a->dest_qpn = c->dest_qp_num;
	if (mask & IBV_QP_RQ_PSN)
		a->rq_psn = c->rq_psn & 0xffffff;
	if (mask & IBV_QP_SQ_PSN)
		a->sq_psn = c->sq_psn & 0xffffff;
	if (mask & IBV_QP_MAX_QP_RD_ATOMIC)
		a->max_rd_atomic = c->max_rd_atomic;
	if (mask & IBV_QP_MAX_DEST_RD_ATOMIC)
		a->max_dest_rd_atomic = c->max_dest_rd_atomic;
	if (mask & IBV_QP_MIN_RNR_TIMER)
		a->min_rnr_timer = c->min_rnr_timer;
	if (mask & IBV_QP_TIMEOUT)
		a->timeout = c->timeout;
	if (mask & IBV_QP_RETRY_CNT)
		a->retry_cnt = c->retry_cnt;
	if (mask & IBV_QP_RNR_RETRY)
		a->rnr_retry = c->rnr_retry;
	if (mask & IBV_QP_PATH_MIG_STATE)
		a->path_mig_state = c->path_mig_state;
	if (mask & IBV_QP_EN_SQD_ASYNC_NOTIFY)
		a->en_sqd_async_notify = c->en_sqd_async_notify;
	if (mask & IBV_QP_AV) {
		a->av = (struct vhca_qp_av){
			.dlid = c->dest.dlid,
			.sl = c->dest.sl,
			.is_global = c->dest.is_global,
			.hop_limit = c->dest.hop_limit,
			.sgid_index = c->dest.sgid_index,
			.traffic_class = c->dest.traffic_class,
			.flow_label = c->dest.flow_label,
		};
		memcpy(a->av.dgid, c->dest.dgid, 16);
	}
}

/* RESET discards everything: indices restart at 0 on both sides. */
static void reset_queues(struct vhca_qp *qp)
{
	vhca_engine_unschedule(qp);
	vhca_transport_cancel_timer(qp);
	qp->sq_tail = qp->rq_tail = 0;
	qp->head_started = false;
	qp->last_wqe_reported = false;
	memset(qp->db, 0, sizeof(*qp->db));
	memset(&qp->attr, 0, sizeof(qp->attr));
}

int vhca_qp_modify(struct vhca_ucontext *uctx,
		   const struct ib_uverbs_modify_qp *c)
{
	struct vhca_qp *qp = vhca_obj_lookup(uctx, VHCA_OBJ_QP, c->qp_handle);
	uint32_t mask = c->attr_mask;
	unsigned int cur, next;
	int ret;

	if (!qp)
		return -EINVAL;
	cur = (mask & IBV_QP_CUR_STATE) ? c->cur_qp_state : qp->state;
	next = (mask & IBV_QP_STATE) ? c->qp_state : cur;
	/* The state the caller believes in must be the real one. */
	if (cur != qp->state ||
	    !vhca_qp_transition_ok(cur, next, qp->type, mask))
		return -EINVAL;
	ret = check_attrs(qp, c, mask);
	if (ret)
		return ret;

	if (next == IBV_QPS_RESET) {
		reset_queues(qp);
		qp->state = IBV_QPS_RESET;
		return 0;
	}
	apply_attrs(qp, c, mask);
	qp->state = next;
	if (next == IBV_QPS_ERR) {
		vhca_qp_set_error(qp);
		vhca_transport_flush(qp);
	}
	else if (next == IBV_QPS_RTS)
		vhca_engine_schedule(qp);	/* WQEs posted before RTS */
	return 0;
}

/* ---- query ------------------------------------------------------------- */

int vhca_qp_query(struct vhca_ucontext *uctx, uint32_t handle,
		  struct ib_uverbs_query_qp_resp *r)
{
	struct vhca_qp *qp = vhca_obj_lookup(uctx, VHCA_OBJ_QP, handle);
	const struct vhca_qp_attrs *a;

	if (!qp)
		return -EINVAL;
	a = &qp->attr;
	memset(r, 0, sizeof(*r));
	r->dest.dlid = a->av.dlid;
	r->dest.sl = a->av.sl;
	r->dest.is_global = a->av.is_global;
	r->dest.hop_limit = a->av.hop_limit;
	r->dest.sgid_index = a->av.sgid_index;
	r->dest.traffic_class = a->av.traffic_class;
	r->dest.flow_label = a->av.flow_label;
	r->dest.port_num = a->port_num;
	memcpy(r->dest.dgid, a->av.dgid, 16);
	r->max_send_wr = qp->max_send_wr;
	r->max_recv_wr = qp->max_recv_wr;
	r->max_send_sge = qp->max_send_sge;
	r->max_recv_sge = qp->max_recv_sge;
	r->max_inline_data = qp->max_inline;
	r->qkey = a->qkey;
	r->rq_psn = a->rq_psn;
	r->sq_psn = a->sq_psn;
	r->dest_qp_num = a->dest_qpn;
	r->qp_access_flags = a->access_flags;
	r->pkey_index = a->pkey_index;
	r->qp_state = qp->state;
	r->cur_qp_state = qp->state;
	r->path_mtu = a->path_mtu;
	r->path_mig_state = a->path_mig_state;
	r->max_rd_atomic = a->max_rd_atomic;
	r->max_dest_rd_atomic = a->max_dest_rd_atomic;
	r->min_rnr_timer = a->min_rnr_timer;
	r->port_num = a->port_num;
	r->timeout = a->timeout;
	r->retry_cnt = a->retry_cnt;
	r->rnr_retry = a->rnr_retry;
	r->sq_sig_all = qp->sq_sig_all;
	return 0;
}
