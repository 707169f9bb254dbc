/*
 * test_cluster_faults.c: the delivery core's faults again on a Redis Cluster (issue
 * 14 items 2 and 6; the same faults on one Redis are test_promises.c and
 * test_shard_owner.c): six redis-server (three primaries, three replicas), the
 * sharded layout of 4 shards, two notifiers sharing them (ownership = balanced) with
 * their claims made durable on a replica (wait_replicas = 1).
 *   - a gateway slower than the notifiers' timeout: every request is accepted at the
 *     gateway but its answer never seen; each push ends unknown, is never resent,
 *     and the resolver settles it as sent from the provider's records;
 *   - a notifier frozen (SIGSTOP) past its leases in the middle of a fan-out, each
 *     notifier on its own gateway simulator: the other takes its shards over, and the
 *     frozen one, woken, hands nothing more to its gateway;
 *   - a primary killed (-9) while the gateway is slower than the timeout: the
 *     failover and the unknown answers together;
 *   - a primary killed while the gateway fails 30% of requests: the failover meets
 *     the retries and their "retry" records.
 * In each: texts per phone at the gateways, never two; every push final; both
 * notifiers still running (a fault must not kill the one it did not hit). Counts,
 * never timings: every wait is a bounded poll for a state.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "ithttp.h"
#include "itshards.h"
#include "itest.h"

#define SHARDS 4
#define BULK 250                  /* subscribers per bulk request */

struct fx {
	struct it_cluster cl;
	struct it_gwsim gw[2];
	struct it_notifier nt[2];
	int api[2];                   /* their admin API ports */
	char conf[1024];              /* what every notifier here runs with */
};

static struct fx *fx;

static int
group_setup(void **state)
{
	static const char *const slow[] = { "--latency-ms", "1500", NULL };
	static const char *const quick[] = { "--latency-ms", "100", NULL };

	(void)state;
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	if ((fx = calloc(1, sizeof(*fx))) == NULL || it_cluster_start(&fx->cl) < 0 ||
	    it_cluster_layout(&fx->cl, SHARDS) < 0 || it_gwsim_start(&fx->gw[0], slow) < 0 ||
	    it_gwsim_start(&fx->gw[1], quick) < 0)
		return -1;
	snprintf(fx->conf, sizeof(fx->conf), "admin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\ncluster = 127.0.0.1:%d,127.0.0.1:%d\nshards = %d\nwait_replicas = 1\n"
	    "wait_timeout_ms = 200\n"
	    "[deliver]\nmax_in_flight = 64\nclaim_idle_ms = 3000\nresolve_after_s = 1\n"
	    "[cluster]\nownership = balanced\nlease_ms = 3000\nlease_margin_ms = 500\n"
	    "settle_ms = 1000\n", fx->cl.ports[0], fx->cl.ports[1], SHARDS);
	return 0;
}

static int
group_teardown(void **state)
{
	int i;

	(void)state;
	if (fx == NULL)
		return 0;
	for (i = 0; i < 2; i++) {
		if (fx->nt[i].proc.pid > 0)
			kill(fx->nt[i].proc.pid, SIGCONT);   /* a case that failed mid-freeze */
		it_stop(&fx->nt[i].proc, SIGTERM, 5000);
		it_stop(&fx->gw[i].proc, SIGTERM, 2000);
	}
	it_cluster_stop(&fx->cl);
	free(fx);
	fx = NULL;
	return 0;
}

/* Stops whatever notifiers the case before left running. */
static int
setup(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < 2; i++)
		if (fx->nt[i].proc.pid > 0) {
			kill(fx->nt[i].proc.pid, SIGCONT);
			it_stop(&fx->nt[i].proc, SIGTERM, 5000);
		}
	memset(fx->nt, 0, sizeof(fx->nt));
	return 0;
}

/* Notifier i on gateway simulator gw (timeout_ms 1000 at the gateway). */
static void
start(int i, int gw)
{
	char name[16];

	snprintf(name, sizeof(name), "cf-%c", 'a' + i);
	fx->api[i] = it_notifier_start_http_gw(&fx->nt[i], it_redis_port(),
	    fx->gw[gw].port, name, "rate_per_s = 1500\nburst = 50\ntimeout_ms = 1000\n",
	    fx->conf);
	assert_true(fx->api[i] > 0);
}

