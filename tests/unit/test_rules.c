/*
 * test_rules.c: the rule language and the matcher (rules/): every construct, every
 * compile error with its line and column, the compiler-style formatter, the built-in
 * default rule, matching semantics, holdout, explanations and the reference scan.
 * Deals and subscribers are built on the stack; nothing here does I/O.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"

#define NOW 1795370400LL  /* 2026-11-22T18:00:00Z */

/* ---- fixtures ---- */

static char *deal_tags[] = { "business", "14-inch" };

static struct deal
mk_deal(void)
{
	struct deal d;

	memset(&d, 0, sizeof(d));
	d.id = "outlet-7731";
	d.title = "Latitude 7440, refurbished";
	d.category = "laptop";
	d.brand = "dell";
	d.tags.v = deal_tags;
	d.tags.n = 2;
	d.region = "US";
	d.has_price = 1;
	d.price = 649.0;
	d.has_list_price = 1;
	d.list_price = 1099.0;
	d.discount_pct = 100.0 * (1099.0 - 649.0) / 1099.0;
	memcpy(d.currency, "USD", 4);
	d.url = "https://shop.example/outlet/7731";
	d.code = "SAVE20";
	d.quantity = 0;
	d.expires_at = NOW + 2 * 3600;
	d.campaign = "black-friday";
	return d;
}

static char *sub_tags[] = { "outlet-follower" };
static char *sub_cats[] = { "laptop", "monitor" };
static char *sub_brands[] = { "dell" };
static char *sub_kws[] = { "xps" };

static struct subscriber
mk_sub(const char *id)
{
	struct subscriber s;

	memset(&s, 0, sizeof(s));
	s.id = (char *)id;
	s.phone = "+15125550100";
	s.dm_x = "123456789";
	s.channels = CH_BIT(CH_SMS) | CH_BIT(CH_DM);
	s.consent[CH_SMS] = 1767348000;
	s.consent[CH_DM] = 1767348000;
	s.timezone = "America/Chicago";
	s.quiet_start_min = -1;
	s.quiet_end_min = -1;
	s.locale = "en-US";
	s.region = "US";
	s.tags.v = sub_tags;
	s.tags.n = 1;
	s.interests.categories.v = sub_cats;
	s.interests.categories.n = 2;
	s.interests.brands.v = sub_brands;
	s.interests.brands.n = 1;
	s.interests.keywords.v = sub_kws;
	s.interests.keywords.n = 1;
	s.has_max_price = 1;
	s.interests.max_price = 800;
	s.has_min_discount_pct = 1;
	s.interests.min_discount_pct = 15;
	s.engagement = 0.72;
	return s;
}

static struct rule_set *
compile1(const char *text, struct rule_diags *dg)
{
	struct rule_source src = { "rules/t.rules", text, strlen(text) };
	struct err e;

	rule_diags_init(dg);
	return rule_compile(&src, 1, dg, &e);
}

static struct rule_set *
compile_ok(const char *text)
{
	struct rule_diags dg;
	struct rule_set *rs = compile1(text, &dg);
	char buf[4096];

	if (rs == NULL) {
		rule_diags_format(&dg, buf, sizeof(buf));
		rule_diags_free(&dg);
		fail_msg("did not compile:\n%s", buf);
	}
	rule_diags_free(&dg);
	return rs;
}

/* Compiles text, expects the first error at line:col with msg containing want. */
static void
expect_error_at(const char *text, int line, int col, const char *want, int line_of)
{
	struct rule_diags dg;
	struct rule_set *rs = compile1(text, &dg);

	if (rs != NULL) {
		rule_set_free(rs);
		fail_msg("line %d: compiled, expected \"%s\"", line_of, want);
	}
	assert_true(dg.n >= 1);
	if (dg.v[0].line != line || dg.v[0].col != col || strstr(dg.v[0].msg, want) == NULL)
		fail_msg("line %d: got %d:%d \"%s\", want %d:%d \"%s\"", line_of,
		    dg.v[0].line, dg.v[0].col, dg.v[0].msg, line, col, want);
	rule_diags_free(&dg);
}

#define expect_error(text, line, col, want) \
	expect_error_at(text, line, col, want, __LINE__)

static const struct rule *
match(const struct rule_set *rs, const struct deal *d, const struct subscriber *s,
    struct rule_match *m)
{
	return rule_match(rs, d, s, NOW, m) ? m->rule : NULL;
}

/* ---- compiling and the formatter ---- */

static const char *design_rule =
    "rule outlet_vip\n"
    "  when deal.discount_pct >= 20 and deal.category in (\"laptop\", \"monitor\")\n"
    "   and subscriber.engagement >= 0.5 and \"outlet-follower\" in subscriber.tags\n"
    "  audience interested          # or: all  (every consenting subscriber)\n"
    "  send sms, dm\n"
    "  priority 10\n"
    "  template sms \"Outlet: {title} {price} ({discount_pct}% off), code {code}, "
    "ends {expires_local}. {link} STOP to end\"\n"
    "end\n";

static void
design_example_rule_compiles_and_matches(void **state)
{
	struct rule_set *rs = compile_ok(design_rule);
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1001");
	struct rule_match m;
	const struct rule *r;

	(void)state;
	assert_int_equal(rule_set_count(rs), 1);
	assert_int_equal(rule_set_is_default(rs), 0);
	r = rule_set_get(rs, 0);
	assert_string_equal(rule_name(r), "outlet_vip");
	assert_string_equal(rule_file(r), "rules/t.rules");
	assert_int_equal(rule_line(r), 1);
	assert_int_equal(rule_priority(r), 10);
	assert_int_equal(rule_channels(r), CH_BIT(CH_SMS) | CH_BIT(CH_DM));
	assert_int_equal(rule_audience_all(r), 0);
	assert_int_equal(rule_max_segments(r), RULE_SEGMENTS_DEFAULT);
	assert_ptr_equal(rule_set_find(rs, "outlet_vip"), r);
	assert_null(rule_set_find(rs, "nope"));
	assert_non_null(strstr(rule_template_text(rule_template(r, CH_SMS)), "Outlet:"));
	assert_ptr_equal(match(rs, &d, &s, &m), r);
	assert_int_equal(m.channels, CH_BIT(CH_SMS) | CH_BIT(CH_DM));
	assert_int_equal(m.held_out, 0);
	s.engagement = 0.4;
	assert_null(match(rs, &d, &s, &m));
	assert_null(m.rule);
	rule_set_free(rs);
}

