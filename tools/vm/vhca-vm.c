// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca-vm: boots a QEMU virtual machine that owns one VF of vhca0, runs a
 * command in it and powers it off (docs/vm.md).
 *
 *   vhca-vm [--vf N | --no-vf] [--cpus C] [--mem M] [--accel kvm|tcg|auto]
 *           [--net BR] [--env NAME[=VALUE]]... [--run-dir DIR]
 *           [--image DIR] [--console] -- CMD [ARGS...]
 *
 * The VM boots the image scripts/build-vm-image.sh builds (a Debian
 * kernel, a busybox initramfs) with the host's / read-only under a tmpfs
 * overlay, so the host's programs run in it as they are.  CMD runs as
 * root in the VM, in the caller's working directory when the VM sees it;
 * its stdout and stderr come out as vhca-vm's, separately, its exit status
 * (128+S for a death by signal S) is vhca-vm's.  vhca-vm's own failures
 * exit with 125, a CMD that cannot run with 126, one not found with 127.
 *
 * The VF: vhca-vm takes the VF's lock as vhca-guest does (the same file:
 * a VF belongs to one guest at a time, VM or namespace), creates the VM's
 * RAM as a memfd and hands it to vhcad with VHCA_MGMT_ATTACH_VM
 * (include/vhca/mgmt.h); vhcad then serves the VF's ivshmem server
 * socket, QEMU's VF device.  Inside, the VF's guest driver starts before
 * CMD (VHCA_VM_DRIVER).
 *
 * Nothing outlives vhca-vm: QEMU dies with it (parent-death signal), the
 * tap goes with its last fd, the memfd with its last mapping, QEMU's
 * mounts with its mount namespace, and the files of the run dir are
 * removed at exit (after a SIGKILL only its private directory stays).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <vhca/mgmt.h>
#include <vhca/text.h>

#include "mgmt_client.h"
#include "vf.h"
#include "vm.h"

#ifndef VHCA_VM_IMAGE_DIR
#define VHCA_VM_IMAGE_DIR "/var/lib/vhca/vm-image"
#endif
#ifndef VHCA_SBINDIR
#define VHCA_SBINDIR "/usr/local/sbin"
#endif
#define VM_DIR_NAME "vm"

const char tool_name[] = "vhca-vm";

static struct vm *the_vm;	/* for the exit handler */

/* ---- the command line ------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vhca-vm [--vf N | --no-vf] [--cpus C] [--mem M] [--accel kvm|tcg|auto]\n"
		"               [--net BR] [--env NAME[=VALUE]]... [--run-dir DIR] [--image DIR]\n"
		"               [--console] -- CMD [ARGS...]\n"
		"Boots a virtual machine owning VF N of " VF_PF_NAME ", runs CMD in it (as root,\n"
		"the host's / read-only under a tmpfs overlay) and powers it off.  Must run as root.\n"
		"\n"
		"  --vf N           the VF (default: the lowest one no guest or VM owns)\n"
		"  --no-vf          a VM without a VF (no vhcad needed)\n"
		"  --cpus C         virtual CPUs (default 1)\n"
		"  --mem M          RAM, e.g. 512M or 2G (default 1G, at most 3G)\n"
		"  --accel A        kvm, tcg or auto (default: KVM if it can boot a kernel here)\n"
		"  --net BR         eth0 on host bridge BR, with an address of its subnet\n"
		"  --env NAME       pass NAME (or set NAME=VALUE) in the VM (repeatable)\n"
		"  --run-dir DIR    vhcad's run dir (default $VHCA_RUN_DIR, else " VF_DEFAULT_RUN_DIR ")\n"
		"  --image DIR      the guest image (default $VHCA_VM_IMAGE, else " VHCA_VM_IMAGE_DIR ")\n"
		"  --console        the kernel's console on stderr (else a log in the run dir)\n"
		"\n"
		"Exit status: CMD's (128+S if it died of signal S); 125 if vhca-vm fails,\n"
		"126 if CMD cannot run, 127 if CMD is not found.\n");
}

#define usage_error tool_usage_error

/* "512M", "2G", "1048576K"; a plain number is MiB, as QEMU's -m takes it. */
static uint64_t parse_mem(const char *text)
{
	size_t len = strlen(text);
	unsigned long value;
	unsigned int shift = 20;

	if (len && strchr("kKmMgG", text[len - 1])) {
		char unit = text[--len];

		shift = unit == 'k' || unit == 'K' ? 10 : unit == 'g' || unit == 'G' ? 30 : 20;
	}
	if (!vhca_parse_decimal(text, len, 1UL << 32, &value))
		usage_error("--mem '%s' is not a size (512M, 2G)", text);
	return (uint64_t)value << shift;
}

