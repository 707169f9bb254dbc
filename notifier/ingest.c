/*
 * ingest.c: deals from the stream to planned jobs (stages: ingest, match, plan).
 *
 * One XREADGROUP at a time on "deals"; the next read waits until every script call
 * of the batch has answered (backpressure, and no entry is ever held twice). Bad
 * entries are dead-lettered and acked atomically (dead.lua); good ones are planned
 * in chunks (plan.lua). Must never ack a deal whose jobs are not written, and never
 * crash or stall on any entry: a failed step leaves the entry pending, to be read
 * again from the group's pending list.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "config.h"
#include "deal.h"
#include "greader.h"
#include "ingest.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "rconn.h"
#include "redisutil.h"
#include "scripts.h"
#include "subscriber.h"
#include "substore.h"

#define INGEST_GROUP "notifier"
#define INGEST_STREAM "deals"
#define INGEST_DEAD_PAYLOAD_MAX 16384
#define INGEST_KEEP_S (7 * 86400)  /* markers outlive the deal by a week */
#define INGEST_RETRY_MS 1000     /* pause after a failed step */

struct ingest {
	struct event_base *base;
	const struct config *cfg;
	struct greader *rd;        /* "deals" in group "notifier", its own connection */
	struct rconn *cmd;         /* scripts, shared */
	struct substore *ss;
	struct matcher *matcher;
	struct metrics *metrics;   /* borrowed, may be NULL */
	int stopping;
	int warmed;                /* the matcher's buffers are sized for the index */
	size_t outstanding;        /* script calls of the current batch */
};

/* Per script call: what to log when it answers. */
struct ingest_call {
	struct ingest *in;
	char entry[64];
	char deal[MODEL_ID_MAX + 1];
	enum script_id script;
	size_t chunk, nchunks, recipients, matched, held_out, paused;
	int64_t landed_ms;
};

/* Reads the pending list again (see greader_reread). */
static void
ingest_reread(struct ingest *in, int failed)
{
	greader_reread(in->rd, failed);
}

static void
ingest_read(struct ingest *in)
{
	greader_read(in->rd);
}

static void
ingest_on_script(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct ingest_call *c = arg;
	struct ingest *in = c->in;

	(void)rc;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		/* Left pending: read again from the pending list. */
		log_warnx("event=%s_failed deal=%s entry=%s err=\"%s\"",
		    script_name(c->script), c->deal, c->entry, r ? r->str : "no reply");
		ingest_reread(in, 1);
	} else if (c->script == SCRIPT_PLAN && r->type == REDIS_REPLY_ARRAY &&
	    r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING) {
		const char *st = r->element[0]->str;

		if (strcmp(st, "duplicate") == 0 && c->chunk == 0)
			log_info("event=deal_duplicate deal=%s entry=%s planned_by=%s", c->deal,
			    c->entry, r->elements > 1 && r->element[1]->type ==
			    REDIS_REPLY_STRING ? r->element[1]->str : "?");
		else if (strcmp(st, "ok") == 0 && c->chunk + 1 == c->nchunks)
			log_info("event=deal_planned deal=%s entry=%s recipients=%zu "
			    "matched=%zu held_out=%zu paused=%zu chunks=%zu ms_since_landed=%lld",
			    c->deal, c->entry, c->recipients, c->matched, c->held_out, c->paused,
			    c->nchunks, (long long)(clock_real_ms() - c->landed_ms));
	}
	free(c);
	if (--in->outstanding == 0)
		ingest_read(in);
}

/* Sends one script call for entry; counts it outstanding. */
static void
ingest_call(struct ingest *in, enum script_id id, const char *entry, const char *deal,
    int nkeys, int nargs, const char **args, const size_t *lens, size_t chunk,
    size_t nchunks, const struct match_list *ml)
{
	struct ingest_call *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_errorx("event=%s_failed entry=%s err=\"out of memory\"", script_name(id),
		    entry);
		ingest_reread(in, 1);
		return;
	}
	c->in = in;
	c->script = id;
	c->chunk = chunk;
	c->nchunks = nchunks;
	if (ml != NULL) {
		c->recipients = ml->n;
		c->matched = ml->matched;
		c->held_out = ml->held_out;
		c->paused = ml->paused;
	}
	c->landed_ms = strtoll(entry, NULL, 10);
	snprintf(c->entry, sizeof(c->entry), "%s", entry);
	snprintf(c->deal, sizeof(c->deal), "%s", deal ? deal : "-");
	if (script_call(in->cmd, id, nkeys, nargs, args, lens, ingest_on_script, c) < 0) {
		log_warnx("event=%s_failed deal=%s entry=%s err=\"redis not ready\"",
		    script_name(id), c->deal, entry);
		ingest_reread(in, 1);
		free(c);
		return;
	}
	in->outstanding++;
}

