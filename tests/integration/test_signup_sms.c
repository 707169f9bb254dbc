/*
 * test_signup_sms.c: sign-up by text with double opt-in, and the notifier's texts in
 * English and Spanish (issue 18 items 1 and 2), on a running notifier through signed
 * Twilio webhooks: a keyword gets the confirmation request, a "Y" makes the number a
 * subscriber with SMS consent and its proof, who then gets the deals of the
 * keyword's interests; a "Y" with no request open is what it was before sign-up; a
 * number that said STOP comes back through the double opt-in; the day's limit of
 * requests per number; a replayed "Y"; a closed window; Spanish keywords, HELP and
 * opt-out confirmation. Counts and stored state, never timings.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "twsig.h"

#define PUBLIC_URL "https://signup.example.test"
#define TERMS "https://acme.example/terms?a=1&b=2"
#define PHONE_NEW "+15125550201"        /* 512: Texas, America/Chicago */
#define PHONE_ES "+13055550202"         /* 305: Florida, America/New_York */
#define PHONE_OLD "+15125550203"
#define PHONE_LIM "+15125550204"
#define PHONE_Y "+15125550205"
#define CONSENT_T "2026-01-02T10:00:00Z"

#define SIGNUP_CONF "[signup]\n" \
	"keywords = JOIN, DEALS LAPTOP: laptops, OFERTAS: phones @es\n" \
	"program = Acme Deals\nmax_per_week = 6\nterms_url = " TERMS "\n" \
	"max_requests_per_day = 3\n"

struct fx {
	redisContext *rc;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;
	int port, http;
	struct it_resp resp;            /* the last webhook's answer */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(struct fx));
	char dir[512], subs[512], rules[600], conf[1200];
	FILE *rf;

	*state = f;
	/* One rule, with a Spanish template for subscribers whose locale is es. */
	it_path(rules, sizeof(rules), "rules-signup", "");
	assert_int_equal(mkdir(rules, 0700) == 0 || errno == EEXIST, 1);
	strcat(rules, "/all.rules");
	assert_non_null(rf = fopen(rules, "w"));
	fputs("rule interested\n  audience interested\n  send sms\n"
	    "  template sms \"Deal: {title} {link} Reply STOP to end\"\n"
	    "  template sms locale es \"Oferta: {title} {link} Responde ALTO para "
	    "cancelar\"\nend\n", rf);
	fclose(rf);
	*strrchr(rules, '/') = '\0';
	snprintf(conf, sizeof(conf), "public_url = " PUBLIC_URL "\n" SIGNUP_CONF
	    "[rules]\ndir = %s\n", rules);
	it_path(dir, sizeof(dir), "redis-signup", "");
	f->port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	snprintf(subs, sizeof(subs), "{\"id\":\"s-old\",\"phone\":\"" PHONE_OLD "\","
	    "\"channels\":[\"sms\"],\"consent\":{\"sms\":\"" CONSENT_T "\"},"
	    "\"timezone\":\"America/Chicago\",\"interests\":{\"categories\":[\"tv\"]}}\n");
	assert_int_equal(it_import(f->port, subs), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-signup", conf);
	assert_true(f->http > 0);
	it_sleep_ms(300);          /* the mirror loads once /healthz is fine */
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

/* The form body and the signature header of an inbound SMS from with text and
 * MessageSid sid, signed as Twilio signs it. */
static void
sms_form(const char *from, const char *text, const char *sid, char *body, size_t bsize,
    char *hdr, size_t hsize)
{
	struct twsig_param p[4] = { { "MessageSid", sid }, { "From", from },
		{ "To", IT_FROM }, { "Body", text } };
	char sig[64];
	size_t i;

	body[0] = '\0';
	for (i = 0; i < 4; i++) {
		if (i > 0)
			strcat(body, "&");
		it_pct_append(body, bsize, p[i].name);
		strcat(body, "=");
		it_pct_append(body, bsize, p[i].value);
	}
	assert_int_equal(twsig_compute(IT_AUTH_TOKEN, PUBLIC_URL "/hooks/twilio/inbound",
	    p, 4, sig, sizeof(sig)), 0);
	snprintf(hdr, hsize, "Content-Type: application/x-www-form-urlencoded\r\n"
	    "X-Twilio-Signature: %s\r\n", sig);
}

/* An inbound SMS from with text, MessageSid sid (NULL: a new one), signed as Twilio
 * signs it. Returns the status; the answer is in resp. */
static int
sms_in_to(struct fx *f, const char *from, const char *text, const char *sid,
    struct it_resp *resp)
{
	static unsigned seq;
	char body[4096], hdr[256], own[40];

	if (sid == NULL) {
		snprintf(own, sizeof(own), "SM%08x%08xs", (unsigned)getpid(), ++seq);
		sid = own;
	}
	sms_form(from, text, sid, body, sizeof(body), hdr, sizeof(hdr));
	it_http(f->http, "POST", "/hooks/twilio/inbound", hdr, body, strlen(body), resp);
	return resp->status;
}

/* The same, the answer in f->resp. */
static int
sms_in(struct fx *f, const char *from, const char *text, const char *sid)
{
	return sms_in_to(f, from, text, sid, &f->resp);
}

/* Name (a key of today's single-instance layout: "subscribers", "consent:sms" ...) as
 * it is for subscriber sub in the layout in force (itshards.h). */
static const char *
key_of(const char *name, const char *sub)
{
	static char buf[4][256];
	static unsigned n;

	return it_key_for(name, sub, buf[n++ % 4], sizeof(buf[0]));
}

/* The stored subscriber id, parsed (NULL when absent); the caller deletes it. */
static cJSON *
stored(struct fx *f, const char *id)
{
	redisReply *r = redisCommand(f->rc, "HGET %s %s", key_of("subscribers", id), id);
	cJSON *o = NULL;

	if (r != NULL && r->type == REDIS_REPLY_STRING)
		o = cJSON_Parse(r->str);
	freeReplyObject(r);
	return o;
}

static int
has_string(const cJSON *a, const char *s)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, a)
		if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
			return 1;
	return 0;
}

