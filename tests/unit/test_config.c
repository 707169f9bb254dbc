/*
 * test_config.c: the config file parser: defaults, every kind of key, secrets from
 * the environment or a file, and an error naming every bad key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "gw.h"
#include "ingest.h"
#include "log.h"
#include "scripts.h"

static char tmpdir[] = "/tmp/dp-test-config-XXXXXX";

/* Loads text as a config; errors go into errbuf. */
static struct config *
load(const char *text, char *errbuf, size_t size)
{
	char path[256];
	FILE *f, *err;
	struct config *c;

	snprintf(path, sizeof(path), "%s/c.conf", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	err = fmemopen(errbuf, size, "w");
	assert_non_null(err);
	c = config_load(path, err);
	fclose(err);
	return c;
}

static void
empty_file_gives_documented_defaults(void **state)
{
	char errs[1024] = "";
	struct config *c = load("# nothing\n", errs, sizeof(errs));

	(void)state;
	assert_non_null(c);
	assert_string_equal(c->redis_host, "127.0.0.1");
	assert_int_equal(c->redis_port, 6379);
	assert_int_equal(c->redis_command_timeout_ms, 2000);
	assert_int_equal(c->job_size, 50);
	assert_int_equal(c->max_in_flight, 256);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->ngateways, 0);
	assert_true(c->sms_segment_price < 0);          /* no price: reports say so */
	assert_non_null(strstr(c->consumer, "notifier-"));
	config_free(c);
}

/* [attribution]: the windows default to 5 days and 24 h; a bad one is named. */
static void
attribution_windows_are_read_and_bad_ones_named(void **state)
{
	char errs[1024] = "";
	struct config *c = load("# nothing\n", errs, sizeof(errs));

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->click_window_s, 432000);
	assert_int_equal(c->delivery_window_s, 86400);
	config_free(c);
	c = load("[attribution]\nclick_window_s = 3600\ndelivery_window_s = 600\n", errs,
	    sizeof(errs));
	assert_non_null(c);
	assert_int_equal(c->click_window_s, 3600);
	assert_int_equal(c->delivery_window_s, 600);
	config_free(c);
	errs[0] = '\0';
	assert_null(load("[attribution]\nclick_window_s = 5 days\ndelivery_window_s = "
	    "9999999\n", errs, sizeof(errs)));
	assert_non_null(strstr(errs, "attribution.click_window_s"));
	assert_non_null(strstr(errs, "attribution.delivery_window_s"));
}

static void
values_and_trailing_comments_are_read(void **state)
{
	char errs[1024] = "";
	struct config *c;

	(void)state;
	setenv("DP_TEST_SECRET", "s3cret", 1);
	c = load("[notifier]\nconsumer = n-7   # stable\nlog_level = debug\n"
	    "[redis]\nport=6380\n[deliver]\nmax_in_flight = 9\n"
	    "[report]\nsms_segment_price = 0.0079\n[rules]\ndir = /tmp/r#1\n"
	    "[gateway tw]\nkind = twilio\nchannel = sms\npriority = 2\n"
	    "base_url = http://127.0.0.1:9/x\nsecret_env = DP_TEST_SECRET\n"
	    "account_sid = ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nfrom = +15005550006\n",
	    errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->consumer, "n-7");
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->redis_port, 6380);
	assert_int_equal(c->max_in_flight, 9);
	assert_true(c->sms_segment_price > 0.00789 && c->sms_segment_price < 0.00791);
	assert_int_equal(c->ngateways, 1);
	assert_string_equal(c->gateways[0].name, "tw");
	assert_int_equal(c->gateways[0].kind, GW_TWILIO);
	assert_int_equal(c->gateways[0].priority, 2);
	/* '#' without whitespace before it is part of the value. */
	assert_string_equal(c->rules_dir, "/tmp/r#1");
	assert_string_equal(c->gateways[0].base_url, "http://127.0.0.1:9/x");
	assert_string_equal(c->gateways[0].secret, "s3cret");
	config_free(c);
}

