/*
 * httpc.c: HTTP POSTs and GETs on the libevent loop through one libcurl multi handle
 * (stage: send).
 *
 * libcurl says which sockets to watch (socket callback; our state hangs on each socket
 * through curl_multi_assign) and when to wake it (timer callback; one evtimer); libevent
 * tells libcurl what happened through curl_multi_socket_action. Every request has a
 * connect and a total deadline; response bodies are capped at HTTPC_BODY_MAX.
 * It must never block the loop (no curl_easy_perform, no blocking DNS), never call
 * libcurl from the timer callback, and never run a done callback twice or while
 * libcurl is on the stack.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "httpc.h"
#include "strcopy.h"

#define HTTPC_BODY_INITIAL 1024         /* first response buffer; doubles up to the cap */
#define HTTPC_HEADER_VALUE_MAX 128      /* longer header values are ignored */
#define HTTPC_RETRY_AFTER_MAX (7L * 86400)  /* a longer wait is clamped to a week */
#define HTTPC_IDLE_MAX 256              /* finished transfers kept for reuse */

/* Per socket, hung on the socket with curl_multi_assign. */
struct httpc_sock {
	struct httpc *h;
	struct event *ev;
	short kind;                     /* the events ev waits for */
	LIST_ENTRY(httpc_sock) link;
};

/* Per transfer, hung on the easy handle with CURLOPT_PRIVATE. */
struct httpc_xfer {
	struct httpc *h;
	CURL *easy;
	struct curl_slist *headers;
	httpc_done_fn *done;
	void *arg;
	char *body;                     /* response, NUL-terminated, at most HTTPC_BODY_MAX */
	size_t body_len;
	size_t body_cap;
	int body_oom;
	long retry_after_s;             /* Retry-After as delta-seconds, or -1 */
	time_t retry_after_at;          /* Retry-After as an HTTP-date, or -1 */
	char date[HTTPC_HEADER_VALUE_MAX]; /* the response's Date header, "" when none:
	                                * parsed only for a Retry-After HTTP-date */
	int64_t rate_limit_reset_at;    /* X-Rate-Limit-Reset, or -1 */
	CURLcode result;
	char errbuf[CURL_ERROR_SIZE];
	int primed;                     /* easy holds the options every request shares */
	int reached;                    /* curl got to sending this request (its transfer
	                                 * info is this request's, not the last one's) */
	TAILQ_ENTRY(httpc_xfer) link;   /* on running or finished, never both */
};

TAILQ_HEAD(httpc_xfer_queue, httpc_xfer);

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct httpc_config cfg;
	struct httpc_xfer_queue running;   /* added to the multi handle */
	struct httpc_xfer_queue finished;  /* removed from it; callback not yet run */
	struct httpc_xfer_queue idle;      /* done, kept with their easy handles for reuse */
	size_t nidle;
	LIST_HEAD(, httpc_sock) socks;
	size_t in_flight;
	int depth;      /* done callbacks on the stack */
	int dying;      /* httpc_free was called; the memory goes when depth is 0 */
};

/* curl_global_init is process-wide and not reference counted by libcurl itself. The
 * daemon is one thread, so a plain counter is enough. */
static unsigned httpc_global_users;

static void httpc_destroy(struct httpc *h);

static void on_socket(evutil_socket_t fd, short events, void *arg);

