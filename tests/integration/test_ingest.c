/*
 * test_ingest.c: the ingest side under faults, on a real redis-server, gwsim and the
 * real notifier: Redis answering LOADING while the notifier starts, a poison
 * deal entry that fails every time, an entry with a field given twice, a re-plan
 * after a crash with a changed ranking, and scheduled and updated deals. Counts
 * only: what reached the gateway, the stream, the dead letters, the deal hash.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define DEALS_DEAD keys_global(KEYS_G_DEALS_DEAD)   /* in the layout in force */

/* "XLEN <deals:dead in the layout in force>", for an int_arg. */
static const char *
dead_len_cmd(void)
{
	static char cmd[64];

	snprintf(cmd, sizeof(cmd), "XLEN %s", DEALS_DEAD);
	return cmd;
}

#define WAIT_MS 15000

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;      /* a private redis (the LOADING test) */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

/* n subscribers s-<i> (phone +1512555<1000+i>) interested in laptops, all
 * consenting; engagement of s-<i> is (i + 1) / (n + 1), reversed when flip. */
static char *
subs(int n, int flip)
{
	size_t cap = (size_t)n * 320 + 1, len = 0;
	char *s = malloc(cap);
	int i;

	s[0] = '\0';
	for (i = 0; i < n; i++) {
		double e = (double)((flip ? n - 1 - i : i) + 1) / (n + 1);

		snprintf(s + len, cap - len,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\",\"engagement\":%.4f,"
		    "\"interests\":{\"categories\":[\"laptop\"]}}\n", i, 1000 + i, e);
		len += strlen(s + len);
	}
	return s;
}

static void
start_all(struct fx *f, int port, const char *consumer, const char *extra)
{
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt, port, f->gw.port, consumer, extra), 0);
}

struct gw_arg {
	struct fx *f;
	int want;
};

static int
gw_has(void *arg)
{
	struct gw_arg *g = arg;

	return it_gwsim_count(&g->f->gw, 201) >= g->want;
}

struct int_arg {
	redisContext *rc;
	const char *cmd;
	long long want;
};

/* An integer command reaches want (a command that takes no arguments). */
static int
int_reaches(void *arg)
{
	struct int_arg *a = arg;

	return it_int(a->rc, a->cmd) >= a->want;
}

static long long
pending(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "XPENDING deals notifier");
	long long n = -1;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER)
		n = r->element[0]->integer;
	freeReplyObject(r);
	return n;
}

/* The value of field name of the i-th entry of an XRANGE reply, or NULL. */
static const char *
entry_field(const redisReply *r, size_t i, const char *name)
{
	const redisReply *fl = r->element[i]->element[1];
	size_t j;

	for (j = 0; j + 1 < fl->elements; j += 2)
		if (strcmp(fl->element[j]->str, name) == 0)
			return fl->element[j + 1]->str;
	return NULL;
}

/* Adds a deal entry and returns its id (static buffer). */
static const char *
publish(redisContext *rc, const char *json)
{
	static char id[64];
	redisReply *r = redisCommand(rc, "XADD deals * deal %s", json);

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	snprintf(id, sizeof(id), "%s", r->str);
	freeReplyObject(r);
	return id;
}

/* How many "r" lines on stream pushes name subscriber sub (any deal), and how many
 * there are in all (*total). */
static int
r_lines(redisContext *rc, const char *deal, int n, int *per_sub)
{
	redisReply *r = redisCommand(rc, "XRANGE pushes - +");
	int total = 0;
	size_t i, j;

	assert_non_null(r);
	memset(per_sub, 0, sizeof(*per_sub) * (size_t)n);
	for (i = 0; i < r->elements; i++) {
		const redisReply *fl = r->element[i]->element[1];
		const char *d = entry_field(r, i, "deal");

		if (d == NULL || strcmp(d, deal) != 0)
			continue;
		for (j = 0; j + 1 < fl->elements; j += 2) {
			int k;

			if (strcmp(fl->element[j]->str, "r") != 0)
				continue;
			total++;
			if (sscanf(fl->element[j + 1]->str, "sms\ts-%d\t", &k) == 1 && k >= 0 &&
			    k < n)
				per_sub[k]++;
		}
	}
	freeReplyObject(r);
	return total;
}

