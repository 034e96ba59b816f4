// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ucma files (ucma.h): ids found by handle, events queued per file and
 * taken by GET_EVENT, which blocks (the FUSE request is held, never a
 * worker), answers EAGAIN under O_NONBLOCK, and is interrupted by a
 * signal; poll() says whether an event waits.  As the kernel's ucma.c:
 * handles are global and an id of another file is EINVAL, a request's
 * new id is published only when its CONNECT_REQUEST is read, and an
 * event counts as reported (DESTROY_ID's answer, which librdmacm waits
 * for) when it is read: CONNECT_REQUEST on its listener.
 *
 * Responses go into the caller's memory after cm_unlock() (cm.h): an
 * event taken for a GET_EVENT whose response pointer faults is lost
 * with EFAULT, as the caller asked for it into nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rdma/rdma_user_cm.h>

#include "cma.h"
#include "guests.h"
#include "peer.h"
#include "ucma.h"

struct ucma_waiter {
	struct ucma_waiter *next;
	void *req;
	uint64_t response;
	size_t out_len;
	ssize_t done;		/* what the write returns once answered */
};

struct ucma_file {
	struct vhca_peer *peer;		/* the process, from its first write */
	int domain;
	struct cm_id *ids;
	struct cm_event *events, **events_tail;
	struct ucma_waiter *waiters;
	void *ph;			/* poll handle to notify */
	uint64_t token;			/* MIGRATE_ID's probe (ucma_cmds.c) */
	struct ucma_file *next, **pprev;
};

#define HANDLE_BUCKETS 4096u

static struct cm_id *handles[HANDLE_BUCKETS];
static uint32_t next_handle = 1;
static struct ucma_file *files;

/* ---- files ------------------------------------------------------------------------- */

struct ucma_file *ucma_open(void)
{
	struct ucma_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->events_tail = &f->events;
	f->domain = CM_DOMAIN_HOST;
	cm_lock();
	f->next = files;
	if (files)
		files->pprev = &f->next;
	f->pprev = &files;
	files = f;
	cm_unlock();
	return f;
}

struct vhca_peer *ucma_file_peer(struct ucma_file *file)
{
	return file->peer;
}

int ucma_file_domain(struct ucma_file *file)
{
	return file->domain;
}

/* The domain of a caller: the guest's VF when a guest owns one (cm.h). */
static int domain_of(pid_t tid)
{
	struct vhca_guests *g = cm_guests();

	for (unsigned int vf = 0; vf < VHCA_MAX_VFS; vf++)
		if (vhca_guests_own(g, vf) && !vhca_guests_check(g, true, vf, tid))
			return (int)vf;
	return CM_DOMAIN_HOST;
}

/*
 * Bound rdma_cm files one domain (a guest, or the host) may hold.  Each
 * holds two of vhcad's fds (its peer's pidfd and mem fd) that no VF's fd
 * share counts, so a guest opening files until its own limits stopped
 * it (one process after another) took vhcad's fds from every tenant.
 * librdmacm opens one file per event channel, rsockets one per socket.
 */
#define UCMA_FILES_PER_DOMAIN 1024

/* Files of @domain with a peer bound.  Under cm_lock(). */
static unsigned int bound_files(int domain)
{
	unsigned int n = 0;

	for (struct ucma_file *f = files; f; f = f->next)
		if (f->peer && f->domain == domain)
			n++;
	return n;
}

struct ucma_file *ucma_file_by_token(uint64_t token)
{
	for (struct ucma_file *f = files; f; f = f->next)
		if (token && f->token == token) {
			f->token = 0;	/* used once */
			return f;
		}
	return NULL;
}

/* ---- ids ------------------------------------------------------------------------------ */

int ucma_find(struct ucma_file *file, uint32_t handle, struct cm_id **out)
{
	struct cm_id *id = handles[handle % HANDLE_BUCKETS];

	while (id && id->handle != handle)
		id = id->hash_next;
	if (!id || !id->published)
		return -ENOENT;
	if (id->file != file)
		return -EINVAL;
	*out = id;
	return 0;
}

