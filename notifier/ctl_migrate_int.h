/*
 * ctl_migrate_int.h: what ctl_migrate.c (the command, its checks and the walk) and
 * ctl_migrate_keys.c (how each key moves) share (stage: outside the pipeline).
 */
#ifndef DEALPUSH_CTL_MIGRATE_INT_H
#define DEALPUSH_CTL_MIGRATE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "shard.h"

#include "ctl_int.h"

#define MIG_KEY "dealpush:migrate"
#define MIG_BATCH "500"               /* SCAN, HSCAN, ZSCAN and XRANGE counts */
#define MIG_IDLE_MS 10000LL           /* a stream consumer seen this lately: running */
#define MIG_NAME_MAX 2048             /* a key name we move */
#define MIG_VERSION_SHARDS "0-to-shards"
#define MIG_VERSION_SINGLE "0-to-single"
#define MIG_VERSION_COPY "0-from-cluster" /* a copy from a cluster not finished */
#define MIG_COPY_KEY "dealpush:copy"  /* that copy's progress (ctl_fromcluster.c) */
#define MIG_CODES_KEEP_S "3196800"        /* a pool's out, as deliver_codes.c keeps it */

struct mig {
	redisContext *c;
	struct ctl_conn k;            /* c again, for the checks shared with the copy */
	int to_shards;
	uint32_t n;                   /* shards */
	const struct shard_layout *l;
	char sha[41];                 /* migrate_move.lua */
	unsigned long moved;          /* keys moved in this run */
};

/* What a field or member of a split key names. */
enum mig_of {
	MIG_OF_SUB,                   /* the subscriber id itself */
	MIG_OF_PUSH,                  /* a push id "<entry>:<sub>:<ch>" */
	MIG_OF_FIELD,                 /* "<sub>:<ch>", "<sub>:<ch>:sid|retired"; others:
	                               * every shard (pushline's "job", "ref\t<rule>") */
	MIG_OF_LINE,                  /* delayed: "deal\tentry\texp\tcamp\t<ch>\t<sub>\t..." */
	MIG_OF_HOLDOUT,               /* holdout:<deal>: "<sub>", "<sub>:<ch>"; "\tat":
	                               * every shard */
};

#define MIG_ALL UINT32_MAX            /* a field every shard gets */

/* 1 when a consumer of group on stream (over k: one Redis or a cluster) was active in
 * the last MIG_IDLE_MS (after printing why), 0 when not (or no such stream or group),
 * -1 after printing an error. */
int mig_consumers_active(struct ctl_conn *k, const char *stream, const char *group);

/* 1 when a client of the Redis of c is blocked reading a stream, as a notifier's
 * readers are nearly all the time (after printing why; where names the node, "" for
 * none), 0 when not, -1 after printing an error. */
int mig_stream_readers(redisContext *c, const char *where);

/* One command; NULL (after printing) on an error reply or a failed connection. */
redisReply *mig_argv(struct mig *m, int argc, const char **argv, const size_t *lens);

/* One command of up to 4 text arguments (NULL ends them); as mig_argv. */
redisReply *mig_cmd(struct mig *m, const char *a0, const char *a1, const char *a2,
    const char *a3);

/* Frees r; 0 when it was a reply, -1 when NULL. */
int mig_ok(redisReply *r);

/* 1 when k begins with p. */
int mig_has_prefix(const char *k, const char *p);

/* 1 for "{d:<deal>}codeout" (keys.h), a key of the sharded layout only. */
int mig_is_codeout(const char *k);

/* ctl_migrate_codes.c: before the keys move to the single-instance layout, every
 * code a shard holds outside a push (stash, reservation, give-back) back to its
 * pool; 0, or -1 after printing. mig_is_pool_side: 1 for a pool's records of the
 * sharded layout ("{codes:<name>}:res", ":marks", ":out"), which the walk drops. */
int mig_codes_to_single(struct mig *m);
int mig_is_pool_side(const char *k);
/* --to-single, after mig_codes_to_single: any stash no codestate line named back to
 * its pool. --to-shards, after the walk: every shard's held codes named in the pool's out and a codestate
 * line for their (deal, pool), so that one given back is walked. 0, or -1. */
int mig_codes_orphans_to_single(struct mig *m);
int mig_codes_to_shards(struct mig *m);

/* The shard whose tag key k begins with, with the name after the tag in *name;
 * MIG_ALL when it is no shard's key of the layout. */
uint32_t mig_tag_of(struct mig *m, const char *k, const char **name);

/* Moves key k of the single-instance layout to its sharded name(s) (a key that
 * stays global is left); 0, or -1 after printing. */
int mig_key_to_shards(struct mig *m, const char *k);

/* Moves key k of the sharded layout back to its single-instance name, merged with
 * the other shards' (the streams wait for mig_merge_streams); 0 or -1. */
int mig_key_to_single(struct mig *m, const char *k);

/* Every shard's stream name merged into the single stream name; 0 or -1. */
int mig_merge_streams(struct mig *m, const char *name);

/* The jobs of job stream src ("pushes" or a shard's) that group "deliver" still
 * needs, moved to the other layout's streams split by recipient shard; then src is
 * deleted (ctl_migrate_jobs.c). 0, or -1 after printing. */
