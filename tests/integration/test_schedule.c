/*
 * test_schedule.c: deals that start later and deals that are updated, end to end
 * (real redis-server, gwsim and notifier), and the log line of a rate-limited retry.
 *
 * Counts, never timings: a push held for starts_at is looked at in Redis and at the
 * gateway before the start; every "sent" entry on pushes:log carries the notifier's
 * clock, which must not be before starts_at.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "keys.h"

#define PHONE_BASE 3000

/* A laptop deal at price; update = 1 gives the update form. Static buffer. */
static const char *
deal_at(const char *id, long long starts_at, long long expires_at, int update,
    const char *price)
{
	static char buf[1024];
	char start[64] = "";

	if (starts_at > 0)
		snprintf(start, sizeof(start), "\"starts_at\": %lld, ", starts_at);
	snprintf(buf, sizeof(buf),
	    "{\"id\": \"%s\", %s\"title\": \"Deal %s\", \"category\": \"laptop\", "
	    "\"price\": %s, \"list_price\": 1099.0, \"currency\": \"USD\", "
	    "\"url\": \"https://shop.example/d/%s\", \"code\": \"SAVE20\", "
	    "%s\"expires_at\": %lld}", id, start, id, price, id,
	    update ? "\"update\": true, " : "", expires_at);
	return buf;
}

static const char *
deal(const char *id, long long starts_at, long long expires_at, int update)
{
	return deal_at(id, starts_at, expires_at, update, "649.0");
}

/* Requests gwsim logged for Twilio messages (any status). */
static long
gw_messages(const struct it_gwsim *g)
{
	cJSON *all = it_gwsim_requests(g), *e;
	long n = 0;

	assert_non_null(all);
	cJSON_ArrayForEach(e, all) {
		const cJSON *to = cJSON_GetObjectItem(e, "to");

		n += cJSON_IsString(to) && strncmp(to->valuestring, "+1512555", 8) == 0;
	}
	cJSON_Delete(all);
	return n;
}

/* Fields of push:<deal> (every shard's) whose state is st. */
static long long
states(struct it_one *f, const char *deal_id, const char *st)
{
	char key[KEYS_MAX];
	long long n = 0;
	uint32_t k;
	size_t i;

	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;

		keys_per(k, KEYS_PUSH, deal_id, key, sizeof(key));
		r = redisCommand(f->rc, "HGETALL %s", key);
		assert_non_null(r);
		for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
			n += strcmp(r->element[i + 1]->str, st) == 0;
		freeReplyObject(r);
	}
	return n;
}

struct want {
	struct it_one *f;
	const char *deal, *state;
	long long n;
};

static int
states_reach(void *arg)
{
	struct want *w = arg;

	return states(w->f, w->deal, w->state) >= w->n;
}

/* The smallest "at" among pushes:log's sent entries of deal_id, and their number
 * (every shard's pushes:log). */
static long long
earliest_sent(struct it_one *f, const char *deal_id, long long *count)
{
	char key[KEYS_SHARD_MAX];
	long long min = -1;
	uint32_t k;
	size_t i, j;

	*count = 0;
	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;

		keys_shard_key(k, KEYS_PUSHES_LOG, key, sizeof(key));
		r = redisCommand(f->rc, "XRANGE %s - +", key);
		assert_non_null(r);
		for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
			redisReply *fl = r->element[i]->element[1];
			const char *d = NULL, *o = NULL, *at = NULL;

			for (j = 0; j + 1 < fl->elements; j += 2) {
				if (strcmp(fl->element[j]->str, "deal") == 0)
					d = fl->element[j + 1]->str;
				else if (strcmp(fl->element[j]->str, "outcome") == 0)
					o = fl->element[j + 1]->str;
				else if (strcmp(fl->element[j]->str, "at") == 0)
					at = fl->element[j + 1]->str;
			}
			if (d == NULL || o == NULL || at == NULL || strcmp(d, deal_id) != 0 ||
			    strcmp(o, "sent") != 0)
				continue;
			(*count)++;
			if (min < 0 || atoll(at) < min)
				min = atoll(at);
		}
		freeReplyObject(r);
	}
	return min;
}

static void
start(struct it_one *f, const char *const *gwflags, const char *extra)
{
	assert_int_equal(it_gwsim_start(&f->gw, gwflags), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "sched", extra), 0);
}

