/*
 * test_httpc.c: the HTTP client against an evhttp server on the same loop (stage: send).
 *
 * Each test starts a server on 127.0.0.1 with a kernel-chosen port, points a client at
 * it and runs the one event_base until every expected callback has run. It must never
 * reach beyond loopback, and never wait without a guard timer that fails the test.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "httpc.h"

#define FX_MAX_PEERS 512
#define FX_MAX_HELD 256
#define FX_GUARD_S 10

struct fx {
	struct event_base *base;
	struct evhttp *http;
	unsigned short port;
	struct httpc *h;
	int server_requests;
	int server_target;            /* break the loop when the server saw this many */
	unsigned short peers[FX_MAX_PEERS];
	size_t npeers;
	struct evhttp_request *held[FX_MAX_HELD];
	size_t nheld;
	char auth[256];
	char extra[256];
	int done_count;
	int done_target;              /* break the loop when this many callbacks ran */
	int guard_fired;
	struct event *guard;
};

struct call {
	struct fx *fx;
	int calls;
	int cancelled;
	struct httpc_resp resp;       /* copied; resp.body points into body below */
	char body[128];
	int free_client;              /* this callback frees the client */
	int chain_left;               /* this callback starts another request */
};

static void count_peer(struct fx *fx, struct evhttp_request *req)
{
	char *addr;
	ev_uint16_t port;
	size_t i;

	evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
	for (i = 0; i < fx->npeers; i++)
		if (fx->peers[i] == port)
			return;
	if (fx->npeers < FX_MAX_PEERS)
		fx->peers[fx->npeers++] = port;
}

