// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * --net BR (vm.h): the VM's eth0 on the host's bridge BR, through a tap
 * of its own, with an address of BR's IPv4 subnet.
 *
 * The address: host part 10+N for the VM of VF N, 100 upwards for a VM
 * without a VF, the next free one when taken (wrapping round the subnet,
 * never the bridge's own).  "Taken" means leased: a VM holds an flock()
 * on /run/vhca-vm/BR-ADDR.lock for its life and unlinks the file at exit
 * (a lease of a killed vhca-vm is a file nobody locks, free again).  The
 * MAC address follows the IPv4 address (52:54:00 and its last three
 * bytes), so two VMs never share one either.
 *
 * The tap is not persistent: it exists while an fd of it is open (ours and
 * QEMU's), so the kernel removes it when the VM ends however it ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/route.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "vm.h"

#define LEASE_DIR "/run/vhca-vm"
#define HOST_PART_VF_BASE 10
#define HOST_PART_NO_VF 100

static int inet_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		tool_fail("socket: %s", strerror(errno));
	return fd;
}

static void ifreq_name(struct ifreq *ifr, const char *name)
{
	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
}

static struct in_addr ifreq_addr(const struct ifreq *ifr)
{
	struct sockaddr_in sin;

	memcpy(&sin, &ifr->ifr_addr, sizeof(sin));
	return sin.sin_addr;
}

static void set_ifreq_addr(struct ifreq *ifr, struct in_addr addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = addr };

	memcpy(&ifr->ifr_addr, &sin, sizeof(sin));
}

/* The bridge's (primary) IPv4 address and prefix. */
static void bridge_address(struct vm_net *net)
{
	char path[128];
	struct ifreq ifr;
	uint32_t mask;
	int fd;

	if (strlen(net->bridge) >= IFNAMSIZ)
		tool_fail("--net '%s': not an interface name", net->bridge);
	snprintf(path, sizeof(path), "/sys/class/net/%s", net->bridge);
	if (access(path, F_OK))
		tool_fail("--net %s: no such interface here", net->bridge);
	snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", net->bridge);
	if (access(path, F_OK))
		tool_fail("--net %s: not a bridge (ip link add BR type bridge)", net->bridge);
	fd = inet_socket();
	ifreq_name(&ifr, net->bridge);
	if (ioctl(fd, SIOCGIFADDR, &ifr))
		tool_fail("--net %s: the bridge has no IPv4 address (ip addr add 10.0.0.1/24 dev %s)",
			  net->bridge, net->bridge);
	net->gateway = ifreq_addr(&ifr);
	if (ioctl(fd, SIOCGIFNETMASK, &ifr))
		tool_fail("--net %s: no netmask: %s", net->bridge, strerror(errno));
	close(fd);
	mask = ntohl(ifreq_addr(&ifr).s_addr);
	net->prefix = (unsigned int)__builtin_popcount(mask);
	if (net->prefix > 30 || net->prefix < 8)
		tool_fail("--net %s: a /%u subnet; vhca-vm needs a prefix of 8 to 30",
			  net->bridge, net->prefix);
}

/*
 * Takes the lease on @addr: true if ours.  The file may be unlinked by its
 * previous holder between our open and our flock(); then the lock we got
 * is on a file nobody else will see, so try again with the path's file.
 */
static bool take_lease(struct vm_net *net, struct in_addr addr)
{
	char text[INET_ADDRSTRLEN], *path;

	inet_ntop(AF_INET, &addr, text, sizeof(text));
	if (asprintf(&path, LEASE_DIR "/%s-%s.lock", net->bridge, text) < 0)
		tool_fail("out of memory");
	for (;;) {
		struct stat by_fd, by_path;
		int fd;

		if (mkdir(LEASE_DIR, 0700) && errno != EEXIST)
			tool_fail("cannot create " LEASE_DIR ": %s", strerror(errno));
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;	/* the directory went away */
			tool_fail("cannot open %s: %s", path, strerror(errno));
		}
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			close(fd);
			free(path);
			return false;
		}
		if (!fstat(fd, &by_fd) && !stat(path, &by_path) &&
		    by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev) {
			net->lease_fd = fd;
			net->lease_path = path;
			return true;
		}
		close(fd);
	}
}

static void choose_address(struct vm *vm)
{
	struct vm_net *net = &vm->net;
	uint32_t mask = net->prefix ? ~0U << (32 - net->prefix) : 0;
	uint32_t base = ntohl(net->gateway.s_addr) & mask;
	uint32_t hosts = ~mask - 1;	/* 1 .. hosts, without broadcast */
	uint32_t start = vm->no_vf ? HOST_PART_NO_VF : HOST_PART_VF_BASE + vm->vf;

	if (start > hosts)
		start = 1;
	for (uint32_t i = 0; i < hosts; i++) {
		uint32_t host = (start - 1 + i) % hosts + 1;
		struct in_addr addr = { .s_addr = htonl(base | host) };

		if (addr.s_addr == net->gateway.s_addr || !take_lease(net, addr))
			continue;
		net->addr = addr;
		net->mac[0] = 0x52;
		net->mac[1] = 0x54;
		net->mac[2] = 0x00;
		memcpy(&net->mac[3], (unsigned char *)&addr.s_addr + 1, 3);
		return;
	}
	tool_fail("--net %s: every address of its /%u subnet is taken", net->bridge,
		  net->prefix);
}

