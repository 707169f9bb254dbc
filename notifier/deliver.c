/*
 * deliver.c: admit, send and record every push of every job (stages: admit, send,
 * record).
 *
 * A job (one "pushes" entry) holds up to job_size recipients. Life of a recipient:
 * admit.lua says admit (state "admitted") or a final verdict; an admitted one waits
 * in an earliest-expiry-first heap for a slot, is claimed by send.lua (state
 * "sending", in a batch per dispatch), goes to its channel's gateway, and its
 * outcome is recorded by record.lua; 5xx, resets and timeouts come back after
 * exponential backoff with full jitter (state "retry") until the deal expires. A job
 * is acked only when every recipient's outcome is recorded. Must never send a
 * recipient that admit did not admit, and never send after expiry.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "config.h"
#include "deliver.h"
#include "gw.h"
#include "greader.h"
#include "gwpool.h"
#include "httpc.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "quiet.h"
#include "rconn.h"
#include "redisutil.h"
#include "rules.h"
#include "scripts.h"
#include "subscriber.h"
#include "substore.h"
#include "tz.h"

#define DELIVER_GROUP "deliver"
#define DELIVER_STREAM "pushes"
#define DELIVER_TICK_MS 100
#define DELIVER_RETRY_MS 1000     /* pause after a failed step */
#define DELIVER_KEEP_S (7 * 86400)
#define DELIVER_RECORD_RETRY_MS 500
#define DELIVER_RECORD_TRIES 120     /* a minute of Redis outage */
#define DELIVER_DELAY_MS 1000        /* how often deferred recipients are looked at */
#define DELIVER_DELAY_BATCH "200"
#define DELIVER_ZONES_MAX 1024
#define DELIVER_STRICT_CAMPAIGN_CAP 3  /* Florida and Oklahoma: 3 per 24 h */
#define DELIVER_ASIDE_MAX 64         /* recipients set aside per pump (gateway busy) */

enum rstate {
	RS_ADMITTING = 0,   /* waiting for admit.lua */
	RS_QUEUED,          /* admitted, waiting for a send slot */
	RS_CLAIMING,        /* waiting for send.lua to mark it "sending" */
	RS_SENDING,         /* request in flight */
	RS_WAITING,         /* backoff timer before a retry */
	RS_RECORDING,       /* outcome being written */
	RS_DONE             /* outcome recorded (or final verdict at admit) */
};

struct job;

struct rcpt {
	struct job *job;
	enum channel ch;
	char *sub, *to, *rule, *text; /* point into line, owned by the rcpt */
	char *line;
	char push_id[256];
	enum rstate state;
	int attempts;
	size_t gw_index;           /* index into dl->gws of the gateway in use */
	int reserved;              /* gwpool_started() taken for gw_index */
	char code[128];            /* per-recipient code from the pool, "" when none */
	struct event *timer;       /* retry backoff, or record retry */
	int record_tries;
	int64_t sent_ms;
	/* the outcome being recorded */
	char outcome[16];
	char provider_id[64];
	char detail[256];
	int http_status;
	int revoke;
};

struct job {
	struct deliver *dl;
	struct job *prev, *next;
	char entry[64];
	char deal[MODEL_ID_MAX + 1];
	char deal_entry[64];
	char camp[MODEL_TEXT_MAX + 1];
	char pool[MODEL_TEXT_MAX + 1];   /* the deal's code pool key, "" when none */
	int64_t landed_ms;
	int64_t exp;
	size_t n;
	size_t open;               /* recipients not yet RS_DONE */
	struct rcpt *r;
	int acking;
	int unrecorded;            /* an outcome could not be recorded: do not ack */
};

struct deliver {
	struct event_base *base;
	const struct config *cfg;
	struct greader *rd;        /* "pushes" in group "deliver", its own connection */
	struct rconn *cmd;
	struct httpc *http;
	const struct substore *ss;
	struct tzcache *zones;
	struct quiet_rules quiet;
	struct event *delay_timer;
	struct event *claim_timer;     /* keeps our held jobs from looking dead */
	struct gw *gws[CONFIG_GATEWAYS_MAX];
	size_t ngws;
	struct gwpool *pool;       /* which gateway may take a push now */
	struct metrics *metrics;   /* borrowed, may be NULL */
	struct event *wake;        /* pump again when a gateway becomes usable */
	struct event *tick;
	int stopping;
	struct job *jobs;          /* every job held in memory */
	size_t njobs;
	struct rcpt **heap;        /* queued recipients, earliest expiry first */
	size_t heap_n, heap_cap;
	size_t in_flight, claiming, admits_out, records_out, acks_out;
	struct rec *recq;          /* outcomes to record in the next loop pass */
	size_t recq_n, recq_cap;
	struct event *flush;       /* writes recq, once per loop pass */
	struct event *pump_ev;     /* runs the send queue, once per loop pass */
};

/* Reads the pending list again (see greader_reread). */
static void
deliver_reread(struct deliver *dl, int failed)
{
	greader_reread(dl->rd, failed);
}

static void
deliver_read(struct deliver *dl)
{
	greader_read(dl->rd);
}
static void deliver_pump(struct deliver *dl);
static void deliver_kick(struct deliver *dl);
static void rcpt_record(struct rcpt *r, const char *outcome);

/* ---- the send queue: a binary min-heap on the deal's expiry ---- */

static int
heap_less(const struct rcpt *a, const struct rcpt *b)
{
	return a->job->exp < b->job->exp;
}

static int
heap_push(struct deliver *dl, struct rcpt *r)
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

static struct rcpt *
heap_pop(struct deliver *dl)
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
job_held(const struct deliver *dl, const char *entry)
{
	const struct job *j;

	for (j = dl->jobs; j != NULL; j = j->next)
		if (strcmp(j->entry, entry) == 0)
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
	deliver_read(dl);
}

