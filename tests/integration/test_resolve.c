/*
 * test_resolve.c: "unknown" SMS pushes settled with the provider, end to end on a real
 * redis-server, gwsim and the notifier (stage: record).
 *
 * Each test seeds an unknown push in Redis the way record.lua queues one (state,
 * resolve:due, resolve:info, dealentry, report and stats counters) and, when the
 * message is to be found, first has gwsim accept it, as when the notifier's request
 * reached Twilio but its answer never came back. Then it counts: the push's state, its
 * pushes:log entries, the report counters, what is left of the queue entry, and what
 * reached gwsim (list reads only: a resolver never sends). No timing is asserted.
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
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "twsig.h"

#define PUBLIC_URL "https://hooks.example.test"
#define PHONE "+15125550101"
#define PHONE2 "+15125550102"
#define TEXT "Deal d-1: Latitude 7440 $649 (41% off) https://shop.example/d/d-1"
#define WAIT_MS 30000

struct fx {
	redisContext *rc;
	struct it_proc redis;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt[2];
	int http;
};

/* One seeded push: entry, deal, subscriber; the push id is "<entry>:<sub>:sms". */
struct seed {
	const char *entry;
	const char *deal;
	const char *sub;
	const char *to;
	const char *text;           /* "" = not known */
	const char *state;          /* the push's state: "unknown" unless a test says */
	char push[128];
	char field[64];
	long long started;          /* the attempt's time, set by seed() */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char dir[512];

	assert_non_null(f);
	it_path(dir, sizeof(dir), "redis-resolve", "");
	f->port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = 0, i;

