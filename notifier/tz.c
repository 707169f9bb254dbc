/*
 * tz.c: IANA time zones read from TZif files (RFC 8536, versions 1-4) and their POSIX
 * TZ footers, for local wall time without the process-global TZ / tzset(): the
 * calendar, lookups and tz_format; the parsers are tz_parse.c, the zone cache
 * tz_cache.c.
 *
 * Stage: plan and admit (quiet hours, per-local-day caps) and send ({expires_local}).
 * Zone files are untrusted input: every count is checked against the bytes read before
 * anything is indexed, and a file that is not entirely valid is refused. Must never
 * read out of bounds, touch TZ or localtime(), keep global state, or read a file for
 * a zone that is already loaded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tz.h"
#include "tz_int.h"

#define TZ_DAY 86400LL
#define TZ_WINDOW (27 * 3600LL)   /* more than any |utoff| */
#define TZ_YEAR_LIMIT 100000

/* ---- calendar arithmetic (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b != 0 && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int64_t y, int m)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	days += 719468;
	era = floor_div(days, 146097);
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* ---- POSIX rule evaluation ---- */

/* Local seconds since 1970-01-01T00:00 (in the rule's own local time) at which
 * date r happens in year y. */
static int64_t rule_local(const struct tz_date *r, int64_t y)
{
	int64_t day = days_from_civil(y, 1, 1);

	switch (r->kind) {
	case TZ_DATE_JULIAN1:  /* 1..365, February 29 never counted */
		day += r->n - 1 + (is_leap(y) && r->n >= 60);
		break;
	case TZ_DATE_ZERO:     /* 0..365, February 29 counted */
		day += r->n;
		break;
	case TZ_DATE_MWD: {
		int64_t first = days_from_civil(y, r->m, 1);
		int wd1 = (int)(first - floor_div(first + 4, 7) * 7 + 4) % 7;
		int md = (r->d - wd1 + 7) % 7 + 1 + 7 * (r->w - 1);

		while (md > days_in_month(y, r->m))
			md -= 7;
		day = first + md - 1;
		break;
	}
	}
	return day * TZ_DAY + r->time;
}

static int64_t rule_year_of(const struct tz_rule *r, int64_t t)
{
	int64_t y;
	int m, d;

	civil_from_days(floor_div(t + r->std.utoff, TZ_DAY), &y, &m, &d);
	return y;
}

/* The type in effect at t: the one set by the latest rule change at or before t.
 * Looking at the changes of several years (not the usual "start < end" test within
 * one year) keeps rules whose times cross a year boundary right; at equal instants
 * DST wins, so "0/0,J365/25" is DST all year as RFC 8536 3.3.1 says. */
static const struct tz_type *rule_type(const struct tz_rule *r, int64_t t)
{
	int64_t y, yy, best = INT64_MIN, s, e;
	int dst = 0;

	if (!r->has_dst)
		return &r->std;
	y = rule_year_of(r, t);
	for (yy = y - 2; yy <= y + 1; yy++) {
		s = rule_local(&r->start, yy) - r->std.utoff;
		e = rule_local(&r->end, yy) - r->dst.utoff;
		if (e <= t && e > best) {
			best = e;
			dst = 0;
		}
		if (s <= t && s >= best) {
			best = s;
			dst = 1;
		}
	}
	return dst ? &r->dst : &r->std;
}

/* The first rule change strictly after t (the type may stay the same). */
static int64_t rule_next(const struct tz_rule *r, int64_t t)
{
	int64_t y, yy, best = INT64_MAX, s, e;

	y = rule_year_of(r, t);
	for (yy = y - 1; yy <= y + 2; yy++) {
		s = rule_local(&r->start, yy) - r->std.utoff;
		e = rule_local(&r->end, yy) - r->dst.utoff;
		if (s > t && s < best)
			best = s;
		if (e > t && e < best)
			best = e;
	}
	return best;
}

/* ---- zone lookups ---- */

/* The type in effect at t (|t| <= TZ_TIME_LIMIT + TZ_WINDOW). */
static const struct tz_type *type_at(const struct tz *z, int64_t t)
{
	size_t lo, hi, mid;

	if (z->ntrans == 0 || t >= z->trans[z->ntrans - 1]) {
		if (z->has_rule)
			return rule_type(&z->rule, t);
		if (z->ntrans == 0)
			return &z->types[0];
		return &z->types[z->trans_type[z->ntrans - 1]];
	}
	if (t < z->trans[0])
		return &z->types[0];
	lo = 0;                 /* trans[lo] <= t < trans[hi] */
	hi = z->ntrans - 1;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return &z->types[z->trans_type[lo]];
}

/* The first instant after t at which the type may change, or INT64_MAX. */
static int64_t next_change(const struct tz *z, int64_t t)
{
	size_t lo, hi, mid;

	if (z->ntrans > 0 && t < z->trans[z->ntrans - 1]) {
		if (t < z->trans[0])
			return z->trans[0];
		lo = 0;
		hi = z->ntrans - 1;
		while (hi - lo > 1) {
			mid = lo + (hi - lo) / 2;
			if (z->trans[mid] <= t)
				lo = mid;
			else
				hi = mid;
		}
		return z->trans[hi];
	}
	if (z->has_rule && z->rule.has_dst)
		return rule_next(&z->rule, t);
	return INT64_MAX;
}

/* The first instant u > after at which the wall clock shows local seconds L, or jumps
 * forward past L (then u is the end of the gap). Walks the constant-offset segments
 * of a window wide enough to hold every u with u + utoff(u) == L. */
