/*
 * test_shard_store.c: the subscribers stored and mirrored in the sharded layout
 * (docs/sharding.md sections 2 and 6, step 2), on the shared redis-server with a
 * layout of 4 shards.
 *
 * Increment 3 (the keys of every push in its subscriber's shard): a deal with a code
 * pool and a holdout, clicks and conversions of every kind, reported by the API and
 * dealpushctl exactly as on one Redis without a layout; a cancel mid-way stopping
 * every shard; quiet-hours pushes waiting in every shard's delayed set, released.
 *
 * Every way a subscriber is written outside delivery (dealpushctl import and delete,
 * the admin API's put, bulk and delete) writes the keys of the subscriber's shard
 * only, named by notifier/keys.c; the notifier's mirror loads every shard's hash and
 * follows every shard's change stream; an id with '{' and '}' stays in its shard.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "clicktok.h"
#include "err.h"
#include "ithttp.h"
#include "itest.h"
#include "keys.h"
#include "layout.h"
#include "phoneix.h"
#include "scripts.h"
#include "shard.h"
#include "twsig.h"

#define CONV_DEAD keys_global(KEYS_G_CONVERSIONS_DEAD)   /* in the layout in force */

#define TOKEN "shard-store-token-0123456789"
#define WAIT_MS 15000
#define SHARDS 4
#define AUDIENCE 40
#define PUBLIC_URL "https://notify.example.test"
#define PHONE "+15125567001"

static int http_port;

static const char *
sub_json(const char *id, int n)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
	    "{\"id\":\"%s\",\"phone\":\"+1512556%04d\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
	    "\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}", id, n);
	return buf;
}

static int
api(const char *method, const char *path, const char *body, struct it_resp *resp)
{
	return it_http(http_port, method, path, "Authorization: Bearer " TOKEN "\r\n",
	    body, body != NULL ? strlen(body) : 0, resp);
}

/* The mirror's size, from simulate; -1 when it does not answer. */
static long
mirror_size(void)
{
	static struct it_resp resp;
	const char *deal = it_deal("probe", "laptop", 600);
	cJSON *o, *n;
	long v = -1;

	if (api("POST", "/v1/deals/simulate", deal, &resp) != 200 ||
	    (o = cJSON_Parse(resp.body)) == NULL)
		return -1;
	if (cJSON_IsNumber(n = cJSON_GetObjectItem(o, "subscribers")))
		v = (long)n->valuedouble;
	cJSON_Delete(o);
	return v;
}

static int
mirror_is(void *arg)
{
	return mirror_size() == *(long *)arg;
}

static void
wait_mirror(long n)
{
	if (!it_wait(mirror_is, &n, WAIT_MS))
		fail_msg("mirror: want %ld subscribers, last saw %ld", n, mirror_size());
}

/* 1 when id is stored in its shard's hash and in no other shard's. */
static int
stored_in_its_shard(redisContext *rc, const char *id)
{
	char key[KEYS_SHARD_MAX];
	uint32_t k, own = keys_shard_of(id);
	int ok = 1;

	for (k = 0; k < SHARDS; k++) {
		keys_shard_key(k, KEYS_SUBSCRIBERS, key, sizeof(key));
		if (it_int(rc, "HEXISTS %s %s", key, id) != (k == own))
			ok = 0;
	}
	return ok;
}

/* Stores the layout of 4 shards with dealpushctl and puts the same one in force
 * here (the tags are deterministic). 0 or -1. */
static int
setup_layout(void)
{
	struct err err;
	struct shard_layout *l = shard_layout_new(SHARDS, &err);
	char out[256], bin[512], addr[64];
	const char *argv[] = { bin, "--redis", addr, "layout", "create", "--shards", "4",
		NULL };

	if (l == NULL)
		return -1;
	layout_set(l);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", it_redis_port());
	return it_run(argv, out, sizeof(out)) == 0 ? 0 : -1;
}

static int
setup(void **state)
{
	if (it_one_setup(state) < 0)
		return -1;
	return setup_layout();
}

static int
teardown(void **state)
{
	layout_clear();
	return it_one_teardown(state);
}

static void
every_writer_uses_the_subscribers_shard(void **state)
{
	struct it_one *f = *state;
	static struct it_resp resp;
	char id[32], key[KEYS_SHARD_MAX], *bulk, bin[512], addr[64], out[256];
	const char *del[] = { bin, "--redis", addr, "subscribers", "delete", "a{b}c", NULL };
	long long sum = 0;
	size_t len = 0, cap = 16384;
	uint32_t k;
	int i;

	it_import_audience(f->port, AUDIENCE, 1000, "laptop");
	for (i = 0; i < AUDIENCE; i++) {
		snprintf(id, sizeof(id), "s-%d", i);
		assert_true(stored_in_its_shard(f->rc, id));
	}
	for (k = 0; k < SHARDS; k++) {
		long long n;

		keys_shard_key(k, KEYS_SUBSCRIBERS, key, sizeof(key));
		n = it_int(f->rc, "HLEN %s", key);
		assert_true(n > 0);   /* 40 ids spread over every shard */
		sum += n;
		keys_consent(k, CH_SMS, key, sizeof(key));
		assert_true(it_int(f->rc, "HLEN %s", key) > 0);
	}
	assert_int_equal(sum, AUDIENCE);
	/* No name of the single-instance layout was written. */
	assert_int_equal(it_int(f->rc, "EXISTS subscribers subscribers:changes consent:sms "
	    "consent:records consent:epoch"), 0);

	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, 1, "it-shard-store",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	wait_mirror(AUDIENCE);

	/* An id with braces: its tag comes first, so it stays in its shard. */
	assert_int_equal(api("PUT", "/v1/subscribers/a%7Bb%7Dc", sub_json("a{b}c", 1),
	    &resp), 201);
	assert_true(stored_in_its_shard(f->rc, "a{b}c"));
	assert_int_equal(api("GET", "/v1/subscribers/a%7Bb%7Dc", NULL, &resp), 200);
	assert_int_equal(api("GET", "/v1/consent/a%7Bb%7Dc", NULL, &resp), 200);
	wait_mirror(AUDIENCE + 1);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	assert_int_equal(it_run(del, out, sizeof(out)), 0);
	keys_shard_key(keys_shard_of("a{b}c"), KEYS_SUBSCRIBERS, key, sizeof(key));
	assert_int_equal(it_int(f->rc, "HEXISTS %s a{b}c", key), 0);
	wait_mirror(AUDIENCE);

	/* A bulk request of subscribers of every shard: one call per shard. */
	assert_non_null(bulk = malloc(cap));
	bulk[0] = '\0';
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "b-%d", i);
		len += (size_t)snprintf(bulk + len, cap - len, "%s\n", sub_json(id, 100 + i));
	}
	assert_int_equal(api("POST", "/v1/bulk/subscribers", bulk, &resp), 200);
	free(bulk);
	assert_non_null(strstr(resp.body, "\"stored\":10"));
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "b-%d", i);
		assert_true(stored_in_its_shard(f->rc, id));
	}
	wait_mirror(AUDIENCE + 10);
	assert_int_equal(api("DELETE", "/v1/subscribers/b-3", NULL, &resp), 200);
	wait_mirror(AUDIENCE + 9);
	assert_int_equal(it_int(f->rc, "EXISTS subscribers subscribers:changes"), 0);
}

