/*
 * test_promises.c: no text twice and every push ending, when the gateway is slower
 * than our timeout, when the notifier stalls mid fan-out, and when a "first N" pool
 * meets gateway 5xx answers (issue 11, items 1, 3 and 7).
 *
 * Each test injects its fault in the middle of the work and counts what reached the
 * gateway (gwsim's log: texts per deal and phone), not only what the notifier logged;
 * then it reads push:<deal> and pushes:log. Counts, never timings: every wait is a
 * bounded poll for a state. The freeze and the takeover tests are in
 * test_promises_takeover.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_promises.h"
#include "itshards.h"

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;   /* a private Redis, for the case that freezes it */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
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
	int rv = 0;

	if (f->nt.proc.pid > 0)
		kill(f->nt.proc.pid, SIGCONT);  /* a test that failed mid-freeze */
	if (it_stop_clean(&f->nt.proc) < 0)
		rv = -1;
	it_stop(&f->gw.proc, SIGTERM, 2000);
	redisFree(f->rc);
	if (f->redis.pid > 0) {
		kill(f->redis.pid, SIGCONT);
		it_stop(&f->redis, SIGTERM, 5000);
	}
	free(f);
	return rv;
}

struct gw_want {
	const struct it_gwsim *g;
	const char *entry;
	long n;
};

/* 1 once gwsim has logged n requests of the deal. */
static int
gw_reaches(void *arg)
{
	struct gw_want *w = arg;
	cJSON *lines = pt_gw_lines(w->g, w->entry);
	int n = cJSON_GetArraySize(lines);

	cJSON_Delete(lines);
	return n >= w->n;
}

/* The promises every fault test checks: at most one text per phone, nobody outside
 * the audience texted, every push final, and what the gateway accepted is "sent" or
 * "unknown" (never "failed", "expired" ...); every "sent" really reached it. */
static void
assert_no_duplicate_and_all_final(const struct pt_tally *t)
{
	assert_int_equal(t->dup_phones, 0);
	assert_int_equal(t->strangers, 0);
	assert_int_equal(t->open, 0);
	assert_int_equal(t->final, t->n);
	assert_int_equal(t->unlogged, 0);
	assert_int_equal(t->at_gw_not_sent, 0);
	assert_int_equal(t->sent_not_at_gw, 0);
}

/*
 * gwsim answers after 1,500 ms, our timeout is 1,000 ms: every request reaches the
 * gateway and is accepted there, but we never see the answer. Resending after such a
 * timeout is a second text (Twilio has no idempotency key), so the attempt must end
 * "unknown" (resolved to "sent" later, from the provider's records), never resent.
 */
struct resolved_want {
	redisContext *rc;
	const char *deal;
	long long n;
};

/* Every push of the deal resolved: n "sent" in the deal's report, none unknown. */
static int
all_resolved(void *arg)
{
	struct resolved_want *w = arg;

	return it_shards_hget_sum(w->rc, KEYS_REPORT_DEAL, w->deal, "sent") == w->n &&
	    it_shards_hget_sum(w->rc, KEYS_REPORT_DEAL, w->deal, "unknown") == 0;
}

