// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Inside the VM (vm.h): the first process once the image's /init has
 * switched to the host's root ("vhca-vm --guest-init", PID 1).
 *
 * It finds its three virtio-serial ports, says "ready" on the control
 * port and takes the job (proto.h), sets the VM up (hostname, network,
 * the image's modules, /dev/pts and /dev/shm), starts the VF's guest
 * driver when a VF is attached, then runs CMD with stdin /dev/null and
 * its stdout and stderr on pipes of ours, whose bytes it copies to the
 * stdout and stderr ports, counted.  When CMD has ended it reports the
 * wait status with those counts; vhca-vm ends the VM once it has read as
 * many.  Its own messages (stderr) are counted the same way, through a
 * stdio stream of ours, and a failure of its own reports "fail".
 *
 * CMD runs as root with every capability: the VM is the boundary (a VM
 * cannot reach the host but through its devices, docs/vm.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "proto.h"
#include "vm.h"

#define PORTS_DIR "/sys/class/virtio-ports"
#define PORT_WAIT_MS 10000
/* The guest driver: ready within this, or CMD does not run. */
#define DRIVER_WAIT_MS 20000
#define DRIVER_LOG "/run/vhca-vm-driver.log"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define COPY_BUF 65536

struct job {
	char **argv, **envp;
	size_t argc, envc;
	const char *cwd, *hostname, *modules, *net, *gateway, *driver;
	bool has_vf;
};

static int port_fd[2] = { -1, -1 };	/* stdout, stderr ports */
static uint64_t port_sent[2];
static int ctl_fd = -1;
static bool reported;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Every byte to the host's stdout (0) or stderr (1), counted. */
static void port_write(int which, const char *buf, size_t len)
{
	while (len && port_fd[which] >= 0) {
		ssize_t n = write(port_fd[which], buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		port_sent[which] += (uint64_t)n;
		buf += n;
		len -= (size_t)n;
	}
}

static ssize_t stderr_cookie_write(void *cookie, const char *buf, size_t len)
{
	port_write(1, buf, len);
	return (ssize_t)len;
}

static void report(const char *key, const char *value)
{
	struct proto_writer w = { .fd = ctl_fd };

	proto_put(&w, key, value);
	proto_flush(&w);
	free(w.buf);
}

/* exit() of PID 1 would panic the VM: say "fail" and power off instead. */
static void fail_at_exit(void)
{
	char counts[64];

	if (!reported && ctl_fd >= 0) {
		fflush(stderr);
		snprintf(counts, sizeof(counts), "%" PRIu64 ",%" PRIu64,
			 port_sent[0], port_sent[1]);
		report("fail", counts);
	}
	sync();
	reboot(RB_POWER_OFF);
}

/* ---- ports and the job -------------------------------------------------------------- */

static int open_port(const char *name, int flags)
{
	long long deadline = now_ms() + PORT_WAIT_MS;

	/* The device announces its ports after the driver is up: wait. */
	do {
		DIR *dir = opendir(PORTS_DIR);
		struct dirent *e;

		while (dir && (e = readdir(dir))) {
			char path[PATH_MAX], text[64] = "";
			int fd;
			ssize_t n;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), PORTS_DIR "/%s/name", e->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
			if (fd >= 0)
				close(fd);
			if (n <= 0)
				continue;
			text[strcspn(text, "\n")] = '\0';
			if (strcmp(text, name))
				continue;
			snprintf(path, sizeof(path), "/dev/%s", e->d_name);
			closedir(dir);
			fd = open(path, flags | O_CLOEXEC);
			if (fd < 0)
				tool_fail("cannot open %s (%s): %s", path, name,
					  strerror(errno));
			return fd;
		}
		if (dir)
			closedir(dir);
		usleep(10000);
	} while (now_ms() < deadline);
	tool_fail("no virtio-serial port %s after %d s", name, PORT_WAIT_MS / 1000);
}

static void push(char ***list, size_t *count, const char *value)
{
	*list = realloc(*list, (*count + 2) * sizeof(**list));
	if (!*list || !((*list)[*count] = strdup(value)))
		tool_fail("out of memory");
	(*list)[++*count] = NULL;
}

static char *dup_or_fail(const char *s)
{
	char *copy = strdup(s);

	if (!copy)
		tool_fail("out of memory");
	return copy;
}

static void read_job(struct proto_reader *r, struct job *job)
{
	const char *key, *value;

	for (;;) {
		while ((value = proto_next(r, &key))) {
			if (!strcmp(key, "end")) {
				if (!job->argc)
					tool_fail("the job has no command");
				return;
			}
			if (!strcmp(key, "arg"))
				push(&job->argv, &job->argc, value);
			else if (!strcmp(key, "env"))
				push(&job->envp, &job->envc, value);
			else if (!strcmp(key, "cwd"))
				job->cwd = dup_or_fail(value);
			else if (!strcmp(key, "hostname"))
				job->hostname = dup_or_fail(value);
			else if (!strcmp(key, "modules"))
				job->modules = dup_or_fail(value);
			else if (!strcmp(key, "net"))
				job->net = dup_or_fail(value);
			else if (!strcmp(key, "gateway"))
				job->gateway = dup_or_fail(value);
			else if (!strcmp(key, "vf"))
				job->has_vf = true;
			else if (!strcmp(key, "driver"))
				job->driver = dup_or_fail(value);
		}
		if (proto_fill(r) <= 0)
			tool_fail("the control port closed before the job was complete");
	}
}

/* ---- the VM's setup ----------------------------------------------------------------- */

static void mount_or_fail(const char *source, const char *target,
			  const char *type, unsigned long flags, const char *data)
{
	mkdir(target, 0755);
	if (mount(source, target, type, flags, data))
		tool_fail("cannot mount %s on %s: %s", type ? type : source, target,
			  strerror(errno));
}

static void setup_dev(void)
{
	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" },
		{ "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" },
		{ "/proc/self/fd/2", "/dev/stderr" },
	};

	mount_or_fail("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		      "mode=620,ptmxmode=666");
	mount_or_fail("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) && errno != EEXIST)
			tool_fail("cannot create %s: %s", links[i][1], strerror(errno));
}

static void setup_identity(const struct job *job)
{
	char addr[32] = "";
	FILE *hosts;

	if (job->hostname && sethostname(job->hostname, strlen(job->hostname)))
		tool_fail("cannot set the hostname: %s", strerror(errno));
	if (job->net)
		snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(job->net, "/"), job->net);
	/* The overlay takes the write; the host's /etc/hosts stays as it is. */
	hosts = fopen("/etc/hosts", "ae");
	if (hosts && job->hostname) {
		fprintf(hosts, "%s\t%s\n", *addr ? addr : "127.0.1.1", job->hostname);
		fclose(hosts);
	} else if (hosts) {
		fclose(hosts);
	}
}

/* The image's modules at /lib/modules/`uname -r`: modprobe works in the VM. */
static void setup_modules(const struct job *job)
{
	struct utsname u;
	char target[PATH_MAX];

	if (!job->modules || uname(&u) || access(job->modules, F_OK))
		return;
	snprintf(target, sizeof(target), "/lib/modules/%s", u.release);
	mkdir("/lib/modules", 0755);
	mount_or_fail(job->modules, target, NULL, MS_BIND | MS_RDONLY, NULL);
}

/* ---- the VF's guest driver ----------------------------------------------------------- */

static void show_file(const char *title, const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	fprintf(stderr, "--- %s ---\n", title);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	close(fd);
}

static _Noreturn void driver_failed(const char *driver, const char *why)
{
	show_file("the guest driver's output", DRIVER_LOG);
	show_file(VM_GUEST_RUN_DIR "/vhcad.log", VM_GUEST_RUN_DIR "/vhcad.log");
	tool_fail("the VF's guest driver %s (VHCA_VM_DRIVER: %s); CMD did not run",
		  why, driver);
}

static void start_driver(const struct job *job)
{
	long long deadline = now_ms() + DRIVER_WAIT_MS;
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		tool_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int log = open(DRIVER_LOG, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int null = open("/dev/null", O_RDONLY);
		sigset_t none;

		if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
		    dup2(log, 2) < 0)
			_exit(VM_EXIT_FAILED);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		execle("/bin/sh", "sh", "-c", job->driver, (char *)NULL, job->envp);
		_exit(VM_EXIT_NOT_FOUND);
	}
	while (access(VM_GUEST_RUN_DIR "/ready", F_OK)) {
		if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
			pid = 0;
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				driver_failed(job->driver, "failed");
		}
		if (now_ms() > deadline)
			driver_failed(job->driver, "was not ready within 20 s");
		usleep(20000);
	}
}

