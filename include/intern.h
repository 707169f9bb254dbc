/*
 * intern.h: one shared, reference-counted copy of each short string that many
 * subscribers repeat (time zones, locales, regions, categories, brands, tags,
 * keywords) (stage: match).
 *
 * Process-wide and not thread-safe (the notifier and dealpushctl are single-threaded,
 * like the timezone cache of subscriber.c). The table holds only strings some caller
 * still references: every intern_get() is paired with one intern_put(), so hostile
 * input cannot grow it beyond what the live subscribers use.
 */
#ifndef DEALPUSH_INTERN_H
#define DEALPUSH_INTERN_H

#include <stddef.h>

/* Returns the shared NUL-terminated copy of the len bytes at s (which must contain no
 * NUL), taking one reference; NULL on out of memory (nothing taken). */
const char *intern_get(const char *s, size_t len);

/* Drops one reference to a string returned by intern_get(); the last one frees it.
 * NULL does nothing. Passing any other pointer is undefined. */
void intern_put(const char *s);

/* Distinct strings held, and the bytes they and the table take (for health and
 * tests). */
size_t intern_count(void);
size_t intern_bytes(void);

/* References held on s (an intern_get() result), for tests. */
unsigned long intern_refs(const char *s);

#endif
