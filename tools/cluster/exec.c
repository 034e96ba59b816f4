// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * "vhca-agent exec" (agent.h): the host's end of one command in a VM,
 * what Open MPI's rsh launcher runs instead of ssh.  Its stdin goes to
 * the command, the command's stdout and stderr come out as its own, its
 * exit status is the command's (128+S for a death by signal S).
 *
 * When the VM goes away (QEMU killed, the VM powered off) nothing on the
 * wire says so: a dead VM sends no FIN.  Two things notice it: the VM's
 * vhca-vm process, watched through a pidfd (--watch-pid, which
 * vhca-cluster passes; it ends with its VM), and TCP keepalives (a bound
 * of about a minute for the cases the pid cannot tell).  Either way exec
 * says which VM was lost and exits 255, as ssh does for a lost
 * connection, and mpirun reports a failed daemon and ends the job.
 * Killing exec (mpirun does, at the end of a job it aborts) closes the
 * connection, and the server ends everything the command started.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "agent.h"

#define CONNECT_MS 10000
/* Keepalive: idle 10 s, then 6 probes 5 s apart; unacked data 60 s. */
#define KEEPIDLE_S 10
#define KEEPINTVL_S 5
#define KEEPCNT 6
#define USER_TIMEOUT_MS 60000

static int lost(const char *name, const char *why)
{
	fprintf(stderr, "%s: %s: %s\n", tool_name, name, why);
	return AGENT_EXIT_LOST;
}

static void set_opt(int fd, int level, int opt, int value)
{
	setsockopt(fd, level, opt, &value, sizeof(value));
}

/* A connected socket to @host:@port within CONNECT_MS, or -1 (errno). */
static int connect_to(const char *host, unsigned int port)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	char service[16];
	int fd, err = 0;
	socklen_t len = sizeof(err);
	struct pollfd p;

	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &res)) {
		errno = EHOSTUNREACH;
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return -1;
	}
	if (connect(fd, res->ai_addr, res->ai_addrlen) && errno != EINPROGRESS) {
		err = errno;
	} else {
		p = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, CONNECT_MS) != 1)
			err = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
	}
	freeaddrinfo(res);
	if (err) {
		close(fd);
		errno = err;
		return -1;
	}
	set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	set_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, KEEPIDLE_S);
	set_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, KEEPINTVL_S);
	set_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, KEEPCNT);
	set_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, USER_TIMEOUT_MS);
	return fd;
}

/* Proves we hold the key, checks the server does; false if not. */
static bool handshake(int fd, struct agent_reader *r, const unsigned char key[AGENT_KEY_LEN],
		      const char *command, const char **why)
{
	unsigned char auth[AGENT_NONCE_LEN + AGENT_MAC_LEN], mac[AGENT_MAC_LEN];
	long long deadline = agent_now_ms() + AGENT_HANDSHAKE_MS;
	const char *data;
	size_t len;

	*why = "no greeting from the agent (is it vhca-agent serve?)";
	if (agent_read_frame(r, fd, deadline, &data, &len) != FRAME_HELLO ||
	    len != AGENT_NONCE_LEN)
		return false;
	agent_random(auth, AGENT_NONCE_LEN);
	agent_mac(key, "client", (const unsigned char *)data, auth, command,
		  auth + AGENT_NONCE_LEN);
	agent_mac(key, "server", auth, (const unsigned char *)data, NULL, mac);
	*why = "cannot send the command";
	if (!agent_write_frame(fd, FRAME_AUTH, auth, sizeof(auth)) ||
	    !agent_write_frame(fd, FRAME_CMD, command, strlen(command)))
		return false;
	*why = "the agent refused our key (not this VM's?)";
	if (agent_read_frame(r, fd, deadline, &data, &len) != FRAME_OK ||
	    len != AGENT_MAC_LEN)
		return false;
	*why = "the agent's proof is wrong (another VM at that address?)";
	return agent_mac_equal(mac, (const unsigned char *)data);
}