/* A handle and a place in the table and the file; not yet findable. */
static void enter(struct cm_id *id)
{
	struct cm_id *cur;
	uint32_t h;

	if (id->file_pprev)
		return;
	do {
		h = next_handle++;
		for (cur = handles[h % HANDLE_BUCKETS]; cur && cur->handle != h;)
			cur = cur->hash_next;
	} while (cur);
	id->handle = h;
	id->hash_next = handles[h % HANDLE_BUCKETS];
	handles[h % HANDLE_BUCKETS] = id;
	id->file_next = id->file->ids;
	if (id->file->ids)
		id->file->ids->file_pprev = &id->file_next;
	id->file_pprev = &id->file->ids;
	id->file->ids = id;
}

int ucma_publish(struct cm_id *id)
{
	enter(id);
	id->published = true;
	return 0;
}

static void leave(struct cm_id *id)
{
	struct cm_id **p;

	if (!id->file_pprev)
		return;
	for (p = &handles[id->handle % HANDLE_BUCKETS]; *p; p = &(*p)->hash_next)
		if (*p == id) {
			*p = id->hash_next;
			break;
		}
	*id->file_pprev = id->file_next;
	if (id->file_next)
		id->file_next->file_pprev = id->file_pprev;
	id->file_pprev = NULL;
	id->file_next = NULL;
}

void ucma_free_id(struct cm_id *id)
{
	ucma_forget_joins(id);
	ucma_drop_events(id);
	leave(id);
	free(id);
}

void ucma_for_each_id(void (*fn)(struct cm_id *id, void *arg), void *arg)
{
	for (struct ucma_file *f = files; f; f = f->next)
		for (struct cm_id *id = f->ids, *next; id; id = next) {
			next = id->file_next;
			fn(id, arg);
		}
}

static void serve_waiter(struct ucma_file *file);

/* The queue's tail again, after events were taken out of its middle. */
static void retail(struct ucma_file *file)
{
	file->events_tail = &file->events;
	while (*file->events_tail)
		file->events_tail = &(*file->events_tail)->next;
}

void ucma_move_id(struct cm_id *id, struct ucma_file *to)
{
	struct ucma_file *from = id->file;
	struct cm_event **p = &from->events;

	/* Its events travel with it, in order, to the end of @to's queue. */
	while (*p) {
		struct cm_event *e = *p;

		if (e->id != id || e->listen) {
			p = &e->next;
			continue;
		}
		*p = e->next;
		e->next = NULL;
		*to->events_tail = e;
		to->events_tail = &e->next;
	}
	retail(from);
	*id->file_pprev = id->file_next;
	if (id->file_next)
		id->file_next->file_pprev = id->file_pprev;
	ucma_move_joins(id, to);
	id->file = to;
	id->file_next = to->ids;
	if (to->ids)
		to->ids->file_pprev = &id->file_next;
	id->file_pprev = &to->ids;
	to->ids = id;
	serve_waiter(to);
	if (to->events && to->ph)
		ucma_fuse_notify(to->ph);
}

/* ---- events ---------------------------------------------------------------------------- */

struct delivery {
	struct cm_deferred d;
	void *req;
	struct vhca_peer *peer;
	uint64_t response;
	size_t len;
	ssize_t done;
	struct rdma_ucm_event_resp resp;
};

static void deliver(struct cm_deferred *d)
{
	struct delivery *dl = (struct delivery *)d;
	int ret = vhca_peer_write(dl->peer, dl->response, &dl->resp, dl->len);

	ucma_fuse_reply(dl->req, ret ? -EFAULT : dl->done);
	vhca_peer_put(dl->peer);
	free(dl);
}

int ucma_take_event(struct ucma_file *file, void *resp, size_t len)
{
	struct cm_event *e = file->events;
	struct cm_id *counted;

	if (!e)
		return -EAGAIN;
	file->events = e->next;
	if (!file->events)
		file->events_tail = &file->events;
	counted = e->listen ? e->listen : e->id;
	if (e->mc_reported)
		(*e->mc_reported)++;	/* the join's: LEAVE_MCAST reports it */
	else
		counted->events_reported++;
	if (e->resp.event == CM_EV_CONNECT_REQUEST) {
		e->id->published = true;	/* ucma_finish_ctx() */
		/* Read requests leave the backlog (ucma_get_event()). */
		if (e->listen)
			e->listen->backlog++;
	}
	memcpy(resp, &e->resp, len < sizeof(e->resp) ? len : sizeof(e->resp));
	free(e);
	return 0;
}

