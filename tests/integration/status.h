/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Reads a device's resource counts from the daemon's status view. */
#ifndef VHCA_TESTS_STATUS_H
#define VHCA_TESTS_STATUS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dev_counts {
	unsigned int contexts, pds, mrs, comp_channels;
};

static inline int read_dev_counts(const char *dev, struct dev_counts *c)
{
	const char *root = getenv("SYSFS_PATH");
	char path[4096], line[512], name[64];
	int found = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/module/vhca/status",
		 root ? root : "/sys");
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line,
			   "%63s %*s contexts %u pds %u mrs %u comp_channels %u",
			   name, &c->contexts, &c->pds, &c->mrs,
			   &c->comp_channels) == 5 &&
		    !strcmp(name, dev)) {
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

#endif
