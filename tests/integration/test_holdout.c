/*
 * test_holdout.c: a rule's holdout keeps a stable share of its audience back: they
 * are counted, never texted, remembered in holdout:<deal>, and their purchases count
 * as the holdout's, so a report can set what the pushes added against the baseline.
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

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
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

struct want {
	struct fx *f;
	long long n;
};

static int
all_recorded(void *arg)
{
	struct want *w = arg;

	return it_outcomes(w->f->rc, "") >= w->n;
}

static int
holdout_counted(void *arg)
{
	struct want *w = arg;

	return it_int(w->f->rc, "HEXISTS report:deal:hd holdout_redeemed") == 1;
}

static void
holdout_share_is_kept_back_remembered_and_credited(void **state)
{
	struct fx *f = *state;
	const int n = 200;
	char dir[512], path[600], extra[1024], *subs, held[64];
	size_t cap = (size_t)n * 256 + 1, len = 0;
	long long nheld, sent;
	struct want w = { f, 0 };
	redisReply *r;
	FILE *fp;
	int i;

	it_path(dir, sizeof(dir), "rules", "");
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/h.rules", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("rule half\n  when deal.category = \"laptop\"\n  audience all\n  send sms\n"
	    "  holdout 50%\n  template sms \"{title} {link} Reply STOP to end\"\nend\n", fp);
	fclose(fp);
	subs = malloc(cap);
	for (i = 0; i < n; i++) {
		snprintf(subs + len, cap - len,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\"}\n", i, 1000 + i);
		len += strlen(subs + len);
	}
	assert_int_equal(it_import(f->port, subs), 0);
	free(subs);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	snprintf(extra, sizeof(extra), "[rules]\ndir = %s\n[http]\nport = 0\n", dir);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-ho", extra), 0);
	assert_int_equal(it_publish(f->rc, it_deal("hd", "laptop", 600)), 0);

	/* Held-out subscribers are remembered; everyone else is texted. */
	it_sleep_ms(1000);
	nheld = it_int(f->rc, "HLEN holdout:hd");
	assert_true(nheld > n / 4 && nheld < 3 * n / 4);   /* about half */
	w.n = n - nheld;
	assert_true(it_wait(all_recorded, &w, 10000));
	it_sleep_ms(300);
	sent = it_outcomes(f->rc, "sent");
	assert_int_equal(sent, n - nheld);
	assert_int_equal(it_gwsim_count(&f->gw, 201), n - nheld);
	r = redisCommand(f->rc, "HGET report:deal:hd holdout_audience");
	assert_int_equal(strtoll(r->str, NULL, 10), nheld);
	freeReplyObject(r);

	/* Stable: the same subscribers are held out for this rule whatever the deal. */
	r = redisCommand(f->rc, "HRANDFIELD holdout:hd");
	snprintf(held, sizeof(held), "%s", r->str);
	freeReplyObject(r);
	assert_int_equal(it_publish(f->rc, it_deal("hd2", "laptop", 600)), 0);
	it_sleep_ms(1000);
	assert_int_equal(it_int(f->rc, "HEXISTS holdout:hd2 %s", held), 1);
	assert_int_equal(it_int(f->rc, "HLEN holdout:hd2"), nheld);

	/* A purchase by a held-out subscriber is the holdout's, not the pushes'. */
	r = redisCommand(f->rc, "XADD conversions * conversion "
	    "{\"deal_id\":\"hd\",\"order_id\":\"o-1\",\"revenue\":100,\"currency\":\"USD\","
	    "\"subscriber_id\":\"%s\"}", held);
	freeReplyObject(r);
	assert_true(it_wait(holdout_counted, &w, 5000));
	assert_int_equal(it_int(f->rc, "HEXISTS report:deal:hd redeemed"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    holdout_share_is_kept_back_remembered_and_credited, setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("holdout", tests, NULL, NULL);
}
