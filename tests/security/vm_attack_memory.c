// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vm_attacks memory: memory a VM may not name (vhcad's fds, pages past
 * its RAM, unaligned, list pages outside RAM, inconsistent counts) and
 * the budgets of what it may (pages held, vhcad's mappings, contexts).
 */
#include "vm_attacks.h"

/*
 * vhcad's fds whose link contains @what (at most @max), and how many it
 * has besides sockets (a management connection closes when vhcad sees
 * its end) and FUSE's (worker threads clone /dev/fuse as they start).
 */
static int vhcad_fds(pid_t pid, const char *what, int *found, int max,
		     int *nfound)
{
	char dir[64], path[400], link[256];
	struct dirent *e;
	DIR *d;
	int count = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		die("cannot list %s: %s", dir, strerror(errno));
	*nfound = 0;
	while ((e = readdir(d))) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		count += strcmp(link, "/dev/fuse") && strncmp(link, "socket:", 7);
		if (what && strstr(link, what) && *nfound < max)
			found[(*nfound)++] = atoi(e->d_name);
	}
	closedir(d);
	return count;
}

static long proc_field(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	long v = -1, lines = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		lines++;
		if (key && !strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	}
	fclose(f);
	return key ? v : lines;
}

/* A create's answer: the handle to *@handle, or (NULL) destroyed at once. */
static int created(struct fake_vm *vm, struct fake_ctx *c, int ret,
		   uint32_t h, uint16_t destroy_op, uint32_t *handle)
{
	if (!ret && handle)
		*handle = h;
	else if (!ret)
		fake_destroy(vm, c, destroy_op, h);
	return ret;
}

/* REG_MR with memory @m and @nlist list addresses. */
static int reg_raw(struct fake_vm *vm, struct fake_ctx *c, uint32_t pd,
		   const struct vhca_devcmd_mem *m, uint64_t addr, uint64_t len,
		   const uint64_t *lists, uint32_t nlist, uint32_t *handle)
{
	struct vhca_devcmd_reg_mr in = { .pd_handle = pd, .access = ALL_ACCESS,
					 .addr = addr, .length = len,
					 .iova = addr, .mem = *m };
	struct vhca_devcmd_reg_mr_out out;
	int ret = fake_vm_call(vm, VHCA_DEVCMD_REG_MR, c->id, &in, sizeof(in),
			       lists, nlist, &out, sizeof(out));

	return created(vm, c, ret, out.handle, VHCA_DEVCMD_DEREG_MR, handle);
}

/* CREATE_CQ of 64 entries (ring at 0, doorbell at 4096) in memory @m. */
static int cq_raw(struct fake_vm *vm, struct fake_ctx *c,
		  const struct vhca_devcmd_mem *m, const uint64_t *lists,
		  uint32_t nlist, uint32_t *handle)
{
	struct vhca_devcmd_create_cq in = {
		.cqe = 63, .channel = VHCA_DEVCMD_NO_CHANNEL, .cqe_count = 64,
		.ring_offset = 0, .db_offset = FAKE_VM_PAGE, .mem = *m,
	};
	struct vhca_devcmd_cq_out out;
	int ret = fake_vm_call(vm, VHCA_DEVCMD_CREATE_CQ, c->id, &in, sizeof(in),
			       lists, nlist, &out, sizeof(out));

	return created(vm, c, ret, out.handle, VHCA_DEVCMD_DESTROY_CQ, handle);
}

static struct vhca_devcmd_mem pages_mem(uint64_t size, uint32_t npages,
					uint32_t nlist)
{
	return (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_PAGES,
					 .fd = -1, .size = size,
					 .npages = npages, .nlist = nlist };
}

/* A list page of RAM whose 512 entries are @a and @b, alternating. */
static uint64_t list_page(struct fake_vm *vm, uint64_t a, uint64_t b)
{
	uint64_t gpa = fake_vm_alloc(vm, FAKE_VM_PAGE);
	uint64_t *e = fake_vm_va(vm, gpa);

	for (uint32_t i = 0; i < VHCA_DEVCMD_LIST_ENTRIES; i++)
		e[i] = i % 2 ? b : a;
	return gpa;
}

