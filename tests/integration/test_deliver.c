/*
 * test_deliver.c: delivery promises under load and faults, end to end: two notifiers
 * sharing the groups, a cancel in the middle of a fan-out, a deal expiring while its
 * pushes are being retried.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "timefmt.h"

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt[2];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int i, rv = 0;

	for (i = 0; i < 2; i++)
		if (it_stop_clean(&f->nt[i].proc) < 0)
			rv = -1;
	it_stop(&f->gw.proc, SIGTERM, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

static void
import_n(struct fx *f, int n)
{
	size_t cap = (size_t)n * 256 + 1, len = 0;
	char *s = malloc(cap);
	int i;

	for (i = 0; i < n; i++) {
		snprintf(s + len, cap - len,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"laptop\"]}}\n", i, 1000 + i);
		len += strlen(s + len);
	}
	assert_int_equal(it_import(f->port, s), 0);
	free(s);
}

struct want {
	struct fx *f;
	const char *outcome;
	long long n;
};

static int
outcomes_reach(void *arg)
{
	struct want *w = arg;

	return it_outcomes(w->f->rc, w->outcome) >= w->n;
}

static int
gw_reach(void *arg)
{
	struct want *w = arg;

	return it_gwsim_count(&w->f->gw, 201) >= w->n;
}

/* Number of 201s per number must be at most max; returns the total of 201s. */
static int
check_no_duplicates(struct fx *f, int n, int max)
{
	cJSON *reqs = it_gwsim_requests(&f->gw), *o;
	int *per = calloc((size_t)n, sizeof(*per)), i, total = 0;

	cJSON_ArrayForEach(o, reqs) {
		cJSON *to = cJSON_GetObjectItem(o, "to"), *st = cJSON_GetObjectItem(o, "status");
		if (!cJSON_IsString(to) || !cJSON_IsNumber(st) || st->valueint != 201)
			continue;
		i = (int)strtol(to->valuestring + 8, NULL, 10) - 1000;
		assert_true(i >= 0 && i < n);
		per[i]++;
		total++;
	}
	for (i = 0; i < n; i++)
		assert_true(per[i] <= max);
	free(per);
	cJSON_Delete(reqs);
	return total;
}

/* An integer field of a hash (-1 when absent or not a number). */
static void
two_notifiers_share_the_work_and_send_nothing_twice(void **state)
{
	struct fx *f = *state;
	const int n = 200;
	const char *flags[] = { "--latency-ms", "5", NULL };
	const char *extra = "[ingest]\njob_size = 10\n[deliver]\nbatch = 2\n";
	struct want w = { f, "", 2 * n };

	import_n(f, n);
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-a", extra), 0);
	assert_int_equal(it_notifier_start(&f->nt[1], f->port, f->gw.port, "it-b", extra), 0);
	it_sleep_ms(300);
	assert_int_equal(it_publish(f->rc, it_deal("both-1", "laptop", 600)), 0);
	assert_int_equal(it_publish(f->rc, it_deal("both-2", "laptop", 600)), 0);
	assert_true(it_wait(outcomes_reach, &w, 20000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "sent"), 2 * n);
	assert_int_equal(it_outcomes(f->rc, ""), 2 * n);
	/* One text per number per deal, never more. */
	assert_int_equal(check_no_duplicates(f, n, 2), 2 * n);
	/* Both processes did part of the work. */
	assert_true(it_log_line(f->nt[0].proc.log, "outcome=sent") > 0);
	assert_true(it_log_line(f->nt[1].proc.log, "outcome=sent") > 0);
}

static void
cancel_mid_fanout_stops_every_push_not_yet_sent(void **state)
{
	struct fx *f = *state;
	const int n = 200;
	const char *flags[] = { "--latency-ms", "20", NULL };
	const char *extra = "[deliver]\nmax_in_flight = 4\n[ingest]\njob_size = 20\n";
	struct want some = { f, NULL, 20 }, all = { f, "", n };
	long long sent, cancelled;
	int at_gateway;

	import_n(f, n);
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-a", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("cancel-me", "laptop", 600)), 0);
	assert_true(it_wait(gw_reach, &some, 10000));
	assert_int_equal(it_publish(f->rc, "{\"id\": \"cancel-me\", \"cancel\": true}"), 0);
	assert_true(it_wait(outcomes_reach, &all, 10000));
	it_sleep_ms(300);
	sent = it_outcomes(f->rc, "sent");
	cancelled = it_outcomes(f->rc, "cancelled");
	at_gateway = check_no_duplicates(f, n, 1);
	assert_true(cancelled > n / 2);
	assert_int_equal(sent + cancelled, n);
	/* Nothing reached the gateway that is not recorded as sent. */
	assert_int_equal(at_gateway, sent);
	/* The cancel reached every shard's copy of the deal. */
	assert_int_equal(it_deal_copies(f->rc, "cancel-me", "cancelled"), (int)keys_shards());
}