/* ---- LOADING ---- */

struct loading_arg {
	int port;
	int loading;               /* 1: wait until LOADING; 0: until loaded */
};

static int
redis_state(void *arg)
{
	struct loading_arg *a = arg;
	struct timeval tv = { 0, 300000 };
	redisContext *rc = redisConnectWithTimeout("127.0.0.1", a->port, tv);
	redisReply *r;
	int hit = 0;

	if (rc == NULL || rc->err) {
		redisFree(rc);
		return 0;
	}
	redisSetTimeout(rc, tv);
	r = redisCommand(rc, "PING");
	if (r != NULL) {
		int is_loading = r->type == REDIS_REPLY_ERROR &&
		    strncmp(r->str, "LOADING", 7) == 0;
		hit = a->loading ? is_loading : r->type == REDIS_REPLY_STATUS;
	}
	freeReplyObject(r);
	redisFree(rc);
	return hit;
}

static void
mirror_loads_after_redis_answered_loading_at_start(void **state)
{
	struct fx *f = *state;
	char dir[512], portbuf[16], *s = subs(1, 0);
	const char *argv[] = { "/usr/bin/redis-server", "--port", portbuf, "--bind",
		"127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		/* Slow loading down and answer clients meanwhile (-LOADING): what a
		 * restarted Redis with a large data set does. */
		"--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024",
		NULL };
	struct loading_arg la;
	struct gw_arg g = { f, 1 };
	redisContext *rc;
	redisReply *r;
	int port;

	it_path(dir, sizeof(dir), "redis-loading", "");
	port = it_redis_start(&f->redis, dir, 0, 0);
	assert_true(port > 0);
	assert_int_equal(it_import(port, s), 0);
	free(s);
	rc = it_redis_connect(port);
	r = redisCommand(rc, "EVAL %s 0", "for i = 1, 30000 do "
	    "redis.call('SET', 'pad:' .. i, 'x') end return 1");
	freeReplyObject(r);
	r = redisCommand(rc, "SAVE");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	redisFree(rc);
	it_stop(&f->redis, SIGKILL, 2000);

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	assert_int_equal(it_spawn(&f->redis, argv, NULL), 0);
	la.port = port;
	la.loading = 1;
	assert_true(it_wait(redis_state, &la, 5000));
	/* The notifier starts while Redis still answers LOADING. */
	start_all(f, port, "it-load", NULL);
	la.loading = 0;
	assert_true(it_wait(redis_state, &la, 30000));
	rc = it_redis_connect(port);
	assert_int_equal(it_publish(rc, it_deal("after-loading", "laptop", 600)), 0);
	assert_true(it_wait(gw_has, &g, WAIT_MS));
	assert_int_equal(it_gwsim_count(&f->gw, 201), 1);
	redisFree(rc);
	/* It did meet LOADING, and retried: the key layout is the first thing it reads
	 * (the mirror starts once the layout is known). */
	assert_true(it_log_line(f->nt.proc.log, "event=layout_read_failed err=\"LOADING")
	    > 0);
	assert_true(it_log_line(f->nt.proc.log, "event=subscribers_loaded count=1") > 0);
}

/* ---- poison entries ---- */

struct deliveries_arg {
	redisContext *rc;
	const char *entry;
	long long want;
};

/* The pending entry has been read at least want times. */
static int
delivered_times(void *arg)
{
	struct deliveries_arg *a = arg;
	redisReply *r = redisCommand(a->rc, "XPENDING deals notifier %s %s 1", a->entry,
	    a->entry);
	int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->elements == 4 &&
	    r->element[0]->element[3]->integer >= a->want;

	freeReplyObject(r);
	return ok;
}

