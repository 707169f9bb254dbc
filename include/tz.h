/*
 * tz.h: UTC epoch seconds <-> local wall time in any IANA zone, from tzdata (TZif)
 * files read by this module, never through TZ, tzset() or localtime().
 *
 * A struct tzcache owns every zone it has loaded; a const struct tz * stays valid
 * until tzcache_free(). A zone changes only in tzcache_reload (SIGHUP), between two
 * callbacks of the loop, so lookups are pure within one.
 */
#ifndef DEALPUSH_TZ_H
#define DEALPUSH_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct tzcache;
struct tz;

/* Longest zone name accepted, in bytes ("America/Argentina/ComodRivadavia" is 32). */
#define TZ_NAME_MAX 64

/* Instants handled: |t| <= TZ_TIME_LIMIT (about +-126,000 years). */
#define TZ_TIME_LIMIT 4000000000000LL

/* Returned by the int64_t functions below on bad arguments. */
#define TZ_TIME_ERROR INT64_MIN

struct tz_local {
	int year, month /* 1-12 */, day, hour, min, sec, wday /* 0 = Sunday */;
	int32_t utoff;   /* seconds east of UTC */
	int isdst;
	char abbr[16];   /* "CST", "+0530"; longer abbreviations are truncated */
};

/* Creates an empty cache reading zones under tzdir (copied; NULL means $TZDIR if set
 * and non-empty, else /usr/share/zoneinfo). At most max_zones (>= 1) zones are kept;
 * when that many are loaded, tz_get refuses new names (code "cache_full") rather than
 * evicting, so that every pointer it returned stays valid. Returns NULL on bad
 * arguments or out of memory. The caller owns the cache and frees it with
 * tzcache_free(). */
struct tzcache *tzcache_new(const char *tzdir, size_t max_zones);

/* Loads every zone under the cache's directory (regular TZif files; the posix/ and
 * right/ copies and the tables are skipped), plus UTC and Etc/UTC, which are built in
 * when absent, so that tz_get reads no file for them later. A blocking walk of some
 * hundred small files: call it at start-up. Returns 0, or -1 with *err
 * ("cache_full", "nomem"). */
int tzcache_load_all(struct tzcache *c, struct err *err);

/* The number of zones loaded. */
size_t tzcache_count(const struct tzcache *c);

/* Reads every loaded zone again and replaces its rules in place (a zone whose file is
 * now gone or broken keeps the rules it had), then, after tzcache_load_all, loads the
 * zones added since. Every pointer tz_get returned stays valid. For SIGHUP, after a
 * tzdata update. Returns 0, or -1 with *err as tzcache_load_all. */
int tzcache_reload(struct tzcache *c, struct err *err);

/* Frees the cache and every zone in it; pointers from tz_get become invalid.
 * tzcache_free(NULL) does nothing. */
void tzcache_free(struct tzcache *c);

/* Returns the zone named name ("Europe/Berlin", "UTC", "Etc/UTC"), reading and parsing
 * tzdir/name on first use (a small blocking read: call it at start-up or reload for
 * zones known then). "UTC" and "Etc/UTC" work even when no tzdata is installed.
 * The zone is owned by the cache. On failure returns NULL, fills *err (may be NULL)
 * and caches nothing: code "bad_value" (name not of the form segment['/'segment]...,
 * segments of [A-Za-z0-9_+-], at most TZ_NAME_MAX bytes), "not_found" (no such
 * file; kind ERR_TEMP when the read failed for another reason), "bad_tzif" (not a
 * valid TZif file or footer), "cache_full", "nomem". */
const struct tz *tz_get(struct tzcache *c, const char *name, struct err *err);

/* Returns the zone's name as given to tz_get; owned by the zone. */
const char *tz_name(const struct tz *z);

/* Fills *out with the local time at UTC instant t. Returns 0, or -1 (and leaves *out
 * unspecified) when z or out is NULL or |t| > TZ_TIME_LIMIT. */
int tz_local(const struct tz *z, int64_t t, struct tz_local *out);

/* Returns the UTC instant at which the local calendar day after t's local day
 * begins: normally its 00:00:00, so days are 23 or 25 hours long on DST nights; when
 * local midnight is skipped (a gap starting at 00:00) the first instant of that day
 * that exists, e.g. 01:00. Always > t. Returns TZ_TIME_ERROR on bad arguments. */
int64_t tz_local_midnight_after(const struct tz *z, int64_t t);

/* Returns the UTC instant whose local wall time in z is the one given (month 1-12,
 * hour 0-23, min and sec 0-59). A wall time skipped by a gap (spring forward) gives
 * the first instant after the gap, i.e. the transition itself: Chicago 2026-03-08
 * 02:30 gives 03:00 CDT (08:00Z), not 03:30. A wall time that happens twice (fall
 * back) gives the earlier instant. Returns TZ_TIME_ERROR for a date that does not
 * exist in the calendar, a field out of range, year outside -100000..100000, or z
 * NULL. */
int64_t tz_from_local(const struct tz *z, int year, int month, int day, int hour,
    int min, int sec);

/* Formats the local time of t into buf like strftime, without locale: %Y %m %d %H %M
 * %S %I (01-12) %p (AM/PM) %a (Sun) %b (Jan) %Z (abbreviation) %z (+hhmm) %%. Returns
 * the length written, excluding the NUL; returns 0 with buf[0] = '\0' (when size > 0)
 * if the result does not fit, fmt has another conversion, or t is out of range. */
size_t tz_format(const struct tz *z, int64_t t, const char *fmt, char *buf,
    size_t size);

#endif
