/*
 * ingest_plan.c: a deal's recipients written as jobs, a slice at a time (stages:
 * match, plan).
 *
 * A deal is ranked once (match_run_new); then each turn of the loop renders at most
 * one slice of plan_chunk recipients and sends it as one plan.lua call, with at most
 * INGEST_PLAN_INFLIGHT calls unanswered. So a deal to a third of a million
 * subscribers neither holds the loop (HTTP, webhooks and the mirror are served between
 * slices) nor floods the script connection with hundreds of calls whose deadlines run
 * out together. Chunks of one attempt reach Redis in order on one connection, as
 * plan.lua requires; a failed chunk stops the attempt and the entry is read again
 * (plan.lua's planset makes the re-plan write only who is missing).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "channel.h"
#include "abtest.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "ingest.h"
#include "ingest_int.h"
#include "keys.h"
#include "layout.h"
#include "log.h"
#include "match.h"
#include "owner.h"
#include "rules.h"
#include "scripts.h"
#include "subscriber.h"

/* "<ch>\t<sub>\t<to>\t<rule>\t<text>": the recipient line of a job (see
 * docs/architecture.md). */
static char *
ingest_rcpt_line(const struct match_rcpt *r)
{
	const char *to = channel_contact(r->sub, r->ch);
	const char *rule = r->rule != NULL ? r->rule : "default";
	size_t n;
	char *s;

	if (r->variant >= 0)            /* an A/B test member: "<rule>/<variant>" */
		return abhold_line(r, (size_t)r->variant, r->text);
	n = strlen(r->text) + strlen(r->sub->id) + strlen(to ? to : "") +
	    strlen(rule) + 16;
	if ((s = malloc(n)) != NULL)
		snprintf(s, n, "%s\t%s\t%s\t%s\t%s", channel_name(r->ch), r->sub->id,
		    to ? to : "", rule, r->text);
	return s;
}

const char *
ingest_job_pool(const struct deal *d, double overbook, char *buf, size_t size)
{
	if (d->code_pool != NULL)
		return d->code_pool;
	if (d->quantity > 0 && layout_current() != NULL &&
	    keys_quota_pool(d->id, (long long)ceil((double)d->quantity * overbook), buf,
	    size) > 0)
		return buf;
	return "";
}

long
ingest_plan_args_max(long plan_chunk, long job_size)
{
	long njobs = (plan_chunk + job_size - 1) / job_size;
	/* distinct rules in a chunk: at most one per recipient, at most every rule of
	 * the set and the built-in default */
	long nrules = plan_chunk < RULE_RULES_MAX + 1 ? plan_chunk : RULE_RULES_MAX + 1;

	/* fixed keys and arguments, one report key and one rule name per rule, per
	 * job its field count and pairs, per recipient one pair */
	return INGEST_PLAN_KEYS + INGEST_PLAN_ARGV + 2 * nrules +
	    njobs * (1 + 2 * INGEST_JOB_PAIRS) + 2 * plan_chunk;
}

/* Sends the recipients of one slice (all of the reader's shard) as plan chunk
 * number chunk, in jobs of job_size recipients; last: the deal's final chunk in
 * this shard. 0, or -1 on OOM. */
