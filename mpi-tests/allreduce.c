/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Allreduce latency, any number of ranks: MPI_Allreduce of `size` bytes
 * with MPI_BXOR on MPI_BYTE (any single damaged byte changes the result).
 * Not MPI_SUM on MPI_UNSIGNED_CHAR: Open MPI 4.1's AVX reduction adds
 * 8-bit values with saturation instead of wrapping (open-mpi/ompi#8045,
 * "wontfix"), so byte sums that overflow come out as 0xff; the check
 * caught exactly that during development.
 *
 * Call i of rank r contributes pattern (size, i, r); every rank checks every
 * byte of the result against the XOR of all ranks' patterns.  Filling and
 * checking happen before a barrier that precedes each timed call, so they
 * never run inside anyone's clock.  Reported: the mean over ranks of each
 * rank's mean time per call, and the fastest and slowest rank's mean.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* expected[] = XOR over all ranks of their pattern for call `msg`. */
static void expected_xor(unsigned char *expected, unsigned char *scratch,
			 size_t size, uint64_t msg, int nranks)
{
	memset(expected, 0, size);
	for (int r = 0; r < nranks; r++) {
		pattern_bytes(scratch, size, msg, r);
		for (size_t i = 0; i < size; i++)
			expected[i] ^= scratch[i];
	}
}

static void check_result(const unsigned char *got,
			 const unsigned char *expected, size_t size,
			 uint64_t msg, int nranks)
{
	size_t first_bad = SIZE_MAX, bad_bytes = 0;

	if (memcmp(got, expected, size) == 0)
		return;
	for (size_t i = 0; i < size; i++) {
		if (got[i] != expected[i]) {
			if (first_bad == SIZE_MAX)
				first_bad = i;
			bad_bytes++;
		}
	}
	bench_fail(BENCH_EXIT_CORRUPT,
		   "PAYLOAD MISMATCH in allreduce result: size %zu, call %" PRIu64
		   ", %d ranks: first bad byte at offset %zu (got 0x%02x, "
		   "expected 0x%02x), %zu bad byte(s)",
		   size, msg, nranks, first_bad, got[first_bad],
		   expected[first_bad], bad_bytes);
}

int main(int argc, char **argv)
{
	struct bench_options opts = { .name = "mpi_allreduce",
				      .kind = BENCH_COLLECTIVE };
	int rank, nranks;
	unsigned char *send_buf, *recv_buf, *expected, *scratch;

	bench_init(&argc, &argv, &opts, 0, false);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	send_buf = bench_alloc(opts.max_size);
	recv_buf = bench_alloc(opts.max_size);
	expected = bench_alloc(opts.max_size);
	scratch = bench_alloc(opts.max_size);
	bench_print_header(&opts, nranks);

	for (size_t size = opts.min_size;;) {
		long iters = bench_iterations(&opts, size);
		long warmup = bench_warmup(&opts, iters);
		double timed = 0, mine_us, sum_us = 0, min_us = 0, max_us = 0;

		for (long i = 0; i < warmup + iters; i++) {
			uint64_t msg = (uint64_t)i;
			double t0;

			if (i == warmup)
				timed = 0;
			pattern_fill(send_buf, size, msg, rank, NULL);
			bench_maybe_corrupt(&opts, send_buf, size, msg, rank);
			/* Poison the result so a call that writes nothing fails. */
			memset(recv_buf, 0xa5, size);
			MPI_Barrier(MPI_COMM_WORLD);
			t0 = MPI_Wtime();
			MPI_Allreduce(send_buf, recv_buf, (int)size,
				      MPI_BYTE, MPI_BXOR, MPI_COMM_WORLD);
			timed += MPI_Wtime() - t0;
			expected_xor(expected, scratch, size, msg, nranks);
			check_result(recv_buf, expected, size, msg, nranks);
		}
		mine_us = timed / (double)iters * 1e6;
		MPI_Reduce(&mine_us, &sum_us, 1, MPI_DOUBLE, MPI_SUM, 0,
			   MPI_COMM_WORLD);
		MPI_Reduce(&mine_us, &min_us, 1, MPI_DOUBLE, MPI_MIN, 0,
			   MPI_COMM_WORLD);
		MPI_Reduce(&mine_us, &max_us, 1, MPI_DOUBLE, MPI_MAX, 0,
			   MPI_COMM_WORLD);
		if (rank == 0) {
			struct bench_result result = {
				.size = size, .iters = iters,
				.latency_us = sum_us / nranks,
				.min_latency_us = min_us, .max_latency_us = max_us,
			};

			result.bandwidth_mbps = result.latency_us > 0
				? (double)size / result.latency_us : 0;
			bench_report(&opts, nranks, &result);
		}
		size = bench_next_size(&opts, size);
		if (size == 0)
			break;
	}
	MPI_Finalize();
	return 0;
}
