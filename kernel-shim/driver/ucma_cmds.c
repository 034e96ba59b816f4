// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The commands of the ucma ABI v4 (ucma.h), with the kernel's ucma.c
 * rules: a body shorter than its command is EINVAL, a response buffer
 * shorter than its answer ENOSPC, an unknown id ENOENT and an id of
 * another file EINVAL, commands the driver does not have ENOSYS.  Each
 * runs under cm_lock() on a copy of its body; what goes back to the
 * caller is written after cm_unlock() (cm.h), EFAULT if that faults.
 * Addresses and paths leave in the formats librdmacm reads: QUERY
 * (ADDR, PATH, GID) for AF_IB-capable librdmacm, QUERY_ROUTE for older.
 * The ioctl-free path (GET_EVENT) is ucma.c's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/sa.h>
#include <infiniband/verbs.h>
#include <rdma/ib_user_sa.h>
#include <rdma/rdma_user_cm.h>

#include "cma.h"
#include "device/pf.h"
#include "peer.h"
#include "ucma.h"

#define INVALID_IB_INDEX 0xffffffffu
#define OPTLEN_MAX 4096u
#define BACKLOG_MAX 1024

/* The response to write once the lock is gone. */
struct reply {
	uint64_t to;
	size_t len;
	uint8_t buf[sizeof(struct rdma_ucm_query_route_resp) + 512];
};

static void put_reply(struct reply *r, uint64_t to, const void *p, size_t len,
		      size_t out_len)
{
	r->to = to;
	r->len = len < out_len ? len : out_len;
	memcpy(r->buf, p, r->len);
}

static void gid_of(uint8_t gid[16], uint64_t prefix, uint64_t guid)
{
	for (int i = 0; i < 8; i++) {
		gid[i] = (uint8_t)(prefix >> (56 - 8 * i));
		gid[8 + i] = (uint8_t)(guid >> (56 - 8 * i));
	}
}

/* An address of the in6 container (BIND_IP...): AF_INET or AF_INET6. */
static bool in6_size_ok(const struct sockaddr_in6 *a)
{
	return a->sin6_family == AF_INET || a->sin6_family == AF_INET6;
}

/* rdma_addr_size_kss(): @size must be what the family says. */
static bool kss_size_ok(const void *a, uint16_t size)
{
	socklen_t want = cm_addr_size(a);

	return want && size == want;
}

/* ---- ids --------------------------------------------------------------------------- */

static int create_id(struct ucma_file *file, const uint8_t *in,
		     size_t out_len, struct reply *r)
{
	struct rdma_ucm_create_id cmd;
	struct rdma_ucm_create_id_resp resp;
	struct cm_id *id;
	int ret = 0;

	if (out_len < sizeof(resp))
		return -ENOSPC;
	memcpy(&cmd, in, sizeof(cmd));
	id = cma_create(file, cmd.ps, cmd.qp_type, ucma_file_domain(file),
			&ret);
	if (!id)
		return ret;
	id->uid = cmd.uid;
	ucma_publish(id);
	resp.id = id->handle;
	put_reply(r, cmd.response, &resp, sizeof(resp), out_len);
	return 0;
}

static int destroy_id(struct ucma_file *file, const uint8_t *in,
		      size_t out_len, struct reply *r)
{
	struct rdma_ucm_destroy_id cmd;
	struct rdma_ucm_destroy_id_resp resp;
	struct cm_id *id;
	int ret;

	if (out_len < sizeof(resp))
		return -ENOSPC;
	memcpy(&cmd, in, sizeof(cmd));
	ret = ucma_find(file, cmd.id, &id);
	if (ret)
		return ret;
	cma_destroy(id);
	resp.events_reported = id->events_reported;
	ucma_free_id(id);
	put_reply(r, cmd.response, &resp, sizeof(resp), out_len);
	return 0;
}

/* ---- addresses ----------------------------------------------------------------------- */

static int bind_ip(struct ucma_file *file, pid_t tid, const uint8_t *in)
{
	struct rdma_ucm_bind_ip cmd;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	if (!in6_size_ok(&cmd.addr))
		return -EINVAL;
	ret = ucma_find(file, cmd.id, &id);
	return ret ? ret : cma_bind(id, (struct sockaddr *)&cmd.addr, tid);
}

