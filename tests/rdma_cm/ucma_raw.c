// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A hostile (or just raw) client of vhcad's rdma_cm file, without
 * librdmacm (test_rdma_cm.sh):
 *
 *   ucma_raw hostile FILE        bad commands, each must get the kernel's
 *                                errno; ids of another file and another
 *                                process; exhausting ids; GET_EVENT's
 *                                EAGAIN and EINTR
 *   ucma_raw removal FILE ADDR   an id bound to the VF holding ADDR, then
 *                                the next event (DEVICE_REMOVAL expected)
 *   ucma_raw addrchange FILE ADDR  the same, ADDR_CHANGE expected
 *   ucma_raw mcast FILE ADDR     a UDP id bound to ADDR joins groups until
 *                                refused (a share, ENOMEM); another file
 *                                may not LEAVE its joins; LEAVE of
 *                                nothing; DESTROY_ID with joins held
 *   ucma_raw files FILE          opens files, one GET_EVENT each (which
 *                                binds it), until vhcad refuses one: a
 *                                domain's share (1024, EMFILE); then
 *                                holds them until SIGTERM
 *   ucma_raw fuzz FILE N SEED    N random commands (valid numbers, random
 *                                sizes and bodies, response pointers into
 *                                a scratch buffer, nothing or random
 *                                places); only errnos may come back
 *
 * Prints "ok ..." per check; exit 1 at the first that fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <rdma/rdma_user_cm.h>

static int failures;

static void check(const char *what, int got, int want)
{
	if (got == want) {
		printf("ok %s\n", what);
	} else {
		printf("FAIL %s: errno %d (%s), want %d (%s)\n", what, got,
		       strerror(got), want, strerror(want));
		failures++;
	}
	fflush(stdout);
}

/* write() of hdr + body; 0 or errno. */
static int cmd(int fd, uint32_t no, const void *body, uint16_t in,
	       uint16_t out)
{
	uint8_t buf[512];
	struct rdma_ucm_cmd_hdr hdr = { .cmd = no, .in = in, .out = out };

	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), body, in);
	return write(fd, buf, sizeof(hdr) + in) == (ssize_t)(sizeof(hdr) + in) ?
		       0 : errno;
}

static int create_id(int fd, uint32_t *id, uint64_t response)
{
	struct rdma_ucm_create_id c = {
		.uid = 1, .response = response ? response : (uintptr_t)id,
		.ps = RDMA_PS_TCP,
	};

	return cmd(fd, RDMA_USER_CM_CMD_CREATE_ID, &c, sizeof(c),
		   sizeof(struct rdma_ucm_create_id_resp));
}

static int destroy_id(int fd, uint32_t id)
{
	struct rdma_ucm_destroy_id_resp r;
	struct rdma_ucm_destroy_id d = { .response = (uintptr_t)&r, .id = id };

	return cmd(fd, RDMA_USER_CM_CMD_DESTROY_ID, &d, sizeof(d), sizeof(r));
}

static int get_event(int fd, struct rdma_ucm_event_resp *r)
{
	struct rdma_ucm_get_event g = { .response = (uintptr_t)r };

	return cmd(fd, RDMA_USER_CM_CMD_GET_EVENT, &g, sizeof(g), sizeof(*r));
}

/* Many MIGRATE_IDs at once: none may hold up the daemon's workers. */
struct mig_arg {
	int to, from_fd;
	uint32_t id;
	int failures;
};

static void *migrate_loop(void *p)
{
	struct mig_arg *a = p;

	for (int i = 0; i < 20; i++) {
		struct rdma_ucm_migrate_resp r;
		struct rdma_ucm_migrate_id m = {
			.response = (uintptr_t)&r, .id = a->id,
			.fd = (uint32_t)(i % 2 ? a->to : a->from_fd),
		};
		int err = cmd(i % 2 ? a->from_fd : a->to,
			      RDMA_USER_CM_CMD_MIGRATE_ID, &m, sizeof(m),
			      sizeof(r));

		/* The id is wherever the last migration left it. */
		if (err && err != EINVAL)
			a->failures++;
	}
	return NULL;
}

