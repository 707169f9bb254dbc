/*
 * ridx_int.h: the layout of the interest index, shared by ridx.c (building, updating
 * in place, checking) and ridx_query.c (answering "who gets this deal") (stage: match).
 * Not a public header. The index borrows subscribers; it owns only its tables.
 */
#ifndef DEALPUSH_RIDX_INT_H
#define DEALPUSH_RIDX_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rule_int.h"

/* A posting list: slots in ascending order, no duplicates. */
struct ridx_list {
	uint32_t *v;
	uint32_t n;
	uint32_t cap;
};

/* One key of a dictionary; entries are never deleted, so id is stable. */
struct ridx_dent {
	char *key;             /* lower-cased copy; NULL = empty table cell */
	uint64_t hash;         /* of the lower-cased key */
	uint32_t id;           /* dense, stable */
	struct ridx_list list;
};

struct ridx_dict {
	struct ridx_dent *t;   /* open addressing, linear probing */
	size_t cap;            /* power of two, or 0 */
	size_t n;
	size_t keybytes;
};

/* ORDER DICT: which posting lists a subscriber is in. */
enum ridx_dk { DK_CAT, DK_BRAND, DK_KW, DK_TAG, DK_REGION, DK_COUNT };

#define SLOT_HAS_MAX 0x01u
#define SLOT_HAS_MIN 0x02u

/* Per subscriber: what the filters read without touching the subscriber. */
struct ridx_slot {
	const struct subscriber *sub;  /* NULL: free slot */
	double engagement;
	double max_price;
	double min_disc;
	uint64_t idhash;       /* FNV-1a-64 of the id: holdout and the id table */
	uint64_t idkey;        /* first 8 bytes of the id, big-endian: ranking */
	uint32_t region;       /* id of the region entry in DK_REGION */
	uint8_t reach;         /* rule_reachable() */
	uint8_t chans;         /* subscriber->channels */
	uint8_t flags;         /* SLOT_ */
};

struct ridx {
	struct ridx_slot *slots;
	uint32_t nslots;       /* slots in use or free, all below this */
	uint32_t capslots;
	uint32_t *freev;       /* free slot stack, capacity capslots */
	uint32_t nfree;
	uint32_t *idtab;       /* slot + 1, 0 empty; linear probing */
	size_t idcap;          /* power of two */
	size_t count;          /* live subscribers */
	struct ridx_dict dict[DK_COUNT];
};

/* One matched subscriber while a query ranks them. */
struct ridx_item {
	uint64_t eng;        /* rule_eng_key(engagement) */
	uint64_t idk;        /* first 8 bytes of the id */
	uint32_t slot;
	uint16_t rix;        /* rule index in evaluation order */
	uint8_t ch;
	uint8_t held;
};

/* Ranks items[0, n), which come grouped by rule in evaluation order, so that the first
 * cut are in the final order of struct rule_recipients (the rest is left unordered).
 * tmp has room for n items. */
void ridx_rank(const struct ridx *ix, const struct rule_set *rs, struct ridx_item *items,
    struct ridx_item *tmp, size_t n, size_t cut);

/* The entry for key (case-insensitive) or NULL. */
const struct ridx_dent *ridx_dict_find(const struct ridx_dict *d, const char *key);

/* Case-folded FNV-1a-64. */
uint64_t ridx_key_hash(const char *s);

#endif
