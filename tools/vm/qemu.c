// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * QEMU for a VM (vm.h): which accelerator, what of the host it exports,
 * its command line and its process.
 *
 * QEMU exports the host's / to the guest over virtio-9p, read-only, and
 * the guest mounts it under a tmpfs overlay.  QEMU runs as root and 9p
 * opens files as QEMU, so the export must not include what would hand the
 * guest the host itself: /proc (kcore, every process's memory and
 * environment), /dev (disks, /dev/mem), /sys, /run and /tmp (sockets and
 * other tenants' scratch files) and vhcad's run dir (its full sysfs
 * view).  QEMU therefore runs in a mount namespace of its own, where the
 * export root is a recursive bind of / with an empty tmpfs over each of
 * those paths, made read-only, nodev and nosuid throughout; QEMU itself
 * still sees the real ones.  The namespace dies with QEMU, so no mount is
 * ever left behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vm.h"

#define QEMU_DEFAULT "qemu-system-x86_64"
#define QBOOT "/usr/share/qemu/qboot.rom"
#define QEMU_ARGS_MAX 96

/* The fds QEMU gets, at fixed numbers (see start_qemu_child). */
enum {
	QEMU_FD_RAM = 3,
	QEMU_FD_TAP,
	QEMU_FD_OUT,
	QEMU_FD_ERR,
	QEMU_FD_CTL,
	QEMU_FD_CONSOLE,
	QEMU_FD_LOCK,
	QEMU_FD_FIRST_FREE,
};

const char *const vm_hidden_paths[] = {
	"/proc", "/sys", "/dev", "/run", "/tmp", NULL,
};

static bool path_under(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	return !strncmp(path, dir, len) && (path[len] == '/' || !path[len]);
}

bool vm_path_visible(const struct vm *vm, const char *path)
{
	for (size_t i = 0; vm_hidden_paths[i]; i++)
		if (path_under(path, vm_hidden_paths[i]))
			return false;
	return !vm->run_dir || !path_under(path, vm->run_dir);
}

/*
 * Failures in QEMU's child before exec: _exit, not exit, or vhca-vm's
 * exit handler would run in the child and undo the parent's setup.
 */
static _Noreturn void child_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static _Noreturn void child_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	_exit(VM_EXIT_FAILED);
}

/* ---- the accelerator ---------------------------------------------------------- */

static bool cpu_has_virt_flags(void)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5))
			found = strstr(line, " vmx") || strstr(line, " svm");
	fclose(f);
	return found;
}

/*
 * NULL if KVM can boot a stock kernel here, else why not.  Cheap checks
 * only: a PVM hypervisor (kvm_pvm, as inside a Firecracker microVM) runs
 * guest user code but dies on the first kernel-mode instructions it cannot
 * emulate; without vmx/svm the kvm module is not the hardware's.
 */
static const char *kvm_unusable(void)
{
	if (access("/dev/kvm", R_OK | W_OK))
		return "no usable /dev/kvm";
	if (!access("/sys/module/kvm_pvm", F_OK))
		return "/dev/kvm is kvm_pvm, which cannot boot a stock kernel";
	if (!cpu_has_virt_flags())
		return "the CPU has neither vmx nor svm, KVM here cannot boot a stock kernel";
	return NULL;
}

void vm_choose_accel(struct vm *vm)
{
	const char *why_not = kvm_unusable();

	switch (vm->accel) {
	case VM_ACCEL_KVM:
		if (why_not)
			tool_fail("--accel kvm: %s; use --accel tcg", why_not);
		vm->accel_why = "as asked (--accel kvm)";
		break;
	case VM_ACCEL_TCG:
		vm->accel_why = "as asked (--accel tcg)";
		break;
	case VM_ACCEL_AUTO:
		vm->accel = why_not ? VM_ACCEL_TCG : VM_ACCEL_KVM;
		vm->accel_why = why_not ? why_not : "/dev/kvm with hardware virtualization";
		break;
	}
	tool_warn("accelerator %s (%s)", vm->accel == VM_ACCEL_KVM ? "kvm" : "tcg",
		  vm->accel_why);
}

