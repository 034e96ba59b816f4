/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A VF as a PCI function of a VM (docs/vm.md): QEMU's ivshmem-doorbell
 * device, with vhcad as its ivshmem server and peer 0.
 *
 *   BAR0  ivshmem's registers: IntrMask (0), IntrStatus (4, read clears),
 *         IVPosition (8), Doorbell (12: peer << 16 | vector).  Writing
 *         Doorbell with peer 0 wakes vhcad: vector 0 for the mailbox,
 *         vector 1 for the data path (the provider's wake-up).
 *   BAR2  this layout, shared memory vhcad created: the VF's header, its
 *         command mailbox and its event ring.  vhcad interrupts the VM
 *         (INTx through IntrStatus) when an answer or events are ready.
 *
 * The guest owns what it writes (the mailbox's request, the ring's
 * consumer index) and vhcad copies it before it looks at it; vhcad owns
 * the rest.  Every index is free-running and checked.
 */
#ifndef VHCA_VF_BAR_H
#define VHCA_VF_BAR_H

#include <linux/types.h>

#include <vhca/devcmd.h>

/* PCI ids of QEMU's ivshmem, and our BAR2's signature. */
#define VHCA_BAR_VENDOR 0x1af4
#define VHCA_BAR_DEVICE 0x1110
#define VHCA_BAR_MAGIC 0x76686361u	/* "vhca" */
#define VHCA_BAR_VERSION 1
#define VHCA_BAR_SIZE (1u << 20)	/* a power of two, as PCI wants */

/* BAR0 registers (QEMU hw/misc/ivshmem.c). */
#define VHCA_BAR0_INTR_MASK 0
#define VHCA_BAR0_INTR_STATUS 4
#define VHCA_BAR0_IV_POSITION 8
#define VHCA_BAR0_DOORBELL 12
#define VHCA_VECTOR_MAILBOX 0
#define VHCA_VECTOR_DATA_PATH 1
#define VHCA_VECTORS 2
#define VHCA_DEVICE_PEER 0	/* vhcad's ivshmem peer id */

enum vhca_bar_state {
	VHCA_BAR_READY = 1,
	VHCA_BAR_GONE = 2,	/* vhcad stopped: every command fails */
};

/* The largest request (header, body, list page addresses) and answer. */
#define VHCA_MAILBOX_IN_MAX (sizeof(struct vhca_devcmd_hdr) + 65535)
#define VHCA_MAILBOX_OUT_MAX 2048

struct vhca_bar_header {
	__u32 magic;
	__u32 version;
	__u32 state;		/* enum vhca_bar_state */
	__u32 vf_index;
	__u64 mailbox_offset;
	__u64 events_offset;
	__u32 events_count;	/* a power of two */
	__u32 reserved;
};

/*
 * One command at a time: the guest writes @in (@in_len bytes), then
 * @request = @answered + 1, then rings vector 0; vhcad writes @out
 * (@out_len bytes), then @answered = @request, then interrupts.
 */
struct vhca_bar_mailbox {
	__u32 request;
	__u32 answered;
	__u32 in_len;
	__u32 out_len;
	__u64 in[(VHCA_MAILBOX_IN_MAX + 7) / 8];
	__u64 out[VHCA_MAILBOX_OUT_MAX / 8];
};

/* vhcad produces, the guest consumes; a full ring drops (and counts). */
struct vhca_bar_events {
	__u32 producer;
	__u32 consumer;
	__u32 dropped;
	__u32 reserved;
	struct vhca_devcmd_event ring[];
};

#define VHCA_BAR_MAILBOX_OFFSET 4096u
#define VHCA_BAR_EVENTS_OFFSET (VHCA_BAR_MAILBOX_OFFSET + 128u * 1024)
#define VHCA_BAR_EVENTS_COUNT 4096u

#endif /* VHCA_VF_BAR_H */