/* CURLMOPT_SOCKETFUNCTION: watch s for what, or stop watching it. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
	struct httpc *h = userp;
	struct httpc_sock *sk = socketp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL) {
			LIST_REMOVE(sk, link);
			event_free(sk->ev);
			free(sk);
		}
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (sk == NULL) {
		sk = calloc(1, sizeof(*sk));
		if (sk == NULL)
			return -1;
		sk->h = h;
		sk->ev = event_new(h->base, s, kind, on_socket, sk);
		if (sk->ev == NULL) {
			free(sk);
			return -1;
		}
		LIST_INSERT_HEAD(&h->socks, sk, link);
		curl_multi_assign(h->multi, s, sk);
	} else if (sk->kind == kind && event_pending(sk->ev, EV_READ | EV_WRITE, NULL)) {
		/* Already waiting for exactly that: no epoll_ctl for nothing. */
		return 0;
	} else {
		/* event_assign may only touch an event that is not pending. */
		event_del(sk->ev);
		event_assign(sk->ev, h->base, s, kind, on_socket, sk);
	}
	sk->kind = kind;
	return event_add(sk->ev, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms or deletes our one evtimer; never calls
 * libcurl (it may be called from inside libcurl). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *h = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(h->timer) == 0 ? 0 : -1;
	/* 0 ("act now") arms a zero timeout: it fires on the next pass of the loop,
	 * after the events already pending, without sleeping a millisecond in
	 * epoll_wait as the hiperfifo habit of 1 ms would (twice per new request:
	 * measured by the e2e_first_push bench, docs/performance.md). */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

/* 1 when the request may have reached the peer, 0 only when it certainly did not:
 * no HTTP status, no request bytes written, and either an error that happens before
 * a connection exists or a deadline that passed before curl got to send. */
static int xfer_maybe_sent(CURL *easy, CURLcode rc, long status)
{
	curl_off_t pretransfer_us = 0;
	long request_size = 0;

	if (rc == CURLE_OK || status != 0)
		return 1;
	curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
	if (request_size > 0)
		return 1;
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		/* Pretransfer is stamped just before curl starts sending the request. */
		curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
		return pretransfer_us > 0;
	default:
		return 1;
	}
}

static long xfer_retry_after(const struct httpc_xfer *x)
{
	time_t now;
	double d;

	if (x->retry_after_s >= 0)
		return x->retry_after_s;
	if (x->retry_after_at == -1)
		return -1;
	/* An HTTP-date is measured against the server's own Date when it sent one, so a
	 * skewed clock on either side does not stretch or shrink the wait. */
	now = x->date[0] != '\0' ? curl_getdate(x->date, NULL) : -1;
	if (now == -1)
		now = time(NULL);
	d = difftime(x->retry_after_at, now);
	if (d <= 0)
		return 0;
	return d > HTTPC_RETRY_AFTER_MAX ? HTTPC_RETRY_AFTER_MAX : (long)d;
}

static void xfer_free(struct httpc_xfer *x)
{
	if (x == NULL)
		return;
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x);
}

/*
 * x's transfer is over: x goes to h's idle list with its easy handle (connections stay
 * in the multi handle's cache) and its body buffer, so the next request allocates
 * neither; beyond HTTPC_IDLE_MAX, or when h is going, it is freed. The handle keeps
 * its options: those every request shares stay (a reset and setting them again cost
 * about a tenth of a push's work in the notifier), and xfer_setopts sets every one
 * that differs between requests each time, so nothing of one request reaches the
 * next.
 */
static void xfer_recycle(struct httpc *h, struct httpc_xfer *x)
{
	char *body = x->body;
	size_t cap = x->body_cap;
	CURL *easy = x->easy;
	int primed = x->primed;

	if (h->dying || h->nidle >= HTTPC_IDLE_MAX || easy == NULL) {
		xfer_free(x);
		return;
	}
	/* The header list goes: the handle must not point at it until the next
	 * request sets its own. */
	if (curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL) != CURLE_OK) {
		xfer_free(x);
		return;
	}
	curl_slist_free_all(x->headers);
	memset(x, 0, sizeof(*x));
	x->easy = easy;
	x->primed = primed;
	x->body = body;
	x->body_cap = cap;
	if (body != NULL)
		body[0] = '\0';
	TAILQ_INSERT_HEAD(&h->idle, x, link);
	h->nidle++;
}

/* Runs x's callback once and frees x. x is on no queue and not in the multi handle.
 * The caller holds h->depth up, so h outlives the callback. */
static void xfer_finish(struct httpc_xfer *x, int cancelled)
{
	struct httpc_resp resp;
	curl_off_t total_us = 0;
	long status = 0;

	memset(&resp, 0, sizeof(resp));
	resp.retry_after_s = -1;
	resp.rate_limit_reset_at = -1;
	resp.body = x->body != NULL ? x->body : "";
	resp.body_len = x->body_len;
	if (cancelled) {
		resp.transport_error = 1;
		/* Sent if curl got as far as writing the request or holding a connection. */
		resp.connected = x->reached &&
		    xfer_maybe_sent(x->easy, CURLE_OPERATION_TIMEDOUT, 0);
		snprintf(resp.error, sizeof(resp.error), "cancelled: client shut down");
	} else {
		if (x->reached) {
			curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
			curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total_us);
		}
		resp.status = (int)status;
		resp.total_ms = (double)total_us / 1000.0;
		resp.retry_after_s = xfer_retry_after(x);
		resp.rate_limit_reset_at = x->rate_limit_reset_at;
		/* Not reached: curl failed before connecting (resolve, connect, memory). */
		resp.connected = x->reached && xfer_maybe_sent(x->easy, x->result, status);
		if (x->result != CURLE_OK) {
			resp.transport_error = 1;
			resp.timed_out = x->result == CURLE_OPERATION_TIMEDOUT;
			snprintf(resp.error, sizeof(resp.error), "%s",
			    x->body_oom ? "out of memory for the response body" :
			    x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(x->result));
		}
	}
	x->h->in_flight--;
	x->done(x->arg, &resp, cancelled);
	xfer_recycle(x->h, x);
}

