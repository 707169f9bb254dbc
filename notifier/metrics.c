/*
 * metrics.c: the metrics registry and its Prometheus text exposition (stage: all; read
 * by http).
 *
 * A static table names every metric, its type, help text, label names and (for
 * histograms) bucket bounds. Each metric keeps its label series in a chained hash table
 * plus an array in creation order, which is the order they are rendered in. The number
 * of series per metric is bounded; past the bound every new label set lands in one
 * "other" series. It must never do I/O, read a clock or keep a global.
 */
#include <math.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "metrics.h"

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM
};

struct metrics_def {
	const char *name;
	enum metrics_type type;
	const char *help;
	size_t nlabels;
	const char *labels[METRICS_LABELS_MAX];
	const double *buckets;          /* histograms: upper bounds, ascending, no +Inf */
	size_t nbuckets;
};

/* 1 ms to 10 s: a gateway answer slower than that is a timeout anyway. */
static const double metrics_latency_buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define METRICS_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ORDER METRICS */
static const struct metrics_def metrics_defs[METRIC_COUNT] = {
	{ "dealpush_deals_ingested_total", METRICS_COUNTER,
	  "Deals read from the deals stream and accepted by the parser.",
	  0, { NULL }, NULL, 0 },
	{ "dealpush_deals_dead_total", METRICS_COUNTER,
	  "Deal entries dead-lettered to deals:dead, by reason.",
	  1, { "reason" }, NULL, 0 },
	{ "dealpush_pushes_total", METRICS_COUNTER,
	  "Pushes with a final outcome, by outcome, channel and gateway.",
	  3, { "outcome", "channel", "gateway" }, NULL, 0 },
	{ "dealpush_skips_total", METRICS_COUNTER,
	  "Recipients not sent to, by reason: at admission, at the claim just before"
	  " the request (cancelled, expired, no_consent), and deferred for quiet hours.",
	  1, { "reason" }, NULL, 0 },
	{ "dealpush_send_latency_seconds", METRICS_HISTOGRAM,
	  "Time from a gateway request's start to its answer, by gateway.",
	  1, { "gateway" },
	  metrics_latency_buckets, METRICS_NELEM(metrics_latency_buckets) },
	{ "dealpush_stream_lag", METRICS_GAUGE,
	  "Entries waiting on a stream for this consumer group.",
	  1, { "stream" }, NULL, 0 },
	{ "dealpush_rule_reloads_total", METRICS_COUNTER,
	  "Rule folder reloads, by result.",
	  1, { "result" }, NULL, 0 },
	{ "dealpush_gateway_breaker_state", METRICS_GAUGE,
	  "Circuit breaker state of a gateway: 0 closed, 1 open, 2 half-open.",
	  1, { "gateway" }, NULL, 0 },
	{ "dealpush_gateway_in_flight", METRICS_GAUGE,
	  "Requests in flight on a gateway.",
	  1, { "gateway" }, NULL, 0 },
	{ "dealpush_planning_deals", METRICS_GAUGE,
	  "Deals being planned now (ranked, their jobs still being written).",
	  0, { NULL }, NULL, 0 },
	{ "dealpush_planning_stalled_seconds", METRICS_GAUGE,
	  "Longest time a deal being planned has gone without a chunk written.",
	  0, { NULL }, NULL, 0 },
	{ "dealpush_mirror_subscribers", METRICS_GAUGE,
	  "Subscribers in this process's mirror.",
	  0, { NULL }, NULL, 0 },
	{ "dealpush_mirror_ready", METRICS_GAUGE,
	  "1 once the mirror has loaded every subscriber, else 0.",
	  0, { NULL }, NULL, 0 },
	{ "dealpush_mirror_reloads", METRICS_GAUGE,
	  "Full loads of the mirror after the first (a reconnect, a gap in the change stream).",
	  0, { NULL }, NULL, 0 },
	{ "dealpush_redis_connects", METRICS_GAUGE,
	  "Successful connects of a Redis connection since start (1 = never reconnected).",
	  1, { "conn" }, NULL, 0 },
	{ "dealpush_redis_command_timeouts", METRICS_GAUGE,
	  "Commands on a Redis connection whose server stayed silent past the deadline.",
	  1, { "conn" }, NULL, 0 },
	{ "dealpush_xauth_events_total", METRICS_COUNTER,
	  "x-dm credentials: refreshed, refresh_failed, store_failed, rejected_401,"
	  " rejected_403 (the gateway is paused; DM consent is untouched).",
	  2, { "gateway", "event" }, NULL, 0 },
	{ "dealpush_http_refused_total", METRICS_COUNTER,
	  "HTTP connections and requests refused (connection caps, deadlines, bad heads, "
	  "4xx answers), by reason and client address.",
	  2, { "reason", "addr" }, NULL, 0 },
	{ "dealpush_paused", METRICS_GAUGE,
	  "1 while sending is paused (POST /v1/pause, dealpushctl pause), else 0.",
	  0, { NULL }, NULL, 0 },
	{ "dealpush_gateway_rate_limited_total", METRICS_COUNTER,
	  "Answers 429 (rate limited) from a gateway, which pause it.",
	  1, { "gateway" }, NULL, 0 },
};

