// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhcactl over rtnetlink: RTM_SETLINK built with libnl-route-3, sent to
 * the kernel (a real PF netdev) or to vhcad's DIR/mgmt.sock; a whole
 * plan as one message (vhcad applies it all or nothing).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/route/link.h>
#include <netlink/route/link/sriov.h>

#include "vhcactl.h"

/* ---- rtnetlink --------------------------------------------------------------------- */

static int send_to_vhcad(const char *run_dir, struct nl_msg *msg);

/* The run dir whose mgmt.sock takes plans, or NULL (then sysfs). */
const char *ctl_plan_run_dir(char *buf, size_t len)
{
	char path[PATH_MAX + sizeof(MGMT_SOCK_NAME) + 1];
	size_t n;

	if (ctl_sysfs_only)
		return NULL;
	if (ctl_run_dir_opt)
		return ctl_run_dir_opt;
	n = strlen(ctl_sysfs_dir);
	while (n > 1 && ctl_sysfs_dir[n - 1] == '/')
		n--;
	if (n < 4 || strncmp(ctl_sysfs_dir + n - 4, "/sys", 4))
		return NULL;
	snprintf(buf, len, "%.*s", (int)(n - 4), ctl_sysfs_dir);
	if (!*buf)
		snprintf(buf, len, "/");
	snprintf(path, sizeof(path), "%s/%s", buf, MGMT_SOCK_NAME);
	return ctl_exists(path) ? buf : NULL;
}

/*
 * The whole plan as one RTM_SETLINK: per VF an IFLA_VF_INFO with
 * IFLA_VF_IB_NODE_GUID, IFLA_VF_IB_PORT_GUID, IFLA_VF_LINK_STATE (the
 * policy) and vhca's VHCA_IFLA_VF_PKEY_TABLE.  vhcad applies it all or
 * nothing.
 */
int ctl_send_plan(struct plan *plan, const char *run_dir)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_msg *msg = nlmsg_alloc_size(256 * 1024);
	struct nlattr *list, *info;
	int ret = -1;

	if (!msg || !nlmsg_put(msg, NL_AUTO_PORT, (uint32_t)time(NULL),
			       RTM_SETLINK, 0, NLM_F_REQUEST | NLM_F_ACK) ||
	    nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_string(msg, IFLA_IFNAME, ctl_pf_name) < 0 ||
	    !(list = nla_nest_start(msg, IFLA_VFINFO_LIST)))
		goto nomem;
	for (unsigned int i = 0; i < plan->count; i++) {
		const struct vf_req *r = &plan->reqs[i];

		info = nla_nest_start(msg, IFLA_VF_INFO);
		if (!info)
			goto nomem;
		if (r->has_node) {
			struct ifla_vf_guid g = { .vf = r->vf, .guid = r->node };

			if (nla_put(msg, IFLA_VF_IB_NODE_GUID, sizeof(g), &g))
				goto nomem;
		}
		if (r->has_port) {
			struct ifla_vf_guid g = { .vf = r->vf, .guid = r->port };

			if (nla_put(msg, IFLA_VF_IB_PORT_GUID, sizeof(g), &g))
				goto nomem;
		}
		if (r->has_policy) {
			struct ifla_vf_link_state ls = {
				.vf = r->vf,
				.link_state =
					!strcmp(r->policy, "Up") ?
						IFLA_VF_LINK_STATE_ENABLE :
					!strcmp(r->policy, "Down") ?
						IFLA_VF_LINK_STATE_DISABLE :
						IFLA_VF_LINK_STATE_AUTO,
			};

			if (nla_put(msg, IFLA_VF_LINK_STATE, sizeof(ls), &ls))
				goto nomem;
		}
		if (r->has_pkeys) {
			unsigned char table[4 + 2 * MAX_PKEYS];
			uint32_t vf = r->vf;

			memcpy(table, &vf, sizeof(vf));
			memcpy(table + 4, r->pkeys, 2 * r->npkeys);
			if (nla_put(msg, VHCA_IFLA_VF_PKEY_TABLE,
				    (int)(4 + 2 * r->npkeys), table))
				goto nomem;
		}
		nla_nest_end(msg, info);
	}
	nla_nest_end(msg, list);
	ret = send_to_vhcad(run_dir, msg) ? -1 : 0;
	if (ret)
		ctl_error_msg("the plan was refused; nothing changed");
	nlmsg_free(msg);
	return ret;
nomem:
	ctl_error_msg("building the plan message: too large or out of memory");
	if (msg)
		nlmsg_free(msg);
	return -1;
}

/* RTM_SETLINK + IFLA_VFINFO_LIST, built by libnl-route-3. */
static int build_setlink(const char *ifname, unsigned int vf, uint64_t node,
			 uint64_t port, int state, struct nl_msg **msg)
{
	struct rtnl_link *orig = rtnl_link_alloc(), *changes = rtnl_link_alloc();
	struct rtnl_link_vf *vfi = rtnl_link_vf_alloc();
	int ret = -NLE_NOMEM;

	if (!orig || !changes || !vfi)
		goto out;
	rtnl_link_set_name(changes, ifname);
	rtnl_link_vf_set_index(vfi, vf);
	if (node)
		rtnl_link_vf_set_ib_node_guid(vfi, node);
	if (port)
		rtnl_link_vf_set_ib_port_guid(vfi, port);
	if (state >= 0)
		rtnl_link_vf_set_linkstate(vfi, (uint32_t)state);
	ret = rtnl_link_vf_add(changes, vfi);
	if (ret < 0)
		goto out;
	ret = rtnl_link_build_change_request(orig, changes, NLM_F_ACK, msg);
out:
	if (vfi)
		rtnl_link_vf_put(vfi);
	if (orig)
		rtnl_link_put(orig);
	if (changes)
		rtnl_link_put(changes);
	return ret;
}

