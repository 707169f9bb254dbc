/*
 * test_areacodes.c: the area-code table (notifier/areacodes.c) against an independent
 * source, and what the notifier does with Canadian and Caribbean +1 numbers.
 *
 * The source is tests/data/nanp_areacodes.tsv, an extract of Google's libphonenumber
 * data (its header says which release, how it was made and its licence). Every
 * difference is printed; the test fails on any that is not one of the explained ones
 * below: a code the source knows and we do not, a different place, a zone of the
 * source's we do not cover (a text at the wrong hour), or a zone of ours the source
 * does not have (a window narrower than it needs to be).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "areacodes.h"
#include "quiet.h"
#include "timefmt.h"

/* The source's zones that name the same rules as one of ours since 2007. */
static const char *const same_rules[][2] = {
	{ "America/Boise", "America/Denver" },
	{ "America/Juneau", "America/Anchorage" },
	{ "America/North_Dakota/Center", "America/Chicago" },
};

/* Known differences, each with its reason (docs/compliance.md section 5.1). */
struct known {
	unsigned short npa;
	const char *what;    /* "newer": a code newer than the extract; "zone+": a zone of
	                      * ours it lacks; "zone-": a zone of its we replace */
	const char *zone;
	const char *why;
};
static const struct known known[] = {
	{ 436, "newer", NULL, "Ohio, overlay of 440 (in service 2023)" },
	{ 624, "newer", NULL, "New York, overlay of 716 (2025)" },
	{ 679, "newer", NULL, "Michigan, overlay of 313" },
	{ 837, "newer", NULL, "California, overlay of 530" },
	{ 861, "newer", NULL, "Illinois, overlay of 815 and 779" },
	{ 364, "zone+", "America/Chicago", "overlay of 270, which has Central exchanges" },
	{ 448, "zone+", "America/Chicago", "overlay of 850, which has Central exchanges" },
	{ 458, "zone+", "America/Denver", "overlay of 541, which has Mountain exchanges" },
	{ 930, "zone+", "America/Chicago", "overlay of 812, which has Central exchanges" },
	{ 432, "zone+", "America/Denver", "Culberson County keeps Mountain time by custom" },
	{ 689, "zone+", "America/New_York", "Orlando: Eastern, as 407 and 321" },
	{ 689, "zone-", "America/Chicago", "Orlando (overlay of 407 and 321): Eastern only; "
	    "the source's Central is wrong" },
	{ 907, "zone-", "Pacific/Honolulu", "the Aleutians are America/Adak (with DST), "
	    "which the source writes as Honolulu" },
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

static const struct known *
known_of(unsigned npa, const char *what, const char *zone)
{
	size_t i;

	for (i = 0; i < NKNOWN; i++)
		if (known[i].npa == npa && strcmp(known[i].what, what) == 0 &&
		    (zone == NULL || strcmp(known[i].zone, zone) == 0))
			return &known[i];
	return NULL;
}

static const char *
ours_of(const char *zone)
{
	size_t i;

	for (i = 0; i < sizeof(same_rules) / sizeof(same_rules[0]); i++)
		if (strcmp(same_rules[i][0], zone) == 0)
			return same_rules[i][1];
	return zone;
}

/* The bit of a zone name in the table, or -1. */
static int
zone_bit(const char *name)
{
	size_t i;

	for (i = 0; i < areacode_zone_count(); i++)
		if (strcmp(areacode_zone_name(i), name) == 0)
			return (int)i;
	return -1;
}

static FILE *
open_extract(void)
{
	char path[1024];
	const char *root = getenv("DP_ROOT");
	FILE *fp;

	snprintf(path, sizeof(path), "%s/tests/data/nanp_areacodes.tsv", root ? root : ".");
	fp = fopen(path, "r");
	assert_non_null(fp);
	return fp;
}

static void
table_agrees_with_libphonenumber_but_for_the_explained_differences(void **state)
{
	char line[512], phone[16], *npa_s, *place, *zones, *cur, *z;
	unsigned char seen[1000] = { 0 }, used[NKNOWN] = { 0 };
	const struct areacode *a;
	const struct known *k;
	int rows = 0, bad = 0, bit;
	uint64_t covered;
	unsigned npa;
	size_t i;
	FILE *fp = open_extract();

	(void)state;
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		cur = line;
		npa_s = strsep(&cur, "\t");
		place = strsep(&cur, "\t");
		zones = strsep(&cur, "\t");
		assert_true(npa_s != NULL && place != NULL && zones != NULL);
		npa = (unsigned)strtoul(npa_s, NULL, 10);
		assert_true(npa >= 200 && npa <= 999);
		seen[npa] = 1;
		rows++;
		snprintf(phone, sizeof(phone), "+1%03u5550100", npa);
		if ((a = areacode_of(phone)) == NULL) {
			printf("# %u: %s %s in the source, not in the table\n", npa, place, zones);
			bad++;
			continue;
		}
		if (strcmp(a->place, place) != 0) {
			printf("# %u: the table says %s, the source %s\n", npa, a->place, place);
			bad++;
		}
		covered = 0;
		while ((z = strsep(&zones, ",")) != NULL) {
			bit = zone_bit(ours_of(z));
			if (bit >= 0 && (a->zones & (UINT64_C(1) << bit))) {
				covered |= UINT64_C(1) << bit;
				continue;
			}
			if ((k = known_of(npa, "zone-", z)) != NULL) {
				used[k - known]++;
				continue;
			}
			printf("# %u: the source has zone %s, the table does not\n", npa, z);
			bad++;
		}
		for (i = 0; i < areacode_zone_count(); i++) {
			if (!(a->zones & (UINT64_C(1) << i)) || (covered & (UINT64_C(1) << i)))
				continue;
			if ((k = known_of(npa, "zone+", areacode_zone_name(i))) != NULL) {
				used[k - known]++;
				continue;
			}
			printf("# %u: the table has zone %s, the source does not\n", npa,
			    areacode_zone_name(i));
			bad++;
		}
	}
	fclose(fp);
	for (i = 0; (a = areacode_at(i)) != NULL; i++) {
		if (i > 0)
			assert_true(areacode_at(i - 1)->npa < a->npa);   /* bsearch needs it */
		if (seen[a->npa])
			continue;
		if ((k = known_of(a->npa, "newer", NULL)) != NULL) {
			used[k - known]++;
			continue;
		}
		printf("# %u: %s in the table, not in the source\n", a->npa, a->place);
		bad++;
	}
	/* Every explained difference is still a difference: none is stale. */
	for (i = 0; i < NKNOWN; i++)
		if (!used[i]) {
			printf("# %u %s %s: explained but no longer different\n", known[i].npa,
			    known[i].what, known[i].zone ? known[i].zone : "");
			bad++;
		}
	printf("# %d codes in the source, %zu explained differences, %d others\n", rows,
	    NKNOWN, bad);
	assert_true(rows >= 440);
	assert_int_equal(bad, 0);
}