static int bind_addr(struct ucma_file *file, pid_t tid, const uint8_t *in)
{
	struct rdma_ucm_bind cmd;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	if (cmd.reserved || !kss_size_ok(&cmd.addr, cmd.addr_size))
		return -EINVAL;
	ret = ucma_find(file, cmd.id, &id);
	return ret ? ret : cma_bind(id, (struct sockaddr *)&cmd.addr, tid);
}

static int resolve_ip(struct ucma_file *file, pid_t tid, const uint8_t *in)
{
	struct rdma_ucm_resolve_ip cmd;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	if ((cmd.src_addr.sin6_family && !in6_size_ok(&cmd.src_addr)) ||
	    !in6_size_ok(&cmd.dst_addr))
		return -EINVAL;
	ret = ucma_find(file, cmd.id, &id);
	return ret ? ret : cma_resolve_addr(id, (struct sockaddr *)&cmd.src_addr,
					    (struct sockaddr *)&cmd.dst_addr,
					    tid);
}

static int resolve_addr(struct ucma_file *file, pid_t tid, const uint8_t *in)
{
	struct rdma_ucm_resolve_addr cmd;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	if (cmd.reserved ||
	    (cmd.src_size && !kss_size_ok(&cmd.src_addr, cmd.src_size)) ||
	    !kss_size_ok(&cmd.dst_addr, cmd.dst_size))
		return -EINVAL;
	if (!cmd.src_size)
		cmd.src_addr.ss_family = 0;
	ret = ucma_find(file, cmd.id, &id);
	return ret ? ret : cma_resolve_addr(id, (struct sockaddr *)&cmd.src_addr,
					    (struct sockaddr *)&cmd.dst_addr,
					    tid);
}

static int resolve_route(struct ucma_file *file, const uint8_t *in)
{
	struct rdma_ucm_resolve_route cmd;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	ret = ucma_find(file, cmd.id, &id);
	return ret ? ret : cma_resolve_route(id);
}

/* ---- queries -------------------------------------------------------------------------- */

static uint64_t node_guid_be(struct cm_id *id)
{
	uint64_t guid = 0;

	if (id->func && cm_func_identity(id->func, NULL, NULL, &guid))
		guid = 0;
	return htobe64(guid);
}

static uint64_t sgid_guid(struct cm_id *id)
{
	uint64_t guid = 0;

	if (id->path.sgid_guid)
		return id->path.sgid_guid;
	if (id->func)
		cm_func_identity(id->func, NULL, &guid, NULL);
	return guid;
}

/* ib_sa_pack_path(): the PathRecord of IBTA 15.2.5.16 on the wire. */
static void pack_path(const struct cm_id *id, struct ibv_path_data *d)
{
	const struct cm_path *p = &id->path;
	struct ibv_path_record *rec = &d->path;

	memset(d, 0, sizeof(*d));
	d->flags = IBV_PATH_FLAG_GMP | IBV_PATH_FLAG_PRIMARY |
		   IBV_PATH_FLAG_BIDIRECTIONAL;
	rec->service_id = htobe64(cma_service_id(id, (void *)&id->dst));
	gid_of(rec->dgid.raw, p->subnet_prefix, p->dgid_guid);
	gid_of(rec->sgid.raw, p->subnet_prefix, p->sgid_guid);
	rec->dlid = htobe16(p->dlid);
	rec->slid = htobe16(p->slid);
	rec->flowlabel_hoplimit = htobe32((p->flow_label & 0xfffff) << 8 |
					  p->hop_limit);
	rec->tclass = p->traffic_class;
	rec->reversible_numpath = 0x80 | 1;
	rec->pkey = htobe16(p->pkey);
	rec->qosclass_sl = htobe16(p->sl & 0xf);
	/* Selector 2: exactly this value. */
	rec->mtu = (uint8_t)(2 << 6 | (p->mtu & 0x3f));
	rec->rate = (uint8_t)(2 << 6 | (p->rate & 0x3f));
	rec->packetlifetime = (uint8_t)(2 << 6 | (p->packet_life_time & 0x3f));
}

