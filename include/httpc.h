/*
 * httpc.h: HTTP client requests (POST, GET) on the libevent loop through libcurl multi
 * (stage: send).
 *
 * One curl multi handle driven by curl_multi_socket_action from libevent socket and
 * timer events; the loop never blocks. Connections are kept alive and reused. Every
 * request has a total and a connect deadline. Response bodies are capped.
 */
#ifndef DEALPUSH_HTTPC_H
#define DEALPUSH_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct event_base;
struct httpc;

#define HTTPC_BODY_MAX 65536    /* response bytes kept; the rest is dropped */
#define HTTPC_HEADERS_MAX 16

struct httpc_req {
	const char *url;
	const char *content_type;       /* e.g. "application/x-www-form-urlencoded" */
	const char *body;               /* POST only; a GET sends no body */
	size_t body_len;
	const char *basic_user;         /* HTTP Basic auth when non-NULL */
	const char *basic_pass;
	const char *bearer;             /* "Authorization: Bearer ..." when non-NULL */
	const char *headers[HTTPC_HEADERS_MAX]; /* extra "Name: value" lines, NULL-ended */
	long timeout_ms;                /* total; 0 = the httpc default */
	long connect_timeout_ms;        /* 0 = the httpc default */
};

struct httpc_resp {
	int status;                     /* HTTP status; 0 when no response was received
	                                 * (set with transport_error when an answer was
	                                 * cut off after its status line) */
	int transport_error;            /* 1 on connect failure, reset, timeout ... */
	int timed_out;                  /* 1 when a deadline passed */
	int connected;                  /* 1 when the request may have reached the peer */
	const char *body;               /* borrowed, NUL-terminated, valid in the callback */
	size_t body_len;
	long retry_after_s;             /* Retry-After (seconds or HTTP date) or -1 */
	int64_t rate_limit_reset_at;    /* X-Rate-Limit-Reset (epoch seconds) or -1 */
	double total_ms;                /* time from start to completion */
	char error[256];                /* curl message on a transport error */
};

/* Called exactly once per request: on completion, on failure, or with status 0 and
 * cancelled = 1 from httpc_free(). resp is borrowed: copy what must outlive the call. */
typedef void httpc_done_fn(void *arg, const struct httpc_resp *resp, int cancelled);

struct httpc_config {
	long default_timeout_ms;        /* e.g. 10000 */
	long default_connect_timeout_ms;/* e.g. 2000 */
	long max_host_connections;      /* 0 = unlimited */
	long max_connects;              /* connection cache size; 0 = libcurl's default */
};

/* Returns a new client on base, or NULL with *err (kind ERR_NOMEM or ERR_PERM). */
struct httpc *httpc_new(struct event_base *base, const struct httpc_config *cfg,
    struct err *err);

/* Cancels every request in flight (each callback runs with cancelled = 1), frees the
 * client. httpc_free(NULL) does nothing. */
void httpc_free(struct httpc *h);

/* Starts req (all strings are copied). Returns 0, or -1 with *err, in which case done
 * is never called. */
int httpc_post(struct httpc *h, const struct httpc_req *req, httpc_done_fn *done,
    void *arg, struct err *err);

/* Starts req as a GET: the same deadlines, headers, auth, body cap and callback
 * contract as httpc_post; req->body is ignored. Returns 0, or -1 with *err, in which
 * case done is never called. */
int httpc_get(struct httpc *h, const struct httpc_req *req, httpc_done_fn *done,
    void *arg, struct err *err);

/* Number of requests started and not yet completed. */
size_t httpc_in_flight(const struct httpc *h);

#endif