/* Moves every completed transfer out of the multi handle, then runs their callbacks.
 * Collecting first keeps curl_multi_info_read's iteration clear of whatever the
 * callbacks do (start requests, free the client). h may be gone on return. */
static void httpc_drain(struct httpc *h)
{
	struct httpc_xfer *x;
	CURLMsg *msg;
	CURL *easy;
	char *priv;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg is invalid once the handle is removed: copy first. */
		easy = msg->easy_handle;
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		x = (struct httpc_xfer *)priv;
		x->result = msg->data.result;
		curl_multi_remove_handle(h->multi, easy);
		TAILQ_REMOVE(&h->running, x, link);
		TAILQ_INSERT_TAIL(&h->finished, x, link);
	}
	h->depth++;
	while ((x = TAILQ_FIRST(&h->finished)) != NULL) {
		TAILQ_REMOVE(&h->finished, x, link);
		xfer_finish(x, 0);
	}
	h->depth--;
	if (h->dying && h->depth == 0)
		httpc_destroy(h);
}

/* Errors from curl_multi_socket_action are ignored: they concern the multi handle
 * (a socket curl already forgot), and every transfer still ends through info_read or
 * its own timeout. */
static void on_socket(evutil_socket_t fd, short events, void *arg)
{
	struct httpc_sock *sk = arg;
	struct httpc *h = sk->h;   /* sk may be freed inside socket_action */
	int action = 0;
	int running;

	if (events & EV_READ)
		action |= CURL_CSELECT_IN;
	if (events & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, action, &running);
	httpc_drain(h);
}

static void on_timer(evutil_socket_t fd, short events, void *arg)
{
	struct httpc *h = arg;
	int running;

	(void)fd;
	(void)events;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_drain(h);
}

/* CURLOPT_WRITEFUNCTION: keeps the first HTTPC_BODY_MAX bytes, drops the rest. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct httpc_xfer *x = userp;
	size_t n = size * nmemb;
	size_t take = HTTPC_BODY_MAX - x->body_len;
	size_t cap;
	char *p;

	if (take > n)
		take = n;
	if (take == 0)
		return n;
	if (x->body_len + take + 1 > x->body_cap) {
		cap = x->body_cap != 0 ? x->body_cap : HTTPC_BODY_INITIAL;
		while (cap < x->body_len + take + 1)
			cap *= 2;
		if (cap > HTTPC_BODY_MAX + 1)
			cap = HTTPC_BODY_MAX + 1;
		p = realloc(x->body, cap);
		if (p == NULL) {
			x->body_oom = 1;
			return 0;       /* curl ends the transfer with CURLE_WRITE_ERROR */
		}
		x->body = p;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, data, take);
	x->body_len += take;
	x->body[x->body_len] = '\0';
	return n;
}

/* If line is "<name>: value", copies the trimmed value into out and returns 1. */
static int header_value(const char *line, size_t len, const char *name, char *out,
    size_t outsize)
{
	size_t nlen = strlen(name);
	size_t i, j;

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return 0;
	i = nlen + 1;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	j = len;
	while (j > i && isspace((unsigned char)line[j - 1]))
		j--;
	if (j - i >= outsize)
		return 0;
	memcpy(out, line + i, j - i);
	out[j - i] = '\0';
	return 1;
}

/* Parses a non-negative decimal integer that fills all of s; -1 when it is not one. */
static long long parse_count(const char *s)
{
	long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return v;
}

/* CURLOPT_HEADERFUNCTION: picks Retry-After, Date and X-Rate-Limit-Reset of the last
 * response (a new status line forgets what an earlier one, e.g. a 100, said). */
