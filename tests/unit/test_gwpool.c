/*
 * test_gwpool.c: choosing a gateway under limits, budgets and the breaker
 * (notifier/gwpool.c, stage: send).
 *
 * The clock is two numbers the test moves: monotonic ms and wall epoch seconds. Every
 * call goes through a wrapper that runs gwpool_check afterwards, and a randomized run
 * (fixed seed) checks the invariants and the exactness of retry_at_ms after each of
 * 10,000 operations. The pool is freed in the teardown, also when a test fails.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gwpool.h"

#define WALL0 1700000000        /* 2023-11-14T22:13:20Z: 6,400 s before a UTC midnight */
#define MIDNIGHT1 1700006400    /* 2023-11-15T00:00:00Z */
#define T0 1000000              /* monotonic ms at the start of each test */
#define MAXGW 8

struct fx {
	struct gwpool *p;
	struct gw_config cfg[MAXGW];
	size_t n;
	long budget[MAXGW];
	long rbudget[MAXGW];
	struct gwpool_limits lim;
	int64_t now;            /* monotonic ms */
	int64_t wall;           /* epoch seconds */
};

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->now = T0;
	f->wall = WALL0;
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	gwpool_free(f->p);
	free(f);
	return 0;
}

/* Adds a gateway; returns its index. */
static size_t
fx_gw(struct fx *f, const char *name, enum channel ch, int prio, double rate,
    double burst, long max_in_flight)
{
	struct gw_config *c = &f->cfg[f->n];

	assert_true(f->n < MAXGW);
	memset(c, 0, sizeof(*c));
	c->name = (char *)name;
	c->kind = ch == CH_SMS ? GW_TWILIO : GW_XDM;
	c->channel = ch;
	c->priority = prio;
	c->rate_per_s = rate;
	c->burst = burst;
	c->max_in_flight = max_in_flight;
	return f->n++;
}

static void
checked(struct fx *f)
{
	struct err e;

	err_clear(&e);
	if (gwpool_check(f->p, &e) != 0)
		fail_msg("invariant broken: %s: %s", e.field, e.msg);
}

static void
fx_build(struct fx *f)
{
	struct err e;

	err_clear(&e);
	f->lim.daily_budget = f->budget;
	f->lim.recipient_daily_budget = f->rbudget;
	f->p = gwpool_new(f->cfg, f->n, &f->lim, &e);
	if (f->p == NULL)
		fail_msg("gwpool_new: %s", e.msg);
	checked(f);
}

static void
advance(struct fx *f, int64_t ms)
{
	f->now += ms;
	f->wall += ms / 1000;
}

/* Picks on ch; returns the index, or -2 when none is usable now (*retry set), or -1. */
static long
pick_key(struct fx *f, enum channel ch, const char *key, int64_t *retry)
{
	size_t i = 999;
	int64_t r = -42;
	int rc = gwpool_pick(f->p, ch, f->now, f->wall, key, &i, &r);

	checked(f);
	if (retry != NULL)
		*retry = r;
	if (rc == 1) {
		assert_true(i < f->n);
		assert_int_equal(f->cfg[i].channel, ch);
		return (long)i;
	}
	return rc == 0 ? -2 : -1;
}

static long
pick(struct fx *f, enum channel ch)
{
	return pick_key(f, ch, NULL, NULL);
}

static void
start_key(struct fx *f, size_t i, const char *key)
{
	assert_int_equal(gwpool_started(f->p, i, f->now, f->wall, key), 0);
	checked(f);
}

static void
start(struct fx *f, size_t i)
{
	start_key(f, i, NULL);
}

static void
finish(struct fx *f, size_t i, enum gw_outcome o, long retry_after_s)
{
	assert_int_equal(gwpool_finished(f->p, i, o, retry_after_s, f->now), 0);
	checked(f);
}

