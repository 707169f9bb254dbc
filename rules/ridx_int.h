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
	uint64_t hot;          /* its bit in ridx_slot.hot, or 0 (see RIDX_HOT_MIN) */
	struct ridx_list list;
};

struct ridx_dict {
	struct ridx_dent *t;   /* open addressing, linear probing */
	size_t cap;            /* power of two, or 0 */
	size_t n;
	size_t keybytes;
	size_t maxkey;         /* longest key in bytes (entries are never deleted) */
};

/* ORDER DICT: which posting lists a subscriber is in. */
enum ridx_dk { DK_CAT, DK_BRAND, DK_KW, DK_TAG, DK_REGION, DK_COUNT };

#define SLOT_HAS_MAX 0x01u
#define SLOT_HAS_MIN 0x02u

/* Per subscriber: what the filters read without touching the subscriber. Exactly one
 * cache line: the array is 64-byte aligned, so a record never straddles two lines. */
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
	uint8_t pad_;
	uint64_t hot;          /* bit b set: in the posting list whose hot bit is b */
};

/*
 * Hot keys: a posting list (of any kind but region) that holds at least RIDX_HOT_MIN
 * slots and 1/RIDX_HOT_DIV of the subscribers gets one of 64 bits, set in the record
 * of every slot in the list and kept in step by every update. A query then tests
 * membership of such a list by one bit of a record it reads anyway instead of
 * intersecting the list. Bits are handed out once and kept.
 */
#define RIDX_HOT_MIN 256
#define RIDX_HOT_DIV 32
#define RIDX_HOT_BITS 64

#define RIDX_SLOT_ALIGN 64

/*
 * The rank order: every live slot, ordered as the recipients of one rule are ranked
 * (engagement descending, then id ascending), in blocks of at most RIDX_OBLK entries
 * so that an update moves at most one block. A query that must visit every subscriber
 * walks this order, so its matches come out already ranked.
 */
#define RIDX_OBLK 1024

struct ridx_oblk {
	uint32_t n;
	uint32_t s[RIDX_OBLK];  /* slots, in rank order; a search reads each one's key
	                         * from its slot (4 bytes a subscriber, not 12) */
};

struct ridx_ord {
	struct ridx_oblk **b;   /* blocks in rank order, none empty */
	uint32_t nb;
	uint32_t capb;
	struct ridx_oblk *spare; /* reserved for the next split */
};

struct ridx {
	struct ridx_slot *slots;
	uint32_t nslots;       /* slots in use or free, all below this */
	uint32_t capslots;
	uint32_t freetop;      /* free slot stack: top slot + 1, 0 = empty; a free slot's
	                        * region holds the next one down (+ 1), so the stack
	                        * costs no memory and a removal never allocates */
	uint32_t nfree;
	uint32_t *idtab;       /* slot + 1, 0 empty; linear probing */
	size_t idcap;          /* power of two */
	size_t count;          /* live subscribers */
	struct ridx_dict dict[DK_COUNT];
	struct ridx_ord ord;
	unsigned nhot;         /* hot bits handed out */
};

