// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The management socket (mgmt.h): rtnetlink RTM_SETLINK requests for the
 * VFs of the PF, parsed with libnl as the kernel parses them
 * (net/core/rtnetlink.c, do_setvfinfo) and applied through pf.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "guests.h"
#include "vm_attach.h"
#include "mgmt.h"
#include "peer.h"

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

/* Largest request record; the kernel's default socket buffer is bigger. */
#define MGMT_RECORD_MAX (64 * 1024)
/* A connection idle this long is closed, so that it cannot block others. */
#define MGMT_IDLE_MS 5000

struct vhca_mgmt {
	struct vhca_pf *pf;
	struct vhca_guests *guests;
	struct vhca_vms *vms;
	char path[PATH_MAX];
	int listen_fd;
	int stop_pipe[2];
	pthread_t thread;
};

/* ---- parsing ------------------------------------------------------------------ */

static struct nla_policy link_policy[IFLA_MAX + 1] = {
	[IFLA_IFNAME] = { .type = NLA_STRING },
	[IFLA_VFINFO_LIST] = { .type = NLA_NESTED },
};

static struct nla_policy vf_policy[IFLA_VF_MAX + 1] = {
	[IFLA_VF_IB_NODE_GUID] = { .minlen = sizeof(struct ifla_vf_guid) },
	[IFLA_VF_IB_PORT_GUID] = { .minlen = sizeof(struct ifla_vf_guid) },
	[IFLA_VF_LINK_STATE] = { .minlen = sizeof(struct ifla_vf_link_state) },
};

struct plan_builder {
	struct vhca_vf_plan *vfs;
	unsigned int count, cap;
};

static struct vhca_vf_plan *plan_add(struct plan_builder *b, unsigned int vf)
{
	if (b->count == b->cap) {
		unsigned int cap = b->cap ? 2 * b->cap : 8;
		struct vhca_vf_plan *vfs = reallocarray(b->vfs, cap,
							sizeof(*vfs));

		if (!vfs)
			return NULL;
		b->vfs = vfs;
		b->cap = cap;
	}
	memset(&b->vfs[b->count], 0, sizeof(b->vfs[0]));
	b->vfs[b->count].vf = vf;
	return &b->vfs[b->count++];
}

static int link_state_policy(uint32_t state, enum vhca_vf_policy *policy)
{
	switch (state) {
	case IFLA_VF_LINK_STATE_AUTO: *policy = VHCA_POLICY_FOLLOW; return 0;
	case IFLA_VF_LINK_STATE_ENABLE: *policy = VHCA_POLICY_UP; return 0;
	case IFLA_VF_LINK_STATE_DISABLE: *policy = VHCA_POLICY_DOWN; return 0;
	default: return -EINVAL;
	}
}

/* The vhca extension VHCA_IFLA_VF_PKEY_TABLE (mgmt.h), if present. */
static int parse_pkey_table(struct nlattr *info, struct plan_builder *b)
{
	struct nlattr *attr;
	int rem;

	nla_for_each_nested(attr, info, rem) {
		const unsigned char *data = nla_data(attr);
		int len = nla_len(attr);
		struct vhca_vf_plan *p;
		uint32_t vf;

		if (nla_type(attr) != VHCA_IFLA_VF_PKEY_TABLE)
			continue;
		if (len < (int)sizeof(vf) || (len - (int)sizeof(vf)) % 2 ||
		    (size_t)(len - (int)sizeof(vf)) / 2 > VHCA_PKEY_TABLE_LEN)
			return -EINVAL;
		memcpy(&vf, data, sizeof(vf));
		p = plan_add(b, vf);
		if (!p)
			return -ENOMEM;
		p->set = VHCA_PLAN_PKEYS;
		memcpy(p->pkeys, data + sizeof(vf), (size_t)len - sizeof(vf));
	}
	return rem ? -EINVAL : 0;	/* trailing bytes: a malformed nest */
}

