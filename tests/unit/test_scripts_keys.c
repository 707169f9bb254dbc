/*
 * test_scripts_keys.c: every key a Lua script touches comes from KEYS (issue 11
 * item 6, the groundwork for Redis Cluster), checked on the embedded scripts as built
 * (lua_sources[], libraries inlined).
 *
 * The checker is a small static analysis, not a Lua parser: it lexes a script, finds
 * each redis.call / redis.pcall, and takes the key arguments by command (key_table[]:
 * the key is argument 1 for every command the scripts use; DEL and EXISTS take only
 * keys; a command not in the table fails the check). A key argument passes when it is
 * KEYS[...], "" (a "none" key the script skips), or a name (or name[...]) every value
 * of which passes: its assignments (local or not, positional in a list, to an element
 * name[i] = e, table constructors element by element), the arguments of every call of
 * a function whose parameter it is, the table an ipairs/pairs loop walks (for pairs,
 * the index expressions the table was filled with). Anything else fails: a literal
 * ('stats'), a concatenation ('push:' .. deal), ARGV, a value read from Redis. Names
 * are per script and not per scope, so a name used once for a key and once for data
 * fails: conservative, never lenient.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

/* Generated from the scripts in notifier/lua by deploy/embed-lua.sh; ends with NULL. */
extern const struct { const char *name; const char *body; } lua_sources[];

#define LK_TOKENS_MAX 40000
#define LK_NAMES_MAX 2000
#define LK_SRCS_MAX 20000
#define LK_FUNCS_MAX 200
#define LK_ARGS_MAX 64
#define LK_REPORT_MAX 8192

enum lk_tok { LK_NAME, LK_STR, LK_NUM, LK_SYM };

struct lk_token {
	enum lk_tok type;
	const char *p;          /* a string's content, without its quotes */
	size_t n;
	int line;
	int brace;              /* depth of { } around the token */
};

/* How a name gets a value. */
enum lk_src_kind {
	LK_SRC_EXPR,            /* tokens [a, b): the name (or one of its elements) = it */
	LK_SRC_INDEX,           /* tokens [a, b): an index the table was filled at */
	LK_SRC_INDEXES_OF,      /* the indexes of table name a (pairs loop variable) */
	LK_SRC_NIL,             /* nothing, or nil: a key the script skips */
	LK_SRC_UNCLEAN          /* a number, a parameter of a function literal ... */
};

struct lk_src {
	int name;
	enum lk_src_kind kind;
	int a, b;
};

struct lk_func {
	const char *p;
	size_t n;
	int params[16];         /* name ids */
	int nparams;
};

struct lk {
	struct lk_token t[LK_TOKENS_MAX];
	char dead[LK_TOKENS_MAX];       /* inside a local function nothing calls */
	int nt;
	struct { const char *p; size_t n; int clean; } names[LK_NAMES_MAX];
	int nnames;
	struct lk_src src[LK_SRCS_MAX];
	int nsrc;
	struct lk_func f[LK_FUNCS_MAX];
	int nf;
	char report[LK_REPORT_MAX];
	size_t rlen;
	int violations;
	int broken;             /* the checker could not follow the script */
};

/* ORDER: the commands the scripts use and where their keys are. first: the first key
 * argument (1 = right after the command name, 0 = none); all: every argument from
 * first on is a key. */
static const struct { const char *cmd; int first, all; } key_table[] = {
	{ "GET", 1, 0 }, { "SET", 1, 0 }, { "INCR", 1, 0 }, { "INCRBY", 1, 0 },
	{ "DECRBY", 1, 0 }, { "EXPIRE", 1, 0 },
	{ "TTL", 1, 0 }, { "PTTL", 1, 0 }, { "DEL", 1, 1 }, { "EXISTS", 1, 1 },
	{ "DUMP", 1, 0 }, { "RESTORE", 1, 0 },
	{ "HGET", 1, 0 }, { "HSET", 1, 0 }, { "HSETNX", 1, 0 }, { "HDEL", 1, 0 },
	{ "HMGET", 1, 0 }, { "HEXISTS", 1, 0 }, { "HINCRBY", 1, 0 },
	{ "HINCRBYFLOAT", 1, 0 }, { "HGETALL", 1, 0 },
	{ "SADD", 1, 0 }, { "SPOP", 1, 0 }, { "SCARD", 1, 0 }, { "SISMEMBER", 1, 0 },
	{ "SMEMBERS", 1, 0 },
	{ "ZADD", 1, 0 }, { "ZREM", 1, 0 }, { "ZCARD", 1, 0 }, { "ZRANGEBYSCORE", 1, 0 },
	{ "ZREMRANGEBYSCORE", 1, 0 }, { "ZSCORE", 1, 0 }, { "ZCOUNT", 1, 0 },
	{ "LPUSH", 1, 0 }, { "RPUSH", 1, 0 }, { "LTRIM", 1, 0 }, { "LRANGE", 1, 0 },
	{ "LLEN", 1, 0 },
	{ "XADD", 1, 0 }, { "XACK", 1, 0 }, { "XRANGE", 1, 0 }, { "XREVRANGE", 1, 0 },
	{ "XPENDING", 1, 0 }, { "XDEL", 1, 0 },
	{ "XCLAIM", 1, 0 }, { "XTRIM", 1, 0 }, { "XINFO", 2, 0 },
	{ "TIME", 0, 0 },
};

