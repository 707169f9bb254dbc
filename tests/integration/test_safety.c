/*
 * test_safety.c: safety before and during a big send (issue 17 item 5), end to end
 * through its entry points. The global pause: POST /v1/pause on one notifier stops a
 * fan-out shared by two (nothing new leaves, only what was already handed to the
 * gateway), POST /v1/resume sends the rest, each phone once; a deal that expires
 * while sending is paused (through dealpushctl) ends `expired`, never sent; bad
 * bodies and reasons are refused by name. The guards: a deal over [guards]
 * max_audience is held, texting nobody, until a confirmation (API or dealpushctl)
 * publishes it once; a smaller deal goes out as before.
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
#include "keys.h"

#define TOKEN "pause-test-admin-token"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define PHONE_BASE 2000
#define IN_FLIGHT 4     /* per gateway and notifier: what a pause cannot call back */

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt[2];
	int http[2];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int i, rc = 0;

	for (i = 0; i < 2; i++)
		if (f->nt[i].proc.pid > 0 && it_stop_clean(&f->nt[i].proc) != 0)
			rc = -1;
	it_stop(&f->gw.proc, SIGTERM, 2000);
	redisFree(f->rc);
	free(f);
	return rc;
}

/* gwsim answering each text in 20 ms, and n notifiers with the admin API (and the
 * extra config lines, may be NULL), each sending at most IN_FLIGHT texts at a time. */
static void
start_with(struct fx *f, int n, const char *more)
{
	char extra[512];

	static const char *const slow[] = { "--latency-ms", "20", NULL };
	char gw_extra[64], name[32];
	int i;

	assert_int_equal(it_gwsim_start(&f->gw, slow), 0);
	snprintf(gw_extra, sizeof(gw_extra), "max_in_flight = %d\n", IN_FLIGHT);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "pause-%d", i);
		snprintf(extra, sizeof(extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n%s",
		    more != NULL ? more : "");
		f->http[i] = it_notifier_start_http_gw(&f->nt[i], f->port, f->gw.port, name,
		    gw_extra, extra);
		assert_true(f->http[i] > 0);
	}
}

static void
start(struct fx *f, int n)
{
	start_with(f, n, NULL);
}

static int
api(struct fx *f, int i, const char *method, const char *path, const char *body,
    struct it_resp *resp)
{
	return it_http(f->http[i], method, path, AUTH, body, body ? strlen(body) : 0,
	    resp);
}

struct count_want {
	struct fx *f;
	long n;
};

static int
gw_reaches(void *arg)
{
	struct count_want *w = arg;

	return it_gwsim_count(&w->f->gw, 201) >= w->n;
}

static int
outcomes_reach(void *arg)
{
	struct count_want *w = arg;

	return it_outcomes(w->f->rc, "") >= w->n;
}

static void
a_pause_on_one_notifier_stops_the_fanout_of_both_and_resume_sends_the_rest_once(
    void **state)
{
	struct fx *f = *state;
	const int n = 300;
	struct count_want some = { f, 30 }, all = { f, n };
	struct it_resp *resp = calloc(1, sizeof(*resp));
	long at_pause, settled;
	cJSON *reqs;
	int i, twice = 0;

	assert_non_null(resp);
	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	start(f, 2);
	assert_int_equal(it_publish(f->rc, it_deal("p-1", "laptop", 3600)), 0);
	assert_true(it_wait(gw_reaches, &some, 20000));

	assert_int_equal(api(f, 0, "POST", "/v1/pause", "{\"reason\": \"wrong price\"}",
	    resp), 200);
	assert_non_null(strstr(resp->body, "\"paused\":true"));
	assert_non_null(strstr(resp->body, "\"reason\":\"wrong price\""));
	at_pause = it_gwsim_count(&f->gw, 201);
	/* What was handed to the gateway finishes; the other notifier stops within a
	 * poll; then nothing more leaves. */
	it_sleep_ms(1000);
	settled = it_gwsim_count(&f->gw, 201);
	printf("# at the pause %ld texts, settled at %ld (the other notifier polls the "
	    "pause every 200 ms)\n", at_pause, settled);
	it_sleep_ms(1500);
	assert_int_equal(it_gwsim_count(&f->gw, 201), settled);
	assert_true(settled < n);
	/* Both notifiers say so. */
	assert_int_equal(api(f, 1, "GET", "/v1/pause", NULL, resp), 200);
	assert_non_null(strstr(resp->body, "\"paused\":true"));
	assert_int_equal(it_http(f->http[1], "GET", "/metrics", NULL, NULL, 0, resp), 200);
	assert_non_null(strstr(resp->body, "\ndealpush_paused 1\n"));

	assert_int_equal(api(f, 1, "POST", "/v1/resume", NULL, resp), 200);
	assert_non_null(strstr(resp->body, "\"paused\":false"));
	assert_true(it_wait(outcomes_reach, &all, 30000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "sent"), n);
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < n; i++) {
		char to[32];

		snprintf(to, sizeof(to), "+1512555%04d", PHONE_BASE + i);
		twice += it_gwsim_accepted_to(reqs, to) != 1;
	}
	cJSON_Delete(reqs);
	assert_int_equal(twice, 0);
	assert_int_equal(it_gwsim_count(&f->gw, 201), n);
	free(resp);
}

