/*
 * test_shard_store.c: the subscribers stored and mirrored in the sharded layout
 * (docs/sharding.md sections 2 and 6, step 2), on the shared redis-server with a
 * layout of 4 shards.
 *
 * Increment 3 (the keys of every push in its subscriber's shard): a deal with a code
 * pool and a holdout, clicks and conversions of every kind, reported by the API and
 * dealpushctl exactly as on one Redis without a layout; a cancel mid-way stopping
 * every shard; quiet-hours pushes waiting in every shard's delayed set, released.
 *
 * Every way a subscriber is written outside delivery (dealpushctl import and delete,
 * the admin API's put, bulk and delete) writes the keys of the subscriber's shard
 * only, named by notifier/keys.c; the notifier's mirror loads every shard's hash and
 * follows every shard's change stream; an id with '{' and '}' stays in its shard.
 * The inbound STOP and START across shards are in test_shard_stop.c.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "clicktok.h"
#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "layout.h"

#define CONV_DEAD keys_global(KEYS_G_CONVERSIONS_DEAD)   /* in the layout in force */

#define WAIT_MS 15000
#define AUDIENCE 40

static int http_port;

/* 1 when id is stored in its shard's hash and in no other shard's. */
static int
stored_in_its_shard(redisContext *rc, const char *id)
{
	char key[KEYS_SHARD_MAX];
	uint32_t k, own = keys_shard_of(id);
	int ok = 1;

	for (k = 0; k < IT_SHARD_N; k++) {
		keys_shard_key(k, KEYS_SUBSCRIBERS, key, sizeof(key));
		if (it_int(rc, "HEXISTS %s %s", key, id) != (k == own))
			ok = 0;
	}
	return ok;
}

static void
every_writer_uses_the_subscribers_shard(void **state)
{
	struct it_one *f = *state;
	static struct it_resp resp;
	char id[32], key[KEYS_SHARD_MAX], *bulk, bin[512], addr[64], out[256];
	const char *del[] = { bin, "--redis", addr, "subscribers", "delete", "a{b}c", NULL };
	long long sum = 0;
	size_t len = 0, cap = 16384;
	uint32_t k;
	int i;

	it_import_audience(f->port, AUDIENCE, 1000, "laptop");
	for (i = 0; i < AUDIENCE; i++) {
		snprintf(id, sizeof(id), "s-%d", i);
		assert_true(stored_in_its_shard(f->rc, id));
	}
	for (k = 0; k < IT_SHARD_N; k++) {
		long long n;

		keys_shard_key(k, KEYS_SUBSCRIBERS, key, sizeof(key));
		n = it_int(f->rc, "HLEN %s", key);
		assert_true(n > 0);   /* 40 ids spread over every shard */
		sum += n;
		keys_consent(k, CH_SMS, key, sizeof(key));
		assert_true(it_int(f->rc, "HLEN %s", key) > 0);
	}
	assert_int_equal(sum, AUDIENCE);
	/* No name of the single-instance layout was written. */
	assert_int_equal(it_int(f->rc, "EXISTS subscribers subscribers:changes consent:sms "
	    "consent:records consent:epoch"), 0);

	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, 1, "it-shard-store",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE);

	/* An id with braces: its tag comes first, so it stays in its shard. */
	assert_int_equal(it_shard_api(http_port, "PUT", "/v1/subscribers/a%7Bb%7Dc",
	    it_shard_sub_json("a{b}c", 1), &resp), 201);
	assert_true(stored_in_its_shard(f->rc, "a{b}c"));
	assert_int_equal(it_shard_api(http_port, "GET", "/v1/subscribers/a%7Bb%7Dc", NULL,
	    &resp), 200);
	assert_int_equal(it_shard_api(http_port, "GET", "/v1/consent/a%7Bb%7Dc", NULL,
	    &resp), 200);
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE + 1);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	assert_int_equal(it_run(del, out, sizeof(out)), 0);
	keys_shard_key(keys_shard_of("a{b}c"), KEYS_SUBSCRIBERS, key, sizeof(key));
	assert_int_equal(it_int(f->rc, "HEXISTS %s a{b}c", key), 0);
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE);

	/* A bulk request of subscribers of every shard: one call per shard. */
	assert_non_null(bulk = malloc(cap));
	bulk[0] = '\0';
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "b-%d", i);
		len += (size_t)snprintf(bulk + len, cap - len, "%s\n",
		    it_shard_sub_json(id, 100 + i));
	}
	assert_int_equal(it_shard_api(http_port, "POST", "/v1/bulk/subscribers", bulk,
	    &resp), 200);
	free(bulk);
	assert_non_null(strstr(resp.body, "\"stored\":10"));
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "b-%d", i);
		assert_true(stored_in_its_shard(f->rc, id));
	}
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE + 10);
	assert_int_equal(it_shard_api(http_port, "DELETE", "/v1/subscribers/b-3", NULL,
	    &resp), 200);
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE + 9);
	assert_int_equal(it_int(f->rc, "EXISTS subscribers subscribers:changes"), 0);
}

