/*
 * fuzz_rule_compile.c: libFuzzer target for the rule compiler (rules/, stage: match).
 * The input is one rule file (a line "#--" splits it into two files, to reach the
 * duplicate-name check across files). Errors must be formatted without overflow; a set
 * that compiles is then evaluated: rule_match() and rule_explain() on a fixed deal and
 * subscriber, and ridx_query() must agree with rule_scan() on a small index.
 * Never writes outside its buffers; aborts only to report a disagreement.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

static char *tags[] = { "vip", "outlet-follower" };
static char *cats[] = { "laptop", "monitor" };
static char *brands[] = { "dell" };
static char *kws[] = { "xps" };
static char *dtags[] = { "business" };

static void
fixtures(struct deal *d, struct subscriber *s, int k)
{
	memset(d, 0, sizeof(*d));
	d->id = "d-1";
	d->title = "Dell XPS 13, refurbished";
	d->category = "laptop";
	d->brand = "dell";
	d->tags.v = dtags;
	d->tags.n = 1;
	d->region = "US";
	d->has_price = 1;
	d->price = 649;
	d->has_list_price = 1;
	d->list_price = 1099;
	d->discount_pct = 40.9;
	memcpy(d->currency, "USD", 4);
	d->url = "https://shop.example/d";
	d->code = "SAVE20";
	d->quantity = 2;
	d->expires_at = 1795374000;
	memset(s, 0, sizeof(*s));
	s->id = k == 0 ? "s-1" : k == 1 ? "s-2" : "s-3";
	s->phone = "+15125550100";
	s->dm_x = k == 2 ? NULL : "42";
	s->channels = CH_BIT(CH_SMS) | CH_BIT(CH_DM);
	s->consent[CH_SMS] = k == 1 ? 0 : 1;
	s->consent[CH_DM] = 1;
	s->region = k == 2 ? "CA" : "US";
	s->tags.v = tags;
	s->tags.n = (size_t)(2 - k % 2);
	s->interests.categories.v = cats;
	s->interests.categories.n = (size_t)(k == 1 ? 0 : 2);
	s->interests.brands.v = brands;
	s->interests.brands.n = 1;
	s->interests.keywords.v = kws;
	s->interests.keywords.n = 1;
	s->has_max_price = k == 0;
	s->interests.max_price = 700;
	s->engagement = k == 2 ? 0.5 : 0.9;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rule_source src[2];
	struct rule_diags dg;
	struct rule_set *rs;
	struct err e;
	struct deal d;
	struct subscriber s[3];
	const struct subscriber *sp[3];
	struct rule_recipients a, b;
	struct rule_match m;
	struct ridx *ix;
	const char *text = (const char *)data, *cut = NULL;
	char buf[512];
	size_t nsrc = 1, i, need;

	for (i = 0; i + 3 <= size; i++)
		if (memcmp(text + i, "#--", 3) == 0) {
			cut = text + i;
			break;
		}
	src[0].name = "fuzz/a.rules";
	src[0].text = text;
	src[0].len = cut ? (size_t)(cut - text) : size;
	if (cut) {
		src[1].name = "fuzz/b.rules";
		src[1].text = cut + 3;
		src[1].len = size - src[0].len - 3;
		nsrc = 2;
	}
	rule_diags_init(&dg);
	rs = rule_compile(src, nsrc, &dg, &e);
	if (rs == NULL) {
		need = rule_diags_format(&dg, buf, sizeof(buf));
		if (need < sizeof(buf) && strlen(buf) != need)
			abort();
		for (i = 0; i < dg.n; i++)
			rule_diag_format(&dg.v[i], buf, sizeof(buf));
		rule_diags_free(&dg);
		return 0;
	}
	rule_diags_free(&dg);
	ix = ridx_new(&e);
	if (ix == NULL) {
		rule_set_free(rs);
		return 0;
	}
	for (i = 0; i < 3; i++) {
		fixtures(&d, &s[i], (int)i);
		sp[i] = &s[i];
		if (ridx_put(ix, &s[i], &e) != 0)
			abort();
		rule_match(rs, &d, &s[i], 1795370400, &m);
		rule_explain(rs, &d, &s[i], 1795370400, buf, sizeof(buf));
	}
	rule_recipients_init(&a);
	rule_recipients_init(&b);
	if (ridx_query(ix, rs, &d, 1795370400, 1.5, &a, &e) == 0 &&
	    rule_scan(rs, sp, 3, &d, 1795370400, 1.5, &b, &e) == 0) {
		if (a.n != b.n || a.matched != b.matched)
			abort();
		for (i = 0; i < a.n; i++)
			if (a.v[i].sub != b.v[i].sub || a.v[i].rule != b.v[i].rule ||
			    a.v[i].channels != b.v[i].channels || a.v[i].held_out != b.v[i].held_out)
				abort();
	}
	rule_recipients_free(&a);
	rule_recipients_free(&b);
	ridx_free(ix);
	rule_set_free(rs);
	return 0;
}
