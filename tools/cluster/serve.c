// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * "vhca-agent serve" (agent.h): the VM's command under vhca-cluster.  It
 * listens on the VM's bridge address; each connection gets a process of
 * its own that checks the client's proof of the VM's key, runs the
 * command with sh -c in a session of its own and relays its stdio.
 *
 * Whatever the command starts ends with it: the connection's process is
 * a child subreaper, so every process the command leaves (orted's ranks,
 * a daemonized child) stays its descendant, and when the command has
 * ended, or the connection dropped (the host's agent was killed, mpirun
 * gave up), it sends SIGTERM to all of them, SIGKILL after a grace
 * period, and exits only once none is left.  That is what keeps a
 * running cluster clean between jobs: an ssh daemon would leave them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "agent.h"

#define MAX_CONNECTIONS 64
/* After the command ended: output its children still write, at most this. */
#define DRAIN_MS 1000
/* SIGTERM, then SIGKILL after this; and give up after HARD_MS. */
#define GRACE_MS 2000
#define HARD_MS 10000
#define MAX_TREE 4096

/* ---- the command's processes ------------------------------------------------------ */

/* Appends the children of @pid (every thread's) to @list; returns the count. */
static size_t children_of(pid_t pid, pid_t *list, size_t count)
{
	char path[64];
	DIR *tasks;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	tasks = opendir(path);
	while (tasks && (e = readdir(tasks))) {
		char file[320];
		FILE *f;
		int child;

		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "/proc/%d/task/%s/children", (int)pid, e->d_name);
		f = fopen(file, "re");
		while (f && count < MAX_TREE && fscanf(f, "%d", &child) == 1)
			list[count++] = child;
		if (f)
			fclose(f);
	}
	if (tasks)
		closedir(tasks);
	return count;
}

/* Every descendant of ours, breadth first. */
static size_t descendants(pid_t *list)
{
	size_t count = children_of(getpid(), list, 0);

	for (size_t i = 0; i < count; i++)
		count = children_of(list[i], list, count);
	return count;
}

static void reap(pid_t cmd, int *cmd_status, bool *cmd_done)
{
	int status;
	pid_t pid;

	/* A subreaper: orphans of the command are ours to reap too. */
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (pid == cmd) {
			*cmd_status = status;
			*cmd_done = true;
		}
}

/* SIGTERM to every process the command left, SIGKILL later; until none is left. */
static void end_all(pid_t cmd, int *cmd_status, bool *cmd_done)
{
	static pid_t list[MAX_TREE];
	long long start = agent_now_ms();
	int sig = SIGTERM;
	bool sent = false;

	for (;;) {
		size_t count;

		reap(cmd, cmd_status, cmd_done);
		count = descendants(list);
		if (!count)
			return;
		if (sig == SIGTERM && agent_now_ms() - start > GRACE_MS) {
			sig = SIGKILL;
			sent = false;
		}
		if (agent_now_ms() - start > HARD_MS) {
			tool_warn("%zu processes of a command would not end", count);
			return;
		}
		/* SIGKILL again each round: a process may have forked meanwhile. */
		if (!sent || sig == SIGKILL)
			for (size_t i = 0; i < count; i++)
				kill(list[i], sig);
		sent = true;
		usleep(20000);
	}
}

/* ---- one connection ----------------------------------------------------------------- */

