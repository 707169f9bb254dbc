/*
 * test_timefmt.c: RFC 3339 parsing and formatting (notifier/timefmt.c).
 *
 * Valid forms, every range check, leap years and seconds, offsets, and a round trip
 * over a spread of times. Must never depend on TZ or the locale: it sets TZ to a zone
 * far from UTC to prove it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "timefmt.h"

static int64_t parse_ok(const char *s)
{
	int64_t t = -12345;

	if (time_parse_rfc3339(s, &t) != 0)
		fail_msg("refused a valid time: \"%s\"", s);
	return t;
}

static void utc_times_parse_to_epoch_seconds(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse_ok("2026-11-22T19:00:00Z"), 1795374000);
	assert_int_equal(parse_ok("2000-03-01T00:00:00Z"), 951868800);
	assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1);
	assert_int_equal(parse_ok("2038-01-19T03:14:08Z"), 2147483648LL);
	assert_int_equal(parse_ok("0000-01-01T00:00:00Z"), -62167219200LL);
	assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), 253402300799LL);
}

static void lower_case_t_and_z_are_accepted(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2026-11-22t19:00:00z"), 1795374000);
}

static void offsets_shift_to_utc(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2026-11-22T21:00:00+02:00"), 1795374000);
	assert_int_equal(parse_ok("2026-11-22T13:00:00-06:00"), 1795374000);
	assert_int_equal(parse_ok("2026-11-22T19:00:00+00:00"), 1795374000);
	assert_int_equal(parse_ok("2026-11-22T19:00:00-00:00"), 1795374000);
	assert_int_equal(parse_ok("2026-11-23T18:59:00+23:59"), 1795374000);
	assert_int_equal(parse_ok("2026-11-22T00:31:00-18:29"), 1795374000);
}

static void fractions_are_truncated(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2026-11-22T19:00:00.250+02:00"), 1795374000 - 7200);
	assert_int_equal(parse_ok("2026-11-22T19:00:00.999999999Z"), 1795374000);
	assert_int_equal(parse_ok("2026-11-22T19:00:00.0Z"), 1795374000);
}

static void leap_days_exist_only_in_leap_years(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), 1709164800);
	assert_int_equal(parse_ok("2000-02-29T12:00:00Z"), 951825600);
	assert_int_equal(time_parse_rfc3339("2026-02-29T00:00:00Z", &t), -1);
	assert_int_equal(time_parse_rfc3339("1900-02-29T00:00:00Z", &t), -1);
	assert_int_equal(time_parse_rfc3339("2100-02-29T00:00:00Z", &t), -1);
}

static void leap_second_is_clamped_to_59(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2016-12-31T23:59:59Z"));
}

static void every_month_has_its_own_last_day(void **state)
{
	static const char *ok[] = {
		"2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z",
		"2026-04-30T00:00:00Z", "2026-05-31T00:00:00Z", "2026-06-30T00:00:00Z",
		"2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z", "2026-09-30T00:00:00Z",
		"2026-10-31T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-31T00:00:00Z",
	};
	static const char *bad[] = {
		"2026-01-32T00:00:00Z", "2026-02-29T00:00:00Z", "2026-03-32T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-05-32T00:00:00Z", "2026-06-31T00:00:00Z",
		"2026-07-32T00:00:00Z", "2026-08-32T00:00:00Z", "2026-09-31T00:00:00Z",
		"2026-10-32T00:00:00Z", "2026-11-31T00:00:00Z", "2026-12-32T00:00:00Z",
	};
	size_t i;
	int64_t t;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		parse_ok(ok[i]);
		if (time_parse_rfc3339(bad[i], &t) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

static void malformed_times_are_refused(void **state)
{
	static const char *bad[] = {
		"", "2026", "2026-11-22", "2026-11-22T19:00", "2026-11-22T19:00:00",
		"2026-11-22 19:00:00Z", "2026-11-22T19:00:00ZZ", "2026-11-22T19:00:00Z ",
		" 2026-11-22T19:00:00Z", "26-11-22T19:00:00Z", "2026-1-22T19:00:00Z",
		"2026-11-2T19:00:00Z", "2026-11-22T9:00:00Z", "2026-11-22T19:0:00Z",
		"2026-11-22T19:00:0Z", "2026/11/22T19:00:00Z", "2026-11-22T19.00.00Z",
		"2026-00-22T19:00:00Z", "2026-13-22T19:00:00Z", "2026-11-00T19:00:00Z",
		"2026-11-22T24:00:00Z", "2026-11-22T19:60:00Z", "2026-11-22T19:00:61Z",
		"2026-11-22T19:00:00.Z", "2026-11-22T19:00:00+2:00", "2026-11-22T19:00:00+02",
		"2026-11-22T19:00:00+0200", "2026-11-22T19:00:00+24:00",
		"2026-11-22T19:00:00+02:60", "2026-11-22T19:00:00UTC", "1795374000",
		"+2026-11-22T19:00:00Z", "-2026-11-22T19:00:00Z", "2026-11-22T19:00:00+02:00x",
		"２０２６-11-22T19:00:00Z", "2026-11-22T19:00:00\n", "2026-11-22X19:00:00Z",
		"9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+00:01",
		"2026-11-22T1a:00:00Z", "2026-11-22T19:00:00.1a", "abcd-ef-ghTij:kl:mnZ",
	};
	size_t i;
	int64_t t = 42;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (time_parse_rfc3339(bad[i], &t) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(t, 42);
	assert_int_equal(time_parse_rfc3339(NULL, &t), -1);
	assert_int_equal(time_parse_rfc3339("2026-11-22T19:00:00Z", NULL), -1);
}

static void every_truncation_of_a_valid_time_is_refused(void **state)
{
	const char *full = "2026-11-22T19:00:00.250+02:00";
	char buf[64];
	size_t n;
	int64_t t;

	(void)state;
	for (n = 0; n < strlen(full); n++) {
		memcpy(buf, full, n);
		buf[n] = '\0';
		if (time_parse_rfc3339(buf, &t) == 0)
			fail_msg("accepted the prefix \"%s\"", buf);
	}
}

static void formatting_writes_utc_with_z(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(time_format_rfc3339(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
	assert_string_equal(time_format_rfc3339(1795374000, buf, sizeof(buf)),
	    "2026-11-22T19:00:00Z");
	assert_string_equal(time_format_rfc3339(-1, buf, sizeof(buf)), "1969-12-31T23:59:59Z");
	assert_string_equal(time_format_rfc3339(951825600, buf, sizeof(buf)),
	    "2000-02-29T12:00:00Z");
	assert_string_equal(time_format_rfc3339(-62167219200LL, buf, 21), "0000-01-01T00:00:00Z");
}

static void formatting_clamps_to_four_digit_years(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(time_format_rfc3339(INT64_MAX, buf, sizeof(buf)),
	    "9999-12-31T23:59:59Z");
	assert_string_equal(time_format_rfc3339(INT64_MIN, buf, sizeof(buf)),
	    "0000-01-01T00:00:00Z");
}

static void formatting_never_overruns_a_short_buffer(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	time_format_rfc3339(0, buf, 5);
	assert_string_equal(buf, "1970");
	assert_int_equal(buf[5], 'x');
	assert_null(time_format_rfc3339(0, NULL, 10));
}

static void format_then_parse_gives_the_same_time(void **state)
{
	int64_t t, back;
	char buf[32];

	(void)state;
	for (t = -62167219200LL; t <= 253402300799LL; t += 9876543211LL / 7) {
		time_format_rfc3339(t, buf, sizeof(buf));
		assert_int_equal(time_parse_rfc3339(buf, &back), 0);
		assert_int_equal(back, t);
	}
	for (t = 1700000000; t < 1700000000 + 4 * 366 * 86400; t += 86400 - 1) {
		time_format_rfc3339(t, buf, sizeof(buf));
		assert_int_equal(time_parse_rfc3339(buf, &back), 0);
		assert_int_equal(back, t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utc_times_parse_to_epoch_seconds),
		cmocka_unit_test(lower_case_t_and_z_are_accepted),
		cmocka_unit_test(offsets_shift_to_utc),
		cmocka_unit_test(fractions_are_truncated),
		cmocka_unit_test(leap_days_exist_only_in_leap_years),
		cmocka_unit_test(leap_second_is_clamped_to_59),
		cmocka_unit_test(every_month_has_its_own_last_day),
		cmocka_unit_test(malformed_times_are_refused),
		cmocka_unit_test(every_truncation_of_a_valid_time_is_refused),
		cmocka_unit_test(formatting_writes_utc_with_z),
		cmocka_unit_test(formatting_clamps_to_four_digit_years),
		cmocka_unit_test(formatting_never_overruns_a_short_buffer),
		cmocka_unit_test(format_then_parse_gives_the_same_time),
	};

	/* The result must not depend on the process time zone. */
	setenv("TZ", "Pacific/Kiritimati", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
