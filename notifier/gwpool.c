/*
 * gwpool.c: which gateway a push may use now (stage: send).
 *
 * Per gateway: a token bucket, an in-flight bound, a 429 pause, daily budgets (app-wide
 * and per recipient, per UTC day) and a circuit breaker. gwpool_pick only reads; every
 * change comes from gwpool_started / _finished / _cancelled. Time is always an argument
 * (monotonic ms for intervals, epoch seconds for days) and every sum on it saturates.
 * It must never do I/O, log, read a clock, keep a global, or send anything itself.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gwpool.h"
#include "gwpool_int.h"

/* ORDER GWPOOL_STATE */
static const char *const gwpool_state_names[] = { "closed", "open", "half-open" };

/* --- saturating time arithmetic ----------------------------------------------- */

int64_t
gwpool_add_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t
mul_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_mul_overflow(a, b, &r))
		return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
	return r;
}

/* a - b when a > b, else 0: elapsed time never runs backwards. */
static int64_t
elapsed_ms(int64_t a, int64_t b)
{
	int64_t r;

	if (a <= b)
		return 0;
	if (__builtin_sub_overflow(a, b, &r))
		return INT64_MAX;
	return r;
}

static int64_t
max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b != 0 && (a < 0) != (b < 0))
		q--;
	return q;
}

/* The UTC calendar day of epoch second s (day 0 = 1970-01-01). */
static int64_t
utc_day(int64_t wall_s)
{
	return floor_div(wall_s, GWPOOL_DAY_S);
}

/* now_ms of the next UTC midnight after now_wall_s, on the monotonic clock. */
static int64_t
next_midnight_ms(int64_t now_ms, int64_t now_wall_s)
{
	int64_t midnight = mul_sat(gwpool_add_sat(utc_day(now_wall_s), 1), GWPOOL_DAY_S);
	int64_t left_s = elapsed_ms(midnight, now_wall_s);

	return gwpool_add_sat(now_ms, mul_sat(left_s, 1000));
}

/* A double count of ms to int64, rounded up and saturated. */
static int64_t
ms_ceil(double ms)
{
	if (!(ms > 0))
		return 0;
	if (ms >= 9.0e18)
		return INT64_MAX;
	return (int64_t)ceil(ms);
}

/* --- breaker window ----------------------------------------------------------- */

static void
window_add(struct gwpool *p, struct gwpool_gw *g, int64_t now_ms, int failed)
{
	int64_t slice = floor_div(now_ms, p->slice_ms);
	struct gwpool_wslice *w = &g->win[(size_t)((slice % GWPOOL_WBUCKETS +
	    GWPOOL_WBUCKETS) % GWPOOL_WBUCKETS)];

	if (w->slice != slice) {
		w->slice = slice;
		w->outcomes = w->failures = 0;
	}
	if (w->outcomes < LONG_MAX)
		w->outcomes++;
	if (failed && w->failures < LONG_MAX)
		w->failures++;
}

/* Outcomes and failures in the GWPOOL_WBUCKETS slices ending with now's. */
static void
window_sum(const struct gwpool *p, const struct gwpool_gw *g, int64_t now_ms,
    long *outcomes, long *failures)
{
	int64_t cur = floor_div(now_ms, p->slice_ms);
	size_t k;

	*outcomes = *failures = 0;
	for (k = 0; k < GWPOOL_WBUCKETS; k++) {
		const struct gwpool_wslice *w = &g->win[k];
		if (w->outcomes == 0 || w->slice > cur ||
		    elapsed_ms(cur, w->slice) >= GWPOOL_WBUCKETS)
			continue;
		*outcomes = *outcomes > LONG_MAX - w->outcomes ? LONG_MAX :
		    *outcomes + w->outcomes;
		*failures = *failures > LONG_MAX - w->failures ? LONG_MAX :
		    *failures + w->failures;
	}
}

static void
window_clear(struct gwpool_gw *g)
{
	memset(g->win, 0, sizeof(g->win));
}

/* --- one gateway -------------------------------------------------------------- */

static double
tokens_at(const struct gwpool_gw *g, int64_t now_ms)
{
	double t;

	if (g->rate <= 0)
		return g->cap;
	if (!g->refill_set)
		return g->tokens;
	t = g->tokens + g->rate * (double)elapsed_ms(now_ms, g->refill_ms) / 1000.0;
	return t < g->cap ? t : g->cap;
}

static enum gwpool_breaker
breaker_at(const struct gwpool_gw *g, int64_t now_ms)
{
	if (!g->open)
		return GWPOOL_CLOSED;
	return now_ms < g->open_until ? GWPOOL_OPEN : GWPOOL_HALF_OPEN;
}