static void user_path(const struct cm_id *id, struct ib_user_path_rec *u)
{
	const struct cm_path *p = &id->path;

	memset(u, 0, sizeof(*u));
	gid_of(u->dgid, p->subnet_prefix, p->dgid_guid);
	gid_of(u->sgid, p->subnet_prefix, p->sgid_guid);
	u->pkey = htobe16(id->pkey);
	if (!id->num_paths)
		return;
	u->dlid = htobe16(p->dlid);
	u->slid = htobe16(p->slid);
	u->flow_label = htobe32(p->flow_label);
	u->reversible = 1;
	u->mtu = p->mtu;
	u->hop_limit = p->hop_limit;
	u->traffic_class = p->traffic_class;
	u->numb_path = 1;
	u->sl = p->sl;
	u->mtu_selector = u->rate_selector = u->packet_life_time_selector = 2;
	u->rate = p->rate;
	u->packet_life_time = p->packet_life_time;
}

static int query_route(struct cm_id *id, uint64_t to, size_t out_len,
		       struct reply *r)
{
	struct rdma_ucm_query_route_resp resp = { 0 };

	if (out_len < offsetof(struct rdma_ucm_query_route_resp, ibdev_index))
		return -ENOSPC;
	resp.node_guid = node_guid_be(id);
	resp.port_num = id->func ? 1 : 0;
	resp.ibdev_index = INVALID_IB_INDEX;
	if (id->src.ss_family != AF_IB) {
		memcpy(&resp.src_addr, &id->src,
		       cm_addr_size((void *)&id->src));
		memcpy(&resp.dst_addr, &id->dst,
		       cm_addr_size((void *)&id->dst));
	}
	if (id->func) {
		resp.num_paths = id->num_paths;
		user_path(id, &resp.ib_route[0]);
		if (!id->path.sgid_guid)
			gid_of(resp.ib_route[0].sgid, VHCA_SUBNET_PREFIX,
			       sgid_guid(id));
	}
	put_reply(r, to, &resp, sizeof(resp), out_len);
	return 0;
}

static int query_addr(struct cm_id *id, uint64_t to, size_t out_len,
		      struct reply *r, bool gids)
{
	struct rdma_ucm_query_addr_resp resp = { 0 };

	if (out_len < sizeof(resp))
		return -ENOSPC;
	resp.node_guid = node_guid_be(id);
	resp.port_num = id->func ? 1 : 0;
	resp.pkey = htobe16(id->pkey);
	resp.ibdev_index = INVALID_IB_INDEX;
	if (!gids) {
		resp.src_size = (uint16_t)cm_addr_size((void *)&id->src);
		resp.dst_size = (uint16_t)cm_addr_size((void *)&id->dst);
		memcpy(&resp.src_addr, &id->src, resp.src_size);
		memcpy(&resp.dst_addr, &id->dst, resp.dst_size);
	} else {
		/* ucma_query_gid(): the GIDs as AF_IB addresses. */
		struct sockaddr_ib *s = (void *)&resp.src_addr,
				   *d = (void *)&resp.dst_addr;

		s->sib_family = d->sib_family = AF_IB;
		s->sib_pkey = d->sib_pkey = htobe16(id->pkey);
		s->sib_sid = htobe64(cma_service_id(id, (void *)&id->src));
		d->sib_sid = htobe64(cma_service_id(id, (void *)&id->dst));
		s->sib_sid_mask = d->sib_sid_mask = htobe64(~0ull);
		gid_of(s->sib_addr.sib_raw, VHCA_SUBNET_PREFIX, sgid_guid(id));
		if (id->path.dgid_guid)
			gid_of(d->sib_addr.sib_raw, id->path.subnet_prefix,
			       id->path.dgid_guid);
		resp.src_size = resp.dst_size = sizeof(struct sockaddr_ib);
	}
	put_reply(r, to, &resp, sizeof(resp), out_len);
	return 0;
}

static int query_path(struct cm_id *id, uint64_t to, size_t out_len,
		      struct reply *r)
{
	struct {
		struct rdma_ucm_query_path_resp hdr;
		struct ibv_path_data path;
	} resp = { 0 };

	if (out_len < sizeof(resp.hdr))
		return -ENOSPC;
	if (id->num_paths && out_len >= sizeof(resp)) {
		resp.hdr.num_paths = 1;
		pack_path(id, &resp.path);
	}
	put_reply(r, to, &resp,
		  sizeof(resp.hdr) + resp.hdr.num_paths * sizeof(resp.path),
		  out_len);
	return 0;
}

