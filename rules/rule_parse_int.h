/*
 * rule_parse_int.h: the parser's state and helpers, shared by rule_parse.c (rules,
 * clauses, conditions) and rule_clause.c (the message clauses: templates, variants,
 * the A/B test). Private to the rules library.
 */
#ifndef DEALPUSH_RULE_PARSE_INT_H
#define DEALPUSH_RULE_PARSE_INT_H

#include <stddef.h>

#include "rule_int.h"

struct parser {
	struct rule_cc *cc;
	struct rule_lexer lx;
	struct rule_token t;    /* the current token */
	size_t prev_end;        /* end offset of the last consumed token */
	int prev_line;          /* line of the last consumed token */
	int depth;
	const char *src;        /* arena copy of the file, kept for explanations */
	struct rule ***v;       /* every rule so far, all files */
	size_t *n;
	size_t *cap;
};

/* Which clauses a rule has given, and where, for the checks at its end. */
struct clauses {
	int when, audience, send, priority, holdout, segments, exclusive;
	struct rule_token tmpl[CH_COUNT];
	int has_tmpl[CH_COUNT];
	int test;
	struct rule_token test_tok, variant_tok, fallback_tok;
	char fallback[RULE_VARIANT_NAME_MAX + 1];     /* "" = the first variant */
};

/* Moves to the next token. */
void rp_next(struct parser *p);

/* "'name'", "'when'", "a number": how an error names token t (buf holds it). */
const char *rp_tok_desc(const struct rule_token *t, char *buf, size_t size);

/* Records an error at token t; returns -1. */
int rp_error_at(struct parser *p, const struct rule_token *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "expected <what>, found <the current token>"; returns -1. */
int rp_error_expected(struct parser *p, const char *what);

/* Consumes a token of kind k, else the error "expected <what>"; 0 or -1. */
int rp_checknext(struct parser *p, enum rule_tok k, const char *what);

/* CHANNEL = NAME naming a channel; returns it or -1 after an error. */
int rp_channel(struct parser *p);

/* ---- rule_clause.c ---- */

/* 'template' CHANNEL ['locale' LANG] STRING, after 'template' (kw). */
int rp_template_clause(struct parser *p, struct rule *r, struct clauses *cl,
    const struct rule_token *kw);

/* 'variant' NAME STRING, after 'variant' (kw). */
int rp_variant_clause(struct parser *p, struct rule *r, struct clauses *cl,
    const struct rule_token *kw);

/* 'test' NUMBER '%' 'for' DURATION 'by' ('clicks' | 'redemptions')
 * ['fallback' NAME], after 'test' (kw). */
int rp_test_clause(struct parser *p, struct rule *r, struct clauses *cl,
    const struct rule_token *kw);

/* The checks of a rule's message clauses once its 'end' is reached (nt: its name). */
void rp_rule_finish(struct parser *p, struct rule *r, const struct clauses *cl,
    const struct rule_token *nt);

#endif
