/*
 * audit.c: the audit stream (stage: http): entries for changes that are not made by
 * a script on a global key, the size bound of a before/after value, and the read of
 * GET /v1/audit (include/audit.h). It never blocks the loop and never records a
 * credential: callers pass what they changed, never a token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "audit.h"
#include "clock.h"
#include "formats.h"
#include "http.h"
#include "log.h"
#include "rconn.h"
#include "streampage.h"

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
	const char *argv[22] = { "XADD", AUDIT_KEY, "MAXLEN", "~", AUDIT_MAXLEN, "*",
	    "who", p != NULL ? p->name : "-", "role",
	    p != NULL ? http_role_name(p->role) : "-", "what", what, "id", id, "ms", ms,
	    "before", b, "after", a };
	int argc = 20;

	snprintf(ms, sizeof(ms), "%lld", (long long)clock_now_ms());
	argc += formats_entry_fields(&argv[20], &argv[21]);
	if (b == NULL || a == NULL || w == NULL) {
		log_errorx("event=audit_failed what=%s err=\"out of memory\"", what);
		free(w);
	} else if (rconn_argv(cmd, on_added, w, 0, argc, argv, NULL) < 0) {
		log_errorx("event=audit_failed what=%s err=\"redis not connected\"", what);
		free(w);
	}
	free(b);
	free(a);
}

/* ---- GET /v1/audit ---- */

/* before and after as JSON (parsed when they are), ms as a number. */
static int
audit_field(cJSON *e, const char *name, const struct redisReply *v)
{
	cJSON *j;

	if (strcmp(name, "before") == 0 || strcmp(name, "after") == 0) {
		j = cJSON_ParseWithLength(v->str, v->len);
		cJSON_AddItemToObject(e, name, j != NULL ? j : cJSON_CreateString(v->str));
		return 1;
	}
	if (strcmp(name, "ms") == 0) {
		cJSON_AddNumberToObject(e, "ms", strtod(v->str, NULL));
		return 1;
	}
	return 0;
}

void
audit_query(const struct app *app, struct http_wait **waits, struct http_req *r)
{
	stream_page(app, waits, r, AUDIT_KEY, AUDIT_LIMIT_DEFAULT, AUDIT_LIMIT_MAX,
	    audit_field);
}