/* Budgets counted so far for the UTC day of now_wall_s (a new day starts at 0). */
static int64_t
sent_on(const struct gwpool_gw *g, int64_t now_wall_s)
{
	return utc_day(now_wall_s) == g->day ? g->sent_today : 0;
}

static uint32_t
recipient_sent_on(const struct gwpool_gw *g, int64_t now_wall_s, uint64_t key)
{
	return utc_day(now_wall_s) == g->day ? gwpool_rmap_get(g, key) : 0;
}

/* The end of the place an answer at end_ms holds. */
static int64_t
window_until(int64_t end_ms)
{
	return gwpool_add_sat(end_ms, GWPOOL_WINDOW_MS + GWPOOL_WINDOW_MARGIN_MS);
}

/*
 * 1 when one more request fits the one-second window now. Else 0, and either
 * *never = 1 (the requests in flight hold every place: only an answer helps) or *at
 * raised to when enough of the recent answers are a second old.
 */
static int
window_has_place(const struct gwpool_gw *g, int64_t now_ms, int *never, int64_t *at)
{
	size_t first = 0, recent, held, drop;

	while (first < g->ends_used &&
	    now_ms >= window_until(g->ends[(g->ends_head + first) % g->wlimit]))
		first++;
	recent = g->ends_used - first;
	held = (size_t)g->in_flight + recent;
	if (held < g->wlimit)
		return 1;
	if ((size_t)g->in_flight >= g->wlimit) {
		*never = 1;
		return 0;
	}
	drop = held - g->wlimit + 1;    /* 1..recent */
	*at = max64(*at, window_until(g->ends[(g->ends_head + first + drop - 1) %
	    g->wlimit]));
	return 0;
}

/* A request of g was answered at now_ms: its place is held a second longer. */
static void
window_answered(struct gwpool_gw *g, int64_t now_ms)
{
	int64_t e = now_ms, last;

	if (g->wlimit == 0)
		return;
	if (g->ends_used > 0) {
		last = g->ends[(g->ends_head + g->ends_used - 1) % g->wlimit];
		if (e < last)
			e = last;       /* the clock went back: hold longer, never shorter */
	}
	if (g->ends_used < g->wlimit) {
		g->ends[(g->ends_head + g->ends_used) % g->wlimit] = e;
		g->ends_used++;
	} else {
		g->ends[g->ends_head] = e;
		g->ends_head = (g->ends_head + 1) % g->wlimit;
	}
}

/*
 * 1 when gateway g may take one request (to `key` when has_key) now; else 0 with
 * *ready = the earliest now_ms at which it could, GWPOOL_NEVER when only a request
 * ending can help. Each check below turns true at one time and stays true as time
 * passes, so the latest of their times is exact.
 */
static int
gw_usable(const struct gwpool_gw *g, int64_t now_ms, int64_t now_wall_s, int has_key,
    uint64_t key, int64_t *ready)
{
	int64_t at = now_ms;
	int ok = 1, never = 0;
	double t;

	if (g->open) {
		/* the probe waits for requests started before the opening to end */
		if (g->probe_out || g->in_flight > 0) {
			ok = 0;
			never = 1;
		} else if (now_ms < g->open_until) {
			ok = 0;
			at = max64(at, g->open_until);
		}
	}
	if (g->max_in_flight > 0 && g->in_flight >= g->max_in_flight) {
		ok = 0;
		never = 1;
	}
	if (g->in_flight == LONG_MAX) {
		ok = 0;
		never = 1;
	}
	if (now_ms < g->pause_until) {
		ok = 0;
		at = max64(at, g->pause_until);
	}
	if (g->rate > 0 && (t = tokens_at(g, now_ms)) < 1.0 - GWPOOL_TOKEN_EPS) {
		ok = 0;
		/* aim half the slack short of 1 so rounding cannot push it a ms late */
		at = max64(at, gwpool_add_sat(now_ms, ms_ceil((1.0 - GWPOOL_TOKEN_EPS / 2 - t) *
		    1000.0 / g->rate)));
	}
	if (g->wlimit > 0 && !window_has_place(g, now_ms, &never, &at))
		ok = 0;
	if ((g->budget > 0 && sent_on(g, now_wall_s) >= g->budget) ||
	    (has_key && g->rbudget > 0 &&
	    recipient_sent_on(g, now_wall_s, key) >= (uint64_t)g->rbudget)) {
		ok = 0;
		at = max64(at, next_midnight_ms(now_ms, now_wall_s));
	}
	if (ok)
		return 1;
	*ready = never ? GWPOOL_NEVER : at;
	return 0;
}

