// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Command admission per function (cmdq.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "cmdq.h"
#include "device/pf.h"

struct vhca_cmdq {
	int index;			/* the function's uverbs number */
	pthread_mutex_t lock;
	struct vhca_cmdq_item *head, *tail;
	unsigned int waiting;
	unsigned int running;
	struct vhca_cmdq *hash_next;
};

/*
 * Functions' queues, found by uverbs number (unique among live functions,
 * reused after one goes, when its queue is empty); created on first use.
 */
#define QUEUE_BUCKETS 256
static pthread_mutex_t queues_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vhca_cmdq *queues[QUEUE_BUCKETS];

static struct vhca_cmdq *queue_of(const struct vhca_dev *dev)
{
	int index = dev->uverbs_index;
	struct vhca_cmdq *q;

	pthread_mutex_lock(&queues_lock);
	for (q = queues[index % QUEUE_BUCKETS]; q && q->index != index;
	     q = q->hash_next)
		;
	if (!q) {
		q = calloc(1, sizeof(*q));
		if (q) {
			q->index = index;
			pthread_mutex_init(&q->lock, NULL);
			q->hash_next = queues[index % QUEUE_BUCKETS];
			queues[index % QUEUE_BUCKETS] = q;
		}
	}
	pthread_mutex_unlock(&queues_lock);
	return q;
}

/* The oldest waiting item whose context is not busy, taken; lock held. */
static struct vhca_cmdq_item *take_runnable(struct vhca_cmdq *q)
{
	struct vhca_cmdq_item **link, *prev = NULL, *item;

	for (link = &q->head; (item = *link);
	     prev = item, link = &item->next) {
		if (item->owner_busy && *item->owner_busy)
			continue;
		*link = item->next;
		if (q->tail == item)
			q->tail = prev;
		item->next = NULL;
		q->waiting--;
		if (item->owner_busy)
			*item->owner_busy = true;
		return item;
	}
	return NULL;
}

void vhca_cmdq_submit(struct vhca_dev *dev, struct vhca_cmdq_item *item)
{
	struct vhca_cmdq *q = queue_of(dev);

	if (!q) {
		/* No memory for a queue: run it unqueued rather than fail. */
		item->run(item);
		return;
	}
	pthread_mutex_lock(&q->lock);
	if (q->waiting >= VHCA_CMDQ_MAX_WAITING) {
		pthread_mutex_unlock(&q->lock);
		item->refuse(item);
		return;
	}
	item->next = NULL;
	if (q->tail)
		q->tail->next = item;
	else
		q->head = item;
	q->tail = item;
	q->waiting++;
	if (q->running >= VHCA_CMDQ_RUNNING) {
		pthread_mutex_unlock(&q->lock);
		return;		/* a runner of this function will take it */
	}
	q->running++;
	while ((item = take_runnable(q))) {
		/* A release frees its context, and the flag with it. */
		bool *busy = item->frees_owner ? NULL : item->owner_busy;

		pthread_mutex_unlock(&q->lock);
		item->run(item);	/* frees it */
		pthread_mutex_lock(&q->lock);
		if (busy)
			*busy = false;
	}
	q->running--;
	pthread_mutex_unlock(&q->lock);
}
