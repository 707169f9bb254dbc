/*
 * test_ctl_cluster.c: dealpushctl on a Redis Cluster (--cluster; issue 14 items 3
 * and 5): six redis-server (three primaries, three replicas). Bad --cluster values
 * and an unreachable cluster are refused with a message; the layout, publish,
 * cancel, pause, testlist, formats and dead-letter commands run through the router,
 * each key landing on its slot's primary; a replica as the only seed; a slot
 * migrating (ASK), a slot moved while publish runs (MOVED), two nodes that send
 * each other back and forth (bounded); the commands that walk one Redis refused
 * with what to do. Then a populated single Redis moves to the cluster (migrate
 * --to-shards, redis-cli --cluster import --cluster-copy) and a notifier on the
 * cluster finds every subscriber and report, and texts a new deal to each once.
 * And back: migrate --from-cluster into a fresh Redis (refused while a notifier
 * runs, into a Redis that is not empty or is a cluster node, with bad options; killed
 * part-way and run again), every key of the cluster there with its value and TTL,
 * then migrate --to-single: every key of the first single Redis back with its type
 * and TTL, the reports as before, and a new deal texted to each phone once.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "ithttp.h"
#include "itshards.h"
#include "itest.h"
#include "itkeys.h"
#include "layout.h"
#include "pause.h"
#include "slot.h"

#define NS 30                     /* subscribers of the migration */
#define OUT_MAX 16384

struct fx {
	struct it_cluster cl;
	struct it_gwsim gw;
	struct it_notifier nt;
	char seeds[128];
	char bin[512];
	char out[OUT_MAX];
	/* the way back: the first single Redis' keys, the old deal's report, the deals'
	 * push ids, the Redis copied into */
	struct it_keys *orig;
	char before[256], old_entry[96], new_entry[96];
	struct it_proc target;
	int tport;
	char taddr[32];
};

static struct fx *fx;

static int
group_setup(void **state)
{
	char off[32];

	(void)state;
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	/* dealpushctl's clock is the notifiers' (it_now): the deals it checks expire then */
	snprintf(off, sizeof(off), "%lld", it_clock_offset());
	setenv("DEALPUSH_CLOCK_OFFSET_S", off, 1);
	if ((fx = calloc(1, sizeof(*fx))) == NULL || it_cluster_start(&fx->cl) < 0 ||
	    it_gwsim_start(&fx->gw, NULL) < 0)
		return -1;
	snprintf(fx->seeds, sizeof(fx->seeds), "127.0.0.1:%d,127.0.0.1:%d",
	    fx->cl.ports[0], fx->cl.ports[1]);
	snprintf(fx->bin, sizeof(fx->bin), "%s/dealpushctl", it_build());
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
	it_stop(&fx->target, SIGTERM, 5000);
	it_cluster_stop(&fx->cl);
	it_keys_free(fx->orig);
	free(fx);
	fx = NULL;
	return 0;
}

/* dealpushctl with the NULL-ended arguments after it; output into fx->out. Its exit
 * status. */
static int
ctl(const char *first, ...)
{
	const char *argv[24];
	va_list ap;
	int n = 0, rc;

	argv[n++] = fx->bin;
	argv[n++] = first;
	va_start(ap, first);
	while (n < 23 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	rc = it_run(argv, fx->out, sizeof(fx->out));
	printf("# dealpushctl %s %s %s: exit %d: %.300s\n", first, n > 2 ? argv[2] : "",
	    n > 3 ? argv[3] : "", rc, fx->out);
	return rc;
}

/* The output holds s, or the test fails showing it. */
static void
out_has(const char *s)
{
	if (strstr(fx->out, s) == NULL)
		fail_msg("want \"%s\" in: %s", s, fx->out);
}

/* A file holding text, its path into path. */
static void
file_with(char *path, size_t size, const char *text)
{
	FILE *f;

	it_path(path, size, "ctlcl", ".jsonl");
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* The cluster helpers of itcluster.c on this test's cluster. */
#define is_primary(i) it_cluster_is_primary(&fx->cl, (i))
#define owner_of(key) it_cluster_primary_of(&fx->cl, (key))
#define on_node(i, fmt, a, b) it_cluster_on_node(&fx->cl, (i), (fmt), (a), (b))
#define slot_begin(slot, a, b) assert_int_equal(it_cluster_slot_begin(&fx->cl, (slot), \
	(a), (b)), 0)
