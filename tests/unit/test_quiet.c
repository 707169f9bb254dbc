/*
 * test_quiet.c: the law of the recipient's place (windows and caps by place, the area
 * code's zones joined with the stated zone), quiet hours and local days, on real
 * tzdata, across DST nights.
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
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &s, now), now);
}

static void
late_evening_waits_for_eight_next_morning(void **state)
{
	struct subscriber s = sub("+15125550100", -1, -1);
	int64_t now = at("2026-11-24T04:30:00Z"); /* 22:30 CST */

	(void)state;
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &s, now),
	    at("2026-11-24T14:00:00Z"));
}

static void
florida_and_oklahoma_numbers_stop_at_eight_pm(void **state)
{
	struct subscriber fl = sub("+13055550100", -1, -1);
	struct subscriber ok = sub("+19185550100", -1, -1);
	struct subscriber tx = sub("+15125550100", -1, -1);
	int64_t now = at("2026-11-24T01:30:00Z"); /* 20:30 EST, 19:30 CST */
	struct quiet_place p;

	(void)state;
	quiet_place_of(&fl, &p);
	assert_string_equal(p.regions[0], "US-FL");
	assert_string_equal(p.regions[1], "US");
	quiet_place_of(&ok, &p);
	assert_string_equal(p.regions[0], "US-OK");
	quiet_place_of(&tx, &p);
	assert_string_equal(p.regions[0], "US-TX");
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/New_York"), &fl, now),
	    at("2026-11-24T13:00:00Z"));
	/* 20:30 in New York is 19:30 in Austin: allowed for a Texas number. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/New_York"), &tx, now),
	    now);
	/* Oklahoma at 19:30 CST: allowed; at 20:05 CST: not. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &ok, now),
	    now);
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &ok,
	    at("2026-11-24T02:05:00Z")), at("2026-11-24T14:00:00Z"));
}

static void
maryland_and_washington_stop_at_eight_connecticut_opens_at_nine(void **state)
{
	struct subscriber md = sub("+14105550100", -1, -1);
	struct subscriber wa = sub("+12065550100", -1, -1);
	struct subscriber ct = sub("+12035550100", -1, -1);
	struct subscriber ny = sub("+12125550100", -1, -1);

	(void)state;
	/* 20:30 EST: Maryland waits for 08:00, New York is open until 21:00. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/New_York"), &md,
	    at("2026-11-24T01:30:00Z")), at("2026-11-24T13:00:00Z"));
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/New_York"), &ny,
	    at("2026-11-24T01:30:00Z")), at("2026-11-24T01:30:00Z"));
	/* 20:15 PST in Seattle. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Los_Angeles"), &wa,
	    at("2026-11-24T04:15:00Z")), at("2026-11-24T16:00:00Z"));
	/* 08:30 EST in Hartford waits for 09:00; 20:00 EST is closed. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/New_York"), &ct,
	    at("2026-11-24T13:30:00Z")), at("2026-11-24T14:00:00Z"));
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/New_York"), &ct,
	    at("2026-11-25T01:00:00Z")), at("2026-11-25T14:00:00Z"));
}

static void
stated_zone_and_area_code_disagree_the_stricter_holds(void **state)
{
	struct subscriber miami = sub("+13055550100", -1, -1);
	struct subscriber seattle = sub("+12065550100", -1, -1);
	int64_t three_am_miami = at("2026-11-24T08:00:00Z");

	(void)state;
	/* 08:00 UTC is inside a UTC window, but 03:00 in Miami: wait for 08:00 EST. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("UTC"), &miami,
	    three_am_miami), at("2026-11-24T13:00:00Z"));
	/* Tokyo (17:00 there): both 08:00-20:00 windows are open only 23:00Z-01:00Z. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("Asia/Tokyo"), &miami,
	    three_am_miami), at("2026-11-24T23:00:00Z"));
	/* A 206 number that says New York: 09:00 there is 06:00 in Seattle. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/New_York"), &seattle,
	    at("2026-11-24T14:00:00Z")), at("2026-11-24T16:00:00Z"));
}

static void
a_stated_region_counts_too(void **state)
{
	struct subscriber s = sub("+15125550100", -1, -1);
	struct quiet_place p;
	struct quiet_limit l;

	(void)state;
	s.region = "US-MD";
	quiet_place_of(&s, &p);
	assert_int_equal(p.nregions, 2);
	/* A Texas number whose subscriber states US-MD: at 20:10 CST Maryland's 20:00
	 * holds (read in the zones of the push, Chicago here); Texas alone allows it. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &s,
	    at("2026-11-24T02:10:00Z")), at("2026-11-24T14:00:00Z"));
	l = quiet_limit_of(&rules, &p);
	assert_int_equal(l.max, 3);
	assert_int_equal(l.window_s, 86400);
	s.region = "US";
	quiet_place_of(&s, &p);
	l = quiet_limit_of(&rules, &p);
	assert_int_equal(l.max, 0);
}

static void
split_area_codes_get_the_overlap_of_their_zones(void **state)
{
	struct subscriber pensacola = sub("+18505550100", -1, -1);
	struct subscriber alaska = sub("+19075550100", -1, -1);
	struct subscriber boise = sub("+12085550100", -1, -1);
	struct subscriber el_paso = sub("+19155550100", -1, -1);

	(void)state;
	/* 850: Central and Eastern. 07:30 CST = 08:30 EST: Central is not open yet. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &pensacola,
	    at("2026-11-24T13:30:00Z")), at("2026-11-24T14:00:00Z"));
	/* 19:30 CST = 20:30 EST: Florida's 20:00 has passed in the Eastern part. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &pensacola,
	    at("2026-11-25T01:30:00Z")), at("2026-11-25T14:00:00Z"));
	/* 907: Anchorage and the Aleutians (an hour behind): 08:30 AKST waits for 09:00. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Anchorage"), &alaska,
	    at("2026-11-24T17:30:00Z")), at("2026-11-24T18:00:00Z"));
	/* 208: Mountain and Pacific. 08:30 MST is 07:30 PST. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Boise"), &boise,
	    at("2026-11-24T15:30:00Z")), at("2026-11-24T16:00:00Z"));
	/* 915 (El Paso) is Mountain even when the subscriber says Chicago: 08:30 CST is
	 * 07:30 MST. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &el_paso,
	    at("2026-11-24T14:30:00Z")), at("2026-11-24T15:00:00Z"));
}

static void
windows_of_places_that_never_meet_mean_no_window(void **state)
{
	/* A Connecticut number (09:00-20:00 Eastern) whose subscriber says Bangkok
	 * (09:00-20:00 there is 02:00Z-13:00Z): never both open. */
	struct subscriber s = sub("+12035550100", -1, -1);

	(void)state;
	assert_true(quiet_next_allowed(&rules, cache, zone("Asia/Bangkok"), &s,
	    at("2026-11-24T12:00:00Z")) == QUIET_NO_WINDOW);
	assert_true(quiet_next_allowed(&rules, cache, zone("Asia/Bangkok"), &s,
	    at("2026-07-01T12:00:00Z")) == QUIET_NO_WINDOW);
}

