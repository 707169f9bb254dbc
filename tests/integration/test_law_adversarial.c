/*
 * test_law_adversarial.c: the adversarial run of issue 12, scaled down, counted at the
 * gateway: every text gwsim received is checked against the law of its recipient's
 * place at the instant it arrived, by an oracle of this file's own (not the
 * notifier's code).
 *
 * Subscribers in FL, OK, MD, WA, CT, AZ, HI, AK, PR, NY and CA, some stating a zone
 * or region that disagrees with their area code, and numbers that said STOP (in
 * several forms, one replayed START, one before it was imported). Six phases, the
 * notifier's clock moved to each (notifier.clock_offset_s), in order:
 *   1. fall-back night (2026-11-01 01:59:57 EDT): a deal lands; Hawaii is texted,
 *      every other push waits for its own 08:00, DST-correct;
 *   2. fall-back morning (11:59:57 UTC): Puerto Rico opens at 08:00 AST, New York
 *      (07:00 EST) stays closed;
 *   3. a December noon: signed inbound opt-outs and replays; four deals in an hour to
 *      FL, OK, MD and TX numbers (the law's 3 in 24 h);
 *   4. 20:00 Eastern, 21:00 in Puerto Rico (2026-12-11 01:00 UTC), the gateway at 5
 *      requests a second: deals land 3 s before and 0.5 s after;
 *   5. spring-forward night (2027-03-14 01:59:57 EST, 20:59:57 in Hawaii), 1 a second;
 *   6. spring-forward morning (14:59:57 UTC): Arizona (no DST) and California open at
 *      15:00 UTC.
 * Then: no text outside a window of its recipient's places (every window row of the
 * area code's state and of the stated region, in every zone of the area code and the
 * stated zone), none over 3 in 24 h to a FL, OK or MD number, none after an opt-out,
 * none twice; each push still waiting is due exactly at the oracle's next opening.
 * Counts, never timings: where a text is in time is read from gwsim's log.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "twsig.h"

#define PUBLIC_URL "https://law.example.test"
#define ADMIN_TOKEN "law-adversarial-admin-token-0123"
#define SUBS_MAX 96
#define PHASES_MAX 8
#define TEXTS_MAX 2048

/* A group of subscribers and what the law says of them (the oracle's own table). */
struct group {
	const char *name;
	const char *npa;
	const char *tz;              /* stated zone */
	const char *region;          /* stated region, or NULL */
	const char *zones[3];        /* the area code's zones */
	int open_h, close_h;         /* the strictest rows of its places, local */
	int capped;                  /* FL, OK, MD: 3 texts per rolling 24 h */
	const char *category;
	int n;
};