static int
ingest_plan_chunk(struct ingest_job *jb, const struct deal *d,
    const struct match_list *ml, const char *attempt, size_t chunk, int last)
{
	struct ingest *in = jb->in;
	uint32_t shard = in->shard;
	size_t jobsz = (size_t)in->cfg->job_size, n = ml->n;
	size_t njobs = (n + jobsz - 1) / jobsz;
	size_t nargs = INGEST_PLAN_KEYS + INGEST_PLAN_ARGV + 2 * n +
	    njobs * (1 + 2 * INGEST_JOB_PAIRS) + n * 2, i, a = 0, j, nrules = 0, nkeys;
	const char **args = calloc(nargs, sizeof(*args));
	const char **rules = calloc(n + 1, sizeof(*rules));
	const char **names = calloc(n + 1, sizeof(*names));  /* of rkeys, in order */
	char **lines = calloc(n + 1, sizeof(*lines));
	char **rkeys = calloc(n + 1, sizeof(*rkeys));
	char (*nfields)[24] = calloc(njobs + 1, sizeof(*nfields));
	char key[MODEL_ID_MAX + KEYS_SHARD_MAX], sc[32], snc[32], sexp[32], skeep[32];
	char snj[32], slimit[32], sstart[32], stream[KEYS_SHARD_MAX];
	char dentry[80 + KEYS_SHARD_MAX], pset[MODEL_ID_MAX + KEYS_SHARD_MAX];
	char rdeal[MODEL_ID_MAX + KEYS_SHARD_MAX], rcamp[MODEL_TEXT_MAX + KEYS_SHARD_MAX];
	char qpool[MODEL_TEXT_MAX + 1];
	const char *pool;
	int rv = -1;

	if (args == NULL || rules == NULL || names == NULL || lines == NULL ||
	    rkeys == NULL || nfields == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		const struct match_rcpt *rc = &ml->v[i];

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
		len = strlen(rules[i]) + KEYS_SHARD_MAX;
		if ((rkeys[nrules] = malloc(len)) == NULL)
			goto out;
		names[nrules] = rules[i];
		keys_per(shard, KEYS_REPORT_RULE, rules[i], rkeys[nrules++], len);
	}
	keys_per(shard, KEYS_DEAL, d->id, key, sizeof(key));
	keys_per(shard, KEYS_DEALENTRY, jb->entry, dentry, sizeof(dentry));
	keys_per(shard, KEYS_PLANSET, d->id, pset, sizeof(pset));
	keys_per(shard, KEYS_REPORT_DEAL, d->id, rdeal, sizeof(rdeal));
	keys_per(shard, KEYS_REPORT_CAMPAIGN, d->campaign ? d->campaign : "", rcamp,
	    sizeof(rcamp));
	keys_shard_key(shard, KEYS_PUSHES, stream, sizeof(stream));
	snprintf(sc, sizeof(sc), "%zu", chunk);
	/* ORDER PLAN_LAST: plan.lua finishes the deal when chunk == nchunks - 1; the
	 * count is known only with the last slice, so the others send 0. */
	snprintf(snc, sizeof(snc), "%zu", last ? chunk + 1 : (size_t)0);
	snprintf(sexp, sizeof(sexp), "%lld", (long long)d->expires_at);
	snprintf(skeep, sizeof(skeep), "%lld", (long long)(d->expires_at - clock_now() +
	    INGEST_KEEP_S));
	snprintf(snj, sizeof(snj), "%zu", njobs);
	/* ORDER PLAN_LIMIT: the cut rule_cut() applies to one ranking, kept across
	 * re-plans by plan.lua (per shard: the ranking is already cut, so a shard's
	 * part of it is within the limit). */
	snprintf(slimit, sizeof(slimit), "%.0f", d->quantity > 0 ?
	    ceil((double)d->quantity * in->cfg->overbook) : 0.0);
	pool = ingest_job_pool(d, in->cfg->overbook, qpool, sizeof(qpool));
	snprintf(sstart, sizeof(sstart), "%lld", (long long)(d->starts_at > 0 ?
	    d->starts_at : 0));
	/* ORDER PLAN_KEYS (plan.lua) */
	args[a++] = key;
	args[a++] = dentry;
	args[a++] = pset;
	args[a++] = rdeal;
	args[a++] = rcamp;
	args[a++] = stream;
	if (in->owner != NULL)
		args[a++] = owner_key(in->owner, shard);   /* the fence (4d) */
	nkeys = a + nrules;
	for (i = 0; i < nrules; i++)
		args[a++] = rkeys[i];
	/* ARGV */
	args[a++] = jb->entry;
	args[a++] = sc;
	args[a++] = snc;
	args[a++] = skeep;
	args[a++] = snj;
	args[a++] = pool;
	args[a++] = d->url;
	args[a++] = d->title;
	args[a++] = d->campaign ? d->campaign : "";
	args[a++] = slimit;
	args[a++] = attempt;
	args[a++] = d->id;
	args[a++] = d->product_id ? d->product_id : "";
	args[a++] = owner_epoch(in->owner, shard);
	/* ORDER PLAN_RULES: each report key's rule name, in the order of KEYS, so that
	 * the script never reads data out of a key's name */
	for (i = 0; i < nrules; i++)
		args[a++] = names[i];
	for (j = 0; j < njobs; j++) {
		size_t r = j * jobsz, end = r + jobsz < n ? r + jobsz : n;

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
		args[a++] = pool;
		args[a++] = "start";
		args[a++] = sstart;
		for (i = r; i < end; i++) {
			args[a++] = "r";
			args[a++] = lines[i];
		}
	}
	ingest_call(jb, "plan", (int)nkeys, (int)a, args, NULL, chunk);
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
	free(names);
	free(nfields);
	free(args);
	return rv;
}

