/*
 * privacy.c: a subscriber's data on request (stage: http; docs/compliance.md
 * "Erasure and export"): GET /v1/export?id=<id> answers everything kept about them;
 * POST /v1/erase?id=<id> erases it, keeping only a proof of consent without the
 * number or the id, for [privacy] proof_retention_days, and the number on the
 * suppression list.
 *
 * Both first walk the subscriber's shard's pushes:log (bounded: MAXLEN ~1M over the
 * shards) for their pushes: the deals, push ids and log entries; then read the stored
 * subscriber, the consent record and, per deal, the code each push held and its
 * campaign. An erasure is then three steps, each idempotent, in this order:
 * erase_sub.lua (consent gone first, so nothing more is sent; the proof; the mirror
 * told), erase_deals.lua (the codepush / clicked keys, then the per-deal push
 * history: what is found through a key goes before that key), XDEL of
 * the log entries last, so that an erasure that failed half-way is finished by
 * asking again. A text already with a gateway when the erasure ran may add one log
 * entry after it: erase again (documented). Never blocks the loop: every step is a
 * reply callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "admin_consent.h"
#include "app.h"
#include "audit.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "privacy.h"
#include "privacy_int.h"
#include "redisutil.h"
#include "rconn.h"
#include "scripts.h"
#include "subbehav.h"
#include "timefmt.h"

int
priv_strv_add(struct strv *s, const char *p, size_t n)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	if ((s->v[s->n] = strndup(p, n)) == NULL)
		return -1;
	s->n++;
	return 0;
}

int
priv_strv_has(const struct strv *s, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strlen(s->v[i]) == n && memcmp(s->v[i], p, n) == 0)
			return 1;
	return 0;
}

void
priv_strv_free(struct strv *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void
priv_op_free(struct priv_op *op)
{
	int i;

	http_wait_remove(&op->w);
	priv_strv_free(&op->deals);
	priv_strv_free(&op->pushes);
	priv_strv_free(&op->codes);
	priv_strv_free(&op->camps);
	for (i = 0; i < SCANS; i++) {
		priv_strv_free(&op->scan[i].entries);
		cJSON_Delete(op->scan[i].found);
	}
	if (op->wait != NULL)
		event_free(op->wait);
	free(op->stored);
	free(op->record);
	free(op->behav);
	free(op);
}

/* Ends op: its request answered already (or gone). */
void
priv_op_done(struct priv_op *op)
{
	op->w.r = NULL;
	priv_op_free(op);
}

void
priv_op_fail(struct priv_op *op, const char *what)
{
	if (op->w.r != NULL)
		http_error(op->w.r, 503, NULL, "storage unavailable while %s; nothing more was "
		    "done: ask again (every step can be repeated)", what);
	priv_op_done(op);
}

/* Lower-case hex SHA-256 of s into out (65 bytes). */
void
priv_sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	int i;

	out[0] = '\0';
	if (!EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) || n != 32)
		return;
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void read_state(struct priv_op *op);

/* ---- 1. the entries about the subscriber in pushes:log, audit and replies ------- */

/* The fields of a matching entry as a JSON object, for the export. */
static cJSON *
entry_json(const redisReply *e)
{
	const redisReply *f = e->element[1];
	cJSON *o = cJSON_CreateObject();
	size_t k;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "entry", e->element[0]->str);
	for (k = 0; k + 1 < f->elements; k += 2) {
		char *n, *v;

		if (f->element[k]->type != REDIS_REPLY_STRING ||
		    f->element[k + 1]->type != REDIS_REPLY_STRING)
			continue;
		n = strndup(f->element[k]->str, f->element[k]->len);
		v = strndup(f->element[k + 1]->str, f->element[k + 1]->len);
		if (n != NULL && v != NULL)
			cJSON_AddStringToObject(o, n, v);
		free(n);
		free(v);
	}
	return o;
}

/* Takes one matching entry e of scan sc: its id, and for the log its deal and push.
 * Returns 0, or -1 after answering (too much, out of memory). */
