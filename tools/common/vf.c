// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Which VFs vhca0 has, and taking one of them (vf.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <vhca/text.h>

#include "tool.h"
#include "vf.h"

#define UVERBS_INDEX_MAX 65535
#define ATTR_MAX 128

struct vf_entry {
	unsigned int vf;
	unsigned int uverbs;
};

/* Reads a one-line attribute without its newline; false if unreadable. */
static bool read_attr(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len;

	if (fd < 0)
		return false;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		return false;
	len = (ssize_t)vhca_text_strip_newline(buf, (size_t)len);
	buf[len] = '\0';
	return true;
}

bool vf_parse_numbered_name(const char *name, const char *prefix,
			    unsigned long max, unsigned int *number)
{
	size_t len = strlen(prefix);
	unsigned long value;

	if (strncmp(name, prefix, len) ||
	    !vhca_parse_decimal(name + len, strlen(name + len), max, &value))
		return false;
	*number = (unsigned int)value;
	return true;
}

const char *vf_default_run_dir(void)
{
	const char *env = getenv("VHCA_RUN_DIR");

	return env && *env ? env : VF_DEFAULT_RUN_DIR;
}

unsigned int vf_parse_option(const char *arg)
{
	unsigned long vf;

	if (!vhca_parse_decimal(arg, strlen(arg), VF_NUMBER_MAX, &vf))
		tool_usage_error("--vf '%s' is not a VF number (decimal, 0 to %d)",
				 arg, VF_NUMBER_MAX);
	return (unsigned int)vf;
}

static int compare_vf(const void *a, const void *b)
{
	const struct vf_entry *x = a, *y = b;

	return (x->vf > y->vf) - (x->vf < y->vf);
}

/*
 * The VFs of vhca0 as the view lists them (class/infiniband_verbs/uverbsM/
 * ibdev), sorted by VF number.  Fails, naming the run dir, when no daemon
 * serves it.
 */
static struct vf_entry *list_vfs(const struct vf_claim *c, size_t *count)
{
	char *verbs_dir = tool_path_join(c->sys_path, "class/infiniband_verbs");
	struct vf_entry *vfs = NULL;
	size_t num = 0, cap = 0;
	bool pf_seen = false;
	struct dirent *entry;
	DIR *dir;

	dir = opendir(verbs_dir);
	if (!dir)
		tool_fail("no vhcad serves %s (cannot read %s: %s); start it with 'vhcad --run-dir %s'",
			  c->run_dir, verbs_dir, strerror(errno), c->run_dir);
	while ((entry = readdir(dir))) {
		char path[PATH_MAX], ibdev[ATTR_MAX];
		unsigned int index, vf;

		if (!vf_parse_numbered_name(entry->d_name, VF_UVERBS_PREFIX,
					    UVERBS_INDEX_MAX, &index))
			continue;
		snprintf(path, sizeof(path), "%s/%s/ibdev", verbs_dir,
			 entry->d_name);
		/* A VF removed while we look has no ibdev any more: skip it. */
		if (!read_attr(path, ibdev, sizeof(ibdev)))
			continue;
		if (!strcmp(ibdev, VF_PF_NAME))
			pf_seen = true;
		if (!vf_parse_numbered_name(ibdev, VF_NAME_PREFIX,
					    VF_NUMBER_MAX, &vf))
			continue;
		if (num == cap) {
			cap = cap ? 2 * cap : 16;
			vfs = realloc(vfs, cap * sizeof(*vfs));
			if (!vfs)
				tool_fail("out of memory");
		}
		vfs[num++] = (struct vf_entry){ .vf = vf, .uverbs = index };
	}
	closedir(dir);
	if (!pf_seen)
		tool_fail("%s has no device " VF_PF_NAME " (is vhcad running on %s?)",
			  verbs_dir, c->run_dir);
	free(verbs_dir);
	if (num)
		qsort(vfs, num, sizeof(*vfs), compare_vf);
	*count = num;
	return vfs;
}

