/*
 * test_privacy.c: a subscriber's data on request (issue 18 item 7), through the API a
 * running notifier serves: the export holds their record, consent history, pushes
 * and replies; the erasure leaves no key or value in Redis that names them or their
 * number, but the proof of consent (hashes and events, with a retention) and the
 * number on the suppression list, on one Redis and on 4 shards, also when it failed
 * half-way and was asked again; they are not texted again, and an import of the same number is kept out; hostile requests change
 * nothing.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"

#define TOKEN "privacy-admin-token-0123456789abcdef"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define ERASED "erase-me-7"
#define PHONE "+15125557071"
#define DIGITS "5125557071"
#define KEPT "keep-me-8"

static int
setup(void **state)
{
	struct it_one *o;

	if (it_one_setup(state) != 0)
		return -1;
	o = *state;
	assert_int_equal(it_gwsim_start(&o->gw, NULL), 0);
	return 0;
}

static int
start(struct it_one *o, const char *more)
{
	char subs[1024], conf[512];
	int port;

	snprintf(subs, sizeof(subs),
	    "{\"id\":\"" ERASED "\",\"phone\":\"" PHONE "\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptops\"]}}\n"
	    "{\"id\":\"" KEPT "\",\"phone\":\"+15125557072\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptops\"]}}\n");
	assert_int_equal(it_import(o->port, subs), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	snprintf(conf, sizeof(conf), "admin_token_env = DP_TEST_ADMIN_TOKEN\n%s",
	    more != NULL ? more : "");
	port = it_notifier_start_http(&o->nt, o->port, o->gw.port, "it-privacy", conf);
	assert_true(port > 0);
	it_sleep_ms(300);
	return port;
}

struct want {
	struct it_one *o;
	int n;
};

static int
sent_n(void *arg)
{
	struct want *w = arg;

	return it_gwsim_count(&w->o->gw, 201) >= w->n;
}

/* Two deals to both subscribers; and a reply from the erased one's number kept for
 * review (a text that is no keyword). */
static void
history(struct it_one *o)
{
	struct want w = { o, 4 };

	assert_int_equal(it_publish(o->rc, it_deal("pv-1", "laptops", 3600)), 0);
	assert_int_equal(it_publish(o->rc, it_deal("pv-2", "laptops", 3600)), 0);
	assert_true(it_wait(sent_n, &w, 20000));
	{
		redisReply *r = redisCommand(o->rc, "XADD replies * from " PHONE " text hello "
		    "received_at 1 reason no_keyword channel sms sid x");

		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_STRING);
		freeReplyObject(r);
	}
}

