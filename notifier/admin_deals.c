/*
 * admin_deals.c: GET /v1/deals/<id>, a deal's state for its publisher (stage:
 * report). One script (deal_status.lua) reads what Redis already holds: the deal's
 * hash, its report, its latest dead letter and whether a held one was confirmed, its
 * planned payload and the global pause; the state is decided here, in one place
 * (docs/api.md, "GET /v1/deals/<id>"). It only reads; it must never write.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "admin_confirm.h"
#include "admin_deals.h"
#include "admin_int.h"
#include "app.h"
#include "clock.h"
#include "deal.h"
#include "http.h"
#include "keys.h"
#include "pause.h"
#include "rconn.h"
#include "scripts.h"

struct deals_op {
	struct http_wait w;           /* first: in the module's list */
	char id[MODEL_ID_MAX + 1];
};

struct admin_deals {
	const struct app *app;
	struct http_wait *ops;
};

/* Report counters shown by name; every other number but these is a skip (a final
 * outcome that is not a send). */
static const char *const shown[] = {
	"planned", "admitted", "sent", "failed", "unknown", "delivered", "undelivered",
	"delivery_failed", "clicked", "redeemed", "revenue", NULL
};
static const char *const not_skips[] = {
	"sms_segments", "unattributed", "unattributed_revenue", "filtered", "redelivery",
	"holdout_audience", "holdout_redeemed", "holdout_revenue", "treated_audience", NULL
};

static void
op_free(struct deals_op *op)
{
	http_wait_remove(&op->w);
	free(op);
}

static int
in_list(const char *const *l, const char *s)
{
	for (; *l != NULL; l++)
		if (strcmp(*l, s) == 0)
			return 1;
	return 0;
}

/* Field name of a flat hash reply, or NULL. */
static const char *
hget(const redisReply *h, const char *name)
{
	size_t i;

	for (i = 0; h != NULL && i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(h->element[i]->str, name) == 0)
			return h->element[i + 1]->str;
	return NULL;
}

/* A finite number from s, or NAN. */
static double
num(const char *s)
{
	char *end;
	double x;

	if (s == NULL || *s == '\0')
		return NAN;
	errno = 0;
	x = strtod(s, &end);
	return errno != 0 || *end != '\0' || !isfinite(x) ? NAN : x;
}

static double
num0(const char *s)
{
	double x = num(s);

	return isnan(x) ? 0 : x;
}

/* "expires_at" of a deal payload (JSON), or 0. */
static long long
payload_expiry(const char *p)
{
	cJSON *j = p != NULL && *p != '\0' ? cJSON_Parse(p) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "expires_at");
	long long t = cJSON_IsNumber(e) && e->valuedouble > 0 ? (long long)e->valuedouble : 0;

	cJSON_Delete(j);
	return t;
}

/* The counts of report h into j: the shown counters, "skipped" and *finals (sent,
 * failed, unknown and every skip: pushes that reached a final outcome). */
static void
add_counts(cJSON *j, const redisReply *h, const redisReply *deal, double *finals)
{
	cJSON *c = cJSON_AddObjectToObject(j, "counts"), *sk;
	size_t i;

	*finals = num0(hget(h, "sent")) + num0(hget(h, "failed")) + num0(hget(h, "unknown"));
	for (i = 0; shown[i] != NULL; i++)
		cJSON_AddNumberToObject(c, shown[i], num0(hget(h, shown[i])));
	cJSON_AddNumberToObject(c, "recipients", num0(hget(deal, "recipients")));
	sk = cJSON_AddObjectToObject(c, "skipped");
	for (i = 0; h != NULL && i + 1 < h->elements; i += 2) {
		const char *k = h->element[i]->str;
		double x;

		if (h->element[i]->type != REDIS_REPLY_STRING ||
		    h->element[i + 1]->type != REDIS_REPLY_STRING || in_list(shown, k) ||
		    in_list(not_skips, k) || strncmp(k, "error:", 6) == 0 ||
		    isnan(x = num(h->element[i + 1]->str)))
			continue;
		cJSON_AddNumberToObject(sk, k, x);
		*finals += x;
	}
}

/*
 * The state, in this order: cancelled; only a dead letter: waiting_confirmation (held
 * by the guards, not confirmed), queued (confirmed, not planned yet) or dead_lettered;
 * expired; planning (not every slice planned); paused (the global pause); planned
 * (nothing admitted or final yet); done (every recipient has a final outcome);
 * sending.
 */
