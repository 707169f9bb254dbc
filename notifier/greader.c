/*
 * greader.c: one consumer of one stream in a consumer group (stage: ingest,
 * deliver, attribution).
 *
 * The reading discipline every stream consumer of the notifier shares: group
 * created when missing, own pending list first (by id) after a (re)connect or a
 * failure, then new entries; one read out at a time; dead consumers' entries
 * claimed. Never reads a batch the owner's gate refuses, never spins on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "greader.h"
#include "log.h"
#include "rconn.h"
#include "redisutil.h"

#define GREADER_TICK_MS 100

struct greader_claim;

struct greader {
	struct greader_config cfg;     /* strings point into the copies below */
	char name[32], stream[64], group[64], consumer[80];
	char guard_stream[64], guard_group[64];
	struct rconn *rd;
	struct rconn *cmd;             /* for XAUTOCLAIM; may be NULL */
	struct event *tick;
	greader_batch_fn *batch;
	greader_gate_fn *gate;
	void *arg;
	int stopping, reading, reading_pending, pending_mode;
	int group_ok, group_creating;
	int claiming;                  /* a claim round is out */
	struct greader_claim *claim_out; /* that round (detached when freed) */
	char pending_from[64];         /* pending entries after this id are read next */
	int rewalk;                    /* a walk of the pending list from its start is
	                                * due once the current one has ended */
	int new_read;                  /* new entries were read since the last walk */
	int64_t failed_at_ms;
	int64_t claimed_at_ms;
	char claim_cursor[64];
	int takeover;                  /* greader_takeover: claim at any idle time until
	                                * a pass finds nothing of another consumer */
};

/* The idle time past which other consumers' entries are claimed. */
static long
greader_claim_idle(const struct greader *g)
{
	return g->takeover ? 0 : g->cfg.claim_idle_ms;
}

/* Starts a walk of our pending list from its start. */
static void
greader_walk(struct greader *g)
{
	g->pending_mode = 1;
	g->rewalk = 0;
	g->new_read = 0;
	snprintf(g->pending_from, sizeof(g->pending_from), "0");
}

/*
 * A request never restarts a walk in progress (one entry that always fails would
 * then be read again and again and no new entry ever) and is never lost (a read in
 * flight cannot overwrite it): the walk goes on from where it is, new entries are
 * read at least once, and then a new walk starts from the beginning.
 */
void
greader_reread(struct greader *g, int failed)
{
	g->rewalk = 1;
	if (failed)
		g->failed_at_ms = clock_mono_ms();
}

/* In pending mode, the next read starts after the last entry of this batch. */
static void
greader_advance_pending(struct greader *g, const struct redisReply *entries)
{
	const struct redisReply *f;
	const char *last;

	if (g->reading_pending && entries->elements > 0 &&
	    ru_entry(entries, entries->elements - 1, &last, &f) == 0)
		snprintf(g->pending_from, sizeof(g->pending_from), "%s", last);
}

static void
greader_on_read(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct greader *g = arg;
	const struct redisReply *entries;

	(void)rc;
	g->reading = 0;
	if (r == NULL)
		return; /* timeout or disconnect: the ready callback restarts */
	if (r->type == REDIS_REPLY_ERROR) {
		log_warnx("event=read_failed stream=%s err=\"%s\" retry_ms=%ld", g->stream,
		    r->str, g->cfg.retry_ms);
		if (ru_is_error(r, "NOGROUP"))
			g->group_ok = 0;
		g->failed_at_ms = clock_mono_ms();
		return; /* the tick retries the same read */
	}
	if (!g->reading_pending)
		g->new_read = 1;
	entries = ru_stream_entries(r);
	if (entries == NULL || entries->elements == 0) {
		/* Only an empty answer to a pending read means the walk is over; a
		 * new-entries read may have been out while the list was refilled. */
		if (g->reading_pending)
			g->pending_mode = 0;
		greader_read(g);
		return;
	}
	greader_advance_pending(g, entries);
	g->batch(g->arg, entries);
	greader_read(g);
}