/* Answers the oldest waiting GET_EVENT with the oldest event. */
static void serve_waiter(struct ucma_file *file)
{
	struct ucma_waiter *w = file->waiters;
	struct delivery *dl;

	if (!w || !file->events)
		return;
	dl = calloc(1, sizeof(*dl));
	if (!dl)
		return;		/* memory is short: the next event tries again */
	file->waiters = w->next;
	dl->req = w->req;
	dl->response = w->response;
	dl->len = w->out_len < sizeof(dl->resp) ? w->out_len : sizeof(dl->resp);
	dl->done = w->done;
	dl->peer = file->peer;
	vhca_peer_get(dl->peer);
	ucma_take_event(file, &dl->resp, sizeof(dl->resp));
	dl->d.run = deliver;
	cm_defer(&dl->d);
	free(w);
}

/* @e at the end of @file's queue; a waiter or a poller hears of it. */
static void queue_event(struct ucma_file *file, struct cm_event *e)
{
	*file->events_tail = e;
	file->events_tail = &e->next;
	serve_waiter(file);
	if (file->events && file->ph)
		ucma_fuse_notify(file->ph);
}

void ucma_post(struct cm_id *id, struct cm_id *listen, uint32_t event,
	       int32_t status, const struct rdma_ucm_event_resp *param)
{
	struct ucma_file *file = listen ? listen->file : id->file;
	struct cm_event *e;

	/* ucma_event_handler(): nothing for a request's id before ACCEPT. */
	if (!listen && !id->uid)
		return;
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	enter(id);
	if (param)
		e->resp = *param;
	e->id = id;
	e->listen = listen;
	e->resp.uid = listen ? listen->uid : id->uid;
	e->resp.id = id->handle;
	e->resp.event = event;
	e->resp.status = (uint32_t)status;
	queue_event(file, e);
}

void ucma_post_mc(struct cm_id *id, const void *mc, uint32_t *reported,
		  uint32_t event, const struct rdma_ucm_event_resp *param)
{
	struct ucma_file *file = id->file;
	struct cm_event *e = calloc(1, sizeof(*e));

	if (!e)
		return;
	enter(id);
	e->resp = *param;
	e->resp.event = event;
	e->id = id;
	e->mc = mc;
	e->mc_reported = reported;
	queue_event(file, e);
}

void ucma_drop_mc_events(struct cm_id *id, const void *mc)
{
	struct ucma_file *file = id->file;
	struct cm_event **p = &file->events;

	while (*p) {
		struct cm_event *e = *p;

		if (e->mc != mc) {
			p = &e->next;
			continue;
		}
		*p = e->next;
		free(e);
	}
	retail(file);
}

void ucma_drop_events(struct cm_id *id)
{
	struct ucma_file *file = id->file;
	struct cm_event **p = &file->events;

	while (*p) {
		struct cm_event *e = *p;

		if (e->id != id && e->listen != id) {
			p = &e->next;
			continue;
		}
		*p = e->next;
		/* A request nobody read dies with its listener (REJ). */
		if (e->listen == id && e->id != id) {
			cma_destroy(e->id);
			leave(e->id);
			free(e->id);
		}
		free(e);
	}
	retail(file);
}

/* ---- the file's operations --------------------------------------------------------- */

bool ucma_poll(struct ucma_file *file, void *ph)
{
	void *old = NULL;
	bool ready;

	cm_lock();
	if (ph) {
		old = file->ph;
		file->ph = ph;
	}
	ready = file->events != NULL;
	cm_unlock();
	if (old)
		ucma_fuse_forget(old);
	return ready;
}

void ucma_interrupt(struct ucma_file *file, void *req)
{
	struct ucma_waiter **p, *w = NULL;

	cm_lock();
	for (p = &file->waiters; *p; p = &(*p)->next)
		if ((*p)->req == req) {
			w = *p;
			*p = w->next;
			break;
		}
	cm_unlock();
	if (w) {
		ucma_fuse_reply(req, -EINTR);
		free(w);
	}
}

