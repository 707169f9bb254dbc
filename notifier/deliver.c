/*
 * deliver.c: the deliverer: reads jobs from every shard's "pushes" stream, holds them
 * and their recipients until every outcome is recorded, then acks (stages: admit,
 * send, record).
 *
 * A job (one "pushes" entry) holds up to job_size recipients of one shard, the
 * stream's (docs/sharding.md, step 3); each goes through
 * admit (deliver_admit.c), send (deliver_send.c) and record (deliver_record.c), as
 * deliver_int.h draws. This file owns the jobs, the earliest-expiry-first queue and
 * the reading. Must never ack a job before every recipient's outcome is recorded,
 * nor drop one it could not build for want of memory: that job stays pending.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "config.h"
#include "deliver.h"
#include "deliver_int.h"
#include "fault.h"
#include "formats.h"
#include "greader.h"
#include "gwpool.h"
#include "httpc.h"
#include "keys.h"
#include "layout.h"
#include "log.h"
#include "metrics.h"
#include "owner.h"
#include "rconn.h"
#include "redisutil.h"
#include "sendpolicy.h"
#include "strcopy.h"
#include "subscriber.h"
#include "substore.h"
#include "tz.h"

#define DELIVER_TICK_MS 100
#define DELIVER_RETRY_MS 1000     /* pause after a failed read */
#define DELIVER_DELAY_MS 1000     /* how often deferred recipients are looked at */

/* Every shard's reader: a reread walks each one's own pending list, which is short
 * (the jobs it holds or left pending), so asking all costs little. */
void
dl_reread(struct deliver *dl, int failed)
{
	uint32_t k;

	for (k = 0; k < dl->nrd; k++)
		greader_reread(dl->rd[k].g, failed);
}

void
dl_read(struct deliver *dl)
{
	uint32_t k;

	for (k = 0; k < dl->nrd; k++)
		greader_read(dl->rd[k].g);
}

const char *
dl_gw_name(const struct deliver *dl, const struct rcpt *r)
{
	return r->gw_index < dl->ngws ? gw_config_of(dl->gws[r->gw_index])->name : "-";
}

/* ---- the send queue: a binary min-heap on the deal's expiry ---- */

static int
heap_less(const struct rcpt *a, const struct rcpt *b)
{
	return a->job->exp < b->job->exp;
}

