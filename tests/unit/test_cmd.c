// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The uverbs command path driven in-process: vhca_cmd_open/write/release
 * against a device built here, with this process as the guest (response
 * pointers are our memory, fds our pipes).  Every command's happy path,
 * every malformed input, and exact resource counts after release.
 */
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

#include "../common.h"
#include "driver/channel.h"
#include "driver/cmd.h"
#include "driver/context.h"
#include "device/mr.h"
#include "device/pf.h"

TEST_COUNTERS;

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static struct vhca_pf pf;
static struct vhca_dev *dev;
static long page;
static void *unmapped;	/* a page-sized hole in our address space */

/* Device and plumbing */

static void setup_device(void)
{
	pthread_rwlock_init(&pf.lock, NULL);
	dev = &pf.dev;
	dev->pf = &pf;
	snprintf(dev->name, sizeof(dev->name), "vhca0");
	dev->node_guid = 0x0200123456780001ULL;
	dev->port_guid = 0x0200123456788001ULL;
	dev->sys_image_guid = 0x0200123456780000ULL;
	dev->port = (struct vhca_port){
		.state = IBV_PORT_ACTIVE,
		.phys_state = 5,
		.active_mtu = IBV_MTU_4096,
		.active_width = 2,
		.active_speed = 32,
		.lid = 7,
		.sm_lid = 1,
		.cap_flags = IBV_PORT_SYS_IMAGE_GUID_SUP,
	};
	dev->port.pkeys[0] = 0xffff;
	vhca_budget_init();
	vhca_quota_share(1, &dev->quota);
	REQUIRE(vhca_dev_open_port(dev, &vhca_ucontext_sink) == 0, "port");
}

static unsigned int open_fds(void)
{
	unsigned int n = 0;
	DIR *d = opendir("/proc/self/fd");

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool stats_are(unsigned int contexts, unsigned int pds,
		      unsigned int mrs, unsigned int channels)
{
	return atomic_load(&dev->stats.contexts) == contexts &&
	       atomic_load(&dev->stats.pds) == pds &&
	       atomic_load(&dev->stats.mrs) == mrs &&
	       atomic_load(&dev->stats.comp_channels) == channels;
}

#define STATS_FMT "contexts %u pds %u mrs %u channels %u"
#define STATS_ARGS                                                            \
	atomic_load(&dev->stats.contexts), atomic_load(&dev->stats.pds),      \
		atomic_load(&dev->stats.mrs),                                 \
		atomic_load(&dev->stats.comp_channels)

/* 0 or the positive errno, like write(2) on the command file. */
static int submit_as(struct vhca_ucontext *u, pid_t tid, const void *buf,
		     size_t len)
{
	ssize_t ret = vhca_cmd_write(u, tid, buf, len);

	if (ret < 0)
		return (int)-ret;
	return ret == (ssize_t)len ? 0 : EIO;
}

static int submit(struct vhca_ucontext *u, const void *buf, size_t len)
{
	return submit_as(u, gettid(), buf, len);
}

/* A legacy command: header, core payload, provider data. */
struct cmd_buf {
	struct ib_uverbs_cmd_hdr hdr;
	uint64_t words[256];
};

static size_t frame(struct cmd_buf *c, uint32_t command, const void *core,
		    size_t core_len, const void *udata, size_t udata_len,
		    size_t out_len)
{
	size_t len = sizeof(c->hdr) + core_len + udata_len;

	memset(c, 0, sizeof(*c));
	memcpy(c->words, core, core_len);
	if (udata_len)
		memcpy((uint8_t *)c->words + core_len, udata, udata_len);
	c->hdr.command = command;
	c->hdr.in_words = (uint16_t)(len / 4);
	c->hdr.out_words = (uint16_t)(out_len / 4);
	return len;
}

static int legacy(struct vhca_ucontext *u, uint32_t command, const void *core,
		  size_t core_len, size_t out_len)
{
	struct cmd_buf c;
	size_t len = frame(&c, command, core, core_len, NULL, 0, out_len);

	return submit(u, &c, len);
}

/* An extended command. */
struct ex_buf {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_ex_cmd_hdr ex;
	uint64_t words[64];
};

static size_t frame_ex(struct ex_buf *c, uint32_t command, size_t in_len,
		       void *resp, size_t out_len)
{
	memset(c, 0, sizeof(*c));
	c->hdr.command = IB_USER_VERBS_CMD_FLAG_EXTENDED | command;
	c->hdr.in_words = (uint16_t)(in_len / 8);
	c->hdr.out_words = (uint16_t)(out_len / 8);
	c->ex.response = (uintptr_t)resp;
	return sizeof(c->hdr) + sizeof(c->ex) + in_len;
}

/* The provider's side of GET_CONTEXT: pipes made as it makes them. */
static int try_open_pair(struct vhca_fd_pair *pair)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return -1;
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	pair->read_fd = fds[0];
	pair->write_fd = fds[1];
	return 0;
}

static void open_pair(struct vhca_fd_pair *pair)
{
	int ret = try_open_pair(pair);

	REQUIRE(ret == 0, "pipe2: %s", strerror(errno));
}

static void close_pair(struct vhca_fd_pair *pair)
{
	if (pair->read_fd >= 0)
		close(pair->read_fd);
	if (pair->write_fd >= 0)
		close(pair->write_fd);
	pair->read_fd = pair->write_fd = -1;
}

static void open_guest_fds(struct vhca_alloc_ucontext_cmd *u,
			   unsigned int num_channels)
{
	memset(u, 0, sizeof(*u));
	u->abi_version = VHCA_UVERBS_ABI_VERSION;
	u->num_channels = num_channels;
	open_pair(&u->async_event);
	open_pair(&u->service);
	for (unsigned int i = 0; i < VHCA_CHANNEL_BATCH; i++) {
		u->channels[i] = (struct vhca_fd_pair){ -1, -1 };
		if (i < num_channels)
			open_pair(&u->channels[i]);
	}
}

/* What the provider does after GET_CONTEXT: the device has its copies. */
static void close_guest_writers(struct vhca_alloc_ucontext_cmd *u)
{
	close(u->async_event.write_fd);
	u->async_event.write_fd = -1;
	for (unsigned int i = 0; i < u->num_channels; i++) {
		close(u->channels[i].write_fd);
		u->channels[i].write_fd = -1;
	}
}