/* Called whenever a recipient reaches RS_DONE. */
static void
job_maybe_done(struct job *j)
{
	struct deliver *dl = j->dl;

	if (j->open > 0 || j->acking)
		return;
	if (j->unrecorded) {
		/* Left pending: a redelivery settles what could not be recorded. */
		job_unlink(j);
		job_free(j);
		deliver_reread(dl, 1);
		return;
	}
	j->acking = 1;
	if (rconn_cmd(dl->cmd, job_on_ack, j, 0, "XACK " DELIVER_STREAM " " DELIVER_GROUP
	    " %s", j->entry) < 0) {
		log_warnx("event=ack_failed job=%s err=\"not connected\"", j->entry);
		job_unlink(j);
		job_free(j);
		return;
	}
	dl->acks_out++;
}

static void
rcpt_done(struct rcpt *r)
{
	if (r->state == RS_DONE)
		return;
	r->state = RS_DONE;
	r->job->open--;
	job_maybe_done(r->job);
}

/* Parses "<ch>\t<sub>\t<to>\t<rule>\t<text>"; takes ownership of line. */
static int
rcpt_init(struct rcpt *r, struct job *j, char *line)
{
	char *p[5], *s = line;
	int i, ch;

	r->job = j;
	r->line = line;
	for (i = 0; i < 4; i++) {
		p[i] = s;
		if ((s = strchr(s, '\t')) == NULL)
			return -1;
		*s++ = '\0';
	}
	p[4] = s;
	if ((ch = channel_from_name(p[0])) < 0 || *p[1] == '\0' || *p[2] == '\0' ||
	    *p[3] == '\0' || *p[4] == '\0')
		return -1;
	r->ch = (enum channel)ch;
	r->sub = p[1];
	r->to = p[2];
	r->rule = p[3];
	r->text = p[4];
	snprintf(r->push_id, sizeof(r->push_id), "%s:%s:%s", j->deal_entry, r->sub, p[0]);
	return 0;
}

/* Builds a job from a stream entry, or NULL (logged) when malformed. */
static struct job *
job_new(struct deliver *dl, const char *entry, const struct redisReply *f)
{
	struct job *j;
	const char *deal, *dentry, *exp, *camp, *pool;
	char *end;
	size_t i, n = 0;

	deal = ru_field(f, "deal", NULL);
	dentry = ru_field(f, "entry", NULL);
	exp = ru_field(f, "exp", NULL);
	if (deal == NULL || dentry == NULL || exp == NULL || strlen(deal) > MODEL_ID_MAX ||
	    strlen(dentry) >= 64)
		return NULL;
	for (i = 0; i + 1 < f->elements; i += 2)
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, "r") == 0)
			n++;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->dl = dl;
	snprintf(j->entry, sizeof(j->entry), "%s", entry);
	snprintf(j->deal, sizeof(j->deal), "%s", deal);
	snprintf(j->deal_entry, sizeof(j->deal_entry), "%s", dentry);
	camp = ru_field(f, "camp", NULL);
	snprintf(j->camp, sizeof(j->camp), "%s", camp ? camp : "");
	pool = ru_field(f, "pool", NULL);
	snprintf(j->pool, sizeof(j->pool), "%s", pool ? pool : "");
	j->landed_ms = strtoll(dentry, NULL, 10);
	j->exp = strtoll(exp, &end, 10);
	if (*end != '\0' || n == 0 || (j->r = calloc(n, sizeof(*j->r))) == NULL)
		goto err;
	for (i = 0; i + 1 < f->elements; i += 2) {
		const struct redisReply *k = f->element[i], *v = f->element[i + 1];
		char *line;

		if (k->type != REDIS_REPLY_STRING || strcmp(k->str, "r") != 0 ||
		    v->type != REDIS_REPLY_STRING)
			continue;
		if ((line = strndup(v->str, v->len)) == NULL)
			goto err;
		if (rcpt_init(&j->r[j->n], j, line) < 0) {
			free(line);
			goto err;
		}
		j->r[j->n].state = RS_ADMITTING;
		j->n++;
	}
	j->open = j->n;
	return j;
err:
	job_free(j);
	return NULL;
}

/* ---- record ---- */

#define DELIVER_RECORD_BATCH 128

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

static void rcpt_on_record_timer(evutil_socket_t fd, short what, void *arg);
static void rcpt_enqueue_record(struct rcpt *r, const char *outcome);

/* A record did not reach Redis: try again shortly, for about a minute. */
static void
rcpt_record_later(struct rcpt *r)
{
	struct deliver *dl = r->job->dl;
	struct timeval tv = { 0, DELIVER_RECORD_RETRY_MS * 1000 };

	if (++r->record_tries >= DELIVER_RECORD_TRIES) {
		/* The job stays pending; its redelivery finds "sending" and records
		 * "unknown", or "retry" and sends again. */
		log_errorx("event=record_failed push=%s outcome=%s action=give_up",
		    r->push_id, r->outcome);
		r->job->unrecorded = 1;
		rcpt_done(r);
		return;
	}
	if (r->timer != NULL)
		event_free(r->timer);
	if ((r->timer = evtimer_new(dl->base, rcpt_on_record_timer, r)) == NULL) {
		log_errorx("event=record_failed push=%s err=\"out of memory\"", r->push_id);
		r->job->unrecorded = 1;
		rcpt_done(r);
		return;
	}
	evtimer_add(r->timer, &tv);
}

/* What happens to one recorded (or not) outcome. */
static void
rec_settle(const struct rec *e, int ok)
{
	/* "retry" only marks the state for a redelivery after a crash; the backoff
	 * timer is already running and its admit passes own_retry, so a lost "retry"
	 * record costs nothing. */
	if (strcmp(e->outcome, "retry") == 0)
		return;
	if (!ok)
		rcpt_record_later(e->r);
	else
		rcpt_done(e->r);
}