static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
	struct httpc_xfer *x = userp;
	size_t n = size * nmemb;
	char v[HTTPC_HEADER_VALUE_MAX];
	long long secs;

	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		x->retry_after_s = -1;
		x->retry_after_at = -1;
		x->date[0] = '\0';
		x->rate_limit_reset_at = -1;
	} else if (header_value(line, n, "Retry-After", v, sizeof(v))) {
		secs = parse_count(v);
		if (secs >= 0) {
			x->retry_after_s = secs > HTTPC_RETRY_AFTER_MAX ?
			    HTTPC_RETRY_AFTER_MAX : (long)secs;
		} else {
			x->retry_after_at = curl_getdate(v, NULL);
		}
	} else if (header_value(line, n, "Date", x->date, sizeof(x->date))) {
		/* Kept as text: curl_getdate costs more than the rest of the answer's
		 * headers, and only a Retry-After HTTP-date needs it (xfer_retry_after). */
	} else if (header_value(line, n, "X-Rate-Limit-Reset", v, sizeof(v))) {
		x->rate_limit_reset_at = parse_count(v);
	}
	return n;
}

/* A header line must be one line: no CR, LF or NUL smuggled in from a config. */
static int header_line_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/* Appends "<prefix><value>" to x->headers. Returns 0 or -1 (out of memory). */
static int xfer_add_header(struct httpc_xfer *x, const char *prefix, const char *value)
{
	size_t n = strlen(prefix) + strlen(value) + 1;
	struct curl_slist *l;
	char *line = malloc(n);

	if (line == NULL)
		return -1;
	str_join3(line, n, prefix, value, "");
	l = curl_slist_append(x->headers, line);
	free(line);
	if (l == NULL)
		return -1;
	x->headers = l;
	return 0;
}

/*
 * Appends "Authorization: Basic <base64(user:pass)>" to x->headers. Returns 0 or -1
 * (out of memory, or absurd lengths). Built here rather than by libcurl
 * (CURLOPT_USERNAME): its own printf formats the pair and then the header a byte at a
 * time, on every request. The copies of the secret made here are wiped.
 */
static int xfer_add_basic(struct httpc_xfer *x, const char *user, const char *pass)
{
	static const char head[] = "Authorization: Basic ";
	size_t lu = strlen(user), lp = strlen(pass), n = lu + 1 + lp;
	size_t pre = sizeof(head) - 1, llen = pre + 4 * ((n + 2) / 3) + 1;
	unsigned char *plain = NULL;
	char *line = NULL;
	struct curl_slist *l = NULL;

	if (n > 65536 || (plain = malloc(n)) == NULL || (line = malloc(llen)) == NULL)
		goto done;
	memcpy(plain, user, lu);
	plain[lu] = ':';
	memcpy(plain + lu + 1, pass, lp);
	memcpy(line, head, pre);
	EVP_EncodeBlock((unsigned char *)line + pre, plain, (int)n);
	l = curl_slist_append(x->headers, line);
done:
	if (plain != NULL)
		explicit_bzero(plain, n);
	if (line != NULL)
		explicit_bzero(line, llen);
	free(plain);
	free(line);
	if (l == NULL)
		return -1;
	x->headers = l;
	return 0;
}

/* Builds x->headers from req. Returns 0 or -1 with *err. */
static int xfer_build_headers(struct httpc_xfer *x, const struct httpc_req *req,
    struct err *err)
{
	int i;

	if ((req->content_type != NULL && !header_line_ok(req->content_type)) ||
	    (req->bearer != NULL && !header_line_ok(req->bearer)))
		return err_set(err, ERR_INPUT, "bad_header", NULL,
		    "httpc: content type or bearer token contains a line break");
	for (i = 0; i < HTTPC_HEADERS_MAX && req->headers[i] != NULL; i++)
		if (!header_line_ok(req->headers[i]) || strchr(req->headers[i], ':') == NULL)
			return err_set(err, ERR_INPUT, "bad_header", NULL,
			    "httpc: headers[%d] is not one \"Name: value\" line", i);
	if ((req->content_type != NULL &&
	    xfer_add_header(x, "Content-Type: ", req->content_type) < 0) ||
	    (req->bearer != NULL &&
	    xfer_add_header(x, "Authorization: Bearer ", req->bearer) < 0) ||
	    (req->basic_user != NULL && xfer_add_basic(x, req->basic_user,
	    req->basic_pass != NULL ? req->basic_pass : "") < 0))
		return err_set(err, ERR_NOMEM, "nomem", NULL, "httpc: out of memory");
	for (i = 0; i < HTTPC_HEADERS_MAX && req->headers[i] != NULL; i++)
		if (xfer_add_header(x, req->headers[i], "") < 0)
			return err_set(err, ERR_NOMEM, "nomem", NULL, "httpc: out of memory");
	/* No "Expect: 100-continue" round trip before the body. */
	if (xfer_add_header(x, "Expect:", "") < 0)
		return err_set(err, ERR_NOMEM, "nomem", NULL, "httpc: out of memory");
	return 0;
}

