/*
 * rroute.c: where a command goes on a Redis Cluster (stage: all Redis I/O; include/
 * rroute.h says what it promises).
 *
 * One table, by command name (case-insensitive, as Redis reads it): how its keys are
 * found. Everything else is refused. The key rules are Redis' own (COMMAND INFO's
 * first key, last key and step), kept to the commands this project sends.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rroute.h"
#include "slot.h"

/* How a command's keys are found. */
enum rr_keys {
	RR_FIRST,            /* argv[1] */
	RR_SECOND,           /* argv[2] (XINFO STREAM key, XGROUP CREATE key) */
	RR_ALL,              /* argv[1..argc) (DEL, EXISTS, MGET, UNLINK, TOUCH) */
	RR_PAIRS,            /* argv[1], argv[3] ... (MSET key value ...) */
	RR_TWO,              /* argv[1] and argv[2] (RENAME, SMOVE, LMOVE) */
	RR_EVAL,             /* argv[3 .. 3 + argv[2]) */
	RR_STREAMS,          /* after STREAMS: the first half of what follows */
	RR_NONE,             /* no key: any primary */
	RR_EVERY,            /* every primary */
	RR_SAME,             /* the node of the command before */
	RR_NODES             /* one node's keyspace */
};

struct rr_cmd {
	const char *name;
	enum rr_keys keys;
};

/* Sorted by name (bsearch). */
static const struct rr_cmd rr_table[] = {
	{ "APPEND", RR_FIRST }, { "ASKING", RR_NONE }, { "AUTH", RR_NONE },
	{ "CLIENT", RR_NONE }, { "CLUSTER", RR_NONE }, { "CONFIG", RR_NONE },
	{ "DBSIZE", RR_NODES }, { "DECR", RR_FIRST }, { "DECRBY", RR_FIRST },
	{ "DEL", RR_ALL }, { "DUMP", RR_FIRST }, { "ECHO", RR_NONE },
	{ "EVAL", RR_EVAL }, { "EVALSHA", RR_EVAL }, { "EXISTS", RR_ALL },
	{ "EXPIRE", RR_FIRST }, { "EXPIREAT", RR_FIRST }, { "GET", RR_FIRST },
	{ "GETDEL", RR_FIRST }, { "GETSET", RR_FIRST }, { "HDEL", RR_FIRST },
	{ "HEXISTS", RR_FIRST }, { "HGET", RR_FIRST }, { "HGETALL", RR_FIRST },
	{ "HINCRBY", RR_FIRST }, { "HKEYS", RR_FIRST }, { "HLEN", RR_FIRST },
	{ "HMGET", RR_FIRST }, { "HSCAN", RR_FIRST }, { "HSET", RR_FIRST },
	{ "HSETNX", RR_FIRST }, { "HVALS", RR_FIRST }, { "INCR", RR_FIRST },
	{ "INCRBY", RR_FIRST }, { "INFO", RR_NONE }, { "KEYS", RR_NODES },
	{ "LLEN", RR_FIRST }, { "LMOVE", RR_TWO }, { "LPOP", RR_FIRST },
	{ "LPUSH", RR_FIRST }, { "LRANGE", RR_FIRST }, { "MGET", RR_ALL },
	{ "MSET", RR_PAIRS }, { "PERSIST", RR_FIRST }, { "PEXPIRE", RR_FIRST },
	{ "PING", RR_NONE }, { "PTTL", RR_FIRST }, { "RENAME", RR_TWO },
	{ "RESTORE", RR_FIRST }, { "ROLE", RR_NONE }, { "RPUSH", RR_FIRST },
	{ "SADD", RR_FIRST }, { "SCAN", RR_NODES }, { "SCARD", RR_FIRST },
	{ "SCRIPT", RR_EVERY }, { "SET", RR_FIRST }, { "SETNX", RR_FIRST },
	{ "SISMEMBER", RR_FIRST }, { "SMEMBERS", RR_FIRST }, { "SMOVE", RR_TWO },
	{ "SREM", RR_FIRST }, { "SSCAN", RR_FIRST }, { "STRLEN", RR_FIRST },
	{ "SUBSCRIBE", RR_NONE }, { "TIME", RR_NONE }, { "TOUCH", RR_ALL },
	{ "TTL", RR_FIRST }, { "TYPE", RR_FIRST }, { "UNLINK", RR_ALL },
	{ "WAIT", RR_SAME }, { "XACK", RR_FIRST }, { "XADD", RR_FIRST },
	{ "XAUTOCLAIM", RR_FIRST }, { "XCLAIM", RR_FIRST }, { "XDEL", RR_FIRST },
	{ "XGROUP", RR_SECOND }, { "XINFO", RR_SECOND }, { "XLEN", RR_FIRST },
	{ "XPENDING", RR_FIRST }, { "XRANGE", RR_FIRST }, { "XREAD", RR_STREAMS },
	{ "XREADGROUP", RR_STREAMS }, { "XREVRANGE", RR_FIRST }, { "XSETID", RR_FIRST },
	{ "XTRIM", RR_FIRST }, { "ZADD", RR_FIRST }, { "ZCARD", RR_FIRST },
	{ "ZCOUNT", RR_FIRST }, { "ZINCRBY", RR_FIRST }, { "ZRANGE", RR_FIRST },
	{ "ZRANGEBYSCORE", RR_FIRST }, { "ZREM", RR_FIRST },
	{ "ZREMRANGEBYSCORE", RR_FIRST }, { "ZSCORE", RR_FIRST },
};