/* ---- CMD ---------------------------------------------------------------------------- */

static pid_t start_cmd(const struct job *job, int out[2], int err[2])
{
	int exec_pipe[2], error;
	ssize_t n;
	pid_t pid;

	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
	    pipe2(exec_pipe, O_CLOEXEC))
		tool_fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		tool_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		sigset_t none;

		if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 ||
		    dup2(err[1], 2) < 0)
			_exit(VM_EXIT_FAILED);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (!job->cwd || chdir(job->cwd))
			(void)!chdir("/");
		environ = job->envp;
		execvp(job->argv[0], job->argv);
		error = errno;
		(void)!write(exec_pipe[1], &error, sizeof(error));
		_exit(error == ENOENT ? VM_EXIT_NOT_FOUND : VM_EXIT_CANNOT_EXECUTE);
	}
	close(out[1]);
	close(err[1]);
	close(exec_pipe[1]);
	n = read(exec_pipe[0], &error, sizeof(error));
	close(exec_pipe[0]);
	if (n == sizeof(error))
		tool_warn("cannot run %s: %s", job->argv[0], strerror(error));
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	return pid;
}

/* Copies what @fd has to port @which; false at its end. */
static bool copy_out(int fd, int which)
{
	static char buf[COPY_BUF];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0) {
		port_write(which, buf, (size_t)n);
		return true;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* Relays CMD's output until CMD has ended; returns its wait status. */
static int relay(pid_t cmd, int out, int err, struct proto_reader *ctl)
{
	int fds[2] = { out, err }, sig_fd, status = 0;
	bool cmd_done = false;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0)
		tool_fail("signalfd: %s", strerror(errno));
	while (!cmd_done) {
		struct pollfd p[4] = {
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = ctl->fd, .events = POLLIN },
			{ .fd = fds[0], .events = POLLIN },
			{ .fd = fds[1], .events = POLLIN },
		};
		struct signalfd_siginfo info;
		const char *key, *value;
		pid_t pid;

		if (poll(p, 4, -1) < 0 && errno != EINTR)
			tool_fail("poll: %s", strerror(errno));
		for (int i = 0; i < 2; i++)
			if (p[2 + i].revents && !copy_out(fds[i], i)) {
				close(fds[i]);
				fds[i] = -1;
			}
		if (p[1].revents && proto_fill(ctl) <= 0)
			ctl->fd = -1;
		while ((value = proto_next(ctl, &key))) {
			int which = atoi(value) - 1;

			/* Nobody reads the host's end: CMD's writes fail from now. */
			if (!strcmp(key, "closed") && (which == 0 || which == 1) &&
			    fds[which] >= 0) {
				close(fds[which]);
				fds[which] = -1;
			}
		}
		while (read(sig_fd, &info, sizeof(info)) > 0)
			;
		/* We are PID 1: every orphan is ours to reap. */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == cmd) {
				cmd_done = true;
				break;
			}
	}
	/* What CMD wrote before it ended is in the pipes: all of it goes. */
	for (int i = 0; i < 2; i++) {
		while (fds[i] >= 0 && copy_out(fds[i], i)) {
			struct pollfd p = { .fd = fds[i], .events = POLLIN };

			if (poll(&p, 1, 0) != 1)
				break;
		}
		if (fds[i] >= 0)
			close(fds[i]);
	}
	close(sig_fd);
	return status;
}

