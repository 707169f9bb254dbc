/*
 * quiet.h: when a subscriber may be texted (stage: admit).
 *
 * A push may go out only inside the legal sending window of the recipient's place
 * (8:00-21:00 local by default; stricter per region, e.g. Florida and Oklahoma
 * 8:00-20:00) and outside the subscriber's own quiet hours, both in the subscriber's
 * time zone, DST included. Pure: time and zones come in as arguments.
 */
#ifndef DEALPUSH_QUIET_H
#define DEALPUSH_QUIET_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "tz.h"

#define QUIET_REGIONS_MAX 64
#define QUIET_NEVER INT64_MAX

struct quiet_window {
	char region[16];   /* "US-FL"; "" for the default */
	int start_min;     /* minutes after local midnight, inclusive */
	int end_min;       /* exclusive; may be below start_min (wraps midnight) */
};

struct quiet_rules {
	struct quiet_window def;
	struct quiet_window regions[QUIET_REGIONS_MAX];
	size_t nregions;
};

/* Fills q with the built-in rules: 8:00-21:00, US-FL and US-OK 8:00-20:00. */
void quiet_rules_default(struct quiet_rules *q);

/* Adds or replaces the window of region. Returns 0, or -1 when the table is full or
 * the minutes are out of 0..1440 or equal. */
int quiet_rules_set(struct quiet_rules *q, const char *region, int start_min,
    int end_min);

/*
 * The region whose window applies to s, written into buf: "US-FL" when the phone is
 * a North American number whose area code belongs to a state with a window of its
 * own (the state taken from the area code when nothing better is known), otherwise
 * the subscriber's region ("US"), otherwise "". Returns buf.
 */
const char *quiet_region_of(const struct quiet_rules *q, const struct subscriber *s,
    char *buf, size_t size);

/*
 * The first instant at or after now when s may be texted in zone z: now itself when
 * allowed, else the start of the next allowed stretch (DST-correct), or QUIET_NEVER
 * when the windows never overlap. TZ_TIME_ERROR on bad arguments.
 */
int64_t quiet_next_allowed(const struct quiet_rules *q, const struct tz *z,
    const struct subscriber *s, int64_t now);

/* "YYYYMMDD" of now's local date in z into buf (at least 9 bytes); the caps' day.
 * Returns 0 or -1. */
int quiet_local_day(const struct tz *z, int64_t now, char *buf, size_t size);

#endif
