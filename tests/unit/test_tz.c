/*
 * test_tz.c: time zones from tzdata (notifier/tz.c).
 *
 * Differential against glibc (TZ + tzset + localtime_r, allowed here, never in the
 * module) over real zones and synthetic footers; DST nights in Chicago, Sao Paulo and
 * Lord Howe; and hostile zone files (every truncation, random bytes, huge counts,
 * every byte flipped) written to a private directory with its own cache.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tz.h"

/* 2026-03-08 and 2026-11-01 in Chicago, as UTC instants. */
#define CHI_SPRING_GAP   1772956800LL  /* 2026-03-08T08:00:00Z = 02:00 CST -> 03:00 CDT */
#define CHI_FALL_BACK    1793516400LL  /* 2026-11-01T07:00:00Z = 02:00 CDT -> 01:00 CST */
#define T_2020           1577836800LL
#define T_2031           1924992000LL
#define T_2100           4102444800LL

static const char *const real_zones[] = {
	"America/Chicago", "America/New_York", "Europe/Berlin", "Europe/London",
	"Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Chatham",
	"America/St_Johns", "Africa/Casablanca", "UTC",
	/* footers with a negative and a > 24 h rule time */
	"America/Nuuk", "Asia/Jerusalem",
};

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char *zoneinfo_dir(void)
{
	const char *d = getenv("TZDIR");

	return d != NULL && d[0] != '\0' ? d : "/usr/share/zoneinfo";
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* glibc's answer for t under the TZ value last given to use_glibc_zone(). */
static void glibc_local(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;

	if (localtime_r(&tt, tm) == NULL)
		fail_msg("localtime_r failed at %lld", (long long)t);
}

static void use_glibc_zone(const char *tzval)
{
	setenv("TZ", tzval, 1);
	tzset();
}

static void assert_same_as_glibc(const struct tz *z, const char *label, int64_t t)
{
	struct tz_local lt;
	struct tm tm;

	assert_int_equal(tz_local(z, t, &lt), 0);
	glibc_local(t, &tm);
	if (lt.year != tm.tm_year + 1900 || lt.month != tm.tm_mon + 1 ||
	    lt.day != tm.tm_mday || lt.hour != tm.tm_hour || lt.min != tm.tm_min ||
	    lt.sec != tm.tm_sec || lt.wday != tm.tm_wday || lt.utoff != tm.tm_gmtoff ||
	    lt.isdst != tm.tm_isdst || strcmp(lt.abbr, tm.tm_zone) != 0)
		fail_msg("%s at %lld: got %04d-%02d-%02d %02d:%02d:%02d wd%d %+d dst%d %s, "
		    "glibc %04d-%02d-%02d %02d:%02d:%02d wd%d %+ld dst%d %s", label,
		    (long long)t, lt.year, lt.month, lt.day, lt.hour, lt.min, lt.sec, lt.wday,
		    (int)lt.utoff, lt.isdst, lt.abbr, tm.tm_year + 1900, tm.tm_mon + 1,
		    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_wday, tm.tm_gmtoff,
		    tm.tm_isdst, tm.tm_zone);
}

static int glibc_differs(const struct tm *a, const struct tm *b)
{
	return a->tm_gmtoff != b->tm_gmtoff || a->tm_isdst != b->tm_isdst ||
	    strcmp(a->tm_zone, b->tm_zone) != 0;
}

/* Finds every glibc transition in (from, to] by stepping 3 h and bisecting, and
 * compares at each transition -1, 0, +1 s. Returns how many were found. */
static int compare_at_glibc_transitions(const struct tz *z, const char *label,
    int64_t from, int64_t to)
{
	struct tm prev, cur, mid;
	int64_t t, lo, hi, m;
	int found = 0;

	glibc_local(from, &prev);
	for (t = from + 3 * 3600; t <= to; t += 3 * 3600) {
		glibc_local(t, &cur);
		if (glibc_differs(&prev, &cur)) {
			lo = t - 3 * 3600;  /* same as prev */
			hi = t;             /* same as cur */
			while (hi - lo > 1) {
				m = lo + (hi - lo) / 2;
				glibc_local(m, &mid);
				if (glibc_differs(&prev, &mid))
					hi = m;
				else
					lo = m;
			}
			assert_same_as_glibc(z, label, hi - 1);
			assert_same_as_glibc(z, label, hi);
			assert_same_as_glibc(z, label, hi + 1);
			found++;
		}
		prev = cur;
	}
	return found;
}

static void compare_random_instants(const struct tz *z, const char *label, int64_t from,
    int64_t to, int n)
{
	int i;

	for (i = 0; i < n; i++)
		assert_same_as_glibc(z, label, from + (int64_t)(rng_next() % (uint64_t)(to - from)));
}

static void local_time_matches_glibc_in_real_zones(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 64);
	struct err e;
	size_t i;
	int found;

	(void)state;
	assert_non_null(c);
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < sizeof(real_zones) / sizeof(real_zones[0]); i++) {
		const struct tz *z = tz_get(c, real_zones[i], &e);

		if (z == NULL)
			fail_msg("%s: %s", real_zones[i], e.msg);
		assert_string_equal(tz_name(z), real_zones[i]);
		use_glibc_zone(real_zones[i]);
		compare_random_instants(z, real_zones[i], 0, T_2100, 20000);
		found = compare_at_glibc_transitions(z, real_zones[i], T_2020, T_2031);
		if (strcmp(real_zones[i], "America/Chicago") == 0)
			assert_int_equal(found, 22);
	}
	tzcache_free(c);
}

