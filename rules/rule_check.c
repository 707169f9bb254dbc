/*
 * rule_check.c: the type-checking compiler of the rule language (stage: match): the
 * field table, the type rules applied to each node as the parser builds it, and
 * rule_compile(), which parses every file, adds the built-in default rule when there is
 * none, fills in default templates, orders the rules and numbers the nodes.
 * Every mistake is a positioned error, one per mistake; never aborts; no I/O, no globals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel.h"
#include "rule_int.h"

/* What a number field counts in, so that "25%" can be compared with it. */
enum rule_unit {
	RU_PLAIN,            /* not a share: "25%" is refused */
	RU_PERCENT,          /* 0 ... 100: "25%" is 25 */
	RU_FRACTION          /* 0 ... 1: "25%" is 0.25 */
};

struct rule_field {
	const char *name;
	uint8_t type;
	uint8_t uses;
	uint8_t unit;        /* enum rule_unit */
};

/* ORDER FIELD: indexed by enum rule_fid. */
static const struct rule_field rule_fields[F_COUNT] = {
	[F_NONE] = { "", RT_NONE, 0 },
	[F_D_ID] = { "deal.id", RT_STR, RN_DEAL },
	[F_D_TITLE] = { "deal.title", RT_STR, RN_DEAL },
	[F_D_CATEGORY] = { "deal.category", RT_STR, RN_DEAL },
	[F_D_BRAND] = { "deal.brand", RT_STR, RN_DEAL },
	[F_D_TAGS] = { "deal.tags", RT_LIST, RN_DEAL },
	[F_D_REGION] = { "deal.region", RT_STR, RN_DEAL },
	[F_D_PRICE] = { "deal.price", RT_NUM, RN_DEAL },
	[F_D_LIST_PRICE] = { "deal.list_price", RT_NUM, RN_DEAL },
	[F_D_DISCOUNT] = { "deal.discount_pct", RT_NUM, RN_DEAL, RU_PERCENT },
	[F_D_CURRENCY] = { "deal.currency", RT_STR, RN_DEAL },
	[F_D_URL] = { "deal.url", RT_STR, RN_DEAL },
	[F_D_CODE] = { "deal.code", RT_STR, RN_DEAL },
	[F_D_CODE_POOL] = { "deal.code_pool", RT_STR, RN_DEAL },
	[F_D_QUANTITY] = { "deal.quantity", RT_NUM, RN_DEAL },
	[F_D_STARTS_AT] = { "deal.starts_at", RT_NUM, RN_DEAL },
	[F_D_EXPIRES_AT] = { "deal.expires_at", RT_NUM, RN_DEAL },
	[F_D_CAMPAIGN] = { "deal.campaign", RT_STR, RN_DEAL },
	[F_HOURS] = { "hours_until_expiry", RT_NUM, RN_DEAL },
	[F_S_ID] = { "subscriber.id", RT_STR, RN_SUB },
	[F_S_REGION] = { "subscriber.region", RT_STR, RN_SUB },
	[F_S_LOCALE] = { "subscriber.locale", RT_STR, RN_SUB },
	[F_S_TIMEZONE] = { "subscriber.timezone", RT_STR, RN_SUB },
	[F_S_TAGS] = { "subscriber.tags", RT_LIST, RN_SUB },
	[F_S_ENGAGEMENT] = { "subscriber.engagement", RT_NUM, RN_SUB, RU_FRACTION },
	[F_S_MAX_PER_DAY] = { "subscriber.max_per_day", RT_NUM, RN_SUB },
	[F_S_CHANNELS] = { "subscriber.channels", RT_LIST, RN_SUB },
	[F_S_CATEGORIES] = { "subscriber.interests.categories", RT_LIST, RN_SUB },
	[F_S_BRANDS] = { "subscriber.interests.brands", RT_LIST, RN_SUB },
	[F_S_KEYWORDS] = { "subscriber.interests.keywords", RT_LIST, RN_SUB },
	[F_S_MAX_PRICE] = { "subscriber.interests.max_price", RT_NUM, RN_SUB },
	[F_S_MIN_DISCOUNT] = { "subscriber.interests.min_discount_pct", RT_NUM, RN_SUB,
	    RU_PERCENT },
	/* ORDER BEHAV: computed at match time from the funnel's record (rule_behav.c) */
	[F_S_BEHAV + RB_DAYS_SINCE_CLICK] = { "subscriber.days_since_click", RT_NUM, RN_SUB },
	[F_S_BEHAV + RB_DAYS_SINCE_PURCHASE] = { "subscriber.days_since_purchase", RT_NUM,
	    RN_SUB },
	[F_S_BEHAV + RB_DAYS_SINCE_TEXT] = { "subscriber.days_since_text", RT_NUM, RN_SUB },
	[F_S_BEHAV + RB_TEXTS_7D] = { "subscriber.texts_7d", RT_NUM, RN_SUB },
	[F_S_BEHAV + RB_CLICKS_30D] = { "subscriber.clicks_30d", RT_NUM, RN_SUB },
	[F_S_BEHAV + RB_PURCHASES_90D] = { "subscriber.purchases_90d", RT_NUM, RN_SUB },
	[F_S_BEHAV + RB_REVENUE_90D] = { "subscriber.revenue_90d", RT_NUM, RN_SUB },
	[F_S_BEHAV + RB_DAYS_SINCE_JOIN] = { "subscriber.days_since_join", RT_NUM, RN_SUB },
};


