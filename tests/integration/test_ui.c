/*
 * test_ui.c: the console's files as a browser gets them from a running notifier
 * (issue 19 item 1): /ui redirects to /ui/, the page and its scripts come with their
 * content types, the strict Content-Security-Policy and an ETag that answers 304;
 * nothing outside the embedded table is served, whatever the path; the console
 * needs no credential (its data does: /v1/ still answers 401).
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
#include "ui.h"

static int
setup(void **state)
{
	struct it_one *o;

	if (it_one_setup(state) != 0)
		return -1;
	o = *state;
	assert_int_equal(it_gwsim_start(&o->gw, NULL), 0);
	return 0;
}

static int
http_port(struct it_one *o)
{
	int port;

	setenv("DP_TEST_ADMIN_TOKEN", "ui-admin-token-0123456789abcdef", 1);
	port = it_notifier_start_http(&o->nt, o->port, o->gw.port, "it-ui",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(port > 0);
	return port;
}

static void
the_page_and_its_files_with_their_headers(void **state)
{
	struct it_one *o = *state;
	static struct it_resp r;
	char v[512], etag[64], hdr[128];
	int port = http_port(o);

	assert_int_equal(it_http(port, "GET", "/ui", NULL, NULL, 0, &r), 301);
	assert_string_equal(it_http_header(&r, "Location", v, sizeof(v)), "/ui/");
	assert_int_equal(it_http(port, "GET", "/ui/", NULL, NULL, 0, &r), 200);
	assert_non_null(strstr(it_http_header(&r, "Content-Type", v, sizeof(v)),
	    "text/html"));
	assert_non_null(strstr(r.body, "<script type=\"module\" src=\"app.js\">"));
	it_http_header(&r, "Content-Security-Policy", v, sizeof(v));
	assert_non_null(strstr(v, "script-src 'self'"));
	assert_non_null(strstr(v, "frame-ancestors 'none'"));
	assert_null(strstr(v, "unsafe-inline"));
	assert_string_equal(it_http_header(&r, "X-Content-Type-Options", v, sizeof(v)),
	    "nosniff");
	it_http_header(&r, "ETag", etag, sizeof(etag));
	assert_string_equal(etag, ui_find("index.html")->etag);
	/* the same page, revalidated: 304 and no body */
	snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", etag);
	assert_int_equal(it_http(port, "GET", "/ui/", hdr, NULL, 0, &r), 304);
	assert_string_equal(r.body, "");
	assert_int_equal(it_http(port, "GET", "/ui/index.html",
	    "If-None-Match: \"0000000000000000\"\r\n", NULL, 0, &r), 200);
	assert_int_equal(it_http(port, "GET", "/ui/app.js", NULL, NULL, 0, &r), 200);
	assert_non_null(strstr(it_http_header(&r, "Content-Type", v, sizeof(v)),
	    "text/javascript"));
	assert_int_equal(it_http(port, "GET", "/ui/vendor/chart.min.js", NULL, NULL, 0, &r),
	    200);
	assert_non_null(strstr(r.body, "Chart.js v3.9.1"));
	assert_memory_equal(r.body, ui_find("vendor/chart.min.js")->data, 4096);
	assert_int_equal(it_http(port, "HEAD", "/ui/", NULL, NULL, 0, &r), 200);
	assert_string_equal(r.body, "");
}

static void
nothing_else_is_served(void **state)
{
	static const char *const paths[] = {
		"/ui/nope.js", "/ui/../notifier.conf", "/ui/%2e%2e/%2e%2e/etc/passwd",
		"/ui/vendor/", "/ui/vendor/../app.js", "/ui//app.js", "/ui/APP.JS",
		"/ui/app.js/", "/ui/app.js%00.html", "/uiapp.js",
	};
	struct it_one *o = *state;
	static struct it_resp r;
	size_t i;
	int port = http_port(o), st;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		st = it_http(port, "GET", paths[i], NULL, NULL, 0, &r);
		if (st != 404 && st != 400)
			fail_msg("%s answered %d", paths[i], st);
		assert_null(strstr(r.body, "<script"));
	}
	assert_int_equal(it_http(port, "POST", "/ui/", NULL, "x", 1, &r), 405);
	/* the page is public, its data is not */
	assert_int_equal(it_http(port, "GET", "/v1/rules", NULL, NULL, 0, &r), 401);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(the_page_and_its_files_with_their_headers,
		    setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(nothing_else_is_served, setup,
		    it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
