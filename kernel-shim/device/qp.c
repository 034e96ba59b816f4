// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Queue pairs: CREATE/DESTROY/MODIFY/QUERY and QP numbers (qp.h).
 * Attribute checks follow the kernel's ib_modify_qp_is_ok() (qp_state.c)
 * plus what the device supports: port 1, path MTU <= 4096, P_Key indexes
 * that name a nonzero entry, unicast DLIDs.  An invalid request changes
 * nothing.
 *
 * QP numbers are 24 random bits (never 0, 1 or 0xffffff), unique among
 * live QPs of the host, and a number is not handed out again until
 * VHCA_QPN_QUARANTINE more QPs have been destroyed: an attacker cannot
 * choose, or wait for, the number of a victim's former peer (security
 * finding 2; the responder also checks the source port and PSNs).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "cq.h"
#include "engine.h"
#include "limits.h"
#include "mcast.h"
#include "qp.h"
#include "srq.h"
#include "switch.h"
#include "transport.h"

/* ---- QP numbers ------------------------------------------------------ */

#define QPN_SPACE (1u << 24)
#define QPN_BUCKETS 65536u
#define QPN_STRIPES 256u
/* Destroyed QPNs wait this many destructions before coming back. */
#define VHCA_QPN_QUARANTINE 65536u

static struct {
	pthread_mutex_t alloc_lock;
	uint8_t used[QPN_SPACE / 8];	/* live or quarantined */
	uint32_t quarantine[VHCA_QPN_QUARANTINE];
	uint32_t q_head, q_len;
	pthread_mutex_t stripe[QPN_STRIPES];
	struct vhca_qp *bucket[QPN_BUCKETS];
} qpns = {
	.alloc_lock = PTHREAD_MUTEX_INITIALIZER,
};

static pthread_once_t qpns_once = PTHREAD_ONCE_INIT;

static void qpns_init(void)
{
	for (unsigned int i = 0; i < QPN_STRIPES; i++)
		pthread_mutex_init(&qpns.stripe[i], NULL);
}

static bool qpn_bit(uint32_t qpn)
{
	return qpns.used[qpn / 8] & (1u << (qpn % 8));
}

static void qpn_set(uint32_t qpn, bool on)
{
	if (on)
		qpns.used[qpn / 8] |= (uint8_t)(1u << (qpn % 8));
	else
		qpns.used[qpn / 8] &= (uint8_t)~(1u << (qpn % 8));
}

static pthread_mutex_t *stripe_of(uint32_t qpn)
{
	return &qpns.stripe[(qpn % QPN_BUCKETS) % QPN_STRIPES];
}

/* A fresh QPN, marked used, or 0 if the space is full. */
static uint32_t qpn_alloc(void)
{
	uint32_t qpn = 0;

	pthread_once(&qpns_once, qpns_init);
	pthread_mutex_lock(&qpns.alloc_lock);
	/* Live QPs and the quarantine fill a small part of the space. */
	for (int tries = 0; tries < 4096; tries++) {
		uint32_t n = arc4random_uniform(QPN_SPACE - 3) + 2;

		if (!qpn_bit(n)) {
			qpn = n;
			qpn_set(n, true);
			break;
		}
	}
	pthread_mutex_unlock(&qpns.alloc_lock);
	return qpn;
}

/* @qpn is free again after the quarantine. */
static void qpn_release(uint32_t qpn)
{
	pthread_mutex_lock(&qpns.alloc_lock);
	if (qpns.q_len == VHCA_QPN_QUARANTINE) {
		qpn_set(qpns.quarantine[qpns.q_head], false);
		qpns.q_head = (qpns.q_head + 1) % VHCA_QPN_QUARANTINE;
		qpns.q_len--;
	}
	qpns.quarantine[(qpns.q_head + qpns.q_len) % VHCA_QPN_QUARANTINE] =
		qpn;
	qpns.q_len++;
	pthread_mutex_unlock(&qpns.alloc_lock);
}