/* One whole request: pick must choose i, then it starts and ends with o. */
static void
request(struct fx *f, enum channel ch, size_t i, enum gw_outcome o)
{
	assert_int_equal(pick(f, ch), (long)i);
	start(f, i);
	finish(f, i, o, -1);
}

static struct gwpool_stats
stats(struct fx *f, size_t i)
{
	struct gwpool_stats s;

	assert_int_equal(gwpool_state(f->p, i, f->now, f->wall, &s), 0);
	return s;
}

/* --- priority and failover ---------------------------------------------------- */

static void
lower_priority_number_is_tried_first_then_config_order(void **state)
{
	struct fx *f = *state;
	size_t late = fx_gw(f, "late", CH_SMS, 5, 0, 0, 1);
	size_t first = fx_gw(f, "first", CH_SMS, 1, 0, 0, 1);
	size_t second = fx_gw(f, "second", CH_SMS, 1, 0, 0, 1);

	fx_build(f);
	assert_int_equal(pick(f, CH_SMS), (long)first);
	start(f, first);
	assert_int_equal(pick(f, CH_SMS), (long)second);
	start(f, second);
	assert_int_equal(pick(f, CH_SMS), (long)late);
	finish(f, first, GW_SENT, -1);
	assert_int_equal(pick(f, CH_SMS), (long)first);
}

static void
five_failures_open_the_breaker_and_traffic_fails_over(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 0, 0, 0);
	size_t b = fx_gw(f, "b", CH_SMS, 1, 0, 0, 0);
	struct gwpool_stats s;
	int k;

	fx_build(f);
	/* a success in between resets the count */
	for (k = 0; k < 4; k++)
		request(f, CH_SMS, a, GW_RETRY);
	request(f, CH_SMS, a, GW_SENT);
	for (k = 0; k < 4; k++)
		request(f, CH_SMS, a, GW_RETRY);
	assert_string_equal(stats(f, a).state, "closed");
	assert_int_equal(stats(f, a).failures, 4);
	request(f, CH_SMS, a, GW_RETRY);
	s = stats(f, a);
	assert_string_equal(s.state, "open");
	assert_int_equal(s.opened_count, 1);
	assert_int_equal(s.open_until_ms, f->now + 5000);
	assert_int_equal(pick(f, CH_SMS), (long)b);
	/* permanent and opt-out answers are the gateway working */
	request(f, CH_SMS, b, GW_PERMANENT);
	request(f, CH_SMS, b, GW_OPTED_OUT);
	assert_int_equal(stats(f, b).failures, 0);
}

static void
failure_ratio_over_the_window_opens_the_breaker(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_DM, 0, 0, 0, 0);
	int k;

	f->lim.breaker_window_min = 20;
	f->lim.breaker_ratio = 0.5;
	f->lim.breaker_window_ms = 10000;
	fx_build(f);
	/* spread over far more than the window: never 20 outcomes in it */
	for (k = 0; k < 40; k++) {
		request(f, CH_DM, a, k % 2 ? GW_RETRY : GW_SENT);
		advance(f, 1000);
	}
	assert_string_equal(stats(f, a).state, "closed");
	advance(f, 20000);
	/* one failure in two, never two in a row: the ratio rule opens on the 20th */
	for (k = 0; k < 19; k++)
		request(f, CH_DM, a, k % 2 ? GW_RETRY : GW_SENT);
	assert_string_equal(stats(f, a).state, "closed");
	assert_int_equal(stats(f, a).window_outcomes, 19);
	request(f, CH_DM, a, GW_RETRY);
	assert_string_equal(stats(f, a).state, "open");
}

static void
open_breaker_reports_when_to_try_again(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 0, 0, 0);
	int64_t retry;
	int k;

	fx_build(f);
	for (k = 0; k < 5; k++)
		request(f, CH_SMS, a, GW_RETRY);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry, f->now + 5000);
}

/* --- half-open ---------------------------------------------------------------- */

