/*
 * shortlink.c: short link codes (stage: match and http; pure). The layout of a code
 * and what it reveals are in include/shortlink.h and docs/attribution.md.
 */
#include <stdint.h>
#include <stdio.h>
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

int
shortlink_for_push(const unsigned char *key, size_t keylen, const char *push_id,
    uint32_t shard, uint32_t shards, char out[SHORTLINK_LEN + 1])
{
	unsigned char msg[4 + SHORTLINK_PUSH_ID_MAX] = { 'd', 'p', 'l', 'r' };
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	uint64_t rnd = 0;
	size_t n;
	int i;

	out[0] = '\0';
	if (key == NULL || keylen < SHORTLINK_KEY_MIN || push_id == NULL ||
	    (n = strlen(push_id)) > SHORTLINK_PUSH_ID_MAX)
		return -1;
	memcpy(msg + 4, push_id, n);
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, 4 + n, mac, &len) == NULL || len < 8)
		return -1;
	for (i = 0; i < 8; i++)
		rnd = (rnd << 8) | mac[i];
	OPENSSL_cleanse(mac, sizeof(mac));
	return shortlink_make(key, keylen, rnd, shard, shards, out);
}

/* 1 when the first segment of path p[0..n) is one of the notifier's own. */
static int
route_reserved(const char *p, size_t n)
{
	static const char *const own[] = { "v1", "hooks", "ui", "healthz", "metrics" };
	size_t i, sl = 0;

	while (sl < n && p[sl] != '/')
		sl++;
	for (i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strlen(own[i]) == sl && memcmp(p, own[i], sl) == 0)
			return 1;
	return 0;
}

int
shortlink_route(const char *base, char *out, size_t size, char *why, size_t wsize)
{
	const char *p, *q;
	size_t n, i;

	if (size > 0)
		out[0] = '\0';
	if (base == NULL || (p = strstr(base, "://")) == NULL) {
		snprintf(why, wsize, "not an absolute http(s) URI");
		return -1;
	}
	p += 3;
	p += strcspn(p, "/?#");
	q = p + strcspn(p, "?#");
	if (*q != '\0') {
		snprintf(why, wsize, "has a query or fragment: codes are appended to it");
		return -1;
	}
	n = (size_t)(q - p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
		    c == '-' || c == '/') || (c == '/' && i > 0 && p[i - 1] == '/')) {
			snprintf(why, wsize, "path character %zu is not a letter, digit, '.', "
			    "'_', '~', '-' or a single '/'", i + 1);
			return -1;
		}
	}
	if (n + 1 > SHORTLINK_ROUTE_MAX || n + 2 > size) {
		snprintf(why, wsize, "path longer than %d bytes", SHORTLINK_ROUTE_MAX - 1);
		return -1;
	}
	if (n == 0) {
		/* A route of "/" would take every path the notifier does not serve, and
		 * answer unknown /v1 paths without a credential. */
		snprintf(why, wsize, "needs a path, such as https://dp.to/c");
		return -1;
	}
	if (route_reserved(p + 1, n - 1)) {
		snprintf(why, wsize, "path %.*s is the notifier's own (/v1, /hooks, /ui, "
		    "/healthz, /metrics)", (int)n, p);
		return -1;
	}
	snprintf(out, size, "%.*s", (int)n, p);
	return 0;
}
