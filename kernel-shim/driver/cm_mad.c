// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * CM MADs on the wire (cm_mad.h).  Every offset below is the byte of the
 * message body (after the 24-byte MAD header) and the first bit counted
 * from that byte's MSB, as IBTA vol. 1 tables 106-120 give them.
 */
#include <string.h>

#include "cm_mad.h"

/* ---- bit fields ----------------------------------------------------------------- */

static void put(uint8_t *mad, unsigned int byte, unsigned int bit,
		unsigned int width, uint64_t value)
{
	unsigned int pos = (CM_MAD_HDR_SIZE + byte) * 8 + bit;

	for (unsigned int i = 0; i < width; i++, pos++) {
		uint8_t mask = (uint8_t)(0x80u >> (pos % 8));

		if ((value >> (width - 1 - i)) & 1)
			mad[pos / 8] |= mask;
		else
			mad[pos / 8] &= (uint8_t)~mask;
	}
}

static uint64_t get(const uint8_t *mad, unsigned int byte, unsigned int bit,
		    unsigned int width)
{
	unsigned int pos = (CM_MAD_HDR_SIZE + byte) * 8 + bit;
	uint64_t value = 0;

	for (unsigned int i = 0; i < width; i++, pos++)
		value = value << 1 | ((mad[pos / 8] >> (7 - pos % 8)) & 1);
	return value;
}

static void put_mem(uint8_t *mad, unsigned int byte, const void *src,
		    unsigned int len)
{
	memcpy(mad + CM_MAD_HDR_SIZE + byte, src, len);
}

static void get_mem(const uint8_t *mad, unsigned int byte, void *dst,
		    unsigned int len)
{
	memcpy(dst, mad + CM_MAD_HDR_SIZE + byte, len);
}

/* The MAD header (IBTA 13.4.2): whole bytes at absolute offsets. */
static void put_hdr(uint8_t *mad, uint16_t attr, uint64_t tid)
{
	mad[0] = 1;			/* BaseVersion */
	mad[1] = CM_MGMT_CLASS;
	mad[2] = CM_CLASS_VERSION;
	mad[3] = CM_METHOD_SEND;
	for (int i = 0; i < 8; i++)
		mad[8 + i] = (uint8_t)(tid >> (56 - 8 * i));
	mad[16] = (uint8_t)(attr >> 8);
	mad[17] = (uint8_t)attr;
}

unsigned int cm_private_len(uint16_t attr)
{
	switch (attr) {
	case CM_ATTR_REQ: return CM_REQ_PRIVATE;
	case CM_ATTR_MRA: return CM_MRA_PRIVATE;
	case CM_ATTR_REJ: return CM_REJ_PRIVATE;
	case CM_ATTR_REP: return CM_REP_PRIVATE;
	case CM_ATTR_RTU: return CM_RTU_PRIVATE;
	case CM_ATTR_DREQ: return CM_DREQ_PRIVATE;
	case CM_ATTR_DREP: return CM_DREP_PRIVATE;
	case CM_ATTR_SIDR_REQ: return CM_SIDR_REQ_PRIVATE;
	case CM_ATTR_SIDR_REP: return CM_SIDR_REP_PRIVATE;
	default: return 0;
	}
}

/* ---- REQ (table 106) ----------------------------------------------------------- */

static void req_code(uint8_t *m, struct cm_req *r, bool out)
{
#define F(byte, bit, width, field)                                             \
	do {                                                                   \
		if (out)                                                       \
			put(m, byte, bit, width, r->field);                    \
		else                                                           \
			r->field = (__typeof__(r->field))get(m, byte, bit,     \
							     width);           \
	} while (0)
	F(0, 0, 32, local_comm_id);
	F(8, 0, 64, service_id);
	F(16, 0, 64, local_ca_guid);
	F(28, 0, 32, local_qkey);
	F(32, 0, 24, local_qpn);
	F(35, 0, 8, responder_resources);
	F(39, 0, 8, initiator_depth);
	F(43, 0, 5, remote_cm_response_timeout);
	F(43, 5, 2, transport);
	F(43, 7, 1, flow_control);
	F(44, 0, 24, starting_psn);
	F(47, 0, 5, local_cm_response_timeout);
	F(47, 5, 3, retry_count);
	F(48, 0, 16, pkey);
	F(50, 0, 4, mtu);
	F(50, 5, 3, rnr_retry_count);
	F(51, 0, 4, max_cm_retries);
	F(51, 4, 1, srq);
	F(52, 0, 16, path.local_lid);
	F(54, 0, 16, path.remote_lid);
	F(88, 0, 20, path.flow_label);
	F(91, 2, 6, path.rate);
	F(92, 0, 8, path.traffic_class);
	F(93, 0, 8, path.hop_limit);
	F(94, 0, 4, path.sl);
	F(94, 4, 1, path.subnet_local);
	F(95, 0, 5, path.local_ack_timeout);
#undef F
	if (out) {
		put_mem(m, 56, r->path.local_gid, 16);
		put_mem(m, 72, r->path.remote_gid, 16);
		put_mem(m, 140, r->private_data, CM_REQ_PRIVATE);
	} else {
		get_mem(m, 56, r->path.local_gid, 16);
		get_mem(m, 72, r->path.remote_gid, 16);
		get_mem(m, 140, r->private_data, CM_REQ_PRIVATE);
	}
}