int
dl_heap_push(struct deliver *dl, struct rcpt *r)
{
	size_t i;

	if (dl->heap_n == dl->heap_cap) {
		size_t c = dl->heap_cap ? dl->heap_cap * 2 : 256;
		struct rcpt **h = realloc(dl->heap, c * sizeof(*h));
		if (h == NULL)
			return -1;
		dl->heap = h;
		dl->heap_cap = c;
	}
	i = dl->heap_n++;
	while (i > 0 && heap_less(r, dl->heap[(i - 1) / 2])) {
		dl->heap[i] = dl->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	dl->heap[i] = r;
	return 0;
}

struct rcpt *
dl_heap_pop(struct deliver *dl)
{
	struct rcpt *top, *last;
	size_t i = 0, c;

	if (dl->heap_n == 0)
		return NULL;
	top = dl->heap[0];
	last = dl->heap[--dl->heap_n];
	for (;;) {
		c = 2 * i + 1;
		if (c >= dl->heap_n)
			break;
		if (c + 1 < dl->heap_n && heap_less(dl->heap[c + 1], dl->heap[c]))
			c++;
		if (!heap_less(dl->heap[c], last))
			break;
		dl->heap[i] = dl->heap[c];
		i = c;
	}
	if (dl->heap_n > 0)
		dl->heap[i] = last;
	return top;
}

/* ---- jobs ---- */

static void
job_free(struct job *j)
{
	size_t i;

	for (i = 0; i < j->n; i++) {
		if (j->r[i].timer != NULL)
			event_free(j->r[i].timer);
		free(j->r[i].line);
		free(j->r[i].sent_text);
	}
	free(j->r);
	free(j);
}

static void
job_unlink(struct job *j)
{
	struct deliver *dl = j->dl;

	if (j->prev)
		j->prev->next = j->next;
	else
		dl->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	dl->njobs--;
}

static int
job_held(const struct deliver *dl, uint32_t shard, const char *entry)
{
	const struct job *j;

	for (j = dl->jobs; j != NULL; j = j->next)
		if (j->shard == shard && strcmp(j->entry, entry) == 0)
			return 1;
	return 0;
}

static void
job_on_ack(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct job *j = arg;
	struct deliver *dl = j->dl;

	(void)rc;
	dl->acks_out--;
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		log_warnx("event=ack_failed job=%s err=\"%s\"", j->entry,
		    r ? r->str : "no reply");
	/* Either way the job leaves memory: every outcome is recorded, so a redelivery
	 * only finds final states and acks it then. */
	job_unlink(j);
	job_free(j);
	dl_read(dl);
}

static void
dl_on_park_timer(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;

	(void)fd;
	(void)what;
	dl->park_due = 0;
	if (!dl->stopping)
		dl_reread(dl, 0);
}

/* Reads the pending list again at monotonic ms `at` (or earlier, for another). */
static void
dl_park_arm(struct deliver *dl, int64_t at)
{
	int64_t now = clock_mono_ms(), in = at > now ? at - now : 0;
	struct timeval tv = { (time_t)(in / 1000), (suseconds_t)((in % 1000) * 1000) };

	if (dl->park_timer == NULL || (dl->park_due != 0 && dl->park_due <= at))
		return;
	dl->park_due = at;
	evtimer_add(dl->park_timer, &tv);
}

/* Called whenever a recipient reaches RS_DONE. */
static void
job_maybe_done(struct job *j)
{
	struct deliver *dl = j->dl;

	if (j->open > 0 || j->acking || j->recs_out > 0)
		return;
	if (j->unrecorded) {
		/* Left pending: a redelivery (or the job's new owner) settles what could
		 * not be recorded here. */
		job_unlink(j);
		job_free(j);
		dl_reread(dl, 1);
		return;
	}
	if (j->parked) {
		/* Left pending, out of memory: read again when its earliest wait ends
		 * (admit.lua takes a "retry" push again, and skips what is final). */
		dl_park_arm(dl, j->park_until);
		job_unlink(j);
		job_free(j);
		dl_read(dl);
		return;
	}
	j->acking = 1;
	if (rconn_cmd(dl->cmd, job_on_ack, j, 0, "XACK %s " DELIVER_GROUP " %s",
	    dl->rd[j->shard].stream, j->entry) < 0) {
		log_warnx("event=ack_failed job=%s err=\"not connected\"", j->entry);
		job_unlink(j);
		job_free(j);
		return;
	}
	dl->acks_out++;
}

void
dl_parked(struct rcpt *r)
{
	struct job *j = r->job;

	if (r->state == RS_DONE)
		return;
	if (!j->parked || r->park_until < j->park_until)
		j->park_until = r->park_until;
	j->parked = 1;
	log_debug("event=push_parked push=%s wait_ms=%lld", r->push_id,
	    (long long)(r->park_until - clock_mono_ms()));
	dl_rcpt_done(r);
}

void
dl_rcpt_done(struct rcpt *r)
{
	if (r->state == RS_DONE)
		return;
	r->state = RS_DONE;
	r->job->open--;
	job_maybe_done(r->job);
}

void
dl_job_recorded(struct job *j)
{
	if (j->recs_out > 0 && --j->recs_out == 0)
		job_maybe_done(j);
}

void
dl_job_drop(struct job *j)
{
	struct rcpt *r = j->r;
	size_t i, n = j->n, left = j->open;

	j->unrecorded = 1;
	/* The last open recipient may free j: nothing of it is read after that. */
	for (i = 0; i < n && left > 0; i++)
		if (r[i].state != RS_DONE) {
			left--;
			dl_rcpt_done(&r[i]);
		}
}

/* Reads an epoch-seconds field; *out = 0 when absent. -1 when present but bad. */
static int
job_time_field(const struct redisReply *f, const char *name, int64_t *out)
{
	const char *v = ru_field(f, name, NULL);
	char *end;
	long long t;

	*out = 0;
	if (v == NULL)
		return 0;
	errno = 0;
	t = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || t < 0)
		return -1;
	*out = t;
	return 0;
}

