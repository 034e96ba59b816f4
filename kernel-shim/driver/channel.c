// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Completion-channel pool and event fds of a user context (channel.h).
 *
 * Locking: ch->lock protects the pool, the active list and the service
 * pipe state; CREATE_COMP_CHANNEL sleeps on ch->refilled with it.  Async
 * posts take ch->async_lock for their log (the fd is fixed between setup
 * and reset); completion events are posted under the context's dctx->lock, and a
 * completion channel's fd lives as long as its references.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <rdma/ib_user_verbs.h>

#include "channel.h"

int vhca_channels_init(struct vhca_channels *ch, atomic_uint *counter,
		       unsigned int max_active, atomic_uint *fds,
		       unsigned int fds_max)
{
	pthread_condattr_t attr;
	int ret;

	memset(ch, 0, sizeof(*ch));
	ch->counter = counter;
	ch->fds = fds;
	ch->fds_max = fds_max;
	ch->max_active = max_active;
	ch->refill_timeout_ms = VHCA_CHANNEL_REFILL_TIMEOUT_MS;
	ch->async_fd = -1;
	ch->async_guest_read_fd = -1;
	ch->service_fd = -1;
	atomic_init(&ch->async_gone, false);

	ret = pthread_mutex_init(&ch->lock, NULL);
	if (ret)
		return -ret;
	ret = pthread_mutex_init(&ch->async_lock, NULL);
	if (ret) {
		pthread_mutex_destroy(&ch->lock);
		return -ret;
	}
	ret = pthread_condattr_init(&attr);
	if (!ret) {
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		ret = pthread_cond_init(&ch->refilled, &attr);
		pthread_condattr_destroy(&attr);
	}
	if (ret) {
		pthread_mutex_destroy(&ch->async_lock);
		pthread_mutex_destroy(&ch->lock);
		return -ret;
	}
	return 0;
}

/* ---- logs of unread event records (struct vhca_event_log) ------------ */

static void event_log_free(struct vhca_event_log *log)
{
	free(log->counters);
	memset(log, 0, sizeof(*log));
}

static uint32_t **event_log_at(struct vhca_event_log *log, uint32_t i)
{
	return &log->counters[(log->head + i) % log->cap];
}

/*
 * The guest has read all but the newest @unread records: counts the
 * others to their objects and drops them from the log.
 */
static void event_log_credit_read(struct vhca_event_log *log, uint32_t unread)
{
	while (log->len > unread) {
		uint32_t *counter = *event_log_at(log, 0);

		if (counter)
			(*counter)++;
		log->head = (log->head + 1) % log->cap;
		log->len--;
	}
}

/* Credits the records of @fd's pipe the guest has read since last time. */
static void event_log_credit(struct vhca_event_log *log, int fd, bool gone,
			     size_t record_size)
{
	int unread_bytes;
	uint32_t unread;

	if (!log->len)
		return;
	if (gone || fd < 0 || ioctl(fd, FIONREAD, &unread_bytes) ||
	    unread_bytes < 0)
		unread_bytes = 0;	/* nobody will read the rest */
	unread = (uint32_t)((size_t)unread_bytes / record_size);
	event_log_credit_read(log, unread);
}

static int event_log_append(struct vhca_event_log *log, uint32_t *counter)
{
	if (log->len == log->cap) {
		uint32_t cap = log->cap ? 2 * log->cap : 16;
		uint32_t **grown = malloc(cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		for (uint32_t i = 0; i < log->len; i++)
			grown[i] = *event_log_at(log, i);
		free(log->counters);
		log->counters = grown;
		log->cap = cap;
		log->head = 0;
	}
	log->len++;
	*event_log_at(log, log->len - 1) = counter;
	return 0;
}

static bool event_log_holds(struct vhca_event_log *log, uint32_t *counter)
{
	for (uint32_t i = 0; i < log->len; i++)
		if (*event_log_at(log, i) == counter)
			return true;
	return false;
}

static void event_log_forget(struct vhca_event_log *log, uint32_t *counter)
{
	for (uint32_t i = 0; i < log->len; i++)
		if (*event_log_at(log, i) == counter)
			*event_log_at(log, i) = NULL;
}

/* Takes @n of the function's fds; false if that is beyond its share. */
static bool fds_charge(atomic_uint *fds, unsigned int max, unsigned int n)
{
	unsigned int cur = atomic_load(fds);

	do {
		if (cur + n > max || cur + n < cur)
			return false;
	} while (!atomic_compare_exchange_weak(fds, &cur, cur + n));
	return true;
}

/* Closes a counted fd and gives it back to the function's share. */
static void close_counted(atomic_uint *fds, int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		atomic_fetch_sub(fds, 1);
	}
	*fd = -1;
}

