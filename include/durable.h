/*
 * durable.h: a script's writes made durable on replicas before the work they guard
 * goes on (stage: plan, send).
 *
 * A primary acknowledges a write before its replicas have it; if it dies then, the
 * promoted replica does not have it. So the steps that must survive a failover (a
 * claim before its request leaves, a plan's marker) run their script with WAIT
 * pipelined right behind it on the same connection, and their caller goes on only
 * once WAIT has counted enough replicas. Replication is one ordered stream: a WAIT
 * that confirms a write confirms every earlier write of the primary too. The one
 * place that does "run the script, then WAIT, and only then go on"
 * (docs/sharding.md section 4e; a cluster's claim connection uses it the same way).
 */
#ifndef DEALPUSH_DURABLE_H
#define DEALPUSH_DURABLE_H

#include <stddef.h>
#include <stdint.h>

#include "rconn.h"
#include "scripts.h"

struct redisReply;

struct durable_config {
	long replicas;             /* WAIT numreplicas; 0 = no WAIT (a single Redis) */
	long timeout_ms;           /* WAIT timeout; the command's own deadline adds the
	                            * connection's command timeout to it */
};

/*
 * Called exactly once per call. reply is the script's reply (borrowed: valid only
 * during the call; NULL when the script timed out, the connection dropped or memory
 * ran out), durable is 1 when WAIT counted at least the configured replicas (always
 * 1 with replicas = 0), 0 when it did not within the timeout or did not answer:
 * the script ran, but what it guards must not go on.
 */
typedef void durable_fn(struct rconn *rc, struct redisReply *reply, int durable,
    void *arg);

/*
 * Runs the embedded script name (script_call_named: NOSCRIPT loads the scripts
 * again) and, with cfg->replicas > 0, WAIT right behind it. Returns 0 (cb will run
 * exactly once) or -1 when the script could not be sent (cb never runs).
 */
int durable_script_call(struct rconn *rc, const struct durable_config *cfg,
    const char *name, int nkeys, int nargs, const char **args, const size_t *lens,
    durable_fn *cb, void *arg);

/* durable_script_call for a call built in sa (scripts.h: script_call_args), which
 * it sends and empties. 0, or -1 (cb never runs). */
int durable_script_call_args(struct rconn *rc, const struct durable_config *cfg,
    enum script_id id, struct script_args *sa, durable_fn *cb, void *arg);

/* What the process's WAITs said: one loop, so process-wide counters. */
struct durable_stats {
	unsigned long waits;       /* WAIT verdicts */
	unsigned long short_waits; /* of them: too few replicas within the timeout (a
	                            * WAIT with no answer is not counted) */
	int64_t last_ok_ms;        /* monotonic ms of the last verdict each way; 0: none */
	int64_t last_short_ms;
};

void durable_stats(struct durable_stats *st);

/* 1 when the replicas lag: the last WAIT verdict, within window_ms before now_ms, was
 * short (claims and plans wait until one answers enough). */
int durable_lagging(const struct durable_stats *st, int64_t now_ms, long window_ms);

/* A deep copy of a reply, freed with freeReplyObject; NULL on OOM. */
struct redisReply *durable_reply_dup(const struct redisReply *r);

#endif
