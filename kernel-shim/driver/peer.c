// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Guest processes: binding (pidfd and the address space), who may call,
 * command requests and responses (process_vm_*), /proc/<pid>/maps checks
 * and pidfd_getfd, each followed by a liveness check (see peer.h).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "device/dma.h"
#include "peer.h"

struct vhca_peer {
	atomic_uint refcount;
	pid_t tgid;
	int pidfd;
	/*
	 * The address space the process had at bind, through a
	 * /proc/<tgid>/mem fd (device/dma.c): the engine's DMA, and the
	 * proof that the process has not exec'd since.
	 */
	struct vhca_dma_space *space;
	/*
	 * /proc/<tgid>/maps opened at bind: it names that address space as
	 * the mem fd does, for PROCMAP_QUERY (vhca_peer_check_range); -1
	 * if it could not be opened (the range check then reads the text).
	 */
	int maps_fd;
	/* process_vm_* said ESRCH: its memory is released (it is exiting). */
	atomic_bool exiting;
};

int vhca_peer_tgid_of(pid_t tid, pid_t *tgid)
{
	char path[64], line[256];
	int ret = -ESRCH;
	FILE *f;

	if (tid <= 0)
		return -EACCES;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	while (fgets(line, sizeof(line), f)) {
		int val;

		if (sscanf(line, "Tgid: %d", &val) == 1 && val > 0) {
			*tgid = val;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static bool pidfd_alive(int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

	/* A pidfd polls readable once its process has exited. */
	return poll(&pfd, 1, 0) == 0;
}

bool vhca_peer_alive(const struct vhca_peer *peer)
{
	return pidfd_alive(peer->pidfd) && !vhca_dma_gone(peer->space);
}

bool vhca_peer_gone(const struct vhca_peer *peer)
{
	return atomic_load(&peer->exiting) || !vhca_peer_alive(peer);
}

pid_t vhca_peer_tgid(const struct vhca_peer *peer)
{
	return peer->tgid;
}

struct vhca_dma_space *vhca_peer_dma_space(const struct vhca_peer *peer)
{
	return peer->space;
}

static bool is_thread_of(pid_t tgid, pid_t tid)
{
	char path[64];

	if (tid == tgid)
		return true;
	/* /proc/<tgid>/task/<tid> resolves only for threads of <tgid>. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)tgid, (int)tid);
	return access(path, F_OK) == 0;
}

int vhca_peer_check_caller(const struct vhca_peer *peer, pid_t tid)
{
	bool ours = tid > 0 && is_thread_of(peer->tgid, tid);

	/* Checked last: proves peer->tgid still named our process above. */
	if (!vhca_peer_alive(peer))
		return -ESRCH;
	return ours ? 0 : -EACCES;
}

bool vhca_peer_capable(pid_t tid, unsigned int cap)
{
	struct stat mine, theirs;
	char path[64], line[256];
	bool has = false;
	FILE *f;

	/* capable() asks about the initial user namespace: vhcad's own. */
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)tid);
	if (tid <= 0 || cap > 63 || stat(path, &theirs) ||
	    stat("/proc/self/ns/user", &mine) || theirs.st_ino != mine.st_ino ||
	    theirs.st_dev != mine.st_dev)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long eff;

		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			has = eff & (1ULL << cap);
			break;
		}
	}
	fclose(f);
	return has;
}

static int open_space(struct vhca_peer *peer)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)peer->tgid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOMEM || errno == EMFILE || errno == ENFILE ?
			       -errno :
			       -ESRCH;	/* gone, or not ours to touch */
	peer->space = vhca_dma_process_space(fd);
	return peer->space ? 0 : -ENOMEM;
}

/*
 * The maps file of the address space just bound (checked with the rest
 * by vhca_peer_check_caller() in vhca_peer_bind()).  Optional: without
 * it every range check reads the maps text, as on kernels before 6.11.
 */
static void open_maps(struct vhca_peer *peer)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)peer->tgid);
	peer->maps_fd = open(path, O_RDONLY | O_CLOEXEC);
}