static void http_date(time_t t, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Routes on the path: /201 /500 /429s /429d /429past /reset /never /big /auth /echo,
 * and /method?... (answers "<method> <uri> <body bytes>"). */
static void on_request(struct evhttp_request *req, void *arg)
{
	struct fx *fx = arg;
	const char *path = evhttp_request_get_uri(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *buf = evbuffer_new();
	const char *v;
	char date[64];
	int code = 200;

	fx->server_requests++;
	count_peer(fx, req);
	if (strcmp(path, "/201") == 0) {
		code = 201;
		evbuffer_add_printf(buf, "created");
	} else if (strcmp(path, "/500") == 0) {
		code = 500;
		evbuffer_add_printf(buf, "oops");
	} else if (strcmp(path, "/429s") == 0) {
		code = 429;
		evhttp_add_header(out, "Retry-After", "7");
	} else if (strcmp(path, "/429d") == 0 || strcmp(path, "/429past") == 0) {
		code = 429;
		http_date(time(NULL) + (strcmp(path, "/429d") == 0 ? 120 : -600), date,
		    sizeof(date));
		evhttp_add_header(out, "Retry-After", date);
	} else if (strcmp(path, "/429skew") == 0) {
		/* A server clock an hour behind ours: the wait is 90 s by its Date. */
		code = 429;
		http_date(time(NULL) - 3600 + 90, date, sizeof(date));
		evhttp_add_header(out, "Retry-After", date);
		http_date(time(NULL) - 3600, date, sizeof(date));
		evhttp_add_header(out, "Date", date);
	} else if (strcmp(path, "/reset") == 0) {
		code = 429;
		evhttp_add_header(out, "x-rate-limit-reset", "1700000123");
	} else if (strcmp(path, "/never") == 0) {
		assert_true(fx->nheld < FX_MAX_HELD);
		fx->held[fx->nheld++] = req;
		evbuffer_free(buf);
		goto end;
	} else if (strcmp(path, "/big") == 0) {
		for (int i = 0; i < HTTPC_BODY_MAX + 5000; i++)
			evbuffer_add(buf, i < HTTPC_BODY_MAX ? "a" : "b", 1);
	} else if (strcmp(path, "/auth") == 0) {
		v = evhttp_find_header(in, "Authorization");
		snprintf(fx->auth, sizeof(fx->auth), "%s", v ? v : "");
		v = evhttp_find_header(in, "X-Extra");
		snprintf(fx->extra, sizeof(fx->extra), "%s", v ? v : "");
	} else if (strncmp(path, "/method", 7) == 0) {
		evbuffer_add_printf(buf, "%s %s %zu",
		    evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" :
		    evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "OTHER", path,
		    evbuffer_get_length(evhttp_request_get_input_buffer(req)));
		v = evhttp_find_header(in, "Authorization");
		snprintf(fx->auth, sizeof(fx->auth), "%s", v ? v : "");
	} else if (strcmp(path, "/echo") == 0) {
		evbuffer_add_buffer(buf, evhttp_request_get_input_buffer(req));
	}
	evhttp_send_reply(req, code, "X", buf);
	evbuffer_free(buf);
end:
	if (fx->server_target > 0 && fx->server_requests == fx->server_target)
		event_base_loopbreak(fx->base);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	struct fx *fx = arg;

	(void)fd;
	(void)what;
	fx->guard_fired = 1;
	event_base_loopbreak(fx->base);
}

/* Runs the loop until a break; fails the test if the guard timer broke it. */
static void run(struct fx *fx)
{
	struct timeval tv = { FX_GUARD_S, 0 };

	evtimer_add(fx->guard, &tv);
	event_base_loop(fx->base, 0);
	evtimer_del(fx->guard);
	assert_false(fx->guard_fired);
}

static struct httpc *client_new(struct fx *fx, long max_host_connections)
{
	struct httpc_config cfg = { 5000, 1000, max_host_connections, 0 };
	struct err err;
	struct httpc *h = httpc_new(fx->base, &cfg, &err);

	assert_non_null(h);
	return h;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	assert_non_null(fx);
	/* Tests talk to loopback only; a proxy from the environment would hide it. */
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	fx->base = event_base_new();
	fx->http = evhttp_new(fx->base);
	assert_non_null(fx->http);
	evhttp_set_gencb(fx->http, on_request, fx);
	bound = evhttp_bind_socket_with_handle(fx->http, "127.0.0.1", 0);
	assert_non_null(bound);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&sin, &len), 0);
	fx->port = ntohs(sin.sin_port);
	/* evhttp listens with a backlog of 128; 200 connects at once need more (Linux
	 * takes a second listen() as a new backlog). */
	assert_int_equal(listen(evhttp_bound_socket_get_fd(bound), 1024), 0);
	fx->guard = evtimer_new(fx->base, on_guard, fx);
	fx->h = client_new(fx, 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	size_t i;

	/* An unanswered request whose client left is owned by us until answered. */
	for (i = 0; i < fx->nheld; i++)
		evhttp_send_reply(fx->held[i], 503, "late", NULL);
	httpc_free(fx->h);
	evhttp_free(fx->http);
	event_free(fx->guard);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

static void on_done(void *arg, const struct httpc_resp *resp, int cancelled)
{
	struct call *c = arg;
	struct fx *fx = c->fx;
	struct err err;
	struct httpc_req req;
	char url[64];

	c->calls++;
	c->cancelled = cancelled;
	c->resp = *resp;
	snprintf(c->body, sizeof(c->body), "%s", resp->body);
	c->resp.body = c->body;
	if (c->free_client) {
		httpc_free(fx->h);
		fx->h = NULL;
	}
	if (c->chain_left > 0) {
		c->chain_left--;
		memset(&req, 0, sizeof(req));
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/201", fx->port);
		req.url = url;
		req.body = "x";
		req.body_len = 1;
		assert_int_equal(httpc_post(fx->h, &req, on_done, c, &err), 0);
	}
	fx->done_count++;
	if (fx->done_count == fx->done_target)
		event_base_loopbreak(fx->base);
}

static void post_path(struct fx *fx, const char *path, long timeout_ms, struct call *c)
{
	struct httpc_req req;
	struct err err;
	char url[128];

	memset(&req, 0, sizeof(req));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", fx->port, path);
	req.url = url;
	req.content_type = "text/plain";
	req.body = "hello";
	req.body_len = 5;
	req.timeout_ms = timeout_ms;
	c->fx = fx;
	assert_int_equal(httpc_post(fx->h, &req, on_done, c, &err), 0);
}

/* Posts one request to path and runs the loop until its callback ran. */
static void post_one(struct fx *fx, const char *path, long timeout_ms, struct call *c)
{
	post_path(fx, path, timeout_ms, c);
	fx->done_target = fx->done_count + 1;
	run(fx);
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->cancelled, 0);
}

static void created_response_delivers_status_and_body(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 };

	post_one(fx, "/201", 0, &c);
	assert_int_equal(c.resp.status, 201);
	assert_int_equal(c.resp.transport_error, 0);
	assert_int_equal(c.resp.connected, 1);
	assert_string_equal(c.body, "created");
	assert_int_equal(c.resp.body_len, 7);
	assert_int_equal(c.resp.retry_after_s, -1);
	assert_true(c.resp.total_ms > 0);
	assert_int_equal(httpc_in_flight(fx->h), 0);
}

