// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * VFs passed to VMs (vm_attach.h): the attach request, and vhcad as the
 * ivshmem server of each VM's VF (QEMU docs/specs/ivshmem-spec.rst).
 *
 * The server's side of the protocol, one 8-byte little-endian value per
 * message, a file descriptor with some: the protocol version (0), the
 * client's peer id (1), -1 with the shared memory (the BAR), then each
 * peer's vector eventfds as (peer id, fd): ours first (peer 0: the
 * doorbells QEMU writes when the VM rings peer 0), the client's own last
 * (the eventfds we write to interrupt the VM).  Then the connection only
 * tells us that QEMU is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "device/limits.h"
#include "device/vf_port.h"
#include "device/vm.h"
#include "guests.h"
#include "vm_attach.h"

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

#define IVSHMEM_PROTOCOL_VERSION 0
#define CLIENT_PEER_ID 1

struct attachment {
	struct vhca_vms *vms;
	struct vhca_dev *vf;
	struct vhca_vf_port *port;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	pthread_t thread;
	bool closing;			/* QEMU has gone: detaching */
	bool done;			/* detached: to be joined and freed */
	struct attachment *next;
};

struct vhca_vms {
	struct vhca_pf *pf;
	struct vhca_guests *guests;
	char dir[4096];
	int stop_pipe[2];
	pthread_mutex_t lock;
	struct attachment *list;
};

int vhca_vms_create(struct vhca_vms **out, struct vhca_pf *pf,
		    struct vhca_guests *guests, const char *run_dir)
{
	struct vhca_vms *vms = calloc(1, sizeof(*vms));

	if (!vms)
		return -ENOMEM;
	vms->pf = pf;
	vms->guests = guests;
	snprintf(vms->dir, sizeof(vms->dir), "%s/" VHCA_VM_DIR_NAME, run_dir);
	if ((mkdir(vms->dir, 0700) && errno != EEXIST) ||
	    pipe2(vms->stop_pipe, O_CLOEXEC)) {
		int ret = -errno;

		free(vms);
		return ret;
	}
	pthread_mutex_init(&vms->lock, NULL);
	*out = vms;
	return 0;
}

/* ---- the ivshmem protocol ------------------------------------------------------- */

static int send_msg(int sock, int64_t value, int fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = &value, .iov_len = sizeof(value) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	/* Little-endian on the wire; so is every host QEMU runs on here. */
	if (fd >= 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		control.hdr.cmsg_level = SOL_SOCKET;
		control.hdr.cmsg_type = SCM_RIGHTS;
		control.hdr.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&control.hdr), &fd, sizeof(fd));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == sizeof(value) ? 0 : -errno;
}

static int handshake(int sock, const struct vhca_vf_port *port)
{
	int ret = send_msg(sock, IVSHMEM_PROTOCOL_VERSION, -1);

	if (!ret)
		ret = send_msg(sock, CLIENT_PEER_ID, -1);
	if (!ret)
		ret = send_msg(sock, -1, vhca_vf_port_bar_fd(port));
	for (unsigned int v = 0; !ret && v < VHCA_VECTORS; v++)
		ret = send_msg(sock, VHCA_DEVICE_PEER,
			       vhca_vf_port_doorbell_fd(port, v));
	for (unsigned int v = 0; !ret && v < VHCA_VECTORS; v++)
		ret = send_msg(sock, CLIENT_PEER_ID,
			       vhca_vf_port_interrupt_fd(port, v));
	return ret;
}

/* ---- one VM ------------------------------------------------------------------------ */

static void detach(struct attachment *a)
{
	struct vhca_pf *pf = a->vms->pf;

	vhca_vf_port_destroy(a->port);
	pthread_rwlock_wrlock(&pf->lock);
	a->vf->vm_port = NULL;
	pthread_rwlock_unlock(&pf->lock);
	atomic_fetch_sub(&a->vf->open_files, 1);
	unlink(a->path);
	close(a->listen_fd);
	log_msg("%s: its VM is gone, every resource of it freed", a->vf->name);
}

/* Waits for @fd to become readable (or hang up), or for vhcad's stop. */
static bool wait_for(struct attachment *a, int fd, int timeout_ms)
{
	struct pollfd fds[2] = {
		{ .fd = fd, .events = POLLIN | POLLRDHUP },
		{ .fd = a->vms->stop_pipe[0], .events = POLLIN },
	};
	int n;

	do
		n = poll(fds, 2, timeout_ms);
	while (n < 0 && errno == EINTR);
	return n > 0 && !fds[1].revents && fds[0].revents;
}

static void *serve_vm(void *arg)
{
	struct attachment *a = arg;
	int sock = -1;

	if (wait_for(a, a->listen_fd, VHCA_VM_CONNECT_TIMEOUT_MS))
		sock = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (sock < 0) {
		log_msg("%s: no VM connected to %s", a->vf->name, a->path);
	} else if (handshake(sock, a->port)) {
		log_msg("%s: ivshmem handshake with QEMU failed", a->vf->name);
	} else {
		log_msg("%s: serving its VM", a->vf->name);
		/* QEMU never writes again: readable means it has gone. */
		wait_for(a, sock, -1);
	}
	if (sock >= 0)
		close(sock);
	pthread_mutex_lock(&a->vms->lock);
	a->closing = true;
	pthread_mutex_unlock(&a->vms->lock);
	detach(a);
	pthread_mutex_lock(&a->vms->lock);
	a->done = true;
	pthread_mutex_unlock(&a->vms->lock);
	return NULL;
}