static void
deal_expiring_mid_retry_is_never_sent_after_expiry(void **state)
{
	struct fx *f = *state;
	/* Two recipients: the breaker opens after five straight failures, so more than
	 * two requests means the pushes really were retried. */
	const int n = 2;
	const char *flags[] = { "--fail-rate", "1", NULL };
	struct want all = { f, "expired", n };
	cJSON *reqs, *o;
	long long expires_ms;
	char deal[1024];

	import_n(f, n);
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-a", NULL), 0);
	snprintf(deal, sizeof(deal), "%s", it_deal("short", "laptop", 3));
	/* gwsim stamps requests with the real clock: expiry in real time. */
	expires_ms = (it_now() + 3 - it_clock_offset()) * 1000;
	assert_int_equal(it_publish(f->rc, deal), 0);
	assert_true(it_wait(outcomes_reach, &all, 10000));
	assert_int_equal(it_outcomes(f->rc, ""), n);
	/* Retried (more requests than recipients), all answered 500, none after expiry. */
	assert_true(it_gwsim_count(&f->gw, 500) > n);
	reqs = it_gwsim_requests(&f->gw);
	cJSON_ArrayForEach(o, reqs) {
		cJSON *ts = cJSON_GetObjectItem(o, "ts_ms");
		assert_true(cJSON_IsNumber(ts));
		assert_true((long long)ts->valuedouble < expires_ms);
	}
	cJSON_Delete(reqs);
}


/* A deal JSON expiring at the given epoch second. */
static const char *
deal_until(const char *id, long long expires_at)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "{\"id\": \"%s\", \"title\": \"Deal %s\", "
	    "\"category\": \"laptop\", \"price\": 10, \"url\": \"https://x.example/%s\", "
	    "\"expires_at\": %lld}", id, id, id, expires_at);
	return buf;
}

/* The notifier's clock at a given UTC instant (notifier.clock_offset_s). */
static void
start_at(struct fx *f, int k, long long wall, const char *extra)
{
	char conf[512];

	snprintf(conf, sizeof(conf), "[notifier]\nclock_offset_s = %lld\n%s",
	    wall - (long long)time(NULL), extra ? extra : "");
	assert_int_equal(it_notifier_start(&f->nt[k], f->port, f->gw.port, "it-q", conf), 0);
}

/* Pushes waiting for a window, in every shard's delayed. */
static long long
delayed_n(redisContext *rc)
{
	return it_shards_sum_key(rc, "ZCARD %s", KEYS_DELAYED);
}

static void
quiet_hours_defer_until_morning_even_across_a_restart(void **state)
{
	struct fx *f = *state;
	/* 22:30 CST on a Monday; 08:00 CST next morning is 14:00Z. */
	long long night = it_now() - it_now() % 86400 + 86400 + 4 * 3600 + 1800;
	long long morning = night - 1800 + 10 * 3600;
	struct want sent = { f, "sent", 1 }, skipped = { f, "quiet_hours", 1 };
	char key[KEYS_MAX];
	redisReply *r;

	import_n(f, 2);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_at(f, 0, night, NULL);
	/* s-0's deal outlives the night; the second one ends before 08:00. */
	assert_int_equal(it_publish(f->rc, deal_until("overnight", morning + 3600)), 0);
	assert_int_equal(it_publish(f->rc, deal_until("too-short", morning - 3600)), 0);
	assert_true(it_wait(outcomes_reach, &skipped, 10000));
	it_sleep_ms(500);
	assert_int_equal(delayed_n(f->rc), 2);  /* s-0 and s-1 of "overnight" */
	assert_int_equal(it_outcomes(f->rc, "quiet_hours"), 2);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);
	r = redisCommand(f->rc, "HGET %s s-0:sms",
	    it_key_of(KEYS_PUSH, "s-0", "overnight", key, sizeof(key)));
	assert_string_equal(r->str, "delayed");
	freeReplyObject(r);

	/* Restart in the morning: the deferred pushes go out, once each. */
	assert_int_equal(it_stop(&f->nt[0].proc, SIGTERM, 5000), 0);
	start_at(f, 0, morning + 60, NULL);
	sent.n = 2;
	assert_true(it_wait(outcomes_reach, &sent, 10000));
	it_sleep_ms(1500);
	assert_int_equal(delayed_n(f->rc), 0);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 2);
	assert_int_equal(check_no_duplicates(f, 2, 1), 2);
}