struct serving {
	int i;
	long shards;
};

/* Notifier w->i is healthy and serves w->shards shards. */
static int
serves(void *arg)
{
	const struct serving *w = arg;
	long subs, served;

	return it_notifier_health(fx->api[w->i], &subs, &served) == 1 &&
	    served == w->shards;
}

/* Both notifiers serve their half of the shards. */
static void
wait_split(void)
{
	struct serving a = { 0, SHARDS / 2 }, b = { 1, SHARDS / 2 };

	assert_true(it_wait(serves, &a, 30000));
	assert_true(it_wait(serves, &b, 30000));
}

/* n subscribers "<id>-<i>" of category, phones <phone><i, 4 digits>, through the
 * bulk API of notifier 0; then both mirrors hold them. */
static void
load(const char *id, const char *phone, int n, const char *category)
{
	struct it_resp *resp = malloc(sizeof(*resp));
	char *body = malloc(BULK * 400);
	int b, i;

	assert_non_null(resp);
	assert_non_null(body);
	for (b = 0; b < n; b += BULK) {
		size_t len = 0;

		for (i = b; i < n && i < b + BULK; i++)
			len += (size_t)snprintf(body + len, BULK * 400 - len,
			    "{\"id\":\"%s-%d\",\"phone\":\"%s%04d\",\"channels\":[\"sms\"],"
			    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
			    "\"timezone\":\"America/Chicago\","
			    "\"interests\":{\"categories\":[\"%s\"]}}\n", id, i, phone, i,
			    category);
		if (it_shard_api(fx->api[0], "POST", "/v1/bulk/subscribers", body, resp) / 100
		    != 2)
			fail_msg("bulk %d: %d %s", b, resp->status, resp->body);
	}
	free(body);
	free(resp);
}

struct mirrored {
	long n;
};

/* The two notifiers' mirrors hold m->n subscribers between them, both healthy. */
static int
mirrors_hold(void *arg)
{
	const struct mirrored *m = arg;
	long a, b, sa, sb;

	return it_notifier_health(fx->api[0], &a, &sa) == 1 &&
	    it_notifier_health(fx->api[1], &b, &sb) == 1 && a + b == m->n;
}

/* Every subscriber put in so far (n, over the cases) is in one of the mirrors. */
static void
wait_mirrors(long n)
{
	struct mirrored m = { n };

	assert_true(it_wait(mirrors_hold, &m, 30000));
}

/* Wall-clock milliseconds (gwsim's ts_ms are). */
static long long
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* deal (category, 15 minutes) on `deals`: its push ids' start into entry. */
static void
publish(const char *deal, const char *category, char *entry, size_t size)
{
	assert_int_equal(it_cluster_publish(&fx->cl, it_deal(deal, category, 900), entry,
	    size), 0);
}

struct want {
	const char *deal;
	long n;
	int sent;                     /* 1: resolved too, not only final */
	const char *phone, *entry;    /* with sent: the phones, the push ids' start */
};

/* The phones of w that gateway 0 texted (a 201 to <phone><i>, i < w->n). */
static long
texted(const struct want *w)
{
	int *t = calloc((size_t)w->n, sizeof(int));
	long i, k = 0;

	assert_non_null(t);
	(void)it_gwsim_texts(&fx->gw[0], w->phone, w->entry, (int)w->n, t);
	for (i = 0; i < w->n; i++)
		k += t[i] > 0;
	free(t);
	return k;
}

/* Every push of w final; with w->sent, each one sent or unknown, and as many sent as
 * the gateway texted phones: the resolver settled every push whose text the
 * gateway took, and an unknown one is a request the gateway never saw (the
 * notifier timed out before it was written), never resent. */
static int
settled(void *arg)
{
	const struct want *w = arg;
	struct it_states st;

	if (it_cluster_states(&fx->cl, SHARDS, w->deal, &st) < 0 || st.open != 0 ||
	    st.final != w->n)
		return 0;
	return !w->sent || (st.sent + st.unknown == w->n && st.sent == texted(w));
}

