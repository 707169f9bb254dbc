/*
 * test_sentinel.c: Redis Sentinel end to end, on a real primary, its replica and
 * three real sentinels (tests/lib.sh dp_start_sentinel).
 *
 * A connection finds the primary through the sentinels, also with the first
 * sentinel of the list down, and follows a failover (the primary killed with
 * SIGKILL) to the promoted replica. A wrong master name and a refused ACL login are
 * clear errors that name what is wrong, retried without a crash; an address a
 * sentinel names is used only when ROLE says master there; a claim waits for the
 * replica (redis.wait_replicas) before its text leaves. Then a 5,000-push
 * fan-out with redis.wait_replicas = 1 while the primary is killed: the notifier
 * moves to the new primary; no number gets two texts at the gateway simulator; the
 * pushes left "unknown" or without an outcome by the failover are counted and
 * printed as "# " lines (docs/operations.md explains them). Counts, never timings.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "itest.h"
#include "rconn.h"
#include "sentinel.h"

#define MASTER "dpmaster"
#define ACL_USER "dealpush"
#define ACL_PASS "s3cret-pw"
#define PHONE_BASE 1000            /* subscriber s-i has +1512555<1000+i> */
#define FANOUT 5000
#define FAILOVER_WAIT_MS 30000
#define REPLICA_LAG_MS 300

struct fx {
	struct it_sentinel st;
	struct it_gwsim gw;
	struct it_notifier nt;
};

/* One notifier-less run of the loop over an rconn that follows the sentinels. */
struct loop {
	struct event_base *base;
	struct sentinel *sn;
	struct rconn *rc;
	struct event *stop;
	int ready;
	char last[64];
};

static int
group_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL || it_sentinel_start(&f->st, MASTER, ACL_USER, ACL_PASS) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fx *f = *state;

	it_sentinel_stop(&f->st);
	free(f);
	return 0;
}

static void
sentinel_list(const struct it_sentinel *st, char *buf, size_t size)
{
	snprintf(buf, size, "127.0.0.1:%d, 127.0.0.1:%d,127.0.0.1:%d", st->sentinels[0],
	    st->sentinels[1], st->sentinels[2]);
}

static void
on_ready(struct rconn *rc, void *arg)
{
	struct loop *l = arg;

	(void)rc;
	l->ready++;
	event_base_loopbreak(l->base);
}

static void
on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct loop *l = arg;

	(void)rc;
	snprintf(l->last, sizeof(l->last), "%s", r == NULL ? "(null)" :
	    r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING ||
	    r->type == REDIS_REPLY_ERROR ? r->str : "?");
	event_base_loopbreak(l->base);
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(l->base);
}

/* Runs the loop until a callback breaks it or ms pass. */
static void
loop_run(struct loop *l, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(l->stop, &tv);
	event_base_dispatch(l->base);
	evtimer_del(l->stop);
}

static void
loop_open(struct loop *l, const char *list, const char *master)
{
	struct rconn_config cfg = { 0 };

	memset(l, 0, sizeof(*l));
	cfg.username = ACL_USER;
	cfg.password = ACL_PASS;
	cfg.connect_timeout_ms = 500;
	cfg.command_timeout_ms = 2000;
	cfg.reconnect_max_ms = 300;
	assert_non_null(l->base = event_base_new());
	assert_non_null(l->stop = evtimer_new(l->base, on_stop, l));
	assert_non_null(l->sn = sentinel_new(l->base, list, master, &cfg));
	cfg.sentinel = l->sn;
	assert_non_null(l->rc = rconn_new(l->base, &cfg, "test", on_ready, l));
}

static void
loop_close(struct loop *l)
{
	rconn_free(l->rc);
	sentinel_free(l->sn);
	event_free(l->stop);
	event_base_free(l->base);
}

/* SET k v through the rconn; the reply's text. */
static const char *
loop_set(struct loop *l, const char *k, const char *v)
{
	snprintf(l->last, sizeof(l->last), "(none)");
	if (rconn_cmd(l->rc, on_reply, l, 0, "SET %s %s", k, v) < 0)
		return "(not sent)";
	loop_run(l, 3000);
	return l->last;
}

