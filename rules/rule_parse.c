/*
 * rule_parse.c: the recursive-descent parser of the rule language (stage: match), after
 * Lua's lparser.c: all state in struct parser, each function carries its grammar rule,
 * check/testnext helpers keep it close to the grammar. Nodes are type-checked as they
 * are built (rule_check.c); clause-level checks (channels, ranges, templates, duplicate
 * names) are made here where the tokens are. After an error in a clause the parser
 * skips to the next clause and goes on, so one run reports every broken clause of
 * every rule.
 * Never recurses deeper than RULE_DEPTH_MAX, never aborts, no I/O, no globals.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rule_int.h"
#include "rule_parse_int.h"


/* ORDER CHANNEL: names of enum channel in model.h. */
static const char *const rule_channel_names[CH_COUNT] = { "sms", "dm" };

int
rule_channel_from_name(const char *name)
{
	int c;

	for (c = 0; c < CH_COUNT; c++)
		if (strcmp(rule_channel_names[c], name) == 0)
			return c;
	return -1;
}

const char *
rule_channel_name(int ch)
{
	return ch >= 0 && ch < CH_COUNT ? rule_channel_names[ch] : "?";
}

void
rp_next(struct parser *p)
{
	p->prev_end = p->t.off + p->t.len;
	p->prev_line = p->t.line;
	rule_lex_next(&p->lx, &p->t);
}

/* Describes a token for "found ..." in messages. */
const char *
rp_tok_desc(const struct rule_token *t, char *buf, size_t size)
{
	if (t->kind == TK_NAME) {
		snprintf(buf, size, "'%s'", t->str);
		return buf;
	}
	if (t->kind >= TK_RULE && t->kind < TK_COUNT) {
		snprintf(buf, size, "'%s'", rule_tok_name(t->kind));
		return buf;
	}
	return rule_tok_name(t->kind);
}

/* Records an error at token t, unless the lexer already reported t itself. */
int
rp_error_at(struct parser *p, const struct rule_token *t, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (t->kind == TK_ERROR)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return rule_cc_error(p->cc, t->off, t->line, t->col, "%s", msg);
}

int
rp_error_expected(struct parser *p, const char *what)
{
	char buf[96];

	return rp_error_at(p, &p->t, "expected %s, found %s", what,
	    rp_tok_desc(&p->t, buf, sizeof(buf)));
}

static int
testnext(struct parser *p, enum rule_tok k)
{
	if (p->t.kind != k)
		return 0;
	rp_next(p);
	return 1;
}

int
rp_checknext(struct parser *p, enum rule_tok k, const char *what)
{
	if (p->t.kind != k)
		return rp_error_expected(p, what);
	rp_next(p);
	return 0;
}

static struct rule_node *
new_node(struct parser *p, enum rule_nk kind, const struct rule_token *at)
{
	struct rule_node *n = rule_arena_alloc(p->cc->arena, sizeof(*n));

	if (n == NULL) {
		rule_cc_nomem(p->cc);
		return NULL;
	}
	n->kind = (uint8_t)kind;
	n->line = at->line;
	n->col = at->col;
	n->at = at->off;
	n->off = at->off;
	n->end = at->off + at->len;
	return n;
}

/* Type-checks a finished node; NULL (after recording) when it is out of memory. */
static struct rule_node *
finish(struct parser *p, struct rule_node *n)
{
	rule_check_node(p->cc, n);
	return p->cc->nomem ? NULL : n;
}

static struct rule_node *binary(struct parser *p, enum rule_nk kind,
    const struct rule_token *op, struct rule_node *a, struct rule_node *b)
{
	struct rule_node *n = new_node(p, kind, op);

	if (n == NULL)
		return NULL;
	n->a = a;
	n->b = b;
	n->off = a->off;
	n->end = b != NULL ? b->end : a->end;
	return finish(p, n);
}

static struct rule_node *expr(struct parser *p);