static void
half_open_allows_one_probe_and_success_closes(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 0, 0, 0);
	size_t b = fx_gw(f, "b", CH_SMS, 1, 0, 0, 0);
	int k;

	fx_build(f);
	for (k = 0; k < 5; k++)
		request(f, CH_SMS, a, GW_RETRY);
	advance(f, 4999);
	assert_int_equal(pick(f, CH_SMS), (long)b);
	advance(f, 1);
	assert_string_equal(stats(f, a).state, "half-open");
	assert_int_equal(pick(f, CH_SMS), (long)a);
	start(f, a);
	/* exactly one probe: the next pick goes elsewhere, a second start is refused */
	assert_int_equal(pick(f, CH_SMS), (long)b);
	assert_int_equal(gwpool_started(f->p, a, f->now, f->wall, NULL), -1);
	checked(f);
	advance(f, 300);
	finish(f, a, GW_SENT, -1);
	assert_string_equal(stats(f, a).state, "closed");
	/* traffic returns: many at once */
	for (k = 0; k < 3; k++) {
		assert_int_equal(pick(f, CH_SMS), (long)a);
		start(f, a);
	}
	assert_int_equal(stats(f, a).in_flight, 3);
}

static void
failed_probe_reopens_with_doubled_cooldown_capped(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 0, 0, 0);
	static const int64_t want[] = { 10000, 20000, 40000, 60000, 60000 };
	int64_t retry;
	size_t k;

	fx_build(f);
	for (k = 0; k < 5; k++)
		request(f, CH_SMS, a, GW_RETRY);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	for (k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		advance(f, retry - f->now - 1);
		assert_int_equal(pick(f, CH_SMS), -2);
		advance(f, 1);
		request(f, CH_SMS, a, GW_RETRY);
		assert_string_equal(stats(f, a).state, "open");
		assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
		assert_int_equal(retry - f->now, want[k]);
	}
	assert_int_equal(stats(f, a).opened_count, 6);
	/* recovery resets the cool-down to its first length */
	advance(f, retry - f->now);
	request(f, CH_SMS, a, GW_SENT);
	for (k = 0; k < 5; k++)
		request(f, CH_SMS, a, GW_RETRY);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry - f->now, 5000);
}

static void
requests_from_before_the_opening_neither_judge_nor_overlap_the_probe(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 0, 0, 0);
	int64_t retry;
	int k;

	fx_build(f);
	for (k = 0; k < 7; k++)
		start(f, a);
	for (k = 0; k < 5; k++)
		finish(f, a, GW_RETRY, -1);
	assert_string_equal(stats(f, a).state, "open");
	advance(f, 6000);
	/* two old requests still out: the probe waits for them, no timer can help */
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_true(retry == GWPOOL_NEVER);
	finish(f, a, GW_SENT, -1);
	assert_string_equal(stats(f, a).state, "half-open");
	assert_int_equal(pick(f, CH_SMS), -2);
	assert_int_equal(gwpool_cancelled(f->p, a), 0);
	checked(f);
	assert_int_equal(pick(f, CH_SMS), (long)a);
	start(f, a);
	/* a cancelled probe frees the probe slot; the next one may go */
	assert_int_equal(gwpool_cancelled(f->p, a), 0);
	checked(f);
	assert_string_equal(stats(f, a).state, "half-open");
	assert_int_equal(pick(f, CH_SMS), (long)a);
	start(f, a);
	finish(f, a, GW_RETRY, -1);
	assert_string_equal(stats(f, a).state, "open");
}

/* --- token bucket, in-flight, 429 --------------------------------------------- */

