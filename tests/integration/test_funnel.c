/*
 * test_funnel.c: the marketer's funnel end to end. A rule with a holdout sends a
 * deal; the test injects known events (clicks, a repeated click, a HEAD preview,
 * conversions by click token, push id and subscriber, a repeated order, a held-out
 * buyer, an unknown buyer, a bad entry) and checks that every number of the deal,
 * rule and campaign reports equals what it injected, incremental revenue included.
 * Deliveries come from gwsim's signed Twilio status callbacks (two numbers end
 * undelivered and failed). Then the notifier restarts and the same subscribers are
 * held out again.
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
#include <sys/wait.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define CONV_DEAD keys_global(KEYS_G_CONVERSIONS_DEAD)   /* in the layout in force */

#define N_SUBS 200
#define TOKEN "funnel-admin-token-0123456789"
#define SECRET "0123456789abcdef0123456789abcdef"
#define LINK "/c/"
#define PRICE 0.0079

struct fx {
	struct it_one o;            /* redis, gwsim, the notifier */
	int http;
	char extra[2048];
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

	free(f);
	return rv;
}

static const char *
deal_json(const char *id)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"title\":\"Dell 14\",\"category\":"
	    "\"laptop\",\"url\":\"https://shop.example/d/%s\",\"campaign\":\"cmp\","
	    "\"expires_at\":%lld}", id, id, it_now() + 3600);
	return buf;
}

/* Starts the notifier with f->extra and waits until its HTTP port answers. */
static void
start_notifier(struct fx *f)
{
	struct it_resp resp;
	int i;

	assert_int_equal(it_notifier_start(&f->o.nt, f->o.port, f->o.gw.port, "it-fun", f->extra),
	    0);
	for (i = 0; i < 200 && it_http(f->http, "GET", "/healthz", NULL, NULL, 0, &resp) < 0;
	    i++)
		it_sleep_ms(25);
	assert_true(resp.status > 0);
}

static void
start(struct fx *f)
{
	static const char *const gwflags[] = { "--status-callbacks", "--callback-delay-ms",
	    "10", "--deliver", "+15125551005=undelivered:30005", "--deliver",
	    "+15125551006=failed:30008", NULL };
	char dir[512], path[600], *subs;
	size_t cap = (size_t)N_SUBS * 256 + 1, len = 0;
	FILE *fp;
	int i;

	it_path(dir, sizeof(dir), "rules-funnel", "");
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/fun.rules", dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("rule fun\n  when deal.category = \"laptop\"\n  audience all\n  send sms\n"
	    "  holdout 20%\n  template sms \"{title} {link} Reply STOP to end\"\nend\n", fp);
	fclose(fp);
	assert_non_null(subs = malloc(cap));
	for (i = 0; i < N_SUBS; i++) {
		snprintf(subs + len, cap - len,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\"}\n", i, 1000 + i);
		len += strlen(subs + len);
	}
	assert_int_equal(it_import(f->o.port, subs), 0);
	free(subs);
	/* Twilio's status callbacks, from gwsim: two numbers are not delivered. */
	assert_int_equal(it_gwsim_start(&f->o.gw, gwflags), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	setenv("DP_TEST_CLICK_SECRET", SECRET, 1);
	/* The callbacks need the notifier's port in its config: the first line still
	 * belongs to the [gateway twilio] section the harness writes. */
	f->http = it_free_port();
	assert_true(f->http > 0);
	snprintf(f->extra, sizeof(f->extra), "status_callback_base = http://127.0.0.1:%d\n"
	    "[http]\nport = %d\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "public_url = http://127.0.0.1:%d\nclick_secret_env = DP_TEST_CLICK_SECRET\n"
	    "[rules]\ndir = %s\n[report]\nsms_segment_price = %g\n", f->http, f->http,
	    f->http, dir, PRICE);
	start_notifier(f);
}

struct want {
	struct fx *f;
	long long n;
	const char *key, *field;
};

static int
sent_reach(void *arg)
{
	struct want *w = arg;

	return it_outcomes(w->f->o.rc, "sent") >= w->n;
}

/* Waits until every shard has planned deal: each shard's reader writes its holdout
 * before its plan, so the holdout is whole then. */
static void
wait_planned(struct fx *f, const char *deal)
{
	int i;

	for (i = 0; i < 200 && it_deal_copies(f->o.rc, deal, "planned") !=
	    (int)keys_shards(); i++)
		it_sleep_ms(50);
	assert_int_equal(it_deal_copies(f->o.rc, deal, "planned"), (int)keys_shards());
}

