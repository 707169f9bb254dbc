/*
 * admin.c: the admin API under /v1/ (stage: http): subscribers, rules and reports
 * (docs/admin.md), and the rules in use (folder + API). Deal simulation is
 * simulate.c.
 *
 * Every write is one Lua script (notifier/lua/admin_*.lua), so a request either
 * changes all it should or nothing. A rule change is compiled with the whole set
 * before anything is written: a set that does not compile never reaches Redis or the
 * matcher. Handlers never block the loop: Redis answers come back through callbacks,
 * and the rule folder is read only at start-up and on SIGHUP.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "admin.h"
#include "admin_bulk.h"
#include "admin_consent.h"
#include "app.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "http.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "rules.h"
#include "rulesload.h"
#include "scripts.h"
#include "subscriber.h"
#include "substore.h"

#define ADMIN_POLL_MS 500             /* how often rules:version is looked at */
#define ADMIN_SRC_NAME_MAX 64         /* an API rule source name */
#define ADMIN_API_PREFIX "api/"
#define ADMIN_FILE_MAX (MODEL_ID_MAX + 16) /* "api/<name>.rules" */

/* One rule source: a folder file ("dir/x.rules") or an API rule ("x"). */
struct admin_src {
	char *name;
	char *text;
	size_t len;
};

struct admin_srcs {
	struct admin_src *v;
	size_t n;
};

enum admin_op_kind {
	OP_SUB_PUT, OP_SUB_GET, OP_SUB_DEL, OP_RULE_PUT, OP_RULE_DEL, OP_REPORT, OP_LOAD
};

/* One request waiting on Redis. Owned by its callback, which frees it. */
struct admin_op {
	struct admin *a;              /* NULL once admin_free ran */
	struct http_req *r;           /* NULL for the rules poll */
	struct admin_op *prev, *next;
	enum admin_op_kind kind;
	char name[MODEL_ID_MAX + 1];  /* subscriber id, rule source or report name */
	char kindname[16];            /* report kind */
	char *text;                   /* rule text or subscriber JSON (owned) */
	size_t len;
	struct rule_set *rs;          /* the set compiled for a rule change (owned) */
	unsigned long epoch;          /* a->epoch when rs was compiled */
	double price;                 /* report: per-SMS-segment price, NAN: none */
};

struct admin {
	const struct app *app;
	struct admin_srcs folder;     /* the folder's files, read at start and SIGHUP */
	struct admin_srcs api;        /* the API rules as last loaded or written */
	char version[32];             /* rules:version of api; "" before the first load */
	unsigned long epoch;          /* bumped at every change of folder or api */
	int loading;                  /* a rules poll is in flight */
	struct event *poll, *hup;
	struct admin_op *ops;
	struct admin_bulk *bulk;      /* POST /v1/bulk/subscribers (admin_bulk.c) */
	struct admin_consent *consent; /* GET /v1/consent/<id> (admin_consent.c) */
};

/* ---- rule sources ---- */

static void
srcs_free(struct admin_srcs *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].text);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Appends copies of name and text. 0 or -1 (out of memory, s unchanged). */
static int
srcs_add(struct admin_srcs *s, const char *name, const char *text, size_t len)
{
	struct admin_src *v = realloc(s->v, (s->n + 1) * sizeof(*v));
	char *n, *t;

	if (v == NULL)
		return -1;
	s->v = v;
	n = strdup(name);
	t = malloc(len + 1);
	if (n == NULL || t == NULL) {
		free(n);
		free(t);
		return -1;
	}
	memcpy(t, text, len);
	t[len] = '\0';
	s->v[s->n].name = n;
	s->v[s->n].text = t;
	s->v[s->n].len = len;
	s->n++;
	return 0;
}

static const struct admin_src *
srcs_find(const struct admin_srcs *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

static int
src_cmp(const void *x, const void *y)
{
	return strcmp(((const struct admin_src *)x)->name,
	    ((const struct admin_src *)y)->name);
}

/* Reads the rule folder (rulesload_read) into out. Blocking file I/O: start-up and
 * SIGHUP only. 0, or -1 with *err and out empty. */
static int
folder_read(const char *dir, struct admin_srcs *out, struct err *err)
{
	struct rulesload_file *files;
	size_t n, i;
	int rv = 0;

	out->v = NULL;
	out->n = 0;
	if (rulesload_read(dir, &files, &n, err) < 0)
		return -1;
	for (i = 0; i < n && rv == 0; i++)
		if (srcs_add(out, files[i].path, files[i].text, files[i].len) < 0) {
			srcs_free(out);
			rv = err_set(err, ERR_NOMEM, "no_memory", dir, "out of memory");
		}
	rulesload_files_free(files, n);
	return rv;
}

/* "api/<name>.rules" into buf. */
static void
api_file_name(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, ADMIN_API_PREFIX "%s.rules", name);
}