#define RR_NAME_MAX 24

static const char *const rr_kind_names[] = { "key", "any", "every", "same", "nodes",
	"crossslot", "unknown" };

const char *
rroute_kind_name(enum rroute_kind k)
{
	return (unsigned)k < sizeof(rr_kind_names) / sizeof(rr_kind_names[0]) ?
	    rr_kind_names[k] : "?";
}

static int
rr_cmp(const void *a, const void *b)
{
	return strcasecmp(a, ((const struct rr_cmd *)b)->name);
}

static size_t
rr_len(const char *const *argv, const size_t *lens, int i)
{
	return lens != NULL ? lens[i] : strlen(argv[i]);
}

/* A small non-negative decimal of len bytes, or -1. */
static long
rr_num(const char *s, size_t len)
{
	long v = 0;
	size_t i;

	if (len == 0 || len > 9)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Adds argv[i] as a key: the first sets key and slot; a key in another slot makes it
 * cross-slot. */
static void
rr_key(struct rroute *r, const char *const *argv, const size_t *lens, int i)
{
	int s = slot_of(argv[i], rr_len(argv, lens, i));

	if (r->nkeys++ == 0) {
		r->key = i;
		r->slot = s;
	} else if (s != r->slot) {
		r->kind = RROUTE_CROSSSLOT;
	}
}

static enum rroute_kind
rr_done(struct rroute *out, enum rroute_kind k)
{
	if (k == RROUTE_UNKNOWN || k == RROUTE_ANY || k == RROUTE_EVERY ||
	    k == RROUTE_SAME || k == RROUTE_NODES) {
		out->key = -1;
		out->slot = -1;
		out->nkeys = 0;
	}
	return out->kind = k;
}

enum rroute_kind
rroute_of(int argc, const char *const *argv, const size_t *lens, struct rroute *out)
{
	const struct rr_cmd *c;
	char name[RR_NAME_MAX + 1];
	size_t n;
	long nk;
	int i, from = -1;

	memset(out, 0, sizeof(*out));
	out->key = out->slot = -1;
	if (argc < 1 || (n = rr_len(argv, lens, 0)) == 0 || n > RR_NAME_MAX)
		return rr_done(out, RROUTE_UNKNOWN);
	memcpy(name, argv[0], n);
	name[n] = '\0';
	if ((c = bsearch(name, rr_table, sizeof(rr_table) / sizeof(rr_table[0]),
	    sizeof(rr_table[0]), rr_cmp)) == NULL)
		return rr_done(out, RROUTE_UNKNOWN);
	out->kind = RROUTE_KEY;
	switch (c->keys) {
	case RR_NONE:
		return rr_done(out, RROUTE_ANY);
	case RR_EVERY:
		return rr_done(out, RROUTE_EVERY);
	case RR_SAME:
		return rr_done(out, RROUTE_SAME);
	case RR_NODES:
		return rr_done(out, RROUTE_NODES);
	case RR_FIRST:
		if (argc < 2)
			return rr_done(out, RROUTE_UNKNOWN);
		rr_key(out, argv, lens, 1);
		break;
	case RR_SECOND:
		/* XINFO HELP, XGROUP HELP: no key */
		if (argc < 3)
			return rr_done(out, argc == 2 ? RROUTE_ANY : RROUTE_UNKNOWN);
		rr_key(out, argv, lens, 2);
		break;
	case RR_ALL:
	case RR_PAIRS:
	case RR_TWO:
		if (argc < 2 || (c->keys == RR_TWO && argc < 3) ||
		    (c->keys == RR_PAIRS && argc % 2 == 0))
			return rr_done(out, RROUTE_UNKNOWN);
		for (i = 1; i < argc; i += c->keys == RR_PAIRS ? 2 : 1) {
			rr_key(out, argv, lens, i);
			if (c->keys == RR_TWO && i == 2)
				break;
		}
		break;
	case RR_EVAL:
		if (argc < 3 || (nk = rr_num(argv[2], rr_len(argv, lens, 2))) < 0 ||
		    nk > argc - 3)
			return rr_done(out, RROUTE_UNKNOWN);
		if (nk == 0)
			return rr_done(out, RROUTE_ANY);
		for (i = 3; i < 3 + nk; i++)
			rr_key(out, argv, lens, i);
		break;
	case RR_STREAMS:
		for (i = 1; i < argc; i++)
			if (rr_len(argv, lens, i) == 7 && strncasecmp(argv[i], "STREAMS", 7) == 0) {
				from = i + 1;
				break;
			}
		if (from < 0 || argc - from < 2 || (argc - from) % 2 != 0)
			return rr_done(out, RROUTE_UNKNOWN);
		for (i = from; i < from + (argc - from) / 2; i++)
			rr_key(out, argv, lens, i);
		break;
	}
	return out->kind;
}
