/*
 * admin_confirm.c: POST /v1/deals/<id>/confirm (stage: http); POST /v1/deals itself
 * is admin_publish.c's. A deal whose audience
 * or cost was over the guards was dead-lettered with reason "held" and its payload;
 * deal_confirm.lua publishes that payload again with "confirmed": true, once. The
 * answer says the new entry, or that it was confirmed before, or 404.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "keys.h"
#include "audit.h"
#include "admin_confirm.h"
#include "app.h"
#include "deal.h"
#include "http.h"
#include "log.h"
#include "rconn.h"
#include "scripts.h"

struct confirm_op {
	struct http_wait w;           /* first: in the module's list */
	struct rconn *cmd;            /* for the audit entry */
	char id[MODEL_ID_MAX + 1];
};

struct admin_confirm {
	const struct app *app;
	struct http_wait *ops;
};

static void
op_free(struct confirm_op *op)
{
	http_wait_remove(&op->w);
	free(op);
}

static void
on_confirmed(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct confirm_op *op = arg;
	const char *what;
	cJSON *j;

	(void)rc;
	if (op->w.r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_STRING) {
		http_error(op->w.r, 503, NULL, "storage unavailable; nothing changed; try again");
		goto out;
	}
	what = reply->element[0]->str;
	if (strcmp(what, "none") == 0) {
		http_error(op->w.r, 404, "path", "no deal '%s' held by the guards", op->id);
		goto out;
	}
	if (strcmp(what, "bad_payload") == 0) {
		http_error(op->w.r, 422, "path", "the held deal '%s' cannot be marked confirmed "
		    "as stored; publish it again with \"confirmed\": true", op->id);
		goto out;
	}
	if (reply->elements < 2 || reply->element[1]->type != REDIS_REPLY_STRING ||
	    (j = cJSON_CreateObject()) == NULL) {
		http_error(op->w.r, 500, NULL, "unexpected answer");
		goto out;
	}
	cJSON_AddStringToObject(j, "deal", op->id);
	cJSON_AddBoolToObject(j, "confirmed", 1);
	cJSON_AddBoolToObject(j, "published_now", strcmp(what, "ok") == 0);
	cJSON_AddStringToObject(j, "entry", reply->element[1]->str);
	log_info("event=deal_confirmed deal=%s entry=%s first=%d", op->id,
	    reply->element[1]->str, strcmp(what, "ok") == 0);
	audit_record(op->cmd, http_req_principal(op->w.r), "deals.confirm",
	    op->id, NULL, strcmp(what, "ok") == 0 ? "{\"published\":true}" :
	    "{\"published\":false}");
	http_reply_json(op->w.r, strcmp(what, "ok") == 0 ? 201 : 200, j);
out:
	op->w.r = NULL;
	op_free(op);
}

/* POST /v1/deals/<id>/confirm */
static void
on_confirm(struct http_req *r, void *arg)
{
	struct admin_confirm *ac = arg;
	const char *rest = http_req_rest(r), *slash = strrchr(rest, '/');
	const char *args[5];
	struct confirm_op *op;
	size_t n;

	if (rest[0] == '\0') {
		admin_publish(ac->app, &ac->ops, r);
		return;
	}
	if (slash == NULL || strcmp(slash, "/confirm") != 0) {
		http_error(r, 404, "path", "POST /v1/deals/<id>/confirm confirms a held deal");
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->cmd = ac->app->cmd;
	n = (size_t)(slash - rest);
	if (n == 0 || n > MODEL_ID_MAX) {
		http_error(r, 400, "path", "not a deal id");
		free(op);
		return;
	}
	memcpy(op->id, rest, n);
	if (!deal_id_is_valid(op->id)) {
		http_error(r, 400, "path", "not a deal id: 1 to %d printable characters, no "
		    "space", MODEL_ID_MAX);
		free(op);
		return;
	}
	http_wait_add(&ac->ops, &op->w, r);
	/* ORDER CONFIRM_KEYS: the header of deal_confirm.lua. */
	args[0] = keys_global(KEYS_G_DEALS_DEAD);
	args[1] = "deals";
	args[2] = keys_global(KEYS_G_DEALS_CONFIRMED);
	args[3] = op->id;
	args[4] = CONFIRM_SCAN_MAX;
	if (script_call_named(ac->app->cmd, "deal_confirm", 3, 5, args, NULL, on_confirmed,
	    op) < 0) {
		http_error(r, 503, NULL, "storage unavailable; nothing changed; try again");
		op_free(op);
	}
}

struct admin_confirm *
admin_confirm_new(const struct app *app)
{
	struct admin_confirm *ac = calloc(1, sizeof(*ac));

	if (ac == NULL)
		return NULL;
	ac->app = app;
	if (app->http != NULL && http_route(app->http, EVHTTP_REQ_POST, "/v1/deals",
	    HTTP_ROLE_MARKETER, on_confirm, ac, 0) < 0) {
		free(ac);
		return NULL;
	}
	return ac;
}

void
admin_confirm_free(struct admin_confirm *ac)
{
	if (ac == NULL)
		return;
	http_wait_detach_all(&ac->ops);   /* their callbacks only free them */
	free(ac);
}
