/*
 * test_publish_api.c: POST /v1/deals (issue 19, the console's publish page, and the
 * services that would rather not speak Redis): a deal the parser accepts goes on the
 * `deals` stream as sent and reaches the gateway; every refused deal names its field
 * and adds nothing; a test send (`test_to`) reaches only the named subscribers; no
 * token, no deal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"

#define TOKEN "publish-api-admin-token-0123456789"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"

static int
setup(void **state)
{
	struct it_one *o;

	if (it_one_setup(state) != 0)
		return -1;
	o = *state;
	assert_int_equal(it_gwsim_start(&o->gw, NULL), 0);
	return 0;
}

static int
start(struct it_one *o)
{
	int port;

	it_import_audience(o->port, 3, 3100, "laptops");
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	port = it_notifier_start_http(&o->nt, o->port, o->gw.port, "it-publish",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(port > 0);
	it_sleep_ms(300);           /* the mirror loads */
	return port;
}

struct want {
	struct it_one *o;
	int n;
};

static int
sent_n(void *arg)
{
	struct want *w = arg;

	return it_gwsim_count(&w->o->gw, 201) >= w->n;
}

/* The pushes gwsim took are recorded too (the series counts them as they are). */
static int
recorded_n(void *arg)
{
	struct want *w = arg;

	return it_outcomes(w->o->rc, "sent") >= w->n;
}

/* 1 when the newest audit entry of kind what for id was made by the config token and
 * its "after" holds needle. */
static int
audit_has(struct it_one *o, const char *what, const char *id, const char *needle)
{
	redisReply *r = redisCommand(o->rc, "XREVRANGE audit + - COUNT 50");
	int found = 0;
	size_t i, k;

	assert_non_null(r);
	for (i = 0; i < r->elements && !found; i++) {
		redisReply *f = r->element[i]->element[1];
		const char *w = NULL, *who = NULL, *oid = NULL, *after = NULL;

		for (k = 0; k + 1 < f->elements; k += 2) {
			const char *n = f->element[k]->str, *v = f->element[k + 1]->str;

			if (strcmp(n, "what") == 0)
				w = v;
			else if (strcmp(n, "who") == 0)
				who = v;
			else if (strcmp(n, "id") == 0)
				oid = v;
			else if (strcmp(n, "after") == 0)
				after = v;
		}
		found = w != NULL && strcmp(w, what) == 0 && oid != NULL &&
		    strcmp(oid, id) == 0 && who != NULL && strcmp(who, "config") == 0 &&
		    after != NULL && strstr(after, needle) != NULL;
	}
	freeReplyObject(r);
	return found;
}

struct want_audit {
	struct it_one *o;
	const char *what, *id, *needle;
};

static int
audit_seen(void *arg)
{
	struct want_audit *w = arg;

	return audit_has(w->o, w->what, w->id, w->needle);
}

/* audit_has once the entry had time to arrive: it is written after the answer. */
static int
audit_soon(struct it_one *o, const char *what, const char *id, const char *needle)
{
	struct want_audit w = { o, what, id, needle };

	return it_wait(audit_seen, &w, 5000);
}

/* The number in s after "name": (0 when absent). */
static long long
num_after(const char *s, const char *name)
{
	const char *p = strstr(s, name);

	return p != NULL ? strtoll(p + strlen(name), NULL, 10) : 0;
}

/* GET /v1/deals/<id>/series: the 3 sends counted in their minutes, and every bad
 * range or id refused naming what is wrong. */
