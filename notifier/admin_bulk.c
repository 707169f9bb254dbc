/*
 * admin_bulk.c: POST /v1/bulk/subscribers (stage: http): a body of JSON lines, one
 * subscriber a line, as dealpushctl subscribers import reads a file (docs/admin.md).
 *
 * Each line is validated by subscriber_parse, as PUT /v1/subscribers/<id> validates
 * its body; the good ones are stored by one admin_sub_bulk.lua call (the suppression
 * list, the consent record and the change stream exactly as for single puts:
 * lib/subput.lua); the answer reports the bad lines by number with the reason. A body
 * is at most the server's body cap (http.max_body: 64 KiB; 413 past it) and
 * ADMIN_BULK_MAX subscribers (400 past it: nothing stored). It never blocks the loop:
 * the parse is bounded by the body cap, the store is one script call.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "audit.h"
#include "admin_bulk.h"
#include "app.h"
#include "clock.h"
#include "err.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "rconn.h"
#include "scripts.h"
#include "durable.h"
#include "config.h"
#include "subbulk.h"
#include "subscriber.h"

#define ADMIN_BULK_MAX 500            /* subscribers a request, at most */
#define ADMIN_BULK_BAD_MAX 1000       /* bad lines named in an answer, at most */

/* One request waiting on Redis. Owned by its callback, which frees it. */
struct bulk_op {
	struct admin_bulk *ab;        /* NULL once admin_bulk_free ran */
	struct http_req *r;           /* NULL once answered or forgotten */
	struct bulk_op *prev, *next;
	struct subbulk **b;           /* one batch per shard with subscribers (keys.h):
	                               * a script call holds one shard */
	uint32_t nb;
	size_t reads;                 /* suppression reads not answered yet */
	size_t out;                   /* script calls not answered yet */
	long long counts[3];          /* their stored, created, suppressed summed */
	int failed;                   /* one of them failed: 503 */
	cJSON *answer;                /* {"bad": [...], "consent_kept_out": [...]} */
	unsigned long nbad;           /* bad lines, also past ADMIN_BULK_BAD_MAX */
};

struct admin_bulk {
	const struct app *app;
	struct bulk_op *ops;
};

static void
op_free(struct bulk_op *op)
{
	if (op->ab != NULL) {
		if (op->prev != NULL)
			op->prev->next = op->next;
		else
			op->ab->ops = op->next;
		if (op->next != NULL)
			op->next->prev = op->prev;
	}
	for (uint32_t k = 0; op->b != NULL && k < op->nb; k++)
		subbulk_free(op->b[k]);
	free(op->b);
	cJSON_Delete(op->answer);
	free(op);
}

/* Adds {"line": n, "error": msg, "field": f} to the answer's "bad" (f omitted when
 * ""), up to ADMIN_BULK_BAD_MAX; past it only "bad_lines" counts. */
static void
bad_line(cJSON *answer, unsigned long line, const char *msg, const char *field)
{
	cJSON *bad = cJSON_GetObjectItemCaseSensitive(answer, "bad");
	cJSON *o;

	if (cJSON_GetArraySize(bad) >= ADMIN_BULK_BAD_MAX ||
	    (o = cJSON_CreateObject()) == NULL)
		return;
	cJSON_AddNumberToObject(o, "line", (double)line);
	cJSON_AddStringToObject(o, "error", msg);
	if (field != NULL && *field != '\0')
		cJSON_AddStringToObject(o, "field", field);
	cJSON_AddItemToArray(bad, o);
}

/* Adds {"line": n, "channels": ["sms", ...]} to the answer's "consent_kept_out". */
static void
kept_out(cJSON *answer, unsigned long line, const char *csv)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(answer, "consent_kept_out");
	cJSON *o = cJSON_CreateObject(), *chs;
	const char *p = csv;

	if (o == NULL)
		return;
	cJSON_AddNumberToObject(o, "line", (double)line);
	if ((chs = cJSON_AddArrayToObject(o, "channels")) != NULL) {
		while (*p != '\0') {
			size_t n = strcspn(p, ",");
			char ch[16];

			snprintf(ch, sizeof(ch), "%.*s", (int)n, p);
			cJSON_AddItemToArray(chs, cJSON_CreateString(ch));
			p += n + (p[n] == ',');
		}
	}
	cJSON_AddItemToArray(arr, o);
}

/* Sends the answer: takes op->answer. */
static void
answer(struct bulk_op *op, long long stored, long long created, long long suppressed)
{
	cJSON *j = op->answer;

	op->answer = NULL;
	cJSON_AddNumberToObject(j, "stored", (double)stored);
	cJSON_AddNumberToObject(j, "created", (double)created);
	cJSON_AddNumberToObject(j, "suppressed", (double)suppressed);
	cJSON_AddNumberToObject(j, "bad_lines", (double)op->nbad);
	log_info("event=admin_sub_bulk stored=%lld created=%lld suppressed=%lld bad=%lu",
	    stored, created, suppressed, op->nbad);
	if (op->ab != NULL) {
		char after[160];

		snprintf(after, sizeof(after), "{\"stored\":%lld,\"created\":%lld,"
		    "\"suppressed\":%lld,\"bad_lines\":%lu}", stored, created, suppressed,
		    op->nbad);
		audit_record(op->ab->app->cmd, http_req_principal(op->r), "subscribers.bulk",
		    "-", NULL, after);
	}
	http_reply_json(op->r, 200, j);
	op->r = NULL;
}

