/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The run directory of one vhcad instance and the /dev/infiniband nodes it
 * owns.
 *
 *   DIR/vhcad.pid  the daemon's pid, write-locked (fcntl) for its lifetime:
 *                  whoever holds the lock owns DIR and everything below
 *   DIR/nodes      uverbs indexes of the nodes it created, one per line
 *   DIR/sys        mount point of the sysfs view (sysfs.c)
 *   DIR/ready      present while the daemon serves requests
 *   DIR/vhcad.log  the daemon's stderr once it has detached (main.c)
 *
 * A SIGKILLed daemon leaves all of this behind; the next daemon on the same
 * run dir finds the lock free and cleans up before it starts.
 */
#ifndef VHCA_RUNDIR_H
#define VHCA_RUNDIR_H

#include <sys/stat.h>

#define VHCA_DEFAULT_RUN_DIR "/run/vhca"
#define VHCA_LOG_FILE_NAME "vhcad.log"

/*
 * libibverbs opens /dev/infiniband/uverbsN (the path is compiled in) and
 * requires a character device whose numbers match sysfs "dev".  Ours carry
 * the numbers of /dev/full: a write that ever reached the node itself
 * (instead of the command file the provider puts in its place) fails with
 * ENOSPC rather than silently succeeding.
 */
#define VHCA_UVERBS_DEV_DIR "/dev/infiniband"
#define VHCA_MARKER_MAJOR 1
#define VHCA_MARKER_MINOR 7

struct vhca_rundir;

/*
 * Creates DIR (mkdir -p), takes the pid lock, removes what a killed
 * predecessor left behind and creates DIR/sys.  Fails with -EBUSY (after
 * saying "vhcad already running (pid N) on DIR") if a daemon owns DIR.
 */
int vhca_rundir_open(const char *dir, struct vhca_rundir **out);

/*
 * Releases every node still claimed, removes DIR/ready, DIR/nodes and the
 * pid file, and drops the lock.  The mount must be gone already.
 */
void vhca_rundir_close(struct vhca_rundir *rd);

const char *vhca_rundir_path(const struct vhca_rundir *rd);
const char *vhca_rundir_sys_path(const struct vhca_rundir *rd);

/* Publishes / withdraws DIR/ready. */
int vhca_rundir_mark_ready(struct vhca_rundir *rd);
void vhca_rundir_clear_ready(struct vhca_rundir *rd);

/*
 * The struct vhca_pf_hooks callbacks (arg is the struct vhca_rundir).
 * claim: creates the lowest free /dev/infiniband/uverbsN and records it in
 * DIR/nodes; returns N or -errno.  release: removes both again.
 */
int vhca_rundir_claim_uverbs(void *arg);
void vhca_rundir_release_uverbs(void *arg, int index);

/* lstat() of /dev/infiniband/uverbsN; 0 or -errno. */
int vhca_uverbs_node_stat(int index, struct stat *st);

/*
 * vhcad --stop: SIGTERM to the daemon that owns DIR, then wait (at most
 * 10 s) until it has exited.  0, or -ESRCH if none runs, or -errno.
 */
int vhca_rundir_stop_daemon(const char *dir);

#endif /* VHCA_RUNDIR_H */
