/*
 * deal.h: parse and validate a deal from a stream entry (stage: ingest).
 *
 * The only way to build a struct deal. Input is hostile: every field of the contract
 * (docs/contracts.md) is checked for presence, type, size and form; the first problem
 * found is reported in a struct err whose code is the dead-letter reason and whose
 * message names the field. Never crashes on any byte sequence.
 */
#ifndef DEALPUSH_DEAL_H
#define DEALPUSH_DEAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

/*
 * Parses len bytes of JSON (need not be NUL-terminated; may contain NUL bytes, which
 * are refused as "binary"). now is the current wall time in epoch seconds: a deal whose
 * expires_at <= now is refused as "expired" (a cancel is never expired, nor is an
 * update, "update": true, which sets d->update: its new expiry may be past).
 * Returns a new deal owned by the caller, or NULL with *err filled. Error codes:
 *   too_large, binary, not_json, not_object, missing_field, bad_type, bad_value,
 *   too_long, expired, no_memory.
 */
struct deal *deal_parse(const char *json, size_t len, int64_t now, struct err *err);

/* Frees the deal and everything it owns; deal_free(NULL) does nothing. */
void deal_free(struct deal *d);

/*
 * Checks shared by the deal and subscriber contracts (notifier/subscriber.c uses them
 * so that both documents follow one convention).
 */
struct cJSON;

/*
 * Opens an untrusted JSON document of len bytes (need not be NUL-terminated). Refuses,
 * in this order: more than max bytes (too_large); a NUL byte, an escaped NUL
 * ("\u0000", which would silently cut a C string) or invalid UTF-8 (binary); what
 * cJSON cannot parse, trailing garbage included (not_json, "<what>: not valid JSON
 * near byte N"); anything but an object (not_object). what names the document in
 * messages ("deal", "subscriber"). Returns the parsed object, owned by the caller
 * (cJSON_Delete), or NULL with *err filled (kind ERR_INPUT, or ERR_NOMEM).
 */
struct cJSON *deal_json_open(const char *json, size_t len, size_t max, const char *what,
    struct err *err);

#define DEAL_TEST_TO_MAX 20   /* subscribers of one test send ("test_to") */

/* Length of the longest prefix of s that is strict UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF) without a NUL byte; len when all of it is. */
size_t deal_utf8_valid_prefix(const unsigned char *s, size_t len);

/* 1 when s is a valid deal or subscriber id (1..MODEL_ID_MAX bytes of printable ASCII,
 * no space), else 0. */
int deal_id_is_valid(const char *s);

/* A time member v named field: an RFC 3339 string, epoch seconds as a JSON integer,
 * or a string of digits, before year 10000. Returns 0 with *out in epoch seconds, or
 * -1 with *err (bad_type, bad_value) naming field. */
int deal_take_time(const struct cJSON *v, const char *field, int64_t *out, struct err *err);

/* The length of url's scheme and "://" when it is http or https in any case (7 or 8),
 * else 0. Ingest and the click redirect both ask this, so that a URL one accepts the
 * other does too ("HTTPS://..." included). */
int deal_url_scheme_len(const char *url);

#endif