/* ---- synthetic TZif files ---- */

struct tzif_spec {
	int version;                 /* 1, 2 or 3 */
	int ntrans;
	int64_t trans[8];
	uint8_t idx[8];
	int ntypes;
	int32_t utoff[4];
	uint8_t isdst[4], abbri[4];
	const char *chars;           /* NUL-separated, charcnt bytes */
	int charcnt;
	int leapcnt;                 /* leap records (one second each) */
	const char *footer;
};

static size_t put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return 4;
}

static size_t put_block(unsigned char *p, const struct tzif_spec *s, int v2)
{
	size_t n = 0;
	int i;

	memcpy(p, "TZif", 4);
	p[4] = (unsigned char)(s->version == 1 ? 0 : '0' + s->version);
	memset(p + 5, 0, 15);
	n = 20;
	n += put32(p + n, 0);                          /* isutcnt */
	n += put32(p + n, 0);                          /* isstdcnt */
	n += put32(p + n, (uint32_t)s->leapcnt);
	n += put32(p + n, (uint32_t)s->ntrans);
	n += put32(p + n, (uint32_t)s->ntypes);
	n += put32(p + n, (uint32_t)s->charcnt);
	for (i = 0; i < s->ntrans; i++) {
		if (v2)
			n += put32(p + n, (uint32_t)((uint64_t)s->trans[i] >> 32));
		n += put32(p + n, (uint32_t)s->trans[i]);
	}
	for (i = 0; i < s->ntrans; i++)
		p[n++] = s->idx[i];
	for (i = 0; i < s->ntypes; i++) {
		n += put32(p + n, (uint32_t)s->utoff[i]);
		p[n++] = s->isdst[i];
		p[n++] = s->abbri[i];
	}
	memcpy(p + n, s->chars, (size_t)s->charcnt);
	n += (size_t)s->charcnt;
	for (i = 0; i < s->leapcnt; i++) {
		if (v2)
			n += put32(p + n, 0);
		n += put32(p + n, (uint32_t)(78796800 + i * 15000000));
		n += put32(p + n, (uint32_t)(i + 1));
	}
	return n;
}

static size_t build_tzif(unsigned char *p, const struct tzif_spec *s)
{
	size_t n = put_block(p, s, 0);

	if (s->version == 1)
		return n;
	n += put_block(p + n, s, 1);
	p[n++] = '\n';
	memcpy(p + n, s->footer, strlen(s->footer));
	n += strlen(s->footer);
	p[n++] = '\n';
	return n;
}

static char tmp_dir[256];

/* Setup of every test that writes zone files: a fresh private directory. */
static int tmp_dir_setup(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/dp-test-tz-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

/* Teardown, also after a failed test: removes the files written and the directory. */
static int tmp_dir_teardown(void **state)
{
	char path[512];
	struct dirent *de;
	DIR *d = opendir(tmp_dir);

	(void)state;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(tmp_dir);
}

static void write_zone(const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;
	int n = snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);

	assert_true(n > 0 && (size_t)n < sizeof(path));
	f = fopen(path, "wb");
	assert_non_null(f);
	if (len > 0)
		assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static unsigned char *read_real_zone(const char *name, size_t *len)
{
	char path[512];
	unsigned char *buf = malloc(65536);
	FILE *f;

	assert_non_null(buf);
	snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir(), name);
	f = fopen(path, "rb");
	assert_non_null(f);
	*len = fread(buf, 1, 65536, f);
	fclose(f);
	assert_true(*len > 44 && *len < 65536);
	return buf;
}

