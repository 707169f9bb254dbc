/*
 * gwpool.h: which gateway a push may use now (stage: send).
 *
 * Pure policy that deliver.c asks before every send and tells every outcome: per
 * gateway a token bucket, an in-flight bound, a 429 pause, daily budgets (app-wide and
 * per recipient, per UTC day) and a circuit breaker; gateways of one channel are tried
 * in priority order. Time comes in as arguments only: now_ms is monotonic milliseconds
 * (intervals, deadlines), now_wall_s is epoch seconds from the clock interface (days).
 * It never sends, queues, logs, reads a clock or does I/O. Contract: docs/gateways.md,
 * "Choosing a gateway: limits, budgets, breaker".
 */
#ifndef DEALPUSH_GWPOOL_H
#define DEALPUSH_GWPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gw.h"
#include "model.h"

struct gwpool;

/* "No time will do": *retry_at_ms when only an in-flight request ending can help. */
#define GWPOOL_NEVER INT64_MAX

/* Breaker policy and budgets for every gateway of a pool. A field left 0 takes the
 * default in its comment; a negative one is refused. Copied by gwpool_new. */
struct gwpool_limits {
	long breaker_failures;    /* consecutive GW_RETRY that open the breaker; 5 */
	long breaker_window_ms;   /* rolling window of the ratio rule; 30000 */
	long breaker_window_min;  /* outcomes in the window before the ratio counts; 20 */
	double breaker_ratio;     /* GW_RETRY share of the window that opens it; 0.5.
	                           * Above 1 turns the ratio rule off. */
	long open_ms;             /* first cool-down of an open breaker; 5000 */
	long open_max_ms;         /* cap of the doubling cool-down; 60000 */
	long pause_default_ms;    /* 429 pause when no Retry-After came; 1000 */
	long recipients_max;      /* recipients counted per gateway per day; 65536 */
	/* NULL, or one entry per gateway (index i = cfgs[i]); 0 = no budget. Requests per
	 * UTC day for the whole app, and per recipient key per UTC day (X: 15,000 and
	 * 1,000 DMs). Copied. config.c will fill them from gateway.NAME.daily_budget and
	 * gateway.NAME.recipient_daily_budget. */
	const long *daily_budget;
	const long *recipient_daily_budget;
};

/* What the breaker of one gateway is doing. ORDER GWPOOL_STATE: gwpool_state_name. */
enum gwpool_breaker {
	GWPOOL_CLOSED = 0,   /* traffic flows */
	GWPOOL_OPEN,         /* skipped until the cool-down ends */
	GWPOOL_HALF_OPEN     /* cool-down over: one probe request may go */
};

/* A snapshot for metrics and the admin surface; strings are static or borrowed from
 * the config. */
struct gwpool_stats {
	const char *name;           /* the gateway's config name */
	enum gwpool_breaker breaker;
	const char *state;          /* "closed", "open", "half-open" */
	long in_flight;
	long max_in_flight;         /* 0 = unlimited */
	double tokens;              /* in the bucket now; -1 when the rate is unlimited */
	long failures;              /* consecutive GW_RETRY counted by the breaker */
	long window_outcomes;       /* outcomes in the rolling window ... */
	long window_failures;       /* ... and how many of them were GW_RETRY */
	long opened_count;          /* times the breaker opened (reopens included) */
	int64_t open_until_ms;      /* end of the cool-down; 0 when closed */
	int64_t paused_until_ms;    /* end of a 429 pause; 0 when none is running */
	int64_t sent_today;         /* requests started this UTC day */
	long budget;                /* daily budget; 0 = none */
	long recipient_budget;      /* per recipient per day; 0 = none */
	long recipients_today;      /* recipients counted this UTC day */
	int64_t recipients_untracked; /* starts today that found the recipient map full */
};

/*
 * Returns a pool with one entry per gateway, entry i for cfgs[i], or NULL with *err
 * (ERR_INPUT naming the bad field: a channel out of range, a negative or non-finite
 * rate or burst, a negative budget or limit; ERR_NOMEM). cfgs is borrowed and must
 * outlive the pool (names are read from it); the numbers in it and in *defaults
 * (which may be NULL) are copied, so a reload builds a new pool. n may be 0.
 */
struct gwpool *gwpool_new(const struct gw_config *cfgs, size_t n,
    const struct gwpool_limits *defaults, struct err *err);

/* Frees the pool. gwpool_free(NULL) does nothing. */
void gwpool_free(struct gwpool *p);

/* Number of gateways in the pool. */
size_t gwpool_count(const struct gwpool *p);

/*
 * Which gateway of channel ch may take one request to recipient_key (NULL: no
 * per-recipient budget applies) now. Returns 1 with *out_index set: the first usable
 * by priority (lower first, then config order). Returns 0 when none is usable now,
 * with *retry_at_ms = the earliest now_ms at which one could be, or GWPOOL_NEVER when
 * only an in-flight request ending can free one (ask again after gwpool_finished or
 * gwpool_cancelled). Returns -1 when the channel has no gateway at all. Changes
 * nothing: the choice is taken with gwpool_started.
 */
int gwpool_pick(const struct gwpool *p, enum channel ch, int64_t now_ms,
    int64_t now_wall_s, const char *recipient_key, size_t *out_index,
    int64_t *retry_at_ms);

/*
 * A request to recipient_key (may be NULL) is leaving through gateway i: takes a
 * token, counts it in flight and against today's budgets, and makes it the probe of a
 * half-open breaker. With a rate, it holds one of floor(rate_per_s) places of the
 * one-second window until a second after gwpool_finished (gwpool_cancelled frees it
 * at once: the request never left). Returns 0, or -1 changing nothing when i is out of range or
 * gwpool_pick would not choose i for it now. Budgets are not given back on failure or
 * cancel: a provider may count a request whose answer we never saw.
 */
int gwpool_started(struct gwpool *p, size_t i, int64_t now_ms, int64_t now_wall_s,
    const char *recipient_key);

/*
 * The request on gateway i ended with outcome. GW_RETRY is a failure of the gateway;
 * GW_SENT, GW_PERMANENT and GW_OPTED_OUT are successes of the gateway itself;
 * GW_RATE_LIMITED pauses the gateway until now_ms + retry_after_s (seconds; -1 when
 * not given: the default pause) and counts for neither. Returns 0, or -1 changing
 * nothing when i is out of range, nothing is in flight on it, or outcome is unknown.
 */
int gwpool_finished(struct gwpool *p, size_t i, enum gw_outcome outcome,
    long retry_after_s, int64_t now_ms);

/* The request on gateway i ended with no answer to judge (client shut down, or the
 * send was refused before leaving): frees its slot, and the probe slot if it was the
 * probe; the breaker learns nothing. Returns 0, or -1 as gwpool_finished. */
int gwpool_cancelled(struct gwpool *p, size_t i);

/* Fills *out for gateway i as of now. Returns 0, or -1 when i is out of range. */
int gwpool_state(const struct gwpool *p, size_t i, int64_t now_ms, int64_t now_wall_s,
    struct gwpool_stats *out);

/* "closed", "open", "half-open"; "?" for anything else. */
const char *gwpool_state_name(enum gwpool_breaker b);

/* Checks every internal invariant (tokens within the bucket, in-flight within its
 * bound, one probe at most and only when half-open, budgets not overspent, the
 * recipient map consistent). Returns 0, or -1 with *err naming the first broken one.
 * For tests and debug builds; cost is linear in the recipient map. */
int gwpool_check(const struct gwpool *p, struct err *err);

#endif
