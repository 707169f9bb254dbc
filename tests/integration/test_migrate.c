/*
 * test_migrate.c: dealpushctl migrate --to-shards S and --to-single on the shared
 * redis-server (docs/sharding.md section 4g, step 2 increment 4).
 *
 * A single-instance Redis is filled through the real entry points (dealpushctl
 * import, a deal with a code pool delivered through gwsim with status callbacks, a
 * click, conversions by click token and by code, an inbound STOP). Then: migrate is
 * refused while the notifier runs; a migration killed half-way refuses every
 * notifier and dealpushctl command and finishes when run again; there and back
 * gives exactly the keys and values it started from (a normalized dump of every
 * key); a notifier on the sharded layout answers the same reports, subscribers and
 * consent, texts a new deal to each consenting subscriber once and repeats no push;
 * and back on one Redis the same again.
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
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "err.h"
#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "layout.h"
#include "shard.h"
#include "twsig.h"

#define TOKEN "migrate-admin-token-0123456789"
#define SECRET "0123456789abcdef0123456789abcdef"
#define WAIT_MS 15000
#define SUBS 12
#define PHONE0 7000
#define STOPPED 5                       /* s-5 texts STOP */
#define IDLE_MS 10500                   /* past ctl_migrate.c's MIG_IDLE_MS */
#define STOP_SID "SM00000000000000000000000000000077"

struct fx {
	redisContext *rc;
	int port, http;
	struct it_gwsim gw;
	struct it_notifier nt;
	char dir[512];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	layout_clear();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->gw.proc, SIGTERM, 2000);
	layout_clear();
	redisFree(f->rc);
	free(f);
	return rv;
}

/* ---- the notifier and its API ---- */

static int
api(struct fx *f, const char *method, const char *path, struct it_resp *resp)
{
	return it_http(f->http, method, path, "Authorization: Bearer " TOKEN "\r\n", NULL,
	    0, resp);
}

static int
healthy(void *arg)
{
	struct fx *f = arg;
	static struct it_resp resp;

	return api(f, "GET", "/v1/subscribers/s-0", &resp) == 200;
}

/* Starts the notifier (sharded: with [redis] shards = 4) and waits until its mirror
 * holds s-0. */
static void
start(struct fx *f, int sharded)
{
	char extra[2048];

	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	setenv("DP_TEST_CLICK_SECRET", SECRET, 1);
	if (f->http == 0)
		f->http = it_free_port();
	assert_true(f->http > 0);
	/* The first line is the harness' [gateway twilio] section's. */
	snprintf(extra, sizeof(extra), "status_callback_base = http://127.0.0.1:%d\n"
	    "[http]\nport = %d\nadmin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "public_url = http://127.0.0.1:%d\nclick_secret_env = DP_TEST_CLICK_SECRET\n"
	    "[rules]\ndir = %s\n%s", f->http, f->http, f->http, f->dir,
	    sharded ? "[redis]\nshards = 4\n" : "");
	memset(&f->nt, 0, sizeof(f->nt));
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-migrate",
	    extra), 0);
	assert_true(it_wait(healthy, f, WAIT_MS));
}

static void
stop(struct fx *f)
{
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	memset(&f->nt, 0, sizeof(f->nt));
}

/* dealpushctl migrate args... with DP_FAULTS=faults when not NULL. Exit status. */
static int
migrate(struct fx *f, const char *faults, const char *a1, const char *a2)
{
	char bin[512], addr[64], out[4096];
	const char *argv[] = { bin, "--redis", addr, "migrate", a1, a2, NULL };
	int rc;

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	if (faults != NULL)
		setenv("DP_FAULTS", faults, 1);
	rc = it_run(argv, out, sizeof(out));
	unsetenv("DP_FAULTS");
	fprintf(stderr, "# migrate %s %s (faults %s): exit %d: %s", a1, a2 ? a2 : "",
	    faults ? faults : "none", rc, out);
	return rc;
}