int
greader_in_pending(const struct greader *g)
{
	return g->reading_pending;
}

void
greader_read(struct greader *g)
{
	char count[32], block[32];
	const char *argv[11];
	int argc = 0, peek;

	if (g->stopping || g->reading || !g->group_ok || !rconn_is_ready(g->rd) ||
	    !g->gate(g->arg))
		return;
	if (g->failed_at_ms != 0 && clock_mono_ms() - g->failed_at_ms < g->cfg.retry_ms)
		return;
	if (!g->pending_mode && g->rewalk && g->new_read)
		greader_walk(g);
	/* Before a new walk, new entries once, without waiting for them. */
	peek = !g->pending_mode && g->rewalk;
	snprintf(count, sizeof(count), "%ld", g->cfg.count);
	snprintf(block, sizeof(block), "%ld", g->cfg.block_ms);
	argv[argc++] = "XREADGROUP";
	argv[argc++] = "GROUP";
	argv[argc++] = g->group;
	argv[argc++] = g->consumer;
	argv[argc++] = "COUNT";
	argv[argc++] = count;
	if (!g->pending_mode && !peek) {
		argv[argc++] = "BLOCK";
		argv[argc++] = block;
	}
	argv[argc++] = "STREAMS";
	argv[argc++] = g->stream;
	argv[argc++] = g->pending_mode ? g->pending_from : ">";
	if (rconn_argv(g->rd, greader_on_read, g, g->cfg.block_ms +
	    g->cfg.command_timeout_ms, argc, argv, NULL) == 0) {
		g->reading = 1;
		g->reading_pending = g->pending_mode;
	}
}

static void
greader_on_group(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct greader *g = arg;

	(void)rc;
	g->group_creating = 0;
	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_ERROR && !ru_is_error(r, "BUSYGROUP")) {
		log_errorx("event=group_create_failed stream=%s err=\"%s\" retry_ms=%ld",
		    g->stream, r->str, g->cfg.retry_ms);
		g->failed_at_ms = clock_mono_ms();   /* LOADING: not every tick */
		return;
	}
	g->group_ok = 1;
	greader_read(g);
}

static void
greader_on_ready(struct rconn *rc, void *arg)
{
	struct greader *g = arg;

	g->reading = 0;
	greader_walk(g);
	g->group_ok = 0;
	if (g->group_creating || g->stopping)
		return;
	/* From "0": entries added before the first consumer started are not lost. */
	if (rconn_cmd(rc, greader_on_group, g, 0, "XGROUP CREATE %s %s 0 MKSTREAM",
	    g->stream, g->group) < 0)
		log_warnx("event=group_create_failed stream=%s err=\"not connected\"",
		    g->stream);
	else
		g->group_creating = 1;
}

#define GREADER_CLAIM_MAX 100
#define GREADER_CLAIM_OWNERS 16
#define GREADER_GUARD_MAX 1000

struct greader_claim {
	struct greader *g;
	size_t n, nowners;
	char (*id)[64];               /* n entries, with their owner's index */
	int *owner;
	char owners[GREADER_CLAIM_OWNERS][80];
	int held[GREADER_CLAIM_OWNERS];   /* not to be taken over this round */
};

/* The round is over (or its greader is gone: g NULL, greader_free). */
static void
greader_claim_free(struct greader_claim *c)
{
	if (c->g != NULL) {
		c->g->claiming = 0;
		c->g->claim_out = NULL;
	}
	free(c->id);
	free(c->owner);
	free(c);
}

/* A claim round out on the shared command connection, which outlives the reader:
 * its replies find the reader through c, detached by greader_free. */
static struct greader_claim *
greader_claim_new(struct greader *g)
{
	struct greader_claim *c = calloc(1, sizeof(*c));

	if (c != NULL) {
		c->g = g;
		g->claiming = 1;
		g->claim_out = c;
	}
	return c;
}

