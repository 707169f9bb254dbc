/*
 * test_attribution_windows.c: attribution windows, halo orders and the channel split
 * end to end (docs/attribution.md §2, §5, §6). One deal with a code pool and a
 * product goes by SMS (gwsim, Twilio) and DM (gwsim, X) to subscribers a 50% rule
 * holdout splits per channel. The test clicks links over HTTP and posts conversions
 * whose ordered_at moves the order's time on the notifier's clock: a click inside
 * and outside the click window, a push id inside the delivery window, a code weeks
 * later (the notifier restarted with its clock moved 20 days on, the order timed
 * by it), a halo purchase, buyers held out of one channel, of both, and two bad
 * entries; then it checks the order records and every figure of the deal's and
 * the rule's reports against what it injected.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define CONV_DEAD keys_global(KEYS_G_CONVERSIONS_DEAD)   /* in the layout in force */

#define N_SUBS 60
#define TOKEN "attribution-admin-token-0123456789"
#define SECRET "0123456789abcdef0123456789abcdef"
#define CLICK_W 3600
#define DELIV_W 600
#define LONG_W 3600          /* the longer of the two: the groups' window */

struct fx {
	struct it_one o;            /* redis, the SMS gateway (o.gw), the notifier */
	int http;
	struct it_gwsim dm;
	char extra[2048];
};

/* Where a subscriber stands on each channel: 1 = held out of it. */
struct groups {
	int held_sms[N_SUBS], held_dm[N_SUBS];
};

/* One injected order and what it must come to. */
struct order {
	int sub;                  /* buyer, s-<sub> */
	long long offset;         /* ordered_at - the time the conversions are posted */
	double revenue;
	int own;                  /* 1: the deal's product (or none given) */
	const char *outcome;      /* the order record after "<entry>\t" (prefix) */
	const char *credit;       /* "sms"/"dm": the channel credited; NULL: none */
	const char *window;       /* redeemed_by_<window>; NULL: not redeemed */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	it_one_open(&f->o);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_one_close(&f->o);

	it_stop(&f->dm.proc, SIGTERM, 2000);
	free(f);
	return rv;
}

/* Starts the notifier with its clock moved ahead (s, 0: the tests' clock) and
 * waits until its HTTP port answers. */
static void
start_notifier(struct fx *f, long long ahead)
{
	char conf[2200];
	struct it_resp resp;
	int i;

	/* a later key wins: the clock the harness wrote, moved */
	snprintf(conf, sizeof(conf), "%s[notifier]\nclock_offset_s = %lld\n", f->extra,
	    it_clock_offset() + ahead);
	assert_int_equal(it_notifier_start(&f->o.nt, f->o.port, f->o.gw.port, "it-attr", conf),
	    0);
	for (i = 0; i < 200 && it_http(f->http, "GET", "/healthz", NULL, NULL, 0, &resp) < 0;
	    i++)
		it_sleep_ms(25);
	assert_true(resp.status > 0);
}

