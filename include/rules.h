/*
 * rules.h: targeting rules for deals (stage: match). Compiles rule files into a rule
 * set, matches a deal against one subscriber, finds every recipient of a deal through
 * the interest index, ranks and overbooks them, and renders message templates.
 *
 * Pure C: no I/O, no clock (time comes in as arguments), no globals, never aborts.
 * A compiled struct rule_set is immutable and may be shared between threads. A struct
 * ridx has one writer; ridx_query() only reads it, so several queries (each with its
 * own struct rule_recipients) may run at once while no writer runs.
 * The language, the matching semantics and the index design: docs/rules.md.
 */
#ifndef DEALPUSH_RULES_H
#define DEALPUSH_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

/* ---- compiling ------------------------------------------------------------------ */

/* One rule file: a name used in diagnostics ("rules/vip.rules") and its text, which
 * need not be NUL-terminated. Borrowed for the duration of rule_compile() only. */
struct rule_source {
	const char *name;
	const char *text;
	size_t len;
};

/* One compile error. All strings are owned by the enclosing struct rule_diags.
 * line and col are 1-based; col counts characters (UTF-8 code points), a tab is one.
 * line 0 means the error has no position (out of memory, too many errors). */
struct rule_diag {
	char *file;
	int line;
	int col;
	char *msg;       /* "unknown field 'deal.colour'" */
	char *src_line;  /* the source line without its newline, "" when line is 0 */
};

/* The errors of one compilation, in the order found; at most RULE_DIAGS_MAX of them
 * (the last then says "too many errors"). */
struct rule_diags {
	struct rule_diag *v;
	size_t n;
	size_t cap;
};

#define RULE_DIAGS_MAX 50

/* Limits on hostile or mistaken input; exceeding one is a compile error. */
#define RULE_SOURCE_MAX (1024 * 1024)  /* bytes per file */
#define RULE_STRING_MAX 2048           /* bytes in one string literal */
#define RULE_NAME_MAX 64               /* bytes in a rule name or field name */
#define RULE_DEPTH_MAX 64              /* nesting of parentheses and 'not' */
#define RULE_LIST_MAX 256              /* items in an 'in (...)' list */
#define RULE_RULES_MAX 1000            /* rules in one set */

/* Makes d an empty list. */
void rule_diags_init(struct rule_diags *d);

/* Frees every error in d and leaves it empty; d may be NULL. */
void rule_diags_free(struct rule_diags *d);

/*
 * Formats one error like a compiler into buf (always NUL-terminated when size > 0):
 *   rules/vip.rules:3:26: error: unknown field 'deal.colour'
 *     when deal.colour = "red"
 *          ^
 * (the source line as written and a caret under the column; tabs are kept so the caret
 * lines up). Returns the length the full text needs, like snprintf.
 */
size_t rule_diag_format(const struct rule_diag *dg, char *buf, size_t size);

/* Formats every error of d, one after another, as rule_diag_format() does; this is what
 * `notifier --check-rules` prints. Returns the length the full text needs. */
size_t rule_diags_format(const struct rule_diags *d, char *buf, size_t size);

struct rule_set;
struct rule;

/*
 * Compiles nsrc rule files (nsrc may be 0) into a new rule set the caller frees with
 * rule_set_free(). Files with no rules at all give the built-in default rule (see
 * docs/rules.md): send to interested subscribers on every channel they consented to.
 * On any error returns NULL, appends every error found to diags (when diags is not
 * NULL; it may already hold errors) and fills *err: kind ERR_INPUT code "rules_invalid"
 * with the first error as message, or ERR_NOMEM code "no_memory".
 * Nothing of src is kept: the set owns copies of what it needs.
 */
struct rule_set *rule_compile(const struct rule_source *src, size_t nsrc,
    struct rule_diags *diags, struct err *err);

/* Frees the set, its rules and their templates; rule_set_free(NULL) does nothing.
 * Every struct rule, struct rule_template and result that points into the set is
 * invalid afterwards. */
void rule_set_free(struct rule_set *rs);