/* One IFLA_VF_INFO nest into plan entries. */
static int parse_vf_info(struct nlattr *info, struct plan_builder *b)
{
	struct nlattr *tb[IFLA_VF_MAX + 1];
	struct vhca_vf_plan *p;
	int ret;

	ret = nla_parse_nested(tb, IFLA_VF_MAX, info, vf_policy);
	if (ret < 0)
		return -EINVAL;
	/* nla_parse skips types above IFLA_VF_MAX: ours is looked up here. */
	ret = parse_pkey_table(info, b);
	if (ret)
		return ret;
	/* What an IB PF cannot do (MAC, VLAN, rate, ...) is refused. */
	for (int type = 1; type <= IFLA_VF_MAX; type++)
		if (tb[type] && type != IFLA_VF_IB_NODE_GUID &&
		    type != IFLA_VF_IB_PORT_GUID && type != IFLA_VF_LINK_STATE)
			return -EOPNOTSUPP;

	if (tb[IFLA_VF_IB_NODE_GUID]) {
		struct ifla_vf_guid guid;

		memcpy(&guid, nla_data(tb[IFLA_VF_IB_NODE_GUID]), sizeof(guid));
		p = plan_add(b, guid.vf);
		if (!p)
			return -ENOMEM;
		p->set = VHCA_PLAN_NODE_GUID;
		p->node_guid = guid.guid;
	}
	if (tb[IFLA_VF_IB_PORT_GUID]) {
		struct ifla_vf_guid guid;

		memcpy(&guid, nla_data(tb[IFLA_VF_IB_PORT_GUID]), sizeof(guid));
		p = plan_add(b, guid.vf);
		if (!p)
			return -ENOMEM;
		p->set = VHCA_PLAN_PORT_GUID;
		p->port_guid = guid.guid;
	}
	if (tb[IFLA_VF_LINK_STATE]) {
		struct ifla_vf_link_state state;

		memcpy(&state, nla_data(tb[IFLA_VF_LINK_STATE]), sizeof(state));
		p = plan_add(b, state.vf);
		if (!p)
			return -ENOMEM;
		p->set = VHCA_PLAN_POLICY;
		ret = link_state_policy(state.link_state, &p->policy);
		if (ret)
			return ret;
	}
	return 0;
}

int vhca_mgmt_handle(struct vhca_pf *pf, const void *msg, size_t len)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)msg;
	struct nlattr *tb[IFLA_MAX + 1];
	struct plan_builder b = { .vfs = NULL };
	struct vhca_plan plan;
	struct nlattr *info;
	int ret, rem;

	if (len < sizeof(*nlh) || nlh->nlmsg_len > len)
		return -EINVAL;
	/*
	 * RTM_NEWLINK on an existing link is a change too (what `ip link set`
	 * and libnl's rtnl_link_build_change_request send); with NLM_F_EXCL
	 * it is a creation, refused as the kernel refuses it.
	 */
	if (nlh->nlmsg_type != RTM_SETLINK && nlh->nlmsg_type != RTM_NEWLINK)
		return -EOPNOTSUPP;
	if (nlh->nlmsg_type == RTM_NEWLINK &&
	    (nlh->nlmsg_flags & NLM_F_CREATE) && (nlh->nlmsg_flags & NLM_F_EXCL))
		return -EEXIST;
	if (!(nlh->nlmsg_flags & NLM_F_REQUEST))
		return -EINVAL;
	if (nlmsg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX,
			link_policy) < 0)
		return -EINVAL;
	/* The PF has no netdev: its name is its IB device's (vhca0). */
	if (tb[IFLA_IFNAME] && strcmp(nla_get_string(tb[IFLA_IFNAME]),
				      pf->dev.name))
		return -ENODEV;
	if (!tb[IFLA_VFINFO_LIST])
		return 0;	/* nothing the PF acts on: a no-op, as rtnl */

	ret = 0;
	nla_for_each_nested(info, tb[IFLA_VFINFO_LIST], rem) {
		if (nla_type(info) != IFLA_VF_INFO) {
			ret = -EINVAL;
			break;
		}
		ret = parse_vf_info(info, &b);
		if (ret)
			break;
	}
	if (!ret && rem)
		ret = -EINVAL;	/* trailing bytes: a malformed list */
	if (!ret) {
		plan.count = b.count;
		plan.vfs = b.vfs;
		ret = vhca_pf_apply_plan(pf, &plan);
	}
	free(b.vfs);
	return ret;
}

/* ---- serving -------------------------------------------------------------------- */