static void
token_bucket_gives_the_burst_then_one_per_interval(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 10, 5, 0);
	int64_t retry;
	int k;

	fx_build(f);
	for (k = 0; k < 5; k++)
		request(f, CH_SMS, a, GW_SENT);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry, T0 + 100);
	assert_int_equal(gwpool_started(f->p, a, f->now, f->wall, NULL), -1);
	for (k = 1; k <= 4; k++) {
		advance(f, 99);
		assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
		assert_int_equal(retry, f->now + 1);
		advance(f, 1);
		request(f, CH_SMS, a, GW_SENT);
		assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
		assert_int_equal(retry, f->now + 100);
	}
	advance(f, 100);
	request(f, CH_SMS, a, GW_SENT);
	/* Ten requests went (and were answered) in the first 500 ms: the bucket has a
	 * token again at 600 ms, but no one-second window may hold more than the
	 * rate, so the eleventh waits for the first answer to be a second (and a
	 * 5 ms margin for clock rounding) old. */
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry, T0 + 1005);
	advance(f, T0 + 1005 - f->now - 1);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	advance(f, 1);
	request(f, CH_SMS, a, GW_SENT);
	/* a long quiet spell refills to the burst, not beyond */
	advance(f, 60000);
	assert_true(stats(f, a).tokens == 5.0);
	for (k = 0; k < 5; k++)
		request(f, CH_SMS, a, GW_SENT);
	assert_int_equal(pick(f, CH_SMS), -2);
	/* time going backwards refills nothing */
	f->now -= 5000;
	assert_int_equal(pick(f, CH_SMS), -2);
}

/*
 * The window counts a request from its start until a second after its answer: it
 * may leave late (the claim round trip comes between the reservation and the
 * write) and arrives at the latest when it is answered. Counting from the start, as
 * before, let a window of 101 through at 100/s when one request left 20-odd ms
 * after it was reserved (the rate_fidelity bench).
 */
static void
window_holds_a_place_until_a_second_after_the_answer(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 2, 2, 0);
	int64_t retry;

	fx_build(f);
	assert_int_equal(pick(f, CH_SMS), (long)a);
	start(f, a);
	assert_int_equal(pick(f, CH_SMS), (long)a);
	start(f, a);
	/* Both places are held in flight: only an answer can free one. */
	advance(f, 5000);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_true(retry == GWPOOL_NEVER);
	finish(f, a, GW_SENT, -1);
	advance(f, 300);
	finish(f, a, GW_SENT, -1);
	/* First answer at +5000, second at +5300: places free at +6005 and +6305. */
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry, T0 + 6005);
	advance(f, T0 + 6004 - f->now);
	assert_int_equal(pick(f, CH_SMS), -2);
	advance(f, 1);
	assert_int_equal(pick(f, CH_SMS), (long)a);
	start(f, a);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry, T0 + 6305);
	/* A request that never left (cancelled) frees its place at once. */
	assert_int_equal(gwpool_cancelled(f->p, a), 0);
	checked(f);
	assert_int_equal(pick(f, CH_SMS), (long)a);
	start(f, a);
	/* Now the bucket is empty too (a cancel gives no token back): +6505. */
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry, T0 + 6505);
	finish(f, a, GW_SENT, -1);
	/* +6505: the bucket has a token again, the answer of +5300 is old enough. */
	advance(f, 500);
	assert_int_equal(pick(f, CH_SMS), (long)a);
	/* A 429 answer arrived too: it holds its place like any other, so the next
	 * waits for the answer of +6005 to age (+7010), not only for a token (+7005). */
	start(f, a);
	finish(f, a, GW_RATE_LIMITED, 0);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry, T0 + 7010);
}

static void
max_in_flight_is_respected_and_freed_by_finished_or_cancelled(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 0, 0, 2);
	int64_t retry;

	fx_build(f);
	start(f, a);
	start(f, a);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_true(retry == GWPOOL_NEVER);
	assert_int_equal(gwpool_started(f->p, a, f->now, f->wall, NULL), -1);
	finish(f, a, GW_SENT, -1);
	assert_int_equal(pick(f, CH_SMS), (long)a);
	start(f, a);
	assert_int_equal(pick(f, CH_SMS), -2);
	assert_int_equal(gwpool_cancelled(f->p, a), 0);
	checked(f);
	assert_int_equal(pick(f, CH_SMS), (long)a);
	/* ends with nothing in flight are refused and change nothing */
	finish(f, a, GW_SENT, -1);
	assert_int_equal(gwpool_cancelled(f->p, a), -1);
	assert_int_equal(gwpool_finished(f->p, a, GW_SENT, -1, f->now), -1);
	assert_int_equal(gwpool_finished(f->p, 7, GW_SENT, -1, f->now), -1);
	checked(f);
	assert_int_equal(stats(f, a).in_flight, 0);
}

