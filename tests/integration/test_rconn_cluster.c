/*
 * test_rconn_cluster.c: an rconn on a Redis Cluster (rconn_config.cluster;
 * notifier/rconn_cluster.c, rroute.h), on a real cluster of six redis-server (three
 * primaries, three replicas), driven on a libevent loop as the daemon drives it:
 * rconn_cmd, rconn_argv and the embedded scripts through scripts.c and durable.c.
 *
 * Keys of every shard land on their slot's primary; the scripts are loaded on every
 * primary and each call runs where its keys are; a durable call's WAIT reaches the
 * primary of the script's slot and counts its replica; a blocking XREADGROUP on one
 * rconn gets what another added; a command whose keys span two slots is refused
 * with no callback. Every callback is counted (exactly once), never timed.
 * Last, dealpushctl's synchronous router on the same cluster (notifier/ctl_cluster.c):
 * an EVALSHA answered NOSCRIPT by a primary that lost its scripts is loaded there and
 * run once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "../../notifier/ctl_int.h"
#include "clock.h"
#include "durable.h"
#include "itest.h"
#include "rconn.h"
#include "scripts.h"
#include "slot.h"

#define KEYS_N 64

struct rec {
	int calls;
	int is_null;
	int is_err;
	long long integer;
	char str[128];
	int durable;
};

struct fx {
	struct it_cluster cl;
	struct event_base *base;
	struct rconn *rc;
	char seeds[128];
	int ready_calls;
};

static struct fx *fx;

static void
rec_reply(struct rec *rec, const struct redisReply *r)
{
	rec->calls++;
	rec->is_null = r == NULL;
	rec->is_err = r != NULL && r->type == REDIS_REPLY_ERROR;
	if (r != NULL) {
		rec->integer = r->integer;
		if (r->str != NULL)
			snprintf(rec->str, sizeof(rec->str), "%s", r->str);
		else {
			/* an array: its first string, however deep (XREADGROUP's answer is
			 * [[stream, entries]]) */
			while (r->type == REDIS_REPLY_ARRAY && r->elements > 0)
				r = r->element[0];
			if (r->str != NULL)
				snprintf(rec->str, sizeof(rec->str), "%s", r->str);
		}
	}
}

static void
on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	(void)rc;
	rec_reply(arg, r);
}

static void
on_durable(struct rconn *rc, struct redisReply *r, int durable, void *arg)
{
	struct rec *rec = arg;

	(void)rc;
	rec_reply(rec, r);
	rec->durable = durable;
}

static void
on_ready(struct rconn *rc, void *arg)
{
	((struct fx *)arg)->ready_calls++;
	scripts_load(rc);             /* as main.c does: on every primary */
}