/* Requests gwsim logged to phone whose body contains needle. */
static int
gw_count_to(struct fx *f, const char *phone, const char *needle)
{
	cJSON *reqs = it_gwsim_requests(&f->gw), *o;
	int n = 0;

	cJSON_ArrayForEach(o, reqs) {
		cJSON *to = cJSON_GetObjectItem(o, "to"), *b = cJSON_GetObjectItem(o, "body");

		if (cJSON_IsString(to) && strcmp(to->valuestring, phone) == 0 &&
		    (needle == NULL || (cJSON_IsString(b) && strstr(b->valuestring, needle))))
			n++;
	}
	cJSON_Delete(reqs);
	return n;
}

struct want_text {
	struct fx *f;
	const char *phone, *needle;
};

static int
texted(void *arg)
{
	struct want_text *w = arg;

	return gw_count_to(w->f, w->phone, w->needle) > 0;
}

static void
keyword_then_yes_makes_a_subscriber_who_gets_deals(void **state)
{
	struct fx *f = *state;
	struct want_text w = { f, PHONE_NEW, "Deal: " };
	char buf[1024];
	cJSON *o;

	assert_int_equal(sms_in(f, PHONE_NEW, "deals laptop!", NULL), 200);
	/* The confirmation request says what CTIA asks, escaped as XML. */
	assert_non_null(strstr(f->resp.body, "Acme Deals: reply Y to confirm"));
	assert_non_null(strstr(f->resp.body, "Up to 6 msgs/week"));
	assert_non_null(strstr(f->resp.body, "Msg &amp; data rates may apply"));
	assert_non_null(strstr(f->resp.body, "https://acme.example/terms?a=1&amp;b=2"));
	assert_non_null(strstr(f->resp.body, "Reply HELP for help, STOP to cancel."));
	assert_null(stored(f, PHONE_NEW));            /* nobody until the "Y" */
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", key_of("consent:sms", PHONE_NEW),
	    PHONE_NEW), 0);

	assert_int_equal(sms_in(f, PHONE_NEW, "Y", NULL), 200);
	assert_non_null(strstr(f->resp.body, "Acme Deals: you're subscribed"));
	o = stored(f, PHONE_NEW);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "phone")->valuestring, PHONE_NEW);
	assert_string_equal(cJSON_GetObjectItem(o, "timezone")->valuestring,
	    "America/Chicago");
	assert_string_equal(cJSON_GetObjectItem(o, "locale")->valuestring, "en");
	assert_true(has_string(cJSON_GetObjectItem(o, "channels"), "sms"));
	assert_true(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "consent"),
	    "sms")));
	assert_true(has_string(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "interests"),
	    "categories"), "laptops"));
	cJSON_Delete(o);
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", key_of("consent:sms", PHONE_NEW),
	    PHONE_NEW), 1);
	assert_int_equal(it_int(f->rc, "EXISTS %s", key_of("signup:" PHONE_NEW, NULL)), 0);
	/* The proof: how, and the exact request the number said Y to. */
	assert_string_equal(it_consent_last(f->rc, PHONE_NEW, "sms", "state", buf,
	    sizeof(buf)), "opted_in");
	assert_string_equal(it_consent_last(f->rc, PHONE_NEW, "sms", "how", buf,
	    sizeof(buf)), "sms:double_opt_in");
	it_consent_last(f->rc, PHONE_NEW, "sms", "detail", buf, sizeof(buf));
	assert_non_null(strstr(buf, "keyword=deals laptop"));
	assert_non_null(strstr(buf, "answer=Y"));
	assert_non_null(strstr(buf, "asked=Acme Deals: reply Y to confirm"));
	assert_non_null(strstr(buf, "Msg & data rates may apply"));
	/* The mirror knows the new subscriber: a laptop deal reaches the number. */
	assert_int_equal(it_publish(f->rc, it_deal("d-signup-1", "laptops", 3600)), 0);
	assert_true(it_wait(texted, &w, 15000));
}