static void
rate_limited_pauses_for_retry_after_or_one_second(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_DM, 0, 0, 0, 0);
	int64_t retry;
	int k;

	fx_build(f);
	assert_int_equal(pick(f, CH_DM), (long)a);
	start(f, a);
	finish(f, a, GW_RATE_LIMITED, 3);
	assert_int_equal(pick_key(f, CH_DM, NULL, &retry), -2);
	assert_int_equal(retry, f->now + 3000);
	assert_int_equal(stats(f, a).paused_until_ms, f->now + 3000);
	advance(f, 3000);
	assert_int_equal(pick(f, CH_DM), (long)a);
	start(f, a);
	finish(f, a, GW_RATE_LIMITED, -1);
	assert_int_equal(pick_key(f, CH_DM, NULL, &retry), -2);
	assert_int_equal(retry, f->now + 1000);
	/* a storm of 429s never opens the breaker */
	for (k = 0; k < 20; k++) {
		advance(f, 1000);
		assert_int_equal(pick(f, CH_DM), (long)a);
		start(f, a);
		finish(f, a, GW_RATE_LIMITED, -1);
	}
	assert_string_equal(stats(f, a).state, "closed");
	assert_int_equal(stats(f, a).opened_count, 0);
	/* Retry-After: 0 means now; an absurd one saturates instead of wrapping */
	advance(f, 1000);
	start(f, a);
	finish(f, a, GW_RATE_LIMITED, 0);
	assert_int_equal(pick(f, CH_DM), (long)a);
	start(f, a);
	finish(f, a, GW_RATE_LIMITED, LONG_MAX);
	assert_int_equal(pick_key(f, CH_DM, NULL, &retry), -2);
	assert_true(retry == INT64_MAX);
}

static void
rate_limited_probe_leaves_the_breaker_half_open(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 0, 0, 0);
	int k;

	fx_build(f);
	for (k = 0; k < 5; k++)
		request(f, CH_SMS, a, GW_RETRY);
	advance(f, 5000);
	start(f, a);
	finish(f, a, GW_RATE_LIMITED, 2);
	assert_string_equal(stats(f, a).state, "half-open");
	assert_int_equal(pick(f, CH_SMS), -2);
	advance(f, 2000);
	request(f, CH_SMS, a, GW_SENT);
	assert_string_equal(stats(f, a).state, "closed");
}

/* --- daily budgets ------------------------------------------------------------ */

static void
app_daily_budget_waits_or_moves_and_resets_at_utc_midnight(void **state)
{
	struct fx *f = *state;
	size_t x = fx_gw(f, "x", CH_DM, 0, 0, 0, 0);
	int64_t retry;
	int k;

	f->budget[x] = 3;
	fx_build(f);
	for (k = 0; k < 3; k++)
		request(f, CH_DM, x, GW_SENT);
	assert_int_equal(stats(f, x).sent_today, 3);
	assert_int_equal(pick_key(f, CH_DM, NULL, &retry), -2);
	assert_int_equal(retry, f->now + (int64_t)(MIDNIGHT1 - WALL0) * 1000);
	f->wall = MIDNIGHT1 - 1;
	assert_int_equal(pick(f, CH_DM), -2);
	f->wall = MIDNIGHT1;
	assert_int_equal(stats(f, x).sent_today, 0);
	request(f, CH_DM, x, GW_SENT);
	assert_int_equal(stats(f, x).sent_today, 1);
	assert_int_equal(stats(f, x).budget, 3);
}