/* The kernel's answer: NLMSG_ERROR carrying the error and the header. */
static void send_ack(int fd, const struct nlmsghdr *req, int error)
{
	struct {
		struct nlmsghdr hdr;
		struct nlmsgerr err;
	} ack;

	memset(&ack, 0, sizeof(ack));
	ack.hdr.nlmsg_len = sizeof(ack);
	ack.hdr.nlmsg_type = NLMSG_ERROR;
	ack.hdr.nlmsg_flags = error ? NLM_F_CAPPED : 0;
	ack.hdr.nlmsg_seq = req->nlmsg_seq;
	ack.err.error = error;
	ack.err.msg = *req;
	if (send(fd, &ack, sizeof(ack), MSG_NOSIGNAL) < 0) {
		/* The requester is gone. */
	}
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77		/* Linux 6.5 */
#endif

/*
 * The peer's pid, and whether it may manage the PF: rtnetlink asks
 * CAP_NET_ADMIN of RTM_SETLINK (netlink_net_capable), in the initial
 * user namespace here (vhcad's), so a root guest without capabilities is
 * refused.  The pidfd the kernel took at connect() proves the pid still
 * names that peer after /proc was read.
 */
static bool peer_privileged(int fd, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int pidfd = -1;
	bool ok;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    cred.pid <= 0)
		return false;
	len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len))
		pidfd = -1;	/* older kernel: the pid alone */
	*pid = cred.pid;
	ok = cred.uid == 0 && vhca_peer_capable(cred.pid, CAP_NET_ADMIN);
	if (pidfd >= 0) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

		if (poll(&pfd, 1, 0) != 0)
			ok = false;	/* exited: the pid may name another */
		close(pidfd);
	}
	return ok;
}

/* VHCA_MGMT_ATTACH_VM with the VM's RAM in @fd (taken, or -1). */
static int attach_vm(struct vhca_mgmt *m, const struct nlmsghdr *nlh,
		     int *fd)
{
	struct vhca_mgmt_vm req;
	int ram_fd = *fd;

	if (nlh->nlmsg_len != NLMSG_LENGTH(sizeof(req)) ||
	    !(nlh->nlmsg_flags & NLM_F_REQUEST) || ram_fd < 0)
		return -EINVAL;
	memcpy(&req, NLMSG_DATA(nlh), sizeof(req));
	if (req.flags)
		return -EINVAL;
	*fd = -1;
	return vhca_vms_attach(m->vms, req.vf, ram_fd, req.ram_size);
}

/* VHCA_MGMT_BIND_GUEST (include/vhca/mgmt.h) from @sender. */
static int bind_guest(struct vhca_mgmt *m, const struct nlmsghdr *nlh,
		      pid_t sender)
{
	struct vhca_mgmt_guest req;

	if (nlh->nlmsg_len != NLMSG_LENGTH(sizeof(req)) ||
	    !(nlh->nlmsg_flags & NLM_F_REQUEST))
		return -EINVAL;
	memcpy(&req, NLMSG_DATA(nlh), sizeof(req));
	if (req.vf >= m->pf->total_vfs)
		return -ENODEV;
	return vhca_guests_bind(m->guests, req.vf, req.init_pid, sender);
}

static void handle_record(struct vhca_mgmt *m, int fd, unsigned char *buf,
			  size_t len, bool privileged, pid_t sender,
			  int *passed_fd)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	int remaining = (int)len;

	if (!nlmsg_ok(nlh, remaining)) {
		struct nlmsghdr bad = { .nlmsg_len = (uint32_t)len };

		send_ack(fd, &bad, -EINVAL);
		return;
	}
	for (; nlmsg_ok(nlh, remaining); nlh = nlmsg_next(nlh, &remaining)) {
		int ret;

		if (!privileged)
			ret = -EPERM;
		else if (nlh->nlmsg_type == VHCA_MGMT_BIND_GUEST)
			ret = bind_guest(m, nlh, sender);
		else if (nlh->nlmsg_type == VHCA_MGMT_ATTACH_VM)
			ret = attach_vm(m, nlh, passed_fd);
		else
			ret = vhca_mgmt_handle(m->pf, nlh, nlh->nlmsg_len);

		if (ret)
			log_msg("mgmt: request (type %u seq %u) refused: %s",
				nlh->nlmsg_type, nlh->nlmsg_seq,
				strerror(-ret));
		else if (nlh->nlmsg_type == VHCA_MGMT_BIND_GUEST)
			log_msg("mgmt: VF %u bound to the guest of pid %d",
				((struct vhca_mgmt_guest *)NLMSG_DATA(nlh))->vf,
				((struct vhca_mgmt_guest *)NLMSG_DATA(nlh))->init_pid);
		else
			log_msg("mgmt: request (seq %u) applied",
				nlh->nlmsg_seq);
		if (ret || (nlh->nlmsg_flags & NLM_F_ACK))
			send_ack(fd, nlh, ret);
	}
}

/*
 * One record, and the one descriptor it may carry (an attach's RAM):
 * more than one, or a truncated control message, is refused by closing
 * what came.
 */