/* ---- QEMU's view of the host --------------------------------------------------- */

static void hide(const char *export_dir, const char *path, const char *mode)
{
	char target[4096], data[32];
	struct stat st;

	snprintf(target, sizeof(target), "%s%s", export_dir, path);
	/* Only directories can be covered; a symlink leads into the guest's. */
	if (lstat(target, &st) || !S_ISDIR(st.st_mode))
		return;
	snprintf(data, sizeof(data), "mode=%s,size=4k", mode);
	if (mount("vhca-vm", target, "tmpfs",
		  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, data))
		child_fail("cannot hide %s from the VM: %s", path, strerror(errno));
}

/* In QEMU's own mount namespace: export_dir = the host's /, less the above. */
static void build_export(const struct vm *vm)
{
	struct mount_attr ro = {
		.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV |
			    MOUNT_ATTR_NOSUID,
	};

	if (unshare(CLONE_NEWNS))
		child_fail("cannot give QEMU a mount namespace: %s", strerror(errno));
	/* Nothing done here may reach the host's namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		child_fail("cannot make QEMU's mounts private: %s", strerror(errno));
	if (mount("/", vm->export_dir, NULL, MS_BIND | MS_REC, NULL))
		child_fail("cannot bind / on %s: %s", vm->export_dir, strerror(errno));
	for (size_t i = 0; vm_hidden_paths[i]; i++)
		hide(vm->export_dir, vm_hidden_paths[i],
		     !strcmp(vm_hidden_paths[i], "/tmp") ? "1777" : "0755");
	if (vm->run_dir && vm_path_visible(vm, vm->run_dir))
		hide(vm->export_dir, vm->run_dir, "0755");
	if (mount_setattr(AT_FDCWD, vm->export_dir, AT_RECURSIVE, &ro, sizeof(ro)))
		child_fail("cannot make the VM's view of the host read-only: %s",
			  strerror(errno));
}

/* ---- QEMU's command line ----------------------------------------------------------- */

struct args {
	char *v[QEMU_ARGS_MAX + 1];
	size_t n;
};

static void arg(struct args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void arg(struct args *a, const char *fmt, ...)
{
	va_list ap;

	if (a->n == QEMU_ARGS_MAX)
		tool_fail("internal: too many QEMU arguments");
	va_start(ap, fmt);
	if (vasprintf(&a->v[a->n], fmt, ap) < 0)
		tool_fail("out of memory");
	va_end(ap);
	a->n++;
}

/*
 * The VF, as vhcad serves it once attached: an ivshmem-doorbell whose
 * server is vhcad.  In QEMU 7.2 ivshmem-doorbell always has its MSI-X
 * feature (there is no msi=off any more, nor the legacy "ivshmem"
 * device): its doorbell interrupts reach a guest that enabled MSI-X, and
 * are dropped otherwise; it never raises INTx.
 */
static void vf_args(const struct vm *vm, struct args *a)
{
	arg(a, "-chardev");
	arg(a, "socket,id=vhcavf,path=%s", vm->vf_socket);
	arg(a, "-device");
	arg(a, "ivshmem-doorbell,chardev=vhcavf,vectors=2");
}

static void build_args(const struct vm *vm, struct args *a)
{
	const char *qemu = getenv("VHCA_VM_QEMU");
	const char *extra = getenv("VHCA_VM_KERNEL_ARGS");
	bool kvm = vm->accel == VM_ACCEL_KVM;
	uint64_t mib = vm->mem >> 20;

	arg(a, "%s", qemu && *qemu ? qemu : QEMU_DEFAULT);
	arg(a, "-nodefaults");
	arg(a, "-no-user-config");
	arg(a, "-display");
	arg(a, "none");
	arg(a, "-monitor");
	arg(a, "none");
	/* qboot: a BIOS that only loads the kernel, 0.3 s faster than SeaBIOS */
	if (!access(QBOOT, R_OK)) {
		arg(a, "-bios");
		arg(a, QBOOT);
	}
	arg(a, "-machine");
	arg(a, "pc,memory-backend=ram");
	arg(a, "-accel");
	arg(a, kvm ? "kvm" : "tcg,thread=multi");
	arg(a, "-cpu");
	arg(a, kvm ? "host" : "max");
	/*
	 * Under TCG, QEMU makes the guest's atomic instructions atomic (and
	 * its fences fences) only when the machine may have more than one
	 * vCPU (CF_PARALLEL, from maxcpus > 1); with one, a guest xchg is a
	 * load and a store.  The VF's doorbell page is shared with the
	 * device, which writes the same words from vhcad's threads: a
	 * one-vCPU guest lost the device's clear of a QP's queued flag
	 * between its own load and store, and the provider then skipped
	 * every later doorbell of that QP (MPI jobs between VMs stalled).
	 * So a TCG machine always allows a second vCPU, never plugged.
	 */
	arg(a, "-smp");
	if (kvm)
		arg(a, "%u", vm->cpus);
	else
		arg(a, "%u,maxcpus=%u", vm->cpus, vm->cpus < 2 ? 2 : vm->cpus);
	arg(a, "-m");
	arg(a, "%" PRIu64 "M", mib);
	/* RAM vhcad can map: file offset = guest-physical address. */
	arg(a, "-object");
	arg(a, "memory-backend-file,id=ram,mem-path=/proc/self/fd/%d,share=on,size=%" PRIu64 "M",
	    QEMU_FD_RAM, mib);
	arg(a, "-kernel");
	arg(a, "%s/vmlinux", vm->image);
	arg(a, "-initrd");
	arg(a, "%s/initramfs.cpio", vm->image);
	/*
	 * panic=-1 with -no-reboot: a guest that panics ends QEMU instead
	 * of hanging.  transparent_hugepage=never: docs/vm.md (pinning).
	 * cryptomgr.notests: the self-tests of every crypto algorithm the
	 * kernel registers cost a noticeable part of a TCG boot, and nothing
	 * in the VM depends on kernel crypto.
	 */
	arg(a, "-append");
	arg(a, "console=ttyS0 tsc=reliable%s panic=-1 transparent_hugepage=never "
	    "cryptomgr.notests vhca_init=%s%s%s%s%s",
	    vm->console ? "" : " quiet", vm->self, vm->has_net ? " vhca_net=1" : "",
	    vm->no_vf ? "" : " vhca_vf=1", extra && *extra ? " " : "",
	    extra ? extra : "");
	arg(a, "-no-reboot");
	arg(a, "-serial");
	if (vm->console)
		arg(a, "file:/proc/self/fd/%d", QEMU_FD_CONSOLE);
	else
		arg(a, "file:%s", vm->console_log);

	arg(a, "-fsdev");
	arg(a, "local,id=" VM_ROOT_TAG ",path=%s,readonly=on,multidevs=remap,security_model=none",
	    vm->export_dir);
	arg(a, "-device");
	arg(a, "virtio-9p-pci,fsdev=" VM_ROOT_TAG ",mount_tag=" VM_ROOT_TAG);

	/* virtserialport, not virtconsole: no tty, and QEMU throttles, never drops. */
	arg(a, "-device");
	arg(a, "virtio-serial-pci,max_ports=4");
	arg(a, "-chardev");
	arg(a, "file,id=vmout,path=/proc/self/fd/%d", QEMU_FD_OUT);
	arg(a, "-device");
	arg(a, "virtserialport,chardev=vmout,name=" VM_PORT_STDOUT);
	arg(a, "-chardev");
	arg(a, "file,id=vmerr,path=/proc/self/fd/%d", QEMU_FD_ERR);
	arg(a, "-device");
	arg(a, "virtserialport,chardev=vmerr,name=" VM_PORT_STDERR);
	arg(a, "-chardev");
	arg(a, "socket,id=vmctl,fd=%d", QEMU_FD_CTL);
	arg(a, "-device");
	arg(a, "virtserialport,chardev=vmctl,name=" VM_PORT_CTL);

	if (vm->has_net) {
		const unsigned char *m = vm->net.mac;

		arg(a, "-netdev");
		arg(a, "tap,id=net0,fd=%d", QEMU_FD_TAP);
		arg(a, "-device");
		arg(a, "virtio-net-pci,netdev=net0,mac=%02x:%02x:%02x:%02x:%02x:%02x",
		    m[0], m[1], m[2], m[3], m[4], m[5]);
	}
	if (!vm->no_vf)
		vf_args(vm, a);
	a->v[a->n] = NULL;
}

/* ---- QEMU's process ---------------------------------------------------------------- */

static void move_fd(int from, int to)
{
	if (from < 0) {
		from = open("/dev/null", O_RDWR);
		if (from < 0)
			child_fail("cannot open /dev/null: %s", strerror(errno));
	}
	if (dup2(from, to) != to)
		child_fail("dup2: %s", strerror(errno));
}

static _Noreturn void start_qemu_child(const struct vm *vm, struct args *a,
				       const int fds[QEMU_FD_FIRST_FREE])
{
	int high[QEMU_FD_FIRST_FREE];
	sigset_t none;
	int log;

	/* QEMU dies with vhca-vm, even of SIGKILL: nothing outlives us. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))
		_exit(VM_EXIT_FAILED);
	if (getppid() == 1)
		_exit(VM_EXIT_FAILED);
	/* Our own process group: a terminal's ^C is vhca-vm's to handle. */
	setpgid(0, 0);
	build_export(vm);
	log = open(vm->qemu_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log < 0)
		child_fail("cannot create %s: %s", vm->qemu_log, strerror(errno));
	/*
	 * Up to QEMU_FD_FIRST_FREE the numbers are taken by the fds we move
	 * there, so move them out of the way first.
	 */
	for (int i = QEMU_FD_RAM; i < QEMU_FD_FIRST_FREE; i++) {
		high[i] = fds[i] >= 0 ? fcntl(fds[i], F_DUPFD_CLOEXEC, 100) : -1;
		if (fds[i] >= 0 && high[i] < 0)
			child_fail("fcntl: %s", strerror(errno));
	}
	move_fd(-1, STDIN_FILENO);
	move_fd(log, STDOUT_FILENO);
	move_fd(log, STDERR_FILENO);
	for (int i = QEMU_FD_RAM; i < QEMU_FD_FIRST_FREE; i++)
		move_fd(high[i], i);
	close_range(QEMU_FD_FIRST_FREE, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execvp(a->v[0], a->v);
	fprintf(stderr, "vhca-vm: cannot run %s: %s\n", a->v[0], strerror(errno));
	_exit(VM_EXIT_NOT_FOUND);
}

void vm_start_qemu(struct vm *vm)
{
	int out[2], err[2], ctl[2], console;
	int fds[QEMU_FD_FIRST_FREE];
	struct args a = { .n = 0 };

	build_args(vm, &a);
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl))
		tool_fail("cannot create QEMU's channels: %s", strerror(errno));
	console = vm->console ? STDERR_FILENO : -1;
	fds[QEMU_FD_RAM] = vm->ram_fd;
	fds[QEMU_FD_TAP] = vm->has_net ? vm->net.tap_fd : -1;
	fds[QEMU_FD_OUT] = out[1];
	fds[QEMU_FD_ERR] = err[1];
	fds[QEMU_FD_CTL] = ctl[1];
	fds[QEMU_FD_CONSOLE] = console;
	fds[QEMU_FD_LOCK] = vm->lock_fd;

	vm->qemu = fork();
	if (vm->qemu < 0)
		tool_fail("cannot start QEMU: %s", strerror(errno));
	if (vm->qemu == 0)
		start_qemu_child(vm, &a, fds);
	close(out[1]);
	close(err[1]);
	close(ctl[1]);
	vm->out_fd = out[0];
	vm->err_fd = err[0];
	vm->ctl_fd = ctl[0];
	for (size_t i = 0; i < a.n; i++)
		free(a.v[i]);
}

int vm_stop_qemu(struct vm *vm)
{
	int status = 0;

	if (vm->qemu <= 0)
		return vm->qemu_status;
	kill(vm->qemu, SIGKILL);
	while (waitpid(vm->qemu, &status, 0) < 0 && errno == EINTR)
		;
	vm->qemu = 0;
	vm->qemu_status = status;
	return status;
}
