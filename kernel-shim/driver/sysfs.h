/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The sysfs view: a FUSE filesystem (mounted at <run-dir>/sys) laid out
 * like the parts of Linux sysfs that libibverbs and the rdma tools read,
 * rendered live from struct vhca_pf, plus the uverbs command files.
 *
 *   class/infiniband_verbs/abi_version
 *   class/infiniband_verbs/uverbsN/{ibdev,dev,abi_version,vhca_cmd}
 *   class/infiniband/<dev>/{node_type,node_guid,sys_image_guid,node_desc,
 *                           fw_ver,hca_type,hw_rev,board_id}
 *   class/infiniband/<dev>/ports/1/{state,phys_state,lid,lid_mask_count,
 *                           sm_lid,sm_sl,cap_mask,rate,link_layer,
 *                           gids/<i>,gid_attrs/types/<i>,pkeys/<i>,
 *                           counters/<name>}
 *   class/infiniband/vhca0/device/{sriov_totalvfs,sriov_numvfs}
 *   class/infiniband/vhca0/device/sriov/<vf>/{node,port,policy,pkeys/<i>}
 *   module/vhca/status    one line of resource counts per device
 */
#ifndef VHCA_SYSFS_H
#define VHCA_SYSFS_H

struct vhca_pf;
struct vhca_sysfs;
struct vhca_guests;

/* Relative to the mount point; rundir.c points DIR/ready at it. */
#define VHCA_SYSFS_STATUS_PATH "module/vhca/status"

/* Called from a serving thread; must not block on the filesystem. */
struct vhca_sysfs_events {
	/* The kernel handshake is done: requests are being served. */
	void (*ready)(void *arg);
	/* Serving ended without vhca_sysfs_stop() (unmounted from outside). */
	void (*stopped)(void *arg);
	void *arg;
};

/* Creates the session and mounts it; 0 or -errno (already logged). */
int vhca_sysfs_mount(struct vhca_sysfs **out, struct vhca_pf *pf,
		     struct vhca_guests *guests, const char *mountpoint,
		     const struct vhca_sysfs_events *events);

/* Starts serving in a thread of its own (the thread runs the mt loop). */
int vhca_sysfs_start(struct vhca_sysfs *fs);

/* Stops serving and waits for every serving thread; idempotent. */
void vhca_sysfs_stop(struct vhca_sysfs *fs);

/*
 * Unmounts, then releases the command files still open (their processes
 * lose the device as on a hot unplug) and frees everything.
 */
void vhca_sysfs_unmount(struct vhca_sysfs *fs);

#endif /* VHCA_SYSFS_H */
