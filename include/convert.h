/*
 * convert.h: conversions from the "conversions" stream, attributed to the push that
 * caused them (stage: record).
 *
 * A consumer of its own (group "attribution") validates each entry, then one script
 * (convert.lua) dedupes the order, attributes it (code, click token, push id or
 * subscriber), counts it in the funnel reports, raises engagement and acks; a bad
 * entry is dead-lettered to conversions:dead and acked in one step. A tick also
 * lets engagement decay for pushes nobody clicked within 72 h (decay.c). Contract
 * and counters: docs/attribution.md.
 */
#ifndef DEALPUSH_CONVERT_H
#define DEALPUSH_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CONVERT_PRODUCT_MAX 128

struct app;
struct convert;

/* A conversion that passed validation; strings borrowed from the parsed JSON or, for
 * a click token, push_id filled from it. */
struct convert_in {
	char deal_id[129];
	char order_id[129];
	double revenue;
	char currency[4];
	const char *kind;        /* "code", "click_token", "push_id", "subscriber_id" */
	char value[257];         /* the code, push id (also from a token) or subscriber */
	int has_ordered_at;      /* 0: the order is timed when the notifier reads it */
	int64_t ordered_at;      /* epoch seconds ("ordered_at", RFC 3339 or epoch) */
	char product_id[CONVERT_PRODUCT_MAX + 1]; /* "" when not given */
	int short_code;          /* 1: value is a short link's code (a click_token), its
	                          * push id still to be read (link:<code>) */
};

/* Starts the consumer on a connection of its own (app->rcfg) and the decay tick.
 * Returns the handle, or NULL (logged) when out of memory. app is borrowed and must
 * outlive the handle. */
struct convert *convert_new(const struct app *app);

/* Stops reading and frees c; replies still due are dropped and their entries stay
 * pending (read again after a restart). NULL does nothing. */
void convert_free(struct convert *c);

/*
 * Validates one conversion (len bytes of untrusted JSON) into *out. key/keylen is the
 * click secret (NULL: a click_token cannot be checked and is refused). Returns 0, or
 * -1 with *err: code "not_json", "too_large", "bad_type", "bad_value",
 * "missing_field", "ambiguous" or "bad_token" (ERR_INPUT), or "no_memory"
 * (ERR_NOMEM), field naming the member at fault. Pure; exposed for tests.
 */
int convert_parse(const char *json, size_t len, const unsigned char *key,
    size_t keylen, struct convert_in *out, struct err *err);

/* The part of validation that needs the notifier's clock: an ordered_at more than a
 * day after now (epoch s) is refused. Returns 0, or -1 with *err (bad_value,
 * field ordered_at). */
int convert_check_time(const struct convert_in *in, int64_t now, struct err *err);

/* The outcome o of order:<id> after "<entry>\t" ("attributed\t<push>\t<window>",
 * "halo\t<push>\t<window>", "holdout", "unattributed[\toutside_window]") in words,
 * as `dealpushctl convert` prints it, into buf. Returns 0, or -1 when it was cut. */
int convert_outcome_text(const char *o, char *buf, size_t size);

#endif
