// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Requests on vhcad's management socket (mgmt_client.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/netlink.h>

#include <vhca/mgmt.h>

#include "mgmt_client.h"
#include "tool.h"

/* The largest payload a launcher sends. */
#define MGMT_PAYLOAD_MAX 64

int mgmt_connect(const char *run_dir)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s",
			     run_dir, VHCA_MGMT_SOCK_NAME) >=
	    sizeof(addr.sun_path))
		tool_fail("run dir %s: path too long for its management socket",
			  run_dir);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		tool_fail("cannot reach vhcad's management socket %s: %s",
			  addr.sun_path, strerror(errno));
	return fd;
}

int mgmt_call(int fd, __u16 type, const void *payload, size_t len,
	      int pass_fd, const char *what)
{
	struct {
		struct nlmsghdr hdr;
		unsigned char payload[MGMT_PAYLOAD_MAX];
	} req = {
		.hdr = {
			.nlmsg_len = (__u32)(NLMSG_HDRLEN + len),
			.nlmsg_type = type,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			.nlmsg_seq = 1,
		},
	};
	struct {
		struct nlmsghdr hdr;
		struct nlmsgerr err;
	} ack;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = &req, .iov_len = NLMSG_HDRLEN + len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (len > sizeof(req.payload))
		tool_fail("internal: management payload of %zu bytes", len);
	memcpy(req.payload, payload, len);
	if (pass_fd >= 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
	}
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
		tool_fail("cannot ask vhcad to %s: %s", what, strerror(errno));
	if (poll(&pfd, 1, MGMT_CALL_TIMEOUT_MS) != 1)
		tool_fail("vhcad did not answer the request to %s within %d s",
			  what, MGMT_CALL_TIMEOUT_MS / 1000);
	n = recv(fd, &ack, sizeof(ack), 0);
	if (n != sizeof(ack) || ack.hdr.nlmsg_type != NLMSG_ERROR ||
	    ack.err.error > 0)
		tool_fail("vhcad's answer to the request to %s is malformed",
			  what);
	return ack.err.error;
}
