/*
 * test_optout.c: opt-outs understood in any reasonable manner, and replays honoured
 * (issue 12, items 4 and 5), on a running notifier with signed Twilio webhooks: a
 * sample of the labelled corpus (tests/data/optout_corpus.tsv) through the real HTTP
 * path revokes consent and no later deal reaches the number, ordinary replies land on
 * the replies stream; a STOP before import is never texted after it (dealpushctl and
 * the admin API); a replayed START after a STOP, and a replayed status callback,
 * change and count nothing. Counts at the gateway, never timings.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "twsig.h"

#define PUBLIC_URL "https://optout.example.test"
#define ADMIN_TOKEN "optout-admin-token-0123456789"
#define PHONE1 "+15125550101"
#define PHONE2 "+15125550102"
#define PHONE4 "+15125550104"
#define PHONE5 "+15125550105"
#define CONSENT_T "2026-01-02T10:00:00Z"

/* The [inbound] words docs/inbound.md gives as an example (as test_keywords.c). */
#define INBOUND_WORDS "[inbound]\n" \
	"optout_words = arr\xC3\xAAt, arr\xC3\xAAter, d\xC3\xA9sabonner, " \
	"d\xC3\xA9sinscrire, stopp, abmelden, austragen, beenden, sair, " \
	"cancelar inscri\xC3\xA7\xC3\xA3o, descadastrar, parar de receber, fermati, " \
	"annulla, disiscriviti, cancellami\n" \
	"optout_fillers = s'il vous pla\xC3\xAEt, svp, merci, bitte, danke, obrigado, " \
	"obrigada, per favore, grazie\n"

/* Every 6th opt-out of the corpus (at least 20 through HTTP), every 10th other. */
#define SAMPLE_OPTOUT_EVERY 6
#define SAMPLE_NONE_EVERY 10
#define SAMPLE_MAX 64

struct fx {
	redisContext *rc;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;
	int port, http;
};

static int
setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

/* A subscriber line of id with phone and the sms consent time CONSENT_T. */
static const char *
sub_json(const char *id, const char *phone)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"phone\":\"%s\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"" CONSENT_T "\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}", id, phone);
	return buf;
}

