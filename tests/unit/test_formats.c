/*
 * test_formats.c: the stored format version (formats.c): what a reader makes of an
 * entry of version 1 (no field, as release 1.0.0 wrote it), 2, and 3 (newer than this
 * release reads: refused, never taken for 1); what a writer adds in each version;
 * the announcement a notifier leaves in dealpush:formats.
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
#include "formats.h"
#include "keys.h"
#include "scripts.h"

/* A pushes job as plan.lua writes it, with extra field/value pairs after it. */
static redisReply *
job(const char *k1, const char *v1, const char *k2, const char *v2)
{
	redisReply *r = arr(10, str("deal"), str("d-1"), str("entry"), str("1-0"),
	    str("exp"), str("1800000000"), str("camp"), str(""),
	    str("r"), str("sms\ts-1\t+15125550100\tr1\thello"));

	if (k1 != NULL) {
		r->element = realloc(r->element, (r->elements + 4) * sizeof(*r->element));
		assert_non_null(r->element);
		r->element[r->elements++] = str(k1);
		r->element[r->elements++] = str(v1);
		if (k2 != NULL) {
			r->element[r->elements++] = str(k2);
			r->element[r->elements++] = str(v2);
		}
	}
	return r;
}

static void
an_entry_without_a_version_is_version_1(void **state)
{
	enum formats_verdict v = FORMATS_BAD;
	redisReply *r = job(NULL, NULL, NULL, NULL);

	(void)state;
	assert_int_equal(formats_of_entry(r, &v), 1);
	assert_int_equal(v, FORMATS_OK);
	freeReplyObject(r);
	/* A subscribers:changes entry of 1.0.0. */
	r = arr(4, str("id"), str("s-1"), str("op"), str("put"));
	assert_int_equal(formats_of_entry(r, &v), 1);
	assert_int_equal(v, FORMATS_OK);
	freeReplyObject(r);
}

static void
an_entry_of_version_2_is_read(void **state)
{
	enum formats_verdict v = FORMATS_BAD;
	redisReply *r = job("fv", "2", NULL, NULL);

	(void)state;
	assert_int_equal(formats_of_entry(r, &v), 2);
	assert_int_equal(v, FORMATS_OK);
	freeReplyObject(r);
	r = job("fv", "1", NULL, NULL);
	assert_int_equal(formats_of_entry(r, &v), 1);
	assert_int_equal(v, FORMATS_OK);
	freeReplyObject(r);
}

static void
an_entry_of_version_3_is_refused_as_too_new(void **state)
{
	enum formats_verdict v = FORMATS_OK;
	redisReply *r = job("fv", "3", NULL, NULL);

	(void)state;
	assert_int_equal(formats_of_entry(r, &v), 3);
	assert_int_equal(v, FORMATS_TOO_NEW);
	freeReplyObject(r);
	r = job("fv", "999", NULL, NULL);
	assert_int_equal(formats_of_entry(r, &v), 999);
	assert_int_equal(v, FORMATS_TOO_NEW);
	freeReplyObject(r);
}

static void
a_version_that_is_not_one_makes_the_entry_malformed(void **state)
{
	static const char *const bad[] = { "", "0", "02", "-2", "+2", " 2", "2 ", "x",
	    "1000", "2.0" };
	enum formats_verdict v = FORMATS_OK;
	redisReply *r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = job("fv", bad[i], NULL, NULL);
		assert_int_equal(formats_of_entry(r, &v), -1);
		assert_int_equal(v, FORMATS_BAD);
		freeReplyObject(r);
	}
	/* Two versions: two readers could take two different ones. */
	r = job("fv", "2", "fv", "2");
	assert_int_equal(formats_of_entry(r, &v), -1);
	assert_int_equal(v, FORMATS_BAD);
	freeReplyObject(r);
	/* Not a string. */
	r = arr(2, str("fv"), num(2));
	assert_int_equal(formats_of_entry(r, &v), -1);
	freeReplyObject(r);
	assert_int_equal(formats_of_entry(NULL, &v), -1);
}

