/*
 * ridx_rank.c: the ranking of a deal's recipients (stage: match): rule priority
 * descending (the items arrive grouped so), then engagement descending, then subscriber
 * id ascending: an LSD radix sort on the engagement bits for large groups, quicksort
 * for small ones and for runs of equal engagement, and a selection of the top k when a
 * limited quantity cuts a large group. Must order exactly as rule_recipient_cmp() does.
 * No allocation (the caller gives the buffer), no I/O, no globals.
 */
#include <string.h>

#include "ridx_int.h"

/* 1 when a ranks before b inside one priority group. */
static int
before(const struct ridx *ix, const struct ridx_item *a, const struct ridx_item *b)
{
	if (a->eng != b->eng)
		return a->eng > b->eng;
	return ridx_slot_cmp(ix, a->eng, a->slot, b->eng, b->slot) < 0;
}

static void
swap_items(struct ridx_item *a, struct ridx_item *b)
{
	struct ridx_item t = *a;

	*a = *b;
	*b = t;
}

/* Quicksort with insertion sort for short runs; recursion on the smaller side. */
static void
qsort_items(const struct ridx *ix, struct ridx_item *v, size_t n)
{
	size_t i, j;

	while (n > 16) {
		size_t mid = n / 2;
		struct ridx_item pivot;

		if (before(ix, &v[mid], &v[0]))
			swap_items(&v[mid], &v[0]);
		if (before(ix, &v[n - 1], &v[0]))
			swap_items(&v[n - 1], &v[0]);
		if (before(ix, &v[n - 1], &v[mid]))
			swap_items(&v[n - 1], &v[mid]);
		pivot = v[mid];
		i = 0;
		j = n - 1;
		for (;;) {
			while (before(ix, &v[i], &pivot))
				i++;
			while (before(ix, &pivot, &v[j]))
				j--;
			if (i >= j)
				break;
			swap_items(&v[i], &v[j]);
			i++;
			j--;
		}
		if (j + 1 < n - j - 1) {
			qsort_items(ix, v, j + 1);
			v += j + 1;
			n -= j + 1;
		} else {
			qsort_items(ix, v + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && before(ix, &v[j], &v[j - 1]); j--)
			swap_items(&v[j], &v[j - 1]);
}

/*
 * LSD radix sort by the top 32 bits of eng, descending and stable (11-bit digits,
 * passes where every item has the same digit skipped); then each run of equal top bits
 * (equal engagement, or nearly) is finished with the full comparison.
 */
static void
sort_group(const struct ridx *ix, struct ridx_item *v, struct ridx_item *tmp, size_t n)
{
	uint32_t cnt[2048], pos, sum;
	size_t i, j;
	unsigned shift;
	struct ridx_item *src = v, *dst = tmp, *t;

	if (n < 256) {
		qsort_items(ix, v, n);
		return;
	}
	for (shift = 32; shift < 64; shift += 11) {
		memset(cnt, 0, sizeof(cnt));
		for (i = 0; i < n; i++)
			cnt[(~src[i].eng >> shift) & 2047]++;
		if (cnt[(~src[0].eng >> shift) & 2047] == n)
			continue;
		for (j = 0, sum = 0; j < 2048; j++) {
			pos = cnt[j];
			cnt[j] = sum;
			sum += pos;
		}
		for (i = 0; i < n; i++)
			dst[cnt[(~src[i].eng >> shift) & 2047]++] = src[i];
		t = src, src = dst, dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && (v[j].eng >> 32) == (v[i].eng >> 32); j++)
			;
		if (j - i > 1)
			qsort_items(ix, v + i, j - i);
	}
}

/* Moves the need first items (in rank order) of v to its front, unordered. */
static void
select_top(const struct ridx *ix, struct ridx_item *v, size_t n, size_t need)
{
	size_t lo = 0, hi = n, i, j, store;

	while (hi - lo > 16) {
		size_t mid = lo + (hi - lo) / 2;

		if (before(ix, &v[mid], &v[lo]))
			swap_items(&v[mid], &v[lo]);
		if (before(ix, &v[hi - 1], &v[lo]))
			swap_items(&v[hi - 1], &v[lo]);
		if (before(ix, &v[hi - 1], &v[mid]))
			swap_items(&v[hi - 1], &v[mid]);
		swap_items(&v[mid], &v[hi - 1]);  /* pivot at the end */
		for (i = lo, store = lo; i < hi - 1; i++)
			if (before(ix, &v[i], &v[hi - 1]))
				swap_items(&v[i], &v[store++]);
		swap_items(&v[store], &v[hi - 1]);
		if (store + 1 == need || store == need)
			return;
		if (store < need)
			lo = store + 1;
		else
			hi = store;
	}
	for (i = lo + 1; i < hi; i++)
		for (j = i; j > lo && before(ix, &v[j], &v[j - 1]); j--)
			swap_items(&v[j], &v[j - 1]);
}

void
ridx_rank(const struct ridx *ix, const struct rule_set *rs, struct ridx_item *items,
    struct ridx_item *tmp, size_t n, size_t cut)
{
	size_t gs, ge;

	for (gs = 0; gs < n && gs < cut; gs = ge) {
		int prio = rs->v[items[gs].rix]->priority;

		for (ge = gs + 1; ge < n && rs->v[items[ge].rix]->priority == prio; ge++)
			;
		if (cut < ge && cut - gs < (ge - gs) / 4) {
			select_top(ix, items + gs, ge - gs, cut - gs);
			sort_group(ix, items + gs, tmp, cut - gs);
		} else {
			sort_group(ix, items + gs, tmp, ge - gs);
		}
	}
}
