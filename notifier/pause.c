/*
 * pause.c: the global pause of sending (stage: send, http). See pause.h.
 *
 * Every notifier polls the hash; the notifier that takes a POST also applies it at
 * once, so on that notifier the answer means "no new claim from now on". A stored
 * state that is neither "paused" nor "running" (a hand edit) is logged and the state
 * in use is kept. Redis unreachable: the state in use is kept too.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "audit.h"
#include "clock.h"
#include "deal.h"
#include "http.h"
#include "jsonv.h"
#include "log.h"
#include "metrics.h"
#include "pause.h"
#include "rconn.h"

struct pause {
	struct rconn *cmd;
	struct event *poll;
	pause_change_fn *cb;
	void *arg;
	struct metrics *metrics;
	struct pause **polling;        /* an HMGET is out: its reply's way back to us,
	                                * set to NULL when we are freed first */
	int paused;
	long long since_ms;            /* 0: never set */
	char reason[PAUSE_REASON_MAX + 1];
	struct http_wait *ops;         /* POSTs waiting on Redis */
};

/* A POST waiting for its HSET. Detached (w.head NULL) when the module is freed first;
 * its change is then not applied here (the poll of the next notifier reads it). */
struct pause_op {
	struct http_wait w;            /* first: in the module's list */
	struct pause *p;
	int paused;
	long long since_ms;
	char reason[PAUSE_REASON_MAX + 1];
};

int
pause_reason_ok(const char *s)
{
	size_t n = strlen(s);

	return n <= PAUSE_REASON_MAX && !jv_has_control(s) &&
	    deal_utf8_valid_prefix((const unsigned char *)s, n) == n;
}

/* Applies a state; tells the callback and the gauge when it changed. */
static void
pause_apply(struct pause *p, int paused, long long since_ms, const char *reason)
{
	int changed = paused != p->paused;

	p->paused = paused;
	p->since_ms = since_ms;
	snprintf(p->reason, sizeof(p->reason), "%s", reason);
	if (!changed)
		return;
	log_info("event=%s since_ms=%lld reason=\"%s\"", paused ? "paused" : "resumed",
	    since_ms, p->reason);
	if (p->metrics != NULL)
		metrics_set(p->metrics, METRIC_PAUSED, NULL, paused);
	if (p->cb != NULL)
		p->cb(p->arg, paused);
}

static void
on_state(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct pause **pp = arg, *p = *pp;
	const struct redisReply *st, *since, *why;
	char *end;
	long long ms;

	(void)rc;
	free(pp);
	if (p == NULL)
		return;          /* freed before the reply came (at shutdown) */
	p->polling = NULL;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
		return;   /* unreachable: the state in use stays */
	st = r->element[0], since = r->element[1], why = r->element[2];
	if (st->type == REDIS_REPLY_NIL)
		return;   /* never paused */
	if (st->type != REDIS_REPLY_STRING || (strcmp(st->str, "paused") != 0 &&
	    strcmp(st->str, "running") != 0)) {
		log_warnx("event=pause_state_unknown key=%s action=keep_%s", PAUSE_KEY,
		    p->paused ? "paused" : "running");
		return;
	}
	ms = since->type == REDIS_REPLY_STRING ? strtoll(since->str, &end, 10) : 0;
	pause_apply(p, strcmp(st->str, "paused") == 0, ms,
	    why->type == REDIS_REPLY_STRING && pause_reason_ok(why->str) ? why->str : "");
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct pause *p = arg, **pp;

	(void)fd;
	(void)what;

	if (p->polling != NULL || !rconn_is_ready(p->cmd) ||
	    (pp = malloc(sizeof(*pp))) == NULL)
		return;
	*pp = p;
	if (rconn_cmd(p->cmd, on_state, pp, 0, "HMGET %s state since reason",
	    PAUSE_KEY) == 0)
		p->polling = pp;
	else
		free(pp);
}

struct pause *
pause_new(struct event_base *base, struct rconn *cmd, pause_change_fn *cb, void *arg)
{
	struct timeval tv = { 0, PAUSE_POLL_MS * 1000 };
	struct pause *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->cmd = cmd;
	p->cb = cb;
	p->arg = arg;
	if ((p->poll = event_new(base, -1, EV_PERSIST, on_poll, p)) == NULL) {
		free(p);
		return NULL;
	}
	event_add(p->poll, &tv);
	return p;
}

void
pause_free(struct pause *p)
{
	if (p == NULL)
		return;
	http_wait_detach_all(&p->ops);   /* their callbacks only free them */
	if (p->polling != NULL)
		*p->polling = NULL;          /* its reply frees the way back */
	event_free(p->poll);
	free(p);
}

int
pause_is_on(const struct pause *p)
{
	return p != NULL && p->paused;
}

void
pause_set_metrics(struct pause *p, struct metrics *m)
{
	p->metrics = m;
	if (m != NULL)
		metrics_set(m, METRIC_PAUSED, NULL, p->paused);
}

