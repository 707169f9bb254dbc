/*
 * ridx_plan.c: turning a rule into a plan over the interest index (stage: match): deal-only
 * conditions evaluated once, subscriber conditions turned into sorted posting lists or
 * filters on the compact slot records, combined by intersection and union, marked exact
 * only when candidates and filters are precisely the rule's matches. Temporary lists
 * come from the query's pool. Reads the index and the rule set only; no I/O, no globals.
 */
#include <stdlib.h>
#include <string.h>

#include "ridx_int.h"

/* ---- the query's pool of temporary lists ---- */

uint32_t *
ridx_pool_get(struct query *q, size_t n)
{
	struct ridx_scratch *sc = q->sc;
	struct qvec *qv;

	if (sc->npool == sc->poolcap) {
		size_t ncap = sc->poolcap ? sc->poolcap * 2 : 64;
		struct qvec *np = realloc(sc->pool, ncap * sizeof(*np));

		if (np == NULL) {
			q->nomem = 1;
			return NULL;
		}
		memset(np + sc->poolcap, 0, (ncap - sc->poolcap) * sizeof(*np));
		sc->pool = np;
		sc->poolcap = ncap;
	}
	qv = &sc->pool[sc->npool];
	if (qv->cap < n) {
		size_t ncap = n < 256 ? 256 : n + n / 4;
		uint32_t *nv = realloc(qv->v, ncap * sizeof(*nv));

		if (nv == NULL) {
			q->nomem = 1;
			return NULL;
		}
		qv->v = nv;
		qv->cap = ncap;
	}
	sc->npool++;
	return qv->v;
}

/* ---- set algebra on ascending slot lists ---- */

static void
p_empty(struct plan *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = P_EMPTY;
	p->exact = 1;
}

void
ridx_plan_all(struct plan *p, int exact)
{
	memset(p, 0, sizeof(*p));
	p->kind = P_ALL;
	p->exact = exact;
}

static void
p_list(struct plan *p, const uint32_t *v, size_t n)
{
	if (n == 0) {
		p_empty(p);
		return;
	}
	memset(p, 0, sizeof(*p));
	p->kind = P_LIST;
	p->exact = 1;
	p->v = v;
	p->n = n;
}

static size_t
merge_union(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, uint32_t *o)
{
	size_t i = 0, j = 0, k = 0;

	while (i < na && j < nb) {  /* branch-free: the order is unpredictable */
		uint32_t x = a[i], y = b[j];

		o[k++] = x < y ? x : y;
		i += x <= y;
		j += y <= x;
	}
	while (i < na)
		o[k++] = a[i++];
	while (j < nb)
		o[k++] = b[j++];
	return k;
}

/* Intersection; gallops through the longer list when the lengths differ a lot. */
static size_t
merge_inter(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, uint32_t *o)
{
	size_t i = 0, j = 0, k = 0, step, lo, hi, mid;

	if (na > nb) {
		const uint32_t *t = a;

		a = b, b = t;
		lo = na, na = nb, nb = lo;
	}
	if (na * 4 < nb) {
		for (i = 0; i < na && j < nb; i++) {
			/* find the first b[j] >= a[i]: gallop, then binary search */
			for (step = 1, lo = j, hi = j; hi < nb && b[hi] < a[i]; step *= 2) {
				lo = hi + 1;
				hi = j + step;
			}
			if (hi > nb)
				hi = nb;
			while (lo < hi) {
				mid = lo + (hi - lo) / 2;
				if (b[mid] < a[i])
					lo = mid + 1;
				else
					hi = mid;
			}
			j = lo;
			if (j < nb && b[j] == a[i])
				o[k++] = a[i];
		}
		return k;
	}
	while (i < na && j < nb) {  /* branch-free; k <= min(i, j), so o[k] is in range */
		uint32_t x = a[i], y = b[j];

		o[k] = x;
		k += x == y;
		i += x <= y;
		j += y <= x;
	}
	return k;
}

/* Union of the k lists vs[i] (ns[i] slots each, all below nslots) into o, through a
 * bitset of the slots (bits, nslots / 32 + 1 words): for many long lists, cheaper
 * than merging them in rounds. Returns the length of the union. */
