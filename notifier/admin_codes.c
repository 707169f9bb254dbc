/*
 * admin_codes.c: code pools through the admin API (stage: http). POST
 * /v1/codes/<pool> checks the whole body first (one code a line, or a JSON array of
 * strings), then adds the good codes to the set codes:<pool> in SADDs of CODES_BATCH,
 * one after the other so that no callback does more than one batch's work; GET counts
 * what is left (SCARD). A pool is addressed by its name alone: it lives where the
 * deal that names it lives, never on a subscriber's shard. A malformed body adds
 * nothing; a bad line is counted and named by its number, never stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "admin_codes.h"
#include "app.h"
#include "audit.h"
#include "http.h"
#include "log.h"
#include "rconn.h"

#define CODES_KEY_MAX (6 + CODES_POOL_NAME_MAX + 1)

struct codes_op {
	struct http_wait w;           /* first: in the module's list */
	struct admin_codes *ac;       /* NULL once the module is freed */
	char key[CODES_KEY_MAX];
	char **codes;                 /* the good codes, pointing into body (owned) */
	size_t *lens;
	size_t n, next;               /* codes; the first not sent yet */
	char *body;                   /* a copy of the request body (owned) */
	long long added;
	unsigned long received, bad;
	cJSON *bad_lines;             /* [line, ...] (owned until answered) */
};

struct admin_codes {
	const struct app *app;
	struct http_wait *ops;
};

