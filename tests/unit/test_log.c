/*
 * test_log.c: phone masking and value quoting in log lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static void
phone_keeps_first_five_and_last_four(void **state)
{
	char buf[48];

	(void)state;
	assert_string_equal(log_mask_phone("+15125550100", buf, sizeof(buf)),
	    "+1512\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "0100");
}

static void
short_or_missing_phone_is_masked_whole(void **state)
{
	char buf[48];

	(void)state;
	assert_string_equal(log_mask_phone("+1234567", buf, sizeof(buf)),
	    "+12\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2");
	assert_string_equal(log_mask_phone(NULL, buf, sizeof(buf)),
	    "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2");
}

static void
quote_escapes_spaces_quotes_and_control_bytes(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(log_quote("plain", buf, sizeof(buf)), "plain");
	assert_string_equal(log_quote("a b", buf, sizeof(buf)), "\"a b\"");
	assert_string_equal(log_quote("say \"hi\"\n", buf, sizeof(buf)),
	    "\"say \\\"hi\\\"\\x0a\"");
	assert_string_equal(log_quote("", buf, sizeof(buf)), "\"\"");
	/* Never overruns: the output is cut, still terminated. */
	assert_true(strlen(log_quote("0123456789abcdef0123", buf, 8)) < 8);
}

static void
level_names_round_trip(void **state)
{
	(void)state;
	assert_int_equal(log_level_from_name("debug"), LOG_DEBUG);
	assert_int_equal(log_level_from_name("error"), LOG_ERROR);
	assert_int_equal(log_level_from_name("verbose"), -1);
	assert_int_equal(log_level_from_name(NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(phone_keeps_first_five_and_last_four),
		cmocka_unit_test(short_or_missing_phone_is_masked_whole),
		cmocka_unit_test(quote_escapes_spaces_quotes_and_control_bytes),
		cmocka_unit_test(level_names_round_trip),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