static const char *
type_name(int t)
{
	switch (t) {
	case RT_BOOL: return "a condition";
	case RT_NUM: return "a number";
	case RT_STR: return "a string";
	case RT_LIST: return "a list";
	default: return "nothing";
	}
}

/* "'deal.price' (a number)", "\"red\" (a string)", "20 (a number)", ... */
static const char *
describe(const struct rule_node *n, char *buf, size_t size)
{
	switch (n->kind) {
	case NK_FIELD:
		snprintf(buf, size, "'%s' (%s)", n->str, type_name(n->type));
		break;
	case NK_STR:
		snprintf(buf, size, "\"%.40s%s\" (a string)", n->str,
		    strlen(n->str) > 40 ? "..." : "");
		break;
	case NK_NUM:
		snprintf(buf, size, n->pct ? "%g%% (a share)" : "%g (a number)", n->num);
		break;
	case NK_BOOL:
		snprintf(buf, size, "%s (a condition)", n->num != 0 ? "true" : "false");
		break;
	default:
		snprintf(buf, size, "this expression (%s)", type_name(n->type));
		break;
	}
	return buf;
}

static int
node_error(struct rule_cc *cc, const struct rule_node *n, const char *msg)
{
	return rule_cc_error(cc, n->at, n->line, n->col, "%s", msg);
}

static int
check_field(struct rule_cc *cc, struct rule_node *n)
{
	const char *names[F_COUNT - 1], *alt;
	size_t i;

	for (i = 1; i < F_COUNT; i++)
		if (strcmp(rule_fields[i].name, n->str) == 0) {
			n->field = (uint16_t)i;
			n->type = rule_fields[i].type;
			n->uses = rule_fields[i].uses;
			return 0;
		}
	for (i = 1; i < F_COUNT; i++)
		names[i - 1] = rule_fields[i].name;
	if ((alt = rule_suggest(n->str, names, F_COUNT - 1)) != NULL)
		return rule_cc_error(cc, n->at, n->line, n->col,
		    "unknown field '%s'; did you mean '%s'?", n->str, alt);
	return rule_cc_error(cc, n->at, n->line, n->col, "unknown field '%s'", n->str);
}

/*
 * A share written "25%" compared with field f: kept for a field in percent, made 0.25
 * for one in fractions of 1, refused for any other value. Returns 0 or -1 after
 * recording an error.
 */
static int
check_share(struct rule_cc *cc, const struct rule_node *f, struct rule_node *num)
{
	char m[256];

	if (num->kind != NK_NUM || !num->pct)
		return 0;
	if (f->kind == NK_FIELD && rule_fields[f->field].unit == RU_PERCENT)
		return 0;
	if (f->kind == NK_FIELD && rule_fields[f->field].unit == RU_FRACTION) {
		num->num /= 100.0;
		num->pct = 0;
		return 0;
	}
	snprintf(m, sizeof(m), "'%g%%' is a share, and %s is not one; shares compare with "
	    "deal.discount_pct, subscriber.interests.min_discount_pct and "
	    "subscriber.engagement", num->num, f->kind == NK_FIELD ? f->str : "this value");
	return node_error(cc, num, m);
}

