/*
 * admin_sub.c: /v1/subscribers of the admin API (stage: http): put, get and delete
 * one subscriber (docs/admin.md). A put is validated by subscriber_parse, its id
 * added to the phone index (which reads the number's suppression entry), then
 * stored by admin_sub_put.lua, which applies the entry; a delete is admin_sub_del.lua,
 * then the id leaves the phone index. The store is one script, so a request changes
 * all it should or nothing; it must never block the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "admin_int.h"
#include "app.h"
#include "audit.h"
#include "clock.h"
#include "deal.h"
#include "http.h"
#include "config.h"
#include "keys.h"
#include "phoneix.h"
#include "log.h"
#include "rules.h"
#include "scripts.h"
#include "subbehav.h"
#include "subscriber.h"

/* ---- subscribers ---- */

/* Adds "consent_kept_out": ["sms", ...] to the answer for the channels whose consent
 * the subscriber's own opt-out outranked (csv from admin_sub_put.lua; "" = none). */
static void
sub_kept_out(cJSON *j, const char *csv)
{
	cJSON *arr;
	const char *p = csv;

	if (*csv == '\0' || (arr = cJSON_AddArrayToObject(j, "consent_kept_out")) == NULL)
		return;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		char ch[16];

		snprintf(ch, sizeof(ch), "%.*s", (int)n, p);
		cJSON_AddItemToArray(arr, cJSON_CreateString(ch));
		p += n + (p[n] == ',');
	}
}

/* A GET's document, waiting for the subscriber's behaviour record. */
struct sub_get {
	struct admin_op *op;
	cJSON *j;
};

/* The behaviour record's reply: the document is answered with "behaviour" added
 * (subbehav_to_json, on the notifier's clock). A record that does not parse shows
 * as nothing known, as the mirror treats it. */
static void
on_sub_behav(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct sub_get *g = arg;
	struct admin_op *op = g->op;
	struct sub_behav *b = NULL;
	cJSON *o;

	(void)rc;
	if (op->r == NULL)
		goto out;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		admin_op_redis_failed(op, reply);
		goto out;
	}
	if (reply->type == REDIS_REPLY_STRING)
		b = subbehav_parse(reply->str, reply->len);
	if ((o = cJSON_AddObjectToObject(g->j, "behaviour")) == NULL ||
	    subbehav_to_json(b, subbehav_joined_of_json(g->j), clock_now(), o) < 0) {
		http_error(op->r, 500, NULL, "out of memory");
		goto out;
	}
	http_reply_json(op->r, 200, g->j);
	g->j = NULL;
	op->r = NULL;
out:
	free(b);
	cJSON_Delete(g->j);
	free(g);
	admin_op_free(op);
}

/* Reads the behaviour record of the GET's subscriber; takes ownership of j. Returns
 * 0 when the read is out (it answers and frees op), else -1 (j freed). */
static int
sub_get_behav(struct admin_op *op, cJSON *j)
{
	char key[KEYS_SHARD_MAX];
	struct sub_get *g;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		cJSON_Delete(j);
		return -1;
	}
	g->op = op;
	g->j = j;
	(void)keys_shard_key(keys_shard_of(op->name), KEYS_BEHAVIOUR, key, sizeof(key));
	if (rconn_cmd(op->a->app->cmd, on_sub_behav, g, 0, "HGET %s %s", key,
	    op->name) < 0) {
		cJSON_Delete(j);
		free(g);
		return -1;
	}
	return 0;
}

/* A deleted subscriber's number and X id, taken off the phone index one after the
 * other before the delete is answered. */
struct sub_unindex {
	struct admin_op *op;
	char phone[32], dm[32];
	enum phoneix_kind at;
};

static void sub_unindex_next(struct sub_unindex *u);

static void
on_sub_unindexed(struct rconn *rc, struct redisReply *reply, int durable, void *arg)
{
	struct sub_unindex *u = arg;

	(void)rc;
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER || !durable)
		log_warnx("event=admin_sub_del_unindex_failed sub=%s index=%s", u->op->name,
		    u->at == PHONEIX_DM ? "dm" : "phone");
	if (u->at == PHONEIX_PHONE) {
		u->at = PHONEIX_DM;
		u->phone[0] = '\0';
	} else {
		u->dm[0] = '\0';
	}
	sub_unindex_next(u);
}

/* The next drop, or the answer (200: the subscriber is deleted, whatever the index
 * said; a drop that failed leaves a stale id, which readers check anyway). */
