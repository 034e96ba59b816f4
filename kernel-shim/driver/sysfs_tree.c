// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The sysfs view's tree: every node is named by a struct node_ref which
 * doubles as its inode number (sysfs.c explains why), and whether it exists
 * is decided here against struct vhca_pf, on every request.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "device/pf.h"
#include "rundir.h"
#include "sysfs_nodes.h"

/* ---- node references and inode numbers ---------------------------------------- */

/* Inode number layout: kind:16 | dev:24 | vf:8 | item:16. */
#define INO_KIND_SHIFT 48
#define INO_DEV_SHIFT 24
#define INO_VF_SHIFT 16
#define INO_DEV_MASK 0xffffffULL
#define INO_VF_MASK 0xffULL
#define INO_ITEM_MASK 0xffffULL

static_assert(VHCA_MAX_VFS <= INO_VF_MASK + 1, "VF number must fit");
static_assert(VHCA_PKEY_TABLE_LEN <= INO_ITEM_MASK + 1, "index must fit");

fuse_ino_t sysfs_ref_to_ino(struct node_ref ref)
{
	if (ref.kind == N_ROOT)
		return FUSE_ROOT_ID;
	return (fuse_ino_t)ref.kind << INO_KIND_SHIFT |
	       ((fuse_ino_t)ref.dev & INO_DEV_MASK) << INO_DEV_SHIFT |
	       ((fuse_ino_t)ref.vf & INO_VF_MASK) << INO_VF_SHIFT |
	       ((fuse_ino_t)ref.item & INO_ITEM_MASK);
}

struct node_ref sysfs_ino_to_ref(fuse_ino_t ino)
{
	struct node_ref ref = { .kind = N_INVALID };
	uint64_t kind = ino >> INO_KIND_SHIFT;

	if (ino == FUSE_ROOT_ID) {
		ref.kind = N_ROOT;
		return ref;
	}
	if (kind <= N_ROOT || kind >= N_KINDS)
		return ref;
	ref.kind = (unsigned int)kind;
	ref.dev = (unsigned int)((ino >> INO_DEV_SHIFT) & INO_DEV_MASK);
	ref.vf = (unsigned int)((ino >> INO_VF_SHIFT) & INO_VF_MASK);
	ref.item = (unsigned int)(ino & INO_ITEM_MASK);
	return ref;
}

const struct node_type *sysfs_type_of(struct node_ref ref)
{
	return &sysfs_node_types[ref.kind];
}

/* The parent of a node: its kind, minus what this level selects. */
struct node_ref sysfs_parent_ref(struct node_ref ref)
{
	const struct node_type *type = sysfs_type_of(ref);
	struct node_ref up = ref;

	if (ref.kind == N_ROOT)
		return ref;
	up.kind = type->parent;
	switch (type->naming) {
	case NAME_FIXED:
		break;
	case NAME_INDEX:
	case NAME_LIST:
		up.item = 0;
		break;
	case NAME_VF:
		up.vf = 0;
		break;
	case NAME_UVERBS:
	case NAME_IBDEV:
		up.dev = 0;
		break;
	}
	return up;
}

/*
 * Does the node exist right now?  Walks up to the root checking each level
 * against the device model, and fills ctx on the way back.  A reference
 * whose unused fields are not zero does not exist.  Caller holds pf->lock.
 */
bool sysfs_resolve(struct vhca_pf *pf, struct node_ref ref,
		   struct node_ctx *ctx)
{
	const struct node_type *type;

	if (ref.kind == N_ROOT) {
		*ctx = (struct node_ctx){ .pf = pf };
		return !ref.dev && !ref.vf && !ref.item;
	}
	if (ref.kind <= N_ROOT || ref.kind >= N_KINDS)
		return false;
	if (!sysfs_resolve(pf, sysfs_parent_ref(ref), ctx))
		return false;

	type = sysfs_type_of(ref);
	switch (type->naming) {
	case NAME_FIXED:
		break;
	case NAME_INDEX:
	case NAME_LIST:
		if (ref.item >= type->count)
			return false;
		ctx->item = ref.item;
		break;
	case NAME_VF:
		if (ref.vf >= pf->num_vfs)
			return false;
		ctx->vf = pf->vfs[ref.vf];
		break;
	case NAME_UVERBS:
	case NAME_IBDEV:
		ctx->dev = vhca_pf_find_by_uverbs(pf, (int)ref.dev);
		if (!ctx->dev)
			return false;
		break;
	}
	return !type->pf_only || (ctx->dev && !ctx->dev->is_vf);
}

/* The PF, then each VF; NULL past the end.  Caller holds pf->lock. */
static struct vhca_dev *nth_dev(struct vhca_pf *pf, unsigned int n)
{
	/* A VM's view has no PF: its devices are its VFs. */
	if (pf->pf_hidden)
		return n < pf->num_vfs ? pf->vfs[n] : NULL;
	if (n == 0)
		return &pf->dev;
	return n <= pf->num_vfs ? pf->vfs[n - 1] : NULL;
}