static void
start(struct fx *f)
{
	char dir[512], path[600], *subs;
	size_t cap = (size_t)N_SUBS * 400 + 1, len = 0;
	FILE *fp;
	int i;

	it_path(dir, sizeof(dir), "rules-attrib", "");
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/win.rules", dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("rule win\n  audience all\n  send sms, dm\n  holdout 50%\n"
	    "  template sms \"{title} code {code} {link} Reply STOP to end\"\n"
	    "  template dm \"{title} code {code} {link}\"\nend\n", fp);
	fclose(fp);
	assert_non_null(subs = malloc(cap));
	for (i = 0; i < N_SUBS; i++) {
		snprintf(subs + len, cap - len,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512555%04d\",\"dm\":{\"x\":\"%d\"},"
		    "\"channels\":[\"sms\",\"dm\"],\"consent\":{\"sms\":"
		    "\"2026-01-02T10:00:00Z\",\"dm\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\"}\n", i, 1000 + i, 9000 + i);
		len += strlen(subs + len);
	}
	assert_int_equal(it_import(f->o.port, subs), 0);
	free(subs);
	for (i = 0; i < 2 * N_SUBS + 10; i++)
		freeReplyObject(redisCommand(f->o.rc, "SADD codes:wd WC-%03d", i));
	assert_int_equal(it_gwsim_start(&f->o.gw, NULL), 0);
	assert_int_equal(it_gwsim_start(&f->dm, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	setenv("DP_TEST_CLICK_SECRET", SECRET, 1);
	setenv("DP_TEST_X_TOKEN", "test-user-token", 1);
	f->http = it_free_port();
	assert_true(f->http > 0);
	snprintf(f->extra, sizeof(f->extra),
	    "[gateway x]\nkind = x-dm\nchannel = dm\nbase_url = http://127.0.0.1:%d\n"
	    "secret_env = DP_TEST_X_TOKEN\n"
	    "[http]\nport = %d\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "public_url = http://127.0.0.1:%d\nclick_secret_env = DP_TEST_CLICK_SECRET\n"
	    "[rules]\ndir = %s\n[attribution]\nclick_window_s = %d\n"
	    "delivery_window_s = %d\n", f->dm.port, f->http, f->http, dir, CLICK_W,
	    DELIV_W);
	start_notifier(f, 0);
}

struct want {
	struct fx *f;
	long long n;
};

static int
all_sent(void *arg)
{
	struct want *w = arg;

	return it_outcomes(w->f->o.rc, "sent") >= w->n;
}

/* Conversions are settled one at a time in stream order: once the last one posted
 * (order:<n->... w->n names it) is counted, every earlier one is. */
static int
all_settled(void *arg)
{
	struct want *w = arg;

	char id[32];

	snprintf(id, sizeof(id), "o-%lld", w->n);
	return it_int(w->f->o.rc, "XLEN %s", CONV_DEAD) == 2 &&
	    it_shards_sum(w->f->o.rc, "EXISTS %s", KEYS_ORDER, id) == 1;
}

/* From the text gwsim got for phone: the word after "code " and the click token
 * after "/c/" ("" each when none). */
static void
sms_parts(const struct it_gwsim *g, const char *phone, char *code, char *tok,
    size_t size)
{
	cJSON *reqs = it_gwsim_requests(g), *o;

	code[0] = tok[0] = '\0';
	cJSON_ArrayForEach(o, reqs) {
		const cJSON *to = cJSON_GetObjectItem(o, "to"), *b = cJSON_GetObjectItem(o, "body");
		const char *c;

		if (!cJSON_IsString(to) || !cJSON_IsString(b) || strcmp(to->valuestring, phone))
			continue;
		if ((c = strstr(b->valuestring, "code ")) != NULL)
			snprintf(code, size, "%.*s", (int)strcspn(c + 5, " "), c + 5);
		if ((c = strstr(b->valuestring, "/c/")) != NULL)
			snprintf(tok, size, "%.*s", (int)strspn(c + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz0123456789_-"), c + 3);
	}
	cJSON_Delete(reqs);
}

static void
post(struct fx *f, const char *json)
{
	redisReply *r = redisCommand(f->o.rc, "XADD conversions * conversion %s", json);

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
}

/* Posts order o as o-<i>, attributed by key = val. */
static void
post_order(struct fx *f, int i, const struct order *o, long long now, const char *key,
    const char *val)
{
	char json[1024], at[64] = "";

	/* a day on or more: the notifier's clock is moved there and times it */
	if (o->offset < 86400)
		snprintf(at, sizeof(at), ",\"ordered_at\":%lld", now + o->offset);
	snprintf(json, sizeof(json), "{\"deal_id\":\"wd\",\"order_id\":\"o-%d\","
	    "\"revenue\":%g,\"currency\":\"USD\",\"%s\":\"%s\"%s%s}", i, o->revenue, key,
	    val, at, o->own ? "" : ",\"product_id\":\"P-2\"");
	post(f, json);
}

static cJSON *
report(struct fx *f, const char *kind, const char *name)
{
	static struct it_resp resp;
	char path[256];
	cJSON *j;

	snprintf(path, sizeof(path), "/v1/reports/%s/%s", kind, name);
	assert_int_equal(it_http(f->http, "GET", path, "Authorization: Bearer " TOKEN "\r\n",
	    NULL, 0, &resp), 200);
	assert_non_null(j = cJSON_Parse(resp.body));
	return j;
}

/* The texts of subscriber s-<i> in the last 7 days, from its behaviour record
 * (GET /v1/subscribers/<id>); -1 when it cannot be read. */
static double
texts_7d(struct fx *f, int i)
{
	static struct it_resp resp;
	char path[64];
	cJSON *j;
	const cJSON *v;
	double n = -1;

	snprintf(path, sizeof(path), "/v1/subscribers/s-%d", i);
	if (it_http(f->http, "GET", path, "Authorization: Bearer " TOKEN "\r\n", NULL, 0,
	    &resp) != 200 || (j = cJSON_Parse(resp.body)) == NULL)
		return -1;
	v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "behaviour"), "texts_7d");
	if (cJSON_IsNumber(v))
		n = v->valuedouble;
	cJSON_Delete(j);
	return n;
}

static void
expect(const char *what, const cJSON *j, const char *name, double want)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

	if (!cJSON_IsNumber(v))
		fail_msg("%s: %s is not a number", what, name);
	if (fabs(v->valuedouble - want) > 1e-6 * (1 + fabs(want)))
		fail_msg("%s: %s is %.10g, the injected events make it %.10g", what, name,
		    v->valuedouble, want);
}