/* 1 when name may name an API rule source: 1..64 of [A-Za-z0-9_-]. */
static int
api_name_is_valid(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > ADMIN_SRC_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/*
 * Compiles the folder with the API rules, where put_name (when not NULL) has the text
 * put_text instead of its own (or is added), and del_name (when not NULL) is left out.
 * Returns the new set, or NULL with every error in diags and *err.
 */
static struct rule_set *
admin_compile(const struct admin *a, const char *put_name, const char *put_text,
    size_t put_len, const char *del_name, struct rule_diags *diags, struct err *err)
{
	size_t max = a->folder.n + a->api.n + 1, n = 0, i;
	struct rule_source *src = calloc(max, sizeof(*src));
	char (*names)[ADMIN_FILE_MAX] = calloc(max, sizeof(*names));
	struct rule_set *rs = NULL;
	int put_done = 0;

	if (src == NULL || names == NULL) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory");
		goto out;
	}
	for (i = 0; i < a->folder.n; i++, n++) {
		src[n].name = a->folder.v[i].name;
		src[n].text = a->folder.v[i].text;
		src[n].len = a->folder.v[i].len;
	}
	for (i = 0; i < a->api.n; i++) {
		const struct admin_src *s = &a->api.v[i];

		if (del_name != NULL && strcmp(s->name, del_name) == 0)
			continue;
		api_file_name(s->name, names[n], sizeof(names[n]));
		src[n].name = names[n];
		if (put_name != NULL && strcmp(s->name, put_name) == 0) {
			src[n].text = put_text;
			src[n].len = put_len;
			put_done = 1;
		} else {
			src[n].text = s->text;
			src[n].len = s->len;
		}
		n++;
	}
	if (put_name != NULL && !put_done) {
		api_file_name(put_name, names[n], sizeof(names[n]));
		src[n].name = names[n];
		src[n].text = put_text;
		src[n].len = put_len;
		n++;
	}
	rs = rule_compile(src, n, diags, err);
out:
	free(src);
	free(names);
	return rs;
}

/* Compiles folder + API rules as they are and swaps the set in; on failure logs every
 * error and keeps the set in use. 0 or -1. */
static int
admin_swap_rules(struct admin *a, const char *why)
{
	struct rule_diags diags;
	struct rule_set *rs;
	struct err err;
	size_t i;

	rule_diags_init(&diags);
	err_clear(&err);
	if ((rs = admin_compile(a, NULL, NULL, 0, NULL, &diags, &err)) == NULL) {
		for (i = 0; i < diags.n; i++)
			log_errorx("event=rules_invalid why=%s file=%s line=%d col=%d err=\"%s\"",
			    why, diags.v[i].file, diags.v[i].line, diags.v[i].col,
			    diags.v[i].msg);
		if (diags.n == 0)
			log_errorx("event=rules_invalid why=%s err=\"%s\"", why, err.msg);
		log_warnx("event=rules_kept why=%s rules=%zu", why,
		    rule_set_count(matcher_rules(a->app->matcher)));
		rule_diags_free(&diags);
		if (a->app->metrics != NULL && strcmp(why, "hup") == 0)
			metrics_inc(a->app->metrics, METRIC_RULE_RELOADS, METRICS_L("failed"), 1);
		return -1;
	}
	if (a->app->metrics != NULL && strcmp(why, "hup") == 0)
		metrics_inc(a->app->metrics, METRIC_RULE_RELOADS, METRICS_L("ok"), 1);
	matcher_set_rules(a->app->matcher, rs);
	log_info("event=rules_loaded why=%s files=%zu api=%zu rules=%zu version=%s", why,
	    a->folder.n, a->api.n, rule_set_count(rs), a->version[0] ? a->version : "-");
	return 0;
}

/* ---- requests waiting on Redis ---- */

static struct admin_op *
op_new(struct admin *a, struct http_req *r, enum admin_op_kind kind)
{
	struct admin_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->a = a;
	op->r = r;
	op->kind = kind;
	op->next = a->ops;
	if (a->ops != NULL)
		a->ops->prev = op;
	a->ops = op;
	return op;
}

/* Unlinks op (when its module still lives) and frees it. */
static void
op_free(struct admin_op *op)
{
	if (op->a != NULL) {
		if (op->prev != NULL)
			op->prev->next = op->next;
		else
			op->a->ops = op->next;
		if (op->next != NULL)
			op->next->prev = op->prev;
	}
	rule_set_free(op->rs);
	free(op->text);
	free(op);
}

/* The answer to a request whose Redis command failed or timed out. */
static void
op_redis_failed(struct admin_op *op, const struct redisReply *reply)
{
	if (op->r == NULL)
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		log_errorx("event=admin_redis_error op=%d err=\"%.200s\"", (int)op->kind,
		    reply->str);
	http_error(op->r, 503, NULL, "storage unavailable; try again");
	op->r = NULL;
}

/* ---- rules: loading ---- */

static void on_load(struct rconn *rc, struct redisReply *reply, void *arg);

/* evtimer: asks Redis for the API rules when their version moved. */
static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;
	struct timeval tv = { ADMIN_POLL_MS / 1000, (ADMIN_POLL_MS % 1000) * 1000 };
	struct admin_op *op;
	const char *args[3];

	(void)fd;
	(void)what;
	evtimer_add(a->poll, &tv);
	if (a->loading || !rconn_is_ready(a->app->cmd))
		return;
	if ((op = op_new(a, NULL, OP_LOAD)) == NULL)
		return;
	args[0] = "rules";              /* ORDER RULES_KEYS: admin_rules_load.lua */
	args[1] = "rules:version";
	args[2] = a->version;
	if (script_call_named(a->app->cmd, "admin_rules_load", 2, 3, args, NULL, on_load,
	    op) < 0) {
		op_free(op);
		return;
	}
	a->loading = 1;
}

static void
on_load(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admin_op *op = arg;
	struct admin *a = op->a;
	struct admin_srcs api = { NULL, 0 };
	size_t i;

	(void)rc;
	if (a == NULL)
		goto out;
	a->loading = 0;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_STRING) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_errorx("event=rules_load_failed err=\"%.200s\"", reply->str);
		goto out;
	}
	if (reply->elements == 1)
		goto out;   /* unchanged */
	for (i = 2; i + 1 < reply->elements; i += 2) {
		const struct redisReply *k = reply->element[i], *v = reply->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (!api_name_is_valid(k->str)) {
			log_warnx("event=rules_load_skipped name=\"%.64s\" err=\"bad name\"",
			    k->str);
			continue;
		}
		if (srcs_add(&api, k->str, v->str, v->len) < 0) {
			log_errorx("event=rules_load_failed err=\"out of memory\"");
			srcs_free(&api);
			goto out;
		}
	}
	if (api.n > 1)
		qsort(api.v, api.n, sizeof(*api.v), src_cmp);
	srcs_free(&a->api);
	a->api = api;
	snprintf(a->version, sizeof(a->version), "%s", reply->element[0]->str);
	a->epoch++;
	admin_swap_rules(a, "api");
