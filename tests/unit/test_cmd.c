// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The uverbs command path driven in-process: vhca_cmd_open/write/release
 * against a device built here, with this process as the guest (response
 * pointers are our memory, fds our pipes).  Every command's happy path,
 * every malformed input, and exact resource counts after release.
 */
#include "cmd_harness.h"

TEST_COUNTERS;

void test_before_context(void)
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

void test_framing(void)
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

void test_get_context(void)
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

void test_get_context_errors(void)
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

void test_query_device(void)
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

void test_query_port(void)
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
