// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A hostile VM, played by fake_vm.h without QEMU (issue 10, "Bad input
 * and faults"); test_sec_vm.sh runs the modes.  Every check names the
 * exact answer it wants (an errno, a completion status, a QP state, a
 * byte count), prints "FAIL: ..." when it gets another, and the exit
 * status says whether any did.
 *
 *   vm_attacks garbage RUN_DIR VF_A VF_B SEED
 *       garbage in VM A's mailbox: lengths, unknown ops, truncated
 *       bodies, trailing words, context ids never opened and VM B's,
 *       random bytes, a second writer racing the mailbox; -EINVAL each,
 *       and nothing changed (QUERY_FUNCTION, the status line)
 *   vm_attacks memory RUN_DIR VF VHCAD_PID
 *       memory a VM may not name: vhcad's fds (MEM_FD), pages past its
 *       RAM, unaligned, list pages outside RAM, inconsistent counts; the
 *       pages-held budget (REG_MR until -ENOMEM) and the mapping budget
 *       (fragmented CREATE_CQ until -ENOMEM), and the device after both
 *   vm_attacks datapath RUN_DIR VF_A VF_B DIR
 *       RC QPs of VM A towards VM B and towards a host process
 *       (host_target, through DIR): WQEs with SGEs and remote addresses
 *       outside the MRs, keys of nothing or of others, doorbells beyond
 *       the queues; each the exact error completion and the QP in ERR;
 *       canaries in A's and B's RAM unchanged byte for byte
 *   vm_attacks host_target DEV DIR
 *       the host side of datapath: QPs towards VM A and a canary MR
 *       between two unregistered guards, checked once DIR/attacks.done
 *   vm_attacks vm_peer RUN_DIR VF DIR
 *       a VM whose QP carries RDMA WRITEs to and from host_peer until it
 *       is killed ("vm_peer: traffic" once it flows)
 *   vm_attacks host_peer DEV DIR
 *       the host side of vm_peer: WRITEs into the VM's MR until one
 *       fails; 0 if it fails IBV_WC_RETRY_EXC_ERR within 5 s
 *   vm_attacks clean_pair RUN_DIR VF_A VF_B
 *       two VMs, a WRITE and a READ between them that must succeed
 *   vm_attacks gone_watch RUN_DIR VF
 *       attached with a QP; once the BAR says VHCA_BAR_GONE (vhcad
 *       stopped), a command must get no answer
 *   vm_attacks hold RUN_DIR VF
 *       attached, until killed ("hold: attached")
 *   vm_attacks attach RUN_DIR VF
 *       attaches and detaches: prints "attach: 0" or "attach: -EBUSY"...
 *   vm_attacks attach_bad RUN_DIR VF NUM_VFS
 *       ATTACH_VM requests that must be refused, each with its errno
 *   vm_attacks write_file PATH TEXT
 *       writes TEXT to PATH: "write_file: written", or where it failed
 *       and the errno ("write_file: open: EACCES")
 *
 * Exit status: 0 every check held, 1 one did not, 2 a broken set-up.
 */
#include "vm_attacks.h"

int checks, failures;

const char *name_of(int e, char *buf, size_t n)
{
	const char *s;

	switch (e) {
	case 0:
		return "0";
	case FAKE_VM_NO_ANSWER:
		return "no answer";
	case FAKE_VM_GONE:
		return "BAR gone";
	case FAKE_VM_BAD_ANSWER:
		return "a malformed answer";
	default:
		s = e < 0 ? strerrorname_np(-e) : NULL;
		if (s)
			snprintf(buf, n, "-%s", s);
		else
			snprintf(buf, n, "%d", e);
		return buf;
	}
}

bool expect(const char *what, int got, int want)
{
	char g[32], w[32];

	checks++;
	if (got == want)
		return true;
	failures++;
	printf("FAIL: %s: %s, expected %s\n", what, name_of(got, g, sizeof(g)),
	       name_of(want, w, sizeof(w)));
	return false;
}

bool expect_true(const char *what, bool ok)
{
	checks++;
	if (!ok) {
		failures++;
		printf("FAIL: %s\n", what);
	}
	return ok;
}

int finish(const char *mode)
{
	printf("%s: %d checks, %d failed\n", mode, checks, failures);
	return failures ? 1 : 0;
}

void must(int ret, const char *what)
{
	char b[32];

	if (ret)
		die("set-up: %s: %s", what, name_of(ret, b, sizeof(b)));
}

void start(struct fake_vm *vm, const char *run_dir, unsigned int vf)
{
	char what[64];

	snprintf(what, sizeof(what), "attach VF %u", vf);
	must(fake_vm_start(vm, run_dir, vf, RAM_SIZE), what);
}

static uint64_t seed_state = 0x9e3779b97f4a7c15ull;

void rnd_seed(uint64_t seed)
{
	seed_state = seed ? seed : 1;
}

uint64_t rnd(void)
{
	seed_state ^= seed_state << 13;
	seed_state ^= seed_state >> 7;
	seed_state ^= seed_state << 17;
	return seed_state;
}