static const struct group groups[] = {
	{ "fl", "305", "America/New_York", NULL, { "America/New_York" }, 8, 20, 1, "laptop", 4 },
	{ "flutc", "305", "UTC", NULL, { "America/New_York" }, 8, 20, 1, "laptop", 2 },
	{ "md", "410", "America/New_York", NULL, { "America/New_York" }, 8, 20, 1, "laptop", 4 },
	{ "mdreg", "212", "America/New_York", "US-MD", { "America/New_York" }, 8, 20, 1,
	    "laptop", 4 },
	{ "ct", "203", "America/New_York", NULL, { "America/New_York" }, 9, 20, 0, "laptop", 4 },
	{ "wany", "206", "America/New_York", NULL, { "America/Los_Angeles" }, 8, 20, 0,
	    "laptop", 4 },
	{ "ok", "405", "America/Chicago", NULL, { "America/Chicago" }, 8, 20, 1, "laptop", 2 },
	{ "ny", "212", "America/New_York", NULL, { "America/New_York" }, 8, 21, 0, "laptop", 2 },
	{ "ca", "415", "America/Los_Angeles", NULL, { "America/Los_Angeles" }, 8, 21, 0,
	    "laptop", 2 },
	{ "pr", "787", "America/Puerto_Rico", NULL, { "America/Puerto_Rico" }, 8, 21, 0,
	    "laptop", 4 },
	{ "prny", "787", "America/New_York", NULL, { "America/Puerto_Rico" }, 8, 21, 0,
	    "laptop", 4 },
	{ "az", "602", "America/Phoenix", NULL, { "America/Phoenix" }, 8, 21, 0, "laptop", 2 },
	{ "az928", "928", "America/Phoenix", NULL, { "America/Phoenix", "America/Denver" }, 8,
	    21, 0, "laptop", 2 },
	/* An Arizona number that says Denver: Phoenix's hours hold, DST or not. */
	{ "azden", "602", "America/Denver", NULL, { "America/Phoenix" }, 8, 21, 0, "laptop",
	    2 },
	{ "hi", "808", "Pacific/Honolulu", NULL, { "Pacific/Honolulu" }, 8, 21, 0, "laptop",
	    10 },
	{ "hila", "808", "America/Los_Angeles", NULL, { "Pacific/Honolulu" }, 8, 21, 0,
	    "laptop", 2 },
	{ "ak", "907", "America/Anchorage", NULL, { "America/Anchorage", "America/Adak" }, 8,
	    21, 0, "laptop", 2 },
	{ "akla", "907", "America/Los_Angeles", NULL, { "America/Anchorage", "America/Adak" },
	    8, 21, 0, "laptop", 2 },
	/* Opted out at phase 3 (index = the form of stop_forms). */
	{ "stop", "212", "America/New_York", NULL, { "America/New_York" }, 8, 21, 0, "laptop",
	    6 },
	/* Four deals in an hour. */
	{ "flcap", "305", "America/New_York", NULL, { "America/New_York" }, 8, 20, 1, "phone", 2 },
	{ "okcap", "405", "America/Chicago", NULL, { "America/Chicago" }, 8, 20, 1, "phone", 2 },
	{ "mdcap", "410", "America/New_York", NULL, { "America/New_York" }, 8, 20, 1, "phone", 2 },
	{ "txcap", "512", "America/Chicago", NULL, { "America/Chicago" }, 8, 21, 0, "phone", 2 },
};
#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

/* The number that says STOP before it is a subscriber (imported after it). */
#define EARLY_PHONE "+12125559000"
#define EARLY_ID "early"

struct sub {
	char id[32], phone[16];
	const struct group *g;
	long long stop_at;           /* virtual second of its opt-out, 0 = none */
};

struct phase {
	long long from_ms, to_ms;    /* real time the notifier ran */
	long long offset;            /* its clock_offset_s */
};

struct run {
	struct it_one *f;
	struct sub subs[SUBS_MAX];
	size_t nsubs;
	struct phase ph[PHASES_MAX];
	size_t nph;
	int http;
};

/* ---- the oracle: local time, windows ------------------------------------------ */
/* 1 when g may be texted at second t: inside [open_h, close_h) in its stated zone and
 * in every zone of its area code. */
static int
allowed(const struct group *g, long long t)
{
	const char *zs[4] = { g->tz, g->zones[0], g->zones[1], g->zones[2] };
	struct tm tm;
	size_t k;
	int m;

	for (k = 0; k < 4 && zs[k] != NULL; k++) {
		it_local_tm(zs[k], t, &tm);
		m = tm.tm_hour * 60 + tm.tm_min;
		if (m < g->open_h * 60 || m >= g->close_h * 60)
			return 0;
	}
	return 1;
}

/* The first second after t at which g may be texted (an opening is at open_h:00 of
 * one of its zones), or -1 within three days. */
static long long
next_open(const struct group *g, long long t)
{
	const char *zs[4] = { g->tz, g->zones[0], g->zones[1], g->zones[2] };
	long long best = -1, c;
	size_t k;
	int d;

	for (k = 0; k < 4 && zs[k] != NULL; k++)
		for (d = 0; d <= 3; d++) {
			c = it_local_at(zs[k], t, d, g->open_h);
			if (c > t && (best < 0 || c < best) && allowed(g, c))
				best = c;
		}
	return best;
}

/* ---- fixtures -------------------------------------------------------------------- */