out:
	op_free(op);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct admin *a = arg;
	struct admin_srcs folder, old;
	struct err err;

	(void)sig;
	(void)what;
	log_info("event=signal sig=HUP action=reload_rules");
	err_clear(&err);
	if (folder_read(a->app->cfg->rules_dir, &folder, &err) < 0) {
		log_errorx("event=rules_invalid why=hup err=\"%s\"", err.msg);
		log_warnx("event=rules_kept why=hup rules=%zu",
		    rule_set_count(matcher_rules(a->app->matcher)));
		if (a->app->metrics != NULL)
			metrics_inc(a->app->metrics, METRIC_RULE_RELOADS, METRICS_L("failed"), 1);
		return;
	}
	/* The folder and the API rules are compiled together and swapped in whole:
	 * SIGHUP is this module's alone, so no partial set is ever in use. A folder
	 * that does not compile is dropped with the set it would have made: the folder
	 * in use stays the one every later rule change is compiled with. */
	old = a->folder;
	a->folder = folder;
	if (admin_swap_rules(a, "hup") < 0) {
		a->folder = old;
		srcs_free(&folder);
		return;
	}
	srcs_free(&old);
	a->epoch++;
}

/* ---- JSON helpers ---- */

static cJSON *
channels_json(unsigned mask)
{
	cJSON *a = cJSON_CreateArray();
	int c;

	for (c = 0; a != NULL && c < CH_COUNT; c++)
		if (mask & CH_BIT(c))
			cJSON_AddItemToArray(a, cJSON_CreateString(channel_name((enum channel)c)));
	return a;
}

/* ---- subscribers ---- */

/* Adds "consent_kept_out": ["sms", ...] to the answer for the channels whose consent
 * the subscriber's own opt-out outranked (csv from admin_sub_put.lua; "" = none). */
static void
sub_kept_out(cJSON *j, const char *csv)
{
	cJSON *arr;
	const char *p = csv;

	if (*csv == '\0' || (arr = cJSON_AddArrayToObject(j, "consent_kept_out")) == NULL)
		return;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		char ch[16];

		snprintf(ch, sizeof(ch), "%.*s", (int)n, p);
		cJSON_AddItemToArray(arr, cJSON_CreateString(ch));
		p += n + (p[n] == ',');
	}
}

static void
on_sub_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admin_op *op = arg;
	cJSON *j;

	(void)rc;
	if (op->r == NULL)
		goto out;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		op_redis_failed(op, reply);
		goto out;
	}
	switch (op->kind) {
	case OP_SUB_GET:
		if (reply->type != REDIS_REPLY_STRING) {
			http_error(op->r, 404, "id", "no subscriber '%s'", op->name);
			break;
		}
		if ((j = cJSON_ParseWithLength(reply->str, reply->len)) == NULL) {
			http_error(op->r, 500, NULL, "stored subscriber is not JSON");
			break;
		}
		http_reply_json(op->r, 200, j);
		break;
	case OP_SUB_PUT:
		/* {0} | {1 created | 2 replaced, JSON as stored, channels kept out} */
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
		    reply->element[0]->type != REDIS_REPLY_INTEGER || (reply->element[0]->integer
		    != 0 && (reply->elements != 3 || reply->element[1]->type !=
		    REDIS_REPLY_STRING || reply->element[2]->type != REDIS_REPLY_STRING))) {
			op_redis_failed(op, NULL);
			break;
		}
		if (reply->element[0]->integer == 0) {
			http_error(op->r, 409, "id", "subscriber '%s' already exists", op->name);
			break;
		}
		if ((j = cJSON_ParseWithLength(reply->element[1]->str,
		    reply->element[1]->len)) == NULL) {
			http_error(op->r, 500, NULL, "stored subscriber is not JSON");
			break;
		}
		sub_kept_out(j, reply->element[2]->str);
		log_info("event=admin_sub_put sub=%s created=%d kept_out=%s", op->name,
		    reply->element[0]->integer == 1, reply->element[2]->len > 0 ?
		    reply->element[2]->str : "-");
		http_reply_json(op->r, reply->element[0]->integer == 1 ? 201 : 200, j);
		break;
	default: /* OP_SUB_DEL */
		if (reply->type != REDIS_REPLY_INTEGER) {
			op_redis_failed(op, NULL);
			break;
		}
		if (reply->integer == 0) {
			http_error(op->r, 404, "id", "no subscriber '%s'", op->name);
			break;
		}
		log_info("event=admin_sub_del sub=%s", op->name);
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "id", op->name);
		cJSON_AddTrueToObject(j, "deleted");
		http_reply_json(op->r, 200, j);
		break;
	}
	op->r = NULL;
out:
	op_free(op);
}

/* Sends script name with the subscriber keys of op->name (ORDER SUB_KEYS, the header
 * of admin_sub_put.lua); answers 503 itself when it cannot. */
