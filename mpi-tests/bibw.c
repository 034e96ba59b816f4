/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Bi-directional bandwidth: ranks 0 and 1 each keep a window of
 * non-blocking sends in flight to the other while receiving the other's
 * window; bandwidth counts the bytes of both directions.
 *
 * Per window each rank posts its receives, fills its send buffers
 * (pattern (size, window * W + k, own rank)), then both exchange a zero-byte
 * "ready" message; only the exchange of data after that is timed, and the
 * received window is checked after the clock stops.  So neither rank's
 * filling or checking is ever inside a clock, and no subtraction is needed.
 * The slower rank's clock is reported.
 */
#include "common.h"
#include "window.h"

enum { TAG_DATA = 1, TAG_READY = 2 };

int main(int argc, char **argv)
{
	struct bench_options opts = { .name = "mpi_bibw",
				      .kind = BENCH_BANDWIDTH };
	int rank, nranks, peer;
	unsigned char *send_slab, *recv_slab;
	MPI_Request *requests;
	MPI_Status *statuses;

	bench_init(&argc, &argv, &opts, 2, true);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	peer = 1 - rank;
	send_slab = bench_alloc(window_slab_bytes(&opts));
	recv_slab = bench_alloc(window_slab_bytes(&opts));
	/* Receives first, then sends: 2 x window requests. */
	requests = bench_alloc(sizeof(*requests) * 2 * (size_t)opts.window);
	statuses = bench_alloc(sizeof(*statuses) * 2 * (size_t)opts.window);
	bench_print_header(&opts, nranks);

	for (size_t size = opts.min_size;;) {
		long iters = bench_iterations(&opts, size);
		long warmup = bench_warmup(&opts, iters);
		int window = window_for_size(&opts, size);
		size_t stride = window_stride(size);
		double timed = 0, slowest = 0;

		MPI_Barrier(MPI_COMM_WORLD);
		for (long w = 0; w < warmup + iters; w++) {
			uint64_t first_msg = (uint64_t)w * (uint64_t)window;
			double t0;

			if (w == warmup)
				timed = 0;
			for (int k = 0; k < window; k++)
				MPI_Irecv(recv_slab + k * stride, (int)size,
					  MPI_BYTE, peer, TAG_DATA, MPI_COMM_WORLD,
					  &requests[k]);
			for (int k = 0; k < window; k++) {
				pattern_fill(send_slab + k * stride, size,
					     first_msg + k, rank, NULL);
				bench_maybe_corrupt(&opts, send_slab + k * stride,
						    size, first_msg + k, rank);
			}
			MPI_Sendrecv(NULL, 0, MPI_BYTE, peer, TAG_READY, NULL, 0,
				     MPI_BYTE, peer, TAG_READY, MPI_COMM_WORLD,
				     MPI_STATUS_IGNORE);
			t0 = MPI_Wtime();
			for (int k = 0; k < window; k++)
				MPI_Isend(send_slab + k * stride, (int)size,
					  MPI_BYTE, peer, TAG_DATA, MPI_COMM_WORLD,
					  &requests[window + k]);
			MPI_Waitall(2 * window, requests, statuses);
			timed += MPI_Wtime() - t0;
			for (int k = 0; k < window; k++) {
				bench_check_count(&statuses[k], size, "bibw");
				pattern_check(recv_slab + k * stride, size,
					      first_msg + k, peer,
					      rank == 0 ? "bibw (rank 1 -> 0)"
							: "bibw (rank 0 -> 1)",
					      NULL);
			}
		}
		MPI_Reduce(&timed, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0,
			   MPI_COMM_WORLD);
		/* Both directions' messages, in the slower rank's time. */
		if (rank == 0)
			bench_report_messages(&opts, nranks, size, iters,
					      2.0 * (double)iters * window,
					      slowest <= 0 ? 1e-9 : slowest);
		size = bench_next_size(&opts, size);
		if (size == 0)
			break;
	}
	MPI_Finalize();
	return 0;
}