/* Number of rules in the set (1 for the built-in default). */
size_t rule_set_count(const struct rule_set *rs);

/* The i-th rule in evaluation order: priority descending, then file order, then
 * position in the file. NULL when i is out of range. Owned by the set. */
const struct rule *rule_set_get(const struct rule_set *rs, size_t i);

/* The rule named name (case-sensitive), or NULL. Owned by the set. */
const struct rule *rule_set_find(const struct rule_set *rs, const char *name);

/* 1 when the set is the built-in default (no rules were loaded), else 0. */
int rule_set_is_default(const struct rule_set *rs);

/* Accessors of a compiled rule; every string is owned by the set. */
const char *rule_name(const struct rule *r);          /* "default" for the default */
const char *rule_file(const struct rule *r);          /* "" for the default */
int rule_line(const struct rule *r);                  /* line of `rule`, 0 default */
int rule_priority(const struct rule *r);              /* 0..RULE_PRIORITY_MAX */
unsigned rule_channels(const struct rule *r);         /* CH_BIT() mask of `send` */
int rule_audience_all(const struct rule *r);          /* 1 all, 0 interested */
unsigned rule_holdout_bp(const struct rule *r);       /* holdout in 1/100 percent */
unsigned rule_max_segments(const struct rule *r);     /* SMS segment cap, 1..10 */

#define RULE_PRIORITY_MAX 1000000
#define RULE_SEGMENTS_DEFAULT 3
#define RULE_SEGMENTS_MAX 10

/* ---- matching one subscriber ------------------------------------------------------ */

/* What rule_match() decided for one (deal, subscriber). */
struct rule_match {
	const struct rule *rule;  /* the highest-priority rule that matched, or NULL */
	unsigned channels;        /* rule's `send` ∩ subscriber's channels ∩ consented */
	int held_out;             /* the CH_BIT() mask of channels (within channels) the
	                             rule's holdout keeps back; 0: none */
};

/*
 * Decides whether deal d reaches subscriber s at wall time now (epoch seconds): the
 * first rule in evaluation order whose `when` holds, whose audience holds and that
 * leaves at least one channel (see struct rule_match). A cancel deal matches nobody.
 * Returns 1 and fills *m when a rule matched, 0 (with *m zeroed) when none did.
 * This is the reference semantics; ridx_query() returns exactly what calling it for
 * every subscriber and ranking returns.
 */
int rule_match(const struct rule_set *rs, const struct deal *d,
    const struct subscriber *s, int64_t now, struct rule_match *m);

/* The interest predicate of `audience interested` and of the default rule: deal
 * category in the subscriber's categories, or brand in the brands, or a keyword found
 * in the title (all ASCII case-insensitive); and the price at most max_price (when
 * both are known); and discount_pct at least min_discount_pct (when set).
 * Returns 1 or 0. */
int rule_interested(const struct deal *d, const struct subscriber *s);

/* Channels s can be reached on now: its channels, with consent given (consent > 0)
 * and an address (phone for sms, dm_x for dm). A CH_BIT() mask. */
unsigned rule_reachable(const struct subscriber *s);

/* FNV-1a, 64 bits, over the bytes of s up to its NUL (no case folding). */
uint64_t rule_fnv1a(const char *s);

/* MurmurHash3's 64-bit finaliser: every input bit reaches every output bit. */
uint64_t rule_fmix64(uint64_t h);

/* The stable holdout hash of (rule name, subscriber id) on SMS:
 *   fmix64(FNV-1a-64(rule_name) XOR FNV-1a-64(sub_id))
 * (fmix64 is MurmurHash3's 64-bit finaliser); on DM the same with
 * RULE_HOLDOUT_DM_SALT XORed in before fmix64, so each channel holds out its own
 * subscribers (docs/attribution.md §5). A subscriber is held out of a channel by a
 * rule with holdout bp basis points when that channel's hash % 10000 < bp. */
#define RULE_HOLDOUT_DM_SALT 0x9e3779b97f4a7c15ULL
uint64_t rule_holdout_hash(const char *rule_name, const char *sub_id);

