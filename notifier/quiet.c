/*
 * quiet.c: the law of the recipient's place as data: legal sending windows, caps and
 * quiet hours (stages: admit and send).
 *
 * Pure over its arguments. A push's places are its +1 area code's state and its
 * stated region; its zones, the stated one and the area code's. Every window row of
 * every place applies in every zone (rows only intersect, so the stricter always
 * wins); quiet hours apply in the stated zone. Must never answer "allowed" for an
 * instant it could not place in every local time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "areacodes.h"
#include "quiet.h"

int
quiet_place_known(const char *region)
{
	return areacode_place_known(region);
}

/* Copies s into a region slot, cut to QUIET_PLACE_MAX - 1 bytes as snprintf would:
 * this runs several times a push, snprintf was most of its cost. */
static void
place_copy(char *dst, const char *s)
{
	size_t n = strnlen(s, QUIET_PLACE_MAX - 1);

	memcpy(dst, s, n);
	dst[n] = '\0';
}

void
quiet_place_of(const struct subscriber *s, struct quiet_place *p)
{
	const struct areacode *a = areacode_of(s->phone);
	size_t i, nz = areacode_zone_count();

	memset(p, 0, sizeof(*p));
	if (a != NULL) {
		place_copy(p->regions[p->nregions++], a->place);
		for (i = 0; i < nz && p->nzones < QUIET_ZONES_MAX; i++)
			if (a->zones & (UINT64_C(1) << i))
				p->zones[p->nzones++] = areacode_zone_name(i);
	}
	if (s->region != NULL && s->region[0] != '\0' &&
	    (p->nregions == 0 || strcmp(p->regions[0], s->region) != 0))
		place_copy(p->regions[p->nregions++], s->region);
}

int
quiet_zones_load(struct tzcache *zones, char *why, size_t size)
{
	struct err err;
	size_t i;
	int rv = 0;

	/* Every zone that can be read is loaded, also after one that cannot. */
	for (i = 0; i < areacode_zone_count(); i++) {
		err_clear(&err);
		if (tz_get(zones, areacode_zone_name(i), &err) == NULL && rv == 0) {
			snprintf(why, size, "%s: %s", areacode_zone_name(i), err.msg);
			rv = -1;
		}
	}
	return rv;
}

/* 1 when minute m of the day lies in [start, end), wrapping midnight. */
static int
in_span(int m, int start, int end)
{
	return start < end ? (m >= start && m < end) : (m >= start || m < end);
}

/* 1 when row w applies to place p ("" applies everywhere). */
static int
row_applies(const char *region, const struct quiet_place *p)
{
	size_t i;

	if (region[0] == '\0')
		return 1;
	for (i = 0; i < p->nregions; i++)
		if (strcmp(p->regions[i], region) == 0)
			return 1;
	return 0;
}

/* The statutory row of region (or the federal one) that keeps minute m of weekday
 * wd closed, or NULL when none does. */
static const struct quiet_window *
statutory_closed(const struct quiet_rules *q, const char *region, int wd, int m)
{
	size_t i;

	for (i = 0; i < q->nwindows; i++) {
		const struct quiet_window *w = &q->windows[i];

		if (!w->statutory || (w->region[0] != '\0' && strcmp(w->region, region) != 0))
			continue;
		if ((w->wday == QUIET_ANY_DAY || w->wday == wd) &&
		    !in_span(m, w->start_min, w->end_min))
			return w;
	}
	return NULL;
}

int
quiet_rules_add_window(struct quiet_rules *q, const char *region, int wday,
    int start_min, int end_min, int statutory, char *why, size_t size)
{
	const struct quiet_window *sw;
	struct quiet_window *w;
	int wd, m;

	if (start_min < 0 || start_min > 1439 || end_min < 1 || end_min > 1440 ||
	    start_min == end_min || wday < QUIET_ANY_DAY || wday > 6) {
		snprintf(why, size, "a window is HH:MM-HH:MM within 00:00-24:00, start and "
		    "end different");
		return -1;
	}
	if (region[0] != '\0' && !quiet_place_known(region)) {
		snprintf(why, size, "unknown place '%s' (one of the area-code table's: "
		    "US-XX, CA-XX or a NANP country such as JM)",
		    region);
		return -1;
	}
	if (q->nwindows == QUIET_ROWS_MAX) {
		snprintf(why, size, "more than %d window rows", QUIET_ROWS_MAX);
		return -1;
	}
	if (!statutory)
		for (wd = 0; wd < 7; wd++) {
			if (wday != QUIET_ANY_DAY && wd != wday)
				continue;
			for (m = 0; m < 1440; m++)
				if (in_span(m, start_min, end_min) &&
				    (sw = statutory_closed(q, region, wd, m)) != NULL) {
					snprintf(why, size, "opens %02d:%02d, which the statutory "
					    "window %02d:%02d-%02d:%02d of %s keeps closed: rows only "
					    "tighten, so it cannot loosen it", m / 60, m % 60,
					    sw->start_min / 60, sw->start_min % 60, sw->end_min / 60,
					    sw->end_min % 60, sw->region[0] ? sw->region :
					    "every place");
					return -2;
				}
		}
	w = &q->windows[q->nwindows++];
	snprintf(w->region, sizeof(w->region), "%s", region);
	w->wday = wday;
	w->start_min = start_min;
	w->end_min = end_min;
	w->statutory = statutory;
	return 0;
}

