/*
 * test_chaos.c: the delivery promises under repeated crashes, end to end: the notifier
 * killed with SIGKILL at random points of a 5,000-push fan-out ten times, redis-server
 * killed and restarted (AOF on) mid fan-out, two notifiers killed in turn.
 *
 * After each run, whatever the crashes: no number got two texts (gwsim's log), every
 * subscriber has exactly one final outcome in pushes:log ("sent" or "unknown"), every
 * "sent" really reached the gateway and everything that reached it is "sent" or
 * "unknown", and nothing is left pending in either consumer group.
 *
 * The kill points come from a seeded PRNG. The seed is printed as a TAP comment;
 * CHAOS_SEED=<n> runs the same points again.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define DONE_WAIT_MS 60000
#define PHONE_BASE 1000            /* subscriber s-i has +1512555<1000+i> */
#define MAX_IN_FLIGHT 32
#define NOTIFIERS 2

static uint64_t chaos_seed;

struct fx {
	redisContext *rc;
	int port;                  /* the redis the notifiers use */
	struct it_gwsim gw;
	struct it_notifier nt[NOTIFIERS];
	struct it_proc redis;      /* a private redis, for the restart test */
	uint64_t rng;
};

/* ---- seeded randomness ---- */

static uint64_t
splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static long
rand_between(struct fx *f, long lo, long hi)
{
	return lo + (long)(splitmix(&f->rng) % (uint64_t)(hi - lo + 1));
}

static int
group_setup(void **state)
{
	const char *env = getenv("CHAOS_SEED");
	char *end = NULL;
	struct timespec ts;

	(void)state;
	if (env != NULL && *env != '\0') {
		errno = 0;
		chaos_seed = (uint64_t)strtoull(env, &end, 10);
		if (errno != 0 || end == env || *end != '\0') {
			fprintf(stderr, "test_chaos: bad CHAOS_SEED '%s'\n", env);
			return -1;
		}
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		chaos_seed = ((uint64_t)ts.tv_sec * 1000003ULL) ^ (uint64_t)ts.tv_nsec ^
		    ((uint64_t)getpid() << 20);
		chaos_seed %= 1000000000000ULL;
	}
	printf("# chaos seed=%llu (CHAOS_SEED=%llu reproduces the kill points)\n",
	    (unsigned long long)chaos_seed, (unsigned long long)chaos_seed);
	fflush(stdout);
	return 0;
}

