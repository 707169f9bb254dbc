/*
 * substore.c: the in-memory mirror of Redis' subscribers (stage: match).
 *
 * A dense array of compact records for scans plus an open-addressing id index of
 * 32-bit positions. Reads through one dedicated connection: HSCAN pages of every
 * mirrored shard's "subscribers" hash, then of its "behaviour" hash (names from
 * keys.h), at start, after each reconnect, after a gap in a change feed and when the
 * set of shards changes (substore_feed.c follows the feeds between loads).
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
#include "keys.h"
#include "log.h"
#include "streampos.h"
#include "substore.h"
#include "subbehav.h"
#include "subscriber.h"

#include "substore_int.h"


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
		if ((g = realloc(ss->bseen, c * sizeof(*g))) == NULL)
			return -1;
		ss->bseen = g;
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
/* 1 when two optional strings are equal (both absent included). */
static int
substore_same(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* One more subscriber with a new number or handle (added with one, or given
 * another): what an index by number lacks until it is built again. */
static void
substore_note(struct substore *ss, const char *id)
{
	snprintf(ss->recent[ss->change_seq % SUBSTORE_RECENT],
	    sizeof(ss->recent[0]), "%s", id);
	ss->change_seq++;
}

uint64_t
substore_change_seq(const struct substore *ss)
{
	return ss->change_seq;
}

const char *
substore_changed(const struct substore *ss, uint64_t seq)
{
	if (seq >= ss->change_seq || ss->change_seq - seq > SUBSTORE_RECENT)
		return NULL;
	return ss->recent[seq % SUBSTORE_RECENT];
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
		/* The document changed, not what the subscriber did: the record stays. */
		if (sub->behav == NULL) {
			sub->behav = old->behav;
			old->behav = NULL;
		}
		if (!substore_same(old->phone, sub->phone) ||
		    !substore_same(old->dm_x, sub->dm_x))
			substore_note(ss, sub->id);
		if (ss->on_change)
			ss->on_change(ss->arg, old, sub);
		ss->all[pos] = sub;
		ss->seen[pos] = ss->gen;
		subscriber_free(old);
		return 0;
	}
	substore_note(ss, sub->id);
	if (ss->on_change)
		ss->on_change(ss->arg, NULL, sub);
	ss->all[ss->n] = sub;
	ss->seen[ss->n] = ss->gen;
	ss->bseen[ss->n] = (uint8_t)(ss->gen - 1);   /* no record seen yet */
	ss->n++;
	ss->index[i] = (uint32_t)ss->n;
	return 0;
}

void
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
		ss->bseen[pos] = ss->bseen[last];
		ss->index[substore_probe(ss, ss->all[pos]->id)] = (uint32_t)(pos + 1);
	}
	ss->n--;
	subscriber_free(old);
}

/* Parses a stored subscriber; keeps the old copy when the new one is bad. */
void
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

void
substore_apply_behav(struct substore *ss, const char *id, const char *v, size_t len)
{
	struct sub_behav *b = NULL;
	struct subscriber *sub;
	size_t i;

	if (ss->index_cap == 0)
		return;
	i = substore_probe(ss, id);
	if (ss->index[i] == 0)
		return;
	if (v != NULL && (b = subbehav_parse(v, len)) == NULL) {
		log_warnx("event=bad_stored_behaviour sub=%s", id);
		/* The mirror keeps what it had (docs/attribution.md), also through a
		 * reload's sweep. */
		if (ss->loading && ss->step == SUBSTORE_BSCAN)
			ss->bseen[ss->index[i] - 1] = ss->gen;
		return;
	}
	/* In place: the index reads no behaviour field (docs/rules.md), so it need
	 * not be told. */
	sub = ss->all[ss->index[i] - 1];
	free(sub->behav);
	sub->behav = b;
	if (ss->loading && ss->step == SUBSTORE_BSCAN)
		ss->bseen[ss->index[i] - 1] = ss->gen;
}

