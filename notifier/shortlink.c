/*
 * shortlink.c: short link codes (stage: match and http; pure). The layout of a code
 * and what it reveals are in include/shortlink.h and docs/attribution.md.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "shortlink.h"

__extension__ typedef unsigned __int128 u128;

#define RANDOM_MASK ((UINT64_C(1) << SHORTLINK_RANDOM_BITS) - 1)
#define CHECK_MASK ((1u << SHORTLINK_CHECK_BITS) - 1)

static const char b62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int
b62_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 36;
	return -1;
}

/* The keyed check of random part r: the first SHORTLINK_CHECK_BITS bits of
 * HMAC-SHA256(key, "dpl1" || r as 7 bytes, big-endian). -1 on an OpenSSL failure. */
static long
check_of(const unsigned char *key, size_t keylen, uint64_t r)
{
	unsigned char msg[11] = { 'd', 'p', 'l', '1' }, mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	long c;
	int i;

	for (i = 0; i < 7; i++)
		msg[4 + i] = (unsigned char)(r >> (8 * (6 - i)));
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, sizeof(msg), mac, &len) == NULL ||
	    len < 3)
		return -1;
	c = (long)((((uint32_t)mac[0] << 16) | ((uint32_t)mac[1] << 8) | mac[2]) >>
	    (24 - SHORTLINK_CHECK_BITS));
	OPENSSL_cleanse(mac, sizeof(mac));
	return c;
}

int
shortlink_make(const unsigned char *key, size_t keylen, uint64_t rnd, uint32_t shard,
    uint32_t shards, char out[SHORTLINK_LEN + 1])
{
	uint64_t r = rnd & RANDOM_MASK, have;
	u128 v;
	long check;
	int i;

	out[0] = '\0';
	if (key == NULL || keylen < SHORTLINK_KEY_MIN || shards == 0 ||
	    shards > SHORTLINK_SHARDS_MAX || shard >= shards)
		return -1;
	/* The random part names the shard: r mod shards == shard. */
	have = r % shards;
	if (have >= shard)
		r -= have - shard;
	else
		r += shard - have;           /* r < 2^54 - 1024 but for 2^-44 of values */
	if (r > RANDOM_MASK)
		r -= shards;
	if ((check = check_of(key, keylen, r)) < 0)
		return -1;
	v = ((u128)r << SHORTLINK_CHECK_BITS) | (u128)check;
	for (i = SHORTLINK_LEN - 1; i >= 0; i--) {
		out[i] = b62[(unsigned)(v % 62)];
		v /= 62;
	}
	out[SHORTLINK_LEN] = '\0';
	return 0;
}

int
shortlink_check(const unsigned char *key, size_t keylen, const char *code, size_t len,
    uint32_t shards, uint32_t *shard)
{
	u128 v = 0;
	uint64_t r;
	long want;
	uint32_t got;
	size_t i;

	if (key == NULL || keylen < SHORTLINK_KEY_MIN || code == NULL ||
	    len != SHORTLINK_LEN || shards == 0 || shards > SHORTLINK_SHARDS_MAX)
		return 0;
	for (i = 0; i < SHORTLINK_LEN; i++) {
		int d = b62_value((unsigned char)code[i]);

		if (d < 0)
			return 0;
		v = v * 62 + (unsigned)d;
	}
	if ((v >> (SHORTLINK_RANDOM_BITS + SHORTLINK_CHECK_BITS)) != 0)
		return 0;                    /* above 71 bits: never made */
	r = (uint64_t)(v >> SHORTLINK_CHECK_BITS);
	got = (uint32_t)(v & CHECK_MASK);
	if ((want = check_of(key, keylen, r)) < 0)
		return 0;
	/* Constant time over the check: no early exit on the first differing bit. */
	if ((((uint32_t)want ^ got) & CHECK_MASK) != 0)
		return 0;
	if (shard != NULL)
		*shard = (uint32_t)(r % shards);
	return 1;
}