static void
unknown_field_error_names_line_and_column(void **state)
{
	const char *text = "rule vip\n  send sms\n  when deal.discount_pct >= 20 and "
	    "deal.colour = \"red\"\nend\n";
	struct rule_diags dg;
	struct rule_set *rs = compile1(text, &dg);
	char buf[512];
	size_t n;

	(void)state;
	assert_null(rs);
	assert_int_equal(dg.n, 1);
	assert_int_equal(dg.v[0].line, 3);
	assert_int_equal(dg.v[0].col, 36);
	assert_string_equal(dg.v[0].msg, "unknown field 'deal.colour'");
	n = rule_diags_format(&dg, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf,
	    "rules/t.rules:3:36: error: unknown field 'deal.colour'\n"
	    "  when deal.discount_pct >= 20 and deal.colour = \"red\"\n"
	    "                                   ^\n");
	/* a short buffer is cut but still terminated, and the needed length returned */
	assert_int_equal(rule_diags_format(&dg, buf, 10), n);
	assert_int_equal(strlen(buf), 9);
	rule_diags_free(&dg);
}

static void
unknown_field_suggests_a_close_name(void **state)
{
	(void)state;
	expect_error("rule a send sms when deal.categry = \"x\" end", 1, 22,
	    "unknown field 'deal.categry'; did you mean 'deal.category'?");
	expect_error("rule a send sms when price < 3 end", 1, 22,
	    "did you mean 'deal.price'?");
	expect_error("rule a send sms when subscriber.max_price < 3 end", 1, 22,
	    "unknown field 'subscriber.max_price'");
}

static void
caret_keeps_tabs_and_counts_characters(void **state)
{
	const char *text = "rule a\n\tsend sms\n\ttemplate sms \"€€ {nope} STOP\"\nend\n";
	struct rule_diags dg;
	char buf[512];

	(void)state;
	assert_null(compile1(text, &dg));
	assert_int_equal(dg.v[0].line, 3);
	assert_int_equal(dg.v[0].col, 19);
	rule_diag_format(&dg.v[0], buf, sizeof(buf));
	assert_non_null(strstr(buf, "\n\ttemplate sms \"€€ {nope} STOP\"\n\t                 ^\n"));
	rule_diags_free(&dg);
}

static void
empty_input_gives_the_default_rule(void **state)
{
	struct rule_source src[2] = {
		{ "rules/a.rules", "# nothing here yet\n\n", 20 },
		{ "rules/b.rules", "", 0 },
	};
	struct rule_set *rs;
	struct err e;
	const struct rule *r;

	(void)state;
	rs = rule_compile(NULL, 0, NULL, &e);
	assert_non_null(rs);
	assert_int_equal(rule_set_is_default(rs), 1);
	assert_int_equal(rule_set_count(rs), 1);
	r = rule_set_get(rs, 0);
	assert_string_equal(rule_name(r), "default");
	assert_int_equal(rule_audience_all(r), 0);
	assert_int_equal(rule_channels(r), CH_BIT(CH_SMS) | CH_BIT(CH_DM));
	assert_non_null(strstr(rule_template_text(rule_template(r, CH_SMS)), "STOP"));
	assert_null(rule_set_get(rs, 1));
	rule_set_free(rs);
	rs = rule_compile(src, 2, NULL, &e);
	assert_non_null(rs);
	assert_int_equal(rule_set_is_default(rs), 1);
	rule_set_free(rs);
	rule_set_free(NULL);
}

static void
default_rule_sends_to_interested_subscribers(void **state)
{
	struct rule_set *rs = rule_compile(NULL, 0, NULL, NULL);
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1");
	struct rule_match m;
	char *hp[] = { "hp" }, *none[] = { "tablet" }, *kw[] = { "LATITUDE" };

	(void)state;
	assert_non_null(match(rs, &d, &s, &m));  /* category laptop */
	s.interests.categories.v = none;
	s.interests.categories.n = 1;
	assert_non_null(match(rs, &d, &s, &m));  /* brand dell */
	s.interests.brands.v = hp;
	assert_null(match(rs, &d, &s, &m));      /* keyword xps not in the title */
	s.interests.keywords.v = kw;
	assert_non_null(match(rs, &d, &s, &m));  /* "LATITUDE" in "Latitude 7440" */
	s.interests.max_price = 600;
	assert_null(match(rs, &d, &s, &m));      /* 649 > max_price */
	d.has_price = 0;
	assert_non_null(match(rs, &d, &s, &m));  /* no price: no bound */
	s.interests.min_discount_pct = 50;
	assert_null(match(rs, &d, &s, &m));      /* 40.9% < 50% */
	s.has_min_discount_pct = 0;
	assert_non_null(match(rs, &d, &s, &m));
	assert_int_equal(rule_interested(&d, &s), 1);
	rule_set_free(rs);
}

static void
channels_need_consent_and_an_address(void **state)
{
	struct rule_set *rs = rule_compile(NULL, 0, NULL, NULL);
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1");
	struct rule_match m;

	(void)state;
	s.consent[CH_DM] = 0;
	assert_non_null(match(rs, &d, &s, &m));
	assert_int_equal(m.channels, CH_BIT(CH_SMS));
	s.phone = NULL;
	assert_null(match(rs, &d, &s, &m));
	s.phone = "+15125550100";
	s.channels = CH_BIT(CH_DM);
	assert_null(match(rs, &d, &s, &m));  /* consent for sms, but sms not chosen */
	assert_int_equal(rule_reachable(&s), 0);
	rule_set_free(rs);
}

