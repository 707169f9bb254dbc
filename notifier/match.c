/*
 * match.c: targeting rules and the interest index, applied to one deal (stage:
 * match).
 *
 * Wraps the pure rules/ library for the daemon: owns the rule set and the index,
 * renders templates with a time-zone formatter backed by tz.c. Must never send,
 * never touch Redis, never decide admit-time questions (caps, quiet hours): those
 * belong to admit, which sees the shared state.
 */
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "clicktok.h"
#include "keys.h"
#include "log.h"
#include "match.h"
#include "rules.h"
#include "shortlink.h"
#include "subscriber.h"
#include "tz.h"

_Static_assert(RULE_VARIANTS_MAX == sizeof(((struct match_rcpt *)0)->alt) /
    sizeof(char *), "match_rcpt.alt is not RULE_VARIANTS_MAX long");


/* The built-in default text, in the variant the deal's fields allow: a template
 * language without conditionals would print "code ," or "(0% off)" otherwise.
 * Index: [has price][has discount][has code][channel]. */
#define MATCH_VARIANTS 8

/* A rule set and the runs that still read it: a reload replaces the matcher's set,
 * and the old one is freed when the last run that ranked with it ends. */
struct match_rules {
	struct rule_set *rs;
	size_t refs;                    /* the matcher's own, plus one per run */
};

struct matcher {
	struct rule_set *rules;         /* == cur->rs */
	struct match_rules *cur;
	struct rule_template *variants[MATCH_VARIANTS][CH_COUNT];
	char *default_text[CH_COUNT];   /* the library's own default, to recognise it */
	struct ridx *index;
	struct tzcache *zones;
	struct rule_recipients found;   /* reused across deals */
	char **paused;                  /* rules whose SMS template is paused */
	size_t npaused;
	double overbook;
};

/* Builds the eight variants of the default text per channel. */
static int
match_variants_init(struct matcher *m, struct err *err)
{
	const struct rule *def = rule_set_get(m->rules, 0);
	char text[256];
	int v, c;

	for (c = 0; c < CH_COUNT; c++)
		if ((m->default_text[c] = strdup(rule_template_text(rule_template(def,
		    (enum channel)c)))) == NULL)
			return err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory");
	for (v = 0; v < MATCH_VARIANTS; v++) {
		int price = v & 4, discount = v & 2, code = v & 1;

		for (c = 0; c < CH_COUNT; c++) {
			snprintf(text, sizeof(text), "{title}%s%s%s, ends {expires_local}. "
			    "{link}%s", price ? ": {price}" : "",
			    price && discount ? " ({discount_pct}% off)" : "",
			    code ? ", code {code}" : "",
			    channel_def((enum channel)c)->optout_text ? " Reply STOP to end" : "");
			m->variants[v][c] = rule_template_new(text, strlen(text), err);
			if (m->variants[v][c] == NULL)
				return -1;
		}
	}
	return 0;
}

/* The template for a recipient: the rule's own, or the default in the variant the
 * deal's fields allow. */
static const struct rule_template *
match_template(const struct matcher *m, const struct rule *r, const struct deal *d,
    enum channel ch)
{
	const struct rule_template *t = rule_template(r, ch);
	int v;

	if (strcmp(rule_template_text(t), m->default_text[ch]) != 0)
		return t;
	v = (d->has_price ? 4 : 0) | (d->discount_pct > 0 ? 2 : 0) |
	    (d->code != NULL || d->code_pool != NULL ? 1 : 0);
	return m->variants[v][ch];
}

/* Drops a reference; the last one frees the set. NULL does nothing. */
static void
match_rules_put(struct match_rules *r)
{
	if (r == NULL || --r->refs > 0)
		return;
	rule_set_free(r->rs);
	free(r);
}

