/*
 * subgen.c: seeded realistic subscribers for the benchmarks (see subgen.h). Test code.
 *
 * Every choice is integer arithmetic on a splitmix64 stream seeded from (seed,
 * index), so the bytes do not depend on the C library's floating point: the same
 * seed gives the same file on every machine. Distributions (documented in
 * docs/performance.md, "million_broad"): zones by the share of the US population
 * living in them; categories and brands Zipf-skewed (rank r weighs 1/(r+2)).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "subgen.h"

#define SUBGEN_LINE_MAX 2048
#define SUBGEN_NBRANDS 80
#define SUBGEN_ZIPF_SCALE 1000000ULL

/* ORDER ZONE: per-mille share of the US population (2020 census, rounded), the
 * zone's name and geographic area codes of that zone only (notifier/quiet.c). */
static const struct {
	unsigned permille;
	const char *name;
	unsigned short npa[20];
} subgen_zones[SUBGEN_NZONES] = {
	{ 470, "America/New_York", { 212, 718, 917, 646, 201, 215, 305, 404, 617, 703,
	    202, 313, 412, 610, 704, 813, 919, 516, 0 } },
	{ 290, "America/Chicago", { 312, 773, 214, 713, 281, 512, 210, 615, 314, 612,
	    414, 504, 816, 901, 205, 0 } },
	{ 50, "America/Denver", { 303, 720, 801, 505, 406, 307, 0 } },
	{ 22, "America/Phoenix", { 480, 602, 623, 520, 0 } },
	{ 162, "America/Los_Angeles", { 213, 310, 415, 206, 503, 702, 619, 408, 818,
	    916, 0 } },
	{ 2, "America/Anchorage", { 907, 0 } },
	{ 4, "Pacific/Honolulu", { 808, 0 } },
};

static const char *const subgen_bases[50] = {
	"phone", "laptop", "tv", "headphones", "tablet", "smartwatch", "camera",
	"monitor", "gaming-console", "speaker", "printer", "router", "keyboard", "mouse",
	"vacuum", "coffee-maker", "blender", "air-fryer", "mattress", "sofa", "desk",
	"chair", "lamp", "cookware", "knife-set", "sneakers", "jacket", "jeans", "dress",
	"watch", "sunglasses", "backpack", "luggage", "perfume", "skincare", "makeup",
	"shampoo", "vitamins", "protein", "bicycle", "treadmill", "tent", "grill", "drill",
	"lawn-mower", "toys", "board-games", "books", "pet-food", "baby-gear",
};
static const char *const subgen_variants[4] = {
	"", "-accessories", "-refurbished", "-premium",
};
static char subgen_cat_names[SUBGEN_NCATS][40];

static const char *const subgen_brand_a[8] = {
	"nor", "vel", "ast", "kor", "lum", "zen", "tri", "orb",
};
static const char *const subgen_brand_b[10] = {
	"ex", "ia", "on", "ix", "io", "us", "ar", "ek", "a", "o",
};

const char *const subgen_keywords[] = {
	"oled", "wireless", "4k", "gaming", "ssd", "bluetooth", "stainless", "organic",
	NULL,
};
#define SUBGEN_NKEYWORDS 8

/* Per-mille chance of each tag, independently. */
static const struct {
	const char *name;
	unsigned permille;
} subgen_tags[] = {
	{ "newsletter", 400 }, { "app-user", 300 }, { "bargain-hunter", 250 },
	{ "black-friday-2025", 200 }, { "outlet-follower", 150 }, { "loyalty-silver", 120 },
	{ "student", 80 }, { "loyalty-gold", 70 }, { "early-adopter", 60 },
	{ "vip", 50 }, { "business", 50 }, { "no-promo", 20 },
};

static const char *const subgen_quiet[][2] = {
	{ "21:00", "08:00" }, { "22:00", "07:00" }, { "22:00", "08:00" },
	{ "23:00", "07:00" }, { "20:00", "09:00" },
};
static const unsigned subgen_prices[] = { 100, 200, 300, 500, 800, 1000, 1500, 2000 };
static const unsigned subgen_discounts[] = { 10, 15, 20, 25, 30, 40 };

/* Cumulative integer Zipf weights (rank r weighs SCALE/(r+2)). */
static uint64_t cat_cum[SUBGEN_NCATS], brand_cum[SUBGEN_NBRANDS];
static int subgen_ready;

