/*
 * itcluster.c: what the tests and benchmarks on a Redis Cluster share beyond starting
 * it (itest.c): a command sent to the primary that owns its key, the sharded layout
 * written on the cluster the way `dealpushctl layout create` writes it on one Redis,
 * a deal's push states summed over the shards, what reached the gateway simulator
 * per phone, a notifier's readiness from its /healthz, and the steps of a reshard
 * (a slot MIGRATING and IMPORTING, its keys moved, then given to the new node).
 * Test code: it blocks. No cmocka here (the benchmarks link it).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

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

static const char *const it_finals[] = { "sent", "unknown", "failed", "opted_out",
	"expired", "cancelled", "sold_out", "no_consent", "no_subscriber", "quiet_hours",
	"daily_cap", "campaign_cap", "legal_cap", "duplicate", NULL };

int
it_cluster_states(const struct it_cluster *cl, unsigned shards, const char *deal,
    struct it_states *st)
{
	struct shard_layout *l;
	struct err err;
	char key[160];
	unsigned k;
	size_t i;
	int f, rc = 0;

	memset(st, 0, sizeof(*st));
	if ((l = shard_layout_new(shards, &err)) == NULL)
		return -1;
	for (k = 0; k < shards && rc == 0; k++) {
		redisReply *r;

		snprintf(key, sizeof(key), "{%s}push:%s", shard_layout_tag(l, k), deal);
		if ((r = it_cluster_cmd(cl, "HGETALL %s", key)) == NULL ||
		    r->type != REDIS_REPLY_ARRAY) {
			rc = -1;               /* not readable now (a failover) */
			freeReplyObject(r);
			break;
		}
		for (i = 1; i < r->elements; i += 2) {
			const char *v = r->element[i]->str;

			for (f = 0; it_finals[f] != NULL && strcmp(it_finals[f], v) != 0; f++)
				;
			if (it_finals[f] == NULL) {
				st->open++;
				continue;
			}
			st->final++;
			if (strcmp(v, "sent") == 0)
				st->sent++;
			else if (strcmp(v, "unknown") == 0)
				st->unknown++;
			else
				st->other++;
		}
		freeReplyObject(r);
	}
	shard_layout_free(l);
	return rc;
}

int
it_gwsim_texts(const struct it_gwsim *g, const char *prefix, const char *entry, int n,
    int *texts)
{
	cJSON *reqs = it_gwsim_requests(g), *o;
	char fmt[48];
	int dup = 0;

	snprintf(fmt, sizeof(fmt), "%s%%d", prefix);
	memset(texts, 0, (size_t)n * sizeof(*texts));
	cJSON_ArrayForEach(o, reqs) {
		const cJSON *to = cJSON_GetObjectItemCaseSensitive(o, "to");
		const cJSON *sc = cJSON_GetObjectItemCaseSensitive(o, "status");
		const cJSON *push = cJSON_GetObjectItemCaseSensitive(o, "push");
		int i;

		if (!cJSON_IsString(to) || !cJSON_IsNumber(sc) || sc->valueint != 201 ||
		    (entry != NULL && (!cJSON_IsString(push) ||
		    strncmp(push->valuestring, entry, strlen(entry)) != 0)) ||
		    sscanf(to->valuestring, fmt, &i) != 1 || i < 0 || i >= n)
			continue;
		if (++texts[i] == 2)
			dup++;
	}
	cJSON_Delete(reqs);
	return dup;
}

long
it_gwsim_requests_after(const struct it_gwsim *g, const char *entry, long long after_ms)
{
	cJSON *reqs = it_gwsim_requests(g), *o;
	long n = 0;

	cJSON_ArrayForEach(o, reqs) {
		const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts_ms");
		const cJSON *push = cJSON_GetObjectItemCaseSensitive(o, "push");

		n += cJSON_IsNumber(ts) && (long long)ts->valuedouble > after_ms &&
		    cJSON_IsString(push) &&
		    strncmp(push->valuestring, entry, strlen(entry)) == 0;
	}
	cJSON_Delete(reqs);
	return n;
}

