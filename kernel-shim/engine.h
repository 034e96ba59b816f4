/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The engine: the silicon that executes WQEs, modelled on io_uring's
 * SQPOLL.  One thread pops (handle, kind) entries from every data-path
 * context's doorbell FIFO (struct vhca_ctx_page), keeps a run list of the
 * QPs that have work, executes them, and spins while work flows.  When
 * idle (policy adaptive: up to 50 us while a CPU is spare; event: at
 * once; poll: never) it sets needs_wakeup in every context page,
 * re-checks the FIFOs after a full barrier, and sleeps in epoll on every
 * context's wake eventfd, every owner's pidfd and an internal eventfd,
 * until the next timer (RNR and retry timers).  Work is O(active queues):
 * all QPs of a context are scanned only after its FIFO overflowed.
 *
 * Locking: one engine lock.  The engine holds it while it processes a
 * batch; every command of a data-path context runs under it too (cmd.c),
 * so QP/CQ/MR state and handle tables change only between batches.  An MR
 * deregistration therefore waits for a transfer using the MR to finish.
 * Lock order: uctx->lock, then the engine lock, then pf->lock / MR keys.
 */
#ifndef VHCA_ENGINE_H
#define VHCA_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

struct vhca_qp;
struct vhca_ucontext;

enum vhca_engine_policy {
	VHCA_ENGINE_ADAPTIVE = 0,
	VHCA_ENGINE_POLL,
	VHCA_ENGINE_EVENT,
};

/* Spin this long without work before going to sleep (adaptive). */
#define VHCA_ENGINE_SPIN_NS 50000ULL
/* SQ WQEs one QP may execute per visit, for fairness. */
#define VHCA_ENGINE_QP_BUDGET 64

void vhca_engine_lock(void);
void vhca_engine_unlock(void);

/* Parses "poll", "adaptive", "event"; -EINVAL otherwise. */
int vhca_engine_parse_policy(const char *name, enum vhca_engine_policy *p);

/* Starts the thread (vhcad); @rt_priority > 0 asks for SCHED_FIFO. */
int vhca_engine_start(enum vhca_engine_policy policy, int rt_priority);
void vhca_engine_stop(void);

/* A data-path context appears / goes away; engine lock held. */
int vhca_engine_add_context(struct vhca_ucontext *uctx);
void vhca_engine_remove_context(struct vhca_ucontext *uctx);

/* Puts @qp on the run list / takes it off; engine lock held. */
void vhca_engine_schedule(struct vhca_qp *qp);
void vhca_engine_unschedule(struct vhca_qp *qp);

/*
 * One batch: FIFOs, due timers, the run list.  Takes the engine lock.
 * Returns true if it found any work.  Tests drive the engine with it.
 */
bool vhca_engine_poll_once(void);

uint64_t vhca_now_ns(void);

#endif /* VHCA_ENGINE_H */