static void
sub_unindex_next(struct sub_unindex *u)
{
	struct admin_op *op = u->op;
	struct durable_config wait;
	cJSON *j;

	if (op->r != NULL && op->a != NULL) {
		wait.replicas = op->a->app->cfg->wait_replicas;
		wait.timeout_ms = op->a->app->cfg->wait_timeout_ms;
		if (u->phone[0] != '\0') {
			u->at = PHONEIX_PHONE;
			if (phoneix_call(op->a->app->cmd, &wait, PHONEIX_PHONE, "drop",
			    u->phone, op->name, on_sub_unindexed, u) == 0)
				return;
			u->phone[0] = '\0';
		}
		if (u->dm[0] != '\0') {
			u->at = PHONEIX_DM;
			if (phoneix_call(op->a->app->cmd, &wait, PHONEIX_DM, "drop", u->dm,
			    op->name, on_sub_unindexed, u) == 0)
				return;
		}
		log_info("event=admin_sub_del sub=%s", op->name);
		audit_record(op->a->app->cmd, http_req_principal(op->r), "subscribers.delete",
		    op->name, NULL, NULL);
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "id", op->name);
		cJSON_AddTrueToObject(j, "deleted");
		http_reply_json(op->r, 200, j);
		op->r = NULL;
	}
	admin_op_free(op);
	free(u);
}

/* Starts the drops for op's deleted subscriber, stored as json. Owns op. */
static void
sub_del_unindex(struct admin_op *op, const char *json)
{
	struct sub_unindex *u = calloc(1, sizeof(*u));
	cJSON *o = cJSON_Parse(json);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "phone");
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "dm"), "x");

	if (u == NULL) {
		cJSON_Delete(o);
		http_error(op->r, 500, NULL, "out of memory");
		op->r = NULL;
		admin_op_free(op);
		return;
	}
	u->op = op;
	if (cJSON_IsString(p) && strlen(p->valuestring) < sizeof(u->phone))
		snprintf(u->phone, sizeof(u->phone), "%s", p->valuestring);
	if (cJSON_IsString(x) && strlen(x->valuestring) < sizeof(u->dm))
		snprintf(u->dm, sizeof(u->dm), "%s", x->valuestring);
	cJSON_Delete(o);
	sub_unindex_next(u);
}

static void
on_sub_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admin_op *op = arg;
	cJSON *j;

	(void)rc;
	if (op->r == NULL)
		goto out;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		admin_op_redis_failed(op, reply);
		goto out;
	}
	switch (op->kind) {
	case OP_SUB_GET:
		if (reply->type != REDIS_REPLY_STRING) {
			http_error(op->r, 404, "id", "no subscriber '%s'", op->name);
			break;
		}
		if ((j = cJSON_ParseWithLength(reply->str, reply->len)) == NULL) {
			http_error(op->r, 500, NULL, "stored subscriber is not JSON");
			break;
		}
		if (sub_get_behav(op, j) == 0)
			return;   /* on_sub_behav answers */
		admin_op_redis_failed(op, NULL);
		break;
	case OP_SUB_PUT:
		/* {0} | {1 created | 2 replaced, JSON as stored, channels kept out} */
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
		    reply->element[0]->type != REDIS_REPLY_INTEGER || (reply->element[0]->integer
		    != 0 && (reply->elements != 3 || reply->element[1]->type !=
		    REDIS_REPLY_STRING || reply->element[2]->type != REDIS_REPLY_STRING))) {
			admin_op_redis_failed(op, NULL);
			break;
		}
		if (reply->element[0]->integer == 0) {
			http_error(op->r, 409, "id", "subscriber '%s' already exists", op->name);
			break;
		}
		if ((j = cJSON_ParseWithLength(reply->element[1]->str,
		    reply->element[1]->len)) == NULL) {
			http_error(op->r, 500, NULL, "stored subscriber is not JSON");
			break;
		}
		{
			char *after = audit_subscriber(reply->element[1]->str,
			    reply->element[1]->len);

			audit_record(op->a->app->cmd, http_req_principal(op->r),
			    reply->element[0]->integer == 1 ? "subscribers.create" :
			    "subscribers.put", op->name, NULL, after);
			free(after);
		}
		sub_kept_out(j, reply->element[2]->str);
		log_info("event=admin_sub_put sub=%s created=%d kept_out=%s", op->name,
		    reply->element[0]->integer == 1, reply->element[2]->len > 0 ?
		    reply->element[2]->str : "-");
		http_reply_json(op->r, reply->element[0]->integer == 1 ? 201 : 200, j);
		break;
	default: /* OP_SUB_DEL */
		if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
			http_error(op->r, 404, "id", "no subscriber '%s'", op->name);
			break;
		}
		if (reply->type != REDIS_REPLY_STRING) {
			admin_op_redis_failed(op, NULL);
			break;
		}
		/* Deleted: its number and X id leave the phone index, then the answer. */
		sub_del_unindex(op, reply->str);
		return;
	}
	op->r = NULL;
out:
	admin_op_free(op);
}

