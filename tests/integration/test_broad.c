/*
 * test_broad.c: a broad deal at scale, end to end (real redis-server, gwsim and
 * notifier): 50,000 of 200,000 subscribers, with a 200 ms Redis command timeout.
 *
 * What it shows (counts, never timings):
 * - the deal is planned completely, every recipient exactly once, with no command
 *   timeout and no reconnect of the script connection (the planner slices the work and
 *   keeps a few plan calls in flight; a deadline counts from the head of the queue);
 * - simulate renders the same deal over many loop turns and counts it exactly;
 * - a small deal published right behind it is planned while the broad one still is;
 * - the mirror keeps following changes while the deal is being planned and sent: a
 *   subscriber imported meanwhile gets the next deal;
 * - a consent revoked during the fan-out stops that subscriber's remaining pushes:
 *   the last-ranked recipients revoke while the first texts are leaving and are never
 *   texted;
 * - a deal whose planning stops advancing makes /healthz unhealthy until it goes on.
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
#include "ithttp.h"

#define SUBS 200000
#define BROAD 50000            /* every fourth subscriber is in "tv" */
#define REVOKED 20             /* the last-ranked of them revoke during the fan-out */
#define TOKEN "broad-test-token-0123456789"
#define QUICK 3                /* subscribers of a small deal published right after */
#define WAIT_MS 120000
#define PLANNED_BROAD "event=deal_planned deal=broad "
#define LOADED "event=subscribers_loaded"

/* Subscriber i: +1512 and 2000000 + i (Austin, America/Chicago); every fourth likes tv. The
 * REVOKED tv subscribers with the highest i have the lowest engagement: they rank
 * last. */
static size_t
sub_line(char *buf, size_t size, int i, int consent)
{
	int tv = i % 4 == 0;
	int last = tv && i >= SUBS - 4 * REVOKED;

	return (size_t)snprintf(buf, size,
	    "{\"id\":\"b%06d\",\"phone\":\"+1512%07d\",\"channels\":[\"sms\"],"
	    "%s\"timezone\":\"America/Chicago\",\"engagement\":%s,"
	    "\"interests\":{\"categories\":[\"%s\"]}}\n", i, 2000000 + i,
	    consent ? "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"}," : "",
	    last ? "0.01" : "0.5", tv ? "tv" : (i % 4 == 1 ? "laptop" : "phone"));
}

static void
import_all(int port)
{
	size_t cap = (size_t)SUBS * 256, len = 0;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	for (i = 0; i < SUBS; i++)
		len += sub_line(s + len, cap - len, i, 1);
	for (i = 0; i < QUICK; i++)
		len += (size_t)snprintf(s + len, cap - len, "{\"id\":\"q%d\",\"phone\":"
		    "\"+1737555%04d\",\"channels\":[\"sms\"],\"consent\":{\"sms\":"
		    "\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"qk\"]}}\n", i, i);
	assert_int_equal(it_import(port, s), 0);
	free(s);
}

/* The same subscribers with their SMS consent taken away. */
static void
revoke_last(int port)
{
	char s[REVOKED * 256];
	size_t len = 0;
	int i;

	for (i = SUBS - 4 * REVOKED; i < SUBS; i += 4)
		len += sub_line(s + len, sizeof(s) - len, i, 0);
	assert_int_equal(it_import(port, s), 0);
}

static int
first_text(void *arg)
{
	struct it_one *f = arg;

	return it_gwsim_count(&f->gw, 201) > 0;
}

struct outcome_arg {
	struct it_one *f;
	long long want;
};

static int
all_final(void *arg)
{
	struct outcome_arg *a = arg;

	return it_outcomes(a->f->rc, "") >= a->want;
}

/* 1 when deal:<id> carries its planned-marker. */
static int
planned(redisContext *rc, const char *id)
{
	redisReply *r = redisCommand(rc, "HEXISTS deal:%s planned", id);
	int ok = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;

	freeReplyObject(r);
	return ok;
}

static int
deal_planned(void *arg)
{
	return planned(((struct it_one *)arg)->rc, "broad");
}

/* Texts gwsim accepted for b<i> (its phone number). */
static int
texts_to(const cJSON *reqs, int i)
{
	char to[32];

	snprintf(to, sizeof(to), "+1512%07d", 2000000 + i);
	return it_gwsim_accepted_to(reqs, to);
}