#define SUBSTORE_RETRY_MIN_MS 100

static const char *const substore_step_names[] = { "tail", "scan", "bscan", "feed" };

/* Success: the backoff starts small again. */
void
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
void
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

static const char *const substore_reason_names[] = { "start", "reconnect", "gap",
    "shards" };

static void substore_tail_done(struct substore *ss);

uint32_t
substore_shard_next(const struct substore *ss, uint32_t from)
{
	while (from < ss->nfeeds && !ss->load_want[from])
		from++;
	return from;
}

/* Number of shards in set (nfeeds bytes). */
static uint32_t
substore_shards_count(const struct substore *ss, const uint8_t *set)
{
	uint32_t k, n = 0;

	for (k = 0; k < ss->nfeeds; k++)
		n += set[k] != 0;
	return n;
}

static double
substore_elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	    (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* Starts a full load: position the feed at the stream's end, then HSCAN everything. */
void
substore_reload(struct substore *ss, enum substore_reason why)
{
	ss->busy = 0;
	ss->loading = 1;
	ss->pending = 0;
	ss->loaded = 0;
	ss->reason = why;
	ss->loads++;
	memcpy(ss->load_want, ss->want, ss->nfeeds);
	clock_gettime(CLOCK_MONOTONIC, &ss->load_started);
	if (why != SUBSTORE_START)
		log_info("event=subscribers_reload reason=%s subscribers=%zu shards=%u",
		    substore_reason_names[why], ss->n,
		    substore_shards_count(ss, ss->load_want));
	ss->step = SUBSTORE_TAIL;
	evtimer_del(ss->retry);
	substore_ok(ss);
	/* No shard: nothing to read, and the sweep at the end empties the mirror. */
	if ((ss->shard = substore_shard_next(ss, 0)) == ss->nfeeds)
		substore_tail_done(ss);
	else
		substore_run(ss);
}

/* Drops every subscriber a finished reload did not see, and every behaviour record
 * it did not see (removed while the mirror was not following: a subscriber erased
 * and signed up again must not keep the old one). */
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
			if (ss->bseen[i] != ss->gen && ss->all[i]->behav != NULL) {
				free(ss->all[i]->behav);
				ss->all[i]->behav = NULL;
			}
			i++;
		}
	}
}

/* The load has read every shard of its set (maybe none): drop what it did not see,
 * then follow the feeds. */
static void
substore_load_done(struct substore *ss)
{
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
	memcpy(ss->loaded_want, ss->load_want, ss->nfeeds);
	ss->step = SUBSTORE_FEED;
	substore_run(ss);
}