static int send_to_kernel(struct nl_msg *msg)
{
	struct nl_sock *sk = nl_socket_alloc();
	int ret;

	if (!sk)
		return -ENOMEM;
	ret = nl_connect(sk, NETLINK_ROUTE);
	if (!ret)
		ret = nl_send_auto(sk, msg);
	if (ret >= 0)
		ret = nl_wait_for_ack(sk);
	nl_socket_free(sk);
	if (ret < 0) {
		ctl_error_msg("RTM_SETLINK: %s", nl_geterror(ret));
		return -1;
	}
	return 0;
}

static int send_to_vhcad(const char *run_dir, struct nl_msg *msg)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct {
		struct nlmsghdr hdr;
		struct nlmsgerr err;
	} ack;
	ssize_t n;
	int fd;

	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s",
			     run_dir, MGMT_SOCK_NAME) >= sizeof(addr.sun_path)) {
		ctl_error_msg("%s: path too long", run_dir);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		ctl_error_msg("%s: %s", addr.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (send(fd, nlh, nlh->nlmsg_len, MSG_NOSIGNAL) !=
	    (ssize_t)nlh->nlmsg_len) {
		ctl_error_msg("sending to %s: %s", addr.sun_path,
			      strerror(errno));
		close(fd);
		return -1;
	}
	n = recv(fd, &ack, sizeof(ack), 0);
	close(fd);
	if (n < (ssize_t)sizeof(ack) || ack.hdr.nlmsg_type != NLMSG_ERROR ||
	    ack.hdr.nlmsg_seq != nlh->nlmsg_seq) {
		ctl_error_msg("%s: no acknowledgement", addr.sun_path);
		return -1;
	}
	if (ack.err.error) {
		ctl_error_msg("RTM_SETLINK: %s", strerror(-ack.err.error));
		return -1;
	}
	return 0;
}

_Static_assert(IFLA_VF_LINK_STATE_AUTO == 0 && IFLA_VF_LINK_STATE_ENABLE == 1 &&
	       IFLA_VF_LINK_STATE_DISABLE == 2, "link state words");

int cmd_link_set_guid(int argc, char **argv)
{
	const char *netdev = NULL, *run_dir = NULL;
	uint64_t node = 0, port = 0;
	unsigned int vf;
	int state = -1, i = 0, ret;
	struct nl_msg *msg = NULL;

	while (i < argc && !strncmp(argv[i], "--", 2)) {
		if (i + 1 >= argc)
			return ctl_usage_error("%s needs a value", argv[i]);
		if (!strcmp(argv[i], "--pf-netdev"))
			netdev = argv[i + 1];
		else if (!strcmp(argv[i], "--run-dir"))
			run_dir = argv[i + 1];
		else
			return ctl_usage_error(
				"link-set-guid: unknown option '%s'", argv[i]);
		i += 2;
	}
	if (!!netdev == !!run_dir)
		return ctl_usage_error("link-set-guid: give one of --pf-netdev IFNAME and --run-dir DIR");
	if (netdev && (!*netdev || strlen(netdev) >= 16))
		return ctl_usage_error("link-set-guid: bad interface name '%s'", netdev);
	if (i + 2 > argc || strcmp(argv[i], "vf") ||
	    !ctl_parse_uint(argv[i + 1], 1u << 16, &vf))
		return ctl_usage_error("link-set-guid: expected 'vf N'");
	for (i += 2; i < argc; i += 2) {
		const char *err;

		if (i + 1 >= argc)
			return ctl_usage_error("'%s' needs a value", argv[i]);
		if (!strcmp(argv[i], "node_guid") && !node)
			err = ctl_parse_guid(argv[i + 1], &node);
		else if (!strcmp(argv[i], "port_guid") && !port)
			err = ctl_parse_guid(argv[i + 1], &port);
		else if (!strcmp(argv[i], "state") && state < 0) {
			/* iproute2's words for IFLA_VF_LINK_STATE_* */
			const char *words[] = { "auto", "enable", "disable" };

			err = "state is auto, enable or disable";
			for (int k = 0; k < 3; k++)
				if (!strcmp(argv[i + 1], words[k])) {
					state = k;	/* AUTO, ENABLE, DISABLE */
					err = NULL;
				}
		} else
			return ctl_usage_error("link-set-guid: unexpected or repeated '%s'",
					       argv[i]);
		if (err)
			return ctl_usage_error("%s '%s': %s", argv[i],
					       argv[i + 1], err);
	}
	if (!node && !port && state < 0)
		return ctl_usage_error("link-set-guid: nothing to set");

	ret = build_setlink(netdev ? netdev : "vhca0", vf, node, port, state,
			    &msg);
	if (ret < 0) {
		ctl_error_msg("building RTM_SETLINK: %s", nl_geterror(ret));
		return EXIT_FAILURE;
	}
	/*
	 * The same header either way: RTM_SETLINK (libnl builds RTM_NEWLINK,
	 * which the kernel also takes as a change of an existing link), a
	 * request wanting its ack.
	 */
	nlmsg_hdr(msg)->nlmsg_type = RTM_SETLINK;
	nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlmsg_hdr(msg)->nlmsg_seq = (uint32_t)time(NULL);
	ret = netdev ? send_to_kernel(msg) : send_to_vhcad(run_dir, msg);
	nlmsg_free(msg);
	return ret ? EXIT_FAILURE : 0;
}

