// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Scatter/gather lists over registered memory (sgl.h). */
#include <errno.h>
#include <string.h>

#include "mr.h"
#include "dma.h"
#include "dctx.h"
#include "packet.h"
#include "sgl.h"

int vhca_sgl_add(struct vhca_sgl *sgl, struct vhca_dctx *dctx, uint64_t pdn,
		 uint32_t key, uint64_t iova, uint32_t len, uint32_t access)
{
	struct vhca_mr *mr;

	if (!len)
		return 0;
	if (sgl->num == VHCA_SGL_MAX || sgl->total + len < sgl->total)
		return -EPERM;
	mr = vhca_mr_find(dctx, key);
	if (!mr || mr->pdn != pdn || (mr->access & access) != access ||
	    iova < mr->iova || iova - mr->iova > mr->length ||
	    len > mr->length - (iova - mr->iova))
		return -EPERM;
	sgl->seg[sgl->num].mr = mr;
	sgl->seg[sgl->num].iova = iova;
	sgl->seg[sgl->num].len = len;
	sgl->num++;
	sgl->total += len;
	return 0;
}

int vhca_sgl_from_sges(struct vhca_sgl *sgl, struct vhca_dctx *dctx,
		       uint64_t pdn, const struct vhca_sge *sges,
		       unsigned int num, uint32_t access)
{
	memset(sgl, 0, sizeof(*sgl));
	if (num > VHCA_SGL_MAX)
		return -EPERM;
	for (unsigned int i = 0; i < num; i++) {
		int ret = vhca_sgl_add(sgl, dctx, pdn, sges[i].lkey,
				       sges[i].addr, sges[i].length, access);

		if (ret)
			return ret;
	}
	return 0;
}

/* Walks the list from byte @off, @len bytes, reading or writing. */
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
			ret = vhca_mr_write(sgl->seg[i].mr,
					    sgl->seg[i].iova + off, buf, n);
		else
			ret = vhca_mr_read(sgl->seg[i].mr,
					   sgl->seg[i].iova + off, buf, n);
		if (ret)
			return ret;
		buf += n;
		len -= n;
		off = 0;
	}
	return len ? -EFAULT : 0;
}

int vhca_sgl_map(const struct vhca_sgl *sgl, uint32_t off, uint32_t len,
		 struct vhca_pkt *pkt)
{
	struct vhca_dma_space *space = NULL;

	pkt->nref = 0;
	for (unsigned int i = 0; i < sgl->num && len; i++) {
		uint32_t seg_len = sgl->seg[i].len, n;

		if (off >= seg_len) {
			off -= seg_len;
			continue;
		}
		n = seg_len - off < len ? seg_len - off : len;
		space = sgl->seg[i].mr->dctx->space;
		if (vhca_mr_map(sgl->seg[i].mr, sgl->seg[i].iova + off, n,
				pkt)) {
			pkt->nref = 0;
			return -EAGAIN;
		}
		len -= n;
		off = 0;
	}
	if (len || !pkt->nref) {
		pkt->nref = 0;
		return -EAGAIN;
	}
	/* Every MR of a list is its context's: one space holds them all. */
	vhca_dma_space_get(space);
	pkt->ref_space = space;
	return 0;
}

int vhca_sgl_write_pkt(const struct vhca_sgl *sgl, uint32_t off,
		       const struct vhca_pkt *pkt)
{
	int ret = 0;

	if (!pkt->nref)
		return vhca_sgl_write(sgl, off, pkt->data, pkt->len);
	for (unsigned int i = 0; i < pkt->nref && !ret; i++) {
		ret = vhca_sgl_write(sgl, off, pkt->ref[i].ptr,
				     pkt->ref[i].len);
		off += pkt->ref[i].len;
	}
	return ret;
}

int vhca_sgl_read(const struct vhca_sgl *sgl, uint32_t off, void *buf,
		  uint32_t len)
{
	return sgl_io(sgl, off, buf, len, false);
}

int vhca_sgl_write(const struct vhca_sgl *sgl, uint32_t off, const void *buf,
		   uint32_t len)
{
	return sgl_io(sgl, off, (uint8_t *)buf, len, true);
}
