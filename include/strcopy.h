/*
 * strcopy.h: copy strings into fixed buffers, cut to fit (stage: all).
 *
 * The cheap form of snprintf(dst, size, "%s", src) and of "%s%s%s", for the paths
 * every push takes: a printf call costs about a thousand instructions, these a few
 * dozen. Like snprintf they return the length the whole result would have, so a
 * caller can tell that it was cut.
 */
#ifndef DEALPUSH_STRCOPY_H
#define DEALPUSH_STRCOPY_H

#include <stddef.h>
#include <string.h>

/* Appends src to the NUL-terminated dst of size bytes (at most size - 1 kept);
 * returns strlen(src). dst must hold a string already when size > 0. */
static inline size_t str_append(char *dst, size_t size, const char *src)
{
	size_t have = size > 0 ? strnlen(dst, size - 1) : 0, n = strlen(src);

	if (have + 1 < size) {
		size_t k = n < size - 1 - have ? n : size - 1 - have;

		memcpy(dst + have, src, k);
		dst[have + k] = '\0';
	}
	return n;
}

/* src into dst of size bytes (at most size - 1 kept, NUL-terminated when size > 0);
 * returns strlen(src). */
static inline size_t str_copy(char *dst, size_t size, const char *src)
{
	if (size > 0)
		dst[0] = '\0';
	return str_append(dst, size, src);
}

/* a, b and c joined into dst, as str_copy; returns the joined length. */
static inline size_t str_join3(char *dst, size_t size, const char *a, const char *b,
    const char *c)
{
	return str_copy(dst, size, a) + str_append(dst, size, b) +
	    str_append(dst, size, c);
}

#endif
