// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Memory regions: REG_MR/DEREG_MR and each context's key map (mr.h).
 *
 * The key map is an open-addressing hash (linear probing, backward-shift
 * deletion) per context, used only under dctx->lock: by the context's own
 * turns and commands.  Teardown therefore needs nothing more: once a key
 * is out of the map no turn can find it, and none is running while
 * DEREG_MR holds the lock, so nothing is written to (or read from) memory
 * after DEREG_MR returns.  A request that names the key later fails its
 * rkey/lkey check (remote access NAK, or a local protection error).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <rdma/ib_user_ioctl_verbs.h>
#include <vhca/devcmd.h>

#include "dma.h"
#include "mr.h"
#include "packet.h"
#include "vm.h"

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

/*
 * Known, but needing a capability we do not advertise.  ON_DEMAND is not
 * among them: a host process's memory is reached through its address
 * space at each access (dma.h), which is what ODP promises (a page not
 * mapped then is an access error, never a crash); a VM's MRs are page
 * lists pinned at registration, so there it is refused (vhca_mr_reg).
 */
#define ACCESS_UNSUPPORTED (ACCESS_FLUSH_GLOBAL | ACCESS_FLUSH_PERSISTENT)

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

struct vhca_key_slot {
	struct vhca_mr *mr;		/* NULL: empty slot */
	uint32_t key;
};

static size_t key_hash(uint32_t key)
{
	uint64_t x = key;

	/* murmur3 finalizer */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (size_t)x;
}

static struct vhca_key_slot *key_find(struct vhca_dctx *dctx, uint32_t key)
{
	size_t mask = dctx->key_cap - 1;

	if (!dctx->key_cap)
		return NULL;
	for (size_t i = key_hash(key) & mask; dctx->key_slots[i].mr;
	     i = (i + 1) & mask)
		if (dctx->key_slots[i].key == key)
			return &dctx->key_slots[i];
	return NULL;
}

static void key_place(struct vhca_key_slot *slots, size_t capacity,
		      const struct vhca_key_slot *entry)
{
	size_t mask = capacity - 1;
	size_t i = key_hash(entry->key) & mask;

	while (slots[i].mr)
		i = (i + 1) & mask;
	slots[i] = *entry;
}

static int key_grow(struct vhca_dctx *dctx)
{
	size_t capacity = dctx->key_cap ? 2 * dctx->key_cap : 64;
	struct vhca_key_slot *slots = calloc(capacity, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < dctx->key_cap; i++)
		if (dctx->key_slots[i].mr)
			key_place(slots, capacity, &dctx->key_slots[i]);
	free(dctx->key_slots);
	dctx->key_slots = slots;
	dctx->key_cap = capacity;
	return 0;
}

/* Backward-shift deletion: no tombstones, lookups stay O(cluster). */
static void key_remove(struct vhca_dctx *dctx, struct vhca_key_slot *slot)
{
	size_t mask = dctx->key_cap - 1;
	size_t hole = (size_t)(slot - dctx->key_slots);

	for (size_t i = (hole + 1) & mask; dctx->key_slots[i].mr;
	     i = (i + 1) & mask) {
		struct vhca_key_slot *next = &dctx->key_slots[i];
		size_t home = key_hash(next->key) & mask;

		/* Movable iff the hole lies on its probe path home..i. */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			dctx->key_slots[hole] = *next;
			hole = i;
		}
	}
	dctx->key_slots[hole] = (struct vhca_key_slot){ 0 };
	dctx->key_count--;
}

/*
 * A random key: nothing in it follows from other keys, of this context
 * or of any other (security finding 2).  Index 0 is reserved: lkey 0
 * reads as "no key".
 */
static int assign_key(struct vhca_dctx *dctx, struct vhca_mr *mr)
{
	/* Load factor <= 1/2 keeps probe sequences short. */
	if (2 * (dctx->key_count + 1) > dctx->key_cap && key_grow(dctx))
		return -ENOMEM;
	for (int i = 0; i < KEY_ATTEMPTS; i++) {
		uint32_t key = arc4random();

		if (!(key >> 8) || key_find(dctx, key))
			continue;
		key_place(dctx->key_slots, dctx->key_cap,
			  &(struct vhca_key_slot){ .mr = mr, .key = key });
		dctx->key_count++;
		mr->lkey = key;
		mr->rkey = key;
		return 0;
	}
	return -ENOMEM;
}

