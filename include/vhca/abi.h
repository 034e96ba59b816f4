/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhca device interface shared by the provider (providers/vhca) and the
 * device (kernel-shim/vhcad).  Everything here crosses the trust boundary:
 * the daemon treats every field as hostile input.
 *
 * Commands use the kernel's uverbs write ABI (<rdma/ib_user_verbs.h>); the
 * structures below are the provider-specific "udata" that follows the core
 * payload, exactly as a hardware provider's <rdma/xxx-abi.h> does.
 * docs/prm.md explains every field.
 */
#ifndef VHCA_ABI_H
#define VHCA_ABI_H

#include <linux/types.h>

/*
 * Provider ABI version.  Published in sysfs as
 * class/infiniband_verbs/uverbsN/abi_version; the provider accepts exactly
 * this one.
 */
#define VHCA_UVERBS_ABI_VERSION 1

/* The kernel's uverbs ABI version (class/infiniband_verbs/abi_version). */
#define VHCA_UVERBS_CORE_ABI_VERSION 6

/* Name of the command file in each class/infiniband_verbs/uverbsN/ dir. */
#define VHCA_CMD_FILE_NAME "vhca_cmd"

/*
 * Completion channels are created by libibverbs without asking the
 * provider, yet must be real fds in the caller.  So the provider pre-creates
 * pipes and hands them to the device in batches; the device keeps the write
 * ends (pidfd_getfd) and returns a read end for each CREATE_COMP_CHANNEL.
 */
#define VHCA_CHANNEL_BATCH 8

struct vhca_fd_pair {
	__s32 read_fd;	/* stays with the caller */
	__s32 write_fd;	/* taken by the device; caller closes it afterwards */
};

/* udata of IB_USER_VERBS_CMD_GET_CONTEXT (provider -> device) */
struct vhca_alloc_ucontext_cmd {
	__u32 abi_version;		/* VHCA_UVERBS_ABI_VERSION */
	__u32 num_channels;		/* valid entries in channels[] */
	struct vhca_fd_pair async_event;	/* read_fd becomes async_fd */
	/*
	 * The device writes one byte (VHCA_SERVICE_REFILL_CHANNELS) to
	 * service.write_fd when its channel pool runs low; the provider's
	 * service thread then sends VHCA_CMD_ADD_CHANNELS.  read_fd is
	 * informational only.
	 */
	struct vhca_fd_pair service;
	struct vhca_fd_pair channels[VHCA_CHANNEL_BATCH];
};

/* udata of the GET_CONTEXT response (device -> provider) */
struct vhca_alloc_ucontext_resp {
	__u32 abi_version;
	__u32 max_inline_data;
	__u64 reserved[4];
};

#define VHCA_SERVICE_REFILL_CHANNELS 'R'

/*
 * vhca private commands: same framing as the uverbs write ABI
 * (struct ib_uverbs_cmd_hdr, command number in the low 8 bits, never
 * extended), in a range the kernel does not use.
 */
enum {
	VHCA_CMD_ADD_CHANNELS = 0xc0,
};

/* payload of VHCA_CMD_ADD_CHANNELS; no response */
struct vhca_add_channels_cmd {
	__u32 num_channels;
	__u32 reserved;
	struct vhca_fd_pair channels[VHCA_CHANNEL_BATCH];
};

/*
 * REG_MR has no provider data: the device checks the range against the
 * caller's mappings itself.  ALLOC_PD and DEALLOC_PD have none either.
 */

#endif /* VHCA_ABI_H */
