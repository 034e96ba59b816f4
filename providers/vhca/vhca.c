// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: registration with libibverbs, device and context
 * lifecycle.
 *
 * libibverbs opens /dev/infiniband/uverbsN, which vhcad creates as a marker
 * (the numbers of /dev/full), and passes it to alloc_context as cmd_fd.
 * Before anything is sent we replace that fd, under the same number, with
 * the device's command file <sysfs>/class/infiniband_verbs/uverbsN/vhca_cmd;
 * from then on libibverbs' write()-ABI commands reach vhcad.  The command
 * file answers every ioctl() with ENOTTY, so libibverbs' ioctl probe marks
 * the ioctl interface absent and it uses write() and sysfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rdma/ib_user_ioctl_verbs.h>

#include "vhca.h"

/* GET_CONTEXT: core command + vhca udata, core response + vhca udata */
struct vhca_get_context_cmd {
	struct ibv_get_context ibv_cmd;
	struct vhca_alloc_ucontext_cmd drv;
};
static_assert(offsetof(struct vhca_get_context_cmd, drv) ==
		      sizeof(struct ibv_get_context),
	      "udata must directly follow the core command");
static_assert(sizeof(struct vhca_get_context_cmd) % 4 == 0,
	      "write-ABI commands are a whole number of words");

union vhca_get_context_resp {
	struct ib_uverbs_get_context_resp ibv_resp;
	struct {
		__u32 async_fd;
		__u32 num_comp_vectors;
		struct vhca_alloc_ucontext_resp drv;
	} full;
};
static_assert(offsetof(union vhca_get_context_resp, full.drv) ==
		      sizeof(struct ib_uverbs_get_context_resp),
	      "udata must directly follow the core response");
static_assert(offsetof(union vhca_get_context_resp, full.async_fd) ==
		      offsetof(struct ib_uverbs_get_context_resp, async_fd),
	      "bad GET_CONTEXT response layout");
static_assert(sizeof(union vhca_get_context_resp) % 4 == 0,
	      "write-ABI responses are a whole number of words");

static void vhca_free_context(struct ibv_context *ibctx);

static const struct verbs_match_ent vhca_match_table[] = {
	VERBS_NAME_MATCH("vhca", NULL),
	{ .kind = VERBS_MATCH_SENTINEL },
};

/*
 * Limits of a device that predates the max_send_sge/max_recv_sge fields of
 * the GET_CONTEXT response (it answers 0): its ibv_query_device max_sge.
 */
#define VHCA_DEFAULT_MAX_SGE 16

/*
 * cq_event is left to libibverbs: completion events arrive through the
 * channel pipe and ibv_get_cq_event()/ibv_ack_cq_events() need no
 * provider help.
 */
static const struct verbs_context_ops vhca_ctx_ops = {
	.advise_mr = vhca_advise_mr,
	.alloc_dm = vhca_alloc_dm,
	.alloc_pd = vhca_alloc_pd,
	.create_ah = vhca_create_ah,
	.create_cq = vhca_create_cq,
	.create_cq_ex = vhca_create_cq_ex,
	.create_qp = vhca_create_qp,
	.create_qp_ex = vhca_create_qp_ex,
	.create_srq = vhca_create_srq,
	.dealloc_pd = vhca_dealloc_pd,
	.dereg_mr = vhca_dereg_mr,
	.destroy_ah = vhca_destroy_ah,
	.destroy_cq = vhca_destroy_cq,
	.destroy_qp = vhca_destroy_qp,
	.destroy_srq = vhca_destroy_srq,
	.free_context = vhca_free_context,
	.free_dm = vhca_free_dm,
	.modify_qp = vhca_modify_qp,
	.modify_srq = vhca_modify_srq,
	.poll_cq = vhca_poll_cq,
	.post_recv = vhca_post_recv,
	.post_send = vhca_post_send,
	.post_srq_recv = vhca_post_srq_recv,
	.query_device_ex = vhca_query_device_ex,
	.query_port = vhca_query_port,
	.query_qp = vhca_query_qp,
	.query_rt_values = vhca_query_rt_values,
	.query_srq = vhca_query_srq,
	.reg_dm_mr = vhca_reg_dm_mr,
	.reg_mr = vhca_reg_mr,
	.attach_mcast = ibv_cmd_attach_mcast,
	.detach_mcast = ibv_cmd_detach_mcast,
	.rereg_mr = vhca_rereg_mr,
	.req_notify_cq = vhca_req_notify_cq,
	.resize_cq = vhca_resize_cq,
};