static size_t
bits_union(const uint32_t *const *vs, const size_t *ns, size_t k, uint32_t nslots,
    uint32_t *bits, uint32_t *o)
{
	size_t words = (size_t)nslots / 32 + 1, i, j, n = 0;

	memset(bits, 0, words * sizeof(*bits));
	for (i = 0; i < k; i++)
		for (j = 0; j < ns[i]; j++)
			bits[vs[i][j] >> 5] |= 1u << (vs[i][j] & 31);
	for (i = 0; i < words; i++) {
		uint32_t w = bits[i];

		while (w != 0) {
			o[n++] = (uint32_t)(i * 32 + (size_t)__builtin_ctz(w));
			w &= w - 1;
		}
	}
	return n;
}

/* Union of k lists: merged in rounds of pairs, or through a bitset when that costs
 * less (the rounds read and write every slot about log2(k) times, the bitset costs a
 * pass over nslots / 32 words). */
int
ridx_lists_union(struct query *q, const uint32_t **vs, size_t *ns, size_t k, struct plan *p)
{
	size_t i, m, total = 0, rounds = 0;
	uint32_t *o, *bits;

	for (i = 0; i < k; i++)
		total += ns[i];
	for (m = 1; m < k; m *= 2)
		rounds++;
	if (k >= 3 && total * rounds >= (size_t)q->ix->nslots / 16) {
		if ((bits = ridx_pool_get(q, (size_t)q->ix->nslots / 32 + 1)) == NULL ||
		    (o = ridx_pool_get(q, total)) == NULL)
			return -1;
		ns[0] = bits_union(vs, ns, k, q->ix->nslots, bits, o);
		vs[0] = o;
		k = 1;
	}
	while (k > 1) {
		for (i = 0, m = 0; i + 1 < k; i += 2, m++) {
			if ((o = ridx_pool_get(q, ns[i] + ns[i + 1])) == NULL)
				return -1;
			ns[m] = merge_union(vs[i], ns[i], vs[i + 1], ns[i + 1], o);
			vs[m] = o;
		}
		if (i < k) {
			vs[m] = vs[i];
			ns[m] = ns[i];
			m++;
		}
		k = m;
	}
	if (k == 0)
		p_empty(p);
	else
		p_list(p, vs[0], ns[0]);
	return 0;
}

/* A plan whose list is exactly the slots of some regions (rids) as the same set by a
 * filter on the region of the record; its other filters stay. */
static void
region_as_filter(struct plan *p)
{
	struct filt *f = &p->f[p->nf++];

	memset(f, 0, sizeof(*f));
	f->kind = FT_REGION_IN;
	f->ids = p->rids;
	f->nids = p->nrids;
	p->kind = P_ALL;
	p->v = NULL;
	p->n = 0;
	p->hot = 0;
	p->rids = NULL;
	p->nrids = 0;
}

int
ridx_plan_and(struct query *q, struct plan *a, const struct plan *b)
{
	size_t i;
	uint32_t *o;
	struct plan bf;

	if (a->kind == P_EMPTY)
		return 0;
	if (b->kind == P_EMPTY) {
		p_empty(a);
		return 0;
	}
	/* a region's list that is not much shorter than the other list: test the region
	 * on the record (which the walk reads anyway) instead of intersecting */
	if (a->kind == P_LIST && a->rids != NULL && b->kind == P_LIST && a->n * 4 >= b->n &&
	    a->nf < FILT_MAX) {
		region_as_filter(a);
		q->sc->region_ands++;
	} else if (b->kind == P_LIST && b->rids != NULL && a->kind == P_LIST &&
	    b->n * 4 >= a->n && b->nf < FILT_MAX) {
		bf = *b;
		region_as_filter(&bf);
		b = &bf;
		q->sc->region_ands++;
	}
	if (a->kind == P_ALL && b->kind == P_LIST) {
		a->kind = P_LIST;
		a->v = b->v;
		a->n = b->n;
		a->hot = b->hot;
		a->rids = b->rids;
		a->nrids = b->nrids;
	} else if (a->kind == P_LIST && b->kind == P_LIST &&
	    ((a->hot != 0 && a->n * 4 >= b->n) || (b->hot != 0 && b->n * 4 >= a->n))) {
		/* a big hot list: keep the other as candidates, test the hot bit */
		int ca = a->hot != 0 && a->n * 4 >= b->n, cb = b->hot != 0 && b->n * 4 >= a->n;

		q->sc->hot_ands++;
		if (ca && (!cb || a->n >= b->n)) {
			a->need |= a->hot;
			a->v = b->v;
			a->n = b->n;
			a->hot = b->hot;
			a->rids = b->rids;
			a->nrids = b->nrids;
		} else {
			a->need |= b->hot;
		}
	} else if (a->kind == P_LIST && b->kind == P_LIST) {
		a->hot = 0;
		a->rids = NULL;
		if ((o = ridx_pool_get(q, a->n < b->n ? a->n : b->n)) == NULL)
			return -1;
		a->n = merge_inter(a->v, a->n, b->v, b->n, o);
		a->v = o;
		if (a->n == 0) {  /* a superset is empty: so is the set */
			p_empty(a);
			return 0;
		}
	}
	a->exact = a->exact && b->exact;
	a->need |= b->need;
	for (i = 0; i < b->nf; i++) {
		if (a->nf == FILT_MAX) {
			a->exact = 0;  /* a dropped filter only widens the candidates */
			break;
		}
		a->f[a->nf++] = b->f[i];
	}
	return 0;
}