static void
paused_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct matcher *
matcher_new(double overbook, struct tzcache *zones, struct err *err)
{
	struct matcher *m = calloc(1, sizeof(*m));

	if (m == NULL)
		goto oom;
	m->overbook = overbook >= 1 ? overbook : RULE_OVERBOOK_DEFAULT;
	rule_recipients_init(&m->found);
	if ((m->index = ridx_new(err)) == NULL)
		goto fail;
	m->zones = zones;
	if ((m->cur = calloc(1, sizeof(*m->cur))) == NULL)
		goto oom;
	m->cur->refs = 1;
	if ((m->rules = m->cur->rs = rule_compile(NULL, 0, NULL, err)) == NULL)
		goto fail;
	if (match_variants_init(m, err) < 0)
		goto fail;
	return m;
oom:
	err_set(err, ERR_NOMEM, "no_memory", NULL, "matcher: out of memory");
fail:
	matcher_free(m);
	return NULL;
}

void
matcher_free(struct matcher *m)
{
	int v, c;

	if (m == NULL)
		return;
	rule_recipients_free(&m->found);
	paused_free(m->paused, m->npaused);
	for (v = 0; v < MATCH_VARIANTS; v++)
		for (c = 0; c < CH_COUNT; c++)
			rule_template_free(m->variants[v][c]);
	for (c = 0; c < CH_COUNT; c++)
		free(m->default_text[c]);
	ridx_free(m->index);
	match_rules_put(m->cur);
	free(m);
}

void
matcher_set_rules(struct matcher *m, struct rule_set *rs)
{
	struct match_rules *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		/* No run can pin this set: replace in place only when none reads it. */
		if (m->cur->refs == 1) {
			rule_set_free(m->cur->rs);
			m->rules = m->cur->rs = rs;
		} else {
			log_errorx("event=rules_not_replaced err=\"out of memory\"");
			rule_set_free(rs);
		}
		return;
	}
	r->rs = rs;
	r->refs = 1;
	match_rules_put(m->cur);
	m->cur = r;
	m->rules = rs;
}

const struct rule_set *
matcher_rules(const struct matcher *m)
{
	return m->rules;
}

void
matcher_set_paused(struct matcher *m, const char *const *names, size_t n)
{
	char **v = n ? calloc(n, sizeof(*v)) : NULL;
	size_t i;

	if (n > 0 && v == NULL)
		return;
	for (i = 0; i < n; i++)
		if ((v[i] = strdup(names[i])) == NULL) {
			paused_free(v, i);
			return;
		}
	paused_free(m->paused, m->npaused);
	m->paused = v;
	m->npaused = n;
}

int
matcher_is_paused(const struct matcher *m, const char *rule)
{
	size_t i;

	for (i = 0; i < m->npaused; i++)
		if (strcmp(m->paused[i], rule) == 0)
			return 1;
	return 0;
}

void
matcher_on_change(void *arg, const struct subscriber *old_sub,
    const struct subscriber *new_sub)
{
	struct matcher *m = arg;
	struct err err;

	err_clear(&err);
	if (new_sub == NULL) {
		ridx_remove(m->index, old_sub->id);
		return;
	}
	if (ridx_put(m->index, new_sub, &err) < 0) {
		/* The old version (if any) must not stay indexed: it is about to be
		 * freed. The subscriber misses deals until its next change. */
		ridx_remove(m->index, new_sub->id);
		log_errorx("event=index_failed sub=%s err=\"%s\"", new_sub->id, err.msg);
	}
}

void
matcher_on_loaded(void *arg)
{
	struct matcher *m = arg;

	ridx_compact(m->index);
}

/* rule_fmt_local_fn: "Mon 19:00 CST" in the subscriber's zone. */
static size_t
match_fmt_local(void *arg, const char *tzname, int64_t t, char *buf, size_t size)
{
	struct matcher *m = arg;
	const struct tz *z;

	if (tzname == NULL || *tzname == '\0' ||
	    (z = tz_get(m->zones, tzname, NULL)) == NULL)
		return 0;
	return tz_format(z, t, "%a %H:%M %Z", buf, size);
}

/* The deal's recipients into m->found: the index's answer, or for a test send
 * (docs/rules.md) the named subscribers alone. */
