/*
 * test_keys.c: the names of shard-owned keys (notifier/keys.c, docs/sharding.md
 * section 2): exactly today's names in the single-instance layout; in the sharded
 * layout the same names behind the subscriber's shard tag, every key of one script
 * call on one slot, whatever '{' or '}' an id holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "keys.h"
#include "layout.h"
#include "shard.h"
#include "slot.h"

static int
slot(const char *key)
{
	return slot_of(key, strlen(key));
}

static int
sharded(void **state)
{
	struct err err;
	struct shard_layout *l = shard_layout_new(4, &err);

	(void)state;
	if (l == NULL)
		return -1;
	layout_set(l);
	return 0;
}

static int
single(void **state)
{
	(void)state;
	layout_clear();
	return 0;
}

static void
the_single_instance_layout_keeps_every_name(void **state)
{
	char k[KEYS_MAX];

	(void)state;
	assert_int_equal(keys_shards(), 1);
	assert_int_equal(keys_shard_of("s-1"), 0);
	assert_int_equal(keys_shard_key(0, KEYS_SUBSCRIBERS, k, sizeof(k)), 11);
	assert_string_equal(k, "subscribers");
	keys_shard_key(0, KEYS_SUB_CHANGES, k, sizeof(k));
	assert_string_equal(k, "subscribers:changes");
	keys_shard_key(0, KEYS_CONSENT_EPOCH, k, sizeof(k));
	assert_string_equal(k, "consent:epoch");
	keys_shard_key(0, KEYS_CONSENT_RECORDS, k, sizeof(k));
	assert_string_equal(k, "consent:records");
	keys_shard_key(0, KEYS_ENGAGEMENT_DECAY, k, sizeof(k));
	assert_string_equal(k, "engagement:decay");
	keys_consent(0, CH_SMS, k, sizeof(k));
	assert_string_equal(k, "consent:sms");
	keys_consent(0, CH_DM, k, sizeof(k));
	assert_string_equal(k, "consent:dm");
	keys_texts("s-1", k, sizeof(k));
	assert_string_equal(k, "texts:s-1");
	keys_camp("spring", "s-1", k, sizeof(k));
	assert_string_equal(k, "camp:spring:s-1");
	keys_capcamp("spring", "s-1", k, sizeof(k));
	assert_string_equal(k, "capcamp:spring:s-1");
	keys_capdeal("d-1", "s-1", k, sizeof(k));
	assert_string_equal(k, "capdeal:d-1:s-1");
	keys_clicked(0, "d-1:s-1:sms", k, sizeof(k));
	assert_string_equal(k, "clicked:d-1:s-1:sms");
	/* There is only shard 0. */
	assert_int_equal(keys_shard_key(1, KEYS_SUBSCRIBERS, k, sizeof(k)), -1);
	assert_string_equal(k, "");
}

static void
sharded_names_begin_with_the_subscribers_tag(void **state)
{
	char k[KEYS_MAX], want[KEYS_MAX];
	const char *tag;
	uint32_t s;

	(void)state;
	assert_int_equal(keys_shards(), 4);
	s = keys_shard_of("s-1");
	assert_int_equal(s, shard_of("s-1", 4));
	tag = shard_layout_tag(layout_current(), s);
	keys_shard_key(s, KEYS_SUBSCRIBERS, k, sizeof(k));
	snprintf(want, sizeof(want), "{%s}subscribers", tag);
	assert_string_equal(k, want);
	keys_texts("s-1", k, sizeof(k));
	snprintf(want, sizeof(want), "{%s}texts:s-1", tag);
	assert_string_equal(k, want);
	keys_consent(s, CH_DM, k, sizeof(k));
	snprintf(want, sizeof(want), "{%s}consent:dm", tag);
	assert_string_equal(k, want);
	assert_int_equal(keys_shard_key(4, KEYS_SUBSCRIBERS, k, sizeof(k)), -1);
	assert_int_equal(keys_texts("s-1", k, 8), -1);
	assert_string_equal(k, "");
}

/* ORDER SUB_KEYS (admin_sub_put.lua, admin_sub_del.lua, admin_sub_bulk.lua) and the
 * caps of admit.lua: every key of one call on the subscriber's slot. */
static void
every_key_of_a_subscriber_call_is_on_one_slot(void **state)
{
	static const char *const ids[] = {
		"s-1", "s-2", "{s0}", "}{", "a{b}c", "{", "}", "{s3.43003}x", "",
	};
	char k[KEYS_MAX];
	size_t i;
	int want;

	(void)state;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		uint32_t s = keys_shard_of(ids[i]), c;
		enum keys_name n;

		keys_shard_key(s, KEYS_SUBSCRIBERS, k, sizeof(k));
		want = slot(k);
		assert_int_equal(want, shard_target_slot(s, 4));
		for (n = 0; n < KEYS_NAMES; n++) {
			keys_shard_key(s, n, k, sizeof(k));
			assert_int_equal(slot(k), want);
		}
		for (c = 0; c < CH_COUNT; c++) {
			keys_consent(s, (enum channel)c, k, sizeof(k));
			assert_int_equal(slot(k), want);
		}
		keys_texts(ids[i], k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_camp("{c}", ids[i], k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_capcamp("c}", ids[i], k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_capdeal("{d:1}", ids[i], k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_clicked(s, "{x}", k, sizeof(k));
		assert_int_equal(slot(k), want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(the_single_instance_layout_keeps_every_name,
		    single, NULL),
		cmocka_unit_test_setup_teardown(sharded_names_begin_with_the_subscribers_tag,
		    sharded, single),
		cmocka_unit_test_setup_teardown(every_key_of_a_subscriber_call_is_on_one_slot,
		    sharded, single),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
