/*
 * test_attribution.c: the pure parts of click links and conversions: utm
 * parameters on any deal URL, push-id splitting, and conversion validation with an
 * error that names the field.
 */
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utm_parameters_go_before_the_fragment_and_replace_old_ones),
		cmocka_unit_test(push_ids_split_and_malformed_ones_are_refused),
		cmocka_unit_test(conversions_are_validated_with_the_field_named),
	};

	return cmocka_run_group_tests_name("attribution", tests, NULL, NULL);
}
