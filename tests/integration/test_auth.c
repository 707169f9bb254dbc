/*
 * test_auth.c: sign-in, roles and the audit stream on a running notifier (issue 19
 * item 2; docs/api.md "Sign-in and roles"): every registered route answers 401, 403
 * or goes through by the role of the token (a route added without an entry in the
 * table below fails), tokens are stored hashed and a revoke takes effect, on this
 * notifier at once and on another within its poll, the session cookie's attributes,
 * the cross-site checks of a cookie request, sign-out, the audit entries of rule and
 * token changes with before and after, and hostile input with clear errors.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "ithttp.h"
#include "itest.h"
#include "keys.h"

#define TOKEN "auth-test-config-token-0123456789"
#define ORIGIN "https://console.example.com"
#define RULE_A "rule promo\n  audience interested\n  send sms\n" \
    "  template sms \"A {title} {link} Reply STOP to end\"\nend\n"
#define RULE_B "rule promo\n  audience interested\n  send sms\n" \
    "  template sms \"B {title} {link} Reply STOP to end\"\nend\n"

struct fx {
	redisContext *rc;
	struct it_gwsim gw;
	struct it_notifier nt, nt2;
	int port, http, http2;
};

static struct it_resp resp;

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

	if (f->http2 > 0 && it_stop_clean(&f->nt2.proc) != 0)
		rv = -1;
	it_stop(&f->gw.proc, SIGTERM, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

/* One request on port with the extra header lines hdrs (may be NULL). */
static int
call(int port, const char *method, const char *path, const char *hdrs,
    const char *data)
{
	return it_http(port, method, path, hdrs, data, data ? strlen(data) : 0, &resp);
}

/* One request with bearer token tok (NULL: none). */
static int
as(int port, const char *tok, const char *method, const char *path, const char *data)
{
	char hdr[256] = "";

	if (tok != NULL)
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
	return call(port, method, path, hdr, data);
}

/* Waits until port's notifier has loaded the tokens (a named token's 503 "not
 * loaded yet" is over): GET /v1/tokens answers 200. */
static void
wait_loaded(int port)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (as(port, TOKEN, "GET", "/v1/tokens", NULL) == 200)
			return;
		it_sleep_ms(20);
	}
	fail_msg("tokens never loaded on port %d: %d %s", port, resp.status, resp.body);
}

