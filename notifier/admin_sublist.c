/*
 * admin_sublist.c: GET /v1/subscribers, the subscribers a page at a time (stage:
 * http). One HSCAN at a time over each shard's subscribers hash in turn (one hash in
 * the single-instance layout), filtered by interest, consent and time zone with the
 * daemon's own parser; the opaque cursor says where the next page starts (the layout's
 * shard count, the shard, its HSCAN cursor and how many entries of that batch were
 * already taken). It only reads, never loads a whole hash and never does more than
 * one batch's work per callback.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
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
#include "rconn.h"
#include "subscriber.h"

#define SUBLIST_LIMIT_DEFAULT 100
#define SUBLIST_LIMIT_MAX 1000
#define SUBLIST_SCANS_MAX 32              /* HSCANs per request; then a partial page */
#define SUBLIST_BYTES_MAX (4L << 20)      /* stored JSON per page; then a cursor */
#define SUBLIST_FILTER_MAX 64

struct sublist_op {
	struct http_wait w;               /* first: in the module's list */
	const struct app *app;
	unsigned long limit;
	char interest[SUBLIST_FILTER_MAX + 1];
	char tz[SUBLIST_FILTER_MAX + 1];
	int consent;                      /* a channel, or -1: any */
	uint32_t shards, shard;
	char cursor[24];                  /* the HSCAN cursor of shard */
	unsigned long skip;               /* entries of that batch already taken */
	unsigned scans;
	long bytes;
	unsigned long unreadable;
	cJSON *list;                      /* the page (owned) */
};

static void
op_free(struct sublist_op *op)
{
	http_wait_remove(&op->w);
	cJSON_Delete(op->list);
	free(op);
}