int
quiet_rules_add_cap(struct quiet_rules *q, const char *region, int max, long window_s,
    int statutory, char *why, size_t size)
{
	struct quiet_cap *c;
	size_t i;

	if (max < 1 || max > 1000 || window_s < 3600 || window_s > 7 * 86400) {
		snprintf(why, size, "a cap is N/Hh: 1 to 1000 texts per 1 to 168 hours");
		return -1;
	}
	if (!quiet_place_known(region)) {
		snprintf(why, size, "unknown place '%s' (one of the area-code table's: "
		    "US-XX, CA-XX or a NANP country such as JM)",
		    region);
		return -1;
	}
	if (q->ncaps == QUIET_ROWS_MAX) {
		snprintf(why, size, "more than %d cap rows", QUIET_ROWS_MAX);
		return -1;
	}
	for (i = 0; !statutory && i < q->ncaps; i++)
		if (q->caps[i].statutory && strcmp(q->caps[i].region, region) == 0 &&
		    (max > q->caps[i].max || window_s < q->caps[i].window_s)) {
			snprintf(why, size, "the law allows at most %d per %ld h for %s: a cap "
			    "row can only tighten it", q->caps[i].max, q->caps[i].window_s / 3600,
			    region);
			return -2;
		}
	c = &q->caps[q->ncaps++];
	snprintf(c->region, sizeof(c->region), "%s", region);
	c->max = max;
	c->window_s = window_s;
	c->statutory = statutory;
	return 0;
}

void
quiet_rules_default(struct quiet_rules *q)
{
	static const char *const eight_pm[] = { "US-FL", "US-OK", "US-MD", "US-WA" };
	static const char *const three_a_day[] = { "US-FL", "US-OK", "US-MD" };
	char why[160];
	size_t i;

	memset(q, 0, sizeof(*q));
	/* ORDER STATUTE: each row's statute is in docs/compliance.md §5.2. */
	quiet_rules_add_window(q, "", QUIET_ANY_DAY, 8 * 60, 21 * 60, 1, why, sizeof(why));
	for (i = 0; i < sizeof(eight_pm) / sizeof(eight_pm[0]); i++)
		quiet_rules_add_window(q, eight_pm[i], QUIET_ANY_DAY, 8 * 60, 20 * 60, 1, why,
		    sizeof(why));
	quiet_rules_add_window(q, "US-CT", QUIET_ANY_DAY, 9 * 60, 20 * 60, 1, why,
	    sizeof(why));
	for (i = 0; i < sizeof(three_a_day) / sizeof(three_a_day[0]); i++)
		quiet_rules_add_cap(q, three_a_day[i], 3, 86400, 1, why, sizeof(why));
}

struct quiet_limit
quiet_limit_of(const struct quiet_rules *q, const struct quiet_place *p)
{
	struct quiet_limit l = { 0, 0 };
	size_t i;

	for (i = 0; i < q->ncaps; i++) {
		if (!row_applies(q->caps[i].region, p))
			continue;
		if (l.max == 0 || q->caps[i].max < l.max)
			l.max = q->caps[i].max;
		if (q->caps[i].window_s > l.window_s)
			l.window_s = q->caps[i].window_s;
	}
	return l;
}

/* The zones of a push: the stated one first. */
struct quiet_zones {
	const struct tz *z[QUIET_ZONES_MAX + 1];
	size_t n;
};

/* 1 when every window of p is open at t in every zone, and (own = 1) t is outside
 * s's quiet hours in its stated zone; 0 otherwise, also when t cannot be placed. */
