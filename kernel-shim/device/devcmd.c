// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The device's command processor (devcmd.h): framing, the table of
 * commands, the context table of a port, and memory named by commands.
 * The objects' own checks are theirs (cq.c, qp.c, srq.c, mr.c, dctx.c);
 * this file checks what only a transport can get wrong: lengths, which
 * kinds of memory a port may name, context ids.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "cq.h"
#include "devcmd.h"
#include "engine.h"
#include "gsi.h"
#include "limits.h"
#include "mcast.h"
#include "mr.h"
#include "qp.h"
#include "srq.h"
#include "switch.h"
#include "vm.h"

/* One command being run. */
struct devcmd_call {
	struct vhca_devcmd_port *port;
	const struct vhca_devcmd_local *local;
	struct vhca_dctx *dctx;		/* referenced, for context commands */
	const void *body;
	const uint64_t *lists;		/* MEM_PAGES list page addresses */
	uint32_t num_lists;
	void *out;			/* the answer's body */
};

struct devcmd_desc {
	uint16_t in_size, out_size;
	bool needs_context;
	bool names_memory;	/* list page addresses may follow the body */
	int (*run)(struct devcmd_call *c);
};

/* ---- memory named by commands ------------------------------------------------- */

/* Closes the fd an in-process command handed over, if any. */
static void drop_mem(const struct vhca_devcmd_port *port,
		     const struct vhca_devcmd_mem *m)
{
	if (port->in_process && m->kind == VHCA_DEVCMD_MEM_FD && m->fd >= 0)
		close(m->fd);
}

/*
 * Queue memory: a sealed memfd of vhcad's (in-process ports only), or
 * pages of the port's VM.  A VM never names a file descriptor: that
 * would reach vhcad's own files.
 */
static int map_queue_mem(struct devcmd_call *c, const struct vhca_devcmd_mem *m,
			 struct vhca_qmem *qm)
{
	struct vhca_devcmd_port *port = c->port;
	uint64_t *pages;
	int ret;

	memset(qm, 0, sizeof(*qm));
	if (m->kind == VHCA_DEVCMD_MEM_FD && port->in_process) {
		ret = m->fd >= 0 && !c->num_lists ?
			      vhca_qmem_map_fd(qm, m->fd, m->size) :
			      -EINVAL;
		drop_mem(port, m);
		return ret;
	}
	if (m->kind != VHCA_DEVCMD_MEM_PAGES || !port->vm)
		return -EINVAL;
	if (m->nlist != c->num_lists)
		return -EINVAL;
	ret = vhca_vm_read_pages(port->vm, m, c->lists,
				 VHCA_VM_QUEUE_PAGES_MAX, &pages);
	if (ret)
		return ret;
	ret = vhca_vm_map_queue(port->vm, pages, m->npages, m->size, qm);
	free(pages);
	vhca_vm_pages_released(&port->vm->space, m->npages);
	return ret;
}

/* ---- the port's contexts ------------------------------------------------------- */

void vhca_devcmd_port_init(struct vhca_devcmd_port *port,
			   struct vhca_dev *fn, bool in_process,
			   struct vhca_vm *vm,
			   const struct vhca_event_sink *sink, void *sink_arg)
{
	*port = (struct vhca_devcmd_port){
		.fn = fn,
		.in_process = in_process,
		.vm = vm,
		.sink = sink,
		.sink_arg = sink_arg,
		.vm_wake_fd = -1,
	};
	pthread_mutex_init(&port->lock, NULL);
}

static void close_context(struct vhca_devcmd_port *port,
			  struct vhca_dctx *dctx)
{
	struct vhca_dev *fn = port->fn;

	vhca_dctx_destroy(dctx);
	vhca_stats_release(&fn->stats.contexts);
}

void vhca_devcmd_port_fini(struct vhca_devcmd_port *port)
{
	for (uint32_t i = 0; i < port->num_contexts; i++)
		if (port->contexts[i])
			close_context(port, port->contexts[i]);
	free(port->contexts);
	port->contexts = NULL;
	port->num_contexts = 0;
	pthread_mutex_destroy(&port->lock);
}

