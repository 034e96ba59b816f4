// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* A fake VM: QEMU's and a guest driver's side of a VF (fake_vm.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/netlink.h>

#include <infiniband/verbs.h>
#include <vhca/mgmt.h>

#include "fake_vm.h"

#define HANDSHAKE_MS 5000
#define FIRST_GPA (64u * 1024)	/* gpa 0 is never an object of ours */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int fake_vm_memfd(uint64_t size, int seals)
{
	int fd = memfd_create("fake-vm-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) ||
	    (seals && fcntl(fd, F_ADD_SEALS, seals))) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

/* ---- QEMU's part ------------------------------------------------------------- */

int fake_vm_attach_req(const char *run_dir, uint32_t vf, uint32_t flags,
		       int ram_fd, uint64_t ram_size)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct {
		struct nlmsghdr hdr;
		struct vhca_mgmt_vm vm;
	} req = {
		.hdr = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct vhca_mgmt_vm)),
			 .nlmsg_type = VHCA_MGMT_ATTACH_VM,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			 .nlmsg_seq = 1 },
		.vm = { .vf = vf, .flags = flags, .ram_size = ram_size },
	};
	struct {
		struct nlmsghdr hdr;
		struct nlmsgerr err;
	} ack;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pollfd pfd = { .events = POLLIN };
	int fd, ret = -EPROTO;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", run_dir,
		 VHCA_MGMT_SOCK_NAME);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (ram_fd >= 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &ram_fd, sizeof(int));
	}
	pfd.fd = fd;
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof(req) &&
	    poll(&pfd, 1, 10000) == 1 &&
	    recv(fd, &ack, sizeof(ack), 0) == (ssize_t)sizeof(ack) &&
	    ack.hdr.nlmsg_type == NLMSG_ERROR && ack.err.error <= 0)
		ret = ack.err.error;
	close(fd);
	return ret;
}

/* One ivshmem message: an 8-byte value and maybe a descriptor. */
static int recv_msg(int sock, int64_t *value, int *fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = value, .iov_len = sizeof(*value) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;

	*fd = -1;
	if (poll(&pfd, 1, HANDSHAKE_MS) != 1 ||
	    recvmsg(sock, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC) !=
		    (ssize_t)sizeof(*value))
		return -EPROTO;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)) && *fd < 0)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

/*
 * QEMU's ivshmem client (docs/specs/ivshmem-spec.rst) against what
 * driver/vm_attach.c sends: version 0, our id, -1 with the BAR, peer 0's
 * two vectors, then our own two.
 */
static int handshake(struct fake_vm *vm)
{
	int64_t v;
	int fd, ret;

	ret = recv_msg(vm->sock, &v, &fd);
	if (ret || v != 0 || fd >= 0)
		goto bad;
	ret = recv_msg(vm->sock, &vm->peer_id, &fd);
	if (ret || vm->peer_id <= VHCA_DEVICE_PEER || fd >= 0)
		goto bad;
	ret = recv_msg(vm->sock, &v, &vm->bar_fd);
	if (ret || v != -1 || vm->bar_fd < 0)
		goto bad;
	for (int i = 0; i < VHCA_VECTORS; i++) {
		ret = recv_msg(vm->sock, &v, &vm->doorbell[i]);
		if (ret || v != VHCA_DEVICE_PEER || vm->doorbell[i] < 0)
			goto bad;
	}
	for (int i = 0; i < VHCA_VECTORS; i++) {
		ret = recv_msg(vm->sock, &v, &vm->interrupt[i]);
		if (ret || v != vm->peer_id || vm->interrupt[i] < 0)
			goto bad;
	}
	return 0;
bad:
	if (fd >= 0)
		close(fd);
	fprintf(stderr, "fake_vm: %s: the ivshmem handshake is not as specified\n",
		vm->name);
	return -EPROTO;
}

static int map_bar(struct fake_vm *vm)
{
	const struct vhca_bar_header *h;

	vm->bar = mmap(NULL, VHCA_BAR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->bar_fd, 0);
	if (vm->bar == MAP_FAILED) {
		vm->bar = NULL;
		return -EPROTO;
	}
	h = fake_vm_header(vm);
	if (h->magic != VHCA_BAR_MAGIC || h->version != VHCA_BAR_VERSION ||
	    h->state != VHCA_BAR_READY || h->vf_index != vm->vf ||
	    h->mailbox_offset != VHCA_BAR_MAILBOX_OFFSET ||
	    h->events_offset != VHCA_BAR_EVENTS_OFFSET ||
	    h->events_count != VHCA_BAR_EVENTS_COUNT) {
		fprintf(stderr, "fake_vm: %s: the BAR's header is not as specified\n",
			vm->name);
		return -EPROTO;
	}
	return 0;
}

