/*
 * httpconn.c: the HTTP server's connections (stage: http): who is let in, how long
 * each may take, and the raw request head before libevent reads it.
 *
 * Every connection is admitted against a cap per client address and a cap in total;
 * past the total, the oldest connection that has not finished sending a request head
 * is evicted to make room, so slow or idle clients cannot keep a webhook or /healthz
 * out. A request has one absolute deadline for its head and body, started at its
 * first byte and never restarted; between kept-alive requests a shorter idle timeout
 * runs. The raw head is copied as it arrives and checked (httphead.c) before libevent
 * parses it: a head we refuse (400, 413 for a declared body over the cap) is drained
 * unread by libevent, answered here and the connection closed. Refusals are counted
 * and logged at most once a second. It must never block, never log a path.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "clock.h"
#include "http_int.h"
#include "httphead.h"
#include "log.h"
#include "metrics.h"

#define HTTPCONN_LINGER_MS 1000         /* a refused connection is closed after this */
#define HTTPCONN_DISCARD_MAX (64 * 1024)        /* ... or after dropping this much */
#define HTTPCONN_LOG_MS 1000            /* refusals: at most one log line per this */

static void conn_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg);

/* --- refusals: counted, logged at most once a second --- */

void httpconn_count(struct http *h, const char *addr, const char *reason)
{
	const char *labels[3] = { reason, addr != NULL && addr[0] ? addr : "unknown", NULL };

	if (h->metrics != NULL)
		(void)metrics_inc(h->metrics, METRIC_HTTP_REFUSED, labels, 1);
}

void httpconn_refused(struct http *h, const char *addr, const char *reason)
{
	const char *labels[3] = { reason, addr != NULL && addr[0] ? addr : "unknown", NULL };
	long long now = clock_mono_ms();

	h->refused++;
	httpconn_count(h, addr, reason);
	if (h->refused_logged != 0 && now - h->refused_log_ms < HTTPCONN_LOG_MS)
		return;
	log_warnx("event=http_refused reason=%s peer=%s refused=%lu since_last=%lu",
	    reason, labels[1], h->refused, h->refused - h->refused_logged);
	h->refused_logged = h->refused;
	h->refused_log_ms = now;
}

/* --- life and death of a connection --- */

static void conn_free(struct http_conn *c)
{
	TAILQ_REMOVE(&c->h->conns, c, link);
	c->h->nconns--;
	evbuffer_remove_cb(bufferevent_get_input(c->bev), conn_input_cb, c);
	event_free(c->timer);
	event_free(c->act);
	free(c->head);
	free(c);
}

/* Never attached (closed by evhttp before, or not its connection): drop our
 * reference and forget it. */
static void conn_forget(struct http_conn *c)
{
	struct bufferevent *bev = c->bev;

	conn_free(c);
	bufferevent_decref(bev);
}

/* evhttp frees the connection: forget it. */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	conn_free(arg);
}

static void conn_arm_ms(struct http_conn *c, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

/* Starts the wait that goes with c's state (attached connections only). */
static void conn_arm(struct http_conn *c)
{
	if (c->evcon == NULL)
		return;
	switch (c->state) {
	case HTTP_CONN_HEAD:
	case HTTP_CONN_BODY:
		evtimer_add(c->timer, &c->h->timeout);
		break;
	case HTTP_CONN_IDLE:
		evtimer_add(c->timer, &c->h->idle);
		break;
	case HTTP_CONN_HANDLED:
		evtimer_del(c->timer);
		break;
	case HTTP_CONN_REFUSING:
		break;
	}
}

/*
 * Refuses c: what the client sent is dropped before libevent reads it, and on the next
 * loop turn c is answered status (0: no answer) and closed. why is a fixed message.
 */
static void conn_refuse(struct http_conn *c, int status, const char *reason,
    const char *why)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	c->state = HTTP_CONN_REFUSING;
	c->refuse_status = status;
	c->refuse_reason = reason;
	c->refuse_why = why;
	free(c->head);
	c->head = NULL;
	c->head_len = 0;
	evbuffer_drain(in, evbuffer_get_length(in));
	event_active(c->act, EV_TIMEOUT, 1);
}

static const char *conn_status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 413: return "Payload Too Large";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

/* Writes the refusal straight to the socket: nothing else is queued on it, and it is
 * small enough for any socket buffer. A client that does not read loses it. */