/* Redis, gwsim and the notifier with the example [inbound] words; s-1 and s-2. */
static void
start(struct fx *f)
{
	char dir[512], subs[1200];

	it_path(dir, sizeof(dir), "redis-optout", "");
	f->port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	snprintf(subs, sizeof(subs), "%s\n", sub_json("s-1", PHONE1));
	snprintf(subs + strlen(subs), sizeof(subs) - strlen(subs), "%s\n",
	    sub_json("s-2", PHONE2));
	assert_int_equal(it_import(f->port, subs), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", ADMIN_TOKEN, 1);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-optout",
	    "public_url = " PUBLIC_URL "\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    INBOUND_WORDS);
	assert_true(f->http > 0);
	it_sleep_ms(300);          /* the mirror loads once /healthz is fine */
}

/* POSTs the form kv (name, value, ..., NULL) to path, signed as Twilio signs it.
 * Returns the status. */
static int
tw_post(struct fx *f, const char *path, const char *const *kv)
{
	static struct it_resp r;
	struct twsig_param p[16];
	char body[8192] = "", url[1024], sig[64], hdr[256];
	size_t n = 0, i;

	for (; kv[0] != NULL && n < 16; kv += 2) {
		p[n].name = kv[0];
		p[n++].value = kv[1];
	}
	for (i = 0; i < n; i++) {
		if (i > 0)
			snprintf(body + strlen(body), sizeof(body) - strlen(body), "&");
		it_pct_append(body, sizeof(body), p[i].name);
		snprintf(body + strlen(body), sizeof(body) - strlen(body), "=");
		it_pct_append(body, sizeof(body), p[i].value);
	}
	snprintf(url, sizeof(url), PUBLIC_URL "%s", path);
	assert_int_equal(twsig_compute(IT_AUTH_TOKEN, url, p, n, sig, sizeof(sig)), 0);
	snprintf(hdr, sizeof(hdr), "Content-Type: application/x-www-form-urlencoded\r\n"
	    "X-Twilio-Signature: %s\r\n", sig);
	it_http(f->http, "POST", path, hdr, body, strlen(body), &r);
	return r.status;
}

/* An inbound SMS with MessageSid sid (NULL: a new one). */
static int
sms_in_sid(struct fx *f, const char *from, const char *text, const char *sid)
{
	static unsigned seq;
	char own[40];
	const char *kv[] = { "MessageSid", sid, "From", from, "To", IT_FROM, "Body", text,
	    NULL };

	if (sid == NULL) {
		snprintf(own, sizeof(own), "SM%08x%08xo", (unsigned)getpid(), ++seq);
		kv[1] = own;
	}
	return tw_post(f, "/hooks/twilio/inbound", kv);
}

/* key (today's name) in the layout in force: in the shard of the subscriber field
 * names ("s-1", "s-1:sms"); a number's keys (suppressed:sms) on the number's slot. */
static const char *
named(const char *key, const char *field, char *buf, size_t size)
{
	char sub[64];

	if (field[0] == '+')
		return it_key_for(key, field, buf, size);
	if (strncmp(field, "s-", 2) != 0)
		return it_key_for(key, NULL, buf, size);
	snprintf(sub, sizeof(sub), "%.*s", (int)strcspn(field, ":"), field);
	return it_key_for(key, sub, buf, size);
}

static long long
hexists(struct fx *f, const char *key, const char *field)
{
	char k[KEYS_MAX];

	return it_int(f->rc, "HEXISTS %s %s", named(key, field, k, sizeof(k)), field);
}

static const char *
hget(struct fx *f, const char *key, const char *field, char *out, size_t size)
{
	char k[KEYS_MAX];
	redisReply *r = redisCommand(f->rc, "HGET %s %s", named(key, field, k, sizeof(k)),
	    field);

	out[0] = '\0';
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		snprintf(out, size, "%s", r->str);
	freeReplyObject(r);
	return out;
}

/* Requests gwsim logged to phone whose body contains needle (NULL: any). */
static int
gw_count_to(struct fx *f, const char *phone, const char *needle)
{
	cJSON *reqs = it_gwsim_requests(&f->gw), *o;
	int n = 0;

	cJSON_ArrayForEach(o, reqs) {
		cJSON *to = cJSON_GetObjectItem(o, "to"), *b = cJSON_GetObjectItem(o, "body");

		if (!cJSON_IsString(to) || strcmp(to->valuestring, phone) != 0)
			continue;
		if (needle == NULL || (cJSON_IsString(b) && strstr(b->valuestring, needle)))
			n++;
	}
	cJSON_Delete(reqs);
	return n;
}

struct want_outcome {
	redisContext *rc;
	long long n;
};

static int
sent_reached(void *arg)
{
	struct want_outcome *w = arg;

	return it_outcomes(w->rc, "sent") >= w->n;
}

/* Publishes deal id and waits until n pushes in all were sent, then a moment more
 * for anything that should not come. */
static void
deal_and_wait(struct fx *f, const char *id, long long n)
{
	struct want_outcome w = { f->rc, n };

	assert_int_equal(it_publish(f->rc, it_deal(id, "laptop", 600)), 0);
	assert_true(it_wait(sent_reached, &w, 10000));
	it_sleep_ms(500);
}

/* Reads a sample of the corpus: every every-th message labelled label. Returns how
 * many (at most SAMPLE_MAX), each a malloc'ed string in out. */
static size_t
corpus_sample(const char *label, size_t every, char **out)
{
	char path[1024], line[2048];
	const char *root = getenv("DP_ROOT");
	size_t n = 0, seen = 0, llen = strlen(label);
	FILE *fp;

	snprintf(path, sizeof(path), "%s/tests/data/optout_corpus.tsv", root ? root : ".");
	assert_non_null(fp = fopen(path, "r"));
	while (n < SAMPLE_MAX && fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, label, llen) != 0 || line[llen] != '\t')
			continue;
		if (seen++ % every == 0)
			assert_non_null(out[n++] = strdup(line + llen + 1));
	}
	fclose(fp);
	return n;
}

static void
corpus_opt_outs_through_the_webhook_revoke_consent_and_no_later_text(void **state)
{
	struct fx *f = *state;
	char *optouts[SAMPLE_MAX], *others[SAMPLE_MAX], v[64], k[KEYS_MAX];
	size_t nout = corpus_sample("optout", SAMPLE_OPTOUT_EVERY, optouts);
	size_t nother = corpus_sample("none", SAMPLE_NONE_EVERY, others), i;

	assert_true(nout >= 20);
	assert_true(nother >= 5);
	start(f);
	/* Ordinary replies: consent stays, each is kept on the replies stream. */
	for (i = 0; i < nother; i++) {
		assert_int_equal(sms_in_sid(f, PHONE1, others[i], NULL), 200);
		if (hexists(f, "consent:sms", "s-1") != 1)
			fail_msg("ordinary reply \"%s\" took consent away", others[i]);
	}
	assert_int_equal(it_int(f->rc, "XLEN replies"), (long long)nother);
	/* Each opt-out form, with consent given back before it. */
	for (i = 0; i < nout; i++) {
		it_int(f->rc, "HSET %s s-1 1767348000",
		    named("consent:sms", "s-1", k, sizeof(k)));
		assert_int_equal(sms_in_sid(f, PHONE1, optouts[i], NULL), 200);
		if (hexists(f, "consent:sms", "s-1") != 0)
			fail_msg("opt-out \"%s\" left consent in place", optouts[i]);
		assert_string_equal(it_consent_last(f->rc, "s-1", "sms", "state", v, sizeof(v)),
		    "opted_out");
	}
	/* No later text: the next deal reaches s-2 only; s-1 got confirmations only. */
	deal_and_wait(f, "d-1", 1);
	assert_int_equal(gw_count_to(f, PHONE2, "STOP"), 1);
	assert_int_equal(gw_count_to(f, PHONE1, NULL), gw_count_to(f, PHONE1,
	    "unsubscribed"));
	assert_true(gw_count_to(f, PHONE1, "unsubscribed") >= 1);
	assert_int_equal(it_int(f->rc, "XLEN replies"), (long long)nother);
	for (i = 0; i < nout; i++)
		free(optouts[i]);
	for (i = 0; i < nother; i++)
		free(others[i]);
}

