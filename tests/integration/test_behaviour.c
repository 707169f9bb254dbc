/*
 * test_behaviour.c: the behaviour fields through the real pipeline (issue 17 item
 * 2). Three subscribers are texted a deal; one clicks its link and buys. The admin
 * API shows the fields moving; a rule `subscriber.days_since_click <= 30` then texts
 * the clicker alone. The notifier restarts with its clock 31 days on: the same rule
 * matches nobody, while a rule without behaviour still texts everyone.
 */
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
#include "subbehav.h"

#define TOKEN "behaviour-admin-token-0123456789"
#define SECRET "0123456789abcdef0123456789abcdef"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define MONTH_S (31LL * 86400)

struct fx {
	struct it_one o;            /* redis, gwsim, the notifier */
	int http;
	char dir[512];
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

/* Starts the notifier with its clock offset moved by shift_s; waits for /healthz. */
static void
start_notifier(struct fx *f, long long shift_s)
{
	struct it_resp resp;
	char extra[1024];
	int i;

	snprintf(extra, sizeof(extra), "[http]\nport = %d\nadmin_token_env = "
	    "DP_TEST_ADMIN_TOKEN\npublic_url = http://127.0.0.1:%d\nclick_secret_env = "
	    "DP_TEST_CLICK_SECRET\n[rules]\ndir = %s\n[notifier]\nclock_offset_s = %lld\n",
	    f->http, f->http, f->dir, it_clock_offset() + shift_s);
	assert_int_equal(it_notifier_start(&f->o.nt, f->o.port, f->o.gw.port, "it-behav", extra),
	    0);
	for (i = 0; i < 200 && it_http(f->http, "GET", "/healthz", NULL, NULL, 0, &resp) < 0;
	    i++)
		it_sleep_ms(25);
	assert_true(resp.status > 0);
}

static const char *
deal_json(const char *id, const char *category, long long now)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"title\":\"Deal %s\",\"category\":"
	    "\"%s\",\"url\":\"https://shop.example/d/%s\",\"expires_at\":%lld}", id, id,
	    category, id, now + 3600);
	return buf;
}

struct want {
	struct fx *f;
	const char *what;
	long long n;
};

static int
sent_reach(void *arg)
{
	struct want *w = arg;

	return it_outcomes(w->f->o.rc, "sent") >= w->n;
}

/* The subscriber's "behaviour" member from GET /v1/subscribers/<id>; caller frees
 * the returned document (*doc). */
static cJSON *
behaviour(struct fx *f, const char *id, cJSON **doc)
{
	static struct it_resp resp;
	char path[128];

	snprintf(path, sizeof(path), "/v1/subscribers/%s", id);
	assert_int_equal(it_http(f->http, "GET", path, AUTH, NULL, 0, &resp), 200);
	assert_non_null(*doc = cJSON_Parse(resp.body));
	return cJSON_GetObjectItem(*doc, "behaviour");
}

static double
field(const cJSON *b, const char *name)
{
	const cJSON *v = cJSON_GetObjectItem(b, name);

	if (cJSON_IsNull(v))
		return -1;
	if (!cJSON_IsNumber(v))
		fail_msg("behaviour.%s is not a number", name);
	return v->valuedouble;
}

static int
bought(void *arg)
{
	struct want *w = arg;
	cJSON *doc;
	double v = field(behaviour(w->f, w->what, &doc), "purchases_90d");

	cJSON_Delete(doc);
	return v >= 1;
}

/* The mirror of the running notifier would send deal json to n subscribers: asked
 * through simulate, which reads the mirror, so the click has reached it. */
struct sim {
	struct fx *f;
	const char *json;
	long long n;
};

static int
simulated(void *arg)
{
	struct sim *s = arg;
	static struct it_resp resp;
	cJSON *j;
	int ok;

	if (it_http(s->f->http, "POST", "/v1/deals/simulate", AUTH, s->json,
	    strlen(s->json), &resp) != 200 || (j = cJSON_Parse(resp.body)) == NULL)
		return 0;
	ok = cJSON_GetObjectItem(j, "recipients") != NULL &&
	    cJSON_GetObjectItem(j, "recipients")->valueint == s->n;
	cJSON_Delete(j);
	return ok;
}

