/*
 * ctl_import.c: dealpushctl subscribers import, straight to Redis or through the
 * admin API's bulk endpoint (stage: outside the pipeline; it feeds the subscriber
 * keys the notifier loads and tails).
 *
 * Every line is validated here by the daemon's own parser (subscriber_parse), then
 * stored by admin_sub_bulk.lua, a batch of one shard's subscribers a call (keys.h;
 * CTL_IMPORT_BATCH subscribers in the single-instance layout), at most
 * CTL_IMPORT_INFLIGHT calls in flight: the next batches are parsed while Redis stores
 * the last. A subscriber's lines reach Redis in file order (one shard, one connection). It must never store what the daemon would refuse, never lose a line silently
 * (each is stored, reported bad by number, or the run stops saying how many were
 * stored), and never hold more than the batches in flight in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "deal.h"
#include "err.h"
#include "keys.h"
#include "scripts.h"
#include "subbulk.h"
#include "subscriber.h"

#include "ctl_int.h"

#define CTL_IMPORT_BATCH 250          /* subscribers per admin_sub_bulk.lua call */
#define CTL_IMPORT_BATCH_MIN 16       /* ... and per shard, with many shards */
#define CTL_IMPORT_INFLIGHT 3         /* calls in flight, at most */
#define CTL_PROGRESS_NS 250000000LL   /* the progress line is rewritten this often */

/* The progress line on a terminal: one per process (this is a CLI). */
static struct {
	int on;                       /* stderr is a terminal */
	int shown;                    /* a line is on the screen */
	long long start, last;        /* monotonic ns */
} progress;

static long long
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
progress_start(void)
{
	progress.on = isatty(STDERR_FILENO);
	progress.shown = 0;
	progress.start = progress.last = mono_ns();
}

/* Rewrites the progress line in place (at most every CTL_PROGRESS_NS). */
static void
progress_show(unsigned long done, unsigned long bad)
{
	long long now;
	double s;

	if (!progress.on || (now = mono_ns()) - progress.last < CTL_PROGRESS_NS)
		return;
	progress.last = now;
	s = (double)(now - progress.start) / 1e9;
	fprintf(stderr, "\r\033[Kimported %lu, %lu bad lines, %.0f subscribers/s", done, bad,
	    s > 0 ? (double)done / s : 0.0);
	fflush(stderr);
	progress.shown = 1;
}

void
ctl_progress_clear(void)
{
	if (!progress.shown)
		return;
	fputs("\r\033[K", stderr);
	progress.shown = 0;
}

/* Prints the note for the channels a subscriber's own opt-out kept out. */
static void
note_kept_out(const char *file, unsigned long line, const char *channels)
{
	printf("%s:%lu: note: consent for %s not restored: the subscriber opted out after"
	    " the consent time given\n", file, line, channels);
}

/* ---- straight to Redis ---- */

struct import {
	redisContext *c;
	redisContext *rd;             /* the phone index's adds (phone_index.lua) */
	const char *file;
	char sha[41], ix_sha[41];
	struct subbulk **open;        /* per shard: the batch being filled, or NULL */
	uint32_t nshards;
	size_t per;                   /* subscribers per batch */
	struct subbulk *fly[CTL_IMPORT_INFLIGHT]; /* sent, oldest first from oldest */
	size_t oldest;
	size_t inflight;
	struct subbulk *spare;        /* answered, empty, ready to be filled again */
	unsigned long stored;         /* answered by Redis */
};

/* Indexes b's numbers and X ids and reads the numbers' suppression entries
 * (subbulk.h): every phone_index.lua call appended on im->rd, then their replies.
 * Returns 0, or -1 after printing. */
