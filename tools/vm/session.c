// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The host side of a running VM (vm.h): one poll loop that hands the job
 * to the guest once it is ready, copies CMD's stdout and stderr from
 * QEMU's pipes to ours, takes CMD's status, and ends the VM.
 *
 * vhca-vm copies the output itself rather than giving QEMU its own stdout
 * (chardev file, path=/proc/self/fd/1): QEMU sets O_NONBLOCK on what it
 * opens and throttles the port when a write would block, so the bytes a
 * slow reader has not taken yet wait in the guest and would be lost when
 * the VM ends; a regular file reopened that way gets an offset of its
 * own, and a socket cannot be reopened at all.  Here our fds stay as the
 * caller gave them, and the guest's byte counts (proto.h) say when all
 * output is in.  Writes to our fds wait for POLLOUT and stay within
 * PIPE_BUF, so a reader that stops never keeps us from a signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "proto.h"
#include "vm.h"

/* Boot to "ready": seconds under TCG, more with other VMs on 2 cores. */
#define BOOT_TIMEOUT_MS 90000
/* Once CMD ended: the rest of its output must keep coming. */
#define DRAIN_TIMEOUT_MS 10000
#define STREAM_BUF 65536
#define LOG_TAIL_LINES 40

extern char **environ;

struct stream {
	int in;			/* QEMU's pipe, non-blocking */
	int out;		/* our stdout or stderr */
	int num;		/* 1 or 2 */
	char buf[STREAM_BUF];
	size_t len, off;
	uint64_t got;		/* bytes read from QEMU */
	bool eof;
	bool gone;		/* our reader went away: discard */
};

struct session {
	struct vm *vm;
	struct stream s[2];
	struct proto_reader in;
	struct proto_writer out;
	int sig_fd;
	bool ready, started, done, failed;
	int status;		/* CMD's wait status, once done */
	uint64_t want[2];	/* bytes the guest sent on each port */
	long long deadline;	/* ms, CLOCK_MONOTONIC; 0: none */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ---- the job --------------------------------------------------------------------- */

static bool env_passed(const char *entry)
{
	static const char *const names[] = {
		"PATH", "HOME", "TERM", "LANG", "TZ", "USER", "LOGNAME",
	};
	static const char *const prefixes[] = {
		"LC_", "RDMAV_", "IBV_", "UCX_", "OMPI_", "PMIX_", "VHCA_",
	};
	size_t len = strcspn(entry, "=");

	/* The host's run dir means nothing in the VM; its own is set below. */
	if (!strncmp(entry, "VHCA_RUN_DIR=", 13))
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && !strncmp(entry, names[i], len))
			return true;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(entry, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static void put_env(struct session *se, const char *name, const char *value)
{
	char *entry;

	if (asprintf(&entry, "%s=%s", name, value) < 0)
		tool_fail("out of memory");
	proto_put(&se->out, "env", entry);
	free(entry);
}

static void send_job(struct session *se)
{
	const struct vm *vm = se->vm;
	char cwd[PATH_MAX], text[64];

	for (char **a = vm->cmd; *a; a++)
		proto_put(&se->out, "arg", *a);
	for (char **e = environ; *e; e++)
		if (env_passed(*e))
			proto_put(&se->out, "env", *e);
	/* --env NAME passes the caller's NAME, --env NAME=VALUE sets it. */
	for (size_t i = 0; i < vm->num_env_names; i++) {
		const char *name = vm->env_names[i], *value = getenv(name);

		if (strchr(name, '='))
			proto_put(&se->out, "env", name);
		else if (value)
			put_env(se, name, value);
	}
	put_env(se, "VHCA_VM_ACCEL", vm->accel == VM_ACCEL_KVM ? "kvm" : "tcg");
	if (!vm->no_vf) {
		snprintf(text, sizeof(text), "vhca0_vf%u", vm->vf);
		put_env(se, "VHCA_VM_DEVICE", text);
		put_env(se, "VHCA_RUN_DIR", VM_GUEST_RUN_DIR);
		snprintf(text, sizeof(text), "%u", vm->vf);
		proto_put(&se->out, "vf", text);
		proto_put(&se->out, "driver", vm->driver);
	}
	if (!getcwd(cwd, sizeof(cwd)) || !vm_path_visible(vm, cwd))
		strcpy(cwd, "/");
	proto_put(&se->out, "cwd", cwd);
	if (vm->no_vf)
		snprintf(text, sizeof(text), "vhca-vm");
	else
		snprintf(text, sizeof(text), "vhca0-vf%u", vm->vf);
	proto_put(&se->out, "hostname", text);
	if (vm_path_visible(vm, vm->image)) {
		char *modules = tool_path_join(vm->image, "modules");

		proto_put(&se->out, "modules", modules);
		free(modules);
	}
	if (vm->has_net) {
		char addr[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &vm->net.addr, addr, sizeof(addr));
		snprintf(text, sizeof(text), "%s/%u", addr, vm->net.prefix);
		proto_put(&se->out, "net", text);
		put_env(se, "VHCA_VM_ADDRESS", addr);
		inet_ntop(AF_INET, &vm->net.gateway, addr, sizeof(addr));
		proto_put(&se->out, "gateway", addr);
	}
	proto_put(&se->out, "end", NULL);
}

/* ---- records from the guest -------------------------------------------------------- */

static void take_counts(struct session *se, const char *text, int *status)
{
	int n = status ? sscanf(text, "%d,%" SCNu64 ",%" SCNu64, status,
				&se->want[0], &se->want[1]) :
			 sscanf(text, "%" SCNu64 ",%" SCNu64, &se->want[0],
				&se->want[1]);

	if (n != (status ? 3 : 2))
		tool_fail("the VM sent a malformed status '%s'", text);
}

static void take_records(struct session *se)
{
	const char *key, *value;

	while ((value = proto_next(&se->in, &key))) {
		if (!strcmp(key, "ready") && !se->ready) {
			se->ready = true;
			se->deadline = 0;
			send_job(se);
		} else if (!strcmp(key, "started")) {
			se->started = true;
		} else if (!strcmp(key, "exit") && !se->done) {
			take_counts(se, value, &se->status);
			se->done = true;
			se->deadline = now_ms() + DRAIN_TIMEOUT_MS;
		} else if (!strcmp(key, "fail") && !se->done) {
			take_counts(se, value, NULL);
			se->done = se->failed = true;
			se->deadline = now_ms() + DRAIN_TIMEOUT_MS;
		}
	}
}

/* ---- CMD's output ------------------------------------------------------------------- */

static void stream_read(struct session *se, struct stream *st)
{
	ssize_t n = read(st->in, st->buf, sizeof(st->buf));

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		st->eof = true;
		return;
	}
	if (n < 0)
		return;
	st->got += (uint64_t)n;
	if (se->done)
		se->deadline = now_ms() + DRAIN_TIMEOUT_MS;
	if (st->gone)
		return;
	st->len = (size_t)n;
	st->off = 0;
}

static void stream_write(struct session *se, struct stream *st)
{
	size_t chunk = st->len - st->off;
	ssize_t n;

	if (chunk > PIPE_BUF)
		chunk = PIPE_BUF;
	n = write(st->out, st->buf + st->off, chunk);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		/* As for a pipe: CMD's next write gets EPIPE (or SIGPIPE). */
		st->gone = true;
		st->len = st->off = 0;
		proto_put(&se->out, "closed", st->num == 1 ? "1" : "2");
		return;
	}
	st->off += (size_t)n;
	if (st->off == st->len)
		st->len = st->off = 0;
}