/* Follows the link of the text gwsim got for phone. */
static void
click(struct fx *f, const char *phone)
{
	static struct it_resp resp;
	cJSON *reqs = it_gwsim_requests(&f->o.gw), *o;
	char path[512] = "";
	const char *c;

	cJSON_ArrayForEach(o, reqs) {
		const cJSON *to = cJSON_GetObjectItem(o, "to"), *b = cJSON_GetObjectItem(o, "body");

		if (cJSON_IsString(to) && cJSON_IsString(b) && strcmp(to->valuestring, phone) == 0 &&
		    (c = strstr(b->valuestring, "/c/")) != NULL)
			snprintf(path, sizeof(path), "%.*s", (int)strcspn(c, " "), c);
	}
	cJSON_Delete(reqs);
	assert_true(path[0] != '\0');
	assert_int_equal(it_http(f->http, "GET", path, NULL, NULL, 0, &resp), 302);
}

/* Writes rules (one file) and imports subs (JSON lines), and, when record is not
 * NULL, stores it as m-0's behaviour record; then starts gwsim and the notifier. */
static void
start_with(struct fx *f, const char *rules, const char *subs, const char *record)
{
	char path[600];
	FILE *fp;

	it_path(f->dir, sizeof(f->dir), "rules-behav", "");
	mkdir(f->dir, 0755);
	snprintf(path, sizeof(path), "%s/b.rules", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(rules, fp);
	fclose(fp);
	assert_int_equal(it_import(f->o.port, subs), 0);
	if (record != NULL)
		freeReplyObject(redisCommand(f->o.rc, "HSET behaviour m-0 %s", record));
	assert_int_equal(it_gwsim_start(&f->o.gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	setenv("DP_TEST_CLICK_SECRET", SECRET, 1);
	f->http = it_free_port();
	assert_true(f->http > 0);
	start_notifier(f, 0);
}

static void
days_since_click_targets_clickers_until_a_month_passes(void **state)
{
	struct fx *f = *state;
	const char *subs =
	    "{\"id\":\"b-0\",\"phone\":\"+15125553000\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\"}\n"
	    "{\"id\":\"b-1\",\"phone\":\"+15125553001\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\"}\n"
	    "{\"id\":\"b-2\",\"phone\":\"+15125553002\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\"}\n";
	struct want w = { f, NULL, 3 };
	struct sim sm = { f, NULL, 1 };
	cJSON *doc, *b;
	redisReply *r;
	long long later;

	start_with(f, "rule clickers\n  when deal.category = \"phone\" and\n"
	    "       subscriber.days_since_click <= 30\n  audience all\n  send sms\n"
	    "  template sms \"{title} {link} Reply STOP to end\"\nend\n"
	    "rule everyone\n  when deal.category = \"laptop\"\n  audience all\n  send sms\n"
	    "  template sms \"{title} {link} Reply STOP to end\"\nend\n", subs, NULL);

	/* Texted: everyone; then b-0 clicks and buys. */
	assert_int_equal(it_publish(f->o.rc, deal_json("bl-1", "laptop", it_now())), 0);
	assert_true(it_wait(sent_reach, &w, 15000));
	b = behaviour(f, "b-1", &doc);
	assert_true(field(b, "texts_7d") == 1);
	assert_true(field(b, "days_since_text") == 0);
	/* joined: the consent time the import gave, 2026-01-02T10:00:00Z */
	assert_true(field(b, "days_since_join") == (double)((it_now() - 1767348000LL) / 86400));
	assert_true(field(b, "days_since_click") == -1);   /* null: never clicked */
	assert_true(field(b, "clicks_30d") == 0);
	cJSON_Delete(doc);
	click(f, "+15125553000");
	r = redisCommand(f->o.rc, "XADD conversions * conversion {\"deal_id\":\"bl-1\","
	    "\"order_id\":\"o-1\",\"revenue\":25.5,\"currency\":\"USD\","
	    "\"subscriber_id\":\"b-0\"}");
	assert_non_null(r);
	freeReplyObject(r);
	w.what = "b-0";
	assert_true(it_wait(bought, &w, 10000));
	{
		/* The change entry of the purchase carries the record as stored, so that
		 * the mirrors follow it without reading it back. */
		redisReply *e = redisCommand(f->o.rc, "XREVRANGE subscribers:changes + - "
		    "COUNT 1"), *stored = redisCommand(f->o.rc, "HGET behaviour b-0");
		const redisReply *fv;
		size_t k;
		int seen = 0;

		assert_true(e != NULL && e->type == REDIS_REPLY_ARRAY && e->elements == 1);
		assert_true(stored != NULL && stored->type == REDIS_REPLY_STRING);
		fv = e->element[0]->element[1];
		for (k = 0; k + 3 < fv->elements; k += 2)
			if (strcmp(fv->element[k]->str, "id") == 0 &&
			    strcmp(fv->element[k + 1]->str, "b-0") == 0 &&
			    strcmp(fv->element[k + 2]->str, "rec") == 0) {
				assert_string_equal(fv->element[k + 3]->str, stored->str);
				seen = 1;
			}
		assert_true(seen);
		freeReplyObject(e);
		freeReplyObject(stored);
	}
	b = behaviour(f, "b-0", &doc);
	assert_true(field(b, "days_since_click") == 0);
	assert_true(field(b, "clicks_30d") == 1);
	assert_true(field(b, "days_since_purchase") == 0);
	assert_true(field(b, "purchases_90d") == 1);
	assert_true(field(b, "revenue_90d") == 25.5);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(b, "last_click_at")));
	cJSON_Delete(doc);
	{
		/* dealpushctl shows the same, through the API; a bad id is refused */
		char bin[512], url[64], out[8192];
		const char *get[] = { bin, "--api", url, "--token", TOKEN, "subscribers",
			"get", "b-0", NULL };
		const char *bad[] = { bin, "--api", url, "--token", TOKEN, "subscribers",
			"get", "a b", NULL };

		snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->http);
		assert_int_equal(it_run(get, out, sizeof(out)), 0);
		assert_non_null(strstr(out, "\"clicks_30d\":\t1"));
		assert_non_null(strstr(out, "\"revenue_90d\":\t25.5"));
		assert_int_not_equal(it_run(bad, out, sizeof(out)), 0);
		assert_non_null(strstr(out, "not a valid subscriber id"));
	}

	/* The rule on clicks: b-0 alone, once the mirror has the click. */
	sm.json = deal_json("ph-1", "phone", it_now());
	assert_true(it_wait(simulated, &sm, 10000));
	assert_int_equal(it_publish(f->o.rc, deal_json("ph-1", "phone", it_now())), 0);
	w.n = 4;
	assert_true(it_wait(sent_reach, &w, 15000));
	assert_int_equal(it_int(f->o.rc, "HLEN push:ph-1"), 1);
	assert_int_equal(it_int(f->o.rc, "HEXISTS push:ph-1 b-0:sms"), 1);

	/* A month and a day later: the same rule matches nobody; the other rule still
	 * texts everyone, after the phone deal (deals are read in order). */
	assert_int_equal(it_stop_clean(&f->o.nt.proc), 0);
	start_notifier(f, MONTH_S);
	later = it_now() + MONTH_S;
	sm.json = deal_json("ph-2", "phone", later);
	sm.n = 0;
	assert_true(it_wait(simulated, &sm, 10000));
	assert_int_equal(it_publish(f->o.rc, deal_json("ph-2", "phone", later)), 0);
	assert_int_equal(it_publish(f->o.rc, deal_json("bl-2", "laptop", later)), 0);
	w.n = 7;
	assert_true(it_wait(sent_reach, &w, 15000));
	assert_int_equal(it_int(f->o.rc, "EXISTS push:ph-2"), 0);
	assert_int_equal(it_int(f->o.rc, "HLEN push:bl-2"), 3);
	b = behaviour(f, "b-0", &doc);
	assert_true(field(b, "days_since_click") == 31);
	assert_true(field(b, "clicks_30d") == 0);
	assert_true(field(b, "purchases_90d") == 1);
	cJSON_Delete(doc);
}

