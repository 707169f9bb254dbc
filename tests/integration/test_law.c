/*
 * test_law.c: the law of the recipient's place, counted at the gateway (issue 12,
 * items 1-3 and 6).
 *
 * Each evening boundary (20:00 in Florida, Maryland, Connecticut and Washington,
 * 21:00 elsewhere, Oklahoma's 20:00 Central) is crossed with a gateway limited to 5
 * requests a second, the notifier's clock moved there with notifier.clock_offset_s:
 * no text to a closed place arrives after its boundary, the rest wait for their
 * next morning (09:00 in Connecticut), and the caps count only texts that left. A
 * number whose subscriber states another zone is held by the stricter; a fourth
 * marketing text in 24 h to a Florida, Oklahoma or Maryland number, over deals
 * without a campaign, ends legal_cap. Counts, never timings.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define PER_GROUP 12
#define LEAD_S 5              /* the deal lands this long before the boundary */
#define GROUPS_MAX 4

/* The next local hour:00 in zone more than a minute after real time now. */
static long long
next_local(const char *zone, int hour)
{
	long long now = (long long)time(NULL), t = it_local_at(zone, now, 0, hour);

	return t > now + 60 ? t : it_local_at(zone, now, 1, hour);
}

/* One group of numbers: area code npa, stated zone tz; closes at the boundary
 * (closed = 1) and then opens at opens_h local, or stays open (a control). */
struct group {
	const char *name;
	const char *npa;
	const char *tz;
	int closed;
	int opens_h;
};

static void
import_groups(struct it_one *f, const struct group *g, size_t ng)
{
	size_t cap = ng * PER_GROUP * 256 + 1, len = 0, k;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	/* Interleaved, so that the queue holds every group before the boundary. */
	for (i = 0; i < PER_GROUP; i++)
		for (k = 0; k < ng; k++) {
			snprintf(s + len, cap - len,
			    "{\"id\":\"%s-%d\",\"phone\":\"+1%s555%04d\",\"channels\":[\"sms\"],"
			    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"%s\","
			    "\"interests\":{\"categories\":[\"laptop\"]}}\n", g[k].name, i,
			    g[k].npa, 1000 + i, g[k].tz);
			len += strlen(s + len);
		}
	assert_int_equal(it_import(f->port, s), 0);
	free(s);
}

/* Texts gwsim accepted per group: in all, at or after boundary_ms (real time), and
 * numbers texted more than once. */
struct counts {
	long texts[GROUPS_MAX], after[GROUPS_MAX], dup;
};

static struct counts
gw_counts(struct it_one *f, const struct group *g, size_t ng, long long boundary_ms)
{
	cJSON *all = it_gwsim_requests(&f->gw), *e;
	int per[GROUPS_MAX][PER_GROUP];
	struct counts c;
	size_t k;
	int i;

	memset(&c, 0, sizeof(c));
	memset(per, 0, sizeof(per));
	assert_non_null(all);
	cJSON_ArrayForEach(e, all) {
		const cJSON *to = cJSON_GetObjectItem(e, "to");
		const cJSON *st = cJSON_GetObjectItem(e, "status");
		const cJSON *ts = cJSON_GetObjectItem(e, "ts_ms");

		if (!cJSON_IsString(to) || !cJSON_IsNumber(st) || st->valueint != 201 ||
		    !cJSON_IsNumber(ts) || strlen(to->valuestring) != 12)
			continue;
		for (k = 0; k < ng; k++) {
			if (strncmp(to->valuestring + 2, g[k].npa, 3) != 0)
				continue;
			i = atoi(to->valuestring + 8) - 1000;
			if (i >= 0 && i < PER_GROUP)
				per[k][i]++;
			c.texts[k]++;
			if (boundary_ms > 0 && (long long)ts->valuedouble >= boundary_ms)
				c.after[k]++;
		}
	}
	for (k = 0; k < ng; k++)
		for (i = 0; i < PER_GROUP; i++)
			c.dup += per[k][i] > 1;
	cJSON_Delete(all);
	return c;
}