static void
gateway_slower_than_the_timeout_never_texts_a_phone_twice(void **state)
{
	struct fx *f = *state;
	struct resolved_want want;
	static const char *const slow[] = { "--latency-ms", "1500", NULL };
	const int n = 200;
	char entry[64];
	struct pt_tally t;

	pt_import(f->port, n, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, slow), 0);
	/* Before any section header: the harness's [gateway twilio] section. */
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "slow-1",
	    "timeout_ms = 1000\n[deliver]\nresolve_after_s = 1\n"), 0);
	pt_publish(f->rc, it_deal("slow-1", "laptop", 600), entry, sizeof(entry));
	pt_wait_settled(f->rc, &f->gw, "slow-1", entry, n, 30000);
	/* Every request reached gwsim, so the resolver finds each in its message list:
	 * every unknown push ends sent, with the provider's sid. */
	want.rc = f->rc;
	want.deal = "slow-1";
	want.n = n;
	assert_true(it_wait(all_resolved, &want, 60000));

	pt_tally(&t, f->rc, &f->gw, "slow-1", entry, n, 0);
	pt_tally_print("slow gateway", &t);
	assert_int_equal(t.dup_phones, 0);
	/* Each push ends sent or unknown (sent once the provider's records resolve it). */
	assert_no_duplicate_and_all_final(&t);
	assert_int_equal(t.sent + t.unknown, n);
	assert_int_equal(t.sent, n);
	assert_int_equal(it_shards_stat(f->rc, "resolved:list"), n);
	/* The gateway accepted every request it got: each phone it texted is accounted
	 * for, and a "sent" without a text there is impossible. */
	assert_true(t.accepted <= n);
	pt_tally_free(&t);
}

/*
 * One notifier is frozen (SIGSTOP) with requests in flight for longer than the
 * gateway timeout, well under claim_idle_ms, during a 2,000-push fan-out. When it
 * wakes, the answers are in its sockets but its timeouts have expired: an attempt
 * that may have reached the gateway must not be sent again.
 */
static void
notifier_stalled_past_the_timeout_never_texts_a_phone_twice(void **state)
{
	struct fx *f = *state;
	static const char *const gw_100ms[] = { "--latency-ms", "100", NULL };
	const int n = 2000;
	char entry[64];
	struct gw_want some = { &f->gw, entry, 400 };
	struct resolved_want want;
	struct pt_tally t;
	long long log_at;

	pt_import(f->port, n, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, gw_100ms), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "stall-1",
	    "timeout_ms = 1000\n[deliver]\nmax_in_flight = 64\nresolve_after_s = 1\n"), 0);
	pt_publish(f->rc, it_deal("stall-1", "laptop", 600), entry, sizeof(entry));

	/* Mid fan-out, with a full window of requests waiting for their answers. */
	assert_true(it_wait(gw_reaches, &some, 30000));
	pt_signal(&f->nt.proc, SIGSTOP);
	log_at = it_shards_sum_key(f->rc, "XLEN %s", KEYS_PUSHES_LOG);
	it_sleep_ms(2500);              /* 2.5 x timeout_ms; claim_idle_ms is 60 s */
	pt_signal(&f->nt.proc, SIGCONT);
	printf("# frozen 2500 ms with %lld of %d outcomes recorded\n", log_at, n);
	assert_true(log_at < n);

	pt_wait_settled(f->rc, &f->gw, "stall-1", entry, n, PT_SETTLE_MS);
	pt_tally(&t, f->rc, &f->gw, "stall-1", entry, n, 0);
	pt_tally_print("stalled notifier", &t);
	assert_no_duplicate_and_all_final(&t);
	assert_int_equal(t.sent + t.unknown, n);
	/* Only the requests in flight at the freeze can be unknown, and gwsim took each:
	 * the resolver finds every one in its message list. */
	assert_true(t.unknown <= 64);
	want.rc = f->rc;
	want.deal = "stall-1";
	want.n = n;
	assert_true(it_wait(all_resolved, &want, 60000));
	pt_tally_free(&t);
}

/* The code in a text ("..., code PC-123, ..."): its number, or -1. */
static int
code_in(const char *body)
{
	const char *c = strstr(body, "PC-");
	char *end;
	long v;

	if (c == NULL)
		return -1;
	errno = 0;
	v = strtol(c + 3, &end, 10);
	return errno == 0 && end != c + 3 && v >= 0 && v < 1000 ? (int)v : -1;
}

/*
 * A "first 200" deal (a pool of 200 codes) to 300 recipients while 5% of the gateway's
 * answers are 500s: a push keeps its code through its retries, a code whose push
 * ends without a text goes back to the pool, so exactly 200 codes are texted, each
 * once, and none is lost (pool empty; a code not texted can only be held by an
 * "unknown" push, and those are counted).
 */