static const char *const cmp_names[] = { "=", "!=", "<", "<=", ">", ">=" };

int
rule_check_node(struct rule_cc *cc, struct rule_node *n)
{
	char m[256], d1[96], d2[96];
	size_t i;
	const struct rule_node *a = n->a, *b = n->b;

	n->type = RT_NONE;
	for (i = 0; i < n->nitems; i++)
		if (n->items[i]->depth >= n->depth)
			n->depth = (uint16_t)(n->items[i]->depth + 1);
	if (a != NULL && a->depth >= n->depth)
		n->depth = (uint16_t)(a->depth + 1);
	if (b != NULL && b->depth >= n->depth)
		n->depth = (uint16_t)(b->depth + 1);
	if (n->depth > RULE_TREE_MAX) {
		n->depth = RULE_TREE_MAX + 1;
		if ((a != NULL && a->depth > RULE_TREE_MAX) ||
		    (b != NULL && b->depth > RULE_TREE_MAX))
			return -1;  /* reported at the child */
		return rule_cc_error(cc, n->at, n->line, n->col, "condition longer than "
		    "%d operators in a row; use 'in (...)' lists or split the rule",
		    RULE_TREE_MAX);
	}
	if (a != NULL) {
		n->uses |= a->uses;
		if (a->type == RT_NONE)
			return -1;
	}
	if (b != NULL) {
		n->uses |= b->uses;
		if (b->type == RT_NONE)
			return -1;
	}
	switch (n->kind) {
	case NK_NUM:
		n->type = RT_NUM;
		return 0;
	case NK_STR:
		n->type = RT_STR;
		return 0;
	case NK_BOOL:
		n->type = RT_BOOL;
		return 0;
	case NK_FIELD:
		return check_field(cc, n);
	case NK_AND:
	case NK_OR:
	case NK_NOT:
		for (i = 0; i < 2; i++) {
			const struct rule_node *c = i == 0 ? a : b;

			if (c != NULL && c->type != RT_BOOL) {
				snprintf(m, sizeof(m), "'%s' needs a condition%s; %s is not one",
				    n->kind == NK_AND ? "and" : n->kind == NK_OR ? "or" : "not",
				    n->kind == NK_NOT ? "" : " on each side",
				    describe(c, d1, sizeof(d1)));
				return node_error(cc, c, m);
			}
		}
		n->type = RT_BOOL;
		return 0;
	case NK_CMP:
		if (a->type == RT_LIST || b->type == RT_LIST) {
			const struct rule_node *l = a->type == RT_LIST ? a : b;

			snprintf(m, sizeof(m), "cannot compare %s with '%s'; to test a list "
			    "write \"x\" in %s", describe(l, d1, sizeof(d1)), cmp_names[n->op],
			    l->kind == NK_FIELD ? l->str : "the list");
			return node_error(cc, l, m);
		}
		if (a->type == RT_BOOL || b->type == RT_BOOL) {
			snprintf(m, sizeof(m), "cannot compare conditions with '%s'; combine "
			    "them with 'and', 'or', 'not'", cmp_names[n->op]);
			return node_error(cc, n, m);
		}
		if (a->type != b->type) {
			snprintf(m, sizeof(m), "cannot compare %s with %s",
			    describe(a, d1, sizeof(d1)), describe(b, d2, sizeof(d2)));
			return node_error(cc, b, m);
		}
		if (check_share(cc, a, n->b) == -1 || check_share(cc, b, n->a) == -1)
			return -1;
		if (a->type == RT_STR && n->op != RC_EQ && n->op != RC_NE) {
			snprintf(m, sizeof(m), "'%s' compares numbers, and %s cannot be "
			    "ordered; use = or !=", cmp_names[n->op], describe(a, d1, sizeof(d1)));
			return node_error(cc, n, m);
		}
		n->type = RT_BOOL;
		return 0;
	case NK_INLIST:
		if (a->type != RT_STR && a->type != RT_NUM) {
			snprintf(m, sizeof(m), "'in' needs one value on its left; %s is not",
			    describe(a, d1, sizeof(d1)));
			return node_error(cc, a, m);
		}
		for (i = 0; i < n->nitems; i++)
			if (n->items[i]->type != a->type) {
				snprintf(m, sizeof(m), "list item %s does not match %s",
				    describe(n->items[i], d1, sizeof(d1)),
				    describe(a, d2, sizeof(d2)));
				return node_error(cc, n->items[i], m);
			}
		for (i = 0; i < n->nitems; i++)
			if (check_share(cc, a, n->items[i]) == -1)
				return -1;
		if (check_share(cc, n->items[0], n->a) == -1)
			return -1;
		n->type = RT_BOOL;
		return 0;
	case NK_INFIELD:
		if (b->type != RT_LIST) {
			snprintf(m, sizeof(m), "the right of 'in' must be a list field such as "
			    "subscriber.tags, or a list in parentheses; %s is not",
			    describe(b, d1, sizeof(d1)));
			return node_error(cc, b, m);
		}
		if (a->type != RT_STR) {
			snprintf(m, sizeof(m), "%s holds strings; %s cannot be in it",
			    b->str, describe(a, d1, sizeof(d1)));
			return node_error(cc, a, m);
		}
		n->type = RT_BOOL;
		return 0;
	case NK_STARTS:
	case NK_CONTAINS:
		for (i = 0; i < 2; i++) {
			const struct rule_node *c = i == 0 ? a : b;

			if (c->type == RT_LIST) {
				snprintf(m, sizeof(m), "'%s' works on text; to test a list write "
				    "\"x\" in %s", n->kind == NK_STARTS ? "starts_with" :
				    "contains", c->kind == NK_FIELD ? c->str : "the list");
				return node_error(cc, c, m);
			}
			if (c->type != RT_STR) {
				snprintf(m, sizeof(m), "'%s' needs text on both sides; %s is not "
				    "text", n->kind == NK_STARTS ? "starts_with" : "contains",
				    describe(c, d1, sizeof(d1)));
				return node_error(cc, c, m);
			}
		}
		n->type = RT_BOOL;
		return 0;
	}
	return -1;
}