/* ---- REP (table 110), REJ (108), MRA (107) ------------------------------------- */

static void rep_code(uint8_t *m, struct cm_rep *r, bool out)
{
#define F(byte, bit, width, field)                                             \
	do {                                                                   \
		if (out)                                                       \
			put(m, byte, bit, width, r->field);                    \
		else                                                           \
			r->field = (__typeof__(r->field))get(m, byte, bit,     \
							     width);           \
	} while (0)
	F(0, 0, 32, local_comm_id);
	F(4, 0, 32, remote_comm_id);
	F(8, 0, 32, local_qkey);
	F(12, 0, 24, local_qpn);
	F(20, 0, 24, starting_psn);
	F(24, 0, 8, responder_resources);
	F(25, 0, 8, initiator_depth);
	F(26, 0, 5, target_ack_delay);
	F(26, 5, 2, failover_accepted);
	F(26, 7, 1, flow_control);
	F(27, 0, 3, rnr_retry_count);
	F(27, 3, 1, srq);
	F(28, 0, 64, local_ca_guid);
#undef F
	if (out)
		put_mem(m, 36, r->private_data, CM_REP_PRIVATE);
	else
		get_mem(m, 36, r->private_data, CM_REP_PRIVATE);
}

static void rej_code(uint8_t *m, struct cm_rej *r, bool out)
{
	if (out) {
		put(m, 0, 0, 32, r->local_comm_id);
		put(m, 4, 0, 32, r->remote_comm_id);
		put(m, 8, 0, 2, r->message_rejected);
		put(m, 9, 0, 7, r->ari_length);
		put(m, 10, 0, 16, r->reason);
		put_mem(m, 12, r->ari, CM_ARI_MAX);
		put_mem(m, 84, r->private_data, CM_REJ_PRIVATE);
		return;
	}
	r->local_comm_id = (uint32_t)get(m, 0, 0, 32);
	r->remote_comm_id = (uint32_t)get(m, 4, 0, 32);
	r->message_rejected = (uint8_t)get(m, 8, 0, 2);
	r->ari_length = (uint8_t)get(m, 9, 0, 7);
	r->reason = (uint16_t)get(m, 10, 0, 16);
	get_mem(m, 12, r->ari, CM_ARI_MAX);
	get_mem(m, 84, r->private_data, CM_REJ_PRIVATE);
	if (r->ari_length > CM_ARI_MAX)
		r->ari_length = CM_ARI_MAX;
}

static void mra_code(uint8_t *m, struct cm_mra *r, bool out)
{
	if (out) {
		put(m, 0, 0, 32, r->local_comm_id);
		put(m, 4, 0, 32, r->remote_comm_id);
		put(m, 8, 0, 2, r->message_mraed);
		put(m, 9, 0, 5, r->service_timeout);
		put_mem(m, 10, r->private_data, CM_MRA_PRIVATE);
		return;
	}
	r->local_comm_id = (uint32_t)get(m, 0, 0, 32);
	r->remote_comm_id = (uint32_t)get(m, 4, 0, 32);
	r->message_mraed = (uint8_t)get(m, 8, 0, 2);
	r->service_timeout = (uint8_t)get(m, 9, 0, 5);
	get_mem(m, 10, r->private_data, CM_MRA_PRIVATE);
}

