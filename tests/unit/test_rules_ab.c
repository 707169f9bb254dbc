/*
 * test_rules_ab.c: A/B variants in the rule language (issue 17 item 4): the clauses
 * and every mistake in them named at its place; who is in the test and with which
 * variant (the share and the even split, stable per deal and subscriber); and the
 * decision: an early winner only when it is very clear, a winner at the window's end
 * at the usual 95%, none (the fallback) when the variants do not differ.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"
#include "rulesload.h"

static struct rule_set *
compile(const char *text, char *errs, size_t size)
{
	struct rule_source src = { "rules/t.rules", text, strlen(text) };
	struct rule_diags dg;
	struct rule_set *rs;
	struct err e;

	rule_diags_init(&dg);
	rs = rule_compile(&src, 1, &dg, &e);
	errs[0] = '\0';
	rule_diags_format(&dg, errs, size);
	rule_diags_free(&dg);
	return rs;
}

#define FLASH \
	"rule flash\n" \
	"  when deal.campaign = \"flash\"\n" \
	"  send sms\n" \
	"  variant a \"Flash: {title} {price} {link} Reply STOP to end\"\n" \
	"  variant b \"{title} now {price}! {link} STOP to end\"\n" \
	"  variant c \"Today only: {title} {link} STOP to end\"\n" \
	"  test 20% for 10m by clicks fallback b\n" \
	"end\n"

static void
variants_and_their_test_compile(void **state)
{
	char errs[2048];
	struct rule_set *rs = compile(FLASH, errs, sizeof(errs));
	const struct rule *r;
	const struct rule_ab *ab;

	(void)state;
	assert_string_equal(errs, "");
	assert_non_null(rs);
	r = rule_set_find(rs, "flash");
	assert_int_equal(rule_variant_count(r), 3);
	assert_string_equal(rule_variant_name(r, 1), "b");
	assert_non_null(strstr(rule_template_text(rule_variant_template(r, 2)),
	    "Today only"));
	assert_null(rule_variant_name(r, 3));
	ab = rule_ab(r);
	assert_non_null(ab);
	assert_int_equal(ab->share_bp, 2000);
	assert_int_equal(ab->window_s, 600);
	assert_int_equal(ab->metric, RULE_AB_CLICKS);
	assert_int_equal(ab->fallback, 1);
	rule_set_free(rs);
	/* 1h, 90s, redemptions, a fractional share, the first variant as fallback */
	rs = compile("rule r\n send sms\n variant x \"a STOP\"\n variant y \"b STOP\"\n"
	    " test 2.5% for 1h by redemptions\nend\nrule s\n send sms\n"
	    " variant x \"a STOP\"\n variant y \"b STOP\"\n test 100% for 90s by clicks\n"
	    "end\n", errs, sizeof(errs));
	assert_string_equal(errs, "");
	ab = rule_ab(rule_set_find(rs, "r"));
	assert_int_equal(ab->share_bp, 250);
	assert_int_equal(ab->window_s, 3600);
	assert_int_equal(ab->metric, RULE_AB_REDEMPTIONS);
	assert_int_equal(ab->fallback, 0);
	assert_int_equal(rule_ab(rule_set_find(rs, "s"))->window_s, 90);
	rule_set_free(rs);
	/* "test" and "variant" are no reserved words: a rule and a field keep them */
	rs = compile("rule test\n send sms\nend\n", errs, sizeof(errs));
	assert_string_equal(errs, "");
	assert_null(rule_ab(rule_set_find(rs, "test")));
	assert_int_equal(rule_variant_count(rule_set_find(rs, "test")), 0);
	rule_set_free(rs);
}

static void
mistakes_are_named(void **state)
{
	static const struct {
		const char *clauses, *want;
	} bad[] = {
		{ "variant a \"x STOP\"\n variant b \"y STOP\"",
		    "has variants but no 'test' clause" },
		{ "variant a \"x STOP\"\n test 20% for 10m by clicks", "needs 2 to 4 variants" },
		{ "test 20% for 10m by clicks", "needs 2 to 4 variants" },
		{ "variant a \"x STOP\"\n variant a \"y STOP\"", "duplicate variant 'a'" },
		{ "variant A \"x STOP\"", "a variant name after 'variant'" },
		{ "variant a", "the variant's text in double quotes" },
		{ "variant a \"no opt out\"", "no opt-out words" },
		{ "variant a \"{titel} STOP\"", "did you mean '{title}'" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n variant c \"z STOP\"\n"
		    " variant d \"w STOP\"\n variant e \"v STOP\"", "more than 4 variants" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 0% for 10m by clicks",
		    "above 0% and at most 100%" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 120% for 10m by clicks",
		    "above 0% and at most 100%" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20 for 10m by clicks",
		    "'%' after the test share" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% 10m by clicks",
		    "'for' and how long" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% for 10 by clicks",
		    "how long the test runs, like 10m" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% for 30s by clicks",
		    "from 1m to 24h" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% for 25h by clicks",
		    "from 1m to 24h" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% for 10m by views",
		    "'clicks' or 'redemptions'" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% for 10m clicks",
		    "'by clicks' or 'by redemptions'" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n"
		    " test 20% for 10m by clicks fallback z", "fallback 'z' is not a variant" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% for 10m by clicks\n"
		    " test 10% for 10m by clicks", "duplicate 'test'" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% for 10m by clicks\n"
		    " template sms \"z STOP\"", "both variants and an sms template" },
		{ "variant a \"x STOP\"\n variant b \"y STOP\"\n test 20% for 10m by clicks\n"
		    " template sms locale es \"z ALTO\"", "both variants and an sms template" },
		{ "tset 20%", "did you mean 'test'" },
		{ "variamt a", "did you mean 'variant'" },
	};
	char text[1024], errs[4096];
	struct rule_set *rs;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "rule r\n send sms\n %s\nend\n", bad[i].clauses);
		rs = compile(text, errs, sizeof(errs));
		if (rs != NULL || strstr(errs, bad[i].want) == NULL)
			fail_msg("%s: got '%s', want '%s'", bad[i].clauses, errs, bad[i].want);
	}
	rs = compile("rule r\n send dm\n variant a \"x STOP\"\n variant b \"y STOP\"\n"
	    " test 20% for 10m by clicks\nend\n", errs, sizeof(errs));
	assert_null(rs);
	assert_non_null(strstr(errs, "does not send sms"));
	/* "10m" is a duration only where a duration goes; 10min is no number */
	rs = compile("rule r\n when deal.price < 10min\n send sms\nend\n", errs, sizeof(errs));
	assert_null(rs);
	assert_non_null(strstr(errs, "malformed number"));
}