/* One shard's call answered; the request is answered with the last of them. */
struct bulk_call {
	struct bulk_op *op;
	struct subbulk *b;
};

static void
on_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct bulk_call *call = arg;
	struct bulk_op *op = call->op;
	long long counts[3];
	int nkept, k;

	(void)rc;
	if (op->r == NULL || op->failed)
		goto done;
	if ((nkept = subbulk_reply(reply, subbulk_count(call->b), counts)) < 0) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_errorx("event=admin_redis_error op=sub_bulk err=\"%.200s\"",
			    reply->str);
		op->failed = 1;
		goto done;
	}
	for (k = 0; k < nkept; k++) {
		const char *ch;
		size_t pos;

		subbulk_kept(reply, k, &pos, &ch);
		kept_out(op->answer, subbulk_line(call->b, pos), ch);
	}
	for (k = 0; k < 3; k++)
		op->counts[k] += counts[k];
done:
	free(call);
	if (--op->out > 0)
		return;
	if (op->r != NULL && op->failed) {
		/* Other shards' subscribers may be stored: a bulk put is idempotent. */
		http_error(op->r, 503, NULL, "storage unavailable; try again");
		op->r = NULL;
	} else if (op->r != NULL) {
		answer(op, op->counts[0], op->counts[1], op->counts[2]);
	}
	op_free(op);
}

/* One read of the suppression list for one batch (subbulk_reads). */
struct bulk_read {
	struct bulk_op *op;
	struct subbulk *b;
	int i;
};

static size_t op_send(struct admin_bulk *ab, struct bulk_op *op);

/* An index add answered; with the last, the script calls go (or the request
 * fails). */
static void
on_read(struct rconn *rc, struct redisReply *reply, int durable, void *arg)
{
	struct bulk_read *rd = arg;
	struct bulk_op *op = rd->op;

	(void)rc;
	if (op->r != NULL && !op->failed && (!durable ||
	    subbulk_read_reply(rd->b, rd->i, reply) < 0)) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_errorx("event=admin_redis_error op=sub_bulk_suppressed "
			    "err=\"%.200s\"", reply->str);
		op->failed = 1;
	}
	free(rd);
	if (--op->reads > 0)
		return;
	if (op->r != NULL && !op->failed && op->ab != NULL && op_send(op->ab, op) > 0)
		return;
	if (op->r != NULL)
		http_error(op->r, 503, NULL, "storage unavailable; try again");
	op_free(op);
}

/* Indexes every batch's numbers and X ids, reading the numbers' suppression entries
 * (subbulk.h), the calls following when the last add answers. Returns 1 when reads went out (op is
 * theirs now), 0 when none were needed, -1 when none could be sent (op is the
 * caller's). */
static int
op_read(struct admin_bulk *ab, struct bulk_op *op)
{
	const char **argv;
	const size_t *lens;
	struct durable_config wait;
	uint32_t k;
	int i, n, argc, nkeys;

	wait.replicas = ab->app->cfg->wait_replicas;
	wait.timeout_ms = ab->app->cfg->wait_timeout_ms;
	op->reads = 1;   /* held until every read is sent */
	for (k = 0; k < op->nb && !op->failed; k++) {
		if (op->b[k] == NULL)
			continue;
		n = subbulk_reads(op->b[k]);
		for (i = 0; i < n && !op->failed; i++) {
			struct bulk_read *rd = calloc(1, sizeof(*rd));

			if (rd != NULL) {
				rd->op = op;
				rd->b = op->b[k];
				rd->i = i;
			}
			if (rd == NULL || (argc = subbulk_read_argv(op->b[k], i, &argv,
			    &lens, &nkeys)) < 0 || durable_script_call(ab->app->cmd, &wait,
			    "phone_index", nkeys, argc, argv, lens, on_read, rd) < 0) {
				free(rd);
				op->failed = 1;
				break;
			}
			op->reads++;
		}
	}
	if (--op->reads > 0)
		return 1;      /* a failure is answered by the last read */
	return op->failed ? -1 : 0;
}

/* The batch of s's shard, made when it is the first of its shard. NULL on OOM. */
static struct subbulk *
op_batch(struct bulk_op *op, const char *id)
{
	uint32_t k = keys_shard_of(id);

	if (op->b[k] == NULL && ((op->b[k] = subbulk_new(ADMIN_BULK_MAX, "api")) == NULL ||
	    subbulk_set_shard(op->b[k], k) < 0))
		return NULL;
	return op->b[k];
}

/* Sends one call per shard batch. Returns the calls sent (the last reply answers
 * and frees op); 0 when none could be sent (op is the caller's). */
