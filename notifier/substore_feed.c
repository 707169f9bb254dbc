/*
 * substore_feed.c: the mirror's change feeds, one per shard (stage: match).
 *
 * One XREAD BLOCK over the "subscribers:changes" of every shard the last load read
 * (names from keys.h), an HGET in the shard's hash and one in its "behaviour" hash
 * for each id an entry names (only the second for op "behav": lib/behav.lua
 * announces those), and an XINFO STREAM of a feed behind the XREAD, at most once a
 * second per feed, to find entries trimmed or deleted past the mirror's position,
 * which reload everything: a change never read must not be missed silently. Bounded
 * work per callback (one batch of changes per feed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "formats.h"
#include "log.h"
#include "streampos.h"
#include "substore_int.h"

/* ---- the change feed ---- */

/*
 * One reply of a feed round (the XREAD, the XINFO after it, or an HGET) has been
 * handled. When the last is in: reload on a gap, read the batch again when any part
 * failed, else move past the batch.
 */
static void
substore_feed_reply_done(struct substore *ss)
{
	uint32_t k;

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
	/* Every feed: one not read this round has batch_id == last_id and batch_n 0
	 * (substore_feed_send), and stays where it is. */
	for (k = 0; k < ss->nfeeds; k++) {
		struct substore_feed *fd = &ss->feeds[k];

		snprintf(fd->last_id, sizeof(fd->last_id), "%s", fd->batch_id);
		fd->added_seen += fd->batch_n;
	}
	ss->busy = 0;
	substore_ok(ss);
	if (ss->cluster && ss->round_entries == 0) {
		/* Nothing new in any shard: the next round a moment later (the reads
		 * of a cluster do not block). */
		struct timeval tv = { 0, SUBSTORE_POLL_MS * 1000 };

		evtimer_add(ss->poll, &tv);
		return;
	}
	substore_run(ss);
}

struct substore_get {
	struct substore *ss;
	char id[MODEL_ID_MAX + 1];
};

/* The feed of stream name (the change feed of a shard the XREAD read), or NULL. */
static struct substore_feed *
substore_feed_of(struct substore *ss, const char *name)
{
	uint32_t k;

	SUBSTORE_FOREACH_SHARD(ss, k)
		if (strcmp(ss->feeds[k].stream, name) == 0)
			return &ss->feeds[k];
	return NULL;
}

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

static void
substore_on_behav_get(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore_get *g = arg;
	struct substore *ss = g->ss;

	(void)rc;
	if (r == NULL || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING)) {
		log_warnx("event=subscriber_get_failed sub=%s what=behaviour err=\"%s\"", g->id,
		    r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		ss->gets_failed = 1;
	} else {
		substore_apply_behav(ss, g->id, r->type == REDIS_REPLY_NIL ? NULL : r->str,
		    r->type == REDIS_REPLY_NIL ? 0 : r->len);
	}
	free(g);
	substore_feed_reply_done(ss);
}

/* Sends one HGET of id in hash with callback fn; counts it as pending. */
static void
substore_feed_get(struct substore *ss, struct rconn *rc, rconn_reply_fn *fn,
    const char *hash, const char *id)
{
	struct substore_get *g;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		ss->gets_failed = 1;
		return;
	}
	g->ss = ss;
	snprintf(g->id, sizeof(g->id), "%s", id);
	if (rconn_cmd(rc, fn, g, 0, "HGET %s %s", hash, g->id) < 0) {
		free(g);
		ss->gets_failed = 1;
		return;
	}
	ss->pending++;
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
substore_gap_in(struct substore_feed *fd, const struct redisReply *r, char *why,
    size_t size)
{
	const struct redisReply *first;
	const char *maxdel, *last, *first_id = NULL;
	long long len, added;
	unsigned long long seen = fd->added_seen + fd->batch_n;

	(void)streampos_xinfo_str(r, "first-entry", &first);
	if (first != NULL && first->elements == 2 &&
	    first->element[0]->type == REDIS_REPLY_STRING)
		first_id = first->element[0]->str;
	maxdel = streampos_xinfo_str(r, "max-deleted-entry-id", NULL);
	if (maxdel != NULL && streampos_cmp(maxdel, fd->read_from) > 0) {
		snprintf(why, size, "max_deleted_id=%s", maxdel);
		return 1;
	}
	if (!fd->counted || streampos_xinfo_int(r, "entries-added", &added) < 0) {
		if (first_id != NULL && streampos_cmp(first_id, fd->read_from) > 0) {
			snprintf(why, size, "first_id=%s", first_id);
			return 1;
		}
		return 0;
	}
	if (streampos_xinfo_int(r, "length", &len) < 0 ||
	    (last = streampos_xinfo_str(r, "last-generated-id", NULL)) == NULL || added < 0 ||
	    len < 0)
		return -1;
	if (len == 0 || (first_id != NULL && streampos_cmp(first_id, fd->batch_id) > 0)) {
		if ((unsigned long long)added != seen + (unsigned long long)len) {
			snprintf(why, size, "entries_added=%lld read=%llu length=%lld", added,
			    seen, len);
			return 1;
		}
	} else if (streampos_cmp(last, fd->batch_id) == 0 &&
	    (unsigned long long)added != seen) {
		snprintf(why, size, "entries_added=%lld read=%llu", added, seen);
		return 1;
	}
	return 0;
}

