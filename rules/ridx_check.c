/*
 * ridx_check.c: ridx_check(), every invariant of the interest index, for the tests
 * and the fuzzer (part of ridx.c, see its header). Walks the index, never changes it.
 */
#include <stdint.h>
#include <string.h>

#include "ridx_int.h"

static int
check_key(struct ridx *ix, struct ridx_dict *d, const char *key, uint32_t x)
{
	const struct ridx_dent *e = ridx_dict_find(d, key);
	uint32_t i;

	(void)ix;
	if (e == NULL)
		return -1;
	i = ridx_lower_bound(&e->list, x);
	return i < e->list.n && e->list.v[i] == x ? 0 : -1;
}

int
ridx_check(const struct ridx *ix, struct err *err)
{
	struct ridx *mix = (struct ridx *)ix;  /* each_key takes it; check_key only reads */
	size_t live = 0, i, total = 0;
	uint64_t pk = 0;
	uint32_t x, j, px = 0;
	int dk;

	for (x = 0; x < ix->nslots; x++) {
		const struct ridx_slot *sl = &ix->slots[x];

		if (sl->sub == NULL)
			continue;
		live++;
		if (ridx_id_lookup(ix, sl->sub->id, sl->idhash, NULL) != x)
			return err_set(err, ERR_PERM, "invariant", "idtab", "subscriber %s not "
			    "found at its slot %u", sl->sub->id, x);
		if (sl->idhash != rule_fnv1a(sl->sub->id) || sl->reach !=
		    rule_reachable(sl->sub) || sl->engagement != sl->sub->engagement)
			return err_set(err, ERR_PERM, "invariant", "slot", "slot %u stale", x);
		for (dk = 0; dk < DK_COUNT; dk++) {
			if (ridx_each_key(mix, sl->sub, dk, check_key, x) == -1)
				return err_set(err, ERR_PERM, "invariant", "posting", "subscriber "
				    "%s missing from a posting list of kind %d", sl->sub->id, dk);
		}
	}
	if (live != ix->count || live + ix->nfree != ix->nslots)
		return err_set(err, ERR_PERM, "invariant", "count", "count %zu, live %zu, "
		    "free %u, slots %u", ix->count, live, ix->nfree, ix->nslots);
	/* the free stack holds exactly the free slots */
	for (x = ix->freetop, i = 0; x != 0 && i <= ix->nfree; x = ix->slots[x - 1].region, i++)
		if (x > ix->nslots || ix->slots[x - 1].sub != NULL)
			return err_set(err, ERR_PERM, "invariant", "free", "free stack holds "
			    "slot %u, which is live or out of range", x - 1);
	if (x != 0 || i != ix->nfree)
		return err_set(err, ERR_PERM, "invariant", "free", "free stack holds %zu "
		    "slots, %u free", i, ix->nfree);
	for (i = 0; i < ix->idcap; i++)
		total += ix->idtab[i] != 0;
	if (total != live)
		return err_set(err, ERR_PERM, "invariant", "idtab", "id table holds %zu of "
		    "%zu", total, live);
	/* the rank order holds every live slot once, strictly ranked */
	for (i = 0, total = 0; i < ix->ord.nb; i++) {
		const struct ridx_oblk *b = ix->ord.b[i];

		if (b->n == 0 || b->n > RIDX_OBLK)
			return err_set(err, ERR_PERM, "invariant", "order", "block %zu holds "
			    "%u", i, b->n);
		for (j = 0; j < b->n; j++, total++) {
			uint64_t k;

			if (b->s[j] >= ix->nslots || ix->slots[b->s[j]].sub == NULL)
				return err_set(err, ERR_PERM, "invariant", "order", "block %zu "
				    "entry %u: free slot", i, j);
			k = ridx_oblk_key(ix, b, j);
			if (total > 0 && ridx_slot_cmp(ix, pk, px, k, b->s[j]) >= 0)
				return err_set(err, ERR_PERM, "invariant", "order", "block %zu "
				    "entry %u out of order", i, j);
			pk = k;
			px = b->s[j];
		}
	}
	if (total != live)
		return err_set(err, ERR_PERM, "invariant", "order", "rank order holds %zu "
		    "of %zu", total, live);
	/* a hot bit is set in exactly the records of its list */
	for (dk = 0; dk < DK_COUNT; dk++) {
		const struct ridx_dict *d = &ix->dict[dk];

		for (i = 0; i < d->cap; i++) {
			const struct ridx_dent *e = &d->t[i];
			size_t set = 0;

			if (e->key == NULL || e->hot == 0)
				continue;
			for (j = 0; j < e->list.n; j++)
				if (!(ix->slots[e->list.v[j]].hot & e->hot))
					return err_set(err, ERR_PERM, "invariant", "hot", "list '%s': "
					    "hot bit missing in slot %u", e->key, e->list.v[j]);
			for (x = 0; x < ix->nslots; x++)
				set += (ix->slots[x].hot & e->hot) != 0;
			if (set != e->list.n)
				return err_set(err, ERR_PERM, "invariant", "hot", "list '%s': hot "
				    "bit in %zu records for %u postings", e->key, set, e->list.n);
		}
	}
	/* every posting is sorted, unique and points at a live subscriber holding it */
	for (dk = 0; dk < DK_COUNT; dk++) {
		const struct ridx_dict *d = &ix->dict[dk];

		for (i = 0; i < d->cap; i++) {
			const struct ridx_list *l = &d->t[i].list;

			for (j = 0; j < l->n; j++) {
				const struct subscriber *s;
				const struct strlist *sl;

				if (j > 0 && l->v[j - 1] >= l->v[j])
					return err_set(err, ERR_PERM, "invariant", "posting",
					    "list '%s' unsorted", d->t[i].key);
				if (l->v[j] >= ix->nslots || ix->slots[l->v[j]].sub == NULL)
					return err_set(err, ERR_PERM, "invariant", "posting",
					    "list '%s' holds a free slot", d->t[i].key);
				s = ix->slots[l->v[j]].sub;
				sl = ridx_keys_of(s, dk);
				if (sl == NULL ? !rule_ci_eq(s->region ? s->region : "",
				    d->t[i].key) : !rule_list_has(sl, d->t[i].key))
					return err_set(err, ERR_PERM, "invariant", "posting",
					    "list '%s' holds %s, who lacks the key", d->t[i].key,
					    s->id);
			}
		}
	}
	return 0;
}
