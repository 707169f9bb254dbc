/*
 * test_audience.c: what publishers and marketers manage without redis-cli
 * (docs/api.md, docs/admin.md): code pools filled and counted over the API and with
 * dealpushctl (bad lines named, duplicates counted, a malformed body adds nothing,
 * remaining codes in the deal's report); hostile pool names; the subscribers listed
 * page by page with filters, over one hash and over the shards of the sharded
 * layout, every subscriber once, with hostile cursors and limits; a deal's state
 * (done, planned, cancelled, paused, expired, dead-lettered with its reason, waiting
 * for confirmation) and dead letters listed and replayed; convert prints each
 * conversion's outcome.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "err.h"
#include "keys.h"
#include "layout.h"
#include "shard.h"

#define TOKEN "audience-test-token-0123456789"
#define WAIT_MS 15000

static struct it_resp resp;
static char bin[512], url[128], raddr[64];

static int
api(int port, const char *method, const char *path, const char *data)
{
	char hdr[256];

	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", TOKEN);
	return it_http(port, method, path, hdr, data, data ? strlen(data) : 0, &resp);
}

/* Starts gwsim and the notifier with the admin API (extra: more config, may be
 * NULL); returns the HTTP port. */
static int
start(struct it_one *f, const char *extra)
{
	char cfg[1024];
	int http, i;

	snprintf(cfg, sizeof(cfg), "admin_token_env = DP_TEST_ADMIN_TOKEN\n%s",
	    extra != NULL ? extra : "");
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-audience", cfg);
	assert_true(http > 0);
	/* Ready: Redis answers through the API. */
	for (i = 0; i < 300 && api(http, "GET", "/v1/codes/ready", NULL) != 200; i++)
		it_sleep_ms(20);
	assert_true(i < 300);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http);
	snprintf(raddr, sizeof(raddr), "127.0.0.1:%d", f->port);
	/* dealpushctl's clock is the notifier's (deals it checks expire on that clock). */
	snprintf(cfg, sizeof(cfg), "%lld", it_clock_offset());
	setenv("DEALPUSH_CLOCK_OFFSET_S", cfg, 1);
	return http;
}