static int
plan_or(struct query *q, struct plan *a, const struct plan *b)
{
	const uint32_t *vs[2];
	size_t ns[2];
	int exact;

	if (b->kind == P_EMPTY)
		return 0;
	if (a->kind == P_EMPTY) {
		*a = *b;
		return 0;
	}
	exact = a->exact && b->exact && a->nf == 0 && b->nf == 0 && a->need == 0 &&
	    b->need == 0;
	if ((a->kind == P_ALL && a->exact && a->nf == 0) ||
	    (b->kind == P_ALL && b->exact && b->nf == 0)) {
		ridx_plan_all(a, 1);  /* everyone, exactly */
		return 0;
	}
	if (a->kind == P_ALL || b->kind == P_ALL) {
		ridx_plan_all(a, 0);
		return 0;
	}
	vs[0] = a->v, ns[0] = a->n, vs[1] = b->v, ns[1] = b->n;
	if (ridx_lists_union(q, vs, ns, 2, a) == -1)
		return -1;
	a->exact = exact;  /* filters dropped: exact only when there were none */
	return 0;
}

/* ---- plans from conditions ---- */

static int
field_dict(int field)
{
	switch (field) {
	case F_S_TAGS: return DK_TAG;
	case F_S_CATEGORIES: return DK_CAT;
	case F_S_BRANDS: return DK_BRAND;
	case F_S_KEYWORDS: return DK_KW;
	case F_S_REGION: return DK_REGION;
	default: return -1;
	}
}

static void
p_key(const struct query *q, int dk, const char *key, struct plan *p)
{
	const struct ridx_dent *e = ridx_dict_find(&q->ix->dict[dk], key);

	if (e == NULL) {
		p_empty(p);
	} else {
		p_list(p, e->list.v, e->list.n);
		if (p->kind == P_LIST)
			p->hot = e->hot;
	}
}

static void
p_filter(struct plan *p, int kind, int op, int sub_left, uint32_t id, double x)
{
	ridx_plan_all(p, 1);
	p->nf = 1;
	p->f[0].kind = (uint8_t)kind;
	p->f[0].op = (uint8_t)op;
	p->f[0].sub_left = (uint8_t)sub_left;
	p->f[0].id = id;
	p->f[0].x = x;
}

/* subscriber.region equal to one of keys: the union of their posting lists when it is
 * small, else a filter on the region id of the slot records (both exact). */
static int
p_region_in(struct query *q, const char *const *keys, size_t nkeys, struct plan *p)
{
	const struct ridx_dict *d = &q->ix->dict[DK_REGION];
	const uint32_t *vs[RULE_LIST_MAX];
	size_t ns[RULE_LIST_MAX], i, k, total = 0;
	uint32_t *ids;
	const struct ridx_dent *e;

	for (i = 0, k = 0; i < nkeys; i++)
		if ((e = ridx_dict_find(d, keys[i])) != NULL && e->list.n > 0) {
			vs[k] = e->list.v;
			ns[k++] = e->list.n;
			total += e->list.n;
		}
	if (k > 0 && total <= q->ix->count / 8) {
		if ((ids = ridx_pool_get(q, nkeys)) == NULL ||
		    ridx_lists_union(q, vs, ns, k, p) == -1)
			return -1;
		/* the same set as a filter, for ridx_plan_and() */
		for (i = 0, k = 0; i < nkeys; i++)
			if ((e = ridx_dict_find(d, keys[i])) != NULL)
				ids[k++] = e->id;
		p->rids = ids;
		p->nrids = k;
		return 0;
	}
	if (k == 0)
		return ridx_lists_union(q, vs, ns, k, p);
	if ((ids = ridx_pool_get(q, nkeys)) == NULL)
		return -1;
	for (i = 0, k = 0; i < nkeys; i++)
		if ((e = ridx_dict_find(d, keys[i])) != NULL)
			ids[k++] = e->id;
	p_filter(p, FT_REGION_IN, 0, 0, 0, 0);
	p->f[0].ids = ids;
	p->f[0].nids = k;
	return 0;
}