/* One label series. Allocated in one block: the struct, the bucket counts, then the
 * label values (NUL-terminated, already cleaned), which label[] points into. */
struct metrics_series {
	struct metrics_series *next;    /* hash chain */
	uint32_t hash;
	double value;                   /* counter and gauge */
	double sum;                     /* histogram */
	uint64_t count;                 /* histogram */
	uint64_t *bucket;               /* histogram: per bucket, not cumulative */
	const char *label[METRICS_LABELS_MAX];
};

struct metrics_family {
	const struct metrics_def *def;
	struct metrics_series **table;  /* hash buckets, ntable a power of two */
	size_t ntable;
	struct metrics_series **order;  /* creation order */
	size_t nseries;
	size_t cap;
	struct metrics_series *other;   /* the overflow series, once created */
	int warned;                     /* the overflow was logged once */
};

struct metrics {
	size_t series_max;
	struct metrics_family fam[METRIC_COUNT];
};

/* Cleaned label values of one call. */
struct metrics_key {
	char value[METRICS_LABELS_MAX][METRICS_LABEL_VALUE_MAX + 1];
	size_t len[METRICS_LABELS_MAX];
	uint32_t hash;
};

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 if invalid. */
static size_t metrics_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > avail)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Copies src into dst (METRICS_LABEL_VALUE_MAX + 1 bytes): invalid UTF-8 bytes become
 * '?', and the copy stops before a character that would not fit. Returns the length. */
static size_t metrics_clean(const char *src, char *dst)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t avail = strlen(src), o = 0, n;

	while (avail > 0) {
		n = metrics_utf8_len(s, avail);
		if (o + (n ? n : 1) > METRICS_LABEL_VALUE_MAX)
			break;
		if (n == 0) {
			dst[o++] = '?';
			n = 1;
		} else {
			memcpy(dst + o, s, n);
			o += n;
		}
		s += n;
		avail -= n;
	}
	dst[o] = '\0';
	return o;
}

/* FNV-1a over the values, each followed by 0xff (never in cleaned UTF-8), so that
 * ("ab", "c") and ("a", "bc") differ. */
static uint32_t metrics_hash(const struct metrics_key *k, size_t nlabels)
{
	uint32_t h = 2166136261u;
	size_t i, j;

	for (i = 0; i < nlabels; i++) {
		for (j = 0; j < k->len[i]; j++) {
			h ^= (unsigned char)k->value[i][j];
			h *= 16777619u;
		}
		h ^= 0xffu;
		h *= 16777619u;
	}
	return h;
}

/* Fills k from labels. Returns 0, or -1 when the count does not match the metric. */
static int metrics_key_make(const struct metrics_def *def, const char *const *labels,
    struct metrics_key *k)
{
	size_t i = 0;