/* notifier/lua/lib/behav.lua with driver appended, a script for EVAL; caller frees. */
static char *
behav_script(const char *driver)
{
	char path[1024], *script;
	size_t len, dlen = strlen(driver);
	FILE *fp;

	snprintf(path, sizeof(path), "%s/notifier/lua/lib/behav.lua", getenv("DP_ROOT"));
	assert_non_null(fp = fopen(path, "r"));
	assert_non_null(script = malloc(65536 + dlen + 1));
	len = fread(script, 1, 65536, fp);
	fclose(fp);
	assert_true(len > 0 && len < 65536);
	memcpy(script + len, driver, dlen + 1);
	return script;
}

/* The stored record after one event, as lib/behav.lua computes it: the library run
 * in the test's Redis with a one-line driver, on records of every shape. */
static void
stored_record_ages_counts_out_of_their_windows(void **state)
{
	struct fx *f = *state;
	static const char driver[] =
	    "\nreturn behav_apply(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])\n";
	/* now: day 20787, one hour in */
	static const struct {
		const char *rec, *what, *amount, *want;
	} cases[] = {
		{ "", "1", "", "1796000400|||20787:1:0:0:0" },
		/* ages 90, 30, 7, 1 and today: a count past its window (texts 7 days,
		 * clicks 30, purchases and revenue 90) is 0, a day with nothing left goes,
		 * a day inside every window stays as it was */
		{ "100|200|300|20697:0:0:1:9.5,20757:1:1:0:0,20780:2:1:1:0,20786:1:1:1:5,"
		  "20787:2:0:0:0", "1",
		  "", "1796000400|200|300|20780:0:1:1:0,20786:1:1:1:5,20787:3:0:0:0" },
		{ "|||20758:0:1:2:12.5", "2", "", "|1796000400||20758:0:1:2:12.5,20787:0:1:0:0" },
		/* every day inside every window: only the last is read */
		{ "5|6|7|20785:1:0:0:0,20787:2:1:0:3.5", "1", "",
		  "1796000400|6|7|20785:1:0:0:0,20787:3:1:0:3.5" },
		{ "|||20786:1:0:0:0", "2", "", "|1796000400||20786:1:0:0:0,20787:0:1:0:0" },
		{ "|||20787:0:0:1:25.5", "3", "2.25", "||1796000400|20787:0:0:2:27.75" },
		{ "|||20787:0:0:1:25.5", "3", "-4", "||1796000400|20787:0:0:2:25.5" },
		/* never written so: out of order, a later day (an older clock) */
		{ "|||20786:1:0:0:0,20785:1:0:0:0", "2", "",
		  "|1796000400||20786:1:0:0:0,20787:0:1:0:0" },
		{ "|||20788:1:0:0:0", "1", "", "1796000400|||20787:1:0:0:0,20788:1:0:0:0" },
		{ "nonsense", "2", "", "|1796000400||20787:0:1:0:0" },
		{ "1796009999|||", "1", "", "1796009999|||20787:1:0:0:0" },
	};
	char *script;
	size_t i;

	script = behav_script(driver);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		redisReply *r = redisCommand(f->o.rc, "EVAL %s 0 %s 1796000400 %s %s", script,
		    cases[i].rec, cases[i].what, cases[i].amount);

		assert_non_null(r);
		if (r->type != REDIS_REPLY_STRING || strcmp(r->str, cases[i].want) != 0)
			fail_msg("record \"%s\", event %s: got \"%s\", want \"%s\"",
			    cases[i].rec, cases[i].what, r->type == REDIS_REPLY_STRING ? r->str :
			    r->type == REDIS_REPLY_ERROR ? r->str : "?", cases[i].want);
		freeReplyObject(r);
	}
	free(script);
}