static void parse_command_line(struct vm *vm, int argc, char **argv)
{
	enum { OPT_NO_VF = 256, OPT_CONSOLE, OPT_GUEST_INIT };
	static const struct option options[] = {
		{ "vf", required_argument, NULL, 'v' },
		{ "no-vf", no_argument, NULL, OPT_NO_VF },
		{ "cpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "accel", required_argument, NULL, 'a' },
		{ "net", required_argument, NULL, 'n' },
		{ "env", required_argument, NULL, 'e' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "image", required_argument, NULL, 'i' },
		{ "console", no_argument, NULL, OPT_CONSOLE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool cpus_given = false, mem_given = false, accel_given = false;
	unsigned long value;
	int c;

	opterr = 0;
	/* "+": stop at CMD, whose own options are none of our business. */
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (vm->vf_given)
				usage_error("--vf given twice");
			vm->vf = vf_parse_option(optarg);
			vm->vf_given = true;
			break;
		case OPT_NO_VF:
			vm->no_vf = true;
			break;
		case 'c':
			if (cpus_given)
				usage_error("--cpus given twice");
			if (!vhca_parse_decimal(optarg, strlen(optarg), VM_CPUS_MAX, &value) ||
			    !value)
				usage_error("--cpus '%s': 1 to %d", optarg, VM_CPUS_MAX);
			vm->cpus = (unsigned int)value;
			cpus_given = true;
			break;
		case 'm':
			if (mem_given)
				usage_error("--mem given twice");
			vm->mem = parse_mem(optarg);
			mem_given = true;
			break;
		case 'a':
			if (accel_given)
				usage_error("--accel given twice");
			if (!strcmp(optarg, "kvm"))
				vm->accel = VM_ACCEL_KVM;
			else if (!strcmp(optarg, "tcg"))
				vm->accel = VM_ACCEL_TCG;
			else if (strcmp(optarg, "auto"))
				usage_error("--accel '%s': kvm, tcg or auto", optarg);
			accel_given = true;
			break;
		case 'n':
			if (vm->bridge)
				usage_error("--net given twice");
			vm->bridge = optarg;
			break;
		case 'e':
			if (vm->num_env_names == VM_ENV_MAX)
				usage_error("at most %d --env", VM_ENV_MAX);
			if (!*optarg || *optarg == '=')
				usage_error("--env needs NAME or NAME=VALUE");
			vm->env_names[vm->num_env_names++] = optarg;
			break;
		case 'r':
			if (vm->run_dir_arg)
				usage_error("--run-dir given twice");
			if (!*optarg)
				usage_error("--run-dir needs a directory");
			vm->run_dir_arg = optarg;
			break;
		case 'i':
			if (vm->image_arg)
				usage_error("--image given twice");
			vm->image_arg = optarg;
			break;
		case OPT_CONSOLE:
			vm->console = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			tool_bad_option(c, argv);
		}
	}
	if (vm->no_vf && vm->vf_given)
		usage_error("--vf and --no-vf exclude each other");
	if (vm->mem < VM_MEM_MIN || vm->mem > VM_MEM_MAX || vm->mem % (1 << 20))
		usage_error("--mem: whole MiB from 128M to 3G (RAM above 3 GiB lands past 4 GiB, "
			    "where guest-physical addresses are no longer offsets in the RAM vhcad maps)");
	if (optind >= argc)
		usage_error("no command given (vhca-vm [options] -- CMD [ARGS...])");
	vm->cmd = &argv[optind];
	if (!vm->run_dir_arg)
		vm->run_dir_arg = vf_default_run_dir();
}

/* ---- paths ------------------------------------------------------------------------ */

static char *dir_of(const char *path)
{
	char *copy = strdup(path), *slash;

	if (!copy)
		tool_fail("out of memory");
	slash = strrchr(copy, '/');
	if (slash)
		*(slash == copy ? slash + 1 : slash) = '\0';
	return copy;
}

/* The image: --image, $VHCA_VM_IMAGE or the build's; DIR or DIR/current. */
static void resolve_image(struct vm *vm)
{
	const char *env = getenv("VHCA_VM_IMAGE");
	const char *dir = vm->image_arg ? vm->image_arg :
			  env && *env ? env : VHCA_VM_IMAGE_DIR;
	char *current = tool_path_join(dir, "current"), *kernel;

	vm->image = realpath(current, NULL);
	free(current);
	if (!vm->image)
		vm->image = realpath(dir, NULL);
	kernel = vm->image ? tool_path_join(vm->image, "vmlinux") : NULL;
	if (!kernel || access(kernel, R_OK))
		tool_fail("no guest image in %s (build it with scripts/build-vm-image.sh)",
			  dir);
	free(kernel);
}

/* VHCA_VM_DRIVER, or the guest-mode vhcad of our build tree or install. */
static void resolve_driver(struct vm *vm)
{
	const char *env = getenv("VHCA_VM_DRIVER");
	char *bin = dir_of(vm->self), *vhcad = NULL;
	const char *candidates[] = { "%s/../kernel-shim/vhcad", "%s/../sbin/vhcad",
				     "%s/vhcad" };

	if (env && *env) {
		vm->driver = strdup(env);
		free(bin);
		return;
	}
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		char *path;

		if (asprintf(&path, candidates[i], bin) < 0)
			tool_fail("out of memory");
		vhcad = realpath(path, NULL);
		free(path);
		if (vhcad && !access(vhcad, X_OK))
			break;
		free(vhcad);
		vhcad = NULL;
	}
	if (!vhcad)
		vhcad = strdup(VHCA_SBINDIR "/vhcad");
	if (!vhcad || asprintf(&vm->driver, "%s --vm-guest --run-dir " VM_GUEST_RUN_DIR,
			       vhcad) < 0)
		tool_fail("out of memory");
	free(vhcad);
	free(bin);
}