static void
spent_budget_moves_the_push_to_the_next_gateway(void **state)
{
	struct fx *f = *state;
	size_t x = fx_gw(f, "x", CH_DM, 0, 0, 0, 0);
	size_t w = fx_gw(f, "hook", CH_DM, 1, 0, 0, 0);

	f->budget[x] = 2;
	fx_build(f);
	request(f, CH_DM, x, GW_SENT);
	/* failures count too: the provider may have counted them */
	request(f, CH_DM, x, GW_RETRY);
	assert_int_equal(pick(f, CH_DM), (long)w);
}

static void
recipient_daily_budget_counts_each_recipient_and_resets(void **state)
{
	struct fx *f = *state;
	size_t x = fx_gw(f, "x", CH_DM, 0, 0, 0, 0);
	int64_t retry;
	int k;

	f->budget[x] = 100;
	f->rbudget[x] = 2;
	fx_build(f);
	for (k = 0; k < 2; k++) {
		assert_int_equal(pick_key(f, CH_DM, "1111", NULL), (long)x);
		start_key(f, x, "1111");
		finish(f, x, GW_SENT, -1);
	}
	assert_int_equal(pick_key(f, CH_DM, "1111", &retry), -2);
	assert_int_equal(retry, f->now + (int64_t)(MIDNIGHT1 - WALL0) * 1000);
	assert_int_equal(gwpool_started(f->p, x, f->now, f->wall, "1111"), -1);
	assert_int_equal(pick_key(f, CH_DM, "2222", NULL), (long)x);
	assert_int_equal(pick(f, CH_DM), (long)x);
	start_key(f, x, "2222");
	assert_int_equal(stats(f, x).recipients_today, 2);
	f->wall = MIDNIGHT1 + 10;
	assert_int_equal(pick_key(f, CH_DM, "1111", NULL), (long)x);
	start_key(f, x, "1111");
	assert_int_equal(stats(f, x).recipients_today, 1);
	assert_int_equal(stats(f, x).sent_today, 1);
}

static void
recipient_map_is_bounded_and_the_overflow_counted(void **state)
{
	struct fx *f = *state;
	size_t x = fx_gw(f, "x", CH_DM, 0, 0, 0, 0);
	char key[32];
	int k;

	f->rbudget[x] = 1;
	f->lim.recipients_max = 100;
	fx_build(f);
	for (k = 0; k < 150; k++) {
		snprintf(key, sizeof(key), "%d", 1000 + k);
		assert_int_equal(pick_key(f, CH_DM, key, NULL), (long)x);
		start_key(f, x, key);
		finish(f, x, GW_SENT, -1);
	}
	assert_int_equal(stats(f, x).recipients_today, 100);
	assert_int_equal(stats(f, x).recipients_untracked, 50);
	/* a counted one stays refused, an uncounted one goes */
	assert_int_equal(pick_key(f, CH_DM, "1000", NULL), -2);
	assert_int_equal(pick_key(f, CH_DM, "1149", NULL), (long)x);
}

/* --- channels ----------------------------------------------------------------- */

static void
channel_without_a_gateway_is_minus_one(void **state)
{
	struct fx *f = *state;
	size_t i = 0;
	int64_t r = 0;

	fx_gw(f, "tw", CH_SMS, 0, 0, 0, 0);
	fx_build(f);
	assert_int_equal(pick(f, CH_DM), -1);
	assert_int_equal(gwpool_pick(f->p, CH_COUNT, f->now, f->wall, NULL, &i, &r), -1);
	gwpool_free(f->p);
	f->n = 0;
	fx_build(f);
	assert_int_equal(gwpool_count(f->p), 0);
	assert_int_equal(pick(f, CH_SMS), -1);
}