static void
ingest_dead(struct ingest *in, const char *entry, const struct err *e,
    const char *payload, size_t len)
{
	const char *args[8] = { "deals:dead", INGEST_STREAM, entry, INGEST_GROUP, e->code,
		e->field, e->msg, payload ? payload : "" };
	size_t lens[8];
	int i;

	for (i = 0; i < 7; i++)
		lens[i] = strlen(args[i]);
	lens[7] = payload ? (len > INGEST_DEAD_PAYLOAD_MAX ? INGEST_DEAD_PAYLOAD_MAX : len) : 0;
	log_warnx("event=deal_dead entry=%s reason=%s field=%s err=\"%s\"", entry, e->code,
	    e->field[0] ? e->field : "-", e->msg);
	if (in->metrics != NULL)
		metrics_inc(in->metrics, METRIC_DEALS_DEAD, METRICS_L(e->code), 1);
	ingest_call(in, SCRIPT_DEAD, entry, NULL, 2, 8, args, lens, 0, 1, NULL);
}

static void
ingest_cancel(struct ingest *in, const char *entry, const struct deal *d)
{
	char key[MODEL_ID_MAX + 8], now[32], keep[32];
	const char *args[6] = { key, INGEST_STREAM, entry, INGEST_GROUP, now, keep };

	snprintf(key, sizeof(key), "deal:%s", d->id);
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(keep, sizeof(keep), "%d", INGEST_KEEP_S);
	log_info("event=deal_cancel deal=%s entry=%s", d->id, entry);
	ingest_call(in, SCRIPT_CANCEL, entry, d->id, 2, 6, args, NULL, 0, 1, NULL);
}

/* "<ch>\t<sub>\t<to>\t<rule>\t<text>": the recipient line of a job (see
 * docs/architecture.md). */
static char *
ingest_rcpt_line(const struct match_rcpt *r)
{
	const char *to = r->ch == CH_SMS ? r->sub->phone : r->sub->dm_x;
	const char *rule = r->rule != NULL ? r->rule : "default";
	size_t n = strlen(r->text) + strlen(r->sub->id) + strlen(to ? to : "") +
	    strlen(rule) + 16;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s\t%s\t%s\t%s\t%s", channel_name(r->ch), r->sub->id,
		    to ? to : "", rule, r->text);
	return s;
}

/* Writes recipients [from, to) as one plan chunk of jobs. */
static int
ingest_plan_chunk(struct ingest *in, const char *entry, const struct deal *d,
    const struct match_list *ml, size_t chunk, size_t nchunks, size_t from, size_t to)
{
	size_t jobsz = (size_t)in->cfg->job_size, n = to - from;
	size_t njobs = (n + jobsz - 1) / jobsz;
	size_t nargs = 14 + njobs * 11 + n * 2, i, a = 0, r;
	const char **args = calloc(nargs, sizeof(*args));
	char **lines = calloc(n + 1, sizeof(*lines));
	char (*nfields)[24] = calloc(njobs + 1, sizeof(*nfields));
	char key[MODEL_ID_MAX + 8], sc[32], snc[32], sexp[32], skeep[32], srec[32], snj[32];
	int rv = -1;

	if (args == NULL || lines == NULL || nfields == NULL)
		goto out;
	for (i = 0; i < n; i++)
		if ((lines[i] = ingest_rcpt_line(&ml->v[from + i])) == NULL)
			goto out;
	snprintf(key, sizeof(key), "deal:%s", d->id);
	snprintf(sc, sizeof(sc), "%zu", chunk);
	snprintf(snc, sizeof(snc), "%zu", nchunks);
	snprintf(sexp, sizeof(sexp), "%lld", (long long)d->expires_at);
	snprintf(skeep, sizeof(skeep), "%lld", (long long)(d->expires_at - clock_now() +
	    INGEST_KEEP_S));
	snprintf(srec, sizeof(srec), "%zu", n);
	snprintf(snj, sizeof(snj), "%zu", njobs);
	args[a++] = key;
	args[a++] = INGEST_STREAM;
	args[a++] = "pushes";
	args[a++] = entry;
	args[a++] = sc;
	args[a++] = snc;
	args[a++] = skeep;
	args[a++] = INGEST_GROUP;
	args[a++] = srec;
	args[a++] = snj;
	args[a++] = d->code_pool ? d->code_pool : "";
	args[a++] = d->url;
	args[a++] = d->title;
	args[a++] = d->campaign ? d->campaign : "";
	for (r = 0; r < n; r += jobsz) {
		size_t end = r + jobsz < n ? r + jobsz : n, j = r / jobsz;

		/* deal, entry, exp, camp, pool, then one "r" field per recipient */
		snprintf(nfields[j], sizeof(nfields[j]), "%zu", 5 + (end - r));
		args[a++] = nfields[j];
		args[a++] = "deal";
		args[a++] = d->id;
		args[a++] = "entry";
		args[a++] = entry;
		args[a++] = "exp";
		args[a++] = sexp;
		args[a++] = "camp";
		args[a++] = d->campaign ? d->campaign : "";
		args[a++] = "pool";
		args[a++] = d->code_pool ? d->code_pool : "";
		for (i = r; i < end; i++) {
			args[a++] = "r";
			args[a++] = lines[i];
		}
	}
	ingest_call(in, SCRIPT_PLAN, entry, d->id, 3, (int)a, args, NULL, chunk, nchunks,
	    ml);
	rv = 0;
out:
	if (lines != NULL)
		for (i = 0; i < n; i++)
			free(lines[i]);
	free(lines);
	free(nfields);
	free(args);
	return rv;
}

