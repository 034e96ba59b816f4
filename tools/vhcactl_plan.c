// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhcactl plans: "vf N set ..." on the command line and the lines of
 * "apply FILE", parsed into struct plan; running them: vhcactl_apply.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vhcactl.h"

/* ---- plans: parsing --------------------------------------------------------------- */

void ctl_plan_error(const struct plan *plan, int line, const char *fmt, ...)
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

	err = ctl_parse_pkey(text, &pkey);
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
	       !strcmp(word, "pkeys") || !strcmp(word, "ip");
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
			err = ctl_parse_guid(words[++i], &guid);
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
			err = ctl_parse_policy(words[++i]);
			if (err) {
				snprintf(msg, msg_len, "policy '%s': %s",
					 words[i], err);
				return msg;
			}
			snprintf(r->policy, sizeof(r->policy), "%s", words[i]);
			r->has_policy = true;
		} else if (!strcmp(key, "ip")) {
			err = ctl_parse_ips(r, words[++i], msg, msg_len);
			if (err)
				return err;
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


int cmd_vf_set(unsigned int vf, char **words, int count)
{
	struct plan plan = { .file = NULL };
	struct vf_req *r;
	char msg[256];
	const char *err;
	int ret;

	if (!count)
		return ctl_usage_error("vf %u set: nothing to set", vf);
	r = plan_add(&plan);
	if (!r) {
		ctl_error_msg("out of memory");
		return EXIT_FAILURE;
	}
	r->vf = vf;
	r->line = 0;
	err = parse_words(r, words, count, true, msg, sizeof(msg));
	if (err) {
		free(plan.reqs);
		return ctl_usage_error("vf %u set: %s", vf, err);
	}
	ret = ctl_run_plan(&plan);
	free(plan.reqs);
	return ret;
}

int cmd_apply(const char *file)
{
	struct plan plan = { .file = file };
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, errors = 0, ret;
	FILE *in = fopen(file, "r");
	struct stat st;
	ssize_t len;

	if (!in) {
		ctl_error_msg("%s: %s", file, strerror(errno));
		return EXIT_FAILURE;
	}
	/* A plan is text in a file (or a pipe): not a directory. */
	if (fstat(fileno(in), &st) || S_ISDIR(st.st_mode)) {
		ctl_error_msg("%s: %s", file, strerror(S_ISDIR(st.st_mode) ?
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
			ctl_plan_error(&plan, lineno, "a NUL byte in the line");
			errors++;
			continue;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		for (w = strtok_r(line, " \t\r\n", &save); w;
		     w = strtok_r(NULL, " \t\r\n", &save)) {
			if (count == (int)(sizeof(words) / sizeof(words[0]))) {
				ctl_plan_error(&plan, lineno, "line too long");
				errors++;
				count = -1;
				break;
			}
			words[count++] = w;
		}
		if (count <= 0)
			continue;
		if (strcmp(words[0], "vf") || count < 2 ||
		    !ctl_parse_uint(words[1], 1u << 16, &vf)) {
			ctl_plan_error(&plan, lineno,
				       "expected 'vf N [node_guid G] [port_guid G] [policy P] [pkey P ...] [ip A/P,...]'");
			errors++;
			continue;
		}
		r = plan_add(&plan);
		if (!r) {
			ctl_error_msg("out of memory");
			errors++;
			break;
		}
		r->vf = vf;
		r->line = lineno;
		err = parse_words(r, words + 2, count - 2, false, msg,
				  sizeof(msg));
		if (err) {
			ctl_plan_error(&plan, lineno, "%s", err);
			errors++;
		}
	}
	if (ferror(in)) {
		ctl_error_msg("%s: %s", file, strerror(errno));
		errors++;
	}
	free(line);
	fclose(in);
	if (errors) {
		ctl_error_msg("%s: %d error(s); nothing changed", file, errors);
		free(plan.reqs);
		return EXIT_FAILURE;
	}
	ret = ctl_run_plan(&plan);
	free(plan.reqs);
	if (!ret)
		printf("%s: %u VF(s) provisioned\n", file, plan.count);
	return ret;
}

