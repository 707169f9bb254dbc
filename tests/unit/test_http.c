/*
 * test_http.c: the HTTP server's routes, limits, bearer token and error format
 * (notifier/http.c, stage: http).
 *
 * Each test starts the server on 127.0.0.1 with a kernel-chosen port in its own
 * event_base and drives it with raw-socket clients on the same loop, so that it can send
 * exactly the bytes it means (path tricks, huge bodies, a byte a second). Every wait has
 * a limit that fails the test; everything is freed in the teardown.
 */
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "http.h"
#include "metrics.h"

#include "http_fx.h"

/* --- promtool --- */

static int have_promtool(void)
{
	return system("command -v promtool >/dev/null 2>&1") == 0;
}

static void assert_promtool_accepts(const char *text, size_t len)
{
	char in[] = "/tmp/dp-http-metrics-XXXXXX", out[64], cmd[256], msg[4096] = "";
	FILE *fp;
	size_t n;
	int fd, rc;

	if (!have_promtool()) {
		print_message("promtool not installed (Debian package prometheus): "
		    "skipping the promtool check\n");
		skip();
	}
	fd = mkstemp(in);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	snprintf(out, sizeof(out), "%s.out", in);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s 2>&1", in, out);
	rc = system(cmd);
	if ((fp = fopen(out, "r")) != NULL) {
		n = fread(msg, 1, sizeof(msg) - 1, fp);
		msg[n] = '\0';
		fclose(fp);
	}
	unlink(in);
	unlink(out);
	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
		fail_msg("promtool check metrics failed (status %d):\n%s", rc, msg);
}

/* --- tests --- */

static void healthz_answers_200_with_the_daemon_state(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	cJSON *j;

	start(fx);
	c = get(fx, "/healthz", NULL);
	assert_int_equal(c->status, 200);
	j = cJSON_Parse(c->body);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "ok");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "redis_ok")));
	assert_int_equal(cJSON_GetObjectItem(j, "stream_lag")->valueint, 12);
	assert_int_equal(cJSON_GetObjectItem(j, "rules_loaded")->valueint, 3);
	assert_null(cJSON_GetObjectItem(j, "detail"));
	cJSON_Delete(j);
	/* HEAD gets the headers only. */
	c = request(fx, "HEAD", "/healthz", NULL, NULL, 0);
	assert_int_equal(c->status, 200);
	assert_int_equal(c->body_len, 0);
}

static void healthz_answers_503_when_unhealthy_or_unknown(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	cJSON *j;

	fx->healthy = 0;
	fx->detail = "redis unreachable";
	start(fx);
	c = get(fx, "/healthz", NULL);
	assert_int_equal(c->status, 503);
	j = cJSON_Parse(c->body);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "unhealthy");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "redis_ok")));
	assert_string_equal(cJSON_GetObjectItem(j, "detail")->valuestring,
	    "redis unreachable");
	cJSON_Delete(j);
	/* No health callback at all: not known to be healthy. */
	http_free(fx->h);
	fx->cfg.health = NULL;
	start(fx);
	c = get(fx, "/healthz", NULL);
	assert_int_equal(c->status, 503);
	assert_non_null(strstr(c->body, "\"unhealthy\""));
}

static void metrics_endpoint_serves_text_that_promtool_accepts(void **state)
{
	struct fx *fx = *state;
	struct evbuffer *expect = evbuffer_new();
	struct client *c;
	char ct[128];

	assert_non_null(expect);
	metrics_inc(fx->m, METRIC_DEALS_INGESTED, NULL, 5);
	metrics_inc(fx->m, METRIC_PUSHES, METRICS_L("sent", "sms", "twilio"), 4);
	metrics_inc(fx->m, METRIC_SKIPS, METRICS_L("quiet_hours"), 1);
	metrics_observe(fx->m, METRIC_SEND_LATENCY, METRICS_L("twilio"), 0.2);
	metrics_set(fx->m, METRIC_STREAM_LAG, METRICS_L("pushes"), 9);
	metrics_set(fx->m, METRIC_GATEWAY_BREAKER_STATE, METRICS_L("twilio"), 1);
	start(fx);
	c = get(fx, "/metrics", NULL);
	assert_int_equal(c->status, 200);
	assert_non_null(resp_header(c, "Content-Type", ct, sizeof(ct)));
	assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
	assert_int_equal(metrics_render(fx->m, expect), 0);
	assert_int_equal(c->body_len, evbuffer_get_length(expect));
	assert_memory_equal(c->body, evbuffer_pullup(expect, -1), c->body_len);
	evbuffer_free(expect);
	assert_non_null(strstr(c->body, "dealpush_pushes_total{outcome=\"sent\","
	    "channel=\"sms\",gateway=\"twilio\"} 4\n"));
	assert_promtool_accepts(c->body, c->body_len);
}