static void
sub_script(struct admin *a, struct admin_op *op, const char *script, const char **extra,
    const size_t *extra_len, int nextra)
{
	char consent_keys[CH_COUNT][32];
	const char *args[4 + CH_COUNT + 5 + CH_COUNT];
	size_t lens[4 + CH_COUNT + 5 + CH_COUNT];
	int nargs = 0, c, i;

	args[nargs] = "subscribers";
	lens[nargs++] = strlen("subscribers");
	args[nargs] = "subscribers:changes";
	lens[nargs++] = strlen("subscribers:changes");
	args[nargs] = "consent:epoch";
	lens[nargs++] = strlen("consent:epoch");
	args[nargs] = "consent:records";
	lens[nargs++] = strlen("consent:records");
	for (c = 0; c < CH_COUNT; c++) {
		snprintf(consent_keys[c], sizeof(consent_keys[c]), "consent:%s",
		    channel_name((enum channel)c));
		args[nargs] = consent_keys[c];
		lens[nargs++] = strlen(consent_keys[c]);
	}
	for (i = 0; i < nextra; i++) {
		args[nargs] = extra[i];
		lens[nargs++] = extra_len[i];
	}
	if (script_call_named(a->app->cmd, script, 4 + CH_COUNT, nargs, args, lens,
	    on_sub_reply, op) < 0) {
		op_redis_failed(op, NULL);
		op_free(op);
	}
}

/* A subscriber put waiting for the suppression check (sub_suppress.lua), with the
 * put's own arguments: the put is sent from the check's reply, on the same
 * connection. */
struct sub_gate {
	struct admin_op *op;
	int create;
	char consent[CH_COUNT][24];
	char now[24];
};

static void
on_sub_gate(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct sub_gate *g = arg;
	struct admin_op *op = g->op;
	const char *extra[5 + CH_COUNT];
	size_t elen[5 + CH_COUNT];
	int c;

	(void)rc;
	if (op->r == NULL || op->a == NULL) {
		op_free(op);
		goto out;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		/* Not written unchecked: the list might hold this number. */
		op_redis_failed(op, reply);
		op_free(op);
		goto out;
	}
	if (reply->integer == 1)
		log_info("event=admin_sub_suppressed sub=%s channel=sms", op->name);
	extra[0] = op->name;
	extra[1] = op->text;
	extra[2] = g->create ? "1" : "0";
	for (c = 0; c < CH_COUNT; c++)
		extra[3 + c] = g->consent[c];
	extra[3 + CH_COUNT] = g->now;
	extra[4 + CH_COUNT] = "api";
	for (c = 0; c < 5 + CH_COUNT; c++)
		elen[c] = strlen(extra[c]);
	sub_script(op->a, op, "admin_sub_put", extra, elen, 5 + CH_COUNT);
out:
	free(g);
}

/*
 * Sends sub_suppress.lua for op's subscriber (phone may be NULL), then the put from
 * its reply: a number on the suppression list (an SMS STOP before it was this
 * subscriber's) gets no sms consent older than the STOP, and the answer lists sms in
 * consent_kept_out. Takes ownership of g; answers 503 itself when it cannot.
 */
static void
sub_gate_send(struct admin *a, struct sub_gate *g, const char *phone)
{
	struct admin_op *op = g->op;
	const char *args[7];

	args[0] = "suppressed:sms";
	args[1] = "subscribers";
	args[2] = "consent:records";
	args[3] = op->name;
	args[4] = phone != NULL ? phone : "";
	args[5] = g->consent[CH_SMS];
	args[6] = g->create ? "1" : "0";
	if (script_call_named(a->app->cmd, "sub_suppress", 3, 7, args, NULL, on_sub_gate,
	    g) < 0) {
		op_redis_failed(op, NULL);
		op_free(op);
		free(g);
	}
}

static void
sub_put(struct admin *a, struct http_req *r, const char *id, int create)
{
	size_t blen;
	const char *body = http_body(r, &blen);
	struct subscriber *s;
	struct admin_op *op = NULL;
	struct sub_gate *g;
	struct err e;
	int c;

	err_clear(&e);
	if ((s = subscriber_parse(body, blen, &e)) == NULL) {
		http_error_input(r, &e);
		return;
	}
	if (id != NULL && strcmp(id, s->id) != 0) {
		http_error(r, 400, "id", "id: '%s' does not match the path's '%s'", s->id, id);
		subscriber_free(s);
		return;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (op = op_new(a, r, OP_SUB_PUT)) == NULL ||
	    (op->text = subscriber_to_json(s)) == NULL) {
		if (op != NULL)
			op_free(op);
		free(g);
		subscriber_free(s);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->len = strlen(op->text);
	snprintf(op->name, sizeof(op->name), "%s", s->id);
	g->op = op;
	g->create = create;
	for (c = 0; c < CH_COUNT; c++)
		(void)subscriber_consent_arg(s, (enum channel)c, g->consent[c],
		    sizeof(g->consent[c]));
	snprintf(g->now, sizeof(g->now), "%lld", (long long)clock_now());
	sub_gate_send(a, g, s->phone);
	subscriber_free(s);
}

/* /v1/subscribers[/<id>] */
static void
on_subscribers(struct http_req *r, void *arg)
{
	struct admin *a = arg;
	const char *id = http_req_rest(r);
	int m = http_req_method(r);
	struct admin_op *op;

	if (*id == '\0') {
		if (m != EVHTTP_REQ_POST) {
			http_error(r, 405, "method", "use POST /v1/subscribers to create, or"
			    " /v1/subscribers/<id>");
			return;
		}
		sub_put(a, r, NULL, 1);
		return;
	}
	if (!deal_id_is_valid(id)) {
		http_error(r, 400, "path", "not a subscriber id: 1 to %d printable"
		    " characters, no space", MODEL_ID_MAX);
		return;
	}
	if (m == EVHTTP_REQ_POST) {
		http_error(r, 405, "method", "POST goes to /v1/subscribers; use PUT here");
		return;
	}
	if (m == EVHTTP_REQ_PUT) {
		sub_put(a, r, id, 0);
		return;
	}
	if ((op = op_new(a, r, m == EVHTTP_REQ_DELETE ? OP_SUB_DEL : OP_SUB_GET)) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->name, sizeof(op->name), "%s", id);
	if (op->kind == OP_SUB_DEL) {
		const char *extra[1] = { op->name };
		size_t elen[1] = { strlen(op->name) };

		sub_script(a, op, "admin_sub_del", extra, elen, 1);
		return;
	}
	if (rconn_cmd(a->app->cmd, on_sub_reply, op, 0, "HGET subscribers %s",
	    op->name) < 0) {
		op_redis_failed(op, NULL);
		op_free(op);
	}
}

/* ---- rules ---- */

static cJSON *
rule_json(const struct rule *ru)
{
	cJSON *j = cJSON_CreateObject();
	const char *file = rule_file(ru);

	cJSON_AddStringToObject(j, "name", rule_name(ru));
	cJSON_AddNumberToObject(j, "priority", rule_priority(ru));
	cJSON_AddItemToObject(j, "channels", channels_json(rule_channels(ru)));
	cJSON_AddStringToObject(j, "audience", rule_audience_all(ru) ? "all" : "interested");
	cJSON_AddNumberToObject(j, "holdout_pct", rule_holdout_bp(ru) / 100.0);
	cJSON_AddStringToObject(j, "file", file);
	cJSON_AddNumberToObject(j, "line", rule_line(ru));
	cJSON_AddStringToObject(j, "source", *file == '\0' ? "default" :
	    strncmp(file, ADMIN_API_PREFIX, strlen(ADMIN_API_PREFIX)) == 0 ? "api" :
	    "folder");
	return j;
}

static void
rules_list(struct admin *a, struct http_req *r)
{
	const struct rule_set *rs = matcher_rules(a->app->matcher);
	cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "rules");
	size_t i;

	for (i = 0; i < rule_set_count(rs); i++)
		cJSON_AddItemToArray(arr, rule_json(rule_set_get(rs, i)));
	cJSON_AddStringToObject(j, "api_version", a->version);
	http_reply_json(r, 200, j);
}

