/*
 * intern.c: reference-counted string interning for the subscriber mirror (stage:
 * match).
 *
 * An open-addressing table (linear probing, backward-shift deletion) of entries that
 * carry their count and hash in front of the bytes, so that a string handed out is
 * one allocation and intern_put() finds its entry in O(1). The table grows at half
 * full and shrinks when a quarter of that is used; it never holds an entry without a
 * reference. Must never hand out a string that a later intern_put() of another
 * caller could free while this caller still holds it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"

#define INTERN_MIN_CAP 64

struct intern_ent {
	uint32_t refs;
	uint32_t hash;
	char s[];
};

static struct intern_ent **intern_slots;   /* NULL = empty slot */
static size_t intern_cap;                   /* power of two, or 0 */
static size_t intern_n;
static size_t intern_strbytes;

static uint32_t
intern_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static struct intern_ent *
intern_ent_of(const char *s)
{
	return (struct intern_ent *)(void *)(s - offsetof(struct intern_ent, s));
}

/* Rebuilds the table with newcap slots; -1 (table unchanged) on out of memory. */
static int
intern_resize(size_t newcap)
{
	struct intern_ent **slots;
	size_t i, j, mask = newcap - 1;

	if ((slots = calloc(newcap, sizeof(*slots))) == NULL)
		return -1;
	for (i = 0; i < intern_cap; i++) {
		if (intern_slots[i] == NULL)
			continue;
		for (j = intern_slots[i]->hash & mask; slots[j] != NULL; j = (j + 1) & mask)
			;
		slots[j] = intern_slots[i];
	}
	free(intern_slots);
	intern_slots = slots;
	intern_cap = newcap;
	return 0;
}

const char *
intern_get(const char *s, size_t len)
{
	uint32_t h = intern_hash(s, len);
	struct intern_ent *e;
	size_t i, mask;

	if ((intern_n + 1) * 2 > intern_cap &&
	    intern_resize(intern_cap ? intern_cap * 2 : INTERN_MIN_CAP) < 0)
		return NULL;
	mask = intern_cap - 1;
	for (i = h & mask; (e = intern_slots[i]) != NULL; i = (i + 1) & mask) {
		if (e->hash == h && strncmp(e->s, s, len) == 0 && e->s[len] == '\0') {
			if (e->refs == UINT32_MAX)
				return NULL;
			e->refs++;
			return e->s;
		}
	}
	if ((e = malloc(sizeof(*e) + len + 1)) == NULL)
		return NULL;
	e->refs = 1;
	e->hash = h;
	memcpy(e->s, s, len);
	e->s[len] = '\0';
	intern_slots[i] = e;
	intern_n++;
	intern_strbytes += sizeof(*e) + len + 1;
	return e->s;
}

void
intern_put(const char *s)
{
	struct intern_ent *e;
	size_t mask, i, j, k;

	if (s == NULL)
		return;
	e = intern_ent_of(s);
	if (--e->refs > 0)
		return;
	mask = intern_cap - 1;
	for (i = e->hash & mask; intern_slots[i] != e; i = (i + 1) & mask)
		;
	intern_slots[i] = NULL;
	/* Backward shift: move every later member of the cluster whose home is not
	 * cyclically in (i, j] into the hole. */
	for (j = (i + 1) & mask; intern_slots[j] != NULL; j = (j + 1) & mask) {
		k = intern_slots[j]->hash & mask;
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		intern_slots[i] = intern_slots[j];
		intern_slots[j] = NULL;
		i = j;
	}
	intern_n--;
	intern_strbytes -= sizeof(*e) + strlen(e->s) + 1;
	free(e);
	if (intern_n == 0) {
		free(intern_slots);
		intern_slots = NULL;
		intern_cap = 0;
	} else if (intern_cap > INTERN_MIN_CAP && intern_n * 8 < intern_cap) {
		/* Shrinking is best effort: on out of memory the table stays as it is. */
		(void)intern_resize(intern_cap / 2);
	}
}

size_t
intern_count(void)
{
	return intern_n;
}

size_t
intern_bytes(void)
{
	return intern_strbytes + intern_cap * sizeof(*intern_slots);
}

unsigned long
intern_refs(const char *s)
{
	return s != NULL ? intern_ent_of(s)->refs : 0;
}