/* The texts sub was sent in the last 24 h (its texts:<sub>, in its shard). */
static long long
texts_of(struct it_one *f, const char *sub)
{
	char key[KEYS_MAX];

	keys_texts(sub, key, sizeof(key));
	return it_int(f->rc, "ZCARD %s", key);
}

/* The state of push (deal, sub) in Redis, into buf. */
static const char *
push_state(struct it_one *f, const char *deal, const char *sub, char *buf, size_t size)
{
	char key[KEYS_MAX];
	redisReply *r = redisCommand(f->rc, "HGET %s %s:sms",
	    it_key_of(KEYS_PUSH, sub, deal, key, sizeof(key)), sub);

	snprintf(buf, size, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return buf;
}

/* The delayed zset's score of sub's push (-1: none). */
static long long
delayed_at(struct it_one *f, const char *sub)
{
	redisReply *r = it_shards_zrange(f->rc, KEYS_DELAYED);
	char needle[96];
	long long at = -1;
	size_t i;

	snprintf(needle, sizeof(needle), "\tsms\t%s\t", sub);
	for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
		if (strstr(r->element[i]->str, needle) != NULL)
			at = strtoll(r->element[i + 1]->str, NULL, 10);
	it_shards_reply_free(r);
	return at;
}

struct controls {
	struct it_one *f;
	const struct group *g;
	size_t ng;
};

/* Every control group has had all its texts. */
static int
controls_done(void *arg)
{
	struct controls *c = arg;
	struct counts n = gw_counts(c->f, c->g, c->ng, 0);
	size_t k;

	for (k = 0; k < c->ng; k++)
		if (!c->g[k].closed && n.texts[k] < PER_GROUP)
			return 0;
	return 1;
}

/* Every group has had all its texts. */
static int
all_sent(void *arg)
{
	struct controls *c = arg;
	struct counts n = gw_counts(c->f, c->g, c->ng, 0);
	size_t k;

	for (k = 0; k < c->ng; k++)
		if (n.texts[k] < PER_GROUP)
			return 0;
	return 1;
}

/*
 * A deal lands LEAD_S before hour:00 in zone; the gateway takes 5 requests a second,
 * so most pushes are still queued at the boundary. Closed groups get no text at or
 * after it, and each of their pushes not sent waits in delayed for its next
 * morning; controls get all their texts; nobody gets two; the caps count only what
 * left (texts:<sub> of a Florida or Maryland number holds its text, or nothing).
 * The next morning every waiting push goes out once and is counted once.
 */
static void
cross_boundary(struct it_one *f, const char *zone, int hour, const struct group *g, size_t ng)
{
	long long b = next_local(zone, hour), offset, boundary_ms, wait_ms;
	char extra[256], deal[1024], st[64], sub[64];
	struct controls ctl = { f, g, ng };
	struct counts c;
	long long deferred = 0, sent = 0;
	size_t k;
	int i;

	import_groups(f, g, ng);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	offset = b - (long long)time(NULL) - LEAD_S - 1;
	snprintf(extra, sizeof(extra), "rate_per_s = 5\nburst = 1\n"
	    "[notifier]\nclock_offset_s = %lld\n", offset);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "law", extra), 0);
	it_sleep_ms(1000);
	snprintf(deal, sizeof(deal),
	    "{\"id\": \"eve\", \"title\": \"Deal\", \"category\": \"laptop\", "
	    "\"price\": 649.0, \"list_price\": 1099.0, \"currency\": \"USD\", "
	    "\"url\": \"https://shop.example/d/e\", \"expires_at\": %lld}", b + 2 * 86400);
	assert_int_equal(it_publish(f->rc, deal), 0);
	boundary_ms = (b - offset) * 1000LL;
	wait_ms = boundary_ms + 3000 - (long long)time(NULL) * 1000LL;
	if (wait_ms > 0)
		it_sleep_ms((long)wait_ms);
	assert_true(it_wait(controls_done, &ctl, 30000));
	it_sleep_ms(500);
	c = gw_counts(f, g, ng, boundary_ms);
	assert_int_equal(c.dup, 0);
	for (k = 0; k < ng; k++) {
		long long left = 0, counted = 0, waiting = 0;

		printf("# %s: %ld texts, %ld at or after %02d:00 %s\n", g[k].name,
		    c.texts[k], c.after[k], hour, zone);
		if (!g[k].closed) {
			assert_int_equal(c.texts[k], PER_GROUP);
			continue;
		}
		assert_int_equal(c.after[k], 0);
		for (i = 0; i < PER_GROUP; i++) {
			snprintf(sub, sizeof(sub), "%s-%d", g[k].name, i);
			push_state(f, "eve", sub, st, sizeof(st));
			if (strcmp(st, "sent") == 0) {
				left++;
			} else {
				/* Waiting for its own next morning, not counted: deferred at
				 * send (or delayed at admit, had its job come in late). */
				assert_true(strcmp(st, "deferred") == 0 ||
				    strcmp(st, "delayed") == 0);
				assert_int_equal(delayed_at(f, sub),
				    it_local_at(g[k].tz, b, 1, g[k].opens_h));
				waiting++;
			}
			counted += texts_of(f, sub);
		}
		assert_int_equal(left, c.texts[k]);
		assert_int_equal(left + waiting, PER_GROUP);
		/* Caps (Florida, Oklahoma, Maryland: the law's 3 in 24 h) hold only texts
		 * that left. */
		if (strcmp(g[k].name, "fl") == 0 || strcmp(g[k].name, "md") == 0 ||
		    strcmp(g[k].name, "ok") == 0)
			assert_int_equal(counted, left);
		else
			assert_int_equal(counted, 0);
		deferred += waiting;
		sent += left;
	}
	printf("# %lld sent before the boundary, %lld deferred\n", sent, deferred);
	assert_true(deferred > 0);
	assert_int_equal(it_shards_sum_key(f->rc, "ZCARD %s", KEYS_DELAYED), deferred);

	/* The next morning (09:00:30, when every group is open): the deferred pushes go
	 * out, once each, each counted once under the caps. */
	assert_int_equal(it_stop(&f->nt.proc, SIGTERM, 5000), 0);
	offset = it_local_at(zone, b, 1, 9) + 30 - (long long)time(NULL);
	snprintf(extra, sizeof(extra), "[notifier]\nclock_offset_s = %lld\n", offset);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "law", extra), 0);
	assert_true(it_wait(all_sent, &ctl, 20000));
	it_sleep_ms(500);
	c = gw_counts(f, g, ng, 0);
	assert_int_equal(c.dup, 0);
	for (k = 0; k < ng; k++) {
		assert_int_equal(c.texts[k], PER_GROUP);
		for (i = 0; g[k].closed && (strcmp(g[k].name, "fl") == 0 ||
		    strcmp(g[k].name, "md") == 0 || strcmp(g[k].name, "ok") == 0) &&
		    i < PER_GROUP; i++) {
			snprintf(sub, sizeof(sub), "%s-%d", g[k].name, i);
			assert_int_equal(texts_of(f, sub), 1);
		}
	}
	assert_int_equal(it_shards_sum_key(f->rc, "ZCARD %s", KEYS_DELAYED), 0);
}