/* Runs dealpushctl with the API (and Redis) and args (NULL-ended, at most 12). */
static int
ctl(char *out, size_t size, ...)
{
	const char *argv[24] = { bin, "--api", url, "--token", TOKEN, "--redis", raddr };
	int n = 7;
	va_list ap;

	va_start(ap, size);
	while (n < 23 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return it_run(argv, out, size);
}

struct sent {
	struct it_gwsim *gw;
	int n;
};

static int
gw_sent(void *arg)
{
	struct sent *s = arg;

	return it_gwsim_count(s->gw, 201) >= s->n;
}

struct xlen {
	redisContext *rc;
	const char *key;
	long long n;
};

static int
xlen_is(void *arg)
{
	struct xlen *x = arg;

	return it_int(x->rc, "XLEN %s", x->key) == x->n;
}

/* The id of the newest entry of stream key. */
static void
newest(redisContext *rc, const char *key, char *buf, size_t size)
{
	redisReply *r = redisCommand(rc, "XREVRANGE %s + - COUNT 1", key);

	assert_non_null(r);
	assert_int_equal(r->elements, 1);
	snprintf(buf, size, "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
}

/* ---- conversions: the final outcome, not "posted" ---- */

/* dealpushctl convert waits for each conversion's outcome: a code a push took is
 * attributed, an unknown code is dead-lettered and said so (exit 1), a subscriber
 * nobody sent to is unattributed, an order posted again is a duplicate. */
static void
convert_prints_each_outcome(struct it_one *f, char *file, size_t size)
{
	redisReply *r = redisCommand(f->rc, "HVALS code:pd");
	struct xlen x = { f->rc, "conversions:dead", 0 };
	char out[16384], code[80], old_dead[64], new_dead[64];
	FILE *fp;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 2);
	snprintf(code, sizeof(code), "%s", r->element[0]->str);
	freeReplyObject(r);
	it_path(file, size, "conv", ".jsonl");
	assert_non_null(fp = fopen(file, "w"));
	fprintf(fp, "{\"deal_id\":\"pd\",\"order_id\":\"o-1\",\"revenue\":10,"
	    "\"currency\":\"USD\",\"code\":\"%s\"}\n", code);
	fprintf(fp, "{\"deal_id\":\"pd\",\"order_id\":\"o-2\",\"revenue\":10,"
	    "\"currency\":\"USD\",\"code\":\"NOPE-1\"}\n");
	fprintf(fp, "{\"deal_id\":\"pd\",\"order_id\":\"o-3\",\"revenue\":10,"
	    "\"currency\":\"USD\",\"subscriber_id\":\"nobody\"}\n");
	fprintf(fp, "{\"deal_id\":\"pd\",\"order_id\":\"o-1\",\"revenue\":10,"
	    "\"currency\":\"USD\",\"code\":\"%s\"}\n", code);
	fclose(fp);
	assert_int_equal(ctl(out, sizeof(out), "convert", file, NULL), 1);
	assert_non_null(strstr(out, "posted 4 conversions, 0 bad lines"));
	assert_non_null(strstr(out, "order o-1 entry="));
	assert_non_null(strstr(out, ": attributed to push "));
	assert_non_null(strstr(out, "order o-2 entry="));
	assert_non_null(strstr(out, ": dead-lettered unknown_code (code: no push took this "
	    "code)"));
	assert_non_null(strstr(out, ": unattributed\n"));
	assert_non_null(strstr(out, ": duplicate (the order was counted by entry "));
	assert_int_equal(it_int(f->rc, "XLEN conversions:dead"), 1);

	/* Listed; replayed: valid as a conversion, so published again, and the notifier
	 * dead-letters it again (its code is still unknown): one dead letter, a new one. */
	assert_int_equal(ctl(out, sizeof(out), "dead", "list", "--conversions", NULL), 0);
	assert_non_null(strstr(out, "unknown_code"));
	assert_non_null(strstr(out, "o-2"));
	newest(f->rc, "conversions:dead", old_dead, sizeof(old_dead));
	assert_int_equal(ctl(out, sizeof(out), "dead", "replay", old_dead, NULL), 0);
	assert_non_null(strstr(out, "as conversions entry="));
	x.n = 1;
	assert_true(it_wait(xlen_is, &x, WAIT_MS));
	newest(f->rc, "conversions:dead", new_dead, sizeof(new_dead));
	assert_string_not_equal(old_dead, new_dead);

	/* --no-wait: posted, nothing waited for. */
	assert_non_null(fp = fopen(file, "w"));
	fprintf(fp, "{\"deal_id\":\"pd\",\"order_id\":\"o-9\",\"revenue\":10,"
	    "\"currency\":\"USD\",\"code\":\"NOPE-9\"}\n");
	fclose(fp);
	assert_int_equal(ctl(out, sizeof(out), "convert", "--no-wait", file, NULL), 0);
	assert_non_null(strstr(out, "posted order o-9 entry="));
	assert_null(strstr(out, "dead-lettered"));
}

/* ---- code pools ---- */

static void
codes_are_checked_deduplicated_counted_and_reported(void **state)
{
	struct it_one *f = *state;
	char file[512], out[16384], deal[1024], name[80];
	struct sent s = { &f->gw, 2 };
	int http, i;
	FILE *fp;

	it_import_audience(f->port, 2, 4100, "laptop");
	http = start(f, NULL);

	/* Lines: a repeat, a blank line, a comment, a code with a space. */
	assert_int_equal(api(http, "POST", "/v1/codes/summer",
	    "A1\nA2\r\nA1\n\nbad code\n# note\nA3\n"), 200);
	assert_non_null(strstr(resp.body, "\"added\":3"));
	assert_non_null(strstr(resp.body, "\"duplicates\":1"));
	assert_non_null(strstr(resp.body, "\"bad\":1"));
	assert_non_null(strstr(resp.body, "\"bad_lines\":[5]"));
	assert_int_equal(it_int(f->rc, "SCARD codes:summer"), 3);
	assert_int_equal(it_int(f->rc, "SISMEMBER codes:summer A2"), 1);

	/* A JSON array: a number and a code too long are bad, by position. */
	assert_int_equal(api(http, "POST", "/v1/codes/codes:summer", "[\"B1\", 5, \"A1\", "
	    "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]"), 200);
	assert_non_null(strstr(resp.body, "\"added\":1"));
	assert_non_null(strstr(resp.body, "\"duplicates\":1"));
	assert_non_null(strstr(resp.body, "\"bad_lines\":[2,4]"));
	assert_int_equal(it_int(f->rc, "SCARD codes:summer"), 4);

	/* A malformed body adds nothing; nor does one with no good code. */
	assert_int_equal(api(http, "POST", "/v1/codes/summer", "[\"C1\", \"C2\""), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"body\""));
	assert_int_equal(api(http, "POST", "/v1/codes/summer", "{\"codes\": [\"C1\"]}"),
	    400);
	assert_int_equal(api(http, "POST", "/v1/codes/summer", "bad one\n\x01\n"), 400);
	assert_non_null(strstr(resp.body, "\"bad_lines\":[1,2]"));
	assert_int_equal(api(http, "POST", "/v1/codes/summer", ""), 400);
	assert_int_equal(api(http, "POST", "/v1/codes/summer", "[\"C1\\u0000X\"]"), 400);
	assert_int_equal(it_int(f->rc, "SCARD codes:summer"), 4);

	/* Hostile pool names: braces (a slot of its own), a slash, empty, too long. */
	assert_int_equal(api(http, "POST", "/v1/codes/a%7Bx%7D", "C1\n"), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"path\""));
	assert_int_equal(api(http, "GET", "/v1/codes/a%2Fb", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/codes/", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/codes/codes:", NULL), 400);
	memset(name, 'p', 65);
	snprintf(name + 65, sizeof(name) - 65, "%s", "");
	snprintf(file, sizeof(file), "/v1/codes/%s", name);
	assert_int_equal(api(http, "GET", file, NULL), 400);
	assert_int_equal(api(http, "DELETE", "/v1/codes/summer", NULL), 405);
	assert_int_equal(it_int(f->rc, "EXISTS codes:a{x}"), 0);

	assert_int_equal(api(http, "GET", "/v1/codes/summer", NULL), 200);
	assert_non_null(strstr(resp.body, "\"remaining\":4"));
	assert_int_equal(api(http, "GET", "/v1/codes/empty", NULL), 200);
	assert_non_null(strstr(resp.body, "\"remaining\":0"));

	/* dealpushctl: 2,500 codes in three requests, bad lines named by number. */
	it_path(file, sizeof(file), "codes", ".txt");
	assert_non_null(fp = fopen(file, "w"));
	fprintf(fp, "K-0\nK-1\nwith space\n");
	for (i = 2; i < 2500; i++)
		fprintf(fp, "K-%d\n", i);
	fprintf(fp, "%070d\nK-7\n", 0);
	fclose(fp);
	assert_int_equal(ctl(out, sizeof(out), "codes", "add", "summer", file, NULL), 1);
	assert_non_null(strstr(out, ".txt:3: error: code with a space"));
	assert_non_null(strstr(out, ".txt:2502: error: code longer than 64 bytes"));
	assert_non_null(strstr(out, "2501 codes read, 2500 added, 1 already there or "
	    "repeated, 2 bad lines; 2504 codes left"));
	assert_int_equal(it_int(f->rc, "SCARD codes:summer"), 2504);
	assert_int_equal(ctl(out, sizeof(out), "codes", "count", "summer", NULL), 0);
	assert_non_null(strstr(out, "pool summer: 2504 codes left"));
	assert_int_equal(ctl(out, sizeof(out), "codes", "count", "a{x}", NULL), 1);
	assert_non_null(strstr(out, "is not a pool name"));
	assert_int_equal(ctl(out, sizeof(out), "codes", "add", "summer", "/nonexistent/f",
	    NULL), 2);

	/* A deal of the pool: two codes taken, the report says what is left. */
	snprintf(deal, sizeof(deal), "%.*s, \"code_pool\": \"codes:summer\"}",
	    (int)strlen(it_deal("pd", "laptop", 600)) - 1, it_deal("pd", "laptop", 600));
	it_sleep_ms(1000);
	assert_int_equal(it_publish(f->rc, deal), 0);
	assert_true(it_wait(gw_sent, &s, WAIT_MS));
	it_sleep_ms(300);
	assert_int_equal(api(http, "GET", "/v1/reports/deal/pd", NULL), 200);
	assert_non_null(strstr(resp.body, "\"codes_left\":2502"));
	assert_int_equal(it_int(f->rc, "SCARD codes:summer"), 2502);
	/* A deal without a pool: null. */
	assert_int_equal(it_publish(f->rc, it_deal("np", "laptop", 600)), 0);
	s.n = 4;
	assert_true(it_wait(gw_sent, &s, WAIT_MS));
	it_sleep_ms(300);
	assert_int_equal(api(http, "GET", "/v1/reports/deal/np", NULL), 200);
	assert_non_null(strstr(resp.body, "\"codes_left\":null"));
	convert_prints_each_outcome(f, file, sizeof(file));
}

