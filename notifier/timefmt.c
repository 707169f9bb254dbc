/*
 * timefmt.c: RFC 3339 <-> epoch seconds for the deal and subscriber contracts, and
 * RFC 2822 -> epoch seconds for Twilio's message dates.
 *
 * Stage: ingest and admin (used while validating untrusted JSON).
 * Civil dates are converted with hand-written days-from-civil arithmetic, so the result
 * never depends on TZ, the locale or timegm(). Must never read global state, allocate,
 * or accept a date it cannot format back (years 0000..9999 only).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "timefmt.h"

/* The range every parsed time falls in and every formatted time is clamped to:
 * 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define TIME_MIN (-62167219200LL)
#define TIME_MAX (253402300799LL)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && is_leap(y))
		return 29;
	return dim[m - 1];
}

/* Reads exactly n ASCII digits at *p into *out and advances *p; -1 when any is not a
 * digit (a NUL stops the scan, so short strings are safe). */
static int digits(const char **p, int n, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (unsigned)(c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* date-time = full-date "T" partial-time time-offset                (RFC 3339 5.6)
 * full-date = YYYY "-" MM "-" DD;  partial-time = hh ":" mm ":" ss [ "." 1*DIGIT ]
 * time-offset = "Z" / ("+" / "-") hh ":" mm */
int time_parse_rfc3339(const char *s, int64_t *out)
{
	const char *p = s;
	unsigned year, mon, day, hour, min, sec, oh = 0, om = 0;
	int sign = 0;
	int64_t t;

	if (s == NULL || out == NULL)
		return -1;
	if (digits(&p, 4, &year) < 0 || *p++ != '-' ||
	    digits(&p, 2, &mon) < 0 || *p++ != '-' ||
	    digits(&p, 2, &day) < 0)
		return -1;
	if (*p != 'T' && *p != 't')
		return -1;
	p++;
	if (digits(&p, 2, &hour) < 0 || *p++ != ':' ||
	    digits(&p, 2, &min) < 0 || *p++ != ':' ||
	    digits(&p, 2, &sec) < 0)
		return -1;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;                 /* fractions are truncated */
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0)
			return -1;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;

	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
		return -1;
	if (hour > 23 || min > 59 || sec > 60 || oh > 23 || om > 59)
		return -1;
	if (sec == 60)
		sec = 59;                    /* leap second: epoch time has no room for it */

	t = days_from_civil(year, mon, day) * 86400 +
	    (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
	t -= sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
	if (t < TIME_MIN || t > TIME_MAX)
		return -1;
	*out = t;
	return 0;
}

/* The value of the 3-letter English name at p among names (case-insensitive), 0-based,
 * or -1. */
static int name3(const char *p, const char *const *names, int n)
{
	int i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < 3; k++) {
			char c = p[k];

			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (c != names[i][k])
				break;
		}
		if (k == 3)
			return i;
	}
	return -1;
}

/* date-time = [ day-name "," ] SP* day SP month SP year SP hh ":" mm [ ":" ss ] SP zone
 * zone = ("+" / "-") 4DIGIT / "GMT" / "UT" / "UTC" / "Z"                 (RFC 2822 3.3) */
int time_parse_rfc2822(const char *s, int64_t *out)
{
	static const char *const days[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
	static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
	    "aug", "sep", "oct", "nov", "dec" };
	const char *p = s;
	unsigned day, year, hour, min, sec = 0, zh, zm;
	int mon, sign = 0;
	int64_t t;

	if (s == NULL || out == NULL)
		return -1;
	while (*p == ' ')
		p++;
	if (p[0] != '\0' && p[1] != '\0' && p[2] != '\0' && name3(p, days, 7) >= 0 &&
	    p[3] == ',') {
		p += 4;
		while (*p == ' ')
			p++;
	}
	if (digits(&p, 2, &day) < 0 && digits(&p, 1, &day) < 0)
		return -1;
	if (*p++ != ' ' || p[0] == '\0' || p[1] == '\0' || p[2] == '\0' ||
	    (mon = name3(p, months, 12)) < 0)
		return -1;
	p += 3;
	if (*p++ != ' ' || digits(&p, 4, &year) < 0 || *p++ != ' ')
		return -1;
	if (digits(&p, 2, &hour) < 0 || *p++ != ':' || digits(&p, 2, &min) < 0)
		return -1;
	if (*p == ':') {
		p++;
		if (digits(&p, 2, &sec) < 0)
			return -1;
	}
	if (*p++ != ' ')
		return -1;
	zh = zm = 0;
	if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (digits(&p, 2, &zh) < 0 || digits(&p, 2, &zm) < 0)
			return -1;
	} else if (strcmp(p, "GMT") == 0 || strcmp(p, "UTC") == 0) {
		p += 3;
	} else if (strcmp(p, "UT") == 0) {
		p += 2;
	} else if (strcmp(p, "Z") == 0) {
		p += 1;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	if (day < 1 || day > days_in_month(year, (unsigned)mon + 1) || hour > 23 ||
	    min > 59 || sec > 60 || zh > 23 || zm > 59)
		return -1;
	if (sec == 60)
		sec = 59;
	t = days_from_civil(year, (unsigned)mon + 1, day) * 86400 +
	    (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
	t -= sign * ((int64_t)zh * 3600 + (int64_t)zm * 60);
	if (t < TIME_MIN || t > TIME_MAX)
		return -1;
	*out = t;
	return 0;
}

char *time_format_rfc3339(int64_t t, char *buf, size_t size)
{
	int64_t days, secs, y;
	unsigned m, d;

	if (buf == NULL || size == 0)
		return buf;
	if (t < TIME_MIN)
		t = TIME_MIN;
	if (t > TIME_MAX)
		t = TIME_MAX;
	days = t / 86400;
	secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	snprintf(buf, size, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", (long long)y, m, d,
	    (long long)(secs / 3600), (long long)(secs / 60 % 60), (long long)(secs % 60));
	return buf;
}