struct gw_want {
	struct it_gwsim *gw;
	int n;
};

static int
gw_reached(void *arg)
{
	struct gw_want *w = arg;

	return it_gwsim_count(w->gw, 201) >= w->n;
}

/* A deal to every subscriber of 4 shards (planned in jobs of one shard each): every
 * subscriber texted once, and no subscriber key of the single-instance layout. */
static void
a_deal_reaches_every_shard_once(void **state)
{
	struct it_one *f = *state;
	struct gw_want w = { &f->gw, AUDIENCE };
	char phone[32];
	cJSON *reqs;
	size_t i;

	it_import_audience(f->port, AUDIENCE, 2000, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-deal",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	wait_mirror(AUDIENCE);
	assert_int_equal(it_publish(f->rc, it_deal("shard-d1", "laptop", 600)), 0);
	assert_true(it_wait(gw_reached, &w, WAIT_MS));
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < AUDIENCE; i++) {
		snprintf(phone, sizeof(phone), "+1512555%04zu", 2000 + i);
		assert_int_equal(it_gwsim_accepted_to(reqs, phone), 1);
	}
	cJSON_Delete(reqs);
	/* The consent epochs and caps are the shards'; no single-instance name. */
	assert_int_equal(it_int(f->rc, "EXISTS subscribers subscribers:changes consent:sms "
	    "consent:dm consent:epoch consent:records"), 0);
	/* Ranked once by the notifier, planned once by each shard's reader. */
	assert_int_equal(it_log_count(f->nt.proc.log, "event=deal_ranked deal=shard-d1",
	    NULL, NULL), 1);
	assert_int_equal(it_log_count(f->nt.proc.log, "event=deal_planned deal=shard-d1",
	    NULL, NULL), 4);
}