/* Both DST nights of 2026 (March 8, November 1) in places that keep one clock
 * (Puerto Rico, Arizona, Hawaii) and in Alaska, whose two zones both change. */
static void
puerto_rico_arizona_hawaii_alaska_across_both_dst_nights(void **state)
{
	struct subscriber pr = sub("+17875550100", -1, -1);
	struct subscriber az = sub("+16025550100", -1, -1);
	struct subscriber navajo = sub("+19285550100", -1, -1);
	struct subscriber hi = sub("+18085550100", -1, -1);
	struct subscriber ak = sub("+19075550100", -1, -1);

	(void)state;
	/* Puerto Rico: 08:00 AST = 12:00Z on both nights. A subscriber who says New
	 * York after the fall night: 08:00 EST is 13:00Z, the later holds. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Puerto_Rico"), &pr,
	    at("2026-03-08T06:00:00Z")), at("2026-03-08T12:00:00Z"));
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Puerto_Rico"), &pr,
	    at("2026-11-01T06:00:00Z")), at("2026-11-01T12:00:00Z"));
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/New_York"), &pr,
	    at("2026-11-01T06:00:00Z")), at("2026-11-01T13:00:00Z"));
	/* Arizona: 08:00 MST = 15:00Z on both nights. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Phoenix"), &az,
	    at("2026-03-08T10:00:00Z")), at("2026-03-08T15:00:00Z"));
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Phoenix"), &az,
	    at("2026-11-01T10:00:00Z")), at("2026-11-01T15:00:00Z"));
	/* 928 includes the Navajo Nation, on daylight time in summer: at 20:30 MST
	 * (21:30 MDT) Phoenix alone would allow it. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Phoenix"), &az,
	    at("2026-07-02T03:30:00Z")), at("2026-07-02T03:30:00Z"));
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Phoenix"), &navajo,
	    at("2026-07-02T03:30:00Z")), at("2026-07-02T15:00:00Z"));
	/* Hawaii: 08:00 HST = 18:00Z on both nights. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("Pacific/Honolulu"), &hi,
	    at("2026-03-08T10:00:00Z")), at("2026-03-08T18:00:00Z"));
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("Pacific/Honolulu"), &hi,
	    at("2026-11-01T10:00:00Z")), at("2026-11-01T18:00:00Z"));
	/* Alaska: the Aleutians (HDT, UTC-9, after the spring night) open last: 17:00Z;
	 * after the fall night (HST, UTC-10): 18:00Z. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Anchorage"), &ak,
	    at("2026-03-08T12:00:00Z")), at("2026-03-08T17:00:00Z"));
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Anchorage"), &ak,
	    at("2026-11-01T12:00:00Z")), at("2026-11-01T18:00:00Z"));
}

static void
weekday_rows_hold_on_their_day_only(void **state)
{
	struct quiet_rules q;
	struct subscriber s = sub("+15125550100", -1, -1);
	char why[200];

	(void)state;
	quiet_rules_default(&q);
	assert_int_equal(quiet_rules_add_window(&q, "US-TX", 0, 12 * 60, 20 * 60, 0, why,
	    sizeof(why)), 0);
	/* Sunday 2026-11-22, 10:00 CST: wait for noon; Monday 10:00: open. */
	assert_int_equal(quiet_next_allowed(&q, cache, zone("America/Chicago"), &s,
	    at("2026-11-22T16:00:00Z")), at("2026-11-22T18:00:00Z"));
	assert_int_equal(quiet_next_allowed(&q, cache, zone("America/Chicago"), &s,
	    at("2026-11-23T16:00:00Z")), at("2026-11-23T16:00:00Z"));
	/* Saturday 21:30 CST: Sunday's row makes the next opening Sunday noon. */
	assert_int_equal(quiet_next_allowed(&q, cache, zone("America/Chicago"), &s,
	    at("2026-11-22T03:30:00Z")), at("2026-11-22T18:00:00Z"));
}