static void close_guest_fds(struct vhca_alloc_ucontext_cmd *u)
{
	close_pair(&u->async_event);
	close_pair(&u->service);
	for (unsigned int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		close_pair(&u->channels[i]);
}

/* ib_uverbs_get_context_resp ends in a flexible array: spelt out here. */
struct get_context_resp {
	struct {
		uint32_t async_fd;
		uint32_t num_comp_vectors;
	} core;
	struct vhca_alloc_ucontext_resp udata;
};
_Static_assert(sizeof(((struct get_context_resp *)0)->core) ==
		       sizeof(struct ib_uverbs_get_context_resp),
	       "GET_CONTEXT core response layout");

static int get_context_as(struct vhca_ucontext *u, pid_t tid,
			  const struct vhca_alloc_ucontext_cmd *udata,
			  size_t udata_len, void *resp)
{
	struct ib_uverbs_get_context core = { .response = (uintptr_t)resp };
	struct cmd_buf c;
	size_t len;

	len = frame(&c, IB_USER_VERBS_CMD_GET_CONTEXT, &core, sizeof(core),
		    udata, udata_len, sizeof(struct get_context_resp));
	return submit_as(u, tid, &c, len);
}

static int get_context(struct vhca_ucontext *u,
		       const struct vhca_alloc_ucontext_cmd *udata,
		       struct get_context_resp *resp)
{
	return get_context_as(u, gettid(), udata, sizeof(*udata), resp);
}

/* A live context with a full channel pool, writers already dropped. */
static struct vhca_ucontext *open_context(struct vhca_alloc_ucontext_cmd *g)
{
	struct vhca_ucontext *u = vhca_cmd_open(dev);
	struct get_context_resp resp;
	int ret;

	REQUIRE(u, "vhca_cmd_open");
	open_guest_fds(g, VHCA_CHANNEL_BATCH);
	ret = get_context(u, g, &resp);
	REQUIRE(ret == 0, "GET_CONTEXT: %s", strerror(ret));
	close_guest_writers(g);
	return u;
}

static int alloc_pd_at(struct vhca_ucontext *u, void *resp_ptr,
		       uint32_t *handle)
{
	struct ib_uverbs_alloc_pd_resp resp = { .pd_handle = ~0u };
	struct ib_uverbs_alloc_pd core = {
		.response = (uintptr_t)(resp_ptr ? resp_ptr : &resp),
	};
	int ret;

	ret = legacy(u, IB_USER_VERBS_CMD_ALLOC_PD, &core, sizeof(core),
		     sizeof(resp));
	if (!ret && handle)
		*handle = resp.pd_handle;
	return ret;
}

static int alloc_pd(struct vhca_ucontext *u, uint32_t *handle)
{
	return alloc_pd_at(u, NULL, handle);
}

static int dealloc_pd(struct vhca_ucontext *u, uint32_t handle)
{
	struct ib_uverbs_dealloc_pd core = { .pd_handle = handle };

	return legacy(u, IB_USER_VERBS_CMD_DEALLOC_PD, &core, sizeof(core), 0);
}

static int reg_mr_full(struct vhca_ucontext *u, uint32_t pd, const void *addr,
		       uint64_t len, uint64_t hca_va, uint32_t access,
		       void *resp_ptr, struct ib_uverbs_reg_mr_resp *out)
{
	struct ib_uverbs_reg_mr_resp resp = { 0 };
	struct ib_uverbs_reg_mr core = {
		.response = (uintptr_t)(resp_ptr ? resp_ptr : &resp),
		.start = (uintptr_t)addr,
		.length = len,
		.hca_va = hca_va,
		.pd_handle = pd,
		.access_flags = access,
	};
	int ret;

	ret = legacy(u, IB_USER_VERBS_CMD_REG_MR, &core, sizeof(core),
		     sizeof(resp));
	if (!ret && out)
		*out = resp;
	return ret;
}

static int reg_mr(struct vhca_ucontext *u, uint32_t pd, const void *addr,
		  uint64_t len, uint32_t access,
		  struct ib_uverbs_reg_mr_resp *out)
{
	return reg_mr_full(u, pd, addr, len, (uintptr_t)addr, access, NULL,
			   out);
}

static int dereg_mr(struct vhca_ucontext *u, uint32_t handle)
{
	struct ib_uverbs_dereg_mr core = { .mr_handle = handle };

	return legacy(u, IB_USER_VERBS_CMD_DEREG_MR, &core, sizeof(core), 0);
}

static int create_channel_at(struct vhca_ucontext *u, void *resp_ptr, int *fd)
{
	struct ib_uverbs_create_comp_channel_resp resp = { .fd = ~0u };
	struct ib_uverbs_create_comp_channel core = {
		.response = (uintptr_t)(resp_ptr ? resp_ptr : &resp),
	};
	int ret;

	ret = legacy(u, IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL, &core,
		     sizeof(core), sizeof(resp));
	if (!ret && fd)
		*fd = (int)resp.fd;
	return ret;
}

static int create_channel(struct vhca_ucontext *u, int *fd)
{
	return create_channel_at(u, NULL, fd);
}

static int add_channels_as(struct vhca_ucontext *u, pid_t tid,
			   const struct vhca_add_channels_cmd *req,
			   size_t out_len)
{
	struct cmd_buf c;
	size_t len;

	len = frame(&c, VHCA_CMD_ADD_CHANNELS, req, sizeof(*req), NULL, 0,
		    out_len);
	return submit_as(u, tid, &c, len);
}

/* The guest closes a channel it got from CREATE_COMP_CHANNEL. */
static void guest_close_channel(struct vhca_alloc_ucontext_cmd *g, int fd)
{
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		if (g->channels[i].read_fd == fd)
			g->channels[i].read_fd = -1;
	close(fd);
}

/* Bytes waiting in a (service) pipe, drained. */
static ssize_t drain(int fd, char *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 0) != 1)
		return 0;
	return read(fd, buf, len);
}

/* Tests */

static void test_before_context(void)
{
	struct vhca_ucontext *u = vhca_cmd_open(dev);
	struct ib_uverbs_query_device_resp qresp;
	struct ib_uverbs_query_device q = { .response = (uintptr_t)&qresp };
	struct vhca_add_channels_cmd add = { 0 };
	uint32_t pd;

	REQUIRE(u, "vhca_cmd_open");
	CHECK(atomic_load(&dev->open_files) == 1, "open_files %u",
	      atomic_load(&dev->open_files));
	CHECK(alloc_pd(u, &pd) == EINVAL, "ALLOC_PD before GET_CONTEXT");
	CHECK(legacy(u, IB_USER_VERBS_CMD_QUERY_DEVICE, &q, sizeof(q),
		     sizeof(qresp)) == EINVAL,
	      "QUERY_DEVICE before GET_CONTEXT");
	CHECK(create_channel(u, NULL) == EINVAL,
	      "CREATE_COMP_CHANNEL before GET_CONTEXT");
	add.num_channels = 1;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL,
	      "ADD_CHANNELS before GET_CONTEXT");
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u);
	CHECK(atomic_load(&dev->open_files) == 0, "open_files after release");
}

static void test_framing(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct ib_uverbs_query_port_resp presp;
	struct ib_uverbs_query_port qp = { .response = (uintptr_t)&presp,
					   .port_num = 1 };
	static uint8_t huge[VHCA_CHANNEL_BATCH * 16384];
	static const uint8_t zeros[64];
	struct ib_uverbs_alloc_pd_resp resp;
	struct ib_uverbs_alloc_pd ap = { .response = (uintptr_t)&resp };
	struct cmd_buf c;
	struct ex_buf ex;
	size_t len;

	CHECK(submit(u, &c, 0) == EINVAL, "empty write");
	CHECK(submit(u, &c, 4) == EINVAL, "write shorter than a header");

	len = frame(&c, IB_USER_VERBS_CMD_ALLOC_PD, &ap, sizeof(ap), NULL, 0,
		    sizeof(resp));
	CHECK(submit(u, &c, len - 4) == EINVAL, "in_words larger than write");
	CHECK(submit(u, &c, len + 4) == EINVAL, "in_words smaller than write");
	c.hdr.in_words = 0;
	CHECK(submit(u, &c, len) == EINVAL, "in_words 0");

	memcpy(huge, &c.hdr, sizeof(c.hdr));
	CHECK(submit(u, huge, sizeof(huge)) == EINVAL, "oversized write");

	len = frame(&c, 0x3f, zeros, 8, NULL, 0, 0);
	CHECK(submit(u, &c, len) == EOPNOTSUPP, "unknown command");
	len = frame(&c, IB_USER_VERBS_CMD_OPEN_XRCD, zeros, 16, NULL, 0, 0);
	CHECK(submit(u, &c, len) == EOPNOTSUPP, "unsupported command");
	len = frame(&c, 0xff, zeros, 8, NULL, 0, 0);
	CHECK(submit(u, &c, len) == EOPNOTSUPP, "command 0xff");
	len = frame(&c, IB_USER_VERBS_CMD_ALLOC_PD | 0x100, &ap, sizeof(ap),
		    NULL, 0, sizeof(resp));
	CHECK(submit(u, &c, len) == EINVAL, "reserved command bits");
	len = frame(&c, IB_USER_VERBS_CMD_ALLOC_PD | 0x40000000, &ap,
		    sizeof(ap), NULL, 0, sizeof(resp));
	CHECK(submit(u, &c, len) == EINVAL, "reserved flag bit");

	/* Core structures shorter than the command's: ENOSPC, as verify_hdr. */
	len = frame(&c, IB_USER_VERBS_CMD_QUERY_PORT, &qp, 8, NULL, 0,
		    sizeof(presp));
	CHECK(submit(u, &c, len) == ENOSPC, "short QUERY_PORT request");
	len = frame(&c, IB_USER_VERBS_CMD_QUERY_PORT, &qp, sizeof(qp), NULL, 0,
		    sizeof(presp) - 4);
	CHECK(submit(u, &c, len) == ENOSPC, "short QUERY_PORT response");
	/* Bytes past a structure we take whole must be zero. */
	len = frame(&c, IB_USER_VERBS_CMD_QUERY_PORT, &qp, sizeof(qp), zeros,
		    8, sizeof(presp));
	CHECK(submit(u, &c, len) == 0, "zero trailing request bytes");
	((uint8_t *)c.words)[sizeof(qp) + 3] = 1;
	CHECK(submit(u, &c, len) == EOPNOTSUPP, "nonzero trailing bytes");

	/* Extended framing. */
	len = frame_ex(&ex, IB_USER_VERBS_EX_CMD_CREATE_FLOW, 32, NULL, 0);
	CHECK(submit(u, &ex, len) == EOPNOTSUPP, "unsupported ex command");
	len = frame_ex(&ex, IB_USER_VERBS_CMD_ALLOC_PD, 8, NULL, 0);
	CHECK(submit(u, &ex, len) == EOPNOTSUPP, "legacy-only command as ex");
	len = frame_ex(&ex, IB_USER_VERBS_EX_CMD_QUERY_DEVICE, 32, NULL, 0);
	ex.hdr.in_words = 1000;
	CHECK(submit(u, &ex, len) == EINVAL, "ex: lying in_words");
	ex.hdr.in_words = 4;
	ex.ex.provider_in_words = 1;
	CHECK(submit(u, &ex, len) == EINVAL, "ex: lying provider_in_words");
	ex.ex.provider_in_words = 0;
	CHECK(submit(u, &ex, len) == 0, "ex: well framed, no response");
	ex.ex.cmd_hdr_reserved = 1;
	CHECK(submit(u, &ex, len) == EINVAL, "ex: reserved header field");
	ex.ex.cmd_hdr_reserved = 0;
	ex.hdr.out_words = 40;
	CHECK(submit(u, &ex, len) == EINVAL, "ex: out words, no response");
	ex.hdr.out_words = 0;
	ex.ex.response = (uintptr_t)&resp;
	CHECK(submit(u, &ex, len) == EINVAL, "ex: response, no out words");
	CHECK(submit(u, &ex, sizeof(ex.hdr) + 8) == EINVAL,
	      "ex: shorter than the ex header");
	len = frame_ex(&ex, IB_USER_VERBS_EX_CMD_QUERY_DEVICE, 0, NULL, 0);
	CHECK(submit(u, &ex, len) == ENOSPC, "ex: no core request");

	CHECK(stats_are(1, 0, 0, 0), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u);
	close_guest_fds(&g);
}