/* Every key and every value in Redis as text, one line each, into a new string. */
static char *
dump_all(redisContext *rc)
{
	size_t cap = 1 << 20, len = 0;
	char *out = malloc(cap), cursor[32] = "0";

	assert_non_null(out);
	out[0] = '\0';
	do {
		redisReply *r = redisCommand(rc, "SCAN %s COUNT 1000", cursor), *keys;
		size_t i;

		assert_non_null(r);
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		keys = r->element[1];
		for (i = 0; i < keys->elements; i++) {
			const char *k = keys->element[i]->str;
			redisReply *t = redisCommand(rc, "TYPE %s", k), *v;
			size_t j;

			if (strcmp(t->str, "string") == 0)
				v = redisCommand(rc, "GET %s", k);
			else if (strcmp(t->str, "hash") == 0)
				v = redisCommand(rc, "HGETALL %s", k);
			else if (strcmp(t->str, "set") == 0)
				v = redisCommand(rc, "SMEMBERS %s", k);
			else if (strcmp(t->str, "zset") == 0)
				v = redisCommand(rc, "ZRANGE %s 0 -1 WITHSCORES", k);
			else if (strcmp(t->str, "list") == 0)
				v = redisCommand(rc, "LRANGE %s 0 -1", k);
			else
				v = redisCommand(rc, "XRANGE %s - +", k);
			freeReplyObject(t);
			while (len + 4096 + strlen(k) > cap) {
				cap *= 2;
				assert_non_null(out = realloc(out, cap));
			}
			len += (size_t)snprintf(out + len, cap - len, "KEY %s:", k);
			for (j = 0; v != NULL && j < v->elements; j++) {
				const redisReply *e = v->element[j];
				size_t m;

				if (e->type == REDIS_REPLY_ARRAY) {   /* a stream entry */
					for (m = 0; m < e->element[1]->elements; m++) {
						const char *s = e->element[1]->element[m]->str;

						while (len + strlen(s) + 8 > cap)
							assert_non_null(out = realloc(out, cap *= 2));
						len += (size_t)snprintf(out + len, cap - len, " %s", s);
					}
				} else if (e->str != NULL) {
					while (len + e->len + 8 > cap)
						assert_non_null(out = realloc(out, cap *= 2));
					len += (size_t)snprintf(out + len, cap - len, " %s", e->str);
				}
			}
			if (v != NULL && v->type == REDIS_REPLY_STRING) {
				while (len + v->len + 8 > cap)
					assert_non_null(out = realloc(out, cap *= 2));
				len += (size_t)snprintf(out + len, cap - len, " %s", v->str);
			}
			freeReplyObject(v);
			len += (size_t)snprintf(out + len, cap - len, "\n");
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return out;
}

/* The lines of dump d that hold needle, but for those of key allowed (NULL: none). */
static int
lines_with(const char *d, const char *needle, const char *allowed)
{
	const char *p = d;
	int n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		const char *line = p, *name;

		while (line > d && line[-1] != '\n')
			line--;
		/* "KEY <name>: ...", the name maybe behind a shard's tag */
		name = line + 4;
		if (name[0] == '{' && strchr(name, '}') != NULL && strchr(name, '}') < p)
			name = strchr(name, '}') + 1;
		if (allowed == NULL || strncmp(name, allowed, strlen(allowed)) != 0 ||
		    name[strlen(allowed)] != ':') {
			n++;
			fprintf(stderr, "# left: %.*s\n", (int)(strchr(p, '\n') - line), line);
		}
		p = strchr(p, '\n');
		if (p == NULL)
			break;
	}
	return n;
}

static int
jobs_trimmed(void *arg)
{
	struct it_one *o = arg;

	return it_int(o->rc, "XLEN pushes") == 0;
}

static void
export_then_erase(struct it_one *o, int port)
{
	static struct it_resp r;
	char *d;
	cJSON *j, *a;

	/* The export: record, consent history, both pushes, the reply. */
	assert_int_equal(it_http(port, "GET", "/v1/export?id=" ERASED, AUTH, NULL, 0, &r),
	    200);
	assert_non_null(j = cJSON_Parse(r.body));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "subscriber"),
	    "phone")->valuestring, PHONE);
	assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(j, "consent_events")) >= 1);
	a = cJSON_GetObjectItem(j, "pushes");
	assert_int_equal(cJSON_GetArraySize(a), 2);
	assert_non_null(strstr(r.body, "\"deal\":\"pv-1\""));
	assert_non_null(strstr(r.body, "\"deal\":\"pv-2\""));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "replies")), 1);
	/* what they did: texted twice today (the behaviour record, erased below) */
	a = cJSON_GetObjectItem(j, "behaviour");
	assert_int_equal(cJSON_GetObjectItem(a, "texts_7d")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(a, "days_since_text")->valueint, 0);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(a, "stored")));
	cJSON_Delete(j);
	/* Before: the id and the number are all over Redis. */
	d = dump_all(o->rc);
	assert_true(lines_with(d, ERASED, NULL) > 3);
	assert_non_null(strstr(d, "behaviour: " ERASED " "));
	free(d);

	assert_int_equal(it_http(port, "POST", "/v1/erase?id=" ERASED, AUTH, NULL, 0, &r),
	    200);
	assert_non_null(j = cJSON_Parse(r.body));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "was_stored")));
	assert_int_equal(cJSON_GetObjectItem(j, "pushes")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(j, "deals")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(j, "proof_kept_days")->valueint, 1825);
	cJSON_Delete(j);

	/* After: nothing names them; the number only on the suppression list. The jobs
	 * of the deals (other recipients' too) go with the regular trim once every push
	 * of theirs is done, within a second or two (docs/compliance.md). */
	assert_true(it_wait(jobs_trimmed, o, 10000));
	it_sleep_ms(300);                 /* the audit entry is written after the answer */
	d = dump_all(o->rc);
	assert_int_equal(lines_with(d, ERASED, NULL), 0);
	assert_int_equal(lines_with(d, DIGITS, "suppressed:sms"), 0);
	assert_non_null(strstr(d, "suppressed:sms: " PHONE));
	assert_true(lines_with(d, KEPT, NULL) > 3);      /* the other one is untouched */
	/* The proof: hashes, events, a retention */
	assert_non_null(strstr(d, "id_sha256"));
	assert_non_null(strstr(d, "number_sha256"));
	assert_non_null(strstr(d, "granted"));     /* the import's consent event */
	free(d);
	/* Export and erase again: nothing left to export; erasing again is harmless. */
	assert_int_equal(it_http(port, "GET", "/v1/export?id=" ERASED, AUTH, NULL, 0, &r),
	    404);
	assert_int_equal(it_http(port, "POST", "/v1/erase?id=" ERASED, AUTH, NULL, 0, &r),
	    404);
}