/* A report, a subscriber and its consent as the API answers them; "" when absent. */
static char *
view(struct fx *f, const char *path)
{
	static struct it_resp resp;
	int st = api(f, "GET", path, &resp);
	cJSON *j;
	char *s;

	if (st != 200 || (j = cJSON_Parse(resp.body)) == NULL)
		return strdup("");
	/* The report's notes name nothing that moves; the whole answer is compared. */
	s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

#define NVIEWS (3 + 2 * SUBS + 3)

/* Every view the test compares: the reports of deal m1, its rule and campaign, each
 * subscriber and its consent, the reports of deal m2 (absent before it). */
static void
views(struct fx *f, char *out[NVIEWS])
{
	char path[128];
	int i, n = 0;

	out[n++] = view(f, "/v1/reports/deal/m1");
	out[n++] = view(f, "/v1/reports/rule/mig");
	out[n++] = view(f, "/v1/reports/campaign/mc");
	for (i = 0; i < SUBS; i++) {
		snprintf(path, sizeof(path), "/v1/subscribers/s-%d", i);
		out[n++] = view(f, path);
		snprintf(path, sizeof(path), "/v1/consent/s-%d", i);
		out[n++] = view(f, path);
	}
	out[n++] = view(f, "/v1/reports/deal/m2");
	out[n++] = view(f, "/v1/reports/rule/mig");
	out[n++] = view(f, "/v1/reports/campaign/mc");
}

static void
views_equal(char *a[NVIEWS], char *b[NVIEWS], int nviews)
{
	int i;

	for (i = 0; i < nviews; i++)
		if (strcmp(a[i], b[i]) != 0)
			fail_msg("view %d differs:\n before: %s\n after:  %s", i, a[i], b[i]);
}

static void
views_free(char *v[NVIEWS])
{
	int i;

	for (i = 0; i < NVIEWS; i++)
		free(v[i]);
}

/* ---- the single-instance data, through the real entry points ---- */

static int
sms_in(struct fx *f, const char *sid, const char *from, const char *text)
{
	static struct it_resp r;
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
	char url[128];

	/* Signed for the notifier's public_url, as Twilio signs it. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/twilio/inbound", f->http);
	assert_int_equal(twsig_compute(IT_AUTH_TOKEN, url, p, 4, sig, sizeof(sig)), 0);
	snprintf(hdr, sizeof(hdr), "Content-Type: application/x-www-form-urlencoded\r\n"
	    "X-Twilio-Signature: %s\r\n", sig);
	it_http(f->http, "POST", "/hooks/twilio/inbound", hdr, body, strlen(body), &r);
	return r.status;
}

/* The click token in the text gwsim got for phone for deal title ("" when none). */
static void
token_for(struct fx *f, const char *phone, char *tok, size_t size)
{
	cJSON *reqs = it_gwsim_requests(&f->gw), *o;

	tok[0] = '\0';
	cJSON_ArrayForEach(o, reqs) {
		const cJSON *to = cJSON_GetObjectItem(o, "to"), *b = cJSON_GetObjectItem(o, "body");
		const char *c;

		if (!cJSON_IsString(to) || !cJSON_IsString(b) ||
		    strcmp(to->valuestring, phone) != 0 ||
		    (c = strstr(b->valuestring, "/c/")) == NULL)
			continue;
		c += 3;
		snprintf(tok, size, "%.*s", (int)strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789_-"), c);
		break;
	}
	cJSON_Delete(reqs);
}

static long long
report_member(struct fx *f, const char *deal, const char *member)
{
	static struct it_resp resp;
	char path[128];
	const cJSON *v;
	cJSON *j;
	long long x = -1;

	snprintf(path, sizeof(path), "/v1/reports/deal/%s", deal);
	if (api(f, "GET", path, &resp) != 200 || (j = cJSON_Parse(resp.body)) == NULL)
		return -1;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, member)))
		x = (long long)v->valuedouble;
	cJSON_Delete(j);
	return x;
}

struct until {
	struct fx *f;
	const char *deal, *member;
	long long n;
};

static int
reached(void *arg)
{
	struct until *u = arg;

	return report_member(u->f, u->deal, u->member) >= u->n;
}

static void
conversion(struct fx *f, const char *order, const char *kind, const char *val)
{
	redisReply *r = redisCommand(f->rc, "XADD conversions * conversion "
	    "{\"deal_id\":\"m1\",\"order_id\":\"%s\",\"revenue\":12.5,\"currency\":\"USD\","
	    "\"%s\":\"%s\"}", order, kind, val);

	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	freeReplyObject(r);
}

static void
publish(struct fx *f, const char *id)
{
	char deal[512];

	snprintf(deal, sizeof(deal), "{\"id\":\"%s\",\"title\":\"Deal %s\",\"category\":"
	    "\"laptop\",\"url\":\"https://shop.example/%s\",\"campaign\":\"mc\","
	    "\"code_pool\":\"codes:%s\",\"expires_at\":%lld}", id, id, id, id,
	    it_now() + 3600);
	assert_int_equal(it_publish(f->rc, deal), 0);
}

/* The data: SUBS subscribers, deal m1 delivered with callbacks, a click by s-0
 * (twice), conversions by s-0's click token and s-1's code, a STOP from s-5. */