static void
florida_maryland_connecticut_numbers_get_nothing_after_eight_pm(void **state)
{
	static const struct group g[] = {
		{ "fl", "305", "America/New_York", 1, 8 },
		{ "md", "410", "America/New_York", 1, 8 },
		{ "ct", "203", "America/New_York", 1, 9 },
		{ "ny", "212", "America/New_York", 0, 8 },
	};

	cross_boundary(*state, "America/New_York", 20, g, 4);
}

static void
washington_numbers_get_nothing_after_eight_pm_pacific(void **state)
{
	static const struct group g[] = {
		{ "wa", "206", "America/Los_Angeles", 1, 8 },
		{ "ca", "415", "America/Los_Angeles", 0, 8 },
	};

	cross_boundary(*state, "America/Los_Angeles", 20, g, 2);
}

static void
other_numbers_get_nothing_after_nine_pm_and_oklahoma_after_eight_central(void **state)
{
	/* 21:00 Eastern is 20:00 Central: New York's and Oklahoma's boundary at once. */
	static const struct group g[] = {
		{ "ny", "212", "America/New_York", 1, 8 },
		{ "ok", "405", "America/Chicago", 1, 8 },
	};

	cross_boundary(*state, "America/New_York", 21, g, 2);
}

static int
outcomes_reach(void *arg)
{
	struct it_one *f = ((void **)arg)[0];
	const char *outcome = ((void **)arg)[1];
	long long want = *(long long *)((void **)arg)[2];

	return it_outcomes(f->rc, outcome) >= want;
}

