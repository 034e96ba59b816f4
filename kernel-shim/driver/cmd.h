/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The uverbs command file.  Every open of
 * class/infiniband_verbs/uverbsN/vhca_cmd is one user context, like an open
 * of /dev/infiniband/uverbsN on a real kernel: it lives until the last
 * reference to the open file is closed (which the kernel does for a process
 * that dies), and then every resource it holds is freed.
 */
#ifndef VHCA_CMD_H
#define VHCA_CMD_H

#include <stddef.h>
#include <sys/types.h>

struct vhca_dev;
struct vhca_ucontext;

/* FUSE open: returns a new, not yet initialised context, or NULL (errno). */
struct vhca_ucontext *vhca_cmd_open(struct vhca_dev *dev);

/*
 * FUSE write: executes one command written by thread caller_tid.  Returns
 * len on success or a negative errno; the caller's memory (the response
 * pointer) has been written before it returns.  Thread safe.
 */
ssize_t vhca_cmd_write(struct vhca_ucontext *uctx, pid_t caller_tid,
		       const void *buf, size_t len);

/*
 * How a command is admitted (cmdq.h).  IMMEDIATE: the provider's channel
 * refill, which reads no guest memory and must never wait behind the
 * context's other commands; FUNCTION: waits its function's turn but may
 * run beside its context's others (CREATE_COMP_CHANNEL, which may wait
 * for that refill); CONTEXT: one at a time per context.
 */
enum vhca_cmd_class {
	VHCA_CMD_CLASS_CONTEXT,
	VHCA_CMD_CLASS_FUNCTION,
	VHCA_CMD_CLASS_IMMEDIATE,
};

enum vhca_cmd_class vhca_cmd_classify(const void *buf, size_t len);

/* FUSE release: frees the context and everything it holds. */
void vhca_cmd_release(struct vhca_ucontext *uctx);

#endif /* VHCA_CMD_H */