/* ---- a deal's state and its dead letters ---- */

/* it_deal with extra members added (extra starts with ", "; static buffer). */
static const char *
deal_with(const char *id, int secs, const char *extra)
{
	static char buf[2048];
	const char *d = it_deal(id, "laptop", secs);

	snprintf(buf, sizeof(buf), "%.*s%s}", (int)strlen(d) - 1, d, extra);
	return buf;
}

static const char *
state_of(int http, const char *id)
{
	static char st[64];
	char path[256];
	cJSON *j, *s;

	snprintf(path, sizeof(path), "/v1/deals/%s", id);
	st[0] = '\0';
	if (api(http, "GET", path, NULL) != 200 || (j = cJSON_Parse(resp.body)) == NULL)
		return st;
	s = cJSON_GetObjectItem(j, "state");
	snprintf(st, sizeof(st), "%s", cJSON_IsString(s) ? s->valuestring : "");
	cJSON_Delete(j);
	return st;
}

struct want_state {
	int http;
	const char *id, *state;
};

static int
state_is(void *arg)
{
	struct want_state *w = arg;

	return strcmp(state_of(w->http, w->id), w->state) == 0;
}

static void
wait_state(int http, const char *id, const char *state)
{
	struct want_state w = { http, id, state };

	if (!it_wait(state_is, &w, WAIT_MS))
		fail_msg("deal %s: want state %s, last %s (%s)", id, state,
		    state_of(http, id), resp.body);
}

