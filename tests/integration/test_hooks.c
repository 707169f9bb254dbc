/*
 * test_hooks.c: the inbound webhooks on a running notifier: Twilio signatures are
 * required, every keyword variant has its effect on consent, a STOP stops the next
 * deal and START brings it back, one confirmation text per opt-out, status callbacks
 * count deliveries and act on error codes, the signed DM endpoint, hostile input.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "ithttp.h"
#include "timefmt.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "twsig.h"

#define PUBLIC_URL "https://hooks.example.test"
#define ADMIN_TOKEN "hooks-admin-token-0123456789"
#define INBOUND_SECRET "inbound-test-secret"
#define PHONE1 "+15125550101"
#define PHONE2 "+15125550102"
#define PHONE3 "+15125550103"

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

/* Starts redis, gwsim (with gwflags, NULL-ended, may be NULL) and the notifier
 * (more config lines in more, may be NULL). */
static void
start_with(struct fx *f, const char *const *gwflags, const char *more)
{
	char extra[2048], secret[512], dir[512];
	static const char subs[] =
	    "{\"id\":\"s-1\",\"phone\":\"" PHONE1 "\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"
	    "{\"id\":\"s-2\",\"phone\":\"" PHONE2 "\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"
	    "{\"id\":\"s-3\",\"phone\":\"" PHONE3 "\",\"dm\":{\"x\":\"4242\"},"
	    "\"channels\":[\"sms\",\"dm\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\","
	    "\"dm\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n";
	FILE *fp;

	it_path(dir, sizeof(dir), "redis-hooks", "");
	f->port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	assert_int_equal(it_import(f->port, subs), 0);
	assert_int_equal(it_gwsim_start(&f->gw, gwflags), 0);
	it_path(secret, sizeof(secret), "inbound", ".secret");
	assert_non_null(fp = fopen(secret, "w"));
	fputs(INBOUND_SECRET "\n", fp);
	fclose(fp);
	setenv("DP_TEST_ADMIN_TOKEN", ADMIN_TOKEN, 1);
	snprintf(extra, sizeof(extra), "public_url = " PUBLIC_URL "\ninbound_secret_file = %s\n"
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n%s", secret, more ? more : "");
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-hooks", extra);
	assert_true(f->http > 0);
	/* The mirror is loaded once /healthz is fine and a moment has passed. */
	it_sleep_ms(300);
}

static void
start(struct fx *f)
{
	start_with(f, NULL, NULL);
}

/* One HTTP/1.0 POST with extra header lines (each ending "\r\n"); the whole answer
 * goes into resp. Returns the status or -1. */
static int
raw_post(int port, const char *path, const char *ctype, const char *hdrs,
    const char *body, size_t len, char *resp, size_t rsize)
{
	static struct it_resp r;
	char head[4096];

	snprintf(head, sizeof(head), "Content-Type: %s\r\n%s", ctype, hdrs ? hdrs : "");
	it_http(port, "POST", path, head, body, len, &r);
	if (rsize > 0) {
		size_t n = strnlen(r.raw, rsize - 1);   /* cut to the caller's buffer */

		memcpy(resp, r.raw, n);
		resp[n] = '\0';
	}
	return r.status;
}

/* Appends s to out (cut to size). */
static void
append(char *out, size_t size, const char *s)
{
	size_t o = strlen(out);

	snprintf(out + o, size - o, "%s", s);
}

/*
 * POSTs the form kv (name, value, ..., NULL) to path, signed for sign_url (NULL: the
 * public URL + path) with token (NULL: no signature header). Returns the status.
 */
static int
tw_post(struct fx *f, const char *path, const char *const *kv, const char *sign_url,
    const char *token, char *resp, size_t rsize)
{
	struct twsig_param p[32];
	char body[8192] = "", url[1024], sig[64], hdr[128] = "";
	size_t n = 0;

	for (; kv[0] != NULL; kv += 2) {
		if (n > 0)
			append(body, sizeof(body), "&");
		it_pct_append(body, sizeof(body), kv[0]);
		append(body, sizeof(body), "=");
		it_pct_append(body, sizeof(body), kv[1]);
		p[n].name = kv[0];
		p[n++].value = kv[1];
	}
	snprintf(url, sizeof(url), "%s", sign_url ? sign_url : PUBLIC_URL);
	if (sign_url == NULL)
		append(url, sizeof(url), path);
	if (token != NULL) {
		assert_int_equal(twsig_compute(token, url, p, n, sig, sizeof(sig)), 0);
		snprintf(hdr, sizeof(hdr), "X-Twilio-Signature: %s\r\n", sig);
	}
	return raw_post(f->http, path, "application/x-www-form-urlencoded", hdr, body,
	    strlen(body), resp, rsize);
}

/* An inbound SMS with a MessageSid of its own, as Twilio gives every message (a
 * repeated sid is a replay, and changes nothing). */
static int
sms_in(struct fx *f, const char *from, const char *text, char *resp, size_t rsize)
{
	static unsigned seq;
	char sid[40];
	const char *kv[] = { "MessageSid", sid, "From", from, "To", IT_FROM,
	    "Body", text, NULL };

	snprintf(sid, sizeof(sid), "SM%08x%08x", (unsigned)getpid(), ++seq);
	return tw_post(f, "/hooks/twilio/inbound", kv, NULL, IT_AUTH_TOKEN, resp, rsize);
}

/* A status callback for push (raw, unencoded in the query as Twilio hands it back)
 * about the message sid. */
static int
status_cb_sid(struct fx *f, const char *push, const char *status, const char *code,
    const char *to, const char *sid)
{
	char path[512], resp[2048];
	const char *kv[] = { "MessageSid", sid, "MessageStatus", status, "To", to,
	    "ErrorCode", code, NULL };

	snprintf(path, sizeof(path), "/hooks/twilio/status?push=");
	it_pct_append(path, sizeof(path), push);
	if (code == NULL)
		kv[6] = NULL;
	return tw_post(f, path, kv, NULL, IT_AUTH_TOKEN, resp, sizeof(resp));
}

/* A status callback whose MessageSid is the push's own (one message per push, as at
 * Twilio; callbacks are counted once per sid and status). */
static int
status_cb(struct fx *f, const char *push, const char *status, const char *code,
    const char *to)
{
	unsigned long long h = 1469598103934665603ULL;
	char sid[40];
	const char *p;

	for (p = push; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(sid, sizeof(sid), "SM%016llx", h);
	return status_cb_sid(f, push, status, code, to, sid);
}

/* A signed POST to /hooks/inbound/<ch> with timestamp ts. */
static int
dm_post(struct fx *f, const char *ch, const char *json, long long ts, const char *secret,
    char *resp, size_t rsize)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char mac[64];
	char msg[4096], hex[65], hdr[256], path[128];
	size_t maclen = 0, i;
	int n;

	n = snprintf(msg, sizeof(msg), "%lld.%s", ts, json);
	assert_true(n > 0 && (size_t)n < sizeof(msg));
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
	    (const unsigned char *)msg, (size_t)n, mac, sizeof(mac), &maclen));
	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[64] = '\0';
	snprintf(hdr, sizeof(hdr), "X-Dealpush-Timestamp: %lld\r\n"
	    "X-Dealpush-Signature: v1=%s\r\n", ts, hex);
	snprintf(path, sizeof(path), "/hooks/inbound/%s", ch);
	return raw_post(f->http, path, "application/json", hdr, json, strlen(json), resp,
	    rsize);
}