static void
populate(struct fx *f)
{
	static const char *const gwflags[] = { "--status-callbacks", "--callback-delay-ms",
	    "10", NULL };
	static struct it_resp resp;
	struct until sent = { f, "m1", "delivered", SUBS }, conv = { f, "m1", "redeemed", 2 };
	char path[1200], tok[512], phone[32], code[64], key[KEYS_MAX];
	FILE *fp;
	redisReply *r;
	int i;

	it_path(f->dir, sizeof(f->dir), "rules-migrate", "");
	mkdir(f->dir, 0755);
	snprintf(path, sizeof(path), "%s/mig.rules", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("rule mig\n  when deal.category = \"laptop\"\n  audience all\n  send sms\n"
	    "  template sms \"{title} code {code} {link} Reply STOP to end\"\nend\n", fp);
	fclose(fp);
	it_import_audience(f->port, SUBS, PHONE0, "laptop");
	for (i = 0; i < 2 * SUBS; i++) {
		freeReplyObject(redisCommand(f->rc, "SADD codes:m1 A-%02d", i));
		freeReplyObject(redisCommand(f->rc, "SADD codes:m2 B-%02d", i));
	}
	assert_int_equal(it_gwsim_start(&f->gw, gwflags), 0);
	start(f, 0);
	publish(f, "m1");
	assert_true(it_wait(reached, &sent, WAIT_MS));
	snprintf(phone, sizeof(phone), "+1512555%04d", PHONE0);
	token_for(f, phone, tok, sizeof(tok));
	assert_true(tok[0] != '\0');
	snprintf(path, sizeof(path), "/c/%.511s", tok);
	assert_int_equal(it_http(f->http, "GET", path, NULL, NULL, 0, &resp), 302);
	assert_int_equal(it_http(f->http, "GET", path, NULL, NULL, 0, &resp), 302);
	conversion(f, "o-1", "click_token", tok);
	keys_per(0, KEYS_CODE, "m1", key, sizeof(key));
	r = redisCommand(f->rc, "HGET %s s-1:sms", key);
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	snprintf(code, sizeof(code), "%s", r->str);
	freeReplyObject(r);
	conversion(f, "o-2", "code", code);
	assert_true(it_wait(reached, &conv, WAIT_MS));
	snprintf(phone, sizeof(phone), "+1512555%04d", PHONE0 + STOPPED);
	assert_int_equal(sms_in(f, STOP_SID, phone, "STOP"), 200);
	assert_int_equal(api(f, "GET", "/v1/consent/s-5", &resp), 200);
}

/* Texts gwsim accepted for phone whose body holds what. */
static int
texts_to(const cJSON *reqs, const char *phone, const char *what)
{
	const cJSON *o;
	int n = 0;

	cJSON_ArrayForEach(o, reqs) {
		const cJSON *to = cJSON_GetObjectItem(o, "to"), *b = cJSON_GetObjectItem(o, "body");
		const cJSON *st = cJSON_GetObjectItem(o, "status");

		if (cJSON_IsString(to) && cJSON_IsString(b) &&
		    strcmp(to->valuestring, phone) == 0 && strstr(b->valuestring, what) != NULL &&
		    (!cJSON_IsNumber(st) || st->valueint == 201))
			n++;
	}
	return n;
}

/* ---- a normalized dump of every key ---- */

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the reply's strings (arrays flattened) to a growing text. */
static void
flatten(const redisReply *r, char **buf, size_t *len, size_t *cap)
{
	size_t i;

	if (r->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i < r->elements; i++)
			flatten(r->element[i], buf, len, cap);
		return;
	}
	while (*len + r->len + 64 > *cap) {
		*cap = *cap ? 2 * *cap : 4096;
		assert_non_null(*buf = realloc(*buf, *cap));
	}
	if (r->type == REDIS_REPLY_INTEGER)
		*len += (size_t)snprintf(*buf + *len, *cap - *len, "%lld|", r->integer);
	else if (r->str != NULL)
		*len += (size_t)snprintf(*buf + *len, *cap - *len, "%.*s|", (int)r->len, r->str);
	else
		*len += (size_t)snprintf(*buf + *len, *cap - *len, "nil|");
}

/* Every key but the streams' consumer groups as sorted lines "key type ttl? value",
 * hash fields, set and zset members sorted. The caller frees lines and each. */
static size_t
dump(redisContext *rc, char ***lines)
{
	char cursor[32] = "0";
	size_t n = 0, cap = 0;

	*lines = NULL;
	do {
		redisReply *s = redisCommand(rc, "SCAN %s COUNT 1000", cursor);
		size_t i;

		assert_true(s != NULL && s->type == REDIS_REPLY_ARRAY);
		snprintf(cursor, sizeof(cursor), "%s", s->element[0]->str);
		for (i = 0; i < s->element[1]->elements; i++) {
			const char *k = s->element[1]->element[i]->str;
			redisReply *t, *ttl, *v = NULL;
			char *buf = NULL, **parts = NULL;
			size_t len = 0, bcap = 0, j;

			/* The job stream's waiting jobs move with new ids and its acked
			 * ones are dropped: job_lines() compares what it holds. */
			if (strcmp(k, "pushes") == 0)
				continue;
			t = redisCommand(rc, "TYPE %s", k);
			ttl = redisCommand(rc, "PTTL %s", k);

			if (strcmp(t->str, "hash") == 0)
				v = redisCommand(rc, "HGETALL %s", k);
			else if (strcmp(t->str, "zset") == 0)
				v = redisCommand(rc, "ZRANGE %s 0 -1 WITHSCORES", k);
			else if (strcmp(t->str, "set") == 0)
				v = redisCommand(rc, "SMEMBERS %s", k);
			else if (strcmp(t->str, "list") == 0)
				v = redisCommand(rc, "LRANGE %s 0 -1", k);
			else if (strcmp(t->str, "stream") == 0)
				v = redisCommand(rc, "XRANGE %s - +", k);
			else
				v = redisCommand(rc, "GET %s", k);
			assert_non_null(v);
			/* Hash pairs and set or zset members in a fixed order; so are an A/B
			 * test's queued members: each shard keeps its own in order, and the
			 * way back appends the shards' queues one after the other
			 * (docs/sharding.md 4h). */
			if (v->type == REDIS_REPLY_ARRAY && strcmp(t->str, "stream") != 0 &&
			    (strcmp(t->str, "list") != 0 || strncmp(k, "abq:", 4) == 0)) {
				size_t step = strcmp(t->str, "set") == 0 ||
				    strcmp(t->str, "list") == 0 ? 1 : 2, m = v->elements / step;

				assert_non_null(parts = calloc(m + 1, sizeof(*parts)));
				for (j = 0; j < m; j++) {
					size_t pl = 0, pc = 0;
					char *p = NULL;

					flatten(v->element[j * step], &p, &pl, &pc);
					if (step == 2)
						flatten(v->element[j * step + 1], &p, &pl, &pc);
					parts[j] = p;
				}
				qsort(parts, m, sizeof(*parts), str_cmp);
				for (j = 0; j < m; j++) {
					size_t pl = strlen(parts[j]);

					while (len + pl + 2 > bcap) {
						bcap = bcap ? 2 * bcap : 4096;
						assert_non_null(buf = realloc(buf, bcap));
					}
					memcpy(buf + len, parts[j], pl + 1);
					len += pl;
					free(parts[j]);
				}
				free(parts);
			} else {
				flatten(v, &buf, &len, &bcap);
			}
			if (n == cap) {
				cap = cap ? 2 * cap : 256;
				assert_non_null(*lines = realloc(*lines, cap * sizeof(**lines)));
			}
			{
				size_t ll = strlen(k) + strlen(t->str) + len + 32;

				assert_non_null((*lines)[n] = malloc(ll));
				snprintf((*lines)[n++], ll, "%s %s %s %.*s", k, t->str,
				    ttl->integer > 0 ? "ttl" : "-", (int)len, buf ? buf : "");
			}
			free(buf);
			freeReplyObject(v);
			freeReplyObject(t);
			freeReplyObject(ttl);
		}
		freeReplyObject(s);
	} while (strcmp(cursor, "0") != 0);
	qsort(*lines, n, sizeof(**lines), str_cmp);
	return n;
}