static long long
port_get(int port, const char *key, char *out, size_t size)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *r;
	long long rv = -1;

	out[0] = '\0';
	if (c == NULL || c->err) {
		redisFree(c);
		return -1;
	}
	r = redisCommand(c, "AUTH %s %s", ACL_USER, ACL_PASS);
	freeReplyObject(r);
	if ((r = redisCommand(c, "GET %s", key)) != NULL && r->type == REDIS_REPLY_STRING) {
		snprintf(out, size, "%s", r->str);
		rv = 0;
	}
	freeReplyObject(r);
	redisFree(c);
	return rv;
}

/* ---- tests ---- */

static void
wrong_master_name_is_a_clear_error_and_retried(void **state)
{
	struct fx *f = *state;
	char list[128], extra[256];
	struct loop l;
	struct sentinel_stat ss;
	long lines;

	sentinel_list(&f->st, list, sizeof(list));
	/* Through the library: never ready, the error named, asked again and again. */
	loop_open(&l, list, "nosuchmaster");
	loop_run(&l, 3500);
	assert_int_equal(l.ready, 0);
	sentinel_stats(l.sn, &ss);
	assert_int_equal(ss.known, 0);
	loop_close(&l);
	/* The daemon: the same, in its log, and it is still running. */
	snprintf(extra, sizeof(extra), "[redis]\nsentinels = %s\nmaster_name = "
	    "nosuchmaster\n", list);
	assert_int_equal(it_notifier_start(&f->nt, f->st.primary, 1, "sent-wrong", extra),
	    0);
	it_sleep_ms(3500);
	assert_int_equal(waitpid(f->nt.proc.pid, NULL, WNOHANG), 0);
	lines = it_log_count(f->nt.proc.log, "event=unknown_master master=nosuchmaster",
	    NULL, NULL);
	printf("# wrong master name: %ld unknown_master lines in 3.5 s\n", lines);
	assert_true(lines >= 2);
	assert_true(it_log_count(f->nt.proc.log, "this sentinel monitors no master named "
	    "'nosuchmaster' (redis.master_name)", NULL, NULL) >= 2);
	/* No connection to Redis itself was made ready. */
	assert_int_equal(it_log_count(f->nt.proc.log, "redis=cmd event=connected", NULL,
	    NULL), 0);
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
}

static void
refused_acl_login_is_a_clear_error_and_retried(void **state)
{
	struct fx *f = *state;
	char extra[512], list[128];
	long lines;

	sentinel_list(&f->st, list, sizeof(list));
	assert_int_equal(setenv("DP_TEST_REDIS_PW", "not-the-password", 1), 0);
	snprintf(extra, sizeof(extra), "[redis]\nsentinels = %s\nmaster_name = " MASTER
	    "\nusername = " ACL_USER "\npassword_env = DP_TEST_REDIS_PW\n", list);
	assert_int_equal(it_notifier_start(&f->nt, f->st.primary, 1, "sent-acl", extra),
	    0);
	it_sleep_ms(2500);
	assert_int_equal(waitpid(f->nt.proc.pid, NULL, WNOHANG), 0);
	lines = it_log_count(f->nt.proc.log, "event=auth_failed", NULL, NULL);
	printf("# refused login: %ld auth_failed lines in 2.5 s\n", lines);
	assert_true(lines >= 2);
	assert_true(it_log_count(f->nt.proc.log, "user=" ACL_USER " err=\"WRONGPASS",
	    NULL, NULL) >= 2);
	/* The primary was found, the login is what failed. */
	assert_true(it_log_count(f->nt.proc.log, "event=primary_found master=" MASTER,
	    NULL, NULL) >= 1);
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	unsetenv("DP_TEST_REDIS_PW");
}

static void
first_sentinel_down_the_others_are_asked(void **state)
{
	struct fx *f = *state;
	char list[128], got[64];
	struct loop l;

	/* The first of the list is down (the address closed: refused at once). */
	snprintf(list, sizeof(list), "127.0.0.1:1,127.0.0.1:%d,127.0.0.1:%d",
	    f->st.sentinels[1], f->st.sentinels[2]);
	loop_open(&l, list, MASTER);
	loop_run(&l, 8000);
	assert_int_equal(l.ready, 1);
	assert_string_equal(loop_set(&l, "sentinel:down", "found"), "OK");
	assert_int_equal(port_get(f->st.primary, "sentinel:down", got, sizeof(got)), 0);
	assert_string_equal(got, "found");
	loop_close(&l);
}