static int
field_reach(void *arg)
{
	struct want *w = arg;
	double v;

	/* A report counter, summed over the shards (docs/sharding.md 4f). */
	if (it_shards_hsum(w->f->o.rc, w->key, w->field, &v) == 0)
		return 0;
	return (long long)v >= w->n;
}

static int
one_dead(void *arg)
{
	struct fx *f = arg;

	return it_int(f->o.rc, "XLEN %s", CONV_DEAD) >= 1;
}

/* The click token of the text gwsim got for phone ("" when none). */
static void
token_for(const struct it_gwsim *g, const char *phone, char *tok, size_t size)
{
	cJSON *reqs = it_gwsim_requests(g), *o;

	tok[0] = '\0';
	cJSON_ArrayForEach(o, reqs) {
		const cJSON *to = cJSON_GetObjectItem(o, "to"), *b = cJSON_GetObjectItem(o, "body");
		const char *c;

		if (!cJSON_IsString(to) || !cJSON_IsString(b) || strcmp(to->valuestring, phone) != 0 ||
		    (c = strstr(b->valuestring, LINK)) == NULL)
			continue;
		c += strlen(LINK);
		snprintf(tok, size, "%.*s", (int)strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789_-"), c);
	}
	cJSON_Delete(reqs);
}

/* Subscriber ids: the held-out ones (HKEYS holdout:<deal>) and some treated ones. */
static int
is_held(struct fx *f, const char *deal, int i)
{
	char key[KEYS_MAX], sub[32];

	snprintf(sub, sizeof(sub), "s-%d", i);
	return it_int(f->o.rc, "HEXISTS %s %s", it_key_of(KEYS_HOLDOUT, sub, deal, key,
	    sizeof(key)), sub) == 1;
}

/* The fields of every shard's holdout:<deal> but "\tat" (each shard that held some
 * out keeps when, counted in *at). */
static long long
holdout_fields(struct fx *f, const char *deal, long long *at)
{
	char key[KEYS_MAX];
	long long n = 0;
	uint32_t k;

	*at = 0;
	for (k = 0; k < keys_shards(); k++) {
		keys_per(k, KEYS_HOLDOUT, deal, key, sizeof(key));
		n += it_int(f->o.rc, "HLEN %s", key);
		*at += it_int(f->o.rc, "HEXISTS %s %s", key, "\tat");
	}
	return n - *at;
}

static void
conversion(struct fx *f, const char *order, double revenue, const char *key,
    const char *val)
{
	redisReply *r = redisCommand(f->o.rc, "XADD conversions * conversion "
	    "{\"deal_id\":\"fd\",\"order_id\":\"%s\",\"revenue\":%g,\"currency\":\"USD\","
	    "\"%s\":\"%s\"}", order, revenue, key, val);

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
}

/* GET a report over the admin API; the caller deletes the JSON. */
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

static double
num(const cJSON *j, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

	if (!cJSON_IsNumber(v))
		fail_msg("report member %s is not a number", name);
	return v->valuedouble;
}

/* The report member name of j equals want (to rounding). */
static void
expect(const char *kind, const cJSON *j, const char *name, double want)
{
	double got = num(j, name);

	if (fabs(got - want) > 1e-9 * (1 + fabs(want)))
		fail_msg("%s report: %s is %.10g, the injected events make it %.10g", kind,
		    name, got, want);
}

/* What every report of this deal must say; unattributed orders are the deal's. */
/* What the test did: the audiences and the status callbacks gwsim sent. */
struct injected {
	double treated, held;
	double undelivered, failed;      /* 0 or 1: the --deliver numbers were treated */
};

static void
check_report(struct fx *f, const char *kind, const char *name, const struct injected *w,
    int is_deal)
{
	cJSON *j = report(f, kind, name);
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "holdout");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "errors");
	double treated = w->treated, held = w->held;
	double inc = (3 / treated - 1 / held) * treated;

	expect(kind, j, "matched", treated);
	expect(kind, j, "admitted", treated);
	expect(kind, j, "sent", treated);
	expect(kind, j, "failed", 0);
	expect(kind, j, "delivered", treated - w->undelivered - w->failed);
	expect(kind, j, "undelivered", w->undelivered);
	expect(kind, j, "delivery_failed", w->failed);
	assert_true(cJSON_IsObject(e));
	assert_int_equal(cJSON_GetArraySize(e), (int)(w->undelivered + w->failed));
	if (w->undelivered > 0)
		expect(kind, e, "30005", 1);
	if (w->failed > 0)
		expect(kind, e, "30008", 1);
	expect(kind, j, "clicked", 3);
	expect(kind, j, "redeemed", 3);
	expect(kind, j, "revenue", 60);
	expect(kind, j, "sms_segments", treated);           /* one segment each */
	expect(kind, j, "sms_cost", treated * PRICE);
	expect(kind, j, "click_rate", 3 / treated);
	expect(kind, j, "revenue_per_1000_pushes", 60 * 1000 / treated);
	expect(kind, j, "unattributed", is_deal ? 1 : 0);
	expect(kind, j, "unattributed_revenue", is_deal ? 7 : 0);
	assert_true(cJSON_IsObject(h));
	expect(kind, h, "audience", held);
	expect(kind, h, "redeemed", 1);
	expect(kind, h, "revenue", 15);
	expect(kind, h, "treated_audience", treated);
	expect(kind, h, "treated_conversion_rate", 3 / treated);
	expect(kind, h, "holdout_conversion_rate", 1 / held);
	expect(kind, h, "incremental_redemptions", inc);
	expect(kind, h, "incremental_revenue", inc * 20);   /* 60 / 3 a treated order */
	cJSON_Delete(j);
}

