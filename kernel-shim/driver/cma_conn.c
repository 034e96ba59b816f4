// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Connections of rdma_cm ids (cma.h) on top of the IB CM (cm_ib.c), as
 * the kernel's cma.c makes them: the IP header in the REQ's private data
 * (struct cma_hdr), listeners found by service ID and address
 * (cma_find_listener()), connect, accept, reject, disconnect, the events
 * the IB CM's messages become (cma_ib_handler()), SIDR for UD, and
 * rdma_init_qp_attr().  Under cm_lock().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>

#include "cma.h"

/* The IP header rdma_cm puts in front of REQ private data (cma.c). */
struct cma_hdr {
	uint8_t cma_version;		/* CMA_VERSION: 0 */
	uint8_t ip_version;		/* in bits 7:4 */
	uint16_t port;			/* the active side's, network order */
	uint8_t src_addr[16];		/* IPv4: the last four bytes */
	uint8_t dst_addr[16];
} __attribute__((packed));

_Static_assert(sizeof(struct cma_hdr) == 36, "the kernel's cma_hdr");

static unsigned int data_offset(const struct cm_id *id)
{
	return id->src.ss_family == AF_IB ? 0 : sizeof(struct cma_hdr);
}

static void format_hdr(const struct cm_id *id, uint8_t *data)
{
	struct cma_hdr hdr = { .cma_version = 0 };

	if (id->src.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&id->src,
					 *d = (const void *)&id->dst;

		hdr.ip_version = 4 << 4;
		memcpy(hdr.src_addr + 12, &s->sin_addr, 4);
		memcpy(hdr.dst_addr + 12, &d->sin_addr, 4);
		hdr.port = s->sin_port;
	} else if (id->src.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)&id->src,
					  *d = (const void *)&id->dst;

		hdr.ip_version = 6 << 4;
		memcpy(hdr.src_addr, &s->sin6_addr, 16);
		memcpy(hdr.dst_addr, &d->sin6_addr, 16);
		hdr.port = s->sin6_port;
	} else {
		return;
	}
	memcpy(data, &hdr, sizeof(hdr));
}

/* cma_set_qkey(): the id's Q_Key, fixed once set. */
static int set_qkey(struct cm_id *id, uint32_t qkey)
{
	if (id->qkey)
		return qkey && id->qkey != qkey ? -EINVAL : 0;
	if (qkey)
		id->qkey = qkey;
	else
		id->qkey = id->ps == RDMA_PS_IPOIB ? CM_IPOIB_QKEY : CM_UDP_QKEY;
	return 0;
}

/* ---- the active side ---------------------------------------------------------------- */

int cma_connect(struct cm_id *id, const struct cma_conn_param *p)
{
	unsigned int off = data_offset(id), len = off + p->private_data_len;
	uint8_t data[CM_SIDR_REQ_PRIVATE] = { 0 };
	int index, ret;

	if (id->state != CMA_ROUTE_RESOLVED)
		return -EINVAL;
	index = cm_func_pkey_index(id->func, id->path.pkey);
	if (index < 0)
		return -EINVAL;
	if (len > (id->qp_type == IBV_QPT_UD ? CM_SIDR_REQ_PRIVATE :
					       CM_REQ_PRIVATE))
		return -EINVAL;
	format_hdr(id, data);
	if (p->private_data_len)
		memcpy(data + off, p->private_data, p->private_data_len);
	id->qp_num = p->qp_num;
	id->srq = p->srq;
	id->conn = cm_ib_create(id->func, id);
	if (!id->conn)
		return -ENOMEM;
	id->state = CMA_CONNECT;
	if (id->qp_type == IBV_QPT_UD) {
		ret = cm_ib_send_sidr_req(id->conn, &id->path, (uint16_t)index,
					  cma_service_id(id, (void *)&id->dst),
					  data, len);
	} else {
		struct cm_req_args a = {
			.service_id = cma_service_id(id, (void *)&id->dst),
			.qpn = p->qp_num,
			.starting_psn = id->seq_num,
			.qp_type = id->qp_type,
			.responder_resources = p->responder_resources,
			.initiator_depth = p->initiator_depth,
			.retry_count = p->retry_count,
			.rnr_retry_count = p->rnr_retry_count,
			.flow_control = p->flow_control,
			.srq = p->srq,
			.private_data = data,
			.private_len = len,
		};

		ret = cm_ib_send_req(id->conn, &id->path, (uint16_t)index, &a);
	}
	if (ret) {
		cm_ib_release(id->conn);
		id->conn = NULL;
		id->state = CMA_ROUTE_RESOLVED;
	}
	return ret;
}