/*
 * 1 when feed fd's gap check goes out behind this round's XREAD. At most once every
 * SUBSTORE_CHECK_MS per feed, not every round: during a fan-out the feeds turn over
 * many times a second, and a check of every feed each time cost 0.2 commands per
 * push on 16 shards. A change lost before it was read leaves its mark for good
 * (entries-added above what was read, or max-deleted-entry-id past it), so a later
 * check still finds it: the reload only comes up to a second later.
 */
static int
substore_check_due(struct substore_feed *fd, int64_t now)
{
	if (now < fd->check_at)
		return 0;
	fd->check_at = now + SUBSTORE_CHECK_MS;
	return 1;
}

/*
 * XINFO STREAM, pipelined after the XREAD and so run just after Redis answered it.
 * A stream that is gone while we had read from it counts as a gap too. A check that
 * does not say goes again with the next round.
 */
static void
substore_on_check(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore_feed *fd = arg;
	struct substore *ss = fd->ss;
	char why[160];
	int g;

	(void)rc;
	if (r != NULL && streampos_no_such_key(r)) {
		if (strcmp(fd->read_from, "0-0") != 0) {
			log_warnx("event=subscriber_feed_gap stream=%s last_id=%s missing",
			    fd->stream, fd->read_from);
			ss->gap = 1;
		}
	} else if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
	    (g = substore_gap_in(fd, r, why, sizeof(why))) < 0) {
		ss->gets_failed = 1;
		fd->check_at = 0;
	} else if (g > 0) {
		log_warnx("event=subscriber_feed_gap stream=%s last_id=%s %s", fd->stream,
		    fd->read_from, why);
		ss->gap = 1;
	}
	substore_feed_reply_done(ss);
}

/* 1 when fields f hold a usable "id" at pair j. */
static int
substore_feed_is_id(const struct redisReply *f, size_t j)
{
	return f->element[j]->type == REDIS_REPLY_STRING &&
	    f->element[j + 1]->type == REDIS_REPLY_STRING &&
	    strcmp(f->element[j]->str, "id") == 0 && f->element[j + 1]->len <= MODEL_ID_MAX;
}

/* 1 when the pair at j of an entry's fields f is "rec" <a behaviour record>. */
static int
substore_feed_is_rec(const struct redisReply *f, size_t j)
{
	return f->element[j]->type == REDIS_REPLY_STRING &&
	    f->element[j + 1]->type == REDIS_REPLY_STRING &&
	    strcmp(f->element[j]->str, "rec") == 0;
}

/* An HMGET of the behaviour records an "op behav" entry names (a batch of texts). */
struct substore_mget {
	struct substore *ss;
	size_t n;
	char (*ids)[MODEL_ID_MAX + 1];
};

static void
substore_on_behav_mget(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore_mget *g = arg;
	struct substore *ss = g->ss;
	size_t i;

	(void)rc;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != g->n) {
		log_warnx("event=subscriber_get_failed what=behaviour subscribers=%zu err=\"%s\"",
		    g->n, r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		ss->gets_failed = 1;
	} else {
		for (i = 0; i < g->n; i++) {
			const struct redisReply *v = r->element[i];

			if (v->type == REDIS_REPLY_STRING)
				substore_apply_behav(ss, g->ids[i], v->str, v->len);
			else if (v->type == REDIS_REPLY_NIL)
				substore_apply_behav(ss, g->ids[i], NULL, 0);
		}
	}
	free(g->ids);
	free(g);
	substore_feed_reply_done(ss);
}