	for (i = 0; i < 2; i++)
		if (it_stop_clean(&f->nt[i].proc) < 0)
			rv = -1;
	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

/* Starts notifier i with the HTTP surface (status callbacks) and resolve settings. */
static void
start_notifier(struct fx *f, int i, long tries)
{
	char extra[512], consumer[32];

	snprintf(consumer, sizeof(consumer), "it-resolve-%d", i);
	snprintf(extra, sizeof(extra), "public_url = " PUBLIC_URL "\n"
	    "[deliver]\nresolve_after_s = 1\nresolve_tries = %ld\n", tries);
	f->http = it_notifier_start_http(&f->nt[i], f->port, f->gw.port, consumer, extra);
	assert_true(f->http > 0);
}

static void
cmd(struct fx *f, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(f->rc, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

/* The string value of a command's reply into out ("" when nil). */
static const char *
str(struct fx *f, char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(f->rc, fmt, ap);
	va_end(ap);
	out[0] = '\0';
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		snprintf(out, size, "%s", r->str);
	freeReplyObject(r);
	return out;
}

/* Subscriber sub's copy of a key named as in the single-instance layout (push:<deal>,
 * resolve:due, stats ...), in the layout in force (it_key_for); a static buffer of 8,
 * used in turn. */
static const char *
lk(const char *name, const char *sub)
{
	static char buf[8][KEYS_MAX];
	static unsigned turn;

	return it_key_for(name, sub, buf[turn++ % 8], KEYS_MAX);
}

/* The integer field of the hash key (named as in the single-instance layout), summed
 * over every shard's copy: the counters of pushes in different shards. 0 when absent. */
static long long
hint(struct fx *f, const char *key, const char *field)
{
	double sum;

	it_shards_hsum(f->rc, key, field, &sum);
	return (long long)sum;
}

/* Fills s->push and s->field. */
static void
seed_ids(struct seed *s)
{
	snprintf(s->push, sizeof(s->push), "%s:%s:sms", s->entry, s->sub);
	snprintf(s->field, sizeof(s->field), "%s:sms", s->sub);
}

/* Seeds s as record.lua queues an unknown SMS, due now; rule r-1, campaign c-1. */
static void
seed(struct fx *f, struct seed *s)
{
	char info[1024], key[128], rdeal[128], dentry[128];

	seed_ids(s);
	/* ORDER RESOLVE_INFO: deal, sub, channel, gateway, to, started, rule, campaign,
	 * text; started on the notifier's clock, a moment before now. */
	s->started = it_now() - 2;
	snprintf(info, sizeof(info), "%s\t%s\tsms\ttwilio\t%s\t%lld\tr-1\tc-1\t%s", s->deal,
	    s->sub, s->to, s->started, s->text);
	snprintf(key, sizeof(key), "push:%s", s->deal);
	snprintf(rdeal, sizeof(rdeal), "report:deal:%s", s->deal);
	snprintf(dentry, sizeof(dentry), "dealentry:%s", s->entry);
	cmd(f, "SET %s %s", lk(dentry, s->sub), s->deal);
	cmd(f, "HSET %s %s %s", lk(key, s->sub), s->field, s->state ? s->state : "unknown");
	cmd(f, "HSET %s %s %s", lk("resolve:info", s->sub), s->push, info);
	cmd(f, "ZADD %s %lld %s", lk("resolve:due", s->sub), it_now(), s->push);
	cmd(f, "HINCRBY %s unknown 1", lk(rdeal, s->sub));
	cmd(f, "HINCRBY %s unknown 1", lk("report:rule:r-1", s->sub));
	cmd(f, "HINCRBY %s unknown 1", lk("report:campaign:c-1", s->sub));
	cmd(f, "HINCRBY %s outcome:unknown 1", lk("stats", s->sub));
}

/* Has gwsim accept one SMS to `to` with text, as our request would have; the sid of
 * the 201 goes into sid. */
static void
gw_accept(struct fx *f, const char *to, const char *text, char *sid, size_t size)
{
	static struct it_resp r;
	static const char hex[] = "0123456789ABCDEF";
	unsigned char b64[128];
	char hdr[256], body[1024], path[128];
	const char *p, *fields[2] = { to, text };
	size_t o = 0;
	int i;
	cJSON *j, *s;

	EVP_EncodeBlock(b64, (const unsigned char *)IT_ACCOUNT_SID ":" IT_AUTH_TOKEN,
	    (int)strlen(IT_ACCOUNT_SID ":" IT_AUTH_TOKEN));
	snprintf(hdr, sizeof(hdr), "Authorization: Basic %s\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\n", b64);
	o = (size_t)snprintf(body, sizeof(body), "From=%%2B15005550006");
	for (i = 0; i < 2; i++) {
		o += (size_t)snprintf(body + o, sizeof(body) - o, i == 0 ? "&To=" : "&Body=");
		for (p = fields[i]; *p != '\0' && o + 4 < sizeof(body); p++) {
			unsigned char c = (unsigned char)*p;

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
				body[o++] = (char)c;
			} else {
				body[o++] = '%';
				body[o++] = hex[c >> 4];
				body[o++] = hex[c & 15];
			}
		}
		body[o] = '\0';
	}
	snprintf(path, sizeof(path), "/2010-04-01/Accounts/%s/Messages.json", IT_ACCOUNT_SID);
	assert_int_equal(it_http(f->gw.port, "POST", path, hdr, body, strlen(body), &r), 201);
	assert_non_null(j = cJSON_Parse(r.body));
	s = cJSON_GetObjectItem(j, "sid");
	assert_true(cJSON_IsString(s));
	snprintf(sid, size, "%s", s->valuestring);
	cJSON_Delete(j);
}

/* Twilio requests gwsim got with this method and status (0 = any). */
static int
gw_count(struct fx *f, const char *method, int status)
{
	cJSON *arr = it_gwsim_requests(&f->gw), *o;
	int n = 0;

	cJSON_ArrayForEach(o, arr) {
		cJSON *m = cJSON_GetObjectItem(o, "method"), *st = cJSON_GetObjectItem(o, "status");
		cJSON *g = cJSON_GetObjectItem(o, "gateway");

		if (cJSON_IsString(g) && strcmp(g->valuestring, "twilio") == 0 &&
		    cJSON_IsString(m) && strcmp(m->valuestring, method) == 0 &&
		    (status == 0 || (cJSON_IsNumber(st) && st->valueint == status)))
			n++;
	}
	cJSON_Delete(arr);
	return n;
}

/* The pushes:log entries of push: how many, and the last one's field values. */
static int
log_entries(struct fx *f, const char *push, char *outcome, char *provider, char *by,
    size_t size)
{
	/* push is "<entry>:<sub>:<channel>": its log is its subscriber's shard's */
	const char *a = strchr(push, ':'), *e = a != NULL ? strchr(a + 1, ':') : NULL;
	char sub[64];
	redisReply *r;
	size_t i, k;
	int n = 0;

	assert_true(a != NULL && e != NULL);
	snprintf(sub, sizeof(sub), "%.*s", (int)(e - a - 1), a + 1);
	r = redisCommand(f->rc, "XRANGE %s - +", lk("pushes:log", sub));
	assert_non_null(r);
	for (i = 0; i < r->elements; i++) {
		redisReply *fl = r->element[i]->element[1];
		const char *p = NULL, *o = "", *pv = "", *b = "";

		for (k = 0; k + 1 < fl->elements; k += 2) {
			const char *key = fl->element[k]->str, *v = fl->element[k + 1]->str;

			if (strcmp(key, "push") == 0)
				p = v;
			else if (strcmp(key, "outcome") == 0)
				o = v;
			else if (strcmp(key, "provider_id") == 0)
				pv = v;
			else if (strcmp(key, "resolved") == 0)
				b = v;
		}
		if (p == NULL || strcmp(p, push) != 0)
			continue;
		n++;
		snprintf(outcome, size, "%s", o);
		snprintf(provider, size, "%s", pv);
		snprintf(by, size, "%s", b);
	}
	freeReplyObject(r);
	return n;
}

struct want {
	struct fx *f;
	const char *key, *field, *value;
	long long n;
};

static int
hash_is(void *arg)
{
	struct want *w = arg;
	char v[128], sub[64];

	/* field "<sub>:<channel>": the key is that subscriber's shard's */
	snprintf(sub, sizeof(sub), "%.*s", (int)strcspn(w->field, ":"), w->field);
	return strcmp(str(w->f, v, sizeof(v), "HGET %s %s", lk(w->key, sub), w->field),
	    w->value) == 0;
}

static int
counter_reached(void *arg)
{
	struct want *w = arg;

	return hint(w->f, w->key, w->field) >= w->n;
}

static int
gets_reached(void *arg)
{
	struct want *w = arg;

	return gw_count(w->f, "GET", 0) >= w->n;
}

/* The queue entry of s is gone: due, info, tries. */
static void
assert_entry_gone(struct fx *f, const struct seed *s)
{
	char v[64];

	assert_string_equal(str(f, v, sizeof(v), "ZSCORE %s %s", lk("resolve:due", s->sub),
	    s->push), "");
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", lk("resolve:info", s->sub), s->push),
	    0);
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", lk("resolve:tries", s->sub),
	    s->push), 0);
}

