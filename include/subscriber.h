/*
 * subscriber.h: parse, validate and serialise a subscriber (stage: match, admin).
 *
 * The only way to build a struct subscriber. Input is hostile: E.164 phone, IANA
 * timezone that exists in tzdata, known channels, RFC 3339 consent timestamps, sizes.
 * The canonical JSON written by subscriber_to_json() is what is stored in Redis.
 * A parsed subscriber is a compact record (model.h): one allocation plus references
 * to interned strings (intern.h); parsing is therefore not thread-safe.
 */
#ifndef DEALPUSH_SUBSCRIBER_H
#define DEALPUSH_SUBSCRIBER_H

#include <stddef.h>

#include "err.h"
#include "channel.h"
#include "model.h"

/*
 * Parses len bytes of JSON into a new subscriber owned by the caller, or returns NULL
 * with *err filled: code one of too_large, binary, not_json, not_object,
 * missing_field, bad_type, bad_value, too_long, no_memory; field names the offending
 * field with its path ("interests.max_price", "consent.sms").
 * The timezone is checked against the tzdata files under TZDIR (default
 * /usr/share/zoneinfo); each distinct name is looked up once and remembered.
 */
struct subscriber *subscriber_parse(const char *json, size_t len, struct err *err);

/* subscriber_parse that also hands over the canonical JSON it built to check the size
 * limit (*canon, the caller frees it; left untouched when NULL is returned), so that
 * a bulk import does not build it twice. */
struct subscriber *subscriber_parse_canon(const char *json, size_t len, char **canon,
    struct err *err);

/*
 * subscriber_parse() for what the store holds (the canonical JSON another process
 * accepted): every field is validated the same way, only the check that the
 * canonical form fits MODEL_SUB_JSON_MAX is left out, since the input is that form.
 */
struct subscriber *subscriber_parse_stored(const char *json, size_t len,
    struct err *err);

/* Returns the canonical JSON of s as a new string the caller frees, or NULL on OOM. */
char *subscriber_to_json(const struct subscriber *s);

/* The consent the store keeps for channel c, as the admin_sub_put.lua argument:
 * epoch seconds in buf, or "" when s has not consented to c or did not choose it.
 * Returns buf. */
const char *subscriber_consent_arg(const struct subscriber *s, enum channel c, char *buf,
    size_t size);

/* Frees s and drops its references on interned strings; subscriber_free(NULL) does
 * nothing. Only for subscribers built by subscriber_parse*(). */
void subscriber_free(struct subscriber *s);

/* 1 when phone is E.164 (+ then 8..15 digits, first digit not 0), else 0. */
int phone_is_e164(const char *phone);

struct tzcache;

/* Subscriber time zones are checked against zones (borrowed, loaded by the caller with
 * tzcache_load_all) instead of tzdata files; NULL goes back to the files. */
void sub_tz_use(struct tzcache *zones);

#endif
