/*
 * test_shard_owner.c: shard ownership (docs/sharding.md 4d; section 6, step 7), on 4
 * shards of one Redis, through the notifier itself.
 *
 * own.lua's rules first (acquire, busy, renew, the fence of an old epoch, release),
 * then notifiers: two configured for the same shards (one serves, the other waits);
 * two balanced, one killed for good in the middle of a fan-out (the other takes its
 * shards over when their leases run out, texts nobody twice and leaves no push
 * open); an owner frozen (SIGSTOP) past its lease in the middle of a fan-out (the
 * other takes over; woken, the frozen one hands nothing more to the gateway); a
 * notifier stopped with SIGTERM (its leases released at once, not waited out); a
 * limited deal without a code pool planned past its L by two notifiers and held to
 * exactly L texts by its quota (docs/sharding.md 4c), also when one of them dies
 * in the middle of a reservation; and the mirror of a notifier holding half the
 * shards holds only their subscribers.
 * Counted at the gateway (gwsim's log): texts per phone. Never timings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itshards.h"
#include "keys.h"
#include "phoneix.h"
#include "test_promises.h"

#define NT_A 0
#define NT_B 1
/* A 1 s gateway timeout (the first line lands in the harness's [gateway twilio]
 * section), leases of 3 s (the least config accepts) so that a takeover is quick. */
#define GW_LINE "timeout_ms = 1000\n"
#define EXTRA_REST "[deliver]\nmax_in_flight = 32\nclaim_idle_ms = 3000\n" \
	"resolve_after_s = 1\n[cluster]\nlease_ms = 3000\nlease_margin_ms = 500\n"
#define EXTRA_GW GW_LINE EXTRA_REST
#define EXTRA_ALL EXTRA_GW "ownership = configured\nshards = 0-3\n"
#define EXTRA_BAL EXTRA_GW "ownership = balanced\nsettle_ms = 1000\n"

static const char *const gw_slow[] = { "--latency-ms", "300", NULL };

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw, gw2;     /* gw2: B's own, when the test needs to tell */
	struct it_notifier nt[2];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	setenv("DP_SHARDS", "4", 1);   /* ownership needs the sharded layout */
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
	int i, rv = 0;

	for (i = 0; i < 2; i++) {
		if (f->nt[i].proc.pid > 0)
			kill(f->nt[i].proc.pid, SIGCONT);
		if (it_stop_clean(&f->nt[i].proc) < 0)
			rv = -1;
	}
	if (f->gw.proc.pid > 0)
		it_stop(&f->gw.proc, SIGTERM, 2000);
	if (f->gw2.proc.pid > 0)
		it_stop(&f->gw2.proc, SIGTERM, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

/* ---- helpers ---- */

/* own.lua on shard k's owner record: the reply's first element into verdict and its
 * second into second (either may be NULL). */
static void
own(struct fx *f, uint32_t k, const char *op, const char *me, const char *a,
    const char *b, char *verdict, char *second)
{
	char key[KEYS_SHARD_MAX];
	const char *keys[] = { key, NULL };
	const char *args[] = { op, me, a, b, NULL };
	redisReply *r;

	keys_shard_key(k, KEYS_OWNER, key, sizeof(key));
	r = it_eval(f->rc, "own", keys, args);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(verdict, 64, "error");
	} else {
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_true(r->elements >= 2);
		snprintf(verdict, 64, "%s", r->element[0]->str);
		if (second != NULL)
			snprintf(second, 64, "%s", r->element[1]->str);
	}
	freeReplyObject(r);
}