static void
deliver_on_record(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct rec_batch *b = arg;
	int ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER;
	size_t i;

	(void)rc;
	b->dl->records_out -= b->n;
	if (!ok)
		log_warnx("event=record_failed outcomes=%zu err=\"%s\" action=retry", b->n,
		    reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
	for (i = 0; i < b->n; i++)
		rec_settle(&b->v[i], ok);
	free(b);
}

/*
 * What a later "undelivered, 30003" status callback needs to send a sent SMS again
 * (docs/hooks.md): "<exp>\t<deal entry>\t<campaign>\t<pool>\t<recipient line>", or
 * NULL (nothing kept) for other outcomes and channels, or on OOM.
 */
static char *
rcpt_resend_spec(const struct rcpt *r, const char *outcome)
{
	const struct job *j = r->job;
	size_t len;
	char *s;

	if (r->ch != CH_SMS || strcmp(outcome, "sent") != 0)
		return NULL;
	len = strlen(j->deal_entry) + strlen(j->camp) + strlen(j->pool) + strlen(r->sub) +
	    strlen(r->to) + strlen(r->rule) + strlen(r->text) + 64;
	if ((s = malloc(len)) != NULL)
		snprintf(s, len, "%lld\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", (long long)j->exp,
		    j->deal_entry, j->camp, j->pool, channel_name(r->ch), r->sub, r->to,
		    r->rule, r->text);
	return s;
}

/* Writes up to DELIVER_RECORD_BATCH queued outcomes with one record.lua call. */
static void
deliver_flush_records(struct deliver *dl)
{
	size_t n = dl->recq_n < DELIVER_RECORD_BATCH ? dl->recq_n : DELIVER_RECORD_BATCH;
	size_t i, k = 0, a = 0;
	struct rec_batch *b = malloc(sizeof(*b) + n * sizeof(b->v[0]));
	const char **args = calloc(3 + 4 * n + 16 * n, sizeof(*args));
	char (*keys)[4][MODEL_ID_MAX + 16] = calloc(n, sizeof(*keys));
	char (*nums)[4][32] = calloc(n, sizeof(*nums));
	char **resend = calloc(n + 1, sizeof(*resend));
	const char **argv;
	char sn[32];
	enum rule_encoding enc;
	unsigned units;

	if (n == 0 || b == NULL || args == NULL || keys == NULL || nums == NULL ||
	    resend == NULL)
		goto out;
	b->dl = dl;
	b->n = n;
	memcpy(b->v, dl->recq, n * sizeof(b->v[0]));
	memmove(dl->recq, dl->recq + n, (dl->recq_n - n) * sizeof(dl->recq[0]));
	dl->recq_n -= n;
	args[k++] = "pushes:log";
	args[k++] = "stats";
	for (i = 0; i < n; i++) {
		const struct rcpt *r = b->v[i].r;

		snprintf(keys[i][0], sizeof(keys[i][0]), "push:%s", r->job->deal);
		snprintf(keys[i][1], sizeof(keys[i][1]), "consent:%s", channel_name(r->ch));
		snprintf(keys[i][2], sizeof(keys[i][2]), "deal:%s", r->job->deal);
		snprintf(keys[i][3], sizeof(keys[i][3]), "code:%s", r->job->deal);
		args[k++] = keys[i][0];
		args[k++] = keys[i][1];
		args[k++] = keys[i][2];
		args[k++] = keys[i][3];
	}
	argv = args + k;
	snprintf(sn, sizeof(sn), "%zu", n);
	argv[a++] = sn;
	for (i = 0; i < n; i++) {
		const struct rcpt *r = b->v[i].r;

		snprintf(nums[i][0], sizeof(nums[i][0]), "%d", r->http_status);
		snprintf(nums[i][1], sizeof(nums[i][1]), "%lld", (long long)clock_now());
		snprintf(nums[i][2], sizeof(nums[i][2]), "%lld", r->sent_ms ?
		    (long long)(r->sent_ms - r->job->landed_ms) : -1LL);
		argv[a++] = r->sub;
		argv[a++] = channel_name(r->ch);
		argv[a++] = r->push_id;
		argv[a++] = r->job->deal;
		argv[a++] = b->v[i].outcome;
		argv[a++] = r->gw_index < dl->ngws ?
		    gw_config_of(dl->gws[r->gw_index])->name : "-";
		argv[a++] = r->provider_id;
		argv[a++] = nums[i][0];
		argv[a++] = r->detail;
		argv[a++] = nums[i][1];
		argv[a++] = nums[i][2];
		argv[a++] = r->revoke ? "1" : "0";
		argv[a++] = r->rule;
		argv[a++] = r->job->camp;
		snprintf(nums[i][3], sizeof(nums[i][3]), "%u", r->ch == CH_SMS ?
		    rule_sms_count(r->text, strlen(r->text), &enc, &units) : 0u);
		argv[a++] = nums[i][3];
		argv[a++] = (resend[i] = rcpt_resend_spec(r, b->v[i].outcome)) != NULL ?
		    resend[i] : "";
	}
	if (script_call(dl->cmd, SCRIPT_RECORD, (int)k, (int)(k + a), args, NULL,
	    deliver_on_record, b) < 0) {
		dl->records_out -= n;
		for (i = 0; i < n; i++)
			rec_settle(&b->v[i], 0);
		goto out;
	}
	b = NULL;
out:
	for (i = 0; resend != NULL && i < n; i++)
		free(resend[i]);
	free(resend);
	free(b);
	free(args);
	free(keys);
	free(nums);
}

static void
deliver_on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;

	(void)fd;
	(void)what;
	while (dl->recq_n > 0) {
		size_t before = dl->recq_n;

		deliver_flush_records(dl);
		if (dl->recq_n == before)
			break;   /* out of memory: the next kick tries again */
	}
}

/* Queues one outcome; the queue is written once per loop pass. */
static void
rcpt_enqueue_record(struct rcpt *r, const char *outcome)
{
	struct deliver *dl = r->job->dl;
	struct timeval zero = { 0, 0 };

	if (dl->recq_n == dl->recq_cap) {
		size_t c = dl->recq_cap ? dl->recq_cap * 2 : 256;
		struct rec *q = realloc(dl->recq, c * sizeof(*q));

		if (q == NULL) {
			if (strcmp(outcome, "retry") != 0)
				rcpt_record_later(r);
			return;
		}
		dl->recq = q;
		dl->recq_cap = c;
	}
	dl->recq[dl->recq_n].r = r;
	snprintf(dl->recq[dl->recq_n].outcome, sizeof(dl->recq[0].outcome), "%s", outcome);
	dl->recq_n++;
	dl->records_out++;
	if (!evtimer_pending(dl->flush, NULL))
		evtimer_add(dl->flush, &zero);
}