/* Joins and frees the attachments whose VMs are gone. */
static void reap(struct vhca_vms *vms, bool all)
{
	struct attachment **pp = &vms->list, *a;

	pthread_mutex_lock(&vms->lock);
	while ((a = *pp)) {
		if (!all && !a->done) {
			pp = &a->next;
			continue;
		}
		*pp = a->next;
		pthread_mutex_unlock(&vms->lock);
		pthread_join(a->thread, NULL);
		free(a);
		pthread_mutex_lock(&vms->lock);
	}
	pthread_mutex_unlock(&vms->lock);
}

void vhca_vms_destroy(struct vhca_vms *vms)
{
	if (!vms)
		return;
	/* Every VM's thread wakes, detaches its VM and ends. */
	if (write(vms->stop_pipe[1], "x", 1) != 1)
		log_msg("vm: cannot stop: %s", strerror(errno));
	reap(vms, true);
	close(vms->stop_pipe[0]);
	close(vms->stop_pipe[1]);
	rmdir(vms->dir);
	pthread_mutex_destroy(&vms->lock);
	free(vms);
}

static int listen_at(struct attachment *a)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	memcpy(addr.sun_path, a->path, sizeof(addr.sun_path));
	a->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a->listen_fd < 0)
		return -errno;
	unlink(a->path);	/* a dead attachment's */
	if (bind(a->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    chmod(a->path, 0600) || listen(a->listen_fd, 1)) {
		int ret = -errno;

		/* Closed here, once: the number may be another thread's next. */
		close(a->listen_fd);
		a->listen_fd = -1;
		unlink(a->path);
		return ret;
	}
	return 0;
}

/* The RAM QEMU maps: a memfd sealed against shrinking, big enough. */
static int check_ram(int fd, uint64_t size)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) ||
	    (uint64_t)st.st_size < size)
		return -EINVAL;
	return 0;
}

/* The VF, pinned and marked, if free for a VM; pf->lock exclusive. */
static int claim_vf(struct vhca_vms *vms, unsigned int index,
		    struct vhca_dev **out)
{
	struct vhca_dev *vf;

	if (index >= vms->pf->num_vfs)
		return -ENODEV;
	vf = vms->pf->vfs[index];
	if (vf->vm_port || atomic_load(&vf->open_files) ||
	    vhca_guests_own(vms->guests, index))
		return -EBUSY;
	atomic_fetch_add(&vf->open_files, 1);	/* sriov_numvfs: EBUSY */
	*out = vf;
	return 0;
}

/* Is VF @vf's previous VM still being torn down? */
static bool detaching(struct vhca_vms *vms, const struct vhca_dev *vf)
{
	bool busy = false;

	pthread_mutex_lock(&vms->lock);
	for (struct attachment *a = vms->list; a && !busy; a = a->next)
		busy = a->vf == vf && a->closing && !a->done;
	pthread_mutex_unlock(&vms->lock);
	return busy;
}

/*
 * The VF for a new VM.  A VM that has just exited is still being torn
 * down for a moment after its launcher returns; its successor waits for
 * that (bounded) rather than being refused.
 */
static int claim_vf_waiting(struct vhca_vms *vms, unsigned int index,
			    struct vhca_dev **out)
{
	struct vhca_pf *pf = vms->pf;
	int ret;

	for (int tries = 0;; tries++) {
		struct vhca_dev *vf = NULL;

		pthread_rwlock_wrlock(&pf->lock);
		ret = claim_vf(vms, index, out);
		if (ret == -EBUSY)
			vf = pf->vfs[index];
		pthread_rwlock_unlock(&pf->lock);
		if (ret != -EBUSY || tries >= VHCA_VM_DETACH_WAIT_MS / 10 ||
		    !detaching(vms, vf))
			return ret;
		usleep(10000);
	}
}

int vhca_vms_attach(struct vhca_vms *vms, unsigned int index, int ram_fd,
		    uint64_t ram_size)
{
	struct attachment *a = calloc(1, sizeof(*a));
	struct vhca_pf *pf = vms->pf;
	struct vhca_vm *vm = NULL;
	int ret;

	reap(vms, false);
	ret = a ? check_ram(ram_fd, ram_size) : -ENOMEM;
	if (!ret)
		ret = claim_vf_waiting(vms, index, &a->vf);
	if (ret) {
		close(ram_fd);
		free(a);
		return ret;
	}
	/* Its queues may take as many mappings as its QPs, CQs and SRQs. */
	ret = vhca_vm_create(ram_fd, ram_size,
			     a->vf->quota.max_qp + a->vf->quota.max_cq +
				     a->vf->quota.max_srq,
			     &vm);
	if (!ret)
		ret = vhca_vf_port_create(a->vf, vm, &a->port);
	a->vms = vms;
	a->listen_fd = -1;
	if ((size_t)snprintf(a->path, sizeof(a->path), "%s/%s.sock", vms->dir,
			     a->vf->name) >= sizeof(a->path))
		ret = ret ? ret : -ENAMETOOLONG;
	if (!ret)
		ret = listen_at(a);
	if (!ret) {
		pthread_rwlock_wrlock(&pf->lock);
		a->vf->vm_port = a->port;
		pthread_rwlock_unlock(&pf->lock);
		ret = -pthread_create(&a->thread, NULL, serve_vm, a);
		if (ret) {
			detach(a);
			free(a);
			return ret;
		}
		pthread_mutex_lock(&vms->lock);
		a->next = vms->list;
		vms->list = a;
		pthread_mutex_unlock(&vms->lock);
	}
	if (ret) {
		if (a->port)
			vhca_vf_port_destroy(a->port);
		if (a->listen_fd >= 0)
			close(a->listen_fd);
		atomic_fetch_sub(&a->vf->open_files, 1);
		free(a);
		return ret;
	}
	log_msg("%s: attached to a VM of %llu MiB, ivshmem server %s",
		a->vf->name, (unsigned long long)(ram_size >> 20), a->path);
	return 0;
}