/* A file with no transitions and one type: the footer alone says everything. */
static void write_footer_zone(const char *name, const char *footer)
{
	struct tzif_spec s = {
		.version = 3, .ntypes = 1, .chars = "ZZZ", .charcnt = 4, .footer = footer,
	};
	unsigned char buf[512];

	write_zone(name, buf, build_tzif(buf, &s));
}

static void footer_rules_match_glibc(void **state)
{
	static const char *const footers[] = {
		"CET-1CEST,M3.5.0,M10.5.0/3",
		"EST5EDT,M3.2.0,M11.1.0",
		"<+0330>-3:30",
		"<-0330>3:30:15",
		"NST3:30NDT,M3.2.0,M11.1.0",
		"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
		"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
		"<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
		"IST-2IDT,M3.4.4/26,M10.5.0",
		"AAA3BBB,J60/2,J300/2",
		"AAA3BBB,59/2,299/2",
		"AAA+3BBB+2,J1/5,J365/20",
		"<-0130>1:30<-0030>,M3.5.0/-1:30,M10.5.0/25:30",
		"XXX-5:45:30YYY-6:15,M4.5.6/167,M9.1.1/-167",
	};
	struct tzcache *c;
	struct err e;
	size_t i;
	int found;

	(void)state;
	c = tzcache_new(tmp_dir, 64);
	assert_non_null(c);
	rng_state = 12345;
	for (i = 0; i < sizeof(footers) / sizeof(footers[0]); i++) {
		char name[32];
		const struct tz *z;

		snprintf(name, sizeof(name), "F%zu", i);
		write_footer_zone(name, footers[i]);
		z = tz_get(c, name, &e);
		if (z == NULL)
			fail_msg("%s: %s", footers[i], e.msg);
		use_glibc_zone(footers[i]);
		compare_random_instants(z, footers[i], 946684800, T_2100, 5000);
		found = compare_at_glibc_transitions(z, footers[i], T_2020, T_2031);
		if (strchr(footers[i], ',') != NULL && found != 22)
			fail_msg("%s: %d transitions in 2020..2030", footers[i], found);
	}
	tzcache_free(c);
}

static void dst_all_year_footer_is_always_dst(void **state)
{
	struct tzcache *c;
	struct tz_local lt;
	const struct tz *z;
	int64_t t;

	(void)state;
	write_footer_zone("AllYear", "EST5EDT4,0/0,J365/25");
	c = tzcache_new(tmp_dir, 4);
	z = tz_get(c, "AllYear", NULL);
	assert_non_null(z);
	for (t = T_2020; t < T_2031; t += 3571) {
		assert_int_equal(tz_local(z, t, &lt), 0);
		assert_int_equal(lt.isdst, 1);
		assert_int_equal(lt.utoff, -4 * 3600);
		assert_string_equal(lt.abbr, "EDT");
	}
	tzcache_free(c);
}

static void dst_without_rule_uses_us_rules_one_hour_ahead(void **state)
{
	struct tzcache *c;
	struct tz_local lt;
	const struct tz *z;

	(void)state;
	write_footer_zone("NoRule", "AAA5BBB");
	c = tzcache_new(tmp_dir, 4);
	z = tz_get(c, "NoRule", NULL);
	assert_non_null(z);
	assert_int_equal(tz_local(z, CHI_SPRING_GAP - 3600 - 1, &lt), 0);
	assert_string_equal(lt.abbr, "AAA");
	assert_int_equal(tz_local(z, CHI_SPRING_GAP - 3600, &lt), 0);
	assert_string_equal(lt.abbr, "BBB");
	assert_int_equal(lt.utoff, -4 * 3600);
	tzcache_free(c);
}

/* Every sampled instant: local -> UTC gives back the instant or an earlier one with
 * the same wall time, and the next local midnight starts the next calendar day. */