/* key (today's name) in the layout in force: in the shard of the subscriber that
 * field names ("s-1", "s-1:sms"), else in shard 0 (the webhooks' own counters). */
static const char *
named(const char *key, const char *field, char *buf, size_t size)
{
	char sub[64];

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

/* The string value of HGET key field into out ("" when absent). */
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

struct want_count {
	struct fx *f;
	const char *phone, *needle;
	int n;
};

static int
count_reached(void *arg)
{
	struct want_count *w = arg;

	return gw_count_to(w->f, w->phone, w->needle) >= w->n;
}

struct want_outcome {
	redisContext *rc;
	const char *outcome;
	long long n;
};

static int
outcomes_reached(void *arg)
{
	struct want_outcome *w = arg;

	return it_outcomes(w->rc, w->outcome) >= w->n;
}

static void
signatures_and_hostile_input_change_nothing(void **state)
{
	struct fx *f = *state;
	static char big[100 * 1024];
	char resp[4096], url[512], v[64];
	const char *stop[] = { "From", PHONE1, "To", IT_FROM, "Body", "STOP", NULL };
	const char *nobody[] = { "From", PHONE1, "To", IT_FROM, NULL };
	const char *path = "/hooks/twilio/inbound";

	start(f);
	/* Missing, forged (another token), signed for another path or host. */
	assert_int_equal(tw_post(f, path, stop, NULL, NULL, resp, sizeof(resp)), 403);
	assert_int_equal(tw_post(f, path, stop, NULL, "not-the-token", resp, sizeof(resp)),
	    403);
	assert_int_equal(tw_post(f, path, stop, PUBLIC_URL "/hooks/twilio/status",
	    IT_AUTH_TOKEN, resp, sizeof(resp)), 403);
	assert_int_equal(tw_post(f, path, stop, "https://evil.example.test/hooks/twilio/"
	    "inbound", IT_AUTH_TOKEN, resp, sizeof(resp)), 403);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", f->http, path);
	assert_int_equal(tw_post(f, path, stop, url, IT_AUTH_TOKEN, resp, sizeof(resp)), 403);
	assert_int_equal(raw_post(f->http, path, "application/x-www-form-urlencoded",
	    "X-Twilio-Signature: GvWf1cFY/Q7PnoempGyD5oXAezc=\r\n", "From=%2B15125550101"
	    "&Body=STOP", 29, resp, sizeof(resp)), 403);
	/* Bad form encoding, missing field, huge body. */
	assert_int_equal(raw_post(f->http, path, "application/x-www-form-urlencoded", NULL,
	    "From=%zz&Body=STOP", 18, resp, sizeof(resp)), 400);
	assert_int_equal(raw_post(f->http, path, "application/x-www-form-urlencoded", NULL,
	    "From=%2B1&&Body=STOP", 20, resp, sizeof(resp)), 400);
	assert_int_equal(raw_post(f->http, path, "application/x-www-form-urlencoded", NULL,
	    "Body=STOP%00", 12, resp, sizeof(resp)), 400);
	assert_int_equal(tw_post(f, path, nobody, NULL, IT_AUTH_TOKEN, resp, sizeof(resp)),
	    400);
	memset(big, 'a', sizeof(big));
	assert_int_equal(raw_post(f->http, path, "application/x-www-form-urlencoded", NULL,
	    big, sizeof(big), resp, sizeof(resp)), 413);
	/* The same on the status callback. */
	assert_int_equal(status_cb(f, "1-0:s-1:sms", "delivered", NULL, PHONE1), 204);
	{
		const char *kv[] = { "MessageStatus", "failed", "To", PHONE1, "ErrorCode",
		    "30006", NULL };

		assert_int_equal(tw_post(f, "/hooks/twilio/status?push=1-0%3As-1%3Asms", kv,
		    NULL, "forged", resp, sizeof(resp)), 403);
		assert_int_equal(tw_post(f, "/hooks/twilio/status?push=1-0%3As-1%3Asms", kv,
		    PUBLIC_URL "/hooks/twilio/status?push=2-0%3As-1%3Asms", IT_AUTH_TOKEN,
		    resp, sizeof(resp)), 403);
		assert_int_equal(tw_post(f, "/hooks/twilio/status", kv, NULL, IT_AUTH_TOKEN,
		    resp, sizeof(resp)), 400);
	}
	/* The DM endpoint: no or bad signature, stale timestamp, bad JSON, wrong types. */
	assert_int_equal(raw_post(f->http, "/hooks/inbound/x-dm", "application/json", NULL,
	    "{\"dm_user_id\":\"4242\",\"text\":\"STOP\"}", 35, resp, sizeof(resp)), 403);
	assert_int_equal(dm_post(f, "x-dm", "{\"dm_user_id\":\"4242\",\"text\":\"STOP\"}",
	    it_now(), "wrong-secret", resp, sizeof(resp)), 403);
	assert_int_equal(dm_post(f, "x-dm", "{\"dm_user_id\":\"4242\",\"text\":\"STOP\"}",
	    it_now() - 600, INBOUND_SECRET, resp, sizeof(resp)), 403);
	assert_int_equal(dm_post(f, "x-dm", "{\"dm_user_id\":", it_now(), INBOUND_SECRET,
	    resp, sizeof(resp)), 400);
	assert_int_equal(dm_post(f, "x-dm", "{\"dm_user_id\":4242,\"text\":\"STOP\"}",
	    it_now(), INBOUND_SECRET, resp, sizeof(resp)), 400);
	assert_int_equal(dm_post(f, "x-dm", "{\"dm_user_id\":\"4242\"}", it_now(),
	    INBOUND_SECRET, resp, sizeof(resp)), 400);
	assert_int_equal(dm_post(f, "fax", "{\"dm_user_id\":\"4242\",\"text\":\"STOP\"}",
	    it_now(), INBOUND_SECRET, resp, sizeof(resp)), 404);
	/* Nothing changed anywhere. */
	it_sleep_ms(200);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
	assert_int_equal(hexists(f, "consent:dm", "s-3"), 1);
	/* The consent record holds the import's grants only. */
	assert_int_equal(it_consent_events(f->rc, "s-1"), 1);
	assert_int_equal(it_consent_events(f->rc, "s-3"), 2);
	assert_string_equal(it_consent_last(f->rc, "s-1", "sms", "state", v, sizeof(v)), "granted");
	assert_string_equal(it_consent_last(f->rc, "s-3", "dm", "state", v, sizeof(v)), "granted");
	assert_int_equal(it_shards_sum_key(f->rc, "XLEN %s", KEYS_SUB_CHANGES), 3);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);
}