/* 1 when list holds s (both lower case). */
static int
in_list(const struct strlist *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

/* 1 when the stored subscriber passes op's filters, 0 when not, -1 when it does not
 * parse (counted, never shown). */
static int
sub_matches(const struct sublist_op *op, const char *json, size_t len)
{
	struct err e;
	struct subscriber *s = subscriber_parse_stored(json, len, &e);
	int ok;

	if (s == NULL)
		return -1;
	ok = (op->consent < 0 || s->consent[op->consent] > 0) &&
	    (op->tz[0] == '\0' || (s->timezone != NULL && strcmp(s->timezone, op->tz) == 0)) &&
	    (op->interest[0] == '\0' || in_list(&s->interests.categories, op->interest) ||
	    in_list(&s->interests.brands, op->interest) ||
	    in_list(&s->interests.keywords, op->interest));
	subscriber_free(s);
	return ok;
}

static void
answer(struct sublist_op *op, int more)
{
	cJSON *j = cJSON_CreateObject();
	char cur[80];

	if (j == NULL) {
		http_error(op->w.r, 500, NULL, "out of memory");
		return;
	}
	cJSON_AddItemToObject(j, "subscribers", op->list);
	op->list = NULL;
	if (more) {
		snprintf(cur, sizeof(cur), "%" PRIu32 "-%" PRIu32 "-%s-%lu", op->shards,
		    op->shard, op->cursor, op->skip);
		cJSON_AddStringToObject(j, "cursor", cur);
	} else {
		cJSON_AddNullToObject(j, "cursor");
	}
	cJSON_AddNumberToObject(j, "unreadable", (double)op->unreadable);
	http_reply_json(op->w.r, 200, j);
}

static void scan_next(struct sublist_op *op);

static void
on_scan(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct sublist_op *op = arg;
	const struct redisReply *kv;
	size_t i;

	(void)rc;
	if (op->w.r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[0]->len >= sizeof(op->cursor) ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		http_error(op->w.r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	kv = reply->element[1];
	for (i = 2 * (size_t)op->skip; i + 1 < kv->elements; i += 2) {
		const struct redisReply *v = kv->element[i + 1];
		int m;

		if ((unsigned long)cJSON_GetArraySize(op->list) >= op->limit ||
		    op->bytes >= SUBLIST_BYTES_MAX) {
			/* The page is full inside this batch: the next one starts here. */
			op->skip = (unsigned long)(i / 2);
			answer(op, 1);
			goto out;
		}
		if (v->type != REDIS_REPLY_STRING)
			continue;
		if ((m = sub_matches(op, v->str, v->len)) < 0) {
			op->unreadable++;
		} else if (m == 1) {
			cJSON *s = cJSON_ParseWithLength(v->str, v->len);

			if (s != NULL)
				cJSON_AddItemToArray(op->list, s);
			op->bytes += (long)v->len;
		}
	}
	op->skip = 0;
	snprintf(op->cursor, sizeof(op->cursor), "%s", reply->element[0]->str);
	if (strcmp(op->cursor, "0") == 0) {
		op->shard++;
		if (op->shard >= op->shards) {
			answer(op, 0);
			goto out;
		}
	}
	if ((unsigned long)cJSON_GetArraySize(op->list) >= op->limit ||
	    op->bytes >= SUBLIST_BYTES_MAX || op->scans >= SUBLIST_SCANS_MAX) {
		answer(op, 1);
		goto out;
	}
	scan_next(op);
	return;
out:
	op->w.r = NULL;
	op_free(op);
}

static void
scan_next(struct sublist_op *op)
{
	char key[KEYS_SHARD_MAX], count[24];

	op->scans++;
	(void)keys_shard_key(op->shard, KEYS_SUBSCRIBERS, key, sizeof(key));
	snprintf(count, sizeof(count), "%lu", op->limit < 100 ? 100 : op->limit);
	if (rconn_cmd(op->app->cmd, on_scan, op, 0, "HSCAN %s %s COUNT %s", key, op->cursor,
	    count) < 0) {
		http_error(op->w.r, 503, NULL, "storage unavailable; try again");
		op->w.r = NULL;
		op_free(op);
	}
}

/* A decimal of at most 20 digits into *out (max: the largest allowed). 0 or -1. */
static int
dec_parse(const char *s, size_t n, unsigned long long max, unsigned long long *out)
{
	char buf[24], *end;

	if (n == 0 || n > 20 || strspn(s, "0123456789") < n)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	*out = strtoull(buf, &end, 10);
	return errno != 0 || *end != '\0' || *out > max ? -1 : 0;
}

/* "<shards>-<shard>-<hscan cursor>-<skip>" into op. 0, or -1 when it is not one of
 * ours for the layout in force. */
static int
cursor_parse(struct sublist_op *op, const char *c)
{
	unsigned long long v[4];
	const char *p = c;
	int i;

	for (i = 0; i < 4; i++) {
		size_t n = strcspn(p, "-");

		if ((i < 3 && p[n] != '-') || (i == 3 && p[n] != '\0') ||
		    dec_parse(p, n, i == 2 ? UINT64_MAX : i == 3 ? 1000000 : UINT32_MAX,
		    &v[i]) < 0)
			return -1;
		p += n + (i < 3);
	}
	if (v[0] != op->shards || v[1] >= op->shards)
		return -1;
	op->shard = (uint32_t)v[1];
	snprintf(op->cursor, sizeof(op->cursor), "%llu", v[2]);
	op->skip = (unsigned long)v[3];
	return 0;
}

/* A filter value: 1..64 printable ASCII bytes without a space, lower-cased when
 * lower. 0 or -1. */
static int
filter_copy(char *dst, const char *src, int lower)
{
	size_t i, n = strlen(src);

	if (n == 0 || n > SUBLIST_FILTER_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if ((unsigned char)src[i] <= 0x20 || (unsigned char)src[i] >= 0x7f)
			return -1;
		dst[i] = lower ? (char)tolower((unsigned char)src[i]) : src[i];
	}
	dst[n] = '\0';
	return 0;
}

/* GET /v1/subscribers?phone=<E.164>: checked here, answered by admin_byphone.c. Alone:
 * with any other parameter it is 400. */
static void
sub_by_phone(struct admin *a, struct http_req *r)
{
	static const char *const others[] = { "limit", "cursor", "interest", "tz",
	    "consent" };
	const char *phone = http_query(r, "phone");
	size_t i;

	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (http_query(r, others[i]) != NULL) {
			http_error(r, 400, others[i], "%s: not with phone (a number's "
			    "subscribers are one answer)", others[i]);
			return;
		}
	if (!phone_is_e164(phone)) {
		http_error(r, 400, "phone", "phone: not E.164 (+ and 8 to 15 digits)");
		return;
	}
	admin_sub_by_phone(a, r, phone);
}

void
admin_sub_list(struct admin *a, struct http_req *r)
{
	const char *limit = http_query(r, "limit"), *cursor = http_query(r, "cursor");
	const char *interest = http_query(r, "interest"), *tz = http_query(r, "tz");
	const char *consent = http_query(r, "consent");
	struct sublist_op *op;
	unsigned long long lim = SUBLIST_LIMIT_DEFAULT;

	if (http_query(r, "phone") != NULL) {
		sub_by_phone(a, r);
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL || (op->list = cJSON_CreateArray()) == NULL) {
		free(op);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->app = a->app;
	op->shards = keys_shards();
	op->consent = -1;
	snprintf(op->cursor, sizeof(op->cursor), "0");
	if (limit != NULL && (dec_parse(limit, strlen(limit), SUBLIST_LIMIT_MAX, &lim) < 0 ||
	    lim == 0)) {
		http_error(r, 400, "limit", "limit: a whole number from 1 to %d",
		    SUBLIST_LIMIT_MAX);
		goto fail;
	}
	op->limit = (unsigned long)lim;
	if (cursor != NULL && *cursor != '\0' && cursor_parse(op, cursor) < 0) {
		http_error(r, 400, "cursor", "cursor: not a cursor of this listing (start "
		    "again without one)");
		goto fail;
	}
	if (consent != NULL && (op->consent = channel_from_name(consent)) < 0) {
		http_error(r, 400, "consent", "consent: sms or dm");
		goto fail;
	}
	if (interest != NULL && filter_copy(op->interest, interest, 1) < 0) {
		http_error(r, 400, "interest", "interest: 1 to %d printable characters, no "
		    "space", SUBLIST_FILTER_MAX);
		goto fail;
	}
	if (tz != NULL && filter_copy(op->tz, tz, 0) < 0) {
		http_error(r, 400, "tz", "tz: an IANA time zone name");
		goto fail;
	}
	http_wait_add(&a->list_ops, &op->w, r);
	scan_next(op);
	return;
fail:
	op_free(op);
}
