/*
 * itkeys.c: a Redis' keys remembered and compared (itkeys.h); values compared as
 * what they hold (a hash's fields sorted, a stream's entries and groups), never as
 * DUMP bytes, which differ with the encoding a RESTORE chooses. Test code: it blocks,
 * and reads whole keyspaces with KEYS (the test Redis servers hold a few hundred
 * keys). No cmocka here (the benchmarks link it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "itest.h"
#include "itkeys.h"

struct it_key {
	char *name;
	size_t len;
	char type[16];
	long long pttl;               /* -1: none */
};

struct it_keys {
	struct it_key *v;
	size_t n;
	long long at_ms;              /* when the TTLs were read (monotonic) */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connection to port without the harness's abort on failure. */
static redisContext *
conn(int port)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

	if (c == NULL || c->err) {
		fprintf(stderr, "itkeys: cannot connect to 127.0.0.1:%d\n", port);
		redisFree(c);
		return NULL;
	}
	return c;
}

struct it_keys *
it_keys_take(int port)
{
	redisContext *c = conn(port);
	struct it_keys *k = NULL;
	redisReply *keys = NULL;
	size_t i;

	if (c == NULL)
		return NULL;
	keys = redisCommand(c, "KEYS *");
	if (keys == NULL || keys->type != REDIS_REPLY_ARRAY ||
	    (k = calloc(1, sizeof(*k))) == NULL ||
	    (k->v = calloc(keys->elements + 1, sizeof(*k->v))) == NULL)
		goto fail;
	k->at_ms = now_ms();
	for (i = 0; i < keys->elements; i++) {
		const redisReply *e = keys->element[i];
		struct it_key *d = &k->v[k->n];
		redisReply *t = redisCommand(c, "TYPE %b", e->str, e->len);
		redisReply *p = redisCommand(c, "PTTL %b", e->str, e->len);

		if (t == NULL || t->type != REDIS_REPLY_STATUS || p == NULL ||
		    p->type != REDIS_REPLY_INTEGER || (d->name = malloc(e->len + 1)) == NULL) {
			freeReplyObject(t);
			freeReplyObject(p);
			goto fail;
		}
		memcpy(d->name, e->str, e->len + 1);
		d->len = e->len;
		snprintf(d->type, sizeof(d->type), "%s", t->str);
		d->pttl = p->integer >= 0 ? p->integer : -1;
		k->n += p->integer != -2;  /* one that expired meanwhile is not kept */
		if (p->integer == -2)
			free(d->name);
		freeReplyObject(t);
		freeReplyObject(p);
	}
	freeReplyObject(keys);
	redisFree(c);
	return k;
fail:
	fprintf(stderr, "itkeys: cannot read the keys of 127.0.0.1:%d\n", port);
	freeReplyObject(keys);
	redisFree(c);
	it_keys_free(k);
	return NULL;
}

void
it_keys_free(struct it_keys *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->n; i++)
		free(k->v[i].name);
	free(k->v);
	free(k);
}

size_t
it_keys_count(const struct it_keys *k)
{
	return k != NULL ? k->n : 0;
}

long
it_keys_back(const struct it_keys *k, int port, const char *skip, long slack_ms,
    char *why, size_t size)
{
	redisContext *c = conn(port);
	long long elapsed = now_ms() - k->at_ms;
	long bad = 0;
	size_t i;

	why[0] = '\0';
	if (c == NULL)
		return -1;
	for (i = 0; i < k->n; i++) {
		const struct it_key *d = &k->v[i];
		redisReply *t, *p;
		char msg[300] = "";

		if (skip != NULL && strcmp(d->name, skip) == 0)
			continue;
		t = redisCommand(c, "TYPE %b", d->name, d->len);
		p = redisCommand(c, "PTTL %b", d->name, d->len);

		if (t == NULL || p == NULL || t->type != REDIS_REPLY_STATUS ||
		    p->type != REDIS_REPLY_INTEGER)
			snprintf(msg, sizeof(msg), "%.100s: cannot be read", d->name);
		else if (strcmp(t->str, d->type) != 0)
			snprintf(msg, sizeof(msg), "%.100s: %s before, %s now", d->name, d->type,
			    t->str);
		else if (d->pttl < 0 && p->integer != -1)
			snprintf(msg, sizeof(msg), "%.100s: no TTL before, %lld ms now", d->name,
			    p->integer);
		else if (d->pttl >= 0 && (p->integer < 0 ||
		    p->integer > d->pttl + slack_ms ||
		    p->integer < d->pttl - elapsed - slack_ms))
			snprintf(msg, sizeof(msg), "%.100s: TTL %lld ms before, %lld ms now, "
			    "%lld ms later", d->name, d->pttl, p->integer, elapsed);
		if (msg[0] != '\0') {
			if (bad++ == 0)
				snprintf(why, size, "%s", msg);
		}
		freeReplyObject(t);
		freeReplyObject(p);
	}
	redisFree(c);
	return bad;
}

