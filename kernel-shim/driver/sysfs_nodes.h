/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The sysfs view's insides, shared by its files (the public face is
 * sysfs.h):
 *   sysfs.c          the FUSE operations and the session's lifetime
 *   sysfs_tree.c     node references, inode numbers, what exists, stat
 *   sysfs_attrs.c    attribute rendering and parsing, the node table
 *   sysfs_cmdfile.c  the uverbs command files
 */
#ifndef VHCA_SYSFS_NODES_H
#define VHCA_SYSFS_NODES_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <fuse_lowlevel.h>

#include "sysfs.h"

struct vhca_dev;
struct vhca_pf;
struct vhca_ucontext;

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

/* Size sysfs reports for every attribute file: one page. */
#define ATTR_FILE_SIZE 4096
/* Longest name of a node: device names, "uverbsN", counter names. */
#define NODE_NAME_MAX 64

/* ---- the tree -------------------------------------------------------------- */

enum node_kind {
	N_INVALID,
	N_ROOT,
	N_CLASS,
	N_VERBS_CLASS,
	N_VERBS_ABI,
	N_UVERBS,
	N_UVERBS_IBDEV,
	N_UVERBS_DEV,
	N_UVERBS_ABI,
	N_UVERBS_CMD,
	N_IB_CLASS,
	N_IBDEV,
	N_NODE_TYPE,
	N_NODE_GUID,
	N_SYS_IMAGE_GUID,
	N_NODE_DESC,
	N_FW_VER,
	N_HCA_TYPE,
	N_HW_REV,
	N_BOARD_ID,
	N_PORTS,
	N_PORT,
	N_PORT_STATE,
	N_PORT_PHYS_STATE,
	N_PORT_LID,
	N_PORT_LMC,
	N_PORT_SM_LID,
	N_PORT_SM_SL,
	N_PORT_CAP_MASK,
	N_PORT_RATE,
	N_PORT_LINK_LAYER,
	N_PORT_IP_ADDRS,
	N_GIDS,
	N_GID,
	N_GID_ATTRS,
	N_GID_TYPES,
	N_GID_TYPE,
	N_PKEYS,
	N_PKEY,
	N_COUNTERS,
	N_COUNTER,
	N_HW_COUNTERS,
	N_HW_COUNTER,
	N_PCI,
	N_SRIOV_TOTALVFS,
	N_SRIOV_NUMVFS,
	N_SRIOV,
	N_VF,
	N_VF_NODE,
	N_VF_PORT,
	N_VF_POLICY,
	N_VF_IP,
	N_VF_PKEYS,
	N_VF_PKEY,
	N_MODULE,
	N_MODULE_VHCA,
	N_STATUS,
	N_CM_STATUS,
	N_MISC_CLASS,
	N_RDMA_CM,
	N_RDMA_CM_ABI,
	N_RDMA_CM_CMD,
	N_KINDS
};

/* How a kind of node is named inside its parent, and how many there are. */
enum naming {
	NAME_FIXED,	/* one node called .name */
	NAME_INDEX,	/* .count nodes "0", "1", ...; the number in ref.item */
	NAME_LIST,	/* one node per .names[]; the index in ref.item */
	NAME_VF,	/* one node per VF, "0", "1", ...; the VF in ref.vf */
	NAME_UVERBS,	/* one node per device, "uverbsN"; N in ref.dev */
	NAME_IBDEV,	/* one node per device, its name; uverbs N in ref.dev */
};

/*
 * A node: its kind and, as far as its ancestors select them, the device
 * (by uverbs index), the VF and the table index.  Fields no ancestor sets
 * are zero, which makes the inode number of a node unique.
 */
struct node_ref {
	unsigned int kind;
	unsigned int dev;
	unsigned int vf;
	unsigned int item;
};

/* What a node_ref resolves to, under pf->lock. */
struct node_ctx {
	struct vhca_pf *pf;
	struct vhca_dev *dev;	/* per-device nodes */
	struct vhca_dev *vf;	/* nodes below device/sriov/<vf> */
	unsigned int item;
};

struct vhca_sysfs;

struct node_type {
	unsigned int parent;
	enum naming naming;
	const char *name;
	const char *const *names;
	unsigned int count;
	mode_t mode;
	bool pf_only;
	int (*show)(const struct node_ctx *c, FILE *out);
	int (*store)(struct vhca_sysfs *fs, struct node_ref ref,
		     const char *buf, size_t len);
};

/* An open command file: one user context (sysfs_cmdfile.c). */
struct cmd_file {
	struct vhca_ucontext *uctx;
	struct vhca_dev *dev;
	struct vhca_sysfs *fs;
	bool busy;			/* a command of it runs (cmdq.h) */
	struct cmd_file *prev, *next;
};