static void
poison_entry_is_dead_lettered_after_max_tries_while_new_deals_go_out(void **state)
{
	struct fx *f = *state;
	char *s = subs(1, 0), poison[64];
	struct deliveries_arg twice = { f->rc, poison, 2 };
	struct int_arg dead = { f->rc, dead_len_cmd(), 1 };
	struct gw_arg g = { f, 1 };
	redisReply *r;

	assert_int_equal(it_import(f->port, s), 0);
	free(s);
	/* Another program took the deal's key for a string: plan.lua fails on it with
	 * WRONGTYPE, every time. */
	freeReplyObject(redisCommand(f->rc, "SET deal:poison squatter"));
	start_all(f, f->port, "it-poison", "[ingest]\nmax_tries = 3\n");
	snprintf(poison, sizeof(poison), "%s", publish(f->rc, it_deal("poison", "laptop",
	    600)));
	/* It failed and was read again: now a new deal arrives behind it. */
	assert_true(it_wait(delivered_times, &twice, WAIT_MS));
	assert_int_equal(it_publish(f->rc, it_deal("fresh", "laptop", 600)), 0);
	assert_true(it_wait(gw_has, &g, WAIT_MS));
	assert_true(it_wait(int_reaches, &dead, WAIT_MS));

	r = redisCommand(f->rc, "XRANGE %s - +", DEALS_DEAD);
	assert_int_equal(r->elements, 1);
	assert_string_equal(entry_field(r, 0, "reason"), "max_tries");
	assert_string_equal(entry_field(r, 0, "entry"), poison);
	assert_non_null(strstr(entry_field(r, 0, "error"), "WRONGTYPE"));
	assert_non_null(strstr(entry_field(r, 0, "deal"), "\"id\": \"poison\""));
	freeReplyObject(r);
	assert_int_equal(pending(f->rc), 0);
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", keys_global(KEYS_G_DEALS_TRIES), poison), 0);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 1);
	assert_true(it_log_line(f->nt.proc.log, "event=deal_dead entry=") > 0);
}

static void
entry_that_keeps_failing_does_not_starve_new_ones(void **state)
{
	struct fx *f = *state;
	char *s = subs(1, 0), poison[64];
	struct deliveries_arg again = { f->rc, poison, 3 };
	struct gw_arg g = { f, 1 };

	assert_int_equal(it_import(f->port, s), 0);
	free(s);
	freeReplyObject(redisCommand(f->rc, "SET deal:stuck squatter"));
	/* Far from dead-lettered: it stays pending all along. */
	start_all(f, f->port, "it-stuck", "[ingest]\nmax_tries = 1000\n");
	snprintf(poison, sizeof(poison), "%s", publish(f->rc, it_deal("stuck", "laptop",
	    600)));
	again.want = 2;
	assert_true(it_wait(delivered_times, &again, WAIT_MS));
	assert_int_equal(it_publish(f->rc, it_deal("flowing", "laptop", 600)), 0);
	assert_true(it_wait(gw_has, &g, WAIT_MS));
	/* And it is still being tried. */
	again.want = 4;
	assert_true(it_wait(delivered_times, &again, WAIT_MS));
	assert_int_equal(pending(f->rc), 1);
	assert_int_equal(it_int(f->rc, "XLEN %s", DEALS_DEAD), 0);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 1);
}

/* ---- duplicated fields ---- */