static void
breaker_open(struct gwpool_gw *g, int64_t now_ms, int64_t cooldown_ms)
{
	g->open = 1;
	g->probe_out = 0;
	g->cooldown_ms = cooldown_ms;
	g->open_until = gwpool_add_sat(now_ms, cooldown_ms);
	if (g->opened < LONG_MAX)
		g->opened++;
}

static void
breaker_close(struct gwpool *p, struct gwpool_gw *g)
{
	g->open = 0;
	g->probe_out = 0;
	g->open_until = 0;
	g->cooldown_ms = p->lim.open_ms;
	g->consec = 0;
	window_clear(g);
}

/* --- construction ------------------------------------------------------------- */

static int
limit_default(long *v, long def, const char *field, struct err *err)
{
	if (*v < 0)
		return err_set(err, ERR_INPUT, "bad_limit", field, "%s: negative (%ld)",
		    field, *v);
	if (*v == 0)
		*v = def;
	return 0;
}

static int
limits_fill(struct gwpool_limits *l, const struct gwpool_limits *in, struct err *err)
{
	if (in != NULL)
		*l = *in;
	else
		memset(l, 0, sizeof(*l));
	l->daily_budget = l->recipient_daily_budget = NULL;
	if (limit_default(&l->breaker_failures, 5, "breaker_failures", err) < 0 ||
	    limit_default(&l->breaker_window_ms, 30000, "breaker_window_ms", err) < 0 ||
	    limit_default(&l->breaker_window_min, 20, "breaker_window_min", err) < 0 ||
	    limit_default(&l->open_ms, 5000, "open_ms", err) < 0 ||
	    limit_default(&l->open_max_ms, 60000, "open_max_ms", err) < 0 ||
	    limit_default(&l->pause_default_ms, 1000, "pause_default_ms", err) < 0 ||
	    limit_default(&l->recipients_max, 65536, "recipients_max", err) < 0)
		return -1;
	if (!isfinite(l->breaker_ratio) || l->breaker_ratio < 0)
		return err_set(err, ERR_INPUT, "bad_limit", "breaker_ratio",
		    "breaker_ratio: not a number >= 0");
	if (l->breaker_ratio == 0)
		l->breaker_ratio = 0.5;
	if (l->open_max_ms < l->open_ms)
		l->open_max_ms = l->open_ms;
	return 0;
}

static int
gw_init(struct gwpool *p, struct gwpool_gw *g, const struct gw_config *c, size_t i,
    const struct gwpool_limits *in, struct err *err)
{
	const char *name = c->name ? c->name : "?";
	long b = (in && in->daily_budget) ? in->daily_budget[i] : 0;
	long rb = (in && in->recipient_daily_budget) ? in->recipient_daily_budget[i] : 0;
	size_t k;

	if ((int)c->channel < 0 || (int)c->channel >= CH_COUNT)
		return err_set(err, ERR_INPUT, "bad_config", "channel",
		    "gateway.%s.channel: out of range (%d)", name, (int)c->channel);
	if (!isfinite(c->rate_per_s) || c->rate_per_s < 0)
		return err_set(err, ERR_INPUT, "bad_config", "rate_per_s",
		    "gateway.%s.rate_per_s: not a number >= 0", name);
	if (!isfinite(c->burst) || c->burst < 0)
		return err_set(err, ERR_INPUT, "bad_config", "burst",
		    "gateway.%s.burst: not a number >= 0", name);
	if (b < 0)
		return err_set(err, ERR_INPUT, "bad_config", "daily_budget",
		    "gateway.%s.daily_budget: negative (%ld)", name, b);
	if (rb < 0)
		return err_set(err, ERR_INPUT, "bad_config", "recipient_daily_budget",
		    "gateway.%s.recipient_daily_budget: negative (%ld)", name, rb);
	g->cfg = c;
	g->rate = c->rate_per_s;
	g->cap = c->burst >= 1 ? c->burst : 1;
	g->tokens = g->cap;
	if (g->rate > 0 && g->rate <= GWPOOL_WINDOW_RATE_MAX) {
		g->wlimit = (size_t)g->rate >= 1 ? (size_t)g->rate : 1;
		if ((g->ends = calloc(g->wlimit, sizeof(*g->ends))) == NULL)
			return err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory");
	}
	g->max_in_flight = c->max_in_flight > 0 ? c->max_in_flight : 0;
	g->budget = b;
	g->rbudget = rb;
	/* with an app budget, no more recipients than requests can appear in a day */
	g->rmax = (size_t)p->lim.recipients_max;
	if (b > 0 && (unsigned long)b < g->rmax)
		g->rmax = (size_t)b;
	g->pause_until = INT64_MIN;
	g->cooldown_ms = p->lim.open_ms;
	g->day = INT64_MIN;
	for (k = 0; k < GWPOOL_WBUCKETS; k++)
		g->win[k].slice = INT64_MIN;
	return 0;
}

