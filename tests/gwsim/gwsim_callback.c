/*
 * gwsim_callback.c: Twilio status callbacks (--status-callbacks, stage: send): after a
 * 201, POST MessageStatus=sent and then the final status to the message's
 * StatusCallback URL, form-encoded and signed with X-Twilio-Signature, as Twilio does.
 *
 * Each accepted message gets one struct gwsim_cb that walks its steps on one evtimer:
 * wait, send one POST on its own evhttp connection under a deadline, log the outcome,
 * wait, send the next. It must never connect anywhere but loopback, never retry (Twilio
 * tries a status callback once), never free a connection from inside that
 * connection's callbacks (the timer frees it on its next turn) and never block.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "gwsim.h"
#include "twsig.h"

#define CB_STEPS_MAX  2
#define CB_FIELDS_MAX 10
#define CB_ANSWER_MAX (64 * 1024)   /* cap on the receiver's answer headers and body */

struct gwsim_cb {
	struct gwsim *sim;
	struct gwsim_cb *prev;
	struct gwsim_cb *next;
	int linked;                     /* on sim->callbacks */
	struct event *timer;            /* the wait before a step, then that step's deadline */
	struct evhttp_connection *conn; /* the current step's; freed by the timer only */
	int inflight;                   /* 1 while a POST is out */
	int err;                        /* from the error callback; -1 = none */
	int64_t started_ms;             /* monotonic, when the POST went out */
	const char *steps[CB_STEPS_MAX];
	int nsteps;
	int step;                       /* the step being sent or waited for */
	long error_code;                /* ErrorCode of the last step; 0 = none */
	char sid[40];
	char addr[16];                  /* "127.0.0.1" or "::1": never a name to resolve */
	int port;
	char *url;                      /* StatusCallback as received: signed byte for byte */
	char *host;                     /* the URL's host[:port], sent as Host */
	char *target;                   /* the URL's path and query, the request line */
	char *push;                     /* the URL's push id, cleaned to UTF-8, or NULL */
	char *to;
	char *from;                     /* NULL when the message had none */
	char *mss;                      /* MessagingServiceSid, or NULL */
};

/* ORDER FINAL_STATUSES: the STATUS values of --deliver (docs/gwsim.md). */
static const char *const cb_finals[] = { "delivered", "undelivered", "failed", "sent" };

static int64_t cb_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gwsim_deliver_parse(struct gwsim *sim, const char *arg)
{
	const char *eq = strchr(arg, '='), *st, *colon, *status = NULL;
	struct gwsim_deliver *nd;
	char key[20];
	size_t i, stlen;
	long code = 0;

	if (eq == NULL || (size_t)(eq - arg) >= sizeof(key))
		return -1;
	snprintf(key, sizeof(key), "%.*s", (int)(eq - arg), arg);
	st = eq + 1;
	colon = strchr(st, ':');
	stlen = colon != NULL ? (size_t)(colon - st) : strlen(st);
	for (i = 0; i < sizeof(cb_finals) / sizeof(cb_finals[0]); i++)
		if (strlen(cb_finals[i]) == stlen && strncmp(st, cb_finals[i], stlen) == 0)
			status = cb_finals[i];
	if (!gwsim_is_e164(key) || status == NULL)
		return -1;
	if (colon != NULL && ((strcmp(status, "undelivered") != 0 &&
	    strcmp(status, "failed") != 0) || !gwsim_is_digits(colon + 1, 5, 5) ||
	    gwsim_parse_long(colon + 1, 10000, 99999, &code) != 0))
		return -1;
	for (i = 0; i < sim->ndeliver && strcmp(sim->deliver[i].key, key) != 0; i++)
		;
	if (i == sim->ndeliver) {   /* a new number */
		if (i >= GWSIM_ANSWERS_MAX ||
		    (nd = realloc(sim->deliver, (i + 1) * sizeof(*nd))) == NULL)
			return -1;
		sim->deliver = nd;
		if ((nd[i].key = strdup(key)) == NULL)
			return -1;
		sim->ndeliver++;
	}
	sim->deliver[i].status = status;
	sim->deliver[i].error_code = code;
	return 0;
}