	if (labels != NULL)
		for (; labels[i] != NULL; i++)
			if (i >= def->nlabels)
				return -1;
	if (i != def->nlabels)
		return -1;
	for (i = 0; i < def->nlabels; i++)
		k->len[i] = metrics_clean(labels[i], k->value[i]);
	k->hash = metrics_hash(k, def->nlabels);
	return 0;
}

static struct metrics_series *metrics_find(const struct metrics_family *f,
    const struct metrics_key *k)
{
	struct metrics_series *s;
	size_t i;

	for (s = f->table[k->hash & (f->ntable - 1)]; s != NULL; s = s->next) {
		if (s->hash != k->hash)
			continue;
		for (i = 0; i < f->def->nlabels; i++)
			if (strcmp(s->label[i], k->value[i]) != 0)
				break;
		if (i == f->def->nlabels)
			return s;
	}
	return NULL;
}

/* Creates the series for k and links it. Returns it, or NULL when out of memory. */
static struct metrics_series *metrics_series_add(struct metrics_family *f,
    const struct metrics_key *k)
{
	const struct metrics_def *def = f->def;
	size_t head = (sizeof(struct metrics_series) + 7) & ~(size_t)7;
	size_t nb = def->nbuckets + 1;  /* + the +Inf bucket */
	size_t size = head, i;
	struct metrics_series *s, **order;
	char *p;

	if (def->type == METRICS_HISTOGRAM)
		size += nb * sizeof(uint64_t);
	for (i = 0; i < def->nlabels; i++)
		size += k->len[i] + 1;
	if (f->nseries == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;

		if ((order = realloc(f->order, cap * sizeof(*order))) == NULL)
			return NULL;
		f->order = order;
		f->cap = cap;
	}
	if ((s = calloc(1, size)) == NULL)
		return NULL;
	p = (char *)s + head;
	if (def->type == METRICS_HISTOGRAM) {
		s->bucket = (uint64_t *)(void *)p;
		p += nb * sizeof(uint64_t);
	}
	for (i = 0; i < def->nlabels; i++) {
		memcpy(p, k->value[i], k->len[i] + 1);
		s->label[i] = p;
		p += k->len[i] + 1;
	}
	s->hash = k->hash;
	s->next = f->table[k->hash & (f->ntable - 1)];
	f->table[k->hash & (f->ntable - 1)] = s;
	f->order[f->nseries++] = s;
	return s;
}

/* The series for labels, created on first use (or the "other" series past the bound).
 * NULL on wrong labels or out of memory. */
static struct metrics_series *metrics_lookup(struct metrics *m, enum metrics_id id,
    const char *const *labels, enum metrics_type want, int want_gauge_or_counter)
{
	struct metrics_family *f;
	struct metrics_key k;
	struct metrics_series *s;
	size_t i;

	if (m == NULL || (unsigned)id >= METRIC_COUNT)
		return NULL;
	f = &m->fam[id];
	if (want_gauge_or_counter) {
		if (f->def->type == METRICS_HISTOGRAM)
			return NULL;
	} else if (f->def->type != want) {
		return NULL;
	}
	if (metrics_key_make(f->def, labels, &k) < 0)
		return NULL;
	if ((s = metrics_find(f, &k)) != NULL)
		return s;
	if (f->nseries < m->series_max || f->def->nlabels == 0)
		return metrics_series_add(f, &k);
	if (f->other != NULL)
		return f->other;
	if (!f->warned) {
		log_warnx("event=metrics_series_capped metric=%s max=%zu",
		    f->def->name, m->series_max);
		f->warned = 1;
	}
	for (i = 0; i < f->def->nlabels; i++)
		k.len[i] = metrics_clean(METRICS_OTHER, k.value[i]);
	k.hash = metrics_hash(&k, f->def->nlabels);
	/* A real label set spelled "other" may already exist: share it. */
	if ((s = metrics_find(f, &k)) == NULL)
		s = metrics_series_add(f, &k);
	f->other = s;
	return s;
}

