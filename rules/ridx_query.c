/*
 * ridx_query.c: "who gets this deal" from the interest index (stage: match). For each
 * rule, its condition and audience are turned into a plan (ridx_plan.c): a sorted list
 * of candidates from posting lists (or every slot) plus filters on the compact
 * per-subscriber record, exact when it is the rule's match set, else a superset whose
 * members are evaluated one by one with the reference evaluator. One pass over the
 * union of the candidates then gives each subscriber the first rule that matches, as
 * rule_match() decides. Then rank and cut as rule_scan() does. When some rule takes
 * every subscriber, the walk follows the index's rank order instead (run_ordered), so
 * the matches need no ranking.
 * Reads the index and the rule set only; all scratch is in the caller's result struct.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ridx_int.h"

#define PREFETCH 16   /* slot records fetched ahead while walking a posting list */

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
		free(sc->act);
		free(sc->count);
		free(sc->grp);
		free(sc->side);
		for (i = 0; i < sc->poolcap; i++)
			free(sc->pool[i].v);
		free(sc->pool);
		free(sc->items);
		free(sc->tmp);
		free(sc);
	}
	free(out->v);
	rule_recipients_init(out);
}

static int
first_match(struct query *q, struct active *act, size_t nact, uint32_t x,
    const struct ridx_slot *sl, unsigned *ch)
{
	struct rule_match m;
	size_t i;
	int iok = -1;  /* the interested bounds: tested once, when first needed */

	for (i = 0; i < nact; i++) {
		struct active *a = &act[i];

		if ((*ch = a->chans & sl->reach) == 0)
			continue;
		if ((sl->hot & a->plan.need) != a->plan.need)
			continue;
		if (a->plan.kind == P_LIST && a->bits != NULL) {
			if (!((a->bits[x >> 5] >> (x & 31)) & 1))
				continue;
		} else if (a->plan.kind == P_LIST) {
			while (a->cur < a->plan.n && a->plan.v[a->cur] < x)
				a->cur++;
			if (a->cur == a->plan.n || a->plan.v[a->cur] != x)
				continue;
		}
		if (a->plan.intf) {
			if (iok < 0)
				iok = ridx_int_ok(q, sl);
			if (!iok)
				continue;
		}
		if (a->plan.nf > 0 && !ridx_filters_ok(&a->plan, sl))
			continue;
		if (!a->plan.exact && !rule_match_one(a->r, &q->dc, sl->sub, sl->reach, &m))
			continue;
		return (int)i;
	}
	return -1;
}

/*
 * One pass over the union of the active rules' candidates, in slot order: each
 * candidate's record is read once and given the first rule (in evaluation order) that
 * matches it, exactly as rule_match() decides; then the matches are grouped by rule.
 */
static int
run_rules(struct query *q, struct active *act, size_t nact)
{
	const struct ridx *ix = q->ix;
	struct ridx_scratch *sc = q->sc;
	const uint32_t **vs, *u = NULL;
	size_t *ns, nu, i, k, sum, all = 0;
	struct plan up;
	struct ridx_item *it;
	unsigned ch;
	int w, have_iv;

	for (i = 0; i < nact; i++)
		all |= act[i].plan.kind == P_ALL;
	if (all) {
		nu = ix->nslots;
	} else {
		vs = (const uint32_t **)(void *)ridx_pool_get(q, 2 * nact + 2);
		ns = (size_t *)(void *)ridx_pool_get(q, 2 * nact + 2);
		if (vs == NULL || ns == NULL)
			return -1;
		for (i = 0, have_iv = 0; i < nact; i++)
			have_iv |= act[i].plan.kind == P_LIST && act[i].plan.v == q->iv;
		for (i = 0, k = 0; i < nact; i++) {  /* rules often share one list */
			size_t m;

			/* the matches of a rule with the interested bounds are in the
			 * interested list: when that is walked, its own list adds none */
			if (have_iv && act[i].plan.intf && act[i].plan.v != q->iv)
				continue;

			for (m = 0; m < k && !(vs[m] == act[i].plan.v && ns[m] == act[i].plan.n);
			    m++)
				;
			if (m < k)
				continue;
			vs[k] = act[i].plan.v;
			ns[k++] = act[i].plan.n;
		}
		if (ridx_lists_union(q, vs, ns, k, &up) == -1)
			return -1;
		u = up.v;
		nu = up.n;
		for (i = 0; i < nact; i++)  /* a list that is the whole walk: no test */
			if (act[i].plan.kind == P_LIST && act[i].plan.v == u &&
			    act[i].plan.n == nu)
				act[i].plan.kind = P_ALL;
	}
	if (items_reserve(sc, nu) == -1)
		return -1;
	for (k = 0; k < nu; k++) {
		uint32_t x = all ? (uint32_t)k : u[k];
		const struct ridx_slot *sl = &ix->slots[x];

		if (!all && k + PREFETCH < nu)  /* sorted but sparse: fetch ahead */
			__builtin_prefetch(&ix->slots[u[k + PREFETCH]]);
		if (sl->reach == 0)
			continue;  /* also every free slot */
		if ((w = first_match(q, act, nact, x, sl, &ch)) < 0)
			continue;
		it = &sc->items[sc->ni++];
		it->eng = rule_eng_key(sl->engagement);
		it->sub = sl->sub;
		it->slot = x;
		it->rix = (uint16_t)act[w].rix;
		it->ch = (uint8_t)ch;
		it->held = (uint8_t)(rule_held_out_h(act[w].r, sl->idhash) & ch);
	}
	/* group by rule, stably: a counting sort on the rule index */
	memset(sc->count, 0, (q->rs->n + 1) * sizeof(*sc->count));
	for (k = 0; k < sc->ni; k++)
		sc->count[sc->items[k].rix + 1]++;
	for (i = 0, sum = 0; i <= q->rs->n; i++) {
		if (sc->count[i] == sc->ni)
			return 0;  /* one rule took every match: already grouped */
		sum = sc->count[i] += sum;
	}
	for (k = 0; k < sc->ni; k++)
		sc->tmp[sc->count[sc->items[k].rix]++] = sc->items[k];
	it = sc->items;  /* both have room for icap items: swap, no copy */
	sc->items = sc->tmp;
	sc->tmp = it;
	return 0;
}

