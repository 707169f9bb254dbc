/*
 * slot.h: Redis Cluster key → hash slot (stage: all Redis I/O).
 *
 * Pure functions, no I/O: CRC16 as the cluster specification defines it (the XMODEM
 * variant: polynomial 0x1021, initial value 0, no reflection, no final xor) and the
 * hash tag rule (only the part between the first '{' and the first '}' after it is
 * hashed, when that part is not empty). Used by rcluster.c to route a command.
 */
#ifndef DEALPUSH_SLOT_H
#define DEALPUSH_SLOT_H

#include <stddef.h>
#include <stdint.h>

/* Number of hash slots in a Redis Cluster. */
#define SLOT_COUNT 16384

/* CRC16/XMODEM of len bytes at buf (buf may be NULL when len is 0). Cannot fail. */
uint16_t slot_crc16(const void *buf, size_t len);

/* The hash slot (0..SLOT_COUNT-1) of the key of len bytes, with the {hash tag} rule.
 * Cannot fail; binary keys (with NUL bytes) are fine. */
int slot_of(const char *key, size_t len);

/* The part of the key that is hashed: len bytes at key + *off (the tag, or the whole
 * key). Cannot fail. */
void slot_hashed(const char *key, size_t len, size_t *off, size_t *n);

#endif