/* more: further [http] lines. */
static void
start_with(struct fx *f, const char *public_url, const char *more)
{
	char extra[1024];

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	snprintf(extra, sizeof(extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n%s%s%s%s",
	    public_url ? "public_url = " : "", public_url ? public_url : "",
	    public_url ? "\n" : "", more);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-auth", extra);
	assert_true(f->http > 0);
	wait_loaded(f->http);
}

static void
start(struct fx *f, const char *public_url)
{
	start_with(f, public_url, "");
}

/* Creates token name with role over the API; its value into out. */
static void
create(int port, const char *name, const char *role, char *out, size_t size)
{
	char b[256];
	cJSON *j, *t;

	snprintf(b, sizeof(b), "{\"name\":\"%s\",\"role\":\"%s\"}", name, role);
	if (as(port, TOKEN, "POST", "/v1/tokens", b) != 201)
		fail_msg("create %s: %d %s", name, resp.status, resp.body);
	j = cJSON_Parse(resp.body);
	t = cJSON_GetObjectItem(j, "token");
	assert_true(cJSON_IsString(t));
	assert_int_equal(strncmp(t->valuestring, "dp_", 3), 0);
	assert_int_equal(strlen(t->valuestring), 67);
	snprintf(out, size, "%s", t->valuestring);
	cJSON_Delete(j);
}

/* ---- every route by role ---- */

/* What each route needs. A route registered without a line here fails the test:
 * give it its role here when it is added. */
static const struct {
	const char *method, *prefix, *role, *path, *body;
} routes[] = {
	{ "GET", "/healthz", "public", NULL, NULL },
	{ "GET", "/metrics", "public", NULL, NULL },
	{ "POST", "/hooks/twilio/status", "public", NULL, NULL },
	{ "POST", "/hooks/twilio/inbound", "public", NULL, NULL },
	{ "POST", "/hooks/inbound", "public", NULL, NULL },
	{ "POST", "/v1/session", "public", NULL, NULL },
	{ "GET", "/v1/session", "viewer", "/v1/session", NULL },
	{ "DELETE", "/v1/session", "viewer", "/v1/session", NULL },
	{ "GET", "/v1/routes", "viewer", "/v1/routes", NULL },
	{ "GET", "/v1/rules", "viewer", "/v1/rules", NULL },
	{ "PUT", "/v1/rules", "marketer", "/v1/rules/probe", "x" },
	{ "POST", "/v1/rules", "marketer", "/v1/rules/probe", "x" },
	{ "DELETE", "/v1/rules", "marketer", "/v1/rules/probe", NULL },
	{ "GET", "/v1/reports", "viewer", "/v1/reports/rule/probe", NULL },
	{ "GET", "/v1/pause", "viewer", "/v1/pause", NULL },
	{ "POST", "/v1/pause", "marketer", "/v1/pause", "{\"reason\":\"role test\"}" },
	{ "POST", "/v1/resume", "marketer", "/v1/resume", NULL },
	{ "POST", "/v1/deals/simulate", "marketer", "/v1/deals/simulate", "{}" },
	{ "POST", "/v1/deals", "marketer", "/v1/deals/probe/confirm", NULL },
	{ "GET", "/v1/subscribers", "admin", "/v1/subscribers/probe", NULL },
	{ "PUT", "/v1/subscribers", "admin", "/v1/subscribers/probe", "{}" },
	{ "POST", "/v1/subscribers", "admin", "/v1/subscribers", "{}" },
	{ "DELETE", "/v1/subscribers", "admin", "/v1/subscribers/probe", NULL },
	{ "POST", "/v1/bulk/subscribers", "admin", "/v1/bulk/subscribers", "x" },
	{ "GET", "/v1/consent", "admin", "/v1/consent/probe", NULL },
	{ "GET", "/v1/tokens", "admin", "/v1/tokens", NULL },
	{ "POST", "/v1/tokens", "admin", "/v1/tokens", "{}" },
	{ "DELETE", "/v1/tokens", "admin", "/v1/tokens/probe", NULL },
	{ "GET", "/v1/audit", "admin", "/v1/audit", NULL },
	{ "GET", "/v1/codes", "viewer", "/v1/codes/probe", NULL },
	{ "POST", "/v1/codes", "marketer", "/v1/codes/probe", "P-1" },
	{ "GET", "/v1/deals", "viewer", "/v1/deals/probe", NULL },
	{ "GET", "/ui", "public", NULL, NULL },
	{ "GET", "/c", "public", NULL, NULL },   /* long click links */
	{ "GET", "/s", "public", NULL, NULL },   /* short links (http.link_base) */
	{ "POST", "/v1/erase", "admin", "/v1/erase?id=probe", NULL },
	{ "GET", "/v1/export", "admin", "/v1/export?id=probe", NULL },
	{ "GET", "/v1/replies", "viewer", "/v1/replies", NULL },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static int
role_rank(const char *r)
{
	return strcmp(r, "viewer") == 0 ? 1 : strcmp(r, "marketer") == 0 ? 2 :
	    strcmp(r, "admin") == 0 ? 3 : 0;
}

static void
every_route_answers_by_the_role_of_the_token(void **state)
{
	struct fx *f = *state;
	char tok[3][128], role[32];
	const char *names[3] = { "viewer", "marketer", "admin" };
	cJSON *j, *rt, *m;
	size_t i, seen = 0;
	int k, st;

	/* Click links on, with short links on a path of their own: both routes. */
	setenv("DP_TEST_CLICK_SECRET", "0123456789abcdef0123456789abcdef", 1);
	start_with(f, "http://127.0.0.1", "click_secret_env = DP_TEST_CLICK_SECRET\n"
	    "link_base = http://127.0.0.1/s\n");
	for (k = 0; k < 3; k++) {
		char name[32];

		snprintf(name, sizeof(name), "t-%s", names[k]);
		create(f->http, name, names[k], tok[k], sizeof(tok[k]));
	}
	/* The server's table: each (method, prefix) is in ours, with our role. */
	assert_int_equal(as(f->http, tok[0], "GET", "/v1/routes", NULL), 200);
	j = cJSON_Parse(resp.body);
	assert_non_null(j);
	cJSON_ArrayForEach(rt, cJSON_GetObjectItem(j, "routes")) {
		const char *prefix = cJSON_GetObjectItem(rt, "prefix")->valuestring;
		const char *r = cJSON_GetObjectItem(rt, "role")->valuestring;

		cJSON_ArrayForEach(m, cJSON_GetObjectItem(rt, "methods")) {
			for (i = 0; i < NROUTES; i++)
				if (strcmp(routes[i].method, m->valuestring) == 0 &&
				    strcmp(routes[i].prefix, prefix) == 0)
					break;
			if (i == NROUTES)
				fail_msg("route %s %s (role %s) has no line in this test's table",
				    m->valuestring, prefix, r);
			if (strcmp(routes[i].role, r) != 0)
				fail_msg("route %s %s needs %s, the table says %s", m->valuestring,
				    prefix, r, routes[i].role);
			seen++;
		}
	}
	cJSON_Delete(j);
	assert_int_equal(seen, NROUTES);
	/* Each route with no token, and with each role's. */
	for (i = 0; i < NROUTES; i++) {
		int need = role_rank(routes[i].role);

		if (need == 0)
			continue;
		st = as(f->http, NULL, routes[i].method, routes[i].path, routes[i].body);
		if (st != 401)
			fail_msg("%s %s without a token: %d", routes[i].method, routes[i].path, st);
		for (k = 0; k < 3; k++) {
			st = as(f->http, tok[k], routes[i].method, routes[i].path, routes[i].body);
			if (k + 1 < need) {
				if (st != 403)
					fail_msg("%s %s as %s: %d, not 403", routes[i].method,
					    routes[i].path, names[k], st);
				j = cJSON_Parse(resp.body);
				assert_non_null(j);
				assert_string_equal(cJSON_GetObjectItem(j, "role_needed")->valuestring,
				    routes[i].role);
				cJSON_Delete(j);
			} else if (st == 401 || st == 403 || st >= 500 || st < 200) {
				fail_msg("%s %s as %s: %d %s", routes[i].method, routes[i].path,
				    names[k], st, resp.body);
			}
		}
	}
	/* A path under /v1/ with no route is 401 before it is 404. */
	assert_int_equal(as(f->http, NULL, "GET", "/v1/nothing", NULL), 401);
	assert_int_equal(as(f->http, tok[0], "GET", "/v1/nothing", NULL), 404);
	/* The config token is the admin "config". */
	assert_int_equal(as(f->http, TOKEN, "GET", "/v1/session", NULL), 200);
	assert_non_null(strstr(resp.body, "\"name\":\"config\""));
	assert_non_null(strstr(resp.body, "\"role\":\"admin\""));
	(void)role;
}

/* ---- tokens ---- */

/* 1 when some value of some key in Redis contains s. */
static int
redis_holds(redisContext *rc, const char *s)
{
	redisReply *keys = redisCommand(rc, "KEYS *"), *v, *t;
	size_t i, k;
	int found = 0;

	assert_non_null(keys);
	for (i = 0; i < keys->elements && !found; i++) {
		const char *key = keys->element[i]->str;

		if (strstr(key, s) != NULL)
			found = 1;
		t = redisCommand(rc, "TYPE %s", key);
		if (strcmp(t->str, "string") == 0)
			v = redisCommand(rc, "GET %s", key);
		else if (strcmp(t->str, "hash") == 0)
			v = redisCommand(rc, "HGETALL %s", key);
		else if (strcmp(t->str, "stream") == 0)
			v = redisCommand(rc, "XRANGE %s - +", key);
		else if (strcmp(t->str, "list") == 0)
			v = redisCommand(rc, "LRANGE %s 0 -1", key);
		else if (strcmp(t->str, "set") == 0)
			v = redisCommand(rc, "SMEMBERS %s", key);
		else
			v = redisCommand(rc, "ZRANGE %s 0 -1", key);
		freeReplyObject(t);
		if (v->type == REDIS_REPLY_STRING && strstr(v->str, s) != NULL)
			found = 1;
		for (k = 0; k < v->elements; k++) {
			redisReply *e = v->element[k];

			if (e->type == REDIS_REPLY_STRING && strstr(e->str, s) != NULL)
				found = 1;
			if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
			    e->element[1]->type == REDIS_REPLY_ARRAY) {
				size_t q;

				for (q = 0; q < e->element[1]->elements; q++)
					if (strstr(e->element[1]->element[q]->str, s) != NULL)
						found = 1;
			}
		}
		freeReplyObject(v);
	}
	freeReplyObject(keys);
	return found;
}

static void
tokens_are_stored_hashed_and_a_revoke_takes_effect_everywhere(void **state)
{
	struct fx *f = *state;
	char tok[128], extra[256];
	int i;

	start(f, NULL);
	create(f->http, "ana", "viewer", tok, sizeof(tok));
	assert_int_equal(as(f->http, tok, "GET", "/v1/rules", NULL), 200);
	/* Neither the token nor its random part is anywhere in Redis. */
	assert_false(redis_holds(f->rc, tok + 3));
	assert_false(redis_holds(f->rc, TOKEN));
	assert_int_equal(it_int(f->rc, "HEXISTS tokens ana"), 1);
	/* Its use is recorded; the list shows it, never a hash or the token. */
	assert_int_equal(it_int(f->rc, "HEXISTS %s ana", keys_global(KEYS_G_TOKENS_USED)), 1);
	assert_int_equal(as(f->http, TOKEN, "GET", "/v1/tokens", NULL), 200);
	assert_non_null(strstr(resp.body, "\"name\":\"ana\""));
	assert_non_null(strstr(resp.body, "\"role\":\"viewer\""));
	assert_non_null(strstr(resp.body, "\"last_used_ms\":1"));
	assert_null(strstr(resp.body, "sha256"));
	assert_null(strstr(resp.body, tok + 3));

	/* A second notifier on the same Redis knows it from its load. */
	snprintf(extra, sizeof(extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	f->http2 = it_notifier_start_http(&f->nt2, f->port, f->gw.port, "it-auth2", extra);
	assert_true(f->http2 > 0);
	wait_loaded(f->http2);
	assert_int_equal(as(f->http2, tok, "GET", "/v1/rules", NULL), 200);

	/* Revoked on the first: refused there at once, on the second after its poll. */
	assert_int_equal(as(f->http, TOKEN, "DELETE", "/v1/tokens/ana", NULL), 200);
	assert_int_equal(as(f->http, tok, "GET", "/v1/rules", NULL), 401);
	for (i = 0; i < 500; i++) {
		if (as(f->http2, tok, "GET", "/v1/rules", NULL) == 401)
			break;
		it_sleep_ms(20);
	}
	assert_int_equal(resp.status, 401);
	assert_int_equal(it_int(f->rc, "HEXISTS tokens ana"), 0);
	assert_int_equal(as(f->http, TOKEN, "DELETE", "/v1/tokens/ana", NULL), 404);
}

static void
hostile_token_input_gets_clear_errors(void **state)
{
	struct fx *f = *state;
	char big[512], b[1024], tok[128];

	start(f, NULL);
	memset(big, 'a', 100);
	big[100] = '\0';
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens", "{\"name\":"), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"body\""));
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens", "[1]"), 400);
	snprintf(b, sizeof(b), "{\"name\":\"%s\",\"role\":\"viewer\"}", big);
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens", b), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"name\""));
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens",
	    "{\"name\":\"a\\u0007b\",\"role\":\"viewer\"}"), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"name\""));
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens",
	    "{\"name\":\"config\",\"role\":\"viewer\"}"), 400);
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens",
	    "{\"name\":\"x\",\"role\":\"root\"}"), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"role\""));
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens",
	    "{\"name\":\"x\",\"role\":\"viewer\",\"token\":\"dp_mine\"}"), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"token\""));
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens",
	    "{\"name\":\"x\",\"name\":\"y\",\"role\":\"viewer\"}"), 400);
	create(f->http, "x", "viewer", tok, sizeof(tok));
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/tokens",
	    "{\"name\":\"x\",\"role\":\"admin\"}"), 409);
	assert_int_equal(as(f->http, TOKEN, "DELETE", "/v1/tokens/config", NULL), 400);
	assert_int_equal(as(f->http, TOKEN, "DELETE", "/v1/tokens/a%20b", NULL), 400);
	assert_int_equal(it_int(f->rc, "HLEN %s", keys_global(KEYS_G_TOKENS)), 1);
	/* Tokens that look like ours but are not. */
	assert_int_equal(as(f->http, "dp_", "GET", "/v1/rules", NULL), 401);
	snprintf(b, sizeof(b), "%.66sz", tok);
	assert_int_equal(as(f->http, b, "GET", "/v1/rules", NULL), 401);
	/* Signing in: garbage, no token, an unknown one. */
	assert_int_equal(call(f->http, "POST", "/v1/session", NULL, "nope"), 400);
	assert_int_equal(call(f->http, "POST", "/v1/session", NULL, "{}"), 400);
	assert_non_null(strstr(resp.body, "\"field\":\"token\""));
	assert_int_equal(call(f->http, "POST", "/v1/session", NULL,
	    "{\"token\":\"dp_0000\"}"), 401);
	assert_int_equal(it_int(f->rc, "EXISTS audit"), 1);
}

