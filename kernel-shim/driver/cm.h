/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The RDMA connection manager in the driver half: what the kernel's
 * rdma_ucm (ucma.c), rdma_cm (cma.c) and ib_cm (cm.c) are, for librdmacm.
 * The parts, each a file:
 *
 *   ucma.c       the ucma ABI v4 (rdma/rdma_user_cm.h): commands, ids of
 *                one open file, events, GET_EVENT, MIGRATE_ID
 *   ucma_conn.c  the commands that move an id: bind, resolve, listen,
 *                connect, accept, reject, disconnect, queries, options
 *   ucma_mcast.c multicast joins: JOIN_IP_MCAST, JOIN_MCAST, LEAVE_MCAST
 *   cma.c        rdma_cm ids: states, port spaces, the connection life
 *                cycle on top of the IB CM, init_qp_attr
 *   cm_ib.c      the IB CM protocol (IBTA 12): REQ/MRA/REP/RTU/REJ/
 *                DREQ/DREP and SIDR, comm IDs, retries, timewait
 *   cm_mad.c     its MADs on the wire
 *   cm_addr.c    functions as the CM sees them, addresses, paths
 *   cm_agent.c   the CM's thread: MADs in, timers, device changes
 *   sysfs_ucma.c the FUSE file class/misc/rdma_cm/vhca_cmd
 *
 * The exchange is IB CM MADs between the two functions' QP1, through the
 * device (VHCA_DEVCMD_SEND_MAD/RECV_MAD, device/gsi.h), exactly what
 * would cross a link to another host's port, so it needs nothing new when
 * hosts are joined.
 *
 * Locking: one mutex (cm_lock()) over every id, connection, listener,
 * port table and event queue.  Below it only leaf locks and pf->lock
 * shared (devcmds).  Nothing under it touches a tenant's memory or
 * blocks on a tenant: responses to callers are written after
 * cm_unlock(), which also runs the work queued with cm_defer() (FUSE
 * replies, poll wake-ups) once the lock is dropped.
 */
#ifndef VHCA_DRIVER_CM_H
#define VHCA_DRIVER_CM_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <infiniband/ib.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_cm.h>

#include "cm_mad.h"

struct vhca_dev;
struct vhca_guests;
struct vhca_pf;
struct ucma_file;
struct cm_conn;

/* Service ID port spaces (IBTA annex A11; librdmacm's rdma_cma.h). */
#define CM_IB_IP_PS_MASK 0xFFFFFFFFFFFF0000ULL
#define CM_IB_IP_PS_TCP 0x0000000001060000ULL
#define CM_IB_IP_PS_UDP 0x0000000001110000ULL
#define CM_IB_IP_PS_IB 0x00000000013F0000ULL
#define CM_UDP_QKEY 0x01234567u
#define CM_IPOIB_QKEY 0x00000b1bu	/* the IPoIB broadcast group's */

/* Event numbers of the ABI (enum rdma_cm_event_type). */
enum cm_event_type {
	CM_EV_ADDR_RESOLVED, CM_EV_ADDR_ERROR, CM_EV_ROUTE_RESOLVED,
	CM_EV_ROUTE_ERROR, CM_EV_CONNECT_REQUEST, CM_EV_CONNECT_RESPONSE,
	CM_EV_CONNECT_ERROR, CM_EV_UNREACHABLE, CM_EV_REJECTED,
	CM_EV_ESTABLISHED, CM_EV_DISCONNECTED, CM_EV_DEVICE_REMOVAL,
	CM_EV_MULTICAST_JOIN, CM_EV_MULTICAST_ERROR, CM_EV_ADDR_CHANGE,
	CM_EV_TIMEWAIT_EXIT,
};

/*
 * Who an id belongs to, for port spaces and for matching requests: a
 * guest (its VF's index) is a host of its own, as a VM would be; every
 * process outside guests shares the host's.
 */
#define CM_DOMAIN_HOST (-1)

/* Limits a tenant cannot push the daemon past. */
#define CM_IDS_PER_DOMAIN 4096u
#define CM_IDS_MAX 65536u
#define CM_BACKLOG_MAX 1024

/* ---- the lock and deferred work ---------------------------------------------- */

struct cm_deferred {
	struct cm_deferred *next;
	void (*run)(struct cm_deferred *d);	/* without the lock */
};

void cm_lock(void);
/* Drops the lock, then runs (and forgets) what was deferred under it. */
void cm_unlock(void);
void cm_defer(struct cm_deferred *d);

/* The daemon's PF and guest bindings (set once by vhca_cm_start()). */
struct vhca_pf *cm_pf(void);
struct vhca_guests *cm_guests(void);
uint64_t cm_now_ns(void);
uint32_t cm_random32(void);

/* ---- timers (cm_agent.c): run by the CM thread with the lock held ------------- */

struct cm_timer {
	uint64_t deadline_ns;
	size_t heap_index;		/* SIZE_MAX: not armed */
	void (*fire)(struct cm_timer *t);
};

