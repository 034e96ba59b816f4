// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Data movement between guests: key validation into scatter/gather
 * lists, and copies through the engine's bounce buffer (packet.h).  All
 * guest memory is touched through dma.c, with the MR's owner as the peer;
 * a fault (the guest unmapped its memory) is reported, never fatal.
 */
#include <errno.h>
#include <string.h>

#include <rdma/ib_user_ioctl_verbs.h>

#include "mr.h"
#include "packet.h"

/* One engine thread: one bounce buffer. */
static uint8_t bounce[VHCA_BOUNCE_SIZE];

enum vhca_key_check vhca_sgl_add(struct vhca_sgl *sgl,
				 const struct vhca_dev *dev, uint64_t pdn,
				 uint32_t key, uint64_t iova, uint32_t len,
				 uint32_t access)
{
	struct vhca_mr *mr;

	if (!len)
		return VHCA_KEY_OK;
	if (sgl->num == VHCA_SGL_MAX || sgl->total + len < sgl->total)
		return VHCA_KEY_BAD;
	mr = vhca_mr_lookup(dev, key);
	if (!mr)
		return VHCA_KEY_BAD;
	if (mr->pdn != pdn || (mr->access & access) != access ||
	    iova < mr->iova || iova - mr->iova > mr->length ||
	    len > mr->length - (iova - mr->iova)) {
		vhca_mr_put(mr);
		return VHCA_KEY_BAD;
	}
	sgl->seg[sgl->num].mr = mr;
	sgl->seg[sgl->num].addr = mr->addr + (iova - mr->iova);
	sgl->seg[sgl->num].len = len;
	sgl->num++;
	sgl->total += len;
	return VHCA_KEY_OK;
}

void vhca_sgl_release(struct vhca_sgl *sgl)
{
	for (unsigned int i = 0; i < sgl->num; i++)
		vhca_mr_put(sgl->seg[i].mr);
	sgl->num = 0;
	sgl->total = 0;
}

/* Walks an sgl from byte @off: @fn on each piece of @len bytes. */
static int sgl_io(const struct vhca_sgl *sgl, uint32_t off, uint8_t *buf,
		  uint32_t len, bool write)
{
	for (unsigned int i = 0; i < sgl->num && len; i++) {
		uint32_t seg_len = sgl->seg[i].len, n;
		int ret;

		if (off >= seg_len) {
			off -= seg_len;
			continue;
		}
		n = seg_len - off < len ? seg_len - off : len;
		if (write)
			ret = vhca_dma_mr_write(sgl->seg[i].mr->peer,
						sgl->seg[i].addr + off, buf, n);
		else
			ret = vhca_dma_mr_read(sgl->seg[i].mr->peer,
					       sgl->seg[i].addr + off, buf, n);
		if (ret)
			return ret;
		buf += n;
		len -= n;
		off = 0;
	}
	return len ? -EFAULT : 0;
}

enum vhca_copy_result vhca_copy(const struct vhca_payload *src,
				const struct vhca_sgl *dst, uint32_t dst_off)
{
	if (dst_off > dst->total || src->len > dst->total - dst_off)
		return VHCA_COPY_DST_SHORT;
	if (src->inline_data)
		return sgl_io(dst, dst_off, (uint8_t *)src->inline_data,
			      src->len, true) ?
			       VHCA_COPY_DST_FAULT :
			       VHCA_COPY_OK;
	for (uint32_t done = 0; done < src->len;) {
		uint32_t n = src->len - done < VHCA_BOUNCE_SIZE ?
				     src->len - done :
				     VHCA_BOUNCE_SIZE;

		if (sgl_io(src->sgl, done, bounce, n, false))
			return VHCA_COPY_SRC_FAULT;
		if (sgl_io(dst, dst_off + done, bounce, n, true))
			return VHCA_COPY_DST_FAULT;
		done += n;
	}
	return VHCA_COPY_OK;
}

int vhca_sgl_read64(const struct vhca_sgl *sgl, uint64_t *val)
{
	return sgl_io(sgl, 0, (uint8_t *)val, sizeof(*val), false);
}

int vhca_sgl_write64(const struct vhca_sgl *sgl, uint64_t val)
{
	return sgl_io(sgl, 0, (uint8_t *)&val, sizeof(val), true);
}
