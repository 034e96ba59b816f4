/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Uni-directional bandwidth: rank 0 keeps a window of non-blocking sends in
 * flight to rank 1, which has the matching receives posted; after each
 * window rank 1 checks every message and answers with a zero-byte
 * acknowledgement, and rank 0 starts the next window.
 *
 * Every message in a window has its own buffer and its own pattern
 * (size, window * W + k, 0).  Rank 0 fills a window before it starts that
 * window's clock; rank 1's checks run inside rank 0's clock (before the
 * acknowledgement), so rank 1 measures them and rank 0 subtracts them.
 */
#include "common.h"
#include "window.h"

enum { TAG_DATA = 1, TAG_ACK = 2 };

int main(int argc, char **argv)
{
	struct bench_options opts = { .name = "mpi_bandwidth",
				      .kind = BENCH_BANDWIDTH };
	int rank, nranks;
	unsigned char *slab;
	MPI_Request *requests;
	MPI_Status *statuses;

	bench_init(&argc, &argv, &opts, 2, true);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	/* Rank 0 needs send buffers, rank 1 receive buffers. */
	slab = bench_alloc(window_slab_bytes(&opts));
	requests = bench_alloc(sizeof(*requests) * (size_t)opts.window);
	statuses = bench_alloc(sizeof(*statuses) * (size_t)opts.window);
	bench_print_header(&opts, nranks);

	for (size_t size = opts.min_size;;) {
		long iters = bench_iterations(&opts, size);
		long warmup = bench_warmup(&opts, iters);
		int window = window_for_size(&opts, size);
		size_t stride = window_stride(size);
		double check_seconds = 0, timed = 0, receiver_checks = 0;

		MPI_Barrier(MPI_COMM_WORLD);
		for (long w = 0; w < warmup + iters; w++) {
			uint64_t first_msg = (uint64_t)w * (uint64_t)window;

			if (w == warmup)
				check_seconds = timed = 0;
			if (rank == 0) {
				double t0;

				for (int k = 0; k < window; k++) {
					pattern_fill(slab + k * stride, size,
						     first_msg + k, 0, NULL);
					bench_maybe_corrupt(&opts, slab + k * stride,
							    size, first_msg + k, 0);
				}
				t0 = MPI_Wtime();
				for (int k = 0; k < window; k++)
					MPI_Isend(slab + k * stride, (int)size,
						  MPI_BYTE, 1, TAG_DATA,
						  MPI_COMM_WORLD, &requests[k]);
				MPI_Waitall(window, requests, MPI_STATUSES_IGNORE);
				MPI_Recv(NULL, 0, MPI_BYTE, 1, TAG_ACK,
					 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				timed += MPI_Wtime() - t0;
			} else {
				for (int k = 0; k < window; k++)
					MPI_Irecv(slab + k * stride, (int)size,
						  MPI_BYTE, 0, TAG_DATA,
						  MPI_COMM_WORLD, &requests[k]);
				MPI_Waitall(window, requests, statuses);
				for (int k = 0; k < window; k++) {
					bench_check_count(&statuses[k], size,
							  "windowed send");
					pattern_check(slab + k * stride, size,
						      first_msg + k, 0,
						      "windowed send (rank 0 -> 1)",
						      &check_seconds);
				}
				MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_ACK,
					 MPI_COMM_WORLD);
			}
		}
		/* Rank 1's measured checks, to rank 0. */
		MPI_Reduce(&check_seconds, &receiver_checks, 1, MPI_DOUBLE,
			   MPI_SUM, 0, MPI_COMM_WORLD);
		if (rank == 0) {
			double net = timed - receiver_checks;

			bench_report_messages(&opts, nranks, size, iters,
					      (double)iters * window,
					      net <= 0 ? 1e-9 : net);
		}
		size = bench_next_size(&opts, size);
		if (size == 0)
			break;
	}
	MPI_Finalize();
	return 0;
}
