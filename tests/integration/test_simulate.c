/*
 * test_simulate.c: POST /v1/deals/simulate tells the truth (issue 17 item 6). On one
 * state (a daily cap reached, a campaign cap reached, a state's cap reached, a
 * subscriber in quiet hours until the deal ends, two who may be texted), simulate
 * says how many pushes leave, how many are skipped and why, and the SMS segments with
 * the real short link; then the same deal is published and the gateway's log and the
 * deal's report must say the same. Simulate writes nothing to Redis.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define TOKEN "sim-admin-token-0123456789"
#define SECRET "0123456789abcdef0123456789abcdef"

struct fx {
	redisContext *rc;
	struct it_gwsim gw;
	struct it_notifier nt;
	int port, http;
};

static struct it_resp resp;

static int
setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->gw.proc, SIGTERM, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

/* A subscriber interested in laptops, with consent to SMS; extra: more members. */
static void
sub_line(char *buf, size_t size, const char *id, const char *phone, const char *tz,
    const char *extra)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "{\"id\":\"%s\",\"phone\":\"%s\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"%s\","
	    "\"interests\":{\"categories\":[\"laptop\"]}%s}\n", id, phone, tz, extra);
}

/* Redis' count of writes: rdb_changes_since_last_save of INFO persistence. */
static long long
writes(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "INFO persistence");
	const char *p;
	long long v = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    (p = strstr(r->str, "rdb_changes_since_last_save:")) != NULL)
		v = strtoll(p + strlen("rdb_changes_since_last_save:"), NULL, 10);
	freeReplyObject(r);
	return v;
}

/* The notifiers' formats leases (hash dealpush:formats) as one string into buf. */
static void
formats_leases(redisContext *rc, char *buf, size_t size)
{
	redisReply *r = redisCommand(rc, "HGETALL dealpush:formats");
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING && n < size)
			n += (size_t)snprintf(buf + n, size - n, "%s\n", r->element[i]->str);
	freeReplyObject(r);
}

static long long
num(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItem(o, a);

	if (b != NULL)
		x = cJSON_GetObjectItem(x, b);
	if (!cJSON_IsNumber(x))
		fail_msg("no number %s%s%s", a, b ? "." : "", b ? b : "");
	return (long long)x->valuedouble;
}

/* Field of the deal's report; 0 when absent. */
static long long
report(redisContext *rc, const char *field)
{
	/* Every shard's report:deal:sim-1, summed as the report API sums them. */
	return (long long)it_shards_hget_sum(rc, KEYS_REPORT_DEAL, "sim-1", field);
}

struct settled {
	struct fx *f;
	long long pushes;
};

/* Every push of the deal has its final outcome in the report. */
static int
all_final(void *arg)
{
	struct settled *s = arg;
	redisContext *rc = s->f->rc;

	return report(rc, "sent") + report(rc, "daily_cap") + report(rc, "campaign_cap") +
	    report(rc, "legal_cap") + report(rc, "quiet_hours") >= s->pushes;
}

/* 1 when /healthz says the notifier is ready: its mirror loaded. */
static int
healthy(void *arg)
{
	static struct it_resp r;

	return it_http(*(int *)arg, "GET", "/healthz", NULL, NULL, 0, &r) == 200;
}