/* Times needle occurs in s. */
static int
occurs(const char *s, const char *needle)
{
	int n = 0;

	while (s != NULL && (s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* Two "Y" answers to one request, each its own message (a subscriber tapping twice,
 * or a gateway's retry under a new id), arriving together while Redis holds writes
 * back, so that the notifier reads the open request for both before either is
 * stored: one subscriber, one consent event, one welcome; the other "Y" is a reply
 * like any other. */
static void
two_yes_at_once_make_one_subscriber(void **state)
{
	struct fx *f = *state;
	static struct it_resp resp[2];
	int i;

	for (i = 0; i < 3; i++) {
		char phone[32], sid[2][64], body[2][1024], hdr[2][256];
		struct it_req q[2];
		redisReply *r;
		int k;

		snprintf(phone, sizeof(phone), "+151255503%02d", i);
		assert_int_equal(sms_in(f, phone, "JOIN", NULL), 200);
		for (k = 0; k < 2; k++) {
			snprintf(sid[k], sizeof(sid[k]), "SMtogether%d%d%08x", i, k,
			    (unsigned)getpid());
			sms_form(phone, "Y", sid[k], body[k], sizeof(body[k]), hdr[k],
			    sizeof(hdr[k]));
			q[k] = (struct it_req){ "POST", "/hooks/twilio/inbound", hdr[k], body[k],
				strlen(body[k]) };
		}
		/* Writes wait (reads do not) for a moment: both requests are read before
		 * either is stored, whatever the timing of this machine. */
		freeReplyObject(redisCommand(f->rc, "CLIENT PAUSE 300 WRITE"));
		assert_int_equal(it_http_together(f->http, 2, q, resp), 2);
		assert_int_equal(resp[0].status, 200);
		assert_int_equal(resp[1].status, 200);
		assert_int_equal(occurs(resp[0].body, "you're subscribed") +
		    occurs(resp[1].body, "you're subscribed"), 1);
		assert_int_equal(it_shards_sum_key(f->rc, "HLEN %s", KEYS_SUBSCRIBERS), 2 + i);
		r = redisCommand(f->rc, "HGET %s %s", key_of("consent:records", phone), phone);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_STRING);
		assert_int_equal(occurs(r->str, "sms:double_opt_in"), 1);
		freeReplyObject(r);
	}
}

static void
yes_without_a_request_is_what_it_was(void **state)
{
	struct fx *f = *state;
	char buf[256];

	assert_int_equal(sms_in(f, PHONE_Y, "Y", NULL), 200);
	assert_null(strstr(f->resp.body, "<Message>"));
	assert_null(stored(f, PHONE_Y));
	/* kept for review, as any reply */
	assert_true(it_int(f->rc, "XLEN replies") >= 1);
	/* A known subscriber who said STOP: YES restores consent, as START does. */
	assert_int_equal(sms_in(f, PHONE_OLD, "STOP", NULL), 200);
	assert_int_equal(it_int(f->rc, "HEXISTS %s s-old", key_of("consent:sms", "s-old")), 0);
	assert_int_equal(sms_in(f, PHONE_OLD, "YES", NULL), 200);
	assert_non_null(strstr(f->resp.body, "Acme Deals: you're resubscribed."));
	assert_int_equal(it_int(f->rc, "HEXISTS %s s-old", key_of("consent:sms", "s-old")), 1);
	/* Already in force: no second confirmation. */
	assert_int_equal(sms_in(f, PHONE_OLD, "START", NULL), 200);
	assert_null(strstr(f->resp.body, "<Message>"));
	assert_string_equal(it_consent_last(f->rc, "s-old", "sms", "how", buf,
	    sizeof(buf)), "sms:START");
}

static void
a_number_that_said_stop_comes_back_by_double_opt_in(void **state)
{
	struct fx *f = *state;
	char buf[512];
	cJSON *o;

	assert_int_equal(sms_in(f, PHONE_OLD, "STOP", NULL), 200);
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", key_of("suppressed:sms", PHONE_OLD),
	    PHONE_OLD), 1);
	assert_int_equal(sms_in(f, PHONE_OLD, "join", NULL), 200);
	assert_non_null(strstr(f->resp.body, "reply Y to confirm"));
	assert_int_equal(it_int(f->rc, "HEXISTS %s s-old", key_of("consent:sms", "s-old")), 0);
	assert_int_equal(sms_in(f, PHONE_OLD, "yes", NULL), 200);
	assert_non_null(strstr(f->resp.body, "you're subscribed"));
	/* The subscriber the number belongs to, not a new one. */
	assert_null(stored(f, PHONE_OLD));
	o = stored(f, "s-old");
	assert_non_null(o);
	assert_true(has_string(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "interests"),
	    "categories"), "tv"));
	assert_true(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "consent"),
	    "sms")));
	cJSON_Delete(o);
	assert_int_equal(it_int(f->rc, "HEXISTS %s s-old", key_of("consent:sms", "s-old")), 1);
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", key_of("suppressed:sms", PHONE_OLD),
	    PHONE_OLD), 0);
	assert_string_equal(it_consent_last(f->rc, "s-old", "sms", "how", buf,
	    sizeof(buf)), "sms:double_opt_in");
}