/* s, settled as sent, is a text in its subscriber's behaviour record as record.lua
 * notes one (docs/attribution.md, "Behaviour"): the attempt's time as the last text,
 * one text on its day (texts_7d, days_since_text), the deal kept for replies on the
 * channel, and the record announced on the shard's change stream for the mirrors. */
static void
assert_texted(struct fx *f, const struct seed *s)
{
	char want[128], v[256], field[64];
	redisReply *r;
	size_t i, j;
	int announced = 0;

	snprintf(want, sizeof(want), "%lld|||%lld:1:0:0:0", s->started, s->started / 86400);
	assert_string_equal(str(f, v, sizeof(v), "HGET %s %s", lk("behaviour", s->sub),
	    s->sub), want);
	snprintf(field, sizeof(field), "%s\tsms", s->sub);
	r = redisCommand(f->rc, "HGET %s %s", lk("behaviour", s->sub), field);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, s->deal);
	freeReplyObject(r);
	r = redisCommand(f->rc, "XRANGE %s - +", lk("subscribers:changes", s->sub));
	assert_non_null(r);
	for (i = 0; i < r->elements; i++) {
		redisReply *fv = r->element[i]->element[1];

		for (j = 0; j + 3 < fv->elements; j += 2)
			if (strcmp(fv->element[j]->str, "id") == 0 &&
			    strcmp(fv->element[j + 1]->str, s->sub) == 0 &&
			    strcmp(fv->element[j + 2]->str, "rec") == 0 &&
			    strcmp(fv->element[j + 3]->str, want) == 0)
				announced++;
	}
	freeReplyObject(r);
	assert_int_equal(announced, 1);
}

