// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca-rdmacm: runs CMD on the host with librdmacm reaching vhcad's
 * rdma_cm (docs/rdma_cm.md), as vhca-guest does for a guest:
 *
 *   vhca-rdmacm [--run-dir DIR] -- CMD [ARG...]
 *
 * The file is SYSFS_PATH's class/misc/rdma_cm/vhca_cmd (DIR/sys when
 * given, /run/vhca/sys when neither is); SYSFS_PATH is set for CMD.
 * CMD and its children run under the supervisor's filter
 * (cm_supervise.h); we serve until the last of them is gone, then exit
 * with CMD's status (128 + N if a signal N ended it).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "cm_supervise.h"
#include "tool.h"

const char tool_name[] = "vhca-rdmacm";

static void usage(void)
{
	printf("usage: %s [--run-dir DIR] -- CMD [ARG...]\n"
	       "Runs CMD with unmodified librdmacm using vhcad's rdma_cm.\n",
	       tool_name);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "run-dir", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *sys = getenv("SYSFS_PATH");
	char *owned = NULL, *file;
	int c, sup[2], listener, status, ret;
	pid_t cmd;

	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			sys = owned = tool_path_join(optarg, "sys");
			break;
		case 'h':
			usage();
			return 0;
		default:
			tool_bad_option(c, argv);
		}
	}
	if (optind >= argc)
		tool_usage_error("no command given");
	if (!sys)
		sys = "/run/vhca/sys";
	file = tool_path_join(sys, "class/misc/rdma_cm/vhca_cmd");
	if (access(file, R_OK | W_OK))
		tool_fail("%s: %s (is vhcad running?)", file, strerror(errno));
	if (setenv("SYSFS_PATH", sys, 1))
		tool_fail("cannot set SYSFS_PATH: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sup))
		tool_fail("socketpair: %s", strerror(errno));
	cmd = fork();
	if (cmd < 0)
		tool_fail("fork: %s", strerror(errno));
	if (cmd == 0) {
		close(sup[0]);
		/* The filter needs it without CAP_SYS_ADMIN. */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
			tool_fail("no_new_privs: %s", strerror(errno));
		ret = cm_sup_install(sup[1]);
		if (ret)
			tool_fail("cannot trap rdma_cm: %s", strerror(-ret));
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "%s: cannot run %s: %s\n", tool_name,
			argv[optind], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(sup[1]);
	listener = cm_sup_receive(sup[0]);
	close(sup[0]);
	if (listener >= 0) {
		ret = cm_sup_serve(listener, file, makedev(1, 7));
		if (ret)
			tool_warn("supervisor: %s", strerror(-ret));
	}
	if (waitpid(cmd, &status, 0) < 0)
		tool_fail("waitpid: %s", strerror(errno));
	free(owned);
	free(file);
	return WIFEXITED(status) ? WEXITSTATUS(status) :
				   128 + WTERMSIG(status);
}
