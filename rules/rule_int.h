/*
 * rule_int.h: the internals shared by the files of rules/ (stage: match): the arena,
 * tokens, the syntax tree that the checker annotates into the compiled form, the rule
 * and rule set, the evaluator's entry points used by the index, and small string helpers.
 * Not a public header: nothing outside rules/ may include it. Like all of rules/, no
 * I/O, no globals, no abort.
 */
#ifndef DEALPUSH_RULE_INT_H
#define DEALPUSH_RULE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/* ---- arena: everything of a compiled rule set lives in one, freed at once ---- */

struct rule_arena_blk;

struct rule_arena {
	struct rule_arena_blk *head;
	size_t bytes;  /* total allocated, for tests */
};

/* Zeroed memory aligned for any type, or NULL on OOM (the arena is unchanged). */
void *rule_arena_alloc(struct rule_arena *a, size_t size);
/* A NUL-terminated copy of n bytes of s, or NULL on OOM. */
char *rule_arena_strndup(struct rule_arena *a, const char *s, size_t n);
/* Frees every block; the arena is empty and reusable afterwards. */
void rule_arena_free(struct rule_arena *a);

/* ---- compile context: the error list of one rule_compile() call ---- */

struct rule_cc {
	struct rule_arena *arena;     /* the set's arena */
	struct rule_diags *diags;     /* may be NULL */
	struct err *err;              /* first error, may be NULL */
	size_t nerr;
	int nomem;
	const char *file;             /* current file name */
	const char *src;              /* current file text */
	size_t srclen;
};

