/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhcactl's insides, shared by its files:
 *   vhcactl.c          the command line, messages, value parsing
 *   vhcactl_sysfs.c    reading and writing the PF's sysfs attributes
 *   vhcactl_show.c     show, counters, numvfs
 *   vhcactl_plan.c     plans: parsing (vf N set, apply FILE)
 *   vhcactl_apply.c    plans: validation and sysfs writes with rollback
 *   vhcactl_ip.c       plans: IP addresses of VFs
 *   vhcactl_netlink.c  rtnetlink: plans to vhcad's mgmt.sock, link-set-guid
 */
#ifndef VHCACTL_H
#define VHCACTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_USAGE 2
#define VALUE_MAX 512	/* eight IPv6 addresses fit */
#define MAX_PKEYS 1024
#define CTL_IPS_MAX 8		/* addresses of a VF's port */
#define DEFAULT_SYSFS "/run/vhca/sys"
#define MGMT_SOCK_NAME "mgmt.sock"

/* vhca's P_Key table extension of IFLA_VF_INFO (kernel-shim/mgmt.h). */
#define VHCA_IFLA_VF_PKEY_TABLE 0x3f01

/* ---- options (vhcactl.c) -------------------------------------------------------- */

extern const char *ctl_sysfs_dir;	/* --sysfs DIR */
extern const char *ctl_pf_name;		/* --dev PF; NULL: find it */
extern const char *ctl_run_dir_opt;	/* --run-dir: vhcad's run dir */
extern bool ctl_sysfs_only;		/* --sysfs-only: no mgmt socket */

/* ---- messages and values (vhcactl.c) -------------------------------------------- */

/* Prints the message and the --help hint; returns EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
void ctl_error_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* NULL or what is wrong with the text. */
const char *ctl_parse_guid(const char *text, uint64_t *out);
const char *ctl_parse_pkey(const char *text, uint16_t *out);
const char *ctl_parse_policy(const char *text);
/* Strict decimal 0..max. */
bool ctl_parse_uint(const char *text, unsigned int max, unsigned int *out);

/* ---- sysfs (vhcactl_sysfs.c) ---------------------------------------------------- */

/* buf (PATH_MAX bytes) = the sysfs root / the formatted path. */
void ctl_path_of(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reads a whole attribute, without its trailing newline; 0 or -errno. */
int ctl_read_attr(const char *path, char *buf, size_t len);
/* One write() of value + "\n", as `echo value > path`; 0 or -errno. */
int ctl_write_attr(const char *path, const char *value);
bool ctl_exists(const char *path);
/* Entries of a directory that are numbers: their count (max + 1). */
int ctl_count_numbered(const char *path);
/* Sets ctl_pf_name: --dev, else vhca0, else the first device with SR-IOV. */
int ctl_find_pf(void);
int ctl_num_vfs(unsigned int *out);
/* The IB device of VF n: in device/virtfnN/infiniband/, else PF_vfN. */
void ctl_vf_ibdev(unsigned int vf, char *buf, size_t len);
/* "xxxx:xxxx:xxxx:xxxx" (node_guid) or the low half of a GID. */
uint64_t ctl_parse_sysfs_guid(const char *text);

/* ---- commands --------------------------------------------------------------------- */

/* Each returns the exit status. */
int cmd_show(void);
int cmd_counters(int vf);		/* vf < 0: the PF */
int cmd_numvfs(unsigned int n);
int cmd_vf_set(unsigned int vf, char **words, int count);
int cmd_apply(const char *file);
int cmd_link_set_guid(int argc, char **argv);

/* ---- plans (vhcactl_plan.c, _apply.c, _netlink.c) ------------------------------- */

struct vf_req {
	unsigned int vf;
	int line;
	bool has_node, has_port, has_policy, has_pkeys, has_ips;
	uint64_t node, port;
	char ips[CTL_IPS_MAX * 48];	/* space-separated, "" for none */
	char policy[8];
	unsigned int npkeys;
	uint16_t pkeys[MAX_PKEYS];
};

struct plan {
	const char *file;	/* NULL: the command line */
	struct vf_req *reqs;
	unsigned int count, cap;
};

/* A message about a line of the plan: "FILE:LINE: ", or "vhcactl: ". */
void ctl_plan_error(const struct plan *plan, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "ip A/P,B/Q" or "ip none" of one VF (vhcactl_ip.c); NULL or the message. */
const char *ctl_parse_ips(struct vf_req *r, const char *value, char *msg,
			  size_t msg_len);

/* No address on two ports in the state the plan leaves; 0 or -1 (said). */
int ctl_check_ip_clashes(struct plan *plan, unsigned int num_vfs);

/* Validates the plan as a whole, then applies it all or nothing. */
int ctl_run_plan(struct plan *plan);

/* The run dir whose mgmt.sock takes plans, or NULL (then sysfs). */
const char *ctl_plan_run_dir(char *buf, size_t len);
/* The whole plan as one RTM_SETLINK to vhcad; 0 or -1 (said). */
int ctl_send_plan(struct plan *plan, const char *run_dir);

#endif /* VHCACTL_H */
