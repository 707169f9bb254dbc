/*
 * shard.h: which shard a subscriber (or a phone number) belongs to, each shard's hash
 * tag, and the layout a deployment stores in `dealpush:layout` (stage: all Redis I/O).
 *
 * Pure functions, no I/O (docs/sharding.md, section 1). A deployment has S shards,
 * fixed when it is created; shard(id) = fmix64(fnv1a64(id)) mod S; shard i's tag is
 * chosen so that it hashes to the middle slot of the i-th of S equal sections of the
 * slot space, so that shards spread evenly over the primaries of a cluster whose
 * slots were split into contiguous ranges. Every key of a shard begins with its tag
 * in braces.
 */
#ifndef DEALPUSH_SHARD_H
#define DEALPUSH_SHARD_H

#include <stddef.h>
#include <stdint.h>

struct err;

#define SHARD_MAX 1024             /* shards a deployment may have */
#define SHARD_TAG_MAX 24           /* "s1023.4294967295" and the NUL */
#define SHARD_LAYOUT_VERSION "1"
#define SHARD_HASH_NAME "fnv1a64-fmix64"

/* The shard of id (NUL-terminated) among nshards (1..SHARD_MAX). Cannot fail. */
uint32_t shard_of(const char *id, uint32_t nshards);

/* The slot shard i of nshards must hash to: floor((2i + 1) * 16384 / (2 * nshards)). */
int shard_target_slot(uint32_t i, uint32_t nshards);

/*
 * Writes shard i's tag into buf: "s<i>" when that hashes to its target slot, else
 * "s<i>.<n>" for the least n >= 1 that does. Deterministic. Returns the tag's length,
 * or -1 when i >= nshards, nshards is out of range or buf is too small (buf then
 * holds "").
 */
int shard_tag_find(uint32_t i, uint32_t nshards, char *buf, size_t size);

/* A deployment's layout: its shard count and every shard's tag. */
struct shard_layout;

/* A new layout of nshards shards with freshly searched tags, or NULL with *err
 * (ERR_INPUT: nshards out of range; ERR_NOMEM). */
struct shard_layout *shard_layout_new(uint32_t nshards, struct err *err);

/*
 * The layout stored in `dealpush:layout`, from its fields' values (any may be NULL when
 * the field is absent). Checks everything: the version, the hash function's name, the
 * shard count, and that there are exactly that many tags, each the shard's own
 * ("s<i>" or "s<i>.<n>") and hashing to its target slot, so that a corrupted or
 * hand-edited layout is refused. Returns a new layout, or NULL with *err naming the
 * field that is wrong (ERR_INPUT) or ERR_NOMEM.
 */
struct shard_layout *shard_layout_parse(const char *version, const char *shards,
    const char *hash, const char *tags, struct err *err);

/* Frees l; NULL does nothing. */
void shard_layout_free(struct shard_layout *l);

/* Number of shards. */
uint32_t shard_layout_count(const struct shard_layout *l);

/* Shard i's tag, without braces (borrowed from l), or NULL when i is out of range. */
const char *shard_layout_tag(const struct shard_layout *l, uint32_t i);

/*
 * The tags as stored in the layout key: space-separated, in shard order. Writes into
 * buf (NUL-terminated) and returns the length, or -1 when buf is too small.
 */
int shard_layout_tags(const struct shard_layout *l, char *buf, size_t size);

/*
 * Shard i's key for name: "{<tag>}<name>". Returns its length, or -1 when i is out of
 * range or buf is too small (buf then holds "").
 */
int shard_key(const struct shard_layout *l, uint32_t i, const char *name, char *buf,
    size_t size);

#endif
