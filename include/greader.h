/*
 * greader.h: one consumer of one Redis stream in a consumer group, on its own
 * connection (stage: ingest, deliver, attribution).
 *
 * Creates the group when missing (from "0", MKSTREAM), reads the consumer's own
 * pending list first after every (re)connect or failure (walked by id, so an entry
 * that keeps failing cannot starve new ones), then new entries with BLOCK; claims
 * the entries of consumers idle for claim_idle_ms (XAUTOCLAIM). One read is out at a
 * time and the next waits until the owner's gate says it may go (backpressure).
 */
#ifndef DEALPUSH_GREADER_H
#define DEALPUSH_GREADER_H

#include <stdint.h>

struct event_base;
struct redisReply;
struct rconn;
struct rconn_config;
struct greader;

struct greader_config {
	const char *name;          /* for logs and the connection: "ingest" */
	const char *stream;
	const char *group;
	const char *consumer;
	long count;                /* entries per read */
	long block_ms;
	long command_timeout_ms;   /* added to block_ms for the read's deadline */
	long retry_ms;             /* pause after a failure before the next read */
	long claim_idle_ms;        /* 0: never claim other consumers' entries */
	/* When set: a dead consumer's entries are not claimed while it still has entries
	 * pending on guard_stream in guard_group (deliver: its deals, which may hold a
	 * cancel, are taken over first). NULL: claimed by XAUTOCLAIM alone. */
	const char *guard_stream;
	const char *guard_group;
	/* 1: claims count as deliveries (XAUTOCLAIM without JUSTID), so that a guarded
	 * reader of another stream can tell an entry taken over and not yet done with. */
	int claims_count;
};

/* Runs for every non-empty batch: entries is the stream's entries array (check each
 * with ru_entry). The reply is borrowed for the call. */
typedef void greader_batch_fn(void *arg, const struct redisReply *entries);

/* 1 when the owner can take a batch now (its connections ready, its work done). */
typedef int greader_gate_fn(void *arg);

/* Returns a reader on its own connection to rcfg (strings of cfg are copied), or
 * NULL on OOM. Reading starts once connected and gate allows it. */
struct greader *greader_new(struct event_base *base, const struct rconn_config *rcfg,
    const struct greader_config *cfg, greader_batch_fn *batch, greader_gate_fn *gate,
    void *arg);

/* Frees it and its connection. NULL does nothing. */
void greader_free(struct greader *g);

/* Reads now if nothing is out and the gate allows; otherwise the tick retries. */
void greader_read(struct greader *g);

/* Asks for the pending list to be read again from its start: once the walk in
 * progress (if any) has ended and new entries have been read once, so an entry that
 * keeps failing cannot starve new ones; a request made while a read is out is kept.
 * After a failure (failed = 1) no read goes out before retry_ms, so an entry that
 * keeps failing cannot spin the loop. */
void greader_reread(struct greader *g, int failed);

/* Takes over every other consumer's pending entries at once (min-idle 0, guarded as
 * usual), in rounds until a pass finds none: a shard this notifier has just come to
 * own (owner.h), whose entries belong to its previous owner. */
void greader_takeover(struct greader *g);
/* Stops reading (a read already out still delivers its batch). */
void greader_stop(struct greader *g);

/* During the batch callback: 1 when the batch came from our own pending list
 * (entries read before: after a restart, a reconnect, a takeover or a reread), 0 when
 * they are new entries. */
int greader_in_pending(const struct greader *g);

/* The shared command connection to claim with (XAUTOCLAIM): the reader's own is
 * blocked in reads. Set once; claiming is off until it is. */
void greader_set_cmd(struct greader *g, struct rconn *cmd);

#endif
