/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one interface through which the daemon touches a guest process: its
 * memory (by virtual address) and its file descriptors.
 *
 * A peer is bound to one process (thread group) and to the address space
 * it had at bind time.  Registered memory (the engine's DMA) is reached
 * through that address space only, never by pid number: a pid is reused
 * by strangers once the peer is gone, and keeps naming the process after
 * it execs a new image.  Once the bound address space is gone (exit or
 * exec) every access is -ESRCH, the peer is "gone", and its contexts are
 * disassociated (-EIO).  Command requests and responses go by pid, which
 * is safe because the caller is blocked in its write until we answer; each
 * is followed by a liveness check so that a result obtained from a
 * stranger is never reported.
 *
 * All functions return 0 (or a non-negative value where documented) or a
 * negative errno.
 */
#ifndef VHCA_DMA_H
#define VHCA_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vhca_dma_peer;

/* Access a range must allow, as get_user_pages() would be asked for. */
enum vhca_dma_rights {
	VHCA_DMA_READ = 1 << 0,
	VHCA_DMA_WRITE = 1 << 1,
};

/* Identity of a pipe: both of its ends share it. */
struct vhca_pipe_id {
	dev_t dev;
	ino_t ino;
};

static inline bool vhca_pipe_id_equal(const struct vhca_pipe_id *a,
				      const struct vhca_pipe_id *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

/* Thread group of thread @tid, from /proc/<tid>/status. */
int vhca_dma_tgid_of(pid_t tid, pid_t *tgid);

/*
 * Binds a new peer to the process of thread @tid.  -ESRCH if it is gone,
 * -EACCES if it cannot be identified (tid <= 0).
 */
int vhca_dma_peer_bind(pid_t tid, struct vhca_dma_peer **peer);
void vhca_dma_peer_get(struct vhca_dma_peer *peer);
void vhca_dma_peer_put(struct vhca_dma_peer *peer);

pid_t vhca_dma_peer_tgid(const struct vhca_dma_peer *peer);
/* The process lives and still has the address space bound at bind. */
bool vhca_dma_peer_alive(const struct vhca_dma_peer *peer);
/* Dead, or exiting (its memory already gone): it will answer no more. */
bool vhca_dma_peer_gone(const struct vhca_dma_peer *peer);

/*
 * Is @tid a thread of the peer's (live) process?  0, -EACCES for a thread
 * of another process, -ESRCH if the peer's process is gone.
 */
int vhca_dma_peer_check_caller(const struct vhca_dma_peer *peer, pid_t tid);

/*
 * Whole transfers only: a short transfer is -EFAULT.  These are
 * copy_from_user/copy_to_user: the page protections of the moment apply.
 */
int vhca_dma_read(const struct vhca_dma_peer *peer, uint64_t addr, void *buf,
		  size_t len);
int vhca_dma_write(const struct vhca_dma_peer *peer, uint64_t addr,
		   const void *buf, size_t len);

/*
 * The engine's access to registered memory, as an HCA's DMA to the pages
 * REG_MR pinned: the protections were checked at registration and are not
 * re-checked (a guest that later mprotects its own buffer still receives,
 * as with real hardware).  Bound to the registering address space (see
 * above): -ESRCH once it is gone, -EFAULT for an unmapped page, and never
 * a wait on a userfaultfd.
 */
int vhca_dma_mr_read(const struct vhca_dma_peer *peer, uint64_t addr,
		     void *buf, size_t len);
int vhca_dma_mr_write(const struct vhca_dma_peer *peer, uint64_t addr,
		      const void *buf, size_t len);
/* Writes @len zero bytes at @addr. */
int vhca_dma_clear(const struct vhca_dma_peer *peer, uint64_t addr,
		   size_t len);

/*
 * Is [addr, addr + len) wholly covered by the peer's mappings, each
 * allowing @rights (enum vhca_dma_rights)?  -EFAULT otherwise, as
 * get_user_pages() answers for a hole, a PROT_NONE range, a write to a
 * read-only mapping, or a special mapping ([vvar], [vsyscall]).  len 0
 * is -EINVAL.  The answer is a snapshot: the guest may munmap later, and
 * the engine must treat a failed transfer as a protection error.
 */
int vhca_dma_check_range(const struct vhca_dma_peer *peer, uint64_t addr,
			 uint64_t len, unsigned int rights);

/*
 * Takes the write end of a pipe from the peer (pidfd_getfd).  Returns a
 * daemon-side fd on an open file description of our own, O_WRONLY |
 * O_NONBLOCK | O_CLOEXEC, so the guest cannot make our writes block by
 * clearing O_NONBLOCK on its copy.  -EINVAL if @guest_fd is not an open
 * fd of the peer, not a pipe/FIFO, not opened write-only, or its pipe has
 * no reader left.  @id receives the pipe's identity.
 */
int vhca_dma_take_pipe_writer(const struct vhca_dma_peer *peer, int guest_fd,
			      struct vhca_pipe_id *id);

/*
 * Like vhca_dma_take_pipe_writer, for a read end (O_RDONLY): a reader of
 * our own, O_RDONLY | O_NONBLOCK | O_CLOEXEC, on a description of our own.
 */
int vhca_dma_take_pipe_reader(const struct vhca_dma_peer *peer, int guest_fd,
			      struct vhca_pipe_id *id);

/*
 * Checks that @guest_fd is, in the peer, the read end (O_RDONLY) of a
 * pipe/FIFO and returns its identity; nothing is kept.  -EINVAL otherwise.
 */
int vhca_dma_pipe_reader_id(const struct vhca_dma_peer *peer, int guest_fd,
			    struct vhca_pipe_id *id);

/*
 * Takes a sealed memfd from the peer for shared queue memory: it must be
 * a memfd (F_GET_SEALS works) sealed with F_SEAL_SHRINK | F_SEAL_GROW, so
 * its size can never change under our mapping, and at least @min_size
 * bytes long.  Returns a daemon-side fd, or -EINVAL for anything else.
 */
int vhca_dma_take_memfd(const struct vhca_dma_peer *peer, int guest_fd,
			uint64_t min_size);

/* Takes an eventfd from the peer; -EINVAL if @guest_fd is not one. */
int vhca_dma_take_eventfd(const struct vhca_dma_peer *peer, int guest_fd);

/* The peer's pidfd: polls readable once the process has exited. */
int vhca_dma_peer_pidfd(const struct vhca_dma_peer *peer);

#endif /* VHCA_DMA_H */