/* Removes what a private directory holds (make_priv_dir), then it. */
static void remove_priv_dir(const char *dir)
{
	static const char *const files[] = { "console.log", "qemu.log" };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *f = tool_path_join(dir, files[i]);

		unlink(f);
		free(f);
	}
	char *root = tool_path_join(dir, "root");

	rmdir(root);	/* EBUSY if something is still mounted there: kept */
	free(root);
	rmdir(dir);
}

/*
 * A vhca-vm killed with SIGKILL cannot clean up: the next one to start in
 * the same run dir removes the directories of those whose process is gone
 * (their names carry the pid).
 */
static void sweep_stale_dirs(const char *vm_dir)
{
	DIR *d = opendir(vm_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *end, *path;
		long pid;

		if (strncmp(e->d_name, "vhca-vm.", 8))
			continue;
		pid = strtol(e->d_name + 8, &end, 10);
		if (end == e->d_name + 8 || *end != '.' || pid <= 0 ||
		    pid == getpid() || !(kill((pid_t)pid, 0) && errno == ESRCH))
			continue;
		path = tool_path_join(vm_dir, e->d_name);
		remove_priv_dir(path);
		free(path);
	}
	closedir(d);
}

/*
 * Our directory for this VM: DIR/vm/vhca-vm.PID.XXXXXX (the VM's console
 * and QEMU's log, the mount point of QEMU's export).  Without a VF and
 * without a run dir, one in $TMPDIR.
 */
static void make_priv_dir(struct vm *vm)
{
	char name[64];
	char *vm_dir, *templ;

	if (vm->run_dir) {
		vm_dir = tool_path_join(vm->run_dir, VM_DIR_NAME);
		if (mkdir(vm_dir, 0755) && errno != EEXIST)
			tool_fail("cannot create %s: %s", vm_dir, strerror(errno));
	} else {
		const char *tmp = getenv("TMPDIR");

		vm_dir = strdup(tmp && *tmp ? tmp : "/tmp");
	}
	if (vm->run_dir)
		sweep_stale_dirs(vm_dir);
	snprintf(name, sizeof(name), "vhca-vm.%ld.XXXXXX", (long)getpid());
	templ = tool_path_join(vm_dir, name);
	free(vm_dir);
	if (!mkdtemp(templ))
		tool_fail("cannot create %s: %s", templ, strerror(errno));
	vm->priv_dir = templ;
	vm->export_dir = tool_path_join(templ, "root");
	vm->console_log = tool_path_join(templ, "console.log");
	vm->qemu_log = tool_path_join(templ, "qemu.log");
	if (mkdir(vm->export_dir, 0700))
		tool_fail("cannot create %s: %s", vm->export_dir, strerror(errno));
}

static void cleanup(void)
{
	struct vm *vm = the_vm;

	if (!vm)
		return;
	the_vm = NULL;
	vm_stop_qemu(vm);
	vm_net_cleanup(vm);
	if (vm->priv_dir)
		remove_priv_dir(vm->priv_dir);
}

/* ---- the VF ----------------------------------------------------------------------- */

static void vm_owner_name(unsigned int vf, char *buf, size_t size, void *ctx)
{
	snprintf(buf, size, VF_PF_NAME "-vf%u", vf);
}