/* literal = NUMBER ['%'] | STRING */
static struct rule_node *
literal(struct parser *p)
{
	struct rule_node *n;

	if (p->t.kind == TK_NUMBER) {
		if ((n = new_node(p, NK_NUM, &p->t)) == NULL)
			return NULL;
		n->num = p->t.num;
		rp_next(p);
		if (p->t.kind == TK_PERCENT) {   /* a share: checked against its field */
			n->pct = 1;
			n->end = p->t.off + p->t.len;
			rp_next(p);
		}
		return finish(p, n);
	} else if (p->t.kind == TK_STRING) {
		if ((n = new_node(p, NK_STR, &p->t)) == NULL)
			return NULL;
		n->str = p->t.str;
	} else {
		rp_error_expected(p, "a string or a number in the list");
		return NULL;
	}
	rp_next(p);
	return finish(p, n);
}

/* operand = NUMBER ['%'] | STRING | 'true' | 'false' | NAME | '(' expr ')' */
static struct rule_node *
operand(struct parser *p)
{
	struct rule_node *n;
	struct rule_token open;

	switch (p->t.kind) {
	case TK_NUMBER:
	case TK_STRING:
		return literal(p);
	case TK_TRUE:
	case TK_FALSE:
		if ((n = new_node(p, NK_BOOL, &p->t)) == NULL)
			return NULL;
		n->num = p->t.kind == TK_TRUE;
		rp_next(p);
		return finish(p, n);
	case TK_NAME:
		if ((n = new_node(p, NK_FIELD, &p->t)) == NULL)
			return NULL;
		n->str = p->t.str;
		rp_next(p);
		return finish(p, n);
	case TK_LPAREN:
		open = p->t;
		if (++p->depth > RULE_DEPTH_MAX) {
			rp_error_at(p, &p->t, "expression nested deeper than %d levels",
			    RULE_DEPTH_MAX);
			return NULL;
		}
		rp_next(p);
		if ((n = expr(p)) == NULL)
			return NULL;
		if (p->t.kind != TK_RPAREN) {
			char buf[96];

			rp_error_at(p, &p->t, "expected ')' to close the '(' at %d:%d, found %s",
			    open.line, open.col, rp_tok_desc(&p->t, buf, sizeof(buf)));
			return NULL;
		}
		rp_next(p);
		p->depth--;
		n->off = open.off;
		n->end = p->prev_end;
		return n;
	default:
		rp_error_expected(p, "a field, a string, a number or '('");
		return NULL;
	}
}

/* list = '(' literal {',' literal} ')' */
static struct rule_node *
in_list(struct parser *p, struct rule_node *n)
{
	struct rule_node *items[RULE_LIST_MAX];
	size_t k = 0;

	rp_next(p);  /* '(' */
	do {
		if (k == RULE_LIST_MAX) {
			rp_error_at(p, &p->t, "list longer than %d items", RULE_LIST_MAX);
			return NULL;
		}
		if ((items[k++] = literal(p)) == NULL)
			return NULL;
	} while (testnext(p, TK_COMMA));
	if (rp_checknext(p, TK_RPAREN, "',' or ')' in the list") == -1)
		return NULL;
	n->items = rule_arena_alloc(p->cc->arena, k * sizeof(*n->items));
	if (n->items == NULL) {
		rule_cc_nomem(p->cc);
		return NULL;
	}
	memcpy(n->items, items, k * sizeof(*items));
	n->nitems = k;
	n->end = p->prev_end;
	return finish(p, n);
}

static int
cmp_op(enum rule_tok k)
{
	switch (k) {
	case TK_EQ: return RC_EQ;
	case TK_NE: return RC_NE;
	case TK_LT: return RC_LT;
	case TK_LE: return RC_LE;
	case TK_GT: return RC_GT;
	case TK_GE: return RC_GE;
	default: return -1;
	}
}

/* predicate = operand [cmpop operand | ['not'] 'in' (list | operand)
 *             | 'starts_with' operand | 'contains' operand]
 * cmpop = '=' | '!=' | '<' | '<=' | '>' | '>=' */
