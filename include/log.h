/*
 * log.h: one line per event, key=value, to stderr (stage: all).
 *
 * A line is "<RFC 3339 UTC ms> level=<l> <message>". log_warn appends
 * err="<strerror(errno)>", log_warnx does not. Callers never pass a token, a
 * signature, a per-recipient code or a full phone number: mask with log_mask_phone.
 */
#ifndef DEALPUSH_LOG_H
#define DEALPUSH_LOG_H

#include <stddef.h>

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR
};

/* Sets the lowest level written (default LOG_INFO). */
void log_set_level(enum log_level level);

/* The level named name ("debug", "info", "warn", "error"), or -1. */
int log_level_from_name(const char *name);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes phone masked into buf ("+15125550100" -> "+1512•••0100": the first five and
 * last four characters kept) and returns buf. Short or NULL input is masked whole. */
const char *log_mask_phone(const char *phone, char *buf, size_t size);

/* Copies s into buf for a key=value log, quoted when it has spaces, with control
 * characters, quotes and backslashes escaped and at most size-1 bytes. Returns buf. */
const char *log_quote(const char *s, char *buf, size_t size);

#endif