/* The state as JSON: {"paused": bool, "since_ms": n|null, "reason": "..."}. */
static void
reply_state(struct http_req *r, int paused, long long since_ms, const char *reason)
{
	cJSON *j = cJSON_CreateObject();

	if (j == NULL || cJSON_AddBoolToObject(j, "paused", paused) == NULL ||
	    (since_ms > 0 ? cJSON_AddNumberToObject(j, "since_ms", (double)since_ms) :
	    cJSON_AddNullToObject(j, "since_ms")) == NULL ||
	    cJSON_AddStringToObject(j, "reason", reason) == NULL) {
		cJSON_Delete(j);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	http_reply_json(r, 200, j);
}

static void
on_written(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct pause_op *op = arg;

	(void)rc;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		if (op->w.r != NULL)
			http_error(op->w.r, 503, NULL, "storage unavailable; nothing changed; "
			    "try again");
	} else {
		if (op->w.head != NULL)
			pause_apply(op->p, op->paused, op->since_ms, op->reason);
		if (op->w.r != NULL) {
			cJSON *a = cJSON_CreateObject();
			char *after;

			cJSON_AddBoolToObject(a, "paused", op->paused);
			cJSON_AddStringToObject(a, "reason", op->reason);
			after = cJSON_PrintUnformatted(a);
			cJSON_Delete(a);
			audit_record(op->p->cmd, http_req_principal(op->w.r), op->paused ?
			    "pause" : "resume", "-", NULL, after);
			cJSON_free(after);
			reply_state(op->w.r, op->paused, op->since_ms, op->reason);
		}
	}
	http_wait_remove(&op->w);
	free(op);
}

/* The reason of a POST /v1/pause body: "" without a body; -1 after answering 400. */
static int
body_reason(struct http_req *r, char *out, size_t size)
{
	static const char *const names[] = { "reason" };
	size_t len = 0;
	const char *body = http_body(r, &len);
	const cJSON *v;
	cJSON *j;
	struct err err;

	out[0] = '\0';
	if (body == NULL || len == 0)
		return 0;
	err_clear(&err);
	/* The checks every JSON body gets: size, NUL bytes, UTF-8, one object. */
	if ((j = deal_json_open(body, len, PAUSE_BODY_MAX, "body", &err)) == NULL) {
		http_error_input(r, &err);
		return -1;
	}
	if (jv_check_unique(j, names, 1, "", &err) < 0) {
		cJSON_Delete(j);
		http_error_input(r, &err);
		return -1;
	}
	for (v = j->child; v != NULL; v = v->next)
		if (strcmp(v->string, "reason") != 0) {
			http_error(r, 400, v->string, "unknown field; a pause takes only "
			    "\"reason\"");
			cJSON_Delete(j);
			return -1;
		}
	v = jv_field(j, "reason");
	if (v != NULL && (!cJSON_IsString(v) || !pause_reason_ok(v->valuestring))) {
		http_error(r, 400, "reason", "a string of at most %d bytes of UTF-8 text, "
		    "no control characters", PAUSE_REASON_MAX);
		cJSON_Delete(j);
		return -1;
	}
	if (v != NULL)
		snprintf(out, size, "%s", v->valuestring);
	cJSON_Delete(j);
	return 0;
}

/* GET and POST /v1/pause, POST /v1/resume */
static void
on_pause(struct http_req *r, void *arg)
{
	struct pause *p = arg;
	int resume = strcmp(http_req_path(r), "/v1/resume") == 0;
	struct pause_op *op;
	char since[24];

	if (http_req_method(r) == EVHTTP_REQ_GET) {
		if (resume) {
			http_error(r, 405, NULL, "POST /v1/resume resumes; GET /v1/pause "
			    "says the state");
			return;
		}
		reply_state(r, p->paused, p->since_ms, p->reason);
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	if (!resume && body_reason(r, op->reason, sizeof(op->reason)) < 0) {
		free(op);
		return;
	}
	op->p = p;
	op->paused = !resume;
	op->since_ms = (long long)clock_now_ms();
	snprintf(since, sizeof(since), "%lld", op->since_ms);
	if (rconn_cmd(p->cmd, on_written, op, 0, "HSET %s state %s since %s reason %s",
	    PAUSE_KEY, resume ? "running" : "paused", since, op->reason) < 0) {
		http_error(r, 503, NULL, "storage unavailable; nothing changed; try again");
		free(op);
		return;
	}
	http_wait_add(&p->ops, &op->w, r);
}

int
pause_routes(struct pause *p, struct http *h)
{
	if (h == NULL)
		return 0;
	return http_route(h, EVHTTP_REQ_GET, "/v1/pause", HTTP_ROLE_VIEWER, on_pause, p,
	    HTTP_EXACT) < 0 ||
	    http_route(h, EVHTTP_REQ_POST, "/v1/pause", HTTP_ROLE_MARKETER, on_pause, p,
	    HTTP_EXACT) < 0 ||
	    http_route(h, EVHTTP_REQ_POST, "/v1/resume", HTTP_ROLE_MARKETER, on_pause, p,
	    HTTP_EXACT) < 0 ? -1 : 0;
}