static void
daily_cap_counts_per_local_day_across_deals(void **state)
{
	struct fx *f = *state;
	long long noon = it_now(); /* 11:00 CST */
	char line[512];
	struct want capped = { f, "daily_cap", 1 }, sent = { f, "sent", 3 };

	snprintf(line, sizeof(line),
	    "{\"id\":\"capped\",\"phone\":\"+15125551000\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"max_per_day\":2,\"interests\":{\"categories\":[\"laptop\"]}}\n");
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_at(f, 0, noon, NULL);
	assert_int_equal(it_publish(f->rc, deal_until("cap-1", noon + 2 * 86400)), 0);
	assert_int_equal(it_publish(f->rc, deal_until("cap-2", noon + 2 * 86400)), 0);
	assert_int_equal(it_publish(f->rc, deal_until("cap-3", noon + 2 * 86400)), 0);
	assert_true(it_wait(outcomes_reach, &capped, 10000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "sent"), 2);
	assert_int_equal(it_outcomes(f->rc, "daily_cap"), 1);

	/* The next local day the cap starts again. */
	assert_int_equal(it_stop(&f->nt[0].proc, SIGTERM, 5000), 0);
	start_at(f, 0, noon + 86400, NULL);
	assert_int_equal(it_publish(f->rc, deal_until("cap-4", noon + 2 * 86400)), 0);
	assert_true(it_wait(outcomes_reach, &sent, 10000));
	assert_int_equal(it_gwsim_count(&f->gw, 201), 3);
}