static void qpn_publish(struct vhca_qp *qp)
{
	pthread_mutex_t *lock = stripe_of(qp->qpn);

	pthread_mutex_lock(lock);
	qp->qpn_next = qpns.bucket[qp->qpn % QPN_BUCKETS];
	qpns.bucket[qp->qpn % QPN_BUCKETS] = qp;
	pthread_mutex_unlock(lock);
}

static void qpn_unpublish(struct vhca_qp *qp)
{
	pthread_mutex_t *lock = stripe_of(qp->qpn);

	pthread_mutex_lock(lock);
	for (struct vhca_qp **p = &qpns.bucket[qp->qpn % QPN_BUCKETS]; *p;
	     p = &(*p)->qpn_next) {
		if (*p == qp) {
			*p = qp->qpn_next;
			break;
		}
	}
	pthread_mutex_unlock(lock);
}

/*
 * Runs @fn on the live QP numbered @qpn (or NULL) under its stripe's
 * lock, which keeps it from being freed meanwhile.
 */
static struct vhca_qp *with_qpn(uint32_t qpn,
				struct vhca_qp *(*fn)(struct vhca_qp *qp,
						      void *arg),
				void *arg)
{
	struct vhca_qp *qp, *ret;
	pthread_mutex_t *lock;

	if (qpn >= QPN_SPACE)
		return NULL;
	pthread_once(&qpns_once, qpns_init);
	lock = stripe_of(qpn);
	pthread_mutex_lock(lock);
	for (qp = qpns.bucket[qpn % QPN_BUCKETS]; qp && qp->qpn != qpn;
	     qp = qp->qpn_next)
		;
	ret = fn(qp, arg);
	pthread_mutex_unlock(lock);
	return ret;
}

struct find_ref {
	const struct vhca_dev *dev;
	struct vhca_dctx **dctx;
};

static struct vhca_qp *take_ref(struct vhca_qp *qp, void *arg)
{
	struct find_ref *f = arg;

	if (!qp || qp->dctx->dev != f->dev)
		return NULL;
	*f->dctx = qp->dctx;
	vhca_dctx_get(qp->dctx);
	return qp;
}

struct vhca_qp *vhca_qp_find_ref(const struct vhca_dev *dev, uint32_t qpn,
				 struct vhca_dctx **dctx)
{
	struct find_ref f = { .dev = dev, .dctx = dctx };

	return with_qpn(qpn, take_ref, &f);
}

static struct vhca_qp *if_of(struct vhca_qp *qp, void *arg)
{
	return qp && qp->dctx == arg ? qp : NULL;
}

struct vhca_qp *vhca_qp_of(struct vhca_dctx *dctx, uint32_t qpn)
{
	return with_qpn(qpn, if_of, dctx);
}

/* ---- events and errors ------------------------------------------------ */