int fake_vm_start(struct fake_vm *vm, const char *run_dir, unsigned int vf,
		  uint64_t ram_size)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->vf = vf;
	vm->sock = vm->bar_fd = -1;
	for (int i = 0; i < VHCA_VECTORS; i++)
		vm->doorbell[i] = vm->interrupt[i] = -1;
	vm->timeout_ms = 5000;
	vm->brk = FIRST_GPA;
	snprintf(vm->name, sizeof(vm->name), "vhca0_vf%u", vf);
	vm->ram_fd = fake_vm_memfd(ram_size, F_SEAL_SHRINK | F_SEAL_GROW);
	if (vm->ram_fd < 0)
		return vm->ram_fd;
	vm->ram_size = ram_size;
	vm->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->ram_fd, 0);
	if (vm->ram == MAP_FAILED) {
		vm->ram = NULL;
		fake_vm_stop(vm);
		return -ENOMEM;
	}
	ret = fake_vm_attach_req(run_dir, vf, 0, vm->ram_fd, ram_size);
	if (ret) {
		fake_vm_stop(vm);
		return ret;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/vm/%s.sock",
		 run_dir, vm->name);
	vm->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (vm->sock < 0 ||
	    connect(vm->sock, (struct sockaddr *)&addr, sizeof(addr))) {
		ret = -errno;
		fprintf(stderr, "fake_vm: cannot connect to %s: %s\n",
			addr.sun_path, strerror(errno));
		fake_vm_stop(vm);
		return ret;
	}
	ret = handshake(vm);
	if (!ret)
		ret = map_bar(vm);
	if (ret)
		fake_vm_stop(vm);
	return ret;
}

void fake_vm_stop(struct fake_vm *vm)
{
	/* QEMU's exit: the connection first, as the kernel closes it. */
	if (vm->sock >= 0)
		close(vm->sock);
	vm->sock = -1;
	if (vm->bar)
		munmap(vm->bar, VHCA_BAR_SIZE);
	vm->bar = NULL;
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	vm->ram = NULL;
	for (int i = 0; i < VHCA_VECTORS; i++) {
		if (vm->doorbell[i] >= 0)
			close(vm->doorbell[i]);
		if (vm->interrupt[i] >= 0)
			close(vm->interrupt[i]);
		vm->doorbell[i] = vm->interrupt[i] = -1;
	}
	if (vm->bar_fd >= 0)
		close(vm->bar_fd);
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	vm->bar_fd = vm->ram_fd = -1;
}

void fake_vm_ring_vector(struct fake_vm *vm, unsigned int v)
{
	uint64_t one = 1;

	if (v < VHCA_VECTORS &&
	    write(vm->doorbell[v], &one, sizeof(one)) != sizeof(one)) {
		/* A saturated counter: vhcad has a wake-up pending anyway. */
	}
}

/* ---- guest memory ------------------------------------------------------------ */

uint64_t fake_vm_alloc(struct fake_vm *vm, uint64_t bytes)
{
	uint64_t gpa = vm->brk;
	uint64_t len = (bytes + FAKE_VM_PAGE - 1) & ~(uint64_t)(FAKE_VM_PAGE - 1);

	if (!len || len > vm->ram_size - gpa) {
		fprintf(stderr, "fake_vm: %s: out of RAM (%llu bytes asked)\n",
			vm->name, (unsigned long long)bytes);
		abort();
	}
	vm->brk += len;
	memset(vm->ram + gpa, 0, len);
	return gpa;
}

uint32_t fake_vm_lists(struct fake_vm *vm, const uint64_t *pages,
		       uint32_t npages, uint64_t *lists)
{
	uint32_t nlist = (npages + VHCA_DEVCMD_LIST_ENTRIES - 1) /
			 VHCA_DEVCMD_LIST_ENTRIES;
	uint64_t at = fake_vm_alloc(vm, (uint64_t)nlist * FAKE_VM_PAGE);

	memcpy(vm->ram + at, pages, (size_t)npages * sizeof(*pages));
	for (uint32_t i = 0; i < nlist; i++)
		lists[i] = at + (uint64_t)i * FAKE_VM_PAGE;
	return nlist;
}

