// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhcactl show, counters and numvfs: the PF and its VFs as sysfs shows
 * them.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vhca/text.h>

#include "vhcactl.h"

/* ---- show / counters ------------------------------------------------------------ */

static void print_attr_line(const char *label, const char *fmt, ...)
{
	char path[PATH_MAX], value[VALUE_MAX];
	va_list ap;
	int n;

	n = snprintf(path, sizeof(path), "%s/", ctl_sysfs_dir);
	va_start(ap, fmt);
	vsnprintf(path + n, sizeof(path) - (size_t)n, fmt, ap);
	va_end(ap);
	if (ctl_read_attr(path, value, sizeof(value)))
		snprintf(value, sizeof(value), "?");
	printf("  %-10s %s\n", label, value);
}

static int uverbs_of(const char *ibdev)
{
	char path[PATH_MAX], value[VALUE_MAX];
	struct dirent *e;
	int index = -1;
	DIR *dir;

	ctl_path_of(path, "class/infiniband_verbs");
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		unsigned int n;

		if (strncmp(e->d_name, "uverbs", 6) ||
		    !ctl_parse_uint(e->d_name + 6, 1u << 20, &n))
			continue;
		ctl_path_of(path, "class/infiniband_verbs/%s/ibdev", e->d_name);
		if (!ctl_read_attr(path, value, sizeof(value)) &&
		    !strcmp(value, ibdev)) {
			index = (int)n;
			break;
		}
	}
	closedir(dir);
	return index;
}

static void print_counters(const char *ibdev, const char *sub, bool all)
{
	char path[PATH_MAX], value[VALUE_MAX];
	struct dirent *e;
	DIR *dir;

	ctl_path_of(path, "class/infiniband/%s/ports/1/%s", ibdev, sub);
	dir = opendir(path);
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		ctl_path_of(path, "class/infiniband/%s/ports/1/%s/%s", ibdev,
			    sub, e->d_name);
		if (ctl_read_attr(path, value, sizeof(value)))
			continue;
		if (all || strcmp(value, "0"))
			printf("  %-34s %s\n", e->d_name, value);
	}
	closedir(dir);
}

/* The device's line in module/vhca/status: "contexts N". */
static void print_holder(const char *ibdev)
{
	char path[PATH_MAX], line[512];
	FILE *in;

	ctl_path_of(path, "module/vhca/status");
	in = fopen(path, "r");
	if (!in)
		return;
	while (fgets(line, sizeof(line), in)) {
		size_t len = strlen(ibdev);
		const char *ctx, *opened;
		unsigned int contexts, files;

		if (strncmp(line, ibdev, len) || line[len] != ' ')
			continue;
		ctx = strstr(line, " contexts ");
		if (!ctx || sscanf(ctx, " contexts %u", &contexts) != 1)
			break;
		/*
		 * An open command file holds the VF (sriov_numvfs is EBUSY)
		 * even before its context exists: "free" only with neither.
		 */
		opened = strstr(line, " open ");
		if (!opened || sscanf(opened, " open %u", &files) != 1)
			files = contexts;
		if (files)
			printf("  %-10s %u context(s), %u open file(s): in use\n",
			       "holder", contexts, files);
		else
			printf("  %-10s 0 context(s), free\n", "holder");
		break;
	}
	fclose(in);
}

/* The port's IP addresses (rdma_cm's), on one line. */
static void print_ips(const char *ibdev)
{
	char path[PATH_MAX], value[VALUE_MAX];

	ctl_path_of(path, "class/infiniband/%s/ports/1/ip_addrs", ibdev);
	if (ctl_read_attr(path, value, sizeof(value)) || !value[0])
		return;
	for (char *c = value; *c; c++)
		if (*c == '\n')
			*c = ' ';
	printf("  %-10s %s\n", "ip", value);
}

static void print_pkeys(const char *ibdev)
{
	char path[PATH_MAX], value[VALUE_MAX];
	int count;

	ctl_path_of(path, "class/infiniband/%s/ports/1/pkeys", ibdev);
	count = ctl_count_numbered(path);
	printf("  %-10s", "pkeys");
	for (int i = 0; i < count; i++) {
		ctl_path_of(path, "class/infiniband/%s/ports/1/pkeys/%d", ibdev,
			    i);
		if (ctl_read_attr(path, value, sizeof(value)) ||
		    strtoul(value, NULL, 16) == 0)
			continue;
		printf(" [%d]=%s", i, value);
	}
	printf("\n");
}

