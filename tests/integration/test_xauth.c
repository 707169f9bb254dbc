/*
 * test_xauth.c: X DMs under OAuth 2.0 user tokens, end to end (real redis-server,
 * gwsim as X, the notifier): a DM fan-out runs through a token refresh forced in the
 * middle (every DM sent once, none refused); two notifiers refresh the rotating pair
 * once between them; only the recipient's own refusal revokes DM consent, while an
 * app-only token (X's 403) pauses the gateway and leaves every consent alone; a
 * refresh token X refuses is reported and nothing is sent without a token.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"

#define DM_BASE 7000              /* subscriber s-i has X user id DM_BASE + i */

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier a, b;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	setenv("DP_TEST_X_CLIENT_SECRET", "test-client-secret", 1);
	setenv("DP_TEST_X_REFRESH", "test-refresh-token", 1);
	setenv("DP_TEST_X_APP_BEARER", "test-bearer-token", 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->a.proc);

	if (it_stop_clean(&f->b.proc) < 0)
		rv = -1;
	it_stop(&f->gw.proc, SIGTERM, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

/* n subscribers s-0.. with X ids DM_BASE + i and DM consent; with sms, also on SMS
 * (their numbers consented too). */
static void
import_subs(struct fx *f, int n, int sms)
{
	size_t cap = (size_t)n * 360 + 1, len = 0;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	for (i = 0; i < n; i++) {
		snprintf(s + len, cap - len,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512556%04d\",\"dm\":{\"x\":\"%d\"},"
		    "\"channels\":[%s\"dm\"],\"consent\":{%s\"dm\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"laptop\"]}}\n", i, i, DM_BASE + i,
		    sms ? "\"sms\"," : "", sms ? "\"sms\":\"2026-01-02T10:00:00Z\"," : "");
		len += strlen(s + len);
	}
	assert_int_equal(it_import(f->port, s), 0);
	free(s);
}

/* The x-dm gateway section: oauth2 against gwsim, or a static token. */
static void
x_section(char *buf, size_t size, int gw_port, int oauth2, const char *more)
{
	snprintf(buf, size,
	    "[gateway x]\nkind = x-dm\nchannel = dm\nbase_url = http://127.0.0.1:%d\n"
	    "%s%s", gw_port, oauth2 ?
	    "auth = oauth2\nclient_id = test-client-id\n"
	    "client_secret_env = DP_TEST_X_CLIENT_SECRET\n"
	    "refresh_token_env = DP_TEST_X_REFRESH\n" :
	    "secret_env = DP_TEST_X_APP_BEARER\n", more != NULL ? more : "");
}

/* x-dm requests gwsim answered with status (0 = any), and how many recipients got
 * more than one 201. */
static int
dm_count(const struct fx *f, int status, int *dups, int nsubs)
{
	cJSON *arr = it_gwsim_requests(&f->gw), *o;
	int n = 0, *per = calloc((size_t)nsubs, sizeof(int)), i;

	assert_non_null(per);
	cJSON_ArrayForEach(o, arr) {
		cJSON *gw = cJSON_GetObjectItem(o, "gateway");
		cJSON *st = cJSON_GetObjectItem(o, "status");
		cJSON *to = cJSON_GetObjectItem(o, "to");

		if (!cJSON_IsString(gw) || strcmp(gw->valuestring, "x-dm") != 0 ||
		    !cJSON_IsNumber(st) || (status != 0 && st->valueint != status))
			continue;
		n++;
		if (st->valueint == 201 && cJSON_IsString(to)) {
			i = atoi(to->valuestring) - DM_BASE;
			if (i >= 0 && i < nsubs)
				per[i]++;
		}
	}
	if (dups != NULL) {
		*dups = 0;
		for (i = 0; i < nsubs; i++)
			*dups += per[i] > 1;
	}
	free(per);
	cJSON_Delete(arr);
	return n;
}

/* 201 DMs sent with the token that the nth refresh issued ("user-token-n"). */
static int
dm_sent_with(const struct fx *f, int nth)
{
	cJSON *arr = it_gwsim_requests(&f->gw), *o;
	char want[32];
	int n = 0;

	snprintf(want, sizeof(want), "user-token-%d", nth);
	cJSON_ArrayForEach(o, arr) {
		cJSON *st = cJSON_GetObjectItem(o, "status");
		cJSON *from = cJSON_GetObjectItem(o, "from");

		n += cJSON_IsNumber(st) && st->valueint == 201 && cJSON_IsString(from) &&
		    strcmp(from->valuestring, want) == 0;
	}
	cJSON_Delete(arr);
	return n;
}

/* A number from gwsim's GET /_sim/x. */
static long
x_stat(const struct fx *f, const char *key)
{
	char body[512];
	cJSON *j;
	long v = -1;

	if (it_http_get(f->gw.port, "/_sim/x", body, sizeof(body)) != 200)
		return -1;
	j = cJSON_Parse(body);
	if (cJSON_IsNumber(cJSON_GetObjectItem(j, key)))
		v = (long)cJSON_GetObjectItem(j, key)->valuedouble;
	cJSON_Delete(j);
	return v;
}

struct wait_dm {
	struct fx *f;
	int status;
	int n;
	int nsubs;
};

static int
dm_reach(void *arg)
{
	struct wait_dm *w = arg;

	return dm_count(w->f, w->status, NULL, w->nsubs) >= w->n;
}

struct wait_out {
	struct fx *f;
	const char *outcome;
	long long n;
};

static int
outcomes_reach(void *arg)
{
	struct wait_out *w = arg;

	return it_outcomes(w->f->rc, w->outcome) >= w->n;
}

/* Subscribers whose DM consent is still given (their consent JSON names dm). */
static int
dm_consents(struct fx *f, int n)
{
	int i, have = 0;

	for (i = 0; i < n; i++) {
		redisReply *r = redisCommand(f->rc, "HGET subscribers s-%d", i);

		if (r != NULL && r->type == REDIS_REPLY_STRING) {
			cJSON *j = cJSON_Parse(r->str);
			cJSON *c = cJSON_GetObjectItem(j, "consent");

			have += cJSON_IsString(cJSON_GetObjectItem(c, "dm"));
			cJSON_Delete(j);
		}
		freeReplyObject(r);
	}
	return have;
}

static void
dm_fan_out_runs_through_a_token_refresh(void **state)
{
	struct fx *f = *state;
	const int n = 60;
	char extra[1024];
	struct wait_dm third = { f, 201, n / 3, n };
	struct wait_dm refused = { f, 401, 1, n };
	struct wait_out all = { f, "sent", n };
	int dups = -1;

	import_subs(f, n, 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	/* A rate that makes the fan-out last: the expiry lands in its middle. */
	x_section(extra, sizeof(extra), f->gw.port, 1, "rate_per_s = 15\nburst = 1\n");
	assert_int_equal(it_notifier_start(&f->a, f->port, f->gw.port, "it-xa", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("refresh-mid", "laptop", 600)), 0);
	assert_true(it_wait(dm_reach, &third, 20000));
	/* Every access token issued so far stops working now: the next DM gets 401. */
	assert_int_equal(it_http_post(f->gw.port, "/_sim/x/expire", "{}"), 200);
	assert_true(it_wait(outcomes_reach, &all, 30000));
	assert_true(it_wait(dm_reach, &refused, 1000));

	assert_int_equal(dm_count(f, 201, &dups, n), n);   /* every DM once */
	/* ... with the first refreshed token before the expiry, the second after it */
	assert_true(dm_sent_with(f, 1) >= n / 3);
	assert_true(dm_sent_with(f, 2) >= 1);
	assert_int_equal(dm_sent_with(f, 1) + dm_sent_with(f, 2), n);
	/* The refreshed token is used as soon as it is stored: the expiry costs the
	 * requests already in flight with the old token, a handful, not one per tick. */
	assert_int_equal(dups, 0);
	assert_int_equal(dm_count(f, 403, NULL, n), 0);     /* none refused */
	assert_int_equal(it_outcomes(f->rc, "opted_out"), 0);
	assert_int_equal(it_outcomes(f->rc, "failed"), 0);
	assert_int_equal(dm_consents(f, n), n);
	/* the first refresh at start, one after the expiry; no rotated token reused */
	assert_int_equal(x_stat(f, "refreshes"), 2);
	assert_int_equal(x_stat(f, "refused"), 0);
	{
		redisReply *r = redisCommand(f->rc, "HGET xauth:{x} gen");

		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_STRING);
		assert_string_equal(r->str, "2");
		freeReplyObject(r);
	}
}

struct wait_stat {
	struct fx *f;
	const char *key;
	long n;
};

static int
stat_reach(void *arg)
{
	struct wait_stat *w = arg;

	return x_stat(w->f, w->key) >= w->n;
}

/* Tokens that live 12 s, refreshed 10 s before they expire: the fan-out goes through
 * several refreshes and X never sees an expired token. */
static void
tokens_are_refreshed_before_they_expire(void **state)
{
	struct fx *f = *state;
	const int n = 60;
	char extra[1024];
	const char *flags[] = { "--token-ttl-s", "12", NULL };
	struct wait_stat three = { f, "refreshes", 3 };
	struct wait_out all = { f, "sent", n };
	int dups = -1;

	import_subs(f, n, 0);
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	x_section(extra, sizeof(extra), f->gw.port, 1,
	    "refresh_margin_s = 10\nrate_per_s = 10\nburst = 1\n");
	assert_int_equal(it_notifier_start(&f->a, f->port, f->gw.port, "it-xa", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("ahead", "laptop", 600)), 0);
	assert_true(it_wait(stat_reach, &three, 30000));
	assert_true(it_wait(outcomes_reach, &all, 30000));
	assert_int_equal(dm_count(f, 201, &dups, n), n);
	assert_int_equal(dups, 0);
	assert_int_equal(dm_count(f, 401, NULL, n), 0);
	assert_int_equal(x_stat(f, "refused"), 0);
}

static void
two_notifiers_refresh_the_pair_once(void **state)
{
	struct fx *f = *state;
	const int n = 40;
	char extra[1024];
	struct wait_dm some = { f, 201, n / 4, n };
	struct wait_out all = { f, "sent", n };
	int dups = -1;

	import_subs(f, n, 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	x_section(extra, sizeof(extra), f->gw.port, 1, "rate_per_s = 10\nburst = 1\n");
	assert_int_equal(it_notifier_start(&f->a, f->port, f->gw.port, "it-xa", extra), 0);
	assert_int_equal(it_notifier_start(&f->b, f->port, f->gw.port, "it-xb", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("two-refresh", "laptop", 600)), 0);
	assert_true(it_wait(dm_reach, &some, 20000));
	assert_int_equal(it_http_post(f->gw.port, "/_sim/x/expire", "{}"), 200);
	assert_true(it_wait(outcomes_reach, &all, 30000));

	assert_int_equal(dm_count(f, 201, &dups, n), n);
	assert_int_equal(dups, 0);
	/* One refresh at start and one after the expiry, for both notifiers together:
	 * a second refresh with the same (rotated) token would have been refused. */
	assert_int_equal(x_stat(f, "refreshes"), 2);
	assert_int_equal(x_stat(f, "refused"), 0);
}

static void
only_the_recipient_refusal_revokes_dm_consent(void **state)
{
	struct fx *f = *state;
	const int n = 6;
	char extra[1024], answer[32];
	const char *flags[] = { "--answer", answer, NULL };
	struct wait_out sent = { f, "sent", n - 1 };
	struct wait_out out = { f, "opted_out", 1 };

	snprintf(answer, sizeof(answer), "%d=403", DM_BASE + 2);
	import_subs(f, n, 0);
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	x_section(extra, sizeof(extra), f->gw.port, 1, NULL);
	assert_int_equal(it_notifier_start(&f->a, f->port, f->gw.port, "it-xa", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("one-refuses", "laptop", 600)), 0);
	assert_true(it_wait(outcomes_reach, &sent, 20000));
	assert_true(it_wait(outcomes_reach, &out, 5000));
	assert_int_equal(it_outcomes(f->rc, "opted_out"), 1);
	assert_int_equal(dm_consents(f, n), n - 1);
}

static void
app_only_token_pauses_the_gateway_and_keeps_every_consent(void **state)
{
	struct fx *f = *state;
	const int n = 6;
	char extra[1024];
	struct wait_dm refused = { f, 403, 1, n };

	import_subs(f, n, 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	x_section(extra, sizeof(extra), f->gw.port, 0, NULL);   /* the app-only bearer */
	assert_int_equal(it_notifier_start(&f->a, f->port, f->gw.port, "it-xa", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("app-only", "laptop", 600)), 0);
	assert_true(it_wait(dm_reach, &refused, 20000));
	it_sleep_ms(500);   /* answers in flight are recorded; none may revoke consent */
	assert_int_equal(it_outcomes(f->rc, "opted_out"), 0);
	assert_int_equal(it_outcomes(f->rc, "sent"), 0);
	assert_int_equal(dm_consents(f, n), n);
	/* The alert: one log line naming the gateway and the status, no token. */
	assert_true(it_log_count(f->a.proc.log, "event=xauth_rejected gw=x http=403", NULL,
	    NULL) > 0);
	assert_int_equal(it_log_count(f->a.proc.log, "test-bearer-token", NULL, NULL), 0);
}

/*
 * The X gateway paused for a minute (its token refused) must not hold back the SMS:
 * every job has DMs in it, and with few jobs held at once, jobs waiting on the paused
 * gateway in memory stopped every other push. Its pushes wait in Redis instead.
 */
static void
paused_dm_gateway_does_not_hold_back_sms(void **state)
{
	struct fx *f = *state;
	const int n = 80;
	char extra[1024], more[256];
	struct wait_out sms = { f, "sent", n };
	struct wait_dm refused = { f, 403, 1, n };

	import_subs(f, n, 1);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	/* Two jobs of four recipients read at a time: eight held in memory at most. */
	snprintf(more, sizeof(more), "[deliver]\nbatch = 2\n[ingest]\njob_size = 4\n");
	x_section(extra, sizeof(extra), f->gw.port, 0, more);   /* the app-only bearer */
	assert_int_equal(it_notifier_start(&f->a, f->port, f->gw.port, "it-xp", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("paused", "laptop", 600)), 0);
	assert_true(it_wait(dm_reach, &refused, 20000));
	assert_true(it_wait(outcomes_reach, &sms, 30000));
	assert_int_equal(it_gwsim_count(&f->gw, 201), n);       /* every SMS, no DM */
	assert_int_equal(dm_consents(f, n), n);
	assert_true(it_log_line(f->a.proc.log, "event=push_parked") > 0 ||
	    it_int(f->rc, "XLEN pushes") > 0);
}

/* The configured refresh token is not (or no longer) valid at X: the notifier says so,
 * sends no DM without a token, and touches no consent. */
static void
refused_refresh_token_alerts_and_sends_nothing(void **state)
{
	struct fx *f = *state;
	const int n = 4;
	char extra[1024];
	const char *flags[] = { "--refresh-token", "another-refresh-token", NULL };
	struct wait_stat refused = { f, "refused", 2 };

	import_subs(f, n, 0);
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	x_section(extra, sizeof(extra), f->gw.port, 1, NULL);
	assert_int_equal(it_notifier_start(&f->a, f->port, f->gw.port, "it-xa", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("no-token", "laptop", 600)), 0);
	/* two refused refreshes: the first, and one retry after its backoff */
	assert_true(it_wait(stat_reach, &refused, 20000));
	assert_int_equal(dm_count(f, 0, NULL, n), 0);
	assert_int_equal(x_stat(f, "refreshes"), 0);
	assert_int_equal(it_outcomes(f->rc, "opted_out"), 0);
	assert_int_equal(it_outcomes(f->rc, "sent"), 0);
	assert_int_equal(dm_consents(f, n), n);
	assert_true(it_log_count(f->a.proc.log, "event=xauth_refresh_failed gw=x http=400",
	    NULL, NULL) > 0);
	assert_true(it_log_count(f->a.proc.log, "err=\"invalid_request\"", NULL, NULL) > 0);
	assert_int_equal(it_log_count(f->a.proc.log, "test-refresh-token", NULL, NULL), 0);
	assert_int_equal(it_log_count(f->a.proc.log, "test-client-secret", NULL, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(dm_fan_out_runs_through_a_token_refresh,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(tokens_are_refreshed_before_they_expire, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(two_notifiers_refresh_the_pair_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(only_the_recipient_refusal_revokes_dm_consent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    app_only_token_pauses_the_gateway_and_keeps_every_consent, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    paused_dm_gateway_does_not_hold_back_sms, setup, teardown),
		cmocka_unit_test_setup_teardown(refused_refresh_token_alerts_and_sends_nothing,
		    setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("xauth", tests, NULL, NULL);
}