/* A command that must succeed. */
static void
cmd_ok(redisContext *rc, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

/* The first subscriber s-<i> of shard k. */
static const char *
sub_of_shard(uint32_t k)
{
	static char id[16];
	int i;

	for (i = 0; i < AUDIENCE; i++) {
		snprintf(id, sizeof(id), "s-%d", i);
		if (keys_shard_of(id) == k)
			return id;
	}
	fail_msg("no subscriber in shard %u", k);
	return NULL;
}

/* A line holding needle in the log: for it_wait. */
struct log_want {
	const char *log;
	const char *needle;
};

static int
log_has(void *arg)
{
	const struct log_want *w = arg;

	return it_log_line(w->log, w->needle) > 0;
}

/* One shard's change stream trimmed past the mirror's position while the notifier
 * is stopped: a gap, noticed in that stream, and everything is read again; the other
 * shards' changes are followed as before. */
static void
a_gap_in_one_shards_feed_reloads_the_mirror(void **state)
{
	struct it_one *f = *state;
	static struct it_resp resp;
	char hash[KEYS_SHARD_MAX], feed[KEYS_SHARD_MAX], needle[128], gone[16];
	const char *other;

	it_import_audience(f->port, AUDIENCE, 3000, "laptop");
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, 1, "it-shard-gap",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	wait_mirror(AUDIENCE);
	/* The feed's reader back in its blocked XREAD, past the import's last changes:
	 * the stop below must catch it there (the case this test is about). */
	it_sleep_ms(500);

	assert_int_equal(kill(f->nt.proc.pid, SIGSTOP), 0);
	snprintf(gone, sizeof(gone), "%s", sub_of_shard(1));
	keys_shard_key(1, KEYS_SUBSCRIBERS, hash, sizeof(hash));
	keys_shard_key(1, KEYS_SUB_CHANGES, feed, sizeof(feed));
	/* The first entry answers the read the notifier had blocked in (Redis writes the
	 * reply while the process is stopped); the delete after it is then trimmed
	 * before the notifier reads on. */
	cmd_ok(f->rc, "XADD %s * id %s op put", feed, gone);
	cmd_ok(f->rc, "HDEL %s %s", hash, gone);
	cmd_ok(f->rc, "XADD %s * id %s op del", feed, gone);
	cmd_ok(f->rc, "XTRIM %s MAXLEN 0", feed);
	keys_shard_key(keys_shard_of("x-new"), KEYS_SUBSCRIBERS, hash, sizeof(hash));
	keys_shard_key(keys_shard_of("x-new"), KEYS_SUB_CHANGES, feed, sizeof(feed));
	cmd_ok(f->rc, "HSET %s x-new %s", hash, sub_json("x-new", 9));
	cmd_ok(f->rc, "XADD %s * id x-new op put", feed);
	assert_int_equal(kill(f->nt.proc.pid, SIGCONT), 0);

	/* Read only from what is left, the mirror would still hold the one deleted. The
	 * count is AUDIENCE before the notifier has read anything too (one gone, one
	 * new): wait for the reload itself first. */
	keys_shard_key(1, KEYS_SUB_CHANGES, feed, sizeof(feed));
	snprintf(needle, sizeof(needle), "event=subscriber_feed_gap stream=%s", feed);
	{
		struct log_want lw = { f->nt.proc.log, needle };

		assert_true(it_wait(log_has, &lw, WAIT_MS));
		/* the reload's end (its start is logged as subscribers_reload) */
		lw.needle = "reason=gap load_ms=";
		assert_true(it_wait(log_has, &lw, WAIT_MS));
		assert_true(it_log_line(f->nt.proc.log, "event=subscribers_reload reason=gap") >
		    0);
	}
	wait_mirror(AUDIENCE);
	assert_int_equal(api("GET", "/v1/subscribers/x-new", NULL, &resp), 200);

	/* And it still follows every shard after the reload. */
	other = sub_of_shard(2);
	keys_shard_key(2, KEYS_SUBSCRIBERS, hash, sizeof(hash));
	keys_shard_key(2, KEYS_SUB_CHANGES, feed, sizeof(feed));
	cmd_ok(f->rc, "HDEL %s %s", hash, other);
	cmd_ok(f->rc, "XADD %s * id %s op del", feed, other);
	wait_mirror(AUDIENCE - 1);
}

/* POSTs an inbound SMS, signed as Twilio signs it. Returns the status. */
static int
sms_in(const char *sid, const char *from, const char *text)
{
	static struct it_resp r;
	struct twsig_param p[4] = { { "MessageSid", sid }, { "From", from },
		{ "To", IT_FROM }, { "Body", text } };
	char body[1024] = "", sig[64], hdr[256];
	size_t i;

	for (i = 0; i < 4; i++) {
		if (i > 0)
			snprintf(body + strlen(body), sizeof(body) - strlen(body), "&");
		it_pct_append(body, sizeof(body), p[i].name);
		snprintf(body + strlen(body), sizeof(body) - strlen(body), "=");
		it_pct_append(body, sizeof(body), p[i].value);
	}
	assert_int_equal(twsig_compute(IT_AUTH_TOKEN, PUBLIC_URL "/hooks/twilio/inbound",
	    p, 4, sig, sizeof(sig)), 0);
	snprintf(hdr, sizeof(hdr), "Content-Type: application/x-www-form-urlencoded\r\n"
	    "X-Twilio-Signature: %s\r\n", sig);
	it_http(http_port, "POST", "/hooks/twilio/inbound", hdr, body, strlen(body), &r);
	return r.status;
}

/* 1 when sub has sms consent in its shard. */
static long long
has_sms_consent(redisContext *rc, const char *sub)
{
	char key[KEYS_SHARD_MAX];

	keys_consent(keys_shard_of(sub), CH_SMS, key, sizeof(key));
	return it_int(rc, "HEXISTS %s %s", key, sub);
}

/* Two subscribers of one number in two shards: a STOP opts both out, each in its
 * shard; the same message again changes nothing; a START replayed after a newer STOP
 * leaves both opted out. */
static void
a_stop_reaches_every_shard_of_the_number(void **state)
{
	struct it_one *f = *state;
	char a[16] = "", b[16] = "", line[2048];
	int i;

	for (i = 0; b[0] == '\0'; i++) {
		char id[16];

		snprintf(id, sizeof(id), "n-%d", i);
		if (a[0] == '\0')
			snprintf(a, sizeof(a), "%s", id);
		else if (keys_shard_of(id) != keys_shard_of(a))
			snprintf(b, sizeof(b), "%s", id);
	}
	snprintf(line, sizeof(line), "%s\n", sub_json(a, 7001));
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n", sub_json(b, 7001));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(has_sms_consent(f->rc, a), 1);
	assert_int_equal(has_sms_consent(f->rc, b), 1);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-stop",
	    "public_url = " PUBLIC_URL "\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	wait_mirror(2);
	assert_int_equal(sms_in("SM00000000000000000000000000000001", PHONE, "START"), 200);
	assert_int_equal(sms_in("SM00000000000000000000000000000002", PHONE, "STOP"), 200);
	assert_int_equal(has_sms_consent(f->rc, a), 0);
	assert_int_equal(has_sms_consent(f->rc, b), 0);
	/* Replays: the STOP again, then the older START again. */
	assert_int_equal(sms_in("SM00000000000000000000000000000002", PHONE, "STOP"), 200);
	assert_int_equal(sms_in("SM00000000000000000000000000000001", PHONE, "START"), 200);
	assert_int_equal(has_sms_consent(f->rc, a), 0);
	assert_int_equal(has_sms_consent(f->rc, b), 0);
	assert_true(it_log_line(f->nt.proc.log, "duplicate=1") > 0);
	assert_int_equal(it_int(f->rc, "EXISTS subscribers consent:sms consent:epoch"), 0);
}

/* Two ids of two shards, into a and b. */
static void
two_shards(const char *prefix, char a[16], char b[16])
{
	int i;

	a[0] = b[0] = '\0';
	for (i = 0; b[0] == '\0'; i++) {
		char id[16];

		snprintf(id, sizeof(id), "%s-%d", prefix, i);
		if (a[0] == '\0')
			snprintf(a, 16, "%s", id);
		else if (keys_shard_of(id) != keys_shard_of(a))
			snprintf(b, 16, "%s", id);
	}
}

/* The value of the MessageSid sid in the number's inbound:sids ("" when none). */
static const char *
sid_state(redisContext *rc, const char *sid, char *buf, size_t size)
{
	char key[KEYS_SHARD_MAX];
	redisReply *r;

	keys_phone(PHONE, KEYS_PH_SIDS, key, sizeof(key));
	r = redisCommand(rc, "HGET %s %s", key, sid);
	snprintf(buf, size, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return buf;
}

/* Starts the notifier of the STOP tests and waits for its mirror of n. */
static void
start_stop_notifier(struct it_one *f, long n)
{
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-stop",
	    "public_url = " PUBLIC_URL "\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	wait_mirror(n);
}

struct want_texts {
	struct it_one *f;
	const char *to;
	int want;
};

/* 1 when gwsim accepted at least w->want texts to w->to. */
static int
texts_to_reached(void *arg)
{
	struct want_texts *w = arg;
	cJSON *reqs = it_gwsim_requests(&w->f->gw);
	int n = it_gwsim_accepted_to(reqs, w->to);

	cJSON_Delete(reqs);
	return n >= w->want;
}

/*
 * A STOP whose notifier dies (as under kill -9) after each of its steps in turn
 * (docs/sharding.md 4f: the number's begin, each shard, the number's done) is not
 * answered 200, and Twilio's retry of it to a notifier started again finishes it:
 * both subscribers of the number, in two shards, opted out with one consent event
 * each (a shard done before the crash is not done twice), the number suppressed,
 * the MessageSid applied, and at most one confirmation text.
 */
static void
a_stop_cut_short_by_a_crash_is_finished_by_its_retry(void **state)
{
	struct it_one *f = *state;
	static const char *const faults[] = { "hooks.begin.kill@1", "hooks.shards.kill@1",
	    "hooks.shards.kill@2", "hooks.done.kill@1" };
	char a[16], b[16], line[2048], sid[40], st[128], key[KEYS_SHARD_MAX];
	size_t i;

	two_shards("c", a, b);
	snprintf(line, sizeof(line), "%s\n", sub_json(a, 7001));
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n", sub_json(b, 7001));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	start_stop_notifier(f, 2);
	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		struct want_texts want = { f, PHONE, 0 };
		long long ev_a, ev_b;
		cJSON *reqs;
		int texts, status;

		/* Consent given back, the confirmation due again. */
		snprintf(sid, sizeof(sid), "SM%032zu", 100 + i);
		assert_int_equal(sms_in(sid, PHONE, "START"), 200);
		assert_int_equal(has_sms_consent(f->rc, a), 1);
		snprintf(sid, sizeof(sid), "SM%032zu", 900 + i);
		ev_a = it_consent_events(f->rc, a);
		ev_b = it_consent_events(f->rc, b);
		keys_phone(PHONE, KEYS_PH_ACK, key, sizeof(key));
		it_int(f->rc, "DEL %s", key);
		reqs = it_gwsim_requests(&f->gw);
		texts = it_gwsim_accepted_to(reqs, PHONE);
		cJSON_Delete(reqs);

		it_stop(&f->nt.proc, SIGTERM, WAIT_MS);
		setenv("DP_FAULTS", faults[i], 1);
		start_stop_notifier(f, 2);
		unsetenv("DP_FAULTS");
		assert_int_not_equal(sms_in(sid, PHONE, "STOP"), 200);
		status = it_stop(&f->nt.proc, 0, WAIT_MS);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 137);
		/* Cut short: the sid is pending, the number already suppressed. */
		assert_non_null(strstr(sid_state(f->rc, sid, st, sizeof(st)),
		    i < 3 ? "pending\t" : "\t"));
		keys_phone(PHONE, KEYS_PH_SUPPRESSED, key, sizeof(key));
		assert_int_equal(it_int(f->rc, "HEXISTS %s %s", key, PHONE), 1);

		start_stop_notifier(f, 2);
		assert_int_equal(sms_in(sid, PHONE, "STOP"), 200);
		assert_int_equal(has_sms_consent(f->rc, a), 0);
		assert_int_equal(has_sms_consent(f->rc, b), 0);
		assert_int_equal(it_consent_events(f->rc, a), ev_a + 1);
		assert_int_equal(it_consent_events(f->rc, b), ev_b + 1);
		assert_null(strstr(sid_state(f->rc, sid, st, sizeof(st)), "pending"));
		assert_string_not_equal(st, "");
		/* One confirmation, by the run that finished the message; none when the
		 * crash came after the number's done step (it decided the confirmation,
		 * whose text died with the process: never sent twice, docs/inbound.md). */
		want.want = texts + (i < 3);
		assert_true(it_wait(texts_to_reached, &want, WAIT_MS));
		it_sleep_ms(300);
		reqs = it_gwsim_requests(&f->gw);
		assert_int_equal(it_gwsim_accepted_to(reqs, PHONE), texts + (i < 3));
		cJSON_Delete(reqs);
	}
}