static void
greader_on_autoclaim(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct greader_claim *c = arg;
	struct greader *g = c->g;

	(void)rc;
	greader_claim_free(c);
	if (g == NULL)
		return;               /* freed meanwhile */
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		if (r != NULL && r->type == REDIS_REPLY_ERROR)
			log_warnx("event=autoclaim_failed stream=%s err=\"%s\"", g->stream,
			    r->str);
		return;
	}
	snprintf(g->claim_cursor, sizeof(g->claim_cursor), "%s", r->element[0]->str);
	if (r->element[1]->elements > 0) {
		log_info("event=entries_claimed stream=%s count=%zu min_idle_ms=%ld",
		    g->stream, r->element[1]->elements, greader_claim_idle(g));
		greader_reread(g, 0); /* they are ours now: read them as pending */
	}
	if (g->takeover && strcmp(g->claim_cursor, "0-0") == 0) {
		g->takeover = 0;      /* the whole pending list has been walked */
		log_info("event=takeover_done stream=%s group=%s", g->stream, g->group);
	}
}

/*
 * A guarded takeover, in three steps on the command connection: the entries idle past
 * claim_idle_ms (XPENDING IDLE); then the guard stream's pending entries (its deals:
 * one may be a cancel nobody has applied yet); then XCLAIM of the entries of the
 * consumers that may be taken over. A consumer is held back while it still has guard
 * entries pending, and every consumer while any guard entry delivered more than once
 * is pending (taken over, or read again after a failure, and not yet done with). The
 * others wait for a later round.
 */
static void
greader_on_xclaim(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct greader_claim *c = arg;
	struct greader *g = c->g;

	(void)rc;
	if (c->g == NULL) {           /* the reader was freed meanwhile */
		greader_claim_free(c);
		return;
	}
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
		log_info("event=entries_claimed stream=%s count=%zu min_idle_ms=%ld", g->stream,
		    r->elements, greader_claim_idle(g));
		greader_reread(g, 0);
	} else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
		log_warnx("event=autoclaim_failed stream=%s err=\"%s\"", g->stream, r->str);
	}
	greader_claim_free(c);
}

/* The guard's answer is in: claims what may be claimed. */
static void
greader_claim_send(struct greader_claim *c)
{
	struct greader *g = c->g;
	const char *argv[6 + GREADER_CLAIM_MAX];
	char idle[32];
	size_t i, o;
	int argc = 0;

	snprintf(idle, sizeof(idle), "%ld", greader_claim_idle(g));
	argv[argc++] = "XCLAIM";
	argv[argc++] = g->stream;
	argv[argc++] = g->group;
	argv[argc++] = g->consumer;
	argv[argc++] = idle;
	for (i = 0; i < c->n; i++)
		if (!c->held[c->owner[i]])
			argv[argc++] = c->id[i];
	for (o = 0; o < c->nowners; o++)
		if (c->held[o])
			log_info("event=claim_deferred stream=%s consumer=%s reason=\"%s "
			    "entries are taken over first\"", g->stream, c->owners[o],
			    g->guard_stream);
	if (argc == 5) {
		greader_claim_free(c);
		return;
	}
	argv[argc++] = "JUSTID";
	if (rconn_argv(g->cmd, greader_on_xclaim, c, 0, argc, argv, NULL) < 0)
		greader_claim_free(c);
}

