// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * kernel-shim/dma.c against this very process (and a forked child) as the
 * guest: memory transfers, the mapping check, fd taking and the pidfd
 * guard.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"
#include "device/dma.h"
#include "driver/peer.h"

TEST_COUNTERS;

static long page;

static struct vhca_peer *bind_self_with(unsigned int flags)
{
	struct vhca_peer *peer = NULL;

	int ret = vhca_peer_bind(gettid(), flags, &peer);

	REQUIRE(ret == 0, "bind to self: %d", ret);
	return peer;
}

static struct vhca_peer *bind_self(void)
{
	return bind_self_with(VHCA_PEER_MAPS);
}

/* Where our [vvar] mapping starts, or 0. */
static uintptr_t vvar_start(void)
{
	FILE *maps = fopen("/proc/self/maps", "re");
	char line[512];
	uintptr_t start = 0;

	while (maps && fgets(line, sizeof(line), maps))
		if (strstr(line, "[vvar]") &&
		    sscanf(line, "%" SCNxPTR "-", &start) == 1)
			break;
	if (maps)
		fclose(maps);
	return start;
}

static void *thread_tgid(void *arg)
{
	pid_t tgid = 0;

	*(int *)arg = vhca_peer_tgid_of(gettid(), &tgid) ? -1 : (int)tgid;
	return NULL;
}

static void test_identity(void)
{
	struct vhca_peer *peer = bind_self();
	pthread_t thread;
	pid_t tgid = 0;
	int from_thread = 0;
	int ret;

	CHECK(vhca_peer_tgid_of(getpid(), &tgid) == 0 && tgid == getpid(),
	      "tgid of main thread %d", (int)tgid);
	ret = pthread_create(&thread, NULL, thread_tgid, &from_thread);
	REQUIRE(ret == 0, "pthread_create");
	pthread_join(thread, NULL);
	CHECK(from_thread == getpid(), "tgid of a thread: %d", from_thread);
	CHECK(vhca_peer_tgid_of(0, &tgid) == -EACCES, "tid 0");

	CHECK(vhca_peer_tgid(peer) == getpid(), "peer tgid");
	CHECK(vhca_peer_alive(peer), "self is alive");
	CHECK(vhca_peer_check_caller(peer, gettid()) == 0, "own thread");
	CHECK(vhca_peer_check_caller(peer, 1) == -EACCES,
	      "init is foreign");
	CHECK(vhca_peer_check_caller(peer, -5) == -EACCES, "bogus tid");
	vhca_peer_put(peer);
}

static void test_transfers(void)
{
	struct vhca_peer *peer = bind_self();
	static char src[8192], dst[8192];
	char *two, *hole;

	memset(src, 0x5a, sizeof(src));
	CHECK(vhca_peer_write(peer, (uintptr_t)dst, src, sizeof(src)) == 0,
	      "write");
	CHECK(!memcmp(src, dst, sizeof(src)), "written bytes");
	memset(dst, 0, sizeof(dst));
	CHECK(vhca_peer_read(peer, (uintptr_t)src, dst, sizeof(dst)) == 0,
	      "read");
	CHECK(!memcmp(src, dst, sizeof(src)), "read bytes");
	CHECK(vhca_peer_clear(peer, (uintptr_t)dst + 10, 5000) == 0, "clear");
	CHECK(dst[9] == 0x5a && dst[10] == 0 && dst[5009] == 0 &&
		      dst[5010] == 0x5a,
	      "cleared exactly [10, 5010)");
	CHECK(vhca_peer_write(peer, 0, src, 0) == 0, "empty transfer");

	/* Clears spanning several syscall batches, and one running off. */
	{
		size_t big = (1u << 20) + 123;
		unsigned char *area = malloc(big + 2);
		bool zero = true;

		REQUIRE(area, "malloc");
		memset(area, 0x77, big + 2);
		CHECK(vhca_peer_clear(peer, (uintptr_t)area + 1, big) == 0,
		      "1 MiB clear");
		for (size_t i = 1; i <= big; i++)
			zero &= area[i] == 0;
		CHECK(zero && area[0] == 0x77 && area[big + 1] == 0x77,
		      "cleared exactly");
		free(area);
	}

	/* A transfer running off the end of a mapping is short: EFAULT. */
	two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(two != MAP_FAILED, "mmap");
	munmap(two + page, page);
	hole = two + page;
	CHECK(vhca_peer_write(peer, (uintptr_t)hole - 16, src, 32) == -EFAULT,
	      "write across the end of a mapping");
	CHECK(vhca_peer_read(peer, (uintptr_t)hole, dst, 8) == -EFAULT,
	      "read of unmapped memory");
	CHECK(vhca_peer_clear(peer, (uintptr_t)hole - page, page + 1) ==
		      -EFAULT,
	      "clear across the end of a mapping");
	CHECK(vhca_peer_write(peer, UINT64_MAX - 3, src, 8) == -EFAULT,
	      "wrapping address");
	munmap(two, page);
	vhca_peer_put(peer);
}

