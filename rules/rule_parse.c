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

static void
next(struct parser *p)
{
	p->prev_end = p->t.off + p->t.len;
	p->prev_line = p->t.line;
	rule_lex_next(&p->lx, &p->t);
}

/* Describes a token for "found ..." in messages. */
static const char *
tok_desc(const struct rule_token *t, char *buf, size_t size)
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
static int error_at(struct parser *p, const struct rule_token *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
error_at(struct parser *p, const struct rule_token *t, const char *fmt, ...)
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

static int
error_expected(struct parser *p, const char *what)
{
	char buf[96];

	return error_at(p, &p->t, "expected %s, found %s", what,
	    tok_desc(&p->t, buf, sizeof(buf)));
}

static int
testnext(struct parser *p, enum rule_tok k)
{
	if (p->t.kind != k)
		return 0;
	next(p);
	return 1;
}

static int
checknext(struct parser *p, enum rule_tok k, const char *what)
{
	if (p->t.kind != k)
		return error_expected(p, what);
	next(p);
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
		next(p);
		if (p->t.kind == TK_PERCENT) {   /* a share: checked against its field */
			n->pct = 1;
			n->end = p->t.off + p->t.len;
			next(p);
		}
		return finish(p, n);
	} else if (p->t.kind == TK_STRING) {
		if ((n = new_node(p, NK_STR, &p->t)) == NULL)
			return NULL;
		n->str = p->t.str;
	} else {
		error_expected(p, "a string or a number in the list");
		return NULL;
	}
	next(p);
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
		next(p);
		return finish(p, n);
	case TK_NAME:
		if ((n = new_node(p, NK_FIELD, &p->t)) == NULL)
			return NULL;
		n->str = p->t.str;
		next(p);
		return finish(p, n);
	case TK_LPAREN:
		open = p->t;
		if (++p->depth > RULE_DEPTH_MAX) {
			error_at(p, &p->t, "expression nested deeper than %d levels",
			    RULE_DEPTH_MAX);
			return NULL;
		}
		next(p);
		if ((n = expr(p)) == NULL)
			return NULL;
		if (p->t.kind != TK_RPAREN) {
			char buf[96];

			error_at(p, &p->t, "expected ')' to close the '(' at %d:%d, found %s",
			    open.line, open.col, tok_desc(&p->t, buf, sizeof(buf)));
			return NULL;
		}
		next(p);
		p->depth--;
		n->off = open.off;
		n->end = p->prev_end;
		return n;
	default:
		error_expected(p, "a field, a string, a number or '('");
		return NULL;
	}
}

/* list = '(' literal {',' literal} ')' */
static struct rule_node *
in_list(struct parser *p, struct rule_node *n)
{
	struct rule_node *items[RULE_LIST_MAX];
	size_t k = 0;

	next(p);  /* '(' */
	do {
		if (k == RULE_LIST_MAX) {
			error_at(p, &p->t, "list longer than %d items", RULE_LIST_MAX);
			return NULL;
		}
		if ((items[k++] = literal(p)) == NULL)
			return NULL;
	} while (testnext(p, TK_COMMA));
	if (checknext(p, TK_RPAREN, "',' or ')' in the list") == -1)
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
		next(p);
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
		next(p);
		if ((b = operand(p)) == NULL)
			return NULL;
		return binary(p, op.kind == TK_STARTS_WITH ? NK_STARTS : NK_CONTAINS, &op,
		    a, b);
	}
	if (op.kind == TK_NOT) {
		nottok = op;
		next(p);
		if (p->t.kind != TK_IN) {
			error_expected(p, "'in' after 'not'");
			return NULL;
		}
		negate = 1;
		op = p->t;
	}
	if (op.kind != TK_IN)
		return a;
	next(p);
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
		error_at(p, &op, "expression nested deeper than %d levels", RULE_DEPTH_MAX);
		return NULL;
	}
	next(p);
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
		next(p);
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
		next(p);
		if ((b = andexpr(p)) == NULL)
			return NULL;
		a = binary(p, NK_OR, &op, a, b);
	}
	return a;
}

/* ---- clauses ---- */

struct clauses {
	int when, audience, send, priority, holdout, segments, exclusive;
	struct rule_token tmpl[CH_COUNT];
	int has_tmpl[CH_COUNT];
};

/* CHANNEL = NAME naming a channel; returns it or -1 after an error */
static int
channel(struct parser *p)
{
	int c;

	if (p->t.kind != TK_NAME) {
		error_expected(p, "a channel (sms or dm)");
		return -1;
	}
	if ((c = rule_channel_from_name(p->t.str)) < 0) {
		const char *alt = rule_suggest(p->t.str, rule_channel_names, CH_COUNT);

		if (alt != NULL)
			error_at(p, &p->t, "unknown channel '%s'; did you mean '%s'?", p->t.str,
			    alt);
		else
			error_at(p, &p->t, "unknown channel '%s' (channels: sms, dm)", p->t.str);
		return -1;
	}
	next(p);
	return c;
}

