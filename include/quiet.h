/*
 * quiet.h: when and how often a subscriber may be texted, by the law of the
 * recipient's place (stages: admit and send).
 *
 * The place of a push is what its number says (a +1 number's area code: a state and
 * the zone or zones it covers) joined with what the subscriber says (their time zone
 * and region). Rules are data: rows of windows (local time, optionally per weekday)
 * and caps (texts per rolling period) by place; every row that applies to any place
 * of a push applies, each window evaluated in every zone of the push, so the
 * stricter always wins. The subscriber's own quiet hours are read in their stated
 * zone. Pure: time, rules and zones come in as arguments.
 */
#ifndef DEALPUSH_QUIET_H
#define DEALPUSH_QUIET_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "tz.h"

#define QUIET_ROWS_MAX 64
#define QUIET_PLACE_MAX 16       /* "US-FL" and its NUL, with room to spare */
#define QUIET_ZONES_MAX 6        /* zones of one area code (AREACODE_ZONES_MAX) */
#define QUIET_ANY_DAY (-1)
#define QUIET_NEVER INT64_MAX    /* the subscriber's quiet hours cover every window */
#define QUIET_NO_WINDOW (INT64_MAX - 1)  /* the windows of the places never meet */

/* A legal sending window: [start_min, end_min) minutes after local midnight. */
struct quiet_window {
	char region[QUIET_PLACE_MAX];   /* "US-FL"; "" = every place (the federal one) */
	int wday;                       /* 0 = Sunday .. 6; QUIET_ANY_DAY */
	int start_min;                  /* inclusive, 0..1439 */
	int end_min;                    /* exclusive, 1..1440; may be below start_min */
	int statutory;                  /* built in: config may tighten, never loosen */
};

/* At most max texts per rolling window_s seconds to one subscriber. */
struct quiet_cap {
	char region[QUIET_PLACE_MAX];
	int max;
	long window_s;
	int statutory;
};

struct quiet_rules {
	struct quiet_window windows[QUIET_ROWS_MAX];
	size_t nwindows;
	struct quiet_cap caps[QUIET_ROWS_MAX];
	size_t ncaps;
	int cap_per_campaign;           /* 1: the caps count per campaign (a deal without
	                                 * one is its own), not across every deal */
};

/* The places of one subscriber: where its number is and what it says. */
struct quiet_place {
	char regions[2][QUIET_PLACE_MAX];   /* the area code's state, the stated region */
	size_t nregions;
	const char *zones[QUIET_ZONES_MAX]; /* the area code's zones (static names) */
	size_t nzones;
};

/* The strictest cap of a subscriber's places; max 0 = none. */
struct quiet_limit {
	int max;
	long window_s;
};

/* Fills q with the built-in rows: 08:00-21:00 everywhere; US-FL, US-OK, US-MD, US-WA
 * 08:00-20:00; US-CT 09:00-20:00; US-FL, US-OK, US-MD 3 texts per 24 h. */
void quiet_rules_default(struct quiet_rules *q);

/*
 * Adds a window row (statutory = 0: an operator's). Returns 0; -1 with why filled when
 * the minutes are out of range or equal, the place is unknown (quiet_place_known) or
 * the table is full; -2 with why filled when the row would open a minute that a
 * statutory row of its place (or the federal one) keeps closed: rows only ever
 * intersect, so such a row would change nothing, and it is refused as a mistake.
 */
int quiet_rules_add_window(struct quiet_rules *q, const char *region, int wday,
    int start_min, int end_min, int statutory, char *why, size_t size);

/* Adds a cap row; as quiet_rules_add_window (-2: more texts or a shorter period than
 * a statutory cap of the same place). */
int quiet_rules_add_cap(struct quiet_rules *q, const char *region, int max,
    long window_s, int statutory, char *why, size_t size);

/* 1 when region names a place of the area-code table ("US-FL", "US-PR", "US-DC",
 * "CA-ON", "JM"), else 0. */
int quiet_place_known(const char *region);

/* The places of s: its +1 area code's state, province or Caribbean country and
 * zones (none for another country code, a toll-free or unknown code) and its stated
 * region. Fills *p. */
void quiet_place_of(const struct subscriber *s, struct quiet_place *p);

/* The strictest cap of p's places (the smallest max, over the longest period of the
 * rows that apply): max 0 when none applies. */
struct quiet_limit quiet_limit_of(const struct quiet_rules *q, const struct quiet_place *p);

/* Loads every zone of the area-code table into zones (start-up: tz_get reads files).
 * Returns 0, or -1 naming the first zone that failed in why. */
int quiet_zones_load(struct tzcache *zones, char *why, size_t size);

/*
 * The first instant at or after now when s may be texted: now when allowed; else the
 * start of the next allowed stretch within eight local days (DST-correct, weekday rows
 * included); QUIET_NO_WINDOW when the windows of s's places never meet in that time,
 * QUIET_NEVER when they do but s's own quiet hours cover them. z is s's stated zone
 * (quiet hours are read there); the area code's zones come from zones. TZ_TIME_ERROR
 * on bad arguments or an area-code zone zones cannot give: never "allowed" for an
 * instant not placed in every local time.
 */
int64_t quiet_next_allowed(const struct quiet_rules *q, struct tzcache *zones,
    const struct tz *z, const struct subscriber *s, int64_t now);

/* "YYYYMMDD" of now's local date in z into buf (at least 9 bytes). Returns 0 or -1. */
int quiet_local_day(const struct tz *z, int64_t now, char *buf, size_t size);

/* The instant now's local day began in z (the daily cap's start), or TZ_TIME_ERROR. */
int64_t quiet_day_start(const struct tz *z, int64_t now);

#endif