static void close_pooled(struct vhca_channels *ch,
			 struct vhca_pooled_pipe *pipes, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		close_counted(ch->fds, &pipes[i].write_fd);
}

void vhca_comp_channel_put(struct vhca_comp_channel *chan)
{
	if (atomic_fetch_sub_explicit(&chan->refcount, 1,
				      memory_order_acq_rel) != 1)
		return;
	close_counted(chan->fds, &chan->write_fd);
	event_log_free(&chan->unread);
	free(chan);
}

/* Takes a channel out of the guest's view: uncounted, unreferenced. */
static void retire(struct vhca_channels *ch, struct vhca_comp_channel *chan)
{
	atomic_store(&chan->gone, true);
	atomic_fetch_sub(ch->counter, 1);
	vhca_comp_channel_put(chan);
}

void vhca_channels_reset(struct vhca_channels *ch)
{
	pthread_mutex_lock(&ch->lock);
	pthread_mutex_lock(&ch->async_lock);
	close_counted(ch->fds, &ch->async_fd);
	ch->async_guest_read_fd = -1;
	event_log_free(&ch->async_unread);
	pthread_mutex_unlock(&ch->async_lock);
	close_counted(ch->fds, &ch->service_fd);
	close_pooled(ch, ch->pool, ch->pool_len);
	ch->pool_len = 0;
	for (unsigned int i = 0; i < ch->num_active; i++)
		retire(ch, ch->active[i]);
	free(ch->active);
	ch->active = NULL;
	ch->num_active = 0;
	ch->active_cap = 0;
	atomic_store(&ch->async_gone, false);
	ch->service_gone = false;
	ch->refill_pending = false;
	pthread_mutex_unlock(&ch->lock);
}

void vhca_channels_fini(struct vhca_channels *ch)
{
	vhca_channels_reset(ch);
	pthread_cond_destroy(&ch->refilled);
	pthread_mutex_destroy(&ch->async_lock);
	pthread_mutex_destroy(&ch->lock);
}

/*
 * One guest pipe: its write end taken (our own nonblocking description),
 * its read end proven to be the other end of the same pipe, so the
 * number we later hand out as a channel fd really is that channel.
 */
static int take_pair(struct vhca_channels *ch, const struct vhca_peer *peer,
		     const struct vhca_fd_pair *pair,
		     struct vhca_pooled_pipe *out)
{
	struct vhca_pipe_id read_id;
	int fd, ret;

	/* The function's share of vhcad's fds (findings 4 and 9). */
	if (!fds_charge(ch->fds, ch->fds_max, 1))
		return -EMFILE;
	fd = vhca_peer_take_pipe_writer(peer, pair->write_fd, &out->id);
	if (fd < 0) {
		atomic_fetch_sub(ch->fds, 1);
		return fd;
	}
	ret = vhca_peer_pipe_reader_id(peer, pair->read_fd, &read_id);
	if (!ret && !vhca_pipe_id_equal(&read_id, &out->id))
		ret = -EINVAL;
	if (ret) {
		close_counted(ch->fds, &fd);
		return ret;
	}
	out->guest_fd = pair->read_fd;
	out->write_fd = fd;
	return 0;
}

/* All or nothing. */
static int take_pairs(struct vhca_channels *ch, const struct vhca_peer *peer,
		      const struct vhca_fd_pair *pairs, unsigned int n,
		      struct vhca_pooled_pipe *out)
{
	for (unsigned int i = 0; i < n; i++) {
		int ret = take_pair(ch, peer, &pairs[i], &out[i]);

		if (ret) {
			close_pooled(ch, out, i);
			return ret;
		}
	}
	return 0;
}

