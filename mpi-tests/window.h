/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Windows of messages for the bandwidth benchmarks: each message in flight
 * has its own buffer (its own pattern), carved from one slab allocated once
 * so registration caches stay warm across sizes.
 */
#ifndef VHCA_MPI_WINDOW_H
#define VHCA_MPI_WINDOW_H

#include "common.h"

/* A window never holds more than this many bytes: 64 x 4 MiB would be
 * 256 MiB per direction and rank for no gain; a few large messages in
 * flight already keep the link busy. */
#define WINDOW_BYTES_CAP ((size_t)64 << 20)

static inline int window_for_size(const struct bench_options *opts,
				  size_t size)
{
	size_t cap = size ? WINDOW_BYTES_CAP / size : (size_t)opts->window;

	if (cap < 1)
		cap = 1;
	return (size_t)opts->window < cap ? opts->window : (int)cap;
}

/* Buffers start on cache-line boundaries: small messages do not share
 * lines, which would hide nothing but costs false sharing on the host. */
static inline size_t window_stride(size_t size)
{
	return (size + 63) & ~(size_t)63;
}

/* Bytes for one window of the largest footprint among all sizes. */
static inline size_t window_slab_bytes(const struct bench_options *opts)
{
	size_t most = 0;

	for (size_t size = opts->min_size;;) {
		size_t bytes = (size_t)window_for_size(opts, size) *
			       window_stride(size);

		if (bytes > most)
			most = bytes;
		size = bench_next_size(opts, size);
		if (size == 0)
			break;
	}
	return most;
}

#endif