static void
loop_ms(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

/* Runs the loop until every rec of recs[0..n) has its callback (max_ms at most),
 * then checks each ran exactly once. */
static void
settle(struct rec *recs, int n, long max_ms)
{
	int64_t end = clock_mono_ms() + max_ms;
	int i, done;

	do {
		for (i = 0, done = 0; i < n; i++)
			done += recs[i].calls > 0;
		if (done == n)
			break;
		loop_ms(10);
	} while (clock_mono_ms() < end);
	loop_ms(20);                  /* a second callback would show now */
	for (i = 0; i < n; i++)
		assert_int_equal(recs[i].calls, 1);
}

/* Which primary holds key, by asking each node directly: its port, or -1. */
static int
owner_port(const char *key)
{
	int i, port = -1;

	for (i = 0; i < IT_CLUSTER_NODES; i++) {
		redisContext *c = it_redis_connect(fx->cl.ports[i]);
		redisReply *r = redisCommand(c, "ROLE");
		int primary = r != NULL && r->type == REDIS_REPLY_ARRAY &&
		    strcmp(r->element[0]->str, "master") == 0;

		freeReplyObject(r);
		if (primary) {
			r = redisCommand(c, "EXISTS %s", key);
			if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
				port = fx->cl.ports[i];
			freeReplyObject(r);
		}
		redisFree(c);
	}
	return port;
}

static int
group_setup(void **state)
{
	struct rconn_config cfg;
	int64_t end;

	(void)state;
	if ((fx = calloc(1, sizeof(*fx))) == NULL || it_cluster_start(&fx->cl) < 0 ||
	    scripts_init() < 0 || (fx->base = event_base_new()) == NULL)
		return -1;
	snprintf(fx->seeds, sizeof(fx->seeds), "127.0.0.1:%d,127.0.0.1:%d",
	    fx->cl.ports[0], fx->cl.ports[1]);
	memset(&cfg, 0, sizeof(cfg));
	cfg.cluster = fx->seeds;
	cfg.command_timeout_ms = 2000;
	cfg.reconnect_max_ms = 500;
	if ((fx->rc = rconn_new(fx->base, &cfg, "itcl", on_ready, fx)) == NULL)
		return -1;
	end = clock_mono_ms() + 10000;
	while (!rconn_is_ready(fx->rc) && clock_mono_ms() < end)
		loop_ms(10);
	loop_ms(300);                 /* the scripts' SCRIPT LOAD on every primary */
	return rconn_is_ready(fx->rc) ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (fx == NULL)
		return 0;
	rconn_free(fx->rc);
	if (fx->base != NULL)
		event_base_free(fx->base);
	it_cluster_stop(&fx->cl);
	free(fx);
	fx = NULL;
	return 0;
}

/* rconn_cmd and rconn_argv on keys of many slots: each written where its slot is,
 * read back through the same rconn. */
static void
keys_of_every_slot_land_on_their_primary(void **state)
{
	struct rec set[KEYS_N], get[KEYS_N];
	char key[32];
	int i, ports[3] = { 0 }, distinct = 0, p, j;

	(void)state;
	memset(set, 0, sizeof(set));
	memset(get, 0, sizeof(get));
	assert_int_equal(fx->ready_calls, 1);
	for (i = 0; i < KEYS_N; i++) {
		snprintf(key, sizeof(key), "{s%d}owner", i);
		assert_int_equal(rconn_cmd(fx->rc, on_reply, &set[i], 0, "HSET %s owner n%d",
		    key, i), 0);
	}
	settle(set, KEYS_N, 5000);
	for (i = 0; i < KEYS_N; i++) {
		const char *argv[3] = { "HGET", key, "owner" };

		snprintf(key, sizeof(key), "{s%d}owner", i);
		assert_int_equal(rconn_argv(fx->rc, on_reply, &get[i], 0, 3, argv, NULL), 0);
	}
	settle(get, KEYS_N, 5000);
	for (i = 0; i < KEYS_N; i++) {
		char want[16];

		assert_false(set[i].is_err);
		snprintf(want, sizeof(want), "n%d", i);
		assert_string_equal(get[i].str, want);
		snprintf(key, sizeof(key), "{s%d}owner", i);
		p = owner_port(key);
		assert_true(p > 0);
		for (j = 0; j < distinct && ports[j] != p; j++)
			;
		if (j == distinct && distinct < 3)
			ports[distinct++] = p;
	}
	assert_int_equal(distinct, 3);    /* the keys spread over every primary */
}

/* The embedded scripts run where their keys are: own.lua on shards of every primary,
 * then a durable call, whose WAIT goes to the script's primary and counts its
 * replica. */
static void
scripts_run_on_their_slot_and_wait_counts_the_replica(void **state)
{
	struct durable_config wait = { 1, 2000 };
	struct rec own[KEYS_N], dur[8];
	char key[32];
	int i;

	(void)state;
	memset(own, 0, sizeof(own));
	memset(dur, 0, sizeof(dur));
	for (i = 0; i < KEYS_N; i++) {
		const char *args[4] = { key, "acquire", "itcl", "30000" };

		snprintf(key, sizeof(key), "{s%d}lease", i);
		assert_int_equal(script_call_named(fx->rc, "own", 1, 4, args, NULL, on_reply,
		    &own[i]), 0);
	}
	settle(own, KEYS_N, 5000);
	for (i = 0; i < KEYS_N; i++) {
		assert_false(own[i].is_err);
		assert_string_equal(own[i].str, "ok");
	}
	for (i = 0; i < 8; i++) {
		const char *args[5] = { key, "renew", "itcl", "1", "30000" };

		snprintf(key, sizeof(key), "{s%d}lease", i * 7);
		assert_int_equal(durable_script_call(fx->rc, &wait, "own", 1, 5, args, NULL,
		    on_durable, &dur[i]), 0);
	}
	settle(dur, 8, 8000);
	for (i = 0; i < 8; i++) {
		assert_string_equal(dur[i].str, "ok");
		assert_int_equal(dur[i].durable, 1);
	}
	/* WAIT follows the node that answered, only from inside its callback: outside
	 * one there is no such node, and nothing is sent. */
	{
		const char *argv[3] = { "WAIT", "1", "100" };
		struct rec w = { 0 };

		assert_int_equal(rconn_argv_here(fx->rc, on_reply, &w, 0, 3, argv, NULL), -1);
		loop_ms(50);
		assert_int_equal(w.calls, 0);
	}
}

/* A blocking XREADGROUP on an rconn of its own (as each stream reader has) is
 * answered with what another rconn added to the stream's primary. */
static void
a_blocking_read_gets_what_another_connection_added(void **state)
{
	struct rconn_config cfg;
	struct rconn *rd;
	struct rec grp = { 0 }, rdr = { 0 }, add = { 0 };
	const char *xr[] = { "XREADGROUP", "GROUP", "deliver", "c1", "COUNT", "10",
		"BLOCK", "3000", "STREAMS", "{s5}pushes", ">" };
	int64_t end;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.cluster = fx->seeds;
	cfg.command_timeout_ms = 2000;
	assert_non_null(rd = rconn_new(fx->base, &cfg, "itcl-rd", NULL, NULL));
	end = clock_mono_ms() + 10000;
	while (!rconn_is_ready(rd) && clock_mono_ms() < end)
		loop_ms(10);
	assert_int_equal(rconn_cmd(rd, on_reply, &grp, 0,
	    "XGROUP CREATE {s5}pushes deliver $ MKSTREAM"), 0);
	settle(&grp, 1, 5000);
	assert_false(grp.is_err);
	assert_int_equal(rconn_argv(rd, on_reply, &rdr, 5000, 11, xr, NULL), 0);
	loop_ms(200);
	assert_int_equal(rdr.calls, 0);   /* blocked, not answered */
	assert_int_equal(rconn_cmd(fx->rc, on_reply, &add, 0, "XADD {s5}pushes * j 1"), 0);
	settle(&add, 1, 5000);
	settle(&rdr, 1, 5000);
	assert_false(rdr.is_null || rdr.is_err);
	assert_string_equal(rdr.str, "{s5}pushes");
	rconn_free(rd);
}

/* Keys in two slots cannot be routed: refused at once, no callback ever. A command
 * not in the routing table likewise. */
static void
cross_slot_and_unknown_commands_are_refused(void **state)
{
	struct rec r = { 0 };
	const char *del[] = { "DEL", "{s1}a", "{s2}b" };
	const char *flush[] = { "FLUSHALL" };

	(void)state;
	assert_int_not_equal(slot_of("{s1}a", 5), slot_of("{s2}b", 5));
	assert_int_equal(rconn_argv(fx->rc, on_reply, &r, 0, 3, del, NULL), -1);
	assert_int_equal(rconn_argv(fx->rc, on_reply, &r, 0, 1, flush, NULL), -1);
	assert_int_equal(rconn_cmd(fx->rc, on_reply, &r, 0, "MGET {s1}a {s2}b"), -1);
	loop_ms(100);
	assert_int_equal(r.calls, 0);
	/* One slot: fine. */
	assert_int_equal(rconn_cmd(fx->rc, on_reply, &r, 0, "DEL {s1}a {s1}b"), 0);
	settle(&r, 1, 5000);
	assert_false(r.is_err);
}

/*
 * dealpushctl's router: a script it loaded on every primary (SCRIPT LOAD), then
 * flushed from the primary of the key (as a primary that joined after the load would
 * lack it): its EVALSHA there is answered NOSCRIPT, which means it did not run, so
 * the router loads it on that node and runs it, once. A SHA1 it never loaded stays
 * NOSCRIPT.
 */
static void
ctl_router_loads_a_script_again_on_noscript(void **state)
{
	static const char src[] = "return redis.call('INCR', KEYS[1])";
	static const char key[] = "{ctl-ns}n";
	const char *load[3] = { "SCRIPT", "LOAD", src };
	const char *run[4] = { "EVALSHA", NULL, "1", key };
	const char *get[2] = { "GET", key };
	char err[256], sha[41];
	struct ctl_cluster *cl;
	redisContext *c;
	redisReply *r;
	int i;

	(void)state;
	assert_non_null(cl = ctl_cluster_open(fx->seeds, err, sizeof(err)));
	r = ctl_cluster_argv(cl, 3, load, NULL, err, sizeof(err));
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40);
	memcpy(sha, r->str, 41);
	freeReplyObject(r);
	assert_true((i = it_cluster_primary_of(&fx->cl, key)) >= 0);
	c = it_redis_connect(fx->cl.ports[i]);
	freeReplyObject(redisCommand(c, "DEL %s", key));
	r = redisCommand(c, "SCRIPT FLUSH");
	assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);

	run[1] = sha;
	r = ctl_cluster_argv(cl, 4, run, NULL, err, sizeof(err));
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("EVALSHA after SCRIPT FLUSH: %s", r->str);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	r = ctl_cluster_argv(cl, 2, get, NULL, err, sizeof(err));
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0);
	freeReplyObject(r);

	run[1] = "0123456789012345678901234567890123456789";
	r = ctl_cluster_argv(cl, 4, run, NULL, err, sizeof(err));
	assert_true(r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0);
	freeReplyObject(r);
	freeReplyObject(redisCommand(c, "DEL %s", key));
	redisFree(c);
	ctl_cluster_free(cl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_of_every_slot_land_on_their_primary),
		cmocka_unit_test(scripts_run_on_their_slot_and_wait_counts_the_replica),
		cmocka_unit_test(a_blocking_read_gets_what_another_connection_added),
		cmocka_unit_test(cross_slot_and_unknown_commands_are_refused),
		cmocka_unit_test(ctl_router_loads_a_script_again_on_noscript),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
