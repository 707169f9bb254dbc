/*
 * rule_eval.c: the matcher (stage: match): evaluates compiled conditions against a
 * (deal, subscriber), the interest predicate, reachability, the holdout hash, the
 * explanation of a decision, the ranking order and the reference full scan rule_scan()
 * that the index must agree with. Small predicates, one per criterion, after OpenSMTPD's
 * ruleset.c. Never writes to the deal, the subscriber or the rule set; no I/O, no
 * globals, no clock.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "rule_int.h"

static const char *
sstr(const char *s)
{
	return s != NULL ? s : "";
}

struct rule_val
rule_eval_val(const struct rule_node *n, const struct rule_dctx *dc,
    const struct subscriber *s)
{
	struct rule_val v = { 1, 0, "" };
	const struct deal *d = dc->d;

	switch (n->kind) {
	case NK_NUM:
		v.num = n->num;
		return v;
	case NK_STR:
		v.str = n->str;
		return v;
	case NK_FIELD:
		break;
	default:
		v.present = 0;
		return v;
	}
	switch (n->field) {
	case F_D_ID: v.str = sstr(d->id); break;
	case F_D_TITLE: v.str = sstr(d->title); break;
	case F_D_CATEGORY: v.str = sstr(d->category); break;
	case F_D_BRAND: v.str = sstr(d->brand); break;
	case F_D_REGION: v.str = sstr(d->region); break;
	case F_D_PRICE: v.present = d->has_price; v.num = d->price; break;
	case F_D_LIST_PRICE: v.present = d->has_list_price; v.num = d->list_price; break;
	case F_D_DISCOUNT: v.num = d->discount_pct; break;
	case F_D_CURRENCY: v.str = d->currency; break;
	case F_D_URL: v.str = sstr(d->url); break;
	case F_D_CODE: v.str = sstr(d->code); break;
	case F_D_CODE_POOL: v.str = sstr(d->code_pool); break;
	case F_D_QUANTITY: v.num = (double)d->quantity; break;
	case F_D_STARTS_AT: v.present = d->starts_at != 0; v.num = (double)d->starts_at; break;
	case F_D_EXPIRES_AT: v.num = (double)d->expires_at; break;
	case F_D_CAMPAIGN: v.str = sstr(d->campaign); break;
	case F_HOURS: v.num = (double)(d->expires_at - dc->now) / 3600.0; break;
	case F_S_ID: v.str = sstr(s->id); break;
	case F_S_REGION: v.str = sstr(s->region); break;
	case F_S_LOCALE: v.str = sstr(s->locale); break;
	case F_S_TIMEZONE: v.str = sstr(s->timezone); break;
	case F_S_ENGAGEMENT: v.num = s->engagement; break;
	case F_S_MAX_PER_DAY: v.num = s->max_per_day; break;
	case F_S_MAX_PRICE:
		v.present = s->has_max_price;
		v.num = s->interests.max_price;
		break;
	case F_S_MIN_DISCOUNT:
		v.present = s->has_min_discount_pct;
		v.num = s->interests.min_discount_pct;
		break;
	default:
		if (n->field >= F_S_BEHAV && n->field <= F_S_BEHAV_LAST) {
			int which = n->field - F_S_BEHAV;

			v.present = rule_behav_value(s->behav, which == RB_DAYS_SINCE_JOIN ?
			    rule_behav_joined(s) : 0, which, dc->now, &v.num);
			break;
		}
		v.present = 0;
		break;
	}
	return v;
}

/* 1 when list field f holds str (ASCII case-insensitive). */
static int
field_has(int f, const struct rule_dctx *dc, const struct subscriber *s, const char *str)
{
	int c;

	switch (f) {
	case F_D_TAGS: return rule_list_has(&dc->d->tags, str);
	case F_S_TAGS: return rule_list_has(&s->tags, str);
	case F_S_CATEGORIES: return rule_list_has(&s->interests.categories, str);
	case F_S_BRANDS: return rule_list_has(&s->interests.brands, str);
	case F_S_KEYWORDS: return rule_list_has(&s->interests.keywords, str);
	case F_S_CHANNELS:
		for (c = 0; c < CH_COUNT; c++)
			if (rule_ci_eq(rule_channel_name(c), str))
				return (s->channels & CH_BIT(c)) != 0;
		return 0;
	default:
		return 0;
	}
}

int
rule_cmp_num(int op, double a, double b)
{
	switch (op) {
	case RC_EQ: return a == b;
	case RC_NE: return a != b;
	case RC_LT: return a < b;
	case RC_LE: return a <= b;
	case RC_GT: return a > b;
	default: return a >= b;
	}
}