static bool visit_numbered(struct node_ref *child, unsigned int *field,
			   unsigned int count, const char *const *names,
			   sysfs_visit_fn visit, void *arg)
{
	char name[16];

	for (unsigned int i = 0; i < count; i++) {
		*field = i;
		snprintf(name, sizeof(name), "%u", i);
		if (visit(*child, names ? names[i] : name, arg))
			return true;
	}
	return false;
}

static bool visit_devices(struct vhca_pf *pf, struct node_ref child,
			  bool by_uverbs, sysfs_visit_fn visit, void *arg)
{
	char name[NODE_NAME_MAX];
	struct vhca_dev *dev;

	for (unsigned int n = 0; (dev = nth_dev(pf, n)); n++) {
		child.dev = (unsigned int)dev->uverbs_index;
		if (by_uverbs)
			snprintf(name, sizeof(name), "uverbs%d",
				 dev->uverbs_index);
		else
			snprintf(name, sizeof(name), "%s", dev->name);
		if (visit(child, name, arg))
			return true;
	}
	return false;
}

/*
 * Calls visit for every child of an existing directory, in table order;
 * parent_ctx is what it resolved to.  Caller holds pf->lock.
 */
bool sysfs_for_each_child(struct vhca_pf *pf, struct node_ref parent,
			  const struct node_ctx *parent_ctx,
			  sysfs_visit_fn visit, void *arg)
{
	for (unsigned int kind = N_ROOT + 1; kind < N_KINDS; kind++) {
		const struct node_type *type = &sysfs_node_types[kind];
		struct node_ref child = parent;
		bool stop = false;

		if (type->parent != parent.kind)
			continue;
		if (type->pf_only &&
		    (!parent_ctx->dev || parent_ctx->dev->is_vf))
			continue;
		child.kind = kind;
		switch (type->naming) {
		case NAME_FIXED:
			stop = visit(child, type->name, arg);
			break;
		case NAME_INDEX:
		case NAME_LIST:
			stop = visit_numbered(&child, &child.item, type->count,
					      type->names, visit, arg);
			break;
		case NAME_VF:
			stop = visit_numbered(&child, &child.vf, pf->num_vfs,
					      NULL, visit, arg);
			break;
		case NAME_UVERBS:
		case NAME_IBDEV:
			stop = visit_devices(pf, child,
					     type->naming == NAME_UVERBS,
					     visit, arg);
			break;
		}
		if (stop)
			return true;
	}
	return false;
}

/* ---- attributes (struct stat) ------------------------------------------------------- */

/* Caller holds pf->lock and has resolved ref into ctx. */
void sysfs_fill_stat(const struct vhca_sysfs *fs, struct node_ref ref,
		     const struct node_ctx *ctx, struct stat *st)
{
	const struct node_type *type = sysfs_type_of(ref);
	struct timespec when = fs->mount_time;
	struct stat node;

	memset(st, 0, sizeof(*st));
	st->st_ino = sysfs_ref_to_ino(ref);
	st->st_mode = type->mode;
	st->st_nlink = S_ISDIR(type->mode) ? 2 : 1;
	st->st_blksize = ATTR_FILE_SIZE;
	if (S_ISREG(type->mode) && !sysfs_is_cmd_file(ref))
		st->st_size = ATTR_FILE_SIZE;
	/*
	 * The kernel takes the inode lock exclusive for a write past EOF even
	 * with parallel direct writes; a huge size keeps every write inside.
	 */
	if (sysfs_is_cmd_file(ref))
		st->st_size = 1LL << 40;

	/*
	 * libibverbs takes the mtime of class/infiniband/<dev> as the
	 * device's creation time, to tell a re-created device from the one
	 * it already knows (init.c, same_sysfs_dev).  The marker node was
	 * created with the device, so its mtime is exactly that.
	 */
	if ((ref.kind == N_IBDEV || ref.kind == N_UVERBS) &&
	    !vhca_uverbs_node_stat(ctx->dev->uverbs_index, &node))
		when = node.st_mtim;
	st->st_atim = when;
	st->st_mtim = when;
	st->st_ctim = when;
}

/* Resolves ino and fills st; 0 or a positive errno. */
int sysfs_stat_ino(struct vhca_sysfs *fs, fuse_ino_t ino, struct stat *st)
{
	struct node_ref ref = sysfs_ino_to_ref(ino);
	struct node_ctx ctx;
	int err = ENOENT;

	pthread_rwlock_rdlock(&fs->pf->lock);
	if (sysfs_resolve(fs->pf, ref, &ctx)) {
		sysfs_fill_stat(fs, ref, &ctx, st);
		err = 0;
	}
	pthread_rwlock_unlock(&fs->pf->lock);
	return err;
}