/* One matched subscriber while a query ranks them. */
struct ridx_item {
	uint64_t eng;        /* rule_eng_key(engagement) */
	const struct subscriber *sub;
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

/* The rank order of two live slots a and b whose engagement keys are ka and kb:
 * < 0 when a ranks first (higher engagement, then smaller id), 0 for the same slot. */
int ridx_slot_cmp(const struct ridx *ix, uint64_t ka, uint32_t a, uint64_t kb, uint32_t b);

/* ridx.c's helpers that ridx_check.c walks the index with. */
/* Index of the first element of l >= x. */
uint32_t ridx_lower_bound(const struct ridx_list *l, uint32_t x);
/* The interest list of s that dictionary dk indexes (NULL: the region). */
const struct strlist *ridx_keys_of(const struct subscriber *s, int dk);
/* Calls fn for every key s has in dictionary dk; stops at the first -1. */
int ridx_each_key(struct ridx *ix, const struct subscriber *s, int dk,
    int (*fn)(struct ridx *, struct ridx_dict *, const char *, uint32_t), uint32_t x);
/* The slot of id (hash h), UINT32_MAX when absent; *cell its (or its free) cell. */
uint32_t ridx_id_lookup(const struct ridx *ix, const char *id, uint64_t h, size_t *cell);
/* The rank key of entry j of order block b. */
uint64_t ridx_oblk_key(const struct ridx *ix, const struct ridx_oblk *b, uint32_t j);

/* The entry for key (case-insensitive) or NULL. */
const struct ridx_dent *ridx_dict_find(const struct ridx_dict *d, const char *key);

/* The entry whose key equals s[0, len) (case-insensitive; s need not be terminated
 * there) given h, the case-folded FNV-1a-64 of those bytes, or NULL. */
const struct ridx_dent *ridx_dict_find_n(const struct ridx_dict *d, const char *s,
    size_t len, uint64_t h);

/* Case-folded FNV-1a-64, and its steps (for hashing every substring of a title). */
uint64_t ridx_key_hash(const char *s);
#define RIDX_FNV_BASIS 0xcbf29ce484222325ULL
#define RIDX_FNV_STEP(h, c) (((h) ^ (uint64_t)(unsigned char)rule_lower(c)) * 0x100000001b3ULL)

/* ---- plans (ridx_plan.c), used by ridx_query.c ---- */

#define FILT_MAX 8

enum { P_EMPTY, P_ALL, P_LIST };
enum { FT_NUM, FT_REGION_NE, FT_REGION_IN, FT_PRICE, FT_DISC, FT_CHAN };
enum { NUM_ENG, NUM_MAX_PRICE, NUM_MIN_DISC };  /* FT_NUM: which slot number (id) */

struct filt {
	uint8_t kind;
	uint8_t op;
	uint8_t sub_left;
	uint8_t neg;
	uint32_t id;
	double x;
	const uint32_t *ids;  /* FT_REGION_IN: region ids, nids of them */
	size_t nids;
};

struct plan {
	int kind;
	int exact;           /* candidates ∩ filters == the rule's match set */
	const uint32_t *v;   /* P_LIST: ascending slots */
	size_t n;
	uint64_t hot;        /* P_LIST that is exactly one hot key's list: its bit */
	uint64_t need;       /* a filter: every one of these hot bits set in the record */
	int intf;            /* a filter: the query's `audience interested` bounds (ifp) */
	const uint32_t *rids; /* P_LIST that is exactly the slots of these regions (nrids) */
	size_t nrids;
	size_t nf;
	struct filt f[FILT_MAX];
};


struct active {
	size_t rix;
	const struct rule *r;
	unsigned chans;      /* r->channels */
	size_t cur;          /* cursor into plan.v, which only moves forward */
	const uint32_t *bits; /* P_LIST in a walk in rank order: plan.v as a bitset */
	struct plan plan;
};

struct qvec {
	uint32_t *v;
	size_t cap;
};

struct ridx_scratch {
	int8_t *dv;
	size_t dvcap;
	struct active *act;     /* rules with a non-empty plan, in evaluation order */
	size_t actcap;
	size_t *count;          /* per rule, for grouping the matches */
	size_t countcap;
	uint16_t *grp;          /* per rule: its priority group (0 = highest) */
	size_t grpcap;
	struct qvec *pool;      /* temporary lists of one query, reused by the next */
	size_t npool;
	size_t poolcap;
	struct rule_recipient *side; /* the matches outside the largest group, placed last */
	size_t sidecap;
	struct ridx_item *items;
	struct ridx_item *tmp;
	size_t icap;
	size_t ni;
	/* how often a plan tested a hot bit instead of intersecting a list (tests read
	 * these to check that the differential test exercises that path) */
	unsigned long hot_ands;
	unsigned long region_ands;  /* likewise, a region tested on the record */
};

/* One query in progress. */
struct query {
	const struct ridx *ix;
	const struct rule_set *rs;
	struct rule_dctx dc;
	struct ridx_scratch *sc;
	const uint32_t *iv;  /* the list of `audience interested` (in slots), or NULL */
	struct plan ifp;     /* the price and discount bounds of `audience interested`,
	                      * tested once per candidate for every plan with intf set */
	int ihas_price;      /* ifp as numbers: the deal has a price, */
	double iprice;       /* the price */
	double idisc;        /* and its discount */
	int nomem;
};

/* 1 when slot record sl passes the interested bounds of q (ifp): the deal's price at
 * most the subscriber's max_price, its discount at least the min_discount_pct. */
static inline int
ridx_int_ok(const struct query *q, const struct ridx_slot *sl)
{
	return (!q->ihas_price || !(sl->flags & SLOT_HAS_MAX) ||
	    q->iprice <= sl->max_price) &&
	    (!(sl->flags & SLOT_HAS_MIN) || q->idisc >= sl->min_disc);
}

/* A temporary array of at least n uint32_t for this query, or NULL (q->nomem set). */
uint32_t *ridx_pool_get(struct query *q, size_t n);
/* Sets p to every slot, exact or not. */
void ridx_plan_all(struct plan *p, int exact);
/* p = union of the k sorted lists vs[i] of ns[i] slots (vs and ns are overwritten). */
int ridx_lists_union(struct query *q, const uint32_t **vs, size_t *ns, size_t k,
    struct plan *p);
/* a = a AND b. Returns 0, or -1 out of memory. */
int ridx_plan_and(struct query *q, struct plan *a, const struct plan *b);
/* The plan of condition n for the query's deal. Returns 0, or -1 out of memory. */
int ridx_plan_node(struct query *q, const struct rule_node *n, struct plan *p);
/* The plan of `audience interested` for the query's deal. */
int ridx_plan_interested(struct query *q, struct plan *p);
/* rule_cmp_num(), inline for the walk */
static inline int
ridx_cmp_num(int op, double a, double b)
{
	switch (op) {
	case RC_EQ: return a == b;
	case RC_NE: return a != b;
	case RC_LT: return a < b;
	case RC_LE: return a <= b;
	case RC_GT: return a > b;
	default: return a >= b;
	}
}

/* 1 when slot record sl passes every filter of p (inline: once per candidate). */
static inline int
ridx_filters_ok(const struct plan *p, const struct ridx_slot *sl)
{
	size_t i;
	int r;

	for (i = 0; i < p->nf; i++) {
		const struct filt *f = &p->f[i];
		double v;
		unsigned present = 1;
		size_t k;

		switch (f->kind) {
		case FT_NUM:
			if (f->id == NUM_ENG)
				v = sl->engagement;
			else if (f->id == NUM_MAX_PRICE)
				v = sl->max_price, present = sl->flags & SLOT_HAS_MAX;
			else
				v = sl->min_disc, present = sl->flags & SLOT_HAS_MIN;
			r = present && (f->sub_left ? ridx_cmp_num(f->op, v, f->x) :
			    ridx_cmp_num(f->op, f->x, v));
			break;
		case FT_REGION_NE:
			r = sl->region != f->id;
			break;
		case FT_REGION_IN:
			for (k = 0, r = 0; k < f->nids && !r; k++)
				r = sl->region == f->ids[k];
			break;
		case FT_PRICE:
			r = !(sl->flags & SLOT_HAS_MAX) || f->x <= sl->max_price;
			break;
		case FT_DISC:
			r = !(sl->flags & SLOT_HAS_MIN) || f->x >= sl->min_disc;
			break;
		default:
			r = (sl->chans & f->id) != 0;
			break;
		}
		if (r == (int)f->neg)
			return 0;
	}
	return 1;
}


#endif
