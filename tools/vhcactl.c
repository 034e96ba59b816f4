// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhcactl: provisioning of SR-IOV VFs, through the PF's sysfs attributes
 * (device/sriov/<vf>/{node,port,policy,pkeys/<i>}, mlx5-style) or, for VF
 * GUIDs, through rtnetlink RTM_SETLINK built with libnl-route-3 and sent
 * to the kernel (a real PF netdev) or to vhcad's DIR/mgmt.sock.
 *
 *   vhcactl [--sysfs DIR] [--dev PF] show
 *   vhcactl [--sysfs DIR] [--dev PF] vf N set [node_guid G] [port_guid G]
 *                                          [policy P] [pkeys P1,P2,...]
 *   vhcactl [--sysfs DIR] [--dev PF] numvfs N
 *   vhcactl [--sysfs DIR] [--dev PF] counters [vf N]
 *   vhcactl [--sysfs DIR] [--dev PF] apply FILE
 *   vhcactl link-set-guid (--pf-netdev IFNAME | --run-dir DIR) vf N
 *           [node_guid G] [port_guid G] [state auto|enable|disable]
 *
 * Exit status: 0 done, 1 failed (nothing changed unless said), 2 usage.
 *
 * This file: the command line, messages and values; the rest, by
 * responsibility, in vhcactl_*.c (vhcactl.h).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vhca/text.h>

#include "vhcactl.h"

const char *ctl_sysfs_dir;
const char *ctl_pf_name;
const char *ctl_run_dir_opt;
bool ctl_sysfs_only;

/* ---- messages ------------------------------------------------------------------ */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vhcactl [--sysfs DIR] [--dev PF] COMMAND\n"
		"  show                            PF and VFs: GUIDs, LID, policy, state, P_Keys, counters\n"
		"  vf N set [node_guid G] [port_guid G] [policy Up|Down|Follow] [pkeys P1,P2,...|none]\n"
		"           [ip ADDR/PREFIX[,ADDR/PREFIX...]|none]\n"
		"                                  (pkeys replaces the whole table, ip the VF's IPv4/IPv6\n"
		"                                  addresses, which rdma_cm resolves)\n"
		"  numvfs N                        write sriov_numvfs\n"
		"  counters [vf N]                 port counters of the PF or of VF N\n"
		"  apply FILE                      lines 'vf N [node_guid G] [port_guid G] [policy P] [pkey P ...|none] [ip A/P,...]',\n"
		"                                  validated as a whole, then applied all or nothing\n"
		"  link-set-guid (--pf-netdev IFNAME | --run-dir DIR) vf N [node_guid G] [port_guid G]\n"
		"                [state auto|enable|disable]\n"
		"                                  rtnetlink RTM_SETLINK to the kernel or to DIR/" MGMT_SOCK_NAME "\n"
		"\n"
		"  G: xx:xx:xx:xx:xx:xx:xx:xx   P: hex P_Key (0x8001, 8001)\n"
		"  --sysfs DIR    sysfs root (default $SYSFS_PATH, else " DEFAULT_SYSFS ")\n"
		"  --dev PF       the PF's IB device (default: the first with SR-IOV)\n"
		"  --run-dir DIR  vhcad's run dir: plans go to DIR/" MGMT_SOCK_NAME " as one\n"
		"                 message (default: the parent of a --sysfs DIR/sys that has one)\n"
		"  --sysfs-only   apply plans by sysfs writes (rolled back on failure)\n");
}

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhcactl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(vhcactl --help for usage)\n");
	return EXIT_USAGE;
}

void ctl_error_msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhcactl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* ---- values -------------------------------------------------------------------- */


/* Strict xx:xx:xx:xx:xx:xx:xx:xx; 0 and all-ones are no GUIDs. */
const char *ctl_parse_guid(const char *text, uint64_t *out)
{
	uint64_t guid;

	if (!vhca_parse_guid(text, strlen(text), &guid))
		return "a GUID is xx:xx:xx:xx:xx:xx:xx:xx";
	if (guid == 0 || guid == UINT64_MAX)
		return "GUID 0 and ff:ff:ff:ff:ff:ff:ff:ff are reserved";
	*out = guid;
	return NULL;
}

/* "0x8001" or "8001": 1-4 hex digits; a usable (non-empty) P_Key. */
const char *ctl_parse_pkey(const char *text, uint16_t *out)
{
	uint16_t value;

	if (!vhca_parse_pkey(text, strlen(text), &value))
		return "a P_Key is 1-4 hex digits, e.g. 0x8001";
	if (!(value & 0x7fff))
		return "P_Key 0x0000 and 0x8000 name no partition";
	*out = value;
	return NULL;
}

const char *ctl_parse_policy(const char *text)
{
	if (strcmp(text, "Up") && strcmp(text, "Down") && strcmp(text, "Follow"))
		return "a policy is Up, Down or Follow";
	return NULL;
}

/* Strict decimal 0..max. */
bool ctl_parse_uint(const char *text, unsigned int max, unsigned int *out)
{
	unsigned long value;

	if (!vhca_parse_decimal(text, strlen(text), max, &value))
		return false;
	*out = (unsigned int)value;
	return true;
}

/* ---- main ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "sysfs", required_argument, NULL, 's' },
		{ "dev", required_argument, NULL, 'd' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "sysfs-only", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	int c;

	ctl_sysfs_dir = getenv("SYSFS_PATH");
	if (!ctl_sysfs_dir || !*ctl_sysfs_dir)
		ctl_sysfs_dir = DEFAULT_SYSFS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!*optarg)
				return ctl_usage_error(
					"--sysfs needs a directory");
			ctl_sysfs_dir = optarg;
			break;
		case 'd':
			if (!*optarg || strchr(optarg, '/'))
				return ctl_usage_error("bad --dev '%s'",
						       optarg);
			ctl_pf_name = optarg;
			break;
		case 'r':
			if (!*optarg)
				return ctl_usage_error("--run-dir needs a directory");
			ctl_run_dir_opt = optarg;
			break;
		case 'o':
			ctl_sysfs_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return ctl_usage_error("unknown option or missing value: '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return ctl_usage_error("no command");
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;

	if (!strcmp(cmd, "show")) {
		if (argc)
			return ctl_usage_error("show takes no argument");
		return cmd_show();
	}
	if (!strcmp(cmd, "numvfs")) {
		unsigned int n;

		if (argc != 1 || !ctl_parse_uint(argv[0], 65535, &n))
			return ctl_usage_error("numvfs N (N a decimal number)");
		return cmd_numvfs(n);
	}
	if (!strcmp(cmd, "counters")) {
		unsigned int vf;

		if (!argc)
			return cmd_counters(-1);
		if (argc != 2 || strcmp(argv[0], "vf") ||
		    !ctl_parse_uint(argv[1], 65535, &vf))
			return ctl_usage_error("counters [vf N]");
		return cmd_counters((int)vf);
	}
	if (!strcmp(cmd, "vf")) {
		unsigned int vf;

		if (argc < 2 || !ctl_parse_uint(argv[0], 65535, &vf) ||
		    strcmp(argv[1], "set"))
			return ctl_usage_error("vf N set [node_guid G] [port_guid G] [policy P] [pkeys P1,P2,...]");
		return cmd_vf_set(vf, argv + 2, argc - 2);
	}
	if (!strcmp(cmd, "apply")) {
		if (argc != 1)
			return ctl_usage_error("apply FILE");
		return cmd_apply(argv[0]);
	}
	if (!strcmp(cmd, "link-set-guid"))
		return cmd_link_set_guid(argc, argv);
	return ctl_usage_error("unknown command '%s'", cmd);
}