static struct rule_node *
predicate(struct parser *p)
{
	struct rule_node *a, *b, *n;
	struct rule_token op, nottok;
	int negate = 0, c;

	if ((a = operand(p)) == NULL)
		return NULL;
	op = p->t;
	if ((c = cmp_op(op.kind)) >= 0) {
		rp_next(p);
		if ((b = operand(p)) == NULL)
			return NULL;
		if ((n = new_node(p, NK_CMP, &op)) == NULL)
			return NULL;
		n->op = (uint8_t)c;
		n->a = a;
		n->b = b;
		n->off = a->off;
		n->end = b->end;
		return finish(p, n);
	}
	if (op.kind == TK_STARTS_WITH || op.kind == TK_CONTAINS) {
		rp_next(p);
		if ((b = operand(p)) == NULL)
			return NULL;
		return binary(p, op.kind == TK_STARTS_WITH ? NK_STARTS : NK_CONTAINS, &op,
		    a, b);
	}
	if (op.kind == TK_NOT) {
		nottok = op;
		rp_next(p);
		if (p->t.kind != TK_IN) {
			rp_error_expected(p, "'in' after 'not'");
			return NULL;
		}
		negate = 1;
		op = p->t;
	}
	if (op.kind != TK_IN)
		return a;
	rp_next(p);
	if (p->t.kind == TK_LPAREN) {
		if ((n = new_node(p, NK_INLIST, &op)) == NULL)
			return NULL;
		n->a = a;
		n->off = a->off;
		n = in_list(p, n);
	} else {
		if ((b = operand(p)) == NULL)
			return NULL;
		n = binary(p, NK_INFIELD, &op, a, b);
	}
	if (n == NULL || !negate)
		return n;
	return binary(p, NK_NOT, &nottok, n, NULL);
}

/* notexpr = 'not' notexpr | predicate */
static struct rule_node *
notexpr(struct parser *p)
{
	struct rule_token op = p->t;
	struct rule_node *a, *n;

	if (op.kind != TK_NOT)
		return predicate(p);
	if (++p->depth > RULE_DEPTH_MAX) {
		rp_error_at(p, &op, "expression nested deeper than %d levels", RULE_DEPTH_MAX);
		return NULL;
	}
	rp_next(p);
	if ((a = notexpr(p)) == NULL)
		return NULL;
	p->depth--;
	if ((n = binary(p, NK_NOT, &op, a, NULL)) != NULL)
		n->off = op.off;
	return n;
}

/* andexpr = notexpr {'and' notexpr} */
static struct rule_node *
andexpr(struct parser *p)
{
	struct rule_node *a = notexpr(p), *b;
	struct rule_token op;

	while (a != NULL && p->t.kind == TK_AND) {
		op = p->t;
		rp_next(p);
		if ((b = notexpr(p)) == NULL)
			return NULL;
		a = binary(p, NK_AND, &op, a, b);
	}
	return a;
}

/* expr = andexpr {'or' andexpr} */
static struct rule_node *
expr(struct parser *p)
{
	struct rule_node *a = andexpr(p), *b;
	struct rule_token op;

	while (a != NULL && p->t.kind == TK_OR) {
		op = p->t;
		rp_next(p);
		if ((b = andexpr(p)) == NULL)
			return NULL;
		a = binary(p, NK_OR, &op, a, b);
	}
	return a;
}

/* ---- clauses ---- */


/* CHANNEL = NAME naming a channel; returns it or -1 after an error */
int
rp_channel(struct parser *p)
{
	int c;

	if (p->t.kind != TK_NAME) {
		rp_error_expected(p, "a channel (sms or dm)");
		return -1;
	}
	if ((c = rule_channel_from_name(p->t.str)) < 0) {
		const char *alt = rule_suggest(p->t.str, rule_channel_names, CH_COUNT);

		if (alt != NULL)
			rp_error_at(p, &p->t, "unknown channel '%s'; did you mean '%s'?", p->t.str,
			    alt);
		else
			rp_error_at(p, &p->t, "unknown channel '%s' (channels: sms, dm)", p->t.str);
		return -1;
	}
	rp_next(p);
	return c;
}