#define slot_finish(slot, b) assert_int_equal(it_cluster_slot_finish(&fx->cl, (slot), \
	(b)), 0)

static void
node_id(int i, char *id, size_t size)
{
	assert_int_equal(it_cluster_node_id(&fx->cl, i, id, size), 0);
}

/* A primary other than node a. */
static int
other_primary(int a)
{
	int b = it_cluster_other_primary(&fx->cl, a);

	if (b < 0)
		fail_msg("no second primary");
	return b;
}

#define KEY_SLOT(key) slot_of((key), strlen(key))

/* ---- the option ---- */

static void
bad_cluster_values_are_refused(void **state)
{
	(void)state;
	assert_int_equal(ctl("--cluster", "", "pause", "status", NULL), 2);
	out_has("--cluster is empty");
	assert_int_equal(ctl("--cluster", "127.0.0.1", "pause", "status", NULL), 2);
	out_has("has no port");
	assert_int_equal(ctl("--cluster", "redis.example:7000", "pause", "status", NULL),
	    2);
	out_has("is not an IP address");
	assert_int_equal(ctl("--cluster", "127.0.0.1:70000", "pause", "status", NULL), 2);
	out_has("port must be 1 to 65535");
	assert_int_equal(ctl("--cluster=127.0.0.1:7000,,", "pause", "status", NULL), 2);
	out_has("entry 2 is empty");
	assert_int_equal(ctl("--cluster", fx->seeds, "--redis", "127.0.0.1:6379", "pause",
	    "status", NULL), 2);
	out_has("one Redis or a Redis Cluster, not both");
	assert_int_equal(ctl("--cluster", fx->seeds, "--sentinel", "127.0.0.1:26379",
	    "--master", "m", "pause", "status", NULL), 2);
	out_has("without Sentinel");
	setenv("DEALPUSH_CLUSTER", "not-an-ip:1", 1);
	assert_int_equal(ctl("pause", "status", NULL), 2);
	out_has("(from $DEALPUSH_CLUSTER)");
	unsetenv("DEALPUSH_CLUSTER");
}

/* Nobody listening, or a Redis that is not a cluster node: a clear error at once. */
static void
an_unreachable_cluster_is_a_clear_error(void **state)
{
	char seeds[64], one[32];
	int p = it_free_port();

	(void)state;
	assert_true(p > 0);
	snprintf(seeds, sizeof(seeds), "127.0.0.1:%d", p);
	assert_int_equal(ctl("--cluster", seeds, "pause", "status", NULL), 2);
	out_has("no node of the cluster");
	out_has("cannot connect to Redis");
	snprintf(one, sizeof(one), "127.0.0.1:%d", it_redis_port());
	assert_int_equal(ctl("--cluster", one, "pause", "status", NULL), 2);
	out_has("is not a cluster node (cluster support disabled)");
}

/* ---- the commands ---- */

/* Before a layout: every command but layout create and show is refused (78), as
 * the notifier refuses such a cluster. */
static void
a_cluster_without_a_layout_is_refused(void **state)
{
	(void)state;
	assert_int_equal(ctl("--cluster", fx->seeds, "pause", "status", NULL), 78);
	out_has("holds no sharded layout");
	assert_int_equal(ctl("--cluster", fx->seeds, "layout", "show", NULL), 0);
	out_has("layout single");
}

/* Through a replica as the only seed: the map is read there, the commands go to
 * the primaries. */
static void
layout_create_and_show_through_a_replica(void **state)
{
	char seed[32];
	redisReply *r;
	int i, own;

	(void)state;
	for (i = 0; i < IT_CLUSTER_NODES && is_primary(i); i++)
		;
	assert_true(i < IT_CLUSTER_NODES);
	snprintf(seed, sizeof(seed), "127.0.0.1:%d", fx->cl.ports[i]);
	assert_int_equal(ctl("--cluster", seed, "layout", "create", "--shards", "4", NULL),
	    0);
	out_has("layout created: 4 shards");
	assert_int_equal(ctl("--cluster", seed, "layout", "show", NULL), 0);
	out_has("shards   4");
	out_has("shard 3 tag {");
	/* On its slot's primary, as a hash. */
	assert_true((own = owner_of(LAYOUT_KEY)) >= 0);
	r = on_node(own, "HGET %s %s", LAYOUT_KEY, "shards");
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	assert_string_equal(r->str, "4");
	freeReplyObject(r);
	assert_int_equal(ctl("--cluster", fx->seeds, "layout", "create", "--shards", "4",
	    NULL), 1);
	out_has("exists");
}

