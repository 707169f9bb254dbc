/*
 * test_http.c: the HTTP server's routes, limits, auth and error format (notifier/http.c,
 * stage: http).
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

#define TOKEN "s3cret-token-0123456789"
#define MAX_CLIENTS 32
#define WAIT_S 8.0
#define REQ_HOLD "GET /later?hold=1 HTTP/1.1\r\nHost: t\r\n\r\n"
#define REQ_KEEPALIVE "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"

struct fx;

/* A raw client: sends `data` at once and `trickle` a byte per tick, keeps every byte it
 * receives, and parses the first response. */
struct client {
	struct fx *fx;
	struct bufferevent *bev;
	struct evbuffer *in;
	char *trickle;
	size_t trickle_len, trickle_pos;
	struct event *tick;
	struct timeval every;
	int head;                       /* a HEAD request: the response has no body */
	int eof;                        /* the server closed (or reset) the connection */
	double t_eof;                   /* seconds since the fixture started */
	int complete;                   /* a whole response arrived */
	double t_complete;
	int status;
	char headers[4096];
	char *body;
	size_t body_len;
};

struct fx {
	struct event_base *base;
	struct event *tick;             /* wakes the loop so waits can check the time */
	struct metrics *m;
	struct http *h;
	struct http_config cfg;
	struct client *c[MAX_CLIENTS];
	size_t nc;
	struct timespec t0;
	int healthy;
	const char *detail;
	struct http_req *held;          /* an async handler's request */
	struct event *later;            /* answers held */
};

static double fx_now(const struct fx *fx)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - fx->t0.tv_sec) + (t.tv_nsec - fx->t0.tv_nsec) / 1e9;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int fake_health(void *arg, struct http_health *out)
{
	struct fx *fx = arg;

	out->redis_ok = fx->healthy;
	out->stream_lag = 12;
	out->rules_loaded = 3;
	out->detail = fx->detail;
	return fx->healthy;
}

static int setup(void **state)
{
	static const struct timeval every = { 0, 20000 };
	struct fx *fx = calloc(1, sizeof(*fx));
	struct err e;

	if (fx == NULL)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &fx->t0);
	fx->base = event_base_new();
	fx->m = metrics_new(0, &e);
	if (fx->base == NULL || fx->m == NULL)
		return -1;
	fx->tick = event_new(fx->base, -1, EV_PERSIST, on_tick, fx);
	event_add(fx->tick, &every);
	fx->healthy = 1;
	fx->cfg.listen_addr = "127.0.0.1";
	fx->cfg.port = 0;
	fx->cfg.timeout_ms = 5000;
	fx->cfg.admin_token = TOKEN;
	fx->cfg.health = fake_health;
	fx->cfg.health_arg = fx;
	fx->cfg.metrics = fx->m;
	*state = fx;
	return 0;
}

static void client_free(struct client *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->tick != NULL)
		event_free(c->tick);
	evbuffer_free(c->in);
	free(c->trickle);
	free(c->body);
	free(c);
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	size_t i;

	http_free(fx->h);
	for (i = 0; i < fx->nc; i++)
		client_free(fx->c[i]);
	if (fx->later != NULL)
		event_free(fx->later);
	event_free(fx->tick);
	metrics_free(fx->m);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

/* Runs the loop until cond(arg) holds; fails the test after limit seconds. */
static void run_until(struct fx *fx, int (*cond)(void *), void *arg, double limit)
{
	double start = fx_now(fx);

	while (!cond(arg)) {
		if (fx_now(fx) - start > limit)
			fail_msg("condition not reached within %.1f s", limit);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
}

/* Runs the loop for s seconds. */
static int never(void *arg)
{
	(void)arg;
	return 0;
}

static void run_for(struct fx *fx, double s)
{
	double start = fx_now(fx);

	while (fx_now(fx) - start < s)
		event_base_loop(fx->base, EVLOOP_ONCE);
	(void)never;
}

static int client_done(void *arg)
{
	struct client *c = arg;

	return c->complete || c->eof;
}

static int client_closed(void *arg)
{
	return ((struct client *)arg)->eof;
}

/* Where needle (n bytes) first occurs in hay (len bytes), or NULL. */
static char *find_bytes(char *hay, size_t len, const char *needle, size_t n)
{
	size_t i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return hay + i;
	return NULL;
}

/* Case-insensitive strstr. */
static const char *find_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return hay;
	return NULL;
}