struct vhca_sysfs {
	struct vhca_pf *pf;
	struct vhca_guests *guests;	/* who may use which function */
	struct fuse_session *se;
	struct vhca_sysfs_events events;
	struct timespec mount_time;

	pthread_t loop_thread;
	bool serving;
	atomic_bool stopping;

	pthread_mutex_t cmd_files_lock;
	struct cmd_file cmd_files;	/* list head: every open command file */
};

/* ---- sysfs_attrs.c -------------------------------------------------------------- */

/* Every kind of node, by enum node_kind. */
extern const struct node_type sysfs_node_types[N_KINDS];

/* Renders an attribute from the current state; 0 or -errno. */
int sysfs_render(struct vhca_sysfs *fs, struct node_ref ref, char **text,
		 size_t *len);

/* ---- sysfs_tree.c --------------------------------------------------------------- */

fuse_ino_t sysfs_ref_to_ino(struct node_ref ref);
struct node_ref sysfs_ino_to_ref(fuse_ino_t ino);
const struct node_type *sysfs_type_of(struct node_ref ref);
/* The parent of a node: its kind, minus what this level selects. */
struct node_ref sysfs_parent_ref(struct node_ref ref);

/*
 * Does the node exist right now?  Fills ctx if so.  Caller holds
 * pf->lock.
 */
bool sysfs_resolve(struct vhca_pf *pf, struct node_ref ref,
		   struct node_ctx *ctx);

/* Returns true to stop the walk. */
typedef bool (*sysfs_visit_fn)(struct node_ref child, const char *name,
			       void *arg);

/*
 * Calls visit for every child of an existing directory, in table order;
 * parent_ctx is what it resolved to.  Returns true if visit stopped the
 * walk.  Caller holds pf->lock.
 */
bool sysfs_for_each_child(struct vhca_pf *pf, struct node_ref parent,
			  const struct node_ctx *parent_ctx,
			  sysfs_visit_fn visit, void *arg);

/* Caller holds pf->lock and has resolved ref into ctx. */
void sysfs_fill_stat(const struct vhca_sysfs *fs, struct node_ref ref,
		     const struct node_ctx *ctx, struct stat *st);
/* Resolves ino and fills st; 0 or a positive errno. */
int sysfs_stat_ino(struct vhca_sysfs *fs, fuse_ino_t ino, struct stat *st);

/* ---- sysfs_cmdfile.c ------------------------------------------------------------ */

/* FUSE open, write and release of a command file (ref: N_UVERBS_CMD). */
void sysfs_open_cmd_file(fuse_req_t req, struct vhca_sysfs *fs,
			 struct node_ref ref, struct fuse_file_info *fi);
void sysfs_write_cmd_file(fuse_req_t req, struct cmd_file *file,
			  const char *buf, size_t size);
void sysfs_release_cmd_file(fuse_req_t req, struct cmd_file *file);
/* The open reply of a command file (direct, stream, parallel writes). */
int sysfs_reply_open_stream(fuse_req_t req, uint64_t fh);

/* At unmount: releases the contexts of command files still open. */
void sysfs_release_abandoned_cmd_files(struct vhca_sysfs *fs);

/* ---- sysfs_addrs.c: a port's IP addresses (pf->lock held) ---------------------- */

int sysfs_show_addrs(const struct vhca_dev *dev, FILE *out);
int sysfs_store_vf_addrs(struct vhca_sysfs *fs, unsigned int vf,
			 const char *buf, size_t len);

/* ---- sysfs_ucma.c: the rdma_cm command file (ref: N_RDMA_CM_CMD) --------------- */

void sysfs_open_ucma(fuse_req_t req, struct vhca_sysfs *fs,
		     struct fuse_file_info *fi);
void sysfs_write_ucma(fuse_req_t req, struct fuse_file_info *fi,
		      const char *buf, size_t size);
void sysfs_release_ucma(fuse_req_t req, struct fuse_file_info *fi);
void sysfs_poll_ucma(fuse_req_t req, struct fuse_file_info *fi,
		     struct fuse_pollhandle *ph);
/* Once the view is mounted at @sys_path: learns the file's inode. */
void sysfs_ucma_mounted(const char *sys_path);

/* Is @ref one of the command files (never rendered, huge, writable)? */
static inline bool sysfs_is_cmd_file(struct node_ref ref)
{
	return ref.kind == N_UVERBS_CMD || ref.kind == N_RDMA_CM_CMD;
}

#endif /* VHCA_SYSFS_NODES_H */