/*
 * The engine's path to registered memory: small transfers (mem fd) and
 * large ones (process_vm_*) land the same bytes and fail the same way; a
 * later PROT_NONE does not stop it, as it would not stop an HCA's DMA to
 * pinned pages, while the command path (copy_to_user) still refuses.
 */
static void test_mr_transfers(void)
{
	struct vhca_peer *peer = bind_self();
	const size_t sizes[] = { 1, 64, 4096, 8192, 8193, 200000 };
	size_t max = 200000 + 1;
	uint8_t *src = malloc(max), *dst = malloc(max);
	char *two, *hole;

	REQUIRE(src && dst, "malloc");
	for (size_t i = 0; i < max; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		size_t n = sizes[i];

		memset(dst, 0xee, max);
		CHECK(vhca_dma_write(vhca_peer_dma_space(peer), (uintptr_t)dst + 1, src, n) == 0 &&
			      !memcmp(dst + 1, src, n) && dst[0] == 0xee &&
			      dst[n + 1 < max ? n + 1 : 0] == 0xee,
		      "mr write of %zu bytes lands exactly", n);
		memset(dst, 0, max);
		CHECK(vhca_dma_read(vhca_peer_dma_space(peer), (uintptr_t)src, dst, n) == 0 &&
			      !memcmp(dst, src, n),
		      "mr read of %zu bytes", n);
	}

	two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(two != MAP_FAILED, "mmap");
	munmap(two + page, page);
	hole = two + page;
	CHECK(vhca_dma_write(vhca_peer_dma_space(peer), (uintptr_t)hole - 16, src, 32) ==
		      -EFAULT,
	      "small mr write across the end of a mapping");
	CHECK(vhca_dma_read(vhca_peer_dma_space(peer), (uintptr_t)hole, dst, 8) == -EFAULT,
	      "small mr read of unmapped memory");
	CHECK(vhca_dma_write(vhca_peer_dma_space(peer), (uintptr_t)hole - 16, src, 20000) ==
		      -EFAULT,
	      "large mr write across the end of a mapping");
	CHECK(vhca_dma_write(vhca_peer_dma_space(peer), UINT64_MAX - 3, src, 8) == -EFAULT,
	      "wrapping mr address");

	mprotect(two, page, PROT_NONE);
	CHECK(vhca_peer_write(peer, (uintptr_t)two, src, 8) == -EFAULT,
	      "command path refuses PROT_NONE");
	CHECK(vhca_dma_write(vhca_peer_dma_space(peer), (uintptr_t)two, src, 8) == 0,
	      "registered-memory path writes regardless");
	mprotect(two, page, PROT_READ);
	CHECK(!memcmp(two, src, 8), "bytes written under PROT_NONE");
	munmap(two, page);
	free(src);
	free(dst);
	vhca_peer_put(peer);
}

/*
 * The same answers through PROCMAP_QUERY on the bound maps fd (@flags
 * VHCA_PEER_MAPS) and through the maps text (0).
 */