/* Whole number in [lo, hi] from a NUMBER token; -1 after an error. */
static int
whole(struct parser *p, const char *what, long lo, long hi, long *out)
{
	if (p->t.kind != TK_NUMBER) {
		char buf[96];

		return rp_error_at(p, &p->t, "expected a whole number after '%s', found %s",
		    what, rp_tok_desc(&p->t, buf, sizeof(buf)));
	}
	if (!p->t.integral || p->t.num < (double)lo || p->t.num > (double)hi)
		return rp_error_at(p, &p->t, "%s must be a whole number from %ld to %ld", what,
		    lo, hi);
	*out = (long)p->t.num;
	rp_next(p);
	return 0;
}

/* clause = 'when' expr | 'audience' ('interested' | 'all')
 *        | 'send' CHANNEL {',' CHANNEL} | 'priority' NUMBER
 *        | 'template' CHANNEL ['locale' LANG] STRING | 'holdout' NUMBER '%'
 *        | 'segments' NUMBER
 *        | 'exclusive' */
static int
clause(struct parser *p, struct rule *r, struct clauses *cl)
{
	static const char *const audiences[2] = { "interested", "all" };
	static const char *const clause_words[] = { "when", "audience", "send",
	    "priority", "template", "holdout", "segments", "exclusive", "variant", "test",
	    "end" };
	enum { CLAUSE_WORDS = sizeof(clause_words) / sizeof(clause_words[0]) };
	struct rule_token kw = p->t;
	const char *alt;
	char buf[96];
	long v;
	int c;

#define ONCE(flag, word) do { \
		if (cl->flag) \
			return rp_error_at(p, &kw, "duplicate '" word "' in rule '%s'", r->name); \
		cl->flag = 1; \
	} while (0)

	rp_next(p);
	switch (kw.kind) {
	case TK_WHEN:
		if (cl->when)
			return rp_error_at(p, &kw, "duplicate 'when' in rule '%s'; join the "
			    "conditions with 'and'", r->name);
		cl->when = 1;
		p->depth = 0;
		if ((r->when = expr(p)) == NULL)
			return -1;
		return rule_check_cond(p->cc, r->when);
	case TK_AUDIENCE:
		ONCE(audience, "audience");
		if (p->t.kind == TK_NAME && strcmp(p->t.str, "interested") == 0)
			r->audience_all = 0;
		else if (p->t.kind == TK_NAME && strcmp(p->t.str, "all") == 0)
			r->audience_all = 1;
		else if (p->t.kind == TK_NAME &&
		    (alt = rule_suggest(p->t.str, audiences, 2)) != NULL)
			return rp_error_at(p, &p->t, "audience must be 'interested' or 'all', "
			    "not '%s'; did you mean '%s'?", p->t.str, alt);
		else
			return rp_error_at(p, &p->t, "audience must be 'interested' or 'all', "
			    "not %s", rp_tok_desc(&p->t, buf, sizeof(buf)));
		rp_next(p);
		return 0;
	case TK_SEND:
		ONCE(send, "send");
		do {
			struct rule_token ct = p->t;

			if ((c = rp_channel(p)) < 0)
				return -1;
			if (r->channels & CH_BIT(c))
				return rp_error_at(p, &ct, "channel '%s' listed twice",
				    rule_channel_name(c));
			r->channels |= CH_BIT(c);
		} while (testnext(p, TK_COMMA));
		return 0;
	case TK_PRIORITY:
		ONCE(priority, "priority");
		if (whole(p, "priority", 0, RULE_PRIORITY_MAX, &v) == -1)
			return -1;
		r->priority = (int)v;
		return 0;
	case TK_EXCLUSIVE:
		ONCE(exclusive, "exclusive");
		r->exclusive = 1;
		return 0;
	case TK_SEGMENTS:
		ONCE(segments, "segments");
		if (whole(p, "segments", 1, RULE_SEGMENTS_MAX, &v) == -1)
			return -1;
		r->max_segments = (unsigned)v;
		return 0;
	case TK_HOLDOUT:
		ONCE(holdout, "holdout");
		if (p->t.kind != TK_NUMBER)
			return rp_error_expected(p, "a share like 5% after 'holdout'");
		if (p->t.num < 0 || p->t.num > 100)
			return rp_error_at(p, &p->t, "holdout must be from 0%% to 100%%");
		r->holdout_bp = (unsigned)(p->t.num * 100.0 + 0.5);
		rp_next(p);
		return rp_checknext(p, TK_PERCENT, "'%' after the holdout share");
	case TK_TEMPLATE:
		return rp_template_clause(p, r, cl, &kw);
	default:
		/* Not reserved words, so that rules and fields may still be named so. */
		if (kw.kind == TK_NAME && strcmp(kw.str, "variant") == 0)
			return rp_variant_clause(p, r, cl, &kw);
		if (kw.kind == TK_NAME && strcmp(kw.str, "test") == 0)
			return rp_test_clause(p, r, cl, &kw);
		if (kw.kind == TK_NAME &&
		    (alt = rule_suggest(kw.str, clause_words, CLAUSE_WORDS)) != NULL)
			return rp_error_at(p, &kw, "expected a clause or 'end', found '%s'; did "
			    "you mean '%s'?", kw.str, alt);
		return rp_error_at(p, &kw, "expected a clause (when, audience, send, priority, "
		    "template, holdout, segments, exclusive, variant, test) or 'end', found %s",
		    rp_tok_desc(&kw, buf, sizeof(buf)));
	}