/* ---- the passive side --------------------------------------------------------------- */

/* cma_match_private_data(): does @l take a request with header @hdr? */
static bool match_hdr(const struct cm_id *l, const struct cma_hdr *hdr)
{
	const struct sockaddr *a = (const struct sockaddr *)&l->src;
	unsigned int ver = hdr->ip_version >> 4;

	if (a->sa_family == AF_IB)
		return true;
	if (hdr->cma_version || (ver != 4 && ver != 6))
		return false;
	if (cm_addr_any(a) && !l->afonly)
		return true;
	if (a->sa_family == AF_INET)
		return ver == 4 &&
		       (cm_addr_any(a) ||
			!memcmp(hdr->dst_addr + 12,
				&((const struct sockaddr_in *)a)->sin_addr, 4));
	return ver == 6 &&
	       (cm_addr_any(a) ||
		!memcmp(hdr->dst_addr,
			&((const struct sockaddr_in6 *)a)->sin6_addr, 16));
}

/* The request's addresses, seen from the passive side (cma_save_net_info()). */
static void save_addrs(struct cm_id *id, const struct cm_id *l,
		       const struct cma_hdr *hdr, uint64_t sid,
		       const struct cm_path *path)
{
	uint16_t port = (uint16_t)sid;

	memset(&id->src, 0, sizeof(id->src));
	memset(&id->dst, 0, sizeof(id->dst));
	if (l->src.ss_family == AF_IB) {
		struct sockaddr_ib *s = (void *)&id->src, *d = (void *)&id->dst;

		s->sib_family = d->sib_family = AF_IB;
		s->sib_pkey = d->sib_pkey = htobe16(path->pkey);
		s->sib_sid = d->sib_sid = htobe64(sid);
		s->sib_sid_mask = d->sib_sid_mask = htobe64(~0ull);
		for (int i = 0; i < 8; i++) {
			s->sib_addr.sib_raw[i] = d->sib_addr.sib_raw[i] =
				(uint8_t)(path->subnet_prefix >> (56 - 8 * i));
			s->sib_addr.sib_raw[8 + i] =
				(uint8_t)(path->sgid_guid >> (56 - 8 * i));
			d->sib_addr.sib_raw[8 + i] =
				(uint8_t)(path->dgid_guid >> (56 - 8 * i));
		}
	} else if (hdr->ip_version >> 4 == 4) {
		struct sockaddr_in *s = (void *)&id->src, *d = (void *)&id->dst;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, hdr->dst_addr + 12, 4);
		memcpy(&d->sin_addr, hdr->src_addr + 12, 4);
		s->sin_port = htons(port);
		d->sin_port = hdr->port;
	} else {
		struct sockaddr_in6 *s = (void *)&id->src,
				    *d = (void *)&id->dst;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, hdr->dst_addr, 16);
		memcpy(&d->sin6_addr, hdr->src_addr, 16);
		s->sin6_port = htons(port);
		d->sin6_port = hdr->port;
	}
}