struct unfinished {
	struct it_one *f;
	const char *a, *b, *sid;
};

/* 1 once both subscribers are opted out and the message is applied. */
static int
finished(void *arg)
{
	struct unfinished *u = arg;
	char st[128];

	return has_sms_consent(u->f->rc, u->a) == 0 && has_sms_consent(u->f->rc, u->b) == 0 &&
	    strncmp(sid_state(u->f->rc, u->sid, st, sizeof(st)), "pending", 7) != 0 &&
	    st[0] != '\0';
}

/*
 * A STOP whose notifier died after its first shard step, and which Twilio does not
 * send again (it retries only when told to): the notifier started again finishes it
 * by itself after [inbound] finish_after_s (hooks_pending.c), the second shard's
 * subscriber opted out too, the message applied, nothing left pending, and the
 * confirmation text sent once.
 */
static void
a_stop_cut_short_and_never_retried_is_finished_by_the_notifier(void **state)
{
	struct it_one *f = *state;
	char a[16], b[16], line[2048], key[KEYS_SHARD_MAX];
	const char *sid = "SM00000000000000000000000000000555";
	struct unfinished u = { f, a, b, sid };
	struct want_texts w = { f, PHONE, 1 };
	cJSON *reqs;
	int status;

	two_shards("u", a, b);
	snprintf(line, sizeof(line), "%s\n", sub_json(a, 7001));
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n", sub_json(b, 7001));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	setenv("DP_FAULTS", "hooks.shards.kill@1", 1);
	start_stop_notifier(f, 2);
	unsetenv("DP_FAULTS");
	assert_int_not_equal(sms_in(sid, PHONE, "STOP"), 200);
	status = it_stop(&f->nt.proc, 0, WAIT_MS);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 137);
	/* Cut short: one shard's subscriber still has consent. */
	assert_int_equal(has_sms_consent(f->rc, a) + has_sms_consent(f->rc, b), 1);
	keys_phone(PHONE, KEYS_PH_PENDING, key, sizeof(key));
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", key, sid), 1);
	/* Started again, and no retry is sent. */
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-stop",
	    "public_url = " PUBLIC_URL "\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\nshards = 4\n[inbound]\nfinish_after_s = 1\n");
	assert_true(http_port > 0);
	assert_true(it_wait(finished, &u, WAIT_MS));
	assert_int_equal(it_int(f->rc, "HLEN %s", key), 0);
	assert_true(it_wait(texts_to_reached, &w, WAIT_MS));
	it_sleep_ms(1500);          /* a tick or two more: nothing finished twice */
	reqs = it_gwsim_requests(&f->gw);
	assert_int_equal(it_gwsim_accepted_to(reqs, PHONE), 1);
	cJSON_Delete(reqs);
	assert_int_equal(it_consent_events(f->rc, a), 2);   /* the import's, the STOP's */
	assert_int_equal(it_consent_events(f->rc, b), 2);
	assert_true(it_log_line(f->nt.proc.log, "event=inbound_finished") > 0);
}

/* it_eval, an error reply failing the test. */
static redisReply *
eval_script(redisContext *rc, const char *name, const char *const *keys,
    const char *const *args)
{
	redisReply *r = it_eval(rc, name, keys, args);

	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("%s.lua: %s", name, r->str);
	return r;
}

/* The two halves of an import of sub (JSON json, number number) as
 * notifier/subbulk.c runs them, with a STOP from the number's sid between them when
 * sid is not NULL: the id added to the phone index (the entry it reads kept), then
 * admin_sub_bulk.lua with that entry. Returns the store's kept-out channels ("" when
 * none), into out. */
static const char *
import_racing_a_stop(struct it_one *f, const char *sub, const char *json,
    const char *number, const char *sid, char *out, size_t size)
{
	char ix[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX], stops[KEYS_SHARD_MAX];
	char sk[KEYS_SUB_NKEYS][KEYS_SHARD_MAX], entry[256];
	redisReply *r;

	assert_int_equal(phoneix_keys(PHONEIX_PHONE, number, ix, sup), 0);
	{
		const char *keys[] = { sup, ix, NULL };
		const char *args[] = { "add", "2", number, sub, NULL };

		r = eval_script(f->rc, "phone_index", keys, args);
		assert_true(r->type == REDIS_REPLY_ARRAY && r->elements == 1);
		snprintf(entry, sizeof(entry), "%s", r->element[0]->str);
		freeReplyObject(r);
	}
	if (sid != NULL)
		assert_int_equal(sms_in(sid, number, "STOP"), 200);
	assert_int_equal(keys_sub_keys(keys_shard_of(sub), sk), 0);
	assert_true(keys_shard_key(keys_shard_of(sub), KEYS_STOPS, stops, sizeof(stops)) > 0);
	{
		const char *keys[] = { sk[0], sk[1], sk[2], sk[3], stops, sk[4 + CH_SMS],
		    sk[4 + CH_DM], NULL };
		const char *args[] = { "1767400000", "import", sub, json, number, entry,
		    "1767348000", "", NULL };

		r = eval_script(f->rc, "admin_sub_bulk", keys, args);
		assert_true(r->type == REDIS_REPLY_ARRAY && r->elements >= 3);
		assert_int_equal(r->element[0]->integer, 1);
		snprintf(out, size, "%s", r->elements == 5 ? r->element[4]->str : "");
		freeReplyObject(r);
	}
	return out;
}

/*
 * A write racing a STOP (docs/sharding.md 4f): a write adds its subscriber to the
 * phone index and reads the number's suppression entry (none yet), the STOP comes,
 * then the write stores the subscriber with a consent older than the STOP. The STOP
 * found the id in the index, though neither the store nor the mirror had the
 * subscriber with that number, and kept the opt-out in the id's shard (stops): the
 * store keeps SMS consent out and says so, and the number is never texted. Both for
 * a new subscriber and for one whose number the write changes. Each half of the
 * write is its own script here, run as notifier/subbulk.c runs them, so that the STOP
 * lands in between.
 */