/*
 * Builds a job from a stream entry. Returns the job; NULL with *oom = 0 when the
 * entry is malformed (logged by the caller, acked: it can never be sent), or NULL
 * with *oom = 1 when memory ran out (left pending, read again later).
 */
static struct job *
job_new(struct deliver *dl, uint32_t shard, const char *entry, const struct redisReply *f,
    int *oom)
{
	struct job *j = NULL;
	const char *deal, *dentry, *camp, *pool;
	size_t i, n = 0;

	*oom = 0;
	deal = ru_field(f, "deal", NULL);
	dentry = ru_field(f, "entry", NULL);
	if (deal == NULL || dentry == NULL || strlen(deal) > MODEL_ID_MAX ||
	    strlen(dentry) >= 64)
		return NULL;
	camp = ru_field(f, "camp", NULL);
	pool = ru_field(f, "pool", NULL);
	if ((camp != NULL && strlen(camp) > MODEL_TEXT_MAX) ||
	    (pool != NULL && strlen(pool) > MODEL_TEXT_MAX))
		return NULL;
	for (i = 0; i + 1 < f->elements; i += 2)
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, "r") == 0)
			n++;
	if (n == 0)
		return NULL;
	if (fault_hit("deliver.job") || (j = calloc(1, sizeof(*j))) == NULL ||
	    (j->r = calloc(n, sizeof(*j->r))) == NULL) {
		free(j);
		*oom = 1;
		return NULL;
	}
	j->dl = dl;
	j->shard = shard;
	str_copy(j->entry, sizeof(j->entry), entry);
	str_copy(j->deal, sizeof(j->deal), deal);
	str_copy(j->deal_entry, sizeof(j->deal_entry), dentry);
	str_copy(j->camp, sizeof(j->camp), camp ? camp : "");
	/* A quota's implicit pool (docs/sharding.md 4c "The quota") is the sharded
	 * layout's: a job of it read in the single-instance layout (after --to-single)
	 * names no pool, as the deal it was planned for. */
	str_copy(j->pool, sizeof(j->pool), pool != NULL && (layout_current() != NULL ||
	    keys_pool_quota(pool) == 0) ? pool : "");
	j->landed_ms = strtoll(dentry, NULL, 10);
	if (job_time_field(f, "exp", &j->exp) < 0 || j->exp == 0 ||
	    job_time_field(f, "start", &j->start) < 0)
		goto bad;
	/* No other notifier can have this job before claim_idle_ms after it was read. */
	j->lease_until = sendpolicy_lease_until(clock_mono_ms() -
	    dl->cfg->redis_command_timeout_ms, dl->cfg->claim_idle_ms);
	for (i = 0; i + 1 < f->elements; i += 2) {
		const struct redisReply *k = f->element[i], *v = f->element[i + 1];
		struct rcpt *r = &j->r[j->n];

		if (k->type != REDIS_REPLY_STRING || strcmp(k->str, "r") != 0 ||
		    v->type != REDIS_REPLY_STRING)
			continue;
		if ((r->line = strndup(v->str, v->len)) == NULL) {
			*oom = 1;
			goto bad;
		}
		r->job = j;
		j->n++;
		if (pushline_parse(r->line, &r->pl) < 0)
			goto bad;
		str_join3(r->push_id, sizeof(r->push_id), j->deal_entry, ":", r->pl.sub);
		str_append(r->push_id, sizeof(r->push_id), ":");
		str_append(r->push_id, sizeof(r->push_id), channel_name(r->pl.ch));
		r->state = RS_ADMITTING;
	}
	if (j->n == 0)
		goto bad;
	j->open = j->n;
	return j;
bad:
	job_free(j);
	return NULL;
}

/* ---- reading jobs ---- */

