/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A guest process as the driver knows it (the kernel's task and mm):
 * its identity, who may issue commands on its contexts, its memory for
 * command requests and responses, and its file descriptors.
 *
 * A peer is bound to one process (thread group) through a pidfd, and to
 * the address space it had at bind time through a DMA space
 * (device/dma.h), which is what the engine reaches registered memory
 * through: never by pid number, which strangers reuse once the peer is
 * gone and which keeps naming the process after it execs a new image.
 * Once the bound address space is gone (exit or exec) the peer is "gone"
 * and its contexts are disassociated (-EIO).
 *
 * Command requests and responses go by pid (process_vm_*, which honours
 * the protections of the moment as copy_to_user() does): the caller is
 * blocked in its write until we answer, and an execve() by another of its
 * threads waits for it to leave, so the pid names the calling address
 * space throughout.  Each access is followed by a liveness check, so that
 * a result obtained from a stranger is never reported.
 *
 * All functions return 0 (or a non-negative value where documented) or a
 * negative errno.
 */
#ifndef VHCA_DRIVER_PEER_H
#define VHCA_DRIVER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vhca_dma_space;
struct vhca_peer;

/* Access a range must allow, as get_user_pages() would be asked for. */
enum vhca_peer_rights {
	VHCA_PEER_READ = 1 << 0,
	VHCA_PEER_WRITE = 1 << 1,
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
int vhca_peer_tgid_of(pid_t tid, pid_t *tgid);

/* vhca_peer_bind() flags */
enum {
	/*
	 * Keep the maps file of the bound address space open (one more
	 * fd): vhca_peer_check_range() then asks the kernel for the VMAs
	 * it needs (PROCMAP_QUERY) instead of reading all the maps text.
	 */
	VHCA_PEER_MAPS = 1 << 0,
};

/*
 * Binds a new peer to the process of thread @tid.  -ESRCH if it is gone,
 * -EACCES if it cannot be identified (tid <= 0).
 */
int vhca_peer_bind(pid_t tid, unsigned int flags, struct vhca_peer **peer);
void vhca_peer_get(struct vhca_peer *peer);
void vhca_peer_put(struct vhca_peer *peer);

pid_t vhca_peer_tgid(const struct vhca_peer *peer);
/* The process lives and still has the address space bound at bind. */
bool vhca_peer_alive(const struct vhca_peer *peer);
/* Dead, exiting or exec'd: it will answer no more. */
bool vhca_peer_gone(const struct vhca_peer *peer);
/* The bound address space, for the device's DMA (not referenced). */
struct vhca_dma_space *vhca_peer_dma_space(const struct vhca_peer *peer);

/*
 * Is @tid a thread of the peer's (live) process?  0, -EACCES for a thread
 * of another process, -ESRCH if the peer's process is gone.
 */
int vhca_peer_check_caller(const struct vhca_peer *peer, pid_t tid);

/*
 * Does thread @tid have capability @cap (CAP_*) in the initial user
 * namespace, as the kernel's capable() asks?  The caller is blocked in
 * its command, so @tid names it.
 */
bool vhca_peer_capable(pid_t tid, unsigned int cap);

/*
 * Command requests and responses.  Whole transfers only: a short
 * transfer is -EFAULT.
 */
int vhca_peer_read(const struct vhca_peer *peer, uint64_t addr, void *buf,
		   size_t len);
int vhca_peer_write(const struct vhca_peer *peer, uint64_t addr,
		    const void *buf, size_t len);
/* Writes @len zero bytes at @addr. */
int vhca_peer_clear(const struct vhca_peer *peer, uint64_t addr, size_t len);

/*
 * Is [addr, addr + len) wholly covered by the peer's mappings, each
 * allowing @rights (enum vhca_peer_rights)?  -EFAULT otherwise, as
 * get_user_pages() answers for a hole, a PROT_NONE range, a write to a
 * read-only mapping, or a special mapping ([vvar], [vsyscall]).  len 0
 * is -EINVAL.  The answer is a snapshot: the guest may munmap later, and
 * the engine must treat a failed transfer as a protection error.
 */
int vhca_peer_check_range(const struct vhca_peer *peer, uint64_t addr,
			 uint64_t len, unsigned int rights);

/*
 * Takes the write end of a pipe from the peer (pidfd_getfd).  Returns a
 * daemon-side fd on an open file description of our own, O_WRONLY |
 * O_NONBLOCK | O_CLOEXEC, so the guest cannot make our writes block by
 * clearing O_NONBLOCK on its copy.  -EINVAL if @guest_fd is not an open
 * fd of the peer, not a pipe/FIFO, not opened write-only, or its pipe has
 * no reader left.  @id receives the pipe's identity.
 */
int vhca_peer_take_pipe_writer(const struct vhca_peer *peer, int guest_fd,
			      struct vhca_pipe_id *id);

/*
 * Like vhca_peer_take_pipe_writer, for a read end (O_RDONLY): a reader of
 * our own, O_RDONLY | O_NONBLOCK | O_CLOEXEC, on a description of our own.
 */
int vhca_peer_take_pipe_reader(const struct vhca_peer *peer, int guest_fd,
			      struct vhca_pipe_id *id);

/*
 * Checks that @guest_fd is, in the peer, the read end (O_RDONLY) of a
 * pipe/FIFO and returns its identity; nothing is kept.  -EINVAL otherwise.
 */
int vhca_peer_pipe_reader_id(const struct vhca_peer *peer, int guest_fd,
			    struct vhca_pipe_id *id);

/*
 * Takes a sealed memfd from the peer for shared queue memory: it must be
 * a memfd (F_GET_SEALS works) sealed with F_SEAL_SHRINK | F_SEAL_GROW, so
 * its size can never change under our mapping, and at least @min_size
 * bytes long.  Returns a daemon-side fd, or -EINVAL for anything else.
 */
int vhca_peer_take_memfd(const struct vhca_peer *peer, int guest_fd,
			uint64_t min_size);

/* Takes an eventfd from the peer; -EINVAL if @guest_fd is not one. */
int vhca_peer_take_eventfd(const struct vhca_peer *peer, int guest_fd);

/* Takes whatever @guest_fd is; the caller checks what it got. */
int vhca_peer_take_any_fd(const struct vhca_peer *peer, int guest_fd);

/* The peer's pidfd: polls readable once the process has exited. */
int vhca_peer_pidfd(const struct vhca_peer *peer);

#endif /* VHCA_DRIVER_PEER_H */
