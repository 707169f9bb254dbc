/*
 * itkeys.h: a Redis' keys remembered and compared (test code: it blocks), for the
 * tests that move a deployment between Redis servers: every key with its type and
 * TTL, later found again on another Redis; or every key of a cluster's primaries
 * found on one Redis with the same value.
 */
#ifndef DEALPUSH_ITKEYS_H
#define DEALPUSH_ITKEYS_H

#include <stddef.h>

struct it_cluster;
struct it_keys;

/* Every key of the Redis on port, with its type and PTTL and when they were read.
 * NULL when it cannot be read (why on stderr). it_keys_free(NULL) does nothing. */
struct it_keys *it_keys_take(int port);
void it_keys_free(struct it_keys *k);

/* How many keys k holds. */
size_t it_keys_count(const struct it_keys *k);

/* Every key of k but skip (may be NULL) is on the Redis on port with its type; one
 * that had a TTL has one that ran down with the time since k was read (within
 * slack_ms either way); one that had none has none. Returns the keys that are not
 * so, the first one's reason in why (-1 when port cannot be read). */
long it_keys_back(const struct it_keys *k, int port, const char *skip, long slack_ms,
    char *why, size_t size);

/* Every key of k is on its slot's primary in cl with its type, and one that had a
 * TTL has one. kinds: "N keys: S streams, H hashes, O other, T with a TTL". Returns
 * the keys that are not so, the first one's reason in why. */
long it_keys_on_cluster(const struct it_keys *k, const struct it_cluster *cl,
    char *kinds, size_t ksize, char *why, size_t size);

/* Every key of every primary of cl is on the Redis on port with the same value (a
 * string, a hash's or set's items in any order, a zset's, a list's, a stream's
 * entries and consumer groups), and with a TTL exactly when it has one there. Returns
 * the keys that are not so, the first one's reason in why (-1 on a read error); *n:
 * the keys compared. */
long it_keys_same_as_cluster(const struct it_cluster *cl, int port, long *n, char *why,
    size_t size);

#endif