/* Runs one command (fmt with one string argument) on each sentinel. */
static void
sentinels_all(const struct it_sentinel *st, const char *fmt, const char *arg)
{
	int i;

	for (i = 0; i < IT_SENTINELS; i++) {
		redisContext *c = it_redis_connect(st->sentinels[i]);
		redisReply *r = redisCommand(c, fmt, arg);

		assert_non_null(r);
		assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
		freeReplyObject(r);
		redisFree(c);
	}
}

static void
address_named_by_sentinels_is_used_only_if_role_says_master(void **state)
{
	struct fx *f = *state;
	char list[128];
	char port[16];
	struct loop l;
	struct sentinel_stat ss;

	/* The sentinels are told that the replica is the primary of "fakemaster". */
	snprintf(port, sizeof(port), "%d", f->st.replica);
	sentinels_all(&f->st, "SENTINEL MONITOR fakemaster 127.0.0.1 %s 2", port);
	sentinel_list(&f->st, list, sizeof(list));
	loop_open(&l, list, "fakemaster");
	loop_run(&l, 3000);
	sentinel_stats(l.sn, &ss);
	assert_int_equal(ss.known, 1);
	/* Connected, asked ROLE, found a replica: never ready for commands. */
	assert_int_equal(l.ready, 0);
	assert_false(rconn_is_ready(l.rc));
	loop_close(&l);
	sentinels_all(&f->st, "SENTINEL REMOVE %s", "fakemaster");
}

static void
dealpushctl_finds_the_primary_through_the_sentinels(void **state)
{
	struct fx *f = *state;
	char bin[512], list[128], out[2048];
	const char *argv[] = { bin, "--sentinel", list, "--master", MASTER, "cancel",
		"ctl-deal", NULL };
	redisContext *rc = it_redis_connect(f->st.primary);
	long long before = it_int(rc, "XLEN deals");

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	/* The first sentinel down: the next one answers. */
	snprintf(list, sizeof(list), "127.0.0.1:1,127.0.0.1:%d", f->st.sentinels[1]);
	assert_int_equal(setenv("DEALPUSH_REDIS_USER", ACL_USER, 1), 0);
	assert_int_equal(setenv("DEALPUSH_REDIS_PASSWORD", ACL_PASS, 1), 0);
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	assert_int_equal(it_int(rc, "XLEN deals"), before + 1);
	/* A wrong master name: exit 2, the name in the message, nothing written. */
	argv[4] = "nosuchmaster";
	assert_int_equal(it_run(argv, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "no sentinel of"));
	assert_non_null(strstr(out, "\"nosuchmaster\""));
	assert_int_equal(it_int(rc, "XLEN deals"), before + 1);
	unsetenv("DEALPUSH_REDIS_USER");
	unsetenv("DEALPUSH_REDIS_PASSWORD");
	redisFree(rc);
}

static void
primary_killed_connection_follows_the_failover(void **state)
{
	struct fx *f = *state;
	char list[128], got[64];
	struct loop l;
	struct sentinel_stat ss;
	unsigned long gen;
	int i;

	sentinel_list(&f->st, list, sizeof(list));
	loop_open(&l, list, MASTER);
	loop_run(&l, 5000);
	assert_int_equal(l.ready, 1);
	assert_string_equal(loop_set(&l, "sentinel:before", "1"), "OK");
	gen = rconn_generation(l.rc);
	kill(f->st.primary_pid, SIGKILL);
	waitpid(f->st.primary_pid, NULL, 0);
	f->st.primary_pid = 0;
	/* Ready again, on the promoted replica. */
	for (i = 0; i < FAILOVER_WAIT_MS / 500 && l.ready < 2; i++)
		loop_run(&l, 500);
	assert_int_equal(l.ready, 2);
	assert_true(rconn_generation(l.rc) > gen);
	sentinel_stats(l.sn, &ss);
	assert_int_equal(ss.switches, 1);
	{
		char want[32];

		snprintf(want, sizeof(want), "127.0.0.1:%d", f->st.replica);
		assert_string_equal(ss.primary, want);
	}
	assert_string_equal(loop_set(&l, "sentinel:after", "2"), "OK");
	assert_int_equal(port_get(f->st.replica, "sentinel:after", got, sizeof(got)), 0);
	assert_string_equal(got, "2");
	loop_close(&l);
}

/* ---- durability (redis.wait_replicas) and the fan-out ---- */

