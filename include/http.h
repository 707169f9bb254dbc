/*
 * http.h: the notifier's HTTP server on the daemon's event_base (stage: http).
 *
 * One evhttp listener (127.0.0.1 by default) with request size and time limits, a
 * routing table (method bitmask + path prefix + the role a request needs: see
 * http_auth.c and docs/api.md "Sign-in and roles"), JSON replies and
 * errors that name the field, and two built-in routes: GET /healthz and GET /metrics.
 * Handlers run on the loop and must never block it; each request is answered exactly
 * once through http_reply, http_reply_json or http_error, at once or later.
 */
#ifndef DEALPUSH_HTTP_H
#define DEALPUSH_HTTP_H

#include <stddef.h>

#include "err.h"

struct cJSON;
struct event_base;
struct evhttp_request;
struct metrics;
struct http;
struct http_req;

#define HTTP_LISTEN_DEFAULT "127.0.0.1"
#define HTTP_MAX_BODY_DEFAULT (64 * 1024)
#define HTTP_MAX_HEADERS_DEFAULT (8 * 1024)     /* request line + headers */
#define HTTP_TIMEOUT_MS_DEFAULT 10000
#define HTTP_IDLE_MS_DEFAULT 5000
#define HTTP_MAX_CONNECTIONS_DEFAULT 4096       /* and at most what the fd limit fits */
#define HTTP_MAX_CONNECTIONS_MIN 16
#define HTTP_PATH_MAX 1024                      /* longer paths get 400 */
#define HTTP_ADMIN_PREFIX "/v1/"                /* every path under it needs a credential,
                                                 * but for routes of HTTP_ROLE_PUBLIC */
#define HTTP_NAME_MAX 64                        /* a principal's (token's) name */
#define HTTP_SESSION_COOKIE "dp_session"
#define HTTP_CSRF_HEADER "X-CSRF-Token"
#define HTTP_CONFIG_PRINCIPAL "config"          /* the name of http.admin_token */
/* Every answer's Content-Security-Policy: no inline script, nothing from elsewhere,
 * never framed (docs/http.md). */
#define HTTP_CSP "default-src 'self'; script-src 'self'; object-src 'none'; " \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/*
 * The role a route needs; a principal holds one and may use every route of its role
 * and below (viewer < marketer < admin). Set for each route where it is registered.
 * ORDER HTTP_ROLES: http_role_name().
 */
enum http_role {
	HTTP_ROLE_PUBLIC = 0,   /* no credential: hooks, clicks, /healthz, sign-in */
	HTTP_ROLE_VIEWER,       /* reads */
	HTTP_ROLE_MARKETER,     /* rules, simulate, deals, codes, test sends, pause */
	HTTP_ROLE_ADMIN         /* tokens, subscribers, consent, bulk import, audit */
};

/* "public", "viewer", "marketer", "admin". */
const char *http_role_name(enum http_role role);

/* The role named name ("viewer", "marketer", "admin"), or -1 (public is no role a
 * principal can hold). */
int http_role_parse(const char *name);

/* Who made a request: a token's name and role. */
struct http_principal {
	char name[HTTP_NAME_MAX + 1];
	enum http_role role;
	unsigned char csrf[32];         /* a session's: SHA-256 of its CSRF token */
	int session;                    /* 1: signed in by the session cookie */
};

/*
 * Named tokens and sessions, beyond http.admin_token (which http_auth.c checks itself):
 * given to the server by the module that keeps them (tokens.c).
 */
struct http_auth_ops {
	/* A bearer token (len bytes, not NUL-terminated): 1 and *p filled when it is
	 * one, 0 when it is unknown, -1 when the tokens are not loaded yet (503). */
	int (*bearer)(void *arg, const char *token, size_t len, struct http_principal *p);
	/* A session id from the cookie: looks it up and calls http_auth_resume(r, p)
	 * exactly once, at once or from a later callback (p NULL: no such session), or
	 * answers r itself (a 503 when storage fails). */
	void (*session)(void *arg, struct http_req *r, const char *id);
};

/* Sets the provider of named tokens and sessions (ops and arg borrowed; NULL ops
 * removes it: only http.admin_token is known then). */
void http_set_auth(struct http *h, const struct http_auth_ops *ops, void *arg);

/* Goes on with r once its session is known (p NULL: unknown or expired: 401): the
 * role and cross-site checks, then the route. */
void http_auth_resume(struct http_req *r, const struct http_principal *p);

/* The session id of r's cookie (64 hex digits) into out (size > 64); 0, or -1 when
 * there is none (or it is malformed). */
int http_session_cookie(const struct http_req *r, char *out, size_t size);

/* 1 when r has no Origin header or one equal to the public URL's origin (without a
 * public URL: "http://" + its Host header), else 0. */
int http_origin_ok(const struct http_req *r);

/* 1 when the public URL is https: the session cookie is then Secure. */
int http_secure(const struct http *h);

/* The principal of an authenticated request; NULL on a public route. Lives as long
 * as r. */