static void
code_pool_of_ten_reaches_ten_and_the_rest_are_sold_out(void **state)
{
	struct fx *f = *state;
	const int n = 50;
	struct want done = { f, "", n };
	char deal[512];
	cJSON *reqs, *o;
	int seen[10] = { 0 }, i, got = 0;

	import_n(f, n);
	for (i = 0; i < 10; i++)
		freeReplyObject(redisCommand(f->rc, "SADD codes:first10 CODE-%02d", i));
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-a", NULL), 0);
	snprintf(deal, sizeof(deal), "{\"id\": \"first10\", \"title\": \"First ten\", "
	    "\"category\": \"laptop\", \"url\": \"https://x.example/f\", "
	    "\"code_pool\": \"codes:first10\", \"expires_at\": %lld}", it_now() + 600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	assert_true(it_wait(outcomes_reach, &done, 10000));
	assert_int_equal(it_outcomes(f->rc, "sent"), 10);
	assert_int_equal(it_outcomes(f->rc, "sold_out"), n - 10);
	assert_int_equal(it_int(f->rc, "SCARD codes:first10"), 0);
	/* A shard that met the empty pool says so in its copy of the deal. */
	assert_true(it_deal_copies(f->rc, "first10", "sold_out") >= 1);
	/* Each of the ten got a different code, in its text. */
	reqs = it_gwsim_requests(&f->gw);
	cJSON_ArrayForEach(o, reqs) {
		const char *body = cJSON_GetObjectItem(o, "body")->valuestring;
		const char *c = strstr(body, "CODE-");

		assert_non_null(c);
		i = (int)strtol(c + 5, NULL, 10);
		assert_true(i >= 0 && i < 10);
		assert_int_equal(seen[i], 0);
		seen[i] = 1;
		got++;
	}
	cJSON_Delete(reqs);
	assert_int_equal(got, 10);
}

/* A push deferred for quiet hours on a "first N" deal takes its code from the pool
 * when its window opens, as an undeferred one would: its text carries a code, the
 * pool shrinks, and an empty pool still means sold out. */
static void
deferred_push_of_a_code_pool_deal_takes_its_code_in_the_morning(void **state)
{
	struct fx *f = *state;
	long long night = it_now() - it_now() % 86400 + 86400 + 4 * 3600 + 1800;
	long long morning = night - 1800 + 10 * 3600;
	struct want sent = { f, "sent", 1 }, sold = { f, "sold_out", 1 };
	char deal[512];
	cJSON *reqs, *o;
	int coded = 0;

	import_n(f, 2);
	freeReplyObject(redisCommand(f->rc, "SADD codes:night NIGHT-1"));
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_at(f, 0, night, NULL);
	snprintf(deal, sizeof(deal), "{\"id\": \"night\", \"title\": \"Night\", "
	    "\"category\": \"laptop\", \"url\": \"https://x.example/n\", "
	    "\"code_pool\": \"codes:night\", \"expires_at\": %lld}", morning + 3600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	for (int i = 0; i < 200 && delayed_n(f->rc) < 2; i++)
		it_sleep_ms(50);
	assert_int_equal(delayed_n(f->rc), 2);
	assert_int_equal(it_int(f->rc, "SCARD codes:night"), 1);

	assert_int_equal(it_stop(&f->nt[0].proc, SIGTERM, 5000), 0);
	start_at(f, 0, morning + 60, NULL);
	assert_true(it_wait(outcomes_reach, &sent, 10000));
	assert_true(it_wait(outcomes_reach, &sold, 10000));
	it_sleep_ms(500);
	assert_int_equal(it_outcomes(f->rc, "sent"), 1);
	assert_int_equal(it_int(f->rc, "SCARD codes:night"), 0);
	reqs = it_gwsim_requests(&f->gw);
	cJSON_ArrayForEach(o, reqs)
		coded += strstr(cJSON_GetObjectItem(o, "body")->valuestring, "NIGHT-1") != NULL;
	cJSON_Delete(reqs);
	assert_int_equal(coded, 1);
}

/* Florida's 3 texts in 24 h hold across every deal of the campaign (and beyond it:
 * tests/integration/test_law.c): the fourth ends legal_cap. */
static void
campaign_cap_stops_the_fourth_push_for_a_florida_number(void **state)
{
	struct fx *f = *state;
	char line[512], deal[512];
	struct want capped = { f, "legal_cap", 1 };
	int i;

	snprintf(line, sizeof(line),
	    "{\"id\":\"fl\",\"phone\":\"+13055551000\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/New_York\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n");
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-a", NULL), 0);
	for (i = 0; i < 4; i++) {
		snprintf(deal, sizeof(deal), "{\"id\": \"bf-%d\", \"title\": \"BF %d\", "
		    "\"category\": \"laptop\", \"url\": \"https://x.example/%d\", "
		    "\"campaign\": \"black-friday\", \"expires_at\": %lld}", i, i, i,
		    it_now() + 600);
		assert_int_equal(it_publish(f->rc, deal), 0);
	}
	assert_true(it_wait(outcomes_reach, &capped, 10000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "sent"), 3);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 3);
}

static void
jobs_of_a_dead_consumer_are_claimed_and_finished_by_another(void **state)
{
	struct fx *f = *state;
	const int n = 200;
	const char *flags[] = { "--latency-ms", "20", NULL };
	/* The gateway's timeout first (still in its section): claim_idle_ms must be at
	 * least three of them. */
	const char *extra = "timeout_ms = 200\n[deliver]\nmax_in_flight = 4\n"
	    "claim_idle_ms = 600\n"
	    "[ingest]\njob_size = 20\n";
	struct want some = { f, NULL, 30 }, all = { f, "", n };
	long long sent, unknown;

	import_n(f, n);
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-dead", extra),
	    0);
	assert_int_equal(it_publish(f->rc, it_deal("orphan", "laptop", 600)), 0);
	assert_true(it_wait(gw_reach, &some, 10000));
	it_stop(&f->nt[0].proc, SIGKILL, 2000);   /* it-dead never comes back */
	assert_int_equal(it_notifier_start(&f->nt[1], f->port, f->gw.port, "it-heir", extra),
	    0);
	assert_true(it_wait(outcomes_reach, &all, 20000));
	it_sleep_ms(300);
	sent = it_outcomes(f->rc, "sent");
	unknown = it_outcomes(f->rc, "unknown");
	assert_int_equal(it_outcomes(f->rc, ""), n);
	assert_int_equal(sent + unknown, n);
	assert_true(unknown <= 4);   /* at most what was in flight at the kill */
	assert_true(check_no_duplicates(f, n, 1) >= sent);
	assert_true(it_shards_hget_sum(f->rc, KEYS_DEAL, "orphan", "jobs") > 0);
	/* "pushes", or a shard's "{sK}pushes" */
	assert_true(it_log_line(f->nt[1].proc.log, "event=entries_claimed stream=") > 0 &&
	    it_log_line(f->nt[1].proc.log, "pushes count=") > 0);
}

