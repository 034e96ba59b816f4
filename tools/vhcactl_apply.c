// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhcactl plans run: validated as a whole against the PF's current
 * state, then sent to vhcad's mgmt.sock as one message
 * (vhcactl_netlink.c) or written to sysfs, rolled back on a failure.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vhca/text.h>

#include "vhcactl.h"

/* ---- plans: validation and sysfs writes with rollback ------------------------------- */

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
		int ret = ctl_write_attr(j->ops[i].path, j->ops[i].new);

		if (!ret)
			continue;
		ctl_plan_error(plan, j->ops[i].line, "writing '%s' to %s: %s",
			       j->ops[i].new, j->ops[i].path, strerror(-ret));
		while (i-- > 0) {
			int undo = ctl_write_attr(j->ops[i].path,
						  j->ops[i].old);

			if (undo)
				ctl_error_msg("ROLLBACK FAILED: %s back to '%s': %s",
					      j->ops[i].path, j->ops[i].old,
					      strerror(-undo));
		}
		ctl_error_msg("nothing changed (earlier writes rolled back)");
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

	ctl_path_of(path, "class/infiniband/%s/device/sriov/%u/%s",
		    ctl_pf_name, vf, attr);
	if (ctl_read_attr(path, value, sizeof(value)) ||
	    ctl_parse_guid(value, out)) {
		*out = 0;
		return -1;
	}
	return 0;
}


static int validate_plan(struct plan *plan, struct guid_state *gs)
{
	char path[PATH_MAX], value[VALUE_MAX];
	unsigned int n;
	int errors = 0;

	if (ctl_num_vfs(&n))
		return -1;
	gs->num_vfs = n;
	gs->node = calloc(n + 1, sizeof(uint64_t));
	gs->port = calloc(n + 1, sizeof(uint64_t));
	gs->node_line = calloc(n + 1, sizeof(int));
	gs->port_line = calloc(n + 1, sizeof(int));
	if (!gs->node || !gs->port || !gs->node_line || !gs->port_line) {
		ctl_error_msg("out of memory");
		return -1;
	}
	ctl_path_of(path, "class/infiniband/%s/node_guid", ctl_pf_name);
	if (!ctl_read_attr(path, value, sizeof(value)))
		gs->pf_node = ctl_parse_sysfs_guid(value);
	ctl_path_of(path, "class/infiniband/%s/ports/1/gids/0", ctl_pf_name);
	if (!ctl_read_attr(path, value, sizeof(value)) && strlen(value) == 39)
		gs->pf_port = ctl_parse_sysfs_guid(value + 20);
	for (unsigned int vf = 0; vf < n; vf++) {
		read_vf_guid(vf, "node", &gs->node[vf]);
		read_vf_guid(vf, "port", &gs->port[vf]);
	}

	for (unsigned int i = 0; i < plan->count; i++) {
		struct vf_req *r = &plan->reqs[i];

		if (r->vf >= n) {
			ctl_plan_error(plan, r->line,
				       "no VF %u (%s has %u VFs)", r->vf,
				       ctl_pf_name, n);
			errors++;
			continue;
		}
		for (unsigned int k = 0; k < i; k++)
			if (plan->reqs[k].vf == r->vf) {
				ctl_plan_error(plan, r->line,
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

			ctl_path_of(path, "class/infiniband/%s/device/sriov/%u/pkeys",
				    ctl_pf_name, r->vf);
			len = ctl_count_numbered(path);
			if (len <= 0) {
				ctl_plan_error(plan, r->line,
					       "%s has no VF P_Key table (%s)",
					       ctl_pf_name, path);
				errors++;
			} else if (r->npkeys > (unsigned int)len) {
				ctl_plan_error(plan, r->line,
					       "%u P_Keys, the table holds %d",
					       r->npkeys, len);
				errors++;
			}
		}
		if (r->has_ips) {
			ctl_path_of(path, "class/infiniband/%s/device/sriov/%u/ip",
				    ctl_pf_name, r->vf);
			if (!ctl_exists(path)) {
				ctl_plan_error(plan, r->line,
					       "%s gives VFs no addresses (%s)",
					       ctl_pf_name, path);
				errors++;
			}
		}
		if (r->has_policy) {
			ctl_path_of(path, "class/infiniband/%s/device/sriov/%u/policy",
				    ctl_pf_name, r->vf);
			if (!ctl_exists(path)) {
				ctl_plan_error(plan, r->line, "no %s", path);
				errors++;
			}
		}
	}
	if (errors)
		return -1;
	if (ctl_check_ip_clashes(plan, n))
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
				ctl_plan_error(plan, lines[m],
					       "%s %s of vf %u is also a GUID of vf %u",
					       what[m], text, vf, other);
			else
				ctl_plan_error(plan, lines[m],
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

	ctl_path_of(path, "class/infiniband/%s/device/sriov/%u/%s",
		    ctl_pf_name, vf, attr);
	ret = ctl_read_attr(path, old, sizeof(old));
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

	ctl_path_of(dir, "class/infiniband/%s/device/sriov/%u/pkeys",
		    ctl_pf_name, r->vf);
	len = ctl_count_numbered(dir);
	for (int i = 0; i < len; i++) {
		unsigned long cur;
		unsigned int want = (unsigned int)i < r->npkeys ?
					    r->pkeys[i] : 0;

		ctl_path_of(path,
			    "class/infiniband/%s/device/sriov/%u/pkeys/%d",
			    ctl_pf_name, r->vf, i);
		ret = ctl_read_attr(path, old, sizeof(old));
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

/* The whole address list in one write; the old one (lines) to undo it. */
static int add_ip_op(struct journal *set, const struct vf_req *r)
{
	char path[PATH_MAX], old[VALUE_MAX];
	int ret;

	ctl_path_of(path, "class/infiniband/%s/device/sriov/%u/ip",
		    ctl_pf_name, r->vf);
	ret = ctl_read_attr(path, old, sizeof(old));
	if (ret)
		return ret;
	for (char *c = old; *c; c++)
		if (*c == '\n')
			*c = ' ';
	return journal_add(set, path, old, r->ips[0] ? r->ips : "none",
			   r->line);
}

int ctl_run_plan(struct plan *plan)
{
	struct journal guids = { 0 }, clear = { 0 }, set = { 0 }, all = { 0 };
	struct guid_state gs = { 0 };
	char run_dir_buf[PATH_MAX];
	const char *run_dir;
	int ret = -1;

	if (ctl_find_pf())
		return EXIT_FAILURE;
	if (validate_plan(plan, &gs))
		goto out;
	run_dir = ctl_plan_run_dir(run_dir_buf, sizeof(run_dir_buf));
	/* rtnetlink has no IPoIB addresses of VFs: those go through sysfs. */
	for (unsigned int i = 0; run_dir && i < plan->count; i++)
		if (plan->reqs[i].has_ips)
			run_dir = NULL;
	if (run_dir) {
		ret = ctl_send_plan(plan, run_dir);
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
		if (!err && r->has_ips)
			err = add_ip_op(&set, r);
		if (!err && r->has_policy) {
			ctl_path_of(path, "class/infiniband/%s/device/sriov/%u/policy",
				    ctl_pf_name, r->vf);
			err = ctl_read_attr(path, old, sizeof(old));
			if (!err)
				err = journal_add(&set, path, old, r->policy,
						  r->line);
		}
		if (err) {
			ctl_plan_error(plan, r->line, "reading vf %u: %s",
				       r->vf, strerror(-err));
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
				ctl_error_msg("out of memory");
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