static void test_check_range(unsigned int flags)
{
	struct vhca_peer *peer = bind_self_with(flags);
	const unsigned int rw = VHCA_PEER_READ | VHCA_PEER_WRITE;
	uintptr_t a, vvar = vvar_start();
	char *area;
	int ret;

	printf("# range checks %s\n", flags ? "by PROCMAP_QUERY" : "by maps text");

	/* [rw][rw][ro][none][hole][rw] */
	area = mmap(NULL, 6 * page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(area != MAP_FAILED, "mmap");
	a = (uintptr_t)area;
	ret = mprotect(area + 2 * page, page, PROT_READ) |
	      mprotect(area + 3 * page, page, PROT_NONE);
	REQUIRE(ret == 0, "mprotect");
	munmap(area + 4 * page, page);

	CHECK(vhca_peer_check_range(peer, a, 2 * page, rw) == 0, "rw pages");
	CHECK(vhca_peer_check_range(peer, a + 1, 1, rw) == 0, "one byte");
	CHECK(vhca_peer_check_range(peer, a, 3 * page, VHCA_PEER_READ) == 0,
	      "read across rw and ro mappings");
	CHECK(vhca_peer_check_range(peer, a, 3 * page, rw) == -EFAULT,
	      "write into a read-only mapping");
	CHECK(vhca_peer_check_range(peer, a + 2 * page, 2 * page,
				   VHCA_PEER_READ) == -EFAULT,
	      "read of PROT_NONE");
	CHECK(vhca_peer_check_range(peer, a + 4 * page, 1, VHCA_PEER_READ) ==
		      -EFAULT,
	      "unmapped");
	CHECK(vhca_peer_check_range(peer, a + 5 * page - 1, 2,
				   VHCA_PEER_READ) == -EFAULT,
	      "range starting in a hole");
	CHECK(vhca_peer_check_range(peer, a + 5 * page, page, rw) == 0,
	      "mapping after the hole");
	CHECK(vhca_peer_check_range(peer, a, 0, rw) == -EINVAL, "length 0");
	CHECK(vhca_peer_check_range(peer, UINT64_MAX - page, 2 * page,
				   VHCA_PEER_READ) == -EFAULT,
	      "wrapping range");
	CHECK(vhca_peer_check_range(peer, 0xffffffffff600000ULL, 16,
				   VHCA_PEER_READ) == -EFAULT,
	      "[vsyscall]");
	if (vvar)
		CHECK(vhca_peer_check_range(peer, vvar, 16, VHCA_PEER_READ) ==
			      -EFAULT,
		      "[vvar]");
	munmap(area, 4 * page);
	munmap(area + 5 * page, page);
	vhca_peer_put(peer);
}

static void test_take_pipes(void)
{
	struct vhca_peer *peer = bind_self();
	struct vhca_pipe_id wid, rid, other_id;
	int fds[2], other[2], devnull, taken;
	char buf[65536];
	ssize_t n;
	int ret;

	ret = pipe2(fds, O_CLOEXEC) | pipe2(other, O_CLOEXEC);
	REQUIRE(ret == 0, "pipe2");
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	REQUIRE(devnull >= 0, "open /dev/null");

	taken = vhca_peer_take_pipe_writer(peer, fds[1], &wid);
	CHECK(taken >= 0, "take write end: %d", taken);
	CHECK(vhca_peer_pipe_reader_id(peer, fds[0], &rid) == 0 &&
		      vhca_pipe_id_equal(&rid, &wid),
	      "read end names the same pipe");
	CHECK(vhca_peer_pipe_reader_id(peer, other[0], &other_id) == 0 &&
		      !vhca_pipe_id_equal(&other_id, &wid),
	      "another pipe differs");
	CHECK(fcntl(taken, F_GETFL) & O_NONBLOCK, "taken end is nonblocking");
	CHECK(!(fcntl(fds[1], F_GETFL) & O_NONBLOCK),
	      "guest's own end left blocking");
	CHECK(fcntl(taken, F_GETFD) & FD_CLOEXEC, "taken end is cloexec");
	/* Fill the pipe: we must get EAGAIN, never block. */
	memset(buf, 0, sizeof(buf));
	do {
		n = write(taken, buf, sizeof(buf));
	} while (n > 0);
	CHECK(n < 0 && errno == EAGAIN, "full pipe: EAGAIN");
	close(taken);

	CHECK(vhca_peer_take_pipe_writer(peer, fds[0], &wid) == -EINVAL,
	      "read end offered as write end");
	CHECK(vhca_peer_pipe_reader_id(peer, fds[1], &rid) == -EINVAL,
	      "write end offered as read end");
	CHECK(vhca_peer_take_pipe_writer(peer, devnull, &wid) == -EINVAL,
	      "not a pipe");
	CHECK(vhca_peer_take_pipe_writer(peer, 100000, &wid) == -EINVAL,
	      "fd not open");
	CHECK(vhca_peer_take_pipe_writer(peer, -1, &wid) == -EINVAL, "fd -1");

	close(other[0]);
	CHECK(vhca_peer_take_pipe_writer(peer, other[1], &wid) == -EINVAL,
	      "pipe without a reader");
	close(other[1]);
	close(fds[0]);
	close(fds[1]);
	close(devnull);
	vhca_peer_put(peer);
}

/* A peer in a child: works while it lives, -ESRCH for good after. */
static void test_dead_peer(void)
{
	static char child_buf[64] = "child";
	struct vhca_peer *peer = NULL;
	struct vhca_pipe_id id;
	int fds[2], status;
	char got[8] = "";
	pid_t child;
	int ret;

	ret = pipe2(fds, O_CLOEXEC);
	REQUIRE(ret == 0, "pipe2");
	child = fork();
	REQUIRE(child >= 0, "fork");
	if (!child) {
		pause();
		_exit(0);
	}
	ret = vhca_peer_bind(child, VHCA_PEER_MAPS, &peer);
	REQUIRE(ret == 0, "bind to child: %d", ret);
	CHECK(vhca_peer_tgid(peer) == child, "child tgid");
	CHECK(vhca_peer_check_caller(peer, gettid()) == -EACCES,
	      "parent is foreign to the child's peer");
	CHECK(vhca_peer_read(peer, (uintptr_t)child_buf, got, 6) == 0 &&
		      !strcmp(got, "child"),
	      "read child memory");
	CHECK(vhca_peer_pipe_reader_id(peer, fds[0], &id) == 0,
	      "child's inherited fd");

	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	CHECK(!vhca_peer_alive(peer), "dead after SIGKILL");
	CHECK(vhca_peer_read(peer, (uintptr_t)child_buf, got, 6) == -ESRCH,
	      "read from a dead peer");
	CHECK(vhca_dma_read(vhca_peer_dma_space(peer), (uintptr_t)child_buf, got, 6) == -ESRCH,
	      "small mr read from a dead peer");
	CHECK(vhca_dma_write(vhca_peer_dma_space(peer), (uintptr_t)child_buf, got, 6) == -ESRCH,
	      "small mr write to a dead peer");
	CHECK(vhca_peer_check_range(peer, (uintptr_t)child_buf, 6,
				   VHCA_PEER_READ) == -ESRCH,
	      "maps of a dead peer");
	CHECK(vhca_peer_check_caller(peer, child) == -ESRCH,
	      "caller check on a dead peer");
	CHECK(vhca_peer_take_pipe_writer(peer, fds[1], &id) < 0,
	      "fd from a dead peer");
	vhca_peer_put(peer);
	CHECK(vhca_peer_bind(child, VHCA_PEER_MAPS, &peer) == -ESRCH, "bind to reaped pid");
	close(fds[0]);
	close(fds[1]);
}

/*
 * After exec the bound address space is gone though the process lives:
 * range checks through either path answer ESRCH, never the new image's
 * mappings (at the same addresses as the old stack, say).
 */
static void test_exec_peer(unsigned int flags)
{
	struct vhca_peer *peer = NULL;
	int go[2], status, ret;
	char c = 0, *stack_var = &c;
	pid_t child;

	REQUIRE(pipe2(go, O_CLOEXEC) == 0, "pipe2");
	child = fork();
	REQUIRE(child >= 0, "fork");
	if (!child) {
		if (read(go[0], &c, 1) == 1)
			execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	ret = vhca_peer_bind(child, flags, &peer);
	REQUIRE(ret == 0, "bind to child: %d", ret);
	CHECK(vhca_peer_check_range(peer, (uintptr_t)stack_var, 1,
				   VHCA_PEER_READ) == 0,
	      "child's stack before exec");
	REQUIRE(write(go[1], "x", 1) == 1, "start the child's exec");
	/* The exec is done when the child's exe is sleep. */
	for (int i = 0; i < 2000; i++) {
		char path[64], exe[256] = "";

		snprintf(path, sizeof(path), "/proc/%d/exe", (int)child);
		if (readlink(path, exe, sizeof(exe) - 1) > 0 &&
		    strstr(exe, "sleep"))
			break;
		usleep(1000);
	}
	CHECK(vhca_peer_check_range(peer, (uintptr_t)stack_var, 1,
				   VHCA_PEER_READ) == -ESRCH,
	      "range check after exec (%s)", flags ? "PROCMAP_QUERY" : "maps text");
	vhca_peer_put(peer);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	close(go[0]);
	close(go[1]);
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	signal(SIGPIPE, SIG_IGN);
	test_identity();
	test_transfers();
	test_mr_transfers();
	test_check_range(VHCA_PEER_MAPS);
	test_check_range(0);
	test_take_pipes();
	test_dead_peer();
	test_exec_peer(VHCA_PEER_MAPS);
	test_exec_peer(0);
	return test_report();
}