/* What the channel ch of a report must say, from the groups and the orders. */
static void
check_channel(const cJSON *chans, const char *ch, const struct groups *g,
    const struct order *o, size_t n)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(chans, ch);
	const cJSON *ci = cJSON_GetObjectItemCaseSensitive(c, "incremental_revenue_ci95");
	const int *held = strcmp(ch, "sms") == 0 ? g->held_sms : g->held_dm;
	double sent = 0, hold = 0, red = 0, rev = 0, tr = 0, trev = 0, tsq = 0;
	double hr = 0, hrev = 0, hsq = 0, halo = 0, inc;
	size_t i;

	assert_non_null(c);
	for (i = 0; i < N_SUBS; i++) {
		sent += !held[i];
		hold += held[i];
	}
	for (i = 0; i < n; i++) {
		if (o[i].credit != NULL && strcmp(o[i].credit, ch) == 0) {
			if (o[i].own) {
				red++;
				rev += o[i].revenue;
			} else {
				halo++;
			}
		}
		if (!o[i].own || o[i].offset > LONG_W)
			continue;
		if (!held[o[i].sub]) {
			tr++;
			trev += o[i].revenue;
			tsq += o[i].revenue * o[i].revenue;
		} else {
			hr++;
			hrev += o[i].revenue;
			hsq += o[i].revenue * o[i].revenue;
		}
	}
	expect(ch, c, "sent", sent);
	expect(ch, c, "redeemed", red);
	expect(ch, c, "revenue", rev);
	expect(ch, c, "halo_orders", halo);
	expect(ch, c, "treated_audience", sent);
	expect(ch, c, "treated_redeemed", tr);
	expect(ch, c, "treated_revenue", trev);
	expect(ch, c, "holdout_audience", hold);
	expect(ch, c, "holdout_redeemed", hr);
	expect(ch, c, "holdout_revenue", hrev);
	expect(ch, c, "treated_conversion_rate", tr / sent);
	expect(ch, c, "holdout_conversion_rate", hr / hold);
	inc = (trev / sent - hrev / hold) * sent;
	expect(ch, c, "incremental_revenue", inc);
	/* the interval is around the estimate, as wide as the two groups' spread */
	assert_true(cJSON_IsArray(ci) && cJSON_GetArraySize(ci) == 2);
	{
		double lo = cJSON_GetArrayItem(ci, 0)->valuedouble;
		double hi = cJSON_GetArrayItem(ci, 1)->valuedouble;
		double vt = (tsq / sent - (trev / sent) * (trev / sent)) / sent;
		double vh = (hsq / hold - (hrev / hold) * (hrev / hold)) / hold;
		double half = 1.959963984540054 * sqrt(vt + vh) * sent;

		assert_true(fabs(lo - (inc - half)) < 1e-6 * (1 + fabs(inc) + half));
		assert_true(fabs(hi - (inc + half)) < 1e-6 * (1 + fabs(inc) + half));
		assert_true(hi > lo);
	}
}