/* The sorted list v of n slots as a bitset over the slots, from the query's pool. */
static const uint32_t *
list_bits(struct query *q, const uint32_t *v, size_t n)
{
	size_t words = ((size_t)q->ix->nslots + 31) / 32 + 1, i;
	uint32_t *b = ridx_pool_get(q, words);

	if (b == NULL)
		return NULL;
	memset(b, 0, words * sizeof(*b));
	for (i = 0; i < n; i++)
		b[v[i] >> 5] |= 1u << (v[i] & 31);
	return b;
}

/* Puts out->v[0, n), in rank order and tagged by group gv, in group order (stably):
 * the largest group is compacted in place and moved once, the others go through the
 * side buffer. count[g] holds each group's size. */
static int
group_in_place(struct ridx_scratch *sc, struct rule_recipients *out, uint16_t *gv,
    size_t n, size_t ngrp)
{
	size_t g, big = 0, i, j, ns, sum;

	for (g = 1; g < ngrp; g++)
		if (sc->count[g] > sc->count[big])
			big = g;
	if (sc->count[big] == n)
		return 0;  /* one group: already in order */
	if (sc->sidecap < n - sc->count[big]) {
		struct rule_recipient *nsd = realloc(sc->side, (n - sc->count[big]) *
		    sizeof(*nsd));

		if (nsd == NULL)
			return -1;
		sc->side = nsd;
		sc->sidecap = n - sc->count[big];
	}
	for (i = 0, j = 0, ns = 0; i < n; i++) {
		if (gv[i] == big) {
			out->v[j++] = out->v[i];
		} else {
			gv[ns] = gv[i];  /* ns <= i: not yet read */
			sc->side[ns++] = out->v[i];
		}
	}
	for (g = 0, sum = 0; g < ngrp; g++) {  /* counts become each group's start */
		size_t c = sc->count[g];

		sc->count[g] = sum;
		sum += c;
	}
	memmove(out->v + sc->count[big], out->v, j * sizeof(*out->v));
	for (i = 0; i < ns; i++)
		out->v[sc->count[gv[i]]++] = sc->side[i];
	return 0;
}

/*
 * When some rule takes every subscriber: one pass over the rank order, so that each
 * priority group's matches come out already ranked; the list plans become bitsets.
 * Without a quantity the matches are written straight into out and then grouped in
 * place. With one, each group keeps only its first `limit` matches (no later one can
 * make the cut) but counts them all, and the kept ones are placed by group.
 * Fills out (n, matched).
 */