static void
rcpt_on_record_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt *r = arg;

	(void)fd;
	(void)what;
	rcpt_enqueue_record(r, r->outcome);
}

static void
rcpt_record(struct rcpt *r, const char *outcome)
{
	char to[48], detail[300];

	snprintf(r->outcome, sizeof(r->outcome), "%s", outcome);
	r->record_tries = 0;
	if (strcmp(outcome, "retry") != 0) {
		struct deliver *dl = r->job->dl;

		if (dl->metrics != NULL)
			metrics_inc(dl->metrics, METRIC_PUSHES, METRICS_L(outcome,
			    channel_name(r->ch), r->gw_index < dl->ngws ?
			    gw_config_of(dl->gws[r->gw_index])->name : "-"), 1);
		r->state = RS_RECORDING;
		log_info("event=push outcome=%s push=%s deal=%s sub=%s ch=%s to=%s http=%d "
		    "attempts=%d ms_since_landed=%lld%s%s", outcome, r->push_id, r->job->deal,
		    r->sub, channel_name(r->ch),
		    r->ch == CH_SMS ? log_mask_phone(r->to, to, sizeof(to)) : r->to,
		    r->http_status, r->attempts,
		    (long long)((r->sent_ms ? r->sent_ms : clock_real_ms()) - r->job->landed_ms),
		    r->detail[0] ? " detail=" : "",
		    r->detail[0] ? log_quote(r->detail, detail, sizeof(detail)) : "");
	}
	rcpt_enqueue_record(r, outcome);
}

/* ---- admit ---- */

struct admit_call {
	struct job *job;
	struct rcpt *only;         /* a retry of one recipient, or NULL for the job */
};

static void rcpt_retry_or_expire(struct rcpt *r, long retry_after_s);

static void
deliver_on_admit(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admit_call ac = *(struct admit_call *)arg;
	struct job *j = ac.job;
	struct deliver *dl = j->dl;
	size_t i, k = 0;

	(void)rc;
	free(arg);
	dl->admits_out--;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != (ac.only ? 1 : j->n)) {
		log_warnx("event=admit_failed job=%s deal=%s err=\"%s\"", j->entry, j->deal,
		    reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
		if (ac.only != NULL) {
			rcpt_retry_or_expire(ac.only, -1);
			return;
		}
		/* Dropped from memory unacked; read again from the pending list. */
		deliver_reread(dl, 1);
		job_unlink(j);
		job_free(j);
		return;
	}
	for (i = 0; i < j->n; i++) {
		struct rcpt *r = &j->r[i];
		const struct redisReply *v;

		if (ac.only != NULL && r != ac.only)
			continue;
		v = reply->element[k++];
		if (v->type != REDIS_REPLY_STRING) {
			rcpt_done(r);
			continue;
		}
		if (strncmp(v->str, "admit", 5) == 0 && (v->str[5] == '\0' ||
		    v->str[5] == '\t')) {
			snprintf(r->code, sizeof(r->code), "%s", v->str[5] ? v->str + 6 : "");
			r->state = RS_QUEUED;
			if (heap_push(dl, r) < 0) {
				snprintf(r->detail, sizeof(r->detail), "out of memory");
				rcpt_record(r, "retry");
				rcpt_done(r);
			}
			continue;
		}
		/* Final verdicts are logged to pushes:log by admit.lua itself; a delayed
		 * recipient comes back as a job of its own when its quiet hours end. */
		log_info("event=push outcome=%s push=%s deal=%s sub=%s ch=%s", v->str,
		    r->push_id, j->deal, r->sub, channel_name(r->ch));
		if (dl->metrics != NULL)
			metrics_inc(dl->metrics, METRIC_SKIPS, METRICS_L(v->str), 1);
		rcpt_done(r);
	}
	deliver_kick(dl);
}

/* Per-recipient admit inputs the notifier computes, because they need the
 * subscriber's time zone: see admit.lua. */
struct admit_in {
	char not_before[24];
	char day[16];
	char day_cap[16];
	char camp_cap[16];
	char *line;                /* the recipient line, rebuilt for a deferral */
};

static void
admit_in_fill(struct deliver *dl, const struct rcpt *r, int64_t now,
    struct admit_in *in)
{
	const struct subscriber *s = substore_get(dl->ss, r->sub);
	const struct tz *z = NULL;
	struct err err;
	char region[16];
	int64_t nb;
	long camp_cap = dl->cfg->campaign_cap;
	size_t len;

	snprintf(in->day, sizeof(in->day), "0");
	snprintf(in->day_cap, sizeof(in->day_cap), "0");
	snprintf(in->camp_cap, sizeof(in->camp_cap), "0");
	len = strlen(r->sub) + strlen(r->to) + strlen(r->rule) + strlen(r->text) + 16;
	if ((in->line = malloc(len)) != NULL)
		snprintf(in->line, len, "%s\t%s\t%s\t%s\t%s", channel_name(r->ch), r->sub,
		    r->to, r->rule, r->text);
	if (s == NULL) {
		snprintf(in->not_before, sizeof(in->not_before), "-2");
		return;
	}
	err_clear(&err);
	if ((z = tz_get(dl->zones, s->timezone, &err)) == NULL) {
		log_warnx("event=timezone_unavailable sub=%s tz=%s err=\"%s\" action=use_utc",
		    s->id, s->timezone, err.msg);
		z = tz_get(dl->zones, "UTC", NULL);
	}
	nb = z != NULL ? quiet_next_allowed(&dl->quiet, z, s, now) : TZ_TIME_ERROR;
	if (nb == TZ_TIME_ERROR || nb == QUIET_NEVER)
		snprintf(in->not_before, sizeof(in->not_before), "-1");
	else
		snprintf(in->not_before, sizeof(in->not_before), "%lld",
		    nb <= now ? 0LL : (long long)nb);
	if (z != NULL && s->max_per_day > 0 && quiet_local_day(z, now, in->day,
	    sizeof(in->day)) == 0)
		snprintf(in->day_cap, sizeof(in->day_cap), "%d", s->max_per_day);
	quiet_region_of(&dl->quiet, s, region, sizeof(region));
	if (strcmp(region, "US-FL") == 0 || strcmp(region, "US-OK") == 0)
		camp_cap = camp_cap > 0 && camp_cap < DELIVER_STRICT_CAMPAIGN_CAP ? camp_cap :
		    DELIVER_STRICT_CAMPAIGN_CAP;
	snprintf(in->camp_cap, sizeof(in->camp_cap), "%ld", camp_cap);
}

