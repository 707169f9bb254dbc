/*
 * test_rcluster.c: the cluster client (notifier/rcluster.c) on a real cluster of six
 * redis-server (tests/lib.sh dp_start_cluster), driven on a libevent loop.
 *
 * Keys land on their slot's primary; a command reaches every primary; an unknown
 * script is loaded; a slot migrated by hand mid-stream is followed through ASK,
 * TRYAGAIN and MOVED; CLUSTERDOWN is waited out; a SIGSTOPped primary fails a command
 * at its deadline; a killed primary's replica takes over; freeing answers what was
 * pending. Every callback is counted (exactly once), never timed. The tests share
 * one cluster and run in order: the last ones break it.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "clock.h"
#include "formats.h"
#include "itest.h"
#include "rcluster.h"
#include "slot.h"

#define BATCH 300

/* One command's outcome. */
struct rec {
	int calls;
	int is_null;
	int is_err;
	char str[64];
};

struct fx {
	struct it_cluster cl;
	struct event_base *base;
	struct rcluster *rcl;
	int ready_calls;
};

static struct fx *fx;

static void
on_reply(struct rcluster *rcl, struct redisReply *r, void *arg)
{
	struct rec *rec = arg;

	(void)rcl;
	rec->calls++;
	rec->is_null = r == NULL;
	rec->is_err = r != NULL && r->type == REDIS_REPLY_ERROR;
	if (r != NULL && r->str != NULL)
		snprintf(rec->str, sizeof(rec->str), "%s", r->str);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
		size_t i, len = 0;

		/* The elements, comma-separated. */
		for (i = 0; i < r->elements && len < sizeof(rec->str); i++)
			len += (size_t)snprintf(rec->str + len, sizeof(rec->str) - len, "%s%s",
			    i > 0 ? "," : "", r->element[i]->str ? r->element[i]->str : "");
	}
}

static void
on_ready(struct rcluster *rcl, void *arg)
{
	(void)rcl;
	((struct fx *)arg)->ready_calls++;
}

