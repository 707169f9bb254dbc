/*
 * ingest.h: read deals from the stream, validate, match and plan them (stages:
 * ingest, match, plan).
 *
 * Reads "deals" in consumer group "notifier" (one Redis) or "s<K>" (one per shard); a
 * bad entry is dead-lettered to "deals:dead" and acked in one atomic step; a good
 * one is matched and its shard's jobs are written to the shard's "pushes" in atomic
 * chunks, the last of which sets the shard's planned-marker; the entry is acked
 * after it. Own pending entries are read again after every (re)connect or failure,
 * so nothing is lost; the marker makes re-reading harmless.
 */
#ifndef DEALPUSH_INGEST_H
#define DEALPUSH_INGEST_H

#include <stdint.h>

struct event_base;
struct config;
struct rconn;
struct rconn_config;
struct substore;
struct matcher;
struct ingest;

/*
 * Returns the ingester of shard shard (keys.h; 0 on one Redis): it reads deals in
 * the shard's group (keys_deals_group) through its own connection to rcfg, matches
 * each deal with matcher once ss has loaded, and plans, cancels and updates it for
 * the shard's subscribers only, writing through cmd (borrowed, shared). Every
 * shard's ingester reads every entry (docs/sharding.md 4a). cfg, ss and matcher are
 * borrowed and must outlive it. NULL on OOM.
 */
struct ingest *ingest_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct rconn *cmd, struct substore *ss,
    struct matcher *matcher, uint32_t shard);

struct metrics;

/*
 * The rankings a notifier's shard readers share: the first reader of a deal entry
 * ranks the whole audience once and the other shards' readers take their parts
 * (notifier/ingest_ranks.c). One per notifier, for nshards readers; set on each with
 * ingest_set_ranks before they read; freed after them. NULL on OOM.
 */
struct ingest_ranks;
struct ingest_ranks *ingest_ranks_new(uint32_t nshards);
void ingest_ranks_free(struct ingest_ranks *rk);
void ingest_set_ranks(struct ingest *in, struct ingest_ranks *rk);
/* Drops the parts no reader took in time (call every second; NULL: nothing). */
void ingest_ranks_expire(struct ingest_ranks *rk);

/* The most script arguments (keys included) one plan chunk of plan_chunk
 * recipients in jobs of job_size can need (a chunk holds one shard's recipients):
 * config.c refuses values over SCRIPT_ARGS_MAX. */
long ingest_plan_args_max(long plan_chunk, long job_size);

/* Deals being planned now, for /healthz and /metrics. */
struct ingest_progress {
	size_t planning;             /* deals being planned */
	size_t ranked, done;         /* their ranked subscribers, and those sliced so far */
	long long stalled_ms;        /* the longest time one of them has gone without a
	                              * chunk answered (0 when none is planning) */
	char stalled_deal[129];      /* that deal's id, "" when none */
	unsigned long plans_failed;  /* plan attempts that failed since start */
};

/* Fills *out from state already at hand (never waits). */
void ingest_progress(const struct ingest *in, struct ingest_progress *out);

/* Counts ingested and dead-lettered deals in m (borrowed; NULL: none). */
void ingest_set_metrics(struct ingest *in, struct metrics *m);

struct owner;
/* Reads only while o (borrowed; NULL: always) serves the shard and its mirror has
 * loaded (owner.h). Set before the reader connects. */
void ingest_set_owner(struct ingest *in, const struct owner *o);
/* The shard came to be served here: its previous owner's pending entries are taken
 * over at once (greader_takeover). */
void ingest_takeover(struct ingest *in);
/* Stops reading new entries; work already read completes. */
void ingest_stop(struct ingest *in);

/* 1 when stopped and nothing is outstanding. */
int ingest_idle(const struct ingest *in);

/* Frees it (outstanding replies are dropped by the connections). NULL does nothing. */
void ingest_free(struct ingest *in);

#endif
