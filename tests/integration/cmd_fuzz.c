// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Hostile input on the command file.  Writes straight to a device's
 * vhca_cmd (no provider): first each malformed command we know how to
 * build, each of which must fail with its exact errno and change nothing,
 * then a seeded generator of random commands for a bounded time.  The
 * daemon must keep serving and, once we close, hold nothing of ours.
 *
 * usage: cmd_fuzz DEVICE SECONDS SEED
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>

#include "../common.h"
#include "status.h"

TEST_COUNTERS;

static const char *dev_name;
static void *unmapped_page;

static int open_cmd_file(void)
{
	const char *root = getenv("SYSFS_PATH");
	char path[4096], ibdev[64];
	int fd = -1;

	for (int n = 0; n < 256 && fd < 0; n++) {
		FILE *f;

		snprintf(path, sizeof(path),
			 "%s/class/infiniband_verbs/uverbs%d/ibdev", root, n);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%63s", ibdev) == 1 && !strcmp(ibdev, dev_name)) {
			snprintf(path, sizeof(path),
				 "%s/class/infiniband_verbs/uverbs%d/%s", root,
				 n, VHCA_CMD_FILE_NAME);
			fd = open(path, O_RDWR | O_CLOEXEC);
		}
		fclose(f);
	}
	return fd;
}

/* One write; returns 0 or the errno it failed with. */
static int send_cmd(int fd, const void *buf, size_t len)
{
	ssize_t ret = write(fd, buf, len);

	if (ret < 0)
		return errno;
	return (size_t)ret == len ? 0 : EIO;
}

/* A write-ABI command: header, then the core payload in words[]. */
struct legacy_cmd {
	struct ib_uverbs_cmd_hdr hdr;
	uint64_t words[64];
};

#define SET_PAYLOAD(cmd, payload) memcpy((cmd)->words, &(payload), sizeof(payload))

static void frame(struct legacy_cmd *cmd, uint32_t command, size_t in_len,
		  size_t out_len)
{
	cmd->hdr.command = command;
	cmd->hdr.in_words = (uint16_t)((sizeof(cmd->hdr) + in_len) / 4);
	cmd->hdr.out_words = (uint16_t)(out_len / 4);
}

static int make_pipe_pair(struct vhca_fd_pair *pair)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return -1;
	pair->read_fd = fds[0];
	pair->write_fd = fds[1];
	return 0;
}

static int get_context(int fd)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		uint64_t response;	/* struct ib_uverbs_get_context */
		struct vhca_alloc_ucontext_cmd udata;
	} cmd = {};
	struct {
		uint32_t async_fd;	/* struct ib_uverbs_get_context_resp */
		uint32_t num_comp_vectors;
		struct vhca_alloc_ucontext_resp udata;
	} resp = {};
	int ret;

	cmd.hdr.command = IB_USER_VERBS_CMD_GET_CONTEXT;
	cmd.hdr.in_words = sizeof(cmd) / 4;
	cmd.hdr.out_words = sizeof(resp) / 4;
	cmd.response = (uintptr_t)&resp;
	cmd.udata.abi_version = VHCA_UVERBS_ABI_VERSION;
	cmd.udata.num_channels = VHCA_CHANNEL_BATCH;
	if (make_pipe_pair(&cmd.udata.async_event) ||
	    make_pipe_pair(&cmd.udata.service))
		return errno;
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		if (make_pipe_pair(&cmd.udata.channels[i]))
			return errno;
	ret = send_cmd(fd, &cmd, sizeof(cmd));
	/* The device holds its own copies of the write ends now. */
	close(cmd.udata.async_event.write_fd);
	close(cmd.udata.service.write_fd);
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		close(cmd.udata.channels[i].write_fd);
	return ret;
}

static int alloc_pd(int fd, void *resp_ptr, uint32_t *handle)
{
	struct ib_uverbs_alloc_pd_resp resp = {};
	struct legacy_cmd cmd = {};
	int ret;

	struct ib_uverbs_alloc_pd payload = {
		.response = (uintptr_t)(resp_ptr ? resp_ptr : &resp),
	};

	frame(&cmd, IB_USER_VERBS_CMD_ALLOC_PD, sizeof(payload), sizeof(resp));
	SET_PAYLOAD(&cmd, payload);
	ret = send_cmd(fd, &cmd, sizeof(cmd.hdr) + sizeof(payload));
	if (!ret && handle)
		*handle = resp.pd_handle;
	return ret;
}

static int dealloc_pd(int fd, uint32_t handle)
{
	struct legacy_cmd cmd = {};

	struct ib_uverbs_dealloc_pd payload = { .pd_handle = handle };

	frame(&cmd, IB_USER_VERBS_CMD_DEALLOC_PD, sizeof(payload), 0);
	SET_PAYLOAD(&cmd, payload);
	return send_cmd(fd, &cmd, sizeof(cmd.hdr) + sizeof(payload));
}

