/*
 * phoneix.h: the index from a phone number (or a DM sender's X id) to the ids of the
 * subscribers who have it, in Redis on the number's slot (stage: http; docs/
 * sharding.md 4f, "the phone index"; phone_index.lua).
 *
 * Every subscriber write adds its id to its number (and X id) before it stores the
 * subscriber, so that an inbound SMS STOP, which reads the index after it put the
 * number on the suppression list, either finds the id (its shard step then keeps
 * the opt-out in the shard's stops, which the store reads) or was seen by the
 * write's add (the entry it answers). A DM has no suppression list: a DM STOP whose
 * lookup comes first misses the write. The index may hold stale ids (a number
 * changed, a subscriber deleted): hook_consent.lua checks each against the stored
 * subscriber, and a delete or an erasure drops its own. At most PHONEIX_MAX ids a number, the
 * oldest out first.
 */
#ifndef DEALPUSH_PHONEIX_H
#define DEALPUSH_PHONEIX_H

#include <stddef.h>

#include "durable.h"
#include "keys.h"
#include "model.h"

enum phoneix_kind {
	PHONEIX_PHONE = 0,            /* phones: E.164 number -> ids */
	PHONEIX_DM                    /* dmx: X user id -> ids */
};

#define PHONEIX_MAX 64            /* ids a number holds, at most (phone_index.lua) */

/* The bucket of the index of kind that holds value, and (PHONEIX_PHONE only;
 * otherwise "") the number's suppression list, both on value's slot (ORDER
 * PHONE_INDEX_KEYS takes sup first, then the buckets). 0, or -1. */
int phoneix_keys(enum phoneix_kind kind, const char *value, char ix[KEYS_SHARD_MAX],
    char sup[KEYS_SHARD_MAX]);

/*
 * phone_index.lua "add" (op "add") or "drop" of id at value, made durable (wait):
 * cb gets the script's reply ("add": an array of one entry of the suppression list,
 * "" = none; "drop": an integer). Returns 0, or -1 (cb never runs).
 */
int phoneix_call(struct rconn *rc, const struct durable_config *wait,
    enum phoneix_kind kind, const char *op, const char *value, const char *id,
    durable_fn *cb, void *arg);

/* The ids of an index field v (len bytes; "\n"-separated) into ids, at most max;
 * an id too long is skipped. Returns how many. */
size_t phoneix_split(const char *v, size_t len, char ids[][MODEL_ID_MAX + 1],
    size_t max);

#endif
