/*
 * test_clicks.c: click links and conversions on the running notifier: texts carry
 * short <link_base>/<code> links that redirect once-counted with utm parameters and
 * raise engagement, a forged code is refused without a Redis read, an expired one is
 * 404, and the long /c/<token> links of pushes sent before still work; conversions
 * are attributed by code, click token and push id, deduped by order id, and bad ones
 * are dead-lettered with their reason, counting nothing.
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

#include "clicktok.h"
#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "shortlink.h"

#define CONV_DEAD keys_global(KEYS_G_CONVERSIONS_DEAD)   /* in the layout in force */

#define SECRET "0123456789abcdef0123456789abcdef"

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

/* GET path; returns the status and copies the Location header (or ""). */
static int
get_location(int port, const char *path, char *loc, size_t size)
{
	static struct it_resp resp;

	it_http(port, "GET", path, NULL, NULL, 0, &resp);
	it_http_header(&resp, "Location", loc, size);
	return resp.status;
}

/* extra: config lines of [http] besides the public URL and the click secret. */
static void
start_with(struct fx *f, const char *dir, const char *extra)
{
	char lines[1024], cfg[512];

	f->port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	snprintf(lines, sizeof(lines),
	    "{\"id\":\"s-1\",\"phone\":\"+15125550100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"
	    "{\"id\":\"s-2\",\"phone\":\"+15125550101\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n");
	assert_int_equal(it_import(f->port, lines), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_CLICK_SECRET", SECRET, 1);
	snprintf(cfg, sizeof(cfg), "public_url = https://click.example/\n"
	    "click_secret_env = DP_TEST_CLICK_SECRET\n%s", extra);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-c", cfg);
	assert_true(f->http > 0);
}

static void
start(struct fx *f, const char *dir)
{
	start_with(f, dir, "");
}

struct sent {
	struct fx *f;
	long long n;
};

static int
sent_reach(void *arg)
{
	struct sent *s = arg;

	return it_outcomes(s->f->rc, "sent") >= s->n;
}

/* The short code after base in the text gwsim got for phone (whose text has
 * url_part when not NULL), and the number of texts that carried a link on base. */
static int
code_for(const struct it_gwsim *g, const char *base, const char *phone,
    const char *url_part, char *code, size_t size)
{
	cJSON *reqs = it_gwsim_requests(g), *o;
	int links = 0;

	code[0] = '\0';
	cJSON_ArrayForEach(o, reqs) {
		const char *body = cJSON_GetObjectItem(o, "body")->valuestring;
		const char *to = cJSON_GetObjectItem(o, "to")->valuestring;
		const char *c = strstr(body, base);
		size_t n;

		if (c == NULL)
			continue;
		links++;
		if (to == NULL || strcmp(to, phone) != 0 ||
		    (url_part != NULL && strstr(body, url_part) == NULL))
			continue;
		c += strlen(base);
		n = strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
		snprintf(code, size, "%.*s", (int)n, c);
	}
	cJSON_Delete(reqs);
	return links;
}

/* The long /c/<token> token of sub's SMS of deal, as links were before short links:
 * the link of a push sent before the upgrade. */
static void
long_token(redisContext *rc, const char *deal, const char *sub, char *tok, size_t size)
{
	char push[256], entry[128];

	assert_string_not_equal(it_deal_entry(rc, deal, entry, sizeof(entry)), "");
	snprintf(push, sizeof(push), "%s:%s:sms", entry, sub);
	assert_int_equal(clicktok_make((const unsigned char *)SECRET, strlen(SECRET), push,
	    tok, size), 0);
}

/* Redis' key reads so far: keyspace_hits + keyspace_misses of INFO stats. */
static long long
key_reads(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "INFO stats");
	const char *h, *m;
	long long v = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING && (h = strstr(r->str, "keyspace_hits:")) != NULL &&
	    (m = strstr(r->str, "keyspace_misses:")) != NULL)
		v = strtoll(h + 14, NULL, 10) + strtoll(m + 16, NULL, 10);
	freeReplyObject(r);
	return v;
}

