/*
 * admin_deallist.c: GET /v1/deals, the deals that are on now (stage: http;
 * docs/api.md): the newest entries of the `deals` stream (at most DEALLIST_SCAN), each
 * parsed as ingest parses it; a deal is listed once, as its newest entry says, while
 * it has not expired and was not cancelled (a later cancel entry hides it). For the
 * console's Live page, which then reads each one's counts (GET /v1/deals/<id>). One
 * XREVRANGE; never blocks the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "admin_deals.h"
#include "app.h"
#include "clock.h"
#include "deal.h"
#include "http.h"
#include "model.h"
#include "rconn.h"
#include "redisutil.h"

#define DEALLIST_SCAN "1000"          /* newest entries of deals looked at */
#define DEALLIST_MAX 100              /* deals listed */

struct list_op {
	struct http_wait w;             /* first: in the module's list */
	int payload;                    /* ?payload=1: each deal's document as published */
};

/* The payload (field "deal") of a deals entry and its length, or NULL. */
static const char *
payload_of(const redisReply *e, size_t *len)
{
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		return NULL;
	return ru_field(e->element[1], "deal", len);
}

static void
on_list(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct list_op *op = arg;
	struct http_req *r = op->w.r;
	int with_payload = op->payload;
	char seen[DEALLIST_MAX * 2][MODEL_ID_MAX + 1];
	size_t nseen = 0, i, k, n = 0;
	int64_t now = clock_now();
	cJSON *j = NULL, *arr;

	(void)rc;
	http_wait_remove(&op->w);
	free(op);
	if (r == NULL)
		return;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		http_error(r, 503, NULL, "storage unavailable; try again");
		return;
	}
	/* The notifier's clock, which expires_at is on (it may be moved: docs/operations.md
	 * notifier.clock_offset_s), for a countdown in the browser. */
	if ((j = cJSON_CreateObject()) == NULL ||
	    cJSON_AddNumberToObject(j, "now", (double)now) == NULL ||
	    (arr = cJSON_AddArrayToObject(j, "deals")) == NULL)
		goto oom;
	for (i = 0; i < reply->elements && n < DEALLIST_MAX; i++) {
		size_t plen = 0;
		const char *p = payload_of(reply->element[i], &plen);
		struct deal *d;
		struct err e;
		cJSON *o;
		int dup = 0;

		/* An expired deal does not parse: left out (its id is no longer on). */
		if (p == NULL || (d = deal_parse(p, plen, now, &e)) == NULL)
			continue;
		for (k = 0; k < nseen && !dup; k++)
			dup = strcmp(seen[k], d->id) == 0;
		if (!dup && nseen < sizeof(seen) / sizeof(seen[0]))
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", d->id);
		/* The newest entry of an id decides; a cancel hides the deal. */
		if (dup || d->cancel || d->expires_at <= now) {
			deal_free(d);
			continue;
		}
		if ((o = cJSON_CreateObject()) == NULL) {
			deal_free(d);
			goto oom;
		}
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "deal", d->id);
		cJSON_AddStringToObject(o, "title", d->title != NULL ? d->title : "");
		cJSON_AddNumberToObject(o, "expires_at", (double)d->expires_at);
		if (d->starts_at > 0)
			cJSON_AddNumberToObject(o, "starts_at", (double)d->starts_at);
		if (d->campaign != NULL)
			cJSON_AddStringToObject(o, "campaign", d->campaign);
		cJSON_AddStringToObject(o, "entry", reply->element[i]->element[0]->str);
		/* For simulating a draft against a recent deal (the console's editor). */
		if (with_payload)
			cJSON_AddItemToObject(o, "payload", cJSON_ParseWithLength(p, plen));
		deal_free(d);
		n++;
	}
	http_reply_json(r, 200, j);
	return;
oom:
	cJSON_Delete(j);
	http_error(r, 500, NULL, "out of memory");
}

void
admin_deal_list(const struct app *app, struct http_wait **ops, struct http_req *r)
{
	const char *argv[6] = { "XREVRANGE", "deals", "+", "-", "COUNT", DEALLIST_SCAN };
	const char *payload = http_query(r, "payload");
	struct list_op *op;

	if (payload != NULL && strcmp(payload, "1") != 0) {
		http_error(r, 400, "payload", "payload: 1 adds each deal's document; nothing "
		    "else is allowed");
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->payload = payload != NULL;
	http_wait_add(ops, &op->w, r);
	if (rconn_argv(app->cmd, on_list, op, 0, 6, argv, NULL) < 0) {
		http_wait_remove(&op->w);
		free(op);
		http_error(r, 503, NULL, "storage unavailable; try again");
	}
}
