// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The two ucma commands that reach outside their body (ucma.h):
 * SET_OPTION reads its value from the caller's memory, MIGRATE_ID names
 * another event channel by the caller's fd.  Both do that before taking
 * cm_lock() (cm.h: nothing under it touches a tenant).
 *
 * MIGRATE_ID: the daemon cannot see which open of the rdma_cm file an
 * fd is from its inode (every open shares it).  It takes the fd
 * (pidfd_getfd), checks that it is the FUSE rdma_cm file, and writes a
 * probe with a fresh token through it: that write arrives as a FUSE
 * request of exactly that open, which records the token (ucma.c).
 * That write needs a FUSE worker to serve it, so MIGRATE_ID never runs
 * on one: the request is held and one thread of its own runs the
 * migrations in turn (ucma_migrate_async()).  However many a tenant
 * issues at once, no worker waits for another.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <infiniband/sa.h>
#include <rdma/rdma_user_cm.h>

#include "cma.h"
#include "peer.h"
#include "ucma.h"

#define OPTLEN_MAX 4096u

static uint64_t be_at(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ucma_set_ib_path(): the primary, bidirectional GMP path of the list. */
static int ib_path(struct cm_id *id, const uint8_t *val, uint32_t len)
{
	const uint32_t want = IBV_PATH_FLAG_GMP | IBV_PATH_FLAG_PRIMARY |
			      IBV_PATH_FLAG_BIDIRECTIONAL;
	const struct ibv_path_data *d = NULL;
	struct cm_path p = { 0 };

	if (!len || len % sizeof(*d))
		return -EINVAL;
	for (uint32_t off = 0; off < len; off += sizeof(*d)) {
		const struct ibv_path_data *cur = (const void *)(val + off);

		if (cur->flags == want) {
			d = cur;
			break;
		}
	}
	if (!d)
		return -EINVAL;
	p.subnet_prefix = be_at(d->path.sgid.raw);
	p.sgid_guid = be_at(d->path.sgid.raw + 8);
	p.dgid_guid = be_at(d->path.dgid.raw + 8);
	p.slid = be16toh(d->path.slid);
	p.dlid = be16toh(d->path.dlid);
	p.pkey = be16toh(d->path.pkey);
	p.sl = be16toh(d->path.qosclass_sl) & 0xf;
	p.mtu = d->path.mtu & 0x3f;
	p.rate = d->path.rate & 0x3f;
	p.packet_life_time = d->path.packetlifetime & 0x3f;
	p.hop_limit = (uint8_t)be32toh(d->path.flowlabel_hoplimit);
	p.flow_label = be32toh(d->path.flowlabel_hoplimit) >> 8 & 0xfffff;
	p.traffic_class = d->path.tclass;
	return cma_set_ib_path(id, &p);
}

static int id_option(struct cm_id *id, uint32_t name, const uint8_t *val,
		     uint32_t len)
{
	int on;

	switch (name) {
	case RDMA_OPTION_ID_TOS:
		if (len != sizeof(uint8_t))
			return -EINVAL;
		id->tos = val[0];
		id->tos_set = true;
		return 0;
	case RDMA_OPTION_ID_REUSEADDR:
		if (len != sizeof(int))
			return -EINVAL;
		memcpy(&on, val, sizeof(on));
		/* rdma_set_reuseaddr(): only before listening, or unbound. */
		if ((on && id->state != CMA_LISTEN) || id->state == CMA_IDLE) {
			id->reuseaddr = on != 0;
			return 0;
		}
		return -EINVAL;
	case RDMA_OPTION_ID_AFONLY:
		if (len != sizeof(int))
			return -EINVAL;
		if (id->state != CMA_IDLE && id->state != CMA_ADDR_BOUND)
			return -EINVAL;
		memcpy(&on, val, sizeof(on));
		id->afonly = on != 0;
		id->afonly_set = true;
		return 0;
	case RDMA_OPTION_ID_ACK_TIMEOUT:
		if (len != sizeof(uint8_t) || id->qp_type != IBV_QPT_RC)
			return -EINVAL;
		id->timeout = val[0] > 31 ? 31 : val[0];
		id->timeout_set = true;
		return 0;
	default:
		return -ENOSYS;
	}
}

int ucma_set_option(struct ucma_file *file, const uint8_t *in)
{
	struct rdma_ucm_set_option cmd;
	struct cm_id *id;
	uint8_t *val;
	int ret;

	memcpy(&cmd, in, sizeof(cmd));
	if (cmd.optlen > OPTLEN_MAX)
		return -EINVAL;
	val = malloc(cmd.optlen ? cmd.optlen : 1);
	if (!val)
		return -ENOMEM;
	if (cmd.optlen && vhca_peer_read(ucma_file_peer(file), cmd.optval, val,
					 cmd.optlen)) {
		free(val);
		return -EFAULT;
	}
	cm_lock();
	ret = ucma_find(file, cmd.id, &id);
	if (!ret) {
		if (cmd.level == RDMA_OPTION_ID)
			ret = id_option(id, cmd.optname, val, cmd.optlen);
		else if (cmd.level == RDMA_OPTION_IB &&
			 cmd.optname == RDMA_OPTION_IB_PATH)
			ret = ib_path(id, val, cmd.optlen);
		else
			ret = -ENOSYS;
	}
	cm_unlock();
	free(val);
	return ret;
}

/* Which open of ours @fd is: the probe's token comes back through it. */
static struct ucma_file *file_of_fd(int fd)
{
	struct {
		struct rdma_ucm_cmd_hdr hdr;
		uint64_t token;
	} __attribute__((packed)) probe = {
		.hdr = { .cmd = UCMA_PROBE_CMD, .in = sizeof(uint64_t) },
	};
	struct ucma_file *f;

	probe.token = (uint64_t)cm_random32() << 32 | cm_random32() | 1;
	if (!ucma_fuse_is_ours(fd) ||
	    write(fd, &probe, sizeof(probe)) != (ssize_t)sizeof(probe))
		return NULL;
	cm_lock();
	f = ucma_file_by_token(probe.token);
	/* The caller holds the fd (ours is a dup): @f stays while it does. */
	cm_unlock();
	return f;
}

/*
 * As the kernel's ucma_migrate_id(): the write arrives on the channel the
 * id moves to; cmd.fd names the channel it is in now.
 */
int ucma_migrate(struct ucma_file *file, const uint8_t *in, size_t out_len)
{
	struct rdma_ucm_migrate_id cmd;
	struct rdma_ucm_migrate_resp resp;
	struct ucma_file *from;
	struct cm_id *id;
	int fd, ret;

	if (out_len < sizeof(resp))
		return -ENOSPC;
	memcpy(&cmd, in, sizeof(cmd));
	fd = vhca_peer_take_any_fd(ucma_file_peer(file), (int)cmd.fd);
	if (fd < 0)
		return fd == -EINVAL ? -ENOENT : fd;	/* fdget(): no file */
	from = file_of_fd(fd);
	if (!from) {
		close(fd);
		return -EINVAL;		/* not an rdma_cm file */
	}
	cm_lock();
	ret = ucma_find(from, cmd.id, &id);
	if (!ret) {
		if (from != file)
			ucma_move_id(id, file);
		resp.events_reported = id->events_reported;
	}
	cm_unlock();
	/* Only now: our dup kept @from from being released meanwhile. */
	close(fd);
	if (ret)
		return ret;
	return vhca_peer_write(ucma_file_peer(file), cmd.response, &resp,
			       sizeof(resp)) ? -EFAULT : 0;
}

/* ---- the migration thread -------------------------------------------------------------- */

struct migration {
	struct migration *next;
	struct ucma_file *file;	/* the open stays while its write is held */
	void *req;
	size_t out_len;
	ssize_t done;
	uint8_t in[sizeof(struct rdma_ucm_migrate_id)];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct migration *head, **tail;
	pthread_once_t once;
	bool started;
} mig = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.tail = &mig.head,
	.once = PTHREAD_ONCE_INIT,
};