static void
format_1_writes_no_field_and_format_2_writes_fv(void **state)
{
	const char *name = NULL, *value = NULL;

	(void)state;
	formats_set_write(1);
	assert_int_equal(formats_write(), 1);
	assert_int_equal(formats_entry_fields(&name, &value), 0);
	assert_null(name);
	formats_set_write(2);
	assert_int_equal(formats_entry_fields(&name, &value), 2);
	assert_string_equal(name, "fv");
	assert_string_equal(value, "2");
	/* Never past what this release reads. */
	formats_set_write(3);
	assert_int_equal(formats_write(), FORMATS_READ_MAX);
	formats_set_write(0);
	assert_int_equal(formats_write(), 1);
}

static void
each_script_carries_the_prelude_of_the_version_written(void **state)
{
	const char *s;

	(void)state;
	assert_int_equal(scripts_init(), 0);
	formats_set_write(1);
	s = script_source("dead");
	assert_non_null(s);
	assert_true(strncmp(s, "local FMT_N, FMT = 1, {} ", 25) == 0);
	/* One line: the file's line numbers stay those of errors. */
	assert_ptr_equal(strchr(s, '\n'), strchr(s + 25, '\n'));
	assert_non_null(strstr(s, "unpack(FMT)"));
	formats_set_write(2);
	s = script_source("dead");
	assert_true(strncmp(s, "local FMT_N, FMT = 2, {'fv', '2'} ", 34) == 0);
	formats_set_write(1);
	assert_null(formats_lua_prelude(0));
	assert_null(formats_lua_prelude(FORMATS_READ_MAX + 1));
}

static void
an_announcement_is_parsed_and_a_bad_one_refused(void **state)
{
	char rel[FORMATS_RELEASE_MAX + 1];
	long long until = 0;
	int reads = 0;

	(void)state;
	assert_int_equal(formats_reader_parse("2\t1.1.0\t1796428800123", &reads, rel,
	    sizeof(rel), &until), 0);
	assert_int_equal(reads, 2);
	assert_string_equal(rel, "1.1.0");
	assert_int_equal(until, 1796428800123LL);
	assert_int_equal(formats_reader_parse("2\t1.1.0", &reads, rel, sizeof(rel),
	    &until), -1);
	assert_int_equal(formats_reader_parse("x\t1.1.0\t1", &reads, rel, sizeof(rel),
	    &until), -1);
	assert_int_equal(formats_reader_parse("2\t\t1", &reads, rel, sizeof(rel),
	    &until), -1);
	assert_int_equal(formats_reader_parse("2\t1.1.0\t-1", &reads, rel, sizeof(rel),
	    &until), -1);
	assert_int_equal(formats_reader_parse("2\t1.1.0\t99999999999999999999", &reads,
	    rel, sizeof(rel), &until), -1);
	assert_int_equal(formats_reader_parse(NULL, &reads, rel, sizeof(rel), &until), -1);
}

static void
the_formats_key_is_global_in_every_layout(void **state)
{
	char k[KEYS_SHARD_MAX];

	(void)state;
	assert_int_equal(keys_formats(k, sizeof(k)), 16);
	assert_string_equal(k, "dealpush:formats");
	assert_int_equal(keys_formats(k, 4), -1);
	assert_string_equal(k, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_entry_without_a_version_is_version_1),
		cmocka_unit_test(an_entry_of_version_2_is_read),
		cmocka_unit_test(an_entry_of_version_3_is_refused_as_too_new),
		cmocka_unit_test(a_version_that_is_not_one_makes_the_entry_malformed),
		cmocka_unit_test(format_1_writes_no_field_and_format_2_writes_fv),
		cmocka_unit_test(each_script_carries_the_prelude_of_the_version_written),
		cmocka_unit_test(an_announcement_is_parsed_and_a_bad_one_refused),
		cmocka_unit_test(the_formats_key_is_global_in_every_layout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