long
it_keys_on_cluster(const struct it_keys *k, const struct it_cluster *cl, char *kinds,
    size_t ksize, char *why, size_t size)
{
	long bad = 0, ttls = 0, streams = 0, hashes = 0;
	size_t i;

	why[0] = '\0';
	for (i = 0; i < k->n; i++) {
		const struct it_key *d = &k->v[i];
		int own = it_cluster_primary_of(cl, d->name);
		redisReply *t = NULL, *p = NULL;
		char msg[300] = "";

		if (own >= 0) {
			t = it_cluster_on_node(cl, own, "TYPE %s", d->name, NULL);
			p = it_cluster_on_node(cl, own, "PTTL %s", d->name, NULL);
		}
		if (own < 0)
			snprintf(msg, sizeof(msg), "%.100s: no primary answers for it", d->name);
		else if (t == NULL || t->type != REDIS_REPLY_STATUS || strcmp(t->str,
		    d->type) != 0)
			snprintf(msg, sizeof(msg), "%.100s: %s on the single Redis, %s on the "
			    "cluster", d->name, d->type, t != NULL && t->type ==
			    REDIS_REPLY_STATUS ? t->str : "nothing");
		else if (d->pttl >= 0 && !(p != NULL && p->type == REDIS_REPLY_INTEGER &&
		    p->integer >= 0))
			snprintf(msg, sizeof(msg), "%.100s lost its TTL", d->name);
		if (msg[0] != '\0' && bad++ == 0)
			snprintf(why, size, "%s", msg);
		ttls += d->pttl >= 0;
		streams += strcmp(d->type, "stream") == 0;
		hashes += strcmp(d->type, "hash") == 0;
		freeReplyObject(t);
		freeReplyObject(p);
	}
	snprintf(kinds, ksize, "%zu keys: %ld streams, %ld hashes, %ld other, %ld with a "
	    "TTL", k->n, streams, hashes, (long)k->n - streams - hashes, ttls);
	return bad;
}

