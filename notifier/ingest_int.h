/*
 * ingest_int.h: what ingest.c shares with ingest_update.c (stages: ingest, match,
 * plan): the ingester, one entry's job and its script calls. Private to those two
 * files; the public face is include/ingest.h.
 */
#ifndef DEALPUSH_INGEST_INT_H
#define DEALPUSH_INGEST_INT_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "err.h"
#include "match.h"
#include "model.h"

struct event_base;
struct config;
struct greader;
struct rconn;
struct substore;
struct matcher;
struct metrics;
struct owner;
struct redisReply;
struct deal;

#define INGEST_STREAM "deals"
#define INGEST_DEAD_STREAM keys_global(KEYS_G_DEALS_DEAD)
#define INGEST_TRIES keys_global(KEYS_G_DEALS_TRIES) /* entry -> failed attempts */
#define INGEST_DEAD_PAYLOAD_MAX 16384
#define INGEST_KEEP_S (7 * 86400)  /* markers outlive the deal by a week */
#define INGEST_RETRY_MS 1000     /* pause after a failed step */
#define INGEST_PLAN_KEYS 7       /* plan.lua's fixed keys at most (the owner's with
                                  * ownership); report:rule:<r> follow */
#define INGEST_PLAN_ARGV 14      /* plan.lua's fixed arguments; rule names, then jobs
                                  * follow */
#define INGEST_JOB_PAIRS 6       /* deal, entry, exp, camp, pool, start */
#define INGEST_PLAN_INFLIGHT 4   /* plan.lua calls of one deal unanswered at once */
#define INGEST_PLANS_MAX 4       /* deals planned at once without holding the reads */

struct ingest_plan;
struct ingest_ranks;

struct ingest {
	struct event_base *base;
	const struct config *cfg;
	uint32_t shard;            /* the shard this reader plans (0 on one Redis) */
	char group[KEYS_GROUP_MAX];   /* its group on deals (keys_deals_group) */
	struct greader *rd;        /* "deals" in that group, its own connection */
	struct rconn *cmd;         /* scripts, shared */
	struct substore *ss;
	struct matcher *matcher;
	struct ingest_ranks *ranks;   /* shared by the notifier's shard readers, or NULL */
	struct metrics *metrics;   /* borrowed, may be NULL */
	const struct owner *owner; /* borrowed, may be NULL: every shard served */
	int stopping;
	size_t outstanding;        /* entries of the current batch still in progress */
	size_t detached;           /* plans in progress that no longer hold the batch */
	unsigned long attempts;    /* plan attempts started (names each attempt) */
	struct ingest_plan *plans; /* deals being planned (ingest_plan.c) */
	unsigned long plans_failed;
	int zombie;                /* freed while calls were in flight: the last job
	                            * to end frees it */
};

/*
 * One entry being handled: every script call sent for it holds a reference, and so
 * does the code sending them until it is done. When the last one is dropped, a
 * failure is counted against the entry (tries.lua) when it belongs to the entry, or
 * the pending list is simply read again later.
 */
struct ingest_job {
	struct ingest *in;
	char entry[64];
	char deal[MODEL_ID_MAX + 1];
	int64_t landed_ms;
	size_t refs;
	int failed;                /* some step failed: the entry stays pending */
	int counts;                /* ... and the failure belongs to the entry */
	char err[256];             /* the first failure, for the log and dead letter */
	size_t recipients, matched, held_out, paused, nchunks;
	size_t ranked, unrenderable;
	struct ingest_plan *plan;  /* while the deal is being planned, else NULL */
	int detached;              /* ingest_plan_detach: counted in ingest.detached */
	int ack;                   /* the entry is done in this shard: acked (after
	                            * every call answered) unless a step failed */
	int acking;                /* the XACK was sent */
	int durable;               /* what it wrote is on enough replicas already (the
	                            * plan's last chunk WAITed), or it wrote nothing */
};

/* A deal being planned in slices (ingest_plan.c); holds a reference on its job. */
struct ingest_plan {
	int retext;                /* an update's texts (retext.lua), not a new plan */
	char link_entry[64];       /* the entry push ids and click links name */
	char keep[32];             /* retext: keys' life, seconds */
	struct ingest_job *job;
	struct deal *d;            /* owned */
	struct match_run *run;
	struct match_links links;
	struct event *ev;          /* the next turn, run from the loop */
	char attempt[128];
	size_t chunk;              /* chunks sent */
	size_t inflight;           /* plan.lua calls sent and not answered */
	size_t holds;              /* ab_hold.lua calls sent and not answered */
	int final_pending;         /* the last slice held an A/B rest: an empty last
	                            * chunk follows once every hold has answered */
	int sent_last;
	int64_t started_ms, progress_ms;   /* monotonic: start, last chunk answered */
	struct ingest_plan *next, *prev;   /* ingest.plans */
};

/* A subscriber a rule's holdout kept back (a copy: it outlives the mirror's
 * record). */
struct ingest_held {
	char *id;                  /* owned */
	const char *rule;          /* owned by the rule set the ranking pinned */
	unsigned channels;         /* CH_BIT() mask held back */
	int whole;
};