/* cma_find_listener(): a listener of @domain that takes the request. */
static struct cm_id *find_listener(struct cm_func *f, uint64_t sid,
				   uint8_t qp_type, const struct cma_hdr *hdr)
{
	uint16_t ps = (uint16_t)(sid >> 16);
	struct cm_bind *b;

	/* Only the port spaces of IBTA annex A11 carry rdma_cm's IDs. */
	if ((sid >> 32) || (ps != RDMA_PS_TCP && ps != RDMA_PS_UDP &&
			    ps != RDMA_PS_IPOIB && ps != RDMA_PS_IB))
		return NULL;
	b = cma_bind_of(cm_func_domain(f), ps, (uint16_t)sid);
	for (struct cm_id *l = b ? b->owners : NULL; l; l = l->bind_next)
		if (l->state == CMA_LISTEN && l->qp_type == qp_type &&
		    (!l->func || l->func == f) && match_hdr(l, hdr))
			return l;
	return NULL;
}

int cma_ib_request(struct cm_func *f, struct cm_conn *conn,
		   const struct cm_msg *msg, const struct cm_path *path)
{
	bool sidr = msg->attr == CM_ATTR_SIDR_REQ;
	const uint8_t *data = sidr ? msg->sidr_req.private_data :
				     msg->req.private_data;
	uint64_t sid = sidr ? msg->sidr_req.service_id : msg->req.service_id;
	uint8_t qp_type = sidr ? IBV_QPT_UD :
			  msg->req.transport == CM_TRANSPORT_RC ? IBV_QPT_RC :
								  IBV_QPT_UC;
	const struct cma_hdr *hdr = (const struct cma_hdr *)data;
	struct rdma_ucm_event_resp ev = { 0 };
	unsigned int off, total;
	struct cm_id *l, *id;
	int err;

	l = find_listener(f, sid, qp_type, hdr);
	if (!l)
		return sidr ? 0x100 + CM_SIDR_UNSUPPORTED :
			      CM_REJ_INVALID_SERVICE_ID;
	/* ucma_event_handler(): a full backlog refuses (-ENOMEM there). */
	if (l->backlog <= 0)
		return sidr ? 0x100 + CM_SIDR_REJECT : CM_REJ_CONSUMER_DEFINED;
	id = cma_create(l->file, l->ps, qp_type, l->domain, &err);
	if (!id)
		return sidr ? 0x100 + CM_SIDR_REJECT : CM_REJ_NO_RESOURCES;
	id->state = CMA_CONNECT;
	id->func = f;
	cm_func_get(f);
	id->pkey = path->pkey;
	id->path = *path;
	id->num_paths = sidr ? 0 : 1;
	id->afonly = l->afonly;
	id->tos = l->tos;
	id->tos_set = l->tos_set;
	id->conn = conn;
	id->listener = l;
	cm_ib_attach(conn, id);
	save_addrs(id, l, hdr, sid, path);
	l->backlog--;

	off = data_offset(l);
	total = sidr ? CM_SIDR_REQ_PRIVATE : CM_REQ_PRIVATE;
	if (sidr) {
		memcpy(ev.param.ud.private_data, data + off, total - off);
		ev.param.ud.private_data_len = (uint8_t)(total - off);
	} else {
		const struct cm_req *r = &msg->req;

		memcpy(ev.param.conn.private_data, data + off, total - off);
		ev.param.conn.private_data_len = (uint8_t)(total - off);
		/* The passive side's view: the REQ's fields swapped. */
		ev.param.conn.responder_resources = r->initiator_depth;
		ev.param.conn.initiator_depth = r->responder_resources;
		ev.param.conn.flow_control = r->flow_control;
		ev.param.conn.retry_count = r->retry_count;
		ev.param.conn.rnr_retry_count = r->rnr_retry_count;
		ev.param.conn.srq = r->srq;
		ev.param.conn.qp_num = r->local_qpn;
	}
	ucma_post(id, l, CM_EV_CONNECT_REQUEST, 0, &ev);
	/* cma_ib_req_handler(): the user decides later; MRA if asked. */
	if (!sidr)
		cm_ib_delay_mra(conn);
	return 0;
}

