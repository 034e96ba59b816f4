/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vhca-agent (docs/cluster.md): how vhca-cluster runs a command in one of
 * its VMs, which is what Open MPI's rsh launcher needs to start orted
 * there ("plm_rsh_agent").  Two halves of one program:
 *
 *   serve.c  "vhca-agent serve", the VM's command (vhca-vm -- vhca-agent
 *            serve): listens on the VM's bridge address, runs each
 *            authenticated connection's command with sh -c, relays its
 *            stdin, stdout and stderr, sends its exit status, and ends
 *            every process the command left when it ends or when the
 *            connection drops;
 *   exec.c   "vhca-agent exec", on the host: connects, authenticates, is
 *            the command's face (its output, its status, 255 when the VM
 *            is gone, as ssh is when the connection is);
 *   wire.c   the frames both exchange and the handshake.
 *
 * The wire: frames of a type byte, a 32-bit big-endian length and that
 * many bytes.  The handshake proves to each side that the other holds the
 * VM's key (32 random bytes the cluster made for this VM only), without
 * the key on the wire:
 *
 *   server -> client  HELLO  nonce_s (32)
 *   client -> server  AUTH   nonce_c (32), HMAC-SHA256(key, "client" nonce_s nonce_c CMD)
 *   client -> server  CMD    the command line (ssh's rule: the words joined by
 *                            spaces, run by "sh -c")
 *   server -> client  OK     HMAC-SHA256(key, "server" nonce_c nonce_s)
 *
 * The client's proof covers the command, so nobody who can reach or sit
 * on the bridge can run a command of their own: without the key a proof
 * cannot be made, an old one is for another nonce_s, and a command
 * swapped in transit no longer matches.  What follows the handshake
 * (stdin, output, the status) is not protected against a host that can
 * inject into the TCP stream (docs/cluster.md, "Limits").
 *   client -> server  STDIN  bytes; STDIN_EOF (empty) at the end of its stdin
 *   server -> client  STDOUT, STDERR  bytes
 *   server -> client  EXIT   "exit N" or "signal S", then the server closes
 */
#ifndef VHCA_AGENT_H
#define VHCA_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tool.h"

#define AGENT_PORT_DEFAULT 7117
#define AGENT_KEY_LEN 32
#define AGENT_NONCE_LEN 32
#define AGENT_MAC_LEN 32
/* The environment variable that carries the VM's key (hex) into the VM. */
#define AGENT_KEY_ENV "VHCA_AGENT_KEY"
/* Open MPI's orted command line is a few KiB; 1 MiB is plenty. */
#define AGENT_CMD_MAX (1 << 20)
/* Data frames, and how much either side queues before it stops reading. */
#define AGENT_DATA_MAX 65536
#define AGENT_QUEUE_MAX (4 * AGENT_DATA_MAX)
/* The handshake must be over within this. */
#define AGENT_HANDSHAKE_MS 15000
/* Exit status of "exec" when the connection or the VM is lost (ssh's). */
#define AGENT_EXIT_LOST 255

enum agent_frame {
	FRAME_HELLO = 'H',
	FRAME_AUTH = 'A',
	FRAME_OK = 'K',
	FRAME_CMD = 'C',
	FRAME_STDIN = 'I',
	FRAME_STDIN_EOF = 'i',
	FRAME_STDOUT = 'O',
	FRAME_STDERR = 'E',
	FRAME_EXIT = 'X',
};

/* What one side has queued for the socket (non-blocking). */
struct agent_queue {
	char *buf;
	size_t len, off, cap;
};

void agent_queue_frame(struct agent_queue *q, int type, const void *data, size_t len);
/* Raw bytes (the command's stdin, on the server). */
void agent_queue_bytes(struct agent_queue *q, const void *data, size_t len);
/* Writes what the socket takes; false on an error (the peer is gone). */
bool agent_queue_flush(struct agent_queue *q, int fd);
static inline size_t agent_queue_pending(const struct agent_queue *q)
{
	return q->len - q->off;
}

/* Frames as they come in (non-blocking reads). */
struct agent_reader {
	char *buf;
	size_t len, max;
	size_t consumed;	/* the frame handed out last, dropped on the next call */
};

void agent_reader_init(struct agent_reader *r, size_t max_payload);
/* Reads once: > 0 bytes came, 0 end of file, -1 error (errno, EAGAIN too). */
ssize_t agent_reader_fill(struct agent_reader *r, int fd);
/*
 * The next whole frame: its type, *data and *len (valid until the next
 * call); 0 if none is complete yet, -1 if the peer sent a frame too long.
 */
int agent_reader_next(struct agent_reader *r, const char **data, size_t *len);
/* Blocking: one whole frame within @deadline_ms (CLOCK_MONOTONIC), or -1. */
int agent_read_frame(struct agent_reader *r, int fd, long long deadline_ms,
		     const char **data, size_t *len);
/* Blocking write of a whole frame; false on an error. */
bool agent_write_frame(int fd, int type, const void *data, size_t len);

/* The key from hex text (64 digits, an optional newline); false if malformed. */
bool agent_parse_key(const char *text, unsigned char key[AGENT_KEY_LEN]);
/* HMAC-SHA256(key, label a b command), the handshake's proof (command may be NULL). */
void agent_mac(const unsigned char key[AGENT_KEY_LEN], const char *label,
	       const unsigned char *a, const unsigned char *b,
	       const char *command, unsigned char mac[AGENT_MAC_LEN]);
/* Constant-time comparison of two MACs. */
bool agent_mac_equal(const unsigned char *a, const unsigned char *b);
void agent_random(void *buf, size_t len);

long long agent_now_ms(void);

/* serve.c / exec.c: the two commands. */
_Noreturn void agent_serve(const char *address, unsigned int port,
			   const unsigned char key[AGENT_KEY_LEN]);
int agent_exec(const char *host, unsigned int port,
	       const unsigned char key[AGENT_KEY_LEN], int watch_pid,
	       const char *name, const char *command);

#endif /* VHCA_AGENT_H */