static void
dst_fall_back_night_defers_to_eight_standard_time(void **state)
{
	struct fx *f = *state;
	int64_t night = 0, eight = 0, until = 0;
	struct want sent = { f, "sent", 1 };
	redisReply *r;

	/* 01:30 CDT, the first of the two 01:30s of 2026-11-01 in Chicago. */
	assert_int_equal(time_parse_rfc3339("2026-11-01T06:30:00Z", &night), 0);
	/* 08:00 CST: 14:00Z, an hour later in UTC than the morning before. */
	assert_int_equal(time_parse_rfc3339("2026-11-01T14:00:00Z", &eight), 0);
	assert_int_equal(time_parse_rfc3339("2026-11-01T20:00:00Z", &until), 0);
	import_n(f, 1);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_at(f, 0, night, NULL);
	assert_int_equal(it_publish(f->rc, deal_until("dst", until)), 0);
	it_sleep_ms(1500);
	r = it_shards_zrange(f->rc, KEYS_DELAYED);
	assert_int_equal(r->elements, 2);
	assert_int_equal(strtoll(r->element[1]->str, NULL, 10), eight);
	it_shards_reply_free(r);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);

	/* One minute before 08:00 CST nothing moves; at 08:00 it goes. */
	assert_int_equal(it_stop(&f->nt[0].proc, SIGTERM, 5000), 0);
	start_at(f, 0, eight - 60, NULL);
	it_sleep_ms(1500);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);
	assert_int_equal(it_stop(&f->nt[0].proc, SIGTERM, 5000), 0);
	start_at(f, 0, eight, NULL);
	assert_true(it_wait(outcomes_reach, &sent, 10000));
	assert_int_equal(it_gwsim_count(&f->gw, 201), 1);
}

static void
deferred_pushes_end_cancelled_or_no_subscriber_when_released(void **state)
{
	struct fx *f = *state;
	long long night = it_now() - it_now() % 86400 + 86400 + 4 * 3600 + 1800;
	long long morning = night - 1800 + 10 * 3600;
	struct want done = { f, "", 3 };
	char bin[512], addr[64], out[1024];
	const char *argv[] = { bin, "--redis", addr, "subscribers", "delete", "s-1", NULL };
	char ekey[KEYS_SHARD_MAX], ckey[KEYS_SHARD_MAX], skey[KEYS_SHARD_MAX];
	long long epoch;

	import_n(f, 2);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_at(f, 0, night, NULL);
	assert_int_equal(it_publish(f->rc, deal_until("keep", morning + 3600)), 0);
	assert_int_equal(it_publish(f->rc, deal_until("stop", morning + 3600)), 0);
	it_sleep_ms(1500);
	assert_int_equal(delayed_n(f->rc), 4);
	/* Overnight: one deal is cancelled, one subscriber leaves. */
	assert_int_equal(it_publish(f->rc, "{\"id\": \"stop\", \"cancel\": true}"), 0);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	keys_shard_key(keys_shard_of("s-1"), KEYS_CONSENT_EPOCH, ekey, sizeof(ekey));
	keys_consent(keys_shard_of("s-1"), CH_SMS, ckey, sizeof(ckey));
	keys_shard_key(keys_shard_of("s-1"), KEYS_SUBSCRIBERS, skey, sizeof(skey));
	epoch = it_int(f->rc, "INCRBY %s 0", ekey);
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	/* The consent it removed moves the epoch, as the API's delete does: send.lua
	 * then checks consent again for a push admitted before the delete. */
	assert_true(it_int(f->rc, "INCRBY %s 0", ekey) > epoch);
	assert_int_equal(it_int(f->rc, "HEXISTS %s s-1", ckey), 0);
	assert_int_equal(it_int(f->rc, "HEXISTS %s s-1", skey), 0);
	it_sleep_ms(500);
	assert_int_equal(it_stop(&f->nt[0].proc, SIGTERM, 5000), 0);

	start_at(f, 0, morning + 60, NULL);
	done.n = 4;
	assert_true(it_wait(outcomes_reach, &done, 10000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "cancelled"), 2);   /* both of "stop" */
	assert_int_equal(it_outcomes(f->rc, "no_subscriber"), 1); /* s-1 of "keep" */
	assert_int_equal(it_outcomes(f->rc, "sent"), 1);        /* s-0 of "keep" */
	assert_int_equal(it_gwsim_count(&f->gw, 201), 1);
}