const struct http_principal *http_req_principal(const struct http_req *r);

/* SHA-256 of len bytes of p into out; 0, or -1 (the digest failed). */
int http_sha256(const void *p, size_t len, unsigned char out[32]);

/* Route flags. */
#define HTTP_EXACT 0x2u         /* the path must equal the prefix (no rest) */
#define HTTP_SECRET_REST 0x4u   /* the rest of the path is a credential (a click
                                 * token): logs show the prefix and "/..." only */
#define HTTP_SIGN_IN 0x8u       /* a HTTP_ROLE_PUBLIC route under HTTP_ADMIN_PREFIX:
                                 * without it http_route refuses one, so that no
                                 * admin route is left open by mistake */

/* What GET /healthz reports; filled by the daemon's health callback. */
struct http_health {
	int redis_ok;                   /* 1 when Redis answers */
	long long stream_lag;           /* entries waiting on the streams */
	size_t rules_loaded;            /* rules in use */
	const char *detail;             /* NULL or a short reason; copied at once */
	size_t planning;                /* deals being planned */
	size_t plan_ranked, plan_done;  /* their ranked subscribers, sliced so far */
	long long plan_stalled_ms;      /* longest time one went without progress */
	const char *plan_stalled_deal;  /* its id, or NULL */
	unsigned long plans_failed;     /* plan attempts failed since start */
	int mirror_ready;               /* every subscriber loaded */
	int mirror_loading;             /* a full load (first or reload) in progress */
	size_t mirror_subscribers;      /* subscribers in the mirror */
	unsigned long mirror_reconnects;/* its connection made again */
	unsigned long mirror_reloads;   /* full loads after the first */
	const char *mirror_reload_reason; /* the last one's: "reconnect", "gap", "" */
	int shards_owned;               /* shard ownership is on (owner.h): the next two */
	size_t shards_served;           /* shards whose lease this notifier holds */
	size_t shards_loading;          /* of them, those whose mirror is still loading */
	unsigned long redis_connects;   /* successful connects of the script connection */
	unsigned long redis_timeouts;   /* its commands timed out (server silent) */
	long wait_replicas;             /* redis.wait_replicas; 0: the next three unused */
	unsigned long waits, waits_short; /* WAIT verdicts, and the short ones */
	int replica_lag;                /* the last verdict, recent, was short */
};

/* Fills *out and returns 1 when healthy, 0 when not (answered 503). Runs on the loop:
 * it must answer from state it already has, never wait. */
typedef int http_health_fn(void *arg, struct http_health *out);

/* Runs for a routed request; r stays valid until one reply function is called on it
 * (at once, or later from another callback), or until http_free. */
typedef void http_handler_fn(struct http_req *r, void *arg);

struct http_config {
	const char *listen_addr;        /* an IP address; NULL: HTTP_LISTEN_DEFAULT */
	unsigned short port;            /* 0: a kernel-chosen port, see http_port() */
	size_t max_body;                /* request body bytes; 0: 64 KiB; over it: 413 */
	size_t max_headers;             /* request line + header bytes; 0: 8 KiB */
	long timeout_ms;                /* absolute read deadline of one request, head
	                                 * and body, from its first byte (from the
	                                 * accept for the first) to its dispatch; also
	                                 * libevent's idle timeout while writing; 0: 10 s */
	long idle_ms;                   /* a kept-alive connection waiting for its next
	                                 * request is closed after this; 0: 5 s */
	size_t max_connections;         /* open client connections; 0: 4096; never more
	                                 * than (fd limit - 256) / 2. Past it the oldest
	                                 * connection without a complete request head is
	                                 * closed, or else the new one (503) */
	size_t max_per_address;         /* open connections of one client address; 0: an
	                                 * eighth of max_connections; more: 503, closed */
	const char *admin_token;        /* copied; the principal "config", admin role.
	                                 * NULL or "" with no http_set_auth: routes
	                                 * that need a role answer 503 */
	const char *public_url;         /* NULL, or the console's origin: an https one
	                                 * makes the session cookie Secure, and a cookie
	                                 * request's Origin must equal it */
	http_health_fn *health;         /* NULL: /healthz answers 503 */
	void *health_arg;
	struct metrics *metrics;        /* borrowed; NULL: /metrics answers 503 */
};

/* Binds cfg->listen_addr:cfg->port on base and registers GET /healthz and GET /metrics.
 * Returns the server, or NULL with *err (ERR_INPUT for a bad setting, ERR_PERM when the
 * address cannot be bound, ERR_NOMEM). cfg is copied; metrics and health_arg are
 * borrowed and must outlive the server. */
struct http *http_new(struct event_base *base, const struct http_config *cfg,
    struct err *err);

/* Answers every request still held by a handler with 503 (so every http_req is gone:
 * handlers must drop theirs), closes every connection and the listener, frees h.
 * http_free(NULL) does nothing. */
void http_free(struct http *h);

