/*
 * test_shard_stop.c: an inbound STOP and START (Twilio's webhook) for a number whose
 * subscribers are in several shards (docs/sharding.md 4f, "Inbound STOP / START"),
 * on the shared redis-server with a layout of 4 shards.
 *
 * A STOP opts out every subscriber of the number, each in its shard, and replays
 * change nothing; a STOP cut short by a crash after any of its steps is finished by
 * Twilio's retry, or without one by the notifier itself, each subscriber with one
 * consent event and at most one confirmation text; a STOP landing between a write's
 * phone index step and its store keeps the write's SMS consent out; a subscriber
 * given the number a moment before the STOP is opted out with the others.
 * The rest of the sharded store is test_shard_store.c.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "phoneix.h"
#include "twsig.h"

#define WAIT_MS 15000
#define PUBLIC_URL "https://notify.example.test"
#define PHONE "+15125567001"

static int http_port;

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
	snprintf(line, sizeof(line), "%s\n", it_shard_sub_json(a, 7001));
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n",
	    it_shard_sub_json(b, 7001));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(has_sms_consent(f->rc, a), 1);
	assert_int_equal(has_sms_consent(f->rc, b), 1);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-stop",
	    "public_url = " PUBLIC_URL "\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	IT_SHARD_WAIT_MIRROR(http_port, 2);
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
	IT_SHARD_WAIT_MIRROR(http_port, n);
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
	snprintf(line, sizeof(line), "%s\n", it_shard_sub_json(a, 7001));
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n",
	    it_shard_sub_json(b, 7001));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
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
	snprintf(line, sizeof(line), "%s\n", it_shard_sub_json(a, 7001));
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n",
	    it_shard_sub_json(b, 7001));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
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
	snprintf(line, sizeof(line), "%s\n", it_shard_sub_json("ctl-1", 7010));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	start_stop_notifier(f, 1);
	/* race-2, stored with the number 7011 (its consent events dated before the
	 * notifier's clock, which the tests set), which a write will change to 7012. */
	snprintf(json, sizeof(json), "%s", it_shard_sub_json("race-2", 7011));
	assert_string_equal(import_racing_a_stop(f, "race-2", json, "+15125567011", NULL,
	    kept, sizeof(kept)), "");
	/* A new subscriber. */
	snprintf(json, sizeof(json), "%s", it_shard_sub_json("race-1", 7009));
	assert_string_equal(import_racing_a_stop(f, "race-1", json, "+15125567009",
	    "SM00000000000000000000000000000077", kept, sizeof(kept)), "sms");
	assert_int_equal(has_sms_consent(f->rc, "race-1"), 0);
	/* A subscriber given a new number. */
	snprintf(json, sizeof(json), "%s", it_shard_sub_json("race-2", 7012));
	assert_string_equal(import_racing_a_stop(f, "race-2", json, "+15125567012",
	    "SM00000000000000000000000000000078", kept, sizeof(kept)), "sms");
	assert_int_equal(has_sms_consent(f->rc, "race-2"), 0);
	/* The control: the same write with no STOP between keeps its consent. */
	snprintf(json, sizeof(json), "%s", it_shard_sub_json("race-3", 7013));
	assert_string_equal(import_racing_a_stop(f, "race-3", json, "+15125567013", NULL,
	    kept, sizeof(kept)), "");
	assert_int_equal(has_sms_consent(f->rc, "race-3"), 1);
	/* A deal for everyone: the other numbers get it, these nothing (nor a
	 * confirmation: no subscriber was stored with the number when it said STOP). */
	IT_SHARD_WAIT_MIRROR(http_port, 4);
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

	snprintf(line, sizeof(line), "%s\n", it_shard_sub_json("p-1", 7001));
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n",
	    it_shard_sub_json("q-1", 7002));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-late",
	    "public_url = " PUBLIC_URL "\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	IT_SHARD_WAIT_MIRROR(http_port, 2);
	/* A STOP from the other number builds the index. */
	assert_int_equal(sms_in("SM00000000000000000000000000000011", "+15125567002",
	    "STOP"), 200);
	assert_int_equal(has_sms_consent(f->rc, "q-1"), 0);
	/* A second subscriber of PHONE, then at once a STOP from PHONE. */
	assert_int_equal(it_shard_api(http_port, "PUT", "/v1/subscribers/p-2",
	    it_shard_sub_json("p-2", 7001), &resp), 201);
	IT_SHARD_WAIT_MIRROR(http_port, 3);
	assert_int_equal(sms_in("SM00000000000000000000000000000012", PHONE, "STOP"), 200);
	assert_int_equal(has_sms_consent(f->rc, "p-1"), 0);
	assert_int_equal(has_sms_consent(f->rc, "p-2"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_stop_reaches_every_shard_of_the_number,
		    it_shard_setup, it_shard_teardown),
		cmocka_unit_test_setup_teardown(a_stop_cut_short_by_a_crash_is_finished_by_its_retry,
		    it_shard_setup, it_shard_teardown),
		cmocka_unit_test_setup_teardown(
		    a_stop_between_a_writes_index_and_its_store_keeps_consent_out,
		    it_shard_setup, it_shard_teardown),
		cmocka_unit_test_setup_teardown(
		    a_stop_cut_short_and_never_retried_is_finished_by_the_notifier,
		    it_shard_setup, it_shard_teardown),
		cmocka_unit_test_setup_teardown(a_stop_reaches_a_subscriber_added_a_moment_before,
		    it_shard_setup, it_shard_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
