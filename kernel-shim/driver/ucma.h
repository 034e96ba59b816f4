/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The ucma file (what the kernel's rdma_ucm module is behind
 * /dev/infiniband/rdma_cm): one open is one event channel of librdmacm,
 * holding ids and the events waiting for them.  ucma.c keeps files, ids
 * and events; ucma_cmds.c runs the commands of the ABI (version 4,
 * <rdma/rdma_user_cm.h>); sysfs_ucma.c is the FUSE file that carries
 * them.  The CM's thread and hooks (cm_agent.c) are started from here.
 */
#ifndef VHCA_DRIVER_UCMA_H
#define VHCA_DRIVER_UCMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "device/pf.h"

struct vhca_guests;
struct vhca_peer;
struct cm_id;
struct ucma_file;

/* The ABI version sysfs reports (class/misc/rdma_cm/abi_version). */
#define UCMA_ABI_VERSION 4

/* ---- the CM (cm_agent.c) ------------------------------------------------------ */

int vhca_cm_start(struct vhca_pf *pf, struct vhca_guests *guests);
void vhca_cm_stop(void);
/* The PF's hooks: provisioning changes and functions going away. */
void vhca_cm_dev_changed(struct vhca_dev *dev, enum vhca_change what);
void vhca_cm_dev_removed(struct vhca_dev *dev);
void cm_agent_wake(void);

/* Ids that exist and ids that listen, now (cma.c; no lock needed). */
void cma_stats(unsigned int *ids, unsigned int *listeners);
/* Multicast joins held by every file (ucma_mcast.c), read unlocked. */
unsigned int ucma_joins(void);

/* ---- files (ucma.c) ---------------------------------------------------------------- */

/* A new, empty event channel; NULL on ENOMEM. */
struct ucma_file *ucma_open(void);
/*
 * The last reference went (close, or the process died): every id goes,
 * its connections with it (peers see DISCONNECTED or a REJ).
 */
void ucma_release(struct ucma_file *file);

/*
 * One write() of a command by thread @tid; @nonblock is the file's
 * O_NONBLOCK.  Returns the length written or -errno, or UCMA_HELD: a
 * GET_EVENT waits for an event with @req kept, and
 * ucma_fuse_reply(@req, ...) answers it later.
 */
#define UCMA_HELD 1
ssize_t ucma_write(struct ucma_file *file, pid_t tid, bool nonblock,
		   const void *buf, size_t len, void *req);
/* The caller of a held GET_EVENT was interrupted (a signal): EINTR. */
void ucma_interrupt(struct ucma_file *file, void *req);
/*
 * Is an event waiting?  @ph (if not NULL) is notified when one is
 * queued, replacing the previous handle.
 */
bool ucma_poll(struct ucma_file *file, void *ph);

/* What sysfs_ucma.c does for ucma.c: answer a held request, wake a poll. */
void ucma_fuse_reply(void *req, ssize_t ret);
bool ucma_fuse_interrupted(void *req);
void ucma_fuse_notify(void *ph);
void ucma_fuse_forget(void *ph);

/* ---- what ucma_cmds.c needs of ucma.c (under cm_lock()) --------------------------- */

/* A file's caller identity: its process (bound by the first write). */
struct vhca_peer *ucma_file_peer(struct ucma_file *file);
int ucma_file_domain(struct ucma_file *file);
/* The id @handle of @file: -ENOENT if there is none, -EINVAL if foreign. */
int ucma_find(struct ucma_file *file, uint32_t handle, struct cm_id **out);
/* Gives @id a handle and puts it in its file (created by a command). */
int ucma_publish(struct cm_id *id);
/* Drops @id from its file and frees it (after cma_destroy()). */
void ucma_free_id(struct cm_id *id);
/*
 * The oldest event of @file: taken into @resp (counted as reported),
 * or -EAGAIN.
 */
int ucma_take_event(struct ucma_file *file, void *resp, size_t len);
/* Moves @id and its events to @to (MIGRATE_ID). */
void ucma_move_id(struct cm_id *id, struct ucma_file *to);
/* The file a daemon-side probe write identified (MIGRATE_ID), or NULL;
 * the token is used up. */
struct ucma_file *ucma_file_by_token(uint64_t token);

/* The commands of the ABI (ucma_cmds.c), called without cm_lock(). */
ssize_t ucma_run_cmd(struct ucma_file *file, pid_t tid, uint32_t cmd,
		     const uint8_t *in, size_t in_len, size_t out_len);
/* SET_OPTION and MIGRATE_ID (ucma_opts.c): they lock for themselves. */
int ucma_set_option(struct ucma_file *file, const uint8_t *in);
int ucma_migrate(struct ucma_file *file, const uint8_t *in, size_t out_len);
/* MIGRATE_ID off the FUSE workers: UCMA_HELD, answered by its thread. */
ssize_t ucma_migrate_async(struct ucma_file *file, const uint8_t *in,
			   size_t out_len, size_t len, void *req);
/* The command number of MIGRATE_ID's probe write (vhcad's own). */
#define UCMA_PROBE_CMD 0x7fff0001u
/* Is @fd (vhcad's) an open of the FUSE rdma_cm file? (sysfs_ucma.c) */
bool ucma_fuse_is_ours(int fd);

#endif /* VHCA_DRIVER_UCMA_H */