static void test_get_context(void)
{
	unsigned int fds_before = open_fds();
	struct vhca_alloc_ucontext_cmd g;
	struct get_context_resp resp;
	struct vhca_ucontext *u;
	char buf[16];
	int ret;

	u = vhca_cmd_open(dev);
	REQUIRE(u, "vhca_cmd_open");
	open_guest_fds(&g, VHCA_CHANNEL_BATCH);
	memset(&resp, 0xff, sizeof(resp));
	ret = get_context(u, &g, &resp);
	CHECK(ret == 0, "GET_CONTEXT: %s", strerror(ret));
	CHECK(resp.core.async_fd == (uint32_t)g.async_event.read_fd,
	      "async_fd %u, expected %d", resp.core.async_fd,
	      g.async_event.read_fd);
	CHECK(resp.core.num_comp_vectors == 1, "num_comp_vectors %u",
	      resp.core.num_comp_vectors);
	CHECK(resp.udata.abi_version == VHCA_UVERBS_ABI_VERSION &&
		      resp.udata.max_inline_data == vhca_limits.max_inline_data,
	      "udata response: abi %u inline %u", resp.udata.abi_version,
	      resp.udata.max_inline_data);
	CHECK(!resp.udata.reserved[0] && !resp.udata.reserved[2],
	      "reserved response words zero");
	CHECK(stats_are(1, 0, 0, 0), STATS_FMT, STATS_ARGS);
	/* A full pool: no refill requested yet. */
	CHECK(drain(g.service.read_fd, buf, sizeof(buf)) == 0,
	      "refill asked with a full pool");
	CHECK(get_context(u, &g, &resp) == EINVAL, "second GET_CONTEXT");
	close_guest_writers(&g);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);

	/* The device dropped every write end: our readers see EOF. */
	CHECK(read(g.async_event.read_fd, buf, 1) == 0, "async pipe EOF");
	CHECK(read(g.channels[0].read_fd, buf, 1) == 0, "channel pipe EOF");
	close_guest_fds(&g);

	/* A short pool asks for a refill at once. */
	u = vhca_cmd_open(dev);
	open_guest_fds(&g, 2);
	CHECK(get_context(u, &g, &resp) == 0, "GET_CONTEXT, 2 channels");
	CHECK(drain(g.service.read_fd, buf, sizeof(buf)) == 1 &&
		      buf[0] == VHCA_SERVICE_REFILL_CHANNELS,
	      "refill request for a low pool");
	vhca_cmd_release(u);
	close_guest_fds(&g);

	/* No channels at all is fine too. */
	u = vhca_cmd_open(dev);
	open_guest_fds(&g, 0);
	CHECK(get_context(u, &g, &resp) == 0, "GET_CONTEXT, 0 channels");
	vhca_cmd_release(u);
	close_guest_fds(&g);

	CHECK(open_fds() == fds_before, "fds: %u before, %u after", fds_before,
	      open_fds());
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
}

/* Each bad GET_CONTEXT fails, keeps nothing, and a good one follows. */
static void expect_bad_get_context(struct vhca_ucontext *u,
				   struct vhca_alloc_ucontext_cmd *g,
				   size_t udata_len, void *resp, int expect,
				   const char *what)
{
	unsigned int fds_before = open_fds();
	int ret = get_context_as(u, gettid(), g, udata_len, resp);

	CHECK(ret == expect, "%s: %s, expected %s", what, strerror(ret),
	      strerror(expect));
	CHECK(open_fds() == fds_before, "%s: fds %u -> %u", what, fds_before,
	      open_fds());
	CHECK(stats_are(0, 0, 0, 0), "%s: " STATS_FMT, what, STATS_ARGS);
	CHECK(!u->initialised, "%s: context initialised", what);
}

static void test_get_context_errors(void)
{
	struct vhca_ucontext *u = vhca_cmd_open(dev);
	struct vhca_alloc_ucontext_cmd g;
	struct get_context_resp resp;
	struct vhca_fd_pair other;
	int devnull, saved, ret;

	REQUIRE(u, "vhca_cmd_open");
	open_guest_fds(&g, 4);
	open_pair(&other);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

	expect_bad_get_context(u, &g, sizeof(g), unmapped, EFAULT,
			       "response into unmapped memory");
	expect_bad_get_context(u, &g, sizeof(g) - 8, &resp, EINVAL,
			       "short udata");
	g.abi_version = VHCA_UVERBS_ABI_VERSION + 1;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "wrong provider ABI");
	g.abi_version = VHCA_UVERBS_ABI_VERSION;
	g.num_channels = VHCA_CHANNEL_BATCH + 1;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "too many channels");
	g.num_channels = 4;

	saved = g.async_event.write_fd;
	g.async_event.write_fd = 4000;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "async write fd not open");
	g.async_event.write_fd = g.async_event.read_fd;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "async read end as write end");
	g.async_event.write_fd = devnull;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "async write fd not a pipe");
	g.async_event.write_fd = other.write_fd;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "async ends of two different pipes");
	g.async_event.write_fd = saved;

	saved = g.service.write_fd;
	g.service.write_fd = -1;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "service write fd -1");
	g.service.write_fd = saved;

	saved = g.channels[3].read_fd;
	g.channels[3].read_fd = g.channels[2].read_fd;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "channel read end of another pipe");
	g.channels[3].read_fd = saved;
	g.channels[3].write_fd = 4001;
	expect_bad_get_context(u, &g, sizeof(g), &resp, EINVAL,
			       "channel write fd not open");
	close(g.channels[3].read_fd);
	open_pair(&g.channels[3]);

	/* Nonzero provider data we do not understand. */
	{
		uint8_t longer[sizeof(g) + 8] = { 0 };

		memcpy(longer, &g, sizeof(g));
		longer[sizeof(g) + 2] = 1;
		expect_bad_get_context(u, (void *)longer, sizeof(longer), &resp,
				       EOPNOTSUPP, "nonzero trailing udata");
	}

	ret = get_context(u, &g, &resp);
	CHECK(ret == 0, "GET_CONTEXT after failures: %s", strerror(ret));
	CHECK(stats_are(1, 0, 0, 0), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u);
	close_guest_fds(&g);
	close_pair(&other);
	close(devnull);
}