static void
subgen_init(void)
{
	uint64_t c = 0;
	int i;

	if (subgen_ready)
		return;
	for (i = 0; i < SUBGEN_NCATS; i++) {
		snprintf(subgen_cat_names[i], sizeof(subgen_cat_names[i]), "%s%s",
		    subgen_bases[i % 50], subgen_variants[i / 50]);
		c += SUBGEN_ZIPF_SCALE / (uint64_t)(i + 2);
		cat_cum[i] = c;
	}
	for (c = 0, i = 0; i < SUBGEN_NBRANDS; i++) {
		c += SUBGEN_ZIPF_SCALE / (uint64_t)(i + 2);
		brand_cum[i] = c;
	}
	subgen_ready = 1;
}

const char *
subgen_category(int i)
{
	subgen_init();
	return i >= 0 && i < SUBGEN_NCATS ? subgen_cat_names[i] : NULL;
}

const char *
subgen_zone(int i)
{
	return i >= 0 && i < SUBGEN_NZONES ? subgen_zones[i].name : NULL;
}

/* splitmix64: the next value of the stream in *s. */
static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (the modulo bias is below 2^-40 for our n). */
static unsigned
below(uint64_t *s, unsigned n)
{
	return (unsigned)(rnd(s) % n);
}

/* A rank drawn from cumulative weights cum[0..n-1]. */
static int
zipf(uint64_t *s, const uint64_t *cum, int n)
{
	uint64_t x = rnd(s) % cum[n - 1];
	int lo = 0, hi = n - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (x < cum[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* k distinct ranks from cum into out (k <= 8). */
static void
zipf_distinct(uint64_t *s, const uint64_t *cum, int n, int k, int *out)
{
	int got = 0, j, r;

	while (got < k) {
		r = zipf(s, cum, n);
		for (j = 0; j < got && out[j] != r; j++)
			;
		if (j == got)
			out[got++] = r;
	}
}

/* Appends printf output to buf at *off; -1 when it does not fit. */
static int put(char *buf, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
put(char *buf, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(buf + *off, SUBGEN_LINE_MAX - *off, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= SUBGEN_LINE_MAX - *off)
		return -1;
	*off += (size_t)w;
	return 0;
}

/* One subscriber's JSON line into buf (NUL-terminated, with '\n'); its length, or
 * 0 when it did not fit (cannot happen with SUBGEN_LINE_MAX). */
static size_t
subgen_line(char *buf, uint64_t seed, long idx, struct subgen_stats *st)
{
	uint64_t s = seed ^ (0xd1b54a32d192ed03ULL * (uint64_t)(idx + 1)), dm_id = 0;
	unsigned z = 0, acc = 0, u, local, npa, i;
	int cats[8], brands[8], ncat, nbrand, has_dm, j, first;
	size_t off = 0;

	rnd(&s);
	u = below(&s, 1000);
	for (z = 0; z < SUBGEN_NZONES - 1; z++) {
		acc += subgen_zones[z].permille;
		if (u < acc)
			break;
	}
	for (i = 0; subgen_zones[z].npa[i] != 0; i++)
		;
	npa = subgen_zones[z].npa[below(&s, i)];
	/* A bijection of [0, 8M) (the multiplier is prime to 2^9 * 5^6): unique
	 * numbers, NXX 200-999. */
	local = 2000000u + (unsigned)(((uint64_t)idx * 2654435761ULL) % 8000000ULL);
	has_dm = below(&s, 1000) < 120;
	if (has_dm)
		dm_id = 1000000000000000000ULL + rnd(&s) % 8000000000000000000ULL;

	if (put(buf, &off, "{\"id\":\"u%ld\",\"phone\":\"+1%03u%07u\",", idx + 1, npa,
	    local) < 0)
		return 0;
	if (has_dm && put(buf, &off, "\"dm\":{\"x\":\"%llu\"},\"channels\":[\"sms\",\"dm\"],",
	    (unsigned long long)dm_id) < 0)
		return 0;
	if (!has_dm && put(buf, &off, "\"channels\":[\"sms\"],") < 0)
		return 0;
	if (put(buf, &off, "\"consent\":{\"sms\":\"%u-%02u-%02uT%02u:%02u:00Z\"",
	    2023 + below(&s, 3), 1 + below(&s, 12), 1 + below(&s, 28), below(&s, 24),
	    below(&s, 60)) < 0)
		return 0;
	if (has_dm && put(buf, &off, ",\"dm\":\"2025-%02u-%02uT%02u:%02u:00Z\"",
	    1 + below(&s, 12), 1 + below(&s, 28), below(&s, 24), below(&s, 60)) < 0)
		return 0;
	if (put(buf, &off, "},\"timezone\":\"%s\"", subgen_zones[z].name) < 0)
		return 0;
	if (below(&s, 1000) < 250) {
		const char *const *q = subgen_quiet[below(&s, 5)];

		if (put(buf, &off, ",\"quiet_hours\":{\"start\":\"%s\",\"end\":\"%s\"}", q[0],
		    q[1]) < 0)
			return 0;
		if (st != NULL)
			st->quiet_hours++;
	}
	if (below(&s, 1000) < 300) {
		if (put(buf, &off, ",\"max_per_day\":%u", 1 + below(&s, 5)) < 0)
			return 0;
		if (st != NULL)
			st->max_per_day++;
	}
	if (put(buf, &off, ",\"locale\":\"%s\",\"tags\":[",
	    below(&s, 1000) < 900 ? "en-US" : "es-US") < 0)
		return 0;
	for (first = 1, j = 0; j < (int)(sizeof(subgen_tags) / sizeof(subgen_tags[0])); j++)
		if (below(&s, 1000) < subgen_tags[j].permille) {
			if (put(buf, &off, "%s\"%s\"", first ? "" : ",", subgen_tags[j].name) < 0)
				return 0;
			first = 0;
		}

	ncat = 3 + (int)below(&s, 4);
	zipf_distinct(&s, cat_cum, SUBGEN_NCATS, ncat, cats);
	u = below(&s, 10);
	nbrand = u < 4 ? 0 : u < 7 ? 1 : u < 9 ? 2 : 3;
	zipf_distinct(&s, brand_cum, SUBGEN_NBRANDS, nbrand, brands);
	if (put(buf, &off, "],\"interests\":{\"categories\":[") < 0)
		return 0;
	for (j = 0; j < ncat; j++)
		if (put(buf, &off, "%s\"%s\"", j ? "," : "", subgen_cat_names[cats[j]]) < 0)
			return 0;
	if (put(buf, &off, "],\"brands\":[") < 0)
		return 0;
	for (j = 0; j < nbrand; j++)
		if (put(buf, &off, "%s\"%s%s\"", j ? "," : "",
		    subgen_brand_a[brands[j] % 8], subgen_brand_b[brands[j] / 8]) < 0)
			return 0;
	if (put(buf, &off, "]") < 0)
		return 0;
	if (below(&s, 1000) < 50) {
		if (put(buf, &off, ",\"keywords\":[\"%s\"]",
		    subgen_keywords[below(&s, SUBGEN_NKEYWORDS)]) < 0)
			return 0;
		if (st != NULL)
			st->keywords++;
	}
	if (below(&s, 1000) < 200) {
		if (put(buf, &off, ",\"max_price\":%u", subgen_prices[below(&s, 8)]) < 0)
			return 0;
		if (st != NULL)
			st->max_price++;
	}
	if (below(&s, 1000) < 150) {
		if (put(buf, &off, ",\"min_discount_pct\":%u", subgen_discounts[below(&s, 6)]) < 0)
			return 0;
		if (st != NULL)
			st->min_discount++;
	}
	/* Engagement: the lower of two uniform draws, so most are low. */
	u = below(&s, 101);
	i = below(&s, 101);
	u = u < i ? u : i;
	if (put(buf, &off, "},\"engagement\":%u.%02u}\n", u / 100, u % 100) < 0)
		return 0;

	if (st != NULL) {
		st->n++;
		st->pushes += 1 + has_dm;
		st->dm += has_dm;
		st->zone_subs[z]++;
		for (j = 0; j < ncat; j++) {
			st->cat_subs[cats[j]]++;
			st->cat_pushes[cats[j]] += 1 + has_dm;
		}
	}
	return off;
}

int
subgen_write(FILE *out, unsigned long long seed, long first, long count,
    struct subgen_stats *st)
{
	char buf[SUBGEN_LINE_MAX];
	long i;
	size_t len;

	if (first < 0 || count < 0 || first > SUBGEN_MAX || count > SUBGEN_MAX - first) {
		errno = ERANGE;
		return -1;
	}
	subgen_init();
	for (i = first; i < first + count; i++) {
		if ((len = subgen_line(buf, seed, i, st)) == 0) {
			errno = EOVERFLOW;
			return -1;
		}
		if (fwrite(buf, 1, len, out) != len)
			return -1;
	}
	return 0;
}
