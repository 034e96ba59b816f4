// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Messages and exits shared by vhca-guest and vhca-vm (tool.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tool.h"

static void print_message(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", tool_name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
}

_Noreturn void tool_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_message(fmt, ap);
	va_end(ap);
	exit(TOOL_EXIT_FAILED);
}

_Noreturn void tool_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_message(fmt, ap);
	va_end(ap);
	fprintf(stderr, "(%s --help for usage)\n", tool_name);
	exit(TOOL_EXIT_FAILED);
}

_Noreturn void tool_bad_option(int c, char **argv)
{
	if (c == ':')
		tool_usage_error("%s needs a value", argv[optind - 1]);
	if (optopt)
		tool_usage_error("unknown option '-%c'", optopt);
	tool_usage_error("unknown option '%s'", argv[optind - 1]);
}

void tool_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_message(fmt, ap);
	va_end(ap);
}

char *tool_path_join(const char *dir, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		tool_fail("out of memory");
	return path;
}