/* 03:00 in Miami is 08:00 UTC and 17:00 in Tokyo: a 305 number whose subscriber says
 * UTC or Asia/Tokyo waits for the hour both windows allow; a number with no area
 * code (+44) that says UTC is texted at once. */
static void
stated_zone_and_area_code_disagree_the_stricter_holds(void **state)
{
	struct it_one *f = *state;
	long long three = next_local("America/New_York", 3), offset, one = 1;
	char extra[128], st[64], deal[512];
	void *want[3] = { f, "sent", &one };

	assert_int_equal(it_import(f->port,
	    "{\"id\":\"miami-utc\",\"phone\":\"+13055550100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"UTC\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"
	    "{\"id\":\"miami-tokyo\",\"phone\":\"+13055550101\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"Asia/Tokyo\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"
	    "{\"id\":\"london-utc\",\"phone\":\"+442079460100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"UTC\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	/* The notifier's clock reads 03:00:30 in New York. */
	offset = three + 30 - (long long)time(NULL);
	snprintf(extra, sizeof(extra), "[notifier]\nclock_offset_s = %lld\n", offset);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "law", extra), 0);
	snprintf(deal, sizeof(deal),
	    "{\"id\": \"night\", \"title\": \"Deal\", \"category\": \"laptop\", "
	    "\"url\": \"https://shop.example/d/n\", \"expires_at\": %lld}", three + 2 * 86400);
	assert_int_equal(it_publish(f->rc, deal), 0);
	assert_true(it_wait(outcomes_reach, want, 10000));
	it_sleep_ms(500);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 1);
	assert_string_equal(push_state(f, "night", "london-utc", st, sizeof(st)), "sent");
	assert_string_equal(push_state(f, "night", "miami-utc", st, sizeof(st)), "delayed");
	assert_string_equal(push_state(f, "night", "miami-tokyo", st, sizeof(st)), "delayed");
	/* UTC: 08:00 in Miami (UTC's 08:00-21:00 is open then). Tokyo: the next instant
	 * both 08:00-20:00 (Florida) windows are open, 08:00 in Tokyo. */
	assert_int_equal(delayed_at(f, "miami-utc"), it_local_at("America/New_York", three, 0, 8));
	assert_int_equal(delayed_at(f, "miami-tokyo"), it_local_at("Asia/Tokyo", three, 1, 8));
}

/* Field of report:deal:day-<d>, as a number (0 when absent). */
static long long
report_field(struct it_one *f, int d, const char *field)
{
	char deal[32];

	snprintf(deal, sizeof(deal), "day-%d", d);
	return (long long)it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, deal, field);
}

/* Four deals without a campaign in one afternoon: a Florida, an Oklahoma and a
 * Maryland number get three texts and one legal_cap each; a Texas number gets four. */
