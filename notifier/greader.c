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

struct greader {
	struct greader_config cfg;     /* strings point into the copies below */
	char name[32], stream[64], group[64], consumer[80];
	struct rconn *rd;
	struct rconn *cmd;             /* for XAUTOCLAIM; may be NULL */
	struct event *tick;
	greader_batch_fn *batch;
	greader_gate_fn *gate;
	void *arg;
	int stopping, reading, reading_pending, pending_mode;
	int group_ok, group_creating;
	char pending_from[64];         /* pending entries after this id are read next */
	int64_t failed_at_ms;
	int64_t claimed_at_ms;
	char claim_cursor[64];
};

void
greader_reread(struct greader *g, int failed)
{
	g->pending_mode = 1;
	snprintf(g->pending_from, sizeof(g->pending_from), "0");
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
		log_warnx("event=read_failed stream=%s err=\"%s\"", g->stream, r->str);
		if (ru_is_error(r, "NOGROUP"))
			g->group_ok = 0;
		return; /* the tick retries */
	}
	entries = ru_stream_entries(r);
	if (entries == NULL || entries->elements == 0) {
		/* Only an empty answer to a pending read means the list is drained; a
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

void
greader_read(struct greader *g)
{
	char count[32], block[32];
	const char *argv[11];

	if (g->stopping || g->reading || !g->group_ok || !rconn_is_ready(g->rd) ||
	    !g->gate(g->arg))
		return;
	if (g->failed_at_ms != 0 && clock_mono_ms() - g->failed_at_ms < g->cfg.retry_ms)
		return;
	snprintf(count, sizeof(count), "%ld", g->cfg.count);
	snprintf(block, sizeof(block), "%ld", g->cfg.block_ms);
	argv[0] = "XREADGROUP";
	argv[1] = "GROUP";
	argv[2] = g->group;
	argv[3] = g->consumer;
	argv[4] = "COUNT";
	argv[5] = count;
	argv[6] = "BLOCK";
	argv[7] = block;
	argv[8] = "STREAMS";
	argv[9] = g->stream;
	argv[10] = g->pending_mode ? g->pending_from : ">";
	if (rconn_argv(g->rd, greader_on_read, g, g->cfg.block_ms +
	    g->cfg.command_timeout_ms, 11, argv, NULL) == 0) {
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
		log_errorx("event=group_create_failed stream=%s err=\"%s\"", g->stream, r->str);
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
	greader_reread(g, 0);
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

static void
greader_on_autoclaim(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct greader *g = arg;

	(void)rc;
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
		    g->stream, r->element[1]->elements, g->cfg.claim_idle_ms);
		greader_reread(g, 0); /* they are ours now: read them as pending */
	}
}

/* Entries idle in another consumer's pending list for claim_idle_ms belong to a
 * dead process: claim them. */
static void
greader_autoclaim(struct greader *g)
{
	char idle[32];

	if (g->cfg.claim_idle_ms <= 0 || g->cmd == NULL || g->stopping ||
	    !rconn_is_ready(g->cmd) ||
	    clock_mono_ms() - g->claimed_at_ms < g->cfg.claim_idle_ms / 3)
		return;
	g->claimed_at_ms = clock_mono_ms();
	snprintf(idle, sizeof(idle), "%ld", g->cfg.claim_idle_ms);
	if (rconn_cmd(g->cmd, greader_on_autoclaim, g, 0,
	    "XAUTOCLAIM %s %s %s %s %s COUNT 100 JUSTID", g->stream, g->group,
	    g->consumer, idle, g->claim_cursor) < 0)
		log_warnx("event=autoclaim_failed stream=%s err=\"not connected\"", g->stream);
}

/* Retries whatever is waiting: a failed group create, a refused or failed read. */
static void
greader_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct greader *g = arg;

	(void)fd;
	(void)what;
	if (!g->group_ok && rconn_is_ready(g->rd) && !g->stopping)
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
	g->batch = batch;
	g->gate = gate;
	g->arg = arg;
	snprintf(g->claim_cursor, sizeof(g->claim_cursor), "0-0");
	greader_reread(g, 0);
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
	rconn_free(g->rd);
	if (g->tick != NULL)
		event_free(g->tick);
	free(g);
}
