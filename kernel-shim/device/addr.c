// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The IP addresses of ports (pf.h): what the admin may give a VF, the
 * text form sysfs and mgmt.sock speak, and who holds an address or a
 * GID.  A VF's port with addresses is what an IPoIB interface on top of
 * that port would be on a real host: rdma_cm resolves an address to the
 * port holding it (driver/cm_addr.c) through VHCA_DEVCMD_RESOLVE_ADDR.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pf.h"

static unsigned int addr_len(uint8_t family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static bool all_zero(const uint8_t *p, unsigned int n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/*
 * A unicast address an interface may hold: not unspecified, loopback,
 * multicast, IPv4 limited broadcast or class E, nor an IPv4-mapped IPv6
 * address (the IPv4 form says the same).
 */
bool vhca_ip_addr_valid(const struct vhca_ip_addr *a)
{
	static const uint8_t loop6[16] = { [15] = 1 };
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	switch (a->family) {
	case AF_INET:
		if (a->prefix_len > 32 || all_zero(a->addr, 4) ||
		    a->addr[0] == 127 || a->addr[0] >= 224 ||
		    !all_zero(a->addr + 4, 12))
			return false;
		return true;
	case AF_INET6:
		if (a->prefix_len > 128 || all_zero(a->addr, 16) ||
		    !memcmp(a->addr, loop6, 16) || a->addr[0] == 0xff ||
		    !memcmp(a->addr, mapped, 12))
			return false;
		return true;
	default:
		return false;
	}
}

bool vhca_ip_addr_same(const struct vhca_ip_addr *a,
		       const struct vhca_ip_addr *b)
{
	return a->family == b->family && addr_len(a->family) &&
	       !memcmp(a->addr, b->addr, addr_len(a->family));
}

bool vhca_ip_addr_in_prefix(const struct vhca_ip_addr *prefix,
			    const struct vhca_ip_addr *addr)
{
	unsigned int bits = prefix->prefix_len, bytes = bits / 8;

	if (prefix->family != addr->family || bits > 8 * addr_len(addr->family))
		return false;
	if (memcmp(prefix->addr, addr->addr, bytes))
		return false;
	if (bits % 8) {
		uint8_t mask = (uint8_t)(0xff00u >> (bits % 8));

		return (prefix->addr[bytes] & mask) == (addr->addr[bytes] & mask);
	}
	return true;
}

int vhca_ip_addrs_check(const struct vhca_ip_addr *addrs, unsigned int n)
{
	if (n > VHCA_ADDRS_MAX)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		if (!vhca_ip_addr_valid(&addrs[i]))
			return -EINVAL;
		for (unsigned int j = 0; j < i; j++)
			if (vhca_ip_addr_same(&addrs[i], &addrs[j]))
				return -EINVAL;
	}
	return 0;
}

static bool holds(const struct vhca_dev *dev, const struct vhca_ip_addr *a)
{
	for (unsigned int i = 0; i < dev->num_addrs; i++)
		if (vhca_ip_addr_same(&dev->addrs[i], a))
			return true;
	return false;
}

struct vhca_dev *vhca_pf_dev_by_addr(struct vhca_pf *pf,
				     const struct vhca_ip_addr *a)
{
	if (!pf->pf_hidden && holds(&pf->dev, a))
		return &pf->dev;
	for (unsigned int i = 0; i < pf->num_vfs; i++)
		if (holds(pf->vfs[i], a))
			return pf->vfs[i];
	return NULL;
}

struct vhca_dev *vhca_pf_dev_by_gid(struct vhca_pf *pf, uint64_t prefix,
				    uint64_t guid)
{
	/* Every port has GID 0 only: the subnet prefix and its GUID. */
	if (prefix != VHCA_SUBNET_PREFIX)
		return NULL;
	if (!pf->pf_hidden && pf->dev.port_guid == guid)
		return &pf->dev;
	for (unsigned int i = 0; i < pf->num_vfs; i++)
		if (pf->vfs[i]->port_guid == guid)
			return pf->vfs[i];
	return NULL;
}

int vhca_ip_addr_parse(const char *text, size_t len, struct vhca_ip_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long prefix;

	if (!len || len >= sizeof(buf) || memchr(text, 0, len))
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = 0;
	memset(a, 0, sizeof(*a));
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = 0;
	if (inet_pton(AF_INET, buf, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, a->addr) == 1)
		a->family = AF_INET6;
	else
		return -EINVAL;
	prefix = 8 * addr_len(a->family);
	if (slash) {
		/* Decimal digits only: no sign, no spaces, no "0x". */
		if (*slash < '0' || *slash > '9')
			return -EINVAL;
		prefix = strtoul(slash, &end, 10);
		if (*end || prefix > 8 * addr_len(a->family))
			return -EINVAL;
	}
	a->prefix_len = (uint8_t)prefix;
	return vhca_ip_addr_valid(a) ? 0 : -EINVAL;
}

void vhca_ip_addr_format(const struct vhca_ip_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (!inet_ntop(a->family, a->addr, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, len, "%s/%u", ip, a->prefix_len);
}