struct gw_want {
	struct it_gwsim *gw;
	int n;
};

static int
gw_reached(void *arg)
{
	struct gw_want *w = arg;

	return it_gwsim_count(w->gw, 201) >= w->n;
}

/* A deal to every subscriber of 4 shards (planned in jobs of one shard each): every
 * subscriber texted once, and no subscriber key of the single-instance layout. */
static void
a_deal_reaches_every_shard_once(void **state)
{
	struct it_one *f = *state;
	struct gw_want w = { &f->gw, AUDIENCE };
	char phone[32];
	cJSON *reqs;
	size_t i;

	it_import_audience(f->port, AUDIENCE, 2000, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-deal",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE);
	assert_int_equal(it_publish(f->rc, it_deal("shard-d1", "laptop", 600)), 0);
	assert_true(it_wait(gw_reached, &w, WAIT_MS));
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < AUDIENCE; i++) {
		snprintf(phone, sizeof(phone), "+1512555%04zu", 2000 + i);
		assert_int_equal(it_gwsim_accepted_to(reqs, phone), 1);
	}
	cJSON_Delete(reqs);
	/* The consent epochs and caps are the shards'; no single-instance name. */
	assert_int_equal(it_int(f->rc, "EXISTS subscribers subscribers:changes consent:sms "
	    "consent:dm consent:epoch consent:records"), 0);
	/* Ranked once by the notifier, planned once by each shard's reader. */
	assert_int_equal(it_log_count(f->nt.proc.log, "event=deal_ranked deal=shard-d1",
	    NULL, NULL), 1);
	assert_int_equal(it_log_count(f->nt.proc.log, "event=deal_planned deal=shard-d1",
	    NULL, NULL), 4);
}

/* A command that must succeed. */
static void
cmd_ok(redisContext *rc, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

/* The first subscriber s-<i> of shard k. */
static const char *
sub_of_shard(uint32_t k)
{
	static char id[16];
	int i;

	for (i = 0; i < AUDIENCE; i++) {
		snprintf(id, sizeof(id), "s-%d", i);
		if (keys_shard_of(id) == k)
			return id;
	}
	fail_msg("no subscriber in shard %u", k);
	return NULL;
}

/* A line holding needle in the log: for it_wait. */
struct log_want {
	const char *log;
	const char *needle;
};

static int
log_has(void *arg)
{
	const struct log_want *w = arg;

	return it_log_line(w->log, w->needle) > 0;
}

/* One shard's change stream trimmed past the mirror's position while the notifier
 * is stopped: a gap, noticed in that stream, and everything is read again; the other
 * shards' changes are followed as before. */
static void
a_gap_in_one_shards_feed_reloads_the_mirror(void **state)
{
	struct it_one *f = *state;
	static struct it_resp resp;
	char hash[KEYS_SHARD_MAX], feed[KEYS_SHARD_MAX], needle[128], gone[16];
	const char *other;

	it_import_audience(f->port, AUDIENCE, 3000, "laptop");
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, 1, "it-shard-gap",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[redis]\nshards = 4\n");
	assert_true(http_port > 0);
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE);
	/* The feed's reader back in its blocked XREAD, past the import's last changes:
	 * the stop below must catch it there (the case this test is about). */
	it_sleep_ms(500);

	assert_int_equal(kill(f->nt.proc.pid, SIGSTOP), 0);
	snprintf(gone, sizeof(gone), "%s", sub_of_shard(1));
	keys_shard_key(1, KEYS_SUBSCRIBERS, hash, sizeof(hash));
	keys_shard_key(1, KEYS_SUB_CHANGES, feed, sizeof(feed));
	/* The first entry answers the read the notifier had blocked in (Redis writes the
	 * reply while the process is stopped); the delete after it is then trimmed
	 * before the notifier reads on. */
	cmd_ok(f->rc, "XADD %s * id %s op put", feed, gone);
	cmd_ok(f->rc, "HDEL %s %s", hash, gone);
	cmd_ok(f->rc, "XADD %s * id %s op del", feed, gone);
	cmd_ok(f->rc, "XTRIM %s MAXLEN 0", feed);
	keys_shard_key(keys_shard_of("x-new"), KEYS_SUBSCRIBERS, hash, sizeof(hash));
	keys_shard_key(keys_shard_of("x-new"), KEYS_SUB_CHANGES, feed, sizeof(feed));
	cmd_ok(f->rc, "HSET %s x-new %s", hash, it_shard_sub_json("x-new", 9));
	cmd_ok(f->rc, "XADD %s * id x-new op put", feed);
	assert_int_equal(kill(f->nt.proc.pid, SIGCONT), 0);

	/* Read only from what is left, the mirror would still hold the one deleted. The
	 * count is AUDIENCE before the notifier has read anything too (one gone, one
	 * new): wait for the reload itself first. */
	keys_shard_key(1, KEYS_SUB_CHANGES, feed, sizeof(feed));
	snprintf(needle, sizeof(needle), "event=subscriber_feed_gap stream=%s", feed);
	{
		struct log_want lw = { f->nt.proc.log, needle };

		assert_true(it_wait(log_has, &lw, WAIT_MS));
		/* the reload's end (its start is logged as subscribers_reload) */
		lw.needle = "reason=gap load_ms=";
		assert_true(it_wait(log_has, &lw, WAIT_MS));
		assert_true(it_log_line(f->nt.proc.log, "event=subscribers_reload reason=gap") >
		    0);
	}
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE);
	assert_int_equal(it_shard_api(http_port, "GET", "/v1/subscribers/x-new", NULL,
	    &resp), 200);

	/* And it still follows every shard after the reload. */
	other = sub_of_shard(2);
	keys_shard_key(2, KEYS_SUBSCRIBERS, hash, sizeof(hash));
	keys_shard_key(2, KEYS_SUB_CHANGES, feed, sizeof(feed));
	cmd_ok(f->rc, "HDEL %s %s", hash, other);
	cmd_ok(f->rc, "XADD %s * id %s op del", feed, other);
	IT_SHARD_WAIT_MIRROR(http_port, AUDIENCE - 1);
}

