/*
 * test_shortlink.c: short link codes (notifier/shortlink.c): 12 base62 characters,
 * the shard read back, forged, mistyped and other-key codes refused without a
 * lookup, the random part really random (distinct codes, every character used).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shortlink.h"

static const unsigned char KEY[] = "0123456789abcdef-short-link-key";
static const unsigned char KEY2[] = "0123456789abcdef-another-key!!!";
#define KLEN (sizeof(KEY) - 1)

/* splitmix64: a fixed sequence standing for the OS's random bytes */
static uint64_t
next_rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static void
codes_are_base62_and_name_their_shard(void **state)
{
	static const uint32_t shards[] = { 1, 4, 64, 1000, 1024 };
	char code[SHORTLINK_LEN + 1];
	uint64_t s = 1;
	uint32_t got;
	size_t i, j, k;

	(void)state;
	for (i = 0; i < sizeof(shards) / sizeof(shards[0]); i++)
		for (j = 0; j < 500; j++) {
			uint32_t want = (uint32_t)(j % shards[i]);
			uint64_t r = j == 0 ? 0 : j == 1 ? UINT64_MAX : next_rnd(&s);

			assert_int_equal(shortlink_make(KEY, KLEN, r, want, shards[i], code), 0);
			assert_int_equal(strlen(code), SHORTLINK_LEN);
			for (k = 0; k < SHORTLINK_LEN; k++)
				assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz", code[k]));
			assert_int_equal(shortlink_check(KEY, KLEN, code, SHORTLINK_LEN,
			    shards[i], &got), 1);
			assert_int_equal(got, want);
		}
}

static void
forged_and_mistyped_codes_fail_the_check(void **state)
{
	char code[SHORTLINK_LEN + 1], bad[SHORTLINK_LEN + 2];
	uint64_t s = 7;
	size_t i, pass = 0, tries = 0;
	int c;

	(void)state;
	assert_int_equal(shortlink_make(KEY, KLEN, next_rnd(&s), 3, 64, code), 0);
	/* every one-character change is refused (the check or the 71-bit bound) */
	for (i = 0; i < SHORTLINK_LEN; i++)
		for (c = '0'; c <= 'z'; c++) {
			if (c == code[i] || !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
			    (c >= 'a' && c <= 'z')))
				continue;
			memcpy(bad, code, sizeof(code));
			bad[i] = (char)c;
			tries++;
			pass += (size_t)shortlink_check(KEY, KLEN, bad, SHORTLINK_LEN, 64, NULL);
		}
	/* 12 x 61 changes: at 2^-17 each, more than one passing is a broken check */
	assert_true(tries == 12 * 61);
	assert_true(pass <= 1);
	/* another key, another length, bad characters, NUL inside, no key */
	assert_int_equal(shortlink_check(KEY2, sizeof(KEY2) - 1, code, SHORTLINK_LEN, 64,
	    NULL), 0);
	assert_int_equal(shortlink_check(KEY, KLEN, code, SHORTLINK_LEN - 1, 64, NULL), 0);
	memcpy(bad, code, sizeof(code));
	bad[SHORTLINK_LEN] = 'x';
	assert_int_equal(shortlink_check(KEY, KLEN, bad, SHORTLINK_LEN + 1, 64, NULL), 0);
	bad[4] = '-';
	assert_int_equal(shortlink_check(KEY, KLEN, bad, SHORTLINK_LEN, 64, NULL), 0);
	bad[4] = '\0';
	assert_int_equal(shortlink_check(KEY, KLEN, bad, SHORTLINK_LEN, 64, NULL), 0);
	assert_int_equal(shortlink_check(KEY, KLEN, "zzzzzzzzzzzz", SHORTLINK_LEN, 64,
	    NULL), 0);                          /* above 71 bits */
	assert_int_equal(shortlink_check(NULL, 0, code, SHORTLINK_LEN, 64, NULL), 0);
	assert_int_equal(shortlink_check(KEY, KLEN, NULL, 0, 64, NULL), 0);
	assert_int_equal(shortlink_check(KEY, KLEN, code, SHORTLINK_LEN, 0, NULL), 0);
	/* random strings: about one in 131,072 passes the check */
	for (i = 0, pass = 0; i < 20000; i++) {
		uint64_t r = next_rnd(&s);
		size_t k;

		for (k = 0; k < SHORTLINK_LEN; k++)
			bad[k] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    [(r >> (5 * (k % 12))) % 62];
		pass += (size_t)shortlink_check(KEY, KLEN, bad, SHORTLINK_LEN, 1, NULL);
	}
	assert_true(pass <= 2);
}

static void
bad_arguments_make_nothing(void **state)
{
	char code[SHORTLINK_LEN + 1];

	(void)state;
	assert_int_equal(shortlink_make(KEY, 8, 1, 0, 1, code), -1);
	assert_string_equal(code, "");
	assert_int_equal(shortlink_make(KEY, KLEN, 1, 4, 4, code), -1);
	assert_int_equal(shortlink_make(KEY, KLEN, 1, 0, 0, code), -1);
	assert_int_equal(shortlink_make(KEY, KLEN, 1, 0, SHORTLINK_SHARDS_MAX + 1, code), -1);
	assert_int_equal(shortlink_make(NULL, KLEN, 1, 0, 1, code), -1);
}