static ssize_t recv_record(int fd, unsigned char *buf, int *passed_fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = MGMT_RECORD_MAX };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n = recvmsg(fd, &msg, MSG_TRUNC | MSG_CMSG_CLOEXEC);

	*passed_fd = -1;
	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; c;
	     c = CMSG_NXTHDR(&msg, c)) {
		size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[4];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		memcpy(fds, CMSG_DATA(c), (nfds < 4 ? nfds : 4) * sizeof(int));
		for (size_t i = 0; i < nfds && i < 4; i++) {
			if (i == 0 && *passed_fd < 0 &&
			    !(msg.msg_flags & MSG_CTRUNC))
				*passed_fd = fds[i];
			else
				close(fds[i]);
		}
	}
	return n;
}

/* Serves one connection until it closes or we are stopped. */
static void serve_conn(struct vhca_mgmt *m, int fd)
{
	int passed_fd = -1;
	pid_t sender = 0;
	bool privileged = peer_privileged(fd, &sender);
	unsigned char *buf = malloc(MGMT_RECORD_MAX);

	if (!buf)
		return;
	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = m->stop_pipe[0], .events = POLLIN },
		};
		ssize_t n;

		/* One client at a time: an idle one is dropped. */
		int ready = poll(fds, 2, MGMT_IDLE_MS);

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0 || fds[1].revents)
			break;
		n = recv_record(fd, buf, &passed_fd);
		if (n <= 0)
			break;
		if (n > MGMT_RECORD_MAX) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)buf;

			send_ack(fd, nlh, -EMSGSIZE);
		} else {
			handle_record(m, fd, buf, (size_t)n, privileged,
				      sender, &passed_fd);
		}
		/* A descriptor no request took is not kept. */
		if (passed_fd >= 0)
			close(passed_fd);
		passed_fd = -1;
	}
	free(buf);
}

static void *serve(void *arg)
{
	struct vhca_mgmt *m = arg;

	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = m->listen_fd, .events = POLLIN },
			{ .fd = m->stop_pipe[0], .events = POLLIN },
		};
		int fd;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_msg("mgmt: poll: %s", strerror(errno));
			break;
		}
		if (fds[1].revents)
			break;
		fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_conn(m, fd);
		close(fd);
	}
	return NULL;
}

int vhca_mgmt_start(struct vhca_mgmt **out, struct vhca_pf *pf,
		    struct vhca_guests *guests, struct vhca_vms *vms,
		    const char *run_dir)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct vhca_mgmt *m;
	int ret;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->pf = pf;
	m->guests = guests;
	m->vms = vms;
	m->listen_fd = -1;
	m->stop_pipe[0] = m->stop_pipe[1] = -1;
	if ((size_t)snprintf(m->path, sizeof(m->path), "%s/" VHCA_MGMT_SOCK_NAME,
			     run_dir) >= sizeof(addr.sun_path)) {
		log_msg("mgmt: socket path %s/%s too long", run_dir,
			VHCA_MGMT_SOCK_NAME);
		free(m);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, m->path, strlen(m->path) + 1);

	if (pipe2(m->stop_pipe, O_CLOEXEC))
		goto err_errno;
	m->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (m->listen_fd < 0)
		goto err_errno;
	unlink(m->path);	/* a stale socket of a dead daemon of ours */
	/* The run dir is ours; 0600 right after bind, and peers are checked. */
	if (bind(m->listen_fd, (struct sockaddr *)&addr, sizeof(addr)))
		goto err_errno;
	if (chmod(m->path, 0600) || listen(m->listen_fd, 8))
		goto err_unlink;
	ret = pthread_create(&m->thread, NULL, serve, m);
	if (ret) {
		errno = ret;
		goto err_unlink;
	}
	*out = m;
	return 0;

err_unlink:
	unlink(m->path);
err_errno:
	ret = -errno;
	log_msg("mgmt: %s: %s", m->path, strerror(errno));
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	if (m->stop_pipe[0] >= 0) {
		close(m->stop_pipe[0]);
		close(m->stop_pipe[1]);
	}
	free(m);
	return ret;
}

void vhca_mgmt_stop(struct vhca_mgmt *m)
{
	if (!m)
		return;
	if (write(m->stop_pipe[1], "x", 1) != 1)
		log_msg("mgmt: cannot stop: %s", strerror(errno));
	pthread_join(m->thread, NULL);
	close(m->listen_fd);
	close(m->stop_pipe[0]);
	close(m->stop_pipe[1]);
	unlink(m->path);
	free(m);
}