static int reg_mr(int fd, uint32_t pd, void *addr, size_t len, uint32_t acc)
{
	struct ib_uverbs_reg_mr_resp resp;
	struct legacy_cmd cmd = {};

	struct ib_uverbs_reg_mr payload = {
		.response = (uintptr_t)&resp,
		.start = (uintptr_t)addr,
		.length = len,
		.hca_va = (uintptr_t)addr,
		.pd_handle = pd,
		.access_flags = acc,
	};

	frame(&cmd, IB_USER_VERBS_CMD_REG_MR, sizeof(payload), sizeof(resp));
	SET_PAYLOAD(&cmd, payload);
	return send_cmd(fd, &cmd, sizeof(cmd.hdr) + sizeof(payload));
}

static unsigned int live_pds(void)
{
	struct dev_counts c;

	return read_dev_counts(dev_name, &c) ? ~0u : c.pds;
}

static void malformed_framing(int fd)
{
	struct legacy_cmd cmd = {};
	static char huge[1 << 20];
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_ex_cmd_hdr ex;
		uint64_t payload[4];
	} ex = {};

	/* (A 0-byte write never leaves the kernel's FUSE layer.) */
	CHECK(send_cmd(fd, &cmd, 4) == EINVAL, "write shorter than a header");

	frame(&cmd, IB_USER_VERBS_CMD_ALLOC_PD, sizeof(struct ib_uverbs_alloc_pd), 8);
	CHECK(send_cmd(fd, &cmd, sizeof(cmd.hdr) + 4) == EINVAL,
	      "in_words larger than the write");
	CHECK(send_cmd(fd, &cmd, sizeof(cmd)) == EINVAL,
	      "in_words smaller than the write");

	memcpy(huge, &cmd.hdr, sizeof(cmd.hdr));
	CHECK(send_cmd(fd, huge, sizeof(huge)) != 0, "1 MiB write");

	frame(&cmd, 0x3f, 8, 0);
	CHECK(send_cmd(fd, &cmd, sizeof(cmd.hdr) + 8) == EOPNOTSUPP,
	      "unknown command");
	frame(&cmd, IB_USER_VERBS_CMD_OPEN_XRCD, 16, 0);
	CHECK(send_cmd(fd, &cmd, sizeof(cmd.hdr) + 16) == EOPNOTSUPP,
	      "unsupported command");
	frame(&cmd, IB_USER_VERBS_CMD_ALLOC_PD | 0x100, sizeof(struct ib_uverbs_alloc_pd),
	      8);
	CHECK(send_cmd(fd, &cmd, sizeof(cmd.hdr) + sizeof(struct ib_uverbs_alloc_pd)) ==
		      EINVAL,
	      "reserved command bits set");

	ex.hdr.command = IB_USER_VERBS_CMD_FLAG_EXTENDED |
			 IB_USER_VERBS_EX_CMD_CREATE_FLOW;
	ex.hdr.in_words = sizeof(ex.payload) / 8;
	CHECK(send_cmd(fd, &ex, sizeof(ex)) == EOPNOTSUPP,
	      "unsupported extended command");
	ex.hdr.command = IB_USER_VERBS_CMD_FLAG_EXTENDED |
			 IB_USER_VERBS_EX_CMD_QUERY_DEVICE;
	ex.hdr.in_words = 1000;
	CHECK(send_cmd(fd, &ex, sizeof(ex)) == EINVAL,
	      "extended command with lying size");
	ex.hdr.in_words = sizeof(ex.payload) / 8;
	ex.ex.cmd_hdr_reserved = 1;
	CHECK(send_cmd(fd, &ex, sizeof(ex)) == EINVAL,
	      "extended header reserved field");

	char byte;
	CHECK(read(fd, &byte, 1) < 0, "read of the command file");
}

static void bad_handles_and_pointers(int fd)
{
	unsigned int before = live_pds();
	static char buffer[8192];
	uint32_t pd;

	CHECK(dealloc_pd(fd, 12345) == EINVAL, "bogus PD handle");
	CHECK(dealloc_pd(fd, 0xffffffff) == EINVAL, "PD handle ~0");

	CHECK(alloc_pd(fd, unmapped_page, NULL) == EFAULT,
	      "response into unmapped memory");
	CHECK(alloc_pd(fd, (void *)0xffff800000000000ULL, NULL) == EFAULT,
	      "response at a kernel address");
	CHECK(live_pds() == before, "a failed ALLOC_PD left a PD (%u -> %u)",
	      before, live_pds());

	REQUIRE(alloc_pd(fd, NULL, &pd) == 0, "alloc_pd");
	CHECK(reg_mr(fd, pd, unmapped_page, 4096, 0) == EFAULT,
	      "REG_MR of unmapped memory");
	CHECK(reg_mr(fd, pd, buffer, 0, 0) == EINVAL, "REG_MR of 0 bytes");
	CHECK(reg_mr(fd, pd, buffer, sizeof(buffer), 1u << 30) == EINVAL,
	      "REG_MR with unknown access bits");
	CHECK(reg_mr(fd, pd, (void *)~0x0fffULL, 1u << 20, 0) != 0,
	      "REG_MR wrapping the address space");
	CHECK(reg_mr(fd, pd + 77, buffer, sizeof(buffer), 0) == EINVAL,
	      "REG_MR on a bogus PD");
	CHECK(dealloc_pd(fd, pd) == 0, "dealloc_pd");
	CHECK(dealloc_pd(fd, pd) == EINVAL, "double dealloc_pd");
	CHECK(live_pds() == before, "PD count %u, expected %u", live_pds(),
	      before);
}

