/*
 * keywords.h: classify an inbound SMS/DM body as opt-out, opt-in, help or nothing.
 * Pure: no I/O, no allocation, no global state. The rules (keyword lists,
 * normalization, the plain-language phrase table and its trade-off) are in
 * docs/inbound.md.
 */
#ifndef DEALPUSH_KEYWORDS_H
#define DEALPUSH_KEYWORDS_H

#include <stddef.h>

enum kw_kind {
	KW_NONE,       /* an ordinary reply: change nothing */
	KW_OPT_OUT,    /* revoke consent for this number or handle */
	KW_OPT_IN,     /* restore consent */
	KW_HELP        /* answer with the help text */
};

/* Only the first KW_BODY_MAX bytes of a body are looked at; a longer body is never a
 * bare keyword, and the phrase table is matched over its first KW_BODY_MAX bytes. */
#define KW_BODY_MAX 8192

/* Minimum useful size of the matched buffer (the longest label plus its NUL). */
#define KW_MATCHED_MAX 32

/* Classifies body[0..len) (any bytes: NULs, invalid UTF-8 and binary are fine; body
 * may be NULL when len is 0). Returns the kind and, when matched is not NULL and
 * msize > 0, writes a NUL-terminated label of the rule that decided into matched
 * (truncated to msize): the canonical keyword for a bare keyword ("STOP", "STOP ALL",
 * "START", "HELP"), "phrase:<name>" for a plain-language opt-out ("phrase:stop_verb"),
 * or "" for KW_NONE. The label is meant for the consent record and logs. Never fails. */
enum kw_kind kw_classify(const char *body, size_t len, char *matched, size_t msize);

/* A constant name for a kind ("none", "opt_out", "opt_in", "help"), for logs. */
const char *kw_kind_name(enum kw_kind kind);

#endif