/* ---- increment 3: the keys of every push in its subscriber's shard ---- */

#define CLICK_SECRET "0123456789abcdef0123456789abcdef"
#define FUN_SUBS 40

struct fun {
	struct it_one *f;
	int http;
	char dir[512];
	const char *ids[FUN_SUBS];
};

/* The admin API's answer to GET path (200 wanted); the caller deletes it. */
static cJSON *
api_json(int port, const char *path)
{
	static struct it_resp resp;
	cJSON *j;

	assert_int_equal(it_shard_api(port, "GET", path, NULL, &resp), 200);
	assert_non_null(j = cJSON_Parse(resp.body));
	return j;
}

/* A report member, -1 when the report has none yet. */
static double
report_num(int port, const char *kind, const char *name, const char *member)
{
	static struct it_resp resp;
	char path[256];
	const cJSON *v;
	cJSON *j;
	double x = -1;

	snprintf(path, sizeof(path), "/v1/reports/%s/%s", kind, name);
	if (it_shard_api(port, "GET", path, NULL, &resp) != 200 ||
	    (j = cJSON_Parse(resp.body)) == NULL)
		return -1;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, member)))
		x = v->valuedouble;
	cJSON_Delete(j);
	return x;
}

/* Sum over the shards of HLEN of the per-deal key name of deal. */
static long long
hlen_all(redisContext *rc, enum keys_per name, const char *deal)
{
	char key[KEYS_MAX];
	long long n = 0;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		keys_per(k, name, deal, key, sizeof(key));
		n += it_int(rc, "HLEN %s", key);
	}
	return n;
}