void vhca_qp_post_async(struct vhca_qp *qp, uint32_t event_type)
{
	struct vhca_dctx *dctx = qp->dctx;

	/* A full or closed async pipe drops the event (channel.h). */
	dctx->sink->async(dctx, qp->handle, qp->user_handle, event_type);
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
	vhca_qp_timer_cancel(qp);
	vhca_flow_release(qp);	/* a held request is flushed, not sent */
	qp->flush_pending = true;
	vhca_qp_schedule(qp);
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
			const struct vhca_qp_layout *u)
{
	uint32_t send_body = a->max_send_sge * sizeof(struct vhca_sge);
	int ret;

	if (a->max_inline_data > send_body)
		send_body = a->max_inline_data;
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

static int claim_rings(struct vhca_qp *qp, const struct vhca_qp_layout *u)
{
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

static int resolve_objects(struct vhca_dctx *dctx, struct vhca_qp *qp,
			   const struct vhca_qp_create_args *a)
{
	qp->pd = vhca_obj_lookup(dctx, VHCA_OBJ_PD, a->pd_handle);
	qp->send_cq = vhca_obj_lookup(dctx, VHCA_OBJ_CQ, a->send_cq_handle);
	qp->recv_cq = vhca_obj_lookup(dctx, VHCA_OBJ_CQ, a->recv_cq_handle);
	if (!qp->pd || !qp->send_cq || !qp->recv_cq)
		return -EINVAL;
	if (a->is_srq) {
		qp->srq = vhca_obj_lookup(dctx, VHCA_OBJ_SRQ, a->srq_handle);
		if (!qp->srq)
			return -EINVAL;
	}
	return 0;
}

static int check_type(const struct vhca_qp_create_args *a)
{
	if (a->qp_type == IBV_QPT_RC || a->qp_type == IBV_QPT_UC ||
	    a->qp_type == IBV_QPT_UD)
		return a->create_flags ? -EOPNOTSUPP : 0;
	return a->qp_type == IBV_QPT_RAW_PACKET ||
			       a->qp_type == IBV_QPT_XRC_SEND ||
			       a->qp_type == IBV_QPT_XRC_RECV ||
			       a->qp_type == IBV_QPT_DRIVER ?
		       -EOPNOTSUPP :
		       -EINVAL;
}

static unsigned int qp_quota(const struct vhca_dev *dev)
{
	return dev->quota.max_qp < vhca_limits.max_qp ? dev->quota.max_qp :
							vhca_limits.max_qp;
}

/* Everything that may fail, under dctx->lock; undone by vhca_qp_free. */
static int setup(struct vhca_dctx *dctx, struct vhca_qp *qp,
		 const struct vhca_qp_create_args *a)
{
	struct vhca_dev *dev = dctx->dev;
	int ret;

	ret = resolve_objects(dctx, qp, a);
	if (ret) {
		qp->pd = NULL;	/* not yet counted on */
		qp->send_cq = qp->recv_cq = NULL;
		qp->srq = NULL;
		return ret;
	}
	qp->pd->num_qps++;
	qp->send_cq->num_qps++;
	qp->recv_cq->num_qps++;
	if (qp->srq)
		qp->srq->num_qps++;
	if (!vhca_stats_reserve(&dev->stats.qps, qp_quota(dev)))
		return -ENOMEM;
	if (vhca_dctx_charge_queue(dctx, qp->qmem.size)) {
		vhca_stats_release(&dev->stats.qps);
		return -ENOMEM;
	}
	qp->charged = true;
	ret = vhca_obj_insert(dctx, VHCA_OBJ_QP, qp, &qp->handle);
	if (ret)
		return ret;
	qp->qpn = qpn_alloc();
	return qp->qpn ? 0 : -ENOMEM;
}

int vhca_qp_create(struct vhca_dctx *dctx,
		   const struct vhca_qp_create_args *a, struct vhca_qmem *qmem,
		   const struct vhca_qp_layout *u,
		   struct ib_uverbs_create_qp_resp *resp)
{
	struct vhca_qp *qp;
	int ret;

	ret = dctx->ctx_page ? check_type(a) : -EOPNOTSUPP;
	if (!ret)
		ret = check_caps(a);
	if (!ret)
		ret = check_layout(a, u);
	qp = ret ? NULL : calloc(1, sizeof(*qp));
	if (!qp) {
		vhca_qmem_unmap(qmem);
		return ret ? ret : -ENOMEM;
	}
	qp->dctx = dctx;
	qp->handle = VHCA_NO_HANDLE;
	qp->heap_index = UINT32_MAX;
	qp->type = a->qp_type;
	qp->state = IBV_QPS_RESET;
	qp->user_handle = a->user_handle;
	qp->sq_sig_all = a->sq_sig_all;
	qp->qmem = *qmem;
	memset(qmem, 0, sizeof(*qmem));
	ret = claim_rings(qp, u);
	if (ret) {
		vhca_qp_free(qp);
		return ret;
	}
	derive_caps(qp);
	vhca_dctx_lock(dctx);
	ret = setup(dctx, qp, a);
	if (ret) {
		vhca_qp_free(qp);
		vhca_dctx_unlock(dctx);
		return ret;
	}
	qpn_publish(qp);
	*resp = (struct ib_uverbs_create_qp_resp){
		.qp_handle = qp->handle,
		.qpn = qp->qpn,
		.max_send_wr = qp->max_send_wr,
		.max_recv_wr = qp->max_recv_wr,
		.max_send_sge = qp->max_send_sge,
		.max_recv_sge = qp->max_recv_sge,
		.max_inline_data = qp->max_inline,
	};
	vhca_dctx_unlock(dctx);
	return 0;
}

/* ---- destroy ----------------------------------------------------------- */

void vhca_qp_free(struct vhca_qp *qp)
{
	struct vhca_dctx *dctx = qp->dctx;

	vhca_mcast_detach_all(qp);	/* no group's copy finds it either */
	if (qp->qpn) {
		/* First: no packet finds it from here on. */
		qpn_unpublish(qp);
		qpn_release(qp->qpn);
	}
	vhca_qp_unschedule(qp);
	vhca_qp_timer_cancel(qp);
	vhca_requester_fini(qp);
	vhca_responder_reset(qp);	/* requests it held back, freed */
	if (qp->handle != VHCA_NO_HANDLE)
		vhca_obj_erase(dctx, qp->handle);
	if (qp->pd)
		qp->pd->num_qps--;
	if (qp->send_cq)
		qp->send_cq->num_qps--;
	if (qp->recv_cq)
		qp->recv_cq->num_qps--;
	if (qp->srq)
		qp->srq->num_qps--;
	if (qp->charged) {
		vhca_dctx_uncharge_queue(dctx, qp->qmem.size);
		vhca_stats_release(&dctx->dev->stats.qps);
	}
	vhca_qmem_unmap(&qp->qmem);
	free(qp);
}

int vhca_qp_destroy(struct vhca_dctx *dctx, uint32_t handle)
{
	struct vhca_qp *qp;

	vhca_dctx_lock(dctx);
	qp = vhca_obj_lookup(dctx, VHCA_OBJ_QP, handle);
	/*
	 * As uverbs: the application detaches its QP from its multicast
	 * groups before it destroys it (a context's teardown detaches them).
	 */
	if (qp && qp->mcast_count) {
		vhca_dctx_unlock(dctx);
		return -EBUSY;
	}
	if (qp) {
		vhca_obj_erase(dctx, qp->handle);
		qp->handle = VHCA_NO_HANDLE;
		vhca_qp_free(qp);
	}
	vhca_dctx_unlock(dctx);
	return qp ? 0 : -EINVAL;
}

/* ---- modify ------------------------------------------------------------ */

static bool pkey_index_ok(const struct vhca_dev *dev, uint16_t index)
{
	return index < VHCA_PKEY_TABLE_LEN && vhca_port_pkey(dev, index) != 0;
}

#define QP_ACCESS_KNOWN                                                       \
	(IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |       \
	 IB_UVERBS_ACCESS_REMOTE_READ | IB_UVERBS_ACCESS_REMOTE_ATOMIC |      \
	 IB_UVERBS_ACCESS_MW_BIND)

/* Values of the attributes named in the mask: all checked first. */
static int check_attrs(const struct vhca_qp *qp,
		       const struct ib_uverbs_modify_qp *c, uint32_t mask)
{
	const struct vhca_dev *dev = qp->dctx->dev;

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
	vhca_qp_unschedule(qp);
	vhca_qp_timer_cancel(qp);
	vhca_requester_fini(qp);
	qp->sq_tail = qp->rq_tail = 0;
	qp->last_wqe_reported = false;
	qp->flush_pending = false;
	memset(qp->db, 0, sizeof(*qp->db));
	memset(&qp->attr, 0, sizeof(qp->attr));
	/*
	 * The requests held behind a READ are freed, not forgotten: each
	 * holds a reference to its sender's memory (a VM's RAM mapping).
	 */
	vhca_responder_reset(qp);
}

/*
 * Whether a QP entering RTS from @cur needs an engine turn for its SQ.
 * From RTR only WQEs posted before RTS do (a doorbell rung now finds the
 * QP in RTS and kicks the engine itself; a READ being answered has
 * scheduled the QP already); the rest keep their turn as before.  An
 * empty SQ skips the kick, which would wake engine threads for nothing.
 */
static bool sq_needs_turn(struct vhca_qp *qp, unsigned int cur)
{
	if (cur != IBV_QPS_RTR || !qp->sq_count)
		return true;
	return atomic_load_explicit((_Atomic uint32_t *)&qp->db->sq_head,
				    memory_order_acquire) != qp->sq_tail;
}

static int modify_locked(struct vhca_qp *qp,
			 const struct ib_uverbs_modify_qp *c)
{
	uint32_t mask = c->attr_mask;
	unsigned int cur, next;
	int ret;

	cur = (mask & IBV_QP_CUR_STATE) ? c->cur_qp_state : qp->state;
	next = (mask & IBV_QP_STATE) ? c->qp_state : cur;
	/* The state the caller believes in must be the real one. */
	if (cur != qp->state ||
	    !vhca_qp_transition_ok(cur, next, qp->type, mask))
		return -EINVAL;
	ret = check_attrs(qp, c, mask);
	if (ret)
		return ret;
	if (next == IBV_QPS_RTS && cur != IBV_QPS_RTS && cur != IBV_QPS_SQD) {
		/* The send side comes to life: its window first. */
		ret = vhca_requester_init(qp);
		if (ret)
			return ret;
	}
	if (next == IBV_QPS_RESET) {
		reset_queues(qp);
		qp->state = IBV_QPS_RESET;
		return 0;
	}
	apply_attrs(qp, c, mask);
	if (next == IBV_QPS_RTS && cur != IBV_QPS_RTS && cur != IBV_QPS_SQD) {
		/*
		 * The retry budgets of what this very request set: the
		 * RTR -> RTS modify is where retry_cnt and rnr_retry come.
		 */
		qp->req.retry_left = qp->attr.retry_cnt;
		qp->req.rnr_left = qp->attr.rnr_retry;
	}
	if (next == IBV_QPS_RTR && cur != IBV_QPS_RTR)
		vhca_responder_reset(qp);
	qp->state = next;
	if (next == IBV_QPS_ERR) {
		/* Flushed at once, as the old engine did: the app may wait. */
		vhca_qp_set_error(qp);
		vhca_transport_flush(qp);
	}
	else if (next == IBV_QPS_RTS && (mask & IBV_QP_SQ_PSN))
		qp->req.psn = qp->attr.sq_psn;
	if (next == IBV_QPS_RTS && sq_needs_turn(qp, cur))
		vhca_qp_schedule(qp);	/* WQEs posted before RTS */
	return 0;
}

int vhca_qp_modify(struct vhca_dctx *dctx,
		   const struct ib_uverbs_modify_qp *c)
{
	struct vhca_qp *qp;
	int ret;

	vhca_dctx_lock(dctx);
	qp = vhca_obj_lookup(dctx, VHCA_OBJ_QP, c->qp_handle);
	ret = qp ? modify_locked(qp, c) : -EINVAL;
	vhca_dctx_unlock(dctx);
	return ret;
}

/* ---- query ------------------------------------------------------------- */

static void query_locked(const struct vhca_qp *qp,
			 struct ib_uverbs_query_qp_resp *r)
{
	const struct vhca_qp_attrs *a = &qp->attr;

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
}

int vhca_qp_query(struct vhca_dctx *dctx, uint32_t handle,
		  struct ib_uverbs_query_qp_resp *r)
{
	struct vhca_qp *qp;

	vhca_dctx_lock(dctx);
	qp = vhca_obj_lookup(dctx, VHCA_OBJ_QP, handle);
	if (qp)
		query_locked(qp, r);
	vhca_dctx_unlock(dctx);
	return qp ? 0 : -EINVAL;
}