uint32_t fake_vm_mem(struct fake_vm *vm, uint64_t gpa, uint64_t size,
		     struct vhca_devcmd_mem *m, uint64_t *lists, uint32_t max)
{
	uint64_t first = gpa & ~(uint64_t)(FAKE_VM_PAGE - 1);
	uint32_t npages = (uint32_t)((gpa - first + size + FAKE_VM_PAGE - 1) /
				     FAKE_VM_PAGE);
	uint64_t *pages = calloc(npages, sizeof(*pages));
	uint32_t nlist;

	if (!pages)
		abort();
	for (uint32_t i = 0; i < npages; i++)
		pages[i] = first + (uint64_t)i * FAKE_VM_PAGE;
	if ((npages + VHCA_DEVCMD_LIST_ENTRIES - 1) / VHCA_DEVCMD_LIST_ENTRIES >
	    max)
		abort();
	nlist = fake_vm_lists(vm, pages, npages, lists);
	free(pages);
	*m = (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_PAGES, .fd = -1,
				       .size = size, .npages = npages,
				       .nlist = nlist };
	return nlist;
}

/* ---- the mailbox ------------------------------------------------------------- */

int fake_vm_raw(struct fake_vm *vm, const void *bytes, size_t len,
		uint32_t in_len, void *answer, size_t cap, size_t *answer_len)
{
	struct vhca_bar_mailbox *m = fake_vm_mailbox(vm);
	_Atomic uint32_t *answered = (_Atomic uint32_t *)&m->answered;
	uint64_t deadline = now_us() + (uint64_t)vm->timeout_ms * 1000;
	uint32_t seq, out_len;
	long sleep_ns = 2000;

	if (len > sizeof(m->in))
		len = sizeof(m->in);
	memcpy(m->in, bytes, len);
	m->in_len = in_len;
	seq = atomic_load(answered) + 1;
	atomic_store_explicit((_Atomic uint32_t *)&m->request, seq,
			      memory_order_release);
	fake_vm_ring_vector(vm, VHCA_VECTOR_MAILBOX);
	while (atomic_load_explicit(answered, memory_order_acquire) != seq) {
		if (fake_vm_header(vm)->state == VHCA_BAR_GONE)
			return FAKE_VM_GONE;
		if (now_us() > deadline)
			return FAKE_VM_NO_ANSWER;
		nanosleep(&(struct timespec){ .tv_nsec = sleep_ns }, NULL);
		if (sleep_ns < 1000000)
			sleep_ns *= 2;
	}
	out_len = m->out_len;
	*answer_len = out_len;
	if (out_len > sizeof(m->out))
		out_len = sizeof(m->out);
	memcpy(answer, m->out, out_len < cap ? out_len : cap);
	vm->commands++;
	return 0;
}

int fake_vm_call(struct fake_vm *vm, uint16_t op, uint32_t context,
		 const void *body, size_t body_len, const uint64_t *lists,
		 uint32_t nlist, void *out, size_t out_len)
{
	size_t len = sizeof(struct vhca_devcmd_hdr) + body_len +
		     (size_t)nlist * sizeof(uint64_t);
	uint64_t answer[VHCA_MAILBOX_OUT_MAX / 8];
	const struct vhca_devcmd_status *st = (const void *)answer;
	struct vhca_devcmd_hdr *hdr;
	size_t answer_len = 0;
	uint8_t *buf;
	int ret;

	if (len > VHCA_MAILBOX_IN_MAX)
		abort();	/* a test's mistake: the mailbox cannot carry it */
	buf = malloc(len);
	if (!buf)
		abort();
	hdr = (struct vhca_devcmd_hdr *)buf;
	*hdr = (struct vhca_devcmd_hdr){ .op = op,
					 .in_len = (uint16_t)(len - sizeof(*hdr)),
					 .context = context };
	if (body_len)
		memcpy(hdr + 1, body, body_len);
	if (nlist)
		memcpy(buf + sizeof(*hdr) + body_len, lists,
		       (size_t)nlist * sizeof(uint64_t));
	ret = fake_vm_raw(vm, buf, len, (uint32_t)len, answer, sizeof(answer),
			  &answer_len);
	free(buf);
	if (ret)
		return ret;
	if (answer_len < sizeof(*st) ||
	    answer_len != sizeof(*st) + st->out_len ||
	    st->status > 0 || (st->status && st->out_len) ||
	    (!st->status && st->out_len != out_len))
		return FAKE_VM_BAD_ANSWER;
	if (!st->status && out_len)
		memcpy(out, st + 1, out_len);
	return st->status;
}