/* The sum over the minutes of metric in GET /v1/deals/<id>/series (the last 6 h). */
static double
series_sum(struct fx *f, const char *deal, const char *metric)
{
	static struct it_resp resp;
	char path[256];
	const cJSON *a, *v;
	double sum = 0;
	cJSON *j;

	snprintf(path, sizeof(path), "/v1/deals/%s/series", deal);
	assert_int_equal(it_http(f->http, "GET", path, "Authorization: Bearer " TOKEN "\r\n",
	    NULL, 0, &resp), 200);
	assert_non_null(j = cJSON_Parse(resp.body));
	a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "series"),
	    metric);
	assert_true(cJSON_IsArray(a));
	assert_int_equal(cJSON_GetArraySize(a), 360);
	cJSON_ArrayForEach(v, a)
		sum += v->valuedouble;
	cJSON_Delete(j);
	return sum;
}

static void
funnel_reports_equal_the_injected_events(void **state)
{
	struct fx *f = *state;
	char tok[4][128], phone[32], entry[64], pid[160], held_id[32] = "", path[256];
	char out[16384], url[64], bin[600], key[KEYS_MAX];
	int treated_ids[5], nt = 0, i;
	long long held, treated, at;
	struct want w = { f, 0, NULL, NULL };
	struct injected inj;
	struct it_resp resp;

	start(f);
	assert_int_equal(it_publish(f->o.rc, deal_json("fd")), 0);
	w.key = "report:deal:fd";
	w.field = "planned";
	w.n = 1;
	assert_true(it_wait(field_reach, &w, 10000));
	wait_planned(f, "fd");
	/* SMS-only subscribers: each held-out one is "<sub>" and "<sub>:sms", and the
	 * hash keeps when it was held out ("\tat"). */
	held = holdout_fields(f, "fd", &at);
	assert_int_equal(held % 2, 0);
	assert_true(at >= 1);
	held /= 2;
	treated = N_SUBS - held;
	/* 20% of 200, within four standard deviations (the hash is fixed, so this is
	 * about the hash being fair, not about luck). */
	assert_true(held >= 40 - 23 && held <= 40 + 23);
	w.n = treated;
	assert_true(it_wait(sent_reach, &w, 20000));
	assert_int_equal(it_gwsim_count(&f->o.gw, 201), treated);

	for (i = 0; i < N_SUBS && (nt < 5 || held_id[0] == '\0'); i++) {
		if (is_held(f, "fd", i)) {
			if (held_id[0] == '\0')
				snprintf(held_id, sizeof(held_id), "s-%d", i);
		} else if (nt < 5) {
			treated_ids[nt++] = i;
		}
	}
	assert_int_equal(nt, 5);
	assert_true(held_id[0] != '\0');
	/* Held-out subscribers were never texted. */
	snprintf(phone, sizeof(phone), "+1512555%04d", 1000 + atoi(held_id + 2));
	token_for(&f->o.gw, phone, tok[0], sizeof(tok[0]));
	assert_string_equal(tok[0], "");

	/* Clicks: A twice, B and C once; D is only previewed (HEAD): clicked = 3. */
	for (i = 0; i < 4; i++) {
		snprintf(phone, sizeof(phone), "+1512555%04d", 1000 + treated_ids[i]);
		token_for(&f->o.gw, phone, tok[i], sizeof(tok[i]));
		assert_int_equal(strlen(tok[i]), 12);   /* a short link's code */
		snprintf(path, sizeof(path), "/c/%s", tok[i]);
		assert_int_equal(it_http(f->http, i < 3 ? "GET" : "HEAD", path, NULL, NULL, 0,
		    &resp), 302);
		if (i == 0)
			assert_int_equal(it_http(f->http, "GET", path, NULL, NULL, 0, &resp), 302);
	}
	/* A tampered token is not counted and redirects nowhere. */
	snprintf(path, sizeof(path), "/c/%s", tok[1]);
	path[strlen(path) - 3] ^= 1;
	assert_int_equal(it_http(f->http, "GET", path, NULL, NULL, 0, &resp), 404);

	/* Conversions: by click token (A), push id (B), a repeated order, the buyer's id
	 * (E, never clicked), a held-out buyer, an unknown buyer, a bad entry. */
	assert_string_not_equal(it_deal_entry(f->o.rc, "fd", entry, sizeof(entry)), "");
	snprintf(pid, sizeof(pid), "%s:s-%d:sms", entry, treated_ids[1]);
	conversion(f, "o-1", 30, "click_token", tok[0]);
	conversion(f, "o-2", 20, "push_id", pid);
	conversion(f, "o-2", 999, "push_id", pid);
	snprintf(phone, sizeof(phone), "s-%d", treated_ids[4]);
	conversion(f, "o-3", 10, "subscriber_id", phone);
	conversion(f, "o-4", 15, "subscriber_id", held_id);
	conversion(f, "o-5", 7, "subscriber_id", "s-nobody");
	conversion(f, "o-6", -1, "subscriber_id", phone);
	w.field = "unattributed";
	w.n = 1;
	assert_true(it_wait(field_reach, &w, 10000));
	/* The bad entry is the last one, and its dead letter may land a moment later. */
	assert_true(it_wait(one_dead, f, 10000));
	assert_int_equal(it_int(f->o.rc, "XLEN %s", CONV_DEAD), 1);

	/* Every sent text has its final status callback. */
	inj.treated = (double)treated;
	inj.held = (double)held;
	inj.undelivered = !is_held(f, "fd", 5);
	inj.failed = !is_held(f, "fd", 6);
	w.field = "delivered";
	w.n = treated - (long long)inj.undelivered - (long long)inj.failed;
	assert_true(it_wait(field_reach, &w, 20000));
	it_sleep_ms(300);

	check_report(f, "deal", "fd", &inj, 1);
	/* The per-minute series counts the same events as the report. */
	assert_int_equal((long long)series_sum(f, "fd", "sent"), treated);
	assert_int_equal((long long)series_sum(f, "fd", "delivered"), w.n);
	assert_int_equal((long long)series_sum(f, "fd", "clicked"), 3);
	assert_int_equal((long long)series_sum(f, "fd", "redeemed"), 3);
	{
		/* Its life is bounded: every shard's series:fd expires, past the deal. */
		uint32_t k, n = it_shards() > 0 ? it_shards() : 1;
		char skey[KEYS_SHARD_MAX];
		int found = 0;

		for (k = 0; k < n; k++) {
			long long ttl;

			assert_true(keys_per(k, KEYS_SERIES, "fd", skey, sizeof(skey)) > 0);
			if ((ttl = it_int(f->o.rc, "TTL %s", skey)) == -2)
				continue;
			found++;
			assert_true(ttl > 7 * 86400);
		}
		assert_true(found > 0);
	}
	check_report(f, "rule", "fun", &inj, 0);
	check_report(f, "campaign", "cmp", &inj, 0);
	/* 30005 (unknown number) ended consent for that number. */
	assert_int_equal(it_int(f->o.rc, "HEXISTS %s s-5", it_key_for("consent:sms", "s-5", key,
	    sizeof(key))), inj.undelivered ? 0 : 1);

	/* dealpushctl reads the same report as a table. */
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->http);
	{
		const char *argv[] = { bin, "--api", url, "--token", TOKEN, "report", "deal", "fd",
		    NULL };

		assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	}
	assert_non_null(strstr(out, "redeemed"));
	assert_non_null(strstr(out, "holdout incremental_revenue"));

	/* A restarted notifier holds out exactly the same subscribers. */
	assert_int_equal(it_stop_clean(&f->o.nt.proc), 0);
	start_notifier(f);
	assert_int_equal(it_publish(f->o.rc, deal_json("fd2")), 0);
	w.key = "report:deal:fd2";
	w.field = "planned";
	w.n = 1;
	assert_true(it_wait(field_reach, &w, 10000));
	wait_planned(f, "fd2");
	assert_int_equal(holdout_fields(f, "fd2", &at), 2 * held);
	assert_true(at >= 1);
	for (i = 0; i < N_SUBS; i++)
		assert_int_equal(is_held(f, "fd2", i), is_held(f, "fd", i));
	/* The rule's report counts both deals' holdouts. */
	w.key = "report:rule:fun";
	w.field = "holdout_audience";
	w.n = 2 * held;
	assert_true(it_wait(field_reach, &w, 5000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(funnel_reports_equal_the_injected_events, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("funnel", tests, NULL, NULL);
}
