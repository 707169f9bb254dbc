/*
 * rule_lex.c: the lexer of the rule language (stage: match), after Lua's llex.c: all
 * state in struct rule_lexer, one token at a time, line and column (in characters) on
 * every token, limits on token length.
 * Input is hostile: any byte sequence gives tokens or positioned errors, never a read
 * past the end, never an abort. No I/O, no globals.
 */
#include <string.h>

#include "rule_int.h"

/* ORDER RESERVED: the spelling of TK_RULE .. TK_FALSE. */
static const char *const rule_reserved[] = {
	"rule", "end", "when", "audience", "send", "priority", "template",
	"holdout", "segments", "exclusive", "and", "or", "not", "in", "starts_with",
	"contains", "true", "false"
};

#define NUMBER_DIGITS_MAX 15  /* so that mantissa / 10^k is exact-then-rounded */

const char *
rule_tok_name(enum rule_tok k)
{
	static const char *const names[TK_RULE] = {
		"end of file", "an invalid token", "a name", "a number", "a string",
		"a duration", "','", "'('", "')'", "'%'", "'='", "'!='", "'<'", "'<='", "'>'", "'>='"
	};

	if (k < TK_RULE)
		return names[k];
	if (k < TK_COUNT)
		return rule_reserved[k - TK_RULE];
	return "?";
}

void
rule_lex_init(struct rule_lexer *lx, struct rule_cc *cc)
{
	lx->cc = cc;
	lx->src = cc->src;
	lx->len = cc->srclen;
	lx->pos = 0;
	lx->line = 1;
	lx->col = 1;
	lx->quiet = 0;
}

static int
cur(const struct rule_lexer *lx)
{
	return lx->pos < lx->len ? (unsigned char)lx->src[lx->pos] : -1;
}

static int
peek(const struct rule_lexer *lx, size_t ahead)
{
	return lx->pos + ahead < lx->len ? (unsigned char)lx->src[lx->pos + ahead] : -1;
}

/* Moves one byte on; columns count characters, so continuation bytes add nothing. */
static void
advance(struct rule_lexer *lx)
{
	unsigned char c = (unsigned char)lx->src[lx->pos++];

	if (c == '\n') {
		lx->line++;
		lx->col = 1;
	} else if ((c & 0xC0) != 0x80) {
		lx->col++;
	}
}

static enum rule_tok
lex_error(struct rule_lexer *lx, struct rule_token *t, const char *msg, int c)
{
	t->kind = TK_ERROR;
	t->len = lx->pos > t->off ? lx->pos - t->off : 1;
	if (lx->quiet)
		return TK_ERROR;
	if (c >= 0x20 && c < 0x7f)
		rule_cc_error(lx->cc, t->off, t->line, t->col, "%s '%c'", msg, c);
	else if (c >= 0)
		rule_cc_error(lx->cc, t->off, t->line, t->col, "%s (byte 0x%02x)", msg, c);
	else
		rule_cc_error(lx->cc, t->off, t->line, t->col, "%s", msg);
	return TK_ERROR;
}