/* Order: channel, then priority, then config index (stable insertion sort; n is a
 * handful). */
int
gwpool_order_before(const struct gwpool *p, size_t a, size_t b)
{
	const struct gw_config *x = p->g[a].cfg, *y = p->g[b].cfg;

	if (x->channel != y->channel)
		return x->channel < y->channel;
	if (x->priority != y->priority)
		return x->priority < y->priority;
	return a < b;
}

struct gwpool *
gwpool_new(const struct gw_config *cfgs, size_t n, const struct gwpool_limits *defaults,
    struct err *err)
{
	struct gwpool *p;
	size_t i, j, c;

	if (n > 0 && cfgs == NULL) {
		err_set(err, ERR_INPUT, "bad_config", NULL, "gwpool: no gateway configs");
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto nomem;
	if (limits_fill(&p->lim, defaults, err) < 0)
		goto err;
	p->slice_ms = p->lim.breaker_window_ms / GWPOOL_WBUCKETS;
	if (p->slice_ms < 1)
		p->slice_ms = 1;
	p->n = n;
	if (n > 0) {
		if ((p->g = calloc(n, sizeof(*p->g))) == NULL ||
		    (p->order = calloc(n, sizeof(*p->order))) == NULL)
			goto nomem;
	}
	for (i = 0; i < n; i++)
		if (gw_init(p, &p->g[i], &cfgs[i], i, defaults, err) < 0)
			goto err;
	for (i = 0; i < n; i++) {
		for (j = i; j > 0 && gwpool_order_before(p, i, p->order[j - 1]); j--)
			p->order[j] = p->order[j - 1];
		p->order[j] = i;
	}
	for (c = 0, i = 0; c <= CH_COUNT; c++) {
		while (i < n && (size_t)p->g[p->order[i]].cfg->channel < c)
			i++;
		p->ch_start[c] = i;
	}
	return p;
nomem:
	err_set(err, ERR_NOMEM, "nomem", NULL, "gwpool: out of memory");
err:
	gwpool_free(p);
	return NULL;
}

void
gwpool_free(struct gwpool *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n && p->g != NULL; i++) {
		free(p->g[i].rmap);
		free(p->g[i].ends);
	}
	free(p->g);
	free(p->order);
	free(p);
}

size_t
gwpool_count(const struct gwpool *p)
{
	return p ? p->n : 0;
}

/* --- the decisions ------------------------------------------------------------ */

int
gwpool_pick(const struct gwpool *p, enum channel ch, int64_t now_ms, int64_t now_wall_s,
    const char *recipient_key, size_t *out_index, int64_t *retry_at_ms)
{
	int64_t best = GWPOOL_NEVER, ready;
	uint64_t key = recipient_key ? gwpool_key_hash(recipient_key) : 0;
	size_t k;

	if (p == NULL || (int)ch < 0 || (int)ch >= CH_COUNT ||
	    p->ch_start[ch] == p->ch_start[ch + 1])
		return -1;
	for (k = p->ch_start[ch]; k < p->ch_start[ch + 1]; k++) {
		size_t i = p->order[k];
		if (gw_usable(&p->g[i], now_ms, now_wall_s, recipient_key != NULL, key,
		    &ready)) {
			*out_index = i;
			return 1;
		}
		if (ready < best)
			best = ready;
	}
	*retry_at_ms = best;
	return 0;
}

int
gwpool_started(struct gwpool *p, size_t i, int64_t now_ms, int64_t now_wall_s,
    const char *recipient_key)
{
	struct gwpool_gw *g;
	uint64_t key = recipient_key ? gwpool_key_hash(recipient_key) : 0;
	int64_t ready, day = utc_day(now_wall_s);

	if (p == NULL || i >= p->n)
		return -1;
	g = &p->g[i];
	if (!gw_usable(g, now_ms, now_wall_s, recipient_key != NULL, key, &ready))
		return -1;
	/* any change of day starts fresh budgets, also when the wall clock went back */
	if (day != g->day) {
		g->day = day;
		g->sent_today = 0;
		gwpool_rmap_clear(g);
	}
	if (g->rate > 0) {
		g->tokens = tokens_at(g, now_ms) - 1.0;
		if (g->tokens < 0)
			g->tokens = 0;
		if (!g->refill_set || now_ms > g->refill_ms)
			g->refill_ms = now_ms;
		g->refill_set = 1;
	}
	g->in_flight++;
	if (g->open)
		g->probe_out = 1;       /* usable while open: the half-open probe */
	g->sent_today = gwpool_add_sat(g->sent_today, 1);
	if (recipient_key != NULL && g->rbudget > 0)
		gwpool_rmap_inc(g, key);
	return 0;
}