static void
series_checks(int port)
{
	static struct it_resp r;
	const cJSON *v;
	double sent = 0;
	char path[128];
	cJSON *j, *a;
	long long now;

	assert_int_equal(it_http(port, "GET", "/v1/deals/api-1/series", AUTH, NULL, 0, &r),
	    200);
	assert_non_null(j = cJSON_Parse(r.body));
	assert_int_equal(cJSON_GetObjectItem(j, "step_s")->valueint, 60);
	a = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "series"), "sent");
	assert_int_equal(cJSON_GetArraySize(a), 360);
	cJSON_ArrayForEach(v, a)
		sent += v->valuedouble;
	assert_int_equal((int)sent, 3);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j,
	    "series"), "redeemed")), 360);
	now = (long long)cJSON_GetObjectItem(j, "to")->valuedouble;
	cJSON_Delete(j);
	/* One minute asked: from and to in it. */
	snprintf(path, sizeof(path), "/v1/deals/api-1/series?from=%lld&to=%lld", now - 3600,
	    now + 59);
	assert_int_equal(it_http(port, "GET", path, AUTH, NULL, 0, &r), 200);
	assert_int_equal(num_after(r.body, "\"from\":"), now - 3600);
	assert_int_equal(num_after(r.body, "\"to\":"), now);
	/* Bad ranges, bad and unknown ids. */
	snprintf(path, sizeof(path), "/v1/deals/api-1/series?from=%lld&to=%lld", now,
	    now - 120);
	assert_int_equal(it_http(port, "GET", path, AUTH, NULL, 0, &r), 400);
	assert_non_null(strstr(r.body, "\"field\":\"from\""));
	snprintf(path, sizeof(path), "/v1/deals/api-1/series?from=%lld&to=%lld",
	    now - 1440 * 60, now);
	assert_int_equal(it_http(port, "GET", path, AUTH, NULL, 0, &r), 400);
	assert_non_null(strstr(r.body, "over 1440 minutes"));
	assert_int_equal(it_http(port, "GET", "/v1/deals/api-1/series?to=12x", AUTH, NULL, 0,
	    &r), 400);
	assert_non_null(strstr(r.body, "\"field\":\"to\""));
	assert_int_equal(it_http(port, "GET", "/v1/deals/api-1/series?from=-5", AUTH, NULL,
	    0, &r), 400);
	assert_non_null(strstr(r.body, "\"field\":\"from\""));
	assert_int_equal(it_http(port, "GET", "/v1/deals/nope-9/series", AUTH, NULL, 0, &r),
	    404);
	assert_int_equal(it_http(port, "GET", "/v1/deals/a%20b/series", AUTH, NULL, 0, &r), 400);
	assert_int_equal(it_http(port, "GET", "/v1/deals/api-1/series", NULL, NULL, 0, &r),
	    401);
}

/* GET /v1/subscribers?phone=: the number's subscribers by the hooks' index, the
 * number masked; a number of nobody is an empty list; bad input is named. */
static void
phone_checks(int port)
{
	static struct it_resp r;

	assert_int_equal(it_http(port, "GET", "/v1/subscribers?phone=%2B15125553101", AUTH,
	    NULL, 0, &r), 200);
	assert_non_null(strstr(r.body, "\"ids\":[\"s-1\"]"));
	assert_non_null(strstr(r.body, "\"phone\":\"+1512\xe2\x80\xa2"));
	assert_null(strstr(r.body, "5553101"));
	assert_int_equal(it_http(port, "GET", "/v1/subscribers?phone=%2B15125559999", AUTH,
	    NULL, 0, &r), 200);
	assert_non_null(strstr(r.body, "\"ids\":[]"));
	assert_int_equal(it_http(port, "GET", "/v1/subscribers?phone=5125553101", AUTH,
	    NULL, 0, &r), 400);
	assert_non_null(strstr(r.body, "\"field\":\"phone\""));
	assert_int_equal(it_http(port, "GET", "/v1/subscribers?phone=", AUTH, NULL, 0, &r),
	    400);
	assert_int_equal(it_http(port, "GET", "/v1/subscribers?phone=%2B1512555310x", AUTH,
	    NULL, 0, &r), 400);
	assert_int_equal(it_http(port, "GET",
	    "/v1/subscribers?phone=%2B15125553101&limit=5", AUTH, NULL, 0, &r), 400);
	assert_non_null(strstr(r.body, "\"field\":\"limit\""));
}