int
rule_eval_bool(const struct rule_node *n, const struct rule_dctx *dc,
    const struct subscriber *s)
{
	struct rule_val a, b;
	size_t i;

	if (dc->dv != NULL && !(n->uses & RN_SUB))
		return dc->dv[n->id];
	switch (n->kind) {
	case NK_AND:
		return rule_eval_bool(n->a, dc, s) && rule_eval_bool(n->b, dc, s);
	case NK_OR:
		return rule_eval_bool(n->a, dc, s) || rule_eval_bool(n->b, dc, s);
	case NK_NOT:
		return !rule_eval_bool(n->a, dc, s);
	case NK_BOOL:
		return n->num != 0;
	case NK_CMP:
		a = rule_eval_val(n->a, dc, s);
		b = rule_eval_val(n->b, dc, s);
		if (n->a->type == RT_NUM)
			return a.present && b.present && rule_cmp_num(n->op, a.num, b.num);
		return rule_ci_eq(a.str, b.str) == (n->op == RC_EQ);
	case NK_INLIST:
		a = rule_eval_val(n->a, dc, s);
		if (n->a->type == RT_NUM && !a.present)
			return 0;
		for (i = 0; i < n->nitems; i++)
			if (n->a->type == RT_NUM ? a.num == n->items[i]->num :
			    rule_ci_eq(a.str, n->items[i]->str))
				return 1;
		return 0;
	case NK_INFIELD:
		a = rule_eval_val(n->a, dc, s);
		return field_has(n->b->field, dc, s, a.str);
	case NK_STARTS:
		a = rule_eval_val(n->a, dc, s);
		b = rule_eval_val(n->b, dc, s);
		return rule_ci_prefix(a.str, b.str);
	case NK_CONTAINS:
		a = rule_eval_val(n->a, dc, s);
		b = rule_eval_val(n->b, dc, s);
		return rule_ci_find(a.str, b.str);
	default:
		return 0;
	}
}

/* Caches the maximal deal-only conditions below n. */
static void
fill(const struct rule_node *n, const struct rule_dctx *dc, int8_t *dv)
{
	if (n == NULL)
		return;
	if (n->type == RT_BOOL && !(n->uses & RN_SUB)) {
		dv[n->id] = (int8_t)rule_eval_bool(n, dc, NULL);
		return;
	}
	if (n->kind == NK_AND || n->kind == NK_OR || n->kind == NK_NOT) {
		fill(n->a, dc, dv);
		fill(n->b, dc, dv);
	}
}

void
rule_dctx_fill(const struct rule_set *rs, const struct deal *d, int64_t now, int8_t *dv)
{
	struct rule_dctx dc = { d, now, NULL };
	size_t i;

	for (i = 0; i < rs->n; i++)
		fill(rs->v[i]->when, &dc, dv);
}

int
rule_interested(const struct deal *d, const struct subscriber *s)
{
	const struct interests *in = &s->interests;
	const char *title = sstr(d->title);
	size_t i;
	int pos;

	pos = rule_list_has(&in->categories, sstr(d->category)) ||
	    rule_list_has(&in->brands, sstr(d->brand));
	for (i = 0; !pos && i < in->keywords.n; i++)
		pos = in->keywords.v[i] != NULL && rule_ci_find(title, in->keywords.v[i]);
	if (!pos)
		return 0;
	if (s->has_max_price && d->has_price && !(d->price <= in->max_price))
		return 0;
	if (s->has_min_discount_pct && !(d->discount_pct >= in->min_discount_pct))
		return 0;
	return 1;
}

unsigned
rule_reachable(const struct subscriber *s)
{
	unsigned m = 0;
	int c;

	for (c = 0; c < CH_COUNT; c++)
		if ((s->channels & CH_BIT(c)) && s->consent[c] > 0 &&
		    channel_contact(s, (enum channel)c) != NULL)
			m |= CH_BIT(c);
	return m;
}

unsigned
rule_held_out_h(const struct rule *r, uint64_t id_hash)
{
	unsigned m = 0;
	int c;

	if (r->holdout_bp == 0)
		return 0;
	/* Each channel its own draw, salted by its row (channel.h): SMS's salt is 0, the
	 * hash of before the channel split, so the same subscribers stay held out of
	 * SMS. */
	for (c = 0; c < CH_COUNT; c++)
		if (rule_fmix64(r->name_hash ^ id_hash ^ channel_def((enum channel)c)->
		    holdout_salt) % 10000 < r->holdout_bp)
			m |= CH_BIT(c);
	return m;
}

unsigned
rule_held_out(const struct rule *r, const struct subscriber *s)
{
	return rule_held_out_h(r, rule_fnv1a(sstr(s->id)));
}

int
rule_match_one(const struct rule *r, const struct rule_dctx *dc,
    const struct subscriber *s, unsigned reach, struct rule_match *m)
{
	unsigned ch = r->channels & reach;

	if (ch == 0)
		return 0;
	if (r->when != NULL && !rule_eval_bool(r->when, dc, s))
		return 0;
	if (!r->audience_all && !rule_interested(dc->d, s))
		return 0;
	m->rule = r;
	m->channels = ch;
	m->held_out = rule_held_out(r, s) & ch;
	return 1;
}

