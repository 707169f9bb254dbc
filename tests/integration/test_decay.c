/*
 * test_decay.c: engagement decay on a running notifier (docs/attribution.md §3): a
 * "sent" push nobody clicked within 72 h lowers its subscriber's engagement by x0.98
 * (rounded to 6 decimals) exactly once, also across more decay steps and a restart;
 * clicked pushes, failed pushes and pushes younger than 72 h change nothing; the
 * cursor in engagement:decay stops at the last entry old enough.
 *
 * The decay step is decay.lua, run once a second by the conversion consumer
 * (notifier/convert.c), which every notifier starts, with or without its HTTP
 * surface. The log entries are written before the notifier starts, with explicit ids
 * on Redis' own clock (decay.lua compares the ids with Redis TIME), in the fields
 * record.lua writes.
 *
 * Decay steps are counted, not timed: decay.lua is the only script that calls TIME
 * (grep "'TIME'" notifier/lua), so cmdstat_time in INFO commandstats grows by one per
 * step. Waiting for N more steps makes "once only" a statement about N steps, however
 * slow the machine. (Should another script ever call TIME, the waits only get
 * shorter: weaker, never flaky.)
 *
 * Checked to fail without the behaviour: with a scratch copy of the tree whose
 * decay.lua was broken one way at a time (factor not applied; result not rounded;
 * cursor not SET; no clicked:<push> check; no outcome check; no 72 h window) and its
 * notifier run by these tests (DP_BUILD=<scratch build>), each mutation failed at
 * least one of the two tests; the real tree passes.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define ENGAGEMENT "0.123457"
#define DECAYED "0.120988"      /* 0.123457 x 0.98 = 0.12098786, to 6 decimals */
#define DAY_MS (86400LL * 1000)
#define NSUBS 4
#define SHARDS_MAX 64     /* of the layouts a test puts in force */

struct fx {
	redisContext *rc;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;
	int port;
	char old_last[64];      /* id of the last log entry older than 72 h */
	char old_last_of[SHARDS_MAX][64]; /* the same in each shard's log ("" = none) */
	char young[64];         /* id of the entry younger than 72 h */
	char *before[NSUBS];    /* stored JSON of s-a .. s-d before the notifier ran */
};

static const char *const subs[NSUBS] = { "s-a", "s-b", "s-c", "s-d" };

static int
setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc), i;

	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	for (i = 0; i < NSUBS; i++)
		free(f->before[i]);
	free(f);
	return rv;
}

/* Subscriber sub's copy of a key named as in the single-instance layout, in the
 * layout in force (it_key_for); a static buffer of 4, used in turn. */
static const char *
sk(const char *name, const char *sub)
{
	static char buf[4][KEYS_MAX];
	static unsigned turn;

	return it_key_for(name, sub, buf[turn++ % 4], KEYS_MAX);
}

/* HGET subscribers id (its shard's), malloc'd ("" when absent). */
static char *
stored(redisContext *rc, const char *id)
{
	redisReply *r = redisCommand(rc, "HGET %s %s", sk("subscribers", id), id);
	char *s = strdup(r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");

	freeReplyObject(r);
	assert_non_null(s);
	return s;
}

/* GET key into buf ("" when absent). */
static const char *
get_str(redisContext *rc, const char *key, char *buf, size_t size)
{
	redisReply *r = redisCommand(rc, "GET %s", key);

	buf[0] = '\0';
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		snprintf(buf, size, "%s", r->str);
	freeReplyObject(r);
	return buf;
}

/* Redis' clock in ms. */
static long long
redis_now_ms(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "TIME");
	long long ms;

	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
	    strtoll(r->element[1]->str, NULL, 10) / 1000;
	freeReplyObject(r);
	return ms;
}

/* Calls of TIME so far: decay steps, plus this test's own redis_now_ms(). */
static long long
time_calls(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "INFO commandstats");
	const char *p;
	long long n = 0;

	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	if ((p = strstr(r->str, "cmdstat_time:calls=")) != NULL)
		n = strtoll(p + strlen("cmdstat_time:calls="), NULL, 10);
	freeReplyObject(r);
	return n;
}

