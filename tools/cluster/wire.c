// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vhca-agent's frames and handshake proofs (agent.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "agent.h"

#define HEADER_LEN 5

long long agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ---- output --------------------------------------------------------------------- */

void agent_queue_bytes(struct agent_queue *q, const void *data, size_t len)
{
	/* What was sent makes room first. */
	if (q->off) {
		memmove(q->buf, q->buf + q->off, q->len - q->off);
		q->len -= q->off;
		q->off = 0;
	}
	if (q->len + len > q->cap) {
		size_t cap = q->cap ? q->cap : 4096;

		while (cap < q->len + len)
			cap *= 2;
		q->buf = realloc(q->buf, cap);
		if (!q->buf)
			tool_fail("out of memory");
		q->cap = cap;
	}
	if (len)
		memcpy(q->buf + q->len, data, len);
	q->len += len;
}

void agent_queue_frame(struct agent_queue *q, int type, const void *data, size_t len)
{
	uint32_t be = htonl((uint32_t)len);
	char header[HEADER_LEN] = { (char)type };

	memcpy(header + 1, &be, 4);
	agent_queue_bytes(q, header, sizeof(header));
	agent_queue_bytes(q, data, len);
}

bool agent_queue_flush(struct agent_queue *q, int fd)
{
	while (q->off < q->len) {
		ssize_t n = write(fd, q->buf + q->off, q->len - q->off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		q->off += (size_t)n;
	}
	q->off = q->len = 0;
	return true;
}

bool agent_write_frame(int fd, int type, const void *data, size_t len)
{
	struct agent_queue q = { 0 };
	bool ok;

	agent_queue_frame(&q, type, data, len);
	ok = agent_queue_flush(&q, fd) && !agent_queue_pending(&q);
	free(q.buf);
	return ok;
}

/* ---- input ---------------------------------------------------------------------- */

void agent_reader_init(struct agent_reader *r, size_t max_payload)
{
	r->max = max_payload + HEADER_LEN;
	r->len = r->consumed = 0;
	r->buf = malloc(r->max);
	if (!r->buf)
		tool_fail("out of memory");
}

static size_t frame_len(const struct agent_reader *r)
{
	uint32_t be;

	memcpy(&be, r->buf + 1, 4);
	return ntohl(be);
}

ssize_t agent_reader_fill(struct agent_reader *r, int fd)
{
	ssize_t n;

	if (r->consumed) {
		memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
		r->len -= r->consumed;
		r->consumed = 0;
	}
	if (r->len == r->max) {
		errno = EMSGSIZE;
		return -1;
	}
	do
		n = read(fd, r->buf + r->len, r->max - r->len);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

int agent_reader_next(struct agent_reader *r, const char **data, size_t *len)
{
	size_t payload;

	if (r->consumed) {
		memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
		r->len -= r->consumed;
		r->consumed = 0;
	}
	if (r->len < HEADER_LEN)
		return 0;
	payload = frame_len(r);
	if (payload > r->max - HEADER_LEN)
		return -1;
	if (r->len < HEADER_LEN + payload)
		return 0;
	*data = r->buf + HEADER_LEN;
	*len = payload;
	r->consumed = HEADER_LEN + payload;
	return (unsigned char)r->buf[0];
}

int agent_read_frame(struct agent_reader *r, int fd, long long deadline_ms,
		     const char **data, size_t *len)
{
	for (;;) {
		int type = agent_reader_next(r, data, len);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline_ms - agent_now_ms();
		ssize_t n;

		if (type)
			return type;
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		n = agent_reader_fill(r, fd);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return -1;
	}
}

/* ---- the handshake's proofs ----------------------------------------------------- */

bool agent_parse_key(const char *text, unsigned char key[AGENT_KEY_LEN])
{
	size_t len = strlen(text);

	if (len && text[len - 1] == '\n')
		len--;
	if (len != 2 * AGENT_KEY_LEN)
		return false;
	for (size_t i = 0; i < AGENT_KEY_LEN; i++) {
		unsigned int byte;
		char pair[3] = { text[2 * i], text[2 * i + 1], 0 };

		if (!strchr("0123456789abcdefABCDEF", pair[0]) ||
		    !strchr("0123456789abcdefABCDEF", pair[1]) ||
		    sscanf(pair, "%2x", &byte) != 1)
			return false;
		key[i] = (unsigned char)byte;
	}
	return true;
}

void agent_mac(const unsigned char key[AGENT_KEY_LEN], const char *label,
	       const unsigned char *a, const unsigned char *b,
	       const char *command, unsigned char mac[AGENT_MAC_LEN])
{
	size_t label_len = strlen(label), cmd_len = command ? strlen(command) : 0;
	size_t len = label_len + 2 * AGENT_NONCE_LEN + cmd_len;
	unsigned char *msg = malloc(len);
	unsigned int mac_len = AGENT_MAC_LEN;

	if (!msg)
		tool_fail("out of memory");
	memcpy(msg, label, label_len);
	memcpy(msg + label_len, a, AGENT_NONCE_LEN);
	memcpy(msg + label_len + AGENT_NONCE_LEN, b, AGENT_NONCE_LEN);
	if (cmd_len)
		memcpy(msg + label_len + 2 * AGENT_NONCE_LEN, command, cmd_len);
	if (!HMAC(EVP_sha256(), key, AGENT_KEY_LEN, msg, len, mac, &mac_len) ||
	    mac_len != AGENT_MAC_LEN)
		tool_fail("HMAC-SHA256 failed");
	free(msg);
}

bool agent_mac_equal(const unsigned char *a, const unsigned char *b)
{
	return !CRYPTO_memcmp(a, b, AGENT_MAC_LEN);
}

void agent_random(void *buf, size_t len)
{
	if (getrandom(buf, len, 0) != (ssize_t)len)
		tool_fail("getrandom: %s", strerror(errno));
}