static void
dump_free(char **lines, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

static void
dumps_equal(char **a, size_t na, char **b, size_t nb)
{
	size_t i;

	for (i = 0; i < na && i < nb; i++)
		if (strcmp(a[i], b[i]) != 0)
			fail_msg("dump line %zu differs:\n before: %.300s\n after:  %.300s", i,
			    a[i], b[i]);
	if (na != nb)
		fail_msg("dump: %zu keys before, %zu after (first extra: %.200s)", na, nb,
		    na > nb ? a[nb] : b[na]);
}

/* ---- the tests ---- */

/* The layout of 4 shards, as dealpushctl stores it, in force in this process. */
/* Something in each global key the sharded layout renames that a stopped notifier
 * leaves alone (not the tokens or the rules' version: a notifier reloads on them). */
static void
seed_globals(struct fx *f)
{
	static const char *const cmds[] = {
		"XADD deals:dead * reason bad_json field deal error x entry 1-1 deal {",
		"HSET deals:tries 1-1 2",
		"HSET deals:confirmed 1-2 1-3",
		"XADD conversions:dead * reason unknown_code field code error x entry 1-4",
		"XADD audit * what rule.put who ana",
		"HSET tokens:used ana 1796469174000",
		"SET session:5e55 {} EX 3600",
		"SET inbound:seen:SM9 1 EX 3600",
		/* an A/B test's held rest: each value names the shard of its job */
		"HSET abrest:ab-m s-1:sms 0\036line-a\036line-b s-2:sms - s-3:sms 0\036x",
		"RPUSH abq:ab-m:r s-1:sms s-3:sms",
	};
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		redisReply *r = redisCommand(f->rc, cmds[i]);

		assert_true(r != NULL && r->type != REDIS_REPLY_ERROR);
		freeReplyObject(r);
	}
}

/* ---- the jobs waiting on the job streams ---- */

/* Adds a job that group "deliver" has not read yet: a copy of the first job on
 * "pushes" (the deal m1's, whose pushes are final: admit skips them, so a moved job
 * texts no one again). Its recipient lines, sorted, into *lines. */
static size_t
job_waiting(struct fx *f, char ***lines)
{
	redisReply *r = redisCommand(f->rc, "XRANGE pushes - + COUNT 1"), *fv, *a;
	const char **argv;
	size_t i, n = 0, argc = 0;

	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	fv = r->element[0]->element[1];
	assert_non_null(argv = calloc(3 + fv->elements, sizeof(*argv)));
	assert_non_null(*lines = calloc(fv->elements, sizeof(**lines)));
	argv[argc++] = "XADD";
	argv[argc++] = "pushes";
	argv[argc++] = "*";
	for (i = 0; i + 1 < fv->elements; i += 2) {
		argv[argc++] = fv->element[i]->str;
		argv[argc++] = fv->element[i + 1]->str;
		if (strcmp(fv->element[i]->str, "r") == 0)
			assert_non_null((*lines)[n++] = strdup(fv->element[i + 1]->str));
	}
	assert_true(n >= 2);
	a = redisCommandArgv(f->rc, (int)argc, argv, NULL);
	assert_true(a != NULL && a->type == REDIS_REPLY_STRING);
	freeReplyObject(a);
	free(argv);
	freeReplyObject(r);
	qsort(*lines, n, sizeof(**lines), str_cmp);
	return n;
}

