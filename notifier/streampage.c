/*
 * streampage.c: a Redis stream read a page at a time, newest first (stage: http;
 * include/streampage.h). One XREVRANGE per request; never blocks the loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "formats.h"
#include "http.h"
#include "log.h"
#include "rconn.h"
#include "streampage.h"
#include "streampos.h"

struct page_op {
	struct http_wait w;             /* first: w.r is NULL once detached */
	long limit;
	stream_page_field_fn *field;
	char key[64];
};

static void
on_range(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct page_op *op = arg;
	struct http_req *r = op->w.r;
	cJSON *j = NULL, *arr, *e;
	const char *last = NULL;
	size_t i, k;

	(void)rc;
	http_wait_remove(&op->w);
	if (r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_errorx("event=stream_read_failed key=%s err=\"%.200s\"", op->key,
			    reply->str);
		http_error(r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	if ((j = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(j, "entries")) == NULL)
		goto oom;
	for (i = 0; i < reply->elements; i++) {
		const struct redisReply *en = reply->element[i], *f;

		if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
		    en->element[0]->type != REDIS_REPLY_STRING ||
		    en->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		if ((e = cJSON_CreateObject()) == NULL)
			goto oom;
		cJSON_AddItemToArray(arr, e);
		last = en->element[0]->str;
		cJSON_AddStringToObject(e, "entry", last);
		f = en->element[1];
		for (k = 0; k + 1 < f->elements; k += 2) {
			const struct redisReply *n = f->element[k], *v = f->element[k + 1];

			/* The stored format's version is storage, not content: the
			 * answer is the same in every format (formats.h). */
			if (n->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
			    strcmp(n->str, FORMATS_FIELD) == 0)
				continue;
			if (op->field == NULL || !op->field(e, n->str, v))
				cJSON_AddStringToObject(e, n->str, v->str);
		}
	}
	if (last != NULL && (long)reply->elements == op->limit)
		cJSON_AddStringToObject(j, "next_before", last);
	else
		cJSON_AddNullToObject(j, "next_before");
	http_reply_json(r, 200, j);
	goto out;
oom:
	cJSON_Delete(j);
	http_error(r, 500, NULL, "out of memory");
out:
	free(op);
}

/* 1 when s is a stream entry id "<ms>-<seq>". */
static int
entry_id_ok(const char *s)
{
	unsigned long long ms, seq;

	return streampos_parse(s, &ms, &seq) == 0;
}

void
stream_page(const struct app *app, struct http_wait **waits, struct http_req *r,
    const char *key, long limit_default, long limit_max, stream_page_field_fn *field)
{
	const char *ls = http_query(r, "limit"), *before = http_query(r, "before");
	char start[48], count[24], *end = NULL;
	const char *argv[6];
	struct page_op *op;
	long limit = limit_default;

	if (ls != NULL) {
		errno = 0;
		limit = strtol(ls, &end, 10);
		if (errno != 0 || end == ls || *end != '\0' || limit < 1 || limit > limit_max) {
			http_error(r, 400, "limit", "limit is a number from 1 to %ld", limit_max);
			return;
		}
	}
	if (before != NULL && !entry_id_ok(before)) {
		http_error(r, 400, "before", "before is an entry id (\"1733370000000-0\")"
		    " from a previous answer's next_before");
		return;
	}
	snprintf(start, sizeof(start), "%s%s", before != NULL ? "(" : "",
	    before != NULL ? before : "+");
	snprintf(count, sizeof(count), "%ld", limit);
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->limit = limit;
	op->field = field;
	snprintf(op->key, sizeof(op->key), "%s", key);
	argv[0] = "XREVRANGE";
	argv[1] = op->key;
	argv[2] = start;
	argv[3] = "-";
	argv[4] = "COUNT";
	argv[5] = count;
	http_wait_add(waits, &op->w, r);
	if (rconn_argv(app->cmd, on_range, op, 0, 6, argv, NULL) < 0) {
		http_wait_remove(&op->w);
		free(op);
		http_error(r, 503, NULL, "storage unavailable; try again");
	}
}
