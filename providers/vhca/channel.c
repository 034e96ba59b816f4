// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca provider: the pipes handed to the device.
 *
 * The device cannot create file descriptors in our process, so every fd it
 * must give to libibverbs (the async event fd, each completion channel fd)
 * is a pipe created here.  The device takes the write end with
 * pidfd_getfd() while it executes the command that carries the pair; the
 * read end stays in this process under the same number.  Once the command
 * has returned we close our copy of the service pipe's write end, so that
 * pipe reads EOF when the device dies, and keep those of the async and
 * completion-channel pipes, so that theirs never do: lost.c turns them
 * into fds that fail with EIO instead, as the kernel's do after a
 * disassociation.
 *
 * Completion-channel read ends go into the device's pool.  The device hands
 * them to libibverbs in CREATE_COMP_CHANNEL responses, and libibverbs
 * closes them in ibv_destroy_comp_channel(); we never learn which ones were
 * handed out.  So at free_context, before cmd_fd is closed, we ask the
 * device with VHCA_CMD_RETURN_CHANNELS: it forgets every pooled channel it
 * never handed out and lists their read ends, and we close exactly those
 * (if they are in our bookkeeping) and nothing an application still owns.
 *
 * A device that does not know the command (EOPNOTSUPP) gets the old
 * heuristic instead: the pool remembers each read end's identity (fd
 * number, pipe inode), and after cmd_fd is closed an fd that still refers
 * to that very pipe is closed.  Such an fd is either unused, or belongs to
 * a channel the application did not destroy before ibv_close_device(),
 * which it can no longer destroy anyway.  An fd whose number was reused for
 * anything else is left alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "vhca.h"

void vhca_close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

int vhca_fd_pair_open(struct vhca_fd_pair *pair)
{
	int fds[2];
	int flags;
	int err;

	pair->read_fd = -1;
	pair->write_fd = -1;

	if (pipe2(fds, O_CLOEXEC))
		return -1;

	/*
	 * The write end's file description is shared with the device's
	 * duplicate: make it non-blocking so a full pipe costs the device
	 * an EAGAIN rather than a stalled thread.  (A hostile process can
	 * clear the flag again; the device must not rely on it.)
	 */
	flags = fcntl(fds[1], F_GETFL);
	if (flags < 0 || fcntl(fds[1], F_SETFL, flags | O_NONBLOCK)) {
		err = errno;
		close(fds[0]);
		close(fds[1]);
		errno = err;
		return -1;
	}

	pair->read_fd = fds[0];
	pair->write_fd = fds[1];
	return 0;
}

void vhca_fd_pair_close_write(struct vhca_fd_pair *pair)
{
	vhca_close_fd(&pair->write_fd);
}

void vhca_fd_pair_close(struct vhca_fd_pair *pair)
{
	vhca_close_fd(&pair->read_fd);
	vhca_close_fd(&pair->write_fd);
}

int vhca_channel_batch_open(struct vhca_fd_pair *pairs, unsigned int max)
{
	unsigned int i;
	unsigned int n;
	int err = 0;

	for (i = 0; i < max; i++) {
		pairs[i].read_fd = -1;
		pairs[i].write_fd = -1;
	}

	/* Take as many as we can get; a short batch is still useful. */
	for (n = 0; n < max; n++) {
		if (vhca_fd_pair_open(&pairs[n])) {
			err = errno;
			break;
		}
	}

	if (!n) {
		errno = err;
		return -1;
	}
	return (int)n;
}

int vhca_eio_fd(const void *data, size_t len)
{
	struct termios raw;
	int master, slave, err;

	/*
	 * A pty master whose slave is closed reads what the slave wrote,
	 * then fails every read with EIO.  Raw mode: the bytes pass as
	 * they are.
	 */
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return -1;
	if (grantpt(master) || unlockpt(master))
		goto err;
	slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		goto err;
	if (!tcgetattr(slave, &raw)) {
		cfmakeraw(&raw);
		tcsetattr(slave, TCSANOW, &raw);
	}
	if (len && write(slave, data, len) != (ssize_t)len) {
		close(slave);
		goto err;
	}
	close(slave);
	return master;
err:
	err = errno;
	close(master);
	errno = err;
	return -1;
}

void vhca_channel_batch_close(struct vhca_fd_pair *pairs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		vhca_fd_pair_close(&pairs[i]);
}

/* --- pool bookkeeping ---------------------------------------------------- */

static struct vhca_pool_ent *pool_find(struct vhca_channel_pool *pool, int fd)
{
	size_t i;

	for (i = 0; i < pool->num; i++)
		if (pool->ents[i].fd == fd)
			return &pool->ents[i];
	return NULL;
}

