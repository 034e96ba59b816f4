// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The IB CM's receive side (cm_ib.h): MADs that arrived at a function's
 * QP1, checked and applied to the connection they name (IBTA 12.6, the
 * kernel's cm_*_handler()s), and the QP attributes a connection gives
 * (ib_cm_init_qp_attr()).  What arrives is another tenant's: a message
 * counts only if it names a connection of this function by its comm IDs,
 * comes from the LID that connection talks to, and fits its state;
 * anything else is dropped, as ib_cm drops it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>

#include "cm_ib.h"

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The connection @local_id names, if it is @f's and talks to @slid. */
static struct cm_conn *ours(struct cm_func *f, uint32_t local_id,
			    uint16_t slid)
{
	struct cm_conn *c = local_id ? cm_conn_by_local(local_id) : NULL;

	return c && c->func == f && c->remote_lid == slid ? c : NULL;
}

static void reject_unknown(struct cm_func *f, const struct vhca_devcmd_mad *in,
			   uint32_t remote_id, uint16_t reason)
{
	struct cm_msg msg = { .attr = CM_ATTR_REJ };

	msg.rej.remote_comm_id = remote_id;
	msg.rej.message_rejected = CM_REF_REQ;
	msg.rej.reason = reason;
	cm_send_stateless(f, in, &msg);
}

/* ---- REQ and SIDR_REQ: new connections ----------------------------------------------- */

static void recv_req(struct cm_func *f, const struct vhca_devcmd_mad *in,
		     const struct cm_msg *msg)
{
	const struct cm_req *r = &msg->req;
	struct cm_conn *c = cm_conn_by_remote(r->local_comm_id,
					      r->local_ca_guid);
	int index, reason;
	struct cm_path path;

	if (c) {
		/* A retransmission (cm_dup_req_handler()). */
		if (c->func != f || c->remote_lid != in->lid)
			return;
		if (c->state == CMS_MRA_REQ_SENT)
			cm_conn_send_mra(c, CM_REF_REQ);
		else if (c->state == CMS_REP_SENT && c->has_mad)
			cm_func_send_mad(f, c->remote_lid, c->pkey_index,
					 c->mad);
		return;
	}
	if (!r->local_comm_id)
		return;
	/* What the REQ claims about its sender must be what the port says. */
	reason = 0;
	if (r->transport != CM_TRANSPORT_RC && r->transport != CM_TRANSPORT_UC)
		reason = CM_REJ_INVALID_TRANSPORT_TYPE;
	else if (r->path.local_lid != in->lid)
		reason = 13;	/* invalid LID */
	else if (r->mtu < IBV_MTU_256 || r->mtu > IBV_MTU_4096)
		reason = CM_REJ_INVALID_MTU;
	index = cm_func_pkey_index(f, r->pkey);
	if (!reason && index < 0)
		reason = CM_REJ_UNSUPPORTED;
	if (reason) {
		reject_unknown(f, in, r->local_comm_id, (uint16_t)reason);
		return;
	}
	c = cm_ib_create(f, NULL);
	if (!c) {
		reject_unknown(f, in, r->local_comm_id, CM_REJ_NO_RESOURCES);
		return;
	}
	c->state = CMS_REQ_RCVD;
	c->remote_id = r->local_comm_id;
	c->remote_ca_guid = r->local_ca_guid;
	cm_conn_hash_remote(c);
	c->remote_lid = in->lid;
	c->pkey_index = (uint16_t)index;
	path = (struct cm_path){
		.subnet_prefix = be64_at(r->path.remote_gid),
		.sgid_guid = be64_at(r->path.remote_gid + 8),
		.dgid_guid = be64_at(r->path.local_gid + 8),
		.slid = r->path.remote_lid,
		.dlid = r->path.local_lid,
		.pkey = r->pkey,
		.mtu = r->mtu,
		.rate = r->path.rate,
		.sl = r->path.sl,
		.packet_life_time = r->path.local_ack_timeout ?
					    r->path.local_ack_timeout - 1 : 0,
		.hop_limit = r->path.hop_limit,
		.traffic_class = r->path.traffic_class,
		.flow_label = r->path.flow_label,
	};
	c->path = path;
	c->remote_qpn = r->local_qpn;
	c->sq_psn = r->starting_psn;
	c->qp_type = r->transport == CM_TRANSPORT_RC ? IBV_QPT_RC : IBV_QPT_UC;
	c->mtu = r->mtu;
	c->ack_timeout = r->path.local_ack_timeout;
	c->retry_count = r->retry_count;
	c->rnr_retry_count = r->rnr_retry_count;
	/* Each side's resources are the other's depth (12.7.26). */
	c->initiator_depth = r->responder_resources;
	c->responder_resources = r->initiator_depth;
	c->flow_control = r->flow_control;
	c->srq = r->srq;
	c->service_id = r->service_id;
	c->timeout_ns = 2 * cm_time_ns(path.packet_life_time) +
			cm_time_ns(r->local_cm_response_timeout);
	reason = cma_ib_request(f, c, msg, &path);
	if (reason) {
		cm_ib_send_rej(c, (uint16_t)reason, NULL, 0);
		cm_conn_free(c);
	}
}

static void recv_sidr_req(struct cm_func *f, const struct vhca_devcmd_mad *in,
			  const struct cm_msg *msg)
{
	const struct cm_sidr_req *r = &msg->sidr_req;
	/* A SIDR request is named by its ID and its sender's LID. */
	uint64_t sender = (uint64_t)in->lid << 48 | 0xffff;
	struct cm_conn *c = cm_conn_by_remote(r->request_id, sender);
	struct cm_path path = { 0 };
	int ret;

	if (c || !r->request_id)
		return;		/* a retransmission: the answer is coming */
	c = cm_ib_create(f, NULL);
	if (!c)
		return;
	c->state = CMS_SIDR_REQ_RCVD;
	c->remote_id = r->request_id;
	c->remote_ca_guid = sender;
	cm_conn_hash_remote(c);
	c->remote_lid = in->lid;
	c->pkey_index = in->pkey_index;
	c->service_id = r->service_id;
	c->qp_type = IBV_QPT_UD;
	path.dlid = in->lid;
	path.pkey = in->pkey;
	c->path = path;
	ret = cma_ib_request(f, c, msg, &path);
	if (ret) {
		cm_ib_send_sidr_rep(c, (uint8_t)(ret - 0x100), 0, 0, NULL, 0);
		cm_conn_free(c);
	}
}

/* ---- answers to what we sent ------------------------------------------------------------ */

static void recv_rep(struct cm_conn *c, const struct cm_msg *msg)
{
	const struct cm_rep *r = &msg->rep;

	if (c->state == CMS_ESTABLISHED && r->local_comm_id == c->remote_id) {
		/* Our RTU was lost (cm_dup_rep_handler()): again. */
		struct cm_msg rtu = { .attr = CM_ATTR_RTU };

		rtu.simple.local_comm_id = c->local_id;
		rtu.simple.remote_comm_id = c->remote_id;
		cm_conn_send(c, &rtu, false);
		return;
	}
	if (c->state == CMS_REP_RCVD && r->local_comm_id == c->remote_id) {
		if (c->mra_delayed)
			cm_conn_send_mra(c, CM_REF_REP);
		return;
	}
	if (c->state != CMS_REQ_SENT && c->state != CMS_MRA_REQ_RCVD)
		return;
	cm_conn_stop_retries(c);
	c->state = CMS_REP_RCVD;
	c->remote_id = r->local_comm_id;
	c->remote_ca_guid = r->local_ca_guid;
	cm_conn_hash_remote(c);
	c->remote_qpn = r->local_qpn;
	c->sq_psn = r->starting_psn;
	c->initiator_depth = r->responder_resources;
	c->responder_resources = r->initiator_depth;
	c->rnr_retry_count = r->rnr_retry_count;
	c->srq = r->srq;
	c->flow_control = r->flow_control;
	cm_conn_tell(c, CMIB_REP_RECEIVED, msg);
}

static void recv_mra(struct cm_conn *c, const struct cm_msg *msg)
{
	const struct cm_mra *m = &msg->mra;
	uint64_t wait;

	if (m->local_comm_id != c->remote_id && c->state != CMS_REQ_SENT)
		return;
	if (m->message_mraed == CM_REF_REQ && c->state == CMS_REQ_SENT)
		c->state = CMS_MRA_REQ_RCVD;
	else if (m->message_mraed == CM_REF_REP && c->state == CMS_REP_SENT)
		c->state = CMS_MRA_REP_RCVD;
	else
		return;
	/* The peer needs more time: wait as long as it says (12.6.6). */
	wait = cm_time_ns(m->service_timeout) + cm_time_ns(c->ack_timeout);
	if (c->has_mad)
		cm_timer_arm(&c->timer, wait);
}

static void recv_rej(struct cm_conn *c, const struct cm_msg *msg)
{
	const struct cm_rej *r = &msg->rej;
	bool to_req = c->state == CMS_REQ_SENT || c->state == CMS_MRA_REQ_RCVD;

	/* Before a REP the peer may not have a comm ID of its own yet. */
	if (!to_req && r->local_comm_id != c->remote_id)
		return;
	switch (c->state) {
	case CMS_REQ_SENT:
	case CMS_MRA_REQ_RCVD:
	case CMS_REP_SENT:
	case CMS_MRA_REP_RCVD:
	case CMS_REQ_RCVD:
	case CMS_MRA_REQ_SENT:
	case CMS_REP_RCVD:
		break;
	default:
		return;
	}
	cm_conn_stop_retries(c);
	c->state = CMS_IDLE;
	cm_conn_tell(c, CMIB_REJ_RECEIVED, msg);
}

static void recv_rtu(struct cm_conn *c, const struct cm_msg *msg)
{
	if (msg->simple.local_comm_id != c->remote_id ||
	    (c->state != CMS_REP_SENT && c->state != CMS_MRA_REP_RCVD))
		return;
	cm_conn_stop_retries(c);
	c->state = CMS_ESTABLISHED;
	cm_conn_tell(c, CMIB_RTU_RECEIVED, msg);
}

static void recv_dreq(struct cm_conn *c, const struct cm_msg *msg)
{
	if (msg->simple.local_comm_id != c->remote_id ||
	    msg->simple.remote_qpn != (c->local_qpn & 0xffffff))
		return;
	switch (c->state) {
	case CMS_TIMEWAIT: {
		/* Our DREP was lost: again (cm_dreq_handler()). */
		struct cm_msg drep = { .attr = CM_ATTR_DREP };

		drep.simple.local_comm_id = c->local_id;
		drep.simple.remote_comm_id = c->remote_id;
		cm_conn_send(c, &drep, false);
		return;
	}
	case CMS_REP_SENT:
	case CMS_MRA_REP_RCVD:
	case CMS_ESTABLISHED:
	case CMS_DREQ_SENT:
		break;
	default:
		return;
	}
	cm_conn_stop_retries(c);
	c->state = CMS_DREQ_RCVD;
	if (!c->id) {
		cm_ib_send_drep(c);	/* nobody to ask: answer, and go */
		return;
	}
	cm_conn_tell(c, CMIB_DREQ_RECEIVED, msg);
}

static void recv_drep(struct cm_conn *c, const struct cm_msg *msg)
{
	if (msg->simple.local_comm_id != c->remote_id ||
	    (c->state != CMS_DREQ_SENT && c->state != CMS_DREQ_RCVD))
		return;
	cm_conn_timewait(c);
	cm_conn_tell(c, CMIB_DREP_RECEIVED, msg);
}

static void recv_sidr_rep(struct cm_conn *c, const struct cm_msg *msg)
{
	if (c->state != CMS_SIDR_REQ_SENT ||
	    msg->sidr_rep.service_id != c->service_id)
		return;
	cm_conn_stop_retries(c);
	c->state = CMS_IDLE;
	cm_conn_tell(c, CMIB_SIDR_REP_RECEIVED, msg);
}

void cm_ib_recv(struct cm_func *f, const struct vhca_devcmd_mad *in)
{
	struct cm_msg msg;
	struct cm_conn *c;

	if (in->remote_qpn != 1 || !cm_mad_decode(in->mad, &msg))
		return;
	switch (msg.attr) {
	case CM_ATTR_REQ:
		recv_req(f, in, &msg);
		return;
	case CM_ATTR_SIDR_REQ:
		recv_sidr_req(f, in, &msg);
		return;
	case CM_ATTR_SIDR_REP:
		c = ours(f, msg.sidr_rep.request_id, in->lid);
		if (c)
			recv_sidr_rep(c, &msg);
		return;
	case CM_ATTR_DREQ:
		c = ours(f, msg.simple.remote_comm_id, in->lid);
		if (c) {
			recv_dreq(c, &msg);
		} else if (msg.simple.remote_comm_id) {
			/* Unknown: answer so the peer stops (cm_issue_drep()). */
			struct cm_msg drep = { .attr = CM_ATTR_DREP };

			drep.simple.local_comm_id = msg.simple.remote_comm_id;
			drep.simple.remote_comm_id = msg.simple.local_comm_id;
			cm_send_stateless(f, in, &drep);
		}
		return;
	default:
		break;
	}
	/* REP, REJ, MRA, RTU, DREP: the second field names us. */
	c = ours(f, msg.attr == CM_ATTR_REJ ? msg.rej.remote_comm_id :
		    msg.attr == CM_ATTR_REP ? msg.rep.remote_comm_id :
		    msg.attr == CM_ATTR_MRA ? msg.mra.remote_comm_id :
					      msg.simple.remote_comm_id,
		 in->lid);
	if (!c)
		return;
	switch (msg.attr) {
	case CM_ATTR_REP: recv_rep(c, &msg); break;
	case CM_ATTR_REJ: recv_rej(c, &msg); break;
	case CM_ATTR_MRA: recv_mra(c, &msg); break;
	case CM_ATTR_RTU: recv_rtu(c, &msg); break;
	case CM_ATTR_DREP: recv_drep(c, &msg); break;
	default: break;
	}
}

/* ---- QP attributes (cm_init_qp_*_attr()) ------------------------------------------------ */

static bool in_states(enum cm_state s, bool init_too)
{
	switch (s) {
	case CMS_REQ_SENT:
	case CMS_MRA_REQ_RCVD:
		return init_too;
	case CMS_REQ_RCVD:
	case CMS_MRA_REQ_SENT:
	case CMS_REP_RCVD:
	case CMS_REP_SENT:
	case CMS_MRA_REP_RCVD:
	case CMS_ESTABLISHED:
		return true;
	default:
		return false;
	}
}

int cm_ib_init_qp_attr(struct cm_conn *c, uint32_t qp_state,
		       struct ib_uverbs_qp_attr *a)
{
	switch (qp_state) {
	case IBV_QPS_INIT:
		if (!in_states(c->state, true))
			return -EINVAL;
		a->qp_attr_mask = IBV_QP_STATE | IBV_QP_ACCESS_FLAGS |
				  IBV_QP_PKEY_INDEX | IBV_QP_PORT;
		a->qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
		if (c->responder_resources)
			a->qp_access_flags |= IBV_ACCESS_REMOTE_READ |
					      IBV_ACCESS_REMOTE_ATOMIC;
		a->pkey_index = c->pkey_index;
		a->port_num = 1;
		return 0;
	case IBV_QPS_RTR:
		if (!in_states(c->state, false))
			return -EINVAL;
		a->qp_attr_mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
		a->ah_attr.dlid = c->path.dlid;
		a->ah_attr.sl = c->path.sl;
		a->ah_attr.static_rate = c->path.rate;
		a->ah_attr.port_num = 1;
		if (c->path.hop_limit > 1) {
			a->ah_attr.is_global = 1;
			for (int i = 0; i < 8; i++) {
				a->ah_attr.grh.dgid[i] = (uint8_t)
					(c->path.subnet_prefix >> (56 - 8 * i));
				a->ah_attr.grh.dgid[8 + i] = (uint8_t)
					(c->path.dgid_guid >> (56 - 8 * i));
			}
			a->ah_attr.grh.hop_limit = c->path.hop_limit;
			a->ah_attr.grh.traffic_class = c->path.traffic_class;
			a->ah_attr.grh.flow_label = c->path.flow_label;
		}
		a->path_mtu = c->mtu;
		a->dest_qp_num = c->remote_qpn;
		a->rq_psn = c->rq_psn;
		if (c->qp_type == IBV_QPT_RC) {
			a->qp_attr_mask |= IBV_QP_MAX_DEST_RD_ATOMIC |
					   IBV_QP_MIN_RNR_TIMER;
			a->max_dest_rd_atomic = c->responder_resources;
			a->min_rnr_timer = 0;
		}
		return 0;
	case IBV_QPS_RTS:
		if (!in_states(c->state, false))
			return -EINVAL;
		a->qp_attr_mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
		a->sq_psn = c->sq_psn;
		if (c->qp_type == IBV_QPT_RC) {
			a->qp_attr_mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					   IBV_QP_RNR_RETRY |
					   IBV_QP_MAX_QP_RD_ATOMIC;
			a->timeout = c->ack_timeout;
			a->retry_cnt = c->retry_count;
			a->rnr_retry = c->rnr_retry_count;
			a->max_rd_atomic = c->initiator_depth;
		}
		return 0;
	default:
		return -EINVAL;
	}
}

int cm_ib_notify(struct cm_conn *c, uint32_t event)
{
	/* IB_EVENT_COMM_EST: traffic came before the RTU (cm_establish()). */
	if (event != 4)
		return -EINVAL;
	if (c->state == CMS_ESTABLISHED)
		return -EISCONN;
	if (c->state != CMS_REP_SENT && c->state != CMS_MRA_REP_RCVD)
		return -EINVAL;
	cm_conn_stop_retries(c);
	c->state = CMS_ESTABLISHED;
	cm_conn_tell(c, CMIB_RTU_RECEIVED, NULL);
	return 0;
}