static int
batch_reads(struct import *im, struct subbulk *b)
{
	const char **args, *argv[3 + 2 + 4 * SUBBULK_MAX];
	const size_t *alens;
	size_t lens[3 + 2 + 4 * SUBBULK_MAX];
	char nkeys[16];
	redisReply *r;
	int i, j, n = subbulk_reads(b), argc, nk;

	for (i = 0; i < n; i++) {
		if ((argc = subbulk_read_argv(b, i, &args, &alens, &nk)) < 0)
			goto fail;
		snprintf(nkeys, sizeof(nkeys), "%d", nk);
		argv[0] = "EVALSHA";
		argv[1] = im->ix_sha;
		argv[2] = nkeys;
		for (j = 0; j < 3; j++)
			lens[j] = strlen(argv[j]);
		for (j = 0; j < argc; j++) {
			argv[3 + j] = args[j];
			lens[3 + j] = alens[j];
		}
		if (redisAppendCommandArgv(im->rd, 3 + argc, argv, lens) != REDIS_OK)
			goto fail;
	}
	for (i = 0; i < n; i++) {
		r = NULL;
		if (redisGetReply(im->rd, (void **)&r) != REDIS_OK || r == NULL)
			goto fail;
		if (subbulk_read_reply(b, i, r) < 0) {
			ctl_progress_clear();
			fprintf(stderr, "dealpushctl: redis: indexing the numbers: "
			    "%s\n", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
			freeReplyObject(r);
			return -1;
		}
		freeReplyObject(r);
	}
	return 0;
fail:
	ctl_progress_clear();
	fprintf(stderr, "dealpushctl: redis: %s\n", im->rd->errstr[0] ? im->rd->errstr :
	    "out of memory");
	return -1;
}

/* Sends shard k's batch (appended and written out at once, so Redis works on it
 * while the next one is parsed), after its suppression entries are read. Returns 0,
 * or -1 after printing. */
static int
batch_send(struct import *im, uint32_t k)
{
	struct subbulk *b = im->open[k];
	const char **argv;
	const size_t *lens;
	int argc, done = 0;

	if (batch_reads(im, b) < 0)
		return -1;
	argc = subbulk_evalsha(b, im->sha, (long long)clock_now(), &argv, &lens);
	if (redisAppendCommandArgv(im->c, argc, argv, lens) != REDIS_OK)
		goto fail;
	while (!done)
		if (redisBufferWrite(im->c, &done) != REDIS_OK)
			goto fail;
	im->fly[(im->oldest + im->inflight) % CTL_IMPORT_INFLIGHT] = b;
	im->inflight++;
	im->open[k] = NULL;
	return 0;
fail:
	ctl_progress_clear();
	fprintf(stderr, "dealpushctl: redis: %s\n", im->c->errstr[0] ? im->c->errstr :
	    "out of memory");
	return -1;
}

/* Reads the answer of the oldest batch in flight and empties it. Returns 0, or -1
 * after printing (its subscribers may or may not be stored). */
static int
batch_answer(struct import *im)
{
	struct subbulk *b = im->fly[im->oldest];
	redisReply *r = NULL;
	long long counts[3];
	int nkept, k, rc = -1;

	if (redisGetReply(im->c, (void **)&r) != REDIS_OK || r == NULL) {
		ctl_progress_clear();
		fprintf(stderr, "dealpushctl: redis: %s\n", im->c->errstr[0] ?
		    im->c->errstr : "no reply");
		return -1;
	}
	if ((nkept = subbulk_reply(r, subbulk_count(b), counts)) < 0) {
		ctl_progress_clear();
		fprintf(stderr, "dealpushctl: redis: storing subscribers (lines %lu to %lu):"
		    " %s\n", subbulk_line(b, 0), subbulk_line(b, subbulk_count(b) - 1),
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		goto out;
	}
	for (k = 0; k < nkept; k++) {
		const char *ch;
		size_t pos;

		subbulk_kept(r, k, &pos, &ch);
		ctl_progress_clear();
		note_kept_out(im->file, subbulk_line(b, pos), ch);
	}
	im->stored += (unsigned long)counts[0];
	subbulk_reset(b);
	im->fly[im->oldest] = NULL;
	im->inflight--;
	im->oldest = (im->oldest + 1) % CTL_IMPORT_INFLIGHT;
	if (im->spare == NULL)
		im->spare = b;
	else
		subbulk_free(b);
	rc = 0;
out:
	freeReplyObject(r);
	return rc;
}

/* The batch being filled for shard k (a spare, or a new one). NULL on OOM. */
static struct subbulk *
batch_open(struct import *im, uint32_t k)
{
	struct subbulk *b = im->open[k];

	if (b != NULL)
		return b;
	if ((b = im->spare) != NULL)
		im->spare = NULL;
	else if ((b = subbulk_new(im->per, "import")) == NULL)
		return NULL;
	if (subbulk_set_shard(b, k) < 0) {
		subbulk_free(b);
		return NULL;
	}
	return im->open[k] = b;
}

/* Sends shard k's batch, first answering the oldest call when as many are in flight
 * as allowed. Returns 0, or -1 after printing. */
static int
batch_flush(struct import *im, uint32_t k)
{
	if (im->inflight == CTL_IMPORT_INFLIGHT && batch_answer(im) < 0)
		return -1;
	return batch_send(im, k);
}

int
ctl_import_redis(redisContext *c, redisContext *rd, const char *path)
{
	struct ctl_input in;
	struct import im;
	unsigned long bad = 0;
	int rc = CTL_FAIL, r;
	struct subbulk *b;
	uint32_t k;
	size_t i;

	memset(&im, 0, sizeof(im));
	im.c = c;
	im.rd = rd;
	im.nshards = keys_shards();
	im.per = CTL_IMPORT_BATCH / im.nshards;
	if (im.per < CTL_IMPORT_BATCH_MIN)
		im.per = CTL_IMPORT_BATCH_MIN;
	if (ctl_load_script(c, "admin_sub_bulk", im.sha) < 0 ||
	    ctl_load_script(rd, "phone_index", im.ix_sha) < 0)
		return CTL_FAIL;
	if (ctl_input_open(&in, path) < 0)
		return CTL_FAIL;
	im.file = in.name;
	if ((im.open = calloc(im.nshards, sizeof(*im.open))) == NULL)
		goto oom;
	progress_start();
	while ((r = ctl_input_next_entry(&in, &bad)) == 1) {
		struct subscriber *s;
		struct err e;
		char *canon = NULL;

		err_clear(&e);
		if ((s = subscriber_parse_canon(in.buf, in.len, &canon, &e)) == NULL) {
			if (e.kind == ERR_NOMEM)
				goto oom;
			ctl_report_bad_line(&in, e.msg);
			bad++;
			continue;
		}
		k = keys_shard_of(s->id);
		if ((b = batch_open(&im, k)) == NULL) {
			free(canon);
			subscriber_free(s);
			goto oom;
		}
		r = subbulk_add(b, s, canon, in.lineno);
		subscriber_free(s);
		if (r < 0)
			goto oom;
		if (subbulk_count(b) < im.per)
			continue;
		if (batch_flush(&im, k) < 0)
			goto out;
		progress_show(im.stored, bad);
	}
	if (r < 0)
		goto out;
	for (k = 0; k < im.nshards; k++)
		if (im.open[k] != NULL && subbulk_count(im.open[k]) > 0 &&
		    batch_flush(&im, k) < 0)
			goto out;
	while (im.inflight > 0)
		if (batch_answer(&im) < 0)
			goto out;
	ctl_progress_clear();
	printf("imported %lu subscribers, %lu bad lines\n", im.stored, bad);
	rc = bad > 0 ? CTL_BAD_INPUT : CTL_OK;
	goto out;
oom:
	ctl_progress_clear();
	fprintf(stderr, "dealpushctl: out of memory\n");
out:
	if (rc == CTL_FAIL)
		fprintf(stderr, "dealpushctl: stopped; at least %lu subscribers were stored"
		    " before the error\n", im.stored);
	for (k = 0; im.open != NULL && k < im.nshards; k++)
		subbulk_free(im.open[k]);
	free(im.open);
	for (i = 0; i < CTL_IMPORT_INFLIGHT; i++)
		subbulk_free(im.fly[i]);
	subbulk_free(im.spare);
	ctl_input_close(&in);
	return rc;
}

/* ---- through the admin API ---- */

#define CTL_API_BULK_LINES 500        /* lines a request (admin_bulk.c ADMIN_BULK_MAX) */

/* One request body being built: lines of the input file joined by "\n", at most
 * CTL_API_BODY_MAX bytes and CTL_API_BULK_LINES lines, and the file line of each. */
struct api_body {
	char *p;                      /* CTL_API_BODY_MAX bytes */
	size_t len, n;
	unsigned long lines[CTL_API_BULK_LINES];
};

/* Prints the bad lines and notes of one bulk answer, mapping its line numbers (of the
 * body) back to the file's. Returns the number stored, or -1 when the answer is not
 * a bulk report (printed). */
static long
api_report(const char *file, const struct api_body *body, const struct ctl_buf *b,
    unsigned long *bad)
{
	cJSON *j = cJSON_Parse(b->p), *o;
	const cJSON *stored = cJSON_GetObjectItemCaseSensitive(j, "stored");
	const cJSON *nbad = cJSON_GetObjectItemCaseSensitive(j, "bad_lines");
	long rc = -1;

	if (!cJSON_IsNumber(stored) || !cJSON_IsNumber(nbad)) {
		ctl_progress_clear();
		fprintf(stderr, "dealpushctl: the API's answer is not a bulk report\n");
		goto out;
	}
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(j, "bad")) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "line");
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
		size_t k = cJSON_IsNumber(l) && l->valuedouble >= 1 ? (size_t)l->valuedouble : 0;

		ctl_progress_clear();
		fprintf(stderr, "%s:%lu: error: %s\n", file, k >= 1 && k <= body->n ?
		    body->lines[k - 1] : 0, cJSON_IsString(e) ? e->valuestring : "refused");
	}
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(j, "consent_kept_out")) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "line"), *ch;
		size_t k = cJSON_IsNumber(l) && l->valuedouble >= 1 ? (size_t)l->valuedouble : 0;

		cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(o, "channels"))
			if (cJSON_IsString(ch) && k >= 1 && k <= body->n) {
				ctl_progress_clear();
				note_kept_out(file, body->lines[k - 1], ch->valuestring);
			}
	}
	*bad += (unsigned long)nbad->valuedouble;
	rc = (long)stored->valuedouble;