static void metrics_endpoint_without_a_registry_answers_503(void **state)
{
	struct fx *fx = *state;

	fx->cfg.metrics = NULL;
	start(fx);
	assert_json_error(get(fx, "/metrics", NULL), 503, NULL);
}

static void admin_routes_need_the_bearer_token(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	char v[128];

	start(fx);
	/* Missing. */
	c = get(fx, "/v1/ping", NULL);
	assert_json_error(c, 401, NULL);
	assert_string_equal(c->body, "{\"error\":\"unauthorized\"}");
	assert_non_null(resp_header(c, "WWW-Authenticate", v, sizeof(v)));
	assert_int_equal(strncmp(v, "Bearer", 6), 0);
	/* Wrong, same length. */
	c = get(fx, "/v1/ping", "Authorization: Bearer s3cret-token-0123456780\r\n");
	assert_json_error(c, 401, NULL);
	/* Wrong length: a prefix of the token, and the token with one byte more. */
	assert_json_error(get(fx, "/v1/ping", "Authorization: Bearer s3cret-token\r\n"), 401,
	    NULL);
	assert_json_error(get(fx, "/v1/ping", "Authorization: Bearer " TOKEN "x\r\n"), 401,
	    NULL);
	assert_json_error(get(fx, "/v1/ping", "Authorization: Bearer \r\n"), 401, NULL);
	/* Another scheme. */
	assert_json_error(get(fx, "/v1/ping", "Authorization: Basic " TOKEN "\r\n"), 401,
	    NULL);
	assert_json_error(get(fx, "/v1/ping", "Authorization: " TOKEN "\r\n"), 401, NULL);
	/* Right (the scheme is case-insensitive). */
	c = get(fx, "/v1/ping", "Authorization: Bearer " TOKEN "\r\n");
	assert_int_equal(c->status, 200);
	assert_string_equal(c->body, "{\"pong\":true}");
	c = get(fx, "/v1/ping", "Authorization: bearer   " TOKEN "\r\n");
	assert_int_equal(c->status, 200);
	/* A route with a role outside /v1/ needs it too. */
	assert_json_error(request(fx, "POST", "/secret", NULL, "x", 1), 401, NULL);
	c = request(fx, "POST", "/secret", "Authorization: Bearer " TOKEN "\r\n", "x", 1);
	assert_int_equal(c->status, 200);
	/* Under /v1/ the token is checked before routing: no route probing without it. */
	assert_json_error(get(fx, "/v1/nothing-here", NULL), 401, NULL);
	assert_json_error(get(fx, "/v1/nothing-here", "Authorization: Bearer " TOKEN "\r\n"),
	    404, "path");
	/* The public routes need nothing. */
	assert_int_equal(get(fx, "/healthz", NULL)->status, 200);
}

static void admin_api_without_a_token_answers_503(void **state)
{
	struct fx *fx = *state;
	struct client *c;

	fx->cfg.admin_token = NULL;
	start(fx);
	c = get(fx, "/v1/ping", "Authorization: Bearer " TOKEN "\r\n");
	assert_json_error(c, 503, NULL);
	assert_string_equal(c->body, "{\"error\":\"admin API disabled\"}");
	assert_json_error(get(fx, "/v1/anything", NULL), 503, NULL);
	assert_json_error(request(fx, "POST", "/secret", NULL, "x", 1), 503, NULL);
	assert_int_equal(get(fx, "/healthz", NULL)->status, 200);
}