/* Field of report key (today's name), summed over the shards; -1 when absent. */
static long long
hget_int(redisContext *rc, const char *key, const char *field)
{
	double v;

	return it_shards_hsum(rc, key, field, &v) > 0 ? (long long)v : -1;
}

static double
hget_double(redisContext *rc, const char *key, const char *field)
{
	double v;

	return it_shards_hsum(rc, key, field, &v) > 0 ? v : -1;
}

/* 1 when the file at path contains s. */
static int
log_contains(const char *path, const char *s)
{
	static char buf[1 << 20];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (fp == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return strstr(buf, s) != NULL;
}

static void
click_redirects_with_utm_counts_once_and_raises_engagement(void **state)
{
	struct fx *f = *state;
	struct sent s = { f, 2 };
	char dir[512], code[64], tok[512], path[600], loc[2048], deal[512], key[80];
	char forged[SHORTLINK_LEN + 1], unknown[SHORTLINK_LEN + 1];
	long long before, ttl;
	cJSON *sub;
	redisReply *r;
	int i;

	it_path(dir, sizeof(dir), "redis-clicks", "");
	/* A short domain of its own; long links stay on the public URL's /c. */
	start_with(f, dir, "link_base = https://dp.example/s/\n[attribution]\n"
	    "click_window_s = 7200\n");
	snprintf(deal, sizeof(deal), "{\"id\": \"c-1\", \"title\": \"Click me\", "
	    "\"category\": \"laptop\", \"url\": \"https://shop.example/d/c-1?ref=x#top\", "
	    "\"campaign\": \"spring sale\", \"expires_at\": %lld}", it_now() + 600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	assert_true(it_wait(sent_reach, &s, 10000));

	/* Both texts carry a short link: the link base and 12 characters, then text. */
	assert_int_equal(code_for(&f->gw, "https://dp.example/s/", "+15125550100", NULL,
	    code, sizeof(code)), 2);
	assert_int_equal(strlen(code), SHORTLINK_LEN);
	assert_int_equal(code_for(&f->gw, "https://click.example/c/", "+15125550100", NULL,
	    tok, sizeof(tok)), 0);
	/* Kept for the deal's life and the click window ([attribution] click_window_s). */
	{
		uint32_t k = 0;

		assert_int_equal(shortlink_check((const unsigned char *)SECRET, strlen(SECRET),
		    code, strlen(code), keys_shards(), &k), 1);
		keys_per(k, KEYS_LINK, code, key, sizeof(key));
	}
	ttl = it_int(f->rc, "TTL %s", key);
	assert_true(ttl > 7200 && ttl <= 7200 + 600);

	snprintf(path, sizeof(path), "/s/%s", code);
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 302);
	assert_string_equal(loc, "https://shop.example/d/c-1?ref=x&utm_source=dealpush&"
	    "utm_medium=sms&utm_campaign=spring%20sale#top");
	assert_int_equal(hget_int(f->rc, "report:deal:c-1", "clicked"), 1);
	assert_int_equal(hget_int(f->rc, "report:campaign:spring sale", "clicked"), 1);
	assert_int_equal(hget_int(f->rc, "report:rule:default", "clicked"), 1);

	/* A second click redirects again and is not counted again. */
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 302);
	assert_non_null(strstr(loc, "https://shop.example/d/c-1?ref=x&utm_source="));
	assert_int_equal(hget_int(f->rc, "report:deal:c-1", "clicked"), 1);

	/* The code is a credential: the notifier's log (at debug) never shows it. */
	assert_int_equal(log_contains(f->nt.proc.log, code), 0);
	assert_int_equal(log_contains(f->nt.proc.log, "path=/s/..."), 1);

	/* Engagement rose in the stored subscriber: 0 + (1 - 0) x 0.1. */
	{
		char skey[KEYS_SHARD_MAX];

		r = redisCommand(f->rc, "HGET %s s-1", it_key_for("subscribers", "s-1", skey,
		    sizeof(skey)));
	}
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	sub = cJSON_Parse(r->str);
	freeReplyObject(r);
	assert_non_null(sub);
	assert_true(cJSON_GetObjectItem(sub, "engagement")->valuedouble > 0.099);
	assert_true(cJSON_GetObjectItem(sub, "engagement")->valuedouble < 0.101);
	cJSON_Delete(sub);

	/* Forged codes (one character off) are refused before Redis: 100 of them read
	 * fewer than 100 keys, where 100 codes that pass the check but name no push read
	 * at least 100 (each a miss). */
	memcpy(forged, code, SHORTLINK_LEN + 1);
	before = key_reads(f->rc);
	for (i = 0; i < 100; i++) {
		forged[i % SHORTLINK_LEN] = code[i % SHORTLINK_LEN] == 'A' ? 'B' : 'A';
		snprintf(path, sizeof(path), "/s/%s", forged);
		/* One in 131,072 passes the check: no forgery then, skipped. */
		if (shortlink_check((const unsigned char *)SECRET, strlen(SECRET), forged,
		    SHORTLINK_LEN, 1, NULL) != 1) {
			assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 404);
			assert_string_equal(loc, "");
		}
		forged[i % SHORTLINK_LEN] = code[i % SHORTLINK_LEN];
	}
	assert_true(key_reads(f->rc) - before < 100);
	before = key_reads(f->rc);
	for (i = 0; i < 100; i++) {
		assert_int_equal(shortlink_make((const unsigned char *)SECRET, strlen(SECRET),
		    (uint64_t)i * 7919 + 1, 0, 1, unknown), 0);
		snprintf(path, sizeof(path), "/s/%s", unknown);
		assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 404);
	}
	assert_true(key_reads(f->rc) - before >= 100);
	assert_int_equal(get_location(f->http, "/s/short", loc, sizeof(loc)), 404);
	assert_int_equal(get_location(f->http, "/s", loc, sizeof(loc)), 404);
	assert_int_equal(hget_int(f->rc, "report:deal:c-1", "clicked"), 1);

	/* The long link a push got before short links still works, on /c, once. */
	long_token(f->rc, "c-1", "s-2", tok, sizeof(tok));
	snprintf(path, sizeof(path), "/c/%s", tok);
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 302);
	assert_non_null(strstr(loc, "https://shop.example/d/c-1?ref=x&utm_source="));
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 302);
	assert_int_equal(hget_int(f->rc, "report:deal:c-1", "clicked"), 2);
	/* Tampered, truncated, garbage: 404 and no redirect. */
	path[strlen(path) - 3] = path[strlen(path) - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 404);
	assert_string_equal(loc, "");
	path[strlen(path) - 5] = '\0';
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 404);
	assert_int_equal(get_location(f->http, "/c/not-a-token", loc, sizeof(loc)), 404);
	assert_int_equal(get_location(f->http, "/c", loc, sizeof(loc)), 404);
	assert_string_equal(loc, "");

	/* Past the click window the code's key is gone: 404, nothing counted. */
	assert_int_equal(it_int(f->rc, "PEXPIRE %s 1", key), 1);
	usleep(20000);
	snprintf(path, sizeof(path), "/s/%s", code);
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 404);
	assert_string_equal(loc, "");
	assert_int_equal(hget_int(f->rc, "report:deal:c-1", "clicked"), 2);
}