/*
 * The data-path half of a context: the doorbell page (a sealed memfd) and
 * the engine's wake eventfd.  Returns 0 or -1 with errno set; on failure
 * nothing is left open.
 */
static int vhca_db_page_open(struct vhca_context *ctx)
{
	struct vhca_qbuf page;
	int err;

	if (vhca_qbuf_alloc(&page,
			    vhca_page_align(sizeof(struct vhca_ctx_page)),
			    "vhca-ctx"))
		return -1;

	ctx->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->wake_fd < 0)
		goto err;
	err = pthread_spin_init(&ctx->db_lock, PTHREAD_PROCESS_PRIVATE);
	if (err) {
		vhca_close_fd(&ctx->wake_fd);
		errno = err;
		goto err;
	}

	ctx->db_page = page.addr;
	ctx->db_page_size = page.size;
	ctx->db_page_fd = page.fd;
	return 0;

err:
	err = errno;
	vhca_qbuf_free(&page);
	errno = err;
	return -1;
}

/*
 * In a VM the device is woken by a write to the VF's doorbell register:
 * its BAR0 mapped (a page: the register may sit inside it).  Returns 0
 * or -1 with errno set.
 */
static int vhca_map_doorbell(struct vhca_context *ctx,
			     const struct vhca_alloc_ucontext_resp *resp)
{
	long page = sysconf(_SC_PAGESIZE);
	char path[sizeof(resp->doorbell_path) + 1];
	void *map;
	int fd;

	memcpy(path, resp->doorbell_path, sizeof(resp->doorbell_path));
	path[sizeof(resp->doorbell_path)] = '\0';
	if (resp->doorbell_offset > (uint32_t)page - 4 ||
	    resp->doorbell_offset % 4) {
		errno = EPROTO;
		return -1;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	map = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   0);
	close(fd);
	if (map == MAP_FAILED)
		return -1;
	ctx->mmio_page = map;
	ctx->mmio_doorbell =
		(volatile uint32_t *)((char *)map + resp->doorbell_offset);
	ctx->mmio_doorbell_value = resp->doorbell_value;
	ctx->vm = true;
	return 0;
}

static void vhca_db_page_close(struct vhca_context *ctx)
{
	struct vhca_qbuf page = {
		.addr = ctx->db_page,
		.size = ctx->db_page_size,
		.fd = ctx->db_page_fd,
	};

	if (!ctx->db_page)
		return;
	vhca_qbuf_free(&page);
	vhca_close_fd(&ctx->wake_fd);
	if (ctx->mmio_page)
		munmap(ctx->mmio_page, (size_t)sysconf(_SC_PAGESIZE));
	ctx->mmio_page = NULL;
	ctx->mmio_doorbell = NULL;
	pthread_spin_destroy(&ctx->db_lock);
	ctx->db_page = NULL;
	ctx->db_page_fd = -1;
}

/*
 * Puts the device's command file in place of the marker @cmd_fd, keeping
 * the number.  We own @cmd_fd: on failure it is closed, errno is set and
 * -1 returned.
 */
static int vhca_attach_cmd_file(struct ibv_device *ibdev, int cmd_fd)
{
	char path[PATH_MAX];
	int fd = -1;
	int err;
	int n;

	if (cmd_fd < 0) {
		errno = ENODEV; /* not a sysfs (uverbs) device */
		return -1;
	}

	/* dev_path is <sysfs>/class/infiniband_verbs/uverbsN */
	n = snprintf(path, sizeof(path), "%s/%s", ibdev->dev_path,
		     VHCA_CMD_FILE_NAME);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		goto err;
	}

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		goto err;

	if (dup3(fd, cmd_fd, O_CLOEXEC) < 0)
		goto err;

	close(fd);
	return 0;