static int
run_ordered(struct query *q, struct active *act, size_t nact, size_t limit,
    double overbook, struct rule_recipients *out)
{
	const struct ridx *ix = q->ix;
	const struct ridx_ord *o = &ix->ord;
	struct ridx_scratch *sc = q->sc;
	size_t i, k, ngrp = 0, matched, cut, sum, g, nd = 0;
	int direct = limit >= ix->count, w;
	uint16_t *gv = NULL;
	unsigned ch;

	for (i = 0; i < nact; i++) {
		act[i].bits = NULL;
		if (act[i].plan.kind == P_LIST && act[i].plan.hot != 0) {
			act[i].plan.kind = P_ALL;  /* the hot bit is the list */
			act[i].plan.need |= act[i].plan.hot;
			sc->hot_ands++;
		}
		if (act[i].plan.kind != P_LIST)
			continue;
		if (i > 0 && act[i - 1].bits != NULL && act[i - 1].plan.v == act[i].plan.v &&
		    act[i - 1].plan.n == act[i].plan.n)
			act[i].bits = act[i - 1].bits;  /* rules often share one list */
		else if ((act[i].bits = list_bits(q, act[i].plan.v, act[i].plan.n)) == NULL)
			return -1;
	}
	for (i = 0; i < q->rs->n; i++) {
		if (i > 0 && q->rs->v[i]->priority != q->rs->v[i - 1]->priority)
			ngrp++;
		sc->grp[i] = (uint16_t)ngrp;
	}
	ngrp++;
	memset(sc->count, 0, ngrp * sizeof(*sc->count));
	if (direct) {
		if (rule_recipients_reserve(out, ix->count) == -1 ||
		    (gv = (uint16_t *)(void *)ridx_pool_get(q, ix->count / 2 + 1)) == NULL)
			return -1;
	} else if (items_reserve(sc, limit < ix->count / ngrp ? limit * ngrp :
	    ix->count) == -1) {
		return -1;
	}
	for (i = 0; i < o->nb; i++) {
		const struct ridx_oblk *b = o->b[i];
		const struct ridx_oblk *nb = i + 1 < o->nb ? o->b[i + 1] : NULL;

		for (k = 0; k < b->n; k++) {
			uint32_t x = b->s[k];
			const struct ridx_slot *sl = &ix->slots[x];
			const struct rule *r;
			struct ridx_item *it;

			if (k + PREFETCH < b->n)  /* rank order is random in slots */
				__builtin_prefetch(&ix->slots[b->s[k + PREFETCH]]);
			else if (nb != NULL && k + PREFETCH - b->n < nb->n)
				__builtin_prefetch(&ix->slots[nb->s[k + PREFETCH - b->n]]);
			if (sl->reach == 0)
				continue;
			if ((w = first_match(q, act, nact, x, sl, &ch)) < 0)
				continue;
			r = act[w].r;
			g = sc->grp[act[w].rix];
			if (direct) {
				sc->count[g]++;
				gv[nd] = (uint16_t)g;
				out->v[nd].sub = sl->sub;
				out->v[nd].rule = r;
				out->v[nd].channels = ch;
				out->v[nd++].held_out = (int)(rule_held_out_h(r,
				    sl->idhash) & ch);
				continue;
			}
			if (sc->count[g]++ >= limit)
				continue;
			it = &sc->items[sc->ni++];
			it->sub = sl->sub;
			it->slot = x;
			it->rix = (uint16_t)act[w].rix;
			it->ch = (uint8_t)ch;
			it->held = (uint8_t)(rule_held_out_h(r, sl->idhash) & ch);
		}
	}
	if (direct) {
		if (group_in_place(sc, out, gv, nd, ngrp) == -1)
			return -1;
		out->matched = out->n = nd;
		return 0;
	}
	for (g = 0, sum = 0; g < ngrp; g++) {  /* counts become each group's start */
		size_t c = sc->count[g];

		sc->count[g] = sum;
		sum += c;
	}
	matched = sum;
	cut = rule_cut(q->dc.d, overbook, out->limit, matched);
	if (rule_recipients_reserve(out, cut) == -1)
		return -1;
	for (k = 0; k < sc->ni; k++) {
		const struct ridx_item *it = &sc->items[k];
		size_t pos = sc->count[sc->grp[it->rix]]++;

		if (pos >= cut)
			continue;
		out->v[pos].sub = it->sub;
		out->v[pos].rule = q->rs->v[it->rix];
		out->v[pos].channels = it->ch;
		out->v[pos].held_out = it->held;
	}
	out->matched = matched;
	out->n = cut;
	return 0;
}

int
ridx_warm(const struct ridx *ix, struct rule_recipients *out, struct err *err)
{
	struct ridx_scratch *sc = out->scratch;
	size_t n = ix->count ? ix->count : 1;

	if (sc == NULL && (sc = out->scratch = calloc(1, sizeof(*sc))) == NULL)
		goto oom;
	if (rule_recipients_reserve(out, n) == -1 || items_reserve(sc, n) == -1)
		goto oom;
	if (sc->sidecap < n) {
		struct rule_recipient *nsd = realloc(sc->side, n * sizeof(*nsd));

		if (nsd == NULL)
			goto oom;
		sc->side = nsd;
		sc->sidecap = n;
	}
	/* Fault the pages in now rather than in the first large answer. */
	memset(out->v, 0, out->cap * sizeof(*out->v));
	memset(sc->items, 0, sc->icap * sizeof(*sc->items));
	memset(sc->tmp, 0, sc->icap * sizeof(*sc->tmp));
	memset(sc->side, 0, sc->sidecap * sizeof(*sc->side));
	return 0;
oom:
	return err_set(err, ERR_NOMEM, "no_memory", NULL, "ridx_warm: out of memory");
}

