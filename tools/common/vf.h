/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The VFs of vhca0 as a launcher sees them, and who owns one (vhca-guest,
 * vhca-vm; docs/guests.md "One guest per VF", docs/vm.md).
 *
 * A VF belongs to one guest at a time, namespace guest or VM alike: the
 * owner holds an exclusive flock() on DIR/guests/vhca0_vfN.lock, taken
 * before anything else and held by an fd that is deliberately not
 * close-on-exec, so the VF stays taken while any holder lives.  The file's
 * text (who, which pid) only feeds the message another launcher prints;
 * the lock is the truth and dies with its holders.
 */
#ifndef VHCA_TOOLS_VF_H
#define VHCA_TOOLS_VF_H

#include <stdbool.h>
#include <stddef.h>

#define VF_PF_NAME "vhca0"
#define VF_NAME_PREFIX VF_PF_NAME "_vf"
#define VF_UVERBS_DIR "/dev/infiniband"
#define VF_UVERBS_PREFIX "uverbs"
#define VF_GUESTS_DIR_NAME "guests"
#define VF_DEFAULT_RUN_DIR "/run/vhca"
/* Bound for parsing only; whether the VF exists is asked of the view. */
#define VF_NUMBER_MAX 65535

/* Fills @buf with the owner's name for the lock file's text, per VF tried. */
typedef void vf_owner_name_fn(unsigned int vf, char *buf, size_t size,
			      void *ctx);

struct vf_claim {
	const char *run_dir;		/* resolved */
	const char *sys_path;		/* run_dir/sys */
	bool vf_given;			/* else: the lowest VF nobody owns */
	unsigned int vf;		/* in: if vf_given; out: the VF taken */
	/* For the lock file's text "<kind> '<name>' (pid N)". */
	const char *owner_kind;		/* "guest", "VM" */
	vf_owner_name_fn *owner_name;
	void *owner_ctx;
	/* out */
	unsigned int uverbs;		/* its uverbsM */
	int lock_fd;			/* holds the VF; not close-on-exec */
};

/*
 * Picks the VF (given, or the lowest one nobody owns) of the view vhcad
 * serves in claim->sys_path and takes its lock.  Fails (tool_fail) with a
 * message naming the owner, or the VFs there are, when it cannot.
 */
void vf_claim(struct vf_claim *claim);

/* vhcad's run dir unless given: $VHCA_RUN_DIR, else /run/vhca. */
const char *vf_default_run_dir(void);

/* --vf N: N, or a usage error (tool_usage_error). */
unsigned int vf_parse_option(const char *arg);

/* "<prefix>N" -> N (at most @max), strictly: "uverbs7", "vhca0_vf3". */
bool vf_parse_numbered_name(const char *name, const char *prefix,
			    unsigned long max, unsigned int *number);

#endif /* VHCA_TOOLS_VF_H */