err:
	err = errno;
	if (fd >= 0)
		close(fd);
	close(cmd_fd);
	errno = err;
	return -1;
}

static struct verbs_context *vhca_alloc_context(struct ibv_device *ibdev,
						int cmd_fd, void *private_data)
{
	struct vhca_fd_pair async = { .read_fd = -1, .write_fd = -1 };
	struct vhca_fd_pair service = { .read_fd = -1, .write_fd = -1 };
	union vhca_get_context_resp resp;
	struct vhca_get_context_cmd cmd;
	struct vhca_fd_pair *chan = cmd.drv.channels;
	struct vhca_context *ctx;
	unsigned int num_chan = 0;
	unsigned int i;
	int ret;
	int err;

	(void)private_data;

	if (vhca_attach_cmd_file(ibdev, cmd_fd))
		return NULL;

	/* Owns cmd_fd from here on; closes it itself if it fails. */
	ctx = verbs_init_and_alloc_context(ibdev, cmd_fd, struct vhca_context,
					   ibv_ctx, RDMA_DRIVER_UNKNOWN);
	if (!ctx)
		return NULL;
	ctx->service.read_fd = -1;
	ctx->service.quit_fd = -1;
	ctx->db_page_fd = -1;
	ctx->wake_fd = -1;
	ctx->async_write_fd = -1;
	atomic_init(&ctx->lost, false);
	pthread_mutex_init(&ctx->cq_lock, NULL);
	pthread_mutex_init(&ctx->odp_lock, NULL);

	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));

	if (vhca_fd_pair_open(&async) || vhca_fd_pair_open(&service) ||
	    vhca_db_page_open(ctx))
		goto err;
	/*
	 * Seed the device's channel pool.  A short (even empty) batch is
	 * fine: the device asks for more through the service pipe.
	 */
	ret = vhca_channel_batch_open(chan, VHCA_CHANNEL_BATCH);
	num_chan = ret < 0 ? 0 : (unsigned int)ret;
	if (vhca_pool_track(&ctx->pool, chan, num_chan))
		goto err;

	cmd.drv.abi_version = VHCA_UVERBS_ABI_VERSION;
	cmd.drv.num_channels = num_chan;
	cmd.drv.async_event = async;
	cmd.drv.service = service;
	cmd.drv.ctx_page_fd = ctx->db_page_fd;
	cmd.drv.wake_fd = ctx->wake_fd;

	ret = ibv_cmd_get_context(&ctx->ibv_ctx, &cmd.ibv_cmd, sizeof(cmd),
				  &resp.ibv_resp, sizeof(resp));

	/*
	 * Success or not, the device has made its own copies of the write
	 * ends it keeps.  Ours of the service pipe goes, so that it reads
	 * EOF if the device dies; the others stay, so that theirs never do
	 * (lost.c).
	 */
	vhca_fd_pair_close_write(&service);
	if (ret) {
		vhca_fd_pair_close_write(&async);
		for (i = 0; i < num_chan; i++)
			vhca_fd_pair_close_write(&chan[i]);
	} else {
		ctx->async_write_fd = async.write_fd;
		async.write_fd = -1;
		vhca_pool_keep_writers(&ctx->pool, chan, num_chan);
	}

	if (ret) {
		errno = ret;
		goto err;
	}

	/* libibverbs took resp.async_fd as context->async_fd. */
	if (ctx->ibv_ctx.context.async_fd != async.read_fd) {
		ctx->ibv_ctx.context.async_fd = -1;
		errno = EPROTO;
		goto err;
	}
	async.read_fd = -1; /* closed by verbs_uninit_context() now */

	if (resp.full.drv.abi_version != VHCA_UVERBS_ABI_VERSION) {
		errno = EPROTO;
		goto err;
	}
	if ((resp.full.drv.flags & VHCA_CTX_RESP_VM) &&
	    vhca_map_doorbell(ctx, &resp.full.drv))
		goto err;
	ctx->max_inline_data = resp.full.drv.max_inline_data;
	ctx->max_send_sge = resp.full.drv.max_send_sge ?
				    resp.full.drv.max_send_sge :
				    VHCA_DEFAULT_MAX_SGE;
	ctx->max_recv_sge = resp.full.drv.max_recv_sge ?
				    resp.full.drv.max_recv_sge :
				    VHCA_DEFAULT_MAX_SGE;

	ret = vhca_service_start(&ctx->service, ctx->ibv_ctx.context.cmd_fd,
				 &service, &ctx->pool, vhca_context_lost, ctx);
	if (ret) {
		errno = ret;
		goto err;
	}

	/*
	 * The channel read ends now belong to the device's pool: it returns
	 * them to libibverbs from CREATE_COMP_CHANNEL, which closes them in
	 * ibv_destroy_comp_channel().  Only vhca_pool_close_all() at
	 * free_context may close the ones still unused.
	 */
	verbs_set_ops(&ctx->ibv_ctx, &vhca_ctx_ops);
	return &ctx->ibv_ctx;

