/*
 * substore.c: the in-memory mirror of Redis' subscribers (stage: match).
 *
 * A dense array of compact records for scans plus an open-addressing id index of
 * 32-bit positions. Reads through one dedicated connection: HSCAN pages at start and
 * after each reconnect, then XREAD BLOCK on "subscribers:changes" with HGETs for the
 * ids it names. After every XREAD it asks XINFO STREAM whether entries past its
 * position were trimmed or deleted (MAXLEN, MINID, a bulk import; found by counting
 * entries, since a trim leaves no mark) and reloads everything when they were: a
 * change it never read must not be missed silently.
 * Bounded work per callback (one page, one batch of changes). Never trusts what Redis
 * holds: every stored subscriber is parsed and validated again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "intern.h"
#include "log.h"
#include "streampos.h"
#include "substore.h"
#include "subscriber.h"

#define SUBSTORE_PAGE "1000"
#define SUBSTORE_CHANGES_BATCH "1000"

/* The most subscribers one mirror holds: positions in the index are 32-bit. */
#define SUBSTORE_MAX ((size_t)UINT32_MAX - 1)

/* What the store does next on its connection; a failed step is retried. */
enum substore_step {
	SUBSTORE_TAIL,             /* XREVRANGE: where the change feed starts */
	SUBSTORE_SCAN,             /* HSCAN from cursor */
	SUBSTORE_FEED              /* XREAD the change feed after last_id */
};

struct substore {
	struct rconn *rc;
	struct event *retry;       /* runs the current step again after a failure */
	long retry_ms;             /* backoff: doubles per failure, reset on success */
	long retry_max_ms;
	enum substore_step step;
	char cursor[64];           /* HSCAN cursor of the load in progress */
	int busy;                  /* a command of the current step is out */
	long block_ms;
	substore_change_fn *on_change;
	substore_loaded_fn *on_loaded;
	void *arg;
	struct subscriber **all;   /* dense */
	uint8_t *seen;             /* parallel to all: load generation that last saw it */
	size_t n, cap;
	uint32_t *index;           /* open addressing: position in all + 1; 0 = empty */
	size_t index_cap;          /* power of two */
	int ready;
	int stopped;
	int loading;
	uint8_t gen;               /* of the load in progress or the last */
	char last_id[64];          /* last change feed entry applied */
	char batch_id[64];         /* last entry of the batch whose HGETs are out */
	char read_from[64];        /* the id the XREAD out read after */
	size_t pending;            /* replies of one feed round still out (XREAD, XINFO,
	                            * HGETs) */
	int gets_failed;           /* one of them failed: the batch is read again */
	int gap;                   /* XINFO showed entries past read_from deleted */
	int counted;               /* Redis counts entries-added: added_seen is kept */
	unsigned long long added_seen; /* entries-added at the load's start plus every
	                            * entry read since */
	unsigned long long batch_n; /* entries in the batch whose HGETs are out */
	/* health (substore_stats) */
	enum substore_reason reason;
	unsigned long connects;
	unsigned long loads;
	size_t loaded;             /* subscribers read by the load in progress or last */
	struct timespec load_started;
	double last_load_s;
};

static void substore_run(struct substore *ss);

