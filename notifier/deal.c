/*
 * deal.c: parse and validate one deal from the "deals" stream into a struct deal.
 *
 * Stage: ingest. The input is hostile: every byte sequence ends in either a valid deal
 * or an error whose code is the dead-letter reason and whose message starts with the
 * field at fault (contract: docs/contracts.md). Must never crash, never read past len,
 * never accept a deal that is malformed, expired or too far ahead, and never log:
 * the caller decides what to do with the error.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "deal.h"
#include "jsonv.h"
#include "timefmt.h"

#define DEAL_SHORT_MAX 128                  /* category, brand, campaign */
#define DEAL_TAG_MAX 64
#define DEAL_CODE_MAX 64
#define DEAL_POOL_MAX 200
#define DEAL_REGION_MIN 2
#define DEAL_REGION_MAX 8
#define DEAL_PRICE_MAX 1e9
#define DEAL_QUANTITY_MAX 1000000
#define DEAL_AHEAD_MAX (366LL * 86400)      /* expires_at must be closer than this */
#define DEAL_TIME_ABS_MAX 253402300799LL    /* 9999-12-31T23:59:59Z */

/* Fields of the contract; a second occurrence of any of them is refused, so that no
 * two JSON parsers can read two different deals out of one entry. Unknown fields are
 * ignored (forward compatibility). */
static const char *const deal_fields[] = {
	"id", "cancel", "title", "url", "expires_at", "category", "brand", "tags",
	"region", "price", "list_price", "currency", "code", "code_pool", "quantity",
	"starts_at", "campaign", "update", "test_to", "confirmed", "product_id",
};

/* "test_to": the subscriber ids of a test send (docs/rules.md), 1..DEAL_TEST_TO_MAX
 * of them, each a valid id, kept as given (ids are case-sensitive). */
static int take_test_to(const cJSON *obj, struct strlist *out, struct err *err)
{
	const cJSON *v = jv_field(obj, "test_to"), *e;
	size_t n;

	if (v == NULL)
		return 0;
	if (!cJSON_IsArray(v))
		return jv_bad_type(err, "test_to", "an array of subscriber ids", v);
	n = (size_t)cJSON_GetArraySize(v);
	if (n == 0 || n > DEAL_TEST_TO_MAX)
		return err_set(err, ERR_INPUT, "bad_value", "test_to",
		    "test_to: 1 to %d subscriber ids", DEAL_TEST_TO_MAX);
	if ((out->v = calloc(n, sizeof(*out->v))) == NULL)
		return jv_nomem(err, "test_to");
	cJSON_ArrayForEach(e, v) {
		if (!cJSON_IsString(e) || !deal_id_is_valid(e->valuestring))
			return err_set(err, ERR_INPUT, "bad_value", "test_to",
			    "test_to[%zu]: a subscriber id (1 to %d printable characters, no "
			    "space)", out->n, MODEL_ID_MAX);
		if ((out->v[out->n] = strdup(e->valuestring)) == NULL)
			return jv_nomem(err, "test_to");
		out->n++;
	}
	return 0;
}

/* ---- document level (shared with subscriber.c through deal.h) ---- */