/* HGET of a push's field ("<sub>:sms") in its shard's per-deal key name; into out. */
static const char *
push_field(redisContext *rc, enum keys_per name, const char *deal, const char *sub,
    char *out, size_t size)
{
	char key[KEYS_MAX];
	redisReply *r;

	keys_per(keys_shard_of(sub), name, deal, key, sizeof(key));
	r = redisCommand(rc, "HGET %s %s:sms", key, sub);
	snprintf(out, size, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return out;
}

struct fun_want {
	struct fun *u;
	long long n;
};

static int
fun_all_final(void *arg)
{
	struct fun_want *w = arg;
	long long held = hlen_all(w->u->f->rc, KEYS_HOLDOUT, "sd");

	return held > 0 && it_outcomes(w->u->f->rc, "sent") + held >= w->n;
}

static int
fun_delivered(void *arg)
{
	struct fun *u = arg;
	double sent = report_num(u->http, "deal", "sd", "sent");

	return sent > 0 && report_num(u->http, "deal", "sd", "delivered") >= sent;
}

/* Every conversion read and acked: the group's pending list empty and its last id
 * the stream's last. */
static int
conversions_settled(void *arg)
{
	struct fun *u = arg;
	redisReply *last = redisCommand(u->f->rc, "XREVRANGE conversions + - COUNT 1");
	redisReply *g = redisCommand(u->f->rc, "XINFO GROUPS conversions");
	int ok = 0;
	size_t i;

	if (last != NULL && last->type == REDIS_REPLY_ARRAY && last->elements == 1 &&
	    g != NULL && g->type == REDIS_REPLY_ARRAY && g->elements == 1) {
		redisReply *e = g->element[0];
		const char *ld = NULL;
		long long pending = -1;

		for (i = 0; i + 1 < e->elements; i += 2) {
			if (strcmp(e->element[i]->str, "pending") == 0)
				pending = e->element[i + 1]->integer;
			else if (strcmp(e->element[i]->str, "last-delivered-id") == 0)
				ld = e->element[i + 1]->str;
		}
		ok = pending == 0 && ld != NULL &&
		    strcmp(ld, last->element[0]->element[0]->str) == 0;
	}
	freeReplyObject(last);
	freeReplyObject(g);
	return ok;
}

/* The short link code in the text gwsim got for phone ("" when none). */
static void
token_for(const struct it_gwsim *g, const char *phone, char *tok, size_t size)
{
	cJSON *reqs = it_gwsim_requests(g), *o;

	tok[0] = '\0';
	cJSON_ArrayForEach(o, reqs) {
		const cJSON *to = cJSON_GetObjectItem(o, "to");
		const cJSON *b = cJSON_GetObjectItem(o, "body");
		const char *c;

		if (!cJSON_IsString(to) || !cJSON_IsString(b) ||
		    strcmp(to->valuestring, phone) != 0 ||
		    (c = strstr(b->valuestring, "/c/")) == NULL)
			continue;
		c += 3;
		snprintf(tok, size, "%.*s", (int)strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789_-"), c);
	}
	cJSON_Delete(reqs);
}

static void
conversion(redisContext *rc, const char *order, double revenue, const char *kind,
    const char *val)
{
	redisReply *r = redisCommand(rc, "XADD conversions * conversion "
	    "{\"deal_id\":\"sd\",\"order_id\":\"%s\",\"revenue\":%g,\"currency\":\"USD\","
	    "\"%s\":\"%s\"}", order, revenue, kind, val);

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
}

/* 1 when a and b hold the same members with the same values (numbers to 1e-9,
 * whatever the order of an object's members). */
static int
json_same(const cJSON *a, const cJSON *b)
{
	const cJSON *x, *y;

	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return fabs(a->valuedouble - b->valuedouble) <=
		    1e-9 * (fabs(a->valuedouble) + 1);
	if ((a->type & 0xff) != (b->type & 0xff))
		return 0;
	if (cJSON_IsString(a))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (cJSON_IsObject(a)) {
		if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
			return 0;
		cJSON_ArrayForEach(x, a) {
			if ((y = cJSON_GetObjectItemCaseSensitive(b, x->string)) == NULL ||
			    !json_same(x, y)) {
				fprintf(stderr, "# member %s differs\n", x->string);
				return 0;
			}
		}
		return 1;
	}
	if (cJSON_IsArray(a)) {
		int i, n = cJSON_GetArraySize(a);

		if (n != cJSON_GetArraySize(b))
			return 0;
		for (i = 0; i < n; i++)
			if (!json_same(cJSON_GetArrayItem(a, i), cJSON_GetArrayItem(b, i)))
				return 0;
		return 1;
	}
	return 1;
}

/*
 * One deal with a code pool and a 20% holdout to FUN_SUBS subscribers, with Twilio's
 * status callbacks, three clicks (one twice), conversions by click token, push id,
 * subscriber id and code, a held-out buyer, an unknown buyer and an order posted
 * twice. Answers the reports of the deal, the rule and the campaign and the deal's counts
 * from GET /v1/deals/<id> (the caller
 * deletes them) and dealpushctl's table of the deal's into table.
 */
static void
fun_run(struct it_one *f, int sharded, cJSON *out[4], char *table, size_t tsize)
{
	static const char *const gwflags[] = { "--status-callbacks", "--callback-delay-ms",
	    "10", NULL };
	struct fun u = { f, 0, "", { NULL } };
	struct fun_want all = { &u, FUN_SUBS };
	char path[1200], extra[2048], tok[3][512], phone[32], code[64], entry[64], v[256];
	char bin[512], url[128], id[16];
	const char *t[4], *held = NULL;
	int i, nt = 0;
	FILE *fp;
	redisReply *r;

	it_path(u.dir, sizeof(u.dir), "rules-shard", "");
	mkdir(u.dir, 0755);
	snprintf(path, sizeof(path), "%s/shr.rules", u.dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("rule shr\n  when deal.category = \"laptop\"\n  audience all\n  send sms\n"
	    "  holdout 20%\n  template sms \"{title} code {code} {link} Reply STOP to end\"\n"
	    "end\n", fp);
	fclose(fp);
	it_import_audience(f->port, FUN_SUBS, 4000, "laptop");
	for (i = 0; i < 60; i++)
		freeReplyObject(redisCommand(f->rc, "SADD codes:sd C-%02d", i));
	assert_int_equal(it_gwsim_start(&f->gw, gwflags), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	setenv("DP_TEST_CLICK_SECRET", CLICK_SECRET, 1);
	u.http = it_free_port();
	assert_true(u.http > 0);
	/* The first line is the harness' [gateway twilio] section's. */
	snprintf(extra, sizeof(extra), "status_callback_base = http://127.0.0.1:%d\n"
	    "[http]\nport = %d\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "public_url = http://127.0.0.1:%d\nclick_secret_env = DP_TEST_CLICK_SECRET\n"
	    "[rules]\ndir = %s\n%s", u.http, u.http, u.http, u.dir,
	    sharded ? "[redis]\nshards = 4\n" : "");
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-shard-fun",
	    extra), 0);
	for (i = 0; i < 400 && it_shard_mirror_size(u.http) != FUN_SUBS; i++)
		it_sleep_ms(25);
	assert_int_equal(it_shard_mirror_size(u.http), FUN_SUBS);
	snprintf(v, sizeof(v), "{\"id\":\"sd\",\"title\":\"Dell 14\",\"category\":\"laptop\","
	    "\"url\":\"https://shop.example/d/sd\",\"campaign\":\"cmp\","
	    "\"code_pool\":\"codes:sd\",\"expires_at\":%lld}", it_now() + 3600);
	assert_int_equal(it_publish(f->rc, v), 0);
	assert_true(it_wait(fun_all_final, &all, WAIT_MS));
	assert_true(it_wait(fun_delivered, &u, WAIT_MS));

	/* Four treated subscribers (in as many shards as there are) and a held one. */
	for (i = 0; i < FUN_SUBS; i++) {
		static char ids[FUN_SUBS][16];
		int j, dup = 0;

		snprintf(ids[i], sizeof(ids[i]), "s-%d", i);
		if (hlen_all(f->rc, KEYS_HOLDOUT, "sd") > 0) {
			char hk[KEYS_MAX];

			keys_per(keys_shard_of(ids[i]), KEYS_HOLDOUT, "sd", hk, sizeof(hk));
			if (it_int(f->rc, "HEXISTS %s %s", hk, ids[i]) == 1) {
				if (held == NULL)
					held = ids[i];
				continue;
			}
		}
		for (j = 0; j < nt; j++)
			dup |= keys_shard_of(t[j]) == keys_shard_of(ids[i]);
		if (nt < 4 && (!dup || i > FUN_SUBS / 2))
			t[nt++] = ids[i];
	}
	assert_int_equal(nt, 4);
	assert_non_null(held);

	/* Clicks: t[0] twice, t[1] and t[2] once. */
	for (i = 0; i < 3; i++) {
		static struct it_resp resp;

		snprintf(phone, sizeof(phone), "+1512555%04d", 4000 + atoi(t[i] + 2));
		token_for(&f->gw, phone, tok[i], sizeof(tok[i]));
		assert_true(tok[i][0] != '\0');
		snprintf(path, sizeof(path), "/c/%.511s", tok[i]);
		assert_int_equal(it_http(u.http, "GET", path, NULL, NULL, 0, &resp), 302);
		if (i == 0)
			assert_int_equal(it_http(u.http, "GET", path, NULL, NULL, 0, &resp), 302);
	}
	/* Conversions: by click token, push id, subscriber id and code (the code t[3]'s
	 * push sent); a held-out buyer; an unknown buyer; o-1 again. */
	r = redisCommand(f->rc, "XRANGE deals - + COUNT 1");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	snprintf(entry, sizeof(entry), "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
	/* A conversion names a push by its long click token (a short code is a link,
	 * not a conversion key): t[0]'s. */
	snprintf(v, sizeof(v), "%s:%s:sms", entry, t[0]);
	assert_int_equal(clicktok_make((const unsigned char *)CLICK_SECRET,
	    strlen(CLICK_SECRET), v, tok[0], sizeof(tok[0])), 0);
	conversion(f->rc, "o-1", 30, "click_token", tok[0]);
	snprintf(v, sizeof(v), "%s:%s:sms", entry, t[1]);
	conversion(f->rc, "o-2", 20, "push_id", v);
	conversion(f->rc, "o-3", 10, "subscriber_id", t[2]);
	push_field(f->rc, KEYS_CODE, "sd", t[3], code, sizeof(code));
	assert_true(code[0] != '\0');
	conversion(f->rc, "o-4", 40.5, "code", code);
	conversion(f->rc, "o-5", 7, "subscriber_id", held);
	conversion(f->rc, "o-6", 3, "subscriber_id", "nobody");
	conversion(f->rc, "o-1", 30, "click_token", tok[0]);
	assert_true(it_wait(conversions_settled, &u, WAIT_MS));
	assert_int_equal(it_int(f->rc, "XLEN %s", CONV_DEAD), 0);

	out[0] = api_json(u.http, "/v1/reports/deal/sd");
	out[1] = api_json(u.http, "/v1/reports/rule/shr");
	out[2] = api_json(u.http, "/v1/reports/campaign/cmp");
	/* The deal's state and counts (GET /v1/deals/<id>), summed over the shards too;
	 * its entry and expiry differ from run to run, its counts must not. */
	{
		cJSON *st = api_json(u.http, "/v1/deals/sd");

		assert_string_equal(cJSON_GetObjectItem(st, "state")->valuestring, "done");
		out[3] = cJSON_DetachItemFromObject(st, "counts");
		cJSON_Delete(st);
		assert_int_equal(cJSON_GetObjectItem(out[3], "redeemed")->valueint, 4);
	}
	assert_int_equal(cJSON_GetObjectItem(out[0], "redeemed")->valueint, 4);
	assert_int_equal(cJSON_GetObjectItem(out[0], "clicked")->valueint, 3);
	assert_int_equal(cJSON_GetObjectItem(out[0], "unattributed")->valueint, 1);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", u.http);
	{
		const char *argv[] = { bin, "--api", url, "--token", IT_SHARD_TOKEN, "report",
			"deal", "sd", NULL };

		assert_int_equal(it_run(argv, table, tsize), 0);
	}
	/* dealpushctl convert finds each conversion's outcome wherever the notifier
	 * recorded it (the order's record is in the shard it was attributed in). */
	{
		char file[512], addr[64], cout[2048];
		const char *argv[] = { bin, "--redis", addr, "convert", file, NULL };
		FILE *cf;

		it_path(file, sizeof(file), "convert-dup", ".jsonl");
		assert_non_null(cf = fopen(file, "w"));
		fprintf(cf, "{\"deal_id\":\"sd\",\"order_id\":\"o-6\",\"revenue\":3,"
		    "\"currency\":\"USD\",\"subscriber_id\":\"nobody\"}\n");
		fclose(cf);
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", it_redis_port());
		it_run(argv, cout, sizeof(cout));
		if (strstr(cout, ": duplicate (the order was counted by entry ") == NULL)
			fail_msg("dealpushctl convert said: %s", cout);
	}
	/* Each subscriber texted once, each held one not at all. */
	{
		cJSON *reqs = it_gwsim_requests(&f->gw);

		for (i = 0; i < FUN_SUBS; i++) {
			char hk[KEYS_MAX];

			snprintf(id, sizeof(id), "s-%d", i);
			snprintf(phone, sizeof(phone), "+1512555%04d", 4000 + i);
			keys_per(keys_shard_of(id), KEYS_HOLDOUT, "sd", hk, sizeof(hk));
			assert_int_equal(it_gwsim_accepted_to(reqs, phone),
			    it_int(f->rc, "HEXISTS %s %s", hk, id) == 1 ? 0 : 1);
		}
		cJSON_Delete(reqs);
	}
	if (!sharded)
		return;
	/* Sharded: every push's keys in its subscriber's shard, in all four shards, and
	 * no key of the single-instance names. */
	for (i = 0; i < IT_SHARD_N; i++) {
		char k[KEYS_MAX];

		keys_per((uint32_t)i, KEYS_PUSH, "sd", k, sizeof(k));
		assert_true(it_int(f->rc, "HLEN %s", k) > 0);
		keys_per((uint32_t)i, KEYS_REPORT_DEAL, "sd", k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
		keys_shard_key((uint32_t)i, KEYS_STATS, k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
		keys_shard_key((uint32_t)i, KEYS_PUSHES_LOG, k, sizeof(k));
		assert_true(it_int(f->rc, "XLEN %s", k) > 0);
	}
	for (i = 0; i < 4; i++) {
		assert_string_equal(push_field(f->rc, KEYS_PUSH, "sd", t[i], v, sizeof(v)),
		    "sent");
		assert_true(push_field(f->rc, KEYS_PUSHINFO, "sd", t[i], v, sizeof(v))[0] !=
		    '\0');
		assert_true(push_field(f->rc, KEYS_DELIVERY, "sd", t[i], v, sizeof(v))[0] !=
		    '\0');
	}
	{
		char k[KEYS_MAX];

		keys_per(keys_shard_of(t[3]), KEYS_CODEPUSH, code, k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
		/* The pool's out names the reservation, and so the shard, that took it. */
		{
			char want[32];
			redisReply *o = redisCommand(f->rc, "HGET {codes:sd}:out %s", code);

			snprintf(want, sizeof(want), "sd\t%u\t", (unsigned)keys_shard_of(t[3]));
			assert_non_null(o);
			assert_int_equal(o->type, REDIS_REPLY_STRING);
			assert_int_equal(strncmp(o->str, want, strlen(want)), 0);
			freeReplyObject(o);
		}
		keys_per(keys_shard_of(t[0]), KEYS_ORDER, "o-1", k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
		keys_per(keys_shard_of("nobody"), KEYS_ORDER, "o-6", k, sizeof(k));
		assert_int_equal(it_int(f->rc, "EXISTS %s", k), 1);
	}
	assert_int_equal(it_int(f->rc, "EXISTS push:sd code:sd pushinfo:sd pushline:sd "
	    "delivery:sd holdout:sd report:deal:sd report:rule:shr report:campaign:cmp "
	    "stats pushes:log delayed resolve:due codepush:%s order:o-1", code), 0);
}

/* The same events on one Redis without a layout and with 4 shards: every report the
 * API answers (summed over the shards) and dealpushctl's table are the same. */
static void
reports_summed_over_shards_equal_the_single_instance_ones(void **state)
{
	struct it_one *f = *state;
	cJSON *one[4], *four[4];
	char *t1 = malloc(8192), *t4 = malloc(8192);
	int i;

	assert_non_null(t1);
	assert_non_null(t4);
	/* The single-instance layout first: setup stored a layout, which goes. */
	layout_clear();
	it_flush(f->rc);
	fun_run(f, 0, one, t1, 8192);
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	it_stop(&f->gw.proc, SIGTERM, 2000);
	memset(&f->nt, 0, sizeof(f->nt));
	memset(&f->gw, 0, sizeof(f->gw));
	it_flush(f->rc);
	assert_int_equal(it_shard_setup_layout(), 0);
	fun_run(f, 1, four, t4, 8192);
	for (i = 0; i < 4; i++) {
		char *a = cJSON_PrintUnformatted(one[i]), *b = cJSON_PrintUnformatted(four[i]);

		if (!json_same(one[i], four[i]))
			fail_msg("report %d differs:\n one Redis: %s\n 4 shards:  %s", i, a, b);
		free(a);
		free(b);
		cJSON_Delete(one[i]);
		cJSON_Delete(four[i]);
	}
	assert_string_equal(t1, t4);
	free(t1);
	free(t4);
}

/* A cancel in the middle of a fan-out over 4 shards: every push not yet sent is
 * cancelled, in every shard; nothing is sent twice. */
static void
a_cancel_midway_stops_every_shard(void **state)
{
	struct it_one *f = *state;
	const char *flags[] = { "--latency-ms", "20", NULL };
	struct gw_want some = { &f->gw, 10 };
	long long sent, cancelled, n = 0;
	cJSON *reqs;
	char phone[32], k[KEYS_MAX];
	uint32_t s;
	int i;

	it_import_audience(f->port, 120, 5000, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, flags), 0);
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-shard-cancel",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n[redis]\nshards = 4\n"
	    "[deliver]\nmax_in_flight = 4\n[ingest]\njob_size = 10\n");
	assert_true(http_port > 0);
	IT_SHARD_WAIT_MIRROR(http_port, 120);
	assert_int_equal(it_publish(f->rc, it_deal("cancel-me", "laptop", 600)), 0);
	assert_true(it_wait(gw_reached, &some, WAIT_MS));
	assert_int_equal(it_publish(f->rc, "{\"id\": \"cancel-me\", \"cancel\": true}"), 0);
	for (i = 0; i < 400 && n < 120; i++) {
		it_sleep_ms(25);
		n = it_outcomes(f->rc, "");
	}
	assert_int_equal(n, 120);
	it_sleep_ms(300);
	sent = it_outcomes(f->rc, "sent");
	cancelled = it_outcomes(f->rc, "cancelled");
	assert_int_equal(sent + cancelled, 120);
	assert_true(cancelled > 0);
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < 120; i++) {
		snprintf(phone, sizeof(phone), "+1512555%04d", 5000 + i);
		assert_true(it_gwsim_accepted_to(reqs, phone) <= 1);
	}
	cJSON_Delete(reqs);
	assert_int_equal(it_gwsim_count(&f->gw, 201), sent);
	/* The cancelled pushes are in every shard's states. */
	for (s = 0; s < IT_SHARD_N; s++) {
		redisReply *r;
		size_t j;
		long long c = 0;

		keys_per(s, KEYS_PUSH, "cancel-me", k, sizeof(k));
		r = redisCommand(f->rc, "HVALS %s", k);
		assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0);
		for (j = 0; j < r->elements; j++)
			c += strcmp(r->element[j]->str, "cancelled") == 0;
		freeReplyObject(r);
		assert_true(c > 0);
	}
	assert_int_equal(it_int(f->rc, "EXISTS push:cancel-me pushes:log stats"), 0);
}

/* Quiet hours in every shard: pushes made at night wait in their shard's delayed
 * set and all go out, once each, when a notifier runs in the morning. */
static void
quiet_hours_pushes_in_every_shard_are_released(void **state)
{
	struct it_one *f = *state;
	/* 22:30 CST; 08:00 CST the next morning (as test_deliver.c). */
	long long night = it_now() - it_now() % 86400 + 86400 + 4 * 3600 + 1800;
	long long morning = night - 1800 + 10 * 3600;
	char conf[256], deal[512], k[KEYS_MAX];
	long long waiting = 0, n = 0;
	cJSON *reqs;
	uint32_t s;
	int i;

	it_import_audience(f->port, 20, 6000, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	snprintf(conf, sizeof(conf), "[notifier]\nclock_offset_s = %lld\n[redis]\nshards = 4\n",
	    night - (long long)time(NULL));
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-shard-night",
	    conf), 0);
	snprintf(deal, sizeof(deal), "{\"id\": \"overnight\", \"title\": \"Deal\", "
	    "\"category\": \"laptop\", \"price\": 10, \"url\": \"https://x.example/o\", "
	    "\"expires_at\": %lld}", morning + 3600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	for (i = 0; i < 400 && waiting < 20; i++) {
		it_sleep_ms(25);
		waiting = 0;
		for (s = 0; s < IT_SHARD_N; s++) {
			keys_shard_key(s, KEYS_DELAYED, k, sizeof(k));
			waiting += it_int(f->rc, "ZCARD %s", k);
		}
	}
	assert_int_equal(waiting, 20);
	for (s = 0; s < IT_SHARD_N; s++) {
		keys_shard_key(s, KEYS_DELAYED, k, sizeof(k));
		assert_true(it_int(f->rc, "ZCARD %s", k) > 0);
	}
	assert_int_equal(it_int(f->rc, "EXISTS delayed"), 0);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 0);

	/* Morning: every shard's waiting pushes go out, once each. */
	assert_int_equal(it_stop(&f->nt.proc, SIGTERM, 5000), 0);
	snprintf(conf, sizeof(conf), "[notifier]\nclock_offset_s = %lld\n[redis]\nshards = 4\n",
	    morning + 60 - (long long)time(NULL));
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-shard-night",
	    conf), 0);
	for (i = 0; i < 600 && n < 20; i++) {
		it_sleep_ms(25);
		n = it_outcomes(f->rc, "sent");
	}
	assert_int_equal(n, 20);
	it_sleep_ms(1000);
	for (s = 0; s < IT_SHARD_N; s++) {
		keys_shard_key(s, KEYS_DELAYED, k, sizeof(k));
		assert_int_equal(it_int(f->rc, "ZCARD %s", k), 0);
	}
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < 20; i++) {
		char phone[32];

		snprintf(phone, sizeof(phone), "+1512555%04d", 6000 + i);
		assert_int_equal(it_gwsim_accepted_to(reqs, phone), 1);
	}
	cJSON_Delete(reqs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_writer_uses_the_subscribers_shard,
		    it_shard_setup, it_shard_teardown),
		cmocka_unit_test_setup_teardown(a_deal_reaches_every_shard_once,
		    it_shard_setup, it_shard_teardown),
		cmocka_unit_test_setup_teardown(a_gap_in_one_shards_feed_reloads_the_mirror,
		    it_shard_setup, it_shard_teardown),
		cmocka_unit_test_setup_teardown(
		    reports_summed_over_shards_equal_the_single_instance_ones, it_shard_setup,
		    it_shard_teardown),
		cmocka_unit_test_setup_teardown(a_cancel_midway_stops_every_shard,
		    it_shard_setup, it_shard_teardown),
		cmocka_unit_test_setup_teardown(quiet_hours_pushes_in_every_shard_are_released,
		    it_shard_setup, it_shard_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