int cma_accept(struct cm_id *id, const struct cma_conn_param *p)
{
	int ret;

	if (id->state != CMA_CONNECT || !id->conn)
		return -EINVAL;
	if (p) {
		id->qp_num = p->qp_num;
		id->srq = p->srq;
	}
	if (id->qp_type == IBV_QPT_UD) {
		ret = set_qkey(id, p ? p->qkey : 0);
		if (!ret)
			ret = cm_ib_send_sidr_rep(id->conn, CM_SIDR_SUCCESS,
						  id->qp_num, id->qkey,
						  p ? p->private_data : NULL,
						  p ? p->private_data_len : 0);
	} else if (p) {
		struct cm_rep_args a = {
			.qpn = p->qp_num,
			.starting_psn = id->seq_num,
			.responder_resources = p->responder_resources,
			.initiator_depth = p->initiator_depth,
			.rnr_retry_count = p->rnr_retry_count,
			.flow_control = p->flow_control,
			.srq = p->srq,
			.private_data = p->private_data,
			.private_len = p->private_data_len,
		};

		ret = cm_ib_send_rep(id->conn, &a);
	} else {
		/* The active side's user took the REP: RTU (cma_rep_recv()). */
		ret = cm_ib_send_rtu(id->conn);
	}
	if (ret)
		cma_reject(id, NULL, 0, CM_REJ_CONSUMER_DEFINED);
	return ret;
}

int cma_reject(struct cm_id *id, const uint8_t *data, uint8_t len,
	       uint8_t reason)
{
	if (!id->conn)
		return -EINVAL;
	if (id->qp_type == IBV_QPT_UD)
		return cm_ib_send_sidr_rep(id->conn, CM_SIDR_REJECT, 0, 0, data,
					   len);
	return cm_ib_send_rej(id->conn, reason, data, len);
}

int cma_disconnect(struct cm_id *id)
{
	if (!id->conn)
		return -EINVAL;
	/* Initiate or answer (rdma_disconnect()); either may not apply. */
	if (cm_ib_send_dreq(id->conn))
		cm_ib_send_drep(id->conn);
	return 0;
}

int cma_notify(struct cm_id *id, uint32_t event)
{
	return id->conn ? cm_ib_notify(id->conn, event) : -EINVAL;
}

/* ---- what the IB CM says (cma_ib_handler(), cma_sidr_rep_handler()) ---------------- */

static void sidr_event(struct cm_id *id, enum cm_ib_event_type type,
		       const struct cm_msg *msg)
{
	struct rdma_ucm_event_resp ev = { 0 };
	const struct cm_sidr_rep *r = msg ? &msg->sidr_rep : NULL;

	if (id->state != CMA_CONNECT)
		return;
	if (type == CMIB_SIDR_REQ_ERROR) {
		ucma_post(id, NULL, CM_EV_UNREACHABLE, -ETIMEDOUT, NULL);
		return;
	}
	memcpy(ev.param.ud.private_data, r->private_data, CM_SIDR_REP_PRIVATE);
	ev.param.ud.private_data_len = CM_SIDR_REP_PRIVATE;
	if (r->status != CM_SIDR_SUCCESS) {
		ucma_post(id, NULL, CM_EV_UNREACHABLE, r->status, &ev);
		return;
	}
	if (set_qkey(id, r->qkey)) {
		ucma_post(id, NULL, CM_EV_ADDR_ERROR, -EINVAL, NULL);
		return;
	}
	ev.param.ud.ah_attr.dlid = id->path.dlid;
	ev.param.ud.ah_attr.sl = id->path.sl;
	ev.param.ud.ah_attr.static_rate = id->path.rate;
	ev.param.ud.ah_attr.port_num = 1;
	ev.param.ud.qp_num = r->qpn;
	ev.param.ud.qkey = r->qkey;
	ucma_post(id, NULL, CM_EV_ESTABLISHED, 0, &ev);
}