#undef ONCE
}

/* 1 when k begins a clause. */
static int
clause_word(enum rule_tok k)
{
	switch (k) {
	case TK_WHEN: case TK_AUDIENCE: case TK_SEND: case TK_PRIORITY:
	case TK_TEMPLATE: case TK_HOLDOUT: case TK_SEGMENTS: case TK_EXCLUSIVE:
		return 1;
	default:
		return 0;
	}
}

/* 1 when the current token may begin the next clause: a clause word, or a word that
 * is not a field name first on its line (a misspelt clause word: "priorty 5"). */
static int
at_clause(const struct parser *p)
{
	return clause_word(p->t.kind) || (p->t.kind == TK_NAME &&
	    p->t.line != p->prev_line && strchr(p->t.str, '.') == NULL);
}

/* After a broken clause: skips quietly to what may begin the next clause, 'end',
 * 'rule' or the end of the file, so that the rule's other clauses are still checked. */
static void
sync_clause(struct parser *p)
{
	p->lx.quiet = 1;
	while (!at_clause(p) && p->t.kind != TK_END && p->t.kind != TK_RULE &&
	    p->t.kind != TK_EOF)
		rp_next(p);
	p->lx.quiet = 0;
}

/* Checks the new rule's name against every rule so far, in all files. */
static int
unique_name(struct parser *p, const struct rule *r, const struct rule_token *nt)
{
	size_t i;

	for (i = 0; i < *p->n; i++) {
		const struct rule *o = (*p->v)[i];

		if (strcmp(o->name, r->name) == 0)
			return rp_error_at(p, nt, "duplicate rule name '%s'; first defined at "
			    "%s:%d:%d", r->name, o->file, o->line, o->col);
	}
	return 0;
}