static void test_query_device(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct ib_uverbs_query_device_resp resp;
	struct ib_uverbs_query_device q = { .response = (uintptr_t)&resp };
	struct {
		struct ib_uverbs_ex_query_device_resp r;
		uint8_t extra[16];
	} exr;
	const size_t min_ex = offsetof(struct ib_uverbs_ex_query_device_resp,
				       response_length) + 4;
	struct ex_buf ex;
	size_t len;

	memset(&resp, 0xee, sizeof(resp));
	CHECK(legacy(u, IB_USER_VERBS_CMD_QUERY_DEVICE, &q, sizeof(q),
		     sizeof(resp)) == 0,
	      "QUERY_DEVICE");
	CHECK(resp.node_guid == htobe64(dev->node_guid), "node_guid %llx",
	      (unsigned long long)resp.node_guid);
	CHECK(resp.sys_image_guid == htobe64(dev->sys_image_guid),
	      "sys_image_guid");
	CHECK(resp.fw_ver == 1ULL << 32, "fw_ver %llx",
	      (unsigned long long)resp.fw_ver);
	CHECK(resp.vendor_id == VHCA_VENDOR_ID &&
		      resp.vendor_part_id == VHCA_VENDOR_PART_ID &&
		      resp.hw_ver == VHCA_HW_VER,
	      "vendor ids");
	/* The function's share of the daemon, where that is smaller. */
	CHECK(resp.max_qp == MIN(16384u, dev->quota.max_qp) &&
		      resp.max_qp_wr == 16384 && resp.max_sge == 16 &&
		      resp.max_cq == MIN(65536u, dev->quota.max_cq) &&
		      resp.max_srq == MIN(16384u, dev->quota.max_srq) &&
		      resp.max_cqe == 65536 && resp.max_mr == 1u << 20 &&
		      resp.max_pd == 1u << 16 && resp.max_qp_rd_atom == 16,
	      "limits: qp %u cq %u srq %u", resp.max_qp, resp.max_cq,
	      resp.max_srq);
	CHECK(resp.max_mr_size == 1ULL << 40 &&
		      resp.page_size_cap == 0xfffff000,
	      "max_mr_size / page_size_cap");
	CHECK(resp.atomic_cap == IBV_ATOMIC_HCA, "atomic_cap %u",
	      resp.atomic_cap);
	CHECK(resp.max_pkeys == VHCA_PKEY_TABLE_LEN && resp.phys_port_cnt == 1,
	      "pkeys %u ports %u", resp.max_pkeys, resp.phys_port_cnt);
	CHECK(!resp.reserved[0] && !resp.reserved[3], "reserved zero");

	/* Extended, full size. */
	len = frame_ex(&ex, IB_USER_VERBS_EX_CMD_QUERY_DEVICE, 8, &exr,
		       sizeof(exr.r));
	memset(&exr, 0xee, sizeof(exr));
	CHECK(submit(u, &ex, len) == 0, "EX_QUERY_DEVICE");
	CHECK(exr.r.response_length == sizeof(exr.r), "response_length %u",
	      exr.r.response_length);
	CHECK(!memcmp(&exr.r.base, &resp, sizeof(resp)),
	      "ex base equals legacy response");
	CHECK(exr.r.device_cap_flags_ex == vhca_limits.device_cap_flags &&
		      exr.r.comp_mask == 0,
	      "ex fields");
	/* ODP for host processes, the device clock, device memory. */
	CHECK(exr.r.odp_caps.general_caps ==
			      (IBV_ODP_SUPPORT | IBV_ODP_SUPPORT_IMPLICIT) &&
		      exr.r.timestamp_mask == UINT64_MAX &&
		      exr.r.hca_core_clock == VHCA_CORE_CLOCK_KHZ &&
		      exr.r.max_dm_size == VHCA_MAX_DM_SIZE,
	      "ex odp/clock/dm fields");
	CHECK(exr.extra[0] == 0xee, "wrote past the caller's size");

	/* Larger than ours: zero-filled; response_length says ours. */
	len = frame_ex(&ex, IB_USER_VERBS_EX_CMD_QUERY_DEVICE, 8, &exr,
		       sizeof(exr));
	memset(&exr, 0xee, sizeof(exr));
	CHECK(submit(u, &ex, len) == 0, "EX_QUERY_DEVICE, bigger buffer");
	CHECK(exr.r.response_length == sizeof(exr.r) && !exr.extra[0] &&
		      !exr.extra[15],
	      "zero fill beyond our response");

	/* Smaller (an older libibverbs): truncated. */
	len = frame_ex(&ex, IB_USER_VERBS_EX_CMD_QUERY_DEVICE, 8, &exr,
		       (min_ex + 7) & ~(size_t)7);
	memset(&exr, 0xee, sizeof(exr));
	CHECK(submit(u, &ex, len) == 0, "EX_QUERY_DEVICE, old size");
	CHECK(exr.r.response_length == ((min_ex + 7) & ~(size_t)7),
	      "truncated response_length %u", exr.r.response_length);
	CHECK(((uint8_t *)&exr)[(min_ex + 7) & ~(size_t)7] == 0xee,
	      "wrote past a truncated response");
	len = frame_ex(&ex, IB_USER_VERBS_EX_CMD_QUERY_DEVICE, 8, &exr,
		       sizeof(resp));
	CHECK(submit(u, &ex, len) == ENOSPC, "ex response below minimum");

	len = frame_ex(&ex, IB_USER_VERBS_EX_CMD_QUERY_DEVICE, 8, &exr,
		       sizeof(exr.r));
	ex.words[0] = 1;	/* comp_mask */
	CHECK(submit(u, &ex, len) == EINVAL, "ex comp_mask");
	ex.words[0] = 1ULL << 32;	/* reserved */
	CHECK(submit(u, &ex, len) == EINVAL, "ex reserved");
	ex.words[0] = 0;
	ex.ex.response = (uintptr_t)unmapped;
	CHECK(submit(u, &ex, len) == EFAULT, "ex response unmapped");

	q.response = (uintptr_t)unmapped;
	CHECK(legacy(u, IB_USER_VERBS_CMD_QUERY_DEVICE, &q, sizeof(q),
		     sizeof(resp)) == EFAULT,
	      "QUERY_DEVICE into unmapped memory");

	vhca_cmd_release(u);
	close_guest_fds(&g);
}

static void test_query_port(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct {
		struct ib_uverbs_query_port_resp r;
		uint8_t extra[8];
	} resp;
	struct ib_uverbs_query_port q = { .response = (uintptr_t)&resp,
					  .port_num = 1 };

	memset(&resp, 0xee, sizeof(resp));
	CHECK(legacy(u, IB_USER_VERBS_CMD_QUERY_PORT, &q, sizeof(q),
		     sizeof(resp.r)) == 0,
	      "QUERY_PORT 1");
	CHECK(resp.r.state == IBV_PORT_ACTIVE && resp.r.phys_state == 5,
	      "state %u/%u", resp.r.state, resp.r.phys_state);
	CHECK(resp.r.lid == 7 && resp.r.sm_lid == 1, "lids %u %u", resp.r.lid,
	      resp.r.sm_lid);
	CHECK(resp.r.gid_tbl_len == VHCA_GID_TABLE_LEN &&
		      resp.r.pkey_tbl_len == VHCA_PKEY_TABLE_LEN,
	      "table lengths");
	CHECK(resp.r.max_mtu == IBV_MTU_4096 &&
		      resp.r.active_mtu == IBV_MTU_4096,
	      "mtu");
	CHECK(resp.r.max_msg_sz == 1u << 31, "max_msg_sz");
	CHECK(resp.r.link_layer == IBV_LINK_LAYER_INFINIBAND,
	      "link layer %u", resp.r.link_layer);
	CHECK(resp.r.active_width == 2 && resp.r.active_speed == 32,
	      "width/speed");
	CHECK(resp.r.port_cap_flags == IBV_PORT_SYS_IMAGE_GUID_SUP,
	      "cap flags %x", resp.r.port_cap_flags);
	CHECK(resp.extra[0] == 0xee, "wrote past the response");

	/* A legacy command without udata zero-fills the caller's extra. */
	CHECK(legacy(u, IB_USER_VERBS_CMD_QUERY_PORT, &q, sizeof(q),
		     sizeof(resp)) == 0,
	      "QUERY_PORT, bigger buffer");
	CHECK(!resp.extra[0] && !resp.extra[7], "zero fill");

	/* Attributes are read under pf->lock, live. */
	pthread_rwlock_wrlock(&pf.lock);
	dev->port.state = IBV_PORT_DOWN;
	pthread_rwlock_unlock(&pf.lock);
	legacy(u, IB_USER_VERBS_CMD_QUERY_PORT, &q, sizeof(q), sizeof(resp.r));
	CHECK(resp.r.state == IBV_PORT_DOWN, "port state change seen");
	dev->port.state = IBV_PORT_ACTIVE;

	q.port_num = 2;
	CHECK(legacy(u, IB_USER_VERBS_CMD_QUERY_PORT, &q, sizeof(q),
		     sizeof(resp.r)) == EINVAL,
	      "QUERY_PORT 2");
	q.port_num = 0;
	CHECK(legacy(u, IB_USER_VERBS_CMD_QUERY_PORT, &q, sizeof(q),
		     sizeof(resp.r)) == EINVAL,
	      "QUERY_PORT 0");
	vhca_cmd_release(u);
	close_guest_fds(&g);
}

static void test_pds(void)
{
	struct vhca_alloc_ucontext_cmd g1, g2;
	struct vhca_ucontext *u1 = open_context(&g1);
	struct vhca_ucontext *u2 = open_context(&g2);
	struct ib_uverbs_reg_mr_resp mr;
	static char buf[4096];
	uint32_t pd[3], pd_b, pd_again;

	CHECK(alloc_pd(u1, &pd[0]) == 0 && alloc_pd(u1, &pd[1]) == 0 &&
		      alloc_pd(u1, &pd[2]) == 0,
	      "three PDs");
	CHECK(pd[0] != pd[1] && pd[1] != pd[2] && pd[0] != pd[2],
	      "distinct handles %u %u %u", pd[0], pd[1], pd[2]);
	CHECK(alloc_pd(u2, &pd_b) == 0, "PD in another context");
	CHECK(stats_are(2, 4, 0, 0), STATS_FMT, STATS_ARGS);

	CHECK(dealloc_pd(u1, 12345) == EINVAL, "bogus handle");
	CHECK(dealloc_pd(u1, 0xffffffff) == EINVAL, "handle ~0");
	CHECK(dealloc_pd(u2, pd[2]) == EINVAL,
	      "handle only valid in the other context");
	CHECK(reg_mr(u1, pd[0], buf, sizeof(buf), 0, &mr) == 0, "an MR");
	CHECK(dealloc_pd(u1, mr.mr_handle) == EINVAL, "MR handle as PD");
	CHECK(dereg_mr(u1, pd[1]) == EINVAL, "PD handle as MR");
	CHECK(dealloc_pd(u1, pd[0]) == EBUSY, "PD with an MR");
	CHECK(dereg_mr(u1, mr.mr_handle) == 0, "dereg");
	CHECK(dealloc_pd(u1, pd[0]) == 0, "dealloc");
	CHECK(dealloc_pd(u1, pd[0]) == EINVAL, "double dealloc");
	CHECK(stats_are(2, 3, 0, 0), STATS_FMT, STATS_ARGS);

	/* Response fault: the PD never existed. */
	CHECK(alloc_pd_at(u1, unmapped, NULL) == EFAULT, "response unmapped");
	CHECK(alloc_pd_at(u1, (void *)0xffff800000000000ULL, NULL) == EFAULT,
	      "response at a kernel address");
	CHECK(stats_are(2, 3, 0, 0), STATS_FMT, STATS_ARGS);
	CHECK(alloc_pd(u1, &pd_again) == 0, "alloc after faults");
	{
		struct vhca_dctx *d1 = vhca_ucontext_dctx(u1);

		REQUIRE(d1, "device context of u1");
		CHECK(d1->objs.used == 4,
		      "handle slots used %u: faults leaked slots",
		      d1->objs.used);
		vhca_dctx_put(d1);
	}

	vhca_cmd_release(u1);
	CHECK(stats_are(1, 1, 0, 0), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u2);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g1);
	close_guest_fds(&g2);
}

