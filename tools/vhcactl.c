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
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/route/link.h>
#include <netlink/route/link/sriov.h>

#include <vhca/text.h>

#define EXIT_USAGE 2
#define VALUE_MAX 128
#define MAX_PKEYS 1024
#define DEFAULT_SYSFS "/run/vhca/sys"
#define MGMT_SOCK_NAME "mgmt.sock"

static const char *sysfs_dir;
static const char *pf_name;	/* NULL: find it */
static const char *run_dir_opt;	/* --run-dir: vhcad's run dir */
static bool sysfs_only;		/* --sysfs-only: never the mgmt socket */

/* vhca's P_Key table extension of IFLA_VF_INFO (kernel-shim/mgmt.h). */
#define VHCA_IFLA_VF_PKEY_TABLE 0x3f01

/* ---- messages ------------------------------------------------------------------ */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vhcactl [--sysfs DIR] [--dev PF] COMMAND\n"
		"  show                            PF and VFs: GUIDs, LID, policy, state, P_Keys, counters\n"
		"  vf N set [node_guid G] [port_guid G] [policy Up|Down|Follow] [pkeys P1,P2,...|none]\n"
		"                                  (pkeys replaces the whole table)\n"
		"  numvfs N                        write sriov_numvfs\n"
		"  counters [vf N]                 port counters of the PF or of VF N\n"
		"  apply FILE                      lines 'vf N [node_guid G] [port_guid G] [policy P] [pkey P ...|none]',\n"
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

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhcactl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(vhcactl --help for usage)\n");
	return EXIT_USAGE;
}

static void error_msg(const char *fmt, ...)
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
static const char *parse_guid(const char *text, uint64_t *out)
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
static const char *parse_pkey(const char *text, uint16_t *out)
{
	uint16_t value;

	if (!vhca_parse_pkey(text, strlen(text), &value))
		return "a P_Key is 1-4 hex digits, e.g. 0x8001";
	if (!(value & 0x7fff))
		return "P_Key 0x0000 and 0x8000 name no partition";
	*out = value;
	return NULL;
}

static const char *parse_policy(const char *text)
{
	if (strcmp(text, "Up") && strcmp(text, "Down") && strcmp(text, "Follow"))
		return "a policy is Up, Down or Follow";
	return NULL;
}

/* Strict decimal 0..max. */
static bool parse_uint(const char *text, unsigned int max, unsigned int *out)
{
	unsigned long value;

	if (!vhca_parse_decimal(text, strlen(text), max, &value))
		return false;
	*out = (unsigned int)value;
	return true;
}

/* ---- sysfs ----------------------------------------------------------------------- */

static void path_of(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(buf, PATH_MAX, "%s/", sysfs_dir);
	va_start(ap, fmt);
	vsnprintf(buf + n, PATH_MAX - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Reads a whole attribute, without its trailing newline; 0 or -errno. */
static int read_attr(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	close(fd);
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return 0;
}

/* One write() of value + "\n", as `echo value > path`; 0 or -errno. */
static int write_attr(const char *path, const char *value)
{
	char line[VALUE_MAX + 2];
	int fd, ret = 0;
	size_t len = (size_t)snprintf(line, sizeof(line), "%s\n", value);

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, line, len) != (ssize_t)len)
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

static bool exists(const char *path)
{
	struct stat st;

	return !stat(path, &st);
}

/* Entries of a directory that are numbers: their count (max + 1). */
static int count_numbered(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	int count = 0;

	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		unsigned int n;

		if (parse_uint(e->d_name, 1u << 20, &n) && (int)n + 1 > count)
			count = (int)n + 1;
	}
	closedir(dir);
	return count;
}

static char found_pf[NAME_MAX + 1];

/* The PF: --dev, else vhca0, else the first device with sriov_numvfs. */
static int find_pf(void)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dir;

	if (pf_name)
		goto check;
	path_of(path, "class/infiniband/vhca0/device/sriov_numvfs");
	if (exists(path)) {
		pf_name = "vhca0";
		return 0;
	}
	path_of(path, "class/infiniband");
	dir = opendir(path);
	if (!dir) {
		error_msg("%s: %s", path, strerror(errno));
		return -1;
	}
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		path_of(path, "class/infiniband/%s/device/sriov_numvfs",
			e->d_name);
		if (exists(path)) {
			snprintf(found_pf, sizeof(found_pf), "%s", e->d_name);
			pf_name = found_pf;
			break;
		}
	}
	closedir(dir);
	if (!pf_name) {
		error_msg("no SR-IOV capable IB device under %s/class/infiniband",
			  sysfs_dir);
		return -1;
	}
check:
	path_of(path, "class/infiniband/%s/device/sriov_numvfs", pf_name);
	if (!exists(path)) {
		error_msg("%s: no such SR-IOV PF (%s)", pf_name, path);
		return -1;
	}
	return 0;
}

