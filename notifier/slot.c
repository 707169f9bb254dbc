/*
 * slot.c: Redis Cluster hash slots of keys (stage: all Redis I/O).
 *
 * The cluster specification maps a key to HASH_SLOT = CRC16(key) mod 16384, where
 * CRC16 is the XMODEM variant and, when the key holds a non-empty "{...}" (the first
 * '{' and the first '}' after it), only the text between them is hashed, so related
 * keys can share a slot. Table-driven CRC, the table built at compile time. Pure: no
 * I/O, no allocation, no globals that change.
 */
#include <string.h>

#include "slot.h"

/* The CRC of each byte value, polynomial 0x1021 shifted in MSB first. */
#define SLOT_T1(c) (((c) & 0x8000) ? (((c) << 1) ^ 0x1021) : ((c) << 1))
#define SLOT_T2(c) SLOT_T1(SLOT_T1(c) & 0xffff)
#define SLOT_T4(c) SLOT_T2(SLOT_T2(c) & 0xffff)
#define SLOT_T8(c) (SLOT_T4(SLOT_T4(c) & 0xffff) & 0xffff)
#define SLOT_E(b) SLOT_T8((unsigned)(b) << 8)
#define SLOT_E4(b) SLOT_E(b), SLOT_E((b) + 1), SLOT_E((b) + 2), SLOT_E((b) + 3)
#define SLOT_E16(b) SLOT_E4(b), SLOT_E4((b) + 4), SLOT_E4((b) + 8), SLOT_E4((b) + 12)
#define SLOT_E64(b) SLOT_E16(b), SLOT_E16((b) + 16), SLOT_E16((b) + 32), \
	SLOT_E16((b) + 48)

static const uint16_t slot_table[256] = {
	SLOT_E64(0), SLOT_E64(64), SLOT_E64(128), SLOT_E64(192),
};

uint16_t
slot_crc16(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint16_t crc = 0;
	size_t i;

	for (i = 0; i < len; i++)
		crc = (uint16_t)((crc << 8) ^ slot_table[((crc >> 8) ^ p[i]) & 0xff]);
	return crc;
}

int
slot_of(const char *key, size_t len)
{
	size_t off, n;

	slot_hashed(key, len, &off, &n);
	return slot_crc16(n > 0 ? key + off : NULL, n) & (SLOT_COUNT - 1);
}

void
slot_hashed(const char *key, size_t len, size_t *off, size_t *n)
{
	const char *open, *close;

	*off = 0;
	*n = len;
	open = len > 0 ? memchr(key, '{', len) : NULL;
	if (open != NULL) {
		size_t rest = len - (size_t)(open - key) - 1;

		close = rest > 0 ? memchr(open + 1, '}', rest) : NULL;
		/* "{}" hashes the whole key, as does a '{' with no '}' after it. */
		if (close != NULL && close > open + 1) {
			*off = (size_t)(open - key) + 1;
			*n = (size_t)(close - open - 1);
		}
	}
}