static void
found_message_makes_the_push_sent_with_its_sid(void **state)
{
	struct fx *f = *state;
	struct seed s = { .entry = "1795456293791-0", .deal = "d-1", .sub = "s-1",
	    .to = PHONE, .text = TEXT };
	struct seed other = { .entry = "1795456293791-0", .deal = "d-1", .sub = "s-2",
	    .to = PHONE2, .text = TEXT };
	struct want w = { f, "push:d-1", NULL, "sent", 0 };
	char sid[64], decoy[64], outcome[64], provider[64], by[64], v[128];

	/* Ours, and the same text to another number (not ours). */
	gw_accept(f, PHONE, TEXT, sid, sizeof(sid));
	gw_accept(f, PHONE2, "another text", decoy, sizeof(decoy));
	seed(f, &s);
	seed(f, &other);
	start_notifier(f, 0, 2);
	w.field = s.field;
	assert_true(it_wait(hash_is, &w, WAIT_MS));
	assert_int_equal(log_entries(f, s.push, outcome, provider, by, sizeof(outcome)), 1);
	assert_string_equal(outcome, "sent");
	assert_string_equal(provider, sid);
	assert_string_equal(by, "list");
	assert_entry_gone(f, &s);
	/* Counted as record.lua counts a sent push, no longer as unknown. */
	assert_int_equal(hint(f, "report:deal:d-1", "sent"), 1);
	assert_int_equal(hint(f, "report:rule:r-1", "sent"), 1);
	assert_int_equal(hint(f, "report:campaign:c-1", "sent"), 1);
	assert_int_equal(hint(f, "report:deal:d-1", "sms_segments"), 1);
	assert_int_equal(hint(f, "stats", "outcome:sent"), 1);
	assert_int_equal(hint(f, "stats", "resolved:list"), 1);
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-1:sms",
	    lk("pushinfo:d-1", "s-1")), "r-1\tc-1");
	assert_texted(f, &s);
	/* The other one has no message with its text: still unknown, given up after its
	 * two looks, its counters untouched. */
	w.key = "stats";
	w.field = "resolve:gave_up";
	w.n = 1;
	assert_true(it_wait(counter_reached, &w, WAIT_MS));
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-2:sms",
	    lk("push:d-1", "s-2")), "unknown");
	assert_int_equal(log_entries(f, other.push, outcome, provider, by, sizeof(outcome)), 0);
	assert_entry_gone(f, &other);
	/* Never known to be sent: not a text in its behaviour record. */
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-2", lk("behaviour", "s-2")), "");
	assert_int_equal(hint(f, "report:deal:d-1", "unknown"), 1);
	assert_int_equal(hint(f, "stats", "outcome:unknown"), 1);
	/* The resolver only read: the two messages accepted are all gwsim ever got. */
	assert_int_equal(gw_count(f, "POST", 0), 2);
	assert_true(gw_count(f, "GET", 200) >= 3);
	assert_true(it_log_line(f->nt[0].proc.log, "event=resolve_gave_up push=" "1795456293791-0:s-2:sms") > 0);
	assert_true(it_log_line(f->nt[0].proc.log, "to=+1512\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "0102") > 0);
	assert_false(it_log_line(f->nt[0].proc.log, PHONE2) > 0);
}

static void
absent_or_settled_pushes_are_never_marked_sent(void **state)
{
	struct fx *f = *state;
	struct seed nobody = { .entry = "1795456293792-0", .deal = "d-2", .sub = "s-1",
	    .to = PHONE, .text = "a text nobody sent" };
	struct seed notext = { .entry = "1795456293792-0", .deal = "d-2", .sub = "s-2",
	    .to = PHONE2, .text = "" };
	struct seed done = { .entry = "1795456293792-0", .deal = "d-2", .sub = "s-3",
	    .to = "+15125550103", .text = TEXT, .state = "sent" };
	struct want w = { f, "stats", "resolve:gave_up", NULL, 2 };
	char sid[64], v[64];

	/* A message to the number with almost the same text is not the attempt of s-1. */
	gw_accept(f, PHONE, "a text nobody sent!", sid, sizeof(sid));
	seed(f, &nobody);
	seed(f, &notext);
	seed(f, &done);
	start_notifier(f, 0, 2);
	assert_true(it_wait(counter_reached, &w, WAIT_MS));
	w.field = "resolve:dropped";
	w.n = 1;
	assert_true(it_wait(counter_reached, &w, WAIT_MS));
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-1:sms",
	    lk("push:d-2", "s-1")), "unknown");
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-2:sms",
	    lk("push:d-2", "s-2")), "unknown");
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-3:sms",
	    lk("push:d-2", "s-3")), "sent");
	assert_entry_gone(f, &nobody);
	assert_entry_gone(f, &notext);
	assert_entry_gone(f, &done);
	assert_int_equal(it_outcomes(f->rc, ""), 0);
	assert_int_equal(hint(f, "report:deal:d-2", "sent"), 0);
	assert_int_equal(hint(f, "report:deal:d-2", "unknown"), 3);
	assert_int_equal(hint(f, "stats", "resolve:not_found"), 2);
	assert_int_equal(hint(f, "stats", "resolve:wait"), 2);
	/* A text that is not known is never looked up: two looks for s-1, and one for
	 * s-3, whose settling only dropped it. */
	assert_int_equal(gw_count(f, "GET", 0), 3);
	assert_int_equal(gw_count(f, "POST", 0), 1);
}

