/*
 * owner.h: which shards this notifier serves, under leases in Redis (stage: all;
 * docs/sharding.md 4d).
 *
 * In the sharded layout a shard's work (its readers of `deals` and `{sK}pushes`, its
 * claims, its mirror) is done by one notifier at a time: the holder of the lease in
 * `{sK}owner` (own.lua). Which shards a notifier goes for is configured
 * (`[cluster] ownership = configured`, `shards = 0-15,40`) or balanced among the live
 * notifiers (`ownership = balanced`: members.lua heartbeats, then rendezvous hashing
 * with bounded loads over the live ids, owner_assign: each holds its share, and
 * adding or losing one moves about S/n shards). Every
 * acquire and renew is made durable on the replicas (WAIT) before it counts.
 *
 * The lease is counted here on the monotonic clock from the moment the last renew
 * that held was sent, minus lease_margin_ms: it ends before Redis' lease by
 * construction, so a notifier that stalls (SIGSTOP, a long GC-like pause of the host)
 * knows its lease is gone before anyone else can take the shard, and hands nothing
 * more to a gateway. send.lua is fenced by the epoch as well (a claim under an old
 * epoch answers "lost").
 *
 * A shard that stops being wanted (another notifier joined and won it) is left: it
 * stops being served at once, the lease is kept while the shard's work in flight
 * finishes (the busy callback; at most lease_ms), then released, so that the next
 * holder takes it over without waiting for the lease to run out.
 */
#ifndef DEALPUSH_OWNER_H
#define DEALPUSH_OWNER_H

#include <stddef.h>
#include <stdint.h>

#include "durable.h"

struct event_base;
struct rconn;
struct owner;

/* The live notifiers (members.lua): global, like dealpush:layout. */
#define OWNER_MEMBERS_KEY "dealpush:members"

enum owner_mode {
	OWNER_OFF = 0,        /* every notifier serves every shard (consumer groups share
	                       * the work); the mirror holds every shard */
	OWNER_CONFIGURED,     /* the shards of cluster.shards, each under a lease */
	OWNER_BALANCED        /* the live notifiers share all shards, under leases */
};

struct owner_config {
	enum owner_mode mode;
	const uint8_t *want;   /* OWNER_CONFIGURED: want[k] for each shard (borrowed) */
	long lease_ms;
	long margin_ms;
	long settle_ms;        /* balanced: wait this long after start before the first
	                        * acquire, so notifiers started together settle first */
	const char *me;        /* the notifier id: notifier.consumer */
	const char *addr;      /* shown in dealpush:members ("" when none) */
	struct durable_config wait;
};

/* Told when shard starts (serving = 1) or stops (0) being served here, or its lease
 * is taken or gone (held): a shard being left is held and not served until its
 * work is done and it is released. */
typedef void owner_change_fn(void *arg, uint32_t shard, int serving, int held);
/* 1 while shard still has work in flight here (a shard being left is released only
 * once this says 0, or lease_ms after it was left). */
typedef int owner_busy_fn(void *arg, uint32_t shard);

/* An owner of nshards shards (keys.h names their keys), working through cmd
 * (borrowed). cfg's strings are copied; want is copied. NULL on OOM. */
struct owner *owner_new(struct event_base *base, struct rconn *cmd,
    const struct owner_config *cfg, uint32_t nshards, owner_change_fn *on_change,
    owner_busy_fn *busy, void *arg);
void owner_free(struct owner *o);
/* From now on on_change and busy are never called (the notifier is freeing what they
 * reach); answers still due only update the owner itself. */
void owner_mute(struct owner *o);

/* 1 while shard is served here: the lease is held and not being left. NULL (no
 * ownership) serves every shard. */
int owner_serves(const struct owner *o, uint32_t shard);
/* 1 while shard's lease is held here, served or being left (NULL: 1). */
int owner_holds(const struct owner *o, uint32_t shard);
/* The monotonic ms until which shard's local lease holds, being left or not: work
 * claimed before may finish under it (0: no lease; INT64_MAX for NULL). A request
 * handed to a gateway must end before it. */
int64_t owner_until(const struct owner *o, uint32_t shard);
/* The epoch of shard's lease for the fenced scripts: "" when o is NULL (no fence),
 * "0" when the shard is not held (no lease has epoch 0: the script refuses). */
const char *owner_epoch(const struct owner *o, uint32_t shard);
/* The key of shard's owner record, for the fenced scripts ("" when o is NULL). */
const char *owner_key(const struct owner *o, uint32_t shard);
/* Shards served now. */
size_t owner_count(const struct owner *o);

/* The notifier is stopping: nothing more is acquired (the leases held are renewed
 * while the work in flight drains, then owner_leave releases them). */
void owner_quiesce(struct owner *o);

/* Releases every lease held and leaves dealpush:members (a notifier stopping after
 * its work is done); done runs once every answer is in. Nothing more is acquired. */
typedef void owner_done_fn(void *arg);
void owner_leave(struct owner *o, owner_done_fn *done, void *arg);

/* The balanced assignment of nshards shards among the sorted live ids
 * members[0..n): out[k] = the index of shard k's member (-1 for every shard when n is
 * 0). Rendezvous hashing with bounded loads: pairs (shard, member) weighted
 * fmix64(fnv1a64(id) ^ (shard + 1) * 0x9e3779b97f4a7c15), taken heaviest first, each
 * shard to the first member under its share (ceil(nshards / n)). Every notifier
 * computes the same from the same list; each holds its share or one less, and a
 * member joining or leaving moves about the shards it wins or held. 0, or -1 on OOM.
 * Pure: for the tests. */
int owner_assign(const char *const *members, size_t n, uint32_t nshards, int *out);

/* Parses "0-15,40" into want[0..nshards): 0, or -1 with why (a shard out of range,
 * a bad range, an empty list). Pure: config.c checks against the largest S, start-up
 * against the stored layout's. */
int owner_parse_shards(const char *s, uint8_t *want, uint32_t nshards, char *why,
    size_t whysize);

#endif
