/*
 * deliver_record.c: write every push's outcome with record.lua, in batches of up to
 * DELIVER_RECORD_BATCH, once per loop pass (stage: record).
 *
 * An outcome that does not reach Redis is tried again for about a minute; after that
 * its job stays pending, so a redelivery settles it. Must never let a job be acked
 * before each of its outcomes is recorded.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "deliver_int.h"
#include "gw.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "rules.h"
#include "scripts.h"
#include "strcopy.h"
#include "subbehav.h"
#include "subscriber.h"
#include "substore.h"

#define DELIVER_RECORD_BATCH 128
#define DELIVER_RECORD_RETRY_MS 500
#define DELIVER_RECORD_TRIES 120     /* a minute of Redis outage */
#define REC_BEHAV_MAX 512            /* a longer behaviour record: record.lua makes it */

/* One outcome waiting to be recorded; the outcome is copied because a recipient
 * may queue "retry" and, after its backoff, its final outcome in the same pass. */
struct rec {
	struct rcpt *r;
	char outcome[16];
};

struct rec_batch {
	struct deliver *dl;
	size_t n;
	struct rec v[];
};

static void rec_enqueue(struct rcpt *r, const char *outcome);

static void
rec_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt *r = arg;

	(void)fd;
	(void)what;
	if (r->state != RS_DONE)   /* else it went on meanwhile (a later record parked it) */
		rec_enqueue(r, r->outcome);
}

/* A record did not reach Redis: try again shortly, for about a minute. */
static void
rec_later(struct rcpt *r)
{
	struct deliver *dl = r->job->dl;
	struct timeval tv = { 0, DELIVER_RECORD_RETRY_MS * 1000 };

	if (++r->record_tries >= DELIVER_RECORD_TRIES) {
		/* The job stays pending; its redelivery finds "sending" and records
		 * "unknown", or "retry" and sends again. */
		log_errorx("event=record_failed push=%s outcome=%s action=give_up",
		    r->push_id, r->outcome);
		r->job->unrecorded = 1;
		dl_rcpt_done(r);
		return;
	}
	if (r->timer != NULL)
		event_free(r->timer);
	if ((r->timer = evtimer_new(dl->base, rec_on_timer, r)) == NULL) {
		log_errorx("event=record_failed push=%s err=\"out of memory\"", r->push_id);
		r->job->unrecorded = 1;
		dl_rcpt_done(r);
		return;
	}
	evtimer_add(r->timer, &tv);
}

/* What happens to one recorded (or not) outcome. */
static void
rec_settle(const struct rec *e, int ok)
{
	/* Its recipient went on without it (a "retry" record answering after the
	 * retry itself ended), or its job was dropped: nothing to settle, and a record
	 * written again now could overwrite what the push's new owner wrote. */
	if (e->r->state == RS_DONE)
		return;
	/* "retry" only marks the state for a redelivery after a crash; the backoff
	 * timer is already running and its admit passes own_retry, so a lost "retry"
	 * record costs nothing. */
	if (strcmp(e->outcome, "retry") == 0) {
		/* A parked one is out of memory only once its "retry" is in Redis. */
		if (e->r->park_until != 0) {
			if (ok)
				dl_parked(e->r);
			else
				rec_later(e->r);
		}
		return;
	}
	if (!ok)
		rec_later(e->r);
	else
		dl_rcpt_done(e->r);
}

/* Every outcome of b settled, then each one's job told (the last may free it: each
 * entry's job is read before its count is let go, and counted once per entry). */
static void
rec_batch_done(struct rec_batch *b, int ok)
{
	size_t i;

	b->dl->records_out -= b->n;
	for (i = 0; i < b->n; i++)
		rec_settle(&b->v[i], ok);
	for (i = 0; i < b->n; i++)
		dl_job_recorded(b->v[i].r->job);
	free(b);
}

static void
rec_on_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct rec_batch *b = arg;
	int ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER;

	(void)rc;
	if (!ok)
		log_warnx("event=record_failed outcomes=%zu err=\"%s\" action=retry", b->n,
		    reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
	rec_batch_done(b, ok);
}

/*
 * 1 when what resending r needs is kept (record.lua, pushline:<deal>): a sent SMS
 * through a Twilio gateway that asks for status callbacks, the only way a 30003
 * ("unreachable handset: send it again") can come.
 */
static int
rec_keep_for_resend(const struct deliver *dl, const struct rcpt *r, const char *outcome)
{
	const struct gw_config *gc;

	if (r->pl.ch != CH_SMS || strcmp(outcome, "sent") != 0 || r->gw_index >= dl->ngws)
		return 0;
	gc = gw_config_of(dl->gws[r->gw_index]);
	return gc->kind == GW_TWILIO && gc->status_callback_base != NULL &&
	    gc->status_callback_base[0] != '\0';
}

