/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The harness of test_cmd (cmd_harness.c): a device built in-process, this
 * process as its guest (response pointers into our memory, our pipes and
 * memfds), and one helper per command it frames.  The tests are in
 * test_cmd.c (framing, contexts, queries), test_cmd_objects.c (PDs, MRs,
 * keys) and test_cmd_channels.c (completion channels, ownership,
 * threads, release).
 */
#ifndef VHCA_TESTS_CMD_HARNESS_H
#define VHCA_TESTS_CMD_HARNESS_H

#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <vhca/abi.h>
#include <vhca/queue.h>

#include "../common.h"
#include "driver/channel.h"
#include "driver/cmd.h"
#include "driver/context.h"
#include "device/mr.h"
#include "device/pf.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))

#define STATS_FMT "contexts %u pds %u mrs %u channels %u"
#define STATS_ARGS                                                            \
	atomic_load(&dev->stats.contexts), atomic_load(&dev->stats.pds),      \
		atomic_load(&dev->stats.mrs),                                 \
		atomic_load(&dev->stats.comp_channels)

/* The device under test: the PF's first VF. */
extern struct vhca_pf pf;
extern struct vhca_dev *dev;
extern long page;
extern void *unmapped;	/* a page-sized hole in our address space */

/* A legacy command: header, core payload, provider data. */
struct cmd_buf {
	struct ib_uverbs_cmd_hdr hdr;
	uint64_t words[256];
};

/* An extended command. */
struct ex_buf {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_ex_cmd_hdr ex;
	uint64_t words[64];
};

/* ib_uverbs_get_context_resp ends in a flexible array: spelt out here. */
struct get_context_resp {
	struct {
		uint32_t async_fd;
		uint32_t num_comp_vectors;
	} core;
	struct vhca_alloc_ucontext_resp udata;
};
_Static_assert(sizeof(((struct get_context_resp *)0)->core) ==
		       sizeof(struct ib_uverbs_get_context_resp),
	       "GET_CONTEXT core response layout");

void setup_device(void);
unsigned int open_fds(void);
bool stats_are(unsigned int contexts, unsigned int pds,
	       unsigned int mrs, unsigned int channels);
int submit_as(struct vhca_ucontext *u, pid_t tid, const void *buf,
	      size_t len);
int submit(struct vhca_ucontext *u, const void *buf, size_t len);
size_t frame(struct cmd_buf *c, uint32_t command, const void *core,
	     size_t core_len, const void *udata, size_t udata_len,
	     size_t out_len);
int legacy(struct vhca_ucontext *u, uint32_t command, const void *core,
	   size_t core_len, size_t out_len);
size_t frame_ex(struct ex_buf *c, uint32_t command, size_t in_len,
		void *resp, size_t out_len);
int try_open_pair(struct vhca_fd_pair *pair);
void open_pair(struct vhca_fd_pair *pair);
void close_pair(struct vhca_fd_pair *pair);
void open_guest_fds(struct vhca_alloc_ucontext_cmd *u,
		    unsigned int num_channels);
void close_guest_writers(struct vhca_alloc_ucontext_cmd *u);
void close_guest_fds(struct vhca_alloc_ucontext_cmd *u);
int get_context_as(struct vhca_ucontext *u, pid_t tid,
		   const struct vhca_alloc_ucontext_cmd *udata,
		   size_t udata_len, void *resp);
int get_context(struct vhca_ucontext *u,
		const struct vhca_alloc_ucontext_cmd *udata,
		struct get_context_resp *resp);
struct vhca_ucontext *open_context(struct vhca_alloc_ucontext_cmd *g);
int alloc_pd_at(struct vhca_ucontext *u, void *resp_ptr,
		uint32_t *handle);
int alloc_pd(struct vhca_ucontext *u, uint32_t *handle);
int dealloc_pd(struct vhca_ucontext *u, uint32_t handle);
int reg_mr_full(struct vhca_ucontext *u, uint32_t pd, const void *addr,
		uint64_t len, uint64_t hca_va, uint32_t access,
		void *resp_ptr, struct ib_uverbs_reg_mr_resp *out);
int reg_mr(struct vhca_ucontext *u, uint32_t pd, const void *addr,
	   uint64_t len, uint32_t access,
	   struct ib_uverbs_reg_mr_resp *out);
int dereg_mr(struct vhca_ucontext *u, uint32_t handle);
int create_channel_at(struct vhca_ucontext *u, void *resp_ptr, int *fd);
int create_channel(struct vhca_ucontext *u, int *fd);
int add_channels_as(struct vhca_ucontext *u, pid_t tid,
		    const struct vhca_add_channels_cmd *req,
		    size_t out_len);
void guest_close_channel(struct vhca_alloc_ucontext_cmd *g, int fd);
ssize_t drain(int fd, char *buf, size_t len);

/* The tests, by file. */
void test_before_context(void);
void test_framing(void);
void test_get_context(void);
void test_get_context_errors(void);
void test_query_device(void);
void test_query_port(void);
void test_pds(void);
void test_mrs(void);
void test_rereg_mr(void);
void test_keys(void);
void test_channels(void);
void test_refill(void);
void test_add_channels_errors(void);
void test_ownership(void);
void test_threads(void);
void test_release_frees_all(void);

#endif