struct metrics *metrics_new(size_t series_max, struct err *err)
{
	struct metrics *m;
	struct metrics_key k;
	size_t i, ntable;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto nomem;
	m->series_max = series_max ? series_max : METRICS_SERIES_MAX;
	for (ntable = 16; ntable < m->series_max && ntable < 4096; ntable *= 2)
		;
	for (i = 0; i < METRIC_COUNT; i++) {
		struct metrics_family *f = &m->fam[i];

		f->def = &metrics_defs[i];
		f->ntable = f->def->nlabels ? ntable : 1;
		if ((f->table = calloc(f->ntable, sizeof(*f->table))) == NULL)
			goto nomem;
		/* A metric without labels always has its one series, so it renders 0. */
		if (f->def->nlabels == 0) {
			memset(&k, 0, sizeof(k));
			k.hash = metrics_hash(&k, 0);
			if (metrics_series_add(f, &k) == NULL)
				goto nomem;
		}
	}
	return m;
nomem:
	metrics_free(m);
	err_set(err, ERR_NOMEM, "nomem", NULL, "metrics: out of memory");
	return NULL;
}

void metrics_free(struct metrics *m)
{
	size_t i, j;

	if (m == NULL)
		return;
	for (i = 0; i < METRIC_COUNT; i++) {
		for (j = 0; j < m->fam[i].nseries; j++)
			free(m->fam[i].order[j]);
		free(m->fam[i].order);
		free(m->fam[i].table);
	}
	free(m);
}

int metrics_inc(struct metrics *m, enum metrics_id id, const char *const *labels,
    double v)
{
	struct metrics_series *s;

	if (!isfinite(v))
		return -1;
	if ((s = metrics_lookup(m, id, labels, METRICS_COUNTER, 1)) == NULL)
		return -1;
	if (m->fam[id].def->type == METRICS_COUNTER && v < 0)
		return -1;
	s->value += v;
	return 0;
}

int metrics_set(struct metrics *m, enum metrics_id id, const char *const *labels,
    double v)
{
	struct metrics_series *s;

	if (isnan(v))
		return -1;
	if ((s = metrics_lookup(m, id, labels, METRICS_GAUGE, 0)) == NULL)
		return -1;
	s->value = v;
	return 0;
}

int metrics_observe(struct metrics *m, enum metrics_id id, const char *const *labels,
    double v)
{
	struct metrics_series *s;
	const struct metrics_def *def;
	size_t b;

	if (!isfinite(v))
		return -1;
	if ((s = metrics_lookup(m, id, labels, METRICS_HISTOGRAM, 0)) == NULL)
		return -1;
	def = m->fam[id].def;
	for (b = 0; b < def->nbuckets && v > def->buckets[b]; b++)
		;
	s->bucket[b]++;         /* b == nbuckets is the +Inf bucket */
	s->count++;
	s->sum += v;
	return 0;
}

int metrics_value(const struct metrics *m, enum metrics_id id,
    const char *const *labels, double *out)
{
	const struct metrics_family *f;
	struct metrics_key k;
	const struct metrics_series *s;

	if (m == NULL || (unsigned)id >= METRIC_COUNT)
		return 0;
	f = &m->fam[id];
	if (metrics_key_make(f->def, labels, &k) < 0 || (s = metrics_find(f, &k)) == NULL)
		return 0;
	*out = f->def->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
	return 1;
}

size_t metrics_series_count(const struct metrics *m, enum metrics_id id)
{
	if (m == NULL || (unsigned)id >= METRIC_COUNT)
		return 0;
	return m->fam[id].nseries;
}