static int
match_find(struct matcher *m, const struct rule_set *rs, const struct deal *d,
    int64_t now, struct err *err)
{
	if (d->test_to.n > 0)
		return rule_test_recipients(m->index, rs, d, now, &d->test_to, &m->found,
		    err);
	return ridx_query(m->index, rs, d, now, m->overbook, &m->found, err);
}

static int
match_push(struct match_list *l, const struct rule_recipient *rc, enum channel ch,
    char *text)
{
	if (l->n == l->cap) {
		size_t c = l->cap ? l->cap * 2 : 64;
		struct match_rcpt *v = realloc(l->v, c * sizeof(*v));
		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = c;
	}
	l->v[l->n].sub = rc->sub;
	l->v[l->n].ch = ch;
	l->v[l->n].text = text;
	l->v[l->n].rule = rule_name(rc->rule);
	l->v[l->n].rp = rc->rule;
	l->v[l->n].variant = MATCH_AB_NONE;
	l->v[l->n].nalt = 0;
	l->n++;
	return 0;
}

/* 1 when links asks for click links (both URL and a usable key). */
static int
match_links_on(const struct match_links *links)
{
	return links != NULL && links->public_url != NULL && links->public_url[0] != '\0' &&
	    links->key != NULL && links->keylen >= CLICKTOK_KEY_MIN &&
	    links->keylen <= CLICKTOK_KEY_MAX && links->entry != NULL &&
	    links->entry[0] != '\0';
}

/* Writes the push's link into buf: "<link_base>/<code>" (shortlink_for_push, the
 * code naming the subscriber's shard) when links has a link base, else the long
 * "<public_url>/c/<token>". Returns 0, or -1 (buf "") when the push id is too long
 * or buf too small. */
