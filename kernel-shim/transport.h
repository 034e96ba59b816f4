/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The transport: executes send WQEs as a requester, delivers the modelled
 * packets to the responder QP (a function call for local delivery), and
 * applies the IBTA/rxe rules for ACK, NAK, RNR, retry and errors.
 * Engine lock held throughout.
 */
#ifndef VHCA_TRANSPORT_H
#define VHCA_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

struct vhca_qp;
struct vhca_ucontext;

/*
 * Executes up to @budget send WQEs of @qp (and flushes it when in ERR).
 * Returns true if it should run again (more work, budget exhausted).
 */
bool vhca_transport_execute(struct vhca_qp *qp, unsigned int budget);

/* Flushes every outstanding WQE of an ERR QP: IBV_WC_WR_FLUSH_ERR. */
void vhca_transport_flush(struct vhca_qp *qp);

/* Timers: RNR and retry waits.  fire: makes due QPs runnable. */
bool vhca_transport_fire_timers(uint64_t now_ns);
uint64_t vhca_transport_next_timer(void);	/* 0: none */
void vhca_transport_cancel_timer(struct vhca_qp *qp);

/* An SRQ doorbell rang (handle) or may have (VHCA_NO_HANDLE). */
void vhca_transport_srqs_changed(struct vhca_ucontext *uctx,
				 uint32_t handle);

#endif /* VHCA_TRANSPORT_H */