int
rule_check_cond(struct rule_cc *cc, const struct rule_node *n)
{
	char m[160], d[96];

	if (n->type == RT_BOOL || n->type == RT_NONE)
		return n->type == RT_BOOL ? 0 : -1;
	snprintf(m, sizeof(m), "a condition must be true or false; %s is not",
	    describe(n, d, sizeof(d)));
	return node_error(cc, n, m);
}

/* ---- the driver ---- */

static uint32_t
number_nodes(struct rule_node *n, uint32_t id)
{
	size_t i;

	if (n == NULL)
		return id;
	n->id = id++;
	id = number_nodes(n->a, id);
	id = number_nodes(n->b, id);
	for (i = 0; i < n->nitems; i++)
		id = number_nodes(n->items[i], id);
	return id;
}

static int
rule_order_cmp(const void *pa, const void *pb)
{
	const struct rule *a = *(const struct rule *const *)pa;
	const struct rule *b = *(const struct rule *const *)pb;

	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int
add_default_rule(struct rule_set *rs, struct rule ***v, size_t *n)
{
	struct rule *r = rule_arena_alloc(&rs->arena, sizeof(*r));

	*v = rule_arena_alloc(&rs->arena, sizeof(**v));
	if (r == NULL || *v == NULL)
		return -1;
	r->name = "default";
	r->file = "";
	r->src = "";
	r->channels = CH_BIT(CH_SMS) | CH_BIT(CH_DM);
	r->max_segments = RULE_SEGMENTS_DEFAULT;
	r->name_hash = rule_fnv1a(r->name);
	(*v)[0] = r;
	*n = 1;
	rs->is_default = 1;
	return 0;
}

struct rule_set *
rule_compile(const struct rule_source *src, size_t nsrc, struct rule_diags *diags,
    struct err *err)
{
	struct rule_set *rs;
	struct rule_cc cc;
	struct rule **v = NULL;
	const struct rule_template *deftp[CH_COUNT];
	size_t n = 0, cap = 0, i;
	uint32_t id = 0;
	int c;

	err_clear(err);
	if ((rs = calloc(1, sizeof(*rs))) == NULL) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory compiling rules");
		return NULL;
	}
	memset(&cc, 0, sizeof(cc));
	cc.arena = &rs->arena;
	cc.diags = diags;
	cc.err = err;
	for (i = 0; i < nsrc && !cc.nomem && cc.nerr < RULE_DIAGS_MAX; i++) {
		const char *name = src[i].name != NULL ? src[i].name : "<input>";

		if ((cc.file = rule_arena_strndup(&rs->arena, name, strlen(name))) == NULL) {
			rule_cc_nomem(&cc);
			break;
		}
		cc.src = NULL;
		cc.srclen = 0;
		if (src[i].len > RULE_SOURCE_MAX) {
			rule_cc_error(&cc, 0, 0, 0, "file larger than %d bytes", RULE_SOURCE_MAX);
			continue;
		}
		cc.src = src[i].text != NULL ? src[i].text : "";
		cc.srclen = src[i].text != NULL ? src[i].len : 0;
		rule_parse_file(&cc, &v, &n, &cap);
	}
	if (cc.nomem || cc.nerr > 0)
		goto fail;
	if (n == 0 && add_default_rule(rs, &v, &n) == -1) {
		rule_cc_nomem(&cc);
		goto fail;
	}
	for (c = 0; c < CH_COUNT; c++) {
		size_t boff;
		char msg[8];

		deftp[c] = rule_tpl_compile(&rs->arena, channel_def((enum channel)c)->template,
		    strlen(channel_def((enum channel)c)->template), &boff, msg, sizeof(msg));
		if (deftp[c] == NULL) {
			rule_cc_nomem(&cc);
			goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		for (c = 0; c < CH_COUNT; c++)
			if (v[i]->tmpl[c] == NULL)
				v[i]->tmpl[c] = deftp[c];
		id = number_nodes(v[i]->when, id);
	}
	qsort(v, n, sizeof(*v), rule_order_cmp);
	rs->v = v;
	rs->n = n;
	rs->nnodes = id;
	return rs;

fail:
	rule_set_free(rs);
	return NULL;
}

void
rule_set_free(struct rule_set *rs)
{
	if (rs == NULL)
		return;
	rule_arena_free(&rs->arena);
	free(rs);
}

size_t
rule_set_count(const struct rule_set *rs)
{
	return rs->n;
}

const struct rule *
rule_set_get(const struct rule_set *rs, size_t i)
{
	return i < rs->n ? rs->v[i] : NULL;
}

const struct rule *
rule_set_find(const struct rule_set *rs, const char *name)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i]->name, name) == 0)
			return rs->v[i];
	return NULL;
}

