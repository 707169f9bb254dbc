/*
 * test_attribution.c: the pure parts of click links and conversions: utm
 * parameters on any deal URL, push-id splitting, conversion validation with an
 * error that names the field (ordered_at and product_id included), the outcome
 * `dealpushctl convert` prints, and the holdout lift with its interval.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clicks.h"
#include "clicktok.h"
#include "convert.h"
#include "lift.h"
#include "shortlink.h"

#define KEY "0123456789abcdef0123456789abcdef"

static void
utm_parameters_go_before_the_fragment_and_replace_old_ones(void **state)
{
	char buf[512];

	(void)state;
	assert_true(clicks_utm_url("https://s.example/d", "sms", "spring", buf,
	    sizeof(buf)) > 0);
	assert_string_equal(buf, "https://s.example/d?utm_source=dealpush&utm_medium=sms"
	    "&utm_campaign=spring");
	assert_true(clicks_utm_url("https://s.example/d?ref=x&utm_source=old#top", "dm",
	    "a b&c", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "https://s.example/d?ref=x&utm_source=dealpush"
	    "&utm_medium=dm&utm_campaign=a%20b%26c#top");
	/* Too small: refused, never cut. */
	assert_int_equal(clicks_utm_url("https://s.example/d", "sms", "c", buf, 20), -1);
	assert_string_equal(buf, "");
}

static void
push_ids_split_and_malformed_ones_are_refused(void **state)
{
	char e[64], s[64], c[16];

	(void)state;
	assert_int_equal(clicks_split_push_id("1795-0:s-1:sms", e, sizeof(e), s, sizeof(s),
	    c, sizeof(c)), 0);
	assert_string_equal(e, "1795-0");
	assert_string_equal(s, "s-1");
	assert_string_equal(c, "sms");
	assert_int_equal(clicks_split_push_id("1795-0:a:b:dm", e, sizeof(e), s, sizeof(s),
	    c, sizeof(c)), 0);
	assert_string_equal(s, "a:b");
	assert_int_equal(clicks_split_push_id("nocolons", e, sizeof(e), s, sizeof(s), c,
	    sizeof(c)), -1);
	assert_int_equal(clicks_split_push_id("", e, sizeof(e), s, sizeof(s), c,
	    sizeof(c)), -1);
}

