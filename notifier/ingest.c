/*
 * ingest.c: deals from the stream to planned jobs (stages: ingest, match, plan).
 *
 * One XREADGROUP at a time on "deals"; the next read waits until every script call
 * of the batch has answered (backpressure, and no entry is ever held twice). Bad
 * entries are dead-lettered and acked atomically (dead.lua); good ones are planned
 * in chunks (plan.lua); updates of a planned deal are ingest_update.c's. Must never
 * ack a deal whose jobs are not written, and never crash or stall on any entry: a
 * failed step leaves the entry pending, to be read again from the group's pending
 * list.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "config.h"
#include "deal.h"
#include "greader.h"
#include "ingest.h"
#include "ingest_int.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "rconn.h"
#include "redisutil.h"
#include "scripts.h"
#include "subscriber.h"
#include "substore.h"

/* Per script call: what to log when it answers. */
struct ingest_call {
	struct ingest_job *job;
	const char *script;        /* static */
	size_t chunk;
};

static void ingest_tries(struct ingest *in, const char *entry, const char *deal,
    const char *why);

static void
ingest_read(struct ingest *in)
{
	greader_read(in->rd);
}

/* A new job for entry; it holds the next read back until ingest_job_put drops its
 * last reference. NULL on OOM (then the pending list is read again later). */
struct ingest_job *
ingest_job_new(struct ingest *in, const char *entry, const char *deal)
{
	struct ingest_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_errorx("event=ingest_failed entry=%s err=\"out of memory\"", entry);
		greader_reread(in->rd, 1);
		return NULL;
	}
	j->in = in;
	j->refs = 1;
	j->landed_ms = strtoll(entry, NULL, 10);
	snprintf(j->entry, sizeof(j->entry), "%s", entry);
	snprintf(j->deal, sizeof(j->deal), "%s", deal ? deal : "-");
	in->outstanding++;
	return j;
}

/* Records a failed step. The first failure decides: later ones of the same attempt
 * are mostly its consequences (a chunk after a failed one is out of order). counts:
 * it belongs to the entry (a script error about its data), not to Redis or to us. */
void
ingest_job_fail(struct ingest_job *j, int counts, const char *step, const char *why)
{
	if (j->failed)
		return;
	j->failed = 1;
	j->counts = counts;
	snprintf(j->err, sizeof(j->err), "%s: %s", step, why);
}

void
ingest_job_put(struct ingest_job *j)
{
	struct ingest *in = j->in;

	if (--j->refs > 0)
		return;
	if (j->failed && j->counts && in->cfg->max_tries > 0)
		ingest_tries(in, j->entry, j->deal, j->err);
	else if (j->failed)
		greader_reread(in->rd, 1);
	free(j);
	if (--in->outstanding == 0)
		ingest_read(in);
}

/* 1 when an error reply is about the entry (its data, the script's checks), so that
 * trying it again will fail again; 0 for Redis refusing any work for now. */