/* The command, once the client proved it holds the key; @r reads on after it. */
static char *handshake(int sock, struct agent_reader *r,
		       const unsigned char key[AGENT_KEY_LEN], const char *peer)
{
	unsigned char nonce_s[AGENT_NONCE_LEN], nonce_c[AGENT_NONCE_LEN];
	unsigned char mac[AGENT_MAC_LEN], proof[AGENT_MAC_LEN];
	long long deadline = agent_now_ms() + AGENT_HANDSHAKE_MS;
	const char *data;
	size_t len;
	char *cmd;

	agent_random(nonce_s, sizeof(nonce_s));
	if (!agent_write_frame(sock, FRAME_HELLO, nonce_s, sizeof(nonce_s)))
		exit(1);
	if (agent_read_frame(r, sock, deadline, &data, &len) != FRAME_AUTH ||
	    len != AGENT_NONCE_LEN + AGENT_MAC_LEN) {
		tool_warn("%s: no valid AUTH, closed", peer);
		exit(1);
	}
	memcpy(nonce_c, data, AGENT_NONCE_LEN);
	memcpy(proof, data + AGENT_NONCE_LEN, AGENT_MAC_LEN);
	if (agent_read_frame(r, sock, deadline, &data, &len) != FRAME_CMD ||
	    memchr(data, '\0', len)) {
		tool_warn("%s: no valid command, closed", peer);
		exit(1);
	}
	cmd = strndup(data, len);
	if (!cmd)
		tool_fail("out of memory");
	agent_mac(key, "client", nonce_s, nonce_c, cmd, mac);
	if (!agent_mac_equal(mac, proof)) {
		tool_warn("%s: wrong key or a changed command, refused", peer);
		exit(1);
	}
	agent_mac(key, "server", nonce_c, nonce_s, NULL, mac);
	if (!agent_write_frame(sock, FRAME_OK, mac, sizeof(mac)))
		exit(1);
	return cmd;
}

static pid_t start_command(const char *cmd, int *in, int *out, int *err)
{
	int p_in[2], p_out[2], p_err[2];
	const char *home = getenv("HOME");
	pid_t pid;

	if (pipe2(p_in, O_CLOEXEC) || pipe2(p_out, O_CLOEXEC) || pipe2(p_err, O_CLOEXEC))
		tool_fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		tool_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;

		setsid();
		if (dup2(p_in[0], 0) < 0 || dup2(p_out[1], 1) < 0 || dup2(p_err[1], 2) < 0)
			_exit(126);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		/* As sshd does: the command starts in the home directory. */
		if (!home || chdir(home))
			(void)!chdir("/");
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p_in[0]);
	close(p_out[1]);
	close(p_err[1]);
	*in = p_in[1];
	*out = p_out[0];
	*err = p_err[0];
	fcntl(*in, F_SETFL, O_NONBLOCK);
	fcntl(*out, F_SETFL, O_NONBLOCK);
	fcntl(*err, F_SETFL, O_NONBLOCK);
	return pid;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void queue_exit(struct agent_queue *q, int status)
{
	char text[32];

	if (WIFSIGNALED(status))
		snprintf(text, sizeof(text), "signal %d", WTERMSIG(status));
	else
		snprintf(text, sizeof(text), "exit %d", WIFEXITED(status) ? WEXITSTATUS(status) : 255);
	agent_queue_frame(q, FRAME_EXIT, text, strlen(text));
}