static int
match_click_link(const struct match_links *links, const char *sub_id, enum channel ch,
    char *buf, size_t size)
{
	char push_id[CLICKTOK_ID_MAX + 2], token[CLICKTOK_MAX + 1];
	const char *base = links->link_base != NULL && links->link_base[0] != '\0' ?
	    links->link_base : links->public_url;
	size_t ul = strlen(base);
	int n;

	buf[0] = '\0';
	n = snprintf(push_id, sizeof(push_id), "%s:%s:%s", links->entry, sub_id,
	    channel_name(ch));
	if (n < 0 || (size_t)n > CLICKTOK_ID_MAX)
		return -1;
	while (ul > 0 && base[ul - 1] == '/')
		ul--;
	if (base != links->public_url) {
		if (shortlink_for_push(links->key, links->keylen, push_id,
		    keys_shard_of(sub_id), keys_shards(), token) < 0)
			return -1;
		n = snprintf(buf, size, "%.*s/%s", (int)ul, base, token);
	} else {
		if (clicktok_make(links->key, links->keylen, push_id, token,
		    sizeof(token)) < 0)
			return -1;
		n = snprintf(buf, size, "%.*s/c/%s", (int)ul, base, token);
	}
	if (n < 0 || (size_t)n >= size) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

/* Renders one recipient's text on one channel; NULL (counted) when it cannot fit. */
static char *
match_render(struct matcher *m, const struct deal *d, const struct rule_recipient *rc,
    enum channel ch, int64_t now, const struct match_links *links,
    const struct rule_template *t, struct match_list *out, struct err *err)
{
	char code[MATCH_CODE_WIDTH + 1], link[1024 + CLICKTOK_MAX + 8];
	struct rule_render_in in;
	struct rule_text text;

	/* An A/B variant's template when given; else the rule's template in the
	 * subscriber's language, else its own or the default's variant. */
	if (t == NULL && (t = rule_template_locale(rc->rule, ch, rc->sub->locale)) == NULL)
		t = match_template(m, rc->rule, d, ch);
	memset(&in, 0, sizeof(in));
	if (match_links_on(links)) {
		if (match_click_link(links, rc->sub->id, ch, link, sizeof(link)) == 0)
			in.link = link;
		else
			log_warnx("event=click_link_failed deal=%s sub=%s err=\"push id too "
			    "long\"", d->id, rc->sub->id);
	}
	memset(code, MATCH_CODE_MARK, MATCH_CODE_WIDTH);
	code[MATCH_CODE_WIDTH] = '\0';
	in.deal = d;
	in.sub = rc->sub;
	in.code = d->code_pool != NULL ? code : NULL;
	in.now = now;
	in.fmt_local = match_fmt_local;
	in.fmt_arg = m;
	in.channel = ch;
	in.max_segments = channel_def(ch)->segments ? rule_max_segments(rc->rule) : 0;
	if (rule_render(t, &in, &text, err) < 0) {
		if (err->kind != ERR_NOMEM) {
			out->unrenderable++;
			log_warnx("event=render_failed deal=%s sub=%s rule=%s err=\"%s\"", d->id,
			    rc->sub->id, rule_name(rc->rule), err->msg);
			err_clear(err);
		}
		return NULL;
	}
	return text.s; /* ownership moves to the list */
}

/* Remembers a held-out recipient; the array doubles. Returns 0, or -1 on OOM. */
static int
match_hold(struct match_list *out, const struct rule_recipient *rc)
{
	if (out->held_out == out->held_cap) {
		size_t cap = out->held_cap ? 2 * out->held_cap : 64;
		struct match_held *h = realloc(out->held, cap * sizeof(*h));

		if (h == NULL)
			return -1;
		out->held = h;
		out->held_cap = cap;
	}
	out->held[out->held_out].sub = rc->sub;
	out->held[out->held_out].rule = rule_name(rc->rule);
	out->held[out->held_out].channels = (unsigned)rc->held_out & rc->channels;
	out->held[out->held_out].whole = ((unsigned)rc->held_out & rc->channels) ==
	    rc->channels;
	out->held_out++;
	return 0;
}

int
match_deal(struct matcher *m, const struct deal *d, int64_t now,
    struct match_list *out, struct err *err)
{
	return match_deal_links(m, d, now, NULL, out, err);
}

/* The SMS of a rule with A/B variants (docs/rules.md "A/B variants"): a test member
 * gets its variant's text; one of the rest gets every variant's text (kept until the
 * test decides which goes); a test send's recipient its variant's or the fallback's,
 * counted for no test. A text that cannot be rendered drops the recipient
 * (counted unrenderable). 0, or -1 on OOM with *err set. */
static int
match_render_ab(struct matcher *m, const struct deal *d, const struct rule_recipient *rc,
    int64_t now, const struct match_links *links, struct match_list *out,
    struct err *err)
{
	size_t n = rule_variant_count(rc->rule), k;
	int v = rule_ab(rc->rule) != NULL ? rule_ab_assign(rc->rule, d->id, rc->sub->id) : 0;
	int test_send = d->test_to.n > 0;
	char *alt[RULE_VARIANTS_MAX] = { NULL };
	struct match_rcpt *r;

	/* A test send (docs/rules.md) holds nobody back and runs no test: each member
	 * gets the variant it would get, or the fallback. */
	if (test_send && v < 0)
		v = (int)rule_ab(rc->rule)->fallback;

	for (k = 0; k < n; k++) {
		if (v >= 0 && (size_t)v != k)
			continue;
		if ((alt[k] = match_render(m, d, rc, CH_SMS, now, links,
		    rule_variant_template(rc->rule, k), out, err)) == NULL)
			goto fail;
	}
	if (match_push(out, rc, CH_SMS, v >= 0 ? alt[v] : alt[0]) < 0) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
		goto fail;
	}
	r = &out->v[out->n - 1];
	r->variant = test_send ? MATCH_AB_NONE : v >= 0 ? v : MATCH_AB_REST;
	if (v < 0) {
		memcpy(r->alt, alt, sizeof(alt));
		r->nalt = n;
	}
	return 0;
fail:
	for (k = 0; k < n; k++)
		free(alt[k]);
	return err->kind == ERR_NOMEM ? -1 : 0;
}