/* XPENDING of the guard stream, extended form: [id, consumer, idle, deliveries]. */
static void
greader_on_guard(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct greader_claim *c = arg;
	size_t i, o;
	int all = 0;

	(void)rc;
	if (c->g == NULL) {           /* the reader was freed meanwhile */
		greader_claim_free(c);
		return;
	}
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		all = 1;                  /* no answer: hold, the next round asks again */
	} else {
		for (i = 0; i < r->elements && !all; i++) {
			const redisReply *e = r->element[i];

			if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 ||
			    e->element[1]->type != REDIS_REPLY_STRING ||
			    e->element[3]->type != REDIS_REPLY_INTEGER) {
				all = 1;
				break;
			}
			if (e->element[3]->integer > 1)
				all = 1;
			for (o = 0; o < c->nowners; o++)
				if (strcmp(c->owners[o], e->element[1]->str) == 0)
					c->held[o] = 1;
		}
		/* A full page may hide more: hold everyone. */
		if (r->elements >= GREADER_GUARD_MAX)
			all = 1;
	}
	for (o = 0; all && o < c->nowners; o++)
		c->held[o] = 1;
	greader_claim_send(c);
}

static void
greader_on_idle(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct greader_claim *c = arg;
	struct greader *g = c->g;
	size_t i, o;

	(void)rc;
	if (c->g == NULL) {           /* the reader was freed meanwhile */
		greader_claim_free(c);
		return;
	}
	if (g->takeover && r != NULL && r->type == REDIS_REPLY_ARRAY &&
	    r->elements == 0) {
		g->takeover = 0;      /* nothing pending at all */
		log_info("event=takeover_done stream=%s group=%s", g->stream, g->group);
	}
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
		goto done;
	if ((c->id = calloc(r->elements, sizeof(*c->id))) == NULL ||
	    (c->owner = calloc(r->elements, sizeof(*c->owner))) == NULL)
		goto done;
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_STRING ||
		    strcmp(e->element[1]->str, g->consumer) == 0)
			continue;
		for (o = 0; o < c->nowners; o++)
			if (strcmp(c->owners[o], e->element[1]->str) == 0)
				break;
		if (o == c->nowners) {
			if (c->nowners == GREADER_CLAIM_OWNERS)
				continue;       /* the next round takes the others */
			snprintf(c->owners[c->nowners++], sizeof(c->owners[0]), "%s",
			    e->element[1]->str);
		}
		snprintf(c->id[c->n], sizeof(c->id[0]), "%s", e->element[0]->str);
		c->owner[c->n++] = (int)o;
	}
	if (c->n == 0) {
		/* A full page of our own may hide others': the next round looks again. */
		if (g->takeover && r->elements < GREADER_CLAIM_MAX) {
			g->takeover = 0;
			log_info("event=takeover_done stream=%s group=%s", g->stream,
			    g->group);
		}
		goto done;
	}
	if (rconn_cmd(g->cmd, greader_on_guard, c, 0, "XPENDING %s %s - + %d",
	    g->guard_stream, g->guard_group, GREADER_GUARD_MAX) < 0)
		goto done;
	return;
done:
	greader_claim_free(c);
}

static void
greader_guarded_claim(struct greader *g)
{
	struct greader_claim *c = greader_claim_new(g);
	char idle[32], count[16];

	if (c == NULL)
		return;
	snprintf(idle, sizeof(idle), "%ld", greader_claim_idle(g));
	snprintf(count, sizeof(count), "%d", GREADER_CLAIM_MAX);
	if (rconn_cmd(g->cmd, greader_on_idle, c, 0, "XPENDING %s %s IDLE %s - + %s",
	    g->stream, g->group, idle, count) < 0)
		greader_claim_free(c);
}

/* Entries idle in another consumer's pending list for claim_idle_ms belong to a
 * dead process: claim them (greader_guarded_claim when a guard stream is set). */
