/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A fake virtual machine: what QEMU and a guest driver do with a VF
 * (docs/prm.md, "The VF in a VM"), played by one host process and
 * without booting anything, so that a hostile VM's tests run in seconds.
 *
 *  - QEMU's part: the VM's RAM (a memfd sealed against shrinking and
 *    growing; guest-physical address = offset in it), VHCA_MGMT_ATTACH_VM
 *    on DIR/mgmt.sock with the RAM in SCM_RIGHTS, then the ivshmem
 *    client's side of DIR/vm/vhca0_vfN.sock: version, our peer id, the
 *    BAR's memfd, peer 0's doorbell eventfds, our interrupt eventfds.
 *    Writing 1 to peer 0's eventfd of vector v is what QEMU does when the
 *    guest writes BAR0's Doorbell with (0 << 16 | v).  Closing the
 *    connection is QEMU exiting.
 *  - The guest's part: device commands through the BAR's mailbox (any
 *    bytes at all: it is hostile), page lists and queues in its own RAM,
 *    work requests written into its rings and rung through the doorbell
 *    page and vector 1.
 *
 * kernel-shim/guest/mailbox.c and memory.c are the friendly driver; this
 * is the one that says what it likes.
 */
#ifndef VHCA_TESTS_FAKE_VM_H
#define VHCA_TESTS_FAKE_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vhca/devcmd.h>
#include <vhca/queue.h>
#include <vhca/vf_bar.h>

#define FAKE_VM_PAGE VHCA_DEVCMD_PAGE_SIZE

/* What fake_vm_call() returns besides the device's status (0, -errno). */
enum {
	FAKE_VM_NO_ANSWER = 1,	/* answered did not move within the timeout */
	FAKE_VM_GONE = 2,	/* the BAR's state is VHCA_BAR_GONE */
	FAKE_VM_BAD_ANSWER = 3,	/* out_len not a status and the op's body */
};

struct fake_vm {
	unsigned int vf;
	char name[32];			/* vhca0_vfN */
	int ram_fd;
	uint8_t *ram;
	uint64_t ram_size;
	uint64_t brk;			/* the allocator: next free byte */
	int sock;			/* the ivshmem connection */
	int64_t peer_id;		/* ours, as the server said */
	int bar_fd;
	uint8_t *bar;
	int doorbell[VHCA_VECTORS];	/* peer 0's: rings vhcad */
	int interrupt[VHCA_VECTORS];	/* ours: vhcad interrupts us */
	int timeout_ms;			/* per command (default 5000) */
	uint64_t commands;		/* answered */
};

/*
 * A sealed memfd of @size bytes; @seals (F_SEAL_*) are added.  Its fd, or
 * -errno.
 */
int fake_vm_memfd(uint64_t size, int seals);

/*
 * VHCA_MGMT_ATTACH_VM of VF @vf with @ram_fd (-1: none) and @ram_size on
 * DIR/mgmt.sock: vhcad's answer, 0 or -errno (-EPROTO if malformed).
 */
int fake_vm_attach_req(const char *run_dir, uint32_t vf, uint32_t flags,
		       int ram_fd, uint64_t ram_size);

/*
 * The whole start of a VM: RAM of @ram_size bytes, the attach, the
 * ivshmem handshake, the BAR mapped and checked.  0 or -errno (the
 * attach's, or -EPROTO for a handshake or BAR that is not as specified).
 */
int fake_vm_start(struct fake_vm *vm, const char *run_dir, unsigned int vf,
		  uint64_t ram_size);
/* QEMU exits: the connection closes, everything is unmapped. */
void fake_vm_stop(struct fake_vm *vm);

static inline struct vhca_bar_mailbox *fake_vm_mailbox(struct fake_vm *vm)
{
	return (struct vhca_bar_mailbox *)(vm->bar + VHCA_BAR_MAILBOX_OFFSET);
}

static inline struct vhca_bar_header *fake_vm_header(struct fake_vm *vm)
{
	return (struct vhca_bar_header *)vm->bar;
}

/* QEMU's doorbell: the guest wrote BAR0's Doorbell with vector @v. */
void fake_vm_ring_vector(struct fake_vm *vm, unsigned int v);

/* ---- guest memory ------------------------------------------------------------ */

/* @bytes of RAM, page aligned and zeroed; its guest-physical address. */
uint64_t fake_vm_alloc(struct fake_vm *vm, uint64_t bytes);

static inline void *fake_vm_va(struct fake_vm *vm, uint64_t gpa)
{
	return vm->ram + gpa;
}

/*
 * Writes the @npages page addresses @pages into list pages of RAM
 * (allocated), their addresses to @lists; the number of list pages.
 */
uint32_t fake_vm_lists(struct fake_vm *vm, const uint64_t *pages,
		       uint32_t npages, uint64_t *lists);

/*
 * MEM_PAGES for [gpa, gpa + size) (its pages, in order): @m and the list
 * page addresses in @lists (at most @max); the number of list pages.
 */