/* A number field of object o, or -1 when absent. */
static long
json_long(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

int
it_notifier_health(int port, long *subs, long *served)
{
	char body[8192];
	const cJSON *s, *st;
	cJSON *j;
	int ok;

	if (it_http_get(port, "/healthz", body, sizeof(body)) < 0 ||
	    (j = cJSON_Parse(body)) == NULL)
		return -1;
	s = cJSON_GetObjectItemCaseSensitive(j, "shards");
	st = cJSON_GetObjectItemCaseSensitive(j, "status");
	*subs = json_long(cJSON_GetObjectItemCaseSensitive(j, "mirror"), "subscribers");
	*served = json_long(s, "served");
	ok = cJSON_IsString(st) && strcmp(st->valuestring, "ok") == 0 &&
	    (s == NULL || json_long(s, "loading") == 0);
	cJSON_Delete(j);
	return ok;
}

int
it_cluster_publish(const struct it_cluster *cl, const char *json, char *entry,
    size_t size)
{
	redisReply *r = it_cluster_cmd(cl, "XADD deals * deal %s", json);
	int rc = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING) {
		snprintf(entry, size, "%s:", r->str);
		rc = 0;
	} else {
		fprintf(stderr, "itcluster: XADD deals: %s\n",
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
	}
	freeReplyObject(r);
	return rc;
}

int
it_cluster_primary_of(const struct it_cluster *cl, const char *key)
{
	int i;

	for (i = 0; i < IT_CLUSTER_NODES; i++) {
		redisContext *c;
		redisReply *r;
		int mine;

		if (cl->pids[i] <= 0 || (c = it_redis_connect(cl->ports[i])) == NULL)
			continue;
		r = redisCommand(c, "TYPE %s", key);
		mine = r != NULL && r->type == REDIS_REPLY_STATUS;   /* others: MOVED */
		freeReplyObject(r);
		redisFree(c);
		if (mine)
			return i;
	}
	return -1;
}

const char *
it_cluster_shard_key(unsigned shards, unsigned k, const char *name, char *buf,
    size_t size)
{
	struct shard_layout *l;
	struct err err;

	buf[0] = '\0';
	if ((l = shard_layout_new(shards, &err)) != NULL && k < shards)
		snprintf(buf, size, "{%s}%s", shard_layout_tag(l, k), name);
	shard_layout_free(l);
	return buf;
}

int
it_cluster_is_primary(const struct it_cluster *cl, int i)
{
	redisContext *c;
	redisReply *r;
	int yes;

	if (i < 0 || i >= IT_CLUSTER_NODES || cl->pids[i] <= 0)
		return 0;
	c = it_redis_connect(cl->ports[i]);
	r = redisCommand(c, "ROLE");
	yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "master") == 0;
	freeReplyObject(r);
	redisFree(c);
	return yes;
}

redisReply *
it_cluster_on_node(const struct it_cluster *cl, int i, const char *fmt, const char *a,
    const char *b)
{
	redisContext *c = it_redis_connect(cl->ports[i]);
	redisReply *r = redisCommand(c, fmt, a, b);

	redisFree(c);
	return r;
}

int
it_cluster_node_id(const struct it_cluster *cl, int i, char *id, size_t size)
{
	redisReply *r = it_cluster_on_node(cl, i, "CLUSTER MYID", NULL, NULL);
	int rc = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING) {
		snprintf(id, size, "%s", r->str);
		rc = 0;
	}
	freeReplyObject(r);
	return rc;
}

int
it_cluster_other_primary(const struct it_cluster *cl, int a)
{
	int i;

	for (i = 0; i < IT_CLUSTER_NODES; i++)
		if (i != a && it_cluster_is_primary(cl, i))
			return i;
	return -1;
}

int
it_cluster_slot_begin(const struct it_cluster *cl, int slot, int a, int b)
{
	char ida[64], idb[64], port[16], s[16];
	redisContext *ca;
	redisReply *keys, *r;
	size_t k;
	int rc = 0;

	if (it_cluster_node_id(cl, a, ida, sizeof(ida)) < 0 ||
	    it_cluster_node_id(cl, b, idb, sizeof(idb)) < 0)
		return -1;
	snprintf(s, sizeof(s), "%d", slot);
	freeReplyObject(it_cluster_on_node(cl, b, "CLUSTER SETSLOT %s IMPORTING %s", s,
	    ida));
	ca = it_redis_connect(cl->ports[a]);
	freeReplyObject(redisCommand(ca, "CLUSTER SETSLOT %s MIGRATING %s", s, idb));
	keys = redisCommand(ca, "CLUSTER GETKEYSINSLOT %s 1000", s);
	if (keys == NULL || keys->type != REDIS_REPLY_ARRAY) {
		fprintf(stderr, "itcluster: CLUSTER GETKEYSINSLOT %s: no answer\n", s);
		rc = -1;
	}
	snprintf(port, sizeof(port), "%d", cl->ports[b]);
	for (k = 0; rc == 0 && k < keys->elements; k++) {
		r = redisCommand(ca, "MIGRATE 127.0.0.1 %s %s 0 5000", port,
		    keys->element[k]->str);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "itcluster: MIGRATE: %s\n", r != NULL ? r->str :
			    "no reply");
			rc = -1;
		}
		freeReplyObject(r);
	}
	freeReplyObject(keys);
	redisFree(ca);
	return rc;
}

int
it_cluster_slot_finish(const struct it_cluster *cl, int slot, int b)
{
	char idb[64], s[16];
	int i;

	if (it_cluster_node_id(cl, b, idb, sizeof(idb)) < 0)
		return -1;
	snprintf(s, sizeof(s), "%d", slot);
	freeReplyObject(it_cluster_on_node(cl, b, "CLUSTER SETSLOT %s NODE %s", s, idb));
	for (i = 0; i < IT_CLUSTER_NODES; i++)
		if (i != b && it_cluster_is_primary(cl, i))
			freeReplyObject(it_cluster_on_node(cl, i, "CLUSTER SETSLOT %s NODE %s", s,
			    idb));
	return 0;
}
