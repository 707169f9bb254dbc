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
#include "durable.h"
#include "fault.h"
#include "formats.h"
#include "greader.h"
#include "ingest.h"
#include "ingest_int.h"
#include "keys.h"
#include "layout.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "owner.h"
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

/* The entry's failure count's field in deals:tries: the entry on one Redis, where
 * one group reads deals; "<entry>:<group>" with a group per shard. */
static void
ingest_tries_field(const struct ingest *in, const char *entry, char *buf, size_t size)
{
	if (strcmp(in->group, "notifier") != 0)
		snprintf(buf, size, "%s:%s", entry, in->group);
	else
		snprintf(buf, size, "%s", entry);
}

static void
ingest_read(struct ingest *in)
{
	greader_read(in->rd);
}

/* The pending list is read again later (a failed step). */
static void
ingest_reread(struct ingest *in)
{
	if (!in->zombie)
		greader_reread(in->rd, 1);
}

/* One piece of work of the batch ended: the last one reads on, or frees an ingester
 * that was freed while work was still in flight. */
static void
ingest_done(struct ingest *in)
{
	if (--in->outstanding > 0)
		return;
	if (in->zombie) {
		if (in->detached == 0)
			free(in);
	} else {
		ingest_read(in);
	}
}

/* A detached plan's job ended (ingest_plan_detach): it no longer held the batch. */
static void
ingest_detached_done(struct ingest *in)
{
	in->detached--;
	if (in->zombie && in->outstanding == 0 && in->detached == 0)
		free(in);
}

void
ingest_plan_detach(struct ingest_job *j)
{
	struct ingest *in = j->in;

	if (j->detached || in->detached >= INGEST_PLANS_MAX)
		return;
	/* Only from inside a batch (ingest_on_batch holds outstanding above zero). */
	j->detached = 1;
	in->detached++;
	in->outstanding--;
}

/* 1 when the deal entry (by_deal 0) or deal id (by_deal 1) s is being planned. */
static int
ingest_planning(const struct ingest *in, const char *s, int by_deal)
{
	const struct ingest_plan *p;

	for (p = in->plans; p != NULL; p = p->next)
		if (strcmp(by_deal ? p->job->deal : p->job->entry, s) == 0)
			return 1;
	return 0;
}

/* A new job for entry; it holds the next read back until ingest_job_put drops its
 * last reference. NULL on OOM (then the pending list is read again later). */
struct ingest_job *
ingest_job_new(struct ingest *in, const char *entry, const char *deal)
{
	struct ingest_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_errorx("event=ingest_failed entry=%s err=\"out of memory\"", entry);
		ingest_reread(in);
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

/* The entry is done in this shard: XACK in the shard's group, and its failure count
 * dropped. deals is in another slot than what the steps wrote, so this follows
 * them (after their WAIT); a crash in between reads the entry again, which finds
 * the step done (planned, cancelled) and acks then. */
static void
ingest_on_ack(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct ingest_job *j = arg;

	(void)rc;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		log_warnx("event=ack_failed stream=deals group=%s entry=%s err=\"%s\"",
		    j->in->group, j->entry, r != NULL ? r->str : "no reply");
		ingest_job_fail(j, 0, "ack", r != NULL ? r->str : "no reply");
	}
	ingest_job_put(j);
}

static int
ingest_ack_send(struct ingest_job *j)
{
	struct ingest *in = j->in;
	char field[sizeof(j->entry) + KEYS_GROUP_MAX + 1];

	ingest_tries_field(in, j->entry, field, sizeof(field));
	if (rconn_cmd(in->cmd, NULL, NULL, 0, "HDEL %s %s", INGEST_TRIES, field) < 0 ||
	    rconn_cmd(in->cmd, ingest_on_ack, j, 0, "XACK %s %s %s", INGEST_STREAM,
	    in->group, j->entry) < 0)
		return -1;
	return 0;
}

/* WAIT's answer before the ack: every write of the connection so far (the shard's
 * plan, cancel or update) on enough replicas, or the entry stays pending and is
 * read again (its step then answers done, and the ack is tried again). */
static void
ingest_on_ack_wait(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct ingest_job *j = arg;
	long want = j->in->cfg->wait_replicas;

	(void)rc;
	if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < want) {
		log_warnx("event=ack_not_durable stream=deals group=%s entry=%s "
		    "replicas_wanted=%ld replicas=%lld", j->in->group, j->entry, want,
		    r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL);
		ingest_job_fail(j, 0, "ack", "not on enough replicas");
	} else if (ingest_ack_send(j) == 0) {
		return;                 /* ingest_on_ack drops the reference */
	} else {
		ingest_job_fail(j, 0, "ack", "redis not ready");
	}
	ingest_job_put(j);
}

