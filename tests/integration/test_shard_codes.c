/*
 * test_shard_codes.c: a "first N" code pool shared by 4 shards (docs/sharding.md
 * 4c; section 6, step 4). Each shard's pushes take codes from the shard's stash,
 * which reservations fill from the pool and give-backs empty into it; the notifier
 * dies as under kill -9 right after each step's answer (fault points
 * codes.<step>.kill) and a second one under the same consumer name finishes.
 * Counted at the gateway simulator and in Redis: no code in two texts, none in a
 * text and the pool, none lost (texted + left in the pool = the pool's size), no
 * phone texted twice, and the codes of the pushes that failed back in the pool.
 * Then `dealpushctl migrate --to-single` with codes held outside any push (a
 * stash, a reservation not taken, a give-back not applied) puts them back, and
 * drops a quota's. Last, a quota's two pool-side scripts (4c "The quota").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "keys.h"
#include "test_promises.h"
#include "itshards.h"

#define N 80                    /* subscribers s-0 .. s-79 */
#define POOL 100                /* codes SC-000 .. SC-099 */
#define BAD 10                  /* s-0 .. s-9: the gateway refuses their number */
#define EXTRA "[ingest]\nplan_chunk = 10\njob_size = 5\n" \
	"[deliver]\nmax_in_flight = 8\nresolve_after_s = 1\n"
/* Two notifiers: jobs of 2, read one at a time, so that both take jobs of every
 * shard while the fan-out lasts. */
#define EXTRA_TWO "[ingest]\nplan_chunk = 10\njob_size = 2\n" \
	"[deliver]\nmax_in_flight = 8\nresolve_after_s = 1\nbatch = 1\n"