static int migrate_storm(int fd, int fd2)
{
	struct mig_arg args[32];
	pthread_t t[32];
	uint32_t id;
	int bad = 0;

	if (create_id(fd2, &id, 0))
		return 1;
	for (int i = 0; i < 32; i++) {
		args[i] = (struct mig_arg){ .to = fd, .from_fd = fd2, .id = id };
		pthread_create(&t[i], NULL, migrate_loop, &args[i]);
	}
	for (int i = 0; i < 32; i++) {
		pthread_join(t[i], NULL);
		bad += args[i].failures;
	}
	/* It is in one of the two: destroyed there, nowhere else. */
	if (destroy_id(fd, id) && destroy_id(fd2, id))
		bad++;
	return bad;
}

/* Interrupts a blocked call (SIGALRM) or a pause() (SIGTERM), no more. */
static void on_signal(int sig)
{
	(void)sig;
}

static int hostile(const char *path)
{
	int fd = open(path, O_RDWR), fd2 = open(path, O_RDWR), n, err;
	struct rdma_ucm_create_id c = { .ps = RDMA_PS_TCP };
	struct rdma_ucm_event_resp ev;
	uint32_t id = 0, other = 0;
	struct sigaction sa = { .sa_handler = on_signal };
	char small[4] = { 0 };
	pid_t child;

	if (fd < 0 || fd2 < 0)
		return perror(path), 1;
	check("short write", write(fd, small, 4) < 0 ? errno : 0, EINVAL);
	check("unknown command", cmd(fd, 99, &c, sizeof(c), 4), EINVAL);
	{
		struct rdma_ucm_cmd_hdr h = { .cmd = 0, .in = 200, .out = 4 };

		check("in longer than the write",
		      write(fd, &h, sizeof(h)) < 0 ? errno : 0, EINVAL);
	}
	check("short body", cmd(fd, RDMA_USER_CM_CMD_CREATE_ID, &c, 8, 4),
	      EINVAL);
	check("GET_OPTION", cmd(fd, RDMA_USER_CM_CMD_GET_OPTION, &c, 24, 0),
	      ENOSYS);
	c.response = (uintptr_t)&id;
	check("no room for the response",
	      cmd(fd, RDMA_USER_CM_CMD_CREATE_ID, &c, sizeof(c), 0), ENOSPC);
	c.ps = 0x9999;
	check("bad port space",
	      cmd(fd, RDMA_USER_CM_CMD_CREATE_ID, &c, sizeof(c), 4), EINVAL);
	check("response into nothing", create_id(fd, &id, 16), EFAULT);
	check("unknown id", destroy_id(fd, 0x7ffffff0), ENOENT);
	check("create", create_id(fd2, &other, 0), 0);
	check("another file's id", destroy_id(fd, other), EINVAL);
	{
		struct rdma_ucm_bind b = { .id = other, .addr_size = 3 };

		b.addr.ss_family = AF_INET;
		check("bind size", cmd(fd2, RDMA_USER_CM_CMD_BIND, &b,
				       sizeof(b), 0), EINVAL);
	}
	{
		struct rdma_ucm_set_option o = {
			.optval = 16, .id = other, .level = RDMA_OPTION_ID,
			.optname = RDMA_OPTION_ID_TOS, .optlen = 1,
		};

		check("option from nothing",
		      cmd(fd2, RDMA_USER_CM_CMD_SET_OPTION, &o, sizeof(o), 0),
		      EFAULT);
	}
	{
		struct rdma_ucm_reject r = { .id = other, .reason = 5 };

		check("reject reason", cmd(fd2, RDMA_USER_CM_CMD_REJECT, &r,
					   sizeof(r), 0), EINVAL);
	}
	/* Another process may not use our channel (it is ours, as a file). */
	child = fork();
	if (child == 0)
		_exit(destroy_id(fd2, other) == EACCES ? 0 : 1);
	waitpid(child, &n, 0);
	check("another process", WIFEXITED(n) && !WEXITSTATUS(n) ? 0 : 1, 0);
	check("still ours", destroy_id(fd2, other), 0);
	alarm(30);	/* a stuck daemon fails the test instead of hanging it */
	check("640 MIGRATE_IDs from 32 threads at once", migrate_storm(fd, fd2), 0);
	alarm(0);

	fcntl(fd, F_SETFL, O_NONBLOCK);
	check("no event, nonblocking", get_event(fd, &ev), EAGAIN);
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		check("poll: nothing", poll(&p, 1, 0), 0);
	}
	fcntl(fd, F_SETFL, 0);
	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	check("blocking GET_EVENT interrupted", get_event(fd, &ev), EINTR);

	/* A share of ids, not the daemon's memory. */
	for (n = 0; n < 100000; n++) {
		err = create_id(fd, &id, 0);
		if (err)
			break;
	}
	printf("created %d ids\n", n);
	check("ids run out", err, ENOMEM);
	check("bounded", n <= 4096 ? 0 : 1, 0);
	close(fd);
	close(fd2);
	return failures ? 1 : 0;
}