/* XLEN of "deals" on its primary. */
static long long
deals_len(void)
{
	int own = owner_of("deals");
	redisReply *r;
	long long n;

	if (own < 0)
		return 0;
	r = on_node(own, "XLEN deals", NULL, NULL);
	n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return n;
}

static void
publish_and_cancel_reach_the_deals_primary(void **state)
{
	char path[512];
	redisReply *r;
	long long before = deals_len();
	int own;

	(void)state;
	file_with(path, sizeof(path), it_deal("cl-pub", "laptop", 600));
	assert_int_equal(ctl("--cluster", fx->seeds, "publish", path, NULL), 0);
	out_has("published cl-pub entry=");
	assert_int_equal(deals_len(), before + 1);
	assert_int_equal(ctl("--cluster", fx->seeds, "cancel", "cl-pub", NULL), 0);
	assert_int_equal(deals_len(), before + 2);
	assert_true((own = owner_of("deals")) >= 0);
	r = on_node(own, "XREVRANGE deals + - COUNT 1", NULL, NULL);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	assert_non_null(strstr(r->element[0]->element[1]->element[1]->str, "\"cancel\""));
	freeReplyObject(r);
}

static void
pause_resume_and_status(void **state)
{
	redisReply *r;

	(void)state;
	assert_int_equal(ctl("--cluster", fx->seeds, "pause", "maintenance", NULL), 0);
	assert_int_equal(ctl("--cluster", fx->seeds, "pause", "status", NULL), 0);
	out_has("paused since");
	out_has("maintenance");
	r = on_node(owner_of(PAUSE_KEY), "HGET %s %s", PAUSE_KEY, "state");
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	assert_string_equal(r->str, "paused");
	freeReplyObject(r);
	assert_int_equal(ctl("--cluster", fx->seeds, "resume", NULL), 0);
	assert_int_equal(ctl("--cluster", fx->seeds, "pause", "status", NULL), 0);
	out_has("running");
}

/* testlist, test-send, formats show and upgrade, dead list and replay, deals
 * confirm, convert: each through the router (scripts loaded on every primary). */