int mig_jobs(struct mig *m, const char *src);

/* The other layout's name of global key k (keys.h, ORDER KEYS_GLOBAL, and the
 * sessions) into buf: to_shards 1 maps a single-instance name to its sharded one,
 * 0 the other way. Returns 1 when k is one of them, 0 when not, -1 when the name
 * does not fit. */
int mig_global_name(const char *k, int to_shards, char *buf, size_t size);

/* abrest:<deal> (an A/B test's held rest, global in both layouts): each held value
 * begins with the shard its job will go to, "<shard>\036<lines>"; rewritten in place
 * for the layout migrated to (the subscriber's shard, or 0). 0, or -1 after
 * printing. */
int mig_abrest(struct mig *m, const char *src);

uint32_t mig_shard_of(struct mig *m, enum mig_of kind, const char *v, size_t len);
int mig_split(struct mig *m, const char *src, int zset, enum mig_of kind);

/* ctl_migrate_ab.c: what an A/B test holds, per shard in the sharded layout
 * (docs/sharding.md 4h). --to-shards: abrest:<deal> split by its fields'
 * subscribers; abq:<deal>:<rule> split by its members', the order kept within a
 * shard. --to-single: a shard's queue appended to the one queue (its hash merges as
 * any hash). 0, or -1 after printing; a rerun after a kill may queue a member twice,
 * which the release takes once. */
int mig_ab_rest_to_shards(struct mig *m, const char *src);
int mig_ab_queue_to_shards(struct mig *m, const char *src);
int mig_ab_queue_to_single(struct mig *m, const char *src, const char *dst);

/* inbound:sids' fields to the other layout's form; 0 or -1. */
int mig_sids(struct mig *m);

/* To the shards: every stored subscriber's id added to the phone index of its
 * number and X id (ctl_migrate_phones.c); back: nothing (the walk merges the
 * indexes). 0, or -1 after printing. */
int mig_phone_index(struct mig *m);

/* The readers' groups on deals moved to the other layout's ("notifier" <-> "s<K>"),
 * starting where the old ones stand (ctl_migrate_groups.c). 0, or -1 after
 * printing. */
int mig_deals_groups(struct mig *m);

/* 1 (after printing why) when the old readers on deals are not done: an entry
 * pending, or groups at different places; 0 when a migration may start; -1 on
 * error. */
int mig_deals_groups_check(struct mig *m);

/* 1 when deals is read in group "notifier" (the single layout's, or a sharded
 * layout's from before the shard groups), 0 when not (or no stream), -1 after
 * printing. */
int mig_deals_single_group(struct mig *m);

/* ---- helpers of ctl_migrate_keys.c, shared with ctl_migrate_single.c ---- */

/* Pipelined HSET or ZADD per shard of pairs: per shard an argv of cmd, dst, then the
 * pairs (for ZADD score, member). */
struct mig_out {
	const char **argv;
	size_t *lens;
	int argc, cap;
};

/* A key moved: counted, and the test's fault point (DP_FAULTS=migrate.kill@N) ends
 * the process there as kill -9 would. */
void mig_tick(struct mig *m);

/* "{tag of shard k}name" into buf; -1 when it does not fit. */
int mig_name(struct mig *m, uint32_t k, const char *name, char *buf, size_t size);

/* Deletes src, a key moved (counted: mig_tick). 0, or -1 after printing. */
int mig_drop(struct mig *m, const char *src);

/* EVALSHA migrate_move.lua src dst how. 0, or -1 after printing. */
int mig_move(struct mig *m, const char *src, const char *dst, const char *how);

/* The key's TTL in ms, 0 for none; -1 after printing. */
long long mig_pttl(struct mig *m, const char *key);

/* Gives every destination that was written the source's TTL, then deletes the
 * source. got: a flag per shard; one (the destination one) when one is not NULL. */
int mig_finish_split(struct mig *m, const char *src, long long pttl, const char *got,
    const char *one);

/* Adds the pair a, b to o's argv (grown as needed); 0 or -1. */
int mig_out_add(struct mig_out *o, const char *a, size_t alen, const char *b,
    size_t blen);

/* Calls fn for every page of an HSCAN or ZSCAN (cmd) of src: items are the page's
 * field, value (member, score) pairs. 0, or -1 when a read or fn failed. */
typedef int mig_page_fn(struct mig *m, const redisReply *items, void *arg);
int mig_walk_scan(struct mig *m, const char *cmd, const char *src, mig_page_fn *fn,
    void *arg);

/* Calls fn for every entry of stream src in id order, by batches of MIG_BATCH (an
 * entry fn deletes does not upset the walk). 0, or -1 when a read or fn failed. */
typedef int mig_entry_fn(struct mig *m, const char *src, const redisReply *e, void *arg);
int mig_walk_stream(struct mig *m, const char *src, mig_entry_fn *fn, void *arg);

/* XADD dst id fields... of entry e (with id in place of e's when not NULL); an id
 * already there is skipped. 0 or -1. */
int mig_xadd(struct mig *m, const char *dst, const redisReply *e, const char *id);

#endif
