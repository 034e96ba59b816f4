// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A bounded fuzz of the management inputs (security issue 9), beside the
 * command fuzz and the data-path fuzz: every writable attribute of the
 * sysfs view - sriov_numvfs, each VF's node and port GUID, policy and
 * P_Key entries (kernel-shim/driver/sysfs.c) - and RTM_SETLINK records
 * on DIR/mgmt.sock (kernel-shim/driver/mgmt.h).  Input is random, at the
 * boundaries (huge values, NULs, lengths one off, partial writes, stale
 * file descriptors of VFs that are gone) and mutated from valid
 * messages (bad lengths, nested attributes of the wrong size, VF numbers
 * past the end, odd P_Key tables, several messages a record).
 *
 * A model of the PF - the parsers and rules of pf.c and text.h, written
 * again here, and libnl's attribute parsing as mgmt.c uses it - predicts
 * every answer: the errno of a write, the NLMSG_ERROR of every message.
 * After each request the VFs are read back and must be what the model
 * says: a refused request changed nothing, an accepted one exactly what
 * it asked, in the sriov view and in each VF's own (node_guid, GID 0,
 * P_Key table, port state).  vhcad must answer throughout.  At the end a
 * peer that is not root is refused on mgmt.sock (even once the socket's
 * mode would let it connect) and changes nothing.
 *
 * Nothing depends on timing: SEED replays the same requests.
 *
 * usage: fuzz_mgmt SECONDS SEED VHCAD_PID RUN_DIR
 *   (SYSFS_PATH in the environment; the PF is vhca0.)
 *   VHCA_FUZZ_FULL=1: read every VF back in full after every request.
 * Exit: 0 all held, 1 a check failed ("FAIL: request N (seed S) ..."),
 * 2 a broken set-up.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "fuzz.h"

/* include/vhca/mgmt.h; kept here, the wire format is what is tested */
#ifndef VHCA_IFLA_VF_PKEY_TABLE
#define VHCA_IFLA_VF_PKEY_TABLE 0x3f01
#endif
#define BIND_GUEST_TYPE 0x3f10	/* vhca's own message type: not fuzzed */

#define MAX_VFS 127
#define NPKEYS 128
#define ATTR_WRITE_MAX 64
#define RECORD_MAX (64 * 1024)
#define CACHED_VFS 8		/* VFs whose attributes stay open */

static uint64_t seed;
static unsigned long req_no;
static int failures;
static pid_t vhcad;
static const char *sysfs;
static char sock_path[4096];
static bool full_checks;
/* outcomes: accepted and refused sysfs writes and netlink messages */
static unsigned long sys_ok, sys_refused, msg_ok, msg_refused, records_bad;

#define FAIL(...)                                                             \
	do {                                                                  \
		failures++;                                                   \
		printf("FAIL: request %lu (seed %#" PRIx64 "): ", req_no,     \
		       seed);                                                 \
		printf(__VA_ARGS__);                                          \
		printf("\n");                                                 \
		if (!alive(vhcad)) {                                          \
			printf("FAIL: vhcad died at request %lu\n", req_no);  \
			exit(1);                                              \
		}                                                             \
		if (failures > 10)                                            \
			exit(1);                                              \
	} while (0)

/* ---- the model ----------------------------------------------------------- */

enum { POL_DOWN, POL_UP, POL_FOLLOW };
static const char *const pol_name[] = { "Down", "Up", "Follow" };

struct vf {
	uint64_t node, port;
	int policy;
	uint16_t pkeys[NPKEYS];
};

struct model {
	unsigned int num, total;
	struct vf vf[MAX_VFS];
};

static struct model m;			/* what the device must look like */
static uint64_t pf_node, pf_port;
static struct vf defaults[MAX_VFS];	/* a VF's identity when created */
static bool have_default[MAX_VFS];

static bool guid_ok(uint64_t g)
{
	return g && g != UINT64_MAX;
}

static bool guid_taken(const struct model *s, unsigned int self, uint64_t g)
{
	if (g == pf_node || g == pf_port)
		return true;
	for (unsigned int i = 0; i < s->num; i++)
		if (i != self && (s->vf[i].node == g || s->vf[i].port == g))
			return true;
	return false;
}

static bool pkeys_ok(const uint16_t *p)
{
	for (unsigned int i = 0; i < NPKEYS; i++) {
		if (!p[i])
			continue;
		if (!(p[i] & 0x7fff))
			return false;
		for (unsigned int j = 0; j < i; j++)
			if (p[j] && (p[j] & 0x7fff) == (p[i] & 0x7fff))
				return false;
	}
	return true;
}

/* pf.c's validate_shadow(): 0 or EINVAL. */
static int validate(const struct model *s)
{
	for (unsigned int i = 0; i < s->num; i++) {
		const struct vf *v = &s->vf[i];

		if (!guid_ok(v->node) || !guid_ok(v->port) ||
		    guid_taken(s, i, v->node) || guid_taken(s, i, v->port) ||
		    !pkeys_ok(v->pkeys))
			return EINVAL;
	}
	return 0;
}

/* ---- text, as text.h and sysfs.c take it (written again) --------------- */

