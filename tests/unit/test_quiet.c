/*
 * test_quiet.c: legal sending windows, quiet hours and local days, on real tzdata,
 * across DST nights.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "quiet.h"
#include "timefmt.h"

static struct tzcache *cache;
static struct quiet_rules rules;

static int64_t
at(const char *rfc3339)
{
	int64_t t = 0;

	assert_int_equal(time_parse_rfc3339(rfc3339, &t), 0);
	return t;
}

static const struct tz *
zone(const char *name)
{
	struct err err;
	const struct tz *z = tz_get(cache, name, &err);

	assert_non_null(z);
	return z;
}

static struct subscriber
sub(const char *phone, int qs, int qe)
{
	struct subscriber s;

	memset(&s, 0, sizeof(s));
	s.id = "s-1";
	s.phone = (char *)phone;
	s.region = "US";
	s.quiet_start_min = qs;
	s.quiet_end_min = qe;
	return s;
}

static void
noon_in_chicago_is_allowed_now(void **state)
{
	struct subscriber s = sub("+15125550100", -1, -1);
	int64_t now = at("2026-11-23T18:00:00Z"); /* 12:00 CST */

	(void)state;
	assert_int_equal(quiet_next_allowed(&rules, zone("America/Chicago"), &s, now), now);
}

static void
late_evening_waits_for_eight_next_morning(void **state)
{
	struct subscriber s = sub("+15125550100", -1, -1);
	int64_t now = at("2026-11-24T04:30:00Z"); /* 22:30 CST */

	(void)state;
	assert_int_equal(quiet_next_allowed(&rules, zone("America/Chicago"), &s, now),
	    at("2026-11-24T14:00:00Z"));
}

static void
florida_and_oklahoma_numbers_stop_at_eight_pm(void **state)
{
	struct subscriber fl = sub("+13055550100", -1, -1);
	struct subscriber ok = sub("+19185550100", -1, -1);
	struct subscriber tx = sub("+15125550100", -1, -1);
	int64_t now = at("2026-11-24T01:30:00Z"); /* 20:30 EST, 19:30 CST */
	char region[16];

	(void)state;
	assert_string_equal(quiet_region_of(&rules, &fl, region, sizeof(region)), "US-FL");
	assert_string_equal(quiet_region_of(&rules, &ok, region, sizeof(region)), "US-OK");
	assert_string_equal(quiet_region_of(&rules, &tx, region, sizeof(region)), "US");
	assert_int_equal(quiet_next_allowed(&rules, zone("America/New_York"), &fl, now),
	    at("2026-11-24T13:00:00Z"));
	/* 20:30 in New York is still allowed for a Texas number (window to 21:00). */
	assert_int_equal(quiet_next_allowed(&rules, zone("America/New_York"), &tx, now), now);
	/* Oklahoma at 19:30 CST: allowed; at 20:05 CST: not. */
	assert_int_equal(quiet_next_allowed(&rules, zone("America/Chicago"), &ok, now), now);
	assert_int_equal(quiet_next_allowed(&rules, zone("America/Chicago"), &ok,
	    at("2026-11-24T02:05:00Z")), at("2026-11-24T14:00:00Z"));
}

static void
own_quiet_hours_across_midnight_extend_the_wait(void **state)
{
	struct subscriber s = sub("+15125550100", 21 * 60, 9 * 60 + 30);
	int64_t now = at("2026-11-23T14:30:00Z"); /* 08:30 CST: legal, but quiet */

	(void)state;
	assert_int_equal(quiet_next_allowed(&rules, zone("America/Chicago"), &s, now),
	    at("2026-11-23T15:30:00Z"));
	/* 20:45 CST: legal window open, quiet from 21:00 -> allowed now. */
	now = at("2026-11-24T02:45:00Z");
	assert_int_equal(quiet_next_allowed(&rules, zone("America/Chicago"), &s, now), now);
}

static void
spring_forward_night_opens_at_eight_daylight_time(void **state)
{
	struct subscriber s = sub("+15125550100", -1, -1);
	int64_t now = at("2026-03-08T07:00:00Z"); /* 01:00 CST, before the gap */

	(void)state;
	/* 08:00 CDT = 13:00Z, one hour earlier in UTC than the day before. */
	assert_int_equal(quiet_next_allowed(&rules, zone("America/Chicago"), &s, now),
	    at("2026-03-08T13:00:00Z"));
}

static void
fall_back_night_opens_at_eight_standard_time(void **state)
{
	struct subscriber s = sub("+15125550100", -1, -1);
	int64_t now = at("2026-11-01T06:30:00Z"); /* 01:30 CDT, the first of two */

	(void)state;
	assert_int_equal(quiet_next_allowed(&rules, zone("America/Chicago"), &s, now),
	    at("2026-11-01T14:00:00Z"));
}

static void
windows_that_never_overlap_mean_never(void **state)
{
	struct subscriber s = sub("+15125550100", 7 * 60, 22 * 60);

	(void)state;
	assert_true(quiet_next_allowed(&rules, zone("America/Chicago"), &s,
	    at("2026-11-23T18:00:00Z")) == QUIET_NEVER);
}

static void
local_day_turns_at_local_midnight(void **state)
{
	char day[16];

	(void)state;
	assert_int_equal(quiet_local_day(zone("Europe/Berlin"),
	    at("2026-11-23T22:59:59Z"), day, sizeof(day)), 0);
	assert_string_equal(day, "20261123");
	assert_int_equal(quiet_local_day(zone("Europe/Berlin"),
	    at("2026-11-23T23:00:00Z"), day, sizeof(day)), 0);
	assert_string_equal(day, "20261124");
	assert_int_equal(quiet_local_day(zone("Europe/Berlin"), 0, day, 4), -1);
}

static void
bad_windows_are_refused(void **state)
{
	struct quiet_rules q;

	(void)state;
	quiet_rules_default(&q);
	assert_int_equal(quiet_rules_set(&q, "US-XX", 600, 600), -1);
	assert_int_equal(quiet_rules_set(&q, "US-XX", -1, 600), -1);
	assert_int_equal(quiet_rules_set(&q, "US-XX", 0, 1441), -1);
	assert_int_equal(quiet_rules_set(&q, "US-FL", 9 * 60, 19 * 60), 0);
	assert_int_equal(q.nregions, 2);
}

static int
up(void **state)
{
	(void)state;
	quiet_rules_default(&rules);
	cache = tzcache_new(NULL, 16);
	return cache == NULL ? -1 : 0;
}

static int
down(void **state)
{
	(void)state;
	tzcache_free(cache);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(noon_in_chicago_is_allowed_now),
		cmocka_unit_test(late_evening_waits_for_eight_next_morning),
		cmocka_unit_test(florida_and_oklahoma_numbers_stop_at_eight_pm),
		cmocka_unit_test(own_quiet_hours_across_midnight_extend_the_wait),
		cmocka_unit_test(spring_forward_night_opens_at_eight_daylight_time),
		cmocka_unit_test(fall_back_night_opens_at_eight_standard_time),
		cmocka_unit_test(windows_that_never_overlap_mean_never),
		cmocka_unit_test(local_day_turns_at_local_midnight),
		cmocka_unit_test(bad_windows_are_refused),
	};

	return cmocka_run_group_tests_name("quiet", tests, up, down);
}
