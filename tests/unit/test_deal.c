/*
 * test_deal.c: the deal contract as enforced by deal_parse() (notifier/deal.c).
 *
 * One test per rule of docs/contracts.md: each error code with the field it names,
 * valid full and minimal deals, both expiry formats, the cancel form, the derived
 * discount, and hostile input (every truncation, random bytes) that must never crash.
 * Time is fixed: NOW is 2026-11-22T17:53:20Z, never the real clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deal.h"

#define NOW 1795370000LL                       /* 2026-11-22T17:53:20Z */
#define EXPIRY "2026-11-22T19:00:00Z"          /* 1795374000 */

static const char full_deal[] =
	"{\"id\": \"outlet-7731\", \"title\": \"Latitude 7440, refurbished\","
	" \"category\": \"Laptop\", \"brand\": \"DELL\", \"tags\": [\"Business\", \"14-inch\"],"
	" \"region\": \"us\", \"price\": 649.00, \"list_price\": 1099.00, \"currency\": \"USD\","
	" \"url\": \"https://shop.example/outlet/7731\", \"code\": \"SAVE20\","
	" \"code_pool\": \"codes:outlet-7731\", \"quantity\": 10,"
	" \"starts_at\": \"2026-11-22T17:00:00Z\", \"expires_at\": \"" EXPIRY "\","
	" \"campaign\": \"black-friday\"}";

/* Parses a NUL-terminated string at NOW. */
static struct deal *parse(const char *json, struct err *e)
{
	return deal_parse(json, strlen(json), NOW, e);
}

/* A minimal valid deal plus one more member (extra may be ""). */
static struct deal *parse_with(const char *extra, struct err *e)
{
	char buf[MODEL_DEAL_JSON_MAX + 256];

	snprintf(buf, sizeof(buf), "{\"id\": \"d-1\", \"title\": \"Monitor\", \"url\":"
	    " \"https://shop.example/m\", \"expires_at\": \"" EXPIRY "\"%s%s}",
	    extra[0] != '\0' ? ", " : "", extra);
	return parse(buf, e);
}

/* Asserts that d is NULL and e carries code and field, a message that starts with the
 * field (or with "deal" for whole-document errors), and kind ERR_INPUT. */
static void check_refused(struct deal *d, const struct err *e, const char *code,
    const char *field)
{
	const char *prefix = field[0] != '\0' ? field : "deal";

	if (d != NULL) {
		deal_free(d);
		fail_msg("accepted, expected %s on \"%s\"", code, field);
	}
	assert_string_equal(e->code, code);
	assert_string_equal(e->field, field);
	if (strncmp(e->msg, prefix, strlen(prefix)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", e->msg, prefix);
	assert_int_equal(e->kind, ERR_INPUT);
}

static void refused(const char *json, const char *code, const char *field)
{
	struct err e;

	check_refused(parse(json, &e), &e, code, field);
}

static void refused_with(const char *extra, const char *code, const char *field)
{
	struct err e;

	check_refused(parse_with(extra, &e), &e, code, field);
}

static void accepted_with(const char *extra)
{
	struct err e;
	struct deal *d = parse_with(extra, &e);

	if (d == NULL)
		fail_msg("refused %s: %s", extra, e.msg);
	deal_free(d);
}

/* A string of n copies of c, in a static buffer. */
static const char *rep(char c, size_t n)
{
	static char buf[4][4096];
	static int k;
	char *b = buf[k++ % 4];

	memset(b, c, n);
	b[n] = '\0';
	return b;
}

static void full_deal_is_parsed_with_every_field(void **state)
{
	struct err e;
	struct deal *d = parse(full_deal, &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(e.kind, ERR_NONE);
	assert_string_equal(d->id, "outlet-7731");
	assert_int_equal(d->cancel, 0);
	assert_string_equal(d->title, "Latitude 7440, refurbished");
	assert_string_equal(d->category, "laptop");
	assert_string_equal(d->brand, "dell");
	assert_int_equal(d->tags.n, 2);
	assert_string_equal(d->tags.v[0], "business");
	assert_string_equal(d->tags.v[1], "14-inch");
	assert_string_equal(d->region, "US");
	assert_true(d->has_price && d->price == 649.0);
	assert_true(d->has_list_price && d->list_price == 1099.0);
	assert_true(d->discount_pct == 40.95);
	assert_string_equal(d->currency, "USD");
	assert_string_equal(d->url, "https://shop.example/outlet/7731");
	assert_string_equal(d->code, "SAVE20");
	assert_string_equal(d->code_pool, "codes:outlet-7731");
	assert_int_equal(d->quantity, 10);
	assert_int_equal(d->starts_at, 1795366800);
	assert_int_equal(d->expires_at, 1795374000);
	assert_string_equal(d->campaign, "black-friday");
	deal_free(d);
}

static void minimal_deal_needs_only_id_title_url_and_expiry(void **state)
{
	struct err e;
	struct deal *d = parse_with("", &e);

	(void)state;
	assert_non_null(d);
	assert_string_equal(d->id, "d-1");
	assert_null(d->category);
	assert_null(d->brand);
	assert_int_equal(d->tags.n, 0);
	assert_null(d->region);
	assert_false(d->has_price);
	assert_false(d->has_list_price);
	assert_true(d->discount_pct == 0);
	assert_string_equal(d->currency, "");
	assert_null(d->code);
	assert_null(d->code_pool);
	assert_int_equal(d->quantity, 0);
	assert_int_equal(d->starts_at, 0);
	assert_null(d->campaign);
	deal_free(d);
}

static void epoch_expiry_as_an_integer_is_accepted(void **state)
{
	struct err e;
	struct deal *d = parse("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":1795374000}", &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->expires_at, 1795374000);
	deal_free(d);
}

static void epoch_expiry_as_a_string_of_digits_is_accepted(void **state)
{
	struct err e;
	struct deal *d = parse("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":\"1795374000\"}", &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->expires_at, 1795374000);
	deal_free(d);
}

static void rfc3339_expiry_with_an_offset_is_accepted(void **state)
{
	struct err e;
	struct deal *d = parse("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":\"2026-11-22T13:00:00.5-06:00\"}", &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->expires_at, 1795374000);
	deal_free(d);
}

static void malformed_expiry_is_a_bad_value(void **state)
{
	(void)state;
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":"
	    "1795374000.5}", "bad_value", "expires_at");
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":"
	    "\"tomorrow\"}", "bad_value", "expires_at");
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":"
	    "\"2026-11-22\"}", "bad_value", "expires_at");
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":"
	    "\"99999999999999999999\"}", "bad_value", "expires_at");
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":1e300}",
	    "bad_value", "expires_at");
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":\"\"}",
	    "bad_value", "expires_at");
}