#define SETTLE_MS 60000
/* Codes of the deal's pool the shards hold outside any push. */
#define HELD(rc) it_shards_codes_held((rc), "sc", "codes:sc")

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_notifier nt2;         /* a second notifier, when a test starts one */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	/* Whatever the run chose: this promise is about the sharded layout. */
	setenv("DP_SHARDS", "4", 1);
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
	int rv = it_stop_clean(&f->nt.proc) < 0 ? -1 : 0;

	if (it_stop_clean(&f->nt2.proc) < 0)
		rv = -1;
	it_stop(&f->gw.proc, SIGTERM, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

/* The code SC-nnn in a text, or -1. */
static int
code_in(const char *body)
{
	const char *p = strstr(body, "SC-");
	int v;

	return p != NULL && sscanf(p + 3, "%3d", &v) == 1 && v >= 0 && v < POOL ? v : -1;
}

struct left {
	redisContext *rc;
	long long want;
};

static int
pool_is(void *arg)
{
	struct left *l = arg;

	return it_int(l->rc, "SCARD codes:sc") == l->want && HELD(l->rc) == 0;
}

/*
 * Publishes the deal (pool of POOL codes, N subscribers, BAD of them refused by the
 * gateway for good) to a notifier started with DP_FAULTS=faults (NULL: none), which
 * then dies with 137 (or runs on, with none); a second notifier under the same name
 * finishes. Checks every promise of the pool; returns the "event=codes_resume" lines
 * of the second notifier's log.
 */
static long
run_pool(struct fx *f, const char *faults, int two)
{
	static const char *flags[2 * BAD + 1];
	static char answers[BAD][48];
	char deal[512], entry[64];
	int texted[POOL] = { 0 }, i, code, distinct = 0, twice = 0, bad = 0;
	struct left l = { f->rc, 0 };
	struct pt_tally t;
	cJSON *lines, *o;
	long resumed;

	for (i = 0; i < BAD; i++) {
		snprintf(answers[i], sizeof(answers[i]), "+1512555%04d=21211",
		    PT_PHONE_BASE + i);
		flags[2 * i] = "--answer";
		flags[2 * i + 1] = answers[i];
	}
	flags[2 * BAD] = NULL;
	pt_import(f->port, N, "laptop");
	for (i = 0; i < POOL; i++)
		freeReplyObject(redisCommand(f->rc, "SADD codes:sc SC-%03d", i));
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	if (faults != NULL)
		setenv("DP_FAULTS", faults, 1);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-codes",
	    two ? EXTRA_TWO : EXTRA), 0);
	unsetenv("DP_FAULTS");
	/* Two notifiers read every shard's jobs in the same groups: each walks every
	 * shard's codes, and neither may give back a stash the other is using. */
	if (two)
		assert_int_equal(it_notifier_start(&f->nt2, f->port, f->gw.port, "it-codes-2",
		    EXTRA_TWO), 0);
	snprintf(deal, sizeof(deal), "{\"id\": \"sc\", \"title\": \"First 100\", "
	    "\"category\": \"laptop\", \"url\": \"https://x.example/sc\", "
	    "\"code_pool\": \"codes:sc\", \"expires_at\": %lld}", it_now() + 600);
	pt_publish(f->rc, deal, entry, sizeof(entry));
	if (faults != NULL) {
		int status = it_stop(&f->nt.proc, 0, 30000);

		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 137);
		printf("# killed at %s: %lld codes in the pool, %lld held by shards\n", faults,
		    it_int(f->rc, "SCARD codes:sc"), HELD(f->rc));
		assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-codes",
		    EXTRA), 0);
	}
	assert_true(pt_wait_settled(f->rc, &f->gw, "sc", entry, N, SETTLE_MS));
	/* Every code nobody texted comes back once the shards are idle, and a
	 * give-back a crash cut short is finished. */
	l.want = POOL - (N - BAD);
	assert_true(it_wait(pool_is, &l, 20000));

	pt_tally(&t, f->rc, &f->gw, "sc", entry, N, 0);
	pt_tally_print("shared pool", &t);
	lines = pt_gw_lines(&f->gw, entry);
	cJSON_ArrayForEach(o, lines) {
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
		const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");

		if (st->valueint / 100 != 2)
			continue;
		if (!cJSON_IsString(body) || (code = code_in(body->valuestring)) < 0) {
			bad++;
			continue;
		}
		if (texted[code]++ == 0)
			distinct++;
		else
			twice++;
		assert_int_equal(it_int(f->rc, "SISMEMBER codes:sc SC-%03d", code), 0);
	}
	cJSON_Delete(lines);
	printf("# codes: %d texted, %d twice, %lld in the pool, %lld held by shards\n",
	    distinct, twice, it_int(f->rc, "SCARD codes:sc"), HELD(f->rc));
	assert_int_equal(bad, 0);
	assert_int_equal(twice, 0);
	assert_int_equal(t.dup_phones, 0);
	assert_int_equal(t.open, 0);
	assert_int_equal(t.sent, N - BAD);
	assert_int_equal(distinct, N - BAD);
	assert_int_equal(distinct + it_int(f->rc, "SCARD codes:sc"), POOL);
	assert_int_equal(HELD(f->rc), 0);
	pt_tally_free(&t);
	resumed = it_log_count(f->nt.proc.log, "event=codes_resume", NULL, NULL);
	return resumed;
}

/* No fault: the shards reserve what their jobs need; the failed pushes' codes and
 * those never reserved are in the pool at the end. */
static void
four_shards_share_a_pool_without_a_code_twice_or_lost(void **state)
{
	struct fx *f = *state;

	(void)run_pool(f, NULL, 0);
	assert_true(it_log_count(f->nt.proc.log, "event=codes_reserved", NULL, NULL) > 0);
}

/* Two notifiers share the jobs of every shard, and so the stashes: each reserves for
 * its own jobs and walks every shard's codes; a stash one of them uses is not given
 * back by the other (code_give.lua answers busy), and at the end every code is
 * texted once or back in the pool. */
static void
two_notifiers_share_a_pool_without_a_code_twice_or_lost(void **state)
{
	struct fx *f = *state;

	(void)run_pool(f, NULL, 1);
	/* Both took part: each reserved for jobs of its own. */
	assert_true(it_log_count(f->nt.proc.log, "event=codes_reserved", NULL, NULL) > 0);
	assert_true(it_log_count(f->nt2.proc.log, "event=codes_reserved", NULL, NULL) > 0);
}

/* The pool answered a reservation, the shard never took it: the job is read again,
 * admit answers the same open intent, and the pool answers the same codes. */
static void
killed_after_a_reservation_the_same_codes_are_taken(void **state)
{
	(void)run_pool(*state, "codes.reserve.kill@1", 0);
}

