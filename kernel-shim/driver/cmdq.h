/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Command admission, per function (PF or VF).
 *
 * A FUSE worker never waits on a tenant.  At most VHCA_CMDQ_RUNNING
 * commands of one function execute at once, and commands of one context
 * one at a time; any other waits in its function's queue, its FUSE
 * request unanswered, while the worker goes back to serve everybody else.
 * Whoever finishes an execution starts the next command the function may
 * run.  So a tenant whose commands stall (a response buffer in a
 * userfaultfd range, a context waiting for its stalled engine turn, a
 * completion channel waiting for its refill) ties up at most
 * VHCA_CMDQ_RUNNING daemon threads, and the other functions' commands
 * and every sysfs read keep going (security findings 3 and 5).
 */
#ifndef VHCA_DRIVER_CMDQ_H
#define VHCA_DRIVER_CMDQ_H

#include <stdbool.h>

#define VHCA_CMDQ_RUNNING 4
/* Beyond this many waiting commands a function's next is -EAGAIN. */
#define VHCA_CMDQ_MAX_WAITING 4096

struct vhca_dev;

struct vhca_cmdq_item {
	struct vhca_cmdq_item *next;
	/*
	 * The context's "one at a time" flag, or NULL for a command that
	 * may run beside its context's others (CREATE_COMP_CHANNEL waits
	 * for a refill that arrives as another command of the context).
	 */
	bool *owner_busy;
	bool frees_owner;		/* it releases the context */
	/* Executes, replies and frees the item; runs without queue locks. */
	void (*run)(struct vhca_cmdq_item *item);
	/* Replies -EAGAIN and frees it: the queue is full. */
	void (*refuse)(struct vhca_cmdq_item *item);
};

/*
 * Queues @item on @dev's function and, if the function has an execution
 * to spare, runs what may run in the calling thread before returning.
 */
void vhca_cmdq_submit(struct vhca_dev *dev, struct vhca_cmdq_item *item);

#endif /* VHCA_DRIVER_CMDQ_H */
