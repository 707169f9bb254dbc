/*
 * subscriber_int.h: what notifier/subscriber.c shares with its reader of the stored
 * canonical form (notifier/subscriber_canon.c). Not for other modules.
 */
#ifndef DEALPUSH_SUBSCRIBER_INT_H
#define DEALPUSH_SUBSCRIBER_INT_H

#include "err.h"
#include "model.h"

#define SUB_TZ_NAME_MAX 64
#define SUB_TAG_MAX 64
#define SUB_INTEREST_MAX 128
#define SUB_LOCALE_MAX 35
#define SUB_REGION_MIN 2
#define SUB_REGION_MAX 8
#define SUB_DM_X_MAX 19
#define SUB_MAX_PER_DAY 100
#define SUB_PRICE_MAX 1e9
#define SUB_LOCALE_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"

/* 1 when name is a well-formed zone that exists in tzdata, else 0 (cached). */
int sub_tz_is_known(const char *name);

/* 1 when name has the form of an IANA zone name, else 0. */
int sub_tz_name_is_well_formed(const char *name);

/* The compact record of a validated draft d (d is not changed and may live on the
 * stack), or NULL with *err no_memory. */
struct subscriber *sub_compact_of(const struct subscriber *d, struct err *err);

/* The subscriber in json when it is exactly in the canonical form (field order,
 * no whitespace, no escapes, ASCII) and valid by every rule of subscriber_parse();
 * NULL when it is not, or on out of memory: the caller then runs the full parser,
 * which names the problem. Never fails in any other way. */
struct subscriber *sub_parse_canonical(const char *json, size_t len);

#endif