/* The MR of @u's device context with @key, as the data path finds it. */
static struct vhca_mr *find_mr(struct vhca_ucontext *u, uint32_t key)
{
	struct vhca_dctx *dctx = vhca_ucontext_dctx(u);
	struct vhca_mr *mr;

	REQUIRE(dctx, "device context");
	vhca_dctx_lock(dctx);
	mr = vhca_mr_find(dctx, key);
	vhca_dctx_unlock(dctx);
	vhca_dctx_put(dctx);	/* the context's own reference stays */
	return mr;
}

static void test_mrs(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct ib_uverbs_reg_mr_resp r[16];
	const uint32_t lw = IB_UVERBS_ACCESS_LOCAL_WRITE;
	char *area;
	struct vhca_mr *mr;
	uint32_t pd;
	bool distinct = true;
	int ret;

	area = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(area != MAP_FAILED, "mmap");
	ret = mprotect(area + 2 * page, page, PROT_READ) |
	      mprotect(area + 3 * page, page, PROT_NONE);
	REQUIRE(ret == 0, "mprotect");
	ret = alloc_pd(u, &pd);
	REQUIRE(ret == 0, "alloc_pd");

	for (int i = 0; i < 16; i++) {
		ret = reg_mr(u, pd, area + i * 64, 64 + i,
			     lw | IB_UVERBS_ACCESS_REMOTE_WRITE |
				     IB_UVERBS_ACCESS_REMOTE_READ,
			     &r[i]);
		CHECK(ret == 0, "REG_MR %d: %s", i, strerror(ret));
	}
	for (int i = 0; i < 16; i++) {
		distinct &= r[i].lkey == r[i].rkey && (r[i].lkey >> 8) != 0;
		for (int j = 0; j < i; j++)
			distinct &= r[i].lkey != r[j].lkey &&
				    r[i].mr_handle != r[j].mr_handle;
	}
	CHECK(distinct, "keys unique, lkey == rkey, index nonzero");
	CHECK(stats_are(1, 1, 16, 0), STATS_FMT, STATS_ARGS);

	mr = find_mr(u, r[5].lkey);
	CHECK(mr && mr->addr == (uintptr_t)(area + 5 * 64) &&
		      mr->length == 69 && mr->iova == mr->addr &&
		      mr->lkey == r[5].lkey,
	      "lookup by key");
	CHECK(!find_mr(u, r[5].lkey ^ 1), "lookup with another key variant");
	for (int i = 0; i < 16; i++)
		CHECK(dereg_mr(u, r[i].mr_handle) == 0, "DEREG_MR %d", i);
	CHECK(!find_mr(u, r[5].lkey), "key gone after dereg");
	CHECK(dereg_mr(u, r[5].mr_handle) == EINVAL, "double dereg");
	CHECK(stats_are(1, 1, 0, 0), STATS_FMT, STATS_ARGS);

	/* hca_va may differ from start, keeping the page offset. */
	ret = reg_mr_full(u, pd, area + 100, 200, 0x10000000ULL + 100, lw,
			  NULL, &r[0]);
	CHECK(ret == 0, "REG_MR with hca_va: %s", strerror(ret));
	mr = find_mr(u, r[0].lkey);
	CHECK(mr && mr->iova == 0x10000000ULL + 100 &&
		      mr->addr == (uintptr_t)area + 100 && mr->access == lw,
	      "iova and addr recorded");
	CHECK(reg_mr_full(u, pd, area + 100, 200, 0x10000000ULL + 101, lw,
			  NULL, NULL) == EINVAL,
	      "hca_va with another page offset");
	dereg_mr(u, r[0].mr_handle);

	/* The range against the mappings, as get_user_pages would. */
	CHECK(reg_mr(u, pd, area, 2 * page, lw, NULL) == 0,
	      "writable MR over two writable pages");
	CHECK(reg_mr(u, pd, unmapped, page, 0, NULL) == EFAULT, "unmapped");
	CHECK(reg_mr(u, pd, area + 2 * page, page, lw, NULL) == EFAULT,
	      "LOCAL_WRITE on read-only memory");
	CHECK(reg_mr(u, pd, area + 2 * page, page,
		     IB_UVERBS_ACCESS_REMOTE_READ, NULL) == 0,
	      "read-only MR on read-only memory");
	CHECK(reg_mr(u, pd, area + 2 * page, page, IB_UVERBS_ACCESS_MW_BIND,
		     NULL) == EFAULT,
	      "MW_BIND (writable) on read-only memory");
	CHECK(reg_mr(u, pd, area + page, 2 * page, 0, NULL) == 0,
	      "read-only MR across rw and ro mappings");
	CHECK(reg_mr(u, pd, area + 3 * page, 1, 0, NULL) == EFAULT,
	      "PROT_NONE");
	CHECK(reg_mr(u, pd, area, 4 * page, 0, NULL) == EFAULT,
	      "range running into PROT_NONE");

	/* Flags and lengths, as ib_check_mr_access / ib_umem_get. */
	CHECK(reg_mr(u, pd, area, 64, IB_UVERBS_ACCESS_REMOTE_WRITE, NULL) ==
		      EINVAL,
	      "REMOTE_WRITE without LOCAL_WRITE");
	CHECK(reg_mr(u, pd, area, 64, IB_UVERBS_ACCESS_REMOTE_ATOMIC, NULL) ==
		      EINVAL,
	      "REMOTE_ATOMIC without LOCAL_WRITE");
	CHECK(reg_mr(u, pd, area, 64, 1u << 30, NULL) == EINVAL,
	      "unknown access bit");
	CHECK(reg_mr(u, pd, area, 64, 1u << 10, NULL) == EINVAL,
	      "unknown low access bit");
	/* A host process's MR may be on demand; flushes are not offered. */
	CHECK(reg_mr(u, pd, area, 64, IB_UVERBS_ACCESS_ON_DEMAND, NULL) == 0,
	      "ODP");
	CHECK(reg_mr(u, pd, area, 64, lw | (1u << 8), NULL) == EOPNOTSUPP,
	      "FLUSH_GLOBAL");
	CHECK(reg_mr(u, pd, area, 64, lw | IB_UVERBS_ACCESS_RELAXED_ORDERING |
					      IB_UVERBS_ACCESS_HUGETLB,
		     &r[0]) == 0,
	      "optional and hint bits accepted");
	dereg_mr(u, r[0].mr_handle);
	CHECK(reg_mr(u, pd, area, 0, lw, NULL) == EINVAL, "length 0");
	CHECK(reg_mr(u, pd, (void *)~0xfffULL, 1u << 20, 0, NULL) == EINVAL,
	      "range wrapping the address space");
	CHECK(reg_mr_full(u, pd, area, 2 * page, ~0xfffULL, 0, NULL, NULL) ==
		      EINVAL,
	      "iova range wrapping");
	CHECK(reg_mr(u, pd, area, (1ULL << 40) + 1, 0, NULL) == EINVAL,
	      "longer than max_mr_size");
	CHECK(reg_mr(u, pd + 77, area, 64, 0, NULL) == EINVAL, "bogus PD");

	/* Response fault: registration undone, key gone. */
	CHECK(reg_mr_full(u, pd, area, 64, (uintptr_t)area, lw, unmapped,
			  NULL) == EFAULT,
	      "REG_MR response unmapped");
	munmap(area, 4 * page);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g);
}

static int rereg_mr(struct vhca_ucontext *u, uint32_t handle, uint32_t flags,
		    const void *addr, uint64_t len, uint64_t hca_va,
		    uint32_t pd, uint32_t access,
		    struct ib_uverbs_rereg_mr_resp *out)
{
	struct ib_uverbs_rereg_mr_resp resp = { 0 };
	struct ib_uverbs_rereg_mr core = {
		.response = (uintptr_t)&resp,
		.mr_handle = handle, .flags = flags,
		.start = (uintptr_t)addr, .length = len, .hca_va = hca_va,
		.pd_handle = pd, .access_flags = access,
	};
	int ret = legacy(u, IB_USER_VERBS_CMD_REREG_MR, &core, sizeof(core),
			 sizeof(resp));