int fake_vm_query_function(struct fake_vm *vm, struct vhca_devcmd_function *f)
{
	return fake_vm_call(vm, VHCA_DEVCMD_QUERY_FUNCTION, 0, NULL, 0, NULL, 0,
			    f, sizeof(*f));
}

/* ---- objects ------------------------------------------------------------------- */

int fake_ctx_open(struct fake_vm *vm, struct fake_ctx *c, bool data_path)
{
	struct vhca_devcmd_open_context in = { .wake_fd = -1,
					       .cookie = 0x1234 };
	struct vhca_devcmd_context_out out;
	uint64_t lists[1] = { 0 };
	uint32_t nlist = 0;
	int ret;

	memset(c, 0, sizeof(*c));
	if (data_path) {
		in.flags = VHCA_DEVCMD_CTX_DATA_PATH;
		c->page_gpa = fake_vm_alloc(vm, FAKE_VM_PAGE);
		nlist = fake_vm_mem(vm, c->page_gpa, FAKE_VM_PAGE, &in.ctx_page,
				    lists, 1);
	}
	ret = fake_vm_call(vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &in, sizeof(in),
			   lists, nlist, &out, sizeof(out));
	if (ret)
		return ret;
	c->id = out.context;
	c->page = data_path ? fake_vm_va(vm, c->page_gpa) : NULL;
	return 0;
}

int fake_pd_alloc(struct fake_vm *vm, struct fake_ctx *c, uint32_t *pd)
{
	struct vhca_devcmd_handle out;
	int ret = fake_vm_call(vm, VHCA_DEVCMD_ALLOC_PD, c->id, NULL, 0, NULL,
			       0, &out, sizeof(out));

	if (!ret)
		*pd = out.handle;
	return ret;
}

int fake_mr_reg(struct fake_vm *vm, struct fake_ctx *c, uint32_t pd,
		uint64_t gpa, uint64_t len, uint32_t access,
		struct fake_mr *mr)
{
	uint32_t max = (uint32_t)((len / FAKE_VM_PAGE + 2 +
				   VHCA_DEVCMD_LIST_ENTRIES - 1) /
				  VHCA_DEVCMD_LIST_ENTRIES);
	uint64_t *lists = calloc(max, sizeof(*lists));
	struct vhca_devcmd_reg_mr in = {
		.pd_handle = pd, .access = access,
		.addr = gpa % FAKE_VM_PAGE, .length = len, .iova = gpa,
	};
	struct vhca_devcmd_reg_mr_out out;
	uint32_t nlist;
	int ret;

	if (!lists)
		abort();
	nlist = fake_vm_mem(vm, gpa, len, &in.mem, lists, max);
	ret = fake_vm_call(vm, VHCA_DEVCMD_REG_MR, c->id, &in, sizeof(in),
			   lists, nlist, &out, sizeof(out));
	free(lists);
	if (!ret)
		*mr = (struct fake_mr){ .handle = out.handle, .lkey = out.lkey,
					.rkey = out.rkey, .gpa = gpa,
					.len = len };
	return ret;
}

int fake_destroy(struct fake_vm *vm, struct fake_ctx *c, uint16_t op,
		 uint32_t handle)
{
	struct vhca_devcmd_handle in = { .handle = handle };

	return fake_vm_call(vm, op, c->id, &in, sizeof(in), NULL, 0, NULL, 0);
}

