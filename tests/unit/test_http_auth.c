/*
 * test_http_auth.c: roles, sessions, the cross-site checks of a session and the
 * security headers of the HTTP server (notifier/http_auth.c, stage: http), with a
 * provider of named tokens and sessions faked here.
 *
 * Each test starts the server on 127.0.0.1 with a kernel-chosen port in its own
 * event_base and drives it with raw-socket clients on the same loop, so that it can send
 * exactly the bytes it means (path tricks, huge bodies, a byte a second). Every wait has
 * a limit that fails the test; everything is freed in the teardown.
 */
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "http.h"
#include "metrics.h"

#include "http_fx.h"

/* --- roles, sessions and cross-site checks (http_auth.c) --- */

#define T_VIEWER "dp_viewer-token"
#define T_MARKETER "dp_marketer-token"
#define SID_GOOD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CSRF "csrf-of-the-session"

static int fake_bearer(void *arg, const char *tok, size_t len, struct http_principal *p)
{
	(void)arg;
	if (len == strlen(T_VIEWER) && memcmp(tok, T_VIEWER, len) == 0) {
		snprintf(p->name, sizeof(p->name), "ana");
		p->role = HTTP_ROLE_VIEWER;
		return 1;
	}
	if (len == strlen(T_MARKETER) && memcmp(tok, T_MARKETER, len) == 0) {
		snprintf(p->name, sizeof(p->name), "mo");
		p->role = HTTP_ROLE_MARKETER;
		return 1;
	}
	return 0;
}

/* A marketer's session SID_GOOD with CSRF as its token; any other id is unknown. */
static void fake_session(void *arg, struct http_req *r, const char *id)
{
	struct http_principal p;

	(void)arg;
	if (strcmp(id, SID_GOOD) != 0) {
		http_auth_resume(r, NULL);
		return;
	}
	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "mo");
	p.role = HTTP_ROLE_MARKETER;
	assert_int_equal(http_sha256(CSRF, strlen(CSRF), p.csrf), 0);
	http_auth_resume(r, &p);
}

static const struct http_auth_ops fake_auth = { fake_bearer, fake_session };

static void a_lower_role_gets_403_naming_the_role_needed(void **state)
{
	struct fx *fx = *state;
	struct client *c;
	cJSON *j;

	start(fx);
	http_set_auth(fx->h, &fake_auth, fx);
	/* A viewer reads, but does not change. */
	assert_int_equal(get(fx, "/v1/ping", "Authorization: Bearer " T_VIEWER "\r\n")->status,
	    200);
	c = request(fx, "POST", "/v1/ping", "Authorization: Bearer " T_VIEWER "\r\n", "x", 1);
	assert_json_error(c, 403, "role");
	j = cJSON_Parse(c->body);
	assert_string_equal(cJSON_GetObjectItem(j, "role_needed")->valuestring, "marketer");
	assert_string_equal(cJSON_GetObjectItem(j, "role")->valuestring, "viewer");
	assert_non_null(strstr(cJSON_GetObjectItem(j, "error")->valuestring, "marketer"));
	cJSON_Delete(j);
	/* A marketer changes, but is no admin. */
	c = request(fx, "POST", "/v1/ping", "Authorization: Bearer " T_MARKETER "\r\n", "x", 1);
	assert_int_equal(c->status, 200);
	c = request(fx, "PUT", "/v1/ping", "Authorization: Bearer " T_MARKETER "\r\n", "x", 1);
	assert_json_error(c, 403, "role");
	/* The config token is the admin. */
	c = request(fx, "PUT", "/v1/ping", "Authorization: Bearer " TOKEN "\r\n", "x", 1);
	assert_int_equal(c->status, 200);
	/* Unknown token: 401, whatever the route. */
	assert_json_error(get(fx, "/v1/ping", "Authorization: Bearer dp_nope\r\n"), 401, NULL);
	assert_json_error(request(fx, "POST", "/secret", "Authorization: Bearer " T_MARKETER
	    "\r\n", "x", 1), 403, "role");
}

