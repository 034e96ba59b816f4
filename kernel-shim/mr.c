// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Memory regions: REG_MR/DEREG_MR and the device-wide key map (mr.h).
 *
 * The key map is one open-addressing hash (linear probing, backward-shift
 * deletion) keyed by (device, key), under one rwlock: the data path looks
 * keys up shared, registration and teardown change it exclusive.
 *
 * Teardown: DEREG_MR runs under the engine lock, and the engine holds it
 * for every transfer from key lookup to the last byte moved, so once the
 * key is out of the map no transfer is using the MR and none can find
 * it: nothing is written to (or read from) memory after DEREG_MR returns.
 * A request that names the key later fails its rkey/lkey check (remote
 * access NAK, or a local protection error for a receive WQE).
 *
 * Registration does not need that lock for its slow part.  Parsing
 * /proc/<pid>/maps reads only the guest's address space; everything it
 * decides on is either the command's own input or state of this context
 * that only commands change (the PD and its MR count), and commands of
 * one context are serialised by uctx->lock, which REG_MR holds
 * throughout: a DEREG_MR or DEALLOC_PD of the same context cannot run
 * in between.  The answer is a snapshot in any case (a guest may munmap
 * right after; the engine turns that into an error completion).  So the
 * engine lock is taken only to publish the MR: the handle table, which
 * the engine reads, may be reallocated by an insert.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <rdma/ib_user_ioctl_verbs.h>

#include "engine.h"
#include "mr.h"

/* Linux 6.2 access bits, newer than these uapi headers. */
#define ACCESS_FLUSH_GLOBAL (1u << 8)
#define ACCESS_FLUSH_PERSISTENT (1u << 9)

/* IB_ACCESS_SUPPORTED of the kernel: every bit ib_check_mr_access knows. */
#define ACCESS_KNOWN                                                          \
	(IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |       \
	 IB_UVERBS_ACCESS_REMOTE_READ | IB_UVERBS_ACCESS_REMOTE_ATOMIC |      \
	 IB_UVERBS_ACCESS_MW_BIND | IB_UVERBS_ACCESS_ZERO_BASED |             \
	 IB_UVERBS_ACCESS_ON_DEMAND | IB_UVERBS_ACCESS_HUGETLB |              \
	 ACCESS_FLUSH_GLOBAL | ACCESS_FLUSH_PERSISTENT |                      \
	 IB_UVERBS_ACCESS_OPTIONAL_RANGE)

/* Known, but needing a capability we do not advertise. */
#define ACCESS_UNSUPPORTED                                                    \
	(IB_UVERBS_ACCESS_ON_DEMAND | ACCESS_FLUSH_GLOBAL |                   \
	 ACCESS_FLUSH_PERSISTENT)

/* ib_access_writable(): memory the HCA may modify (or let others). */
#define ACCESS_WRITABLE                                                       \
	(IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |       \
	 IB_UVERBS_ACCESS_REMOTE_ATOMIC | IB_UVERBS_ACCESS_MW_BIND)

/* Attempts at a free key before giving up (only with ~2^32 live MRs). */
#define KEY_ATTEMPTS 64