static void
highest_priority_matching_rule_picks_channels_and_template(void **state)
{
	struct rule_set *rs = compile_ok(
	    "rule low send sms, dm priority 1 audience all end\n"
	    "rule high\n send sms priority 50 audience all\n"
	    " template sms \"HIGH {title} STOP\"\nend\n"
	    "rule same_low send dm priority 1 audience all end\n");
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1");
	struct rule_match m;

	(void)state;
	assert_string_equal(rule_name(rule_set_get(rs, 0)), "high");
	assert_string_equal(rule_name(rule_set_get(rs, 1)), "low");       /* file order */
	assert_string_equal(rule_name(rule_set_get(rs, 2)), "same_low");
	assert_string_equal(rule_name(match(rs, &d, &s, &m)), "high");
	assert_int_equal(m.channels, CH_BIT(CH_SMS));
	assert_string_equal(rule_template_text(rule_template(m.rule, CH_SMS)),
	    "HIGH {title} STOP");
	/* no sms consent: "high" leaves no channel, so the next rule decides */
	s.consent[CH_SMS] = 0;
	assert_string_equal(rule_name(match(rs, &d, &s, &m)), "low");
	assert_int_equal(m.channels, CH_BIT(CH_DM));
	rule_set_free(rs);
}

static void
audience_all_ignores_interests_and_interested_needs_them(void **state)
{
	struct rule_set *rs = compile_ok(
	    "rule clearance when deal.campaign = \"clearance\" audience all send sms end\n"
	    "rule picky when deal.campaign = \"picky\" audience interested send sms end\n");
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1");
	struct rule_match m;
	char *none[] = { "zzz" };

	(void)state;
	s.interests.categories.v = s.interests.brands.v = s.interests.keywords.v = none;
	s.interests.categories.n = s.interests.brands.n = s.interests.keywords.n = 1;
	d.campaign = "clearance";
	assert_string_equal(rule_name(match(rs, &d, &s, &m)), "clearance");
	d.campaign = "picky";
	assert_null(match(rs, &d, &s, &m));
	rule_set_free(rs);
}

/* One rule per construct; each row: condition, then whether it holds for the
 * fixtures (deal laptop/dell/US/$649/40.9%, subscriber US engagement 0.72). */
static void
every_expression_construct_evaluates(void **state)
{
	static const struct {
		const char *cond;
		int want;
	} rows[] = {
		{ "true", 1 }, { "false", 0 }, { "not false", 1 }, { "not not true", 1 },
		{ "deal.price = 649", 1 }, { "deal.price == 649", 1 }, { "deal.price != 649", 0 },
		{ "deal.price <> 649", 0 },
		{ "deal.price < 650", 1 }, { "deal.price <= 649", 1 }, { "deal.price > 649", 0 },
		{ "deal.price >= 649.5", 0 }, { "deal.list_price > deal.price", 1 },
		{ "deal.discount_pct >= 40.9", 1 }, { "deal.quantity = 0", 1 },
		{ "deal.quantity > -1", 1 },
		{ "deal.category = \"LAPTOP\"", 1 }, { "deal.region = \"us\"", 1 },
		{ "deal.category != \"laptop\"", 0 },
		{ "deal.category in (\"monitor\", \"laptop\")", 1 },
		{ "deal.category not in (\"monitor\", \"laptop\")", 0 },
		{ "deal.price in (1, 649)", 1 }, { "deal.price not in (1, 2)", 1 },
		{ "\"business\" in deal.tags", 1 }, { "\"BUSINESS\" in deal.tags", 1 },
		{ "\"gaming\" not in deal.tags", 1 },
		{ "\"outlet-follower\" in subscriber.tags", 1 },
		{ "deal.category in subscriber.interests.categories", 1 },
		{ "deal.brand in subscriber.interests.brands", 1 },
		{ "\"xps\" in subscriber.interests.keywords", 1 },
		{ "\"sms\" in subscriber.channels", 1 }, { "\"SMS\" in subscriber.channels", 1 },
		{ "\"fax\" in subscriber.channels", 0 },
		{ "deal.title starts_with \"latitude\"", 1 },
		{ "deal.title starts_with \"7440\"", 0 },
		{ "deal.title contains \"REFURB\"", 1 }, { "deal.title contains \"\"", 1 },
		{ "deal.url starts_with \"https://\"", 1 },
		{ "subscriber.region = deal.region", 1 },
		{ "subscriber.engagement >= 0.5", 1 }, { "0.8 > subscriber.engagement", 1 },
		{ "deal.price <= subscriber.interests.max_price", 1 },
		{ "subscriber.interests.min_discount_pct < deal.discount_pct", 1 },
		{ "subscriber.max_per_day = 0", 1 }, { "subscriber.id starts_with \"s-\"", 1 },
		{ "subscriber.locale = \"en-us\"", 1 },
		{ "subscriber.timezone contains \"chicago\"", 1 },
		{ "hours_until_expiry <= 2", 1 }, { "hours_until_expiry > 1.5", 1 },
		{ "deal.expires_at - 1 > 0", -1 },  /* no arithmetic: a syntax error */
		{ "deal.code = \"save20\"", 1 }, { "deal.code_pool = \"\"", 1 },
		{ "deal.currency = \"usd\"", 1 }, { "deal.campaign = \"black-friday\"", 1 },
		{ "deal.id = \"outlet-7731\"", 1 }, { "deal.starts_at > 0", 0 },
		{ "not deal.starts_at > 0", 1 },
		{ "deal.price > 1 and deal.price < 2 or deal.price = 649", 1 },
		{ "deal.price > 1 and (deal.price < 2 or deal.price = 649)", 1 },
		{ "(deal.price < 2 or deal.price > 600) and not (deal.brand = \"hp\")", 1 },
		{ "deal.price < 2 or deal.price > 1 and deal.price < 3", 0 },
	};
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1");
	struct rule_match m;
	char text[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct rule_diags dg;
		struct rule_set *rs;

		snprintf(text, sizeof(text), "rule r\n  when %s\n  audience all\n  send sms\nend\n",
		    rows[i].cond);
		rs = compile1(text, &dg);
		if (rows[i].want < 0) {
			assert_null(rs);
			rule_diags_free(&dg);
			continue;
		}
		if (rs == NULL)
			fail_msg("%s: %s", rows[i].cond, dg.n ? dg.v[0].msg : "?");
		if (rule_match(rs, &d, &s, NOW, &m) != rows[i].want)
			fail_msg("%s: want %d", rows[i].cond, rows[i].want);
		rule_diags_free(&dg);
		rule_set_free(rs);
	}
}