int
gwpool_finished(struct gwpool *p, size_t i, enum gw_outcome outcome,
    long retry_after_s, int64_t now_ms)
{
	struct gwpool_gw *g;
	long outcomes, failures;
	int failed;

	if (p == NULL || i >= p->n || p->g[i].in_flight <= 0)
		return -1;
	switch (outcome) {
	case GW_SENT:
	case GW_PERMANENT:
	case GW_OPTED_OUT:
	case GW_RETRY:
	case GW_RATE_LIMITED:
		break;
	default:
		return -1;
	}
	g = &p->g[i];
	g->in_flight--;
	window_answered(g, now_ms);
	if (outcome == GW_RATE_LIMITED) {
		int64_t pause = retry_after_s < 0 ? p->lim.pause_default_ms :
		    mul_sat(retry_after_s, 1000);
		g->pause_until = max64(g->pause_until, gwpool_add_sat(now_ms, pause));
		/* a refused probe proves nothing: the next one goes after the pause */
		g->probe_out = 0;
		return 0;
	}
	failed = outcome == GW_RETRY;
	if (g->open) {
		if (!g->probe_out)
			return 0;       /* started before the opening: already judged */
		if (failed)
			breaker_open(g, now_ms, g->cooldown_ms > p->lim.open_max_ms / 2 ?
			    p->lim.open_max_ms : g->cooldown_ms * 2);
		else
			breaker_close(p, g);
		return 0;
	}
	window_add(p, g, now_ms, failed);
	if (!failed) {
		g->consec = 0;
		return 0;
	}
	if (g->consec < LONG_MAX)
		g->consec++;
	window_sum(p, g, now_ms, &outcomes, &failures);
	if (g->consec >= p->lim.breaker_failures ||
	    (outcomes >= p->lim.breaker_window_min &&
	    (double)failures >= p->lim.breaker_ratio * (double)outcomes))
		breaker_open(g, now_ms, p->lim.open_ms);
	return 0;
}

int
gwpool_cancelled(struct gwpool *p, size_t i)
{
	if (p == NULL || i >= p->n || p->g[i].in_flight <= 0)
		return -1;
	/* It never reached the gateway (or we are stopping): its window place is
	 * free at once. */
	p->g[i].in_flight--;
	p->g[i].probe_out = 0;  /* only ever set while it is the one request in flight */
	return 0;
}

/* --- observing ---------------------------------------------------------------- */

const char *
gwpool_state_name(enum gwpool_breaker b)
{
	if ((int)b < 0 || (size_t)b >= sizeof(gwpool_state_names) /
	    sizeof(gwpool_state_names[0]))
		return "?";
	return gwpool_state_names[b];
}

int
gwpool_state(const struct gwpool *p, size_t i, int64_t now_ms, int64_t now_wall_s,
    struct gwpool_stats *out)
{
	const struct gwpool_gw *g;
	int today;

	if (p == NULL || i >= p->n)
		return -1;
	g = &p->g[i];
	today = utc_day(now_wall_s) == g->day;
	memset(out, 0, sizeof(*out));
	out->name = g->cfg->name ? g->cfg->name : "?";
	out->breaker = breaker_at(g, now_ms);
	out->state = gwpool_state_name(out->breaker);
	out->in_flight = g->in_flight;
	out->max_in_flight = g->max_in_flight;
	out->tokens = g->rate > 0 ? tokens_at(g, now_ms) : -1;
	out->failures = g->consec;
	window_sum(p, g, now_ms, &out->window_outcomes, &out->window_failures);
	out->opened_count = g->opened;
	out->open_until_ms = g->open ? g->open_until : 0;
	out->paused_until_ms = now_ms < g->pause_until ? g->pause_until : 0;
	out->sent_today = today ? g->sent_today : 0;
	out->budget = g->budget;
	out->recipient_budget = g->rbudget;
	out->recipients_today = today ? (long)g->rlen : 0;
	out->recipients_untracked = today ? g->untracked : 0;
	return 0;
}
