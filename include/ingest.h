/*
 * ingest.h: read deals from the stream, validate, match and plan them (stages:
 * ingest, match, plan).
 *
 * Reads "deals" in consumer group "notifier"; a bad entry is dead-lettered to
 * "deals:dead" and acked in one atomic step; a good one is matched and its jobs are
 * written to "pushes" in atomic chunks, the last of which acks the deal and sets its
 * planned-marker. Own pending entries are read again after every (re)connect or
 * failure, so nothing is lost; the marker makes re-reading harmless.
 */
#ifndef DEALPUSH_INGEST_H
#define DEALPUSH_INGEST_H

struct event_base;
struct config;
struct rconn;
struct rconn_config;
struct substore;
struct matcher;
struct ingest;

/*
 * Returns an ingester reading through its own connection to rcfg and writing through
 * cmd (borrowed, shared), matching with matcher once ss has loaded. cfg, ss and
 * matcher are borrowed and must outlive it. NULL on OOM.
 */
struct ingest *ingest_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct rconn *cmd, struct substore *ss,
    struct matcher *matcher);

struct metrics;

/* The most script arguments (keys included) one plan chunk of plan_chunk
 * recipients in jobs of job_size can need over shards shards (a job holds one
 * shard's recipients, so grouping adds up to shards - 1 jobs): config.c refuses
 * values over SCRIPT_ARGS_MAX, and the notifier again once the stored layout's
 * shard count is known. */
long ingest_plan_args_max(long plan_chunk, long job_size, long shards);

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

/* Stops reading new entries; work already read completes. */
void ingest_stop(struct ingest *in);

/* 1 when stopped and nothing is outstanding. */
int ingest_idle(const struct ingest *in);

/* Frees it (outstanding replies are dropped by the connections). NULL does nothing. */
void ingest_free(struct ingest *in);

#endif