static void
entry_with_a_field_twice_is_dead_lettered_duplicate_field(void **state)
{
	struct fx *f = *state;
	char *s = subs(1, 0), good[1024], other[1024];
	struct gw_arg g = { f, 1 };
	redisReply *r;

	assert_int_equal(it_import(f->port, s), 0);
	free(s);
	start_all(f, f->port, "it-dup", NULL);
	snprintf(good, sizeof(good), "%s", it_deal("first", "laptop", 600));
	snprintf(other, sizeof(other), "%s", it_deal("second", "laptop", 600));
	/* Two readers would see two deals: we the first value, many clients the last. */
	freeReplyObject(redisCommand(f->rc, "XADD deals * deal %s deal %s", good, other));
	freeReplyObject(redisCommand(f->rc, "XADD deals * src a deal %s src b", other));
	assert_int_equal(it_publish(f->rc, it_deal("behind", "laptop", 600)), 0);
	assert_true(it_wait(gw_has, &g, WAIT_MS));

	r = redisCommand(f->rc, "XRANGE %s - +", DEALS_DEAD);
	assert_int_equal(r->elements, 2);
	assert_string_equal(entry_field(r, 0, "reason"), "duplicate_field");
	assert_string_equal(entry_field(r, 0, "field"), "deal");
	assert_string_equal(entry_field(r, 0, "deal"), good);
	assert_string_equal(entry_field(r, 1, "reason"), "duplicate_field");
	assert_string_equal(entry_field(r, 1, "field"), "src");
	freeReplyObject(r);
	/* Neither became a deal: only "behind" went out. */
	assert_int_equal(it_int(f->rc, "EXISTS deal:first"), 0);
	assert_int_equal(it_int(f->rc, "EXISTS deal:second"), 0);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 1);
	assert_int_equal(pending(f->rc), 0);
}

/* ---- re-plan after a crash ---- */

struct field_arg {
	redisContext *rc;
	const char *key, *field, *want;
};

static int
hash_field_is(void *arg)
{
	struct field_arg *a = arg;
	char key[KEYS_MAX];
	/* A report's plan counts are shard 0's (docs/sharding.md, step 2). */
	redisReply *r = redisCommand(a->rc, "HGET %s %s", it_key_for(a->key, NULL, key,
	    sizeof(key)), a->field);
	int ok = r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, a->want) == 0;

	freeReplyObject(r);
	return ok;
}


/*
 * Leaves deal id as a plan that crashed after its first chunk leaves it: the entry
 * pending for consumer, the deal hash naming it with the old attempt's cursor, the
 * first recipients (planned) in planset:<id> and their jobs on "pushes".
 */
static const char *
crashed_plan(redisContext *rc, const char *id, const char *json, const char *consumer,
    const int *planned, int nplanned, int cursor)
{
	static char entry[64];
	char key[128], set[128], line[256];
	redisReply *r;
	int i;

	freeReplyObject(redisCommand(rc, "XGROUP CREATE deals notifier 0 MKSTREAM"));
	snprintf(entry, sizeof(entry), "%s", publish(rc, json));
	r = redisCommand(rc, "XREADGROUP GROUP notifier %s COUNT 1 STREAMS deals >",
	    consumer);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	freeReplyObject(r);
	snprintf(key, sizeof(key), "deal:%s", id);
	snprintf(set, sizeof(set), "planset:%s", id);
	freeReplyObject(redisCommand(rc, "HSET %s planning %s attempt crashed:1 cursor %d "
	    "recipients %d jobs %d entry %s", key, entry, cursor, nplanned, nplanned, entry));
	for (i = 0; i < nplanned; i++) {
		snprintf(line, sizeof(line), "sms\ts-%d\t+1512555%04d\tdefault\tDeal %s",
		    planned[i], 1000 + planned[i], id);
		freeReplyObject(redisCommand(rc, "SADD %s s-%d:sms", set, planned[i]));
		freeReplyObject(redisCommand(rc, "XADD pushes * deal %s entry %s exp %lld "
		    "camp %s pool %s start 0 r %s", id, entry, it_now() + 600, "", "", line));
	}
	return entry;
}

