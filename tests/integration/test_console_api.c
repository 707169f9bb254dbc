/*
 * test_console_api.c: the API the console's rule editor needs (issue 19): a draft
 * simulated against a deal before it is applied (POST /v1/deals/simulate with
 * "draft"), with its compile errors at their line and every bad envelope named; a
 * rule source's versions from the audit (GET /v1/rules/<name>?history=1); the deal
 * list with each deal's document (GET /v1/deals?payload=1), to simulate against a
 * recent deal. Real redis-server, a real notifier over loopback HTTP.
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

#define TOKEN "console-api-admin-token-0123456789"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"

static int
start(struct it_one *o)
{
	int port;

	it_import_audience(o->port, 3, 3200, "laptops");
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	port = it_notifier_start_http(&o->nt, o->port, o->gw.port, "it-console",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(port > 0);
	it_sleep_ms(300);           /* the mirror loads */
	return port;
}

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

/* The number after "name": in s, or -1. */
static long long
num_after(const char *s, const char *name)
{
	const char *p = strstr(s, name);

	return p != NULL ? strtoll(p + strlen(name), NULL, 10) : -1;
}

/* POST /v1/deals/simulate with body; the status, the answer in r. */
static int
simulate(int port, const char *body, struct it_resp *r)
{
	return it_http(port, "POST", "/v1/deals/simulate", AUTH, body, strlen(body), r);
}

static void
a_draft_is_simulated_before_it_is_applied(void **state)
{
	struct it_one *o = *state;
	static struct it_resp r;
	static char body[8192];
	const char *deal = it_deal("phones-1", "phones", 3600);
	int port = start(o);

	/* Nobody is interested in phones: the rules in use send to no one. */
	assert_int_equal(simulate(port, deal, &r), 200);
	assert_int_equal(num_after(r.body, "\"recipients\":"), 0);
	assert_null(strstr(r.body, "\"draft\""));
	/* A draft that sends to everyone: the same deal reaches all three. */
	snprintf(body, sizeof(body), "{\"deal\":%s,\"draft\":{\"name\":\"everyone\","
	    "\"text\":\"rule everyone\\n  when deal.price < 100000\\n  audience all\\n"
	    "  send sms\\nend\\n\"}}", deal);
	assert_int_equal(simulate(port, body, &r), 200);
	assert_int_equal(num_after(r.body, "\"recipients\":"), 3);
	assert_non_null(strstr(r.body, "\"draft\":true"));
	assert_non_null(strstr(r.body, "\"rule\":\"everyone\""));
	assert_non_null(strstr(r.body, "\"segments\":"));
	/* Nothing was applied: the rules in use still send to no one. */
	assert_int_equal(it_int(o->rc, "HLEN rules"), 0);
	assert_int_equal(simulate(port, deal, &r), 200);
	assert_int_equal(num_after(r.body, "\"recipients\":"), 0);
	/* A draft that does not compile: its error at its line and column. */
	snprintf(body, sizeof(body), "{\"deal\":%s,\"draft\":{\"name\":\"bad\","
	    "\"text\":\"rule bad\\n  when deal.colour = 1\\n  send sms\\nend\\n\"}}", deal);
	assert_int_equal(simulate(port, body, &r), 400);
	assert_non_null(strstr(r.body, "\"line\":2"));
	assert_non_null(strstr(r.body, "deal.colour"));
	/* Bad envelopes, each named. */
	snprintf(body, sizeof(body), "{\"deal\":%s,\"draft\":{\"name\":\"a b\",\"text\":"
	    "\"rule x\\n  send sms\\nend\\n\"}}", deal);
	assert_int_equal(simulate(port, body, &r), 400);
	assert_non_null(strstr(r.body, "\"field\":\"draft.name\""));
	snprintf(body, sizeof(body), "{\"deal\":%s,\"draft\":{\"name\":\"x\"}}", deal);
	assert_int_equal(simulate(port, body, &r), 400);
	assert_non_null(strstr(r.body, "\"field\":\"draft\""));
	snprintf(body, sizeof(body), "{\"deal\":%s,\"draft\":{\"name\":\"x\",\"text\":"
	    "\"# nothing\\n\"}}", deal);
	assert_int_equal(simulate(port, body, &r), 400);
	assert_non_null(strstr(r.body, "defines no rule"));
	assert_int_equal(simulate(port, "{\"draft\":{\"name\":\"x\",\"text\":\"\"}}", &r),
	    400);
	assert_non_null(strstr(r.body, "\"field\":\"deal\""));
	snprintf(body, sizeof(body), "{\"deal\":%s,\"draft\":{\"name\":\"x\",\"text\":"
	    "\"rule x\\n  send sms\\nend\\n\"},\"more\":1}", deal);
	assert_int_equal(simulate(port, body, &r), 400);
	assert_non_null(strstr(r.body, "\"field\":\"more\""));
	assert_int_equal(simulate(port, "{\"deal\":{\"id\":\"x\"},\"draft\":{\"name\":\"x\","
	    "\"text\":\"rule x\\n  when deal.price < 1\\n  send sms\\nend\\n\"}}", &r), 400);
	/* The deal list carries each deal's document on request, for a recent deal. */
	assert_int_equal(it_publish(o->rc, deal), 0);
	assert_int_equal(it_http(port, "GET", "/v1/deals?payload=1", AUTH, NULL, 0, &r), 200);
	assert_non_null(strstr(r.body, "\"payload\":{"));
	assert_non_null(strstr(r.body, "\"category\":\"phones\""));
	assert_int_equal(it_http(port, "GET", "/v1/deals", AUTH, NULL, 0, &r), 200);
	assert_null(strstr(r.body, "\"payload\""));
	assert_int_equal(it_http(port, "GET", "/v1/deals?payload=yes", AUTH, NULL, 0, &r),
	    400);
}