static void
a_stop_between_a_writes_index_and_its_store_keeps_consent_out(void **state)
{
	struct it_one *f = *state;
	char json[1200], kept[64], line[1200];

	/* A subscriber of another number, who gets the deal at the end. */
	snprintf(line, sizeof(line), "%s\n", sub_json("ctl-1", 7010));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	start_stop_notifier(f, 1);
	/* race-2, stored with the number 7011 (its consent events dated before the
	 * notifier's clock, which the tests set), which a write will change to 7012. */
	snprintf(json, sizeof(json), "%s", sub_json("race-2", 7011));
	assert_string_equal(import_racing_a_stop(f, "race-2", json, "+15125567011", NULL,
	    kept, sizeof(kept)), "");
	/* A new subscriber. */
	snprintf(json, sizeof(json), "%s", sub_json("race-1", 7009));
	assert_string_equal(import_racing_a_stop(f, "race-1", json, "+15125567009",
	    "SM00000000000000000000000000000077", kept, sizeof(kept)), "sms");
	assert_int_equal(has_sms_consent(f->rc, "race-1"), 0);
	/* A subscriber given a new number. */
	snprintf(json, sizeof(json), "%s", sub_json("race-2", 7012));
	assert_string_equal(import_racing_a_stop(f, "race-2", json, "+15125567012",
	    "SM00000000000000000000000000000078", kept, sizeof(kept)), "sms");
	assert_int_equal(has_sms_consent(f->rc, "race-2"), 0);
	/* The control: the same write with no STOP between keeps its consent. */
	snprintf(json, sizeof(json), "%s", sub_json("race-3", 7013));
	assert_string_equal(import_racing_a_stop(f, "race-3", json, "+15125567013", NULL,
	    kept, sizeof(kept)), "");
	assert_int_equal(has_sms_consent(f->rc, "race-3"), 1);
	/* A deal for everyone: the other numbers get it, these nothing (nor a
	 * confirmation: no subscriber was stored with the number when it said STOP). */
	wait_mirror(4);
	{
		struct want_texts w = { f, "+15125567013", 1 };
		cJSON *reqs;

		assert_int_equal(it_publish(f->rc, it_deal("race-d", "laptop", 600)), 0);
		assert_true(it_wait(texts_to_reached, &w, WAIT_MS));
		it_sleep_ms(300);
		reqs = it_gwsim_requests(&f->gw);
		assert_int_equal(it_gwsim_accepted_to(reqs, "+15125567010"), 1);
		assert_int_equal(it_gwsim_accepted_to(reqs, "+15125567009"), 0);
		assert_int_equal(it_gwsim_accepted_to(reqs, "+15125567012"), 0);
		cJSON_Delete(reqs);
	}
}

/* A subscriber given a number a moment before a STOP from it is opted out with the
 * others of that number: the phone index built for an earlier message would lack it
 * for up to a second, so a lookup also looks at what the mirror changed since the
 * index was built. */
static void
a_stop_reaches_a_subscriber_added_a_moment_before(void **state)
{
	struct it_one *f = *state;
	static struct it_resp resp;
	char line[2048];

	snprintf(line, sizeof(line), "%s\n", sub_json("p-1", 7001));
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n",
	    sub_json("q-1", 7002));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-late",
	    "public_url = " PUBLIC_URL "\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	wait_mirror(2);
	/* A STOP from the other number builds the index. */
	assert_int_equal(sms_in("SM00000000000000000000000000000011", "+15125567002",
	    "STOP"), 200);
	assert_int_equal(has_sms_consent(f->rc, "q-1"), 0);
	/* A second subscriber of PHONE, then at once a STOP from PHONE. */
	assert_int_equal(api("PUT", "/v1/subscribers/p-2", sub_json("p-2", 7001), &resp),
	    201);
	wait_mirror(3);
	assert_int_equal(sms_in("SM00000000000000000000000000000012", PHONE, "STOP"), 200);
	assert_int_equal(has_sms_consent(f->rc, "p-1"), 0);
	assert_int_equal(has_sms_consent(f->rc, "p-2"), 0);
}

/* ---- increment 3: the keys of every push in its subscriber's shard ---- */

#define CLICK_SECRET "0123456789abcdef0123456789abcdef"
#define FUN_SUBS 40

struct fun {
	struct it_one *f;
	int http;
	char dir[512];
	const char *ids[FUN_SUBS];
};

/* The admin API's answer to GET path (200 wanted); the caller deletes it. */
static cJSON *
api_json(int port, const char *path)
{
	static struct it_resp resp;
	cJSON *j;

	assert_int_equal(it_http(port, "GET", path, "Authorization: Bearer " TOKEN "\r\n",
	    NULL, 0, &resp), 200);
	assert_non_null(j = cJSON_Parse(resp.body));
	return j;
}

/* A report member, -1 when the report has none yet. */
static double
report_num(int port, const char *kind, const char *name, const char *member)
{
	static struct it_resp resp;
	char path[256];
	const cJSON *v;
	cJSON *j;
	double x = -1;

	snprintf(path, sizeof(path), "/v1/reports/%s/%s", kind, name);
	if (it_http(port, "GET", path, "Authorization: Bearer " TOKEN "\r\n", NULL, 0,
	    &resp) != 200 || (j = cJSON_Parse(resp.body)) == NULL)
		return -1;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, member)))
		x = v->valuedouble;
	cJSON_Delete(j);
	return x;
}

/* Sum over the shards of HLEN of the per-deal key name of deal. */
static long long
hlen_all(redisContext *rc, enum keys_per name, const char *deal)
{
	char key[KEYS_MAX];
	long long n = 0;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		keys_per(k, name, deal, key, sizeof(key));
		n += it_int(rc, "HLEN %s", key);
	}
	return n;
}

