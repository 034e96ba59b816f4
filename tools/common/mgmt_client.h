/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A launcher's requests on vhcad's management socket (include/vhca/mgmt.h):
 * one netlink message with NLM_F_ACK, answered with NLMSG_ERROR.
 */
#ifndef VHCA_TOOLS_MGMT_CLIENT_H
#define VHCA_TOOLS_MGMT_CLIENT_H

#include <stddef.h>
#include <linux/types.h>

/* vhcad serves one management client at a time; a busy one may wait. */
#define MGMT_CALL_TIMEOUT_MS 10000

/*
 * DIR/mgmt.sock, connected (close-on-exec); tool_fail if it cannot be.
 * Connect while the run dir is in sight (before a guest's namespaces
 * cover it).
 */
int mgmt_connect(const char *run_dir);

/*
 * Sends a request of @type with @payload, and @pass_fd in SCM_RIGHTS if it
 * is not -1, and waits for vhcad's answer: returns 0 or -errno as vhcad
 * answered.  Fails (tool_fail) when there is no well-formed answer within
 * MGMT_CALL_TIMEOUT_MS; @what ("bind vhca0_vf1 to the guest") names the
 * request in those messages.
 */
int mgmt_call(int fd, __u16 type, const void *payload, size_t len,
	      int pass_fd, const char *what);

#endif /* VHCA_TOOLS_MGMT_CLIENT_H */