static void
erasure_leaves_only_the_proof(void **state)
{
	struct it_one *o = *state;
	static struct it_resp r;
	char subs[512];
	long long ttl;
	int port = start(o, NULL), before;
	redisReply *k;

	history(o);
	/* A change entry naming both, as record.lua writes for a batch: it names the
	 * erased one too, so it goes. */
	freeReplyObject(redisCommand(o->rc, "XADD subscribers:changes * op behav id "
	    KEPT " id " ERASED));
	export_then_erase(o, port);
	k = redisCommand(o->rc, "KEYS proof:*");
	assert_int_equal(k->elements, 1);
	ttl = it_int(o->rc, "TTL %s", k->element[0]->str);
	assert_true(ttl > 1824LL * 86400 && ttl <= 1825LL * 86400);
	freeReplyObject(k);
	/* A new deal texts the other subscriber only. */
	before = it_gwsim_count(&o->gw, 201);
	assert_int_equal(it_publish(o->rc, it_deal("pv-3", "laptops", 3600)), 0);
	{
		struct want w = { o, before + 1 };

		assert_true(it_wait(sent_n, &w, 20000));
	}
	it_sleep_ms(500);
	assert_int_equal(it_gwsim_count(&o->gw, 201), before + 1);
	/* The same number imported again stays out until it opts in again. */
	snprintf(subs, sizeof(subs), "{\"id\":\"back-9\",\"phone\":\"" PHONE "\","
	    "\"channels\":[\"sms\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
	    "\"timezone\":\"America/Chicago\"}\n");
	assert_int_equal(it_import(o->port, subs), 0);
	assert_int_equal(it_int(o->rc, "HEXISTS consent:sms back-9"), 0);
	/* Hostile requests: no id, a bad one, no token, a viewer's method */
	assert_int_equal(it_http(port, "POST", "/v1/erase", AUTH, NULL, 0, &r), 400);
	assert_int_equal(it_http(port, "POST", "/v1/erase?id=a%20b", AUTH, NULL, 0, &r), 400);
	assert_int_equal(it_http(port, "POST", "/v1/erase?id=" KEPT, NULL, NULL, 0, &r), 401);
	assert_int_equal(it_http(port, "GET", "/v1/erase?id=" KEPT, AUTH, NULL, 0, &r), 405);
	assert_int_equal(it_http(port, "GET", "/v1/export?id=nobody-here", AUTH, NULL, 0, &r),
	    404);
	assert_int_equal(it_int(o->rc, "HEXISTS subscribers " KEPT), 1);
	/* dealpushctl: export prints the JSON, erase what went */
	{
		char bin[512], url[64], out[8192];
		const char *ex[] = { bin, "--api", url, "--token", TOKEN, "subscribers",
			"export", KEPT, NULL };
		const char *er[] = { bin, "--api", url, "--token", TOKEN, "subscribers",
			"erase", KEPT, NULL };

		snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
		assert_int_equal(it_run(ex, out, sizeof(out)), 0);
		assert_non_null(strstr(out, "\"phone\":\"+15125557072\""));
		assert_int_equal(it_run(er, out, sizeof(out)), 0);
		assert_non_null(strstr(out, "erased " KEPT ": the subscriber, 3 pushes of 3 "
		    "deals"));
		assert_int_equal(it_run(er, out, sizeof(out)), 1);
		assert_non_null(strstr(out, "nothing is kept about subscriber"));
	}
}

