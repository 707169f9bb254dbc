/*
 * ctl_migrate_single.c: dealpushctl migrate --to-single, key by key (stage: outside
 * the pipeline; docs/sharding.md section 4g, "As built"): every shard's copy merged
 * back, summed or the larger kept; and inbound:sids both ways. The helpers are
 * ctl_migrate_keys.c's. Every step can be run again after a kill.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shard.h"

#include "ctl_int.h"
#include "ctl_migrate_int.h"

/* ---- back to the single-instance layout ---- */

/* The shard whose tag key k begins with ("{tag}..."), with the name after it in
 * *name; MIG_ALL when it is no shard's key of this layout. */
uint32_t
mig_tag_of(struct mig *m, const char *k, const char **name)
{
	const char *close = k[0] == '{' ? strchr(k, '}') : NULL;
	uint32_t i;

	if (close == NULL)
		return MIG_ALL;
	for (i = 0; i < m->n; i++) {
		const char *t = shard_layout_tag(m->l, i);

		if (strlen(t) == (size_t)(close - k - 1) && memcmp(k + 1, t, strlen(t)) == 0) {
			*name = close + 1;
			return i;
		}
	}
	return MIG_ALL;
}

/* mig_merge_hash's state: the destination and the HSET being built. */
struct mig_merge_walk {
	const char *dst;
	struct mig_out out;
};

/* mig_page_fn of mig_merge_hash: the page's pairs into the destination. */
static int
mig_merge_page(struct mig *m, const redisReply *e, void *arg)
{
	struct mig_merge_walk *w = arg;
	size_t i;
	int bad = 0;

	w->out.argc = 0;
	bad |= mig_out_add(&w->out, "HSET", 4, w->dst, strlen(w->dst));
	for (i = 0; !bad && i + 1 < e->elements; i += 2)
		bad |= mig_out_add(&w->out, e->element[i]->str, e->element[i]->len,
		    e->element[i + 1]->str, e->element[i + 1]->len);
	if (!bad && w->out.argc > 2)
		bad |= mig_ok(mig_argv(m, w->out.argc, w->out.argv, w->out.lens)) < 0;
	return bad ? -1 : 0;
}

/* Hash src's fields into dst (HSCAN, HSET), then src deleted; dst keeps its TTL or
 * gets src's. */
static int
mig_merge_hash(struct mig *m, const char *src, const char *dst)
{
	struct mig_merge_walk w;
	char got = 1;
	long long pttl = mig_pttl(m, src), dttl;
	int rv = -1;

	if (pttl < 0 || (dttl = mig_pttl(m, dst)) < 0)
		return -1;
	memset(&w, 0, sizeof(w));
	w.dst = dst;
	/* The destination had no TTL: it takes the source's (the same in every shard). */
	if (mig_walk_scan(m, "HSCAN", src, mig_merge_page, &w) == 0)
		rv = mig_finish_split(m, src, dttl > 0 ? 0 : pttl, &got, dst);
	free(w.out.argv);
	free(w.out.lens);
	return rv;
}

/* The type of key k ("hash", "zset" ...) into buf; -1 after printing. */
static int
mig_type(struct mig *m, const char *k, char *buf, size_t size)
{
	redisReply *r = mig_cmd(m, "TYPE", k, NULL, NULL);

	if (r == NULL)
		return -1;
	snprintf(buf, size, "%s", r->type == REDIS_REPLY_STATUS ? r->str : "none");
	freeReplyObject(r);
	return 0;
}

/* A stream id's two numbers. */
static void
mig_id(const char *id, unsigned long long *ms, unsigned long long *seq)
{
	char *end;

	*ms = strtoull(id, &end, 10);
	*seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
}

/*
 * Every shard's stream name merged into the one stream name, in id order (a k-way
 * merge of XRANGE batches). Two shards' streams made their ids apart, so two entries
 * may have the same id: the later one gets the next sequence number of that
 * millisecond ("<ms>-*"); ids written once in one stream come back unchanged. The
 * merge is written into a scratch stream from the start each time, which then
 * replaces name in one step (migrate_move.lua); the shards' streams go last, in one
 * DEL: a kill anywhere leaves either every source or the finished stream.
 */