static void body_over_the_cap_gets_413(void **state)
{
	struct fx *fx = *state;
	static char big[4 * HTTP_MAX_BODY_DEFAULT];
	size_t cap = HTTP_MAX_BODY_DEFAULT;
	struct client *c;
	char expect[32];

	memset(big, 'b', sizeof(big));
	start(fx);
	/* Exactly the cap is fine, and reaches the handler whole. */
	c = request(fx, "POST", "/echo", NULL, big, cap);
	assert_int_equal(c->status, 200);
	snprintf(expect, sizeof(expect), "%zu:", cap);
	assert_int_equal(strncmp(c->body, expect, strlen(expect)), 0);
	assert_int_equal(c->body_len, strlen(expect) + cap);
	/* One byte more, and four times more. */
	c = request(fx, "POST", "/echo", NULL, big, cap + 1);
	assert_int_equal(c->status, 413);
	c = request(fx, "POST", "/echo", NULL, big, 4 * cap);
	assert_int_equal(c->status, 413);
	/* Chunked: within the cap it is served; growing past it, the connection is
	 * dropped (libevent answers nothing), never served. */
	c = chunked_request(fx, "/echo", "hello", 5);
	assert_int_equal(c->status, 200);
	assert_string_equal(c->body, "5:hello");
	c = chunked_request(fx, "/echo", big, 2 * cap);
	assert_true(c->eof);
	assert_true(!c->complete || c->status == 413);
	/* A small configured cap. */
	http_free(fx->h);
	fx->cfg.max_body = 10;
	start(fx);
	assert_int_equal(request(fx, "POST", "/echo", NULL, "0123456789", 10)->status, 200);
	assert_int_equal(request(fx, "POST", "/echo", NULL, "0123456789a", 11)->status, 413);
	/* Binary bodies are copied whole, NULs included. */
	c = request(fx, "POST", "/echo", NULL, "a\0b", 3);
	assert_int_equal(c->status, 200);
	assert_int_equal(c->body_len, 5);
	assert_memory_equal(c->body, "3:a\0b", 5);
}

static void headers_over_the_cap_are_refused(void **state)
{
	struct fx *fx = *state;
	char hdr[1200];
	struct client *c;

	fx->cfg.max_headers = 1024;
	start(fx);
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, "X-Big: ", 7);
	memset(hdr + 7, 'h', 1100);
	memcpy(hdr + 1107, "\r\n", 2);
	c = get(fx, "/healthz", hdr);
	assert_int_equal(c->status, 400);     /* libevent's answer */
	assert_int_equal(get(fx, "/healthz", NULL)->status, 200);
}

static void path_tricks_get_400(void **state)
{
	static const char req_nul[] = "GET /items/a\0b HTTP/1.1\r\nConnection: close\r\n\r\n";
	static const char *const bad[] = {
		"/v1/../healthz", "/healthz/..", "/..", "/a/../../etc/passwd", "//healthz",
		"/items//x", "/items/%2e%2e/x", "/items/%2E%2e", "/items/a%2fb", "/items/a%2Fb",
		"/items/a%00b", "/items/a%5cb", "/items/a%0ab", "/items/a%7fb", "/%2f%2fhealthz",
	};
	struct fx *fx = *state;
	char path[1100];
	struct client *c;
	size_t i;

	start(fx);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = get(fx, bad[i], "Authorization: Bearer " TOKEN "\r\n");
		if (c->status != 400)
			fail_msg("%s: status %d, not 400", bad[i], c->status);
		assert_json_error(c, 400, "path");
	}
	/* 1024 bytes is the longest path taken; 1025 is refused. */
	memset(path, 'p', sizeof(path));
	memcpy(path, "/items/", 7);
	path[1024] = '\0';
	c = get(fx, path, NULL);
	assert_int_equal(c->status, 200);
	path[1024] = 'p';
	path[1025] = '\0';
	assert_json_error(get(fx, path, NULL), 400, "path");
	/* A raw NUL in the request line is refused (by libevent's parser or by us). */
	c = client_new(fx, req_nul, sizeof(req_nul) - 1);
	run_until(fx, client_closed, c, WAIT_S);
	assert_true(c->complete);
	assert_int_equal(c->status, 400);
	/* A malformed query string. */
	assert_json_error(get(fx, "/q?=x", NULL), 400, "query");
}