/* Parses the first response in c->in once it is whole. */
static void client_parse(struct client *c)
{
	size_t len = evbuffer_get_length(c->in), hlen, clen = 0;
	char *all = (char *)evbuffer_pullup(c->in, -1), *end, *p;
	const char *cl;

	if (c->complete || all == NULL || len == 0)
		return;
	if ((end = find_bytes(all, len, "\r\n\r\n", 4)) == NULL)
		return;
	hlen = (size_t)(end - all) + 4;
	if (hlen >= sizeof(c->headers))
		fail_msg("response headers too long");
	memcpy(c->headers, all, hlen);
	c->headers[hlen] = '\0';
	if ((cl = find_ci(c->headers, "\r\nContent-Length:")) != NULL)
		clen = strtoul(cl + 17, NULL, 10);
	if (c->head)
		clen = 0;
	if (len - hlen < clen)
		return;
	c->status = (int)strtol(c->headers + 9, &p, 10);
	c->body = malloc(clen + 1);
	assert_non_null(c->body);
	memcpy(c->body, all + hlen, clen);
	c->body[clen] = '\0';
	c->body_len = clen;
	c->complete = 1;
	c->t_complete = fx_now(c->fx);
}

static void client_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	evbuffer_add_buffer(c->in, bufferevent_get_input(bev));
	client_parse(c);
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		evbuffer_add_buffer(c->in, bufferevent_get_input(bev));
		client_parse(c);
		if (!c->eof) {
			c->eof = 1;
			c->t_eof = fx_now(c->fx);
		}
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		if (c->tick != NULL)
			event_del(c->tick);
	}
}

static void client_trickle(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	(void)fd;
	(void)what;
	if (c->eof || c->trickle_pos >= c->trickle_len)
		return;
	bufferevent_write(c->bev, c->trickle + c->trickle_pos++, 1);
	if (c->trickle_pos < c->trickle_len)
		evtimer_add(c->tick, &c->every);
}

/* Connects to the server and sends len bytes of data (none when data is NULL). */
static struct client *client_new(struct fx *fx, const void *data, size_t len)
{
	struct sockaddr_in sin;
	struct client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_true(fx->nc < MAX_CLIENTS);
	fx->c[fx->nc++] = c;
	c->fx = fx;
	c->in = evbuffer_new();
	c->bev = bufferevent_socket_new(fx->base, -1, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(c->in);
	assert_non_null(c->bev);
	bufferevent_setcb(c->bev, client_read, NULL, client_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(http_port(fx->h));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin,
	    sizeof(sin)), 0);
	if (data != NULL && len > 0)
		bufferevent_write(c->bev, data, len);
	return c;
}

/* Sends text one byte every `ms` milliseconds, the first byte at once. */
static void client_trickle_start(struct client *c, const char *text, long ms)
{
	c->trickle = strdup(text);
	assert_non_null(c->trickle);
	c->trickle_len = strlen(text);
	c->every.tv_sec = ms / 1000;
	c->every.tv_usec = (ms % 1000) * 1000;
	c->tick = evtimer_new(c->fx->base, client_trickle, c);
	client_trickle(-1, 0, c);
}

