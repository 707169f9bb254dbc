/*
 * test_shard.c: the shard function, the shards' tags and the stored layout
 * (notifier/shard.c, docs/sharding.md section 1).
 *
 * Tags are checked against the slot Redis would give a key carrying them (slot_of on
 * "{tag}..."), their spread against the contiguous slot ranges redis-cli's
 * `--cluster create` hands out, and the layout parser against every way a stored
 * layout can be wrong.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "shard.h"
#include "slot.h"

static int
key_slot(const char *tag, const char *name)
{
	char key[128];
	int n = snprintf(key, sizeof(key), "{%s}%s", tag, name);

	return slot_of(key, (size_t)n);
}

static void
the_shard_of_an_id_is_stable_and_even(void **state)
{
	static unsigned count[64];
	char id[32];
	unsigned i, min = ~0u, max = 0;

	(void)state;
	assert_int_equal(shard_of("anything", 1), 0);
	assert_int_equal(shard_of("u1", 64), shard_of("u1", 64));
	assert_int_equal(shard_of("", 64), shard_of("", 64));
	for (i = 0; i < 640000; i++) {
		snprintf(id, sizeof(id), "u%u", i);
		count[shard_of(id, 64)]++;
	}
	for (i = 0; i < 64; i++) {
		min = count[i] < min ? count[i] : min;
		max = count[i] > max ? count[i] : max;
	}
	/* 10,000 a shard on average; 5 standard deviations are 500 */
	assert_true(min > 9500);
	assert_true(max < 10500);
	/* sequential ids do not fall into neighbouring shards */
	assert_int_not_equal(shard_of("u1", 1024), shard_of("u2", 1024) + 1);
}

static void
shard_values_are_pinned(void **state)
{
	(void)state;
	/* fmix64(fnv1a64(id)) mod S, computed apart from this code (docs/sharding.md 1.2);
	 * kept: a change of function would move every subscriber */
	assert_int_equal(shard_of("u1", 64), 49);
	assert_int_equal(shard_of("s-1", 64), 24);
	assert_int_equal(shard_of("+15125550100", 1024), 357);
}

static void
tags_hash_to_the_middle_of_their_section(void **state)
{
	static const uint32_t sizes[] = { 1, 2, 3, 4, 7, 16, 64, 100, 1024 };
	char tag[SHARD_TAG_MAX];
	size_t k;
	uint32_t i;

	(void)state;
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint32_t s = sizes[k];

		for (i = 0; i < s; i++) {
			int target = shard_target_slot(i, s);

			assert_true(shard_tag_find(i, s, tag, sizeof(tag)) > 0);
			assert_int_equal(key_slot(tag, "subscribers"), target);
			assert_int_equal(key_slot(tag, "push:d-1}{x"), target);
			assert_true(target >= (int)((uint64_t)i * SLOT_COUNT / s));
			assert_true(target < (int)((uint64_t)(i + 1) * SLOT_COUNT / s));
		}
	}
	assert_int_equal(shard_target_slot(0, 1), 8192);
	assert_int_equal(shard_tag_find(4, 4, tag, sizeof(tag)), -1);
	assert_int_equal(shard_tag_find(0, 0, tag, sizeof(tag)), -1);
	assert_int_equal(shard_tag_find(0, SHARD_MAX + 1, tag, sizeof(tag)), -1);
	assert_int_equal(shard_tag_find(0, 4, tag, 3), -1);
	assert_string_equal(tag, "");
}

static void
tags_of_small_layouts_are_pinned(void **state)
{
	struct shard_layout *l;
	char tags[256];
	struct err e;

	(void)state;
	/* docs/sharding.md section 1.3 names these */
	assert_non_null(l = shard_layout_new(1, &e));
	assert_true(shard_layout_tags(l, tags, sizeof(tags)) > 0);
	assert_string_equal(tags, "s0.41191");
	shard_layout_free(l);
	assert_non_null(l = shard_layout_new(4, &e));
	assert_true(shard_layout_tags(l, tags, sizeof(tags)) > 0);
	assert_string_equal(tags, "s0.108217 s1.23915 s2.6689 s3.43003");
	assert_int_equal(shard_layout_tags(l, tags, 10), -1);
	assert_string_equal(tags, "");
	shard_layout_free(l);
}

/* The primaries' slot ranges as `redis-cli --cluster create` hands them out: slots
 * per node as a float, each range ending at the rounded cursor. */
static void
cluster_ranges(int masters, int *last)
{
	double per = (double)SLOT_COUNT / masters, cursor = 0;
	long first = 0, l;
	int m;

	for (m = 0; m < masters; m++) {
		l = lround(cursor + per - 1);
		if (l > SLOT_COUNT || m == masters - 1)
			l = SLOT_COUNT - 1;
		if (l < first)
			l = first;
		last[m] = (int)l;
		first = l + 1;
		cursor += per;
	}
}