static void wall_times_and_midnights_are_consistent_everywhere(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 64);
	struct tz_local lt, lu, lm, lp;
	size_t i;
	int k;

	(void)state;
	assert_non_null(c);
	rng_state = 777;
	for (i = 0; i < sizeof(real_zones) / sizeof(real_zones[0]); i++) {
		const struct tz *z = tz_get(c, real_zones[i], NULL);

		assert_non_null(z);
		for (k = 0; k < 20000; k++) {
			int64_t t = (int64_t)(rng_next() % (uint64_t)T_2100), u, m;

			if (k < 100)  /* and some right at midnight and DST changes */
				t = tz_local_midnight_after(z, t) - (k % 3);
			assert_int_equal(tz_local(z, t, &lt), 0);
			u = tz_from_local(z, lt.year, lt.month, lt.day, lt.hour, lt.min, lt.sec);
			assert_int_equal(tz_local(z, u, &lu), 0);
			if (u > t || lu.hour != lt.hour || lu.min != lt.min || lu.sec != lt.sec ||
			    lu.day != lt.day || (u < t && lu.utoff <= lt.utoff))
				fail_msg("%s: %lld -> local -> %lld", real_zones[i], (long long)t,
				    (long long)u);
			m = tz_local_midnight_after(z, t);
			assert_true(m > t && m - t <= 26 * 3600);
			assert_int_equal(tz_local(z, m, &lm), 0);
			assert_int_equal(tz_local(z, m - 1, &lp), 0);
			assert_int_equal(days_from_civil(lp.year, lp.month, lp.day),
			    days_from_civil(lt.year, lt.month, lt.day));
			assert_int_equal(days_from_civil(lm.year, lm.month, lm.day),
			    days_from_civil(lt.year, lt.month, lt.day) + 1);
			if (lm.hour != 0 || lm.min != 0 || lm.sec != 0)
				assert_true(lm.utoff > lp.utoff);  /* midnight skipped */
		}
	}
	tzcache_free(c);
}

/* ---- DST nights ---- */

static const struct tz *chicago(struct tzcache **c)
{
	const struct tz *z;

	*c = tzcache_new(NULL, 4);
	assert_non_null(*c);
	z = tz_get(*c, "America/Chicago", NULL);
	assert_non_null(z);
	return z;
}

static void spring_forward_gap_time_becomes_end_of_gap(void **state)
{
	struct tzcache *c;
	const struct tz *z = chicago(&c);
	struct tz_local lt;

	(void)state;
	/* 01:59:59 CST is the last second before the gap; 02:00..02:59:59 never happen */
	assert_int_equal(tz_from_local(z, 2026, 3, 8, 1, 59, 59), CHI_SPRING_GAP - 1);
	assert_int_equal(tz_from_local(z, 2026, 3, 8, 2, 0, 0), CHI_SPRING_GAP);
	assert_int_equal(tz_from_local(z, 2026, 3, 8, 2, 30, 0), CHI_SPRING_GAP);
	assert_int_equal(tz_from_local(z, 2026, 3, 8, 2, 59, 59), CHI_SPRING_GAP);
	assert_int_equal(tz_from_local(z, 2026, 3, 8, 3, 0, 0), CHI_SPRING_GAP);
	assert_int_equal(tz_from_local(z, 2026, 3, 8, 3, 30, 0), CHI_SPRING_GAP + 1800);
	assert_int_equal(tz_local(z, tz_from_local(z, 2026, 3, 8, 2, 30, 0), &lt), 0);
	assert_int_equal(lt.hour, 3);
	assert_int_equal(lt.min, 0);
	assert_string_equal(lt.abbr, "CDT");
	tzcache_free(c);
}

static void fall_back_repeated_time_gives_the_earlier_instant(void **state)
{
	struct tzcache *c;
	const struct tz *z = chicago(&c);
	struct tz_local lt;

	(void)state;
	/* 01:00..01:59:59 happens in CDT (06:00Z..) and again in CST (07:00Z..) */
	assert_int_equal(tz_from_local(z, 2026, 11, 1, 1, 30, 0), CHI_FALL_BACK - 1800);
	assert_int_equal(tz_from_local(z, 2026, 11, 1, 1, 0, 0), CHI_FALL_BACK - 3600);
	assert_int_equal(tz_from_local(z, 2026, 11, 1, 0, 59, 59), CHI_FALL_BACK - 3601);
	assert_int_equal(tz_from_local(z, 2026, 11, 1, 2, 0, 0), CHI_FALL_BACK + 3600);
	assert_int_equal(tz_local(z, CHI_FALL_BACK - 1800, &lt), 0);
	assert_string_equal(lt.abbr, "CDT");
	assert_int_equal(tz_local(z, CHI_FALL_BACK + 1800, &lt), 0);
	assert_int_equal(lt.hour, 1);
	assert_int_equal(lt.min, 30);
	assert_string_equal(lt.abbr, "CST");
	tzcache_free(c);
}