#define INGEST_HOLDOUT_PAIRS 500   /* (subscriber, rule) pairs per holdout.lua call */

static void
ingest_on_holdout(struct rconn *rc, struct redisReply *r, void *arg)
{
	char *deal = arg;

	(void)rc;
	/* Reporting only: the deal goes out regardless, but say the holdout is short. */
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		log_warnx("event=holdout_not_stored deal=%s err=\"%s\"", deal,
		    r != NULL ? r->str : "no reply");
	free(deal);
}

/* Remembers who was held out and by which rule (holdout.lua), so that conversions by
 * those subscribers count as the holdout's and reports can compare the two groups.
 * Idempotent, so a re-plan after a crash changes nothing. Sent on the script
 * connection before the plan chunks, so Redis runs it first. */
static void
ingest_holdout(struct ingest *in, const struct deal *d, const struct match_list *ml)
{
	const char *argv[4 + 2 * INGEST_HOLDOUT_PAIRS];
	char key[MODEL_ID_MAX + 16], ttl[32];
	size_t i = 0, n;

	if (ml->held_out == 0)
		return;
	snprintf(key, sizeof(key), "holdout:%s", d->id);
	/* Conversions arrive after the deal: keep the audience as long as orders count. */
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(d->expires_at - clock_now() +
	    30 * 86400));
	argv[0] = key;
	argv[1] = d->id;
	argv[2] = d->campaign != NULL ? d->campaign : "";
	argv[3] = ttl;
	while (i < ml->held_out) {
		char *tag = strdup(d->id);

		for (n = 0; n < INGEST_HOLDOUT_PAIRS && i < ml->held_out; n++, i++) {
			argv[4 + 2 * n] = ml->held[i].sub->id;
			argv[5 + 2 * n] = ml->held[i].rule;
		}
		if (tag == NULL || script_call_named(in->cmd, "holdout", 1, (int)(4 + 2 * n),
		    argv, NULL, ingest_on_holdout, tag) < 0) {
			log_warnx("event=holdout_not_stored deal=%s held_out=%zu err=\"%s\"",
			    d->id, ml->held_out, tag ? "redis not ready" : "out of memory");
			free(tag);
			return;
		}
	}
}