static void
own_quiet_hours_across_midnight_extend_the_wait(void **state)
{
	struct subscriber s = sub("+15125550100", 21 * 60, 9 * 60 + 30);
	int64_t now = at("2026-11-23T14:30:00Z"); /* 08:30 CST: legal, but quiet */

	(void)state;
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &s, now),
	    at("2026-11-23T15:30:00Z"));
	/* 20:45 CST: legal window open, quiet from 21:00 -> allowed now. */
	now = at("2026-11-24T02:45:00Z");
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &s, now), now);
}

static void
spring_forward_night_opens_at_eight_daylight_time(void **state)
{
	struct subscriber s = sub("+15125550100", -1, -1);
	int64_t now = at("2026-03-08T07:00:00Z"); /* 01:00 CST, before the gap */

	(void)state;
	/* 08:00 CDT = 13:00Z, one hour earlier in UTC than the day before. */
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &s, now),
	    at("2026-03-08T13:00:00Z"));
}

static void
fall_back_night_opens_at_eight_standard_time(void **state)
{
	struct subscriber s = sub("+15125550100", -1, -1);
	int64_t now = at("2026-11-01T06:30:00Z"); /* 01:30 CDT, the first of two */

	(void)state;
	assert_int_equal(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &s, now),
	    at("2026-11-01T14:00:00Z"));
}