int
codes_pool_key(const char *name, char *buf, size_t size)
{
	const char *p = strncmp(name, "codes:", 6) == 0 ? name + 6 : name;
	size_t n = strlen(p);

	if (size > 0)
		buf[0] = '\0';
	if (n == 0 || n > CODES_POOL_NAME_MAX || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_.:-") != n)
		return -1;
	if ((size_t)snprintf(buf, size, "codes:%s", p) >= size) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

int
codes_code_ok(const char *s, size_t len, const char **why)
{
	size_t i;
	const char *w = NULL;

	if (len == 0)
		w = "empty code";
	else if (len > CODES_CODE_MAX)
		w = "code longer than 64 bytes";
	for (i = 0; w == NULL && i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			w = "code with a space, control or non-ASCII byte";
	if (why != NULL)
		*why = w;
	return w == NULL;
}

static void
op_free(struct codes_op *op)
{
	http_wait_remove(&op->w);
	cJSON_Delete(op->bad_lines);
	free(op->codes);
	free(op->lens);
	free(op->body);
	free(op);
}

/* Adds code s (len bytes) to op, or counts line lineno as bad. 0, or -1 (OOM). */
static int
op_take(struct codes_op *op, char *s, size_t len, unsigned long lineno)
{
	op->received++;
	if (!codes_code_ok(s, len, NULL)) {
		op->bad++;
		if (op->bad <= CODES_BAD_LISTED)
			cJSON_AddItemToArray(op->bad_lines, cJSON_CreateNumber((double)lineno));
		return 0;
	}
	op->codes[op->n] = s;
	op->lens[op->n++] = len;
	return 0;
}

/* The body as lines: blank lines and lines starting with '#' are skipped; "\r\n"
 * ends a line as "\n" does. Codes point into op->body, cut in place. */
static void
parse_lines(struct codes_op *op, size_t len)
{
	char *p = op->body, *end = op->body + len;
	unsigned long lineno = 0;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		p[n] = '\0';
		if (n > 0 && p[0] != '#')
			(void)op_take(op, p, n, lineno);
		p = nl != NULL ? nl + 1 : end;
	}
}

/* The body as a JSON array of strings; an item that is not a string is a bad "line"
 * (its position from 1). 0, or -1 when the body is not such an array (nothing is
 * added then). Codes are copied into op->body, which is large enough. */
static int
parse_json(struct codes_op *op, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(op->body, len), *it;
	char *out = op->body;
	unsigned long pos = 0;

	if (!cJSON_IsArray(j)) {
		cJSON_Delete(j);
		return -1;
	}
	cJSON_ArrayForEach(it, j) {
		size_t n;

		pos++;
		if (!cJSON_IsString(it)) {
			op->received++;
			op->bad++;
			if (op->bad <= CODES_BAD_LISTED)
				cJSON_AddItemToArray(op->bad_lines,
				    cJSON_CreateNumber((double)pos));
			continue;
		}
		/* A JSON string is never longer than its quoted form: it fits. */
		n = strlen(it->valuestring);
		memcpy(out, it->valuestring, n + 1);
		(void)op_take(op, out, n, pos);
		out += n + 1;
	}
	cJSON_Delete(j);
	return 0;
}

/* 1 when a JSON body holds "\u0000", which cJSON would decode into a code cut short
 * at the NUL (a "\\u0000" is refused as well: no code needs it). */
static int
has_json_nul(const char *b, size_t len)
{
	size_t i;

	for (i = 0; i + 6 <= len; i++)
		if (b[i] == '\\' && memcmp(b + i + 1, "u0000", 5) == 0)
			return 1;
	return 0;
}

static void send_batch(struct codes_op *op);

static void
answer(struct codes_op *op, int status, const char *error)
{
	cJSON *j = cJSON_CreateObject();

	if (j == NULL) {
		http_error(op->w.r, 500, NULL, "out of memory");
		return;
	}
	if (error != NULL) {
		cJSON_AddStringToObject(j, "error", error);
		cJSON_AddStringToObject(j, "field", "body");
	}
	cJSON_AddStringToObject(j, "pool", op->key + 6);
	cJSON_AddNumberToObject(j, "received", (double)op->received);
	cJSON_AddNumberToObject(j, "added", (double)op->added);
	cJSON_AddNumberToObject(j, "duplicates", (double)op->n - (double)op->added);
	cJSON_AddNumberToObject(j, "bad", (double)op->bad);
	cJSON_AddItemToObject(j, "bad_lines", op->bad_lines);
	op->bad_lines = NULL;
	http_reply_json(op->w.r, status, j);
}

static void
on_counted(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct codes_op *op = arg;
	cJSON *j;

	(void)rc;
	if (op->w.r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		http_error(op->w.r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	if ((j = cJSON_CreateObject()) == NULL) {
		http_error(op->w.r, 500, NULL, "out of memory");
		goto out;
	}
	cJSON_AddStringToObject(j, "pool", op->key + 6);
	cJSON_AddNumberToObject(j, "remaining", (double)reply->integer);
	http_reply_json(op->w.r, 200, j);
out:
	op->w.r = NULL;
	op_free(op);
}

static void
on_added(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct codes_op *op = arg;

	(void)rc;
	if (op->w.r == NULL || op->ac == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		/* A set: sending the same codes again adds each once. */
		http_error(op->w.r, 503, NULL, "storage unavailable after %lld codes were "
		    "added; send the codes again (a code already in the pool is not added "
		    "twice)", op->added);
		goto out;
	}
	op->added += reply->integer;
	if (op->next < op->n) {
		send_batch(op);
		return;
	}
	log_info("event=codes_added pool=%s added=%lld duplicates=%lld bad=%lu",
	    op->key + 6, op->added, (long long)op->n - op->added, op->bad);
	{
		/* The counts, never the codes: a code is as good as money. */
		char after[160];

		snprintf(after, sizeof(after), "{\"received\":%lu,\"added\":%lld,"
		    "\"duplicates\":%lld,\"bad\":%lu}", op->received, op->added,
		    (long long)op->n - op->added, op->bad);
		audit_record(op->ac->app->cmd, http_req_principal(op->w.r), "codes.add",
		    op->key + 6, NULL, after);
	}
	answer(op, 200, NULL);
out:
	op->w.r = NULL;
	op_free(op);
}

/* SADD of the next CODES_BATCH codes; on_added sends the one after. */
static void
send_batch(struct codes_op *op)
{
	const char *argv[2 + CODES_BATCH];
	size_t lens[2 + CODES_BATCH], k = 0;

	argv[k] = "SADD";
	lens[k++] = 4;
	argv[k] = op->key;
	lens[k++] = strlen(op->key);
	while (op->next < op->n && k < 2 + CODES_BATCH) {
		argv[k] = op->codes[op->next];
		lens[k++] = op->lens[op->next++];
	}
	if (rconn_argv(op->ac->app->cmd, on_added, op, 0, (int)k, argv, lens) < 0) {
		http_error(op->w.r, 503, NULL, "storage unavailable after %lld codes were "
		    "added; send the codes again", op->added);
		op->w.r = NULL;
		op_free(op);
	}
}

/* POST /v1/codes/<pool> */
static void
codes_add(struct codes_op *op, struct http_req *r)
{
	size_t len, i;
	const char *body = http_body(r, &len);

	/* At most one code per two bytes ("c\n"), one more for a last line with no end. */
	if ((op->body = malloc(len + 1)) == NULL ||
	    (op->codes = calloc(len / 2 + 1, sizeof(*op->codes))) == NULL ||
	    (op->lens = calloc(len / 2 + 1, sizeof(*op->lens))) == NULL ||
	    (op->bad_lines = cJSON_CreateArray()) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		goto fail;
	}
	memcpy(op->body, body, len);
	op->body[len] = '\0';
	for (i = 0; i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' ||
	    body[i] == '\n'); i++)
		;
	if (memchr(body, '\0', len) != NULL) {
		http_error(r, 400, "body", "body: a NUL byte; nothing added");
		goto fail;
	}
	if (i < len && body[i] == '[') {
		if (has_json_nul(body, len)) {
			http_error(r, 400, "body", "body: a \\u0000 in a JSON string; nothing "
			    "added");
			goto fail;
		}
		if (parse_json(op, len) < 0) {
			http_error(r, 400, "body", "body: starts with '[' but is not a JSON "
			    "array; nothing added");
			goto fail;
		}
	} else {
		parse_lines(op, len);
	}
	if (op->n == 0) {
		answer(op, 400, op->bad > 0 ? "body: no good code (see bad_lines); nothing "
		    "added" : "body: no code");
		goto fail;
	}
	send_batch(op);
	return;
fail:
	op->w.r = NULL;
	op_free(op);
}

static void
on_codes(struct http_req *r, void *arg)
{
	struct admin_codes *ac = arg;
	struct codes_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	if (codes_pool_key(http_req_rest(r), op->key, sizeof(op->key)) < 0) {
		http_error(r, 400, "path", "not a pool name: 1 to %d of A-Z a-z 0-9 _ . : -,"
		    " after an optional \"codes:\"", CODES_POOL_NAME_MAX);
		free(op);
		return;
	}
	op->ac = ac;
	http_wait_add(&ac->ops, &op->w, r);
	if (http_req_method(r) == EVHTTP_REQ_POST) {
		codes_add(op, r);
		return;
	}
	if (rconn_cmd(ac->app->cmd, on_counted, op, 0, "SCARD %s", op->key) < 0) {
		http_error(r, 503, NULL, "storage unavailable; try again");
		op->w.r = NULL;
		op_free(op);
	}
}

struct admin_codes *
admin_codes_new(const struct app *app)
{
	struct admin_codes *ac = calloc(1, sizeof(*ac));

	if (ac == NULL)
		return NULL;
	ac->app = app;
	/* Reading what is left is a read; filling a pool is a marketer's. */
	if (app->http != NULL && (http_route(app->http, EVHTTP_REQ_GET, "/v1/codes",
	    HTTP_ROLE_VIEWER, on_codes, ac, 0) < 0 || http_route(app->http,
	    EVHTTP_REQ_POST, "/v1/codes", HTTP_ROLE_MARKETER, on_codes, ac, 0) < 0)) {
		free(ac);
		return NULL;
	}
	return ac;
}

void
admin_codes_free(struct admin_codes *ac)
{
	struct http_wait *w;

	if (ac == NULL)
		return;
	/* A batch answered after this must not send the next one. */
	for (w = ac->ops; w != NULL; w = w->next)
		((struct codes_op *)(void *)w)->ac = NULL;
	http_wait_detach_all(&ac->ops);   /* their callbacks only free them */
	free(ac);
}
