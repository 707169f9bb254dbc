/*
 * timefmt.h: wall-time parsing and formatting for the contracts (RFC 3339, epoch) and
 * for provider answers (RFC 2822).
 * Pure functions, no global state, no locale.
 */
#ifndef DEALPUSH_TIMEFMT_H
#define DEALPUSH_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Parses an RFC 3339 date-time ("2026-11-22T19:00:00Z", "...T19:00:00.250+02:00";
 * 'T' or 't', 'Z' or 'z' or a numeric offset; fractions are truncated). The whole
 * string must be consumed. Returns 0 and *out = epoch seconds, or -1. */
int time_parse_rfc3339(const char *s, int64_t *out);

/* Parses an RFC 2822 date-time as Twilio writes it ("Mon, 23 Nov 2026 17:00:00 +0000"):
 * an optional day name and comma, day (1-2 digits), English month abbreviation (any
 * case), 4-digit year, hh:mm[:ss], then a numeric zone (+hhmm/-hhmm) or GMT, UT, UTC,
 * Z. The day name is not checked against the date. The whole string must be
 * consumed. Returns 0 and *out = epoch seconds, or -1. */
int time_parse_rfc2822(const char *s, int64_t *out);

/* Formats t as "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). Returns buf. */
char *time_format_rfc3339(int64_t t, char *buf, size_t size);

#endif
