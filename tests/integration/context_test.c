// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Opens every vhca device through unmodified libibverbs and exercises the
 * control path: PD, 1000 MRs of random sizes, completion channels (more
 * than one pool batch, so the provider's refill path runs) and the async
 * event fd, plus the errors a user can provoke through the verbs API.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "../common.h"

TEST_COUNTERS;

#define NUM_MRS 1000
#define NUM_CHANNELS 40
#define ARENA_SIZE (8u << 20)

static void test_mrs(struct ibv_pd *pd, unsigned char *arena)
{
	static struct ibv_mr *mrs[NUM_MRS];
	unsigned int failures = 0, duplicates = 0;

	for (int i = 0; i < NUM_MRS; i++) {
		size_t len = 1 + (size_t)rand() % (1u << 20);
		size_t off = (size_t)rand() % (ARENA_SIZE - len);

		mrs[i] = ibv_reg_mr(pd, arena + off, len,
				    IBV_ACCESS_LOCAL_WRITE |
				    IBV_ACCESS_REMOTE_WRITE |
				    IBV_ACCESS_REMOTE_READ);
		if (!mrs[i]) {
			failures++;
			continue;
		}
		if (mrs[i]->addr != arena + off || mrs[i]->length != len)
			failures++;
	}
	CHECK(failures == 0, "%u of %d registrations failed", failures,
	      NUM_MRS);

	for (int i = 0; i < NUM_MRS; i++)
		for (int j = i + 1; j < NUM_MRS; j++)
			if (mrs[i] && mrs[j] &&
			    (mrs[i]->lkey == mrs[j]->lkey ||
			     mrs[i]->rkey == mrs[j]->rkey))
				duplicates++;
	CHECK(duplicates == 0, "%u duplicate keys among live MRs", duplicates);

	failures = 0;
	for (int i = 0; i < NUM_MRS; i++)
		if (mrs[i] && ibv_dereg_mr(mrs[i]))
			failures++;
	CHECK(failures == 0, "%u deregistrations failed", failures);
}

static void test_mr_errors(struct ibv_pd *pd)
{
	long page = sysconf(_SC_PAGESIZE);
	void *hole, *ro;
	struct ibv_mr *mr;

	hole = mmap(NULL, page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(hole != MAP_FAILED, "mmap");
	munmap(hole, page);
	errno = 0;
	mr = ibv_reg_mr(pd, hole, page, IBV_ACCESS_LOCAL_WRITE);
	CHECK(!mr && errno == EFAULT, "unmapped memory: mr %p errno %d", mr,
	      errno);

	ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(ro != MAP_FAILED, "mmap");
	errno = 0;
	mr = ibv_reg_mr(pd, ro, page, IBV_ACCESS_LOCAL_WRITE);
	CHECK(!mr && errno == EFAULT, "writable MR on read-only memory: %d",
	      errno);
	mr = ibv_reg_mr(pd, ro, page, IBV_ACCESS_REMOTE_READ);
	CHECK(mr != NULL, "read-only MR on read-only memory: %d", errno);
	if (mr)
		ibv_dereg_mr(mr);
	munmap(ro, page);

	/* IB spec: remote write needs local write. */
	static char buf[64];
	errno = 0;
	mr = ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_REMOTE_WRITE);
	CHECK(!mr && errno == EINVAL, "REMOTE_WRITE without LOCAL_WRITE: %d",
	      errno);
}

static void test_channels(struct ibv_context *ctx)
{
	unsigned int failures = 0;

	for (int i = 0; i < NUM_CHANNELS; i++) {
		struct ibv_comp_channel *ch = ibv_create_comp_channel(ctx);
		struct stat st;

		if (!ch) {
			failures++;
			fprintf(stderr, "create_comp_channel %d: %s\n", i,
				strerror(errno));
			continue;
		}
		if (fstat(ch->fd, &st) || !S_ISFIFO(st.st_mode))
			failures++;
		if (ibv_destroy_comp_channel(ch))
			failures++;
	}
	CHECK(failures == 0, "%u completion channel failures", failures);
}

static void test_async_fd(struct ibv_context *ctx)
{
	struct ibv_async_event event;
	int flags = fcntl(ctx->async_fd, F_GETFL);
	char byte;

	REQUIRE(flags >= 0, "async_fd %d is not an fd", ctx->async_fd);
	REQUIRE(!fcntl(ctx->async_fd, F_SETFL, flags | O_NONBLOCK), "fcntl");
	errno = 0;
	CHECK(read(ctx->async_fd, &byte, 1) < 0 && errno == EAGAIN,
	      "read of idle async fd: errno %d", errno);
	errno = 0;
	CHECK(ibv_get_async_event(ctx, &event) && errno == EAGAIN,
	      "ibv_get_async_event on idle device: errno %d", errno);
}

static void test_device(struct ibv_device *device, unsigned char *arena)
{
	struct ibv_device_attr dev_attr;
	struct ibv_port_attr port_attr;
	struct ibv_context *ctx;
	struct ibv_pd *pd, *pd2;
	struct ibv_mr *mr;

	printf("# %s\n", ibv_get_device_name(device));
	ctx = ibv_open_device(device);
	REQUIRE(ctx, "open %s: %s", ibv_get_device_name(device),
		strerror(errno));
	CHECK(!ibv_query_device(ctx, &dev_attr), "query_device");
	CHECK(dev_attr.phys_port_cnt == 1, "ports %u", dev_attr.phys_port_cnt);
	CHECK(dev_attr.node_guid == ibv_get_device_guid(device),
	      "node GUID of query_device and sysfs differ");
	CHECK(!ibv_query_port(ctx, 1, &port_attr), "query_port");
	CHECK(port_attr.state == IBV_PORT_ACTIVE, "state %d", port_attr.state);
	errno = 0;
	CHECK(ibv_query_port(ctx, 2, &port_attr) != 0, "port 2 exists");

	pd = ibv_alloc_pd(ctx);
	REQUIRE(pd, "alloc_pd: %s", strerror(errno));
	pd2 = ibv_alloc_pd(ctx);
	CHECK(pd2 && pd2->handle != pd->handle, "second PD");

	test_mrs(pd, arena);
	test_mr_errors(pd);
	test_channels(ctx);
	test_async_fd(ctx);

	mr = ibv_reg_mr(pd, arena, 4096, IBV_ACCESS_LOCAL_WRITE);
	REQUIRE(mr, "reg_mr");
	CHECK(ibv_dealloc_pd(pd) == EBUSY, "dealloc of a PD with an MR");
	CHECK(!ibv_dereg_mr(mr), "dereg_mr");
	CHECK(!ibv_dealloc_pd(pd), "dealloc_pd");
	if (pd2)
		CHECK(!ibv_dealloc_pd(pd2), "dealloc second PD");
	CHECK(!ibv_close_device(ctx), "close_device");
}

int main(int argc, char **argv)
{
	struct ibv_device **list;
	unsigned char *arena;
	int num, tested = 0;

	srand(argc > 1 ? (unsigned int)atoi(argv[1]) : 1);
	arena = malloc(ARENA_SIZE);
	REQUIRE(arena, "malloc");
	memset(arena, 0xa5, ARENA_SIZE);

	list = ibv_get_device_list(&num);
	REQUIRE(list, "ibv_get_device_list: %s", strerror(errno));
	for (int i = 0; i < num; i++) {
		if (strncmp(ibv_get_device_name(list[i]), "vhca", 4))
			continue;
		test_device(list[i], arena);
		tested++;
	}
	CHECK(tested >= 2, "only %d vhca devices found", tested);
	ibv_free_device_list(list);
	free(arena);
	return test_report();
}
