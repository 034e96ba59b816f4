/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Point-to-point latency: ping-pong between ranks 0 and 1 with blocking
 * MPI_Send/MPI_Recv; latency = half the round trip.
 *
 * Both directions carry a checked pattern: rank 0 sends message i with
 * pattern (size, i, 0), rank 1 answers with (size, i, 1).  A round trip is
 * strictly serial (fill, send, receive, check, fill, send, receive, check),
 * so the time both ranks spend filling and checking lies on the critical
 * path; each rank measures its own share and rank 0 subtracts the sum.
 */
#include "common.h"

enum { TAG_PING = 1, TAG_PONG = 2 };

int main(int argc, char **argv)
{
	struct bench_options opts = { .name = "mpi_latency",
				      .kind = BENCH_LATENCY };
	int rank, nranks;
	unsigned char *send_buf, *recv_buf;

	bench_init(&argc, &argv, &opts, 2, false);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	send_buf = bench_alloc(opts.max_size);
	recv_buf = bench_alloc(opts.max_size);
	bench_print_header(&opts, nranks);

	for (size_t size = opts.min_size;;) {
		long iters = bench_iterations(&opts, size);
		long warmup = bench_warmup(&opts, iters);
		double check_seconds = 0, start = 0, elapsed, all_checks = 0;
		MPI_Status status;

		MPI_Barrier(MPI_COMM_WORLD);
		for (long i = 0; i < warmup + iters; i++) {
			uint64_t msg = (uint64_t)i;

			if (i == warmup) {
				check_seconds = 0;
				start = MPI_Wtime();
			}
			if (rank == 0) {
				pattern_fill(send_buf, size, msg, 0, &check_seconds);
				bench_maybe_corrupt(&opts, send_buf, size, msg, 0);
				MPI_Send(send_buf, (int)size, MPI_BYTE, 1, TAG_PING,
					 MPI_COMM_WORLD);
				MPI_Recv(recv_buf, (int)size, MPI_BYTE, 1, TAG_PONG,
					 MPI_COMM_WORLD, &status);
				bench_check_count(&status, size, "pong");
				pattern_check(recv_buf, size, msg, 1, "pong (rank 1 -> 0)",
					      &check_seconds);
			} else {
				MPI_Recv(recv_buf, (int)size, MPI_BYTE, 0, TAG_PING,
					 MPI_COMM_WORLD, &status);
				bench_check_count(&status, size, "ping");
				pattern_check(recv_buf, size, msg, 0, "ping (rank 0 -> 1)",
					      &check_seconds);
				pattern_fill(send_buf, size, msg, 1, &check_seconds);
				MPI_Send(send_buf, (int)size, MPI_BYTE, 0, TAG_PONG,
					 MPI_COMM_WORLD);
			}
		}
		elapsed = MPI_Wtime() - start;
		MPI_Reduce(&check_seconds, &all_checks, 1, MPI_DOUBLE, MPI_SUM, 0,
			   MPI_COMM_WORLD);
		if (rank == 0) {
			double net = elapsed - all_checks;

			/* A ping-pong iteration is two one-way messages. */
			bench_report_messages(&opts, nranks, size, iters,
					      2.0 * (double)iters,
					      net < 0 ? 0 : net);
		}
		size = bench_next_size(&opts, size);
		if (size == 0)
			break;
	}
	MPI_Finalize();
	return 0;
}
