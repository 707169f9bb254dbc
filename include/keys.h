/*
 * keys.h: the names of the keys a shard owns, in the layout in force (stage: all
 * Redis I/O).
 *
 * The one place that knows these names (docs/sharding.md, section 2). In the
 * single-instance layout (layout_current() NULL) every name is as before sharding
 * ("subscribers", "texts:<sub>"); in the sharded layout it is the same name behind
 * the shard's tag ("{s1.23915}subscribers"), the tag first so that no '{' or '}' in
 * an id can change the slot. Every function writes a NUL-terminated name into buf and
 * returns its length, or -1 (buf then "") when buf is too small or shard is out of
 * range. Pure: no I/O, no allocation.
 */
#ifndef DEALPUSH_KEYS_H
#define DEALPUSH_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Room for the longest name built from an id, a campaign and the tag. */
#define KEYS_MAX (2 * MODEL_TEXT_MAX + MODEL_ID_MAX + 64)
/* Room for a name of which a shard has one (keys_shard_key, keys_consent). */
#define KEYS_SHARD_MAX 64

/* ORDER KEYS_SHARD: the keys of which a shard has one (keys_shard_names[] in keys.c);
 * the first four in ORDER SUB_KEYS. */
enum keys_name {
	KEYS_SUBSCRIBERS = 0,         /* hash: id -> stored subscriber JSON */
	KEYS_SUB_CHANGES,             /* stream: the mirror's change feed */
	KEYS_CONSENT_EPOCH,           /* counter bumped by every consent removed */
	KEYS_CONSENT_RECORDS,         /* hash: id -> the consent record */
	KEYS_ENGAGEMENT_DECAY,        /* the decay's position in pushes:log */
	KEYS_NAMES
};

/* The number of shards: S, or 1 in the single-instance layout. */
uint32_t keys_shards(void);

/* The shard of subscriber sub (0 in the single-instance layout). */
uint32_t keys_shard_of(const char *sub);

/* Shard shard's key name. */
int keys_shard_key(uint32_t shard, enum keys_name name, char *buf, size_t size);

/* Shard shard's consent set of channel ch ("consent:sms", "consent:dm"). */
int keys_consent(uint32_t shard, enum channel ch, char *buf, size_t size);

/* ORDER SUB_KEYS (admin_sub_put.lua, admin_sub_del.lua): a subscriber's keys in
 * shard shard: subscribers, subscribers:changes, consent:epoch, consent:records,
 * then consent:<channel> in ORDER CHANNEL. Returns 0, or -1 when shard is out of
 * range. */
#define KEYS_SUB_NKEYS (4 + CH_COUNT)
int keys_sub_keys(uint32_t shard, char keys[KEYS_SUB_NKEYS][KEYS_SHARD_MAX]);

/* Subscriber sub's texts today: "texts:<sub>" in sub's shard. */
int keys_texts(const char *sub, char *buf, size_t size);

/* Subscriber sub's pushes of campaign camp in 24 h: "camp:<camp>:<sub>". */
int keys_camp(const char *camp, const char *sub, char *buf, size_t size);

/* The law's cap per campaign and per deal: "capcamp:<camp>:<sub>",
 * "capdeal:<deal>:<sub>", in sub's shard. */
int keys_capcamp(const char *camp, const char *sub, char *buf, size_t size);
int keys_capdeal(const char *deal, const char *sub, char *buf, size_t size);

/* A push's click marker "clicked:<push id>", in shard shard (its subscriber's). */
int keys_clicked(uint32_t shard, const char *push_id, char *buf, size_t size);

#endif
