/*
 * test_tokens.c: the pure parts of named tokens and the audit stream (notifier/
 * tokens.c, notifier/audit.c, stage: http): token names, the token's form and its
 * digest, randomness, and the size bound of an audit value with its marker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "audit.h"
#include "tokens.h"

static void token_names_are_plain_and_bounded(void **state)
{
	char n[80];

	(void)state;
	assert_true(tokens_name_ok("ana"));
	assert_true(tokens_name_ok("ci.deploy-bot_2"));
	memset(n, 'a', 64);
	n[64] = '\0';
	assert_true(tokens_name_ok(n));
	n[64] = 'a';
	n[65] = '\0';
	assert_false(tokens_name_ok(n));
	assert_false(tokens_name_ok(""));
	assert_false(tokens_name_ok("config"));        /* http.admin_token's */
	assert_false(tokens_name_ok("a b"));
	assert_false(tokens_name_ok("a/b"));
	assert_false(tokens_name_ok("a\nb"));
	assert_false(tokens_name_ok("a\x7f"));
	assert_false(tokens_name_ok("\xc3\xa9t\xc3\xa9"));
}

static void a_token_is_the_prefix_and_64_hex_digits(void **state)
{
	unsigned char rnd[32];
	char t[TOKENS_LEN + 1], hex[65];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rnd); i++)
		rnd[i] = (unsigned char)(i * 8 + 1);
	tokens_format(rnd, t, sizeof(t));
	assert_int_equal(strlen(t), TOKENS_LEN);
	assert_int_equal(strncmp(t, "dp_", 3), 0);
	assert_string_equal(t + 3, "0109111921293139414951596169717981899199a1a9b1b9c1c9"
	    "d1d9e1e9f1f9");
	/* The digest of "abc" (FIPS 180-2). */
	assert_int_equal(tokens_sha256_hex("abc", 3, hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
	    "0015ad");
}

static void random_tokens_differ(void **state)
{
	unsigned char a[32], b[32];

	(void)state;
	assert_int_equal(tokens_random(a, sizeof(a)), 0);
	assert_int_equal(tokens_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
}

static void a_short_audit_value_is_kept_and_a_long_one_cut_with_a_marker(void **state)
{
	char *big = malloc(AUDIT_VALUE_MAX + 100), *v;
	const cJSON *h;
	cJSON *j;
	size_t i;

	(void)state;
	assert_non_null(big);
	v = audit_value(NULL);
	assert_string_equal(v, "null");
	free(v);
	v = audit_value("{\"text\":\"x\"}");
	assert_string_equal(v, "{\"text\":\"x\"}");
	free(v);
	/* Two-byte characters across the cut: it falls between two of them. */
	big[0] = 'a';
	for (i = 1; i + 1 < AUDIT_VALUE_MAX + 98; i += 2) {
		big[i] = (char)0xc3;
		big[i + 1] = (char)0xa9;
	}
	big[i] = '\0';
	v = audit_value(big);
	j = cJSON_Parse(v);
	assert_non_null(j);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated")));
	assert_int_equal((size_t)cJSON_GetObjectItem(j, "bytes")->valuedouble, strlen(big));
	h = cJSON_GetObjectItem(j, "head");
	assert_true(cJSON_IsString(h));
	assert_true(strlen(h->valuestring) <= AUDIT_VALUE_MAX);
	assert_true(strlen(h->valuestring) >= AUDIT_VALUE_MAX - 1);
	assert_int_equal(strlen(h->valuestring) % 2, 1);    /* 'a' + whole characters */
	cJSON_Delete(j);
	free(v);
	free(big);
}

static void a_subscriber_in_the_audit_has_its_phone_cut(void **state)
{
	const char *s = "{\"id\":\"s1\",\"phone\":\"+15125550177\",\"channels\":[\"sms\"]}";
	char *v;

	(void)state;
	v = audit_subscriber(s, strlen(s));
	assert_non_null(v);
	assert_null(strstr(v, "5125550177"));
	assert_non_null(strstr(v, "\"phone\":\"...0177\""));
	assert_non_null(strstr(v, "\"id\":\"s1\""));
	free(v);
	assert_null(audit_subscriber("{", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_names_are_plain_and_bounded),
		cmocka_unit_test(a_token_is_the_prefix_and_64_hex_digits),
		cmocka_unit_test(random_tokens_differ),
		cmocka_unit_test(a_short_audit_value_is_kept_and_a_long_one_cut_with_a_marker),
		cmocka_unit_test(a_subscriber_in_the_audit_has_its_phone_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