/* 1 when r's push has a code that leaves with it (codepush:<code>); a quota's token
 * is no code a customer can redeem. */
static int
rec_has_code(const struct rcpt *r)
{
	return r->code[0] != '\0' && !r->code_bad && !r->token;
}

/*
 * 1 when r and q name the same keys of ORDER RECORD_GKEYS (one group of the call):
 * the same deal, channel, rule, campaign and pool, both with a code or both without.
 */
static int
rec_same_group(const struct rcpt *r, const struct rcpt *q)
{
	return r->pl.ch == q->pl.ch && rec_has_code(r) == rec_has_code(q) &&
	    (r->job == q->job || (strcmp(r->job->deal, q->job->deal) == 0 &&
	    strcmp(r->job->camp, q->job->camp) == 0 &&
	    strcmp(r->job->pool, q->job->pool) == 0)) &&
	    strcmp(r->pl.rule, q->pl.rule) == 0;
}

/* Adds the keys of one group, ORDER RECORD_GKEYS, from one of its outcomes. px: the
 * prefixes of the call's shard. */
static void
rec_keys_group(struct script_args *sa, const struct rcpt *r, const struct keys_prefixes *px)
{
	const struct job *j = r->job;
	char ck[KEYS_SHARD_MAX], rk[KEYS_SHARD_MAX];   /* consent:<ch>, consent:records */
	char stash[KEYS_MAX];                           /* the pool, or the shard's stash */

	(void)keys_consent(px->shard, r->pl.ch, ck, sizeof(ck));
	(void)keys_shard_key(px->shard, KEYS_CONSENT_RECORDS, rk, sizeof(rk));
	(void)keys_codestash(px->shard, j->deal, j->pool, stash, sizeof(stash));
	script_key(sa, px->p[KEYS_PUSH], j->deal);
	script_key(sa, ck, NULL);
	script_key(sa, px->p[KEYS_DEAL], j->deal);
	script_key(sa, px->p[KEYS_CODE], j->deal);
	script_key(sa, stash, NULL);
	script_key(sa, px->p[KEYS_REPORT_DEAL], j->deal);
	script_key(sa, px->p[KEYS_REPORT_RULE], r->pl.rule);
	script_key(sa, j->camp[0] != '\0' ? px->p[KEYS_REPORT_CAMPAIGN] : "", j->camp);
	script_key(sa, px->p[KEYS_PUSHLINE], j->deal);
	script_key(sa, px->p[KEYS_PUSHINFO], j->deal);
	script_key(sa, px->p[KEYS_DELIVERY], j->deal);
	script_key(sa, rk, NULL);
	script_key(sa, px->p[KEYS_SERIES], j->deal);
}

/* Adds the keys of one outcome, ORDER RECORD_RKEYS: its code's, then its caps'. */
static void
rec_keys(struct script_args *sa, const struct rcpt *r, const struct dl_caps *caps,
    const struct keys_prefixes *px)
{
	int code = rec_has_code(r);

	script_key(sa, code ? px->p[KEYS_CODEPUSH] : "", code ? r->code : NULL);
	script_key(sa, caps->daykey, NULL);
	script_key(sa, caps->campkey, NULL);
	script_key(sa, caps->lawkey, NULL);
}

/* Adds the arguments of one outcome, ORDER RECORD_RARGS; group: its group's number
 * (from 1). */
static void
rec_args(struct deliver *dl, struct script_args *sa, const struct rec *e, int64_t now,
    size_t group)
{
	const struct rcpt *r = e->r;
	const struct subscriber *s = substore_get(dl->ss, r->pl.sub);
	enum rule_encoding enc;
	unsigned units;
	char vtail[RULE_VARIANT_NAME_MAX + 2], old[REC_BEHAV_MAX], new[REC_BEHAV_MAX];

	script_arg(sa, r->pl.sub, NULL);
	script_arg(sa, channel_name(r->pl.ch), NULL);
	script_arg(sa, r->push_id, NULL);
	script_arg(sa, r->job->deal, NULL);
	script_arg(sa, e->outcome, NULL);
	script_arg(sa, dl_gw_name(dl, r), NULL);
	script_arg(sa, r->provider_id, NULL);
	script_arg_ll(sa, r->http_status);
	script_arg(sa, r->detail, NULL);
	script_arg_ll(sa, now);
	script_arg_ll(sa, r->sent_ms ? r->sent_ms - r->job->landed_ms : -1LL);
	script_arg(sa, r->revoke ? "1" : "0", NULL);
	script_arg_ll(sa, r->pl.ch == CH_SMS ?
	    rule_sms_count(r->pl.text, strlen(r->pl.text), &enc, &units) : 0u);
	script_arg(sa, rec_keep_for_resend(dl, r, e->outcome) ? "1" : "", NULL);
	/* "<rule>/<variant>" for an A/B test member: record.lua counts the variant */
	str_join3(vtail, sizeof(vtail), r->pl.variant[0] != '\0' ? "/" : "", r->pl.variant,
	    "");
	script_arg(sa, r->pl.rule, vtail);
	script_arg(sa, r->job->camp, NULL);
	script_arg(sa, r->pl.to, NULL);
	script_arg_ll(sa, r->started);
	script_arg(sa, r->sent_text != NULL ? r->sent_text : "", NULL);
	script_arg_ll(sa, r->job->exp);
	script_arg(sa, r->code_bad ? "1" : "0", NULL);
	/* "1" unless the subscriber is known to have one channel only (then no push on
	 * another channel can have counted it in the treated audience) */
	script_arg(sa, s == NULL || (s->channels & (s->channels - 1)) != 0 ? "1" : "0",
	    NULL);
	/* A sent push's text in the subscriber's behaviour record, computed here from
	 * the mirror's copy: record.lua writes it when the stored one is still that
	 * copy, and otherwise computes it itself. */
	if (strcmp(e->outcome, "sent") != 0 || s == NULL ||
	    subbehav_text(s->behav, now, old, sizeof(old), new, sizeof(new)) < 0)
		old[0] = new[0] = '\0';
	script_arg(sa, old, NULL);
	script_arg(sa, new, NULL);
	script_arg_ll(sa, (long long)group);
}