static long long
real_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const struct sub *
sub_by_phone(const struct run *r, const char *phone)
{
	size_t i;

	for (i = 0; i < r->nsubs; i++)
		if (strcmp(r->subs[i].phone, phone) == 0)
			return &r->subs[i];
	return NULL;
}

static struct sub *
sub_named(struct run *r, const char *group, int i)
{
	char id[32];
	size_t k;

	snprintf(id, sizeof(id), "%s-%d", group, i);
	for (k = 0; k < r->nsubs; k++)
		if (strcmp(r->subs[k].id, id) == 0)
			return &r->subs[k];
	fail_msg("no subscriber %s", id);
	return NULL;
}

static const char *
sub_line(const struct sub *s, char *buf, size_t size)
{
	char region[40] = "";

	if (s->g->region != NULL)
		snprintf(region, sizeof(region), "\"region\":\"%s\",", s->g->region);
	snprintf(buf, size, "{\"id\":\"%s\",\"phone\":\"%s\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"%s\",%s"
	    "\"interests\":{\"categories\":[\"%s\"]}}\n", s->id, s->phone, s->g->tz, region,
	    s->g->category);
	return buf;
}

/* Every subscriber, interleaved by group so that a queue holds every group. */
static void
import_all(struct run *r)
{
	size_t cap = SUBS_MAX * 320, len = 0, k;
	char *s = malloc(cap), line[320];
	int i, seq = 0;

	assert_non_null(s);
	s[0] = '\0';
	for (i = 0; i < 16; i++)
		for (k = 0; k < NGROUPS; k++) {
			struct sub *u;

			if (i >= groups[k].n)
				continue;
			assert_true(r->nsubs < SUBS_MAX);
			u = &r->subs[r->nsubs++];
			u->g = &groups[k];
			snprintf(u->id, sizeof(u->id), "%s-%d", groups[k].name, i);
			snprintf(u->phone, sizeof(u->phone), "+1%s555%04d", groups[k].npa,
			    1000 + seq++);
			sub_line(u, line, sizeof(line));
			snprintf(s + len, cap - len, "%s", line);
			len += strlen(s + len);
		}
	assert_int_equal(it_import(r->f->port, s), 0);
	free(s);
}

/* Starts the notifier with its clock at virtual second v + lead_s from now, the
 * gateway at rate requests a second (0: unlimited), HTTP when http. */
static void
phase_start(struct run *r, long long v, int lead_s, int rate, int http)
{
	struct phase *p = &r->ph[r->nph++];
	char extra[1024] = "";
	size_t len = 0;

	assert_true(r->nph <= PHASES_MAX);
	p->offset = v - (long long)time(NULL) - lead_s;
	if (rate > 0) {
		snprintf(extra, sizeof(extra), "rate_per_s = %d\nburst = 1\n", rate);
		len = strlen(extra);
	}
	if (http)
		snprintf(extra + len, sizeof(extra) - len, "public_url = " PUBLIC_URL "\n"
		    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[inbound]\n"
		    "optout_words = arr\xC3\xAAt\noptout_fillers = s'il vous pla\xC3\xAEt\n");
	len = strlen(extra);
	snprintf(extra + len, sizeof(extra) - len, "[notifier]\nclock_offset_s = %lld\n",
	    p->offset);
	p->from_ms = real_ms();
	p->to_ms = -1;
	if (http) {
		setenv("DP_TEST_ADMIN_TOKEN", ADMIN_TOKEN, 1);
		r->http = it_notifier_start_http(&r->f->nt, r->f->port, r->f->gw.port, "law",
		    extra);
		assert_true(r->http > 0);
	} else {
		assert_int_equal(it_notifier_start(&r->f->nt, r->f->port, r->f->gw.port, "law",
		    extra), 0);
	}
}

static void
phase_stop(struct run *r)
{
	assert_int_equal(it_stop(&r->f->nt.proc, SIGTERM, 5000), 0);
	r->ph[r->nph - 1].to_ms = real_ms();
}

/* The notifier's clock now. */
static long long
vnow(const struct run *r)
{
	return (long long)time(NULL) + r->ph[r->nph - 1].offset;
}

