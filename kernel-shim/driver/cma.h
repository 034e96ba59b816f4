/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * rdma_cm ids (cma.c) and what the ucma file, the rdma_cm and the IB CM
 * share about them (cm.h lists the files).  Everything here is under
 * cm_lock().
 */
#ifndef VHCA_DRIVER_CMA_H
#define VHCA_DRIVER_CMA_H

#include <vhca/devcmd.h>

#include "cm.h"

/* rdma_cm id states (the kernel's enum rdma_cm_state, cma_priv.h). */
enum cma_state {
	CMA_IDLE,
	CMA_ADDR_QUERY,
	CMA_ADDR_RESOLVED,
	CMA_ROUTE_QUERY,
	CMA_ROUTE_RESOLVED,
	CMA_CONNECT,
	CMA_DISCONNECT,
	CMA_ADDR_BOUND,
	CMA_LISTEN,
	CMA_DEVICE_REMOVAL,
	CMA_DESTROYING,
};

/* An event waiting in a ucma file (the kernel's struct ucma_event). */
struct cm_event {
	struct cm_event *next;
	struct cm_id *id;		/* whose: events_reported counts it */
	struct cm_id *listen;		/* CONNECT_REQUEST: the listener */
	/* a multicast join's (ucma_mcast.c): it counts the event instead */
	const void *mc;
	uint32_t *mc_reported;
	struct rdma_ucm_event_resp resp;
};

/* A port of a port space, and the ids bound to it (cma_bind_port). */
struct cm_bind {
	int domain;
	uint16_t ps, port;
	struct cm_id *owners;
	struct cm_bind *next;
};

struct cm_id {
	/* the ucma context */
	uint32_t handle;		/* the ABI's id */
	uint64_t uid;
	struct ucma_file *file;
	bool published;			/* found by handle (ucma_get_ctx) */
	uint32_t events_reported;
	struct cm_id *file_next, **file_pprev;
	struct cm_id *hash_next;	/* the handle table (ucma.c) */
	/* the rdma_cm id */
	int domain;
	enum cma_state state;
	uint16_t ps;
	uint8_t qp_type;		/* IBV_QPT_RC, UC or UD */
	struct sockaddr_storage src, dst;
	struct cm_func *func;		/* the device it is bound to */
	uint16_t pkey;
	uint32_t num_paths;		/* 0 or 1 */
	struct cm_path path;
	bool reuseaddr, afonly, afonly_set;
	bool tos_set, timeout_set;
	uint8_t tos, timeout;
	struct cm_bind *bind;
	struct cm_id *bind_next;
	int backlog;			/* LISTEN: requests it may still queue */
	struct cm_id *listener;		/* a request not reported yet: whose */
	struct cm_conn *conn;		/* its IB CM connection */
	uint32_t seq_num;		/* our starting PSN (random) */
	uint32_t qp_num, qkey;
	bool srq;
};

/* The conn_param of the ABI, checked: what connect and accept take. */
struct cma_conn_param {
	const uint8_t *private_data;
	uint8_t private_data_len;
	uint8_t responder_resources, initiator_depth;
	uint8_t flow_control, retry_count, rnr_retry_count;
	uint8_t srq;
	uint32_t qp_num, qkey;
};

/* ---- cma.c: ids, for the ucma file ---------------------------------------------- */

/* A new id (IDLE) in @file; NULL with *err (-EINVAL, -ENOMEM, -EMFILE). */
struct cm_id *cma_create(struct ucma_file *file, uint16_t ps, uint8_t qp_type,
			 int domain, int *err);
/* Tears the id down (connections, listens, ports); the ucma part stays. */
void cma_destroy(struct cm_id *id);

int cma_bind(struct cm_id *id, const struct sockaddr *addr, pid_t tid);
int cma_resolve_addr(struct cm_id *id, const struct sockaddr *src,
		     const struct sockaddr *dst, pid_t tid);
int cma_resolve_route(struct cm_id *id);
int cma_set_ib_path(struct cm_id *id, const struct cm_path *path);
int cma_listen(struct cm_id *id, int backlog, pid_t tid);
int cma_connect(struct cm_id *id, const struct cma_conn_param *p);
int cma_accept(struct cm_id *id, const struct cma_conn_param *p);
int cma_reject(struct cm_id *id, const uint8_t *private_data, uint8_t len,
	       uint8_t reason);
int cma_disconnect(struct cm_id *id);
int cma_notify(struct cm_id *id, uint32_t event);
int cma_init_qp_attr(struct cm_id *id, uint32_t qp_state,
		     struct ib_uverbs_qp_attr *attr);
/*
 * Function @f went away (DEVICE_REMOVAL for @id if it is bound there) or
 * changed its GID or addresses (ADDR_CHANGE, cma_netdev_callback()).
 */
void cma_func_removed(struct cm_func *f, struct cm_id *id);
void cma_func_changed(struct cm_func *f, struct cm_id *id, bool gid_changed);
/* The ids bound to a port of a port space (listeners among them). */
struct cm_bind *cma_bind_of(int domain, uint16_t ps, uint16_t port);
/* Every id of every file, for the changes of a function. */
void ucma_for_each_id(void (*fn)(struct cm_id *id, void *arg), void *arg);
/* The service ID of an address of @id (IBTA annex A11). */
uint64_t cma_service_id(const struct cm_id *id, const struct sockaddr *a);

/* ---- what the IB CM tells the rdma_cm (cma.c) ------------------------------------- */