struct kw_row {
	const char *text;
	int effect;             /* 0 none, 1 opt-out, 2 opt-in, 3 help */
};

static void
every_keyword_variant_has_its_effect(void **state)
{
	struct fx *f = *state;
	static const struct kw_row rows[] = {
		{ "STOP", 1 }, { "stop", 1 }, { " Stop. ", 1 }, { "STOP ALL", 1 },
		{ "unsubscribe me", 1 }, { "please stop texting me", 1 }, { "START", 2 },
		{ "UNSTOP", 2 }, { "YES", 2 }, { "HELP", 3 }, { "stop by the store", 0 },
	};
	char resp[4096], v[256], k[KEYS_MAX], ack[KEYS_MAX];
	size_t i;
	int optouts = 0;
	struct want_count w;

	start(f);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].effect == 2)
			it_int(f->rc, "HDEL %s s-1", named("consent:sms", "s-1", k, sizeof(k)));
		else
			it_int(f->rc, "HSET %s s-1 1767348000",
			    named("consent:sms", "s-1", k, sizeof(k)));
		/* A new opt-out episode each row: its confirmation is due again. */
		it_int(f->rc, "DEL %s", it_key_for("optout_ack:" PHONE1, NULL, ack,
		    sizeof(ack)));
		assert_int_equal(sms_in(f, PHONE1, rows[i].text, resp, sizeof(resp)), 200);
		assert_non_null(strstr(resp, "<Response"));
		switch (rows[i].effect) {
		case 1:
			optouts++;
			assert_int_equal(hexists(f, "consent:sms", "s-1"), 0);
			assert_string_equal(it_consent_last(f->rc, "s-1", "sms", "state", v,
			    sizeof(v)), "opted_out");
			assert_string_equal(it_consent_last(f->rc, "s-1", "sms", "how", v, sizeof(v)),
			    "sms:STOP");
			assert_non_null(strstr(hget(f, "subscribers", "s-1", v, sizeof(v)),
			    "\"consent\":{\"sms\":null"));
			break;
		case 2:
			assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
			assert_string_equal(it_consent_last(f->rc, "s-1", "sms", "state", v,
			    sizeof(v)), "opted_in");
			assert_null(strstr(hget(f, "subscribers", "s-1", v, sizeof(v)),
			    "\"sms\":null"));
			break;
		case 3:
			assert_non_null(strstr(resp, "<Message>"));
			assert_non_null(strstr(resp, "STOP"));
			assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
			break;
		default:
			assert_null(strstr(resp, "<Message>"));
			assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
			break;
		}
	}
	/* One confirmation per opt-out, none for the rest. */
	w.f = f;
	w.phone = PHONE1;
	w.needle = "unsubscribed";
	w.n = optouts;
	assert_true(it_wait(count_reached, &w, 5000));
	/* Consent was restored since (the last rows): a STOP is a new opt-out with its
	 * confirmation, a repeated STOP right after it gets none. */
	assert_int_equal(sms_in(f, PHONE1, "STOP", resp, sizeof(resp)), 200);
	w.n = optouts + 1;
	assert_true(it_wait(count_reached, &w, 5000));
	assert_int_equal(sms_in(f, PHONE1, "Stop!", resp, sizeof(resp)), 200);
	assert_int_equal(sms_in(f, PHONE1, "unsubscribe", resp, sizeof(resp)), 200);
	it_sleep_ms(500);
	assert_int_equal(gw_count_to(f, PHONE1, NULL), optouts + 1);
	assert_int_equal(gw_count_to(f, PHONE1, "unsubscribed"), optouts + 1);
	/* An unknown sender is answered and nothing changes. */
	assert_int_equal(sms_in(f, "+15125559999", "STOP", resp, sizeof(resp)), 200);
	assert_int_equal(gw_count_to(f, "+15125559999", NULL), 0);
	/* The mirrors were told: one change per JSON update. */
	assert_true(it_shards_sum_key(f->rc, "XLEN %s", KEYS_SUB_CHANGES) > 3);
}