static int num_vfs(unsigned int *out)
{
	char path[PATH_MAX], value[VALUE_MAX];
	int ret;

	path_of(path, "class/infiniband/%s/device/sriov_numvfs", pf_name);
	ret = read_attr(path, value, sizeof(value));
	if (ret || !parse_uint(value, 1u << 16, out)) {
		error_msg("%s: %s", path, ret ? strerror(-ret) : "unreadable");
		return -1;
	}
	return 0;
}

/* The IB device of VF n: in device/virtfnN/infiniband/, else PF_vfN. */
static void vf_ibdev(unsigned int vf, char *buf, size_t len)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dir;

	path_of(path, "class/infiniband/%s/device/virtfn%u/infiniband",
		pf_name, vf);
	dir = opendir(path);
	if (dir) {
		while ((e = readdir(dir)))
			if (e->d_name[0] != '.') {
				snprintf(buf, len, "%s", e->d_name);
				closedir(dir);
				return;
			}
		closedir(dir);
	}
	snprintf(buf, len, "%s_vf%u", pf_name, vf);
}

/* ---- show / counters ------------------------------------------------------------ */

static uint64_t parse_sysfs_guid(const char *text);

static void print_attr_line(const char *label, const char *fmt, ...)
{
	char path[PATH_MAX], value[VALUE_MAX];
	va_list ap;
	int n;

	n = snprintf(path, sizeof(path), "%s/", sysfs_dir);
	va_start(ap, fmt);
	vsnprintf(path + n, sizeof(path) - (size_t)n, fmt, ap);
	va_end(ap);
	if (read_attr(path, value, sizeof(value)))
		snprintf(value, sizeof(value), "?");
	printf("  %-10s %s\n", label, value);
}