static int query(struct ucma_file *file, uint32_t cmd_no, const uint8_t *in,
		 size_t out_len, struct reply *r)
{
	struct rdma_ucm_query cmd;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	ret = ucma_find(file, cmd.id, &id);
	if (ret)
		return ret;
	if (cmd_no == RDMA_USER_CM_CMD_QUERY_ROUTE)
		return query_route(id, cmd.response, out_len, r);
	switch (cmd.option) {
	case RDMA_USER_CM_QUERY_ADDR:
		return query_addr(id, cmd.response, out_len, r, false);
	case RDMA_USER_CM_QUERY_PATH:
		return query_path(id, cmd.response, out_len, r);
	case RDMA_USER_CM_QUERY_GID:
		return query_addr(id, cmd.response, out_len, r, true);
	default:
		return -ENOSYS;
	}
}

/* ---- multicast (ucma_mcast.c) --------------------------------------------------------- */

static int join(struct ucma_file *file, uint32_t cmd_no, const uint8_t *in,
		size_t out_len, struct reply *r)
{
	struct rdma_ucm_create_id_resp resp;
	uint64_t to;
	int ret;

	if (out_len < sizeof(resp))
		return -ENOSPC;
	if (cmd_no == RDMA_USER_CM_CMD_JOIN_IP_MCAST) {
		struct rdma_ucm_join_ip_mcast cmd;

		memcpy(&cmd, in, sizeof(cmd));
		to = cmd.response;
		/* ucma_join_ip_multicast(): the size of its family. */
		ret = in6_size_ok(&cmd.addr) ?
			      ucma_join(file, cmd.id, cmd.uid,
					(struct sockaddr *)&cmd.addr,
					(uint16_t)cm_addr_size(
						(struct sockaddr *)&cmd.addr),
					RDMA_MC_JOIN_FLAG_FULLMEMBER, &resp.id) :
			      -EINVAL;
	} else {
		struct rdma_ucm_join_mcast cmd;

		memcpy(&cmd, in, sizeof(cmd));
		to = cmd.response;
		ret = ucma_join(file, cmd.id, cmd.uid,
				(struct sockaddr *)&cmd.addr, cmd.addr_size,
				cmd.join_flags, &resp.id);
	}
	if (!ret)
		put_reply(r, to, &resp, sizeof(resp), out_len);
	return ret;
}

static int leave(struct ucma_file *file, const uint8_t *in, size_t out_len,
		 struct reply *r)
{
	struct rdma_ucm_destroy_id cmd;	/* struct rdma_ucm_leave_mcast */
	struct rdma_ucm_destroy_id_resp resp;
	int ret;

	if (out_len < sizeof(resp))
		return -ENOSPC;
	memcpy(&cmd, in, sizeof(cmd));
	ret = ucma_leave(file, cmd.id, &resp.events_reported);
	if (!ret)
		put_reply(r, cmd.response, &resp, sizeof(resp), out_len);
	return ret;
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_param(struct cma_conn_param *p,
		       const struct rdma_ucm_conn_param *u)
{
	*p = (struct cma_conn_param){
		.private_data = u->private_data,
		.private_data_len = u->private_data_len,
		.responder_resources = u->responder_resources,
		.initiator_depth = u->initiator_depth,
		.flow_control = u->flow_control,
		.retry_count = u->retry_count,
		.rnr_retry_count = u->rnr_retry_count,
		.srq = u->srq,
		.qp_num = u->qp_num & 0xffffff,
		.qkey = u->qkey,
	};
}

static int do_connect(struct ucma_file *file, const uint8_t *in, size_t in_len)
{
	struct rdma_ucm_connect cmd = { 0 };
	struct cma_conn_param p;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, in_len < sizeof(cmd) ? in_len : sizeof(cmd));
	if (!cmd.conn_param.valid)
		return -EINVAL;
	ret = ucma_find(file, cmd.id, &id);
	if (ret)
		return ret;
	conn_param(&p, &cmd.conn_param);
	return cma_connect(id, &p);
}

static int do_listen(struct ucma_file *file, pid_t tid, const uint8_t *in)
{
	struct rdma_ucm_listen cmd;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	ret = ucma_find(file, cmd.id, &id);
	if (ret)
		return ret;
	if (!cmd.backlog || cmd.backlog > BACKLOG_MAX)
		cmd.backlog = BACKLOG_MAX;
	return cma_listen(id, (int)cmd.backlog, tid);
}