/* it_wait(settled, w, ms), saying what it last saw when it fails. */
static void
wait_settled(const struct want *w, long ms)
{
	struct it_states st;

	if (it_wait(settled, (void *)w, ms))
		return;
	(void)it_cluster_states(&fx->cl, SHARDS, w->deal, &st);
	fail_msg("%s not settled: %ld final (%ld sent, %ld unknown, %ld other), %ld open; "
	    "%ld phones texted at the gateway", w->deal, st.final, st.sent, st.unknown,
	    st.other, st.open, w->sent ? texted(w) : -1L);
}

struct over {
	const char *entry;
	int n;
};

/* More than o->n texts of the deal at the two gateways together. */
static int
texts_over(void *arg)
{
	const struct over *o = arg;

	return it_gwsim_requests_after(&fx->gw[0], o->entry, 0) +
	    it_gwsim_requests_after(&fx->gw[1], o->entry, 0) > o->n;
}

/* Texts per phone <phone><i> (i < n) of the deal over both gateways: the phones
 * texted twice. */
static int
dup_phones(const char *phone, const char *entry, int n)
{
	int *a = calloc((size_t)n, sizeof(int)), *b = calloc((size_t)n, sizeof(int));
	int i, dup = 0;

	assert_non_null(a);
	assert_non_null(b);
	dup += it_gwsim_texts(&fx->gw[0], phone, entry, n, a);
	dup += it_gwsim_texts(&fx->gw[1], phone, entry, n, b);
	for (i = 0; i < n; i++)
		dup += a[i] == 1 && b[i] == 1;
	free(a);
	free(b);
	return dup;
}

/* The index of the node that is the primary of shard k now, or -1. */
static int
primary_of_shard(uint32_t k)
{
	char key[96];

	return it_cluster_primary_of(&fx->cl, it_cluster_shard_key(SHARDS, k, "owner", key,
	    sizeof(key)));
}

struct promoted {
	uint32_t shard;
};

static int
has_primary(void *arg)
{
	return primary_of_shard(((struct promoted *)arg)->shard) >= 0;
}

/* Kills (-9) the primary of shard 1 in the middle of deal's fan-out of n (asserted
 * unfinished), waits for its replica to take over, and starts the killed node
 * again (it rejoins as a replica). */
static void
kill_primary_mid_fanout(const char *deal, long n)
{
	struct promoted p = { 1 };
	struct it_states st;
	int victim;

	assert_true((victim = primary_of_shard(1)) >= 0);
	assert_int_equal(it_cluster_states(&fx->cl, SHARDS, deal, &st), 0);
	printf("# killing the primary of shard 1 (port %d) with %ld of %ld pushes final\n",
	    fx->cl.ports[victim], st.final, n);
	assert_true(st.final < n);
	kill(fx->cl.pids[victim], SIGKILL);
	fx->cl.pids[victim] = 0;
	assert_true(it_wait(has_primary, &p, 20000));
	assert_int_equal(it_cluster_restart(&fx->cl, victim), 0);
}

/* Both notifiers still run: a fault must never kill the one it did not hit. */
static void
assert_alive(void)
{
	int i, status;

	for (i = 0; i < 2; i++)
		if (waitpid(fx->nt[i].proc.pid, &status, WNOHANG) != 0)
			fail_msg("notifier %c is gone (status 0x%x; see %s)", 'a' + i, status,
			    fx->nt[i].proc.log);
}

/* The gateway simulator gw answers at once again: what was accepted while it was
 * slow is looked up by the resolver quickly. */
static void
gateway_quick(int gw)
{
	assert_true(it_http_post(fx->gw[gw].port, "/_sim/faults", "{\"latency_ms\": 0}") /
	    100 == 2);
}

/* The states of deal printed after what; returns them. */
static struct it_states
report(const char *deal, const char *what, int dup)
{
	struct it_states st;

	assert_int_equal(it_cluster_states(&fx->cl, SHARDS, deal, &st), 0);
	printf("# %s: %ld final (%ld sent, %ld unknown, %ld other), %ld open, %d phones "
	    "texted twice\n", what, st.final, st.sent, st.unknown, st.other, st.open, dup);
	return st;
}