static size_t
op_send(struct admin_bulk *ab, struct bulk_op *op)
{
	const char **args;
	const size_t *lens;
	uint32_t k;
	int nargs;

	op->out = 1;   /* held until every call is sent */
	for (k = 0; k < op->nb; k++) {
		struct bulk_call *call;

		if (op->b[k] == NULL || subbulk_count(op->b[k]) == 0)
			continue;
		if ((call = calloc(1, sizeof(*call))) == NULL) {
			op->failed = 1;
			break;
		}
		call->op = op;
		call->b = op->b[k];
		nargs = subbulk_args(op->b[k], (long long)clock_now(), &args, &lens);
		if (script_call_named(ab->app->cmd, "admin_sub_bulk", SUBBULK_NKEYS, nargs,
		    args, lens, on_reply, call) < 0) {
			free(call);
			op->failed = 1;
			break;
		}
		op->out++;
	}
	if (op->out == 1) {
		op->out = 0;
		return 0;
	}
	/* The hold goes: the answer goes with the last reply (never run before we
	 * return to the loop). */
	op->out--;
	return 1;
}

/* The next line of body[*pos..len) (without its "\n" or "\r\n") in *line, *n;
 * moves *pos past it. Returns 0 at the end. */
static int
next_line(const char *body, size_t len, size_t *pos, const char **line, size_t *n)
{
	const char *nl;

	if (*pos >= len)
		return 0;
	*line = body + *pos;
	nl = memchr(*line, '\n', len - *pos);
	*n = nl != NULL ? (size_t)(nl - *line) : len - *pos;
	*pos += *n + (nl != NULL);
	if (*n > 0 && (*line)[*n - 1] == '\r')
		(*n)--;
	return 1;
}

/* 1 when line is blank or a # comment (skipped, as dealpushctl skips them). */
static int
skippable(const char *line, size_t n)
{
	size_t i = 0;

	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i == n || line[i] == '#';
}

/* POST /v1/bulk/subscribers */
static void
on_bulk(struct http_req *r, void *arg)
{
	struct admin_bulk *ab = arg;
	size_t len, pos = 0, n;
	const char *body = http_body(r, &len), *line;
	unsigned long lineno = 0;
	struct bulk_op *op;
	int added;

	size_t count = 0;
	struct subbulk *b;

	if ((op = calloc(1, sizeof(*op))) == NULL ||
	    (op->b = calloc(op->nb = keys_shards(), sizeof(*op->b))) == NULL ||
	    (op->answer = cJSON_CreateObject()) == NULL ||
	    cJSON_AddArrayToObject(op->answer, "bad") == NULL ||
	    cJSON_AddArrayToObject(op->answer, "consent_kept_out") == NULL)
		goto oom;
	while (next_line(body, len, &pos, &line, &n)) {
		struct subscriber *s;
		struct err e;
		char *canon = NULL;

		lineno++;
		if (skippable(line, n))
			continue;
		err_clear(&e);
		if ((s = subscriber_parse_canon(line, n, &canon, &e)) == NULL) {
			if (e.kind == ERR_NOMEM)
				goto oom;
			bad_line(op->answer, lineno, e.msg, e.field);
			op->nbad++;
			continue;
		}
		if (count == ADMIN_BULK_MAX) {
			free(canon);
			subscriber_free(s);
			http_error(r, 400, "body", "more than %d subscribers in one request"
			    " (line %lu); nothing was stored", ADMIN_BULK_MAX, lineno);
			op_free(op);
			return;
		}
		if ((b = op_batch(op, s->id)) == NULL) {
			free(canon);
			subscriber_free(s);
			goto oom;
		}
		added = subbulk_add(b, s, canon, lineno);
		subscriber_free(s);
		if (added < 0)
			goto oom;
		count++;
	}
	op->r = r;
	if (count == 0) {
		answer(op, 0, 0, 0);
		op_free(op);
		return;
	}
	op->ab = ab;
	op->next = ab->ops;
	if (ab->ops != NULL)
		ab->ops->prev = op;
	ab->ops = op;
	switch (op_read(ab, op)) {
	case 1:
		return;
	case 0:
		if (op_send(ab, op) > 0)
			return;
		break;
	default:
		break;
	}
	http_error(r, 503, NULL, "storage unavailable; try again");
	op_free(op);
	return;
oom:
	if (op != NULL)
		op_free(op);
	http_error(r, 500, NULL, "out of memory");
}

struct admin_bulk *
admin_bulk_new(const struct app *app)
{
	struct admin_bulk *ab = calloc(1, sizeof(*ab));

	if (ab == NULL)
		return NULL;
	ab->app = app;
	if (app->http != NULL && http_route(app->http, EVHTTP_REQ_POST,
	    "/v1/bulk/subscribers", HTTP_ROLE_ADMIN, on_bulk, ab, HTTP_EXACT) < 0) {
		free(ab);
		return NULL;
	}
	return ab;
}

void
admin_bulk_free(struct admin_bulk *ab)
{
	struct bulk_op *op, *next;

	if (ab == NULL)
		return;
	for (op = ab->ops; op != NULL; op = next) {
		next = op->next;
		op->ab = NULL;      /* its callback only frees it */
		op->r = NULL;       /* http_free answers it 503 */
		op->prev = op->next = NULL;
	}
	free(ab);
}