static int do_accept(struct ucma_file *file, const uint8_t *in, size_t in_len)
{
	struct rdma_ucm_accept cmd = { 0 };
	struct cma_conn_param p;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, in_len < sizeof(cmd) ? in_len : sizeof(cmd));
	ret = ucma_find(file, cmd.id, &id);
	if (ret)
		return ret;
	if (!cmd.conn_param.valid)
		return cma_accept(id, NULL);
	conn_param(&p, &cmd.conn_param);
	ret = cma_accept(id, &p);
	/* The uid goes with the accept: events of the id reach the user. */
	if (!ret)
		id->uid = cmd.uid;
	return ret;
}

static int do_reject(struct ucma_file *file, const uint8_t *in)
{
	struct rdma_ucm_reject cmd;
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	/* Consumers may give only these reasons (IBTA table 112). */
	if (!cmd.reason)
		cmd.reason = CM_REJ_CONSUMER_DEFINED;
	if (cmd.reason != CM_REJ_CONSUMER_DEFINED &&
	    cmd.reason != CM_REJ_VENDOR_OPTION_NOT_SUPPORTED)
		return -EINVAL;
	ret = ucma_find(file, cmd.id, &id);
	return ret ? ret : cma_reject(id, cmd.private_data,
				      cmd.private_data_len, cmd.reason);
}

static int do_id_cmd(struct ucma_file *file, uint32_t cmd_no, const uint8_t *in)
{
	struct rdma_ucm_notify cmd;	/* DISCONNECT is its first field */
	struct cm_id *id;
	int ret;

	memcpy(&cmd, in, cmd_no == RDMA_USER_CM_CMD_NOTIFY ? sizeof(cmd) :
			 sizeof(struct rdma_ucm_disconnect));
	ret = ucma_find(file, cmd.id, &id);
	if (ret)
		return ret;
	return cmd_no == RDMA_USER_CM_CMD_NOTIFY ? cma_notify(id, cmd.event) :
						   cma_disconnect(id);
}

static int init_qp_attr(struct ucma_file *file, const uint8_t *in,
			size_t out_len, struct reply *r)
{
	struct rdma_ucm_init_qp_attr cmd;
	struct ib_uverbs_qp_attr resp;
	struct cm_id *id;
	int ret;

	if (out_len < sizeof(resp))
		return -ENOSPC;
	memcpy(&cmd, in, sizeof(cmd));
	if (cmd.qp_state > IBV_QPS_ERR)
		return -EINVAL;
	ret = ucma_find(file, cmd.id, &id);
	if (!ret)
		ret = cma_init_qp_attr(id, cmd.qp_state, &resp);
	if (!ret)
		put_reply(r, cmd.response, &resp, sizeof(resp), out_len);
	return ret;
}

/* ---- the table ----------------------------------------------------------------------------- */

/* Body sizes: a shorter body is EINVAL (CONNECT and ACCEPT: without ECE). */
static const size_t min_in[] = {
	[RDMA_USER_CM_CMD_CREATE_ID] = sizeof(struct rdma_ucm_create_id),
	[RDMA_USER_CM_CMD_DESTROY_ID] = sizeof(struct rdma_ucm_destroy_id),
	[RDMA_USER_CM_CMD_BIND_IP] = sizeof(struct rdma_ucm_bind_ip),
	[RDMA_USER_CM_CMD_RESOLVE_IP] = sizeof(struct rdma_ucm_resolve_ip),
	[RDMA_USER_CM_CMD_RESOLVE_ROUTE] = sizeof(struct rdma_ucm_resolve_route),
	[RDMA_USER_CM_CMD_QUERY_ROUTE] = sizeof(struct rdma_ucm_query),
	[RDMA_USER_CM_CMD_CONNECT] = offsetof(struct rdma_ucm_connect, ece),
	[RDMA_USER_CM_CMD_LISTEN] = sizeof(struct rdma_ucm_listen),
	[RDMA_USER_CM_CMD_ACCEPT] = offsetof(struct rdma_ucm_accept, ece),
	[RDMA_USER_CM_CMD_REJECT] = sizeof(struct rdma_ucm_reject),
	[RDMA_USER_CM_CMD_DISCONNECT] = sizeof(struct rdma_ucm_disconnect),
	[RDMA_USER_CM_CMD_INIT_QP_ATTR] = sizeof(struct rdma_ucm_init_qp_attr),
	[RDMA_USER_CM_CMD_SET_OPTION] = sizeof(struct rdma_ucm_set_option),
	[RDMA_USER_CM_CMD_NOTIFY] = sizeof(struct rdma_ucm_notify),
	[RDMA_USER_CM_CMD_MIGRATE_ID] = sizeof(struct rdma_ucm_migrate_id),
	[RDMA_USER_CM_CMD_QUERY] = sizeof(struct rdma_ucm_query),
	[RDMA_USER_CM_CMD_BIND] = sizeof(struct rdma_ucm_bind),
	[RDMA_USER_CM_CMD_RESOLVE_ADDR] = sizeof(struct rdma_ucm_resolve_addr),
	[RDMA_USER_CM_CMD_JOIN_IP_MCAST] = sizeof(struct rdma_ucm_join_ip_mcast),
	[RDMA_USER_CM_CMD_JOIN_MCAST] = sizeof(struct rdma_ucm_join_mcast),
	[RDMA_USER_CM_CMD_LEAVE_MCAST] = sizeof(struct rdma_ucm_destroy_id),
};