/* Runs admit.lua for the whole job, or for one recipient's retry. */
static int
deliver_admit(struct deliver *dl, struct job *j, struct rcpt *only)
{
	char k_deal[MODEL_ID_MAX + 8], k_push[MODEL_ID_MAX + 8];
	char now[32], exp[32], keep[32], n[32];
	size_t nr = only ? 1 : j->n, i, a = 0, k = 0;
	const char **args = calloc(16 + 10 * nr, sizeof(*args));
	struct admit_in *in = calloc(nr, sizeof(*in));
	struct admit_call *ac = calloc(1, sizeof(*ac));
	int64_t t = clock_now();
	int rv = -1;

	if (args == NULL || ac == NULL || in == NULL)
		goto out;
	ac->job = j;
	ac->only = only;
	snprintf(k_deal, sizeof(k_deal), "deal:%s", j->deal);
	snprintf(k_push, sizeof(k_push), "push:%s", j->deal);
	snprintf(now, sizeof(now), "%lld", (long long)t);
	snprintf(exp, sizeof(exp), "%lld", (long long)j->exp);
	/* Relative: Redis' clock need not agree with ours. */
	snprintf(keep, sizeof(keep), "%lld", (long long)(j->exp - t > 0 ? j->exp - t : 0) +
	    DELIVER_KEEP_S);
	snprintf(n, sizeof(n), "%zu", nr);
	args[a++] = k_deal;
	args[a++] = k_push;
	args[a++] = "consent:sms";
	args[a++] = "consent:dm";
	args[a++] = "pushes:log";
	args[a++] = "stats";
	args[a++] = "delayed";
	args[a++] = now;
	args[a++] = exp;
	args[a++] = keep;
	args[a++] = j->deal;
	args[a++] = j->deal_entry;
	args[a++] = j->camp;
	args[a++] = j->pool;
	args[a++] = dl->cfg->consumer;
	args[a++] = n;
	for (i = 0; i < j->n; i++) {
		if (only != NULL && &j->r[i] != only)
			continue;
		admit_in_fill(dl, &j->r[i], t, &in[k]);
		if (in[k].line == NULL)
			goto out;
		args[a++] = j->r[i].sub;
		args[a++] = channel_name(j->r[i].ch);
		args[a++] = j->r[i].push_id;
		args[a++] = only != NULL ? "1" : "0";
		args[a++] = in[k].not_before;
		args[a++] = in[k].day;
		args[a++] = in[k].day_cap;
		args[a++] = in[k].camp_cap;
		args[a++] = in[k].line;
		args[a++] = j->r[i].rule;
		k++;
	}
	if (script_call(dl->cmd, SCRIPT_ADMIT, 7, (int)a, args, NULL, deliver_on_admit,
	    ac) < 0)
		goto out;
	ac = NULL;
	dl->admits_out++;
	rv = 0;
out:
	for (i = 0; in != NULL && i < nr; i++)
		free(in[i].line);
	free(in);
	free(ac);
	free(args);
	return rv;
}

/* ---- deferred recipients ---- */

static void
deliver_on_delay(struct rconn *rc, struct redisReply *r, void *arg)
{
	(void)rc;
	(void)arg;
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		log_warnx("event=delay_failed err=\"%s\"", r ? r->str : "no reply");
	else if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
		log_info("event=delayed_released recipients=%lld", r->integer);
}

/* Moves recipients whose quiet hours ended back onto "pushes" (delay.lua). */
static void
deliver_on_delay_timer(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;
	char now[32];
	const char *args[4] = { "delayed", DELIVER_STREAM, now, DELIVER_DELAY_BATCH };

	(void)fd;
	(void)what;
	if (dl->stopping || !rconn_is_ready(dl->cmd))
		return;
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	script_call(dl->cmd, SCRIPT_DELAY, 2, 4, args, NULL, deliver_on_delay, NULL);
}

/* ---- send ---- */

static void
rcpt_on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt *r = arg;
	struct deliver *dl = r->job->dl;

	(void)fd;
	(void)what;
	if (dl->stopping)
		return; /* state "retry" in Redis: the redelivered job sends it */
	r->state = RS_ADMITTING;
	if (deliver_admit(dl, r->job, r) < 0)
		rcpt_retry_or_expire(r, -1);
}

/* Backoff with full jitter: uniform in [0, min(max, base * 2^attempts)). A retry
 * that could only happen after the deal expires is recorded as expired instead. */
static void
rcpt_retry_or_expire(struct rcpt *r, long retry_after_s)
{
	struct deliver *dl = r->job->dl;
	long long cap = dl->cfg->retry_base_ms, delay;
	struct timeval tv;
	int i;

	for (i = 0; i < r->attempts && cap < dl->cfg->retry_max_ms; i++)
		cap *= 2;
	if (cap > dl->cfg->retry_max_ms)
		cap = dl->cfg->retry_max_ms;
	delay = retry_after_s >= 0 ? retry_after_s * 1000LL : random() % (cap + 1);
	if (clock_now_ms() + delay >= r->job->exp * 1000LL) {
		rcpt_record(r, "expired");
		return;
	}
	if (r->timer != NULL)
		event_free(r->timer);
	if ((r->timer = evtimer_new(dl->base, rcpt_on_retry_timer, r)) == NULL) {
		rcpt_record(r, "failed");
		return;
	}
	r->state = RS_WAITING;
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	rcpt_record(r, "retry");
}

