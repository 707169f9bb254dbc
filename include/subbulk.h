/*
 * subbulk.h: a batch of validated subscribers as the arguments of one
 * admin_sub_bulk.lua call (docs/contracts.md, "Bulk import"), shared by dealpushctl's
 * import and the admin API's bulk endpoint so both store exactly what single puts
 * store.
 */
#ifndef DEALPUSH_SUBBULK_H
#define DEALPUSH_SUBBULK_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "subscriber.h"

#define SUBBULK_MAX 1000              /* subscribers per call, at most */
#define SUBBULK_NKEYS (5 + CH_COUNT)  /* ORDER BULK_KEYS: admin_sub_bulk.lua */

struct subbulk;

/* An empty batch of at most max (1..SUBBULK_MAX) subscribers, recorded with how
 * ("import", "api"; copied); NULL when out of memory or max is out of range. */
struct subbulk *subbulk_new(size_t max, const char *how);

/* Makes the empty batch b one of shard shard (keys.h): its keys are that shard's,
 * and only its subscribers may be added (a script call holds one shard). A new
 * batch is of shard 0. Returns 0, or -1 when b is not empty or shard is out of
 * range. */
int subbulk_set_shard(struct subbulk *b, uint32_t shard);

/* The shard of b's subscribers. */
uint32_t subbulk_shard(const struct subbulk *b);

/* Adds s (validated by subscriber_parse_canon) with canon, its canonical JSON (b takes
 * ownership of it, also on failure), and the input line it came from. Returns 0, or
 * -1 when the batch is full or s is of another shard (nothing added). */
int subbulk_add(struct subbulk *b, const struct subscriber *s, char *canon,
    unsigned long line);

/* The number of subscribers in b, and the input line of the i-th (0-based). */
size_t subbulk_count(const struct subbulk *b);
unsigned long subbulk_line(const struct subbulk *b, size_t i);

/*
 * What b does before its call (docs/sharding.md 4f): its subscribers' ids added to
 * the phone index under their numbers and X ids, reading with it the numbers'
 * entries on the suppression list, each on the slot of the numbers: one
 * phone_index.lua "add" per (index, phone shard). subbulk_reads counts them (0:
 * nothing to index; call it once b is full); subbulk_read_argv builds the i-th
 * (0-based): *nkeys keys (ORDER PHONE_INDEX_KEYS: the suppression list, then the
 * index's buckets), then its arguments (argv and lens point into b, valid until the
 * next call of subbulk_read_argv), and returns their count, or -1;
 * subbulk_read_reply keeps the entries of the i-th call's reply for b's own call.
 * Returns 0, or -1 when r is not the reply of that call (an error reply included)
 * or memory ran out. Every one must have succeeded before b's call is sent: a
 * subscriber stored unindexed could be missed by a STOP.
 */
int subbulk_reads(struct subbulk *b);
int subbulk_read_argv(struct subbulk *b, int i, const char ***argv,
    const size_t **lens, int *nkeys);
int subbulk_read_reply(struct subbulk *b, int i, const redisReply *r);

/* The script's keys then arguments (SUBBULK_NKEYS keys first), with now (epoch s) as
 * the time of the record: *args and *lens point into b, valid until its next change.
 * Three slots before *args are free, for a caller that puts EVALSHA, the sha and the
 * key count there (subbulk_evalsha). Returns the number of entries. */
int subbulk_args(struct subbulk *b, long long now, const char ***args,
    const size_t **lens);

/* subbulk_args with "EVALSHA", sha (40 hex) and the key count in front, for
 * redisAppendCommandArgv. Returns the number of entries. */
int subbulk_evalsha(struct subbulk *b, const char *sha, long long now,
    const char ***argv, const size_t **lens);

/* Empties b for the next batch (its memory is kept). */
void subbulk_reset(struct subbulk *b);

void subbulk_free(struct subbulk *b);

/* The counts of one admin_sub_bulk.lua reply: stored, created, suppressed.
 * Returns the number of kept-out entries (subbulk_kept), or -1 when r is not such a
 * reply (an error reply included). */
int subbulk_reply(const redisReply *r, size_t n, long long counts[3]);

/* The k-th kept-out entry of reply r (as counted by subbulk_reply): the position of
 * the subscriber in the batch (0-based) and the channels kept out ("sms" or "sms,dm";
 * borrowed from r). */
void subbulk_kept(const redisReply *r, int k, size_t *pos, const char **channels);

#endif