static void
lk_report(struct lk *k, int line, const char *fmt, ...)
{
	va_list ap;
	int w;

	k->violations++;
	if (k->rlen + 1 >= sizeof(k->report))
		return;
	w = snprintf(k->report + k->rlen, sizeof(k->report) - k->rlen, "  line %d: ", line);
	if (w > 0 && (size_t)w < sizeof(k->report) - k->rlen)
		k->rlen += (size_t)w;
	va_start(ap, fmt);
	w = vsnprintf(k->report + k->rlen, sizeof(k->report) - k->rlen, fmt, ap);
	va_end(ap);
	if (w > 0 && (size_t)w < sizeof(k->report) - k->rlen)
		k->rlen += (size_t)w;
	if (k->rlen + 1 < sizeof(k->report))
		k->report[k->rlen++] = '\n';
	k->report[k->rlen] = '\0';
}

/* ---- lexer ---------------------------------------------------------------------- */

/* The level of a long bracket at s ("[[" = 0, "[==[" = 2), or -1. */
static int
lk_long_level(const char *s)
{
	int lv = 0;

	if (*s != '[')
		return -1;
	for (s++; *s == '='; s++)
		lv++;
	return *s == '[' ? lv : -1;
}

/* Skips a long bracket of level lv opened at s; returns what follows it. */
static const char *
lk_long_skip(const char *s, int lv, int *line)
{
	s += lv + 2;
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			(*line)++;
		if (*s == ']') {
			const char *e = s + 1;
			int n = 0;

			while (*e == '=') {
				e++;
				n++;
			}
			if (n == lv && *e == ']')
				return e + 1;
		}
	}
	return s;
}

static void
lk_push(struct lk *k, enum lk_tok type, const char *p, size_t n, int line, int brace)
{
	if (k->nt == LK_TOKENS_MAX) {
		k->broken = 1;
		return;
	}
	k->t[k->nt].type = type;
	k->t[k->nt].p = p;
	k->t[k->nt].n = n;
	k->t[k->nt].line = line;
	k->t[k->nt].brace = brace;
	k->nt++;
}