static void
comparisons_with_an_absent_number_are_false(void **state)
{
	struct rule_set *rs = compile_ok(
	    "rule a when deal.price < 100 or deal.price >= 100 or deal.price != 5 "
	    "or deal.price in (1, 2) audience all send sms end");
	struct rule_set *rs2 = compile_ok(
	    "rule b when not deal.price < 100 audience all send sms end");
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1");
	struct rule_match m;

	(void)state;
	d.has_price = 0;
	assert_null(match(rs, &d, &s, &m));
	assert_non_null(match(rs2, &d, &s, &m));
	rule_set_free(rs);
	rule_set_free(rs2);
}

static void
cancel_deal_matches_nobody(void **state)
{
	struct rule_set *rs = rule_compile(NULL, 0, NULL, NULL);
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1");
	struct rule_match m;
	char buf[256];

	(void)state;
	d.cancel = 1;
	assert_null(match(rs, &d, &s, &m));
	rule_explain(rs, &d, &s, NOW, buf, sizeof(buf));
	assert_non_null(strstr(buf, "cancel"));
	rule_set_free(rs);
}

static void
clauses_set_segments_holdout_and_priority(void **state)
{
	struct rule_set *rs = compile_ok(
	    "rule a\n  send dm\n  segments 2\n  holdout 2.5%\n  priority 1000000\n"
	    "  template dm \"{{literal}} {title}\"\nend\n");
	const struct rule *r = rule_set_get(rs, 0);

	(void)state;
	assert_int_equal(rule_max_segments(r), 2);
	assert_int_equal(rule_holdout_bp(r), 250);
	assert_int_equal(rule_priority(r), 1000000);
	assert_int_equal(rule_audience_all(r), 0);  /* interested by default */
	assert_string_equal(rule_template_text(rule_template(r, CH_DM)),
	    "{{literal}} {title}");
	assert_null(rule_template(r, (enum channel)CH_COUNT));
	rule_set_free(rs);
}

/* ---- holdout ---- */

