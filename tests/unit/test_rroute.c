/*
 * test_rroute.c: where each command goes on a Redis Cluster (notifier/rroute.c): the
 * key of every command the project sends, keys in one slot or not, the commands with
 * no key, for every node, for the node before, and the ones refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rroute.h"
#include "slot.h"

#define ROUTE(out, ...) route(out, (const char *const[]){ __VA_ARGS__, NULL })

static enum rroute_kind
route(struct rroute *out, const char *const *argv)
{
	int argc = 0;

	while (argv[argc] != NULL)
		argc++;
	return rroute_of(argc, argv, NULL, out);
}

static int
slot(const char *key)
{
	return slot_of(key, strlen(key));
}

/* Every command of the table is found (the table is searched by halves: one out of
 * order would be lost), in any case. */
static void
every_command_of_the_table_is_known(void **state)
{
	static const char *const names[] = {
		"APPEND", "ASKING", "AUTH", "CLIENT", "CLUSTER", "CONFIG", "DBSIZE", "DECR",
		"DECRBY", "DEL", "DUMP", "ECHO", "EVAL", "EVALSHA", "EXISTS", "EXPIRE",
		"EXPIREAT", "GET", "GETDEL", "GETSET", "HDEL", "HEXISTS", "HGET", "HGETALL",
		"HINCRBY", "HKEYS", "HLEN", "HMGET", "HSCAN", "HSET", "HSETNX", "HVALS",
		"INCR", "INCRBY", "INFO", "KEYS", "LLEN", "LMOVE", "LPOP", "LPUSH", "LRANGE",
		"MGET", "MSET", "PERSIST", "PEXPIRE", "PING", "PTTL", "RENAME", "RESTORE",
		"ROLE", "RPUSH", "SADD", "SCAN", "SCARD", "SCRIPT", "SET", "SETNX",
		"SISMEMBER", "SMEMBERS", "SMOVE", "SREM", "SSCAN", "STRLEN", "SUBSCRIBE",
		"TIME", "TOUCH", "TTL", "TYPE", "UNLINK", "WAIT", "XACK", "XADD",
		"XAUTOCLAIM", "XCLAIM", "XDEL", "XGROUP", "XINFO", "XLEN", "XPENDING",
		"XRANGE", "XREAD", "XREADGROUP", "XREVRANGE", "XSETID", "XTRIM", "ZADD",
		"ZCARD", "ZCOUNT", "ZINCRBY", "ZRANGE", "ZRANGEBYSCORE", "ZREM",
		"ZREMRANGEBYSCORE", "ZSCORE",
	};
	const char *argv[8] = { NULL, "k", "1", "k", "k", "k", "0", "0" };
	struct rroute r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		argv[0] = names[i];
		if (rroute_of(8, argv, NULL, &r) == RROUTE_UNKNOWN &&
		    strcmp(names[i], "XREAD") != 0 && strcmp(names[i], "XREADGROUP") != 0 &&
		    strcmp(names[i], "MSET") != 0)
			fail_msg("%s not found", names[i]);
	}
	/* The commands the daemon sends outside scripts, as they appear in its
	 * sources: each routes by its key (a new one fails here until the table has
	 * it). */
	{
		static const char *const daemon[] = { "GET", "HGET", "HSET", "HMGET", "HDEL",
			"HINCRBY", "HGETALL", "HKEYS", "HSCAN", "SCARD", "SADD", "ZREM",
			"ZCOUNT", "XACK", "XADD", "XDEL", "XPENDING", "XCLAIM", "XAUTOCLAIM",
			"XRANGE", "XREVRANGE", "XGROUP", "XINFO", "EVALSHA" };

		for (i = 0; i < sizeof(daemon) / sizeof(daemon[0]); i++) {
			argv[0] = daemon[i];
			if (rroute_of(8, argv, NULL, &r) != RROUTE_KEY)
				fail_msg("%s does not route by its key", daemon[i]);
		}
	}
	/* dealpushctl's commands on a cluster (notifier/ctl_cluster.c routes them by
	 * this table, refusing what it does not know): each by its key, TIME anywhere,
	 * SCRIPT LOAD everywhere. */
	{
		static const char *const ctl[] = { "HMGET", "XINFO", "EVALSHA",
			"EVAL", "HGET", "HGETALL", "HSET", "XADD", "XRANGE", "XREVRANGE",
			"XPENDING", "GET" };

		for (i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
			argv[0] = ctl[i];
			if (rroute_of(8, argv, NULL, &r) != RROUTE_KEY)
				fail_msg("%s does not route by its key", ctl[i]);
		}
		assert_int_equal(ROUTE(&r, "EXISTS", "subscribers"), RROUTE_KEY);
		assert_int_equal(ROUTE(&r, "TIME"), RROUTE_ANY);
		assert_int_equal(ROUTE(&r, "SCRIPT", "LOAD", "return 1"), RROUTE_EVERY);
		/* deal_confirm.lua's keys share the slot of "deals" */
		assert_int_equal(ROUTE(&r, "EVALSHA", "abc", "3", "{deals}:dead", "deals",
		    "{deals}:confirmed", "x", "10"), RROUTE_KEY);
		assert_int_equal(r.slot, slot("deals"));
	}
	assert_int_equal(ROUTE(&r, "hget", "{s1}subscribers", "x"), RROUTE_KEY);
	assert_int_equal(r.slot, slot("{s1}subscribers"));
}