static void unknown_path_is_404_and_wrong_method_is_405(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	char allow[128];

	start(fx);
	assert_json_error(get(fx, "/nope", NULL), 404, "path");
	assert_json_error(get(fx, "/", NULL), 404, "path");
	/* Exact routes take no rest; prefixes match on a '/' boundary only. */
	assert_json_error(get(fx, "/healthz/extra", NULL), 404, "path");
	assert_json_error(get(fx, "/itemsX", NULL), 404, "path");
	c = request(fx, "POST", "/healthz", NULL, "", 0);
	assert_json_error(c, 405, "method");
	assert_non_null(resp_header(c, "Allow", allow, sizeof(allow)));
	assert_string_equal(allow, "GET, HEAD");
	c = request(fx, "DELETE", "/metrics", NULL, NULL, 0);
	assert_json_error(c, 405, "method");
	c = request(fx, "POST", "/items/x", NULL, "", 0);
	assert_json_error(c, 405, "method");
	assert_non_null(resp_header(c, "Allow", allow, sizeof(allow)));
	assert_string_equal(allow, "PUT, DELETE");
	c = request(fx, "OPTIONS", "/echo", NULL, NULL, 0);
	assert_json_error(c, 405, "method");
	assert_non_null(resp_header(c, "Allow", allow, sizeof(allow)));
	assert_string_equal(allow, "POST");
}

static void handlers_get_the_decoded_path_rest_query_and_headers(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	char v[64];

	start(fx);
	c = get(fx, "/items/abc%20d?x=1", "X-Test: hello\r\n");
	assert_int_equal(c->status, 200);
	assert_string_equal(c->body, "/items/abc d|abc d|hello");
	/* The longest prefix wins. */
	c = request(fx, "PUT", "/items/x/y", NULL, "", 0);
	assert_string_equal(c->body, "/items/x/y|y|");
	c = get(fx, "/items", NULL);
	assert_string_equal(c->body, "/items||");
	c = get(fx, "/q?name=a%20b+c&name=second", NULL);
	assert_string_equal(c->body, "a b c");
	c = get(fx, "/q", NULL);
	assert_string_equal(c->body, "(none)");
	/* The absolute form of the target is read the same way; "*" is not a path. */
	c = get(fx, "http://test/q?name=abs", NULL);
	assert_string_equal(c->body, "abs");
	assert_json_error(request(fx, "OPTIONS", "*", NULL, NULL, 0), 400, "path");
	/* http_error names the field; added headers go out, injected ones do not. */
	c = get(fx, "/fielderr", NULL);
	assert_json_error(c, 422, "email");
	assert_string_equal(c->body,
	    "{\"error\":\"bob is not an email address\",\"field\":\"email\"}");
	assert_non_null(resp_header(c, "X-Good", v, sizeof(v)));
	assert_null(resp_header(c, "Injected", v, sizeof(v)));
	assert_non_null(resp_header(c, "Cache-Control", v, sizeof(v)));
	assert_string_equal(v, "no-store");
}

static void handler_may_answer_later(void **state)
{
	struct fx *fx = *state;
	struct client *c;

	start(fx);
	c = get(fx, "/later", NULL);
	assert_int_equal(c->status, 201);
	assert_string_equal(c->body, "{\"answered\":\"later\"}");
}

static int held_set(void *arg)
{
	return ((struct fx *)arg)->held != NULL;
}

