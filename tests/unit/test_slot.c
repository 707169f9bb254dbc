/*
 * test_slot.c: key → hash slot as the Redis Cluster specification defines it
 * (notifier/slot.c).
 *
 * CRC16/XMODEM check values, slots Redis itself gives (CLUSTER KEYSLOT), and the
 * hash tag rule's cases from the specification: the first '{' and the first '}'
 * after it, an empty tag hashing the whole key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "slot.h"

static int
slot_s(const char *key)
{
	return slot_of(key, strlen(key));
}

static void
crc16_matches_the_xmodem_check_values(void **state)
{
	(void)state;
	assert_int_equal(slot_crc16("123456789", 9), 0x31C3);
	assert_int_equal(slot_crc16("", 0), 0);
	assert_int_equal(slot_crc16(NULL, 0), 0);
	assert_int_equal(slot_crc16("A", 1), 0x58E5);
}

static void
slots_match_what_redis_computes(void **state)
{
	(void)state;
	/* Values from CLUSTER KEYSLOT on redis-server 7.0. */
	assert_int_equal(slot_s("123456789"), 12739);
	assert_int_equal(slot_s("foo"), 12182);
	assert_int_equal(slot_s("bar"), 5061);
	assert_int_equal(slot_s("hello"), 866);
	assert_int_equal(slot_s("somekey"), 11058);
	assert_int_equal(slot_s(""), 0);
}

static void
hash_tag_rules_follow_the_specification(void **state)
{
	(void)state;
	/* Only "user1000" is hashed. */
	assert_int_equal(slot_s("{user1000}.following"), slot_s("user1000"));
	assert_int_equal(slot_s("{user1000}.followers"), slot_s("{user1000}.following"));
	/* The first '{' has an empty tag: the whole key is hashed. */
	assert_int_equal(slot_s("foo{}{bar}"),
	    slot_crc16("foo{}{bar}", 10) & (SLOT_COUNT - 1));
	assert_int_not_equal(slot_s("foo{}{bar}"), slot_s("bar"));
	/* The tag is "{bar": from the first '{' to the first '}'. */
	assert_int_equal(slot_s("foo{{bar}}zap"), slot_s("{bar"));
	/* Only the first tag counts. */
	assert_int_equal(slot_s("foo{bar}{zap}"), slot_s("bar"));
	/* No '}' after the '{': the whole key. */
	assert_int_equal(slot_s("foo{bar"), slot_crc16("foo{bar", 7) & (SLOT_COUNT - 1));
	assert_int_equal(slot_s("}foo{"), slot_crc16("}foo{", 5) & (SLOT_COUNT - 1));
}

static void
binary_keys_hash_every_byte(void **state)
{
	static const char k1[] = { 'a', '\0', 'b' };
	static const char k2[] = { 'a', '\0', 'c' };
	static const char tag[] = { 'x', '{', 'a', '\0', '}', 'y' };

	(void)state;
	assert_int_not_equal(slot_of(k1, 3), slot_of(k2, 3));
	assert_int_equal(slot_of(tag, 6), slot_crc16("a\0", 2) & (SLOT_COUNT - 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc16_matches_the_xmodem_check_values),
		cmocka_unit_test(slots_match_what_redis_computes),
		cmocka_unit_test(hash_tag_rules_follow_the_specification),
		cmocka_unit_test(binary_keys_hash_every_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
