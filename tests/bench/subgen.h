/*
 * subgen.h: seeded realistic subscribers for the benchmarks (tests/bench/gensubs
 * and bench_million): US numbers in 7 zones weighted like the US population, 3-6 of
 * 200 categories (skewed: a few popular ones), brands, tags, quiet hours, daily
 * caps, engagement, sms consent for all and dm for some. Test code only.
 *
 * Subscriber i depends only on (seed, i): the same seed gives the same bytes, and a
 * run of count N is a prefix of a longer run with the same seed and first index.
 */
#ifndef DEALPUSH_SUBGEN_H
#define DEALPUSH_SUBGEN_H

#include <stdio.h>

#define SUBGEN_NCATS 200
#define SUBGEN_NZONES 7
#define SUBGEN_MAX 8000000L   /* phones are unique below this many subscribers */

/* What was generated, for choosing a deal's audience. */
struct subgen_stats {
	long n;                          /* subscribers written */
	long pushes;                     /* sms + dm consents: pushes a deal to all would plan */
	long cat_subs[SUBGEN_NCATS];     /* subscribers interested in category i */
	long cat_pushes[SUBGEN_NCATS];   /* their consented channels */
	long zone_subs[SUBGEN_NZONES];
	long quiet_hours, max_per_day, dm, keywords, max_price, min_discount;
};

/* Name of category i (0 <= i < SUBGEN_NCATS; rank i by popularity), or NULL. */
const char *subgen_category(int i);

/* Name of zone i (0 <= i < SUBGEN_NZONES), or NULL. */
const char *subgen_zone(int i);

/* The keywords some subscribers follow (NULL-ended): a deal title that contains
 * none of them reaches exactly the subscribers of its category. */
extern const char *const subgen_keywords[];

/*
 * Writes subscribers first .. first+count-1 (ids "u<index+1>") as JSON lines in the
 * subscriber contract (docs/contracts.md) to out; adds what it wrote to st when st
 * is not NULL (st is not cleared: zero it first). first + count must not exceed
 * SUBGEN_MAX. 0, or -1 on a write error or a bad range (errno says which).
 */
int subgen_write(FILE *out, unsigned long long seed, long first, long count,
    struct subgen_stats *st);

#endif