static void
webhook_pushes_in_flight_at_a_kill_are_resent_with_the_same_key(void **state)
{
	struct fx *f = *state;
	const int n = 40;
	const char *flags[] = { "--latency-ms", "300", NULL };
	char extra[1024];
	struct want all = { f, "", n };
	cJSON *reqs, *o;
	int dup_keys = 0, i, j, total;
	char **keys;

	import_n(f, n);
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	/* A webhook serving the sms channel ahead of the twilio gateway: the first
	 * line lands in the harness's [gateway twilio] section, written last. */
	snprintf(extra, sizeof(extra),
	    "priority = 5\n[deliver]\nmax_in_flight = 8\n"
	    "[gateway hook]\nkind = webhook\nchannel = sms\npriority = 0\n"
	    "url = http://127.0.0.1:%d/webhook\nsecret_env = DP_TEST_HOOK_SECRET\n",
	    f->gw.port);
	setenv("DP_TEST_HOOK_SECRET", "test-webhook-secret", 1);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-w", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("hooked", "laptop", 600)), 0);
	/* Kill while the first requests are held 300 ms at the gateway. */
	it_sleep_ms(600);
	it_stop(&f->nt[0].proc, SIGKILL, 2000);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-w", extra), 0);
	assert_true(it_wait(outcomes_reach, &all, 20000));
	it_sleep_ms(500);
	/* Nothing unknown: the gateway is idempotent, so in-flight pushes went again. */
	assert_int_equal(it_outcomes(f->rc, "sent"), n);
	assert_int_equal(it_outcomes(f->rc, "unknown"), 0);
	reqs = it_gwsim_requests(&f->gw);
	total = cJSON_GetArraySize(reqs);
	keys = calloc((size_t)total, sizeof(*keys));
	i = 0;
	cJSON_ArrayForEach(o, reqs) {
		cJSON *k = cJSON_GetObjectItem(o, "idempotency_key");
		keys[i++] = cJSON_IsString(k) ? k->valuestring : NULL;
	}
	for (i = 0; i < total; i++)
		for (j = i + 1; j < total; j++)
			if (keys[i] != NULL && keys[j] != NULL && strcmp(keys[i], keys[j]) == 0)
				dup_keys++;
	/* Some pushes were sent twice, each time with the same key (so the receiver
	 * dedupes), and every key names a push of this deal. */
	assert_true(dup_keys > 0);
	assert_true(total > n);
	for (i = 0; i < total; i++)
		assert_true(keys[i] != NULL && strstr(keys[i], ":s-") != NULL);
	free(keys);
	cJSON_Delete(reqs);
}

/*
 * Out of memory where a job is built and where an admitted push is queued (fault
 * points, DP_FAULTS): the job is left pending and read again, the push is admitted
 * again after a backoff. Every push is sent exactly once; none is acked unsent.
 */
static void
out_of_memory_mid_fanout_leaves_work_pending_never_acked_unsent(void **state)
{
	struct fx *f = *state;
	const int n = 200;
	const char *extra = "[ingest]\njob_size = 10\n";
	struct want all = { f, "sent", n };

	import_n(f, n);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_FAULTS", "deliver.job%3,deliver.heap%7", 1);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-oom", extra),
	    0);
	unsetenv("DP_FAULTS");
	assert_int_equal(it_publish(f->rc, it_deal("oom", "laptop", 600)), 0);
	assert_true(it_wait(outcomes_reach, &all, 30000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, ""), n);
	assert_int_equal(check_no_duplicates(f, n, 1), n);
	assert_true(it_log_line(f->nt[0].proc.log, "event=job_failed") > 0);
	assert_true(it_log_line(f->nt[0].proc.log, "err=\"out of memory\"") > 0);
	assert_int_equal((long long)it_shards_hget_sum(f->rc, KEYS_DEAL, "oom", "jobs"),
	    it_jobs_for("s-", n, 10));
}