struct log_want {
	const char *path;
	const char *needle;
	long n;
};

static int
log_has(void *arg)
{
	struct log_want *w = arg;

	return it_log_count(w->path, w->needle, NULL, NULL) >= w->n;
}

struct xlen_want {
	redisContext *rc;
	long long n;
};

static int
xlen_reaches(void *arg)
{
	struct xlen_want *w = arg;

	return it_int(w->rc, "XLEN pushes:log") >= w->n;
}

struct health_want {
	int port;
	int ok;                    /* the status wanted: 1 ok, 0 unhealthy */
	char body[4096];
};

/* 1 once /healthz has the status wanted (its body kept in w->body). */
static int
health_is(void *arg)
{
	struct health_want *w = arg;

	if (it_http_get(w->port, "/healthz", w->body, sizeof(w->body)) < 0)
		return 0;
	return (strstr(w->body, "\"status\":\"ok\"") != NULL) == w->ok;
}

/* The "replicas" object of a /healthz body: lagging, and its short WAITs. */
static void
health_replicas(const char *body, int *lagging, long *waits_short)
{
	cJSON *j = cJSON_Parse(body);
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "replicas");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "waits_short");

	assert_non_null(r);
	*lagging = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "lagging"));
	*waits_short = cJSON_IsNumber(s) ? (long)s->valuedouble : -1;
	cJSON_Delete(j);
}

/* The replica stops: claims wait and nothing is texted, /healthz says why (503,
 * "replica lag"); it comes back: every push is sent once and /healthz is ok. */
static void
claims_wait_for_a_replica_before_any_text_leaves(void **state)
{
	struct fx *f = *state;
	const int n = 20;
	char extra[256];
	redisContext *rc = it_redis_connect(f->st.primary);
	struct log_want held;
	struct xlen_want all = { rc, n };
	struct health_want h;
	long waits_short;
	int lagging;

	it_flush(rc);
	it_import_audience(f->st.primary, n, PHONE_BASE, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	/* The replica stops acknowledging: every WAIT answers 0 after its timeout. */
	assert_int_equal(kill(f->st.replica_pid, SIGSTOP), 0);
	snprintf(extra, sizeof(extra), "[redis]\nwait_replicas = 1\nwait_timeout_ms = 100\n");
	h.port = it_notifier_start_http(&f->nt, f->st.primary, f->gw.port, "sent-wait",
	    extra);
	assert_true(h.port > 0);
	assert_int_equal(it_publish(rc, it_deal("wait-1", "laptop", 3600)), 0);
	held.path = f->nt.proc.log;
	held.needle = "event=claim_not_durable";
	held.n = 3;
	assert_true(it_wait(log_has, &held, 20000));
	/* Claimed again and again, never sent; /healthz says why. */
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);
	h.ok = 0;
	assert_true(it_wait(health_is, &h, 10000));
	if (strstr(h.body, "replica lag: writes not durable") == NULL)
		fail_msg("/healthz while the replica is stopped: %s", h.body);
	health_replicas(h.body, &lagging, &waits_short);
	assert_true(lagging);
	assert_true(waits_short >= 3);
	/* The plan's last step waited for the replica too, and said it did not come. */
	assert_int_equal(it_log_count(f->nt.proc.log, "event=plan_not_durable deal=wait-1",
	    NULL, NULL), 1);
	assert_int_equal(kill(f->st.replica_pid, SIGCONT), 0);
	assert_true(it_wait(xlen_reaches, &all, 30000));
	h.ok = 1;
	assert_true(it_wait(health_is, &h, 10000));
	health_replicas(h.body, &lagging, &waits_short);
	assert_false(lagging);
	it_sleep_ms(300);
	/* Then every one once. */
	assert_int_equal(it_gwsim_count(&f->gw, 201), n);
	assert_int_equal(it_gwsim_count(&f->gw, 0), n);
	assert_int_equal(it_int(rc, "XLEN pushes:log"), n);
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_flush(rc);
	redisFree(rc);
}

/* Texts per number at the gateway (201 answers), and the outcomes logged. */
struct fanout_count {
	long texts, numbers, dup_numbers, strangers;
	long logged, sent, unknown, other, missing, doubled;
};

static void
fanout_count(const struct it_gwsim *g, redisContext *rc, int n,
    struct fanout_count *fc)
{
	int *got = calloc((size_t)n, sizeof(int)), *nlog = calloc((size_t)n, sizeof(int));
	cJSON *reqs = it_gwsim_requests(g), *o;
	redisReply *r;
	size_t i, j;
	int k;