static void server_error_is_a_status_not_a_transport_error(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 };

	post_one(fx, "/500", 0, &c);
	assert_int_equal(c.resp.status, 500);
	assert_int_equal(c.resp.transport_error, 0);
	assert_string_equal(c.body, "oops");
}

static void retry_after_seconds_is_reported(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 };

	post_one(fx, "/429s", 0, &c);
	assert_int_equal(c.resp.status, 429);
	assert_int_equal(c.resp.retry_after_s, 7);
}

static void retry_after_http_date_becomes_seconds_from_now(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 }, past = { 0 };

	post_one(fx, "/429d", 0, &c);
	assert_int_equal(c.resp.status, 429);
	assert_in_range(c.resp.retry_after_s, 115, 121);
	post_one(fx, "/429past", 0, &past);
	assert_int_equal(past.resp.retry_after_s, 0);
}

static void retry_after_http_date_is_read_against_the_server_date(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 };

	post_one(fx, "/429skew", 0, &c);
	assert_int_equal(c.resp.status, 429);
	assert_in_range(c.resp.retry_after_s, 89, 91);
}

static void rate_limit_reset_header_is_reported(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 };

	post_one(fx, "/reset", 0, &c);
	assert_int_equal(c.resp.rate_limit_reset_at, 1700000123);
	assert_int_equal(c.resp.retry_after_s, -1);
}

static unsigned short closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void refused_connection_is_a_transport_error_never_sent(void **state)
{
	struct fx *fx = *state;
	struct call c = { .fx = fx };
	struct httpc_req req;
	struct err err;
	char url[64];

	memset(&req, 0, sizeof(req));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/201", closed_port());
	req.url = url;
	assert_int_equal(httpc_post(fx->h, &req, on_done, &c, &err), 0);
	fx->done_target = 1;
	run(fx);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.resp.status, 0);
	assert_int_equal(c.resp.transport_error, 1);
	assert_int_equal(c.resp.timed_out, 0);
	assert_int_equal(c.resp.connected, 0);
	assert_true(c.resp.error[0] != '\0');
}

static void unanswered_request_times_out_and_may_have_been_sent(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 };

	post_one(fx, "/never", 200, &c);
	assert_int_equal(fx->server_requests, 1);
	assert_int_equal(c.resp.status, 0);
	assert_int_equal(c.resp.transport_error, 1);
	assert_int_equal(c.resp.timed_out, 1);
	assert_int_equal(c.resp.connected, 1);
	assert_true(c.resp.total_ms >= 150);
}

/* Starts a GET of path (a body given is not sent) and runs the loop until its
 * callback ran. */
static void get_one(struct fx *fx, const char *path, long timeout_ms, struct call *c)
{
	struct httpc_req req;
	struct err err;
	char url[128];

	memset(&req, 0, sizeof(req));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", fx->port, path);
	req.url = url;
	req.body = "ignored";
	req.body_len = 7;
	req.basic_user = "ACuser";
	req.basic_pass = "s3cret";
	req.timeout_ms = timeout_ms;
	c->fx = fx;
	assert_int_equal(httpc_get(fx->h, &req, on_done, c, &err), 0);
	fx->done_target = fx->done_count + 1;
	run(fx);
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->cancelled, 0);
}

