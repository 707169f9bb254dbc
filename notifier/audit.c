/*
 * audit.c: the audit stream (stage: http): entries for changes that are not made by
 * a script on a global key, the size bound of a before/after value, and the read of
 * GET /v1/audit (include/audit.h). It never blocks the loop and never records a
 * credential: callers pass what they changed, never a token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "audit.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "rconn.h"

char *
audit_value(const char *json)
{
	size_t len, cut;
	char *head, *out;
	cJSON *j;

	if (json == NULL)
		return strdup("null");
	len = strlen(json);
	if (len <= AUDIT_VALUE_MAX)
		return strdup(json);
	cut = AUDIT_VALUE_MAX;
	while (cut > 0 && ((unsigned char)json[cut] & 0xc0) == 0x80)
		cut--;
	if ((head = strndup(json, cut)) == NULL)
		return NULL;
	j = cJSON_CreateObject();
	if (j == NULL || cJSON_AddTrueToObject(j, "truncated") == NULL ||
	    cJSON_AddNumberToObject(j, "bytes", (double)len) == NULL ||
	    cJSON_AddStringToObject(j, "head", head) == NULL) {
		cJSON_Delete(j);
		free(head);
		return NULL;
	}
	free(head);
	out = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return out;
}

static void
on_added(struct rconn *rc, struct redisReply *reply, void *arg)
{
	char *what = arg;

	(void)rc;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		log_errorx("event=audit_failed what=%s err=\"%.200s\"", what,
		    reply != NULL ? reply->str : "no answer");
	free(what);
}

char *
audit_subscriber(const char *json, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(json, len), *ph = cJSON_GetObjectItem(j, "phone");
	char masked[32], *out;
	size_t n;

	if (j == NULL)
		return NULL;
	if (cJSON_IsString(ph)) {
		n = strlen(ph->valuestring);
		snprintf(masked, sizeof(masked), "...%s", n > 4 ? ph->valuestring + n - 4 : "");
		cJSON_ReplaceItemInObject(j, "phone", cJSON_CreateString(masked));
	}
	out = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return out;
}

void
audit_record(struct rconn *cmd, const struct http_principal *p,
    const char *what, const char *id, const char *before, const char *after)
{
	char *b = audit_value(before), *a = audit_value(after), *w = strdup(what);
	char ms[24];
	const char *argv[20] = { "XADD", AUDIT_KEY, "MAXLEN", "~", AUDIT_MAXLEN, "*",
	    "who", p != NULL ? p->name : "-", "role",
	    p != NULL ? http_role_name(p->role) : "-", "what", what, "id", id, "ms", ms,
	    "before", b, "after", a };

	snprintf(ms, sizeof(ms), "%lld", (long long)clock_now_ms());
	if (b == NULL || a == NULL || w == NULL) {
		log_errorx("event=audit_failed what=%s err=\"out of memory\"", what);
		free(w);
	} else if (rconn_argv(cmd, on_added, w, 0, 20, argv, NULL) < 0) {
		log_errorx("event=audit_failed what=%s err=\"redis not connected\"", what);
		free(w);
	}
	free(b);
	free(a);
}

/* ---- GET /v1/audit ---- */

struct audit_op {
	struct http_wait w;             /* first: w.r is NULL once detached */
	long limit;
};

/* A stored value as JSON: parsed when it is JSON, else kept as a string. */
static cJSON *
value_json(const struct redisReply *v)
{
	cJSON *j = cJSON_ParseWithLength(v->str, v->len);

	return j != NULL ? j : cJSON_CreateString(v->str);
}

static void
on_range(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct audit_op *op = arg;
	struct http_req *r = op->w.r;
	cJSON *j, *arr, *e;
	const char *last = NULL;
	size_t i, k;

	(void)rc;
	http_wait_remove(&op->w);
	if (r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_errorx("event=audit_read_failed err=\"%.200s\"", reply->str);
		http_error(r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	if ((j = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(j, "entries")) == NULL)
		goto oom;
	for (i = 0; i < reply->elements; i++) {
		const struct redisReply *en = reply->element[i], *f;

		if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
		    en->element[0]->type != REDIS_REPLY_STRING ||
		    en->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		if ((e = cJSON_CreateObject()) == NULL)
			goto oom;
		cJSON_AddItemToArray(arr, e);
		last = en->element[0]->str;
		cJSON_AddStringToObject(e, "entry", last);
		f = en->element[1];
		for (k = 0; k + 1 < f->elements; k += 2) {
			const struct redisReply *n = f->element[k], *v = f->element[k + 1];

			if (n->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(n->str, "before") == 0 || strcmp(n->str, "after") == 0)
				cJSON_AddItemToObject(e, n->str, value_json(v));
			else if (strcmp(n->str, "ms") == 0)
				cJSON_AddNumberToObject(e, "ms", strtod(v->str, NULL));
			else
				cJSON_AddStringToObject(e, n->str, v->str);
		}
	}
	if (last != NULL && (long)reply->elements == op->limit)
		cJSON_AddStringToObject(j, "next_before", last);
	else
		cJSON_AddNullToObject(j, "next_before");
	http_reply_json(r, 200, j);
	goto out;
oom:
	cJSON_Delete(j);
	http_error(r, 500, NULL, "out of memory");
out:
	free(op);
}

/* 1 when s is a stream entry id: digits '-' digits. */
static int
entry_id_ok(const char *s)
{
	size_t a = strspn(s, "0123456789"), b;

	if (a == 0 || a > 20 || s[a] != '-')
		return 0;
	b = strspn(s + a + 1, "0123456789");
	return b > 0 && b <= 20 && s[a + 1 + b] == '\0';
}

void
audit_query(const struct app *app, struct http_wait **waits, struct http_req *r)
{
	const char *ls = http_query(r, "limit"), *before = http_query(r, "before");
	char start[48], count[24], *end = NULL;
	const char *argv[6];
	struct audit_op *op;
	long limit = AUDIT_LIMIT_DEFAULT;

	if (ls != NULL) {
		errno = 0;
		limit = strtol(ls, &end, 10);
		if (errno != 0 || end == ls || *end != '\0' || limit < 1 ||
		    limit > AUDIT_LIMIT_MAX) {
			http_error(r, 400, "limit", "limit is a number from 1 to %d",
			    AUDIT_LIMIT_MAX);
			return;
		}
	}
	if (before != NULL && !entry_id_ok(before)) {
		http_error(r, 400, "before", "before is an entry id (\"1733370000000-0\")"
		    " from a previous answer's next_before");
		return;
	}
	snprintf(start, sizeof(start), "%s%s", before != NULL ? "(" : "",
	    before != NULL ? before : "+");
	snprintf(count, sizeof(count), "%ld", limit);
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->limit = limit;
	argv[0] = "XREVRANGE";
	argv[1] = AUDIT_KEY;
	argv[2] = start;
	argv[3] = "-";
	argv[4] = "COUNT";
	argv[5] = count;
	http_wait_add(waits, &op->w, r);
	if (rconn_argv(app->cmd, on_range, op, 0, 6, argv, NULL) < 0) {
		http_wait_remove(&op->w);
		free(op);
		http_error(r, 503, NULL, "storage unavailable; try again");
	}
}