static void expiry_of_the_wrong_type_is_a_bad_type(void **state)
{
	(void)state;
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":true}",
	    "bad_type", "expires_at");
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":null}",
	    "bad_type", "expires_at");
	refused("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":[1]}",
	    "bad_type", "expires_at");
}

static void expired_deal_is_refused(void **state)
{
	struct err e;
	struct deal *d = parse("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":\"2026-11-22T17:00:00Z\"}", &e);

	(void)state;
	check_refused(d, &e, "expired", "expires_at");
	assert_string_equal(e.msg, "expires_at: expired at 2026-11-22T17:00:00Z");
}

static void deal_expiring_exactly_now_is_expired(void **state)
{
	char json[256];

	(void)state;
	snprintf(json, sizeof(json), "{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":%lld}", NOW);
	refused(json, "expired", "expires_at");
	snprintf(json, sizeof(json), "{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":%lld}", NOW + 1);
	{
		struct err e;
		struct deal *d = parse(json, &e);

		assert_non_null(d);
		deal_free(d);
	}
}

static void expiry_366_days_ahead_is_refused(void **state)
{
	char json[256];
	struct err e;
	struct deal *d;

	(void)state;
	snprintf(json, sizeof(json), "{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":%lld}", NOW + 366LL * 86400);
	refused(json, "bad_value", "expires_at");
	snprintf(json, sizeof(json), "{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":%lld}", NOW + 366LL * 86400 - 1);
	d = parse(json, &e);
	assert_non_null(d);
	deal_free(d);
}

static void missing_required_fields_are_named(void **state)
{
	(void)state;
	refused("{\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":\"" EXPIRY "\"}",
	    "missing_field", "id");
	refused("{\"id\":\"a\",\"url\":\"http://x\",\"expires_at\":\"" EXPIRY "\"}",
	    "missing_field", "title");
	refused("{\"id\":\"a\",\"title\":\"t\",\"expires_at\":\"" EXPIRY "\"}",
	    "missing_field", "url");
	refused("{}", "missing_field", "id");
}

static void missing_expires_at_names_the_field(void **state)
{
	struct err e;
	struct deal *d = parse("{\"id\":\"a\",\"title\":\"t\",\"url\":\"http://x\"}", &e);

	(void)state;
	check_refused(d, &e, "missing_field", "expires_at");
	assert_string_equal(e.msg, "expires_at: required field is missing");
}

static void field_names_are_case_sensitive(void **state)
{
	(void)state;
	refused("{\"ID\":\"a\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":\""
	    EXPIRY "\"}", "missing_field", "id");
}