	assert_non_null(got);
	assert_non_null(nlog);
	assert_non_null(reqs);
	memset(fc, 0, sizeof(*fc));
	cJSON_ArrayForEach(o, reqs) {
		cJSON *to = cJSON_GetObjectItem(o, "to"), *st = cJSON_GetObjectItem(o, "status");
		long num = -1;

		if (!cJSON_IsNumber(st) || st->valueint != 201)
			continue;
		fc->texts++;
		if (cJSON_IsString(to) && strncmp(to->valuestring, "+1512555", 8) == 0)
			num = strtol(to->valuestring + 8, NULL, 10) - PHONE_BASE;
		if (num < 0 || num >= n)
			fc->strangers++;
		else
			got[num]++;
	}
	cJSON_Delete(reqs);
	for (k = 0; k < n; k++) {
		fc->numbers += got[k] > 0;
		fc->dup_numbers += got[k] > 1;
	}
	r = redisCommand(rc, "XRANGE pushes:log - +");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	fc->logged = (long)r->elements;
	for (i = 0; i < r->elements; i++) {
		redisReply *fl = r->element[i]->element[1];
		const char *sub = NULL, *outcome = NULL;

		for (j = 0; j + 1 < fl->elements; j += 2) {
			if (strcmp(fl->element[j]->str, "sub") == 0)
				sub = fl->element[j + 1]->str;
			else if (strcmp(fl->element[j]->str, "outcome") == 0)
				outcome = fl->element[j + 1]->str;
		}
		if (sub == NULL || outcome == NULL || strncmp(sub, "s-", 2) != 0)
			continue;
		k = atoi(sub + 2);
		if (k >= 0 && k < n)
			nlog[k]++;
		if (strcmp(outcome, "sent") == 0)
			fc->sent++;
		else if (strcmp(outcome, "unknown") == 0)
			fc->unknown++;
		else
			fc->other++;
	}
	freeReplyObject(r);
	for (k = 0; k < n; k++) {
		fc->missing += nlog[k] == 0;
		fc->doubled += nlog[k] > 1;
	}
	free(got);
	free(nlog);
}

struct gw_want {
	const struct it_gwsim *g;
	int n;
};

static int
gw_reaches(void *arg)
{
	struct gw_want *w = arg;

	return it_gwsim_count(w->g, 0) >= w->n;
}

/*
 * A 5,000-push fan-out through the sentinels with redis.wait_replicas = 1
 * (DP_SENTINEL_WAIT_REPLICAS=0 measures the same without WAIT: the counts are
 * printed before the checks). About a fifth in, the replica stops (SIGSTOP) for
 * REPLICA_LAG_MS, as a stalled replica would, then the primary is killed with
 * SIGKILL and the replica goes on; with host_lost, the notifier is killed
 * with it (one host ran both) and started again with the same consumer name. The
 * old primary's host comes back as a replica of the promoted one.
 */
