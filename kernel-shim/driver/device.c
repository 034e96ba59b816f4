// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Device commands from the driver half (device.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

static const struct vhca_device_transport *transport;
static const struct vhca_device_memory *memory;

void vhca_device_set_memory(const struct vhca_device_memory *m)
{
	memory = m;
}

const struct vhca_device_memory *vhca_device_memory(void)
{
	return memory;
}

void vhca_device_set_transport(const struct vhca_device_transport *t)
{
	transport = t;
}

void vhca_device_context_info(struct vhca_alloc_ucontext_resp *resp)
{
	if (transport && transport->context_info)
		transport->context_info(resp);
}

void vhca_device_context_live(struct vhca_ucontext *uctx, bool live)
{
	if (transport && transport->context_live)
		transport->context_live(uctx, live);
}

bool vhca_device_is_remote(void)
{
	return transport != NULL;
}

/* The largest answer: QUERY_FUNCTION's. */
#define ANSWER_MAX (sizeof(struct vhca_devcmd_status) + 1024)

int vhca_device_cmd(struct vhca_dev *dev, uint16_t op, uint32_t context,
		    const void *body, size_t len, const uint64_t *lists,
		    uint32_t nlist, const struct vhca_devcmd_local *local,
		    void *out, size_t out_len)
{
	size_t in_len = sizeof(struct vhca_devcmd_hdr) + len +
			(size_t)nlist * sizeof(uint64_t);
	uint64_t answer[ANSWER_MAX / sizeof(uint64_t)];
	const struct vhca_devcmd_status *status = (void *)answer;
	struct vhca_devcmd_hdr *hdr;
	size_t n;

	if (in_len - sizeof(*hdr) > UINT16_MAX ||
	    out_len > ANSWER_MAX - sizeof(*status))
		return -EINVAL;
	/* u64 storage: bodies are naturally aligned after the header. */
	hdr = calloc(1, (in_len + 7) & ~(size_t)7);
	if (!hdr)
		return -ENOMEM;
	*hdr = (struct vhca_devcmd_hdr){
		.op = op,
		.in_len = (uint16_t)(in_len - sizeof(*hdr)),
		.context = context,
	};
	if (len)
		memcpy(hdr + 1, body, len);
	if (nlist)
		memcpy((uint8_t *)(hdr + 1) + len, lists,
		       (size_t)nlist * sizeof(uint64_t));
	if (transport)
		n = transport->exec(dev, hdr, in_len, answer, sizeof(answer));
	else if (dev->devcmd)
		n = vhca_devcmd_exec(dev->devcmd, hdr, in_len, local, answer,
				     sizeof(answer));
	else
		n = 0;
	free(hdr);
	if (n < sizeof(*status))
		return -EIO;	/* no device to answer: gone */
	if (status->status)
		return status->status;
	if (out_len)
		memcpy(out, status + 1,
		       status->out_len < out_len ? status->out_len : out_len);
	return 0;
}