/* Whole number in [lo, hi] from a NUMBER token; -1 after an error. */
static int
whole(struct parser *p, const char *what, long lo, long hi, long *out)
{
	if (p->t.kind != TK_NUMBER) {
		char buf[96];

		return error_at(p, &p->t, "expected a whole number after '%s', found %s",
		    what, tok_desc(&p->t, buf, sizeof(buf)));
	}
	if (!p->t.integral || p->t.num < (double)lo || p->t.num > (double)hi)
		return error_at(p, &p->t, "%s must be a whole number from %ld to %ld", what,
		    lo, hi);
	*out = (long)p->t.num;
	next(p);
	return 0;
}

/* Compiles the template string of token t; errors point into the string. */
static const struct rule_template *
template_string(struct parser *p, const struct rule_token *t, int ch, const char *lang)
{
	struct rule_template *tp;
	char msg[160];
	size_t bad = 0, raw, dec = 0;
	int col;

	msg[0] = '\0';
	tp = rule_tpl_compile(p->cc->arena, t->str, t->slen, &bad, msg, sizeof(msg));
	if (tp == NULL) {
		if (msg[0] == '\0') {
			rule_cc_nomem(p->cc);
			return NULL;
		}
		/* map the decoded offset back to the source: escapes are 2 bytes there */
		raw = t->off + 1;
		col = t->col + 1;
		while (dec < bad && raw < t->off + t->len) {
			if (p->src[raw] == '\\')
				raw += 2, dec += 1, col++;  /* an escape is two characters */
			else
				raw++, dec++;
			while (raw < t->off + t->len &&
			    ((unsigned char)p->src[raw] & 0xC0) == 0x80)
				raw++, dec++;
			col++;
		}
		rule_cc_error(p->cc, raw, t->line, col, "%s", msg);
		return NULL;
	}
	if (ch == CH_SMS && lang == NULL && !rule_tpl_has_optout(tp)) {
		error_at(p, t, "sms template has no opt-out words; add \"Reply STOP to end\" "
		    "or similar");
		return NULL;
	}
	if (ch == CH_SMS && lang != NULL && !rule_tpl_has_optout_in(tp, lang)) {
		error_at(p, t, "sms template for locale %s has no opt-out words; add "
		    "\"Reply STOP to end\"%s", lang, strcmp(lang, "es") == 0 ?
		    " or \"Responde ALTO para cancelar\"" : " or similar");
		return NULL;
	}
	return tp;
}

/* 'template' CHANNEL 'locale' LANG STRING, after CHANNEL: a template for the
 * subscribers whose locale is in language LANG. */
static int
locale_template(struct parser *p, struct rule *r, int c)
{
	struct rule_token lt, st;
	const struct rule_template *tp;
	size_t i, n;

	next(p);  /* 'locale' */
	lt = p->t;
	n = lt.kind == TK_NAME ? strlen(lt.str) : 0;
	for (i = 0; i < n && lt.str[i] >= 'a' && lt.str[i] <= 'z'; i++)
		;
	if (n < 2 || n > RULE_LANG_MAX || i != n)
		return error_expected(p, "a language after 'locale' (2 or 3 lower-case "
		    "letters, like es)");
	for (i = 0; i < r->nloc[c]; i++)
		if (strcmp(r->loc[c][i].lang, lt.str) == 0)
			return error_at(p, &lt, "duplicate template for '%s' locale %s in rule "
			    "'%s'", rule_channel_name(c), lt.str, r->name);
	if (r->nloc[c] == RULE_LOCALES_MAX)
		return error_at(p, &lt, "more than %d locales for '%s' in rule '%s'",
		    RULE_LOCALES_MAX, rule_channel_name(c), r->name);
	next(p);
	if (p->t.kind != TK_STRING)
		return error_expected(p, "the template text in double quotes");
	st = p->t;
	next(p);
	if ((tp = template_string(p, &st, c, lt.str)) == NULL)
		return -1;
	memcpy(r->loc[c][r->nloc[c]].lang, lt.str, n + 1);
	r->loc[c][r->nloc[c]].t = tp;
	r->nloc[c]++;
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
	    "priority", "template", "holdout", "segments", "exclusive", "end" };
	enum { CLAUSE_WORDS = sizeof(clause_words) / sizeof(clause_words[0]) };
	struct rule_token kw = p->t;
	const char *alt;
	char buf[96];
	long v;
	int c;