static int
take_entry(struct priv_op *op, struct priv_scan *sc, const redisReply *e)
{
	const redisReply *f = e->element[1];
	const char *deal, *push;
	size_t dl, pl;

	if (op->si == SCAN_LOG) {
		deal = ru_field(f, "deal", &dl);
		push = ru_field(f, "push", &pl);
		if (deal == NULL || push == NULL)
			return 0;
		if (op->deals.n >= PRIV_DEALS_MAX || op->pushes.n >= PRIV_PUSHES_MAX) {
			http_error(op->w.r, 413, "id", "a push history over %d deals or %d "
			    "pushes is more than one request erases", PRIV_DEALS_MAX,
			    PRIV_PUSHES_MAX);
			return -1;
		}
		if ((!priv_strv_has(&op->deals, deal, dl) && priv_strv_add(&op->deals, deal, dl) < 0) ||
		    (!priv_strv_has(&op->pushes, push, pl) && priv_strv_add(&op->pushes, push, pl) < 0))
			goto oom;
	}
	if (priv_strv_add(&sc->entries, e->element[0]->str, e->element[0]->len) < 0)
		goto oom;
	if (sc->found != NULL)
		cJSON_AddItemToArray(sc->found, entry_json(e));
	return 0;
oom:
	http_error(op->w.r, 500, NULL, "out of memory");
	return -1;
}

/* 1 when fields f (a stream entry's) hold field = value: any of them, since an
 * entry may name several subscribers (the change feed's "op behav" entries carry
 * one "id" per subscriber, lib/behav.lua). */
static int
entry_names(const redisReply *f, const char *field, const char *value, size_t vl)
{
	size_t j;

	for (j = 0; j + 1 < f->elements; j += 2)
		if (f->element[j]->type == REDIS_REPLY_STRING &&
		    f->element[j + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[j]->str, field) == 0 && f->element[j + 1]->len == vl &&
		    memcmp(f->element[j + 1]->str, value, vl) == 0)
			return 1;
	return 0;
}

static void
on_scan(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct priv_op *op = arg;
	struct priv_scan *sc = &op->scan[op->si];
	size_t i, vl = strlen(sc->value);

	(void)rc;
	if (op->w.r == NULL) {
		priv_op_done(op);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		priv_op_fail(op, "reading the history");
		return;
	}
	for (i = 0; i < reply->elements; i++) {
		const redisReply *e = reply->element[i];
		const char *v;
		size_t len;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		snprintf(op->cursor, sizeof(op->cursor), "(%s", e->element[0]->str);
		if (!entry_names(e->element[1], sc->field, sc->value, vl))
			continue;
		/* In the audit only changes to subscribers name one (a token may share
		 * its name with a subscriber's id). */
		if (op->si == SCAN_AUDIT && ((v = ru_field(e->element[1], "what", &len)) ==
		    NULL || len < 12 || memcmp(v, "subscribers.", 12) != 0))
			continue;
		if (take_entry(op, sc, e) < 0) {
			priv_op_done(op);
			return;
		}
	}
	if (reply->elements < (size_t)atoi(PRIV_SCAN_COUNT)) {
		op->si++;                     /* this stream walked: the next */
		snprintf(op->cursor, sizeof(op->cursor), "-");
	}
	priv_scan_next(op);
}

void
priv_scan_next(struct priv_op *op)
{
	const char *argv[6];

	while (op->si < SCANS && op->scan[op->si].value[0] == '\0')
		op->si++;
	if (op->si == SCANS) {
		if (op->final)
			priv_erase_log(op);
		else
			read_state(op);
		return;
	}
	argv[0] = "XRANGE";
	argv[1] = op->scan[op->si].key;
	argv[2] = op->cursor;
	argv[3] = "+";
	argv[4] = "COUNT";
	argv[5] = PRIV_SCAN_COUNT;
	if (rconn_argv(op->pv->app->cmd, on_scan, op, 0, 6, argv, NULL) < 0)
		priv_op_fail(op, "reading the history");
}

/* ---- 0. the stored subscriber first: its number says which replies are theirs ---- */