/* The stash took the codes, the admit never ran again: the job is read again and
 * finds them in the stash. */
static void
killed_after_a_take_the_stash_serves_the_job(void **state)
{
	(void)run_pool(*state, "codes.take.kill@1", 0);
}

/* A give-back moved the stash aside, the pool never got it: the walk finds it in
 * codestate and finishes it. */
static void
killed_after_a_give_back_started_it_is_finished(void **state)
{
	(void)run_pool(*state, "codes.out.kill@1", 0);
}

/* The pool applied a give-back, the shard never heard: the walk runs it again and
 * the pool refuses the replay (no code added twice to a set would show, so the
 * count of codes is the check: texted + pool = POOL). */
static void
killed_after_the_pool_took_codes_back_nothing_is_doubled(void **state)
{
	(void)run_pool(*state, "codes.back.kill@1", 0);
}

/* dealpushctl migrate args... Exit status. */
static int
migrate(struct fx *f, const char *a1)
{
	char bin[512], addr[64], out[4096];
	const char *argv[] = { bin, "--redis", addr, "migrate", a1, NULL };
	int rc;

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	rc = it_run(argv, out, sizeof(out));
	fprintf(stderr, "# migrate %s: exit %d: %s", a1, rc, out);
	return rc;
}

static void
cmd(redisContext *rc, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

/* Codes out of the pool but in no push, as a crash leaves them, go back when the
 * deployment moves to one Redis; a code held by a push, or a give-back the pool
 * applied already, does not. A quota's tokens go nowhere and its keys are gone. */
static void
migrating_to_one_redis_returns_every_code_no_push_holds(void **state)
{
	struct fx *f = *state;
	char k[KEYS_MAX];
	int i;
	static const char *const back[] = { "M-00", "M-01", "M-02", "M-03", "M-04",
	    "M-10", "M-11", "M-12", "M-20", "M-30", "M-31", "M-60" };

	for (i = 0; i < 5; i++)
		cmd(f->rc, "SADD codes:m M-%02d", i);
	/* Shard 0: reservation 2 answered (M-10..12) and not taken; give-back 1 (M-20,
	 * and M-21, which the pool's out names as shard 1's) not applied; a stash. */
	keys_codestate(0, k, sizeof(k));
	cmd(f->rc, "HSET %s dm\tcodes:m %s", k, "2 1 2 3 1");
	cmd(f->rc, "HSET {codes:m}:res dm\t0\t2 [\"M-10\",\"M-11\",\"M-12\"]");
	for (i = 10; i <= 12; i++)
		cmd(f->rc, "HSET {codes:m}:out M-%02d dm\t0\t2", i);
	keys_codeback(0, "dm", "codes:m", k, sizeof(k));
	cmd(f->rc, "SADD %s M-20 M-21", k);
	cmd(f->rc, "HSET {codes:m}:out M-20 dm\t0\t1");
	cmd(f->rc, "HSET {codes:m}:out M-21 dm\t1\t5");
	keys_codestash(0, "dm", "codes:m", k, sizeof(k));
	cmd(f->rc, "SADD %s M-30 M-31", k);
	/* Shard 1: give-back 1 (M-40) applied by the pool already. */
	keys_codestate(1, k, sizeof(k));
	cmd(f->rc, "HSET %s dm\tcodes:m %s", k, "1 1 0 0 1");
	cmd(f->rc, "HSET {codes:m}:marks gb\tdm\t1 1");
	keys_codeback(1, "dm", "codes:m", k, sizeof(k));
	cmd(f->rc, "SADD %s M-40", k);
	/* Shard 3: a stash no codestate line names (a code held from before the layout
	 * was sharded, given back by its push). */
	keys_codestash(3, "dx", "codes:m", k, sizeof(k));
	cmd(f->rc, "SADD %s M-60", k);
	/* Shard 2: a push holds M-50. */
	keys_per(2, KEYS_CODE, "dm", k, sizeof(k));
	cmd(f->rc, "HSET %s s-2:sms M-50", k);
	cmd(f->rc, "HSET {codes:m}:out M-50 dm\t2\t1");
	/* A quota (docs/sharding.md 4c) on shard 0: a reservation not taken, a
	 * give-back in flight, a stash, the counter; a stash no line names on shard 3.
	 * The single layout has no quota: its tokens go nowhere, and its keys go. */
	keys_codestate(0, k, sizeof(k));
	cmd(f->rc, "HSET %s dq\tquota:30:dq %s", k, "2 1 2 2 1");
	cmd(f->rc, "HSET {quota:dq}:res dq\t0\t2 [\"*0.2.1\",\"*0.2.2\"]");
	cmd(f->rc, "HSET {quota:dq}:out *0.2.1 dq\t0\t2");
	cmd(f->rc, "HSET {quota:dq}:marks res\tdq\t0 2");
	cmd(f->rc, "SET quota:dq 10");
	keys_codeback(0, "dq", "quota:30:dq", k, sizeof(k));
	cmd(f->rc, "SADD %s *0.1.1", k);
	keys_codestash(0, "dq", "quota:30:dq", k, sizeof(k));
	cmd(f->rc, "SADD %s *0.1.2", k);
	keys_codestash(3, "dy", "quota:30:dy", k, sizeof(k));
	cmd(f->rc, "SADD %s *3.1.1", k);

	assert_int_equal(migrate(f, "--to-single"), 0);
	{
		redisReply *r = redisCommand(f->rc, "KEYS *quota*");

		assert_non_null(r);
		for (i = 0; i < (int)r->elements; i++)
			fprintf(stderr, "# left: %s\n", r->element[i]->str);
		assert_int_equal(r->elements, 0);
		freeReplyObject(r);
	}
	assert_int_equal(it_int(f->rc, "SCARD codes:m"), (long long)(sizeof(back) /
	    sizeof(back[0])));
	for (i = 0; i < (int)(sizeof(back) / sizeof(back[0])); i++)
		assert_int_equal(it_int(f->rc, "SISMEMBER codes:m %s", back[i]), 1);
	{
		redisReply *r = redisCommand(f->rc, "HGET code:dm s-2:sms");

		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_STRING);
		assert_string_equal(r->str, "M-50");
		freeReplyObject(r);
	}
	assert_int_equal(it_int(f->rc, "EXISTS {codes:m}:res {codes:m}:out "
	    "{codes:m}:marks codestate"), 0);
	{
		redisReply *r = redisCommand(f->rc, "KEYS *code*");

		assert_non_null(r);
		for (i = 0; i < (int)r->elements; i++)
			fprintf(stderr, "# left: %s\n", r->element[i]->str);
		assert_int_equal(r->elements, 2);   /* codes:m and code:dm */
		freeReplyObject(r);
	}
}