int vhca_channels_setup(struct vhca_channels *ch,
			const struct vhca_peer *peer,
			const struct vhca_alloc_ucontext_cmd *cmd)
{
	struct vhca_pooled_pipe pool[VHCA_CHANNEL_BATCH];
	struct vhca_pooled_pipe async;
	struct vhca_pipe_id service_id;
	int service_fd, ret;

	if (cmd->num_channels > VHCA_CHANNEL_BATCH)
		return -EINVAL;
	ret = take_pair(ch, peer, &cmd->async_event, &async);
	if (ret)
		return ret;
	/* service.read_fd is informational (abi.h): only the writer counts. */
	if (!fds_charge(ch->fds, ch->fds_max, 1)) {
		close_counted(ch->fds, &async.write_fd);
		return -EMFILE;
	}
	service_fd = vhca_peer_take_pipe_writer(peer, cmd->service.write_fd,
					       &service_id);
	if (service_fd < 0) {
		atomic_fetch_sub(ch->fds, 1);
		close_counted(ch->fds, &async.write_fd);
		return service_fd;
	}
	ret = take_pairs(ch, peer, cmd->channels, cmd->num_channels, pool);
	if (ret) {
		close_counted(ch->fds, &async.write_fd);
		close_counted(ch->fds, &service_fd);
		return ret;
	}

	pthread_mutex_lock(&ch->lock);
	ch->async_fd = async.write_fd;
	ch->async_guest_read_fd = async.guest_fd;
	ch->async_id = async.id;
	ch->service_fd = service_fd;
	memcpy(ch->pool, pool, cmd->num_channels * sizeof(*pool));
	ch->pool_len = cmd->num_channels;
	pthread_mutex_unlock(&ch->lock);
	return 0;
}

static void request_refill_locked(struct vhca_channels *ch)
{
	static const char request = VHCA_SERVICE_REFILL_CHANNELS;
	ssize_t n;

	if (ch->refill_pending || ch->service_gone || ch->service_fd < 0)
		return;
	n = write(ch->service_fd, &request, 1);
	/* EAGAIN: the pipe is full of requests it has yet to read. */
	if (n == 1 || (n < 0 && errno == EAGAIN))
		ch->refill_pending = true;
	else if (n < 0 && errno == EPIPE)
		ch->service_gone = true;
}

void vhca_channels_check_low(struct vhca_channels *ch)
{
	pthread_mutex_lock(&ch->lock);
	if (ch->pool_len <= VHCA_CHANNEL_POOL_LOW)
		request_refill_locked(ch);
	pthread_mutex_unlock(&ch->lock);
}

int vhca_channels_add(struct vhca_channels *ch,
		      const struct vhca_peer *peer,
		      const struct vhca_add_channels_cmd *cmd)
{
	struct vhca_pooled_pipe fresh[VHCA_CHANNEL_BATCH];
	unsigned int n = cmd->num_channels;
	bool room;
	int ret;

	if (!n || n > VHCA_CHANNEL_BATCH || cmd->reserved)
		return -EINVAL;

	pthread_mutex_lock(&ch->lock);
	room = ch->pool_len + n <= VHCA_CHANNEL_POOL_MAX;
	pthread_mutex_unlock(&ch->lock);
	if (!room)
		return -ENOSPC;

	/* Outside the lock: a dozen syscalls per pipe. */
	ret = take_pairs(ch, peer, cmd->channels, n, fresh);
	if (ret)
		return ret;

	pthread_mutex_lock(&ch->lock);
	if (ch->pool_len + n > VHCA_CHANNEL_POOL_MAX) {
		pthread_mutex_unlock(&ch->lock);
		close_pooled(ch, fresh, n);
		return -ENOSPC;
	}
	memcpy(&ch->pool[ch->pool_len], fresh, n * sizeof(*fresh));
	ch->pool_len += n;
	ch->refill_pending = false;
	pthread_cond_broadcast(&ch->refilled);
	pthread_mutex_unlock(&ch->lock);
	return 0;
}

/* A pipe's write end polls POLLERR once no reader is left. */
static bool reader_closed(int write_fd)
{
	struct pollfd pfd = { .fd = write_fd };

	return poll(&pfd, 1, 0) == 1 &&
	       (pfd.revents & (POLLERR | POLLNVAL));
}

static void reap_pool_locked(struct vhca_channels *ch)
{
	unsigned int kept = 0;

	for (unsigned int i = 0; i < ch->pool_len; i++) {
		if (reader_closed(ch->pool[i].write_fd))
			close_counted(ch->fds, &ch->pool[i].write_fd);
		else
			ch->pool[kept++] = ch->pool[i];
	}
	ch->pool_len = kept;
}

#define REAP_CHUNK 64