/*
 * notifier/subbehav.c's subbehav_text (the record a text makes, computed from the
 * mirror's copy so that record.lua need not parse it) against lib/behav.lua itself:
 * random records as the library writes them, parsed as the mirror parses them; where
 * the C side takes the case, its "old" is the record and its "new" what behav_apply
 * makes of it, byte for byte. Records it must leave to record.lua: none taken.
 */
static void
text_record_computed_by_the_notifier_is_the_librarys(void **state)
{
	struct fx *f = *state;
	static const char driver[] =
	    "\nreturn behav_apply(ARGV[1], tonumber(ARGV[2]), 1)\n";
	static const char *const money[] = { "0", "0", "25.5", "3", "0.01", "12.35" };
	const long long now = 1796000400, today = now / 86400;
	char *script, rec[1024], old[1024], new[1024], *p;
	size_t taken = 0, left = 0;
	int i, k, n;

	script = behav_script(driver);
	srand(11);
	for (i = 0; i < 400; i++) {
		/* days in order from 10 or 6 days back on, up to 1 ahead; now and then
		 * none */
		long long d = today - (rand() % 3 ? 6 : 10) + rand() % 7;
		struct sub_behav *b;
		redisReply *r;

		p = rec;
		p += sprintf(p, "%s|%s|%s|", rand() % 3 ? "1795990000" : "",
		    rand() % 2 ? "1795000000" : "", rand() % 4 ? "" : "1794000000");
		n = rand() % 5;
		for (k = 0; k < n && d <= today + 1; k++, d += 1 + rand() % 3) {
			int t = rand() % 3, c = rand() % 2, pu = rand() % 2;

			p += sprintf(p, "%s%lld:%d:%d:%d:%s", k ? "," : "", d, t + !(t + c + pu),
			    c, pu, pu ? money[rand() % 6] : "0");
		}
		b = subbehav_parse(rec, strlen(rec));
		assert_non_null(b);
		if (subbehav_text(rand() % 8 ? b : NULL, now, old, sizeof(old), new,
		    sizeof(new)) < 0) {
			left++;
			free(b);
			continue;
		}
		if (old[0] != '\0')
			assert_string_equal(old, rec);
		r = redisCommand(f->o.rc, "EVAL %s 0 %s %lld", script, old, now);
		assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
		if (strcmp(r->str, new) != 0)
			fail_msg("record \"%s\": the notifier made \"%s\", behav.lua \"%s\"",
			    old, new, r->str);
		freeReplyObject(r);
		taken++;
		free(b);
	}
	/* both kinds came up */
	assert_true(taken > 100 && left > 50);
	/* a day older than the texts' window, or after today: left to record.lua */
	for (k = 0; k < 2; k++) {
		struct sub_behav *b = subbehav_parse(k ? "|||20788:1:0:0:0" :
		    "|||20780:1:0:0:0", 16);

		assert_non_null(b);
		assert_int_equal(subbehav_text(b, now, old, sizeof(old), new, sizeof(new)),
		    -1);
		free(b);
	}
	free(script);
}

