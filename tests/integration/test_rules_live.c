/*
 * test_rules_live.c: targeting rules in the running daemon: a rule folder decides
 * who gets which text; SIGHUP swaps in a folder that compiles and keeps the rules in
 * use when it does not; notifier --check-rules prints errors like a compiler.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "itest.h"
#include "keys.h"

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt;
	char dir[512];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	it_path(f->dir, sizeof(f->dir), "rules", "");
	mkdir(f->dir, 0755);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->gw.proc, SIGTERM, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

static void
write_rules(const struct fx *f, const char *name, const char *text)
{
	char path[600];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

struct logwait {
	const char *path, *what;
};

static int
log_wait(void *arg)
{
	struct logwait *w = arg;

	return (it_log_line(w->path, w->what) > 0);
}

struct count {
	struct it_gwsim *gw;
	int n;
};

static int
gw_count(void *arg)
{
	struct count *c = arg;

	return it_gwsim_count(c->gw, 201) >= c->n;
}

/* The bodies gwsim accepted for number to, concatenated with '|'. */
static void
bodies_for(const struct it_gwsim *g, const char *to, char *buf, size_t size)
{
	cJSON *reqs = it_gwsim_requests(g), *o;
	size_t n = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(o, reqs) {
		cJSON *t = cJSON_GetObjectItem(o, "to"), *b = cJSON_GetObjectItem(o, "body");
		if (cJSON_IsString(t) && cJSON_IsString(b) && strcmp(t->valuestring, to) == 0)
			n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s|",
			    b->valuestring);
	}
	cJSON_Delete(reqs);
}

static const char subs[] =
    "{\"id\":\"hi\",\"phone\":\"+15125550100\",\"channels\":[\"sms\"],"
    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
    "\"engagement\":0.9,\"interests\":{\"categories\":[\"monitor\"]}}\n"
    "{\"id\":\"lo\",\"phone\":\"+15125550101\",\"channels\":[\"sms\"],"
    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
    "\"engagement\":0.1,\"interests\":{\"categories\":[\"laptop\"]}}\n";

static void
rule_folder_decides_and_sighup_swaps_only_a_folder_that_compiles(void **state)
{
	struct fx *f = *state;
	char extra[700], bodies[4096];
	struct count c = { &f->gw, 1 };
	struct logwait lw;

	write_rules(f, "vip.rules",
	    "# engaged subscribers hear about everything\n"
	    "rule vip\n  when subscriber.engagement >= 0.5\n  audience all\n  send sms\n"
	    "  priority 5\n  template sms \"VIP {title} {link} Reply STOP to end\"\nend\n");
	assert_int_equal(it_import(f->port, subs), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	snprintf(extra, sizeof(extra), "[rules]\ndir = %s\n", f->dir);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-r", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("d1", "laptop", 600)), 0);
	assert_true(it_wait(gw_count, &c, 10000));
	it_sleep_ms(300);
	/* "lo" is interested in laptops but no rule picks it; "hi" is not, but vip is
	 * audience all. */
	assert_int_equal(it_gwsim_count(&f->gw, 201), 1);
	bodies_for(&f->gw, "+15125550100", bodies, sizeof(bodies));
	assert_non_null(strstr(bodies, "VIP Deal d1"));

	/* A broken folder: logged with file, line, column; the old rules stay. */
	write_rules(f, "vip.rules", "rule vip\n  when deal.colour = \"red\"\n  send sms\nend\n");
	kill(f->nt.proc.pid, SIGHUP);
	lw.path = f->nt.proc.log;
	lw.what = "event=rules_kept";
	assert_true(it_wait(log_wait, &lw, 5000));
	assert_true(it_log_line(f->nt.proc.log, "line=2 col=8") > 0);
	assert_true(it_log_line(f->nt.proc.log, "unknown field 'deal.colour'") > 0);
	/* The same SIGHUP read tzdata again, every zone loaded at start-up. */
	assert_true(it_log_line(f->nt.proc.log, "event=zones_loaded zones=") > 0);
	lw.what = "event=zones_reloaded zones=";
	assert_true(it_wait(log_wait, &lw, 5000));
	assert_int_equal(it_publish(f->rc, it_deal("d2", "laptop", 600)), 0);
	c.n = 2;
	assert_true(it_wait(gw_count, &c, 10000));
	bodies_for(&f->gw, "+15125550100", bodies, sizeof(bodies));
	assert_non_null(strstr(bodies, "VIP Deal d2"));

	/* A good folder replaces it. */
	write_rules(f, "vip.rules",
	    "rule quiet_ones\n  when subscriber.engagement < 0.5\n  audience interested\n"
	    "  send sms\n  template sms \"NEW {title} {link} Reply STOP to end\"\nend\n");
	kill(f->nt.proc.pid, SIGHUP);
	lw.what = "event=rules_loaded dir=";
	it_sleep_ms(500);
	assert_int_equal(it_publish(f->rc, it_deal("d3", "laptop", 600)), 0);
	c.n = 3;
	assert_true(it_wait(gw_count, &c, 10000));
	it_sleep_ms(300);
	bodies_for(&f->gw, "+15125550101", bodies, sizeof(bodies));
	assert_string_equal(bodies, "NEW Deal d3 https://shop.example/d/d3 Reply STOP to end|");
	assert_int_equal(it_gwsim_count(&f->gw, 201), 3);

	/* A broken folder once more, then a rule put over the API (as another notifier
	 * would): it applies, compiled with the folder in use, not the broken one. */
	write_rules(f, "vip.rules", "rule vip\n  when deal.colour = \"red\"\n  send sms\nend\n");
	kill(f->nt.proc.pid, SIGHUP);
	it_sleep_ms(500);
	freeReplyObject(redisCommand(f->rc, "HSET rules promo %s", "rule promo\n"
	    "  audience all\n  send sms\n  priority 99\n"
	    "  template sms \"API {title} {link} Reply STOP to end\"\nend\n"));
	freeReplyObject(redisCommand(f->rc, "INCR %s", keys_global(KEYS_G_RULES_VERSION)));
	lw.what = "api=1 rules=";
	assert_true(it_wait(log_wait, &lw, 5000));
	assert_int_equal(it_publish(f->rc, it_deal("d4", "laptop", 600)), 0);
	c.n = 4;
	assert_true(it_wait(gw_count, &c, 10000));
	it_sleep_ms(300);
	bodies_for(&f->gw, "+15125550101", bodies, sizeof(bodies));
	assert_non_null(strstr(bodies, "API Deal d4"));
}

static void
check_rules_prints_errors_like_a_compiler(void **state)
{
	struct fx *f = *state;
	char bin[512], out[8192];
	const char *argv[] = { bin, "--check-rules", f->dir, NULL };

	snprintf(bin, sizeof(bin), "%s/notifier", it_build());
	write_rules(f, "a.rules", "rule x\n  when deal.colour = \"red\"\n  send sms\nend\n");
	assert_int_equal(it_run(argv, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "a.rules:2:8: error: unknown field 'deal.colour'"));
	assert_non_null(strstr(out, "  when deal.colour = \"red\"\n       ^"));
	write_rules(f, "a.rules", "rule x\n  when deal.price < 100\n  send sms\nend\n");
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "1 rules, no errors"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    rule_folder_decides_and_sighup_swaps_only_a_folder_that_compiles, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(check_rules_prints_errors_like_a_compiler,
		    setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("rules_live", tests, NULL, NULL);
}