/* Shard k's owner record's holder ("" when none). */
static void
holder(struct fx *f, uint32_t k, char *out, size_t size)
{
	char key[KEYS_SHARD_MAX];
	redisReply *r;

	keys_shard_key(k, KEYS_OWNER, key, sizeof(key));
	r = redisCommand(f->rc, "HGET %s owner", key);
	snprintf(out, size, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
}

struct held {
	struct fx *f;
	const char *who;   /* NULL: anyone */
	int want;          /* shards held (by who) */
};

/* want shards held (by who, or by anyone when who is NULL). */
static int
held_by(void *arg)
{
	struct held *h = arg;
	char o[80];
	uint32_t k;
	int n = 0;

	for (k = 0; k < keys_shards(); k++) {
		holder(h->f, k, o, sizeof(o));
		n += h->who == NULL ? o[0] != '\0' : strcmp(o, h->who) == 0;
	}
	return n == h->want;
}

static int
count_held(struct fx *f, const char *who)
{
	char o[80];
	uint32_t k;
	int n = 0;

	for (k = 0; k < keys_shards(); k++) {
		holder(f, k, o, sizeof(o));
		n += strcmp(o, who) == 0;
	}
	return n;
}

/* A notifier's /healthz has its mirror at want subscribers, and no shard loading. */
struct mirror {
	int port;
	long want;
};

static int
mirror_at(void *arg)
{
	struct mirror *m = arg;
	char body[4096];
	cJSON *j, *mi, *sh;
	int ok = 0;

	if (it_http_get(m->port, "/healthz", body, sizeof(body)) != 200 ||
	    (j = cJSON_Parse(body)) == NULL)
		return 0;
	mi = cJSON_GetObjectItemCaseSensitive(j, "mirror");
	sh = cJSON_GetObjectItemCaseSensitive(j, "shards");
	ok = mi != NULL && sh != NULL &&
	    cJSON_GetObjectItemCaseSensitive(mi, "subscribers")->valuedouble == m->want &&
	    cJSON_GetObjectItemCaseSensitive(sh, "loading")->valuedouble == 0;
	cJSON_Delete(j);
	return ok;
}

/* Starts both notifiers, balanced (A first), and waits until each holds its share,
 * two of the four shards: one that heard only itself before the other's first
 * heartbeat may take all four at first and hand two over on its next beat. */
static void
start_two(struct fx *f, const char *extra)
{
	struct held ha = { f, "ow-a", 2 }, hb = { f, "ow-b", 2 };

	assert_int_equal(it_notifier_start(&f->nt[NT_A], f->port, f->gw.port, "ow-a",
	    extra), 0);
	assert_int_equal(it_notifier_start(&f->nt[NT_B], f->port, f->gw.port, "ow-b",
	    extra), 0);
	assert_true(it_wait(held_by, &ha, 20000));
	assert_true(it_wait(held_by, &hb, 20000));
}

/* The deal's tally: nobody texted twice, nothing open, every push final. */
static void
settle_and_check(struct fx *f, const char *deal, const char *entry, int n)
{
	struct pt_tally t;

	assert_true(pt_wait_settled(f->rc, &f->gw, deal, entry, n, 60000));
	pt_tally(&t, f->rc, &f->gw, deal, entry, n, 0);
	pt_tally_print(deal, &t);
	assert_int_equal(t.dup_phones, 0);
	assert_int_equal(t.strangers, 0);
	assert_int_equal(t.open, 0);
	assert_int_equal(t.final, n);
	assert_int_equal(t.sent + t.unknown, n);
	pt_tally_free(&t);
}

/* ---- own.lua ---- */

/* One holder at a time; every acquire a new epoch; an old epoch fenced; a release
 * frees the shard at once and keeps the epoch counting. */
static void
own_lua_one_holder_and_the_epoch_fences(void **state)
{
	struct fx *f = *state;
	char v[64], e1[64], e2[64], x[64];

	own(f, 1, "acquire", "a", "3000", NULL, v, e1);
	assert_string_equal(v, "ok");
	own(f, 1, "acquire", "b", "3000", NULL, v, x);
	assert_string_equal(v, "busy");
	assert_string_equal(x, "a");
	own(f, 1, "renew", "a", e1, "3000", v, NULL);
	assert_string_equal(v, "ok");
	/* A restarted "a" takes its shard again under a new epoch: the old
	 * incarnation's epoch is fenced. */
	own(f, 1, "acquire", "a", "3000", NULL, v, e2);
	assert_string_equal(v, "ok");
	assert_true(strtoll(e2, NULL, 10) > strtoll(e1, NULL, 10));
	own(f, 1, "renew", "a", e1, "3000", v, x);
	assert_string_equal(v, "lost");
	own(f, 1, "check", "a", e2, NULL, v, NULL);
	assert_string_equal(v, "ok");
	/* "b" can neither renew nor release what it does not hold. */
	own(f, 1, "release", "b", e2, NULL, v, NULL);
	assert_string_equal(v, "lost");
	own(f, 1, "release", "a", e2, NULL, v, NULL);
	assert_string_equal(v, "ok");
	own(f, 1, "acquire", "b", "3000", NULL, v, x);
	assert_string_equal(v, "ok");
	assert_true(strtoll(x, NULL, 10) > strtoll(e2, NULL, 10));
	/* A lease that has passed on Redis' clock is free to take. */
	own(f, 2, "acquire", "a", "1", NULL, v, NULL);
	assert_string_equal(v, "ok");
	it_sleep_ms(20);
	own(f, 2, "acquire", "b", "3000", NULL, v, NULL);
	assert_string_equal(v, "ok");
	/* Bad input is refused, naming what is wrong. */
	own(f, 3, "steal", "a", "3000", NULL, v, NULL);
	assert_string_equal(v, "error");
	own(f, 3, "acquire", "", "3000", NULL, v, NULL);
	assert_string_equal(v, "error");
	own(f, 3, "acquire", "a", "-5", NULL, v, NULL);
	assert_string_equal(v, "error");
}

/* Under an old epoch every fenced script refuses and writes nothing: plan.lua,
 * admit.lua, send.lua (a push this consumer marked "sending" goes back to
 * "admitted"), lease.lua; under the current one they run. */
static void
fenced_scripts_write_nothing_under_an_old_epoch(void **state)
{
	struct fx *f = *state;
	char ok[KEYS_SHARD_MAX], v[64], epoch[64];
	redisReply *r;

	keys_shard_key(1, KEYS_OWNER, ok, sizeof(ok));
	own(f, 1, "acquire", "ow-a", "30000", NULL, v, epoch);
	assert_string_equal(v, "ok");
	{
		/* plan.lua: ORDER PLAN_KEYS with the owner, 14 fixed ARGV, no job */
		const char *keys[] = { "{s1}deal:d1", "{s1}dealentry:1-0", "{s1}planset:d1",
			"{s1}report:deal:d1", "{s1}report:campaign:", "{s1}pushes", ok, NULL };
		const char *stale[] = { "1-0", "0", "1", "600", "0", "", "https://a.example/",
			"t", "", "0", "att", "d1", "", "0", NULL };
		const char *cur[] = { "1-0", "0", "1", "600", "0", "", "https://a.example/",
			"t", "", "0", "att", "d1", "", epoch, NULL };

		r = it_eval(f->rc, "plan", keys, stale);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_string_equal(r->element[0]->str, "fenced");
		assert_string_equal(r->element[1]->str, "ow-a");
		freeReplyObject(r);
		assert_int_equal(it_int(f->rc, "EXISTS {s1}deal:d1"), 0);
		r = it_eval(f->rc, "plan", keys, cur);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_string_equal(r->element[0]->str, "ok");
		freeReplyObject(r);
		assert_int_equal(it_int(f->rc, "EXISTS {s1}deal:d1"), 1);
	}
	{
		/* lease.lua: the job stream, the owner; group, consumer, epoch, a job */
		const char *keys[] = { "{s1}pushes", ok, NULL };
		const char *args[] = { "deliver", "ow-a", "0", "1-0", NULL };

		r = it_eval(f->rc, "lease", keys, args);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_int_equal(r->elements, 1);
		assert_int_equal(r->element[0]->integer, 0);
		freeReplyObject(r);
	}
	{
		/* admit.lua: ORDER ADMIT_KEYS (16), ORDER ADMIT_ARGS (13), no recipient */
		const char *keys[] = { "{s1}deal:d1", "{s1}push:d1", "{s1}consent:sms",
			"{s1}consent:dm", "{s1}pushes:log", "{s1}stats", "{s1}delayed",
			"{s1}code:d1", "", "{s1}report:deal:d1", "", "{s1}resolve:due",
			"{s1}resolve:info", "{s1}consent:epoch", "", ok, NULL };
		const char *args[] = { "1000", "9999999999", "600", "d1", "1-0", "", "ow-b",
			"0", "0", "60", "", "0", epoch, NULL };

		r = it_eval(f->rc, "admit", keys, args);   /* ow-b does not hold it */
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_string_equal(r->element[0]->str, "!fenced");
		assert_string_equal(r->element[1]->str, "ow-a");
		freeReplyObject(r);
	}
	{
		/* send.lua: ORDER SEND_KEYS (6), SEND_ARGS (5), one recipient (12 keys,
		 * 16 args) that ow-a had marked "sending" and now renews under "0" */
		const char *keys[] = { "{s1}pushes:log", "{s1}stats", "{s1}pushes",
			"{s1}consent:epoch", "{s1}delayed", ok, "{s1}push:d1", "{s1}deal:d1",
			"{s1}consent:sms", "{s1}code:d1", "{s1}report:deal:d1",
			"{s1}report:rule:r", "", "", "", "", "", "{s1}retext:d1", NULL };
		const char *args[] = { "1000", "ow-a", "deliver", "1", "0",
			"s-1", "sms", "1-0:s-1:sms", "d1", "9999999999", "0", "renew", "1-0",
			"0", "0", "", "0", "0", "0", "0", "0", NULL };

		assert_int_equal(it_int(f->rc, "HSET {s1}push:d1 s-1:sms sending:ow-a"), 1);
		r = it_eval(f->rc, "send", keys, args);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_string_equal(r->element[0]->str, "lost");
		freeReplyObject(r);
		r = redisCommand(f->rc, "HGET {s1}push:d1 s-1:sms");
		assert_string_equal(r->str, "admitted");
		freeReplyObject(r);
	}
}

/* ---- notifiers ---- */

/* Both want every shard: the first to start holds all four, the other none, and it
 * plans nothing; the deal reaches everyone once. */
static void
two_configured_for_the_same_shards_only_one_serves(void **state)
{
	struct fx *f = *state;
	struct held h = { f, "ow-a", 4 };
	char entry[64];

	pt_import(f->port, 200, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt[NT_A], f->port, f->gw.port, "ow-a",
	    EXTRA_ALL), 0);
	assert_true(it_wait(held_by, &h, 20000));
	assert_int_equal(it_notifier_start(&f->nt[NT_B], f->port, f->gw.port, "ow-b",
	    EXTRA_ALL), 0);
	it_sleep_ms(1500);            /* a few of B's acquire rounds */
	pt_publish(f->rc, it_deal("own-one", "laptop", 600), entry, sizeof(entry));
	settle_and_check(f, "own-one", entry, 200);
	assert_int_equal(count_held(f, "ow-a"), 4);
	assert_int_equal(it_log_count(f->nt[NT_A].proc.log, "event=deal_planned", NULL,
	    NULL), 4);
	assert_int_equal(it_log_count(f->nt[NT_B].proc.log, "event=deal_planned", NULL,
	    NULL), 0);
	assert_int_equal(it_log_count(f->nt[NT_B].proc.log, "event=shard_acquired", NULL,
	    NULL), 0);
	assert_true(it_log_count(f->nt[NT_B].proc.log, "event=shard_busy", NULL,
	    NULL) >= 4);
}

