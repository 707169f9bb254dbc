/*
 * test_streampos.c: stream ids and XINFO STREAM fields (notifier/streampos.c).
 *
 * Ids compare by number, not by text; anything that is not "<ms>-<seq>" in range is
 * refused; a reply's field of the wrong type reads as absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "fake_reply.h"

#include "streampos.h"

static void
ids_compare_by_number(void **state)
{
	unsigned long long ms, seq;

	(void)state;
	assert_int_equal(streampos_parse("1700000000000-12", &ms, &seq), 0);
	assert_true(ms == 1700000000000ULL && seq == 12);
	assert_true(streampos_cmp("9-0", "10-0") < 0);
	assert_true(streampos_cmp("10-2", "10-10") < 0);
	assert_true(streampos_cmp("10-10", "10-2") > 0);
	assert_int_equal(streampos_cmp("0-0", "0-0"), 0);
	assert_int_equal(streampos_cmp("18446744073709551615-18446744073709551615",
	    "18446744073709551615-18446744073709551615"), 0);
}

static void
what_is_not_an_id_is_refused(void **state)
{
	static const char *const bad[] = { "", "-", "1", "1-", "-1", "1-x", "1-2x", "x-1",
		" 1-2", "1 -2", "1--2", "1-+2", "+1-2", "18446744073709551616-0",
		"0-18446744073709551616" };
	unsigned long long ms, seq;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (streampos_parse(bad[i], &ms, &seq) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(streampos_parse(NULL, &ms, &seq), -1);
	assert_int_equal(streampos_cmp("1-0", "nope"), -2);
	assert_int_equal(streampos_cmp("nope", "1-0"), -2);
}

/* length 2, entries-added "7" (a string, not an integer), last-generated-id,
 * first-entry [id, []], and an odd trailing key without a value. */
static void
xinfo_fields_are_read_by_type(void **state)
{
	redisReply *r = rep(REDIS_REPLY_ARRAY), *entry, *first;
	const redisReply *got;
	long long v;

	(void)state;
	entry = rep(REDIS_REPLY_ARRAY);
	entry->elements = 2;
	entry->element = calloc(2, sizeof(*entry->element));
	entry->element[0] = str("5-1");
	entry->element[1] = rep(REDIS_REPLY_ARRAY);
	r->elements = 9;
	r->element = calloc(9, sizeof(*r->element));
	r->element[0] = str("length");
	r->element[1] = num(2);
	r->element[2] = str("entries-added");
	r->element[3] = str("7");
	r->element[4] = str("last-generated-id");
	r->element[5] = str("6-0");
	r->element[6] = str("first-entry");
	r->element[7] = entry;
	r->element[8] = str("max-deleted-entry-id");
	assert_int_equal(streampos_xinfo_int(r, "length", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(streampos_xinfo_int(r, "entries-added", &v), -1);
	assert_string_equal(streampos_xinfo_str(r, "last-generated-id", NULL), "6-0");
	assert_null(streampos_xinfo_str(r, "length", NULL));
	assert_null(streampos_xinfo_str(r, "first-entry", &got));
	assert_ptr_equal(got, entry);
	assert_null(streampos_xinfo_str(r, "max-deleted-entry-id", &got));
	assert_null(got);
	first = rep(REDIS_REPLY_ERROR);
	first->str = strdup("ERR no such key");
	assert_int_equal(streampos_no_such_key(first), 1);
	assert_int_equal(streampos_no_such_key(r), 0);
	freeReplyObject(first);
	freeReplyObject(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ids_compare_by_number),
		cmocka_unit_test(what_is_not_an_id_is_refused),
		cmocka_unit_test(xinfo_fields_are_read_by_type),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