static void id_must_be_printable_ascii_without_spaces(void **state)
{
	char json[512];

	(void)state;
	refused("{\"id\":\"\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":1795374000}",
	    "bad_value", "id");
	refused("{\"id\":\"a b\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":1}",
	    "bad_value", "id");
	refused("{\"id\":\"a\\tb\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":1}",
	    "bad_value", "id");
	refused("{\"id\":\"caf\xc3\xa9\",\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":1}",
	    "bad_value", "id");
	refused("{\"id\":7731,\"title\":\"t\",\"url\":\"http://x\",\"expires_at\":1}",
	    "bad_type", "id");
	snprintf(json, sizeof(json), "{\"id\":\"%s\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":1}", rep('a', 129));
	refused(json, "too_long", "id");
	snprintf(json, sizeof(json), "{\"id\":\"%s\",\"title\":\"t\",\"url\":\"http://x\","
	    "\"expires_at\":\"" EXPIRY "\"}", rep('a', 128));
	{
		struct err e;
		struct deal *d = parse(json, &e);

		assert_non_null(d);
		assert_int_equal(strlen(d->id), 128);
		deal_free(d);
	}
}

static void title_must_be_non_empty_text_of_at_most_512_bytes(void **state)
{
	char json[2048];
	struct err e;
	struct deal *d;

	(void)state;
	refused("{\"id\":\"a\",\"title\":\"\",\"url\":\"http://x\",\"expires_at\":1}",
	    "bad_value", "title");
	refused("{\"id\":\"a\",\"title\":42,\"url\":\"http://x\",\"expires_at\":1}",
	    "bad_type", "title");
	refused("{\"id\":\"a\",\"title\":\"line\\nbreak\",\"url\":\"http://x\","
	    "\"expires_at\":\"" EXPIRY "\"}", "bad_value", "title");
	snprintf(json, sizeof(json), "{\"id\":\"a\",\"title\":\"%s\",\"url\":\"http://x\","
	    "\"expires_at\":1}", rep('t', 513));
	refused(json, "too_long", "title");
	snprintf(json, sizeof(json), "{\"id\":\"a\",\"title\":\"%s\",\"url\":\"http://x\","
	    "\"expires_at\":\"" EXPIRY "\"}", rep('t', 512));
	d = parse(json, &e);
	assert_non_null(d);
	deal_free(d);
	d = parse("{\"id\":\"a\",\"title\":\"Kopfh\xc3\xb6rer \\u00e9 \xe2\x82\xac 99\","
	    "\"url\":\"http://x\",\"expires_at\":\"" EXPIRY "\"}", &e);
	assert_non_null(d);
	assert_string_equal(d->title, "Kopfh\xc3\xb6rer \xc3\xa9 \xe2\x82\xac 99");
	deal_free(d);
}

/* A minimal deal whose url member is the JSON value url_value. */
static struct deal *parse_url(const char *url_value, struct err *e)
{
	char buf[8192];

	snprintf(buf, sizeof(buf), "{\"id\": \"d-1\", \"title\": \"Monitor\", \"url\": %s,"
	    " \"expires_at\": \"" EXPIRY "\"}", url_value);
	return parse(buf, e);
}

static void url_refused(const char *url_value, const char *code)
{
	struct err e;

	check_refused(parse_url(url_value, &e), &e, code, "url");
}

static void url_must_be_http_or_https_with_a_host(void **state)
{
	char json[4096];
	struct err e;
	struct deal *d;

	(void)state;
	d = parse_url("\"HTTPS://shop.example:8443/a?b=c#d\"", &e);
	assert_non_null(d);
	assert_string_equal(d->url, "HTTPS://shop.example:8443/a?b=c#d");
	deal_free(d);
	d = parse_url("\"http://[::1]:8080/x\"", &e);
	assert_non_null(d);
	deal_free(d);
	url_refused("\"ftp://shop.example/\"", "bad_value");
	url_refused("\"https://\"", "bad_value");
	url_refused("\"https:///path\"", "bad_value");
	url_refused("\"https://:80/\"", "bad_value");
	url_refused("\"https://shop.example:8o/\"", "bad_value");
	url_refused("\"https://shop.example:123456/\"", "bad_value");
	url_refused("\"https://shop.example/a b\"", "bad_value");
	url_refused("\"https://shop.example/\\u0007\"", "bad_value");
	url_refused("\"https://shop.example/caf\xc3\xa9\"", "bad_value");
	url_refused("\"https://user@evil.example/\"", "bad_value");
	url_refused("\"javascript:alert(1)\"", "bad_value");
	url_refused("\"\"", "bad_value");
	url_refused("{}", "bad_type");
	snprintf(json, sizeof(json), "\"https://x/%s\"", rep('p', 2040));
	url_refused(json, "too_long");
	snprintf(json, sizeof(json), "\"https://x/%s\"", rep('p', 2038));
	d = parse_url(json, &e);
	assert_non_null(d);
	deal_free(d);
}

