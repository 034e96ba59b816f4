// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The harness of test_cmd (cmd_harness.h). */
#include "cmd_harness.h"

struct vhca_pf pf;
struct vhca_dev *dev;
long page;
void *unmapped;	/* a page-sized hole in our address space */

/* Device and plumbing */

void setup_device(void)
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

unsigned int open_fds(void)
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

bool stats_are(unsigned int contexts, unsigned int pds,
	       unsigned int mrs, unsigned int channels)
{
	return atomic_load(&dev->stats.contexts) == contexts &&
	       atomic_load(&dev->stats.pds) == pds &&
	       atomic_load(&dev->stats.mrs) == mrs &&
	       atomic_load(&dev->stats.comp_channels) == channels;
}


/* 0 or the positive errno, like write(2) on the command file. */
int submit_as(struct vhca_ucontext *u, pid_t tid, const void *buf,
	      size_t len)
{
	ssize_t ret = vhca_cmd_write(u, tid, buf, len);

	if (ret < 0)
		return (int)-ret;
	return ret == (ssize_t)len ? 0 : EIO;
}

int submit(struct vhca_ucontext *u, const void *buf, size_t len)
{
	return submit_as(u, gettid(), buf, len);
}


size_t frame(struct cmd_buf *c, uint32_t command, const void *core,
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

int legacy(struct vhca_ucontext *u, uint32_t command, const void *core,
	   size_t core_len, size_t out_len)
{
	struct cmd_buf c;
	size_t len = frame(&c, command, core, core_len, NULL, 0, out_len);

	return submit(u, &c, len);
}


size_t frame_ex(struct ex_buf *c, uint32_t command, size_t in_len,
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
int try_open_pair(struct vhca_fd_pair *pair)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return -1;
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	pair->read_fd = fds[0];
	pair->write_fd = fds[1];
	return 0;
}

void open_pair(struct vhca_fd_pair *pair)
{
	int ret = try_open_pair(pair);

	REQUIRE(ret == 0, "pipe2: %s", strerror(errno));
}

void close_pair(struct vhca_fd_pair *pair)
{
	if (pair->read_fd >= 0)
		close(pair->read_fd);
	if (pair->write_fd >= 0)
		close(pair->write_fd);
	pair->read_fd = pair->write_fd = -1;
}

void open_guest_fds(struct vhca_alloc_ucontext_cmd *u,
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
void close_guest_writers(struct vhca_alloc_ucontext_cmd *u)
{
	close(u->async_event.write_fd);
	u->async_event.write_fd = -1;
	for (unsigned int i = 0; i < u->num_channels; i++) {
		close(u->channels[i].write_fd);
		u->channels[i].write_fd = -1;
	}
}

void close_guest_fds(struct vhca_alloc_ucontext_cmd *u)
{
	close_pair(&u->async_event);
	close_pair(&u->service);
	for (unsigned int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		close_pair(&u->channels[i]);
}


int get_context_as(struct vhca_ucontext *u, pid_t tid,
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

int get_context(struct vhca_ucontext *u,
		const struct vhca_alloc_ucontext_cmd *udata,
		struct get_context_resp *resp)
{
	return get_context_as(u, gettid(), udata, sizeof(*udata), resp);
}

/* A live context with a full channel pool, writers already dropped. */
struct vhca_ucontext *open_context(struct vhca_alloc_ucontext_cmd *g)
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

int alloc_pd_at(struct vhca_ucontext *u, void *resp_ptr,
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

int alloc_pd(struct vhca_ucontext *u, uint32_t *handle)
{
	return alloc_pd_at(u, NULL, handle);
}

int dealloc_pd(struct vhca_ucontext *u, uint32_t handle)
{
	struct ib_uverbs_dealloc_pd core = { .pd_handle = handle };

	return legacy(u, IB_USER_VERBS_CMD_DEALLOC_PD, &core, sizeof(core), 0);
}

int reg_mr_full(struct vhca_ucontext *u, uint32_t pd, const void *addr,
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

int reg_mr(struct vhca_ucontext *u, uint32_t pd, const void *addr,
	   uint64_t len, uint32_t access,
	   struct ib_uverbs_reg_mr_resp *out)
{
	return reg_mr_full(u, pd, addr, len, (uintptr_t)addr, access, NULL,
			   out);
}

int dereg_mr(struct vhca_ucontext *u, uint32_t handle)
{
	struct ib_uverbs_dereg_mr core = { .mr_handle = handle };

	return legacy(u, IB_USER_VERBS_CMD_DEREG_MR, &core, sizeof(core), 0);
}

int create_channel_at(struct vhca_ucontext *u, void *resp_ptr, int *fd)
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

int create_channel(struct vhca_ucontext *u, int *fd)
{
	return create_channel_at(u, NULL, fd);
}

int add_channels_as(struct vhca_ucontext *u, pid_t tid,
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
void guest_close_channel(struct vhca_alloc_ucontext_cmd *g, int fd)
{
	for (int i = 0; i < VHCA_CHANNEL_BATCH; i++)
		if (g->channels[i].read_fd == fd)
			g->channels[i].read_fd = -1;
	close(fd);
}

/* Bytes waiting in a (service) pipe, drained. */
ssize_t drain(int fd, char *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 0) != 1)
		return 0;
	return read(fd, buf, len);
}

/* Tests */
