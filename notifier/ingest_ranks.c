/*
 * ingest_ranks.c: a deal ranked once per notifier, planned once per shard (stages:
 * match, plan; docs/sharding.md 4a).
 *
 * Every shard's reader reads every deal entry. Ranking is the costly part of a deal
 * (every subscriber of the mirror against every rule), so the first of a notifier's
 * readers to reach an entry ranks the whole audience once, splits the ranking by
 * shard (match_run_new_split) and keeps the other shards' parts here; each of the
 * other readers takes its part when it reaches the entry. A part nobody takes (that
 * shard's entry went to another notifier, or this one stops) is dropped after
 * RANKS_KEEP_MS (checked every second, ingest_ranks_expire), and at most RANKS_MAX
 * entries are kept: a broad deal's ranking at 1M subscribers is tens of MB. Taking a part ranked a moment ago is as good as ranking now: a
 * subscriber gone since is passed over when its slice is rendered, and consent, caps
 * and expiry are checked again at admit and send.
 *
 * Must never hand a part to two readers, nor a part of another entry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "ingest.h"
#include "ingest_int.h"
#include "keys.h"
#include "log.h"
#include "match.h"
#include "subscriber.h"
#include "substore.h"

#define RANKS_KEEP_MS 30000     /* a part not taken by then is dropped */
#define RANKS_MAX 16            /* entries kept at most (the oldest goes first) */

/* One entry's ranking, split by shard; a part taken is NULL. */
struct rank_entry {
	char entry[64];
	int64_t made_ms;              /* monotonic */
	struct match_run **runs;      /* [nshards] */
	struct ingest_sum *sums;      /* [nshards]: each shard's held out */
	uint8_t *loaded;              /* [nshards]: the shard was in the mirror when
	                               * ranked (owner.h: a notifier mirrors only the
	                               * shards it serves) */
	size_t left;                  /* parts not taken */
	struct rank_entry *next;
};

struct ingest_ranks {
	uint32_t nshards;
	struct rank_entry *head;
};

void
ingest_sum_free(struct ingest_sum *s)
{
	size_t i;

	for (i = 0; i < s->nheld; i++)
		free(s->held[i].id);
	free(s->held);
	memset(s, 0, sizeof(*s));
}

/* The held-out subscribers of summary that are in shard (all when every is set)
 * copied into sums (every shard's: sums[shard], or sums[0] alone), with the whole
 * audience's counts. 0, or -1 on OOM. */
static int
ingest_sums_fill(struct ingest_sum *sums, uint32_t nshards, int every,
    const struct match_list *summary)
{
	size_t i;
	uint32_t k;

	for (k = 0; k < nshards; k++) {
		sums[k].matched = summary->matched;
		sums[k].held_out = summary->held_out;
	}
	for (i = 0; i < summary->held_out; i++) {
		const struct match_held *h = &summary->held[i];
		struct ingest_sum *s = &sums[every ? 0 : keys_shard_of(h->sub->id) % nshards];
		struct ingest_held *n = realloc(s->held, (s->nheld + 1) * sizeof(*n));

		if (n == NULL)
			return -1;
		s->held = n;
		if ((n[s->nheld].id = strdup(h->sub->id)) == NULL)
			return -1;
		n[s->nheld].rule = h->rule;
		n[s->nheld].channels = h->channels;
		n[s->nheld].whole = h->whole;
		s->nheld++;
	}
	return 0;
}

static void
rank_entry_free(struct rank_entry *e, uint32_t nshards)
{
	uint32_t k;

	for (k = 0; e->runs != NULL && k < nshards; k++)
		match_run_free(e->runs[k]);
	for (k = 0; e->sums != NULL && k < nshards; k++)
		ingest_sum_free(&e->sums[k]);
	free(e->runs);
	free(e->sums);
	free(e->loaded);
	free(e);
}

/* Drops the parts nobody took in time, and the oldest over RANKS_MAX. */
static void
ranks_expire(struct ingest_ranks *rk)
{
	if (rk == NULL)
		return;
	int64_t now = clock_mono_ms();
	struct rank_entry **pp = &rk->head, *e;
	size_t kept = 0;

	while ((e = *pp) != NULL) {
		if (now - e->made_ms >= RANKS_KEEP_MS || kept >= RANKS_MAX - 1) {
			*pp = e->next;
			rank_entry_free(e, rk->nshards);
			continue;
		}
		kept++;
		pp = &e->next;
	}
}

struct ingest_ranks *
ingest_ranks_new(uint32_t nshards)
{
	struct ingest_ranks *rk = calloc(1, sizeof(*rk));

	if (rk != NULL)
		rk->nshards = nshards;
	return rk;
}

void
ingest_ranks_free(struct ingest_ranks *rk)
{
	struct rank_entry *e;

	if (rk == NULL)
		return;
	while ((e = rk->head) != NULL) {
		rk->head = e->next;
		rank_entry_free(e, rk->nshards);
	}
	free(rk);
}

/* Takes shard's part of e (NULL when taken already); unlinks e once every part is
 * taken. */
static struct match_run *
ranks_take(struct ingest_ranks *rk, struct rank_entry *e, uint32_t shard,
    struct ingest_sum *sum)
{
	struct match_run *r = e->runs[shard];
	struct rank_entry **pp;

	if (r == NULL)
		return NULL;
	e->runs[shard] = NULL;
	*sum = e->sums[shard];
	memset(&e->sums[shard], 0, sizeof(e->sums[shard]));
	if (--e->left == 0) {
		for (pp = &rk->head; *pp != e; pp = &(*pp)->next)
			;
		*pp = e->next;
		rank_entry_free(e, rk->nshards);
	}
	return r;
}