struct vhca_dctx *vhca_devcmd_context(struct vhca_devcmd_port *port,
				      uint32_t id)
{
	struct vhca_dctx *dctx = NULL;

	pthread_mutex_lock(&port->lock);
	if (id && id <= port->num_contexts && port->contexts[id - 1]) {
		dctx = port->contexts[id - 1];
		vhca_dctx_get(dctx);
	}
	pthread_mutex_unlock(&port->lock);
	return dctx;
}

static int insert_context(struct vhca_devcmd_port *port,
			  struct vhca_dctx *dctx)
{
	uint32_t i;

	pthread_mutex_lock(&port->lock);
	for (i = 0; i < port->num_contexts && port->contexts[i]; i++)
		;
	if (i == port->num_contexts) {
		struct vhca_dctx **grown = reallocarray(
			port->contexts, i + 1, sizeof(*grown));

		if (!grown) {
			pthread_mutex_unlock(&port->lock);
			return -ENOMEM;
		}
		port->contexts = grown;
		port->num_contexts++;
	}
	port->contexts[i] = dctx;
	dctx->id = i + 1;
	pthread_mutex_unlock(&port->lock);
	return 0;
}

/* Out of the table: no command finds it any more.  NULL if not there. */
static struct vhca_dctx *remove_context(struct vhca_devcmd_port *port,
					uint32_t id)
{
	struct vhca_dctx *dctx = NULL;

	pthread_mutex_lock(&port->lock);
	if (id && id <= port->num_contexts) {
		dctx = port->contexts[id - 1];
		port->contexts[id - 1] = NULL;
	}
	pthread_mutex_unlock(&port->lock);
	return dctx;
}

/* ---- the function ----------------------------------------------------------------- */

static int query_function(struct devcmd_call *c)
{
	struct vhca_devcmd_function *f = c->out;
	struct vhca_dev *fn = c->port->fn;
	const struct vhca_quota *q = &fn->quota;

	pthread_rwlock_rdlock(&fn->pf->lock);
	snprintf(f->name, sizeof(f->name), "%s", fn->name);
	f->is_vf = fn->is_vf;
	f->vf_index = fn->vf_index;
	f->node_guid = fn->node_guid;
	f->port_guid = fn->port_guid;
	f->sys_image_guid = fn->sys_image_guid;
	memcpy(f->node_desc, fn->node_desc, sizeof(f->node_desc));
	f->port_state = fn->port.state;
	f->phys_state = fn->port.phys_state;
	f->cap_flags = fn->port.cap_flags;
	f->lid = fn->port.lid;
	f->sm_lid = fn->port.sm_lid;
	f->lmc = fn->port.lmc;
	f->sm_sl = fn->port.sm_sl;
	f->active_mtu = fn->port.active_mtu;
	f->active_width = fn->port.active_width;
	f->active_speed = fn->port.active_speed;
	memcpy(f->pkeys, fn->port.pkeys, sizeof(f->pkeys));
	pthread_rwlock_unlock(&fn->pf->lock);
	f->subnet_prefix = VHCA_SUBNET_PREFIX;
	f->max_qp = q->max_qp;
	f->max_cq = q->max_cq;
	f->max_srq = q->max_srq;
	f->max_mr = q->max_mr;
	f->max_pd = q->max_pd;
	f->max_contexts = q->max_contexts;
	return 0;
}

static int query_counters(struct devcmd_call *c)
{
	struct vhca_devcmd_counters *out = c->out;

	for (unsigned int i = 0; i < VHCA_CNT_MAX && i < VHCA_DEVCMD_COUNTERS;
	     i++)
		out->value[i] = atomic_load(&c->port->fn->counters.value[i]);
	return 0;
}

/* ---- addresses and QP1 (the GSI) ---------------------------------------------------- */