/* The hash above for channel ch (CH_SMS: rule_holdout_hash). */
uint64_t rule_holdout_hash_ch(const char *rule_name, const char *sub_id,
    enum channel ch);

/* The CH_BIT() mask of the channels rule r's holdout keeps subscriber s back from
 * (each channel drawn on its own), whatever channels s has; 0 without a holdout. */
unsigned rule_held_out(const struct rule *r, const struct subscriber *s);

/*
 * Explains rule_match() for one (deal, subscriber): one line per rule in evaluation
 * order saying "matched", or which condition failed with its file:line:col and source
 * text, or that the audience or the channels failed. Written into buf (NUL-terminated
 * when size > 0); returns the length the full text needs, like snprintf.
 */
size_t rule_explain(const struct rule_set *rs, const struct deal *d,
    const struct subscriber *s, int64_t now, char *buf, size_t size);

/* ---- recipients of a deal ----------------------------------------------------------- */

struct rule_recipient {
	const struct subscriber *sub;  /* borrowed from the caller / the index */
	const struct rule *rule;       /* owned by the rule set */
	unsigned channels;
	int held_out;                  /* CH_BIT() mask within channels the rule's
	                                  holdout keeps back (struct rule_match) */
};

/*
 * The ranked recipients of one deal: rule priority descending, then engagement
 * descending, then subscriber id ascending (bytewise), so the order is a total order
 * and identical between ridx_query() and rule_scan(). For a deal with quantity > 0
 * only the first ceil(quantity * overbook) are kept in v; matched counts them all.
 * Held-out recipients are ranked and kept like the others, flagged held_out (the
 * channels held back; a recipient held out of some channels is sent on the others).
 * Reuse one struct across queries to keep its buffers.
 */
struct rule_recipients {
	struct rule_recipient *v;
	size_t n;        /* recipients in v */
	size_t matched;  /* recipients before the quantity cut */
	size_t limit;    /* in: a cut lower than the deal's own, 0 = none (a notifier
	                  * that mirrors only some shards plans its share of a limited
	                  * deal: notifier/ingest_ranks.c); kept across queries */
	size_t cap;
	void *scratch;   /* private buffers of ridx_query() */
};

#define RULE_OVERBOOK_DEFAULT 1.5

struct ridx;

/*
 * A test send's recipients (docs/rules.md, "Test sends"): each subscriber of ids
 * that the index holds, in the order given, with the rule rule_match() gives it or,
 * when none does, the first rule whose conditions on the deal hold and that reaches
 * one of its channels (the text a customer of that rule would get); never held out,
 * never cut by quantity. An id the index does not hold, or that no rule reaches, is
 * left out. 0, or -1 with *err (ERR_NOMEM).
 */
int rule_test_recipients(const struct ridx *ix, const struct rule_set *rs,
    const struct deal *d, int64_t now, const struct strlist *ids,
    struct rule_recipients *out, struct err *err);

/* Makes out empty. */
void rule_recipients_init(struct rule_recipients *out);

/* Frees what out holds and leaves it empty; out may be NULL. */
void rule_recipients_free(struct rule_recipients *out);

/*
 * The reference: calls rule_match() for each of the n subscribers, ranks and cuts as
 * described above. overbook must be >= 1 (RULE_OVERBOOK_DEFAULT is 1.5).
 * Returns 0 with out filled, or -1 with *err filled (ERR_INPUT bad overbook,
 * ERR_NOMEM) and out empty (n = 0).
 */
int rule_scan(const struct rule_set *rs, const struct subscriber *const *subs, size_t n,
    const struct deal *d, int64_t now, double overbook, struct rule_recipients *out,
    struct err *err);

/* ---- interest index ----------------------------------------------------------------- */

struct ridx;

/* A new empty index owned by the caller, or NULL with *err filled (ERR_NOMEM). */
struct ridx *ridx_new(struct err *err);

/* Frees the index (never the subscribers it points to); ridx_free(NULL) does nothing. */
void ridx_free(struct ridx *ix);