int fake_cq_create(struct fake_vm *vm, struct fake_ctx *c, uint32_t count,
		   struct fake_cq *cq)
{
	uint64_t ring = ((uint64_t)count * sizeof(struct vhca_cqe) +
			 FAKE_VM_PAGE - 1) & ~(uint64_t)(FAKE_VM_PAGE - 1);
	uint64_t size = ring + FAKE_VM_PAGE, gpa = fake_vm_alloc(vm, size);
	struct vhca_devcmd_create_cq in = {
		.cqe = count - 1, .channel = VHCA_DEVCMD_NO_CHANNEL,
		.cqe_count = count, .ring_offset = 0, .db_offset = ring,
	};
	struct vhca_devcmd_cq_out out;
	uint64_t lists[4];
	uint32_t nlist = fake_vm_mem(vm, gpa, size, &in.mem, lists, 4);
	int ret = fake_vm_call(vm, VHCA_DEVCMD_CREATE_CQ, c->id, &in,
			       sizeof(in), lists, nlist, &out, sizeof(out));

	if (ret)
		return ret;
	*cq = (struct fake_cq){
		.handle = out.handle, .count = count,
		.ring = fake_vm_va(vm, gpa),
		.db = fake_vm_va(vm, gpa + ring),
	};
	return 0;
}

int fake_qp_create(struct fake_vm *vm, struct fake_ctx *c, uint32_t pd,
		   struct fake_cq *cq, struct fake_qp *qp)
{
	uint64_t gpa = fake_vm_alloc(vm, 3 * FAKE_VM_PAGE);
	struct vhca_devcmd_create_qp in = {
		.pd_handle = pd, .send_cq_handle = cq->handle,
		.recv_cq_handle = cq->handle,
		.max_send_wr = 16, .max_recv_wr = 16,
		.max_send_sge = 4, .max_recv_sge = 2,
		.qp_type = IBV_QPT_RC,
		.sq_offset = 0, .sq_wqe_count = 16, .sq_stride = 256,
		.rq_offset = FAKE_VM_PAGE, .rq_wqe_count = 16, .rq_stride = 64,
		.db_offset = 2 * FAKE_VM_PAGE,
	};
	struct ib_uverbs_create_qp_resp out;
	uint64_t lists[1];
	uint32_t nlist = fake_vm_mem(vm, gpa, 3 * FAKE_VM_PAGE, &in.mem, lists,
				     1);
	int ret = fake_vm_call(vm, VHCA_DEVCMD_CREATE_QP, c->id, &in,
			       sizeof(in), lists, nlist, &out, sizeof(out));

	if (ret)
		return ret;
	*qp = (struct fake_qp){
		.handle = out.qp_handle, .qpn = out.qpn,
		.sq = fake_vm_va(vm, gpa),
		.rq = fake_vm_va(vm, gpa + FAKE_VM_PAGE),
		.db = fake_vm_va(vm, gpa + 2 * FAKE_VM_PAGE),
		.sq_count = 16, .sq_stride = 256,
		.rq_count = 16, .rq_stride = 64,
	};
	return 0;
}

static int modify(struct fake_vm *vm, struct fake_ctx *c,
		  const struct ib_uverbs_modify_qp *m)
{
	return fake_vm_call(vm, VHCA_DEVCMD_MODIFY_QP, c->id, m, sizeof(*m),
			    NULL, 0, NULL, 0);
}

int fake_qp_connect(struct fake_vm *vm, struct fake_ctx *c,
		    struct fake_qp *qp, uint16_t dlid, uint32_t dqpn)
{
	struct ib_uverbs_modify_qp m = {
		.qp_handle = qp->handle, .qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC,
		.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			     IBV_QP_ACCESS_FLAGS,
	};
	int ret = modify(vm, c, &m);

	if (ret)
		return ret;
	m = (struct ib_uverbs_modify_qp){
		.qp_handle = qp->handle, .qp_state = IBV_QPS_RTR,
		.path_mtu = IBV_MTU_4096, .dest_qp_num = dqpn,
		.dest = { .dlid = dlid, .port_num = 1 },
		.max_dest_rd_atomic = 4, .min_rnr_timer = 1,
		.attr_mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			     IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			     IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
	};
	ret = modify(vm, c, &m);
	if (ret)
		return ret;
	m = (struct ib_uverbs_modify_qp){
		.qp_handle = qp->handle, .qp_state = IBV_QPS_RTS,
		.timeout = 10, .retry_cnt = 3, .rnr_retry = 3,
		.max_rd_atomic = 4,
		.attr_mask = IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT |
			     IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			     IBV_QP_MAX_QP_RD_ATOMIC,
	};
	return modify(vm, c, &m);
}