/* Sends script name with the subscriber keys of op->name (ORDER SUB_KEYS, the header
 * of admin_sub_put.lua) and one more (admin_sub_del.lua: behaviour; admin_sub_put.lua:
 * stops); answers 503 itself when it cannot. */
static void
sub_script(struct admin *a, struct admin_op *op, const char *script, const char **extra,
    const size_t *extra_len, int nextra)
{
	char keys[KEYS_SUB_NKEYS][KEYS_SHARD_MAX], last[KEYS_SHARD_MAX];
	const char *args[KEYS_SUB_NKEYS + 8 + CH_COUNT];
	size_t lens[KEYS_SUB_NKEYS + 8 + CH_COUNT];
	int nargs = 0, i, del = strcmp(script, "admin_sub_del") == 0;

	(void)keys_sub_keys(keys_shard_of(op->name), keys);
	/* Then one more: behaviour (the header of admin_sub_del.lua), or stops (that of
	 * admin_sub_put.lua). */
	(void)keys_shard_key(keys_shard_of(op->name), del ? KEYS_BEHAVIOUR : KEYS_STOPS,
	    last, sizeof(last));
	for (i = 0; i < KEYS_SUB_NKEYS; i++) {
		args[nargs] = keys[i];
		lens[nargs++] = strlen(keys[i]);
	}
	args[nargs] = last;
	lens[nargs++] = strlen(last);
	for (i = 0; i < nextra; i++) {
		args[nargs] = extra[i];
		lens[nargs++] = extra_len[i];
	}
	if (script_call_named(a->app->cmd, script, KEYS_SUB_NKEYS + 1, nargs, args, lens,
	    on_sub_reply, op) < 0) {
		admin_op_redis_failed(op, NULL);
		admin_op_free(op);
	}
}

/* A subscriber put waiting for its phone index adds, with the put's own arguments:
 * the put is sent from the last add's reply, with the number's suppression entry
 * that add read. */
struct sub_gate {
	struct admin_op *op;
	int create;
	char consent[CH_COUNT][24];
	char now[24];
	char phone[MODEL_TEXT_MAX + 1];
	char dm[MODEL_TEXT_MAX + 1];
	enum phoneix_kind indexing;     /* the index add in flight */
};

static void sub_gate_put(struct admin *a, struct sub_gate *g, const char *entry);
static void sub_gate_index(struct admin *a, struct sub_gate *g, enum phoneix_kind kind);

/* The subscriber's id is in the index of its X id or its number (phone_index.lua
 * "add", durable): the number's next, or the check with the number's entry on the
 * suppression list, read by the add. */
static void
on_sub_indexed(struct rconn *rc, struct redisReply *reply, int durable, void *arg)
{
	struct sub_gate *g = arg;
	struct admin_op *op = g->op;

	(void)rc;
	if (op->r == NULL || op->a == NULL) {
		admin_op_free(op);
		free(g);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 ||
	    reply->element[0]->type != REDIS_REPLY_STRING || !durable) {
		/* Not written unindexed: a STOP could miss it. */
		admin_op_redis_failed(op, reply != NULL && reply->type == REDIS_REPLY_ERROR ?
		    reply : NULL);
		admin_op_free(op);
		free(g);
		return;
	}
	if (g->indexing == PHONEIX_DM && g->phone[0] != '\0') {
		sub_gate_index(op->a, g, PHONEIX_PHONE);
		return;
	}
	sub_gate_put(op->a, g, g->indexing == PHONEIX_PHONE ? reply->element[0]->str : "");
}

/* admin_sub_put.lua with the number's suppression entry ("" = none), on the
 * subscriber's shard: it keeps out an SMS consent older than that entry or the
 * shard's stops entry for the number (lib/subput.lua), and says so in
 * consent_kept_out. Frees g. */
static void
sub_gate_put(struct admin *a, struct sub_gate *g, const char *entry)
{
	struct admin_op *op = g->op;
	const char *extra[7 + CH_COUNT];
	size_t elen[7 + CH_COUNT];
	int c;

	extra[0] = op->name;
	extra[1] = op->text;
	extra[2] = g->create ? "1" : "0";
	for (c = 0; c < CH_COUNT; c++)
		extra[3 + c] = g->consent[c];
	extra[3 + CH_COUNT] = g->now;
	extra[4 + CH_COUNT] = "api";
	extra[5 + CH_COUNT] = g->phone;
	extra[6 + CH_COUNT] = entry;
	for (c = 0; c < 7 + CH_COUNT; c++)
		elen[c] = strlen(extra[c]);
	sub_script(a, op, "admin_sub_put", extra, elen, 7 + CH_COUNT);
	free(g);
}

/* phone_index.lua "add" of op's id at its X id or number. Takes ownership of g;
 * answers 503 itself when it cannot. */