/* ---- sessions ---- */

/* POST /v1/session with tok; the cookie's "dp_session=<id>" into cookie, the CSRF
 * token into csrf, the Set-Cookie line into setc. */
static void
sign_in(int port, const char *tok, const char *hdrs, char *cookie, char *csrf,
    char *setc, size_t size)
{
	char b[256];
	cJSON *j;

	snprintf(b, sizeof(b), "{\"token\":\"%s\"}", tok);
	if (call(port, "POST", "/v1/session", hdrs, b) != 201)
		fail_msg("sign in: %d %s", resp.status, resp.body);
	it_http_header(&resp, "Set-Cookie", setc, size);
	snprintf(cookie, size, "%.*s", (int)strcspn(setc, ";"), setc);
	j = cJSON_Parse(resp.body);
	snprintf(csrf, size, "%s", cJSON_GetObjectItem(j, "csrf_token")->valuestring);
	cJSON_Delete(j);
}

static void
session_cookie_csrf_origin_and_sign_out(void **state)
{
	struct fx *f = *state;
	char tok[128], cookie[256], csrf[256], setc[512], h[1024];

	start(f, ORIGIN);
	create(f->http, "mo", "marketer", tok, sizeof(tok));
	sign_in(f->http, tok, "Origin: " ORIGIN "\r\n", cookie, csrf, setc, sizeof(setc));
	assert_int_equal(strncmp(cookie, "dp_session=", 11), 0);
	assert_non_null(strstr(setc, "; HttpOnly"));
	assert_non_null(strstr(setc, "; SameSite=Strict"));
	assert_non_null(strstr(setc, "; Path=/"));
	assert_non_null(strstr(setc, "; Secure"));
	assert_non_null(strstr(setc, "; Max-Age=28800"));
	assert_non_null(strstr(resp.body, "\"role\":\"marketer\""));
	/* The session is stored by its digest only. */
	assert_false(redis_holds(f->rc, cookie + 11));
	assert_false(redis_holds(f->rc, csrf));

	/* Who is signed in. */
	snprintf(h, sizeof(h), "Cookie: %s\r\n", cookie);
	assert_int_equal(call(f->http, "GET", "/v1/session", h, NULL), 200);
	assert_non_null(strstr(resp.body, "\"name\":\"mo\""));
	assert_non_null(strstr(resp.body, "\"session\":true"));
	/* A change by cookie: no CSRF header, a wrong one, a wrong Origin: 403. */
	assert_int_equal(call(f->http, "PUT", "/v1/rules/promo", h, RULE_A), 403);
	snprintf(h, sizeof(h), "Cookie: %s\r\nX-CSRF-Token: %.10s\r\n", cookie, csrf);
	assert_int_equal(call(f->http, "PUT", "/v1/rules/promo", h, RULE_A), 403);
	snprintf(h, sizeof(h), "Cookie: %s\r\nX-CSRF-Token: %s\r\nOrigin: https://evil.example"
	    "\r\n", cookie, csrf);
	assert_int_equal(call(f->http, "PUT", "/v1/rules/promo", h, RULE_A), 403);
	assert_int_equal(it_int(f->rc, "HLEN rules"), 0);
	/* With both right: done, and recorded as mo's. */
	snprintf(h, sizeof(h), "Cookie: %s\r\nX-CSRF-Token: %s\r\nOrigin: " ORIGIN "\r\n",
	    cookie, csrf);
	assert_int_equal(call(f->http, "PUT", "/v1/rules/promo", h, RULE_A), 201);
	/* The role is the token's: a marketer's session cannot create tokens. */
	assert_int_equal(call(f->http, "POST", "/v1/tokens", h,
	    "{\"name\":\"z\",\"role\":\"admin\"}"), 403);
	/* Sign out: the cookie expires and is refused from now on. */
	assert_int_equal(call(f->http, "DELETE", "/v1/session", h, NULL), 200);
	it_http_header(&resp, "Set-Cookie", setc, sizeof(setc));
	assert_non_null(strstr(setc, "Max-Age=0"));
	assert_int_equal(call(f->http, "GET", "/v1/session", h, NULL), 401);
	assert_int_equal(call(f->http, "PUT", "/v1/rules/promo", h, RULE_B), 401);

	/* A session ends with its token. */
	sign_in(f->http, tok, "Origin: " ORIGIN "\r\n", cookie, csrf, setc, sizeof(setc));
	snprintf(h, sizeof(h), "Cookie: %s\r\n", cookie);
	assert_int_equal(call(f->http, "GET", "/v1/session", h, NULL), 200);
	assert_int_equal(as(f->http, TOKEN, "DELETE", "/v1/tokens/mo", NULL), 200);
	assert_int_equal(call(f->http, "GET", "/v1/session", h, NULL), 401);
	/* A new token under the same name does not bring the old sessions back. */
	create(f->http, "mo", "admin", tok, sizeof(tok));
	assert_int_equal(call(f->http, "GET", "/v1/session", h, NULL), 401);
	/* Sign-in from another site is refused. */
	snprintf(h, sizeof(h), "{\"token\":\"%s\"}", TOKEN);
	assert_int_equal(call(f->http, "POST", "/v1/session",
	    "Origin: https://evil.example\r\n", h), 403);
}