/* Balanced: the two share the shards; B is killed (-9) in the middle of a fan-out
 * through a slow gateway. A takes B's shards once their leases run out, takes B's
 * pending deals and jobs over, and finishes: nobody texted twice, nothing open. */
static void
balanced_one_killed_mid_fanout_the_other_takes_over(void **state)
{
	struct fx *f = *state;
	struct held h = { f, "ow-a", 4 };
	char entry[64];
	int b_held;

	pt_import(f->port, 600, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, gw_slow), 0);
	start_two(f, EXTRA_BAL);
	b_held = count_held(f, "ow-b");
	printf("# balanced: ow-a holds %d shards, ow-b %d\n", count_held(f, "ow-a"),
	    b_held);
	assert_int_equal(b_held, 2);
	pt_publish(f->rc, it_deal("own-kill", "laptop", 600), entry, sizeof(entry));
	it_sleep_ms(1500);            /* planned, and texts on their way */
	assert_int_equal(it_stop(&f->nt[NT_B].proc, SIGKILL, 5000) & 0x7f, SIGKILL);
	assert_true(it_wait(held_by, &h, 20000));
	settle_and_check(f, "own-kill", entry, 600);
	assert_true(it_log_count(f->nt[NT_A].proc.log, "event=takeover_done", NULL,
	    NULL) > 0);
}