static void category_and_brand_are_lower_cased_and_limited(void **state)
{
	char extra[512];
	struct err e;
	struct deal *d = parse_with("\"category\": \"MONITOR\", \"brand\": \"LG\"", &e);

	(void)state;
	assert_non_null(d);
	assert_string_equal(d->category, "monitor");
	assert_string_equal(d->brand, "lg");
	deal_free(d);
	snprintf(extra, sizeof(extra), "\"category\": \"%s\"", rep('c', 129));
	refused_with(extra, "too_long", "category");
	snprintf(extra, sizeof(extra), "\"brand\": \"%s\"", rep('b', 129));
	refused_with(extra, "too_long", "brand");
	refused_with("\"brand\": 3", "bad_type", "brand");
	refused_with("\"category\": \"\"", "bad_value", "category");
}

static void tags_are_lower_cased_strings(void **state)
{
	struct err e;
	struct deal *d = parse_with("\"tags\": [\"OLED\", \"Gaming\", \"oled\"]", &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->tags.n, 3);
	assert_string_equal(d->tags.v[0], "oled");
	assert_string_equal(d->tags.v[1], "gaming");
	deal_free(d);
	accepted_with("\"tags\": []");
	refused_with("\"tags\": \"oled\"", "bad_type", "tags");
	refused_with("\"tags\": [\"ok\", 5]", "bad_type", "tags");
	refused_with("\"tags\": [\"\"]", "bad_value", "tags");
}

static void more_than_64_tags_are_too_long(void **state)
{
	char extra[2048];
	size_t n = 0;
	int i;

	(void)state;
	n += (size_t)snprintf(extra + n, sizeof(extra) - n, "\"tags\": [");
	for (i = 0; i < 65; i++)
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s\"t%d\"", i ? "," : "", i);
	snprintf(extra + n, sizeof(extra) - n, "]");
	refused_with(extra, "too_long", "tags");
	snprintf(extra, sizeof(extra), "\"tags\": [\"%s\"]", rep('t', 65));
	refused_with(extra, "too_long", "tags");
	snprintf(extra, sizeof(extra), "\"tags\": [\"%s\"]", rep('t', 64));
	accepted_with(extra);
}

static void region_is_upper_cased_and_2_to_8_characters(void **state)
{
	struct err e;
	struct deal *d = parse_with("\"region\": \"de-by\"", &e);

	(void)state;
	assert_non_null(d);
	assert_string_equal(d->region, "DE-BY");
	deal_free(d);
	refused_with("\"region\": \"U\"", "bad_value", "region");
	refused_with("\"region\": \"ABCDEFGHI\"", "too_long", "region");
	refused_with("\"region\": \"U_S\"", "bad_value", "region");
	refused_with("\"region\": [\"US\"]", "bad_type", "region");
}

static void price_of_the_wrong_type_names_the_type(void **state)
{
	struct err e;
	struct deal *d = parse_with("\"price\": \"649\"", &e);

	(void)state;
	check_refused(d, &e, "bad_type", "price");
	assert_string_equal(e.msg, "price: expected a number, got string");
	refused_with("\"list_price\": true", "bad_type", "list_price");
}

static void prices_must_be_finite_and_in_range(void **state)
{
	(void)state;
	accepted_with("\"price\": 0, \"list_price\": 1e9");
	refused_with("\"price\": -0.01", "bad_value", "price");
	refused_with("\"price\": 1000000000.01", "bad_value", "price");
	refused_with("\"price\": 1e999", "bad_value", "price");
	refused_with("\"list_price\": 0", "bad_value", "list_price");
	refused_with("\"list_price\": -5", "bad_value", "list_price");
}

static void discount_is_derived_from_price_and_list_price(void **state)
{
	struct err e;
	struct deal *d;

	(void)state;
	d = parse_with("\"price\": 649, \"list_price\": 1099", &e);
	assert_non_null(d);
	assert_true(d->discount_pct == 40.95);
	deal_free(d);
	d = parse_with("\"price\": 2, \"list_price\": 3", &e);
	assert_non_null(d);
	assert_true(d->discount_pct == 33.33);
	deal_free(d);
	d = parse_with("\"price\": 0, \"list_price\": 3", &e);
	assert_non_null(d);
	assert_true(d->discount_pct == 100);
	deal_free(d);
	d = parse_with("\"price\": 120, \"list_price\": 100", &e);
	assert_non_null(d);
	assert_true(d->discount_pct == 0);
	deal_free(d);
	d = parse_with("\"price\": 100, \"discount_pct\": 90", &e);
	assert_non_null(d);
	assert_true(d->discount_pct == 0);
	deal_free(d);
	d = parse_with("\"list_price\": 100", &e);
	assert_non_null(d);
	assert_true(d->discount_pct == 0);
	deal_free(d);
}