static size_t
hash_str(const char *s)
{
	size_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* Position in the index where id is or would go. */
static size_t
substore_probe(const struct substore *ss, const char *id)
{
	size_t mask = ss->index_cap - 1, i = hash_str(id) & mask;

	while (ss->index[i] != 0 && strcmp(ss->all[ss->index[i] - 1]->id, id) != 0)
		i = (i + 1) & mask;
	return i;
}

/* Room for one more subscriber; -1 (nothing changed) on out of memory or when the
 * mirror is full. */
static int
substore_grow(struct substore *ss)
{
	size_t i, newcap;
	uint32_t *old = ss->index;

	if (ss->n >= SUBSTORE_MAX)
		return -1;
	if (ss->n == ss->cap) {
		size_t c = ss->cap ? ss->cap * 2 : 1024;
		struct subscriber **a;
		uint8_t *g;

		if ((a = realloc(ss->all, c * sizeof(*a))) == NULL)
			return -1;
		ss->all = a;
		if ((g = realloc(ss->seen, c * sizeof(*g))) == NULL)
			return -1;
		ss->seen = g;
		ss->cap = c;
	}
	if ((ss->n + 1) * 2 <= ss->index_cap)
		return 0;
	newcap = ss->index_cap ? ss->index_cap * 2 : 2048;
	if ((ss->index = calloc(newcap, sizeof(*ss->index))) == NULL) {
		ss->index = old;
		return -1;
	}
	ss->index_cap = newcap;
	for (i = 0; i < ss->n; i++)
		ss->index[substore_probe(ss, ss->all[i]->id)] = (uint32_t)(i + 1);
	free(old);
	return 0;
}

/* Removes index slot i and re-inserts the cluster after it (linear probing). */
static void
substore_index_delete(struct substore *ss, size_t i)
{
	size_t mask = ss->index_cap - 1, j = i, k;

	ss->index[i] = 0;
	for (;;) {
		j = (j + 1) & mask;
		if (ss->index[j] == 0)
			return;
		k = hash_str(ss->all[ss->index[j] - 1]->id) & mask;
		/* Move j back to i when its home k is not cyclically in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		ss->index[i] = ss->index[j];
		ss->index[j] = 0;
		i = j;
	}
}

/* Takes ownership of sub. */
static int
substore_put(struct substore *ss, struct subscriber *sub)
{
	size_t i, pos;
	struct subscriber *old;

	if (substore_grow(ss) < 0) {
		subscriber_free(sub);
		return -1;
	}
	i = substore_probe(ss, sub->id);
	if (ss->index[i] != 0) {
		pos = ss->index[i] - 1;
		old = ss->all[pos];
		if (ss->on_change)
			ss->on_change(ss->arg, old, sub);
		ss->all[pos] = sub;
		ss->seen[pos] = ss->gen;
		subscriber_free(old);
		return 0;
	}
	if (ss->on_change)
		ss->on_change(ss->arg, NULL, sub);
	ss->all[ss->n] = sub;
	ss->seen[ss->n] = ss->gen;
	ss->n++;
	ss->index[i] = (uint32_t)ss->n;
	return 0;
}

static void
substore_remove(struct substore *ss, const char *id)
{
	size_t i, pos, last;
	struct subscriber *old;

	if (ss->index_cap == 0)
		return;
	i = substore_probe(ss, id);
	if (ss->index[i] == 0)
		return;
	pos = ss->index[i] - 1;
	old = ss->all[pos];
	if (ss->on_change)
		ss->on_change(ss->arg, old, NULL);
	substore_index_delete(ss, i);
	last = ss->n - 1;
	if (pos != last) {
		ss->all[pos] = ss->all[last];
		ss->seen[pos] = ss->seen[last];
		ss->index[substore_probe(ss, ss->all[pos]->id)] = (uint32_t)(pos + 1);
	}
	ss->n--;
	subscriber_free(old);
}

/* Parses a stored subscriber; keeps the old copy when the new one is bad. */
static void
substore_apply(struct substore *ss, const char *id, const char *json, size_t len)
{
	struct subscriber *sub;
	struct err err;

	err_clear(&err);
	if ((sub = subscriber_parse_stored(json, len, &err)) == NULL) {
		log_warnx("event=bad_stored_subscriber sub=%s reason=%s err=\"%s\"", id,
		    err.code, err.msg);
		return;
	}
	if (strcmp(sub->id, id) != 0) {
		log_warnx("event=bad_stored_subscriber sub=%s reason=id_mismatch", id);
		subscriber_free(sub);
		return;
	}
	if (substore_put(ss, sub) < 0)
		log_errorx("event=subscriber_dropped sub=%s reason=no_memory", id);
}

#define SUBSTORE_RETRY_MIN_MS 100

static const char *const substore_step_names[] = { "tail", "scan", "feed" };

/* Success: the backoff starts small again. */
static void
substore_ok(struct substore *ss)
{
	ss->retry_ms = SUBSTORE_RETRY_MIN_MS;
}

/*
 * The current step failed (an error reply such as LOADING after a Redis restart, or
 * no reply): run it again after a backoff, on this connection or, when it dropped,
 * from the reload that follows the reconnect. Never gives up: until the first load
 * has finished, ingest and deliver wait for the store.
 */
static void
substore_retry(struct substore *ss, const struct redisReply *r)
{
	struct timeval tv;

	ss->busy = 0;
	log_warnx("event=%s step=%s err=\"%s\" retry_ms=%ld",
	    ss->step == SUBSTORE_FEED ? "subscriber_feed_failed" : "subscriber_load_failed",
	    substore_step_names[ss->step], r == NULL ? "no reply" :
	    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply", ss->retry_ms);
	if (ss->stopped)
		return;
	tv.tv_sec = ss->retry_ms / 1000;
	tv.tv_usec = (ss->retry_ms % 1000) * 1000;
	evtimer_add(ss->retry, &tv);
	ss->retry_ms = ss->retry_ms * 2 < ss->retry_max_ms ? ss->retry_ms * 2 :
	    ss->retry_max_ms;
}

static void
substore_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	substore_run(arg);
}

/* ---- full loads ---- */

static const char *const substore_reason_names[] = { "start", "reconnect", "gap" };

static double
substore_elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	    (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* Starts a full load: position the feed at the stream's end, then HSCAN everything. */
static void
substore_reload(struct substore *ss, enum substore_reason why)
{
	ss->busy = 0;
	ss->loading = 1;
	ss->pending = 0;
	ss->loaded = 0;
	ss->reason = why;
	ss->loads++;
	clock_gettime(CLOCK_MONOTONIC, &ss->load_started);
	if (why != SUBSTORE_START)
		log_info("event=subscribers_reload reason=%s subscribers=%zu last_id=%s",
		    substore_reason_names[why], ss->n, ss->last_id);
	ss->step = SUBSTORE_TAIL;
	evtimer_del(ss->retry);
	substore_ok(ss);
	substore_run(ss);
}

/* ---- the change feed ---- */

/*
 * One reply of a feed round (the XREAD, the XINFO after it, or an HGET) has been
 * handled. When the last is in: reload on a gap, read the batch again when any part
 * failed, else move past the batch.
 */
static void
substore_feed_reply_done(struct substore *ss)
{
	if (ss->pending > 0)
		ss->pending--;
	if (ss->pending > 0)
		return;
	if (ss->gap) {
		ss->gap = 0;
		substore_reload(ss, SUBSTORE_GAP);
		return;
	}
	if (ss->gets_failed) {
		/* The batch is read again from last_id: an HGET gives the subscriber as it
		 * is now, so applying one twice is harmless. */
		substore_retry(ss, NULL);
		return;
	}
	snprintf(ss->last_id, sizeof(ss->last_id), "%s", ss->batch_id);
	ss->added_seen += ss->batch_n;
	ss->busy = 0;
	substore_ok(ss);
	substore_run(ss);
}

struct substore_get {
	struct substore *ss;
	char id[MODEL_ID_MAX + 1];
};

static void
substore_on_change_get(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore_get *g = arg;
	struct substore *ss = g->ss;

	(void)rc;
	if (r == NULL || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING)) {
		log_warnx("event=subscriber_get_failed sub=%s err=\"%s\"", g->id,
		    r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		ss->gets_failed = 1;
	} else if (r->type == REDIS_REPLY_NIL) {
		substore_remove(ss, g->id);
	} else {
		substore_apply(ss, g->id, r->str, r->len);
	}
	free(g);
	substore_feed_reply_done(ss);
}

/*
 * Did this round's XREAD (after read_from, up to batch_id) or an earlier one miss
 * an entry? Decided by counting, since a trim (XTRIM, XADD MAXLEN) leaves no mark of
 * what it removed: Redis 7 counts every entry ever added (entries-added), and the
 * mirror counts what it read since the full load, which started at entries-added.
 * Every entry after batch_id still there (the stream's first entry is past batch_id)
 * must then number entries-added minus what was read; when nothing came after the
 * batch (last-generated-id is batch_id), the two counts must be equal. Otherwise
 * the next round decides. An XDEL past read_from shows in max-deleted-entry-id.
 * Before Redis 7 (no counts), a first entry past read_from is taken as a gap: a
 * needless reload at worst. Returns 1 for a gap, 0 for none, -1 for a reply that
 * does not say.
 */
static int
substore_gap_in(struct substore *ss, const struct redisReply *r, char *why,
    size_t size)
{
	const struct redisReply *first;
	const char *maxdel, *last, *first_id = NULL;
	long long len, added;
	unsigned long long seen = ss->added_seen + ss->batch_n;

	(void)streampos_xinfo_str(r, "first-entry", &first);
	if (first != NULL && first->elements == 2 &&
	    first->element[0]->type == REDIS_REPLY_STRING)
		first_id = first->element[0]->str;
	maxdel = streampos_xinfo_str(r, "max-deleted-entry-id", NULL);
	if (maxdel != NULL && streampos_cmp(maxdel, ss->read_from) > 0) {
		snprintf(why, size, "max_deleted_id=%s", maxdel);
		return 1;
	}
	if (!ss->counted || streampos_xinfo_int(r, "entries-added", &added) < 0) {
		if (first_id != NULL && streampos_cmp(first_id, ss->read_from) > 0) {
			snprintf(why, size, "first_id=%s", first_id);
			return 1;
		}
		return 0;
	}
	if (streampos_xinfo_int(r, "length", &len) < 0 ||
	    (last = streampos_xinfo_str(r, "last-generated-id", NULL)) == NULL || added < 0 ||
	    len < 0)
		return -1;
	if (len == 0 || (first_id != NULL && streampos_cmp(first_id, ss->batch_id) > 0)) {
		if ((unsigned long long)added != seen + (unsigned long long)len) {
			snprintf(why, size, "entries_added=%lld read=%llu length=%lld", added,
			    seen, len);
			return 1;
		}
	} else if (streampos_cmp(last, ss->batch_id) == 0 &&
	    (unsigned long long)added != seen) {
		snprintf(why, size, "entries_added=%lld read=%llu", added, seen);
		return 1;
	}
	return 0;
}

/*
 * XINFO STREAM, pipelined after the XREAD and so run just after Redis answered it.
 * A stream that is gone while we had read from it counts as a gap too.
 */
static void
substore_on_check(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore *ss = arg;
	char why[160];
	int g;

	(void)rc;
	if (r != NULL && streampos_no_such_key(r)) {
		if (strcmp(ss->read_from, "0-0") != 0) {
			log_warnx("event=subscriber_feed_gap last_id=%s stream=missing",
			    ss->read_from);
			ss->gap = 1;
		}
	} else if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
	    (g = substore_gap_in(ss, r, why, sizeof(why))) < 0) {
		ss->gets_failed = 1;
	} else if (g > 0) {
		log_warnx("event=subscriber_feed_gap last_id=%s %s", ss->read_from, why);
		ss->gap = 1;
	}
	substore_feed_reply_done(ss);
}

static void
substore_on_changes(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore *ss = arg;
	struct redisReply *entries;
	size_t i, j;

	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		if (r != NULL)
			log_warnx("event=subscriber_feed_failed step=feed err=\"%s\"", r->str);
		ss->gets_failed = 1;
		substore_feed_reply_done(ss);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		substore_feed_reply_done(ss);   /* nothing new within the block time */
		return;
	}
	if (r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
	    r->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
		ss->gets_failed = 1;   /* logged by substore_retry() */
		substore_feed_reply_done(ss);
		return;
	}
	entries = r->element[0]->element[1];
	ss->batch_n = entries->elements;
	for (i = 0; i < entries->elements; i++) {
		struct redisReply *e = entries->element[i], *f;
		struct substore_get *g;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_ARRAY ||
		    e->element[0]->len >= sizeof(ss->batch_id))
			continue;
		f = e->element[1];
		snprintf(ss->batch_id, sizeof(ss->batch_id), "%s", e->element[0]->str);
		for (j = 0; j + 1 < f->elements; j += 2) {
			if (f->element[j]->type != REDIS_REPLY_STRING ||
			    f->element[j + 1]->type != REDIS_REPLY_STRING ||
			    strcmp(f->element[j]->str, "id") != 0 ||
			    f->element[j + 1]->len > MODEL_ID_MAX)
				continue;
			if ((g = calloc(1, sizeof(*g))) == NULL) {
				ss->gets_failed = 1;
				continue;
			}
			g->ss = ss;
			snprintf(g->id, sizeof(g->id), "%s", f->element[j + 1]->str);
			if (rconn_cmd(rc, substore_on_change_get, g, 0, "HGET subscribers %s",
			    g->id) < 0) {
				free(g);
				ss->gets_failed = 1;
				continue;
			}
			ss->pending++;
		}
	}
	substore_feed_reply_done(ss);
}

/* Drops every subscriber a finished reload did not see. */
static void
substore_sweep(struct substore *ss)
{
	size_t i = 0;

	while (i < ss->n) {
		if (ss->seen[i] != ss->gen) {
			char id[MODEL_ID_MAX + 1];
			snprintf(id, sizeof(id), "%s", ss->all[i]->id);
			substore_remove(ss, id);
		} else {
			i++;
		}
	}
}

static void
substore_on_scan(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore *ss = arg;
	struct redisReply *items;
	size_t i;
	int more;

	(void)rc;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_ARRAY ||
	    r->element[0]->len >= sizeof(ss->cursor)) {
		/* Resumed at the same cursor: a page applied twice sets the same values. */
		substore_retry(ss, r);
		return;
	}
	ss->busy = 0;
	substore_ok(ss);
	/* Ask for the next page before parsing this one, so that Redis and the network
	 * work while we parse. The reply is borrowed until we return; the next one
	 * cannot arrive before. */
	if ((more = strcmp(r->element[0]->str, "0") != 0)) {
		snprintf(ss->cursor, sizeof(ss->cursor), "%s", r->element[0]->str);
		substore_run(ss);
	}
	items = r->element[1];
	for (i = 0; i + 1 < items->elements; i += 2) {
		if (items->element[i]->type == REDIS_REPLY_STRING &&
		    items->element[i + 1]->type == REDIS_REPLY_STRING) {
			ss->loaded++;
			substore_apply(ss, items->element[i]->str, items->element[i + 1]->str,
			    items->element[i + 1]->len);
		}
	}
	if (more)
		return;
	substore_sweep(ss);
	ss->loading = 0;
	ss->last_load_s = substore_elapsed_s(&ss->load_started);
	if (ss->on_loaded != NULL)
		ss->on_loaded(ss->arg);
#ifdef __GLIBC__
	/* The load freed millions of reply buffers between the records it kept, and
	 * on_loaded may have shrunk tables: hand free pages back to the kernel. */
	(void)malloc_trim(0);
#endif
	log_info("event=subscribers_loaded count=%zu reason=%s load_ms=%.0f", ss->n,
	    substore_reason_names[ss->reason], ss->last_load_s * 1000);
	ss->ready = 1;
	ss->step = SUBSTORE_FEED;
	substore_run(ss);
}