/*
 * Adds s, or replaces the subscriber with the same id in place (no rebuild). The index
 * borrows s: it must stay valid and unchanged until it is replaced or removed, and when
 * replacing, the old subscriber must still be valid during this call (free it after).
 * Returns 0, or -1 with *err filled (ERR_NOMEM; ERR_INPUT when s or s->id is NULL);
 * on error the index is unchanged (the old subscriber stays indexed).
 */
int ridx_put(struct ridx *ix, const struct subscriber *s, struct err *err);

/* Removes the subscriber with this id. Returns 1 when it was there, 0 when not.
 * Never allocates, never fails. */
int ridx_remove(struct ridx *ix, const char *id);

/* The indexed subscriber with this id, or NULL. */
const struct subscriber *ridx_get(const struct ridx *ix, const char *id);

/* Number of subscribers in the index. */
size_t ridx_count(const struct ridx *ix);

/*
 * Makes out ready for answers as large as the index (every subscriber): reserves
 * and touches the answer and the query's scratch buffers now, so the first broad
 * deal does not pay for growing them (about 20 ms for a million subscribers). For
 * start-up, once the index is loaded; out keeps them until rule_recipients_free().
 * Returns 0, or -1 with *err (ERR_NOMEM; out stays usable).
 */
int ridx_warm(const struct ridx *ix, struct rule_recipients *out, struct err *err);

/*
 * Gives back the room kept for growth: every posting list shrinks to its length and
 * the rank order is packed into full blocks. For after a bulk load (the mirror's
 * full load); later changes grow them again as needed. Never fails: a list that
 * cannot be shrunk keeps its room.
 */
void ridx_compact(struct ridx *ix);

/* Bytes the index owns (tables, posting lists, keys), excluding the subscribers. */
size_t ridx_memory(const struct ridx *ix);

/* Checks every invariant of the index (posting lists sorted and consistent with the
 * subscribers, id table complete). Returns 0, or -1 with *err naming the first broken
 * invariant. Slow: for tests. */
int ridx_check(const struct ridx *ix, struct err *err);

/*
 * The recipients of deal d under rule set rs at wall time now: exactly what
 * rule_scan() over every indexed subscriber returns (same members, same order, same
 * cut), computed from posting lists (category, brand, keyword, tag, region) and
 * per-subscriber bounds (engagement, max_price, min_discount_pct, channels) before any
 * rule is evaluated per subscriber. Returns 0 with out filled, or -1 with *err filled
 * (ERR_INPUT bad overbook, ERR_NOMEM) and out empty.
 */
int ridx_query(const struct ridx *ix, const struct rule_set *rs, const struct deal *d,
    int64_t now, double overbook, struct rule_recipients *out, struct err *err);

/* ---- templates -------------------------------------------------------------------- */

struct rule_template;

/* Placeholders a template may use: {title} {price} {list_price} {discount_pct} {code}
 * {expires_local} {link} {brand}; "{{" and "}}" are literal braces. */

/* The template of rule r for channel ch: the rule's own or the built-in default for
 * that channel; NULL only when ch is out of range. Owned by the set. */
const struct rule_template *rule_template(const struct rule *r, enum channel ch);

/* Templates per language: 'template sms locale es "..."'. A language is a primary
 * subtag of 2 or 3 lower-case letters; at most RULE_LOCALES_MAX per channel. */
#define RULE_LANG_MAX 3
#define RULE_LOCALES_MAX 8

/* The template of rule r for channel ch for a subscriber of locale (a BCP 47 tag such
 * as "es" or "es-MX"; NULL: none): the rule's template for the tag's language when it
 * has one, else NULL (the caller then takes rule_template()). */
const struct rule_template *rule_template_locale(const struct rule *r, enum channel ch,
    const char *locale);

/* ---- A/B variants (docs/rules.md "A/B variants") ----------------------------------- */

/* 'variant NAME "TEXT"' (2 to RULE_VARIANTS_MAX SMS texts) and
 * 'test P% for DURATION by clicks|redemptions [fallback NAME]'. */
