/*
 * substore.c: the in-memory mirror of Redis' subscribers (stage: match).
 *
 * A dense array for scans plus an open-addressing id index. Reads through one
 * dedicated connection: HSCAN pages at start and after each reconnect, then XREAD
 * BLOCK on "subscribers:changes" with HGETs for the ids it names. Bounded work per
 * callback (one page, one batch of changes). Never trusts what Redis holds: every
 * stored subscriber is parsed and validated again.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "log.h"
#include "substore.h"
#include "subscriber.h"

#define SUBSTORE_PAGE "1000"
#define SUBSTORE_CHANGES_BATCH "1000"

struct slot {
	struct subscriber *sub;
	unsigned long gen;         /* load generation that last saw it */
};

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
	void *arg;
	struct slot *all;          /* dense */
	size_t n, cap;
	size_t *index;             /* open addressing: position in all + 1; 0 = empty */
	size_t index_cap;          /* power of two */
	int ready;
	int stopped;
	int loading;
	unsigned long gen;
	char last_id[64];          /* last change feed entry applied */
	char batch_id[64];         /* last entry of the batch whose HGETs are out */
	size_t pending_gets;       /* HGETs of one change batch still out */
	int gets_failed;           /* one of them failed: the batch is read again */
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

	while (ss->index[i] != 0 && strcmp(ss->all[ss->index[i] - 1].sub->id, id) != 0)
		i = (i + 1) & mask;
	return i;
}

static int
substore_grow(struct substore *ss)
{
	size_t i, newcap;
	size_t *old = ss->index;

	if (ss->n == ss->cap) {
		size_t c = ss->cap ? ss->cap * 2 : 1024;
		struct slot *a = realloc(ss->all, c * sizeof(*a));
		if (a == NULL)
			return -1;
		ss->all = a;
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
		ss->index[substore_probe(ss, ss->all[i].sub->id)] = i + 1;
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
		k = hash_str(ss->all[ss->index[j] - 1].sub->id) & mask;
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
	size_t i;
	struct subscriber *old;

	if (substore_grow(ss) < 0) {
		subscriber_free(sub);
		return -1;
	}
	i = substore_probe(ss, sub->id);
	if (ss->index[i] != 0) {
		struct slot *s = &ss->all[ss->index[i] - 1];
		old = s->sub;
		if (ss->on_change)
			ss->on_change(ss->arg, old, sub);
		s->sub = sub;
		s->gen = ss->gen;
		subscriber_free(old);
		return 0;
	}
	if (ss->on_change)
		ss->on_change(ss->arg, NULL, sub);
	ss->all[ss->n].sub = sub;
	ss->all[ss->n].gen = ss->gen;
	ss->n++;
	ss->index[i] = ss->n;
	return 0;
}

static void
substore_remove(struct substore *ss, const char *id)
{
	size_t i = substore_probe(ss, id), pos, last;
	struct subscriber *old;

	if (ss->index[i] == 0)
		return;
	pos = ss->index[i] - 1;
	old = ss->all[pos].sub;
	if (ss->on_change)
		ss->on_change(ss->arg, old, NULL);
	substore_index_delete(ss, i);
	last = ss->n - 1;
	if (pos != last) {
		ss->all[pos] = ss->all[last];
		ss->index[substore_probe(ss, ss->all[pos].sub->id)] = pos + 1;
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
	if (ss->pending_gets > 0)
		ss->pending_gets--;
	if (ss->pending_gets > 0)
		return;
	if (ss->gets_failed) {
		/* The batch is read again from last_id: an HGET gives the subscriber as it
		 * is now, so applying one twice is harmless. */
		substore_retry(ss, r);
		return;
	}
	snprintf(ss->last_id, sizeof(ss->last_id), "%s", ss->batch_id);
	ss->busy = 0;
	substore_ok(ss);
	substore_run(ss);
}

static void
substore_on_changes(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore *ss = arg;
	struct redisReply *entries;
	size_t i, j;

	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		substore_retry(ss, r);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		ss->busy = 0;   /* nothing new within the block time */
		substore_ok(ss);
		substore_run(ss);
		return;
	}
	if (r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
	    r->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
		substore_retry(ss, r);
		return;
	}
	entries = r->element[0]->element[1];
	ss->gets_failed = 0;
	ss->pending_gets = 0;
	snprintf(ss->batch_id, sizeof(ss->batch_id), "%s", ss->last_id);
	for (i = 0; i < entries->elements; i++) {
		struct redisReply *e = entries->element[i], *f;
		struct substore_get *g;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_ARRAY)
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
			ss->pending_gets++;
		}
	}
	if (ss->pending_gets > 0)
		return;
	if (ss->gets_failed) {
		substore_retry(ss, NULL);
		return;
	}
	snprintf(ss->last_id, sizeof(ss->last_id), "%s", ss->batch_id);
	ss->busy = 0;
	substore_ok(ss);
	substore_run(ss);
}