static void
a_deal_that_expires_while_paused_is_never_sent(void **state)
{
	struct fx *f = *state;
	const int n = 40;
	struct count_want all = { f, n };
	char bin[512], addr[64], out[1024];
	const char *pause_argv[] = { bin, "--redis", addr, "pause", "maintenance", NULL };
	const char *status_argv[] = { bin, "--redis", addr, "pause", "status", NULL };
	const char *resume_argv[] = { bin, "--redis", addr, "resume", NULL };
	const char *bad_argv[] = { bin, "--redis", addr, "pause", "bell\x07", NULL };

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	start(f, 1);
	assert_int_equal(it_run(pause_argv, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "paused at "));
	assert_int_equal(it_run(bad_argv, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "control characters"));
	it_sleep_ms(500);   /* more than a poll */
	assert_int_equal(it_publish(f->rc, it_deal("p-2", "laptop", 3)), 0);
	it_sleep_ms(4000);  /* past its expiry, still paused */
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);
	assert_int_equal(it_run(status_argv, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "paused since "));
	assert_non_null(strstr(out, ": maintenance"));
	assert_int_equal(it_run(resume_argv, out, sizeof(out)), 0);
	assert_true(it_wait(outcomes_reach, &all, 10000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "expired"), n);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);
	assert_int_equal(it_run(status_argv, out, sizeof(out)), 0);
	assert_string_equal(out, "running\n");
}

static void
bad_pause_requests_are_refused_by_name(void **state)
{
	struct fx *f = *state;
	struct it_resp *resp = calloc(1, sizeof(*resp));
	char long_reason[300], body[400];

	assert_non_null(resp);
	start(f, 1);
	assert_int_equal(api(f, 0, "POST", "/v1/pause", "not json", resp), 400);
	assert_non_null(strstr(resp->body, "\"field\":\"body\""));
	assert_int_equal(api(f, 0, "POST", "/v1/pause", "{\"reason\": 5}", resp), 400);
	assert_non_null(strstr(resp->body, "\"field\":\"reason\""));
	assert_int_equal(api(f, 0, "POST", "/v1/pause", "{\"reason\": \"a\\u0001b\"}",
	    resp), 400);
	assert_non_null(strstr(resp->body, "\"field\":\"reason\""));
	assert_int_equal(api(f, 0, "POST", "/v1/pause", "{\"reason\": \"caf\xe9\"}", resp),
	    400);                                   /* not UTF-8 */
	assert_non_null(strstr(resp->body, "\"field\":\"body\""));
	assert_int_equal(api(f, 0, "POST", "/v1/pause", "{\"why\": \"x\"}", resp), 400);
	assert_non_null(strstr(resp->body, "\"field\":\"why\""));
	assert_int_equal(api(f, 0, "POST", "/v1/pause",
	    "{\"reason\": \"a\", \"reason\": \"b\"}", resp), 400);
	memset(long_reason, 'x', 201);
	long_reason[201] = '\0';
	snprintf(body, sizeof(body), "{\"reason\": \"%s\"}", long_reason);
	assert_int_equal(api(f, 0, "POST", "/v1/pause", body, resp), 400);
	assert_int_equal(api(f, 0, "GET", "/v1/resume", NULL, resp), 405);
	assert_int_equal(it_http(f->http[0], "POST", "/v1/pause", NULL, NULL, 0, resp),
	    401);
	/* none of them paused anything */
	assert_int_equal(api(f, 0, "GET", "/v1/pause", NULL, resp), 200);
	assert_non_null(strstr(resp->body, "\"paused\":false"));
	assert_int_equal(it_int(f->rc, "EXISTS dealpush:pause"), 0);
	free(resp);
}

struct dead_want {
	struct fx *f;
	long long n;
};