/* REREG_MR of MR @h with @flags, memory @m and @nlist list addresses. */
static int rereg_raw(struct fake_vm *vm, struct fake_ctx *c, uint32_t h,
		     uint32_t flags, uint32_t pd,
		     const struct vhca_devcmd_mem *m, uint64_t addr,
		     uint64_t len, const uint64_t *lists, uint32_t nlist)
{
	struct vhca_devcmd_rereg_mr in = {
		.handle = h, .flags = flags, .pd_handle = pd,
		.access = ALL_ACCESS, .addr = addr, .length = len,
		.iova = addr, .mem = *m,
	};
	struct vhca_devcmd_rereg_mr_out out;

	return fake_vm_call(vm, VHCA_DEVCMD_REREG_MR, c->id, &in, sizeof(in),
			    lists, nlist, &out, sizeof(out));
}

/*
 * REREG_MR names new pages by the same rules as REG_MR (in RAM, aligned,
 * list pages in RAM, counts that cover the range), and a refused REREG
 * leaves the MR as it was: a good one and DEREG_MR work after them.
 */
static void rereg(struct fake_vm *vm, struct fake_ctx *c, uint32_t pd,
		  uint64_t P)
{
	const uint64_t bads[] = { RAM_SIZE, 1ull << 40,
				  UINT64_MAX & ~(uint64_t)(FAKE_VM_PAGE - 1),
				  1ull << 63, 2048, RAM_SIZE - 1 };
	const struct vhca_devcmd_mem m1 = pages_mem(FAKE_VM_PAGE, 1, 1);
	const struct vhca_devcmd_mem m2 = pages_mem(2 * FAKE_VM_PAGE, 2, 1);
	const uint32_t TRANS = VHCA_DEVCMD_REREG_TRANS;
	uint64_t L = fake_vm_alloc(vm, FAKE_VM_PAGE);
	uint64_t *e = fake_vm_va(vm, L);
	uint64_t lists[1] = { L };
	struct vhca_devcmd_mem m;
	char what[160];
	uint32_t h;

	e[0] = P;
	e[1] = P + FAKE_VM_PAGE;
	must(reg_raw(vm, c, pd, &m1, 0, FAKE_VM_PAGE, lists, 1, &h),
	     "an MR to reregister");
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		e[0] = bads[i];
		snprintf(what, sizeof(what), "REREG_MR onto page %#" PRIx64,
			 bads[i]);
		expect(what, rereg_raw(vm, c, h, TRANS, 0, &m1, 0, FAKE_VM_PAGE,
				       lists, 1),
		       -EINVAL);
	}
	e[0] = P;
	{
		const uint64_t where[] = {
			RAM_SIZE, UINT64_MAX & ~(uint64_t)(FAKE_VM_PAGE - 1),
			L + 8, RAM_SIZE - 8,
		};

		for (size_t k = 0; k < sizeof(where) / sizeof(where[0]); k++) {
			uint64_t bad_list[1] = { where[k] };

			snprintf(what, sizeof(what),
				 "REREG_MR whose list page is at %#" PRIx64,
				 where[k]);
			expect(what, rereg_raw(vm, c, h, TRANS, 0, &m1, 0,
					       FAKE_VM_PAGE, bad_list, 1),
			       -EINVAL);
		}
	}
	expect("REREG_MR of 1 page in 2",
	       rereg_raw(vm, c, h, TRANS, 0, &m2, 0, FAKE_VM_PAGE, lists, 1),
	       -EINVAL);
	expect("REREG_MR of 2 pages in 1",
	       rereg_raw(vm, c, h, TRANS, 0, &m1, 0, 2 * FAKE_VM_PAGE, lists,
			 1),
	       -EINVAL);
	expect("REREG_MR of 2 pages, no list address after the body",
	       rereg_raw(vm, c, h, TRANS, 0, &m2, 0, 2 * FAKE_VM_PAGE, lists,
			 0),
	       -EINVAL);
	m = (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_NONE };
	expect("REREG_MR onto MEM_NONE (the in-process kind)",
	       rereg_raw(vm, c, h, TRANS, 0, &m, 0, FAKE_VM_PAGE, NULL, 0),
	       -EINVAL);
	m = (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_FD, .fd = 3,
				      .size = FAKE_VM_PAGE };
	expect("REREG_MR onto vhcad's fd 3",
	       rereg_raw(vm, c, h, TRANS, 0, &m, 0, FAKE_VM_PAGE, NULL, 0),
	       -EINVAL);
	expect("REREG_MR with pages but no new range",
	       rereg_raw(vm, c, h, VHCA_DEVCMD_REREG_ACCESS, 0, &m1, 0,
			 FAKE_VM_PAGE, lists, 1),
	       -EINVAL);
	expect("REREG_MR with flags 0",
	       rereg_raw(vm, c, h, 0, 0, &m1, 0, FAKE_VM_PAGE, lists, 1),
	       -EINVAL);
	expect("REREG_MR with an unknown flag",
	       rereg_raw(vm, c, h, TRANS | 0x8, 0, &m1, 0, FAKE_VM_PAGE, lists,
			 1),
	       -EINVAL);
	m = (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_NONE };
	expect("REREG_MR into a PD never allocated",
	       rereg_raw(vm, c, h, VHCA_DEVCMD_REREG_PD, 0x7fffffff, &m, 0, 0,
			 NULL, 0),
	       -EINVAL);
	expect("REREG_MR of an MR never registered",
	       rereg_raw(vm, c, h + 1000, TRANS, 0, &m1, 0, FAKE_VM_PAGE,
			 lists, 1),
	       -EINVAL);
	expect("and a good REREG_MR onto two pages after them",
	       rereg_raw(vm, c, h, TRANS, 0, &m2, 0, 2 * FAKE_VM_PAGE, lists,
			 1),
	       0);
	expect("DEREG_MR of it", fake_destroy(vm, c, VHCA_DEVCMD_DEREG_MR, h), 0);
}