static void
keys_are_found_where_each_command_has_them(void **state)
{
	struct rroute r;

	(void)state;
	assert_int_equal(ROUTE(&r, "HGET", "{s3}owner", "epoch"), RROUTE_KEY);
	assert_int_equal(r.key, 1);
	assert_int_equal(r.slot, slot("{s3}owner"));
	assert_int_equal(ROUTE(&r, "XINFO", "STREAM", "{s2}pushes"), RROUTE_KEY);
	assert_int_equal(r.key, 2);
	assert_int_equal(ROUTE(&r, "XGROUP", "CREATE", "deals", "s0", "0", "MKSTREAM"),
	    RROUTE_KEY);
	assert_int_equal(r.slot, slot("deals"));
	assert_int_equal(ROUTE(&r, "XINFO", "HELP"), RROUTE_ANY);
	/* EVALSHA: the numkeys keys, all in one slot */
	assert_int_equal(ROUTE(&r, "EVALSHA", "abc", "2", "{s1}a", "{s1}b", "x", "y"),
	    RROUTE_KEY);
	assert_int_equal(r.key, 3);
	assert_int_equal(r.nkeys, 2);
	assert_int_equal(ROUTE(&r, "EVALSHA", "abc", "0", "x"), RROUTE_ANY);
	assert_int_equal(ROUTE(&r, "EVALSHA", "abc", "2", "{s1}a", "{s2}b"),
	    RROUTE_CROSSSLOT);
	assert_int_equal(r.key, 3);
	/* XREADGROUP: the streams after STREAMS, not their ids */
	assert_int_equal(ROUTE(&r, "XREADGROUP", "GROUP", "deliver", "n-1", "COUNT",
	    "16", "BLOCK", "1000", "STREAMS", "{s2}pushes", ">"), RROUTE_KEY);
	assert_int_equal(r.key, 9);
	assert_int_equal(r.slot, slot("{s2}pushes"));
	assert_int_equal(ROUTE(&r, "XREAD", "COUNT", "1000", "BLOCK", "1000", "streams",
	    "{s0}subscribers:changes", "{s0}x", "0-0", "0-0"), RROUTE_KEY);
	assert_int_equal(r.nkeys, 2);
	/* the mirror's one XREAD over several shards' feeds: split by the caller */
	assert_int_equal(ROUTE(&r, "XREAD", "STREAMS", "{s0}subscribers:changes",
	    "{s1}subscribers:changes", "0-0", "0-0"), RROUTE_CROSSSLOT);
	assert_int_equal(r.key, 2);
	/* DEL and friends: every argument a key */
	assert_int_equal(ROUTE(&r, "DEL", "{d}a", "{d}b", "{d}c"), RROUTE_KEY);
	assert_int_equal(r.nkeys, 3);
	assert_int_equal(ROUTE(&r, "DEL", "a", "b"), slot("a") == slot("b") ?
	    RROUTE_KEY : RROUTE_CROSSSLOT);
	assert_int_equal(ROUTE(&r, "MSET", "{x}a", "1", "{x}b", "2"), RROUTE_KEY);
	assert_int_equal(r.nkeys, 2);
	assert_int_equal(ROUTE(&r, "RENAME", "{x}a", "{x}b"), RROUTE_KEY);
	assert_int_equal(ROUTE(&r, "RENAME", "{x}a", "{y}b"), RROUTE_CROSSSLOT);
	/* lengths given: binary keys */
	{
		const char *argv[] = { "GET", "{s1}a\0b" };
		size_t lens[] = { 3, 8 };

		assert_int_equal(rroute_of(2, argv, lens, &r), RROUTE_KEY);
		assert_int_equal(r.slot, slot_of("{s1}a\0b", 8));
	}
}

static void
commands_without_a_key_go_where_they_must(void **state)
{
	struct rroute r;

	(void)state;
	assert_int_equal(ROUTE(&r, "PING"), RROUTE_ANY);
	assert_int_equal(r.key, -1);
	assert_int_equal(ROUTE(&r, "TIME"), RROUTE_ANY);
	assert_int_equal(ROUTE(&r, "SCRIPT", "LOAD", "return 1"), RROUTE_EVERY);
	assert_int_equal(ROUTE(&r, "WAIT", "1", "100"), RROUTE_SAME);
	assert_int_equal(ROUTE(&r, "SCAN", "0", "MATCH", "x*"), RROUTE_NODES);
	assert_int_equal(ROUTE(&r, "KEYS", "*"), RROUTE_NODES);
	assert_string_equal(rroute_kind_name(RROUTE_SAME), "same");
}

/* Not guessed: an unknown command, one too short to name its key, a bad numkeys. */
static void
unknown_and_malformed_commands_are_refused(void **state)
{
	struct rroute r;

	(void)state;
	assert_int_equal(ROUTE(&r, "FLUSHALL"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "MULTI"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "GET"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "XINFO"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "EVALSHA", "abc", "3", "{s}a"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "EVALSHA", "abc", "-1"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "EVALSHA", "abc", "x"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "XREAD", "COUNT", "1"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "XREAD", "STREAMS", "a", "b", "0"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "MSET", "a", "1", "b"), RROUTE_UNKNOWN);
	assert_int_equal(ROUTE(&r, "AVERYLONGCOMMANDNAMEPASTTHELIMIT"), RROUTE_UNKNOWN);
	assert_int_equal(rroute_of(0, NULL, NULL, &r), RROUTE_UNKNOWN);
	assert_int_equal(r.key, -1);
	assert_int_equal(r.slot, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_command_of_the_table_is_known),
		cmocka_unit_test(keys_are_found_where_each_command_has_them),
		cmocka_unit_test(commands_without_a_key_go_where_they_must),
		cmocka_unit_test(unknown_and_malformed_commands_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
