// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Packet buffers (packet.h): two size classes, each with a small cache per
 * thread, so the data path allocates nothing from the heap in steady
 * state.  A packet freed on another thread than the one that made it
 * joins that thread's cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vhca/opcode.h>

#include "packet.h"

int vhca_trace_enabled;

__attribute__((constructor)) static void trace_init(void)
{
	const char *env = getenv("VHCA_TRACE");

	vhca_trace_enabled = env && *env && strcmp(env, "0");
}

void vhca_trace_pkt(const char *what, uint32_t qpn, const struct vhca_pkt *pkt)
{
	const struct vhca_pkt_info *info = vhca_pkt_info(pkt->opcode);

	fprintf(stderr,
		"vhca: qp %06x %-14s %-20s lid %u->%u qpn %06x->%06x psn %06x+%u len %u syn %02x\n",
		qpn, what, info ? info->name : "?", pkt->slid, pkt->dlid,
		pkt->src_qpn, pkt->dest_qpn, pkt->psn, pkt->npsn, pkt->len,
		pkt->syndrome);
}

#define SMALL_CAP 4096u
#define CACHE_SMALL 256
#define CACHE_LARGE 32

struct pkt_cache {
	struct vhca_pkt *head;
	unsigned int count;
};

static _Thread_local struct pkt_cache cache_small, cache_large;

static struct pkt_cache *cache_for(uint32_t cap)
{
	return cap <= SMALL_CAP ? &cache_small : &cache_large;
}

struct vhca_pkt *vhca_pkt_alloc(uint32_t len)
{
	uint32_t cap = len <= SMALL_CAP ? SMALL_CAP : VHCA_SEG_MAX;
	struct pkt_cache *c;
	struct vhca_pkt *pkt;
	uint8_t *data;

	if (len > VHCA_SEG_MAX)
		return NULL;
	c = cache_for(cap);
	pkt = c->head;
	if (pkt) {
		c->head = pkt->next;
		c->count--;
	} else {
		pkt = malloc(sizeof(*pkt) + cap);
		if (!pkt)
			return NULL;
	}
	data = (uint8_t *)(pkt + 1);
	memset(pkt, 0, sizeof(*pkt));
	pkt->data = data;
	pkt->cap = cap;
	pkt->npsn = 1;
	return pkt;
}

void vhca_pkt_free(struct vhca_pkt *pkt)
{
	struct pkt_cache *c;

	if (!pkt)
		return;
	c = cache_for(pkt->cap);
	if (c->count >= (pkt->cap <= SMALL_CAP ? CACHE_SMALL : CACHE_LARGE)) {
		free(pkt);
		return;
	}
	pkt->next = c->head;
	c->head = pkt;
	c->count++;
}

struct vhca_pkt *vhca_pkt_clone_headers(const struct vhca_pkt *pkt)
{
	struct vhca_pkt *copy = vhca_pkt_alloc(0);
	uint8_t *data;
	uint32_t cap;

	if (!copy)
		return NULL;
	data = copy->data;
	cap = copy->cap;
	*copy = *pkt;
	copy->next = NULL;
	copy->data = data;
	copy->cap = cap;
	copy->len = 0;
	return copy;
}
