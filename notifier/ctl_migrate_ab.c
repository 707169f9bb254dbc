/*
 * ctl_migrate_ab.c: `dealpushctl migrate` and what an A/B test holds (docs/sharding.md
 * 4h). In the sharded layout each shard holds its own subscribers' rest of a test:
 * {sK}abrest:<deal> (field "<sub>:<ch>") and {sK}abq:<deal>:<rule> (the fields in the
 * order held); in the single-instance layout one abrest:<deal> and one abq. The
 * test's terms (abtest:<deal>) and the open tests (abtests) are global in both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ctl_migrate_int.h"

int
mig_ab_rest_to_shards(struct mig *m, const char *src)
{
	/* The values' shard prefix first (ab_release.lua only needs a number there),
	 * then the fields to their subscribers' shards. */
	if (mig_abrest(m, src) < 0)
		return -1;
	return mig_split(m, src, 0, MIG_OF_FIELD);
}

/* RPUSH of n members to key (in batches). 0, or -1. */
static int
mig_rpush(struct mig *m, const char *key, const redisReply *const *v, size_t n)
{
	const char **argv;
	size_t *lens, i, at = 0;
	int rv = 0;

	if (n == 0)
		return 0;
	if ((argv = calloc(2 + 500, sizeof(*argv))) == NULL ||
	    (lens = calloc(2 + 500, sizeof(*lens))) == NULL) {
		free(argv);
		return -1;
	}
	argv[0] = "RPUSH";
	argv[1] = key;
	lens[0] = 5;
	lens[1] = strlen(key);
	while (at < n && rv == 0) {
		size_t k = 0;

		for (i = at; i < n && k < 500; i++, k++) {
			argv[2 + k] = v[i]->str;
			lens[2 + k] = v[i]->len;
		}
		rv = mig_ok(mig_argv(m, (int)(2 + k), argv, lens));
		at += k;
	}
	free(argv);
	free(lens);
	return rv;
}

/* dst gets pttl ms (0: none). 0, or -1. */
static int
mig_ab_pexpire(struct mig *m, const char *dst, long long pttl)
{
	char ms[24];

	if (pttl <= 0)
		return 0;
	snprintf(ms, sizeof(ms), "%lld", pttl);
	return mig_ok(mig_cmd(m, "PEXPIRE", dst, ms, NULL));
}

int
mig_ab_queue_to_shards(struct mig *m, const char *src)
{
	char dst[MIG_NAME_MAX];
	redisReply *r = mig_cmd(m, "LRANGE", src, "0", "-1");
	const redisReply **part = NULL;
	long long pttl = mig_pttl(m, src);
	uint32_t k;
	size_t i, n;
	int rv = -1;

	if (r == NULL || pttl < 0 || r->type != REDIS_REPLY_ARRAY)
		goto out;
	if ((part = calloc(r->elements + 1, sizeof(*part))) == NULL)
		goto out;
	for (k = 0; k < m->n; k++) {
		for (i = 0, n = 0; i < r->elements; i++) {
			const redisReply *e = r->element[i];
			uint32_t s = mig_shard_of(m, MIG_OF_FIELD, e->str, e->len);

			/* A member that names no subscriber stays with shard 0. */
			if ((s == MIG_ALL ? 0 : s) == k)
				part[n++] = e;
		}
		if (n == 0)
			continue;
		if (mig_name(m, k, src, dst, sizeof(dst)) < 0 ||
		    mig_rpush(m, dst, part, n) < 0 || mig_ab_pexpire(m, dst, pttl) < 0)
			goto out;
	}
	rv = mig_ok(mig_cmd(m, "DEL", src, NULL, NULL));
	mig_tick(m);
out:
	free(part);
	freeReplyObject(r);
	return rv;
}

int
mig_ab_queue_to_single(struct mig *m, const char *src, const char *dst)
{
	redisReply *r = mig_cmd(m, "LRANGE", src, "0", "-1");
	long long pttl = mig_pttl(m, src);
	int rv = -1;

	if (r == NULL || pttl < 0 || r->type != REDIS_REPLY_ARRAY)
		goto out;
	if (mig_rpush(m, dst, (const redisReply *const *)r->element, r->elements) < 0 ||
	    mig_ab_pexpire(m, dst, pttl) < 0)
		goto out;
	rv = mig_ok(mig_cmd(m, "DEL", src, NULL, NULL));
	mig_tick(m);
out:
	freeReplyObject(r);
	return rv;
}
