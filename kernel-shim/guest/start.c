// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vhcad --vm-guest: start-up and shutdown of the VF's device (guest.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "driver/device.h"
#include "guest.h"

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

static struct vhca_guest_vf vf = { .uio_fd = -1, .config_fd = -1 };

/*
 * libibverbs asks RDMA netlink for devices when the kernel has it, and
 * reads sysfs (ours) only when not; the VM's kernel would load ib_core
 * on libibverbs' first netlink socket.  So ib_core must never load here
 * (/run/modprobe.d is the VM's own), and goes if it already did.
 */
static void keep_rdma_core_out(void)
{
	FILE *f;

	if (mkdir("/run/modprobe.d", 0755) && errno != EEXIST)
		return;
	f = fopen("/run/modprobe.d/vhca.conf", "we");
	if (f) {
		fprintf(f, "# vhcad --vm-guest: libibverbs must find the VF through sysfs\n"
			   "install ib_core /bin/false\n");
		fclose(f);
	}
	if (!access("/sys/module/ib_core", F_OK) &&
	    syscall(SYS_delete_module, "ib_core", O_NONBLOCK))
		log_msg("ib_core is loaded and stays: libibverbs will not see the VF (%s)",
			strerror(errno));
}

int vhca_guest_start(struct vhca_pf *pf, const struct vhca_pf_hooks *hooks)
{
	struct vhca_devcmd_function f;
	int ret;

	keep_rdma_core_out();
	ret = vhca_guest_vf_open(&vf);
	if (ret)
		return ret;
	ret = vhca_guest_mailbox_query(&vf, VHCA_DEVCMD_QUERY_FUNCTION, &f,
				       sizeof(f));
	if (ret) {
		log_msg("%s: the device does not answer: %s", vf.bdf,
			strerror(-ret));
		goto err_vf;
	}
	ret = vhca_guest_function_init(pf, hooks, &f);
	if (ret) {
		log_msg("%s: cannot set up %s: %s", vf.bdf, f.name,
			strerror(-ret));
		goto err_vf;
	}
	vhca_guest_memory_install();
	ret = vhca_guest_mailbox_start(&vf, pf);
	if (ret) {
		log_msg("%s: cannot serve its events: %s", vf.bdf,
			strerror(-ret));
		vhca_guest_function_fini(pf);
		goto err_vf;
	}
	log_msg("%s is %s (PCI %s)", pf->vfs[0]->name, f.name, vf.bdf);
	return 0;
err_vf:
	vhca_guest_vf_close(&vf);
	return ret;
}

void vhca_guest_stop(struct vhca_pf *pf)
{
	vhca_guest_mailbox_stop();
	vhca_device_set_transport(NULL);
	vhca_device_set_memory(NULL);
	vhca_guest_function_fini(pf);
	vhca_guest_vf_close(&vf);
}