static void
deal_starting_later_is_held_until_it_starts(void **state)
{
	struct it_one *f = *state;
	const int n = 20;
	long long starts = it_now() + 6, first, sent;
	struct want held = { f, "later", "delayed", n }, done = { f, "later", "sent", n };

	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	start(f, NULL, NULL);
	assert_int_equal(it_publish(f->rc, deal("later", starts, it_now() + 600, 0)), 0);
	/* Planned at once, every push held. */
	assert_true(it_wait(states_reach, &held, 10000));
	assert_true(it_now() < starts);
	assert_int_equal(gw_messages(&f->gw), 0);
	/* After the start every push goes, and none went before it. */
	assert_true(it_wait(states_reach, &done, 20000));
	first = earliest_sent(f, "later", &sent);
	assert_int_equal(sent, n);
	assert_true(first >= starts);
	assert_int_equal(gw_messages(&f->gw), n);
}

static void
update_shortening_the_expiry_ends_held_pushes_expired(void **state)
{
	struct it_one *f = *state;
	const int n = 10;
	long long starts = it_now() + 8;
	struct want held = { f, "shrink", "delayed", n }, done = { f, "shrink", "expired", n };
	char v[32];
	redisReply *r;

	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	start(f, NULL, NULL);
	assert_int_equal(it_publish(f->rc, deal("shrink", starts, it_now() + 600, 0)), 0);
	assert_true(it_wait(states_reach, &held, 10000));
	/* Now it ends before it was to start (the update leaves starts_at out: one at or
	 * after the expiry is refused): nothing may go. */
	assert_int_equal(it_publish(f->rc, deal("shrink", 0, it_now() + 2, 1)), 0);
	assert_true(it_wait(states_reach, &done, 20000));
	assert_int_equal(gw_messages(&f->gw), 0);
	r = redisCommand(f->rc, "HGET deal:shrink exp");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	snprintf(v, sizeof(v), "%s", r->str);
	freeReplyObject(r);
	assert_true(atoll(v) < starts);
}

/*
 * A deal that would have ended a second after it starts, extended: gwsim answers
 * after 1.5 s, so a request bounded by the old expiry would time out (unknown); under
 * the new one every push is sent.
 */
static void
update_extending_the_expiry_is_followed_by_queued_pushes(void **state)
{
	struct it_one *f = *state;
	static const char *const slow[] = { "--latency-ms", "1500", NULL };
	const int n = 10;
	long long starts = it_now() + 5, sent;
	struct want held = { f, "grow", "delayed", n }, done = { f, "grow", "sent", n };

	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	start(f, slow, NULL);
	assert_int_equal(it_publish(f->rc, deal("grow", starts, starts + 1, 0)), 0);
	assert_true(it_wait(states_reach, &held, 10000));
	assert_int_equal(it_publish(f->rc, deal("grow", starts, it_now() + 600, 1)), 0);
	assert_true(it_wait(states_reach, &done, 20000));
	earliest_sent(f, "grow", &sent);
	assert_int_equal(sent, n);
	assert_int_equal(states(f, "grow", "unknown"), 0);
	assert_int_equal(states(f, "grow", "expired"), 0);
}

/* Twilio message requests gwsim logged whose body holds what (any status). */
static long
gw_bodies_with(const struct it_gwsim *g, const char *what)
{
	cJSON *all = it_gwsim_requests(g), *e;
	long n = 0;

	assert_non_null(all);
	cJSON_ArrayForEach(e, all) {
		const cJSON *to = cJSON_GetObjectItem(e, "to");
		const cJSON *body = cJSON_GetObjectItem(e, "body");

		n += cJSON_IsString(to) && strncmp(to->valuestring, "+1512555", 8) == 0 &&
		    cJSON_IsString(body) && strstr(body->valuestring, what) != NULL;
	}
	cJSON_Delete(all);
	return n;
}

struct field_want {
	struct it_one *f;
	const char *key, *field, *value;
};

static int
field_is(void *arg)
{
	struct field_want *w = arg;
	redisReply *r = redisCommand(w->f->rc, "HGET %s %s", w->key, w->field);
	int ok;

	assert_non_null(r);
	ok = r->type == REDIS_REPLY_STRING && strcmp(r->str, w->value) == 0;
	freeReplyObject(r);
	return ok;
}

/* The texts rendered again for deal's pushes: every shard's retext:<deal>. */
static long long
retexts(struct it_one *f, const char *deal)
{
	char key[KEYS_MAX];
	long long n = 0;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		keys_per(k, KEYS_RETEXT, deal, key, sizeof(key));
		n += it_int(f->rc, "HLEN %s", key);
	}
	return n;
}

