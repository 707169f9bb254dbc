/*
 * test_cluster_e2e.c: the notifier itself on a Redis Cluster ([redis] cluster; issue
 * 14 item 3): six redis-server (three primaries, three replicas), the sharded layout
 * of 4 shards written on its slot's primary, subscribers put through the admin API,
 * a deal added to `deals` on its primary, and every subscriber texted once at the
 * gateway simulator; a notifier started on the cluster with no layout stored is
 * refused (exit 78). Then three faults in the middle of a 10,000-push fan-out (issue
 * 14 item 6): a primary killed (-9), one of two notifiers sharing the shards killed,
 * a shard's slot resharded to another primary. In each: every push ends, no phone is
 * texted twice, and the unknown ones are counted. Counts, never timings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "ithttp.h"
#include "itshards.h"
#include "itest.h"
#include "layout.h"
#include "slot.h"

#define N 40

struct fx {
	struct it_cluster cl;
	struct it_gwsim gw;
	struct it_notifier nt;
	char extra[512];
};

static struct fx *fx;

static int
group_setup(void **state)
{
	(void)state;
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	if ((fx = calloc(1, sizeof(*fx))) == NULL || it_cluster_start(&fx->cl) < 0 ||
	    it_gwsim_start(&fx->gw, NULL) < 0)
		return -1;
	snprintf(fx->extra, sizeof(fx->extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\ncluster = 127.0.0.1:%d,127.0.0.1:%d\nshards = 4\n",
	    fx->cl.ports[0], fx->cl.ports[1]);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (fx == NULL)
		return 0;
	it_stop(&fx->nt.proc, SIGTERM, 5000);
	it_stop(&fx->gw.proc, SIGTERM, 2000);
	it_cluster_stop(&fx->cl);
	free(fx);
	fx = NULL;
	return 0;
}

/* Without a layout the notifier refuses a cluster: its scripts' keys would span
 * slots. */
