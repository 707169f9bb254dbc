/*
 * ctl_migrate_codes.c: `dealpushctl migrate --to-single` and the code pools shared by
 * the shards (docs/sharding.md 4c). In the sharded layout a pool's codes may be out
 * of the pool without being held by a push: in a shard's stash, in a reservation not
 * yet taken, in a give-back not yet applied. The single-instance layout has none of
 * these, so before the keys move every such code goes back to its pool, and the
 * pool's own records ({<pool>}:res, :marks, :out) are dropped by the walk.
 * Idempotent: a code added to a set twice is there once, and each record is deleted
 * only after its codes are back, so a run killed half-way is finished by the next.
 * A quota's tokens (pool "quota:<L>:<deal>", 4c "The quota") are not put back: the
 * single-instance layout has no quota (its one planner cuts at L), so its stashes,
 * give-backs and records, and the counter, are dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "ctl_migrate_int.h"
#include "keys.h"

/* SADD pool code, when out (the pool's code -> reservation) names no reservation
 * or one of prefix ("<deal>\t<shard>\t"): as code_giveback.lua. 0, or -1. */
static int
mig_code_back(struct mig *m, const char *pool, const char *out, const char *prefix,
    const char *code, size_t len)
{
	const char *get[3] = { "HGET", out, code };
	const size_t glen[3] = { 4, strlen(out), len };
	redisReply *o = mig_argv(m, 3, get, glen);
	int rv = -1;

	if (o == NULL)
		return -1;
	if (o->type == REDIS_REPLY_NIL || (o->type == REDIS_REPLY_STRING &&
	    strncmp(o->str, prefix, strlen(prefix)) == 0)) {
		const char *add[3] = { "SADD", pool, code };
		const size_t alen[3] = { 4, strlen(pool), len };
		const char *del[3] = { "HDEL", out, code };   /* "HDEL": glen fits */

		if (mig_ok(mig_argv(m, 3, add, alen)) == 0 &&
		    mig_ok(mig_argv(m, 3, del, glen)) == 0)
			rv = 0;
	} else {
		rv = 0;
	}
	freeReplyObject(o);
	return rv;
}

/* Every member of set key back to pool (mig_code_back), then the set deleted. */
static int
mig_set_back(struct mig *m, const char *key, const char *pool, const char *out,
    const char *prefix)
{
	redisReply *r = mig_cmd(m, "SMEMBERS", key, NULL, NULL);
	size_t i;
	int rv = 0;

	if (r == NULL)
		return -1;
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rv == 0; i++)
		rv = mig_code_back(m, pool, out, prefix, r->element[i]->str,
		    r->element[i]->len);
	freeReplyObject(r);
	return rv == 0 ? mig_ok(mig_cmd(m, "DEL", key, NULL, NULL)) : -1;
}

/* The codes of reservation rid, not taken by its shard, back to pool. */
static int
mig_res_back(struct mig *m, const char *pool, const char *res, const char *out,
    const char *prefix, const char *rid)
{
	redisReply *r = mig_cmd(m, "HGET", res, rid, NULL);
	cJSON *a = NULL, *e;
	int rv = 0;

	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING && (a = cJSON_Parse(r->str)) != NULL)
		cJSON_ArrayForEach(e, a) {
			if (cJSON_IsString(e) && rv == 0)
				rv = mig_code_back(m, pool, out, prefix, e->valuestring,
				    strlen(e->valuestring));
		}
	cJSON_Delete(a);
	freeReplyObject(r);
	return rv == 0 ? mig_ok(mig_cmd(m, "HDEL", res, rid, NULL)) : -1;
}

/* A quota's line of shard k's codestate: its tokens mean nothing in the single
 * layout, so its give-back in flight and its stash go, then the line. 0, or -1. */
static int
mig_quota_line(struct mig *m, uint32_t k, const char *state, const char *field,
    const char *deal, const char *pool)
{
	char name[MIG_NAME_MAX], key[MIG_NAME_MAX];

	snprintf(name, sizeof(name), "codeback:%s:%s", deal, pool);
	if (mig_name(m, k, name, key, sizeof(key)) < 0 ||
	    mig_ok(mig_cmd(m, "DEL", key, NULL, NULL)) < 0)
		return -1;
	snprintf(name, sizeof(name), "codestash:%s:%s", deal, pool);
	if (mig_name(m, k, name, key, sizeof(key)) < 0 ||
	    mig_ok(mig_cmd(m, "DEL", key, NULL, NULL)) < 0)
		return -1;
	mig_tick(m);
	return mig_ok(mig_cmd(m, "HDEL", state, field, NULL));
}

/* One line of shard k's codestate: field "<deal>\t<pool>", value "<resn> <gbn> <rn>
 * <rc> <gb>" (lib/codestate.lua). */
