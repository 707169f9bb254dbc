/*
 * test_intern.c: the shared string table (notifier/intern.c).
 *
 * One copy per distinct string, counted references, the entry freed with its last
 * reference and the table empty again when every reference is dropped (so that
 * hostile input cannot make it grow past what is in use), lookups still right after
 * deletions in the middle of probe clusters and after growing and shrinking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "intern.h"

static void
same_bytes_give_the_same_copy_with_one_more_reference(void **state)
{
	const char *a, *b, *c;

	(void)state;
	assert_int_equal(intern_count(), 0);
	a = intern_get("america/chicago", 15);
	b = intern_get("america/chicago and more", 15);
	c = intern_get("europe/berlin", 13);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_string_equal(b, "america/chicago");
	assert_int_equal(intern_refs(a), 2);
	assert_int_equal(intern_refs(c), 1);
	assert_int_equal(intern_count(), 2);
	intern_put(a);
	assert_int_equal(intern_refs(b), 1);
	assert_int_equal(intern_count(), 2);
	intern_put(b);
	intern_put(c);
	assert_int_equal(intern_count(), 0);
	assert_int_equal(intern_bytes(), 0);
	intern_put(NULL);
}

static void
a_prefix_is_a_different_string(void **state)
{
	const char *a = intern_get("ab", 2), *b = intern_get("abc", 3),
	    *e = intern_get("", 0);

	(void)state;
	assert_ptr_not_equal(a, b);
	assert_string_equal(a, "ab");
	assert_string_equal(b, "abc");
	assert_string_equal(e, "");
	assert_int_equal(intern_count(), 3);
	intern_put(a);
	intern_put(b);
	intern_put(e);
	assert_int_equal(intern_count(), 0);
}

#define MANY 20000

/* Many distinct strings (one per hostile subscriber, say): every lookup after
 * deletions in the middle of clusters still finds the one copy, and dropping every
 * reference leaves nothing behind. */
static void
table_grows_and_empties_and_lookups_survive_deletions(void **state)
{
	static const char *p[MANY];
	char buf[32];
	size_t i, peak;

	(void)state;
	for (i = 0; i < MANY; i++) {
		int n = snprintf(buf, sizeof(buf), "kw-%zu", i);

		assert_non_null(p[i] = intern_get(buf, (size_t)n));
	}
	assert_int_equal(intern_count(), MANY);
	peak = intern_bytes();
	for (i = 0; i < MANY; i += 2)
		intern_put(p[i]);
	assert_int_equal(intern_count(), MANY / 2);
	for (i = 1; i < MANY; i += 2) {
		int n = snprintf(buf, sizeof(buf), "kw-%zu", i);
		const char *q = intern_get(buf, (size_t)n);

		if (q != p[i])
			fail_msg("kw-%zu: a second copy after deletions", i);
		assert_int_equal(intern_refs(q), 2);
		intern_put(q);
	}
	for (i = 1; i < MANY; i += 4)
		intern_put(p[i]);
	assert_true(intern_bytes() < peak);
	for (i = 3; i < MANY; i += 4) {
		int n = snprintf(buf, sizeof(buf), "kw-%zu", i);
		const char *q = intern_get(buf, (size_t)n);

		assert_ptr_equal(q, p[i]);
		intern_put(q);
		intern_put(p[i]);
	}
	assert_int_equal(intern_count(), 0);
	assert_int_equal(intern_bytes(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_bytes_give_the_same_copy_with_one_more_reference),
		cmocka_unit_test(a_prefix_is_a_different_string),
		cmocka_unit_test(table_grows_and_empties_and_lookups_survive_deletions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