/* Acks the entry in the shard's group. In the sharded layout the shard's step and
 * deals may live on two primaries, so the step is made durable first (WAIT, when
 * redis.wait_replicas is set and the step's own call did not WAIT already; its
 * deadline is WAIT's own timeout plus the connection's usual margin). On one Redis they are on one primary, whose
 * replication is one ordered stream: a replica that has the ack has the step, so
 * the ack follows at once, as it did when the scripts acked. Takes a reference
 * until the XACK answers. */
static int
ingest_ack(struct ingest_job *j)
{
	struct ingest *in = j->in;

	if (in->cfg->wait_replicas > 0 && layout_current() != NULL && !j->durable ?
	    rconn_cmd(in->cmd, ingest_on_ack_wait, j, in->cfg->wait_timeout_ms +
	    rconn_timeout_ms(in->cmd), "WAIT %ld %ld", in->cfg->wait_replicas,
	    in->cfg->wait_timeout_ms) < 0 :
	    ingest_ack_send(j) < 0)
		return -1;
	j->acking = 1;
	j->refs++;
	return 0;
}

void
ingest_job_put(struct ingest_job *j)
{
	struct ingest *in = j->in;

	if (j->refs == 1 && !j->failed && j->ack && !j->acking && ingest_ack(j) < 0)
		ingest_job_fail(j, 0, "ack", "redis not ready");
	if (--j->refs > 0)
		return;
	int detached = j->detached;

	if (j->failed && j->counts && in->cfg->max_tries > 0)
		ingest_tries(in, j->entry, j->deal, j->err);
	else if (j->failed)
		ingest_reread(in);
	free(j);
	if (detached)
		ingest_detached_done(in);
	else
		ingest_done(in);
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
			ingest_reread(in);
		}
	} else {
		log_warnx("event=deal_failed entry=%s deal=%s tries=? err=\"%s\" "
		    "count_err=\"%s\"", j->entry, j->deal, j->err,
		    r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		ingest_reread(in);
	}
	free(j);
	ingest_done(in);
}

/* Counts one failed attempt at entry (tries.lua); the max_tries-th dead-letters it
 * with reason max_tries and acks it, so one bad entry cannot stay pending forever. */
static void
ingest_tries(struct ingest *in, const char *entry, const char *deal, const char *why)
{
	char max[32], keep[32], field[128], msg[320];
	const char *args[9] = { INGEST_TRIES, INGEST_STREAM, INGEST_DEAD_STREAM, entry,
		in->group, max, keep, msg, field };
	struct ingest_job *j;

	snprintf(max, sizeof(max), "%ld", in->cfg->max_tries);
	snprintf(keep, sizeof(keep), "%d", INGEST_KEEP_S);
	ingest_tries_field(in, entry, field, sizeof(field));
	/* Each shard gives up on its own: its dead letter says which. */
	if (keys_shards() > 1)
		snprintf(msg, sizeof(msg), "shard %u: %s", (unsigned)in->shard, why);
	else
		snprintf(msg, sizeof(msg), "%s", why);
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		ingest_reread(in);
		return;
	}
	j->in = in;
	snprintf(j->entry, sizeof(j->entry), "%s", entry);
	snprintf(j->deal, sizeof(j->deal), "%s", deal);
	snprintf(j->err, sizeof(j->err), "%s", why);
	if (script_call_named(in->cmd, "tries", 3, 9, args, NULL, ingest_on_tries, j) < 0) {
		log_warnx("event=deal_failed entry=%s deal=%s tries=? err=\"%s\"", entry, deal,
		    why);
		ingest_reread(in);
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
	/* Tests: the process dies as under kill -9 once the n-th chunk is answered
	 * (DP_FAULTS=plan.kill@n; n = the last chunk: after the marker, before what
	 * follows it, docs/sharding.md 4a). */
	if (fault_hit("plan.kill"))
		_exit(137);
	if (strcmp(st, "duplicate") == 0) {
		/* Planned in this shard already (a crash before the ack, or another
		 * entry of the deal): acked now. */
		if (c->chunk == 0)
			log_info("event=deal_duplicate deal=%s entry=%s shard=%u planned_by=%s",
			    j->deal, j->entry, (unsigned)j->in->shard, r->element[1]->str);
		j->ack = 1;
	} else if (strcmp(st, "retry") == 0) {
		ingest_job_fail(j, 0, "plan", r->element[1]->str);
	} else if (strcmp(st, "fenced") == 0) {
		/* Another notifier holds the shard now (docs/sharding.md 4d): the entry
		 * stays pending for it to take over; not a failed try. */
		log_warnx("event=plan_fenced deal=%s entry=%s shard=%u holder=%s",
		    j->deal, j->entry, (unsigned)j->in->shard, r->element[1]->str);
		ingest_job_fail(j, 0, "plan", "fenced: another notifier holds the shard");
	} else if (strcmp(st, "ok") == 0 && c->chunk + 1 == j->nchunks) {
		log_info("event=deal_planned deal=%s entry=%s shard=%u recipients=%s "
		    "matched=%zu held_out=%zu paused=%zu unrenderable=%zu gone=%zu "
		    "chunks=%zu ms_since_landed=%lld", j->deal, j->entry,
		    (unsigned)j->in->shard, r->elements > 2 &&
		    r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "?",
		    j->matched, j->held_out, j->paused, j->unrenderable,
		    j->plan != NULL ? match_run_gone(j->plan->run) : 0, j->nchunks,
		    (long long)(clock_real_ms() - j->landed_ms));
		j->ack = 1;
	}
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
	} else if (strcmp(c->script, "cancel") == 0) {
		j->ack = 1;
	} else if (strcmp(c->script, "retext") == 0) {
		ingest_update_on_retext(j, c->chunk, r);
	}
	if (j->plan != NULL && (strcmp(c->script, "plan") == 0 ||
	    strcmp(c->script, "retext") == 0))
		ingest_plan_on_reply(j->plan);
	else if (j->plan != NULL && strcmp(c->script, "ab_hold") == 0) {
		j->plan->holds--;       /* the next slice may go (ingest_plan_turn) */
		ingest_plan_kick(j->plan);
	}
	free(c);
	ingest_job_put(j);
}