/* Requests of the deal whose stream entry is entry that reached g later than
 * after_ms (wall clock, gwsim's ts_ms). */
static long
requests_after(const struct it_gwsim *g, const char *entry, long long after_ms)
{
	char prefix[80];

	snprintf(prefix, sizeof(prefix), "%s:", entry);
	return it_gwsim_requests_after(g, prefix, after_ms);
}

/* A holds every shard (configured), B waits for them; each sends through its own
 * gateway simulator. A is frozen past its lease in the middle of a fan-out: B takes
 * over; A, woken, finds its lease gone and hands nothing more to its gateway (a
 * request it had handed over before the freeze may still leave within the gateway
 * timeout, 1 s); nobody is texted twice over the two gateways. */
static void
frozen_owner_hands_nothing_over_after_waking(void **state)
{
	struct fx *f = *state;
	struct held h = { f, "ow-a", 4 };
	struct pt_tally ta, tb;
	char entry[64];
	long long woke;
	int i, dup = 0;

	pt_import(f->port, 600, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, gw_slow), 0);
	assert_int_equal(it_gwsim_start(&f->gw2, gw_slow), 0);
	assert_int_equal(it_notifier_start(&f->nt[NT_A], f->port, f->gw.port, "ow-a",
	    EXTRA_ALL), 0);
	assert_true(it_wait(held_by, &h, 20000));
	assert_int_equal(it_notifier_start(&f->nt[NT_B], f->port, f->gw2.port, "ow-b",
	    EXTRA_ALL), 0);
	pt_publish(f->rc, it_deal("own-freeze", "laptop", 600), entry, sizeof(entry));
	it_sleep_ms(1500);
	pt_signal(&f->nt[NT_A].proc, SIGSTOP);
	h.who = "ow-b";
	assert_true(it_wait(held_by, &h, 20000));
	it_sleep_ms(1000);            /* B at work on A's shards */
	woke = pt_wall_ms();
	pt_signal(&f->nt[NT_A].proc, SIGCONT);
	/* Every push final; the gateways' logs then read together. */
	assert_true(pt_wait_settled(f->rc, &f->gw2, "own-freeze", entry, 600, 60000));
	pt_tally(&ta, f->rc, &f->gw, "own-freeze", entry, 600, 0);
	pt_tally(&tb, f->rc, &f->gw2, "own-freeze", entry, 600, 0);
	pt_tally_print("own-freeze at A's gateway", &ta);
	pt_tally_print("own-freeze at B's gateway", &tb);
	for (i = 0; i < 600; i++)
		dup += ta.texts[i] + tb.texts[i] > 1;
	printf("# A's gateway: %ld requests after A woke, %ld more than 1 s after\n",
	    requests_after(&f->gw, entry, woke), requests_after(&f->gw, entry,
	    woke + 1000));
	assert_int_equal(dup, 0);
	assert_true(ta.accepted > 0 && tb.accepted > 0);
	assert_int_equal(ta.accepted + tb.accepted, tb.sent + tb.unknown);
	assert_int_equal(tb.open, 0);
	assert_int_equal(tb.final, 600);
	/* No push ended for want of its subscriber: a woken owner whose mirror let
	 * the shard go must not decide anyone's push. */
	assert_int_equal(tb.other, 0);
	assert_int_equal(requests_after(&f->gw, entry, woke + 1000), 0);
	pt_tally_free(&ta);
	pt_tally_free(&tb);
	/* Woken: its lease is gone (run out here, or fenced), and it took no shard
	 * back. */
	assert_true(it_log_count(f->nt[NT_A].proc.log, "event=shard_not_serving", NULL,
	    NULL) >= 4);
	assert_int_equal(count_held(f, "ow-a"), 0);
}