int vhca_peer_bind(pid_t tid, unsigned int flags, struct vhca_peer **out)
{
	struct vhca_peer *peer;
	pid_t tgid;
	int ret;

	ret = vhca_peer_tgid_of(tid, &tgid);
	if (ret)
		return ret;

	peer = calloc(1, sizeof(*peer));
	if (!peer)
		return -ENOMEM;
	peer->tgid = tgid;
	peer->maps_fd = -1;
	atomic_init(&peer->refcount, 1);
	peer->pidfd = pidfd_open(tgid, 0);
	if (peer->pidfd < 0) {
		ret = errno == ENOMEM || errno == EMFILE || errno == ENFILE ?
			      -errno : -ESRCH;
		free(peer);
		return ret;
	}
	ret = open_space(peer);
	if (ret) {
		vhca_peer_put(peer);
		return ret;
	}
	if (flags & VHCA_PEER_MAPS)
		open_maps(peer);
	/* The tgid read from /proc may be stale by the time we opened it. */
	ret = vhca_peer_check_caller(peer, tid);
	if (ret) {
		vhca_peer_put(peer);
		return ret == -EACCES ? -ESRCH : ret;
	}
	*out = peer;
	return 0;
}

void vhca_peer_get(struct vhca_peer *peer)
{
	atomic_fetch_add_explicit(&peer->refcount, 1, memory_order_relaxed);
}

void vhca_peer_put(struct vhca_peer *peer)
{
	if (!peer ||
	    atomic_fetch_sub_explicit(&peer->refcount, 1,
				      memory_order_acq_rel) != 1)
		return;
	vhca_dma_space_put(peer->space);
	if (peer->maps_fd >= 0)
		close(peer->maps_fd);
	close(peer->pidfd);
	free(peer);
}

static bool range_is_addressable(uint64_t addr, size_t len)
{
	return addr <= UINTPTR_MAX && len <= SSIZE_MAX &&
	       addr + len >= addr;
}

static int transfer(const struct vhca_peer *peer, uint64_t addr,
		    const struct iovec *local, unsigned long nr_local,
		    size_t len, bool to_peer)
{
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr,
				.iov_len = len };
	ssize_t done;
	int err;

	if (!len)
		return 0;
	if (!range_is_addressable(addr, len))
		return -EFAULT;
	/*
	 * Commands only (their requests and responses): the calling thread is
	 * blocked in its write until we answer, and an execve() by another
	 * thread waits for it to leave (de_thread), so the pid names the
	 * address space the command came from throughout.  process_vm_*
	 * honours the protections of the moment, as copy_to_user() does.
	 * One liveness check, after the transfer, suffices against pid
	 * reuse: if our process died before or during it, the pidfd is
	 * readable by then and the result is discarded.
	 */
	if (to_peer)
		done = process_vm_writev(peer->tgid, local, nr_local, &remote,
					 1, 0);
	else
		done = process_vm_readv(peer->tgid, local, nr_local, &remote, 1,
					0);
	err = done < 0 ? errno : 0;
	if (err == ESRCH)
		atomic_store(&((struct vhca_peer *)peer)->exiting, true);
	if (!vhca_peer_alive(peer))
		return -ESRCH;
	if (done < 0)
		return err == ENOMEM ? -ENOMEM :
		       err == ESRCH  ? -ESRCH :
				       -EFAULT;
	/* Short: it stopped at the first unmapped or protected page. */
	return (size_t)done == len ? 0 : -EFAULT;
}

int vhca_peer_read(const struct vhca_peer *peer, uint64_t addr, void *buf,
		  size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };

	return transfer(peer, addr, &local, 1, len, false);
}

int vhca_peer_write(const struct vhca_peer *peer, uint64_t addr,
		   const void *buf, size_t len)
{
	struct iovec local = { .iov_base = (void *)buf, .iov_len = len };

	return transfer(peer, addr, &local, 1, len, true);
}

#define ZERO_CHUNK 4096
#define ZERO_IOVS 64