/*
 * gwsim answers after 1,500 ms, the notifiers' timeout is 1,000 ms: every request
 * is accepted at the gateway and its answer never seen. Resending after such a
 * timeout is a second text (Twilio has no idempotency key): each attempt ends
 * unknown, and the resolver settles it as sent from the gateway's message list
 * (one the gateway never saw stays unknown, never resent).
 */
static void
a_gateway_slower_than_the_timeout_on_the_cluster_texts_no_one_twice(void **state)
{
	struct want all = { "cf-slow", 200, 0, "+1512558", NULL };
	char entry[80];
	int dup;

	(void)state;
	start(0, 0);
	start(1, 0);
	wait_split();
	load("slow", "+1512558", 200, "slowgw");
	wait_mirrors(200);
	publish("cf-slow", "slowgw", entry, sizeof(entry));
	all.entry = entry;
	wait_settled(&all, 60000);
	gateway_quick(0);
	all.sent = 1;
	wait_settled(&all, 120000);   /* the resolver's lookups, a few a second */
	it_sleep_ms(1000);            /* a late second text would show by now */
	assert_alive();
	dup = dup_phones("+1512558", entry, 200);
	(void)report("cf-slow", "gateway slower than the timeout", dup);
	assert_int_equal(dup, 0);
	/* One request per push at most (none resent), and most of them reached it. */
	assert_true(it_gwsim_requests_after(&fx->gw[0], entry, 0) <= 200);
	assert_true(texted(&all) > 100);
	assert_true(it_log_count(fx->nt[0].proc.log, "outcome=unknown", NULL, NULL) +
	    it_log_count(fx->nt[1].proc.log, "outcome=unknown", NULL, NULL) > 0);
}

/*
 * Each notifier on its own gateway simulator (100 ms answers). A is frozen (SIGSTOP)
 * in the middle of a fan-out for longer than its leases: B takes A's shards over; A,
 * woken, finds its leases gone and hands nothing more to its gateway (a request it
 * had handed over before the freeze may still leave within the timeout, 1 s).
 */
static void
a_notifier_frozen_on_the_cluster_hands_nothing_over_after_waking(void **state)
{
	struct want all = { "cf-freeze", 1000, 0, NULL, NULL };
	struct serving b_all = { 1, SHARDS };
	struct over some = { NULL, 200 };
	struct it_states st;
	char entry[80];
	long long woke;
	int dup;

	(void)state;
	start(0, 1);                  /* A: the quick gateway 1 */
	start(1, 0);                  /* B: gateway 0, made quick too */
	assert_true(it_http_post(fx->gw[0].port, "/_sim/faults",
	    "{\"latency_ms\": 100}") / 100 == 2);
	wait_split();
	load("frz", "+1512559", 1000, "freeze");
	wait_mirrors(1200);
	publish("cf-freeze", "freeze", entry, sizeof(entry));
	some.entry = entry;
	assert_true(it_wait(texts_over, &some, 30000));
	assert_int_equal(kill(fx->nt[0].proc.pid, SIGSTOP), 0);
	/* Frozen with work left: the takeover has pushes to finish. */
	assert_int_equal(it_cluster_states(&fx->cl, SHARDS, "cf-freeze", &st), 0);
	printf("# A frozen with %ld of 1000 pushes final\n", st.final);
	assert_true(st.final < 900);
	assert_true(it_wait(serves, &b_all, 20000));
	it_sleep_ms(1000);            /* B at work on A's shards */
	woke = wall_ms();
	assert_int_equal(kill(fx->nt[0].proc.pid, SIGCONT), 0);
	wait_settled(&all, 90000);
	it_sleep_ms(1000);
	assert_alive();
	dup = dup_phones("+1512559", entry, 1000);
	st = report("cf-freeze", "a notifier frozen on the cluster", dup);
	printf("# A's gateway: %ld requests after A woke, %ld more than 2 s after\n",
	    it_gwsim_requests_after(&fx->gw[1], entry, woke),
	    it_gwsim_requests_after(&fx->gw[1], entry, woke + 2000));
	assert_int_equal(dup, 0);
	assert_int_equal(st.final, 1000);
	assert_int_equal(st.sent + st.unknown, 1000);
	assert_int_equal(st.other, 0);
	assert_int_equal(it_gwsim_requests_after(&fx->gw[1], entry, woke + 2000), 0);
	assert_true(it_log_count(fx->nt[0].proc.log, "event=shard_not_serving", NULL,
	    NULL) > 0);
	assert_true(it_log_count(fx->nt[1].proc.log, "event=takeover_done", NULL, NULL) > 0);
}

