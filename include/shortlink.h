/*
 * shortlink.h: short link codes, the "<link_base>/<code>" links of pushes (issue 17
 * item 1; docs/attribution.md "Short links"). Pure: no I/O, no global state.
 *
 * A code is SHORTLINK_LEN base62 characters holding 71 bits: 54 random bits and a
 * 17-bit keyed check (HMAC-SHA256 of the random part under the click secret). A
 * forged or mistyped code fails the check without a Redis read, except one guess in
 * 131,072, which then misses in Redis. The code says nothing about the push, the deal
 * or the subscriber: the push it stands for is found through Redis. Only the shard
 * the push lives in can be read from it (the random part modulo the number of shards,
 * chosen so), so the click goes to one shard; it says which of S buckets of a hash of
 * the subscriber's id the push belongs to, nothing more. At least 54 - log2(S) bits stay
 * random (44 for S = 1024).
 */
#ifndef DEALPUSH_SHORTLINK_H
#define DEALPUSH_SHORTLINK_H

#include <stddef.h>
#include <stdint.h>

#define SHORTLINK_LEN 12          /* characters of a code */
#define SHORTLINK_RANDOM_BITS 54
#define SHORTLINK_CHECK_BITS 17
#define SHORTLINK_KEY_MIN 16      /* as CLICKTOK_KEY_MIN */
#define SHORTLINK_SHARDS_MAX 1024
#define SHORTLINK_PUSH_ID_MAX 200   /* bytes of a push id, as CLICKTOK_ID_MAX */
#define SHORTLINK_ROUTE_MAX 64    /* the path of a link base, as a route prefix */

/*
 * Makes the code of random value rnd (its low SHORTLINK_RANDOM_BITS bits are used)
 * for a push in shard shard of shards (1..SHORTLINK_SHARDS_MAX): the random part is
 * moved to the nearest value below it that is shard modulo shards, so that
 * shortlink_shard() gives it back. Writes SHORTLINK_LEN characters of [0-9A-Za-z] and
 * a NUL into out. Returns 0, or -1 on a bad argument or an OpenSSL failure.
 */
int shortlink_make(const unsigned char *key, size_t keylen, uint64_t rnd,
    uint32_t shard, uint32_t shards, char out[SHORTLINK_LEN + 1]);

/*
 * Checks code (hostile: len bytes of anything) against key in constant time over the
 * check. Returns 1 when it is a code shortlink_make() could have made with this key,
 * with the shard of shards it names in *shard (when not NULL); 0 otherwise.
 */
int shortlink_check(const unsigned char *key, size_t keylen, const char *code,
    size_t len, uint32_t shards, uint32_t *shard);

/*
 * The code of push push_id ("<entry>:<sub>:<channel>") in shard shard of shards: the
 * random part is the first 54 bits of HMAC-SHA256(key, "dplr" || push_id), so that a
 * re-plan, a retext and admit (which stores the code's push) all name the same code
 * without carrying it, and nobody without the key can tell it from random. Returns 0,
 * or -1 as shortlink_make or when push_id is over SHORTLINK_PUSH_ID_MAX (out "").
 */
int shortlink_for_push(const unsigned char *key, size_t keylen, const char *push_id,
    uint32_t shard, uint32_t shards, char out[SHORTLINK_LEN + 1]);

/*
 * The route prefix of link base base (an http(s) URI the config checked): its path
 * without a trailing '/' ("https://dp.to/c" -> "/c"), written into out (size bytes).
 * Returns 0, or -1 with the reason in why (wsize bytes) when there is no path, or it
 * holds anything but [A-Za-z0-9._~-] segments, is longer than SHORTLINK_ROUTE_MAX, or
 * starts with a segment of the notifier's own surface (v1, hooks, ui, healthz,
 * metrics).
 */
int shortlink_route(const char *base, char *out, size_t size, char *why, size_t wsize);

#endif