static void a_session_change_needs_its_csrf_token_and_our_origin(void **state)
{
	struct fx *fx = *state;
	struct client *c;

	fx->cfg.public_url = "https://console.example.com/app";
	start(fx);
	http_set_auth(fx->h, &fake_auth, fx);
	/* A read needs only the cookie. */
	c = get(fx, "/v1/ping", "Cookie: a=b; " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n");
	assert_int_equal(c->status, 200);
	/* A change without the header, with a wrong one, or from elsewhere: 403. */
	c = request(fx, "POST", "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n",
	    "x", 1);
	assert_json_error(c, 403, HTTP_CSRF_HEADER);
	c = request(fx, "POST", "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n"
	    HTTP_CSRF_HEADER ": wrong\r\n", "x", 1);
	assert_json_error(c, 403, HTTP_CSRF_HEADER);
	c = request(fx, "POST", "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n"
	    HTTP_CSRF_HEADER ": " CSRF "\r\nOrigin: https://evil.example\r\n", "x", 1);
	assert_json_error(c, 403, HTTP_CSRF_HEADER);
	/* With both right: it goes through. */
	c = request(fx, "POST", "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=" SID_GOOD "\r\n"
	    HTTP_CSRF_HEADER ": " CSRF "\r\nOrigin: https://console.example.com\r\n", "x", 1);
	assert_int_equal(c->status, 200);
	/* An unknown or malformed session is no credential. */
	assert_json_error(get(fx, "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "="
	    "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"), 401, NULL);
	assert_json_error(get(fx, "/v1/ping", "Cookie: " HTTP_SESSION_COOKIE "=zz\r\n"), 401,
	    NULL);
	/* A bearer token needs no CSRF token. */
	c = request(fx, "POST", "/v1/ping", "Authorization: Bearer " T_MARKETER "\r\n", "x", 1);
	assert_int_equal(c->status, 200);
}

static void every_answer_carries_the_security_headers(void **state)
{
	struct fx *fx = *state;
	const char *paths[] = { "/healthz", "/v1/ping", "/nothing", "/v1/%00" };
	char v[512];
	struct client *c;
	size_t i;

	start(fx);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		c = get(fx, paths[i], NULL);
		assert_non_null(resp_header(c, "Content-Security-Policy", v, sizeof(v)));
		assert_string_equal(v, HTTP_CSP);
		assert_non_null(strstr(v, "script-src 'self'"));
		assert_null(strstr(v, "unsafe-inline"));
		assert_non_null(resp_header(c, "X-Content-Type-Options", v, sizeof(v)));
		assert_string_equal(v, "nosniff");
		assert_non_null(resp_header(c, "Referrer-Policy", v, sizeof(v)));
		assert_string_equal(v, "no-referrer");
		assert_non_null(resp_header(c, "Cache-Control", v, sizeof(v)));
		assert_string_equal(v, "no-store");
	}
}

static void roles_have_names_and_parse_back(void **state)
{
	(void)state;
	assert_string_equal(http_role_name(HTTP_ROLE_VIEWER), "viewer");
	assert_int_equal(http_role_parse("viewer"), HTTP_ROLE_VIEWER);
	assert_int_equal(http_role_parse("marketer"), HTTP_ROLE_MARKETER);
	assert_int_equal(http_role_parse("admin"), HTTP_ROLE_ADMIN);
	assert_int_equal(http_role_parse("public"), -1);
	assert_int_equal(http_role_parse("Admin"), -1);
	assert_int_equal(http_role_parse(""), -1);
	assert_int_equal(http_role_parse(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_lower_role_gets_403_naming_the_role_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(a_session_change_needs_its_csrf_token_and_our_origin, setup, teardown),
		cmocka_unit_test_setup_teardown(every_answer_carries_the_security_headers, setup, teardown),
		cmocka_unit_test(roles_have_names_and_parse_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