static int query_addrs(struct devcmd_call *c)
{
	struct vhca_devcmd_addrs *out = c->out;
	struct vhca_dev *fn = c->port->fn;

	pthread_rwlock_rdlock(&fn->pf->lock);
	for (unsigned int i = 0; i < fn->num_addrs && i < VHCA_DEVCMD_ADDRS_MAX;
	     i++) {
		out->addr[i].family = fn->addrs[i].family;
		out->addr[i].prefix_len = fn->addrs[i].prefix_len;
		memcpy(out->addr[i].addr, fn->addrs[i].addr, 16);
		out->count++;
	}
	pthread_rwlock_unlock(&fn->pf->lock);
	return 0;
}

/* enum ibv_rate of a port's width and lane speed (IBTA 14.2.5.6). */
static uint8_t port_rate(const struct vhca_port *port)
{
	static const struct { uint8_t speed; unsigned int mbps; } lanes[] = {
		{ 1, 2500 }, { 2, 5000 }, { 4, 10000 }, { 8, 10000 },
		{ 16, 14000 }, { 32, 25000 }, { 64, 50000 },
	};
	static const struct { unsigned int mbps; uint8_t rate; } rates[] = {
		{ 2500, 2 }, { 5000, 5 }, { 10000, 3 }, { 14000, 11 },
		{ 20000, 6 }, { 25000, 15 }, { 30000, 4 }, { 40000, 7 },
		{ 50000, 20 }, { 56000, 12 }, { 60000, 8 }, { 80000, 9 },
		{ 100000, 16 }, { 112000, 13 }, { 120000, 10 },
		{ 200000, 17 }, { 300000, 18 },
	};
	unsigned int width = port->active_width == 1 ? 1 :
			     port->active_width == 2 ? 4 :
			     port->active_width == 4 ? 8 : 12, mbps = 0;

	for (size_t i = 0; i < sizeof(lanes) / sizeof(lanes[0]); i++)
		if (lanes[i].speed == port->active_speed)
			mbps = width * lanes[i].mbps;
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if (rates[i].mbps == mbps)
			return rates[i].rate;
	return 0;	/* IBV_RATE_MAX: whatever the port does */
}

/* Does any entry of @dev's P_Key table admit @pkey (IBTA 10.9.3)? */
static bool in_partition(const struct vhca_dev *dev, uint16_t pkey)
{
	for (uint16_t i = 0; i < VHCA_PKEY_TABLE_LEN; i++)
		if (vhca_pkey_match(vhca_port_pkey(dev, i), pkey))
			return true;
	return false;
}

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * ARP on the port's IPoIB partition and the SA's answer for the path, in
 * one: who holds the address (or GID), reachable in @pkey's partition.
 */
static int resolve_addr(struct devcmd_call *c)
{
	const struct vhca_devcmd_resolve *in = c->body;
	struct vhca_devcmd_path *out = c->out;
	struct vhca_dev *src = c->port->fn, *dst = NULL;
	struct vhca_ip_addr ip = { 0 };
	uint16_t pkey;
	int ret = 0;

	if (in->kind == VHCA_DEVCMD_RESOLVE_IP) {
		ip.family = in->family;
		ip.prefix_len = in->family == AF_INET ? 32 : 128;
		memcpy(ip.addr, in->addr, 16);
		if (!vhca_ip_addr_valid(&ip))
			return -EINVAL;
	} else if (in->kind != VHCA_DEVCMD_RESOLVE_GID || in->family) {
		return -EINVAL;
	}
	pthread_rwlock_rdlock(&src->pf->lock);
	pkey = in->pkey ? in->pkey : vhca_port_pkey(src, 0);
	if (!vhca_port_active(src)) {
		ret = -ENETDOWN;
		goto out;
	}
	if (in->kind == VHCA_DEVCMD_RESOLVE_IP)
		dst = vhca_pf_dev_by_addr(src->pf, &ip);
	else
		dst = vhca_pf_dev_by_gid(src->pf, be64_at(in->addr),
					 be64_at(in->addr + 8));
	/* Not in our partition, or without link: no ARP answer comes. */
	if (!dst || !vhca_port_active(dst) || !in_partition(src, pkey) ||
	    !in_partition(dst, pkey)) {
		ret = -EHOSTUNREACH;
		goto out;
	}
	*out = (struct vhca_devcmd_path){
		.subnet_prefix = VHCA_SUBNET_PREFIX,
		.sgid_guid = src->port_guid,
		.dgid_guid = dst->port_guid,
		.dst_node_guid = dst->node_guid,
		.slid = src->port.lid,
		.dlid = dst->port.lid,
		.pkey = pkey,
		.mtu = src->port.active_mtu < dst->port.active_mtu ?
			       src->port.active_mtu : dst->port.active_mtu,
		.rate = port_rate(&dst->port),
		/* One switch hop: 4.096 us * 2^13 = 33 ms is generous. */
		.packet_life_time = 13,
	};
out:
	pthread_rwlock_unlock(&src->pf->lock);
	return ret;
}