/* Renders rc on each of its channels into out (paused and unrenderable ones only
 * counted). 0, or -1 on OOM with *err set. */
static int
match_render_one(struct matcher *m, const struct deal *d, const struct rule_recipient *rc,
    int64_t now, const struct match_links *links, struct match_list *out,
    struct err *err)
{
	int c;

	for (c = 0; c < CH_COUNT; c++) {
		char *text;

		if (!(rc->channels & CH_BIT(c)))
			continue;
		if (c == CH_SMS && m->npaused > 0 && matcher_is_paused(m, rule_name(rc->rule))) {
			out->paused++;
			continue;
		}
		if (c == CH_SMS && rule_variant_count(rc->rule) > 0) {
			if (match_render_ab(m, d, rc, now, links, out, err) < 0)
				return -1;
			continue;
		}
		if ((text = match_render(m, d, rc, (enum channel)c, now, links, NULL, out,
		    err)) == NULL) {
			if (err->kind == ERR_NOMEM)
				return -1;
			continue;
		}
		if (match_push(out, rc, (enum channel)c, text) < 0) {
			free(text);
			return err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
		}
	}
	return 0;
}

int
match_deal_links(struct matcher *m, const struct deal *d, int64_t now,
    const struct match_links *links, struct match_list *out, struct err *err)
{
	size_t i;

	if (match_find(m, m->rules, d, now, err) < 0)
		goto fail;
	out->matched = m->found.matched;
	for (i = 0; i < m->found.n; i++) {
		struct rule_recipient rc = m->found.v[i];

		if (rc.held_out) {
			if (match_hold(out, &rc) < 0) {
				err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
				goto fail;
			}
			/* Held out of some channels: sent on the others. */
			if ((rc.channels &= ~(unsigned)rc.held_out) == 0)
				continue;
		}
		if (match_render_one(m, d, &rc, now, links, out, err) < 0)
			goto fail;
	}
	return 0;
fail:
	match_list_free(out);
	return -1;
}

void
match_list_free(struct match_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		size_t k;

		free(l->v[i].text);
		for (k = 1; k < l->v[i].nalt; k++)
			free(l->v[i].alt[k]);
	}
	free(l->v);
	free(l->held);
	memset(l, 0, sizeof(*l));
}

/* --- a deal planned in slices ------------------------------------------------------ */

/* One ranked recipient: its id is kept, not its struct, because the mirror may free
 * the struct between two slices (a change, a removal). */
struct match_entry {
	const struct rule *rule;       /* owned by run->rules, pinned */
	uint32_t id;                   /* offset of the id in run->ids */
	unsigned char channels;
};

struct match_run {
	struct matcher *m;
	struct match_rules *rules;     /* pinned: the ranking's rule pointers stay valid */
	const struct deal *d;          /* borrowed for the run's life */
	int64_t now;
	struct match_entry *v;
	size_t n, next;
	char *ids;                     /* every id, NUL-terminated, one after another */
	size_t gone;                   /* ranked, then removed from the mirror */
	size_t total;                  /* ranked in the whole audience (n: kept here) */
};

/* The channels of rc that are not held out. */
static unsigned
match_sent_channels(const struct rule_recipient *rc)
{
	return rc->channels & ~(unsigned)rc->held_out;
}

/* Copies the not-held-out part of the ranking in m->found into r (a recipient held
 * out of one channel keeps the other). 0, or -1 on OOM. */
