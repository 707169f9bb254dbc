/*
 * test_shard_store.c: the subscribers stored and mirrored in the sharded layout
 * (docs/sharding.md sections 2 and 6, step 2), on the shared redis-server with a
 * layout of 4 shards.
 *
 * Every way a subscriber is written outside delivery (dealpushctl import and delete,
 * the admin API's put, bulk and delete) writes the keys of the subscriber's shard
 * only, named by notifier/keys.c; the notifier's mirror loads every shard's hash and
 * follows every shard's change stream; an id with '{' and '}' stays in its shard.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "ithttp.h"
#include "itest.h"
#include "keys.h"
#include "layout.h"
#include "shard.h"
#include "twsig.h"

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

static int
setup(void **state)
{
	struct err err;
	struct shard_layout *l = shard_layout_new(SHARDS, &err);
	char out[256], bin[512], addr[64];
	const char *argv[] = { bin, "--redis", addr, "layout", "create", "--shards", "4",
		NULL };

	if (l == NULL || it_one_setup(state) < 0)
		return -1;
	/* The layout dealpushctl stores is this one: the tags are deterministic. */
	layout_set(l);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", it_redis_port());
	return it_run(argv, out, sizeof(out)) == 0 ? 0 : -1;
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

	/* Read only from what is left, the mirror would still hold the one deleted. */
	wait_mirror(AUDIENCE);
	keys_shard_key(1, KEYS_SUB_CHANGES, feed, sizeof(feed));
	snprintf(needle, sizeof(needle), "event=subscriber_feed_gap stream=%s", feed);
	assert_true(it_log_line(f->nt.proc.log, needle) > 0);
	assert_true(it_log_line(f->nt.proc.log, "event=subscribers_reload reason=gap") > 0);
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
		cmocka_unit_test_setup_teardown(a_gap_in_one_shards_feed_reloads_the_mirror,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