/* Ingest takes "HTTPS://" in any case; so must the click that leads there. A refused
 * click token is counted by client address on /metrics. */
static void
upper_case_scheme_redirects_and_refused_tokens_are_counted(void **state)
{
	struct fx *f = *state;
	struct sent s = { f, 2 };
	static char body[1 << 16];
	char dir[512], tok[512], path[600], loc[2048], deal[512];

	it_path(dir, sizeof(dir), "redis-clicks", "");
	start(f, dir);
	snprintf(deal, sizeof(deal), "{\"id\": \"c-2\", \"title\": \"Loud\", "
	    "\"category\": \"laptop\", \"url\": \"HTTPS://shop.example/d/c-2\", "
	    "\"expires_at\": %lld}", it_now() + 600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	assert_true(it_wait(sent_reach, &s, 10000));
	/* The default link base: the public URL's /c, as the long links. */
	assert_int_equal(code_for(&f->gw, "https://click.example/c/", "+15125550100", NULL,
	    tok, sizeof(tok)), 2);
	assert_int_equal(strlen(tok), SHORTLINK_LEN);
	snprintf(path, sizeof(path), "/c/%s", tok);
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 302);
	assert_non_null(strstr(loc, "HTTPS://shop.example/d/c-2?utm_source=dealpush"));

	path[strlen(path) - 3] = path[strlen(path) - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(get_location(f->http, path, loc, sizeof(loc)), 404);
	assert_int_equal(get_location(f->http, "/c/not-a-token", loc, sizeof(loc)), 404);
	assert_int_equal(it_http_get(f->http, "/metrics", body, sizeof(body)), 200);
	assert_non_null(strstr(body, "dealpush_http_refused_total{reason=\"secret_path_404\","
	    "addr=\"127.0.0.1\"} 2"));
	assert_int_equal(log_contains(f->nt.proc.log, tok), 0);
}

static int
xadd_conversion(redisContext *rc, const char *json)
{
	redisReply *r = redisCommand(rc, "XADD conversions * conversion %s", json);
	int ok = r != NULL && r->type == REDIS_REPLY_STRING;

	freeReplyObject(r);
	return ok ? 0 : -1;
}

struct settled {
	struct fx *f;
};

static int
conversions_settled(void *arg)
{
	struct settled *s = arg;
	redisReply *r = redisCommand(s->f->rc, "XPENDING conversions attribution");
	int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 0 &&
	    it_int(s->f->rc, "XLEN %s", CONV_DEAD) == 7;

	freeReplyObject(r);
	return ok;
}

/* The dead letter i (0-based, oldest first) has reason and field. */
static void
assert_dead(redisContext *rc, size_t i, const char *reason, const char *field)
{
	redisReply *r = redisCommand(rc, "XRANGE %s - +", CONV_DEAD);
	redisReply *e;
	const char *got_reason = NULL, *got_field = NULL;
	size_t k;

	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements);
	e = r->element[i]->element[1];
	for (k = 0; k + 1 < e->elements; k += 2) {
		if (strcmp(e->element[k]->str, "reason") == 0)
			got_reason = e->element[k + 1]->str;
		if (strcmp(e->element[k]->str, "field") == 0)
			got_field = e->element[k + 1]->str;
	}
	assert_non_null(got_reason);
	assert_string_equal(got_reason, reason);
	assert_string_equal(got_field, field);
	freeReplyObject(r);
}