/* 1 unless a condition of n that reads only the deal is false. */
static int
deal_part_holds(const struct rule_node *n, const struct rule_dctx *dc)
{
	if (n == NULL)
		return 1;
	if (!(n->uses & RN_SUB))   /* whole: the deal's cache holds only whole parts */
		return rule_eval_bool(n, dc, NULL);
	if (n->kind == NK_AND)
		return deal_part_holds(n->a, dc) && deal_part_holds(n->b, dc);
	return 1;
}

int
rule_claims_deal(const struct rule *r, const struct rule_dctx *dc)
{
	return r->exclusive && deal_part_holds(r->when, dc);
}

int
rule_match(const struct rule_set *rs, const struct deal *d, const struct subscriber *s,
    int64_t now, struct rule_match *m)
{
	struct rule_dctx dc = { d, now, NULL };
	unsigned reach;
	size_t i;

	memset(m, 0, sizeof(*m));
	if (d->cancel)
		return 0;
	reach = rule_reachable(s);
	for (i = 0; i < rs->n; i++)
		if (rule_match_one(rs->v[i], &dc, s, reach, m))
			return 1;
		else if (rule_claims_deal(rs->v[i], &dc))
			return 0;
	return 0;
}

/* ---- explanation ---- */

/* The deepest condition that made n false. */
static const struct rule_node *
why_false(const struct rule_node *n, const struct rule_dctx *dc,
    const struct subscriber *s)
{
	if (n->kind == NK_AND)
		return rule_eval_bool(n->a, dc, s) ? why_false(n->b, dc, s) :
		    why_false(n->a, dc, s);
	return n;
}

static void
channel_list(char *buf, size_t size, size_t *pos, unsigned mask)
{
	int c, first = 1;

	for (c = 0; c < CH_COUNT; c++)
		if (mask & CH_BIT(c)) {
			rule_buf_printf(buf, size, pos, "%s%s", first ? "" : ",",
			    rule_channel_name(c));
			first = 0;
		}
	if (first)
		rule_buf_printf(buf, size, pos, "none");
}

size_t
rule_explain(const struct rule_set *rs, const struct deal *d,
    const struct subscriber *s, int64_t now, char *buf, size_t size)
{
	struct rule_dctx dc = { d, now, NULL };
	struct rule_match m;
	unsigned reach = rule_reachable(s);
	size_t i, pos = 0;

	if (size > 0)
		buf[0] = '\0';
	if (d->cancel) {
		rule_buf_printf(buf, size, &pos, "deal %s is a cancel: matches nobody\n",
		    sstr(d->id));
		return pos;
	}
	for (i = 0; i < rs->n; i++) {
		const struct rule *r = rs->v[i];

		rule_buf_printf(buf, size, &pos, "rule %s (priority %d): ", r->name,
		    r->priority);
		if ((r->channels & reach) == 0) {
			rule_buf_printf(buf, size, &pos, "no: no channel; rule sends ");
			channel_list(buf, size, &pos, r->channels);
			rule_buf_printf(buf, size, &pos, ", subscriber reachable on ");
			channel_list(buf, size, &pos, reach);
			rule_buf_printf(buf, size, &pos, " (channels with consent and address)\n");
		} else if (r->when != NULL && !rule_eval_bool(r->when, &dc, s)) {
			const struct rule_node *n = why_false(r->when, &dc, s);
			size_t len = n->end - n->off, k;
			int line = 1, col = 1;

			for (k = 0; k < n->off; k++) {  /* where the condition starts */
				if (r->src[k] == '\n')
					line++, col = 1;
				else if (((unsigned char)r->src[k] & 0xC0) != 0x80)
					col++;
			}
			rule_buf_printf(buf, size, &pos, "no: false at %s:%d:%d: %.*s%s\n",
			    r->file, line, col, (int)(len > 120 ? 120 : len), r->src + n->off,
			    len > 120 ? "..." : "");
		} else if (!r->audience_all && !rule_interested(d, s)) {
			rule_buf_printf(buf, size, &pos, "no: audience interested, but the deal "
			    "matches no category, brand or keyword of the subscriber, or is over "
			    "max_price or under min_discount_pct\n");
		} else {
			rule_match_one(r, &dc, s, reach, &m);
			rule_buf_printf(buf, size, &pos, "yes: send on ");
			channel_list(buf, size, &pos, m.channels);
			rule_buf_printf(buf, size, &pos, "%s\n", m.held_out ?
			    ", held out (holdout)" : "");
			break;
		}
		if (rule_claims_deal(r, &dc)) {
			rule_buf_printf(buf, size, &pos, "rule %s is exclusive and applies to "
			    "this deal: lower rules are not tried\n", r->name);
			break;
		}
	}
	return pos;
}