/* Length of the longest prefix of s that is strict UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF) without a NUL byte; len when all of it is. */
size_t deal_utf8_valid_prefix(const unsigned char *s, size_t len)
{
	size_t i = 0, k, n;
	uint32_t cp, min;

	while (i < len) {
		unsigned c = s[i];

		if (c == 0)
			return i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			min = 0x10000;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		cp = c & (0x3fu >> n);
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

/* Offset of the first "\u0000" escape inside a JSON string of s, or len when there is
 * none. Only meaningful for text cJSON accepts; anything else fails parsing anyway. */
static size_t escaped_nul_at(const char *s, size_t len)
{
	size_t i;
	int in_string = 0;

	for (i = 0; i < len; i++) {
		if (!in_string) {
			in_string = s[i] == '"';
			continue;
		}
		if (s[i] == '"') {
			in_string = 0;
		} else if (s[i] == '\\' && i + 1 < len) {
			if (s[i + 1] == 'u' && len - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
				return i;
			i++;                 /* skip the escaped character */
		}
	}
	return len;
}

struct cJSON *deal_json_open(const char *json, size_t len, size_t max, const char *what,
    struct err *err)
{
	cJSON *root = NULL;
	char *buf = NULL;
	const char *end = NULL;
	size_t at;

	if (json == NULL)
		len = 0;
	if (len > max) {
		err_set(err, ERR_INPUT, "too_large", NULL, "%s: %zu bytes, over the limit of %zu",
		    what, len, max);
		goto out;
	}
	at = deal_utf8_valid_prefix((const unsigned char *)json, len);
	if (at < len) {
		err_set(err, ERR_INPUT, "binary", NULL, "%s: %s at byte %zu", what,
		    json[at] == '\0' ? "NUL byte" : "not valid UTF-8", at);
		goto out;
	}
	at = escaped_nul_at(json, len);
	if (at < len) {
		err_set(err, ERR_INPUT, "binary", NULL, "%s: escaped NUL (\\u0000) at byte %zu",
		    what, at);
		goto out;
	}
	/* cJSON wants a terminated buffer; with require_null_terminated the length must
	 * include the terminator, and trailing garbage is refused. */
	buf = malloc(len + 1);
	if (buf == NULL) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "%s: out of memory", what);
		goto out;
	}
	if (len > 0)
		memcpy(buf, json, len);
	buf[len] = '\0';
	root = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);
	if (root == NULL) {
		/* end is what cJSON_GetErrorPtr() would return, without its global. */
		at = end != NULL && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
		err_set(err, ERR_INPUT, "not_json", NULL, "%s: not valid JSON near byte %zu",
		    what, at);
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		err_set(err, ERR_INPUT, "not_object", NULL, "%s: expected a JSON object, got %s",
		    what, jv_type_name(root));
		cJSON_Delete(root);
		root = NULL;
		goto out;
	}
out:
	free(buf);
	return root;
}

int deal_id_is_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++) {
		if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
			return 0;
	}
	return n >= 1 && n <= MODEL_ID_MAX;
}

/* ---- field helpers: each returns 0, or -1 with *err naming the field ---- */

static int is_printable_token(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	}
	return 1;
}

/* A required string: absent -> missing_field. */
static int req_string(const cJSON *obj, const char *field, size_t max, char **out,
    struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);

	if (v == NULL)
		return jv_missing(err, field);
	return jv_take_string(v, field, max, out, err);
}

/* An optional free-text string (no control characters), left NULL when absent. */
static int opt_text(const cJSON *obj, const char *field, size_t max, char **out,
    struct err *err)
{
	const cJSON *v = jv_field(obj, field);

	if (v == NULL)
		return 0;
	if (jv_take_string(v, field, max, out, err) < 0)
		return -1;
	if (jv_has_control(*out))
		return err_set(err, ERR_INPUT, "bad_value", field,
		    "%s: contains a control character", field);
	return 0;
}

/* An optional printable token (no space or control character) of 1..max bytes. */
static int opt_token(const cJSON *obj, const char *field, size_t max, char **out,
    struct err *err)
{
	const cJSON *v = jv_field(obj, field);

	if (v == NULL)
		return 0;
	if (jv_take_string(v, field, max, out, err) < 0)
		return -1;
	if (!is_printable_token(*out))
		return err_set(err, ERR_INPUT, "bad_value", field,
		    "%s: only printable ASCII without spaces is allowed", field);
	return 0;
}

/* An optional finite number in [0, DEAL_PRICE_MAX]. */
static int opt_price(const cJSON *obj, const char *field, int *has, double *out,
    struct err *err)
{
	const cJSON *v = jv_field(obj, field);

	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v))
		return jv_bad_type(err, field, "a number", v);
	if (!isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > DEAL_PRICE_MAX)
		return err_set(err, ERR_INPUT, "bad_value", field,
		    "%s: must be between 0 and 1000000000", field);
	*has = 1;
	*out = v->valuedouble;
	return 0;
}