static bool output_complete(const struct session *se)
{
	for (int i = 0; i < 2; i++)
		if (se->s[i].len || (se->s[i].got < se->want[i] && !se->s[i].eof))
			return false;
	return true;
}

/* ---- logs ------------------------------------------------------------------------- */

static void show_tail(const char *title, const char *path)
{
	char *lines[LOG_TAIL_LINES] = { 0 }, *line = NULL;
	size_t cap = 0, count = 0;
	FILE *f = path ? fopen(path, "re") : NULL;

	if (!f)
		return;
	while (getline(&line, &cap, f) >= 0) {
		free(lines[count % LOG_TAIL_LINES]);
		lines[count++ % LOG_TAIL_LINES] = line;
		line = NULL;
		cap = 0;
	}
	free(line);
	fclose(f);
	if (!count)
		return;
	fprintf(stderr, "--- %s (last %d lines) ---\n", title, LOG_TAIL_LINES);
	for (size_t i = count > LOG_TAIL_LINES ? count - LOG_TAIL_LINES : 0;
	     i < count; i++) {
		fputs(lines[i % LOG_TAIL_LINES], stderr);
		free(lines[i % LOG_TAIL_LINES]);
		lines[i % LOG_TAIL_LINES] = NULL;
	}
}

void vm_show_logs(const struct vm *vm)
{
	if (!vm->console)
		show_tail("the VM's console", vm->console_log);
	show_tail("QEMU", vm->qemu_log);
}

/* ---- the loop --------------------------------------------------------------------- */

static int signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		tool_fail("signalfd: %s", strerror(errno));
	return fd;
}

