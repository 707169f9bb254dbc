/*
 * test_admin_codes.c: the checks on a code pool's name and on a code
 * (notifier/admin_codes.c), shared by the admin API and dealpushctl codes add: what
 * a pool name may hold (never a brace, which would choose a Redis slot), the
 * optional "codes:" prefix, and every byte a code may not hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin_codes.h"

static void
a_pool_name_becomes_its_key_with_or_without_the_prefix(void **state)
{
	char key[CODES_POOL_NAME_MAX + 16], name[CODES_POOL_NAME_MAX + 2];

	(void)state;
	assert_int_equal(codes_pool_key("summer", key, sizeof(key)), 0);
	assert_string_equal(key, "codes:summer");
	assert_int_equal(codes_pool_key("codes:summer", key, sizeof(key)), 0);
	assert_string_equal(key, "codes:summer");
	assert_int_equal(codes_pool_key("a.b:c_d-9", key, sizeof(key)), 0);
	assert_string_equal(key, "codes:a.b:c_d-9");
	memset(name, 'p', CODES_POOL_NAME_MAX);
	name[CODES_POOL_NAME_MAX] = '\0';
	assert_int_equal(codes_pool_key(name, key, sizeof(key)), 0);
}

static void
a_bad_pool_name_is_refused_and_leaves_no_key(void **state)
{
	static const char *const bad[] = { "", "codes:", "a{b}", "{x}", "a b", "a/b",
	    "a\tb", "caf\xc3\xa9", "a\nb", "a%b", "a*", NULL };
	char key[CODES_POOL_NAME_MAX + 16], name[CODES_POOL_NAME_MAX + 2];
	size_t i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		snprintf(key, sizeof(key), "x");
		assert_int_equal(codes_pool_key(bad[i], key, sizeof(key)), -1);
		assert_string_equal(key, "");
	}
	memset(name, 'p', CODES_POOL_NAME_MAX + 1);
	name[CODES_POOL_NAME_MAX + 1] = '\0';
	assert_int_equal(codes_pool_key(name, key, sizeof(key)), -1);
	/* A buffer too small is refused, not cut. */
	assert_int_equal(codes_pool_key("summer", key, 8), -1);
	assert_string_equal(key, "");
}

static void
a_code_is_printable_ascii_without_a_space_up_to_64_bytes(void **state)
{
	char code[CODES_CODE_MAX + 2];
	const char *why = NULL;
	int c;

	(void)state;
	assert_true(codes_code_ok("SUMMER-001", 10, &why));
	assert_null(why);
	assert_true(codes_code_ok("!~#{}\\\"", 7, NULL));
	memset(code, 'A', sizeof(code));
	assert_true(codes_code_ok(code, CODES_CODE_MAX, NULL));
	assert_false(codes_code_ok(code, CODES_CODE_MAX + 1, &why));
	assert_string_equal(why, "code longer than 64 bytes");
	assert_false(codes_code_ok("", 0, &why));
	assert_string_equal(why, "empty code");
	/* Every byte outside 0x21..0x7e, anywhere in the code. */
	for (c = 0; c < 256; c++) {
		char s[3] = { 'A', (char)c, 'B' };

		assert_int_equal(codes_code_ok(s, 3, NULL), c > 0x20 && c < 0x7f);
	}
	/* The length given is what counts: a NUL inside is a bad byte. */
	assert_false(codes_code_ok("AB\0C", 4, NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_pool_name_becomes_its_key_with_or_without_the_prefix),
		cmocka_unit_test(a_bad_pool_name_is_refused_and_leaves_no_key),
		cmocka_unit_test(a_code_is_printable_ascii_without_a_space_up_to_64_bytes),
	};

	return cmocka_run_group_tests_name("admin_codes", tests, NULL, NULL);
}