/* CURLOPT_PREREQFUNCTION: the connection is there and the request is about to go. A
 * reused handle keeps the last request's transfer info until this point, so a
 * request cancelled or failed before it reads none of it. */
static int on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
    int local_port)
{
	struct httpc_xfer *x = arg;

	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	x->reached = 1;
	return CURL_PREREQFUNC_OK;
}

/* Sets every option of x->easy from req and h's defaults; a POST sends req's body, a
 * GET none. Returns 0 or -1 with *err. */
static int xfer_setopts(struct httpc_xfer *x, const struct httpc_req *req, int post,
    struct err *err)
{
	const struct httpc_config *cfg = &x->h->cfg;
	CURL *e = x->easy;
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : cfg->default_timeout_ms;
	long ctimeout = req->connect_timeout_ms > 0 ? req->connect_timeout_ms :
	    cfg->default_connect_timeout_ms;
	int bad = 0;

	/* What every request shares, once per handle (xfer_recycle keeps it); x, the
	 * struct these point into, stays with its handle. */
	if (!x->primed) {
		bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") !=
		    CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "dealpush") != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_PREREQDATA, x) != CURLE_OK;
		x->primed = !bad;
	}
	/* What differs between requests, every time. */
	bad |= curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ctimeout) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK;
	if (post) {
		bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
		/* The size first: COPYPOSTFIELDS copies that many bytes (the body may hold
		 * NULs). */
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(req->body != NULL ? req->body_len : 0)) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS,
		    req->body != NULL ? req->body : "") != CURLE_OK;
	} else {
		bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
	}
	if (bad)
		return err_set(err, ERR_NOMEM, "curl_setopt", NULL,
		    "httpc: libcurl refused an option (out of memory or too old)");
	return 0;
}

/* Starts req as a POST (post = 1) or a GET. Returns 0, or -1 with *err. */
static int httpc_start(struct httpc *h, const struct httpc_req *req, int post,
    httpc_done_fn *done, void *arg, struct err *err)
{
	struct httpc_xfer *x = NULL;
	CURLMcode mrc;

	if (h == NULL || req == NULL || req->url == NULL || done == NULL) {
		err_set(err, ERR_INPUT, "bad_request", NULL, "httpc: url and done required");
		goto fail;
	}
	if (h->dying) {
		err_set(err, ERR_PERM, "shutting_down", NULL, "httpc: client is shutting down");
		goto fail;
	}
	if (req->timeout_ms < 0 || req->connect_timeout_ms < 0) {
		err_set(err, ERR_INPUT, "bad_timeout", "timeout_ms", "httpc: negative timeout");
		goto fail;
	}
	if ((x = TAILQ_FIRST(&h->idle)) != NULL) {
		TAILQ_REMOVE(&h->idle, x, link);
		h->nidle--;
	} else if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (x->easy = curl_easy_init()) == NULL) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "httpc: out of memory");
		goto fail;
	}
	x->h = h;
	x->done = done;
	x->arg = arg;
	x->retry_after_s = -1;
	x->retry_after_at = -1;
	x->date[0] = '\0';
	x->rate_limit_reset_at = -1;
	if (xfer_build_headers(x, req, err) < 0 || xfer_setopts(x, req, post, err) < 0)
		goto fail;
	/* Arms the timer through on_curl_timer; the transfer starts from the loop. */
	mrc = curl_multi_add_handle(h->multi, x->easy);
	if (mrc != CURLM_OK) {
		err_set(err, ERR_NOMEM, "curl_multi", NULL, "httpc: %s",
		    curl_multi_strerror(mrc));
		goto fail;
	}
	TAILQ_INSERT_TAIL(&h->running, x, link);
	h->in_flight++;
	return 0;
fail:
	xfer_free(x);
	return -1;
}