/* Sleeps until the notifier's clock reads v (+ ms). */
static void
sleep_until(const struct run *r, long long v, long ms)
{
	long long wait = (v - r->ph[r->nph - 1].offset) * 1000 + ms - real_ms();

	if (wait > 0)
		it_sleep_ms((long)wait);
}

static void
publish(struct run *r, const char *id, const char *category, long long expires)
{
	char deal[512];

	snprintf(deal, sizeof(deal), "{\"id\": \"%s\", \"title\": \"LawDeal %s\", "
	    "\"category\": \"%s\", \"price\": 649.0, \"list_price\": 1099.0, "
	    "\"currency\": \"USD\", \"url\": \"https://shop.example/d/%s\", "
	    "\"expires_at\": %lld}", id, id, category, id, expires);
	assert_int_equal(it_publish(r->f->rc, deal), 0);
}

/* ---- signed inbound -------------------------------------------------------------- */

/* An inbound SMS, signed as Twilio signs it. Returns the status. */
static int
sms_in(struct run *r, const char *from, const char *text, const char *sid)
{
	static struct it_resp resp;
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
	assert_int_equal(twsig_compute(IT_AUTH_TOKEN, PUBLIC_URL "/hooks/twilio/inbound", p,
	    4, sig, sizeof(sig)), 0);
	snprintf(hdr, sizeof(hdr), "Content-Type: application/x-www-form-urlencoded\r\n"
	    "X-Twilio-Signature: %s\r\n", sig);
	it_http(r->http, "POST", "/hooks/twilio/inbound", hdr, body, strlen(body), &resp);
	return resp.status;
}

/* ---- what gwsim received ---------------------------------------------------------- */

struct text {
	const struct sub *s;
	char deal[32];
	long long v;                 /* virtual second it arrived */
};

struct texts {
	struct text t[TEXTS_MAX];
	size_t n;
	long replies, unplaced;
};

/* Every deal text gwsim accepted, placed in virtual time by the phase it came in. */
static void
read_texts(const struct run *r, struct texts *out)
{
	cJSON *all = it_gwsim_requests(&r->f->gw), *e;

	memset(out, 0, sizeof(*out));
	assert_non_null(all);
	cJSON_ArrayForEach(e, all) {
		const cJSON *to = cJSON_GetObjectItem(e, "to");
		const cJSON *st = cJSON_GetObjectItem(e, "status");
		const cJSON *ts = cJSON_GetObjectItem(e, "ts_ms");
		const cJSON *body = cJSON_GetObjectItem(e, "body");
		const char *d;
		long long ms;
		size_t k;
		int placed = 0;

		if (!cJSON_IsString(to) || !cJSON_IsNumber(st) || st->valueint != 201 ||
		    !cJSON_IsNumber(ts))
			continue;
		if (!cJSON_IsString(body) || (d = strstr(body->valuestring, "LawDeal ")) == NULL) {
			out->replies++;      /* a HELP or STOP answer: any hour */
			continue;
		}
		assert_true(out->n < TEXTS_MAX);
		ms = (long long)ts->valuedouble;
		for (k = 0; k < r->nph; k++)
			if (ms >= r->ph[k].from_ms && (r->ph[k].to_ms < 0 || ms <= r->ph[k].to_ms)) {
				out->t[out->n].v = (ms + r->ph[k].offset * 1000) / 1000;
				placed = 1;
			}
		if (!placed) {
			out->unplaced++;
			continue;
		}
		out->t[out->n].s = sub_by_phone(r, to->valuestring);
		sscanf(d + 8, "%31[A-Za-z0-9-]", out->t[out->n].deal);
		if (out->t[out->n].s == NULL && strcmp(to->valuestring, EARLY_PHONE) != 0)
			fail_msg("a text to a number no subscriber has");
		out->n++;
	}
	cJSON_Delete(all);
}

/* Deal texts so far to group g (NULL: all) of deal (NULL: any). */
static long
texts_to(const struct run *r, const char *g, const char *deal)
{
	static struct texts t;
	long n = 0;
	size_t i;

	read_texts(r, &t);
	for (i = 0; i < t.n; i++)
		if (t.t[i].s != NULL && (g == NULL || strcmp(t.t[i].s->g->name, g) == 0) &&
		    (deal == NULL || strcmp(t.t[i].deal, deal) == 0))
			n++;
	return n;
}

