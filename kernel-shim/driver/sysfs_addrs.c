// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The IP addresses of a port in the sysfs view (device/addr.c holds
 * them): the PF's device/sriov/<vf>/ip, which the admin writes (the whole
 * list at once, "ADDR/PREFIX" separated by spaces or commas, "" or
 * "none" to clear; all or nothing, EINVAL for any bad or taken address),
 * and every function's ports/1/ip_addrs, which a guest reads to learn
 * the addresses rdma_cm knows it by.  One address a line.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "device/pf.h"
#include "sysfs_nodes.h"

int sysfs_show_addrs(const struct vhca_dev *dev, FILE *out)
{
	char buf[64];

	for (unsigned int i = 0; i < dev->num_addrs; i++) {
		vhca_ip_addr_format(&dev->addrs[i], buf, sizeof(buf));
		fprintf(out, "%s\n", buf);
	}
	return 0;
}

static bool is_sep(char c)
{
	return c == ',' || isspace((unsigned char)c);
}

int sysfs_store_vf_addrs(struct vhca_sysfs *fs, unsigned int vf,
			 const char *buf, size_t len)
{
	struct vhca_ip_addr addrs[VHCA_ADDRS_MAX];
	unsigned int n = 0;
	size_t i = 0;

	while (len && is_sep(buf[len - 1]))
		len--;
	while (i < len && is_sep(buf[i]))
		i++;
	if (len - i == 4 && !memcmp(buf + i, "none", 4))
		i = len;
	while (i < len) {
		size_t start = i;

		while (i < len && !is_sep(buf[i]))
			i++;
		if (n == VHCA_ADDRS_MAX ||
		    vhca_ip_addr_parse(buf + start, i - start, &addrs[n]))
			return -EINVAL;
		n++;
		while (i < len && is_sep(buf[i]))
			i++;
	}
	return vhca_pf_set_vf_addrs(fs->pf, vf, addrs, n);
}