static void
pool_of_200_codes_under_5xx_texts_exactly_200_and_loses_none(void **state)
{
	struct fx *f = *state;
	static const char *const flaky[] = { "--fail-rate", "0.05", "--seed", "11", NULL };
	const int n = 300, pool = 200;
	char entry[64], deal[512], sub[32], key[KEYS_MAX];
	int texted[200] = { 0 }, i, code, distinct = 0, twice = 0, bad = 0, held = 0;
	long fails = 0;
	struct pt_tally t;
	cJSON *lines, *o;
	redisReply *r;

	pt_import(f->port, n, "laptop");
	for (i = 0; i < pool; i++)
		freeReplyObject(redisCommand(f->rc, "SADD codes:first200 PC-%03d", i));
	assert_int_equal(it_int(f->rc, "SCARD codes:first200"), pool);
	assert_int_equal(it_gwsim_start(&f->gw, flaky), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "codes-1", NULL),
	    0);
	snprintf(deal, sizeof(deal), "{\"id\": \"first200\", \"title\": \"First 200\", "
	    "\"category\": \"laptop\", \"url\": \"https://x.example/f\", "
	    "\"code_pool\": \"codes:first200\", \"expires_at\": %lld}", it_now() + 600);
	pt_publish(f->rc, deal, entry, sizeof(entry));
	pt_wait_settled(f->rc, &f->gw, "first200", entry, n, PT_SETTLE_MS);

	pt_tally(&t, f->rc, &f->gw, "first200", entry, n, 0);
	pt_tally_print("codes under 5xx", &t);
	/* What the gateway accepted: which codes, each in one text only. */
	lines = pt_gw_lines(&f->gw, entry);
	cJSON_ArrayForEach(o, lines) {
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
		const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");

		if (st->valueint >= 500)
			fails++;
		if (st->valueint / 100 != 2)
			continue;
		if (!cJSON_IsString(body) || (code = code_in(body->valuestring)) < 0 ||
		    code >= pool) {
			bad++;
			continue;
		}
		if (texted[code]++ == 0)
			distinct++;
		else
			twice++;
	}
	cJSON_Delete(lines);
	/* Codes held by unknown pushes (the gateway may or may not have texted them). */
	for (i = 0; i < n; i++) {
		if (t.state[i] == NULL || strcmp(t.state[i], "unknown") != 0)
			continue;
		snprintf(sub, sizeof(sub), "s-%d", i);
		r = redisCommand(f->rc, "HGET %s %s:sms", it_key_of(KEYS_CODE, sub, "first200",
		    key, sizeof(key)), sub);
		if (r != NULL && r->type == REDIS_REPLY_STRING && (code = code_in(r->str)) >= 0 &&
		    code < pool && texted[code] == 0)
			held++;
		freeReplyObject(r);
	}
	printf("# codes: %d texted (distinct), %d texted twice, %d held by unknown pushes, "
	    "%lld left in the pool, %d lost; %ld gateway 5xx answers, %ld sold_out\n",
	    distinct, twice, held, it_int(f->rc, "SCARD codes:first200"),
	    pool - distinct - held - (int)it_int(f->rc, "SCARD codes:first200"), fails,
	    (long)it_outcomes(f->rc, "sold_out"));
	fflush(stdout);

	assert_true(fails > 0);         /* the fault really happened */
	assert_int_equal(bad, 0);       /* every accepted text carries a pool code */
	assert_int_equal(twice, 0);
	assert_int_equal(t.dup_phones, 0);
	assert_int_equal(it_int(f->rc, "SCARD codes:first200"), 0);
	assert_int_equal(distinct + held, pool);
	assert_no_duplicate_and_all_final(&t);
	/* The other 100 (or more, if codes are held by unknown pushes) sold out. */
	assert_int_equal(t.sent + t.unknown + (long)it_outcomes(f->rc, "sold_out"), n);
	pt_tally_free(&t);
}