	if (out)
		*out = resp;
	return ret;
}

/* REREG_MR's raw inputs, as ib_uverbs_rereg_mr() checks them. */
static void test_rereg_mr(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	const uint32_t lw = IB_UVERBS_ACCESS_LOCAL_WRITE;
	struct ib_uverbs_rereg_mr_resp rr;
	struct ib_uverbs_reg_mr_resp r;
	uint32_t pd, pd2, was;
	struct vhca_mr *mr;
	char *area;

	area = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(area != MAP_FAILED, "mmap");
	REQUIRE(!mprotect(area + 2 * page, page, PROT_READ), "mprotect");
	REQUIRE(!alloc_pd(u, &pd) && !alloc_pd(u, &pd2), "alloc_pd");
	REQUIRE(!reg_mr(u, pd, area, page, lw, &r), "reg_mr");

	CHECK(rereg_mr(u, r.mr_handle, 0, NULL, 0, 0, 0, 0, NULL) == EINVAL,
	      "flags 0");
	CHECK(rereg_mr(u, r.mr_handle, 8, NULL, 0, 0, 0, 0, NULL) ==
		      EOPNOTSUPP, "flag 8");
	CHECK(rereg_mr(u, pd, IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, 0, 0, lw,
		       NULL) == EINVAL, "a PD handle as the MR");
	CHECK(rereg_mr(u, r.mr_handle + 99, IBV_REREG_MR_CHANGE_ACCESS, NULL,
		       0, 0, 0, lw, NULL) == EINVAL, "no such MR");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_PD, NULL, 0, 0,
		       pd2 + 50, 0, NULL) == EINVAL, "no such PD");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_PD, NULL, 0, 0,
		       r.mr_handle, 0, NULL) == EINVAL, "an MR handle as the PD");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION,
		       area + 1, 64, 2, 0, 0, NULL) == EINVAL,
	      "hca_va with another page offset");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION, area,
		       0, (uintptr_t)area, 0, 0, NULL) == EINVAL, "length 0");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION,
		       unmapped, page, (uintptr_t)unmapped, 0, 0, NULL) ==
		      EFAULT, "an unmapped range");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION,
		       area + 2 * page, page, (uintptr_t)area + 2 * page, 0, 0,
		       NULL) == EFAULT, "a writable MR moved to read-only memory");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, 0,
		       0, IB_UVERBS_ACCESS_REMOTE_WRITE, NULL) == EINVAL,
	      "REMOTE_WRITE without LOCAL_WRITE");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, 0,
		       0, lw | IB_UVERBS_ACCESS_ON_DEMAND, NULL) == EOPNOTSUPP,
	      "to ODP");
	mr = find_mr(u, r.lkey);
	CHECK(mr && mr->addr == (uintptr_t)area && mr->length == (uint64_t)page &&
		      mr->access == lw,
	      "every refusal left the MR as it was");

	/* All three at once: new range, PD and access, new keys. */
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION |
					       IBV_REREG_MR_CHANGE_PD |
					       IBV_REREG_MR_CHANGE_ACCESS,
		       area + page + 8, 100, 0x5000008, pd2,
		       IB_UVERBS_ACCESS_REMOTE_READ, &rr) == 0,
	      "rereg of everything");
	CHECK(!find_mr(u, r.lkey), "the old key is gone");
	mr = find_mr(u, rr.lkey);
	CHECK(mr && rr.rkey == rr.lkey && mr->addr == (uintptr_t)area + page + 8 &&
		      mr->iova == 0x5000008 && mr->length == 100 &&
		      mr->access == IB_UVERBS_ACCESS_REMOTE_READ,
	      "the MR as re-registered");
	CHECK(dealloc_pd(u, pd2) == EBUSY && dealloc_pd(u, pd) == 0,
	      "the MR moved to the new PD");
	/* Read-only now: moving it onto read-only memory is fine. */
	was = rr.lkey;
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_TRANSLATION,
		       area + 2 * page, page, (uintptr_t)area + 2 * page, 0, 0,
		       &rr) == 0 && rr.lkey != was,
	      "a read-only MR onto read-only memory");
	CHECK(rereg_mr(u, r.mr_handle, IBV_REREG_MR_CHANGE_ACCESS, NULL, 0, 0,
		       0, lw, NULL) == EFAULT,
	      "write access gained on read-only memory");
	CHECK(dereg_mr(u, r.mr_handle) == 0 && dealloc_pd(u, pd2) == 0,
	      "dereg, dealloc");
	munmap(area, 3 * page);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g);
}

/*
 * Keys are capabilities (security finding 2): random, unique among a
 * context's live MRs, index part never 0, unrelated to one another and
 * to another device's, and found only through their own context.
 */
#define KEY_COUNT 1000

static void test_keys(void)
{
	struct vhca_alloc_ucontext_cmd g1, g2;
	struct vhca_ucontext *u1, *u2;
	static struct ib_uverbs_reg_mr_resp r1[KEY_COUNT], r2[KEY_COUNT];
	static struct vhca_pf pf2;
	static char buf[64];
	struct vhca_dev *dev2 = &pf2.dev;
	unsigned int same = 0, stride = 0, dup = 0, zero_index = 0;
	uint32_t pd1, pd2;
	int ret;

	pthread_rwlock_init(&pf2.lock, NULL);
	*dev2 = *dev;
	dev2->pf = &pf2;
	dev2->listeners = NULL;	/* dev's contexts are not dev2's */
	memset(&dev2->stats, 0, sizeof(dev2->stats));
	atomic_init(&dev2->open_files, 0);
	REQUIRE(vhca_dev_open_port(dev2, &vhca_ucontext_sink) == 0, "port 2");

	u1 = open_context(&g1);
	u2 = vhca_cmd_open(dev2);
	REQUIRE(u2, "open on dev2");
	open_guest_fds(&g2, VHCA_CHANNEL_BATCH);
	ret = get_context(u2, &g2, &(struct get_context_resp){ 0 });
	REQUIRE(ret == 0, "GET_CONTEXT on dev2");
	ret = alloc_pd(u1, &pd1) | alloc_pd(u2, &pd2);
	REQUIRE(ret == 0, "PDs");

	for (int i = 0; i < KEY_COUNT; i++) {
		ret = reg_mr(u1, pd1, buf, sizeof(buf), 0, &r1[i]) |
		      reg_mr(u2, pd2, buf, sizeof(buf), 0, &r2[i]);
		REQUIRE(ret == 0, "MR %d on each device", i);
		same += r1[i].lkey == r2[i].lkey;
		zero_index += !(r1[i].lkey >> 8) || !(r2[i].lkey >> 8);
		if (i)
			stride += r1[i].lkey - r1[i - 1].lkey ==
				  r1[1].lkey - r1[0].lkey;
	}
	for (int i = 0; i < KEY_COUNT; i++)
		for (int j = 0; j < i; j++)
			dup += r1[i].lkey == r1[j].lkey;
	CHECK(!dup, "%u duplicate keys among %d live MRs", dup, KEY_COUNT);
	CHECK(!zero_index, "%u keys with index 0", zero_index);
	CHECK(same <= 1, "%u of %d keys equal on two devices", same,
	      KEY_COUNT);
	CHECK(stride <= 2, "%u keys one stride after the last: predictable",
	      stride);
	CHECK(find_mr(u2, r2[7].lkey) && !find_mr(u1, r2[7].lkey),
	      "a key is found only in its own context");
	CHECK(dereg_mr(u1, r1[3].mr_handle) == 0 && !find_mr(u1, r1[3].lkey) &&
		      find_mr(u2, r2[3].lkey),
	      "dereg removes one context's key, not the other's");

	vhca_cmd_release(u1);
	vhca_cmd_release(u2);
	CHECK(stats_are(0, 0, 0, 0) && !atomic_load(&dev2->stats.mrs),
	      STATS_FMT, STATS_ARGS);
	close_guest_fds(&g1);
	close_guest_fds(&g2);
	vhca_dev_close_port(dev2);
	pthread_rwlock_destroy(&pf2.lock);
}