int vhca_pool_track(struct vhca_channel_pool *pool,
		    const struct vhca_fd_pair *pairs, unsigned int n)
{
	struct vhca_pool_ent *ent;
	struct stat st;
	unsigned int i;
	size_t cap;

	if (pool->num + n > pool->cap) {
		cap = pool->cap ? pool->cap : 2 * VHCA_CHANNEL_BATCH;
		while (cap < pool->num + n)
			cap *= 2;
		ent = realloc(pool->ents, cap * sizeof(*ent));
		if (!ent)
			return -1;
		pool->ents = ent;
		pool->cap = cap;
	}

	for (i = 0; i < n; i++) {
		if (fstat(pairs[i].read_fd, &st)) {
			/* cannot happen: we just created it */
			vhca_pool_untrack(pool, pairs, i);
			return -1;
		}
		/* A number handed out, closed and now reused: replace. */
		ent = pool_find(pool, pairs[i].read_fd);
		if (ent)
			vhca_close_fd(&ent->write_fd);
		else
			ent = &pool->ents[pool->num++];
		ent->fd = pairs[i].read_fd;
		ent->write_fd = -1;
		ent->dev = st.st_dev;
		ent->ino = st.st_ino;
	}
	return 0;
}

void vhca_pool_keep_writers(struct vhca_channel_pool *pool,
			    struct vhca_fd_pair *pairs, unsigned int n)
{
	struct vhca_pool_ent *ent;
	unsigned int i;

	for (i = 0; i < n; i++) {
		ent = pool_find(pool, pairs[i].read_fd);
		if (!ent)
			continue;
		vhca_close_fd(&ent->write_fd);
		ent->write_fd = pairs[i].write_fd;
		pairs[i].write_fd = -1;
	}
}

struct vhca_pool_ent *vhca_pool_find(struct vhca_channel_pool *pool, int fd)
{
	return pool_find(pool, fd);
}

void vhca_pool_untrack(struct vhca_channel_pool *pool,
		       const struct vhca_fd_pair *pairs, unsigned int n)
{
	struct vhca_pool_ent *ent;
	unsigned int i;

	for (i = 0; i < n; i++) {
		ent = pool_find(pool, pairs[i].read_fd);
		if (ent) {
			vhca_close_fd(&ent->write_fd);
			*ent = pool->ents[--pool->num];
		}
	}
}

static bool pool_ent_is_ours(const struct vhca_pool_ent *ent)
{
	struct stat st;
	int flags;

	if (fstat(ent->fd, &st) || !S_ISFIFO(st.st_mode) ||
	    st.st_dev != ent->dev || st.st_ino != ent->ino)
		return false;
	flags = fcntl(ent->fd, F_GETFL);
	return flags >= 0 && (flags & O_ACCMODE) == O_RDONLY;
}

void vhca_pool_close_all(struct vhca_channel_pool *pool)
{
	size_t i;

	for (i = 0; i < pool->num; i++)
		if (pool_ent_is_ours(&pool->ents[i]))
			close(pool->ents[i].fd);
	vhca_pool_free(pool);
}

void vhca_pool_free(struct vhca_channel_pool *pool)
{
	for (size_t i = 0; i < pool->num; i++)
		vhca_close_fd(&pool->ents[i].write_fd);
	free(pool->ents);
	pool->ents = NULL;
	pool->num = 0;
	pool->cap = 0;
}

/* VHCA_CMD_RETURN_CHANNELS as written to the command file. */
struct vhca_return_channels_req {
	struct ib_uverbs_cmd_hdr hdr;
	struct vhca_return_channels_cmd cmd;
};
static_assert(sizeof(struct vhca_return_channels_req) ==
		      sizeof(struct ib_uverbs_cmd_hdr) +
			      sizeof(struct vhca_return_channels_cmd),
	      "RETURN_CHANNELS request must not contain padding");
static_assert(sizeof(struct vhca_return_channels_req) % 4 == 0 &&
		      sizeof(struct vhca_return_channels_resp) % 4 == 0,
	      "write-ABI commands are a whole number of words");

int vhca_pool_return(struct vhca_channel_pool *pool, int cmd_fd)
{
	struct vhca_return_channels_resp resp;
	struct vhca_return_channels_req req;
	struct vhca_pool_ent *ent;
	uint32_t i;
	ssize_t ret;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.hdr.command = VHCA_CMD_RETURN_CHANNELS;
	req.hdr.in_words = sizeof(req) / 4;
	req.hdr.out_words = sizeof(resp) / 4;
	req.cmd.response = (uintptr_t)&resp;

	do {
		ret = write(cmd_fd, &req, sizeof(req));
	} while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -1;
	if (ret != (ssize_t)sizeof(req) || resp.num_fds > VHCA_CHANNEL_POOL_MAX) {
		errno = EPROTO;
		return -1;
	}

	for (i = 0; i < resp.num_fds; i++) {
		ent = pool_find(pool, resp.read_fds[i]);
		if (!ent)
			continue; /* not one of ours: never close it */
		close(ent->fd);
		vhca_close_fd(&ent->write_fd);
		*ent = pool->ents[--pool->num];
	}
	vhca_pool_free(pool);
	return 0;
}