/* Gives back the gateway slot reserved for r without an outcome. */
static void
rcpt_release(struct rcpt *r)
{
	if (r->reserved) {
		gwpool_cancelled(r->job->dl->pool, r->gw_index);
		r->reserved = 0;
	}
}

static void
rcpt_on_sent(void *arg, const struct gw_result *res, int cancelled)
{
	struct rcpt *r = arg;
	struct deliver *dl = r->job->dl;

	dl->in_flight--;
	if (r->reserved) {
		if (cancelled)
			gwpool_cancelled(dl->pool, r->gw_index);
		else
			gwpool_finished(dl->pool, r->gw_index, res->outcome, res->retry_after_s,
			    clock_mono_ms());
		r->reserved = 0;
	}
	if (cancelled) {
		/* Shutting down with the request in flight: its state stays "sending",
		 * and a redelivery records it as unknown rather than risk a duplicate. */
		r->state = RS_DONE;
		return;
	}
	if (dl->metrics != NULL)
		metrics_observe(dl->metrics, METRIC_SEND_LATENCY,
		    METRICS_L(gw_config_of(dl->gws[r->gw_index])->name),
		    (double)(clock_real_ms() - r->sent_ms) / 1000.0);
	r->http_status = res->http_status;
	snprintf(r->provider_id, sizeof(r->provider_id), "%s", res->provider_id);
	snprintf(r->detail, sizeof(r->detail), "%s", res->detail);
	switch (res->outcome) {
	case GW_SENT:
		rcpt_record(r, "sent");
		break;
	case GW_OPTED_OUT:
		r->revoke = 1;
		rcpt_record(r, "opted_out");
		break;
	case GW_PERMANENT:
		rcpt_record(r, "failed");
		break;
	case GW_RATE_LIMITED:
		/* The pool pauses that gateway; try again at once, on another gateway
		 * of the channel or when the pause ends. */
		rcpt_retry_or_expire(r, 0);
		break;
	case GW_RETRY:
		log_info("event=push_retry push=%s http=%d attempts=%d detail=\"%s\"",
		    r->push_id, res->http_status, r->attempts, res->detail);
		rcpt_retry_or_expire(r, -1);
		break;
	}
	deliver_kick(dl);
}

/* The text to send: the planned text with the recipient's own code in place of
 * each run of MATCH_CODE_MARK. Returns a new string, or NULL on OOM. */
static char *
rcpt_text(const struct rcpt *r)
{
	size_t n = strlen(r->text) + 1, cl = strlen(r->code), i, o = 0;
	char *t;

	if ((t = malloc(n + cl)) == NULL)
		return NULL;
	for (i = 0; r->text[i] != '\0'; ) {
		if (r->text[i] != MATCH_CODE_MARK) {
			t[o++] = r->text[i++];
			continue;
		}
		while (r->text[i] == MATCH_CODE_MARK)
			i++;
		if (o + cl < n + cl) {
			memcpy(t + o, r->code, cl);
			o += cl;
		}
	}
	t[o] = '\0';
	return t;
}

/* Hands a claimed recipient (state "sending") to its gateway. */
static void
rcpt_send(struct deliver *dl, struct rcpt *r)
{
	struct gw_message msg;
	struct err err;
	char *text;
	int rc;

	err_clear(&err);
	if ((text = rcpt_text(r)) == NULL) {
		rcpt_release(r);
		rcpt_retry_or_expire(r, -1);
		return;
	}
	msg.push_id = r->push_id;
	msg.to = r->to;
	msg.text = text;
	msg.expires_at = r->job->exp;
	msg.now = clock_now();
	r->attempts++;
	r->sent_ms = clock_real_ms();
	r->state = RS_SENDING;
	rc = gw_send(dl->gws[r->gw_index], &msg, rcpt_on_sent, r, &err);
	free(text);
	if (rc < 0) {
		rcpt_release(r);
		snprintf(r->detail, sizeof(r->detail), "%s", err.msg);
		rcpt_record(r, strcmp(err.code, "expired") == 0 ? "expired" : "failed");
		return;
	}
	dl->in_flight++;
}

struct claim {
	struct deliver *dl;
	size_t n;
	struct rcpt *r[];
};

static void
deliver_on_claim(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct claim *c = arg;
	struct deliver *dl = c->dl;
	size_t i;

	(void)rc;
	dl->claiming -= c->n;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != c->n) {
		log_warnx("event=claim_failed recipients=%zu err=\"%s\"", c->n,
		    reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
		/* The claim may or may not have run: retry each as our own. */
		for (i = 0; i < c->n; i++) {
			rcpt_release(c->r[i]);
			rcpt_retry_or_expire(c->r[i], -1);
		}
		free(c);
		return;
	}
	for (i = 0; i < c->n; i++) {
		struct rcpt *r = c->r[i];
		const struct redisReply *v = reply->element[i];

		if (v->type == REDIS_REPLY_STRING && strcmp(v->str, "send") == 0) {
			rcpt_send(dl, r);
			continue;
		}
		/* cancelled/expired/no_consent were recorded by send.lua; skip belongs to
		 * whichever process claimed it first, which records it. */
		rcpt_release(r);
		if (v->type == REDIS_REPLY_STRING) {
			log_info("event=push outcome=%s push=%s deal=%s sub=%s ch=%s", v->str,
			    r->push_id, r->job->deal, r->sub, channel_name(r->ch));
			if (dl->metrics != NULL)
				metrics_inc(dl->metrics, METRIC_SKIPS, METRICS_L(v->str), 1);
		}
		rcpt_done(r);
	}
	free(c);
	deliver_kick(dl);
}