static void
stop_before_import_is_never_texted_after_import(void **state)
{
	struct fx *f = *state;
	static struct it_resp rep;
	char line[600], v[64];
	const char *doc;

	start(f);
	/* Numbers no subscriber has yet: answered, kept on the suppression list. */
	assert_int_equal(sms_in_sid(f, PHONE4, "STOP", NULL), 200);
	assert_int_equal(sms_in_sid(f, PHONE5, "Alto", NULL), 200);
	assert_int_equal(hexists(f, "suppressed:sms", PHONE4), 1);
	assert_int_equal(hexists(f, "suppressed:sms", PHONE5), 1);
	/* Imported later with an older consent time: no sms consent, the STOP recorded. */
	snprintf(line, sizeof(line), "%s\n", sub_json("s-4", PHONE4));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(hexists(f, "consent:sms", "s-4"), 0);
	assert_string_equal(it_consent_last(f->rc, "s-4", "sms", "state", v, sizeof(v)),
	    "opted_out");
	assert_string_equal(it_consent_last(f->rc, "s-4", "sms", "how", v, sizeof(v)), "sms:STOP");
	/* The admin API says so in consent_kept_out. */
	doc = sub_json("s-5", PHONE5);
	assert_int_equal(it_http(f->http, "POST", "/v1/subscribers", "Authorization: Bearer "
	    ADMIN_TOKEN "\r\n", doc, strlen(doc), &rep), 201);
	assert_non_null(strstr(rep.body, "\"consent_kept_out\":[\"sms\"]"));
	assert_int_equal(hexists(f, "consent:sms", "s-5"), 0);
	/* The mirror has both; a deal reaches s-1 and s-2 only. */
	it_sleep_ms(1500);
	deal_and_wait(f, "d-1", 2);
	assert_int_equal(gw_count_to(f, PHONE4, NULL), 0);
	assert_int_equal(gw_count_to(f, PHONE5, NULL), 0);
	/* START from the number lets it in again. */
	assert_int_equal(sms_in_sid(f, PHONE4, "START", NULL), 200);
	assert_int_equal(hexists(f, "suppressed:sms", PHONE4), 0);
	assert_int_equal(hexists(f, "consent:sms", "s-4"), 1);
	assert_int_equal(hexists(f, "suppressed:sms", PHONE5), 1);
}

static void
replayed_start_after_stop_changes_nothing(void **state)
{
	struct fx *f = *state;

	start(f);
	assert_int_equal(sms_in_sid(f, PHONE1, "STOP", "SM00000000000000000000000000000a01"),
	    200);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 0);
	assert_int_equal(sms_in_sid(f, PHONE1, "START", "SM00000000000000000000000000000a02"),
	    200);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
	assert_int_equal(sms_in_sid(f, PHONE1, "stop", "SM00000000000000000000000000000a03"),
	    200);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 0);
	/* The captured START and STOP sent again, however late: nothing changes. */
	assert_int_equal(sms_in_sid(f, PHONE1, "START", "SM00000000000000000000000000000a02"),
	    200);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 0);
	assert_int_equal(sms_in_sid(f, PHONE1, "STOP", "SM00000000000000000000000000000a01"),
	    200);
	assert_int_equal(it_shards_stat(f->rc, "hook:inbound:duplicate"), 2);
	/* The record: the import's grant and three keywords, no replay. */
	assert_int_equal(it_consent_events(f->rc, "s-1"), 4);
	/* A reply kept for review is kept once, however often Twilio sends it. */
	assert_int_equal(sms_in_sid(f, PHONE1, "stop by the store?",
	    "SM00000000000000000000000000000a04"), 200);
	assert_int_equal(sms_in_sid(f, PHONE1, "stop by the store?",
	    "SM00000000000000000000000000000a04"), 200);
	assert_int_equal(it_int(f->rc, "XLEN replies"), 1);
	/* Still opted out at the next deal; two confirmations (STOP, START, STOP). */
	deal_and_wait(f, "d-1", 1);
	assert_int_equal(gw_count_to(f, PHONE1, NULL), 2);
	assert_int_equal(gw_count_to(f, PHONE1, "unsubscribed"), 2);
}

