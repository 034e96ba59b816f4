// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Records of the control port (proto.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "tool.h"

void proto_reader_init(struct proto_reader *r, int fd)
{
	*r = (struct proto_reader){ .fd = fd, .buf = malloc(PROTO_RECORD_MAX) };
	if (!r->buf)
		tool_fail("out of memory");
}

ssize_t proto_fill(struct proto_reader *r)
{
	ssize_t n;

	/* Records already taken make room for the next ones. */
	if (r->start) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->len == PROTO_RECORD_MAX)
		tool_fail("a control record longer than %d bytes",
			  PROTO_RECORD_MAX);
	n = read(r->fd, r->buf + r->len, PROTO_RECORD_MAX - r->len);
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

const char *proto_next(struct proto_reader *r, const char **key)
{
	char *rec = r->buf + r->start, *end, *eq;

	end = memchr(rec, '\0', r->len - r->start);
	if (!end)
		return NULL;
	r->start += (size_t)(end - rec) + 1;
	*key = rec;
	eq = strchr(rec, '=');
	if (!eq)
		return "";
	*eq = '\0';
	return eq + 1;
}

void proto_put(struct proto_writer *w, const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = value ? strlen(value) + 1 : 0;
	size_t need = klen + vlen + 1;

	if (w->len + need > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;

		while (cap < w->len + need)
			cap *= 2;
		w->buf = realloc(w->buf, cap);
		if (!w->buf)
			tool_fail("out of memory");
		w->cap = cap;
	}
	memcpy(w->buf + w->len, key, klen);
	w->len += klen;
	if (value) {
		w->buf[w->len++] = '=';
		memcpy(w->buf + w->len, value, vlen - 1);
		w->len += vlen - 1;
	}
	w->buf[w->len++] = '\0';
}

bool proto_flush(struct proto_writer *w)
{
	while (w->sent < w->len) {
		ssize_t n = write(w->fd, w->buf + w->sent, w->len - w->sent);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		w->sent += (size_t)n;
	}
	w->len = w->sent = 0;
	return true;
}

bool proto_pending(const struct proto_writer *w)
{
	return w->sent < w->len;
}
