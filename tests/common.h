/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Small assertion helpers shared by the C tests. */
#ifndef VHCA_TESTS_COMMON_H
#define VHCA_TESTS_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern unsigned int test_passed, test_failed;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (cond) {                                                  \
			test_passed++;                                       \
		} else {                                                     \
			test_failed++;                                       \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

/* A check without which the rest of the test makes no sense. */
#define REQUIRE(cond, ...)                                                   \
	do {                                                                 \
		int require_ok_ = !!(cond);                                  \
		CHECK(require_ok_, __VA_ARGS__);                             \
		if (!require_ok_)                                            \
			exit((test_report(), 1));                         \
	} while (0)

#define TEST_COUNTERS unsigned int test_passed, test_failed

/* Prints the closing line ctest-style runners read; returns exit status. */
static inline int test_report(void)
{
	printf("%u passed, %u failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}

#endif