static void
stop_then_deal_sends_nothing_and_start_sends_again(void **state)
{
	struct fx *f = *state;
	char resp[4096], v[64];
	struct want_outcome w;
	struct want_count c;

	start(f);
	assert_int_equal(sms_in(f, PHONE1, "STOP", resp, sizeof(resp)), 200);
	/* The webhook answered: the next deal must not reach the number. */
	assert_int_equal(it_publish(f->rc, it_deal("d-1", "laptop", 600)), 0);
	w.rc = f->rc;
	w.outcome = "sent";
	w.n = 2;
	assert_true(it_wait(outcomes_reached, &w, 10000));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "sent"), 2);
	/* Planned before the mirror saw the STOP: refused at admit; after: not planned. */
	hget(f, "push:d-1", "s-1:sms", v, sizeof(v));
	assert_true(v[0] == '\0' || strcmp(v, "no_consent") == 0);
	assert_int_equal(gw_count_to(f, PHONE1, NULL), gw_count_to(f, PHONE1,
	    "unsubscribed"));
	assert_int_equal(gw_count_to(f, PHONE1, "unsubscribed"), 1);

	/* START: consent is back at once; the mirror follows within a block interval. */
	assert_int_equal(sms_in(f, PHONE1, "START", resp, sizeof(resp)), 200);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
	it_sleep_ms(1000);
	assert_int_equal(it_publish(f->rc, it_deal("d-2", "laptop", 600)), 0);
	c.f = f;
	c.phone = PHONE1;
	c.needle = NULL;
	c.n = 2;
	assert_true(it_wait(count_reached, &c, 10000));
	assert_string_equal(hget(f, "push:d-2", "s-1:sms", v, sizeof(v)), "sent");
}