static int
cmp_codes(const void *a, const void *b)
{
	return memcmp(a, b, SHORTLINK_LEN);
}

static void
codes_are_distinct_and_spread(void **state)
{
	enum { N = 20000 };
	static char codes[N][SHORTLINK_LEN + 1];
	int seen[SHORTLINK_LEN][62];
	uint64_t s = 99;
	size_t i, k;

	(void)state;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < N; i++) {
		assert_int_equal(shortlink_make(KEY, KLEN, next_rnd(&s), (uint32_t)(i % 64),
		    64, codes[i]), 0);
		for (k = 0; k < SHORTLINK_LEN; k++) {
			const char *p = strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz", codes[i][k]);

			seen[k][p - "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz"]++;
		}
	}
	qsort(codes, N, sizeof(codes[0]), cmp_codes);
	for (i = 1; i < N; i++)
		assert_int_not_equal(memcmp(codes[i - 1], codes[i], SHORTLINK_LEN), 0);
	/* every position but the first (71 of 71.45 bits) takes every character */
	for (k = 1; k < SHORTLINK_LEN; k++)
		for (i = 0; i < 62; i++)
			assert_true(seen[k][i] > 0);
}

static void
a_pushs_code_is_its_own_and_the_same_every_time(void **state)
{
	char a[SHORTLINK_LEN + 1], b[SHORTLINK_LEN + 1], c[SHORTLINK_LEN + 1];
	char d[SHORTLINK_LEN + 1], id[SHORTLINK_PUSH_ID_MAX + 2];
	uint32_t got;

	(void)state;
	assert_int_equal(shortlink_for_push(KEY, KLEN, "1-0:s-1:sms", 3, 8, a), 0);
	assert_int_equal(shortlink_for_push(KEY, KLEN, "1-0:s-1:sms", 3, 8, b), 0);
	assert_string_equal(a, b);                   /* a re-plan renders the same link */
	assert_int_equal(shortlink_check(KEY, KLEN, a, SHORTLINK_LEN, 8, &got), 1);
	assert_int_equal(got, 3);
	assert_int_equal(shortlink_for_push(KEY, KLEN, "1-0:s-1:dm", 3, 8, c), 0);
	assert_string_not_equal(a, c);               /* another push, another code */
	assert_int_equal(shortlink_for_push(KEY2, KLEN, "1-0:s-1:sms", 3, 8, d), 0);
	assert_string_not_equal(a, d);               /* another key, another code */
	assert_int_equal(shortlink_check(KEY, KLEN, d, SHORTLINK_LEN, 8, NULL), 0);
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(shortlink_for_push(KEY, KLEN, id, 0, 1, a), -1);
	assert_string_equal(a, "");
	assert_int_equal(shortlink_for_push(KEY, 4, "1-0:s-1:sms", 0, 1, a), -1);
}

static void
a_link_bases_route_is_its_path(void **state)
{
	char r[SHORTLINK_ROUTE_MAX + 1], why[160];

	(void)state;
	assert_int_equal(shortlink_route("https://n.example/c", r, sizeof(r), why,
	    sizeof(why)), 0);
	assert_string_equal(r, "/c");
	assert_int_equal(shortlink_route("https://dp.to/go/x/", r, sizeof(r), why,
	    sizeof(why)), 0);
	assert_string_equal(r, "/go/x");
	assert_int_equal(shortlink_route("https://dp.to", r, sizeof(r), why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "needs a path"));
	assert_int_equal(shortlink_route("https://dp.to/", r, sizeof(r), why,
	    sizeof(why)), -1);
	assert_int_equal(shortlink_route("https://dp.to/hooks", r, sizeof(r), why,
	    sizeof(why)), -1);
	assert_int_equal(shortlink_route("https://dp.to/uix", r, sizeof(r), why,
	    sizeof(why)), 0);                        /* /uix is not /ui */
	assert_int_equal(shortlink_route("https://dp.to/a%20b", r, sizeof(r), why,
	    sizeof(why)), -1);
	assert_int_equal(shortlink_route("https://dp.to/a//b", r, sizeof(r), why,
	    sizeof(why)), -1);
	assert_int_equal(shortlink_route("https://dp.to/c?x=1", r, sizeof(r), why,
	    sizeof(why)), -1);
	assert_int_equal(shortlink_route("dp.to/c", r, sizeof(r), why, sizeof(why)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(codes_are_base62_and_name_their_shard),
		cmocka_unit_test(forged_and_mistyped_codes_fail_the_check),
		cmocka_unit_test(bad_arguments_make_nothing),
		cmocka_unit_test(codes_are_distinct_and_spread),
		cmocka_unit_test(a_pushs_code_is_its_own_and_the_same_every_time),
		cmocka_unit_test(a_link_bases_route_is_its_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