int rule_set_is_default(const struct rule_set *rs) { return rs->is_default; }
const char *rule_name(const struct rule *r) { return r->name; }
const char *rule_file(const struct rule *r) { return r->file; }
int rule_line(const struct rule *r) { return r->line; }
int rule_priority(const struct rule *r) { return r->priority; }
unsigned rule_channels(const struct rule *r) { return r->channels; }
int rule_audience_all(const struct rule *r) { return r->audience_all; }
unsigned rule_holdout_bp(const struct rule *r) { return r->holdout_bp; }
unsigned rule_max_segments(const struct rule *r) { return r->max_segments; }

const struct rule_template *
rule_template(const struct rule *r, enum channel ch)
{
	return (int)ch >= 0 && ch < CH_COUNT ? r->tmpl[ch] : NULL;
}

const struct rule_template *
rule_template_locale(const struct rule *r, enum channel ch, const char *locale)
{
	size_t i, n;

	if ((int)ch < 0 || ch >= CH_COUNT || locale == NULL || r->nloc[ch] == 0)
		return NULL;
	for (n = 0; n <= RULE_LANG_MAX && locale[n] != '\0' && locale[n] != '-' &&
	    locale[n] != '_'; n++)
		;
	if (n > RULE_LANG_MAX)
		return NULL;
	for (i = 0; i < r->nloc[ch]; i++)
		if (strlen(r->loc[ch][i].lang) == n &&
		    strncasecmp(r->loc[ch][i].lang, locale, n) == 0)
			return r->loc[ch][i].t;
	return NULL;
}