/* Ranks d once for every shard and keeps the parts; NULL with *err. */
/*
 * A limited deal (quantity q, cut at L = ceil(q x overbook)) ranked by a notifier
 * that mirrors only some of the shards (mine of all: [cluster] ownership): each
 * notifier cuts its own ranking, so at L apiece n notifiers would plan n x L. Its
 * shards hold its share p = mine/all of the audience's top L as a binomial draw;
 * it plans the expected share plus three standard deviations,
 * L_n = min(L, ceil(L p + 3 sqrt(L p)) + 1) (docs/sharding.md 4c, "L_K"), so that
 * the notifiers together plan about L + 3 sqrt(L n) + n and the global top L is
 * inside the union but for a small chance. The cut L_n, or 0 (the deal's own: an
 * unlimited deal, or every shard mirrored).
 */
static size_t
ranks_share(const struct deal *d, uint32_t mine, uint32_t all, double overbook)
{
	double l, lp, ln;

	if (d->quantity <= 0 || mine == 0 || mine >= all || overbook < 1)
		return 0;
	l = ceil((double)d->quantity * overbook);
	lp = l * (double)mine / (double)all;
	ln = ceil(lp + 3 * sqrt(lp)) + 1;
	return ln >= l ? 0 : (size_t)ln;
}

static struct rank_entry *
ranks_make(struct ingest *in, struct ingest_ranks *rk, const char *entry,
    const struct deal *d, struct err *err)
{
	struct rank_entry *e = calloc(1, sizeof(*e));
	struct match_list summary;
	size_t cut;
	int64_t t0;
	uint32_t k, mine = 0;

	if (e == NULL || (e->runs = calloc(rk->nshards, sizeof(*e->runs))) == NULL ||
	    (e->sums = calloc(rk->nshards, sizeof(*e->sums))) == NULL ||
	    (e->loaded = calloc(rk->nshards, 1)) == NULL) {
		if (e != NULL)
			rank_entry_free(e, rk->nshards);
		err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
		return NULL;
	}
	snprintf(e->entry, sizeof(e->entry), "%s", entry);
	for (k = 0; k < rk->nshards; k++)
		mine += e->loaded[k] = (uint8_t)substore_shard_ready(in->ss, k);
	cut = ranks_share(d, mine, rk->nshards, in->cfg->overbook);
	t0 = clock_mono_ms();
	if (match_run_new_split(in->matcher, d, clock_now(), cut, rk->nshards, e->runs,
	    &summary, err) < 0) {
		rank_entry_free(e, rk->nshards);
		return NULL;
	}
	log_info("event=deal_ranked deal=%s entry=%s shards=%u mirrored=%u cut=%zu "
	    "ranked=%zu ms=%lld", d->id, entry, (unsigned)rk->nshards, (unsigned)mine, cut,
	    e->runs[0] != NULL ? match_run_total(e->runs[0]) : (size_t)0,
	    (long long)(clock_mono_ms() - t0));
	if (ingest_sums_fill(e->sums, rk->nshards, 0, &summary) < 0) {
		match_list_free(&summary);
		rank_entry_free(e, rk->nshards);
		err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
		return NULL;
	}
	match_list_free(&summary);
	e->made_ms = clock_mono_ms();
	e->left = rk->nshards;
	e->next = rk->head;
	rk->head = e;
	return e;
}

struct match_run *
ingest_rank(struct ingest *in, const char *entry, const struct deal *d,
    struct ingest_sum *sum, struct err *err)
{
	struct ingest_ranks *rk = in->ranks;
	struct rank_entry *e;
	struct match_list summary;
	struct match_run *r;

	memset(sum, 0, sizeof(*sum));
	if (rk == NULL || rk->nshards < 2) {
		/* One shard (or no sharing): the whole ranking is this reader's. */
		if ((r = match_run_new(in->matcher, d, clock_now(), &summary, err)) == NULL)
			return NULL;
		if (ingest_sums_fill(sum, 1, 1, &summary) < 0) {
			match_list_free(&summary);
			match_run_free(r);
			ingest_sum_free(sum);
			err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
			return NULL;
		}
		match_list_free(&summary);
		return r;
	}
	ranks_expire(rk);
	for (e = rk->head; e != NULL && strcmp(e->entry, entry) != 0; e = e->next)
		;
	/* Not ranked here yet, or this shard's part was taken (an entry read again
	 * after a failed plan), or ranked before this shard's subscribers were in the
	 * mirror (it came to be served since): ranked again, and the new parts kept
	 * for the others. */
	if (e == NULL || e->runs[in->shard % rk->nshards] == NULL ||
	    !e->loaded[in->shard % rk->nshards]) {
		if (e != NULL) {
			struct rank_entry **pp;

			for (pp = &rk->head; *pp != e; pp = &(*pp)->next)
				;
			*pp = e->next;
			rank_entry_free(e, rk->nshards);
		}
		if ((e = ranks_make(in, rk, entry, d, err)) == NULL)
			return NULL;
	}
	r = ranks_take(rk, e, in->shard % rk->nshards, sum);
	match_run_rebind(r, d);
	return r;
}

void
ingest_set_ranks(struct ingest *in, struct ingest_ranks *rk)
{
	in->ranks = rk;
}

void
ingest_ranks_expire(struct ingest_ranks *rk)
{
	ranks_expire(rk);
}