int vhca_mr_check_access(uint32_t access)
{
	/* IB spec o10-37.2.2: remote write/atomic need local write. */
	if ((access & (IB_UVERBS_ACCESS_REMOTE_WRITE |
		       IB_UVERBS_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IB_UVERBS_ACCESS_LOCAL_WRITE))
		return -EINVAL;
	if (access & ~(uint32_t)ACCESS_KNOWN)
		return -EINVAL;
	if (access & ACCESS_UNSUPPORTED)
		return -EOPNOTSUPP;
	/* Optional bits (relaxed ordering, ...) are hints we may ignore. */
	return 0;
}

struct key_slot {
	const struct vhca_dev *dev;
	struct vhca_mr *mr;		/* NULL: empty slot */
	uint32_t key;
};

static struct {
	pthread_rwlock_t lock;
	struct key_slot *slots;
	size_t capacity;		/* 0 or a power of two */
	size_t count;
} key_map = { .lock = PTHREAD_RWLOCK_INITIALIZER };

static size_t key_hash(const struct vhca_dev *dev, uint32_t key)
{
	uint64_t x = (uint64_t)(uintptr_t)dev ^ ((uint64_t)key << 29) ^ key;

	/* murmur3 finalizer */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (size_t)x;
}

static struct key_slot *key_find_locked(const struct vhca_dev *dev,
					uint32_t key)
{
	size_t mask = key_map.capacity - 1;

	if (!key_map.capacity)
		return NULL;
	for (size_t i = key_hash(dev, key) & mask; key_map.slots[i].mr;
	     i = (i + 1) & mask) {
		struct key_slot *slot = &key_map.slots[i];

		if (slot->dev == dev && slot->key == key)
			return slot;
	}
	return NULL;
}

static void key_place(struct key_slot *slots, size_t capacity,
		      const struct key_slot *entry)
{
	size_t mask = capacity - 1;
	size_t i = key_hash(entry->dev, entry->key) & mask;

	while (slots[i].mr)
		i = (i + 1) & mask;
	slots[i] = *entry;
}

static int key_grow_locked(void)
{
	size_t capacity = key_map.capacity ? 2 * key_map.capacity : 1024;
	struct key_slot *slots = calloc(capacity, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < key_map.capacity; i++)
		if (key_map.slots[i].mr)
			key_place(slots, capacity, &key_map.slots[i]);
	free(key_map.slots);
	key_map.slots = slots;
	key_map.capacity = capacity;
	return 0;
}

static int key_insert_locked(struct vhca_mr *mr, uint32_t key)
{
	struct key_slot entry = { .dev = mr->dev, .mr = mr, .key = key };

	/* Load factor <= 1/2 keeps probe sequences short. */
	if (2 * (key_map.count + 1) > key_map.capacity && key_grow_locked())
		return -ENOMEM;
	key_place(key_map.slots, key_map.capacity, &entry);
	key_map.count++;
	return 0;
}

/* Backward-shift deletion: no tombstones, lookups stay O(cluster). */
static void key_remove_locked(struct key_slot *slot)
{
	size_t mask = key_map.capacity - 1;
	size_t hole = (size_t)(slot - key_map.slots);

	for (size_t i = (hole + 1) & mask; key_map.slots[i].mr;
	     i = (i + 1) & mask) {
		struct key_slot *next = &key_map.slots[i];
		size_t home = key_hash(next->dev, next->key) & mask;

		/* Movable iff the hole lies on its probe path home..i. */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			key_map.slots[hole] = *next;
			hole = i;
		}
	}
	key_map.slots[hole] = (struct key_slot){ 0 };
	key_map.count--;
}

/*
 * (24-bit index << 8) | 8-bit variant from one counter value n: a
 * bijection on n, so keys repeat only after 2^32 draws.  Index 0 is
 * reserved (lkey 0 reads as "no key").
 */
static uint32_t key_of(uint32_t n)
{
	return (n << 8) | (n >> 24);
}

static int assign_key_locked(struct vhca_mr *mr)
{
	for (int i = 0; i < KEY_ATTEMPTS; i++) {
		uint32_t key = key_of(atomic_fetch_add(&mr->dev->next_key, 1));

		if (!(key >> 8) || key_find_locked(mr->dev, key))
			continue;
		if (key_insert_locked(mr, key))
			return -ENOMEM;
		mr->lkey = key;
		mr->rkey = key;
		return 0;
	}
	return -ENOMEM;
}

static void remove_key(struct vhca_mr *mr)
{
	struct key_slot *slot;

	pthread_rwlock_wrlock(&key_map.lock);
	slot = key_find_locked(mr->dev, mr->lkey);
	if (slot && slot->mr == mr)
		key_remove_locked(slot);
	pthread_rwlock_unlock(&key_map.lock);
}

struct vhca_mr *vhca_mr_lookup(const struct vhca_dev *dev, uint32_t key)
{
	struct vhca_mr *mr = NULL;
	struct key_slot *slot;

	pthread_rwlock_rdlock(&key_map.lock);
	slot = key_find_locked(dev, key);
	if (slot) {
		mr = slot->mr;
		atomic_fetch_add(&mr->refcount, 1);
	}
	pthread_rwlock_unlock(&key_map.lock);
	return mr;
}

void vhca_mr_put(struct vhca_mr *mr)
{
	if (atomic_fetch_sub_explicit(&mr->refcount, 1,
				      memory_order_acq_rel) != 1)
		return;
	vhca_dma_peer_put(mr->peer);
	free(mr);
}