int
ingest_error_counts(const struct redisReply *r)
{
	static const char *const transient[] = { "LOADING", "BUSY", "NOSCRIPT", "OOM",
		"MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "MISCONF",
		"NOAUTH", "NOPERM", "EXECABORT" };
	size_t i;

	for (i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
		if (ru_is_error(r, transient[i]))
			return 0;
	return 1;
}

static void
ingest_on_tries(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct ingest_job *j = arg;
	struct ingest *in = j->in;

	(void)rc;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_INTEGER) {
		if (strcmp(r->element[0]->str, "dead") == 0) {
			log_warnx("event=deal_dead entry=%s deal=%s reason=max_tries tries=%lld "
			    "err=\"%s\"", j->entry, j->deal, r->element[1]->integer, j->err);
			if (in->metrics != NULL)
				metrics_inc(in->metrics, METRIC_DEALS_DEAD, METRICS_L("max_tries"), 1);
		} else {
			log_warnx("event=deal_failed entry=%s deal=%s tries=%lld max_tries=%ld "
			    "err=\"%s\"", j->entry, j->deal, r->element[1]->integer,
			    in->cfg->max_tries, j->err);
			greader_reread(in->rd, 1);
		}
	} else {
		log_warnx("event=deal_failed entry=%s deal=%s tries=? err=\"%s\" "
		    "count_err=\"%s\"", j->entry, j->deal, j->err,
		    r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		greader_reread(in->rd, 1);
	}
	free(j);
	if (--in->outstanding == 0)
		ingest_read(in);
}

/* Counts one failed attempt at entry (tries.lua); the max_tries-th dead-letters it
 * with reason max_tries and acks it, so one bad entry cannot stay pending forever. */
static void
ingest_tries(struct ingest *in, const char *entry, const char *deal, const char *why)
{
	char max[32], keep[32];
	const char *args[8] = { INGEST_TRIES, INGEST_STREAM, INGEST_DEAD_STREAM, entry,
		INGEST_GROUP, max, keep, why };
	struct ingest_job *j;

	snprintf(max, sizeof(max), "%ld", in->cfg->max_tries);
	snprintf(keep, sizeof(keep), "%d", INGEST_KEEP_S);
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		greader_reread(in->rd, 1);
		return;
	}
	j->in = in;
	snprintf(j->entry, sizeof(j->entry), "%s", entry);
	snprintf(j->deal, sizeof(j->deal), "%s", deal);
	snprintf(j->err, sizeof(j->err), "%s", why);
	if (script_call_named(in->cmd, "tries", 3, 8, args, NULL, ingest_on_tries, j) < 0) {
		log_warnx("event=deal_failed entry=%s deal=%s tries=? err=\"%s\"", entry, deal,
		    why);
		greader_reread(in->rd, 1);
		free(j);
		return;
	}
	in->outstanding++;
}

/* A reply of plan.lua: {status, ...}. */
static void
ingest_on_plan(struct ingest_call *c, const struct redisReply *r)
{
	struct ingest_job *j = c->job;
	const char *st;

	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		ingest_job_fail(j, 0, "plan", "unexpected reply");
		return;
	}
	st = r->element[0]->str;
	if (strcmp(st, "duplicate") == 0 && c->chunk == 0)
		log_info("event=deal_duplicate deal=%s entry=%s planned_by=%s", j->deal,
		    j->entry, r->element[1]->str);
	else if (strcmp(st, "retry") == 0)
		ingest_job_fail(j, 0, "plan", r->element[1]->str);
	else if (strcmp(st, "ok") == 0 && c->chunk + 1 == j->nchunks)
		log_info("event=deal_planned deal=%s entry=%s recipients=%s "
		    "matched=%zu held_out=%zu paused=%zu chunks=%zu ms_since_landed=%lld",
		    j->deal, j->entry, r->elements > 2 && r->element[2]->type ==
		    REDIS_REPLY_STRING ? r->element[2]->str : "?", j->matched, j->held_out,
		    j->paused, j->nchunks, (long long)(clock_real_ms() - j->landed_ms));
}

static void
ingest_on_script(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct ingest_call *c = arg;
	struct ingest_job *j = c->job;

	(void)rc;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		/* Left pending: read again from the pending list. */
		log_warnx("event=%s_failed deal=%s entry=%s err=\"%s\"", c->script, j->deal,
		    j->entry, r ? r->str : "no reply");
		ingest_job_fail(j, r != NULL && ingest_error_counts(r), c->script,
		    r ? r->str : "no reply");
	} else if (strcmp(c->script, "plan") == 0) {
		ingest_on_plan(c, r);
	} else if (strcmp(c->script, "retext") == 0) {
		ingest_update_on_retext(j, c->chunk, r);
	}
	free(c);
	ingest_job_put(j);
}