/* ---- the query ---- */

static int
scratch_ready(struct rule_recipients *out, const struct rule_set *rs)
{
	struct ridx_scratch *sc = out->scratch;

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
	if (sc->actcap < rs->n) {
		struct active *na = realloc(sc->act, rs->n * sizeof(*na));

		if (na == NULL)
			return -1;
		sc->act = na;
		sc->actcap = rs->n;
	}
	if (sc->countcap < rs->n + 1) {
		size_t *nc = realloc(sc->count, (rs->n + 1) * sizeof(*nc));

		if (nc == NULL)
			return -1;
		sc->count = nc;
		sc->countcap = rs->n + 1;
	}
	if (sc->grpcap < rs->n + 1) {
		uint16_t *ng = realloc(sc->grp, (rs->n + 1) * sizeof(*ng));

		if (ng == NULL)
			return -1;
		sc->grp = ng;
		sc->grpcap = rs->n + 1;
	}
	return 0;
}

int
ridx_query(const struct ridx *ix, const struct rule_set *rs, const struct deal *d,
    int64_t now, double overbook, struct rule_recipients *out, struct err *err)
{
	struct query q;
	struct ridx_scratch *sc;
	struct plan interested;
	size_t i, cut, nact;
	int have_int = 0, all = 0;

	out->n = out->matched = 0;
	if (!(overbook >= 1.0 && overbook <= 1e6))
		return err_set(err, ERR_INPUT, "bad_overbook", "overbook",
		    "overbook must be from 1 to 1000000");
	if (d->cancel)
		return 0;
	if (scratch_ready(out, rs) == -1)
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
	for (i = 0, nact = 0; i < rs->n; i++) {
		const struct rule *r = rs->v[i];
		struct plan *p = &sc->act[nact].plan;

		if (r->when == NULL)
			ridx_plan_all(p, 1);
		else if (ridx_plan_node(&q, r->when, p) == -1)
			goto nomem;
		if (!r->audience_all && p->kind != P_EMPTY) {
			if (!have_int) {
				if (ridx_plan_interested(&q, &interested) == -1)
					goto nomem;
				/* its bounds are tested once per candidate, not per rule */
				q.iv = interested.kind == P_LIST ? interested.v : NULL;
				q.ifp.nf = interested.nf;
				memcpy(q.ifp.f, interested.f, sizeof(q.ifp.f));
				interested.nf = 0;
				q.ihas_price = d->has_price != 0;
				q.iprice = d->price;
				q.idisc = d->discount_pct;
			}
			have_int = 1;
			if (ridx_plan_and(&q, p, &interested) == -1)
				goto nomem;
			p->intf = p->kind != P_EMPTY && q.ifp.nf > 0;
		}
		if (p->kind == P_EMPTY) {
			if (rule_claims_deal(r, &q.dc))
				break;
			continue;
		}
		sc->act[nact].rix = i;
		sc->act[nact].r = r;
		sc->act[nact].chans = r->channels;
		sc->act[nact].bits = NULL;
		sc->act[nact++].cur = 0;
		all |= p->kind == P_ALL;
		if (rule_claims_deal(r, &q.dc))
			break;   /* an exclusive rule keeps the deal from every lower rule */
	}
	if (all) {  /* every subscriber is visited anyway: in rank order */
		if (run_ordered(&q, sc->act, nact, rule_cut(d, overbook, out->limit,
		    ix->count), overbook, out) == -1)
			goto nomem;
		return 0;
	}
	if (nact > 0 && run_rules(&q, sc->act, nact) == -1)
		goto nomem;
	out->matched = sc->ni;
	cut = rule_cut(d, overbook, out->limit, sc->ni);
	ridx_rank(ix, rs, sc->items, sc->tmp, sc->ni, cut);
	if (rule_recipients_reserve(out, cut) == -1)
		goto nomem;
	for (i = 0; i < cut; i++) {
		const struct ridx_item *it = &sc->items[i];

		out->v[i].sub = it->sub;
		out->v[i].rule = rs->v[it->rix];
		out->v[i].channels = it->ch;
		out->v[i].held_out = it->held;
	}
	out->n = cut;
	return 0;

nomem:
	out->n = out->matched = 0;
	return err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory matching deal");
}
