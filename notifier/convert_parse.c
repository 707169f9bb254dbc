/*
 * convert_parse.c: a conversion's JSON validated into struct convert_in, and the
 * outcome convert.lua records told in words (stage: record).
 *
 * Pure: no Redis, no clock, no logging. Every member of the contract
 * (docs/attribution.md §2) is checked here, and a refusal names the member at fault,
 * so the consumer (convert.c) only has to dead-letter it. Must never accept what
 * convert.lua would read differently (a member given twice, a cut string).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clicks.h"
#include "clicktok.h"
#include "convert.h"
#include "deal.h"
#include "jsonv.h"
#include "keys.h"
#include "shortlink.h"

#define CONVERT_PAYLOAD_MAX 16384
#define CONVERT_REVENUE_MAX 1e9
#define CONVERT_FUTURE_MAX_S 86400   /* ordered_at may run this far ahead */

/* A string member of 1..max bytes without control characters, copied into buf. */
static int
convert_string(const cJSON *root, const char *name, size_t max, char *buf,
    size_t size, struct err *err)
{
	const cJSON *v = jv_field(root, name);
	size_t n;

	if (v == NULL)
		return jv_missing(err, name);
	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return jv_bad_type(err, name, "string", v);
	n = strlen(v->valuestring);
	if (n == 0 || n > max || n >= size)
		return err_set(err, ERR_INPUT, "bad_value", name, "%s: must be 1..%zu bytes",
		    name, max);
	if (jv_has_control(v->valuestring))
		return jv_bad_value(err, name, "control characters are not allowed");
	memcpy(buf, v->valuestring, n + 1);
	return 0;
}

int
convert_parse(const char *json, size_t len, const unsigned char *key, size_t keylen,
    struct convert_in *out, struct err *err)
{
	static const char *const names[] = { "deal_id", "order_id", "revenue", "currency",
		"code", "click_token", "push_id", "subscriber_id", "ordered_at",
		"product_id" };
	static const char *const kinds[] = { "code", "click_token", "push_id",
		"subscriber_id" };
	cJSON *root = NULL;
	const cJSON *v;
	char sub[CLICKTOK_ID_MAX + 1], entry[64], ch[16];
	int rv = -1;
	size_t i, n = 0;

