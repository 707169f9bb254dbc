/*
 * clicktok.c: make and check the tokens in click links (/c/<token>).
 *
 * Stage: send (the link put into a push) and http (the click). A token is
 * base64url(version || push id || MAC) without padding, where MAC is the first
 * CLICKTOK_MAC_LEN bytes of HMAC-SHA256(key, version || push id). Must never accept a
 * token it did not make, read past a bound, compare a MAC with memcmp, or allocate.
 */
#include <stddef.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "clicktok.h"

#define CLICKTOK_SHA256_LEN 32
#define CLICKTOK_PAYLOAD_MAX (1 + CLICKTOK_ID_MAX)
#define CLICKTOK_RAW_MAX (CLICKTOK_PAYLOAD_MAX + CLICKTOK_MAC_LEN)
#define CLICKTOK_MIN CLICKTOK_LEN(1)
_Static_assert(CLICKTOK_MAX == CLICKTOK_LEN(CLICKTOK_ID_MAX), "CLICKTOK_MAX is stale");

/* base64 with padding of CLICKTOK_RAW_MAX bytes, and its NUL */
#define CLICKTOK_B64_MAX (4 * ((CLICKTOK_RAW_MAX + 2) / 3) + 1)

/* The truncated MAC of payload[0..n) into mac. Returns 0 or -1 (OpenSSL failed). */
static int tok_mac(const unsigned char *key, size_t keylen, const unsigned char *payload,
    size_t n, unsigned char mac[CLICKTOK_MAC_LEN])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	size_t len = 0;
	EVP_MAC *hmac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM op[2];
	int rc = -1;

	op[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	op[1] = OSSL_PARAM_construct_end();
	if ((hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(hmac)) == NULL ||
	    !EVP_MAC_init(ctx, key, keylen, op) ||
	    !EVP_MAC_update(ctx, payload, n) ||
	    !EVP_MAC_final(ctx, full, &len, sizeof(full)) || len != CLICKTOK_SHA256_LEN)
		goto err;
	memcpy(mac, full, CLICKTOK_MAC_LEN);
	rc = 0;
err:
	OPENSSL_cleanse(full, sizeof(full));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return rc;
}

static int key_ok(const unsigned char *key, size_t keylen)
{
	return key != NULL && keylen >= CLICKTOK_KEY_MIN && keylen <= CLICKTOK_KEY_MAX;
}

/* The base64url alphabet: 1 for [A-Za-z0-9_-], 0 for anything else. */
static int b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

/* The 6-bit value of a base64url character already checked by b64url_char(). */
static unsigned b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26u;
	if (c >= '0' && c <= '9')
		return c - '0' + 52u;
	return c == '-' ? 62u : 63u;
}

int clicktok_make(const unsigned char *key, size_t keylen, const char *push_id,
    char *out, size_t outsize)
{
	unsigned char raw[CLICKTOK_RAW_MAX];
	unsigned char b64[CLICKTOK_B64_MAX];
	size_t idlen, rawlen, i, n;
	int enc;

	if (out == NULL || outsize == 0)
		return -1;
	out[0] = '\0';
	if (!key_ok(key, keylen) || push_id == NULL)
		return -1;
	idlen = strnlen(push_id, CLICKTOK_ID_MAX + 1);
	if (idlen == 0 || idlen > CLICKTOK_ID_MAX || outsize <= CLICKTOK_LEN(idlen))
		return -1;
	raw[0] = CLICKTOK_VERSION;
	memcpy(raw + 1, push_id, idlen);
	if (tok_mac(key, keylen, raw, 1 + idlen, raw + 1 + idlen) != 0)
		return -1;
	rawlen = 1 + idlen + CLICKTOK_MAC_LEN;
	enc = EVP_EncodeBlock(b64, raw, (int)rawlen);
	if (enc < 0)
		return -1;
	/* base64 to base64url, padding dropped */
	for (i = 0, n = 0; i < (size_t)enc && b64[i] != '='; i++, n++)
		out[n] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	out[n] = '\0';
	if (n != CLICKTOK_LEN(idlen)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

int clicktok_parse(const unsigned char *key, size_t keylen, const char *token,
    char *push_id, size_t size)
{
	unsigned char b64[CLICKTOK_B64_MAX];
	unsigned char raw[CLICKTOK_RAW_MAX + 3];
	unsigned char mac[CLICKTOK_MAC_LEN];
	size_t tlen, i, pad, rawlen, idlen;
	int dec;

	if (push_id == NULL || size == 0)
		return -1;
	push_id[0] = '\0';
	if (!key_ok(key, keylen) || token == NULL)
		return -1;
	tlen = strnlen(token, CLICKTOK_MAX + 1);
	if (tlen < CLICKTOK_MIN || tlen > CLICKTOK_MAX || tlen % 4 == 1)
		return -1;
	for (i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)token[i];

		if (!b64url_char(c))
			return -1;
		b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	/* the unused low bits of the last character must be zero, so that each byte
	 * string has exactly one token */
	pad = (4 - tlen % 4) % 4;
	if ((pad == 2 && (b64url_value((unsigned char)token[tlen - 1]) & 0x0F) != 0) ||
	    (pad == 1 && (b64url_value((unsigned char)token[tlen - 1]) & 0x03) != 0))
		return -1;
	for (i = 0; i < pad; i++)
		b64[tlen + i] = '=';
	dec = EVP_DecodeBlock(raw, b64, (int)(tlen + pad));
	if (dec < 0 || (size_t)dec < pad)
		return -1;
	rawlen = (size_t)dec - pad;   /* EVP_DecodeBlock counts padding as zero bytes */
	if (rawlen < 1 + 1 + CLICKTOK_MAC_LEN || rawlen > CLICKTOK_RAW_MAX ||
	    raw[0] != CLICKTOK_VERSION)
		return -1;
	idlen = rawlen - 1 - CLICKTOK_MAC_LEN;
	if (tok_mac(key, keylen, raw, 1 + idlen, mac) != 0)
		return -1;
	if (CRYPTO_memcmp(mac, raw + 1 + idlen, CLICKTOK_MAC_LEN) != 0)
		return -1;
	/* a NUL inside the id cannot come from clicktok_make(); refuse it anyway */
	if (memchr(raw + 1, '\0', idlen) != NULL || size <= idlen)
		return -1;
	memcpy(push_id, raw + 1, idlen);
	push_id[idlen] = '\0';
	return 0;
}