int vhca_peer_clear(const struct vhca_peer *peer, uint64_t addr,
		   size_t len)
{
	static const char zeros[ZERO_CHUNK];
	struct iovec local[ZERO_IOVS];

	/* The same zero page, many times over: 256 KiB per syscall. */
	while (len) {
		unsigned long n = 0;
		size_t batch = 0;
		int ret;

		while (n < ZERO_IOVS && batch < len) {
			size_t chunk = len - batch < ZERO_CHUNK ? len - batch :
								  ZERO_CHUNK;

			local[n++] = (struct iovec){ .iov_base = (void *)zeros,
						     .iov_len = chunk };
			batch += chunk;
		}
		ret = transfer(peer, addr, local, n, batch, true);
		if (ret)
			return ret;
		addr += batch;
		len -= batch;
	}
	return 0;
}

/* One line of /proc/<pid>/maps. */
struct mapping {
	uint64_t start, end;
	bool readable, writable;
	bool special;	/* VM_IO/VM_PFNMAP-like: GUP refuses it */
};

/* Mappings by name that GUP refuses (VM_IO/VM_PFNMAP-like). */
static bool special_name(const char *name)
{
	static const char *const special[] = { "[vvar]", "[vvar_vclock]",
					       "[vsyscall]" };

	for (size_t i = 0; i < sizeof(special) / sizeof(*special); i++)
		if (!strncmp(name, special[i], strlen(special[i])))
			return true;
	return false;
}

static bool parse_mapping(const char *line, struct mapping *m)
{
	char perms[8];
	int path_at = 0;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %n",
		   &m->start, &m->end, perms, &path_at) < 3 ||
	    m->end <= m->start || strlen(perms) < 4)
		return false;
	m->readable = perms[0] == 'r';
	m->writable = perms[1] == 'w';
	m->special = path_at > 0 && special_name(line + path_at);
	return true;
}

/* check_vma_flags(): FOLL_WRITE needs VM_WRITE, a read pin VM_READ. */
static bool mapping_allows(const struct mapping *m, unsigned int rights)
{
	if (m->special)
		return false;
	if ((rights & VHCA_PEER_READ) && !m->readable)
		return false;
	if ((rights & VHCA_PEER_WRITE) && !m->writable)
		return false;
	return true;
}

/* Walks the (address-ordered) maps: covered, contiguous, allowed? */
static int scan_maps(FILE *maps, uint64_t addr, uint64_t end,
		     unsigned int rights)
{
	uint64_t cursor = addr;
	char *line = NULL;
	size_t cap = 0;
	int ret = -EFAULT;

	while (getline(&line, &cap, maps) > 0) {
		struct mapping m;

		if (!parse_mapping(line, &m) || m.end <= cursor)
			continue;
		if (m.start > cursor || !mapping_allows(&m, rights))
			break;	/* a hole, or a mapping we may not use */
		cursor = m.end;
		if (cursor >= end) {
			ret = 0;
			break;
		}
	}
	free(line);
	return ret;
}

/*
 * PROCMAP_QUERY (Linux 6.11, <linux/fs.h>; Debian 12's headers predate
 * it): one VMA per ioctl on a maps fd, the one covering an address or
 * the next one after it, with its protections and name.
 */
#define VHCA_PROCMAP_QUERY _IOWR('f', 17, struct vhca_procmap_query)
#define VHCA_PROCMAP_COVERING_OR_NEXT_VMA 0x10
#define VHCA_PROCMAP_VMA_READABLE 0x01
#define VHCA_PROCMAP_VMA_WRITABLE 0x02

struct vhca_procmap_query {
	uint64_t size;
	uint64_t query_flags;
	uint64_t query_addr;
	uint64_t vma_start;
	uint64_t vma_end;
	uint64_t vma_flags;
	uint64_t vma_page_size;
	uint64_t vma_offset;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t vma_name_size;
	uint32_t build_id_size;
	uint64_t vma_name_addr;
	uint64_t build_id_addr;
};
/* The ioctl's number carries the size: the kernel's struct is 104 bytes. */
static_assert(sizeof(struct vhca_procmap_query) == 104, "PROCMAP_QUERY ABI");