static int uverbs_of(const char *ibdev)
{
	char path[PATH_MAX], value[VALUE_MAX];
	struct dirent *e;
	int index = -1;
	DIR *dir;

	path_of(path, "class/infiniband_verbs");
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		unsigned int n;

		if (strncmp(e->d_name, "uverbs", 6) ||
		    !parse_uint(e->d_name + 6, 1u << 20, &n))
			continue;
		path_of(path, "class/infiniband_verbs/%s/ibdev", e->d_name);
		if (!read_attr(path, value, sizeof(value)) &&
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

	path_of(path, "class/infiniband/%s/ports/1/%s", ibdev, sub);
	dir = opendir(path);
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		path_of(path, "class/infiniband/%s/ports/1/%s/%s", ibdev, sub,
			e->d_name);
		if (read_attr(path, value, sizeof(value)))
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

	path_of(path, "module/vhca/status");
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

static void print_pkeys(const char *ibdev)
{
	char path[PATH_MAX], value[VALUE_MAX];
	int count;

	path_of(path, "class/infiniband/%s/ports/1/pkeys", ibdev);
	count = count_numbered(path);
	printf("  %-10s", "pkeys");
	for (int i = 0; i < count; i++) {
		path_of(path, "class/infiniband/%s/ports/1/pkeys/%d", ibdev, i);
		if (read_attr(path, value, sizeof(value)) ||
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
				pf_name, vf);
		print_attr_line("port_guid", "class/infiniband/%s/device/sriov/%d/port",
				pf_name, vf);
		print_attr_line("policy", "class/infiniband/%s/device/sriov/%d/policy",
				pf_name, vf);
	} else {
		char text[VHCA_GUID_TEXT_SIZE];

		path_of(path, "class/infiniband/%s/node_guid", ibdev);
		if (!read_attr(path, value, sizeof(value))) {
			vhca_print_guid(parse_sysfs_guid(value), text);
			printf("  %-10s %s\n", "node_guid", text);
		}
		path_of(path, "class/infiniband/%s/ports/1/gids/0", ibdev);
		if (!read_attr(path, value, sizeof(value)) &&
		    strlen(value) == 39) {
			vhca_print_guid(parse_sysfs_guid(value + 20), text);
			printf("  %-10s %s\n", "port_guid", text);
		}
	}
	path_of(path, "class/infiniband/%s", ibdev);
	if (!exists(path)) {
		printf("  (no IB device %s)\n", ibdev);
		return;
	}
	print_attr_line("lid", "class/infiniband/%s/ports/1/lid", ibdev);
	print_attr_line("state", "class/infiniband/%s/ports/1/state", ibdev);
	print_attr_line("phys_state", "class/infiniband/%s/ports/1/phys_state",
			ibdev);
	print_pkeys(ibdev);
	printf("  counters (non-zero):\n");
	print_counters(ibdev, "counters", false);
	print_counters(ibdev, "hw_counters", false);
	print_holder(ibdev);
}

static int cmd_show(void)
{
	unsigned int n;
	char name[NAME_MAX + 1];

	if (find_pf() || num_vfs(&n))
		return EXIT_FAILURE;
	show_dev(pf_name, -1);
	for (unsigned int vf = 0; vf < n; vf++) {
		vf_ibdev(vf, name, sizeof(name));
		show_dev(name, (int)vf);
	}
	return 0;
}

static int cmd_counters(int vf)
{
	char name[NAME_MAX + 1];
	unsigned int n;

	if (find_pf() || num_vfs(&n))
		return EXIT_FAILURE;
	if (vf >= 0 && (unsigned int)vf >= n) {
		error_msg("no VF %d (%s has %u)", vf, pf_name, n);
		return EXIT_FAILURE;
	}
	if (vf < 0)
		snprintf(name, sizeof(name), "%s", pf_name);
	else
		vf_ibdev((unsigned int)vf, name, sizeof(name));
	printf("%s\n", name);
	print_counters(name, "counters", true);
	print_counters(name, "hw_counters", true);
	return 0;
}

static int cmd_numvfs(unsigned int n)
{
	char path[PATH_MAX], value[32];
	int ret;

	if (find_pf())
		return EXIT_FAILURE;
	path_of(path, "class/infiniband/%s/device/sriov_numvfs", pf_name);
	snprintf(value, sizeof(value), "%u", n);
	ret = write_attr(path, value);
	if (ret) {
		error_msg("sriov_numvfs %u: %s%s", n, strerror(-ret),
			  ret == -EBUSY ? " (VFs exist: set 0 first, or a VF is in use)" : "");
		return EXIT_FAILURE;
	}
	return 0;
}

/* ---- plans: validation and sysfs writes with rollback ------------------------------- */

struct vf_req {
	unsigned int vf;
	int line;
	bool has_node, has_port, has_policy, has_pkeys;
	uint64_t node, port;
	char policy[8];
	unsigned int npkeys;
	uint16_t pkeys[MAX_PKEYS];
};

struct plan {
	const char *file;	/* NULL: the command line */
	struct vf_req *reqs;
	unsigned int count, cap;
};

static void plan_error(const struct plan *plan, int line, const char *fmt, ...)
{
	va_list ap;

	if (plan->file)
		fprintf(stderr, "%s:%d: ", plan->file, line);
	else
		fprintf(stderr, "vhcactl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

static struct vf_req *plan_add(struct plan *plan)
{
	if (plan->count == plan->cap) {
		unsigned int cap = plan->cap ? 2 * plan->cap : 4;
		struct vf_req *reqs = reallocarray(plan->reqs, cap,
						   sizeof(*reqs));

		if (!reqs)
			return NULL;
		plan->reqs = reqs;
		plan->cap = cap;
	}
	memset(&plan->reqs[plan->count], 0, sizeof(plan->reqs[0]));
	return &plan->reqs[plan->count++];
}

/* Appends one P_Key to r's table; NULL or the message. */
static const char *add_pkey(struct vf_req *r, const char *text, char *msg,
			    size_t msg_len)
{
	const char *err;
	uint16_t pkey;

	err = parse_pkey(text, &pkey);
	if (err) {
		snprintf(msg, msg_len, "P_Key '%s': %s", text, err);
		return msg;
	}
	for (unsigned int k = 0; k < r->npkeys; k++)
		if ((r->pkeys[k] & 0x7fff) == (pkey & 0x7fff)) {
			snprintf(msg, msg_len,
				 "P_Key '%s': partition 0x%04x listed twice",
				 text, pkey & 0x7fff);
			return msg;
		}
	if (r->npkeys == MAX_PKEYS) {
		snprintf(msg, msg_len, "too many P_Keys");
		return msg;
	}
	r->pkeys[r->npkeys++] = pkey;
	return NULL;
}

static bool is_setting(const char *word)
{
	return !strcmp(word, "node_guid") || !strcmp(word, "port_guid") ||
	       !strcmp(word, "policy") || !strcmp(word, "pkey") ||
	       !strcmp(word, "pkeys");
}

/*
 * Parses "KEY VALUE ..." words of one VF (command line or plan line);
 * pkey_list: "pkeys P1,P2" (command line) vs "pkey P ..." (plan file).
 * Returns NULL or the message.
 */
static const char *parse_words(struct vf_req *r, char **words, int count,
			       bool pkey_list, char *msg, size_t msg_len)
{
	for (int i = 0; i < count; i++) {
		const char *key = words[i], *err;

		if (i + 1 >= count) {
			snprintf(msg, msg_len, "'%s' needs a value", key);
			return msg;
		}
		if (!strcmp(key, "node_guid") || !strcmp(key, "port_guid")) {
			bool node = key[0] == 'n';
			uint64_t guid;

			if ((node && r->has_node) || (!node && r->has_port)) {
				snprintf(msg, msg_len, "%s given twice", key);
				return msg;
			}
			err = parse_guid(words[++i], &guid);
			if (err) {
				snprintf(msg, msg_len, "%s '%s': %s", key,
					 words[i], err);
				return msg;
			}
			if (node) {
				r->node = guid;
				r->has_node = true;
			} else {
				r->port = guid;
				r->has_port = true;
			}
		} else if (!strcmp(key, "policy")) {
			if (r->has_policy) {
				snprintf(msg, msg_len, "policy given twice");
				return msg;
			}
			err = parse_policy(words[++i]);
			if (err) {
				snprintf(msg, msg_len, "policy '%s': %s",
					 words[i], err);
				return msg;
			}
			snprintf(r->policy, sizeof(r->policy), "%s", words[i]);
			r->has_policy = true;
		} else if (pkey_list ? !strcmp(key, "pkeys") :
				       !strcmp(key, "pkey")) {
			char *tok, *save = NULL;

			if (r->has_pkeys) {
				snprintf(msg, msg_len, "%s given twice", key);
				return msg;
			}
			r->has_pkeys = true;
			if (!strcmp(words[i + 1], "none")) {
				i++;	/* an empty table */
				continue;
			}
			if (pkey_list) {
				/*
				 * "pkeys P1,P2,..."; "pkeys ''" empties the
				 * table.  Every comma separates two P_Keys:
				 * "0xffff,,0x8001" is a typo, not two.
				 */
				save = words[++i];
				if (!*save)
					continue;
				while ((tok = strsep(&save, ","))) {
					if (!*tok) {
						snprintf(msg, msg_len,
							 "pkeys: an empty P_Key in '%s'",
							 words[i]);
						return msg;
					}
					if (add_pkey(r, tok, msg, msg_len))
						return msg;
				}
				continue;
			}
			/* "pkey P [P ...]": every word up to the next setting */
			while (i + 1 < count && !is_setting(words[i + 1]))
				if (add_pkey(r, words[++i], msg, msg_len))
					return msg;
			if (!r->npkeys) {
				snprintf(msg, msg_len,
					 "pkey needs P_Keys (or 'none')");
				return msg;
			}
		} else {
			snprintf(msg, msg_len, "unknown setting '%s'", key);
			return msg;
		}
	}
	return NULL;
}

/* A write and the value to restore if a later write fails. */
struct write_op {
	char path[PATH_MAX];
	char old[VALUE_MAX];
	char new[VALUE_MAX];
	int line;
};

struct journal {
	struct write_op *ops;
	size_t count, cap;
};

static int journal_add(struct journal *j, const char *path, const char *old,
		       const char *new, int line)
{
	struct write_op *op;

	if (!strcmp(old, new))
		return 0;
	if (j->count == j->cap) {
		size_t cap = j->cap ? 2 * j->cap : 16;
		struct write_op *ops = reallocarray(j->ops, cap, sizeof(*ops));

		if (!ops)
			return -ENOMEM;
		j->ops = ops;
		j->cap = cap;
	}
	op = &j->ops[j->count++];
	snprintf(op->path, sizeof(op->path), "%s", path);
	snprintf(op->old, sizeof(op->old), "%s", old);
	snprintf(op->new, sizeof(op->new), "%s", new);
	op->line = line;
	return 0;
}

/* Runs the writes; on a failure undoes the done ones, newest first. */
static int journal_run(const struct plan *plan, struct journal *j)
{
	for (size_t i = 0; i < j->count; i++) {
		int ret = write_attr(j->ops[i].path, j->ops[i].new);

		if (!ret)
			continue;
		plan_error(plan, j->ops[i].line, "writing '%s' to %s: %s",
			   j->ops[i].new, j->ops[i].path, strerror(-ret));
		while (i-- > 0) {
			int undo = write_attr(j->ops[i].path, j->ops[i].old);

			if (undo)
				error_msg("ROLLBACK FAILED: %s back to '%s': %s",
					  j->ops[i].path, j->ops[i].old,
					  strerror(-undo));
		}
		error_msg("nothing changed (earlier writes rolled back)");
		return -1;
	}
	return 0;
}

/* Current GUIDs of every device of the PF, for the uniqueness check. */
struct guid_state {
	unsigned int num_vfs;
	uint64_t pf_node, pf_port;
	uint64_t *node, *port;	/* per VF, as the plan leaves them */
	int *node_line, *port_line;
};

static int read_vf_guid(unsigned int vf, const char *attr, uint64_t *out)
{
	char path[PATH_MAX], value[VALUE_MAX];

	path_of(path, "class/infiniband/%s/device/sriov/%u/%s", pf_name, vf,
		attr);
	if (read_attr(path, value, sizeof(value)) || parse_guid(value, out)) {
		*out = 0;
		return -1;
	}
	return 0;
}

/* "xxxx:xxxx:xxxx:xxxx" (node_guid) or the low half of a GID. */
static uint64_t parse_sysfs_guid(const char *text)
{
	uint64_t guid = 0;

	for (; *text; text++) {
		int digit = vhca_hex_digit(*text);

		if (digit >= 0)
			guid = guid << 4 | (uint64_t)digit;
	}
	return guid;
}

static int validate_plan(struct plan *plan, struct guid_state *gs)
{
	char path[PATH_MAX], value[VALUE_MAX];
	unsigned int n;
	int errors = 0;

	if (num_vfs(&n))
		return -1;
	gs->num_vfs = n;
	gs->node = calloc(n + 1, sizeof(uint64_t));
	gs->port = calloc(n + 1, sizeof(uint64_t));
	gs->node_line = calloc(n + 1, sizeof(int));
	gs->port_line = calloc(n + 1, sizeof(int));
	if (!gs->node || !gs->port || !gs->node_line || !gs->port_line) {
		error_msg("out of memory");
		return -1;
	}
	path_of(path, "class/infiniband/%s/node_guid", pf_name);
	if (!read_attr(path, value, sizeof(value)))
		gs->pf_node = parse_sysfs_guid(value);
	path_of(path, "class/infiniband/%s/ports/1/gids/0", pf_name);
	if (!read_attr(path, value, sizeof(value)) && strlen(value) == 39)
		gs->pf_port = parse_sysfs_guid(value + 20);
	for (unsigned int vf = 0; vf < n; vf++) {
		read_vf_guid(vf, "node", &gs->node[vf]);
		read_vf_guid(vf, "port", &gs->port[vf]);
	}

	for (unsigned int i = 0; i < plan->count; i++) {
		struct vf_req *r = &plan->reqs[i];

		if (r->vf >= n) {
			plan_error(plan, r->line, "no VF %u (%s has %u VFs)",
				   r->vf, pf_name, n);
			errors++;
			continue;
		}
		for (unsigned int k = 0; k < i; k++)
			if (plan->reqs[k].vf == r->vf) {
				plan_error(plan, r->line,
					   "vf %u already given on line %d",
					   r->vf, plan->reqs[k].line);
				errors++;
			}
		if (r->has_node) {
			gs->node[r->vf] = r->node;
			gs->node_line[r->vf] = r->line;
		}
		if (r->has_port) {
			gs->port[r->vf] = r->port;
			gs->port_line[r->vf] = r->line;
		}
		if (r->has_pkeys) {
			int len;

			path_of(path, "class/infiniband/%s/device/sriov/%u/pkeys",
				pf_name, r->vf);
			len = count_numbered(path);
			if (len <= 0) {
				plan_error(plan, r->line,
					   "%s has no VF P_Key table (%s)",
					   pf_name, path);
				errors++;
			} else if (r->npkeys > (unsigned int)len) {
				plan_error(plan, r->line,
					   "%u P_Keys, the table holds %d",
					   r->npkeys, len);
				errors++;
			}
		}
		if (r->has_policy) {
			path_of(path, "class/infiniband/%s/device/sriov/%u/policy",
				pf_name, r->vf);
			if (!exists(path)) {
				plan_error(plan, r->line, "no %s", path);
				errors++;
			}
		}
	}
	if (errors)
		return -1;

	/* The state the plan leaves: no GUID twice across devices. */
	for (unsigned int vf = 0; vf < n; vf++) {
		uint64_t mine[2] = { gs->node[vf], gs->port[vf] };
		int lines[2] = { gs->node_line[vf], gs->port_line[vf] };
		const char *what[2] = { "node_guid", "port_guid" };

		for (int m = 0; m < 2; m++) {
			char text[VHCA_GUID_TEXT_SIZE];
			const char *clash = NULL;
			unsigned int other = 0;

			if (!lines[m])
				continue;	/* not changed by the plan */
			vhca_print_guid(mine[m], text);
			if (mine[m] == gs->pf_node || mine[m] == gs->pf_port)
				clash = "the PF";
			for (unsigned int o = 0; !clash && o < n; o++)
				if (o != vf && (gs->node[o] == mine[m] ||
						gs->port[o] == mine[m])) {
					clash = "vf";
					other = o;
				}
			if (!clash)
				continue;
			if (!strcmp(clash, "vf"))
				plan_error(plan, lines[m],
					   "%s %s of vf %u is also a GUID of vf %u",
					   what[m], text, vf, other);
			else
				plan_error(plan, lines[m],
					   "%s %s of vf %u is a GUID of the PF",
					   what[m], text, vf);
			errors++;
		}
	}
	return errors ? -1 : 0;
}

static int add_guid_op(struct journal *j, unsigned int vf, const char *attr,
		       uint64_t guid, int line)
{
	char path[PATH_MAX], old[VALUE_MAX], new[VALUE_MAX];
	int ret;

	path_of(path, "class/infiniband/%s/device/sriov/%u/%s", pf_name, vf,
		attr);
	ret = read_attr(path, old, sizeof(old));
	if (ret)
		return ret;
	vhca_print_guid(guid, new);
	return journal_add(j, path, old, new, line);
}

/*
 * P_Keys in two passes so that no intermediate table holds a partition
 * twice: first every entry that changes is cleared, then the new values
 * are written.  Rollback (reverse order) restores the old table.
 */
static int add_pkey_ops(struct journal *clear, struct journal *set,
			const struct vf_req *r)
{
	char path[PATH_MAX], dir[PATH_MAX], old[VALUE_MAX], new[VALUE_MAX];
	int len, ret;

	path_of(dir, "class/infiniband/%s/device/sriov/%u/pkeys", pf_name,
		r->vf);
	len = count_numbered(dir);
	for (int i = 0; i < len; i++) {
		unsigned long cur;
		unsigned int want = (unsigned int)i < r->npkeys ?
					    r->pkeys[i] : 0;

		path_of(path, "class/infiniband/%s/device/sriov/%u/pkeys/%d",
			pf_name, r->vf, i);
		ret = read_attr(path, old, sizeof(old));
		if (ret)
			return ret;
		cur = strtoul(old, NULL, 16);
		if (cur == want)
			continue;
		if (cur) {
			ret = journal_add(clear, path, old, "0x0000", r->line);
			if (ret)
				return ret;
		}
		if (want) {
			snprintf(new, sizeof(new), "0x%04x", want);
			ret = journal_add(set, path, "0x0000", new, r->line);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int send_to_vhcad(const char *run_dir, struct nl_msg *msg);

/* The run dir whose mgmt.sock takes plans, or NULL (then sysfs). */
static const char *plan_run_dir(char *buf, size_t len)
{
	char path[PATH_MAX + sizeof(MGMT_SOCK_NAME) + 1];
	size_t n;

	if (sysfs_only)
		return NULL;
	if (run_dir_opt)
		return run_dir_opt;
	n = strlen(sysfs_dir);
	while (n > 1 && sysfs_dir[n - 1] == '/')
		n--;
	if (n < 4 || strncmp(sysfs_dir + n - 4, "/sys", 4))
		return NULL;
	snprintf(buf, len, "%.*s", (int)(n - 4), sysfs_dir);
	if (!*buf)
		snprintf(buf, len, "/");
	snprintf(path, sizeof(path), "%s/%s", buf, MGMT_SOCK_NAME);
	return exists(path) ? buf : NULL;
}

/*
 * The whole plan as one RTM_SETLINK: per VF an IFLA_VF_INFO with
 * IFLA_VF_IB_NODE_GUID, IFLA_VF_IB_PORT_GUID, IFLA_VF_LINK_STATE (the
 * policy) and vhca's VHCA_IFLA_VF_PKEY_TABLE.  vhcad applies it all or
 * nothing.
 */
static int send_plan(struct plan *plan, const char *run_dir)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_msg *msg = nlmsg_alloc_size(256 * 1024);
	struct nlattr *list, *info;
	int ret = -1;

	if (!msg || !nlmsg_put(msg, NL_AUTO_PORT, (uint32_t)time(NULL),
			       RTM_SETLINK, 0, NLM_F_REQUEST | NLM_F_ACK) ||
	    nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_string(msg, IFLA_IFNAME, pf_name) < 0 ||
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
		error_msg("the plan was refused; nothing changed");
	nlmsg_free(msg);
	return ret;
nomem:
	error_msg("building the plan message: too large or out of memory");
	if (msg)
		nlmsg_free(msg);
	return -1;
}

static int run_plan(struct plan *plan)
{
	struct journal guids = { 0 }, clear = { 0 }, set = { 0 }, all = { 0 };
	struct guid_state gs = { 0 };
	char run_dir_buf[PATH_MAX];
	const char *run_dir;
	int ret = -1;

	if (find_pf())
		return EXIT_FAILURE;
	if (validate_plan(plan, &gs))
		goto out;
	run_dir = plan_run_dir(run_dir_buf, sizeof(run_dir_buf));
	if (run_dir) {
		ret = send_plan(plan, run_dir);
		goto out;
	}
	for (unsigned int i = 0; i < plan->count; i++) {
		struct vf_req *r = &plan->reqs[i];
		char path[PATH_MAX], old[VALUE_MAX];
		int err = 0;

		if (r->has_node)
			err = add_guid_op(&guids, r->vf, "node", r->node,
					  r->line);
		if (!err && r->has_port)
			err = add_guid_op(&guids, r->vf, "port", r->port,
					  r->line);
		if (!err && r->has_pkeys)
			err = add_pkey_ops(&clear, &set, r);
		if (!err && r->has_policy) {
			path_of(path, "class/infiniband/%s/device/sriov/%u/policy",
				pf_name, r->vf);
			err = read_attr(path, old, sizeof(old));
			if (!err)
				err = journal_add(&set, path, old, r->policy,
						  r->line);
		}
		if (err) {
			plan_error(plan, r->line, "reading vf %u: %s", r->vf,
				   strerror(-err));
			goto out;
		}
	}
	/* One journal: GUIDs, P_Key clears, P_Key sets and policies. */
	struct journal *parts[] = { &guids, &clear, &set };

	for (size_t p = 0; p < 3; p++)
		for (size_t i = 0; i < parts[p]->count; i++) {
			const struct write_op *op = &parts[p]->ops[i];

			if (journal_add(&all, op->path, op->old, op->new,
					op->line)) {
				error_msg("out of memory");
				goto out;
			}
		}
	ret = journal_run(plan, &all);
out:
	free(guids.ops);
	free(clear.ops);
	free(set.ops);
	free(all.ops);
	free(gs.node);
	free(gs.port);
	free(gs.node_line);
	free(gs.port_line);
	return ret ? EXIT_FAILURE : 0;
}

static int cmd_vf_set(unsigned int vf, char **words, int count)
{
	struct plan plan = { .file = NULL };
	struct vf_req *r;
	char msg[256];
	const char *err;
	int ret;

	if (!count)
		return usage_error("vf %u set: nothing to set", vf);
	r = plan_add(&plan);
	if (!r) {
		error_msg("out of memory");
		return EXIT_FAILURE;
	}
	r->vf = vf;
	r->line = 0;
	err = parse_words(r, words, count, true, msg, sizeof(msg));
	if (err) {
		free(plan.reqs);
		return usage_error("vf %u set: %s", vf, err);
	}
	ret = run_plan(&plan);
	free(plan.reqs);
	return ret;
}

static int cmd_apply(const char *file)
{
	struct plan plan = { .file = file };
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, errors = 0, ret;
	FILE *in = fopen(file, "r");
	struct stat st;
	ssize_t len;

	if (!in) {
		error_msg("%s: %s", file, strerror(errno));
		return EXIT_FAILURE;
	}
	/* A plan is text in a file (or a pipe): not a directory. */
	if (fstat(fileno(in), &st) || S_ISDIR(st.st_mode)) {
		error_msg("%s: %s", file, strerror(S_ISDIR(st.st_mode) ?
						   EISDIR : errno));
		fclose(in);
		return EXIT_FAILURE;
	}
	while ((len = getline(&line, &cap, in)) >= 0) {
		char *words[2 * MAX_PKEYS + 16], *save = NULL, *w, *hash;
		int count = 0;
		unsigned int vf;
		struct vf_req *r;
		char msg[256];
		const char *err;

		lineno++;
		/* C strings would end at a NUL byte and apply the prefix. */
		if (memchr(line, 0, (size_t)len)) {
			plan_error(&plan, lineno, "a NUL byte in the line");
			errors++;
			continue;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		for (w = strtok_r(line, " \t\r\n", &save); w;
		     w = strtok_r(NULL, " \t\r\n", &save)) {
			if (count == (int)(sizeof(words) / sizeof(words[0]))) {
				plan_error(&plan, lineno, "line too long");
				errors++;
				count = -1;
				break;
			}
			words[count++] = w;
		}
		if (count <= 0)
			continue;
		if (strcmp(words[0], "vf") || count < 2 ||
		    !parse_uint(words[1], 1u << 16, &vf)) {
			plan_error(&plan, lineno,
				   "expected 'vf N [node_guid G] [port_guid G] [policy P] [pkey P ...]'");
			errors++;
			continue;
		}
		r = plan_add(&plan);
		if (!r) {
			error_msg("out of memory");
			errors++;
			break;
		}
		r->vf = vf;
		r->line = lineno;
		err = parse_words(r, words + 2, count - 2, false, msg,
				  sizeof(msg));
		if (err) {
			plan_error(&plan, lineno, "%s", err);
			errors++;
		}
	}
	if (ferror(in)) {
		error_msg("%s: %s", file, strerror(errno));
		errors++;
	}
	free(line);
	fclose(in);
	if (errors) {
		error_msg("%s: %d error(s); nothing changed", file, errors);
		free(plan.reqs);
		return EXIT_FAILURE;
	}
	ret = run_plan(&plan);
	free(plan.reqs);
	if (!ret)
		printf("%s: %u VF(s) provisioned\n", file, plan.count);
	return ret;
}

/* ---- rtnetlink --------------------------------------------------------------------- */

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
		error_msg("RTM_SETLINK: %s", nl_geterror(ret));
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
		error_msg("%s: path too long", run_dir);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		error_msg("%s: %s", addr.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (send(fd, nlh, nlh->nlmsg_len, MSG_NOSIGNAL) !=
	    (ssize_t)nlh->nlmsg_len) {
		error_msg("sending to %s: %s", addr.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	n = recv(fd, &ack, sizeof(ack), 0);
	close(fd);
	if (n < (ssize_t)sizeof(ack) || ack.hdr.nlmsg_type != NLMSG_ERROR ||
	    ack.hdr.nlmsg_seq != nlh->nlmsg_seq) {
		error_msg("%s: no acknowledgement", addr.sun_path);
		return -1;
	}
	if (ack.err.error) {
		error_msg("RTM_SETLINK: %s", strerror(-ack.err.error));
		return -1;
	}
	return 0;
}

_Static_assert(IFLA_VF_LINK_STATE_AUTO == 0 && IFLA_VF_LINK_STATE_ENABLE == 1 &&
	       IFLA_VF_LINK_STATE_DISABLE == 2, "link state words");

static int cmd_link_set_guid(int argc, char **argv)
{
	const char *netdev = NULL, *run_dir = NULL;
	uint64_t node = 0, port = 0;
	unsigned int vf;
	int state = -1, i = 0, ret;
	struct nl_msg *msg = NULL;

	while (i < argc && !strncmp(argv[i], "--", 2)) {
		if (i + 1 >= argc)
			return usage_error("%s needs a value", argv[i]);
		if (!strcmp(argv[i], "--pf-netdev"))
			netdev = argv[i + 1];
		else if (!strcmp(argv[i], "--run-dir"))
			run_dir = argv[i + 1];
		else
			return usage_error("link-set-guid: unknown option '%s'",
					   argv[i]);
		i += 2;
	}
	if (!!netdev == !!run_dir)
		return usage_error("link-set-guid: give one of --pf-netdev IFNAME and --run-dir DIR");
	if (netdev && (!*netdev || strlen(netdev) >= 16))
		return usage_error("link-set-guid: bad interface name '%s'", netdev);
	if (i + 2 > argc || strcmp(argv[i], "vf") ||
	    !parse_uint(argv[i + 1], 1u << 16, &vf))
		return usage_error("link-set-guid: expected 'vf N'");
	for (i += 2; i < argc; i += 2) {
		const char *err;

		if (i + 1 >= argc)
			return usage_error("'%s' needs a value", argv[i]);
		if (!strcmp(argv[i], "node_guid") && !node)
			err = parse_guid(argv[i + 1], &node);
		else if (!strcmp(argv[i], "port_guid") && !port)
			err = parse_guid(argv[i + 1], &port);
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
			return usage_error("link-set-guid: unexpected or repeated '%s'",
					   argv[i]);
		if (err)
			return usage_error("%s '%s': %s", argv[i], argv[i + 1],
					   err);
	}
	if (!node && !port && state < 0)
		return usage_error("link-set-guid: nothing to set");

	ret = build_setlink(netdev ? netdev : "vhca0", vf, node, port, state,
			    &msg);
	if (ret < 0) {
		error_msg("building RTM_SETLINK: %s", nl_geterror(ret));
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

	sysfs_dir = getenv("SYSFS_PATH");
	if (!sysfs_dir || !*sysfs_dir)
		sysfs_dir = DEFAULT_SYSFS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!*optarg)
				return usage_error("--sysfs needs a directory");
			sysfs_dir = optarg;
			break;
		case 'd':
			if (!*optarg || strchr(optarg, '/'))
				return usage_error("bad --dev '%s'", optarg);
			pf_name = optarg;
			break;
		case 'r':
			if (!*optarg)
				return usage_error("--run-dir needs a directory");
			run_dir_opt = optarg;
			break;
		case 'o':
			sysfs_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return usage_error("unknown option or missing value: '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("no command");
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;

	if (!strcmp(cmd, "show")) {
		if (argc)
			return usage_error("show takes no argument");
		return cmd_show();
	}
	if (!strcmp(cmd, "numvfs")) {
		unsigned int n;

		if (argc != 1 || !parse_uint(argv[0], 65535, &n))
			return usage_error("numvfs N (N a decimal number)");
		return cmd_numvfs(n);
	}
	if (!strcmp(cmd, "counters")) {
		unsigned int vf;

		if (!argc)
			return cmd_counters(-1);
		if (argc != 2 || strcmp(argv[0], "vf") ||
		    !parse_uint(argv[1], 65535, &vf))
			return usage_error("counters [vf N]");
		return cmd_counters((int)vf);
	}
	if (!strcmp(cmd, "vf")) {
		unsigned int vf;

		if (argc < 2 || !parse_uint(argv[0], 65535, &vf) ||
		    strcmp(argv[1], "set"))
			return usage_error("vf N set [node_guid G] [port_guid G] [policy P] [pkeys P1,P2,...]");
		return cmd_vf_set(vf, argv + 2, argc - 2);
	}
	if (!strcmp(cmd, "apply")) {
		if (argc != 1)
			return usage_error("apply FILE");
		return cmd_apply(argv[0]);
	}
	if (!strcmp(cmd, "link-set-guid"))
		return cmd_link_set_guid(argc, argv);
	return usage_error("unknown command '%s'", cmd);
}