/* A quota's reply: its verdict and tokens joined by spaces into buf. */
static void
quota_reply(redisReply *r, char *buf, size_t size)
{
	size_t i, o = 0;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	buf[0] = '\0';
	for (i = 0; i < r->elements; i++) {
		assert_int_equal(r->element[i]->type, REDIS_REPLY_STRING);
		o += (size_t)snprintf(buf + o, o < size ? size - o : 0, "%s%s",
		    i ? " " : "", r->element[i]->str);
	}
	assert_true(o < size);
	freeReplyObject(r);
}

/* code_reserve.lua on deal q's quota as id (the quota's name): reservation n of
 * shard, c wanted, L = l. */
static void
quota_reserve_as(redisContext *rc, const char *id, const char *shard, const char *n,
    const char *c, const char *l, char *buf, size_t size)
{
	const char *keys[] = { "quota:q", "{quota:q}:res", "{quota:q}:marks",
		"{quota:q}:out", NULL };
	const char *args[] = { id, shard, n, c, "3600", l, NULL };

	quota_reply(it_eval(rc, "code_reserve", keys, args), buf, size);
}

static void
quota_reserve(redisContext *rc, const char *shard, const char *n, const char *c,
    const char *l, char *buf, size_t size)
{
	quota_reserve_as(rc, "q", shard, n, c, l, buf, size);
}

/* code_giveback.lua of give-back g of shard with up to three tokens: the count. */
static long long
quota_giveback(redisContext *rc, const char *shard, const char *g, const char *t1,
    const char *t2, const char *t3)
{
	const char *keys[] = { "quota:q", "{quota:q}:marks", "{quota:q}:out", NULL };
	const char *args[] = { "q", shard, g, "3600", t1, t2, t3, NULL };
	redisReply *r = it_eval(rc, "code_giveback", keys, args);
	long long n;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	n = r->integer;
	freeReplyObject(r);
	return n;
}