static void
deliver_on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	deliver_pump(arg);
}

/* Runs the send queue once in the next loop pass, however many answers, admits and
 * claims arrive in this one: one claim round trip for all the slots they freed. */
static void
deliver_kick(struct deliver *dl)
{
	struct timeval zero = { 0, 0 };

	if (!evtimer_pending(dl->pump_ev, NULL))
		evtimer_add(dl->pump_ev, &zero);
}

/*
 * Takes up to max queued recipients, earliest expiry first, that a gateway of their
 * channel can take now, reserving that gateway (gwpool_started). Recipients whose
 * gateways are all busy stay queued and the wake timer is armed for the moment one
 * frees up; a channel without any gateway fails its recipient. Returns how many.
 */
static size_t
deliver_reserve(struct deliver *dl, struct rcpt **out, size_t max)
{
	struct rcpt *aside[DELIVER_ASIDE_MAX], *r;
	size_t n = 0, k = 0, i, gi;
	int64_t mono = clock_mono_ms(), wall = clock_now(), retry_at, wake = GWPOOL_NEVER;
	int rc;

	while (n < max && k < DELIVER_ASIDE_MAX && (r = heap_pop(dl)) != NULL) {
		rc = gwpool_pick(dl->pool, r->ch, mono, wall, r->to, &gi, &retry_at);
		if (rc < 0) {
			snprintf(r->detail, sizeof(r->detail), "no gateway for channel %s",
			    channel_name(r->ch));
			rcpt_record(r, "failed");
			continue;
		}
		if (rc == 0 || gwpool_started(dl->pool, gi, mono, wall, r->to) < 0) {
			aside[k++] = r;
			if (rc == 0 && retry_at < wake)
				wake = retry_at;
			continue;
		}
		r->gw_index = gi;
		r->reserved = 1;
		out[n++] = r;
	}
	for (i = 0; i < k; i++)
		heap_push(dl, aside[i]);   /* cannot fail: the heap held them a moment ago */
	if (wake != GWPOOL_NEVER) {
		int64_t ms = wake > mono ? wake - mono : 0;
		struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

		evtimer_add(dl->wake, &tv);
	}
	return n;
}

/*
 * Claims up to the free send slots of queued recipients with one send.lua call and
 * sends them when it answers: the "sending" mark reaches Redis before any request
 * leaves, so a crash never leaves a sent text looking unsent.
 */
static void
deliver_pump(struct deliver *dl)
{
	size_t slots, n = 0, i, a = 0, k = 2;
	struct claim *c = NULL;
	const char **keys = NULL, **args = NULL;
	char (*kbuf)[2][MODEL_ID_MAX + 8] = NULL;
	char (*expbuf)[24] = NULL;
	char now[32], sn[32];

	deliver_read(dl);
	/* Outcomes first: on the wire (and so in Redis) every finished request is
	 * recorded before a new one is claimed, so at most max_in_flight pushes are
	 * ever "sending" and a crash leaves at most that many unknown. */
	deliver_on_flush(-1, 0, dl);
	if (dl->stopping || dl->heap_n == 0 || !rconn_is_ready(dl->cmd))
		return;
	slots = (size_t)dl->cfg->max_in_flight;
	if (dl->in_flight + dl->claiming >= slots)
		return;
	slots -= dl->in_flight + dl->claiming;
	if (slots > dl->heap_n)
		slots = dl->heap_n;
	c = malloc(sizeof(*c) + slots * sizeof(c->r[0]));
	args = calloc(2 + 2 * slots + 3 + 8 * slots, sizeof(*args));
	kbuf = calloc(slots, sizeof(*kbuf));
	expbuf = calloc(slots, sizeof(*expbuf));
	if (c == NULL || args == NULL || kbuf == NULL || expbuf == NULL)
		goto out;
	c->dl = dl;
	n = deliver_reserve(dl, c->r, slots);
	c->n = n;
	if (n == 0)
		goto out;
	keys = args;
	keys[0] = "pushes:log";
	keys[1] = "stats";
	for (i = 0; i < n; i++) {
		snprintf(kbuf[i][0], sizeof(kbuf[i][0]), "push:%s", c->r[i]->job->deal);
		snprintf(kbuf[i][1], sizeof(kbuf[i][1]), "deal:%s", c->r[i]->job->deal);
		keys[k++] = kbuf[i][0];
		keys[k++] = kbuf[i][1];
	}
	a = k;
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(sn, sizeof(sn), "%zu", n);
	args[a++] = now;
	args[a++] = dl->cfg->consumer;
	args[a++] = sn;
	for (i = 0; i < n; i++) {
		struct rcpt *r = c->r[i];

		snprintf(expbuf[i], sizeof(expbuf[i]), "%lld", (long long)r->job->exp);
		args[a++] = r->sub;
		args[a++] = channel_name(r->ch);
		args[a++] = r->push_id;
		args[a++] = r->job->deal;
		args[a++] = expbuf[i];
		/* A webhook takes the push id as Idempotency-Key: resending is safe. */
		args[a++] = gw_config_of(dl->gws[r->gw_index])->kind == GW_WEBHOOK ? "1" : "0";
		args[a++] = r->rule;
		args[a++] = r->job->camp;
		r->state = RS_CLAIMING;
	}
	if (script_call(dl->cmd, SCRIPT_SEND, (int)k, (int)a, args, NULL, deliver_on_claim,
	    c) < 0) {
		/* Not sent: back to the queue for the next tick. */
		for (i = 0; i < n; i++) {
			rcpt_release(c->r[i]);
			c->r[i]->state = RS_QUEUED;
			heap_push(dl, c->r[i]);
		}
		goto out;
	}
	dl->claiming += n;
	c = NULL;
out:
	free(c);
	free(args);
	free(kbuf);
	free(expbuf);
}

/* ---- jobs of dead consumers ---- */