struct want {
	const struct run *r;
	const char *group, *deal;
	long n;
};

static int
texts_reach(void *arg)
{
	const struct want *w = arg;

	return texts_to(w->r, w->group, w->deal) >= w->n;
}

static void
wait_texts(const struct run *r, const char *group, const char *deal, long n)
{
	struct want w = { r, group, deal, n };

	if (!it_wait(texts_reach, &w, 15000))
		fail_msg("%s got %ld texts of %s, not %ld", group, texts_to(r, group, deal),
		    deal ? deal : "any deal", n);
}

/* Every push of deal still waiting in delayed is due exactly at the oracle's next
 * opening of its recipient after v. Returns how many wait. */
static long
check_delayed(struct run *r, const char *deal, long long v)
{
	redisReply *rep = redisCommand(r->f->rc, "ZRANGE delayed 0 -1 WITHSCORES");
	char prefix[64];
	long n = 0;
	size_t i, k;

	assert_true(rep != NULL && rep->type == REDIS_REPLY_ARRAY);
	snprintf(prefix, sizeof(prefix), "%s\t", deal);
	for (i = 0; i + 1 < rep->elements; i += 2) {
		const char *m = rep->element[i]->str;
		long long at = strtoll(rep->element[i + 1]->str, NULL, 10);
		char needle[64];

		if (strncmp(m, prefix, strlen(prefix)) != 0)
			continue;
		for (k = 0; k < r->nsubs; k++) {
			snprintf(needle, sizeof(needle), "\tsms\t%s\t", r->subs[k].id);
			if (strstr(m, needle) == NULL)
				continue;
			if (at != next_open(r->subs[k].g, v))
				fail_msg("%s of %s is due at %lld, the oracle says %lld", r->subs[k].id,
				    deal, at, next_open(r->subs[k].g, v));
			n++;
		}
	}
	freeReplyObject(rep);
	return n;
}

/* Pushes of deal in state st. */
static long
states(struct run *r, const char *deal, const char *st)
{
	redisReply *rep = redisCommand(r->f->rc, "HGETALL push:%s", deal);
	long n = 0;
	size_t i;

	assert_non_null(rep);
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2)
		n += strcmp(rep->element[i + 1]->str, st) == 0;
	freeReplyObject(rep);
	return n;
}

/* ---- the run ---------------------------------------------------------------------- */

static const char *const stop_forms[] = { "ALTO", "S T O P", "I said stop", "PARAR",
	"Arr\xC3\xAAt s'il vous pla\xC3\xAEt" };