/* A signed Twilio status callback for push about sid. Returns the HTTP status. */
static int
status_callback(struct fx *f, const char *push, const char *status, const char *to,
    const char *sid)
{
	static struct it_resp r;
	struct twsig_param p[3] = { { "MessageSid", sid }, { "MessageStatus", status },
	    { "To", to } };
	char path[256], url[512], sig[64], hdr[256], body[512];

	snprintf(path, sizeof(path), "/hooks/twilio/status?push=%s", push);
	snprintf(url, sizeof(url), PUBLIC_URL "%s", path);
	assert_int_equal(twsig_compute(IT_AUTH_TOKEN, url, p, 3, sig, sizeof(sig)), 0);
	snprintf(hdr, sizeof(hdr), "Content-Type: application/x-www-form-urlencoded\r\n"
	    "X-Twilio-Signature: %s\r\n", sig);
	/* "+" of the number as %2B; the rest needs no escape. */
	snprintf(body, sizeof(body), "MessageSid=%s&MessageStatus=%s&To=%%2B%s", sid, status,
	    to + 1);
	return it_http(f->http, "POST", path, hdr, body, strlen(body), &r);
}

static void
status_callback_resolves_an_unknown_push(void **state)
{
	struct fx *f = *state;
	struct seed s = { .entry = "1795456293793-0", .deal = "d-3", .sub = "s-1",
	    .to = PHONE, .text = "" };
	struct seed early = { .entry = "1795456293793-0", .deal = "d-3", .sub = "s-2",
	    .to = PHONE2, .text = TEXT };
	struct want w = { f, "stats", "resolve:wait", NULL, 1 };
	const char *sid = "SM0123456789abcdef0123456789abcdef";
	const char *sid2 = "SM00000000000000000000000000000042";
	char outcome[64], provider[64], by[64], v[128];

	seed(f, &s);
	seed_ids(&early);
	/* Every shard that plans the deal has its entry (plan.lua), s-2's too. */
	{
		char dentry[128];

		snprintf(dentry, sizeof(dentry), "dealentry:%s", early.entry);
		cmd(f, "SET %s %s", lk(dentry, early.sub), early.deal);
	}
	cmd(f, "HSET %s s-2:sms sending:it-resolve-9", lk("push:d-3", "s-2"));
	/* No lookup can settle a text that is not known: it waits for its callback. */
	start_notifier(f, 0, 100);
	assert_true(it_wait(counter_reached, &w, WAIT_MS));
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-1:sms",
	    lk("push:d-3", "s-1")), "unknown");
	assert_int_equal(status_callback(f, s.push, "delivered", PHONE, sid), 204);
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-1:sms",
	    lk("push:d-3", "s-1")), "sent");
	assert_int_equal(log_entries(f, s.push, outcome, provider, by, sizeof(outcome)), 1);
	assert_string_equal(outcome, "sent");
	assert_string_equal(provider, sid);
	assert_string_equal(by, "callback");
	assert_entry_gone(f, &s);
	assert_int_equal(hint(f, "report:deal:d-3", "sent"), 1);
	assert_int_equal(hint(f, "report:rule:r-1", "sent"), 1);
	assert_int_equal(hint(f, "report:rule:r-1", "delivered"), 1);
	assert_int_equal(hint(f, "stats", "resolved:callback"), 1);
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-1:sms",
	    lk("delivery:d-3", "s-1")), "delivered");
	assert_texted(f, &s);
	/* The same callback again: nothing counted twice. */
	assert_int_equal(status_callback(f, s.push, "delivered", PHONE, sid), 204);
	assert_int_equal(log_entries(f, s.push, outcome, provider, by, sizeof(outcome)), 1);
	assert_int_equal(hint(f, "report:deal:d-3", "sent"), 1);
	assert_texted(f, &s);
	/* A callback before the push is recorded keeps its sid for record.lua and leaves
	 * the state alone; once the push is unknown, the next look settles it by that
	 * sid, without any message in gwsim. */
	assert_int_equal(status_callback(f, early.push, "sent", PHONE2, sid2), 204);
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-2:sms:sid",
	    lk("delivery:d-3", "s-2")), sid2);
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-2:sms", lk("push:d-3", "s-2")),
	    "sending:it-resolve-9");
	seed(f, &early);   /* recorded unknown without looking at the sid, as admit.lua */
	w.key = "push:d-3";
	w.field = "s-2:sms";
	w.value = "sent";
	assert_true(it_wait(hash_is, &w, WAIT_MS));
	assert_int_equal(log_entries(f, early.push, outcome, provider, by, sizeof(outcome)), 1);
	assert_string_equal(provider, sid2);
	assert_string_equal(by, "callback");
	assert_entry_gone(f, &early);
	assert_texted(f, &early);
}