/* A tap on the bridge, up, gone with its last fd. */
static void create_tap(struct vm_net *net)
{
	struct ifreq ifr;
	int sock, index;

	net->tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (net->tap_fd < 0)
		tool_fail("cannot open /dev/net/tun: %s", strerror(errno));
	ifreq_name(&ifr, "vhcavm%d");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(net->tap_fd, TUNSETIFF, &ifr))
		tool_fail("cannot create a tap device: %s", strerror(errno));
	snprintf(net->tap, sizeof(net->tap), "%s", ifr.ifr_name);

	sock = inet_socket();
	ifreq_name(&ifr, net->tap);
	if (ioctl(sock, SIOCGIFINDEX, &ifr))
		tool_fail("tap %s: %s", net->tap, strerror(errno));
	index = ifr.ifr_ifindex;
	ifreq_name(&ifr, net->bridge);
	ifr.ifr_ifindex = index;
	if (ioctl(sock, SIOCBRADDIF, &ifr))
		tool_fail("cannot add tap %s to bridge %s: %s", net->tap,
			  net->bridge, strerror(errno));
	ifreq_name(&ifr, net->tap);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr))
		tool_fail("tap %s: %s", net->tap, strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr))
		tool_fail("cannot bring tap %s up: %s", net->tap, strerror(errno));
	close(sock);
}

void vm_net_setup(struct vm *vm)
{
	char addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];

	vm->net.bridge = vm->bridge;
	vm->net.lease_fd = -1;
	bridge_address(&vm->net);
	choose_address(vm);
	create_tap(&vm->net);
	vm->has_net = true;
	inet_ntop(AF_INET, &vm->net.addr, addr, sizeof(addr));
	inet_ntop(AF_INET, &vm->net.gateway, gw, sizeof(gw));
	tool_warn("network: %s/%u on bridge %s (tap %s, gateway %s)", addr,
		  vm->net.prefix, vm->net.bridge, vm->net.tap, gw);
}

void vm_net_cleanup(struct vm *vm)
{
	if (vm->net.lease_path) {
		/* Unlinked while locked: nobody can take it half-removed. */
		unlink(vm->net.lease_path);
		close(vm->net.lease_fd);
		rmdir(LEASE_DIR);	/* if empty; others may hold leases */
		free(vm->net.lease_path);
		vm->net.lease_path = NULL;
	}
	if (vm->has_net && vm->net.tap_fd >= 0) {
		close(vm->net.tap_fd);
		vm->net.tap_fd = -1;
	}
}

/* ---- inside the VM ---------------------------------------------------------------- */

static void link_up(int sock, const char *name)
{
	struct ifreq ifr;

	ifreq_name(&ifr, name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr))
		tool_fail("no interface %s in the VM: %s", name, strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr))
		tool_fail("cannot bring %s up: %s", name, strerror(errno));
}

void vm_guest_net(const char *addr_prefix, const char *gateway)
{
	int sock = inet_socket();
	struct in_addr addr, gw;
	unsigned int prefix;
	char text[INET_ADDRSTRLEN];
	struct ifreq ifr;
	struct rtentry route = { .rt_flags = RTF_UP | RTF_GATEWAY };
	struct sockaddr_in any = { .sin_family = AF_INET };

	/* Open MPI's launcher and PMIx need loopback in any VM. */
	link_up(sock, "lo");
	if (!addr_prefix) {
		close(sock);
		return;
	}
	if (sscanf(addr_prefix, "%15[0-9.]/%u", text, &prefix) != 2 ||
	    !inet_pton(AF_INET, text, &addr) || prefix > 32)
		tool_fail("bad address %s", addr_prefix);
	ifreq_name(&ifr, "eth0");
	set_ifreq_addr(&ifr, addr);
	if (ioctl(sock, SIOCSIFADDR, &ifr))
		tool_fail("cannot set eth0's address: %s", strerror(errno));
	set_ifreq_addr(&ifr, (struct in_addr){
		.s_addr = htonl(prefix ? ~0U << (32 - prefix) : 0) });
	if (ioctl(sock, SIOCSIFNETMASK, &ifr))
		tool_fail("cannot set eth0's netmask: %s", strerror(errno));
	link_up(sock, "eth0");
	if (gateway && inet_pton(AF_INET, gateway, &gw) == 1) {
		struct sockaddr_in via = { .sin_family = AF_INET, .sin_addr = gw };

		memcpy(&route.rt_dst, &any, sizeof(any));
		memcpy(&route.rt_genmask, &any, sizeof(any));
		memcpy(&route.rt_gateway, &via, sizeof(via));
		/* The host may not route: a default route that leads nowhere is harmless. */
		if (ioctl(sock, SIOCADDRT, &route) && errno != EEXIST)
			tool_fail("cannot add the default route: %s", strerror(errno));
	}
	close(sock);
}