static void
xdm_oauth2_keys_are_read_and_missing_ones_named(void **state)
{
	char errs[2048] = "";
	struct config *c;

	(void)state;
	setenv("DP_TEST_X_CS", "cs-1", 1);
	setenv("DP_TEST_X_RT", "rt-1", 1);
	c = load("[gateway x]\nkind = x-dm\nchannel = dm\nbase_url = http://127.0.0.1:9\n"
	    "auth = oauth2\nclient_id = cid\nclient_secret_env = DP_TEST_X_CS\n"
	    "refresh_token_env = DP_TEST_X_RT\nrefresh_margin_s = 120\n"
	    "token_url = http://127.0.0.1:9/t\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->gateways[0].auth, "oauth2");
	assert_string_equal(c->gateways[0].client_id, "cid");
	assert_string_equal(c->gateways[0].client_secret, "cs-1");
	assert_string_equal(c->gateways[0].refresh_token, "rt-1");
	assert_string_equal(c->gateways[0].token_url, "http://127.0.0.1:9/t");
	assert_int_equal(c->gateways[0].refresh_margin_s, 120);
	assert_null(c->gateways[0].secret);
	config_free(c);

	c = load("[gateway x]\nkind = x-dm\nchannel = dm\nbase_url = http://127.0.0.1:9\n"
	    "auth = oauth2\nrefresh_token = rt-inline\n"
	    "[gateway t]\nkind = twilio\nchannel = sms\nauth = oauth2\n"
	    "[gateway y]\nkind = x-dm\nchannel = dm\nauth = basic\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "gateway.x.refresh_token: secrets are not written"));
	assert_non_null(strstr(errs, "gateway.x.client_id: missing (auth = oauth2)"));
	assert_non_null(strstr(errs, "gateway.x.refresh_token: missing (auth = oauth2)"));
	assert_non_null(strstr(errs, "gateway.t.auth: static or oauth2, for an x-dm"));
	assert_non_null(strstr(errs, "gateway.y.auth: static or oauth2, for an x-dm"));
	assert_null(strstr(errs, "rt-inline"));
}

static void
secret_file_first_line_is_the_secret(void **state)
{
	char errs[1024] = "", path[256], text[512];
	struct config *c;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/token", tmpdir);
	f = fopen(path, "w");
	fputs("  tok-123  \nignored\n", f);
	fclose(f);
	snprintf(text, sizeof(text), "[redis]\npassword_file = %s\n", path);
	c = load(text, errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->redis_password, "tok-123");
	config_free(c);
}

static void
every_bad_key_is_reported_by_name(void **state)
{
	char errs[4096] = "";
	struct config *c;

	(void)state;
	unsetenv("DP_TEST_NOPE");
	c = load("[redis]\nport = 0\nhots = x\ncommand_timeout_ms = 2500.5\n"
	    "[notifier]\nlog_level = loud\n"
	    "[gateway g]\nkind = pigeon\nsecret = inline\nsecret_env = DP_TEST_NOPE\n"
	    "[gateway g]\n[weird]\nno equals sign\n[gateway bad name]\n"
	    "[report]\nsms_segment_price = -0.5\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, ":2: redis.port: 0 is out of range"));
	assert_non_null(strstr(errs, ":3: redis.hots: unknown key"));
	assert_non_null(strstr(errs, ":4: redis.command_timeout_ms: '2500.5' is not a whole"));
	assert_non_null(strstr(errs, ":6: notifier.log_level: 'loud'"));
	assert_non_null(strstr(errs, ":8: gateway.g.kind: 'pigeon'"));
	assert_non_null(strstr(errs, ":9: gateway.g.secret: secrets are not written"));
	assert_non_null(strstr(errs, ":10: gateway.g.secret_env: environment variable "
	    "DP_TEST_NOPE is not set"));
	assert_non_null(strstr(errs, ":11: gateway 'g' is defined twice"));
	assert_non_null(strstr(errs, ":12: unknown section [weird]"));
	assert_non_null(strstr(errs, "gateway name 'bad name'"));
	assert_non_null(strstr(errs, "gateway.g.channel: missing"));
	assert_non_null(strstr(errs, ":16: report.sms_segment_price: -0.5 is out of range"));
	assert_null(strstr(errs, "inline"));
}

static void
plan_chunk_whose_script_arguments_exceed_the_limit_is_refused(void **state)
{
	char errs[2048] = "";
	struct config *c;

	(void)state;
	/* 20000 recipients in jobs of 1: about 320000 arguments, over 65536. */
	c = load("[ingest]\nplan_chunk = 20000\njob_size = 1\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "ingest.plan_chunk"));
	assert_non_null(strstr(errs, "ingest.job_size"));
	assert_non_null(strstr(errs, "script arguments"));
	assert_null(strstr(errs, "redis"));
	/* The largest chunk fits when its jobs are large enough. */
	errs[0] = '\0';
	c = load("[ingest]\nplan_chunk = 20000\njob_size = 1000\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_true(ingest_plan_args_max(c->plan_chunk, c->job_size) <= SCRIPT_ARGS_MAX);
	config_free(c);
	/* A chunk holds one shard's recipients: the shard count changes nothing. */
	errs[0] = '\0';
	c = load("[redis]\nshards = 1024\n[ingest]\nplan_chunk = 20000\njob_size = 20\n",
	    errs, sizeof(errs));
	assert_non_null(c);
	config_free(c);
	/* And the defaults, of course. */
	assert_true(ingest_plan_args_max(500, 50) <= SCRIPT_ARGS_MAX);
}

static void
claim_idle_below_three_gateway_timeouts_is_refused(void **state)
{
	char errs[2048] = "";
	struct config *c;

	(void)state;
	setenv("DP_TEST_SECRET", "s3cret", 1);
	/* Default timeout_ms is 10000: 29999 is too short, 30000 is enough. */
	c = load("[deliver]\nclaim_idle_ms = 29999\n"
	    "[gateway a]\nkind = webhook\nchannel = sms\nurl = http://127.0.0.1:9/\n"
	    "secret_env = DP_TEST_SECRET\n",
	    errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "deliver.claim_idle_ms: 29999: claim_idle_ms must be "
	    "\xe2\x89\xa5 3 \xc3\x97 the largest gateway timeout_ms (10000)"));
	errs[0] = '\0';
	c = load("[deliver]\nclaim_idle_ms = 30000\n"
	    "[gateway a]\nkind = webhook\nchannel = sms\nurl = http://127.0.0.1:9/\n"
	    "secret_env = DP_TEST_SECRET\n",
	    errs, sizeof(errs));
	assert_non_null(c);
	config_free(c);
	/* The largest of several gateways counts. */
	errs[0] = '\0';
	c = load("[deliver]\nclaim_idle_ms = 45000\n"
	    "[gateway a]\nkind = webhook\nchannel = sms\nurl = http://127.0.0.1:9/\n"
	    "secret_env = DP_TEST_SECRET\n"
	    "timeout_ms = 1000\n"
	    "[gateway b]\nkind = webhook\nchannel = dm\nurl = http://127.0.0.1:9/\n"
	    "secret_env = DP_TEST_SECRET\n"
	    "timeout_ms = 20000\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "timeout_ms (20000)"));
	/* Short timeouts allow a short claim time (the tests use that). */
	errs[0] = '\0';
	c = load("[deliver]\nclaim_idle_ms = 600\n"
	    "[gateway a]\nkind = webhook\nchannel = sms\nurl = http://127.0.0.1:9/\n"
	    "secret_env = DP_TEST_SECRET\n"
	    "timeout_ms = 200\n", errs, sizeof(errs));
	assert_non_null(c);
	config_free(c);
}

static void
max_tries_defaults_to_five(void **state)
{
	char errs[1024] = "";
	struct config *c = load("# nothing\n", errs, sizeof(errs));

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->max_tries, 5);
	config_free(c);
	c = load("[ingest]\nmax_tries = 2\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_int_equal(c->max_tries, 2);
	config_free(c);
	c = load("[ingest]\nmax_tries = 0\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "ingest.max_tries: 0 is out of range"));
}

static void
missing_file_is_an_error_not_a_crash(void **state)
{
	char errs[512] = "";
	FILE *err = fmemopen(errs, sizeof(errs), "w");

	(void)state;
	assert_null(config_load("/nonexistent/dealpush.conf", err));
	fclose(err);
	assert_non_null(strstr(errs, "cannot open"));
}

static void
nul_byte_and_overlong_line_are_refused(void **state)
{
	char errs[1024] = "", path[256], *big;
	FILE *f, *err;

	(void)state;
	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	f = fopen(path, "w");
	fwrite("[redis]\nport = 1\0 2\n", 1, 20, f);
	big = malloc(10000);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	fprintf(f, "[redis]\nhost = %s\n", big);
	free(big);
	fclose(f);
	err = fmemopen(errs, sizeof(errs), "w");
	assert_null(config_load(path, err));
	fclose(err);
	assert_non_null(strstr(errs, "NUL byte"));
	assert_non_null(strstr(errs, "longer than"));
}

/* A whole twilio gateway with status_callback_base = cb (and public_url = cb). */
static struct config *
load_twilio_cb(const char *cb, char *errs, size_t size)
{
	char text[1024];

	setenv("DP_TEST_SECRET", "s3cret", 1);
	snprintf(text, sizeof(text), "[gateway tw]\nkind = twilio\nchannel = sms\n"
	    "base_url = https://api.twilio.com\n"
	    "account_sid = ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nfrom = +15005550006\n"
	    "secret_env = DP_TEST_SECRET\nstatus_callback_base = %s\n", cb);
	errs[0] = '\0';
	return load(text, errs, size);
}

static void
callback_bases_that_are_not_uris_fail_check_and_start_alike(void **state)
{
	/* Each once passed --check-config; the first then failed start-up, the others
	 * put a StatusCallback that is not a URI on every SMS. */
	static const char *const bad[] = {
		"https://notify.example.com/a b",          /* a space */
		"https://notify.example.com/a|b",          /* '|' */
		"https://notify.example.com/{id}",         /* '{' */
		"https://notify.example.com/%zz",          /* not a percent-encoding */
		"https://notify.example.com/%4",           /* cut short */
		"https://notify.example.com/caf\xc3\xa9",  /* not ASCII */
		"https://notify.exa mple.com",             /* a space in the host */
		"https://notify.example.com\x7f",          /* a control character */
		"ftp://notify.example.com",                /* not http(s) */
		"https://",                                /* no host */
		"https://:8443/x",                         /* no host, a port */
		"https://notify.example.com:0",            /* port 0 */
		"https://notify.example.com:65536",        /* port too large */
		"https://user:pw@notify.example.com",      /* a password in the config */
		"https://notify.example.com/#frag",        /* a fragment */
		"https://notify.example.com/?a=1",         /* a query on a base */
		"https://[::zz]/",                          /* not an IPv6 address */
	};
	char errs[2048];
	struct gw_config g;
	struct err err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *c = load_twilio_cb(bad[i], errs, sizeof(errs));

		if (c != NULL)
			fail_msg("accepted status_callback_base '%s'", bad[i]);
		if (strstr(errs, "gateway.tw.status_callback_base: not an http(s) URI") == NULL)
			fail_msg("'%s': %s", bad[i], errs);
		/* The value itself is never echoed (it could be a misplaced secret). */
		assert_null(strstr(errs, "notify.example.com"));
		/* The start-up path refuses it with the same check. */
		memset(&g, 0, sizeof(g));
		g.name = "tw";
		g.kind = GW_TWILIO;
		g.channel = CH_SMS;
		g.base_url = "https://api.twilio.com";
		g.account_sid = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
		g.from = "+15005550006";
		g.secret = "s3cret";
		g.status_callback_base = (char *)bad[i];
		err_clear(&err);
		if (gw_config_check(&g, &err) == 0)
			fail_msg("gw_config_check accepted '%s'", bad[i]);
		assert_string_equal(err.field, "gateway.tw.status_callback_base");
	}
}

static void
good_urls_pass_check_and_start_alike(void **state)
{
	static const char *const good[] = {
		"https://notify.example.com",
		"http://127.0.0.1:8025/",
		"HTTPS://Notify.Example.COM:8443/hooks-base",
		"https://[::1]:8443/base",
		"https://notify.example.com/a%20b/~x;v=1/@team/it's+(1)*,!$&=:",
	};
	char errs[2048];
	struct gw_config g;
	struct err err;
	struct config *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if ((c = load_twilio_cb(good[i], errs, sizeof(errs))) == NULL)
			fail_msg("refused '%s': %s", good[i], errs);
		g = c->gateways[0];
		err_clear(&err);
		assert_int_equal(gw_config_check(&g, &err), 0);
		config_free(c);
	}
	/* A full URL (a webhook's) may carry a query; a base may not. */
	c = load("[gateway w]\nkind = webhook\nchannel = dm\nsecret_env = DP_TEST_SECRET\n"
	    "url = https://hooks.example.com/in?team=7&k=a%2Fb\n", errs, sizeof(errs));
	assert_non_null(c);
	config_free(c);
}

static void
every_url_key_is_checked_and_each_bad_one_named(void **state)
{
	char errs[4096] = "";
	struct config *c;

	(void)state;
	setenv("DP_TEST_SECRET", "s3cret", 1);
	c = load("[http]\npublic_url = https://n.example.com/a b\n"
	    "[gateway tw]\nkind = twilio\nchannel = sms\nbase_url = https://api|twilio.com\n"
	    "account_sid = ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nfrom = +15005550006\n"
	    "secret_env = DP_TEST_SECRET\nstatus_callback_base = https://n.example.com/{x}\n"
	    "[gateway x]\nkind = x-dm\nchannel = dm\nbase_url = https://api.x.com/%zz\n"
	    "auth = oauth2\nclient_id = cid\nrefresh_token_env = DP_TEST_SECRET\n"
	    "token_url = https://api.x.com/t#f\n"
	    "[gateway w]\nkind = webhook\nchannel = dm\nsecret_env = DP_TEST_SECRET\n"
	    "url = https://hooks.example.com/caf\xc3\xa9\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, ":2: http.public_url: not an http(s) URI: "
	    "not allowed in a URI: a space at position 24"));
	assert_non_null(strstr(errs, ":6: gateway.tw.base_url: not an http(s) URI"));
	assert_non_null(strstr(errs, "gateway.tw.status_callback_base: not an http(s) URI: "
	    "not allowed in a URI: '{' at position 23"));
	assert_non_null(strstr(errs, "gateway.x.base_url: not an http(s) URI: '%' must be "
	    "followed by two hex digits"));
	assert_non_null(strstr(errs, "gateway.x.token_url: not an http(s) URI: no fragment"));
	assert_non_null(strstr(errs, "gateway.w.url: not an http(s) URI: not allowed in a "
	    "URI: byte 0xc3"));
	/* Each bad key once: the gateway checks do not repeat what was said. */
	assert_null(strstr(errs, "must be an http(s) URL"));
}

static void
link_base_defaults_to_the_public_urls_c_and_is_checked(void **state)
{
	char errs[4096] = "";
	struct config *c;

	(void)state;
	c = load("# nothing\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_null(c->link_base);                     /* no public URL: no links */
	config_free(c);
	c = load("[http]\npublic_url = https://n.example.com/\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->link_base, "https://n.example.com/c");
	config_free(c);
	c = load("[http]\npublic_url = https://n.example.com\n"
	    "link_base = https://dp.to/x\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->link_base, "https://dp.to/x");
	config_free(c);
	/* Not a URI; a query; no path; the notifier's own path: each named. */
	c = load("[http]\nlink_base = dp.to/x\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, ":2: http.link_base: not an http(s) URI"));
	errs[0] = '\0';
	c = load("[http]\nlink_base = https://dp.to/x?a=1\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "http.link_base: not an http(s) URI"));
	errs[0] = '\0';
	c = load("[http]\nlink_base = https://dp.to\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "http.link_base: not usable as the base of short "
	    "links: needs a path, such as https://dp.to/c"));
	errs[0] = '\0';
	c = load("[http]\nlink_base = https://dp.to/v1/l\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "http.link_base: not usable as the base of short "
	    "links: path /v1/l is the notifier's own"));
}

static void
gateway_start_up_checks_run_at_check_config(void **state)
{
	char errs[2048] = "";
	struct config *c;

	(void)state;
	/* Once --check-config said "valid" and only gw_new refused them. */
	setenv("DP_TEST_SECRET", "s3cret", 1);
	c = load("[gateway tw]\nkind = twilio\nchannel = sms\n"
	    "base_url = https://api.twilio.com\naccount_sid = AC123\nfrom = +15005550006\n"
	    "secret_env = DP_TEST_SECRET\n"
	    "[gateway t2]\nkind = twilio\nchannel = dm\nbase_url = https://api.twilio.com\n"
	    "account_sid = ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nfrom = +15005550006\n"
	    "secret_env = DP_TEST_SECRET\n"
	    "[gateway w]\nkind = webhook\nchannel = dm\nurl = https://h.example.com/\n",
	    errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "gateway.tw.account_sid: must match ^AC[0-9a-fA-F]{32}$"));
	assert_non_null(strstr(errs, "gateway.t2.channel: a twilio gateway sends sms"));
	assert_non_null(strstr(errs, "gateway.w.secret: must not be empty"));
}

static void
secret_from_a_systemd_credential(void **state)
{
	char errs[2048] = "", dir[256], path[300];
	struct config *c;
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/creds", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/redis-password", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("pw-from-credential\n", f);
	fclose(f);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	c = load("[redis]\npassword_credential = redis-password\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->redis_password, "pw-from-credential");
	config_free(c);
	/* A name is one file name: no way out of the folder. */
	c = load("[redis]\npassword_credential = ../etc/shadow\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "redis.password_credential: '../etc/shadow' is not a credential "
	    "name"));
	c = load("[http]\nadmin_token_credential = absent\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "http.admin_token_credential: cannot read"));
	/* Outside a unit with LoadCredential= there is no folder. */
	unsetenv("CREDENTIALS_DIRECTORY");
	c = load("[redis]\npassword_credential = redis-password\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "CREDENTIALS_DIRECTORY is not set"));
	unlink(path);
	rmdir(dir);
}

static int
mk(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
rm(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* [compliance] rows add to the statutory ones and may only tighten them; every bad
 * row is named (what --check-config prints). */
static void
compliance_rows_tighten_and_bad_ones_are_named(void **state)
{
	char errs[2048] = "";
	struct config *c;
	size_t n0;

	(void)state;
	c = load("# nothing\n", errs, sizeof(errs));
	assert_non_null(c);
	n0 = c->quiet.nwindows;
	assert_int_equal(c->quiet.ncaps, 3);
	assert_int_equal(c->quiet.cap_per_campaign, 0);
	config_free(c);
	c = load("[compliance]\nwindow.US-TX = 09:00-20:00\nwindow.us-tx.sun = 12:00-18:00\n"
	    "cap.US-TX = 2/24h\ncap_scope = campaign\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_int_equal(c->quiet.nwindows, n0 + 2);
	assert_string_equal(c->quiet.windows[n0 + 1].region, "US-TX");
	assert_int_equal(c->quiet.windows[n0 + 1].wday, 0);
	assert_int_equal(c->quiet.windows[n0 + 1].start_min, 12 * 60);
	assert_int_equal(c->quiet.caps[3].max, 2);
	assert_int_equal(c->quiet.caps[3].window_s, 86400);
	assert_int_equal(c->quiet.cap_per_campaign, 1);
	config_free(c);
	c = load("[compliance]\nwindow.US-FL = 08:00-21:00\nwindow.US-XX = 09:00-20:00\n"
	    "window.US-TX = 9-20\nwindow.US-TX.someday = 09:00-20:00\n"
	    "window.US-TX = 25:00-20:00\ncap.US-MD = 5/24h\ncap.US-TX = three\n"
	    "cap_scope = each\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, ":2: compliance.window.US-FL: opens 20:00"));
	assert_non_null(strstr(errs, ":3: compliance.window.US-XX: unknown place"));
	assert_non_null(strstr(errs, ":4: compliance.window.US-TX: '9-20' is not HH:MM-HH:MM"));
	assert_non_null(strstr(errs, ":5: compliance.window.US-TX.someday: 'someday' is not"));
	assert_non_null(strstr(errs, ":6: compliance.window.US-TX: '25:00-20:00'"));
	assert_non_null(strstr(errs, ":7: compliance.cap.US-MD: the law allows at most 3"));
	assert_non_null(strstr(errs, ":8: compliance.cap.US-TX: 'three' is not N/Hh"));
	assert_non_null(strstr(errs, ":9: compliance.cap_scope: 'each'"));
}

/* [inbound] words: read as given, and a bad entry named by key and line. */
static void
inbound_words_are_read_and_bad_ones_are_named(void **state)
{
	char errs[1024] = "";
	struct config *c;

	(void)state;
	c = load("[inbound]\noptout_words = arr\xC3\xAAt, stopp, abmelden\n"
	    "optout_fillers = bitte, s'il vous pla\xC3\xAEt\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->optout_words, "arr\xC3\xAAt, stopp, abmelden");
	assert_string_equal(c->optout_fillers, "bitte, s'il vous pla\xC3\xAEt");
	config_free(c);
	c = load("[inbound]\noptout_words = arret, start\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "inbound.optout_words: 'start' is an opt-in or help "
	    "keyword"));
	errs[0] = '\0';
	c = load("[inbound]\noptout_words = please\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "inbound.optout_words: 'please' is a filler word"));
	errs[0] = '\0';
	c = load("[inbound]\noptout_fillers = !!!\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "inbound.optout_fillers"));
}

static void
redis_host_names_and_acl_users(void **state)
{
	static const char *const bad_hosts[] = { "bad host", "-lead.example", "trail-.x",
	    "a..b", "under_score.example", "x.", "{braces}" };
	char errs[2048], text[512];
	struct config *c;
	size_t i;

	(void)state;
	setenv("DP_TEST_SECRET", "s3cret", 1);
	errs[0] = '\0';
	c = load("[redis]\nhost = redis-1.internal.example\nusername = dealpush\n"
	    "password_env = DP_TEST_SECRET\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->redis_host, "redis-1.internal.example");
	assert_string_equal(c->redis_username, "dealpush");
	config_free(c);
	errs[0] = '\0';
	assert_non_null(c = load("[redis]\nhost = ::1\n", errs, sizeof(errs)));
	assert_null(c->redis_username);
	config_free(c);
	/* a user without its password */
	errs[0] = '\0';
	assert_null(load("[redis]\nusername = dealpush\n", errs, sizeof(errs)));
	assert_non_null(strstr(errs, "redis.username"));
	assert_non_null(strstr(errs, "needs redis.password"));
	for (i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
		snprintf(text, sizeof(text), "[redis]\nhost = %s\n", bad_hosts[i]);
		errs[0] = '\0';
		if ((c = load(text, errs, sizeof(errs))) != NULL)
			fail_msg("host '%s' accepted", bad_hosts[i]);
		assert_non_null(strstr(errs, "redis.host"));
	}
	/* a label of 64 */
	snprintf(text, sizeof(text), "[redis]\nhost = %064d.example\n", 0);
	errs[0] = '\0';
	assert_null(load(text, errs, sizeof(errs)));
	assert_non_null(strstr(errs, "redis.host"));
}

static void
sentinels_master_name_and_wait_keys(void **state)
{
	/* ORDER BAD_SENTINELS: each value, then what its error must say. */
	static const char *const bad[][2] = {
		{ "sentinels = 10.0.0.1\nmaster_name = m", "'10.0.0.1' has no port" },
		{ "sentinels = 10.0.0.1:0\nmaster_name = m", "port must be 1 to 65535" },
		{ "sentinels = 10.0.0.1:65536\nmaster_name = m", "port must be 1 to 65535" },
		{ "sentinels = 10.0.0.1:26x\nmaster_name = m", "port must be 1 to 65535" },
		{ "sentinels = a:1,,b:2\nmaster_name = m", "entry 2 is empty" },
		{ "sentinels = a:1,\nmaster_name = m", "entry 2 is empty" },
		{ "sentinels = :26379\nmaster_name = m", "has no host" },
		{ "sentinels = ::1:26379\nmaster_name = m", "[addr]:port" },
		{ "sentinels = bad_host:26379\nmaster_name = m", "neither an IP address" },
		{ "sentinels = a:1", "redis.master_name: missing" },
		{ "master_name = m", "redis.master_name: needs redis.sentinels" },
		{ "sentinels = a:1\nmaster_name = my master", "redis.master_name: must not contain white" },
		{ "wait_replicas = -1", "redis.wait_replicas" },
		{ "wait_replicas = 17", "redis.wait_replicas" },
		{ "wait_timeout_ms = 0", "redis.wait_timeout_ms" },
		{ "cluster = localhost:7000", "redis.cluster: 'localhost' (entry 1) is not an "
		    "IP address" },
		{ "cluster = 10.0.0.1", "'10.0.0.1' has no port" },
		{ "cluster = 10.0.0.1:7000\nsentinels = a:1\nmaster_name = m",
		    "redis.cluster: not with redis.sentinels" },
		{ "cluster = 10.0.0.1:7000\nusername = u", "redis.username: not with "
		    "redis.cluster" },
	};
	char errs[2048], text[512];
	struct config *c;
	size_t i;

	(void)state;
	errs[0] = '\0';
	c = load("[redis]\nsentinels = 10.0.0.1:26379, s2.example:26380,[::1]:26381\n"
	    "master_name = dealpush\nwait_replicas = 1\nwait_timeout_ms = 250\n", errs,
	    sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->redis_master_name, "dealpush");
	assert_int_equal(c->wait_replicas, 1);
	assert_int_equal(c->wait_timeout_ms, 250);
	config_free(c);
	c = load("[redis]\ncluster = 10.0.0.1:7000, [::1]:7001\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->redis_cluster, "10.0.0.1:7000, [::1]:7001");
	config_free(c);
	/* Off by default: a single Redis has no replica to wait for. */
	assert_non_null(c = load("", errs, sizeof(errs)));
	assert_null(c->redis_sentinels);
	assert_int_equal(c->wait_replicas, 0);
	assert_int_equal(c->wait_timeout_ms, 100);
	config_free(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[redis]\n%s\n", bad[i][0]);
		errs[0] = '\0';
		if ((c = load(text, errs, sizeof(errs))) != NULL)
			fail_msg("'%s' accepted", bad[i][0]);
		if (strstr(errs, bad[i][1]) == NULL)
			fail_msg("'%s': error \"%s\" does not say \"%s\"", bad[i][0], errs,
			    bad[i][1]);
		if (strstr(bad[i][0], "sentinels") != NULL && strstr(bad[i][1], "redis.") ==
		    NULL && strstr(errs, "redis.sentinels: ") == NULL)
			fail_msg("'%s': error \"%s\" does not name the key", bad[i][0], errs);
	}
}

/* [signup]: keywords need what the confirmation request must say; each problem named. */
static void
signup_keys_are_checked_together(void **state)
{
	char errs[4096] = "";
	struct config *c;

	(void)state;
	c = load("[signup]\nkeywords = JOIN, DEALS LAPTOP: laptops @es\n"
	    "program = Acme\nmax_per_week = 4\nterms_url = https://a.example/t\n"
	    "timezone = America/Chicago\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_int_equal(c->signup_max_requests, 3);          /* the defaults */
	assert_int_equal(c->signup_confirm_ttl_s, 86400);
	config_free(c);
	c = load("[signup]\nkeywords = JOIN\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "signup.program: is required"));
	assert_non_null(strstr(errs, "signup.max_per_week: is required"));
	assert_non_null(strstr(errs, "signup.terms_url: is required"));
	errs[0] = '\0';
	c = load("[signup]\nkeywords = JOIN, STOP\nprogram = A\nmax_per_week = 1\n"
	    "terms_url = https://a.example/t has space\ntimezone = Mars/Base\n"
	    "max_requests_per_day = 0\n", errs, sizeof(errs));
	assert_null(c);
	assert_non_null(strstr(errs, "signup.keywords: 'STOP'"));
	assert_non_null(strstr(errs, "signup.terms_url"));
	assert_non_null(strstr(errs, "signup.timezone: not a time zone"));
	assert_non_null(strstr(errs, "signup.max_requests_per_day"));
}

/* [cluster]: the ownership keys, read and checked together, each problem named. */
static void
cluster_keys_are_checked_together(void **state)
{
	/* ORDER BAD_CLUSTER: each value, then what its error must say. */
	static const char *const bad[][2] = {
		{ "ownership = sometimes", "cluster.ownership: must be off, configured or" },
		{ "ownership = configured", "cluster.shards: is required" },
		{ "shards = 0-3", "cluster.shards: is for ownership = configured only" },
		{ "ownership = balanced\nshards = 1", "cluster.shards: is for ownership" },
		{ "ownership = configured\nshards = 3-1", "cluster.shards: range 3-1 runs" },
		{ "ownership = configured\nshards = 0-1024", "past the last shard (1023)" },
		{ "ownership = configured\nshards = x", "cluster.shards: expected shard" },
		{ "lease_ms = 2999", "cluster.lease_ms" },
		{ "lease_margin_ms = 999\nlease_ms = 10000", "cluster.lease_margin_ms: must be "
		    "between a tenth and a half of cluster.lease_ms (1000..5000)" },
		{ "lease_margin_ms = 5001", "cluster.lease_margin_ms: must be between" },
		{ "settle_ms = -1", "cluster.settle_ms" },
	};
	char errs[2048], text[512];
	struct config *c;
	size_t i;

	(void)state;
	errs[0] = '\0';
	assert_non_null(c = load("", errs, sizeof(errs)));
	assert_null(c->cluster_ownership);            /* off */
	assert_int_equal(c->cluster_lease_ms, 10000);
	assert_int_equal(c->cluster_lease_margin_ms, 1000);
	assert_int_equal(c->cluster_settle_ms, 6666);  /* two heartbeats */
	config_free(c);
	c = load("[cluster]\nownership = configured\nshards = 0-15, 40\nlease_ms = 3000\n"
	    "lease_margin_ms = 300\nsettle_ms = 0\n", errs, sizeof(errs));
	assert_non_null(c);
	assert_string_equal(c->cluster_shards, "0-15, 40");
	assert_int_equal(c->cluster_lease_ms, 3000);
	assert_int_equal(c->cluster_settle_ms, 0);
	config_free(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[cluster]\n%s\n", bad[i][0]);
		errs[0] = '\0';
		if ((c = load(text, errs, sizeof(errs))) != NULL)
			fail_msg("'%s' accepted", bad[i][0]);
		if (strstr(errs, bad[i][1]) == NULL)
			fail_msg("'%s': error \"%s\" does not say \"%s\"", bad[i][0], errs,
			    bad[i][1]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cluster_keys_are_checked_together),
		cmocka_unit_test(sentinels_master_name_and_wait_keys),
		cmocka_unit_test(redis_host_names_and_acl_users),
		cmocka_unit_test(empty_file_gives_documented_defaults),
		cmocka_unit_test(attribution_windows_are_read_and_bad_ones_named),
		cmocka_unit_test(values_and_trailing_comments_are_read),
		cmocka_unit_test(secret_file_first_line_is_the_secret),
		cmocka_unit_test(xdm_oauth2_keys_are_read_and_missing_ones_named),
		cmocka_unit_test(every_bad_key_is_reported_by_name),
		cmocka_unit_test(plan_chunk_whose_script_arguments_exceed_the_limit_is_refused),
		cmocka_unit_test(claim_idle_below_three_gateway_timeouts_is_refused),
		cmocka_unit_test(max_tries_defaults_to_five),
		cmocka_unit_test(missing_file_is_an_error_not_a_crash),
		cmocka_unit_test(nul_byte_and_overlong_line_are_refused),
		cmocka_unit_test(compliance_rows_tighten_and_bad_ones_are_named),
		cmocka_unit_test(inbound_words_are_read_and_bad_ones_are_named),
		cmocka_unit_test(callback_bases_that_are_not_uris_fail_check_and_start_alike),
		cmocka_unit_test(good_urls_pass_check_and_start_alike),
		cmocka_unit_test(every_url_key_is_checked_and_each_bad_one_named),
		cmocka_unit_test(link_base_defaults_to_the_public_urls_c_and_is_checked),
		cmocka_unit_test(gateway_start_up_checks_run_at_check_config),
		cmocka_unit_test(secret_from_a_systemd_credential),
		cmocka_unit_test(signup_keys_are_checked_together),
	};

	return cmocka_run_group_tests_name("config", tests, mk, rm);
}
