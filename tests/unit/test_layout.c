/*
 * test_layout.c: the layout key as the notifier and dealpushctl read it at start-up
 * (notifier/layout.c, docs/sharding.md section 1.1): the single-instance layout when
 * no field is stored, the sharded one when the layout is whole and agrees with the
 * config, and a refusal naming the field for everything else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "err.h"
#include "fake_reply.h"
#include "layout.h"
#include "shard.h"

#define TAGS4 "s0.108217 s1.23915 s2.6689 s3.43003"

static redisReply *
nil(void)
{
	return rep(REDIS_REPLY_NIL);
}

/* A field's reply: NULL = nil. */
static redisReply *
field(const char *v)
{
	return v != NULL ? str(v) : nil();
}

/* The HMGET reply of a stored layout (ORDER LAYOUT_FIELDS). */
static redisReply *
stored(const char *version, const char *shards, const char *hash, const char *tags,
    const char *created)
{
	return arr(LAYOUT_NFIELDS, field(version), field(shards), field(hash), field(tags),
	    field(created));
}

/* Runs layout_from_reply on r (freed) and answers the field it refused, or "" when
 * it accepted; *count gets the shard count (0: single-instance layout). */
static const char *
check(redisReply *r, long config_shards, uint32_t *count)
{
	static struct err err;
	struct shard_layout *l = (struct shard_layout *)&err;
	int rc;

	err_clear(&err);
	rc = layout_from_reply(r, config_shards, &l, &err);
	freeReplyObject(r);
	*count = l != NULL ? shard_layout_count(l) : 0;
	if (rc < 0) {
		assert_null(l);
		assert_int_equal(err.kind, ERR_INPUT);
		assert_true(err.msg[0] != '\0');
		return err.field;
	}
	shard_layout_free(l);
	return "";
}

static void
no_layout_key_is_the_single_instance_layout(void **state)
{
	uint32_t n;

	(void)state;
	assert_string_equal(check(stored(NULL, NULL, NULL, NULL, NULL), 0, &n), "");
	assert_int_equal(n, 0);
}

static void
a_whole_layout_is_accepted_with_or_without_the_config_count(void **state)
{
	uint32_t n;

	(void)state;
	assert_string_equal(check(stored("1", "4", SHARD_HASH_NAME, TAGS4, "1796428800"),
	    0, &n), "");
	assert_int_equal(n, 4);
	assert_string_equal(check(stored("1", "4", SHARD_HASH_NAME, TAGS4, "1796428800"),
	    4, &n), "");
	assert_int_equal(n, 4);
}

static void
a_config_count_other_than_the_stored_one_is_refused(void **state)
{
	uint32_t n;

	(void)state;
	assert_string_equal(check(stored("1", "4", SHARD_HASH_NAME, TAGS4, "1"), 8, &n),
	    "shards");
	/* A count configured for a Redis that holds no layout: the data would be read
	 * in the wrong layout. */
	assert_string_equal(check(stored(NULL, NULL, NULL, NULL, NULL), 4, &n), "shards");
}

static void
a_bad_or_half_written_layout_is_refused_naming_the_field(void **state)
{
	uint32_t n;

	(void)state;
	assert_string_equal(check(stored("2", "4", SHARD_HASH_NAME, TAGS4, "1"), 0, &n),
	    "version");
	assert_string_equal(check(stored(NULL, "4", SHARD_HASH_NAME, TAGS4, "1"), 0, &n),
	    "version");
	/* A migration writes the layout with a pending version first. */
	assert_string_equal(check(stored("0-pending", "4", SHARD_HASH_NAME, TAGS4, "1"), 0,
	    &n), "version");
	assert_string_equal(check(stored("1", "5", SHARD_HASH_NAME, TAGS4, "1"), 0, &n),
	    "tags");
	assert_string_equal(check(stored("1", "x", SHARD_HASH_NAME, TAGS4, "1"), 0, &n),
	    "shards");
	assert_string_equal(check(stored("1", "4", "crc16", TAGS4, "1"), 0, &n), "hash");
	assert_string_equal(check(stored("1", "4", SHARD_HASH_NAME, "s0 s1 s2 s3", "1"), 0,
	    &n), "tags");
	assert_string_equal(check(stored("1", "4", SHARD_HASH_NAME, TAGS4, NULL), 0, &n),
	    "created");
}

static void
a_reply_that_is_not_the_layout_hash_is_refused(void **state)
{
	uint32_t n;

	(void)state;
	/* WRONGTYPE: the caller passes no reply. */
	assert_string_equal(check(NULL, 0, &n), "layout");
	assert_string_equal(check(arr(2, str("1"), str("4")), 0, &n), "layout");
	assert_string_equal(check(arr(LAYOUT_NFIELDS, str("1"), num(4), nil(), nil(),
	    nil()), 0, &n), "shards");
}

static void
the_layout_in_force_is_set_once_and_freed(void **state)
{
	struct shard_layout *l;
	struct err err;

	(void)state;
	assert_null(layout_current());
	l = shard_layout_new(4, &err);
	assert_non_null(l);
	layout_set(l);
	assert_ptr_equal(layout_current(), l);
	layout_clear();
	assert_null(layout_current());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_layout_key_is_the_single_instance_layout),
		cmocka_unit_test(a_whole_layout_is_accepted_with_or_without_the_config_count),
		cmocka_unit_test(a_config_count_other_than_the_stored_one_is_refused),
		cmocka_unit_test(a_bad_or_half_written_layout_is_refused_naming_the_field),
		cmocka_unit_test(a_reply_that_is_not_the_layout_hash_is_refused),
		cmocka_unit_test(the_layout_in_force_is_set_once_and_freed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
