/*
 * signup.h: sign-up by text and the texts the notifier answers with, per language
 * (docs/inbound.md section 5). Pure: no I/O, no allocation, no global state.
 *
 * An operator lists keywords in [signup] keywords ("JOIN, DEALS LAPTOP: laptops,
 * OFERTAS: @es"): a text that is exactly one of them (normalized as keywords.c reads
 * a body: case, accents, punctuation) asks to join; the answer is a confirmation
 * request, and a "Y" (YES, S, SI) within the confirmation window makes the number a
 * subscriber with SMS consent (double opt-in). The texts (confirmation request,
 * welcome, HELP, the opt-out and opt-in confirmations) exist in English and Spanish.
 */
#ifndef DEALPUSH_SIGNUP_H
#define DEALPUSH_SIGNUP_H

#include <stddef.h>

#define SIGNUP_KEYWORDS_MAX 32   /* entries of [signup] keywords */
#define SIGNUP_WORDS_MAX 40      /* normalized bytes of one keyword ("deals laptop") */
#define SIGNUP_CATS_MAX 8        /* interest categories one keyword adds */
#define SIGNUP_CAT_MAX 32        /* bytes of one category */
#define SIGNUP_TEXT_MAX 480      /* bytes of a rendered text, with its NUL */

/* ORDER SIGNUP_LOCALE: the languages the texts exist in. */
enum signup_locale {
	SL_EN = 0,
	SL_ES,
	SL_COUNT
};

struct signup_keyword {
	char words[SIGNUP_WORDS_MAX];    /* normalized: lowercase words, one space apart */
	char cats[SIGNUP_CATS_MAX][SIGNUP_CAT_MAX]; /* lower-case interest categories */
	size_t ncats;
	enum signup_locale locale;
	int has_locale;                  /* "@es" given: the keyword decides the language */
};

/* The texts the notifier sends by itself. */
enum signup_text {
	ST_CONFIRM,      /* the confirmation request answering a keyword */
	ST_WELCOME,      /* after the "Y": subscribed */
	ST_HELP,         /* the answer to HELP, INFO, AYUDA */
	ST_OPTOUT_ACK,   /* the one confirmation of an opt-out */
	ST_OPTIN_ACK,    /* the answer to a START that restored consent */
	ST_COUNT
};

/* What the texts say about the program ([signup] program, max_per_week, terms_url). */
struct signup_vars {
	const char *program;             /* never NULL */
	long max_per_week;               /* 0: not said (no sign-up configured) */
	const char *terms_url;           /* NULL: not said */
};

/*
 * Parses spec, comma-separated entries "WORDS[: item item ...]" where an item is an
 * interest category (letters, digits, '-', '_'; lower-cased) or "@en" / "@es", into
 * kw (at most max entries). The words are normalized as a message body is and must be
 * 1 to 3 words, not an opt-out, opt-in or help keyword, nor "y", "yes", "s" or "si".
 * Returns the number of entries, or -1 with a message naming the entry in err.
 */
int signup_keywords_parse(struct signup_keyword *kw, size_t max, const char *spec,
    char *err, size_t esize);

/* The keyword that body[0..len) is, exactly (normalized), or NULL. */
const struct signup_keyword *signup_match(const struct signup_keyword *kw, size_t n,
    const char *body, size_t len);

/* 1 when body[0..len) answers a confirmation request: "Y", "YES", "S", "SI" ("Sí"),
 * alone (normalized), else 0. */
int signup_is_yes(const char *body, size_t len);

/* The language of a BCP 47 tag ("es", "es-MX" → SL_ES; anything else, NULL
 * included → SL_EN) and the tag of a language ("en", "es"). */
enum signup_locale signup_locale_of(const char *tag);
const char *signup_locale_tag(enum signup_locale loc);

/* The language a keyword label of keywords.c is in ("ALTO", "AYUDA",
 * "phrase:es_..." → SL_ES), or -1 when it says nothing (STOP, HELP, START). */
int signup_label_locale(const char *label);

/*
 * Writes text t in language loc with v into buf (size ≥ SIGNUP_TEXT_MAX is always
 * enough for a program of ≤ 64 bytes and a terms_url of ≤ 200). Returns its length,
 * or -1 when it does not fit.
 */
int signup_text(enum signup_text t, enum signup_locale loc, const struct signup_vars *v,
    char *buf, size_t size);

#endif