/* Entries on every shard's "pushes". */
static long long
pushes_len(struct fx *f)
{
	return it_shards_sum_key(f->rc, "XLEN %s", KEYS_PUSHES);
}

/* The consumer's jobs are all acked: a job is acked right after its outcomes are
 * recorded, by a command of its own, so a test that saw the outcomes waits for it. */
struct acked_want {
	struct fx *f;
	const char *consumer;
};

static int
jobs_acked(void *arg)
{
	const struct acked_want *w = arg;

	return it_shards_jobs_pending(w->f->rc, w->consumer) == 0;
}

static int
pushes_empty(void *arg)
{
	struct fx *f = arg;

	return pushes_len(f) == 0;
}

/* 1 when entry id is on shard 0's "pushes" (the stream these tests write to). */
static int
pushes_has(struct fx *f, const char *id)
{
	char key[KEYS_SHARD_MAX];
	redisReply *r;

	keys_shard_key(0, KEYS_PUSHES, key, sizeof(key));
	r = redisCommand(f->rc, "XRANGE %s %s %s", key, id, id);
	int has = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1;

	freeReplyObject(r);
	return has;
}

/* The jobs of "s-0" ... "s-(n-1)" planned in one chunk of job_size that go to shard
 * 0's stream: those of shard 0's subscribers (every one on one Redis). */
static long long
shard0_jobs(int n, int job_size)
{
	int i, in0 = 0;
	char id[32];

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "s-%d", i);
		in0 += keys_shard_of(id) == 0;
	}
	return (in0 + job_size - 1) / job_size;
}

/*
 * Bounded life: the notifier trims "pushes" below the oldest entry any group still
 * needs, once a second. An entry another consumer holds pending survives, and so
 * does everything after it; what is older and acked goes; once it is acked too the
 * stream empties. Every key the delivered deal left behind expires.
 */
static void
pushes_are_trimmed_never_past_a_pending_entry_and_deal_keys_expire(void **state)
{
	struct fx *f = *state;
	const int n = 30;
	const char *extra = "[ingest]\njob_size = 10\n[deliver]\nclaim_idle_ms = 600000\n";
	struct want all = { f, "sent", n };
	redisReply *r;
	char held[64], old[64], rkey[KEYS_MAX], p0[KEYS_SHARD_MAX];
	size_t i;

	import_n(f, n);
	/* Another consumer, "ghost", holds one entry pending on shard 0's stream; an
	 * older one it acked. */
	keys_shard_key(0, KEYS_PUSHES, p0, sizeof(p0));
	it_int(f->rc, "XGROUP CREATE %s deliver $ MKSTREAM", p0);
	r = redisCommand(f->rc, "XADD %s * deal none entry 1-0 exp 1 r x", p0);
	snprintf(old, sizeof(old), "%s", r->str);
	freeReplyObject(r);
	r = redisCommand(f->rc, "XADD %s * deal none entry 1-0 exp 1 r x", p0);
	snprintf(held, sizeof(held), "%s", r->str);
	freeReplyObject(r);
	r = redisCommand(f->rc, "XREADGROUP GROUP deliver ghost COUNT 10 STREAMS %s >", p0);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
	freeReplyObject(r);
	assert_int_equal(it_int(f->rc, "XACK %s deliver %s", p0, old), 1);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-trim", extra),
	    0);
	assert_int_equal(it_publish(f->rc, it_deal("trim", "laptop", 600)), 0);
	assert_true(it_wait(outcomes_reach, &all, 20000));
	/* A job is acked right after its outcomes are recorded, by a command of its own. */
	{
		struct acked_want aw = { f, "it-trim" };

		assert_true(it_wait(jobs_acked, &aw, 5000));
	}
	it_sleep_ms(2500);   /* two trims at least */
	assert_false(pushes_has(f, old));
	assert_true(pushes_has(f, held));
	/* The deal's jobs on that stream, newer than the held entry, are kept with it;
	 * every other shard's stream (sharded layout) is trimmed empty. */
	assert_int_equal(it_int(f->rc, "XLEN %s", p0), 1 + shard0_jobs(n, 10));
	assert_int_equal(pushes_len(f), 1 + shard0_jobs(n, 10));
	/* Once the ghost acks, nothing is needed any more. */
	assert_int_equal(it_int(f->rc, "XACK %s deliver %s", p0, held), 1);
	assert_true(it_wait(pushes_empty, f, 5000));

	/* Every key named after the deal, and its push ids' deal entry, expires. */
	r = redisCommand(f->rc, "KEYS *trim*");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 5);
	for (i = 0; i < r->elements; i++) {
		long long ttl = it_int(f->rc, "TTL %s", r->element[i]->str);

		if (ttl <= 0)
			print_message("%s has no TTL\n", r->element[i]->str);
		assert_true(ttl > 0);
	}
	freeReplyObject(r);
	{
		char dk[KEYS_MAX], ek[KEYS_MAX];

		r = redisCommand(f->rc, "HGET %s entry", it_deal_key("trim", dk, sizeof(dk)));
		assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
		keys_per(0, KEYS_DEALENTRY, r->str, ek, sizeof(ek));
		assert_true(it_int(f->rc, "TTL %s", ek) > 0);
		freeReplyObject(r);
	}

	/* A deal planned for nobody never reaches admit: its funnel expires too. */
	assert_int_equal(it_publish(f->rc, it_deal("nobody", "no-such-category", 600)), 0);
	/* plan.lua's counts of a plan are shard 0's (docs/sharding.md, step 2). */
	keys_per(0, KEYS_REPORT_DEAL, "nobody", rkey, sizeof(rkey));
	for (i = 0; i < 100 && it_int(f->rc, "EXISTS %s", rkey) != 1; i++)
		it_sleep_ms(50);
	assert_int_equal(it_int(f->rc, "EXISTS %s", rkey), 1);
	assert_true(it_int(f->rc, "TTL %s", rkey) > 0);
}