/* After an error inside a string, the rest of its line is not lexed. */
static enum rule_tok
string_error(struct rule_lexer *lx, struct rule_token *t, const char *msg, int c)
{
	lex_error(lx, t, msg, c);
	while (cur(lx) >= 0 && cur(lx) != '\n')
		advance(lx);
	return TK_ERROR;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		len = 2, cp = p[0] & 0x1F;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		len = 3, cp = p[0] & 0x0F;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* STRING = '"' { char | '\' ('"' | '\' | 'n' | 't') } '"'  (one line, UTF-8) */
static enum rule_tok
lex_string(struct rule_lexer *lx, struct rule_token *t)
{
	char buf[RULE_STRING_MAX];
	size_t n = 0;
	int c;

	advance(lx);  /* the opening quote */
	for (;;) {
		c = cur(lx);
		if (c < 0 || c == '\n' || c == '\r')
			return lex_error(lx, t, "unterminated string; close it with '\"' on the "
			    "same line", -1);
		if (c == '"') {
			advance(lx);
			break;
		}
		if (c == '\\') {
			int e = peek(lx, 1);

			if (e != '"' && e != '\\' && e != 'n' && e != 't') {
				t->line = lx->line, t->col = lx->col, t->off = lx->pos;
				advance(lx);
				return string_error(lx, t, "unknown escape in string; use \\\" \\\\ \\n "
				    "or \\t, not", e);
			}
			advance(lx);
			advance(lx);
			c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
			if (n >= sizeof(buf))
				return string_error(lx, t, "string longer than 2048 bytes", -1);
			buf[n++] = (char)c;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			t->line = lx->line, t->col = lx->col, t->off = lx->pos;
			advance(lx);
			return string_error(lx, t, "control character in string", c);
		}
		{
			size_t l = utf8_len((const unsigned char *)lx->src + lx->pos,
			    lx->len - lx->pos), i;

			if (l == 0) {
				t->line = lx->line, t->col = lx->col, t->off = lx->pos;
				advance(lx);
				return string_error(lx, t, "invalid UTF-8 in string", c);
			}
			if (n + l > sizeof(buf))
				return string_error(lx, t, "string longer than 2048 bytes", -1);
			for (i = 0; i < l; i++) {
				buf[n++] = lx->src[lx->pos];
				advance(lx);
			}
		}
	}
	t->str = rule_arena_strndup(lx->cc->arena, buf, n);
	if (t->str == NULL) {
		rule_cc_nomem(lx->cc);
		t->kind = TK_ERROR;
		return TK_ERROR;
	}
	t->slen = n;
	t->kind = TK_STRING;
	t->len = lx->pos - t->off;
	return TK_STRING;
}

/* NUMBER = ['-'] DIGIT {DIGIT} ['.' DIGIT {DIGIT}]  (at most 15 digits) */
static enum rule_tok
lex_number(struct rule_lexer *lx, struct rule_token *t)
{
	uint64_t mant = 0;
	unsigned digits = 0, frac = 0;
	int neg = 0, c;
	double scale = 1.0;

	if (cur(lx) == '-') {
		neg = 1;
		advance(lx);
	}
	t->integral = 1;
	while ((c = cur(lx)) >= '0' && c <= '9') {
		if (++digits > NUMBER_DIGITS_MAX)
			return lex_error(lx, t, "number has more than 15 digits", -1);
		mant = mant * 10 + (uint64_t)(c - '0');
		advance(lx);
	}
	if (cur(lx) == '.' && peek(lx, 1) >= '0' && peek(lx, 1) <= '9') {
		t->integral = 0;
		advance(lx);
		while ((c = cur(lx)) >= '0' && c <= '9') {
			if (++digits > NUMBER_DIGITS_MAX)
				return lex_error(lx, t, "number has more than 15 digits", -1);
			mant = mant * 10 + (uint64_t)(c - '0');
			frac++;
			advance(lx);
		}
	}
	c = cur(lx);
	/* A duration: a whole number and one of s, m, h ("10m"), nothing after it. */
	if ((c == 's' || c == 'm' || c == 'h') && t->integral && !neg) {
		int after = peek(lx, 1);

		if (!((after >= 'a' && after <= 'z') || (after >= 'A' && after <= 'Z') ||
		    (after >= '0' && after <= '9') || after == '_' || after == '.')) {
			advance(lx);
			t->num = (double)mant * (c == 'h' ? 3600.0 : c == 'm' ? 60.0 : 1.0);
			t->kind = TK_DURATION;
			t->len = lx->pos - t->off;
			return TK_DURATION;
		}
	}
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.')
		return lex_error(lx, t, "malformed number; unexpected", c);
	while (frac-- > 0)
		scale *= 10.0;  /* exact: at most 10^15 */
	t->num = (double)mant / scale;
	if (neg)
		t->num = -t->num;
	t->kind = TK_NUMBER;
	t->len = lx->pos - t->off;
	return TK_NUMBER;
}

static int
is_name_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_name_char(int c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '-';
}

/* NAME = LETTER {LETTER | DIGIT | '_' | '-'} {'.' LETTER {...}}; reserved words apart */
static enum rule_tok
lex_name(struct rule_lexer *lx, struct rule_token *t)
{
	size_t n, i;

	for (;;) {
		while (is_name_char(cur(lx)))
			advance(lx);
		if (cur(lx) == '.' && is_name_start(peek(lx, 1)))
			advance(lx);
		else
			break;
	}
	n = lx->pos - t->off;
	t->len = n;
	if (n > RULE_NAME_MAX)
		return lex_error(lx, t, "name longer than 64 characters", -1);
	for (i = 0; i < TK_COUNT - TK_RULE; i++)
		if (strlen(rule_reserved[i]) == n &&
		    memcmp(rule_reserved[i], lx->src + t->off, n) == 0) {
			t->kind = (enum rule_tok)(TK_RULE + i);
			return t->kind;
		}
	t->str = rule_arena_strndup(lx->cc->arena, lx->src + t->off, n);
	if (t->str == NULL) {
		rule_cc_nomem(lx->cc);
		t->kind = TK_ERROR;
		return TK_ERROR;
	}
	t->slen = n;
	t->kind = TK_NAME;
	return TK_NAME;
}

static enum rule_tok
single(struct rule_lexer *lx, struct rule_token *t, enum rule_tok k, size_t len)
{
	while (len-- > 0)
		advance(lx);
	t->kind = k;
	t->len = lx->pos - t->off;
	return k;
}

enum rule_tok
rule_lex_next(struct rule_lexer *lx, struct rule_token *t)
{
	int c;

	memset(t, 0, sizeof(*t));
	for (;;) {
		c = cur(lx);
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			advance(lx);
		} else if (c == '#') {
			while (cur(lx) >= 0 && cur(lx) != '\n')
				advance(lx);
		} else {
			break;
		}
	}
	t->line = lx->line;
	t->col = lx->col;
	t->off = lx->pos;
	switch (c) {
	case -1:
		t->kind = TK_EOF;
		return TK_EOF;
	case '"':
		return lex_string(lx, t);
	case ',':
		return single(lx, t, TK_COMMA, 1);
	case '(':
		return single(lx, t, TK_LPAREN, 1);
	case ')':
		return single(lx, t, TK_RPAREN, 1);
	case '%':
		return single(lx, t, TK_PERCENT, 1);
	case '=':
		return single(lx, t, TK_EQ, peek(lx, 1) == '=' ? 2 : 1);
	case '!':
		if (peek(lx, 1) == '=')
			return single(lx, t, TK_NE, 2);
		advance(lx);
		return lex_error(lx, t, "unexpected character; write 'not' or '!='", c);
	case '<':
		if (peek(lx, 1) == '>')
			return single(lx, t, TK_NE, 2);
		return single(lx, t, peek(lx, 1) == '=' ? TK_LE : TK_LT,
		    peek(lx, 1) == '=' ? 2 : 1);
	case '>':
		return single(lx, t, peek(lx, 1) == '=' ? TK_GE : TK_GT,
		    peek(lx, 1) == '=' ? 2 : 1);
	case '-':
		if (peek(lx, 1) >= '0' && peek(lx, 1) <= '9')
			return lex_number(lx, t);
		break;
	default:
		if (c >= '0' && c <= '9')
			return lex_number(lx, t);
		if (is_name_start(c))
			return lex_name(lx, t);
		break;
	}
	advance(lx);
	while (cur(lx) >= 0 && (cur(lx) & 0xC0) == 0x80)
		advance(lx);  /* the rest of a multibyte character */
	return lex_error(lx, t, "unexpected character", c);
}