/* The first subscriber of a group not taken yet (used[] marks), or fails. */
static int
pick(const struct groups *g, int held_sms, int held_dm, int *used)
{
	int i;

	for (i = 0; i < N_SUBS; i++)
		if (!used[i] && g->held_sms[i] == held_sms && g->held_dm[i] == held_dm) {
			used[i] = 1;
			return i;
		}
	fail_msg("no subscriber left held out of sms %d, dm %d", held_sms, held_dm);
	return -1;
}

static void
windows_halo_and_channels_are_reported(void **state)
{
	struct fx *f = *state;
	struct groups g;
	struct want w = { f, 0 };
	int used[N_SUBS] = { 0 }, i, whole = 0;
	char codes[64], phone[32], code[64], tok[128], pid[192], entry[64], key[64], deal[512];
	long long now;
	redisReply *r;
	cJSON *j;
	/* ORDER: as posted below */
	struct order o[] = {
		{ 0, 1800, 11, 1, "attributed\t", "sms", "click" },  /* inside click w. */
		{ 0, 7200, 13, 1, "unattributed\toutside_window", NULL, NULL },
		{ 0, 300, 17, 1, "attributed\t", "sms", "delivery" },
		{ 0, 20 * 86400, 19, 1, "attributed\t", "sms", "code" },
		{ 0, 60, 23, 0, "halo\t", "sms", NULL },            /* another product */
		{ 0, 60, 29, 1, "attributed\t", "sms", "delivery" }, /* held out of DM */
		{ 0, 60, 31, 1, "attributed\t", "dm", "delivery" },  /* held out of SMS */
		{ 0, 60, 37, 1, "holdout", NULL, NULL },             /* held out of both */
	};
	size_t n = sizeof(o) / sizeof(o[0]), k;
	double redeemed = 0, revenue = 0;

	start(f);
	snprintf(deal, sizeof(deal), "{\"id\":\"wd\",\"title\":\"Dell 14\",\"category\":"
	    "\"laptop\",\"url\":\"https://shop.example/d/wd\",\"campaign\":\"cw\","
	    "\"code_pool\":\"codes:wd\",\"product_id\":\"P-1\",\"expires_at\":%lld}",
	    it_now() + 7200);
	assert_int_equal(it_publish(f->o.rc, deal), 0);
	/* the groups, as holdout.lua recorded them */
	for (i = 0; i < 100 && it_shards_sum(f->o.rc, "HEXISTS %s \tat", KEYS_HOLDOUT,
	    "wd") < (long long)(it_shards() > 0 ? it_shards() : 1); i++)
		it_sleep_ms(50);
	for (i = 0; i < N_SUBS; i++) {
		char sub[16], hk[256];

		snprintf(sub, sizeof(sub), "s-%d", i);
		it_key_of(KEYS_HOLDOUT, sub, "wd", hk, sizeof(hk));
		g.held_sms[i] = it_int(f->o.rc, "HEXISTS %s %s:sms", hk, sub) == 1;
		g.held_dm[i] = it_int(f->o.rc, "HEXISTS %s %s:dm", hk, sub) == 1;
		/* "<sub>" only for a subscriber held out of every channel */
		assert_int_equal(it_int(f->o.rc, "HEXISTS %s %s", hk, sub),
		    g.held_sms[i] && g.held_dm[i]);
		whole += g.held_sms[i] && g.held_dm[i];
		w.n += !g.held_sms[i] + !g.held_dm[i];
	}
	assert_true(it_wait(all_sent, &w, 20000));
	for (k = 0; k < 5; k++)
		o[k].sub = pick(&g, 0, 0, used);
	o[5].sub = pick(&g, 0, 1, used);
	o[6].sub = pick(&g, 1, 0, used);
	o[7].sub = pick(&g, 1, 1, used);
	/* The behaviour records count a text per channel: the pushes of one record
	 * call are noted together, two channels of one subscriber among them. */
	assert_true(texts_7d(f, o[0].sub) == 2);
	assert_true(texts_7d(f, o[5].sub) == 1);
	assert_true(texts_7d(f, o[7].sub) == 0);

	/* Clicks: o-0 and o-1's pushes (their click windows start now). */
	for (k = 0; k < 2; k++) {
		struct it_resp resp;
		char path[160];

		snprintf(phone, sizeof(phone), "+1512555%04d", 1000 + o[k].sub);
		sms_parts(&f->o.gw, phone, code, tok, sizeof(tok));
		assert_true(tok[0] != '\0');
		snprintf(path, sizeof(path), "/c/%s", tok);
		assert_int_equal(it_http(f->http, "GET", path, NULL, NULL, 0, &resp), 302);
	}
	now = it_now();
	r = redisCommand(f->o.rc, "HGET deal:wd entry");
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	snprintf(entry, sizeof(entry), "%s", r->str);
	freeReplyObject(r);
	for (k = 0; k < n; k++) {
		snprintf(phone, sizeof(phone), "+1512555%04d", 1000 + o[k].sub);
		sms_parts(&f->o.gw, phone, code, tok, sizeof(tok));
		snprintf(pid, sizeof(pid), "%s:s-%d:sms", entry, o[k].sub);
		snprintf(key, sizeof(key), "s-%d", o[k].sub);
		if (k <= 1)
			post_order(f, (int)k, &o[k], now, "click_token", tok);
		else if (k == 3)
			snprintf(codes, sizeof(codes), "%s", code);    /* posted below */
		else if (k <= 4)
			post_order(f, (int)k, &o[k], now, "push_id", pid);
		else
			post_order(f, (int)k, &o[k], now, "subscriber_id", key);
	}
	/* Bad entries: dead-lettered with the member named, nothing counted. */
	snprintf(pid, sizeof(pid), "{\"deal_id\":\"wd\",\"order_id\":\"o-bad1\",\"revenue\""
	    ":5,\"currency\":\"USD\",\"subscriber_id\":\"s-%d\",\"ordered_at\":"
	    "\"yesterday\"}", o[0].sub);
	post(f, pid);
	snprintf(pid, sizeof(pid), "{\"deal_id\":\"wd\",\"order_id\":\"o-bad2\",\"revenue\""
	    ":5,\"currency\":\"USD\",\"subscriber_id\":\"s-%d\",\"product_id\":\"a b\"}",
	    o[0].sub);
	post(f, pid);
	/* The last one: once it is counted, every earlier one is (one at a time). */
	post(f, "{\"deal_id\":\"wd\",\"order_id\":\"o-99\",\"revenue\":1,\"currency\":"
	    "\"USD\",\"subscriber_id\":\"nobody\"}");
	w.n = 99;
	assert_true(it_wait(all_settled, &w, 10000));
	/* 20 days on: a code still credits its push; the notifier times the order. */
	assert_int_equal(it_stop_clean(&f->o.nt.proc), 0);
	start_notifier(f, o[3].offset);
	post_order(f, 3, &o[3], now, "code", codes);
	w.n = 3;
	assert_true(it_wait(all_settled, &w, 10000));

	r = redisCommand(f->o.rc, "XRANGE %s - +", CONV_DEAD);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	for (k = 0; k < 2; k++) {
		const redisReply *fv = r->element[k]->element[1];
		const char *want = k == 0 ? "ordered_at" : "product_id";
		size_t x;
		int seen = 0;

		for (x = 0; x + 1 < fv->elements; x += 2)
			if (strcmp(fv->element[x]->str, "field") == 0) {
				assert_string_equal(fv->element[x + 1]->str, want);
				seen = 1;
			} else if (strcmp(fv->element[x]->str, "reason") == 0) {
				assert_string_equal(fv->element[x + 1]->str, "bad_value");
			}
		assert_true(seen);
	}
	freeReplyObject(r);

	/* The order records name the outcome and the window. */
	for (k = 0; k < n; k++) {
		const char *v;

		char id[32], sub[16], okey[256];

		snprintf(id, sizeof(id), "o-%d", (int)k);
		snprintf(sub, sizeof(sub), "s-%d", o[k].sub);
		r = redisCommand(f->o.rc, "GET %s", it_key_of(KEYS_ORDER, sub, id, okey,
		    sizeof(okey)));
		assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
		assert_non_null(v = strchr(r->str, '\t'));
		if (strncmp(v + 1, o[k].outcome, strlen(o[k].outcome)) != 0)
			fail_msg("order o-%d: %s, want %s", (int)k, v + 1, o[k].outcome);
		if (o[k].credit != NULL) {
			const char *win = o[k].window ? o[k].window : "delivery";
			size_t lw = strlen(win), lv = strlen(v);

			assert_true(lv > lw && strcmp(v + lv - lw, win) == 0);
			assert_non_null(strstr(v, o[k].credit));
		}
		freeReplyObject(r);
	}

	/* The deal's and the rule's reports. */
	for (i = 0; i < 2; i++) {
		const char *kind = i == 0 ? "deal" : "rule";
		double by[3] = { 0, 0, 0 }, rby[3] = { 0, 0, 0 };
		static const char *const wins[] = { "code", "click", "delivery" };
		char name[64];

		j = report(f, kind, i == 0 ? "wd" : "win");
		redeemed = revenue = 0;
		for (k = 0; k < n; k++) {
			int x;

			if (o[k].window == NULL)
				continue;
			redeemed++;
			revenue += o[k].revenue;
			for (x = 0; x < 3; x++)
				if (strcmp(o[k].window, wins[x]) == 0) {
					by[x]++;
					rby[x] += o[k].revenue;
				}
		}
		expect(kind, j, "redeemed", redeemed);
		expect(kind, j, "revenue", revenue);
		for (k = 0; k < 3; k++) {
			snprintf(name, sizeof(name), "redeemed_by_%s", wins[k]);
			expect(kind, j, name, by[k]);
			snprintf(name, sizeof(name), "revenue_by_%s", wins[k]);
			expect(kind, j, name, rby[k]);
		}
		expect(kind, j, "halo_orders", 1);
		expect(kind, j, "halo_revenue", 23);
		if (i == 0) {
			/* o-1 (outside its windows) and o-99 (nobody's) */
			expect(kind, j, "unattributed", 2);
			expect(kind, j, "unattributed_revenue", 14);
			expect(kind, j, "outside_window", 1);
		}
		/* the total holdout: held out of every channel */
		expect(kind, cJSON_GetObjectItemCaseSensitive(j, "holdout"), "audience", whole);
		expect(kind, cJSON_GetObjectItemCaseSensitive(j, "holdout"), "redeemed", 1);
		check_channel(cJSON_GetObjectItemCaseSensitive(j, "channels"), "sms", &g, o, n);
		check_channel(cJSON_GetObjectItemCaseSensitive(j, "channels"), "dm", &g, o, n);
		cJSON_Delete(j);
	}

	/* dealpushctl shows the same: the report's windows and channels, and the outcome
	 * of an order by push id that the moved clock puts 20 days after the send. */
	{
		char bin[600], url[64], addr[64], file[512], out[16384];
		const char *rep[] = { bin, "--api", url, "--token", TOKEN, "report", "deal",
			"wd", NULL };
		const char *conv[] = { bin, "--redis", addr, "convert", file, NULL };
		FILE *cf;

		snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->http);
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->o.port);
		assert_int_equal(it_run(rep, out, sizeof(out)), 0);
		assert_non_null(strstr(out, "redeemed_by_click"));
		assert_non_null(strstr(out, "halo_revenue"));
		assert_non_null(strstr(out, "dm holdout_redeemed"));
		assert_non_null(strstr(out, "sms incremental_revenue_ci95"));
		it_path(file, sizeof(file), "convert-late", ".jsonl");
		assert_non_null(cf = fopen(file, "w"));
		fprintf(cf, "{\"deal_id\":\"wd\",\"order_id\":\"o-late\",\"revenue\":3,"
		    "\"currency\":\"USD\",\"push_id\":\"%s:s-%d:sms\"}\n", entry, o[2].sub);
		fclose(cf);
		it_run(conv, out, sizeof(out));
		if (strstr(out, "o-late entry=") == NULL || strstr(out, ": unattributed: "
		    "outside_window") == NULL)
			fail_msg("dealpushctl convert said: %s", out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(windows_halo_and_channels_are_reported, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("attribution_windows", tests, NULL, NULL);
}
