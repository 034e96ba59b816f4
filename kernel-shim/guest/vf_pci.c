// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The VF's PCI function inside the VM (guest.h): an ivshmem-doorbell
 * device whose BAR2 carries our header (include/vhca/vf_bar.h).  Without
 * a kernel driver of our own, uio_pci_generic gives us its interrupt
 * (INTx: ivshmem is used with msi=off) and sysfs its BARs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "guest.h"

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

#define PCI_DEVICES "/sys/bus/pci/devices"
#define UIO_DRIVER "/sys/bus/pci/drivers/uio_pci_generic"
#define PAGE 4096u

static bool read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static bool write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text);
}

static bool is_ivshmem(const char *bdf)
{
	char path[160], vendor[16], device[16];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vendor", bdf);
	if (!read_line(path, vendor, sizeof(vendor)))
		return false;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/device", bdf);
	if (!read_line(path, device, sizeof(device)))
		return false;
	return strtoul(vendor, NULL, 16) == VHCA_BAR_VENDOR &&
	       strtoul(device, NULL, 16) == VHCA_BAR_DEVICE;
}

/* Binds @bdf to uio_pci_generic unless it is already; its uio number. */
static int bind_uio(const char *bdf)
{
	char path[200], link[200], id[32];
	ssize_t n;
	DIR *dir;
	struct dirent *e;
	int uio = -1;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	if (!strstr(link, "uio_pci_generic")) {
		if (n > 0) {
			snprintf(path, sizeof(path),
				 PCI_DEVICES "/%s/driver/unbind", bdf);
			write_text(path, bdf);
		}
		snprintf(id, sizeof(id), "%x %x", VHCA_BAR_VENDOR,
			 VHCA_BAR_DEVICE);
		/* new_id binds every match; EEXIST if added before. */
		if (!write_text(UIO_DRIVER "/new_id", id))
			write_text(UIO_DRIVER "/bind", bdf);
	}
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/uio", bdf);
	for (int tries = 0; tries < 100 && uio < 0; tries++) {
		dir = opendir(path);
		while (dir && (e = readdir(dir)))
			if (sscanf(e->d_name, "uio%d", &uio) == 1)
				break;
		if (dir)
			closedir(dir);
		if (uio < 0)
			usleep(20000);
	}
	return uio;
}

/* BAR @bar of @bdf mapped: @size bytes, from the BAR's first page. */
static void *map_bar(const char *bdf, int bar, size_t size, uint64_t *start)
{
	char path[160], line[160];
	uint64_t s = 0, e = 0, flags;
	void *map;
	FILE *f;
	int fd;

	/* "resource": one line per BAR, start end flags. */
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/resource", bdf);
	f = fopen(path, "re");
	for (int i = 0; f && i <= bar; i++)
		if (!fgets(line, sizeof(line), f) ||
		    sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64, &s, &e,
			   &flags) != 3)
			s = e = 0;
	if (f)
		fclose(f);
	*start = s;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/resource%d", bdf, bar);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return map == MAP_FAILED ? NULL : map;
}

