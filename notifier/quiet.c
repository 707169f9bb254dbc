/*
 * quiet.c: legal sending windows and quiet hours (stage: admit).
 *
 * Pure over its arguments. Windows are minutes after local midnight in the
 * subscriber's zone; an instant is allowed when it is inside the region's window and
 * outside the subscriber's quiet hours. Must never answer "allowed" for an instant it
 * could not place in local time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quiet.h"

/* North American area codes of the states with windows of their own by default. */
static const struct {
	const char *region;
	const char *codes;
} quiet_area_codes[] = {
	{ "US-FL", "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 "
	    "813 850 863 904 941 954" },
	{ "US-OK", "405 539 572 580 918" },
};

void
quiet_rules_default(struct quiet_rules *q)
{
	memset(q, 0, sizeof(*q));
	q->def.start_min = 8 * 60;
	q->def.end_min = 21 * 60;
	quiet_rules_set(q, "US-FL", 8 * 60, 20 * 60);
	quiet_rules_set(q, "US-OK", 8 * 60, 20 * 60);
}

int
quiet_rules_set(struct quiet_rules *q, const char *region, int start_min, int end_min)
{
	size_t i;

	if (start_min < 0 || start_min > 1440 || end_min < 0 || end_min > 1440 ||
	    start_min == end_min || strlen(region) >= sizeof(q->def.region))
		return -1;
	for (i = 0; i < q->nregions; i++)
		if (strcmp(q->regions[i].region, region) == 0)
			break;
	if (i == QUIET_REGIONS_MAX)
		return -1;
	snprintf(q->regions[i].region, sizeof(q->regions[i].region), "%s", region);
	q->regions[i].start_min = start_min;
	q->regions[i].end_min = end_min;
	if (i == q->nregions)
		q->nregions++;
	return 0;
}

static const struct quiet_window *
quiet_window_of(const struct quiet_rules *q, const char *region)
{
	size_t i;

	for (i = 0; i < q->nregions; i++)
		if (strcmp(q->regions[i].region, region) == 0)
			return &q->regions[i];
	return &q->def;
}

const char *
quiet_region_of(const struct quiet_rules *q, const struct subscriber *s, char *buf,
    size_t size)
{
	char area[4];
	size_t i;

	(void)q;
	if (s->phone != NULL && strncmp(s->phone, "+1", 2) == 0 && strlen(s->phone) == 12) {
		memcpy(area, s->phone + 2, 3);
		area[3] = '\0';
		for (i = 0; i < sizeof(quiet_area_codes) / sizeof(quiet_area_codes[0]); i++) {
			const char *p = quiet_area_codes[i].codes;
			for (; (p = strstr(p, area)) != NULL; p += 3)
				if ((p == quiet_area_codes[i].codes || p[-1] == ' ') &&
				    (p[3] == ' ' || p[3] == '\0')) {
					snprintf(buf, size, "%s", quiet_area_codes[i].region);
					return buf;
				}
		}
	}
	snprintf(buf, size, "%s", s->region != NULL ? s->region : "");
	return buf;
}

/* 1 when minute m of the day lies in [start, end), wrapping midnight. */
static int
in_span(int m, int start, int end)
{
	return start < end ? (m >= start && m < end) : (m >= start || m < end);
}

static int
allowed_at(const struct quiet_window *w, const struct subscriber *s,
    const struct tz *z, int64_t t)
{
	struct tz_local l;
	int m;

	if (tz_local(z, t, &l) < 0)
		return 0;
	m = l.hour * 60 + l.min;
	if (!in_span(m, w->start_min, w->end_min))
		return 0;
	if (s->quiet_start_min >= 0 && s->quiet_start_min != s->quiet_end_min &&
	    in_span(m, s->quiet_start_min, s->quiet_end_min))
		return 0;
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

int64_t
quiet_next_allowed(const struct quiet_rules *q, const struct tz *z,
    const struct subscriber *s, int64_t now)
{
	const struct quiet_window *w;
	struct tz_local l;
	char region[16];
	int64_t best = QUIET_NEVER, day0, t;
	int starts[2], nstarts = 0, d, i, y, mo, dd;

	if (q == NULL || z == NULL || s == NULL || tz_local(z, now, &l) < 0)
		return TZ_TIME_ERROR;
	w = quiet_window_of(q, quiet_region_of(q, s, region, sizeof(region)));
	if (allowed_at(w, s, z, now))
		return now;
	/* An allowed stretch starts where the window opens or where quiet hours end. */
	starts[nstarts++] = w->start_min;
	if (s->quiet_start_min >= 0 && s->quiet_start_min != s->quiet_end_min)
		starts[nstarts++] = s->quiet_end_min;
	day0 = days_from_civil(l.year, l.month, l.day);
	for (d = 0; d <= 2; d++) {
		civil_from_days(day0 + d, &y, &mo, &dd);
		for (i = 0; i < nstarts; i++) {
			t = tz_from_local(z, y, mo, dd, starts[i] / 60 % 24, starts[i] % 60, 0);
			if (t == TZ_TIME_ERROR || t <= now || t >= best)
				continue;
			if (allowed_at(w, s, z, t))
				best = t;
		}
	}
	return best;
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
