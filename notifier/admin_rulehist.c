/*
 * admin_rulehist.c: GET /v1/rules/<name>?history=1, the versions of an API rule
 * source from the audit stream (stage: http; docs/api.md): each rules.put and
 * rules.delete of that name among the newest RULEHIST_SCAN entries, newest first,
 * with who, when and the text before and after, for the console's diff. One
 * XREVRANGE; it only reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "keys.h"
#include "admin_int.h"
#include "app.h"
#include "http.h"
#include "rconn.h"
#include "redisutil.h"

#define RULEHIST_SCAN "5000"          /* newest audit entries looked at */
#define RULEHIST_MAX 50               /* versions answered */

struct hist_op {
	struct http_wait w;             /* first: in the module's list */
	char name[ADMIN_SRC_NAME_MAX + 1];
};

/* The text of an audit "before"/"after" value ({"text": ...}, null, or cut as
 * {"truncated": true, "head": ...}) added to o as member; null when there is none. */
static void
hist_text(cJSON *o, const char *member, const char *v, size_t len)
{
	cJSON *j = v != NULL ? cJSON_ParseWithLength(v, len) : NULL;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");

	if (cJSON_IsString(t)) {
		cJSON_AddStringToObject(o, member, t->valuestring);
	} else if (cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(j, "head"))) {
		cJSON_AddStringToObject(o, member, t->valuestring);
		cJSON_AddBoolToObject(o, "truncated", 1);
	} else {
		cJSON_AddNullToObject(o, member);
	}
	cJSON_Delete(j);
}

/* The field's value of entry f as a NUL-terminated copy in buf, or NULL. */
static const char *
hist_field(const redisReply *f, const char *name, char *buf, size_t size)
{
	size_t len = 0;
	const char *v = ru_field(f, name, &len);

	if (v == NULL || len >= size)
		return NULL;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

static void
on_history(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hist_op *op = arg;
	struct http_req *r = op->w.r;
	cJSON *j = NULL, *arr;
	size_t i, n = 0;

	(void)rc;
	http_wait_remove(&op->w);
	if (r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		http_error(r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	if ((j = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(j, "name", op->name) == NULL ||
	    (arr = cJSON_AddArrayToObject(j, "versions")) == NULL)
		goto oom;
	for (i = 0; i < reply->elements && n < RULEHIST_MAX; i++) {
		const redisReply *e = reply->element[i], *f;
		char what[32], id[ADMIN_SRC_NAME_MAX + 1], who[128], ms[24];
		const char *v;
		size_t len;
		cJSON *o;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    (f = e->element[1])->type != REDIS_REPLY_ARRAY ||
		    hist_field(f, "what", what, sizeof(what)) == NULL ||
		    (strcmp(what, "rules.put") != 0 && strcmp(what, "rules.delete") != 0) ||
		    hist_field(f, "id", id, sizeof(id)) == NULL ||
		    strcmp(id, op->name) != 0)
			continue;
		if ((o = cJSON_CreateObject()) == NULL)
			goto oom;
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "entry", e->element[0]->str);
		cJSON_AddStringToObject(o, "what", what);
		cJSON_AddStringToObject(o, "who", hist_field(f, "who", who, sizeof(who)) ?
		    who : "");
		cJSON_AddNumberToObject(o, "ms", hist_field(f, "ms", ms, sizeof(ms)) ?
		    strtod(ms, NULL) : 0);
		v = ru_field(f, "before", &len);
		hist_text(o, "before", v, len);
		v = ru_field(f, "after", &len);
		hist_text(o, "after", v, len);
		n++;
	}
	http_reply_json(r, 200, j);
	goto out;
oom:
	cJSON_Delete(j);
	http_error(r, 500, NULL, "out of memory");
out:
	free(op);
}

void
admin_rule_history(struct admin *a, struct http_req *r, const char *name)
{
	const char *argv[6] = { "XREVRANGE", keys_global(KEYS_G_AUDIT), "+", "-", "COUNT",
	    RULEHIST_SCAN };
	struct hist_op *op = calloc(1, sizeof(*op));

	if (op == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->name, sizeof(op->name), "%s", name);
	http_wait_add(&a->list_ops, &op->w, r);
	if (rconn_argv(a->app->cmd, on_history, op, 0, 6, argv, NULL) < 0) {
		http_wait_remove(&op->w);
		free(op);
		http_error(r, 503, NULL, "storage unavailable; try again");
	}
}