static void currency_is_three_upper_case_letters(void **state)
{
	(void)state;
	accepted_with("\"currency\": \"EUR\"");
	refused_with("\"currency\": \"usd\"", "bad_value", "currency");
	refused_with("\"currency\": \"US\"", "bad_value", "currency");
	refused_with("\"currency\": \"USDX\"", "bad_value", "currency");
	refused_with("\"currency\": 840", "bad_type", "currency");
}

static void code_is_a_printable_token_of_at_most_64(void **state)
{
	char extra[256];

	(void)state;
	accepted_with("\"code\": \"SAVE-20%\"");
	refused_with("\"code\": \"SAVE 20\"", "bad_value", "code");
	refused_with("\"code\": \"\"", "bad_value", "code");
	snprintf(extra, sizeof(extra), "\"code\": \"%s\"", rep('C', 65));
	refused_with(extra, "too_long", "code");
	snprintf(extra, sizeof(extra), "\"code\": \"%s\"", rep('C', 64));
	accepted_with(extra);
}

static void code_pool_is_a_codes_key_of_at_most_200(void **state)
{
	char extra[512];

	(void)state;
	accepted_with("\"code_pool\": \"codes:outlet:7731\"");
	/* A hash tag would move the pool off its own slot (docs/sharding.md 4c). */
	refused_with("\"code_pool\": \"codes:{outlet}:7731\"", "bad_value", "code_pool");
	refused_with("\"code_pool\": \"codes:a}b\"", "bad_value", "code_pool");
	refused_with("\"code_pool\": \"codes pool\"", "bad_value", "code_pool");
	refused_with("\"code_pool\": 1", "bad_type", "code_pool");
	snprintf(extra, sizeof(extra), "\"code_pool\": \"%s\"", rep('k', 201));
	refused_with(extra, "too_long", "code_pool");
	snprintf(extra, sizeof(extra), "\"code_pool\": \"codes:%s\"", rep('k', 194));
	accepted_with(extra);
	/* Only the publishers' own namespace: a deal must never name one of our keys. */
	refused_with("\"code_pool\": \"subscribers\"", "bad_value", "code_pool");
	refused_with("\"code_pool\": \"codes:\"", "bad_value", "code_pool");
}

static void quantity_is_a_whole_number_from_1_to_a_million(void **state)
{
	(void)state;
	accepted_with("\"quantity\": 1");
	accepted_with("\"quantity\": 1000000");
	refused_with("\"quantity\": 0", "bad_value", "quantity");
	refused_with("\"quantity\": -3", "bad_value", "quantity");
	refused_with("\"quantity\": 2.5", "bad_value", "quantity");
	refused_with("\"quantity\": 1000001", "bad_value", "quantity");
	refused_with("\"quantity\": \"10\"", "bad_type", "quantity");
}

static void starts_at_must_come_before_expires_at(void **state)
{
	(void)state;
	accepted_with("\"starts_at\": 1795370000");
	refused_with("\"starts_at\": \"" EXPIRY "\"", "bad_value", "starts_at");
	refused_with("\"starts_at\": \"2026-11-22T20:00:00Z\"", "bad_value", "starts_at");
	refused_with("\"starts_at\": \"soon\"", "bad_value", "starts_at");
	refused_with("\"starts_at\": false", "bad_type", "starts_at");
}

static void campaign_is_at_most_128_bytes(void **state)
{
	char extra[512];

	(void)state;
	snprintf(extra, sizeof(extra), "\"campaign\": \"%s\"", rep('x', 129));
	refused_with(extra, "too_long", "campaign");
	refused_with("\"campaign\": 2026", "bad_type", "campaign");
}

/* product_id: what the deal sells, a token; an order of another is its halo. */
static void product_id_is_a_token_of_at_most_128_bytes(void **state)
{
	char extra[512];
	struct err e;
	struct deal *d;

	(void)state;
	assert_non_null(d = parse_with("\"product_id\": \"SKU-42\"", &e));
	assert_string_equal(d->product_id, "SKU-42");
	deal_free(d);
	assert_non_null(d = parse_with("", &e));
	assert_null(d->product_id);
	deal_free(d);
	snprintf(extra, sizeof(extra), "\"product_id\": \"%s\"", rep('x', 129));
	refused_with(extra, "too_long", "product_id");
	refused_with("\"product_id\": \"a b\"", "bad_value", "product_id");
	refused_with("\"product_id\": 42", "bad_type", "product_id");
}