static int
push_rule(struct parser *p, struct rule *r)
{
	if (*p->n == *p->cap) {
		size_t ncap = *p->cap ? *p->cap * 2 : 16;
		struct rule **nv = rule_arena_alloc(p->cc->arena, ncap * sizeof(*nv));

		if (nv == NULL)
			return rule_cc_nomem(p->cc);
		if (*p->n > 0)
			memcpy(nv, *p->v, *p->n * sizeof(*nv));
		*p->v = nv;
		*p->cap = ncap;
	}
	r->order = *p->n;
	(*p->v)[(*p->n)++] = r;
	return 0;
}

/* rule = 'rule' NAME {clause} 'end' */
static int
rule_block(struct parser *p)
{
	struct rule_token rt = p->t, nt;
	struct clauses cl;
	struct rule *r;
	char buf[96];
	int bad = 0;

	memset(&cl, 0, sizeof(cl));
	rp_next(p);
	if (p->t.kind != TK_NAME)
		return rp_error_expected(p, "a rule name after 'rule'");
	nt = p->t;
	if ((r = rule_arena_alloc(p->cc->arena, sizeof(*r))) == NULL)
		return rule_cc_nomem(p->cc);
	r->name = nt.str;
	r->file = p->cc->file;
	r->line = rt.line;
	r->col = nt.col;
	r->src = p->src;
	r->max_segments = RULE_SEGMENTS_DEFAULT;
	r->name_hash = rule_fnv1a(r->name);
	if (unique_name(p, r, &nt) == -1)
		bad = 1;
	if (*p->n >= RULE_RULES_MAX) {
		rp_error_at(p, &rt, "more than %d rules", RULE_RULES_MAX);
		bad = 1;
	}
	/* listed at once, so that a later duplicate name is found even if this rule
	 * turns out broken (a set with any error is thrown away anyway) */
	if (!bad && push_rule(p, r) == -1)
		return -1;
	rp_next(p);
	while (p->t.kind != TK_END) {
		if (p->t.kind == TK_EOF || p->t.kind == TK_RULE)
			return rp_error_at(p, &p->t, "expected 'end' to close rule '%s' (line %d), "
			    "found %s", r->name, rt.line, rp_tok_desc(&p->t, buf, sizeof(buf)));
		if (clause(p, r, &cl) == -1) {
			if (p->cc->nomem || p->cc->nerr >= RULE_DIAGS_MAX)
				return -1;
			sync_clause(p);
		}
	}
	if (!cl.send)
		rp_error_at(p, &nt, "rule '%s' has no 'send' clause; add e.g. 'send sms'",
		    r->name);
	rp_rule_finish(p, r, &cl, &nt);
	rp_next(p);  /* 'end' */
	return 0;
}

/* Skips tokens quietly: up to 'rule' when at_rule, else past the next 'end'. */
static void
sync(struct parser *p, int at_rule)
{
	p->lx.quiet = 1;
	while (p->t.kind != TK_EOF && p->t.kind != TK_RULE) {
		if (!at_rule && p->t.kind == TK_END) {
			rp_next(p);
			break;
		}
		rp_next(p);
	}
	p->lx.quiet = 0;
}

/* file = {rule} EOF */
int
rule_parse_file(struct rule_cc *cc, struct rule ***v, size_t *n, size_t *cap)
{
	struct parser p;
	size_t nerr = cc->nerr;

	memset(&p, 0, sizeof(p));
	p.cc = cc;
	p.v = v;
	p.n = n;
	p.cap = cap;
	if ((p.src = rule_arena_strndup(cc->arena, cc->src, cc->srclen)) == NULL)
		return rule_cc_nomem(cc);
	cc->src = p.src;  /* the copy is NUL-terminated */
	rule_lex_init(&p.lx, cc);
	rp_next(&p);
	while (p.t.kind != TK_EOF && !cc->nomem && cc->nerr < RULE_DIAGS_MAX) {
		if (p.t.kind == TK_RULE) {
			if (rule_block(&p) == -1)
				sync(&p, 0);
		} else {
			rp_error_expected(&p, "'rule'");
			rp_next(&p);
			sync(&p, 1);
		}
	}
	return cc->nerr > nerr || cc->nomem ? -1 : 0;
}
