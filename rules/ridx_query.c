/*
 * ridx_query.c: "who gets this deal" from the interest index (stage: match). For each
 * rule, its condition and audience are turned into a plan: a sorted candidate list
 * built from posting lists (or every slot) plus filters on the compact per-subscriber
 * record, exact when the plan is exactly the rule's match set, else a superset whose
 * members are evaluated one by one with the reference evaluator. Rules run in priority
 * order over a bitmap of already-matched subscribers, so each subscriber gets the first
 * rule that matches, as rule_match() decides. Then rank and cut as rule_scan() does.
 * Reads the index and the rule set only; all scratch is in the caller's result struct.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ridx_int.h"

#define FILT_MAX 8
#define POOL_MAX 4096

enum { P_EMPTY, P_ALL, P_LIST };
enum { FT_ENG, FT_REGION_NE, FT_PRICE, FT_DISC, FT_CHAN };

struct filt {
	uint8_t kind;
	uint8_t op;
	uint8_t sub_left;
	uint8_t neg;
	uint32_t id;
	double x;
};

struct plan {
	int kind;
	int exact;           /* candidates ∩ filters == the rule's match set */
	const uint32_t *v;   /* P_LIST: ascending slots */
	size_t n;
	size_t nf;
	struct filt f[FILT_MAX];
};


struct qvec {
	uint32_t *v;
	size_t cap;
};

struct ridx_scratch {
	int8_t *dv;
	size_t dvcap;
	uint64_t *bits;
	size_t nwords;
	struct qvec pool[POOL_MAX];
	size_t npool;
	struct ridx_item *items;
	struct ridx_item *tmp;
	size_t icap;
	size_t ni;
};

struct query {
	const struct ridx *ix;
	const struct rule_set *rs;
	struct rule_dctx dc;
	struct ridx_scratch *sc;
	int nomem;
};

/* ---- scratch ---- */

