/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhca-guest's parts (docs/guests.md):
 *   vhca-guest.c  the command line, the VF (its lock: ../common/vf.c), the
 *                 binding with vhcad, and the launcher-facing process that stays
 *                 outside and passes signals in and the exit status out;
 *   view.c        the guest's filesystem: what it sees and what it may
 *                 write (built in its mount namespace, from outside);
 *   init.c        the guest's first process (PID 1 of its namespace):
 *                 /proc, dropping every privilege, CMD, reaping.
 */
#ifndef VHCA_GUEST_H
#define VHCA_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tool.h"

#define GUEST_EXIT_FAILED TOOL_EXIT_FAILED
#define GUEST_EXIT_CANNOT_EXECUTE 126
#define GUEST_EXIT_NOT_FOUND 127

#define GUEST_PF_NAME "vhca0"
#define GUEST_VF_PREFIX GUEST_PF_NAME "_vf"
#define GUEST_UVERBS_DIR "/dev/infiniband"
#define GUEST_UVERBS_PREFIX "uverbs"
#define GUEST_RDMA_CM_NODE GUEST_UVERBS_DIR "/rdma_cm"
#define GUEST_RDMA_CM_DIR "class/misc/rdma_cm"	/* in the sysfs view */
/* A name becomes the guest's hostname: RFC 1123 characters, one to 63. */
#define GUEST_NAME_MAX 63
#define GUEST_SHARES_MAX 16

struct guest {
	const char *run_dir_arg;	/* as given, for messages */
	char *run_dir;			/* absolute, symlinks resolved */
	char *sys_path;			/* run_dir/sys */
	bool vf_given;
	bool name_given;
	unsigned int vf;
	unsigned int uverbs;
	char name[GUEST_NAME_MAX + 1];
	dev_t node_rdev;		/* of the host's /dev/infiniband/uverbsM */
	int lock_fd;
	bool host_net;			/* --net host */
	/* --share DIRs and the launcher's session dir, absolute, resolved */
	char *shares[GUEST_SHARES_MAX];
	size_t num_shares;
	bool as_user;			/* --user */
	uid_t uid;
	gid_t gid;
	char *user_name;
	char **cmd;
};

/* "vhca-guest: <message>", exit 125 (tool.h). */
#define guest_fail tool_fail
#define guest_path_join tool_path_join

/*
 * In the guest's fresh mount namespace, from outside: its run dir, /dev,
 * /tmp, /run, shares, everything else read-only, its hostname and (with a
 * network namespace) its loopback.
 */
void guest_build_view(const struct guest *g);

/*
 * The guest's PID 1: waits for @go_fd (one byte once vhcad has bound the
 * VF to the guest, EOF if not), mounts /proc, drops every privilege, runs
 * CMD and forwards signals to it until it ends; CMD's wait status goes
 * to @status_fd.  Never returns.
 */
_Noreturn void guest_run_init(const struct guest *g, int go_fd,
			      int status_fd);

#endif /* VHCA_GUEST_H */
