/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Text forms an admin types and vhca shows: counts, GUIDs as mlx5's SR-IOV
 * sysfs writes them (xx:xx:xx:xx:xx:xx:xx:xx) and P_Keys.  One strict
 * parser each, shared by vhcad (sysfs writes, command line, run dir) and
 * vhcactl, so a value one accepts the other accepts too (and one
 * printer for GUIDs, so both show them alike).  Every parser
 * takes an exact length (no terminator needed, no trailing bytes allowed)
 * and returns false without touching *out on anything malformed.
 */
#ifndef VHCA_TEXT_H
#define VHCA_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length without one trailing newline (what `echo` adds). */
static inline size_t vhca_text_strip_newline(const char *buf, size_t len)
{
	return len && buf[len - 1] == '\n' ? len - 1 : len;
}

static inline int vhca_hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decimal digits only, at least one, value <= max. */
static inline bool vhca_parse_decimal(const char *buf, size_t len,
				      unsigned long max, unsigned long *out)
{
	unsigned long value = 0;

	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return false;
		value = value * 10 + (unsigned long)(buf[i] - '0');
		if (value > max)
			return false;
	}
	*out = value;
	return true;
}

/* Exactly "xx:xx:xx:xx:xx:xx:xx:xx", hex, most significant byte first. */
static inline bool vhca_parse_guid(const char *buf, size_t len, uint64_t *out)
{
	uint64_t guid = 0;

	if (len != 23)
		return false;
	for (size_t i = 0; i < 8; i++) {
		int hi = vhca_hex_digit(buf[3 * i]);
		int lo = vhca_hex_digit(buf[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 7 && buf[3 * i + 2] != ':'))
			return false;
		guid = guid << 8 | (uint64_t)(hi << 4 | lo);
	}
	*out = guid;
	return true;
}

/* Room for vhca_print_guid()'s "xx:xx:xx:xx:xx:xx:xx:xx" and its NUL. */
#define VHCA_GUID_TEXT_SIZE 24

/*
 * The inverse of vhca_parse_guid(): lowercase hex, most significant byte
 * first, NUL-terminated - what device/sriov/<vf>/node shows on mlx5.
 */
static inline void vhca_print_guid(uint64_t guid,
				   char out[VHCA_GUID_TEXT_SIZE])
{
	static const char digits[] = "0123456789abcdef";

	for (unsigned int i = 0; i < 8; i++) {
		unsigned int byte = (unsigned int)(guid >> (56 - 8 * i)) & 0xff;

		out[3 * i] = digits[byte >> 4];
		out[3 * i + 1] = digits[byte & 0xf];
		out[3 * i + 2] = i < 7 ? ':' : '\0';
	}
}

/* 1-4 hex digits with an optional "0x"; any 16-bit value. */
static inline bool vhca_parse_pkey(const char *buf, size_t len, uint16_t *out)
{
	unsigned int value = 0;

	if (len >= 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
		buf += 2;
		len -= 2;
	}
	if (!len || len > 4)
		return false;
	for (size_t i = 0; i < len; i++) {
		int digit = vhca_hex_digit(buf[i]);

		if (digit < 0)
			return false;
		value = value << 4 | (unsigned int)digit;
	}
	*out = (uint16_t)value;
	return true;
}

#endif /* VHCA_TEXT_H */
