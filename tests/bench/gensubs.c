/*
 * gensubs.c: writes seeded realistic subscribers as JSON lines (tests/bench/subgen.h)
 * for benchmarks and measurements:
 *
 *   build/bench/gensubs --seed S --count N [--first F] [--stats] > subs.jsonl
 *   build/dealpushctl subscribers import subs.jsonl
 *
 * The same seed gives the same bytes. --stats prints on stderr the share of each
 * zone and of the most popular categories (what a deal for one category reaches).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subgen.h"

#define GENSUBS_TOP_CATS 12

static void
usage(FILE *f)
{
	fprintf(f, "usage: gensubs --seed S --count N [--first F] [--stats]\n"
	    "  writes N subscribers (ids u<F+1>..u<F+N>) as JSON lines on stdout;\n"
	    "  F + N <= %ld; --stats: zone and category shares on stderr\n", SUBGEN_MAX);
}

/* A whole number in [0, max] from s into *out; 0 or -1. */
static int
parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' || *out > max ? -1 : 0;
}

static void
print_stats(const struct subgen_stats *st)
{
	int i;

	fprintf(stderr, "gensubs: %ld subscribers, %ld consented channels (%ld with dm), "
	    "%ld with quiet hours, %ld with max_per_day, %ld with max_price, %ld with "
	    "min_discount_pct, %ld with keywords\n", st->n, st->pushes, st->dm,
	    st->quiet_hours, st->max_per_day, st->max_price, st->min_discount, st->keywords);
	for (i = 0; i < SUBGEN_NZONES; i++)
		fprintf(stderr, "  zone %-20s %8ld  %5.1f%%\n", subgen_zone(i), st->zone_subs[i],
		    st->n ? 100.0 * (double)st->zone_subs[i] / (double)st->n : 0.0);
	for (i = 0; i < GENSUBS_TOP_CATS; i++)
		fprintf(stderr, "  category %-16s %8ld subscribers %5.1f%%, %8ld pushes\n",
		    subgen_category(i), st->cat_subs[i],
		    st->n ? 100.0 * (double)st->cat_subs[i] / (double)st->n : 0.0,
		    st->cat_pushes[i]);
}

int
main(int argc, char **argv)
{
	static struct subgen_stats st;
	static char obuf[1 << 20];
	unsigned long long seed = 0, count = 0, first = 0;
	int i, have_seed = 0, have_count = 0, stats = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--seed") == 0 && parse_num(v, ~0ULL, &seed) == 0) {
			have_seed = 1;
			i++;
		} else if (strcmp(a, "--count") == 0 &&
		    parse_num(v, (unsigned long long)SUBGEN_MAX, &count) == 0) {
			have_count = 1;
			i++;
		} else if (strcmp(a, "--first") == 0 &&
		    parse_num(v, (unsigned long long)SUBGEN_MAX, &first) == 0) {
			i++;
		} else if (strcmp(a, "--stats") == 0) {
			stats = 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "gensubs: bad argument '%s'%s\n", a,
			    v != NULL && strncmp(a, "--", 2) == 0 ? " or its value" : "");
			usage(stderr);
			return 2;
		}
	}
	if (!have_seed || !have_count || first + count > (unsigned long long)SUBGEN_MAX) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	if (subgen_write(stdout, seed, (long)first, (long)count, &st) < 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "gensubs: writing failed: %s\n", strerror(errno));
		return 1;
	}
	if (stats)
		print_stats(&st);
	return 0;
}