err:
	err = errno;
	/* Closes cmd_fd first, so the device drops the context at once. */
	verbs_uninit_context(&ctx->ibv_ctx);
	vhca_fd_pair_close(&async);
	vhca_fd_pair_close(&service);
	vhca_channel_batch_close(chan, num_chan);
	vhca_pool_free(&ctx->pool);
	vhca_db_page_close(ctx);
	vhca_close_fd(&ctx->async_write_fd);
	pthread_mutex_destroy(&ctx->cq_lock);
	pthread_mutex_destroy(&ctx->odp_lock);
	free(ctx);
	errno = err;
	return NULL;
}

static void vhca_free_context(struct ibv_context *ibctx)
{
	struct vhca_context *ctx = to_vctx(ibctx);

	bool returned;

	/* Before cmd_fd goes away: the thread writes commands on it. */
	vhca_service_stop(&ctx->service);
	/*
	 * The device lists the channels it never handed out; we close those.
	 * A device without the command leaves us the old heuristic (after
	 * cmd_fd is closed); any other failure closes nothing: a leaked pipe
	 * is harmless, closing an application's fd is not.
	 */
	returned = !vhca_pool_return(&ctx->pool, ctx->ibv_ctx.context.cmd_fd);
	if (!returned && errno != EOPNOTSUPP)
		vhca_pool_free(&ctx->pool);
	/* Closes cmd_fd (the device drops the context) and async_fd. */
	verbs_uninit_context(&ctx->ibv_ctx);
	if (!returned)
		vhca_pool_close_all(&ctx->pool); /* no-op after pool_free */
	vhca_db_page_close(ctx);
	vhca_close_fd(&ctx->async_write_fd);
	pthread_mutex_destroy(&ctx->cq_lock);
	pthread_mutex_destroy(&ctx->odp_lock);
	free(ctx);
}

static struct verbs_device *vhca_alloc_device(struct verbs_sysfs_dev *sysfs_dev)
{
	struct vhca_device *dev;

	(void)sysfs_dev;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;

	return &dev->ibv_dev;
}

static void vhca_uninit_device(struct verbs_device *verbs_device)
{
	free(vhca_container_of(verbs_device, struct vhca_device, ibv_dev));
}

static const struct verbs_device_ops vhca_dev_ops = {
	.name = "vhca",
	.match_min_abi_version = VHCA_UVERBS_ABI_VERSION,
	.match_max_abi_version = VHCA_UVERBS_ABI_VERSION,
	.match_table = vhca_match_table,
	.alloc_device = vhca_alloc_device,
	.uninit_device = vhca_uninit_device,
	.alloc_context = vhca_alloc_context,
};

VERBS_PROVIDER_DRIVER(vhca, vhca_dev_ops)