static void
the_other_commands_run_on_the_cluster(void **state)
{
	char path[512], conv[512];
	redisReply *r;

	(void)state;
	assert_int_equal(ctl("--cluster", fx->seeds, "testlist", "set", "team", "a-1,a-2",
	    NULL), 0);
	r = on_node(owner_of("testlists"), "HGET testlists %s", "team", NULL);
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	assert_string_equal(r->str, "a-1,a-2");
	freeReplyObject(r);
	file_with(path, sizeof(path), it_deal("cl-test", "laptop", 600));
	assert_int_equal(ctl("--cluster", fx->seeds, "test-send", path, "--to", "@team",
	    NULL), 0);
	out_has("to 2 subscribers");
	assert_int_equal(ctl("--cluster", fx->seeds, "formats", "show", NULL), 0);
	out_has("format   1");
	/* no notifier reads the streams: raised to what this release reads, on the
	 * key's primary (formats_set.lua) */
	assert_int_equal(ctl("--cluster", fx->seeds, "formats", "upgrade", NULL), 0);
	out_has("format");
	r = on_node(owner_of("dealpush:formats"), "HGET dealpush:formats %s", "format",
	    NULL);
	assert_true(r != NULL && (r->type == REDIS_REPLY_STRING || strstr(fx->out,
	    "already") != NULL));
	freeReplyObject(r);
	assert_int_equal(ctl("--cluster", fx->seeds, "dead", "list", NULL), 0);
	out_has("STREAM");
	assert_int_equal(ctl("--cluster", fx->seeds, "dead", "replay", "1-0", NULL), 1);
	out_has("no dead letter 1-0");
	assert_int_equal(ctl("--cluster", fx->seeds, "deals", "confirm", "cl-none", NULL),
	    1);
	out_has("no deal 'cl-none' held by the guards");
	file_with(conv, sizeof(conv), "{\"deal_id\":\"cl-pub\",\"order_id\":\"o-1\","
	    "\"revenue\":12.5,\"currency\":\"USD\",\"subscriber_id\":\"a-1\"}\n");
	assert_int_equal(ctl("--cluster", fx->seeds, "convert", "--no-wait", conv, NULL),
	    0);
	out_has("posted 1 conversions");
	r = on_node(owner_of("conversions"), "XLEN conversions", NULL, NULL);
	assert_true(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
	freeReplyObject(r);
}

/* The commands that walk one Redis say what to do instead. */
static void
keyspace_walks_are_refused_with_what_to_do(void **state)
{
	char path[512];

	(void)state;
	file_with(path, sizeof(path), it_shard_sub_json("x-1", 1));
	assert_int_equal(ctl("--cluster", fx->seeds, "migrate", "--to-shards", "4", NULL),
	    2);
	out_has("redis-cli --cluster import");
	out_has("--cluster-copy");
	assert_int_equal(ctl("--cluster", fx->seeds, "migrate", "--to-single", NULL), 2);
	out_has("migrate is refused on a Redis Cluster");
	assert_int_equal(ctl("--cluster", fx->seeds, "subscribers", "import", path, NULL),
	    2);
	out_has("--api URL subscribers import");
	assert_int_equal(ctl("--cluster", fx->seeds, "subscribers", "delete", "x-1", NULL),
	    2);
	out_has("--api URL subscribers delete");
	assert_int_equal(ctl("--cluster", fx->seeds, "consent", "migrate", NULL), 2);
	out_has("consent migrate is refused");
}

/* ---- redirects ---- */

/* The layout key's slot in the middle of a reshard (its key already moved): every
 * command's layout check, layout show and pause status are answered through ASK;
 * then the slot is given to the new node and the next run reads the new map. */
static void
a_migrating_slot_is_answered_through_ask(void **state)
{
	int slot = KEY_SLOT(LAYOUT_KEY), a, b;
	redisReply *r;
	char s[16];

	(void)state;
	assert_true((a = owner_of(LAYOUT_KEY)) >= 0);
	b = other_primary(a);
	slot_begin(slot, a, b);
	snprintf(s, sizeof(s), "%d", slot);
	r = on_node(b, "CLUSTER COUNTKEYSINSLOT %s", s, NULL);
	assert_true(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
	freeReplyObject(r);
	assert_int_equal(ctl("--cluster", fx->seeds, "layout", "show", NULL), 0);
	out_has("shards   4");
	assert_int_equal(ctl("--cluster", fx->seeds, "pause", "status", NULL), 0);
	out_has("running");
	slot_finish(slot, b);
	assert_int_equal(owner_of(LAYOUT_KEY), b);
	assert_int_equal(ctl("--cluster", fx->seeds, "layout", "show", NULL), 0);
	out_has("shards   4");
}

/* publish reading stdin: after its first deal the slot of "deals" moves to another
 * primary; the second deal goes to the old one by the map read at start, is told
 * MOVED, and lands on the new one. */
static void
a_slot_moved_while_publish_runs_is_followed(void **state)
{
	int in[2], slot = KEY_SLOT("deals"), a, b, status, fd;
	long long before = deals_len();
	char log[512], line[1200];
	pid_t pid;

	(void)state;
	assert_true((a = owner_of("deals")) >= 0);
	b = other_primary(a);
	it_path(log, sizeof(log), "ctlcl-publish", ".log");
	assert_int_equal(pipe(in), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		const char *argv[] = { fx->bin, "--cluster", fx->seeds, "publish", "-", NULL };

		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(in[0], 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close(in[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	snprintf(line, sizeof(line), "%s\n", it_deal("cl-mv1", "laptop", 600));
	assert_true(write(in[1], line, strlen(line)) == (ssize_t)strlen(line));
	for (fd = 0; fd < 200 && deals_len() < before + 1; fd++)
		it_sleep_ms(50);
	assert_int_equal(deals_len(), before + 1);
	slot_begin(slot, a, b);
	slot_finish(slot, b);
	assert_int_equal(owner_of("deals"), b);
	snprintf(line, sizeof(line), "%s\n", it_deal("cl-mv2", "laptop", 600));
	assert_true(write(in[1], line, strlen(line)) == (ssize_t)strlen(line));
	close(in[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("publish exited %d (see %s)", status, log);
	assert_int_equal(deals_len(), before + 2);
	assert_true(it_log_count(log, "published cl-mv2", NULL, NULL) == 1);
}

/* Two primaries that each say the other owns a slot: the redirects stop after five,
 * with a message, and the cluster is put right again. */
static void
redirects_are_bounded(void **state)
{
	int slot = KEY_SLOT(PAUSE_KEY), a, b;
	char ida[64], idb[64], s[16];

	(void)state;
	assert_true((a = owner_of(PAUSE_KEY)) >= 0);
	b = other_primary(a);
	node_id(a, ida, sizeof(ida));
	node_id(b, idb, sizeof(idb));
	snprintf(s, sizeof(s), "%d", slot);
	/* a gives the slot (no key left in it) to b, which never hears of it */
	freeReplyObject(on_node(a, "DEL %s", PAUSE_KEY, NULL));
	freeReplyObject(on_node(a, "CLUSTER SETSLOT %s NODE %s", s, idb));
	assert_int_equal(ctl("--cluster", fx->seeds, "pause", "status", NULL), 2);
	out_has("HMGET: still redirected after 5 redirects");
	freeReplyObject(on_node(a, "CLUSTER SETSLOT %s NODE %s", s, ida));
	assert_int_equal(ctl("--cluster", fx->seeds, "pause", "status", NULL), 0);
	out_has("running");
}

/* ---- a single Redis moved to the cluster ---- */

/* The notifier on port has loaded the NS subscribers mv-<i>, and its admin API
 * answers each. */
static void
every_subscriber_answers(int port)
{
	static struct it_resp resp;
	int i;

	IT_SHARD_WAIT_MIRROR(port, NS);
	for (i = 0; i < NS; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/v1/subscribers/mv-%d", i);
		if (it_shard_api(port, "GET", p, NULL, &resp) != 200)
			fail_msg("GET %s: %d", p, resp.status);
	}
}

/* Texts accepted at the gateway simulator to +1512558<i> of pushes starting entry. */
static void
texts_of(const char *entry, int *texts)
{
	(void)it_gwsim_texts(&fx->gw, "+1512558", entry, NS, texts);
}

static int
all_texted(void *entry)
{
	int texts[NS], i;

	texts_of(entry, texts);
	for (i = 0; i < NS; i++)
		if (texts[i] == 0)
			return 0;
	return 1;
}

static int
report_done(void *port)
{
	char line[256], want[64];

	it_shard_report_line(*(int *)port, "mv-old", line, sizeof(line));
	snprintf(want, sizeof(want), "%d %d ", NS, NS);
	return strncmp(line, want, strlen(want)) == 0;
}

/* Every key of the single Redis at port is on its slot's primary with the same type,
 * and a key with a TTL still has one; the types are printed. */
static void
every_key_copied(int port)
{
	struct it_keys *k = it_keys_take(port);
	char why[400], kinds[200];
	long bad;

	assert_non_null(k);
	assert_true(it_keys_count(k) > 0);
	bad = it_keys_on_cluster(k, &fx->cl, kinds, sizeof(kinds), why, sizeof(why));
	it_keys_free(k);
	printf("# keys copied: %s\n", kinds);
	if (bad != 0)
		fail_msg("%ld keys not copied: %s", bad, why);
}

/* The whole path of docs/sharding.md 4g: subscribers imported into one Redis, a
 * deal delivered there, the notifier stopped, migrate --to-shards 4, redis-cli
 * --cluster import --cluster-copy into the (emptied) cluster, a notifier on the
 * cluster: every subscriber there, the old deal's report as before, a new deal texted
 * once to each and the old one to nobody again. */
static void
a_single_redis_moves_to_the_cluster_with_nothing_lost(void **state)
{
	struct it_proc single;
	struct it_notifier nt1;
	char dir[512], addr[32], target[32], from[32], extra[512], before[256], after[256];
	char *subs, path[512], entry[96], old_entry[96], *e;
	int sp, port, i, texts[NS], rc;
	size_t len = 0;
	const char *imp[] = { "/usr/bin/env", "redis-cli", "--cluster", "import", target,
		"--cluster-from", from, "--cluster-copy", NULL };

	(void)state;
	memset(&single, 0, sizeof(single));
	memset(&nt1, 0, sizeof(nt1));
	it_path(dir, sizeof(dir), "single", "");
	assert_true((sp = it_free_port()) > 0);
	assert_int_equal(it_redis_start(&single, dir, sp, 0), sp);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", sp);
	assert_non_null(subs = malloc(NS * 300));
	for (i = 0; i < NS; i++)
		len += (size_t)snprintf(subs + len, NS * 300 - len,
		    "{\"id\":\"mv-%d\",\"phone\":\"+1512558%04d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"laptop\"]}}\n", i, i);
	assert_int_equal(it_import(sp, subs), 0);
	free(subs);
	/* The old deal, delivered on the single Redis. */
	port = it_notifier_start_http(&nt1, sp, fx->gw.port, "mv-single",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(port > 0);
	file_with(path, sizeof(path), it_deal("mv-old", "laptop", 900));
	assert_int_equal(ctl("--redis", addr, "publish", path, NULL), 0);
	assert_non_null(e = strstr(fx->out, "entry="));
	snprintf(old_entry, sizeof(old_entry), "%.*s:", (int)strcspn(e + 6, "\n"), e + 6);
	assert_true(it_wait(all_texted, old_entry, 30000));
	assert_true(it_wait(report_done, &port, 30000));
	it_shard_report_line(port, "mv-old", before, sizeof(before));
	assert_int_equal(it_stop_clean(&nt1.proc), 0);
	/* Migrate (10 s after the notifier's last read), then copy into the cluster. */
	it_sleep_ms(10500);
	assert_non_null(fx->orig = it_keys_take(sp));
	assert_int_equal(ctl("--redis", addr, "migrate", "--to-shards", "4", NULL), 0);
	for (i = 0; i < IT_CLUSTER_NODES; i++)
		if (is_primary(i))
			freeReplyObject(on_node(i, "FLUSHALL", NULL, NULL));
	snprintf(target, sizeof(target), "127.0.0.1:%d", fx->cl.ports[0]);
	snprintf(from, sizeof(from), "127.0.0.1:%d", sp);
	rc = it_run(imp, fx->out, sizeof(fx->out));
	if (rc != 0)
		fail_msg("redis-cli --cluster import exited %d: %s", rc, fx->out);
	every_key_copied(sp);
	it_stop(&single, SIGTERM, 5000);
	/* A notifier on the cluster. */
	snprintf(extra, sizeof(extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\ncluster = %s\nshards = 4\n", fx->seeds);
	port = it_notifier_start_http(&fx->nt, it_redis_port(), fx->gw.port, "mv-cluster",
	    extra);
	assert_true(port > 0);
	every_subscriber_answers(port);
	it_shard_report_line(port, "mv-old", after, sizeof(after));
	assert_string_equal(after, before);
	snprintf(fx->before, sizeof(fx->before), "%s", before);
	snprintf(fx->old_entry, sizeof(fx->old_entry), "%s", old_entry);
	/* A new deal, through dealpushctl on the cluster. */
	file_with(path, sizeof(path), it_deal("mv-new", "laptop", 900));
	assert_int_equal(ctl("--cluster", fx->seeds, "publish", path, NULL), 0);
	assert_non_null(e = strstr(fx->out, "entry="));
	snprintf(entry, sizeof(entry), "%.*s:", (int)strcspn(e + 6, "\n"), e + 6);
	snprintf(fx->new_entry, sizeof(fx->new_entry), "%s", entry);
	assert_true(it_wait(all_texted, entry, 30000));
	it_sleep_ms(1000);            /* a second text would show by now */
	texts_of(entry, texts);
	for (i = 0; i < NS; i++)
		if (texts[i] != 1)
			fail_msg("+1512558%04d got %d texts of the new deal", i, texts[i]);
	texts_of(old_entry, texts);
	for (i = 0; i < NS; i++)
		if (texts[i] != 1)
			fail_msg("+1512558%04d got %d texts of the old deal", i, texts[i]);
	assert_int_equal(it_log_count(fx->nt.proc.log, "event=cluster_unroutable", NULL,
	    NULL), 0);
	/* The notifier stays: the way back is refused while it serves the cluster. */
}

/* ---- and back to one Redis ---- */

/* Each phone got exactly one text of the pushes starting entry, or the test fails. */
static void
texted_once(const char *entry, const char *what)
{
	int texts[NS], i;

	texts_of(entry, texts);
	for (i = 0; i < NS; i++)
		if (texts[i] != 1)
			fail_msg("+1512558%04d got %d texts of the %s deal", i, texts[i], what);
}

/* The copy is refused, each time with what is wrong: a notifier serving the
 * cluster; then, the notifier stopped, bad options, a target that is a cluster
 * node, one that may evict keys, and one that holds a key. Nothing is written to the
 * target. */
static void
the_way_back_refuses_what_is_unsafe(void **state)
{
	char dir[512], node[32];
	redisContext *c;

	(void)state;
	it_path(dir, sizeof(dir), "target", "");
	assert_true((fx->tport = it_free_port()) > 0);
	assert_int_equal(it_redis_start(&fx->target, dir, fx->tport, 0), fx->tport);
	snprintf(fx->taddr, sizeof(fx->taddr), "127.0.0.1:%d", fx->tport);
	assert_true(fx->nt.proc.pid > 0);
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", fx->seeds,
	    NULL), 1);
	out_has("stop every notifier");
	assert_int_equal(it_stop_clean(&fx->nt.proc), 0);
	/* the rest while the notifier's last reads grow old (the running check's 10 s) */
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", NULL), 2);
	out_has("wants the cluster's nodes");
	assert_int_equal(ctl("--cluster", fx->seeds, "migrate", "--from-cluster",
	    fx->seeds, NULL), 2);
	out_has("give the one Redis to copy it into with --redis");
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster",
	    "redis.example:7000", NULL), 2);
	out_has("is not an IP address");
	snprintf(node, sizeof(node), "127.0.0.1:%d", fx->cl.ports[0]);
	assert_int_equal(ctl("--redis", node, "migrate", "--from-cluster", fx->seeds, NULL),
	    1);
	out_has("is a Redis Cluster node");
	c = it_redis_connect(fx->tport);
	freeReplyObject(redisCommand(c, "CONFIG SET maxmemory 1gb"));
	freeReplyObject(redisCommand(c, "CONFIG SET maxmemory-policy allkeys-lru"));
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", fx->seeds,
	    NULL), 1);
	out_has("may evict keys (maxmemory 1073741824, maxmemory-policy allkeys-lru)");
	freeReplyObject(redisCommand(c, "CONFIG SET maxmemory-policy noeviction"));
	freeReplyObject(redisCommand(c, "SET stray 1"));
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", fx->seeds,
	    NULL), 1);
	out_has("is not empty (1 keys) and holds no unfinished copy");
	assert_int_equal(it_int(c, "EXISTS stray"), 1);
	assert_int_equal(it_int(c, "DBSIZE"), 1);
	freeReplyObject(redisCommand(c, "DEL stray"));
	redisFree(c);
	it_sleep_ms(10500);
}

/* Killed after 20 keys (the fault point copy.kill): the target refuses notifiers and
 * dealpushctl (78) and --to-single; a stray key on it fails the count at the end
 * (exit 2, the copy left unfinished); the same command finishes it, and every key of
 * every primary is on the target with the same value and a TTL where it has one. A
 * second copy into the finished target is refused. */
static void
the_copy_killed_part_way_finishes_when_run_again(void **state)
{
	redisContext *c;
	redisReply *r;
	char why[400];
	long n, bad;

	(void)state;
	setenv("DP_FAULTS", "copy.kill@20", 1);
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", fx->seeds,
	    NULL), 137);
	unsetenv("DP_FAULTS");
	out_has("fault point copy.kill");
	c = it_redis_connect(fx->tport);
	assert_true(it_int(c, "DBSIZE") >= 20);
	assert_int_equal(ctl("--redis", fx->taddr, "pause", "status", NULL), 78);
	out_has("a migration has not finished");
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--to-single", NULL), 1);
	out_has("a copy from a Redis Cluster into this Redis has not finished");
	/* an unfinished copy of another deployment is not taken for this one */
	r = redisCommand(c, "HGET dealpush:copy created");
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	freeReplyObject(redisCommand(c, "HSET dealpush:copy created 1"));
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", fx->seeds,
	    NULL), 1);
	out_has("an unfinished copy of another deployment");
	freeReplyObject(redisCommand(c, "HSET dealpush:copy created %s", r->str));
	freeReplyObject(r);
	/* a key the cluster does not hold: the count at the end says so, nothing done */
	freeReplyObject(redisCommand(c, "SET stray 1"));
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", fx->seeds,
	    NULL), 2);
	out_has("the target holds keys the cluster no longer has");
	assert_int_equal(it_int(c, "EXISTS dealpush:copy"), 1);
	freeReplyObject(redisCommand(c, "DEL stray"));
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", fx->seeds,
	    NULL), 0);
	out_has("resuming the unfinished copy");
	out_has("copied: ");
	out_has("verified: the primaries hold");
	assert_int_equal(it_int(c, "EXISTS dealpush:copy"), 0);
	bad = it_keys_same_as_cluster(&fx->cl, fx->tport, &n, why, sizeof(why));
	printf("# %ld keys of the cluster compared on the target\n", n);
	if (bad != 0)
		fail_msg("%ld keys differ: %s", bad, why);
	assert_int_equal(it_int(c, "DBSIZE"), n);
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--from-cluster", fx->seeds,
	    NULL), 1);
	out_has("is not empty");
	redisFree(c);
}

