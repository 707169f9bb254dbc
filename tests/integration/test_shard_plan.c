/*
 * test_shard_plan.c: a deal planned exactly once over 4 shards although the notifier
 * dies as under kill -9 in the middle of its plan (docs/sharding.md 4a; section 6,
 * step 3): between two chunks, and between the last chunk of every shard (the
 * markers) and the acks that follow. Each shard's reader (group s<K>) plans its
 * own subscribers. A second notifier under the same consumer name finishes the
 * work.
 * Counts texts per phone at the gateway simulator: nobody texted twice, every push
 * final, the deal's entry acked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "keys.h"
#include "test_promises.h"
#include "itshards.h"

/* Enough that every shard has more plan chunks (of 10) than a reader sends ahead of
 * their answers (4, INGEST_PLAN_INFLIGHT): killed at the first answer, no shard can
 * have sent its last chunk. */
#define N 400
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

/* Plan chunks of the deal in all: each shard's reader plans its own subscribers in
 * chunks of 10, at least one (its last, which sets its marker) even for none. */
static int
chunks_in_all(void)
{
	int per[64] = { 0 }, i, sum = 0;
	uint32_t k;

	for (i = 0; i < N; i++) {
		char id[16];

		snprintf(id, sizeof(id), "s-%d", i);
		per[keys_shard_of(id)]++;
	}
	for (k = 0; k < keys_shards(); k++)
		sum += per[k] == 0 ? 1 : (per[k] + 9) / 10;
	return sum;
}

/* Publishes a deal to N subscribers of 4 shards to a notifier that dies once plan
 * chunk kill_at (counted over every shard's reader) is answered; checks which
 * shards' markers it left, then starts it again and checks that every phone got at
 * most one text, every push ended and every shard's group acked the entry. Returns
 * the "event=deal_planned" lines of the second notifier's log (a shard planned
 * again), after checking that they are the shards whose marker was missing. */
static int
plan_killed_at(struct fx *f, int kill_at)
{
	char faults[32], entry[64];
	struct pt_tally t;
	int status, marked, planned;

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
	marked = it_deal_copies(f->rc, "kill-plan", "planned");
	/* At least the shard whose chunk was answered last has not acked it. */
	assert_true(pt_deals_pending_of(f->rc, "it-plan") > 0);
	printf("# killed at chunk %d of %d: %d of %u shards planned\n", kill_at,
	    chunks_in_all(), marked, keys_shards());

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
	assert_int_equal(it_deal_copies(f->rc, "kill-plan", "planned"),
	    (int)keys_shards());
	assert_int_equal(pt_deals_pending_of(f->rc, "it-plan"), 0);
	planned = (int)it_log_count(f->nt.proc.log, "event=deal_planned", NULL, NULL);
	assert_int_equal(planned, (int)keys_shards() - marked);
	return marked;
}

/* Between two chunks (the first answered, more sent): the second notifier plans
 * the shards without a marker once (the planset skips everyone the first chunks
 * wrote), and only those. */
static void
kill_between_two_chunks_replans_the_rest_once(void **state)
{
	assert_true(plan_killed_at(*state, 1) < (int)keys_shards());
}

/* After the last chunk of every shard: every marker is set, and the entry is acked
 * in a group only after its shard's plan (4a), so a kill in between leaves it
 * pending there; the second notifier re-reads it, finds the marker, acks it and
 * plans nothing again. */
static void
kill_after_the_last_chunk_plans_nothing_twice(void **state)
{
	assert_int_equal(plan_killed_at(*state, chunks_in_all()), (int)keys_shards());
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