int vhca_guest_vf_open(struct vhca_guest_vf *vf)
{
	struct dirent *e;
	uint64_t start;
	DIR *dir;
	int uio;

	memset(vf, 0, sizeof(*vf));
	vf->uio_fd = vf->config_fd = -1;
	dir = opendir(PCI_DEVICES);
	while (dir && (e = readdir(dir))) {
		const struct vhca_bar_header *h;
		char path[160], name[16];
		uint8_t *bar;

		/* 0000:00:04.0: anything longer is no PCI address. */
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(name))
			continue;
		memcpy(name, e->d_name, strlen(e->d_name) + 1);
		if (!is_ivshmem(name))
			continue;
		uio = bind_uio(name);
		if (uio < 0) {
			log_msg("%s: cannot bind uio_pci_generic", name);
			continue;
		}
		bar = map_bar(name, 2, VHCA_BAR_SIZE, &start);
		h = (const struct vhca_bar_header *)bar;
		if (!bar || h->magic != VHCA_BAR_MAGIC ||
		    h->version != VHCA_BAR_VERSION) {
			if (bar)
				munmap(bar, VHCA_BAR_SIZE);
			continue;
		}
		/* BAR0 is smaller than a page: its registers may sit inside. */
		vf->regs = map_bar(name, 0, PAGE, &start);
		if (!vf->regs) {
			log_msg("%s: cannot map BAR0: %s", name,
				strerror(errno));
			munmap(bar, VHCA_BAR_SIZE);
			continue;
		}
		vf->regs = (volatile uint32_t *)((uint8_t *)vf->regs +
						 (start & (PAGE - 1)));
		vf->doorbell_offset = (uint32_t)(start & (PAGE - 1)) +
				      VHCA_BAR0_DOORBELL;
		vf->bar = bar;
		snprintf(vf->bdf, sizeof(vf->bdf), "%s", name);
		snprintf(vf->resource0, sizeof(vf->resource0),
			 PCI_DEVICES "/%s/resource0", name);
		/*
		 * Every process of the VM rings the doorbell itself (the
		 * provider maps BAR0).  What else BAR0 lets it do is mask
		 * our interrupt, which costs the VM's own event latency (we
		 * poll every 20 ms regardless): the VM's business, as a
		 * kernel driver would keep it (docs/vm.md).
		 */
		if (chmod(vf->resource0, 0666))
			log_msg("%s: cannot open BAR0 to the VM's processes: %s",
				name, strerror(errno));
		snprintf(path, sizeof(path), "/dev/uio%d", uio);
		vf->uio_fd = open(path, O_RDWR | O_CLOEXEC);
		if (vf->uio_fd < 0)
			log_msg("%s: %s: %s (events by polling)", name,
				path, strerror(errno));
		break;
	}
	if (dir)
		closedir(dir);
	if (!vf->bar) {
		log_msg("no VF of vhca in this VM (no ivshmem device with a vhca BAR)");
		return -ENODEV;
	}
	/* Interrupts on: ivshmem raises INTx while status & mask. */
	vf->regs[VHCA_BAR0_INTR_MASK / 4] = 0xffffffffu;
	if (vf->uio_fd >= 0) {
		uint32_t on = 1;

		if (write(vf->uio_fd, &on, sizeof(on)) != sizeof(on))
			log_msg("%s: cannot unmask its interrupt", vf->bdf);
	}
	return 0;
}

void vhca_guest_vf_close(struct vhca_guest_vf *vf)
{
	if (vf->bar)
		munmap(vf->bar, VHCA_BAR_SIZE);
	if (vf->regs)
		munmap((void *)((uintptr_t)vf->regs & ~(uintptr_t)(PAGE - 1)),
		       PAGE);
	if (vf->uio_fd >= 0)
		close(vf->uio_fd);
	memset(vf, 0, sizeof(*vf));
	vf->uio_fd = vf->config_fd = -1;
}

void vhca_guest_vf_ring(struct vhca_guest_vf *vf, unsigned int vector)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vf->regs[VHCA_BAR0_DOORBELL / 4] =
		(uint32_t)VHCA_DEVICE_PEER << 16 | vector;
}

int vhca_guest_vf_wait(struct vhca_guest_vf *vf, int timeout_ms)
{
	struct pollfd pfd = { .fd = vf->uio_fd, .events = POLLIN };
	uint32_t count, on = 1;
	int ret;

	if (vf->uio_fd < 0) {
		/* No interrupt: the caller polls, at its own period. */
		usleep((useconds_t)timeout_ms * 1000);
		return 0;
	}
	ret = poll(&pfd, 1, timeout_ms);
	if (ret <= 0)
		return ret < 0 ? -errno : 0;
	if (read(vf->uio_fd, &count, sizeof(count)) != sizeof(count)) {
		/*
		 * uio has no IRQ for the function (ivshmem-doorbell has no
		 * INTx pin): poll() says POLLERR at once and read() EIO,
		 * every time.  Waiting on it would spin the caller (a whole
		 * CPU of an idle VM), so polling it is from now on.
		 */
		ret = -errno;
		log_msg("%s: its interrupt cannot be waited for (%s): events by polling",
			vf->bdf, strerror(-ret));
		close(vf->uio_fd);
		vf->uio_fd = -1;
		return ret;
	}
	/* Reading IntrStatus lowers the line; then unmask it again. */
	(void)vf->regs[VHCA_BAR0_INTR_STATUS / 4];
	if (write(vf->uio_fd, &on, sizeof(on)) != sizeof(on))
		return -errno;
	return 1;
}