/* A PD of another process is not ours to free. */
static void foreign_handles(int fd)
{
	int sync_pipe[2], status;
	uint32_t foreign_pd = 0;
	pid_t child;

	REQUIRE(!pipe(sync_pipe), "pipe");
	child = fork();
	REQUIRE(child >= 0, "fork");
	if (!child) {
		int own = open_cmd_file();
		uint32_t pd;

		if (own < 0 || get_context(own) || alloc_pd(own, NULL, &pd) ||
		    alloc_pd(own, NULL, &pd))
			_exit(1);
		if (write(sync_pipe[1], &pd, sizeof(pd)) != sizeof(pd))
			_exit(1);
		pause();
		_exit(0);
	}
	close(sync_pipe[1]);
	REQUIRE(read(sync_pipe[0], &foreign_pd, sizeof(foreign_pd)) ==
			sizeof(foreign_pd),
		"child did not get a PD");
	CHECK(dealloc_pd(fd, foreign_pd) == EINVAL,
	      "freed another process's PD");
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	close(sync_pipe[0]);
}

static uint64_t xorshift(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

/*
 * Random commands.  Response pointers are steered into a scratch buffer
 * or unmapped memory so the device can never be told to write over this
 * program; the private channel command is left out because it passes fds.
 */
static void random_commands(int fd, unsigned int seconds, uint64_t seed)
{
	static uint64_t scratch[4096];
	uint64_t words[64], state = seed | 1;
	unsigned long sent = 0, accepted = 0;
	time_t end = time(NULL) + seconds;

	while (time(NULL) < end) {
		for (int burst = 0; burst < 16; burst++) {
			struct ib_uverbs_cmd_hdr *hdr = (void *)words;
			uint64_t r = xorshift(&state);
			size_t len = 8 + 8 * (r % 48);

			for (size_t i = 0; i < 64; i++)
				words[i] = xorshift(&state);
			hdr->command = (uint32_t)(r >> 8) % 48;
			if (r & (1u << 20))
				hdr->command |= IB_USER_VERBS_CMD_FLAG_EXTENDED;
			if (r & (1u << 21))
				hdr->in_words = (uint16_t)(len / 4);
			words[1] = (r & (1u << 22)) ?
					   (uint64_t)unmapped_page :
					   (uint64_t)&scratch[r % 2048];
			words[2] = (r & (1u << 23)) ? words[1] : words[2];
			if (!send_cmd(fd, words, len))
				accepted++;
			sent++;
		}
	}
	printf("# %lu random commands, %lu accepted\n", sent, accepted);
	CHECK(sent > 0, "no random command sent");
}

int main(int argc, char **argv)
{
	struct dev_counts counts;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s DEVICE SECONDS SEED\n", argv[0]);
		return 2;
	}
	dev_name = argv[1];
	signal(SIGPIPE, SIG_IGN);
	unmapped_page = mmap(NULL, 4096, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(unmapped_page != MAP_FAILED, "mmap");
	munmap(unmapped_page, 4096);

	fd = open_cmd_file();
	REQUIRE(fd >= 0, "open command file of %s: %s", dev_name,
		strerror(errno));
	CHECK(alloc_pd(fd, NULL, NULL) == EINVAL,
	      "command before GET_CONTEXT");
	REQUIRE(get_context(fd) == 0, "GET_CONTEXT");
	CHECK(get_context(fd) == EINVAL, "second GET_CONTEXT");

	malformed_framing(fd);
	bad_handles_and_pointers(fd);
	foreign_handles(fd);
	random_commands(fd, (unsigned int)atoi(argv[2]),
			strtoull(argv[3], NULL, 0));

	/* Still serving: a well-formed command works after the storm. */
	uint32_t pd;
	CHECK(alloc_pd(fd, NULL, &pd) == 0, "ALLOC_PD after fuzzing");
	close(fd);

	/* Release is asynchronous: give the daemon a moment. */
	for (int i = 0; i < 100; i++) {
		if (!read_dev_counts(dev_name, &counts) && !counts.contexts)
			break;
		usleep(50000);
	}
	REQUIRE(!read_dev_counts(dev_name, &counts), "status view");
	CHECK(counts.contexts == 0 && counts.pds == 0 && counts.mrs == 0 &&
		      counts.comp_channels == 0,
	      "left behind: contexts %u pds %u mrs %u channels %u",
	      counts.contexts, counts.pds, counts.mrs, counts.comp_channels);
	return test_report();
}