/* The recipient lines of every job on every shard's job stream (the layout in
 * force), sorted; each line's subscriber must be of its stream's shard. */
static size_t
job_lines(struct fx *f, char ***lines)
{
	char key[KEYS_SHARD_MAX], sub[64];
	size_t n = 0, cap = 0, i, j;
	uint32_t k;

	*lines = NULL;
	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;

		keys_shard_key(k, KEYS_PUSHES, key, sizeof(key));
		r = redisCommand(f->rc, "XRANGE %s - +", key);
		assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
		for (i = 0; i < r->elements; i++) {
			const redisReply *fv = r->element[i]->element[1];

			for (j = 0; j + 1 < fv->elements; j += 2) {
				const char *v = fv->element[j + 1]->str, *t = strchr(v, '\t');

				if (strcmp(fv->element[j]->str, "r") != 0)
					continue;
				assert_non_null(t);
				snprintf(sub, sizeof(sub), "%.*s", (int)strcspn(t + 1, "\t"), t + 1);
				assert_int_equal(keys_shard_of(sub), k);
				if (n == cap) {
					cap = cap ? 2 * cap : 64;
					assert_non_null(*lines = realloc(*lines, cap * sizeof(**lines)));
				}
				assert_non_null((*lines)[n++] = strdup(v));
			}
		}
		freeReplyObject(r);
	}
	qsort(*lines, n, sizeof(**lines), str_cmp);
	return n;
}

/* The waiting jobs hold exactly the lines want (nw of them). */
static void
job_lines_are(struct fx *f, char **want, size_t nw)
{
	char **got;
	size_t ng = job_lines(f, &got), i;

	assert_int_equal(ng, nw);
	for (i = 0; i < ng; i++) {
		assert_string_equal(got[i], want[i]);
		free(got[i]);
	}
	free(got);
}

static void
use_layout(int sharded)
{
	struct err err;
	struct shard_layout *l;

	layout_clear();
	if (!sharded)
		return;
	assert_non_null(l = shard_layout_new(4, &err));
	layout_set(l);
}

/* The last-delivered-id of group on deals into buf ("" when there is no such
 * group). */
static void
group_last(redisContext *rc, const char *group, char *buf, size_t size)
{
	redisReply *r = redisCommand(rc, "XINFO GROUPS deals");
	size_t g, k;

	buf[0] = '\0';
	for (g = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
		const redisReply *e = r->element[g];
		const char *name = NULL, *last = NULL;

		for (k = 0; k + 1 < e->elements; k += 2) {
			if (e->element[k + 1]->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(e->element[k]->str, "name") == 0)
				name = e->element[k + 1]->str;
			else if (strcmp(e->element[k]->str, "last-delivered-id") == 0)
				last = e->element[k + 1]->str;
		}
		if (name != NULL && last != NULL && strcmp(name, group) == 0)
			snprintf(buf, size, "%s", last);
	}
	freeReplyObject(r);
}