static int send_mad(struct devcmd_call *c)
{
	return vhca_gsi_send(c->port->fn, c->body);
}

static int recv_mad(struct devcmd_call *c)
{
	return vhca_gsi_recv(c->port->fn, c->out);
}

/* ---- contexts ----------------------------------------------------------------------- */

/*
 * The context's memory and wake-up: in-process, the owner's address
 * space, its eventfd and a memfd for the doorbell page; for a VM, its
 * RAM, the VF's doorbell and a page of the RAM.
 */
static int open_context(struct devcmd_call *c)
{
	const struct vhca_devcmd_open_context *in = c->body;
	struct vhca_devcmd_context_out *out = c->out;
	struct vhca_devcmd_port *port = c->port;
	struct vhca_dev *fn = port->fn;
	bool data_path = in->flags & VHCA_DEVCMD_CTX_DATA_PATH;
	/* In-process, the eventfd is ours to close from here on. */
	int wake_fd = port->in_process ? in->wake_fd : -1;
	struct vhca_qmem ctx_qmem = { 0 };
	struct vhca_dctx *dctx;
	int ret = 0;

	if (in->flags & ~VHCA_DEVCMD_CTX_DATA_PATH ||
	    (port->in_process ? !c->local || !c->local->space :
				in->wake_fd != -1 || c->local)) {
		drop_mem(port, &in->ctx_page);
		ret = -EINVAL;
	} else if (!data_path) {
		drop_mem(port, &in->ctx_page);
		if (c->num_lists)
			ret = -EINVAL;	/* list pages of no memory */
	} else {
		ret = map_queue_mem(c, &in->ctx_page, &ctx_qmem);
		if (!ret && ctx_qmem.size < sizeof(struct vhca_ctx_page))
			ret = -EINVAL;
		if (!ret && !port->in_process)
			wake_fd = port->vm_wake_fd >= 0 ?
					  dup(port->vm_wake_fd) : -1;
		if (!ret && wake_fd < 0)
			ret = -EINVAL;
	}
	if (!ret && !vhca_stats_reserve(&fn->stats.contexts,
					fn->quota.max_contexts))
		ret = -EUSERS;	/* the function's share of contexts is used */
	if (!data_path && wake_fd >= 0) {
		close(wake_fd);
		wake_fd = -1;
	}
	if (ret) {
		vhca_qmem_unmap(&ctx_qmem);
		if (wake_fd >= 0)
			close(wake_fd);
		return ret;
	}
	/* Takes ctx_qmem and wake_fd over, even on failure. */
	ret = vhca_dctx_create(fn, port->in_process ? c->local->space :
						      &port->vm->space,
			       port->sink, port->sink_arg, &ctx_qmem, wake_fd,
			       &dctx);
	if (!ret) {
		dctx->cookie = in->cookie;
		ret = insert_context(port, dctx);
		if (ret)
			vhca_dctx_destroy(dctx);
	}
	if (!ret) {
		ret = vhca_engine_attach(dctx, port->in_process ?
						       c->local->owner_pidfd :
						       -1);
		if (ret)
			vhca_dctx_destroy(remove_context(port, dctx->id));
	}
	if (ret) {
		vhca_stats_release(&fn->stats.contexts);
		return ret;
	}
	out->context = dctx->id;
	return 0;
}

static int close_context_cmd(struct devcmd_call *c)
{
	struct vhca_dctx *dctx = remove_context(c->port, c->dctx->id);

	if (!dctx)
		return -EINVAL;
	close_context(c->port, dctx);
	return 0;
}