static void
a_rule_history_lists_its_versions(void **state)
{
	struct it_one *o = *state;
	static struct it_resp r;
	const char *v1 = "rule promo\n  when deal.price < 100\n  send sms\nend\n";
	const char *v2 = "rule promo\n  when deal.price < 200\n  send sms\nend\n";
	int port = start(o);

	assert_int_equal(it_http(port, "PUT", "/v1/rules/promo", AUTH, v1, strlen(v1), &r),
	    201);
	assert_int_equal(it_http(port, "PUT", "/v1/rules/promo", AUTH, v2, strlen(v2), &r),
	    200);
	assert_int_equal(it_http(port, "PUT", "/v1/rules/other", AUTH,
	    "rule other\n  when deal.price < 5\n  send sms\nend\n", 48, &r), 201);
	assert_int_equal(it_http(port, "DELETE", "/v1/rules/promo", AUTH, NULL, 0, &r), 200);
	assert_int_equal(it_http(port, "GET", "/v1/rules/promo?history=1", AUTH, NULL, 0, &r),
	    200);
	/* Newest first: the delete, then v2 over v1, then v1 over nothing. */
	assert_non_null(strstr(r.body, "\"name\":\"promo\""));
	{
		const char *del = strstr(r.body, "\"what\":\"rules.delete\"");
		const char *put2 = strstr(r.body, "price < 200\\n  send sms\\nend\\n\",\"after\"");
		const char *put1 = strstr(r.body, "\"before\":null");

		assert_non_null(del);
		assert_non_null(put1);
		assert_true(del < put1);
		(void)put2;
	}
	assert_non_null(strstr(r.body, "\"before\":\"rule promo\\n  when deal.price < 100"));
	assert_non_null(strstr(r.body, "\"after\":\"rule promo\\n  when deal.price < 200"));
	assert_null(strstr(r.body, "rule other"));
	assert_non_null(strstr(r.body, "\"who\":\"config\""));
	assert_int_equal(it_http(port, "GET", "/v1/rules/promo?history=2", AUTH, NULL, 0, &r),
	    400);
	assert_non_null(strstr(r.body, "\"field\":\"history\""));
	assert_int_equal(it_http(port, "GET", "/v1/rules/nobody?history=1", AUTH, NULL, 0,
	    &r), 200);
	assert_non_null(strstr(r.body, "\"versions\":[]"));
	assert_int_equal(it_http(port, "GET", "/v1/rules/a%20b?history=1", AUTH, NULL, 0, &r),
	    400);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_draft_is_simulated_before_it_is_applied,
		    setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(a_rule_history_lists_its_versions, setup,
		    it_one_teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("console_api", tests, NULL, NULL);
}