/* A subscriber document in the form start() imports, with consent time t. */
static const char *
sub1_json(const char *t)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "{\"id\":\"s-1\",\"phone\":\"" PHONE1 "\","
	    "\"channels\":[\"sms\"],\"consent\":{\"sms\":\"%s\"},"
	    "\"timezone\":\"America/Chicago\",\"interests\":{\"categories\":"
	    "[\"laptop\"]}}", t);
	return buf;
}

/*
 * The consent record outranks an older consent time: writing back a document (an
 * old import file, what GET returned before) never restores consent the subscriber
 * revoked since, through dealpushctl or the admin API; a consent time given after
 * the STOP does. Every change is in the consent record (consent:records).
 */
static void
reimport_after_stop_keeps_the_opt_out_until_consent_is_given_again(void **state)
{
	struct fx *f = *state;
	static struct it_resp rep;
	char resp[4096], v[64], line[600], when[40];
	struct want_outcome w;

	start(f);
	assert_int_equal(sms_in(f, PHONE1, "STOP", resp, sizeof(resp)), 200);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 0);

	snprintf(line, sizeof(line), "%s\n", sub1_json("2026-01-02T10:00:00Z"));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 0);
	assert_non_null(strstr(hget(f, "subscribers", "s-1", resp, sizeof(resp)),
	    "\"consent\":{\"sms\":null"));
	assert_int_equal(it_http(f->http, "PUT", "/v1/subscribers/s-1", "Authorization: Bearer "
	    ADMIN_TOKEN "\r\n", sub1_json("2026-01-02T10:00:00Z"),
	    strlen(sub1_json("2026-01-02T10:00:00Z")), &rep), 200);
	assert_non_null(strstr(rep.body, "\"consent_kept_out\":[\"sms\"]"));
	assert_non_null(strstr(rep.body, "\"sms\":null"));
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 0);
	/* dealpushctl over the API says so, by line. */
	{
		char bin[600], url[64], file[512], out[4096];
		const char *argv[] = { bin, "--api", url, "--token", ADMIN_TOKEN, "subscribers",
		    "import", file, NULL };
		FILE *fp;

		snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->http);
		it_path(file, sizeof(file), "reimport", ".jsonl");
		assert_non_null(fp = fopen(file, "w"));
		fprintf(fp, "# old export\n%s\n", sub1_json("2026-01-02T10:00:00Z"));
		fclose(fp);
		assert_int_equal(it_run(argv, out, sizeof(out)), 0);
		assert_non_null(strstr(out, ":2: note: consent for sms not restored"));
	}
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 0);

	/* The next deal reaches the other two only. */
	it_sleep_ms(800);
	assert_int_equal(it_publish(f->rc, it_deal("d-r", "laptop", 600)), 0);
	w.rc = f->rc;
	w.outcome = "sent";
	w.n = 2;
	assert_true(it_wait(outcomes_reached, &w, 10000));
	it_sleep_ms(500);
	assert_int_equal(gw_count_to(f, PHONE1, NULL), gw_count_to(f, PHONE1,
	    "unsubscribed"));

	/* Consent given after the STOP (a new opt-in on the shop's site) restores it. */
	time_format_rfc3339(it_now() + 60, when, sizeof(when));
	snprintf(line, sizeof(line), "%s\n", sub1_json(when));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
	assert_string_equal(it_consent_last(f->rc, "s-1", "sms", "state", v, sizeof(v)), "granted");
	assert_string_equal(it_consent_last(f->rc, "s-1", "sms", "how", v, sizeof(v)), "import");
	/* granted (start), opted_out (STOP), granted (now): the refused writes add none. */
	assert_int_equal(it_consent_events(f->rc, "s-1"), 3);
	{
		const char *rec = hget(f, "consent:records", "s-1", resp, sizeof(resp)), *p;

		assert_non_null(p = strstr(rec, "\tsms\tgranted\timport\t1767348000\n"));
		assert_non_null(p = strstr(p, "\tsms\topted_out\tsms:STOP\tSTOP\n"));
		assert_non_null(strstr(p, "\tsms\tgranted\timport\t"));
	}
}