/* ib_umem_get()'s checks, plus the size the device advertises. */
static int check_length(const struct ib_uverbs_reg_mr *cmd)
{
	uint64_t page = (uint64_t)getpagesize();
	uint64_t end = cmd->start + cmd->length;

	if (!cmd->length || end < cmd->start ||
	    ((end + page - 1) & ~(page - 1)) < end)
		return -EINVAL;
	if (cmd->hca_va + cmd->length < cmd->hca_va)
		return -EINVAL;
	if (cmd->length > vhca_limits.max_mr_size)
		return -EINVAL;
	return 0;
}

static unsigned int dma_rights(uint32_t access)
{
	/* Every MR may be read (it can source a send); some also written. */
	return VHCA_DMA_READ | (access & ACCESS_WRITABLE ? VHCA_DMA_WRITE : 0);
}

static struct vhca_mr *mr_create(struct vhca_ucontext *uctx,
				 struct vhca_pd *pd,
				 const struct ib_uverbs_reg_mr *cmd)
{
	struct vhca_mr *mr = calloc(1, sizeof(*mr));

	if (!mr)
		return NULL;
	atomic_init(&mr->refcount, 1);
	mr->dev = uctx->dev;
	mr->peer = uctx->peer;
	vhca_dma_peer_get(mr->peer);
	mr->pdn = pd->pdn;
	mr->addr = cmd->start;
	mr->iova = cmd->hca_va;
	mr->length = cmd->length;
	mr->access = cmd->access_flags;
	mr->handle = VHCA_NO_HANDLE;
	return mr;
}

/* Order of checks and errnos as ib_uverbs_reg_mr() + ib_umem_get(). */
int vhca_mr_reg(struct vhca_ucontext *uctx, const struct ib_uverbs_reg_mr *cmd,
		struct ib_uverbs_reg_mr_resp *resp)
{
	uint64_t page_off = (uint64_t)getpagesize() - 1;
	struct vhca_pd *pd;
	struct vhca_mr *mr;
	int ret;

	if ((cmd->start & page_off) != (cmd->hca_va & page_off))
		return -EINVAL;
	ret = vhca_mr_check_access(cmd->access_flags);
	if (ret)
		return ret;
	pd = vhca_obj_lookup(uctx, VHCA_OBJ_PD, cmd->pd_handle);
	if (!pd)
		return -EINVAL;
	ret = check_length(cmd);
	if (ret)
		return ret;
	/* get_user_pages() would fault on anything not mapped so. */
	ret = vhca_dma_check_range(uctx->peer, cmd->start, cmd->length,
				   dma_rights(cmd->access_flags));
	if (ret)
		return ret;

	if (!vhca_stats_reserve(&uctx->dev->stats.mrs, vhca_limits.max_mr))
		return -ENOMEM;
	mr = mr_create(uctx, pd, cmd);
	if (!mr) {
		vhca_stats_release(&uctx->dev->stats.mrs);
		return -ENOMEM;
	}
	vhca_engine_lock();
	pthread_rwlock_wrlock(&key_map.lock);
	ret = assign_key_locked(mr);
	pthread_rwlock_unlock(&key_map.lock);
	if (!ret) {
		ret = vhca_obj_insert(uctx, VHCA_OBJ_MR, mr, &mr->handle);
		if (ret)
			remove_key(mr);
	}
	vhca_engine_unlock();
	if (ret) {
		vhca_stats_release(&uctx->dev->stats.mrs);
		vhca_mr_put(mr);
		return ret;
	}

	mr->pd = pd;
	pd->num_mrs++;
	*resp = (struct ib_uverbs_reg_mr_resp){
		.mr_handle = mr->handle,
		.lkey = mr->lkey,
		.rkey = mr->rkey,
	};
	return 0;
}

void vhca_mr_destroy(struct vhca_ucontext *uctx, struct vhca_mr *mr)
{
	/* Out of the key map first: no new data-path user can find it. */
	remove_key(mr);
	vhca_obj_erase(uctx, mr->handle);
	mr->pd->num_mrs--;
	mr->pd = NULL;
	vhca_stats_release(&uctx->dev->stats.mrs);
	vhca_mr_put(mr);
}

int vhca_mr_dereg(struct vhca_ucontext *uctx, uint32_t handle)
{
	struct vhca_mr *mr = vhca_obj_lookup(uctx, VHCA_OBJ_MR, handle);

	if (!mr)
		return -EINVAL;
	vhca_mr_destroy(uctx, mr);
	return 0;
}
