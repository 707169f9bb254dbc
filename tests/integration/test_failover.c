/*
 * test_failover.c: gateways failing and recovering, end to end: a gateway that is
 * down fails over to the next one and gets its traffic back once it recovers; a 429
 * storm is waited out with Retry-After honoured; a slow gateway on one channel does
 * not slow the other channel.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "itest.h"

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim a, b;
	struct it_notifier nt;
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
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->a.proc, SIGTERM, 2000);
	it_stop(&f->b.proc, SIGTERM, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

/* n subscribers s-0.. on +1512555(1000+i); dm_x "9000+i" when with_dm. */
static void
import_n(struct fx *f, int n, int with_dm)
{
	size_t cap = (size_t)n * 320 + 1, len = 0;
	char *s = malloc(cap);
	int i;

	for (i = 0; i < n; i++) {
		snprintf(s + len, cap - len,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512555%04d\",%s\"channels\":[\"sms\"%s],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"%s},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"laptop\"]}}\n", i, 1000 + i,
		    with_dm ? "\"dm\":{\"x\":\"9000\"}," : "", with_dm ? ",\"dm\"" : "",
		    with_dm ? ",\"dm\":\"2026-01-02T10:00:00Z\"" : "");
		len += strlen(s + len);
	}
	assert_int_equal(it_import(f->port, s), 0);
	free(s);
}

struct want {
	struct fx *f;
	const char *outcome;
	long long n;
	const char *channel;       /* NULL = any */
};

/* pushes:log entries with this outcome on this channel. */
static long long
outcomes_on(redisContext *rc, const char *outcome, const char *channel)
{
	redisReply *r = redisCommand(rc, "XRANGE pushes:log - +");
	long long n = 0;
	size_t i, j;

	for (i = 0; r != NULL && i < r->elements; i++) {
		redisReply *fl = r->element[i]->element[1];
		int o = 0, c = 0;

		for (j = 0; j + 1 < fl->elements; j += 2) {
			if (strcmp(fl->element[j]->str, "outcome") == 0)
				o = strcmp(fl->element[j + 1]->str, outcome) == 0;
			if (strcmp(fl->element[j]->str, "channel") == 0)
				c = strcmp(fl->element[j + 1]->str, channel) == 0;
		}
		n += o && c;
	}
	freeReplyObject(r);
	return n;
}

static int
channel_reach(void *arg)
{
	struct want *w = arg;

	return outcomes_on(w->f->rc, w->outcome, w->channel) >= w->n;
}

static int
outcomes_reach(void *arg)
{
	struct want *w = arg;

	return it_outcomes(w->f->rc, w->outcome) >= w->n;
}

/* 201s at gateway g for deal (push ids name the deal's entry, so count by body). */
static int
accepted_with(const struct it_gwsim *g, const char *text)
{
	cJSON *reqs = it_gwsim_requests(g), *o;
	int n = 0;

	cJSON_ArrayForEach(o, reqs) {
		cJSON *st = cJSON_GetObjectItem(o, "status"), *b = cJSON_GetObjectItem(o, "body");
		if (cJSON_IsNumber(st) && st->valueint == 201 && cJSON_IsString(b) &&
		    strstr(b->valuestring, text) != NULL)
			n++;
	}
	cJSON_Delete(reqs);
	return n;
}

static void
down_gateway_fails_over_and_gets_traffic_back_when_it_recovers(void **state)
{
	struct fx *f = *state;
	const int n = 30;
	char extra[1024];
	struct want w = { f, "sent", n, NULL };

	import_n(f, n, 0);
	assert_int_equal(it_gwsim_start(&f->a, NULL), 0);
	assert_int_equal(it_gwsim_start(&f->b, NULL), 0);
	assert_int_equal(it_http_post(f->a.port, "/_sim/faults", "{\"down\": true}"), 200);
	snprintf(extra, sizeof(extra),
	    "[deliver]\nbreaker_failures = 3\nbreaker_open_ms = 300\nmax_in_flight = 4\n"
	    "[gateway backup]\nkind = twilio\nchannel = sms\npriority = 1\n"
	    "base_url = http://127.0.0.1:%d\naccount_sid = " IT_ACCOUNT_SID "\n"
	    "from = " IT_FROM "\nsecret_env = DP_TEST_TWILIO_TOKEN\n", f->b.port);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->a.port, "it-f", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("first", "laptop", 600)), 0);
	assert_true(it_wait(outcomes_reach, &w, 15000));
	/* The primary refused a few (its breaker opened), the backup took the rest. */
	assert_true(it_gwsim_count(&f->a, 503) >= 3);
	assert_int_equal(accepted_with(&f->a, "Deal first"), 0);
	assert_int_equal(accepted_with(&f->b, "Deal first"), n);

	/* Recovery: after the cool-down a probe succeeds and traffic returns. */
	assert_int_equal(it_http_post(f->a.port, "/_sim/faults", "{\"down\": false}"), 200);
	it_sleep_ms(700);
	w.n = 2 * n;
	assert_int_equal(it_publish(f->rc, it_deal("second", "laptop", 600)), 0);
	assert_true(it_wait(outcomes_reach, &w, 15000));
	/* Requests reserved while the probe was out still went to the backup. */
	assert_true(accepted_with(&f->a, "Deal second") >= n / 2);
	assert_int_equal(accepted_with(&f->a, "Deal second") +
	    accepted_with(&f->b, "Deal second"), n);
}