#define ONCE(flag, word) do { \
		if (cl->flag) \
			return error_at(p, &kw, "duplicate '" word "' in rule '%s'", r->name); \
		cl->flag = 1; \
	} while (0)

	next(p);
	switch (kw.kind) {
	case TK_WHEN:
		if (cl->when)
			return error_at(p, &kw, "duplicate 'when' in rule '%s'; join the "
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
			return error_at(p, &p->t, "audience must be 'interested' or 'all', "
			    "not '%s'; did you mean '%s'?", p->t.str, alt);
		else
			return error_at(p, &p->t, "audience must be 'interested' or 'all', "
			    "not %s", tok_desc(&p->t, buf, sizeof(buf)));
		next(p);
		return 0;
	case TK_SEND:
		ONCE(send, "send");
		do {
			struct rule_token ct = p->t;

			if ((c = channel(p)) < 0)
				return -1;
			if (r->channels & CH_BIT(c))
				return error_at(p, &ct, "channel '%s' listed twice",
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
			return error_expected(p, "a share like 5% after 'holdout'");
		if (p->t.num < 0 || p->t.num > 100)
			return error_at(p, &p->t, "holdout must be from 0%% to 100%%");
		r->holdout_bp = (unsigned)(p->t.num * 100.0 + 0.5);
		next(p);
		return checknext(p, TK_PERCENT, "'%' after the holdout share");
	case TK_TEMPLATE: {
		struct rule_token st;
		const struct rule_template *tp;

		if ((c = channel(p)) < 0)
			return -1;
		if (p->t.kind == TK_NAME && strcmp(p->t.str, "locale") == 0)
			return locale_template(p, r, c);
		if (cl->has_tmpl[c])
			return error_at(p, &kw, "duplicate template for '%s' in rule '%s'",
			    rule_channel_name(c), r->name);
		if (p->t.kind != TK_STRING)
			return error_expected(p, "the template text in double quotes");
		st = p->t;
		next(p);
		if ((tp = template_string(p, &st, c, NULL)) == NULL)
			return -1;
		r->tmpl[c] = tp;
		cl->has_tmpl[c] = 1;
		cl->tmpl[c] = kw;
		return 0;
	}
	default:
		if (kw.kind == TK_NAME &&
		    (alt = rule_suggest(kw.str, clause_words, CLAUSE_WORDS)) != NULL)
			return error_at(p, &kw, "expected a clause or 'end', found '%s'; did "
			    "you mean '%s'?", kw.str, alt);
		return error_at(p, &kw, "expected a clause (when, audience, send, priority, "
		    "template, holdout, segments, exclusive) or 'end', found %s",
		    tok_desc(&kw, buf, sizeof(buf)));
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
		next(p);
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
			return error_at(p, nt, "duplicate rule name '%s'; first defined at "
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
	int c, bad = 0;

	memset(&cl, 0, sizeof(cl));
	next(p);
	if (p->t.kind != TK_NAME)
		return error_expected(p, "a rule name after 'rule'");
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
		error_at(p, &rt, "more than %d rules", RULE_RULES_MAX);
		bad = 1;
	}
	/* listed at once, so that a later duplicate name is found even if this rule
	 * turns out broken (a set with any error is thrown away anyway) */
	if (!bad && push_rule(p, r) == -1)
		return -1;
	next(p);
	while (p->t.kind != TK_END) {
		if (p->t.kind == TK_EOF || p->t.kind == TK_RULE)
			return error_at(p, &p->t, "expected 'end' to close rule '%s' (line %d), "
			    "found %s", r->name, rt.line, tok_desc(&p->t, buf, sizeof(buf)));
		if (clause(p, r, &cl) == -1) {
			if (p->cc->nomem || p->cc->nerr >= RULE_DIAGS_MAX)
				return -1;
			sync_clause(p);
		}
	}
	if (!cl.send)
		error_at(p, &nt, "rule '%s' has no 'send' clause; add e.g. 'send sms'",
		    r->name);
	for (c = 0; c < CH_COUNT; c++) {
		if (cl.has_tmpl[c] && cl.send && !(r->channels & CH_BIT(c)))
			error_at(p, &cl.tmpl[c], "template for '%s' but rule '%s' does not send "
			    "%s", rule_channel_name(c), r->name, rule_channel_name(c));
		else if (r->nloc[c] > 0 && cl.send && !(r->channels & CH_BIT(c)))
			error_at(p, &nt, "template for '%s' locale %s but rule '%s' does not "
			    "send %s", rule_channel_name(c), r->loc[c][0].lang, r->name,
			    rule_channel_name(c));
	}
	next(p);  /* 'end' */
	return 0;
}

/* Skips tokens quietly: up to 'rule' when at_rule, else past the next 'end'. */
static void
sync(struct parser *p, int at_rule)
{
	p->lx.quiet = 1;
	while (p->t.kind != TK_EOF && p->t.kind != TK_RULE) {
		if (!at_rule && p->t.kind == TK_END) {
			next(p);
			break;
		}
		next(p);
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
	next(&p);
	while (p.t.kind != TK_EOF && !cc->nomem && cc->nerr < RULE_DIAGS_MAX) {
		if (p.t.kind == TK_RULE) {
			if (rule_block(&p) == -1)
				sync(&p, 0);
		} else {
			error_expected(&p, "'rule'");
			next(&p);
			sync(&p, 1);
		}
	}
	return cc->nerr > nerr || cc->nomem ? -1 : 0;
}
