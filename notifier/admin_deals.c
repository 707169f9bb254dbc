/*
 * admin_deals.c: GET /v1/deals/<id>, a deal's state for its publisher (stage:
 * report). It reads what Redis already holds, each read on one slot: every shard's
 * copy of the deal and its report (merged here: the copies into one hash, the
 * reports summed), the global pause and the deal's A/B tests, then one script
 * (deal_status.lua, on the slot of deals) for its latest dead letter, whether a held
 * one was confirmed, and its planned payload; the state is decided here, in one
 * place (docs/api.md, "GET /v1/deals/<id>"). It only reads; it must never write.
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
#include "durable.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "pause.h"
#include "rconn.h"
#include "scripts.h"

struct deals_op {
	struct http_wait w;           /* first: in the module's list */
	char id[MODEL_ID_MAX + 1];
	const struct app *app;
	uint32_t nshards;
	size_t pending;               /* replies still to come */
	int failed;                   /* a read failed: 503 once all are in */
	redisReply **part;            /* copies [0, S), reports [S, 2S), pause, A/B */
	redisReply *deal, *report;    /* merged (flat hashes built here) */
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
	size_t i;

	http_wait_remove(&op->w);
	for (i = 0; op->part != NULL && i < 2 * (size_t)op->nshards + 2; i++)
		freeReplyObject(op->part[i]);
	free(op->part);
	freeReplyObject(op->deal);
	freeReplyObject(op->report);
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

/* ---- flat hashes built here, freed with freeReplyObject ---- */

static redisReply *
flat_new(size_t cap)
{
	redisReply *a = calloc(1, sizeof(*a));

	if (a == NULL || (a->element = calloc(cap > 0 ? cap : 1, sizeof(*a->element))) ==
	    NULL) {
		free(a);
		return NULL;
	}
	a->type = REDIS_REPLY_ARRAY;
	return a;
}

static int
flat_str(redisReply *a, const char *s)
{
	redisReply *e = calloc(1, sizeof(*e));

	if (e == NULL || (e->str = strdup(s)) == NULL) {
		free(e);
		return -1;
	}
	e->type = REDIS_REPLY_STRING;
	e->len = strlen(s);
	a->element[a->elements++] = e;
	return 0;
}

/* The field names of the flat hashes parts[0, n) in the order first seen, once. */
static const char **
flat_fields(redisReply *const *parts, size_t n, size_t *count)
{
	size_t cap = 0, i, k, m = 0;
	const char **f;

	for (k = 0; k < n; k++)
		cap += parts[k] != NULL ? parts[k]->elements / 2 : 0;
	if ((f = calloc(cap > 0 ? cap : 1, sizeof(*f))) == NULL)
		return NULL;
	for (k = 0; k < n; k++)
		for (i = 0; parts[k] != NULL && i + 1 < parts[k]->elements; i += 2) {
			const char *name = parts[k]->element[i]->str;
			size_t j;

			if (parts[k]->element[i]->type != REDIS_REPLY_STRING ||
			    parts[k]->element[i + 1]->type != REDIS_REPLY_STRING)
				continue;
			for (j = 0; j < m && strcmp(f[j], name) != 0; j++)
				;
			if (j == m)
				f[m++] = name;
		}
	*count = m;
	return f;
}

/*
 * The shards' copies of the deal as one hash (docs/sharding.md 4a): "recipients",
 * "jobs" and "ab_released" summed, "planned" only once every shard has planned, any
 * other field the first shard's that has it ("cancelled" and "sold_out" then once
 * one has). One Redis: its hash as it is.
 */
