/*
 * ridx.c: the interest index (stage: match): per-subscriber compact records, an id
 * table, and posting lists by category, brand, keyword, tag and region, all updated in
 * place when one subscriber is added, changed or removed (never a rebuild).
 * Every update reserves what it needs first, so out of memory leaves the index exactly
 * as it was. Borrows subscribers, never frees or writes them; no I/O, no globals.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "ridx_int.h"

_Static_assert(sizeof(struct ridx_slot) == RIDX_SLOT_ALIGN, "a slot record is one line");

uint64_t
ridx_key_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)rule_lower((unsigned char)*s);
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- dictionaries ---- */

const struct ridx_dent *
ridx_dict_find(const struct ridx_dict *d, const char *key)
{
	uint64_t h;
	size_t i;

	if (d->cap == 0)
		return NULL;
	h = ridx_key_hash(key);
	for (i = h & (d->cap - 1); d->t[i].key != NULL; i = (i + 1) & (d->cap - 1))
		if (d->t[i].hash == h && rule_ci_eq(d->t[i].key, key))
			return &d->t[i];
	return NULL;
}

const struct ridx_dent *
ridx_dict_find_n(const struct ridx_dict *d, const char *s, size_t len, uint64_t h)
{
	size_t i, k;

	if (d->cap == 0)
		return NULL;
	for (i = h & (d->cap - 1); d->t[i].key != NULL; i = (i + 1) & (d->cap - 1)) {
		const char *key = d->t[i].key;  /* stored lower-cased */

		if (d->t[i].hash != h)
			continue;
		for (k = 0; k < len && key[k] == rule_lower((unsigned char)s[k]); k++)
			;
		if (k == len && key[len] == '\0')
			return &d->t[i];
	}
	return NULL;
}

static struct ridx_dent *
dict_find_mut(struct ridx_dict *d, const char *key)
{
	return (struct ridx_dent *)ridx_dict_find(d, key);
}

static int
dict_grow(struct ridx_dict *d)
{
	size_t ncap = d->cap ? d->cap * 2 : 16, i, j;
	struct ridx_dent *nt = calloc(ncap, sizeof(*nt));

	if (nt == NULL)
		return -1;
	for (i = 0; i < d->cap; i++) {
		if (d->t[i].key == NULL)
			continue;
		for (j = d->t[i].hash & (ncap - 1); nt[j].key != NULL; j = (j + 1) & (ncap - 1))
			;
		nt[j] = d->t[i];
	}
	free(d->t);
	d->t = nt;
	d->cap = ncap;
	return 0;
}

/* The entry for key, created empty when missing; NULL on OOM (d unchanged but for
 * a possible growth, which changes no content). */
static struct ridx_dent *
dict_get(struct ridx_dict *d, const char *key)
{
	struct ridx_dent *e = dict_find_mut(d, key);
	size_t i, len;
	uint64_t h;

	if (e != NULL)
		return e;
	if ((d->n + 1) * 4 > d->cap * 3 && dict_grow(d) == -1)
		return NULL;
	len = strlen(key);
	h = ridx_key_hash(key);
	for (i = h & (d->cap - 1); d->t[i].key != NULL; i = (i + 1) & (d->cap - 1))
		;
	if ((d->t[i].key = malloc(len + 1)) == NULL)
		return NULL;
	for (size_t k = 0; k <= len; k++)
		d->t[i].key[k] = (char)rule_lower((unsigned char)key[k]);
	d->t[i].hash = h;
	d->t[i].id = (uint32_t)d->n;
	d->n++;
	d->keybytes += len + 1;
	if (len > d->maxkey)
		d->maxkey = len;
	return &d->t[i];
}

static void
dict_free(struct ridx_dict *d)
{
	size_t i;

	for (i = 0; i < d->cap; i++) {
		free(d->t[i].key);
		free(d->t[i].list.v);
	}
	free(d->t);
	memset(d, 0, sizeof(*d));
}

/* ---- posting lists ---- */