static void
phase3_inbound_and_caps(struct run *r)
{
	const long long noon = 1796922000;     /* 2026-12-10T17:00:00Z, 12:00 EST */
	char line[320], id[40];
	struct sub *s;
	int i;

	phase_start(r, noon, 0, 0, 1);
	it_sleep_ms(300);        /* the mirror loads */
	/* Opt-outs in five forms, each from its own number. */
	for (i = 0; i < 5; i++) {
		s = sub_named(r, "stop", i);
		snprintf(id, sizeof(id), "SMlaw%02d", i);
		assert_int_equal(sms_in(r, s->phone, stop_forms[i], id), 200);
		assert_int_equal(it_int(r->f->rc, "HEXISTS consent:sms %s", s->id), 0);
		s->stop_at = vnow(r) - 1;
	}
	/* STOP, START, stop, then the captured START replayed: still opted out. */
	s = sub_named(r, "stop", 5);
	assert_int_equal(sms_in(r, s->phone, "STOP", "SMlaw0000000000000000000000000a1"), 200);
	assert_int_equal(sms_in(r, s->phone, "START", "SMlaw0000000000000000000000000a2"), 200);
	assert_int_equal(it_int(r->f->rc, "HEXISTS consent:sms %s", s->id), 1);
	assert_int_equal(sms_in(r, s->phone, "stop", "SMlaw0000000000000000000000000a3"), 200);
	s->stop_at = vnow(r) - 1;
	assert_int_equal(sms_in(r, s->phone, "START", "SMlaw0000000000000000000000000a2"), 200);
	assert_int_equal(it_int(r->f->rc, "HEXISTS consent:sms %s", s->id), 0);
	/* A STOP from a number no subscriber has yet; imported after it. */
	assert_int_equal(sms_in(r, EARLY_PHONE, "stop", "SMlaw0000000000000000000000000b1"),
	    200);
	snprintf(line, sizeof(line), "{\"id\":\"" EARLY_ID "\",\"phone\":\"" EARLY_PHONE "\","
	    "\"channels\":[\"sms\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
	    "\"timezone\":\"America/New_York\",\"interests\":{\"categories\":[\"laptop\"]}}\n");
	assert_int_equal(it_import(r->f->port, line), 0);
	assert_int_equal(it_int(r->f->rc, "HEXISTS consent:sms " EARLY_ID), 0);
	/* Four deals in an hour to FL, OK, MD and TX numbers, without a campaign. */
	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "cap%d", i);
		publish(r, id, "phone", noon + 86400);
	}
	wait_texts(r, "txcap", NULL, 4 * 2);
	wait_texts(r, "flcap", NULL, 3 * 2);
	wait_texts(r, "okcap", NULL, 3 * 2);
	wait_texts(r, "mdcap", NULL, 3 * 2);
	it_sleep_ms(500);
	assert_int_equal(it_outcomes(r->f->rc, "legal_cap"), 3 * 2);
	phase_stop(r);
}