/* SIGTERM: the work in flight finishes, then every lease is released at once, so
 * that the other notifier takes the shards without waiting for them to run out. */
static void
stopped_notifier_releases_its_shards(void **state)
{
	struct fx *f = *state;
	struct held h = { f, "ow-b", 4 };
	char entry[64];
	int status;

	pt_import(f->port, 100, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_two(f, EXTRA_BAL);
	status = it_stop(&f->nt[NT_A].proc, SIGTERM, 10000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(it_log_count(f->nt[NT_A].proc.log, "event=shard_released", NULL,
	    NULL) > 0);
	assert_true(it_wait(held_by, &h, 20000));
	pt_publish(f->rc, it_deal("own-stop", "laptop", 600), entry, sizeof(entry));
	settle_and_check(f, "own-stop", entry, 100);
}

/* ---- a limited deal without a code pool: its quota (docs/sharding.md 4c) ---- */

#define QUOTA_L 300             /* quantity 200 x overbook 1.5 */

struct quota_watch {
	redisContext *rc;
	const char *deal;
	char pool[KEYS_MAX];
};

/* 1 when the deal is planned on every shard, every planned push is final and the
 * shards hold no unit of the quota outside a push (all given back). */
static int
quota_settled(void *arg)
{
	struct quota_watch *w = arg;
	long planned, states, final, marked;

	if (it_deal_copies(w->rc, w->deal, "planned") != 4)
		return 0;
	planned = (long)it_shards_hget_sum(w->rc, KEYS_DEAL, w->deal, "recipients");
	pt_count_states(w->rc, w->deal, NULL, &states, &final, &marked);
	return states == planned && final == planned &&
	    it_shards_codes_held(w->rc, w->deal, w->pool) == 0;
}

/* Publishes the limited deal (quantity 200, no pool) to the running notifiers, waits
 * until it settles, and checks the quota's promises over the texts counted at the
 * gateway: nobody texted twice, no token in a text, at most L texted (exactly L
 * when exact), every other planned push sold_out, and the units accounted for: sent
 * (and unknown) + the counter + what the shards still hold = L. Returns the
 * recipients planned. */
static long
quota_run(struct fx *f, const char *deal, int exact, int (*after_publish)(struct fx *))
{
	struct quota_watch w = { f->rc, deal, "" };
	char json[1024], entry[64], key[KEYS_MAX];
	struct pt_tally t;
	cJSON *lines, *o;
	redisReply *r;
	long planned, sold_out = 0, tokens = 0;
	long long left, held;
	int i;

	assert_true(keys_quota_pool(deal, QUOTA_L, w.pool, sizeof(w.pool)) > 0);
	assert_true(keys_pool_key(w.pool, key, sizeof(key)) > 0);
	snprintf(json, sizeof(json), "%s", it_deal(deal, "laptop", 600));
	json[strlen(json) - 1] = '\0';
	strncat(json, ", \"quantity\": 200}", sizeof(json) - strlen(json) - 1);
	pt_publish(f->rc, json, entry, sizeof(entry));
	if (after_publish != NULL)
		assert_int_equal(after_publish(f), 0);
	assert_true(it_wait(quota_settled, &w, 60000));
	planned = (long)it_shards_hget_sum(f->rc, KEYS_DEAL, deal, "recipients");
	pt_tally(&t, f->rc, &f->gw, deal, entry, 1000, 0);
	pt_tally_print(deal, &t);
	lines = pt_gw_lines(&f->gw, entry);
	cJSON_ArrayForEach(o, lines) {
		const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");

		tokens += cJSON_IsString(body) && strchr(body->valuestring, '*') != NULL;
	}
	cJSON_Delete(lines);
	for (i = 0; i < 1000; i++)
		sold_out += t.state[i] != NULL && strcmp(t.state[i], "sold_out") == 0;
	r = redisCommand(f->rc, "GET %s", key);
	assert_non_null(r);
	left = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
	freeReplyObject(r);
	held = it_shards_codes_held(f->rc, deal, w.pool);
	printf("# quota %s: planned %ld, texted %ld, sent %ld, unknown %ld, "
	    "sold_out %ld, left in the counter %lld, held by shards %lld\n", deal,
	    planned, t.accepted, t.sent, t.unknown, sold_out, left, held);
	assert_true(t.accepted <= QUOTA_L);
	assert_int_equal(t.dup_phones, 0);
	assert_int_equal(t.strangers, 0);
	assert_int_equal(t.final, planned);     /* the others were never planned */
	assert_int_equal(t.at_gw_not_sent, 0);
	assert_int_equal(tokens, 0);
	assert_int_equal(t.sent + t.unknown + left + held, QUOTA_L);
	if (exact) {
		assert_int_equal(t.accepted, QUOTA_L);
		assert_int_equal(t.sent, QUOTA_L);
		assert_int_equal(sold_out, planned - QUOTA_L);
		assert_int_equal(left, 0);
	}
	pt_tally_free(&t);
	return planned;
}

/* A limited deal with no code pool under balanced ownership (docs/sharding.md 4c,
 * L_K and "The quota"): each notifier ranks only the shards it mirrors and cuts its
 * ranking to its share, L_n = min(L, ceil(L p + 3 sqrt(L p)) + 1). quantity 200 x
 * overbook 1.5 is L = 300 of the 1,000 who match; each of the two notifiers serving
 * two of the four shards (p = 1/2) plans at most 188, so together at most 376, not
 * the 600 of two notifiers each cutting at L. At least L: the global top L is within
 * the two. The quota then lets exactly L of them be texted; the rest end sold_out. */
static void
a_limited_deal_is_cut_to_each_notifiers_share(void **state)
{
	struct fx *f = *state;
	long recipients;

	pt_import(f->port, 1000, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_two(f, EXTRA_BAL);
	it_sleep_ms(1000);            /* both mirrors hold their two shards */
	recipients = quota_run(f, "own-limit", 1, NULL);
	printf("# a limited deal (L = 300) planned for %ld recipients by two notifiers\n",
	    recipients);
	assert_true(recipients >= 300 && recipients <= 376);
	assert_true(it_log_count(f->nt[NT_A].proc.log, " cut=188 ", NULL, NULL) +
	    it_log_count(f->nt[NT_B].proc.log, " cut=188 ", NULL, NULL) > 0);
	assert_true(it_log_count(f->nt[NT_A].proc.log, "event=quota_reserved", NULL,
	    NULL) + it_log_count(f->nt[NT_B].proc.log, "event=quota_reserved", NULL,
	    NULL) > 0);
}

/* ow-a dies as under kill -9 (fault point codes.reserve.kill) right after the quota
 * answered one of its reservations: the units are out of the counter, named in the
 * quota's res, in no stash. ow-b takes ow-a's shards over, its walk finishes the
 * reservation (a replay answers the same tokens) and admits ow-a's jobs. */
static int
quota_kill_a(struct fx *f)
{
	struct held h = { f, "ow-b", 4 };
	int status = it_stop(&f->nt[NT_A].proc, 0, 30000);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 137)
		return -1;
	return it_wait(held_by, &h, 20000) ? 0 : -1;
}

/* At most L texted and no unit lost when a notifier dies in the middle of a
 * reservation of the quota and the other takes its shards over. */
static void
a_limited_deal_keeps_its_quota_when_a_notifier_dies_mid_reservation(void **state)
{
	struct fx *f = *state;
	struct held ha = { f, "ow-a", 2 }, hb = { f, "ow-b", 2 };

	pt_import(f->port, 1000, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_FAULTS", "codes.reserve.kill@2", 1);
	assert_int_equal(it_notifier_start(&f->nt[NT_A], f->port, f->gw.port, "ow-a",
	    EXTRA_BAL), 0);
	unsetenv("DP_FAULTS");
	assert_int_equal(it_notifier_start(&f->nt[NT_B], f->port, f->gw.port, "ow-b",
	    EXTRA_BAL), 0);
	assert_true(it_wait(held_by, &ha, 20000));
	assert_true(it_wait(held_by, &hb, 20000));
	it_sleep_ms(1000);            /* both mirrors hold their two shards */
	(void)quota_run(f, "own-quota-kill", 0, quota_kill_a);
}

/* A notifier configured for shards 0-1 mirrors only their subscribers, and another
 * for 2-3 the rest: between them every subscriber once. */
static void
each_mirror_holds_only_its_shards(void **state)
{
	struct fx *f = *state;
	struct mirror m[2];
	long per[4] = { 0 };
	char entry[64];
	int i;

	pt_import(f->port, 400, "laptop");
	for (i = 0; i < 400; i++) {
		char id[16];

		snprintf(id, sizeof(id), "s-%d", i);
		per[keys_shard_of(id)]++;
	}
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	m[0].port = it_notifier_start_http_gw(&f->nt[NT_A], f->port, f->gw.port, "ow-a",
	    GW_LINE, "admin_token_env = DP_TEST_ADMIN_TOKEN\n" EXTRA_REST
	    "ownership = configured\nshards = 0-1\n");
	m[1].port = it_notifier_start_http_gw(&f->nt[NT_B], f->port, f->gw.port, "ow-b",
	    GW_LINE, "admin_token_env = DP_TEST_ADMIN_TOKEN\n" EXTRA_REST
	    "ownership = configured\nshards = 2,3\n");
	assert_true(m[0].port > 0 && m[1].port > 0);
	m[0].want = per[0] + per[1];
	m[1].want = per[2] + per[3];
	printf("# shards hold %ld %ld %ld %ld subscribers\n", per[0], per[1], per[2],
	    per[3]);
	assert_true(it_wait(mirror_at, &m[0], 20000));
	assert_true(it_wait(mirror_at, &m[1], 20000));
	/* A simulation on one of them counts its shards' subscribers only, and says so. */
	{
		struct it_resp resp;
		cJSON *o, *p;

		assert_int_equal(it_shard_api(m[0].port, "POST", "/v1/deals/simulate",
		    it_deal("probe", "laptop", 600), &resp), 200);
		assert_non_null(o = cJSON_Parse(resp.body));
		assert_int_equal((long)cJSON_GetObjectItem(o, "subscribers")->valuedouble,
		    m[0].want);
		assert_non_null(p = cJSON_GetObjectItem(o, "partial"));
		assert_int_equal(cJSON_GetObjectItem(p, "shards_mirrored")->valueint, 2);
		assert_int_equal(cJSON_GetObjectItem(p, "shards")->valueint, 4);
		cJSON_Delete(o);
	}
	/* A number's subscribers are found whole on a notifier that does not mirror
	 * their shard: by the phone index, each id checked against its store (one the
	 * index names but whose number changed is left out). */
	{
		struct it_resp resp;
		char path[96], key[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX], id[16];
		char phone[16], want[64];
		redisReply *r;

		for (i = 0; i < 400; i++) {
			snprintf(id, sizeof(id), "s-%d", i);
			if (keys_shard_of(id) >= 2)
				break;
		}
		snprintf(phone, sizeof(phone), "+1512555%04d", PT_PHONE_BASE + i);
		assert_int_equal(phoneix_keys(PHONEIX_PHONE, phone, key, sup), 0);
		r = redisCommand(f->rc, "HGET %s %s", key, phone);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_STRING);
		freeReplyObject(r);
		freeReplyObject(redisCommand(f->rc, "HSET %s %s %s\nstale-1", key, phone, id));
		snprintf(path, sizeof(path), "/v1/subscribers?phone=%%2B1512555%04d",
		    PT_PHONE_BASE + i);
		assert_int_equal(it_shard_api(m[0].port, "GET", path, NULL, &resp), 200);
		snprintf(want, sizeof(want), "\"ids\":[\"%s\"]", id);
		if (strstr(resp.body, want) == NULL)
			fail_msg("%s answered %s, want %s", path, resp.body, want);
	}
	pt_publish(f->rc, it_deal("own-split", "laptop", 600), entry, sizeof(entry));
	settle_and_check(f, "own-split", entry, 400);
	assert_int_equal(it_log_count(f->nt[NT_A].proc.log, "event=deal_planned", NULL,
	    NULL), 2);
	assert_int_equal(it_log_count(f->nt[NT_B].proc.log, "event=deal_planned", NULL,
	    NULL), 2);
}

/* A shard list past the layout's last shard ends the notifier at start, naming the
 * key. */
static void
shards_past_the_layout_refused_at_start(void **state)
{
	struct fx *f = *state;
	int status;

	assert_int_equal(it_notifier_start(&f->nt[NT_A], f->port, 1, "ow-a",
	    EXTRA_GW "ownership = configured\nshards = 2-9\n"), 0);
	status = it_stop(&f->nt[NT_A].proc, 0, 10000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	assert_true(it_log_count(f->nt[NT_A].proc.log, "key=cluster.shards", NULL,
	    NULL) > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(own_lua_one_holder_and_the_epoch_fences,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    fenced_scripts_write_nothing_under_an_old_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    two_configured_for_the_same_shards_only_one_serves, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    balanced_one_killed_mid_fanout_the_other_takes_over, setup, teardown),
		cmocka_unit_test_setup_teardown(frozen_owner_hands_nothing_over_after_waking,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(stopped_notifier_releases_its_shards, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(a_limited_deal_is_cut_to_each_notifiers_share,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_limited_deal_keeps_its_quota_when_a_notifier_dies_mid_reservation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(each_mirror_holds_only_its_shards, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(shards_past_the_layout_refused_at_start,
		    setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
