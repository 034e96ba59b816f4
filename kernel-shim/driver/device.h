/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The device as the driver half reaches it: one call that sends a device
 * command (include/vhca/devcmd.h) to a function and waits for its answer.
 * In vhcad the command runs in-process (device/devcmd.c, the function's
 * port); in a VM's vhcad (--vm-guest) it travels through the VF's
 * mailbox (guest/mailbox.c installs that transport).  The driver never
 * touches device state otherwise, except the function's attributes
 * (struct vhca_dev: identity, port, quota), which in a VM are a copy the
 * guest keeps up to date from the device's FUNCTION events.
 */
#ifndef VHCA_DRIVER_DEVICE_H
#define VHCA_DRIVER_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vhca/abi.h>
#include <vhca/devcmd.h>

#include "device/devcmd.h"
#include "device/pf.h"

struct vhca_ucontext;

/* How commands reach a device that is not in this process. */
struct vhca_device_transport {
	/*
	 * Sends the command @in (@in_len bytes, header first) for function
	 * @dev and writes the status and answer to @out (@out_cap bytes).
	 * Returns the bytes written; fewer than a status: the device is
	 * gone.
	 */
	size_t (*exec)(struct vhca_dev *dev, const void *in, size_t in_len,
		       void *out, size_t out_cap);
	/*
	 * Events for context @uctx may come from now on (@live), or no more
	 * will be taken for it: the transport delivers events only to live
	 * contexts.
	 */
	void (*context_live)(struct vhca_ucontext *uctx, bool live);
	/* What GET_CONTEXT tells the provider about this device (a VM's). */
	void (*context_info)(struct vhca_alloc_ucontext_resp *resp);
};

/*
 * How a VM's driver names memory for the device (guest/memory.c): pages
 * of the VM, held for the object's life.  NULL in vhcad, which hands the
 * device the guest's memfds and address space directly.
 */
struct vhca_peer;
struct vhca_device_memory {
	/* A queue's memfd @guest_fd of the guest process @peer: MEM_PAGES. */
	int (*queue)(const struct vhca_peer *peer, int guest_fd, uint64_t size,
		     struct vhca_devcmd_mem *mem, uint64_t *list, uint32_t max,
		     void **pin);
	/*
	 * [addr, addr + len) of @peer's address space (an MR): MEM_PAGES
	 * with *offset the first byte's offset in its page; *list is
	 * malloc()ed.
	 */
	int (*region)(const struct vhca_peer *peer, uint64_t addr,
		      uint64_t len, bool writable, struct vhca_devcmd_mem *mem,
		      uint64_t *offset, uint64_t **list, void **pin);
	void (*unpin)(void *pin);
};

void vhca_device_set_memory(const struct vhca_device_memory *memory);
const struct vhca_device_memory *vhca_device_memory(void);

/* Installs a transport for every function (NULL: in-process). */
void vhca_device_set_transport(const struct vhca_device_transport *t);
/* Tells the transport (if any) about a context's events (see above). */
void vhca_device_context_live(struct vhca_ucontext *uctx, bool live);
void vhca_device_context_info(struct vhca_alloc_ucontext_resp *resp);
/* Is the device in another process (a VM's driver)? */
bool vhca_device_is_remote(void);

/*
 * Command @op on context @context of @dev: body @body (@len bytes), then
 * @nlist list page addresses, in-process attachments @local; the answer's
 * body into @out (@out_len bytes).  0 or the command's -errno (-EIO if
 * the device is gone).
 */
int vhca_device_cmd(struct vhca_dev *dev, uint16_t op, uint32_t context,
		    const void *body, size_t len, const uint64_t *lists,
		    uint32_t nlist, const struct vhca_devcmd_local *local,
		    void *out, size_t out_len);

#endif /* VHCA_DRIVER_DEVICE_H */