static void
migrate_there_and_back_keeps_everything(void **state)
{
	struct fx *f = *state;
	char *v1[NVIEWS], *v2[NVIEWS], *v3[NVIEWS], **a, **b, phone[32], key[KEYS_MAX];
	char **wait, deals_last[64], deals_start[64];
	size_t na, nb, nw;
	cJSON *reqs;
	struct until sent2 = { f, "m2", "delivered", SUBS - 1 };
	int i;

	populate(f);
	views(f, v1);
	/* Refused while a notifier runs: nothing is written. */
	assert_int_equal(migrate(f, NULL, "--to-shards", "4"), 1);
	assert_int_equal(it_int(f->rc, "EXISTS dealpush:layout dealpush:migrate"), 0);
	stop(f);
	/* An entry read and never acked (its reader gone): refused until it is done,
	 * since a plan cut short cannot be split or merged without planning someone
	 * twice or never. */
	{
		redisReply *r = redisCommand(f->rc, "XADD deals * deal %s",
		    "{\"id\": \"zz\", \"cancel\": true}");

		assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
		snprintf(deals_start, sizeof(deals_start), "%s", r->str);
		freeReplyObject(r);
		freeReplyObject(redisCommand(f->rc, "XREADGROUP GROUP notifier it-gone COUNT 1 "
		    "STREAMS deals >"));
		assert_int_equal(it_deals_pending(f->rc), 1);
	}
	it_sleep_ms(IDLE_MS);
	assert_int_equal(migrate(f, NULL, "--to-shards", "4"), 1);
	assert_int_equal(it_int(f->rc, "EXISTS dealpush:layout dealpush:migrate"), 0);
	assert_int_equal(it_int(f->rc, "XACK deals notifier %s", deals_start), 1);
	/* A job not read yet: it moves split by shard, there and back, and texts no one
	 * again (its pushes are final). */
	nw = job_waiting(f, &wait);
	/* The global keys the sharded layout renames beside their partners (keys.h,
	 * ORDER KEYS_GLOBAL), each with something in it; a session with its TTL. */
	seed_globals(f);
	na = dump(f->rc, &a);
	assert_true(na > 20);
	group_last(f->rc, "notifier", deals_last, sizeof(deals_last));
	assert_string_equal(deals_last, deals_start);

	/* Killed half-way there: every notifier and dealpushctl command refuses the
	 * Redis (exit 78), the other direction is refused, and a run again finishes. */
	assert_int_equal(migrate(f, "migrate.kill@10", "--to-shards", "4"), 137);
	assert_int_equal(it_int(f->rc, "EXISTS dealpush:migrate"), 1);
	{
		struct it_notifier nt;
		char extra[128];
		int status;

		memset(&nt, 0, sizeof(nt));
		snprintf(extra, sizeof(extra), "[redis]\nshards = 4\n");
		assert_int_equal(it_notifier_start(&nt, f->port, f->gw.port, "it-migrate-early",
		    extra), 0);
		status = it_stop(&nt.proc, 0, WAIT_MS);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 78);
		assert_true(it_log_line(nt.proc.log, "event=layout_mismatch field=version") >
		    0);
	}
	assert_int_equal(migrate(f, NULL, "--to-single", NULL), 1);
	assert_int_equal(migrate(f, NULL, "--to-shards", "4"), 0);
	use_layout(1);
	assert_int_equal(it_int(f->rc, "EXISTS subscribers push:m1 report:deal:m1 stats "
	    "pushes:log consent:sms dealpush:migrate pushes"), 0);
	job_lines_are(f, wait, nw);
	assert_int_equal(it_int(f->rc, "EXISTS deals:dead deals:tries deals:confirmed "
	    "conversions:dead audit tokens:used session:5e55 inbound:seen:SM9"), 0);
	assert_int_equal(it_int(f->rc, "EXISTS {deals}:dead {deals}:tries {deals}:confirmed "
	    "{conversions}:dead {rules}:audit {rules}:tokens:used {rules}:session:5e55 "
	    "{replies}:seen:SM9"), 8);
	assert_true(it_int(f->rc, "PTTL {rules}:session:5e55") > 0);
	/* The held rest is in its recipients' shards (docs/sharding.md 4h), each value
	 * naming that shard, and each shard's queue holds its own, in order. */
	{
		char want[64], k1[KEYS_MAX], k3[KEYS_MAX];
		redisReply *h;

		keys_ab_held(keys_shard_of("s-1"), KEYS_AB_REST, "ab-m", "", k1, sizeof(k1));
		keys_ab_held(keys_shard_of("s-3"), KEYS_AB_REST, "ab-m", "", k3, sizeof(k3));
		snprintf(want, sizeof(want), "%u\036line-a\036line-b", keys_shard_of("s-1"));
		h = redisCommand(f->rc, "HGET %s s-1:sms", k1);
		assert_true(h != NULL && h->type == REDIS_REPLY_STRING);
		assert_string_equal(h->str, want);
		freeReplyObject(h);
		snprintf(want, sizeof(want), "%u\036x", keys_shard_of("s-3"));
		h = redisCommand(f->rc, "HGET %s s-3:sms", k3);
		assert_true(h != NULL && h->type == REDIS_REPLY_STRING);
		assert_string_equal(h->str, want);
		freeReplyObject(h);
		assert_true(keys_shard_of("s-1") != 0 || keys_shard_of("s-3") != 0);
		assert_int_equal(it_int(f->rc, "EXISTS abrest:ab-m abq:ab-m:r"), 0);
		keys_ab_held(keys_shard_of("s-1"), KEYS_AB_QUEUE, "ab-m", "r", k1, sizeof(k1));
		keys_ab_held(keys_shard_of("s-3"), KEYS_AB_QUEUE, "ab-m", "r", k3, sizeof(k3));
		h = redisCommand(f->rc, "LINDEX %s 0", k1);
		assert_true(h != NULL && h->type == REDIS_REPLY_STRING);
		assert_string_equal(h->str, "s-1:sms");
		freeReplyObject(h);
		assert_int_equal(it_int(f->rc, "LLEN %s", k1) + (strcmp(k1, k3) != 0 ?
		    it_int(f->rc, "LLEN %s", k3) : 0), 2);
	}
	keys_per(keys_shard_of("s-0"), KEYS_PUSH, "m1", key, sizeof(key));
	assert_int_equal(it_int(f->rc, "HEXISTS %s s-0:sms", key), 1);
	/* The codes pushes took from the pool before: their shard has a record of the
	 * (deal, pool), so one given back is walked back to the pool, and the pool's
	 * out names the shard, for a conversion by code (sharding 4c "As built"). */
	{
		char want[64], st[KEYS_MAX];
		uint32_t k1 = keys_shard_of("s-1");
		redisReply *c, *o;

		keys_per(k1, KEYS_CODE, "m1", key, sizeof(key));
		c = redisCommand(f->rc, "HGET %s s-1:sms", key);
		assert_true(c != NULL && c->type == REDIS_REPLY_STRING);
		o = redisCommand(f->rc, "HGET {codes:m1}:out %s", c->str);
		snprintf(want, sizeof(want), "m1\t%u\t0", (unsigned)k1);
		assert_true(o != NULL && o->type == REDIS_REPLY_STRING);
		assert_string_equal(o->str, want);
		freeReplyObject(o);
		freeReplyObject(c);
		keys_codestate(k1, st, sizeof(st));
		assert_int_equal(it_int(f->rc, "HEXISTS %s m1\tcodes:m1", st), 1);
	}
	/* Each shard plans on its own (4a): the deal's marker in every shard's copy,
	 * its counters in shard 0's only (the views sum them), and deals read in a
	 * group per shard from where "notifier" stood. */
	for (i = 0; i < 4; i++) {
		char last[64];

		keys_per((uint32_t)i, KEYS_DEAL, "m1", key, sizeof(key));
		assert_int_equal(it_int(f->rc, "HEXISTS %s planned", key), 1);
		assert_int_equal(it_int(f->rc, "HEXISTS %s recipients", key), i == 0);
		snprintf(key, sizeof(key), "s%d", i);
		group_last(f->rc, key, last, sizeof(last));
		assert_string_equal(last, deals_start);
	}
	group_last(f->rc, "notifier", key, sizeof(key));
	assert_string_equal(key, "");
	/* A number's keys are on the number's slot (docs/sharding.md 4f): s-5's STOP
	 * on the suppression list there, its MessageSid known there. */
	{
		char stopped[32], k[KEYS_MAX];

		snprintf(stopped, sizeof(stopped), "+1512555%04d", PHONE0 + STOPPED);
		assert_int_equal(it_int(f->rc, "EXISTS suppressed:sms"), 0);
		keys_phone(stopped, KEYS_PH_SUPPRESSED, k, sizeof(k));
		assert_int_equal(it_int(f->rc, "HEXISTS %s %s", k, stopped), 1);
		keys_phone(stopped, KEYS_PH_SIDS, k, sizeof(k));
		assert_int_equal(it_int(f->rc, "HEXISTS %s %s", k, STOP_SID), 1);
	}
	/* The deal a reply answers ("<sub>\t<channel>" of the behaviour hash) went with
	 * its subscriber, not to the shard of the field's whole name. */
	for (i = 0; i < SUBS; i++) {
		char sub[16], field[32];

		snprintf(sub, sizeof(sub), "s-%d", i);
		snprintf(field, sizeof(field), "%s\tsms", sub);
		keys_shard_key(keys_shard_of(sub), KEYS_BEHAVIOUR, key, sizeof(key));
		assert_int_equal(it_int(f->rc, "HEXISTS %s %s", key, field), 1);
	}

	/* Killed half-way back, then finished: exactly the keys and values of before. */
	assert_int_equal(migrate(f, "migrate.kill@25", "--to-single", NULL), 137);
	assert_int_equal(migrate(f, NULL, "--to-single", NULL), 0);
	use_layout(0);
	nb = dump(f->rc, &b);
	dumps_equal(a, na, b, nb);
	dump_free(b, nb);
	group_last(f->rc, "notifier", key, sizeof(key));
	assert_string_equal(key, deals_start);
	group_last(f->rc, "s0", key, sizeof(key));
	assert_string_equal(key, "");
	job_lines_are(f, wait, nw);

	/* Sharded for real: a notifier sees everything as before, texts a new deal to
	 * each consenting subscriber once and repeats no push of the first deal. */
	assert_int_equal(migrate(f, NULL, "--to-shards", "4"), 0);
	use_layout(1);
	job_lines_are(f, wait, nw);
	for (i = 0; i < (int)nw; i++)
		free(wait[i]);
	free(wait);
	start(f, 1);
	views(f, v2);
	views_equal(v1, v2, NVIEWS);
	publish(f, "m2");
	assert_true(it_wait(reached, &sent2, WAIT_MS));
	it_sleep_ms(500);
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < SUBS; i++) {
		snprintf(phone, sizeof(phone), "+1512555%04d", PHONE0 + i);
		/* m1 once, m2 once; s-5 said STOP after m1 (and got the confirmation). */
		assert_int_equal(texts_to(reqs, phone, "Deal m1"), 1);
		assert_int_equal(texts_to(reqs, phone, "Deal m2"), i == STOPPED ? 0 : 1);
		assert_int_equal(it_gwsim_accepted_to(reqs, phone), 2);
	}
	cJSON_Delete(reqs);
	assert_int_equal(it_outcomes(f->rc, "sent"), 2 * SUBS - 1);
	assert_int_equal(report_member(f, "m1", "sent"), SUBS);
	/* Twilio's retry of s-5's STOP, from before the migration: known as applied,
	 * no second confirmation text. */
	snprintf(phone, sizeof(phone), "+1512555%04d", PHONE0 + STOPPED);
	assert_int_equal(sms_in(f, STOP_SID, phone, "STOP"), 200);
	assert_true(it_log_line(f->nt.proc.log, "kind=opt_out found=0 changed=0 confirm=0 "
	    "duplicate=1") > 0);
	views_free(v2);
	views(f, v2);
	assert_int_equal(migrate(f, NULL, "--to-single", NULL), 1);   /* running */
	stop(f);
	it_sleep_ms(IDLE_MS);

	/* And back on one Redis: the same views, the new deal's included. */
	assert_int_equal(migrate(f, NULL, "--to-single", NULL), 0);
	use_layout(0);
	assert_int_equal(it_int(f->rc, "EXISTS dealpush:layout dealpush:migrate"), 0);
	start(f, 0);
	views(f, v3);
	views_equal(v2, v3, NVIEWS);
	assert_int_equal(it_outcomes(f->rc, "sent"), 2 * SUBS - 1);
	views_free(v1);
	views_free(v2);
	views_free(v3);
	dump_free(a, na);
}

