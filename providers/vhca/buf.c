// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: queue memory, doorbells and the receive-WQE builder shared
 * by QPs and SRQs.
 *
 * Every queue (and the context's doorbell page) lives in its own memfd,
 * sealed against shrinking and growing so the device, which maps the same
 * memfd, can never fault on it (include/vhca/queue.h).
 *
 * The doorbell sequence (vhca_ring_doorbell), after the caller has written
 * its WQEs, issued udma_to_device_barrier() and release-stored its producer
 * index:
 *   1. xchg(db->queued, 1); if it was 0, push handle << 1 | kind onto the
 *      context FIFO (under the context's spinlock: one producer at a time),
 *      or set ctx_page->overflow if the FIFO is full;
 *   2. full barrier;
 *   3. if xchg(ctx_page->needs_wakeup, 0) was set: write 8 bytes to the
 *      wake eventfd.
 * Step 3 is the only system call of the data path, and only when the
 * engine has gone to sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "barrier.h"
#include "vhca.h"

static_assert(sizeof(struct vhca_send_wqe) == 96, "send WQE header size");
static_assert(sizeof(struct vhca_recv_wqe) == 16, "recv WQE header size");
static_assert(sizeof(struct vhca_sge) == 16, "SGE size");
static_assert(sizeof(struct vhca_cqe) == 64, "CQE size");

int vhca_qbuf_alloc(struct vhca_qbuf *buf, size_t size, const char *name)
{
	void *addr;
	int err;
	int fd;

	buf->addr = NULL;
	buf->size = 0;
	buf->fd = -1;

	if (!size || size % VHCA_PAGE_SIZE) {
		errno = EINVAL;
		return -1;
	}

	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		goto err;

	addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED)
		goto err;

	buf->addr = addr;
	buf->size = size;
	buf->fd = fd;
	return 0;

err:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

void vhca_qbuf_free(struct vhca_qbuf *buf)
{
	if (buf->addr)
		munmap(buf->addr, buf->size);
	buf->addr = NULL;
	buf->size = 0;
	vhca_close_fd(&buf->fd);
}

void vhca_ring_doorbell(struct vhca_context *ctx, uint32_t *queued,
			uint32_t handle, enum vhca_db_kind kind)
{
	struct vhca_ctx_page *page = ctx->db_page;
	static const uint64_t one = 1;
	uint32_t head;
	uint32_t tail;
	ssize_t ret;

	if (vhca_xchg32(queued, 1) == 0) {
		pthread_spin_lock(&ctx->db_lock);
		/* fifo_head is ours alone; fifo_tail is the device's. */
		head = vhca_load_relaxed32(&page->fifo_head);
		tail = vhca_load_acquire32(&page->fifo_tail);
		if (head - tail >= VHCA_DB_FIFO_LEN) {
			/* full (or a nonsense tail): the engine scans */
			vhca_store_release32(&page->overflow, 1);
		} else {
			page->fifo[head % VHCA_DB_FIFO_LEN] =
				handle << 1 | (uint32_t)kind;
			vhca_store_release32(&page->fifo_head, head + 1);
		}
		pthread_spin_unlock(&ctx->db_lock);
	}

	/*
	 * Our producer-index and FIFO stores before the needs_wakeup load:
	 * the engine sets needs_wakeup, fences, re-checks the doorbells, then
	 * sleeps, so one of us sees the other's store.  Checked even when
	 * the queue was already queued: the engine may have popped it but
	 * not yet re-read our new producer index when it decided to sleep.
	 */
	udma_full_barrier();
	/*
	 * The first doorbell after the engine went to sleep takes the flag
	 * (xchg to 0) and wakes it; the ones that follow, until the engine
	 * sleeps again, find 0 and skip the system call.  Measured before:
	 * in a window of small sends about a third of the eventfd writes
	 * went to an engine already woken.  The engine sets the flag again
	 * before each sleep, and epoll (edge-triggered) keeps an edge that
	 * lands between its re-check and epoll_wait.  The plain load first
	 * keeps an awake engine's cache line shared.  Cost: another thread
	 * of this context that rings between our xchg and our write waits
	 * for our write; only this process's own threads share the flag.
	 */
	if (vhca_load_relaxed32(&page->needs_wakeup) &&
	    vhca_xchg32(&page->needs_wakeup, 0)) {
		/* In a VM: one MMIO write (ivshmem's ioeventfd under KVM). */
		if (ctx->mmio_doorbell) {
			*ctx->mmio_doorbell = ctx->mmio_doorbell_value;
			return;
		}
		do {
			ret = write(ctx->wake_fd, &one, sizeof(one));
		} while (ret < 0 && errno == EINTR);
		/* EAGAIN: the counter is saturated, the engine is awake */
	}
}

int vhca_wq_init(struct vhca_wq *wq)
{
	return pthread_spin_init(&wq->lock, PTHREAD_PROCESS_PRIVATE);
}

void vhca_wq_destroy(struct vhca_wq *wq)
{
	pthread_spin_destroy(&wq->lock);
}

int vhca_wq_post_recv(struct vhca_wq *wq, uint32_t *head, const uint32_t *tail,
		      struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr,
		      bool *posted)
{
	struct vhca_recv_wqe *wqe;
	struct vhca_sge *sge;
	uint32_t idx = wq->head;
	uint32_t used;
	int err = 0;
	int i;

	*posted = false;
	used = idx - vhca_load_acquire32(tail);

	for (; wr; wr = wr->next) {
		if (wr->num_sge < 0 || (uint32_t)wr->num_sge > wq->max_sge) {
			err = EINVAL;
			break;
		}
		if (used >= wq->wqe_count) {
			/* re-read the device's consumer index once */
			used = idx - vhca_load_acquire32(tail);
			if (used >= wq->wqe_count) {
				err = ENOMEM;
				break;
			}
		}

		wqe = (struct vhca_recv_wqe *)(wq->ring +
					       (size_t)(idx & (wq->wqe_count - 1)) *
						       wq->stride);
		wqe->wr_id = wr->wr_id;
		wqe->num_sge = (uint32_t)wr->num_sge;
		wqe->reserved = 0;
		sge = (struct vhca_sge *)(wqe + 1);
		for (i = 0; i < wr->num_sge; i++) {
			sge[i].addr = wr->sg_list[i].addr;
			sge[i].length = wr->sg_list[i].length;
			sge[i].lkey = wr->sg_list[i].lkey;
		}
		idx++;
		used++;
	}

	if (idx != wq->head) {
		wq->head = idx;
		udma_to_device_barrier();
		vhca_store_release32(head, idx);
		*posted = true;
	}
	if (err)
		*bad_wr = wr;
	return err;
}