static void get_sends_no_body_and_reads_the_answer(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 }, p = { 0 };

	get_one(fx, "/method?To=%2B15125550100&PageSize=20", 0, &c);
	assert_int_equal(c.resp.status, 200);
	assert_int_equal(c.resp.transport_error, 0);
	assert_string_equal(c.body, "GET /method?To=%2B15125550100&PageSize=20 0");
	assert_string_equal(fx->auth, "Basic QUN1c2VyOnMzY3JldA==");
	/* The same client still POSTs afterwards, on the reused connection. */
	post_one(fx, "/method", 0, &p);
	assert_string_equal(p.body, "POST /method 5");
	assert_int_equal(httpc_in_flight(fx->h), 0);
}

static void get_has_the_same_deadline_and_body_cap(void **state)
{
	struct fx *fx = *state;
	struct call slow = { 0 }, big = { 0 };

	get_one(fx, "/never", 200, &slow);
	assert_int_equal(slow.resp.status, 0);
	assert_int_equal(slow.resp.transport_error, 1);
	assert_int_equal(slow.resp.timed_out, 1);
	get_one(fx, "/big", 0, &big);
	assert_int_equal(big.resp.status, 200);
	assert_int_equal(big.resp.body_len, HTTPC_BODY_MAX);
}

static void get_in_flight_is_cancelled_once_by_free(void **state)
{
	struct fx *fx = *state;
	struct call c = { .fx = fx };
	struct httpc_req req;
	struct err err;
	char url[64];

	memset(&req, 0, sizeof(req));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/never", fx->port);
	req.url = url;
	assert_int_equal(httpc_get(fx->h, &req, on_done, &c, &err), 0);
	fx->server_target = 1;
	run(fx);
	httpc_free(fx->h);
	fx->h = NULL;
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.cancelled, 1);
}

static void body_over_the_cap_is_truncated(void **state)
{
	struct fx *fx = *state;
	struct call c = { 0 };

	post_one(fx, "/big", 0, &c);
	assert_int_equal(c.resp.status, 200);
	assert_int_equal(c.resp.transport_error, 0);
	assert_int_equal(c.resp.body_len, HTTPC_BODY_MAX);
}

static void many_concurrent_requests_each_complete_once(void **state)
{
	struct fx *fx = *state;
	enum { N = 200 };
	struct call *c = calloc(N, sizeof(*c));
	int i;

	assert_non_null(c);
	for (i = 0; i < N; i++)
		post_path(fx, i % 2 ? "/201" : "/echo", 0, &c[i]);
	assert_int_equal(httpc_in_flight(fx->h), N);
	fx->done_target = N;
	run(fx);
	for (i = 0; i < N; i++) {
		assert_int_equal(c[i].calls, 1);
		assert_int_equal(c[i].resp.status, i % 2 ? 201 : 200);
		assert_string_equal(c[i].body, i % 2 ? "created" : "hello");
	}
	assert_int_equal(fx->server_requests, N);
	assert_int_equal(httpc_in_flight(fx->h), 0);
	free(c);
}

static void sequential_requests_reuse_one_connection(void **state)
{
	struct fx *fx = *state;
	struct call c = { .chain_left = 49 };

	/* Each callback starts the next request: 50 in a row. */
	post_path(fx, "/201", 0, &c);
	fx->done_target = 50;
	run(fx);
	assert_int_equal(c.calls, 50);
	assert_int_equal(fx->server_requests, 50);
	assert_int_equal(fx->npeers, 1);
}

static void max_host_connections_bounds_parallel_connections(void **state)
{
	struct fx *fx = *state;
	enum { N = 40 };
	struct call c[N];
	int i;

	httpc_free(fx->h);
	fx->h = client_new(fx, 2);
	memset(c, 0, sizeof(c));
	for (i = 0; i < N; i++)
		post_path(fx, "/201", 0, &c[i]);
	fx->done_target = N;
	run(fx);
	for (i = 0; i < N; i++)
		assert_int_equal(c[i].calls, 1);
	assert_in_range(fx->npeers, 1, 2);
}