static void
session_cookie_is_not_secure_without_an_https_public_url(void **state)
{
	struct fx *f = *state;
	char cookie[256], csrf[256], setc[512], hdr[128];
	int i;

	start(f, "http://127.0.0.1:9");
	sign_in(f->http, TOKEN, NULL, cookie, csrf, setc, sizeof(setc));
	assert_non_null(strstr(setc, "; HttpOnly"));
	assert_null(strstr(setc, "Secure"));
	/* Every answer carries the security headers. */
	it_http_header(&resp, "Content-Security-Policy", hdr, sizeof(hdr));
	assert_non_null(strstr(hdr, "script-src 'self'"));
	assert_null(strstr(hdr, "unsafe-inline"));
	/* 503 until the mirror has loaded, a moment after the port answers */
	for (i = 0; i < 200 && call(f->http, "GET", "/healthz", NULL, NULL) != 200; i++)
		it_sleep_ms(25);
	assert_int_equal(resp.status, 200);
	it_http_header(&resp, "Content-Security-Policy", hdr, sizeof(hdr));
	assert_non_null(strstr(hdr, "frame-ancestors 'none'"));
	it_http_header(&resp, "Referrer-Policy", hdr, sizeof(hdr));
	assert_string_equal(hdr, "no-referrer");
}