/* A growable byte buffer; len stays 0 and p NULL on failure (oom set). */
struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void
put(struct buf *b, const void *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (p == NULL) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* r written out whole: its type, each string with its length, arrays nested. */
static void
ser(struct buf *b, const redisReply *r)
{
	char head[48];
	size_t i;

	switch (r->type) {
	case REDIS_REPLY_ARRAY:
		snprintf(head, sizeof(head), "*%zu:", r->elements);
		put(b, head, strlen(head));
		for (i = 0; i < r->elements; i++)
			ser(b, r->element[i]);
		break;
	case REDIS_REPLY_INTEGER:
		snprintf(head, sizeof(head), ":%lld;", r->integer);
		put(b, head, strlen(head));
		break;
	case REDIS_REPLY_NIL:
		put(b, "_;", 2);
		break;
	default:
		snprintf(head, sizeof(head), "$%zu:", r->len);
		put(b, head, strlen(head));
		put(b, r->str, r->len);
		break;
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The items of array r, step at a time (1: members, 2: field-value pairs), each
 * written out, sorted and joined into b: a hash or set whatever its encoding. */
static void
ser_sorted(struct buf *b, const redisReply *r, size_t step)
{
	size_t n = r->elements / step, i, k;
	char **items = calloc(n + 1, sizeof(*items));

	if (items == NULL) {
		b->oom = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		struct buf one = { 0 };

		for (k = 0; k < step; k++)
			ser(&one, r->element[i * step + k]);
		items[i] = one.oom ? NULL : one.p;
		if (items[i] == NULL)
			b->oom = 1;
	}
	if (!b->oom) {
		qsort(items, n, sizeof(*items), cmp_str);
		for (i = 0; i < n; i++)
			put(b, items[i], strlen(items[i]));
	}
	for (i = 0; i < n; i++)
		free(items[i]);
	free(items);
}

/* The value of key on c, whatever its encoding, as one string (the caller frees),
 * its type first; NULL when it cannot be read or is gone. */
static char *
value_of(redisContext *c, const char *key, size_t len)
{
	redisReply *t = redisCommand(c, "TYPE %b", key, len), *v = NULL, *g = NULL;
	struct buf b = { 0 };

	if (t == NULL || t->type != REDIS_REPLY_STATUS || strcmp(t->str, "none") == 0)
		goto out;
	put(&b, t->str, strlen(t->str));
	if (strcmp(t->str, "string") == 0)
		v = redisCommand(c, "GET %b", key, len);
	else if (strcmp(t->str, "hash") == 0)
		v = redisCommand(c, "HGETALL %b", key, len);
	else if (strcmp(t->str, "set") == 0)
		v = redisCommand(c, "SMEMBERS %b", key, len);
	else if (strcmp(t->str, "zset") == 0)
		v = redisCommand(c, "ZRANGE %b 0 -1 WITHSCORES", key, len);
	else if (strcmp(t->str, "list") == 0)
		v = redisCommand(c, "LRANGE %b 0 -1", key, len);
	else if (strcmp(t->str, "stream") == 0) {
		v = redisCommand(c, "XRANGE %b - +", key, len);
		g = redisCommand(c, "XINFO GROUPS %b", key, len);
	}
	if (v == NULL || v->type == REDIS_REPLY_ERROR || (g != NULL &&
	    g->type == REDIS_REPLY_ERROR)) {
		b.oom = 1;
		goto out;
	}
	if (strcmp(t->str, "hash") == 0 || strcmp(t->str, "set") == 0)
		ser_sorted(&b, v, strcmp(t->str, "hash") == 0 ? 2 : 1);
	else
		ser(&b, v);
	if (g != NULL)
		ser(&b, g);
out:
	freeReplyObject(t);
	freeReplyObject(v);
	freeReplyObject(g);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

long
it_keys_same_as_cluster(const struct it_cluster *cl, int port, long *n, char *why,
    size_t size)
{
	redisContext *t = conn(port);
	long bad = 0;
	int i;

	why[0] = '\0';
	*n = 0;
	if (t == NULL)
		return -1;
	for (i = 0; i < IT_CLUSTER_NODES; i++) {
		redisContext *c;
		redisReply *keys;
		size_t k;

		if (!it_cluster_is_primary(cl, i) || (c = conn(cl->ports[i])) == NULL)
			continue;
		keys = redisCommand(c, "KEYS *");
		for (k = 0; keys != NULL && keys->type == REDIS_REPLY_ARRAY &&
		    k < keys->elements; k++) {
			const redisReply *e = keys->element[k];
			char *d1 = value_of(c, e->str, e->len);
			char *d2 = value_of(t, e->str, e->len);
			redisReply *p1 = redisCommand(c, "PTTL %b", e->str, e->len);
			redisReply *p2 = redisCommand(t, "PTTL %b", e->str, e->len);
			char msg[300] = "";

			(*n)++;
			if (d1 == NULL || p1 == NULL || p2 == NULL ||
			    p1->type != REDIS_REPLY_INTEGER || p2->type != REDIS_REPLY_INTEGER)
				snprintf(msg, sizeof(msg), "%.100s: cannot be read", e->str);
			else if (d2 == NULL)
				snprintf(msg, sizeof(msg), "%.100s: missing on the target", e->str);
			else if (strcmp(d1, d2) != 0)
				snprintf(msg, sizeof(msg), "%.100s: another value on the target",
				    e->str);
			else if ((p1->integer >= 0) != (p2->integer >= 0))
				snprintf(msg, sizeof(msg), "%.100s: PTTL %lld on the cluster, %lld on "
				    "the target", e->str, p1->integer, p2->integer);
			if (msg[0] != '\0' && bad++ == 0)
				snprintf(why, size, "%s", msg);
			free(d1);
			free(d2);
			freeReplyObject(p1);
			freeReplyObject(p2);
		}
		if (keys == NULL || keys->type != REDIS_REPLY_ARRAY)
			bad = -1;
		freeReplyObject(keys);
		redisFree(c);
		if (bad < 0)
			break;
	}
	redisFree(t);
	return bad;
}