/* Runs the loop for about ms milliseconds. */
static void
loop_ms(long ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

/* Runs the loop until *n reaches want or max_ms passes; returns *n. */
static int
run_until(int *n, int want, long max_ms)
{
	int64_t end = clock_mono_ms() + max_ms;

	while (*n < want && clock_mono_ms() < end)
		loop_ms(10);
	return *n;
}

static int
run_ready(void)
{
	int ready = 0;
	int64_t end = clock_mono_ms() + 10000;

	while (!(ready = rcluster_is_ready(fx->rcl)) && clock_mono_ms() < end)
		loop_ms(10);
	return ready;
}

/* Callbacks so far over recs[0..n): each at most once; returns the count. */
static int
calls(const struct rec *recs, int n)
{
	int i, total = 0;

	for (i = 0; i < n; i++) {
		assert_in_range(recs[i].calls, 0, 1);
		total += recs[i].calls;
	}
	return total;
}

/* Sends one command through rcluster, routed by argv[1]. */
static void
send_cmd(struct rec *rec, long timeout_ms, const char *cmd, const char *key,
    const char *val)
{
	const char *argv[] = { cmd, key, val };

	assert_int_equal(rcluster_argv(fx->rcl, 1, on_reply, rec, timeout_ms,
	    val != NULL ? 3 : 2, argv, NULL), 0);
}

/* Waits for the callbacks of recs[0..n) and checks each ran once. */
static void
settle(struct rec *recs, int n, long max_ms)
{
	int64_t end = clock_mono_ms() + max_ms;
	int i;

	while (calls(recs, n) < n && clock_mono_ms() < end)
		loop_ms(10);
	for (i = 0; i < n; i++)
		assert_int_equal(recs[i].calls, 1);
}

static redisContext *
node(int port)
{
	return it_redis_connect(port);
}

static int
port_of(const char *addr)
{
	const char *colon = strrchr(addr, ':');

	assert_non_null(colon);
	return (int)strtol(colon + 1, NULL, 10);
}

/* The reply of a command on a direct connection to port (caller frees). */
static redisReply *
direct(int port, const char *fmt, ...)
{
	redisContext *c = node(port);
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	assert_non_null(r);
	return r;
}

static void
node_id(int port, char *id, size_t size)
{
	redisReply *r = direct(port, "CLUSTER MYID");

	assert_int_equal(r->type, REDIS_REPLY_STRING);
	snprintf(id, size, "%s", r->str);
	freeReplyObject(r);
}

static int
group_setup(void **state)
{
	struct rcluster_config cfg;
	char seeds[128];

	(void)state;
	fx = calloc(1, sizeof(*fx));
	if (fx == NULL || it_cluster_start(&fx->cl) < 0)
		return -1;
	if ((fx->base = event_base_new()) == NULL)
		return -1;
	/* A replica among the seeds, and an address nothing listens on. */
	snprintf(seeds, sizeof(seeds), "127.0.0.1:1,127.0.0.1:%d,127.0.0.1:%d",
	    fx->cl.ports[5], fx->cl.ports[0]);
	memset(&cfg, 0, sizeof(cfg));
	cfg.seeds = seeds;
	cfg.command_timeout_ms = 2000;
	cfg.reconnect_max_ms = 500;
	cfg.refresh_min_ms = 200;
	fx->rcl = rcluster_new(fx->base, &cfg, "itest", on_ready, fx);
	if (fx->rcl == NULL || !run_ready())
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (fx == NULL)
		return 0;
	rcluster_free(fx->rcl);
	if (fx->base != NULL)
		event_base_free(fx->base);
	it_cluster_stop(&fx->cl);
	free(fx);
	fx = NULL;
	return 0;
}

static void
bad_seeds_are_refused(void **state)
{
	struct rcluster_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.seeds = "";
	assert_null(rcluster_new(fx->base, &cfg, "bad", NULL, NULL));
	cfg.seeds = "localhost";
	assert_null(rcluster_new(fx->base, &cfg, "bad", NULL, NULL));
	cfg.seeds = "127.0.0.1:99999";
	assert_null(rcluster_new(fx->base, &cfg, "bad", NULL, NULL));
}

static void
keys_land_on_the_primary_of_their_slot(void **state)
{
	static struct rec recs[BATCH];
	struct rcluster_stat st;
	char key[32], owners[3][64] = { "", "", "" };
	int i, j, nowners = 0;

	(void)state;
	assert_int_equal(fx->ready_calls, 1);
	rcluster_stats(fx->rcl, &st);
	assert_int_equal(st.primaries, 3);
	assert_int_equal(st.slots_covered, SLOT_COUNT);
	memset(recs, 0, sizeof(recs));
	for (i = 0; i < BATCH; i++) {
		snprintf(key, sizeof(key), "land:%d", i);
		send_cmd(&recs[i], 0, "SET", key, key);
	}
	settle(recs, BATCH, 10000);
	for (i = 0; i < BATCH; i++) {
		const char *owner;
		redisReply *r;

		assert_false(recs[i].is_null);
		assert_string_equal(recs[i].str, "OK");
		snprintf(key, sizeof(key), "land:%d", i);
		/* Our slot is the server's, and the key is where the map says. */
		r = direct(fx->cl.ports[0], "CLUSTER KEYSLOT %s", key);
		assert_int_equal(r->integer, slot_of(key, strlen(key)));
		freeReplyObject(r);
		owner = rcluster_slot_owner(fx->rcl, slot_of(key, strlen(key)));
		assert_non_null(owner);
		r = direct(port_of(owner), "GET %s", key);
		assert_int_equal(r->type, REDIS_REPLY_STRING);
		assert_string_equal(r->str, key);
		freeReplyObject(r);
		for (j = 0; j < nowners && strcmp(owners[j], owner) != 0; j++)
			;
		if (j == nowners) {
			assert_true(nowners < 3);
			snprintf(owners[nowners++], sizeof(owners[0]), "%s", owner);
		}
	}
	assert_int_equal(nowners, 3);
	rcluster_stats(fx->rcl, &st);
	assert_int_equal(st.moved, 0);
	assert_int_equal(st.ask, 0);
}

static void
command_without_key_goes_to_a_primary(void **state)
{
	const char *ping[] = { "PING" };
	struct rec recs[6];
	int i;

	(void)state;
	memset(recs, 0, sizeof(recs));
	for (i = 0; i < 6; i++)
		assert_int_equal(rcluster_argv(fx->rcl, RCLUSTER_NOKEY, on_reply, &recs[i], 0,
		    1, ping, NULL), 0);
	/* A bad key index is refused, and its callback never runs. */
	assert_int_equal(rcluster_argv(fx->rcl, 1, on_reply, &recs[0], 0, 1, ping, NULL),
	    -1);
	settle(recs, 6, 5000);
	for (i = 0; i < 6; i++)
		assert_string_equal(recs[i].str, "PONG");
}

struct each_count {
	int nodes_seen, errors, done_calls, done_nodes, done_failed;
};

static void
on_each_node(struct rcluster *rcl, const char *addr, struct redisReply *r, void *arg)
{
	struct each_count *e = arg;

	(void)rcl;
	assert_non_null(addr);
	e->nodes_seen++;
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		e->errors++;
}

static void
on_each_done(struct rcluster *rcl, int nodes, int failed, void *arg)
{
	struct each_count *e = arg;

	(void)rcl;
	e->done_calls++;
	e->done_nodes = nodes;
	e->done_failed = failed;
}

static void
each_reaches_every_primary_once(void **state)
{
	const char *info[] = { "INFO", "server" };
	struct each_count e = { 0 };

	(void)state;
	assert_int_equal(rcluster_each(fx->rcl, on_each_node, on_each_done, &e, 0, 2, info,
	    NULL), 0);
	run_until(&e.done_calls, 1, 5000);
	assert_int_equal(e.done_calls, 1);
	assert_int_equal(e.nodes_seen, 3);
	assert_int_equal(e.errors, 0);
	assert_int_equal(e.done_nodes, 3);
	assert_int_equal(e.done_failed, 0);
}

static void
unknown_script_is_loaded_and_answered(void **state)
{
	static const char body[] = "return {KEYS[1], ARGV[1]}";
	const char *flush[] = { "SCRIPT", "FLUSH" };
	struct each_count e = { 0 };
	struct rcluster_stat st0, st1;
	unsigned char md[SHA_DIGEST_LENGTH];
	struct rec recs[6];
	char sha[41], keys[6][16];
	int i, round;

	(void)state;
	SHA1((const unsigned char *)body, strlen(body), md);
	for (i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(sha + 2 * i, 3, "%02x", md[i]);
	assert_int_equal(rcluster_each(fx->rcl, NULL, on_each_done, &e, 0, 2, flush, NULL),
	    0);
	run_until(&e.done_calls, 1, 5000);
	assert_int_equal(e.done_failed, 0);
	rcluster_stats(fx->rcl, &st0);
	for (round = 0; round < 2; round++) {
		memset(recs, 0, sizeof(recs));
		for (i = 0; i < 6; i++) {
			const char *args[2];

			snprintf(keys[i], sizeof(keys[i]), "scr:%d", i);
			args[0] = keys[i];
			args[1] = "x";
			assert_int_equal(rcluster_evalsha(fx->rcl, sha, body, 1, 2, args, NULL,
			    on_reply, &recs[i], 0), 0);
		}
		settle(recs, 6, 5000);
		for (i = 0; i < 6; i++) {
			assert_false(recs[i].is_null);
			assert_false(recs[i].is_err);
		}
		rcluster_stats(fx->rcl, &st1);
		/* Every call met NOSCRIPT the first round; none the second. */
		assert_int_equal(st1.noscript - st0.noscript, 6);
	}
}

/* A script's "none" key: "" hashes to slot 0, so beside a key of another slot a
 * cluster refuses the call (CROSSSLOT); the placeholder scripts.c sends in its
 * place, "{tag}\0", is on the call's slot, and the scripts' prelude (formats.c)
 * makes it "" again before the script reads it. */
static void
a_none_key_rides_on_the_calls_slot(void **state)
{
	static const char tail[] = "return {KEYS[1], KEYS[2] == '' and 'none' or 'some'}";
	char body[512], sha[41], key[32], ph[40], want[48];
	unsigned char md[SHA_DIGEST_LENGTH];
	const char *args[3];
	size_t lens[3];
	struct rec recs[2];
	int i, k;

	(void)state;
	snprintf(body, sizeof(body), "%s%s", formats_lua_prelude(1), tail);
	SHA1((const unsigned char *)body, strlen(body), md);
	for (i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(sha + 2 * i, 3, "%02x", md[i]);
	/* A tag whose slot is not 0. */
	for (k = 0; ; k++) {
		snprintf(key, sizeof(key), "{t%d}x", k);
		if (slot_of(key, strlen(key)) != 0)
			break;
	}
	memset(recs, 0, sizeof(recs));
	args[0] = key;
	args[1] = "";
	args[2] = "a";
	assert_int_equal(rcluster_evalsha(fx->rcl, sha, body, 2, 3, args, NULL, on_reply,
	    &recs[0], 0), 0);
	settle(recs, 1, 5000);
	assert_true(recs[0].is_err);
	assert_non_null(strstr(recs[0].str, "CROSSSLOT"));
	/* The placeholder: the tag, then a NUL byte. */
	lens[0] = strlen(key);
	lens[1] = (size_t)snprintf(ph, sizeof(ph), "{t%d}", k) + 1;
	lens[2] = 1;
	args[1] = ph;
	assert_int_equal(rcluster_evalsha(fx->rcl, sha, body, 2, 3, args, lens, on_reply,
	    &recs[1], 0), 0);
	settle(recs + 1, 1, 5000);
	assert_false(recs[1].is_err);
	snprintf(want, sizeof(want), "%s,none", key);
	assert_string_equal(recs[1].str, want);
}

static void
migrated_slot_is_followed_through_ask_then_moved(void **state)
{
	static struct rec recs[40];
	struct rcluster_stat st0, st1;
	struct rec mget;
	char ida[64], idb[64], key[32], val[32];
	const char *owner;
	int slot = slot_of("mig", 3), pa, pb, pc = 0, i;
	redisReply *r;

	(void)state;
	owner = rcluster_slot_owner(fx->rcl, slot);
	assert_non_null(owner);
	pa = port_of(owner);
	for (i = 0, pb = 0; i < IT_CLUSTER_NODES; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->cl.ports[i]);
		r = direct(fx->cl.ports[i], "ROLE");
		if (strcmp(r->element[0]->str, "master") == 0 && fx->cl.ports[i] != pa) {
			if (pb == 0)
				pb = fx->cl.ports[i];
			else
				pc = fx->cl.ports[i];
		}
		freeReplyObject(r);
	}
	assert_true(pb > 0 && pc > 0);
	node_id(pa, ida, sizeof(ida));
	node_id(pb, idb, sizeof(idb));
	memset(recs, 0, sizeof(recs));
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "{mig}%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		send_cmd(&recs[i], 0, "SET", key, val);
	}
	settle(recs, 20, 5000);

	/* Half the keys move to B; the slot is still A's. */
	freeReplyObject(direct(pb, "CLUSTER SETSLOT %d IMPORTING %s", slot, ida));
	freeReplyObject(direct(pa, "CLUSTER SETSLOT %d MIGRATING %s", slot, idb));
	r = direct(pa, "MIGRATE 127.0.0.1 %d %s 0 5000 KEYS {mig}0 {mig}1 {mig}2 "
	    "{mig}3 {mig}4 {mig}5 {mig}6 {mig}7 {mig}8 {mig}9", pb, "");
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("MIGRATE: %s", r->str);
	freeReplyObject(r);
	rcluster_stats(fx->rcl, &st0);
	memset(recs, 0, sizeof(recs));
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "{mig}%d", i);
		send_cmd(&recs[i], 0, "GET", key, NULL);
	}
	settle(recs, 20, 5000);
	for (i = 0; i < 20; i++) {
		snprintf(val, sizeof(val), "v%d", i);
		assert_string_equal(recs[i].str, val);
	}
	rcluster_stats(fx->rcl, &st1);
	assert_int_equal(st1.ask - st0.ask, 10);
	assert_int_equal(st1.moved - st0.moved, 0);
	assert_int_equal(port_of(rcluster_slot_owner(fx->rcl, slot)), pa);

	/* Keys on both sides: TRYAGAIN, retried until the rest has moved, then ASK. */
	memset(&mget, 0, sizeof(mget));
	{
		const char *argv[] = { "MGET", "{mig}0", "{mig}15" };

		assert_int_equal(rcluster_argv(fx->rcl, 1, on_reply, &mget, 0, 3, argv,
		    NULL), 0);
	}
	for (i = 0; i < 300 && st1.tryagain == st0.tryagain; i++) {
		loop_ms(5);
		rcluster_stats(fx->rcl, &st1);
	}
	assert_int_equal(st1.tryagain - st0.tryagain, 1);
	assert_int_equal(mget.calls, 0);
	r = direct(pa, "MIGRATE 127.0.0.1 %d %s 0 5000 KEYS {mig}10 {mig}11 {mig}12 "
	    "{mig}13 {mig}14 {mig}15 {mig}16 {mig}17 {mig}18 {mig}19", pb, "");
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("MIGRATE: %s", r->str);
	freeReplyObject(r);
	settle(&mget, 1, 5000);
	assert_string_equal(mget.str, "v0,v15");
	rcluster_stats(fx->rcl, &st1);
	assert_int_equal(st1.ask - st0.ask, 11);

	/* Commands queued, then the migration ends before they are written. */
	memset(recs, 0, sizeof(recs));
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "{mig}%d", i);
		send_cmd(&recs[i], 0, "GET", key, NULL);
		snprintf(val, sizeof(val), "w%d", i);
		send_cmd(&recs[20 + i], 0, "SET", key, val);
	}
	freeReplyObject(direct(pb, "CLUSTER SETSLOT %d NODE %s", slot, idb));
	freeReplyObject(direct(pa, "CLUSTER SETSLOT %d NODE %s", slot, idb));
	freeReplyObject(direct(pc, "CLUSTER SETSLOT %d NODE %s", slot, idb));
	settle(recs, 40, 5000);
	for (i = 0; i < 20; i++) {
		snprintf(val, sizeof(val), "v%d", i);
		assert_string_equal(recs[i].str, val);
		assert_string_equal(recs[20 + i].str, "OK");
		snprintf(key, sizeof(key), "{mig}%d", i);
		r = direct(pb, "GET %s", key);
		snprintf(val, sizeof(val), "w%d", i);
		assert_string_equal(r->str, val);
		freeReplyObject(r);
	}
	rcluster_stats(fx->rcl, &st0);
	assert_true(st0.moved - st1.moved >= 1);
	assert_int_equal(port_of(rcluster_slot_owner(fx->rcl, slot)), pb);
}