static void null_optional_fields_count_as_absent(void **state)
{
	struct err e;
	struct deal *d = parse_with("\"code\": null, \"price\": null, \"tags\": null,"
	    " \"quantity\": null, \"cancel\": null", &e);

	(void)state;
	assert_non_null(d);
	assert_null(d->code);
	assert_false(d->has_price);
	assert_int_equal(d->quantity, 0);
	assert_int_equal(d->cancel, 0);
	deal_free(d);
}

static void unknown_fields_are_ignored(void **state)
{
	(void)state;
	accepted_with("\"future_field\": {\"nested\": [1, 2, 3]}, \"Price\": \"ignored\"");
}

static void a_field_given_twice_is_refused(void **state)
{
	(void)state;
	refused_with("\"price\": 1, \"price\": 2", "bad_value", "price");
	refused_with("\"id\": \"other\"", "bad_value", "id");
}

static void cancel_form_needs_only_the_id(void **state)
{
	struct err e;
	struct deal *d = parse("{\"id\": \"outlet-7731\", \"cancel\": true}", &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->cancel, 1);
	assert_string_equal(d->id, "outlet-7731");
	assert_null(d->title);
	assert_null(d->url);
	assert_int_equal(d->expires_at, 0);
	deal_free(d);
}

static void cancel_is_never_expired(void **state)
{
	struct err e;
	struct deal *d = parse("{\"id\": \"a\", \"cancel\": true, \"expires_at\": 5,"
	    " \"price\": \"junk\"}", &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->cancel, 1);
	deal_free(d);
}

static void cancel_must_be_true(void **state)
{
	(void)state;
	refused("{\"id\": \"a\", \"cancel\": false}", "bad_value", "cancel");
	refused("{\"id\": \"a\", \"cancel\": \"true\"}", "bad_type", "cancel");
	refused("{\"id\": \"a\", \"cancel\": 1}", "bad_type", "cancel");
	refused("{\"cancel\": true}", "missing_field", "id");
	refused("{\"id\": \"a b\", \"cancel\": true}", "bad_value", "id");
}

static void starts_at_is_kept_for_the_jobs(void **state)
{
	struct err e;
	struct deal *d = parse_with("\"starts_at\": \"2026-11-22T18:00:00Z\"", &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->starts_at, 1795370400LL);
	deal_free(d);
	d = parse_with("", &e);
	assert_non_null(d);
	assert_int_equal(d->starts_at, 0);          /* absent: now */
	deal_free(d);
}

static void update_form_is_a_whole_deal(void **state)
{
	struct err e;
	struct deal *d = parse_with("\"update\": true, \"price\": 599", &e);

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->update, 1);
	assert_int_equal(d->cancel, 0);
	assert_int_equal(d->expires_at, 1795374000LL);
	assert_string_equal(d->title, "Monitor");
	deal_free(d);
	/* Validated like a new deal: the required fields too. */
	refused("{\"id\": \"a\", \"update\": true}", "missing_field", "title");
	refused("{\"id\": \"a\", \"update\": true, \"title\": \"t\", \"url\": "
	    "\"https://x.example/\"}", "missing_field", "expires_at");
	refused_with("\"update\": true, \"price\": -1", "bad_value", "price");
	refused_with("\"update\": true, \"starts_at\": \"2026-11-22T20:00:00Z\"",
	    "bad_value", "starts_at");
}

static void update_may_already_be_expired(void **state)
{
	struct err e;
	struct deal *d = parse("{\"id\": \"a\", \"title\": \"t\", \"url\": "
	    "\"https://x.example/\", \"expires_at\": 1795369000, \"update\": true}", &e);

	(void)state;
	assert_non_null(d);                         /* it stops the pushes still queued */
	assert_int_equal(d->update, 1);
	assert_int_equal(d->expires_at, 1795369000LL);
	deal_free(d);
	/* The horizon still holds. */
	refused("{\"id\": \"a\", \"title\": \"t\", \"url\": \"https://x.example/\", "
	    "\"expires_at\": 1900000000, \"update\": true}", "bad_value", "expires_at");
	/* Without "update" the same deal is expired. */
	refused("{\"id\": \"a\", \"title\": \"t\", \"url\": \"https://x.example/\", "
	    "\"expires_at\": 1795369000}", "expired", "expires_at");
}

static void update_must_be_true(void **state)
{
	struct err e;
	struct deal *d;

	(void)state;
	refused_with("\"update\": false", "bad_value", "update");
	refused_with("\"update\": \"true\"", "bad_type", "update");
	refused_with("\"update\": 1", "bad_type", "update");
	refused_with("\"update\": true, \"update\": true", "bad_value", "update");
	d = parse_with("\"update\": null", &e);   /* null: an ordinary deal */
	assert_non_null(d);
	assert_int_equal(d->update, 0);
	deal_free(d);
	/* A cancel reads nothing else, "update" included. */
	d = parse("{\"id\": \"a\", \"cancel\": true, \"update\": 7}", &e);
	assert_non_null(d);
	assert_int_equal(d->cancel, 1);
	assert_int_equal(d->update, 0);
	deal_free(d);
}

