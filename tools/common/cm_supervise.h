/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * How unmodified librdmacm opens vhcad's rdma_cm (docs/rdma_cm.md):
 * librdmacm opens /dev/infiniband/rdma_cm and insists on a character
 * device, and a character-device inode always opens the kernel's driver.
 * So the process runs under a seccomp user-notification filter
 * (installed before exec, inherited by every child and thread) that
 * traps open/openat with O_RDWR, openat2, and the fstat family on a
 * reserved range of fd numbers; a supervisor process answers:
 *
 *   open of exactly /dev/infiniband/rdma_cm: it opens vhcad's FUSE file
 *     (class/misc/rdma_cm/vhca_cmd under SYSFS_PATH) and injects it into
 *     the caller at a free reserved fd (SECCOMP_IOCTL_NOTIF_ADDFD, SETFD
 *     | SEND): that is open()'s result;
 *   fstat/newfstatat("", AT_EMPTY_PATH)/statx of such an fd: the file's
 *     own stat, but a character device (the guest's node's rdev);
 *   anything else: CONTINUE, the kernel runs the call untouched.
 *
 * Trapped calls fail with ENOSYS once the supervisor is gone, so it must
 * outlive every process under the filter: it serves until the filter
 * has no process left.
 */
#ifndef VHCA_CM_SUPERVISE_H
#define VHCA_CM_SUPERVISE_H

#include <sys/types.h>

/* Fds handed out: the reserved range, below the usual 1024 limit. */
#define CM_SUP_FD_LOW 900
#define CM_SUP_FD_HIGH 1019

/*
 * In the process about to exec: installs the filter (no_new_privs must
 * be set, or CAP_SYS_ADMIN held) and sends its listener over @sock.
 * 0 or -errno.
 */
int cm_sup_install(int sock);

/* Receives the listener cm_sup_install() sent; -errno on failure. */
int cm_sup_receive(int sock);

/*
 * Serves @listener until no process is under the filter.  @ucma_path is
 * vhcad's rdma_cm file; @node_rdev what fstat reports.  Returns 0, or
 * -errno if the file cannot be opened at all.
 */
int cm_sup_serve(int listener, const char *ucma_path, dev_t node_rdev);

#endif /* VHCA_CM_SUPERVISE_H */
