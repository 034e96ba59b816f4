// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhcactl: the PF's sysfs attributes, under --sysfs DIR: paths, reads
 * and writes, finding the PF and its VFs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <vhca/text.h>

#include "vhcactl.h"

/* ---- sysfs ----------------------------------------------------------------------- */

void ctl_path_of(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(buf, PATH_MAX, "%s/", ctl_sysfs_dir);
	va_start(ap, fmt);
	vsnprintf(buf + n, PATH_MAX - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Reads a whole attribute, without its trailing newline; 0 or -errno. */
int ctl_read_attr(const char *path, char *buf, size_t len)
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
int ctl_write_attr(const char *path, const char *value)
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

bool ctl_exists(const char *path)
{
	struct stat st;

	return !stat(path, &st);
}

/* Entries of a directory that are numbers: their count (max + 1). */
int ctl_count_numbered(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	int count = 0;

	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		unsigned int n;

		if (ctl_parse_uint(e->d_name, 1u << 20, &n) &&
		    (int)n + 1 > count)
			count = (int)n + 1;
	}
	closedir(dir);
	return count;
}

static char found_pf[NAME_MAX + 1];

/* The PF: --dev, else vhca0, else the first device with sriov_numvfs. */
int ctl_find_pf(void)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dir;

	if (ctl_pf_name)
		goto check;
	ctl_path_of(path, "class/infiniband/vhca0/device/sriov_numvfs");
	if (ctl_exists(path)) {
		ctl_pf_name = "vhca0";
		return 0;
	}
	ctl_path_of(path, "class/infiniband");
	dir = opendir(path);
	if (!dir) {
		ctl_error_msg("%s: %s", path, strerror(errno));
		return -1;
	}
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		ctl_path_of(path, "class/infiniband/%s/device/sriov_numvfs",
			    e->d_name);
		if (ctl_exists(path)) {
			snprintf(found_pf, sizeof(found_pf), "%s", e->d_name);
			ctl_pf_name = found_pf;
			break;
		}
	}
	closedir(dir);
	if (!ctl_pf_name) {
		ctl_error_msg("no SR-IOV capable IB device under %s/class/infiniband",
			      ctl_sysfs_dir);
		return -1;
	}
check:
	ctl_path_of(path, "class/infiniband/%s/device/sriov_numvfs",
		    ctl_pf_name);
	if (!ctl_exists(path)) {
		ctl_error_msg("%s: no such SR-IOV PF (%s)", ctl_pf_name, path);
		return -1;
	}
	return 0;
}

int ctl_num_vfs(unsigned int *out)
{
	char path[PATH_MAX], value[VALUE_MAX];
	int ret;

	ctl_path_of(path, "class/infiniband/%s/device/sriov_numvfs",
		    ctl_pf_name);
	ret = ctl_read_attr(path, value, sizeof(value));
	if (ret || !ctl_parse_uint(value, 1u << 16, out)) {
		ctl_error_msg("%s: %s", path,
			      ret ? strerror(-ret) : "unreadable");
		return -1;
	}
	return 0;
}

/* The IB device of VF n: in device/virtfnN/infiniband/, else PF_vfN. */
void ctl_vf_ibdev(unsigned int vf, char *buf, size_t len)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dir;

	ctl_path_of(path, "class/infiniband/%s/device/virtfn%u/infiniband",
		    ctl_pf_name, vf);
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
	snprintf(buf, len, "%s_vf%u", ctl_pf_name, vf);
}

/* "xxxx:xxxx:xxxx:xxxx" (node_guid) or the low half of a GID. */
uint64_t ctl_parse_sysfs_guid(const char *text)
{
	uint64_t guid = 0;

	for (; *text; text++) {
		int digit = vhca_hex_digit(*text);

		if (digit >= 0)
			guid = guid << 4 | (uint64_t)digit;
	}
	return guid;
}
