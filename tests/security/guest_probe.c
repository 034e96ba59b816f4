// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What a process may do with vhca's files, as test_sec_guest.sh asks it
 * from inside and outside guests.  Each mode prints one word: "ok" or the
 * errno's name, so the script compares exact outcomes.
 *
 *   guest_probe open PATH       open a command file for writing
 *   guest_probe cmd FD          a command on an inherited command file
 *   guest_probe mgmt SOCKET     an empty RTM_SETLINK on vhcad's mgmt.sock
 *   guest_probe bind SOCKET VF PID   VHCA_MGMT_BIND_GUEST of PID to VF
 *   guest_probe listen PORT     listens on 127.0.0.1:PORT, prints
 *                               "listening", then "ok" once one connects
 *   guest_probe connect PORT    connects to 127.0.0.1:PORT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <vhca/mgmt.h>

#include "raw.h"

static const char *errno_name(int err)
{
	switch (err) {
	case 0: return "ok";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EBADF: return "EBADF";
	case EBUSY: return "EBUSY";
	case ESRCH: return "ESRCH";
	case ENODEV: return "ENODEV";
	case ENOSPC: return "ENOSPC";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENETUNREACH: return "ENETUNREACH";
	default: return strerror(err);
	}
}

/* One netlink request on @path; the error its NLMSG_ERROR carries. */
static int mgmt_request(const char *path, const void *msg, size_t len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct {
		struct nlmsghdr hdr;
		struct nlmsgerr err;
	} ack;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		return errno;
	if (send(fd, msg, len, 0) != (ssize_t)len ||
	    recv(fd, &ack, sizeof(ack), 0) != sizeof(ack))
		return EIO;
	close(fd);
	return -ack.err.error;
}

static int probe_mgmt(const char *path)
{
	struct {
		struct nlmsghdr hdr;
		struct ifinfomsg ifi;
	} req = {
		.hdr = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = RTM_SETLINK,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			.nlmsg_seq = 1,
		},
	};

	return mgmt_request(path, &req, sizeof(req));
}

static int probe_bind(const char *path, unsigned int vf, int pid)
{
	struct {
		struct nlmsghdr hdr;
		struct vhca_mgmt_guest guest;
	} req = {
		.hdr = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = VHCA_MGMT_BIND_GUEST,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			.nlmsg_seq = 1,
		},
		.guest = { .vf = vf, .init_pid = pid },
	};

	return mgmt_request(path, &req, sizeof(req));
}

static struct sockaddr_in loopback(const char *port)
{
	return (struct sockaddr_in){
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)atoi(port)),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
}

static int probe_listen(const char *port)
{
	struct sockaddr_in addr = loopback(port);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				 sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 4))
		return errno;
	printf("listening\n");
	fflush(stdout);
	return accept(fd, NULL, NULL) < 0 ? errno : 0;
}

static int probe_connect(const char *port)
{
	struct sockaddr_in addr = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		return errno;
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	int err;

	if (argc == 3 && !strcmp(argv[1], "open")) {
		err = open(argv[2], O_RDWR | O_CLOEXEC) >= 0 ? 0 : errno;
	} else if (argc == 3 && !strcmp(argv[1], "cmd")) {
		struct ib_uverbs_get_context core = { 0 };

		/* Refused before parsing if the caller may not use the VF. */
		err = raw_cmd(atoi(argv[2]), IB_USER_VERBS_CMD_GET_CONTEXT,
			      &core, sizeof(core), NULL, 0, 0);
	} else if (argc == 3 && !strcmp(argv[1], "mgmt")) {
		err = probe_mgmt(argv[2]);
	} else if (argc == 5 && !strcmp(argv[1], "bind")) {
		err = probe_bind(argv[2], (unsigned int)atoi(argv[3]),
				 atoi(argv[4]));
	} else if (argc == 3 && !strcmp(argv[1], "listen")) {
		err = probe_listen(argv[2]);
	} else if (argc == 3 && !strcmp(argv[1], "connect")) {
		err = probe_connect(argv[2]);
	} else {
		fprintf(stderr, "usage: guest_probe open PATH | cmd FD | mgmt SOCKET | bind SOCKET VF PID | listen PORT | connect PORT\n");
		return 2;
	}
	printf("%s\n", errno_name(err));
	return 0;
}