const char *metrics_name(enum metrics_id id)
{
	if ((unsigned)id >= METRIC_COUNT)
		return NULL;
	return metrics_defs[id].name;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as v; Inf and NaN as Prometheus
 * spells them. */
static void metrics_fmt_double(double v, char *buf, size_t size)
{
	int p;

	if (isnan(v)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, size, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (p = 15; p <= 17; p++) {
		snprintf(buf, size, "%.*g", p, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* Appends s with the escapes of the text format: backslash and newline always, the
 * double quote too when quote is set (label values; HELP text leaves it alone). */
static int metrics_add_escaped(struct evbuffer *out, const char *s, int quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (esc == NULL)
			continue;
		if (evbuffer_add(out, run, (size_t)(s - run)) < 0 ||
		    evbuffer_add(out, esc, 2) < 0)
			return -1;
		run = s + 1;
	}
	return evbuffer_add(out, run, (size_t)(s - run));
}

/* Appends `name{l1="v1",...,extra="extra_value"} ` (braces only when there are labels). */
static int metrics_add_series_name(struct evbuffer *out, const char *name,
    const char *suffix, const struct metrics_def *def, const struct metrics_series *s,
    const char *extra, const char *extra_value)
{
	size_t i;
	int n = 0;

	if (evbuffer_add_printf(out, "%s%s", name, suffix) < 0)
		return -1;
	if (def->nlabels == 0 && extra == NULL)
		return evbuffer_add(out, " ", 1);
	if (evbuffer_add(out, "{", 1) < 0)
		return -1;
	for (i = 0; i < def->nlabels; i++) {
		if (evbuffer_add_printf(out, "%s%s=\"", n++ ? "," : "",
		    def->labels[i]) < 0 ||
		    metrics_add_escaped(out, s->label[i], 1) < 0 ||
		    evbuffer_add(out, "\"", 1) < 0)
			return -1;
	}
	if (extra != NULL && evbuffer_add_printf(out, "%s%s=\"%s\"", n ? "," : "", extra,
	    extra_value) < 0)
		return -1;
	return evbuffer_add(out, "} ", 2);
}

static int metrics_render_series(struct evbuffer *out, const struct metrics_def *def,
    const struct metrics_series *s)
{
	char num[40], le[40];
	uint64_t cum = 0;
	size_t b;

	if (def->type != METRICS_HISTOGRAM) {
		metrics_fmt_double(s->value, num, sizeof(num));
		if (metrics_add_series_name(out, def->name, "", def, s, NULL, NULL) < 0 ||
		    evbuffer_add_printf(out, "%s\n", num) < 0)
			return -1;
		return 0;
	}
	for (b = 0; b <= def->nbuckets; b++) {
		cum += s->bucket[b];
		if (b < def->nbuckets)
			metrics_fmt_double(def->buckets[b], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		if (metrics_add_series_name(out, def->name, "_bucket", def, s, "le",
		    le) < 0 || evbuffer_add_printf(out, "%" PRIu64 "\n", cum) < 0)
			return -1;
	}
	metrics_fmt_double(s->sum, num, sizeof(num));
	if (metrics_add_series_name(out, def->name, "_sum", def, s, NULL, NULL) < 0 ||
	    evbuffer_add_printf(out, "%s\n", num) < 0 ||
	    metrics_add_series_name(out, def->name, "_count", def, s, NULL, NULL) < 0 ||
	    evbuffer_add_printf(out, "%" PRIu64 "\n", s->count) < 0)
		return -1;
	return 0;
}

int metrics_render(const struct metrics *m, struct evbuffer *out)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	size_t i, j;

	if (m == NULL || out == NULL)
		return -1;
	for (i = 0; i < METRIC_COUNT; i++) {
		const struct metrics_family *f = &m->fam[i];

		if (evbuffer_add_printf(out, "# HELP %s ", f->def->name) < 0 ||
		    metrics_add_escaped(out, f->def->help, 0) < 0 ||
		    evbuffer_add_printf(out, "\n# TYPE %s %s\n", f->def->name,
		    type_names[f->def->type]) < 0)
			return -1;
		for (j = 0; j < f->nseries; j++)
			if (metrics_render_series(out, f->def, f->order[j]) < 0)
				return -1;
	}
	return 0;
}