/*
 * Stopped at once (a second SIGTERM) while Redis is frozen, with outcomes, acks and
 * admits waiting on it: the notifier exits 0 without touching what it has freed (the
 * commands still out fail while their owners are alive: before, their callbacks ran
 * after deliver was freed and the notifier died of SIGSEGV). Then, Redis thawed and the notifier started again, the fan-out
 * ends with no phone texted twice: what was sent but not recorded ends unknown.
 */
static void
stop_now_with_redis_frozen_exits_cleanly_and_texts_nobody_twice(void **state)
{
	struct fx *f = *state;
	static const char *const gw_150ms[] = { "--latency-ms", "150", NULL };
	const char *conf = "timeout_ms = 1000\n[deliver]\nmax_in_flight = 64\n"
	    "resolve_after_s = 1\nclaim_idle_ms = 3000\n[redis]\ncommand_timeout_ms = 20000\n";
	const int n = 600;
	char dir[512], entry[64];
	struct gw_want some = { &f->gw, entry, 100 };
	struct pt_tally t;
	long long recorded;
	int status;

	/* This case's own Redis: it is frozen, and the lane's must not be. */
	redisFree(f->rc);
	it_path(dir, sizeof(dir), "redis-frozen", "");
	f->port = it_redis_start(&f->redis, dir, 0, 0);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	pt_import(f->port, n, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, gw_150ms), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "frozen-1", conf), 0);
	pt_publish(f->rc, it_deal("frozen-1", "laptop", 600), entry, sizeof(entry));

	/* Mid fan-out: Redis stops answering while answers keep coming from the gateway,
	 * so their outcomes go out to a Redis that will not answer them. */
	assert_true(it_wait(gw_reaches, &some, 30000));
	pt_signal(&f->redis, SIGSTOP);
	it_sleep_ms(400);
	pt_signal(&f->nt.proc, SIGTERM);
	it_sleep_ms(100);
	status = it_stop(&f->nt.proc, SIGTERM, 10000);
	printf("# stopped now with Redis frozen: status %d\n", status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	pt_signal(&f->redis, SIGCONT);
	recorded = it_shards_sum_key(f->rc, "XLEN %s", KEYS_PUSHES_LOG);
	printf("# %lld of %d outcomes recorded before the stop\n", recorded, n);
	assert_true(recorded < n);      /* the stop landed mid fan-out */
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "frozen-1", conf), 0);
	pt_wait_settled(f->rc, &f->gw, "frozen-1", entry, n, PT_SETTLE_MS);
	pt_tally(&t, f->rc, &f->gw, "frozen-1", entry, n, 0);
	pt_tally_print("stopped with Redis frozen", &t);
	assert_no_duplicate_and_all_final(&t);
	assert_int_equal(t.sent + t.unknown, n);
	pt_tally_free(&t);
}

struct sending_want {
	redisContext *rc;
	const char *deal;
	const char *mark;          /* "sending:<consumer>" */
	long n;
};

/* 1 once at least w->n pushes of the deal are marked w->mark. */
static int
sending_reaches(void *arg)
{
	struct sending_want *w = arg;
	long states, final, marked;

	pt_count_states(w->rc, w->deal, w->mark, &states, &final, &marked);
	return marked >= w->n;
}

/*
 * A notifier killed (-9) with its requests at the gateway, unanswered (gwsim holds
 * each 3 s; the message is in its list at once), then started again under the same
 * name: each push it had claimed is found "sending" by its next admit and recorded
 * unknown, never sent again. Its text is the job line's with the push's code put in,
 * so the resolver finds it in the gateway's list and settles it sent: every push
 * ends sent, each phone texted once.
 */