static void
conversions_are_attributed_deduped_and_bad_ones_dead_lettered(void **state)
{
	struct fx *f = *state;
	struct sent s = { f, 4 };
	struct settled st = { f };
	char dir[512], tok[512], deal[512], conv[1024], entry[64];
	char code[SHORTLINK_LEN + 1];

	it_path(dir, sizeof(dir), "redis-conv", "");
	start(f, dir);
	freeReplyObject(redisCommand(f->rc, "SADD codes:p1 P1-A P1-B"));
	snprintf(deal, sizeof(deal), "{\"id\": \"p-1\", \"title\": \"Pool\", "
	    "\"category\": \"laptop\", \"url\": \"https://shop.example/p\", "
	    "\"code_pool\": \"codes:p1\", \"campaign\": \"pool\", \"expires_at\": %lld}",
	    it_now() + 600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	snprintf(deal, sizeof(deal), "{\"id\": \"c-1\", \"title\": \"Click\", "
	    "\"category\": \"laptop\", \"url\": \"https://shop.example/c\", "
	    "\"expires_at\": %lld}", it_now() + 600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	assert_true(it_wait(sent_reach, &s, 10000));
	long_token(f->rc, "c-1", "s-1", tok, sizeof(tok));
	assert_string_not_equal(it_deal_entry(f->rc, "c-1", entry, sizeof(entry)), "");

	/* By code (pool deal), by click token, by push id; o-1 twice. */
	assert_int_equal(xadd_conversion(f->rc, "{\"deal_id\":\"p-1\",\"order_id\":\"o-1\","
	    "\"revenue\":10.5,\"currency\":\"USD\",\"code\":\"P1-A\"}"), 0);
	snprintf(conv, sizeof(conv), "{\"deal_id\":\"c-1\",\"order_id\":\"o-2\","
	    "\"revenue\":20,\"currency\":\"USD\",\"click_token\":\"%s\"}", tok);
	assert_int_equal(xadd_conversion(f->rc, conv), 0);
	snprintf(conv, sizeof(conv), "{\"deal_id\":\"c-1\",\"order_id\":\"o-3\","
	    "\"revenue\":5,\"currency\":\"USD\",\"push_id\":\"%s:s-2:sms\"}", entry);
	assert_int_equal(xadd_conversion(f->rc, conv), 0);
	assert_int_equal(xadd_conversion(f->rc, "{\"deal_id\":\"p-1\",\"order_id\":\"o-1\","
	    "\"revenue\":10.5,\"currency\":\"USD\",\"code\":\"P1-A\"}"), 0);

	/* Bad ones. */
	assert_int_equal(xadd_conversion(f->rc, "not json"), 0);
	assert_int_equal(xadd_conversion(f->rc, "{\"order_id\":\"o-9\",\"revenue\":1,"
	    "\"currency\":\"USD\",\"code\":\"P1-B\"}"), 0);
	assert_int_equal(xadd_conversion(f->rc, "{\"deal_id\":\"p-1\",\"order_id\":\"o-9\","
	    "\"revenue\":-1,\"currency\":\"USD\",\"code\":\"P1-B\"}"), 0);
	assert_int_equal(xadd_conversion(f->rc, "{\"deal_id\":\"p-1\",\"order_id\":\"o-9\","
	    "\"revenue\":1,\"currency\":\"USD\",\"code\":\"P1-B\",\"subscriber_id\":\"s-1\"}"),
	    0);
	assert_int_equal(xadd_conversion(f->rc, "{\"deal_id\":\"p-1\",\"order_id\":\"o-9\","
	    "\"revenue\":1,\"currency\":\"USD\",\"code\":\"NOPE\"}"), 0);
	assert_int_equal(xadd_conversion(f->rc, "{\"deal_id\":\"p-1\",\"order_id\":\"o-9\","
	    "\"revenue\":1,\"currency\":\"usd\",\"code\":\"P1-B\"}"), 0);
	/* A short code that passes its check but names no push. */
	assert_int_equal(shortlink_make((const unsigned char *)SECRET, strlen(SECRET), 77, 0,
	    1, code), 0);
	snprintf(conv, sizeof(conv), "{\"deal_id\":\"c-1\",\"order_id\":\"o-9\","
	    "\"revenue\":1,\"currency\":\"USD\",\"click_token\":\"%s\"}", code);
	assert_int_equal(xadd_conversion(f->rc, conv), 0);
	assert_true(it_wait(conversions_settled, &st, 10000));

	assert_int_equal(hget_int(f->rc, "report:deal:p-1", "redeemed"), 1);
	assert_true(hget_double(f->rc, "report:deal:p-1", "revenue") == 10.5);
	assert_int_equal(hget_int(f->rc, "report:campaign:pool", "redeemed"), 1);
	assert_int_equal(hget_int(f->rc, "report:deal:c-1", "redeemed"), 2);
	assert_true(hget_double(f->rc, "report:deal:c-1", "revenue") == 25);
	assert_int_equal(hget_int(f->rc, "report:rule:default", "redeemed"), 3);
	assert_int_equal(it_shards_sum(f->rc, "EXISTS %s", KEYS_ORDER, "o-9"), 0);

	assert_dead(f->rc, 0, "not_json", "conversion");
	assert_dead(f->rc, 1, "missing_field", "deal_id");
	assert_dead(f->rc, 2, "bad_value", "revenue");
	assert_dead(f->rc, 3, "ambiguous", "subscriber_id");
	assert_dead(f->rc, 4, "unknown_code", "code");
	assert_dead(f->rc, 5, "bad_value", "currency");
	assert_dead(f->rc, 6, "unknown_push", "click_token");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    upper_case_scheme_redirects_and_refused_tokens_are_counted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    click_redirects_with_utm_counts_once_and_raises_engagement, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    conversions_are_attributed_deduped_and_bad_ones_dead_lettered, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("clicks", tests, NULL, NULL);
}