/* greader_batch_fn: every job of a batch goes to admit. */
static void
deliver_on_batch(void *arg, const struct redisReply *entries)
{
	struct dl_reader *rd = arg;
	struct deliver *dl = rd->dl;
	const struct redisReply *fields;
	enum formats_verdict fv = FORMATS_OK;
	const char *id;
	size_t i;
	int oom, v = 1;

	for (i = 0; i < entries->elements; i++) {
		struct job *j;

		if (ru_entry(entries, i, &id, &fields) < 0 || job_held(dl, rd->shard, id))
			continue;
		if (fields != NULL)
			v = formats_of_entry(fields, &fv);
		if (fields != NULL && fv == FORMATS_TOO_NEW) {
			/* Written by a newer release: left pending, never acked, so that a
			 * notifier that reads it takes it over (claim_idle_ms). */
			log_errorx("event=format_too_new stream=%s job=%s fv=%d "
			    "reads=%d-%d action=leave_pending", rd->stream, id, v,
			    FORMATS_READ_MIN, FORMATS_READ_MAX);
			continue;
		}
		oom = 0;
		j = fields != NULL && fv == FORMATS_OK ?
		    job_new(dl, rd->shard, id, fields, &oom) : NULL;
		if (j != NULL)
			j->reread = greader_in_pending(rd->g);
		if (j == NULL && fields != NULL && oom) {
			log_errorx("event=job_failed job=%s err=\"out of memory\" "
			    "action=read_again", id);
			dl_reread(dl, 1);
			continue;
		}
		if (j == NULL) {
			log_errorx("event=bad_job job=%s action=ack", id);
			if (rconn_cmd(dl->cmd, NULL, NULL, 0, "XACK %s " DELIVER_GROUP " %s",
			    rd->stream, id) < 0)
				dl_reread(dl, 1);
			continue;
		}
		j->next = dl->jobs;
		if (dl->jobs)
			dl->jobs->prev = j;
		dl->jobs = j;
		dl->njobs++;
		if (dl_admit(dl, j, NULL) < 0) {
			dl_reread(dl, 1);
			job_unlink(j);
			job_free(j);
		}
	}
}

/* greader_gate_fn: admit needs every subscriber's zone and caps (the first full
 * load), and at most a few batches of jobs are held in memory (backpressure). Each
 * shard's reader asks on its own, so up to one batch per shard may arrive past the
 * bound: at most (4 + shards) × deliver_batch jobs are held. */
static int
deliver_gate(void *arg)
{
	struct dl_reader *rd = arg;
	struct deliver *dl = rd->dl;

	return !dl->stopping && rconn_is_ready(dl->cmd) && substore_ready(dl->ss) &&
	    owner_serves(dl->owner, rd->shard) &&
	    (dl->owner == NULL || substore_shard_ready(dl->ss, rd->shard)) &&
	    dl->njobs < (size_t)dl->cfg->deliver_batch * 4 &&
	    dl->heap_n < (size_t)dl->cfg->max_in_flight * 4;
}

void
deliver_set_owner(struct deliver *dl, const struct owner *o)
{
	dl->owner = o;
}

void
deliver_shard_change(struct deliver *dl, uint32_t k, int serving)
{
	struct job *j;

	if (k >= dl->nrd)
		return;
	if (serving) {
		greader_takeover(dl->rd[k].g);
		return;
	}
	for (j = dl->jobs; j != NULL; j = j->next)
		if (j->shard == k && !j->lost) {
			j->lost = 1;
			j->unrecorded = 1;   /* the next owner acks it */
		}
	log_info("event=shard_jobs_dropped shard=%u", k);
}

int
deliver_shard_busy(const struct deliver *dl, uint32_t k)
{
	const struct job *j;
	size_t i;

	for (j = dl->jobs; j != NULL; j = j->next) {
		if (j->shard != k)
			continue;
		/* An outcome still out to record.lua (a "retry" record, unfenced) could
		 * land after the next owner's claim: the shard is not handed over yet. */
		if (j->acking || j->recs_out > 0)
			return 1;
		for (i = 0; i < j->n; i++)
			switch (j->r[i].state) {
			case RS_ADMITTING:
			case RS_CLAIMING:
			case RS_RENEWING:
			case RS_SENDING:
			case RS_RECORDING:
				return 1;
			default:
				break;
			}
	}
	return 0;
}