static uint64_t
ref_holdout_hash(const char *a, const char *b)
{
	uint64_t ha = 0xcbf29ce484222325ULL, hb = 0xcbf29ce484222325ULL, h;

	for (; *a; a++)
		ha = (ha ^ (unsigned char)*a) * 0x100000001b3ULL;
	for (; *b; b++)
		hb = (hb ^ (unsigned char)*b) * 0x100000001b3ULL;
	h = ha ^ hb;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static void
holdout_is_stable_and_close_to_its_share(void **state)
{
	const char *text = "rule ho audience all send sms holdout 10% end\n";
	struct rule_set *rs = compile_ok(text), *rs2 = compile_ok(text);
	struct deal d = mk_deal();
	struct rule_match m, m2;
	char id[32];
	int i, held = 0, n = 20000;

	(void)state;
	assert_int_equal(rule_holdout_hash("ho", "s-1"), ref_holdout_hash("ho", "s-1"));
	for (i = 0; i < n; i++) {
		struct subscriber s;

		snprintf(id, sizeof(id), "s-%d", i);
		s = mk_sub(id);
		assert_int_equal(rule_match(rs, &d, &s, NOW, &m), 1);
		assert_int_equal(rule_match(rs2, &d, &s, NOW + 999, &m2), 1);
		assert_int_equal(m.held_out, m2.held_out);  /* stable across loads */
		assert_int_equal(m.held_out, rule_held_out(m.rule, &s) & m.channels);
		assert_int_equal(m.held_out, ref_holdout_hash("ho", id) % 10000 < 1000);
		held += m.held_out;
	}
	/* 10% ± 1% of 20000 (the binomial sd is 0.2%) */
	assert_in_range(held, 1800, 2200);
	rule_set_free(rs);
	rule_set_free(rs2);
	rs = compile_ok("rule none audience all send sms holdout 0% end\n"
	    "rule all2 audience all send dm holdout 100% end");
	for (i = 0; i < 200; i++) {
		struct subscriber s;

		snprintf(id, sizeof(id), "x%d", i);
		s = mk_sub(id);
		assert_int_equal(rule_held_out(rule_set_find(rs, "none"), &s), 0);
		assert_int_equal(rule_held_out(rule_set_find(rs, "all2"), &s),
		    CH_BIT(CH_SMS) | CH_BIT(CH_DM));
	}
	rule_set_free(rs);
}

/* The hash of ref_holdout_hash with x XORed in before the finaliser. */
static uint64_t
ref_holdout_hash_salted(const char *a, const char *b, uint64_t x)
{
	uint64_t ha = 0xcbf29ce484222325ULL, hb = 0xcbf29ce484222325ULL, h;

	for (; *a; a++)
		ha = (ha ^ (unsigned char)*a) * 0x100000001b3ULL;
	for (; *b; b++)
		hb = (hb ^ (unsigned char)*b) * 0x100000001b3ULL;
	h = ha ^ hb ^ x;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Each channel draws its own holdout: SMS keeps the hash of before the split, DM
 * salts it, so about a quarter of a 50% rule's two-channel subscribers are held out of
 * SMS only, a quarter of DM only, a quarter of both. */
static void
holdout_is_drawn_per_channel(void **state)
{
	struct rule_set *rs = compile_ok("rule ho audience all send sms, dm holdout 50% end\n");
	struct deal d = mk_deal();
	struct rule_match m;
	char id[32];
	int i, only_sms = 0, only_dm = 0, both = 0, n = 20000;

	(void)state;
	assert_int_equal(rule_holdout_hash_ch("ho", "s-1", CH_SMS),
	    ref_holdout_hash("ho", "s-1"));
	assert_int_equal(rule_holdout_hash_ch("ho", "s-1", CH_DM),
	    ref_holdout_hash_salted("ho", "s-1", RULE_HOLDOUT_DM_SALT));
	for (i = 0; i < n; i++) {
		struct subscriber s;
		unsigned want = 0;

		snprintf(id, sizeof(id), "s-%d", i);
		s = mk_sub(id);
		assert_int_equal(rule_match(rs, &d, &s, NOW, &m), 1);
		if (ref_holdout_hash("ho", id) % 10000 < 5000)
			want |= CH_BIT(CH_SMS);
		if (ref_holdout_hash_salted("ho", id, RULE_HOLDOUT_DM_SALT) % 10000 < 5000)
			want |= CH_BIT(CH_DM);
		assert_int_equal((unsigned)m.held_out, want);
		only_sms += want == CH_BIT(CH_SMS);
		only_dm += want == CH_BIT(CH_DM);
		both += want == (CH_BIT(CH_SMS) | CH_BIT(CH_DM));
		/* a subscriber on SMS only is held out of SMS only, or not at all */
		s.channels = CH_BIT(CH_SMS);
		assert_int_equal(rule_match(rs, &d, &s, NOW, &m), 1);
		assert_int_equal((unsigned)m.held_out, want & CH_BIT(CH_SMS));
	}
	assert_in_range(only_sms, 4600, 5400);
	assert_in_range(only_dm, 4600, 5400);
	assert_in_range(both, 4600, 5400);
	rule_set_free(rs);
}

/* ---- explanations ---- */

static void
explain_names_the_failing_condition(void **state)
{
	struct rule_set *rs = compile_ok(
	    "rule vip\n  when deal.price < 900\n   and subscriber.engagement >= 0.9\n"
	    "  send sms\n  priority 5\nend\n"
	    "rule dm_only send dm priority 4 audience all end\n"
	    "rule fallback send sms end\n");
	struct deal d = mk_deal();
	struct subscriber s = mk_sub("s-1");
	char buf[2048];
	size_t n;

	(void)state;
	s.consent[CH_DM] = 0;
	n = rule_explain(rs, &d, &s, NOW, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_non_null(strstr(buf, "rule vip (priority 5): no: false at rules/t.rules:3:8: "
	    "subscriber.engagement >= 0.9\n"));
	assert_non_null(strstr(buf, "rule dm_only (priority 4): no: no channel; rule sends "
	    "dm, subscriber reachable on sms"));
	assert_non_null(strstr(buf, "rule fallback (priority 0): yes: send on sms\n"));
	assert_true(rule_explain(rs, &d, &s, NOW, buf, 8) == n);
	assert_int_equal(strlen(buf), 7);
	rule_set_free(rs);
}

/* ---- the reference scan ---- */

static void
scan_ranks_by_priority_engagement_then_id_and_cuts_by_quantity(void **state)
{
	struct rule_set *rs = compile_ok(
	    "rule vip when subscriber.engagement >= 0.9 audience all send sms priority 9 end\n"
	    "rule rest audience all send sms end\n");
	struct subscriber s[6];
	const struct subscriber *sp[6];
	static const char *ids[6] = { "s-5", "s-4", "s-3", "s-2", "s-1", "s-0" };
	static const double eng[6] = { 0.95, 0.5, 0.99, 0.5, 0.1, 0.95 };
	struct rule_recipients out;
	struct deal d = mk_deal();
	struct err e;
	int i;

	(void)state;
	for (i = 0; i < 6; i++) {
		s[i] = mk_sub(ids[i]);
		s[i].engagement = eng[i];
		sp[i] = &s[i];
	}
	rule_recipients_init(&out);
	assert_int_equal(rule_scan(rs, sp, 6, &d, NOW, RULE_OVERBOOK_DEFAULT, &out, &e), 0);
	assert_int_equal(out.n, 6);
	assert_int_equal(out.matched, 6);
	/* vip: s-3 (0.99), s-0 and s-5 (0.95, id order); rest: s-2, s-4 (0.5), s-1 */
	assert_string_equal(out.v[0].sub->id, "s-3");
	assert_string_equal(out.v[1].sub->id, "s-0");
	assert_string_equal(out.v[2].sub->id, "s-5");
	assert_string_equal(out.v[3].sub->id, "s-2");
	assert_string_equal(out.v[4].sub->id, "s-4");
	assert_string_equal(out.v[5].sub->id, "s-1");
	assert_string_equal(rule_name(out.v[2].rule), "vip");
	assert_string_equal(rule_name(out.v[3].rule), "rest");
	d.quantity = 2;  /* ceil(2 * 1.5) = 3 */
	assert_int_equal(rule_scan(rs, sp, 6, &d, NOW, RULE_OVERBOOK_DEFAULT, &out, &e), 0);
	assert_int_equal(out.n, 3);
	assert_int_equal(out.matched, 6);
	assert_string_equal(out.v[2].sub->id, "s-5");
	d.quantity = 3;  /* ceil(3 * 1.1) = 4 */
	assert_int_equal(rule_scan(rs, sp, 6, &d, NOW, 1.1, &out, &e), 0);
	assert_int_equal(out.n, 4);
	/* A share's cut below the deal's own takes the top of the same ranking; one
	 * above it changes nothing, nor does one on an unlimited deal. */
	out.limit = 2;
	assert_int_equal(rule_scan(rs, sp, 6, &d, NOW, 1.1, &out, &e), 0);
	assert_int_equal(out.n, 2);
	assert_int_equal(out.matched, 6);
	assert_string_equal(out.v[0].sub->id, "s-3");
	assert_string_equal(out.v[1].sub->id, "s-0");
	out.limit = 10;
	assert_int_equal(rule_scan(rs, sp, 6, &d, NOW, 1.1, &out, &e), 0);
	assert_int_equal(out.n, 4);
	d.quantity = 0;
	out.limit = 2;
	assert_int_equal(rule_scan(rs, sp, 6, &d, NOW, 1.1, &out, &e), 0);
	assert_int_equal(out.n, 6);
	out.limit = 0;
	d.quantity = 3;
	assert_int_equal(rule_scan(rs, sp, 6, &d, NOW, 0.5, &out, &e), -1);
	assert_int_equal(e.kind, ERR_INPUT);
	assert_int_equal(out.n, 0);
	rule_recipients_free(&out);
	rule_recipients_free(&out);
	rule_recipients_free(NULL);
	rule_set_free(rs);
}

/* ---- every compile error, with line and column ---- */

static void
type_errors_name_line_and_column(void **state)
{
	(void)state;
	expect_error("rule a send sms\n when deal.price = \"cheap\" end", 2, 20,
	    "cannot compare 'deal.price' (a number) with \"cheap\" (a string)");
	expect_error("rule a send sms\n when \"x\" = deal.quantity end", 2, 13,
	    "cannot compare \"x\" (a string) with 'deal.quantity' (a number)");
	expect_error("rule a send sms\n when deal.brand < \"m\" end", 2, 18,
	    "'<' compares numbers, and 'deal.brand' (a string) cannot be ordered");
	expect_error("rule a send sms\n when deal.price end", 2, 7,
	    "a condition must be true or false; 'deal.price' (a number) is not");
	expect_error("rule a send sms\n when deal.price > 1 and deal.brand end", 2, 26,
	    "'and' needs a condition on each side; 'deal.brand' (a string) is not one");
	expect_error("rule a send sms\n when not deal.price end", 2, 11,
	    "'not' needs a condition; 'deal.price' (a number) is not one");
	expect_error("rule a send sms\n when deal.price in (1, \"2\") end", 2, 25,
	    "list item \"2\" (a string) does not match 'deal.price' (a number)");
	expect_error("rule a send sms\n when deal.tags in (\"x\") end", 2, 7,
	    "'in' needs one value on its left; 'deal.tags' (a list) is not");
	expect_error("rule a send sms\n when \"x\" in deal.brand end", 2, 14,
	    "the right of 'in' must be a list field");
	expect_error("rule a send sms\n when deal.price in subscriber.tags end", 2, 7,
	    "subscriber.tags holds strings; 'deal.price' (a number) cannot be in it");
	expect_error("rule a send sms\n when subscriber.tags contains \"vip\" end", 2, 7,
	    "'contains' works on text; to test a list write \"x\" in subscriber.tags");
	expect_error("rule a send sms\n when deal.title starts_with 3 end", 2, 30,
	    "'starts_with' needs text on both sides; 3 (a number) is not text");
	expect_error("rule a send sms\n when deal.tags = \"x\" end", 2, 7,
	    "cannot compare 'deal.tags' (a list) with '='");
	expect_error("rule a send sms\n when (deal.price > 1) = true end", 2, 24,
	    "cannot compare conditions with '='");
}

static void
clause_errors_name_line_and_column(void **state)
{
	(void)state;
	expect_error("rule a\n send sms, email\nend", 2, 12,
	    "unknown channel 'email' (channels: sms, dm)");
	expect_error("rule a\n send sms, sms\nend", 2, 12, "channel 'sms' listed twice");
	expect_error("rule a\n send sms\n template fax \"x\"\nend", 3, 11,
	    "unknown channel 'fax'");
	expect_error("rule a\n send sms\n template dm \"hi\"\nend", 3, 2,
	    "template for 'dm' but rule 'a' does not send dm");
	expect_error("rule a\n send sms\n template sms \"Deal {title}!\"\nend", 3, 15,
	    "sms template has no opt-out words");
	expect_error("rule a\n send sms\n template sms \"x STOP\"\n template sms \"y STOP\"\n"
	    "end", 4, 2, "duplicate template for 'sms' in rule 'a'");
	expect_error("rule a\n when true\n when false\n send sms\nend", 3, 2,
	    "duplicate 'when' in rule 'a'; join the conditions with 'and'");
	expect_error("rule a\n send sms\n send dm\nend", 3, 2, "duplicate 'send' in rule 'a'");
	expect_error("rule a\n audience all\n audience all\n send sms\nend", 3, 2,
	    "duplicate 'audience'");
	expect_error("rule a\n audience everyone\n send sms\nend", 2, 11,
	    "audience must be 'interested' or 'all', not 'everyone'");
	expect_error("rule a\n when true\nend", 1, 6,
	    "rule 'a' has no 'send' clause; add e.g. 'send sms'");
	expect_error("rule a\n send sms\n priority 1.5\nend", 3, 11,
	    "priority must be a whole number from 0 to 1000000");
	expect_error("rule a\n send sms\n priority -1\nend", 3, 11,
	    "priority must be a whole number from 0 to 1000000");
	expect_error("rule a\n send sms\n priority high\nend", 3, 11,
	    "expected a whole number after 'priority', found 'high'");
	expect_error("rule a\n send sms\n segments 11\nend", 3, 11,
	    "segments must be a whole number from 1 to 10");
	expect_error("rule a\n send sms\n holdout 101%\nend", 3, 10,
	    "holdout must be from 0% to 100%");
	expect_error("rule a\n send sms\n holdout 5\nend", 4, 1,
	    "expected '%' after the holdout share, found 'end'");
	expect_error("rule a\n send sms\n holdout \"5%\"\nend", 3, 10,
	    "expected a share like 5% after 'holdout', found a string");
	expect_error("rule a\n send sms\n color red\nend", 3, 2,
	    "expected a clause (when, audience, send, priority, template, holdout, "
	    "segments, exclusive, variant, test) or 'end', found 'color'");
}

static void
duplicate_rule_name_is_an_error_across_files(void **state)
{
	struct rule_source src[2] = {
		{ "rules/a.rules", "rule vip send sms end\n", 22 },
		{ "rules/b.rules", "\n  rule vip send dm end\n", 23 },
	};
	struct rule_diags dg;
	struct err e;

	(void)state;
	rule_diags_init(&dg);
	assert_null(rule_compile(src, 2, &dg, &e));
	assert_int_equal(dg.n, 1);
	assert_string_equal(dg.v[0].file, "rules/b.rules");
	assert_int_equal(dg.v[0].line, 2);
	assert_int_equal(dg.v[0].col, 8);
	assert_string_equal(dg.v[0].msg,
	    "duplicate rule name 'vip'; first defined at rules/a.rules:1:6");
	assert_int_equal(e.kind, ERR_INPUT);
	assert_string_equal(e.code, "rules_invalid");
	assert_string_equal(e.msg, "rules/b.rules:2:8: duplicate rule name 'vip'; first "
	    "defined at rules/a.rules:1:6");
	rule_diags_free(&dg);
}

static void
template_errors_point_inside_the_string(void **state)
{
	(void)state;
	expect_error("rule a\n send dm\n template dm \"Hi {colour}\"\nend", 3, 18,
	    "unknown template placeholder '{colour}' (known: {title} {price} "
	    "{list_price} {discount_pct} {code} {expires_local} {link} {brand})");
	/* escapes take two source characters */
	expect_error("rule a\n send dm\n template dm \"\\\"q\\\" {x}\"\nend", 3, 21,
	    "unknown template placeholder '{x}'");
	expect_error("rule a\n send dm\n template dm \"50% {title\"\nend", 3, 19,
	    "unterminated placeholder in template");
	expect_error("rule a\n send dm\n template dm \"a } b\"\nend", 3, 17,
	    "unmatched '}' in template; write '}}' for a literal brace");
}

static void
lexical_errors_name_line_and_column(void **state)
{
	char big[RULE_STRING_MAX + 64], many[40];

	(void)state;
	expect_error("rule a\n when deal.brand = \"dell\nend", 2, 20,
	    "unterminated string; close it with '\"' on the same line");
	expect_error("rule a\n when deal.brand = \"de\\ql\" send sms end", 2, 23,
	    "unknown escape in string; use \\\" \\\\ \\n or \\t, not 'q'");
	expect_error("rule a\n when deal.brand = \"d\x01\" send sms end", 2, 22,
	    "control character in string (byte 0x01)");
	expect_error("rule a\n when deal.brand = \"d\xff\" send sms end", 2, 22,
	    "invalid UTF-8 in string (byte 0xff)");
	expect_error("rule a\n send sms\n when deal.price > $5\nend", 3, 20,
	    "unexpected character '$'");
	expect_error("rule a\n send sms\n when ! true\nend", 3, 7,
	    "unexpected character; write 'not' or '!=' '!'");
	expect_error("rule a send sms when deal.price > 1234567890123456 end", 1, 35,
	    "number has more than 15 digits");
	expect_error("rule a send sms when deal.price > 12abc end", 1, 35,
	    "malformed number; unexpected 'a'");
	expect_error("rule a send sms when deal.price > \xc3\xa9 end", 1, 35,
	    "unexpected character (byte 0xc3)");
	memset(big, 0, sizeof(big));
	memcpy(big, "rule a send dm template dm \"", 28);
	memset(big + 28, 'x', RULE_STRING_MAX + 1);
	memcpy(big + 28 + RULE_STRING_MAX + 1, "\" end", 5);
	expect_error(big, 1, 28, "string longer than 2048 bytes");
	memset(many, 'n', sizeof(many));
	snprintf(big, sizeof(big), "rule %.30s%.30s%.10s send sms end", many, many, many);
	expect_error(big, 1, 6, "name longer than 64 characters");
}

static void
syntax_errors_name_line_and_column(void **state)
{
	char deep[600], chain[8192];
	size_t i, n;

	(void)state;
	expect_error("rule a\n send sms\n when (deal.price > 1\nend", 4, 1,
	    "expected ')' to close the '(' at 3:7, found 'end'");
	expect_error("rule a\n send sms\n when deal.price >\nend", 4, 1,
	    "expected a field, a string, a number or '(', found 'end'");
	expect_error("rule a\n send sms\n when deal.brand not (\"x\")\nend", 3, 22,
	    "expected 'in' after 'not', found '('");
	expect_error("rule a\n send sms\n when deal.brand in (\"x\" \"y\")\nend", 3, 26,
	    "expected ',' or ')' in the list, found a string");
	expect_error("rule a\n send sms\n when deal.brand in (deal.title)\nend", 3, 22,
	    "expected a string or a number in the list, found 'deal.title'");
	expect_error("rule a\n send sms\nrule b send dm end", 3, 1,
	    "expected 'end' to close rule 'a' (line 1), found 'rule'");
	expect_error("rule a\n send sms\n", 3, 1,
	    "expected 'end' to close rule 'a' (line 1), found end of file");
	expect_error("\n\nsend sms", 3, 1, "expected 'rule', found 'send'");
	expect_error("rule\n", 2, 1, "expected a rule name after 'rule', found end of file");
	expect_error("rule end", 1, 6, "expected a rule name after 'rule', found 'end'");
	/* nesting and length limits */
	n = (size_t)snprintf(deep, sizeof(deep), "rule a send sms when ");
	for (i = 0; i < 70; i++)
		deep[n++] = '(';
	snprintf(deep + n, sizeof(deep) - n, "true");
	expect_error(deep, 1, 22 + RULE_DEPTH_MAX, "expression nested deeper than 64 levels");
	n = (size_t)snprintf(chain, sizeof(chain), "rule a send sms when true");
	for (i = 0; i < 300; i++)
		n += (size_t)snprintf(chain + n, sizeof(chain) - n, " and true");
	snprintf(chain + n, sizeof(chain) - n, " end");
	expect_error(chain, 1, 27 + 9 * 256, "condition longer than 256 operators");
	n = (size_t)snprintf(chain, sizeof(chain), "rule a send sms when deal.brand in (");
	for (i = 0; i < 300; i++)
		n += (size_t)snprintf(chain + n, sizeof(chain) - n, "\"b\", ");
	snprintf(chain + n, sizeof(chain) - n, "\"b\") end");
	expect_error(chain, 1, 37 + 5 * 256, "list longer than 256 items");
}

static void
every_broken_rule_is_reported_in_one_run(void **state)
{
	const char *text =
	    "rule a\n when deal.nope = 1\n send sms\nend\n"
	    "rule b\n send fax\nend\n"
	    "rule ok send sms end\n"
	    "rule c\n when (true\n send sms\nend\n"
	    "rule d\n send dm\n template dm \"{bad}\"\nend\n";
	struct rule_diags dg;

	(void)state;
	assert_null(compile1(text, &dg));
	assert_int_equal(dg.n, 4);
	assert_int_equal(dg.v[0].line, 2);
	assert_int_equal(dg.v[1].line, 6);
	assert_int_equal(dg.v[2].line, 11);
	assert_int_equal(dg.v[3].line, 15);
	rule_diags_free(&dg);
}

static void
too_many_errors_stop_the_compiler(void **state)
{
	char text[8192];
	size_t n = 0;
	int i;
	struct rule_diags dg;

	(void)state;
	for (i = 0; i < 80; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "rule r%d send fax end\n", i);
	assert_null(compile1(text, &dg));
	assert_int_equal(dg.n, RULE_DIAGS_MAX);
	assert_int_equal(dg.v[RULE_DIAGS_MAX - 1].line, 0);
	assert_string_equal(dg.v[RULE_DIAGS_MAX - 1].msg, "too many errors; stopping");
	rule_diag_format(&dg.v[RULE_DIAGS_MAX - 1], text, sizeof(text));
	assert_string_equal(text, "rules/t.rules: error: too many errors; stopping\n");
	rule_diags_free(&dg);
}

static void
oversized_file_and_too_many_rules_are_errors(void **state)
{
	struct rule_source src = { "rules/huge.rules", "", RULE_SOURCE_MAX + 1 };
	struct rule_diags dg;
	struct err e;
	char *text;
	size_t n = 0, cap = 40 * (RULE_RULES_MAX + 1);
	int i;

	(void)state;
	rule_diags_init(&dg);
	assert_null(rule_compile(&src, 1, &dg, &e));
	assert_int_equal(dg.v[0].line, 0);
	assert_string_equal(dg.v[0].msg, "file larger than 1048576 bytes");
	rule_diags_free(&dg);
	text = malloc(cap);
	assert_non_null(text);
	for (i = 0; i <= RULE_RULES_MAX; i++)
		n += (size_t)snprintf(text + n, cap - n, "rule r%d send sms end\n", i);
	expect_error(text, RULE_RULES_MAX + 1, 1, "more than 1000 rules");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(design_example_rule_compiles_and_matches),
		cmocka_unit_test(unknown_field_error_names_line_and_column),
		cmocka_unit_test(unknown_field_suggests_a_close_name),
		cmocka_unit_test(caret_keeps_tabs_and_counts_characters),
		cmocka_unit_test(empty_input_gives_the_default_rule),
		cmocka_unit_test(default_rule_sends_to_interested_subscribers),
		cmocka_unit_test(channels_need_consent_and_an_address),
		cmocka_unit_test(highest_priority_matching_rule_picks_channels_and_template),
		cmocka_unit_test(audience_all_ignores_interests_and_interested_needs_them),
		cmocka_unit_test(every_expression_construct_evaluates),
		cmocka_unit_test(comparisons_with_an_absent_number_are_false),
		cmocka_unit_test(cancel_deal_matches_nobody),
		cmocka_unit_test(clauses_set_segments_holdout_and_priority),
		cmocka_unit_test(holdout_is_stable_and_close_to_its_share),
		cmocka_unit_test(holdout_is_drawn_per_channel),
		cmocka_unit_test(explain_names_the_failing_condition),
		cmocka_unit_test(scan_ranks_by_priority_engagement_then_id_and_cuts_by_quantity),
		cmocka_unit_test(type_errors_name_line_and_column),
		cmocka_unit_test(clause_errors_name_line_and_column),
		cmocka_unit_test(duplicate_rule_name_is_an_error_across_files),
		cmocka_unit_test(template_errors_point_inside_the_string),
		cmocka_unit_test(lexical_errors_name_line_and_column),
		cmocka_unit_test(syntax_errors_name_line_and_column),
		cmocka_unit_test(every_broken_rule_is_reported_in_one_run),
		cmocka_unit_test(too_many_errors_stop_the_compiler),
		cmocka_unit_test(oversized_file_and_too_many_rules_are_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