/* RTU (111), DREQ (112), DREP (113): DREQ has the QPN at 8, data at 12. */
static void simple_code(uint8_t *m, uint16_t attr, struct cm_simple *r,
			bool out)
{
	unsigned int data = attr == CM_ATTR_DREQ ? 12 : 8;
	unsigned int len = cm_private_len(attr);

	if (out) {
		put(m, 0, 0, 32, r->local_comm_id);
		put(m, 4, 0, 32, r->remote_comm_id);
		if (attr == CM_ATTR_DREQ)
			put(m, 8, 0, 24, r->remote_qpn);
		put_mem(m, data, r->private_data, len);
		return;
	}
	r->local_comm_id = (uint32_t)get(m, 0, 0, 32);
	r->remote_comm_id = (uint32_t)get(m, 4, 0, 32);
	r->remote_qpn = attr == CM_ATTR_DREQ ? (uint32_t)get(m, 8, 0, 24) : 0;
	memset(r->private_data, 0, sizeof(r->private_data));
	get_mem(m, data, r->private_data, len);
}

/* ---- SIDR (tables 119, 120) ---------------------------------------------------- */

static void sidr_req_code(uint8_t *m, struct cm_sidr_req *r, bool out)
{
	if (out) {
		put(m, 0, 0, 32, r->request_id);
		put(m, 4, 0, 16, r->pkey);
		put(m, 8, 0, 64, r->service_id);
		put_mem(m, 16, r->private_data, CM_SIDR_REQ_PRIVATE);
		return;
	}
	r->request_id = (uint32_t)get(m, 0, 0, 32);
	r->pkey = (uint16_t)get(m, 4, 0, 16);
	r->service_id = get(m, 8, 0, 64);
	get_mem(m, 16, r->private_data, CM_SIDR_REQ_PRIVATE);
}

static void sidr_rep_code(uint8_t *m, struct cm_sidr_rep *r, bool out)
{
	if (out) {
		put(m, 0, 0, 32, r->request_id);
		put(m, 4, 0, 8, r->status);
		put(m, 5, 0, 8, r->ari_length);
		put(m, 8, 0, 24, r->qpn);
		put(m, 12, 0, 64, r->service_id);
		put(m, 20, 0, 32, r->qkey);
		put_mem(m, 96, r->private_data, CM_SIDR_REP_PRIVATE);
		return;
	}
	r->request_id = (uint32_t)get(m, 0, 0, 32);
	r->status = (uint8_t)get(m, 4, 0, 8);
	r->ari_length = (uint8_t)get(m, 5, 0, 8);
	r->qpn = (uint32_t)get(m, 8, 0, 24);
	r->service_id = get(m, 12, 0, 64);
	r->qkey = (uint32_t)get(m, 20, 0, 32);
	get_mem(m, 96, r->private_data, CM_SIDR_REP_PRIVATE);
}

/* ---- messages ------------------------------------------------------------------- */

static bool code(uint8_t *mad, struct cm_msg *msg, bool out)
{
	switch (msg->attr) {
	case CM_ATTR_REQ: req_code(mad, &msg->req, out); return true;
	case CM_ATTR_REP: rep_code(mad, &msg->rep, out); return true;
	case CM_ATTR_REJ: rej_code(mad, &msg->rej, out); return true;
	case CM_ATTR_MRA: mra_code(mad, &msg->mra, out); return true;
	case CM_ATTR_RTU:
	case CM_ATTR_DREQ:
	case CM_ATTR_DREP:
		simple_code(mad, msg->attr, &msg->simple, out);
		return true;
	case CM_ATTR_SIDR_REQ: sidr_req_code(mad, &msg->sidr_req, out); return true;
	case CM_ATTR_SIDR_REP: sidr_rep_code(mad, &msg->sidr_rep, out); return true;
	default: return false;
	}
}

void cm_mad_encode(const struct cm_msg *msg, uint8_t mad[CM_MAD_SIZE])
{
	memset(mad, 0, CM_MAD_SIZE);
	put_hdr(mad, msg->attr, msg->tid);
	code(mad, (struct cm_msg *)msg, true);
}

bool cm_mad_decode(const uint8_t mad[CM_MAD_SIZE], struct cm_msg *msg)
{
	memset(msg, 0, sizeof(*msg));
	/* A CM Send of class version 2 (ib_cm takes no other). */
	if (mad[0] != 1 || mad[1] != CM_MGMT_CLASS ||
	    mad[2] != CM_CLASS_VERSION || mad[3] != CM_METHOD_SEND)
		return false;
	msg->attr = (uint16_t)(mad[16] << 8 | mad[17]);
	for (int i = 0; i < 8; i++)
		msg->tid = msg->tid << 8 | mad[8 + i];
	return code((uint8_t *)mad, msg, false);
}