static void
fanout_failover(struct fx *f, const char *what, int host_lost)
{
	static const char *const gw_20ms[] = { "--latency-ms", "20", NULL };
	struct it_sentinel st;
	struct fanout_count fc;
	struct gw_want some;
	struct xlen_want all;
	struct log_want moved;
	char list[128], extra[512], needle[96];
	redisContext *rc;
	long at_kill;
	int wait;

	assert_int_equal(it_sentinel_start(&st, MASTER, NULL, NULL), 0);
	sentinel_list(&st, list, sizeof(list));
	rc = it_redis_connect(st.primary);
	it_import_audience(st.primary, FANOUT, PHONE_BASE, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, gw_20ms), 0);
	wait = getenv("DP_SENTINEL_WAIT_REPLICAS") != NULL &&
	    strcmp(getenv("DP_SENTINEL_WAIT_REPLICAS"), "0") == 0 ? 0 : 1;
	snprintf(extra, sizeof(extra), "[redis]\nsentinels = %s\nmaster_name = " MASTER
	    "\nwait_replicas = %d\nwait_timeout_ms = 100\n[deliver]\nmax_in_flight = 32\n",
	    list, wait);
	assert_int_equal(it_notifier_start(&f->nt, st.primary, f->gw.port, "sent-fan",
	    extra), 0);
	assert_int_equal(it_publish(rc, it_deal("fan-1", "laptop", 3600)), 0);
	some.g = &f->gw;
	some.n = FANOUT / 5;
	assert_true(it_wait(gw_reaches, &some, 60000));
	assert_int_equal(kill(st.replica_pid, SIGSTOP), 0);
	it_sleep_ms(REPLICA_LAG_MS);
	if (host_lost)
		it_stop(&f->nt.proc, SIGKILL, 2000);
	at_kill = it_gwsim_count(&f->gw, 0);
	kill(st.primary_pid, SIGKILL);
	waitpid(st.primary_pid, NULL, 0);
	st.primary_pid = 0;
	assert_int_equal(kill(st.replica_pid, SIGCONT), 0);
	redisFree(rc);
	if (host_lost)
		assert_int_equal(it_notifier_start(&f->nt, st.primary, f->gw.port,
		    "sent-fan", extra), 0);
	/* The notifier works on the promoted replica. */
	snprintf(needle, sizeof(needle), "redis=deliver event=connected host=127.0.0.1 "
	    "addr=127.0.0.1:%d", st.replica);
	moved.path = f->nt.proc.log;
	moved.needle = needle;
	moved.n = 1;
	assert_true(it_wait(log_has, &moved, FAILOVER_WAIT_MS));
	/* It has no replica yet: every claim waits (durability is not given up) until
	 * the old primary's host is back, as a replica. */
	assert_true(it_sentinel_add_replica(&st, st.replica) > 0);
	rc = it_redis_connect(st.replica);
	all.rc = rc;
	all.n = FANOUT;
	if (!it_wait(xlen_reaches, &all, 60000))
		printf("# %s: pushes:log has %lld of %d\n", what, it_int(rc, "XLEN pushes:log"),
		    FANOUT);
	it_sleep_ms(1000);
	assert_int_equal(waitpid(f->nt.proc.pid, NULL, WNOHANG), 0);
	fanout_count(&f->gw, rc, FANOUT, &fc);
	printf("# %s (wait_replicas %d): killed at %ld requests; texts=%ld numbers=%ld "
	    "dup_numbers=%ld strangers=%ld; log=%ld sent=%ld unknown=%ld other=%ld "
	    "missing=%ld doubled=%ld; claims_not_durable=%ld\n",
	    what, wait, at_kill, fc.texts, fc.numbers, fc.dup_numbers, fc.strangers,
	    fc.logged, fc.sent, fc.unknown, fc.other, fc.missing, fc.doubled,
	    it_log_count(f->nt.proc.log, "event=claim_not_durable", NULL, NULL));
	fflush(stdout);
	/* The promise: no number got two texts. */
	assert_int_equal(fc.dup_numbers, 0);
	assert_int_equal(fc.strangers, 0);
	/* Every subscriber has one outcome; all texted are logged sent or unknown. */
	assert_int_equal(fc.missing, 0);
	assert_int_equal(fc.doubled, 0);
	assert_true(fc.sent <= fc.numbers && fc.numbers <= fc.sent + fc.unknown);
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	it_stop(&f->gw.proc, SIGTERM, 2000);
	redisFree(rc);
	it_sentinel_stop(&st);
}

static void
primary_killed_mid_fanout_no_number_texted_twice(void **state)
{
	fanout_failover(*state, "failover mid fan-out", 0);
}

static void
primary_and_notifier_killed_mid_fanout_no_number_texted_twice(void **state)
{
	fanout_failover(*state, "host lost mid fan-out", 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wrong_master_name_is_a_clear_error_and_retried),
		cmocka_unit_test(refused_acl_login_is_a_clear_error_and_retried),
		cmocka_unit_test(first_sentinel_down_the_others_are_asked),
		cmocka_unit_test(claims_wait_for_a_replica_before_any_text_leaves),
		cmocka_unit_test(address_named_by_sentinels_is_used_only_if_role_says_master),
		cmocka_unit_test(dealpushctl_finds_the_primary_through_the_sentinels),
		cmocka_unit_test(primary_killed_connection_follows_the_failover),
		cmocka_unit_test(primary_killed_mid_fanout_no_number_texted_twice),
		cmocka_unit_test(primary_and_notifier_killed_mid_fanout_no_number_texted_twice),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("sentinel", tests, group_setup,
	    group_teardown);
}