static void client_gone_before_a_late_answer_is_harmless(void **state)
{
	struct fx *fx = *state;
	struct client *c;

	start(fx);
	c = client_new(fx, REQ_HOLD, strlen(REQ_HOLD));
	run_until(fx, held_set, fx, WAIT_S);
	bufferevent_free(c->bev);
	c->bev = NULL;
	run_for(fx, 0.1);
	answer_later(-1, 0, fx);
	run_for(fx, 0.05);
	/* And the server still answers. */
	assert_int_equal(get(fx, "/healthz", NULL)->status, 200);
}

static void free_answers_requests_still_held(void **state)
{
	struct fx *fx = *state;
	struct client *c;

	start(fx);
	c = client_new(fx, REQ_HOLD, strlen(REQ_HOLD));
	run_until(fx, held_set, fx, WAIT_S);
	http_free(fx->h);
	fx->h = NULL;
	fx->held = NULL;
	run_until(fx, client_closed, c, WAIT_S);
}

static int both_closed(void *arg)
{
	struct client **c = arg;

	return c[0]->eof && c[1]->eof;
}

static void slow_clients_are_dropped_at_the_timeout_without_blocking_others(void **state)
{
	struct fx *fx = *state;
	struct client *slow[2], *c;
	double t0;

	fx->cfg.timeout_ms = 2000;
	start(fx);
	t0 = fx_now(fx);
	/* One connects and says nothing; one sends a header byte a second, which keeps
	 * an idle timeout from ever firing. */
	slow[0] = client_new(fx, NULL, 0);
	slow[1] = client_new(fx, NULL, 0);
	client_trickle_start(slow[1], "GET /healthz HTTP/1.1\r\nHost: test\r\n"
	    "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 1000);
	run_for(fx, 0.3);
	/* A normal request meanwhile is answered at once. */
	c = get(fx, "/healthz", NULL);
	assert_int_equal(c->status, 200);
	assert_true(c->t_complete - t0 < 1.0);
	assert_false(slow[0]->eof);
	assert_false(slow[1]->eof);
	/* Both are dropped at the deadline, unanswered. */
	run_until(fx, both_closed, slow, WAIT_S);
	assert_true(slow[0]->t_eof - t0 > 1.8);
	assert_true(slow[0]->t_eof - t0 < 3.5);
	assert_true(slow[1]->t_eof - t0 > 1.8);
	assert_true(slow[1]->t_eof - t0 < 3.5);
	assert_true(slow[1]->trickle_pos >= 2);
	assert_int_equal(evbuffer_get_length(slow[0]->in), 0);
	assert_int_equal(evbuffer_get_length(slow[1]->in), 0);
	assert_int_equal(get(fx, "/healthz", NULL)->status, 200);
}

static int first_response_in(void *arg)
{
	return ((struct client *)arg)->complete;
}

static void keep_alive_connection_gets_a_new_deadline_per_request(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	double t;

	fx->cfg.timeout_ms = 1000;
	start(fx);
	/* Keep-alive: the first request is answered and the connection stays open. */
	c = client_new(fx, REQ_KEEPALIVE, strlen(REQ_KEEPALIVE));
	run_until(fx, first_response_in, c, WAIT_S);
	assert_int_equal(c->status, 200);
	assert_false(c->eof);
	t = fx_now(fx);
	/* The second request trickles in a byte every 300 ms: dropped ~1 s later. */
	client_trickle_start(c, REQ_KEEPALIVE, 300);
	run_until(fx, client_closed, c, WAIT_S);
	assert_true(c->t_eof - t > 0.8);
	assert_true(c->t_eof - t < 2.0);
	assert_true(c->trickle_pos >= 3);
}

static void a_full_pool_evicts_the_oldest_connection_without_a_whole_head(void **state)
{
	struct fx *fx = *state;
	struct client *idle[2], *c, *d;

	fx->cfg.max_connections = 2;
	fx->cfg.max_per_address = 3;
	start(fx);
	idle[0] = client_new(fx, NULL, 0);
	run_for(fx, 0.1);
	idle[1] = client_new(fx, NULL, 0);
	run_for(fx, 0.1);
	/* The pool is full: a newcomer takes the place of the oldest connection that
	 * has not sent a whole request head. */
	c = client_new(fx, NULL, 0);
	run_until(fx, client_closed, idle[0], WAIT_S);
	assert_true(idle[0]->eof);
	assert_false(idle[0]->complete);
	assert_false(idle[1]->eof);
	assert_false(c->eof);
	/* A request that comes while the pool is full is served; the room is made by
	 * closing the next-oldest idle one, never the one just served. */
	d = client_new(fx, REQ_KEEPALIVE, strlen(REQ_KEEPALIVE));
	run_until(fx, first_response_in, d, WAIT_S);
	assert_int_equal(d->status, 200);
	run_until(fx, client_closed, idle[1], WAIT_S);
	assert_true(idle[1]->eof);
	assert_false(c->eof);
	assert_false(d->eof);
	/* Once they go, others are served again. */
	bufferevent_free(c->bev);
	c->bev = NULL;
	run_for(fx, 0.2);
	assert_int_equal(get(fx, "/healthz", NULL)->status, 200);
}

static void clients_that_vanish_at_once_leave_nothing_behind(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	int i;

	start(fx);
	/* Closed before, while and after evhttp reads them: each connection is forgotten
	 * exactly once (the leak checkers and sanitizers watch this test). */
	for (i = 0; i < 20; i++) {
		c = client_new(fx, i % 2 ? REQ_KEEPALIVE : NULL,
		    i % 2 ? strlen(REQ_KEEPALIVE) : 0);
		if (i % 3 == 0)
			run_for(fx, 0.001);
		bufferevent_free(c->bev);
		c->bev = NULL;
		fx->nc--;
		client_free(c);
	}
	run_for(fx, 0.2);
	assert_int_equal(get(fx, "/healthz", NULL)->status, 200);
}

static void bad_listen_address_is_reported(void **state)
{
	struct fx *fx = *state;
	struct err e;

	fx->cfg.listen_addr = "256.1.1.1";
	assert_null(http_new(fx->base, &fx->cfg, &e));
	assert_int_equal(e.kind, ERR_PERM);
	assert_string_equal(e.field, "listen");
	fx->cfg.listen_addr = NULL;
	fx->cfg.timeout_ms = -1;
	assert_null(http_new(fx->base, &fx->cfg, &e));
	assert_int_equal(e.kind, ERR_INPUT);
	http_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(healthz_answers_200_with_the_daemon_state, setup, teardown),
		cmocka_unit_test_setup_teardown(healthz_answers_503_when_unhealthy_or_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(metrics_endpoint_serves_text_that_promtool_accepts, setup, teardown),
		cmocka_unit_test_setup_teardown(metrics_endpoint_without_a_registry_answers_503, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_routes_need_the_bearer_token, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_api_without_a_token_answers_503, setup, teardown),
		cmocka_unit_test_setup_teardown(body_over_the_cap_gets_413, setup, teardown),
		cmocka_unit_test_setup_teardown(headers_over_the_cap_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(path_tricks_get_400, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_path_is_404_and_wrong_method_is_405, setup, teardown),
		cmocka_unit_test_setup_teardown(handlers_get_the_decoded_path_rest_query_and_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(handler_may_answer_later, setup, teardown),
		cmocka_unit_test_setup_teardown(client_gone_before_a_late_answer_is_harmless, setup, teardown),
		cmocka_unit_test_setup_teardown(free_answers_requests_still_held, setup, teardown),
		cmocka_unit_test_setup_teardown(slow_clients_are_dropped_at_the_timeout_without_blocking_others, setup, teardown),
		cmocka_unit_test_setup_teardown(keep_alive_connection_gets_a_new_deadline_per_request, setup, teardown),
		cmocka_unit_test_setup_teardown(a_full_pool_evicts_the_oldest_connection_without_a_whole_head, setup, teardown),
		cmocka_unit_test_setup_teardown(clients_that_vanish_at_once_leave_nothing_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_listen_address_is_reported, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	/* TEST_FILTER=pattern runs only the matching tests (while debugging one). */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
