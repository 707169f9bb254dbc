/*
 * admin_rules.c: /v1/rules of the admin API (stage: http): list, get, put and delete
 * API rules (docs/admin.md). A change is compiled with the whole set before anything
 * is written: a set that does not compile never reaches Redis or the matcher; the
 * answer carries every diagnostic with its line and column. It must never block the
 * loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "keys.h"
#include "admin_int.h"
#include "app.h"
#include "audit.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "match.h"
#include "rules.h"
#include "scripts.h"
#include "subscriber.h"

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
	const struct admin_src *src = admin_srcs_find(&a->api, name);
	const struct rule *ru;
	char file[ADMIN_FILE_MAX];
	cJSON *j, *arr;
	size_t i;

	if (src != NULL) {
		admin_api_file_name(name, file, sizeof(file));
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
			src = admin_srcs_find(&a->folder, rule_file(ru));
		if (src == NULL) {
			http_error(r, 404, "path", "no rule or rule file '%s'", name);
			return;
		}
		snprintf(file, sizeof(file), "%s", src->name);
	}
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "name", name);
	cJSON_AddStringToObject(j, "file", file);
	cJSON_AddStringToObject(j, "source", src == admin_srcs_find(&a->api, name) ? "api" :
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
		admin_op_redis_failed(op, reply);
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

		if (strcmp(s->name, op->name) != 0 && admin_srcs_add(&api, s->name, s->text,
		    s->len) < 0)
			goto oom;
	}
	if (op->kind == OP_RULE_PUT && admin_srcs_add(&api, op->name, op->text, op->len) < 0)
		goto oom;
	if (api.n > 1)
		qsort(api.v, api.n, sizeof(*api.v), admin_src_cmp);
	admin_srcs_free(&a->api);
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

		admin_api_file_name(op->name, file, sizeof(file));
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
	admin_srcs_free(&api);
	http_error(op->r, 500, NULL, "out of memory (the change is stored; it is loaded"
	    " with the next reload)");
	op->r = NULL;
out:
	admin_op_free(op);
}

static void
rules_change(struct admin *a, struct http_req *r, const char *name, int put, int check)
{
	struct rule_diags diags;
	struct admin_op *op;
	const struct http_principal *who = http_req_principal(r);
	const char *args[9];
	size_t lens[9], blen = 0;
	char ms[24];
	const char *body = put ? http_body(r, &blen) : NULL;
	char file[ADMIN_FILE_MAX];
	struct err err;
	size_t i, mine = 0;

	if (!put && admin_srcs_find(&a->api, name) == NULL) {
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
	if ((op = admin_op_new(a, r, put ? OP_RULE_PUT : OP_RULE_DEL)) == NULL) {
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
		admin_op_free(op);
		return;
	}
	if (put) {
		const struct rule_set *rs = op->rs;

		admin_api_file_name(name, file, sizeof(file));
		for (i = 0, mine = 0; i < rule_set_count(rs); i++)
			mine += strcmp(rule_file(rule_set_get(rs, i)), file) == 0;
		if (mine == 0) {
			http_error(r, 400, "body", "%s: defines no rule; write at least one"
			    " 'rule NAME ... end'", file);
			op->r = NULL;
			admin_op_free(op);
			return;
		}
		if (check) {
			/* ?check=1: the set compiles with this text; nothing is written. */
			cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "rules");

			cJSON_AddStringToObject(j, "name", name);
			cJSON_AddStringToObject(j, "file", file);
			cJSON_AddBoolToObject(j, "compiles", 1);
			for (i = 0; arr != NULL && i < rule_set_count(rs); i++)
				if (strcmp(rule_file(rule_set_get(rs, i)), file) == 0)
					cJSON_AddItemToArray(arr, rule_json(rule_set_get(rs, i)));
			http_reply_json(r, 200, j);
			op->r = NULL;
			admin_op_free(op);
			return;
		}
		if ((op->text = malloc(blen + 1)) == NULL) {
			http_error(r, 500, NULL, "out of memory");
			op->r = NULL;
			admin_op_free(op);
			return;
		}
		memcpy(op->text, body, blen);
		op->text[blen] = '\0';
		op->len = blen;
	}
	op->epoch = a->epoch;
	snprintf(ms, sizeof(ms), "%lld", (long long)clock_now_ms());
	args[0] = "rules";              /* ORDER RULES_KEYS: admin_rule.lua */
	args[1] = keys_global(KEYS_G_RULES_VERSION);
	args[2] = AUDIT_KEY;
	args[3] = put ? "put" : "del";
	args[4] = op->name;
	args[5] = put ? op->text : "";
	args[6] = who != NULL ? who->name : "-";
	args[7] = who != NULL ? http_role_name(who->role) : "-";
	args[8] = ms;
	for (i = 0; i < 9; i++)
		lens[i] = strlen(args[i]);
	lens[5] = put ? op->len : 0;
	if (script_call_named(a->app->cmd, "admin_rule", 3, 9, args, lens, on_rule_reply,
	    op) < 0) {
		admin_op_redis_failed(op, NULL);
		admin_op_free(op);
	}
}

struct rule_set *
admin_rules_draft(const struct admin *a, struct http_req *r, const char *name,
    const char *text, size_t len)
{
	struct rule_diags diags;
	struct rule_set *rs;
	char file[ADMIN_FILE_MAX];
	struct err err;
	size_t i, mine = 0;

	if (!admin_api_name_is_valid(name)) {
		http_error(r, 400, "draft.name", "draft.name: a rule name is 1 to %d letters,"
		    " digits, '_' or '-'", ADMIN_SRC_NAME_MAX);
		return NULL;
	}
	rule_diags_init(&diags);
	err_clear(&err);
	if ((rs = admin_compile(a, name, text, len, NULL, &diags, &err)) == NULL) {
		reply_diags(r, &diags, &err);
		rule_diags_free(&diags);
		return NULL;
	}
	rule_diags_free(&diags);
	admin_api_file_name(name, file, sizeof(file));
	for (i = 0; i < rule_set_count(rs); i++)
		mine += strcmp(rule_file(rule_set_get(rs, i)), file) == 0;
	if (mine == 0) {
		http_error(r, 400, "draft.text", "%s: defines no rule; write at least one"
		    " 'rule NAME ... end'", file);
		rule_set_free(rs);
		return NULL;
	}
	return rs;
}

/* /v1/rules[/<name>] */
void
admin_on_rules(struct http_req *r, void *arg)
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
	if (!admin_api_name_is_valid(name)) {
		http_error(r, 400, "path", "a rule name is 1 to %d letters, digits, '_' or"
		    " '-'", ADMIN_SRC_NAME_MAX);
		return;
	}
	if (m == EVHTTP_REQ_PUT) {
		const char *check = http_query(r, "check");

		if (check != NULL && strcmp(check, "1") != 0) {
			http_error(r, 400, "check", "check=1 compiles without applying; nothing "
			    "else is a check");
			return;
		}
		rules_change(a, r, name, 1, check != NULL);
	} else if (m == EVHTTP_REQ_DELETE) {
		rules_change(a, r, name, 0, 0);
	}
	else if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) {
		const char *history = http_query(r, "history");

		if (history != NULL && strcmp(history, "1") != 0)
			http_error(r, 400, "history", "history=1 lists the versions; nothing "
			    "else is allowed");
		else if (history != NULL)
			admin_rule_history(a, r, name);
		else
			rules_get(a, r, name);
	}
	else
		http_error(r, 405, "method", "use GET, PUT or DELETE on /v1/rules/<name>");
}