/* ---- PDs and MRs ---------------------------------------------------------------------- */

static int alloc_pd(struct devcmd_call *c)
{
	struct vhca_devcmd_handle *out = c->out;

	return vhca_pd_alloc(c->dctx, &out->handle);
}

static int dealloc_pd(struct devcmd_call *c)
{
	const struct vhca_devcmd_handle *in = c->body;

	return vhca_pd_dealloc(c->dctx, in->handle);
}

/*
 * An MR's pages, when @paged (a VM's MR with a range): read from the
 * list pages after the body.  Otherwise no memory may be named: vhcad's
 * driver checked the range against the owner's maps.
 */
static int mr_pages(const struct devcmd_call *c,
		    const struct vhca_devcmd_mem *mem, bool paged,
		    uint64_t **pages, uint32_t *npages)
{
	int ret;

	*pages = NULL;
	*npages = 0;
	if (!paged)
		return mem->kind != VHCA_DEVCMD_MEM_NONE || c->num_lists ?
			       -EINVAL : 0;
	if (mem->nlist != c->num_lists)
		return -EINVAL;
	ret = vhca_vm_read_pages(c->port->vm, mem, c->lists,
				 VHCA_VM_MR_PAGES_MAX, pages);
	if (!ret)
		*npages = mem->npages;
	return ret;
}

static int reg_mr(struct devcmd_call *c)
{
	const struct vhca_devcmd_reg_mr *in = c->body;
	struct vhca_devcmd_reg_mr_out *out = c->out;
	struct ib_uverbs_reg_mr_resp resp;
	uint64_t *pages;
	uint32_t npages;
	int ret;

	ret = mr_pages(c, &in->mem, !c->port->in_process, &pages, &npages);
	if (!ret)
		ret = vhca_mr_reg(c->dctx, in->pd_handle, in->addr, in->length,
				  in->iova, in->access, pages, npages, &resp);
	if (ret)
		return ret;
	*out = (struct vhca_devcmd_reg_mr_out){
		.handle = resp.mr_handle,
		.lkey = resp.lkey,
		.rkey = resp.rkey,
	};
	return 0;
}

static int rereg_mr(struct devcmd_call *c)
{
	const struct vhca_devcmd_rereg_mr *in = c->body;
	struct vhca_devcmd_rereg_mr_out *out = c->out;
	uint64_t *pages;
	uint32_t npages;
	int ret;

	ret = mr_pages(c, &in->mem,
		       !c->port->in_process &&
			       (in->flags & VHCA_DEVCMD_REREG_TRANS),
		       &pages, &npages);
	if (ret)
		return ret;
	*out = (struct vhca_devcmd_rereg_mr_out){ 0 };
	return vhca_mr_rereg(c->dctx, in, pages, npages, &out->lkey,
			     &out->rkey);
}

static int dereg_mr(struct devcmd_call *c)
{
	const struct vhca_devcmd_handle *in = c->body;

	return vhca_mr_dereg(c->dctx, in->handle);
}

/* ---- CQs --------------------------------------------------------------------------------- */

static int create_cq(struct devcmd_call *c)
{
	const struct vhca_devcmd_create_cq *in = c->body;
	struct vhca_devcmd_cq_out *out = c->out;
	struct vhca_cq_create_args args = {
		.user_handle = in->user_handle,
		.cqe = in->cqe,
		.comp_vector = in->comp_vector,
		.channel = in->channel,
	};
	struct vhca_cq_layout layout = {
		.cqe_count = in->cqe_count,
		.ring_offset = in->ring_offset,
		.db_offset = in->db_offset,
	};
	struct vhca_qmem qmem;
	struct vhca_cq *cq;
	int ret;

	ret = map_queue_mem(c, &in->mem, &qmem);
	if (!ret)
		ret = vhca_cq_create(c->dctx, &args, &qmem, &layout, &cq);
	if (ret)
		return ret;
	*out = (struct vhca_devcmd_cq_out){
		.handle = cq->handle,
		.cqn = cq->cqn,
		.cqe = cq->cqe_count,
	};
	return 0;
}