static void
storm_of_429s_is_waited_out_with_retry_after(void **state)
{
	struct fx *f = *state;
	const int n = 5;
	char faults[512];
	struct want w = { f, "sent", n, NULL };
	cJSON *reqs, *o;
	double last_429 = 0;
	int saw_429 = 0, n429 = 0, port;
	char want[128];
	static char metrics[65536];

	import_n(f, n, 0);
	assert_int_equal(it_gwsim_start(&f->a, NULL), 0);
	snprintf(faults, sizeof(faults), "{\"answers\": {\"+15125551000\": 429, "
	    "\"+15125551001\": 429, \"+15125551002\": 429, \"+15125551003\": 429, "
	    "\"+15125551004\": 429}}");
	assert_int_equal(it_http_post(f->a.port, "/_sim/faults", faults), 200);
	port = it_notifier_start_http(&f->nt, f->port, f->a.port, "it-f", "");
	assert_true(port > 0);
	assert_int_equal(it_publish(f->rc, it_deal("storm", "laptop", 600)), 0);
	it_sleep_ms(1500);
	assert_int_equal(it_outcomes(f->rc, "sent"), 0);
	assert_int_equal(it_http_post(f->a.port, "/_sim/faults", "{\"answers\": {}}"), 200);
	assert_true(it_wait(outcomes_reach, &w, 10000));
	/* Retry-After: 1 is honoured: no request within a second of a 429. */
	reqs = it_gwsim_requests(&f->a);
	cJSON_ArrayForEach(o, reqs) {
		double ts = cJSON_GetObjectItem(o, "ts_ms")->valuedouble;
		int st = cJSON_GetObjectItem(o, "status")->valueint;
		cJSON *gw = cJSON_GetObjectItem(o, "gateway");

		if (!cJSON_IsString(gw) || strcmp(gw->valuestring, "twilio") != 0)
			continue; /* our own control requests */
		if (saw_429 && ts - last_429 > 5 && ts - last_429 < 950)
			fail_msg("request %.0f ms after a 429", ts - last_429);
		if (st == 429) {
			saw_429 = 1;
			last_429 = ts;
			n429++;
		}
	}
	cJSON_Delete(reqs);
	assert_true(saw_429);
	assert_int_equal(it_gwsim_count(&f->a, 201), n);
	/* Each 429 the gateway answered is counted for the console's Gateways page. */
	assert_true(it_http_get(port, "/metrics", metrics, sizeof(metrics)) == 200);
	snprintf(want, sizeof(want), "\ndealpush_gateway_rate_limited_total{gateway=\"twilio\"}"
	    " %d\n", n429);
	if (strstr(metrics, want) == NULL)
		fail_msg("no \"%s\" in /metrics", want + 1);
}

static void
slow_sms_gateway_does_not_slow_direct_messages(void **state)
{
	struct fx *f = *state;
	const int n = 20;
	const char *slow[] = { "--latency-ms", "4000", NULL };
	char extra[1024];
	struct want dms = { f, "sent", n, "dm" };

	import_n(f, n, 1);
	assert_int_equal(it_gwsim_start(&f->a, slow), 0);
	assert_int_equal(it_gwsim_start(&f->b, NULL), 0);
	snprintf(extra, sizeof(extra),
	    "[gateway x]\nkind = x-dm\nchannel = dm\nbase_url = http://127.0.0.1:%d\n"
	    "secret_env = DP_TEST_X_TOKEN\n", f->b.port);
	setenv("DP_TEST_X_TOKEN", "test-user-token", 1);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->a.port, "it-f", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("two-speeds", "laptop", 600)), 0);
	/* Every DM is out while every SMS still waits on the slow gateway (4 s). */
	assert_true(it_wait(channel_reach, &dms, 3500));
	assert_int_equal(outcomes_on(f->rc, "sent", "sms"), 0);
	assert_int_equal(it_gwsim_count(&f->b, 201), n);
	dms.channel = "sms";
	assert_true(it_wait(channel_reach, &dms, 15000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    down_gateway_fails_over_and_gets_traffic_back_when_it_recovers, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(storm_of_429s_is_waited_out_with_retry_after,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(slow_sms_gateway_does_not_slow_direct_messages,
		    setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("failover", tests, NULL, NULL);
}