static void
a_deal_is_published_and_sent(void **state)
{
	struct it_one *o = *state;
	static struct it_resp r;
	struct want w = { o, 3 };
	const char *deal = it_deal("api-1", "laptops", 3600);
	int port = start(o);
	cJSON *j;

	assert_int_equal(it_http(port, "POST", "/v1/deals", AUTH, deal, strlen(deal), &r),
	    201);
	j = cJSON_Parse(r.body);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "deal")->valuestring, "api-1");
	assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring,
	    "/v1/deals/api-1");
	assert_true(strchr(cJSON_GetObjectItem(j, "entry")->valuestring, '-') != NULL);
	cJSON_Delete(j);
	assert_int_equal(it_int(o->rc, "XLEN deals"), 1);
	/* Listed as on now (GET /v1/deals), with the notifier's clock */
	assert_int_equal(it_http(port, "GET", "/v1/deals", AUTH, NULL, 0, &r), 200);
	assert_non_null(strstr(r.body, "\"deal\":\"api-1\""));
	assert_non_null(strstr(r.body, "\"now\":"));
	assert_true(it_wait(sent_n, &w, 15000));
	assert_int_equal(it_gwsim_count(&o->gw, 201), 3);
	assert_true(it_wait(recorded_n, &w, 15000));
	series_checks(port);
	phone_checks(port);
	/* Who published what is in the audit; a pool filled is too, by its counts only. */
	assert_true(audit_soon(o, "deals.publish", "api-1", "\"title\": \"Deal api-1\""));
	assert_int_equal(it_http(port, "POST", "/v1/codes/pool-a", AUTH, "SECRET-1\nSECRET-2",
	    17, &r), 200);
	assert_true(audit_soon(o, "codes.add", "pool-a", "\"added\":2"));
	assert_false(audit_has(o, "codes.add", "pool-a", "SECRET-1"));
	/* A cancel through the same route takes the deal off the list, audited as one. */
	it_http(port, "POST", "/v1/deals", AUTH, "{\"id\":\"api-1\",\"cancel\":true}", 28,
	    &r);
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.body, "\"cancel\":true"));
	assert_int_equal(it_http(port, "GET", "/v1/deals", AUTH, NULL, 0, &r), 200);
	assert_null(strstr(r.body, "\"deal\":\"api-1\""));
	assert_true(audit_soon(o, "deals.cancel", "api-1", "\"cancel\":true"));
}

static void
refused_deals_name_their_field_and_add_nothing(void **state)
{
	static const struct {
		const char *body, *field;
	} bad[] = {
		{ "", "body" },
		{ "not json", "body" },
		{ "[1,2]", "body" },
		{ "{\"id\":\"x\",\"title\":\"t\",\"url\":\"https://a.example/\"}", "expires_at" },
		{ "{\"id\":\"x\",\"title\":\"t\",\"expires_at\":4102444800}", "url" },
		{ "{\"id\":\"x y\",\"title\":\"t\",\"url\":\"https://a.example/\","
		    "\"expires_at\":4102444800}", "id" },
		{ "{\"id\":\"x\",\"title\":\"t\",\"url\":\"https://a.example/\","
		    "\"expires_at\":1}", "expires_at" },
		{ "{\"id\":\"x\",\"id\":\"y\",\"title\":\"t\",\"url\":\"https://a.example/\","
		    "\"expires_at\":4102444800}", "id" },
	};
	struct it_one *o = *state;
	static struct it_resp r;
	char want[64];
	size_t i;
	int port = start(o);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		it_http(port, "POST", "/v1/deals", AUTH, bad[i].body, strlen(bad[i].body), &r);
		snprintf(want, sizeof(want), "\"field\":\"%s\"", bad[i].field);
		if (r.status != 400 || strstr(r.body, want) == NULL)
			fail_msg("%s: %d %s, want 400 naming %s", bad[i].body, r.status, r.body,
			    bad[i].field);
	}
	/* no token, a wrong one */
	assert_int_equal(it_http(port, "POST", "/v1/deals", NULL, "{}", 2, &r), 401);
	assert_int_equal(it_http(port, "POST", "/v1/deals",
	    "Authorization: Bearer nope\r\n", "{}", 2, &r), 401);
	assert_int_equal(it_int(o->rc, "XLEN deals"), 0);
	assert_int_equal(it_gwsim_count(&o->gw, 201), 0);
}

static void
a_test_send_reaches_only_the_named(void **state)
{
	struct it_one *o = *state;
	static struct it_resp r;
	struct want w = { o, 1 };
	char deal[1200];
	int port = start(o);

	/* it_import_audience names its subscribers s-0, s-1, ... */
	snprintf(deal, sizeof(deal), "%.*s, \"test_to\": [\"s-1\"]}",
	    (int)strlen(it_deal("api-t", "laptops", 3600)) - 1,
	    it_deal("api-t", "laptops", 3600));
	assert_int_equal(it_http(port, "POST", "/v1/deals", AUTH, deal, strlen(deal), &r),
	    201);
	assert_true(it_wait(sent_n, &w, 15000));
	it_sleep_ms(500);
	assert_int_equal(it_gwsim_count(&o->gw, 201), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_deal_is_published_and_sent, setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(refused_deals_name_their_field_and_add_nothing,
		    setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(a_test_send_reaches_only_the_named, setup,
		    it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