static int resize_cq(struct devcmd_call *c)
{
	const struct vhca_devcmd_resize_cq *in = c->body;
	struct vhca_devcmd_cq_out *out = c->out;
	struct vhca_cq_layout layout = {
		.cqe_count = in->cqe_count,
		.ring_offset = in->ring_offset,
		.db_offset = in->db_offset,
	};
	struct vhca_cq_resize next;
	struct vhca_qmem qmem;
	struct vhca_cq *cq;
	int ret;

	ret = map_queue_mem(c, &in->mem, &qmem);
	if (!ret)
		ret = vhca_cq_resize_prepare(c->dctx, in->handle, in->cqe,
					     &qmem, &layout, &cq, &next);
	if (ret)
		return ret;
	*out = (struct vhca_devcmd_cq_out){
		.handle = in->handle,
		.cqn = cq->cqn,
		.cqe = next.cqe_count,
	};
	vhca_cq_resize_commit(cq, &next);
	return 0;
}

static int destroy_cq(struct devcmd_call *c)
{
	const struct vhca_devcmd_handle *in = c->body;

	return vhca_cq_destroy(c->dctx, in->handle);
}

/* ---- QPs and SRQs ---------------------------------------------------------------------- */

static int create_qp(struct devcmd_call *c)
{
	const struct vhca_devcmd_create_qp *in = c->body;
	struct vhca_qp_create_args args = {
		.user_handle = in->user_handle,
		.pd_handle = in->pd_handle,
		.send_cq_handle = in->send_cq_handle,
		.recv_cq_handle = in->recv_cq_handle,
		.srq_handle = in->srq_handle,
		.max_send_wr = in->max_send_wr,
		.max_recv_wr = in->max_recv_wr,
		.max_send_sge = in->max_send_sge,
		.max_recv_sge = in->max_recv_sge,
		.max_inline_data = in->max_inline_data,
		.sq_sig_all = in->sq_sig_all,
		.qp_type = in->qp_type,
		.is_srq = in->is_srq,
		.create_flags = in->create_flags,
	};
	struct vhca_qp_layout layout = {
		.sq_offset = in->sq_offset,
		.sq_wqe_count = in->sq_wqe_count,
		.sq_stride = in->sq_stride,
		.rq_offset = in->rq_offset,
		.rq_wqe_count = in->rq_wqe_count,
		.rq_stride = in->rq_stride,
		.db_offset = in->db_offset,
	};
	struct vhca_qmem qmem;
	int ret;

	ret = map_queue_mem(c, &in->mem, &qmem);
	return ret ? ret :
		     vhca_qp_create(c->dctx, &args, &qmem, &layout, c->out);
}

static int modify_qp(struct devcmd_call *c)
{
	return vhca_qp_modify(c->dctx, c->body);
}

static int query_qp(struct devcmd_call *c)
{
	const struct vhca_devcmd_query_qp *in = c->body;

	return vhca_qp_query(c->dctx, in->handle, c->out);
}

static int destroy_qp(struct devcmd_call *c)
{
	const struct vhca_devcmd_handle *in = c->body;

	return vhca_qp_destroy(c->dctx, in->handle);
}

static int create_srq(struct devcmd_call *c)
{
	const struct vhca_devcmd_create_srq *in = c->body;
	struct vhca_srq_layout layout = {
		.wqe_count = in->wqe_count,
		.stride = in->stride,
		.ring_offset = in->ring_offset,
		.db_offset = in->db_offset,
	};
	struct vhca_qmem qmem;
	int ret;

	ret = map_queue_mem(c, &in->mem, &qmem);
	return ret ? ret :
		     vhca_srq_create(c->dctx, &in->core, &qmem, &layout,
				     c->out);
}

static int modify_srq(struct devcmd_call *c)
{
	return vhca_srq_modify(c->dctx, c->body);
}

static int query_srq(struct devcmd_call *c)
{
	const struct vhca_devcmd_handle *in = c->body;

	return vhca_srq_query(c->dctx, in->handle, c->out);
}