/* One pushes:log entry as record.lua writes it, in sub's shard's log; old: older
 * than the decay window (the last such entry of each shard is kept). */
static void
log_push(struct fx *f, const char *id, const char *push, const char *sub,
    const char *outcome, int old)
{
	redisReply *r = redisCommand(f->rc, "XADD %s %s push %s deal d-old sub %s "
	    "channel sms outcome %s gateway twilio provider_id SM%s http_status %s "
	    "detail %s at %lld latency_ms 12", sk("pushes:log", sub), id, push, sub,
	    outcome, sub,
	    strcmp(outcome, "sent") == 0 ? "201" : "500",
	    strcmp(outcome, "sent") == 0 ? "-" : "http_500", it_now());

	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	assert_string_equal(r->str, id);
	freeReplyObject(r);
	if (old)
		snprintf(f->old_last_of[keys_shard_of(sub)], sizeof(f->old_last_of[0]), "%s",
		    id);
}

/*
 * A private redis with four subscribers of engagement 0.123457 and, in pushes:log,
 * four days ago: s-b sent and clicked, s-a sent and not clicked, s-c failed; an hour
 * ago: s-d sent. Then gwsim and a notifier.
 */
static void
start(struct fx *f)
{
	char dir[512], lines[2048], id[64], push[128], key[KEYS_MAX];
	size_t o = 0;
	long long now, old;
	int i;

	it_path(dir, sizeof(dir), "redis-decay", "");
	f->port = it_redis_start(&f->redis, dir, 0, 0);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	for (i = 0; i < NSUBS; i++)
		o += (size_t)snprintf(lines + o, sizeof(lines) - o,
		    "{\"id\":\"%s\",\"phone\":\"+1512555010%d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"laptop\"]},\"engagement\":" ENGAGEMENT
		    "}\n", subs[i], i);
	assert_true(o < sizeof(lines));
	assert_int_equal(it_import(f->port, lines), 0);
	for (i = 0; i < NSUBS; i++) {
		f->before[i] = stored(f->rc, subs[i]);
		/* decay.lua rewrites the trailing member of the canonical form only. */
		assert_non_null(strstr(f->before[i], "\"engagement\":" ENGAGEMENT "}"));
	}
	assert_true(keys_shards() <= SHARDS_MAX);
	assert_int_equal(it_shards_sum_key(f->rc, "XLEN %s", KEYS_SUB_CHANGES), NSUBS);

	now = redis_now_ms(f->rc);
	old = now - 4 * DAY_MS;
	snprintf(id, sizeof(id), "%lld-0", old);
	snprintf(push, sizeof(push), "%lld-0:s-b:sms", old - 1000);
	log_push(f, id, push, "s-b", "sent", 1);
	keys_clicked(keys_shard_of("s-b"), push, key, sizeof(key));
	freeReplyObject(redisCommand(f->rc, "SET %s 1 EX 2592000", key));
	snprintf(id, sizeof(id), "%lld-1", old);
	snprintf(push, sizeof(push), "%lld-0:s-a:sms", old - 1000);
	log_push(f, id, push, "s-a", "sent", 1);
	snprintf(f->old_last, sizeof(f->old_last), "%lld-2", old);
	snprintf(push, sizeof(push), "%lld-0:s-c:sms", old - 1000);
	log_push(f, f->old_last, push, "s-c", "failed", 1);
	snprintf(f->young, sizeof(f->young), "%lld-0", now - 3600 * 1000);
	snprintf(push, sizeof(push), "%lld-0:s-d:sms", now - 3601 * 1000);
	log_push(f, f->young, push, "s-d", "sent", 0);
	assert_int_equal(it_shards_sum_key(f->rc, "EXISTS %s", KEYS_ENGAGEMENT_DECAY), 0);

	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-decay", NULL),
	    0);
}

/* The stored JSON expected for subscriber i after one decay: the same bytes with only
 * the trailing engagement replaced. */