/*
 * A group that has not read the jobs yet (a second service, or one catching up) keeps
 * them all on "pushes", acked by "deliver" or not; once it is gone they go.
 */
static void
pushes_keeps_what_another_group_has_not_read(void **state)
{
	struct fx *f = *state;
	const int n = 30;
	const char *extra = "[ingest]\njob_size = 10\n";
	struct want all = { f, "sent", n };
	char key[KEYS_SHARD_MAX];
	uint32_t k;

	import_n(f, n);
	for (k = 0; k < keys_shards(); k++) {
		keys_shard_key(k, KEYS_PUSHES, key, sizeof(key));
		it_int(f->rc, "XGROUP CREATE %s late $ MKSTREAM", key);
	}
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt[0], f->port, f->gw.port, "it-late", extra),
	    0);
	assert_int_equal(it_publish(f->rc, it_deal("late", "laptop", 600)), 0);
	assert_true(it_wait(outcomes_reach, &all, 20000));
	{
		struct acked_want aw = { f, "it-late" };

		assert_true(it_wait(jobs_acked, &aw, 5000));
	}
	it_sleep_ms(2500);   /* two trims at least */
	assert_int_equal(pushes_len(f), it_jobs_for("s-", n, 10));
	for (k = 0; k < keys_shards(); k++) {
		keys_shard_key(k, KEYS_PUSHES, key, sizeof(key));
		assert_int_equal(it_int(f->rc, "XGROUP DESTROY %s late", key), 1);
	}
	assert_true(it_wait(pushes_empty, f, 5000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    two_notifiers_share_the_work_and_send_nothing_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    cancel_mid_fanout_stops_every_push_not_yet_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    deal_expiring_mid_retry_is_never_sent_after_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    quiet_hours_defer_until_morning_even_across_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    daily_cap_counts_per_local_day_across_deals, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    dst_fall_back_night_defers_to_eight_standard_time, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    code_pool_of_ten_reaches_ten_and_the_rest_are_sold_out, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    deferred_push_of_a_code_pool_deal_takes_its_code_in_the_morning, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    campaign_cap_stops_the_fourth_push_for_a_florida_number, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    jobs_of_a_dead_consumer_are_claimed_and_finished_by_another, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    deferred_pushes_end_cancelled_or_no_subscriber_when_released, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    webhook_pushes_in_flight_at_a_kill_are_resent_with_the_same_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    out_of_memory_mid_fanout_leaves_work_pending_never_acked_unsent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    pushes_are_trimmed_never_past_a_pending_entry_and_deal_keys_expire, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    pushes_keeps_what_another_group_has_not_read, setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("deliver", tests, NULL, NULL);
}