static void dst_days_are_23_and_25_hours_long(void **state)
{
	struct tzcache *c;
	const struct tz *z = chicago(&c);
	int64_t mar8 = tz_from_local(z, 2026, 3, 8, 0, 0, 0);
	int64_t nov1 = tz_from_local(z, 2026, 11, 1, 0, 0, 0);

	(void)state;
	assert_int_equal(mar8, 1772949600);  /* 06:00Z */
	assert_int_equal(tz_local_midnight_after(z, mar8 - 1), mar8);
	assert_int_equal(tz_local_midnight_after(z, mar8) - mar8, 23 * 3600);
	assert_int_equal(tz_local_midnight_after(z, CHI_SPRING_GAP) - mar8, 23 * 3600);
	assert_int_equal(nov1, 1793509200);  /* 05:00Z */
	assert_int_equal(tz_local_midnight_after(z, nov1) - nov1, 25 * 3600);
	assert_int_equal(tz_local_midnight_after(z, CHI_FALL_BACK + 1800) - nov1, 25 * 3600);
	assert_int_equal(tz_local_midnight_after(z, nov1 + 25 * 3600) - (nov1 + 25 * 3600),
	    24 * 3600);
	tzcache_free(c);
}

static void skipped_midnight_day_starts_at_first_existing_instant(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 4);
	const struct tz *z = tz_get(c, "America/Sao_Paulo", NULL);
	struct tz_local lt;
	int64_t start;

	(void)state;
	assert_non_null(z);
	/* 2018-11-04 00:00 -03 never happened: clocks went to 01:00 -02 at 03:00Z */
	start = tz_local_midnight_after(z, 1541300400 - 12 * 3600);
	assert_int_equal(start, 1541300400);
	assert_int_equal(tz_local(z, start, &lt), 0);
	assert_int_equal(lt.day, 4);
	assert_int_equal(lt.hour, 1);
	assert_int_equal(lt.utoff, -2 * 3600);
	assert_int_equal(tz_from_local(z, 2018, 11, 4, 0, 0, 0), start);
	assert_int_equal(tz_from_local(z, 2018, 11, 4, 0, 30, 0), start);
	assert_int_equal(tz_local_midnight_after(z, start) - start, 23 * 3600);
	tzcache_free(c);
}

static void half_hour_dst_gap_in_lord_howe(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 4);
	const struct tz *z = tz_get(c, "Australia/Lord_Howe", NULL);
	int64_t before, after, day;

	(void)state;
	assert_non_null(z);
	/* 2026-10-04 02:00 +1030 -> 02:30 +11 */
	before = tz_from_local(z, 2026, 10, 4, 1, 59, 59);
	after = tz_from_local(z, 2026, 10, 4, 2, 30, 0);
	assert_int_equal(after - before, 1);
	assert_int_equal(tz_from_local(z, 2026, 10, 4, 2, 15, 0), after);
	day = tz_from_local(z, 2026, 10, 4, 0, 0, 0);
	assert_int_equal(tz_local_midnight_after(z, day) - day, 23 * 3600 + 1800);
	tzcache_free(c);
}

static void impossible_wall_times_are_refused(void **state)
{
	struct tzcache *c;
	const struct tz *z = chicago(&c);

	(void)state;
	assert_true(tz_from_local(z, 2026, 2, 29, 0, 0, 0) == TZ_TIME_ERROR);
	assert_true(tz_from_local(z, 2026, 13, 1, 0, 0, 0) == TZ_TIME_ERROR);
	assert_true(tz_from_local(z, 2026, 1, 1, 24, 0, 0) == TZ_TIME_ERROR);
	assert_true(tz_from_local(z, 2026, 1, 1, 0, 60, 0) == TZ_TIME_ERROR);
	assert_true(tz_from_local(z, 2026, 1, 0, 0, 0, 0) == TZ_TIME_ERROR);
	assert_true(tz_from_local(NULL, 2026, 1, 1, 0, 0, 0) == TZ_TIME_ERROR);
	assert_true(tz_from_local(z, 2024, 2, 29, 0, 0, 0) != TZ_TIME_ERROR);
	assert_true(tz_local_midnight_after(z, TZ_TIME_LIMIT + 1) == TZ_TIME_ERROR);
	tzcache_free(c);
}

/* ---- names and hostile files ---- */

static void expect_refused(struct tzcache *c, const char *name, const char *code)
{
	struct err e;

	err_clear(&e);
	if (tz_get(c, name, &e) != NULL)
		fail_msg("accepted \"%s\"", name);
	assert_string_equal(e.code, code);
	assert_true(e.msg[0] != '\0');
}