static int cluster_ok(int port);

/* Every live node says cluster_state:ok (waits a while for it); 1 or 0. */
static int
all_ok(void)
{
	int tries, i, ok = 0;

	for (tries = 0; tries < 200 && !ok; tries++) {
		ok = 1;
		for (i = 0; i < IT_CLUSTER_NODES; i++)
			if (fx->cl.pids[i] != 0 && !cluster_ok(fx->cl.ports[i]))
				ok = 0;
		if (!ok)
			it_sleep_ms(50);
	}
	return ok;
}

static void
cluster_down_is_retried_until_the_slot_is_served(void **state)
{
	struct rcluster_stat st0, st1;
	struct rec rec;
	int slot = slot_of("down", 4), po, i;

	(void)state;
	po = port_of(rcluster_slot_owner(fx->rcl, slot));
	rcluster_stats(fx->rcl, &st0);
	/* The owner stops serving the slot: with full coverage required, it answers
	 * CLUSTERDOWN to everything. */
	freeReplyObject(direct(po, "CLUSTER DELSLOTS %d", slot));
	for (i = 0; i < 100 && cluster_ok(po); i++)
		it_sleep_ms(20);
	assert_false(cluster_ok(po));
	memset(&rec, 0, sizeof(rec));
	send_cmd(&rec, 10000, "SET", "{down}x", "1");
	st1 = st0;
	for (i = 0; i < 500 && st1.clusterdown == st0.clusterdown; i++) {
		loop_ms(5);
		rcluster_stats(fx->rcl, &st1);
	}
	assert_true(st1.clusterdown > st0.clusterdown);
	assert_int_equal(rec.calls, 0);
	freeReplyObject(direct(po, "CLUSTER ADDSLOTS %d", slot));
	settle(&rec, 1, 15000);
	assert_false(rec.is_null);
	assert_string_equal(rec.str, "OK");
	assert_int_equal(port_of(rcluster_slot_owner(fx->rcl, slot)), po);
	assert_true(all_ok());
}