/* HGET of a push's field ("<sub>:sms") in its shard's per-deal key name; into out. */
static const char *
push_field(redisContext *rc, enum keys_per name, const char *deal, const char *sub,
    char *out, size_t size)
{
	char key[KEYS_MAX];
	redisReply *r;

	keys_per(keys_shard_of(sub), name, deal, key, sizeof(key));
	r = redisCommand(rc, "HGET %s %s:sms", key, sub);
	snprintf(out, size, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return out;
}

struct fun_want {
	struct fun *u;
	long long n;
};

static int
fun_all_final(void *arg)
{
	struct fun_want *w = arg;
	long long held = hlen_all(w->u->f->rc, KEYS_HOLDOUT, "sd");

	return held > 0 && it_outcomes(w->u->f->rc, "sent") + held >= w->n;
}

static int
fun_delivered(void *arg)
{
	struct fun *u = arg;
	double sent = report_num(u->http, "deal", "sd", "sent");

	return sent > 0 && report_num(u->http, "deal", "sd", "delivered") >= sent;
}

/* Every conversion read and acked: the group's pending list empty and its last id
 * the stream's last. */
static int
conversions_settled(void *arg)
{
	struct fun *u = arg;
	redisReply *last = redisCommand(u->f->rc, "XREVRANGE conversions + - COUNT 1");
	redisReply *g = redisCommand(u->f->rc, "XINFO GROUPS conversions");
	int ok = 0;
	size_t i;

	if (last != NULL && last->type == REDIS_REPLY_ARRAY && last->elements == 1 &&
	    g != NULL && g->type == REDIS_REPLY_ARRAY && g->elements == 1) {
		redisReply *e = g->element[0];
		const char *ld = NULL;
		long long pending = -1;

		for (i = 0; i + 1 < e->elements; i += 2) {
			if (strcmp(e->element[i]->str, "pending") == 0)
				pending = e->element[i + 1]->integer;
			else if (strcmp(e->element[i]->str, "last-delivered-id") == 0)
				ld = e->element[i + 1]->str;
		}
		ok = pending == 0 && ld != NULL &&
		    strcmp(ld, last->element[0]->element[0]->str) == 0;
	}
	freeReplyObject(last);
	freeReplyObject(g);
	return ok;
}

/* The short link code in the text gwsim got for phone ("" when none). */
static void
token_for(const struct it_gwsim *g, const char *phone, char *tok, size_t size)
{
	cJSON *reqs = it_gwsim_requests(g), *o;

	tok[0] = '\0';
	cJSON_ArrayForEach(o, reqs) {
		const cJSON *to = cJSON_GetObjectItem(o, "to");
		const cJSON *b = cJSON_GetObjectItem(o, "body");
		const char *c;

		if (!cJSON_IsString(to) || !cJSON_IsString(b) ||
		    strcmp(to->valuestring, phone) != 0 ||
		    (c = strstr(b->valuestring, "/c/")) == NULL)
			continue;
		c += 3;
		snprintf(tok, size, "%.*s", (int)strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789_-"), c);
	}
	cJSON_Delete(reqs);
}

static void
conversion(redisContext *rc, const char *order, double revenue, const char *kind,
    const char *val)
{
	redisReply *r = redisCommand(rc, "XADD conversions * conversion "
	    "{\"deal_id\":\"sd\",\"order_id\":\"%s\",\"revenue\":%g,\"currency\":\"USD\","
	    "\"%s\":\"%s\"}", order, revenue, kind, val);

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
}

/* 1 when a and b hold the same members with the same values (numbers to 1e-9,
 * whatever the order of an object's members). */
static int
json_same(const cJSON *a, const cJSON *b)
{
	const cJSON *x, *y;

	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return fabs(a->valuedouble - b->valuedouble) <=
		    1e-9 * (fabs(a->valuedouble) + 1);
	if ((a->type & 0xff) != (b->type & 0xff))
		return 0;
	if (cJSON_IsString(a))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (cJSON_IsObject(a)) {
		if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
			return 0;
		cJSON_ArrayForEach(x, a) {
			if ((y = cJSON_GetObjectItemCaseSensitive(b, x->string)) == NULL ||
			    !json_same(x, y)) {
				fprintf(stderr, "# member %s differs\n", x->string);
				return 0;
			}
		}
		return 1;
	}
	if (cJSON_IsArray(a)) {
		int i, n = cJSON_GetArraySize(a);

		if (n != cJSON_GetArraySize(b))
			return 0;
		for (i = 0; i < n; i++)
			if (!json_same(cJSON_GetArrayItem(a, i), cJSON_GetArrayItem(b, i)))
				return 0;
		return 1;
	}
	return 1;
}

/*
 * One deal with a code pool and a 20% holdout to FUN_SUBS subscribers, with Twilio's
 * status callbacks, three clicks (one twice), conversions by click token, push id,
 * subscriber id and code, a held-out buyer, an unknown buyer and an order posted
 * twice. Answers the reports of the deal, the rule and the campaign and the deal's counts
 * from GET /v1/deals/<id> (the caller
 * deletes them) and dealpushctl's table of the deal's into table.
 */
static void
fun_run(struct it_one *f, int sharded, cJSON *out[4], char *table, size_t tsize)
{
	static const char *const gwflags[] = { "--status-callbacks", "--callback-delay-ms",
	    "10", NULL };
	struct fun u = { f, 0, "", { NULL } };
	struct fun_want all = { &u, FUN_SUBS };
	char path[1200], extra[2048], tok[3][512], phone[32], code[64], entry[64], v[256];
	char bin[512], url[128], id[16];
	const char *t[4], *held = NULL;
	int i, nt = 0;
	FILE *fp;
	redisReply *r;

	it_path(u.dir, sizeof(u.dir), "rules-shard", "");
	mkdir(u.dir, 0755);
	snprintf(path, sizeof(path), "%s/shr.rules", u.dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("rule shr\n  when deal.category = \"laptop\"\n  audience all\n  send sms\n"
	    "  holdout 20%\n  template sms \"{title} code {code} {link} Reply STOP to end\"\n"
	    "end\n", fp);
	fclose(fp);
	it_import_audience(f->port, FUN_SUBS, 4000, "laptop");
	for (i = 0; i < 60; i++)
		freeReplyObject(redisCommand(f->rc, "SADD codes:sd C-%02d", i));
	assert_int_equal(it_gwsim_start(&f->gw, gwflags), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	setenv("DP_TEST_CLICK_SECRET", CLICK_SECRET, 1);
	u.http = it_free_port();
	assert_true(u.http > 0);
	/* The first line is the harness' [gateway twilio] section's. */
	snprintf(extra, sizeof(extra), "status_callback_base = http://127.0.0.1:%d\n"
	    "[http]\nport = %d\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "public_url = http://127.0.0.1:%d\nclick_secret_env = DP_TEST_CLICK_SECRET\n"
	    "[rules]\ndir = %s\n%s", u.http, u.http, u.http, u.dir,
	    sharded ? "[redis]\nshards = 4\n" : "");
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-shard-fun",
	    extra), 0);
	http_port = u.http;
	for (i = 0; i < 400 && mirror_size() != FUN_SUBS; i++)
		it_sleep_ms(25);
	assert_int_equal(mirror_size(), FUN_SUBS);
	snprintf(v, sizeof(v), "{\"id\":\"sd\",\"title\":\"Dell 14\",\"category\":\"laptop\","
	    "\"url\":\"https://shop.example/d/sd\",\"campaign\":\"cmp\","
	    "\"code_pool\":\"codes:sd\",\"expires_at\":%lld}", it_now() + 3600);
	assert_int_equal(it_publish(f->rc, v), 0);
	assert_true(it_wait(fun_all_final, &all, WAIT_MS));
	assert_true(it_wait(fun_delivered, &u, WAIT_MS));

	/* Four treated subscribers (in as many shards as there are) and a held one. */
	for (i = 0; i < FUN_SUBS; i++) {
		static char ids[FUN_SUBS][16];
		int j, dup = 0;

		snprintf(ids[i], sizeof(ids[i]), "s-%d", i);
		if (hlen_all(f->rc, KEYS_HOLDOUT, "sd") > 0) {
			char hk[KEYS_MAX];

			keys_per(keys_shard_of(ids[i]), KEYS_HOLDOUT, "sd", hk, sizeof(hk));
			if (it_int(f->rc, "HEXISTS %s %s", hk, ids[i]) == 1) {
				if (held == NULL)
					held = ids[i];
				continue;
			}
		}
		for (j = 0; j < nt; j++)
			dup |= keys_shard_of(t[j]) == keys_shard_of(ids[i]);
		if (nt < 4 && (!dup || i > FUN_SUBS / 2))
			t[nt++] = ids[i];
	}
	assert_int_equal(nt, 4);
	assert_non_null(held);

	/* Clicks: t[0] twice, t[1] and t[2] once. */
	for (i = 0; i < 3; i++) {
		static struct it_resp resp;

		snprintf(phone, sizeof(phone), "+1512555%04d", 4000 + atoi(t[i] + 2));
		token_for(&f->gw, phone, tok[i], sizeof(tok[i]));
		assert_true(tok[i][0] != '\0');
		snprintf(path, sizeof(path), "/c/%.511s", tok[i]);
		assert_int_equal(it_http(u.http, "GET", path, NULL, NULL, 0, &resp), 302);
		if (i == 0)
			assert_int_equal(it_http(u.http, "GET", path, NULL, NULL, 0, &resp), 302);
	}
	/* Conversions: by click token, push id, subscriber id and code (the code t[3]'s
	 * push sent); a held-out buyer; an unknown buyer; o-1 again. */
	r = redisCommand(f->rc, "XRANGE deals - + COUNT 1");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	snprintf(entry, sizeof(entry), "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
	/* A conversion names a push by its long click token (a short code is a link,
	 * not a conversion key): t[0]'s. */
	snprintf(v, sizeof(v), "%s:%s:sms", entry, t[0]);
	assert_int_equal(clicktok_make((const unsigned char *)CLICK_SECRET,
	    strlen(CLICK_SECRET), v, tok[0], sizeof(tok[0])), 0);
	conversion(f->rc, "o-1", 30, "click_token", tok[0]);
	snprintf(v, sizeof(v), "%s:%s:sms", entry, t[1]);
	conversion(f->rc, "o-2", 20, "push_id", v);
	conversion(f->rc, "o-3", 10, "subscriber_id", t[2]);
	push_field(f->rc, KEYS_CODE, "sd", t[3], code, sizeof(code));
	assert_true(code[0] != '\0');
	conversion(f->rc, "o-4", 40.5, "code", code);
	conversion(f->rc, "o-5", 7, "subscriber_id", held);
	conversion(f->rc, "o-6", 3, "subscriber_id", "nobody");
	conversion(f->rc, "o-1", 30, "click_token", tok[0]);
	assert_true(it_wait(conversions_settled, &u, WAIT_MS));
	assert_int_equal(it_int(f->rc, "XLEN %s", CONV_DEAD), 0);

	out[0] = api_json(u.http, "/v1/reports/deal/sd");
	out[1] = api_json(u.http, "/v1/reports/rule/shr");
	out[2] = api_json(u.http, "/v1/reports/campaign/cmp");
	/* The deal's state and counts (GET /v1/deals/<id>), summed over the shards too;
	 * its entry and expiry differ from run to run, its counts must not. */
	{
		cJSON *st = api_json(u.http, "/v1/deals/sd");

		assert_string_equal(cJSON_GetObjectItem(st, "state")->valuestring, "done");
		out[3] = cJSON_DetachItemFromObject(st, "counts");
		cJSON_Delete(st);
		assert_int_equal(cJSON_GetObjectItem(out[3], "redeemed")->valueint, 4);
	}
	assert_int_equal(cJSON_GetObjectItem(out[0], "redeemed")->valueint, 4);
	assert_int_equal(cJSON_GetObjectItem(out[0], "clicked")->valueint, 3);
	assert_int_equal(cJSON_GetObjectItem(out[0], "unattributed")->valueint, 1);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", u.http);
	{
		const char *argv[] = { bin, "--api", url, "--token", TOKEN, "report", "deal",
			"sd", NULL };

		assert_int_equal(it_run(argv, table, tsize), 0);
	}
	/* dealpushctl convert finds each conversion's outcome wherever the notifier
	 * recorded it (the order's record is in the shard it was attributed in). */
	{
		char file[512], addr[64], cout[2048];
		const char *argv[] = { bin, "--redis", addr, "convert", file, NULL };
		FILE *cf;

		it_path(file, sizeof(file), "convert-dup", ".jsonl");
		assert_non_null(cf = fopen(file, "w"));
		fprintf(cf, "{\"deal_id\":\"sd\",\"order_id\":\"o-6\",\"revenue\":3,"
		    "\"currency\":\"USD\",\"subscriber_id\":\"nobody\"}\n");
		fclose(cf);
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", it_redis_port());
		it_run(argv, cout, sizeof(cout));
		if (strstr(cout, ": duplicate (the order was counted by entry ") == NULL)
			fail_msg("dealpushctl convert said: %s", cout);
	}
	/* Each subscriber texted once, each held one not at all. */
	{
		cJSON *reqs = it_gwsim_requests(&f->gw);

		for (i = 0; i < FUN_SUBS; i++) {
			char hk[KEYS_MAX];

			snprintf(id, sizeof(id), "s-%d", i);
			snprintf(phone, sizeof(phone), "+1512555%04d", 4000 + i);
			keys_per(keys_shard_of(id), KEYS_HOLDOUT, "sd", hk, sizeof(hk));
			assert_int_equal(it_gwsim_accepted_to(reqs, phone),
			    it_int(f->rc, "HEXISTS %s %s", hk, id) == 1 ? 0 : 1);
		}
		cJSON_Delete(reqs);
	}
	if (!sharded)
		return;
	/* Sharded: every push's keys in its subscriber's shard, in all four shards, and
	 * no key of the single-instance names. */
	for (i = 0; i < SHARDS; i++) {
		char k[KEYS_MAX];

		keys_per((uint32_t)i, KEYS_PUSH, "sd", k, sizeof(k));
		assert_true(it_int(f->rc, "HLEN %s", k) > 0);
		keys_per((uint32_t)i, KEYS_REPORT_DEAL, "sd", k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
		keys_shard_key((uint32_t)i, KEYS_STATS, k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
		keys_shard_key((uint32_t)i, KEYS_PUSHES_LOG, k, sizeof(k));
		assert_true(it_int(f->rc, "XLEN %s", k) > 0);
	}
	for (i = 0; i < 4; i++) {
		assert_string_equal(push_field(f->rc, KEYS_PUSH, "sd", t[i], v, sizeof(v)),
		    "sent");
		assert_true(push_field(f->rc, KEYS_PUSHINFO, "sd", t[i], v, sizeof(v))[0] !=
		    '\0');
		assert_true(push_field(f->rc, KEYS_DELIVERY, "sd", t[i], v, sizeof(v))[0] !=
		    '\0');
	}
	{
		char k[KEYS_MAX];

		keys_per(keys_shard_of(t[3]), KEYS_CODEPUSH, code, k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
		/* The pool's out names the reservation, and so the shard, that took it. */
		{
			char want[32];
			redisReply *o = redisCommand(f->rc, "HGET {codes:sd}:out %s", code);

			snprintf(want, sizeof(want), "sd\t%u\t", (unsigned)keys_shard_of(t[3]));
			assert_non_null(o);
			assert_int_equal(o->type, REDIS_REPLY_STRING);
			assert_int_equal(strncmp(o->str, want, strlen(want)), 0);
			freeReplyObject(o);
		}
		keys_per(keys_shard_of(t[0]), KEYS_ORDER, "o-1", k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
		keys_per(keys_shard_of("nobody"), KEYS_ORDER, "o-6", k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
	}
	assert_int_equal(it_int(f->rc, "EXISTS push:sd code:sd pushinfo:sd pushline:sd "
	    "delivery:sd holdout:sd report:deal:sd report:rule:shr report:campaign:cmp "
	    "stats pushes:log delayed resolve:due codepush:%s order:o-1", code), 0);
}

/* The same events on one Redis without a layout and with 4 shards: every report the
 * API answers (summed over the shards) and dealpushctl's table are the same. */
static void
reports_summed_over_shards_equal_the_single_instance_ones(void **state)
{
	struct it_one *f = *state;
	cJSON *one[4], *four[4];
	char *t1 = malloc(8192), *t4 = malloc(8192);
	int i;

	assert_non_null(t1);
	assert_non_null(t4);
	/* The single-instance layout first: setup stored a layout, which goes. */
	layout_clear();
	it_flush(f->rc);
	fun_run(f, 0, one, t1, 8192);
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	it_stop(&f->gw.proc, SIGTERM, 2000);
	memset(&f->nt, 0, sizeof(f->nt));
	memset(&f->gw, 0, sizeof(f->gw));
	it_flush(f->rc);
	assert_int_equal(setup_layout(), 0);
	fun_run(f, 1, four, t4, 8192);
	for (i = 0; i < 4; i++) {
		char *a = cJSON_PrintUnformatted(one[i]), *b = cJSON_PrintUnformatted(four[i]);

		if (!json_same(one[i], four[i]))
			fail_msg("report %d differs:\n one Redis: %s\n 4 shards:  %s", i, a, b);
		free(a);
		free(b);
		cJSON_Delete(one[i]);
		cJSON_Delete(four[i]);
	}
	assert_string_equal(t1, t4);
	free(t1);
	free(t4);
}

/* A cancel in the middle of a fan-out over 4 shards: every push not yet sent is
 * cancelled, in every shard; nothing is sent twice. */
static void
a_cancel_midway_stops_every_shard(void **state)
{
	struct it_one *f = *state;
	const char *flags[] = { "--latency-ms", "20", NULL };
	struct gw_want some = { &f->gw, 10 };
	long long sent, cancelled, n = 0;
	cJSON *reqs;
	char phone[32], k[KEYS_MAX];
	uint32_t s;
	int i;

	it_import_audience(f->port, 120, 5000, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-cancel",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[redis]\nshards = 4\n"
	    "[deliver]\nmax_in_flight = 4\n[ingest]\njob_size = 10\n");
	assert_true(http_port > 0);
	wait_mirror(120);
	assert_int_equal(it_publish(f->rc, it_deal("cancel-me", "laptop", 600)), 0);
	assert_true(it_wait(gw_reached, &some, WAIT_MS));
	assert_int_equal(it_publish(f->rc, "{\"id\": \"cancel-me\", \"cancel\": true}"), 0);
	for (i = 0; i < 400 && n < 120; i++) {
		it_sleep_ms(25);
		n = it_outcomes(f->rc, "");
	}
	assert_int_equal(n, 120);
	it_sleep_ms(300);
	sent = it_outcomes(f->rc, "sent");
	cancelled = it_outcomes(f->rc, "cancelled");
	assert_int_equal(sent + cancelled, 120);
	assert_true(cancelled > 0);
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < 120; i++) {
		snprintf(phone, sizeof(phone), "+1512555%04d", 5000 + i);
		assert_true(it_gwsim_accepted_to(reqs, phone) <= 1);
	}
	cJSON_Delete(reqs);
	assert_int_equal(it_gwsim_count(&f->gw, 201), sent);
	/* The cancelled pushes are in every shard's states. */
	for (s = 0; s < SHARDS; s++) {
		redisReply *r;
		size_t j;
		long long c = 0;

		keys_per(s, KEYS_PUSH, "cancel-me", k, sizeof(k));
		r = redisCommand(f->rc, "HVALS %s", k);
		assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0);
		for (j = 0; j < r->elements; j++)
			c += strcmp(r->element[j]->str, "cancelled") == 0;
		freeReplyObject(r);
		assert_true(c > 0);
	}
	assert_int_equal(it_int(f->rc, "EXISTS push:cancel-me pushes:log stats"), 0);
}

/* Quiet hours in every shard: pushes made at night wait in their shard's delayed
 * set and all go out, once each, when a notifier runs in the morning. */
static void
quiet_hours_pushes_in_every_shard_are_released(void **state)
{
	struct it_one *f = *state;
	/* 22:30 CST; 08:00 CST the next morning (as test_deliver.c). */
	long long night = it_now() - it_now() % 86400 + 86400 + 4 * 3600 + 1800;
	long long morning = night - 1800 + 10 * 3600;
	char conf[256], deal[512], k[KEYS_MAX];
	long long waiting = 0, n = 0;
	cJSON *reqs;
	uint32_t s;
	int i;

	it_import_audience(f->port, 20, 6000, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	snprintf(conf, sizeof(conf), "[notifier]\nclock_offset_s = %lld\n[redis]\nshards = 4\n",
	    night - (long long)time(NULL));
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-shard-night",
	    conf), 0);
	snprintf(deal, sizeof(deal), "{\"id\": \"overnight\", \"title\": \"Deal\", "
	    "\"category\": \"laptop\", \"price\": 10, \"url\": \"https://x.example/o\", "
	    "\"expires_at\": %lld}", morning + 3600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	for (i = 0; i < 400 && waiting < 20; i++) {
		it_sleep_ms(25);
		waiting = 0;
		for (s = 0; s < SHARDS; s++) {
			keys_shard_key(s, KEYS_DELAYED, k, sizeof(k));
			waiting += it_int(f->rc, "ZCARD %s", k);
		}
	}
	assert_int_equal(waiting, 20);
	for (s = 0; s < SHARDS; s++) {
		keys_shard_key(s, KEYS_DELAYED, k, sizeof(k));
		assert_true(it_int(f->rc, "ZCARD %s", k) > 0);
	}
	assert_int_equal(it_int(f->rc, "EXISTS delayed"), 0);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);

	/* Morning: every shard's waiting pushes go out, once each. */
	assert_int_equal(it_stop(&f->nt.proc, SIGTERM, 5000), 0);
	snprintf(conf, sizeof(conf), "[notifier]\nclock_offset_s = %lld\n[redis]\nshards = 4\n",
	    morning + 60 - (long long)time(NULL));
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-shard-night",
	    conf), 0);
	for (i = 0; i < 600 && n < 20; i++) {
		it_sleep_ms(25);
		n = it_outcomes(f->rc, "sent");
	}
	assert_int_equal(n, 20);
	it_sleep_ms(1000);
	for (s = 0; s < SHARDS; s++) {
		keys_shard_key(s, KEYS_DELAYED, k, sizeof(k));
		assert_int_equal(it_int(f->rc, "ZCARD %s", k), 0);
	}
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < 20; i++) {
		char phone[32];

		snprintf(phone, sizeof(phone), "+1512555%04d", 6000 + i);
		assert_int_equal(it_gwsim_accepted_to(reqs, phone), 1);
	}
	cJSON_Delete(reqs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_writer_uses_the_subscribers_shard, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(a_deal_reaches_every_shard_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(a_stop_reaches_every_shard_of_the_number,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(a_stop_cut_short_by_a_crash_is_finished_by_its_retry,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_stop_between_a_writes_index_and_its_store_keeps_consent_out, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_stop_cut_short_and_never_retried_is_finished_by_the_notifier, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(a_stop_reaches_a_subscriber_added_a_moment_before,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(a_gap_in_one_shards_feed_reloads_the_mirror,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    reports_summed_over_shards_equal_the_single_instance_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(a_cancel_midway_stops_every_shard, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(quiet_hours_pushes_in_every_shard_are_released,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