static void
the_law_holds_for_every_text_the_gateway_received(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	static struct texts t;
	const long long fb = 1793512800;       /* 2026-11-01T06:00:00Z: EDT ends */
	const long long fbm = 1793534400;      /* 2026-11-01T12:00:00Z: 08:00 AST */
	const long long eve = 1796950800;      /* 2026-12-11T01:00:00Z: 20:00 EST */
	const long long sf = 1805007600;       /* 2027-03-14T07:00:00Z: EDT begins */
	const long long sfm = 1805036400;      /* 2027-03-14T15:00:00Z: 08:00 MST, PDT */
	long bad = 0, capped = 0, dup = 0, waiting, deferred;
	size_t i, j;

	assert_non_null(r);
	r->f = *state;
	import_all(r);
	assert_int_equal(it_gwsim_start(&r->f->gw, NULL), 0);

	/* 1. Fall-back night: only Hawaii (19:59:57 HST) is open. */
	phase_start(r, fb - 3, 1, 0, 0);
	it_sleep_ms(1000);
	publish(r, "fb", "laptop", fb + 2 * 86400);
	wait_texts(r, "hi", "fb", 10);
	it_sleep_ms(800);
	waiting = check_delayed(r, "fb", vnow(r));
	printf("# fall-back night: %ld texts, %ld waiting\n", texts_to(r, NULL, "fb"), waiting);
	assert_int_equal(texts_to(r, NULL, "fb"), 10);
	phase_stop(r);

	/* 2. Fall-back morning: Puerto Rico opens at 12:00 UTC, New York not before 13:00. */
	phase_start(r, fbm - 3, 1, 0, 0);
	sleep_until(r, fbm, 500);
	wait_texts(r, "pr", "fb", 4);
	it_sleep_ms(800);
	assert_int_equal(texts_to(r, "ny", "fb"), 0);
	phase_stop(r);

	/* 3. A December noon: opt-outs, replays, the law's cap. */
	phase3_inbound_and_caps(r);

	/* 4. 20:00 Eastern, 21:00 Atlantic: 8 requests a second, deals at -3 s, +0.5 s. */
	phase_start(r, eve - 3, 1, 8, 0);
	it_sleep_ms(1000);
	publish(r, "eve1", "laptop", eve + 2 * 86400);
	sleep_until(r, eve, 500);
	publish(r, "eve2", "laptop", eve + 2 * 86400);
	for (i = 0; i < NGROUPS; i++)
		if (allowed(&groups[i], eve) && strcmp(groups[i].name, "stop") != 0 &&
		    strcmp(groups[i].category, "laptop") == 0)
			wait_texts(r, groups[i].name, "eve2", groups[i].n);
	it_sleep_ms(800);
	waiting = check_delayed(r, "eve1", vnow(r));
	printf("# 20:00 EST: %ld texts of eve1, %ld of eve2, %ld of eve1 waiting, %ld of them "
	    "deferred at send\n", texts_to(r, NULL, "eve1"), texts_to(r, NULL, "eve2"),
	    waiting, states(r, "eve1", "deferred"));
	deferred = states(r, "eve1", "deferred");
	check_delayed(r, "eve2", vnow(r));
	phase_stop(r);

	/* 5. Spring-forward night, 21:00 in Hawaii: 1 request a second. */
	phase_start(r, sf - 3, 1, 1, 0);
	it_sleep_ms(1000);
	publish(r, "sf", "laptop", sf + 2 * 86400);
	sleep_until(r, sf, 2500);
	waiting = check_delayed(r, "sf", vnow(r));
	printf("# spring-forward night: %ld texts, %ld waiting, %ld of them deferred at "
	    "send\n", texts_to(r, NULL, "sf"), waiting, states(r, "sf", "deferred"));
	phase_stop(r);

	/* 6. Spring-forward morning: Arizona and California open at 15:00 UTC. */
	phase_start(r, sfm - 3, 1, 0, 0);
	sleep_until(r, sfm, 500);
	wait_texts(r, "az", "sf", 2);
	wait_texts(r, "ca", "sf", 2);
	it_sleep_ms(800);
	phase_stop(r);

	/* Every text against the oracle. */
	read_texts(r, &t);
	assert_int_equal(t.unplaced, 0);
	for (i = 0; i < t.n; i++) {
		const struct text *x = &t.t[i];
		long in24 = 0;

		if (x->s == NULL) {
			printf("# VIOLATION: %s texted after its STOP before import\n", EARLY_PHONE);
			bad++;
			continue;
		}
		if (!allowed(x->s->g, x->v)) {
			struct tm tm;

			it_local_tm(x->s->g->zones[0], x->v, &tm);
			printf("# VIOLATION: %s (%s) got %s at %02d:%02d:%02d %s\n", x->s->id,
			    x->s->g->name, x->deal, tm.tm_hour, tm.tm_min, tm.tm_sec,
			    x->s->g->zones[0]);
			bad++;
		}
		if (x->s->stop_at > 0 && x->v >= x->s->stop_at) {
			printf("# VIOLATION: %s got %s after its opt-out\n", x->s->id, x->deal);
			bad++;
		}
		for (j = 0; j < t.n; j++) {
			if (t.t[j].s != x->s)
				continue;
			if (j != i && strcmp(t.t[j].deal, x->deal) == 0)
				dup++;
			if (t.t[j].v <= x->v && t.t[j].v > x->v - 86400)
				in24++;
		}
		if (x->s->g->capped && in24 > 3) {
			printf("# VIOLATION: %s got its text %ld in 24 h\n", x->s->id, in24);
			capped++;
		}
	}
	printf("# %zu deal texts and %ld replies at the gateway: %ld outside the window or "
	    "after an opt-out, %ld over the cap, %ld twice\n", t.n, t.replies, bad, capped,
	    dup / 2);
	assert_int_equal(bad, 0);
	assert_int_equal(capped, 0);
	assert_int_equal(dup, 0);
	/* The gateway's queue held pushes across 20:00: the check at send held them. */
	assert_true(deferred > 0);
	/* Every place was texted at some point: the run is not empty. */
	for (i = 0; i < NGROUPS; i++)
		if (strcmp(groups[i].name, "stop") != 0 && texts_to(r, groups[i].name, NULL) == 0)
			fail_msg("%s was never texted", groups[i].name);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(the_law_holds_for_every_text_the_gateway_received,
		    it_one_setup, it_one_teardown),
	};

	return cmocka_run_group_tests_name("law_adversarial", tests, NULL, NULL);
}