static void
requests_are_limited_per_number_and_replays_count_once(void **state)
{
	struct fx *f = *state;
	long long events;
	int i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(sms_in(f, PHONE_LIM, "JOIN", NULL), 200);
		assert_non_null(strstr(f->resp.body, "reply Y to confirm"));
	}
	/* The fourth request of the day gets no answer (no text to the number). */
	assert_int_equal(sms_in(f, PHONE_LIM, "JOIN", NULL), 200);
	assert_null(strstr(f->resp.body, "<Message>"));
	assert_int_equal(it_int(f->rc, "INCRBY %s 0", key_of("signup:asked:" PHONE_LIM, NULL)), 4);
	/* The request stays open: the Y still works, and its replay changes nothing. */
	assert_int_equal(sms_in(f, PHONE_LIM, "y", "SM00000000000000000000000000000abc"),
	    200);
	assert_non_null(strstr(f->resp.body, "you're subscribed"));
	events = it_consent_events(f->rc, PHONE_LIM);
	assert_true(events >= 1);
	assert_int_equal(sms_in(f, PHONE_LIM, "y", "SM00000000000000000000000000000abc"),
	    200);
	assert_non_null(strstr(f->resp.body, "you're subscribed"));
	assert_int_equal(it_consent_events(f->rc, PHONE_LIM), events);
}

static void
a_closed_window_creates_nobody(void **state)
{
	struct fx *f = *state;

	assert_int_equal(sms_in(f, PHONE_Y, "JOIN", NULL), 200);
	assert_int_equal(it_int(f->rc, "EXISTS %s", key_of("signup:" PHONE_Y, NULL)), 1);
	assert_true(it_int(f->rc, "TTL %s", key_of("signup:" PHONE_Y, NULL)) > 86000);
	/* The window ends (the key's TTL, shortened here). */
	assert_int_equal(it_int(f->rc, "PEXPIRE %s 1", key_of("signup:" PHONE_Y, NULL)), 1);
	it_sleep_ms(20);
	assert_int_equal(sms_in(f, PHONE_Y, "Y", NULL), 200);
	assert_null(strstr(f->resp.body, "<Message>"));
	assert_null(stored(f, PHONE_Y));
}

