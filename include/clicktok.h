/*
 * clicktok.h: signed click tokens for the /c/<token> links in pushes.
 * Pure: no I/O, no global state. Format and length in docs/inbound.md.
 */
#ifndef DEALPUSH_CLICKTOK_H
#define DEALPUSH_CLICKTOK_H

#include <stddef.h>

#define CLICKTOK_VERSION 1
#define CLICKTOK_ID_MAX 200      /* bytes of a push id */
#define CLICKTOK_MAC_LEN 12      /* bytes of HMAC-SHA256 kept: 96 bits */
#define CLICKTOK_KEY_MIN 16      /* shortest secret accepted (32 random bytes advised) */
#define CLICKTOK_KEY_MAX 1024

/* Characters in the token for a push id of n bytes: unpadded base64url of
 * version + id + MAC. 52 for a 26-byte id such as "1795456407866-0:s-1001:sms". */
#define CLICKTOK_LEN(n) ((((n) + 1 + CLICKTOK_MAC_LEN) * 4 + 2) / 3)

/* The longest token (CLICKTOK_LEN(CLICKTOK_ID_MAX)), without the NUL. */
#define CLICKTOK_MAX 284

/* Makes the token for push_id (1..CLICKTOK_ID_MAX bytes, NUL-terminated) signed with
 * key[0..keylen) (CLICKTOK_KEY_MIN..CLICKTOK_KEY_MAX bytes). Writes the token and a NUL
 * into out; outsize > CLICKTOK_LEN(strlen(push_id)) (CLICKTOK_MAX + 1 always fits).
 * The token uses only [A-Za-z0-9_-], so it goes into a URL path as is. Returns 0, or
 * -1 on a bad argument, a short buffer or an OpenSSL failure, leaving out "" when
 * outsize > 0. */
int clicktok_make(const unsigned char *key, size_t keylen, const char *push_id,
    char *out, size_t outsize);

/* Checks token (hostile: any string, or NULL) against key and writes the push id it
 * names and a NUL into push_id (size > CLICKTOK_ID_MAX always fits). Returns 0, or -1
 * when the token is not one clicktok_make() made with this key (bad characters or
 * length, non-canonical base64, unknown version, wrong MAC; the MAC is compared in
 * constant time), when the arguments are bad, when push_id is too small or OpenSSL
 * failed; on -1 push_id is "" when size > 0. */
int clicktok_parse(const unsigned char *key, size_t keylen, const char *token,
    char *push_id, size_t size);

#endif