void gwsim_deliver_clear(struct gwsim *sim)
{
	size_t i;

	for (i = 0; i < sim->ndeliver; i++)
		free(sim->deliver[i].key);
	free(sim->deliver);
	sim->deliver = NULL;
	sim->ndeliver = 0;
}

/* The steps for cb->to: "sent" then the final status ("delivered" unless --deliver
 * says otherwise). A failed message was never sent, so it gets "failed" alone; a
 * "sent" entry stops there, as when a carrier returns no delivery receipt. */
static void cb_plan(struct gwsim_cb *cb)
{
	const struct gwsim *sim = cb->sim;
	const char *final = "delivered";
	size_t i;

	for (i = 0; i < sim->ndeliver; i++) {
		if (strcmp(sim->deliver[i].key, cb->to) == 0) {
			final = sim->deliver[i].status;
			cb->error_code = sim->deliver[i].error_code;
		}
	}
	if (strcmp(final, "failed") != 0)
		cb->steps[cb->nsteps++] = "sent";
	if (strcmp(final, "sent") != 0)
		cb->steps[cb->nsteps++] = final;
}

static void cb_free(struct gwsim_cb *cb)
{
	if (cb->linked) {
		if (cb->prev != NULL)
			cb->prev->next = cb->next;
		else
			cb->sim->callbacks = cb->next;
		if (cb->next != NULL)
			cb->next->prev = cb->prev;
		cb->sim->ncallbacks--;
	}
	if (cb->conn != NULL)
		evhttp_connection_free(cb->conn);   /* frees a request in flight, no callback */
	if (cb->timer != NULL)
		event_free(cb->timer);
	free(cb->url);
	free(cb->host);
	free(cb->target);
	free(cb->push);
	free(cb->to);
	free(cb->from);
	free(cb->mss);
	free(cb);
}

void gwsim_callback_free_all(struct gwsim *sim)
{
	while (sim->callbacks != NULL)
		cb_free(sim->callbacks);
}

static int cb_add_str(cJSON *o, const char *key, const char *val)
{
	return (val == NULL ? cJSON_AddNullToObject(o, key) :
	    cJSON_AddStringToObject(o, key, val)) != NULL;
}

static int cb_add_num(cJSON *o, const char *key, int64_t val, int is_null)
{
	return (is_null ? cJSON_AddNullToObject(o, key) :
	    cJSON_AddNumberToObject(o, key, (double)val)) != NULL;
}

/* One "callback" log line (docs/gwsim.md); status NULL when nothing was sent, ms < 0
 * when no POST went out. A result other than "ok" is also said on stderr. */
static void cb_log(struct gwsim_cb *cb, const char *status, long code, int http_status,
    const char *result, const char *detail, int64_t ms)
{
	cJSON *o = cJSON_CreateObject();
	char *url = gwsim_utf8_clean(cb->url, strlen(cb->url));
	int ok = o != NULL && url != NULL &&
	    cb_add_num(o, "ts_ms", gwsim_now_ms(), 0) &&
	    cb_add_str(o, "gateway", "callback") &&
	    cb_add_str(o, "sid", cb->sid) &&
	    cb_add_str(o, "to", cb->to) &&
	    cb_add_str(o, "message_status", status) &&
	    cb_add_num(o, "error_code", code, code == 0) &&
	    cb_add_str(o, "url", url) &&
	    cb_add_str(o, "push", cb->push) &&
	    cb_add_num(o, "http_status", http_status, http_status <= 0) &&
	    cb_add_str(o, "result", result) &&
	    cb_add_str(o, "detail", detail) &&
	    cb_add_num(o, "ms", ms, ms < 0);

	gwsim_log_json(cb->sim, ok ? o : NULL);
	if (!cb->sim->quiet && strcmp(result, "ok") != 0)
		fprintf(stderr, "gwsim: status callback sid=%s status=%s result=%s: %s\n",
		    cb->sid, status ? status : "-", result, detail ? detail : "");
	cJSON_Delete(o);
	free(url);
}

/* Logs the step just tried and moves on: to the next step after the callback delay,
 * or to the end on the next loop turn. Either way the timer frees the connection. */