static void show_dev(const char *ibdev, int vf)
{
	char path[PATH_MAX], value[VALUE_MAX];
	int uverbs = uverbs_of(ibdev);

	if (vf < 0)
		printf("%s (PF)", ibdev);
	else
		printf("%s (VF %d)", ibdev, vf);
	if (uverbs >= 0)
		printf(" uverbs%d", uverbs);
	printf("\n");
	if (vf >= 0) {
		print_attr_line("node_guid", "class/infiniband/%s/device/sriov/%d/node",
				ctl_pf_name, vf);
		print_attr_line("port_guid", "class/infiniband/%s/device/sriov/%d/port",
				ctl_pf_name, vf);
		print_attr_line("policy", "class/infiniband/%s/device/sriov/%d/policy",
				ctl_pf_name, vf);
	} else {
		char text[VHCA_GUID_TEXT_SIZE];

		ctl_path_of(path, "class/infiniband/%s/node_guid", ibdev);
		if (!ctl_read_attr(path, value, sizeof(value))) {
			vhca_print_guid(ctl_parse_sysfs_guid(value), text);
			printf("  %-10s %s\n", "node_guid", text);
		}
		ctl_path_of(path, "class/infiniband/%s/ports/1/gids/0", ibdev);
		if (!ctl_read_attr(path, value, sizeof(value)) &&
		    strlen(value) == 39) {
			vhca_print_guid(ctl_parse_sysfs_guid(value + 20), text);
			printf("  %-10s %s\n", "port_guid", text);
		}
	}
	ctl_path_of(path, "class/infiniband/%s", ibdev);
	if (!ctl_exists(path)) {
		printf("  (no IB device %s)\n", ibdev);
		return;
	}
	print_attr_line("lid", "class/infiniband/%s/ports/1/lid", ibdev);
	print_attr_line("state", "class/infiniband/%s/ports/1/state", ibdev);
	print_attr_line("phys_state", "class/infiniband/%s/ports/1/phys_state",
			ibdev);
	print_pkeys(ibdev);
	print_ips(ibdev);
	printf("  counters (non-zero):\n");
	print_counters(ibdev, "counters", false);
	print_counters(ibdev, "hw_counters", false);
	print_holder(ibdev);
}

int cmd_show(void)
{
	unsigned int n;
	char name[NAME_MAX + 1];

	if (ctl_find_pf() || ctl_num_vfs(&n))
		return EXIT_FAILURE;
	show_dev(ctl_pf_name, -1);
	for (unsigned int vf = 0; vf < n; vf++) {
		ctl_vf_ibdev(vf, name, sizeof(name));
		show_dev(name, (int)vf);
	}
	return 0;
}

int cmd_counters(int vf)
{
	char name[NAME_MAX + 1];
	unsigned int n;

	if (ctl_find_pf() || ctl_num_vfs(&n))
		return EXIT_FAILURE;
	if (vf >= 0 && (unsigned int)vf >= n) {
		ctl_error_msg("no VF %d (%s has %u)", vf, ctl_pf_name, n);
		return EXIT_FAILURE;
	}
	if (vf < 0)
		snprintf(name, sizeof(name), "%s", ctl_pf_name);
	else
		ctl_vf_ibdev((unsigned int)vf, name, sizeof(name));
	printf("%s\n", name);
	print_counters(name, "counters", true);
	print_counters(name, "hw_counters", true);
	return 0;
}

int cmd_numvfs(unsigned int n)
{
	char path[PATH_MAX], value[32];
	int ret;

	if (ctl_find_pf())
		return EXIT_FAILURE;
	ctl_path_of(path, "class/infiniband/%s/device/sriov_numvfs",
		    ctl_pf_name);
	snprintf(value, sizeof(value), "%u", n);
	ret = ctl_write_attr(path, value);
	if (ret) {
		ctl_error_msg("sriov_numvfs %u: %s%s", n, strerror(-ret),
			      ret == -EBUSY ? " (VFs exist: set 0 first, or a VF is in use)" : "");
		return EXIT_FAILURE;
	}
	return 0;
}

