/*
 * test_shard_plan.c: a deal planned exactly once over 4 shards although the notifier
 * dies as under kill -9 in the middle of its plan (docs/sharding.md 4a; section 6,
 * step 3): between two chunks, and between the last chunk (the marker) and what
 * follows it. A second notifier under the same consumer name finishes the work.
 * Counts texts per phone at the gateway simulator: nobody texted twice, every push
 * final, the deal's entry acked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "test_promises.h"
#include "itshards.h"

#define N 120
/* 12 chunks of 10 recipients (4 sent ahead of their answers, INGEST_PLAN_INFLIGHT),
 * each chunk's jobs one shard's recipients. */
#define CHUNKS 12
#define EXTRA "[ingest]\nplan_chunk = 10\njob_size = 10\n" \
	"[deliver]\nmax_in_flight = 16\nresolve_after_s = 1\n"

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

	if (f == NULL)
		return -1;
	/* Whatever the run chose: this promise is about the sharded plan. */
	setenv("DP_SHARDS", "4", 1);
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
	int rv = it_stop_clean(&f->nt.proc) < 0 ? -1 : 0;

	it_stop(&f->gw.proc, SIGTERM, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

/* Publishes a deal to N subscribers of 4 shards to a notifier that dies once plan
 * chunk kill_at is answered; checks what it left (the marker set or not), then
 * starts it again and checks that every phone got at most one text and every push
 * ended. Returns the "event=deal_planned" lines of the second notifier's log. */
static int
plan_killed_at(struct fx *f, int kill_at, int marker_left)
{
	char faults[32], entry[64];
	struct pt_tally t;
	int status;

	pt_import(f->port, N, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	snprintf(faults, sizeof(faults), "plan.kill@%d", kill_at);
	setenv("DP_FAULTS", faults, 1);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-plan", EXTRA),
	    0);
	unsetenv("DP_FAULTS");
	pt_publish(f->rc, it_deal("kill-plan", "laptop", 600), entry, sizeof(entry));
	status = it_stop(&f->nt.proc, 0, 20000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 137);
	assert_int_equal(it_int(f->rc, "HEXISTS deal:kill-plan planned"), marker_left);

	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-plan", EXTRA),
	    0);
	assert_true(pt_wait_settled(f->rc, &f->gw, "kill-plan", entry, N, 60000));
	pt_tally(&t, f->rc, &f->gw, "kill-plan", entry, N, 0);
	pt_tally_print("plan killed", &t);
	assert_int_equal(t.dup_phones, 0);
	assert_int_equal(t.strangers, 0);
	assert_int_equal(t.open, 0);
	assert_int_equal(t.final, N);
	assert_int_equal(t.sent + t.unknown, N);
	pt_tally_free(&t);
	assert_int_equal(pt_pending_of(f->rc, "deals", "notifier", "it-plan"), 0);
	return (int)it_log_count(f->nt.proc.log, "event=deal_planned", NULL, NULL);
}

/* Between two chunks (the first answered, the next four at most sent): the second
 * notifier plans the rest once (the planset skips everyone the first chunks wrote). */
static void
kill_between_two_chunks_replans_the_rest_once(void **state)
{
	assert_int_equal(plan_killed_at(*state, 1, 0), 1);
}

/* Between the last chunk and what follows it: the marker is set; the second notifier
 * plans nothing again (today the last chunk acks in its own script; once the ack
 * follows a WAIT, 4a, it re-reads the entry, finds the marker and only acks). */
static void
kill_after_the_last_chunk_plans_nothing_twice(void **state)
{
	assert_int_equal(plan_killed_at(*state, CHUNKS, 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(kill_between_two_chunks_replans_the_rest_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(kill_after_the_last_chunk_plans_nothing_twice,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
