/*
 * substore.h: the in-memory mirror of the subscribers kept in Redis (stage: match).
 *
 * Loads the hash "subscribers" at start (HSCAN, in bounded batches) and then tails
 * the stream "subscribers:changes", so that a change reaches matching within about
 * one block interval. After a reconnect, and when the stream was trimmed past the
 * last entry it read (a gap: changes it never saw), it reloads everything and drops
 * what is gone; the data stays readable during a reload. A stored subscriber that no
 * longer validates is logged and the old copy is kept. It may mirror only some of
 * the shards (substore_set_shards; docs/sharding.md 4d): those alone are loaded and
 * followed.
 */
#ifndef DEALPUSH_SUBSTORE_H
#define DEALPUSH_SUBSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "rconn.h"

struct event_base;
struct substore;

/*
 * Told of every change before the old subscriber is freed: old is NULL for an
 * addition, new NULL for a removal. Both are borrowed.
 */
typedef void substore_change_fn(void *arg, const struct subscriber *old_sub,
    const struct subscriber *new_sub);

/* Told when a full load has finished (every subscriber applied), before the store
 * reports ready: a bulk load is over, growth room can be given back. */
typedef void substore_loaded_fn(void *arg);

/* Returns a store that loads through its own connection to cfg, or NULL on OOM.
 * block_ms is the XREAD BLOCK time of the change feed; on_loaded may be NULL. Both
 * callbacks get arg. */
struct substore *substore_new(struct event_base *base, const struct rconn_config *cfg,
    long block_ms, substore_change_fn *on_change, substore_loaded_fn *on_loaded,
    void *arg);

/* Frees the store, its connection and every subscriber. NULL does nothing. */
void substore_free(struct substore *ss);

/* 1 once the first full load has finished, else 0. */
int substore_ready(const struct substore *ss);

/*
 * Mirrors only the shards k (0 <= k < keys_shards()) with want[k] != 0; want (of
 * keys_shards() bytes, copied) NULL means every shard, which is what a new store
 * mirrors. A different set from the one held reloads everything (reason "shards")
 * once no command of the store is out, within about one block interval: a load in
 * progress finishes with the set it started with first. Meanwhile the data stays
 * readable; the reload's end removes the subscribers of shards no longer wanted,
 * each told to on_change. With no shard, a load finishes at once with an empty
 * mirror and no feed is read. The same set as now does nothing. Never fails.
 */
void substore_set_shards(struct substore *ss, const uint8_t *want);

/* 1 when shard k is wanted and the last finished full load read it (its subscribers
 * are in the mirror and its feed is followed), else 0: a shard newly wanted is not
 * ready before the reload that reads it has finished. */
int substore_shard_ready(const struct substore *ss, uint32_t k);

/* Why the last full load ran. ORDER REASON: substore_reason_names in substore.c. */
enum substore_reason {
	SUBSTORE_START,            /* the first connection */
	SUBSTORE_RECONNECT,        /* a later connection: changes may have been missed */
	SUBSTORE_GAP,              /* the change stream was trimmed past our position */
	SUBSTORE_SHARDS            /* the set of shards to mirror changed */
};

/* The mirror's load state, for /healthz and /metrics. */
struct substore_stats {
	int ready;                 /* substore_ready() */
	int loading;               /* a full load (first or reload) is in progress */
	size_t subscribers;        /* in the mirror now (substore_count()) */
	size_t loaded;             /* stored subscribers read by the load in progress,
	                            * or by the last one when none is */
	unsigned long reconnects;  /* connections after the first */
	unsigned long reloads;     /* full loads started after the first */
	const char *last_reload_reason; /* "reconnect", "gap", "shards"; "" before any
	                            * reload; static */
	double load_s;             /* seconds the load in progress has run, else 0 */
	double last_load_s;        /* seconds the last finished load took; 0 while
	                            * loading or before the first has finished */
	size_t interned;           /* distinct interned strings (intern.h) */
	size_t intern_bytes;       /* and the bytes they take */
	size_t shards_wanted;      /* shards the mirror is to hold (substore_set_shards) */
	size_t shards_loaded;      /* of those, the ones substore_shard_ready() says 1 of */
};

/* Fills *out; never fails. */
void substore_stats(const struct substore *ss, struct substore_stats *out);

/* The subscriber with this id, borrowed until the next change, or NULL. */
const struct subscriber *substore_get(const struct substore *ss, const char *id);

/* Subscribers added, or given another phone number or DM handle, so far (a
 * re-applied record that changed neither does not count; a removal does not
 * either), and the id of change number seq while it is among the last 1024 (NULL
 * otherwise, or when seq is not yet made). An index by number built from the
 * mirror at sequence b finds what it lacks among the ids of changes b .. now - 1,
 * or is rebuilt when they are too many. */
#define SUBSTORE_RECENT_MAX 1024
uint64_t substore_change_seq(const struct substore *ss);
const char *substore_changed(const struct substore *ss, uint64_t seq);

/* Number of subscribers, and the i-th (0 <= i < count) in no particular order. */
size_t substore_count(const struct substore *ss);
const struct subscriber *substore_at(const struct substore *ss, size_t i);

/* Stops reading changes (shutdown); the data stays readable. */
void substore_stop(struct substore *ss);

#endif