static void cb_finish(struct gwsim_cb *cb, int http_status, const char *result,
    const char *detail)
{
	int last = cb->step == cb->nsteps - 1;
	long delay = last ? 0 : cb->sim->callback_delay_ms;
	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };

	cb_log(cb, cb->steps[cb->step], last ? cb->error_code : 0, http_status, result,
	    detail, cb->inflight ? cb_mono_ms() - cb->started_ms : -1);
	cb->inflight = 0;
	cb->step++;
	(void)evtimer_add(cb->timer, &tv);   /* only fails on a bad event: never here */
}

static void cb_on_error(enum evhttp_request_error err, void *arg)
{
	struct gwsim_cb *cb = arg;

	cb->err = (int)err;
}

/* The answer, or NULL (or code 0) when there was none; the error callback, when
 * libevent called it, ran just before and said why. */
static void cb_on_done(struct evhttp_request *req, void *arg)
{
	struct gwsim_cb *cb = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	char detail[64];

	if (!cb->inflight)
		return;
	if (code >= 200 && code < 300) {
		cb_finish(cb, code, "ok", NULL);
	} else if (code > 0) {
		snprintf(detail, sizeof(detail), "the receiver answered %d", code);
		cb_finish(cb, code, "http_error", detail);
	} else if (cb->err == EVREQ_HTTP_TIMEOUT) {
		cb_finish(cb, 0, "timeout", "no answer in time");
	} else if (cb->err == EVREQ_HTTP_EOF || cb->err == EVREQ_HTTP_REQUEST_CANCEL) {
		cb_finish(cb, 0, "closed", "connection failed or closed before an answer");
	} else if (cb->err >= 0) {
		cb_finish(cb, 0, "bad_answer", "the answer was malformed or over 64 KiB");
	} else {
		cb_finish(cb, 0, "connect_failed", "connection refused");
	}
}

/* The form fields Twilio sends for this step into p (at least CB_FIELDS_MAX); code
 * holds the ErrorCode text. Returns how many. */
static size_t cb_fields(struct gwsim_cb *cb, struct twsig_param *p, char *code,
    size_t codelen)
{
	const char *status = cb->steps[cb->step];
	size_t n = 0;

	p[n++] = (struct twsig_param){ "SmsSid", cb->sid };
	p[n++] = (struct twsig_param){ "SmsStatus", status };
	p[n++] = (struct twsig_param){ "MessageStatus", status };
	p[n++] = (struct twsig_param){ "To", cb->to };
	if (cb->mss != NULL)
		p[n++] = (struct twsig_param){ "MessagingServiceSid", cb->mss };
	p[n++] = (struct twsig_param){ "MessageSid", cb->sid };
	p[n++] = (struct twsig_param){ "AccountSid", cb->sim->account_sid };
	if (cb->from != NULL)
		p[n++] = (struct twsig_param){ "From", cb->from };
	p[n++] = (struct twsig_param){ "ApiVersion", "2010-04-01" };
	if (cb->step == cb->nsteps - 1 && cb->error_code != 0) {
		snprintf(code, codelen, "%ld", cb->error_code);
		p[n++] = (struct twsig_param){ "ErrorCode", code };
	}
	return n;
}

/* Builds the signed request of the current step. Returns it, or NULL with *why. */
static struct evhttp_request *cb_request(struct gwsim_cb *cb, const char **why)
{
	struct twsig_param p[CB_FIELDS_MAX];
	struct evhttp_request *req;
	struct evkeyvalq *h;
	struct evbuffer *body;
	char sig[TWSIG_LEN + 1], code[16], len[24];
	size_t n = cb_fields(cb, p, code, sizeof(code)), i;