static int
mig_codestate_line(struct mig *m, uint32_t k, const char *state, const char *field,
    const char *value)
{
	char deal[256], pool[512], name[MIG_NAME_MAX], key[MIG_NAME_MAX];
	char res[MIG_NAME_MAX], marks[MIG_NAME_MAX], out[MIG_NAME_MAX];
	char prefix[300], rid[MIG_NAME_MAX], mark[MIG_NAME_MAX];
	long long resn, gbn, rn, rc, gb;
	const char *tab = strchr(field, '\t');
	redisReply *r;

	if (tab == NULL || (size_t)(tab - field) >= sizeof(deal) ||
	    strlen(tab + 1) >= sizeof(pool) ||
	    sscanf(value, "%lld %lld %lld %lld %lld", &resn, &gbn, &rn, &rc, &gb) != 5) {
		/* Not ours to read: dropped with the key, its stash (if any) found by
		 * mig_codes_orphans_to_single. */
		fprintf(stderr, "dealpushctl: migrate: %s: field \"%s\" is not a code "
		    "record; skipped\n", state, field);
		return 0;
	}
	snprintf(deal, sizeof(deal), "%.*s", (int)(tab - field), field);
	snprintf(pool, sizeof(pool), "%s", tab + 1);
	if (keys_pool_quota(pool) > 0)
		return mig_quota_line(m, k, state, field, deal, pool);
	snprintf(res, sizeof(res), "{%s}:res", pool);
	snprintf(marks, sizeof(marks), "{%s}:marks", pool);
	snprintf(out, sizeof(out), "{%s}:out", pool);
	snprintf(prefix, sizeof(prefix), "%s\t%u\t", deal, (unsigned)k);
	/* A reservation the pool answered and the shard never took. */
	if (rn > 0) {
		snprintf(rid, sizeof(rid), "%s%lld", prefix, rn);
		if (mig_res_back(m, pool, res, out, prefix, rid) < 0)
			return -1;
	}
	/* A give-back the pool has not applied (its mark below g). */
	snprintf(name, sizeof(name), "codeback:%s:%s", deal, pool);
	if (mig_name(m, k, name, key, sizeof(key)) < 0)
		return -1;
	if (gb > 0) {
		snprintf(mark, sizeof(mark), "gb\t%s\t%u", deal, (unsigned)k);
		if ((r = mig_cmd(m, "HGET", marks, mark, NULL)) == NULL)
			return -1;
		if (r->type != REDIS_REPLY_STRING || atoll(r->str) < gb) {
			freeReplyObject(r);
			if (mig_set_back(m, key, pool, out, prefix) < 0)
				return -1;
		} else {
			freeReplyObject(r);
		}
	}
	if (mig_ok(mig_cmd(m, "DEL", key, NULL, NULL)) < 0)
		return -1;
	/* The stash: codes no push holds. */
	snprintf(name, sizeof(name), "codestash:%s:%s", deal, pool);
	if (mig_name(m, k, name, key, sizeof(key)) < 0 ||
	    mig_set_back(m, key, pool, out, prefix) < 0)
		return -1;
	mig_tick(m);
	return mig_ok(mig_cmd(m, "HDEL", state, field, NULL));
}

int
mig_codes_to_single(struct mig *m)
{
	char state[MIG_NAME_MAX];
	redisReply *r;
	uint32_t k;
	size_t i;

	for (k = 0; k < m->n; k++) {
		if (mig_name(m, k, "codestate", state, sizeof(state)) < 0 ||
		    (r = mig_cmd(m, "HGETALL", state, NULL, NULL)) == NULL)
			return -1;
		for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
			if (mig_codestate_line(m, k, state, r->element[i]->str,
			    r->element[i + 1]->str) < 0) {
				freeReplyObject(r);
				return -1;
			}
		freeReplyObject(r);
	}
	return 0;
}