static ssize_t get_event(struct ucma_file *file, bool nonblock,
			 const uint8_t *in, size_t in_len, size_t out_len,
			 size_t len, void *req)
{
	struct rdma_ucm_get_event cmd;
	struct rdma_ucm_event_resp resp;
	struct ucma_waiter *w;
	int ret;

	if (in_len < sizeof(cmd))
		return -EINVAL;
	memcpy(&cmd, in, sizeof(cmd));
	/* The ECE trailer is optional (older librdmacm). */
	if (out_len < offsetof(struct rdma_ucm_event_resp, ece))
		return -ENOSPC;
	if (out_len > sizeof(resp))
		out_len = sizeof(resp);
	cm_lock();
	ret = ucma_take_event(file, &resp, sizeof(resp));
	if (ret && !nonblock) {
		w = calloc(1, sizeof(*w));
		if (!w) {
			cm_unlock();
			return -ENOMEM;
		}
		*w = (struct ucma_waiter){ .req = req, .response = cmd.response,
					   .out_len = out_len,
					   .done = (ssize_t)len };
		/* In arrival order: the oldest waiter gets the next event. */
		struct ucma_waiter **p = &file->waiters;

		while (*p)
			p = &(*p)->next;
		if (ucma_fuse_interrupted(req)) {
			cm_unlock();
			free(w);
			return -EINTR;
		}
		*p = w;
		cm_unlock();
		return UCMA_HELD;
	}
	cm_unlock();
	if (ret)
		return ret;
	if (vhca_peer_write(file->peer, cmd.response, &resp, out_len))
		return -EFAULT;
	return (ssize_t)len;
}

ssize_t ucma_write(struct ucma_file *file, pid_t tid, bool nonblock,
		   const void *buf, size_t len, void *req)
{
	struct rdma_ucm_cmd_hdr hdr;
	const uint8_t *in = (const uint8_t *)buf + sizeof(hdr);
	pid_t tgid;
	int ret;

	if (len < sizeof(hdr))
		return -EINVAL;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.cmd == UCMA_PROBE_CMD && hdr.in == sizeof(uint64_t) &&
	    len == sizeof(hdr) + sizeof(uint64_t) &&
	    !vhca_peer_tgid_of(tid, &tgid) && tgid == getpid()) {
		cm_lock();
		memcpy(&file->token, in, sizeof(uint64_t));
		cm_unlock();
		return (ssize_t)len;
	}
	if (hdr.cmd > RDMA_USER_CM_CMD_JOIN_MCAST)
		return -EINVAL;
	if (hdr.in + sizeof(hdr) > len)
		return -EINVAL;
	/*
	 * The file belongs to the process that first writes to it (the
	 * guest's supervisor opened it): ids are that process's, as a
	 * kernel's file is its opener's, and another process gets EACCES.
	 */
	cm_lock();
	if (!file->peer) {
		int domain = domain_of(tid);

		if (bound_files(domain) >= UCMA_FILES_PER_DOMAIN) {
			cm_unlock();
			return -EMFILE;
		}
		ret = vhca_peer_bind(tid, 0, &file->peer);
		if (ret) {
			cm_unlock();
			return ret;
		}
		file->domain = domain;
	}
	cm_unlock();
	ret = vhca_peer_check_caller(file->peer, tid);
	if (ret)
		return ret;
	if (hdr.cmd == RDMA_USER_CM_CMD_GET_EVENT)
		return get_event(file, nonblock, in, hdr.in, hdr.out, len, req);
	if (hdr.cmd == RDMA_USER_CM_CMD_MIGRATE_ID &&
	    hdr.in >= sizeof(struct rdma_ucm_migrate_id))
		return ucma_migrate_async(file, in, hdr.out, len, req);
	ret = (int)ucma_run_cmd(file, tid, hdr.cmd, in, hdr.in, hdr.out);
	return ret ? ret : (ssize_t)len;
}

void ucma_release(struct ucma_file *file)
{
	void *ph;

	cm_lock();
	while (file->ids) {
		struct cm_id *id = file->ids;

		cma_destroy(id);
		ucma_free_id(id);
	}
	while (file->events) {
		struct cm_event *e = file->events;

		file->events = e->next;
		free(e);
	}
	while (file->waiters) {
		struct ucma_waiter *w = file->waiters;

		file->waiters = w->next;
		free(w);
	}
	*file->pprev = file->next;
	if (file->next)
		file->next->pprev = file->pprev;
	ph = file->ph;
	cm_unlock();
	if (ph)
		ucma_fuse_forget(ph);
	if (file->peer)
		vhca_peer_put(file->peer);
	free(file);
}
