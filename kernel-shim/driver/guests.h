/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Guests bound to VFs: which PID namespace owns which VF.
 *
 * A real VF passed through to a VM is reachable from that VM only: its
 * BAR is mapped into that VM alone.  A namespace guest (vhca-guest) sees
 * only its VF's files, but files can travel (an inherited fd, SCM_RIGHTS,
 * a path that leaks), so the driver checks the caller too.  vhca-guest
 * binds the VF to the guest's PID namespace over mgmt.sock
 * (VHCA_MGMT_BIND_GUEST, include/vhca/mgmt.h) before the guest runs
 * anything; the binding lives as long as the guest's init process.
 *
 * While a binding is live:
 *   - the VF's command file opens, and takes commands, only for processes
 *     of the guest's PID namespace (or of namespaces below it);
 *   - processes of that namespace may not use any other function (the PF,
 *     other VFs) or write any attribute.
 * Functions no guest owns serve everyone else, as before.
 */
#ifndef VHCA_DRIVER_GUESTS_H
#define VHCA_DRIVER_GUESTS_H

#include <stdbool.h>
#include <sys/types.h>

struct vhca_guests;

struct vhca_guests *vhca_guests_create(void);
void vhca_guests_destroy(struct vhca_guests *guests);

/*
 * Binds VF @vf to the PID namespace of @init_pid, which must be a child
 * of @sender_pid and the first process of a PID namespace other than
 * vhcad's.  A previous binding of @vf is replaced only if its init has
 * exited (vhca-guest's lock file admits one guest per VF): -EBUSY
 * otherwise.  0 or -errno.
 */
int vhca_guests_bind(struct vhca_guests *guests, unsigned int vf,
		     pid_t init_pid, pid_t sender_pid);

/*
 * May thread @tid use the function @vf (is_vf), or the PF (!is_vf)?
 * 0, or -EACCES when a guest owns it and @tid is not of that guest, or
 * @tid belongs to a guest that owns another function.
 */
int vhca_guests_check(struct vhca_guests *guests, bool is_vf, unsigned int vf,
		      pid_t tid);

/* Does a live guest own VF @vf?  (It cannot go to a VM then.) */
bool vhca_guests_own(struct vhca_guests *guests, unsigned int vf);

/* Is @tid a process of a live guest?  (Attribute writes are refused.) */
bool vhca_guests_contain(struct vhca_guests *guests, pid_t tid);

#endif /* VHCA_DRIVER_GUESTS_H */
