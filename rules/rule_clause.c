/*
 * rule_clause.c: the message clauses of a rule (stage: compile): its templates, per
 * channel and per language, its A/B variants and their test. Part of the parser
 * (rule_parse_int.h); docs/rules.md "Templates" and "A/B variants".
 */
#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "rule_int.h"
#include "rule_parse_int.h"

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
	if (channel_def(ch)->optout_text && lang == NULL && !rule_tpl_has_optout(tp)) {
		rp_error_at(p, t, "%s template has no opt-out words; add \"Reply STOP to end\" "
		    "or similar", channel_name(ch));
		return NULL;
	}
	if (channel_def(ch)->optout_text && lang != NULL && !rule_tpl_has_optout_in(tp, lang)) {
		rp_error_at(p, t, "%s template for locale %s has no opt-out words; add "
		    "\"Reply STOP to end\"%s", channel_name(ch), lang, strcmp(lang, "es") == 0 ?
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

	rp_next(p);  /* 'locale' */
	lt = p->t;
	n = lt.kind == TK_NAME ? strlen(lt.str) : 0;
	for (i = 0; i < n && lt.str[i] >= 'a' && lt.str[i] <= 'z'; i++)
		;
	if (n < 2 || n > RULE_LANG_MAX || i != n)
		return rp_error_expected(p, "a language after 'locale' (2 or 3 lower-case "
		    "letters, like es)");
	for (i = 0; i < r->nloc[c]; i++)
		if (strcmp(r->loc[c][i].lang, lt.str) == 0)
			return rp_error_at(p, &lt, "duplicate template for '%s' locale %s in rule "
			    "'%s'", rule_channel_name(c), lt.str, r->name);
	if (r->nloc[c] == RULE_LOCALES_MAX)
		return rp_error_at(p, &lt, "more than %d locales for '%s' in rule '%s'",
		    RULE_LOCALES_MAX, rule_channel_name(c), r->name);
	rp_next(p);
	if (p->t.kind != TK_STRING)
		return rp_error_expected(p, "the template text in double quotes");
	st = p->t;
	rp_next(p);
	if ((tp = template_string(p, &st, c, lt.str)) == NULL)
		return -1;
	memcpy(r->loc[c][r->nloc[c]].lang, lt.str, n + 1);
	r->loc[c][r->nloc[c]].t = tp;
	r->nloc[c]++;
	return 0;
}


/* 'template' CHANNEL ['locale' LANG] STRING */
int
rp_template_clause(struct parser *p, struct rule *r, struct clauses *cl,
    const struct rule_token *kw)
{
	struct rule_token st;
	const struct rule_template *tp;
	int c;

	if ((c = rp_channel(p)) < 0)
		return -1;
	if (p->t.kind == TK_NAME && strcmp(p->t.str, "locale") == 0)
		return locale_template(p, r, c);
	if (cl->has_tmpl[c])
		return rp_error_at(p, kw, "duplicate template for '%s' in rule '%s'",
		    rule_channel_name(c), r->name);
	if (p->t.kind != TK_STRING)
		return rp_error_expected(p, "the template text in double quotes");
	st = p->t;
	rp_next(p);
	if ((tp = template_string(p, &st, c, NULL)) == NULL)
		return -1;
	r->tmpl[c] = tp;
	cl->has_tmpl[c] = 1;
	cl->tmpl[c] = *kw;
	return 0;
}

/* 'variant' NAME STRING */
int
rp_variant_clause(struct parser *p, struct rule *r, struct clauses *cl,
    const struct rule_token *kw)
{
	struct rule_token nt, st;
	const struct rule_template *tp;
	size_t i, n;

	if (cl->variant_tok.line == 0)
		cl->variant_tok = *kw;
	nt = p->t;
	n = nt.kind == TK_NAME ? strlen(nt.str) : 0;
	for (i = 0; i < n; i++) {
		char ch = nt.str[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
			break;
	}
	if (n == 0 || n > RULE_VARIANT_NAME_MAX || i != n)
		return rp_error_expected(p, "a variant name after 'variant' (1 to 16 "
		    "lower-case letters, digits or '_', like a)");
	for (i = 0; i < r->nvariants; i++)
		if (strcmp(r->variants[i].name, nt.str) == 0)
			return rp_error_at(p, &nt, "duplicate variant '%s' in rule '%s'", nt.str,
			    r->name);
	if (r->nvariants == RULE_VARIANTS_MAX)
		return rp_error_at(p, &nt, "more than %d variants in rule '%s'",
		    RULE_VARIANTS_MAX, r->name);
	rp_next(p);
	if (p->t.kind != TK_STRING)
		return rp_error_expected(p, "the variant's text in double quotes");
	st = p->t;
	rp_next(p);
	if ((tp = template_string(p, &st, CH_SMS, NULL)) == NULL)
		return -1;
	memcpy(r->variants[r->nvariants].name, nt.str, n + 1);
	r->variants[r->nvariants].t = tp;
	r->nvariants++;
	return 0;
}

/* The plain word w (a NAME token spelled w), consumed; else an error. */
static int
word(struct parser *p, const char *w, const char *what)
{
	if (p->t.kind != TK_NAME || strcmp(p->t.str, w) != 0)
		return rp_error_expected(p, what);
	rp_next(p);
	return 0;
}

/* 'test' NUMBER '%' 'for' DURATION 'by' ('clicks' | 'redemptions') ['fallback' NAME] */
int
rp_test_clause(struct parser *p, struct rule *r, struct clauses *cl,
    const struct rule_token *kw)
{
	if (cl->test)
		return rp_error_at(p, kw, "duplicate 'test' in rule '%s'", r->name);
	cl->test = 1;
	cl->test_tok = *kw;
	if (p->t.kind != TK_NUMBER)
		return rp_error_expected(p, "the test share after 'test', like 20%");
	if (p->t.num <= 0 || p->t.num > 100)
		return rp_error_at(p, &p->t, "the test share must be above 0%% and at most "
		    "100%%");
	r->ab.share_bp = (unsigned)(p->t.num * 100.0 + 0.5);
	if (r->ab.share_bp == 0)
		r->ab.share_bp = 1;
	rp_next(p);
	if (rp_checknext(p, TK_PERCENT, "'%' after the test share") < 0 ||
	    word(p, "for", "'for' and how long the test runs, like 'for 10m'") < 0)
		return -1;
	if (p->t.kind != TK_DURATION)
		return rp_error_expected(p, "how long the test runs, like 10m, 90s or 1h");
	if (p->t.num < RULE_AB_WINDOW_MIN_S || p->t.num > RULE_AB_WINDOW_MAX_S)
		return rp_error_at(p, &p->t, "a test runs from 1m to 24h");
	r->ab.window_s = (long)p->t.num;
	rp_next(p);
	if (word(p, "by", "'by clicks' or 'by redemptions'") < 0)
		return -1;
	if (p->t.kind == TK_NAME && strcmp(p->t.str, "clicks") == 0)
		r->ab.metric = RULE_AB_CLICKS;
	else if (p->t.kind == TK_NAME && strcmp(p->t.str, "redemptions") == 0)
		r->ab.metric = RULE_AB_REDEMPTIONS;
	else
		return rp_error_expected(p, "'clicks' or 'redemptions' after 'by'");
	rp_next(p);
	if (p->t.kind == TK_NAME && strcmp(p->t.str, "fallback") == 0) {
		rp_next(p);
		if (p->t.kind != TK_NAME || strlen(p->t.str) > RULE_VARIANT_NAME_MAX)
			return rp_error_expected(p, "a variant's name after 'fallback'");
		cl->fallback_tok = p->t;
		snprintf(cl->fallback, sizeof(cl->fallback), "%s", p->t.str);
		rp_next(p);
	}
	return 0;
}

void
rp_rule_finish(struct parser *p, struct rule *r, const struct clauses *cl,
    const struct rule_token *nt)
{
	size_t i;
	int c;

	for (c = 0; c < CH_COUNT; c++) {
		if (cl->has_tmpl[c] && cl->send && !(r->channels & CH_BIT(c)))
			rp_error_at(p, &cl->tmpl[c], "template for '%s' but rule '%s' does "
			    "not send %s", rule_channel_name(c), r->name, rule_channel_name(c));
		else if (r->nloc[c] > 0 && cl->send && !(r->channels & CH_BIT(c)))
			rp_error_at(p, nt, "template for '%s' locale %s but rule '%s' does not "
			    "send %s", rule_channel_name(c), r->loc[c][0].lang, r->name,
			    rule_channel_name(c));
	}
	if (r->nvariants == 0 && !cl->test)
		return;
	if (r->nvariants > 0 && !cl->test) {
		rp_error_at(p, &cl->variant_tok, "rule '%s' has variants but no 'test' "
		    "clause; add e.g. 'test 20%% for 10m by clicks'", r->name);
		return;
	}
	if (r->nvariants < 2) {
		rp_error_at(p, &cl->test_tok, "a test needs 2 to %d variants; rule '%s' "
		    "has %u", RULE_VARIANTS_MAX, r->name, r->nvariants);
		return;
	}
	if (cl->send && !(r->channels & CH_BIT(CH_SMS)))
		rp_error_at(p, &cl->variant_tok, "variants are SMS texts but rule '%s' "
		    "does not send sms", r->name);
	if (cl->has_tmpl[CH_SMS] || r->nloc[CH_SMS] > 0)
		rp_error_at(p, &cl->variant_tok, "rule '%s' has both variants and an sms "
		    "template: the variants are its sms texts", r->name);
	r->ab.fallback = 0;
	if (cl->fallback[0] != '\0') {
		for (i = 0; i < r->nvariants; i++)
			if (strcmp(r->variants[i].name, cl->fallback) == 0)
				break;
		if (i == r->nvariants)
			rp_error_at(p, &cl->fallback_tok, "fallback '%s' is not a variant of "
			    "rule '%s'", cl->fallback, r->name);
		else
			r->ab.fallback = (unsigned)i;
	}
}