static void
conversions_are_validated_with_the_field_named(void **state)
{
	struct convert_in in;
	struct err err;
	char tok[512], json[1024];
	static const struct {
		const char *json, *code, *field;
	} bad[] = {
		{ "nope", "not_json", NULL },
		{ "{\"order_id\":\"o\",\"revenue\":1,\"currency\":\"USD\",\"code\":\"C\"}",
		    "missing_field", "deal_id" },
		{ "{\"deal_id\":\"d\",\"order_id\":\"o\",\"revenue\":-1,\"currency\":\"USD\","
		    "\"code\":\"C\"}", "bad_value", "revenue" },
		{ "{\"deal_id\":\"d\",\"order_id\":\"o\",\"revenue\":\"1\",\"currency\":\"USD\","
		    "\"code\":\"C\"}", "bad_type", "revenue" },
		{ "{\"deal_id\":\"d\",\"order_id\":\"o\",\"revenue\":1,\"currency\":\"usd\","
		    "\"code\":\"C\"}", "bad_value", "currency" },
		{ "{\"deal_id\":\"d\",\"order_id\":\"o\",\"revenue\":1,\"currency\":\"USD\","
		    "\"code\":\"C\",\"push_id\":\"1-0:s:sms\"}", "ambiguous", NULL },
		{ "{\"deal_id\":\"d\",\"order_id\":\"o\",\"revenue\":1,\"currency\":\"USD\","
		    "\"click_token\":\"AAAA\"}", "bad_token", NULL },
		/* Read as strictly as a deal: a \u0000 would cut the subscriber id short,
		 * and what follows the object is not ignored. */
		{ "{\"deal_id\":\"d\",\"order_id\":\"o\",\"revenue\":1,\"currency\":\"USD\","
		    "\"subscriber_id\":\"s-1\\u0000x\"}", "not_json", "conversion" },
		{ "{\"deal_id\":\"d\",\"order_id\":\"o\",\"revenue\":1,\"currency\":\"USD\","
		    "\"subscriber_id\":\"s-1\"} {}", "not_json", "conversion" },
		{ "[1]", "bad_type", "conversion" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&err);
		assert_int_equal(convert_parse(bad[i].json, strlen(bad[i].json),
		    (const unsigned char *)KEY, strlen(KEY), &in, &err), -1);
		assert_string_equal(err.code, bad[i].code);
		if (bad[i].field != NULL)
			assert_string_equal(err.field, bad[i].field);
	}
	/* A click token is verified and turned into its push id. */
	assert_int_equal(clicktok_make((const unsigned char *)KEY, strlen(KEY),
	    "1795-0:s-1:sms", tok, sizeof(tok)), 0);
	snprintf(json, sizeof(json), "{\"deal_id\":\"d\",\"order_id\":\"o-1\","
	    "\"revenue\":12.5,\"currency\":\"EUR\",\"click_token\":\"%s\"}", tok);
	err_clear(&err);
	assert_int_equal(convert_parse(json, strlen(json), (const unsigned char *)KEY,
	    strlen(KEY), &in, &err), 0);
	assert_string_equal(in.kind, "click_token");
	assert_string_equal(in.value, "1795-0:s-1:sms");
	assert_string_equal(in.order_id, "o-1");
	assert_true(in.revenue == 12.5);
	assert_int_equal(in.short_code, 0);
	/* A short link's code is taken as is, its push read later; a forged one is
	 * refused like a bad token. */
	assert_int_equal(shortlink_for_push((const unsigned char *)KEY, strlen(KEY),
	    "1795-0:s-1:sms", 0, 1, tok), 0);
	snprintf(json, sizeof(json), "{\"deal_id\":\"d\",\"order_id\":\"o-1\","
	    "\"revenue\":1,\"currency\":\"EUR\",\"click_token\":\"%s\"}", tok);
	assert_int_equal(convert_parse(json, strlen(json), (const unsigned char *)KEY,
	    strlen(KEY), &in, &err), 0);
	assert_int_equal(in.short_code, 1);
	assert_string_equal(in.value, tok);
	tok[5] = tok[5] == 'A' ? 'B' : 'A';
	snprintf(json, sizeof(json), "{\"deal_id\":\"d\",\"order_id\":\"o-1\","
	    "\"revenue\":1,\"currency\":\"EUR\",\"click_token\":\"%s\"}", tok);
	err_clear(&err);
	if (shortlink_check((const unsigned char *)KEY, strlen(KEY), tok, SHORTLINK_LEN, 1,
	    NULL) != 1) {
		assert_int_equal(convert_parse(json, strlen(json), (const unsigned char *)KEY,
		    strlen(KEY), &in, &err), -1);
		assert_string_equal(err.code, "bad_token");
	}
}

#define CONV "{\"deal_id\":\"d\",\"order_id\":\"o\",\"revenue\":1,\"currency\":\"USD\"," \
	"\"subscriber_id\":\"s-1\""

static void
ordered_at_and_product_id_are_validated(void **state)
{
	static const struct {
		const char *json, *code, *field;
	} bad[] = {
		{ CONV ",\"ordered_at\":\"yesterday\"}", "bad_value", "ordered_at" },
		{ CONV ",\"ordered_at\":true}", "bad_type", "ordered_at" },
		{ CONV ",\"ordered_at\":1.5}", "bad_value", "ordered_at" },
		{ CONV ",\"ordered_at\":-5}", "bad_value", "ordered_at" },
		{ CONV ",\"ordered_at\":\"2026-13-01T00:00:00Z\"}", "bad_value",
		    "ordered_at" },
		{ CONV ",\"ordered_at\":1,\"ordered_at\":2}", "bad_value", "ordered_at" },
		{ CONV ",\"product_id\":\"a b\"}", "bad_value", "product_id" },
		{ CONV ",\"product_id\":\"\"}", "bad_value", "product_id" },
		{ CONV ",\"product_id\":7}", "bad_type", "product_id" },
	};
	struct convert_in in;
	struct err err;
	const char *ok = CONV ",\"ordered_at\":\"2026-12-01T10:00:00Z\","
	    "\"product_id\":\"SKU-9\"}";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&err);
		assert_int_equal(convert_parse(bad[i].json, strlen(bad[i].json), NULL, 0, &in,
		    &err), -1);
		assert_string_equal(err.code, bad[i].code);
		assert_string_equal(err.field, bad[i].field);
	}
	err_clear(&err);
	assert_int_equal(convert_parse(ok, strlen(ok), NULL, 0, &in, &err), 0);
	assert_int_equal(in.has_ordered_at, 1);
	assert_int_equal(in.ordered_at, 1796119200);
	assert_string_equal(in.product_id, "SKU-9");
	/* An epoch number is taken as given; no ordered_at: timed when read. */
	err_clear(&err);
	assert_int_equal(convert_parse(CONV ",\"ordered_at\":1764583200}",
	    strlen(CONV ",\"ordered_at\":1764583200}"), NULL, 0, &in, &err), 0);
	assert_int_equal(in.ordered_at, 1764583200);
	assert_int_equal(convert_parse(CONV "}", strlen(CONV "}"), NULL, 0, &in, &err), 0);
	assert_int_equal(in.has_ordered_at, 0);
	assert_string_equal(in.product_id, "");
	/* More than a day after the notifier's clock is refused, a day is not. */
	in.has_ordered_at = 1;
	in.ordered_at = 1000000 + 86400;
	assert_int_equal(convert_check_time(&in, 1000000, &err), 0);
	in.ordered_at++;
	assert_int_equal(convert_check_time(&in, 1000000, &err), -1);
	assert_string_equal(err.field, "ordered_at");
}