#define INGEST_HOLDOUT_PAIRS 500   /* held-out recipients per holdout.lua call */

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

/* Remembers who of the reader's shard was held out of which channels and by which
 * rule (holdout.lua), so that conversions by those subscribers count as the
 * holdout's and reports can compare the groups, in all and channel by channel.
 * Idempotent, so a re-plan after a crash changes nothing. Sent on the script
 * connection before the plan chunks, so Redis runs it first. One call holds the
 * held-out subscribers of one shard (keys.h): its holdout:<deal> and reports. */
static void
ingest_holdout(struct ingest *in, const struct deal *d, const struct ingest_sum *hs)
{
	/* ORDER HOLDOUT_KEYS: notifier/lua/holdout.lua. */
	static const char *const chans[] = { "", "sms", "dm", "sms dm" }; /* ORDER CHANNEL */
	const char **argv = calloc(5 + 5 * INGEST_HOLDOUT_PAIRS, sizeof(*argv));
	char (*rkey)[MODEL_TEXT_MAX + KEYS_SHARD_MAX] = calloc(INGEST_HOLDOUT_PAIRS,
	    sizeof(*rkey));
	size_t *pick = calloc(INGEST_HOLDOUT_PAIRS, sizeof(*pick));
	char key[MODEL_ID_MAX + KEYS_SHARD_MAX], rdeal[MODEL_ID_MAX + KEYS_SHARD_MAX];
	char rcamp[MODEL_TEXT_MAX + KEYS_SHARD_MAX];
	char ttl[32], at[32];
	size_t i, n, k, a;
	uint32_t shard = in->shard;

	if (hs->nheld == 0)
		goto out;
	if (argv == NULL || rkey == NULL || pick == NULL) {
		log_warnx("event=holdout_not_stored deal=%s held_out=%zu err=\"out of memory\"",
		    d->id, hs->nheld);
		goto out;
	}
	/* Conversions arrive after the deal: keep the audience as long as orders count. */
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(d->expires_at - clock_now() +
	    30 * 86400));
	snprintf(at, sizeof(at), "%lld", (long long)clock_now());
	/* The shard's held-out subscribers: each shard's reader writes its own. */
	{
		keys_per(shard, KEYS_HOLDOUT, d->id, key, sizeof(key));
		keys_per(shard, KEYS_REPORT_DEAL, d->id, rdeal, sizeof(rdeal));
		if (d->campaign != NULL && d->campaign[0] != '\0')
			keys_per(shard, KEYS_REPORT_CAMPAIGN, d->campaign, rcamp, sizeof(rcamp));
		else
			rcamp[0] = '\0';
		i = 0;
		while (i < hs->nheld) {
			char *tag;

			for (n = 0; i < hs->nheld && n < INGEST_HOLDOUT_PAIRS; i++)
				pick[n++] = i;
			argv[0] = key;
			argv[1] = rdeal;
			argv[2] = rcamp;
			for (k = 0; k < n; k++) {
				keys_per(shard, KEYS_REPORT_RULE, hs->held[pick[k]].rule, rkey[k],
				    sizeof(rkey[k]));
				argv[3 + k] = rkey[k];
			}
			a = 3 + n;
			argv[a++] = ttl;
			argv[a++] = at;
			for (k = 0; k < n; k++) {
				const struct ingest_held *h = &hs->held[pick[k]];

				argv[a++] = h->id;
				argv[a++] = h->rule;
				argv[a++] = chans[h->channels & (CH_BIT(CH_SMS) | CH_BIT(CH_DM))];
				argv[a++] = h->whole ? "1" : "0";
			}
			tag = strdup(d->id);
			if (tag == NULL || script_call_named(in->cmd, "holdout", (int)(3 + n),
			    (int)a, argv, NULL, ingest_on_holdout, tag) < 0) {
				log_warnx("event=holdout_not_stored deal=%s held_out=%zu "
				    "err=\"%s\"", d->id, hs->nheld,
				    tag ? "redis not ready" : "out of memory");
				free(tag);
				goto out;
			}
		}
	}