/* Sends one script call for the job; it holds a reference until it answers. */
void
ingest_call(struct ingest_job *j, const char *script, int nkeys, int nargs,
    const char **args, const size_t *lens, size_t chunk)
{
	struct ingest_call *c;

	if (nargs > SCRIPT_ARGS_MAX) {
		/* config.c keeps plan chunks within the limit: a bug if seen. */
		log_errorx("event=%s_failed deal=%s entry=%s err=\"%d script arguments, over "
		    "%d\"", script, j->deal, j->entry, nargs, SCRIPT_ARGS_MAX);
		ingest_job_fail(j, 0, script, "too many script arguments");
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_errorx("event=%s_failed entry=%s err=\"out of memory\"", script, j->entry);
		ingest_job_fail(j, 0, script, "out of memory");
		return;
	}
	c->job = j;
	c->script = script;
	c->chunk = chunk;
	if (script_call_named(j->in->cmd, script, nkeys, nargs, args, lens,
	    ingest_on_script, c) < 0) {
		log_warnx("event=%s_failed deal=%s entry=%s err=\"redis not ready\"", script,
		    j->deal, j->entry);
		ingest_job_fail(j, 0, script, "redis not ready");
		free(c);
		return;
	}
	j->refs++;
}

/* Dead-letters the entry (dead.lua: XADD deals:dead + XACK). */
static void
ingest_dead(struct ingest *in, const char *entry, const struct err *e,
    const char *payload, size_t len)
{
	/* ORDER DEAD_KEYS: the header of dead.lua. */
	const char *args[8] = { INGEST_DEAD_STREAM, INGEST_STREAM, entry, INGEST_GROUP,
		e->code, e->field, e->msg, payload ? payload : "" };
	size_t lens[8];
	char field[sizeof(e->field)];
	struct ingest_job *j;
	size_t i;

	for (i = 0; i < 7; i++)
		lens[i] = strlen(args[i]);
	lens[7] = payload ? (len > INGEST_DEAD_PAYLOAD_MAX ? INGEST_DEAD_PAYLOAD_MAX : len) : 0;
	/* A field name from the entry itself may hold anything: log a safe copy. */
	for (i = 0; e->field[i] != '\0' && i + 1 < sizeof(field); i++)
		field[i] = (unsigned char)e->field[i] > 0x20 &&
		    (unsigned char)e->field[i] < 0x7f && e->field[i] != '"' ? e->field[i] : '?';
	field[i] = '\0';
	log_warnx("event=deal_dead entry=%s reason=%s field=%s err=\"%s\"", entry, e->code,
	    field[0] ? field : "-", e->msg);
	if (in->metrics != NULL)
		metrics_inc(in->metrics, METRIC_DEALS_DEAD, METRICS_L(e->code), 1);
	if ((j = ingest_job_new(in, entry, NULL)) == NULL)
		return;
	ingest_call(j, "dead", 2, 8, args, lens, 0);
	ingest_job_put(j);
}

