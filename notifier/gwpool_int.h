/*
 * gwpool_int.h: the pool's state, shared by gwpool.c (the pool), gwpool_rmap.c (the
 * per-recipient map) and gwpool_check.c (its invariants). Private to them; the
 * public face is include/gwpool.h.
 */
#ifndef DEALPUSH_GWPOOL_INT_H
#define DEALPUSH_GWPOOL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "gwpool.h"

#define GWPOOL_WBUCKETS 10      /* rolling window = this many equal slices */
#define GWPOOL_RMAP_MIN 64      /* first size of a recipient map (slots) */
#define GWPOOL_TOKEN_EPS 1e-9   /* float slack when a refill lands exactly on 1 */
#define GWPOOL_DAY_S 86400

/* One slice of the rolling window; `slice` is which one it counts (now / slice_ms). */
struct gwpool_wslice {
	int64_t slice;
	long outcomes;
	long failures;
};

/* One recipient counted today: a 64-bit hash of its key (0 = free slot), so the pool
 * keeps no phone number or user id. Two keys sharing a hash share a budget, which
 * can only make us stop early. */
struct gwpool_rslot {
	uint64_t key;
	uint32_t n;
};

/* Rates up to this keep a one-second window (below). The margin covers only the
 * rounding of both clocks to whole ms and their drift over a second: the arrival of
 * a request is bounded by its answer, not guessed from its start. */
#define GWPOOL_WINDOW_RATE_MAX 10000.0
#define GWPOOL_WINDOW_MS 1000
#define GWPOOL_WINDOW_MARGIN_MS 5

struct gwpool_gw {
	const struct gw_config *cfg;    /* borrowed: name and channel */
	/* limits, copied */
	double rate;                    /* tokens per second; 0 = unlimited */
	double cap;                     /* bucket size: burst, at least 1 */
	long max_in_flight;             /* 0 = unlimited */
	long budget;                    /* per UTC day; 0 = none */
	long rbudget;                   /* per recipient per UTC day; 0 = none */
	size_t rmax;                    /* recipients counted per day */
	/* token bucket */
	double tokens;
	int64_t refill_ms;
	int refill_set;
	/* The one-second window: a request holds one of wlimit = floor(rate) places
	 * from gwpool_started until a second after its answer (gwpool_finished), so
	 * no 1-second window at the receiver holds more than wlimit requests,
	 * whatever the burst and however late a request leaves after it was
	 * reserved (the claim round trip comes between) or travels: it arrives after
	 * its start and before its answer. Held places = in_flight + the ends in the
	 * last second; ends[] keeps the last wlimit answer times, oldest at
	 * ends_head, never decreasing. */
	int64_t *ends;
	size_t wlimit, ends_head, ends_used;
	/* flow */
	long in_flight;
	int64_t pause_until;            /* INT64_MIN: no pause */
	/* breaker: half-open is "open and the cool-down is over" */
	int open;
	int probe_out;                  /* the half-open probe is in flight */
	int64_t open_until;
	int64_t cooldown_ms;            /* of the current or next opening */
	long consec;
	long opened;
	struct gwpool_wslice win[GWPOOL_WBUCKETS];
	/* budgets, for UTC day `day` */
	int64_t day;
	int64_t sent_today;
	struct gwpool_rslot *rmap;
	size_t rcap;                    /* slots, a power of two, or 0 */
	size_t rlen;                    /* used slots */
	int64_t untracked;
};

struct gwpool {
	struct gwpool_limits lim;       /* with defaults filled; budget arrays not kept */
	int64_t slice_ms;
	struct gwpool_gw *g;
	size_t n;
	size_t *order;                  /* indices sorted by channel, priority, index */
	size_t ch_start[CH_COUNT + 1];  /* order[ch_start[c] .. ch_start[c+1]) is channel c */
};

/* a + b, saturating at INT64_MIN / INT64_MAX (gwpool.c). */
int64_t gwpool_add_sat(int64_t a, int64_t b);

/* Order: channel, then priority, then config index (gwpool.c). */
int gwpool_order_before(const struct gwpool *p, size_t a, size_t b);

/* ---- gwpool_rmap.c ---- */

/* FNV-1a, then the splitmix64 finalizer; never 0. */
uint64_t gwpool_key_hash(const char *s);

/* The slot holding key, or the free slot where it would go; rcap > 0 and not full. */
size_t gwpool_rmap_slot(const struct gwpool_gw *g, uint64_t key);

/* Requests to key counted today (0 when none). */
uint32_t gwpool_rmap_get(const struct gwpool_gw *g, uint64_t key);

/* Forgets every recipient (a new day). */
void gwpool_rmap_clear(struct gwpool_gw *g);

/* Counts one more request to key today; past rmax or out of memory it counts in
 * `untracked` instead. */
void gwpool_rmap_inc(struct gwpool_gw *g, uint64_t key);

#endif
