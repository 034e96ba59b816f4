/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Shared pieces of the vhca MPI benchmarks; see common.h. */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int my_rank;
static const char *program_name = "mpi-bench";

_Noreturn void bench_fail(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s[rank %d]: ", program_name, my_rank);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, status);
	exit(status);	/* MPI_Abort does not return; keeps _Noreturn honest */
}

/* ---- command line ------------------------------------------------------ */

static void usage(FILE *out, bool with_window)
{
	fprintf(out,
		"usage: %s [options]\n"
		"  --min-size N        smallest message (bytes; K, M, G suffixes = 2^10...), default 0\n"
		"  --max-size N        largest message, default 4M; sizes are powers of two in between\n"
		"  --iters N           measured iterations per size (default: scaled with the size)\n"
		"  --warmup N          unmeasured iterations first (default: iters/10, at least 2)\n",
		program_name);
	if (with_window)
		fprintf(out,
			"  --window N          messages in flight, default 64 (capped at 64 MiB per window)\n");
	fprintf(out,
		"  --csv FILE          append one CSV row per size (header when the file is empty)\n"
		"  --label TEXT        configuration label for the CSV (no commas or quotes)\n"
		"  --corrupt-for-test  flip one byte of one message: the payload check must fail\n"
		"  --quiet             no table on stdout\n"
		"Every byte of every message is checked; a mismatch aborts the job with status %d.\n",
		BENCH_EXIT_CORRUPT);
}

/* A size: decimal digits with an optional binary suffix (K, M, G). */
static bool parse_size(const char *text, size_t *out)
{
	char *end;
	unsigned long long value;
	unsigned shift = 0;

	if (text[0] < '0' || text[0] > '9')
		return false;	/* no sign, no blanks */
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno)
		return false;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	default: break;
	}
	if (*end != '\0')
		return false;
	if (value > (BENCH_SIZE_LIMIT >> shift))
		return false;
	*out = (size_t)value << shift;
	return true;
}