/* The last plan chunk's answer, after its WAIT: the marker and the ack it wrote have
 * reached a replica, or the shortfall is said (the claims of its pushes WAIT for
 * themselves, and a WAIT confirms every earlier write: no text leaves on a plan a
 * failover could revert). */
static void
ingest_on_last_chunk(struct rconn *rc, struct redisReply *r, int durable, void *arg)
{
	struct ingest_call *c = arg;

	/* Its WAIT covered every earlier write of the plan: the ack needs no other. */
	c->job->durable = durable;
	if (r != NULL && r->type != REDIS_REPLY_ERROR && !durable)
		log_warnx("event=plan_not_durable deal=%s entry=%s replicas_wanted=%ld",
		    c->job->deal, c->job->entry, c->job->in->cfg->wait_replicas);
	ingest_on_script(rc, r, c);
}

/* Sends one script call for the job; it holds a reference until it answers. The
 * plan's last chunk (its marker) is made durable first (durable.h). */
void
ingest_call(struct ingest_job *j, const char *script, int nkeys, int nargs,
    const char **args, const size_t *lens, size_t chunk)
{
	struct durable_config wait;
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
	wait.replicas = j->in->cfg->wait_replicas;
	wait.timeout_ms = j->in->cfg->wait_timeout_ms;
	if ((strcmp(script, "plan") == 0 && chunk + 1 == j->nchunks ?
	    durable_script_call(j->in->cmd, &wait, script, nkeys, nargs, args, lens,
	    ingest_on_last_chunk, c) : script_call_named(j->in->cmd, script, nkeys, nargs,
	    args, lens, ingest_on_script, c)) < 0) {
		log_warnx("event=%s_failed deal=%s entry=%s err=\"redis not ready\"", script,
		    j->deal, j->entry);
		ingest_job_fail(j, 0, script, "redis not ready");
		free(c);
		return;
	}
	j->refs++;
}

