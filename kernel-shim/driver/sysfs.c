// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The sysfs view, a low-level FUSE filesystem.  Layout: sysfs.h.
 *
 * Every node is named by a struct node_ref (its kind plus the device, VF
 * and table index it stands for) which doubles as its inode number, so the
 * filesystem keeps no per-inode state: whether a node exists is decided
 * against struct vhca_pf, under pf->lock, on every request.  That is what
 * lets the tree follow sriov_numvfs at once, and it is also why nothing
 * may be cached by the kernel: entry and attribute timeouts are zero and
 * attribute files use direct_io, so every read reaches us and is rendered
 * from the current state.
 *
 * This file holds the FUSE operations and the session's lifetime; the
 * tree is in sysfs_tree.c, the attributes in sysfs_attrs.c and the command
 * files in sysfs_cmdfile.c (sysfs_nodes.h ties them together).
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <fuse_lowlevel.h>

#include "cmdq.h"
#include "device/pf.h"
#include "guests.h"
#include "sysfs.h"
#include "sysfs_nodes.h"

/* Longest value a sysfs attribute write may carry. */
#define ATTR_WRITE_MAX 64

/*
 * Interrupts the thread running the FUSE loop so that it notices the
 * session has been told to exit (see vhca_sysfs_stop()).
 */
#define KICK_SIGNAL SIGUSR2

/* ---- FUSE: names and attributes ------------------------------------------------------ */

struct name_search {
	const char *name;
	struct node_ref found;
};

static bool match_name(struct node_ref child, const char *name, void *arg)
{
	struct name_search *search = arg;

	if (strcmp(name, search->name))
		return false;
	search->found = child;
	return true;
}

static bool is_writable(struct node_ref ref)
{
	return sysfs_is_cmd_file(ref) || sysfs_type_of(ref)->store;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct name_search search = { .name = name };
	struct node_ref ref = sysfs_ino_to_ref(parent);
	struct fuse_entry_param entry;
	struct node_ctx ctx;
	int err = ENOENT;

	/* Zero timeouts: the tree changes with sriov_numvfs. */
	memset(&entry, 0, sizeof(entry));
	pthread_rwlock_rdlock(&fs->pf->lock);
	if (sysfs_resolve(fs->pf, ref, &ctx)) {
		if (!S_ISDIR(sysfs_type_of(ref)->mode))
			err = ENOTDIR;
		else if (sysfs_for_each_child(fs->pf, ref, &ctx, match_name,
					      &search) &&
			 sysfs_resolve(fs->pf, search.found, &ctx)) {
			sysfs_fill_stat(fs, search.found, &ctx, &entry.attr);
			entry.ino = entry.attr.st_ino;
			err = 0;
		}
	}
	pthread_rwlock_unlock(&fs->pf->lock);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &entry);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct stat st;
	int err = sysfs_stat_ino(fs, ino, &st);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 0.0);
}

/*
 * Like sysfs: ownership and mode are fixed; truncation of a writable file
 * (the O_TRUNC of "echo N > file") and time updates are accepted and
 * change nothing.
 */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct node_ref ref = sysfs_ino_to_ref(ino);
	struct stat st;
	int err;

	err = sysfs_stat_ino(fs, ino, &st);
	if (!err && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
			       FUSE_SET_ATTR_GID)))
		err = EPERM;
	if (!err && (to_set & FUSE_SET_ATTR_SIZE) && !is_writable(ref))
		err = EPERM;

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 0.0);
}

/* Nothing can be created, removed or renamed (errnos as sysfs gives them). */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EPERM);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	fuse_reply_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fuse_reply_err(req, EPERM);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	fuse_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fuse_reply_err(req, EPERM);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EACCES);
}

/* ---- FUSE: directories ------------------------------------------------------------------- */

struct dir_entry {
	fuse_ino_t ino;
	mode_t mode;
	char name[NODE_NAME_MAX];
};

/* A snapshot of one directory, taken at opendir and at every rewind. */
struct dir_listing {
	struct node_ref ref;
	pthread_mutex_t lock;
	size_t count, max;
	struct dir_entry *entries;
	bool out_of_memory;
};

static void add_entry(struct dir_listing *dir, const char *name,
		      struct node_ref ref)
{
	struct dir_entry *entry;