/* a CMP of a subscriber field with a deal-only side */
static int
plan_cmp(struct query *q, const struct rule_node *n, struct plan *p)
{
	const struct rule_node *sf = n->a, *other = n->b;
	struct rule_val v;
	const struct ridx_dent *e;
	int sub_left = 1;

	if (!(sf->kind == NK_FIELD && (sf->uses & RN_SUB) && !(other->uses & RN_SUB))) {
		sf = n->b, other = n->a, sub_left = 0;
		if (!(sf->kind == NK_FIELD && (sf->uses & RN_SUB) && !(other->uses & RN_SUB))) {
			ridx_plan_all(p, 0);
			return 0;
		}
	}
	v = rule_eval_val(other, &q->dc, NULL);
	if (sf->field == F_S_REGION && (n->op == RC_EQ || n->op == RC_NE)) {
		if (n->op == RC_EQ)
			return p_region_in(q, &v.str, 1, p);
		e = ridx_dict_find(&q->ix->dict[DK_REGION], v.str);
		p_filter(p, FT_REGION_NE, 0, 0, e != NULL ? e->id : UINT32_MAX, 0);
		return 0;
	}
	if (sf->field == F_S_ENGAGEMENT || sf->field == F_S_MAX_PRICE ||
	    sf->field == F_S_MIN_DISCOUNT) {
		if (!v.present)
			p_empty(p);  /* a comparison with an absent number is false */
		else
			p_filter(p, FT_NUM, n->op, sub_left, sf->field == F_S_ENGAGEMENT ?
			    NUM_ENG : sf->field == F_S_MAX_PRICE ? NUM_MAX_PRICE : NUM_MIN_DISC,
			    v.num);
		return 0;
	}
	ridx_plan_all(p, 0);
	return 0;
}

/* 1 when deal-only conditions alone make n false for every subscriber. */
static int
surely_false(const struct query *q, const struct rule_node *n)
{
	if (!(n->uses & RN_SUB))
		return !q->dc.dv[n->id];
	if (n->kind == NK_AND)
		return surely_false(q, n->a) || surely_false(q, n->b);
	if (n->kind == NK_OR)
		return surely_false(q, n->a) && surely_false(q, n->b);
	return 0;
}

int
ridx_plan_node(struct query *q, const struct rule_node *n, struct plan *p)
{
	const char **keys;
	size_t i;
	struct plan b;
	struct rule_val v;
	int dk, c;

	if (!(n->uses & RN_SUB)) {
		if (q->dc.dv[n->id])
			ridx_plan_all(p, 1);
		else
			p_empty(p);
		return 0;
	}
	switch (n->kind) {
	case NK_AND:
	case NK_OR:
		if (n->kind == NK_AND && (surely_false(q, n->a) || surely_false(q, n->b))) {
			p_empty(p);  /* e.g. a campaign guard: no posting list is touched */
			return 0;
		}
		if (ridx_plan_node(q, n->a, p) == -1)
			return -1;
		if (n->kind == NK_AND && p->kind == P_EMPTY)
			return 0;
		if (ridx_plan_node(q, n->b, &b) == -1)
			return -1;
		return n->kind == NK_AND ? ridx_plan_and(q, p, &b) : plan_or(q, p, &b);
	case NK_NOT:
		if (ridx_plan_node(q, n->a, &b) == -1)
			return -1;
		if (b.kind == P_EMPTY) {
			ridx_plan_all(p, 1);
		} else if (b.kind == P_ALL && b.exact && b.nf == 0) {
			p_empty(p);
		} else if (b.kind == P_ALL && b.exact && b.nf == 1) {
			*p = b;
			p->f[0].neg ^= 1;
		} else {
			ridx_plan_all(p, 0);
		}
		return 0;
	case NK_INFIELD:
		if (n->a->uses & RN_SUB) {
			ridx_plan_all(p, 0);
			return 0;
		}
		v = rule_eval_val(n->a, &q->dc, NULL);
		if (n->b->field == F_S_CHANNELS) {
			for (c = 0; c < CH_COUNT; c++)
				if (rule_ci_eq(rule_channel_name(c), v.str))
					break;
			if (c == CH_COUNT)
				p_empty(p);
			else
				p_filter(p, FT_CHAN, 0, 0, CH_BIT(c), 0);
			return 0;
		}
		if ((dk = field_dict(n->b->field)) < 0 || dk == DK_REGION) {
			ridx_plan_all(p, 0);
			return 0;
		}
		p_key(q, dk, v.str, p);
		return 0;
	case NK_INLIST:
		if (n->a->kind != NK_FIELD || n->a->field != F_S_REGION) {
			ridx_plan_all(p, 0);
			return 0;
		}
		/* the keys live in the pool: this frame stays small under deep recursion */
		if ((keys = (const char **)(void *)ridx_pool_get(q, 2 * n->nitems + 2)) == NULL)
			return -1;
		for (i = 0; i < n->nitems; i++)
			keys[i] = n->items[i]->str;
		return p_region_in(q, keys, n->nitems, p);
	case NK_CMP:
		return plan_cmp(q, n, p);
	default:
		ridx_plan_all(p, 0);
		return 0;
	}
}