static void
lk_lex(struct lk *k, const char *s)
{
	static const char *const syms[] = { "...", "..", "==", "~=", "<=", ">=", "::" };
	int line = 1, brace = 0, lv;
	size_t i;

	while (*s != '\0') {
		if (*s == '\n') {
			line++;
			s++;
		} else if (*s == ' ' || *s == '\t' || *s == '\r') {
			s++;
		} else if (s[0] == '-' && s[1] == '-') {
			if ((lv = lk_long_level(s + 2)) >= 0) {
				s = lk_long_skip(s + 2, lv, &line);
			} else {
				while (*s != '\0' && *s != '\n')
					s++;
			}
		} else if ((lv = lk_long_level(s)) >= 0) {
			const char *b = s + lv + 2, *e = lk_long_skip(s, lv, &line);

			lk_push(k, LK_STR, b, (size_t)(e - b) - (size_t)lv - 2, line, brace);
			s = e;
		} else if (*s == '\'' || *s == '"') {
			char q = *s++;
			const char *b = s;

			while (*s != '\0' && *s != q) {
				if (*s == '\\' && s[1] != '\0')
					s++;
				if (*s == '\n')
					line++;
				s++;
			}
			lk_push(k, LK_STR, b, (size_t)(s - b), line, brace);
			if (*s == q)
				s++;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') {
			const char *b = s;

			while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			    (*s >= '0' && *s <= '9') || *s == '_')
				s++;
			lk_push(k, LK_NAME, b, (size_t)(s - b), line, brace);
		} else if (*s >= '0' && *s <= '9') {
			const char *b = s;

			while ((*s >= '0' && *s <= '9') || *s == '.' || *s == 'x' ||
			    (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F'))
				s++;
			lk_push(k, LK_NUM, b, (size_t)(s - b), line, brace);
		} else {
			size_t n = 1;

			for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
				if (strncmp(s, syms[i], strlen(syms[i])) == 0) {
					n = strlen(syms[i]);
					break;
				}
			if (*s == '}')
				brace--;
			lk_push(k, LK_SYM, s, n, line, brace);
			if (*s == '{')
				brace++;
			s += n;
		}
	}
}

/* ---- token helpers -------------------------------------------------------------- */

static int
lk_is(const struct lk *k, int i, const char *s)
{
	return i >= 0 && i < k->nt && k->t[i].type != LK_STR && k->t[i].n == strlen(s) &&
	    strncmp(k->t[i].p, s, k->t[i].n) == 0;
}

static int
lk_is_name(const struct lk *k, int i)
{
	static const char *const kw[] = { "and", "break", "do", "else", "elseif", "end",
	    "false", "for", "function", "if", "in", "local", "nil", "not", "or",
	    "repeat", "return", "then", "true", "until", "while" };
	size_t j;

	if (i < 0 || i >= k->nt || k->t[i].type != LK_NAME)
		return 0;
	for (j = 0; j < sizeof(kw) / sizeof(kw[0]); j++)
		if (lk_is(k, i, kw[j]))
			return 0;
	return 1;
}

/* The index after the bracket that matches the one at i ( ( [ { ). */
static int
lk_match(const struct lk *k, int i)
{
	int depth = 0;

	for (; i < k->nt; i++) {
		if (lk_is(k, i, "(") || lk_is(k, i, "[") || lk_is(k, i, "{"))
			depth++;
		else if (lk_is(k, i, ")") || lk_is(k, i, "]") || lk_is(k, i, "}"))
			if (--depth == 0)
				return i + 1;
	}
	return k->nt;
}

/* The index after the "end" of the function literal or block opened at i. */
static int
lk_block_end(const struct lk *k, int i)
{
	int depth = 0;

	for (; i < k->nt; i++) {
		if (lk_is(k, i, "function") || lk_is(k, i, "if") || lk_is(k, i, "do") ||
		    lk_is(k, i, "repeat"))
			depth++;
		else if (lk_is(k, i, "end") || lk_is(k, i, "until"))
			if (--depth == 0)
				return i + 1;
	}
	return k->nt;
}

static int
lk_binop(const struct lk *k, int i)
{
	static const char *const ops[] = { "or", "and", "..", "+", "-", "*", "/", "%",
	    "^", "==", "~=", "<", ">", "<=", ">=" };
	size_t j;

	for (j = 0; j < sizeof(ops) / sizeof(ops[0]); j++)
		if (lk_is(k, i, ops[j]))
			return 1;
	return 0;
}

/* The index after the expression that starts at i. */
static int
lk_expr_end(const struct lk *k, int i)
{
	for (;;) {
		while (lk_is(k, i, "not") || lk_is(k, i, "-") || lk_is(k, i, "#"))
			i++;
		if (i >= k->nt)
			return i;
		if (lk_is(k, i, "function"))
			i = lk_block_end(k, i);
		else if (lk_is(k, i, "(") || lk_is(k, i, "{"))
			i = lk_match(k, i);
		else
			i++;
		for (;;) {
			if (lk_is(k, i, "[") || lk_is(k, i, "(") || lk_is(k, i, "{"))
				i = lk_match(k, i);
			else if ((lk_is(k, i, ".") || lk_is(k, i, ":")) && i + 1 < k->nt)
				i += 2;
			else if (i < k->nt && k->t[i].type == LK_STR)
				i++;
			else
				break;
		}
		if (!lk_binop(k, i))
			return i;
		i++;
	}
}

/* Splits the list [a, b) at its top-level commas (and semicolons); returns the count. */
static int
lk_split(const struct lk *k, int a, int b, int *starts, int *ends, int max)
{
	int n = 0, i = a, s = a;

	if (a >= b)
		return 0;
	while (i < b) {
		if (lk_is(k, i, "(") || lk_is(k, i, "[") || lk_is(k, i, "{")) {
			i = lk_match(k, i);
		} else if (lk_is(k, i, "function")) {
			i = lk_block_end(k, i);
		} else if (lk_is(k, i, ",") || lk_is(k, i, ";")) {
			if (n < max) {
				starts[n] = s;
				ends[n++] = i;
			}
			s = ++i;
		} else {
			i++;
		}
	}
	if (s < b && n < max) {
		starts[n] = s;
		ends[n++] = b;
	}
	return n;
}

/* ---- names and their values ------------------------------------------------------ */

static int
lk_name(struct lk *k, int i)
{
	int j;

	for (j = 0; j < k->nnames; j++)
		if (k->names[j].n == k->t[i].n && strncmp(k->names[j].p, k->t[i].p,
		    k->t[i].n) == 0)
			return j;
	if (k->nnames == LK_NAMES_MAX) {
		k->broken = 1;
		return 0;
	}
	k->names[k->nnames].p = k->t[i].p;
	k->names[k->nnames].n = k->t[i].n;
	k->names[k->nnames].clean = 1;
	return k->nnames++;
}

/* The name of token i if it has been given a value, or -1. */
static int
lk_find(const struct lk *k, int i)
{
	int j;

	for (j = 0; j < k->nnames; j++)
		if (k->names[j].n == k->t[i].n && strncmp(k->names[j].p, k->t[i].p,
		    k->t[i].n) == 0)
			return j;
	return -1;
}

/* Whether the name of token i is known and clean. */
static int
lk_name_clean(const struct lk *k, int i)
{
	int j = lk_find(k, i);

	return j >= 0 && k->names[j].clean;
}

static void
lk_src(struct lk *k, int name, enum lk_src_kind kind, int a, int b)
{
	if (k->nsrc == LK_SRCS_MAX) {
		k->broken = 1;
		return;
	}
	k->src[k->nsrc].name = name;
	k->src[k->nsrc].kind = kind;
	k->src[k->nsrc].a = a;
	k->src[k->nsrc].b = b;
	k->nsrc++;
}

static int lk_clean(struct lk *k, int a, int b);

/* Whether the table constructor [a, b) holds only clean values. */
static int
lk_clean_table(struct lk *k, int a, int b)
{
	int s[LK_ARGS_MAX], e[LK_ARGS_MAX], n, j, v;

	n = lk_split(k, a + 1, b - 1, s, e, LK_ARGS_MAX);
	for (j = 0; j < n; j++) {
		v = s[j];
		if (lk_is(k, v, "["))
			v = lk_match(k, v) + 1;         /* [k] = v */
		else if (lk_is_name(k, v) && lk_is(k, v + 1, "="))
			v += 2;                         /* name = v */
		if (!lk_clean(k, v, e[j]))
			return 0;
	}
	return 1;
}

/* Whether the expression [a, b) can only be a key from KEYS (or ""). */
static int
lk_clean(struct lk *k, int a, int b)
{
	int i;

	if (a >= b)
		return 0;
	if (lk_is(k, a, "(") && lk_match(k, a) == b)
		return lk_clean(k, a + 1, b - 1);
	for (i = a; i < b; ) {           /* e1 or e2: both */
		if (lk_is(k, i, "or")) {
			return lk_clean(k, a, i) && lk_clean(k, i + 1, b);
		} else if (lk_is(k, i, "(") || lk_is(k, i, "[") || lk_is(k, i, "{")) {
			i = lk_match(k, i);
		} else if (lk_is(k, i, "function")) {
			i = lk_block_end(k, i);
		} else {
			i++;
		}
	}
	if (b - a == 1) {
		if (k->t[a].type == LK_STR)
			return k->t[a].n == 0;
		if (lk_is(k, a, "nil"))
			return 1;
		if (!lk_is_name(k, a) || lk_is(k, a, "ARGV") || lk_is(k, a, "KEYS"))
			return 0;
		return lk_name_clean(k, a);
	}
	if (lk_is(k, a, "{") && lk_match(k, a) == b)
		return lk_clean_table(k, a, b);
	if (lk_is_name(k, a) && lk_is(k, a + 1, "[") && lk_match(k, a + 1) == b) {
		if (lk_is(k, a, "KEYS"))
			return 1;
		if (lk_is(k, a, "ARGV"))
			return 0;
		return lk_name_clean(k, a);
	}
	if (lk_is_name(k, a) && lk_is(k, a + 1, ".") && b - a == 3 &&
	    !lk_is(k, a, "ARGV") && !lk_is(k, a, "KEYS"))
		return lk_name_clean(k, a);
	return 0;
}

/* Whether every index table name t was filled at is clean. */
static int
lk_clean_indexes(struct lk *k, int t)
{
	int j, s[LK_ARGS_MAX], e[LK_ARGS_MAX], n, f;

	for (j = 0; j < k->nsrc; j++) {
		if (k->src[j].name != t)
			continue;
		if (k->src[j].kind == LK_SRC_INDEX && !lk_clean(k, k->src[j].a, k->src[j].b))
			return 0;
		if (k->src[j].kind == LK_SRC_EXPR && lk_is(k, k->src[j].a, "{")) {
			n = lk_split(k, k->src[j].a + 1, k->src[j].b - 1, s, e, LK_ARGS_MAX);
			for (f = 0; f < n; f++) {
				if (!lk_is(k, s[f], "["))
					return 0;
				if (!lk_clean(k, s[f] + 1, lk_match(k, s[f]) - 1))
					return 0;
			}
		}
	}
	return 1;
}

static int
lk_src_clean(struct lk *k, const struct lk_src *s)
{
	switch (s->kind) {
	case LK_SRC_EXPR:
		return lk_clean(k, s->a, s->b);
	case LK_SRC_INDEX:
		return 1;       /* checked through LK_SRC_INDEXES_OF */
	case LK_SRC_INDEXES_OF:
		return lk_clean_indexes(k, s->a);
	case LK_SRC_NIL:
		return 1;
	case LK_SRC_UNCLEAN:
		break;
	}
	return 0;
}

/* The function named by token i, or -1. */
static int
lk_func(const struct lk *k, int i)
{
	int j;

	for (j = 0; j < k->nf; j++)
		if (k->f[j].n == k->t[i].n && strncmp(k->f[j].p, k->t[i].p, k->t[i].n) == 0)
			return j;
	return -1;
}

/* Whether token i calls a function: name( and not its definition. */
static int
lk_is_call(const struct lk *k, int i)
{
	return lk_is_name(k, i) && lk_is(k, i + 1, "(") && !lk_is(k, i - 1, "function") &&
	    !lk_is(k, i - 1, ".") && !lk_is(k, i - 1, ":");
}

/*
 * Marks dead the body of every named function that nothing live calls (a library
 * inlined whole brings functions a script does not use): its redis.calls never run.
 */
static void
lk_mark_dead(struct lk *k)
{
	int changed = 1, i, j, end, calls;

	while (changed) {
		changed = 0;
		for (i = 0; i < k->nt; i++) {
			if (k->dead[i] || !lk_is(k, i, "function") || !lk_is_name(k, i + 1) ||
			    !lk_is(k, i + 2, "("))
				continue;
			end = lk_block_end(k, i);
			calls = 0;
			for (j = 0; j < k->nt; j++)
				if ((j < i || j >= end) && !k->dead[j] && lk_is_call(k, j) &&
				    k->t[j].n == k->t[i + 1].n &&
				    strncmp(k->t[j].p, k->t[i + 1].p, k->t[j].n) == 0)
					calls++;
			if (calls == 0) {
				for (j = lk_is(k, i - 1, "local") ? i - 1 : i; j < end; j++)
					k->dead[j] = 1;
				changed = 1;
			}
		}
	}
}

/* Records the values of every name: assignments, parameters, loop variables. */
static void
lk_collect(struct lk *k)
{
	int i, j, v, n, s[LK_ARGS_MAX], e[LK_ARGS_MAX];

	/* Functions and their parameters. */
	for (i = 0; i < k->nt; i++) {
		int named, p;

		if (k->dead[i] || !lk_is(k, i, "function"))
			continue;
		named = lk_is_name(k, i + 1) && lk_is(k, i + 2, "(");
		p = named ? i + 2 : i + 1;
		if (!lk_is(k, p, "("))
			continue;
		if (named && k->nf < LK_FUNCS_MAX) {
			k->f[k->nf].p = k->t[i + 1].p;
			k->f[k->nf].n = k->t[i + 1].n;
			k->f[k->nf].nparams = 0;
		}
		for (j = p + 1; j < k->nt && !lk_is(k, j, ")"); j++) {
			if (!lk_is_name(k, j))
				continue;
			v = lk_name(k, j);
			if (!named)
				lk_src(k, v, LK_SRC_UNCLEAN, 0, 0);
			else if (k->nf < LK_FUNCS_MAX && k->f[k->nf].nparams < 16)
				k->f[k->nf].params[k->f[k->nf].nparams++] = v;
			else
				k->broken = 1;
		}
		if (named && k->nf < LK_FUNCS_MAX)
			k->nf++;
	}
	/* Calls of those functions: each argument is a value of its parameter. */
	for (i = 0; i < k->nt; i++) {
		int f;

		if (k->dead[i] || !lk_is_call(k, i) || (f = lk_func(k, i)) < 0)
			continue;
		n = lk_split(k, i + 2, lk_match(k, i + 1) - 1, s, e, LK_ARGS_MAX);
		for (j = 0; j < k->f[f].nparams; j++) {
			if (j < n)
				lk_src(k, k->f[f].params[j], LK_SRC_EXPR, s[j], e[j]);
			else
				lk_src(k, k->f[f].params[j], LK_SRC_NIL, 0, 0);
		}
	}
	/* Loops. */
	for (i = 0; i < k->nt; i++) {
		int vars[8], nv = 0, in, it;

		if (k->dead[i] || !lk_is(k, i, "for"))
			continue;
		if (lk_is_name(k, i + 1) && lk_is(k, i + 2, "=")) {
			lk_src(k, lk_name(k, i + 1), LK_SRC_UNCLEAN, 0, 0);
			continue;
		}
		for (in = i + 1; in < k->nt && !lk_is(k, in, "in"); in++)
			if (lk_is_name(k, in) && nv < 8)
				vars[nv++] = lk_name(k, in);
		it = in + 1;
		if (nv == 2 && (lk_is(k, it, "ipairs") || lk_is(k, it, "pairs")) &&
		    lk_is(k, it + 1, "(") && lk_is_name(k, it + 2) &&
		    lk_match(k, it + 1) == it + 4) {
			lk_src(k, vars[1], LK_SRC_EXPR, it + 2, it + 3);
			if (lk_is(k, it, "pairs"))
				lk_src(k, vars[0], LK_SRC_INDEXES_OF, lk_name(k, it + 2), 0);
			else
				lk_src(k, vars[0], LK_SRC_UNCLEAN, 0, 0);
		} else {
			for (j = 0; j < nv; j++)
				lk_src(k, vars[j], LK_SRC_UNCLEAN, 0, 0);
		}
	}
	/* Assignments outside table constructors. */
	for (i = 0; i < k->nt; i++) {
		int root[16], sub[16], ia[16], ib[16], nv = 0, p, end;

		if (k->dead[i] || !lk_is(k, i, "=") || k->t[i].brace > 0 || lk_is(k, i - 2, "for"))
			continue;
		p = i - 1;
		for (;;) {              /* the variables, right to left */
			int idx_a = -1, idx_b = -1, suffixed = 0;

			while (p >= 0 && (lk_is(k, p, "]") || lk_is_name(k, p)) &&
			    (lk_is(k, p, "]") || lk_is(k, p - 1, "."))) {
				if (lk_is(k, p, "]")) {
					int d = 0, q;

					for (q = p; q >= 0; q--) {
						if (lk_is(k, q, "]"))
							d++;
						else if (lk_is(k, q, "[") && --d == 0)
							break;
					}
					idx_a = q + 1;
					idx_b = p;
					p = q - 1;
				} else {
					idx_a = idx_b = -1;
					p -= 2;
				}
				suffixed = 1;
			}
			if (!lk_is_name(k, p) || nv == 16) {
				k->broken = 1;
				break;
			}
			root[nv] = lk_name(k, p);
			sub[nv] = suffixed;
			ia[nv] = idx_a;
			ib[nv] = idx_b;
			nv++;
			if (!lk_is(k, p - 1, ","))
				break;
			p -= 2;
		}
		/* The values, left to right; the variables were collected right to left. */
		for (end = i + 1, n = 0; n < LK_ARGS_MAX; ) {
			s[n] = end;
			end = lk_expr_end(k, end);
			e[n++] = end;
			if (!lk_is(k, end, ","))
				break;
			end++;
		}
		for (j = 0; j < nv; j++) {
			int pos = nv - 1 - j;

			if (pos < n)
				lk_src(k, root[j], LK_SRC_EXPR, s[pos], e[pos]);
			else if (lk_is(k, e[n - 1] - 1, ")"))
				lk_src(k, root[j], LK_SRC_EXPR, s[n - 1], e[n - 1]);
			else
				lk_src(k, root[j], LK_SRC_NIL, 0, 0);
			if (sub[j] && ia[j] >= 0)
				lk_src(k, root[j], LK_SRC_INDEX, ia[j], ib[j]);
		}
	}
}

/* Marks unclean, until nothing changes, every name with a value that is not clean. */
static void
lk_settle(struct lk *k)
{
	int changed = 1, j;

	for (j = 0; j < k->nnames; j++) {
		int has = 0, s;

		for (s = 0; s < k->nsrc; s++)
			if (k->src[s].name == j && k->src[s].kind != LK_SRC_INDEX)
				has = 1;
		k->names[j].clean = has;
	}
	while (changed) {
		changed = 0;
		for (j = 0; j < k->nsrc; j++) {
			struct lk_src *s = &k->src[j];

			if (k->names[s->name].clean && !lk_src_clean(k, s)) {
				k->names[s->name].clean = 0;
				changed = 1;
			}
		}
	}
}

/* ---- the calls ------------------------------------------------------------------- */

static int
lk_key_spec(const char *cmd, size_t n, int *first, int *all)
{
	size_t j;

	for (j = 0; j < sizeof(key_table) / sizeof(key_table[0]); j++)
		if (strlen(key_table[j].cmd) == n && strncasecmp(key_table[j].cmd, cmd, n) == 0) {
			*first = key_table[j].first;
			*all = key_table[j].all;
			return 0;
		}
	return -1;
}

static void
lk_text(const struct lk *k, int a, int b, char *buf, size_t size)
{
	const char *s = k->t[a].type == LK_STR ? k->t[a].p - 1 : k->t[a].p;
	const char *e = k->t[b - 1].p + k->t[b - 1].n + (k->t[b - 1].type == LK_STR);
	size_t n = (size_t)(e - s);

	if (n >= size)
		n = size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	for (; *buf != '\0'; buf++)
		if (*buf == '\n' || *buf == '\t')
			*buf = ' ';
}

/* Checks the command args[0..n): a literal command name and its key arguments. */
static void
lk_check_cmd(struct lk *k, int line, const int *s, const int *e, int n)
{
	char cmd[32], text[120];
	int first, all, j;

	if (n < 1 || e[0] - s[0] != 1 || k->t[s[0]].type != LK_STR ||
	    k->t[s[0]].n >= sizeof(cmd)) {
		lk_report(k, line, "the command is not a literal");
		return;
	}
	memcpy(cmd, k->t[s[0]].p, k->t[s[0]].n);
	cmd[k->t[s[0]].n] = '\0';
	if (lk_key_spec(cmd, strlen(cmd), &first, &all) < 0) {
		lk_report(k, line, "%s is not in the checker's table of key positions", cmd);
		return;
	}
	if (first == 0)
		return;
	for (j = first; j < n && (j == first || all); j++) {
		if (lk_clean(k, s[j], e[j]))
			continue;
		lk_text(k, s[j], e[j], text, sizeof(text));
		lk_report(k, line, "%s key %s does not come from KEYS", cmd, text);
	}
	if (first >= n)
		lk_report(k, line, "%s without its key", cmd);
}

/* Checks every redis.call and redis.pcall. */
static void
lk_check_calls(struct lk *k)
{
	int i, j, n, s[LK_ARGS_MAX], e[LK_ARGS_MAX];

	for (i = 0; i + 3 < k->nt; i++) {
		if (k->dead[i] || !lk_is(k, i, "redis") || !lk_is(k, i + 1, ".") ||
		    !(lk_is(k, i + 2, "call") || lk_is(k, i + 2, "pcall")) ||
		    !lk_is(k, i + 3, "("))
			continue;
		n = lk_split(k, i + 4, lk_match(k, i + 3) - 1, s, e, LK_ARGS_MAX);
		if (n == 1 && lk_is(k, s[0], "unpack") && lk_is(k, s[0] + 1, "(") &&
		    lk_is_name(k, s[0] + 2) && e[0] == s[0] + 4) {
			/* redis.call(unpack(a)): every table a is built from. */
			int name = lk_name(k, s[0] + 2), seen = 0;

			for (j = 0; j < k->nsrc; j++) {
				int ts[LK_ARGS_MAX], te[LK_ARGS_MAX], tn;

				if (k->src[j].name != name || k->src[j].kind != LK_SRC_EXPR)
					continue;
				if (!lk_is(k, k->src[j].a, "{") ||
				    lk_match(k, k->src[j].a) != k->src[j].b)
					continue;       /* a[#a + 1] = ...: after the key */
				tn = lk_split(k, k->src[j].a + 1, k->src[j].b - 1, ts, te,
				    LK_ARGS_MAX);
				lk_check_cmd(k, k->t[i].line, ts, te, tn);
				seen = 1;
			}
			if (!seen)
				lk_report(k, k->t[i].line, "unpack of a table never built");
			continue;
		}
		lk_check_cmd(k, k->t[i].line, s, e, n);
	}
}

/* Checks one script's text; returns the number of violations (report in k). */
static int
lk_check(struct lk *k, const char *src)
{
	memset(k, 0, sizeof(*k));
	lk_lex(k, src);
	lk_mark_dead(k);
	lk_collect(k);
	lk_settle(k);
	lk_check_calls(k);
	if (k->broken)
		lk_report(k, 0, "the checker could not follow this script");
	return k->violations;
}

/* ---- tests ----------------------------------------------------------------------- */

static struct lk lk_state;

static int
violations(const char *src)
{
	return lk_check(&lk_state, src);
}

static void
keys_and_locals_from_keys_pass(void **state)
{
	(void)state;
	assert_int_equal(violations("redis.call('HGET', KEYS[1], 'f')"), 0);
	assert_int_equal(violations("local a, b = KEYS[1], KEYS[2]\n"
	    "redis.call('HSET', b, 'f', 1)\nredis.call('XADD', a, '*', 'x', 1)"), 0);
	assert_int_equal(violations("local r = { KEYS[3], KEYS[4] }\n"
	    "for _, k in ipairs(r) do redis.call('HINCRBY', k, 'n', 1) end"), 0);
	assert_int_equal(violations("local c = { sms = KEYS[3], dm = KEYS[4] }\n"
	    "redis.call('HEXISTS', c[ARGV[1]], 'x')"), 0);
	assert_int_equal(violations("local function f(key, n)\n"
	    "  redis.call('INCRBYFLOAT', key, n)\nend\nf(KEYS[1], 2)"), 1);  /* not in table */
	assert_int_equal(violations("local function f(key, n)\n"
	    "  redis.call('INCR', key)\nend\nf(KEYS[1], 2)\nf(KEYS[2])"), 0);
	assert_int_equal(violations("local t = {}\nt[KEYS[1]] = 1\n"
	    "for k, n in pairs(t) do redis.call('HINCRBY', k, 'x', n) end"), 0);
	assert_int_equal(violations("local a = { 'XADD', KEYS[1], '*', 'f', ARGV[1] }\n"
	    "a[#a + 1] = 'g'\nredis.call(unpack(a))"), 0);
	assert_int_equal(violations("local function never(id)\n"
	    "  redis.call('INCR', 'x:' .. id)\nend\nredis.call('INCR', KEYS[1])"), 0);
	assert_int_equal(violations("local function once(id)\n"
	    "  redis.call('INCR', 'x:' .. id)\nend\nonce(ARGV[1])"), 1);
	assert_int_equal(violations("local p = KEYS[2]\nif p == '' then p = '' end\n"
	    "redis.call('SADD', p, 'x')\nredis.call('TIME')"), 0);
	/* lib/outcome.lua's shapes: counts gathered per key by a helper and written
	 * later; the caps' keys in a table of their own, read by field. */
	assert_int_equal(violations("local order = {}\nlocal function add(key)\n"
	    "  order[#order + 1] = key\nend\nadd(KEYS[1])\nadd(KEYS[2])\n"
	    "for _, k in ipairs(order) do redis.call('HINCRBY', k, 'n', 1) end"), 0);
	assert_int_equal(violations("local ck = { day = KEYS[1], law = KEYS[2] }\n"
	    "local function take(key) redis.call('ZADD', key, 1, 'p') end\n"
	    "take(ck.day)\ntake(ck.law)"), 0);
}

static void
keys_built_or_read_in_the_script_fail(void **state)
{
	(void)state;
	assert_int_equal(violations("redis.call('HINCRBY', 'stats', 'x', 1)"), 1);
	assert_int_equal(violations("local d = ARGV[1]\n"
	    "redis.call('HGET', 'push:' .. d, 'f')"), 1);
	assert_int_equal(violations("redis.call('GET', ARGV[1])"), 1);
	assert_int_equal(violations("local d = redis.call('GET', KEYS[1])\n"
	    "redis.call('HGET', d, 'f')"), 1);
	assert_int_equal(violations("local k = KEYS[1]\nk = 'consent:epoch'\n"
	    "redis.call('INCR', k)"), 1);
	assert_int_equal(violations("local function f(key)\n"
	    "  redis.call('INCR', key)\nend\nf(KEYS[1])\nf('x:' .. ARGV[1])"), 1);
	assert_int_equal(violations("local r = { 'report:deal:' .. ARGV[1] }\n"
	    "for _, k in ipairs(r) do redis.call('HINCRBY', k, 'n', 1) end"), 1);
	assert_int_equal(violations("local r = { KEYS[1] }\nr[#r + 1] = 'x:' .. ARGV[2]\n"
	    "for _, k in ipairs(r) do redis.call('HINCRBY', k, 'n', 1) end"), 1);
	assert_int_equal(violations("local t = {}\nt['x:' .. ARGV[1]] = 1\n"
	    "for k, n in pairs(t) do redis.call('HINCRBY', k, 'x', n) end"), 1);
	assert_int_equal(violations("local a = { 'XADD', 'pushes', '*', 'f', 1 }\n"
	    "redis.call(unpack(a))"), 1);
	assert_int_equal(violations("redis.call('DEL', KEYS[1], 'planset:' .. ARGV[1])"), 1);
	assert_int_equal(violations("redis.call('EVAL', 's', 0)"), 1);
	assert_int_equal(violations("local c = 'XADD'\nredis.call(c, KEYS[1], '*')"), 1);
	/* The same shapes with one key built from data. */
	assert_int_equal(violations("local order = {}\nlocal function add(key)\n"
	    "  order[#order + 1] = key\nend\nadd(KEYS[1])\nadd('report:' .. ARGV[1])\n"
	    "for _, k in ipairs(order) do redis.call('HINCRBY', k, 'n', 1) end"), 1);
	assert_int_equal(violations("local ck = { day = KEYS[1], law = 'texts:' .. ARGV[1] }\n"
	    "local function take(key) redis.call('ZADD', key, 1, 'p') end\n"
	    "take(ck.day)\ntake(ck.law)"), 1);
	/* A table mixing keys and data is not taken for a table of keys. */
	assert_int_equal(violations("local c = { day = KEYS[1], cap = ARGV[1] }\n"
	    "redis.call('ZCOUNT', c.day, 0, 1)"), 1);
}

static void
every_script_takes_its_keys_from_KEYS(void **state)
{
	size_t i;
	int bad = 0, n;

	(void)state;
	/* No exceptions: the delivery scripts too (lib/outcome.lua's counts, the caps'
	 * keys apart from their numbers, send.lua's cached deal hash). */
	for (i = 0; lua_sources[i].name != NULL; i++) {
		n = lk_check(&lk_state, lua_sources[i].body);
		if (n > 0) {
			print_message("%s.lua: %d key(s) not from KEYS:\n%s", lua_sources[i].name,
			    n, lk_state.report);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void
the_checker_sees_every_call(void **state)
{
	size_t i;
	int calls = 0;
	const char *p;

	(void)state;
	/* A script whose calls the lexer lost would pass for the wrong reason. */
	for (i = 0; lua_sources[i].name != NULL; i++)
		for (p = lua_sources[i].body; (p = strstr(p, "redis.call(")) != NULL; p++)
			calls++;
	assert_true(calls > 100);
	assert_int_equal(violations("-- redis.call('GET', 'x')\n--[[ redis.call('GET', 'y')"
	    " ]]\nlocal s = [[redis.call('GET', 'z')]]"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_and_locals_from_keys_pass),
		cmocka_unit_test(keys_built_or_read_in_the_script_fail),
		cmocka_unit_test(every_script_takes_its_keys_from_KEYS),
		cmocka_unit_test(the_checker_sees_every_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
