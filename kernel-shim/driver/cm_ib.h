/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The IB CM's connections, shared by its two files: cm_ib.c (connections,
 * sending, retries, timewait) and cm_ib_recv.c (what arrives, and the QP
 * attributes a connection gives).  Under cm_lock().
 */
#ifndef VHCA_DRIVER_CM_IB_H
#define VHCA_DRIVER_CM_IB_H

#include "cma.h"

enum cm_state {
	CMS_IDLE,
	CMS_REQ_SENT,
	CMS_MRA_REQ_RCVD,
	CMS_REQ_RCVD,
	CMS_MRA_REQ_SENT,
	CMS_REP_SENT,
	CMS_MRA_REP_RCVD,
	CMS_REP_RCVD,
	CMS_ESTABLISHED,
	CMS_DREQ_SENT,
	CMS_DREQ_RCVD,
	CMS_TIMEWAIT,
	CMS_SIDR_REQ_SENT,
	CMS_SIDR_REQ_RCVD,
};

/* The rdma_cm's values (cma.c: CMA_CM_RESPONSE_TIMEOUT, _MAX_CM_RETRIES). */
#define CM_RESPONSE_TIMEOUT 20
#define CM_MAX_RETRIES 15
#define CM_BUCKETS 1024u

struct cm_conn {
	struct cm_func *func;		/* referenced */
	struct cm_id *id;		/* the owner, NULL once released */
	enum cm_state state;
	uint32_t local_id, remote_id;
	uint64_t remote_ca_guid;
	uint16_t remote_lid, pkey_index;
	struct cm_path path;		/* the primary path, seen from here */
	uint32_t local_qpn, remote_qpn, sq_psn, rq_psn;
	uint8_t qp_type, mtu, ack_timeout;
	uint8_t retry_count, rnr_retry_count;
	uint8_t responder_resources, initiator_depth;
	bool flow_control, srq, mra_delayed;
	uint64_t service_id, tid;
	/* the message retransmitted until answered (REQ, REP, DREQ, SIDR) */
	uint8_t mad[CM_MAD_SIZE];
	bool has_mad;
	unsigned int retries_left;
	uint64_t timeout_ns;
	struct cm_timer timer;
	struct cm_conn *local_next, *remote_next;
	bool in_remote;
};

/* 4.096 us * 2^t (IBTA 12.7.34), in ns; t is a 5-bit field. */
static inline uint64_t cm_time_ns(unsigned int t)
{
	return 4096ull << (t > 31 ? 31 : t);
}

struct cm_conn *cm_conn_by_local(uint32_t local_id);
struct cm_conn *cm_conn_by_remote(uint32_t remote_id, uint64_t ca_guid);
void cm_conn_hash_remote(struct cm_conn *c);
void cm_conn_free(struct cm_conn *c);
/* Sends @msg on @c; @retried keeps it for retransmission. */
int cm_conn_send(struct cm_conn *c, struct cm_msg *msg, bool retried);
void cm_conn_stop_retries(struct cm_conn *c);
void cm_conn_timewait(struct cm_conn *c);
void cm_conn_send_mra(struct cm_conn *c, uint8_t which);
/* An event for the owner; a connection nobody owns goes when idle. */
void cm_conn_tell(struct cm_conn *c, enum cm_ib_event_type type,
		  const struct cm_msg *msg);
/* A message without a connection (the REJ of an unknown REQ...). */
void cm_send_stateless(struct cm_func *f, const struct vhca_devcmd_mad *in,
		       struct cm_msg *msg);

#endif /* VHCA_DRIVER_CM_IB_H */
