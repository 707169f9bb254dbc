/*
 * metrics.h: counters, gauges and histograms in Prometheus text format (stage: all,
 * served by http).
 *
 * One struct metrics per process, no globals: the daemon creates it and hands it to
 * every stage that counts. The metrics themselves are a fixed table (enum metrics_id);
 * a label series is created on first use, at most series_max per metric, after which
 * new label sets are folded into one series whose every label is "other".
 * Updates never allocate once a series exists, never log and never fail silently:
 * each returns 0 or -1.
 */
#ifndef DEALPUSH_METRICS_H
#define DEALPUSH_METRICS_H

#include <stddef.h>

#include "err.h"

struct evbuffer;
struct metrics;

/* ORDER METRICS (the table in notifier/metrics.c follows this order) */
enum metrics_id {
	METRIC_DEALS_INGESTED = 0,      /* counter, no label */
	METRIC_DEALS_DEAD,              /* counter {reason} */
	METRIC_PUSHES,                  /* counter {outcome,channel,gateway} */
	METRIC_SKIPS,                   /* counter {reason} */
	METRIC_SEND_LATENCY,            /* histogram {gateway}, seconds */
	METRIC_STREAM_LAG,              /* gauge {stream}: entries waiting */
	METRIC_RULE_RELOADS,            /* counter {result} */
	METRIC_GATEWAY_BREAKER_STATE,   /* gauge {gateway}: 0 closed, 1 open, 2 half-open */
	METRIC_GATEWAY_IN_FLIGHT,       /* gauge {gateway} */
	METRIC_PLANNING_DEALS,          /* gauge */
	METRIC_PLANNING_STALLED,        /* gauge, seconds */
	METRIC_MIRROR_SUBSCRIBERS,      /* gauge */
	METRIC_MIRROR_READY,            /* gauge, 0 or 1 */
	METRIC_MIRROR_RELOADS,          /* gauge: full loads after the first */
	METRIC_REDIS_CONNECTS,          /* gauge {conn} */
	METRIC_REDIS_TIMEOUTS,          /* gauge {conn} */
	METRIC_XAUTH_EVENTS,            /* counter {gateway,event}: x-dm credentials */
	METRIC_HTTP_REFUSED,            /* counter {reason,addr} */
	METRIC_PAUSED,                  /* gauge, 0 or 1: sending paused */
	METRIC_GATEWAY_RATE_LIMITED,    /* counter {gateway}: 429 answers */
	METRIC_COUNT
};

#define METRICS_LABELS_MAX 3
#define METRICS_SERIES_MAX 1000         /* default series per metric before "other" */
#define METRICS_LABEL_VALUE_MAX 128     /* longer label values are cut (UTF-8 safe) */
#define METRICS_OTHER "other"           /* label value of the overflow series */

/* A NULL-terminated list of label values, in the order of the metric's label names:
 * metrics_inc(m, METRIC_PUSHES, METRICS_L("sent", "sms", "twilio"), 1). A metric
 * without labels takes NULL. */
#define METRICS_L(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Returns a registry with every metric of the table and no label series yet (the
 * label-less counter starts at 0), or NULL with *err (ERR_NOMEM). series_max bounds the
 * label series per metric; 0 means METRICS_SERIES_MAX. */
struct metrics *metrics_new(size_t series_max, struct err *err);

/* Frees m and every series. metrics_free(NULL) does nothing. */
void metrics_free(struct metrics *m);

/* Adds v to a counter (v >= 0) or a gauge (any sign). labels as METRICS_L(); values are
 * copied when the series is created. Returns 0, or -1 when id, the number of labels or
 * v is wrong for the metric, or a new series cannot be allocated (nothing counted). */
int metrics_inc(struct metrics *m, enum metrics_id id, const char *const *labels,
    double v);

/* Sets a gauge to v. Returns 0 or -1 as metrics_inc. */
int metrics_set(struct metrics *m, enum metrics_id id, const char *const *labels,
    double v);

/* Records one observation v (finite) in a histogram. Returns 0 or -1 as metrics_inc. */
int metrics_observe(struct metrics *m, enum metrics_id id, const char *const *labels,
    double v);

/* Reads a series without creating it: the value of a counter or gauge, the number of
 * observations of a histogram. Returns 1 and *out, or 0 when the series does not exist
 * (or the arguments are wrong). */
int metrics_value(const struct metrics *m, enum metrics_id id,
    const char *const *labels, double *out);

/* Number of label series of a metric (the "other" series included). */
size_t metrics_series_count(const struct metrics *m, enum metrics_id id);

/* The metric's exposed name ("dealpush_pushes_total"), or NULL for a bad id. */
const char *metrics_name(enum metrics_id id);

/* Appends the Prometheus text exposition (version 0.0.4) of every metric to out:
 * HELP and TYPE lines, then one line per series (histograms: cumulative _bucket lines
 * ending with le="+Inf", then _sum and _count), series in the order they were created.
 * Returns 0, or -1 when out of memory (out then holds a partial text: discard it). */
int metrics_render(const struct metrics *m, struct evbuffer *out);

#endif