/*
 * scan_maps() through PROCMAP_QUERY on @fd: the same walk over the same
 * VMAs (covered, contiguous, allowed; the special ones by name).  1 if
 * the kernel cannot answer (no such ioctl, a name too long): the caller
 * reads the text instead.
 */
static int query_maps(int fd, uint64_t addr, uint64_t end,
		      unsigned int rights)
{
	uint64_t cursor = addr;
	char name[PATH_MAX];

	while (cursor < end) {
		struct vhca_procmap_query q = {
			.size = sizeof(q),
			.query_flags = VHCA_PROCMAP_COVERING_OR_NEXT_VMA,
			.query_addr = cursor,
			.vma_name_size = sizeof(name),
			.vma_name_addr = (uintptr_t)name,
		};
		struct mapping m;

		if (ioctl(fd, VHCA_PROCMAP_QUERY, &q)) {
			if (errno == ENOENT)
				return -EFAULT;	/* nothing at or after it */
			if (errno == ESRCH)
				return -ESRCH;	/* the address space is gone */
			return 1;
		}
		m = (struct mapping){
			.start = q.vma_start,
			.end = q.vma_end,
			.readable = q.vma_flags & VHCA_PROCMAP_VMA_READABLE,
			.writable = q.vma_flags & VHCA_PROCMAP_VMA_WRITABLE,
			.special = q.vma_name_size && special_name(name),
		};
		if (m.end <= cursor)
			return 1;	/* not what we asked for */
		if (m.start > cursor || !mapping_allows(&m, rights))
			return -EFAULT;	/* a hole, or a mapping we may not use */
		cursor = m.end;
	}
	return 0;
}

int vhca_peer_check_range(const struct vhca_peer *peer, uint64_t addr,
			 uint64_t len, unsigned int rights)
{
	char path[64];
	FILE *maps;
	int ret;

	if (!len)
		return -EINVAL;
	if (addr + len < addr)
		return -EFAULT;
	/*
	 * The bound address space's own maps fd: no pid to go stale.  The
	 * liveness check still decides between EFAULT and ESRCH.
	 */
	ret = peer->maps_fd >= 0 ? query_maps(peer->maps_fd, addr, addr + len,
					      rights) :
				   1;
	if (ret <= 0) {
		if (!vhca_peer_alive(peer))
			return -ESRCH;
		return ret;
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)peer->tgid);
	maps = fopen(path, "re");
	if (!maps)
		return vhca_peer_alive(peer) ? -EFAULT : -ESRCH;
	ret = scan_maps(maps, addr, addr + len, rights);
	fclose(maps);
	/* Proves the maps we read were our peer's and not a successor's. */
	if (!vhca_peer_alive(peer))
		return -ESRCH;
	return ret;
}

/* pidfd_getfd with the errno a guest's bad fd number deserves. */
static int take_fd(const struct vhca_peer *peer, int guest_fd)
{
	int fd;

	if (guest_fd < 0)
		return -EINVAL;
	fd = pidfd_getfd(peer->pidfd, guest_fd, 0);
	if (fd >= 0) {
		/* pidfd_getfd sets FD_CLOEXEC: nothing leaks into children. */
		return fd;
	}
	switch (errno) {
	case ESRCH:
		return -ESRCH;
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return -errno;	/* our shortage, not the guest's fault */
	default:
		return -EINVAL;	/* EBADF: no such fd in the guest */
	}
}

static int pipe_end_id(int fd, int accmode, struct vhca_pipe_id *id)
{
	struct stat st;
	int flags;

	if (fstat(fd, &st) || !S_ISFIFO(st.st_mode))
		return -EINVAL;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_ACCMODE) != accmode)
		return -EINVAL;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	return 0;
}

/* A pipe's write end polls POLLERR once no reader is left. */
static bool pipe_has_reader(int write_fd)
{
	struct pollfd pfd = { .fd = write_fd };

	return poll(&pfd, 1, 0) == 0;
}

/*
 * A fresh open file description of the same pipe, with our own
 * O_NONBLOCK: opening /proc/self/fd/N of a pipe reopens it through
 * fifo_open().  (For an anonymous pipe that open never fails for want of
 * a reader; the caller checks that separately.)
 */