static void test_channels(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct ib_uverbs_comp_event_desc comp;
	struct ib_uverbs_async_event_desc async;
	struct vhca_comp_channel *chan;
	int fd[VHCA_CHANNEL_BATCH], again;
	struct stat st;
	bool pooled = true;
	unsigned int pool;
	char buf[16];

	for (int i = 0; i < 5; i++) {
		int ret = create_channel(u, &fd[i]);

		CHECK(ret == 0, "CREATE_COMP_CHANNEL %d: %s", i, strerror(ret));
	}
	for (int i = 0; i < 5; i++) {
		bool found = false;

		for (int j = 0; j < VHCA_CHANNEL_BATCH; j++)
			found |= fd[i] == g.channels[j].read_fd;
		pooled &= found && !fstat(fd[i], &st) && S_ISFIFO(st.st_mode);
	}
	CHECK(pooled, "channel fds are pooled read ends");
	CHECK(stats_are(1, 0, 0, 5), STATS_FMT, STATS_ARGS);
	/* 8 - 5 = 3 <= 4 left: the provider is asked, once. */
	CHECK(drain(g.service.read_fd, buf, sizeof(buf)) == 1 &&
		      buf[0] == VHCA_SERVICE_REFILL_CHANNELS,
	      "refill requested once");

	/* Events in the kernel formats, on the guest's fds. */
	chan = vhca_channels_get_comp(&u->channels, u->peer, fd[1]);
	CHECK(chan && chan->guest_fd == fd[1], "channel by fd");
	if (chan) {
		uint32_t read_a = 0, read_b = 0;

		CHECK(vhca_comp_channel_post(chan, 0x1122334455667788ULL,
					     &read_a) == 0,
		      "post comp event");
		CHECK(vhca_comp_channel_post(chan, 2, &read_b) == 0 &&
			      vhca_comp_channel_post(chan, 3, &read_a) == 0,
		      "post two more");
		CHECK(read(fd[1], &comp, sizeof(comp)) == sizeof(comp) &&
			      comp.cq_handle == 0x1122334455667788ULL,
		      "comp event record");
		int unread_bytes = -1;

		/*
		 * Only what the guest read counts as reported (DESTROY_CQ),
		 * and A's unread record (3) leaves the pipe with A, as the
		 * kernel drops it; B's stays.
		 */
		vhca_comp_channel_forget(chan, u->peer, &read_a);
		CHECK(read_a == 1, "read events of A: %u, expected 1", read_a);
		CHECK(ioctl(fd[1], FIONREAD, &unread_bytes) == 0 &&
			      unread_bytes == (int)sizeof(comp),
		      "one record left after purging A: %d bytes",
		      unread_bytes);
		CHECK(read(fd[1], &comp, sizeof(comp)) == sizeof(comp) &&
			      comp.cq_handle == 2,
		      "B's record survives the purge");
		vhca_comp_channel_forget(chan, u->peer, &read_b);
		CHECK(read_b == 1, "read events of B: %u, expected 1", read_b);
		vhca_comp_channel_forget(chan, u->peer, &read_b);
		CHECK(read_a == 1 && read_b == 1,
		      "nothing credited twice: a %u b %u", read_a, read_b);
		vhca_comp_channel_put(chan);
	}
	CHECK(!vhca_channels_get_comp(&u->channels, u->peer,
				      g.async_event.read_fd),
	      "async fd is no completion channel");
	CHECK(vhca_channels_post_async(&u->channels, 42,
				       IBV_EVENT_PORT_ACTIVE, NULL) == 0,
	      "post async event");
	CHECK(read(g.async_event.read_fd, &async, sizeof(async)) ==
			      sizeof(async) &&
		      async.element == 42 &&
		      async.event_type == IBV_EVENT_PORT_ACTIVE &&
		      !async.reserved,
	      "async event record");
	{
		/*
		 * DESTROY_QP/SRQ/CQ report the object's events the guest has
		 * read, not those posted: here object a gets 3 events and b
		 * 1, interleaved with a port event; the guest reads 2.
		 */
		uint32_t read_a = 0, read_b = 0;

		vhca_channels_post_async(&u->channels, 1,
					 IBV_EVENT_QP_LAST_WQE_REACHED, &read_a);
		vhca_channels_post_async(&u->channels, 1, IBV_EVENT_PORT_ERR,
					 NULL);
		vhca_channels_post_async(&u->channels, 2,
					 IBV_EVENT_SRQ_LIMIT_REACHED, &read_b);
		vhca_channels_post_async(&u->channels, 1,
					 IBV_EVENT_QP_ACCESS_ERR, &read_a);
		vhca_channels_post_async(&u->channels, 1,
					 IBV_EVENT_QP_REQ_ERR, &read_a);
		CHECK(read(g.async_event.read_fd, &async, sizeof(async)) ==
				      sizeof(async) &&
			      read(g.async_event.read_fd, &async,
				   sizeof(async)) == sizeof(async),
		      "read two async records");
		int unread_bytes = -1;

		/* Destroying a takes its two unread records out, as the
		 * kernel drops them; b's stays. */
		vhca_channels_forget_async(&u->channels, u->peer, &read_a);
		CHECK(read_a == 1 && read_b == 0,
		      "async events read: a %u (want 1) b %u (want 0)", read_a,
		      read_b);
		CHECK(ioctl(g.async_event.read_fd, FIONREAD, &unread_bytes) ==
				      0 &&
			      unread_bytes == (int)sizeof(async),
		      "one record left after purging a: %d bytes",
		      unread_bytes);
		CHECK(read(g.async_event.read_fd, &async, sizeof(async)) ==
				      sizeof(async) &&
			      async.element == 2 &&
			      async.event_type == IBV_EVENT_SRQ_LIMIT_REACHED,
		      "b's record survives the purge");
		vhca_channels_forget_async(&u->channels, u->peer, &read_b);
		CHECK(read_a == 1 && read_b == 1,
		      "b credited once read: a %u b %u", read_a, read_b);
		vhca_channels_forget_async(&u->channels, u->peer, &read_b);
		CHECK(read_a == 1 && read_b == 1,
		      "nothing credited twice: a %u b %u", read_a, read_b);
	}

	/* The guest closes channels: reaped on the next create. */
	guest_close_channel(&g, fd[0]);
	guest_close_channel(&g, fd[1]);
	chan = vhca_channels_get_comp(&u->channels, u->peer, fd[2]);
	REQUIRE(chan, "channel 2");
	CHECK(create_channel(u, &fd[5]) == 0, "create after closes");
	CHECK(stats_are(1, 0, 0, 4), "closed channels reaped: " STATS_FMT,
	      STATS_ARGS);
	guest_close_channel(&g, fd[2]);
	vhca_channels_reap(&u->channels);
	CHECK(stats_are(1, 0, 0, 3), STATS_FMT, STATS_ARGS);
	CHECK(vhca_comp_channel_post(chan, 1, NULL) == -EPIPE,
	      "post to a reaped channel a CQ still holds");
	vhca_comp_channel_put(chan);

	/* Response fault: the pipe goes back to the pool. */
	pool = u->channels.pool_len;
	CHECK(create_channel_at(u, unmapped, NULL) == EFAULT,
	      "CREATE_COMP_CHANNEL response unmapped");
	CHECK(stats_are(1, 0, 0, 3), STATS_FMT, STATS_ARGS);
	CHECK(u->channels.pool_len == pool, "pool %u -> %u", pool,
	      u->channels.pool_len);
	CHECK(create_channel(u, &again) == 0 && again >= 0,
	      "create after the fault");

	/* Async pipe closed by the guest: EPIPE, tolerated. */
	close(g.async_event.read_fd);
	g.async_event.read_fd = -1;
	CHECK(vhca_channels_post_async(&u->channels, 1, 1, NULL) == -EPIPE,
	      "async post after close");

	/* Pool exhausted, nobody refills: bounded wait, then EMFILE. */
	u->channels.refill_timeout_ms = 100;
	while (!create_channel(u, NULL))
		;
	{
		struct timespec t0, t1;
		int ret;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		ret = create_channel(u, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		CHECK(ret == EMFILE, "empty pool: %s", strerror(ret));
		CHECK(t1.tv_sec - t0.tv_sec < 2, "bounded wait");
	}
	CHECK(atomic_load(&dev->stats.comp_channels) == 4 + pool - 1,
	      STATS_FMT, STATS_ARGS);

	/* The service pipe gone too: EMFILE at once. */
	close(g.service.read_fd);
	g.service.read_fd = -1;
	u->channels.refill_pending = false;
	u->channels.refill_timeout_ms = 5000;
	{
		struct timespec t0, t1;
		int ret;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		ret = create_channel(u, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		CHECK(ret == EMFILE && t1.tv_sec - t0.tv_sec < 2,
		      "no service: %s", strerror(ret));
	}

	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g);
}

/* The provider's service thread: refills on request, on another thread. */
struct service {
	struct vhca_ucontext *u;
	int read_fd;
	atomic_bool stop;
	unsigned int batches, failures;
	struct vhca_fd_pair pairs[64][VHCA_CHANNEL_BATCH];
};

static void *service_thread(void *arg)
{
	struct service *s = arg;

	while (!atomic_load(&s->stop) && s->batches < 64) {
		struct pollfd pfd = { .fd = s->read_fd, .events = POLLIN };
		struct vhca_add_channels_cmd add = { 0 };
		char byte;

		if (poll(&pfd, 1, 20) != 1 || read(s->read_fd, &byte, 1) != 1)
			continue;
		/* No CHECK here: the counters belong to the main thread. */
		add.num_channels = VHCA_CHANNEL_BATCH;
		for (int i = 0; i < VHCA_CHANNEL_BATCH; i++) {
			if (try_open_pair(&s->pairs[s->batches][i]))
				s->failures++;
			add.channels[i] = s->pairs[s->batches][i];
		}
		if (add_channels_as(s->u, gettid(), &add, 0))
			s->failures++;
		for (int i = 0; i < VHCA_CHANNEL_BATCH; i++) {
			close(s->pairs[s->batches][i].write_fd);
			s->pairs[s->batches][i].write_fd = -1;
		}
		s->batches++;
	}
	return NULL;
}

static void test_refill(void)
{
	static struct service s;
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	unsigned int created = 0;
	pthread_t thread;
	int ret;

	s.u = u;
	s.read_fd = g.service.read_fd;
	atomic_init(&s.stop, false);
	ret = pthread_create(&thread, NULL, service_thread, &s);
	REQUIRE(ret == 0, "pthread_create");
	for (int i = 0; i < 40; i++)
		created += !create_channel(u, NULL);
	CHECK(created == 40, "%u of 40 channels created", created);
	CHECK(atomic_load(&dev->stats.comp_channels) == 40, STATS_FMT,
	      STATS_ARGS);
	atomic_store(&s.stop, true);
	pthread_join(thread, NULL);
	CHECK(s.batches >= 4 && !s.failures, "batches %u failures %u",
	      s.batches, s.failures);
	CHECK(u->channels.pool_len <= VHCA_CHANNEL_POOL_MAX, "pool %u",
	      u->channels.pool_len);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	for (unsigned int b = 0; b < s.batches; b++)
		for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
			close_pair(&s.pairs[b][i]);
	close_guest_fds(&g);
}

static void test_add_channels_errors(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u;
	struct vhca_add_channels_cmd add;
	struct vhca_fd_pair pairs[VHCA_CHANNEL_BATCH];
	unsigned int pool, fds_before;
	int ret;

	u = vhca_cmd_open(dev);
	REQUIRE(u, "open");
	open_guest_fds(&g, 2);
	ret = get_context(u, &g, &(struct get_context_resp){ 0 });
	REQUIRE(ret == 0, "GET_CONTEXT");
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		open_pair(&pairs[i]);
	fds_before = open_fds();
	pool = u->channels.pool_len;

	memset(&add, 0, sizeof(add));
	add.num_channels = 2;
	add.channels[0] = pairs[0];
	add.channels[1] = pairs[1];
	CHECK(add_channels_as(u, gettid(), &add, 8) == EINVAL, "out_words");
	add.num_channels = 0;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL, "0 channels");
	add.num_channels = VHCA_CHANNEL_BATCH + 1;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL, "too many");
	add.num_channels = 2;
	add.reserved = 1;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL, "reserved");
	add.reserved = 0;
	add.channels[1].write_fd = add.channels[1].read_fd;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL,
	      "second pair bad");
	add.channels[1] = pairs[1];
	add.channels[1].read_fd = pairs[2].read_fd;
	CHECK(add_channels_as(u, gettid(), &add, 0) == EINVAL,
	      "mismatched ends");
	CHECK(u->channels.pool_len == pool && open_fds() == fds_before,
	      "a failed ADD_CHANNELS kept something");

	add.channels[1] = pairs[1];
	CHECK(add_channels_as(u, gettid(), &add, 0) == 0, "ADD_CHANNELS");
	CHECK(u->channels.pool_len == pool + 2, "pool %u",
	      u->channels.pool_len);

	/* Fill the pool to its cap, then one more batch is refused. */
	add.num_channels = VHCA_CHANNEL_BATCH;
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		add.channels[i] = pairs[i];
	while (u->channels.pool_len + VHCA_CHANNEL_BATCH <=
	       VHCA_CHANNEL_POOL_MAX) {
		ret = add_channels_as(u, gettid(), &add, 0);
		REQUIRE(ret == 0, "filling the pool");
	}
	CHECK(add_channels_as(u, gettid(), &add, 0) == ENOSPC, "pool full");

	vhca_cmd_release(u);
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		close_pair(&pairs[i]);
	close_guest_fds(&g);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
}

