/*
 * keywords.h: classify an inbound SMS/DM body as opt-out, opt-in, help or nothing.
 * Pure: no I/O, no allocation, no global state. The rules (keyword lists in English
 * and Spanish, words added from config, normalization, the plain-language phrase
 * table and its trade-off) are in docs/inbound.md.
 */
#ifndef DEALPUSH_KEYWORDS_H
#define DEALPUSH_KEYWORDS_H

#include <stddef.h>
#include <stdint.h>

enum kw_kind {
	KW_NONE,       /* an ordinary or unclear reply: change nothing, keep it for review */
	KW_OPT_OUT,    /* revoke consent for this number or handle */
	KW_OPT_IN,     /* restore consent */
	KW_HELP        /* answer with the help text */
};

/* Only the first KW_BODY_MAX bytes of a body are looked at; a longer body is never a
 * bare keyword, and the phrase table is matched over its first KW_BODY_MAX bytes. */
#define KW_BODY_MAX 8192

/* Minimum useful size of the matched buffer (the longest label plus its NUL). */
#define KW_MATCHED_MAX 40

/* Label prefix of a KW_NONE message that holds an opt-out word ("unclear:stop"). */
#define KW_UNCLEAR_PREFIX "unclear:"

/* Words added from config ([inbound] optout_words, optout_fillers). */
#define KW_EXTRA_MAX 64          /* entries per list */
#define KW_EXTRA_BYTES 2048      /* normalized bytes of every entry of both lists */
#define KW_EXTRA_ENTRY_MAX 32    /* normalized bytes of one entry */

enum kw_list {
	KW_LIST_OPT_OUT = 0,     /* whole-message opt-out keywords ("arret", "stopp") */
	KW_LIST_FILLER,          /* words that may surround them ("sil vous plait") */
	KW_LIST_COUNT
};

/* Extra words, filled by kw_extra_add(); all zeroes is an empty set. Caller-owned,
 * no heap: a struct of about 2.5 KiB. */
struct kw_extra {
	char buf[KW_EXTRA_BYTES];
	size_t used;
	uint16_t off[KW_LIST_COUNT][KW_EXTRA_MAX];
	uint8_t len[KW_LIST_COUNT][KW_EXTRA_MAX];
	size_t n[KW_LIST_COUNT];
};

/*
 * Adds the comma-separated entries of csv to list which of x. Each entry is
 * normalized as a body is (case, accents, punctuation) and must be 1 to 3 words of
 * at most KW_EXTRA_ENTRY_MAX bytes; an opt-out word may not be an opt-in or help
 * keyword or a filler. Returns 0, or -1 with a message naming the entry in err (x
 * then holds the entries before it). Empty entries (",,") are skipped.
 */
int kw_extra_add(struct kw_extra *x, enum kw_list which, const char *csv, char *err,
    size_t esize);

/* Classifies body[0..len) (any bytes: NULs, invalid UTF-8 and binary are fine; body
 * may be NULL when len is 0) with the built-in words and those of extra (may be
 * NULL). Returns the kind and, when matched is not NULL and msize > 0, writes a
 * NUL-terminated label of the rule that decided into matched (truncated to msize):
 * the canonical keyword for a bare keyword ("STOP", "STOP ALL", "ALTO", "NO MAS",
 * "START", "HELP", or a configured word upper-cased: "ARRET"), "phrase:<name>" for a
 * plain-language opt-out ("phrase:stop_verb", "phrase:es_no_enviar"); for KW_NONE
 * "unclear:<word>" when the message holds an opt-out word without being an opt-out
 * ("stop by the store"), else "". The label is meant for the consent record, the
 * replies stream and logs. Never fails. */
enum kw_kind kw_classify_with(const struct kw_extra *extra, const char *body,
    size_t len, char *matched, size_t msize);

/* kw_classify_with(NULL, ...): the built-in words only. */
enum kw_kind kw_classify(const char *body, size_t len, char *matched, size_t msize);

/* A constant name for a kind ("none", "opt_out", "opt_in", "help"), for logs. */
const char *kw_kind_name(enum kw_kind kind);

#endif