static void *migrator(void *arg)
{
	(void)arg;
	for (;;) {
		struct migration *m;
		int ret;

		pthread_mutex_lock(&mig.lock);
		while (!mig.head)
			pthread_cond_wait(&mig.cond, &mig.lock);
		m = mig.head;
		mig.head = m->next;
		if (!mig.head)
			mig.tail = &mig.head;
		pthread_mutex_unlock(&mig.lock);
		ret = ucma_migrate(m->file, m->in, m->out_len);
		ucma_fuse_reply(m->req, ret ? ret : m->done);
		free(m);
	}
	return NULL;
}

static void start_migrator(void)
{
	pthread_t t;

	if (!pthread_create(&t, NULL, migrator, NULL)) {
		pthread_detach(t);
		mig.started = true;
	}
}

ssize_t ucma_migrate_async(struct ucma_file *file, const uint8_t *in,
			   size_t out_len, size_t len, void *req)
{
	struct migration *m;

	pthread_once(&mig.once, start_migrator);
	if (!mig.started)
		return -ENOMEM;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->file = file;
	m->req = req;
	m->out_len = out_len;
	m->done = (ssize_t)len;
	memcpy(m->in, in, sizeof(m->in));
	pthread_mutex_lock(&mig.lock);
	*mig.tail = m;
	mig.tail = &m->next;
	pthread_cond_signal(&mig.cond);
	pthread_mutex_unlock(&mig.lock);
	return UCMA_HELD;
}