/*
 * A STOP that arrives while the number's push is admitted but waiting for a gateway
 * slot (one request at a time, each answered after 1.5 s) stops that push too: no
 * text to the number after the webhook answered.
 */
static void
stop_while_a_push_waits_for_the_gateway_stops_it(void **state)
{
	static const char *const phones[] = { PHONE1, PHONE2, PHONE3 };
	const char *flags[] = { "--latency-ms", "1500", NULL };
	struct fx *f = *state;
	char resp[4096], v[64], field[32];
	struct want_outcome w;
	int i, target = -1, tries;

	start_with(f, flags, "[deliver]\nmax_in_flight = 1\n");
	assert_int_equal(it_publish(f->rc, it_deal("d-w", "laptop", 600)), 0);
	/* One push is with the gateway (claimed: "sending"); find one that is admitted
	 * and waiting behind it. Admitted alone is not enough: before the first claim
	 * every push is admitted, and the one picked may be the one claimed next. */
	for (tries = 0; tries < 200 && target < 0; tries++) {
		int sending = 0, admitted = -1;

		for (i = 0; i < 3; i++) {
			snprintf(field, sizeof(field), "s-%d:sms", i + 1);
			hget(f, "push:d-w", field, v, sizeof(v));
			if (strncmp(v, "sending", 7) == 0)
				sending = 1;
			else if (strcmp(v, "admitted") == 0 && admitted < 0)
				admitted = i;
		}
		if (sending && admitted >= 0)
			target = admitted;
		else
			it_sleep_ms(10);
	}
	assert_true(target >= 0);
	assert_int_equal(sms_in(f, phones[target], "STOP", resp, sizeof(resp)), 200);
	w.rc = f->rc;
	w.outcome = "no_consent";
	w.n = 1;
	assert_true(it_wait(outcomes_reached, &w, 15000));
	snprintf(field, sizeof(field), "s-%d:sms", target + 1);
	assert_string_equal(hget(f, "push:d-w", field, v, sizeof(v)), "no_consent");
	it_sleep_ms(2000);
	/* Only the confirmation reached that number. */
	assert_int_equal(gw_count_to(f, phones[target], NULL), gw_count_to(f,
	    phones[target], "unsubscribed"));
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-w", "no_consent") == 1);
}

/* The notifier logged a plan that held SMS back for a paused template. */
static int
log_has_paused(struct fx *f)
{
	FILE *fp = fopen(f->nt.proc.log, "r");
	char line[4096];
	int found = 0;

	if (fp == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL)
		found = strstr(line, "deal=d-2") != NULL && strstr(line, "paused=") != NULL &&
		    strstr(line, "paused=0 ") == NULL;
	fclose(fp);
	return found;
}