static void
ingest_cancel(struct ingest *in, const char *entry, const struct deal *d)
{
	char key[MODEL_ID_MAX + 8], now[32], keep[32];
	/* ORDER CANCEL_KEYS: the header of cancel.lua. */
	const char *args[6] = { key, INGEST_STREAM, entry, INGEST_GROUP, now, keep };
	struct ingest_job *j;

	snprintf(key, sizeof(key), "deal:%s", d->id);
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(keep, sizeof(keep), "%d", INGEST_KEEP_S);
	log_info("event=deal_cancel deal=%s entry=%s", d->id, entry);
	if ((j = ingest_job_new(in, entry, d->id)) == NULL)
		return;
	ingest_call(j, "cancel", 2, 6, args, NULL, 0);
	ingest_job_put(j);
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

long
ingest_plan_args_max(long plan_chunk, long job_size)
{
	long njobs = (plan_chunk + job_size - 1) / job_size;

	/* fixed keys and arguments, one report key per rule (at most one per
	 * recipient), per job its field count and pairs, per recipient one pair */
	return INGEST_PLAN_KEYS + INGEST_PLAN_ARGV + plan_chunk +
	    njobs * (1 + 2 * INGEST_JOB_PAIRS) + 2 * plan_chunk;
}

static int
ingest_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Writes recipients [from, to) as one plan chunk of jobs. 0, or -1 on OOM. */
static int
ingest_plan_chunk(struct ingest_job *jb, const struct deal *d,
    const struct match_list *ml, const char *attempt, size_t chunk, size_t from,
    size_t to)
{
	struct ingest *in = jb->in;
	size_t jobsz = (size_t)in->cfg->job_size, n = to - from;
	size_t njobs = (n + jobsz - 1) / jobsz;
	size_t nargs = INGEST_PLAN_KEYS + INGEST_PLAN_ARGV + n +
	    njobs * (1 + 2 * INGEST_JOB_PAIRS) + n * 2, i, a = 0, r, nrules = 0;
	const char **args = calloc(nargs, sizeof(*args));
	const char **rules = calloc(n + 1, sizeof(*rules));
	char **lines = calloc(n + 1, sizeof(*lines));
	char **rkeys = calloc(n + 1, sizeof(*rkeys));
	char (*nfields)[24] = calloc(njobs + 1, sizeof(*nfields));
	char key[MODEL_ID_MAX + 8], sc[32], snc[32], sexp[32], skeep[32], snj[32];
	char slimit[32], sstart[32];
	char dentry[80], pset[MODEL_ID_MAX + 16], rdeal[MODEL_ID_MAX + 16], rcamp[160];
	int rv = -1;

	if (args == NULL || rules == NULL || lines == NULL || rkeys == NULL ||
	    nfields == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		const struct match_rcpt *rc = &ml->v[from + i];

		if ((lines[i] = ingest_rcpt_line(rc)) == NULL)
			goto out;
		rules[i] = rc->rule != NULL ? rc->rule : "default";
	}
	/* The distinct rules of the chunk: their report keys go in KEYS. */
	qsort(rules, n, sizeof(*rules), ingest_strcmp);
	for (i = 0; i < n; i++) {
		size_t len;

		if (i > 0 && strcmp(rules[i], rules[i - 1]) == 0)
			continue;
		len = strlen(rules[i]) + 16;
		if ((rkeys[nrules] = malloc(len)) == NULL)
			goto out;
		snprintf(rkeys[nrules++], len, "report:rule:%s", rules[i]);
	}
	snprintf(key, sizeof(key), "deal:%s", d->id);
	snprintf(dentry, sizeof(dentry), "dealentry:%s", jb->entry);
	snprintf(pset, sizeof(pset), "planset:%s", d->id);
	snprintf(rdeal, sizeof(rdeal), "report:deal:%s", d->id);
	snprintf(rcamp, sizeof(rcamp), "report:campaign:%s", d->campaign ? d->campaign :
	    "");
	snprintf(sc, sizeof(sc), "%zu", chunk);
	snprintf(snc, sizeof(snc), "%zu", jb->nchunks);
	snprintf(sexp, sizeof(sexp), "%lld", (long long)d->expires_at);
	snprintf(skeep, sizeof(skeep), "%lld", (long long)(d->expires_at - clock_now() +
	    INGEST_KEEP_S));
	snprintf(snj, sizeof(snj), "%zu", njobs);
	/* ORDER PLAN_LIMIT: the cut rule_cut() applies to one ranking, kept across
	 * re-plans by plan.lua. */
	snprintf(slimit, sizeof(slimit), "%.0f", d->quantity > 0 ?
	    ceil((double)d->quantity * in->cfg->overbook) : 0.0);
	snprintf(sstart, sizeof(sstart), "%lld", (long long)(d->starts_at > 0 ?
	    d->starts_at : 0));
	/* KEYS (plan.lua) */
	args[a++] = key;
	args[a++] = INGEST_STREAM;
	args[a++] = "pushes";
	args[a++] = dentry;
	args[a++] = pset;
	args[a++] = rdeal;
	args[a++] = rcamp;
	args[a++] = INGEST_TRIES;
	for (i = 0; i < nrules; i++)
		args[a++] = rkeys[i];
	/* ARGV */
	args[a++] = jb->entry;
	args[a++] = sc;
	args[a++] = snc;
	args[a++] = skeep;
	args[a++] = INGEST_GROUP;
	args[a++] = snj;
	args[a++] = d->code_pool ? d->code_pool : "";
	args[a++] = d->url;
	args[a++] = d->title;
	args[a++] = d->campaign ? d->campaign : "";
	args[a++] = slimit;
	args[a++] = attempt;
	for (r = 0; r < n; r += jobsz) {
		size_t end = r + jobsz < n ? r + jobsz : n, j = r / jobsz;

		/* ORDER JOB_PAIRS: deal, entry, exp, camp, pool, start, then one "r"
		 * field per recipient */
		snprintf(nfields[j], sizeof(nfields[j]), "%zu", INGEST_JOB_PAIRS + (end - r));
		args[a++] = nfields[j];
		args[a++] = "deal";
		args[a++] = d->id;
		args[a++] = "entry";
		args[a++] = jb->entry;
		args[a++] = "exp";
		args[a++] = sexp;
		args[a++] = "camp";
		args[a++] = d->campaign ? d->campaign : "";
		args[a++] = "pool";
		args[a++] = d->code_pool ? d->code_pool : "";
		args[a++] = "start";
		args[a++] = sstart;
		for (i = r; i < end; i++) {
			args[a++] = "r";
			args[a++] = lines[i];
		}
	}
	ingest_call(jb, "plan", (int)(INGEST_PLAN_KEYS + nrules), (int)a, args, NULL,
	    chunk);
	rv = 0;
out:
	if (lines != NULL)
		for (i = 0; i < n; i++)
			free(lines[i]);
	if (rkeys != NULL)
		for (i = 0; i < nrules; i++)
			free(rkeys[i]);
	free(lines);
	free(rkeys);
	free(rules);
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
	/* ORDER HOLDOUT_KEYS: notifier/lua/holdout.lua. */
	const char **argv = calloc(4 + 3 * INGEST_HOLDOUT_PAIRS, sizeof(*argv));
	char (*rkey)[MODEL_TEXT_MAX + 16] = calloc(INGEST_HOLDOUT_PAIRS, sizeof(*rkey));
	char key[MODEL_ID_MAX + 16], rdeal[MODEL_ID_MAX + 16], rcamp[MODEL_TEXT_MAX + 24];
	char ttl[32];
	size_t i = 0, n, k, a;

	if (ml->held_out == 0)
		goto out;
	if (argv == NULL || rkey == NULL) {
		log_warnx("event=holdout_not_stored deal=%s held_out=%zu err=\"out of memory\"",
		    d->id, ml->held_out);
		goto out;
	}
	snprintf(key, sizeof(key), "holdout:%s", d->id);
	snprintf(rdeal, sizeof(rdeal), "report:deal:%s", d->id);
	if (d->campaign != NULL && d->campaign[0] != '\0')
		snprintf(rcamp, sizeof(rcamp), "report:campaign:%s", d->campaign);
	else
		rcamp[0] = '\0';
	/* Conversions arrive after the deal: keep the audience as long as orders count. */
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(d->expires_at - clock_now() +
	    30 * 86400));
	while (i < ml->held_out) {
		char *tag = strdup(d->id);

		n = ml->held_out - i < INGEST_HOLDOUT_PAIRS ? ml->held_out - i :
		    INGEST_HOLDOUT_PAIRS;
		argv[0] = key;
		argv[1] = rdeal;
		argv[2] = rcamp;
		for (k = 0; k < n; k++) {
			snprintf(rkey[k], sizeof(rkey[k]), "report:rule:%s", ml->held[i + k].rule);
			argv[3 + k] = rkey[k];
		}
		a = 3 + n;
		argv[a++] = ttl;
		for (k = 0; k < n; k++) {
			argv[a++] = ml->held[i + k].sub->id;
			argv[a++] = ml->held[i + k].rule;
		}
		i += n;
		if (tag == NULL || script_call_named(in->cmd, "holdout", (int)(3 + n), (int)a,
		    argv, NULL, ingest_on_holdout, tag) < 0) {
			log_warnx("event=holdout_not_stored deal=%s held_out=%zu err=\"%s\"",
			    d->id, ml->held_out, tag ? "redis not ready" : "out of memory");
			free(tag);
			goto out;
		}
	}
out:
	free(argv);
	free(rkey);
}