static void
replan_after_a_crash_with_a_changed_ranking_plans_everyone_once(void **state)
{
	struct fx *f = *state;
	enum { N = 30 };
	char *s = subs(N, 1), json[1024];
	/* Under the old ranking s-25..s-29 were first; now they come last. */
	const int first[] = { 25, 26, 27, 28, 29 };
	/* The crashed attempt had 7 chunks of 5 in mind: more than the new one needs. */
	struct int_arg planned = { f->rc, "HEXISTS deal:all planned", 1 };
	struct int_arg limited = { f->rc, "HEXISTS deal:cut planned", 1 };
	struct field_arg all_rcpts = { f->rc, "deal:all", "recipients", "30" };
	int per_sub[N], i, total;

	assert_int_equal(it_import(f->port, s), 0);
	free(s);
	/* A group that never reads keeps every job on "pushes" (see below). */
	freeReplyObject(redisCommand(f->rc, "XGROUP CREATE pushes watch 0 MKSTREAM"));
	crashed_plan(f->rc, "all", it_deal("all", "laptop", 600), "it-replan", first, 5, 7);
	/* A limited deal: quantity 8 x overbook 1.5 = 12 recipients in all. */
	snprintf(json, sizeof(json), "%s", it_deal("cut", "laptop", 600));
	json[strlen(json) - 1] = '\0';
	strncat(json, ", \"quantity\": 8}", sizeof(json) - strlen(json) - 1);
	crashed_plan(f->rc, "cut", json, "it-replan", first, 5, 1);
	start_all(f, f->port, "it-replan", "[ingest]\nplan_chunk = 5\njob_size = 2\n");
	assert_true(it_wait(int_reaches, &planned, WAIT_MS));
	assert_true(it_wait(int_reaches, &limited, WAIT_MS));

	/* Every subscriber exactly once, whatever the ranking did. */
	total = r_lines(f->rc, "all", N, per_sub);
	assert_int_equal(total, N);
	for (i = 0; i < N; i++)
		assert_int_equal(per_sub[i], 1);
	assert_true(hash_field_is(&all_rcpts));
	/* The limited one: never more than 12 in all, nobody twice. */
	total = r_lines(f->rc, "cut", N, per_sub);
	assert_int_equal(total, 12);
	for (i = 0; i < N; i++)
		assert_true(per_sub[i] <= 1);
	for (i = 0; i < 5; i++)
		assert_int_equal(per_sub[first[i]], 1);
	assert_int_equal(pending(f->rc), 0);
	assert_int_equal(it_int(f->rc, "EXISTS planset:all"), 0);
	assert_int_equal(it_int(f->rc, "EXISTS planset:cut"), 0);
}

/* ---- scheduled and updated deals ---- */

/* Every job of deal on "pushes" has field start == want; returns how many jobs. */
static int
jobs_start(redisContext *rc, const char *deal, const char *want)
{
	redisReply *r = redisCommand(rc, "XRANGE pushes - +");
	int n = 0;
	size_t i;

	for (i = 0; i < r->elements; i++) {
		const char *d = entry_field(r, i, "deal"), *st = entry_field(r, i, "start");

		if (d == NULL || strcmp(d, deal) != 0)
			continue;
		assert_non_null(st);
		assert_string_equal(st, want);
		n++;
	}
	freeReplyObject(r);
	return n;
}