static void
status_callbacks_count_deliveries_and_act_on_error_codes(void **state)
{
	struct fx *f = *state;
	char entry[64], push[128], info[256], rule[300], v[128], path[320], *tab;
	static struct it_resp rep;
	struct want_outcome w;
	redisReply *r;

	start(f);
	assert_int_equal(it_publish(f->rc, it_deal("d-1", "laptop", 600)), 0);
	w.rc = f->rc;
	w.outcome = "sent";
	w.n = 3;
	assert_true(it_wait(outcomes_reached, &w, 10000));
	r = redisCommand(f->rc, "XRANGE deals - + COUNT 1");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	snprintf(entry, sizeof(entry), "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
	/* Wait for pushinfo (written in the same script as "sent"). */
	hget(f, "pushinfo:d-1", "s-3:sms", info, sizeof(info));
	assert_non_null(tab = strchr(info, '\t'));
	*tab = '\0';
	snprintf(rule, sizeof(rule), "%s", info);

	/* delivered: counted once, however often Twilio calls. */
	snprintf(push, sizeof(push), "%s:s-1:sms", entry);
	assert_int_equal(status_cb(f, push, "sent", NULL, PHONE1), 204);
	assert_string_equal(hget(f, "delivery:d-1", "s-1:sms", v, sizeof(v)), "sent");
	assert_int_equal(status_cb(f, push, "delivered", NULL, PHONE1), 204);
	assert_int_equal(status_cb(f, push, "delivered", NULL, PHONE1), 204);
	assert_int_equal(status_cb(f, push, "sent", NULL, PHONE1), 204);
	assert_string_equal(hget(f, "delivery:d-1", "s-1:sms", v, sizeof(v)), "delivered");
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-1", "delivered") == 1);
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_RULE, rule, "delivered") == 1);

	/* 30006 (landline): no more texts to that number. */
	snprintf(push, sizeof(push), "%s:s-2:sms", entry);
	assert_int_equal(status_cb(f, push, "undelivered", "30006", PHONE2), 204);
	assert_int_equal(hexists(f, "consent:sms", "s-2"), 0);
	assert_string_equal(it_consent_last(f->rc, "s-2", "sms", "how", v, sizeof(v)),
	    "twilio:30006");
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-1", "undelivered") == 1);
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-1", "error:30006") == 1);

	/* 30007 (carrier filtered): the rule's template is paused, the report says so. */
	snprintf(push, sizeof(push), "%s:s-3:sms", entry);
	assert_int_equal(status_cb(f, push, "undelivered", "30007", PHONE3), 204);
	assert_int_equal(hexists(f, "paused_templates", info), 1);
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_RULE, rule, "filtered") == 1);
	assert_int_equal(hexists(f, "consent:sms", "s-3"), 1);
	/* The pause reaches every notifier within a second: that rule sends no more
	 * texts, and the plan says how many it held back. */
	it_sleep_ms(1500);
	w.n = it_outcomes(f->rc, "sent");
	assert_int_equal(it_publish(f->rc, it_deal("d-2", "laptop", 600)), 0);
	it_sleep_ms(1000);
	assert_int_equal(it_outcomes(f->rc, "sent"), w.n);
	assert_true(log_has_paused(f));
	/* ... and the rule's report says its template is paused. */
	snprintf(path, sizeof(path), "/v1/reports/rule/%s", info);
	assert_int_equal(it_http(f->http, "GET", path, "Authorization: Bearer " ADMIN_TOKEN
	    "\r\n", NULL, 0, &rep), 200);
	assert_non_null(strstr(rep.body, "\"template_paused\":true"));
	assert_non_null(strstr(rep.body, "\"filtered\":1"));

	/* Unknown push or status: 2xx, counted, nothing changed. */
	assert_int_equal(status_cb(f, "999-0:s-9:sms", "delivered", NULL, PHONE1), 204);
	assert_int_equal(status_cb(f, "not a push", "delivered", NULL, PHONE1), 204);
	snprintf(push, sizeof(push), "%s:s-1:sms", entry);
	assert_int_equal(status_cb(f, push, "exploded", NULL, PHONE1), 204);
	/* Counted in the stats of the shard the push id names (summed on read). */
	assert_int_equal(it_shards_stat(f->rc, "hook:status:unknown_push"), 1);
	assert_string_equal(hget(f, "delivery:d-1", "s-1:sms", v, sizeof(v)), "delivered");
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
}

static void
signed_dm_endpoint_opts_out_and_in(void **state)
{
	struct fx *f = *state;
	char resp[4096], v[128];

	start(f);
	assert_int_equal(dm_post(f, "x-dm", "{\"dm_user_id\":\"4242\",\"text\":\"Stop!\"}",
	    it_now(), INBOUND_SECRET, resp, sizeof(resp)), 200);
	assert_non_null(strstr(resp, "opted_out"));
	assert_int_equal(hexists(f, "consent:dm", "s-3"), 0);
	assert_int_equal(hexists(f, "consent:sms", "s-3"), 1);
	assert_string_equal(it_consent_last(f->rc, "s-3", "dm", "how", v, sizeof(v)), "dm:STOP");
	assert_non_null(strstr(hget(f, "subscribers", "s-3", v, sizeof(v)), "\"dm\":null"));
	assert_int_equal(dm_post(f, "webhook", "{\"subscriber_id\":\"s-3\",\"text\":\"START\"}",
	    it_now(), INBOUND_SECRET, resp, sizeof(resp)), 200);
	assert_non_null(strstr(resp, "opted_in"));
	assert_int_equal(hexists(f, "consent:dm", "s-3"), 1);
	assert_int_equal(dm_post(f, "x-dm", "{\"dm_user_id\":\"777\",\"text\":\"STOP\"}",
	    it_now(), INBOUND_SECRET, resp, sizeof(resp)), 200);
	assert_non_null(strstr(resp, "unknown_subscriber"));
	assert_int_equal(dm_post(f, "x-dm", "{\"dm_user_id\":\"4242\",\"text\":\"help\"}",
	    it_now(), INBOUND_SECRET, resp, sizeof(resp)), 200);
	assert_non_null(strstr(resp, "\"help\""));
	assert_int_equal(hexists(f, "consent:dm", "s-3"), 1);
	/* No confirmation text on the DM path. */
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);
}

/* Requests gwsim accepted (201) for this number. */
static int
accepted_to(struct fx *f, const char *to)
{
	cJSON *reqs = it_gwsim_requests(&f->gw), *o;
	int n = 0;

	cJSON_ArrayForEach(o, reqs) {
		cJSON *t = cJSON_GetObjectItem(o, "to"), *st = cJSON_GetObjectItem(o, "status");
		if (cJSON_IsString(t) && strcmp(t->valuestring, to) == 0 &&
		    cJSON_IsNumber(st) && st->valueint == 201)
			n++;
	}
	cJSON_Delete(reqs);
	return n;
}