static void
ingest_plan(struct ingest *in, const char *entry, const struct deal *d)
{
	struct match_list ml = { 0 };
	struct match_links links;
	struct ingest_job *j;
	struct err err;
	size_t chunk = (size_t)in->cfg->plan_chunk, c;
	char attempt[128];

	if ((j = ingest_job_new(in, entry, d->id)) == NULL)
		return;
	/* Click links name the push: the entry id is the push id's first part. */
	links.public_url = in->cfg->public_url;
	links.key = (const unsigned char *)in->cfg->click_secret;
	links.keylen = in->cfg->click_secret ? strlen(in->cfg->click_secret) : 0;
	links.entry = entry;
	err_clear(&err);
	if (match_deal_links(in->matcher, d, clock_now(), &links, &ml, &err) < 0) {
		log_errorx("event=match_failed deal=%s entry=%s err=\"%s\"", d->id, entry,
		    err.msg);
		ingest_job_fail(j, 0, "match", err.msg);
		ingest_job_put(j);
		return;
	}
	j->recipients = ml.n;
	j->matched = ml.matched;
	j->held_out = ml.held_out;
	j->paused = ml.paused;
	ingest_holdout(in, d, &ml);
	/* Each attempt at planning is named, so that plan.lua takes its chunks only in
	 * order; a re-plan is a new attempt and starts at chunk 0. */
	snprintf(attempt, sizeof(attempt), "%s:%ld:%lu", in->cfg->consumer, (long)getpid(),
	    ++in->attempts);
	/* Zero recipients is still one (empty) chunk: it sets the marker and acks. */
	j->nchunks = ml.n == 0 ? 1 : (ml.n + chunk - 1) / chunk;
	for (c = 0; c < j->nchunks && !j->failed; c++) {
		size_t from = c * chunk, to = from + chunk < ml.n ? from + chunk : ml.n;

		if (ingest_plan_chunk(j, d, &ml, attempt, c, from, to) < 0) {
			log_errorx("event=plan_failed deal=%s entry=%s err=\"out of memory\"",
			    d->id, entry);
			ingest_job_fail(j, 0, "plan", "out of memory");
		}
	}
	match_list_free(&ml);
	ingest_job_put(j);
}

