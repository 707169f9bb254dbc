/*
 * redisutil.h: checked access to stream replies, and keys named from data (stage:
 * all Redis I/O).
 *
 * Redis replies are input like any other: these helpers check every type and size
 * before a caller looks inside, so a malformed or unexpected reply is skipped,
 * never dereferenced.
 */
#ifndef DEALPUSH_REDISUTIL_H
#define DEALPUSH_REDISUTIL_H

#include <stddef.h>

struct redisReply;

/*
 * For an XREADGROUP/XREAD reply naming one stream, returns its entries array
 * (each entry checked with ru_entry), or NULL when the reply is nil/empty or not of
 * that shape.
 */
const struct redisReply *ru_stream_entries(const struct redisReply *r);

/* Checks entry i of entries: sets *id and *fields (a flat array of field/value
 * strings, possibly NULL when the entry was deleted). Returns 0, or -1 when malformed. */
int ru_entry(const struct redisReply *entries, size_t i, const char **id,
    const struct redisReply **fields);

/* The value of field name in a flat field/value array, with its length; NULL when
 * absent or not a string. */
const char *ru_field(const struct redisReply *fields, const char *name, size_t *len);

/* 1 when r is an error reply whose text starts with prefix. */
int ru_is_error(const struct redisReply *r, const char *prefix);

/* Formats "<prefix><v[0..n)>" into buf (size bytes): a key named from data a caller
 * read or was given (every key a script touches is in its KEYS). buf is "" when v is
 * NULL or n is 0 (a "none" key the script skips). Returns 0, or -1 when it does not
 * fit (buf ""). */
int ru_key(char *buf, size_t size, const char *prefix, const char *v, size_t n);

/* Replaces *out (freed) with a copy of bulk string reply r, or NULL for a nil reply.
 * Returns 0, or -1 for another type, a string over max bytes or out of memory (*out
 * NULL). */
int ru_copy(const struct redisReply *r, size_t max, char **out);

#endif
