/*
 * test_rules_exclusive.c: an exclusive rule keeps its deals to itself. When its
 * conditions on the deal hold, no lower rule is tried for that deal, so the people
 * its conditions on the subscriber leave out get nothing; for other deals the lower
 * rules work as before. The scan, the index and the explanation agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"

#define NOW 1795370400LL

static const char *rules_text =
    "rule vip_laptops\n"
    "  when deal.category = \"laptop\" and deal.discount_pct >= 20% and\n"
    "       \"vip\" in subscriber.tags\n"
    "  audience all\n"
    "  send sms\n"
    "  priority 100\n"
    "  exclusive\n"
    "end\n"
    "rule everyone\n"
    "  audience all\n"
    "  send sms\n"
    "  priority 1\n"
    "end\n";

static char *vip_tags[] = { "vip" };

static struct subscriber
mk_sub(const char *id, int vip)
{
	struct subscriber s;

	memset(&s, 0, sizeof(s));
	s.id = (char *)id;
	s.phone = "+15125550100";
	s.channels = CH_BIT(CH_SMS);
	s.consent[CH_SMS] = 1767348000;
	s.quiet_start_min = -1;
	s.quiet_end_min = -1;
	s.tags.v = vip_tags;
	s.tags.n = vip ? 1 : 0;
	s.engagement = 0.5;
	return s;
}

static struct deal
mk_deal(const char *category, double discount)
{
	struct deal d;

	memset(&d, 0, sizeof(d));
	d.id = "d-1";
	d.title = "Latitude";
	d.category = (char *)category;
	d.discount_pct = discount;
	d.expires_at = NOW + 3600;
	return d;
}

static struct rule_set *
compile(void)
{
	struct rule_source src = { "rules/t.rules", rules_text, strlen(rules_text) };
	struct rule_diags dg;
	struct rule_set *rs;
	struct err e;

	rule_diags_init(&dg);
	rs = rule_compile(&src, 1, &dg, &e);
	assert_non_null(rs);
	rule_diags_free(&dg);
	return rs;
}

/* The rule s gets for d by the scan, or "" for none. */
static const char *
rule_for(const struct rule_set *rs, const struct deal *d, const struct subscriber *s)
{
	struct rule_match m;

	return rule_match(rs, d, s, NOW, &m) ? rule_name(m.rule) : "";
}

static void
an_exclusive_rule_keeps_its_deals_from_lower_rules(void **state)
{
	struct rule_set *rs = compile();
	struct subscriber vip = mk_sub("s-vip", 1), other = mk_sub("s-other", 0);
	struct deal laptop = mk_deal("laptop", 30), small = mk_deal("laptop", 10),
	    tv = mk_deal("tv", 30);

	(void)state;
	/* its deal: the VIP gets it, nobody else, not even through 'everyone' */
	assert_string_equal(rule_for(rs, &laptop, &vip), "vip_laptops");
	assert_string_equal(rule_for(rs, &laptop, &other), "");
	/* a deal its conditions on the deal leave out: the lower rule as before */
	assert_string_equal(rule_for(rs, &small, &other), "everyone");
	assert_string_equal(rule_for(rs, &tv, &vip), "everyone");
	rule_set_free(rs);
}

static void
index_and_explanation_agree_with_the_scan(void **state)
{
	struct rule_set *rs = compile();
	struct subscriber subs[2] = { mk_sub("s-vip", 1), mk_sub("s-other", 0) };
	struct rule_recipients out;
	struct ridx *ix;
	struct deal laptop = mk_deal("laptop", 30), tv = mk_deal("tv", 30);
	struct err e;
	char buf[1024];

	(void)state;
	assert_non_null(ix = ridx_new(&e));
	assert_int_equal(ridx_put(ix, &subs[0], &e), 0);
	assert_int_equal(ridx_put(ix, &subs[1], &e), 0);
	rule_recipients_init(&out);
	assert_int_equal(ridx_query(ix, rs, &laptop, NOW, 1.0, &out, &e), 0);
	assert_int_equal(out.n, 1);
	assert_string_equal(rule_name(out.v[0].rule), "vip_laptops");
	assert_int_equal(ridx_query(ix, rs, &tv, NOW, 1.0, &out, &e), 0);
	assert_int_equal(out.n, 2);
	rule_explain(rs, &laptop, &subs[1], NOW, buf, sizeof(buf));
	assert_non_null(strstr(buf, "rule vip_laptops is exclusive and applies to this "
	    "deal: lower rules are not tried\n"));
	assert_null(strstr(buf, "rule everyone"));
	rule_recipients_free(&out);
	ridx_free(ix);
	rule_set_free(rs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_exclusive_rule_keeps_its_deals_from_lower_rules),
		cmocka_unit_test(index_and_explanation_agree_with_the_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
