// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The IB communication manager (IBTA vol. 1 chapter 12; the kernel's
 * drivers/infiniband/core/cm.c): one connection per rdma_cm id that
 * connects, its comm IDs, the state machine of figure 165 (REQ, MRA, REP,
 * RTU, REJ, DREQ, DREP) and SIDR for UD, with the retransmissions and
 * the timewait of the spec.  MADs leave and arrive through QP1 of the
 * connection's function (cm_func_send_mad, cm_ib_recv); the contents of
 * what arrives are another tenant's, so a message is acted on only when
 * it names one of our connections by both comm IDs, comes from the LID
 * that connection talks to, and fits its state.  Under cm_lock().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>

#include "cm_ib.h"

static struct cm_conn *by_local[CM_BUCKETS], *by_remote[CM_BUCKETS];

/* ---- the connection tables -------------------------------------------------------- */

static unsigned int bucket(uint32_t id)
{
	return (id ^ id >> 10 ^ id >> 20) % CM_BUCKETS;
}

struct cm_conn *cm_conn_by_local(uint32_t local_id)
{
	struct cm_conn *c = by_local[bucket(local_id)];

	while (c && c->local_id != local_id)
		c = c->local_next;
	return c;
}

struct cm_conn *cm_conn_by_remote(uint32_t remote_id, uint64_t ca_guid)
{
	struct cm_conn *c = by_remote[bucket(remote_id)];

	while (c && (c->remote_id != remote_id || c->remote_ca_guid != ca_guid))
		c = c->remote_next;
	return c;
}

void cm_conn_hash_remote(struct cm_conn *c)
{
	unsigned int b = bucket(c->remote_id);

	if (c->in_remote)
		return;
	c->remote_next = by_remote[b];
	by_remote[b] = c;
	c->in_remote = true;
}

static void unhash(struct cm_conn *c)
{
	struct cm_conn **p;

	for (p = &by_local[bucket(c->local_id)]; *p; p = &(*p)->local_next)
		if (*p == c) {
			*p = c->local_next;
			break;
		}
	if (!c->in_remote)
		return;
	for (p = &by_remote[bucket(c->remote_id)]; *p; p = &(*p)->remote_next)
		if (*p == c) {
			*p = c->remote_next;
			break;
		}
	c->in_remote = false;
}

void cm_conn_free(struct cm_conn *c)
{
	cm_timer_cancel(&c->timer);
	unhash(c);
	cm_func_put(c->func);
	free(c);
}

static void fire(struct cm_timer *t);

struct cm_conn *cm_ib_create(struct cm_func *f, struct cm_id *id)
{
	struct cm_conn *c = calloc(1, sizeof(*c));
	unsigned int b;

	if (!c)
		return NULL;
	/* Comm IDs are random and unique among ours (IBTA 12.6.2). */
	do
		c->local_id = cm_random32();
	while (!c->local_id || cm_conn_by_local(c->local_id));
	c->func = f;
	cm_func_get(f);
	c->id = id;
	c->tid = (uint64_t)c->local_id << 32;
	cm_timer_init(&c->timer, fire);
	b = bucket(c->local_id);
	c->local_next = by_local[b];
	by_local[b] = c;
	return c;
}

void cm_ib_attach(struct cm_conn *c, struct cm_id *id)
{
	c->id = id;
}

struct cm_func *cm_ib_func(const struct cm_conn *c)
{
	return c->func;
}

bool cm_ib_established(const struct cm_conn *c)
{
	return c->state == CMS_ESTABLISHED;
}

/* ---- sending ------------------------------------------------------------------------ */

/* Sends @msg; a message that awaits an answer is kept for retries. */
int cm_conn_send(struct cm_conn *c, struct cm_msg *msg, bool retried)
{
	uint8_t mad[CM_MAD_SIZE];
	int ret;

	msg->tid = c->tid++;
	cm_mad_encode(msg, mad);
	ret = cm_func_send_mad(c->func, c->remote_lid, c->pkey_index, mad);
	if (ret || !retried)
		return ret;
	memcpy(c->mad, mad, sizeof(mad));
	c->has_mad = true;
	c->retries_left = CM_MAX_RETRIES;
	cm_timer_arm(&c->timer, c->timeout_ns);
	return 0;
}

void cm_conn_stop_retries(struct cm_conn *c)
{
	c->has_mad = false;
	cm_timer_cancel(&c->timer);
}

/* A message that needs no connection: the REJ of an unknown request. */
void cm_send_stateless(struct cm_func *f, const struct vhca_devcmd_mad *in,
		       struct cm_msg *msg)
{
	uint8_t mad[CM_MAD_SIZE];