/* Sends a request with Connection: close and waits for its response (or the close). */
static struct client *request(struct fx *fx, const char *method, const char *path,
    const char *headers, const char *body, size_t body_len)
{
	struct evbuffer *b = evbuffer_new();
	struct client *c;

	assert_non_null(b);
	evbuffer_add_printf(b, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%s",
	    method, path, headers ? headers : "");
	if (body != NULL)
		evbuffer_add_printf(b, "Content-Length: %zu\r\n", body_len);
	evbuffer_add(b, "\r\n", 2);
	if (body != NULL)
		evbuffer_add(b, body, body_len);
	c = client_new(fx, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	c->head = strcmp(method, "HEAD") == 0;
	evbuffer_free(b);
	run_until(fx, client_done, c, WAIT_S);
	run_until(fx, client_closed, c, WAIT_S);
	assert_true(c->complete);
	return c;
}

/* POSTs body as one chunk and waits for the connection to close. */
static struct client *chunked_request(struct fx *fx, const char *path, const char *body,
    size_t len)
{
	struct evbuffer *b = evbuffer_new();
	struct client *c;

	assert_non_null(b);
	evbuffer_add_printf(b, "POST %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", path, len);
	evbuffer_add(b, body, len);
	evbuffer_add_printf(b, "\r\n0\r\n\r\n");
	c = client_new(fx, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
	run_until(fx, client_closed, c, WAIT_S);
	return c;
}

static struct client *get(struct fx *fx, const char *path, const char *headers)
{
	return request(fx, "GET", path, headers, NULL, 0);
}

/* The value of response header name in c, copied into buf; NULL when absent. */
static const char *resp_header(const struct client *c, const char *name, char *buf,
    size_t size)
{
	char key[128];
	const char *p, *e;

	snprintf(key, sizeof(key), "\r\n%s:", name);
	if ((p = find_ci(c->headers, key)) == NULL)
		return NULL;
	p += strlen(key);
	p += strspn(p, " ");
	e = strstr(p, "\r\n");
	snprintf(buf, size, "%.*s", (int)(e - p), p);
	return buf;
}

/* Asserts a JSON error body {"error": ..., "field": field} (no field when NULL). */
static void assert_json_error(const struct client *c, int status, const char *field)
{
	char ct[128];
	cJSON *j, *f;

	assert_int_equal(c->status, status);
	assert_non_null(resp_header(c, "Content-Type", ct, sizeof(ct)));
	assert_string_equal(ct, "application/json");
	j = cJSON_Parse(c->body);
	if (j == NULL)
		fail_msg("not JSON: %s", c->body);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "error")));
	f = cJSON_GetObjectItem(j, "field");
	if (field == NULL)
		assert_null(f);
	else if (!cJSON_IsString(f) || strcmp(f->valuestring, field) != 0)
		fail_msg("field is not %s: %s", field, c->body);
	cJSON_Delete(j);
}

/* --- test routes --- */

static void route_ping(struct http_req *r, void *arg)
{
	(void)arg;
	http_reply(r, 200, "application/json", "{\"pong\":true}", 13);
}

/* POST /echo: answers the body's length, then the body. */
static void route_echo(struct http_req *r, void *arg)
{
	size_t len;
	const char *b = http_body(r, &len);
	struct evbuffer *out = evbuffer_new();

	(void)arg;
	assert_non_null(out);
	assert_int_equal(b[len], '\0');
	evbuffer_add_printf(out, "%zu:", len);
	evbuffer_add(out, b, len);
	http_reply(r, 200, NULL, evbuffer_pullup(out, -1), evbuffer_get_length(out));
	evbuffer_free(out);
}

/* GET /q: the query parameter "name", or "(none)". */
static void route_query(struct http_req *r, void *arg)
{
	const char *v = http_query(r, "name");

	(void)arg;
	v = v ? v : "(none)";
	http_reply(r, 200, NULL, v, strlen(v));
}

/* GET /items...: the path and rest. */
static void route_items(struct http_req *r, void *arg)
{
	char buf[2048];
	int n;

	(void)arg;
	n = snprintf(buf, sizeof(buf), "%s|%s|%s", http_req_path(r), http_req_rest(r),
	    http_header(r, "X-Test") ? http_header(r, "X-Test") : "");
	http_reply(r, 200, NULL, buf, (size_t)n);
}

static void route_field_error(struct http_req *r, void *arg)
{
	(void)arg;
	assert_int_equal(http_add_header(r, "X-Bad", "a\r\nInjected: 1"), -1);
	assert_int_equal(http_add_header(r, "X-Good", "yes"), 0);
	http_error(r, 422, "email", "%s is not an email address", "bob");
}

static void answer_later(evutil_socket_t fd, short what, void *arg)
{
	struct fx *fx = arg;
	cJSON *j = cJSON_CreateObject();

	(void)fd;
	(void)what;
	cJSON_AddStringToObject(j, "answered", "later");
	http_reply_json(fx->held, 201, j);
	fx->held = NULL;
}

/* GET /later: held by the "handler", answered 201 from a timer 100 ms later (or never
 * when ?hold=1). */
static void route_later(struct http_req *r, void *arg)
{
	static const struct timeval t = { 0, 100000 };
	struct fx *fx = arg;

	assert_null(fx->held);
	fx->held = r;
	if (http_query(r, "hold") == NULL) {
		fx->later = evtimer_new(fx->base, answer_later, fx);
		evtimer_add(fx->later, &t);
	}
}

