/*
 * http.c: the HTTP server: set-up, routing, bearer auth, JSON replies (stage: http).
 *
 * evhttp parses on the daemon's loop; before it does, httpconn.c admits each
 * connection, runs its deadlines and checks the raw request head (httphead.c), and
 * httpstatus.c serves /healthz and /metrics. Here a complete request's target is
 * split and decoded, checked, routed, authorised (http_auth.c) and handed to its
 * route. It must never
 * block the loop, never log a token (http_log_path() alone decides how a path is
 * logged), and never hand a handler a path with "..", "//", a NUL or an encoded
 * slash.
 */
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "http.h"
#include "http_int.h"
#include "log.h"
#include "metrics.h"

#define HTTP_CT_JSON "application/json"
#define HTTP_CT_TEXT "text/plain; charset=utf-8"
#define HTTP_METHODS_ALL (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | \
    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)
#define HTTP_FD_RESERVE 256             /* descriptors kept for Redis, curl, files */

/* A reply was written out: the connection waits for its next request. */
static void http_on_complete(struct evhttp_request *req, void *arg)
{
	struct http_conn *c = httpconn_of(arg, req);

	if (c != NULL)
		httpconn_answered(c);
}

/* --- requests --- */

static void http_req_free(struct http_req *r)
{
	if (r == NULL)
		return;
	LIST_REMOVE(r, link);
	if (r->held) {
		TAILQ_REMOVE(&r->h->held, r, held_link);
		r->h->nheld--;
	}
	evhttp_clear_headers(&r->query);
	free(r->path);
	free(r->body);
	free(r);
}

const char *http_method_name(int m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "OTHER";
	}
}

/*
 * The one place that decides how a request's path is logged. A path is shown whole
 * only when it was routed to a route whose rest is not a credential; anything else
 * (refused before routing, a click token's route, a path that did not decode) shows
 * its first segment and "/..." at most, so that no token or short-link code ever
 * reaches a log, whatever the form it was sent in.
 */
static const char *http_log_path(const struct http_req *r, char *out, size_t size)
{
	char shown[HTTP_PATH_MAX + 8];
	const char *p = r->path, *seg;

	if (p == NULL || p[0] != '/')
		return log_quote("-", out, size);
	if (r->routed && r->log_len == 0)
		return log_quote(p, out, size);
	seg = strchr(p + 1, '/');
	if (seg == NULL && !r->routed)
		return log_quote(p, out, size);
	if (r->log_len > 0)
		snprintf(shown, sizeof(shown), "%.*s/...", (int)r->log_len, p);
	else if (seg == NULL)
		snprintf(shown, sizeof(shown), "%s", p);
	else
		snprintf(shown, sizeof(shown), "%.*s/...", (int)(seg - p), p);
	return log_quote(shown, out, size);
}

/* A 4xx answer (a forged signature, a tampered click token, a path that does not
 * exist) counts on /metrics by status and client address, never in a log. */
static void http_count_refusal(const struct http_req *r, int status)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	char *addr = NULL, reason[32];
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(reason, sizeof(reason), "%s%d", r->log_len > 0 ? "secret_path_" :
	    "status_", status);
	httpconn_count(r->h, addr, reason);
}

/* Sends buf (moved out, not freed) with status and frees r. */
void http_send(struct http_req *r, int status, const char *ctype,
    struct evbuffer *buf)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
	char qpath[128];

	evhttp_remove_header(out, "Content-Type");
	evhttp_add_header(out, "Content-Type", ctype);
	http_security_headers(out);
	log_debug("event=http method=%s path=%s status=%d", http_method_name(r->method),
	    http_log_path(r, qpath, sizeof(qpath)), status);
	if (status >= 400 && status < 500)
		http_count_refusal(r, status);
	evhttp_send_reply(r->req, status, NULL, buf);
	http_req_free(r);
}

/* Last resort when a reply cannot be built: no body. */
void http_send_bare(struct http_req *r, int status)
{
	http_security_headers(evhttp_request_get_output_headers(r->req));
	evhttp_send_reply(r->req, status, NULL, NULL);
	http_req_free(r);
}