static void
on_stored(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct priv_op *op = arg;
	cJSON *j;

	(void)rc;
	if (op->w.r == NULL) {
		priv_op_done(op);
		return;
	}
	if (reply == NULL || (reply->type != REDIS_REPLY_STRING &&
	    reply->type != REDIS_REPLY_NIL)) {
		priv_op_fail(op, "reading the subscriber");
		return;
	}
	if (reply->type == REDIS_REPLY_STRING) {
		if ((op->stored = strndup(reply->str, reply->len)) == NULL) {
			http_error(op->w.r, 500, NULL, "out of memory");
			priv_op_done(op);
			return;
		}
		if ((j = cJSON_Parse(op->stored)) != NULL) {
			const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "phone");
			const cJSON *dm = cJSON_GetObjectItemCaseSensitive(j, "dm");
			const cJSON *x = cJSON_GetObjectItemCaseSensitive(dm, "x");

			if (cJSON_IsString(p) && strlen(p->valuestring) < sizeof(op->phone))
				snprintf(op->phone, sizeof(op->phone), "%s", p->valuestring);
			if (cJSON_IsString(x) && strlen(x->valuestring) < sizeof(op->dm))
				snprintf(op->dm, sizeof(op->dm), "%s", x->valuestring);
			cJSON_Delete(j);
		}
	}
	snprintf(op->scan[SCAN_REPLIES].value, sizeof(op->scan[SCAN_REPLIES].value), "%s",
	    op->phone);
	priv_scan_next(op);
}

/* ---- 2. what is stored: the subscriber, the consent record, codes, campaigns ---- */

static void export_answer(struct priv_op *op);

/* One reply of the reads: stored (HGET subscribers), record (HGET consent:records),
 * a deal's codes or push infos (HMGET of the sms and dm fields), or the behaviour
 * record (HGET behaviour). */
struct priv_read {
	struct priv_op *op;
	int kind;                         /* 0 stored, 1 record, 2 codes, 3 infos,
	                                   * 4 behaviour */
};

static void
reads_done(struct priv_op *op)
{
	if (op->w.r == NULL) {
		priv_op_done(op);
		return;
	}
	if (op->failed) {
		priv_op_fail(op, "reading what is stored");
		return;
	}
	if (op->stored == NULL && op->record == NULL &&
	    op->scan[SCAN_LOG].entries.n == 0 && op->scan[SCAN_REPLIES].entries.n == 0) {
		http_error(op->w.r, 404, "id", "nothing is kept about subscriber '%s'",
		    op->id);
		priv_op_done(op);
		return;
	}
	if (op->erase)
		priv_erase_start(op);
	else
		export_answer(op);
}

static void
on_read(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct priv_read *rd = arg;
	struct priv_op *op = rd->op;
	size_t i;

	(void)rc;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		op->failed = 1;
	else if ((rd->kind <= 1 || rd->kind == 4) && reply->type == REDIS_REPLY_STRING) {
		char **dst = rd->kind == 0 ? &op->stored : rd->kind == 1 ? &op->record :
		    &op->behav;

		if ((*dst = strndup(reply->str, reply->len)) == NULL)
			op->failed = 1;
	} else if ((rd->kind == 2 || rd->kind == 3) && reply->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i < reply->elements; i++) {
			const redisReply *e = reply->element[i];
			const char *v = e->type == REDIS_REPLY_STRING ? e->str : NULL;
			const char *tab;

			if (v == NULL)
				continue;
			if (rd->kind == 2 && !priv_strv_has(&op->codes, v, e->len))
				op->failed |= priv_strv_add(&op->codes, v, e->len) < 0;
			/* pushinfo: "<rule>\t<campaign>" */
			if (rd->kind == 3 && (tab = strchr(v, '\t')) != NULL && tab[1] != '\0' &&
			    !priv_strv_has(&op->camps, tab + 1, strlen(tab + 1)))
				op->failed |= priv_strv_add(&op->camps, tab + 1, strlen(tab + 1)) < 0;
		}
	}
	free(rd);
	if (--op->reads_left == 0)
		reads_done(op);
}

static int
read_one(struct priv_op *op, int kind, int argc, const char **argv)
{
	struct priv_read *rd = calloc(1, sizeof(*rd));

	if (rd == NULL)
		return -1;
	rd->op = op;
	rd->kind = kind;
	op->reads_left++;
	if (rconn_argv(op->pv->app->cmd, on_read, rd, 0, argc, argv, NULL) < 0) {
		op->reads_left--;
		free(rd);
		return -1;
	}
	return 0;
}