/* The pid of the primary that owns key. */
static int
primary_of(const char *key, pid_t *pid)
{
	const char *owner = rcluster_slot_owner(fx->rcl, slot_of(key, strlen(key)));
	int port, i;

	assert_non_null(owner);
	port = port_of(owner);
	for (i = 0; i < IT_CLUSTER_NODES; i++)
		if (fx->cl.ports[i] == port)
			*pid = fx->cl.pids[i];
	return port;
}

static void
frozen_primary_fails_a_command_at_its_deadline_once(void **state)
{
	struct rec recs[5], after;
	pid_t pid = 0;

	(void)state;
	primary_of("{frozen}", &pid);
	assert_true(pid > 0);
	memset(recs, 0, sizeof(recs));
	kill(pid, SIGSTOP);
	send_cmd(&recs[0], 150, "SET", "{frozen}a", "1");
	send_cmd(&recs[1], 150, "GET", "{frozen}b", NULL);
	settle(recs, 2, 3000);
	kill(pid, SIGCONT);
	assert_true(recs[0].is_null);
	assert_true(recs[1].is_null);
	/* The node answers again once its connection is back. */
	memset(&after, 0, sizeof(after));
	send_cmd(&after, 5000, "SET", "{frozen}a", "2");
	settle(&after, 1, 6000);
	assert_false(after.is_null);
	assert_string_equal(after.str, "OK");
}