static long long
quota_left(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "GET quota:q");
	long long n;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	n = strtoll(r->str, NULL, 10);
	freeReplyObject(r);
	return n;
}

/* A quota (docs/sharding.md 4c "The quota") through its two pool-side scripts: the
 * first reservation sets the counter to its L (a later L is ignored), each takes
 * min(c, left) as distinct tokens, a replay answers the same tokens and takes
 * nothing more, and a give-back counts back only the tokens out names as the
 * shard's, once: never one of another shard's, an unknown one, or one twice. */
static void
a_quota_hands_out_each_unit_once(void **state)
{
	struct fx *f = *state;
	char a[256];

	quota_reserve(f->rc, "1", "1", "4", "10", a, sizeof(a));
	assert_string_equal(a, "ok *1.10.1.1 *1.10.1.2 *1.10.1.3 *1.10.1.4");
	assert_int_equal(quota_left(f->rc), 6);
	quota_reserve(f->rc, "1", "1", "4", "10", a, sizeof(a));
	assert_string_equal(a, "ok *1.10.1.1 *1.10.1.2 *1.10.1.3 *1.10.1.4");
	assert_int_equal(quota_left(f->rc), 6);
	quota_reserve(f->rc, "2", "1", "8", "99", a, sizeof(a));
	assert_string_equal(a, "short *2.99.1.1 *2.99.1.2 *2.99.1.3 *2.99.1.4 *2.99.1.5 "
	    "*2.99.1.6");
	assert_int_equal(quota_left(f->rc), 0);
	quota_reserve(f->rc, "1", "2", "1", "10", a, sizeof(a));
	assert_string_equal(a, "short");
	assert_int_equal(quota_left(f->rc), 0);
	assert_int_equal(it_int(f->rc, "HLEN {quota:q}:out"), 10);
	/* Shard 1 gives back two of its own, one of shard 2's and one never made. */
	assert_int_equal(quota_giveback(f->rc, "1", "1", "*1.10.1.1", "*2.99.1.1",
	    "*9.9.9.9"), 1);
	assert_int_equal(quota_giveback(f->rc, "1", "1", "*1.10.1.2", "*1.10.1.3",
	    "*1.10.1.4"), 0);
	assert_int_equal(quota_giveback(f->rc, "1", "2", "*1.10.1.1", "*1.10.1.2",
	    "*1.10.1.2"), 1);
	assert_int_equal(quota_left(f->rc), 2);
	assert_int_equal(it_int(f->rc, "HLEN {quota:q}:out"), 8);
	/* The next reservation makes new tokens, never one handed out before. */
	quota_reserve(f->rc, "1", "3", "5", "10", a, sizeof(a));
	assert_string_equal(a, "short *1.10.3.1 *1.10.3.2");
	assert_int_equal(quota_left(f->rc), 0);
	/* Two names of the deal (L 10, then 20: a new quantity) at the same number on
	 * one shard: each takes units of its own, with tokens of its own, never the
	 * other's answer again (a replay would hand the same tokens to two stashes). */
	cmd(f->rc, "SET quota:q 4");
	quota_reserve_as(f->rc, "quota:10:q", "1", "7", "2", "10", a, sizeof(a));
	assert_string_equal(a, "ok *1.10.7.1 *1.10.7.2");
	quota_reserve_as(f->rc, "quota:20:q", "1", "7", "2", "20", a, sizeof(a));
	assert_string_equal(a, "ok *1.20.7.1 *1.20.7.2");
	assert_int_equal(quota_left(f->rc), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    four_shards_share_a_pool_without_a_code_twice_or_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    two_notifiers_share_a_pool_without_a_code_twice_or_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    killed_after_a_reservation_the_same_codes_are_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    killed_after_a_take_the_stash_serves_the_job, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    killed_after_a_give_back_started_it_is_finished, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    killed_after_the_pool_took_codes_back_nothing_is_doubled, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    migrating_to_one_redis_returns_every_code_no_push_holds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(a_quota_hands_out_each_unit_once, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("shard_codes", tests, NULL, NULL);
}
