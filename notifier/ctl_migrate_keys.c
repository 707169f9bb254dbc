/*
 * ctl_migrate_keys.c: how dealpushctl migrate moves each key (stage: outside the
 * pipeline; docs/sharding.md section 4g, "As built"): to the sharded layout whole,
 * split by field, member or entry, or copied to every shard; back merged, summed or
 * the larger kept. Every step can be run again after a kill.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "shard.h"

#include "ctl_int.h"
#include "channel.h"
#include "ctl_migrate_int.h"

/* ---- small helpers ---- */

redisReply *
mig_argv(struct mig *m, int argc, const char **argv, const size_t *lens)
{
	redisReply *r = redisCommandArgv(m->c, argc, argv, lens);

	if (r == NULL) {
		fprintf(stderr, "dealpushctl: migrate: redis: %s: %s\n", argv[0], m->c->errstr);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "dealpushctl: migrate: redis: %s %s: %s\n", argv[0],
		    argc > 1 ? argv[1] : "", r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* One command of up to 4 text arguments; NULL after printing. */
redisReply *
mig_cmd(struct mig *m, const char *a0, const char *a1, const char *a2, const char *a3)
{
	const char *argv[4] = { a0, a1, a2, a3 };
	int argc = a1 == NULL ? 1 : a2 == NULL ? 2 : a3 == NULL ? 3 : 4;

	return mig_argv(m, argc, argv, NULL);
}

int
mig_ok(redisReply *r)
{
	freeReplyObject(r);
	return r != NULL ? 0 : -1;
}

/* A key moved: counted, and the test's fault point (DP_FAULTS=migrate.kill@N) ends
 * the process there as kill -9 would. */
void
mig_tick(struct mig *m)
{
	m->moved++;
	if (fault_hit("migrate.kill")) {
		fprintf(stderr, "dealpushctl: migrate: fault point migrate.kill\n");
		_exit(137);
	}
}

/* "{tag of shard k}name" into buf; -1 when it does not fit. */
int
mig_name(struct mig *m, uint32_t k, const char *name, char *buf, size_t size)
{
	return shard_key(m->l, k, name, buf, size) < 0 ? -1 : 0;
}

/* The subscriber of push id p ("<entry>:<sub>:<ch>") into sub; -1 when it is none. */
static int
mig_push_sub(const char *p, size_t len, char *sub, size_t size)
{
	const char *a = memchr(p, ':', len), *b = NULL, *q;

	for (q = p; q < p + len; q++)
		if (*q == ':')
			b = q;
	if (a == NULL || b == NULL || b <= a + 1 || (size_t)(b - a - 1) >= size)
		return -1;
	memcpy(sub, a + 1, (size_t)(b - a - 1));
	sub[b - a - 1] = '\0';
	return 0;
}

/* The shard of a field or member v (of length len) as kind says; MIG_ALL for a field
 * that names no subscriber (and for what cannot be read: every shard keeps it).
 * (ctl_migrate_int.h) */
uint32_t
mig_shard_of(struct mig *m, enum mig_of kind, const char *v, size_t len)
{
	char sub[MIG_NAME_MAX];
	const char *t = v;
	size_t n = len;
	int i;

	switch (kind) {
	case MIG_OF_HOLDOUT:
		/* "\tat" (when the deal was held out) names no subscriber; "<sub>:<ch>"
		 * is its subscriber's */
		if (len > 0 && v[0] == '\t')
			return MIG_ALL;
		for (i = 0; i < CH_COUNT; i++) {
			size_t cl = strlen(channel_name((enum channel)i));

			if (len > cl + 1 && v[len - cl - 1] == ':' &&
			    memcmp(v + len - cl, channel_name((enum channel)i), cl) == 0) {
				len -= cl + 1;
				break;
			}
		}
		/* FALLTHROUGH */
	case MIG_OF_SUB:
		/* "<sub>\t<channel>" (the behaviour hash's deal last texted): its sub's. */
		if ((t = memchr(v, '\t', len)) != NULL)
			len = (size_t)(t - v);
		if (len >= sizeof(sub))
			return MIG_ALL;
		memcpy(sub, v, len);
		sub[len] = '\0';
		return shard_of(sub, m->n);
	case MIG_OF_PUSH:
		return mig_push_sub(v, len, sub, sizeof(sub)) < 0 ? MIG_ALL :
		    shard_of(sub, m->n);
	case MIG_OF_FIELD:
		if (n > 4 && memcmp(v + n - 4, ":sid", 4) == 0)
			n -= 4;
		else if (n > 8 && memcmp(v + n - 8, ":retired", 8) == 0)
			n -= 8;
		while (n > 0 && v[n - 1] != ':')
			n--;
		if (n <= 1 || n - 1 >= sizeof(sub))
			return MIG_ALL;
		memcpy(sub, v, n - 1);
		sub[n - 1] = '\0';
		return shard_of(sub, m->n);
	case MIG_OF_LINE:
		for (i = 0; i < 5; i++) {
			const char *tab = memchr(t, '\t', n);

			if (tab == NULL)
				return MIG_ALL;
			n -= (size_t)(tab + 1 - t);
			t = tab + 1;
		}
		{
			const char *tab = memchr(t, '\t', n);
			size_t sl = tab != NULL ? (size_t)(tab - t) : n;

			if (sl >= sizeof(sub))
				return MIG_ALL;
			memcpy(sub, t, sl);
			sub[sl] = '\0';
			return shard_of(sub, m->n);
		}
	}
	return MIG_ALL;
}

/* EVALSHA migrate_move.lua src dst how. 0, or -1 after printing. */
int
mig_move(struct mig *m, const char *src, const char *dst, const char *how)
{
	const char *argv[6] = { "EVALSHA", m->sha, "2", src, dst, how };

	if (mig_ok(mig_argv(m, 6, argv, NULL)) < 0)
		return -1;
	mig_tick(m);
	return 0;
}

/* The key's TTL in ms, 0 for none; -1 after printing. */
long long
mig_pttl(struct mig *m, const char *key)
{
	redisReply *r = mig_cmd(m, "PTTL", key, NULL, NULL);
	long long t;

	if (r == NULL)
		return -1;
	t = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? r->integer : 0;
	freeReplyObject(r);
	return t;
}

/* Gives every destination that was written the source's TTL, then deletes the
 * source. got: a flag per shard; one (the destination one) when one is not NULL. */
int
mig_finish_split(struct mig *m, const char *src, long long pttl, const char *got,
    const char *one)
{
	char dst[MIG_NAME_MAX], ms[24];
	uint32_t k, n = one != NULL ? 1 : m->n;

	snprintf(ms, sizeof(ms), "%lld", pttl);
	for (k = 0; pttl > 0 && k < n; k++) {
		if (!got[k])
			continue;
		if (one != NULL)
			snprintf(dst, sizeof(dst), "%s", one);
		else if (mig_name(m, k, src, dst, sizeof(dst)) < 0)
			return -1;
		if (mig_ok(mig_cmd(m, "PEXPIRE", dst, ms, NULL)) < 0)
			return -1;
	}
	return mig_drop(m, src);
}

int
mig_drop(struct mig *m, const char *src)
{
	if (mig_ok(mig_cmd(m, "DEL", src, NULL, NULL)) < 0)
		return -1;
	mig_tick(m);
	return 0;
}

/* ---- to the sharded layout ---- */


int
mig_out_add(struct mig_out *o, const char *a, size_t alen, const char *b, size_t blen)
{
	if (o->argc + 2 > o->cap) {
		int cap = o->cap ? 2 * o->cap : 64;
		const char **na = realloc(o->argv, (size_t)cap * sizeof(*na));
		size_t *nl;

		if (na == NULL)
			return -1;
		o->argv = na;
		if ((nl = realloc(o->lens, (size_t)cap * sizeof(*nl))) == NULL)
			return -1;
		o->lens = nl;
		o->cap = cap;
	}
	o->argv[o->argc] = a;
	o->lens[o->argc++] = alen;
	o->argv[o->argc] = b;
	o->lens[o->argc++] = blen;
	return 0;
}

int
mig_walk_scan(struct mig *m, const char *cmd, const char *src, mig_page_fn *fn, void *arg)
{
	char cursor[32] = "0";

	do {
		const char *argv[5] = { cmd, src, cursor, "COUNT", MIG_BATCH };
		redisReply *r = mig_argv(m, 5, argv, NULL);
		int rc;

		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		rc = fn(m, r->element[1], arg);
		freeReplyObject(r);
		if (rc < 0)
			return -1;
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

/* mig_split's state: per shard its destination, whether it was written, its pairs. */
struct mig_split_walk {
	int zset;
	enum mig_of kind;
	char (*dst)[MIG_NAME_MAX];
	char *got;
	struct mig_out *out;
};

/* mig_page_fn of mig_split: one HSET (ZADD) per shard of the page's pairs. */
static int
mig_split_page(struct mig *m, const redisReply *e, void *arg)
{
	struct mig_split_walk *w = arg;
	size_t i;
	uint32_t k;
	int bad = 0;

	for (k = 0; k < m->n; k++) {
		w->out[k].argc = 0;
		bad |= mig_out_add(&w->out[k], w->zset ? "ZADD" : "HSET", 4, w->dst[k],
		    strlen(w->dst[k]));
	}
	for (i = 0; !bad && i + 1 < e->elements; i += 2) {
		const redisReply *f = e->element[i], *v = e->element[i + 1];
		uint32_t s = mig_shard_of(m, w->kind, f->str, f->len);

		for (k = 0; k < m->n; k++) {
			if (s != MIG_ALL && s != k)
				continue;
			/* ZSCAN answers member, score; ZADD wants score, member. */
			bad |= w->zset ? mig_out_add(&w->out[k], v->str, v->len, f->str, f->len) :
			    mig_out_add(&w->out[k], f->str, f->len, v->str, v->len);
		}
	}
	for (k = 0; !bad && k < m->n; k++) {
		if (w->out[k].argc <= 2)
			continue;
		w->got[k] = 1;
		bad |= mig_ok(mig_argv(m, w->out[k].argc, w->out[k].argv, w->out[k].lens)) < 0;
	}
	return bad ? -1 : 0;
}

/*
 * Splits hash or zset src (type "hash" or "zset") among the shards by what each
 * field (member) names; fields that name none go to every shard. Every destination
 * gets src's TTL; src is deleted last. Run again after a kill, it writes the same.
 */
int
mig_split(struct mig *m, const char *src, int zset, enum mig_of kind)
{
	struct mig_split_walk w = { zset, kind, NULL, NULL, NULL };
	long long pttl = mig_pttl(m, src);
	uint32_t k;
	int rv = -1;

	if (pttl < 0 || (w.dst = calloc(m->n, sizeof(*w.dst))) == NULL ||
	    (w.got = calloc(m->n, 1)) == NULL || (w.out = calloc(m->n, sizeof(*w.out))) == NULL)
		goto out;
	for (k = 0; k < m->n; k++)
		if (mig_name(m, k, src, w.dst[k], sizeof(w.dst[k])) < 0)
			goto out;
	if (mig_walk_scan(m, zset ? "ZSCAN" : "HSCAN", src, mig_split_page, &w) == 0)
		rv = mig_finish_split(m, src, pttl, w.got, NULL);
out:
	for (k = 0; w.out != NULL && k < m->n; k++) {
		free(w.out[k].argv);
		free(w.out[k].lens);
	}
	free(w.out);
	free(w.dst);
	free(w.got);
	return rv;
}

/* mig_abrest's state: the hash and the pairs of the HSET being built. */
struct mig_abrest_walk {
	const char *src;
	struct mig_out out;
};

/* mig_page_fn of mig_abrest: the page's held values whose shard prefix is not the
 * layout's, written again with it (one HSET). */
static int
mig_abrest_page(struct mig *m, const redisReply *e, void *arg)
{
	struct mig_abrest_walk *w = arg;
	char **vals = calloc(e->elements / 2 + 1, sizeof(*vals));
	size_t i, nv = 0;
	int bad = vals == NULL;

	w->out.argc = 0;
	bad |= mig_out_add(&w->out, "HSET", 4, w->src, strlen(w->src));
	for (i = 0; !bad && i + 1 < e->elements; i += 2) {
		const redisReply *f = e->element[i], *v = e->element[i + 1];
		const char *sep = memchr(v->str, '\036', v->len);
		uint32_t k = m->to_shards ? mig_shard_of(m, MIG_OF_FIELD, f->str, f->len) : 0;
		char num[16];
		size_t n, rest;

		if (sep == NULL)
			continue;          /* "-": released already */
		n = (size_t)snprintf(num, sizeof(num), "%lu",
		    (unsigned long)(k == MIG_ALL ? 0 : k));
		if ((size_t)(sep - v->str) == n && memcmp(v->str, num, n) == 0)
			continue;          /* this layout's already */
		rest = v->len - (size_t)(sep - v->str);
		if ((vals[nv] = malloc(n + rest + 1)) == NULL) {
			bad = 1;
			break;
		}
		memcpy(vals[nv], num, n);
		memcpy(vals[nv] + n, sep, rest);
		vals[nv][n + rest] = '\0';
		bad |= mig_out_add(&w->out, f->str, f->len, vals[nv], n + rest) < 0;
		nv++;
	}
	if (!bad && w->out.argc > 2)
		bad |= mig_ok(mig_argv(m, w->out.argc, w->out.argv, w->out.lens)) < 0;
	for (i = 0; i < nv; i++)
		free(vals[i]);
	free(vals);
	return bad ? -1 : 0;
}

int
mig_abrest(struct mig *m, const char *src)
{
	struct mig_abrest_walk w;
	int rv;

	memset(&w, 0, sizeof(w));
	w.src = src;
	rv = mig_walk_scan(m, "HSCAN", src, mig_abrest_page, &w);
	free(w.out.argv);
	free(w.out.lens);
	if (rv == 0)
		mig_tick(m);
	return rv;
}

/* 1 when XADD's error means the id is there already (a run before a kill). */
static int
mig_xadd_dup(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strstr(r->str, "equal or smaller") != NULL;
}

/* XADD dst id fields... of entry e (with id in place of e's when not NULL); an id
 * already there is skipped. 0 or -1. */
int
mig_xadd(struct mig *m, const char *dst, const redisReply *e, const char *id)
{
	const redisReply *f = e->element[1];
	const char **argv = calloc(3 + f->elements, sizeof(*argv));
	size_t *lens = calloc(3 + f->elements, sizeof(*lens)), i;
	redisReply *r;
	int rv = -1;

	if (argv == NULL || lens == NULL)
		goto out;
	argv[0] = "XADD";
	lens[0] = 4;
	argv[1] = dst;
	lens[1] = strlen(dst);
	argv[2] = id != NULL ? id : e->element[0]->str;
	lens[2] = id != NULL ? strlen(id) : e->element[0]->len;
	for (i = 0; i < f->elements; i++) {
		argv[3 + i] = f->element[i]->str;
		lens[3 + i] = f->element[i]->len;
	}
	r = redisCommandArgv(m->c, (int)(3 + f->elements), argv, lens);
	if (r == NULL)
		fprintf(stderr, "dealpushctl: migrate: redis: XADD %s: %s\n", dst, m->c->errstr);
	else if (r->type == REDIS_REPLY_ERROR && !mig_xadd_dup(r))
		fprintf(stderr, "dealpushctl: migrate: redis: XADD %s: %s\n", dst, r->str);
	else
		rv = 0;
	freeReplyObject(r);
out:
	free(argv);
	free(lens);
	return rv;
}

/* The value of field name of a stream entry's fields, or NULL. */
static const redisReply *
mig_entry_field(const redisReply *e, const char *name)
{
	const redisReply *f = e->element[1];
	size_t i;

	for (i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
		if (strcmp(f->element[i]->str, name) == 0)
			return f->element[i + 1];
	return NULL;
}

int
mig_walk_stream(struct mig *m, const char *src, mig_entry_fn *fn, void *arg)
{
	char from[80] = "-";

	for (;;) {
		const char *argv[6] = { "XRANGE", src, from, "+", "COUNT", MIG_BATCH };
		redisReply *r = mig_argv(m, 6, argv, NULL);
		size_t i;

		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		if (r->elements == 0) {
			freeReplyObject(r);
			return 0;
		}
		for (i = 0; i < r->elements; i++)
			if (fn(m, src, r->element[i], arg) < 0) {
				freeReplyObject(r);
				return -1;
			}
		snprintf(from, sizeof(from), "(%s", r->element[r->elements - 1]->element[0]->str);
		freeReplyObject(r);
	}
}

/* mig_entry_fn of mig_split_stream: entry e to the shard of the subscriber in field
 * *by (shard 0 when it names none), with its id. */
static int
mig_split_entry(struct mig *m, const char *src, const redisReply *e, void *arg)
{
	const char *by = arg;
	const redisReply *v = mig_entry_field(e, by);
	uint32_t k = v != NULL && v->type == REDIS_REPLY_STRING ?
	    mig_shard_of(m, MIG_OF_SUB, v->str, v->len) : 0;
	char dst[MIG_NAME_MAX];

	if (k == MIG_ALL)
		k = 0;
	return mig_name(m, k, src, dst, sizeof(dst)) < 0 ? -1 : mig_xadd(m, dst, e, NULL);
}

/* Splits stream src among the shards by the subscriber in field by, each entry with
 * its id (so each shard's stream stays in order and the decay cursors stay valid);
 * an entry without the field goes to shard 0. Then src is deleted. */
static int
mig_split_stream(struct mig *m, const char *src, const char *by)
{
	return mig_walk_stream(m, src, mig_split_entry, (void *)by) < 0 ? -1 :
	    mig_drop(m, src);
}

/* src into every shard's copy (DUMP/RESTORE with its TTL), then src deleted; with
 * deal set (deal:<id>), the copies past shard 0's lose the counters "recipients",
 * "jobs" and "ab_released" (the deal views sum the copies; each shard plans its
 * own, docs/sharding.md 4a). 0, or -1 after printing. */
static int
mig_copy_to_shards(struct mig *m, const char *src, int deal)
{
	redisReply *d = mig_cmd(m, "DUMP", src, NULL, NULL);
	long long pttl = mig_pttl(m, src);
	char dst[MIG_NAME_MAX], ttl[24];
	uint32_t k;
	int rv = -1;

	if (d == NULL || pttl < 0)
		goto out;
	if (d->type != REDIS_REPLY_STRING) {         /* gone meanwhile */
		rv = 0;
		goto out;
	}
	snprintf(ttl, sizeof(ttl), "%lld", pttl);
	for (k = 0; k < m->n; k++) {
		const char *argv[5] = { "RESTORE", dst, ttl, d->str, "REPLACE" };
		const char *del[5] = { "HDEL", dst, "recipients", "jobs", "ab_released" };
		size_t lens[5];

		if (mig_name(m, k, src, dst, sizeof(dst)) < 0)
			goto out;
		lens[0] = 7;
		lens[1] = strlen(dst);
		lens[2] = strlen(ttl);
		lens[3] = d->len;
		lens[4] = 7;
		if (mig_ok(mig_argv(m, 5, argv, lens)) < 0 ||
		    (deal && k > 0 && mig_ok(mig_argv(m, 5, del, NULL)) < 0))
			goto out;
	}
	if (mig_ok(mig_cmd(m, "DEL", src, NULL, NULL)) < 0)
		goto out;
	mig_tick(m);
	rv = 0;
out:
	freeReplyObject(d);
	return rv;
}


/* 1 when sub is a stored subscriber (in either layout's hash). */
static int
mig_is_sub(struct mig *m, const char *sub)
{
	char key[MIG_NAME_MAX];
	redisReply *r;
	int yes = 0;

	if (mig_name(m, shard_of(sub, m->n), "subscribers", key, sizeof(key)) < 0)
		return 0;
	r = mig_cmd(m, "HEXISTS", key, sub, NULL);
	yes = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	if (yes)
		return 1;
	r = mig_cmd(m, "HEXISTS", "subscribers", sub, NULL);
	yes = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	return yes;
}

/* The subscriber at the end of "<prefix><x>:<sub>" (camp:, capcamp:, capdeal:): the
 * first ':' after which a stored subscriber's id follows, else the last one. */
static const char *
mig_cap_sub(struct mig *m, const char *rest)
{
	const char *p, *last = NULL;

	for (p = strchr(rest, ':'); p != NULL; p = strchr(p + 1, ':')) {
		if (mig_is_sub(m, p + 1))
			return p + 1;
		last = p + 1;
	}
	return last;
}

/* The out key of deal's code pool ("{<pool>}:out") into buf: 1, 0 when the deal has
 * no pool (or one this layout cannot share), -1 after printing. The deal's hash is
 * global or, once this walk copied it, shard 0's. */
static int
mig_deal_pool(struct mig *m, const char *deal, char *buf, size_t size)
{
	char key[MIG_NAME_MAX], copy[MIG_NAME_MAX];
	redisReply *p;
	int rv = 0;

	snprintf(key, sizeof(key), "deal:%s", deal);
	if ((p = mig_cmd(m, "HGET", key, "pool", NULL)) == NULL)
		return -1;
	if (p->type != REDIS_REPLY_STRING) {
		freeReplyObject(p);
		if (mig_name(m, 0, key, copy, sizeof(copy)) < 0 ||
		    (p = mig_cmd(m, "HGET", copy, "pool", NULL)) == NULL)
			return -1;
	}
	if (p->type == REDIS_REPLY_STRING && strpbrk(p->str, "{}") == NULL &&
	    snprintf(buf, size, "{%s}:out", p->str) < (int)size)
		rv = 1;
	freeReplyObject(p);
	return rv;
}

/* codepush:<code> moves to the shard of the push it names; the pool's out gets the
 * code, as if that shard had reserved it (keys.h: where a conversion by code finds
 * the shard; reservation 0, below every real one). */
static int
mig_codepush(struct mig *m, const char *src)
{
	redisReply *v = mig_cmd(m, "GET", src, NULL, NULL), *d = NULL;
	char sub[MIG_NAME_MAX], dst[MIG_NAME_MAX], entry[MIG_NAME_MAX], co[MIG_NAME_MAX];
	const char *colon;
	long long pttl = mig_pttl(m, src);
	int rv = -1;

	if (v == NULL || pttl < 0)
		goto out;
	if (v->type != REDIS_REPLY_STRING) {
		rv = 0;
		goto out;
	}
	if (mig_push_sub(v->str, v->len, sub, sizeof(sub)) < 0)
		snprintf(sub, sizeof(sub), "%s", "");
	colon = strchr(v->str, ':');
	snprintf(entry, sizeof(entry), "dealentry:%.*s", colon != NULL ?
	    (int)(colon - v->str) : 0, v->str);
	if ((d = mig_cmd(m, "GET", entry, NULL, NULL)) == NULL)
		goto out;
	if (d->type == REDIS_REPLY_NIL) {
		/* Copied into the shards already by this walk: shard 0's copy says it. */
		char copy[MIG_NAME_MAX];

		freeReplyObject(d);
		if (mig_name(m, 0, entry, copy, sizeof(copy)) < 0 ||
		    (d = mig_cmd(m, "GET", copy, NULL, NULL)) == NULL)
			goto out;
	}
	if (d->type == REDIS_REPLY_STRING && mig_deal_pool(m, d->str, co, sizeof(co)) > 0) {
		char res[MIG_NAME_MAX];

		snprintf(res, sizeof(res), "%s\t%u\t0", d->str,
		    (unsigned)shard_of(sub, m->n));
		if (mig_ok(mig_cmd(m, "HSET", co, src + strlen("codepush:"), res)) < 0)
			goto out;
		/* The pool's out serves every deal of the pool: kept as a reservation
		 * keeps it, not cut to this code's life. */
		if (mig_ok(mig_cmd(m, "EXPIRE", co, MIG_CODES_KEEP_S, NULL)) < 0)
			goto out;
	}
	if (mig_name(m, shard_of(sub, m->n), src, dst, sizeof(dst)) < 0)
		goto out;
	rv = mig_move(m, src, dst, "move");
out:
	freeReplyObject(v);
	freeReplyObject(d);
	return rv;
}

/* Prefixes of the keys split by field ("<sub>:<ch>" and the like). */
static const char *const mig_field_prefixes[] = {
	"push:", "code:", "pushinfo:", "pushline:", "delivery:", "redelivered:", "retext:",
	NULL
};

int
mig_has_prefix(const char *k, const char *p)
{
	return strncmp(k, p, strlen(p)) == 0;
}

/* Moves one key of the single-instance layout to its sharded name(s); a key that
 * stays global (or is sharded already) is left. 0, or -1 after printing. */
int
mig_key_to_shards(struct mig *m, const char *k)
{
	char dst[MIG_NAME_MAX], sub[MIG_NAME_MAX];
	const char *s;
	size_t i;

	if (k[0] == '{')
		return 0;               /* a tag's: moved, a deal's or global by design */
	if (mig_global_name(k, 1, dst, sizeof(dst)) == 1)
		return mig_move(m, k, dst, "move");     /* renamed beside its partner */
	if (strcmp(k, "subscribers") == 0 || strcmp(k, "consent:sms") == 0 ||
	    strcmp(k, "consent:dm") == 0 || strcmp(k, "consent:records") == 0 ||
	    strcmp(k, "behaviour") == 0)
		return mig_split(m, k, 0, MIG_OF_SUB);
	if (strcmp(k, "subscribers:changes") == 0)
		return mig_split_stream(m, k, "id");
	if (strcmp(k, "pushes:log") == 0)
		return mig_split_stream(m, k, "sub");
	if (strcmp(k, "pushes") == 0)
		return mig_jobs(m, k);
	if (mig_has_prefix(k, "abrest:"))
		return mig_ab_rest_to_shards(m, k);
	if (mig_has_prefix(k, "abq:"))
		return mig_ab_queue_to_shards(m, k);
	if (strcmp(k, "consent:epoch") == 0 || strcmp(k, "engagement:decay") == 0 ||
	    mig_has_prefix(k, "order:") || mig_has_prefix(k, "status_seen:") ||
	    mig_has_prefix(k, "dealentry:") || mig_has_prefix(k, "planset:"))
		return mig_copy_to_shards(m, k, 0);
	if (mig_has_prefix(k, "deal:"))
		return mig_copy_to_shards(m, k, 1);   /* each shard plans its own (4a) */
	if (strcmp(k, "stats") == 0 || mig_has_prefix(k, "report:deal:") ||
	    mig_has_prefix(k, "report:rule:") || mig_has_prefix(k, "report:campaign:") ||
	    mig_has_prefix(k, "series:"))
		return mig_name(m, 0, k, dst, sizeof(dst)) < 0 ? -1 :
		    mig_move(m, k, dst, "move");
	if (strcmp(k, "delayed") == 0)
		return mig_split(m, k, 1, MIG_OF_LINE);
	if (strcmp(k, "resolve:due") == 0)
		return mig_split(m, k, 1, MIG_OF_PUSH);
	if (strcmp(k, "resolve:info") == 0 || strcmp(k, "resolve:tries") == 0)
		return mig_split(m, k, 0, MIG_OF_PUSH);
	if (mig_has_prefix(k, "holdout:"))
		return mig_split(m, k, 0, MIG_OF_HOLDOUT);
	for (i = 0; mig_field_prefixes[i] != NULL; i++)
		if (mig_has_prefix(k, mig_field_prefixes[i]))
			return mig_split(m, k, 0, MIG_OF_FIELD);
	if (mig_has_prefix(k, "codepush:"))
		return mig_codepush(m, k);
	s = NULL;
	if (strcmp(k, "suppressed:sms") == 0 || mig_has_prefix(k, "phones:") ||
	    mig_has_prefix(k, "dmx:"))
		return mig_split(m, k, 0, MIG_OF_SUB);  /* by the number, the field */
	if (mig_has_prefix(k, "inbound:done:") || strcmp(k, "stops") == 0)
		return mig_copy_to_shards(m, k, 0);     /* every shard's, as it was */
	if (mig_has_prefix(k, "texts:"))
		s = k + strlen("texts:");
	else if (mig_has_prefix(k, "optout_ack:"))
		s = k + strlen("optout_ack:");   /* a number's keys: keys_phone */
	else if (mig_has_prefix(k, "signup:asked:"))
		s = k + strlen("signup:asked:");
	else if (mig_has_prefix(k, "signup:"))
		s = k + strlen("signup:");
	else if (mig_has_prefix(k, "proof:"))
		s = k + strlen("proof:");        /* by its own hash (keys_proof) */
	else if (mig_has_prefix(k, "lastsent:sms:") || mig_has_prefix(k, "lastsent:dm:"))
		s = strchr(k + strlen("lastsent:"), ':') + 1;   /* keys_lastsent */
	else if (mig_has_prefix(k, "camp:") || mig_has_prefix(k, "capcamp:") ||
	    mig_has_prefix(k, "capdeal:"))
		s = mig_cap_sub(m, strchr(k, ':') + 1);
	else if (mig_has_prefix(k, "clicked:"))
		s = mig_push_sub(k + 8, strlen(k + 8), sub, sizeof(sub)) == 0 ? sub : NULL;
	if (s == NULL)
		return 0;               /* global */
	if (mig_name(m, shard_of(s, m->n), k, dst, sizeof(dst)) < 0)
		return -1;
	return mig_move(m, k, dst, "move");
}