static void
slow_gateway_does_not_block_the_other_channel(void **state)
{
	struct fx *f = *state;
	size_t sms = fx_gw(f, "tw", CH_SMS, 0, 0, 0, 2);
	size_t dm = fx_gw(f, "x", CH_DM, 0, 0, 0, 2);

	fx_build(f);
	start(f, sms);
	start(f, sms);
	assert_int_equal(pick(f, CH_SMS), -2);
	assert_int_equal(pick(f, CH_DM), (long)dm);
	start(f, dm);
	finish(f, dm, GW_SENT, -1);
	assert_int_equal(pick(f, CH_DM), (long)dm);
}

static void
earliest_retry_over_all_gateways_of_the_channel(void **state)
{
	struct fx *f = *state;
	size_t a = fx_gw(f, "a", CH_SMS, 0, 0, 0, 0);
	size_t b = fx_gw(f, "b", CH_SMS, 1, 10, 1, 0);
	size_t c = fx_gw(f, "c", CH_SMS, 2, 0, 0, 1);
	int64_t retry;

	fx_build(f);
	start(f, a);
	finish(f, a, GW_RATE_LIMITED, 3);
	request(f, CH_SMS, b, GW_SENT);
	assert_int_equal(pick(f, CH_SMS), (long)c);
	start(f, c);
	assert_int_equal(pick_key(f, CH_SMS, NULL, &retry), -2);
	assert_int_equal(retry, f->now + 100);
	advance(f, 100);
	assert_int_equal(pick(f, CH_SMS), (long)b);
}

static void
bad_config_and_limits_are_refused_by_name(void **state)
{
	struct fx *f = *state;
	struct err e;
	size_t x = fx_gw(f, "x", CH_DM, 0, 0, 0, 0);

	err_clear(&e);
	f->cfg[x].channel = (enum channel)7;
	assert_null(gwpool_new(f->cfg, f->n, NULL, &e));
	assert_string_equal(e.field, "channel");
	f->cfg[x].channel = CH_DM;
	f->cfg[x].rate_per_s = -1;
	assert_null(gwpool_new(f->cfg, f->n, NULL, &e));
	assert_string_equal(e.field, "rate_per_s");
	f->cfg[x].rate_per_s = 1;
	f->budget[x] = -5;
	f->lim.daily_budget = f->budget;
	assert_null(gwpool_new(f->cfg, f->n, &f->lim, &e));
	assert_string_equal(e.field, "daily_budget");
	f->budget[x] = 0;
	f->lim.open_ms = -1;
	assert_null(gwpool_new(f->cfg, f->n, &f->lim, &e));
	assert_string_equal(e.field, "open_ms");
	assert_int_equal(e.kind, ERR_INPUT);
	gwpool_free(NULL);
}

/* --- randomized run ----------------------------------------------------------- */

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Wall seconds follow the monotonic clock so that retry times for budgets are exact. */
static int64_t
wall_at(int64_t ms)
{
	return WALL0 + (ms - T0) / 1000;
}

