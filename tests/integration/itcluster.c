/*
 * itcluster.c: what the tests and benchmarks on a Redis Cluster share beyond starting
 * it (itest.c): a command sent to the primary that owns its key, and the sharded
 * layout written on the cluster the way `dealpushctl layout create` writes it on one
 * Redis. Test code: it blocks. No cmocka here (the benchmarks link it).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "err.h"
#include "itest.h"
#include "layout.h"
#include "shard.h"

redisReply *
it_cluster_cmd(const struct it_cluster *cl, const char *fmt, ...)
{
	int i;

	for (i = 0; i < IT_CLUSTER_NODES; i++) {
		redisContext *c;
		redisReply *r;
		va_list ap;

		if (cl->pids[i] <= 0 || (c = it_redis_connect(cl->ports[i])) == NULL)
			continue;
		va_start(ap, fmt);
		r = redisvCommand(c, fmt, ap);
		va_end(ap);
		redisFree(c);
		if (r != NULL && !(r->type == REDIS_REPLY_ERROR &&
		    (strncmp(r->str, "MOVED", 5) == 0 || strncmp(r->str, "READONLY", 8) == 0)))
			return r;
		freeReplyObject(r);
	}
	return NULL;
}

int
it_cluster_layout(const struct it_cluster *cl, unsigned shards)
{
	struct shard_layout *l;
	struct err err;
	char *tags;
	redisReply *r;
	size_t size = (size_t)shards * 16 + 64;
	int rc = -1;

	if ((tags = malloc(size)) == NULL)
		return -1;
	if ((l = shard_layout_new(shards, &err)) == NULL ||
	    shard_layout_tags(l, tags, size) < 0) {
		fprintf(stderr, "itcluster: no layout of %u shards\n", shards);
		goto out;
	}
	r = it_cluster_cmd(cl, "HSET " LAYOUT_KEY " version " SHARD_LAYOUT_VERSION
	    " shards %u hash " SHARD_HASH_NAME " tags %s created %lld", shards, tags,
	    (long long)time(NULL));
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		rc = 0;
	else
		fprintf(stderr, "itcluster: writing the layout: %s\n",
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
	freeReplyObject(r);
out:
	shard_layout_free(l);
	free(tags);
	return rc;
}