struct deliver *
deliver_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct rconn *cmd, struct httpc *http,
    const struct substore *ss, struct tzcache *zones)
{
	struct deliver *dl;
	struct timeval tv = { 0, DELIVER_TICK_MS * 1000 };
	struct timeval dtv = { DELIVER_DELAY_MS / 1000, (DELIVER_DELAY_MS % 1000) * 1000 };
	struct err err;
	size_t i;
	uint32_t k;

	if ((dl = calloc(1, sizeof(*dl))) == NULL)
		return NULL;
	dl->base = base;
	dl->cfg = cfg;
	dl->cmd = cmd;
	dl->durable.replicas = cfg->wait_replicas;
	dl->durable.timeout_ms = cfg->wait_timeout_ms;
	dl->http = http;
	dl->ss = ss;
	dl->quiet = cfg->quiet;
	dl->zones = zones;
	{
		char why[160];

		/* The area codes' zones: one that is not in tzdata keeps its numbers'
		 * pushes waiting, never sent. */
		if (quiet_zones_load(dl->zones, why, sizeof(why)) < 0)
			log_warnx("event=timezone_unavailable tz=\"%s\" action=hold_its_area_codes",
			    why);
	}
	for (i = 0; i < cfg->ngateways; i++) {
		err_clear(&err);
		if ((dl->gws[i] = gw_new(http, &cfg->gateways[i], &err)) == NULL) {
			log_errorx("event=gateway_invalid gw=%s err=\"%s\"",
			    cfg->gateways[i].name, err.msg);
			goto err;
		}
		dl->ngws++;
	}
	{
		long budget[CONFIG_GATEWAYS_MAX], rbudget[CONFIG_GATEWAYS_MAX];
		struct gwpool_limits lim;

		memset(&lim, 0, sizeof(lim));
		for (i = 0; i < cfg->ngateways; i++) {
			budget[i] = cfg->gateways[i].daily_budget;
			rbudget[i] = cfg->gateways[i].recipient_daily_budget;
		}
		lim.breaker_failures = cfg->breaker_failures;
		lim.open_ms = cfg->breaker_open_ms;
		lim.daily_budget = budget;
		lim.recipient_daily_budget = rbudget;
		err_clear(&err);
		if ((dl->pool = gwpool_new(cfg->gateways, cfg->ngateways, &lim, &err)) == NULL) {
			log_errorx("event=gateway_invalid err=\"%s\"", err.msg);
			goto err;
		}
	}
	if ((dl->wake = evtimer_new(base, dl_on_wake, dl)) == NULL)
		goto err;
	if ((dl->flush = evtimer_new(base, dl_flush, dl)) == NULL)
		goto err;
	if ((dl->pump_ev = evtimer_new(base, dl_on_wake, dl)) == NULL)
		goto err;
	if ((dl->park_timer = evtimer_new(base, dl_on_park_timer, dl)) == NULL)
		goto err;
	if ((dl->tick = event_new(base, -1, EV_PERSIST, dl_on_wake, dl)) == NULL)
		goto err;
	event_add(dl->tick, &tv);
	dl->delay_timer = event_new(base, -1, EV_PERSIST, dl_on_delay_timer, dl);
	if (dl->delay_timer == NULL)
		goto err;
	event_add(dl->delay_timer, &dtv);
	dl->lease_timer = event_new(base, -1, EV_PERSIST, dl_on_lease_timer, dl);
	if (dl->lease_timer == NULL)
		goto err;
	{
		long ms = cfg->claim_idle_ms / 3;
		struct timeval ctv = { ms / 1000, (ms % 1000) * 1000 };

		event_add(dl->lease_timer, &ctv);
	}
	/* One reader per shard's job stream, each on its own connection. */
	dl->nrd = keys_shards();
	if ((dl->rd = calloc(dl->nrd, sizeof(*dl->rd))) == NULL)
		goto err;
	for (k = 0; k < dl->nrd; k++) {
		struct dl_reader *rd = &dl->rd[k];
		char guard[KEYS_GROUP_MAX];
		struct greader_config gc = { "deliver", rd->stream, DELIVER_GROUP,
			cfg->consumer, cfg->deliver_batch, cfg->block_ms,
			cfg->redis_command_timeout_ms, DELIVER_RETRY_MS, cfg->claim_idle_ms,
			/* A dead notifier's deals (the shard's group on deals: one may be a
			 * cancel not yet applied) are taken over before its jobs. */
			"deals", guard, 0 };

		if (keys_deals_group(k, guard, sizeof(guard)) < 0)
			goto err;
		rd->dl = dl;
		rd->shard = k;
		if (keys_shard_key(k, KEYS_PUSHES, rd->stream, sizeof(rd->stream)) < 0)
			goto err;
		rd->g = greader_new(base, rcfg, &gc, deliver_on_batch, deliver_gate, rd);
		if (rd->g == NULL)
			goto err;
		greader_set_cmd(rd->g, cmd);
	}
	return dl;
err:
	deliver_free(dl);
	return NULL;
}