static void
outcomes_name_the_window(void **state)
{
	static const struct {
		const char *o, *want;
	} t[] = {
		{ "attributed\t1-0:s-1:sms\tclick", "attributed to push 1-0:s-1:sms in its "
		    "click window" },
		{ "attributed\t1-0:s-1:dm\tdelivery", "attributed to push 1-0:s-1:dm in its "
		    "delivery window" },
		{ "attributed\t1-0:s-1:sms\tcode", "attributed to push 1-0:s-1:sms by its "
		    "code" },
		{ "halo\t1-0:s-1:sms\tclick", "halo of push 1-0:s-1:sms in its click window "
		    "(another product)" },
		{ "attributed\t1-0:s-1:sms", "attributed to push 1-0:s-1:sms" },
		{ "unattributed\toutside_window", "unattributed: outside_window (ordered "
		    "outside the push's click and delivery windows)" },
		{ "holdout", "holdout" },
		{ "unattributed", "unattributed" },
	};
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(convert_outcome_text(t[i].o, buf, sizeof(buf)), 0);
		assert_string_equal(buf, t[i].want);
	}
	assert_int_equal(convert_outcome_text(t[0].o, buf, 10), -1);
}

static void
lift_has_its_interval_around_the_increment(void **state)
{
	/* 100 treated with 10 orders of 20 (revenue 200, squares 4000); 50 held out
	 * with 2 orders of 20 (40, 800). */
	struct lift_group t = { 100, 10, 200, 4000 }, h = { 50, 2, 40, 800 }, z = { 0 };
	struct lift l;
	double vt = (4000.0 / 100 - 4) / 100, vh = (800.0 / 50 - 0.64) / 50;
	double half = 1.959963984540054 * sqrt(vt + vh) * 100;

	(void)state;
	assert_int_equal(lift_compute(&t, &h, &l), 0);
	assert_true(fabs(l.treated_rate - 0.1) < 1e-12);
	assert_true(fabs(l.holdout_rate - 0.04) < 1e-12);
	assert_true(fabs(l.incremental_redemptions - 6) < 1e-9);
	assert_true(fabs(l.incremental_revenue - 120) < 1e-9);   /* (2 - 0.8) x 100 */
	assert_true(fabs(l.ci_low - (120 - half)) < 1e-9);
	assert_true(fabs(l.ci_high - (120 + half)) < 1e-9);
	/* Nothing to compare: an empty group. */
	assert_int_equal(lift_compute(&t, &z, &l), -1);
	assert_int_equal(lift_compute(&z, &h, &l), -1);
	assert_true(l.incremental_revenue == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utm_parameters_go_before_the_fragment_and_replace_old_ones),
		cmocka_unit_test(push_ids_split_and_malformed_ones_are_refused),
		cmocka_unit_test(conversions_are_validated_with_the_field_named),
		cmocka_unit_test(ordered_at_and_product_id_are_validated),
		cmocka_unit_test(outcomes_name_the_window),
		cmocka_unit_test(lift_has_its_interval_around_the_increment),
	};

	return cmocka_run_group_tests_name("attribution", tests, NULL, NULL);
}