ssize_t ucma_run_cmd(struct ucma_file *file, pid_t tid, uint32_t cmd,
		     const uint8_t *in, size_t in_len, size_t out_len)
{
	struct reply *r;
	int ret;

	if (cmd >= sizeof(min_in) / sizeof(min_in[0]) || !min_in[cmd])
		return -ENOSYS;	/* GET_OPTION: not here */
	if (in_len < min_in[cmd])
		return -EINVAL;
	/* SET_OPTION reads the caller's memory, MIGRATE_ID a file: unlocked. */
	if (cmd == RDMA_USER_CM_CMD_SET_OPTION)
		return ucma_set_option(file, in);
	if (cmd == RDMA_USER_CM_CMD_MIGRATE_ID)
		return ucma_migrate(file, in, out_len);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	cm_lock();
	switch (cmd) {
	case RDMA_USER_CM_CMD_CREATE_ID:
		ret = create_id(file, in, out_len, r);
		break;
	case RDMA_USER_CM_CMD_DESTROY_ID:
		ret = destroy_id(file, in, out_len, r);
		break;
	case RDMA_USER_CM_CMD_BIND_IP: ret = bind_ip(file, tid, in); break;
	case RDMA_USER_CM_CMD_BIND: ret = bind_addr(file, tid, in); break;
	case RDMA_USER_CM_CMD_RESOLVE_IP: ret = resolve_ip(file, tid, in); break;
	case RDMA_USER_CM_CMD_RESOLVE_ADDR:
		ret = resolve_addr(file, tid, in);
		break;
	case RDMA_USER_CM_CMD_RESOLVE_ROUTE: ret = resolve_route(file, in); break;
	case RDMA_USER_CM_CMD_QUERY_ROUTE:
	case RDMA_USER_CM_CMD_QUERY:
		ret = query(file, cmd, in, out_len, r);
		break;
	case RDMA_USER_CM_CMD_CONNECT: ret = do_connect(file, in, in_len); break;
	case RDMA_USER_CM_CMD_LISTEN: ret = do_listen(file, tid, in); break;
	case RDMA_USER_CM_CMD_ACCEPT: ret = do_accept(file, in, in_len); break;
	case RDMA_USER_CM_CMD_REJECT: ret = do_reject(file, in); break;
	case RDMA_USER_CM_CMD_DISCONNECT:
	case RDMA_USER_CM_CMD_NOTIFY:
		ret = do_id_cmd(file, cmd, in);
		break;
	case RDMA_USER_CM_CMD_INIT_QP_ATTR:
		ret = init_qp_attr(file, in, out_len, r);
		break;
	case RDMA_USER_CM_CMD_JOIN_IP_MCAST:
	case RDMA_USER_CM_CMD_JOIN_MCAST:
		ret = join(file, cmd, in, out_len, r);
		break;
	case RDMA_USER_CM_CMD_LEAVE_MCAST: ret = leave(file, in, out_len, r); break;
	default: ret = -ENOSYS; break;
	}
	cm_unlock();
	if (!ret && r->len &&
	    vhca_peer_write(ucma_file_peer(file), r->to, r->buf, r->len)) {
		ret = -EFAULT;
		/* A new id nobody can name would only take a share: undo it. */
		if (cmd == RDMA_USER_CM_CMD_CREATE_ID) {
			struct cm_id *id;
			uint32_t h;

			memcpy(&h, r->buf, sizeof(h));
			cm_lock();
			if (!ucma_find(file, h, &id)) {
				cma_destroy(id);
				ucma_free_id(id);
			}
			cm_unlock();
		}
	}
	free(r);
	return ret;
}