static int
dead_reaches(void *arg)
{
	struct dead_want *w = arg;

	return it_int(w->f->rc, "XLEN %s", keys_global(KEYS_G_DEALS_DEAD)) >= w->n;
}

static void
a_deal_over_the_guard_waits_for_one_confirmation(void **state)
{
	struct fx *f = *state;
	struct it_resp *resp = calloc(1, sizeof(*resp));
	struct dead_want held = { f, 1 }, held2 = { f, 2 };
	struct count_want small = { f, 10 }, all = { f, 100 }, last = { f, 190 };
	char bin[512], addr[64], out[1024];
	const char *confirm_argv[] = { bin, "--redis", addr, "deals", "confirm", "g-3",
		NULL };
	const char *none_argv[] = { bin, "--redis", addr, "deals", "confirm", "nope", NULL };

	assert_non_null(resp);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	it_import_audience(f->port, 100, PHONE_BASE, "laptop");
	/* the same ids s-0..s-9 again: 10 tv people, 90 laptop people left */
	it_import_audience(f->port, 10, PHONE_BASE + 500, "tv");
	start_with(f, 1, "[guards]\nmax_audience = 50\n");

	assert_int_equal(it_publish(f->rc, it_deal("g-1", "laptop", 3600)), 0);
	assert_true(it_wait(dead_reaches, &held, 10000));
	assert_int_equal(it_publish(f->rc, it_deal("g-2", "tv", 3600)), 0);
	assert_true(it_wait(outcomes_reach, &small, 10000));
	it_sleep_ms(500);
	/* the small deal went out; the big one (90 over a guard of 50) texted nobody */
	assert_int_equal(it_gwsim_count(&f->gw, 201), 10);
	assert_int_equal(it_outcomes(f->rc, ""), 10);
	assert_true(it_log_line(f->nt[0].proc.log, "event=deal_held deal=g-1") > 0);

	assert_int_equal(api(f, 0, "POST", "/v1/deals/g-1/confirm", NULL, resp), 201);
	assert_non_null(strstr(resp->body, "\"published_now\":true"));
	assert_true(it_wait(outcomes_reach, &all, 20000));
	/* a second confirmation publishes nothing */
	assert_int_equal(api(f, 0, "POST", "/v1/deals/g-1/confirm", NULL, resp), 200);
	assert_non_null(strstr(resp->body, "\"published_now\":false"));
	assert_int_equal(api(f, 0, "POST", "/v1/deals/g-9/confirm", NULL, resp), 404);
	assert_int_equal(api(f, 0, "POST", "/v1/deals/a%20b/confirm", NULL, resp), 400);
	assert_int_equal(api(f, 0, "POST", "/v1/deals/g-1/go", NULL, resp), 404);

	/* through dealpushctl */
	assert_int_equal(it_publish(f->rc, it_deal("g-3", "laptop", 3600)), 0);
	assert_true(it_wait(dead_reaches, &held2, 10000));
	assert_int_equal(it_run(confirm_argv, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "confirmed g-3 entry="));
	assert_int_equal(it_run(none_argv, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no deal 'nope' held by the guards"));
	/* g-3's 90 pushes each end once, sent or over a daily cap; each text once */
	assert_true(it_wait(outcomes_reach, &last, 20000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, ""), 190);
	assert_int_equal(it_gwsim_count(&f->gw, 201), it_outcomes(f->rc, "sent"));

	/* A held deal with an empty list and "confirmed": false goes out as it was
	 * published: nothing dead-lettered but its hold. */
	{
		char deal[1200];
		struct dead_want held3 = { f, 3 };
		struct count_want four = { f, 280 };
		const char *g4 = it_deal("g-4", "laptop", 3600);

		snprintf(deal, sizeof(deal), "{\"tags\": [], \"confirmed\": false, %s", g4 + 1);
		assert_int_equal(it_publish(f->rc, deal), 0);
		assert_true(it_wait(dead_reaches, &held3, 10000));
		assert_int_equal(api(f, 0, "POST", "/v1/deals/g-4/confirm", NULL, resp), 201);
		assert_true(it_wait(outcomes_reach, &four, 20000));
		it_sleep_ms(300);
		assert_int_equal(it_int(f->rc, "XLEN %s", keys_global(KEYS_G_DEALS_DEAD)), 3);
	}
	free(resp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    a_pause_on_one_notifier_stops_the_fanout_of_both_and_resume_sends_the_rest_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(a_deal_that_expires_while_paused_is_never_sent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(bad_pause_requests_are_refused_by_name, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_deal_over_the_guard_waits_for_one_confirmation, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