/* Records an error at byte offset off (line, col) of the current file. Returns -1. */
int rule_cc_error(struct rule_cc *cc, size_t off, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Records running out of memory. Returns -1. */
int rule_cc_nomem(struct rule_cc *cc);

/* ---- lexer ---- */

enum rule_tok {
	TK_EOF = 0, TK_ERROR, TK_NAME, TK_NUMBER, TK_STRING, TK_DURATION,
	TK_COMMA, TK_LPAREN, TK_RPAREN, TK_PERCENT,
	TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE,
	/* reserved words; ORDER RESERVED: keep rule_reserved[] in rule_lex.c in order */
	TK_RULE, TK_END, TK_WHEN, TK_AUDIENCE, TK_SEND, TK_PRIORITY, TK_TEMPLATE,
	TK_HOLDOUT, TK_SEGMENTS, TK_EXCLUSIVE, TK_AND, TK_OR, TK_NOT, TK_IN, TK_STARTS_WITH,
	TK_CONTAINS, TK_TRUE, TK_FALSE,
	TK_COUNT
};

struct rule_token {
	enum rule_tok kind;
	int line;
	int col;
	size_t off;      /* byte offset of the first character */
	size_t len;      /* bytes of source text */
	double num;      /* TK_NUMBER; TK_DURATION: seconds */
	int integral;    /* TK_NUMBER written without a fraction */
	char *str;       /* TK_NAME, TK_STRING: decoded, NUL-terminated, in the arena */
	size_t slen;
};

struct rule_lexer {
	struct rule_cc *cc;
	const char *src;
	size_t len;
	size_t pos;
	int line;
	int col;
	int quiet;       /* set while the parser skips after an error */
};

void rule_lex_init(struct rule_lexer *lx, struct rule_cc *cc);
/* Reads the next token into *t. On a lexical error records it and returns TK_ERROR. */
enum rule_tok rule_lex_next(struct rule_lexer *lx, struct rule_token *t);
/* "'and'", "a string", "end of file": for messages. */
const char *rule_tok_name(enum rule_tok k);

/* ---- syntax tree / compiled expressions ---- */

enum rule_nk {
	NK_AND, NK_OR, NK_NOT,
	NK_CMP,        /* a op b */
	NK_INLIST,     /* a in (items) */
	NK_INFIELD,    /* a in b (b a list field) */
	NK_STARTS,     /* a starts_with b */
	NK_CONTAINS,   /* a contains b */
	NK_NUM, NK_STR, NK_BOOL,
	NK_FIELD       /* a deal or subscriber field, or hours_until_expiry */
};

enum rule_type { RT_NONE = 0, RT_BOOL, RT_NUM, RT_STR, RT_LIST };

enum rule_cmp { RC_EQ, RC_NE, RC_LT, RC_LE, RC_GT, RC_GE };

/* Fields; ORDER FIELD: keep rule_fields[] in rule_check.c in this order. */
enum rule_fid {
	F_NONE = 0,
	F_D_ID, F_D_TITLE, F_D_CATEGORY, F_D_BRAND, F_D_TAGS, F_D_REGION, F_D_PRICE,
	F_D_LIST_PRICE, F_D_DISCOUNT, F_D_CURRENCY, F_D_URL, F_D_CODE, F_D_CODE_POOL,
	F_D_QUANTITY, F_D_STARTS_AT, F_D_EXPIRES_AT, F_D_CAMPAIGN, F_HOURS,
	F_S_ID, F_S_REGION, F_S_LOCALE, F_S_TIMEZONE, F_S_TAGS, F_S_ENGAGEMENT,
	F_S_MAX_PER_DAY, F_S_CHANNELS, F_S_CATEGORIES, F_S_BRANDS, F_S_KEYWORDS,
	F_S_MAX_PRICE, F_S_MIN_DISCOUNT,
	/* ORDER BEHAV (rules.h): F_S_BEHAV + RB_... */
	F_S_BEHAV, F_S_BEHAV_LAST = F_S_BEHAV + RB_COUNT - 1,
	F_COUNT
};

#define RULE_TREE_MAX 256  /* height of a condition's tree: bounds every recursion */

#define RN_SUB  0x01u   /* the subtree reads a subscriber field */
#define RN_DEAL 0x02u   /* the subtree reads a deal field or now */

struct rule_node {
	uint8_t kind;        /* enum rule_nk */
	uint8_t op;          /* enum rule_cmp for NK_CMP */
	uint8_t type;        /* enum rule_type, set by the checker */
	uint8_t uses;        /* RN_ bits, set by the checker */
	uint16_t field;      /* enum rule_fid for NK_FIELD */
	uint16_t depth;      /* height of the subtree, at most RULE_TREE_MAX */
	uint32_t id;         /* dense number within the set, for per-deal caches */
	int line;            /* position reported in errors: the operator, field, ... */
	int col;
	uint8_t pct;         /* NK_NUM written with '%' ("25%"): a percentage */
	size_t at;           /* byte offset of that position */
	size_t off;          /* source span [off, end) in the file */
	size_t end;
	struct rule_node *a;
	struct rule_node *b;
	struct rule_node **items;  /* NK_INLIST */
	size_t nitems;
	double num;          /* NK_NUM; NK_BOOL: 0 or 1 */
	const char *str;     /* NK_STR text; NK_FIELD name as written */
};

/* Type-checks node n just built by the parser (its children are already checked):
 * resolves NK_FIELD names, sets n->type and n->uses. Returns 0, or -1 after recording
 * an error; a node whose child failed gets RT_NONE silently, so one mistake gives one
 * error. */
int rule_check_node(struct rule_cc *cc, struct rule_node *n);

/* Checks a `when` condition is boolean. Returns 0 or -1 after recording an error. */
int rule_check_cond(struct rule_cc *cc, const struct rule_node *n);

/* ---- templates ---- */

enum rule_ph {
	PH_LIT = 0, PH_TITLE, PH_PRICE, PH_LIST_PRICE, PH_DISCOUNT, PH_CODE,
	PH_EXPIRES, PH_LINK, PH_BRAND,
	PH_COUNT
};

struct rule_tpart {
	int kind;            /* enum rule_ph */
	const char *s;       /* PH_LIT text (braces unescaped) */
	size_t len;
};

struct rule_template {
	const char *text;
	size_t len;
	struct rule_tpart *parts;
	size_t nparts;
	int owned;           /* 1 when from rule_template_new() */
	struct rule_arena arena;  /* used only when owned */
};

/* Compiles len bytes into a template allocated in a. Returns NULL on error with
 * *bad_off the byte offset at fault and msg filled (or msg "" on OOM). */
struct rule_template *rule_tpl_compile(struct rule_arena *a, const char *text,
    size_t len, size_t *bad_off, char *msg, size_t msgsize);
/* 1 when the literal text of t contains the word STOP (any case): an SMS template
 * must say how to stop. */
int rule_tpl_has_optout(const struct rule_template *t);
/* The same in language lang ("es" also takes ALTO and BAJA). */
int rule_tpl_has_optout_in(const struct rule_template *t, const char *lang);

/* ---- rules and sets ---- */

struct rule {
	const char *name;
	const char *file;
	int line;
	int col;
	int priority;
	unsigned channels;
	int audience_all;
	unsigned holdout_bp;
	unsigned max_segments;
	int exclusive;              /* when it applies to a deal, lower rules are not tried */
	struct rule_node *when;     /* NULL: always */
	const struct rule_template *tmpl[CH_COUNT];
	/* 'template CHANNEL locale LANG "..."': per channel, in the order written */
	struct rule_loc_tmpl {
		char lang[RULE_LANG_MAX + 1];
		const struct rule_template *t;
	} loc[CH_COUNT][RULE_LOCALES_MAX];
	unsigned char nloc[CH_COUNT];
	/* 'variant NAME "..."' (SMS) and 'test P% for D by METRIC [fallback NAME]' */
	struct rule_variant {
		char name[RULE_VARIANT_NAME_MAX + 1];
		const struct rule_template *t;
	} variants[RULE_VARIANTS_MAX];
	unsigned char nvariants;
	struct rule_ab ab;          /* ab.share_bp == 0: no test */
	const char *src;            /* the file text (arena copy), for explanations */
	uint64_t name_hash;         /* FNV-1a-64 of name */
	size_t order;               /* position in the input */
};

struct rule_set {
	struct rule_arena arena;
	struct rule **v;            /* evaluation order */
	size_t n;
	int is_default;
	uint32_t nnodes;            /* node ids are 0..nnodes-1 */
};

/* Parses one file into rules allocated in cc->arena, appended to *v (grown in the
 * arena). Returns 0, or -1 after recording errors (parsing continues past errors). */
int rule_parse_file(struct rule_cc *cc, struct rule ***v, size_t *n, size_t *cap);

/* The channel named name ("sms", "dm"), or -1. */
int rule_channel_from_name(const char *name);
const char *rule_channel_name(int ch);

/* ---- evaluation, shared by rule_match() and the index ---- */

/* A deal prepared for evaluating many subscribers: cached truth of the deal-only
 * conditions and the lower-cased title. */
struct rule_dctx {
	const struct deal *d;
	int64_t now;
	const int8_t *dv;           /* per node id: 0/1 for cached deal-only conditions */
};

/* Value of a deal-only or constant expression; present 0 for an absent number. */
struct rule_val {
	int present;
	double num;
	const char *str;
};

/* Evaluates a boolean node for subscriber s (s may be NULL only for deal-only nodes). */
int rule_eval_bool(const struct rule_node *n, const struct rule_dctx *dc,
    const struct subscriber *s);
/* Evaluates a number or string node (deal-only or constant when s is NULL). */
struct rule_val rule_eval_val(const struct rule_node *n, const struct rule_dctx *dc,
    const struct subscriber *s);
/* Fills dv (rs->nnodes entries) with the deal-only conditions of every rule. */
void rule_dctx_fill(const struct rule_set *rs, const struct deal *d, int64_t now,
    int8_t *dv);
/* 1 when rule r matches (when, audience, channels) and fills *m; else 0. */
int rule_match_one(const struct rule *r, const struct rule_dctx *dc,
    const struct subscriber *s, unsigned reach, struct rule_match *m);
/* 1 when r is exclusive and applies to the deal: every condition of its 'when' that
 * reads only the deal (each side of a top-level 'and') holds. Lower rules are then
 * not tried for the deal, whoever r itself matches. */
int rule_claims_deal(const struct rule *r, const struct rule_dctx *dc);
/* The holdout decision from the cached FNV-1a of the subscriber id: the CH_BIT()
 * mask of the channels the rule's holdout keeps the subscriber back from. */
unsigned rule_held_out_h(const struct rule *r, uint64_t id_hash);

/* Compares two numbers with a RC_ operator. */
int rule_cmp_num(int op, double a, double b);

/* Ranking helpers shared by rule_scan() and ridx_query(). */
uint64_t rule_eng_key(double engagement);   /* order-preserving bits */
int rule_recipient_cmp(const struct rule_recipient *a, const struct rule_recipient *b);
/* ceil(quantity * overbook) clamped to n, or n when quantity <= 0. */
size_t rule_cut(const struct deal *d, double overbook, size_t limit, size_t n);
int rule_recipients_reserve(struct rule_recipients *out, size_t n);

/* ---- helpers ---- */

static inline int rule_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
/* ASCII case-insensitive equality, prefix and substring tests on NUL-terminated text. */
int rule_ci_eq(const char *a, const char *b);
int rule_ci_prefix(const char *s, const char *prefix);
int rule_ci_find(const char *hay, const char *needle);
/* 1 when list holds s (ASCII case-insensitive). */
int rule_list_has(const struct strlist *l, const char *s);
/* "Did you mean": the candidate closest to word (a typo of at most 2 edits, the same
 * last word of a dotted name, or a name that word begins), or NULL when none is
 * close or word is one of them. */
const char *rule_suggest(const char *word, const char *const *cands, size_t n);
/* Appends to buf at *pos (snprintf-like accumulation; *pos may exceed size). */
void rule_buf_printf(char *buf, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
