/*
 * twsig.c: compute and verify X-Twilio-Signature.
 *
 * Stage: http (every inbound Twilio webhook, before anything is parsed or changed).
 * HMAC-SHA1 keyed with the auth token over the public URL followed by each POST
 * parameter's name and value, sorted by name then value in byte order; base64.
 * Must never allocate, log or keep the token, never compare signatures with memcmp,
 * and never read a string past its limit.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "twsig.h"

#define TWSIG_SHA1_LEN 20

/* Internal results: the argument was refused (a request that cannot verify) versus
 * OpenSSL failed (the request may be fine). */
#define TWSIG_BAD_INPUT (-1)
#define TWSIG_CRYPTO (-2)

/* Byte order of names, then of values (strcmp compares as unsigned char). */
static int param_cmp(const void *a, const void *b)
{
	const struct twsig_param *pa = *(const struct twsig_param *const *)a;
	const struct twsig_param *pb = *(const struct twsig_param *const *)b;
	int c = strcmp(pa->name, pb->name);

	return c != 0 ? c : strcmp(pa->value, pb->value);
}

/* strlen bounded by max; returns max + 1 when s is longer (or NULL). */
static size_t len_within(const char *s, size_t max)
{
	return s == NULL ? max + 1 : strnlen(s, max + 1);
}

/* The signature of (token, url, params) into sig[TWSIG_LEN + 1]. Returns 0,
 * TWSIG_BAD_INPUT or TWSIG_CRYPTO. */
static int sign(const char *token, const char *url, const struct twsig_param *params,
    size_t n, char sig[TWSIG_LEN + 1])
{
	const struct twsig_param *sorted[TWSIG_PARAMS_MAX];
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0, tlen, ulen, i;
	EVP_MAC *hmac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM op[2];
	int rc = TWSIG_CRYPTO;

	tlen = len_within(token, TWSIG_TOKEN_MAX);
	ulen = len_within(url, TWSIG_URL_MAX);
	if (tlen == 0 || tlen > TWSIG_TOKEN_MAX || ulen == 0 || ulen > TWSIG_URL_MAX ||
	    n > TWSIG_PARAMS_MAX || (n > 0 && params == NULL))
		return TWSIG_BAD_INPUT;
	for (i = 0; i < n; i++) {
		if (len_within(params[i].name, TWSIG_FIELD_MAX) > TWSIG_FIELD_MAX ||
		    len_within(params[i].value, TWSIG_FIELD_MAX) > TWSIG_FIELD_MAX)
			return TWSIG_BAD_INPUT;
		sorted[i] = &params[i];
	}
	if (n > 1)
		qsort(sorted, n, sizeof(sorted[0]), param_cmp);

	op[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0);
	op[1] = OSSL_PARAM_construct_end();
	if ((hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(hmac)) == NULL ||
	    !EVP_MAC_init(ctx, (const unsigned char *)token, tlen, op) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)url, ulen))
		goto err;
	for (i = 0; i < n; i++) {
		if (!EVP_MAC_update(ctx, (const unsigned char *)sorted[i]->name,
		    strlen(sorted[i]->name)) ||
		    !EVP_MAC_update(ctx, (const unsigned char *)sorted[i]->value,
		    strlen(sorted[i]->value)))
			goto err;
	}
	if (!EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) || maclen != TWSIG_SHA1_LEN)
		goto err;
	if (EVP_EncodeBlock((unsigned char *)sig, mac, TWSIG_SHA1_LEN) != TWSIG_LEN)
		goto err;
	rc = 0;
err:
	OPENSSL_cleanse(mac, sizeof(mac));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return rc;
}

int twsig_compute(const char *token, const char *url, const struct twsig_param *params,
    size_t n, char *out, size_t outsize)
{
	char sig[TWSIG_LEN + 1];

	if (out == NULL || outsize == 0)
		return -1;
	out[0] = '\0';
	if (outsize <= TWSIG_LEN || sign(token, url, params, n, sig) != 0)
		return -1;
	memcpy(out, sig, TWSIG_LEN + 1);
	return 0;
}

int twsig_verify(const char *token, const char *url, const struct twsig_param *params,
    size_t n, const char *header)
{
	char sig[TWSIG_LEN + 1];
	int rc;

	/* the length of a header is not secret: refuse early, before any HMAC */
	if (len_within(header, TWSIG_LEN) != TWSIG_LEN)
		return 0;
	rc = sign(token, url, params, n, sig);
	if (rc == TWSIG_CRYPTO)
		return -1;
	if (rc != 0)
		return 0;
	return CRYPTO_memcmp(sig, header, TWSIG_LEN) == 0;
}