void
deliver_set_metrics(struct deliver *dl, struct metrics *m)
{
	dl->metrics = m;
}

void
deliver_set_pause(struct deliver *dl, const struct pause *p)
{
	dl->pause = p;
}

void
deliver_resume(struct deliver *dl)
{
	dl_kick(dl);
}

void
deliver_export_gateways(struct deliver *dl)
{
	struct gwpool_stats st;
	size_t i;

	if (dl->metrics == NULL)
		return;
	for (i = 0; i < dl->ngws; i++) {
		if (gwpool_state(dl->pool, i, clock_mono_ms(), clock_now(), &st) < 0)
			continue;
		metrics_set(dl->metrics, METRIC_GATEWAY_BREAKER_STATE, METRICS_L(st.name),
		    (double)st.breaker);
		metrics_set(dl->metrics, METRIC_GATEWAY_IN_FLIGHT, METRICS_L(st.name),
		    (double)st.in_flight);
	}
}

void
deliver_stop(struct deliver *dl)
{
	struct rcpt *r;
	struct job *j;
	size_t i;
	uint32_t k;

	dl->stopping = 1;
	for (k = 0; k < dl->nrd; k++)
		greader_stop(dl->rd[k].g);
	/* Admitted but never claimed: "admitted" in Redis, so the redelivered job
	 * admits and sends them again. */
	while ((r = dl_heap_pop(dl)) != NULL)
		r->state = RS_DONE;
	for (j = dl->jobs; j != NULL; j = j->next)
		for (i = 0; i < j->n; i++)
			if (j->r[i].state == RS_WAITING && j->r[i].timer != NULL)
				evtimer_del(j->r[i].timer);
}

int
deliver_idle(const struct deliver *dl)
{
	return dl->in_flight == 0 && dl->claiming == 0 && dl->admits_out == 0 &&
	    dl->records_out == 0 && dl->acks_out == 0 && dl->leases_out == 0 &&
	    dl_codes_idle(dl);
}

void
deliver_free(struct deliver *dl)
{
	struct job *j, *next;
	size_t i;
	uint32_t k;

	if (dl == NULL)
		return;
	for (k = 0; k < dl->nrd && dl->rd != NULL; k++)
		greader_free(dl->rd[k].g);
	free(dl->rd);
	for (j = dl->jobs; j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	for (i = 0; i < dl->ngws; i++)
		gw_free(dl->gws[i]);
	if (dl->tick != NULL)
		event_free(dl->tick);
	if (dl->delay_timer != NULL)
		event_free(dl->delay_timer);
	if (dl->wake != NULL)
		event_free(dl->wake);
	if (dl->lease_timer != NULL)
		event_free(dl->lease_timer);
	if (dl->flush != NULL)
		event_free(dl->flush);
	if (dl->pump_ev != NULL)
		event_free(dl->pump_ev);
	if (dl->park_timer != NULL)
		event_free(dl->park_timer);
	free(dl->recq);
	dl_codes_free(dl);
	script_args_release(&dl->sargs);
	gwpool_free(dl->pool);
	free(dl->heap);
	free(dl);
}