out:
	free(argv);
	free(rkey);
	free(pick);
}

/* Ends a plan: unlinks it and drops its reference on the job (the last one reads on
 * or counts the failure). */
static void
ingest_plan_end(struct ingest_plan *p)
{
	struct ingest *in = p->job->in;
	struct ingest_job *j = p->job;

	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		in->plans = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	j->plan = NULL;
	if (j->failed)
		in->plans_failed++;
	event_free(p->ev);
	match_run_free(p->run);
	deal_free(p->d);
	free(p);
	ingest_job_put(j);
}

/* One turn: renders and sends the next slice while there is room, else waits for a
 * reply (ingest_plan_on_reply). */
static void
ingest_plan_turn(evutil_socket_t fd, short what, void *arg)
{
	struct ingest_plan *p = arg;
	struct ingest_job *j = p->job;
	struct ingest *in = j->in;
	struct match_list ml;
	struct err err;
	int more, held = 0, last;

	(void)fd;
	(void)what;
	if (!j->failed && in->stopping)
		ingest_job_fail(j, 0, "plan", "shutting down");
	/* The shard is no longer served here (owner.h): the plan stops at this chunk
	 * boundary, its entry left pending for the next owner, who plans the rest
	 * (the planset skips whom these chunks wrote). Not a failed try. */
	if (!j->failed && !owner_serves(in->owner, in->shard))
		ingest_job_fail(j, 0, "plan", "the shard is no longer served here");
	if (j->failed || p->sent_last) {
		if (p->inflight == 0)
			ingest_plan_end(p);
		return;
	}
	/* A slice's A/B holds answer before the next slice: a failed hold fails the
	 * plan before its last chunk can mark the deal planned (no held rest lost). */
	if (p->inflight >= INGEST_PLAN_INFLIGHT || p->holds > 0)
		return;
	memset(&ml, 0, sizeof(ml));
	if (p->final_pending) {
		/* The last slice held a rest: its chunk went out as an ordinary one, and
		 * only now, every hold answered, an empty last chunk finishes the plan. */
		j->nchunks = p->chunk + 1;
		if (ingest_plan_chunk(j, p->d, &ml, p->attempt, p->chunk, 1) < 0)
			ingest_job_fail(j, 0, "plan", "out of memory");
		else if (!j->failed) {
			p->inflight++;
			p->chunk++;
			p->sent_last = 1;
		}
		ingest_plan_kick(p);
		return;
	}
	err_clear(&err);
	if ((more = match_run_next(p->run, &p->links, (size_t)in->cfg->plan_chunk, &ml,
	    &err)) < 0) {
		log_errorx("event=plan_failed deal=%s entry=%s err=\"%s\"", j->deal, j->entry,
		    err.msg);
		ingest_job_fail(j, 0, "plan", err.msg);
		ingest_plan_kick(p);
		return;
	}
	j->recipients += ml.n;
	j->paused += ml.paused;
	j->unrenderable += ml.unrenderable;
	/* An A/B test's rest is held (ab_hold.lua, sent first), not planned; an update's
	 * re-render leaves it alone. */
	if (p->retext)
		abhold_drop_rest(&ml);
	else if ((held = abhold_chunk(j, p->d, &ml)) < 0)
		goto oom;
	if (held > 0 && !more)
		p->final_pending = 1;
	last = !more && !p->final_pending;
	if (last)
		j->nchunks = p->chunk + 1;
	if (!j->failed && (p->retext ? ingest_retext_chunk(j, p->d, &ml, p->attempt, p->keep,
	    p->chunk, last) : ingest_plan_chunk(j, p->d, &ml, p->attempt, p->chunk,
	    last)) < 0)
		goto oom;
	if (!j->failed) {
		p->inflight++;
		p->chunk++;
		p->sent_last = last;
	}
	match_list_free(&ml);
	ingest_plan_kick(p);
	return;
oom:
	log_errorx("event=%s_failed deal=%s entry=%s err=\"out of memory\"",
	    p->retext ? "retext" : "plan", j->deal, j->entry);
	ingest_job_fail(j, 0, p->retext ? "retext" : "plan", "out of memory");
	match_list_free(&ml);
	ingest_plan_kick(p);
}