int httpc_post(struct httpc *h, const struct httpc_req *req, httpc_done_fn *done,
    void *arg, struct err *err)
{
	return httpc_start(h, req, 1, done, arg, err);
}

int httpc_get(struct httpc *h, const struct httpc_req *req, httpc_done_fn *done,
    void *arg, struct err *err)
{
	return httpc_start(h, req, 0, done, arg, err);
}

struct httpc *httpc_new(struct event_base *base, const struct httpc_config *cfg,
    struct err *err)
{
	struct httpc *h = NULL;
	int bad = 0;

	if (base == NULL || cfg == NULL || cfg->default_timeout_ms <= 0 ||
	    cfg->default_connect_timeout_ms <= 0 || cfg->max_host_connections < 0) {
		err_set(err, ERR_INPUT, "bad_config", "httpc",
		    "httpc: timeouts must be > 0 and max_host_connections >= 0");
		return NULL;
	}
	if (httpc_global_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		err_set(err, ERR_PERM, "curl_init", NULL, "httpc: curl_global_init failed");
		return NULL;
	}
	httpc_global_users++;
	/* A libcurl without the threaded (or c-ares) resolver would resolve host names
	 * on the loop, blocking it. */
	if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_ASYNCHDNS)) {
		err_set(err, ERR_PERM, "curl_sync_dns", NULL,
		    "httpc: libcurl was built without asynchronous DNS");
		goto fail;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "httpc: out of memory");
		goto fail;
	}
	h->base = base;
	h->cfg = *cfg;
	TAILQ_INIT(&h->running);
	TAILQ_INIT(&h->finished);
	TAILQ_INIT(&h->idle);
	LIST_INIT(&h->socks);
	if ((h->timer = evtimer_new(base, on_timer, h)) == NULL ||
	    (h->multi = curl_multi_init()) == NULL) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "httpc: out of memory");
		goto fail;
	}
	bad |= curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK;
	bad |= curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK;
	bad |= curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK;
	bad |= curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK;
	bad |= curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    cfg->max_host_connections) != CURLM_OK;
	/* Keep every connection a full send window needs: a smaller cache closes
	 * idle ones and the next burst pays for new connections. */
	if (cfg->max_connects > 0)
		bad |= curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
		    cfg->max_connects) != CURLM_OK;
	if (bad) {
		err_set(err, ERR_PERM, "curl_multi", NULL, "httpc: libcurl refused a multi option");
		goto fail;
	}
	return h;
fail:
	/* httpc_destroy drops the global reference when there is an h to destroy. */
	if (h != NULL)
		httpc_destroy(h);
	else if (--httpc_global_users == 0)
		curl_global_cleanup();
	return NULL;
}

/* Frees everything; no transfer is running or finished-but-unreported. */
static void httpc_destroy(struct httpc *h)
{
	struct httpc_sock *sk;
	struct httpc_xfer *x;

	if (h == NULL)
		return;
	while ((x = TAILQ_FIRST(&h->idle)) != NULL) {
		TAILQ_REMOVE(&h->idle, x, link);
		xfer_free(x);
	}
	if (h->multi != NULL) {
		/* Tell libcurl to stop calling us; the sockets are freed below. */
		curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, NULL);
		curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, NULL);
		curl_multi_cleanup(h->multi);
	}
	while ((sk = LIST_FIRST(&h->socks)) != NULL) {
		LIST_REMOVE(sk, link);
		event_free(sk->ev);
		free(sk);
	}
	if (h->timer != NULL)
		event_free(h->timer);
	free(h);
	if (--httpc_global_users == 0)
		curl_global_cleanup();
}

void httpc_free(struct httpc *h)
{
	struct httpc_xfer *x;

	if (h == NULL || h->dying)
		return;
	h->dying = 1;   /* from here httpc_post refuses and nested httpc_free returns */
	h->depth++;
	while ((x = TAILQ_FIRST(&h->running)) != NULL) {
		TAILQ_REMOVE(&h->running, x, link);
		curl_multi_remove_handle(h->multi, x->easy);
		xfer_finish(x, 1);
	}
	h->depth--;
	/* Called from a done callback: httpc_drain reports what already finished, then
	 * frees the client when the callback stack unwinds. */
	if (h->depth == 0)
		httpc_destroy(h);
}

size_t httpc_in_flight(const struct httpc *h)
{
	return h != NULL ? h->in_flight : 0;
}