/*
 * Moves to the front of the queue the first DELIVER_RECORD_BATCH outcomes of the
 * first outcome's shard (keys.h), each part keeping its order (a push's outcomes stay
 * in the order they came: they are of one shard). Returns how many: one record.lua
 * call holds one shard. 0 when out of memory.
 */
static size_t
rec_front_shard(struct deliver *dl)
{
	uint32_t shard = keys_shard_of(dl->recq[0].r->pl.sub);
	struct rec *rest;
	size_t i, n = 0, m = 0;

	if (keys_shards() == 1)
		return dl->recq_n < DELIVER_RECORD_BATCH ? dl->recq_n : DELIVER_RECORD_BATCH;
	if ((rest = calloc(dl->recq_n, sizeof(*rest))) == NULL)
		return 0;
	for (i = 0; i < dl->recq_n; i++) {
		if (n < DELIVER_RECORD_BATCH && keys_shard_of(dl->recq[i].r->pl.sub) == shard)
			dl->recq[n++] = dl->recq[i];
		else
			rest[m++] = dl->recq[i];
	}
	memcpy(dl->recq + n, rest, m * sizeof(*rest));
	free(rest);
	return n;
}

/* Writes up to DELIVER_RECORD_BATCH queued outcomes of one shard with one record.lua
 * call. */
static void
rec_flush_batch(struct deliver *dl)
{
	size_t n = dl->recq_n > 0 ? rec_front_shard(dl) : 0;
	struct rec_batch *b = malloc(sizeof(*b) + n * sizeof(b->v[0]));
	struct script_args *sa = &dl->sargs;
	char sk[KEYS_SUB_NKEYS][KEYS_SHARD_MAX];
	char k_log[KEYS_SHARD_MAX], k_stats[KEYS_SHARD_MAX], k_due[KEYS_SHARD_MAX];
	char k_info[KEYS_SHARD_MAX], k_tries[KEYS_SHARD_MAX], k_behav[KEYS_SHARD_MAX];
	struct keys_prefixes px;
	uint32_t shard;
	struct dl_caps caps;
	int64_t now = clock_now();
	size_t i, k, ng = 0, first[DELIVER_RECORD_BATCH];  /* each group's first outcome */

	if (n == 0 || b == NULL)
		goto out;
	shard = keys_shard_of(dl->recq[0].r->pl.sub);
	(void)keys_sub_keys(shard, sk);
	(void)keys_prefixes(shard, &px);
	(void)keys_shard_key(shard, KEYS_PUSHES_LOG, k_log, sizeof(k_log));
	(void)keys_shard_key(shard, KEYS_STATS, k_stats, sizeof(k_stats));
	(void)keys_shard_key(shard, KEYS_RESOLVE_DUE, k_due, sizeof(k_due));
	(void)keys_shard_key(shard, KEYS_RESOLVE_INFO, k_info, sizeof(k_info));
	(void)keys_shard_key(shard, KEYS_RESOLVE_TRIES, k_tries, sizeof(k_tries));
	(void)keys_shard_key(shard, KEYS_BEHAVIOUR, k_behav, sizeof(k_behav));
	b->dl = dl;
	b->n = n;
	memcpy(b->v, dl->recq, n * sizeof(b->v[0]));
	memmove(dl->recq, dl->recq + n, (dl->recq_n - n) * sizeof(dl->recq[0]));
	dl->recq_n -= n;
	/* ORDER RECORD_KEYS */
	script_key(sa, k_log, NULL);
	script_key(sa, k_stats, NULL);
	script_key(sa, k_due, NULL);
	script_key(sa, k_info, NULL);
	script_key(sa, sk[0], NULL);          /* ORDER SUB_KEYS: subscribers */
	script_key(sa, sk[1], NULL);          /* subscribers:changes */
	script_key(sa, sk[2], NULL);          /* consent:epoch */
	script_key(sa, k_tries, NULL);
	script_key(sa, k_behav, NULL);
	/* ORDER RECORD_ARGS */
	script_arg_ll(sa, (long long)n);
	script_arg_ll(sa, now + dl->cfg->resolve_after_s);
	for (i = 0; i < n; i++) {
		const char *o = b->v[i].outcome;

		/* A final outcome without a text gives the push's places under the caps
		 * back (record.lua); the others need no cap keys. */
		if (strcmp(o, "sent") != 0 && strcmp(o, "unknown") != 0 &&
		    strcmp(o, "retry") != 0)
			dl_caps_fill(dl, b->v[i].r, substore_get(dl->ss, b->v[i].r->pl.sub),
			    now, &caps);
		else
			caps.daykey[0] = caps.campkey[0] = caps.lawkey[0] = '\0';
		for (k = 0; k < ng && !rec_same_group(b->v[first[k]].r, b->v[i].r); k++)
			;
		if (k == ng)
			first[ng++] = i;
		rec_keys(sa, b->v[i].r, &caps, &px);
		rec_args(dl, sa, &b->v[i], now, k + 1);
	}
	/* ORDER RECORD_GKEYS, after every outcome's own */
	for (k = 0; k < ng; k++)
		rec_keys_group(sa, b->v[first[k]].r, &px);
	if (script_call_args(dl->cmd, SCRIPT_RECORD, sa, rec_on_reply, b) < 0) {
		rec_batch_done(b, 0);
		return;
	}
	b = NULL;
out:
	free(b);
}