static void done_callback_may_free_the_client(void **state)
{
	struct fx *fx = *state;
	enum { N = 5 };
	struct call c[N];
	int i, total = 0;

	memset(c, 0, sizeof(c));
	for (i = 0; i < N; i++) {
		c[i].free_client = i == 0;
		post_path(fx, i == 0 ? "/201" : "/never", 0, &c[i]);
	}
	fx->done_target = N;
	run(fx);
	assert_null(fx->h);
	for (i = 0; i < N; i++) {
		assert_int_equal(c[i].calls, 1);
		total += c[i].calls;
	}
	assert_int_equal(c[0].cancelled, 0);
	for (i = 1; i < N; i++)
		assert_int_equal(c[i].cancelled, 1);
	assert_int_equal(total, N);
}

static void free_with_requests_in_flight_cancels_each_once(void **state)
{
	struct fx *fx = *state;
	enum { N = 5 };
	struct call c[N];
	int i;

	memset(c, 0, sizeof(c));
	for (i = 0; i < N; i++)
		post_path(fx, "/never", 0, &c[i]);
	fx->server_target = N;  /* run until the server holds all of them */
	run(fx);
	httpc_free(fx->h);
	fx->h = NULL;
	for (i = 0; i < N; i++) {
		assert_int_equal(c[i].calls, 1);
		assert_int_equal(c[i].cancelled, 1);
		assert_int_equal(c[i].resp.status, 0);
		assert_int_equal(c[i].resp.connected, 1);
	}
}

static void free_before_the_loop_runs_cancels_as_never_sent(void **state)
{
	struct fx *fx = *state;
	struct call c[3];
	int i;

	memset(c, 0, sizeof(c));
	for (i = 0; i < 3; i++)
		post_path(fx, "/201", 0, &c[i]);
	httpc_free(fx->h);
	fx->h = NULL;
	for (i = 0; i < 3; i++) {
		assert_int_equal(c[i].calls, 1);
		assert_int_equal(c[i].cancelled, 1);
		assert_int_equal(c[i].resp.connected, 0);
	}
}

/*
 * A handle is reused after a request that reached the server (its transfer info says
 * connected). A request on it cancelled before the loop ran must still say never
 * connected: the info of the earlier transfer is not this one's (an ambiguous send is
 * never taken for a sent one, nor the other way round).
 */
static void reused_handle_cancelled_before_the_loop_runs_says_never_sent(void **state)
{
	struct fx *fx = *state;
	struct call first, c[2];
	int i;

	memset(&first, 0, sizeof(first));
	memset(c, 0, sizeof(c));
	post_one(fx, "/201", 0, &first);
	assert_int_equal(first.calls, 1);
	assert_int_equal(first.resp.connected, 1);
	assert_int_equal(first.resp.status, 201);
	for (i = 0; i < 2; i++)
		post_path(fx, "/201", 0, &c[i]);
	httpc_free(fx->h);
	fx->h = NULL;
	for (i = 0; i < 2; i++) {
		assert_int_equal(c[i].calls, 1);
		assert_int_equal(c[i].cancelled, 1);
		assert_int_equal(c[i].resp.connected, 0);
		assert_int_equal(c[i].resp.status, 0);
	}
}

/* Posts req and checks the Authorization header the server saw. */
static void basic_auth_sent(struct fx *fx, const struct httpc_req *req, const char *want)
{
	struct call c = { .fx = fx };
	struct err err;

	fx->auth[0] = '\0';
	assert_int_equal(httpc_post(fx->h, req, on_done, &c, &err), 0);
	fx->done_target = fx->done_count + 1;
	run(fx);
	assert_string_equal(fx->auth, want);
}

