/*
 * http_fx.h: the fixture of the HTTP server's unit tests (test_http.c,
 * test_http_auth.c): a server on 127.0.0.1 with a kernel-chosen port in its own
 * event_base, raw-socket clients on the same loop that send exactly the bytes they
 * mean, the test routes, and helpers that read an answer. Every wait has a limit
 * that fails the test; everything is freed in the teardown. Include after <cmocka.h>,
 * libevent's headers and "http.h".
 */
#ifndef DEALPUSH_TEST_HTTP_FX_H
#define DEALPUSH_TEST_HTTP_FX_H

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

static inline double fx_now(const struct fx *fx)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - fx->t0.tv_sec) + (t.tv_nsec - fx->t0.tv_nsec) / 1e9;
}

static inline void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static inline int fake_health(void *arg, struct http_health *out)
{
	struct fx *fx = arg;

	out->redis_ok = fx->healthy;
	out->stream_lag = 12;
	out->rules_loaded = 3;
	out->detail = fx->detail;
	return fx->healthy;
}

static inline int setup(void **state)
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

static inline void client_free(struct client *c)
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

static inline int teardown(void **state)
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
static inline void run_until(struct fx *fx, int (*cond)(void *), void *arg, double limit)
{
	double start = fx_now(fx);

	while (!cond(arg)) {
		if (fx_now(fx) - start > limit)
			fail_msg("condition not reached within %.1f s", limit);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
}

/* Runs the loop for s seconds. */
static inline int never(void *arg)
{
	(void)arg;
	return 0;
}

static inline void run_for(struct fx *fx, double s)
{
	double start = fx_now(fx);

	while (fx_now(fx) - start < s)
		event_base_loop(fx->base, EVLOOP_ONCE);
	(void)never;
}

static inline int client_done(void *arg)
{
	struct client *c = arg;

	return c->complete || c->eof;
}

static inline int client_closed(void *arg)
{
	return ((struct client *)arg)->eof;
}

/* Where needle (n bytes) first occurs in hay (len bytes), or NULL. */
static inline char *find_bytes(char *hay, size_t len, const char *needle, size_t n)
{
	size_t i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return hay + i;
	return NULL;
}

/* Case-insensitive strstr. */
static inline const char *find_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return hay;
	return NULL;
}

/* Parses the first response in c->in once it is whole. */
static inline void client_parse(struct client *c)
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

static inline void client_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	evbuffer_add_buffer(c->in, bufferevent_get_input(bev));
	client_parse(c);
}

static inline void client_event(struct bufferevent *bev, short what, void *arg)
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

static inline void client_trickle(evutil_socket_t fd, short what, void *arg)
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
static inline struct client *client_new(struct fx *fx, const void *data, size_t len)
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
static inline void client_trickle_start(struct client *c, const char *text, long ms)
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
static inline struct client *request(struct fx *fx, const char *method, const char *path,
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
static inline struct client *chunked_request(struct fx *fx, const char *path, const char *body,
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

static inline struct client *get(struct fx *fx, const char *path, const char *headers)
{
	return request(fx, "GET", path, headers, NULL, 0);
}

/* The value of response header name in c, copied into buf; NULL when absent. */
static inline const char *resp_header(const struct client *c, const char *name, char *buf,
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
static inline void assert_json_error(const struct client *c, int status, const char *field)
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

static inline void route_ping(struct http_req *r, void *arg)
{
	(void)arg;
	http_reply(r, 200, "application/json", "{\"pong\":true}", 13);
}

/* POST /echo: answers the body's length, then the body. */
static inline void route_echo(struct http_req *r, void *arg)
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
static inline void route_query(struct http_req *r, void *arg)
{
	const char *v = http_query(r, "name");

	(void)arg;
	v = v ? v : "(none)";
	http_reply(r, 200, NULL, v, strlen(v));
}

/* GET /items...: the path and rest. */
static inline void route_items(struct http_req *r, void *arg)
{
	char buf[2048];
	int n;

	(void)arg;
	n = snprintf(buf, sizeof(buf), "%s|%s|%s", http_req_path(r), http_req_rest(r),
	    http_header(r, "X-Test") ? http_header(r, "X-Test") : "");
	http_reply(r, 200, NULL, buf, (size_t)n);
}

static inline void route_field_error(struct http_req *r, void *arg)
{
	(void)arg;
	assert_int_equal(http_add_header(r, "X-Bad", "a\r\nInjected: 1"), -1);
	assert_int_equal(http_add_header(r, "X-Good", "yes"), 0);
	http_error(r, 422, "email", "%s is not an email address", "bob");
}

static inline void answer_later(evutil_socket_t fd, short what, void *arg)
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
static inline void route_later(struct http_req *r, void *arg)
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

static inline void start(struct fx *fx)
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

#endif