	if (twsig_compute(cb->sim->auth_token, cb->url, p, n, sig, sizeof(sig)) != 0) {
		*why = "cannot sign: auth token or URL over the twsig limits";
		return NULL;
	}
	*why = "out of memory";
	if ((req = evhttp_request_new(cb_on_done, cb)) == NULL)
		return NULL;
	evhttp_request_set_error_cb(req, cb_on_error);
	h = evhttp_request_get_output_headers(req);
	body = evhttp_request_get_output_buffer(req);
	for (i = 0; i < n; i++) {
		char *enc = evhttp_uriencode(p[i].value, -1, 1);
		int rc = enc == NULL ? -1 : evbuffer_add_printf(body, "%s%s=%s",
		    i > 0 ? "&" : "", p[i].name, enc);

		free(enc);
		if (rc < 0)
			goto err;
	}
	snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
	if (evhttp_add_header(h, "Host", cb->host) != 0 ||
	    evhttp_add_header(h, "Content-Type", "application/x-www-form-urlencoded") != 0 ||
	    evhttp_add_header(h, "Content-Length", len) != 0 ||
	    evhttp_add_header(h, "User-Agent", "TwilioProxy/1.1") != 0 ||
	    evhttp_add_header(h, "X-Twilio-Signature", sig) != 0 ||
	    evhttp_add_header(h, "Connection", "close") != 0)
		goto err;
	return req;
err:
	evhttp_request_free(req);
	return NULL;
}

/* Sends the current step's POST under its deadline. Returns 0 when it is out (or
 * already answered: libevent may call back before evhttp_make_request returns), else
 * -1 with *why. */
static int cb_start(struct gwsim_cb *cb, const char **why)
{
	struct timeval tv = { GWSIM_CALLBACK_TIMEOUT_MS / 1000,
	    (GWSIM_CALLBACK_TIMEOUT_MS % 1000) * 1000 };
	struct evhttp_request *req;

	*why = "out of memory";
	cb->conn = evhttp_connection_base_new(cb->sim->base, NULL, cb->addr,
	    (ev_uint16_t)cb->port);
	if (cb->conn == NULL)
		return -1;
	evhttp_connection_set_retries(cb->conn, 0);   /* one try, as Twilio */
	evhttp_connection_set_timeout_tv(cb->conn, &tv);
	evhttp_connection_set_max_headers_size(cb->conn, CB_ANSWER_MAX);
	evhttp_connection_set_max_body_size(cb->conn, CB_ANSWER_MAX);
	if ((req = cb_request(cb, why)) == NULL)
		return -1;
	/* armed first: a refused connect calls cb_on_done from inside make_request */
	cb->err = -1;
	cb->inflight = 1;
	cb->started_ms = cb_mono_ms();
	/* The list shows the status Twilio reports from now on. */
	gwsim_store_status(cb->sim, cb->sid, cb->steps[cb->step], gwsim_now_ms());
	(void)evtimer_add(cb->timer, &tv);
	if (evhttp_make_request(cb->conn, req, EVHTTP_REQ_POST, cb->target) != 0 &&
	    cb->inflight) {
		cb->inflight = 0;   /* libevent has freed req */
		*why = "evhttp_make_request failed";
		return -1;
	}
	return 0;
}

/* The step's wait is over, or its deadline passed, or it ended: free the connection
 * of the step before (outside its callbacks), then time out, send or finish. */
static void cb_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct gwsim_cb *cb = arg;
	const char *why;

	(void)fd;
	(void)what;
	if (cb->conn != NULL) {
		evhttp_connection_free(cb->conn);
		cb->conn = NULL;
	}
	if (cb->inflight) {
		cb_finish(cb, 0, "timeout", "no answer within the deadline");
		return;
	}
	if (cb->step >= cb->nsteps) {
		cb_free(cb);
		return;
	}
	if (cb_start(cb, &why) != 0)
		cb_finish(cb, 0, "error", why);
}

/* Fills cb's address, port, Host and request target from cb->url. Returns NULL, or
 * why the URL is refused. Host and target are the URL's own bytes, so a receiver
 * that rebuilds the URL from them gets the signed one. */