/* A Redis that never had a deal (no stream deals, no reader group) migrates there
 * and back. */
static void
a_redis_without_deals_migrates_both_ways(void **state)
{
	struct fx *f = *state;

	it_import_audience(f->port, 3, PHONE0, "laptop");
	assert_int_equal(it_int(f->rc, "EXISTS deals"), 0);
	assert_int_equal(migrate(f, NULL, "--to-shards", "4"), 0);
	assert_int_equal(it_int(f->rc, "EXISTS deals subscribers"), 0);
	assert_int_equal(migrate(f, NULL, "--to-single", NULL), 0);
	assert_int_equal(it_int(f->rc, "HLEN subscribers"), 3);
	assert_int_equal(it_int(f->rc, "EXISTS deals dealpush:layout"), 0);
}

/* 1 once the notifier's log says it is ready. */
static int
notifier_ready(void *arg)
{
	return it_log_line(arg, "event=ready") > 0;
}

/* A sharded layout from the release before each shard had its group on deals:
 * deals read in group "notifier", a deal planned into one global deal:<id>. A
 * notifier refuses it (exit 78, field=groups) rather than start shard groups at the
 * stream's beginning and plan the deal again; the same dealpushctl migrate
 * --to-shards 4 moves the group and copies the deal into every shard, after which
 * the notifier starts and plans nothing again. */