	cm_mad_encode(msg, mad);
	cm_func_send_mad(f, in->lid, in->pkey_index, mad);
}

void cm_conn_timewait(struct cm_conn *c)
{
	/* Long enough for the peer's last packets to drain (12.9.8.1). */
	cm_conn_stop_retries(c);
	c->state = CMS_TIMEWAIT;
	cm_timer_arm(&c->timer, cm_time_ns(c->ack_timeout ? c->ack_timeout :
							     14));
}

int cm_ib_send_req(struct cm_conn *c, const struct cm_path *path,
		   uint16_t pkey_index, const struct cm_req_args *a)
{
	struct cm_msg msg = { .attr = CM_ATTR_REQ };
	struct cm_req *r = &msg.req;

	if (c->state != CMS_IDLE || a->private_len > CM_REQ_PRIVATE ||
	    (a->qp_type != IBV_QPT_RC && a->qp_type != IBV_QPT_UC))
		return -EINVAL;
	c->path = *path;
	c->remote_lid = path->dlid;
	c->pkey_index = pkey_index;
	c->local_qpn = a->qpn;
	c->rq_psn = a->starting_psn;
	c->qp_type = a->qp_type;
	c->mtu = path->mtu;
	c->ack_timeout = (uint8_t)(path->packet_life_time + 1);
	c->retry_count = a->retry_count > 7 ? 7 : a->retry_count;
	c->rnr_retry_count = a->rnr_retry_count > 7 ? 7 : a->rnr_retry_count;
	c->responder_resources = a->responder_resources;
	c->initiator_depth = a->initiator_depth;
	c->service_id = a->service_id;
	c->timeout_ns = 2 * cm_time_ns(path->packet_life_time) +
			cm_time_ns(CM_RESPONSE_TIMEOUT);

	r->local_comm_id = c->local_id;
	r->service_id = a->service_id;
	cm_func_identity(c->func, NULL, NULL, &r->local_ca_guid);
	r->local_qkey = a->qkey;
	r->local_qpn = a->qpn & 0xffffff;
	r->responder_resources = a->responder_resources;
	r->initiator_depth = a->initiator_depth;
	r->remote_cm_response_timeout = CM_RESPONSE_TIMEOUT;
	r->transport = a->qp_type == IBV_QPT_RC ? CM_TRANSPORT_RC :
						  CM_TRANSPORT_UC;
	r->flow_control = a->flow_control;
	r->starting_psn = a->starting_psn & 0xffffff;
	r->local_cm_response_timeout = CM_RESPONSE_TIMEOUT;
	r->retry_count = c->retry_count;
	r->pkey = path->pkey;
	r->mtu = path->mtu;
	r->rnr_retry_count = c->rnr_retry_count;
	r->max_cm_retries = CM_MAX_RETRIES;
	r->srq = a->srq;
	r->path.local_lid = path->slid;
	r->path.remote_lid = path->dlid;
	for (int i = 0; i < 8; i++) {
		r->path.local_gid[i] = r->path.remote_gid[i] =
			(uint8_t)(path->subnet_prefix >> (56 - 8 * i));
		r->path.local_gid[8 + i] =
			(uint8_t)(path->sgid_guid >> (56 - 8 * i));
		r->path.remote_gid[8 + i] =
			(uint8_t)(path->dgid_guid >> (56 - 8 * i));
	}
	r->path.flow_label = path->flow_label;
	r->path.rate = path->rate;
	r->path.traffic_class = path->traffic_class;
	r->path.hop_limit = path->hop_limit;
	r->path.sl = path->sl;
	r->path.subnet_local = 1;
	r->path.local_ack_timeout = c->ack_timeout;
	if (a->private_len)
		memcpy(r->private_data, a->private_data, a->private_len);
	c->state = CMS_REQ_SENT;
	return cm_conn_send(c, &msg, true);
}

int cm_ib_send_rep(struct cm_conn *c, const struct cm_rep_args *a)
{
	struct cm_msg msg = { .attr = CM_ATTR_REP };
	struct cm_rep *r = &msg.rep;

	if ((c->state != CMS_REQ_RCVD && c->state != CMS_MRA_REQ_SENT) ||
	    a->private_len > CM_REP_PRIVATE)
		return -EINVAL;
	c->local_qpn = a->qpn;
	c->rq_psn = a->starting_psn;
	c->initiator_depth = a->initiator_depth;
	c->responder_resources = a->responder_resources;
	c->rnr_retry_count = a->rnr_retry_count > 7 ? 7 : a->rnr_retry_count;
	c->srq = a->srq;
	r->local_comm_id = c->local_id;
	r->remote_comm_id = c->remote_id;
	r->local_qpn = a->qpn & 0xffffff;
	r->starting_psn = a->starting_psn & 0xffffff;
	r->responder_resources = a->responder_resources;
	r->initiator_depth = a->initiator_depth;
	r->flow_control = a->flow_control;
	r->rnr_retry_count = c->rnr_retry_count;
	r->srq = a->srq;
	cm_func_identity(c->func, NULL, NULL, &r->local_ca_guid);
	if (a->private_len)
		memcpy(r->private_data, a->private_data, a->private_len);
	c->state = CMS_REP_SENT;
	return cm_conn_send(c, &msg, true);
}