static void oversized_payload_is_too_large(void **state)
{
	char *json = malloc(MODEL_DEAL_JSON_MAX + 2);
	struct err e;
	struct deal *d;
	size_t base;

	(void)state;
	assert_non_null(json);
	/* A valid deal padded with spaces to exactly the limit is accepted ... */
	base = (size_t)snprintf(json, MODEL_DEAL_JSON_MAX, "{\"id\":\"a\",\"title\":\"t\","
	    "\"url\":\"http://x\",\"expires_at\":\"" EXPIRY "\"}");
	memset(json + base, ' ', MODEL_DEAL_JSON_MAX - base);
	d = deal_parse(json, MODEL_DEAL_JSON_MAX, NOW, &e);
	assert_non_null(d);
	deal_free(d);
	/* ... and one byte more is not. */
	json[MODEL_DEAL_JSON_MAX] = ' ';
	d = deal_parse(json, MODEL_DEAL_JSON_MAX + 1, NOW, &e);
	check_refused(d, &e, "too_large", "");
	free(json);
}

static void binary_payload_is_refused(void **state)
{
	static const char nul[] = "{\"id\":\"a\0b\",\"title\":\"t\"}";
	struct err e;
	struct deal *d;

	(void)state;
	d = deal_parse(nul, sizeof(nul) - 1, NOW, &e);
	check_refused(d, &e, "binary", "");
	assert_string_equal(e.msg, "deal: NUL byte at byte 8");
	refused("{\"id\":\"\xff\"}", "binary", "");                 /* not UTF-8 */
	refused("{\"id\":\"\xc0\xaf\"}", "binary", "");             /* overlong '/' */
	refused("{\"id\":\"\xed\xa0\x80\"}", "binary", "");         /* surrogate */
	refused("{\"id\":\"\xf4\x90\x80\x80\"}", "binary", "");     /* above U+10FFFF */
	refused("{\"id\":\"\xe2\x82\"}", "binary", "");             /* cut sequence */
	refused("{\"id\":\"a\\u0000b\"}", "binary", "");            /* escaped NUL */
}

static void escaped_backslash_before_u0000_is_not_a_nul(void **state)
{
	(void)state;
	accepted_with("\"campaign\": \"c:\\\\u0000\"");
}

static void not_json_names_the_byte(void **state)
{
	struct err e;
	struct deal *d;

	(void)state;
	d = parse("{\"id\": }", &e);
	check_refused(d, &e, "not_json", "");
	assert_string_equal(e.msg, "deal: not valid JSON near byte 7");
	refused("", "not_json", "");
	refused("{\"id\":\"a\"} trailing", "not_json", "");
	refused("{\"id\":\"a\",}", "not_json", "");
	refused("{'id':'a'}", "not_json", "");
	d = deal_parse(NULL, 0, NOW, &e);
	check_refused(d, &e, "not_json", "");
}

static void json_that_is_not_an_object_is_refused(void **state)
{
	struct err e;
	struct deal *d;

	(void)state;
	d = parse("[1, 2]", &e);
	check_refused(d, &e, "not_object", "");
	assert_string_equal(e.msg, "deal: expected a JSON object, got array");
	refused("\"deal\"", "not_object", "");
	refused("42", "not_object", "");
	refused("null", "not_object", "");
}

static void deep_nesting_is_refused_without_crashing(void **state)
{
	char *json = malloc(MODEL_DEAL_JSON_MAX);
	struct err e;
	struct deal *d;
	size_t half = MODEL_DEAL_JSON_MAX / 2;

	(void)state;
	assert_non_null(json);
	memset(json, '[', half);
	memset(json + half, ']', half);
	d = deal_parse(json, MODEL_DEAL_JSON_MAX, NOW, &e);
	assert_null(d);
	assert_string_equal(e.code, "not_json");
	free(json);
}

static void every_truncation_of_a_valid_deal_is_refused(void **state)
{
	size_t len = strlen(full_deal), n;
	struct err e;
	struct deal *d;

	(void)state;
	for (n = 0; n < len; n++) {
		/* A fresh exact-size copy, so ASan sees any read past n. */
		char *p = malloc(n + 1);

		assert_non_null(p);
		memcpy(p, full_deal, n);
		d = deal_parse(p, n, NOW, &e);
		free(p);
		if (d != NULL) {
			deal_free(d);
			fail_msg("accepted a prefix of %zu bytes", n);
		}
		assert_int_equal(e.kind, ERR_INPUT);
		assert_true(e.code[0] != '\0');
	}
}