	if (dir->count == dir->max) {
		size_t max = dir->max ? 2 * dir->max : 32;
		struct dir_entry *grown;

		grown = realloc(dir->entries, max * sizeof(*grown));
		if (!grown) {
			dir->out_of_memory = true;
			return;
		}
		dir->entries = grown;
		dir->max = max;
	}
	entry = &dir->entries[dir->count++];
	entry->ino = sysfs_ref_to_ino(ref);
	entry->mode = sysfs_type_of(ref)->mode;
	snprintf(entry->name, sizeof(entry->name), "%s", name);
}

static bool add_child_entry(struct node_ref child, const char *name,
			    void *arg)
{
	struct dir_listing *dir = arg;

	add_entry(dir, name, child);
	return dir->out_of_memory;
}

/* (Re)takes the snapshot; 0 or a positive errno. */
static int list_dir(struct vhca_sysfs *fs, struct dir_listing *dir)
{
	struct node_ctx ctx;
	int err = 0;

	dir->count = 0;
	dir->out_of_memory = false;
	pthread_rwlock_rdlock(&fs->pf->lock);
	if (!sysfs_resolve(fs->pf, dir->ref, &ctx)) {
		err = ENOENT;
	} else if (!S_ISDIR(sysfs_type_of(dir->ref)->mode)) {
		err = ENOTDIR;
	} else {
		add_entry(dir, ".", dir->ref);
		add_entry(dir, "..", sysfs_parent_ref(dir->ref));
		sysfs_for_each_child(fs->pf, dir->ref, &ctx, add_child_entry,
				     dir);
		if (dir->out_of_memory)
			err = ENOMEM;
	}
	pthread_rwlock_unlock(&fs->pf->lock);
	return err;
}

static void free_listing(struct dir_listing *dir)
{
	pthread_mutex_destroy(&dir->lock);
	free(dir->entries);
	free(dir);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct dir_listing *dir;
	int err;

	dir = calloc(1, sizeof(*dir));
	if (!dir) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dir->ref = sysfs_ino_to_ref(ino);
	pthread_mutex_init(&dir->lock, NULL);
	err = list_dir(fs, dir);
	if (err) {
		free_listing(dir);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)dir;
	if (fuse_reply_open(req, fi))
		free_listing(dir);
}