static bool parse_count(const char *text, long lowest, long highest, long *out)
{
	char *end;
	long value;

	if (text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	value = strtol(text, &end, 10);
	if (errno || *end != '\0' || value < lowest || value > highest)
		return false;
	*out = value;
	return true;
}

/* Labels go into CSV fields unquoted, so they may not need quoting. */
static bool label_ok(const char *label)
{
	if (!*label || strlen(label) > 128)
		return false;
	for (const char *c = label; *c; c++)
		if (*c == ',' || *c == '"' || *c < ' ' || *c == 0x7f)
			return false;
	return true;
}

static _Noreturn void finish_early(int status)
{
	fflush(stdout);
	fflush(stderr);
	MPI_Finalize();
	exit(status);
}

void bench_init(int *argc, char ***argv, struct bench_options *opts,
		int needed_ranks, bool with_window)
{
	enum { OPT_MIN = 1000, OPT_MAX, OPT_ITERS, OPT_WARMUP, OPT_WINDOW,
	       OPT_CSV, OPT_LABEL, OPT_CORRUPT, OPT_QUIET, OPT_HELP };
	static const struct option long_options[] = {
		{ "min-size", required_argument, NULL, OPT_MIN },
		{ "max-size", required_argument, NULL, OPT_MAX },
		{ "iters", required_argument, NULL, OPT_ITERS },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "corrupt-for-test", no_argument, NULL, OPT_CORRUPT },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int nranks, opt;
	long count;
	const char *problem = NULL;
	char problem_text[256];

	MPI_Init(argc, argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	program_name = opts->name;

	opts->min_size = 0;
	opts->max_size = (size_t)4 << 20;
	opts->iters = 0;
	opts->warmup = -1;
	opts->window = 64;
	opts->csv_path = NULL;
	opts->label = "default";
	opts->corrupt_for_test = false;
	opts->quiet = false;

	opterr = 0;	/* we report errors ourselves, from rank 0 only */
	while (!problem &&
	       (opt = getopt_long(*argc, *argv, "", long_options, NULL)) != -1) {
		switch (opt) {
		case OPT_MIN:
			if (!parse_size(optarg, &opts->min_size))
				problem = "bad --min-size (bytes, optional K, M or G suffix, at most 1G)";
			break;
		case OPT_MAX:
			if (!parse_size(optarg, &opts->max_size))
				problem = "bad --max-size (bytes, optional K, M or G suffix, at most 1G)";
			break;
		case OPT_ITERS:
			if (!parse_count(optarg, 1, 100000000, &opts->iters))
				problem = "bad --iters (1 to 10^8)";
			break;
		case OPT_WARMUP:
			if (!parse_count(optarg, 0, 100000000, &opts->warmup))
				problem = "bad --warmup (0 to 10^8)";
			break;
		case OPT_WINDOW:
			if (!with_window)
				problem = "--window applies to bandwidth benchmarks only";
			else if (!parse_count(optarg, 1, 1024, &count))
				problem = "bad --window (1 to 1024)";
			else
				opts->window = (int)count;
			break;
		case OPT_CSV:
			opts->csv_path = optarg;
			break;
		case OPT_LABEL:
			if (!label_ok(optarg))
				problem = "bad --label (1 to 128 printable characters, no commas or quotes)";
			opts->label = optarg;
			break;
		case OPT_CORRUPT:
			opts->corrupt_for_test = true;
			break;
		case OPT_QUIET:
			opts->quiet = true;
			break;
		case OPT_HELP:
			if (my_rank == 0)
				usage(stdout, with_window);
			finish_early(0);
		default:
			problem = "unknown option or missing argument";
			break;
		}
	}
	if (!problem && optind < *argc)
		problem = "unexpected argument";
	if (!problem && opts->min_size > opts->max_size)
		problem = "--min-size is larger than --max-size";
	if (!problem && needed_ranks && nranks != needed_ranks) {
		snprintf(problem_text, sizeof(problem_text),
			 "needs exactly %d ranks, has %d", needed_ranks, nranks);
		problem = problem_text;
	}
	if (problem) {
		/* Every rank parsed the same arguments, so all stop here. */
		if (my_rank == 0) {
			fprintf(stderr, "%s: %s\n", program_name, problem);
			usage(stderr, with_window);
		}
		finish_early(2);
	}
}

/* ---- sizes and iteration counts ----------------------------------------- */

size_t bench_next_size(const struct bench_options *opts, size_t size)
{
	size_t next;

	if (size == 0)
		next = 1;
	else if (size & (size - 1))	/* a non-power-of-two --min-size */
		next = (size_t)1 << (64 - __builtin_clzll((unsigned long long)size));
	else
		next = size * 2;
	return next <= opts->max_size ? next : 0;
}

long bench_iterations(const struct bench_options *opts, size_t size)
{
	/* Full count up to `knee` bytes, then inversely proportional to the
	 * size (constant bytes per size), never below `floor`. */
	long full, floor_count;
	size_t knee;
	long scaled;

	if (opts->iters)
		return opts->iters;
	switch (opts->kind) {
	case BENCH_BANDWIDTH:	/* iterations are windows of messages */
		full = 100, floor_count = 5, knee = 16 << 10;
		break;
	case BENCH_COLLECTIVE:
		full = 500, floor_count = 10, knee = 16 << 10;
		break;
	case BENCH_LATENCY:
	default:
		full = 1000, floor_count = 20, knee = 16 << 10;
		break;
	}
	if (size <= knee)
		return full;
	scaled = (long)((double)full * (double)knee / (double)size);
	return scaled > floor_count ? scaled : floor_count;
}

long bench_warmup(const struct bench_options *opts, long iters)
{
	if (opts->warmup >= 0)
		return opts->warmup;
	return iters / 10 > 2 ? iters / 10 : 2;
}

void *bench_alloc(size_t size)
{
	void *buf = NULL;
	int err = posix_memalign(&buf, 4096, size ? size : 1);

	if (err)
		bench_fail(1, "cannot allocate %zu bytes: %s", size, strerror(err));
	memset(buf, 0, size ? size : 1);	/* touch: no page faults while timed */
	return buf;
}

/* ---- the payload pattern ------------------------------------------------ */

/* splitmix64's finalizer: every input bit affects every output bit, so
 * nearby (size, message, sender) triples get unrelated patterns. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t pattern_seed(size_t size, uint64_t msg, int sender)
{
	return mix64(mix64(mix64((uint64_t)size) ^ msg) ^
		     ((uint64_t)(unsigned)sender + 1) * 0x9e3779b97f4a7c15ULL);
}

/* Word k of the pattern (bytes 8k..8k+7, little-endian order): cheap
 * enough to fill and check 4 MiB messages at memory speed, and different
 * in every byte position from its neighbours, so shifted, repeated or
 * stale data does not pass. */
static inline uint64_t pattern_word(uint64_t seed, size_t k)
{
	uint64_t w = seed + (uint64_t)k * 0x9e3779b97f4a7c15ULL;

	return w ^ (w >> 29);
}

static inline void word_to_bytes(uint64_t w, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)(w >> (8 * i));
}

void pattern_bytes(unsigned char *out, size_t size, uint64_t msg, int sender)
{
	uint64_t seed = pattern_seed(size, msg, sender);
	size_t words = size / 8;

	for (size_t k = 0; k < words; k++) {
		uint64_t w = pattern_word(seed, k);
		unsigned char bytes[8];

		word_to_bytes(w, bytes, 8);
		memcpy(out + 8 * k, bytes, 8);
	}
	word_to_bytes(pattern_word(seed, words), out + 8 * words, size % 8);
}

void pattern_fill(void *buf, size_t size, uint64_t msg, int sender,
		  double *check_seconds)
{
	double start = check_seconds ? MPI_Wtime() : 0;

	pattern_bytes(buf, size, msg, sender);
	if (check_seconds)
		*check_seconds += MPI_Wtime() - start;
}

static _Noreturn void report_mismatch(const unsigned char *got, size_t size,
				      uint64_t msg, int sender,
				      const char *what)
{
	uint64_t seed = pattern_seed(size, msg, sender);
	size_t first_bad = SIZE_MAX, bad_bytes = 0;
	unsigned char expected_first = 0;

	for (size_t i = 0; i < size; i++) {
		unsigned char expected =
			(unsigned char)(pattern_word(seed, i / 8) >> (8 * (i % 8)));

		if (got[i] != expected) {
			if (first_bad == SIZE_MAX) {
				first_bad = i;
				expected_first = expected;
			}
			bad_bytes++;
		}
	}
	bench_fail(BENCH_EXIT_CORRUPT,
		   "PAYLOAD MISMATCH in %s: size %zu, message %" PRIu64
		   ", sender rank %d: first bad byte at offset %zu "
		   "(got 0x%02x, expected 0x%02x), %zu bad byte(s)",
		   what, size, msg, sender, first_bad, got[first_bad],
		   expected_first, bad_bytes);
}

void pattern_check(const void *buf, size_t size, uint64_t msg, int sender,
		   const char *what, double *check_seconds)
{
	double start = check_seconds ? MPI_Wtime() : 0;
	const unsigned char *bytes = buf;
	uint64_t seed = pattern_seed(size, msg, sender);
	size_t words = size / 8;
	unsigned char tail[8];

	/* Fast path compares whole words; the slow path finds the details. */
	for (size_t k = 0; k < words; k++) {
		uint64_t got, want = pattern_word(seed, k);
		unsigned char want_bytes[8];

		word_to_bytes(want, want_bytes, 8);
		memcpy(&got, bytes + 8 * k, 8);
		if (memcmp(&got, want_bytes, 8) != 0)
			report_mismatch(bytes, size, msg, sender, what);
	}
	word_to_bytes(pattern_word(seed, words), tail, size % 8);
	if (memcmp(bytes + 8 * words, tail, size % 8) != 0)
		report_mismatch(bytes, size, msg, sender, what);
	if (check_seconds)
		*check_seconds += MPI_Wtime() - start;
}

void bench_check_count(const MPI_Status *status, size_t size,
		       const char *what)
{
	int count = -1;

	MPI_Get_count(status, MPI_BYTE, &count);
	if (count < 0 || (size_t)count != size)
		bench_fail(BENCH_EXIT_CORRUPT,
			   "LENGTH MISMATCH in %s: received %d bytes, expected %zu",
			   what, count, size);
}

bool bench_maybe_corrupt(const struct bench_options *opts, void *buf,
			 size_t size, uint64_t msg, int sender)
{
	size_t first_nonempty = opts->min_size ? opts->min_size
					       : bench_next_size(opts, 0);

	if (!opts->corrupt_for_test || sender != 0 || msg != 0 || size == 0 ||
	    size != first_nonempty)
		return false;
	((unsigned char *)buf)[size / 2] ^= 0xff;
	fprintf(stderr, "%s[rank %d]: --corrupt-for-test: flipped byte %zu of "
		"message 0 of size %zu\n", program_name, my_rank, size / 2, size);
	return true;
}

/* ---- output --------------------------------------------------------------- */

static const char csv_header[] =
	"benchmark,label,ranks,size_bytes,iterations,latency_us,"
	"min_latency_us,max_latency_us,bandwidth_MBps,bandwidth_Gbps\n";

void bench_print_header(const struct bench_options *opts, int nranks)
{
	if (my_rank != 0 || opts->quiet)
		return;
	printf("# %s  label=%s  ranks=%d  (every byte of every message checked;"
	       " check time excluded)\n", opts->name, opts->label, nranks);
	if (opts->kind == BENCH_COLLECTIVE)
		printf("%10s %8s %12s %12s %12s %12s %10s\n", "size", "iters",
		       "avg_us", "min_us", "max_us", "MB/s", "Gb/s");
	else if (opts->kind == BENCH_BANDWIDTH)
		printf("%10s %8s %12s %10s %12s\n", "size", "windows", "MB/s",
		       "Gb/s", "us/msg");
	else
		printf("%10s %8s %12s %12s %10s\n", "size", "iters",
		       "latency_us", "MB/s", "Gb/s");
	fflush(stdout);
}

void bench_report_messages(const struct bench_options *opts, int nranks,
			   size_t size, long iters, double messages,
			   double seconds)
{
	struct bench_result result = { .size = size, .iters = iters };

	result.latency_us = seconds / messages * 1e6;
	result.min_latency_us = result.max_latency_us = result.latency_us;
	result.bandwidth_mbps =
		result.latency_us > 0 ? (double)size / result.latency_us : 0;
	bench_report(opts, nranks, &result);
}

void bench_report(const struct bench_options *opts, int nranks,
		  const struct bench_result *r)
{
	double gbps = r->bandwidth_mbps * 8 / 1000;

	if (my_rank != 0)
		return;
	if (!opts->quiet) {
		if (opts->kind == BENCH_COLLECTIVE)
			printf("%10zu %8ld %12.2f %12.2f %12.2f %12.2f %10.3f\n",
			       r->size, r->iters, r->latency_us,
			       r->min_latency_us, r->max_latency_us,
			       r->bandwidth_mbps, gbps);
		else if (opts->kind == BENCH_BANDWIDTH)
			printf("%10zu %8ld %12.2f %10.3f %12.2f\n", r->size,
			       r->iters, r->bandwidth_mbps, gbps, r->latency_us);
		else
			printf("%10zu %8ld %12.2f %12.2f %10.3f\n", r->size,
			       r->iters, r->latency_us, r->bandwidth_mbps, gbps);
		fflush(stdout);
	}
	if (opts->csv_path) {
		FILE *csv = fopen(opts->csv_path, "a");

		if (!csv)
			bench_fail(1, "cannot open %s: %s", opts->csv_path,
				   strerror(errno));
		/* "a" leaves the position unspecified until the first write. */
		if (fseek(csv, 0, SEEK_END) == 0 && ftell(csv) == 0)
			fputs(csv_header, csv);
		fprintf(csv, "%s,%s,%d,%zu,%ld,%.3f,%.3f,%.3f,%.3f,%.4f\n",
			opts->name, opts->label, nranks, r->size, r->iters,
			r->latency_us, r->min_latency_us, r->max_latency_us,
			r->bandwidth_mbps, gbps);
		if (fclose(csv) != 0)
			bench_fail(1, "cannot write %s: %s", opts->csv_path,
				   strerror(errno));
	}
}
