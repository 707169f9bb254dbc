/*
 * test_admin.c: the admin API on a running notifier (docs/admin.md): bearer auth,
 * subscribers with field-level errors and no change on error, rules put over the API
 * (compile errors with line and column, nothing replaced; a good rule is used by the
 * next deal), simulate without sending, reports equal to what the pipeline did,
 * dealpushctl over the API, and hostile input on every endpoint.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define TOKEN "admin-test-token-0123456789"

struct fx {
	redisContext *rc;
	struct it_gwsim gw;
	struct it_notifier nt;
	int port, http;
	char dir[512];
};

static char body[1 << 17];

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

/* One request with the bearer token (NULL: none); the answer's body goes into body.
 * Returns the status or -1. */
static int
req(int port, const char *method, const char *path, const char *token,
    const char *data, size_t len)
{
	static struct it_resp resp;
	char hdr[256] = "";

	if (token != NULL)
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
	it_http(port, method, path, hdr, data, len, &resp);
	snprintf(body, sizeof(body), "%s", resp.body);
	return resp.status;
}

static int
api(struct fx *f, const char *method, const char *path, const char *data)
{
	return req(f->http, method, path, TOKEN, data, data ? strlen(data) : 0);
}

/* A subscriber in Chicago interested in laptops. */
static const char *
sub_json(const char *id, const char *phone, const char *tz, const char *channel)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
	    "{\"id\":\"%s\",\"phone\":\"%s\",\"channels\":[\"%s\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"%s\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}", id, phone, channel, tz);
	return buf;
}

struct count {
	struct it_gwsim *gw;
	int n;
};

static int
gw_count(void *arg)
{
	struct count *c = arg;

	return it_gwsim_count(c->gw, 201) >= c->n;
}

/* 1 when some accepted gwsim request's body contains s. */
static int
gw_saw(const struct it_gwsim *g, const char *s)
{
	cJSON *reqs = it_gwsim_requests(g), *o;
	int found = 0;

	cJSON_ArrayForEach(o, reqs) {
		cJSON *b = cJSON_GetObjectItem(o, "body");

		if (cJSON_IsString(b) && strstr(b->valuestring, s) != NULL)
			found = 1;
	}
	cJSON_Delete(reqs);
	return found;
}

/* 1 when sub's SMS consent is stored (its shard's consent:sms). */
static long long
consent_sms(redisContext *rc, const char *sub)
{
	char key[KEYS_SHARD_MAX];

	return it_int(rc, "HEXISTS %s %s", it_key_for("consent:sms", sub, key,
	    sizeof(key)), sub);
}

/* The state the admin API may change, as one string, to compare before and after. */
static void
snapshot(redisContext *rc, char *buf, size_t size)
{
	char sms[KEYS_SHARD_MAX];
	long long nsms = 0;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		keys_consent(k, CH_SMS, sms, sizeof(sms));
		nsms += it_int(rc, "HLEN %s", sms);
	}
	/* Every shard's subscribers, consents and change feed (one without a layout). */
	snprintf(buf, size, "subs=%lld sms=%lld changes=%lld rules=%lld version=%lld",
	    it_shards_sum_key(rc, "HLEN %s", KEYS_SUBSCRIBERS), nsms,
	    it_shards_sum_key(rc, "XLEN %s", KEYS_SUB_CHANGES), it_int(rc, "HLEN rules"),
	    it_int(rc, "EXISTS %s", keys_global(KEYS_G_RULES_VERSION)));
}