/* GET /v1/rules/<name>: an API source, a folder file (<name>.rules) or the file of
 * the rule named <name>. */
static void
rules_get(struct admin *a, struct http_req *r, const char *name)
{
	const struct rule_set *rs = matcher_rules(a->app->matcher);
	const struct admin_src *src = srcs_find(&a->api, name);
	const struct rule *ru;
	char file[ADMIN_FILE_MAX];
	cJSON *j, *arr;
	size_t i;

	if (src != NULL) {
		api_file_name(name, file, sizeof(file));
	} else {
		for (i = 0; i < a->folder.n && src == NULL; i++) {
			const char *base = strrchr(a->folder.v[i].name, '/');
			size_t bl;

			base = base ? base + 1 : a->folder.v[i].name;
			bl = strlen(base) - strlen(".rules");
			if (strlen(name) == bl && strncmp(base, name, bl) == 0)
				src = &a->folder.v[i];
		}
		if (src == NULL && (ru = rule_set_find(rs, name)) != NULL)
			src = srcs_find(&a->folder, rule_file(ru));
		if (src == NULL) {
			http_error(r, 404, "path", "no rule or rule file '%s'", name);
			return;
		}
		snprintf(file, sizeof(file), "%s", src->name);
	}
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "name", name);
	cJSON_AddStringToObject(j, "file", file);
	cJSON_AddStringToObject(j, "source", src == srcs_find(&a->api, name) ? "api" :
	    "folder");
	cJSON_AddStringToObject(j, "text", src->text);
	arr = cJSON_AddArrayToObject(j, "rules");
	for (i = 0; i < rule_set_count(rs); i++) {
		ru = rule_set_get(rs, i);
		if (strcmp(rule_file(ru), file) == 0)
			cJSON_AddItemToArray(arr, rule_json(ru));
	}
	http_reply_json(r, 200, j);
}

static void
reply_diags(struct http_req *r, const struct rule_diags *d, const struct err *e)
{
	cJSON *j, *arr;
	size_t i;

	if (e->kind == ERR_NOMEM) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "error", d->n > 0 ? "the rules do not compile; nothing"
	    " was changed" : e->msg);
	cJSON_AddStringToObject(j, "field", "body");
	arr = cJSON_AddArrayToObject(j, "errors");
	for (i = 0; i < d->n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "file", d->v[i].file);
		cJSON_AddNumberToObject(o, "line", d->v[i].line);
		cJSON_AddNumberToObject(o, "column", d->v[i].col);
		cJSON_AddStringToObject(o, "message", d->v[i].msg);
		cJSON_AddStringToObject(o, "source_line", d->v[i].src_line ?
		    d->v[i].src_line : "");
		cJSON_AddItemToArray(arr, o);
	}
	http_reply_json(r, 400, j);
}