/* The behaviour records an "op behav" entry's fields f name: taken from the entry when
 * each id is followed by its "rec"; else (entries of before the records rode along)
 * one HMGET in hash of every id, a batch's texts costing Redis one command. */
static void
substore_feed_mget(struct substore *ss, struct rconn *rc, const char *hash,
    const struct redisReply *f)
{
	struct substore_mget *g = NULL;
	const char **argv = NULL;
	size_t j, n = 0, withrec = 0;

	for (j = 0; j + 1 < f->elements; j += 2) {
		if (!substore_feed_is_id(f, j))
			continue;
		n++;
		withrec += j + 3 < f->elements && substore_feed_is_rec(f, j + 2);
	}
	if (n == 0)
		return;
	if (withrec == n) {
		/* Each record is in the entry itself (lib/behav.lua): no read. */
		for (j = 0; j + 1 < f->elements; j += 2)
			if (substore_feed_is_id(f, j))
				substore_apply_behav(ss, f->element[j + 1]->str,
				    f->element[j + 3]->str, f->element[j + 3]->len);
		return;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->ids = calloc(n, sizeof(*g->ids))) == NULL ||
	    (argv = calloc(n + 2, sizeof(*argv))) == NULL)
		goto fail;
	g->ss = ss;
	argv[0] = "HMGET";
	argv[1] = hash;
	for (j = 0; j + 1 < f->elements; j += 2)
		if (substore_feed_is_id(f, j)) {
			snprintf(g->ids[g->n], sizeof(g->ids[0]), "%s", f->element[j + 1]->str);
			argv[2 + g->n] = g->ids[g->n];
			g->n++;
		}
	if (rconn_argv(rc, substore_on_behav_mget, g, 0, (int)(g->n + 2), argv, NULL) < 0)
		goto fail;
	ss->pending++;
	free(argv);
	return;
fail:
	ss->gets_failed = 1;
	free(argv);
	if (g != NULL)
		free(g->ids);
	free(g);
}

/* The entries of one shard's feed in an XREAD reply: an HGET in the shard for each
 * id named (and of its behaviour record), or, for an "op behav" entry, one HMGET of
 * the behaviour records of all it names. */
static void
substore_feed_entries(struct substore *ss, struct rconn *rc, struct substore_feed *fd,
    const struct redisReply *entries)
{
	enum formats_verdict fv;
	size_t i, j;
	int v, behav_only;

	fd->batch_n = entries->elements;
	ss->round_entries += entries->elements;
	for (i = 0; i < entries->elements; i++) {
		struct redisReply *e = entries->element[i], *f;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_ARRAY ||
		    e->element[0]->len >= sizeof(fd->batch_id))
			continue;
		f = e->element[1];
		if ((v = formats_of_entry(f, &fv)) < 0 || fv != FORMATS_OK) {
			/* Newer than this release reads (or no version): the mirror stops
			 * here and reads the batch again, never skipping a change. */
			log_errorx("event=format_too_new stream=%s entry=%s fv=%d reads=%d-%d "
			    "action=stop_following", fd->stream, e->element[0]->str, v,
			    FORMATS_READ_MIN, FORMATS_READ_MAX);
			ss->gets_failed = 1;
			break;
		}
		snprintf(fd->batch_id, sizeof(fd->batch_id), "%s", e->element[0]->str);
		behav_only = 0;
		for (j = 0; j + 1 < f->elements; j += 2)
			if (f->element[j]->type == REDIS_REPLY_STRING &&
			    f->element[j + 1]->type == REDIS_REPLY_STRING &&
			    strcmp(f->element[j]->str, "op") == 0 &&
			    strcmp(f->element[j + 1]->str, "behav") == 0)
				behav_only = 1;
		if (behav_only) {
			substore_feed_mget(ss, rc, fd->behav, f);
			continue;
		}
		for (j = 0; j + 1 < f->elements; j += 2) {
			if (!substore_feed_is_id(f, j))
				continue;
			/* In this order: a document read again keeps the record it had
			 * (substore_put), then the record is read. */
			substore_feed_get(ss, rc, substore_on_change_get, fd->hash,
			    f->element[j + 1]->str);
			substore_feed_get(ss, rc, substore_on_behav_get, fd->behav,
			    f->element[j + 1]->str);
		}
	}
}