static void bad_and_unknown_names_are_refused(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 8);
	char name[80];

	(void)state;
	assert_non_null(c);
	expect_refused(c, "../etc/passwd", "bad_value");
	expect_refused(c, "/abs", "bad_value");
	expect_refused(c, "", "bad_value");
	expect_refused(c, "Europe/./Berlin", "bad_value");
	expect_refused(c, "Europe//Berlin", "bad_value");
	expect_refused(c, "Europe/", "bad_value");
	expect_refused(c, "Europe/Ber lin", "bad_value");
	expect_refused(c, "Foo/Bar", "not_found");
	expect_refused(c, "Europe", "not_found");  /* a directory */
	memset(name, 'A', 64);
	name[64] = '\0';
	expect_refused(c, name, "not_found");      /* 64 bytes: a name, just unknown */
	name[64] = 'A';
	name[65] = '\0';
	expect_refused(c, name, "bad_value");
	assert_non_null(tz_get(c, "UTC", NULL));
	assert_non_null(tz_get(c, "Etc/UTC", NULL));
	assert_non_null(tz_get(c, "Etc/GMT+5", NULL));
	assert_null(tz_get(NULL, "UTC", NULL));
	tzcache_free(c);
}

static void utc_is_built_in_without_tzdata(void **state)
{
	struct tzcache *c;
	struct tz_local lt;
	const struct tz *z;

	(void)state;
	c = tzcache_new(tmp_dir, 4);
	z = tz_get(c, "Etc/UTC", NULL);
	assert_non_null(z);
	assert_int_equal(tz_local(z, 1795374000, &lt), 0);
	assert_int_equal(lt.hour, 19);
	assert_int_equal(lt.utoff, 0);
	assert_string_equal(lt.abbr, "UTC");
	expect_refused(c, "Europe/Berlin", "not_found");
	tzcache_free(c);
}

static void every_truncation_of_a_real_file_is_refused(void **state)
{
	struct tzcache *c;
	unsigned char *data;
	size_t len, n;
	struct err e;

	(void)state;
	data = read_real_zone("Europe/Berlin", &len);
	c = tzcache_new(tmp_dir, 4);
	for (n = 0; n < len; n++) {
		write_zone("Cut", data, n);
		err_clear(&e);
		if (tz_get(c, "Cut", &e) != NULL)
			fail_msg("accepted the first %zu of %zu bytes", n, len);
		assert_string_equal(e.code, "bad_tzif");
	}
	write_zone("Cut", data, len);
	assert_non_null(tz_get(c, "Cut", NULL));  /* failures were not cached */
	tzcache_free(c);
	free(data);
}

static void random_bytes_are_refused(void **state)
{
	unsigned char buf[4096];
	struct tzcache *c;
	size_t i, len;
	int k;

	(void)state;
	c = tzcache_new(tmp_dir, 4);
	rng_state = 4242;
	for (k = 0; k < 300; k++) {
		len = (size_t)(rng_next() % sizeof(buf));
		for (i = 0; i < len; i++)
			buf[i] = (unsigned char)rng_next();
		if (k % 2 == 0 && len >= 5)
			memcpy(buf, k % 4 == 0 ? "TZif2" : "TZif\0", 5);
		write_zone("Noise", buf, len);
		expect_refused(c, "Noise", "bad_tzif");
	}
	tzcache_free(c);
}

static void huge_counts_are_refused(void **state)
{
	static const int fields[] = { 20, 24, 28, 32, 36, 40 };
	unsigned char *data, *copy;
	struct tzcache *c;
	size_t len, i, v2;
	uint32_t vals[] = { 0xffffffffu, 0x80000000u, 0x10000000u, 257, 1000 };
	size_t j;

	(void)state;
	data = read_real_zone("America/New_York", &len);
	copy = malloc(len);
	assert_non_null(copy);
	c = tzcache_new(tmp_dir, 4);
	/* the second header follows the v1 block; find it */
	for (v2 = 44; v2 + 4 <= len && memcmp(data + v2, "TZif", 4) != 0; v2++)
		;
	assert_true(v2 + 44 < len);
	for (i = 0; i < 12; i++) {
		for (j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
			memcpy(copy, data, len);
			put32(copy + (i < 6 ? 0 : v2) + fields[i % 6], vals[j]);
			write_zone("Huge", copy, len);
			expect_refused(c, "Huge", "bad_tzif");
		}
	}
	tzcache_free(c);
	free(copy);
	free(data);
}

/* Any single changed byte is either refused or gives a zone that still answers. */
static void flipped_bytes_never_crash(void **state)
{
	unsigned char *data, *copy;
	struct tzcache *c;
	struct tz_local lt;
	size_t len, i;
	int v;

	(void)state;
	data = read_real_zone("Australia/Lord_Howe", &len);
	copy = malloc(len);
	assert_non_null(copy);
	for (i = 0; i < len; i++) {
		for (v = 0; v < 2; v++) {
			const struct tz *z;

			memcpy(copy, data, len);
			copy[i] = v == 0 ? (unsigned char)~copy[i] : (unsigned char)(copy[i] + 1);
			write_zone("Flip", copy, len);
			c = tzcache_new(tmp_dir, 1);
			z = tz_get(c, "Flip", NULL);
			if (z != NULL) {
				assert_int_equal(tz_local(z, 1795374000, &lt), 0);
				assert_int_equal(tz_local(z, -TZ_TIME_LIMIT, &lt), 0);
				assert_int_equal(tz_local(z, TZ_TIME_LIMIT, &lt), 0);
				assert_true(tz_local_midnight_after(z, 1795374000) > 1795374000);
				(void)tz_from_local(z, 2026, 10, 4, 2, 15, 0);
			}
			tzcache_free(c);
		}
	}
	free(copy);
	free(data);
}