static void
on_rule_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admin_op *op = arg;
	struct admin *a = op->a;
	struct admin_srcs api = { NULL, 0 };
	long long existed, version;
	size_t i;
	cJSON *j;

	(void)rc;
	if (op->r == NULL || a == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER ||
	    reply->element[1]->type != REDIS_REPLY_INTEGER) {
		op_redis_failed(op, reply);
		goto out;
	}
	existed = reply->element[0]->integer;
	version = reply->element[1]->integer;
	if (op->kind == OP_RULE_DEL && !existed) {
		http_error(op->r, 404, "path", "no API rule '%s'", op->name);
		op->r = NULL;
		goto out;
	}
	/* The cache takes the change; a version one past ours means nobody else wrote
	 * in between, so the cache is what Redis holds. */
	for (i = 0; i < a->api.n; i++) {
		const struct admin_src *s = &a->api.v[i];

		if (strcmp(s->name, op->name) != 0 && srcs_add(&api, s->name, s->text,
		    s->len) < 0)
			goto oom;
	}
	if (op->kind == OP_RULE_PUT && srcs_add(&api, op->name, op->text, op->len) < 0)
		goto oom;
	if (api.n > 1)
		qsort(api.v, api.n, sizeof(*api.v), src_cmp);
	srcs_free(&a->api);
	a->api = api;
	{
		char *end = NULL;
		long long mine = strtoll(a->version, &end, 10);

		if (a->version[0] != '\0' && *end == '\0' && mine + 1 == version)
			snprintf(a->version, sizeof(a->version), "%lld", version);
	}
	if (op->epoch == a->epoch && op->rs != NULL) {
		matcher_set_rules(a->app->matcher, op->rs);
		op->rs = NULL;
		log_info("event=rules_loaded why=api_%s name=%s rules=%zu version=%lld",
		    op->kind == OP_RULE_PUT ? "put" : "del", op->name,
		    rule_set_count(matcher_rules(a->app->matcher)), version);
	} else {
		admin_swap_rules(a, op->kind == OP_RULE_PUT ? "api_put" : "api_del");
	}
	a->epoch++;
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "name", op->name);
	if (op->kind == OP_RULE_PUT) {
		char file[ADMIN_FILE_MAX];

		api_file_name(op->name, file, sizeof(file));
		cJSON_AddStringToObject(j, "file", file);
		cJSON_AddBoolToObject(j, "created", !existed);
	} else {
		cJSON_AddTrueToObject(j, "deleted");
	}
	cJSON_AddNumberToObject(j, "rules_in_use",
	    (double)rule_set_count(matcher_rules(a->app->matcher)));
	cJSON_AddNumberToObject(j, "version", (double)version);
	http_reply_json(op->r, op->kind == OP_RULE_PUT && !existed ? 201 : 200, j);
	op->r = NULL;
	goto out;
oom:
	srcs_free(&api);
	http_error(op->r, 500, NULL, "out of memory (the change is stored; it is loaded"
	    " with the next reload)");
	op->r = NULL;
out:
	op_free(op);
}

static void
rules_change(struct admin *a, struct http_req *r, const char *name, int put)
{
	struct rule_diags diags;
	struct admin_op *op;
	const char *args[5];
	size_t lens[5], blen = 0;
	const char *body = put ? http_body(r, &blen) : NULL;
	char file[ADMIN_FILE_MAX];
	struct err err;
	size_t i, mine = 0;

	if (!put && srcs_find(&a->api, name) == NULL) {
		const struct rule *ru = rule_set_find(matcher_rules(a->app->matcher), name);

		for (i = 0; i < a->folder.n; i++) {
			const char *base = strrchr(a->folder.v[i].name, '/');

			base = base ? base + 1 : a->folder.v[i].name;
			if (strncmp(base, name, strlen(name)) == 0 &&
			    strcmp(base + strlen(name), ".rules") == 0)
				ru = NULL, mine = 1;
		}
		if (mine || (ru != NULL && strncmp(rule_file(ru), ADMIN_API_PREFIX,
		    strlen(ADMIN_API_PREFIX)) != 0 && rule_file(ru)[0] != '\0')) {
			http_error(r, 409, "path", "'%s' comes from the rule folder; only rules"
			    " put over the API can be deleted", name);
			return;
		}
	}
	if ((op = op_new(a, r, put ? OP_RULE_PUT : OP_RULE_DEL)) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->name, sizeof(op->name), "%s", name);
	rule_diags_init(&diags);
	err_clear(&err);
	op->rs = admin_compile(a, put ? name : NULL, body, blen, put ? NULL : name,
	    &diags, &err);
	if (op->rs == NULL) {
		reply_diags(r, &diags, &err);
		rule_diags_free(&diags);
		op->r = NULL;
		op_free(op);
		return;
	}
	if (put) {
		const struct rule_set *rs = op->rs;

		api_file_name(name, file, sizeof(file));
		for (i = 0, mine = 0; i < rule_set_count(rs); i++)
			mine += strcmp(rule_file(rule_set_get(rs, i)), file) == 0;
		if (mine == 0) {
			http_error(r, 400, "body", "%s: defines no rule; write at least one"
			    " 'rule NAME ... end'", file);
			op->r = NULL;
			op_free(op);
			return;
		}
		if ((op->text = malloc(blen + 1)) == NULL) {
			http_error(r, 500, NULL, "out of memory");
			op->r = NULL;
			op_free(op);
			return;
		}
		memcpy(op->text, body, blen);
		op->text[blen] = '\0';
		op->len = blen;
	}
	op->epoch = a->epoch;
	args[0] = "rules";              /* ORDER RULES_KEYS: admin_rule.lua */
	args[1] = "rules:version";
	args[2] = put ? "put" : "del";
	args[3] = op->name;
	args[4] = put ? op->text : "";
	for (i = 0; i < 5; i++)
		lens[i] = strlen(args[i]);
	lens[4] = put ? op->len : 0;
	if (script_call_named(a->app->cmd, "admin_rule", 2, 5, args, lens, on_rule_reply,
	    op) < 0) {
		op_redis_failed(op, NULL);
		op_free(op);
	}
}

/* /v1/rules[/<name>] */
static void
on_rules(struct http_req *r, void *arg)
{
	struct admin *a = arg;
	const char *name = http_req_rest(r);
	int m = http_req_method(r);

	if (*name == '\0') {
		if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
			rules_list(a, r);
		else
			http_error(r, 405, "method", "use GET /v1/rules, or /v1/rules/<name>");
		return;
	}
	if (!api_name_is_valid(name)) {
		http_error(r, 400, "path", "a rule name is 1 to %d letters, digits, '_' or"
		    " '-'", ADMIN_SRC_NAME_MAX);
		return;
	}
	if (m == EVHTTP_REQ_PUT)
		rules_change(a, r, name, 1);
	else if (m == EVHTTP_REQ_DELETE)
		rules_change(a, r, name, 0);
	else if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
		rules_get(a, r, name);
	else
		http_error(r, 405, "method", "use GET, PUT or DELETE on /v1/rules/<name>");
}

