/*
 * admin_byphone.c: GET /v1/subscribers?phone=<E.164>, the ids of the number's
 * subscribers (stage: http; docs/admin.md).
 *
 * From the phone index in Redis (phoneix.h: written before every subscriber store,
 * on the number's slot), each id it names checked against its stored subscriber in
 * its shard (the index may hold an id whose number changed), merged with the mirror's
 * own index (a number stored before the phone index existed). The index covers every
 * shard, so the answer is whole also on a notifier that mirrors only the shards it
 * serves (docs/sharding.md 4d). Read only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "admin_int.h"
#include "app.h"
#include "hooks.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "phoneix.h"
#include "rconn.h"
#include "subscriber.h"

#define BYPHONE_MAX (PHONEIX_MAX + HOOKS_IDS_MAX)

struct byphone_op {
	struct http_wait w;               /* first: in the module's list */
	const struct app *app;
	char phone[32];
	char ids[BYPHONE_MAX][MODEL_ID_MAX + 1];
	int has[BYPHONE_MAX];             /* the id has the number (stored, or mirror) */
	size_t n;
	size_t pending;                   /* HGETs of stored subscribers out */
	int failed;                       /* a read failed: 503, never a short answer */
};

struct byphone_get {
	struct byphone_op *op;
	size_t i;
};

static void
op_free(struct byphone_op *op)
{
	http_wait_remove(&op->w);
	free(op);
}

/* Adds id unless it is there; its index, or -1 when the list is full. */
static int
op_add(struct byphone_op *op, const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len > MODEL_ID_MAX)
		return -1;
	for (i = 0; i < op->n; i++)
		if (strlen(op->ids[i]) == len && memcmp(op->ids[i], id, len) == 0)
			return (int)i;
	if (op->n == BYPHONE_MAX)
		return -1;
	memcpy(op->ids[op->n], id, len);
	op->ids[op->n][len] = '\0';
	return (int)op->n++;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every read is in: the ids that have the number, sorted. */
static void
op_answer(struct byphone_op *op)
{
	struct http_req *r = op->w.r;
	const char *out[BYPHONE_MAX];
	char masked[48];
	cJSON *j, *arr;
	size_t i, n = 0;

	if (r == NULL) {                  /* the admin API is being freed */
		op_free(op);
		return;
	}
	if (op->failed) {
		http_error(r, 503, NULL, "redis: a read failed, try again");
		op_free(op);
		return;
	}
	for (i = 0; i < op->n; i++)
		if (op->has[i])
			out[n++] = op->ids[i];
	qsort(out, n, sizeof(*out), id_cmp);
	log_mask_phone(op->phone, masked, sizeof(masked));
	if ((j = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(j, "phone", masked) == NULL ||
	    (arr = cJSON_AddArrayToObject(j, "ids")) == NULL) {
		cJSON_Delete(j);
		http_error(r, 500, NULL, "out of memory");
		op_free(op);
		return;
	}
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(out[i]));
	http_reply_json(r, 200, j);
	op_free(op);
}

/* A stored subscriber named by the index: it has the number, or not (any more). */
static void
on_stored(struct rconn *rc, struct redisReply *rep, void *arg)
{
	struct byphone_get g = *(struct byphone_get *)arg;
	struct byphone_op *op = g.op;
	struct subscriber *s;
	struct err e;

	(void)rc;
	free(arg);
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		op->failed = 1;
	} else if (rep->type == REDIS_REPLY_STRING &&
	    (s = subscriber_parse_stored(rep->str, rep->len, &e)) != NULL) {
		if (s->phone != NULL && strcmp(s->phone, op->phone) == 0)
			op->has[g.i] = 1;
		subscriber_free(s);
	}
	if (--op->pending == 0)
		op_answer(op);
}

/* The index's field: ids separated by "\n". Each is read in its shard. */
static void
on_index(struct rconn *rc, struct redisReply *rep, void *arg)
{
	struct byphone_op *op = arg;
	char key[KEYS_SHARD_MAX];
	const char *p, *end, *nl;
	struct byphone_get *g;
	int i;

	(void)rc;
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		op->failed = 1;
		op_answer(op);
		return;
	}
	op->pending = 1;                  /* held until every read is sent */
	if (rep->type == REDIS_REPLY_STRING)
		for (p = rep->str, end = rep->str + rep->len; p < end; p = nl + 1) {
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
				nl = end;
			if ((i = op_add(op, p, (size_t)(nl - p))) < 0 || op->has[i])
				continue;         /* full, bad, or the mirror's already */
			if ((g = malloc(sizeof(*g))) == NULL) {
				op->failed = 1;
				break;
			}
			g->op = op;
			g->i = (size_t)i;
			(void)keys_shard_key(keys_shard_of(op->ids[i]), KEYS_SUBSCRIBERS, key,
			    sizeof(key));
			if (rconn_cmd(op->app->cmd, on_stored, g, 0, "HGET %s %s", key,
			    op->ids[i]) < 0) {
				free(g);
				op->failed = 1;
				break;
			}
			op->pending++;
		}
	if (--op->pending == 0)
		op_answer(op);
}

void
admin_sub_by_phone(struct admin *a, struct http_req *r, const char *phone)
{
	struct byphone_op *op = calloc(1, sizeof(*op));
	char ix[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX];
	const char *mids[HOOKS_IDS_MAX];
	int i, n;

	if (op == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->app = a->app;
	snprintf(op->phone, sizeof(op->phone), "%s", phone);
	/* The mirror's own (the shards this notifier mirrors; -2 before it loaded: the
	 * index alone then). */
	n = a->app->hooks != NULL ? hooks_subs_of_phone(a->app->hooks, phone, mids,
	    HOOKS_IDS_MAX) : 0;
	for (i = 0; i < n; i++) {
		int k = op_add(op, mids[i], strlen(mids[i]));

		if (k >= 0)
			op->has[k] = 1;
	}
	if (phoneix_keys(PHONEIX_PHONE, phone, ix, sup) < 0 ||
	    rconn_cmd(a->app->cmd, on_index, op, 0, "HGET %s %s", ix, phone) < 0) {
		http_error(r, 503, NULL, "redis not ready");
		op_free(op);
		return;
	}
	http_wait_add(&a->list_ops, &op->w, r);
}