uint32_t fake_vm_mem(struct fake_vm *vm, uint64_t gpa, uint64_t size,
		     struct vhca_devcmd_mem *m, uint64_t *lists, uint32_t max);

/* ---- the mailbox ------------------------------------------------------------- */

/*
 * Raw: copies @len bytes to the mailbox, sets in_len to @in_len (which
 * need not be @len), requests, rings vector 0 and waits for the answer,
 * copied to @answer (@cap bytes, *@answer_len its length).  0 when
 * answered, else FAKE_VM_NO_ANSWER or FAKE_VM_GONE.
 */
int fake_vm_raw(struct fake_vm *vm, const void *bytes, size_t len,
		uint32_t in_len, void *answer, size_t cap, size_t *answer_len);

/*
 * One command: header (@op, @context), @body (@body_len bytes), @nlist
 * list page addresses.  The device's status (0 or -errno), with the
 * answer's body in @out (@out_len bytes, exactly what the op answers)
 * on 0; or FAKE_VM_NO_ANSWER, FAKE_VM_GONE, FAKE_VM_BAD_ANSWER.
 */
int fake_vm_call(struct fake_vm *vm, uint16_t op, uint32_t context,
		 const void *body, size_t body_len, const uint64_t *lists,
		 uint32_t nlist, void *out, size_t out_len);

int fake_vm_query_function(struct fake_vm *vm, struct vhca_devcmd_function *f);

/* ---- objects and the data path ------------------------------------------------ */

struct fake_ctx {
	uint32_t id;
	struct vhca_ctx_page *page;	/* NULL without a data path */
	uint64_t page_gpa;
};

struct fake_mr {
	uint32_t handle, lkey, rkey;
	uint64_t gpa, len;		/* iova == gpa */
};

struct fake_cq {
	uint32_t handle, count, consumer;
	struct vhca_cqe *ring;
	struct vhca_cq_db *db;
};

struct fake_qp {
	uint32_t handle, qpn;
	uint8_t *sq, *rq;
	struct vhca_qp_db *db;
	uint32_t sq_count, sq_stride, rq_count, rq_stride;
	uint32_t sq_head, rq_head;
};

int fake_ctx_open(struct fake_vm *vm, struct fake_ctx *c, bool data_path);
int fake_pd_alloc(struct fake_vm *vm, struct fake_ctx *c, uint32_t *pd);
/* An MR over [gpa, gpa + len) of RAM with @access (IB_UVERBS_ACCESS_*). */
int fake_mr_reg(struct fake_vm *vm, struct fake_ctx *c, uint32_t pd,
		uint64_t gpa, uint64_t len, uint32_t access,
		struct fake_mr *mr);
int fake_destroy(struct fake_vm *vm, struct fake_ctx *c, uint16_t op,
		 uint32_t handle);
/* A CQ of @count entries (ring, then the doorbell record's page). */
int fake_cq_create(struct fake_vm *vm, struct fake_ctx *c, uint32_t count,
		   struct fake_cq *cq);
/* An RC QP: 16 send slots of 256 bytes, 16 receive slots of 64. */
int fake_qp_create(struct fake_vm *vm, struct fake_ctx *c, uint32_t pd,
		   struct fake_cq *cq, struct fake_qp *qp);
/* RESET -> INIT -> RTR -> RTS towards (@dlid, @dqpn): all rights,
 * ACK timeout 4.2 ms, 3 retries. */
int fake_qp_connect(struct fake_vm *vm, struct fake_ctx *c,
		    struct fake_qp *qp, uint16_t dlid, uint32_t dqpn);
/* The QP's state (enum ibv_qp_state) in *@state. */
int fake_qp_state(struct fake_vm *vm, struct fake_ctx *c, struct fake_qp *qp,
		  int *state);

/*
 * Writes a send WQE (header @w, then @nsge SGEs) at the SQ's head,
 * publishes the head and rings (doorbell page FIFO, then vector 1 if the
 * engine sleeps), as the provider does.
 */
void fake_qp_post_send(struct fake_vm *vm, struct fake_ctx *c,
		       struct fake_qp *qp, const struct vhca_send_wqe *w,
		       const struct vhca_sge *sge, unsigned int nsge);
void fake_qp_post_recv(struct fake_vm *vm, struct fake_ctx *c,
		       struct fake_qp *qp, uint64_t wr_id,
		       const struct vhca_sge *sge, unsigned int nsge);
/* The doorbell of QP @handle: the FIFO entry, then the wake-up. */
void fake_ring(struct fake_vm *vm, struct fake_ctx *c, uint32_t entry);
/* 1 with the next CQE in *@cqe, or 0 if none came within @ms. */
int fake_cq_poll(struct fake_cq *cq, struct vhca_cqe *cqe, int ms);

#endif /* VHCA_TESTS_FAKE_VM_H */