/* The first field name given more than once in an entry's flat field/value array,
 * or NULL. Sorted copy: an entry may carry many fields. */
static const char *
ingest_duplicate_field(const struct redisReply *fields)
{
	size_t n = fields->elements / 2, i, k = 0;
	const char **names, *dup = NULL;

	if (n < 2)
		return NULL;
	if ((names = calloc(n, sizeof(*names))) == NULL)
		return NULL;
	for (i = 0; i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING)
			names[k++] = fields->element[i]->str;
	qsort(names, k, sizeof(*names), ingest_strcmp);
	for (i = 1; i < k && dup == NULL; i++)
		if (strcmp(names[i], names[i - 1]) == 0)
			dup = names[i];
	free(names);
	return dup;
}

static void
ingest_entry(struct ingest *in, const char *entry, const struct redisReply *fields)
{
	const char *payload, *dup;
	size_t len = 0;
	struct deal *d;
	struct err err;

	err_clear(&err);
	payload = ru_field(fields, "deal", &len);
	/* Redis clients disagree on which of two equal field names they return (we take
	 * the first, many take the last): two readers would see two deals. */
	if ((dup = ingest_duplicate_field(fields)) != NULL) {
		err_set(&err, ERR_INPUT, "duplicate_field", dup,
		    "deal: the entry has the field '%.64s' more than once", dup);
		ingest_dead(in, entry, &err, payload, len);
		return;
	}
	if (payload == NULL) {
		err_set(&err, ERR_INPUT, "missing_field", "deal",
		    "deal: the entry has no field 'deal'");
		ingest_dead(in, entry, &err, NULL, 0);
		return;
	}
	if ((d = deal_parse(payload, len, clock_now(), &err)) == NULL) {
		if (err.kind == ERR_NOMEM) {
			greader_reread(in->rd, 1);
			return;
		}
		ingest_dead(in, entry, &err, payload, len);
		return;
	}
	if (in->metrics != NULL && !d->update)
		metrics_inc(in->metrics, METRIC_DEALS_INGESTED, NULL, 1);
	if (d->update && !d->cancel) {
		ingest_update(in, entry, d, payload, len);   /* takes d */
		return;
	}
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
	if (--in->outstanding == 0)
		ingest_read(in);
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