static void
greader_autoclaim(struct greader *g)
{
	struct greader_claim *c;
	char idle[32];

	/* The gate: a shard not served here is not read, and its entries are not
	 * taken either (owner.h). */
	if (g->cfg.claim_idle_ms <= 0 || g->cmd == NULL || g->stopping ||
	    !rconn_is_ready(g->cmd) || g->claiming || !g->gate(g->arg) ||
	    (!g->takeover && clock_mono_ms() - g->claimed_at_ms < g->cfg.claim_idle_ms / 3))
		return;
	g->claimed_at_ms = clock_mono_ms();
	if (g->cfg.guard_stream != NULL) {
		greader_guarded_claim(g);
		return;
	}
	snprintf(idle, sizeof(idle), "%ld", greader_claim_idle(g));
	if ((c = greader_claim_new(g)) == NULL)
		return;
	if (rconn_cmd(g->cmd, greader_on_autoclaim, c, 0,
	    g->cfg.claims_count ? "XAUTOCLAIM %s %s %s %s %s COUNT 100" :
	    "XAUTOCLAIM %s %s %s %s %s COUNT 100 JUSTID", g->stream, g->group,
	    g->consumer, idle, g->claim_cursor) < 0) {
		greader_claim_free(c);
		log_warnx("event=autoclaim_failed stream=%s err=\"not connected\"", g->stream);
	}
}

/* Retries whatever is waiting: a failed group create, a refused or failed read. */
static void
greader_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct greader *g = arg;

	(void)fd;
	(void)what;
	if (!g->group_ok && !g->group_creating && rconn_is_ready(g->rd) && !g->stopping &&
	    (g->failed_at_ms == 0 || clock_mono_ms() - g->failed_at_ms >= g->cfg.retry_ms))
		greader_on_ready(g->rd, g);
	if (g->group_ok)
		greader_autoclaim(g);
	greader_read(g);
}

struct greader *
greader_new(struct event_base *base, const struct rconn_config *rcfg,
    const struct greader_config *cfg, greader_batch_fn *batch, greader_gate_fn *gate,
    void *arg)
{
	struct greader *g;
	struct timeval tv = { 0, GREADER_TICK_MS * 1000 };

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->cfg = *cfg;
	snprintf(g->name, sizeof(g->name), "%s", cfg->name);
	snprintf(g->stream, sizeof(g->stream), "%s", cfg->stream);
	snprintf(g->group, sizeof(g->group), "%s", cfg->group);
	snprintf(g->consumer, sizeof(g->consumer), "%s", cfg->consumer);
	g->cfg.name = g->name;
	g->cfg.stream = g->stream;
	g->cfg.group = g->group;
	g->cfg.consumer = g->consumer;
	if (cfg->guard_stream != NULL && cfg->guard_group != NULL) {
		snprintf(g->guard_stream, sizeof(g->guard_stream), "%s", cfg->guard_stream);
		snprintf(g->guard_group, sizeof(g->guard_group), "%s", cfg->guard_group);
		g->cfg.guard_stream = g->guard_stream;
		g->cfg.guard_group = g->guard_group;
	} else {
		g->cfg.guard_stream = g->cfg.guard_group = NULL;
	}
	g->batch = batch;
	g->gate = gate;
	g->arg = arg;
	snprintf(g->claim_cursor, sizeof(g->claim_cursor), "0-0");
	greader_walk(g);
	if ((g->tick = event_new(base, -1, EV_PERSIST, greader_on_tick, g)) == NULL)
		goto err;
	event_add(g->tick, &tv);
	if ((g->rd = rconn_new(base, rcfg, g->name, greader_on_ready, g)) == NULL)
		goto err;
	return g;
err:
	greader_free(g);
	return NULL;
}

void
greader_set_cmd(struct greader *g, struct rconn *cmd)
{
	g->cmd = cmd;
}

void
greader_stop(struct greader *g)
{
	g->stopping = 1;
}

void
greader_free(struct greader *g)
{
	if (g == NULL)
		return;
	if (g->claim_out != NULL)
		g->claim_out->g = NULL;   /* its replies come on the shared connection */
	rconn_free(g->rd);
	if (g->tick != NULL)
		event_free(g->tick);
	free(g);
}

void
greader_takeover(struct greader *g)
{
	g->takeover = 1;
	g->claimed_at_ms = 0;
	snprintf(g->claim_cursor, sizeof(g->claim_cursor), "0-0");
}