static void
killed_with_requests_out_its_unknown_pushes_resolve_as_sent(void **state)
{
	struct fx *f = *state;
	static const char *const gw_3s[] = { "--latency-ms", "3000", NULL };
	const char *conf = "timeout_ms = 10000\n[deliver]\nmax_in_flight = 16\n"
	    "resolve_after_s = 1\n";
	const int n = 40;
	char entry[64];
	struct sending_want out = { f->rc, "killed-1", "sending:killed-1", 16 };
	struct resolved_want all = { f->rc, "killed-1", n };
	long long unknown_at_restart;
	struct pt_tally t;

	pt_import(f->port, n, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, gw_3s), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "killed-1", conf),
	    0);
	pt_publish(f->rc, it_deal("killed-1", "laptop", 600), entry, sizeof(entry));
	assert_true(it_wait(sending_reaches, &out, 20000));
	it_sleep_ms(500);               /* the requests reach gwsim, unanswered */
	it_stop(&f->nt.proc, SIGKILL, 2000);
	/* The gateway quick again, for the resolver's lookups of its message list. */
	assert_int_equal(it_http_post(f->gw.port, "/_sim/faults", "{\"latency_ms\": 0}") /
	    100, 2);

	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "killed-1", conf),
	    0);
	pt_wait_settled(f->rc, &f->gw, "killed-1", entry, n, PT_SETTLE_MS);
	unknown_at_restart = it_outcomes(f->rc, "unknown");
	printf("# killed with requests out: %lld unknown after the restart\n",
	    unknown_at_restart);
	assert_true(unknown_at_restart >= 16);   /* the fault landed: they were out */
	/* The resolver finds each in gwsim's list by its text: sent, none unknown. */
	assert_true(it_wait(all_resolved, &all, 60000));
	pt_tally(&t, f->rc, &f->gw, "killed-1", entry, n, 0);
	pt_tally_print("killed with requests out", &t);
	assert_no_duplicate_and_all_final(&t);
	assert_int_equal(t.sent, n);
	assert_true(it_shards_stat(f->rc, "resolved:list") >= 16);
	pt_tally_free(&t);
}

/*
 * A push whose admit is lost before its claim (a failover to a replica that never got
 * the admit; here the fault point deliver.admit_lost deletes its state right before
 * the claim, on the same connection): send.lua answers "readmit" and the push is
 * admitted again and sent, once. Before, it was skipped: never texted, never final.
 */
static void
an_admit_lost_before_its_claim_is_admitted_again_not_dropped(void **state)
{
	struct fx *f = *state;
	const int n = 20;
	char entry[64];
	struct pt_tally t;

	pt_import(f->port, n, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_FAULTS", "deliver.admit_lost@1", 1);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "lost-1", NULL), 0);
	unsetenv("DP_FAULTS");
	pt_publish(f->rc, it_deal("lost-1", "laptop", 600), entry, sizeof(entry));
	pt_wait_settled(f->rc, &f->gw, "lost-1", entry, n, PT_SETTLE_MS);
	pt_tally(&t, f->rc, &f->gw, "lost-1", entry, n, 0);
	pt_tally_print("admit lost before its claim", &t);
	assert_int_equal(it_log_count(f->nt.proc.log, "event=claim_readmit", NULL, NULL), 1);
	assert_no_duplicate_and_all_final(&t);
	assert_int_equal(t.sent, n);
	assert_int_equal(t.accepted, n);
	pt_tally_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    gateway_slower_than_the_timeout_never_texts_a_phone_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    notifier_stalled_past_the_timeout_never_texts_a_phone_twice, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    pool_of_200_codes_under_5xx_texts_exactly_200_and_loses_none, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    stop_now_with_redis_frozen_exits_cleanly_and_texts_nobody_twice, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    killed_with_requests_out_its_unknown_pushes_resolve_as_sent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    an_admit_lost_before_its_claim_is_admitted_again_not_dropped, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("promises", tests, NULL, NULL);
}