/* ---- audit ---- */

static void
audit_records_rule_and_token_changes_with_before_and_after(void **state)
{
	struct fx *f = *state;
	char tok[128], huge[9000];
	cJSON *j, *e, *b, *a;
	size_t n;

	start(f, NULL);
	assert_int_equal(as(f->http, TOKEN, "PUT", "/v1/rules/promo", RULE_A), 201);
	assert_int_equal(as(f->http, TOKEN, "PUT", "/v1/rules/promo", RULE_B), 200);
	assert_int_equal(as(f->http, TOKEN, "DELETE", "/v1/rules/promo", NULL), 200);
	create(f->http, "v", "viewer", tok, sizeof(tok));
	assert_int_equal(as(f->http, tok, "GET", "/v1/audit", NULL), 403);
	assert_int_equal(as(f->http, TOKEN, "GET", "/v1/audit?limit=10", NULL), 200);
	j = cJSON_Parse(resp.body);
	e = cJSON_GetObjectItem(j, "entries");
	if (cJSON_GetArraySize(e) != 4)
		fail_msg("not 4 entries: %s", resp.body);
	/* Newest first: tokens.create, rules.delete, rules.put (A to B), rules.put. */
	a = cJSON_GetArrayItem(e, 0);
	assert_string_equal(cJSON_GetObjectItem(a, "what")->valuestring, "tokens.create");
	assert_string_equal(cJSON_GetObjectItem(a, "id")->valuestring, "v");
	assert_string_equal(cJSON_GetObjectItem(a, "who")->valuestring, "config");
	assert_string_equal(cJSON_GetObjectItem(a, "role")->valuestring, "admin");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "after"), "role")
	    ->valuestring, "viewer");
	assert_true(cJSON_GetObjectItem(a, "ms")->valuedouble > 1.7e12);
	a = cJSON_GetArrayItem(e, 1);
	assert_string_equal(cJSON_GetObjectItem(a, "what")->valuestring, "rules.delete");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "before"), "text")
	    ->valuestring, RULE_B);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(a, "after")));
	a = cJSON_GetArrayItem(e, 2);
	assert_string_equal(cJSON_GetObjectItem(a, "what")->valuestring, "rules.put");
	assert_string_equal(cJSON_GetObjectItem(a, "id")->valuestring, "promo");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "before"), "text")
	    ->valuestring, RULE_A);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "after"), "text")
	    ->valuestring, RULE_B);
	a = cJSON_GetArrayItem(e, 3);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(a, "before")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "next_before")));
	cJSON_Delete(j);
	/* The token is in no entry. */
	assert_false(redis_holds(f->rc, tok + 3));

	/* Paging: two, then the rest before the second. */
	assert_int_equal(as(f->http, TOKEN, "GET", "/v1/audit?limit=2", NULL), 200);
	j = cJSON_Parse(resp.body);
	b = cJSON_GetObjectItem(j, "next_before");
	assert_true(cJSON_IsString(b));
	snprintf(huge, sizeof(huge), "/v1/audit?limit=10&before=%s", b->valuestring);
	cJSON_Delete(j);
	assert_int_equal(as(f->http, TOKEN, "GET", huge, NULL), 200);
	j = cJSON_Parse(resp.body);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")), 2);
	cJSON_Delete(j);
	assert_int_equal(as(f->http, TOKEN, "GET", "/v1/audit?limit=0", NULL), 400);
	assert_int_equal(as(f->http, TOKEN, "GET", "/v1/audit?limit=x", NULL), 400);
	assert_int_equal(as(f->http, TOKEN, "GET", "/v1/audit?before=zz", NULL), 400);

	/* A value over the bound is cut, with a marker. */
	n = (size_t)snprintf(huge, sizeof(huge), "rule big\n  audience interested\n"
	    "  send sms\n  template sms \"{title} {link} Reply STOP to end\"\nend\n");
	while (n + 40 < sizeof(huge) - 1)
		n += (size_t)snprintf(huge + n, sizeof(huge) - n, "# a comment line éé\n");
	assert_int_equal(as(f->http, TOKEN, "PUT", "/v1/rules/big", huge), 201);
	assert_int_equal(as(f->http, TOKEN, "GET", "/v1/audit?limit=1", NULL), 200);
	j = cJSON_Parse(resp.body);
	assert_non_null(j);
	a = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 0),
	    "after");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "truncated")));
	assert_true(cJSON_GetObjectItem(a, "bytes")->valuedouble > 4096);
	assert_true(strlen(cJSON_GetObjectItem(a, "head")->valuestring) <= 4096);
	cJSON_Delete(j);
}