static void start(struct fx *fx)
{
	struct err e;

	fx->h = http_new(fx->base, &fx->cfg, &e);
	if (fx->h == NULL)
		fail_msg("http_new: %s", e.msg);
	assert_true(http_port(fx->h) != 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_GET, "/v1/ping", HTTP_ROLE_VIEWER,
	    route_ping, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_POST | EVHTTP_REQ_DELETE, "/v1/ping",
	    HTTP_ROLE_MARKETER, route_ping, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_PUT, "/v1/ping", HTTP_ROLE_ADMIN,
	    route_ping, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_POST, "/echo", HTTP_ROLE_PUBLIC,
	    route_echo, fx, HTTP_EXACT), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_GET, "/q", HTTP_ROLE_PUBLIC,
	    route_query, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_GET, "/items", HTTP_ROLE_PUBLIC,
	    route_items, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE, "/items/x",
	    HTTP_ROLE_PUBLIC, route_items, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_GET, "/fielderr", HTTP_ROLE_PUBLIC,
	    route_field_error, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_GET, "/later", HTTP_ROLE_PUBLIC,
	    route_later, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_POST, "/secret", HTTP_ROLE_ADMIN,
	    route_ping, fx, 0), 0);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_GET, "no-slash", HTTP_ROLE_PUBLIC,
	    route_ping, fx, 0), -1);
	/* An admin route cannot be left open by mistake. */
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_GET, "/v1/open", HTTP_ROLE_PUBLIC,
	    route_ping, fx, 0), -1);
	assert_int_equal(http_route(fx->h, EVHTTP_REQ_GET, "/v1", HTTP_ROLE_PUBLIC,
	    route_ping, fx, 0), -1);
}

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

/* --- roles, sessions and cross-site checks (http_auth.c) --- */

#define T_VIEWER "dp_viewer-token"
#define T_MARKETER "dp_marketer-token"
#define SID_GOOD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CSRF "csrf-of-the-session"

static int fake_bearer(void *arg, const char *tok, size_t len, struct http_principal *p)
{
	(void)arg;
	if (len == strlen(T_VIEWER) && memcmp(tok, T_VIEWER, len) == 0) {
		snprintf(p->name, sizeof(p->name), "ana");
		p->role = HTTP_ROLE_VIEWER;
		return 1;
	}
	if (len == strlen(T_MARKETER) && memcmp(tok, T_MARKETER, len) == 0) {
		snprintf(p->name, sizeof(p->name), "mo");
		p->role = HTTP_ROLE_MARKETER;
		return 1;
	}
	return 0;
}

/* A marketer's session SID_GOOD with CSRF as its token; any other id is unknown. */
static void fake_session(void *arg, struct http_req *r, const char *id)
{
	struct http_principal p;

	(void)arg;
	if (strcmp(id, SID_GOOD) != 0) {
		http_auth_resume(r, NULL);
		return;
	}
	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "mo");
	p.role = HTTP_ROLE_MARKETER;
	assert_int_equal(http_sha256(CSRF, strlen(CSRF), p.csrf), 0);
	http_auth_resume(r, &p);
}

static const struct http_auth_ops fake_auth = { fake_bearer, fake_session };

static void a_lower_role_gets_403_naming_the_role_needed(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	cJSON *j;

	start(fx);
	http_set_auth(fx->h, &fake_auth, fx);
	/* A viewer reads, but does not change. */
	assert_int_equal(get(fx, "/v1/ping", "Authorization: Bearer " T_VIEWER "\r\n")->status,
	    200);
	c = request(fx, "POST", "/v1/ping", "Authorization: Bearer " T_VIEWER "\r\n", "x", 1);
	assert_json_error(c, 403, "role");
	j = cJSON_Parse(c->body);
	assert_string_equal(cJSON_GetObjectItem(j, "role_needed")->valuestring, "marketer");
	assert_string_equal(cJSON_GetObjectItem(j, "role")->valuestring, "viewer");
	assert_non_null(strstr(cJSON_GetObjectItem(j, "error")->valuestring, "marketer"));
	cJSON_Delete(j);
	/* A marketer changes, but is no admin. */
	c = request(fx, "POST", "/v1/ping", "Authorization: Bearer " T_MARKETER "\r\n", "x", 1);
	assert_int_equal(c->status, 200);
	c = request(fx, "PUT", "/v1/ping", "Authorization: Bearer " T_MARKETER "\r\n", "x", 1);
	assert_json_error(c, 403, "role");
	/* The config token is the admin. */
	c = request(fx, "PUT", "/v1/ping", "Authorization: Bearer " TOKEN "\r\n", "x", 1);
	assert_int_equal(c->status, 200);
	/* Unknown token: 401, whatever the route. */
	assert_json_error(get(fx, "/v1/ping", "Authorization: Bearer dp_nope\r\n"), 401, NULL);
	assert_json_error(request(fx, "POST", "/secret", "Authorization: Bearer " T_MARKETER
	    "\r\n", "x", 1), 403, "role");
}