/* The value of field name in the newest replies entry, into buf ("" when absent). */
static const char *
last_reply_field(struct fx *f, const char *name, char *buf, size_t size)
{
	redisReply *r = redisCommand(f->rc, "XREVRANGE replies + - COUNT 1");
	size_t k;

	buf[0] = '\0';
	assert_non_null(r);
	assert_int_equal(r->elements, 1);
	for (k = 0; k + 1 < r->element[0]->element[1]->elements; k += 2)
		if (strcmp(r->element[0]->element[1]->element[k]->str, name) == 0)
			snprintf(buf, size, "%s", r->element[0]->element[1]->element[k + 1]->str);
	freeReplyObject(r);
	return buf;
}

/* A reply is kept with its subscriber and the deal of the last push to the number:
 * the deal it answers (docs/inbound.md); a number nobody has answers none. */
static void
a_reply_is_kept_with_the_deal_it_answers(void **state)
{
	struct fx *f = *state;
	static struct it_resp r;
	char v[64];

	start(f);
	assert_int_equal(sms_in_sid(f, PHONE1, "before any deal", NULL), 200);
	assert_string_equal(last_reply_field(f, "sub", v, sizeof(v)), "s-1");
	assert_string_equal(last_reply_field(f, "deal", v, sizeof(v)), "");
	deal_and_wait(f, "d-r1", 2);
	deal_and_wait(f, "d-r2", 4);
	assert_int_equal(sms_in_sid(f, PHONE1, "is the blue one back?", NULL), 200);
	assert_string_equal(last_reply_field(f, "sub", v, sizeof(v)), "s-1");
	assert_string_equal(last_reply_field(f, "deal", v, sizeof(v)), "d-r2");
	assert_int_equal(sms_in_sid(f, "+15125559999", "who is this", NULL), 200);
	assert_string_equal(last_reply_field(f, "sub", v, sizeof(v)), "");
	assert_string_equal(last_reply_field(f, "deal", v, sizeof(v)), "");
	/* The console reads both, the number masked. */
	assert_int_equal(it_http(f->http, "GET", "/v1/replies?limit=2",
	    "Authorization: Bearer " ADMIN_TOKEN "\r\n", NULL, 0, &r), 200);
	assert_non_null(strstr(r.body, "\"deal\":\"d-r2\""));
	assert_non_null(strstr(r.body, "\"sub\":\"s-1\""));
	assert_null(strstr(r.body, PHONE1));
}

static void
replayed_status_callback_is_counted_once(void **state)
{
	struct fx *f = *state;
	char entry[64], push[128], path[300], v[64];
	const char *sid = "SM0000000000000000000000000000bb01";
	const char *statuses[] = { "sent", "sent", "delivered", "delivered", "sent",
	    "delivered" };
	redisReply *r;
	size_t i;

	start(f);
	deal_and_wait(f, "d-1", 2);
	r = redisCommand(f->rc, "XRANGE deals - + COUNT 1");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	snprintf(entry, sizeof(entry), "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
	snprintf(push, sizeof(push), "%s:s-1:sms", entry);
	snprintf(path, sizeof(path), "/hooks/twilio/status?push=");
	it_pct_append(path, sizeof(path), push);
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		const char *kv[] = { "MessageSid", sid, "MessageStatus", statuses[i], "To",
		    PHONE1, NULL };

		assert_int_equal(tw_post(f, path, kv), 204);
	}
	assert_int_equal(it_shards_stat(f->rc, "hook:status:sent"), 1);
	assert_int_equal(it_shards_stat(f->rc, "hook:status:delivered"), 1);
	assert_int_equal(it_shards_stat(f->rc, "hook:status:duplicate_callback"), 4);
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-1", "delivered") == 1);
	assert_string_equal(hget(f, "delivery:d-1", "s-1:sms", v, sizeof(v)), "delivered");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    corpus_opt_outs_through_the_webhook_revoke_consent_and_no_later_text, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(stop_before_import_is_never_texted_after_import,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(replayed_start_after_stop_changes_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(a_reply_is_kept_with_the_deal_it_answers, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(replayed_status_callback_is_counted_once, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("optout", tests, NULL, NULL);
}