static void
assignment_keeps_the_share_and_splits_evenly(void **state)
{
	enum { N = 200000 };
	char errs[2048], sub[32];
	struct rule_set *rs = compile(FLASH, errs, sizeof(errs));
	const struct rule *r = rule_set_find(rs, "flash");
	long counts[4] = { 0 }, rest = 0;
	int i, v;

	(void)state;
	for (i = 0; i < N; i++) {
		snprintf(sub, sizeof(sub), "s-%d", i);
		v = rule_ab_assign(r, "deal-1", sub);
		assert_int_equal(v, rule_ab_assign(r, "deal-1", sub));   /* stable */
		if (v < 0)
			rest++;
		else
			counts[v]++;
	}
	/* 20% in the test (binomial sd 0.09%), a third of it each (sd 0.18%) */
	assert_true(fabs((double)(N - rest) / N - 0.20) < 0.005);
	for (i = 0; i < 3; i++)
		assert_true(fabs((double)counts[i] / (double)(N - rest) - 1.0 / 3) < 0.01);
	assert_int_equal(counts[3], 0);
	/* another deal draws again: about 20% of this deal's test is in the next's */
	for (i = 0, v = 0; i < N; i++) {
		snprintf(sub, sizeof(sub), "s-%d", i);
		if (rule_ab_assign(r, "deal-1", sub) >= 0 && rule_ab_assign(r, "deal-2", sub) >= 0)
			v++;
	}
	assert_true(fabs((double)v / (double)(N - rest) - 0.20) < 0.02);
	/* a rule without a test puts nobody in one */
	rule_set_free(rs);
	rs = compile("rule plain\n send sms\nend\n", errs, sizeof(errs));
	assert_int_equal(rule_ab_assign(rule_set_find(rs, "plain"), "d", "s"), -1);
	rule_set_free(rs);
}

static void
decisions_stop_early_only_when_clear(void **state)
{
	struct rule_ab_verdict v;
	/* 10% against 5% clicks: clear at 2000 texts each (z about 5.9) */
	const struct rule_ab_stat clear[] = { { 2000, 100 }, { 2000, 200 } };
	/* 10% against 8% at 1000 each: z about 1.55, not even at the end */
	const struct rule_ab_stat close[] = { { 1000, 80 }, { 1000, 100 } };
	/* 12% against 9% at 1500 each: z about 2.66, a winner only at the end */
	const struct rule_ab_stat final_only[] = { { 1500, 180 }, { 1500, 135 } };
	/* the best must beat every other variant */
	const struct rule_ab_stat three[] = { { 2000, 100 }, { 2000, 200 }, { 2000, 190 } };
	const struct rule_ab_stat few[] = { { 10, 9 }, { 10, 0 } };
	const struct rule_ab_stat none[] = { { 0, 0 }, { 0, 0 } };
	const struct rule_ab_stat equal[] = { { 500, 0 }, { 500, 0 } };

	(void)state;
	rule_ab_decide(clear, 2, 0, &v);
	assert_int_equal(v.winner, 1);
	assert_true(v.z > RULE_AB_Z_EARLY);
	assert_true(v.confidence > 0.999);
	rule_ab_decide(close, 2, 0, &v);
	assert_int_equal(v.winner, -1);
	assert_int_equal(v.best, 1);
	rule_ab_decide(close, 2, 1, &v);
	assert_int_equal(v.winner, -1);                 /* the fallback goes out */
	assert_true(v.confidence > 0.9 && v.confidence < 0.975);
	rule_ab_decide(final_only, 2, 0, &v);
	assert_int_equal(v.winner, -1);
	rule_ab_decide(final_only, 2, 1, &v);
	assert_int_equal(v.winner, 0);
	rule_ab_decide(three, 3, 1, &v);
	assert_int_equal(v.best, 1);
	assert_int_equal(v.winner, -1);                 /* 10% vs 9.5%: no */
	rule_ab_decide(few, 2, 1, &v);
	assert_int_equal(v.winner, -1);                 /* under 30 texts each */
	rule_ab_decide(none, 2, 1, &v);
	assert_int_equal(v.best, -1);
	assert_int_equal(v.winner, -1);
	rule_ab_decide(equal, 2, 1, &v);
	assert_int_equal(v.winner, -1);
	assert_true(v.z == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(variants_and_their_test_compile),
		cmocka_unit_test(mistakes_are_named),
		cmocka_unit_test(assignment_keeps_the_share_and_splits_evenly),
		cmocka_unit_test(decisions_stop_early_only_when_clear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