static void
read_state(struct priv_op *op)
{
	char sk[KEYS_SUB_NKEYS][KEYS_SHARD_MAX], key[KEYS_SHARD_MAX + MODEL_ID_MAX + 8];
	char f_sms[MODEL_ID_MAX + 8], f_dm[MODEL_ID_MAX + 8];
	const char *argv[5];
	size_t i;
	int bad = 0;

	snprintf(f_sms, sizeof(f_sms), "%s:sms", op->id);
	snprintf(f_dm, sizeof(f_dm), "%s:dm", op->id);
	op->reads_left = 1;                  /* held until every read is sent */
	if (keys_sub_keys(op->shard, sk) < 0) {
		op->failed = 1;
		goto sent;
	}
	argv[0] = "HGET";
	argv[1] = sk[3];
	argv[2] = op->id;
	bad |= read_one(op, 1, 3, argv);
	if (!op->erase) {
		bad |= keys_shard_key(op->shard, KEYS_BEHAVIOUR, key, sizeof(key)) < 0;
		argv[1] = key;
		bad |= read_one(op, 4, 3, argv);
	}
	for (i = 0; i < op->deals.n && !bad && op->erase; i++) {
		argv[0] = "HMGET";
		argv[2] = f_sms;
		argv[3] = f_dm;
		bad |= keys_per(op->shard, KEYS_CODE, op->deals.v[i], key, sizeof(key)) < 0;
		argv[1] = key;
		bad |= read_one(op, 2, 4, argv);
		bad |= keys_per(op->shard, KEYS_PUSHINFO, op->deals.v[i], key, sizeof(key)) < 0;
		bad |= read_one(op, 3, 4, argv);
	}
	if (bad)
		op->failed = 1;
sent:
	if (--op->reads_left == 0)
		reads_done(op);
}

/* ---- export -------------------------------------------------------------------- */

static void
export_answer(struct priv_op *op)
{
	cJSON *j = cJSON_CreateObject(), *sub, *events, *cur, *beh;
	char at[40];

	if (j == NULL) {
		http_error(op->w.r, 500, NULL, "out of memory");
		priv_op_done(op);
		return;
	}
	cJSON_AddStringToObject(j, "id", op->id);
	cJSON_AddStringToObject(j, "exported_at", time_format_rfc3339(clock_now(), at,
	    sizeof(at)));
	sub = op->stored != NULL ? cJSON_Parse(op->stored) : NULL;
	cJSON_AddItemToObject(j, "subscriber", sub != NULL ? sub : cJSON_CreateNull());
	events = cJSON_AddArrayToObject(j, "consent_events");
	cur = cJSON_AddObjectToObject(j, "consent_now");
	if (op->record != NULL && events != NULL && cur != NULL)
		admin_consent_events(op->record, strlen(op->record), events, cur);
	if ((beh = cJSON_AddObjectToObject(j, "behaviour")) != NULL) {
		struct sub_behav *b = op->behav != NULL ?
		    subbehav_parse(op->behav, strlen(op->behav)) : NULL;

		(void)subbehav_to_json(b, sub != NULL ? subbehav_joined_of_json(sub) : 0,
		    clock_now(), beh);
		/* as kept, too: what the fields are computed from */
		if (op->behav != NULL)
			cJSON_AddStringToObject(beh, "stored", op->behav);
		else
			cJSON_AddNullToObject(beh, "stored");
		free(b);
	}
	cJSON_AddItemToObject(j, "pushes", op->scan[SCAN_LOG].found);
	op->scan[SCAN_LOG].found = NULL;
	cJSON_AddItemToObject(j, "replies", op->scan[SCAN_REPLIES].found);
	op->scan[SCAN_REPLIES].found = NULL;
	log_info("event=subscriber_exported pushes=%zu", op->scan[SCAN_LOG].entries.n);
	audit_record(op->pv->app->cmd, http_req_principal(op->w.r), "subscribers.export",
	    op->id, NULL, NULL);
	http_reply_json(op->w.r, 200, j);
	priv_op_done(op);
}