static int destroy_srq(struct devcmd_call *c)
{
	const struct vhca_devcmd_handle *in = c->body;

	return vhca_srq_destroy(c->dctx, in->handle);
}

static int attach_mcast(struct devcmd_call *c)
{
	const struct vhca_devcmd_mcast *in = c->body;

	return vhca_mcast_attach(c->dctx, in->qp_handle, in->gid, in->mlid);
}

static int detach_mcast(struct devcmd_call *c)
{
	const struct vhca_devcmd_mcast *in = c->body;

	return vhca_mcast_detach(c->dctx, in->qp_handle, in->gid, in->mlid);
}

/* ---- the table -------------------------------------------------------------------------- */

#define CMD(op, in, out, ctx, fn)                                              \
	[VHCA_DEVCMD_##op] = { (uint16_t)(in), (uint16_t)(out), ctx, false, fn }
/* A command whose body names memory: its list page addresses follow. */
#define CMD_MEM(op, in, out, ctx, fn)                                          \
	[VHCA_DEVCMD_##op] = { (uint16_t)(in), (uint16_t)(out), ctx, true, fn }

static const struct devcmd_desc devcmds[VHCA_DEVCMD_OP_MAX] = {
	CMD(QUERY_FUNCTION, 0, sizeof(struct vhca_devcmd_function), false,
	    query_function),
	CMD(QUERY_COUNTERS, 0, sizeof(struct vhca_devcmd_counters), false,
	    query_counters),
	CMD(QUERY_ADDRS, 0, sizeof(struct vhca_devcmd_addrs), false,
	    query_addrs),
	CMD(RESOLVE_ADDR, sizeof(struct vhca_devcmd_resolve),
	    sizeof(struct vhca_devcmd_path), false, resolve_addr),
	CMD(SEND_MAD, sizeof(struct vhca_devcmd_mad), 0, false, send_mad),
	CMD(RECV_MAD, 0, sizeof(struct vhca_devcmd_mad), false, recv_mad),
	CMD_MEM(OPEN_CONTEXT, sizeof(struct vhca_devcmd_open_context),
	    sizeof(struct vhca_devcmd_context_out), false, open_context),
	CMD(CLOSE_CONTEXT, 0, 0, true, close_context_cmd),
	CMD(ALLOC_PD, 0, sizeof(struct vhca_devcmd_handle), true, alloc_pd),
	CMD(DEALLOC_PD, sizeof(struct vhca_devcmd_handle), 0, true,
	    dealloc_pd),
	CMD_MEM(REG_MR, sizeof(struct vhca_devcmd_reg_mr),
	    sizeof(struct vhca_devcmd_reg_mr_out), true, reg_mr),
	CMD(DEREG_MR, sizeof(struct vhca_devcmd_handle), 0, true, dereg_mr),
	CMD_MEM(REREG_MR, sizeof(struct vhca_devcmd_rereg_mr),
	    sizeof(struct vhca_devcmd_rereg_mr_out), true, rereg_mr),
	CMD_MEM(CREATE_CQ, sizeof(struct vhca_devcmd_create_cq),
	    sizeof(struct vhca_devcmd_cq_out), true, create_cq),
	CMD_MEM(RESIZE_CQ, sizeof(struct vhca_devcmd_resize_cq),
	    sizeof(struct vhca_devcmd_cq_out), true, resize_cq),
	CMD(DESTROY_CQ, sizeof(struct vhca_devcmd_handle), 0, true,
	    destroy_cq),
	CMD_MEM(CREATE_QP, sizeof(struct vhca_devcmd_create_qp),
	    sizeof(struct ib_uverbs_create_qp_resp), true, create_qp),
	CMD(MODIFY_QP, sizeof(struct ib_uverbs_modify_qp), 0, true, modify_qp),
	CMD(QUERY_QP, sizeof(struct vhca_devcmd_query_qp),
	    sizeof(struct ib_uverbs_query_qp_resp), true, query_qp),
	CMD(DESTROY_QP, sizeof(struct vhca_devcmd_handle), 0, true,
	    destroy_qp),
	CMD(ATTACH_MCAST, sizeof(struct vhca_devcmd_mcast), 0, true,
	    attach_mcast),
	CMD(DETACH_MCAST, sizeof(struct vhca_devcmd_mcast), 0, true,
	    detach_mcast),
	CMD_MEM(CREATE_SRQ, sizeof(struct vhca_devcmd_create_srq),
	    sizeof(struct ib_uverbs_create_srq_resp), true, create_srq),
	CMD(MODIFY_SRQ, sizeof(struct ib_uverbs_modify_srq), 0, true,
	    modify_srq),
	CMD(QUERY_SRQ, sizeof(struct vhca_devcmd_handle),
	    sizeof(struct ib_uverbs_query_srq_resp), true, query_srq),
	CMD(DESTROY_SRQ, sizeof(struct vhca_devcmd_handle), 0, true,
	    destroy_srq),
};

/* Commands whose body names memory an in-process caller handed over. */
static void drop_fds_of(struct vhca_devcmd_port *port, uint16_t op,
			const void *body)
{
	const struct vhca_devcmd_open_context *open = body;

	if (!port->in_process)
		return;
	switch (op) {
	case VHCA_DEVCMD_OPEN_CONTEXT:
		if (open->wake_fd >= 0)
			close(open->wake_fd);
		drop_mem(port, &open->ctx_page);
		break;
	case VHCA_DEVCMD_CREATE_CQ:
		drop_mem(port, &((const struct vhca_devcmd_create_cq *)body)->mem);
		break;
	case VHCA_DEVCMD_RESIZE_CQ:
		drop_mem(port, &((const struct vhca_devcmd_resize_cq *)body)->mem);
		break;
	case VHCA_DEVCMD_CREATE_QP:
		drop_mem(port, &((const struct vhca_devcmd_create_qp *)body)->mem);
		break;
	case VHCA_DEVCMD_CREATE_SRQ:
		drop_mem(port, &((const struct vhca_devcmd_create_srq *)body)->mem);
		break;
	default:
		break;
	}
}

size_t vhca_devcmd_exec(struct vhca_devcmd_port *port, const void *in,
			size_t in_len, const struct vhca_devcmd_local *local,
			void *out, size_t out_cap)
{
	const struct vhca_devcmd_hdr *hdr = in;
	struct vhca_devcmd_status *status = out;
	const struct devcmd_desc *desc = NULL;
	struct devcmd_call c = { .port = port, .local = local };
	size_t extra = 0;
	int ret = 0;

	if (out_cap < sizeof(*status))
		return 0;
	if (in_len < sizeof(*hdr) || hdr->op >= VHCA_DEVCMD_OP_MAX ||
	    !devcmds[hdr->op].run || hdr->in_len != in_len - sizeof(*hdr))
		ret = -EINVAL;
	if (!ret) {
		desc = &devcmds[hdr->op];
		extra = hdr->in_len - (size_t)desc->in_size;
		/* Words after the body are list pages, of memory it names. */
		if (hdr->in_len < desc->in_size || extra % sizeof(uint64_t) ||
		    (extra && !desc->names_memory) ||
		    out_cap < sizeof(*status) + desc->out_size)
			ret = -EINVAL;
	}
	if (!ret && desc->needs_context) {
		c.dctx = vhca_devcmd_context(port, hdr->context);
		if (!c.dctx)
			ret = -EINVAL;
	}
	if (!ret) {
		c.body = hdr + 1;
		c.lists = (const uint64_t *)((const uint8_t *)c.body +
					     desc->in_size);
		c.num_lists = (uint32_t)(extra / sizeof(uint64_t));
		c.out = status + 1;
		memset(c.out, 0, desc->out_size);
		ret = desc->run(&c);
	} else if (desc && hdr->in_len >= desc->in_size) {
		drop_fds_of(port, hdr->op, hdr + 1);
	}
	if (c.dctx)
		vhca_dctx_put(c.dctx);
	status->status = ret;
	status->out_len = ret || !desc ? 0 : desc->out_size;
	return sizeof(*status) + status->out_len;
}