static void
ingest_plan(struct ingest *in, const char *entry, const struct deal *d)
{
	struct match_list ml = { 0 };
	struct match_links links;
	struct err err;
	size_t chunk = (size_t)in->cfg->plan_chunk, nchunks, c;

	/* Click links name the push: the entry id is the push id's first part. */
	links.public_url = in->cfg->public_url;
	links.key = (const unsigned char *)in->cfg->click_secret;
	links.keylen = in->cfg->click_secret ? strlen(in->cfg->click_secret) : 0;
	links.entry = entry;
	err_clear(&err);
	if (match_deal_links(in->matcher, d, clock_now(), &links, &ml, &err) < 0) {
		log_errorx("event=match_failed deal=%s entry=%s err=\"%s\"", d->id, entry,
		    err.msg);
		ingest_reread(in, 1);
		return;
	}
	ingest_holdout(in, d, &ml);
	/* Zero recipients is still one (empty) chunk: it sets the marker and acks. */
	nchunks = ml.n == 0 ? 1 : (ml.n + chunk - 1) / chunk;
	for (c = 0; c < nchunks; c++) {
		size_t from = c * chunk, to = from + chunk < ml.n ? from + chunk : ml.n;

		if (ingest_plan_chunk(in, entry, d, &ml, c, nchunks, from, to) < 0) {
			log_errorx("event=plan_failed deal=%s entry=%s err=\"out of memory\"",
			    d->id, entry);
			ingest_reread(in, 1);
			break;
		}
	}
	match_list_free(&ml);
}

static void
ingest_entry(struct ingest *in, const char *entry, const struct redisReply *fields)
{
	const char *payload;
	size_t len = 0;
	struct deal *d;
	struct err err;

	err_clear(&err);
	payload = ru_field(fields, "deal", &len);
	if (payload == NULL) {
		err_set(&err, ERR_INPUT, "missing_field", "deal",
		    "deal: the entry has no field 'deal'");
		ingest_dead(in, entry, &err, NULL, 0);
		return;
	}
	if ((d = deal_parse(payload, len, clock_now(), &err)) == NULL) {
		if (err.kind == ERR_NOMEM) {
			ingest_reread(in, 1);
			return;
		}
		ingest_dead(in, entry, &err, payload, len);
		return;
	}
	if (in->metrics != NULL)
		metrics_inc(in->metrics, METRIC_DEALS_INGESTED, NULL, 1);
	if (d->cancel)
		ingest_cancel(in, entry, d);
	else
		ingest_plan(in, entry, d);
	deal_free(d);
}

/* greader_batch_fn: every entry of a batch, then the next read once all answered. */
static void
ingest_on_batch(void *arg, const struct redisReply *entries)
{
	struct ingest *in = arg;
	const struct redisReply *fields;
	const char *id;
	size_t i;

	in->outstanding++; /* hold the next read until this batch is sent */
	for (i = 0; i < entries->elements; i++) {
		if (ru_entry(entries, i, &id, &fields) < 0) {
			log_warnx("event=read_failed stream=deals err=\"malformed entry\"");
			continue;
		}
		if (fields == NULL) {
			/* Deleted while pending (XDEL/trim): nothing to plan, just ack. */
			struct err err;
			err_set(&err, ERR_INPUT, "deleted", "", "entry was deleted");
			ingest_dead(in, id, &err, NULL, 0);
			continue;
		}
		ingest_entry(in, id, fields);
	}
	--in->outstanding;
}

/* greader_gate_fn: a batch only once the last one is written and the subscribers
 * have loaded (the first time, the matcher's buffers are sized then). */
static int
ingest_gate(void *arg)
{
	struct ingest *in = arg;

	if (in->stopping || in->outstanding > 0 || !rconn_is_ready(in->cmd) ||
	    !substore_ready(in->ss))
		return 0;
	if (!in->warmed) {
		matcher_warm(in->matcher);
		in->warmed = 1;
	}
	return 1;
}

struct ingest *
ingest_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct rconn *cmd, struct substore *ss,
    struct matcher *matcher)
{
	struct greader_config gc = { "ingest", INGEST_STREAM, INGEST_GROUP,
		cfg->consumer, cfg->ingest_batch, cfg->block_ms,
		cfg->redis_command_timeout_ms, INGEST_RETRY_MS, cfg->claim_idle_ms };
	struct ingest *in;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return NULL;
	in->base = base;
	in->cfg = cfg;
	in->cmd = cmd;
	in->ss = ss;
	in->matcher = matcher;
	if ((in->rd = greader_new(base, rcfg, &gc, ingest_on_batch, ingest_gate, in)) ==
	    NULL) {
		free(in);
		return NULL;
	}
	greader_set_cmd(in->rd, cmd);
	return in;
}

void
ingest_set_metrics(struct ingest *in, struct metrics *m)
{
	in->metrics = m;
}

void
ingest_stop(struct ingest *in)
{
	in->stopping = 1;
	greader_stop(in->rd);
}

int
ingest_idle(const struct ingest *in)
{
	return in->outstanding == 0;
}

void
ingest_free(struct ingest *in)
{
	if (in == NULL)
		return;
	greader_free(in->rd);
	free(in);
}