static int removal(const char *path, const char *addr, uint32_t want)
{
	int fd = open(path, O_RDWR);
	struct rdma_ucm_bind b = { .addr_size = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&b.addr;
	struct rdma_ucm_event_resp ev;
	uint32_t id;

	if (fd < 0)
		return perror(path), 1;
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
		return 2;
	check("create", create_id(fd, &id, 0), 0);
	b.id = id;
	check("bind", cmd(fd, RDMA_USER_CM_CMD_BIND, &b, sizeof(b), 0), 0);
	printf("bound\n");
	fflush(stdout);
	check("event", get_event(fd, &ev), 0);
	printf("event %u id %u\n", ev.event, ev.id);
	check(want == 11 ? "DEVICE_REMOVAL" : "ADDR_CHANGE",
	      ev.event == want && ev.id == id ? 0 : 1, 0);
	check("destroy", destroy_id(fd, id), 0);
	return failures ? 1 : 0;
}

/* A random number below @n (xorshift: the same run for the same seed). */
static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static int fuzz(const char *path, unsigned long n, unsigned long seed)
{
	static uint8_t scratch[4096];
	int fd = open(path, O_RDWR | O_NONBLOCK);
	unsigned long ok = 0, refused = 0;
	uint32_t ids[64] = { 0 };

	if (fd < 0)
		return perror(path), 1;
	rng = seed * 2654435761u + 1;
	for (unsigned long i = 0; i < n; i++) {
		uint8_t body[400];
		uint32_t no = rnd(24);
		uint16_t in = (uint16_t)rnd(sizeof(body)), out = (uint16_t)rnd(400);
		uint64_t ptr;

		for (size_t k = 0; k < sizeof(body); k++)
			body[k] = (uint8_t)rnd(256);
		switch (rnd(3)) {
		case 0: ptr = (uintptr_t)scratch; break;
		case 1: ptr = 16; break;
		default: ptr = ((uint64_t)rnd(1u << 31) << 16); break;
		}
		/*
		 * Mostly plausible: the response pointer where the commands
		 * keep it, a known id where one of them keeps it.
		 */
		static const size_t id_at[] = { 0, 8, 264, 272 };
		size_t at = id_at[rnd(4)];

		if (in >= 8 && rnd(4))
			memcpy(body, &ptr, sizeof(ptr));
		if (in >= at + 4 && rnd(2))
			memcpy(body + at, &ids[rnd(64)], 4);
		if (no == RDMA_USER_CM_CMD_CREATE_ID && in >= 24 && rnd(4)) {
			memcpy(body + 8, &ptr, sizeof(ptr));
			body[16] = 0x06;
			body[17] = 0x01;
		}
		if (no == RDMA_USER_CM_CMD_MIGRATE_ID)
			continue;	/* its fd would be any of ours */
		if (cmd(fd, no, body, in, out)) {
			refused++;
			continue;
		}
		ok++;
		if (no == RDMA_USER_CM_CMD_CREATE_ID && ptr == (uintptr_t)scratch)
			memcpy(&ids[rnd(64)], scratch, 4);
	}
	printf("fuzz: %lu commands, %lu accepted, %lu refused\n", n, ok, refused);
	close(fd);
	return 0;
}

/* JOIN_MCAST of @id to 224.1.@n/256.@n%256: the join's id in *@mc. */
static int join(int fd, uint32_t id, unsigned int n, uint32_t *mc)
{
	struct rdma_ucm_join_mcast j = {
		.response = (uintptr_t)mc, .uid = n, .id = id,
		.addr_size = sizeof(struct sockaddr_in),
		.join_flags = RDMA_MC_JOIN_FLAG_FULLMEMBER,
	};
	struct sockaddr_in *sin = (struct sockaddr_in *)&j.addr;

	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0xe0010000u | (n & 0xffff));
	return cmd(fd, RDMA_USER_CM_CMD_JOIN_MCAST, &j, sizeof(j), 4);
}