static void
simulate_counts_equal_what_publishing_sends(void **state)
{
	struct fx *f = *state;
	char subs[4096] = "", deal[1024], hdr[128], extra[512], lease1[512], key[KEYS_MAX];
	long long now = it_now(), w0 = 0, w1 = -1, texts = 0;
	cJSON *j, *reqs, *o, *sample;
	struct settled st = { f, 0 };
	int i, tries;

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	/* 17:00 UTC on the tests' clock: noon in Chicago and Miami, 02:00 in Tokyo. */
	sub_line(subs, sizeof(subs), "ok-1", "+15125550301", "America/Chicago", "");
	sub_line(subs, sizeof(subs), "ok-2", "+15125550302", "America/Chicago", "");
	sub_line(subs, sizeof(subs), "day-1", "+15125550303", "America/Chicago",
	    ",\"max_per_day\":1");
	sub_line(subs, sizeof(subs), "camp-1", "+15125550304", "America/Chicago", "");
	sub_line(subs, sizeof(subs), "law-1", "+13055550305", "America/New_York", "");
	sub_line(subs, sizeof(subs), "quiet-1", "+81312345678", "Asia/Tokyo", "");
	assert_int_equal(it_import(f->port, subs), 0);
	/* The state: a text today, one on the campaign, three to Florida in 24 h. */
	keys_texts("day-1", key, sizeof(key));
	it_int(f->rc, "ZADD %s %lld before-1", key, now - 600);
	keys_camp("spring", "camp-1", key, sizeof(key));
	it_int(f->rc, "ZADD %s %lld before-2", key, now - 600);
	keys_texts("law-1", key, sizeof(key));
	for (i = 0; i < 3; i++)
		it_int(f->rc, "ZADD %s %lld before-%d", key, now - 3600 * (i + 1), i + 3);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	setenv("DP_TEST_CLICK_SECRET", SECRET, 1);
	snprintf(extra, sizeof(extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "public_url = https://click.example\nclick_secret_env = DP_TEST_CLICK_SECRET\n"
	    "[deliver]\ncampaign_cap = 1\n");
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-sim", extra);
	assert_true(f->http > 0);
	assert_true(it_wait(healthy, &f->http, 10000));

	/* A title that takes the text past one segment with a long link, not a short. */
	snprintf(deal, sizeof(deal), "{\"id\":\"sim-1\",\"title\":\"Refurbished laptop "
	    "with dock\",\"category\":\"laptop\",\"price\":649,\"list_price\":999,"
	    "\"url\":\"https://shop.example/d/sim-1\",\"campaign\":\"spring\","
	    "\"expires_at\":%lld}", now + 600);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", TOKEN);
	/* Read-only: not one write, and no deal. The notifier renews its formats lease
	 * (one write) every second: a call that a renewal fell into is made again. */
	for (tries = 0; tries < 5; tries++) {
		char lease0[512];

		formats_leases(f->rc, lease0, sizeof(lease0));
		w0 = writes(f->rc);
		assert_int_equal(it_http(f->http, "POST", "/v1/deals/simulate", hdr, deal,
		    strlen(deal), &resp), 200);
		w1 = writes(f->rc);
		formats_leases(f->rc, lease1, sizeof(lease1));
		if (strcmp(lease0, lease1) == 0)
			break;
	}
	assert_true(tries < 5);
	assert_int_equal(w1, w0);
	assert_int_equal(it_int(f->rc, "EXISTS deal:sim-1"), 0);
	assert_non_null(j = cJSON_Parse(resp.body));
	assert_int_equal(num(j, "pushes", NULL), 6);
	assert_int_equal(num(j, "outcomes", "sent"), 2);
	assert_int_equal(num(j, "outcomes", "delayed"), 0);
	o = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "outcomes"), "skipped");
	assert_int_equal(num(o, "daily_cap", NULL), 1);
	assert_int_equal(num(o, "campaign_cap", NULL), 1);
	assert_int_equal(num(o, "legal_cap", NULL), 1);
	assert_int_equal(num(o, "quiet_hours", NULL), 1);
	/* The texts carry the short link, as the real ones will. */
	sample = cJSON_GetObjectItem(j, "sample");
	assert_int_equal(cJSON_GetArraySize(sample), 6);
	cJSON_ArrayForEach(o, sample)
		assert_non_null(strstr(cJSON_GetObjectItem(o, "text")->valuestring,
		    "https://click.example/c/"));

	/* Now the same deal on the same state, for real. */
	st.pushes = num(j, "pushes", NULL);
	assert_int_equal(it_publish(f->rc, deal), 0);
	assert_true(it_wait(all_final, &st, 10000));
	it_sleep_ms(300);
	reqs = it_gwsim_requests(&f->gw);
	cJSON_ArrayForEach(o, reqs)
		texts += strstr(cJSON_GetObjectItem(o, "body")->valuestring,
		    "Refurbished laptop with dock") != NULL;
	cJSON_Delete(reqs);
	assert_int_equal(texts, num(j, "outcomes", "sent"));
	assert_int_equal(report(f->rc, "sent"), num(j, "outcomes", "sent"));
	o = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "outcomes"), "skipped");
	assert_int_equal(report(f->rc, "daily_cap"), num(o, "daily_cap", NULL));
	assert_int_equal(report(f->rc, "campaign_cap"), num(o, "campaign_cap", NULL));
	assert_int_equal(report(f->rc, "legal_cap"), num(o, "legal_cap", NULL));
	assert_int_equal(report(f->rc, "quiet_hours"), num(o, "quiet_hours", NULL));
	assert_int_equal(report(f->rc, "sms_segments"), num(j, "segments", "sent"));
	cJSON_Delete(j);
}

/* 1 when the notifier's log (arg) says a load step failed on the wrong type. */
static int
load_failed(void *arg)
{
	return it_log_line(arg, "WRONGTYPE") > 0;
}

/* While the mirror loads, simulate says so (503, Retry-After) instead of counting
 * the subscribers read so far as the whole audience; once loaded it counts everyone.
 * The load is held up where it was seen to race: after every subscriber is read, at
 * the behaviour records (a hash Redis cannot scan until the test puts it right). */
static void
simulate_waits_for_the_mirror(void **state)
{
	struct fx *f = *state;
	char subs[1024] = "", deal[512], hdr[128], key[KEYS_SHARD_MAX];
	long long now = it_now();
	cJSON *j;

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	sub_line(subs, sizeof(subs), "ld-1", "+15125550311", "America/Chicago", "");
	sub_line(subs, sizeof(subs), "ld-2", "+15125550312", "America/Chicago", "");
	sub_line(subs, sizeof(subs), "ld-3", "+15125550313", "America/Chicago", "");
	assert_int_equal(it_import(f->port, subs), 0);
	keys_shard_key(0, KEYS_BEHAVIOUR, key, sizeof(key));
	it_int(f->rc, "DEL %s", key);
	it_int(f->rc, "RPUSH %s not-a-hash", key);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-sim-load",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(f->http > 0);
	snprintf(deal, sizeof(deal), "{\"id\":\"sim-2\",\"title\":\"Laptop\","
	    "\"category\":\"laptop\",\"price\":649,\"url\":\"https://shop.example/d\","
	    "\"expires_at\":%lld}", now + 600);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", TOKEN);
	assert_true(it_wait(load_failed, f->nt.proc.log, 10000));
	assert_int_equal(it_http(f->http, "POST", "/v1/deals/simulate", hdr, deal,
	    strlen(deal), &resp), 503);
	assert_non_null(strstr(resp.body, "subscribers not loaded yet"));
	assert_non_null(strstr(resp.raw, "Retry-After: 1"));
	it_int(f->rc, "DEL %s", key);
	assert_true(it_wait(healthy, &f->http, 10000));
	assert_int_equal(it_http(f->http, "POST", "/v1/deals/simulate", hdr, deal,
	    strlen(deal), &resp), 200);
	assert_non_null(j = cJSON_Parse(resp.body));
	assert_int_equal(num(j, "subscribers", NULL), 3);
	cJSON_Delete(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(simulate_counts_equal_what_publishing_sends,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(simulate_waits_for_the_mirror, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("simulate", tests, NULL, NULL);
}