/*
 * Where the full load that follows starts the feed: the last id the stream ever
 * generated (entries trimmed since count too), so that the load covers every change
 * up to it and changes during the load are applied twice, harmlessly.
 */
static void
substore_on_feed_tail(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore *ss = arg;
	const char *last;
	unsigned long long ms, seq;
	long long added;

	(void)rc;
	ss->counted = 0;
	ss->added_seen = 0;
	if (r != NULL && streampos_no_such_key(r)) {
		/* An entry added later is the first ever (entries-added 1). */
		snprintf(ss->last_id, sizeof(ss->last_id), "0-0");
		ss->counted = 1;
	} else if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
	    (last = streampos_xinfo_str(r, "last-generated-id", NULL)) == NULL ||
	    streampos_parse(last, &ms, &seq) < 0 || strlen(last) >= sizeof(ss->last_id)) {
		substore_retry(ss, r);
		return;
	} else {
		snprintf(ss->last_id, sizeof(ss->last_id), "%s", last);
		if (streampos_xinfo_int(r, "entries-added", &added) == 0 && added >= 0) {
			ss->counted = 1;
			ss->added_seen = (unsigned long long)added;
		}
	}
	ss->busy = 0;
	substore_ok(ss);
	/* Every record starts the load unseen, also after loads cut short by a
	 * reconnect (which do not sweep), so that 8 bits of generation never wrap
	 * onto a stale record. */
	if (ss->n > 0)
		memset(ss->seen, ss->gen, ss->n);
	ss->gen++;
	snprintf(ss->cursor, sizeof(ss->cursor), "0");
	ss->step = SUBSTORE_SCAN;
	substore_run(ss);
}