static const char *cb_parse_url(struct gwsim_cb *cb)
{
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(cb->url, EVHTTP_URI_NONCONFORMANT);
	const char *scheme, *host, *auth, *end, *p, *why = NULL;
	size_t qlen;

	if (u == NULL)
		return "not a URL";
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	if (scheme == NULL || strcasecmp(scheme, "http") != 0)
		why = "not http:// (gwsim has no TLS client)";
	else if (host != NULL && (strcmp(host, "127.0.0.1") == 0 ||
	    strcasecmp(host, "localhost") == 0))
		snprintf(cb->addr, sizeof(cb->addr), "127.0.0.1");   /* no DNS, ever */
	else if (host != NULL && (strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0))
		snprintf(cb->addr, sizeof(cb->addr), "::1");
	else
		why = "host is not 127.0.0.1, localhost or [::1]";
	cb->port = evhttp_uri_get_port(u);
	evhttp_uri_free(u);
	if (why != NULL)
		return why;
	if (cb->port < 0)
		cb->port = 80;
	if (cb->port == 0)
		return "port 0";
	auth = strstr(cb->url, "://") + 3;
	end = auth + strcspn(auth, "/?#");
	for (p = auth; p < end; p++)
		if (*p == '@')
			auth = p + 1;   /* user:password@ is not sent */
	cb->host = strndup(auth, (size_t)(end - auth));
	qlen = strcspn(end, "#");   /* the fragment is never sent */
	if (*end == '/')
		cb->target = strndup(end, qlen);
	else if ((cb->target = malloc(qlen + 2)) != NULL)
		snprintf(cb->target, qlen + 2, "/%.*s", (int)qlen, end);   /* "?q" or "" */
	return cb->host == NULL || cb->target == NULL ? "out of memory" : NULL;
}

static char *cb_dup_or_null(const char *s, int *oom)
{
	char *d;

	if (s == NULL || s[0] == '\0')
		return NULL;
	if ((d = strdup(s)) == NULL)
		*oom = 1;
	return d;
}

/* Copies the message's fields into cb. Returns 0, or -1 when out of memory. */
static int cb_copy(struct gwsim_cb *cb, const struct form *f, const char *url)
{
	char *push = NULL;
	int64_t landed;
	int oom = 0;

	cb->url = cb_dup_or_null(url, &oom);
	cb->to = cb_dup_or_null(form_get(f, "To"), &oom);
	cb->from = cb_dup_or_null(form_get(f, "From"), &oom);
	cb->mss = cb_dup_or_null(form_get(f, "MessagingServiceSid"), &oom);
	if (gwsim_push_from_url(url, &push, &landed) != 0)
		oom = 1;
	if (push != NULL && (cb->push = gwsim_utf8_clean(push, strlen(push))) == NULL)
		oom = 1;
	free(push);
	return oom || cb->url == NULL || cb->to == NULL ? -1 : 0;
}

void gwsim_callback_schedule(struct gwsim *sim, const struct form *f, const char *sid,
    long after_ms)
{
	const char *url = form_get(f, "StatusCallback"), *why = "out of memory";
	const char *result = "error";
	long wait = after_ms + sim->callback_delay_ms;
	struct timeval tv = { wait / 1000, (wait % 1000) * 1000 };
	struct gwsim_cb *cb;

	if (!sim->status_callbacks || url == NULL || url[0] == '\0')
		return;
	if ((cb = calloc(1, sizeof(*cb))) == NULL) {
		if (!sim->quiet)
			fprintf(stderr, "gwsim: status callback sid=%s result=error: %s\n", sid, why);
		return;
	}
	cb->sim = sim;
	snprintf(cb->sid, sizeof(cb->sid), "%s", sid);
	if (cb_copy(cb, f, url) != 0)
		goto refuse;
	if ((why = cb_parse_url(cb)) != NULL) {
		result = strcmp(why, "out of memory") == 0 ? "error" : "refused";
		goto refuse;
	}
	if (sim->ncallbacks >= GWSIM_CALLBACKS_MAX) {
		why = "too many messages with callbacks pending";
		goto refuse;
	}
	cb_plan(cb);
	why = "out of memory";
	if ((cb->timer = evtimer_new(sim->base, cb_on_timer, cb)) == NULL ||
	    evtimer_add(cb->timer, &tv) != 0)
		goto refuse;
	cb->next = sim->callbacks;
	if (sim->callbacks != NULL)
		sim->callbacks->prev = cb;
	sim->callbacks = cb;
	cb->linked = 1;
	sim->ncallbacks++;
	return;
refuse:
	if (cb->url != NULL)
		cb_log(cb, NULL, 0, 0, result, why, -1);
	else if (!sim->quiet)
		fprintf(stderr, "gwsim: status callback sid=%s result=error: %s\n", sid, why);
	cb_free(cb);
}