/* ---- reports ---- */

/* The counters a report shows by name, in this order (docs/admin.md#reports); the
 * holdout ones go into "holdout", error:<code> into "errors", every other number is
 * a skip outcome and goes into "skipped". */
static const char *const report_counters[] = {
	"admitted", "sent", "failed", "unknown", "delivered", "undelivered",
	"delivery_failed", "clicked", "redeemed", "revenue", "sms_segments",
	"unattributed", "unattributed_revenue", "filtered", "redelivery", NULL
};
static const char *const report_holdout[] = {
	"planned", "holdout_audience", "holdout_redeemed", "holdout_revenue",
	"treated_audience", NULL
};

static int
report_in(const char *const *list, const char *f)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], f) == 0)
			return 1;
	return 0;
}

/* A number from a hash value, or NAN when it is none. */
static double
report_num(const struct redisReply *v)
{
	char *end = NULL;
	double x;

	if (v == NULL || v->type != REDIS_REPLY_STRING || v->len == 0)
		return NAN;
	errno = 0;
	x = strtod(v->str, &end);
	if (errno != 0 || *end != '\0' || !isfinite(x))
		return NAN;
	return x;
}

static const struct redisReply *
report_get(const struct redisReply *h, const char *f)
{
	size_t i;

	for (i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(h->element[i]->str, f) == 0)
			return h->element[i + 1];
	return NULL;
}

/* The counter f, 0 when absent or not a number. */
static double
report_val(const struct redisReply *h, const char *f)
{
	double x = report_num(report_get(h, f));

	return isnan(x) ? 0 : x;
}

static void
add_num_or_null(cJSON *j, const char *k, double x)
{
	if (isnan(x))
		cJSON_AddNullToObject(j, k);
	else
		cJSON_AddNumberToObject(j, k, x);
}

/* a / b, or NAN when b is 0. */
static double
report_rate(double a, double b)
{
	return b > 0 ? a / b : NAN;
}

/*
 * The holdout comparison (docs/attribution.md §5): the treated audience (subscribers
 * sent at least one push) against the held-out audience (matched, never sent). Each
 * conversion rate is orders per audience member; the incremental redemptions are
 * (treated rate - holdout rate) x treated audience, and the incremental revenue those
 * redemptions at the treated average order value. NULL when nobody was held out.
 */
static cJSON *
report_holdout_json(const struct redisReply *h, cJSON *notes)
{
	double ha = report_val(h, "holdout_audience"), hr = report_val(h,
	    "holdout_redeemed"), ta = report_num(report_get(h, "treated_audience"));
	double redeemed = report_val(h, "redeemed"), revenue = report_val(h, "revenue");
	double tr, hrate, inc;
	cJSON *o;

	if (isnan(ta))                  /* counted since treated_audience existed */
		ta = report_val(h, "sent");
	if (ha <= 0 || ta <= 0) {
		cJSON_AddItemToArray(notes, cJSON_CreateString(ha <= 0 ?
		    "holdout: null, nobody was held out" :
		    "holdout: null, nobody was sent a push to compare with"));
		return NULL;
	}
	tr = redeemed / ta;
	hrate = hr / ha;
	inc = (tr - hrate) * ta;
	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddNumberToObject(o, "audience", ha);
	cJSON_AddNumberToObject(o, "redeemed", hr);
	cJSON_AddNumberToObject(o, "revenue", report_val(h, "holdout_revenue"));
	cJSON_AddNumberToObject(o, "treated_audience", ta);
	cJSON_AddNumberToObject(o, "treated_conversion_rate", tr);
	cJSON_AddNumberToObject(o, "holdout_conversion_rate", hrate);
	cJSON_AddNumberToObject(o, "incremental_redemptions", inc);
	add_num_or_null(o, "incremental_revenue", redeemed > 0 ?
	    inc * revenue / redeemed : NAN);
	if (redeemed <= 0)
		cJSON_AddItemToArray(notes, cJSON_CreateString("holdout: incremental_revenue"
		    " is null, no treated order gives an average order value"));
	return o;
}

static void
on_report(struct rconn *rc, struct redisReply *h, void *arg)
{
	struct admin_op *op = arg;
	double sent, revenue, price = op->price;
	cJSON *j, *skips, *errors, *hold, *notes;
	size_t i;

	(void)rc;
	if (op->r == NULL)
		goto out;
	if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
		op_redis_failed(op, h);
		goto out;
	}
	if (h->elements == 0) {
		http_error(op->r, 404, "path", "no report for %s '%s'", op->kindname,
		    op->name);
		op->r = NULL;
		goto out;
	}
	j = cJSON_CreateObject();
	notes = cJSON_CreateArray();
	cJSON_AddStringToObject(j, "kind", op->kindname);
	cJSON_AddStringToObject(j, "name", op->name);
	cJSON_AddNumberToObject(j, "matched", report_val(h, "planned"));
	for (i = 0; report_counters[i] != NULL; i++)
		cJSON_AddNumberToObject(j, report_counters[i],
		    report_val(h, report_counters[i]));
	sent = report_val(h, "sent");
	revenue = report_val(h, "revenue");
	if (!isnan(price)) {
		cJSON_AddNumberToObject(j, "sms_cost", report_val(h, "sms_segments") * price);
	} else {
		cJSON_AddNullToObject(j, "sms_cost");
		cJSON_AddItemToArray(notes, cJSON_CreateString("sms_cost is null: no"
		    " per-segment price (report.sms_segment_price, or ?segment_price=)"));
	}
	add_num_or_null(j, "click_rate", report_rate(report_val(h, "clicked"), sent));
	add_num_or_null(j, "revenue_per_1000_pushes", sent > 0 ? revenue * 1000 / sent :
	    NAN);
	skips = cJSON_AddObjectToObject(j, "skipped");
	errors = cJSON_AddObjectToObject(j, "errors");
	for (i = 0; i + 1 < h->elements; i += 2) {
		const struct redisReply *k = h->element[i];
		double x = report_num(h->element[i + 1]);

		if (k->type != REDIS_REPLY_STRING || isnan(x) ||
		    report_in(report_counters, k->str) || report_in(report_holdout, k->str))
			continue;
		if (strncmp(k->str, "error:", 6) == 0 && k->str[6] != '\0')
			cJSON_AddNumberToObject(errors, k->str + 6, x);
		else
			cJSON_AddNumberToObject(skips, k->str, x);
	}
	if (strcmp(op->kindname, "rule") == 0) {
		int paused = matcher_is_paused(op->a->app->matcher, op->name);

		cJSON_AddBoolToObject(j, "template_paused", paused);
		if (paused)
			cJSON_AddItemToArray(notes, cJSON_CreateString("template_paused: a carrier"
			    " filtered this rule's SMS (Twilio 30007, counted in filtered); no SMS"
			    " is planned for it until its template is fixed and the pause lifted"
			    " (HDEL paused_templates <rule>)"));
	}
	if ((hold = report_holdout_json(h, notes)) != NULL)
		cJSON_AddItemToObject(j, "holdout", hold);
	else
		cJSON_AddNullToObject(j, "holdout");
	cJSON_AddItemToObject(j, "notes", notes);
	http_reply_json(op->r, 200, j);
	op->r = NULL;