#define RULE_VARIANTS_MAX 4
#define RULE_VARIANT_NAME_MAX 16
#define RULE_AB_WINDOW_MIN_S 60
#define RULE_AB_WINDOW_MAX_S 86400

enum rule_ab_metric { RULE_AB_CLICKS = 0, RULE_AB_REDEMPTIONS };

struct rule_ab {
	unsigned share_bp;          /* the test share, basis points (1..10000) */
	long window_s;              /* how long the test runs at most */
	enum rule_ab_metric metric;
	unsigned fallback;          /* the variant sent when none is clearly better */
};

/* The rule's variants: how many (0 when it has none), each one's name and template. */
size_t rule_variant_count(const struct rule *r);
const char *rule_variant_name(const struct rule *r, size_t i);
const struct rule_template *rule_variant_template(const struct rule *r, size_t i);

/* The rule's test, or NULL when it has no variants. */
const struct rule_ab *rule_ab(const struct rule *r);

/* Which variant subscriber sub gets for deal deal under rule r: -1 when the rule has
 * no test or sub is in the rest (who wait for the winner); else the variant index.
 * Deterministic: the same deal and subscriber always land in the same place, so a
 * re-plan after a crash keeps everyone's variant. The test share is
 * ab.share_bp / 10000 of the subscribers, split evenly among the variants. */
int rule_ab_assign(const struct rule *r, const char *deal, const char *sub);

/* A variant's standing: texts sent and the metric's successes among them. */
struct rule_ab_stat {
	unsigned long sent;
	unsigned long wins;
};

/* The verdict on a test. */
struct rule_ab_verdict {
	int winner;                 /* index, or -1: not yet (or none clearly better) */
	int best;                   /* the variant with the highest rate so far, -1: none */
	double z;                   /* the best's smallest z against each other variant */
	double confidence;          /* 1 - the one-sided p of that z (normal), 0..1 */
};

/*
 * Decides a test from each variant's standing (n = the rule's variant count):
 * Haybittle-Peto, so the test can stop early without losing its error rate. While
 * the window runs (final = 0) the best wins only when every z >= 3.29 (p < 0.0005
 * one-sided) with at least RULE_AB_MIN_SENT texts each; when it ends (final = 1) at
 * z >= 1.96. winner -1 at the end means the rule's fallback goes to the rest.
 */
#define RULE_AB_MIN_SENT 30
#define RULE_AB_Z_EARLY 3.29
#define RULE_AB_Z_FINAL 1.96
void rule_ab_decide(const struct rule_ab_stat *st, size_t n, int final,
    struct rule_ab_verdict *out);

/* Compiles a standalone template from len bytes of UTF-8. Returns a new template the
 * caller frees with rule_template_free(), or NULL with *err filled (ERR_INPUT with the
 * 0-based byte offset of the problem in err->field, or ERR_NOMEM). */
struct rule_template *rule_template_new(const char *text, size_t len, struct err *err);

/* Frees a template from rule_template_new(); does nothing for NULL or for a template
 * owned by a rule set. */
void rule_template_free(struct rule_template *t);

/* The template's source text (escapes resolved), NUL-terminated. */
const char *rule_template_text(const struct rule_template *t);

/*
 * Formats the expiry time t in IANA zone tz (NULL or "" = UTC) into buf of size bytes,
 * NUL-terminated; returns the length written, 0 on failure (the renderer then falls
 * back to UTC). Supplied by the caller because time zones need tzdata (I/O).
 */
typedef size_t (*rule_fmt_local_fn)(void *arg, const char *tz, int64_t t, char *buf,
    size_t size);

/* The inputs of one rendering; all borrowed for the call only. */
struct rule_render_in {
	const struct deal *deal;
	const struct subscriber *sub;   /* may be NULL: {expires_local} is then UTC */
	const char *link;               /* click link for {link}; NULL = deal->url */
	const char *code;               /* per-recipient code for {code}; NULL = deal->code */
	int64_t now;                    /* picks the UTC fallback's form */
	rule_fmt_local_fn fmt_local;    /* may be NULL: UTC */
	void *fmt_arg;
	enum channel channel;           /* CH_SMS counts segments and applies the cap */
	unsigned max_segments;          /* SMS only; 0 = no cap */
};

