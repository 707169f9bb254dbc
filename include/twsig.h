/*
 * twsig.h: Twilio request signatures (the X-Twilio-Signature header).
 * Pure: no I/O, no global state. Algorithm and worked example in docs/inbound.md.
 */
#ifndef DEALPUSH_TWSIG_H
#define DEALPUSH_TWSIG_H

#include <stddef.h>

/* One decoded form parameter of the POST body (name and value URL-decoded, as
 * Twilio sent them before encoding). Both borrowed, NUL-terminated, non-NULL. */
struct twsig_param {
	const char *name;
	const char *value;
};

/* Length of a signature: base64 of a 20-byte HMAC-SHA1, without the NUL. */
#define TWSIG_LEN 28

/* Limits on hostile input: a request over any of them never verifies. */
#define TWSIG_TOKEN_MAX 256        /* auth token bytes (Twilio's are 32) */
#define TWSIG_URL_MAX 4096         /* public URL bytes */
#define TWSIG_PARAMS_MAX 256       /* form parameters */
#define TWSIG_FIELD_MAX 65536      /* bytes of one parameter name or value */

/* Computes the signature Twilio sends for a request to url (the full public URL as
 * Twilio called it: scheme, host, port if any, path, query string, byte for byte)
 * with the n POST form parameters params (any order; not the query string ones; n may
 * be 0 and params NULL for a GET). The auth token token is the HMAC key. Writes
 * TWSIG_LEN characters and a NUL into out (outsize > TWSIG_LEN). Returns 0, or -1 on
 * a NULL or over-limit argument, a short buffer or an OpenSSL failure, leaving out ""
 * when outsize > 0. The caller's params array is not modified. */
int twsig_compute(const char *token, const char *url, const struct twsig_param *params,
    size_t n, char *out, size_t outsize);

/* Checks header (the X-Twilio-Signature value) against twsig_compute() in constant
 * time. Returns 1 when it matches; 0 when it does not, including a NULL or empty
 * header, a wrong length, bad base64 and any argument twsig_compute() refuses;
 * -1 only when OpenSSL itself failed (out of memory: try again later). Treat anything
 * but 1 as unverified (403). */
int twsig_verify(const char *token, const char *url, const struct twsig_param *params,
    size_t n, const char *header);

#endif