out:
	op_free(op);
}

/* /v1/reports/<deal|rule|campaign>/<name> */
static void
on_reports(struct http_req *r, void *arg)
{
	struct admin *a = arg;
	const char *rest = http_req_rest(r), *slash = strchr(rest, '/'), *price;
	struct admin_op *op;
	size_t kl = slash ? (size_t)(slash - rest) : 0;

	if (slash == NULL || !((kl == 4 && strncmp(rest, "deal", 4) == 0) ||
	    (kl == 4 && strncmp(rest, "rule", 4) == 0) ||
	    (kl == 8 && strncmp(rest, "campaign", 8) == 0))) {
		http_error(r, 404, "path", "reports are /v1/reports/deal|rule|campaign/<name>");
		return;
	}
	if (!deal_id_is_valid(slash + 1)) {
		http_error(r, 400, "path", "not a name: 1 to %d printable characters, no"
		    " space", MODEL_ID_MAX);
		return;
	}
	if ((op = op_new(a, r, OP_REPORT)) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->kindname, sizeof(op->kindname), "%.*s", (int)kl, rest);
	snprintf(op->name, sizeof(op->name), "%s", slash + 1);
	op->price = a->app->cfg->sms_segment_price >= 0 ? a->app->cfg->sms_segment_price :
	    NAN;
	if ((price = http_query(r, "segment_price")) != NULL) {
		char *end = NULL;
		double x;

		errno = 0;
		x = strtod(price, &end);
		/* Plain decimals only: strtod would also take " 1", "0x10" and "1e2". */
		if (*price == '\0' || strspn(price, "0123456789.") != strlen(price) ||
		    *end != '\0' || errno != 0 || !isfinite(x) || x < 0 || x > 100) {
			http_error(r, 400, "segment_price", "segment_price: not a price"
			    " (a number from 0 to 100)");
			op->r = NULL;
			op_free(op);
			return;
		}
		op->price = x;
	}
	if (rconn_cmd(a->app->cmd, on_report, op, 0, "HGETALL report:%s:%s", op->kindname,
	    op->name) < 0) {
		op_redis_failed(op, NULL);
		op_free(op);
	}
}

/* ---- the module ---- */

struct admin *
admin_new(const struct app *app)
{
	struct admin *a;
	struct err err;
	struct timeval now = { 0, 0 };
	int all = EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE;

	if (app == NULL)
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto oom;
	a->app = app;
	err_clear(&err);
	if (folder_read(app->cfg->rules_dir, &a->folder, &err) < 0) {
		log_errorx("event=start_failed component=admin err=\"%s\"", err.msg);
		goto fail;
	}
	if ((a->poll = evtimer_new(app->base, on_poll, a)) == NULL ||
	    (a->hup = evsignal_new(app->base, SIGHUP, on_hup, a)) == NULL)
		goto oom;
	/* Without the HTTP surface the module still keeps the API rules in use. */
	if (app->http != NULL && (
	    http_route(app->http, all, "/v1/subscribers", on_subscribers, a, HTTP_AUTH) < 0 ||
	    http_route(app->http, all, "/v1/rules", on_rules, a, HTTP_AUTH) < 0 ||
	    http_route(app->http, EVHTTP_REQ_GET, "/v1/reports", on_reports, a,
	    HTTP_AUTH) < 0 ||
	    (a->bulk = admin_bulk_new(app)) == NULL ||
	    (a->consent = admin_consent_new(app)) == NULL))
		goto oom;
	event_add(a->hup, NULL);
	evtimer_add(a->poll, &now);
	return a;
oom:
	log_errorx("event=start_failed component=admin err=\"out of memory\"");
fail:
	admin_free(a);
	return NULL;
}

void
admin_free(struct admin *a)
{
	struct admin_op *op, *next;

	if (a == NULL)
		return;
	for (op = a->ops; op != NULL; op = next) {
		next = op->next;
		op->a = NULL;       /* its callback only frees it */
		op->r = NULL;       /* http_free answers it 503 */
		op->prev = op->next = NULL;
	}
	admin_bulk_free(a->bulk);
	admin_consent_free(a->consent);
	if (a->poll)
		event_free(a->poll);
	if (a->hup)
		event_free(a->hup);
	srcs_free(&a->folder);
	srcs_free(&a->api);
	free(a);
}