/* Dead-letters the entry (dead.lua: XADD deals:dead + XACK). */
void
ingest_dead(struct ingest *in, const char *entry, const struct err *e,
    const char *payload, size_t len)
{
	/* ORDER DEAD_KEYS: the header of dead.lua. */
	const char *args[8] = { INGEST_DEAD_STREAM, INGEST_STREAM, entry, in->group,
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
	if ((j = ingest_job_new(in, entry, NULL)) == NULL)
		return;
	if (in->shard != 0) {
		/* Shard 0's reader writes the one dead letter of the entry; this one
		 * wrote nothing that a WAIT would need to cover. */
		j->ack = 1;
		j->durable = 1;
		ingest_job_put(j);
		return;
	}
	log_warnx("event=deal_dead entry=%s reason=%s field=%s err=\"%s\"", entry, e->code,
	    field[0] ? field : "-", e->msg);
	if (in->metrics != NULL)
		metrics_inc(in->metrics, METRIC_DEALS_DEAD, METRICS_L(e->code), 1);
	ingest_call(j, "dead", 2, 8, args, lens, 0);
	ingest_job_put(j);
}

static void
ingest_cancel(struct ingest *in, const char *entry, const struct deal *d)
{
	char key[MODEL_ID_MAX + KEYS_SHARD_MAX], now[32], keep[32];
	/* ORDER CANCEL_KEYS: the header of cancel.lua. */
	const char *args[3] = { key, now, keep };
	struct ingest_job *j;

	keys_per(in->shard, KEYS_DEAL, d->id, key, sizeof(key));
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(keep, sizeof(keep), "%d", INGEST_KEEP_S);
	log_info("event=deal_cancel deal=%s entry=%s shard=%u", d->id, entry,
	    (unsigned)in->shard);
	if ((j = ingest_job_new(in, entry, d->id)) == NULL)
		return;
	ingest_call(j, "cancel", 1, 3, args, NULL, 0);
	ingest_job_put(j);
}

/* The first field name given more than once in an entry's flat field/value array,
 * or NULL. Sorted copy: an entry may carry many fields. */
int
ingest_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

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
	enum formats_verdict fv;
	int v;

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
	v = formats_of_entry(fields, &fv);
	if (fv == FORMATS_TOO_NEW) {
		/* Written by a newer release: left pending, never dead-lettered, so that a
		 * notifier that reads it takes it over (claim_idle_ms) and nothing is lost. */
		log_errorx("event=format_too_new stream=deals entry=%s fv=%d reads=%d-%d "
		    "action=leave_pending", entry, v, FORMATS_READ_MIN, FORMATS_READ_MAX);
		return;
	}
	if (fv == FORMATS_BAD) {
		err_set(&err, ERR_INPUT, "bad_value", FORMATS_FIELD,
		    FORMATS_FIELD ": not a format version (1..%d)", FORMATS_VERSION_MAX);
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
			ingest_reread(in);
			return;
		}
		ingest_dead(in, entry, &err, payload, len);
		return;
	}
	if (in->metrics != NULL && !d->update && in->shard == 0)
		metrics_inc(in->metrics, METRIC_DEALS_INGESTED, NULL, 1);
	if (d->update && !d->cancel && ingest_planning(in, d->id, 1)) {
		/* Its texts are still being rendered from the deal as first published: the
		 * update waits for the planning to end (read again from the pending list). */
		log_info("event=deal_update_deferred deal=%s entry=%s reason=planning", d->id,
		    entry);
		deal_free(d);
		ingest_reread(in);
		return;
	}
	if (d->update && !d->cancel) {
		ingest_update(in, entry, d, payload, len);   /* takes d */
		return;
	}
	if (!d->cancel) {
		ingest_plan(in, entry, d, payload, len);   /* takes d */
		return;
	}
	ingest_cancel(in, entry, d);
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
		if (ingest_planning(in, id, 0))
			continue;     /* a walk of the pending list met a deal being planned */
		if (fields == NULL) {
			/* Deleted while pending (XDEL/trim): nothing to plan, just ack. */
			struct err err;
			err_set(&err, ERR_INPUT, "deleted", "", "entry was deleted");
			ingest_dead(in, id, &err, NULL, 0);
			continue;
		}
		ingest_entry(in, id, fields);
	}
	ingest_done(in);
}

/* greader_gate_fn: a batch only once the last one is written and the subscribers
 * have loaded. */
static int
ingest_gate(void *arg)
{
	struct ingest *in = arg;

	return !in->stopping && in->outstanding == 0 && rconn_is_ready(in->cmd) &&
	    substore_ready(in->ss) && owner_serves(in->owner, in->shard) &&
	    (in->owner == NULL || substore_shard_ready(in->ss, in->shard));
}

void
ingest_set_owner(struct ingest *in, const struct owner *o)
{
	in->owner = o;
}

void
ingest_takeover(struct ingest *in)
{
	greader_takeover(in->rd);
}

struct ingest *
ingest_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct rconn *cmd, struct substore *ss,
    struct matcher *matcher, uint32_t shard)
{
	struct greader_config gc = { "ingest", INGEST_STREAM, NULL,
		cfg->consumer, cfg->ingest_batch, cfg->block_ms,
		cfg->redis_command_timeout_ms, INGEST_RETRY_MS, cfg->claim_idle_ms, NULL, NULL,
		1 /* deliver's takeover waits for deals taken over (greader.h) */ };
	struct ingest *in;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return NULL;
	in->shard = shard;
	if (keys_deals_group(shard, in->group, sizeof(in->group)) < 0) {
		free(in);
		return NULL;
	}
	gc.group = in->group;
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
	return in->outstanding == 0 && in->detached == 0;
}

void
ingest_free(struct ingest *in)
{
	if (in == NULL)
		return;
	greader_free(in->rd);
	in->rd = NULL;
	/* Script calls still in flight end (with no reply) when the shared connection is
	 * freed: the last of them frees the ingester. */
	in->zombie = 1;
	in->stopping = 1;
	in->outstanding++;         /* the plans ended below must not free it yet */
	ingest_plans_free(in);
	ingest_done(in);
}
