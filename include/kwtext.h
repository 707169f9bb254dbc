/*
 * kwtext.h: an inbound message body normalized into lowercase ASCII words, for the
 * keyword matcher (keywords.c). Internal to the notifier: not a public face.
 *
 * Accents are folded (Latin-1 and Latin Extended-A, NFC or NFD), full-width forms
 * and curly quotes read as ASCII, emoji and other symbols dropped, letters spelled
 * apart joined ("S T O P"), and the clause and sentence breaks between words kept.
 * Pure: no I/O, no allocation, no global state; never reads past len.
 */
#ifndef DEALPUSH_KWTEXT_H
#define DEALPUSH_KWTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "keywords.h"

/* Words kept from one body; later words are ignored like bytes past KW_BODY_MAX. */
#define KW_WORDS_MAX 1024

/* A run of at least this many one-letter words is one word spelled apart: "S T O P". */
#define KW_SPELLED_MIN 3

/* Breaks before a word: none, a clause (',' ':'), a sentence ('.' '!' '?' ';' EOL). */
enum { KW_BRK_NONE, KW_BRK_CLAUSE, KW_BRK_SENTENCE };

/* A normalized body: lowercase ASCII words, each at buf + off[i], len[i] bytes. */
struct kw_text {
	char buf[KW_BODY_MAX + 1];
	uint16_t off[KW_WORDS_MAX];
	uint16_t len[KW_WORDS_MAX];
	uint8_t brk[KW_WORDS_MAX];   /* the break before word i */
	size_t n;
	int truncated;     /* the body was longer than we looked at */
};

/* Normalizes s[0..len) (any bytes; s may be NULL when len is 0) into t: at most
 * KW_BODY_MAX bytes and KW_WORDS_MAX words are kept, t->truncated says when more were
 * there. Never fails. */
void kw_text_normalize(struct kw_text *t, const unsigned char *s, size_t len);

#endif