static _Noreturn void serve_connection(int sock, const unsigned char key[AGENT_KEY_LEN],
				       const char *peer)
{
	struct agent_queue q = { 0 }, in_q = { 0 };
	struct agent_reader r;
	int in, fds[2], sig_fd, status = 0;
	bool cmd_done = false, in_eof = false, lost = false;
	long long drain_until = 0;
	sigset_t set;
	char *cmd;
	pid_t pid;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGCHLD, SIG_DFL);
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0)
		tool_fail("signalfd: %s", strerror(errno));

	/* One reader throughout: stdin frames may come in one read with the command. */
	agent_reader_init(&r, AGENT_CMD_MAX);
	cmd = handshake(sock, &r, key, peer);
	pid = start_command(cmd, &in, &fds[0], &fds[1]);
	free(cmd);
	fcntl(sock, F_SETFL, O_NONBLOCK);

	while (!lost) {
		struct signalfd_siginfo info;
		struct pollfd p[5];
		const char *data;
		size_t len;
		int type, timeout = -1;

		/* Frames already in (the first ones may have come with the command). */
		while ((type = agent_reader_next(&r, &data, &len)) != 0) {
			if (type == FRAME_STDIN && !in_eof && in >= 0)
				agent_queue_bytes(&in_q, data, len);
			else if (type == FRAME_STDIN_EOF)
				in_eof = true;
			else if (type < 0)
				lost = true;
		}
		/* EPIPE: nobody reads the command's stdin any more. */
		if (in >= 0 && agent_queue_pending(&in_q) && !agent_queue_flush(&in_q, in))
			close_fd(&in);
		if (in >= 0 && in_eof && !agent_queue_pending(&in_q))
			close_fd(&in);
		if (agent_queue_pending(&q) && !agent_queue_flush(&q, sock))
			lost = true;
		if (lost || (cmd_done && ((fds[0] < 0 && fds[1] < 0) ||
					  agent_now_ms() >= drain_until)))
			break;
		if (cmd_done)
			timeout = (int)(drain_until - agent_now_ms());

		/* Not reading while the command's stdin is backed up (POLLRDHUP
		 * still tells a dropped connection), nor its output while the
		 * socket is. */
		p[0] = (struct pollfd){ .fd = sock, .events = POLLRDHUP |
			(agent_queue_pending(&in_q) < AGENT_QUEUE_MAX ? POLLIN : 0) |
			(agent_queue_pending(&q) ? POLLOUT : 0) };
		p[1] = (struct pollfd){ .fd = agent_queue_pending(&in_q) ? in : -1,
					.events = POLLOUT };
		for (int i = 0; i < 2; i++)
			p[2 + i] = (struct pollfd){
				.fd = agent_queue_pending(&q) < AGENT_QUEUE_MAX ? fds[i] : -1,
				.events = POLLIN };
		p[4] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		if (poll(p, 5, timeout) < 0 && errno != EINTR)
			tool_fail("poll: %s", strerror(errno));

		if (p[0].revents & POLLIN) {
			ssize_t n = agent_reader_fill(&r, sock);

			if (n == 0 || (n < 0 && errno != EAGAIN))
				lost = true;
		} else if (p[0].revents & (POLLERR | POLLHUP | POLLRDHUP)) {
			lost = true;
		}
		for (int i = 0; i < 2; i++) {
			char buf[AGENT_DATA_MAX];
			ssize_t n;

			if (fds[i] < 0 || !(p[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(fds[i], buf, sizeof(buf));
			if (n > 0)
				agent_queue_frame(&q, i ? FRAME_STDERR : FRAME_STDOUT, buf, (size_t)n);
			else if (n == 0 || errno != EAGAIN)
				close_fd(&fds[i]);
		}
		while (read(sig_fd, &info, sizeof(info)) > 0)
			;
		if (!cmd_done) {
			reap(pid, &status, &cmd_done);
			if (cmd_done)
				drain_until = agent_now_ms() + DRAIN_MS;
		}
	}
	if (!lost) {
		long long deadline = agent_now_ms() + 5000;

		queue_exit(&q, status);
		while (agent_queue_pending(&q) && agent_now_ms() < deadline) {
			struct pollfd p = { .fd = sock, .events = POLLOUT };

			if (!agent_queue_flush(&q, sock) || poll(&p, 1, 100) < 0)
				break;
		}
	}
	close(sock);
	close_fd(&in);
	close_fd(&fds[0]);
	close_fd(&fds[1]);
	end_all(pid, &status, &cmd_done);
	exit(0);
}

/* ---- the listener ------------------------------------------------------------------- */

_Noreturn void agent_serve(const char *address, unsigned int port,
			   const unsigned char key[AGENT_KEY_LEN])
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int lfd, one = 1;
	unsigned int active = 0;

	if (inet_pton(AF_INET, address, &sin.sin_addr) != 1)
		tool_fail("'%s' is not an IPv4 address", address);
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 16))
		tool_fail("cannot listen on %s:%u: %s", address, port, strerror(errno));
	tool_warn("serving on %s:%u", address, port);
	for (;;) {
		struct sockaddr_in from;
		socklen_t from_len = sizeof(from);
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		char peer[INET_ADDRSTRLEN + 8];
		int sock;
		pid_t pid;

		while (waitpid(-1, NULL, WNOHANG) > 0)
			active--;
		if (poll(&p, 1, 1000) <= 0)
			continue;
		sock = accept4(lfd, (struct sockaddr *)&from, &from_len, SOCK_CLOEXEC);
		if (sock < 0)
			continue;
		if (active >= MAX_CONNECTIONS) {
			close(sock);
			continue;
		}
		setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		inet_ntop(AF_INET, &from.sin_addr, peer, INET_ADDRSTRLEN);
		snprintf(peer + strlen(peer), 8, ":%u", ntohs(from.sin_port));
		pid = fork();
		if (pid == 0) {
			close(lfd);
			serve_connection(sock, key, peer);
		}
		if (pid > 0)
			active++;
		close(sock);
	}
}