static void
fourth_text_in_a_day_to_florida_oklahoma_maryland_is_over_the_legal_cap(void **state)
{
	struct it_one *f = *state;
	static const struct group g[] = {
		{ "fl", "305", "America/New_York", 1, 8 },
		{ "ok", "405", "America/Chicago", 1, 8 },
		{ "md", "410", "America/New_York", 1, 8 },
		{ "tx", "512", "America/Chicago", 0, 8 },
	};
	long long capped = 3 * PER_GROUP;
	void *want[3] = { f, "legal_cap", &capped };
	struct counts c;
	char deal[512], sub[64];
	int d, i;
	size_t k;

	import_groups(f, g, 4);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "law", NULL), 0);
	for (d = 0; d < 4; d++) {
		snprintf(deal, sizeof(deal), "{\"id\": \"day-%d\", \"title\": \"Deal %d\", "
		    "\"category\": \"laptop\", \"url\": \"https://x.example/%d\", "
		    "\"expires_at\": %lld}", d, d, d, it_now() + 600);
		assert_int_equal(it_publish(f->rc, deal), 0);
	}
	assert_true(it_wait(outcomes_reach, want, 20000));
	it_sleep_ms(500);
	c = gw_counts(f, g, 4, 0);
	for (k = 0; k < 4; k++) {
		printf("# %s: %ld texts\n", g[k].name, c.texts[k]);
		assert_int_equal(c.texts[k], (g[k].closed ? 3 : 4) * PER_GROUP);
		for (i = 0; g[k].closed && i < PER_GROUP; i++) {
			snprintf(sub, sizeof(sub), "%s-%d", g[k].name, i);
			assert_int_equal(texts_of(f, sub), 3);
		}
	}
	assert_int_equal(it_outcomes(f->rc, "legal_cap"), 3 * PER_GROUP);
	assert_int_equal(it_outcomes(f->rc, "sent"), 13 * PER_GROUP);
	/* The reason is in the deals' reports too. */
	for (d = 0, i = 0; d < 4; d++)
		i += (int)report_field(f, d, "legal_cap");
	assert_int_equal(i, 3 * PER_GROUP);
}

/* cap_scope = campaign: the law's cap counts per campaign (a deal without one is its
 * own), so a Florida number gets all four deals; deliver.campaign_cap = 2 still stops
 * the third deal of one campaign for a Texas number. */
static void
cap_scope_campaign_counts_per_campaign(void **state)
{
	struct it_one *f = *state;
	long long one = 1;
	void *want[3] = { f, "campaign_cap", &one };
	char deal[512];
	int d;

	assert_int_equal(it_import(f->port,
	    "{\"id\":\"fl\",\"phone\":\"+13055550100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/New_York\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"
	    "{\"id\":\"tx\",\"phone\":\"+15125550100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"phone\"]}}\n"), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "law",
	    "[compliance]\ncap_scope = campaign\n[deliver]\ncampaign_cap = 2\n"), 0);
	for (d = 0; d < 4; d++) {
		snprintf(deal, sizeof(deal), "{\"id\": \"own-%d\", \"title\": \"Deal %d\", "
		    "\"category\": \"laptop\", \"url\": \"https://x.example/%d\", "
		    "\"expires_at\": %lld}", d, d, d, it_now() + 600);
		assert_int_equal(it_publish(f->rc, deal), 0);
	}
	for (d = 0; d < 3; d++) {
		snprintf(deal, sizeof(deal), "{\"id\": \"bf-%d\", \"title\": \"BF %d\", "
		    "\"category\": \"phone\", \"url\": \"https://x.example/b%d\", "
		    "\"campaign\": \"bf\", \"expires_at\": %lld}", d, d, d, it_now() + 600);
		assert_int_equal(it_publish(f->rc, deal), 0);
	}
	assert_true(it_wait(outcomes_reach, want, 20000));
	it_sleep_ms(800);
	assert_int_equal(it_outcomes(f->rc, "sent"), 4 + 2);
	assert_int_equal(it_outcomes(f->rc, "legal_cap"), 0);
	assert_int_equal(it_outcomes(f->rc, "campaign_cap"), 1);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    florida_maryland_connecticut_numbers_get_nothing_after_eight_pm, it_one_setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    washington_numbers_get_nothing_after_eight_pm_pacific, it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    other_numbers_get_nothing_after_nine_pm_and_oklahoma_after_eight_central,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    stated_zone_and_area_code_disagree_the_stricter_holds, it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    fourth_text_in_a_day_to_florida_oklahoma_maryland_is_over_the_legal_cap,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(cap_scope_campaign_counts_per_campaign, it_one_setup,
		    it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