/* What a ranking found beyond its run: the whole audience's counts, and the held-out
 * subscribers of the reader's shard. */
struct ingest_sum {
	size_t matched, held_out;  /* the whole audience's */
	struct ingest_held *held;  /* the shard's (all on one Redis); owned */
	size_t nheld;
};

void ingest_sum_free(struct ingest_sum *s);

/* ingest_ranks.c: deal d of entry ranked for this reader: its run (its shard's part
 * when sharded) and *sum. With the notifier's readers sharing ranks, the first one
 * to reach an entry ranks once for all shards and the others take their part. NULL
 * with *err. */
struct match_run *ingest_rank(struct ingest *in, const char *entry,
    const struct deal *d, struct ingest_sum *sum, struct err *err);

/* A new job for entry; it holds the next read back until ingest_job_put drops its
 * last reference. NULL on OOM (then the pending list is read again later). */
struct ingest_job *ingest_job_new(struct ingest *in, const char *entry,
    const char *deal);

/* Records a failed step (the first one decides); counts: it belongs to the entry. */
void ingest_job_fail(struct ingest_job *j, int counts, const char *step,
    const char *why);

/* Drops a reference; the last one counts a failure or reads on. */
void ingest_job_put(struct ingest_job *j);

/* 1 when an error reply is about the entry, 0 for Redis refusing any work now. */
int ingest_error_counts(const struct redisReply *r);

/* Sends one script call for the job (notifier/lua/<script>.lua); it holds a
 * reference until it answers. A failure to send is recorded on the job. */
void ingest_call(struct ingest_job *j, const char *script, int nkeys, int nargs,
    const char **args, const size_t *lens, size_t chunk);

/* bsearch/qsort comparison of two C strings by pointer. */
int ingest_strcmp(const void *a, const void *b);

/* The pool a job of d names (ORDER JOB_PAIRS "pool"): d's code pool; sharded, a
 * limited deal without one gets its quota's implicit pool (keys_quota_pool, L =
 * ceil(quantity x overbook); docs/sharding.md 4c "The quota"), written into buf;
 * else "". Decided from the layout and the deal alone, so every notifier agrees. */
const char *ingest_job_pool(const struct deal *d, double overbook, char *buf,
    size_t size);

/* ingest_plan.c: ranks the entry's deal and plans it in slices; takes ownership of
 * d. */
void ingest_plan(struct ingest *in, const char *entry, struct deal *d,
    const char *payload, size_t len);

/* abhold.c: sends ab_hold.lua for the A/B tests of the slice ml (before its plan.lua
 * call; counted in j->plan->holds until it answers) and takes their rest out of ml.
 * 1 when a hold was sent, 0 when the slice has no test, -1 on OOM (ml unchanged). */
int abhold_chunk(struct ingest_job *j, const struct deal *d, struct match_list *ml);

/* Takes the rest of every A/B test out of ml (their texts freed), keeping the order
 * of the others: an update's re-render (retext.lua) must not give a held recipient a
 * text of a variant before the test decides; the rest keeps what it was held with. */
void abhold_drop_rest(struct match_list *ml);

/* Dead-letters entry with e's reason, field and message and the entry's payload
 * (may be NULL), and acks it (dead.lua). A bad entry is bad for every shard: only
 * shard 0's reader writes the dead letter, the others ack it. */
void ingest_dead(struct ingest *in, const char *entry, const struct err *e,
    const char *payload, size_t len);

/* Lets the batch go on without waiting for j's plan (at most INGEST_PLANS_MAX at
 * once): the next deals are read and planned while a broad one is. Call only from
 * inside a batch. */
void ingest_plan_detach(struct ingest_job *j);

/* A plan.lua reply (any, failed too) for p has been handled: one less in flight. */
void ingest_plan_on_reply(struct ingest_plan *p);

/* Runs p's next turn from the loop, after what is already pending. */
void ingest_plan_kick(struct ingest_plan *p);

/* Ends every plan in progress, failed (shutdown): the entries stay pending. */
void ingest_plans_free(struct ingest *in);

/*
 * ingest_update.c: an update of a deal already planned (update.lua), and when it
 * changes what a text renders, the texts of its pushes not yet final rendered again
 * (retext.lua). Takes ownership of d and frees it; payload (len bytes) is borrowed
 * for the call.
 */
void ingest_update(struct ingest *in, const char *entry, struct deal *d,
    const char *payload, size_t len);

/* Sends the texts of one slice as retext.lua chunk number chunk; last: the final one.
 * 0, or -1 on OOM. */
int ingest_retext_chunk(struct ingest_job *j, const struct deal *d,
    const struct match_list *ml, const char *attempt, const char *keep, size_t chunk,
    int last);

/* ingest_plan.c: re-renders an updated deal's texts for job j in slices, with the
 * click links of its planned entry; takes ownership of d. */
void ingest_retext(struct ingest_job *j, struct deal *d, const char *planned_entry,
    const char *keep);

/* A reply of retext.lua for chunk of job j (not an error reply). */
void ingest_update_on_retext(struct ingest_job *j, size_t chunk,
    const struct redisReply *r);

#endif