static void
random_operations_keep_every_invariant_and_exact_retry_times(void **state)
{
	struct fx *f = *state;
	static const char *const keys[] = { "11", "22", "33", "44", "55", "66", NULL };
	long inflight[MAXGW] = { 0 };
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	int64_t retry, picks = 0, waits = 0, opens = 0;
	int op;
	size_t i;

	fx_gw(f, "tw", CH_SMS, 0, 20, 3, 4);
	fx_gw(f, "tw2", CH_SMS, 1, 0, 0, 2);
	fx_gw(f, "x", CH_DM, 0, 5, 5, 3);
	fx_gw(f, "hook", CH_DM, 2, 50, 2, 0);
	f->budget[0] = 300;
	f->budget[2] = 150;
	f->rbudget[2] = 6;
	f->rbudget[3] = 40;
	f->lim.breaker_window_min = 6;
	f->lim.breaker_ratio = 0.6;
	f->lim.breaker_window_ms = 2000;
	f->lim.recipients_max = 4;
	fx_build(f);
	for (op = 0; op < 10000; op++) {
		uint64_t r = rnd(&seed) % 100;
		enum channel ch = (enum channel)(rnd(&seed) % CH_COUNT);
		const char *key = keys[rnd(&seed) % 7];
		size_t got = 0;
		int rc;

		f->wall = wall_at(f->now);
		if (r < 15) {
			/* time passes; now and then hours */
			f->now += (int64_t)(rnd(&seed) % 20 == 0 ? rnd(&seed) % 7200000 :
			    rnd(&seed) % 700);
		} else if (r < 60) {
			rc = gwpool_pick(f->p, ch, f->now, f->wall, key, &got, &retry);
			checked(f);
			if (rc == 1) {
				picks++;
				start_key(f, got, key);
				inflight[got]++;
			} else {
				assert_int_equal(rc, 0);
				/* no gateway of ch may start now */
				for (i = 0; i < f->n; i++)
					if (f->cfg[i].channel == ch)
						assert_int_equal(gwpool_started(f->p, i, f->now,
						    f->wall, key), -1);
				checked(f);
				/* retry_at is never too early: at it, one is usable */
				if (retry != GWPOOL_NEVER) {
					waits++;
					assert_true(retry > f->now);
					assert_int_equal(gwpool_pick(f->p, ch, retry,
					    wall_at(retry), key, &got, &retry), 1);
				}
			}
		} else if (r < 95) {
			i = (size_t)(rnd(&seed) % f->n);
			if (inflight[i] == 0) {
				assert_int_equal(gwpool_finished(f->p, i, GW_SENT, -1,
				    f->now), -1);
				checked(f);
				continue;
			}
			rc = (int)(rnd(&seed) % 10);
			finish(f, i, rc < 5 ? GW_RETRY : rc < 8 ? GW_SENT :
			    rc < 9 ? GW_RATE_LIMITED : GW_OPTED_OUT,
			    (long)(rnd(&seed) % 4) - 1);
			inflight[i]--;
		} else {
			i = (size_t)(rnd(&seed) % f->n);
			assert_int_equal(gwpool_cancelled(f->p, i), inflight[i] ? 0 : -1);
			checked(f);
			if (inflight[i])
				inflight[i]--;
		}
		for (i = 0; i < f->n; i++)
			assert_int_equal(stats(f, i).in_flight, inflight[i]);
	}
	for (i = 0; i < f->n; i++)
		opens += stats(f, i).opened_count;
	/* the run went through every path, not just one */
	assert_true(picks > 1000);
	assert_true(waits > 100);
	assert_true(opens > 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(lower_priority_number_is_tried_first_then_config_order),
		T(five_failures_open_the_breaker_and_traffic_fails_over),
		T(failure_ratio_over_the_window_opens_the_breaker),
		T(open_breaker_reports_when_to_try_again),
		T(half_open_allows_one_probe_and_success_closes),
		T(failed_probe_reopens_with_doubled_cooldown_capped),
		T(requests_from_before_the_opening_neither_judge_nor_overlap_the_probe),
		T(token_bucket_gives_the_burst_then_one_per_interval),
		T(window_holds_a_place_until_a_second_after_the_answer),
		T(max_in_flight_is_respected_and_freed_by_finished_or_cancelled),
		T(rate_limited_pauses_for_retry_after_or_one_second),
		T(rate_limited_probe_leaves_the_breaker_half_open),
		T(app_daily_budget_waits_or_moves_and_resets_at_utc_midnight),
		T(spent_budget_moves_the_push_to_the_next_gateway),
		T(recipient_daily_budget_counts_each_recipient_and_resets),
		T(recipient_map_is_bounded_and_the_overflow_counted),
		T(channel_without_a_gateway_is_minus_one),
		T(slow_gateway_does_not_block_the_other_channel),
		T(earliest_retry_over_all_gateways_of_the_channel),
		T(bad_config_and_limits_are_refused_by_name),
		T(random_operations_keep_every_invariant_and_exact_retry_times),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
