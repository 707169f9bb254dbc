/*
 * http_int.h: what http.c (requests, routing) and httpconn.c (connections: admission,
 * deadlines, the raw head) share inside the HTTP stage. Not a public header.
 */
#ifndef DEALPUSH_HTTP_INT_H
#define DEALPUSH_HTTP_INT_H

#include <sys/queue.h>
#include <sys/time.h>

#include <stddef.h>

#include <event2/keyvalq_struct.h>

#include "http.h"

struct bufferevent;
struct event;
struct evbuffer;
struct evhttp;
struct evhttp_connection;
struct evhttp_request;

#define HTTP_ROUTES_MAX 128
#define HTTP_ADDR_MAX 64                /* a peer address as text */

struct http_route {
	int methods;
	char *prefix;
	size_t len;
	http_handler_fn *fn;
	void *arg;
	unsigned flags;
	enum http_role role;
};

/* Where a connection is in its life; see httpconn.c. */
enum http_conn_state {
	HTTP_CONN_HEAD,         /* reading a request head: evictable */
	HTTP_CONN_IDLE,         /* kept alive, waiting for the next request: evictable */
	HTTP_CONN_BODY,         /* head accepted, libevent reads the body */
	HTTP_CONN_HANDLED,      /* a handler holds the request */
	HTTP_CONN_REFUSING      /* being answered by us and closed */
};

/*
 * One client connection, tracked from the bufferevent evhttp asks us for (bevcb) to
 * evhttp's close callback. Until the close callback is set ("attached", one loop turn
 * after the accept) we hold a reference on the bufferevent so that it cannot vanish
 * under us. Oldest first in http.conns.
 */
struct http_conn {
	struct http *h;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;        /* NULL until attached */
	struct event *timer;                    /* attach (0 s), then the deadline */
	struct event *act;                      /* runs a refusal on the next turn */
	enum http_conn_state state;
	int admitted;                           /* checked against the caps */
	char addr[HTTP_ADDR_MAX];               /* "" until admitted */
	char *head;                             /* the raw head read so far */
	size_t head_len;
	int refuse_status;                      /* 0: close without an answer */
	const char *refuse_why;                 /* a fixed message */
	const char *refuse_reason;              /* for logs and metrics */
	size_t discarded;                       /* bytes dropped while refusing */
	TAILQ_ENTRY(http_conn) link;
};

/* One request from dispatch to its answer (http.c). */
struct http_req {
	struct http *h;
	struct evhttp_request *req;
	int method;
	char *path;                             /* decoded; libevent allocates it */
	const char *rest;
	size_t log_len;                 /* > 0: log only this much of path (a secret) */
	int routed;                     /* a route took it */
	int held;                       /* in h->held: waits for the routes to come */
	struct evkeyvalq query;
	char *body;
	size_t body_len;
	/* Routing decided before authentication (http_auth.c) goes on with it. */
	const struct http_route *best, *hit;
	int allowed;                    /* methods of the routes at best's prefix */
	enum http_role need;
	int authed;                     /* principal is set */
	struct http_principal principal;
	LIST_ENTRY(http_req) link;
	TAILQ_ENTRY(http_req) held_link;
};

struct http {
	struct event_base *base;
	struct evhttp *evh;
	unsigned short port;
	size_t max_body;
	size_t max_headers;
	size_t max_connections;
	size_t max_per_address;
	struct timeval timeout;                 /* a request's read deadline */
	struct timeval idle;                    /* between kept-alive requests */
	char *token;                            /* http.admin_token; NULL: none */
	size_t token_len;
	char *origin;                           /* public_url's origin; NULL: none */
	int secure;                             /* public_url is https */
	const struct http_auth_ops *auth;       /* named tokens, sessions; NULL: none */
	void *auth_arg;
	http_health_fn *health;
	void *health_arg;
	struct metrics *metrics;
	struct http_route routes[HTTP_ROUTES_MAX];
	size_t nroutes;
	TAILQ_HEAD(, http_conn) conns;
	size_t nconns;
	int draining;                           /* shutting down: new requests 503 */
	int starting;                           /* routes still to come: a path with no
	                                         * route yet waits in held */
	TAILQ_HEAD(, http_req) held;            /* waiting for http_set_starting(h, 0) */
	size_t nheld;
	unsigned long refused, refused_logged;  /* refusals, and at the last log line */
	long long refused_log_ms;               /* monotonic ms of the last log line */
	LIST_HEAD(, http_req) pending;          /* dispatched, not yet answered */
};

/* Sends buf (its bytes moved out; the caller frees it) with status and content type
 * ctype, and frees r (http.c). */
void http_send(struct http_req *r, int status, const char *ctype, struct evbuffer *buf);

/* Answers r with status and no body, and frees r: the last resort when an answer
 * cannot be built (http.c). */
void http_send_bare(struct http_req *r, int status);

/* The request's method as text ("GET"). */
const char *http_method_name(int m);

/* Authenticates r for r->need (http_auth.c): goes on with http_route_finish(r) once
 * the principal is known and allowed, or answers r (401, 403, 503). */
void http_authenticate(struct http_req *r);

/* After authentication: 404, 405, or the route's handler (http.c). */
void http_route_finish(struct http_req *r);

/* The security headers of every answer (http_auth.c). */
void http_security_headers(struct evkeyvalq *out);

/* Sets h->origin and h->secure from a public URL ("https://host:port/..."); 0, or -1
 * when out of memory (http_auth.c). */
int http_origin_set(struct http *h, const char *public_url);

/* The built-in routes (httpstatus.c); arg is the struct http. */
void http_healthz(struct http_req *r, void *arg);
void http_metrics(struct http_req *r, void *arg);

/* evhttp's bufferevent callback: a new connection, tracked from here. NULL only when
 * out of memory (evhttp then makes its own, untracked). */
struct bufferevent *httpconn_bevcb(struct event_base *base, void *arg);

/* The tracked connection of a request, or NULL. */
struct http_conn *httpconn_of(struct http *h, struct evhttp_request *req);

/* A request of c is handed to its handler: no read deadline until it is answered. */
void httpconn_handled(struct http_conn *c);

/* The answer to c's request was written: c waits for its next request, on the idle
 * timeout, and reads what the client already sent of it. */
void httpconn_answered(struct http_conn *c);

/* Counts one refusal of peer addr ("" when unknown) for reason and logs it, at most
 * one line a second with the count since the last. */
void httpconn_refused(struct http *h, const char *addr, const char *reason);

/* Counts one refusal of peer addr for reason on /metrics only (a 4xx answer). */
void httpconn_count(struct http *h, const char *addr, const char *reason);

/* Forgets connections accepted but never attached (after evhttp_free). */
void httpconn_free_all(struct http *h);

#endif