/*
 * Every claim_idle_ms / 3: XCLAIM every job we hold to ourselves (JUSTID, min idle
 * 0), which resets its idle time: a job waiting on a retry backoff is not dead. The
 * reader claims jobs idle longer than claim_idle_ms (their consumer is gone); their
 * pushes that were "sending" on the dead consumer are recorded "unknown" at admit,
 * nothing is sent twice.
 */
static void
deliver_on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;
	const char *argv[6 + DELIVER_ASIDE_MAX];
	struct job *j;
	int n = 0;

	(void)fd;
	(void)what;
	if (dl->stopping || !rconn_is_ready(dl->cmd))
		return;
	argv[n++] = "XCLAIM";
	argv[n++] = DELIVER_STREAM;
	argv[n++] = DELIVER_GROUP;
	argv[n++] = dl->cfg->consumer;
	argv[n++] = "0";
	for (j = dl->jobs; j != NULL; j = j->next) {
		argv[n++] = j->entry;
		if (n == 5 + DELIVER_ASIDE_MAX || j->next == NULL) {
			argv[n++] = "JUSTID";
			rconn_argv(dl->cmd, NULL, NULL, 0, n, argv, NULL);
			n = 5;
		}
	}
}

/* ---- reading jobs ---- */

/* greader_batch_fn: every job of a batch goes to admit. */
static void
deliver_on_batch(void *arg, const struct redisReply *entries)
{
	struct deliver *dl = arg;
	const struct redisReply *fields;
	const char *id;
	size_t i;

	for (i = 0; i < entries->elements; i++) {
		struct job *j;

		if (ru_entry(entries, i, &id, &fields) < 0 || job_held(dl, id))
			continue;
		if (fields == NULL || (j = job_new(dl, id, fields)) == NULL) {
			log_errorx("event=bad_job job=%s action=ack", id);
			if (rconn_cmd(dl->cmd, NULL, NULL, 0, "XACK " DELIVER_STREAM " "
			    DELIVER_GROUP " %s", id) < 0)
				deliver_reread(dl, 1);
			continue;
		}
		j->next = dl->jobs;
		if (dl->jobs)
			dl->jobs->prev = j;
		dl->jobs = j;
		dl->njobs++;
		if (deliver_admit(dl, j, NULL) < 0) {
			deliver_reread(dl, 1);
			job_unlink(j);
			job_free(j);
		}
	}
}

/* greader_gate_fn: admit needs every subscriber's zone and caps (the first full
 * load), and at most a few batches of jobs are held in memory (backpressure). */
static int
deliver_gate(void *arg)
{
	struct deliver *dl = arg;

	return !dl->stopping && rconn_is_ready(dl->cmd) && substore_ready(dl->ss) &&
	    dl->njobs < (size_t)dl->cfg->deliver_batch * 4 &&
	    dl->heap_n < (size_t)dl->cfg->max_in_flight * 4;
}

static void
deliver_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	deliver_pump(arg);
}

struct deliver *
deliver_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct rconn *cmd, struct httpc *http,
    const struct substore *ss)
{
	struct deliver *dl;
	struct timeval tv = { 0, DELIVER_TICK_MS * 1000 };
	struct timeval dtv = { DELIVER_DELAY_MS / 1000, (DELIVER_DELAY_MS % 1000) * 1000 };
	struct err err;
	size_t i;

	if ((dl = calloc(1, sizeof(*dl))) == NULL)
		return NULL;
	dl->base = base;
	dl->cfg = cfg;
	dl->cmd = cmd;
	dl->http = http;
	dl->ss = ss;
	quiet_rules_default(&dl->quiet);
	if ((dl->zones = tzcache_new(NULL, DELIVER_ZONES_MAX)) == NULL)
		goto err;
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
	if ((dl->wake = evtimer_new(base, deliver_on_wake, dl)) == NULL)
		goto err;
	if ((dl->flush = evtimer_new(base, deliver_on_flush, dl)) == NULL)
		goto err;
	if ((dl->pump_ev = evtimer_new(base, deliver_on_wake, dl)) == NULL)
		goto err;
	if ((dl->tick = event_new(base, -1, EV_PERSIST, deliver_on_tick, dl)) == NULL)
		goto err;
	event_add(dl->tick, &tv);
	dl->delay_timer = event_new(base, -1, EV_PERSIST, deliver_on_delay_timer, dl);
	if (dl->delay_timer == NULL)
		goto err;
	event_add(dl->delay_timer, &dtv);
	dl->claim_timer = event_new(base, -1, EV_PERSIST, deliver_on_claim_timer, dl);
	if (dl->claim_timer == NULL)
		goto err;
	{
		long ms = cfg->claim_idle_ms / 3;
		struct timeval ctv = { ms / 1000, (ms % 1000) * 1000 };

		event_add(dl->claim_timer, &ctv);
	}
	{
		struct greader_config gc = { "deliver", DELIVER_STREAM, DELIVER_GROUP,
			cfg->consumer, cfg->deliver_batch, cfg->block_ms,
			cfg->redis_command_timeout_ms, DELIVER_RETRY_MS, cfg->claim_idle_ms };

		dl->rd = greader_new(base, rcfg, &gc, deliver_on_batch, deliver_gate, dl);
		if (dl->rd == NULL)
			goto err;
		greader_set_cmd(dl->rd, cmd);
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

	dl->stopping = 1;
	greader_stop(dl->rd);
	/* Admitted but never claimed: "admitted" in Redis, so the redelivered job
	 * admits and sends them again. */
	while ((r = heap_pop(dl)) != NULL)
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
	    dl->records_out == 0 && dl->acks_out == 0;
}

void
deliver_free(struct deliver *dl)
{
	struct job *j, *next;
	size_t i;

	if (dl == NULL)
		return;
	greader_free(dl->rd);
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
	if (dl->claim_timer != NULL)
		event_free(dl->claim_timer);
	if (dl->flush != NULL)
		event_free(dl->flush);
	if (dl->pump_ev != NULL)
		event_free(dl->pump_ev);
	free(dl->recq);
	gwpool_free(dl->pool);
	tzcache_free(dl->zones);
	free(dl->heap);
	free(dl);
}