static void take_vf(struct vm *vm)
{
	struct vf_claim claim = {
		.run_dir = vm->run_dir,
		.sys_path = vm->sys_path,
		.vf_given = vm->vf_given,
		.vf = vm->vf,
		.owner_kind = "VM",
		.owner_name = vm_owner_name,
	};

	vf_claim(&claim);
	vm->vf = claim.vf;
	vm->lock_fd = claim.lock_fd;
	/* The lock stays with us and QEMU, nobody else. */
	fcntl(vm->lock_fd, F_SETFD, FD_CLOEXEC);
}

/* The guest's RAM: a memfd of exactly --mem bytes that nobody can resize. */
static void create_ram(struct vm *vm)
{
	vm->ram_fd = memfd_create("vhca-vm-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (vm->ram_fd < 0 || ftruncate(vm->ram_fd, (off_t)vm->mem) ||
	    fcntl(vm->ram_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		tool_fail("cannot create the VM's RAM (%" PRIu64 " MiB): %s",
			  vm->mem >> 20, strerror(errno));
}

static void attach_vf(struct vm *vm)
{
	struct vhca_mgmt_vm req = { .vf = vm->vf, .ram_size = vm->mem };
	char what[64];
	int fd = mgmt_connect(vm->run_dir), err;

	snprintf(what, sizeof(what), "attach " VF_NAME_PREFIX "%u to a VM", vm->vf);
	err = mgmt_call(fd, VHCA_MGMT_ATTACH_VM, &req, sizeof(req), vm->ram_fd, what);
	close(fd);
	if (err == -EOPNOTSUPP || err == -EINVAL)
		tool_fail("vhcad on %s cannot attach VFs to VMs (VHCA_MGMT_ATTACH_VM: %s); "
			  "use --no-vf for a VM without a VF",
			  vm->run_dir, strerror(-err));
	if (err)
		tool_fail("vhcad refused to attach " VF_NAME_PREFIX "%u to the VM: %s",
			  vm->vf, strerror(-err));
	if (asprintf(&vm->vf_socket, "%s/" VM_DIR_NAME "/" VF_NAME_PREFIX "%u.sock",
		     vm->run_dir, vm->vf) < 0)
		tool_fail("out of memory");
	if (access(vm->vf_socket, F_OK))
		tool_fail("vhcad attached " VF_NAME_PREFIX "%u but serves no %s",
			  vm->vf, vm->vf_socket);
}

/* ---- main -------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct vm vm = {
		.cpus = 1, .mem = VM_MEM_DEFAULT, .accel = VM_ACCEL_AUTO,
		.lock_fd = -1, .ram_fd = -1,
	};
	sigset_t set;

	if (argc == 2 && !strcmp(argv[1], "--guest-init"))
		vm_guest_init();
	/* A closed stdout would be the next fd we open, and get CMD's output. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			tool_fail("cannot open /dev/null: %s", strerror(errno));
	parse_command_line(&vm, argc, argv);
	if (geteuid() != 0)
		tool_fail("must run as root (QEMU's mount namespace, taps, vhcad's management socket)");

	/* Taken from the signalfd in the session; pending until then. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	vm.self = realpath("/proc/self/exe", NULL);
	if (!vm.self)
		tool_fail("cannot find myself: %s", strerror(errno));
	vm.run_dir = realpath(vm.run_dir_arg, NULL);
	if (!vm.run_dir && !vm.no_vf)
		tool_fail("no vhcad serves %s (%s); start it with 'vhcad --run-dir %s', or boot with --no-vf",
			  vm.run_dir_arg, strerror(errno), vm.run_dir_arg);
	if (vm.run_dir && !strcmp(vm.run_dir, "/"))
		tool_fail("run dir / cannot be hidden from a VM");
	if (!vm_path_visible(&vm, vm.self))
		tool_fail("%s runs inside the VM, which does not see it (the VM sees the host's / "
			  "but /proc, /sys, /dev, /run, /tmp and the run dir); install or build it elsewhere",
			  vm.self);
	resolve_image(&vm);
	vm_choose_accel(&vm);
	the_vm = &vm;
	atexit(cleanup);

	if (!vm.no_vf) {
		vm.sys_path = tool_path_join(vm.run_dir, "sys");
		take_vf(&vm);
		resolve_driver(&vm);
	}
	make_priv_dir(&vm);
	create_ram(&vm);
	if (!vm.no_vf)
		attach_vf(&vm);
	if (vm.bridge)
		vm_net_setup(&vm);
	vm_start_qemu(&vm);
	exit(vm_run_session(&vm));
}