void cm_timer_init(struct cm_timer *t, void (*fire)(struct cm_timer *t));
void cm_timer_arm(struct cm_timer *t, uint64_t delay_ns);
void cm_timer_cancel(struct cm_timer *t);

/* ---- functions, addresses, paths (cm_addr.c) ---------------------------------- */

/* A path record (IBTA 15.2.5.16) as the CM keeps it: host byte order. */
struct cm_path {
	uint64_t subnet_prefix;
	uint64_t sgid_guid, dgid_guid;
	uint16_t slid, dlid, pkey;
	uint8_t mtu, rate, sl, packet_life_time, hop_limit, traffic_class;
	uint32_t flow_label;
};

/* A function as the CM knows it: referenced by ids and connections. */
struct cm_func {
	struct vhca_dev *_Atomic dev;	/* NULL once the function is gone */
	uint16_t lid;
	bool is_vf;
	unsigned int vf_index;
	uint64_t node_guid, port_guid;	/* when last looked at */
	unsigned int refs;		/* under cm_lock() */
	atomic_bool mads;		/* its QP1 has MADs for us */
	atomic_bool removed;		/* DEVICE_REMOVAL still to tell */
	atomic_bool gid_changed;	/* ADDR_CHANGE still to tell: GID */
	atomic_bool addr_changed;	/* ...: IP addresses */
	struct cm_func *next;
};

/* The function of @dev (created on first use; referenced), or NULL. */
struct cm_func *cm_func_of(struct vhca_dev *dev);
void cm_func_get(struct cm_func *f);
void cm_func_put(struct cm_func *f);
/* A device command on @f; -ENODEV once it is gone. */
int cm_func_cmd(struct cm_func *f, uint16_t op, const void *body, size_t len,
		void *out, size_t out_len);
/* Its P_Key table entry 0, port and node GUIDs (any may be NULL). */
int cm_func_identity(struct cm_func *f, uint16_t *pkey0, uint64_t *port_guid,
		     uint64_t *node_guid);
/* Which domain's listeners requests at @f reach (CM_DOMAIN_HOST...). */
int cm_func_domain(struct cm_func *f);
/* May a process of @domain (thread @tid) use @f? */
bool cm_func_usable(struct cm_func *f, int domain, pid_t tid);
/* The P_Key index of @pkey in @f's table, or -1. */
int cm_func_pkey_index(struct cm_func *f, uint16_t pkey);

/*
 * The function holding @addr (an IP, or the GID of an AF_IB address),
 * usable by @domain/@tid (@tid 0: whoever holds it): -EADDRNOTAVAIL if
 * there is none.
 */
int cm_addr_owner(const struct sockaddr *addr, int domain, pid_t tid,
		  struct cm_func **out);
/*
 * Routing, as an IPoIB host would: the function to reach @dst from, and
 * the source address it has there (in @src, port untouched): the one
 * holding @dst, else one with an address in @dst's subnet; for an any
 * address or AF_IB, the first usable function.  -ENETUNREACH if none.
 */
int cm_addr_route(const struct sockaddr *dst, int domain, pid_t tid,
		  struct cm_func **out, struct sockaddr_storage *src);
/* 127.0.0.0/8 or ::1: the host itself, whatever port (the kernel's
 * cma_loopback_addr()); it binds and resolves to the first usable port. */
/* An IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address? */
bool cm_addr_multicast(const struct sockaddr *a);
bool cm_addr_loopback(const struct sockaddr *a);
/* ARP and the SA: a path from @f to the holder of @dst (IP or AF_IB). */
int cm_addr_resolve(struct cm_func *f, const struct sockaddr *dst,
		    uint16_t pkey, struct cm_path *path);
/* The same to the GID of an existing path (the route query). */
int cm_path_query(struct cm_func *f, struct cm_path *path);

/* Sends a MAD out of @f's QP1 to @dlid with @pkey_index. */
int cm_func_send_mad(struct cm_func *f, uint16_t dlid, uint16_t pkey_index,
		     const uint8_t mad[CM_MAD_SIZE]);

/* Tells the CM thread @dev's QP1 has MADs (the device's sink, in-process). */
void cm_note_mads(struct vhca_dev *dev);
/* The hooks of a function going away, or its GID or addresses changing. */
void cm_note_removed(struct vhca_dev *dev);
void cm_note_changed(struct vhca_dev *dev, bool gid);
/* The CM thread takes what the notes above left (lock held). */
void cm_funcs_poll(void);

/* ---- sockaddrs (cma.c) --------------------------------------------------------- */

socklen_t cm_addr_size(const struct sockaddr *a);
bool cm_addr_any(const struct sockaddr *a);
uint16_t cm_addr_port(const struct sockaddr *a);	/* host order */
void cm_addr_set_port(struct sockaddr *a, uint16_t port);

#endif /* VHCA_DRIVER_CM_H */
