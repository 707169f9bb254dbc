/*
 * admin_publish.c: POST /v1/deals, a deal published through the API (stage: http;
 * docs/api.md). The body is checked by the deal parser ingest uses, so what the API
 * accepts ingest accepts, and is put on the `deals` stream as it was sent (field
 * `deal`), as `dealpushctl publish` and the services do. A test send is a deal with
 * `test_to`; a scheduled one has `starts_at`. Nothing is written when the deal is
 * refused; a Redis failure answers 503 with nothing written either (XADD is one step).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "admin_confirm.h"
#include "app.h"
#include "audit.h"
#include "clock.h"
#include "deal.h"
#include "formats.h"
#include "http.h"
#include "log.h"
#include "model.h"
#include "rconn.h"

struct publish_op {
	struct http_wait w;           /* first: in the module's list */
	struct rconn *cmd;            /* for the audit entry */
	char id[MODEL_ID_MAX + 1];
	char *deal;                   /* the deal as published, for the audit */
	int cancel;                   /* {"id", "cancel": true} */
};

static void
on_added(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct publish_op *op = arg;
	char path[MODEL_ID_MAX + 16];
	cJSON *j;

	(void)rc;
	if (op->w.r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
		http_error(op->w.r, 503, NULL, "storage unavailable; nothing published; try "
		    "again");
		goto out;
	}
	if ((j = cJSON_CreateObject()) == NULL) {
		http_error(op->w.r, 500, NULL, "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/deals/%s", op->id);
	cJSON_AddStringToObject(j, "deal", op->id);
	cJSON_AddStringToObject(j, "entry", reply->str);
	cJSON_AddStringToObject(j, "status", path);
	if (op->cancel)
		cJSON_AddBoolToObject(j, "cancel", 1);
	log_info("event=deal_published_api deal=%s entry=%s cancel=%d", op->id, reply->str,
	    op->cancel);
	audit_record(op->cmd, http_req_principal(op->w.r), op->cancel ? "deals.cancel" :
	    "deals.publish", op->id, NULL, op->deal);
	http_reply_json(op->w.r, 201, j);
out:
	op->w.r = NULL;
	http_wait_remove(&op->w);
	free(op->deal);
	free(op);
}

void
admin_publish(const struct app *app, struct http_wait **ops, struct http_req *r)
{
	const char *argv[7];
	size_t argvlen[7], len;
	int argc = 5;
	const char *body = http_body(r, &len);
	struct publish_op *op;
	struct deal *d;
	struct err e;

	err_clear(&e);
	if ((d = deal_parse(body, len, clock_now(), &e)) == NULL) {
		http_error_input(r, &e);
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		deal_free(d);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->id, sizeof(op->id), "%s", d->id);
	op->cancel = d->cancel;
	deal_free(d);
	op->cmd = app->cmd;
	op->deal = strndup(body, len);      /* NULL (out of memory): audited as null */
	http_wait_add(ops, &op->w, r);
	argv[0] = "XADD";
	argv[1] = "deals";
	argv[2] = "*";
	argv[3] = "deal";
	argv[4] = body;
	argvlen[0] = 4;
	argvlen[1] = 5;
	argvlen[2] = 1;
	argvlen[3] = 4;
	argvlen[4] = len;
	if (formats_entry_fields(&argv[5], &argv[6]) == 2) {
		argvlen[5] = strlen(argv[5]);
		argvlen[6] = strlen(argv[6]);
		argc = 7;
	}
	if (rconn_argv(app->cmd, on_added, op, 0, argc, argv, argvlen) < 0) {
		http_error(r, 503, NULL, "storage unavailable; nothing published; try again");
		op->w.r = NULL;
		http_wait_remove(&op->w);
		free(op->deal);
		free(op);
	}
}
