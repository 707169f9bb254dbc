/*
 * test_strcopy.c: the printf-free string copies of the push path (include/strcopy.h).
 *
 * Each gives what snprintf with "%s" gives, byte for byte and in its return value:
 * whole when it fits, cut to size - 1 bytes and still terminated when not, nothing
 * written for size 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "strcopy.h"

static void
copies_are_what_snprintf_gives(void **state)
{
	static const char *const src[] = { "", "a", "abc", "abcdefgh", "abcdefghijklmnop" };
	char got[16], want[16];
	size_t i, size;

	(void)state;
	for (i = 0; i < sizeof(src) / sizeof(src[0]); i++)
		for (size = 1; size <= sizeof(got); size++) {
			memset(got, 'x', sizeof(got));
			memset(want, 'x', sizeof(want));
			assert_int_equal(str_copy(got, size, src[i]),
			    snprintf(want, size, "%s", src[i]));
			assert_memory_equal(got, want, sizeof(got));
			memset(got, 'x', sizeof(got));
			memset(want, 'x', sizeof(want));
			assert_int_equal(str_join3(got, size, src[i], ":", src[i]),
			    snprintf(want, size, "%s:%s", src[i], src[i]));
			assert_memory_equal(got, want, sizeof(got));
		}
	/* size 0: nothing written */
	got[0] = 'x';
	assert_int_equal(str_copy(got, 0, "abc"), 3);
	assert_int_equal(got[0], 'x');
	/* appending to a full buffer keeps it whole */
	str_copy(got, 4, "abc");
	assert_int_equal(str_append(got, 4, "def"), 3);
	assert_string_equal(got, "abc");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(copies_are_what_snprintf_gives),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