static void bad_footers_are_refused(void **state)
{
	static const char *const footers[] = {
		"CET-1CEST,M3.5.0", "AB-1", "CET", "CET-25", "CET-1CEST,M13.1.0,M10.5.0",
		"CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J300",
		"CET-1CEST,366,J300", "CET-1CEST,M3.5.0/168,M10.5.0", "<+01-1", "<>-1",
		"CET-1 ", "CET-1:60", "CET-1CEST,M3.5.0,M10.5.0,", "\x01\x02\x03",
	};
	struct tzcache *c;
	size_t i;

	(void)state;
	c = tzcache_new(tmp_dir, 4);
	for (i = 0; i < sizeof(footers) / sizeof(footers[0]); i++) {
		write_footer_zone("Foot", footers[i]);
		if (tz_get(c, "Foot", NULL) != NULL)
			fail_msg("accepted footer \"%s\"", footers[i]);
	}
	write_footer_zone("Foot", "");  /* empty: type 0 holds */
	assert_non_null(tz_get(c, "Foot", NULL));
	tzcache_free(c);
}

/* A v1-only file uses its 32-bit data; leap-second records are skipped, not applied. */
static void v1_files_and_leap_records_are_read(void **state)
{
	struct tzif_spec s = {
		.version = 1, .ntrans = 2, .trans = { 1000000000, 1100000000 },
		.idx = { 1, 0 }, .ntypes = 2, .utoff = { 3600, 7200 }, .isdst = { 0, 1 },
		.abbri = { 0, 4 }, .chars = "AAA\0BBB", .charcnt = 8, .leapcnt = 3,
		.footer = "AAA-1BBB,M3.5.0,M10.5.0/3",
	};
	unsigned char buf[1024];
	struct tzcache *c;
	struct tz_local lt;
	const struct tz *z;
	struct err e;

	(void)state;
	write_zone("V1", buf, build_tzif(buf, &s));
	s.version = 2;
	write_zone("V2", buf, build_tzif(buf, &s));
	c = tzcache_new(tmp_dir, 4);
	z = tz_get(c, "V1", &e);
	if (z == NULL)
		fail_msg("%s", e.msg);
	assert_int_equal(tz_local(z, 1000000000 - 1, &lt), 0);
	assert_string_equal(lt.abbr, "AAA");
	assert_int_equal(tz_local(z, 1000000000, &lt), 0);
	assert_string_equal(lt.abbr, "BBB");
	assert_int_equal(lt.utoff, 7200);
	assert_int_equal(lt.isdst, 1);
	assert_int_equal(tz_local(z, 1500000000, &lt), 0);  /* last type, no footer */
	assert_string_equal(lt.abbr, "AAA");
	assert_int_equal(lt.sec, 1500000000 % 60);           /* no leap correction */
	z = tz_get(c, "V2", &e);
	if (z == NULL)
		fail_msg("%s", e.msg);
	assert_int_equal(tz_local(z, 1500000000, &lt), 0);  /* July 2017: footer DST */
	assert_string_equal(lt.abbr, "BBB");
	assert_int_equal(lt.sec, 1500000000 % 60);
	tzcache_free(c);
}

static void cache_keeps_zones_and_refuses_beyond_its_size(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 2);
	const struct tz *a, *b;

	(void)state;
	assert_null(tzcache_new(NULL, 0));
	tzcache_free(NULL);
	a = tz_get(c, "Europe/Berlin", NULL);
	b = tz_get(c, "Asia/Kolkata", NULL);
	assert_non_null(a);
	assert_non_null(b);
	expect_refused(c, "Europe/London", "cache_full");
	expect_refused(c, "Foo/Bar", "cache_full");
	assert_ptr_equal(tz_get(c, "Europe/Berlin", NULL), a);
	assert_ptr_equal(tz_get(c, "Asia/Kolkata", NULL), b);
	assert_string_equal(tz_name(a), "Europe/Berlin");
	tzcache_free(c);
}

