/*
 * log.c: levelled key=value log lines on stderr (stage: all).
 *
 * One write(2) per line so that lines from several processes sharing a file do not
 * interleave. Must never log secrets or full phone numbers; the masking helpers live
 * here so every layer masks the same way.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level log_min = LOG_INFO;

static const char *const log_names[] = { "debug", "info", "warn", "error" };

void
log_set_level(enum log_level level)
{
	log_min = level;
}

int
log_level_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (name != NULL && strcmp(name, log_names[i]) == 0)
			return (int)i;
	return -1;
}

static void
log_vwrite(enum log_level level, const char *errstr, const char *fmt, va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	int n, m;

	if (level < log_min)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (long)(tv.tv_usec / 1000), log_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	n = (size_t)(n + m) >= sizeof(line) - 1 ? (int)sizeof(line) - 2 : n + m;
	if (errstr != NULL) {
		m = snprintf(line + n, sizeof(line) - (size_t)n, " err=\"%s\"", errstr);
		if (m > 0)
			n = (size_t)(n + m) >= sizeof(line) - 1 ? (int)sizeof(line) - 2 : n + m;
	}
	line[n++] = '\n';
	/* A failed log write has nowhere to be reported. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

#define LOG_FN(fname, level, with_errno)                                    \
	void fname(const char *fmt, ...)                                    \
	{                                                                   \
		va_list ap;                                                 \
		const char *es = (with_errno) ? strerror(errno) : NULL;     \
		va_start(ap, fmt);                                          \
		log_vwrite(level, es, fmt, ap);                             \
		va_end(ap);                                                 \
	}

LOG_FN(log_debug, LOG_DEBUG, 0)
LOG_FN(log_info, LOG_INFO, 0)
LOG_FN(log_warnx, LOG_WARN, 0)
LOG_FN(log_warn, LOG_WARN, 1)
LOG_FN(log_errorx, LOG_ERROR, 0)

const char *
log_mask_phone(const char *phone, char *buf, size_t size)
{
	size_t len = phone ? strlen(phone) : 0;

	if (size == 0)
		return buf;
	if (len <= 9)
		snprintf(buf, size, "%.3s\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2",
		    phone ? phone : "");
	else
		snprintf(buf, size, "%.5s\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2%s", phone,
		    phone + len - 4);
	return buf;
}

const char *
log_quote(const char *s, char *buf, size_t size)
{
	size_t i = 0, need_quotes;
	const unsigned char *p;

	if (size == 0)
		return buf;
	if (s == NULL)
		s = "";
	need_quotes = (*s == '\0' || strpbrk(s, " \t\"=\\") != NULL);
	if (need_quotes && i + 1 < size)
		buf[i++] = '"';
	for (p = (const unsigned char *)s; *p != '\0' && i + 4 < size; p++) {
		if (*p == '"' || *p == '\\') {
			buf[i++] = '\\';
			buf[i++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			i += (size_t)snprintf(buf + i, size - i, "\\x%02x", *p);
		} else {
			buf[i++] = (char)*p;
		}
	}
	if (need_quotes && i + 1 < size)
		buf[i++] = '"';
	buf[i] = '\0';
	return buf;
}
