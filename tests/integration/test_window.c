/*
 * test_window.c: the legal sending window holds at the moment a text leaves, not only
 * when the push was admitted (issue 12, item 1).
 *
 * Florida numbers (area code 305: texts only 08:00-20:00 local) and a gateway limited
 * to 5 requests a second: a deal lands a few seconds before 20:00 local, every push
 * is admitted at once, and most wait in the token bucket. The notifier's clock is put
 * there with notifier.clock_offset_s. Counted at the gateway: no text arrives at or
 * after 20:00 local; the pushes still waiting then are deferred to the next window
 * (state "deferred", in the delayed zset), none lost, none sent twice.
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

#define N_SUBS 60
#define LEAD_S 6              /* the deal lands this long before 20:00 local */


/* The epoch second of the next 20:00:00 in America/New_York after real time now. */
static long long
next_eight_pm_new_york(void)
{
	long long now = (long long)time(NULL);
	long long t = it_local_at("America/New_York", now, 0, 20);

	return t > now + 60 ? t : it_local_at("America/New_York", now, 1, 20);
}

static void
import_florida(struct it_one *f)
{
	size_t cap = N_SUBS * 256 + 1, len = 0;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	for (i = 0; i < N_SUBS; i++) {
		snprintf(s + len, cap - len,
		    "{\"id\":\"fl-%d\",\"phone\":\"+1305555%04d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/New_York\","
		    "\"interests\":{\"categories\":[\"laptop\"]}}\n", i, 1000 + i);
		len += strlen(s + len);
	}
	assert_int_equal(it_import(f->port, s), 0);
	free(s);
}

struct counts {
	long texts, after, dup;
};

/* Texts gwsim accepted for the Florida numbers, and how many arrived at or after
 * boundary_ms (real time, ms); dup = numbers texted twice. */
static struct counts
gw_counts(struct it_one *f, long long boundary_ms)
{
	cJSON *all = it_gwsim_requests(&f->gw), *e;
	int per[N_SUBS] = { 0 };
	struct counts c = { 0, 0, 0 };
	int i;

	assert_non_null(all);
	cJSON_ArrayForEach(e, all) {
		const cJSON *to = cJSON_GetObjectItem(e, "to");
		const cJSON *st = cJSON_GetObjectItem(e, "status");
		const cJSON *ts = cJSON_GetObjectItem(e, "ts_ms");

		if (!cJSON_IsString(to) || strncmp(to->valuestring, "+1305555", 8) != 0 ||
		    !cJSON_IsNumber(st) || st->valueint != 201 || !cJSON_IsNumber(ts))
			continue;
		i = atoi(to->valuestring + 8) - 1000;
		if (i >= 0 && i < N_SUBS)
			per[i]++;
		c.texts++;
		if ((long long)ts->valuedouble >= boundary_ms)
			c.after++;
	}
	for (i = 0; i < N_SUBS; i++)
		c.dup += per[i] > 1;
	cJSON_Delete(all);
	return c;
}

/* Pushes of the deal in state st, in every shard's push:fl-window. */
static long long
states(struct it_one *f, const char *st)
{
	char key[KEYS_MAX];
	long long n = 0;
	uint32_t k;
	size_t i;

	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;

		keys_per(k, KEYS_PUSH, "fl-window", key, sizeof(key));
		r = redisCommand(f->rc, "HGETALL %s", key);
		assert_non_null(r);
		for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
			n += strcmp(r->element[i + 1]->str, st) == 0;
		freeReplyObject(r);
	}
	return n;
}

static void
rate_limited_florida_pushes_never_leave_after_eight_pm(void **state)
{
	struct it_one *f = *state;
	long long eight = next_eight_pm_new_york(), offset, boundary_ms, wait_ms;
	char extra[256], deal[1024];
	struct counts c;

	import_florida(f);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	/* The notifier's clock reads 20:00 New York LEAD_S + 1 s after it starts. */
	offset = eight - (long long)time(NULL) - LEAD_S - 1;
	snprintf(extra, sizeof(extra), "rate_per_s = 5\nburst = 1\n"
	    "[notifier]\nclock_offset_s = %lld\n", offset);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "window", extra), 0);
	it_sleep_ms(1000);
	snprintf(deal, sizeof(deal),
	    "{\"id\": \"fl-window\", \"title\": \"Deal\", \"category\": \"laptop\", "
	    "\"price\": 649.0, \"list_price\": 1099.0, \"currency\": \"USD\", "
	    "\"url\": \"https://shop.example/d/w\", \"expires_at\": %lld}",
	    eight + 86400);
	assert_int_equal(it_publish(f->rc, deal), 0);
	/* Past 20:00 local by a few seconds. */
	boundary_ms = (eight - offset) * 1000LL;
	wait_ms = boundary_ms + 4000 - (long long)time(NULL) * 1000LL;
	if (wait_ms > 0)
		it_sleep_ms((long)wait_ms);
	c = gw_counts(f, boundary_ms);
	printf("# window: %ld texts before 20:00, %ld at or after, %lld deferred\n",
	    c.texts - c.after, c.after, states(f, "deferred"));
	assert_int_equal(c.after, 0);
	assert_int_equal(c.dup, 0);
	assert_true(c.texts > 0);
	/* The rest wait for 08:00: none lost. */
	assert_true(states(f, "deferred") > 0);
	assert_int_equal(states(f, "sent") + states(f, "deferred"), N_SUBS);
	assert_int_equal(it_shards_sum_key(f->rc, "ZCARD %s", KEYS_DELAYED),
	    states(f, "deferred"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    rate_limited_florida_pushes_never_leave_after_eight_pm, it_one_setup, it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
