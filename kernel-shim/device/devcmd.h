/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The device's command processor (include/vhca/devcmd.h): every command
 * the driver half sends a function, from vhcad's own driver (in-process)
 * or from a VM's driver through the VF's mailbox (vf_port.c), is checked
 * and executed here, the same code for both.
 *
 * A port is one driver's view of one function: the device contexts that
 * driver opened (ids it names them by), where their events go, and what
 * its commands may name: vhcad's file descriptors (in-process only) or
 * guest-physical pages of its VM (a VM's port only).
 */
#ifndef VHCA_DEVICE_DEVCMD_H
#define VHCA_DEVICE_DEVCMD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vhca/devcmd.h>

#include "dctx.h"
#include "dma.h"
#include "pf.h"

struct vhca_vm;

struct vhca_devcmd_port {
	struct vhca_dev *fn;
	bool in_process;		/* commands may name vhcad's fds */
	struct vhca_vm *vm;		/* MEM_PAGES refer to its RAM */
	const struct vhca_event_sink *sink;	/* for every context */
	void *sink_arg;			/* dctx->sink_arg */
	int vm_wake_fd;			/* a VM's doorbell: contexts get a dup */
	pthread_mutex_t lock;		/* the context table */
	struct vhca_dctx **contexts;	/* id - 1 */
	uint32_t num_contexts;
};

/*
 * What an in-process OPEN_CONTEXT brings besides its body: the owner's
 * address space (referenced by the context) and its pidfd (borrowed: the
 * driver keeps it open until CLOSE_CONTEXT).
 */
struct vhca_devcmd_local {
	struct vhca_dma_space *space;
	int owner_pidfd;
};

void vhca_devcmd_port_init(struct vhca_devcmd_port *port,
			   struct vhca_dev *fn, bool in_process,
			   struct vhca_vm *vm,
			   const struct vhca_event_sink *sink, void *sink_arg);
/* Closes every context still open (a VM that went away). */
void vhca_devcmd_port_fini(struct vhca_devcmd_port *port);

/*
 * Runs the command in @in (@in_len bytes: header, body, MEM_PAGES list
 * addresses) and writes the status and the answer's body to @out
 * (@out_cap bytes, at least a status).  Returns the bytes written.
 * Nothing the command names is trusted: a malformed command gets
 * -EINVAL (or the errno of its check) and changes nothing.
 */
size_t vhca_devcmd_exec(struct vhca_devcmd_port *port, const void *in,
			size_t in_len, const struct vhca_devcmd_local *local,
			void *out, size_t out_cap);

/* The device context @id of @port, or NULL (for tests and vf_port.c). */
struct vhca_dctx *vhca_devcmd_context(struct vhca_devcmd_port *port,
				      uint32_t id);

#endif /* VHCA_DEVICE_DEVCMD_H */