static void
scheduled_start_reaches_the_jobs_and_an_update_the_deal_hash(void **state)
{
	struct fx *f = *state;
	char *s = subs(3, 0), json[1024], start[32], exp[32];
	struct int_arg later = { f->rc, "HEXISTS deal:later planned", 1 };
	struct int_arg now = { f->rc, "HEXISTS deal:now planned", 1 };
	struct int_arg dead = { f->rc, dead_len_cmd(), 1 };
	struct field_arg upd = { f->rc, "deal:later", "exp", exp };
	struct field_arg reported = { f->rc, "report:deal:later", "planned", "3" };
	redisReply *r;
	long long t = it_now();

	assert_int_equal(it_import(f->port, s), 0);
	free(s);
	/* A group that never reads keeps every job on "pushes" (the deliverer trims only
	 * what every group is done with), so the jobs can be read here. */
	freeReplyObject(redisCommand(f->rc, "XGROUP CREATE pushes watch $ MKSTREAM"));
	start_all(f, f->port, "it-sched", "[ingest]\njob_size = 2\n");
	snprintf(start, sizeof(start), "%lld", t + 3600);
	snprintf(json, sizeof(json), "{\"id\": \"later\", \"title\": \"Later\", "
	    "\"category\": \"laptop\", \"url\": \"https://x.example/l\", "
	    "\"starts_at\": %s, \"expires_at\": %lld}", start, t + 7200);
	assert_int_equal(it_publish(f->rc, json), 0);
	assert_int_equal(it_publish(f->rc, it_deal("now", "laptop", 600)), 0);
	assert_true(it_wait(int_reaches, &later, WAIT_MS));
	assert_true(it_wait(int_reaches, &now, WAIT_MS));
	/* 3 recipients, 2 jobs (a job holds one shard's recipients). */
	assert_int_equal(jobs_start(f->rc, "later", start), it_jobs_for("s-", 3, 2));
	assert_int_equal(jobs_start(f->rc, "now", "0"), it_jobs_for("s-", 3, 2));

	/* An update: the new expiry lands in the deal hash as "exp"; nothing new is
	 * planned. An expiry already past is accepted (it stops what is queued). */
	snprintf(exp, sizeof(exp), "%lld", t + 1800);
	snprintf(json, sizeof(json), "{\"id\": \"later\", \"update\": true, \"title\": "
	    "\"Later\", \"url\": \"https://x.example/l\", \"expires_at\": %s}", exp);
	assert_int_equal(it_publish(f->rc, json), 0);
	assert_true(it_wait(hash_field_is, &upd, WAIT_MS));
	snprintf(exp, sizeof(exp), "%lld", t - 60);
	snprintf(json, sizeof(json), "{\"id\": \"later\", \"update\": true, \"title\": "
	    "\"Later\", \"url\": \"https://x.example/l\", \"expires_at\": %s}", exp);
	assert_int_equal(it_publish(f->rc, json), 0);
	assert_true(it_wait(hash_field_is, &upd, WAIT_MS));
	assert_int_equal(jobs_start(f->rc, "later", start), it_jobs_for("s-", 3, 2));
	assert_true(hash_field_is(&reported));

	/* An update of a deal nobody planned is dead-lettered. */
	snprintf(json, sizeof(json), "{\"id\": \"ghost\", \"update\": true, \"title\": "
	    "\"G\", \"url\": \"https://x.example/g\", \"expires_at\": %lld}", t + 600);
	assert_int_equal(it_publish(f->rc, json), 0);
	assert_true(it_wait(int_reaches, &dead, WAIT_MS));
	r = redisCommand(f->rc, "XRANGE %s - +", DEALS_DEAD);
	assert_int_equal(r->elements, 1);
	assert_string_equal(entry_field(r, 0, "reason"), "unknown_deal");
	assert_string_equal(entry_field(r, 0, "deal"), json);
	freeReplyObject(r);
	assert_int_equal(it_int(f->rc, "EXISTS deal:ghost"), 0);
	assert_int_equal(pending(f->rc), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    mirror_loads_after_redis_answered_loading_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    poison_entry_is_dead_lettered_after_max_tries_while_new_deals_go_out,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    entry_that_keeps_failing_does_not_starve_new_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    entry_with_a_field_twice_is_dead_lettered_duplicate_field, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    replan_after_a_crash_with_a_changed_ranking_plans_everyone_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    scheduled_start_reaches_the_jobs_and_an_update_the_deal_hash, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("ingest", tests, NULL, NULL);
}