static void random_bytes_never_crash(void **state)
{
	unsigned seed = 20261122;
	char buf[512];
	struct err e;
	struct deal *d;
	int round;
	size_t n, i;

	(void)state;
	for (round = 0; round < 20000; round++) {
		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % sizeof(buf);
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (char)(seed >> 16);
		}
		/* Half the rounds mutate a valid deal instead, to get past the JSON layer. */
		if (round % 2 == 1) {
			n = strlen(full_deal);
			memcpy(buf, full_deal, n);
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 16) % n] = (char)(seed >> 8);
		}
		d = deal_parse(buf, n, NOW, &e);
		if (d == NULL)
			assert_true(e.code[0] != '\0');
		deal_free(d);
	}
}

static void free_of_null_does_nothing(void **state)
{
	(void)state;
	deal_free(NULL);
}

static void id_rule_is_shared(void **state)
{
	(void)state;
	assert_int_equal(deal_id_is_valid("s-1001"), 1);
	assert_int_equal(deal_id_is_valid(""), 0);
	assert_int_equal(deal_id_is_valid("a b"), 0);
	assert_int_equal(deal_id_is_valid(NULL), 0);
	assert_int_equal(deal_id_is_valid(rep('x', 129)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_deal_is_parsed_with_every_field),
		cmocka_unit_test(minimal_deal_needs_only_id_title_url_and_expiry),
		cmocka_unit_test(epoch_expiry_as_an_integer_is_accepted),
		cmocka_unit_test(epoch_expiry_as_a_string_of_digits_is_accepted),
		cmocka_unit_test(rfc3339_expiry_with_an_offset_is_accepted),
		cmocka_unit_test(malformed_expiry_is_a_bad_value),
		cmocka_unit_test(expiry_of_the_wrong_type_is_a_bad_type),
		cmocka_unit_test(expired_deal_is_refused),
		cmocka_unit_test(deal_expiring_exactly_now_is_expired),
		cmocka_unit_test(expiry_366_days_ahead_is_refused),
		cmocka_unit_test(missing_required_fields_are_named),
		cmocka_unit_test(missing_expires_at_names_the_field),
		cmocka_unit_test(field_names_are_case_sensitive),
		cmocka_unit_test(id_must_be_printable_ascii_without_spaces),
		cmocka_unit_test(title_must_be_non_empty_text_of_at_most_512_bytes),
		cmocka_unit_test(url_must_be_http_or_https_with_a_host),
		cmocka_unit_test(category_and_brand_are_lower_cased_and_limited),
		cmocka_unit_test(tags_are_lower_cased_strings),
		cmocka_unit_test(more_than_64_tags_are_too_long),
		cmocka_unit_test(region_is_upper_cased_and_2_to_8_characters),
		cmocka_unit_test(price_of_the_wrong_type_names_the_type),
		cmocka_unit_test(prices_must_be_finite_and_in_range),
		cmocka_unit_test(discount_is_derived_from_price_and_list_price),
		cmocka_unit_test(currency_is_three_upper_case_letters),
		cmocka_unit_test(code_is_a_printable_token_of_at_most_64),
		cmocka_unit_test(code_pool_is_a_codes_key_of_at_most_200),
		cmocka_unit_test(quantity_is_a_whole_number_from_1_to_a_million),
		cmocka_unit_test(starts_at_must_come_before_expires_at),
		cmocka_unit_test(campaign_is_at_most_128_bytes),
		cmocka_unit_test(product_id_is_a_token_of_at_most_128_bytes),
		cmocka_unit_test(null_optional_fields_count_as_absent),
		cmocka_unit_test(unknown_fields_are_ignored),
		cmocka_unit_test(a_field_given_twice_is_refused),
		cmocka_unit_test(cancel_form_needs_only_the_id),
		cmocka_unit_test(cancel_is_never_expired),
		cmocka_unit_test(cancel_must_be_true),
		cmocka_unit_test(starts_at_is_kept_for_the_jobs),
		cmocka_unit_test(update_form_is_a_whole_deal),
		cmocka_unit_test(update_may_already_be_expired),
		cmocka_unit_test(update_must_be_true),
		cmocka_unit_test(oversized_payload_is_too_large),
		cmocka_unit_test(binary_payload_is_refused),
		cmocka_unit_test(escaped_backslash_before_u0000_is_not_a_nul),
		cmocka_unit_test(not_json_names_the_byte),
		cmocka_unit_test(json_that_is_not_an_object_is_refused),
		cmocka_unit_test(deep_nesting_is_refused_without_crashing),
		cmocka_unit_test(every_truncation_of_a_valid_deal_is_refused),
		cmocka_unit_test(random_bytes_never_crash),
		cmocka_unit_test(free_of_null_does_nothing),
		cmocka_unit_test(id_rule_is_shared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