static void
notifier_killed_mid_lookup_leaves_the_entry_for_another(void **state)
{
	struct fx *f = *state;
	struct seed s = { .entry = "1795456293794-0", .deal = "d-4", .sub = "s-1",
	    .to = PHONE, .text = TEXT };
	struct want w = { f, NULL, NULL, NULL, 1 };
	char sid[64], outcome[64], provider[64], by[64], v[64];
	long long seeded;
	int status;

	gw_accept(f, PHONE, TEXT, sid, sizeof(sid));
	/* The list answers slowly: the first notifier is killed while it waits. */
	assert_int_equal(it_http_post(f->gw.port, "/_sim/faults", "{\"latency_ms\": 60000}"),
	    200);
	seed(f, &s);
	seeded = strtoll(str(f, v, sizeof(v), "ZSCORE %s %s", lk("resolve:due", s.sub),
	    s.push), NULL, 10);
	start_notifier(f, 0, 2);
	assert_true(it_wait(gets_reached, &w, WAIT_MS));
	status = it_stop(&f->nt[0].proc, SIGKILL, 2000);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* Taken under a lease: still queued, due again later, no try counted. */
	assert_true(strtoll(str(f, v, sizeof(v), "ZSCORE %s %s", lk("resolve:due", s.sub),
	    s.push), NULL, 10) > seeded);
	assert_int_equal(it_int(f->rc, "HEXISTS %s %s", lk("resolve:info", s.sub), s.push), 1);
	assert_string_equal(str(f, v, sizeof(v), "HGET %s s-1:sms",
	    lk("push:d-4", "s-1")), "unknown");
	assert_int_equal(it_http_post(f->gw.port, "/_sim/faults", "{\"latency_ms\": 0}"), 200);
	start_notifier(f, 1, 2);
	w.key = "push:d-4";
	w.field = s.field;
	w.value = "sent";
	assert_true(it_wait(hash_is, &w, WAIT_MS));
	assert_int_equal(log_entries(f, s.push, outcome, provider, by, sizeof(outcome)), 1);
	assert_string_equal(provider, sid);
	assert_entry_gone(f, &s);
	assert_int_equal(hint(f, "report:deal:d-4", "sent"), 1);
	assert_int_equal(hint(f, "report:deal:d-4", "unknown"), 0);
	assert_int_equal(gw_count(f, "POST", 0), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(found_message_makes_the_push_sent_with_its_sid,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(absent_or_settled_pushes_are_never_marked_sent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(status_callback_resolves_an_unknown_push, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    notifier_killed_mid_lookup_leaves_the_entry_for_another, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