int cm_ib_send_rtu(struct cm_conn *c)
{
	struct cm_msg msg = { .attr = CM_ATTR_RTU };

	if (c->state != CMS_REP_RCVD)
		return -EINVAL;
	msg.simple.local_comm_id = c->local_id;
	msg.simple.remote_comm_id = c->remote_id;
	c->state = CMS_ESTABLISHED;
	return cm_conn_send(c, &msg, false);
}

int cm_ib_send_rej(struct cm_conn *c, uint16_t reason, const uint8_t *data,
		   unsigned int len)
{
	struct cm_msg msg = { .attr = CM_ATTR_REJ };
	struct cm_rej *r = &msg.rej;

	if (len > CM_REJ_PRIVATE)
		return -EINVAL;
	switch (c->state) {
	case CMS_REQ_SENT:
	case CMS_MRA_REQ_RCVD:
	case CMS_REQ_RCVD:
	case CMS_MRA_REQ_SENT:
		r->message_rejected = CM_REF_REQ;
		break;
	case CMS_REP_RCVD:
	case CMS_REP_SENT:
	case CMS_MRA_REP_RCVD:
		r->message_rejected = CM_REF_REP;
		break;
	default:
		return -EINVAL;
	}
	r->local_comm_id = c->local_id;
	r->remote_comm_id = c->remote_id;
	r->reason = reason;
	if (len)
		memcpy(r->private_data, data, len);
	cm_conn_stop_retries(c);
	c->state = CMS_IDLE;
	return cm_conn_send(c, &msg, false);
}

int cm_ib_send_dreq(struct cm_conn *c)
{
	struct cm_msg msg = { .attr = CM_ATTR_DREQ };

	if (c->state != CMS_ESTABLISHED)
		return -EINVAL;
	msg.simple.local_comm_id = c->local_id;
	msg.simple.remote_comm_id = c->remote_id;
	msg.simple.remote_qpn = c->remote_qpn;
	c->timeout_ns = 2 * cm_time_ns(c->path.packet_life_time) +
			cm_time_ns(CM_RESPONSE_TIMEOUT);
	c->state = CMS_DREQ_SENT;
	return cm_conn_send(c, &msg, true);
}

int cm_ib_send_drep(struct cm_conn *c)
{
	struct cm_msg msg = { .attr = CM_ATTR_DREP };
	int ret;

	if (c->state != CMS_DREQ_RCVD)
		return -EINVAL;
	msg.simple.local_comm_id = c->local_id;
	msg.simple.remote_comm_id = c->remote_id;
	ret = cm_conn_send(c, &msg, false);
	cm_conn_timewait(c);
	return ret;
}

void cm_ib_delay_mra(struct cm_conn *c)
{
	if (c->state == CMS_REQ_RCVD) {
		c->state = CMS_MRA_REQ_SENT;
		c->mra_delayed = true;
	} else if (c->state == CMS_REP_RCVD) {
		c->mra_delayed = true;
	}
}

void cm_conn_send_mra(struct cm_conn *c, uint8_t which)
{
	struct cm_msg msg = { .attr = CM_ATTR_MRA };

	msg.mra.local_comm_id = c->local_id;
	msg.mra.remote_comm_id = c->remote_id;
	msg.mra.message_mraed = which;
	msg.mra.service_timeout = CM_RESPONSE_TIMEOUT;
	cm_conn_send(c, &msg, false);
}

