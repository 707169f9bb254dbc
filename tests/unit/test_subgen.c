/*
 * test_subgen.c: the benchmarks' subscriber generator (tests/bench/subgen.c), which
 * bench_million and anyone measuring with build/bench/gensubs rely on: the same seed
 * gives the same bytes, every line is a subscriber the contract accepts, each phone's
 * area code lies in the subscriber's zone, and the shares are the documented ones.
 * Seeded, so the figures below are exact and cannot vary between runs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../bench/subgen.h"
#include "err.h"
#include "quiet.h"
#include "subscriber.h"

/* The bytes of subgen_write(seed, first, count) (caller frees), stats into st. */
static char *
gen(unsigned long long seed, long first, long count, size_t *len, struct subgen_stats *st)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	assert_int_equal(subgen_write(f, seed, first, count, st), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	return buf;
}

static void
same_seed_gives_same_bytes_and_runs_are_prefixes(void **state)
{
	size_t la, lb, lp, ls, lo;
	char *a = gen(7, 0, 3000, &la, NULL), *b = gen(7, 0, 3000, &lb, NULL);
	char *p = gen(7, 0, 1000, &lp, NULL), *s = gen(7, 1000, 2000, &ls, NULL);
	char *o = gen(8, 0, 3000, &lo, NULL);

	(void)state;
	assert_true(la > 3000 * 150);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	/* 0..999 then 1000..2999 is 0..2999. */
	assert_true(lp + ls == la);
	assert_memory_equal(a, p, lp);
	assert_memory_equal(a + lp, s, ls);
	/* Another seed, other subscribers. */
	assert_true(lo != la || memcmp(a, o, la) != 0);
	free(a);
	free(b);
	free(p);
	free(s);
	free(o);
}

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The value of "key":"..." in line, copied into out. */
static void
field(const char *line, const char *key, char *out, size_t size)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	assert_non_null(p);
	p += strlen(pat);
	q = strchr(p, '"');
	assert_non_null(q);
	assert_true((size_t)(q - p) < size);
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
}

static void
every_line_is_valid_and_its_area_code_in_its_zone(void **state)
{
	enum { N = 5000 };
	size_t len, i, k, n = 0;
	char *buf = gen(1, 0, N, &len, NULL), *line, *nl, zone[64];
	char **phones = calloc(N, sizeof(*phones));

	(void)state;
	assert_non_null(phones);
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		struct err e;
		struct quiet_place qp;
		struct subscriber *s;
		int in_zone = 0;

		err_clear(&e);
		s = subscriber_parse(line, (size_t)(nl - line), &e);
		if (s == NULL)
			fail_msg("line %zu: %s", n + 1, e.msg);
		*nl = '\0';
		field(line, "timezone", zone, sizeof(zone));
		quiet_place_of(s, &qp);
		for (k = 0; k < qp.nzones; k++)
			in_zone |= strcmp(qp.zones[k], zone) == 0;
		if (!in_zone)
			fail_msg("line %zu: the area code of %.5s... is not in %s", n + 1,
			    strstr(line, "+1"), zone);
		assert_true(n < N);
		phones[n] = malloc(16);
		assert_non_null(phones[n]);
		field(line, "phone", phones[n], 16);
		n++;
		subscriber_free(s);
	}
	assert_int_equal(n, N);
	qsort(phones, n, sizeof(*phones), cmp_str);
	for (i = 1; i < n; i++)
		assert_string_not_equal(phones[i - 1], phones[i]);
	for (i = 0; i < n; i++)
		free(phones[i]);
	free(phones);
	free(buf);
}

static void
shares_follow_the_population_and_a_skew(void **state)
{
	static struct subgen_stats st;
	size_t len;
	long i, cats = 0;
	char *buf;

	(void)state;
	memset(&st, 0, sizeof(st));
	buf = gen(1, 0, 50000, &len, &st);
	free(buf);
	assert_int_equal(st.n, 50000);
	/* New York 47%, Chicago 29%, Los Angeles 16.2%, Anchorage 0.2% (per mille). */
	assert_in_range(st.zone_subs[0] * 1000 / st.n, 455, 485);
	assert_in_range(st.zone_subs[1] * 1000 / st.n, 275, 305);
	assert_in_range(st.zone_subs[4] * 1000 / st.n, 150, 175);
	assert_in_range(st.zone_subs[5], 1, 400);
	assert_string_equal(subgen_zone(6), "Pacific/Honolulu");
	assert_null(subgen_zone(7));
	/* 3-6 categories each; the most popular ones first. */
	for (i = 0; i < SUBGEN_NCATS; i++)
		cats += st.cat_subs[i];
	assert_in_range(cats, 3 * st.n, 6 * st.n);
	assert_true(st.cat_subs[0] > st.cat_subs[1]);
	assert_true(st.cat_subs[1] > 2 * st.cat_subs[20]);
	assert_in_range(st.cat_subs[1] * 100 / st.n, 25, 32);   /* bench_million's deal */
	assert_string_equal(subgen_category(1), "laptop");
	assert_null(subgen_category(SUBGEN_NCATS));
	/* sms for all, dm for about 12%; quiet hours 25%, max_per_day 30%. */
	assert_int_equal(st.pushes, st.n + st.dm);
	assert_in_range(st.dm * 1000 / st.n, 105, 135);
	assert_in_range(st.quiet_hours * 1000 / st.n, 235, 265);
	assert_in_range(st.max_per_day * 1000 / st.n, 285, 315);
}

static void
ranges_past_the_phone_space_are_refused(void **state)
{
	FILE *f = fopen("/dev/null", "w");

	(void)state;
	assert_non_null(f);
	errno = 0;
	assert_int_equal(subgen_write(f, 1, SUBGEN_MAX - 1, 2, NULL), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(subgen_write(f, 1, -1, 1, NULL), -1);
	assert_int_equal(subgen_write(f, 1, SUBGEN_MAX - 1, 1, NULL), 0);
	fclose(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_seed_gives_same_bytes_and_runs_are_prefixes),
		cmocka_unit_test(every_line_is_valid_and_its_area_code_in_its_zone),
		cmocka_unit_test(shares_follow_the_population_and_a_skew),
		cmocka_unit_test(ranges_past_the_phone_space_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
