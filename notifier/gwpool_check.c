/*
 * gwpool_check.c: gwpool_check(), every invariant of the pool checked after any
 * sequence of calls (stage: send; part of gwpool.c, see its header). For the tests
 * and the fuzzer: it walks every gateway's state, never changes it.
 */
#include <stdint.h>

#include "gwpool.h"
#include "gwpool_int.h"

#define CHECK(cond, ...) do { \
	if (!(cond)) \
		return err_set(err, ERR_PERM, "invariant", g->cfg->name, __VA_ARGS__); \
} while (0)

static int
gw_check(const struct gwpool *p, const struct gwpool_gw *g, struct err *err)
{
	size_t k, used = 0;

	CHECK(g->in_flight >= 0, "in_flight %ld < 0", g->in_flight);
	CHECK(g->max_in_flight == 0 || g->in_flight <= g->max_in_flight,
	    "in_flight %ld > max %ld", g->in_flight, g->max_in_flight);
	CHECK(g->cap >= 1, "bucket size %g < 1", g->cap);
	CHECK(g->tokens >= 0 && g->tokens <= g->cap, "tokens %g outside [0, %g]",
	    g->tokens, g->cap);
	CHECK(!g->probe_out || (g->open && g->in_flight == 1),
	    "probe out while %s with %ld in flight", g->open ? "open" : "closed",
	    g->in_flight);
	CHECK(g->open || g->consec < p->lim.breaker_failures,
	    "closed with %ld consecutive failures", g->consec);
	CHECK(g->open || g->open_until == 0, "closed with a cool-down end");
	CHECK(g->cooldown_ms >= p->lim.open_ms && g->cooldown_ms <= p->lim.open_max_ms,
	    "cool-down %lld outside [%ld, %ld]", (long long)g->cooldown_ms,
	    p->lim.open_ms, p->lim.open_max_ms);
	for (k = 0; k < GWPOOL_WBUCKETS; k++)
		CHECK(g->win[k].failures >= 0 && g->win[k].failures <= g->win[k].outcomes,
		    "window slice %zu: %ld failures of %ld", k, g->win[k].failures,
		    g->win[k].outcomes);
	CHECK(g->ends_used <= g->wlimit && (g->wlimit == 0 || g->ends_head < g->wlimit),
	    "window ring: %zu used of %zu", g->ends_used, g->wlimit);
	for (k = 1; k < g->ends_used; k++)
		CHECK(g->ends[(g->ends_head + k - 1) % g->wlimit] <=
		    g->ends[(g->ends_head + k) % g->wlimit], "window answers out of order");
	CHECK(g->sent_today >= 0, "sent_today %lld < 0", (long long)g->sent_today);
	CHECK(g->budget == 0 || g->sent_today <= g->budget,
	    "sent_today %lld over budget %ld", (long long)g->sent_today, g->budget);
	CHECK(g->rlen <= g->rmax, "%zu recipients > max %zu", g->rlen, g->rmax);
	CHECK(g->rcap == 0 || ((g->rcap & (g->rcap - 1)) == 0 && g->rlen * 2 <= g->rcap),
	    "recipient map: %zu used of %zu slots", g->rlen, g->rcap);
	for (k = 0; k < g->rcap; k++) {
		const struct gwpool_rslot *s = &g->rmap[k];
		if (s->key == 0)
			continue;
		used++;
		CHECK(s->n >= 1, "recipient slot %zu counts 0", k);
		CHECK(g->rbudget == 0 || s->n <= (uint64_t)g->rbudget,
		    "recipient slot %zu: %u over budget %ld", k, s->n, g->rbudget);
		CHECK(s->n <= (uint64_t)g->sent_today,
		    "recipient slot %zu: %u > sent_today", k, s->n);
		CHECK(gwpool_rmap_slot(g, s->key) == k, "recipient slot %zu unreachable", k);
	}
	CHECK(used == g->rlen, "recipient map holds %zu, counts %zu", used, g->rlen);
	return 0;
}

#undef CHECK

int
gwpool_check(const struct gwpool *p, struct err *err)
{
	size_t i, c;

	if (p == NULL)
		return err_set(err, ERR_INPUT, "invariant", NULL, "gwpool: NULL");
	for (c = 0; c < CH_COUNT; c++)
		if (p->ch_start[c] > p->ch_start[c + 1] || p->ch_start[CH_COUNT] != p->n)
			return err_set(err, ERR_PERM, "invariant", NULL,
			    "gwpool: channel ranges out of order");
	for (i = 0; i + 1 < p->n; i++)
		if (!gwpool_order_before(p, p->order[i], p->order[i + 1]))
			return err_set(err, ERR_PERM, "invariant", NULL,
			    "gwpool: order broken at %zu", i);
	for (i = 0; i < p->n; i++)
		if (gw_check(p, &p->g[i], err) < 0)
			return -1;
	return 0;
}
