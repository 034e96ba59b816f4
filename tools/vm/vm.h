/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhca-vm's parts (docs/vm.md):
 *   vhca-vm.c     the command line, the VF (its lock and its attachment
 *                 through vhcad), the run dir, the exit status;
 *   qemu.c        the accelerator, what QEMU exports of the host, QEMU's
 *                 command line and its process;
 *   net.c         --net: the VM's address, its tap on the bridge, and
 *                 eth0 inside;
 *   session.c     the host side of a running VM: the job out, CMD's
 *                 output and status back, signals, timeouts;
 *   guest_init.c  inside the VM: the first process once / is the host's
 *                 (the image's /init hands over to "vhca-vm --guest-init");
 *   proto.c       the records both sides exchange on the control port.
 */
#ifndef VHCA_VM_H
#define VHCA_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <netinet/in.h>

#include "tool.h"

#define VM_EXIT_FAILED TOOL_EXIT_FAILED
#define VM_EXIT_CANNOT_EXECUTE 126
#define VM_EXIT_NOT_FOUND 127

/* The pc machine maps RAM above 3 GiB past 4 GiB; below, GPA = offset. */
#define VM_MEM_MAX (3ULL << 30)
#define VM_MEM_MIN (128ULL << 20)
#define VM_MEM_DEFAULT (1ULL << 30)
#define VM_CPUS_MAX 64
#define VM_ENV_MAX 256

/* The guest's view of the VF's driver (the guest-mode vhcad). */
#define VM_GUEST_RUN_DIR "/run/vhca"

/* virtio-serial port names; the guest finds its ports by them. */
#define VM_PORT_STDOUT "vhca.stdout"
#define VM_PORT_STDERR "vhca.stderr"
#define VM_PORT_CTL "vhca.ctl"
/* The 9p tag of the host's root. */
#define VM_ROOT_TAG "hostroot"

enum vm_accel { VM_ACCEL_AUTO, VM_ACCEL_KVM, VM_ACCEL_TCG };

struct vm_net {
	const char *bridge;
	char tap[16];
	int tap_fd;
	struct in_addr addr, gateway;
	unsigned int prefix;
	unsigned char mac[6];
	char *lease_path;		/* unlinked at exit */
	int lease_fd;
};

struct vm {
	/* the command line */
	bool no_vf, vf_given;
	unsigned int vf;
	unsigned int cpus;
	uint64_t mem;
	enum vm_accel accel;
	const char *accel_why;		/* the line vhca-vm prints */
	const char *bridge;		/* --net */
	const char *run_dir_arg, *image_arg;
	bool console;			/* kernel console on stderr */
	const char *env_names[VM_ENV_MAX];	/* --env NAME[=VALUE] */
	size_t num_env_names;
	char **cmd;

	/* resolved */
	char *self;			/* this program, absolute (runs in the VM) */
	char *run_dir, *sys_path;
	char *image;			/* has vmlinux, initramfs.cpio, modules/ */
	char *priv_dir;			/* ours: logs, QEMU's export root */
	char *export_dir;		/* priv_dir/root */
	char *console_log, *qemu_log;
	char *vf_socket;		/* DIR/vm/vhca0_vfN.sock, from vhcad */
	char *driver;			/* VHCA_VM_DRIVER or the default */
	int lock_fd;			/* the VF's, held by QEMU too */
	int ram_fd;			/* the guest's RAM: a sealed memfd */
	struct vm_net net;
	bool has_net;

	/* QEMU */
	pid_t qemu;
	int qemu_status;		/* its wait status, once it ended */
	int out_fd, err_fd;		/* CMD's stdout/stderr, from QEMU */
	int ctl_fd;			/* the control port, a socket */
};

/* Paths the VM never sees of the host (qemu.c); also the run dir. */
extern const char *const vm_hidden_paths[];
/* True if @path (absolute, resolved) lies in what the VM sees. */
bool vm_path_visible(const struct vm *vm, const char *path);

/* qemu.c */
void vm_choose_accel(struct vm *vm);
void vm_start_qemu(struct vm *vm);
/* SIGKILL to QEMU (if it runs) and waits for it; returns its wait status. */
int vm_stop_qemu(struct vm *vm);

/* net.c */
void vm_net_setup(struct vm *vm);
void vm_net_cleanup(struct vm *vm);
/* In the guest: lo up, and eth0 with @addr/@prefix via @gateway if any. */
void vm_guest_net(const char *addr_prefix, const char *gateway);

/* session.c: runs the booted VM to its end; returns vhca-vm's exit status. */
int vm_run_session(struct vm *vm);
/* Prints the last lines of the VM's console and QEMU's log on stderr. */
void vm_show_logs(const struct vm *vm);

/* guest_init.c */
_Noreturn void vm_guest_init(void);

#endif /* VHCA_VM_H */