/* Sends the current step's command(s) unless one is out, the connection is down (the
 * reconnect restarts the load) or a retry is waiting. */
static void
substore_run(struct substore *ss)
{
	char block[32];
	int rv = -1;

	if (ss->stopped || ss->busy || !rconn_is_ready(ss->rc) ||
	    evtimer_pending(ss->retry, NULL))
		return;
	switch (ss->step) {
	case SUBSTORE_TAIL:
		rv = rconn_cmd(ss->rc, substore_on_feed_tail, ss, 0,
		    "XINFO STREAM subscribers:changes");
		break;
	case SUBSTORE_SCAN:
		rv = rconn_cmd(ss->rc, substore_on_scan, ss, 0,
		    "HSCAN subscribers %s COUNT " SUBSTORE_PAGE, ss->cursor);
		break;
	case SUBSTORE_FEED:
		snprintf(block, sizeof(block), "%ld", ss->block_ms);
		snprintf(ss->read_from, sizeof(ss->read_from), "%s", ss->last_id);
		snprintf(ss->batch_id, sizeof(ss->batch_id), "%s", ss->last_id);
		ss->gets_failed = 0;
		ss->gap = 0;
		ss->batch_n = 0;
		rv = rconn_cmd(ss->rc, substore_on_changes, ss, ss->block_ms + 2000,
		    "XREAD COUNT " SUBSTORE_CHANGES_BATCH " BLOCK %s STREAMS "
		    "subscribers:changes %s", block, ss->read_from);
		if (rv < 0)
			break;
		ss->busy = 1;
		ss->pending = 1;
		/* Pipelined: Redis runs it as soon as it has answered the XREAD. */
		if (rconn_cmd(ss->rc, substore_on_check, ss, ss->block_ms + 2000,
		    "XINFO STREAM subscribers:changes") == 0)
			ss->pending++;
		else
			ss->gets_failed = 1;
		return;
	}
	if (rv == 0)
		ss->busy = 1;
	else
		substore_retry(ss, NULL);
}