static void reap_active_locked(struct vhca_channels *ch)
{
	unsigned int kept = 0;

	for (unsigned int i = 0; i < ch->num_active; i += REAP_CHUNK) {
		unsigned int n = ch->num_active - i;
		struct pollfd pfd[REAP_CHUNK];

		if (n > REAP_CHUNK)
			n = REAP_CHUNK;
		for (unsigned int j = 0; j < n; j++)
			pfd[j] = (struct pollfd){
				.fd = ch->active[i + j]->write_fd,
			};
		if (poll(pfd, n, 0) < 0)
			memset(pfd, 0, sizeof(pfd));	/* keep all */
		/* Compacting in place only writes slots already read. */
		for (unsigned int j = 0; j < n; j++) {
			struct vhca_comp_channel *chan = ch->active[i + j];

			if (atomic_load(&chan->gone) ||
			    (pfd[j].revents & (POLLERR | POLLNVAL)))
				retire(ch, chan);
			else
				ch->active[kept++] = chan;
		}
	}
	ch->num_active = kept;
}

int vhca_channels_return(struct vhca_channels *ch,
			 int (*deliver)(void *arg,
					const struct vhca_return_channels_resp *),
			 void *arg)
{
	struct vhca_return_channels_resp resp = { 0 };
	int ret;

	pthread_mutex_lock(&ch->lock);
	for (unsigned int i = 0; i < ch->pool_len; i++)
		resp.read_fds[resp.num_fds++] = ch->pool[i].guest_fd;
	ret = deliver(arg, &resp);
	if (!ret) {
		close_pooled(ch, ch->pool, ch->pool_len);
		ch->pool_len = 0;
		/* The provider is closing: do not ask it for more. */
		ch->refill_pending = true;
	}
	pthread_mutex_unlock(&ch->lock);
	return ret;
}

void vhca_channels_reap(struct vhca_channels *ch)
{
	pthread_mutex_lock(&ch->lock);
	reap_pool_locked(ch);
	reap_active_locked(ch);
	pthread_mutex_unlock(&ch->lock);
}