/* Each test has its own stream, so that one can be rerun alone with the same seed. */
static void
seed_test(struct fx *f, const char *name)
{
	uint64_t h = chaos_seed;
	const char *p;

	for (p = name; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	f->rng = h;
}

/* ---- fixture ---- */

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
	int i, rv = 0;

	/* Every notifier still running must stop cleanly (under the sanitizer build
	 * that also means no leak was found). */
	for (i = 0; i < NOTIFIERS; i++)
		if (it_stop_clean(&f->nt[i].proc) < 0)
			rv = -1;
	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

/* ---- helpers ---- */

/* Entries of every shard's pushes:log ("pushes:log" without a layout). */
static long long
xlen_log(redisContext *rc)
{
	return it_shards_sum_key(rc, "XLEN %s", KEYS_PUSHES_LOG);
}

struct log_want {
	redisContext *rc;
	long long n;
};

static int
log_reaches(void *arg)
{
	struct log_want *w = arg;

	return xlen_log(w->rc) >= w->n;
}

static int
nothing_pending(void *arg)
{
	redisContext *rc = arg;

	return it_shards_jobs_pending(rc, NULL) == 0 && it_deals_pending(rc) == 0;
}

/* Lines gwsim has logged so far (one per request), without parsing them. */
static long
gw_lines(const struct it_gwsim *g)
{
	FILE *fp = fopen(g->logfile, "r");
	char buf[65536];
	size_t n, i;
	long lines = 0;

	if (fp == NULL)
		return 0;
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		for (i = 0; i < n; i++)
			lines += buf[i] == '\n';
	fclose(fp);
	return lines;
}

struct gw_want {
	const struct it_gwsim *g;
	long n;
};

static int
gw_reaches(void *arg)
{
	struct gw_want *w = arg;

	return gw_lines(w->g) >= w->n;
}

/* Index of subscriber "s-<i>" (0 <= i < n), or -1. */
static int
sub_index(const char *s, int n)
{
	char *end;
	long i;

	if (strncmp(s, "s-", 2) != 0)
		return -1;
	errno = 0;
	i = strtol(s + 2, &end, 10);
	if (errno != 0 || end == s + 2 || *end != '\0' || i < 0 || i >= n)
		return -1;
	return (int)i;
}

/* Outcome codes per subscriber. */
enum { OC_NONE = 0, OC_SENT, OC_UNKNOWN, OC_OTHER };

struct tally {
	int n;
	int *got201;          /* 201 answers per subscriber's number */
	int *nlog;            /* pushes:log entries per subscriber */
	int *oc;              /* the last logged outcome per subscriber */
	long gw_201, gw_other, gw_stranger, distinct, dup_numbers;
	long sent, unknown, other, strays, log_total;
	long sent_not_at_gw;  /* logged sent, but gwsim never answered 201 */
	long at_gw_not_logged;/* 201 at gwsim, but neither sent nor unknown */
	long missing, doubled, state_mismatch;
	char first_other[64];
};

static void
tally_free(struct tally *t)
{
	free(t->got201);
	free(t->nlog);
	free(t->oc);
}

/* Reads gwsim's JSON-lines log once: 201s per number. */
static void
tally_gateway(struct tally *t, const struct it_gwsim *g)
{
	FILE *fp = fopen(g->logfile, "r");
	char *line = NULL;
	size_t cap = 0;
	int i;

	assert_non_null(fp);
	while (getline(&line, &cap, fp) > 0) {
		cJSON *o = cJSON_Parse(line), *to, *st;
		long num;
		char *end;

		assert_non_null(o);
		to = cJSON_GetObjectItem(o, "to");
		st = cJSON_GetObjectItem(o, "status");
		if (!cJSON_IsNumber(st) || st->valueint != 201) {
			t->gw_other++;
			cJSON_Delete(o);
			continue;
		}
		t->gw_201++;
		num = -1;
		if (cJSON_IsString(to) && strncmp(to->valuestring, "+1512555", 8) == 0) {
			num = strtol(to->valuestring + 8, &end, 10);
			if (*end != '\0')
				num = -1;
		}
		if (num >= PHONE_BASE && num < PHONE_BASE + t->n)
			t->got201[num - PHONE_BASE]++;
		else
			t->gw_stranger++;
		cJSON_Delete(o);
	}
	free(line);
	fclose(fp);
	for (i = 0; i < t->n; i++) {
		if (t->got201[i] > 0)
			t->distinct++;
		if (t->got201[i] > 1) {
			if (t->dup_numbers == 0)
				fprintf(stderr, "# duplicate: +1512555%04d got %d texts\n",
				    PHONE_BASE + i, t->got201[i]);
			t->dup_numbers++;
		}
	}
}

/* One shard's pushes:log entries (reply r) into t: outcomes per subscriber. */
static void
tally_entries(struct tally *t, const redisReply *r)
{
	size_t i, j;

	t->log_total += (long)r->elements;
	for (i = 0; i < r->elements; i++) {
		redisReply *fl = r->element[i]->element[1];
		const char *sub = NULL, *outcome = NULL;
		int idx, oc;

		for (j = 0; j + 1 < fl->elements; j += 2) {
			if (strcmp(fl->element[j]->str, "sub") == 0)
				sub = fl->element[j + 1]->str;
			else if (strcmp(fl->element[j]->str, "outcome") == 0)
				outcome = fl->element[j + 1]->str;
		}
		if (sub == NULL || outcome == NULL || (idx = sub_index(sub, t->n)) < 0) {
			t->strays++;
			continue;
		}
		if (strcmp(outcome, "sent") == 0) {
			oc = OC_SENT;
			t->sent++;
		} else if (strcmp(outcome, "unknown") == 0) {
			oc = OC_UNKNOWN;
			t->unknown++;
		} else {
			oc = OC_OTHER;
			if (t->other++ == 0)
				snprintf(t->first_other, sizeof(t->first_other), "%s:%s", sub,
				    outcome);
		}
		if (++t->nlog[idx] == 2)
			fprintf(stderr, "# two outcomes for %s (last %s)\n", sub, outcome);
		t->oc[idx] = oc;
	}
}

/* One shard's push:<deal> states (reply h) against the log's outcomes; returns how
 * many pushes it holds. */
static size_t
tally_states(struct tally *t, const redisReply *h)
{
	size_t i;

	for (i = 0; i + 1 < h->elements; i += 2) {
		char sub[64], *colon;
		const char *st = h->element[i + 1]->str;
		int idx, want;

		snprintf(sub, sizeof(sub), "%s", h->element[i]->str);
		if ((colon = strchr(sub, ':')) != NULL)
			*colon = '\0';
		if ((idx = sub_index(sub, t->n)) < 0) {
			t->state_mismatch++;
			continue;
		}
		want = strcmp(st, "sent") == 0 ? OC_SENT :
		    strcmp(st, "unknown") == 0 ? OC_UNKNOWN : OC_OTHER;
		if (want != t->oc[idx]) {
			if (t->state_mismatch == 0)
				fprintf(stderr, "# state of %s is %s\n", h->element[i]->str, st);
			t->state_mismatch++;
		}
	}
	return h->elements / 2;
}

/* Reads every shard's pushes:log once: outcomes per subscriber; then every shard's
 * push:<deal> states. */
static void
tally_log(struct tally *t, redisContext *rc, const char *deal)
{
	char key[KEYS_MAX];
	size_t states = 0;
	uint32_t s;
	int k;

	t->log_total = 0;
	for (s = 0; s < keys_shards(); s++) {
		redisReply *r;

		keys_shard_key(s, KEYS_PUSHES_LOG, key, sizeof(key));
		r = redisCommand(rc, "XRANGE %s - +", key);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		tally_entries(t, r);
		freeReplyObject(r);
	}
	for (k = 0; k < t->n; k++) {
		if (t->nlog[k] == 0)
			t->missing++;
		else if (t->nlog[k] > 1)
			t->doubled++;
		if (t->oc[k] == OC_SENT && t->got201[k] == 0)
			t->sent_not_at_gw++;
		if (t->got201[k] > 0 && t->oc[k] != OC_SENT && t->oc[k] != OC_UNKNOWN)
			t->at_gw_not_logged++;
	}
	/* The per-push states agree with the log. */
	for (s = 0; s < keys_shards(); s++) {
		redisReply *h;

		keys_per(s, KEYS_PUSH, deal, key, sizeof(key));
		h = redisCommand(rc, "HGETALL %s", key);
		assert_non_null(h);
		assert_int_equal(h->type, REDIS_REPLY_ARRAY);
		states += tally_states(t, h);
		freeReplyObject(h);
	}
	if (states != (size_t)t->n)
		t->state_mismatch++;
}

static void
tally_print(const char *name, const struct tally *t)
{
	printf("# %s: log=%ld sent=%ld unknown=%ld other=%ld missing=%ld doubled=%ld "
	    "gw_201=%ld distinct=%ld dup_numbers=%ld gw_non_201=%ld\n", name, t->log_total,
	    t->sent, t->unknown, t->other, t->missing, t->doubled, t->gw_201, t->distinct,
	    t->dup_numbers, t->gw_other);
	if (t->other > 0)
		printf("# %s: first unexpected outcome %s\n", name, t->first_other);
	fflush(stdout);
}

/*
 * Waits for the fan-out to settle, then checks every promise: no duplicate text,
 * exactly one final outcome (sent or unknown) per subscriber, what reached the gateway
 * agrees with the log, nothing pending, the deal planned and acked. Returns unknown.
 */
static long
check_invariants(struct fx *f, const char *name, const char *deal, int n)
{
	struct log_want all = { f->rc, n };
	struct tally t;
	long long log_now;

	memset(&t, 0, sizeof(t));
	t.n = n;
	t.got201 = calloc((size_t)n, sizeof(int));
	t.nlog = calloc((size_t)n, sizeof(int));
	t.oc = calloc((size_t)n, sizeof(int));
	assert_non_null(t.got201);
	assert_non_null(t.nlog);
	assert_non_null(t.oc);

	if (!it_wait(log_reaches, &all, DONE_WAIT_MS))
		printf("# %s: pushes:log has only %lld of %d after %d s\n", name,
		    xlen_log(f->rc), n, DONE_WAIT_MS / 1000);
	/* Acks follow the last records; anything still open gets a moment to show. */
	it_wait(nothing_pending, f->rc, 5000);
	it_sleep_ms(500);
	log_now = xlen_log(f->rc);

	tally_gateway(&t, &f->gw);
	tally_log(&t, f->rc, deal);
	tally_print(name, &t);

	/* No number got two texts, and nobody outside the list got one. */
	assert_int_equal(t.dup_numbers, 0);
	assert_int_equal(t.gw_stranger, 0);
	/* Each subscriber exactly one final outcome, sent or unknown. */
	assert_int_equal(t.strays, 0);
	assert_int_equal(t.missing, 0);
	assert_int_equal(t.doubled, 0);
	assert_int_equal(t.other, 0);
	assert_int_equal(log_now, n);
	assert_int_equal(t.sent + t.unknown, n);
	/* "sent" certainly arrived; "unknown" may or may not have. */
	assert_int_equal(t.sent_not_at_gw, 0);
	assert_int_equal(t.at_gw_not_logged, 0);
	assert_true(t.sent <= t.distinct && t.distinct <= t.sent + t.unknown);
	assert_int_equal(t.state_mismatch, 0);
	/* Nothing pending in either group; the deal planned and acked. */
	assert_int_equal(it_shards_jobs_pending(f->rc, NULL), 0);
	assert_int_equal(it_deals_pending(f->rc), 0);
	assert_int_equal(it_deal_copies(f->rc, deal, "planned"), (int)keys_shards());
	tally_free(&t);
	return t.unknown;
}

/* The gateway's answer time bounds the fan-out's speed (MAX_IN_FLIGHT per latency
 * per notifier), so that every kill lands inside the fan-out on any machine: ten
 * waits of at most 600 ms at 32 / 50 ms stay under 4,000 of the 5,000 pushes. */
static const char *const gw_2ms[] = { "--latency-ms", "2", NULL };
static const char *const gw_50ms[] = { "--latency-ms", "50", NULL };
static const char *const gw_100ms[] = { "--latency-ms", "100", NULL };

static void
start_notifier(struct fx *f, int k, const char *consumer, const char *extra)
{
	assert_int_equal(it_notifier_start(&f->nt[k], f->port, f->gw.port, consumer,
	    extra), 0);
}

/* SIGKILL; the status says it really was the signal that ended it. */
static void
kill9(struct it_proc *p)
{
	int status = it_stop(p, SIGKILL, 2000);

	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* ---- tests ---- */

static void
sigkill_at_random_points_during_a_5000_push_fanout_ten_times(void **state)
{
	struct fx *f = *state;
	const int n = 5000, kills = 10;
	static const char extra[] = "[deliver]\nmax_in_flight = 32\n";
	long long at[10];
	long waits[10];
	int i, mid = 0;
	long unknown;

	seed_test(f, __func__);
	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, gw_50ms), 0);
	start_notifier(f, 0, "chaos-1", extra);
	assert_int_equal(it_publish(f->rc, it_deal("chaos-1", "laptop", 3600)), 0);
	for (i = 0; i < kills; i++) {
		waits[i] = rand_between(f, 100, 600);
		it_sleep_ms(waits[i]);
		at[i] = xlen_log(f->rc);
		kill9(&f->nt[0].proc);
		if (at[i] < n)
			mid++;
		start_notifier(f, 0, "chaos-1", extra);
	}
	printf("# kills after ms:");
	for (i = 0; i < kills; i++)
		printf(" %ld(log=%lld)", waits[i], at[i]);
	printf("; %d of %d mid fan-out\n", mid, kills);
	fflush(stdout);
	unknown = check_invariants(f, "sigkill x10", "chaos-1", n);
	/* Only requests truly in flight at a kill become unknown. */
	assert_true(unknown <= (long)kills * MAX_IN_FLIGHT);
	/* Every kill landed inside the fan-out (else this proved little). */
	assert_int_equal(mid, kills);
}

