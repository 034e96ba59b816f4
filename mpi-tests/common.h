/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Shared pieces of the vhca MPI benchmarks: command line, message sizes and
 * iteration counts, the payload pattern every message carries and its
 * byte-by-byte check, timing of the checks, and the result output (a table
 * on stdout and CSV rows).
 *
 * Every benchmark fills each message it sends with a pattern that depends on
 * (message size, message number, sending rank) and the receiver checks every
 * byte.  A mismatch prints where it is and aborts the whole job with
 * MPI_Abort, so a benchmark never reports a number for data that arrived
 * wrong.  Time spent filling and checking is measured and kept out of the
 * reported latency and bandwidth (see each benchmark for how).
 */
#ifndef VHCA_MPI_COMMON_H
#define VHCA_MPI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

/* Largest message a benchmark accepts: far above the 4 MiB default, low
 * enough that a window of buffers still fits in memory. */
#define BENCH_SIZE_LIMIT ((size_t)1 << 30)

/* Exit status of a run whose payload check failed (also passed to
 * MPI_Abort, so mpirun reports it). */
#define BENCH_EXIT_CORRUPT 3

enum bench_kind {
	BENCH_LATENCY,		/* one-way latency; bandwidth derived from it */
	BENCH_BANDWIDTH,	/* throughput; latency = time per message */
	BENCH_COLLECTIVE,	/* time per collective call */
};

struct bench_options {
	const char *name;	/* benchmark name (CSV "benchmark" column) */
	enum bench_kind kind;
	size_t min_size;
	size_t max_size;
	long iters;		/* 0: scale with size (bench_iterations) */
	long warmup;		/* -1: scale with the iteration count */
	int window;		/* messages in flight (bandwidth benchmarks) */
	const char *csv_path;	/* NULL: no CSV */
	const char *label;	/* configuration label for the CSV */
	bool corrupt_for_test;	/* flip one payload byte: the check must fail */
	bool quiet;		/* no table on stdout */
};

/* One measured message size, as reported (filled in on rank 0). */
struct bench_result {
	size_t size;
	long iters;
	double latency_us;	/* per message (or per collective call) */
	double min_latency_us;	/* collectives: fastest / slowest rank */
	double max_latency_us;
	double bandwidth_mbps;	/* 10^6 bytes per second */
};

/*
 * Initializes MPI, parses the command line (exits with status 2 and a usage
 * message on bad input, on every rank alike), and checks the job has
 * exactly `needed_ranks` ranks (0: any number of at least one).
 * `with_window` accepts --window.
 */
void bench_init(int *argc, char ***argv, struct bench_options *opts,
		int needed_ranks, bool with_window);

/* Iteration and warm-up counts for one size: the user's, or scaled so that
 * large messages do not dominate the run time. */
long bench_iterations(const struct bench_options *opts, size_t size);
long bench_warmup(const struct bench_options *opts, long iters);

/* The sizes: min_size, then powers of two up to max_size (0 is its own
 * step when min_size is 0).  Returns the size after `size`, or 0 when done. */
size_t bench_next_size(const struct bench_options *opts, size_t size);

/* Page-aligned buffer of `size` bytes (at least one byte); aborts if memory
 * runs out. */
void *bench_alloc(size_t size);

/*
 * The payload pattern: byte i of message number `msg` of `size` bytes sent
 * by rank `sender`.  Fill writes it; check verifies every byte and, on a
 * mismatch, prints the first differing byte, the number of bad bytes and
 * the message's identity (`what` says which benchmark step), then aborts
 * the job.  Both add their duration to *check_seconds (when not NULL) so
 * the benchmark can keep it out of its timing.
 */
void pattern_fill(void *buf, size_t size, uint64_t msg, int sender,
		  double *check_seconds);
void pattern_check(const void *buf, size_t size, uint64_t msg, int sender,
		   const char *what, double *check_seconds);
/* Byte i of the pattern, for checks of combined data (allreduce). */
void pattern_bytes(unsigned char *out, size_t size, uint64_t msg, int sender);

/* Aborts the job unless the receive described by `status` carried exactly
 * `size` bytes (a short message would otherwise leave stale bytes). */
void bench_check_count(const MPI_Status *status, size_t size,
		       const char *what);

/* --corrupt-for-test: flips one byte of this message when it is the one
 * chosen to be damaged (the first non-empty message rank 0 sends in the
 * measured loop of the first size).  Returns true if it flipped. */
bool bench_maybe_corrupt(const struct bench_options *opts, void *buf,
			 size_t size, uint64_t msg, int sender);

/* Prints the table header (rank 0). */
void bench_print_header(const struct bench_options *opts, int nranks);
/* Prints one table row and appends one CSV row (rank 0). */
void bench_report(const struct bench_options *opts, int nranks,
		  const struct bench_result *result);
/*
 * Reports a point-to-point size: @messages of @size bytes took @seconds
 * (latency per message; bandwidth 0 if no time was measured).
 */
void bench_report_messages(const struct bench_options *opts, int nranks,
			   size_t size, long iters, double messages,
			   double seconds);

/* Prints a message prefixed with the rank and aborts the job. */
_Noreturn void bench_fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