/* Every (re)connect reloads everything: what changed while we were away may have
 * been trimmed from the feed. */
static void
substore_on_ready(struct rconn *rc, void *arg)
{
	struct substore *ss = arg;

	(void)rc;
	if (ss->stopped)
		return;
	/* Every reply of the old connection has run (with NULL) before this. */
	ss->connects++;
	substore_reload(ss, ss->connects == 1 ? SUBSTORE_START : SUBSTORE_RECONNECT);
}

struct substore *
substore_new(struct event_base *base, const struct rconn_config *cfg, long block_ms,
    substore_change_fn *on_change, substore_loaded_fn *on_loaded, void *arg)
{
	struct substore *ss;

	if ((ss = calloc(1, sizeof(*ss))) == NULL)
		return NULL;
	ss->block_ms = block_ms;
	ss->on_change = on_change;
	ss->on_loaded = on_loaded;
	ss->arg = arg;
	ss->retry_ms = SUBSTORE_RETRY_MIN_MS;
	ss->retry_max_ms = cfg->reconnect_max_ms > SUBSTORE_RETRY_MIN_MS ?
	    cfg->reconnect_max_ms : 5000;
	ss->loading = 1;
	clock_gettime(CLOCK_MONOTONIC, &ss->load_started);
	snprintf(ss->last_id, sizeof(ss->last_id), "0-0");
	if ((ss->retry = evtimer_new(base, substore_on_retry, ss)) == NULL) {
		free(ss);
		return NULL;
	}
	if ((ss->rc = rconn_new(base, cfg, "subscribers", substore_on_ready, ss)) == NULL) {
		event_free(ss->retry);
		free(ss);
		return NULL;
	}
	return ss;
}

