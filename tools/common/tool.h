/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What vhca-guest and vhca-vm share besides the VF (vf.h): how they fail.
 * Both exit with 125 when they themselves fail (usage, no such VF, the VF
 * owned by another guest, setup), as env(1) and timeout(1) do, so that
 * the status of CMD stays CMD's.
 */
#ifndef VHCA_TOOL_H
#define VHCA_TOOL_H

#define TOOL_EXIT_FAILED 125

/* The program's name for its messages; each program defines it. */
extern const char tool_name[];

/* "<tool_name>: <message>" on stderr, then exit(TOOL_EXIT_FAILED). */
_Noreturn void tool_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* The message, a hint at --help, then exit(TOOL_EXIT_FAILED). */
_Noreturn void tool_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* getopt_long's ':' (missing value) or anything else it did not know. */
_Noreturn void tool_bad_option(int c, char **argv);
/* The message without exiting. */
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "dir/name", freshly allocated (tool_fail on no memory). */
char *tool_path_join(const char *dir, const char *name);

#endif /* VHCA_TOOL_H */