void status_line(const char *dev, char *buf, size_t n)
{
	char path[4096], line[512];
	size_t len = strlen(dev);
	FILE *f;

	snprintf(path, sizeof(path), "%s/module/vhca/status",
		 getenv("SYSFS_PATH") ? getenv("SYSFS_PATH") : "/sys");
	buf[0] = 0;
	f = fopen(path, "r");
	if (!f)
		die("cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, dev, len) && line[len] == ' ')
			snprintf(buf, n, "%s", line);
	fclose(f);
}

/* ---- 6. who may attach ------------------------------------------------------------ */

static int hold(const char *run_dir, unsigned int vf)
{
	struct fake_vm vm;

	start(&vm, run_dir, vf);
	printf("hold: attached\n");
	for (;;)
		pause();
	return 0;
}

static int attach(const char *run_dir, unsigned int vf)
{
	struct fake_vm vm;
	char b[32];
	int ret = fake_vm_start(&vm, run_dir, vf, RAM_SIZE);

	printf("attach: %s\n", name_of(ret, b, sizeof(b)));
	if (!ret)
		fake_vm_stop(&vm);
	return 0;
}

static int attach_bad(const char *run_dir, unsigned int vf,
		      unsigned int num_vfs)
{
	const int sealed = F_SEAL_SHRINK | F_SEAL_GROW;
	int fd, pipefd[2];
	struct fake_vm vm;

	expect("ATTACH_VM without a descriptor",
	       fake_vm_attach_req(run_dir, vf, 0, -1, RAM_SIZE), -EINVAL);
	fd = fake_vm_memfd(RAM_SIZE, 0);
	expect("ATTACH_VM of a memfd without seals",
	       fake_vm_attach_req(run_dir, vf, 0, fd, RAM_SIZE), -EINVAL);
	close(fd);
	fd = fake_vm_memfd(RAM_SIZE, F_SEAL_GROW);
	expect("ATTACH_VM of a memfd that may shrink",
	       fake_vm_attach_req(run_dir, vf, 0, fd, RAM_SIZE), -EINVAL);
	close(fd);
	fd = fake_vm_memfd(RAM_SIZE, sealed);
	expect("ATTACH_VM of more RAM than the memfd has",
	       fake_vm_attach_req(run_dir, vf, 0, fd, RAM_SIZE + FAKE_VM_PAGE),
	       -EINVAL);
	expect("ATTACH_VM of 0 bytes",
	       fake_vm_attach_req(run_dir, vf, 0, fd, 0), -EINVAL);
	expect("ATTACH_VM of RAM not in pages",
	       fake_vm_attach_req(run_dir, vf, 0, fd, RAM_SIZE - 1), -EINVAL);
	expect("ATTACH_VM with flags 1",
	       fake_vm_attach_req(run_dir, vf, 1, fd, RAM_SIZE), -EINVAL);
	expect("ATTACH_VM of VF NUM_VFS",
	       fake_vm_attach_req(run_dir, num_vfs, 0, fd, RAM_SIZE), -ENODEV);
	expect("ATTACH_VM of VF 0xffffffff",
	       fake_vm_attach_req(run_dir, 0xffffffffu, 0, fd, RAM_SIZE),
	       -ENODEV);
	close(fd);
	fd = fake_vm_memfd(VHCA_VM_RAM_MAX + FAKE_VM_PAGE, sealed);
	expect("ATTACH_VM of 3 GiB + 4 KiB (above the PCI hole)",
	       fake_vm_attach_req(run_dir, vf, 0, fd,
				  VHCA_VM_RAM_MAX + FAKE_VM_PAGE),
	       -EINVAL);
	close(fd);
	if (pipe2(pipefd, O_CLOEXEC))
		die("pipe");
	expect("ATTACH_VM of a pipe",
	       fake_vm_attach_req(run_dir, vf, 0, pipefd[0], RAM_SIZE), -EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);
	expect("after all that, the VF attaches",
	       fake_vm_start(&vm, run_dir, vf, RAM_SIZE), 0);
	fake_vm_stop(&vm);
	return finish("attach_bad");
}

/* Opens @path for writing and writes @text: where it failed, and how. */
static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		printf("write_file: open: %s\n", strerrorname_np(errno));
	else if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		printf("write_file: write: %s\n", strerrorname_np(errno));
	else
		printf("write_file: written\n");
	if (fd >= 0)
		close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 6 && !strcmp(argv[1], "garbage"))
		return garbage(argv[2], (unsigned int)atoi(argv[3]),
			       (unsigned int)atoi(argv[4]),
			       strtoull(argv[5], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "memory"))
		return memory(argv[2], (unsigned int)atoi(argv[3]),
			      (pid_t)atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "datapath"))
		return datapath(argv[2], (unsigned int)atoi(argv[3]),
				(unsigned int)atoi(argv[4]), argv[5]);
	if (argc == 4 && !strcmp(argv[1], "host_target"))
		return host_target(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "vm_peer"))
		return vm_peer(argv[2], (unsigned int)atoi(argv[3]), argv[4]);
	if (argc == 4 && !strcmp(argv[1], "host_peer"))
		return host_peer(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "clean_pair"))
		return clean_pair(argv[2], (unsigned int)atoi(argv[3]),
				  (unsigned int)atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "gone_watch"))
		return gone_watch(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "hold"))
		return hold(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "attach"))
		return attach(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "attach_bad"))
		return attach_bad(argv[2], (unsigned int)atoi(argv[3]),
				  (unsigned int)atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "write_file"))
		return write_file(argv[2], argv[3]);
	fprintf(stderr, "usage: see the top of vm_attacks.c\n");
	return 2;
}