void
substore_stop(struct substore *ss)
{
	ss->stopped = 1;
}

void
substore_free(struct substore *ss)
{
	size_t i;

	if (ss == NULL)
		return;
	ss->stopped = 1;
	rconn_free(ss->rc);
	if (ss->retry != NULL)
		event_free(ss->retry);
	for (i = 0; i < ss->n; i++)
		subscriber_free(ss->all[i]);
	free(ss->all);
	free(ss->seen);
	free(ss->index);
	free(ss);
}

int
substore_ready(const struct substore *ss)
{
	return ss->ready;
}

void
substore_stats(const struct substore *ss, struct substore_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->ready = ss->ready;
	out->loading = ss->loading;
	out->subscribers = ss->n;
	out->loaded = ss->loaded;
	out->reconnects = ss->connects > 1 ? ss->connects - 1 : 0;
	out->reloads = ss->loads > 1 ? ss->loads - 1 : 0;
	out->last_reload_reason = ss->loads > 1 ? substore_reason_names[ss->reason] : "";
	out->last_load_s = ss->loading ? 0 : ss->last_load_s;
	out->load_s = ss->loading ? substore_elapsed_s(&ss->load_started) : 0;
	out->interned = intern_count();
	out->intern_bytes = intern_bytes();
}

const struct subscriber *
substore_get(const struct substore *ss, const char *id)
{
	size_t i;

	if (ss->index_cap == 0)
		return NULL;
	i = substore_probe(ss, id);
	return ss->index[i] ? ss->all[ss->index[i] - 1] : NULL;
}

size_t
substore_count(const struct substore *ss)
{
	return ss->n;
}

const struct subscriber *
substore_at(const struct substore *ss, size_t i)
{
	return i < ss->n ? ss->all[i] : NULL;
}