static int64_t resolve_local(const struct tz *z, int64_t L, int64_t after)
{
	int64_t a = L - TZ_WINDOW, last = L + TZ_WINDOW, b, cand;
	const struct tz_type *ty = type_at(z, a), *next;

	while (a <= last) {
		b = next_change(z, a);
		cand = L - ty->utoff;
		if (cand >= a && cand < b && cand > after)
			return cand;
		if (b > last)
			break;
		next = type_at(z, b);
		if (cand >= b && L - next->utoff < b && b > after)
			return b;
		a = b;
		ty = next;
	}
	return TZ_TIME_ERROR;
}

static void fill_local(int64_t t, const struct tz_type *ty, struct tz_local *out)
{
	int64_t lt = t + ty->utoff, days = floor_div(lt, TZ_DAY), secs = lt - days * TZ_DAY;
	int64_t y;

	civil_from_days(days, &y, &out->month, &out->day);
	out->year = (int)y;
	out->hour = (int)(secs / 3600);
	out->min = (int)(secs / 60 % 60);
	out->sec = (int)(secs % 60);
	out->wday = (int)(days - floor_div(days + 4, 7) * 7 + 4) % 7;
	out->utoff = ty->utoff;
	out->isdst = ty->isdst;
	memcpy(out->abbr, ty->abbr, sizeof(out->abbr));
}

int tz_local(const struct tz *z, int64_t t, struct tz_local *out)
{
	if (z == NULL || out == NULL || t < -TZ_TIME_LIMIT || t > TZ_TIME_LIMIT)
		return -1;
	fill_local(t, type_at(z, t), out);
	return 0;
}

int64_t tz_from_local(const struct tz *z, int year, int month, int day, int hour,
    int min, int sec)
{
	int64_t L;

	if (z == NULL || year < -TZ_YEAR_LIMIT || year > TZ_YEAR_LIMIT || month < 1 ||
	    month > 12 || day < 1 || day > days_in_month(year, month) || hour < 0 ||
	    hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 59)
		return TZ_TIME_ERROR;
	L = days_from_civil(year, month, day) * TZ_DAY + hour * 3600 + min * 60 + sec;
	return resolve_local(z, L, INT64_MIN);
}

int64_t tz_local_midnight_after(const struct tz *z, int64_t t)
{
	const struct tz_type *ty;
	int64_t lt, u;

	if (z == NULL || t < -TZ_TIME_LIMIT || t > TZ_TIME_LIMIT)
		return TZ_TIME_ERROR;
	ty = type_at(z, t);
	lt = t + ty->utoff;
	u = resolve_local(z, (floor_div(lt, TZ_DAY) + 1) * TZ_DAY, t);
	/* Unreachable with offsets within +-26 h: the wall clock must reach the next
	 * midnight inside the window. Keep the "always > t" promise regardless. */
	return u == TZ_TIME_ERROR ? t + TZ_DAY : u;
}

const char *tz_name(const struct tz *z)
{
	return z == NULL ? "" : z->name;
}

/* ---- tz_format ---- */

struct tz_out {
	char *buf;
	size_t size, len;
	int overflow;
};

static void out_str(struct tz_out *o, const char *s, size_t n)
{
	if (o->overflow || n >= o->size - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* v in decimal, at least width digits (zero-padded); a minus sign first when
 * negative. Rendered for every text with a time in it: no printf. */
static void out_num(struct tz_out *o, int width, int v)
{
	char tmp[16];
	size_t n = sizeof(tmp);
	unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;

	do
		tmp[--n] = (char)('0' + u % 10);
	while ((u /= 10) != 0 && n > 1);
	while ((int)(sizeof(tmp) - n) < width && n > 1)
		tmp[--n] = '0';
	if (v < 0)
		tmp[--n] = '-';
	out_str(o, tmp + n, sizeof(tmp) - n);
}

size_t tz_format(const struct tz *z, int64_t t, const char *fmt, char *buf, size_t size)
{
	static const char *const wdays[7] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char *const months[12] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tz_out o = { buf, size, 0, 0 };
	struct tz_local lt;
	const char *p;
	int off;

	if (buf == NULL || size == 0)
		return 0;
	buf[0] = '\0';
	if (fmt == NULL || tz_local(z, t, &lt) != 0)
		return 0;
	for (p = fmt; !o.overflow && *p != '\0'; p++) {
		if (*p != '%') {
			out_str(&o, p, 1);
			continue;
		}
		switch (*++p) {
		case 'Y': out_num(&o, 0, lt.year); break;
		case 'm': out_num(&o, 2, lt.month); break;
		case 'd': out_num(&o, 2, lt.day); break;
		case 'H': out_num(&o, 2, lt.hour); break;
		case 'M': out_num(&o, 2, lt.min); break;
		case 'S': out_num(&o, 2, lt.sec); break;
		case 'I': out_num(&o, 2, lt.hour % 12 == 0 ? 12 : lt.hour % 12); break;
		case 'p': out_str(&o, lt.hour < 12 ? "AM" : "PM", 2); break;
		case 'a': out_str(&o, wdays[lt.wday], 3); break;
		case 'b': out_str(&o, months[lt.month - 1], 3); break;
		case 'Z': out_str(&o, lt.abbr, strlen(lt.abbr)); break;
		case 'z':
			off = (lt.utoff < 0 ? -lt.utoff : lt.utoff) / 60;
			out_str(&o, lt.utoff < 0 ? "-" : "+", 1);
			out_num(&o, 4, off / 60 * 100 + off % 60);
			break;
		case '%': out_str(&o, "%", 1); break;
		default:  /* unknown conversion or a lone '%' at the end */
			o.overflow = 1;
			break;
		}
	}
	if (o.overflow) {
		buf[0] = '\0';
		return 0;
	}
	return o.len;
}
