/*
 * test_simulate_caps.c: the caps simulate applies (notifier/simulate_caps.c) are named
 * and judged as deliver names and send.lua judges them: the daily cap on the
 * subscriber's local day, the campaign cap on the deal's campaign, the law's cap of
 * the strictest place; a push let through fills its place, so a subscriber's second
 * push of a deal can meet the cap the first filled.
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
#include "quiet.h"
#include "simulate_caps.h"
#include "subscriber.h"
#include "tz.h"

#define NOW INT64_C(1796490000)   /* 2026-12-05T17:00:00Z: 11:00 in Chicago */

static struct subscriber *
sub(const char *json)
{
	struct err e;
	struct subscriber *s;

	err_clear(&e);
	if ((s = subscriber_parse(json, strlen(json), &e)) == NULL)
		fail_msg("%s", e.msg);
	return s;
}

static void
caps_are_named_as_deliver_names_them(void **state)
{
	struct tzcache *zones = tzcache_new(NULL, 16);
	struct quiet_rules q;
	struct deal d;
	struct sim_caps_in in;
	struct sim_subcaps sc;
	struct subscriber *tx, *fl;

	(void)state;
	assert_non_null(zones);
	quiet_rules_default(&q);
	memset(&d, 0, sizeof(d));
	d.id = "d-1";
	d.campaign = "spring";
	in.d = &d;
	in.quiet = &q;
	in.zones = zones;
	in.campaign_cap = 2;
	in.now = NOW;
	tx = sub("{\"id\":\"s-1\",\"phone\":\"+15125550100\",\"channels\":[\"sms\"],"
	    "\"timezone\":\"America/Chicago\",\"max_per_day\":1}");
	fl = sub("{\"id\":\"s-2\",\"phone\":\"+13055550100\",\"channels\":[\"sms\"],"
	    "\"timezone\":\"America/New_York\"}");

	/* Texas: the daily cap from local midnight (06:00 UTC), the campaign's 24 h. */
	assert_int_equal(sim_caps_fill(&in, tx, &sc), 2);
	assert_string_equal(sc.c[SIM_CAP_DAY].key, "texts:s-1");
	assert_int_equal(sc.c[SIM_CAP_DAY].cap, 1);
	assert_int_equal(sc.c[SIM_CAP_DAY].from, NOW - 11 * 3600);
	assert_string_equal(sc.c[SIM_CAP_CAMP].key, "camp:spring:s-1");
	assert_int_equal(sc.c[SIM_CAP_CAMP].from, NOW - 86400 + 1);
	assert_null(sc.c[SIM_CAP_LAW].key);
	/* The first push fills the day; the second meets it. */
	assert_null(sim_caps_judge(&sc));
	assert_string_equal(sim_caps_judge(&sc), "daily_cap");
	sim_caps_clear(&sc);

	/* Florida: the law's 3 in 24 h, in texts:<sub> with cap_scope = all. */
	in.campaign_cap = 0;
	assert_int_equal(sim_caps_fill(&in, fl, &sc), 1);
	assert_string_equal(sc.c[SIM_CAP_LAW].key, "texts:s-2");
	assert_int_equal(sc.c[SIM_CAP_LAW].cap, 3);
	sc.c[SIM_CAP_LAW].have = 2;
	assert_null(sim_caps_judge(&sc));
	assert_string_equal(sim_caps_judge(&sc), "legal_cap");
	sim_caps_clear(&sc);
	/* Per campaign, and per deal for a deal without one. */
	q.cap_per_campaign = 1;
	assert_int_equal(sim_caps_fill(&in, fl, &sc), 1);
	assert_string_equal(sc.c[SIM_CAP_LAW].key, "capcamp:spring:s-2");
	sim_caps_clear(&sc);
	d.campaign = NULL;
	assert_int_equal(sim_caps_fill(&in, fl, &sc), 1);
	assert_string_equal(sc.c[SIM_CAP_LAW].key, "capdeal:d-1:s-2");
	sim_caps_clear(&sc);

	subscriber_free(tx);
	subscriber_free(fl);
	tzcache_free(zones);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(caps_are_named_as_deliver_names_them),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