static int reopen_writer_nonblocking(int fd)
{
	char path[64];
	int flags, nfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (nfd >= 0)
		return nfd;
	if (errno == ENXIO)	/* a named FIFO without reader */
		return -EINVAL;
	if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
		return -errno;
	/*
	 * Reopen refused (e.g. no DAC override): fall back to the shared
	 * description.  The guest could clear O_NONBLOCK again on its copy,
	 * but only while it keeps the write end the provider closes.
	 */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK))
		return -EINVAL;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return nfd >= 0 ? nfd : -errno;
}

int vhca_peer_take_pipe_writer(const struct vhca_peer *peer, int guest_fd,
			      struct vhca_pipe_id *id)
{
	int fd, ret;

	fd = take_fd(peer, guest_fd);
	if (fd < 0)
		return fd;
	ret = pipe_end_id(fd, O_WRONLY, id);
	if (!ret && !pipe_has_reader(fd))
		ret = -EINVAL;	/* its read end is closed already */
	if (!ret)
		ret = reopen_writer_nonblocking(fd);
	close(fd);
	if (ret >= 0 && !vhca_peer_alive(peer)) {
		close(ret);
		return -ESRCH;
	}
	return ret;
}

int vhca_peer_take_pipe_reader(const struct vhca_peer *peer, int guest_fd,
			      struct vhca_pipe_id *id)
{
	char path[64];
	int fd, nfd, ret;

	fd = take_fd(peer, guest_fd);
	if (fd < 0)
		return fd;
	ret = pipe_end_id(fd, O_RDONLY, id);
	if (ret) {
		close(fd);
		return ret;
	}
	/* Reopening a pipe through /proc gives a description of our own. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ret = nfd >= 0 ? 0 : (errno == EMFILE || errno == ENFILE ||
			      errno == ENOMEM) ? -errno : -EINVAL;
	close(fd);
	if (!ret && !vhca_peer_alive(peer)) {
		close(nfd);
		ret = -ESRCH;
	}
	return ret ? ret : nfd;
}

int vhca_peer_pipe_reader_id(const struct vhca_peer *peer, int guest_fd,
			    struct vhca_pipe_id *id)
{
	int fd, ret;

	fd = take_fd(peer, guest_fd);
	if (fd < 0)
		return fd;
	ret = pipe_end_id(fd, O_RDONLY, id);
	close(fd);
	if (!ret && !vhca_peer_alive(peer))
		return -ESRCH;
	return ret;
}

int vhca_peer_pidfd(const struct vhca_peer *peer)
{
	return peer->pidfd;
}

/* A taken fd passed @check, and the peer was alive throughout. */
static int keep_if(const struct vhca_peer *peer, int fd, int check)
{
	if (!check && !vhca_peer_alive(peer))
		check = -ESRCH;
	if (check) {
		close(fd);
		return check;
	}
	return fd;
}

int vhca_peer_take_memfd(const struct vhca_peer *peer, int guest_fd,
			uint64_t min_size)
{
	const int needed = F_SEAL_SHRINK | F_SEAL_GROW;
	struct stat st;
	int fd, seals;

	fd = take_fd(peer, guest_fd);
	if (fd < 0)
		return fd;
	/* Only memfds (and hugetlbfs/shmem files made sealable) answer. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & needed) != needed || fstat(fd, &st) ||
	    !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size < min_size)
		return keep_if(peer, fd, -EINVAL);
	return keep_if(peer, fd, 0);
}

int vhca_peer_take_eventfd(const struct vhca_peer *peer, int guest_fd)
{
	char path[64], link[64];
	ssize_t n;
	int fd;

	fd = take_fd(peer, guest_fd);
	if (fd < 0)
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return keep_if(peer, fd, -EINVAL);
	link[n] = 0;
	return keep_if(peer, fd,
		       strcmp(link, "anon_inode:[eventfd]") ? -EINVAL : 0);
}

int vhca_peer_take_any_fd(const struct vhca_peer *peer, int guest_fd)
{
	int fd = take_fd(peer, guest_fd);

	return fd < 0 ? fd : keep_if(peer, fd, 0);
}