	memset(out, 0, sizeof(*out));
	/* The deal parser's strict reading: no NUL or \u0000 to cut a C string short, no
	 * invalid UTF-8, nothing after the object. */
	if ((root = deal_json_open(json, len, CONVERT_PAYLOAD_MAX, "conversion",
	    err)) == NULL) {
		if (err->kind != ERR_NOMEM) {
			if (strcmp(err->code, "not_object") == 0)
				snprintf(err->code, sizeof(err->code), "bad_type");
			else if (strcmp(err->code, "binary") == 0)
				snprintf(err->code, sizeof(err->code), "not_json");
			snprintf(err->field, sizeof(err->field), "conversion");
		}
		goto out;
	}
	if (jv_check_unique(root, names, sizeof(names) / sizeof(names[0]), "", err) < 0)
		goto out;
	if (convert_string(root, "deal_id", MODEL_ID_MAX, out->deal_id,
	    sizeof(out->deal_id), err) < 0)
		goto out;
	if (!deal_id_is_valid(out->deal_id)) {
		jv_bad_value(err, "deal_id", "only printable ASCII without spaces is allowed");
		goto out;
	}
	if (convert_string(root, "order_id", 128, out->order_id, sizeof(out->order_id),
	    err) < 0)
		goto out;
	if ((v = jv_field(root, "revenue")) == NULL) {
		jv_missing(err, "revenue");
		goto out;
	}
	if (!cJSON_IsNumber(v)) {
		jv_bad_type(err, "revenue", "number", v);
		goto out;
	}
	if (!isfinite(v->valuedouble) || v->valuedouble < 0 ||
	    v->valuedouble > CONVERT_REVENUE_MAX) {
		jv_bad_value(err, "revenue", "must be a finite number from 0 to 1e9");
		goto out;
	}
	out->revenue = v->valuedouble;
	if (convert_string(root, "currency", 3, out->currency, sizeof(out->currency),
	    err) < 0)
		goto out;
	for (i = 0; i < 3; i++)
		if (out->currency[i] < 'A' || out->currency[i] > 'Z')
			break;
	if (i != 3) {
		jv_bad_value(err, "currency", "must be an ISO 4217 code (three capital letters)");
		goto out;
	}
	for (i = 0; i < 4; i++) {
		if (jv_field(root, kinds[i]) == NULL)
			continue;
		if (n++ > 0) {
			err_set(err, ERR_INPUT, "ambiguous", kinds[i], "%s: only one of code, "
			    "click_token, push_id, subscriber_id may be given (also %s)",
			    kinds[i], out->kind);
			goto out;
		}
		out->kind = kinds[i];
	}
	if (n == 0) {
		err_set(err, ERR_INPUT, "missing_field", "code", "code: one of code, "
		    "click_token, push_id, subscriber_id is required");
		goto out;
	}
	if (strcmp(out->kind, "code") == 0) {
		if (convert_string(root, "code", 64, out->value, sizeof(out->value), err) < 0)
			goto out;
	} else if (strcmp(out->kind, "subscriber_id") == 0) {
		if (convert_string(root, "subscriber_id", MODEL_ID_MAX, out->value,
		    sizeof(out->value), err) < 0)
			goto out;
		if (!deal_id_is_valid(out->value)) {
			jv_bad_value(err, "subscriber_id", "only printable ASCII without spaces "
			    "is allowed");
			goto out;
		}
	} else if (strcmp(out->kind, "push_id") == 0) {
		if (convert_string(root, "push_id", CLICKTOK_ID_MAX, out->value,
		    sizeof(out->value), err) < 0)
			goto out;
	} else {
		char tok[CLICKTOK_MAX + 1];

		if (convert_string(root, "click_token", CLICKTOK_MAX, tok, sizeof(tok),
		    err) < 0)
			goto out;
		/* A short link's code (docs/attribution.md) names its push through
		 * link:<code>, read before the script. */
		if (key != NULL && strlen(tok) == SHORTLINK_LEN && shortlink_check(key,
		    keylen, tok, SHORTLINK_LEN, keys_shards(), NULL) == 1) {
			memcpy(out->value, tok, SHORTLINK_LEN + 1);
			out->short_code = 1;
		} else if (key == NULL || clicktok_parse(key, keylen, tok, out->value,
		    sizeof(out->value)) < 0) {
			jv_bad_value(err, "click_token", "not a valid click token");
			snprintf(err->code, sizeof(err->code), "bad_token");
			goto out;
		}
	}
	if (strcmp(out->kind, "subscriber_id") != 0 && strcmp(out->kind, "code") != 0 &&
	    !out->short_code && clicks_split_push_id(out->value, entry, sizeof(entry), sub, sizeof(sub), ch,
	    sizeof(ch)) < 0) {
		jv_bad_value(err, out->kind, "not a push id (<entry>:<subscriber>:<channel>)");
		goto out;
	}
	if ((v = jv_field(root, "ordered_at")) != NULL) {
		if (deal_take_time(v, "ordered_at", &out->ordered_at, err) < 0)
			goto out;
		if (out->ordered_at <= 0) {
			jv_bad_value(err, "ordered_at", "must be after 1970-01-01T00:00:00Z");
			goto out;
		}
		out->has_ordered_at = 1;
	}
	if (jv_field(root, "product_id") != NULL) {
		if (convert_string(root, "product_id", CONVERT_PRODUCT_MAX, out->product_id,
		    sizeof(out->product_id), err) < 0)
			goto out;
		if (!deal_id_is_valid(out->product_id)) {
			jv_bad_value(err, "product_id", "only printable ASCII without spaces "
			    "is allowed");
			goto out;
		}
	}
	rv = 0;
out:
	cJSON_Delete(root);
	return rv;
}

int
convert_check_time(const struct convert_in *in, int64_t now, struct err *err)
{
	if (in->has_ordered_at && in->ordered_at > now + CONVERT_FUTURE_MAX_S)
		return err_set(err, ERR_INPUT, "bad_value", "ordered_at", "ordered_at: more "
		    "than a day after the notifier's clock (%lld)", (long long)now);
	return 0;
}

int
convert_outcome_text(const char *o, char *buf, size_t size)
{
	static const struct {
		const char *prefix, *verb;
	} kinds[] = {
		{ "attributed\t", "attributed to push" },
		{ "halo\t", "halo of push" },
	};
	const char *t;
	size_t i, n;
	int w;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = strlen(kinds[i].prefix);
		if (strncmp(o, kinds[i].prefix, n) != 0)
			continue;
		o += n;
		/* "<push>\t<window>"; before windows were kept, "<push>" alone */
		if ((t = strchr(o, '\t')) == NULL)
			w = snprintf(buf, size, "%s %s", kinds[i].verb, o);
		else if (strcmp(t + 1, "code") == 0)
			w = snprintf(buf, size, "%s %.*s by its code%s", kinds[i].verb,
			    (int)(t - o), o, i == 1 ? " (another product)" : "");
		else
			w = snprintf(buf, size, "%s %.*s in its %s window%s", kinds[i].verb,
			    (int)(t - o), o, t + 1, i == 1 ? " (another product)" : "");
		return w < 0 || (size_t)w >= size ? -1 : 0;
	}
	if (strcmp(o, "unattributed\toutside_window") == 0)
		w = snprintf(buf, size, "unattributed: outside_window (ordered outside the "
		    "push's click and delivery windows)");
	else
		w = snprintf(buf, size, "%s", o);
	return w < 0 || (size_t)w >= size ? -1 : 0;
}