/* Appends to vs/ns (k used) the posting lists of the keywords found in title: each
 * substring of the title no longer than the longest keyword is looked up by its hash
 * (one probe per substring, the title read once), unless the dictionary is so small
 * that testing each keyword is cheaper. A keyword is listed once. Returns the new k. */
static size_t
title_keywords(const struct ridx_dict *kw, const char *title, const uint32_t **vs,
    size_t *ns, size_t k)
{
	size_t i, j, len = strlen(title), k0 = k, m;
	const struct ridx_dent *e;
	uint64_t h;

	if (kw->n == 0)
		return k;
	if (kw->maxkey * 2 > kw->n) {
		for (i = 0; i < kw->cap; i++)
			if (kw->t[i].key != NULL && kw->t[i].list.n > 0 &&
			    rule_ci_find(title, kw->t[i].key))
				vs[k] = kw->t[i].list.v, ns[k++] = kw->t[i].list.n;
		return k;
	}
	/* the empty keyword is in every title */
	if ((e = ridx_dict_find_n(kw, title, 0, RIDX_FNV_BASIS)) != NULL && e->list.n > 0)
		vs[k] = e->list.v, ns[k++] = e->list.n;
	for (i = 0; i < len; i++) {
		h = RIDX_FNV_BASIS;
		for (j = i; j < len && j - i < kw->maxkey; j++) {
			h = RIDX_FNV_STEP(h, (unsigned char)title[j]);
			if ((e = ridx_dict_find_n(kw, title + i, j - i + 1, h)) == NULL ||
			    e->list.n == 0)
				continue;
			for (m = k0; m < k && vs[m] != e->list.v; m++)
				;
			if (m == k)
				vs[k] = e->list.v, ns[k++] = e->list.n;
		}
	}
	return k;
}

/* audience interested: category ∪ brand ∪ keywords in the title, then the bounds */
int
ridx_plan_interested(struct query *q, struct plan *p)
{
	const struct deal *d = q->dc.d;
	const struct ridx_dict *kw = &q->ix->dict[DK_KW];
	const uint32_t **vs;
	size_t *ns, k = 0;
	const struct ridx_dent *e;
	const char *title = d->title != NULL ? d->title : "";

	/* at most two plus one per keyword with postings */
	vs = (const uint32_t **)(void *)ridx_pool_get(q, (kw->n + 2) * 2 + 2);
	ns = (size_t *)(void *)ridx_pool_get(q, (kw->n + 2) * 2 + 2);
	if (vs == NULL || ns == NULL)
		return -1;
	if ((e = ridx_dict_find(&q->ix->dict[DK_CAT], d->category ? d->category : "")) &&
	    e->list.n > 0)
		vs[k] = e->list.v, ns[k++] = e->list.n;
	if ((e = ridx_dict_find(&q->ix->dict[DK_BRAND], d->brand ? d->brand : "")) &&
	    e->list.n > 0)
		vs[k] = e->list.v, ns[k++] = e->list.n;
	k = title_keywords(kw, title, vs, ns, k);
	if (ridx_lists_union(q, vs, ns, k, p) == -1)
		return -1;
	if (p->kind == P_EMPTY)
		return 0;
	if (d->has_price) {
		p->f[p->nf].kind = FT_PRICE;
		p->f[p->nf++].x = d->price;
	}
	p->f[p->nf].kind = FT_DISC;
	p->f[p->nf++].x = d->discount_pct;
	return 0;
}

/* The first active rule that matches slot x, or -1; *ch its channels. */
