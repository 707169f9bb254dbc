/*
 * gwpool_rmap.c: the per-recipient daily budget's map (stage: send; part of gwpool.c,
 * see its header): a 64-bit hash of each recipient's key, counted per UTC day, so the
 * pool keeps no phone number or user id. Pure: no I/O, no clock, no global.
 */
#include <stdint.h>
#include <stdlib.h>

#include "gwpool.h"
#include "gwpool_int.h"

/* FNV-1a, then the splitmix64 finalizer to spread it over the table; never 0. */
uint64_t
gwpool_key_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h != 0 ? h : 1;
}

/* The slot holding key, or the free slot where it would go; rcap > 0 and not full. */
size_t
gwpool_rmap_slot(const struct gwpool_gw *g, uint64_t key)
{
	size_t mask = g->rcap - 1, i = (size_t)key & mask;

	while (g->rmap[i].key != 0 && g->rmap[i].key != key)
		i = (i + 1) & mask;
	return i;
}

uint32_t
gwpool_rmap_get(const struct gwpool_gw *g, uint64_t key)
{
	size_t i;

	if (g->rcap == 0)
		return 0;
	i = gwpool_rmap_slot(g, key);
	return g->rmap[i].key == key ? g->rmap[i].n : 0;
}

void
gwpool_rmap_clear(struct gwpool_gw *g)
{
	free(g->rmap);
	g->rmap = NULL;
	g->rcap = g->rlen = 0;
	g->untracked = 0;
}

/* Doubles the table. Returns 0, or -1 (table unchanged) on OOM or at the size cap. */
static int
rmap_grow(struct gwpool_gw *g)
{
	struct gwpool_rslot *old = g->rmap, *nm;
	size_t oldcap = g->rcap, cap = oldcap ? oldcap * 2 : GWPOOL_RMAP_MIN, i, j;

	if (cap < oldcap || cap > SIZE_MAX / sizeof(*nm))
		return -1;
	if ((nm = calloc(cap, sizeof(*nm))) == NULL)
		return -1;
	g->rmap = nm;
	g->rcap = cap;
	for (i = 0; i < oldcap; i++) {
		if (old[i].key == 0)
			continue;
		j = gwpool_rmap_slot(g, old[i].key);
		g->rmap[j] = old[i];
	}
	free(old);
	return 0;
}

/* Counts one more request to key today. A recipient beyond rmax, or one that finds
 * no memory, goes uncounted (and is counted in `untracked`): the provider's own limit
 * still answers 429, which pauses the gateway. */
void
gwpool_rmap_inc(struct gwpool_gw *g, uint64_t key)
{
	size_t i;

	if (g->rcap > 0) {
		i = gwpool_rmap_slot(g, key);
		if (g->rmap[i].key == key) {
			if (g->rmap[i].n < UINT32_MAX)
				g->rmap[i].n++;
			return;
		}
	}
	if (g->rlen >= g->rmax) {
		g->untracked = gwpool_add_sat(g->untracked, 1);
		return;
	}
	/* keep the load at or under one half */
	if ((g->rlen + 1) * 2 > g->rcap && rmap_grow(g) < 0) {
		g->untracked = gwpool_add_sat(g->untracked, 1);
		return;
	}
	i = gwpool_rmap_slot(g, key);
	g->rmap[i].key = key;
	g->rmap[i].n = 1;
	g->rlen++;
}