/* The entry what of the newest audit entries (GET /v1/audit?limit=20), or fails. */
static cJSON *
audit_find(int port, cJSON **all, const char *what)
{
	cJSON *e;

	assert_int_equal(as(port, TOKEN, "GET", "/v1/audit?limit=20", NULL), 200);
	*all = cJSON_Parse(resp.body);
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(*all, "entries"))
		if (strcmp(cJSON_GetObjectItem(e, "what")->valuestring, what) == 0)
			return e;
	fail_msg("no %s entry: %s", what, resp.body);
	return NULL;
}

static void
audit_records_subscriber_deal_and_pause_changes(void **state)
{
	struct fx *f = *state;
	char tok[128];
	cJSON *all, *e;

	start(f, NULL);
	create(f->http, "mo", "marketer", tok, sizeof(tok));
	assert_int_equal(as(f->http, tok, "POST", "/v1/pause", "{\"reason\":\"checking\"}"),
	    200);
	assert_int_equal(as(f->http, tok, "POST", "/v1/resume", NULL), 200);
	assert_int_equal(as(f->http, TOKEN, "POST", "/v1/subscribers",
	    "{\"id\":\"s1\",\"phone\":\"+15125550177\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}"), 201);
	assert_int_equal(as(f->http, TOKEN, "DELETE", "/v1/subscribers/s1", NULL), 200);
	/* A refused change is not recorded. */
	assert_int_equal(as(f->http, TOKEN, "DELETE", "/v1/subscribers/s1", NULL), 404);

	e = audit_find(f->http, &all, "pause");
	assert_string_equal(cJSON_GetObjectItem(e, "who")->valuestring, "mo");
	assert_string_equal(cJSON_GetObjectItem(e, "role")->valuestring, "marketer");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "after"), "reason")
	    ->valuestring, "checking");
	cJSON_Delete(all);
	e = audit_find(f->http, &all, "resume");
	assert_string_equal(cJSON_GetObjectItem(e, "who")->valuestring, "mo");
	cJSON_Delete(all);
	e = audit_find(f->http, &all, "subscribers.create");
	assert_string_equal(cJSON_GetObjectItem(e, "id")->valuestring, "s1");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "after"), "phone")
	    ->valuestring, "...0177");
	cJSON_Delete(all);
	e = audit_find(f->http, &all, "subscribers.delete");
	assert_string_equal(cJSON_GetObjectItem(e, "who")->valuestring, "config");
	cJSON_Delete(all);
	assert_int_equal(it_int(f->rc, "XLEN audit"), 5);
	/* The full number is in no entry (the subscriber is deleted: only the audit
	 * could hold it). */
	assert_false(redis_holds(f->rc, "5125550177"));
}