static void
substore_on_scan(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore *ss = arg;
	struct redisReply *items;
	size_t i;
	uint32_t next;
	int more, behav;

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
	behav = ss->step == SUBSTORE_BSCAN;
	if ((more = strcmp(r->element[0]->str, "0") != 0)) {
		snprintf(ss->cursor, sizeof(ss->cursor), "%s", r->element[0]->str);
		substore_run(ss);
	} else if ((next = substore_shard_next(ss, ss->shard + 1)) < ss->nfeeds ||
	    !behav) {
		/* The next shard's hash, from its start; after the last shard's
		 * subscribers, every shard's behaviour records. */
		more = 1;
		if (next < ss->nfeeds) {
			ss->shard = next;
		} else {
			ss->shard = substore_shard_next(ss, 0);
			ss->step = SUBSTORE_BSCAN;
		}
		snprintf(ss->cursor, sizeof(ss->cursor), "0");
		substore_run(ss);
	}
	items = r->element[1];
	for (i = 0; i + 1 < items->elements; i += 2) {
		if (items->element[i]->type != REDIS_REPLY_STRING ||
		    items->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		if (behav) {
			/* "<sub>\t<channel>": the deal last texted, for the replies; no
			 * subscriber id holds a tab. */
			if (memchr(items->element[i]->str, '\t', items->element[i]->len) == NULL)
				substore_apply_behav(ss, items->element[i]->str,
				    items->element[i + 1]->str, items->element[i + 1]->len);
			continue;
		}
		ss->loaded++;
		substore_apply(ss, items->element[i]->str, items->element[i + 1]->str,
		    items->element[i + 1]->len);
	}
	if (!more)
		substore_load_done(ss);
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
	struct substore_feed *fd = &ss->feeds[ss->shard];
	const char *last;
	unsigned long long ms, seq;
	long long added;

	(void)rc;
	fd->counted = 0;
	fd->added_seen = 0;
	if (r != NULL && streampos_no_such_key(r)) {
		/* An entry added later is the first ever (entries-added 1). */
		snprintf(fd->last_id, sizeof(fd->last_id), "0-0");
		fd->counted = 1;
	} else if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
	    (last = streampos_xinfo_str(r, "last-generated-id", NULL)) == NULL ||
	    streampos_parse(last, &ms, &seq) < 0 || strlen(last) >= sizeof(fd->last_id)) {
		substore_retry(ss, r);
		return;
	} else {
		snprintf(fd->last_id, sizeof(fd->last_id), "%s", last);
		if (streampos_xinfo_int(r, "entries-added", &added) == 0 && added >= 0) {
			fd->counted = 1;
			fd->added_seen = (unsigned long long)added;
		}
	}
	ss->busy = 0;
	substore_ok(ss);
	if ((ss->shard = substore_shard_next(ss, ss->shard + 1)) < ss->nfeeds) {
		substore_run(ss);   /* the next shard's feed */
		return;
	}
	substore_tail_done(ss);
}

/* Every feed of the load's set is positioned: HSCAN its shards, or, with none,
 * finish the load at once. */
static void
substore_tail_done(struct substore *ss)
{
	/* Every record starts the load unseen, also after loads cut short by a
	 * reconnect (which do not sweep), so that 8 bits of generation never wrap
	 * onto a stale record. */
	if (ss->n > 0) {
		memset(ss->seen, ss->gen, ss->n);
		memset(ss->bseen, ss->gen, ss->n);
	}
	ss->gen++;
	snprintf(ss->cursor, sizeof(ss->cursor), "0");
	ss->step = SUBSTORE_SCAN;
	if ((ss->shard = substore_shard_next(ss, 0)) == ss->nfeeds)
		substore_load_done(ss);
	else
		substore_run(ss);
}

/* Sends the current step's command(s) unless one is out, the connection is down (the
 * reconnect restarts the load) or a retry is waiting. */