int memory(const char *run_dir, unsigned int vf, pid_t vhcad)
{
	const uint32_t ram_pages = (uint32_t)(RAM_SIZE / FAKE_VM_PAGE);
	const uint32_t budget = 2 * ram_pages;	/* pages held: twice the RAM */
	static uint64_t lists[8192];
	struct vhca_devcmd_function f;
	struct fake_vm vm;
	struct fake_ctx c, c2;
	char what[200], line0[512], line1[512];
	int bar_fd[4], ram_fd[4], nbar, nram, fds0, fds1;
	uint32_t pd, mrs[8], cqs[64];
	uint64_t P, L;
	long rss0, rss1, maps0, maps1;
	int nmr, ncq;

	start(&vm, run_dir, vf);
	must(fake_vm_query_function(&vm, &f), "QUERY_FUNCTION");
	must(fake_ctx_open(&vm, &c, true), "a context with a data path");
	must(fake_pd_alloc(&vm, &c, &pd), "a PD");
	P = fake_vm_alloc(&vm, 4 * FAKE_VM_PAGE);	/* pages to name */
	fds0 = vhcad_fds(vhcad, "vhca-vf-bar", bar_fd, 4, &nbar);
	vhcad_fds(vhcad, "fake-vm-ram", ram_fd, 4, &nram);
	if (nbar != 1 || nram != 1)
		die("set-up: vhcad holds %d BARs and %d VM RAMs, not one each",
		    nbar, nram);
	status_line(vm.name, line0, sizeof(line0));

	/* vhcad's own fds, named as MEM_FD: never (only in-process may). */
	{
		int fds[] = { 0, 1, 2, 3, bar_fd[0], ram_fd[0], 1000 };
		struct vhca_devcmd_open_context oc = {
			.flags = VHCA_DEVCMD_CTX_DATA_PATH, .wake_fd = -1,
		};
		struct vhca_devcmd_mem m;

		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
			m = (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_FD,
						      .fd = fds[i],
						      .size = FAKE_VM_PAGE };
			oc.ctx_page = m;
			snprintf(what, sizeof(what),
				 "OPEN_CONTEXT's doorbell page as vhcad's fd %d%s",
				 fds[i],
				 fds[i] == bar_fd[0] ? " (the VF's BAR)" :
				 fds[i] == ram_fd[0] ? " (the VM's RAM)" : "");
			expect(what,
			       fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &oc,
					    sizeof(oc), NULL, 0, NULL, 0),
			       -EINVAL);
			m.size = 2 * FAKE_VM_PAGE;
			snprintf(what, sizeof(what), "CREATE_CQ in vhcad's fd %d",
				 fds[i]);
			expect(what, cq_raw(&vm, &c, &m, NULL, 0, NULL), -EINVAL);
			m.size = FAKE_VM_PAGE;
			snprintf(what, sizeof(what), "REG_MR of vhcad's fd %d",
				 fds[i]);
			expect(what, reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE,
					     NULL, 0, NULL),
			       -EINVAL);
		}
		oc.ctx_page = (struct vhca_devcmd_mem){ 0 };
		oc.wake_fd = 3;
		oc.flags = 0;
		expect("OPEN_CONTEXT naming a wake-up fd",
		       fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &oc,
				    sizeof(oc), NULL, 0, NULL, 0),
		       -EINVAL);
		m = (struct vhca_devcmd_mem){ .kind = VHCA_DEVCMD_MEM_NONE };
		expect("REG_MR of MEM_NONE (the in-process kind)",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE, NULL, 0, NULL),
		       -EINVAL);
		m.kind = 3;
		expect("REG_MR of memory kind 3",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE, NULL, 0, NULL),
		       -EINVAL);
		m.kind = 0xffffffff;
		expect("CREATE_CQ in memory kind 0xffffffff",
		       cq_raw(&vm, &c, &m, NULL, 0, NULL), -EINVAL);
		fds1 = vhcad_fds(vhcad, NULL, NULL, 0, &nbar);
		expect("vhcad's fds after the MEM_FD commands", fds1, fds0);
		vhcad_fds(vhcad, "vhca-vf-bar", bar_fd + 1, 1, &nbar);
		vhcad_fds(vhcad, "fake-vm-ram", ram_fd + 1, 1, &nram);
		expect_true("vhcad still holds the BAR's and the RAM's fds",
			    nbar == 1 && bar_fd[1] == bar_fd[0] && nram == 1 &&
				    ram_fd[1] == ram_fd[0]);
	}

	/* Page addresses: past the RAM, unaligned.  The last page is fine. */
	{
		const uint64_t bads[] = {
			RAM_SIZE, RAM_SIZE + FAKE_VM_PAGE, 1ull << 40,
			UINT64_MAX & ~(uint64_t)(FAKE_VM_PAGE - 1),
			1ull << 63, 1, 2048, FAKE_VM_PAGE - 1, RAM_SIZE - 1,
			P + 8,
		};
		struct vhca_devcmd_mem m1 = pages_mem(FAKE_VM_PAGE, 1, 1);
		struct vhca_devcmd_mem m2 = pages_mem(2 * FAKE_VM_PAGE, 2, 1);

		L = fake_vm_alloc(&vm, FAKE_VM_PAGE);
		for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
			uint64_t *e = fake_vm_va(&vm, L);

			e[0] = bads[i];
			lists[0] = L;
			snprintf(what, sizeof(what), "REG_MR of page %#" PRIx64,
				 bads[i]);
			expect(what, reg_raw(&vm, &c, pd, &m1, 0, FAKE_VM_PAGE,
					     lists, 1, NULL),
			       -EINVAL);
			e[0] = P;
			e[1] = bads[i];
			snprintf(what, sizeof(what),
				 "CREATE_CQ with its second page %#" PRIx64,
				 bads[i]);
			expect(what, cq_raw(&vm, &c, &m2, lists, 1, NULL),
			       -EINVAL);
			e[1] = P + FAKE_VM_PAGE;
		}
		((uint64_t *)fake_vm_va(&vm, L))[0] = RAM_SIZE - FAKE_VM_PAGE;
		expect("REG_MR of the RAM's last page",
		       reg_raw(&vm, &c, pd, &m1, 0, FAKE_VM_PAGE, lists, 1,
			       NULL),
		       0);
		((uint64_t *)fake_vm_va(&vm, L))[0] = P;

		/* List pages outside the RAM or unaligned. */
		for (int k = 0; k < 5; k++) {
			const uint64_t where[] = { RAM_SIZE, RAM_SIZE + FAKE_VM_PAGE,
						   UINT64_MAX & ~4095ull, L + 8,
						   RAM_SIZE - 8 };

			lists[0] = where[k];
			snprintf(what, sizeof(what),
				 "REG_MR whose list page is at %#" PRIx64, where[k]);
			expect(what, reg_raw(&vm, &c, pd, &m1, 0, FAKE_VM_PAGE,
					     lists, 1, NULL),
			       -EINVAL);
			snprintf(what, sizeof(what),
				 "CREATE_CQ whose list page is at %#" PRIx64,
				 where[k]);
			expect(what, cq_raw(&vm, &c, &m2, lists, 1, NULL),
			       -EINVAL);
			snprintf(what, sizeof(what),
				 "OPEN_CONTEXT whose list page is at %#" PRIx64,
				 where[k]);
			{
				struct vhca_devcmd_open_context oc = {
					.flags = VHCA_DEVCMD_CTX_DATA_PATH,
					.wake_fd = -1, .ctx_page = m1,
				};

				expect(what,
				       fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT,
						    0, &oc, sizeof(oc), lists, 1,
						    NULL, 0),
				       -EINVAL);
			}
		}
		lists[0] = L;
	}

	/* Counts that do not agree. */
	{
		struct vhca_devcmd_mem m;
		uint64_t L2 = list_page(&vm, P, P + FAKE_VM_PAGE);

		for (int i = 0; i < 8; i++)
			lists[i] = L2;
		static const struct {
			const char *what;
			uint64_t size;
			uint32_t npages, nlist, addresses;
		} bad_counts[] = {
			{ "2 pages, nlist 2 (1 needed), 2 addresses",
			  2 * FAKE_VM_PAGE, 2, 2, 2 },
			{ "nlist 1, 2 addresses after the body", 2 * FAKE_VM_PAGE,
			  2, 1, 2 },
			{ "nlist 1, no address after the body", 2 * FAKE_VM_PAGE,
			  2, 1, 0 },
			{ "2 pages, nlist 0", 2 * FAKE_VM_PAGE, 2, 0, 0 },
			{ "513 pages, nlist 1 (2 needed)", 513 * FAKE_VM_PAGE, 513,
			  1, 1 },
			{ "npages 0", 0, 0, 0, 0 },
			{ "npages 0, one list", 2 * FAKE_VM_PAGE, 0, 1, 1 },
			{ "size of 2 pages in 3", 2 * FAKE_VM_PAGE, 3, 1, 1 },
			{ "size 0 in 2 pages", 0, 2, 1, 1 },
			{ "size of 3 pages in 2", 3 * FAKE_VM_PAGE, 2, 1, 1 },
		};

		for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]);
		     i++) {
			m = pages_mem(bad_counts[i].size, bad_counts[i].npages,
				      bad_counts[i].nlist);
			snprintf(what, sizeof(what), "CREATE_CQ: %s",
				 bad_counts[i].what);
			expect(what,
			       cq_raw(&vm, &c, &m, lists, bad_counts[i].addresses,
				      NULL),
			       -EINVAL);
		}
		/* Above the limits: a queue of 1 GiB + 1 page, an MR's. */
		for (int i = 0; i < 8192; i++)
			lists[i] = L2;
		m = pages_mem((uint64_t)(VHCA_VM_QUEUE_PAGES_MAX + 1) *
				      FAKE_VM_PAGE,
			      VHCA_VM_QUEUE_PAGES_MAX + 1,
			      (VHCA_VM_QUEUE_PAGES_MAX + 1 + 511) / 512);
		expect("CREATE_CQ of VHCA_VM_QUEUE_PAGES_MAX + 1 pages",
		       cq_raw(&vm, &c, &m, lists, m.nlist, NULL), -EINVAL);
		m = pages_mem((uint64_t)VHCA_VM_MR_PAGES_MAX * FAKE_VM_PAGE,
			      VHCA_VM_MR_PAGES_MAX + 1, 8184);
		expect("REG_MR of VHCA_VM_MR_PAGES_MAX + 1 pages",
		       reg_raw(&vm, &c, pd, &m, 0,
			       (uint64_t)(VHCA_VM_MR_PAGES_MAX + 1) * FAKE_VM_PAGE,
			       lists, 8184, NULL),
		       -EINVAL);
		/* MR layout: the offset is in the first page, the pages cover it. */
		m = pages_mem(FAKE_VM_PAGE, 1, 1);
		expect("REG_MR at offset 4096 of its first page",
		       reg_raw(&vm, &c, pd, &m, FAKE_VM_PAGE, 8, lists, 1, NULL),
		       -EINVAL);
		expect("REG_MR of 4097 bytes in 1 page",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE + 1, lists, 1,
			       NULL),
		       -EINVAL);
		expect("REG_MR of 8 bytes at offset 4092 in 1 page",
		       reg_raw(&vm, &c, pd, &m, 4092, 8, lists, 1, NULL),
		       -EINVAL);
		expect("REG_MR of 0 bytes",
		       reg_raw(&vm, &c, pd, &m, 0, 0, lists, 1, NULL), -EINVAL);
		m = pages_mem(2 * FAKE_VM_PAGE, 2, 1);
		expect("REG_MR of 1 page in 2",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE, lists, 1, NULL),
		       -EINVAL);
		expect("and of 2 pages in 2 (fine)",
		       reg_raw(&vm, &c, pd, &m, 0, 2 * FAKE_VM_PAGE, lists, 1,
			       NULL),
		       0);
	}
	rereg(&vm, &c, pd, P);
	status_line(vm.name, line1, sizeof(line1));
	if (!expect_true("the status line unchanged by refused memory",
			 !strcmp(line0, line1)))
		printf("  before: %s  after:  %s", line0, line1);

	/*
	 * Pages held: at most twice the RAM.  One page named over and over
	 * through one list page named over and over: huge lists for free.
	 */
	L = list_page(&vm, P, P);
	for (int i = 0; i < 8184; i++)
		lists[i] = L;
	rss0 = proc_field(vhcad, "status", "VmRSS:");
	{
		struct vhca_devcmd_mem m = pages_mem(0, budget + 1,
						     (budget + 1 + 511) / 512);
		uint32_t n = 4190208;	/* 8184 list pages: a full mailbox */

		expect("REG_MR of budget + 1 pages",
		       reg_raw(&vm, &c, pd, &m, 0,
			       (uint64_t)(budget + 1) * FAKE_VM_PAGE, lists,
			       m.nlist, NULL),
		       -ENOMEM);
		m = pages_mem(0, n, 8184);
		for (int i = 0; i < 100; i++) {
			snprintf(what, sizeof(what),
				 "REG_MR of %u pages, attempt %d", n, i + 1);
			if (!expect(what,
				    reg_raw(&vm, &c, pd, &m, 0,
					    (uint64_t)n * FAKE_VM_PAGE, lists,
					    8184, NULL),
				    -ENOMEM))
				break;
		}
	}
	{
		struct vhca_devcmd_mem m = pages_mem(0, budget / 4, budget / 4 / 512);
		int ret = 0;

		for (nmr = 0; nmr < 8 && !ret;) {
			ret = reg_raw(&vm, &c, pd, &m, 0,
				      (uint64_t)m.npages * FAKE_VM_PAGE, lists,
				      m.nlist, &mrs[nmr]);
			if (!ret)
				nmr++;
		}
		snprintf(what, sizeof(what),
			 "REG_MR of %u pages each, until refused: the %dth",
			 m.npages, nmr + 1);
		expect(what, ret, -ENOMEM);
		expect("MRs of a quarter of the budget that fit", nmr, 4);
		m = pages_mem(2 * FAKE_VM_PAGE, 2, 1);
		lists[0] = list_page(&vm, P, P + FAKE_VM_PAGE);
		expect("CREATE_CQ while MRs hold the budget",
		       cq_raw(&vm, &c, &m, lists, 1, NULL), -ENOMEM);
		m = pages_mem(FAKE_VM_PAGE, 1, 1);
		expect("REG_MR of 1 page while MRs hold the budget",
		       reg_raw(&vm, &c, pd, &m, 0, FAKE_VM_PAGE, lists, 1,
			       NULL),
		       -ENOMEM);
		expect("QUERY_FUNCTION meanwhile", fake_vm_query_function(&vm, &f),
		       0);
		expect("DEREG_MR of one",
		       fake_destroy(&vm, &c, VHCA_DEVCMD_DEREG_MR, mrs[--nmr]), 0);
		for (int i = 0; i < 8184; i++)
			lists[i] = L;
		m = pages_mem(0, budget / 4, budget / 4 / 512);
		expect("REG_MR of as many again, after it",
		       reg_raw(&vm, &c, pd, &m, 0,
			       (uint64_t)m.npages * FAKE_VM_PAGE, lists,
			       m.nlist, &mrs[nmr]),
		       0);
		nmr++;
		while (nmr > 0)
			expect("DEREG_MR",
			       fake_destroy(&vm, &c, VHCA_DEVCMD_DEREG_MR,
					    mrs[--nmr]),
			       0);
	}
	rss1 = proc_field(vhcad, "status", "VmRSS:");
	printf("memory: vhcad's RSS %ld KiB before the budget, %ld KiB after\n",
	       rss0, rss1);
	expect_true("vhcad's RSS grew by less than 16 MiB",
		    rss1 >= 0 && rss1 - rss0 < 16 * 1024);

	/*
	 * Mappings: every run of contiguous pages of a queue is one of
	 * vhcad's; the VM's share is its function's QPs, CQs and SRQs.
	 * Alternating pages make every page a run.
	 */
	{
		const uint32_t share = f.max_qp + f.max_cq + f.max_srq;
		const uint32_t per_cq = 1024;
		uint32_t used = 1, want_cqs = (share - used) / per_cq, rest;
		struct vhca_devcmd_mem m = pages_mem(
			(uint64_t)per_cq * FAKE_VM_PAGE, per_cq, per_cq / 512);
		int ret = 0;

		L = list_page(&vm, P, P + 2 * FAKE_VM_PAGE);
		for (uint32_t i = 0; i < per_cq / 512; i++)
			lists[i] = L;
		maps0 = proc_field(vhcad, "maps", NULL);
		for (ncq = 0; ncq < 64 && !ret;) {
			ret = cq_raw(&vm, &c, &m, lists, m.nlist, &cqs[ncq]);
			if (!ret)
				ncq++;
		}
		snprintf(what, sizeof(what),
			 "CREATE_CQ of %u one-page runs, until refused: the %dth",
			 per_cq, ncq + 1);
		expect(what, ret, -ENOMEM);
		snprintf(what, sizeof(what),
			 "fragmented CQs that fit in a share of %u mappings",
			 share);
		expect(what, ncq, (int)want_cqs);
		used += (uint32_t)ncq * per_cq;
		rest = share - used;
		if (rest >= 2) {
			m = pages_mem((uint64_t)rest * FAKE_VM_PAGE, rest,
				      (rest + 511) / 512);
			snprintf(what, sizeof(what),
				 "CREATE_CQ of the last %u runs of the share", rest);
			expect(what, cq_raw(&vm, &c, &m, lists, m.nlist, &cqs[ncq]),
			       0);
			ncq++;
		}
		maps1 = proc_field(vhcad, "maps", NULL);
		printf("memory: mapping share %u: %d CQs, vhcad's mappings %ld -> %ld\n",
		       share, ncq, maps0, maps1);
		lists[0] = list_page(&vm, P, P + FAKE_VM_PAGE);
		m = pages_mem(2 * FAKE_VM_PAGE, 2, 1);
		expect("a CQ of one run beyond the share",
		       cq_raw(&vm, &c, &m, lists, 1, NULL), -ENOMEM);
		expect("a context with a data path beyond the share",
		       fake_ctx_open(&vm, &c2, true), -ENOMEM);
		expect("QUERY_FUNCTION with the share used",
		       fake_vm_query_function(&vm, &f), 0);
		while (ncq > 0)
			expect("DESTROY_CQ",
			       fake_destroy(&vm, &c, VHCA_DEVCMD_DESTROY_CQ,
					    cqs[--ncq]),
			       0);
		expect("a CQ of one run once they are gone",
		       cq_raw(&vm, &c, &m, lists, 1, NULL), 0);
		expect_true("vhcad's mappings back where they were",
			    labs(proc_field(vhcad, "maps", NULL) - maps0) < 64);
	}
	/*
	 * Contexts: the function's share, each with a data path (a page of
	 * RAM mapped, a descriptor of vhcad's for its wake-up), then -EUSERS.
	 * All of them on one doorbell page: a VM may alias its pages.
	 */
	{
		uint32_t *ids = calloc(f.max_contexts + 1, sizeof(*ids));
		struct vhca_devcmd_open_context oc = {
			.flags = VHCA_DEVCMD_CTX_DATA_PATH, .wake_fd = -1,
		};
		struct vhca_devcmd_context_out out;
		uint32_t opened = 0;
		int ret = 0, fds_full;

		if (!ids)
			die("contexts");
		lists[0] = fake_vm_alloc(&vm, FAKE_VM_PAGE);
		((uint64_t *)fake_vm_va(&vm, lists[0]))[0] = P + FAKE_VM_PAGE;
		oc.ctx_page = pages_mem(16, 1, 1);
		expect("OPEN_CONTEXT whose doorbell page is 16 bytes",
		       fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &oc,
				    sizeof(oc), lists, 1, NULL, 0),
		       -EINVAL);
		oc.ctx_page = pages_mem(FAKE_VM_PAGE, 1, 1);
		fds0 = vhcad_fds(vhcad, NULL, NULL, 0, &nbar);
		while (!ret && opened <= f.max_contexts) {
			ret = fake_vm_call(&vm, VHCA_DEVCMD_OPEN_CONTEXT, 0, &oc,
					   sizeof(oc), lists, 1, &out, sizeof(out));
			if (!ret)
				ids[opened++] = out.context;
		}
		fds_full = vhcad_fds(vhcad, NULL, NULL, 0, &nbar);
		snprintf(what, sizeof(what),
			 "OPEN_CONTEXT beyond the share of %u contexts",
			 f.max_contexts);
		expect(what, ret, -EUSERS);
		expect("contexts opened besides the first", (int)opened,
		       (int)f.max_contexts - 1);
		expect("vhcad's fds for them: one each (its wake-up)",
		       fds_full - fds0, (int)opened);
		expect("QUERY_FUNCTION with every context open",
		       fake_vm_query_function(&vm, &f), 0);
		while (opened > 0)
			if (!expect("CLOSE_CONTEXT",
				    fake_vm_call(&vm, VHCA_DEVCMD_CLOSE_CONTEXT,
						 ids[--opened], NULL, 0, NULL, 0,
						 NULL, 0),
				    0))
				break;
		expect("vhcad's fds once they are closed",
		       vhcad_fds(vhcad, NULL, NULL, 0, &nbar), fds0);
		free(ids);
	}
	status_line(vm.name, line1, sizeof(line1));
	if (!expect_true("the status line back to where it was",
			 !strcmp(line0, line1)))
		printf("  before: %s  after:  %s", line0, line1);
	fake_vm_stop(&vm);
	return finish("memory");
}