static void
redis_killed_and_restarted_with_aof_mid_fanout_loses_nothing(void **state)
{
	struct fx *f = *state;
	const int n = 2000;
	static const char extra[] = "[deliver]\nmax_in_flight = 32\n";
	char dir[512];
	struct gw_want some = { &f->gw, n * 3 / 10 };
	long long at_kill;
	int port, status;
	pid_t w;

	it_path(dir, sizeof(dir), "redis-aof", "");
	port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(port > 0);
	redisFree(f->rc);
	f->port = port;
	f->rc = it_redis_connect(port);
	it_import_audience(port, n, PHONE_BASE, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, gw_2ms), 0);
	start_notifier(f, 0, "chaos-r", extra);
	assert_int_equal(it_publish(f->rc, it_deal("chaos-r", "laptop", 3600)), 0);

	assert_true(it_wait(gw_reaches, &some, 30000));
	at_kill = xlen_log(f->rc);
	kill9(&f->redis);
	printf("# redis killed with %ld requests at gwsim, %lld in pushes:log\n",
	    gw_lines(&f->gw), at_kill);
	fflush(stdout);
	redisFree(f->rc);
	f->rc = NULL;
	it_sleep_ms(500);
	assert_int_equal(it_redis_start(&f->redis, dir, port, 1), port);
	f->rc = it_redis_connect(port);
	/* The AOF kept what was written before the kill. */
	assert_int_equal(it_shards_sum_key(f->rc, "HLEN %s", KEYS_SUBSCRIBERS), n);
	assert_true(xlen_log(f->rc) >= at_kill);

	check_invariants(f, "redis restart", "chaos-r", n);

	/* The notifier rode it out and still stops cleanly. */
	w = waitpid(f->nt[0].proc.pid, &status, WNOHANG);
	assert_int_equal(w, 0);
	status = it_stop(&f->nt[0].proc, SIGTERM, 5000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
two_notifiers_killed_alternately_never_duplicate(void **state)
{
	struct fx *f = *state;
	const int n = 2000, kills = 4;
	static const char extra[] = "[deliver]\nmax_in_flight = 32\n";
	static const char *const names[NOTIFIERS] = { "chaos-a", "chaos-b" };
	long long at[4];
	long waits[4];
	int i, k, mid = 0;
	long unknown;

	seed_test(f, __func__);
	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	/* Two notifiers: 64 in flight at 100 ms, four waits of at most 600 ms stay
	 * under 1,600 of the 2,000 pushes. */
	assert_int_equal(it_gwsim_start(&f->gw, gw_100ms), 0);
	for (k = 0; k < NOTIFIERS; k++)
		start_notifier(f, k, names[k], extra);
	assert_int_equal(it_publish(f->rc, it_deal("chaos-2", "laptop", 3600)), 0);
	for (i = 0; i < kills; i++) {
		k = i % NOTIFIERS;
		waits[i] = rand_between(f, 100, 600);
		it_sleep_ms(waits[i]);
		at[i] = xlen_log(f->rc);
		kill9(&f->nt[k].proc);
		if (at[i] < n)
			mid++;
		/* Its pending entries come back only to the same name (no XAUTOCLAIM). */
		start_notifier(f, k, names[k], extra);
	}
	printf("# kills after ms:");
	for (i = 0; i < kills; i++)
		printf(" %s@%ld(log=%lld)", names[i % NOTIFIERS], waits[i], at[i]);
	printf("\n");
	fflush(stdout);
	unknown = check_invariants(f, "two notifiers", "chaos-2", n);
	assert_true(unknown <= (long)kills * MAX_IN_FLIGHT);
	assert_int_equal(mid, kills);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    sigkill_at_random_points_during_a_5000_push_fanout_ten_times, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    redis_killed_and_restarted_with_aof_mid_fanout_loses_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    two_notifiers_killed_alternately_never_duplicate, setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("chaos", tests, group_setup, NULL);
}