static int
promoted(int port)
{
	redisReply *r;
	int yes;

	r = direct(port, "ROLE");
	yes = r->type == REDIS_REPLY_ARRAY && strcmp(r->element[0]->str, "master") == 0;
	freeReplyObject(r);
	return yes;
}

static int
cluster_ok(int port)
{
	redisReply *r = direct(port, "CLUSTER INFO");
	int ok = r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok");

	freeReplyObject(r);
	return ok;
}

static void
killed_primary_fails_over_and_commands_succeed(void **state)
{
	static struct rec during[60], after[60];
	struct rcluster_stat st0, st1;
	char key[32], old[64];
	int dead, replica = 0, i, tries;
	pid_t pid = 0;
	redisReply *r;

	(void)state;
	dead = primary_of("{fo}", &pid);
	snprintf(old, sizeof(old), "%s", rcluster_slot_owner(fx->rcl, slot_of("{fo}", 4)));
	/* Its replica: the node whose ROLE says it follows the dead port. */
	for (i = 0; i < IT_CLUSTER_NODES; i++) {
		r = direct(fx->cl.ports[i], "ROLE");
		if (strcmp(r->element[0]->str, "slave") == 0 && r->element[2]->integer == dead)
			replica = fx->cl.ports[i];
		freeReplyObject(r);
	}
	assert_true(replica > 0);
	rcluster_stats(fx->rcl, &st0);
	kill(pid, SIGKILL);
	for (i = 0; i < IT_CLUSTER_NODES; i++)
		if (fx->cl.pids[i] == pid)
			fx->cl.pids[i] = 0;
	/* A stream while the cluster fails over: each answered once, whatever it got. */
	memset(during, 0, sizeof(during));
	for (i = 0; i < 60; i++) {
		snprintf(key, sizeof(key), "{fo}%d", i);
		send_cmd(&during[i], 20000, "SET", key, "x");
		loop_ms(50);
	}
	for (tries = 0; tries < 200 && !(promoted(replica) && cluster_ok(replica)); tries++)
		it_sleep_ms(50);
	assert_true(promoted(replica));
	settle(during, 60, 25000);
	/* After the promotion every command succeeds, on the new primary. */
	assert_true(all_ok());
	memset(after, 0, sizeof(after));
	for (i = 0; i < 60; i++) {
		snprintf(key, sizeof(key), "{fo}%d", i);
		send_cmd(&after[i], 10000, "SET", key, "y");
	}
	settle(after, 60, 15000);
	for (i = 0; i < 60; i++) {
		assert_false(after[i].is_null);
		assert_string_equal(after[i].str, "OK");
	}
	assert_int_equal(port_of(rcluster_slot_owner(fx->rcl, slot_of("{fo}", 4))), replica);
	assert_string_not_equal(rcluster_slot_owner(fx->rcl, slot_of("{fo}", 4)), old);
	rcluster_stats(fx->rcl, &st1);
	assert_true(st1.refreshes > st0.refreshes);
	assert_int_equal(st1.primaries, 3);
	/* The new primary was announced: the moment to load scripts on it. */
	assert_int_equal(fx->ready_calls, 2);
	r = direct(replica, "GET {fo}59");
	assert_string_equal(r->str, "y");
	freeReplyObject(r);
}

