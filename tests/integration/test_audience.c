/*
 * test_audience.c: what publishers and marketers manage without redis-cli
 * (docs/api.md, docs/admin.md): code pools filled and counted over the API and with
 * dealpushctl (bad lines named, duplicates counted, a malformed body adds nothing,
 * remaining codes in the deal's report); hostile pool names.
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
	int http;

	snprintf(cfg, sizeof(cfg), "admin_token_env = DP_TEST_ADMIN_TOKEN\n%s",
	    extra != NULL ? extra : "");
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-audience", cfg);
	assert_true(http > 0);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http);
	snprintf(raddr, sizeof(raddr), "127.0.0.1:%d", f->port);
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
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    codes_are_checked_deduplicated_counted_and_reported, it_one_setup,
		    it_one_teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("audience", tests, NULL, NULL);
}