/* 1 when every accepted request to number carried the same body (and there was one). */
static int
same_body_to(struct fx *f, const char *to)
{
	cJSON *reqs = it_gwsim_requests(&f->gw), *o;
	char first[1024] = "";
	int same = 1, n = 0;

	cJSON_ArrayForEach(o, reqs) {
		cJSON *t = cJSON_GetObjectItem(o, "to"), *st = cJSON_GetObjectItem(o, "status");
		cJSON *b = cJSON_GetObjectItem(o, "body");

		if (!cJSON_IsString(t) || strcmp(t->valuestring, to) != 0 ||
		    !cJSON_IsNumber(st) || st->valueint != 201 || !cJSON_IsString(b))
			continue;
		if (n++ == 0)
			snprintf(first, sizeof(first), "%s", b->valuestring);
		else if (strcmp(first, b->valuestring) != 0)
			same = 0;
	}
	cJSON_Delete(reqs);
	return n > 0 && same;
}

struct resent {
	struct fx *f;
	const char *to;
	int n;
};

static int
resent_reached(void *arg)
{
	struct resent *r = arg;

	return accepted_to(r->f, r->to) >= r->n;
}

static void
unreachable_handset_30003_is_sent_once_more(void **state)
{
	struct fx *f = *state;
	char entry[64], push[128], v[128];
	struct want_outcome w;
	struct resent rs = { f, PHONE1, 2 };
	redisReply *r;

	start(f);
	assert_int_equal(it_publish(f->rc, it_deal("d-9", "laptop", 600)), 0);
	w.rc = f->rc;
	w.outcome = "sent";
	w.n = 3;
	assert_true(it_wait(outcomes_reached, &w, 10000));
	r = redisCommand(f->rc, "XRANGE deals - + COUNT 1");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	snprintf(entry, sizeof(entry), "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
	snprintf(push, sizeof(push), "%s:s-1:sms", entry);
	assert_int_equal(accepted_to(f, PHONE1), 1);

	/* 30003: the handset was off; the same text goes once more, same push id. */
	assert_int_equal(status_cb(f, push, "undelivered", "30003", PHONE1), 204);
	assert_true(it_wait(resent_reached, &rs, 10000));
	assert_true(same_body_to(f, PHONE1));
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-9", "redelivery") == 1);
	assert_int_equal(hexists(f, "consent:sms", "s-1"), 1);
	/* The first attempt's callbacks again (Twilio retrying, a replay): stale, they
	 * say nothing about the new attempt. */
	assert_int_equal(status_cb(f, push, "undelivered", "30003", PHONE1), 204);
	assert_int_equal(status_cb(f, push, "delivered", NULL, PHONE1), 204);
	assert_string_equal(hget(f, "delivery:d-9", "s-1:sms", v, sizeof(v)), "");
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-9", "delivered") == 0);
	/* The new attempt's own callback counts; its 30003 sends nothing more. */
	assert_int_equal(status_cb_sid(f, push, "undelivered", "30003", PHONE1, "SM0003"),
	    204);
	assert_string_equal(hget(f, "delivery:d-9", "s-1:sms", v, sizeof(v)), "undelivered");
	it_sleep_ms(1500);
	assert_int_equal(accepted_to(f, PHONE1), 2);
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-9", "redelivery") == 1);
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-9", "undelivered") == 2);

	/* What a notifier before the compact form kept (the whole job spec and recipient
	 * line) is still resent, once. */
	snprintf(push, sizeof(push), "%s:s-2:sms", entry);
	r = redisCommand(f->rc, "HSET pushline:d-9 s-2:sms %lld\t%s\t\t\tsms\ts-2\t"
	    PHONE2 "\tdefault\tthe old form's text", it_now() + 600, entry);
	freeReplyObject(r);
	rs.to = PHONE2;
	assert_int_equal(status_cb(f, push, "undelivered", "30003", PHONE2), 204);
	assert_true(it_wait(resent_reached, &rs, 10000));
	assert_int_equal(status_cb(f, push, "undelivered", "30003", PHONE2), 204);
	it_sleep_ms(1000);
	assert_int_equal(accepted_to(f, PHONE2), 2);
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "d-9", "redelivery") == 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(signatures_and_hostile_input_change_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(every_keyword_variant_has_its_effect, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    stop_then_deal_sends_nothing_and_start_sends_again, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    stop_while_a_push_waits_for_the_gateway_stops_it, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    reimport_after_stop_keeps_the_opt_out_until_consent_is_given_again, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    status_callbacks_count_deliveries_and_act_on_error_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(unreachable_handset_30003_is_sent_once_more,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(signed_dm_endpoint_opts_out_and_in, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("hooks", tests, NULL, NULL);
}