static int free_calls;

static void
on_free_reply(struct rcluster *rcl, struct redisReply *r, void *arg)
{
	(void)rcl;
	(void)r;
	(void)arg;
	free_calls++;
}

static void
freeing_answers_every_pending_command_once(void **state)
{
	struct rcluster_config cfg;
	struct rcluster *rcl;
	char seeds[64], key[32];
	const char *argv[2] = { "GET", key };
	int i, alive = 0;

	(void)state;
	for (i = 0; i < IT_CLUSTER_NODES; i++)
		if (fx->cl.pids[i] != 0)
			alive = fx->cl.ports[i];
	snprintf(seeds, sizeof(seeds), "127.0.0.1:%d", alive);
	memset(&cfg, 0, sizeof(cfg));
	cfg.seeds = seeds;
	free_calls = 0;
	rcl = rcluster_new(fx->base, &cfg, "itest-free", NULL, NULL);
	assert_non_null(rcl);
	/* Waiting for the map: none may run before the loop does. */
	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "free:%d", i);
		assert_int_equal(rcluster_argv(rcl, 1, on_free_reply, NULL, 5000, 2, argv,
		    NULL), 0);
	}
	assert_int_equal(free_calls, 0);
	loop_ms(20);
	/* Some in flight by now, maybe. */
	for (i = 50; i < 100; i++) {
		snprintf(key, sizeof(key), "free:%d", i);
		assert_int_equal(rcluster_argv(rcl, 1, on_free_reply, NULL, 5000, 2, argv,
		    NULL), 0);
	}
	rcluster_free(rcl);
	assert_int_equal(free_calls, 100);
	loop_ms(100);
	assert_int_equal(free_calls, 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_seeds_are_refused),
		cmocka_unit_test(keys_land_on_the_primary_of_their_slot),
		cmocka_unit_test(command_without_key_goes_to_a_primary),
		cmocka_unit_test(each_reaches_every_primary_once),
		cmocka_unit_test(unknown_script_is_loaded_and_answered),
		cmocka_unit_test(a_none_key_rides_on_the_calls_slot),
		cmocka_unit_test(migrated_slot_is_followed_through_ask_then_moved),
		cmocka_unit_test(cluster_down_is_retried_until_the_slot_is_served),
		cmocka_unit_test(frozen_primary_fails_a_command_at_its_deadline_once),
		cmocka_unit_test(killed_primary_fails_over_and_commands_succeed),
		cmocka_unit_test(freeing_answers_every_pending_command_once),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