static int
list_reserve(struct ridx_list *l, uint32_t extra)
{
	uint32_t ncap;
	uint32_t *nv;

	if (l->n + extra <= l->cap)
		return 0;
	ncap = l->cap ? l->cap : 4;
	while (ncap < l->n + extra) {
		if (ncap > UINT32_MAX / 2)
			return -1;
		ncap = ncap < 1024 ? ncap * 2 : ncap + ncap / 2;
	}
	if ((nv = realloc(l->v, (size_t)ncap * sizeof(*nv))) == NULL)
		return -1;
	l->v = nv;
	l->cap = ncap;
	return 0;
}

/* Index of the first element >= x. */
uint32_t
ridx_lower_bound(const struct ridx_list *l, uint32_t x)
{
	uint32_t lo = 0, hi = l->n, mid;

	if (l->n > 0 && l->v[l->n - 1] < x)
		return l->n;  /* appending: the bulk-load case */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (l->v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Inserts x; capacity must have been reserved. */
static void
list_add(struct ridx_list *l, uint32_t x)
{
	uint32_t i = ridx_lower_bound(l, x);

	if (i < l->n && l->v[i] == x)
		return;
	memmove(l->v + i + 1, l->v + i, (size_t)(l->n - i) * sizeof(*l->v));
	l->v[i] = x;
	l->n++;
}

static void
list_del(struct ridx_list *l, uint32_t x)
{
	uint32_t i = ridx_lower_bound(l, x);

	if (i >= l->n || l->v[i] != x)
		return;
	memmove(l->v + i, l->v + i + 1, (size_t)(l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

/* ---- the keys of a subscriber ---- */

const struct strlist *
ridx_keys_of(const struct subscriber *s, int dk)
{
	switch (dk) {
	case DK_CAT: return &s->interests.categories;
	case DK_BRAND: return &s->interests.brands;
	case DK_KW: return &s->interests.keywords;
	case DK_TAG: return &s->tags;
	default: return NULL;
	}
}

/* Calls fn for every key s has in dictionary dk; stops at the first -1. */
int
ridx_each_key(struct ridx *ix, const struct subscriber *s, int dk,
    int (*fn)(struct ridx *, struct ridx_dict *, const char *, uint32_t), uint32_t x)
{
	const struct strlist *l = ridx_keys_of(s, dk);
	size_t i;

	if (l == NULL)
		return fn(ix, &ix->dict[dk], s->region != NULL ? s->region : "", x);
	for (i = 0; i < l->n; i++)
		if (l->v[i] != NULL && fn(ix, &ix->dict[dk], l->v[i], x) == -1)
			return -1;
	return 0;
}

static int
key_reserve(struct ridx *ix, struct ridx_dict *d, const char *key, uint32_t x)
{
	struct ridx_dent *e = dict_get(d, key);

	(void)ix;
	(void)x;
	return e == NULL ? -1 : list_reserve(&e->list, 1);
}

static int
key_add(struct ridx *ix, struct ridx_dict *d, const char *key, uint32_t x)
{
	struct ridx_dent *e = dict_find_mut(d, key);

	uint32_t i;

	if (e == NULL)  /* never, after key_reserve */
		return 0;
	list_add(&e->list, x);
	if (e->hot != 0) {
		ix->slots[x].hot |= e->hot;
	} else if (d != &ix->dict[DK_REGION] && ix->nhot < RIDX_HOT_BITS &&
	    e->list.n >= RIDX_HOT_MIN && e->list.n >= ix->count / RIDX_HOT_DIV) {
		e->hot = 1ULL << ix->nhot++;  /* once: mark every slot of the list */
		for (i = 0; i < e->list.n; i++)
			ix->slots[e->list.v[i]].hot |= e->hot;
	}
	return 0;
}

static int
key_del(struct ridx *ix, struct ridx_dict *d, const char *key, uint32_t x)
{
	struct ridx_dent *e = dict_find_mut(d, key);

	if (e != NULL) {
		list_del(&e->list, x);
		ix->slots[x].hot &= ~e->hot;
	}
	return 0;
}

/* ---- the id table ---- */

uint32_t
ridx_id_lookup(const struct ridx *ix, const char *id, uint64_t h, size_t *cell)
{
	size_t i;
	uint32_t x;

	if (ix->idcap == 0)
		return UINT32_MAX;
	for (i = h & (ix->idcap - 1); ix->idtab[i] != 0; i = (i + 1) & (ix->idcap - 1)) {
		x = ix->idtab[i] - 1;
		if (ix->slots[x].idhash == h && strcmp(ix->slots[x].sub->id, id) == 0) {
			if (cell != NULL)
				*cell = i;
			return x;
		}
	}
	if (cell != NULL)
		*cell = i;
	return UINT32_MAX;
}

static int
id_grow(struct ridx *ix)
{
	size_t ncap = ix->idcap ? ix->idcap * 2 : 64, i, j;
	uint32_t *nt = calloc(ncap, sizeof(*nt));

	if (nt == NULL)
		return -1;
	for (i = 0; i < ix->idcap; i++) {
		if (ix->idtab[i] == 0)
			continue;
		j = ix->slots[ix->idtab[i] - 1].idhash & (ncap - 1);
		while (nt[j] != 0)
			j = (j + 1) & (ncap - 1);
		nt[j] = ix->idtab[i];
	}
	free(ix->idtab);
	ix->idtab = nt;
	ix->idcap = ncap;
	return 0;
}

/* Removes the cell, shifting later cells of the run back (no tombstones). */
static void
id_delete_cell(struct ridx *ix, size_t i)
{
	size_t mask = ix->idcap - 1, j = i, k;

	ix->idtab[i] = 0;
	for (;;) {
		j = (j + 1) & mask;
		if (ix->idtab[j] == 0)
			return;
		k = ix->slots[ix->idtab[j] - 1].idhash & mask;
		/* move j to i unless its home k lies cyclically in (i, j] */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			ix->idtab[i] = ix->idtab[j];
			ix->idtab[j] = 0;
			i = j;
		}
	}
}

/* ---- the rank order ---- */

int
ridx_slot_cmp(const struct ridx *ix, uint64_t ka, uint32_t a, uint64_t kb, uint32_t b)
{
	const struct ridx_slot *sa, *sb;

	if (ka != kb)
		return ka > kb ? -1 : 1;
	if (a == b)
		return 0;
	sa = &ix->slots[a];
	sb = &ix->slots[b];
	if (sa->idkey != sb->idkey)
		return sa->idkey < sb->idkey ? -1 : 1;
	return strcmp(sa->sub->id, sb->sub->id);
}

/* Room for one more block, and a spare block for a split: after this, neither an
 * insertion nor a removal can fail. */
static int
ord_reserve(struct ridx_ord *o)
{
	if (o->spare == NULL && (o->spare = malloc(sizeof(*o->spare))) == NULL)
		return -1;
	if (o->nb + 1 > o->capb) {
		uint32_t ncap = o->capb ? o->capb * 2 : 16;
		struct ridx_oblk **nb = realloc(o->b, (size_t)ncap * sizeof(*nb));

		if (nb == NULL)
			return -1;
		o->b = nb;
		o->capb = ncap;
	}
	return 0;
}

/* The rank key of entry j of block b, from its slot (the record stays indexed while
 * the entry is in the order). */
uint64_t
ridx_oblk_key(const struct ridx *ix, const struct ridx_oblk *b, uint32_t j)
{
	return rule_eng_key(ix->slots[b->s[j]].engagement);
}

/* The first block whose last entry does not rank before (k, x), or the last block. */
static uint32_t
ord_block(const struct ridx *ix, uint64_t k, uint32_t x)
{
	const struct ridx_ord *o = &ix->ord;
	uint32_t lo = 0, hi = o->nb - 1, mid;

	while (lo < hi) {
		const struct ridx_oblk *b;

		mid = lo + (hi - lo) / 2;
		b = o->b[mid];
		if (ridx_slot_cmp(ix, ridx_oblk_key(ix, b, b->n - 1), b->s[b->n - 1], k, x) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index in block b of the first entry not ranking before (k, x). */
static uint32_t
oblk_pos(const struct ridx *ix, const struct ridx_oblk *b, uint64_t k, uint32_t x)
{
	uint32_t lo = 0, hi = b->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ridx_slot_cmp(ix, ridx_oblk_key(ix, b, mid), b->s[mid], k, x) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Inserts live slot x, whose record is filled; ord_reserve() must have succeeded. */
static void
ord_insert(struct ridx *ix, uint32_t x)
{
	struct ridx_ord *o = &ix->ord;
	uint64_t k = rule_eng_key(ix->slots[x].engagement);
	struct ridx_oblk *b;
	uint32_t bi, pos;

	if (o->nb == 0) {
		o->b[0] = o->spare;
		o->spare = NULL;
		o->b[0]->n = 0;
		o->nb = 1;
	}
	bi = ord_block(ix, k, x);
	b = o->b[bi];
	if (b->n == RIDX_OBLK) {  /* split: the upper half goes to the spare block */
		struct ridx_oblk *nb = o->spare;
		uint32_t half = RIDX_OBLK / 2;

		o->spare = NULL;
		nb->n = RIDX_OBLK - half;
		memcpy(nb->s, b->s + half, nb->n * sizeof(*b->s));
		b->n = half;
		memmove(o->b + bi + 2, o->b + bi + 1, (o->nb - bi - 1) * sizeof(*o->b));
		o->b[bi + 1] = nb;
		o->nb++;
		if (ridx_slot_cmp(ix, ridx_oblk_key(ix, b, b->n - 1), b->s[b->n - 1], k, x) < 0)
			b = nb;
	}
	pos = oblk_pos(ix, b, k, x);
	memmove(b->s + pos + 1, b->s + pos, (b->n - pos) * sizeof(*b->s));
	b->s[pos] = x;
	b->n++;
}

/* Removes live slot x while its record (engagement, id) is still the indexed one. */
static void
ord_remove(struct ridx *ix, uint32_t x)
{
	struct ridx_ord *o = &ix->ord;
	uint64_t k = rule_eng_key(ix->slots[x].engagement);
	struct ridx_oblk *b;
	uint32_t bi, pos;

	if (o->nb == 0)
		return;
	bi = ord_block(ix, k, x);
	b = o->b[bi];
	pos = oblk_pos(ix, b, k, x);
	if (pos == b->n || b->s[pos] != x)
		return;  /* not there: cannot happen while the invariants hold */
	b->n--;
	memmove(b->s + pos, b->s + pos + 1, (b->n - pos) * sizeof(*b->s));
	if (b->n > 0)
		return;
	if (o->spare == NULL)
		o->spare = b;
	else
		free(b);
	memmove(o->b + bi, o->b + bi + 1, (o->nb - bi - 1) * sizeof(*o->b));
	o->nb--;
}

/* ---- public ---- */

struct ridx *
ridx_new(struct err *err)
{
	struct ridx *ix = calloc(1, sizeof(*ix));

	if (ix == NULL)
		err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory for the index");
	return ix;
}

void
ridx_free(struct ridx *ix)
{
	uint32_t i;
	int dk;

	if (ix == NULL)
		return;
	for (dk = 0; dk < DK_COUNT; dk++)
		dict_free(&ix->dict[dk]);
	for (i = 0; i < ix->ord.nb; i++)
		free(ix->ord.b[i]);
	free(ix->ord.b);
	free(ix->ord.spare);
	free(ix->slots);
	free(ix->idtab);
	free(ix);
}

/*
 * Room for ncap slot records, 64-byte aligned. A large array (RIDX_HUGE_MIN bytes or
 * more) is aligned to RIDX_HUGE_ALIGN instead and, where the system has them, marked
 * for transparent huge pages: a selective query reads 15,000-25,000 records spread
 * over the whole array, each on its own 4 KB page, so with small pages nearly every
 * record costs a TLB miss (a page walk) on top of the cache miss. A hint only: no
 * effect on the contents; without it (or if refused) the pages are ordinary ones.
 */
#define RIDX_HUGE_ALIGN ((size_t)2 << 20)
#define RIDX_HUGE_MIN ((size_t)4 << 20)

static struct ridx_slot *
slots_alloc(uint32_t ncap)
{
	size_t bytes = (size_t)ncap * sizeof(struct ridx_slot);
	struct ridx_slot *ns;

	if (bytes < RIDX_HUGE_MIN)
		return aligned_alloc(RIDX_SLOT_ALIGN, bytes);
	bytes = (bytes + RIDX_HUGE_ALIGN - 1) & ~(RIDX_HUGE_ALIGN - 1);
	if ((ns = aligned_alloc(RIDX_HUGE_ALIGN, bytes)) == NULL)
		return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
	(void)madvise(ns, bytes, MADV_HUGEPAGE);
#endif
	return ns;
}

static int
reserve_slot(struct ridx *ix)
{
	uint32_t ncap;
	struct ridx_slot *ns;

	if ((ix->count + 1) * 2 > ix->idcap && id_grow(ix) == -1)
		return -1;
	if (ix->nfree > 0 || ix->nslots < ix->capslots)
		return 0;
	if (ix->capslots > UINT32_MAX / 2 - 1)
		return -1;
	ncap = ix->capslots ? ix->capslots * 2 : 64;
	/* aligned, so that a record is one cache line; realloc would not keep that */
	if ((ns = slots_alloc(ncap)) == NULL)
		return -1;
	if (ix->nslots > 0)
		memcpy(ns, ix->slots, (size_t)ix->nslots * sizeof(*ns));
	free(ix->slots);
	ix->slots = ns;
	ix->capslots = ncap;
	return 0;
}

static uint64_t
id_key(const char *id)
{
	uint64_t k = 0;
	int i;

	for (i = 0; i < 8; i++) {
		k = (k << 8) | (unsigned char)*id;
		if (*id != '\0')
			id++;
	}
	return k;
}

int
ridx_put(struct ridx *ix, const struct subscriber *s, struct err *err)
{
	struct ridx_slot *sl;
	uint64_t h;
	uint32_t x;
	size_t cell;
	int dk, reorder = 1;

	if (s == NULL || s->id == NULL)
		return err_set(err, ERR_INPUT, "bad_value", "id", "subscriber without id");
	h = rule_fnv1a(s->id);
	/* reserve everything first: after this nothing can fail */
	for (dk = 0; dk < DK_COUNT; dk++)
		if (ridx_each_key(ix, s, dk, key_reserve, 0) == -1)
			goto nomem;
	if (ord_reserve(&ix->ord) == -1)
		goto nomem;
	x = ridx_id_lookup(ix, s->id, h, NULL);
	if (x == UINT32_MAX && reserve_slot(ix) == -1)
		goto nomem;
	if (x != UINT32_MAX) {
		for (dk = 0; dk < DK_COUNT; dk++)
			ridx_each_key(ix, ix->slots[x].sub, dk, key_del, x);
		reorder = rule_eng_key(ix->slots[x].engagement) != rule_eng_key(s->engagement);
		if (reorder)
			ord_remove(ix, x);
	} else {
		if (ix->nfree > 0) {
			x = ix->freetop - 1;
			ix->freetop = ix->slots[x].region;
			ix->nfree--;
		} else {
			x = ix->nslots++;
		}
		ix->slots[x].hot = 0;
		ix->slots[x].sub = s;
		ix->slots[x].idhash = h;
		ridx_id_lookup(ix, s->id, h, &cell);
		ix->idtab[cell] = x + 1;
		ix->count++;
	}
	for (dk = 0; dk < DK_COUNT; dk++)
		ridx_each_key(ix, s, dk, key_add, x);
	sl = &ix->slots[x];
	sl->sub = s;
	sl->engagement = s->engagement;
	sl->max_price = s->interests.max_price;
	sl->min_disc = s->interests.min_discount_pct;
	sl->idhash = h;
	sl->idkey = id_key(s->id);
	sl->region = ridx_dict_find(&ix->dict[DK_REGION],
	    s->region != NULL ? s->region : "")->id;
	sl->reach = (uint8_t)rule_reachable(s);
	sl->chans = (uint8_t)s->channels;
	sl->flags = (uint8_t)((s->has_max_price ? SLOT_HAS_MAX : 0) |
	    (s->has_min_discount_pct ? SLOT_HAS_MIN : 0));
	if (reorder)
		ord_insert(ix, x);
	return 0;
nomem:
	return err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory indexing "
	    "subscriber");
}

/* Packs the rank order into full blocks, in place: an entry only moves to a place at or
 * before its own, so reading and writing in one pass is safe. */
static void
ord_pack(struct ridx_ord *o)
{
	uint32_t r, w = 0, wpos = 0, j;

	for (r = 0; r < o->nb; r++) {
		struct ridx_oblk *b = o->b[r];

		for (j = 0; j < b->n; j++) {
			struct ridx_oblk *wb = o->b[w];

			wb->s[wpos] = b->s[j];
			if (++wpos == RIDX_OBLK) {
				wb->n = RIDX_OBLK;
				w++;
				wpos = 0;
			}
		}
	}
	if (wpos > 0)
		o->b[w++]->n = wpos;
	for (r = w; r < o->nb; r++) {
		if (o->spare == NULL)
			o->spare = o->b[r];
		else
			free(o->b[r]);
	}
	o->nb = w;
}

void
ridx_compact(struct ridx *ix)
{
	size_t i;
	int dk;

	for (dk = 0; dk < DK_COUNT; dk++) {
		struct ridx_dict *d = &ix->dict[dk];

		for (i = 0; i < d->cap; i++) {
			struct ridx_list *l = &d->t[i].list;
			uint32_t *nv;

			if (l->cap == l->n)
				continue;
			if (l->n == 0) {
				free(l->v);
				l->v = NULL;
				l->cap = 0;
			} else if ((nv = realloc(l->v, (size_t)l->n * sizeof(*nv))) != NULL) {
				l->v = nv;
				l->cap = l->n;
			}
		}
	}
	ord_pack(&ix->ord);
}

int
ridx_remove(struct ridx *ix, const char *id)
{
	size_t cell;
	uint32_t x;
	int dk;

	if (id == NULL || (x = ridx_id_lookup(ix, id, rule_fnv1a(id), &cell)) == UINT32_MAX)
		return 0;
	for (dk = 0; dk < DK_COUNT; dk++)
		ridx_each_key(ix, ix->slots[x].sub, dk, key_del, x);
	ord_remove(ix, x);
	id_delete_cell(ix, cell);
	memset(&ix->slots[x], 0, sizeof(ix->slots[x]));
	ix->slots[x].region = ix->freetop;
	ix->freetop = x + 1;
	ix->nfree++;
	ix->count--;
	return 1;
}

const struct subscriber *
ridx_get(const struct ridx *ix, const char *id)
{
	uint32_t x = id != NULL ? ridx_id_lookup(ix, id, rule_fnv1a(id), NULL) : UINT32_MAX;

	return x == UINT32_MAX ? NULL : ix->slots[x].sub;
}

size_t
ridx_count(const struct ridx *ix)
{
	return ix->count;
}

size_t
ridx_memory(const struct ridx *ix)
{
	size_t bytes = sizeof(*ix), i;
	int dk;

	bytes += (size_t)ix->capslots * sizeof(struct ridx_slot);
	bytes += ix->idcap * sizeof(uint32_t);
	bytes += (size_t)ix->ord.capb * sizeof(*ix->ord.b) +
	    ((size_t)ix->ord.nb + (ix->ord.spare != NULL)) * sizeof(struct ridx_oblk);
	for (dk = 0; dk < DK_COUNT; dk++) {
		const struct ridx_dict *d = &ix->dict[dk];

		bytes += d->cap * sizeof(*d->t) + d->keybytes;
		for (i = 0; i < d->cap; i++)
			bytes += (size_t)d->t[i].list.cap * sizeof(uint32_t);
	}
	return bytes;
}
