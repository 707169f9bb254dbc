/*
 * err.h: the error record every module fills for its caller.
 *
 * Operations return 0 / -1, constructors a pointer / NULL, predicates 1 / 0 / -1; the
 * details go into a caller-supplied struct err: what kind of failure, a short
 * machine-readable code (used as the dead-letter reason and as a metric label), the
 * input field at fault when there is one, and a human message naming what was wrong.
 * Header-only so that rules/ (no I/O, no notifier code) can use it too.
 */
#ifndef DEALPUSH_ERR_H
#define DEALPUSH_ERR_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum err_kind {
	ERR_NONE = 0,
	ERR_INPUT,     /* the input is wrong; retrying will not help */
	ERR_TEMP,      /* try again later (Redis down, gateway 5xx) */
	ERR_PERM,      /* a permanent refusal from a peer */
	ERR_TIMEOUT,   /* a deadline passed */
	ERR_NOMEM      /* out of memory */
};

struct err {
	enum err_kind kind;
	char code[32];   /* e.g. "missing_field", "bad_type", "expired" */
	char field[64];  /* e.g. "expires_at"; "" when no single field is at fault */
	char msg[256];   /* e.g. "expires_at: not RFC 3339 or epoch seconds" */
};

static inline void err_clear(struct err *e)
{
	if (e == NULL)
		return;
	e->kind = ERR_NONE;
	e->code[0] = e->field[0] = e->msg[0] = '\0';
}

/* Fills *e (which may be NULL); code and field may be NULL. Always returns -1 so that
 * callers can write `return err_set(...)`. */
static inline int err_set(struct err *e, enum err_kind kind, const char *code,
    const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static inline int err_set(struct err *e, enum err_kind kind, const char *code,
    const char *field, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	e->kind = kind;
	snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

#endif