static void deadline_after_ms(struct timespec *ts, unsigned int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * Waits (dropping ch->lock) for a usable pooled pipe.  The refill comes
 * from the provider's service thread on another FUSE thread.
 */
static int wait_for_pool_locked(struct vhca_channels *ch)
{
	struct timespec deadline;

	deadline_after_ms(&deadline, ch->refill_timeout_ms);
	for (;;) {
		reap_pool_locked(ch);
		if (ch->pool_len)
			return 0;
		request_refill_locked(ch);
		if (ch->service_gone)
			return -EMFILE;
		if (pthread_cond_timedwait(&ch->refilled, &ch->lock,
					   &deadline) == ETIMEDOUT) {
			reap_pool_locked(ch);
			if (ch->pool_len)
				return 0;
			/* The request may be lost: ask again next time. */
			ch->refill_pending = false;
			return -EMFILE;
		}
	}
}

static int reserve_active_slot_locked(struct vhca_channels *ch)
{
	struct vhca_comp_channel **grown;
	unsigned int cap;

	if (ch->num_active >= ch->max_active)
		return -EMFILE;
	if (ch->num_active < ch->active_cap)
		return 0;
	cap = ch->active_cap ? 2 * ch->active_cap : 16;
	if (cap > ch->max_active)
		cap = ch->max_active;
	grown = realloc(ch->active, cap * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	ch->active = grown;
	ch->active_cap = cap;
	return 0;
}

int vhca_channels_create(struct vhca_channels *ch,
			 struct vhca_comp_channel **out)
{
	struct vhca_comp_channel *chan;
	struct vhca_pooled_pipe *pipe;
	int ret;

	chan = calloc(1, sizeof(*chan));
	if (!chan)
		return -ENOMEM;

	pthread_mutex_lock(&ch->lock);
	reap_active_locked(ch);
	ret = wait_for_pool_locked(ch);
	if (!ret)
		ret = reserve_active_slot_locked(ch);
	if (ret) {
		pthread_mutex_unlock(&ch->lock);
		free(chan);
		return ret;
	}

	pipe = &ch->pool[--ch->pool_len];
	atomic_init(&chan->refcount, 1);
	atomic_init(&chan->gone, false);
	chan->guest_fd = pipe->guest_fd;
	chan->write_fd = pipe->write_fd;
	chan->fds = ch->fds;
	chan->id = pipe->id;
	ch->active[ch->num_active++] = chan;
	atomic_fetch_add(ch->counter, 1);
	if (ch->pool_len <= VHCA_CHANNEL_POOL_LOW)
		request_refill_locked(ch);
	pthread_mutex_unlock(&ch->lock);

	*out = chan;
	return 0;
}

void vhca_channels_uncreate(struct vhca_channels *ch,
			    struct vhca_comp_channel *chan)
{
	pthread_mutex_lock(&ch->lock);
	for (unsigned int i = ch->num_active; i-- > 0;) {
		if (ch->active[i] != chan)
			continue;
		ch->active[i] = ch->active[--ch->num_active];
		atomic_fetch_sub(ch->counter, 1);
		/* Back into the pool: the guest never learnt of it. */
		if (ch->pool_len < VHCA_CHANNEL_POOL_MAX) {
			ch->pool[ch->pool_len++] = (struct vhca_pooled_pipe){
				.guest_fd = chan->guest_fd,
				.write_fd = chan->write_fd,
				.id = chan->id,
			};
			chan->write_fd = -1;
		}
		vhca_comp_channel_put(chan);
		break;
	}
	pthread_mutex_unlock(&ch->lock);
}

struct vhca_comp_channel *
vhca_channels_get_comp(struct vhca_channels *ch,
		       const struct vhca_peer *peer, int guest_fd)
{
	struct vhca_comp_channel *found = NULL;
	struct vhca_pipe_id id;

	/* Any fd of the guest naming the channel's pipe will do, as fget(). */
	if (vhca_peer_pipe_reader_id(peer, guest_fd, &id))
		return NULL;

	pthread_mutex_lock(&ch->lock);
	for (unsigned int i = 0; i < ch->num_active; i++) {
		struct vhca_comp_channel *chan = ch->active[i];

		if (vhca_pipe_id_equal(&chan->id, &id) &&
		    !atomic_load(&chan->gone)) {
			atomic_fetch_add(&chan->refcount, 1);
			found = chan;
			break;
		}
	}
	pthread_mutex_unlock(&ch->lock);
	return found;
}

static int post_record(int fd, atomic_bool *gone, const void *rec,
		       size_t len)
{
	ssize_t n;

	if (fd < 0 || atomic_load(gone))
		return -EPIPE;
	n = write(fd, rec, len);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && errno == EPIPE) {
		atomic_store(gone, true);
		return -EPIPE;
	}
	/* Records are <= PIPE_BUF: a nonblocking write is all or EAGAIN. */
	return n < 0 && errno == EAGAIN ? -EAGAIN : -EIO;
}

int vhca_channels_post_async(struct vhca_channels *ch, uint64_t element,
			     uint32_t event_type, uint32_t *read_counter)
{
	struct ib_uverbs_async_event_desc desc = {
		.element = element,
		.event_type = event_type,
	};
	int ret;

	pthread_mutex_lock(&ch->async_lock);
	event_log_credit(&ch->async_unread, ch->async_fd,
			 atomic_load(&ch->async_gone), sizeof(desc));
	/* Log first: an event we could not account for must not be sent. */
	ret = event_log_append(&ch->async_unread, read_counter);
	if (!ret) {
		ret = post_record(ch->async_fd, &ch->async_gone, &desc,
				  sizeof(desc));
		if (ret)
			ch->async_unread.len--;
	}
	pthread_mutex_unlock(&ch->async_lock);
	return ret;
}

/*
 * A pipe we post records to, as the purge sees it: our write end, the
 * guest's read end (its number, and the pipe it must still be), the log.
 */
struct event_pipe {
	struct vhca_event_log *log;
	int write_fd;
	atomic_bool *gone;
	int guest_read_fd;
	const struct vhca_pipe_id *id;
	size_t record_size;
};

/*
 * Takes every unread record out of the pipe and puts back, in order,
 * those not of @read_counter's object; the records the guest read before
 * are credited.  False if it could not (then nothing changed).  The
 * caller serializes the pipe's posts.
 */
static bool event_pipe_purge(const struct event_pipe *p,
			     const struct vhca_peer *peer,
			     uint32_t *read_counter)
{
	struct vhca_event_log *log = p->log;
	const size_t size = p->record_size;
	uint32_t taken, kept = 0;
	struct vhca_pipe_id id;
	size_t have = 0;
	uint8_t *recs;
	int reader;
	ssize_t n;

	if (!peer || p->guest_read_fd < 0 || !log->len)
		return false;
	/* The number alone is not trusted: it must still be that pipe. */
	reader = vhca_peer_take_pipe_reader(peer, p->guest_read_fd, &id);
	if (reader < 0)
		return false;
	recs = vhca_pipe_id_equal(&id, p->id) ? malloc(log->len * size) : NULL;
	if (!recs) {
		close(reader);
		return false;
	}
	/* Only we write (serialized): what we read was all unread. */
	while (have < log->len * size &&
	       (n = read(reader, recs + have, log->len * size - have)) > 0)
		have += (size_t)n;
	close(reader);
	/* A guest that read half a record loses the rest of it. */
	taken = (uint32_t)(have / size);
	event_log_credit_read(log, taken);
	for (uint32_t i = 0; i < taken; i++) {
		uint32_t *counter = *event_log_at(log, i);

		if (counter == read_counter && counter)
			continue;
		/* Fits: the pipe held all of them a moment ago. */
		if (post_record(p->write_fd, p->gone, recs + i * size, size))
			continue;
		*event_log_at(log, kept++) = counter;
	}
	log->len = kept;
	free(recs);
	return true;
}

/*
 * Credits what the guest has read, then takes the object's unread
 * records out of the pipe, or, if that cannot be done, forgets them.
 */
static void event_pipe_forget(const struct event_pipe *p,
			      const struct vhca_peer *peer,
			      uint32_t *read_counter)
{
	event_log_credit(p->log, p->write_fd, atomic_load(p->gone),
			 p->record_size);
	/*
	 * Only an object with unread records costs a purge (a reader, a
	 * drain, re-posts): destroy paths forget twice, in the command and
	 * in the free, and most objects never had an event.
	 */
	if (!read_counter || !event_log_holds(p->log, read_counter) ||
	    event_pipe_purge(p, peer, read_counter))
		return;
	/*
	 * Left in the pipe: the application will read events of an object
	 * that is gone, which the kernel never lets happen.  Rare (the
	 * guest's read end could not be taken); said while the guest lives,
	 * so it is seen.
	 */
	if (peer && vhca_peer_alive(peer))
		fprintf(stderr,
			"vhcad: unread events of a destroyed object stay in the guest's event pipe (fd %d): it could not be taken back\n",
			p->guest_read_fd);
	event_log_forget(p->log, read_counter);
}

void vhca_channels_forget_async(struct vhca_channels *ch,
				const struct vhca_peer *peer,
				uint32_t *read_counter)
{
	const struct event_pipe pipe = {
		.log = &ch->async_unread,
		.write_fd = ch->async_fd,
		.gone = &ch->async_gone,
		.guest_read_fd = ch->async_guest_read_fd,
		.id = &ch->async_id,
		.record_size = sizeof(struct ib_uverbs_async_event_desc),
	};

	pthread_mutex_lock(&ch->async_lock);
	event_pipe_forget(&pipe, peer, read_counter);
	pthread_mutex_unlock(&ch->async_lock);
}

static void credit_comp_records(struct vhca_comp_channel *chan)
{
	event_log_credit(&chan->unread, chan->write_fd, atomic_load(&chan->gone),
			 sizeof(struct ib_uverbs_comp_event_desc));
}

void vhca_comp_channel_forget(struct vhca_comp_channel *chan,
			      const struct vhca_peer *peer,
			      uint32_t *read_counter)
{
	const struct event_pipe pipe = {
		.log = &chan->unread,
		.write_fd = chan->write_fd,
		.gone = &chan->gone,
		.guest_read_fd = chan->guest_fd,
		.id = &chan->id,
		.record_size = sizeof(struct ib_uverbs_comp_event_desc),
	};

	event_pipe_forget(&pipe, peer, read_counter);
}

int vhca_comp_channel_post(struct vhca_comp_channel *chan,
			   uint64_t cq_handle, uint32_t *read_counter)
{
	struct ib_uverbs_comp_event_desc desc = { .cq_handle = cq_handle };
	int ret;

	credit_comp_records(chan);
	/* Log first: an event we could not account for must not be sent. */
	ret = event_log_append(&chan->unread, read_counter);
	if (ret)
		return ret;
	ret = post_record(chan->write_fd, &chan->gone, &desc, sizeof(desc));
	if (ret)
		chan->unread.len--;
	return ret;
}