static int leave(int fd, uint32_t mc)
{
	struct rdma_ucm_destroy_id_resp r;
	struct rdma_ucm_destroy_id l = { .response = (uintptr_t)&r, .id = mc };

	return cmd(fd, RDMA_USER_CM_CMD_LEAVE_MCAST, &l, sizeof(l), sizeof(r));
}

static int mcast(const char *path, const char *addr)
{
	int fd = open(path, O_RDWR), fd2 = open(path, O_RDWR), err = 0;
	struct rdma_ucm_create_id c = { .ps = RDMA_PS_UDP };
	struct rdma_ucm_bind b = { .addr_size = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&b.addr;
	uint32_t id = 0, mc = 0, first = 0;
	unsigned int n;

	if (fd < 0 || fd2 < 0)
		return perror(path), 1;
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
		return 2;
	c.response = (uintptr_t)&id;
	check("a UDP id", cmd(fd, RDMA_USER_CM_CMD_CREATE_ID, &c, sizeof(c), 4),
	      0);
	b.id = id;
	check("bound", cmd(fd, RDMA_USER_CM_CMD_BIND, &b, sizeof(b), 0), 0);
	for (n = 0; n < 4096; n++) {
		err = join(fd, id, n, &mc);
		if (err)
			break;
		if (!n)
			first = mc;
	}
	printf("joined %u groups\n", n);
	check("joins run out", err, ENOMEM);
	check("a share of 256 joins", n == 256 ? 0 : 1, 0);
	check("another file's LEAVE of our join", leave(fd2, first), EINVAL);
	check("LEAVE of a join never made", leave(fd, 0x7ffffff0), ENOENT);
	check("our LEAVE", leave(fd, first), 0);
	check("twice", leave(fd, first), ENOENT);
	check("a join again, in the room it left", join(fd, id, 4095, &mc), 0);
	check("DESTROY_ID with 256 joins held", destroy_id(fd, id), 0);
	close(fd);
	close(fd2);
	return failures ? 1 : 0;
}

/* Nonblocking GET_EVENT on a fresh file: EAGAIN once it is bound. */
static int first_write(int fd)
{
	struct rdma_ucm_get_event g = { 0 };
	struct rdma_ucm_event_resp ev;

	g.response = (uintptr_t)&ev;
	return cmd(fd, RDMA_USER_CM_CMD_GET_EVENT, &g, sizeof(g), sizeof(ev));
}

static int files(const char *path)
{
	struct rlimit rl;
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned int n = 0;
	int fd, err = 0, *fds;

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	fds = calloc(4096, sizeof(*fds));
	if (!fds)
		return 1;
	while (n < 4096) {
		fd = open(path, O_RDWR | O_NONBLOCK);
		if (fd < 0) {
			err = errno;
			break;
		}
		fds[n] = fd;
		err = first_write(fd);
		if (err != EAGAIN) {
			close(fd);
			break;
		}
		n++;
	}
	printf("bound %u files\n", n);
	check("vhcad refuses a file past the share", err, EMFILE);
	check("a share of 1024 files", n == 1024 ? 0 : 1, 0);
	close(fds[--n]);
	fd = open(path, O_RDWR | O_NONBLOCK);
	check("one closed, one more binds", fd < 0 ? errno : first_write(fd), EAGAIN);
	fds[n++] = fd;
	printf("holding\n");
	fflush(stdout);
	sigaction(SIGTERM, &sa, NULL);
	pause();
	while (n)
		close(fds[--n]);
	free(fds);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "files"))
		return files(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "fuzz"))
		return fuzz(argv[2], strtoul(argv[3], NULL, 0),
			    strtoul(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "mcast"))
		return mcast(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "hostile"))
		return hostile(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "removal"))
		return removal(argv[2], argv[3], 11);
	if (argc == 4 && !strcmp(argv[1], "addrchange"))
		return removal(argv[2], argv[3], 14);
	fprintf(stderr, "usage: ucma_raw hostile FILE | removal FILE ADDR\n");
	return 2;
}