/* Calls fn for every key matching pattern (SCAN MATCH). 0, or -1. */
static int
mig_scan(struct mig *m, const char *pattern, int (*fn)(struct mig *, const char *))
{
	char cursor[32] = "0";

	do {
		const char *argv[6] = { "SCAN", cursor, "MATCH", pattern, "COUNT", MIG_BATCH };
		redisReply *r = mig_argv(m, 6, argv, NULL);
		size_t i;

		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (i = 0; i < r->element[1]->elements; i++)
			if (fn(m, r->element[1]->element[i]->str) < 0) {
				freeReplyObject(r);
				return -1;
			}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

/* A shard's key "{tag}<name>": its shard and where <name> starts, or MIG_ALL. */
static uint32_t
mig_shard_key(struct mig *m, const char *k, const char **name)
{
	return mig_tag_of(m, k, name);
}

/* A stash no codestate line names (a code a push held from before the layout was
 * sharded, given back to a stash that never reserved): every code back to its
 * pool. The name is "{tag}codestash:<deal>:<pool>", the pool from ":codes:". */
static int
mig_orphan_stash(struct mig *m, const char *k)
{
	char pool[512];
	const char *name = NULL, *p;
	redisReply *r;
	size_t i;
	int rv = 0;

	if (mig_shard_key(m, k, &name) == MIG_ALL || !mig_has_prefix(name, "codestash:"))
		return 0;
	if (strstr(name + strlen("codestash:"), ":quota:") != NULL &&
	    strstr(name + strlen("codestash:"), ":codes:") == NULL)
		return mig_ok(mig_cmd(m, "DEL", k, NULL, NULL));   /* a quota's tokens */
	if ((p = strstr(name + strlen("codestash:"), ":codes:")) == NULL ||
	    strlen(p + 1) >= sizeof(pool))
		return 0;
	snprintf(pool, sizeof(pool), "%s", p + 1);
	if ((r = mig_cmd(m, "SMEMBERS", k, NULL, NULL)) == NULL)
		return -1;
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rv == 0; i++)
		rv = mig_ok(mig_cmd(m, "SADD", pool, r->element[i]->str, NULL));
	freeReplyObject(r);
	mig_tick(m);
	return rv == 0 ? mig_ok(mig_cmd(m, "DEL", k, NULL, NULL)) : -1;
}

/* A shard's code:<deal> after --to-shards: the codes its pushes hold came from the
 * pool directly. The shard gets a codestate line for the (deal, pool), so that a
 * code given back to its stash is walked and goes back to the pool, and the pool's
 * out names each code as the shard's (reservation 0), for a conversion by code. */
static int
mig_held_codes(struct mig *m, const char *k)
{
	char copy[MIG_NAME_MAX], state[MIG_NAME_MAX], field[MIG_NAME_MAX];
	char out[MIG_NAME_MAX], res[MIG_NAME_MAX];
	const char *name = NULL, *deal;
	uint32_t shard = mig_shard_key(m, k, &name);
	redisReply *p, *h;
	size_t i;
	int rv = 0;

	if (shard == MIG_ALL || !mig_has_prefix(name, "code:"))
		return 0;
	deal = name + strlen("code:");
	snprintf(field, sizeof(field), "deal:%s", deal);
	if (mig_name(m, shard, field, copy, sizeof(copy)) < 0 ||
	    mig_name(m, shard, "codestate", state, sizeof(state)) < 0 ||
	    (p = mig_cmd(m, "HGET", copy, "pool", NULL)) == NULL)
		return -1;
	if (p->type != REDIS_REPLY_STRING || strpbrk(p->str, "{}") != NULL ||
	    strlen(p->str) + strlen(deal) + 32 >= sizeof(field)) {
		freeReplyObject(p);
		return 0;
	}
	snprintf(field, sizeof(field), "%s\t%s", deal, p->str);
	snprintf(out, sizeof(out), "{%s}:out", p->str);
	snprintf(res, sizeof(res), "%s\t%u\t0", deal, (unsigned)shard);
	freeReplyObject(p);
	if (mig_ok(mig_cmd(m, "HSETNX", state, field, "0 0 0 0 0 0")) < 0 ||
	    (h = mig_cmd(m, "HGETALL", k, NULL, NULL)) == NULL)
		return -1;
	for (i = 1; h->type == REDIS_REPLY_ARRAY && i < h->elements && rv == 0; i += 2)
		rv = mig_ok(mig_cmd(m, "HSETNX", out, h->element[i]->str, res));
	freeReplyObject(h);
	if (rv == 0)
		rv = mig_ok(mig_cmd(m, "EXPIRE", out, MIG_CODES_KEEP_S, NULL));
	mig_tick(m);
	return rv;
}

int
mig_codes_to_shards(struct mig *m)
{
	return mig_scan(m, "{*}code:*", mig_held_codes);
}

int
mig_codes_orphans_to_single(struct mig *m)
{
	return mig_scan(m, "{*}codestash:*", mig_orphan_stash);
}

int
mig_is_pool_side(const char *k)
{
	size_t n = strlen(k);
	static const char *const suffix[] = { "}:res", "}:marks", "}:out" };
	size_t i;

	/* A quota's counter "quota:<deal>" is its pool's record too (4c). */
	if (mig_has_prefix(k, "quota:"))
		return 1;
	if (!mig_has_prefix(k, "{codes:") && !mig_has_prefix(k, "{quota:"))
		return 0;
	for (i = 0; i < 3; i++)
		if (n > strlen(suffix[i]) + 7 && strcmp(k + n - strlen(suffix[i]),
		    suffix[i]) == 0)
			return 1;
	return 0;
}
