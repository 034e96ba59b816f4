// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A filesystem whose reads stall: what a hostile tenant mounts (FUSE
 * needs no privilege) to make a page fault of its own memory last as long
 * as it likes.
 *
 *   stall_fs MOUNTPOINT RELEASE
 *
 * One file, "f" (1 MiB of zeros); every read waits until the file RELEASE
 * exists, then answers.  Runs until unmounted or signalled.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_INO 2
#define FILE_SIZE (1 << 20)

static const char *release_path;
static struct fuse_session *session;

static void fill(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = FILE_SIZE;
	}
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .ino = FILE_INO };

	if (parent != FUSE_ROOT_ID || strcmp(name, "f")) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	fill(ino, &st);
	fuse_reply_attr(req, &st, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	static char zeros[1 << 17];

	(void)ino;
	(void)fi;
	/* The stall: nothing until the test says so. */
	while (access(release_path, F_OK) && !fuse_session_exited(session))
		usleep(10000);
	if (off >= FILE_SIZE) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > sizeof(zeros))
		size = sizeof(zeros);
	if ((off_t)size > FILE_SIZE - off)
		size = (size_t)(FILE_SIZE - off);
	fuse_reply_buf(req, zeros, size);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
};

int main(int argc, char **argv)
{
	char arg0[] = "stall_fs", arg1[] = "-o",
	     arg2[] = "allow_other,fsname=stall_fs";
	char *fargv[] = { arg0, arg1, arg2, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_loop_config *config;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: stall_fs MOUNTPOINT RELEASE\n");
		return 2;
	}
	release_path = argv[2];
	session = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!session || fuse_set_signal_handlers(session) ||
	    fuse_session_mount(session, argv[1]))
		return 1;
	printf("stall_fs: mounted\n");
	fflush(stdout);
	config = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(config, 16);
	ret = fuse_session_loop_mt(session, config);
	fuse_loop_cfg_destroy(config);
	fuse_session_unmount(session);
	fuse_remove_signal_handlers(session);
	fuse_session_destroy(session);
	return ret ? 1 : 0;
}