static void
sub_gate_index(struct admin *a, struct sub_gate *g, enum phoneix_kind kind)
{
	struct durable_config wait;

	wait.replicas = a->app->cfg->wait_replicas;
	wait.timeout_ms = a->app->cfg->wait_timeout_ms;
	g->indexing = kind;
	if (phoneix_call(a->app->cmd, &wait, kind, "add", kind == PHONEIX_DM ? g->dm :
	    g->phone, g->op->name, on_sub_indexed, g) < 0) {
		admin_op_redis_failed(g->op, NULL);
		admin_op_free(g->op);
		free(g);
	}
}

/*
 * Indexes op's subscriber under its X id and its number (phoneix.h; phone and dm may
 * be NULL), reading the number's entry on the suppression list with it, then the
 * put with that entry: a number on the suppression list
 * (an SMS STOP before it was this subscriber's) gets no sms consent older than the
 * STOP, and the answer lists sms in consent_kept_out. Takes ownership of g; answers
 * 503 itself when it cannot.
 */
static void
sub_gate_send(struct admin *a, struct sub_gate *g, const char *phone, const char *dm)
{
	snprintf(g->phone, sizeof(g->phone), "%s", phone != NULL ? phone : "");
	snprintf(g->dm, sizeof(g->dm), "%s", dm != NULL ? dm : "");
	if (g->dm[0] != '\0')
		sub_gate_index(a, g, PHONEIX_DM);
	else if (g->phone[0] != '\0')
		sub_gate_index(a, g, PHONEIX_PHONE);
	else
		sub_gate_put(a, g, "");
}

static void
sub_put(struct admin *a, struct http_req *r, const char *id, int create)
{
	size_t blen;
	const char *body = http_body(r, &blen);
	struct subscriber *s;
	struct admin_op *op = NULL;
	struct sub_gate *g;
	struct err e;
	int c;

	err_clear(&e);
	if ((s = subscriber_parse(body, blen, &e)) == NULL) {
		http_error_input(r, &e);
		return;
	}
	if (id != NULL && strcmp(id, s->id) != 0) {
		http_error(r, 400, "id", "id: '%s' does not match the path's '%s'", s->id, id);
		subscriber_free(s);
		return;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (op = admin_op_new(a, r, OP_SUB_PUT)) == NULL ||
	    (op->text = subscriber_to_json(s)) == NULL) {
		if (op != NULL)
			admin_op_free(op);
		free(g);
		subscriber_free(s);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->len = strlen(op->text);
	snprintf(op->name, sizeof(op->name), "%s", s->id);
	g->op = op;
	g->create = create;
	for (c = 0; c < CH_COUNT; c++)
		(void)subscriber_consent_arg(s, (enum channel)c, g->consent[c],
		    sizeof(g->consent[c]));
	snprintf(g->now, sizeof(g->now), "%lld", (long long)clock_now());
	sub_gate_send(a, g, s->phone, s->dm_x);
	subscriber_free(s);
}

/* /v1/subscribers[/<id>] */
void
admin_on_subscribers(struct http_req *r, void *arg)
{
	struct admin *a = arg;
	const char *id = http_req_rest(r);
	int m = http_req_method(r);
	char key[KEYS_SHARD_MAX];
	struct admin_op *op;

	if (*id == '\0') {
		if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) {
			admin_sub_list(a, r);
			return;
		}
		if (m != EVHTTP_REQ_POST) {
			http_error(r, 405, "method", "use POST /v1/subscribers to create, GET to"
			    " list, or /v1/subscribers/<id>");
			return;
		}
		sub_put(a, r, NULL, 1);
		return;
	}
	if (!deal_id_is_valid(id)) {
		http_error(r, 400, "path", "not a subscriber id: 1 to %d printable"
		    " characters, no space", MODEL_ID_MAX);
		return;
	}
	if (m == EVHTTP_REQ_POST) {
		http_error(r, 405, "method", "POST goes to /v1/subscribers; use PUT here");
		return;
	}
	if (m == EVHTTP_REQ_PUT) {
		sub_put(a, r, id, 0);
		return;
	}
	if ((op = admin_op_new(a, r, m == EVHTTP_REQ_DELETE ? OP_SUB_DEL : OP_SUB_GET)) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->name, sizeof(op->name), "%s", id);
	if (op->kind == OP_SUB_DEL) {
		const char *extra[1] = { op->name };
		size_t elen[1] = { strlen(op->name) };

		sub_script(a, op, "admin_sub_del", extra, elen, 1);
		return;
	}
	(void)keys_shard_key(keys_shard_of(op->name), KEYS_SUBSCRIBERS, key, sizeof(key));
	if (rconn_cmd(a->app->cmd, on_sub_reply, op, 0, "HGET %s %s", key, op->name) < 0) {
		admin_op_redis_failed(op, NULL);
		admin_op_free(op);
	}
}