static int
match_run_copy(struct match_run *r, const struct rule_recipients *found)
{
	size_t i, bytes = 0, off = 0;

	for (i = 0; i < found->n; i++)
		if (match_sent_channels(&found->v[i]) != 0)
			bytes += strlen(found->v[i].sub->id) + 1;
	if (bytes > UINT32_MAX)
		return -1;
	if ((r->v = calloc(found->n + 1, sizeof(*r->v))) == NULL ||
	    (r->ids = malloc(bytes + 1)) == NULL)
		return -1;
	for (i = 0; i < found->n; i++) {
		const struct rule_recipient *rc = &found->v[i];
		size_t len;

		if (match_sent_channels(rc) == 0)
			continue;
		len = strlen(rc->sub->id) + 1;
		memcpy(r->ids + off, rc->sub->id, len);
		r->v[r->n].rule = rc->rule;
		r->v[r->n].id = (uint32_t)off;
		r->v[r->n].channels = (unsigned char)match_sent_channels(rc);
		r->n++;
		off += len;
	}
	r->total = r->n;
	return 0;
}

/* The ranking in m->found split into one run per shard (runs[0 .. nshards-1], each
 * taking a reference on rules), in one pass: each run keeps its shard's part in rank
 * order, and every run's total is the whole audience's. 0, or -1 on OOM (runs then
 * freed and NULL). */
static int
match_run_split_copy(struct matcher *m, struct match_rules *rules, const struct deal *d,
    int64_t now, const struct rule_recipients *found, uint32_t nshards,
    struct match_run **runs)
{
	uint32_t *shard = found->n > 0 ? malloc(found->n * sizeof(*shard)) : NULL;
	size_t *bytes = calloc(nshards, sizeof(*bytes)), *count = calloc(nshards,
	    sizeof(*count)), *off = calloc(nshards, sizeof(*off)), i, total = 0;
	uint32_t k;
	int rv = -1;

	if ((found->n > 0 && shard == NULL) || bytes == NULL || count == NULL || off == NULL)
		goto out;
	for (i = 0; i < found->n; i++) {
		if (match_sent_channels(&found->v[i]) == 0) {
			shard[i] = nshards;     /* held out of everything: in no run */
			continue;
		}
		shard[i] = keys_shard_of(found->v[i].sub->id) % nshards;
		bytes[shard[i]] += strlen(found->v[i].sub->id) + 1;
		count[shard[i]]++;
		total++;
	}
	for (k = 0; k < nshards; k++) {
		struct match_run *r = calloc(1, sizeof(*r));

		if ((runs[k] = r) == NULL || bytes[k] > UINT32_MAX ||
		    (r->v = calloc(count[k] + 1, sizeof(*r->v))) == NULL ||
		    (r->ids = malloc(bytes[k] + 1)) == NULL)
			goto out;
		r->m = m;
		r->d = d;
		r->now = now;
		r->rules = rules;
		rules->refs++;
		r->total = total;
	}
	for (i = 0; i < found->n; i++) {
		const struct rule_recipient *rc = &found->v[i];
		struct match_run *r;
		size_t len;

		if (shard[i] == nshards)
			continue;
		r = runs[shard[i]];
		len = strlen(rc->sub->id) + 1;
		memcpy(r->ids + off[shard[i]], rc->sub->id, len);
		r->v[r->n].rule = rc->rule;
		r->v[r->n].id = (uint32_t)off[shard[i]];
		r->v[r->n].channels = (unsigned char)match_sent_channels(rc);
		r->n++;
		off[shard[i]] += len;
	}
	rv = 0;
out:
	if (rv < 0)
		for (k = 0; k < nshards; k++) {
			match_run_free(runs[k]);
			runs[k] = NULL;
		}
	free(shard);
	free(bytes);
	free(count);
	free(off);
	return rv;
}

int
match_run_new_split(struct matcher *m, const struct deal *d, int64_t now,
    size_t limit, uint32_t nshards, struct match_run **runs, struct match_list *summary,
    struct err *err)
{
	size_t i;
	int rc;

	memset(summary, 0, sizeof(*summary));
	memset(runs, 0, nshards * sizeof(*runs));
	m->found.limit = limit;
	rc = match_find(m, m->cur->rs, d, now, err);
	m->found.limit = 0;
	if (rc < 0)
		return -1;
	summary->matched = m->found.matched;
	for (i = 0; i < m->found.n; i++)
		if (m->found.v[i].held_out && match_hold(summary, &m->found.v[i]) < 0)
			goto oom;
	if (match_run_split_copy(m, m->cur, d, now, &m->found, nshards, runs) < 0)
		goto oom;
	return 0;
oom:
	err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
	match_list_free(summary);
	return -1;
}

