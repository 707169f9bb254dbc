/*
 * areacodes.h: the place and time zones of a NANP (+1) area code (stages: admit and
 * send, through quiet.c).
 *
 * A table of the geographic area codes of the United States and its territories,
 * Canada and the Caribbean countries of the plan: each code's place (ISO 3166-2 for a
 * state or province, "US-FL", "CA-ON"; ISO 3166-1 for a country, "JM") and every zone
 * its numbers are in. Checked against libphonenumber's data by tests/unit/
 * test_areacodes.c; sources and exceptions: docs/compliance.md section 5.1. Pure and
 * constant: no I/O, no allocation.
 */
#ifndef DEALPUSH_AREACODES_H
#define DEALPUSH_AREACODES_H

#include <stddef.h>
#include <stdint.h>

#define AREACODE_PLACE_MAX 6     /* "US-FL", "CA-ON" and the NUL */
#define AREACODE_ZONES_MAX 6     /* zones of one code (867: five) */

struct areacode {
	unsigned short npa;
	char place[AREACODE_PLACE_MAX];
	uint64_t zones;                 /* bits: areacode_zone_name(bit) */
};

/* The area code of phone when it is a +1 number of 10 digits ("+13055550100") with
 * a code of the table; NULL otherwise (another country, a toll-free or
 * non-geographic code, a code not in the table, anything malformed or NULL). */
const struct areacode *areacode_of(const char *phone);

/* 1 when place is the place of some code of the table ("US-FL", "CA-ON", "JM"). */
int areacode_place_known(const char *place);

/* 1 when place is one of the United States, its district or territories ("US-..."). */
int areacode_place_is_us(const char *place);

/* The number of zones and the name of zone bit i (i < areacode_zone_count(); NULL
 * otherwise): static strings. */
size_t areacode_zone_count(void);
const char *areacode_zone_name(size_t i);

/* The table's rows in order of code, for tests and checks: row i, or NULL past the end. */
const struct areacode *areacode_at(size_t i);

#endif