static void
shards_spread_evenly_over_primaries(void **state)
{
	static const uint32_t sizes[] = { 16, 64, 256 };
	int last[16], per[16];
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint32_t s = sizes[k], i;
		int masters;

		for (masters = 1; masters <= 16; masters++) {
			double mean = (double)s / masters, busiest;
			int m, max = 0;

			cluster_ranges(masters, last);
			memset(per, 0, sizeof(per));
			for (i = 0; i < s; i++) {
				int slot = shard_target_slot(i, s);

				for (m = 0; slot > last[m]; m++)
					;
				per[m]++;
			}
			for (m = 0; m < masters; m++)
				max = per[m] > max ? per[m] : max;
			busiest = max / mean;
			assert_true(busiest <= ceil(mean) / mean + 1e-9);
			if (s >= 5u * (uint32_t)masters)
				assert_true(busiest <= 1.2);
		}
	}
}

static void
a_layout_survives_its_stored_form(void **state)
{
	struct shard_layout *l, *p;
	char tags[SHARD_MAX * SHARD_TAG_MAX], key[64];
	struct err e;
	uint32_t i;
	int n;

	(void)state;
	assert_null(shard_layout_new(0, &e));
	assert_int_equal(e.kind, ERR_INPUT);
	assert_null(shard_layout_new(SHARD_MAX + 1, &e));
	assert_non_null(l = shard_layout_new(64, &e));
	assert_true(shard_layout_tags(l, tags, sizeof(tags)) > 0);
	assert_non_null(p = shard_layout_parse("1", "64", "fnv1a64-fmix64", tags, &e));
	assert_int_equal(shard_layout_count(p), 64);
	for (i = 0; i < 64; i++)
		assert_string_equal(shard_layout_tag(p, i), shard_layout_tag(l, i));
	assert_null(shard_layout_tag(p, 64));
	n = shard_key(p, 17, "subscribers", key, sizeof(key));
	assert_int_equal(n, (int)strlen(key));
	assert_true(key[0] == '{' && strstr(key, "}subscribers") != NULL);
	assert_int_equal(slot_of(key, strlen(key)), shard_target_slot(17, 64));
	assert_int_equal(shard_key(p, 64, "x", key, sizeof(key)), -1);
	assert_int_equal(shard_key(p, 1, "a-long-name", key, 8), -1);
	assert_string_equal(key, "");
	shard_layout_free(p);
	shard_layout_free(l);
}

static void
a_bad_stored_layout_is_refused_naming_the_field(void **state)
{
	static const struct {
		const char *version, *shards, *hash, *tags, *field;
	} bad[] = {
		{ NULL, "1", "fnv1a64-fmix64", "s0.41191", "version" },
		{ "2", "1", "fnv1a64-fmix64", "s0.41191", "version" },
		{ "1", "1", "crc32", "s0.41191", "hash" },
		{ "1", "1", NULL, "s0.41191", "hash" },
		{ "1", "0", "fnv1a64-fmix64", "", "shards" },
		{ "1", "1025", "fnv1a64-fmix64", "s0.41191", "shards" },
		{ "1", "01", "fnv1a64-fmix64", "s0.41191", "shards" },
		{ "1", "1x", "fnv1a64-fmix64", "s0.41191", "shards" },
		{ "1", NULL, "fnv1a64-fmix64", "s0.41191", "shards" },
		{ "1", "1", "fnv1a64-fmix64", "s0", "tags" },           /* wrong slot */
		{ "1", "1", "fnv1a64-fmix64", "s0.041191", "tags" },    /* leading zero */
		{ "1", "1", "fnv1a64-fmix64", "s1.41191", "tags" },     /* another shard's */
		{ "1", "1", "fnv1a64-fmix64", "", "tags" },
		{ "1", "1", "fnv1a64-fmix64", NULL, "tags" },
		{ "1", "1", "fnv1a64-fmix64", "s0.41191 ", "tags" },    /* one too many */
		{ "1", "4", "fnv1a64-fmix64", "s0.108217 s1.23915 s2.6689", "tags" },
		{ "1", "4", "fnv1a64-fmix64", "s0.108217  s1.23915 s2.6689 s3.43003", "tags" },
		{ "1", "4", "fnv1a64-fmix64", "s0.108217 s2.6689 s1.23915 s3.43003", "tags" },
	};
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		if (shard_layout_parse(bad[i].version, bad[i].shards, bad[i].hash, bad[i].tags,
		    &e) != NULL)
			fail_msg("case %zu accepted", i);
		assert_int_equal(e.kind, ERR_INPUT);
		assert_string_equal(e.field, bad[i].field);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_shard_of_an_id_is_stable_and_even),
		cmocka_unit_test(shard_values_are_pinned),
		cmocka_unit_test(tags_hash_to_the_middle_of_their_section),
		cmocka_unit_test(tags_of_small_layouts_are_pinned),
		cmocka_unit_test(shards_spread_evenly_over_primaries),
		cmocka_unit_test(a_layout_survives_its_stored_form),
		cmocka_unit_test(a_bad_stored_layout_is_refused_naming_the_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