static void
no_layout_on_the_cluster_is_refused(void **state)
{
	char extra[256];
	int status;

	(void)state;

	/* Without redis.shards (which would refuse a missing layout by itself). It may
	 * end before or after its port file is written: either way. */
	snprintf(extra, sizeof(extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\ncluster = 127.0.0.1:%d\n", fx->cl.ports[2]);
	(void)it_notifier_start_http(&fx->nt, it_redis_port(), fx->gw.port, "cl-1",
	    extra);
	status = it_stop(&fx->nt.proc, 0, 15000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 78);
	assert_true(it_log_count(fx->nt.proc.log, "redis.cluster needs the sharded layout",
	    NULL, NULL) > 0);
}

static int
texts_in(void *arg)
{
	(void)arg;
	return it_gwsim_count(&fx->gw, 201) >= N;
}

/* The whole path on the cluster: layout, subscribers over the admin API, a deal,
 * every subscriber texted exactly once. */
static void
a_deal_reaches_everyone_once_on_the_cluster(void **state)
{
	char id[16];
	struct it_resp resp;
	redisReply *r;
	int port, i, texts[N] = { 0 }, status;

	(void)state;
	assert_int_equal(it_cluster_layout(&fx->cl, 4), 0);
	port = it_notifier_start_http(&fx->nt, it_redis_port(), fx->gw.port, "cl-1",
	    fx->extra);
	assert_true(port > 0);
	for (i = 0; i < N; i++) {
		char path[64];

		snprintf(id, sizeof(id), "c-%d", i);
		snprintf(path, sizeof(path), "/v1/subscribers/%s", id);
		if (it_shard_api(port, "PUT", path, it_shard_sub_json(id, i), &resp) / 100 != 2)
			fail_msg("PUT %s: %d %s", path, resp.status, resp.body);
	}
	IT_SHARD_WAIT_MIRROR(port, N);
	assert_non_null(r = it_cluster_cmd(&fx->cl, "XADD deals * deal %s",
	    it_deal("cl-deal", "laptop", 600)));
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
	assert_true(it_wait(texts_in, NULL, 30000));
	it_sleep_ms(500);             /* a second text would show by now */
	(void)it_gwsim_texts(&fx->gw, "+1512556", NULL, N, texts);
	for (i = 0; i < N; i++)
		if (texts[i] != 1)
			fail_msg("+1512556%04d got %d texts", i, texts[i]);
	assert_int_equal(it_log_count(fx->nt.proc.log, "event=cluster_unroutable", NULL,
	    NULL), 0);
	status = it_stop(&fx->nt.proc, SIGTERM, 10000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- a primary killed in the middle of a fan-out ---- */

#define NF 10000                  /* the fan-out's subscribers */
#define NF_BATCH 250              /* per bulk request (its 64 KiB) */
#define MOVE_BATCH 100            /* keys per MIGRATE of a reshard */

/* The push states of deal over the 4 shards; open -1 when a shard cannot be read
 * now (a failover under way: not settled). */
static void
states_of(const char *deal, struct it_states *st)
{
	if (it_cluster_states(&fx->cl, 4, deal, st) < 0)
		st->open = -1;
}

static int
all_final(void *arg)
{
	struct it_states st;

	states_of(arg, &st);
	return st.open == 0 && st.final == NF;
}

static int
texts_over(void *arg)
{
	return it_gwsim_count(&fx->gw, 201) >= *(int *)arg;
}

/* The fan-out of deal (push ids starting entry) after a fault: every push ends,
 * none twice at the gateway simulator; what each ended as is printed after what. */
static void
fanout_check(const char *deal, const char *entry, const char *what)
{
	static int texts[NF];
	struct it_states st;
	int dup;

	assert_true(it_wait(all_final, (void *)deal, 120000));
	it_sleep_ms(1000);            /* a late second text would show by now */
	states_of(deal, &st);
	dup = it_gwsim_texts(&fx->gw, "+1512557", entry, NF, texts);
	printf("# %s: %ld final (%ld sent, %ld unknown, %ld other), %d phones texted "
	    "twice\n", what, st.final, st.sent, st.unknown, st.other, dup);
	assert_int_equal(dup, 0);
	assert_int_equal(st.final, NF);
	assert_int_equal(st.sent + st.unknown, NF);
}

/* deal (category cat, 15 minutes) on `deals`: its push ids' start into entry. */
static void
publish(const char *deal, const char *cat, char *entry, size_t size)
{
	assert_int_equal(it_cluster_publish(&fx->cl, it_deal(deal, cat, 900), entry, size),
	    0);
}

/* Notifier name on the cluster with its claims made durable on a replica (WAIT
 * after each claim batch), gw_line in its gateway's section and more after its
 * [deliver] section's lines. Its admin port. */
static int
start_durable(struct it_notifier *nt, const char *name, const char *gw_line,
    const char *more)
{
	char extra[1024];
	int port;

	snprintf(extra, sizeof(extra), "%s[redis]\nwait_replicas = 1\nwait_timeout_ms = 200\n"
	    "[deliver]\nmax_in_flight = 64\n%s", fx->extra, more);
	port = it_notifier_start_http_gw(nt, it_redis_port(), fx->gw.port, name, gw_line,
	    extra);
	assert_true(port > 0);
	return port;
}

/* Claims are made durable on the replica before their requests leave (WAIT, [redis]
 * wait_replicas = 1). The primary of shard 1 is killed (-9) in the middle of a
 * fan-out to 10,000 subscribers: its replica takes over, the notifier follows the
 * new map, and the killed node comes back as a replica (until then the new
 * primary's WAITs count no replica, and shard 1's claims wait: late, not lost).
 * Nobody is texted twice; every push ends; the unknown ones (a request in flight
 * whose record the failover lost, resolved never by resending) are counted. */
static void
a_primary_killed_mid_fanout_texts_no_one_twice(void **state)
{
	char key[96], entry[80], *body;
	struct it_resp resp;
	int port, i, b, victim, before, mid = 2000;
	size_t len;

	(void)state;
	it_stop(&fx->nt.proc, SIGTERM, 5000);
	port = start_durable(&fx->nt, "cl-2", "rate_per_s = 1500\nburst = 50\n", "");
	/* 10,000 subscribers of "phone", +1512557<i>, in bulk requests. */
	assert_non_null(body = malloc(NF_BATCH * 400));
	for (b = 0; b < NF; b += NF_BATCH) {
		for (i = b, len = 0; i < b + NF_BATCH; i++)
			len += (size_t)snprintf(body + len, NF_BATCH * 400 - len,
			    "{\"id\":\"f-%d\",\"phone\":\"+1512557%04d\",\"channels\":[\"sms\"],"
			    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
			    "\"timezone\":\"America/Chicago\","
			    "\"interests\":{\"categories\":[\"phone\"]}}\n", i, i);
		if (it_shard_api(port, "POST", "/v1/bulk/subscribers", body, &resp) / 100 != 2)
			fail_msg("bulk %d: %d %s", b, resp.status, resp.body);
	}
	free(body);
	IT_SHARD_WAIT_MIRROR(port, NF + N);
	(void)it_cluster_shard_key(4, 1, "pushes", key, sizeof(key));
	before = it_gwsim_count(&fx->gw, 201);
	mid += before;
	publish("cl-fail", "phone", entry, sizeof(entry));
	assert_true(it_wait(texts_over, &mid, 30000));
	assert_true((victim = it_cluster_primary_of(&fx->cl, key)) >= 0);
	printf("# killing the primary of shard 1 (port %d) after %d texts\n",
	    fx->cl.ports[victim], it_gwsim_count(&fx->gw, 201) - before);
	kill(fx->cl.pids[victim], SIGKILL);
	fx->cl.pids[victim] = 0;
	it_sleep_ms(4000);            /* cluster-node-timeout 1 s: a replica takes over */
	assert_int_equal(it_cluster_restart(&fx->cl, victim), 0);
	fanout_check("cl-fail", entry, "primary killed mid fan-out");
}

/* Two notifiers share the shards (ownership = balanced, leases in {sK}owner on each
 * shard's primary); one is killed (-9) in the middle of a fan-out: the other takes
 * its shards over once their leases run out and finishes. Nobody texted twice. */
static void
a_notifier_killed_on_the_cluster_has_its_shards_taken_over(void **state)
{
	static const char gw_line[] = "rate_per_s = 1500\nburst = 50\ntimeout_ms = 1000\n";
	static const char more[] = "claim_idle_ms = 3000\n[cluster]\nownership = balanced\n"
	    "lease_ms = 3000\nlease_margin_ms = 500\nsettle_ms = 1000\n";
	struct it_notifier nb;
	char entry[80];
	int before, mid;

	(void)state;
	it_stop(&fx->nt.proc, SIGTERM, 5000);
	memset(&nb, 0, sizeof(nb));
	(void)start_durable(&fx->nt, "cl-a", gw_line, more);
	(void)start_durable(&nb, "cl-b", gw_line, more);
	/* Both serve: each mirrors its shards' part of the 10,040 subscribers. */
	it_sleep_ms(3000);
	before = it_gwsim_count(&fx->gw, 201);
	mid = before + 2000;
	publish("cl-own", "phone", entry, sizeof(entry));
	assert_true(it_wait(texts_over, &mid, 30000));
	printf("# killing cl-b after %d texts\n", it_gwsim_count(&fx->gw, 201) - before);
	assert_int_equal(it_stop(&nb.proc, SIGKILL, 5000) & 0x7f, SIGKILL);
	fanout_check("cl-own", entry, "notifier killed on the cluster");
	assert_true(it_log_count(fx->nt.proc.log, "event=shard_acquired", NULL, NULL) >= 4);
}

/* The ids of node port (CLUSTER MYID) into id. */
static void
node_id(int port, char *id, size_t size)
{
	redisContext *c = it_redis_connect(port);
	redisReply *r = redisCommand(c, "CLUSTER MYID");

	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	snprintf(id, size, "%s", r->str);
	freeReplyObject(r);
	redisFree(c);
}

/* Moves slot from node a to node b as redis-cli --cluster reshard does, a batch of
 * keys at a time (each MIGRATE atomic per key), then gives the slot to b on every
 * primary. Returns the keys moved. */
static long
move_slot(int slot, int a, int b)
{
	char ida[64], idb[64];
	redisContext *ca = it_redis_connect(fx->cl.ports[a]);
	redisContext *cb = it_redis_connect(fx->cl.ports[b]);
	redisReply *r, *keys;
	long moved = 0;
	size_t i;
	int n;

	node_id(fx->cl.ports[a], ida, sizeof(ida));
	node_id(fx->cl.ports[b], idb, sizeof(idb));
	freeReplyObject(redisCommand(cb, "CLUSTER SETSLOT %d IMPORTING %s", slot, ida));
	freeReplyObject(redisCommand(ca, "CLUSTER SETSLOT %d MIGRATING %s", slot, idb));
	for (;;) {
		const char *argv[8 + MOVE_BATCH];
		char port[16];
		int argc = 0;

		keys = redisCommand(ca, "CLUSTER GETKEYSINSLOT %d %d", slot, MOVE_BATCH);
		assert_true(keys != NULL && keys->type == REDIS_REPLY_ARRAY);
		if (keys->elements == 0) {
			freeReplyObject(keys);
			break;
		}
		snprintf(port, sizeof(port), "%d", fx->cl.ports[b]);
		argv[argc++] = "MIGRATE";
		argv[argc++] = "127.0.0.1";
		argv[argc++] = port;
		argv[argc++] = "";
		argv[argc++] = "0";
		argv[argc++] = "10000";
		argv[argc++] = "REPLACE";
		argv[argc++] = "KEYS";
		for (i = 0; i < keys->elements; i++)
			argv[argc++] = keys->element[i]->str;
		r = redisCommandArgv(ca, argc, argv, NULL);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			fail_msg("MIGRATE: %s", r != NULL ? r->str : "no reply");
		freeReplyObject(r);
		moved += (long)keys->elements;
		freeReplyObject(keys);
		it_sleep_ms(10);              /* a reshard takes its time: the fan-out runs */
	}
	for (n = 0; n < IT_CLUSTER_NODES; n++) {
		redisContext *c;

		if (fx->cl.pids[n] <= 0)
			continue;
		c = it_redis_connect(fx->cl.ports[n]);
		freeReplyObject(redisCommand(c, "CLUSTER SETSLOT %d NODE %s", slot, idb));
		redisFree(c);
	}
	redisFree(ca);
	redisFree(cb);
	return moved;
}

/* Shard 2's slot resharded to another primary in the middle of a fan-out: its keys
 * move one by one (ASK, then TRYAGAIN for the scripts whose keys are on both sides,
 * then MOVED); nobody texted twice, every push ends. */
static void
a_shards_slot_resharded_mid_fanout_texts_no_one_twice(void **state)
{
	char key[96], entry[80];
	int port, from, to, before, mid, slot;
	long moved;

	(void)state;
	it_stop(&fx->nt.proc, SIGTERM, 5000);
	port = start_durable(&fx->nt, "cl-3", "rate_per_s = 1000\nburst = 50\n", "");
	IT_SHARD_WAIT_MIRROR(port, NF + N);
	(void)it_cluster_shard_key(4, 2, "pushes", key, sizeof(key));
	slot = slot_of(key, strlen(key));
	assert_true((from = it_cluster_primary_of(&fx->cl, key)) >= 0);
	for (to = 0; to < IT_CLUSTER_NODES; to++) {
		redisContext *c;
		redisReply *r;
		int master;

		if (to == from || fx->cl.pids[to] <= 0)
			continue;
		c = it_redis_connect(fx->cl.ports[to]);
		r = redisCommand(c, "ROLE");
		master = r != NULL && r->type == REDIS_REPLY_ARRAY &&
		    strcmp(r->element[0]->str, "master") == 0;
		freeReplyObject(r);
		redisFree(c);
		if (master)
			break;
	}
	assert_true(to < IT_CLUSTER_NODES);
	before = it_gwsim_count(&fx->gw, 201);
	mid = before + 1500;
	publish("cl-move", "phone", entry, sizeof(entry));
	assert_true(it_wait(texts_over, &mid, 30000));
	moved = move_slot(slot, from, to);
	printf("# slot %d of shard 2 moved from port %d to %d (%ld keys) after %d texts\n",
	    slot, fx->cl.ports[from], fx->cl.ports[to], moved,
	    mid - before);
	fanout_check("cl-move", entry, "resharded mid fan-out");
	assert_int_equal(it_cluster_primary_of(&fx->cl, key), to);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_layout_on_the_cluster_is_refused),
		cmocka_unit_test(a_deal_reaches_everyone_once_on_the_cluster),
		cmocka_unit_test(a_primary_killed_mid_fanout_texts_no_one_twice),
		cmocka_unit_test(
		    a_notifier_killed_on_the_cluster_has_its_shards_taken_over),
		cmocka_unit_test(a_shards_slot_resharded_mid_fanout_texts_no_one_twice),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