/* ---- routes -------------------------------------------------------------------- */

static void
on_request(struct http_req *r, void *arg)
{
	struct privacy *pv = arg;
	const char *id = http_query(r, "id"), *argv[3];
	char sub[KEYS_SHARD_MAX];
	struct priv_op *op;

	if (id == NULL || !deal_id_is_valid(id)) {
		http_error(r, 400, "id", "give ?id=<subscriber id>: 1 to %d printable "
		    "characters, no space", MODEL_ID_MAX);
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->pv = pv;
	op->erase = strcmp(http_req_path(r), "/v1/erase") == 0;
	snprintf(op->id, sizeof(op->id), "%s", id);
	op->shard = keys_shard_of(op->id);
	snprintf(op->cursor, sizeof(op->cursor), "-");
	/* ORDER PRIV_SCANS; replies' value is the number, once the subscriber is read */
	op->scan[SCAN_LOG].field = "sub";
	snprintf(op->scan[SCAN_LOG].value, sizeof(op->scan[SCAN_LOG].value), "%s", op->id);
	op->scan[SCAN_AUDIT].field = "id";
	snprintf(op->scan[SCAN_AUDIT].key, sizeof(op->scan[SCAN_AUDIT].key), "%s",
	    AUDIT_KEY);
	op->scan[SCAN_REPLIES].field = "from";
	snprintf(op->scan[SCAN_REPLIES].key, sizeof(op->scan[SCAN_REPLIES].key), "replies");
	op->scan[SCAN_CHANGES].field = "id";
	if (op->erase) {
		/* Exported data does not include what others did (the audit). */
		snprintf(op->scan[SCAN_AUDIT].value, sizeof(op->scan[SCAN_AUDIT].value), "%s",
		    op->id);
	} else if ((op->scan[SCAN_LOG].found = cJSON_CreateArray()) == NULL ||
	    (op->scan[SCAN_REPLIES].found = cJSON_CreateArray()) == NULL) {
		priv_op_free(op);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	if (keys_shard_key(op->shard, KEYS_PUSHES_LOG, op->scan[SCAN_LOG].key,
	    sizeof(op->scan[SCAN_LOG].key)) < 0 || keys_shard_key(op->shard,
	    KEYS_SUB_CHANGES, op->scan[SCAN_CHANGES].key,
	    sizeof(op->scan[SCAN_CHANGES].key)) < 0 || keys_shard_key(op->shard,
	    KEYS_SUBSCRIBERS, sub, sizeof(sub)) < 0) {
		priv_op_free(op);
		http_error(r, 500, NULL, "no key for the shard");
		return;
	}
	http_wait_add(&pv->ops, &op->w, r);
	argv[0] = "HGET";
	argv[1] = sub;
	argv[2] = op->id;
	if (rconn_argv(pv->app->cmd, on_stored, op, 0, 3, argv, NULL) < 0)
		priv_op_fail(op, "reading the subscriber");
}

struct privacy *
privacy_new(const struct app *app)
{
	struct privacy *pv = calloc(1, sizeof(*pv));

	if (pv == NULL)
		return NULL;
	pv->app = app;
	if (app->http != NULL && (http_route(app->http, EVHTTP_REQ_POST, "/v1/erase",
	    HTTP_ROLE_ADMIN, on_request, pv, HTTP_EXACT) < 0 ||
	    http_route(app->http, EVHTTP_REQ_GET, "/v1/export", HTTP_ROLE_ADMIN,
	    on_request, pv, HTTP_EXACT) < 0)) {
		free(pv);
		return NULL;
	}
	return pv;
}

void
privacy_free(struct privacy *pv)
{
	struct http_wait *w, *next;

	if (pv == NULL)
		return;
	/* An erasure waiting on its timer has no Redis reply coming to free it. */
	for (w = pv->ops; w != NULL; w = next) {
		struct priv_op *op = (struct priv_op *)w;

		next = w->next;
		if (op->wait != NULL && evtimer_pending(op->wait, NULL)) {
			op->w.r = NULL;
			priv_op_free(op);
		}
	}
	http_wait_detach_all(&pv->ops);
	free(pv);
}