_Noreturn void vm_guest_init(void)
{
	static const cookie_io_functions_t counted = { .write = stderr_cookie_write };
	struct proto_reader ctl;
	struct job job = { 0 };
	char text[96];
	int out[2], err[2], status;
	bool has_path = false;
	sigset_t set;
	pid_t cmd;

	if (getpid() != 1)
		tool_fail("--guest-init is vhca-vm's own first process inside its VM");
	atexit(fail_at_exit);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* A host reader that went away must not kill PID 1. */
	signal(SIGPIPE, SIG_IGN);

	ctl_fd = open_port(VM_PORT_CTL, O_RDWR);
	port_fd[0] = open_port(VM_PORT_STDOUT, O_WRONLY);
	port_fd[1] = open_port(VM_PORT_STDERR, O_WRONLY);
	stderr = fopencookie(NULL, "w", counted);
	if (!stderr)
		_exit(VM_EXIT_FAILED);
	setvbuf(stderr, NULL, _IONBF, 0);

	report("ready", NULL);
	proto_reader_init(&ctl, ctl_fd);
	read_job(&ctl, &job);
	for (size_t i = 0; i < job.envc; i++)
		has_path |= !strncmp(job.envp[i], "PATH=", 5);
	if (!has_path)
		push(&job.envp, &job.envc, "PATH=" DEFAULT_PATH);
	if (job.has_vf)
		push(&job.envp, &job.envc, "SYSFS_PATH=" VM_GUEST_RUN_DIR "/sys");

	setup_dev();
	setup_identity(&job);
	vm_guest_net(job.net, job.gateway);
	setup_modules(&job);
	if (job.has_vf)
		start_driver(&job);

	cmd = start_cmd(&job, out, err);
	report("started", NULL);
	status = relay(cmd, out[0], err[0], &ctl);
	snprintf(text, sizeof(text), "%d,%" PRIu64 ",%" PRIu64, status,
		 port_sent[0], port_sent[1]);
	report("exit", text);
	reported = true;
	/* vhca-vm ends the VM once it has read everything. */
	for (;;)
		pause();
}