/*
 * Offsets index the snapshot, so a listing read in several calls is
 * consistent even if VFs come and go meanwhile; offset 0 (a fresh read
 * or rewinddir) takes a new snapshot.
 */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct dir_listing *dir = (struct dir_listing *)(uintptr_t)fi->fh;
	size_t used = 0;
	char *buf;
	int err = 0;

	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&dir->lock);
	if (off == 0)
		err = list_dir(fs, dir);
	for (size_t i = (size_t)off; !err && off >= 0 && i < dir->count;
	     i++) {
		struct stat st = { .st_ino = dir->entries[i].ino,
				   .st_mode = dir->entries[i].mode };
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						dir->entries[i].name, &st,
						(off_t)(i + 1));

		if (need > size - used)
			break;
		used += need;
	}
	pthread_mutex_unlock(&dir->lock);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	free_listing((struct dir_listing *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- FUSE: attribute files ------------------------------------------------------------- */

/* An open attribute: the text the last read from offset 0 rendered. */
struct attr_file {
	struct node_ref ref;
	pthread_mutex_t lock;	/* reads on one open file may run in parallel */
	char *text;
	size_t len;
};

static void free_attr_file(struct attr_file *file)
{
	pthread_mutex_destroy(&file->lock);
	free(file->text);
	free(file);
}

static void open_attribute(fuse_req_t req, struct vhca_sysfs *fs,
			   struct node_ref ref, struct fuse_file_info *fi)
{
	const struct node_type *type = sysfs_type_of(ref);
	int access = fi->flags & O_ACCMODE;
	struct attr_file *file;
	struct node_ctx ctx;
	bool exists;

	pthread_rwlock_rdlock(&fs->pf->lock);
	exists = sysfs_resolve(fs->pf, ref, &ctx);
	pthread_rwlock_unlock(&fs->pf->lock);
	if (!exists) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (S_ISDIR(type->mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* As kernfs: no write access to a file without a store method. */
	if (access != O_RDONLY && !type->store) {
		fuse_reply_err(req, EACCES);
		return;
	}

	file = calloc(1, sizeof(*file));
	if (!file) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	file->ref = ref;
	pthread_mutex_init(&file->lock, NULL);
	fi->fh = (uintptr_t)file;
	fi->direct_io = 1;	/* every read is rendered afresh */
	if (fuse_reply_open(req, fi))
		free_attr_file(file);
}

/*
 * Like sysfs: a read from offset 0 renders the value anew, later offsets
 * continue in that same text, so a reader never sees two versions mixed.
 * The reply goes out from a copy, after the lock is dropped: the moment it
 * reaches the kernel the reader may close, and its release free the file.
 */
static void read_attribute(fuse_req_t req, struct vhca_sysfs *fs,
			   struct attr_file *file, size_t size, off_t off)
{
	char *reply = NULL;
	size_t len = 0;
	int ret = 0;

	pthread_mutex_lock(&file->lock);
	if (off == 0 || !file->text) {
		char *text;
		size_t text_len;

		ret = sysfs_render(fs, file->ref, &text, &text_len);
		if (!ret) {
			free(file->text);
			file->text = text;
			file->len = text_len;
		}
	}
	if (!ret && off >= 0 && (size_t)off < file->len) {
		len = file->len - (size_t)off;
		if (len > size)
			len = size;
		reply = malloc(len);
		if (reply)
			memcpy(reply, file->text + off, len);
		else
			ret = -ENOMEM;
	}
	pthread_mutex_unlock(&file->lock);

	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, reply, len);
	free(reply);
}

/*
 * Each write() is one whole value, judged on its own as sysfs does; the
 * offset is ignored.
 */
static void write_attribute(fuse_req_t req, struct vhca_sysfs *fs,
			    struct attr_file *file, const char *buf,
			    size_t size)
{
	const struct node_type *type = sysfs_type_of(file->ref);
	int ret;

	if (!type->store || vhca_guests_contain(fs->guests,
						fuse_req_ctx(req)->pid))
		ret = -EACCES;	/* a guest provisions nothing */
	else if (size > ATTR_WRITE_MAX)
		ret = -EINVAL;
	else
		ret = type->store(fs, file->ref, buf, size);

	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, size);
}

/* ---- FUSE: open files ------------------------------------------------------------------- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);
	struct node_ref ref = sysfs_ino_to_ref(ino);

	if (ref.kind == N_UVERBS_CMD)
		sysfs_open_cmd_file(req, fs, ref, fi);
	else if (ref.kind == N_RDMA_CM_CMD)
		sysfs_open_ucma(req, fs, fi);
	else
		open_attribute(req, fs, ref, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);

	/* Responses go to the caller's memory, never through read(). */
	if (sysfs_is_cmd_file(sysfs_ino_to_ref(ino)))
		fuse_reply_err(req, EINVAL);
	else
		read_attribute(req, fs, (struct attr_file *)(uintptr_t)fi->fh,
			       size, off);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct vhca_sysfs *fs = fuse_req_userdata(req);

	if (sysfs_ino_to_ref(ino).kind == N_UVERBS_CMD)
		sysfs_write_cmd_file(req, (struct cmd_file *)(uintptr_t)fi->fh,
				     buf, size);
	else if (sysfs_ino_to_ref(ino).kind == N_RDMA_CM_CMD)
		sysfs_write_ucma(req, fi, buf, size);
	else
		write_attribute(req, fs, (struct attr_file *)(uintptr_t)fi->fh,
				buf, size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (sysfs_ino_to_ref(ino).kind == N_UVERBS_CMD) {
		sysfs_release_cmd_file(req,
				       (struct cmd_file *)(uintptr_t)fi->fh);
		return;
	}
	if (sysfs_ino_to_ref(ino).kind == N_RDMA_CM_CMD) {
		sysfs_release_ucma(req, fi);
		return;
	}
	free_attr_file((struct attr_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/*
 * The rdma_cm file polls for events; everything else is always ready.
 * (An ENOSYS here would turn poll off for the whole mount.)
 */
static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	if (sysfs_ino_to_ref(ino).kind == N_RDMA_CM_CMD) {
		sysfs_poll_ucma(req, fi, ph);
		return;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
}

/*
 * libibverbs probes the ioctl uAPI on the command fd and falls back to the
 * write ABI (and to sysfs for GIDs and P_Keys) only on ENOTTY; libfuse's
 * default answer, ENOSYS, would make it give up instead.
 */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		     void *arg, struct fuse_file_info *fi, unsigned int flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	fuse_reply_err(req, ENOTTY);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct vhca_sysfs *fs = userdata;

	if (fs->events.ready)
		fs->events.ready(fs->events.arg);
}

static const struct fuse_lowlevel_ops sysfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.ioctl = op_ioctl,
	.poll = op_poll,
};

/* ---- session lifetime ----------------------------------------------------------------- */

int vhca_sysfs_mount(struct vhca_sysfs **out, struct vhca_pf *pf,
		     struct vhca_guests *guests, const char *mountpoint,
		     const struct vhca_sysfs_events *events)
{
	char arg0[] = "vhcad", arg1[] = "-o",
	     arg2[] = "allow_other,default_permissions,fsname=vhca,subtype=vhca";
	char *argv[] = { arg0, arg1, arg2, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct vhca_sysfs *fs;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->pf = pf;
	fs->guests = guests;
	fs->events = *events;
	atomic_init(&fs->stopping, false);
	clock_gettime(CLOCK_REALTIME, &fs->mount_time);
	pthread_mutex_init(&fs->cmd_files_lock, NULL);
	fs->cmd_files.next = fs->cmd_files.prev = &fs->cmd_files;

	fs->se = fuse_session_new(&args, &sysfs_ops, sizeof(sysfs_ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->se) {
		log_msg("cannot create the FUSE session for %s", mountpoint);
		goto err;
	}
	if (fuse_session_mount(fs->se, mountpoint)) {
		log_msg("cannot mount %s", mountpoint);
		fuse_session_destroy(fs->se);
		goto err;
	}
	sysfs_ucma_mounted(mountpoint);
	*out = fs;
	return 0;

err:
	pthread_mutex_destroy(&fs->cmd_files_lock);
	free(fs);
	return -EIO;
}

static void ignore_kick(int sig)
{
}

static void *serve(void *arg)
{
	struct vhca_sysfs *fs = arg;
	struct fuse_loop_config *config = fuse_loop_cfg_create();
	sigset_t kick;
	int ret;

	sigemptyset(&kick);
	sigaddset(&kick, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	if (!config) {
		log_msg("cannot configure the FUSE loop");
		ret = -ENOMEM;
	} else {
		fuse_loop_cfg_set_clone_fd(config, 1);	/* a /dev/fuse fd each */
		fuse_loop_cfg_set_idle_threads(config, 10);
		/*
		 * Enough workers for every function's executions at once
		 * (cmdq.h) and the attribute reads beside them.
		 */
		fuse_loop_cfg_set_max_threads(config,
					      VHCA_CMDQ_RUNNING *
						      (VHCA_MAX_VFS + 1) +
					      64);
		ret = fuse_session_loop_mt(fs->se, config);
		fuse_loop_cfg_destroy(config);
	}
	if (ret < 0)
		log_msg("serving the sysfs view failed: %s", strerror(-ret));
	if (!atomic_load(&fs->stopping) && fs->events.stopped)
		fs->events.stopped(fs->events.arg);
	return NULL;
}

int vhca_sysfs_start(struct vhca_sysfs *fs)
{
	struct sigaction sa = { .sa_handler = ignore_kick };
	int ret;

	/* No SA_RESTART: the kick must interrupt sem_wait(). */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL))
		return -errno;
	ret = pthread_create(&fs->loop_thread, NULL, serve, fs);
	if (ret) {
		log_msg("cannot start serving: %s", strerror(ret));
		return -ret;
	}
	fs->serving = true;
	return 0;
}

void vhca_sysfs_stop(struct vhca_sysfs *fs)
{
	if (!fs->serving)
		return;
	atomic_store(&fs->stopping, true);
	fuse_session_exit(fs->se);
	/*
	 * The loop's thread sleeps in sem_wait() until a worker finishes or a
	 * signal interrupts it, and a signal that lands just before it goes
	 * to sleep is lost: kick until it has returned.
	 */
	for (;;) {
		struct timespec deadline;

		pthread_kill(fs->loop_thread, KICK_SIGNAL);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 20 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(fs->loop_thread, NULL, &deadline) !=
		    ETIMEDOUT)
			break;
	}
	fs->serving = false;
}

void vhca_sysfs_unmount(struct vhca_sysfs *fs)
{
	vhca_sysfs_stop(fs);
	fuse_session_unmount(fs->se);
	fuse_session_destroy(fs->se);
	sysfs_release_abandoned_cmd_files(fs);
	pthread_mutex_destroy(&fs->cmd_files_lock);
	free(fs);
}