int http_reply(struct http_req *r, int status, const char *content_type,
    const void *body, size_t len)
{
	struct evbuffer *buf;

	if ((buf = evbuffer_new()) == NULL || evbuffer_add(buf, body, len) < 0) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_send_bare(r, 500);
		return -1;
	}
	http_send(r, status, content_type ? content_type : HTTP_CT_TEXT, buf);
	evbuffer_free(buf);
	return 0;
}

int http_reply_json(struct http_req *r, int status, struct cJSON *json)
{
	char *text = json ? cJSON_PrintUnformatted(json) : NULL;
	int rc;

	cJSON_Delete(json);
	if (text == NULL) {
		http_send_bare(r, 500);
		return -1;
	}
	rc = http_reply(r, status, HTTP_CT_JSON, text, strlen(text));
	cJSON_free(text);
	return rc;
}

static int http_verror(struct http_req *r, int status, const char *field,
    const char *fmt, va_list ap)
{
	char msg[512];
	cJSON *j;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if ((j = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(j, "error", msg) == NULL ||
	    (field != NULL && cJSON_AddStringToObject(j, "field", field) == NULL)) {
		cJSON_Delete(j);
		http_send_bare(r, 500);
		return -1;
	}
	return http_reply_json(r, status, j);
}

int http_error(struct http_req *r, int status, const char *field, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = http_verror(r, status, field, fmt, ap);
	va_end(ap);
	return rc;
}

int http_error_input(struct http_req *r, const struct err *e)
{
	if (e->kind == ERR_NOMEM)
		return http_error(r, 500, NULL, "out of memory");
	return http_error(r, strcmp(e->code, "too_large") == 0 ? 413 : 400,
	    e->field[0] ? e->field : "body", "%s", e->msg);
}

int http_add_header(struct http_req *r, const char *name, const char *value)
{
	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return -1;
	return evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

struct evhttp_request *http_req_evhttp(struct http_req *r)
{
	return r->req;
}

int http_req_method(const struct http_req *r)
{
	return r->method;
}

const char *http_req_path(const struct http_req *r)
{
	return r->path;
}

const char *http_req_rest(const struct http_req *r)
{
	return r->rest;
}

const char *http_query(const struct http_req *r, const char *name)
{
	return evhttp_find_header(&r->query, name);
}

const char *http_header(const struct http_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

const char *http_body(const struct http_req *r, size_t *len)
{
	if (len != NULL)
		*len = r->body_len;
	return r->body;
}

/* --- dispatch --- */

/* The name of the query parameter of query that at (a position in it) falls in,
 * into name; "query" when it has no plain name (empty, encoded or over size). */
static void
http_query_param_name(const char *query, const char *at, char *name, size_t size)
{
	const char *p = at, *eq;
	size_t n;

	while (p > query && p[-1] != '&')
		p--;
	eq = p + strcspn(p, "=&");
	n = (size_t)(eq - p);
	if (n == 0 || n >= size || eq > at || memchr(p, '%', n) != NULL)
		snprintf(name, size, "query");
	else
		snprintf(name, size, "%.*s", (int)n, p);
}

/* Splits the request target into its raw path and query (both copied into *path and
 * *query, free() them). The path is taken from the target as sent, not from libevent's
 * URI parse, which reads "//x" as a host. Returns NULL, or what is wrong. */
static const char *http_target_split(struct evhttp_request *req, char **path,
    char **query)
{
	const char *target = evhttp_request_get_uri(req), *q, *end;
	const struct evhttp_uri *uri;

	*path = *query = NULL;
	if (target == NULL)
		return "no request target";
	if (target[0] != '/') {
		/* Absolute form ("GET http://host/p HTTP/1.1"): libevent parsed it. */
		uri = evhttp_request_get_evhttp_uri(req);
		if (uri == NULL || evhttp_uri_get_scheme(uri) == NULL)
			return "path must start with /";
		target = evhttp_uri_get_path(uri);
		if (target == NULL || target[0] == '\0')
			target = "/";
		q = evhttp_uri_get_query(uri);
		if ((*path = strdup(target)) == NULL ||
		    (q != NULL && (*query = strdup(q)) == NULL))
			return "out of memory";
		return NULL;
	}
	end = target + strcspn(target, "?#");
	if ((*path = strndup(target, (size_t)(end - target))) == NULL)
		return "out of memory";
	if (*end == '?') {
		q = end + 1;
		if ((*query = strndup(q, strcspn(q, "#"))) == NULL)
			return "out of memory";
	}
	return NULL;
}

/* Checks the raw path and decodes it into *out (free() it). Returns NULL, or what is
 * wrong with the path. */
static const char *http_path_decode(const char *raw, char **out)
{
	size_t len, i;
	char *p;

	*out = NULL;
	if (strlen(raw) > HTTP_PATH_MAX)
		return "path longer than 1024 bytes";
	if (raw[0] != '/')
		return "path must start with /";
	for (i = 0; raw[i] != '\0'; i++) {
		const char *e = raw + i + 1;

		if (raw[i] == '%' && (strncmp(e, "00", 2) == 0 ||
		    strncasecmp(e, "2f", 2) == 0 || strncasecmp(e, "5c", 2) == 0))
			return "encoded NUL, slash or backslash in path";
	}
	if ((p = evhttp_uridecode(raw, 0, &len)) == NULL)
		return "path cannot be decoded";
	*out = p;
	if (strlen(p) != len)
		return "NUL in path";
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return "control character in path";
	if (strstr(p, "..") != NULL)
		return "\"..\" in path";
	if (strstr(p, "//") != NULL)
		return "\"//\" in path";
	return NULL;
}

/* 1 when path matches rt as http_route() documents, else 0. */
static int http_route_matches(const struct http_route *rt, const char *path)
{
	if (strncmp(path, rt->prefix, rt->len) != 0)
		return 0;
	if (path[rt->len] == '\0')
		return 1;
	if (rt->flags & HTTP_EXACT)
		return 0;
	return rt->prefix[rt->len - 1] == '/' || path[rt->len] == '/';
}

static void http_set_allow(struct http_req *r, int methods)
{
	static const int order[] = { EVHTTP_REQ_GET, EVHTTP_REQ_HEAD, EVHTTP_REQ_POST,
	    EVHTTP_REQ_PUT, EVHTTP_REQ_PATCH, EVHTTP_REQ_DELETE, EVHTTP_REQ_OPTIONS };
	char allow[80] = "";
	size_t i, o = 0;

	if (methods & EVHTTP_REQ_GET)
		methods |= EVHTTP_REQ_HEAD;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(methods & order[i]))
			continue;
		o += (size_t)snprintf(allow + o, sizeof(allow) - o, "%s%s", o ? ", " : "",
		    http_method_name(order[i]));
		if (o >= sizeof(allow))
			break;
	}
	http_add_header(r, "Allow", allow);
}

/* Runs the request past the path and route checks, then authentication
 * (http_auth.c), then http_route_finish. */
static void http_route_request(struct http_req *r)
{
	struct http *h = r->h;
	const struct http_route *best = NULL, *hit = NULL;
	int m = r->method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : 0;
	enum http_role need = HTTP_ROLE_PUBLIC;
	char shown[128];
	size_t i;

	for (i = 0; i < h->nroutes; i++)
		if (http_route_matches(&h->routes[i], r->path) &&
		    (best == NULL || h->routes[i].len > best->len))
			best = &h->routes[i];
	r->allowed = 0;
	for (i = 0; best != NULL && i < h->nroutes; i++) {
		const struct http_route *rt = &h->routes[i];

		if (rt->len != best->len || !http_route_matches(rt, r->path))
			continue;
		r->allowed |= rt->methods;
		if (hit == NULL && (rt->methods & (r->method | m)))
			hit = rt;
		else if (rt->role > need)
			need = rt->role;
	}
	if (best == NULL && h->starting) {
		/* Its route may come with the rest of start-up: routed then. */
		if (h->nheld >= HTTP_HELD_MAX) {
			http_add_header(r, "Retry-After", "1");
			http_error(r, 503, NULL, "starting");
			return;
		}
		r->held = 1;
		TAILQ_INSERT_TAIL(&h->held, r, held_link);
		h->nheld++;
		log_debug("event=http_held method=%s path=%s held=%zu",
		    http_method_name(r->method), http_log_path(r, shown, sizeof(shown)),
		    h->nheld);
		return;
	}
	/* The route taken decides; with none (404, 405) the strictest of the prefix's,
	 * and under /v1/ at least a viewer: no route probing without a credential. */
	if (hit != NULL)
		need = hit->role;
	else if ((strcmp(r->path, "/v1") == 0 || strncmp(r->path, HTTP_ADMIN_PREFIX,
	    strlen(HTTP_ADMIN_PREFIX)) == 0) && need < HTTP_ROLE_VIEWER)
		need = HTTP_ROLE_VIEWER;
	r->best = best;
	r->hit = hit;
	r->need = need;
	if (need == HTTP_ROLE_PUBLIC)
		http_route_finish(r);
	else
		http_authenticate(r);
}

void http_route_finish(struct http_req *r)
{
	const struct http_route *hit = r->hit;

	if (r->best == NULL) {
		http_error(r, 404, "path", "no such resource");
		return;
	}
	if (hit == NULL) {
		http_set_allow(r, r->allowed);
		http_error(r, 405, "method", "method %s not allowed here",
		    http_method_name(r->method));
		return;
	}
	r->routed = 1;
	r->rest = r->path + hit->len;
	if (*r->rest == '/')
		r->rest++;
	if ((hit->flags & HTTP_SECRET_REST) && *r->rest != '\0')
		r->log_len = hit->len;
	hit->fn(r, hit->arg);
}

/* Shutting down: requests already read are finished, this new one is not. */
static void http_send_draining(struct http *h, struct evhttp_request *req)
{
	static const char body[] = "{\"error\":\"shutting down\"}\n";
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct evbuffer *buf = evbuffer_new();
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	httpconn_refused(h, addr, "shutting_down");
	evhttp_add_header(out, "Content-Type", HTTP_CT_JSON);
	http_security_headers(out);
	evhttp_add_header(out, "Connection", "close");
	evhttp_add_header(out, "Retry-After", "5");
	if (buf != NULL)
		evbuffer_add(buf, body, sizeof(body) - 1);
	evhttp_send_reply(req, 503, "Service Unavailable", buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

/* evhttp's callback for every complete request. */
static void http_dispatch(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	struct http_conn *c = httpconn_of(h, req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	char *raw = NULL, *query = NULL;
	const char *why;
	struct http_req *r;

	/* From here the handler owns the time; the deadline returns with the next
	 * request on this connection. */
	if (c != NULL)
		httpconn_handled(c);
	evhttp_request_set_on_complete_cb(req, http_on_complete, h);
	if (h->draining) {
		http_send_draining(h, req);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	r->h = h;
	r->req = req;
	r->method = (int)evhttp_request_get_command(req);
	TAILQ_INIT(&r->query);
	LIST_INSERT_HEAD(&h->pending, r, link);
	if ((why = http_target_split(req, &raw, &query)) != NULL ||
	    (why = http_path_decode(raw, &r->path)) != NULL) {
		free(raw);
		free(query);
		http_error(r, 400, "path", "%s", why);
		return;
	}
	free(raw);
	/* A %00 would cut a decoded value short, as it would a path (see above). */
	if (query != NULL && (why = strstr(query, "%00")) != NULL) {
		char name[64];

		http_query_param_name(query, why, name, sizeof(name));
		free(query);
		http_error(r, 400, name, "%s: %%00 is not allowed in a query value", name);
		return;
	}
	if (query != NULL && *query != '\0' &&
	    evhttp_parse_query_str(query, &r->query) < 0) {
		free(query);
		http_error(r, 400, "query", "malformed query string");
		return;
	}
	free(query);
	r->body_len = evbuffer_get_length(in);
	if (r->body_len > h->max_body) {
		http_error(r, 413, "body", "body larger than %zu bytes", h->max_body);
		return;
	}
	if ((r->body = malloc(r->body_len + 1)) == NULL) {
		http_send_bare(r, 500);
		return;
	}
	if (evbuffer_copyout(in, r->body, r->body_len) != (ev_ssize_t)r->body_len) {
		http_send_bare(r, 500);
		return;
	}
	r->body[r->body_len] = '\0';
	http_route_request(r);
}

/* --- set-up --- */

int http_route(struct http *h, int methods, const char *prefix, enum http_role role,
    http_handler_fn *fn, void *arg, unsigned flags)
{
	struct http_route *rt;

	if (h == NULL || prefix == NULL || prefix[0] != '/' || fn == NULL ||
	    (methods & HTTP_METHODS_ALL) == 0 || h->nroutes == HTTP_ROUTES_MAX ||
	    role < HTTP_ROLE_PUBLIC || role > HTTP_ROLE_ADMIN)
		return -1;
	if (role == HTTP_ROLE_PUBLIC && !(flags & HTTP_SIGN_IN) &&
	    (strcmp(prefix, "/v1") == 0 || strncmp(prefix, HTTP_ADMIN_PREFIX,
	    strlen(HTTP_ADMIN_PREFIX)) == 0))
		return -1;
	rt = &h->routes[h->nroutes];
	if ((rt->prefix = strdup(prefix)) == NULL)
		return -1;
	rt->len = strlen(prefix);
	rt->methods = methods & HTTP_METHODS_ALL;
	rt->fn = fn;
	rt->arg = arg;
	rt->flags = flags;
	rt->role = role;
	h->nroutes++;
	return 0;
}

void http_routes_each(const struct http *h, void (*fn)(void *arg, int methods,
    const char *prefix, enum http_role role, unsigned flags), void *arg)
{
	size_t i;

	for (i = 0; i < h->nroutes; i++)
		fn(arg, h->routes[i].methods, h->routes[i].prefix, h->routes[i].role,
		    h->routes[i].flags);
}

unsigned short http_port(const struct http *h)
{
	return h->port;
}

void http_drain(struct http *h)
{
	if (h == NULL)
		return;
	h->draining = 1;
	h->starting = 0;
	while (!TAILQ_EMPTY(&h->held))
		http_error(TAILQ_FIRST(&h->held), 503, NULL, "shutting down");
}

void http_set_starting(struct http *h, int starting)
{
	struct http_req *r;

	if (h == NULL)
		return;
	h->starting = starting;
	while (!starting && (r = TAILQ_FIRST(&h->held)) != NULL) {
		TAILQ_REMOVE(&h->held, r, held_link);
		h->nheld--;
		r->held = 0;
		http_route_request(r);
	}
}

size_t http_pending(const struct http *h)
{
	const struct http_req *r;
	size_t n = 0;

	if (h != NULL)
		LIST_FOREACH(r, &h->pending, link)
			n++;
	return n;
}

/*
 * The connection caps. Each connection holds a descriptor: the total is kept to half
 * of what the process may open after HTTP_FD_RESERVE for everything else, whatever
 * was configured, and one address may hold an eighth of it by default.
 */
static void http_size_connections(struct http *h, const struct http_config *cfg)
{
	struct rlimit rl;
	size_t fit = HTTP_MAX_CONNECTIONS_DEFAULT;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fit = rl.rlim_cur > 2 * HTTP_FD_RESERVE ?
		    (size_t)(rl.rlim_cur - HTTP_FD_RESERVE) / 2 : HTTP_MAX_CONNECTIONS_MIN;
	if (fit < HTTP_MAX_CONNECTIONS_MIN)
		fit = HTTP_MAX_CONNECTIONS_MIN;
	h->max_connections = cfg->max_connections ? cfg->max_connections :
	    HTTP_MAX_CONNECTIONS_DEFAULT;
	if (h->max_connections > fit)
		h->max_connections = fit;
	h->max_per_address = cfg->max_per_address ? cfg->max_per_address :
	    h->max_connections / 8;
	if (h->max_per_address < 1)
		h->max_per_address = 1;
}

struct http *http_new(struct event_base *base, const struct http_config *cfg,
    struct err *err)
{
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	const char *addr;
	struct http *h;
	long ms, idle;

	if (base == NULL || cfg == NULL) {
		err_set(err, ERR_INPUT, "bad_config", NULL,
		    "http: no event base or config");
		return NULL;
	}
	ms = cfg->timeout_ms ? cfg->timeout_ms : HTTP_TIMEOUT_MS_DEFAULT;
	idle = cfg->idle_ms ? cfg->idle_ms : HTTP_IDLE_MS_DEFAULT;
	if (ms < 0 || idle < 0) {
		err_set(err, ERR_INPUT, "bad_config", ms < 0 ? "timeout_ms" : "idle_ms",
		    "http: %s must not be negative", ms < 0 ? "timeout_ms" : "idle_ms");
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto nomem;
	h->base = base;
	TAILQ_INIT(&h->conns);
	TAILQ_INIT(&h->held);
	LIST_INIT(&h->pending);
	h->max_body = cfg->max_body ? cfg->max_body : HTTP_MAX_BODY_DEFAULT;
	h->max_headers = cfg->max_headers ? cfg->max_headers : HTTP_MAX_HEADERS_DEFAULT;
	http_size_connections(h, cfg);
	h->timeout.tv_sec = ms / 1000;
	h->timeout.tv_usec = (ms % 1000) * 1000;
	h->idle.tv_sec = idle / 1000;
	h->idle.tv_usec = (idle % 1000) * 1000;
	h->health = cfg->health;
	h->health_arg = cfg->health_arg;
	h->metrics = cfg->metrics;
	if (cfg->admin_token != NULL && cfg->admin_token[0] != '\0') {
		if ((h->token = strdup(cfg->admin_token)) == NULL)
			goto nomem;
		h->token_len = strlen(h->token);
	}
	if (cfg->public_url != NULL && http_origin_set(h, cfg->public_url) < 0)
		goto nomem;
	if ((h->evh = evhttp_new(base)) == NULL)
		goto nomem;
	evhttp_set_max_body_size(h->evh, (ev_ssize_t)h->max_body);
	evhttp_set_max_headers_size(h->evh, (ev_ssize_t)h->max_headers);
	evhttp_set_timeout_tv(h->evh, &h->timeout);
	evhttp_set_allowed_methods(h->evh, HTTP_METHODS_ALL);
	evhttp_set_flags(h->evh, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_bevcb(h->evh, httpconn_bevcb, h);
	evhttp_set_gencb(h->evh, http_dispatch, h);
	if (http_route(h, EVHTTP_REQ_GET, "/healthz", HTTP_ROLE_PUBLIC, http_healthz, h,
	    HTTP_EXACT) < 0 ||
	    http_route(h, EVHTTP_REQ_GET, "/metrics", HTTP_ROLE_PUBLIC, http_metrics, h,
	    HTTP_EXACT) < 0)
		goto nomem;
	addr = cfg->listen_addr ? cfg->listen_addr : HTTP_LISTEN_DEFAULT;
	if ((bound = evhttp_bind_socket_with_handle(h->evh, addr, cfg->port)) == NULL) {
		err_set(err, ERR_PERM, "bind_failed", "listen",
		    "http: cannot listen on %s port %u", addr, (unsigned)cfg->port);
		http_free(h);
		return NULL;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss,
	    &sslen) < 0) {
		err_set(err, ERR_PERM, "bind_failed", "listen",
		    "http: cannot read the bound port");
		http_free(h);
		return NULL;
	}
	h->port = ss.ss_family == AF_INET6 ?
	    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
	    ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return h;
nomem:
	err_set(err, ERR_NOMEM, "nomem", NULL, "http: out of memory");
	http_free(h);
	return NULL;
}

void http_free(struct http *h)
{
	size_t i;

	if (h == NULL)
		return;
	while (!LIST_EMPTY(&h->pending))
		http_error(LIST_FIRST(&h->pending), 503, NULL, "shutting down");
	if (h->evh != NULL)
		evhttp_free(h->evh);    /* closes every connection: conn_closed */
	/* Connections accepted but never attached still hold our reference. */
	httpconn_free_all(h);
	for (i = 0; i < h->nroutes; i++)
		free(h->routes[i].prefix);
	if (h->token != NULL) {
		OPENSSL_cleanse(h->token, h->token_len);
		free(h->token);
	}
	free(h->origin);
	free(h);
}