static void
spanish_keyword_help_and_opt_out(void **state)
{
	struct fx *f = *state;
	struct want_text w = { f, PHONE_ES, "Cancelaste tu suscripci" };
	cJSON *o;

	assert_int_equal(sms_in(f, PHONE_ES, "Ofertas", NULL), 200);
	assert_non_null(strstr(f->resp.body, "Acme Deals: responde S para confirmar"));
	assert_non_null(strstr(f->resp.body, "Hasta 6 mensajes/semana"));
	assert_non_null(strstr(f->resp.body, "AYUDA"));
	assert_int_equal(sms_in(f, PHONE_ES, "S\xC3\xAD", NULL), 200);
	assert_non_null(strstr(f->resp.body, "Acme Deals: ya recibes nuestras ofertas"));
	o = stored(f, PHONE_ES);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "locale")->valuestring, "es");
	assert_string_equal(cJSON_GetObjectItem(o, "timezone")->valuestring,
	    "America/New_York");
	assert_true(has_string(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "interests"),
	    "categories"), "phones"));
	cJSON_Delete(o);
	it_sleep_ms(1300);           /* the mirror and the phone index follow */
	/* HELP in the subscriber's language; AYUDA always in Spanish. */
	assert_int_equal(sms_in(f, PHONE_ES, "HELP", NULL), 200);
	assert_non_null(strstr(f->resp.body, "responde ALTO para cancelar"));
	assert_non_null(strstr(f->resp.body, "acme.example/terms"));
	assert_int_equal(sms_in(f, PHONE_NEW, "ayuda", NULL), 200);
	assert_non_null(strstr(f->resp.body, "responde ALTO para cancelar"));
	assert_int_equal(sms_in(f, PHONE_NEW, "help", NULL), 200);
	assert_non_null(strstr(f->resp.body, "Acme Deals: reply STOP to unsubscribe"));
	/* The rule's Spanish template for a subscriber whose locale is es. */
	w.needle = "Oferta: ";
	assert_int_equal(it_publish(f->rc, it_deal("d-signup-es", "phones", 3600)), 0);
	assert_true(it_wait(texted, &w, 15000));
	assert_int_equal(gw_count_to(f, PHONE_ES, "Deal: "), 0);
	w.needle = "Cancelaste tu suscripci";
	/* The opt-out confirmation in Spanish, through the gateway. */
	assert_int_equal(sms_in(f, PHONE_ES, "STOP", NULL), 200);
	assert_true(it_wait(texted, &w, 10000));
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", key_of("consent:sms", PHONE_ES),
	    PHONE_ES), 0);
}

static void
hostile_bodies_change_nothing(void **state)
{
	struct fx *f = *state;
	char big[3000];

	memset(big, 'J', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(sms_in(f, PHONE_Y, big, NULL), 200);
	assert_int_equal(sms_in(f, PHONE_Y, "JOIN JOIN", NULL), 200);
	assert_int_equal(sms_in(f, PHONE_Y, "JOINED", NULL), 200);
	assert_int_equal(it_int(f->rc, "EXISTS %s", key_of("signup:" PHONE_Y, NULL)), 0);
	/* A sender that is not a number never asks. */
	assert_int_equal(sms_in(f, "alice", "JOIN", NULL), 200);
	assert_null(strstr(f->resp.body, "<Message>"));
	assert_int_equal(it_int(f->rc, "EXISTS %s", key_of("signup:alice", NULL)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    keyword_then_yes_makes_a_subscriber_who_gets_deals, setup, teardown),
		cmocka_unit_test_setup_teardown(yes_without_a_request_is_what_it_was, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(two_yes_at_once_make_one_subscriber, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_number_that_said_stop_comes_back_by_double_opt_in, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    requests_are_limited_per_number_and_replays_count_once, setup, teardown),
		cmocka_unit_test_setup_teardown(a_closed_window_creates_nobody, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(spanish_keyword_help_and_opt_out, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(hostile_bodies_change_nothing, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