static void basic_auth_reaches_the_server(void **state)
{
	struct fx *fx = *state;
	struct call c = { .fx = fx };
	struct httpc_req req;
	struct err err;
	char url[64];

	memset(&req, 0, sizeof(req));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/auth", fx->port);
	req.url = url;
	req.basic_user = "ACuser";
	req.basic_pass = "s3cret";
	assert_int_equal(httpc_post(fx->h, &req, on_done, &c, &err), 0);
	fx->done_target = 1;
	run(fx);
	/* base64("ACuser:s3cret") */
	assert_string_equal(fx->auth, "Basic QUN1c2VyOnMzY3JldA==");
	/* The three paddings of base64: 6, 5 and 4 bytes. */
	req.basic_user = "ab";
	req.basic_pass = "cde";
	basic_auth_sent(fx, &req, "Basic YWI6Y2Rl");
	req.basic_pass = "cd";
	basic_auth_sent(fx, &req, "Basic YWI6Y2Q=");
	req.basic_pass = NULL;
	req.basic_user = "abc";
	basic_auth_sent(fx, &req, "Basic YWJjOg==");
}

static void bearer_and_extra_headers_reach_the_server(void **state)
{
	struct fx *fx = *state;
	struct call c = { .fx = fx };
	struct httpc_req req;
	struct err err;
	char url[64];

	memset(&req, 0, sizeof(req));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/auth", fx->port);
	req.url = url;
	req.bearer = "tok-123";
	req.headers[0] = "X-Extra: yes";
	assert_int_equal(httpc_post(fx->h, &req, on_done, &c, &err), 0);
	fx->done_target = 1;
	run(fx);
	assert_string_equal(fx->auth, "Bearer tok-123");
	assert_string_equal(fx->extra, "yes");
}

static void header_with_a_line_break_is_refused(void **state)
{
	struct fx *fx = *state;
	struct call c = { .fx = fx };
	struct httpc_req req;
	struct err err;

	memset(&req, 0, sizeof(req));
	req.url = "http://127.0.0.1:1/";
	req.bearer = "tok\r\nX-Evil: 1";
	assert_int_equal(httpc_post(fx->h, &req, on_done, &c, &err), -1);
	assert_int_equal(err.kind, ERR_INPUT);
	assert_string_equal(err.code, "bad_header");
	assert_int_equal(httpc_in_flight(fx->h), 0);
	assert_int_equal(c.calls, 0);
}

static void client_with_a_bad_config_is_refused(void **state)
{
	struct fx *fx = *state;
	struct httpc_config zero = { 0, 1000, 0, 0 }, neg = { 1000, 1000, -1, 0 };
	struct err err;

	assert_null(httpc_new(fx->base, &zero, &err));
	assert_int_equal(err.kind, ERR_INPUT);
	assert_null(httpc_new(fx->base, &neg, &err));
	assert_string_equal(err.code, "bad_config");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(created_response_delivers_status_and_body, setup, teardown),
		cmocka_unit_test_setup_teardown(server_error_is_a_status_not_a_transport_error, setup, teardown),
		cmocka_unit_test_setup_teardown(retry_after_seconds_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(retry_after_http_date_is_read_against_the_server_date,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(retry_after_http_date_becomes_seconds_from_now, setup, teardown),
		cmocka_unit_test_setup_teardown(rate_limit_reset_header_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(refused_connection_is_a_transport_error_never_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(unanswered_request_times_out_and_may_have_been_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(body_over_the_cap_is_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(get_sends_no_body_and_reads_the_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(get_has_the_same_deadline_and_body_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(get_in_flight_is_cancelled_once_by_free, setup, teardown),
		cmocka_unit_test_setup_teardown(many_concurrent_requests_each_complete_once, setup, teardown),
		cmocka_unit_test_setup_teardown(sequential_requests_reuse_one_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(max_host_connections_bounds_parallel_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(done_callback_may_free_the_client, setup, teardown),
		cmocka_unit_test_setup_teardown(free_with_requests_in_flight_cancels_each_once, setup, teardown),
		cmocka_unit_test_setup_teardown(free_before_the_loop_runs_cancels_as_never_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    reused_handle_cancelled_before_the_loop_runs_says_never_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(basic_auth_reaches_the_server, setup, teardown),
		cmocka_unit_test_setup_teardown(bearer_and_extra_headers_reach_the_server, setup, teardown),
		cmocka_unit_test_setup_teardown(header_with_a_line_break_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(client_with_a_bad_config_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