/*
 * A held deal whose price changes before it starts: every text that reaches the
 * gateway carries the new price, none the old, and the pushes keep their ids (one
 * text per phone).
 */
static void
update_new_price_reaches_held_pushes(void **state)
{
	struct it_one *f = *state;
	const int n = 10;
	long long starts = it_now() + 8, sent;
	struct want held = { f, "reprice", "delayed", n }, done = { f, "reprice", "sent", n };
	struct field_want updated = { f, "deal:reprice", "version", "1" };

	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	start(f, NULL, NULL);
	assert_int_equal(it_publish(f->rc, deal_at("reprice", starts, it_now() + 600, 0,
	    "649.0")), 0);
	assert_true(it_wait(states_reach, &held, 10000));
	assert_int_equal(it_publish(f->rc, deal_at("reprice", starts, it_now() + 600, 1,
	    "512.34")), 0);
	assert_true(it_wait(field_is, &updated, 10000));
	assert_int_equal(gw_messages(&f->gw), 0);
	assert_int_equal(retexts(f, "reprice"), n);
	assert_true(it_wait(states_reach, &done, 20000));
	earliest_sent(f, "reprice", &sent);
	assert_int_equal(sent, n);
	assert_int_equal(gw_messages(&f->gw), n);
	assert_int_equal(gw_bodies_with(&f->gw, "512.34"), n);
	assert_int_equal(gw_bodies_with(&f->gw, "649"), 0);
}

/* An update after every text went out re-sends nothing and keeps no new text. */
static void
update_after_texts_went_out_sends_nothing_more(void **state)
{
	struct it_one *f = *state;
	const int n = 10;
	struct want done = { f, "gone", "sent", n };
	struct field_want updated = { f, "deal:gone", "version", "1" };
	struct want after = { f, "gone", "sent", n };

	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	start(f, NULL, NULL);
	assert_int_equal(it_publish(f->rc, deal_at("gone", 0, it_now() + 600, 0, "649.0")),
	    0);
	assert_true(it_wait(states_reach, &done, 20000));
	assert_int_equal(gw_messages(&f->gw), n);
	assert_int_equal(it_publish(f->rc, deal_at("gone", 0, it_now() + 600, 1,
	    "512.34")), 0);
	assert_true(it_wait(field_is, &updated, 10000));
	/* A later deal goes out after the update was handled: anything the update had
	 * queued would have gone before or with it. */
	assert_int_equal(it_publish(f->rc, deal_at("after", 0, it_now() + 600, 0, "700.0")),
	    0);
	after.deal = "after";
	assert_true(it_wait(states_reach, &after, 20000));
	assert_int_equal(retexts(f, "gone"), 0);
	assert_int_equal(gw_messages(&f->gw), 2 * n);
	assert_int_equal(gw_bodies_with(&f->gw, "512.34"), 0);
	assert_int_equal(states(f, "gone", "sent"), n);
}

static int
log_mentions(const char *path, const char *what, const char *also)
{
	FILE *fp = fopen(path, "r");
	char line[4096];
	int found = 0;

	if (fp == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL)
		found = strstr(line, what) != NULL && strstr(line, also) != NULL;
	fclose(fp);
	return found;
}

static int
logged_rate_limited(void *arg)
{
	struct it_one *f = arg;

	return log_mentions(f->nt.proc.log, "event=push_retry", "reason=rate_limited");
}

static void
rate_limited_answer_is_logged_and_retried(void **state)
{
	struct it_one *f = *state;
	static const char *const limited[] = { "--answer", "+15125553000=429", NULL };

	it_import_audience(f->port, 1, PHONE_BASE, "laptop");
	start(f, limited, NULL);
	assert_int_equal(it_publish(f->rc, it_deal("limited", "laptop", 600)), 0);
	assert_true(it_wait(logged_rate_limited, f, 15000));
	/* Retried: gwsim is asked again after the Retry-After it gave. */
	assert_true(it_gwsim_count(&f->gw, 429) >= 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(deal_starting_later_is_held_until_it_starts,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    update_shortening_the_expiry_ends_held_pushes_expired, it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    update_extending_the_expiry_is_followed_by_queued_pushes, it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(update_new_price_reaches_held_pushes, it_one_setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    update_after_texts_went_out_sends_nothing_more, it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(rate_limited_answer_is_logged_and_retried,
		    it_one_setup, it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
