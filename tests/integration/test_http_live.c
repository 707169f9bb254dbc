/*
 * test_http_live.c: the running notifier's HTTP surface: /healthz follows Redis and
 * /metrics counts what the pipeline did, in a format promtool accepts.
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
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;
	int port, http;
};

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
	it_stop(&f->redis, SIGKILL, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

struct get {
	int port;
	const char *path, *want;
	int status;
};

static int
get_has(void *arg)
{
	struct get *g = arg;
	static char body[1 << 16];

	return it_http_get(g->port, g->path, body, sizeof(body)) == g->status &&
	    (g->want == NULL || strstr(body, g->want) != NULL);
}

/* Starts a private redis, gwsim and a notifier with its HTTP surface on. */
static void
start(struct fx *f, const char *dir)
{
	char line[512];

	f->port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	snprintf(line, sizeof(line),
	    "{\"id\":\"s-1\",\"phone\":\"+15125550100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n");
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-h", NULL);
	assert_true(f->http > 0);
}

static void
healthz_follows_redis_and_metrics_count_the_pipeline(void **state)
{
	struct fx *f = *state;
	char dir[512], path[512], cmd[1200];
	static char body[1 << 16];
	struct get g;

	it_path(dir, sizeof(dir), "redis-http", "");
	start(f, dir);
	g.port = f->http;
	g.path = "/healthz";
	g.want = "\"ok\"";
	g.status = 200;
	assert_true(it_wait(get_has, &g, 5000));

	assert_int_equal(it_publish(f->rc, it_deal("m-1", "laptop", 600)), 0);
	assert_int_equal(it_publish(f->rc, "not json"), 0);
	g.path = "/metrics";
	g.want = "dealpush_pushes_total{outcome=\"sent\",channel=\"sms\",gateway=\"twilio\"} 1";
	assert_true(it_wait(get_has, &g, 10000));
	g.want = "dealpush_deals_dead_total{reason=\"not_json\"} 1";
	assert_true(it_wait(get_has, &g, 5000));
	g.want = "dealpush_stream_lag{stream=\"pushes\"} 0";
	assert_true(it_wait(get_has, &g, 5000));
	assert_int_equal(it_http_get(f->http, "/metrics", body, sizeof(body)), 200);
	assert_non_null(strstr(body, "dealpush_deals_ingested_total 1"));
	assert_non_null(strstr(body, "dealpush_send_latency_seconds_count{gateway=\"twilio\"} 1"));
	assert_non_null(strstr(body, "dealpush_gateway_breaker_state{gateway=\"twilio\"} 0"));
	assert_non_null(strstr(body, "dealpush_rule_reloads_total{result=\"ok\"} 1"));

	/* promtool accepts the exposition. */
	it_path(path, sizeof(path), "metrics", ".txt");
	{
		FILE *fp = fopen(path, "w");
		assert_non_null(fp);
		fputs(body, fp);
		fclose(fp);
	}
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s.out 2>&1", path, path);
	assert_int_equal(system(cmd), 0);

	/* Redis gone: unhealthy (503) while the process lives on. */
	it_stop(&f->redis, SIGKILL, 2000);
	g.path = "/healthz";
	g.want = "redis unreachable";
	g.status = 503;
	assert_true(it_wait(get_has, &g, 5000));
	/* Back: healthy again. */
	assert_int_equal(it_redis_start(&f->redis, dir, f->port, 1), f->port);
	g.want = "\"ok\"";
	g.status = 200;
	assert_true(it_wait(get_has, &g, 10000));
}

static void
unknown_paths_and_admin_without_token_are_refused(void **state)
{
	struct fx *f = *state;
	char dir[512];
	static char body[4096];

	it_path(dir, sizeof(dir), "redis-http", "");
	start(f, dir);
	assert_int_equal(it_http_get(f->http, "/nope", body, sizeof(body)), 404);
	assert_int_equal(it_http_get(f->http, "/../etc/passwd", body, sizeof(body)), 400);
	/* No admin token configured: named tokens only; without one the admin API is
	 * refused, not open. */
	assert_int_equal(it_http_get(f->http, "/v1/rules", body, sizeof(body)), 401);
	assert_int_equal(it_http_post(f->http, "/healthz", "{}"), 405);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    healthz_follows_redis_and_metrics_count_the_pipeline, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    unknown_paths_and_admin_without_token_are_refused, setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("http_live", tests, NULL, NULL);
}