static void
deals_say_their_state_and_dead_letters_replay(void **state)
{
	struct it_one *f = *state;
	struct sent s = { &f->gw, 3 };
	struct xlen x = { f->rc, "deals:dead", 1 };
	char out[16384], file[512], entry[64], extra[128];
	redisReply *r;
	int http;
	FILE *fp;

	it_import_audience(f->port, 3, 4200, "laptop");
	http = start(f, NULL);
	it_sleep_ms(1000);

	/* Unknown and hostile ids. */
	assert_int_equal(api(http, "GET", "/v1/deals/nope", NULL), 404);
	assert_non_null(strstr(resp.body, "\"field\":\"path\""));
	assert_int_equal(api(http, "GET", "/v1/deals/a%20b", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/deals/", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/deals/%00", NULL), 400);
	assert_int_equal(ctl(out, sizeof(out), "deals", "status", "nope", NULL), 1);
	assert_non_null(strstr(out, "no deal 'nope'"));

	/* Sent to all three: done, with the counts. */
	assert_int_equal(it_publish(f->rc, it_deal("ok1", "laptop", 600)), 0);
	assert_true(it_wait(gw_sent, &s, WAIT_MS));
	wait_state(http, "ok1", "done");
	assert_non_null(strstr(resp.body, "\"sent\":3"));
	assert_non_null(strstr(resp.body, "\"recipients\":3"));
	assert_int_equal(ctl(out, sizeof(out), "deals", "status", "ok1", NULL), 0);
	assert_non_null(strstr(out, "deal ok1: done"));

	/* Not started yet: planned. */
	snprintf(extra, sizeof(extra), ", \"starts_at\": %lld", it_now() + 3600);
	assert_int_equal(it_publish(f->rc, deal_with("later", 7200, extra)), 0);
	wait_state(http, "later", "planned");

	/* Cancelled before it came. */
	assert_int_equal(ctl(out, sizeof(out), "cancel", "cx", NULL), 0);
	wait_state(http, "cx", "cancelled");

	/* Paused: planned, nothing goes; its expiry passes: expired. */
	assert_int_equal(api(http, "POST", "/v1/pause", "{\"reason\": \"check prices\"}"),
	    200);
	assert_int_equal(it_publish(f->rc, it_deal("pz", "laptop", 3)), 0);
	wait_state(http, "pz", "paused");
	assert_non_null(strstr(resp.body, "\"pause_reason\":\"check prices\""));
	wait_state(http, "pz", "expired");
	assert_int_equal(api(http, "POST", "/v1/resume", NULL), 200);

	/* Dead-lettered, with its reason; replay of what is still invalid keeps it. */
	it_path(file, sizeof(file), "bad", ".jsonl");
	assert_non_null(fp = fopen(file, "w"));
	fprintf(fp, "{\"id\": \"bad1\", \"title\": \"no price\"}\n");
	fclose(fp);
	assert_int_equal(ctl(out, sizeof(out), "publish", "--raw", file, NULL), 0);
	assert_true(it_wait(xlen_is, &x, WAIT_MS));
	wait_state(http, "bad1", "dead_lettered");
	assert_non_null(strstr(resp.body, "\"dead_letter\":{\"id\":\""));
	assert_non_null(strstr(resp.body, "\"reason\":\"missing_field\""));
	assert_int_equal(ctl(out, sizeof(out), "deals", "status", "bad1", NULL), 0);
	assert_non_null(strstr(out, "deal bad1: dead_lettered"));
	assert_non_null(strstr(out, "missing_field"));
	newest(f->rc, "deals:dead", entry, sizeof(entry));
	assert_int_equal(ctl(out, sizeof(out), "dead", "list", "--deals", NULL), 0);
	assert_non_null(strstr(out, entry));
	assert_non_null(strstr(out, "bad1"));
	assert_int_equal(ctl(out, sizeof(out), "dead", "replay", entry, NULL), 1);
	assert_non_null(strstr(out, "is still invalid"));
	assert_non_null(strstr(out, "stays in deals:dead (reason missing_field)"));
	assert_int_equal(it_int(f->rc, "XLEN deals:dead"), 1);

	/* Held by the guards: waiting for confirmation, then queued once confirmed. */
	r = redisCommand(f->rc, "XADD deals:dead * reason held field audience error big "
	    "entry 1-1 deal %s", it_deal("h1", "laptop", 600));
	freeReplyObject(r);
	newest(f->rc, "deals:dead", entry, sizeof(entry));
	wait_state(http, "h1", "waiting_confirmation");
	assert_int_equal(ctl(out, sizeof(out), "dead", "replay", entry, NULL), 1);
	assert_non_null(strstr(out, "deals confirm"));
	assert_int_equal(it_int(f->rc, "HSET deals:confirmed %s 2-2", entry), 1);
	wait_state(http, "h1", "queued");

	/* A dead letter whose deal is valid now: replayed, removed, sent. */
	r = redisCommand(f->rc, "XADD deals:dead * reason plan_failed field x error "
	    "storage entry 1-2 deal %s", it_deal("rp1", "laptop", 600));
	freeReplyObject(r);
	newest(f->rc, "deals:dead", entry, sizeof(entry));
	assert_int_equal(ctl(out, sizeof(out), "dead", "replay", entry, NULL), 0);
	assert_non_null(strstr(out, "as deals entry="));
	assert_int_equal(it_int(f->rc, "XLEN deals:dead"), 2);
	s.n = 6;
	assert_true(it_wait(gw_sent, &s, WAIT_MS));
	wait_state(http, "rp1", "done");
	/* Gone: nothing to replay twice. */
	assert_int_equal(ctl(out, sizeof(out), "dead", "replay", entry, NULL), 1);
	assert_non_null(strstr(out, "no dead letter"));

	/* Hostile entries and options. */
	assert_int_equal(ctl(out, sizeof(out), "dead", "replay", "abc", NULL), 1);
	assert_int_equal(ctl(out, sizeof(out), "dead", "replay", "1-1-1", NULL), 1);
	assert_int_equal(ctl(out, sizeof(out), "dead", "replay", "+", NULL), 1);
	assert_int_equal(ctl(out, sizeof(out), "dead", "list", "--limit", "0", NULL), 1);
	assert_int_equal(ctl(out, sizeof(out), "dead", "list", "--deals", "--conversions",
	    NULL), 1);
	assert_int_equal(ctl(out, sizeof(out), "dead", "list", "--limit", "1", NULL), 0);
	assert_int_equal(it_int(f->rc, "XLEN deals:dead"), 2);
}