/* Returns -1 to go on, or vhca-vm's exit status (128+S for signal S). */
static int take_signals(struct session *se)
{
	struct signalfd_siginfo info;

	while (read(se->sig_fd, &info, sizeof(info)) == sizeof(info)) {
		if (info.ssi_signo != SIGCHLD) {
			vm_stop_qemu(se->vm);
			return 128 + (int)info.ssi_signo;
		}
		if (se->vm->qemu > 0 && waitpid(se->vm->qemu, &se->vm->qemu_status,
						WNOHANG) == se->vm->qemu)
			se->vm->qemu = 0;
	}
	return -1;
}

static int verdict(struct session *se)
{
	struct vm *vm = se->vm;

	if (se->done && !se->failed) {
		if (!output_complete(se))
			tool_warn("the VM's output ended early (stdout %" PRIu64 " of %" PRIu64
				  " bytes, stderr %" PRIu64 " of %" PRIu64 ")",
				  se->s[0].got, se->want[0], se->s[1].got, se->want[1]);
		if (WIFEXITED(se->status))
			return WEXITSTATUS(se->status);
		return WIFSIGNALED(se->status) ? 128 + WTERMSIG(se->status) : VM_EXIT_FAILED;
	}
	if (se->failed)
		return VM_EXIT_FAILED;
	if (!se->ready)
		tool_warn("the VM did not boot (QEMU %s)",
			  WIFEXITED(vm->qemu_status) ? "exited" : "was killed");
	else
		tool_warn("the VM ended before CMD did");
	vm_show_logs(vm);
	return VM_EXIT_FAILED;
}

/* Static: reachable to the end, for LeakSanitizer as for us. */
static struct session the_session;

int vm_run_session(struct vm *vm)
{
	struct session *se = &the_session;
	int result;

	se->vm = vm;
	se->sig_fd = signal_fd();
	se->deadline = now_ms() + BOOT_TIMEOUT_MS;
	proto_reader_init(&se->in, vm->ctl_fd);
	se->out.fd = vm->ctl_fd;
	fcntl(vm->ctl_fd, F_SETFL, O_NONBLOCK);
	se->s[0] = (struct stream){ .in = vm->out_fd, .out = STDOUT_FILENO, .num = 1 };
	se->s[1] = (struct stream){ .in = vm->err_fd, .out = STDERR_FILENO, .num = 2 };
	for (int i = 0; i < 2; i++)
		fcntl(se->s[i].in, F_SETFL, O_NONBLOCK);

	for (;;) {
		struct pollfd p[6];
		int timeout = -1, n;
		bool qemu_gone = vm->qemu <= 0;

		if (se->done && output_complete(se))
			break;
		/* QEMU gone: what its pipes still hold is all there is. */
		if (qemu_gone && se->s[0].eof && se->s[1].eof &&
		    !se->s[0].len && !se->s[1].len)
			break;
		if (se->deadline) {
			long long left = se->deadline - now_ms();

			if (left <= 0) {
				if (!se->ready) {
					tool_warn("the VM did not boot within %d s",
						  BOOT_TIMEOUT_MS / 1000);
					vm_stop_qemu(vm);
					vm_show_logs(vm);
					return VM_EXIT_FAILED;
				}
				break;	/* drained as far as it goes */
			}
			timeout = (int)left;
		}
		p[0] = (struct pollfd){ .fd = se->sig_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = se->in.fd,
					.events = POLLIN | (proto_pending(&se->out) ? POLLOUT : 0) };
		for (int i = 0; i < 2; i++) {
			struct stream *st = &se->s[i];

			p[2 + i] = (struct pollfd){ .fd = st->len || st->eof ? -1 : st->in,
						    .events = POLLIN };
			p[4 + i] = (struct pollfd){ .fd = st->len ? st->out : -1,
						    .events = POLLOUT };
		}
		n = poll(p, 6, timeout);
		if (n < 0 && errno != EINTR)
			tool_fail("poll: %s", strerror(errno));
		if (n <= 0)
			continue;
		if (p[0].revents && (result = take_signals(se)) >= 0)
			return result;
		if (p[1].revents) {
			ssize_t got = proto_fill(&se->in);

			if (got > 0)
				take_records(se);
			else if (got == 0 || errno != EAGAIN)
				se->in.fd = -1;	/* QEMU is gone */
		}
		if (proto_pending(&se->out) && !proto_flush(&se->out))
			se->out.len = se->out.sent = 0;	/* QEMU is gone */
		for (int i = 0; i < 2; i++) {
			if (p[2 + i].revents)
				stream_read(se, &se->s[i]);
			if (p[4 + i].revents)
				stream_write(se, &se->s[i]);
		}
	}
	vm_stop_qemu(vm);
	return verdict(se);
}