static void
every_zone_of_the_table_is_in_tzdata(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 128);
	char why[200] = "";

	(void)state;
	assert_non_null(c);
	if (quiet_zones_load(c, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	tzcache_free(c);
}

static int64_t
at(const char *rfc3339)
{
	int64_t t = 0;

	assert_int_equal(time_parse_rfc3339(rfc3339, &t), 0);
	return t;
}

static struct subscriber
sub(const char *phone, const char *region)
{
	struct subscriber s;

	memset(&s, 0, sizeof(s));
	s.id = "s-1";
	s.phone = (char *)phone;
	s.region = (char *)region;
	s.quiet_start_min = -1;
	s.quiet_end_min = -1;
	return s;
}

/*
 * A Toronto (416), Halifax (902), Jamaican (876) or Dominican (809) number is placed
 * by its area code: the default window (08:00-21:00) holds in its own zone whatever
 * zone its subscriber states, no US state's rows apply to it, no law's cap, and an
 * operator's row for its place (window.CA-ON) tightens it.
 */
static void
canadian_and_caribbean_numbers_get_the_default_window_in_their_own_zone(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 128);
	const struct tz *utc;
	struct quiet_rules q;
	struct quiet_place p;
	struct subscriber to = sub("+14165550100", NULL), hfx = sub("+19025550100", NULL);
	struct subscriber jm = sub("+18765550100", NULL), dr = sub("+18095550100", "US-FL");
	char why[200];

	(void)state;
	assert_non_null(c);
	assert_non_null(utc = tz_get(c, "UTC", NULL));
	quiet_rules_default(&q);
	/* 21:30 in Toronto (UTC-5 in November) is 02:30 UTC: closed until 08:00 there. */
	assert_int_equal(quiet_next_allowed(&q, c, utc, &to, at("2026-11-24T02:30:00Z")),
	    at("2026-11-24T13:00:00Z"));
	/* 20:30 in Toronto is open (no 20:00 row for Ontario) though 01:30 UTC is not... */
	assert_int_equal(quiet_next_allowed(&q, c, tz_get(c, "America/Toronto", NULL), &to,
	    at("2026-11-24T01:30:00Z")), at("2026-11-24T01:30:00Z"));
	/* ...and a stated UTC still counts: the stricter of the two. */
	assert_int_equal(quiet_next_allowed(&q, c, utc, &to, at("2026-11-24T01:30:00Z")),
	    at("2026-11-24T13:00:00Z"));
	/* Halifax: 21:00 AST is 01:00 UTC; 08:00 AST is 12:00 UTC. */
	assert_int_equal(quiet_next_allowed(&q, c, tz_get(c, "America/Halifax", NULL), &hfx,
	    at("2026-11-24T01:00:00Z")), at("2026-11-24T12:00:00Z"));
	/* Jamaica (no DST, UTC-5): 21:15 in Kingston in July waits for 08:00 there. */
	assert_int_equal(quiet_next_allowed(&q, c, tz_get(c, "America/Jamaica", NULL), &jm,
	    at("2026-07-15T02:15:00Z")), at("2026-07-15T13:00:00Z"));
	/* A Dominican number whose subscriber states US-FL: Florida's 20:00 holds too. */
	assert_int_equal(quiet_next_allowed(&q, c, tz_get(c, "America/Santo_Domingo", NULL),
	    &dr, at("2026-07-15T00:30:00Z")), at("2026-07-15T12:00:00Z"));
	/* Places, caps. */
	quiet_place_of(&to, &p);
	assert_int_equal(p.nregions, 1);
	assert_string_equal(p.regions[0], "CA-ON");
	assert_int_equal(p.nzones, 1);
	assert_string_equal(p.zones[0], "America/Toronto");
	assert_int_equal(quiet_limit_of(&q, &p).max, 0);
	quiet_place_of(&jm, &p);
	assert_string_equal(p.regions[0], "JM");
	assert_false(areacode_place_is_us("CA-ON"));
	assert_true(areacode_place_is_us("US-PR"));
	/* 867 (the territories) spans five zones: all of them. */
	quiet_place_of(&(struct subscriber){ .phone = "+18675550100" }, &p);
	assert_int_equal(p.nzones, 5);
	/* An operator's row for Ontario (weekdays 09:00-21:30 in the example of
	 * docs/compliance.md, here every day): 08:30 Toronto is now closed. */
	assert_int_equal(quiet_rules_add_window(&q, "CA-ON", QUIET_ANY_DAY, 9 * 60,
	    21 * 60 + 30, 0, why, sizeof(why)), -2);   /* 21:30 is past the default 21:00 */
	assert_int_equal(quiet_rules_add_window(&q, "CA-ON", QUIET_ANY_DAY, 9 * 60, 21 * 60,
	    0, why, sizeof(why)), 0);
	assert_int_equal(quiet_next_allowed(&q, c, tz_get(c, "America/Toronto", NULL), &to,
	    at("2026-11-24T13:30:00Z")), at("2026-11-24T14:00:00Z"));
	assert_int_equal(quiet_rules_add_cap(&q, "CA-ON", 2, 86400, 0, why, sizeof(why)), 0);
	quiet_place_of(&to, &p);
	assert_int_equal(quiet_limit_of(&q, &p).max, 2);
	tzcache_free(c);
}

/* Malformed and non-geographic numbers have no area-code place. */
static void
only_ten_digit_plus_one_numbers_with_a_known_code_are_placed(void **state)
{
	(void)state;
	assert_non_null(areacode_of("+13055550100"));
	assert_null(areacode_of(NULL));
	assert_null(areacode_of("+1305555010"));
	assert_null(areacode_of("+130555501000"));
	assert_null(areacode_of("13055550100"));
	assert_null(areacode_of("+1305555O100"));
	assert_null(areacode_of("+18005550100"));   /* toll-free */
	assert_null(areacode_of("+15005550100"));   /* personal communications */
	assert_null(areacode_of("+442079460100"));
	assert_null(areacode_at(100000));
	assert_null(areacode_zone_name(areacode_zone_count()));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_agrees_with_libphonenumber_but_for_the_explained_differences),
		cmocka_unit_test(every_zone_of_the_table_is_in_tzdata),
		cmocka_unit_test(canadian_and_caribbean_numbers_get_the_default_window_in_their_own_zone),
		cmocka_unit_test(only_ten_digit_plus_one_numbers_with_a_known_code_are_placed),
	};

	return cmocka_run_group_tests_name("areacodes", tests, NULL, NULL);
}