/* Drops every subscriber a finished reload did not see. */
static void
substore_sweep(struct substore *ss)
{
	size_t i = 0;

	while (i < ss->n) {
		if (ss->all[i].gen != ss->gen) {
			char id[MODEL_ID_MAX + 1];
			snprintf(id, sizeof(id), "%s", ss->all[i].sub->id);
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

	(void)rc;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		/* Resumed at the same cursor: a page applied twice sets the same values. */
		substore_retry(ss, r);
		return;
	}
	items = r->element[1];
	for (i = 0; i + 1 < items->elements; i += 2)
		if (items->element[i]->type == REDIS_REPLY_STRING &&
		    items->element[i + 1]->type == REDIS_REPLY_STRING)
			substore_apply(ss, items->element[i]->str, items->element[i + 1]->str,
		    items->element[i + 1]->len);
	ss->busy = 0;
	substore_ok(ss);
	if (strcmp(r->element[0]->str, "0") != 0) {
		snprintf(ss->cursor, sizeof(ss->cursor), "%s", r->element[0]->str);
		substore_run(ss);
		return;
	}
	substore_sweep(ss);
	ss->loading = 0;
	if (!ss->ready)
		log_info("event=subscribers_loaded count=%zu", ss->n);
	ss->ready = 1;
	ss->step = SUBSTORE_FEED;
	substore_run(ss);
}

static void
substore_on_feed_tail(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore *ss = arg;

	(void)rc;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		substore_retry(ss, r);
		return;
	}
	/* Start the feed at its current end: the full load that follows covers all
	 * earlier changes, and changes during the load are applied twice, harmlessly. */
	if (r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements > 0 &&
	    r->element[0]->element[0]->type == REDIS_REPLY_STRING)
		snprintf(ss->last_id, sizeof(ss->last_id), "%s",
		    r->element[0]->element[0]->str);
	else
		snprintf(ss->last_id, sizeof(ss->last_id), "0-0");
	ss->busy = 0;
	substore_ok(ss);
	ss->gen++;
	snprintf(ss->cursor, sizeof(ss->cursor), "0");
	ss->step = SUBSTORE_SCAN;
	substore_run(ss);
}

/* Sends the current step's command unless one is out, the connection is down (the
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
		    "XREVRANGE subscribers:changes + - COUNT 1");
		break;
	case SUBSTORE_SCAN:
		rv = rconn_cmd(ss->rc, substore_on_scan, ss, 0,
		    "HSCAN subscribers %s COUNT " SUBSTORE_PAGE, ss->cursor);
		break;
	case SUBSTORE_FEED:
		snprintf(block, sizeof(block), "%ld", ss->block_ms);
		rv = rconn_cmd(ss->rc, substore_on_changes, ss, ss->block_ms + 2000,
		    "XREAD COUNT " SUBSTORE_CHANGES_BATCH " BLOCK %s STREAMS "
		    "subscribers:changes %s", block, ss->last_id);
		break;
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
	ss->busy = 0;
	ss->loading = 1;
	ss->pending_gets = 0;
	ss->step = SUBSTORE_TAIL;
	evtimer_del(ss->retry);
	substore_ok(ss);
	substore_run(ss);
}

struct substore *
substore_new(struct event_base *base, const struct rconn_config *cfg, long block_ms,
    substore_change_fn *on_change, void *arg)
{
	struct substore *ss;

	if ((ss = calloc(1, sizeof(*ss))) == NULL)
		return NULL;
	ss->block_ms = block_ms;
	ss->on_change = on_change;
	ss->arg = arg;
	ss->retry_ms = SUBSTORE_RETRY_MIN_MS;
	ss->retry_max_ms = cfg->reconnect_max_ms > SUBSTORE_RETRY_MIN_MS ?
	    cfg->reconnect_max_ms : 5000;
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
		subscriber_free(ss->all[i].sub);
	free(ss->all);
	free(ss->index);
	free(ss);
}

int
substore_ready(const struct substore *ss)
{
	return ss->ready;
}

const struct subscriber *
substore_get(const struct substore *ss, const char *id)
{
	size_t i;

	if (ss->index_cap == 0)
		return NULL;
	i = substore_probe(ss, id);
	return ss->index[i] ? ss->all[ss->index[i] - 1].sub : NULL;
}

size_t
substore_count(const struct substore *ss)
{
	return ss->n;
}

const struct subscriber *
substore_at(const struct substore *ss, size_t i)
{
	return i < ss->n ? ss->all[i].sub : NULL;
}