int
mig_merge_streams(struct mig *m, const char *name)
{
	struct head {
		char key[MIG_NAME_MAX];
		char from[64];
		redisReply *r;
		size_t i;
		int done;
	} *h = calloc(m->n, sizeof(*h));
	const char **del = calloc(m->n + 1, sizeof(*del));
	char tmp[MIG_NAME_MAX];
	unsigned long long lm = 0, ls = 0;
	int rv = -1, any = 0;
	uint32_t k;

	if (h == NULL || del == NULL)
		goto out;
	snprintf(tmp, sizeof(tmp), MIG_KEY ":%s", name);
	del[0] = "DEL";
	for (k = 0; k < m->n; k++) {
		redisReply *r;

		if (mig_name(m, k, name, h[k].key, sizeof(h[k].key)) < 0)
			goto out;
		snprintf(h[k].from, sizeof(h[k].from), "-");
		del[1 + k] = h[k].key;
		if ((r = mig_cmd(m, "EXISTS", h[k].key, NULL, NULL)) == NULL)
			goto out;
		any |= r->type == REDIS_REPLY_INTEGER && r->integer > 0;
		freeReplyObject(r);
	}
	if (!any) {
		rv = 0;                 /* merged before a kill, or never written */
		goto out;
	}
	if (mig_ok(mig_cmd(m, "DEL", tmp, NULL, NULL)) < 0)
		goto out;
	for (;;) {
		uint32_t best = MIG_ALL;
		unsigned long long bm = 0, bs = 0, am, as;
		char id[64];

		for (k = 0; k < m->n; k++) {
			if (h[k].done)
				continue;
			if (h[k].r == NULL || h[k].i >= h[k].r->elements) {
				const char *argv[6] = { "XRANGE", h[k].key, h[k].from, "+", "COUNT",
					MIG_BATCH };

				freeReplyObject(h[k].r);
				h[k].i = 0;
				if ((h[k].r = mig_argv(m, 6, argv, NULL)) == NULL ||
				    h[k].r->type != REDIS_REPLY_ARRAY)
					goto out;
				if (h[k].r->elements == 0) {
					h[k].done = 1;
					continue;
				}
				snprintf(h[k].from, sizeof(h[k].from), "(%s",
				    h[k].r->element[h[k].r->elements - 1]->element[0]->str);
			}
			mig_id(h[k].r->element[h[k].i]->element[0]->str, &am, &as);
			if (best == MIG_ALL || am < bm || (am == bm && as < bs)) {
				best = k;
				bm = am;
				bs = as;
			}
		}
		if (best == MIG_ALL)
			break;
		/* Not after the last one written: the same millisecond, the next number. */
		if (!(bm > lm || (bm == lm && bs > ls) || (lm == 0 && ls == 0))) {
			bs = ls + 1;
			snprintf(id, sizeof(id), "%llu-%llu", lm, bs);
			bm = lm;
		} else {
			id[0] = '\0';
		}
		if (mig_xadd(m, tmp, h[best].r->element[h[best].i], id[0] ? id : NULL) < 0)
			goto out;
		lm = bm;
		ls = bs;
		h[best].i++;
	}
	if (mig_move(m, tmp, name, "move") < 0 ||
	    mig_ok(mig_argv(m, (int)(1 + m->n), del, NULL)) < 0)
		goto out;
	rv = 0;
out:
	for (k = 0; h != NULL && k < m->n; k++)
		freeReplyObject(h[k].r);
	free(h);
	free(del);
	return rv;
}

/* 1 for "{d:<deal>}codeout" (keys.h), a key of the sharded layout only. */
int
mig_is_codeout(const char *k)
{
	size_t n = strlen(k);

	return mig_has_prefix(k, "{d:") && n > 11 && strcmp(k + n - 8, "}codeout") == 0;
}