/* ---- dealpushctl ---- */

static void
dealpushctl_creates_lists_and_revokes_tokens_and_reads_the_audit(void **state)
{
	struct fx *f = *state;
	char bin[512], url[64], out[8192], tok[128];
	const char *create_v[] = { bin, "--api", url, "--token", TOKEN, "tokens", "create",
	    "ana", "--role", "viewer", NULL };
	const char *bad_v[] = { bin, "--api", url, "--token", TOKEN, "tokens", "create",
	    "bob", "--role", "root", NULL };
	const char *list_v[] = { bin, "--api", url, "--token", TOKEN, "tokens", "list", NULL };
	const char *revoke_v[] = { bin, "--api", url, "--token", TOKEN, "tokens", "revoke",
	    "ana", NULL };
	const char *audit_v[] = { bin, "--api", url, "--token", TOKEN, "audit", "--limit",
	    "5", NULL };
	const char *p;

	start(f, NULL);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->http);
	assert_int_equal(it_run(create_v, out, sizeof(out)), 0);
	assert_non_null(p = strstr(out, "dp_"));
	snprintf(tok, sizeof(tok), "%.67s", p);
	assert_non_null(strstr(out, "shown this once"));
	assert_int_equal(as(f->http, tok, "GET", "/v1/rules", NULL), 200);
	assert_int_equal(it_run(bad_v, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "field role"));
	assert_int_equal(it_run(list_v, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "ana"));
	assert_non_null(strstr(out, "viewer"));
	assert_null(strstr(out, tok + 3));
	assert_int_equal(it_run(revoke_v, out, sizeof(out)), 0);
	assert_int_equal(as(f->http, tok, "GET", "/v1/rules", NULL), 401);
	assert_int_equal(it_run(revoke_v, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no token named"));
	assert_int_equal(it_run(audit_v, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "tokens.revoke"));
	assert_non_null(strstr(out, "tokens.create"));
	assert_null(strstr(out, tok + 3));
	/* A revoked token is refused, and said so. */
	create_v[4] = tok;
	assert_int_equal(it_run(create_v, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "401"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_route_answers_by_the_role_of_the_token,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    tokens_are_stored_hashed_and_a_revoke_takes_effect_everywhere, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(hostile_token_input_gets_clear_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(session_cookie_csrf_origin_and_sign_out, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    session_cookie_is_not_secure_without_an_https_public_url, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    audit_records_rule_and_token_changes_with_before_and_after, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    audit_records_subscriber_deal_and_pause_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    dealpushctl_creates_lists_and_revokes_tokens_and_reads_the_audit, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