void
match_run_rebind(struct match_run *r, const struct deal *d)
{
	r->d = d;
}

/* A run ranked with rules (a reference taken here). */
static struct match_run *
match_run_start(struct matcher *m, struct match_rules *rules, const struct deal *d,
    int64_t now, struct match_list *summary, struct err *err)
{
	struct match_run *r = calloc(1, sizeof(*r));
	size_t i;

	memset(summary, 0, sizeof(*summary));
	if (r == NULL)
		goto oom;
	r->m = m;
	r->d = d;
	r->now = now;
	r->rules = rules;
	rules->refs++;
	if (match_find(m, rules->rs, d, now, err) < 0)
		goto fail;
	summary->matched = m->found.matched;
	for (i = 0; i < m->found.n; i++)
		if (m->found.v[i].held_out && match_hold(summary, &m->found.v[i]) < 0)
			goto oom;
	if (match_run_copy(r, &m->found) < 0)
		goto oom;
	return r;
oom:
	err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
fail:
	match_list_free(summary);
	match_run_free(r);
	return NULL;
}

struct match_run *
match_run_new(struct matcher *m, const struct deal *d, int64_t now,
    struct match_list *summary, struct err *err)
{
	return match_run_start(m, m->cur, d, now, summary, err);
}

struct match_run *
match_run_new_rules(struct matcher *m, struct rule_set *rs, const struct deal *d,
    int64_t now, struct match_list *summary, struct err *err)
{
	struct match_rules *own = calloc(1, sizeof(*own));
	struct match_run *r;

	if (own == NULL) {
		rule_set_free(rs);
		memset(summary, 0, sizeof(*summary));
		err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
		return NULL;
	}
	own->rs = rs;
	own->refs = 1;
	r = match_run_start(m, own, d, now, summary, err);
	match_rules_put(own);           /* the run holds the only reference left */
	return r;
}

size_t
match_run_total(const struct match_run *r)
{
	return r->total;
}

size_t
match_run_size(const struct match_run *r)
{
	return r->n;
}

size_t
match_run_done(const struct match_run *r)
{
	return r->next;
}

size_t
match_run_gone(const struct match_run *r)
{
	return r->gone;
}

int
match_run_next(struct match_run *r, const struct match_links *links, size_t max,
    struct match_list *out, struct err *err)
{
	struct matcher *m = r->m;

	memset(out, 0, sizeof(*out));
	while (r->next < r->n) {
		const struct match_entry *e = &r->v[r->next];
		struct rule_recipient rc;
		int c, nch = 0;

		for (c = 0; c < CH_COUNT; c++)
			nch += (e->channels & CH_BIT(c)) != 0;
		if (out->n > 0 && out->n + (size_t)nch > max)
			break;
		r->next++;
		/* The subscriber as the mirror holds it now; gone: not planned. */
		if ((rc.sub = ridx_get(m->index, r->ids + e->id)) == NULL) {
			r->gone++;
			continue;
		}
		rc.rule = e->rule;
		/* A channel the subscriber dropped since the ranking is not planned. */
		rc.channels = e->channels & rc.sub->channels;
		if (rc.sub->phone == NULL)
			rc.channels &= ~CH_BIT(CH_SMS);
		if (rc.sub->dm_x == NULL)
			rc.channels &= ~CH_BIT(CH_DM);
		rc.held_out = 0;
		if (match_render_one(m, r->d, &rc, r->now, links, out, err) < 0) {
			match_list_free(out);
			return -1;
		}
	}
	return r->next < r->n;
}

void
match_run_free(struct match_run *r)
{
	if (r == NULL)
		return;
	match_rules_put(r->rules);
	free(r->v);
	free(r->ids);
	free(r);
}