/* Moves one key of the sharded layout back to its single-instance name, merging it
 * with what the other shards moved there already. The streams wait for
 * mig_merge_streams. 0, or -1 after printing. */
int
mig_key_to_single(struct mig *m, const char *k)
{
	char type[16];
	const char *name = NULL;

	if (mig_is_codeout(k) || mig_is_pool_side(k)) {
		/* No such key in the single-instance layout: codepush: says it all, and
		 * every code out of its pool is back (mig_codes_to_single). */
		if (mig_ok(mig_cmd(m, "DEL", k, NULL, NULL)) < 0)
			return -1;
		mig_tick(m);
		return 0;
	}
	{
		char dst[MIG_NAME_MAX];

		if (mig_global_name(k, 0, dst, sizeof(dst)) == 1)
			return mig_move(m, k, dst, "move");   /* its single-instance name */
	}
	if (mig_has_prefix(k, "abrest:"))
		return mig_abrest(m, k);
	if (mig_tag_of(m, k, &name) == MIG_ALL)
		return 0;
	if (mig_has_prefix(name, "abq:"))
		return mig_ab_queue_to_single(m, k, name);
	if (mig_has_prefix(name, "abrest:")) {
		/* Merged as any hash, then its values name shard 0 (the walk may not
		 * meet the merged key again). */
		redisReply *r = mig_cmd(m, "EXISTS", name, NULL, NULL);
		int there = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;

		if (r == NULL)
			return -1;
		freeReplyObject(r);
		if ((there ? mig_merge_hash(m, k, name) : mig_move(m, k, name, "keep")) < 0)
			return -1;
		return mig_abrest(m, name);
	}
	if (strcmp(name, "pushes:log") == 0 || strcmp(name, "subscribers:changes") == 0)
		return 0;
	if (strcmp(name, "pushes") == 0)
		return mig_jobs(m, k);
	if (strcmp(name, "stats") == 0 || mig_has_prefix(name, "report:deal:") ||
	    mig_has_prefix(name, "report:rule:") || mig_has_prefix(name, "report:campaign:") ||
	    mig_has_prefix(name, "series:"))
		return mig_move(m, k, name, "sum");
	if (strcmp(name, "consent:epoch") == 0)
		return mig_move(m, k, name, "max");
	if (mig_has_prefix(name, "deal:"))
		return mig_move(m, k, name, "deal");
	if (strcmp(name, "engagement:decay") == 0)
		return mig_move(m, k, name, "maxid");
	if (mig_type(m, k, type, sizeof(type)) < 0)
		return -1;
	if (strcmp(type, "none") == 0)
		return 0;
	if (strcmp(type, "hash") == 0) {
		redisReply *r = mig_cmd(m, "EXISTS", name, NULL, NULL);
		int there = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;

		if (r == NULL)
			return -1;
		freeReplyObject(r);
		return there ? mig_merge_hash(m, k, name) : mig_move(m, k, name, "keep");
	}
	if (strcmp(type, "zset") == 0 || strcmp(type, "set") == 0) {
		const char *argv[7] = { strcmp(type, "zset") == 0 ? "ZUNIONSTORE" :
			"SUNIONSTORE", name, "2", name, k, "AGGREGATE", "MAX" };
		redisReply *r = mig_cmd(m, "EXISTS", name, NULL, NULL);
		int there = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		long long pttl;

		if (r == NULL)
			return -1;
		freeReplyObject(r);
		if (!there)
			return mig_move(m, k, name, "keep");
		if ((pttl = mig_pttl(m, k)) < 0)
			return -1;
		if (strcmp(type, "set") == 0) {
			argv[2] = name;
			argv[3] = k;
			if (mig_ok(mig_argv(m, 4, argv, NULL)) < 0)
				return -1;
		} else if (mig_ok(mig_argv(m, 7, argv, NULL)) < 0) {
			return -1;
		}
		{
			char got = 1;

			return mig_finish_split(m, k, pttl, &got, name);
		}
	}
	/* A string (order:, status_seen:, codepush:, clicked:, texts: are zsets ...):
	 * the first shard's copy is kept. */
	return mig_move(m, k, name, "keep");
}