/* Shutting down: requests already read go on to their handlers' answers; every
 * request read from now on is answered 503 with Retry-After and its connection
 * closed. */
void http_drain(struct http *h);

/* While starting is 1, a request for a path no route matches waits (at most
 * HTTP_HELD_MAX of them; more are answered 503 with Retry-After) and is routed when
 * starting goes back to 0, or answered 503 by http_drain: the server is up before
 * every module has added its routes (the notifier reads the key layout first). */
#define HTTP_HELD_MAX 256
void http_set_starting(struct http *h, int starting);

/* Requests a handler holds, not answered yet. */
size_t http_pending(const struct http *h);

/* The bound port (the kernel's choice when cfg->port was 0). */
unsigned short http_port(const struct http *h);

/* Routes requests whose method is in methods (EVHTTP_REQ_* bits; a GET route also takes
 * HEAD) and whose decoded path is prefix, or starts with it followed by '/' (or prefix
 * ends with '/'); HTTP_EXACT allows only the prefix itself. The longest matching prefix
 * wins; when it has no route for the method the answer is 405 with Allow. A request
 * needs a principal of role or above (none for HTTP_ROLE_PUBLIC): no or an unknown
 * credential is 401, a lower role 403 naming the role needed. One prefix may have
 * routes of different roles for different methods. prefix is copied. Returns 0, or
 * -1 when prefix does not start with '/', a public route under HTTP_ADMIN_PREFIX
 * lacks HTTP_SIGN_IN, or out of memory. */
int http_route(struct http *h, int methods, const char *prefix, enum http_role role,
    http_handler_fn *fn, void *arg, unsigned flags);

/* The routes, for GET /v1/routes and the role tests: calls fn for each in the order
 * they were added. */
void http_routes_each(const struct http *h, void (*fn)(void *arg, int methods,
    const char *prefix, enum http_role role, unsigned flags), void *arg);

/* The libevent request (borrowed; for what the helpers below do not cover). */
struct evhttp_request *http_req_evhttp(struct http_req *r);

/* The request method (EVHTTP_REQ_*). */
int http_req_method(const struct http_req *r);

/* The percent-decoded path ("/v1/rules/a b"), and the part after the route's prefix
 * without its leading '/' ("a b"; "" when none). Both live as long as r. */
const char *http_req_path(const struct http_req *r);
const char *http_req_rest(const struct http_req *r);

/* The first value of query parameter name, decoded, or NULL. Lives as long as r. */
const char *http_query(const struct http_req *r, const char *name);

/* The first value of request header name (case-insensitive), or NULL. */
const char *http_header(const struct http_req *r, const char *name);

/* The request body, copied out of libevent and NUL-terminated (so a JSON body can be
 * parsed in place; it may hold other NULs, *len says how long it is); at most
 * max_body bytes, larger bodies were answered 413 before the handler. Lives as long
 * as r; never NULL ("" when there is no body). */
const char *http_body(const struct http_req *r, size_t *len);

/* Adds a response header for the coming reply (copied). Returns 0 or -1 (a line break
 * in name or value, or out of memory). */
int http_add_header(struct http_req *r, const char *name, const char *value);

/* Answers r with status and body (len bytes, copied; content_type NULL means
 * "text/plain; charset=utf-8") and frees r. Returns 0, or -1 when out of memory, in
 * which case a bare 500 was attempted; r is freed either way. */
int http_reply(struct http_req *r, int status, const char *content_type,
    const void *body, size_t len);

/* Answers r with json (takes ownership of it and frees it) as application/json and
 * frees r. Returns 0 or -1 as http_reply. */
int http_reply_json(struct http_req *r, int status, struct cJSON *json);

/* Answers r with {"error": "<message>", "field": "<field>"} (no "field" when field is
 * NULL) and frees r. Returns 0 or -1 as http_reply. */
int http_error(struct http_req *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers r with the refusal of a parser of its body: 500 when e is out of memory,
 * 413 for "too_large", else 400 naming e->field ("body" when none), e->msg as the
 * message; frees r. Returns 0 or -1 as http_reply. */
int http_error_input(struct http_req *r, const struct err *e);

/*
 * A request a module answers from a later callback (a Redis reply), kept in the
 * module's list so that freeing the module first detaches it: embed it first in the
 * module's own record. After http_wait_detach_all the record's owner is gone and r is
 * NULL (http_free answers such requests 503); its callback only frees it.
 */
struct http_wait {
	struct http_wait **head;        /* the module's list; NULL once detached */
	struct http_wait *prev, *next;
	struct http_req *r;             /* NULL once detached or answered */
};

/* Puts w (zeroed) in the list at *head, waiting to answer r. */
void http_wait_add(struct http_wait **head, struct http_wait *w, struct http_req *r);

/* Takes w out of its list (nothing once detached). */
void http_wait_remove(struct http_wait *w);

/* Detaches every record of the list (the module is being freed). */
void http_wait_detach_all(struct http_wait **head);

#endif