void
ingest_plan_kick(struct ingest_plan *p)
{
	static const struct timeval now = { 0, 0 };

	event_add(p->ev, &now);
}

void
ingest_plan_on_reply(struct ingest_plan *p)
{
	p->inflight--;
	p->progress_ms = clock_mono_ms();
	ingest_plan_kick(p);
}

/* A plan of deal d (taken) for job j, linked and ranked; NULL when it could not
 * start (the job's failure is recorded, d freed). */
static struct ingest_plan *
ingest_plan_new(struct ingest_job *j, struct deal *d, const char *link_entry,
    struct ingest_sum *summary)
{
	struct ingest *in = j->in;
	struct ingest_plan *p;
	struct err err;

	memset(summary, 0, sizeof(*summary));
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->ev = event_new(in->base, -1, 0, ingest_plan_turn, p)) == NULL) {
		log_errorx("event=plan_failed deal=%s entry=%s err=\"out of memory\"", d->id,
		    j->entry);
		ingest_job_fail(j, 0, "plan", "out of memory");
		free(p);
		deal_free(d);
		return NULL;
	}
	p->job = j;
	p->d = d;
	j->plan = p;
	j->refs++;
	snprintf(p->link_entry, sizeof(p->link_entry), "%s", link_entry);
	/* Click links name the push: the entry id is the push id's first part. */
	p->links.public_url = in->cfg->public_url;
	p->links.link_base = in->cfg->link_base;
	p->links.key = (const unsigned char *)in->cfg->click_secret;
	p->links.keylen = in->cfg->click_secret ? strlen(in->cfg->click_secret) : 0;
	p->links.entry = p->link_entry;
	p->started_ms = p->progress_ms = clock_mono_ms();
	if ((p->next = in->plans) != NULL)
		p->next->prev = p;
	in->plans = p;
	err_clear(&err);
	/* Sharded: the whole audience is ranked (a limit cuts it whole), once per
	 * notifier, and this reader plans its shard's part (ingest_ranks.c). */
	if ((p->run = ingest_rank(in, j->entry, d, summary, &err)) == NULL) {
		log_errorx("event=match_failed deal=%s entry=%s err=\"%s\"", d->id, j->entry,
		    err.msg);
		ingest_job_fail(j, 0, "match", err.msg);
		ingest_plan_end(p);
		return NULL;
	}
	j->ranked = match_run_total(p->run);
	/* Each attempt is named, so that the scripts take its chunks only in order; a
	 * re-plan is a new attempt and starts at chunk 0. */
	snprintf(p->attempt, sizeof(p->attempt), "%s:%ld:%lu", in->cfg->consumer,
	    (long)getpid(), ++in->attempts);
	return p;
}

/*
 * The guards before a big send ([guards], docs/delivery.md): a deal not yet confirmed
 * whose ranked audience, or its SMS cost at one segment a recipient, is over its
 * limit is held: dead-lettered with reason "held" and its payload, nothing planned,
 * until a confirmation publishes it again with "confirmed": true. 1 when held.
 */