static void conn_write_refusal(struct http_conn *c, evutil_socket_t fd)
{
	char body[256], msg[1024];
	int blen, n;

	blen = snprintf(body, sizeof(body), "{\"error\":\"%s\"%s}\n", c->refuse_why,
	    c->refuse_status == 413 ? ",\"field\":\"body\"" :
	    c->refuse_status == 400 ? ",\"field\":\"head\"" : "");
	if (blen < 0 || (size_t)blen >= sizeof(body))
		return;
	n = snprintf(msg, sizeof(msg), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %d\r\nConnection: close\r\nCache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\nContent-Security-Policy: " HTTP_CSP "\r\n"
	    "Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n%s\r\n%s",
	    c->refuse_status,
	    conn_status_text(c->refuse_status), blen,
	    c->refuse_status == 503 ? "Retry-After: 1\r\n" : "", body);
	if (n > 0 && (size_t)n < sizeof(msg))
		(void)send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* --- admission --- */

/* Connections from c's address other than c. */
static size_t conn_count_addr(const struct http *h, const struct http_conn *c)
{
	const struct http_conn *o;
	size_t n = 0;

	TAILQ_FOREACH(o, &h->conns, link)
		if (o != c && o->state != HTTP_CONN_REFUSING && strcmp(o->addr, c->addr) == 0)
			n++;
	return n;
}

/* The oldest attached connection other than c with no request head read. */
static struct http_conn *conn_victim(struct http *h, const struct http_conn *c)
{
	struct http_conn *o;

	TAILQ_FOREACH(o, &h->conns, link)
		if (o != c && o->evcon != NULL && o->admitted && (o->state == HTTP_CONN_HEAD ||
		    o->state == HTTP_CONN_IDLE))
			return o;
	return NULL;
}

/* c's peer address as text, from its socket (so that it is known before evhttp's
 * connection is, at the first byte). */
static void conn_peer(struct http_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	c->addr[0] = '\0';
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->addr,
		    sizeof(c->addr));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->addr,
		    sizeof(c->addr));
}

/*
 * Admits c once, at its first byte or one loop turn after the accept, whichever is
 * first (a client that sends at once must not slip past the caps). 0: c may stay;
 * -1: c is being refused. Room in a full pool is made by refusing (closing, without
 * an answer) the oldest connection that has no whole request head.
 */
static int conn_admit(struct http_conn *c)
{
	struct http *h = c->h;
	struct http_conn *v;
	size_t live = 0;

	if (c->admitted || c->state == HTTP_CONN_REFUSING)
		return 0;
	c->admitted = 1;
	conn_peer(c);
	if (conn_count_addr(h, c) >= h->max_per_address) {
		conn_refuse(c, 503, "per_address", "too many connections from this address");
		return -1;
	}
	TAILQ_FOREACH(v, &h->conns, link)
		if (v->state != HTTP_CONN_REFUSING)
			live++;
	if (live <= h->max_connections)
		return 0;
	if ((v = conn_victim(h, c)) == NULL) {
		conn_refuse(c, 503, "max_connections", "too many connections");
		return -1;
	}
	conn_refuse(v, 0, "evicted", "evicted");
	return 0;
}

/*
 * evhttp has built its connection around our bufferevent and passes the connection
 * as the bufferevent's callback argument (libevent 2.1 http.c; its event callback is
 * set while the connection lives and cleared by bufferevent_free). Check that, take
 * evhttp's close callback, note the peer and drop our reference. 0, or -1 when c was
 * forgotten.
 */
static int conn_attach(struct http_conn *c)
{
	struct http *h = c->h;
	struct evhttp_connection *evcon;
	bufferevent_event_cb eventcb;
	void *cbarg = NULL;

	bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &cbarg);
	evcon = cbarg;
	if (eventcb == NULL || evcon == NULL ||
	    evhttp_connection_get_bufferevent(evcon) != c->bev ||
	    evhttp_connection_get_server(evcon) != h->evh) {
		conn_forget(c);
		return -1;
	}
	c->evcon = evcon;
	evhttp_connection_set_closecb(evcon, conn_closed, c);
	bufferevent_decref(c->bev);     /* evhttp still holds its own reference */
	return 0;
}

/* The attach (first run) and then the deadline of whatever c waits for. */
static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->evcon == NULL) {
		if (conn_attach(c) < 0 || conn_admit(c) < 0)
			return;
		conn_arm(c);
		return;
	}
	switch (c->state) {
	case HTTP_CONN_HANDLED:
		return;
	case HTTP_CONN_HEAD:
	case HTTP_CONN_BODY:
		httpconn_refused(c->h, c->addr, "read_deadline");
		break;
	case HTTP_CONN_IDLE:
	case HTTP_CONN_REFUSING:
		break;
	}
	evhttp_connection_free(c->evcon);       /* runs conn_closed: c is gone */
}

/* A refusal's next turn: answer, close our side, linger a little for the client to
 * read it (what it still sends is dropped), then close. */
static void conn_act(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	evutil_socket_t sock;

	(void)fd;
	(void)what;
	if (c->evcon == NULL && conn_attach(c) < 0)
		return;
	httpconn_refused(c->h, c->addr, c->refuse_reason);
	if (c->refuse_status == 0) {
		evhttp_connection_free(c->evcon);       /* runs conn_closed: c is gone */
		return;
	}
	if ((sock = bufferevent_getfd(c->bev)) >= 0) {
		conn_write_refusal(c, sock);
		(void)shutdown(sock, SHUT_WR);
	}
	conn_arm_ms(c, HTTPCONN_LINGER_MS);
}