int cm_ib_send_sidr_req(struct cm_conn *c, const struct cm_path *path,
			uint16_t pkey_index, uint64_t service_id,
			const uint8_t *data, unsigned int len)
{
	struct cm_msg msg = { .attr = CM_ATTR_SIDR_REQ };

	if (c->state != CMS_IDLE || len > CM_SIDR_REQ_PRIVATE)
		return -EINVAL;
	c->path = *path;
	c->remote_lid = path->dlid;
	c->pkey_index = pkey_index;
	c->service_id = service_id;
	c->qp_type = IBV_QPT_UD;
	/* cma_resolve_ib_udp(): 1 << (CMA_CM_RESPONSE_TIMEOUT - 8) ms. */
	c->timeout_ns = (1ull << (CM_RESPONSE_TIMEOUT - 8)) * 1000000ull;
	msg.sidr_req.request_id = c->local_id;
	msg.sidr_req.pkey = path->pkey;
	msg.sidr_req.service_id = service_id;
	if (len)
		memcpy(msg.sidr_req.private_data, data, len);
	c->state = CMS_SIDR_REQ_SENT;
	return cm_conn_send(c, &msg, true);
}

int cm_ib_send_sidr_rep(struct cm_conn *c, uint8_t status, uint32_t qpn,
			uint32_t qkey, const uint8_t *data, unsigned int len)
{
	struct cm_msg msg = { .attr = CM_ATTR_SIDR_REP };

	if (c->state != CMS_SIDR_REQ_RCVD || len > CM_SIDR_REP_PRIVATE)
		return -EINVAL;
	msg.sidr_rep.request_id = c->remote_id;
	msg.sidr_rep.status = status;
	msg.sidr_rep.qpn = qpn & 0xffffff;
	msg.sidr_rep.service_id = c->service_id;
	msg.sidr_rep.qkey = qkey;
	if (len)
		memcpy(msg.sidr_rep.private_data, data, len);
	c->state = CMS_IDLE;
	return cm_conn_send(c, &msg, false);
}

void cm_ib_release(struct cm_conn *c)
{
	c->id = NULL;
	switch (c->state) {
	case CMS_REQ_SENT:
	case CMS_MRA_REQ_RCVD:
		/* ib_destroy_cm_id(): a REQ given up on is a timeout. */
		cm_ib_send_rej(c, CM_REJ_TIMEOUT, NULL, 0);
		break;
	case CMS_REQ_RCVD:
	case CMS_MRA_REQ_SENT:
	case CMS_REP_RCVD:
	case CMS_REP_SENT:
	case CMS_MRA_REP_RCVD:
		cm_ib_send_rej(c, CM_REJ_CONSUMER_DEFINED, NULL, 0);
		break;
	case CMS_ESTABLISHED:
		cm_ib_send_dreq(c);	/* the peer hears DISCONNECTED */
		return;
	case CMS_DREQ_RCVD:
		cm_ib_send_drep(c);
		return;
	case CMS_DREQ_SENT:
	case CMS_TIMEWAIT:
		return;			/* goes when the exchange ends */
	case CMS_SIDR_REQ_RCVD:
		cm_ib_send_sidr_rep(c, CM_SIDR_REJECT, 0, 0, NULL, 0);
		break;
	default:
		break;
	}
	cm_conn_free(c);
}

/* ---- timers --------------------------------------------------------------------- */

/* An event for the owner; a connection nobody owns goes when idle. */
void cm_conn_tell(struct cm_conn *c, enum cm_ib_event_type type,
		  const struct cm_msg *msg)
{
	if (c->id)
		cma_ib_event(c->id, type, msg);
	else if (c->state == CMS_IDLE)
		cm_conn_free(c);
}

static void fire(struct cm_timer *t)
{
	struct cm_conn *c = (struct cm_conn *)
		((char *)t - offsetof(struct cm_conn, timer));

	if (c->state == CMS_TIMEWAIT) {
		c->state = CMS_IDLE;
		cm_conn_tell(c, CMIB_TIMEWAIT_EXIT, NULL);
		return;
	}
	if (c->has_mad && c->retries_left) {
		c->retries_left--;
		cm_func_send_mad(c->func, c->remote_lid, c->pkey_index, c->mad);
		cm_timer_arm(&c->timer, c->timeout_ns);
		return;
	}
	c->has_mad = false;
	switch (c->state) {
	case CMS_REQ_SENT:
	case CMS_MRA_REQ_RCVD:
		c->state = CMS_IDLE;
		cm_conn_tell(c, CMIB_REQ_ERROR, NULL);
		break;
	case CMS_REP_SENT:
	case CMS_MRA_REP_RCVD:
		c->state = CMS_IDLE;
		cm_conn_tell(c, CMIB_REP_ERROR, NULL);
		break;
	case CMS_DREQ_SENT:
		cm_conn_timewait(c);
		cm_conn_tell(c, CMIB_DREQ_ERROR, NULL);
		break;
	case CMS_SIDR_REQ_SENT:
		c->state = CMS_IDLE;
		cm_conn_tell(c, CMIB_SIDR_REQ_ERROR, NULL);
		break;
	default:
		break;
	}
}