/*
 * A record written behind the mirror's back (another notifier's click, a record the
 * mirror has not followed yet): the notifier sends its own copy as the old record and
 * the one the text makes of it, and record.lua must see that the stored one is no
 * longer that copy and compute the text from what is stored, never overwrite it.
 */
static void
record_changed_behind_the_mirror_is_kept_and_counted(void **state)
{
	struct fx *f = *state;
	char want[256], *bar;
	const char *subs =
	    "{\"id\":\"m-0\",\"phone\":\"+15125553100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\"}\n";
	struct want w = { f, NULL, 1 };
	long long now = it_now(), today = now / 86400, at;
	char first[128];
	struct it_resp resp;
	redisReply *r;
	int i;

	/* What the mirror loads: a text an hour ago. */
	snprintf(first, sizeof(first), "%lld|||%lld:1:0:0:0", now - 3600, today);

	start_with(f, "rule everyone\n  when deal.category = \"laptop\"\n  audience all\n"
	    "  send sms\n  template sms \"{title} {link} Reply STOP to end\"\nend\n", subs,
	    first);
	/* /healthz 200: the mirror has loaded the record above */
	for (i = 0; i < 400 && (it_http(f->http, "GET", "/healthz", NULL, NULL, 0,
	    &resp) < 0 || resp.status != 200); i++)
		it_sleep_ms(25);
	assert_int_equal(resp.status, 200);
	/* Behind its back: the stored record is now a click yesterday, no text. */
	r = redisCommand(f->o.rc, "HSET behaviour m-0 |%lld||%lld:0:1:0:0", now - 86400,
	    today - 1);
	freeReplyObject(r);
	assert_int_equal(it_publish(f->o.rc, deal_json("mb-1", "laptop", now)), 0);
	assert_true(it_wait(sent_reach, &w, 15000));
	r = redisCommand(f->o.rc, "HGET behaviour m-0");
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	/* The text at its time, on top of the stored click: not the mirror's copy plus
	 * a text ("...|||<today>:2:0:0:0"). */
	at = strtoll(r->str, &bar, 10);
	assert_true(at >= now - 5 && at <= now + 60);
	snprintf(want, sizeof(want), "|%lld||%lld:0:1:0:0,%lld:1:0:0:0", now - 86400,
	    today - 1, at / 86400);
	assert_string_equal(bar, want);
	freeReplyObject(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    days_since_click_targets_clickers_until_a_month_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    stored_record_ages_counts_out_of_their_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    text_record_computed_by_the_notifier_is_the_librarys, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    record_changed_behind_the_mirror_is_kept_and_counted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