static void
a_sharded_layout_from_before_the_shard_groups_is_moved_not_replayed(void **state)
{
	struct fx *f = *state;
	char bin[512], addr[64], out[1024], entry[64], key[KEYS_MAX], last[64];
	const char *argv[] = { bin, "--redis", addr, "layout", "create", "--shards", "4",
		NULL };
	redisReply *r;
	int status, k;

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	r = redisCommand(f->rc, "XADD deals * deal %s", it_deal("old1", "laptop", 3600));
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	snprintf(entry, sizeof(entry), "%s", r->str);
	freeReplyObject(r);
	/* Read and planned by the old release: the group past it, the marker global. */
	r = redisCommand(f->rc, "XGROUP CREATE deals notifier $");
	assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	freeReplyObject(redisCommand(f->rc, "HSET deal:old1 planned %s planning %s entry %s "
	    "url https://shop.example/o recipients 3 jobs 1", entry, entry, entry));
	freeReplyObject(redisCommand(f->rc, "EXPIRE deal:old1 86400"));
	freeReplyObject(redisCommand(f->rc, "SET dealentry:%s old1 EX 86400", entry));

	assert_int_equal(it_notifier_start(&f->nt, f->port, 1, "it-old-groups",
	    "[redis]\nshards = 4\n"), 0);
	status = it_stop(&f->nt.proc, 0, WAIT_MS);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 78);
	assert_true(it_log_line(f->nt.proc.log, "event=layout_mismatch field=groups") > 0);
	memset(&f->nt, 0, sizeof(f->nt));
	group_last(f->rc, "s0", last, sizeof(last));
	assert_string_equal(last, "");

	/* Killed between the new groups and the old one's end: run again, finished. */
	assert_int_equal(migrate(f, "migrate.groups.kill@1", "--to-shards", "4"), 137);
	group_last(f->rc, "notifier", last, sizeof(last));
	assert_string_equal(last, entry);
	group_last(f->rc, "s0", last, sizeof(last));
	assert_string_equal(last, entry);
	assert_int_equal(migrate(f, NULL, "--to-shards", "4"), 0);
	use_layout(1);
	group_last(f->rc, "notifier", last, sizeof(last));
	assert_string_equal(last, "");
	for (k = 0; k < 4; k++) {
		snprintf(key, sizeof(key), "s%d", k);
		group_last(f->rc, key, last, sizeof(last));
		assert_string_equal(last, entry);
		keys_per((uint32_t)k, KEYS_DEAL, "old1", key, sizeof(key));
		assert_int_equal(it_int(f->rc, "HEXISTS %s planned", key), 1);
		assert_int_equal(it_int(f->rc, "HEXISTS %s recipients", key), k == 0);
		keys_per((uint32_t)k, KEYS_DEALENTRY, entry, key, sizeof(key));
		assert_int_equal(it_int(f->rc, "EXISTS %s", key), 1);
	}
	assert_int_equal(it_int(f->rc, "EXISTS deal:old1 dealpush:migrate"), 0);

	assert_int_equal(it_notifier_start(&f->nt, f->port, 1, "it-old-groups",
	    "[redis]\nshards = 4\n"), 0);
	assert_true(it_wait(notifier_ready, f->nt.proc.log, WAIT_MS));
	assert_int_equal(it_log_count(f->nt.proc.log, "event=deal_planned", NULL, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(migrate_there_and_back_keeps_everything, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_sharded_layout_from_before_the_shard_groups_is_moved_not_replayed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(a_redis_without_deals_migrates_both_ways, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
