/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The control port between vhca-vm and its VM (docs/vm.md): a
 * virtio-serial port whose host end is a socket of vhca-vm's.  Each
 * record is "key" or "key=value", ended by a NUL byte (a value is any
 * string C can hold: argv and environment entries travel as they are).
 *
 *   guest -> host   ready                  the port is open; send the job
 *                   started                CMD runs
 *                   exit=W,OUT,ERR         CMD ended with wait status W;
 *                                          OUT/ERR bytes went to the
 *                                          stdout/stderr ports in all
 *                   fail=OUT,ERR           the VM's own setup failed (its
 *                                          message is on the stderr port)
 *   host -> guest   arg=, env=, cwd=, hostname=, accel=, modules=,
 *                   net=ADDR/PREFIX, gateway=, vf=N, driver=CMDLINE,
 *                   end                    the job, after "ready"
 *                   closed=1|2             nobody reads vhca-vm's stdout
 *                                          (stderr) any more: CMD's pipe
 *                                          is closed, as a pipe would be
 *
 * The byte counts are why there is a control port at all: QEMU writes to
 * vhca-vm's pipes without blocking, so output the host has not read yet
 * may still sit in the guest's virtqueue when CMD ends; vhca-vm ends the
 * VM only once it has read every byte the guest says it sent.
 */
#ifndef VHCA_VM_PROTO_H
#define VHCA_VM_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* One record at most: an argv string may be 128 KiB (MAX_ARG_STRLEN). */
#define PROTO_RECORD_MAX (128 * 1024 + 64)

struct proto_reader {
	int fd;
	char *buf;			/* PROTO_RECORD_MAX bytes */
	size_t len;			/* bytes in buf */
	size_t start;			/* of the next record */
};

void proto_reader_init(struct proto_reader *r, int fd);
/*
 * Reads what the fd has (once, it may block unless the fd is
 * non-blocking).  Returns > 0 if bytes came, 0 at end of file, -1 on
 * error (errno; EAGAIN included), and fails on a record too long.
 */
ssize_t proto_fill(struct proto_reader *r);
/* The next whole record, or NULL: key in *key, value (or "") returned. */
const char *proto_next(struct proto_reader *r, const char **key);

/* An output queue for a non-blocking fd. */
struct proto_writer {
	int fd;
	char *buf;
	size_t len, sent, cap;
};

void proto_put(struct proto_writer *w, const char *key, const char *value);
/* Writes what it can; false on an error other than EAGAIN. */
bool proto_flush(struct proto_writer *w);
bool proto_pending(const struct proto_writer *w);

#endif /* VHCA_VM_PROTO_H */
