/*
 * tz_int.h: what tz.c and tz_parse.c share (stages: plan, admit, send): a loaded zone
 * (its transitions, types and POSIX footer rule) and the parser's entry points. Private
 * to the two files; the public face is include/tz.h.
 */
#ifndef DEALPUSH_TZ_INT_H
#define DEALPUSH_TZ_INT_H

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

struct err;

struct tz_type {
	int32_t utoff;
	int isdst;
	char abbr[16];
};

enum tz_date_kind { TZ_DATE_JULIAN1, TZ_DATE_ZERO, TZ_DATE_MWD };

/* One end of a POSIX DST rule: Jn, n or Mm.w.d, and the local time of day it
 * happens at (seconds, -167h..167h per RFC 8536 v3). */
struct tz_date {
	enum tz_date_kind kind;
	int n, m, w, d;
	int32_t time;
};

struct tz_rule {
	struct tz_type std, dst;
	int has_dst;
	struct tz_date start, end;  /* start in standard time, end in DST */
};

struct tz {
	char name[TZ_NAME_MAX + 1];
	int64_t *trans;        /* ntrans instants, strictly ascending */
	uint8_t *trans_type;   /* index into types for each transition */
	size_t ntrans;
	struct tz_type *types; /* ntypes >= 1; type 0 applies before trans[0] */
	size_t ntypes;
	int has_rule;          /* footer: applies from trans[ntrans - 1] on */
	struct tz_rule rule;
};

/* ---- tz_parse.c ---- */

/* 1 for an ASCII letter, else 0 (no locale). */
int tz_is_alpha(int c);

/* 1 for an ASCII digit, else 0 (no locale). */
int tz_is_digit(int c);

/* Parses a whole TZif file (p, n bytes) into z: its transitions, types and footer
 * rule. Returns 0, or -1 with *err (z may hold allocations: tz_free frees them). */
int tzif_parse(const unsigned char *p, size_t n, struct tz *z, struct err *err);

#endif
