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

#endif