static int take_time(const cJSON *v, const char *field, int64_t *out, struct err *err)
{
	return deal_take_time(v, field, out, err);
}

int
deal_take_time(const cJSON *v, const char *field, int64_t *out, struct err *err)
{
	const char *s;
	size_t n;

	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (!isfinite(d) || d < -(double)DEAL_TIME_ABS_MAX ||
		    d > (double)DEAL_TIME_ABS_MAX || (double)(int64_t)d != d)
			return err_set(err, ERR_INPUT, "bad_value", field,
			    "%s: epoch seconds must be a whole number before year 10000", field);
		*out = (int64_t)d;
		return 0;
	}
	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return jv_bad_type(err, field, "an RFC 3339 string or epoch seconds", v);
	s = v->valuestring;
	n = strspn(s, "0123456789");
	if (n > 0 && s[n] == '\0') {
		char *end = NULL;
		long long t;

		errno = 0;
		t = strtoll(s, &end, 10);
		if (errno != 0 || end != s + n || t > DEAL_TIME_ABS_MAX)
			return err_set(err, ERR_INPUT, "bad_value", field,
			    "%s: epoch seconds out of range", field);
		*out = t;
		return 0;
	}
	if (time_parse_rfc3339(s, out) < 0)
		return err_set(err, ERR_INPUT, "bad_value", field,
		    "%s: not RFC 3339 or epoch seconds", field);
	return 0;
}

int deal_url_scheme_len(const char *url)
{
	if (strncasecmp(url, "http://", 7) == 0)
		return 7;
	if (strncasecmp(url, "https://", 8) == 0)
		return 8;
	return 0;
}

/* url: http:// or https://, a non-empty host, optional port, no userinfo, printable
 * ASCII only. */
static int check_url(const char *url, struct err *err)
{
	const char *p, *host, *colon;
	size_t hlen;

	if (!is_printable_token(url))
		return err_set(err, ERR_INPUT, "bad_value", "url",
		    "url: spaces, control characters and non-ASCII bytes are not allowed");
	if (deal_url_scheme_len(url) > 0)
		host = url + deal_url_scheme_len(url);
	else
		return err_set(err, ERR_INPUT, "bad_value", "url",
		    "url: must start with http:// or https://");
	hlen = strcspn(host, "/?#");
	if (memchr(host, '@', hlen) != NULL)
		return err_set(err, ERR_INPUT, "bad_value", "url",
		    "url: user information (user@host) is not allowed");
	colon = memchr(host, ':', hlen);
	if (colon != NULL && host[0] != '[') {
		size_t plen = hlen - (size_t)(colon - host) - 1;

		for (p = colon + 1; p < host + hlen; p++) {
			if (*p < '0' || *p > '9')
				return err_set(err, ERR_INPUT, "bad_value", "url",
				    "url: port must be digits");
		}
		if (plen > 5)
			return err_set(err, ERR_INPUT, "bad_value", "url", "url: bad port");
		hlen = (size_t)(colon - host);
	}
	if (hlen == 0)
		return err_set(err, ERR_INPUT, "bad_value", "url", "url: empty host");
	return 0;
}

