// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The cost of the provider's wake-up in a VM: one write to the VF's
 * Doorbell register (BAR0 of its ivshmem function), which QEMU turns
 * into an eventfd write to vhcad.  Run inside a VM (bench-datapath.sh):
 *
 *   mmio_cost [ITERATIONS]     prints "mmio_doorbell_ns N"
 *
 * It rings vector 1 (the data path's), which only makes vhcad's engine
 * look at its contexts' doorbells: harmless.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include <vhca/vf_bar.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* BAR0 of the first ivshmem function, its register page mapped. */
static volatile uint32_t *map_doorbell(void)
{
	char path[300], line[128];
	uint64_t start = 0;
	struct dirent *e;
	DIR *dir = opendir("/sys/bus/pci/devices");

	while (dir && (e = readdir(dir))) {
		unsigned int vendor = 0, device = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		f = fopen(path, "r");
		if (!f || fscanf(f, "%x", &vendor) != 1)
			vendor = 0;
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		f = fopen(path, "r");
		if (!f || fscanf(f, "%x", &device) != 1)
			device = 0;
		if (f)
			fclose(f);
		if (vendor != VHCA_BAR_VENDOR || device != VHCA_BAR_DEVICE)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(line, sizeof(line), f))
			start = strtoull(line, NULL, 16);
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", e->d_name);
		int fd = open(path, O_RDWR);
		void *map = fd < 0 ? MAP_FAILED :
				     mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (fd >= 0)
			close(fd);
		closedir(dir);
		if (map == MAP_FAILED)
			return NULL;
		return (volatile uint32_t *)((char *)map + (start & 4095) +
					     VHCA_BAR0_DOORBELL);
	}
	if (dir)
		closedir(dir);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	volatile uint32_t *db = map_doorbell();
	uint64_t t0;

	if (!db || !n) {
		fprintf(stderr, "mmio_cost: no VF doorbell in this VM\n");
		return 1;
	}
	t0 = now_ns();
	for (unsigned long i = 0; i < n; i++)
		*db = (uint32_t)VHCA_DEVICE_PEER << 16 | VHCA_VECTOR_DATA_PATH;
	printf("mmio_doorbell_ns %" PRIu64 "\n", (now_ns() - t0) / n);
	return 0;
}