static char *
decayed(const struct fx *f, int i)
{
	const char *tail = "\"engagement\":" ENGAGEMENT "}";
	size_t n = strlen(f->before[i]) - strlen(tail);
	char *s = malloc(n + 64);

	assert_non_null(s);
	assert_string_equal(f->before[i] + n, tail);
	snprintf(s, n + 64, "%.*s\"engagement\":" DECAYED "}", (int)n, f->before[i]);
	return s;
}

struct cursor_at {
	struct fx *f;
	const char *id;
};

/* Every shard's cursor is at its log's last entry older than the window (c->id on
 * one shard; none where the shard's log has no such entry). */
static int
cursor_reached(void *arg)
{
	struct cursor_at *c = arg;
	char buf[64], key[KEYS_SHARD_MAX];
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		keys_shard_key(k, KEYS_ENGAGEMENT_DECAY, key, sizeof(key));
		if (strcmp(get_str(c->f->rc, key, buf, sizeof(buf)),
		    keys_shards() == 1 ? c->id : c->f->old_last_of[k]) != 0)
			return 0;
	}
	return 1;
}

struct steps {
	redisContext *rc;
	long long n;
};

static int
steps_reached(void *arg)
{
	struct steps *s = arg;

	return time_calls(s->rc) >= s->n;
}

/* Waits until n more decay steps have run. */
static void
wait_steps(redisContext *rc, long long n)
{
	struct steps s = { rc, 0 };

	s.n = time_calls(rc) + n;
	assert_true(it_wait(steps_reached, &s, 30000));
}

/* s-a has decayed exactly once and nothing else moved. */
static void
assert_decayed_once(struct fx *f)
{
	char *want = decayed(f, 0), *got = stored(f->rc, "s-a");
	struct cursor_at c = { f, f->old_last };

	assert_string_equal(got, want);
	assert_true(cursor_reached(&c));
	/* One change announced for the mirrors: s-a's. */
	assert_int_equal(it_shards_sum_key(f->rc, "XLEN %s", KEYS_SUB_CHANGES), NSUBS + 1);
	free(want);
	free(got);
}

static void
unclicked_push_older_than_72h_decays_engagement_once(void **state)
{
	struct fx *f = *state;
	struct cursor_at c;
	redisReply *r;

	start(f);
	c.f = f;
	c.id = f->old_last;
	assert_true(it_wait(cursor_reached, &c, 30000));
	assert_decayed_once(f);
	r = redisCommand(f->rc, "XREVRANGE %s + - COUNT 1", sk("subscribers:changes", "s-a"));
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	assert_true(r->element[0]->element[1]->elements == 4);
	assert_string_equal(r->element[0]->element[1]->element[0]->str, "id");
	assert_string_equal(r->element[0]->element[1]->element[1]->str, "s-a");
	assert_string_equal(r->element[0]->element[1]->element[3]->str, "put");
	freeReplyObject(r);

	/* More steps: the cursor keeps the push from decaying s-a again. */
	wait_steps(f->rc, 3);
	assert_decayed_once(f);

	/* A new notifier reads the cursor from Redis, not from memory. */
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-decay", NULL),
	    0);
	wait_steps(f->rc, 3);
	assert_decayed_once(f);
}

static void
clicked_failed_and_younger_pushes_do_not_decay_engagement(void **state)
{
	struct fx *f = *state;
	struct cursor_at c;
	char *got;
	int i;

	start(f);
	c.f = f;
	c.id = f->old_last;
	assert_true(it_wait(cursor_reached, &c, 30000));
	wait_steps(f->rc, 3);
	/* s-b clicked, s-c failed, s-d an hour old: byte for byte as imported. */
	for (i = 1; i < NSUBS; i++) {
		got = stored(f->rc, subs[i]);
		assert_string_equal(got, f->before[i]);
		free(got);
	}
	/* The cursor stopped before the young entry, so it decays when it is 72 h old. */
	assert_true(strcmp(f->old_last, f->young) != 0);
	assert_true(cursor_reached(&c));
	assert_decayed_once(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    unclicked_push_older_than_72h_decays_engagement_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    clicked_failed_and_younger_pushes_do_not_decay_engagement, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("decay", tests, NULL, NULL);
}
