/*
 * subbehav.h: a subscriber's behaviour record as the funnel's scripts store it
 * (stage: match, admin). Hash "behaviour" of the subscriber's shard (keys.h), field
 * the subscriber id, value written by notifier/lua/lib/behav.lua:
 *   "<last text>|<last click>|<last purchase>|<days>"
 * times in epoch seconds ("" = never), days "<day>:<texts>:<clicks>:<purchases>:
 * <revenue>" joined by ",", oldest first (docs/attribution.md, "Behaviour"). The
 * value is read from Redis and so hostile: anything that does not parse is refused.
 */
#ifndef DEALPUSH_SUBBEHAV_H
#define DEALPUSH_SUBBEHAV_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* The most day entries a record may hold (90 days of purchases). */
#define SUBBEHAV_DAYS_MAX 128

/* Parses len bytes (need not be NUL-terminated) into a new record the caller frees
 * with free(), or NULL when they are not a record (or out of memory). */
struct sub_behav *subbehav_parse(const char *v, size_t len);

/*
 * The stored record b stands for, into old (NUL-terminated; "" when b is NULL: none
 * stored), and the record a text at now makes of it, into new, both as
 * notifier/lua/lib/behav.lua writes them, so that record.lua may write new without
 * reading and parsing the record when the stored one is still old. Only for the
 * case behav_apply takes without aging anything: no days, or every day less than
 * BEHAV_KEEP texts' window (7 days) old, none after today. Returns 0, or -1 when b
 * is not in that case, a value of b does not fit its stored form (a saturated
 * count, a revenue a float cannot hold to the cent), or a buffer is too small:
 * record.lua then computes the record itself.
 */
int subbehav_text(const struct sub_behav *b, int64_t now, char *old, size_t oldcap,
    char *new, size_t newcap);

struct cJSON;

/* The join time of a stored subscriber document (its earliest consent time, as
 * rule_behav_joined() takes it from a parsed one), or 0 when it has none. */
int64_t subbehav_joined_of_json(const struct cJSON *doc);

/* Adds to obj the behaviour fields of b (NULL: nothing known) and joined (0: not
 * known) at now, named as in rules ("days_since_click": a number, or null when
 * absent), and the times they come from ("last_click_at", "joined_at": RFC 3339 UTC,
 * or null). Returns 0, or -1 on OOM (obj then holds some of them). */
int subbehav_to_json(const struct sub_behav *b, int64_t joined, int64_t now,
    struct cJSON *obj);

#endif