/* ---- subscriber lists ---- */

/* Pages through GET /v1/subscribers?limit=<limit><filters> to the end; every id seen
 * is counted in seen[] ("s-<n>" ids only, n < 1000), others in *other. Returns the
 * number of subscribers listed; fails the test on a page over the limit or a
 * subscriber listed twice. */
static int
list_all(int http, int limit, const char *filters, int *seen, int *other, int *pages)
{
	char path[512], cursor[128] = "";
	int total = 0;

	*pages = 0;
	for (;;) {
		cJSON *j, *subs, *s, *next;

		snprintf(path, sizeof(path), "/v1/subscribers?limit=%d%s%s%s", limit, filters,
		    cursor[0] ? "&cursor=" : "", cursor);
		assert_int_equal(api(http, "GET", path, NULL), 200);
		assert_non_null(j = cJSON_Parse(resp.body));
		subs = cJSON_GetObjectItem(j, "subscribers");
		assert_true(cJSON_GetArraySize(subs) <= limit);
		(*pages)++;
		cJSON_ArrayForEach(s, subs) {
			const char *id = cJSON_GetObjectItem(s, "id")->valuestring;
			int n;

			if (sscanf(id, "s-%d", &n) == 1 && n >= 0 && n < 1000) {
				if (seen[n]++ != 0)
					fail_msg("%s listed twice", id);
			} else {
				(*other)++;
			}
			total++;
		}
		next = cJSON_GetObjectItem(j, "cursor");
		if (!cJSON_IsString(next)) {
			cJSON_Delete(j);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", next->valuestring);
		cJSON_Delete(j);
		assert_true(*pages < 2000);
	}
	return total;
}

static const char *const extra_subs =
    "{\"id\":\"x-1\",\"phone\":\"+15125559001\",\"channels\":[\"sms\"],"
    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"Europe/Berlin\","
    "\"interests\":{\"categories\":[\"tv\"]}}\n"
    "{\"id\":\"x-2\",\"phone\":\"+15125559002\",\"channels\":[\"sms\"],"
    "\"timezone\":\"America/Chicago\",\"interests\":{\"categories\":[\"laptop\"]}}\n";

static void
subscribers_are_listed_page_by_page_with_filters(void **state)
{
	struct it_one *f = *state;
	static int seen[1000];
	char out[65536];
	int http, other = 0, pages, i;

	it_import_audience(f->port, 250, 5000, "laptop");
	assert_int_equal(it_import(f->port, extra_subs), 0);
	http = start(f, NULL);

	/* Pages of 7 over a hash of 252: each subscriber once, no page over 7. */
	memset(seen, 0, sizeof(seen));
	assert_int_equal(list_all(http, 7, "", seen, &other, &pages), 252);
	for (i = 0; i < 250; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(other, 2);
	assert_true(pages >= 36);
	/* One page of everything. */
	memset(seen, 0, sizeof(seen));
	other = 0;
	assert_int_equal(list_all(http, 1000, "", seen, &other, &pages), 252);

	/* Filters. */
	other = 0;
	memset(seen, 0, sizeof(seen));
	assert_int_equal(list_all(http, 5, "&tz=Europe/Berlin", seen, &other, &pages), 1);
	assert_int_equal(list_all(http, 5, "&interest=TV", seen, &other, &pages), 1);
	assert_int_equal(other, 2);
	memset(seen, 0, sizeof(seen));
	other = 0;
	assert_int_equal(list_all(http, 100, "&consent=sms&interest=laptop", seen, &other,
	    &pages), 250);
	assert_int_equal(other, 0);
	assert_int_equal(list_all(http, 100, "&tz=Mars/Olympus", seen, &other, &pages), 0);

	/* Hostile limits, cursors and filters. */
	assert_int_equal(api(http, "GET", "/v1/subscribers?limit=0", NULL), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"limit\""));
	assert_int_equal(api(http, "GET", "/v1/subscribers?limit=1001", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?limit=99999999999999999999999",
	    NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?limit=-1", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?limit=", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?cursor=garbage", NULL), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"cursor\""));
	assert_int_equal(api(http, "GET", "/v1/subscribers?cursor=1-1-0-0", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?cursor=4-0-0-0", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?cursor=1-0-0-0-", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?cursor=1-0-x-0", NULL), 400);
	assert_int_equal(api(http, "GET",
	    "/v1/subscribers?cursor=1-0-999999999999999999999-0", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?consent=email", NULL), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"consent\""));
	assert_int_equal(api(http, "GET", "/v1/subscribers?tz=a%20b", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?interest=%00", NULL), 400);
	assert_int_equal(api(http, "DELETE", "/v1/subscribers", NULL), 405);
	/* A cursor that starts past the end of a batch moves on. */
	assert_int_equal(api(http, "GET", "/v1/subscribers?cursor=1-0-0-999999", NULL), 200);

	/* dealpushctl follows the cursors. */
	assert_int_equal(ctl(out, sizeof(out), "subscribers", "list", NULL), 0);
	assert_non_null(strstr(out, "252 subscribers"));
	assert_non_null(strstr(out, "s-249 "));
	assert_int_equal(ctl(out, sizeof(out), "subscribers", "list", "--limit", "5", NULL),
	    0);
	assert_non_null(strstr(out, "5 subscribers"));
	assert_int_equal(ctl(out, sizeof(out), "subscribers", "list", "--tz",
	    "Europe/Berlin", "--json", NULL), 0);
	assert_non_null(strstr(out, "\"id\":\"x-1\""));
	assert_null(strstr(out, "s-1"));
	assert_int_equal(ctl(out, sizeof(out), "subscribers", "list", "--consent", "sms",
	    "--interest", "tv", NULL), 0);
	assert_non_null(strstr(out, "x-1 "));
	assert_non_null(strstr(out, "1 subscribers"));
	assert_int_equal(ctl(out, sizeof(out), "subscribers", "list", "--limit", "0", NULL),
	    1);
	assert_int_equal(ctl(out, sizeof(out), "subscribers", "list", "--consent", "email",
	    NULL), 1);
	assert_non_null(strstr(out, "consent: sms or dm"));
}

/* The sharded layout: a cursor walks every shard's hash. */
static int
sharded_setup(void **state)
{
	struct err err;
	struct shard_layout *l = shard_layout_new(4, &err);
	char out[256], b[512], addr[64];
	const char *argv[] = { b, "--redis", addr, "layout", "create", "--shards", "4",
		NULL };

	if (l == NULL || it_one_setup(state) < 0)
		return -1;
	layout_set(l);
	snprintf(b, sizeof(b), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", it_redis_port());
	return it_run(argv, out, sizeof(out)) == 0 ? 0 : -1;
}

static int
sharded_teardown(void **state)
{
	layout_clear();
	return it_one_teardown(state);
}

static void
the_listing_walks_every_shard(void **state)
{
	struct it_one *f = *state;
	static int seen[1000];
	char key[KEYS_SHARD_MAX], out[65536];
	int http, other = 0, pages, i, nonempty = 0;
	uint32_t k;

	it_import_audience(f->port, 150, 6000, "laptop");
	for (k = 0; k < 4; k++) {
		keys_shard_key(k, KEYS_SUBSCRIBERS, key, sizeof(key));
		nonempty += it_int(f->rc, "HLEN %s", key) > 0;
	}
	assert_int_equal(nonempty, 4);
	assert_int_equal(it_int(f->rc, "EXISTS subscribers"), 0);
	http = start(f, "[redis]\nshards = 4\n");

	/* Small pages (skips inside one batch) and one large page. */
	memset(seen, 0, sizeof(seen));
	assert_int_equal(list_all(http, 3, "", seen, &other, &pages), 150);
	for (i = 0; i < 150; i++)
		assert_int_equal(seen[i], 1);
	assert_true(pages >= 50);
	memset(seen, 0, sizeof(seen));
	assert_int_equal(list_all(http, 1000, "&consent=sms", seen, &other, &pages), 150);
	assert_int_equal(other, 0);
	/* A cursor of the single-instance layout is not one of this listing's. */
	assert_int_equal(api(http, "GET", "/v1/subscribers?cursor=1-0-0-0", NULL), 400);
	assert_int_equal(api(http, "GET", "/v1/subscribers?cursor=4-4-0-0", NULL), 400);
	assert_int_equal(ctl(out, sizeof(out), "subscribers", "list", NULL), 0);
	assert_non_null(strstr(out, "150 subscribers"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    codes_are_checked_deduplicated_counted_and_reported, it_one_setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    deals_say_their_state_and_dead_letters_replay, it_one_setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    subscribers_are_listed_page_by_page_with_filters, it_one_setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(the_listing_walks_every_shard, sharded_setup,
		    sharded_teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("audience", tests, NULL, NULL);
}
