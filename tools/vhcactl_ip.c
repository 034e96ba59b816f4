// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A VF's IP addresses in plans (vhcactl.h): "ip ADDR/PREFIX[,ADDR/PREFIX
 * ...]" or "ip none", the whole list of the VF's port (what its IPoIB
 * interface would hold; rdma_cm resolves them, docs/rdma_cm.md).  Each
 * address is checked here for a message that names it; vhcad checks
 * again (sysfs device/sriov/N/ip) and refuses addresses another port
 * holds.  Plans that set addresses go through sysfs with rollback.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhcactl.h"

/* One "ADDR/PREFIX"; NULL or the reason. */
static const char *check_one(const char *text)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned char bin[16];
	unsigned long prefix, max;

	if (strlen(text) >= sizeof(buf))
		return "too long";
	snprintf(buf, sizeof(buf), "%s", text);
	slash = strchr(buf, '/');
	if (!slash)
		return "needs a prefix length (ADDR/PREFIX)";
	*slash++ = 0;
	if (inet_pton(AF_INET, buf, bin) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, buf, bin) == 1)
		max = 128;
	else
		return "not an IPv4 or IPv6 address";
	if (*slash < '0' || *slash > '9')
		return "the prefix length is not a number";
	prefix = strtoul(slash, &end, 10);
	if (*end || prefix > max)
		return max == 32 ? "the prefix length is 0 to 32" :
				   "the prefix length is 0 to 128";
	return NULL;
}

const char *ctl_parse_ips(struct vf_req *r, const char *value, char *msg,
			  size_t msg_len)
{
	char copy[sizeof(r->ips)], *save, *tok;
	const char *err;
	size_t used = 0;
	unsigned int n = 0;

	if (r->has_ips) {
		snprintf(msg, msg_len, "ip given twice");
		return msg;
	}
	r->has_ips = true;
	r->ips[0] = 0;
	if (!strcmp(value, "none"))
		return NULL;
	if (strlen(value) >= sizeof(copy)) {
		snprintf(msg, msg_len, "ip: too many addresses");
		return msg;
	}
	snprintf(copy, sizeof(copy), "%s", value);
	save = copy;
	while ((tok = strsep(&save, ","))) {
		err = !*tok ? "an empty address" : check_one(tok);
		if (!err && ++n > CTL_IPS_MAX)
			err = "more addresses than a port holds (8)";
		if (err) {
			snprintf(msg, msg_len, "ip '%s': %s", tok, err);
			return msg;
		}
		used += (size_t)snprintf(r->ips + used, sizeof(r->ips) - used,
					 "%s%s", used ? " " : "", tok);
	}
	return NULL;
}

/* One address of the state a plan leaves, for the clash check. */
struct held_ip {
	unsigned int vf;
	int line;
	bool planned;		/* set by the plan, not already there */
	int family;
	unsigned char bin[16];
	char text[64];
};

static unsigned int collect(const char *list, unsigned int vf, int line,
			    bool planned, struct held_ip *out, unsigned int n,
			    unsigned int max)
{
	char copy[VALUE_MAX], *save = NULL, *tok;

	snprintf(copy, sizeof(copy), "%s", list);
	for (tok = strtok_r(copy, " \n", &save); tok && n < max;
	     tok = strtok_r(NULL, " \n", &save)) {
		struct held_ip *h = &out[n];
		char *slash;

		snprintf(h->text, sizeof(h->text), "%s", tok);
		slash = strchr(tok, '/');
		if (slash)
			*slash = 0;
		h->family = strchr(tok, ':') ? AF_INET6 : AF_INET;
		memset(h->bin, 0, sizeof(h->bin));
		if (inet_pton(h->family, tok, h->bin) != 1)
			continue;
		h->vf = vf;
		h->line = line;
		h->planned = planned;
		n++;
	}
	return n;
}

int ctl_check_ip_clashes(struct plan *plan, unsigned int num_vfs)
{
	unsigned int max = num_vfs * CTL_IPS_MAX, n = 0;
	struct held_ip *all = calloc(max ? max : 1, sizeof(*all));
	int errors = 0;

	if (!all)
		return -1;
	for (unsigned int vf = 0; vf < num_vfs; vf++) {
		const struct vf_req *r = NULL;
		char path[PATH_MAX], cur[VALUE_MAX] = "";

		for (unsigned int i = 0; i < plan->count; i++)
			if (plan->reqs[i].vf == vf && plan->reqs[i].has_ips)
				r = &plan->reqs[i];
		if (r) {
			n = collect(r->ips, vf, r->line, true, all, n, max);
			continue;
		}
		ctl_path_of(path, "class/infiniband/%s/device/sriov/%u/ip",
			    ctl_pf_name, vf);
		if (!ctl_read_attr(path, cur, sizeof(cur)))
			n = collect(cur, vf, 0, false, all, n, max);
	}
	/* An address belongs to one port, as on an IP subnet. */
	for (unsigned int i = 0; i < n; i++)
		for (unsigned int j = 0; j < i; j++) {
			const struct held_ip *a = &all[j], *b = &all[i];

			if (a->family != b->family ||
			    memcmp(a->bin, b->bin, sizeof(a->bin)) ||
			    (!a->planned && !b->planned))
				continue;
			const struct held_ip *p = b->planned ? b : a,
					     *o = p == b ? a : b;

			if (a->vf == b->vf)
				ctl_plan_error(plan, p->line,
					       "address %s given twice to vf %u",
					       p->text, p->vf);
			else
				ctl_plan_error(plan, p->line,
					       "address %s for vf %u is vf %u's",
					       p->text, p->vf, o->vf);
			errors++;
		}
	free(all);
	return errors ? -1 : 0;
}