int fake_qp_state(struct fake_vm *vm, struct fake_ctx *c, struct fake_qp *qp,
		  int *state)
{
	struct vhca_devcmd_query_qp in = { .handle = qp->handle,
					   .attr_mask = IBV_QP_STATE };
	struct ib_uverbs_query_qp_resp out;
	int ret = fake_vm_call(vm, VHCA_DEVCMD_QUERY_QP, c->id, &in, sizeof(in),
			       NULL, 0, &out, sizeof(out));

	if (!ret)
		*state = out.qp_state;
	return ret;
}

/* ---- the data path ----------------------------------------------------------- */

/* The provider's wake-up: one Doorbell write if the engine sleeps. */
static void wake(struct fake_vm *vm, struct fake_ctx *c)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_exchange((_Atomic uint32_t *)&c->page->needs_wakeup, 0))
		fake_vm_ring_vector(vm, VHCA_VECTOR_DATA_PATH);
}

static void push(struct fake_ctx *c, uint32_t entry)
{
	struct vhca_ctx_page *p = c->page;
	uint32_t head = atomic_load((_Atomic uint32_t *)&p->fifo_head);
	uint32_t tail = atomic_load((_Atomic uint32_t *)&p->fifo_tail);

	if (head - tail < VHCA_DB_FIFO_LEN) {
		p->fifo[head % VHCA_DB_FIFO_LEN] = entry;
		atomic_store((_Atomic uint32_t *)&p->fifo_head, head + 1);
	} else {
		atomic_store((_Atomic uint32_t *)&p->overflow, 1);
	}
}

void fake_ring(struct fake_vm *vm, struct fake_ctx *c, uint32_t entry)
{
	push(c, entry);
	wake(vm, c);
}

static void ring_qp(struct fake_vm *vm, struct fake_ctx *c,
		    struct fake_qp *qp)
{
	if (!atomic_exchange((_Atomic uint32_t *)&qp->db->queued, 1))
		push(c, qp->handle << 1 | VHCA_DB_QP);
	wake(vm, c);
}

void fake_qp_post_send(struct fake_vm *vm, struct fake_ctx *c,
		       struct fake_qp *qp, const struct vhca_send_wqe *w,
		       const struct vhca_sge *sge, unsigned int nsge)
{
	uint8_t *slot = qp->sq + (size_t)(qp->sq_head % qp->sq_count) *
					 qp->sq_stride;

	memcpy(slot, w, sizeof(*w));
	memcpy(slot + sizeof(*w), sge, nsge * sizeof(*sge));
	qp->sq_head++;
	atomic_store_explicit((_Atomic uint32_t *)&qp->db->sq_head,
			      qp->sq_head, memory_order_release);
	ring_qp(vm, c, qp);
}

void fake_qp_post_recv(struct fake_vm *vm, struct fake_ctx *c,
		       struct fake_qp *qp, uint64_t wr_id,
		       const struct vhca_sge *sge, unsigned int nsge)
{
	uint8_t *slot = qp->rq + (size_t)(qp->rq_head % qp->rq_count) *
					 qp->rq_stride;
	struct vhca_recv_wqe r = { .wr_id = wr_id, .num_sge = nsge };

	memcpy(slot, &r, sizeof(r));
	memcpy(slot + sizeof(r), sge, nsge * sizeof(*sge));
	qp->rq_head++;
	atomic_store_explicit((_Atomic uint32_t *)&qp->db->rq_head,
			      qp->rq_head, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load((_Atomic uint32_t *)&qp->db->rq_notify))
		ring_qp(vm, c, qp);
}

int fake_cq_poll(struct fake_cq *cq, struct vhca_cqe *cqe, int ms)
{
	uint64_t deadline = now_us() + (uint64_t)ms * 1000;

	for (;;) {
		struct vhca_cqe *e = &cq->ring[cq->consumer & (cq->count - 1)];
		uint8_t owner = atomic_load_explicit((_Atomic uint8_t *)&e->owner,
						     memory_order_acquire);

		if ((owner & 1) == (((cq->consumer / cq->count) & 1) ^ 1)) {
			*cqe = *e;
			cq->consumer++;
			atomic_store_explicit(
				(_Atomic uint32_t *)&cq->db->consumer,
				cq->consumer, memory_order_release);
			return 1;
		}
		if (now_us() > deadline)
			return 0;
		usleep(50);
	}
}