out:
	cJSON_Delete(j);
	return rc;
}

/* Sends body (when it holds lines) and empties it. Returns the number stored, or -1
 * after printing. */
static long
api_flush(struct ctl_api *api, const char *file, struct api_body *body,
    unsigned long *bad)
{
	struct ctl_buf b;
	char msg[512];
	long st, stored = -1;

	if (body->n == 0)
		return 0;
	if ((st = ctl_api_call(api, "POST", "/v1/bulk/subscribers", body->p, body->len,
	    "application/x-ndjson", &b)) < 0)
		return -1;
	if (st == 200) {
		stored = api_report(file, body, &b, bad);
	} else if (!ctl_api_fatal(st, &b)) {
		ctl_progress_clear();
		fprintf(stderr, "dealpushctl: %s: lines %lu to %lu: API answered %ld: %s\n",
		    file, body->lines[0], body->lines[body->n - 1], st,
		    ctl_api_error_text(&b, msg, sizeof(msg)));
	}
	free(b.p);
	body->len = body->n = 0;
	return stored;
}

int
ctl_import_api(struct ctl_api *api, const char *path)
{
	struct ctl_input in;
	struct api_body body;
	unsigned long imported = 0, bad = 0;
	long got;
	int rc = CTL_FAIL, r;

	memset(&body, 0, sizeof(body));
	if ((body.p = malloc(CTL_API_BODY_MAX)) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		return CTL_FAIL;
	}
	if (ctl_input_open(&in, path) < 0) {
		free(body.p);
		return CTL_FAIL;
	}
	progress_start();
	while ((r = ctl_input_next_entry(&in, &bad)) == 1) {
		/* Lines are joined by "\n", none after the last: a line of CTL_LINE_MAX
		 * (= CTL_API_BODY_MAX) bytes still fits a body of its own. */
		if (body.n == CTL_API_BULK_LINES ||
		    body.len + (body.n > 0) + in.len > CTL_API_BODY_MAX) {
			if ((got = api_flush(api, in.name, &body, &bad)) < 0)
				goto out;
			imported += (unsigned long)got;
			progress_show(imported, bad);
		}
		if (body.n > 0)
			body.p[body.len++] = '\n';
		memcpy(body.p + body.len, in.buf, in.len);
		body.len += in.len;
		body.lines[body.n++] = in.lineno;
	}
	if (r < 0)
		goto out;
	if ((got = api_flush(api, in.name, &body, &bad)) < 0)
		goto out;
	imported += (unsigned long)got;
	ctl_progress_clear();
	printf("imported %lu subscribers, %lu bad lines\n", imported, bad);
	rc = bad > 0 ? CTL_BAD_INPUT : CTL_OK;
out:
	if (rc == CTL_FAIL)
		fprintf(stderr, "dealpushctl: stopped; %lu subscribers were stored before the"
		    " error\n", imported);
	free(body.p);
	ctl_input_close(&in);
	return rc;
}