/* Starts gwsim and a notifier with the admin API on and a rule folder. */
/* Starts the notifier with its HTTP surface and admin API; waits for its port. */
static void
start_notifier(struct fx *f)
{
	char extra[2048];

	snprintf(extra, sizeof(extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n[rules]\n"
	    "dir = %s\n", f->dir);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-adm", extra);
}

static void
start(struct fx *f, const char *const subs)
{
	int i;

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	if (subs != NULL)
		assert_int_equal(it_import(f->port, subs), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	it_path(f->dir, sizeof(f->dir), "admin-rules", "");
	assert_int_equal(mkdir(f->dir, 0700), 0);
	start_notifier(f);
	assert_true(f->http > 0);
	/* Ready: Redis connected and the API rules loaded once. */
	for (i = 0; i < 300; i++) {
		if (api(f, "GET", "/v1/rules", NULL) == 200 &&
		    strstr(body, "\"api_version\":\"0\"") != NULL)
			break;
		it_sleep_ms(20);
	}
	assert_true(i < 300);
}

static void
auth_and_subscriber_crud_with_field_errors_and_no_change_on_error(void **state)
{
	struct fx *f = *state;
	char before[256], after[256], huge[100000];

	start(f, NULL);
	/* No token, a wrong token, a token of the wrong length. */
	assert_int_equal(req(f->http, "GET", "/v1/rules", NULL, NULL, 0), 401);
	assert_int_equal(req(f->http, "GET", "/v1/rules", "admin-test-token-0123456780",
	    NULL, 0), 401);
	assert_int_equal(req(f->http, "PUT", "/v1/subscribers/a", "x", "{}", 2), 401);

	/* Create, read, conflict. */
	assert_int_equal(api(f, "POST", "/v1/subscribers", sub_json("a", "+15125550100",
	    "America/Chicago", "sms")), 201);
	assert_int_equal(api(f, "POST", "/v1/subscribers", sub_json("a", "+15125550100",
	    "America/Chicago", "sms")), 409);
	assert_non_null(strstr(body, "\"field\":\"id\""));
	assert_int_equal(api(f, "GET", "/v1/subscribers/a", NULL), 200);
	assert_non_null(strstr(body, "+15125550100"));
	assert_int_equal(consent_sms(f->rc, "a"), 1);
	assert_int_equal(it_shards_sum_key(f->rc, "XLEN %s", KEYS_SUB_CHANGES), 1);

	/* Field-level errors change nothing. */
	snapshot(f->rc, before, sizeof(before));
	assert_int_equal(api(f, "PUT", "/v1/subscribers/a", sub_json("a", "5550100",
	    "America/Chicago", "sms")), 400);
	assert_non_null(strstr(body, "\"field\":\"phone\""));
	assert_int_equal(api(f, "PUT", "/v1/subscribers/a", sub_json("a", "+15125550100",
	    "Mars/Olympus", "sms")), 400);
	assert_non_null(strstr(body, "\"field\":\"timezone\""));
	assert_int_equal(api(f, "PUT", "/v1/subscribers/a", sub_json("a", "+15125550100",
	    "America/Chicago", "email")), 400);
	assert_non_null(strstr(body, "\"field\":\"channels\""));
	assert_int_equal(api(f, "PUT", "/v1/subscribers/b", sub_json("a", "+15125550100",
	    "America/Chicago", "sms")), 400);
	assert_non_null(strstr(body, "\"field\":\"id\""));
	/* Hostile input: bad JSON, wrong types, a huge body, path tricks. */
	assert_int_equal(api(f, "PUT", "/v1/subscribers/a", "{\"id\":"), 400);
	assert_non_null(strstr(body, "not valid JSON"));
	assert_int_equal(api(f, "PUT", "/v1/subscribers/a", "[1,2]"), 400);
	assert_int_equal(api(f, "PUT", "/v1/subscribers/a", "{\"id\":7}"), 400);
	assert_non_null(strstr(body, "\"field\":\"id\""));
	assert_int_equal(api(f, "PUT", "/v1/subscribers/a", "{\"id\":\"a\",\"phone\":1}"),
	    400);
	memset(huge, ' ', sizeof(huge));
	assert_int_equal(req(f->http, "PUT", "/v1/subscribers/a", TOKEN, huge,
	    sizeof(huge)), 413);
	assert_int_equal(api(f, "GET", "/v1/subscribers/..%2Fa", NULL), 400);
	assert_int_equal(api(f, "GET", "/v1/subscribers/a%00", NULL), 400);
	assert_int_equal(api(f, "GET", "/v1/subscribers/a%20b", NULL), 400);
	assert_non_null(strstr(body, "\"field\":\"path\""));
	assert_int_equal(api(f, "PATCH", "/v1/subscribers/a", "{}"), 405);
	assert_int_equal(api(f, "POST", "/v1/subscribers/a", "{}"), 405);
	assert_int_equal(api(f, "PUT", "/v1/rules/..", "x"), 400);
	assert_int_equal(api(f, "PUT", "/v1/rules/a.b", "x"), 400);
	assert_int_equal(api(f, "PUT", "/v1/rules/x", "rule x\n send sms\n"), 400);
	assert_int_equal(api(f, "POST", "/v1/deals/simulate", "{\"id\":1}"), 400);
	assert_non_null(strstr(body, "\"field\":\"id\""));
	assert_int_equal(api(f, "POST", "/v1/deals/simulate", "nope"), 400);
	assert_int_equal(api(f, "GET", "/v1/reports/deal/", NULL), 400);
	assert_int_equal(api(f, "GET", "/v1/reports/user/x", NULL), 404);
	assert_int_equal(api(f, "GET", "/v1/reports/deal/x?segment_price=abc", NULL), 400);
	assert_non_null(strstr(body, "\"field\":\"segment_price\""));
	snapshot(f->rc, after, sizeof(after));
	assert_string_equal(before, after);

	/* Update, delete, delete again. */
	assert_int_equal(api(f, "PUT", "/v1/subscribers/a", sub_json("a", "+15125550199",
	    "America/Chicago", "sms")), 200);
	assert_int_equal(api(f, "GET", "/v1/subscribers/a", NULL), 200);
	assert_non_null(strstr(body, "+15125550199"));
	assert_int_equal(api(f, "DELETE", "/v1/subscribers/a", NULL), 200);
	assert_int_equal(consent_sms(f->rc, "a"), 0);
	assert_int_equal(it_shards_sum_key(f->rc, "XLEN %s", KEYS_SUB_CHANGES), 3);
	assert_int_equal(api(f, "DELETE", "/v1/subscribers/a", NULL), 404);
	assert_int_equal(api(f, "GET", "/v1/subscribers/a", NULL), 404);
	assert_int_equal(it_shards_sum_key(f->rc, "XLEN %s", KEYS_SUB_CHANGES), 3);
}

static void
api_subscribers_and_rules_reach_the_pipeline_and_simulate_sends_nothing(void **state)
{
	struct fx *f = *state;
	struct count c;
	char before[256], after[256];
	int i;

	start(f, NULL);
	c.gw = &f->gw;
	/* A subscriber put over the API gets the next deal. */
	assert_int_equal(api(f, "PUT", "/v1/subscribers/s1", sub_json("s1",
	    "+15125550101", "America/Chicago", "sms")), 201);
	it_sleep_ms(1000);
	assert_int_equal(it_publish(f->rc, it_deal("d1", "laptop", 600)), 0);
	c.n = 1;
	assert_true(it_wait(gw_count, &c, 10000));
	assert_true(gw_saw(&f->gw, "Deal d1"));

	/* A rule with a compile error: 400 with line and column, nothing replaced. */
	snapshot(f->rc, before, sizeof(before));
	assert_int_equal(api(f, "PUT", "/v1/rules/promo",
	    "rule promo\n  when deal.colour = \"red\"\n  send sms\nend\n"), 400);
	assert_non_null(strstr(body, "\"file\":\"api/promo.rules\""));
	assert_non_null(strstr(body, "\"line\":2"));
	assert_non_null(strstr(body, "\"column\":8"));
	assert_non_null(strstr(body, "unknown field 'deal.colour'"));
	snapshot(f->rc, after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(api(f, "GET", "/v1/rules", NULL), 200);
	assert_null(strstr(body, "promo"));
	assert_int_equal(it_publish(f->rc, it_deal("d2", "laptop", 600)), 0);
	c.n = 2;
	assert_true(it_wait(gw_count, &c, 10000));
	assert_true(gw_saw(&f->gw, "Deal d2: $649.00"));

	/* ?check=1 compiles with the text and writes nothing: errors as a PUT's; a good
	 * text names its rules. */
	snapshot(f->rc, before, sizeof(before));
	assert_int_equal(api(f, "PUT", "/v1/rules/promo?check=1",
	    "rule promo\n  when deal.colour = \"red\"\n  send sms\nend\n"), 400);
	assert_non_null(strstr(body, "\"column\":8"));
	assert_int_equal(api(f, "PUT", "/v1/rules/promo?check=1",
	    "rule promo\n  audience interested\n  send sms\nend\n"), 200);
	assert_non_null(strstr(body, "\"compiles\":true"));
	assert_non_null(strstr(body, "\"name\":\"promo\""));
	assert_int_equal(api(f, "PUT", "/v1/rules/promo?check=yes", "rule promo\n"
	    "  send sms\nend\n"), 400);
	snapshot(f->rc, after, sizeof(after));
	assert_string_equal(before, after);

	/* A good rule: stored, listed, and the next deal uses its template. */
	assert_int_equal(api(f, "PUT", "/v1/rules/promo",
	    "rule promo\n  audience interested\n  send sms\n"
	    "  template sms \"PROMO {title} {link} Reply STOP to end\"\nend\n"), 201);
	assert_int_equal(it_int(f->rc, "HLEN rules"), 1);
	assert_int_equal(api(f, "GET", "/v1/rules", NULL), 200);
	assert_non_null(strstr(body, "\"name\":\"promo\""));
	assert_non_null(strstr(body, "\"file\":\"api/promo.rules\""));
	assert_int_equal(api(f, "GET", "/v1/rules/promo", NULL), 200);
	assert_non_null(strstr(body, "PROMO {title}"));
	assert_int_equal(it_publish(f->rc, it_deal("d3", "laptop", 600)), 0);
	c.n = 3;
	assert_true(it_wait(gw_count, &c, 10000));
	assert_true(gw_saw(&f->gw, "PROMO Deal d3 https://shop.example/d/d3"));

	/* A notifier without the HTTP surface uses the API rules too. */
	{
		struct it_notifier plain;

		char extra[700];

		snprintf(extra, sizeof(extra), "[rules]\ndir = %s\n", f->dir);
		assert_int_equal(it_stop_clean(&f->nt.proc), 0);
		assert_int_equal(it_notifier_start(&plain, f->port, f->gw.port, "it-plain",
		    extra), 0);
		it_sleep_ms(800);
		assert_int_equal(it_publish(f->rc, it_deal("d3b", "laptop", 600)), 0);
		c.n = 4;
		assert_true(it_wait(gw_count, &c, 10000));
		assert_true(gw_saw(&f->gw, "PROMO Deal d3b"));
		assert_int_equal(it_stop_clean(&plain.proc), 0);
		start_notifier(f);
		assert_true(f->http > 0);
		it_sleep_ms(800);
	}

	/* Simulate: the recipients and their texts, and gwsim sees nothing new. */
	assert_int_equal(api(f, "PUT", "/v1/subscribers/s2",
	    "{\"id\":\"s2\",\"phone\":\"+15125550102\",\"channels\":[\"sms\"],"
	    "\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}"), 201);
	it_sleep_ms(1000);
	i = it_gwsim_count(&f->gw, 0);
	assert_int_equal(api(f, "POST", "/v1/deals/simulate", it_deal("sim", "laptop", 600)),
	    200);
	assert_non_null(strstr(body, "\"matched\":1"));
	assert_non_null(strstr(body, "\"subscriber\":\"s1\""));
	assert_non_null(strstr(body, "\"rule\":\"promo\""));
	assert_non_null(strstr(body, "PROMO Deal sim https://shop.example/d/sim"));
	assert_non_null(strstr(body, "\"segments\":1"));
	assert_non_null(strstr(body, "\"encoding\":\"gsm7\""));
	assert_non_null(strstr(body, "\"no_consent\":1"));  /* s2: sms without consent */
	it_sleep_ms(500);
	assert_int_equal(it_gwsim_count(&f->gw, 0), i);
	assert_int_equal(it_int(f->rc, "EXISTS deal:sim"), 0);

	/* Quiet hours as deliver applies them: at 17:00 UTC it is 02:00 in Tokyo. A
	 * deal that outlasts the night waits for 08:00 there (23:00 UTC); one that ends
	 * first is counted as excluded by quiet hours. */
	assert_int_equal(api(f, "PUT", "/v1/subscribers/s3",
	    "{\"id\":\"s3\",\"phone\":\"+81312345678\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"Asia/Tokyo\","
	    "\"quiet_hours\":{\"start\":\"21:00\",\"end\":\"08:00\"},"
	    "\"interests\":{\"categories\":[\"laptop\"]}}"), 201);
	it_sleep_ms(1000);
	assert_int_equal(api(f, "POST", "/v1/deals/simulate", it_deal("sim2", "laptop",
	    86400)), 200);
	assert_non_null(strstr(body, "\"deferred\":{\"quiet_hours\":1}"));
	assert_non_null(strstr(body, "\"quiet_hours_until_expiry\":0"));
	assert_non_null(strstr(body, "T23:00:00Z"));
	assert_non_null(strstr(body, "\"send_at\":null"));       /* s1, in Chicago */
	assert_int_equal(api(f, "POST", "/v1/deals/simulate", it_deal("sim3", "laptop",
	    600)), 200);
	assert_non_null(strstr(body, "\"deferred\":{\"quiet_hours\":0}"));
	assert_non_null(strstr(body, "\"quiet_hours_until_expiry\":1"));
	assert_int_equal(it_gwsim_count(&f->gw, 0), i);
	assert_int_equal(api(f, "DELETE", "/v1/subscribers/s3", NULL), 200);

	/* Only API rules can be deleted; deleting one puts the default text back. */
	assert_int_equal(api(f, "DELETE", "/v1/rules/nope", NULL), 404);
	assert_int_equal(api(f, "DELETE", "/v1/rules/promo", NULL), 200);
	assert_int_equal(it_int(f->rc, "HLEN rules"), 0);
	assert_int_equal(it_publish(f->rc, it_deal("d4", "laptop", 600)), 0);
	c.n = 5;
	assert_true(it_wait(gw_count, &c, 10000));
	assert_true(gw_saw(&f->gw, "Deal d4: $649.00"));
}

static void
report_equals_the_pipeline_and_dealpushctl_speaks_the_api(void **state)
{
	struct fx *f = *state;
	char bin[512], url[128], file[1024], out[16384], rdir[512];
	const char *imp[] = { bin, "--api", url, "--token", TOKEN, "subscribers", "import",
	    file, NULL };
	const char *rep[] = { bin, "--api", url, "--token", TOKEN, "report", "deal", "r1",
	    NULL };
	const char *chk[] = { bin, "rules", "check", rdir, NULL };
	const char *sim[] = { bin, "--api", url, "--token", TOKEN, "simulate", file, NULL };
	struct count c;
	FILE *fp;

	start(f, NULL);
	c.gw = &f->gw;
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->http);

	/* Import over the API: the bad lines by number, the rest imported. */
	it_path(file, sizeof(file), "subs", ".jsonl");
	fp = fopen(file, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", sub_json("u1", "+15125550111", "America/Chicago", "sms"));
	fprintf(fp, "%s\n", sub_json("u2", "555", "America/Chicago", "sms"));
	fprintf(fp, "# a comment\n%s\n", sub_json("u3", "+15125550113", "America/Chicago",
	    "sms"));
	fprintf(fp, "{\"id\": \n");
	fprintf(fp, "%s\n", sub_json("u4", "+15125550114", "America/Chicago", "sms"));
	fclose(fp);
	assert_int_equal(it_run(imp, out, sizeof(out)), 1);
	assert_non_null(strstr(out, ".jsonl:2: error: phone"));
	assert_non_null(strstr(out, ".jsonl:5: error:"));
	assert_non_null(strstr(out, "imported 3 subscribers, 2 bad lines"));
	assert_int_equal(it_shards_sum_key(f->rc, "HLEN %s", KEYS_SUBSCRIBERS), 3);

	/* 3 subscribers, one deal: the report says sent 3. */
	it_sleep_ms(1000);
	assert_int_equal(it_publish(f->rc, it_deal("r1", "laptop", 600)), 0);
	c.n = 3;
	assert_true(it_wait(gw_count, &c, 10000));
	it_sleep_ms(500);
	assert_int_equal(api(f, "GET", "/v1/reports/deal/r1?segment_price=0.01", NULL), 200);
	assert_non_null(strstr(body, "\"matched\":3"));
	assert_non_null(strstr(body, "\"admitted\":3"));
	assert_non_null(strstr(body, "\"sent\":3"));
	assert_non_null(strstr(body, "\"sms_segments\":3"));
	assert_non_null(strstr(body, "\"sms_cost\":0.03"));
	assert_non_null(strstr(body, "\"holdout\":null"));
	assert_int_equal(api(f, "GET", "/v1/reports/deal/r0", NULL), 404);
	assert_int_equal(it_run(rep, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "METRIC"));
	assert_non_null(strstr(out, "sent                                     3"));

	/* simulate prints a table. */
	it_path(file, sizeof(file), "deal", ".json");
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs(it_deal("s9", "laptop", 600), fp);
	fclose(fp);
	assert_int_equal(it_run(sim, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "matched 3"));
	assert_non_null(strstr(out, "u1"));
	assert_non_null(strstr(out, "outcomes: sent 3, delayed 0, skipped: quiet_hours 0,"));

	/* rules check: compiler-style errors with line and column, exit 1. */
	it_path(rdir, sizeof(rdir), "ctl-rules", "");
	assert_int_equal(mkdir(rdir, 0700), 0);
	snprintf(file, sizeof(file), "%s/bad.rules", rdir);
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs("rule bad\n  when deal.price > \"x\"\n  send sms\nend\n", fp);
	fclose(fp);
	assert_int_equal(it_run(chk, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "bad.rules:2:"));
	assert_non_null(strstr(out, "error:"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    auth_and_subscriber_crud_with_field_errors_and_no_change_on_error, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    api_subscribers_and_rules_reach_the_pipeline_and_simulate_sends_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    report_equals_the_pipeline_and_dealpushctl_speaks_the_api, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}