/* --- the raw head --- */

/* Copies n new bytes at the end of buf into c's head and checks it once complete. */
static void conn_feed(struct http_conn *c, struct evbuffer *buf, size_t n)
{
	struct http *h = c->h;
	struct http_head_info info;
	struct evbuffer_ptr pos;
	size_t cap = h->max_headers + 2, take, end, len = evbuffer_get_length(buf);
	const char *why;

	if (c->head == NULL && (c->head = malloc(cap)) == NULL) {
		conn_refuse(c, 0, "nomem", "out of memory");
		return;
	}
	take = n < cap - c->head_len ? n : cap - c->head_len;
	if (take > 0 && (evbuffer_ptr_set(buf, &pos, len - n, EVBUFFER_PTR_SET) < 0 ||
	    evbuffer_copyout_from(buf, &pos, c->head + c->head_len, take) !=
	    (ev_ssize_t)take)) {
		conn_refuse(c, 0, "nomem", "out of memory");
		return;
	}
	c->head_len += take;
	if ((end = http_head_end(c->head, c->head_len)) == 0) {
		if (c->head_len >= cap)
			conn_refuse(c, 400, "head_too_large", "request head too large");
		return;
	}
	if (http_head_check(c->head, end, &info, &why) < 0) {
		conn_refuse(c, 400, "bad_head", why);
		return;
	}
	if (info.content_length == HTTP_HEAD_CL_HUGE ||
	    (info.content_length > 0 && (unsigned long long)info.content_length > h->max_body)) {
		conn_refuse(c, 413, "body_too_large", "declared body larger than the cap");
		return;
	}
	free(c->head);
	c->head = NULL;
	c->head_len = 0;
	c->state = HTTP_CONN_BODY;      /* the deadline runs on, not restarted */
}

/* Runs inside libevent's read, after the bytes land in the input buffer and before
 * evhttp's read callback parses them. */
static void conn_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct http_conn *c = arg;

	if (info->n_added == 0)
		return;
	if (!c->admitted && conn_admit(c) < 0)
		return;         /* refused: what it sent was dropped */
	switch (c->state) {
	case HTTP_CONN_REFUSING:
		c->discarded += info->n_added;
		evbuffer_drain(buf, evbuffer_get_length(buf));
		if (c->discarded > HTTPCONN_DISCARD_MAX && c->evcon != NULL)
			event_active(c->timer, EV_TIMEOUT, 1);
		return;
	case HTTP_CONN_IDLE:
		c->state = HTTP_CONN_HEAD;      /* the request's deadline starts now */
		conn_arm(c);
		break;
	case HTTP_CONN_HEAD:
		break;
	case HTTP_CONN_BODY:
	case HTTP_CONN_HANDLED:
		return;         /* the next request is read after this one is answered */
	}
	conn_feed(c, buf, info->n_added);
}

/* --- what http.c calls --- */

struct bufferevent *httpconn_bevcb(struct event_base *base, void *arg)
{
	static const struct timeval now = { 0, 0 };
	struct http *h = arg;
	struct http_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->h = h;
	c->state = HTTP_CONN_HEAD;
	if ((c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto err;
	if ((c->timer = evtimer_new(base, conn_timer, c)) == NULL ||
	    (c->act = evtimer_new(base, conn_act, c)) == NULL ||
	    evbuffer_add_cb(bufferevent_get_input(c->bev), conn_input_cb, c) == NULL)
		goto err;
	bufferevent_incref(c->bev);
	evtimer_add(c->timer, &now);
	TAILQ_INSERT_TAIL(&h->conns, c, link);
	h->nconns++;
	return c->bev;
err:
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->act != NULL)
		event_free(c->act);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
	return NULL;
}

struct http_conn *httpconn_of(struct http *h, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct http_conn *c;

	if (evcon == NULL)
		return NULL;
	bev = evhttp_connection_get_bufferevent(evcon);
	TAILQ_FOREACH(c, &h->conns, link)
		if (c->bev == bev)
			return c;
	return NULL;
}

void httpconn_handled(struct http_conn *c)
{
	if (c->state == HTTP_CONN_REFUSING)
		return;
	c->state = HTTP_CONN_HANDLED;
	conn_arm(c);
}

void httpconn_answered(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);

	if (c->state == HTTP_CONN_REFUSING)
		return;
	c->state = HTTP_CONN_IDLE;
	conn_arm(c);
	if (n == 0)
		return;
	/* The client sent (part of) its next request already: read it as new. */
	c->state = HTTP_CONN_HEAD;
	conn_arm(c);
	conn_feed(c, in, n);
}

void httpconn_free_all(struct http *h)
{
	struct http_conn *c;

	while ((c = TAILQ_FIRST(&h->conns)) != NULL)
		conn_forget(c);
}