/*
 * A context belongs to the process that ran GET_CONTEXT.  The owner here
 * is a forked child (its memory receives the responses; it inherited our
 * pipes under the same numbers), so we are the foreign process; once the
 * child dies the context refuses everything with EIO.
 */
static void test_ownership(void)
{
	static struct get_context_resp child_resp;
	static struct ib_uverbs_alloc_pd_resp child_pd;
	struct ib_uverbs_alloc_pd ap = { .response = (uintptr_t)&child_pd };
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u;
	struct cmd_buf c;
	int status, ret;
	size_t len;
	pid_t child;

	u = vhca_cmd_open(dev);
	REQUIRE(u, "open");
	open_guest_fds(&g, VHCA_CHANNEL_BATCH);
	child = fork();
	REQUIRE(child >= 0, "fork");
	if (!child) {
		pause();
		_exit(0);
	}

	ret = get_context_as(u, child, &g, sizeof(g), &child_resp);
	CHECK(ret == 0, "GET_CONTEXT for the child: %s", strerror(ret));
	len = frame(&c, IB_USER_VERBS_CMD_ALLOC_PD, &ap, sizeof(ap), NULL, 0,
		    sizeof(child_pd));
	CHECK(submit_as(u, child, &c, len) == 0, "owner's ALLOC_PD");
	CHECK(submit(u, &c, len) == EACCES, "foreign ALLOC_PD");
	CHECK(submit_as(u, 1, &c, len) == EACCES, "pid 1's ALLOC_PD");
	CHECK(get_context_as(u, gettid(), &g, sizeof(g), &child_resp) ==
		      EACCES,
	      "foreign GET_CONTEXT");
	CHECK(stats_are(1, 1, 0, 0), STATS_FMT, STATS_ARGS);

	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	CHECK(submit_as(u, child, &c, len) == EIO, "dead owner's pid");
	CHECK(submit(u, &c, len) == EIO, "anyone, after the owner died");
	CHECK(create_channel(u, NULL) == EIO, "channels after owner died");

	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	close_guest_fds(&g);
}

/* Threads of the owner share its context, serialised per command. */
struct hammer {
	struct vhca_ucontext *u;
	uint32_t pd;
	unsigned int errors;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	static char buf[4096];

	for (int i = 0; i < 200; i++) {
		struct ib_uverbs_reg_mr_resp r;
		uint32_t pd;

		if (alloc_pd(h->u, &pd) || dealloc_pd(h->u, pd))
			h->errors++;
		if (reg_mr(h->u, h->pd, buf, sizeof(buf), 0, &r) ||
		    dereg_mr(h->u, r.mr_handle))
			h->errors++;
	}
	return NULL;
}

static void test_threads(void)
{
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	struct hammer h[4];
	pthread_t t[4];
	uint32_t pd;
	int ret;

	ret = alloc_pd(u, &pd);
	REQUIRE(ret == 0, "alloc_pd");
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ .u = u, .pd = pd };
		ret = pthread_create(&t[i], NULL, hammer_thread, &h[i]);
		REQUIRE(ret == 0, "pthread_create");
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(!h[i].errors, "thread %d: %u errors", i, h[i].errors);
	}
	CHECK(stats_are(1, 1, 0, 0), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u);
	close_guest_fds(&g);
}

/* Release with everything held: all of it goes, counts exact. */
static void test_release_frees_all(void)
{
	unsigned int fds_before = open_fds();
	struct vhca_alloc_ucontext_cmd g;
	struct vhca_ucontext *u = open_context(&g);
	static char buf[1 << 16];
	uint32_t pd[3];
	int ret = 0;

	for (int i = 0; i < 3; i++)
		ret |= alloc_pd(u, &pd[i]);
	for (int i = 0; i < 50; i++)
		ret |= reg_mr(u, pd[i % 3], buf + i, 100, 0, NULL);
	for (int i = 0; i < 5; i++)
		ret |= create_channel(u, NULL);
	CHECK(ret == 0, "resources");
	CHECK(stats_are(1, 3, 50, 5), STATS_FMT, STATS_ARGS);
	vhca_cmd_release(u);
	CHECK(stats_are(0, 0, 0, 0), STATS_FMT, STATS_ARGS);
	CHECK(atomic_load(&dev->open_files) == 0, "open_files");
	close_guest_fds(&g);
	CHECK(open_fds() == fds_before, "fds %u -> %u", fds_before,
	      open_fds());
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	/* vhcad ignores SIGPIPE: a guest may close its pipes at any time. */
	signal(SIGPIPE, SIG_IGN);
	unmapped = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	REQUIRE(unmapped != MAP_FAILED, "mmap");
	munmap(unmapped, page);
	setup_device();

	test_before_context();
	test_framing();
	test_get_context();
	test_get_context_errors();
	test_query_device();
	test_query_port();
	test_pds();
	test_mrs();
	test_rereg_mr();
	test_keys();
	test_channels();
	test_refill();
	test_add_channels_errors();
	test_ownership();
	test_threads();
	test_release_frees_all();

	CHECK(stats_are(0, 0, 0, 0), "at exit: " STATS_FMT, STATS_ARGS);
	CHECK(atomic_load(&dev->open_files) == 0, "open_files at exit");
	pthread_rwlock_destroy(&pf.lock);
	return test_report();
}