enum cm_ib_event_type {
	CMIB_REQ_ERROR,		/* REQ retries ran out */
	CMIB_REP_ERROR,		/* REP retries ran out */
	CMIB_REP_RECEIVED,
	CMIB_RTU_RECEIVED,
	CMIB_REJ_RECEIVED,
	CMIB_DREQ_RECEIVED,
	CMIB_DREP_RECEIVED,
	CMIB_DREQ_ERROR,
	CMIB_TIMEWAIT_EXIT,
	CMIB_SIDR_REP_RECEIVED,
	CMIB_SIDR_REQ_ERROR,
};

void cma_ib_event(struct cm_id *id, enum cm_ib_event_type type,
		  const struct cm_msg *msg);
/*
 * A REQ (or SIDR_REQ) at @f found no connection: does a listener take
 * it?  0 with @conn attached to a new id, or a REJ reason (SIDR: a
 * SIDR_REP status + 0x100) for the IB CM to answer with.
 */
int cma_ib_request(struct cm_func *f, struct cm_conn *conn,
		   const struct cm_msg *msg, const struct cm_path *path);

/* ---- ucma.c: events into files ------------------------------------------------------ */

/*
 * Queues an event of @id (CONNECT_REQUEST: of the new id, @listen its
 * listener) with @resp's param and status; the ABI's id and uid are
 * filled here.  Dropped, as ucma drops it, for an id whose user has not
 * set its uid (a request not accepted yet).
 */
void ucma_post(struct cm_id *id, struct cm_id *listen, uint32_t event,
	       int32_t status, const struct rdma_ucm_event_resp *param);
/* The id leaves its file's event queue (destroy, migrate). */
void ucma_drop_events(struct cm_id *id);
/*
 * An event of the multicast join @mc of @id: @param's uid and id (the
 * join's) stay, and reading it counts in *@reported, not the id's.
 */
void ucma_post_mc(struct cm_id *id, const void *mc, uint32_t *reported,
		  uint32_t event, const struct rdma_ucm_event_resp *param);
/* The events of join @mc still queued, dropped (LEAVE_MCAST). */
void ucma_drop_mc_events(struct cm_id *id, const void *mc);

/* ---- ucma_mcast.c: multicast joins ------------------------------------------------ */

/* JOIN_MCAST / JOIN_IP_MCAST of id @id_handle: 0 and *mc_handle, or -errno. */
int ucma_join(struct ucma_file *file, uint32_t id_handle, uint64_t uid,
	      const struct sockaddr *addr, uint16_t addr_size,
	      uint16_t join_flags, uint32_t *mc_handle);
/* LEAVE_MCAST: 0 and the join's events read, -ENOENT or -EINVAL. */
int ucma_leave(struct ucma_file *file, uint32_t mc_handle,
	       uint32_t *events_reported);
/* The id's joins, gone (its destroy). */
void ucma_forget_joins(struct cm_id *id);
/* The id's joins follow it to file @to (MIGRATE_ID). */
void ucma_move_joins(struct cm_id *id, struct ucma_file *to);

/* ---- cm_ib.c: the IB CM, for the rdma_cm ------------------------------------------- */

struct cm_req_args {
	uint64_t service_id;
	uint32_t qpn, starting_psn, qkey;
	uint8_t qp_type;
	uint8_t responder_resources, initiator_depth;
	uint8_t retry_count, rnr_retry_count, flow_control, srq;
	const uint8_t *private_data;	/* CM_REQ_PRIVATE bytes at most */
	unsigned int private_len;
};

struct cm_rep_args {
	uint32_t qpn, starting_psn;
	uint8_t responder_resources, initiator_depth;
	uint8_t rnr_retry_count, flow_control, srq;
	const uint8_t *private_data;
	unsigned int private_len;
};

/* A connection of @id on @f (IDLE), or NULL. */
struct cm_conn *cm_ib_create(struct cm_func *f, struct cm_id *id);
/* A connection the IB CM made for a request now belongs to @id. */
void cm_ib_attach(struct cm_conn *c, struct cm_id *id);
/* The owner lets go: REJ, DREQ or DREP as its state asks, then it goes. */
void cm_ib_release(struct cm_conn *c);
int cm_ib_send_req(struct cm_conn *c, const struct cm_path *path,
		   uint16_t pkey_index, const struct cm_req_args *a);
int cm_ib_send_rep(struct cm_conn *c, const struct cm_rep_args *a);
int cm_ib_send_rtu(struct cm_conn *c);
int cm_ib_send_rej(struct cm_conn *c, uint16_t reason, const uint8_t *data,
		   unsigned int len);
int cm_ib_send_dreq(struct cm_conn *c);
int cm_ib_send_drep(struct cm_conn *c);
/* The passive side delays its MRA (CMA_CM_MRA_SETTING): sent on a retry. */
void cm_ib_delay_mra(struct cm_conn *c);
int cm_ib_send_sidr_req(struct cm_conn *c, const struct cm_path *path,
			uint16_t pkey_index, uint64_t service_id,
			const uint8_t *data, unsigned int len);
int cm_ib_send_sidr_rep(struct cm_conn *c, uint8_t status, uint32_t qpn,
			uint32_t qkey, const uint8_t *data, unsigned int len);
/* ib_cm_init_qp_attr(): the attributes of the connection for @qp_state. */
int cm_ib_init_qp_attr(struct cm_conn *c, uint32_t qp_state,
		       struct ib_uverbs_qp_attr *attr);
/* ib_cm_notify(): the QP saw traffic (IB_EVENT_COMM_EST). */
int cm_ib_notify(struct cm_conn *c, uint32_t event);
/* A MAD for the IB CM arrived at @f. */
void cm_ib_recv(struct cm_func *f, const struct vhca_devcmd_mad *mad);
/* Is the connection past REQ/REP, i.e. may it disconnect? */
bool cm_ib_established(const struct cm_conn *c);
struct cm_func *cm_ib_func(const struct cm_conn *c);

#endif /* VHCA_DRIVER_CMA_H */
