/*
 * admin_series.c: GET /v1/deals/<id>/series, a deal's sends, deliveries, clicks and
 * redemptions per minute for the console's line chart (stage: report; docs/api.md).
 * The counts are written by the scripts that already run for each event (record.lua,
 * hook_status.lua, click.lua, convert.lua, through lib/series.lua) into series:<id>
 * of the pushes' shard; one read-only script (deal_series.lua) sums the shards over
 * the range asked. It only reads; it must never write.
 */
#include <errno.h>
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
#include "keys.h"
#include "model.h"
#include "scripts.h"

#define SERIES_STEP_S 60
#define SERIES_SPAN_MAX 1440          /* minutes one answer covers at most: a day */
#define SERIES_SPAN_DEFAULT 360       /* minutes up to `to` when `from` is absent */

/* ORDER SERIES_METRICS: deal_series.lua's answer. */
static const char *const series_metrics[] = { "sent", "delivered", "clicked",
    "redeemed" };
#define SERIES_NMETRICS (sizeof(series_metrics) / sizeof(series_metrics[0]))

struct series_op {
	struct http_wait w;             /* first: in the module's list */
	char id[MODEL_ID_MAX + 1];
	long long first, last;          /* minutes, epoch s / 60 */
};

/* Parses query parameter name as epoch seconds into *out (left alone when absent).
 * Returns 0, or -1 after answering 400 naming it. */
static int
series_param(struct http_req *r, const char *name, long long *out)
{
	const char *v = http_query(r, name);
	char *end;
	long long n;

	if (v == NULL)
		return 0;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || n < 0 || n > 253402300799LL) {
		http_error(r, 400, name, "%s: not epoch seconds (a whole number from 0)",
		    name);
		return -1;
	}
	*out = n;
	return 0;
}

static void
on_series(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct series_op *op = arg;
	struct http_req *r = op->w.r;
	long long n = op->last - op->first + 1, i;
	cJSON *j = NULL, *s, *a;
	size_t m;

	(void)rc;
	http_wait_remove(&op->w);
	if (r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 1 + SERIES_NMETRICS * (size_t)n) {
		http_error(r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	for (i = 0; i < (long long)reply->elements; i++)
		if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
			http_error(r, 503, NULL, "storage unavailable; try again");
			goto out;
		}
	if (reply->element[0]->integer == 0) {
		http_error(r, 404, "path", "no such deal: %s", op->id);
		goto out;
	}
	if ((j = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(j, "deal", op->id) == NULL ||
	    cJSON_AddNumberToObject(j, "from", (double)(op->first * SERIES_STEP_S)) == NULL ||
	    cJSON_AddNumberToObject(j, "to", (double)(op->last * SERIES_STEP_S)) == NULL ||
	    cJSON_AddNumberToObject(j, "step_s", SERIES_STEP_S) == NULL ||
	    (s = cJSON_AddObjectToObject(j, "series")) == NULL)
		goto oom;
	for (m = 0; m < SERIES_NMETRICS; m++) {
		if ((a = cJSON_AddArrayToObject(s, series_metrics[m])) == NULL)
			goto oom;
		for (i = 0; i < n; i++) {
			cJSON *v = cJSON_CreateNumber(
			    (double)reply->element[1 + (long long)m * n + i]->integer);

			if (v == NULL)
				goto oom;
			cJSON_AddItemToArray(a, v);
		}
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
admin_deal_series(const struct app *app, struct http_wait **ops, struct http_req *r,
    const char *id, size_t idlen)
{
	uint32_t k, nshards = keys_shards();
	long long to = (long long)clock_now(), from = -1;
	char k1[MODEL_ID_MAX + KEYS_SHARD_MAX], a1[24], a2[24];
	char (*sk)[MODEL_ID_MAX + 2 * KEYS_SHARD_MAX] = NULL;
	const char **args = NULL;
	struct series_op *op = NULL;

	if (idlen > MODEL_ID_MAX) {
		http_error(r, 400, "path", "not a deal id: 1 to %d printable characters, no "
		    "space", MODEL_ID_MAX);
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL)
		goto oom;
	memcpy(op->id, id, idlen);
	op->id[idlen] = '\0';
	if (!deal_id_is_valid(op->id)) {
		http_error(r, 400, "path", "not a deal id: 1 to %d printable characters, no "
		    "space", MODEL_ID_MAX);
		goto done;
	}
	if (series_param(r, "to", &to) < 0 || series_param(r, "from", &from) < 0)
		goto done;
	op->last = to / SERIES_STEP_S;
	op->first = from < 0 ? op->last - (SERIES_SPAN_DEFAULT - 1) : from / SERIES_STEP_S;
	if (op->first > op->last) {
		http_error(r, 400, "from", "from: after to (%lld > %lld)", from, to);
		goto done;
	}
	if (op->last - op->first + 1 > SERIES_SPAN_MAX) {
		http_error(r, 400, "from", "from: the range is over %d minutes (%lld)",
		    SERIES_SPAN_MAX, op->last - op->first + 1);
		goto done;
	}
	args = calloc(3 + nshards, sizeof(*args));
	sk = calloc(nshards, sizeof(*sk));
	if (args == NULL || sk == NULL)
		goto oom;
	/* ORDER SERIES_KEYS: the header of deal_series.lua. */
	/* Shard 0's copy of the deal: every shard plans every deal. */
	if (keys_per(0, KEYS_DEAL, op->id, k1, sizeof(k1)) < 0)
		goto oom;
	args[0] = k1;
	for (k = 0; k < nshards; k++) {
		if (keys_per(k, KEYS_SERIES, op->id, sk[k], sizeof(sk[k])) < 0)
			sk[k][0] = '\0';
		args[1 + k] = sk[k];
	}
	snprintf(a1, sizeof(a1), "%lld", op->first);
	snprintf(a2, sizeof(a2), "%lld", op->last);
	args[1 + nshards] = a1;
	args[2 + nshards] = a2;
	http_wait_add(ops, &op->w, r);
	if (script_call_named(app->cmd, "deal_series", 1 + (int)nshards, 3 + (int)nshards,
	    args, NULL, on_series, op) < 0) {
		http_wait_remove(&op->w);
		http_error(r, 503, NULL, "storage unavailable; try again");
		goto done;
	}
	op = NULL;                      /* on_series frees it */
	goto done;
oom:
	http_error(r, 500, NULL, "out of memory");
done:
	free(op);
	free(args);
	free(sk);
}
