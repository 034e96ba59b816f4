/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Connection management MADs on the wire (IBTA vol. 1, chapter 12.6,
 * tables 106-120): the 24-byte MAD header (13.4.2) and the messages the
 * IB CM exchanges between two ports' QP1 (device/gsi.h).  Fields sit
 * where the spec puts them: big-endian, each starting at a byte and a
 * bit counted from that byte's most significant bit.  Messages arrive
 * from another tenant's driver: cm_mad_decode() takes any 256 bytes and
 * says only whether they are a CM message it knows, never trusting a
 * length or an enumeration it did not check.
 */
#ifndef VHCA_DRIVER_CM_MAD_H
#define VHCA_DRIVER_CM_MAD_H

#include <stdbool.h>
#include <stdint.h>

#define CM_MAD_SIZE 256
#define CM_MAD_HDR_SIZE 24
#define CM_MGMT_CLASS 0x07
#define CM_CLASS_VERSION 2
#define CM_METHOD_SEND 0x03

/* Attribute IDs (IBTA table 104). */
enum cm_attr {
	CM_ATTR_REQ = 0x0010,
	CM_ATTR_MRA = 0x0011,
	CM_ATTR_REJ = 0x0012,
	CM_ATTR_REP = 0x0013,
	CM_ATTR_RTU = 0x0014,
	CM_ATTR_DREQ = 0x0015,
	CM_ATTR_DREP = 0x0016,
	CM_ATTR_SIDR_REQ = 0x0017,
	CM_ATTR_SIDR_REP = 0x0018,
};

/* Private data each message carries (IBTA 12.6). */
#define CM_REQ_PRIVATE 92
#define CM_MRA_PRIVATE 222
#define CM_REJ_PRIVATE 148
#define CM_REP_PRIVATE 196
#define CM_RTU_PRIVATE 224
#define CM_DREQ_PRIVATE 220
#define CM_DREP_PRIVATE 224
#define CM_SIDR_REQ_PRIVATE 216
#define CM_SIDR_REP_PRIVATE 136
#define CM_ARI_MAX 72

/* REQ "transport service type" (IBTA 12.6.5). */
enum cm_transport { CM_TRANSPORT_RC = 0, CM_TRANSPORT_UC = 1 };

/* What a REJ or MRA refers to (IBTA 12.6.7, 12.6.6). */
enum cm_msg_ref { CM_REF_REQ = 0, CM_REF_REP = 1, CM_REF_OTHER = 2 };

/* Reject reasons used here (IBTA table 112). */
enum cm_rej_reason {
	CM_REJ_NO_QP = 1,
	CM_REJ_NO_RESOURCES = 3,
	CM_REJ_TIMEOUT = 4,
	CM_REJ_UNSUPPORTED = 5,
	CM_REJ_INVALID_COMM_ID = 6,
	CM_REJ_INVALID_SERVICE_ID = 8,
	CM_REJ_INVALID_TRANSPORT_TYPE = 9,
	CM_REJ_STALE_CONN = 10,
	CM_REJ_INVALID_MTU = 26,
	CM_REJ_CONSUMER_DEFINED = 28,
	CM_REJ_INVALID_CLASS_VERSION = 31,
	CM_REJ_VENDOR_OPTION_NOT_SUPPORTED = 35,
};

/* SIDR_REP status (IBTA table 120). */
enum cm_sidr_status { CM_SIDR_SUCCESS = 0, CM_SIDR_UNSUPPORTED = 1,
		      CM_SIDR_REJECT = 2, CM_SIDR_NO_QP = 3 };

/* A path as the REQ carries it (the primary one only). */
struct cm_req_path {
	uint16_t local_lid, remote_lid;
	uint8_t local_gid[16], remote_gid[16];
	uint32_t flow_label;
	uint8_t rate, traffic_class, hop_limit, sl;
	bool subnet_local;
	uint8_t local_ack_timeout;
};

struct cm_req {
	uint32_t local_comm_id;
	uint64_t service_id;
	uint64_t local_ca_guid;
	uint32_t local_qkey, local_qpn;
	uint8_t responder_resources, initiator_depth;
	uint8_t remote_cm_response_timeout, transport;
	bool flow_control;
	uint32_t starting_psn;
	uint8_t local_cm_response_timeout, retry_count;
	uint16_t pkey;
	uint8_t mtu, rnr_retry_count, max_cm_retries;
	bool srq;
	struct cm_req_path path;
	uint8_t private_data[CM_REQ_PRIVATE];
};

struct cm_rep {
	uint32_t local_comm_id, remote_comm_id;
	uint32_t local_qkey, local_qpn, starting_psn;
	uint8_t responder_resources, initiator_depth, target_ack_delay;
	uint8_t failover_accepted;
	bool flow_control;
	uint8_t rnr_retry_count;
	bool srq;
	uint64_t local_ca_guid;
	uint8_t private_data[CM_REP_PRIVATE];
};

struct cm_rej {
	uint32_t local_comm_id, remote_comm_id;
	uint8_t message_rejected;	/* enum cm_msg_ref */
	uint8_t ari_length;
	uint16_t reason;
	uint8_t ari[CM_ARI_MAX];
	uint8_t private_data[CM_REJ_PRIVATE];
};

struct cm_mra {
	uint32_t local_comm_id, remote_comm_id;
	uint8_t message_mraed;		/* enum cm_msg_ref */
	uint8_t service_timeout;
	uint8_t private_data[CM_MRA_PRIVATE];
};

/* RTU, DREP and DREQ: the comm IDs, DREQ's remote QPN, private data. */
struct cm_simple {
	uint32_t local_comm_id, remote_comm_id;
	uint32_t remote_qpn;		/* DREQ only */
	uint8_t private_data[CM_RTU_PRIVATE];	/* the largest */
};

struct cm_sidr_req {
	uint32_t request_id;
	uint16_t pkey;
	uint64_t service_id;
	uint8_t private_data[CM_SIDR_REQ_PRIVATE];
};

struct cm_sidr_rep {
	uint32_t request_id;
	uint8_t status, ari_length;
	uint32_t qpn;
	uint64_t service_id;
	uint32_t qkey;
	uint8_t private_data[CM_SIDR_REP_PRIVATE];
};

/* One decoded message. */
struct cm_msg {
	uint16_t attr;			/* enum cm_attr */
	uint64_t tid;
	union {
		struct cm_req req;
		struct cm_rep rep;
		struct cm_rej rej;
		struct cm_mra mra;
		struct cm_simple simple;	/* RTU, DREQ, DREP */
		struct cm_sidr_req sidr_req;
		struct cm_sidr_rep sidr_rep;
	};
};

/* Builds the MAD of @msg (its attr says which) into @mad. */
void cm_mad_encode(const struct cm_msg *msg, uint8_t mad[CM_MAD_SIZE]);

/*
 * Reads a CM message out of 256 received bytes.  false for anything
 * that is not a CM Send of a known attribute (dropped, as ib_cm drops
 * it); true leaves every field in range of its width, nothing more:
 * the CM checks what the values mean.
 */
bool cm_mad_decode(const uint8_t mad[CM_MAD_SIZE], struct cm_msg *msg);

/* Private data of each attribute (0 for none known). */
unsigned int cm_private_len(uint16_t attr);

#endif /* VHCA_DRIVER_CM_MAD_H */