static int check_region(const char *field, char *s, struct err *err)
{
	size_t n = strlen(s);

	if (n < DEAL_REGION_MIN || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-") != n)
		return err_set(err, ERR_INPUT, "bad_value", field,
		    "%s: 2..8 letters, digits or '-'", field);
	jv_upper(s);
	return 0;
}

/* Optional fields, in contract order. */
static int parse_optional(const cJSON *obj, struct deal *d, struct err *err)
{
	const cJSON *v;
	char *s = NULL;
	int rc = -1;

	if (opt_text(obj, "category", DEAL_SHORT_MAX, &d->category, err) < 0 ||
	    opt_text(obj, "brand", DEAL_SHORT_MAX, &d->brand, err) < 0 ||
	    jv_strlist(obj, "tags", "tags", DEAL_TAG_MAX, &d->tags, err) < 0 ||
	    opt_token(obj, "region", DEAL_REGION_MAX, &d->region, err) < 0)
		goto out;
	if (d->category != NULL)
		jv_lower(d->category);
	if (d->brand != NULL)
		jv_lower(d->brand);
	if (d->region != NULL && check_region("region", d->region, err) < 0)
		goto out;
	if (opt_price(obj, "price", &d->has_price, &d->price, err) < 0 ||
	    opt_price(obj, "list_price", &d->has_list_price, &d->list_price, err) < 0)
		goto out;
	if (d->has_list_price && d->list_price <= 0) {
		err_set(err, ERR_INPUT, "bad_value", "list_price", "list_price: must be above 0");
		goto out;
	}
	if (opt_token(obj, "currency", DEAL_CODE_MAX, &s, err) < 0)
		goto out;
	if (s != NULL) {
		if (strlen(s) != 3 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
			err_set(err, ERR_INPUT, "bad_value", "currency",
			    "currency: three upper-case letters (ISO 4217)");
			goto out;
		}
		memcpy(d->currency, s, 4);
	}
	if (opt_token(obj, "code", DEAL_CODE_MAX, &d->code, err) < 0 ||
	    opt_token(obj, "code_pool", DEAL_POOL_MAX, &d->code_pool, err) < 0)
		goto out;
	/* The pool is a Redis key the notifier pops from: keep publishers to their own
	 * namespace so a deal can never name (and drain) one of ours. No braces: sharded,
	 * the pool's records sit on the slot of its whole name ({<pool>}:out,
	 * docs/sharding.md 4c), which a hash tag inside the name would move. */
	if (d->code_pool != NULL && (strncmp(d->code_pool, "codes:", 6) != 0 ||
	    d->code_pool[6] == '\0' || strpbrk(d->code_pool, "{}") != NULL)) {
		err_set(err, ERR_INPUT, "bad_value", "code_pool",
		    "code_pool: must be a key named codes:<something>, without { or }");
		goto out;
	}
	v = jv_field(obj, "quantity");
	if (v != NULL) {
		if (!cJSON_IsNumber(v)) {
			jv_bad_type(err, "quantity", "an integer", v);
			goto out;
		}
		if (!(v->valuedouble >= 1 && v->valuedouble <= DEAL_QUANTITY_MAX) ||
		    (double)(long)v->valuedouble != v->valuedouble) {
			err_set(err, ERR_INPUT, "bad_value", "quantity",
			    "quantity: a whole number from 1 to %d", DEAL_QUANTITY_MAX);
			goto out;
		}
		d->quantity = (long)v->valuedouble;
	}
	v = jv_field(obj, "starts_at");
	if (v != NULL && take_time(v, "starts_at", &d->starts_at, err) < 0)
		goto out;
	if (opt_text(obj, "campaign", DEAL_SHORT_MAX, &d->campaign, err) < 0 ||
	    opt_token(obj, "product_id", DEAL_SHORT_MAX, &d->product_id, err) < 0 ||
	    take_test_to(obj, &d->test_to, err) < 0)
		goto out;
	v = jv_field(obj, "confirmed");
	if (v != NULL && !cJSON_IsBool(v)) {
		jv_bad_type(err, "confirmed", "a boolean", v);
		goto out;
	}
	d->confirmed = v != NULL && cJSON_IsTrue(v);
	rc = 0;
out:
	free(s);
	return rc;
}

/* Everything but id and cancel, then the checks across fields and against now (an
 * update may already be expired: it then stops the deal's pending pushes). */
static int parse_deal_fields(const cJSON *obj, struct deal *d, int64_t now,
    struct err *err)
{
	const cJSON *v;
	char buf[32];

	if (req_string(obj, "title", MODEL_TEXT_MAX, &d->title, err) < 0)
		return -1;
	if (jv_has_control(d->title) ||
	    deal_utf8_valid_prefix((const unsigned char *)d->title, strlen(d->title)) !=
	    strlen(d->title))
		return err_set(err, ERR_INPUT, "bad_value", "title",
		    "title: contains a control character or invalid UTF-8");
	if (req_string(obj, "url", MODEL_URL_MAX, &d->url, err) < 0 ||
	    check_url(d->url, err) < 0)
		return -1;
	v = cJSON_GetObjectItemCaseSensitive(obj, "expires_at");
	if (v == NULL)
		return jv_missing(err, "expires_at");
	if (take_time(v, "expires_at", &d->expires_at, err) < 0)
		return -1;
	if (parse_optional(obj, d, err) < 0)
		return -1;

	if (d->has_price && d->has_list_price && d->list_price > d->price)
		d->discount_pct = round(10000.0 * (d->list_price - d->price) /
		    d->list_price) / 100.0;
	if (cJSON_GetObjectItemCaseSensitive(obj, "starts_at") != NULL &&
	    d->starts_at >= d->expires_at)
		return err_set(err, ERR_INPUT, "bad_value", "starts_at",
		    "starts_at: must be before expires_at");
	if (d->expires_at <= now && !d->update)
		return err_set(err, ERR_INPUT, "expired", "expires_at",
		    "expires_at: expired at %s", time_format_rfc3339(d->expires_at, buf,
		    sizeof(buf)));
	if (d->expires_at >= now + DEAL_AHEAD_MAX)
		return err_set(err, ERR_INPUT, "bad_value", "expires_at",
		    "expires_at: %s is 366 days or more ahead",
		    time_format_rfc3339(d->expires_at, buf, sizeof(buf)));
	return 0;
}

struct deal *deal_parse(const char *json, size_t len, int64_t now, struct err *err)
{
	cJSON *root;
	struct deal *d = NULL;
	const cJSON *v;
	int ok = 0;

	err_clear(err);
	root = deal_json_open(json, len, MODEL_DEAL_JSON_MAX, "deal", err);
	if (root == NULL)
		goto out;
	if (jv_check_unique(root, deal_fields, sizeof(deal_fields) / sizeof(deal_fields[0]),
	    "", err) < 0)
		goto out;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		jv_nomem(err, "deal");
		goto out;
	}
	if (req_string(root, "id", MODEL_ID_MAX, &d->id, err) < 0)
		goto out;
	if (!deal_id_is_valid(d->id)) {
		err_set(err, ERR_INPUT, "bad_value", "id",
		    "id: only printable ASCII without spaces is allowed");
		goto out;
	}
	v = jv_field(root, "cancel");
	if (v != NULL) {
		/* The cancel form: nothing else is required or read. */
		if (!cJSON_IsBool(v)) {
			jv_bad_type(err, "cancel", "true", v);
			goto out;
		}
		if (!cJSON_IsTrue(v)) {
			err_set(err, ERR_INPUT, "bad_value", "cancel",
			    "cancel: must be true when present");
			goto out;
		}
		d->cancel = 1;
		ok = 1;
		goto out;
	}
	v = jv_field(root, "update");
	if (v != NULL) {
		/* The update form: a whole deal, read like a new one. */
		if (!cJSON_IsBool(v)) {
			jv_bad_type(err, "update", "true", v);
			goto out;
		}
		if (!cJSON_IsTrue(v)) {
			err_set(err, ERR_INPUT, "bad_value", "update",
			    "update: must be true when present");
			goto out;
		}
		d->update = 1;
	}
	if (parse_deal_fields(root, d, now, err) < 0)
		goto out;
	ok = 1;
out:
	cJSON_Delete(root);
	if (!ok) {
		deal_free(d);
		d = NULL;
	}
	return d;
}

void deal_free(struct deal *d)
{
	if (d == NULL)
		return;
	free(d->id);
	free(d->title);
	free(d->category);
	free(d->brand);
	jv_strlist_free(&d->tags);
	jv_strlist_free(&d->test_to);
	free(d->region);
	free(d->url);
	free(d->code);
	free(d->code_pool);
	free(d->campaign);
	free(d->product_id);
	free(d);
}