static void
substore_on_changes(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct substore *ss = arg;
	struct substore_feed *fd;
	size_t i;

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
	for (i = 0; i < r->elements; i++) {
		const struct redisReply *st = r->element[i];

		if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
		    st->element[0]->type != REDIS_REPLY_STRING ||
		    st->element[1]->type != REDIS_REPLY_ARRAY ||
		    (fd = substore_feed_of(ss, st->element[0]->str)) == NULL) {
			ss->gets_failed = 1;   /* logged by substore_retry() */
			continue;
		}
		substore_feed_entries(ss, rc, fd, st->element[1]);
	}
	substore_feed_reply_done(ss);
}

/* On a cluster: an XREAD of each shard's feed of its own (the streams are in
 * different slots), not blocking, and the XINFO STREAM of each behind it. 0, or -1
 * when none could be sent (nothing is out). */
static int
substore_feed_send_each(struct substore *ss)
{
	int64_t now = clock_mono_ms();
	uint32_t k;

	ss->pending = 1;               /* held until every command is sent */
	ss->busy = 1;
	SUBSTORE_FOREACH_SHARD(ss, k) {
		struct substore_feed *fd = &ss->feeds[k];
		const char *argv[6] = { "XREAD", "COUNT", SUBSTORE_CHANGES_BATCH, "STREAMS",
			fd->stream, fd->read_from };

		if (rconn_argv(ss->rc, substore_on_changes, ss, 0, 6, argv, NULL) == 0)
			ss->pending++;
		else
			ss->gets_failed = 1;
		if (!substore_check_due(fd, now))
			continue;
		if (rconn_cmd(ss->rc, substore_on_check, fd, 0, "XINFO STREAM %s",
		    fd->stream) == 0) {
			ss->pending++;
		} else {
			ss->gets_failed = 1;
			fd->check_at = 0;
		}
	}
	if (ss->pending == 1) {
		ss->pending = 0;
		ss->busy = 0;
		return -1;
	}
	substore_feed_reply_done(ss);  /* the hold */
	return 0;
}

/* One XREAD over the change feed of every shard of the load's set (substore_run
 * sends none when the set is empty: no stream is an error), each after its last id,
 * and an XINFO STREAM of each pipelined behind it (Redis runs them as soon as it has
 * answered the XREAD). */
void
substore_feed_send(struct substore *ss)
{
	char block[32];
	const char **argv;
	int64_t now;
	uint32_t k;
	int argc = 0;

	if ((argv = calloc(6 + 2 * (size_t)ss->nfeeds, sizeof(*argv))) == NULL) {
		substore_retry(ss, NULL);
		return;
	}
	snprintf(block, sizeof(block), "%ld", ss->block_ms);
	argv[argc++] = "XREAD";
	argv[argc++] = "COUNT";
	argv[argc++] = SUBSTORE_CHANGES_BATCH;
	argv[argc++] = "BLOCK";
	argv[argc++] = block;
	argv[argc++] = "STREAMS";
	/* Every feed starts an empty batch, read or not (substore_feed_reply_done). */
	for (k = 0; k < ss->nfeeds; k++) {
		struct substore_feed *fd = &ss->feeds[k];

		snprintf(fd->read_from, sizeof(fd->read_from), "%s", fd->last_id);
		snprintf(fd->batch_id, sizeof(fd->batch_id), "%s", fd->last_id);
		fd->batch_n = 0;
	}
	ss->gets_failed = 0;
	ss->gap = 0;
	ss->round_entries = 0;
	if (ss->cluster) {
		free(argv);
		if (substore_feed_send_each(ss) < 0)
			substore_retry(ss, NULL);
		return;
	}
	SUBSTORE_FOREACH_SHARD(ss, k)
		argv[argc++] = ss->feeds[k].stream;
	SUBSTORE_FOREACH_SHARD(ss, k)
		argv[argc++] = ss->feeds[k].read_from;
	k = rconn_argv(ss->rc, substore_on_changes, ss, ss->block_ms + 2000, argc, argv,
	    NULL) == 0;
	free(argv);
	if (!k) {
		substore_retry(ss, NULL);
		return;
	}
	ss->busy = 1;
	ss->pending = 1;
	now = clock_mono_ms();
	SUBSTORE_FOREACH_SHARD(ss, k) {
		struct substore_feed *fd = &ss->feeds[k];

		if (!substore_check_due(fd, now))
			continue;
		if (rconn_cmd(ss->rc, substore_on_check, fd, ss->block_ms + 2000,
		    "XINFO STREAM %s", fd->stream) == 0) {
			ss->pending++;
		} else {
			ss->gets_failed = 1;
			fd->check_at = 0;
		}
	}
}