void
dl_flush(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;

	(void)fd;
	(void)what;
	while (dl->recq_n > 0) {
		size_t before = dl->recq_n;

		rec_flush_batch(dl);
		if (dl->recq_n == before)
			break;   /* out of memory: the next kick tries again */
	}
}

/* Queues one outcome; the queue is written once per loop pass. */
static void
rec_enqueue(struct rcpt *r, const char *outcome)
{
	struct deliver *dl = r->job->dl;
	struct timeval zero = { 0, 0 };

	if (dl->recq_n == dl->recq_cap) {
		size_t c = dl->recq_cap ? dl->recq_cap * 2 : 256;
		struct rec *q = realloc(dl->recq, c * sizeof(*q));

		if (q == NULL) {
			if (strcmp(outcome, "retry") != 0)
				rec_later(r);
			return;
		}
		dl->recq = q;
		dl->recq_cap = c;
	}
	dl->recq[dl->recq_n].r = r;
	str_copy(dl->recq[dl->recq_n].outcome, sizeof(dl->recq[0].outcome), outcome);
	dl->recq_n++;
	dl->records_out++;
	r->job->recs_out++;
	if (!evtimer_pending(dl->flush, NULL))
		evtimer_add(dl->flush, &zero);
}

void
dl_record(struct rcpt *r, const char *outcome)
{
	char to[48], detail[300];

	str_copy(r->outcome, sizeof(r->outcome), outcome);
	r->record_tries = 0;
	if (strcmp(outcome, "retry") != 0) {
		struct deliver *dl = r->job->dl;

		if (dl->metrics != NULL)
			metrics_inc(dl->metrics, METRIC_PUSHES, METRICS_L(outcome,
			    channel_name(r->pl.ch), dl_gw_name(dl, r)), 1);
		r->state = RS_RECORDING;
		log_info("event=push outcome=%s push=%s deal=%s sub=%s ch=%s to=%s http=%d "
		    "attempts=%d ms_since_landed=%lld%s%s", outcome, r->push_id, r->job->deal,
		    r->pl.sub, channel_name(r->pl.ch),
		    r->pl.ch == CH_SMS ? log_mask_phone(r->pl.to, to, sizeof(to)) : r->pl.to,
		    r->http_status, r->attempts,
		    (long long)((r->sent_ms ? r->sent_ms : clock_real_ms()) - r->job->landed_ms),
		    r->detail[0] ? " detail=" : "",
		    r->detail[0] ? log_quote(r->detail, detail, sizeof(detail)) : "");
		/* A code that did not go out goes back to the stash (record.lua): the
		 * shard's walk gives it back to the pool soon (deliver_codes.c). */
		if (r->code[0] != '\0' && strcmp(outcome, "sent") != 0 &&
		    strcmp(outcome, "unknown") != 0)
			dl_codes_returned(dl, r->job);
	}
	rec_enqueue(r, outcome);
}