static redisReply *
merge_deal(redisReply *const *copies, size_t n)
{
	static const char *const summed[] = { "recipients", "jobs", "ab_released", NULL };
	size_t nf, i, k;
	const char **f = flat_fields(copies, n, &nf);
	redisReply *out = f != NULL ? flat_new(2 * nf) : NULL;
	int planned = 1;

	for (k = 0; k < n; k++)
		planned = planned && hget(copies[k], "planned") != NULL;
	for (i = 0; out != NULL && i < nf; i++) {
		char v[32];
		const char *val = NULL;

		if (strcmp(f[i], "planned") == 0 && !planned)
			continue;
		if (in_list(summed, f[i])) {
			double sum = 0;

			for (k = 0; k < n; k++)
				sum += num0(hget(copies[k], f[i]));
			snprintf(v, sizeof(v), "%.0f", sum);
			val = v;
		} else {
			for (k = 0; k < n && val == NULL; k++)
				val = hget(copies[k], f[i]);
		}
		if (flat_str(out, f[i]) < 0 || flat_str(out, val) < 0) {
			freeReplyObject(out);
			out = NULL;
		}
	}
	free(f);
	return out;
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

/* deal_status.lua answered {dead letter, confirmed, payload}: the answer. */
static void
on_status(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct deals_op *op = arg;
	const redisReply *deal = op->deal, *rep = op->report, *dead, *pause;
	const char *confirmed, *payload, *st;
	long long expires;
	double finals = 0;
	size_t i;
	cJSON *j;

	(void)rc;
	if (op->w.r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
		log_warnx("event=deal_status_failed deal=%s err=\"%s\"", op->id,
		    reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "no reply");
		http_error(op->w.r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	for (i = 0; i < 3; i++)
		if (reply->element[i]->type != (i > 0 ? REDIS_REPLY_STRING :
		    REDIS_REPLY_ARRAY)) {
			http_error(op->w.r, 500, NULL, "unexpected answer");
			goto out;
		}
	dead = reply->element[0];
	confirmed = reply->element[1]->str;
	payload = reply->element[2]->str;
	pause = op->part[2 * op->nshards];
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

		admin_ab_state(ab, op->part[2 * op->nshards + 1]);
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

/* Every read is in: the copies merged, then deal_status.lua with the deal's entry. */
static void
status_script(struct deals_op *op)
{
	const char *args[6];

	if (op->w.r == NULL) {
		op_free(op);
		return;
	}
	if (op->failed)
		log_warnx("event=deal_status_failed deal=%s err=\"a read failed\"", op->id);
	if (op->failed || (op->deal = merge_deal(op->part, op->nshards)) == NULL ||
	    (op->report = admin_report_sum(op->part + op->nshards, op->nshards)) == NULL) {
		http_error(op->w.r, op->failed ? 503 : 500, NULL, op->failed ?
		    "storage unavailable; try again" : "out of memory");
		op->w.r = NULL;
		op_free(op);
		return;
	}
	/* ORDER STATUS_KEYS: the header of deal_status.lua. */
	args[0] = keys_global(KEYS_G_DEALS_DEAD);
	args[1] = keys_global(KEYS_G_DEALS_CONFIRMED);
	args[2] = "deals";
	args[3] = op->id;
	args[4] = CONFIRM_SCAN_MAX;
	args[5] = hget(op->deal, "entry") != NULL ? hget(op->deal, "entry") : "";
	if (script_call_named(op->app->cmd, "deal_status", 3, 6, args, NULL, on_status,
	    op) < 0) {
		http_error(op->w.r, 503, NULL, "storage unavailable; try again");
		op->w.r = NULL;
		op_free(op);
	}
}

/* One of the reads (HGETALL); arg: a slot of op->part. */
struct deals_read {
	struct deals_op *op;
	size_t slot;
};

static void
on_read(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct deals_read rd = *(struct deals_read *)arg;
	struct deals_op *op = rd.op;

	(void)rc;
	free(arg);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    (op->part[rd.slot] = durable_reply_dup(reply)) == NULL)
		op->failed = 1;
	if (--op->pending == 0)
		status_script(op);
}

/* GET /v1/deals/<id>; GET /v1/deals is the list (admin_deallist.c) */
static void
on_deal(struct http_req *r, void *arg)
{
	struct admin_deals *ad = arg;
	const char *id = http_req_rest(r);
	char key[KEYS_MAX];
	uint32_t nshards = keys_shards();
	struct deals_op *op;
	size_t i, nread;

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
	nread = 2 * (size_t)nshards + 2;
	if ((op = calloc(1, sizeof(*op))) == NULL ||
	    (op->part = calloc(nread, sizeof(*op->part))) == NULL) {
		free(op);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->id, sizeof(op->id), "%s", id);
	op->app = ad->app;
	op->nshards = nshards;
	http_wait_add(&ad->ops, &op->w, r);
	/* Every shard's copy of the deal and its report (one in the single-instance
	 * layout), the pause, the A/B tests: each on its own slot. */
	op->pending = 1;                /* held until every read is sent */
	for (i = 0; i < nread; i++) {
		struct deals_read *rd = malloc(sizeof(*rd));
		const char *argv[2] = { "HGETALL", key };
		int bad;

		if (i < nshards)
			bad = keys_per((uint32_t)i, KEYS_DEAL, id, key, sizeof(key)) < 0;
		else if (i < 2 * (size_t)nshards)
			bad = keys_per((uint32_t)(i - nshards), KEYS_REPORT_DEAL, id, key,
			    sizeof(key)) < 0;
		else if (i == 2 * (size_t)nshards)
			bad = snprintf(key, sizeof(key), "%s", PAUSE_KEY) < 0;
		else
			bad = keys_ab(KEYS_AB_TEST, id, "", key, sizeof(key)) < 0;
		if (rd == NULL || bad) {
			free(rd);
			op->failed = 1;
			break;
		}
		rd->op = op;
		rd->slot = i;
		op->pending++;
		if (rconn_argv(ad->app->cmd, on_read, rd, 0, 2, argv, NULL) < 0) {
			free(rd);
			op->pending--;
			op->failed = 1;
			break;
		}
	}
	if (--op->pending == 0)
		status_script(op);
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