/* migrate --to-single on the copy: every key the first single Redis had is back with
 * its type and TTL; a notifier there finds every subscriber, the old deal's report as
 * before, and texts a new deal to each phone once, the two old deals to no one. */
static void
the_copy_goes_back_to_the_single_layout_with_nothing_lost(void **state)
{
	char why[400], path[512], entry[96], line[256], *e;
	long bad;
	int port;

	(void)state;
	assert_int_equal(ctl("--redis", fx->taddr, "migrate", "--to-single", NULL), 0);
	out_has("the single-instance layout is in force");
	/* "pushes" aside: the layout migration drops the jobs already done (and the
	 * notifier makes the stream again), as test_migrate.c compares it */
	bad = it_keys_back(fx->orig, fx->tport, "pushes", 2000, why, sizeof(why));
	printf("# %zu keys of the first single Redis looked for\n",
	    it_keys_count(fx->orig));
	if (bad != 0)
		fail_msg("%ld keys are not back: %s", bad, why);
	port = it_notifier_start_http(&fx->nt, fx->tport, fx->gw.port, "mv-back",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(port > 0);
	every_subscriber_answers(port);
	it_shard_report_line(port, "mv-old", line, sizeof(line));
	assert_string_equal(line, fx->before);
	file_with(path, sizeof(path), it_deal("mv-back", "laptop", 900));
	assert_int_equal(ctl("--redis", fx->taddr, "publish", path, NULL), 0);
	assert_non_null(e = strstr(fx->out, "entry="));
	snprintf(entry, sizeof(entry), "%.*s:", (int)strcspn(e + 6, "\n"), e + 6);
	assert_true(it_wait(all_texted, entry, 30000));
	it_sleep_ms(1000);            /* a second text would show by now */
	texted_once(entry, "new");
	texted_once(fx->new_entry, "cluster's");
	texted_once(fx->old_entry, "first");
	assert_int_equal(it_stop_clean(&fx->nt.proc), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_cluster_values_are_refused),
		cmocka_unit_test(an_unreachable_cluster_is_a_clear_error),
		cmocka_unit_test(a_cluster_without_a_layout_is_refused),
		cmocka_unit_test(layout_create_and_show_through_a_replica),
		cmocka_unit_test(publish_and_cancel_reach_the_deals_primary),
		cmocka_unit_test(pause_resume_and_status),
		cmocka_unit_test(the_other_commands_run_on_the_cluster),
		cmocka_unit_test(keyspace_walks_are_refused_with_what_to_do),
		cmocka_unit_test(a_migrating_slot_is_answered_through_ask),
		cmocka_unit_test(a_slot_moved_while_publish_runs_is_followed),
		cmocka_unit_test(redirects_are_bounded),
		cmocka_unit_test(a_single_redis_moves_to_the_cluster_with_nothing_lost),
		cmocka_unit_test(the_way_back_refuses_what_is_unsafe),
		cmocka_unit_test(the_copy_killed_part_way_finishes_when_run_again),
		cmocka_unit_test(the_copy_goes_back_to_the_single_layout_with_nothing_lost),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
