// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Packet buffers (packet.h): two size classes, each with a small cache per
 * thread, so the data path allocates nothing from the heap in steady
 * state.  A packet freed on another thread than the one that made it
 * joins that thread's cache.
 */
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <vhca/opcode.h>

#include "dma.h"
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
static _Thread_local bool cache_registered;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_destructor(void *arg)
{
	(void)arg;
	vhca_pkt_thread_exit();
}

static void cache_key_create(void)
{
	if (pthread_key_create(&cache_key, cache_destructor))
		abort();
}

/*
 * Each thread keeps its own free packets.  Any thread may free packets
 * (FUSE's workers do when a command destroys a context, and libfuse
 * starts and ends workers as it likes), so a thread's cache is drained
 * when it exits, by a key destructor.
 */
static struct pkt_cache *cache_for(uint32_t cap)
{
	if (!cache_registered) {
		pthread_once(&cache_once, cache_key_create);
		pthread_setspecific(cache_key, &cache_registered);
		cache_registered = true;
	}
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
	if (pkt->ref_space) {
		vhca_dma_space_put(pkt->ref_space);
		pkt->ref_space = NULL;
		pkt->nref = 0;
	}
	c = cache_for(pkt->cap);
	if (c->count >= (pkt->cap <= SMALL_CAP ? CACHE_SMALL : CACHE_LARGE)) {
		free(pkt);
		return;
	}
	pkt->next = c->head;
	c->head = pkt;
	c->count++;
}

static void drain(struct pkt_cache *c)
{
	while (c->head) {
		struct vhca_pkt *next = c->head->next;

		free(c->head);
		c->head = next;
	}
	c->count = 0;
}

void vhca_pkt_thread_exit(void)
{
	drain(&cache_small);
	drain(&cache_large);
}

struct vhca_pkt *vhca_pkt_clone(const struct vhca_pkt *pkt)
{
	struct vhca_pkt *copy = vhca_pkt_alloc(pkt->len);
	uint8_t *data;
	uint32_t cap;

	if (!copy)
		return NULL;
	/* @pkt's headers; the copy keeps its own buffer, in no inbox credit. */
	data = copy->data;
	cap = copy->cap;
	*copy = *pkt;
	copy->next = NULL;
	copy->credited = false;
	copy->data = data;
	copy->cap = cap;
	copy->len = 0;
	copy->ref_space = NULL;
	copy->nref = 0;
	/* A VM's pieces become the copy's own bytes, in order. */
	for (uint8_t i = 0; i < pkt->nref; i++) {
		memcpy(copy->data + copy->len, pkt->ref[i].ptr, pkt->ref[i].len);
		copy->len += pkt->ref[i].len;
	}
	if (!pkt->nref && pkt->len) {
		memcpy(copy->data, pkt->data, pkt->len);
		copy->len = pkt->len;
	}
	return copy;
}