/* ---- ranking and the reference scan ---- */

uint64_t
rule_eng_key(double e)
{
	uint64_t u;

	memcpy(&u, &e, sizeof(u));
	return (u >> 63) ? ~u : u | (1ULL << 63);
}

int
rule_recipient_cmp(const struct rule_recipient *a, const struct rule_recipient *b)
{
	uint64_t ka, kb;

	if (a->rule->priority != b->rule->priority)
		return a->rule->priority > b->rule->priority ? -1 : 1;
	ka = rule_eng_key(a->sub->engagement);
	kb = rule_eng_key(b->sub->engagement);
	if (ka != kb)
		return ka > kb ? -1 : 1;
	return strcmp(sstr(a->sub->id), sstr(b->sub->id));
}

static int
recipient_qcmp(const void *a, const void *b)
{
	return rule_recipient_cmp(a, b);
}

size_t
rule_cut(const struct deal *d, double overbook, size_t limit, size_t n)
{
	double k;

	if (d->quantity <= 0)
		return n;
	k = ceil((double)d->quantity * overbook);
	if (limit > 0 && (double)limit < k)
		k = (double)limit;
	return k >= (double)n ? n : (size_t)k;
}

int
rule_recipients_reserve(struct rule_recipients *out, size_t n)
{
	struct rule_recipient *nv;
	size_t ncap;

	if (n <= out->cap)
		return 0;
	ncap = out->cap ? out->cap : 64;
	while (ncap < n)
		ncap *= 2;
	if (ncap > SIZE_MAX / sizeof(*nv))
		return -1;
	if ((nv = realloc(out->v, ncap * sizeof(*nv))) == NULL)
		return -1;
	out->v = nv;
	out->cap = ncap;
	return 0;
}

void
rule_recipients_init(struct rule_recipients *out)
{
	memset(out, 0, sizeof(*out));
}

int
rule_scan(const struct rule_set *rs, const struct subscriber *const *subs, size_t n,
    const struct deal *d, int64_t now, double overbook, struct rule_recipients *out,
    struct err *err)
{
	struct rule_match m;
	size_t i;

	out->n = out->matched = 0;
	if (!(overbook >= 1.0 && overbook <= 1e6))
		return err_set(err, ERR_INPUT, "bad_overbook", "overbook",
		    "overbook must be from 1 to 1000000");
	for (i = 0; i < n; i++) {
		if (!rule_match(rs, d, subs[i], now, &m))
			continue;
		if (rule_recipients_reserve(out, out->n + 1) == -1) {
			out->n = 0;
			return err_set(err, ERR_NOMEM, "no_memory", NULL,
			    "out of memory listing recipients");
		}
		out->v[out->n].sub = subs[i];
		out->v[out->n].rule = m.rule;
		out->v[out->n].channels = m.channels;
		out->v[out->n].held_out = m.held_out;
		out->n++;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), recipient_qcmp);
	out->matched = out->n;
	out->n = rule_cut(d, overbook, out->limit, out->n);
	return 0;
}

int
rule_test_recipients(const struct ridx *ix, const struct rule_set *rs,
    const struct deal *d, int64_t now, const struct strlist *ids,
    struct rule_recipients *out, struct err *err)
{
	struct rule_dctx dc = { d, now, NULL };
	struct rule_match m;
	size_t i, k;

	out->n = out->matched = 0;
	if (d->cancel)
		return 0;
	for (i = 0; i < ids->n; i++) {
		const struct subscriber *s = ridx_get(ix, ids->v[i]);
		unsigned reach;

		if (s == NULL)
			continue;
		reach = rule_reachable(s);
		if (!rule_match(rs, d, s, now, &m)) {
			/* not one of the deal's audience: the text the first rule that
			 * takes the deal would send, on a channel it can reach */
			memset(&m, 0, sizeof(m));
			for (k = 0; k < rs->n && m.rule == NULL; k++)
				if ((rs->v[k]->channels & reach) != 0 &&
				    deal_part_holds(rs->v[k]->when, &dc)) {
					m.rule = rs->v[k];
					m.channels = rs->v[k]->channels & reach;
				}
			if (m.rule == NULL)
				continue;
		}
		if (rule_recipients_reserve(out, out->n + 1) == -1) {
			out->n = 0;
			return err_set(err, ERR_NOMEM, "no_memory", NULL,
			    "out of memory listing recipients");
		}
		out->v[out->n].sub = s;
		out->v[out->n].rule = m.rule;
		out->v[out->n].channels = m.channels;
		out->v[out->n].held_out = 0;
		out->n++;
	}
	out->matched = out->n;
	return 0;
}