static const char *
deal_state(const redisReply *deal, const redisReply *dead, const char *confirmed,
    const redisReply *pause, long long expires, double finals, const redisReply *rep)
{
	int held = dead->elements > 0 && hget(dead, "reason") != NULL &&
	    strcmp(hget(dead, "reason"), "held") == 0;

	if (hget(deal, "cancelled") != NULL)
		return "cancelled";
	if (deal->elements == 0)
		return held ? (*confirmed == '\0' ? "waiting_confirmation" : "queued") :
		    "dead_lettered";
	if (expires > 0 && clock_now() >= expires)
		return "expired";
	if (hget(deal, "planned") == NULL)
		return "planning";
	if (hget(pause, "state") != NULL && strcmp(hget(pause, "state"), "paused") == 0)
		return "paused";
	if (num0(hget(rep, "admitted")) == 0 && finals == 0)
		return num0(hget(deal, "recipients")) == 0 ? "done" : "planned";
	if (finals >= num0(hget(deal, "recipients")))
		return "done";
	return "sending";
}

static void
on_status(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct deals_op *op = arg;
	const redisReply *deal, *rep, *dead, *pause;
	const char *confirmed, *payload, *st;
	long long expires;
	double finals = 0;
	size_t i;
	cJSON *j;

	(void)rc;
	if (op->w.r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 7) {
		http_error(op->w.r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	for (i = 0; i < 7; i++)
		if (reply->element[i]->type != ((i == 3 || i == 4) ? REDIS_REPLY_STRING :
		    REDIS_REPLY_ARRAY)) {
			http_error(op->w.r, 500, NULL, "unexpected answer");
			goto out;
		}
	deal = reply->element[0];
	rep = reply->element[1];
	dead = reply->element[2];
	confirmed = reply->element[3]->str;
	payload = reply->element[4]->str;
	pause = reply->element[5];
	if (deal->elements == 0 && dead->elements == 0) {
		http_error(op->w.r, 404, "path", "no deal '%s' is known (never published, or"
		    " its records have expired)", op->id);
		goto out;
	}
	expires = (long long)num0(hget(deal, "exp"));
	if (expires <= 0)
		expires = payload_expiry(payload);
	if (expires <= 0)
		expires = payload_expiry(hget(dead, "deal"));
	if ((j = cJSON_CreateObject()) == NULL) {
		http_error(op->w.r, 500, NULL, "out of memory");
		goto out;
	}
	add_counts(j, rep, deal, &finals);
	st = deal_state(deal, dead, confirmed, pause, expires, finals, rep);
	cJSON_AddStringToObject(j, "deal", op->id);
	cJSON_AddStringToObject(j, "state", st);
	if (expires > 0)
		cJSON_AddNumberToObject(j, "expires_at", (double)expires);
	else
		cJSON_AddNullToObject(j, "expires_at");
	if (hget(deal, "cancelled") != NULL)
		cJSON_AddNumberToObject(j, "cancelled_at", num0(hget(deal, "cancelled")));
	if (hget(deal, "sold_out") != NULL)
		cJSON_AddBoolToObject(j, "sold_out", 1);
	if (hget(deal, "entry") != NULL)
		cJSON_AddStringToObject(j, "entry", hget(deal, "entry"));
	if (strcmp(st, "paused") == 0 && hget(pause, "reason") != NULL)
		cJSON_AddStringToObject(j, "pause_reason", hget(pause, "reason"));
	if (dead->elements > 0) {
		cJSON *d = cJSON_AddObjectToObject(j, "dead_letter");
		static const char *const f[] = { "dead_entry", "reason", "field", "error",
		    "entry" };

		for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			if (hget(dead, f[i]) != NULL)
				cJSON_AddStringToObject(d, i == 0 ? "id" : i == 4 ? "deal_entry" :
				    f[i], hget(dead, f[i]));
		if (*confirmed != '\0')
			cJSON_AddStringToObject(d, "confirmed_as", confirmed);
	}
	{
		cJSON *ab = admin_ab_json(rep), *t;

		admin_ab_state(ab, reply->element[6]);
		/* A rest still held is yet to be sent: the deal is not done. */
		cJSON_ArrayForEach(t, ab)
			if (strcmp(st, "done") == 0 && cJSON_GetNumberValue(
			    cJSON_GetObjectItemCaseSensitive(t, "held")) > cJSON_GetNumberValue(
			    cJSON_GetObjectItemCaseSensitive(t, "released")))
				cJSON_ReplaceItemInObjectCaseSensitive(j, "state",
				    cJSON_CreateString("sending"));
		if (ab != NULL)
			cJSON_AddItemToObject(j, "ab_tests", ab);
		else
			cJSON_AddNullToObject(j, "ab_tests");
	}
	http_reply_json(op->w.r, 200, j);
out:
	op->w.r = NULL;
	op_free(op);
}

/* GET /v1/deals/<id>; GET /v1/deals is the list (admin_deallist.c) */
static void
on_deal(struct http_req *r, void *arg)
{
	struct admin_deals *ad = arg;
	const char *id = http_req_rest(r);
	const char **args;
	char (*rk)[MODEL_ID_MAX + 2 * KEYS_SHARD_MAX];
	char abk[KEYS_MAX];
	uint32_t k, nshards = keys_shards();
	struct deals_op *op;
	int rc;

	if (strcmp(http_req_path(r), "/v1/deals") == 0) {
		admin_deal_list(ad->app, &ad->ops, r);
		return;
	}
	/* "<id>/series": the counts per minute (a deal id never ends so: see docs/api.md) */
	if (strlen(id) > 7 && strcmp(id + strlen(id) - 7, "/series") == 0) {
		admin_deal_series(ad->app, &ad->ops, r, id, strlen(id) - 7);
		return;
	}

	if (!deal_id_is_valid(id)) {
		http_error(r, 400, "path", "not a deal id: 1 to %d printable characters, no "
		    "space", MODEL_ID_MAX);
		return;
	}
	op = calloc(1, sizeof(*op));
	args = calloc(9 + 2 * nshards, sizeof(*args));
	rk = calloc(2 * nshards, sizeof(*rk));
	if (op == NULL || args == NULL || rk == NULL) {
		free(op);
		free(args);
		free(rk);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->id, sizeof(op->id), "%s", id);
	/* The report and the deal's copy of every shard (one in the single-instance
	 * layout): summed by deal_status.lua. */
	for (k = 0; k < nshards; k++)
		if (keys_per(k, KEYS_REPORT_DEAL, id, rk[k], sizeof(rk[k])) < 0 ||
		    keys_per(k, KEYS_DEAL, id, rk[nshards + k], sizeof(rk[0])) < 0)
			rk[k][0] = rk[nshards + k][0] = '\0';
	http_wait_add(&ad->ops, &op->w, r);
	/* ORDER STATUS_KEYS: the header of deal_status.lua. */
	args[0] = rk[nshards];
	args[1] = rk[0];
	args[2] = keys_global(KEYS_G_DEALS_DEAD);
	args[3] = keys_global(KEYS_G_DEALS_CONFIRMED);
	args[4] = "deals";
	args[5] = PAUSE_KEY;
	if (keys_ab(KEYS_AB_TEST, id, "", abk, sizeof(abk)) < 0)
		abk[0] = '\0';
	args[6] = abk;
	for (k = 1; k < nshards; k++) {
		args[6 + k] = rk[k];
		args[5 + nshards + k] = rk[nshards + k];
	}
	args[5 + 2 * nshards] = op->id;
	args[6 + 2 * nshards] = CONFIRM_SCAN_MAX;
	rc = script_call_named(ad->app->cmd, "deal_status", 5 + 2 * (int)nshards,
	    7 + 2 * (int)nshards, args, NULL, on_status, op);
	free(args);
	free(rk);
	if (rc < 0) {
		http_error(r, 503, NULL, "storage unavailable; try again");
		op->w.r = NULL;
		op_free(op);
	}
}

struct admin_deals *
admin_deals_new(const struct app *app)
{
	struct admin_deals *ad = calloc(1, sizeof(*ad));

	if (ad == NULL)
		return NULL;
	ad->app = app;
	if (app->http != NULL && http_route(app->http, EVHTTP_REQ_GET, "/v1/deals",
	    HTTP_ROLE_VIEWER, on_deal, ad, 0) < 0) {
		free(ad);
		return NULL;
	}
	return ad;
}

void
admin_deals_free(struct admin_deals *ad)
{
	if (ad == NULL)
		return;
	http_wait_detach_all(&ad->ops);   /* their callbacks only free them */
	free(ad);
}