static int
allowed_at(const struct quiet_rules *q, const struct quiet_place *p,
    const struct quiet_zones *zs, const struct subscriber *s, int own, int64_t t)
{
	struct tz_local l;
	size_t i, k;
	int m;

	for (k = 0; k < zs->n; k++) {
		if (tz_local(zs->z[k], t, &l) < 0)
			return 0;
		m = l.hour * 60 + l.min;
		for (i = 0; i < q->nwindows; i++) {
			const struct quiet_window *w = &q->windows[i];

			if (row_applies(w->region, p) && (w->wday == QUIET_ANY_DAY ||
			    w->wday == l.wday) && !in_span(m, w->start_min, w->end_min))
				return 0;
		}
		if (k == 0 && own && s->quiet_start_min >= 0 &&
		    s->quiet_start_min != s->quiet_end_min &&
		    in_span(m, s->quiet_start_min, s->quiet_end_min))
			return 0;
	}
	return 1;
}

/* Days since 1970-01-01 of a civil date, and back (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* The first allowed instant after now within eight local days, or QUIET_NEVER. An
 * allowed stretch begins where some window opens, where quiet hours end or at a
 * midnight (a weekday row changes there), in some zone: only those are tried. */
static int64_t
next_start(const struct quiet_rules *q, const struct quiet_place *p,
    const struct quiet_zones *zs, const struct subscriber *s, int own, int64_t now)
{
	int starts[QUIET_ROWS_MAX + 2], nstarts, d, y, mo, dd;
	int64_t best = QUIET_NEVER, day0, t;
	struct tz_local l;
	size_t i, k;

	for (k = 0; k < zs->n; k++) {
		if (tz_local(zs->z[k], now, &l) < 0)
			return QUIET_NEVER;
		nstarts = 0;
		starts[nstarts++] = 0;
		for (i = 0; i < q->nwindows; i++)
			if (row_applies(q->windows[i].region, p))
				starts[nstarts++] = q->windows[i].start_min;
		if (k == 0 && own && s->quiet_start_min >= 0 &&
		    s->quiet_start_min != s->quiet_end_min)
			starts[nstarts++] = s->quiet_end_min;
		day0 = days_from_civil(l.year, l.month, l.day);
		for (d = 0; d <= 8; d++) {
			civil_from_days(day0 + d, &y, &mo, &dd);
			for (i = 0; i < (size_t)nstarts; i++) {
				t = tz_from_local(zs->z[k], y, mo, dd, starts[i] / 60 % 24,
				    starts[i] % 60, 0);
				if (t == TZ_TIME_ERROR || t <= now || t >= best)
					continue;
				if (allowed_at(q, p, zs, s, own, t))
					best = t;
			}
		}
	}
	return best;
}

int64_t
quiet_next_allowed(const struct quiet_rules *q, struct tzcache *zones,
    const struct tz *z, const struct subscriber *s, int64_t now)
{
	struct quiet_place p;
	struct quiet_zones zs;
	struct tz_local l;
	int64_t best;
	size_t i;

	if (q == NULL || z == NULL || s == NULL || tz_local(z, now, &l) < 0)
		return TZ_TIME_ERROR;
	quiet_place_of(s, &p);
	zs.n = 0;
	zs.z[zs.n++] = z;
	for (i = 0; i < p.nzones; i++) {
		const struct tz *az = zones != NULL ? tz_get(zones, p.zones[i], NULL) : NULL;

		if (az == NULL)
			return TZ_TIME_ERROR;
		if (strcmp(tz_name(az), tz_name(z)) != 0)
			zs.z[zs.n++] = az;
	}
	if (allowed_at(q, &p, &zs, s, 1, now))
		return now;
	if ((best = next_start(q, &p, &zs, s, 1, now)) != QUIET_NEVER)
		return best;
	/* Never: because of the subscriber's own hours, or of the law alone? */
	return next_start(q, &p, &zs, s, 0, now - 1) == QUIET_NEVER &&
	    !allowed_at(q, &p, &zs, s, 0, now) ? QUIET_NO_WINDOW : QUIET_NEVER;
}

int
quiet_local_day(const struct tz *z, int64_t now, char *buf, size_t size)
{
	struct tz_local l;

	if (tz_local(z, now, &l) < 0 || size < 9)
		return -1;
	snprintf(buf, size, "%04d%02d%02d", l.year % 10000, l.month, l.day);
	return 0;
}

int64_t
quiet_day_start(const struct tz *z, int64_t now)
{
	struct tz_local l;

	if (tz_local(z, now, &l) < 0)
		return TZ_TIME_ERROR;
	return tz_from_local(z, l.year, l.month, l.day, 0, 0, 0);
}