/* ---- inbound:sids: on the slot of the number in the sharded layout ---- */

/* How long a replay of an inbound message is recognised across a migration: Twilio
 * retries a webhook for minutes, not days. */
#define MIG_SIDS_RECENT_S (2 * 86400)

/* 1 when an inbound:sids value ("<when>\t<op>\t<ch>", "pending\t<when>\t...") is
 * younger than MIG_SIDS_RECENT_S. */
static int
mig_sid_recent(const char *v, long long now)
{
	if (strncmp(v, "pending\t", 8) == 0)
		v += 8;
	return now - strtoll(v, NULL, 10) <= MIG_SIDS_RECENT_S;
}

/*
 * To the sharded layout: the MessageSids record of inbound:sids names no number, so
 * a sid cannot be placed on its number's slot (docs/sharding.md 4g). Every recent
 * one is copied to every phone shard's {sP}inbound:sids, so that a replay is known
 * wherever its number lands; the whole hash stays where it is as the record (no
 * script of the sharded layout reads it). Back to the single-instance layout the
 * phone shards' hashes are merged into it by the walk, as every hash is; what is
 * left here is the "<sid>:<shard>" form of builds before the phone slots, made
 * "<sid>" again.
 */
/* mig_page_fn of mig_pending: each inbound message cut short (inbound:pending,
 * hook_phone.lua) to the pending hash of its number's phone shard, whose walk
 * finishes it (hooks_pending.c); its number is its record's last field. */
static int
mig_pending_page(struct mig *m, const redisReply *e, void *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i + 1 < e->elements; i += 2) {
		const char *f = e->element[i]->str, *v = e->element[i + 1]->str;
		const char *num = strrchr(v, '\t');
		char dst[MIG_NAME_MAX];

		if (num == NULL)
			continue;       /* not a record of ours: left as it is */
		if (mig_name(m, shard_of(num + 1, m->n), "inbound:pending", dst,
		    sizeof(dst)) < 0 || mig_ok(mig_cmd(m, "HSET", dst, f, v)) < 0 ||
		    mig_ok(mig_cmd(m, "HDEL", "inbound:pending", f, NULL)) < 0)
			return -1;
	}
	return 0;
}

/* mig_page_fn of mig_sids (arg: the time now). */
static int
mig_sids_page(struct mig *m, const redisReply *e, void *arg)
{
	long long now = *(const long long *)arg;
	size_t i;

	for (i = 0; i + 1 < e->elements; i += 2) {
		const char *f = e->element[i]->str, *v = e->element[i + 1]->str;
		const char *colon = strrchr(f, ':');
		char nf[MIG_NAME_MAX], dst[MIG_NAME_MAX];
		uint32_t k;
		int bad = 0;

		if (m->to_shards && colon == NULL && mig_sid_recent(v, now)) {
			for (k = 0; !bad && k < m->n; k++)
				bad |= mig_name(m, k, "inbound:sids", dst, sizeof(dst)) < 0 ||
				    mig_ok(mig_cmd(m, "HSET", dst, f, v)) < 0;
		} else if (!m->to_shards && colon != NULL) {
			snprintf(nf, sizeof(nf), "%.*s", (int)(colon - f), f);
			bad |= mig_ok(mig_cmd(m, "HSET", "inbound:sids", nf, v)) < 0;
			bad |= mig_ok(mig_cmd(m, "HDEL", "inbound:sids", f, NULL)) < 0;
		}
		if (bad)
			return -1;
	}
	return 0;
}

int
mig_sids(struct mig *m)
{
	long long now = (long long)time(NULL);

	if (m->to_shards && mig_walk_scan(m, "HSCAN", "inbound:pending", mig_pending_page,
	    NULL) < 0)
		return -1;
	return mig_walk_scan(m, "HSCAN", "inbound:sids", mig_sids_page, &now);
}