static void write_all(int fd, const char *buf, size_t len, bool *gone)
{
	while (len && !*gone) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			poll(&p, 1, -1);
			continue;
		}
		if (n <= 0) {
			*gone = true;	/* our reader went away: discard */
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* "exit N" or "signal S" into our exit status. */
static int exit_status(const char *data, size_t len)
{
	char text[32];
	int value;

	snprintf(text, sizeof(text), "%.*s", (int)(len < 31 ? len : 31), data);
	if (sscanf(text, "exit %d", &value) == 1 && value >= 0 && value < 256)
		return value;
	if (sscanf(text, "signal %d", &value) == 1 && value > 0 && value < 128)
		return 128 + value;
	return AGENT_EXIT_LOST;
}

int agent_exec(const char *host, unsigned int port, const unsigned char key[AGENT_KEY_LEN],
	       int watch_pid, const char *name, const char *command)
{
	struct agent_queue q = { 0 };
	struct agent_reader r;
	bool stdin_open = fcntl(0, F_GETFD) >= 0, gone[2] = { false, false };
	int fd, pidfd = -1;
	const char *why;
	char text[256];

	signal(SIGPIPE, SIG_IGN);
	if (watch_pid > 0) {
		pidfd = (int)syscall(SYS_pidfd_open, watch_pid, 0);
		if (pidfd < 0) {
			snprintf(text, sizeof(text), "its VM is not running (vhca-vm pid %d: %s)",
				 watch_pid, strerror(errno));
			return lost(name, text);
		}
	}
	fd = connect_to(host, port);
	if (fd < 0) {
		snprintf(text, sizeof(text), "cannot connect to %s:%u: %s", host, port,
			 strerror(errno));
		return lost(name, text);
	}
	agent_reader_init(&r, AGENT_DATA_MAX);
	if (!handshake(fd, &r, key, command, &why))
		return lost(name, why);

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = fd, .events = POLLIN | (agent_queue_pending(&q) ? POLLOUT : 0) },
			{ .fd = stdin_open && agent_queue_pending(&q) < AGENT_QUEUE_MAX ? 0 : -1,
			  .events = POLLIN },
			{ .fd = pidfd, .events = POLLIN },
		};
		const char *data;
		size_t len;
		int type;

		if (poll(p, 3, -1) < 0 && errno != EINTR)
			tool_fail("poll: %s", strerror(errno));
		if (p[2].revents) {
			snprintf(text, sizeof(text), "its VM ended (vhca-vm pid %d exited)",
				 watch_pid);
			return lost(name, text);
		}
		if (p[1].revents) {
			char buf[AGENT_DATA_MAX];
			ssize_t n = read(0, buf, sizeof(buf));

			if (n > 0) {
				agent_queue_frame(&q, FRAME_STDIN, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				agent_queue_frame(&q, FRAME_STDIN_EOF, NULL, 0);
				stdin_open = false;
			}
		}
		if (p[0].revents & POLLIN) {
			ssize_t n = agent_reader_fill(&r, fd);

			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				snprintf(text, sizeof(text), "lost the connection to %s:%u%s%s",
					 host, port, n < 0 ? ": " : "",
					 n < 0 ? strerror(errno) : "");
				return lost(name, text);
			}
		} else if (p[0].revents & (POLLERR | POLLHUP)) {
			return lost(name, "the connection failed");
		}
		while ((type = agent_reader_next(&r, &data, &len)) != 0) {
			if (type == FRAME_STDOUT)
				write_all(1, data, len, &gone[0]);
			else if (type == FRAME_STDERR)
				write_all(2, data, len, &gone[1]);
			else if (type == FRAME_EXIT)
				return exit_status(data, len);
			else if (type < 0)
				return lost(name, "the agent sent a frame too long");
		}
		if (agent_queue_pending(&q) && !agent_queue_flush(&q, fd))
			return lost(name, "lost the connection (sending stdin)");
	}
}