void
substore_run(struct substore *ss)
{
	int rv = -1;

	if (ss->stopped || ss->busy || !rconn_is_ready(ss->rc) ||
	    evtimer_pending(ss->retry, NULL) || evtimer_pending(ss->poll, NULL))
		return;
	switch (ss->step) {
	case SUBSTORE_TAIL:
		rv = rconn_cmd(ss->rc, substore_on_feed_tail, ss, 0, "XINFO STREAM %s",
		    ss->feeds[ss->shard].stream);
		break;
	case SUBSTORE_SCAN:
		rv = rconn_cmd(ss->rc, substore_on_scan, ss, 0,
		    "HSCAN %s %s COUNT " SUBSTORE_PAGE, ss->feeds[ss->shard].hash, ss->cursor);
		break;
	case SUBSTORE_BSCAN:
		rv = rconn_cmd(ss->rc, substore_on_scan, ss, 0,
		    "HSCAN %s %s COUNT " SUBSTORE_PAGE, ss->feeds[ss->shard].behav, ss->cursor);
		break;
	case SUBSTORE_FEED:
		/* The safe point for a new set of shards: nothing is out (busy is 0), and
		 * the load that follows positions the feeds of the new set. */
		if (memcmp(ss->want, ss->load_want, ss->nfeeds) != 0)
			substore_reload(ss, SUBSTORE_SHARDS);
		else if (substore_shard_next(ss, 0) < ss->nfeeds)
			substore_feed_send(ss);
		/* else no shard: an XREAD of no stream is an error; idle until
		 * substore_set_shards. */
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
	uint32_t k;

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
	ss->nfeeds = keys_shards();
	if ((ss->feeds = calloc(ss->nfeeds, sizeof(*ss->feeds))) == NULL ||
	    (ss->want = malloc(ss->nfeeds)) == NULL ||
	    (ss->load_want = malloc(ss->nfeeds)) == NULL ||
	    (ss->loaded_want = calloc(ss->nfeeds, 1)) == NULL)
		goto fail;
	memset(ss->want, 1, ss->nfeeds);
	memset(ss->load_want, 1, ss->nfeeds);
	for (k = 0; k < ss->nfeeds; k++) {
		struct substore_feed *fd = &ss->feeds[k];

		fd->ss = ss;
		snprintf(fd->last_id, sizeof(fd->last_id), "0-0");
		if (keys_shard_key(k, KEYS_SUBSCRIBERS, fd->hash, sizeof(fd->hash)) < 0 ||
		    keys_shard_key(k, KEYS_SUB_CHANGES, fd->stream, sizeof(fd->stream)) < 0 ||
		    keys_shard_key(k, KEYS_BEHAVIOUR, fd->behav, sizeof(fd->behav)) < 0)
			goto fail;
	}
	if ((ss->retry = evtimer_new(base, substore_on_retry, ss)) == NULL ||
	    (ss->poll = evtimer_new(base, substore_on_retry, ss)) == NULL ||
	    (ss->rc = rconn_new(base, cfg, "subscribers", substore_on_ready, ss)) == NULL)
		goto fail;
	ss->cluster = cfg->cluster != NULL;
	return ss;
fail:
	if (ss->retry != NULL)
		event_free(ss->retry);
	if (ss->poll != NULL)
		event_free(ss->poll);
	free(ss->loaded_want);
	free(ss->load_want);
	free(ss->want);
	free(ss->feeds);
	free(ss);
	return NULL;
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
	if (ss->poll != NULL)
		event_free(ss->poll);
	for (i = 0; i < ss->n; i++)
		subscriber_free(ss->all[i]);
	free(ss->all);
	free(ss->seen);
	free(ss->bseen);
	free(ss->index);
	free(ss->loaded_want);
	free(ss->load_want);
	free(ss->want);
	free(ss->feeds);
	free(ss);
}

int
substore_ready(const struct substore *ss)
{
	return ss->ready;
}

void
substore_set_shards(struct substore *ss, const uint8_t *want)
{
	uint32_t k;
	int changed = 0;

	for (k = 0; k < ss->nfeeds; k++) {
		uint8_t w = want == NULL || want[k] != 0;

		changed |= ss->want[k] != w;
		ss->want[k] = w;
	}
	/* A load or a feed round in progress ends in the FEED step, which reloads;
	 * idle there (no shard to follow), the store must be woken. substore_run
	 * sends nothing while a retry waits or the connection is down: the retry, or
	 * the reconnect's load, comes later and reads the new set. */
	if (changed && ss->step == SUBSTORE_FEED && !ss->busy)
		substore_run(ss);
}

int
substore_shard_ready(const struct substore *ss, uint32_t k)
{
	/* Not while a load that leaves k out is running: its sweep is about to drop
	 * k's subscribers, although the last finished load had them. */
	return k < ss->nfeeds && ss->loaded_want[k] && ss->want[k] &&
	    (!ss->loading || ss->load_want[k]);
}

void
substore_stats(const struct substore *ss, struct substore_stats *out)
{
	uint32_t k;

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
	out->shards_wanted = substore_shards_count(ss, ss->want);
	for (k = 0; k < ss->nfeeds; k++)
		out->shards_loaded += substore_shard_ready(ss, k);
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