static size_t strip_nl(const char *b, size_t n)
{
	return n && b[n - 1] == '\n' ? n - 1 : n;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool p_decimal(const char *b, size_t n, unsigned long *out)
{
	unsigned long v = 0;

	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (b[i] < '0' || b[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(b[i] - '0');
		if (v > UINT_MAX)
			return false;
	}
	*out = v;
	return true;
}

static bool p_guid(const char *b, size_t n, uint64_t *out)
{
	uint64_t g = 0;

	if (n != 23)
		return false;
	for (int i = 0; i < 8; i++) {
		int hi = hexval(b[3 * i]), lo = hexval(b[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 7 && b[3 * i + 2] != ':'))
			return false;
		g = g << 8 | (uint64_t)(hi << 4 | lo);
	}
	*out = g;
	return true;
}

static bool p_pkey(const char *b, size_t n, uint16_t *out)
{
	unsigned int v = 0;

	if (n == 4 && !memcmp(b, "none", 4)) {
		*out = 0;
		return true;
	}
	if (n >= 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')) {
		b += 2;
		n -= 2;
	}
	if (!n || n > 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		int d = hexval(b[i]);

		if (d < 0)
			return false;
		v = v << 4 | (unsigned int)d;
	}
	*out = (uint16_t)v;
	return true;
}

static int p_policy(const char *b, size_t n)
{
	for (int i = 0; i < 3; i++)
		if (strlen(pol_name[i]) == n && !memcmp(pol_name[i], b, n))
			return i;
	return -1;
}

static void fmt_guid(uint64_t g, char *out)
{
	sprintf(out, "%02x:%02x:%02x:%02x:%02x:%02x:%02x:%02x",
		(unsigned int)(g >> 56) & 0xff, (unsigned int)(g >> 48) & 0xff,
		(unsigned int)(g >> 40) & 0xff, (unsigned int)(g >> 32) & 0xff,
		(unsigned int)(g >> 24) & 0xff, (unsigned int)(g >> 16) & 0xff,
		(unsigned int)(g >> 8) & 0xff, (unsigned int)g & 0xff);
}

/* ---- reading the device back ---------------------------------------------- */

enum { A_NODE, A_PORT, A_POLICY, A_PKEY0, A_COUNT = A_PKEY0 + NPKEYS };

static int cached[CACHED_VFS][A_COUNT];	/* O_RDONLY fds, -1 none yet */
static int numvfs_fd = -1;

static void attr_path(char *out, size_t size, unsigned int vf, int a)
{
	const char *pf = "class/infiniband/vhca0/device";

	if (a == A_NODE)
		snprintf(out, size, "%s/%s/sriov/%u/node", sysfs, pf, vf);
	else if (a == A_PORT)
		snprintf(out, size, "%s/%s/sriov/%u/port", sysfs, pf, vf);
	else if (a == A_POLICY)
		snprintf(out, size, "%s/%s/sriov/%u/policy", sysfs, pf, vf);
	else
		snprintf(out, size, "%s/%s/sriov/%u/pkeys/%d", sysfs, pf, vf,
			 a - A_PKEY0);
}

/* One read from offset 0 (which renders it afresh); -errno if none. */
static ssize_t pread_text(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

static ssize_t read_path(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	buf[0] = 0;
	if (fd < 0)
		return -errno;
	n = pread_text(fd, buf, size);
	close(fd);
	return n;
}

/* For messages: without its newline. */
static const char *line(char *text)
{
	text[strcspn(text, "\n")] = 0;
	return text;
}

/* Attribute @a of VF @vf as text; -errno if it cannot be read. */
static ssize_t read_attr(unsigned int vf, int a, char *buf, size_t size)
{
	char path[4096];

	if (vf < CACHED_VFS) {
		if (cached[vf][a] < 0) {
			attr_path(path, sizeof(path), vf, a);
			cached[vf][a] = open(path, O_RDONLY | O_CLOEXEC);
			if (cached[vf][a] < 0)
				return -errno;
		}
		return pread_text(cached[vf][a], buf, size);
	}
	attr_path(path, sizeof(path), vf, a);
	return read_path(path, buf, size);
}

static unsigned int read_numvfs(void)
{
	char buf[64], path[4096];
	unsigned long v = 0;

	if (numvfs_fd < 0) {
		snprintf(path, sizeof(path),
			 "%s/class/infiniband/vhca0/device/sriov_numvfs", sysfs);
		numvfs_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (pread_text(numvfs_fd, buf, sizeof(buf)) <= 0 ||
	    !p_decimal(buf, strip_nl(buf, strlen(buf)), &v)) {
		FAIL("cannot read sriov_numvfs");
		return UINT_MAX;
	}
	return (unsigned int)v;
}

/* VF @i as the sriov view shows it; all P_Keys or only those in @which. */
static bool read_vf(unsigned int i, struct vf *v, bool all_pkeys,
		    const bool *which)
{
	char buf[128];
	int pol;

	if (read_attr(i, A_NODE, buf, sizeof(buf)) <= 0 ||
	    !p_guid(buf, strip_nl(buf, strlen(buf)), &v->node))
		return false;
	if (read_attr(i, A_PORT, buf, sizeof(buf)) <= 0 ||
	    !p_guid(buf, strip_nl(buf, strlen(buf)), &v->port))
		return false;
	if (read_attr(i, A_POLICY, buf, sizeof(buf)) <= 0 ||
	    (pol = p_policy(buf, strip_nl(buf, strlen(buf)))) < 0)
		return false;
	v->policy = pol;
	for (int k = 0; k < NPKEYS; k++) {
		if (!all_pkeys && !(which && which[k]))
			continue;
		if (read_attr(i, A_PKEY0 + k, buf, sizeof(buf)) <= 0 ||
		    !p_pkey(buf, strip_nl(buf, strlen(buf)), &v->pkeys[k]))
			return false;
	}
	return true;
}

static void describe(const struct vf *v, char *out, size_t size)
{
	char n[24], p[24];

	fmt_guid(v->node, n);
	fmt_guid(v->port, p);
	snprintf(out, size, "node %s port %s %s pkeys %04x %04x %04x %04x ...",
		 n, p, pol_name[v->policy], v->pkeys[0], v->pkeys[1],
		 v->pkeys[2], v->pkeys[3]);
}

/* The text of sysfs file @rel of VF @i's device is @want. */
static void expect_text(unsigned int i, const char *rel, const char *want,
			const char *what)
{
	char path[4096], buf[128], w[128];

	snprintf(path, sizeof(path), "%s/class/infiniband/vhca0_vf%u/%s",
		 sysfs, i, rel);
	snprintf(w, sizeof(w), "%s", want);
	if (read_path(path, buf, sizeof(buf)) <= 0 || strcmp(buf, w))
		FAIL("vhca0_vf%u/%s says %s, the sriov view's %s: %s", i, rel,
		     line(buf), what, line(w));
}

/* VF @i's own view (class/infiniband/vhca0_vfI) agrees with its sriov one. */
static void check_own_view(unsigned int i, const struct vf *v)
{
	char path[4096], buf[128], want[128];
	const char *dev = "class/infiniband";
	char pf_state[64] = "";

	snprintf(want, sizeof(want), "%04x:%04x:%04x:%04x\n",
		 (unsigned int)(v->node >> 48) & 0xffff,
		 (unsigned int)(v->node >> 32) & 0xffff,
		 (unsigned int)(v->node >> 16) & 0xffff,
		 (unsigned int)v->node & 0xffff);
	expect_text(i, "node_guid", want, "node GUID");
	snprintf(want, sizeof(want),
		 "fe80:0000:0000:0000:%04x:%04x:%04x:%04x\n",
		 (unsigned int)(v->port >> 48) & 0xffff,
		 (unsigned int)(v->port >> 32) & 0xffff,
		 (unsigned int)(v->port >> 16) & 0xffff,
		 (unsigned int)v->port & 0xffff);
	expect_text(i, "ports/1/gids/0", want, "port GUID");
	for (int k = 0; k < NPKEYS; k++) {
		uint16_t pk;

		snprintf(path, sizeof(path), "%s/%s/vhca0_vf%u/ports/1/pkeys/%d",
			 sysfs, dev, i, k);
		if (read_path(path, buf, sizeof(buf)) <= 0 ||
		    !p_pkey(buf, strip_nl(buf, strlen(buf)), &pk) ||
		    pk != v->pkeys[k]) {
			FAIL("vhca0_vf%u P_Key %d says %s, the sriov view %#06x",
			     i, k, line(buf), v->pkeys[k]);
			break;
		}
	}
	snprintf(path, sizeof(path), "%s/%s/vhca0/ports/1/state", sysfs, dev);
	read_path(path, pf_state, sizeof(pf_state));
	expect_text(i, "ports/1/state",
		    v->policy == POL_UP ? "4: ACTIVE\n" :
		    v->policy == POL_DOWN ? "1: DOWN\n" : pf_state,
		    pol_name[v->policy]);
}

/*
 * The device against the model: sriov_numvfs, every VF up to
 * CACHED_VFS and the last (all their P_Keys if @full, else those in
 * @which and of VF @touched), no VF past the end, and with @full one
 * VF's own view.
 */
static void compare(bool full, int touched, const bool *which)
{
	unsigned int num = read_numvfs(), last;
	char path[4096], a[256], b[256];

	full |= full_checks;
	if (num != m.num) {
		FAIL("sriov_numvfs is %u, the model says %u", num, m.num);
		return;
	}
	last = m.num ? m.num - 1 : 0;
	for (unsigned int i = 0; i < m.num; i++) {
		struct vf v = m.vf[i];
		bool mine = (int)i == touched;

		if (i >= CACHED_VFS && i != last && !mine &&
		    !(full && chance(10)))
			continue;
		if (!read_vf(i, &v, full || mine, which)) {
			FAIL("VF %u cannot be read back", i);
			continue;
		}
		if (memcmp(&v, &m.vf[i], sizeof(v))) {
			describe(&v, a, sizeof(a));
			describe(&m.vf[i], b, sizeof(b));
			FAIL("VF %u is {%s}, the model says {%s}", i, a, b);
			for (int k = 0; k < NPKEYS; k++)
				if (v.pkeys[k] != m.vf[i].pkeys[k]) {
					printf("  P_Key %d: %#06x, not %#06x\n", k,
					       v.pkeys[k], m.vf[i].pkeys[k]);
					break;
				}
			m.vf[i] = v;	/* one report per difference */
		}
	}
	attr_path(path, sizeof(path), m.num, A_NODE);
	if (read_path(path, a, sizeof(a)) != -ENOENT)
		FAIL("VF %u exists past sriov_numvfs %u", m.num, m.num);
	if (full && m.num) {
		unsigned int i = rn(m.num < CACHED_VFS ? m.num : CACHED_VFS);

		check_own_view(i, &m.vf[i]);
	}
}

/* ---- values a hostile admin writes -------------------------------------- */

struct value {
	char b[1 << 16];
	size_t n;
};

static void set_text(struct value *v, const char *s)
{
	v->n = strlen(s);
	memcpy(v->b, s, v->n);
}

static uint64_t pick_guid(void)
{
	const struct vf *o = m.num ? &m.vf[rn(m.num)] : NULL;

	switch (rn(10)) {
	case 0: return 0;
	case 1: return UINT64_MAX;
	case 2: return pf_node;
	case 3: return pf_port;
	case 4: return o ? o->node : rnd();
	case 5: return o ? o->port : rnd();
	case 6: return 0x0225000000000000ull | rn(1u << 16);
	default: return rnd();
	}
}

/* Damage: one of the ways text goes wrong. */
static void damage(struct value *v)
{
	size_t at = v->n ? rn((uint32_t)v->n) : 0;

	switch (rn(12)) {
	case 0: v->b[v->n++] = '\n'; v->b[v->n++] = '\n'; break;
	case 1: v->b[v->n++] = '\0'; break;
	case 2: if (v->n) v->b[at] = '\0'; break;
	case 3: if (v->n) v->n--; break;
	case 4: v->b[v->n++] = ' '; break;
	case 5: memmove(v->b + 1, v->b, v->n); v->b[0] = ' '; v->n++; break;
	case 6: if (v->n) v->b[at] = (char)rnd(); break;
	case 7: memset(v->b + v->n, 'f', 80); v->n += 65 + rn(16); break;
	case 8: v->n = rn(24); rnd_fill(v->b, v->n); break;
	case 9: memmove(v->b + 2, v->b, v->n); memcpy(v->b, "0x", 2); v->n += 2; break;
	case 10: if (v->n) v->b[at] = (char)(v->b[at] ^ 0x20); break;	/* case */
	default: v->n = 0; break;
	}
}

static void gen_guid_text(struct value *v)
{
	char g[24];

	fmt_guid(pick_guid(), g);
	if (chance(20))
		for (char *p = g; *p; p++)
			if (*p >= 'a' && *p <= 'f')
				*p = (char)(*p - 32);
	set_text(v, g);
	if (chance(50))
		v->b[v->n++] = '\n';
	if (chance(30))
		damage(v);
}

static void gen_policy_text(struct value *v)
{
	static const char *const t[] = { "Up", "Down", "Follow", "up", "DOWN",
					 "follow", "Upp", "Dow", "Follow ",
					 "1", "auto" };

	set_text(v, chance(75) ? pol_name[rn(3)] : t[rn(11)]);
	if (chance(40))
		v->b[v->n++] = '\n';
	if (chance(20))
		damage(v);
}

static uint16_t pick_pkey(unsigned int vf)
{
	switch (rn(8)) {
	case 0: return 0;
	case 1: return 0x8000;		/* no partition */
	case 2: return 0xffff;
	case 3: return 0x7fff;
	case 4:				/* another entry's partition */
		if (vf < m.num) {
			uint16_t p = m.vf[vf].pkeys[rn(4)];

			return chance(50) ? p : (uint16_t)(p ^ 0x8000);
		}
		/* fall through */
	default:
		return (uint16_t)(chance(50) ? 0x8000 | rn(64) : rnd());
	}
}

static void gen_pkey_text(struct value *v, unsigned int vf)
{
	static const char *const t[] = { "none", "0x", "x1", "12345",
					 "0x12345", "-1", "0X8001", "0xg",
					 "", "NONE", "0x0000" };
	uint16_t p = pick_pkey(vf);

	if (chance(15)) {
		set_text(v, t[rn(11)]);
	} else {
		static const char *const fmt[] = { "0x%04x", "%x", "0x%x",
						   "%04X", "0X%02x" };

		v->n = (size_t)snprintf(v->b, 32, fmt[rn(5)], p);
	}
	if (chance(40))
		v->b[v->n++] = '\n';
	if (chance(15))
		damage(v);
}

static void gen_numvfs_text(struct value *v)
{
	static const char *const t[] = { "0", "1", "2", "3", "4", "5", "8",
					 "127", "128", "4294967295",
					 "4294967296", "99999999999999999999",
					 "-1", "02", "0x2", "+1" };
	unsigned int i = rn(16);

	/* 127 VFs make every read-back long: now and then */
	if (i == 7 && !chance(20))
		i = 2;
	if (chance(30))
		v->n = (size_t)snprintf(v->b, 32, "%u", m.num);
	else
		set_text(v, t[i]);
	if (chance(40))
		v->b[v->n++] = '\n';
	if (chance(15))
		damage(v);
}

/* ---- sysfs writes ------------------------------------------------------------- */

enum { K_NUMVFS, K_NODE, K_PORT, K_POLICY, K_PKEY };

/*
 * What a write of @v to attribute @kind of VF @vf (P_Key @item) must do;
 * @next is the model after it.  -1: either 0 or EINVAL (a 0-byte write).
 */
static int predict_write(int kind, unsigned int vf, unsigned int item,
			 const struct value *v, struct model *next,
			 bool *created)
{
	size_t n = strip_nl(v->b, v->n);
	unsigned long num;
	uint64_t g;
	uint16_t pk;
	int pol;

	*next = m;
	*created = false;
	if (v->n > ATTR_WRITE_MAX)
		return EINVAL;
	switch (kind) {
	case K_NUMVFS:
		if (!p_decimal(v->b, n, &num) || num > m.total)
			return v->n ? EINVAL : -1;
		if (num == m.num)
			return 0;
		if (num && m.num)
			return EBUSY;
		next->num = (unsigned int)num;
		for (unsigned int i = 0; i < num; i++)
			next->vf[i] = defaults[i];
		*created = num != 0;
		return 0;
	case K_NODE:
	case K_PORT:
		if (!p_guid(v->b, n, &g))
			return v->n ? EINVAL : -1;
		if (vf >= m.num)
			return ENODEV;
		if (kind == K_NODE)
			next->vf[vf].node = g;
		else
			next->vf[vf].port = g;
		break;
	case K_POLICY:
		if ((pol = p_policy(v->b, n)) < 0)
			return v->n ? EINVAL : -1;
		if (vf >= m.num)
			return ENODEV;
		next->vf[vf].policy = pol;
		break;
	default:
		if (!p_pkey(v->b, n, &pk))
			return v->n ? EINVAL : -1;
		if (vf >= m.num)
			return ENODEV;
		next->vf[vf].pkeys[item] = pk;
		break;
	}
	return validate(next);
}

/* Open fds of attributes, kept across VF destruction (stale ones). */
struct held {
	int fd, kind;
	unsigned int vf, item;
};
static struct held held[16];
static unsigned int nheld;

static void kind_path(char *path, size_t size, int kind, unsigned int vf,
		      unsigned int item)
{
	if (kind == K_NUMVFS)
		snprintf(path, size,
			 "%s/class/infiniband/vhca0/device/sriov_numvfs", sysfs);
	else
		attr_path(path, size, vf,
			  kind == K_NODE ? A_NODE : kind == K_PORT ? A_PORT :
			  kind == K_POLICY ? A_POLICY : A_PKEY0 + (int)item);
}

/* One write as a guest admin would do it: write, pwrite, writev. */
static int do_write(int fd, const struct value *v)
{
	ssize_t n;

	switch (rn(4)) {
	case 0:
		n = pwrite(fd, v->b, v->n, (off_t)rn(5000));
		break;
	case 1: {
		size_t cut = v->n ? rn((uint32_t)v->n + 1) : 0;
		struct iovec iov[2] = {
			{ .iov_base = (void *)v->b, .iov_len = cut },
			{ .iov_base = (void *)(v->b + cut), .iov_len = v->n - cut },
		};

		n = writev(fd, iov, 2);
		break;
	}
	default:
		n = write(fd, v->b, v->n);
		break;
	}
	if (n < 0)
		return errno;
	return (size_t)n == v->n ? 0 : -2;
}

static void sysfs_write(int kind)
{
	static struct value v, part;
	unsigned int vf = kind == K_NUMVFS ? 0 :
			  rn(m.num + 2 > CACHED_VFS ? m.num + 2 : CACHED_VFS);
	unsigned int item = kind == K_PKEY ? (chance(60) ? rn(4) : rn(NPKEYS)) : 0;
	bool which[NPKEYS] = { false }, created, split = chance(10);
	struct model next;
	char path[4096];
	struct held *h = NULL;
	int fd, want, got;

	if (kind != K_NUMVFS && m.num && chance(85))
		vf = rn(m.num);
	v.n = 0;
	switch (kind) {
	case K_NUMVFS: gen_numvfs_text(&v); break;
	case K_NODE: case K_PORT: gen_guid_text(&v); break;
	case K_POLICY: gen_policy_text(&v); break;
	default: gen_pkey_text(&v, vf); break;
	}
	/* A stale fd: a VF's attribute opened while it existed. */
	if (nheld && chance(15)) {
		h = &held[rn(nheld)];
		kind = h->kind;
		vf = h->vf;
		item = h->item;
	}
	kind_path(path, sizeof(path), kind, vf, item);
	fd = h ? h->fd : open(path, O_WRONLY | O_CLOEXEC |
					    (chance(10) ? O_TRUNC : 0));
	if (fd < 0) {
		if (kind == K_NUMVFS || vf < m.num || errno != ENOENT)
			FAIL("open %s: %s", path, strerror(errno));
		return;
	}
	/* Partial: the value in two writes, each judged alone. */
	for (int piece = 0; piece < (split ? 2 : 1); piece++) {
		const struct value *w = &v;

		if (split) {
			size_t cut = v.n / 2;

			part.n = piece ? v.n - cut : cut;
			memcpy(part.b, v.b + (piece ? cut : 0), part.n);
			w = &part;
		}
		req_no++;
		want = predict_write(kind, vf, item, w, &next, &created);
		got = do_write(fd, w);
		if (got != want && !(want == -1 && (got == 0 || got == EINVAL)))
			FAIL("write of %zu bytes \"%.*s\" to %s: %s, the model says %s",
			     w->n, (int)(w->n < 40 ? w->n : 40), w->b, path,
			     got == -2 ? "short" : got ? strerror(got) : "ok",
			     want > 0 ? strerror(want) : want == 0 ? "ok" :
							     "ok or EINVAL");
		if (got == 0 && want != -1)
			m = next;
		if (got == 0)
			sys_ok++;
		else
			sys_refused++;
		if (created) {
			/* new VFs: their default identity, learnt once */
			for (unsigned int i = 0; i < m.num; i++) {
				struct vf d;

				if (have_default[i] || !read_vf(i, &d, true, NULL))
					continue;
				defaults[i] = m.vf[i] = d;
				have_default[i] = true;
			}
			if (validate(&m))
				FAIL("created VFs break the rules (GUIDs or P_Keys)");
		}
		if (kind == K_PKEY)
			which[item] = true;
		compare(created || kind == K_NUMVFS, (int)vf, which);
	}
	if (!h && kind != K_NUMVFS && nheld < 16 && chance(20)) {
		held[nheld++] = (struct held){ .fd = fd, .kind = kind, .vf = vf,
					       .item = item };
		return;
	}
	if (!h)
		close(fd);
}

/* Everything else a file system user can try: all refused, none matters. */
static void sysfs_misc(void)
{
	char path[4096], to[4096];
	const char *pf = "class/infiniband/vhca0";
	int ret = 0, fd;

	req_no++;
	switch (rn(7)) {
	case 0:	/* a read-only attribute for writing */
		snprintf(path, sizeof(path), "%s/%s/%s", sysfs, pf,
			 chance(50) ? "device/sriov_totalvfs" : "node_guid");
		fd = open(path, O_WRONLY | O_CLOEXEC);
		ret = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		break;
	case 1:
		snprintf(path, sizeof(path), "%s/%s/device/sriov/%u/evil", sysfs,
			 pf, rn(2));
		fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		ret = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		break;
	case 2:
		attr_path(path, sizeof(path), rn(2), A_POLICY);
		ret = unlink(path) ? errno : 0;
		break;
	case 3:
		snprintf(path, sizeof(path), "%s/%s/device/sriov/%u", sysfs, pf,
			 100 + rn(20));
		ret = mkdir(path, 0755) ? errno : 0;
		break;
	case 4:
		attr_path(path, sizeof(path), rn(2), A_NODE);
		ret = chmod(path, 0666) ? errno : 0;
		break;
	case 5:
		attr_path(path, sizeof(path), rn(2), A_NODE);
		attr_path(to, sizeof(to), rn(2), A_PORT);
		ret = rename(path, to) ? errno : 0;
		break;
	default:	/* truncate a writable one: allowed, and nothing */
		attr_path(path, sizeof(path), 0, A_PKEY0 + (int)rn(4));
		if (m.num && truncate(path, 0))
			FAIL("truncate %s: %s", path, strerror(errno));
		compare(false, 0, NULL);
		return;
	}
	if (!ret)
		FAIL("%s: allowed (case %d)", path, 0);
	compare(false, -1, NULL);
}

/* ---- netlink ------------------------------------------------------------ */

struct rec {
	uint8_t b[RECORD_MAX + 8192] __attribute__((aligned(8)));
	size_t n;
};

static size_t put_attr(uint8_t *b, size_t off, uint16_t type, const void *data,
		       size_t len)
{
	struct nlattr a = { .nla_len = (uint16_t)(NLA_HDRLEN + len),
			    .nla_type = type };

	memcpy(b + off, &a, sizeof(a));
	if (len)
		memcpy(b + off + NLA_HDRLEN, data, len);
	memset(b + off + NLA_HDRLEN + len, 0, NLA_ALIGN(len) - len);
	return off + NLA_HDRLEN + NLA_ALIGN(len);
}

static void end_nest(uint8_t *b, size_t start, size_t off)
{
	uint16_t len = (uint16_t)(off - start);

	memcpy(b + start, &len, sizeof(len));
}

static uint32_t pick_vf(void)
{
	switch (rn(10)) {
	case 0: return m.num;
	case 1: return m.total;
	case 2: return UINT32_MAX - rn(2);
	case 3: return rn(MAX_VFS + 2);
	default: return m.num ? rn(m.num) : 0;
	}
}

/* One IFLA_VF_INFO: GUIDs, link state, P_Key table, or what is refused. */
static size_t gen_vf_info(uint8_t *b, size_t off)
{
	size_t start = off;
	unsigned int parts = 1 + rn(4);

	off = put_attr(b, off, (uint16_t)(IFLA_VF_INFO |
					  (chance(30) ? NLA_F_NESTED : 0)),
		       NULL, 0);
	for (unsigned int i = 0; i < parts; i++) {
		switch (rn(10)) {
		case 0: case 1: case 2: {
			struct ifla_vf_guid g = { .vf = pick_vf(),
						  .guid = pick_guid() };
			size_t len = chance(85) ? sizeof(g) :
				     chance(50) ? sizeof(g) - 4 - rn(4) :
						  sizeof(g) + 4;
			uint8_t tmp[64] = { 0 };

			memcpy(tmp, &g, sizeof(g));
			off = put_attr(b, off, chance(50) ? IFLA_VF_IB_NODE_GUID :
							   IFLA_VF_IB_PORT_GUID,
				       tmp, len);
			break;
		}
		case 3: case 4: {
			struct ifla_vf_link_state s = {
				.vf = pick_vf(),
				.link_state = chance(85) ? rn(3) : (uint32_t)rnd(),
			};

			off = put_attr(b, off, IFLA_VF_LINK_STATE, &s,
				       chance(90) ? sizeof(s) : 4);
			break;
		}
		case 5: case 6: case 7: {
			uint8_t tmp[4 + 2 * NPKEYS + 8];
			uint32_t vf = pick_vf();
			unsigned int n = chance(60) ? rn(8) : chance(50) ? NPKEYS :
					 rn(NPKEYS + 2);
			size_t len = 4 + 2 * (size_t)n;

			memcpy(tmp, &vf, 4);
			for (unsigned int k = 0; k < n; k++) {
				uint16_t p = k == 0 && chance(80) ? 0xffff :
					     pick_pkey(vf);

				memcpy(tmp + 4 + 2 * k, &p, 2);
			}
			if (chance(10))
				len = chance(50) ? len + 1 : rn(4);
			off = put_attr(b, off, VHCA_IFLA_VF_PKEY_TABLE, tmp, len);
			break;
		}
		case 8: {	/* what an IB PF cannot do */
			uint8_t tmp[64] = { 0 };

			rnd_fill(tmp, sizeof(tmp));
			off = put_attr(b, off, (uint16_t)(1 + rn(IFLA_VF_MAX)),
				       tmp, rn(40));
			break;
		}
		default: {	/* above IFLA_VF_MAX: ignored (ours aside) */
			uint8_t tmp[16];

			rnd_fill(tmp, sizeof(tmp));
			off = put_attr(b, off,
				       (uint16_t)(IFLA_VF_MAX + 1 + rn(100)),
				       tmp, rn(16));
			break;
		}
		}
	}
	end_nest(b, start, off);
	return off;
}

static uint32_t seq_next = 1;

/* An RTM_SETLINK (mostly well formed) at @off; its end. */
static size_t gen_setlink(uint8_t *b, size_t off)
{
	struct nlmsghdr h = {
		.nlmsg_type = RTM_SETLINK,
		.nlmsg_flags = NLM_F_REQUEST | (chance(70) ? NLM_F_ACK : 0),
		.nlmsg_seq = seq_next++,
		.nlmsg_pid = (uint32_t)rnd(),
	};
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	size_t start = off;

	if (chance(10))
		h.nlmsg_type = RTM_NEWLINK;
	if (chance(4))
		h.nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
	if (chance(4))
		h.nlmsg_type = (uint16_t)rnd();
	if (h.nlmsg_type == BIND_GUEST_TYPE)
		h.nlmsg_type = RTM_GETLINK;
	if (chance(4))
		h.nlmsg_flags = (uint16_t)rnd();
	if (chance(10))
		rnd_fill(&ifi, sizeof(ifi));
	off += NLMSG_HDRLEN;
	memcpy(b + off, &ifi, sizeof(ifi));
	off += NLMSG_ALIGN(sizeof(ifi));
	if (chance(30)) {
		static const char *const names[] = { "vhca0", "vhca1", "vhca0_vf0",
						     "", "vhca0\0junk" };
		unsigned int i = rn(5);
		size_t len = i == 4 ? 11 : strlen(names[i]) + 1;

		if (chance(15))
			len--;	/* no NUL */
		off = put_attr(b, off, IFLA_IFNAME, names[i], len);
	}
	if (chance(10)) {
		uint32_t mtu = (uint32_t)rnd();

		off = put_attr(b, off, chance(50) ? IFLA_MTU : 0, &mtu, 4);
	}
	if (chance(85)) {
		size_t list = off;
		unsigned int vfs = rn(4);

		off = put_attr(b, off, (uint16_t)(IFLA_VFINFO_LIST |
						  (chance(30) ? NLA_F_NESTED : 0)),
			       NULL, 0);
		for (unsigned int i = 0; i < vfs; i++)
			off = gen_vf_info(b, off);
		if (chance(5)) {
			uint32_t x = (uint32_t)rnd();

			off = put_attr(b, off, (uint16_t)(2 + rn(10)), &x, 4);
		}
		end_nest(b, list, off);
	}
	h.nlmsg_len = (uint32_t)(off - start);
	memcpy(b + start, &h, sizeof(h));
	return off;
}

/* Mutations of a record of valid messages: lengths, bytes, cuts. */
static void mutate(struct rec *r)
{
	unsigned int n = 1 + rn(3);

	for (unsigned int i = 0; i < n && r->n >= 4; i++) {
		size_t at = rn((uint32_t)r->n);

		switch (rn(8)) {
		case 0:
			r->b[at] ^= (uint8_t)(1u << rn(8));
			break;
		case 1:	/* an attribute's or the message's length */
			if (at + 2 <= r->n) {
				uint16_t v = (uint16_t)(chance(50) ? rn(64) :
								     rnd());

				memcpy(r->b + (at & ~(size_t)3), &v, 2);
			}
			break;
		case 2: {
			uint32_t v = chance(50) ? (uint32_t)r->n + rn(8) - 4 :
						  (uint32_t)rnd();

			memcpy(r->b, &v, 4);
			break;
		}
		case 3:
			r->n = at;
			break;
		case 4: {
			size_t add = rn(64);

			rnd_fill(r->b + r->n, add);
			r->n += add;
			break;
		}
		case 5:
			r->b[at] = 0;
			break;
		case 6:
			r->b[at] = (uint8_t)rnd();
			break;
		default: {	/* a 16-bit field anywhere, to a boundary */
			static const uint16_t v[] = { 0, 1, 3, 4, 5, 0xffff, 0x8000 };

			if (at + 2 <= r->n)
				memcpy(r->b + at, &v[rn(7)], 2);
			break;
		}
		}
	}
}

/* ---- the model of mgmt.c and libnl ---------------------------------------- */

struct entry {
	uint32_t vf;
	int set;	/* 1 node, 2 port, 3 policy, 4 pkeys */
	uint64_t guid;
	int policy;
	uint16_t pkeys[NPKEYS];
};

#define MAX_ENTRIES 8192
static struct entry entries[MAX_ENTRIES];
static unsigned int nentries;

static uint16_t u16_at(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t u32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* nla_ok() / nla_next() of libnl. */
static bool a_ok(const uint8_t *p, int rem)
{
	return rem >= NLA_HDRLEN && u16_at(p) >= NLA_HDRLEN && u16_at(p) <= rem;
}

static const uint8_t *a_next(const uint8_t *p, int *rem)
{
	int len = NLA_ALIGN(u16_at(p));

	*rem -= len;
	return p + len;
}

static int a_type(const uint8_t *p)
{
	return u16_at(p + 2) & NLA_TYPE_MASK;
}

static int a_len(const uint8_t *p)
{
	return u16_at(p) - NLA_HDRLEN;
}

static struct entry *add_entry(uint32_t vf, int set)
{
	struct entry *e = &entries[nentries < MAX_ENTRIES - 1 ? nentries++ :
								 nentries];

	memset(e, 0, sizeof(*e));
	e->vf = vf;
	e->set = set;
	return e;
}

/* parse_vf_info(): 0 or the errno. */
static int model_vf_info(const uint8_t *data, int len)
{
	const uint8_t *tb[IFLA_VF_MAX + 1] = { NULL }, *p;
	int rem;

	for (p = data, rem = len; a_ok(p, rem); p = a_next(p, &rem)) {
		int t = a_type(p);

		if (t > IFLA_VF_MAX)
			continue;
		if ((t == IFLA_VF_IB_NODE_GUID || t == IFLA_VF_IB_PORT_GUID) &&
		    a_len(p) < (int)sizeof(struct ifla_vf_guid))
			return EINVAL;
		if (t == IFLA_VF_LINK_STATE &&
		    a_len(p) < (int)sizeof(struct ifla_vf_link_state))
			return EINVAL;
		tb[t] = p;
	}
	for (p = data, rem = len; a_ok(p, rem); p = a_next(p, &rem)) {
		struct entry *e;
		int n = a_len(p);

		if (a_type(p) != VHCA_IFLA_VF_PKEY_TABLE)
			continue;
		if (n < 4 || (n - 4) % 2 || (n - 4) / 2 > NPKEYS)
			return EINVAL;
		e = add_entry(u32_at(p + NLA_HDRLEN), 4);
		memcpy(e->pkeys, p + NLA_HDRLEN + 4, (size_t)n - 4);
	}
	if (rem)
		return EINVAL;
	for (int t = 1; t <= IFLA_VF_MAX; t++)
		if (tb[t] && t != IFLA_VF_IB_NODE_GUID &&
		    t != IFLA_VF_IB_PORT_GUID && t != IFLA_VF_LINK_STATE)
			return EOPNOTSUPP;
	if (tb[IFLA_VF_IB_NODE_GUID]) {
		struct ifla_vf_guid g;

		memcpy(&g, tb[IFLA_VF_IB_NODE_GUID] + NLA_HDRLEN, sizeof(g));
		add_entry(g.vf, 1)->guid = g.guid;
	}
	if (tb[IFLA_VF_IB_PORT_GUID]) {
		struct ifla_vf_guid g;

		memcpy(&g, tb[IFLA_VF_IB_PORT_GUID] + NLA_HDRLEN, sizeof(g));
		add_entry(g.vf, 2)->guid = g.guid;
	}
	if (tb[IFLA_VF_LINK_STATE]) {
		struct ifla_vf_link_state s;
		struct entry *e;

		memcpy(&s, tb[IFLA_VF_LINK_STATE] + NLA_HDRLEN, sizeof(s));
		e = add_entry(s.vf, 3);
		switch (s.link_state) {
		case IFLA_VF_LINK_STATE_AUTO: e->policy = POL_FOLLOW; break;
		case IFLA_VF_LINK_STATE_ENABLE: e->policy = POL_UP; break;
		case IFLA_VF_LINK_STATE_DISABLE: e->policy = POL_DOWN; break;
		default: return EINVAL;
		}
	}
	return 0;
}

/* vhca_mgmt_handle() on the message at @msg: 0 or the errno; @s updated. */
static int model_msg(const uint8_t *msg, struct model *s)
{
	struct nlmsghdr h;
	const uint8_t *ifname = NULL, *list = NULL, *p;
	int rem, list_len = 0;

	memcpy(&h, msg, sizeof(h));
	if (h.nlmsg_type != RTM_SETLINK && h.nlmsg_type != RTM_NEWLINK)
		return EOPNOTSUPP;
	if (h.nlmsg_type == RTM_NEWLINK && (h.nlmsg_flags & NLM_F_CREATE) &&
	    (h.nlmsg_flags & NLM_F_EXCL))
		return EEXIST;
	if (!(h.nlmsg_flags & NLM_F_REQUEST))
		return EINVAL;
	if (h.nlmsg_len < NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifinfomsg)))
		return EINVAL;
	p = msg + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifinfomsg));
	rem = (int)h.nlmsg_len - NLMSG_HDRLEN -
	      NLMSG_ALIGN(sizeof(struct ifinfomsg));
	for (; a_ok(p, rem); p = a_next(p, &rem)) {
		int t = a_type(p);

		if (t > IFLA_MAX)
			continue;
		if (t == IFLA_IFNAME) {
			if (a_len(p) < 1 || p[NLA_HDRLEN + a_len(p) - 1])
				return EINVAL;
			ifname = p + NLA_HDRLEN;
		} else if (t == IFLA_VFINFO_LIST) {
			list = p + NLA_HDRLEN;
			list_len = a_len(p);
		}
	}
	if (ifname && strcmp((const char *)ifname, "vhca0"))
		return ENODEV;
	if (!list)
		return 0;
	nentries = 0;
	for (p = list, rem = list_len; a_ok(p, rem); p = a_next(p, &rem)) {
		int ret;

		if (a_type(p) != IFLA_VF_INFO)
			return EINVAL;
		ret = model_vf_info(p + NLA_HDRLEN, a_len(p));
		if (ret)
			return ret;
	}
	if (rem)
		return EINVAL;
	/* vhca_pf_apply_plan(): every VF named exists, then all or nothing */
	for (unsigned int i = 0; i < nentries; i++)
		if (entries[i].vf >= s->num)
			return ENODEV;
	{
		static struct model shadow;

		shadow = *s;
		for (unsigned int i = 0; i < nentries; i++) {
			struct vf *v = &shadow.vf[entries[i].vf];

			switch (entries[i].set) {
			case 1: v->node = entries[i].guid; break;
			case 2: v->port = entries[i].guid; break;
			case 3: v->policy = entries[i].policy; break;
			default:
				memcpy(v->pkeys, entries[i].pkeys,
				       sizeof(v->pkeys));
			}
		}
		if (validate(&shadow))
			return EINVAL;
		*s = shadow;
	}
	return 0;
}

struct ack {
	struct nlmsghdr hdr;
	struct nlmsgerr err;
};

#define MAX_ACKS 4096
static struct ack want_acks[MAX_ACKS], got_acks[MAX_ACKS];
static unsigned int nwant, ngot;

static void want(const struct nlmsghdr *req, int error)
{
	struct ack *a = &want_acks[nwant < MAX_ACKS - 1 ? nwant++ : nwant];

	memset(a, 0, sizeof(*a));
	a->hdr.nlmsg_len = sizeof(*a);
	a->hdr.nlmsg_type = NLMSG_ERROR;
	a->hdr.nlmsg_flags = error ? NLM_F_CAPPED : 0;
	a->hdr.nlmsg_seq = req->nlmsg_seq;
	a->err.error = -error;
	a->err.msg = *req;
}

/* handle_record() and serve_conn() on @r; false if it drops the peer. */
static bool model_record(const struct rec *r)
{
	int remaining = (int)r->n;
	const uint8_t *p = r->b;
	struct nlmsghdr h;

	nwant = 0;
	if (!r->n)
		return false;	/* recv() says 0: the connection ends */
	memcpy(&h, p, r->n < sizeof(h) ? r->n : sizeof(h));
	if (r->n > RECORD_MAX) {
		records_bad++;
		want(&h, EMSGSIZE);
		return true;
	}
	if (!(remaining >= (int)sizeof(h) && h.nlmsg_len >= sizeof(h) &&
	      h.nlmsg_len <= (uint32_t)remaining)) {
		struct nlmsghdr bad = { .nlmsg_len = (uint32_t)r->n };

		records_bad++;
		want(&bad, EINVAL);
		return true;
	}
	while (remaining >= (int)sizeof(h)) {
		int ret;

		memcpy(&h, p, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > (uint32_t)remaining)
			break;
		ret = model_msg(p, &m);
		if (ret)
			msg_refused++;
		else
			msg_ok++;
		if (ret || (h.nlmsg_flags & NLM_F_ACK))
			want(&h, ret);
		remaining -= (int)NLMSG_ALIGN(h.nlmsg_len);
		p += NLMSG_ALIGN(h.nlmsg_len);
	}
	return true;
}

/* ---- the socket ------------------------------------------------------------ */

static int sock_fd = -1;

static int connect_mgmt(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int sndbuf = 1 << 20;

	memcpy(a.sun_path, sock_path, strlen(sock_path) + 1);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static void ensure_conn(void)
{
	for (int i = 0; sock_fd < 0 && i < 50; i++) {
		sock_fd = connect_mgmt();
		if (sock_fd < 0)
			usleep(100000);
	}
	if (sock_fd < 0)
		FAIL("cannot connect to %s: %s", sock_path, strerror(-sock_fd));
}

/* Replies until the ack of @sync, within 5 s; false on a timeout. */
static bool read_acks(uint32_t sync)
{
	uint64_t end = now_us() + 5000000;

	ngot = 0;
	while (now_us() < end) {
		struct ack a;
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
		ssize_t n;

		setsockopt(sock_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = recv(sock_fd, &a, sizeof(a), MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return false;
		if (n != sizeof(a)) {
			FAIL("a reply of %zd bytes", n);
			continue;
		}
		if (a.hdr.nlmsg_seq == sync && a.err.msg.nlmsg_seq == sync) {
			if (a.err.error)
				FAIL("the sync message was refused: %d",
				     a.err.error);
			return true;
		}
		if (ngot < MAX_ACKS)
			got_acks[ngot++] = a;
	}
	return false;
}

static bool send_record(const uint8_t *b, size_t n)
{
	return send(sock_fd, b, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* A record, then a no-op that must be acked: all answers in between. */
static void mgmt_request(void)
{
	static struct rec r, sync;
	unsigned int msgs = chance(85) ? 1 : 2 + rn(3);
	bool keeps;
	struct nlmsghdr sh = { .nlmsg_len = NLMSG_HDRLEN +
					    NLMSG_ALIGN(sizeof(struct ifinfomsg)),
			       .nlmsg_type = RTM_SETLINK,
			       .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK };
	static uint32_t sync_seq = 0xfeed0000;

	req_no++;
	r.n = 0;
	for (unsigned int i = 0; i < msgs && r.n < RECORD_MAX - 4096; i++)
		r.n = gen_setlink(r.b, r.n);
	if (chance(30))
		mutate(&r);
	if (chance(5)) {	/* bytes, with a length that may fit */
		r.n = rn(256);
		rnd_fill(r.b, r.n);
		if (r.n >= 4 && chance(50))
			memcpy(r.b, &(uint32_t){ (uint32_t)r.n - rn(8) }, 4);
	}
	if (chance(1)) {	/* past the record size the daemon reads */
		size_t big = RECORD_MAX + 1 + rn(4096);

		memset(r.b + r.n, 0, big - r.n);
		r.n = big;
	}
	if (chance(1))
		r.n = 0;
	/* No message of vhca's guest binding: its answer is not modelled. */
	for (size_t off = 0; off + NLMSG_HDRLEN <= r.n && r.n <= RECORD_MAX;) {
		uint32_t len = u32_at(r.b + off);

		if (u16_at(r.b + off + 4) == BIND_GUEST_TYPE)
			r.b[off + 4] ^= 1;
		if (len < NLMSG_HDRLEN || len > r.n - off)
			break;
		off += NLMSG_ALIGN(len);
	}
	ensure_conn();
	if (sock_fd < 0)
		return;
	keeps = model_record(&r);
	if (!send_record(r.b, r.n)) {
		/* the idle timeout or a record that ended it: again */
		close(sock_fd);
		sock_fd = -1;
		ensure_conn();
		if (sock_fd < 0 || !send_record(r.b, r.n)) {
			FAIL("cannot send a record of %zu bytes: %s", r.n,
			     strerror(errno));
			return;
		}
	}
	if (!keeps) {
		close(sock_fd);
		sock_fd = -1;
		ensure_conn();
	}
	sh.nlmsg_seq = ++sync_seq;
	memcpy(sync.b, &sh, sizeof(sh));
	memset(sync.b + sizeof(sh), 0, sh.nlmsg_len - sizeof(sh));
	if (sock_fd < 0 || !send_record(sync.b, sh.nlmsg_len) ||
	    !read_acks(sync_seq)) {
		FAIL("mgmt.sock did not answer (a record of %zu bytes before)",
		     r.n);
		close(sock_fd);
		sock_fd = -1;
		return;
	}
	if (ngot != nwant)
		FAIL("%u answers to a record of %zu bytes, the model says %u",
		     ngot, r.n, nwant);
	for (unsigned int i = 0; i < ngot && i < nwant; i++)
		if (memcmp(&got_acks[i], &want_acks[i], sizeof(struct ack))) {
			FAIL("answer %u: seq %u error %d flags %#x, the model says seq %u error %d flags %#x",
			     i, got_acks[i].hdr.nlmsg_seq, got_acks[i].err.error,
			     got_acks[i].hdr.nlmsg_flags,
			     want_acks[i].hdr.nlmsg_seq, want_acks[i].err.error,
			     want_acks[i].hdr.nlmsg_flags);
			break;
		}
	compare(chance(10), -1, NULL);
}

/* ---- a peer that is not root ----------------------------------------------- */

/* Drops CAP_NET_ADMIN from this process (a root without it). */
static int drop_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
	d[CAP_NET_ADMIN / 32].permitted &= ~(1u << (CAP_NET_ADMIN % 32));
	d[CAP_NET_ADMIN / 32].inheritable &= ~(1u << (CAP_NET_ADMIN % 32));
	return (int)syscall(SYS_capset, &h, d);
}

/*
 * In a child that may not manage the PF - uid and gid 65534, or
 * (@as_root) root without CAP_NET_ADMIN - connect and send a valid plan
 * (VF 0's node GUID); exit 0 if refused as it must be.  @open_socket:
 * the parent has opened the socket's mode, so only vhcad's own check of
 * the peer stands in the way.
 */
static int nobody(bool open_socket, bool as_root)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
		uint8_t attrs[128];
	} req = { .h = { .nlmsg_type = RTM_SETLINK,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			 .nlmsg_seq = 77 } };
	struct ifla_vf_guid g = { .vf = 0, .guid = 0x0225aaaabbbbccccull };
	struct ack a;
	size_t off = 0, list, info;
	int fd;

	if (as_root ? drop_net_admin() :
		      setgroups(0, NULL) || setgid(65534) || setuid(65534))
		return 2;
	fd = connect_mgmt();
	if (!open_socket)
		return fd == -EACCES || fd == -EPERM ? 0 : 1;
	if (fd < 0)
		return 3;
	list = off;
	off = put_attr(req.attrs, off, IFLA_VFINFO_LIST, NULL, 0);
	info = off;
	off = put_attr(req.attrs, off, IFLA_VF_INFO, NULL, 0);
	off = put_attr(req.attrs, off, IFLA_VF_IB_NODE_GUID, &g, sizeof(g));
	end_nest(req.attrs, info, off);
	end_nest(req.attrs, list, off);
	req.h.nlmsg_len = (uint32_t)(sizeof(req.h) + sizeof(req.ifi) + off);
	if (send(fd, &req, req.h.nlmsg_len, MSG_NOSIGNAL) < 0)
		return 4;
	if (recv(fd, &a, sizeof(a), 0) != sizeof(a))
		return 5;
	return a.hdr.nlmsg_type == NLMSG_ERROR && a.err.error == -EPERM ? 0 : 6;
}

static void check_nobody(void)
{
	char dir[4096];
	struct stat sd, ss;

	/* vhcad serves one connection at a time: ours goes first */
	if (sock_fd >= 0)
		close(sock_fd);
	sock_fd = -1;
	snprintf(dir, sizeof(dir), "%s", sock_path);
	*strrchr(dir, '/') = 0;
	if (stat(dir, &sd) || stat(sock_path, &ss)) {
		FAIL("stat %s: %s", sock_path, strerror(errno));
		return;
	}
	/* 0: nobody, socket as it is; 1: nobody, socket opened; 2: root
	 * without CAP_NET_ADMIN */
	for (int test = 0; test < 3; test++) {
		int status = 0;
		pid_t pid;

		req_no++;
		if (test == 1 && (chmod(dir, sd.st_mode | 0011) ||
				  chmod(sock_path, 0666))) {
			FAIL("chmod: %s", strerror(errno));
			return;
		}
		pid = fork();
		if (!pid)
			_exit(nobody(test > 0, test == 2));
		waitpid(pid, &status, 0);
		if (test == 1) {
			chmod(sock_path, ss.st_mode & 07777);
			chmod(dir, sd.st_mode & 07777);
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			FAIL("%s was not refused on mgmt.sock (status %#x)",
			     test == 0 ? "uid 65534" :
			     test == 1 ? "uid 65534, on a socket of mode 0666" :
					 "root without CAP_NET_ADMIN",
			     status);
		compare(true, 0, NULL);
	}
	printf("fuzz_mgmt: uid 65534 cannot connect to mgmt.sock and is refused (EPERM) when it can; so is root without CAP_NET_ADMIN\n");
}

/* ---- main -------------------------------------------------------------------- */

static uint64_t read_pf_guid(const char *file, int skip)
{
	char path[4096], buf[128];
	uint64_t g = 0;
	const char *p;

	snprintf(path, sizeof(path), "%s/class/infiniband/vhca0/%s", sysfs,
		 file);
	if (read_path(path, buf, sizeof(buf)) <= 0)
		return 0;
	p = buf;
	for (int i = 0; i < skip; i++)
		p = strchr(p, ':') + 1;
	for (int i = 0; i < 4; i++, p += 5)
		g = g << 16 | strtoull(p, NULL, 16);
	return g;
}

int main(int argc, char **argv)
{
	uint64_t end;
	char path[4096], buf[64];
	unsigned long total;
	unsigned long sys_reqs = 0, nl_reqs = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc != 5 || !(sysfs = getenv("SYSFS_PATH"))) {
		fprintf(stderr, "usage: SYSFS_PATH=... fuzz_mgmt SECONDS SEED VHCAD_PID RUN_DIR\n");
		return 2;
	}
	end = now_us() + (uint64_t)atoi(argv[1]) * 1000000;
	seed = strtoull(argv[2], NULL, 0);
	vhcad = (pid_t)atoi(argv[3]);
	snprintf(sock_path, sizeof(sock_path), "%s/mgmt.sock", argv[4]);
	full_checks = getenv("VHCA_FUZZ_FULL") && *getenv("VHCA_FUZZ_FULL") == '1';
	rnd_seed(seed);
	memset(cached, -1, sizeof(cached));
	for (unsigned int i = 0; i < 16; i++)
		held[i].fd = -1;
	printf("fuzz_mgmt: %s s, seed %#" PRIx64 " (VHCA_FUZZ_SEED replays it)\n",
	       argv[1], seed);

	/* The model starts as the device is. */
	snprintf(path, sizeof(path),
		 "%s/class/infiniband/vhca0/device/sriov_totalvfs", sysfs);
	if (read_path(path, buf, sizeof(buf)) <= 0 ||
	    !p_decimal(buf, strip_nl(buf, strlen(buf)), &total) ||
	    total > MAX_VFS) {
		fprintf(stderr, "fuzz_mgmt: sriov_totalvfs?\n");
		return 2;
	}
	m.total = (unsigned int)total;
	m.num = read_numvfs();
	pf_node = read_pf_guid("node_guid", 0);
	pf_port = read_pf_guid("ports/1/gids/0", 4);
	for (unsigned int i = 0; i < m.num; i++) {
		if (!read_vf(i, &m.vf[i], true, NULL)) {
			fprintf(stderr, "fuzz_mgmt: VF %u unreadable\n", i);
			return 2;
		}
		defaults[i] = m.vf[i];
		have_default[i] = true;
	}
	if (validate(&m) || !guid_ok(pf_node) || !guid_ok(pf_port)) {
		fprintf(stderr, "fuzz_mgmt: the device breaks its own rules at the start\n");
		return 2;
	}
	check_own_view(0, &m.vf[0]);

	while (now_us() < end) {
		uint32_t what = rn(100);

		if (what < 55) {
			static const int kinds[] = { K_NODE, K_PORT, K_POLICY,
						     K_PKEY, K_PKEY };

			sysfs_write(kinds[rn(5)]);
			sys_reqs++;
		} else if (what < 60) {
			sysfs_write(K_NUMVFS);
			sys_reqs++;
		} else if (what < 63) {
			sysfs_misc();
			sys_reqs++;
		} else {
			mgmt_request();
			nl_reqs++;
		}
		if (!alive(vhcad)) {
			FAIL("vhcad died");
			return 1;
		}
	}
	check_nobody();
	compare(true, -1, NULL);
	printf("fuzz_mgmt: sysfs: %lu requests, %lu writes accepted, %lu refused; mgmt.sock: %lu records (%lu refused whole), %lu messages applied, %lu refused\n",
	       sys_reqs, sys_ok, sys_refused, nl_reqs, records_bad, msg_ok,
	       msg_refused);
	printf("fuzz_mgmt: %u VFs at the end: %s\n", m.num,
	       failures ? "FAILED" : "every answer as the model said");
	return failures ? 1 : 0;
}