enum rule_encoding {
	RULE_ENC_GSM7 = 0,
	RULE_ENC_UCS2 = 1
};

/* A rendered message; s is owned, free with rule_text_free(). */
struct rule_text {
	char *s;                   /* valid UTF-8, NUL-terminated */
	size_t len;
	enum rule_encoding enc;    /* for SMS: GSM-7 when every character has a septet */
	unsigned units;            /* septets (extension characters count 2) or UTF-16 units */
	unsigned segments;         /* 1 up to 160/70 units, else parts of 153/67 */
	int shortened;             /* 1 when the title was cut to meet max_segments */
};

/*
 * Renders t for in into *out (which it overwrites without freeing). For SMS over
 * in->max_segments the title alone is shortened (to its whole words that fit; inside
 * its first word only when that one does not fit; never to nothing), ending "..." in
 * GSM-7 or "…" in UCS-2; code, link and the template's own words (the opt-out words)
 * are never cut. Invalid UTF-8 in deal fields becomes U+FFFD.
 * Returns 0, or -1 with *err filled and *out empty: ERR_INPUT code "too_long" when the
 * message needs more than max_segments with even one character of its title,
 * ERR_NOMEM.
 */
int rule_render(const struct rule_template *t, const struct rule_render_in *in,
    struct rule_text *out, struct err *err);

/* Frees out->s and zeroes *out; out may be NULL. */
void rule_text_free(struct rule_text *out);

/*
 * Counts len bytes of UTF-8 as one SMS: *enc GSM-7 when every character is in the
 * GSM 03.38 basic or extension table (extension characters are 2 septets, never split
 * between parts), else UCS-2 (UTF-16 units; a surrogate pair is never split).
 * Fills *units and returns the number of segments (0 for empty text).
 */
unsigned rule_sms_count(const char *s, size_t len, enum rule_encoding *enc,
    unsigned *units);

/*
 * Formats amount in currency (ISO 4217, upper case) into buf, NUL-terminated:
 * USD "$1,099.00", GBP "£649.00", EUR "€649.00", JPY "¥649" (no decimals), any other
 * "649.00 CHF", "" currency "649.00". Returns the length needed, like snprintf.
 */
size_t rule_money_format(double amount, const char *currency, char *buf, size_t size);

/* ---- behaviour fields (docs/rules.md "Behaviour") --------------------------------- */

/* ORDER BEHAV: the behaviour fields of a subscriber, "subscriber.<name>". */
enum rule_behav {
	RB_DAYS_SINCE_CLICK = 0, RB_DAYS_SINCE_PURCHASE, RB_DAYS_SINCE_TEXT, RB_TEXTS_7D,
	RB_CLICKS_30D, RB_PURCHASES_90D, RB_REVENUE_90D, RB_DAYS_SINCE_JOIN,
	RB_COUNT
};

/* "days_since_click", ...; NULL for a value out of range. Static. */
const char *rule_behav_name(int which);

/* A subscriber's join time for days_since_join: its earliest consent time (the
 * sign-up's, or the one its document was imported with), 0 when it has none. */
int64_t rule_behav_joined(const struct subscriber *s);

/*
 * The value of behaviour field which for b (NULL: nothing known) and join time joined
 * (0: not known) at now (epoch seconds, the caller's clock): days_since_* are whole
 * days, floor((now - t) / 86400), never below 0, and absent when the event never
 * happened (or there is no join time); the window counts add the UTC days (epoch /
 * 86400) after today - N (texts 7, clicks 30, purchases and revenue 90) and are 0
 * when nothing is known. Returns 1 with *out set, or 0 for an absent value.
 */
int rule_behav_value(const struct sub_behav *b, int64_t joined, int which, int64_t now,
    double *out);

#endif