static void
windows_that_never_overlap_mean_never(void **state)
{
	struct subscriber s = sub("+15125550100", 7 * 60, 22 * 60);

	(void)state;
	assert_true(quiet_next_allowed(&rules, cache, zone("America/Chicago"), &s,
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
rows_only_tighten_and_bad_rows_are_refused(void **state)
{
	struct quiet_rules q;
	char why[200];

	(void)state;
	quiet_rules_default(&q);
	assert_int_equal(quiet_rules_add_window(&q, "US-TX", -1, 600, 600, 0, why,
	    sizeof(why)), -1);
	assert_int_equal(quiet_rules_add_window(&q, "US-TX", -1, -1, 600, 0, why,
	    sizeof(why)), -1);
	assert_int_equal(quiet_rules_add_window(&q, "US-TX", -1, 0, 1441, 0, why,
	    sizeof(why)), -1);
	assert_int_equal(quiet_rules_add_window(&q, "US-XX", -1, 600, 1200, 0, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "unknown place"));
	/* Florida's statutory 20:00 cannot be moved to 21:00, nor anyone's 08:00 to 07:00. */
	assert_int_equal(quiet_rules_add_window(&q, "US-FL", -1, 8 * 60, 21 * 60, 0, why,
	    sizeof(why)), -2);
	assert_non_null(strstr(why, "20:00"));
	assert_int_equal(quiet_rules_add_window(&q, "US-TX", 0, 7 * 60, 20 * 60, 0, why,
	    sizeof(why)), -2);
	assert_int_equal(quiet_rules_add_window(&q, "US-FL", -1, 9 * 60, 19 * 60, 0, why,
	    sizeof(why)), 0);
	assert_int_equal(quiet_rules_add_cap(&q, "US-FL", 4, 86400, 0, why, sizeof(why)), -2);
	assert_int_equal(quiet_rules_add_cap(&q, "US-FL", 3, 3600, 0, why, sizeof(why)), -2);
	assert_int_equal(quiet_rules_add_cap(&q, "US-FL", 2, 86400, 0, why, sizeof(why)), 0);
	assert_int_equal(quiet_rules_add_cap(&q, "US-TX", 5, 2 * 86400, 0, why, sizeof(why)), 0);
	assert_int_equal(quiet_rules_add_cap(&q, "US-ZZ", 5, 86400, 0, why, sizeof(why)), -1);
	assert_int_equal(quiet_rules_add_cap(&q, "US-TX", 0, 86400, 0, why, sizeof(why)), -1);
	assert_true(quiet_place_known("US-PR") && quiet_place_known("US-DC") &&
	    quiet_place_known("US-GU") && !quiet_place_known("US") &&
	    quiet_place_known("CA-ON") &&
	    quiet_place_known("JM") && !quiet_place_known("CA-XX"));
}

static void
local_day_starts_at_local_midnight(void **state)
{
	(void)state;
	assert_int_equal(quiet_day_start(zone("America/Chicago"), at("2026-11-24T05:59:59Z")),
	    at("2026-11-23T06:00:00Z"));
	assert_int_equal(quiet_day_start(zone("America/Chicago"), at("2026-11-24T06:00:00Z")),
	    at("2026-11-24T06:00:00Z"));
}

static int
up(void **state)
{
	(void)state;
	quiet_rules_default(&rules);
	cache = tzcache_new(NULL, 64);
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
		cmocka_unit_test(maryland_and_washington_stop_at_eight_connecticut_opens_at_nine),
		cmocka_unit_test(stated_zone_and_area_code_disagree_the_stricter_holds),
		cmocka_unit_test(a_stated_region_counts_too),
		cmocka_unit_test(split_area_codes_get_the_overlap_of_their_zones),
		cmocka_unit_test(windows_of_places_that_never_meet_mean_no_window),
		cmocka_unit_test(puerto_rico_arizona_hawaii_alaska_across_both_dst_nights),
		cmocka_unit_test(weekday_rows_hold_on_their_day_only),
		cmocka_unit_test(own_quiet_hours_across_midnight_extend_the_wait),
		cmocka_unit_test(spring_forward_night_opens_at_eight_daylight_time),
		cmocka_unit_test(fall_back_night_opens_at_eight_standard_time),
		cmocka_unit_test(windows_that_never_overlap_mean_never),
		cmocka_unit_test(local_day_turns_at_local_midnight),
		cmocka_unit_test(rows_only_tighten_and_bad_rows_are_refused),
		cmocka_unit_test(local_day_starts_at_local_midnight),
	};

	return cmocka_run_group_tests_name("quiet", tests, up, down);
}
