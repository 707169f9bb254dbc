/*
 * substore_int.h: what the mirror's two files share (stage: match): the store and its
 * per-shard change feeds (substore.c: records, index, full loads; substore_feed.c:
 * the change feeds). Private to them.
 */
#ifndef DEALPUSH_SUBSTORE_INT_H
#define DEALPUSH_SUBSTORE_INT_H

#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "keys.h"
#include "rconn.h"
#include "substore.h"

#define SUBSTORE_PAGE "1000"
#define SUBSTORE_CHANGES_BATCH "1000"
#define SUBSTORE_POLL_MS 50       /* cluster: a quiet feed is read again after this */
#define SUBSTORE_CHECK_MS 1000    /* a feed's gap check (XINFO STREAM) at most this often */

/* The most subscribers one mirror holds: positions in the index are 32-bit. */
#define SUBSTORE_MAX ((size_t)UINT32_MAX - 1)

/* What the store does next on its connection; a failed step is retried. */
enum substore_step {
	SUBSTORE_TAIL,             /* XREVRANGE: where the change feed starts */
	SUBSTORE_SCAN,             /* HSCAN from cursor */
	SUBSTORE_BSCAN,            /* HSCAN of the behaviour records, after SCAN */
	SUBSTORE_FEED              /* XREAD the change feed after last_id */
};

/* One shard's change feed: where the mirror is in it. */
struct substore_feed {
	struct substore *ss;
	char hash[KEYS_SHARD_MAX];    /* the shard's subscribers */
	char behav[KEYS_SHARD_MAX];   /* and their behaviour records (subbehav.h) */
	char stream[KEYS_SHARD_MAX];  /* its change feed */
	char last_id[64];          /* last change feed entry applied */
	char batch_id[64];         /* last entry of the batch whose HGETs are out */
	char read_from[64];        /* the id the XREAD out read after */
	int counted;               /* Redis counts entries-added: added_seen is kept */
	unsigned long long added_seen; /* entries-added at the load's start plus every
	                            * entry read since */
	unsigned long long batch_n; /* entries in the batch whose HGETs are out */
	int64_t check_at;          /* monotonic ms: the next round from then checks for a
	                            * gap (0: the next round) */
};

#define SUBSTORE_RECENT SUBSTORE_RECENT_MAX  /* ids kept for substore_changed */

struct substore {
	struct rconn *rc;
	struct substore_feed *feeds; /* one per shard (keys_shards()) */
	uint32_t nfeeds;
	/* Shard sets, nfeeds bytes each, 1 = in the set. A load walks load_want, copied
	 * from want when it starts, so that substore_set_shards in the middle of a load
	 * does not change what the load reads; the FEED step reloads when they differ. */
	uint8_t *want;             /* what the mirror is to hold */
	uint8_t *load_want;        /* of the load in progress, or the last */
	uint8_t *loaded_want;      /* of the last finished load; none before */
	uint32_t shard;            /* of the load step in progress */
	struct event *retry;       /* runs the current step again after a failure */
	struct event *poll;        /* cluster: the next feed round after a quiet one */
	int cluster;               /* on a Redis Cluster: one XREAD per shard, polled
	                            * (a blocking read of several slots cannot be) */
	size_t round_entries;      /* change entries the feed round in progress read */
	long retry_ms;             /* backoff: doubles per failure, reset on success */
	long retry_max_ms;
	enum substore_step step;
	char cursor[64];           /* HSCAN cursor of the load in progress */
	int busy;                  /* a command of the current step is out */
	long block_ms;
	substore_change_fn *on_change;
	substore_loaded_fn *on_loaded;
	void *arg;
	struct subscriber **all;   /* dense */
	uint8_t *seen;             /* parallel to all: load generation that last saw it */
	uint8_t *bseen;            /* parallel to all: load generation that last saw its
	                            * behaviour record (a full load drops the others) */
	size_t n, cap;
	/* The ids of the last SUBSTORE_RECENT changes (ring; change_seq counts every
	 * change): what an index built from the mirror a moment ago lacks
	 * (substore_changed). */
	uint64_t change_seq;
	char recent[SUBSTORE_RECENT][MODEL_ID_MAX + 1];
	uint32_t *index;           /* open addressing: position in all + 1; 0 = empty */
	size_t index_cap;          /* power of two */
	int ready;
	int stopped;
	int loading;
	uint8_t gen;               /* of the load in progress or the last */
	size_t pending;            /* replies of one feed round still out (XREAD, XINFO,
	                            * HGETs) */
	int gets_failed;           /* one of them failed: the batch is read again */
	int gap;                   /* XINFO showed entries past read_from deleted */
	/* health (substore_stats) */
	enum substore_reason reason;
	unsigned long connects;
	unsigned long loads;
	size_t loaded;             /* subscribers read by the load in progress or last */
	struct timespec load_started;
	double last_load_s;
};

/* substore.c */
void substore_remove(struct substore *ss, const char *id);
/* Parses a stored subscriber; keeps the old copy when the new one is bad. */
void substore_apply(struct substore *ss, const char *id, const char *json, size_t len);
/* Replaces the behaviour record of subscriber id (v NULL: none) when the mirror holds
 * it; a record that does not parse is logged and the old one kept. */
void substore_apply_behav(struct substore *ss, const char *id, const char *v,
    size_t len);
/* Success: the backoff starts small again. */
void substore_ok(struct substore *ss);
/* The current step failed: run it again after a backoff (r may be NULL). */
void substore_retry(struct substore *ss, const struct redisReply *r);
/* Starts a full load of every shard wanted now (which it copies into load_want). */
void substore_reload(struct substore *ss, enum substore_reason why);
/* The first shard k >= from in the load's set (load_want), or nfeeds when none. */
uint32_t substore_shard_next(const struct substore *ss, uint32_t from);
/* Each shard k (uint32_t) of the load's set, in order. */
#define SUBSTORE_FOREACH_SHARD(ss, k)					\
	for ((k) = substore_shard_next((ss), 0); (k) < (ss)->nfeeds;	\
	    (k) = substore_shard_next((ss), (k) + 1))
/* Sends the current step's command(s) unless one is out. */
void substore_run(struct substore *ss);

/* substore_feed.c */
/* One XREAD over the change feed of every shard in the load's set (at least one)
 * with an XINFO STREAM of each behind it; the replies apply the changes, and a gap
 * reloads. */
void substore_feed_send(struct substore *ss);

#endif