/* ---- tz_format ---- */

static void format_writes_english_fields_and_offsets(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 8);
	const struct tz *chi = tz_get(c, "America/Chicago", NULL);
	const struct tz *stj = tz_get(c, "America/St_Johns", NULL);
	const struct tz *kol = tz_get(c, "Asia/Kolkata", NULL);
	char buf[128];

	(void)state;
	assert_non_null(chi);
	assert_non_null(stj);
	assert_non_null(kol);
	/* 2026-11-22T19:00:00Z */
	assert_int_equal(tz_format(chi, 1795374000, "%a %b %d %Y %I:%M %p %Z (%z)", buf,
	    sizeof(buf)), strlen("Sun Nov 22 2026 01:00 PM CST (-0600)"));
	assert_string_equal(buf, "Sun Nov 22 2026 01:00 PM CST (-0600)");
	tz_format(chi, 1795374000 - 13 * 3600, "%Y-%m-%d %H:%M:%S %I%p", buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-22 00:00:00 12AM");
	tz_format(stj, 1795374000, "%H:%M %Z %z 100%%", buf, sizeof(buf));
	assert_string_equal(buf, "15:30 NST -0330 100%");
	tz_format(kol, 1795374000, "%H:%M %Z %z", buf, sizeof(buf));
	assert_string_equal(buf, "00:30 IST +0530");
	tz_format(chi, CHI_SPRING_GAP, "%H:%M %Z", buf, sizeof(buf));
	assert_string_equal(buf, "03:00 CDT");
	tzcache_free(c);
}

static void format_refuses_short_buffers_and_unknown_conversions(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 8);
	const struct tz *z = tz_get(c, "UTC", NULL);
	char buf[16];

	(void)state;
	assert_non_null(z);
	assert_int_equal(tz_format(z, 0, "%Y-%m-%d", buf, 11), 10);
	assert_string_equal(buf, "1970-01-01");
	assert_int_equal(tz_format(z, 0, "%Y-%m-%d", buf, 10), 0);
	assert_string_equal(buf, "");
	assert_int_equal(tz_format(z, 0, "%c", buf, sizeof(buf)), 0);
	assert_int_equal(tz_format(z, 0, "100%", buf, sizeof(buf)), 0);
	assert_int_equal(tz_format(z, 0, "%s", buf, sizeof(buf)), 0);
	assert_int_equal(tz_format(z, 0, "%Y", buf, 0), 0);
	assert_int_equal(tz_format(z, TZ_TIME_LIMIT + 1, "%Y", buf, sizeof(buf)), 0);
	assert_int_equal(tz_format(z, 0, "%a %H", buf, sizeof(buf)), 6);
	assert_string_equal(buf, "Thu 00");
	tzcache_free(c);
}

/* A test that writes zone files into its own directory, removed even if it fails. */
#define TMP_DIR_TEST(f) \
	cmocka_unit_test_setup_teardown(f, tmp_dir_setup, tmp_dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(local_time_matches_glibc_in_real_zones),
		TMP_DIR_TEST(footer_rules_match_glibc),
		TMP_DIR_TEST(dst_all_year_footer_is_always_dst),
		TMP_DIR_TEST(dst_without_rule_uses_us_rules_one_hour_ahead),
		cmocka_unit_test(wall_times_and_midnights_are_consistent_everywhere),
		cmocka_unit_test(spring_forward_gap_time_becomes_end_of_gap),
		cmocka_unit_test(fall_back_repeated_time_gives_the_earlier_instant),
		cmocka_unit_test(dst_days_are_23_and_25_hours_long),
		cmocka_unit_test(skipped_midnight_day_starts_at_first_existing_instant),
		cmocka_unit_test(half_hour_dst_gap_in_lord_howe),
		cmocka_unit_test(impossible_wall_times_are_refused),
		cmocka_unit_test(bad_and_unknown_names_are_refused),
		TMP_DIR_TEST(utc_is_built_in_without_tzdata),
		TMP_DIR_TEST(every_truncation_of_a_real_file_is_refused),
		TMP_DIR_TEST(random_bytes_are_refused),
		TMP_DIR_TEST(huge_counts_are_refused),
		TMP_DIR_TEST(flipped_bytes_never_crash),
		TMP_DIR_TEST(bad_footers_are_refused),
		TMP_DIR_TEST(v1_files_and_leap_records_are_read),
		cmocka_unit_test(cache_keeps_zones_and_refuses_beyond_its_size),
		cmocka_unit_test(format_writes_english_fields_and_offsets),
		cmocka_unit_test(format_refuses_short_buffers_and_unknown_conversions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
