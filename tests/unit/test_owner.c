/*
 * test_owner.c: the pure parts of shard ownership (notifier/owner.c, docs/sharding.md
 * 4d): the shard list of cluster.shards, and the assignment that shares the shards
 * among the live notifiers (rendezvous hashing with bounded loads: S / n each, or
 * one more, and a member joining or leaving moves little besides its own).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "owner.h"

static void
shard_lists_parse_and_bad_ones_say_why(void **state)
{
	uint8_t want[64];
	char why[200];
	int k, n = 0;

	(void)state;
	assert_int_equal(owner_parse_shards("0-15,40", want, 64, why, sizeof(why)), 0);
	for (k = 0; k < 64; k++)
		n += want[k];
	assert_int_equal(n, 17);
	assert_true(want[0] && want[15] && want[40] && !want[16] && !want[39]);
	assert_int_equal(owner_parse_shards(" 3 , 1-2 ", want, 4, why, sizeof(why)), 0);
	assert_true(!want[0] && want[1] && want[2] && want[3]);

	assert_int_equal(owner_parse_shards("2-9", want, 4, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "shard 9 is past the last shard (3)"));
	assert_int_equal(owner_parse_shards("5-2", want, 64, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "backwards"));
	assert_int_equal(owner_parse_shards("", want, 64, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "names no shard"));
	assert_int_equal(owner_parse_shards("1,,2", want, 64, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "expected shard numbers"));
	assert_int_equal(owner_parse_shards("1-", want, 64, why, sizeof(why)), -1);
	assert_int_equal(owner_parse_shards("a", want, 64, why, sizeof(why)), -1);
	assert_int_equal(owner_parse_shards("-1", want, 64, why, sizeof(why)), -1);
	assert_int_equal(owner_parse_shards("99999999999999999999", want, 64, why,
	    sizeof(why)), -1);
}

/* 64 shards over n notifiers: each holds its share, or one less. */
static void
assignment_shares_exactly(void **state)
{
	const char *ids[] = { "notifier-a", "notifier-b", "notifier-c", "notifier-d",
		"notifier-e", "notifier-f", "notifier-g", "notifier-h" };
	int held[8], out[64], n, i, share, over;
	uint32_t k;

	(void)state;
	assert_int_equal(owner_assign(ids, 0, 64, out), 0);
	for (k = 0; k < 64; k++)
		assert_int_equal(out[k], -1);
	for (n = 1; n <= 8; n++) {
		memset(held, 0, sizeof(held));
		assert_int_equal(owner_assign(ids, (size_t)n, 64, out), 0);
		for (k = 0; k < 64; k++) {
			assert_true(out[k] >= 0 && out[k] < n);
			held[out[k]]++;
		}
		/* each its share, 64 / n, or one more; as many one more as 64 mod n */
		share = 64 / n;
		for (i = 0, over = 0; i < n; i++) {
			if (held[i] < share || held[i] > share + 1)
				fail_msg("%d notifiers: %s holds %d (share %d)", n, ids[i],
				    held[i], share);
			over += held[i] == share + 1;
		}
		assert_int_equal(over, 64 % n);
	}
	/* Shares over many counts of shards and members, not only 64. */
	for (n = 1; n <= 8; n++) {
		int s, out2[257], h[8];

		for (s = 1; s <= 257; s += 17) {
			memset(h, 0, sizeof(h));
			assert_int_equal(owner_assign(ids, (size_t)n, (uint32_t)s, out2), 0);
			for (k = 0; k < (uint32_t)s; k++)
				h[out2[k]]++;
			for (i = 0; i < n; i++)
				assert_true(h[i] == s / n || h[i] == s / n + 1);
		}
	}
	/* More notifiers than shards: some hold none, none holds two. */
	assert_int_equal(owner_assign(ids, 8, 4, out), 0);
	for (k = 0; k < 4; k++)
		for (i = 0; i < (int)k; i++)
			assert_int_not_equal(out[k], out[i]);
}

/* Shards that change hands when the membership changes: joining, a fifth notifier
 * takes its share with few moves among the others; leaving, the shards of the one
 * that left go to the others and few others move. */
static void
assignment_moves_little(void **state)
{
	const char *four[] = { "a", "b", "c", "d" };
	const char *five[] = { "a", "b", "c", "d", "e" };
	const char *three[] = { "a", "c", "d" };      /* "b" left */
	int before[256], joined[256], left[256], to_e = 0, others = 0, after_b = 0;
	uint32_t k;

	(void)state;
	assert_int_equal(owner_assign(four, 4, 256, before), 0);
	assert_int_equal(owner_assign(five, 5, 256, joined), 0);
	assert_int_equal(owner_assign(three, 3, 256, left), 0);
	for (k = 0; k < 256; k++) {
		if (joined[k] == 4)
			to_e++;
		else if (strcmp(five[joined[k]], four[before[k]]) != 0)
			others++;
		if (before[k] != 1 && strcmp(three[left[k]], four[before[k]]) != 0)
			after_b++;
	}
	printf("# 4 -> 5 notifiers: %d of 256 shards to the new one, %d between the "
	    "others; 4 -> 3: %d moved besides the leaver's\n", to_e, others, after_b);
	assert_true(to_e >= 256 - 52 * 4 && to_e <= 52);   /* its share */
	assert_true(others <= 256 / 10);
	assert_true(after_b <= 256 / 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shard_lists_parse_and_bad_ones_say_why),
		cmocka_unit_test(assignment_shares_exactly),
		cmocka_unit_test(assignment_moves_little),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