static uint32_t *
pool_get(struct query *q, size_t n)
{
	struct ridx_scratch *sc = q->sc;
	struct qvec *qv;

	if (sc->npool == POOL_MAX) {
		q->nomem = 1;
		return NULL;
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

static int
items_reserve(struct ridx_scratch *sc, size_t n)
{
	struct ridx_item *ni, *nt;
	size_t ncap;

	if (n <= sc->icap)
		return 0;
	ncap = sc->icap ? sc->icap : 1024;
	while (ncap < n)
		ncap *= 2;
	if ((ni = realloc(sc->items, ncap * sizeof(*ni))) == NULL)
		return -1;
	sc->items = ni;
	if ((nt = realloc(sc->tmp, ncap * sizeof(*nt))) == NULL)
		return -1;
	sc->tmp = nt;
	sc->icap = ncap;
	return 0;
}

void
rule_recipients_free(struct rule_recipients *out)
{
	struct ridx_scratch *sc;
	size_t i;

	if (out == NULL)
		return;
	if ((sc = out->scratch) != NULL) {
		free(sc->dv);
		free(sc->bits);
		for (i = 0; i < POOL_MAX && sc->pool[i].v != NULL; i++)
			free(sc->pool[i].v);
		free(sc->items);
		free(sc->tmp);
		free(sc);
	}
	free(out->v);
	rule_recipients_init(out);
}

/* ---- set algebra on ascending slot lists ---- */

static void
p_empty(struct plan *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = P_EMPTY;
	p->exact = 1;
}

static void
p_all(struct plan *p, int exact)
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

	while (i < na && j < nb) {
		if (a[i] < b[j])
			o[k++] = a[i++];
		else if (b[j] < a[i])
			o[k++] = b[j++];
		else
			o[k++] = a[i++], j++;
	}
	while (i < na)
		o[k++] = a[i++];
	while (j < nb)
		o[k++] = b[j++];
	return k;
}

static size_t
merge_inter(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, uint32_t *o)
{
	size_t i = 0, j = 0, k = 0, lo, hi, mid;

	if (na > nb) {
		const uint32_t *t = a;

		a = b, b = t;
		lo = na, na = nb, nb = lo;
	}
	if (na * 32 < nb) {  /* small against big: binary search each */
		for (i = 0, lo = 0; i < na; i++) {
			hi = nb;
			while (lo < hi) {
				mid = lo + (hi - lo) / 2;
				if (b[mid] < a[i])
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < nb && b[lo] == a[i])
				o[k++] = a[i];
		}
		return k;
	}
	while (i < na && j < nb) {
		if (a[i] < b[j])
			i++;
		else if (b[j] < a[i])
			j++;
		else
			o[k++] = a[i++], j++;
	}
	return k;
}

/* Union of k lists, merged in rounds of pairs. */
static int
lists_union(struct query *q, const uint32_t **vs, size_t *ns, size_t k, struct plan *p)
{
	size_t i, m;
	uint32_t *o;

	while (k > 1) {
		for (i = 0, m = 0; i + 1 < k; i += 2, m++) {
			if ((o = pool_get(q, ns[i] + ns[i + 1])) == NULL)
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

static int
plan_and(struct query *q, struct plan *a, const struct plan *b)
{
	size_t i;
	uint32_t *o;

	if (a->kind == P_EMPTY)
		return 0;
	if (b->kind == P_EMPTY) {
		p_empty(a);
		return 0;
	}
	if (a->kind == P_ALL && b->kind == P_LIST) {
		a->kind = P_LIST;
		a->v = b->v;
		a->n = b->n;
	} else if (a->kind == P_LIST && b->kind == P_LIST) {
		if ((o = pool_get(q, a->n < b->n ? a->n : b->n)) == NULL)
			return -1;
		a->n = merge_inter(a->v, a->n, b->v, b->n, o);
		a->v = o;
		if (a->n == 0) {  /* a superset is empty: so is the set */
			p_empty(a);
			return 0;
		}
	}
	a->exact = a->exact && b->exact;
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
	exact = a->exact && b->exact && a->nf == 0 && b->nf == 0;
	if ((a->kind == P_ALL && a->exact && a->nf == 0) ||
	    (b->kind == P_ALL && b->exact && b->nf == 0)) {
		p_all(a, 1);  /* everyone, exactly */
		return 0;
	}
	if (a->kind == P_ALL || b->kind == P_ALL) {
		p_all(a, 0);
		return 0;
	}
	vs[0] = a->v, ns[0] = a->n, vs[1] = b->v, ns[1] = b->n;
	if (lists_union(q, vs, ns, 2, a) == -1)
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

	if (e == NULL)
		p_empty(p);
	else
		p_list(p, e->list.v, e->list.n);
}

static void
p_filter(struct plan *p, int kind, int op, int sub_left, uint32_t id, double x)
{
	p_all(p, 1);
	p->nf = 1;
	p->f[0].kind = (uint8_t)kind;
	p->f[0].op = (uint8_t)op;
	p->f[0].sub_left = (uint8_t)sub_left;
	p->f[0].id = id;
	p->f[0].x = x;
}

/* a CMP of a subscriber field with a deal-only side */
static void
plan_cmp(struct query *q, const struct rule_node *n, struct plan *p)
{
	const struct rule_node *sf = n->a, *other = n->b;
	struct rule_val v;
	const struct ridx_dent *e;
	int sub_left = 1;

	if (!(sf->kind == NK_FIELD && (sf->uses & RN_SUB) && !(other->uses & RN_SUB))) {
		sf = n->b, other = n->a, sub_left = 0;
		if (!(sf->kind == NK_FIELD && (sf->uses & RN_SUB) && !(other->uses & RN_SUB))) {
			p_all(p, 0);
			return;
		}
	}
	v = rule_eval_val(other, &q->dc, NULL);
	if (sf->field == F_S_REGION && (n->op == RC_EQ || n->op == RC_NE)) {
		if (n->op == RC_EQ) {
			p_key(q, DK_REGION, v.str, p);
			return;
		}
		e = ridx_dict_find(&q->ix->dict[DK_REGION], v.str);
		p_filter(p, FT_REGION_NE, 0, 0, e != NULL ? e->id : UINT32_MAX, 0);
		return;
	}
	if (sf->field == F_S_ENGAGEMENT) {
		if (!v.present)
			p_empty(p);  /* a comparison with an absent number is false */
		else
			p_filter(p, FT_ENG, n->op, sub_left, 0, v.num);
		return;
	}
	p_all(p, 0);
}

static int
plan_node(struct query *q, const struct rule_node *n, struct plan *p)
{
	const uint32_t *vs[RULE_LIST_MAX];
	size_t ns[RULE_LIST_MAX], i, k;
	struct plan b;
	struct rule_val v;
	const struct ridx_dent *e;
	int dk, c;

	if (!(n->uses & RN_SUB)) {
		if (q->dc.dv[n->id])
			p_all(p, 1);
		else
			p_empty(p);
		return 0;
	}
	switch (n->kind) {
	case NK_AND:
	case NK_OR:
		if (plan_node(q, n->a, p) == -1 || plan_node(q, n->b, &b) == -1)
			return -1;
		return n->kind == NK_AND ? plan_and(q, p, &b) : plan_or(q, p, &b);
	case NK_NOT:
		if (plan_node(q, n->a, &b) == -1)
			return -1;
		if (b.kind == P_EMPTY) {
			p_all(p, 1);
		} else if (b.kind == P_ALL && b.exact && b.nf == 0) {
			p_empty(p);
		} else if (b.kind == P_ALL && b.exact && b.nf == 1) {
			*p = b;
			p->f[0].neg ^= 1;
		} else {
			p_all(p, 0);
		}
		return 0;
	case NK_INFIELD:
		if (n->a->uses & RN_SUB) {
			p_all(p, 0);
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
			p_all(p, 0);
			return 0;
		}
		p_key(q, dk, v.str, p);
		return 0;
	case NK_INLIST:
		if (n->a->kind != NK_FIELD || n->a->field != F_S_REGION) {
			p_all(p, 0);
			return 0;
		}
		for (i = 0, k = 0; i < n->nitems; i++) {
			e = ridx_dict_find(&q->ix->dict[DK_REGION], n->items[i]->str);
			if (e != NULL && e->list.n > 0) {
				vs[k] = e->list.v;
				ns[k++] = e->list.n;
			}
		}
		return lists_union(q, vs, ns, k, p);
	case NK_CMP:
		plan_cmp(q, n, p);
		return 0;
	default:
		p_all(p, 0);
		return 0;
	}
}

/* audience interested: category ∪ brand ∪ keywords in the title, then the bounds */
static int
plan_interested(struct query *q, struct plan *p)
{
	const struct deal *d = q->dc.d;
	const struct ridx_dict *kw = &q->ix->dict[DK_KW];
	const uint32_t **vs;
	size_t *ns, k = 0, i;
	const struct ridx_dent *e;
	const char *title = d->title != NULL ? d->title : "";

	/* at most two plus one per keyword with postings */
	vs = (const uint32_t **)(void *)pool_get(q, (kw->n + 2) * 2 + 2);
	ns = (size_t *)(void *)pool_get(q, (kw->n + 2) * 2 + 2);
	if (vs == NULL || ns == NULL)
		return -1;
	if ((e = ridx_dict_find(&q->ix->dict[DK_CAT], d->category ? d->category : "")) &&
	    e->list.n > 0)
		vs[k] = e->list.v, ns[k++] = e->list.n;
	if ((e = ridx_dict_find(&q->ix->dict[DK_BRAND], d->brand ? d->brand : "")) &&
	    e->list.n > 0)
		vs[k] = e->list.v, ns[k++] = e->list.n;
	for (i = 0; i < kw->cap; i++)
		if (kw->t[i].key != NULL && kw->t[i].list.n > 0 &&
		    rule_ci_find(title, kw->t[i].key))
			vs[k] = kw->t[i].list.v, ns[k++] = kw->t[i].list.n;
	if (lists_union(q, vs, ns, k, p) == -1)
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

static int
filters_ok(const struct plan *p, const struct ridx_slot *sl)
{
	size_t i;
	int r;

	for (i = 0; i < p->nf; i++) {
		const struct filt *f = &p->f[i];

		switch (f->kind) {
		case FT_ENG:
			r = f->sub_left ? rule_cmp_num(f->op, sl->engagement, f->x) :
			    rule_cmp_num(f->op, f->x, sl->engagement);
			break;
		case FT_REGION_NE:
			r = sl->region != f->id;
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

/* Adds every not yet matched subscriber that rule rix matches. */
static int
run_rule(struct query *q, size_t rix, const struct plan *p)
{
	const struct rule *r = q->rs->v[rix];
	const struct ridx *ix = q->ix;
	struct ridx_scratch *sc = q->sc;
	size_t n = p->kind == P_LIST ? p->n : ix->nslots, k;
	struct rule_match m;
	uint32_t x;

	if (p->kind == P_EMPTY)
		return 0;
	if (items_reserve(sc, sc->ni + n) == -1)
		return -1;
	for (k = 0; k < n; k++) {
		const struct ridx_slot *sl;
		struct ridx_item *it;
		unsigned ch;

		x = p->kind == P_LIST ? p->v[k] : (uint32_t)k;
		if (sc->bits[x >> 6] & (1ULL << (x & 63)))
			continue;
		sl = &ix->slots[x];
		if ((ch = r->channels & sl->reach) == 0)
			continue;  /* also every free slot */
		if (p->nf > 0 && !filters_ok(p, sl))
			continue;
		if (!p->exact && !rule_match_one(r, &q->dc, sl->sub, sl->reach, &m))
			continue;
		sc->bits[x >> 6] |= 1ULL << (x & 63);
		it = &sc->items[sc->ni++];
		it->eng = rule_eng_key(sl->engagement);
		it->idk = sl->idkey;
		it->slot = x;
		it->rix = (uint16_t)rix;
		it->ch = (uint8_t)ch;
		it->held = (uint8_t)rule_held_out_h(r, sl->idhash);
	}
	return 0;
}

/* ---- the query ---- */

static int
scratch_ready(struct rule_recipients *out, const struct ridx *ix, const struct rule_set *rs)
{
	struct ridx_scratch *sc = out->scratch;
	size_t nw = ((size_t)ix->nslots + 63) / 64 + 1;

	if (sc == NULL && (sc = out->scratch = calloc(1, sizeof(*sc))) == NULL)
		return -1;
	sc->npool = 0;
	sc->ni = 0;
	if (sc->dvcap < (size_t)rs->nnodes + 1) {
		int8_t *ndv = realloc(sc->dv, (size_t)rs->nnodes + 1);

		if (ndv == NULL)
			return -1;
		sc->dv = ndv;
		sc->dvcap = (size_t)rs->nnodes + 1;
	}
	if (sc->nwords < nw) {
		uint64_t *nb = calloc(nw, sizeof(*nb));

		if (nb == NULL)
			return -1;
		free(sc->bits);
		sc->bits = nb;
		sc->nwords = nw;
	}
	return 0;
}

int
ridx_query(const struct ridx *ix, const struct rule_set *rs, const struct deal *d,
    int64_t now, double overbook, struct rule_recipients *out, struct err *err)
{
	struct query q;
	struct ridx_scratch *sc;
	struct plan p, interested;
	size_t i, cut;
	int have_int = 0;

	out->n = out->matched = 0;
	if (!(overbook >= 1.0 && overbook <= 1e6))
		return err_set(err, ERR_INPUT, "bad_overbook", "overbook",
		    "overbook must be from 1 to 1000000");
	if (d->cancel)
		return 0;
	if (scratch_ready(out, ix, rs) == -1)
		goto nomem;
	sc = out->scratch;
	memset(&q, 0, sizeof(q));
	q.ix = ix;
	q.rs = rs;
	q.sc = sc;
	q.dc.d = d;
	q.dc.now = now;
	q.dc.dv = sc->dv;
	rule_dctx_fill(rs, d, now, sc->dv);
	for (i = 0; i < rs->n; i++) {
		const struct rule *r = rs->v[i];

		if (r->when == NULL)
			p_all(&p, 1);
		else if (plan_node(&q, r->when, &p) == -1)
			goto nomem_bits;
		if (!r->audience_all && p.kind != P_EMPTY) {
			if (!have_int && plan_interested(&q, &interested) == -1)
				goto nomem_bits;
			have_int = 1;
			if (plan_and(&q, &p, &interested) == -1)
				goto nomem_bits;
		}
		if (run_rule(&q, i, &p) == -1)
			goto nomem_bits;
	}
	for (i = 0; i < sc->ni; i++)
		sc->bits[sc->items[i].slot >> 6] &= ~(1ULL << (sc->items[i].slot & 63));
	out->matched = sc->ni;
	cut = rule_cut(d, overbook, sc->ni);
	ridx_rank(ix, rs, sc->items, sc->tmp, sc->ni, cut);
	if (rule_recipients_reserve(out, cut) == -1)
		goto nomem;
	for (i = 0; i < cut; i++) {
		const struct ridx_item *it = &sc->items[i];

		out->v[i].sub = ix->slots[it->slot].sub;
		out->v[i].rule = rs->v[it->rix];
		out->v[i].channels = it->ch;
		out->v[i].held_out = it->held;
	}
	out->n = cut;
	return 0;

nomem_bits:
	for (i = 0; i < sc->ni; i++)
		sc->bits[sc->items[i].slot >> 6] &= ~(1ULL << (sc->items[i].slot & 63));
	sc->ni = 0;
nomem:
	out->n = out->matched = 0;
	return err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory matching deal");
}