/* With gateway 0's faults set to faults (JSON): both notifiers on gateway 0, n
 * subscribers "<id>-<i>" of category at <phone><i> (have: every subscriber put in
 * before), deal published to them (its push ids' start into entry), and the primary
 * of shard 1 killed once 150 requests reached the gateway. */
static void
fanout_and_kill(const char *faults, const char *deal, const char *id,
    const char *phone, const char *category, int n, long have, char *entry,
    size_t size)
{
	struct over some = { NULL, 150 };

	assert_true(it_http_post(fx->gw[0].port, "/_sim/faults", faults) / 100 == 2);
	start(0, 0);
	start(1, 0);
	wait_split();
	load(id, phone, n, category);
	wait_mirrors(have + n);
	publish(deal, category, entry, size);
	some.entry = entry;
	assert_true(it_wait(texts_over, &some, 30000));
	kill_primary_mid_fanout(deal, n);
}

/*
 * The gateway slower than the timeout again, and the primary of shard 1 killed (-9)
 * in the middle of the fan-out: its replica takes over and the killed node comes
 * back as a replica. The unknown answers and the failover together: every push
 * final, none texted twice, every one resolved as sent.
 */
static void
a_primary_killed_while_the_gateway_is_slow_texts_no_one_twice(void **state)
{
	struct want all = { "cf-kill", 600, 0, "+1512560", NULL };
	char entry[80];
	int dup;

	(void)state;
	fanout_and_kill("{\"latency_ms\": 1500}", "cf-kill", "kil", "+1512560", "killgw",
	    600, 1200, entry, sizeof(entry));
	all.entry = entry;
	wait_settled(&all, 120000);
	gateway_quick(0);
	all.sent = 1;
	wait_settled(&all, 120000);   /* the resolver's lookups, a few a second */
	it_sleep_ms(1000);
	assert_alive();
	dup = dup_phones("+1512560", entry, 600);
	(void)report("cf-kill", "a primary killed while the gateway is slow", dup);
	assert_int_equal(dup, 0);
}

/*
 * The gateway answers 503 to 30% of requests (each retried after a backoff of 50 to
 * 400 ms, its "retry" recorded meanwhile) and the primary of shard 1 is killed (-9)
 * in the middle of the fan-out: records, retries and claims meet the failover.
 * Every push final, none texted twice, both notifiers alive.
 */
static void
a_primary_killed_while_the_gateway_fails_texts_no_one_twice(void **state)
{
	struct want all = { "cf-fail", 600, 0, NULL, NULL };
	struct it_states st;
	char entry[80];
	int dup;

	(void)state;
	fanout_and_kill("{\"latency_ms\": 100, \"fail_rate\": 0.3}", "cf-fail", "fai",
	    "+1512561", "failgw", 600, 1800, entry, sizeof(entry));
	assert_true(it_http_post(fx->gw[0].port, "/_sim/faults",
	    "{\"latency_ms\": 0, \"fail_rate\": 0}") / 100 == 2);
	wait_settled(&all, 120000);
	it_sleep_ms(1000);
	assert_alive();
	dup = dup_phones("+1512561", entry, 600);
	st = report("cf-fail", "a primary killed while the gateway fails", dup);
	assert_int_equal(dup, 0);
	assert_int_equal(st.final, 600);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(
		    a_gateway_slower_than_the_timeout_on_the_cluster_texts_no_one_twice,
		    setup),
		cmocka_unit_test_setup(
		    a_notifier_frozen_on_the_cluster_hands_nothing_over_after_waking, setup),
		cmocka_unit_test_setup(
		    a_primary_killed_while_the_gateway_is_slow_texts_no_one_twice, setup),
		cmocka_unit_test_setup(
		    a_primary_killed_while_the_gateway_fails_texts_no_one_twice, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