struct vhca_mr *vhca_mr_find(struct vhca_dctx *dctx, uint32_t key)
{
	struct vhca_key_slot *slot = key_find(dctx, key);

	return slot ? slot->mr : NULL;
}

void vhca_mr_map_free(struct vhca_dctx *dctx)
{
	free(dctx->key_slots);
	dctx->key_slots = NULL;
	dctx->key_cap = dctx->key_count = 0;
}

#define MR_PAGE 4096u

/* A VM's MR: page by page through its list, each a guest-physical page. */
static int paged_access(const struct vhca_mr *mr, uint64_t off, void *buf,
			uint32_t len, bool write)
{
	uint8_t *p = buf;

	while (len) {
		uint64_t page = off / MR_PAGE;
		uint32_t in = (uint32_t)(off % MR_PAGE);
		uint32_t n = len < MR_PAGE - in ? len : MR_PAGE - in;
		int ret;

		if (page >= mr->npages)
			return -EFAULT;	/* callers checked; never trust it */
		ret = write ? vhca_dma_write(mr->dctx->space,
					     mr->pages[page] + in, p, n) :
			      vhca_dma_read(mr->dctx->space,
					    mr->pages[page] + in, p, n);
		if (ret)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int vhca_mr_map(const struct vhca_mr *mr, uint64_t iova, uint32_t len,
		struct vhca_pkt *pkt)
{
	uint64_t off = mr->addr + (iova - mr->iova);

	if (!mr->pages)
		return -EAGAIN;
	while (len) {
		uint64_t page = off / MR_PAGE;
		uint32_t in = (uint32_t)(off % MR_PAGE);
		uint32_t n = len < MR_PAGE - in ? len : MR_PAGE - in;
		const uint8_t *ptr;

		if (page >= mr->npages)
			return -EAGAIN;
		ptr = vhca_vm_ptr(mr->dctx->space, mr->pages[page] + in, n);
		if (!ptr)
			return -EAGAIN;
		if (pkt->nref && pkt->ref[pkt->nref - 1].ptr +
					 pkt->ref[pkt->nref - 1].len == ptr)
			pkt->ref[pkt->nref - 1].len += n;	/* contiguous */
		else if (pkt->nref == VHCA_PKT_REFS)
			return -EAGAIN;
		else
			pkt->ref[pkt->nref++] = (struct vhca_pkt_ref){ ptr, n };
		off += n;
		len -= n;
	}
	return 0;
}

int vhca_mr_read(const struct vhca_mr *mr, uint64_t iova, void *buf,
		 uint32_t len)
{
	uint64_t off = mr->addr + (iova - mr->iova);

	if (mr->pages)
		return paged_access(mr, off, buf, len, false);
	return vhca_dma_read(mr->dctx->space, off, buf, len);
}

int vhca_mr_write(const struct vhca_mr *mr, uint64_t iova, const void *buf,
		  uint32_t len)
{
	uint64_t off = mr->addr + (iova - mr->iova);

	if (mr->pages)
		return paged_access(mr, off, (void *)buf, len, true);
	return vhca_dma_write(mr->dctx->space, off, buf, len);
}

/*
 * Does a VM's page list of @npages cover an MR of @length bytes from
 * offset @addr in its first page, exactly: from its first to last page?
 */
static bool pages_cover(uint64_t addr, uint64_t length, uint32_t npages)
{
	return addr < MR_PAGE &&
	       npages == (addr + length + MR_PAGE - 1) / MR_PAGE;
}

int vhca_mr_check_args(uint64_t addr, uint64_t length, uint64_t iova,
		       uint32_t access)
{
	uint64_t page = (uint64_t)getpagesize();
	uint64_t end = addr + length;
	int ret;

	if ((addr & (page - 1)) != (iova & (page - 1)))
		return -EINVAL;
	ret = vhca_mr_check_access(access);
	if (ret)
		return ret;
	/* Implicit ODP: the whole address space, at I/O address 0. */
	if (vhca_mr_implicit(addr, length, access))
		return iova ? -EINVAL : 0;
	if (!length || end < addr || ((end + page - 1) & ~(page - 1)) < end)
		return -EINVAL;
	if (iova + length < iova)
		return -EINVAL;
	if (length > vhca_limits.max_mr_size)
		return -EINVAL;
	return 0;
}

/* Order of checks and errnos as ib_uverbs_reg_mr() + ib_umem_get(). */
int vhca_mr_reg(struct vhca_dctx *dctx, uint32_t pd_handle, uint64_t addr,
		uint64_t length, uint64_t iova, uint32_t access,
		uint64_t *pages, uint32_t npages,
		struct ib_uverbs_reg_mr_resp *resp)
{
	struct vhca_dev *dev = dctx->dev;
	struct vhca_pd *pd;
	struct vhca_mr *mr;
	int ret;

	ret = vhca_mr_check_args(addr, length, iova, access);
	/* A VM's pages are pinned lists: nothing there is on demand. */
	if (!ret && pages && (access & IB_UVERBS_ACCESS_ON_DEMAND))
		ret = -EOPNOTSUPP;
	/* A page list covers the MR exactly: from its first to last page. */
	if (!ret && pages && !pages_cover(addr, length, npages))
		ret = -EINVAL;
	mr = ret ? NULL : calloc(1, sizeof(*mr));
	if (!mr) {
		if (pages)
			vhca_vm_pages_released(dctx->space, npages);
		free(pages);
		return ret ? ret : -ENOMEM;
	}
	vhca_dctx_lock(dctx);
	pd = vhca_obj_lookup(dctx, VHCA_OBJ_PD, pd_handle);
	if (!pd) {
		ret = -EINVAL;
		goto err;
	}
	if (!vhca_stats_reserve(&dev->stats.mrs,
				dev->quota.max_mr < vhca_limits.max_mr ?
					dev->quota.max_mr :
					vhca_limits.max_mr)) {
		ret = -ENOMEM;
		goto err;
	}
	*mr = (struct vhca_mr){
		.dctx = dctx,
		.pd = pd,
		.pdn = pd->pdn,
		.addr = addr,
		.iova = iova,
		.length = length,
		.access = access,
		.handle = VHCA_NO_HANDLE,
		.pages = pages,
		.npages = npages,
	};
	ret = assign_key(dctx, mr);
	if (!ret) {
		ret = vhca_obj_insert(dctx, VHCA_OBJ_MR, mr, &mr->handle);
		if (ret)
			key_remove(dctx, key_find(dctx, mr->lkey));
	}
	if (ret) {
		vhca_stats_release(&dev->stats.mrs);
		goto err;
	}
	pd->num_mrs++;
	*resp = (struct ib_uverbs_reg_mr_resp){
		.mr_handle = mr->handle,
		.lkey = mr->lkey,
		.rkey = mr->rkey,
	};
	vhca_dctx_unlock(dctx);
	return 0;
err:
	vhca_dctx_unlock(dctx);
	if (pages)
		vhca_vm_pages_released(dctx->space, npages);
	free(pages);
	free(mr);
	return ret;
}

void vhca_mr_destroy(struct vhca_dctx *dctx, struct vhca_mr *mr)
{
	struct vhca_key_slot *slot = key_find(dctx, mr->lkey);

	/* Out of the key map first: no turn can find it from now on. */
	if (slot && slot->mr == mr)
		key_remove(dctx, slot);
	vhca_obj_erase(dctx, mr->handle);
	mr->pd->num_mrs--;
	vhca_stats_release(&dctx->dev->stats.mrs);
	if (mr->pages)
		vhca_vm_pages_released(dctx->space, mr->npages);
	free(mr->pages);
	free(mr);
}

/* The checks of vhca_mr_rereg(), in ib_uverbs_rereg_mr()'s order. */
static int rereg_check(struct vhca_dctx *dctx, struct vhca_mr *mr,
		       const struct vhca_devcmd_rereg_mr *in, bool paged,
		       uint32_t npages, struct vhca_pd **pd)
{
	uint32_t access;
	int ret;

	if (!mr)
		return -EINVAL;
	access = in->flags & VHCA_DEVCMD_REREG_ACCESS ? in->access : mr->access;
	/*
	 * An ODP MR has no pages to move, and making one ODP would mean
	 * dropping them under traffic: deregister and register instead.
	 */
	if ((mr->access | access) & IB_UVERBS_ACCESS_ON_DEMAND)
		return -EOPNOTSUPP;
	ret = vhca_mr_check_access(access);
	if (ret)
		return ret;
	*pd = mr->pd;
	if (in->flags & VHCA_DEVCMD_REREG_PD) {
		*pd = vhca_obj_lookup(dctx, VHCA_OBJ_PD, in->pd_handle);
		if (!*pd)
			return -EINVAL;
	}
	if (!(in->flags & VHCA_DEVCMD_REREG_TRANS))
		return paged ? -EINVAL : 0;	/* pages without a range */
	ret = vhca_mr_check_args(in->addr, in->length, in->iova, access);
	if (ret)
		return ret;
	/* A VM's MR stays a page list covering it exactly; vhcad's none. */
	if (paged != !!mr->pages)
		return -EINVAL;
	if (paged && !pages_cover(in->addr, in->length, npages))
		return -EINVAL;
	return 0;
}

int vhca_mr_rereg(struct vhca_dctx *dctx,
		  const struct vhca_devcmd_rereg_mr *in, uint64_t *pages,
		  uint32_t npages, uint32_t *lkey, uint32_t *rkey)
{
	uint64_t *old_pages = NULL;
	uint32_t old_npages = 0, old_key;
	struct vhca_pd *pd = NULL;
	struct vhca_mr *mr;
	int ret = -EINVAL;

	if (!in->flags || (in->flags & ~VHCA_DEVCMD_REREG_ALL))
		goto out;
	vhca_dctx_lock(dctx);
	mr = vhca_obj_lookup(dctx, VHCA_OBJ_MR, in->handle);
	ret = rereg_check(dctx, mr, in, pages != NULL, npages, &pd);
	if (ret)
		goto unlock;
	/*
	 * New keys first, the only step that can fail: the old key's slot
	 * is freed, so the map does not grow, and is taken back on failure.
	 */
	old_key = mr->lkey;
	key_remove(dctx, key_find(dctx, old_key));
	ret = assign_key(dctx, mr);
	if (ret) {
		key_place(dctx->key_slots, dctx->key_cap,
			  &(struct vhca_key_slot){ .mr = mr, .key = old_key });
		dctx->key_count++;
		mr->lkey = mr->rkey = old_key;
		goto unlock;
	}
	if (in->flags & VHCA_DEVCMD_REREG_ACCESS)
		mr->access = in->access;
	mr->pd->num_mrs--;
	mr->pd = pd;
	mr->pdn = pd->pdn;
	pd->num_mrs++;
	if (in->flags & VHCA_DEVCMD_REREG_TRANS) {
		mr->addr = in->addr;
		mr->length = in->length;
		mr->iova = in->iova;
		old_pages = mr->pages;
		old_npages = mr->npages;
		mr->pages = pages;
		mr->npages = npages;
		pages = NULL;
	}
	*lkey = mr->lkey;
	*rkey = mr->rkey;
unlock:
	vhca_dctx_unlock(dctx);
out:
	if (pages) {	/* not taken */
		old_pages = pages;
		old_npages = npages;
	}
	if (old_pages)
		vhca_vm_pages_released(dctx->space, old_npages);
	free(old_pages);
	return ret;
}

int vhca_mr_dereg(struct vhca_dctx *dctx, uint32_t handle)
{
	struct vhca_mr *mr;
	int ret = -EINVAL;

	vhca_dctx_lock(dctx);
	mr = vhca_obj_lookup(dctx, VHCA_OBJ_MR, handle);
	if (mr) {
		vhca_mr_destroy(dctx, mr);
		ret = 0;
	}
	vhca_dctx_unlock(dctx);
	return ret;
}