static void a_session_change_needs_its_csrf_token_and_our_origin(void **state)
{
	struct fx *fx = *state;
	struct client *c;

	fx->cfg.public_url = "https://console.example.com/app";
	start(fx);
	http_set_auth(fx->h, &fake_auth, fx);
	/* A read needs only the cookie. */
	c = get(fx, "/v1/ping", "Cookie: a=b; " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n");
	assert_int_equal(c->status, 200);
	/* A change without the header, with a wrong one, or from elsewhere: 403. */
	c = request(fx, "POST", "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n",
	    "x", 1);
	assert_json_error(c, 403, HTTP_CSRF_HEADER);
	c = request(fx, "POST", "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n"
	    HTTP_CSRF_HEADER ": wrong\r\n", "x", 1);
	assert_json_error(c, 403, HTTP_CSRF_HEADER);
	c = request(fx, "POST", "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n"
	    HTTP_CSRF_HEADER ": " CSRF "\r\nOrigin: https://evil.example\r\n", "x", 1);
	assert_json_error(c, 403, HTTP_CSRF_HEADER);
	/* With both right: it goes through. */
	c = request(fx, "POST", "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n"
	    HTTP_CSRF_HEADER ": " CSRF "\r\nOrigin: https://console.example.com\r\n", "x", 1);
	assert_int_equal(c->status, 200);
	/* An unknown or malformed session is no credential. */
	assert_json_error(get(fx, "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "="
	    "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"), 401, NULL);
	assert_json_error(get(fx, "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=zz\r\n"), 401,
	    NULL);
	/* A bearer token needs no CSRF token. */
	c = request(fx, "POST", "/v1/ping", "Authorization: Bearer " T_MARKETER "\r\n", "x", 1);
	assert_int_equal(c->status, 200);
}

static void every_answer_carries_the_security_headers(void **state)
{
	struct fx *fx = *state;
	const char *paths[] = { "/healthz", "/v1/ping", "/nothing", "/v1/%00" };
	char v[512];
	struct client *c;
	size_t i;

	start(fx);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		c = get(fx, paths[i], NULL);
		assert_non_null(resp_header(c, "Content-Security-Policy", v, sizeof(v)));
		assert_string_equal(v, HTTP_CSP);
		assert_non_null(strstr(v, "script-src 'self'"));
		assert_null(strstr(v, "unsafe-inline"));
		assert_non_null(resp_header(c, "X-Content-Type-Options", v, sizeof(v)));
		assert_string_equal(v, "nosniff");
		assert_non_null(resp_header(c, "Referrer-Policy", v, sizeof(v)));
		assert_string_equal(v, "no-referrer");
		assert_non_null(resp_header(c, "Cache-Control", v, sizeof(v)));
		assert_string_equal(v, "no-store");
	}
}

static void roles_have_names_and_parse_back(void **state)
{
	(void)state;
	assert_string_equal(http_role_name(HTTP_ROLE_VIEWER), "viewer");
	assert_int_equal(http_role_parse("viewer"), HTTP_ROLE_VIEWER);
	assert_int_equal(http_role_parse("marketer"), HTTP_ROLE_MARKETER);
	assert_int_equal(http_role_parse("admin"), HTTP_ROLE_ADMIN);
	assert_int_equal(http_role_parse("public"), -1);
	assert_int_equal(http_role_parse("Admin"), -1);
	assert_int_equal(http_role_parse(""), -1);
	assert_int_equal(http_role_parse(NULL), -1);
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
		cmocka_unit_test_setup_teardown(a_lower_role_gets_403_naming_the_role_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(a_session_change_needs_its_csrf_token_and_our_origin, setup, teardown),
		cmocka_unit_test_setup_teardown(every_answer_carries_the_security_headers, setup, teardown),
		cmocka_unit_test(roles_have_names_and_parse_back),
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