static int
ingest_guard(struct ingest *in, const char *entry, const struct deal *d, size_t ranked,
    const char *payload, size_t len)
{
	const struct config *c = in->cfg;
	double cost = c->sms_segment_price > 0 ? (double)ranked * c->sms_segment_price : 0;
	struct err e;

	if (d->confirmed || d->test_to.n > 0)
		return 0;
	err_clear(&e);
	if (c->guard_audience > 0 && ranked > (size_t)c->guard_audience)
		err_set(&e, ERR_INPUT, "held", "audience", "audience %zu over the guard of "
		    "%ld: confirm with POST /v1/deals/%s/confirm or dealpushctl deals "
		    "confirm %s", ranked, c->guard_audience, d->id, d->id);
	else if (c->guard_cost > 0 && cost > c->guard_cost)
		err_set(&e, ERR_INPUT, "held", "cost", "cost %.2f (%zu texts) over the guard "
		    "of %.2f: confirm with POST /v1/deals/%s/confirm or dealpushctl deals "
		    "confirm %s", cost, ranked, c->guard_cost, d->id, d->id);
	else
		return 0;
	/* Every shard's reader holds the deal (the whole audience is over); shard 0's
	 * writes the one dead letter a confirmation publishes again (ingest_dead). */
	if (in->shard == 0)
		log_warnx("event=deal_held deal=%s entry=%s audience=%zu cost=%.2f", d->id,
		    entry, ranked, cost);
	ingest_dead(in, entry, &e, payload, len);
	return 1;
}

void
ingest_plan(struct ingest *in, const char *entry, struct deal *d, const char *payload,
    size_t len)
{
	struct ingest_sum summary;
	struct ingest_plan *p;
	struct ingest_job *j;

	if ((j = ingest_job_new(in, entry, d->id)) == NULL) {
		deal_free(d);
		return;
	}
	if ((p = ingest_plan_new(j, d, j->entry, &summary)) != NULL &&
	    ingest_guard(in, entry, p->d, (size_t)j->ranked, payload, len)) {
		ingest_plan_end(p);
	} else if (p != NULL) {
		j->matched = summary.matched;
		j->held_out = summary.held_out;
		ingest_holdout(in, p->d, &summary);
		ingest_plan_kick(p);
		ingest_plan_detach(j);
	}
	ingest_sum_free(&summary);
	ingest_job_put(j);
}

void
ingest_retext(struct ingest_job *j, struct deal *d, const char *planned_entry,
    const char *keep)
{
	struct ingest_sum summary;
	struct ingest_plan *p;

	p = ingest_plan_new(j, d, planned_entry, &summary);
	ingest_sum_free(&summary);    /* an update never changes who is held out */
	if (p == NULL)
		return;
	p->retext = 1;
	snprintf(p->keep, sizeof(p->keep), "%s", keep);
	log_info("event=deal_retext deal=%s entry=%s planned_entry=%s ranked=%zu",
	    j->deal, j->entry, planned_entry, j->ranked);
	ingest_plan_kick(p);
}

void
ingest_plans_free(struct ingest *in)
{
	while (in->plans != NULL) {
		ingest_job_fail(in->plans->job, 0, "plan", "shutting down");
		ingest_plan_end(in->plans);
	}
}

void
ingest_progress(const struct ingest *in, struct ingest_progress *out)
{
	const struct ingest_plan *p;
	int64_t now = clock_mono_ms();

	memset(out, 0, sizeof(*out));
	out->plans_failed = in->plans_failed;
	for (p = in->plans; p != NULL; p = p->next) {
		long long idle = (long long)(now - p->progress_ms);

		out->planning++;
		if (p->run != NULL) {
			out->ranked += match_run_size(p->run);
			out->done += match_run_done(p->run);
		}
		if (idle >= out->stalled_ms) {
			out->stalled_ms = idle;
			snprintf(out->stalled_deal, sizeof(out->stalled_deal), "%s", p->job->deal);
		}
	}
}
