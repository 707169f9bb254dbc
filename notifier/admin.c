/*
 * admin.c: the admin API under /v1/ (stage: http): its routes, its state, and the
 * rules in use (folder + API: read at start-up and SIGHUP, polled from Redis, compiled
 * and swapped in). The endpoints are admin_sub.c (subscribers), admin_rules.c (rules),
 * admin_report.c (reports), admin_bulk.c, admin_consent.c and admin_confirm.c
 * (docs/admin.md). Deal
 * simulation is simulate.c.
 *
 * Every write is one Lua script (notifier/lua/admin_*.lua), so a request either
 * changes all it should or nothing. A rule change is compiled with the whole set
 * before anything is written: a set that does not compile never reaches Redis or the
 * matcher. Handlers never block the loop: Redis answers come back through callbacks,
 * and the rule folder is read only at start-up and on SIGHUP.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "keys.h"
#include "admin.h"
#include "admin_bulk.h"
#include "admin_codes.h"
#include "admin_confirm.h"
#include "admin_consent.h"
#include "admin_deals.h"
#include "admin_int.h"
#include "app.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "rules.h"
#include "admin_replies.h"
#include "privacy.h"
#include "rulesload.h"
#include "scripts.h"

/* ---- rule sources ---- */

void
admin_srcs_free(struct admin_srcs *s)
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
int
admin_srcs_add(struct admin_srcs *s, const char *name, const char *text, size_t len)
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

const struct admin_src *
admin_srcs_find(const struct admin_srcs *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

int
admin_src_cmp(const void *x, const void *y)
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
		if (admin_srcs_add(out, files[i].path, files[i].text, files[i].len) < 0) {
			admin_srcs_free(out);
			rv = err_set(err, ERR_NOMEM, "no_memory", dir, "out of memory");
		}
	rulesload_files_free(files, n);
	return rv;
}

/* "api/<name>.rules" into buf. */
void
admin_api_file_name(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, ADMIN_API_PREFIX "%s.rules", name);
}

/* 1 when name may name an API rule source: 1..64 of [A-Za-z0-9_-]. */
int
admin_api_name_is_valid(const char *name)
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
struct rule_set *
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
		admin_api_file_name(s->name, names[n], sizeof(names[n]));
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
		admin_api_file_name(put_name, names[n], sizeof(names[n]));
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
int
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

struct admin_op *
admin_op_new(struct admin *a, struct http_req *r, enum admin_op_kind kind)
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
void
admin_op_free(struct admin_op *op)
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
	cJSON_Delete(op->json);
	free(op->text);
	free(op);
}

/* The answer to a request whose Redis command failed or timed out. */
void
admin_op_redis_failed(struct admin_op *op, const struct redisReply *reply)
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
	if ((op = admin_op_new(a, NULL, OP_LOAD)) == NULL)
		return;
	args[0] = "rules";              /* ORDER RULES_KEYS: admin_rules_load.lua */
	args[1] = keys_global(KEYS_G_RULES_VERSION);
	args[2] = a->version;
	if (script_call_named(a->app->cmd, "admin_rules_load", 2, 3, args, NULL, on_load,
	    op) < 0) {
		admin_op_free(op);
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
		if (!admin_api_name_is_valid(k->str)) {
			log_warnx("event=rules_load_skipped name=\"%.64s\" err=\"bad name\"",
			    k->str);
			continue;
		}
		if (admin_srcs_add(&api, k->str, v->str, v->len) < 0) {
			log_errorx("event=rules_load_failed err=\"out of memory\"");
			admin_srcs_free(&api);
			goto out;
		}
	}
	if (api.n > 1)
		qsort(api.v, api.n, sizeof(*api.v), admin_src_cmp);
	admin_srcs_free(&a->api);
	a->api = api;
	snprintf(a->version, sizeof(a->version), "%s", reply->element[0]->str);
	a->epoch++;
	admin_swap_rules(a, "api");
out:
	admin_op_free(op);
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
		admin_srcs_free(&folder);
		return;
	}
	admin_srcs_free(&old);
	a->epoch++;
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
	    http_route(app->http, all, "/v1/subscribers", HTTP_ROLE_ADMIN,
	    admin_on_subscribers, a, 0) < 0 ||
	    http_route(app->http, EVHTTP_REQ_GET, "/v1/rules", HTTP_ROLE_VIEWER,
	    admin_on_rules, a, 0) < 0 ||
	    http_route(app->http, all & ~EVHTTP_REQ_GET, "/v1/rules", HTTP_ROLE_MARKETER,
	    admin_on_rules, a, 0) < 0 ||
	    http_route(app->http, EVHTTP_REQ_GET, "/v1/reports", HTTP_ROLE_VIEWER,
	    admin_on_reports, a, 0) < 0 ||
	    (a->bulk = admin_bulk_new(app)) == NULL ||
	    (a->consent = admin_consent_new(app)) == NULL ||
	    (a->confirm = admin_confirm_new(app)) == NULL ||
	    (a->codes = admin_codes_new(app)) == NULL ||
	    (a->deals = admin_deals_new(app)) == NULL ||
	    (a->privacy = privacy_new(app)) == NULL ||
	    (a->replies = admin_replies_new(app)) == NULL))
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
	admin_confirm_free(a->confirm);
	admin_codes_free(a->codes);
	admin_deals_free(a->deals);
	privacy_free(a->privacy);
	admin_replies_free(a->replies);
	http_wait_detach_all(&a->list_ops);   /* their callbacks only free them */
	if (a->poll)
		event_free(a->poll);
	if (a->hup)
		event_free(a->hup);
	admin_srcs_free(&a->folder);
	admin_srcs_free(&a->api);
	free(a);
}