static int
deal_planned_stall(void *arg)
{
	return planned(((struct it_one *)arg)->rc, "stall");
}

static int
quick_planned(void *arg)
{
	return planned(((struct it_one *)arg)->rc, "quick");
}

/* A hash field holding a number, -1 when missing. */
static long long
hget_ll(redisContext *rc, const char *key, const char *field)
{
	redisReply *r = redisCommand(rc, "HGET %s %s", key, field);
	long long v = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	freeReplyObject(r);
	return v;
}

static void
test_broad_deal_plans_and_follows(void **state)
{
	struct it_one *f = *state;
	struct outcome_arg oa = { f, 0 };
	char line[512], health[4096];
	long long recipients, sent, refused;
	cJSON *reqs;
	int http, i, texted_last = 0, status;

	import_all(f->port);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	/* The gateway's own limit keeps the fan-out going for seconds. The harness's
	 * config ends in the gateway's section; the sections below override it. */
	http = it_notifier_start_http_gw(&f->nt, f->port, f->gw.port, "nb",
	    "rate_per_s = 4000\nburst = 100\nmax_in_flight = 64\n",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[notifier]\nlog_level = info\n"
	    "[redis]\ncommand_timeout_ms = 200\n");
	assert_true(http > 0);
	for (i = 0; i < 600; i++) {
		status = it_http_get(http, "/healthz", health, sizeof(health));
		if (status == 200)
			break;
		it_sleep_ms(100);
	}
	assert_int_equal(status, 200);

	/* Simulated first: rendered over many loop turns, the counts still exact. */
	{
		static struct it_resp resp;
		const char *d = it_deal("broad", "tv", 3600);

		assert_int_equal(it_http(http, "POST", "/v1/deals/simulate",
		    "Authorization: Bearer " TOKEN "\r\n", d, strlen(d), &resp), 200);
		assert_non_null(strstr(resp.body, "\"pushes\":50000"));
		assert_non_null(strstr(resp.body, "\"recipients\":50000"));
		assert_int_equal(it_outcomes(f->rc, ""), 0);
		/* 50,000 pushes rendered 2,000 a loop turn: 25 turns, so the loop served
		 * everything else between them (one turn would have held it throughout). */
		assert_int_equal(it_log_count(f->nt.proc.log,
		    "event=simulated deal=broad pushes=50000 turns=25", NULL, NULL), 1);
	}

	assert_int_equal(it_publish(f->rc, it_deal("broad", "tv", 3600)), 0);
	/* A small deal published once the broad one's first texts leave is planned
	 * without waiting for the broad one to be. */
	assert_true(it_wait(first_text, f, WAIT_MS));
	assert_int_equal(it_publish(f->rc, it_deal("quick", "qk", 3600)), 0);
	assert_true(it_wait(quick_planned, f, WAIT_MS));
	assert_false(deal_planned(f));
	/* While it is planned and sent: a new subscriber, and the last-ranked revoke. */
	snprintf(line, sizeof(line), "{\"id\":\"late\",\"phone\":\"+1512%07d\","
	    "\"channels\":[\"sms\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
	    "\"timezone\":\"America/Chicago\",\"interests\":{\"categories\":[\"lv\"]}}\n",
	    2000000 + SUBS);
	assert_int_equal(it_import(f->port, line), 0);
	revoke_last(f->port);

	assert_true(it_wait(deal_planned, f, WAIT_MS));
	recipients = hget_ll(f->rc, "deal:broad", "recipients");
	assert_int_equal(recipients, BROAD);
	oa.want = BROAD + QUICK;
	assert_true(it_wait(all_final, &oa, WAIT_MS));

	/* The mirror followed the import made during the fan-out. */
	assert_int_equal(it_publish(f->rc, it_deal("late", "lv", 3600)), 0);
	oa.want = BROAD + QUICK + 1;
	assert_true(it_wait(all_final, &oa, WAIT_MS));

	reqs = it_gwsim_requests(&f->gw);
	assert_non_null(reqs);
	for (i = SUBS - 4 * REVOKED; i < SUBS; i += 4)
		texted_last += texts_to(reqs, i);
	assert_int_equal(texts_to(reqs, SUBS), 1);          /* the late subscriber */
	cJSON_Delete(reqs);
	assert_int_equal(texted_last, 0);
	sent = it_outcomes(f->rc, "sent");
	refused = it_outcomes(f->rc, "no_consent");
	print_message("# broad: recipients %lld, sent %lld, no_consent %lld\n", recipients,
	    sent, refused);
	assert_int_equal(sent, BROAD - REVOKED + QUICK + 1);
	assert_int_equal(refused, REVOKED);
	assert_int_equal(it_gwsim_count(&f->gw, 201), BROAD - REVOKED + QUICK + 1);

	/* While it was planned: no deadline missed, no reconnect, no failed attempt
	 * (planned once, recipients exactly BROAD). Before and after it (the mirror's
	 * load, the fan-out), the machine is shared: deadlines there are not counted. */
	assert_int_equal(it_log_count(f->nt.proc.log, "event=command_timeout", LOADED, PLANNED_BROAD), 0);
	assert_int_equal(it_log_count(f->nt.proc.log, "event=drop", LOADED, PLANNED_BROAD), 0);
	assert_int_equal(it_log_count(f->nt.proc.log, "event=plan_failed", NULL, NULL), 0);
	assert_int_equal(it_log_count(f->nt.proc.log, PLANNED_BROAD, NULL, NULL), 1);
	assert_int_equal(it_http_get(http, "/healthz", health, sizeof(health)), 200);
	assert_non_null(strstr(health, "\"mirror\":{\"ready\":true,\"subscribers\":200004,"));
	assert_non_null(strstr(health, "\"planning\":{\"deals\":0,"));
}