static char *lock_path(const struct vf_claim *c, unsigned int vf)
{
	char *path;

	if (asprintf(&path, "%s/" VF_GUESTS_DIR_NAME "/" VF_NAME_PREFIX "%u.lock",
		     c->run_dir, vf) < 0)
		tool_fail("out of memory");
	return path;
}

/*
 * Takes VF vf: an exclusive flock() on its lock file.  The fd is opened
 * without O_CLOEXEC on purpose: what the launcher runs inherits it and the
 * VF stays taken until the last process holding it exits.  Returns the fd,
 * or -1 if somebody else holds the VF (holder described in holder[]).
 */
static int try_take_vf(const struct vf_claim *c, unsigned int vf,
		       char *holder, size_t holder_size)
{
	char *path = lock_path(c, vf);
	char record[ATTR_MAX], name[ATTR_MAX];
	ssize_t len;
	int fd;

	holder[0] = '\0';
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);
	if (fd < 0)
		tool_fail("cannot open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK)
			tool_fail("cannot lock %s: %s", path, strerror(errno));
		/* The record is only for the message; the lock is the truth. */
		len = pread(fd, holder, holder_size - 1, 0);
		holder[len > 0 ? vhca_text_strip_newline(holder, (size_t)len)
			       : 0] = '\0';
		close(fd);
		free(path);
		return -1;
	}
	c->owner_name(vf, name, sizeof(name), c->owner_ctx);
	/* pid stays the launcher's across execve. */
	len = snprintf(record, sizeof(record), "%s '%s' (pid %d)\n",
		       c->owner_kind, name, (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, record, (size_t)len, 0) != len)
		tool_fail("cannot write %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

static void describe_vfs(const struct vf_entry *vfs, size_t count, char *buf,
			 size_t size)
{
	size_t used = 0;

	if (!count) {
		snprintf(buf, size, VF_PF_NAME " has no VFs: sriov_numvfs is 0");
		return;
	}
	if (count > 16) {
		/* Too many to list; vhcad numbers them without gaps anyway. */
		snprintf(buf, size, VF_PF_NAME " has %zu VFs, vf%u to vf%u",
			 count, vfs[0].vf, vfs[count - 1].vf);
		return;
	}
	used = (size_t)snprintf(buf, size, VF_PF_NAME " has");
	for (size_t i = 0; i < count && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s vf%u",
					 i ? "," : "", vfs[i].vf);
}

void vf_claim(struct vf_claim *c)
{
	char *guests_dir = tool_path_join(c->run_dir, VF_GUESTS_DIR_NAME);
	char holder[ATTR_MAX], known[512];
	struct vf_entry *vfs;
	size_t count;

	vfs = list_vfs(c, &count);
	describe_vfs(vfs, count, known, sizeof(known));
	if (mkdir(guests_dir, 0755) && errno != EEXIST)
		tool_fail("cannot create %s: %s", guests_dir, strerror(errno));
	free(guests_dir);

	c->lock_fd = -1;
	if (c->vf_given) {
		size_t i = 0;

		while (i < count && vfs[i].vf != c->vf)
			i++;
		if (i == count)
			tool_fail("VF %u of " VF_PF_NAME " does not exist (%s)",
				  c->vf, known);
		c->lock_fd = try_take_vf(c, c->vf, holder, sizeof(holder));
		if (c->lock_fd < 0)
			tool_fail(VF_NAME_PREFIX "%u is owned by %s; a VF belongs to one guest at a time",
				  c->vf, *holder ? holder : "another guest");
		c->uverbs = vfs[i].uverbs;
	} else {
		for (size_t i = 0; i < count && c->lock_fd < 0; i++) {
			c->vf = vfs[i].vf;
			c->uverbs = vfs[i].uverbs;
			c->lock_fd = try_take_vf(c, c->vf, holder,
						 sizeof(holder));
		}
		if (c->lock_fd < 0)
			tool_fail(count ? "every VF is owned by a guest (%s)" : "%s",
				  known);
	}
	free(vfs);
}