/* The same on 4 shards: the proof and the history in their shards' keys. */
static void
erasure_on_four_shards(void **state)
{
	struct it_one *o = *state;
	char out[256], bin[512], addr[64];
	const char *argv[] = { bin, "--redis", addr, "layout", "create", "--shards", "4",
		NULL };
	int port;

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", o->port);
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	port = start(o, "[redis]\nshards = 4\n");
	history(o);
	export_then_erase(o, port);
}

/* An erasure that fails half-way (here: a key of another type in its way, so that a
 * script stops after some of its deletions) answers 503; asked again once the way is
 * clear, it finishes: nothing is left, not even the keys it could only find through
 * those it had already deleted (the code a push held: codepush:<code>). */
static void
erasure_failed_half_way_is_finished_by_asking_again(void **state)
{
	struct it_one *o = *state;
	static struct it_resp r;
	struct want w = { o, 2 };
	char deal[512], *d;
	int port = start(o, "[deliver]\ncampaign_cap = 5\n");

	it_int(o->rc, "SADD codes:pv-c PVC-1 PVC-2 PVC-3");
	snprintf(deal, sizeof(deal), "{\"id\":\"pv-c\",\"title\":\"Deal pv-c\","
	    "\"category\":\"laptops\",\"url\":\"https://shop.example/pv-c\","
	    "\"code_pool\":\"codes:pv-c\",\"campaign\":\"pc\",\"expires_at\":%lld}",
	    it_now() + 3600);
	assert_int_equal(it_publish(o->rc, deal), 0);
	assert_true(it_wait(sent_n, &w, 20000));
	it_sleep_ms(300);
	d = dump_all(o->rc);
	assert_true(lines_with(d, "codepush:", NULL) >= 2);
	/* The campaign cap's count names the subscriber in its key. */
	assert_true(lines_with(d, "KEY camp:pc:" ERASED, NULL) == 1);
	free(d);
	it_int(o->rc, "SET holdout:pv-c in-the-way");
	assert_int_equal(it_http(port, "POST", "/v1/erase?id=" ERASED, AUTH, NULL, 0, &r),
	    503);
	assert_int_equal(it_int(o->rc, "HEXISTS subscribers " ERASED), 0);
	it_int(o->rc, "DEL holdout:pv-c");
	assert_int_equal(it_http(port, "POST", "/v1/erase?id=" ERASED, AUTH, NULL, 0, &r),
	    200);
	assert_true(it_wait(jobs_trimmed, o, 10000));
	it_sleep_ms(300);
	d = dump_all(o->rc);
	assert_int_equal(lines_with(d, ERASED, NULL), 0);
	assert_int_equal(lines_with(d, DIGITS, "suppressed:sms"), 0);
	assert_true(lines_with(d, KEPT, NULL) > 3);
	assert_non_null(strstr(d, "number_sha256"));
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(erasure_leaves_only_the_proof, setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(erasure_on_four_shards, setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    erasure_failed_half_way_is_finished_by_asking_again, setup,
		    it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