/*
 * A deal whose planning stops advancing (Redis paused for writes mid-way) makes
 * /healthz unhealthy with "planning stalled" once ingest.plan_stall_ms has passed,
 * and healthy again when planning goes on; the deal is planned exactly once.
 */
static void
test_stalled_planning_is_unhealthy(void **state)
{
	struct it_one *f = *state;
	const int n = 2000;
	char health[4096], line[512];
	size_t cap = (size_t)n * 256, len = 0;
	char *subs = malloc(cap);
	int http, i, stalled = 0, status = 0;

	assert_non_null(subs);
	for (i = 0; i < n; i++) {
		sub_line(line, sizeof(line), i * 4, 1);          /* every one likes tv */
		len += (size_t)snprintf(subs + len, cap - len, "%s", line);
	}
	assert_int_equal(it_import(f->port, subs), 0);
	free(subs);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	/* One recipient per plan chunk: planning takes many round trips. */
	http = it_notifier_start_http_gw(&f->nt, f->port, f->gw.port, "ns", NULL,
	    "[ingest]\nplan_chunk = 1\njob_size = 1\nplan_stall_ms = 1000\n"
	    "[redis]\ncommand_timeout_ms = 10000\n");
	assert_true(http > 0);
	for (i = 0; i < 600 && status != 200; i++) {
		status = it_http_get(http, "/healthz", health, sizeof(health));
		if (status != 200)
			it_sleep_ms(100);
	}
	assert_int_equal(status, 200);
	assert_int_equal(it_publish(f->rc, it_deal("stall", "tv", 3600)), 0);
	for (i = 0; i < 500 && strstr(health, "\"planning\":{\"deals\":1") == NULL; i++) {
		it_http_get(http, "/healthz", health, sizeof(health));
		if (strstr(health, "\"planning\":{\"deals\":1") == NULL)
			it_sleep_ms(2);
	}
	assert_non_null(strstr(health, "\"planning\":{\"deals\":1"));
	freeReplyObject(redisCommand(f->rc, "CLIENT PAUSE 3000 WRITE"));
	for (i = 0; i < 60 && !stalled; i++) {
		it_sleep_ms(50);
		stalled = it_http_get(http, "/healthz", health, sizeof(health)) == 503 &&
		    strstr(health, "planning stalled") != NULL &&
		    strstr(health, "\"stalled_deal\":\"stall\"") != NULL;
	}
	assert_true(stalled);
	assert_true(it_wait(deal_planned_stall, f, 60000));
	assert_int_equal(it_http_get(http, "/healthz", health, sizeof(health)), 200);
	assert_int_equal(it_log_count(f->nt.proc.log, "event=deal_planned deal=stall ",
	    NULL, NULL), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_broad_deal_plans_and_follows,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(test_stalled_planning_is_unhealthy,
		    it_one_setup, it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