void cma_ib_event(struct cm_id *id, enum cm_ib_event_type type,
		  const struct cm_msg *msg)
{
	struct rdma_ucm_event_resp ev = { 0 };
	int32_t status = 0;
	uint32_t event;

	if (type == CMIB_SIDR_REP_RECEIVED || type == CMIB_SIDR_REQ_ERROR) {
		sidr_event(id, type, msg);
		return;
	}
	if ((type != CMIB_TIMEWAIT_EXIT && id->state != CMA_CONNECT) ||
	    (type == CMIB_TIMEWAIT_EXIT && id->state != CMA_DISCONNECT))
		return;
	switch (type) {
	case CMIB_REQ_ERROR:
	case CMIB_REP_ERROR:
		event = CM_EV_UNREACHABLE;
		status = -ETIMEDOUT;
		break;
	case CMIB_REP_RECEIVED:
		cm_ib_delay_mra(id->conn);
		event = CM_EV_CONNECT_RESPONSE;
		memcpy(ev.param.conn.private_data, msg->rep.private_data,
		       CM_REP_PRIVATE);
		ev.param.conn.private_data_len = CM_REP_PRIVATE;
		ev.param.conn.responder_resources = msg->rep.initiator_depth;
		ev.param.conn.initiator_depth = msg->rep.responder_resources;
		ev.param.conn.flow_control = msg->rep.flow_control;
		ev.param.conn.rnr_retry_count = msg->rep.rnr_retry_count;
		ev.param.conn.srq = msg->rep.srq;
		ev.param.conn.qp_num = msg->rep.local_qpn;
		break;
	case CMIB_RTU_RECEIVED:
		event = CM_EV_ESTABLISHED;
		break;
	case CMIB_DREQ_ERROR:
		status = -ETIMEDOUT;
		/* fall through */
	case CMIB_DREQ_RECEIVED:
	case CMIB_DREP_RECEIVED:
		id->state = CMA_DISCONNECT;
		event = CM_EV_DISCONNECTED;
		break;
	case CMIB_TIMEWAIT_EXIT:
		event = CM_EV_TIMEWAIT_EXIT;
		break;
	case CMIB_REJ_RECEIVED:
		event = CM_EV_REJECTED;
		status = msg->rej.reason;
		memcpy(ev.param.conn.private_data, msg->rej.private_data,
		       CM_REJ_PRIVATE);
		ev.param.conn.private_data_len = CM_REJ_PRIVATE;
		break;
	default:
		return;
	}
	ucma_post(id, NULL, event, status, &ev);
}

/* ---- rdma_init_qp_attr() ------------------------------------------------------------- */

int cma_init_qp_attr(struct cm_id *id, uint32_t qp_state,
		     struct ib_uverbs_qp_attr *a)
{
	int ret = 0;

	if (!id->func)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	if (!id->conn || id->qp_type == IBV_QPT_UD) {
		/* cma_ib_init_qp_attr(): what a QP needs before connecting. */
		int index = cm_func_pkey_index(id->func, id->pkey);

		if (index < 0)
			return -EINVAL;
		a->pkey_index = (uint16_t)index;
		a->port_num = 1;
		a->qp_attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;
		if (id->qp_type == IBV_QPT_UD) {
			ret = set_qkey(id, 0);
			a->qkey = id->qkey;
			a->qp_attr_mask |= IBV_QP_QKEY;
		} else {
			a->qp_access_flags = 0;
			a->qp_attr_mask |= IBV_QP_ACCESS_FLAGS;
		}
	} else {
		ret = cm_ib_init_qp_attr(id->conn, qp_state, a);
	}
	if (ret)
		return ret;
	if (qp_state == IBV_QPS_RTR)
		a->rq_psn = id->seq_num;
	if ((a->qp_attr_mask & IBV_QP_TIMEOUT) && id->timeout_set)
		a->timeout = id->timeout;
	a->qp_state = qp_state;
	return 0;
}
