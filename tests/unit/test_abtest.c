/*
 * test_abtest.c: when an A/B test decides at run time (notifier/abtest.c): the
 * latest moment (the window's end, or before the deal's expiry so the rest still
 * goes out) and the judgement of a standing at a moment (early winner, final
 * winner, fallback at the end, fallback at expiry, not yet).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "abtest.h"

static void
decide_by_is_the_window_end_unless_the_deal_ends_first(void **state)
{
	(void)state;
	/* a deal that outlives the window by far: the window's end */
	assert_int_equal(abtest_decide_by(1000, 600, 1000 + 86400), 1600);
	/* a deal ending within the window: a minute before it ends at most */
	assert_int_equal(abtest_decide_by(1000, 600, 1000 + 300), 1000 + 300 - 60);
	/* a short deal: a third of its life before the end */
	assert_int_equal(abtest_decide_by(1000, 60, 1015), 1010);
	/* already past its end: at once, never before the start */
	assert_int_equal(abtest_decide_by(1000, 60, 990), 1000);
	/* no expiry */
	assert_int_equal(abtest_decide_by(1000, 60, 0), 1060);
}

static void
judgement_follows_the_sequential_rule(void **state)
{
	struct rule_ab_stat clear[2] = { { 40, 0 }, { 40, 40 } };
	struct rule_ab_stat close[2] = { { 40, 10 }, { 40, 12 } };
	struct rule_ab_stat none[2] = { { 40, 0 }, { 40, 0 } };
	struct rule_ab_stat final[2] = { { 200, 20 }, { 200, 40 } };
	struct abtest_verdict v;

	(void)state;
	/* early: b is clearly better while the window runs */
	assert_int_equal(abtest_judge(clear, 2, 0, 1000, 60, 1060, 1010, &v), 1);
	assert_int_equal(v.index, 1);
	assert_string_equal(v.how, "early");
	assert_true(v.z >= RULE_AB_Z_EARLY && v.confidence > 0.999);
	/* not clear, window running, deal far from its end: not yet */
	assert_int_equal(abtest_judge(close, 2, 0, 1000, 60, 1060, 1010, &v), 0);
	/* window over, nobody clearly better: the fallback */
	assert_int_equal(abtest_judge(none, 2, 1, 1000, 60, 1060, 1060, &v), 1);
	assert_int_equal(v.index, 1);
	assert_string_equal(v.how, "fallback");
	/* window over, better at 95% but not at the early bar: the final winner */
	assert_int_equal(abtest_judge(final, 2, 0, 1000, 60, 1060, 1061, &v), 1);
	assert_int_equal(v.index, 1);
	assert_string_equal(v.how, "final");
	/* the same standing before the end: not early enough */
	assert_int_equal(abtest_judge(final, 2, 0, 1000, 60, 1060, 1030, &v), 0);
	/* the deal's end comes first: the fallback, though the window runs */
	assert_int_equal(abtest_judge(close, 2, 0, 1000, 60, 1040, 1040, &v), 1);
	assert_int_equal(v.index, 0);
	assert_string_equal(v.how, "expiry");
	/* ... unless one already won early */
	assert_int_equal(abtest_judge(clear, 2, 0, 1000, 60, 1040, 1045, &v), 1);
	assert_string_equal(v.how, "early");
}

/* Stored terms are read back strictly: a damaged hash names no variant it has not. */
static void
stored_terms_are_parsed_or_refused_whole(void **state)
{
	static const struct {
		const char *vars, *terms;
	} bad[] = {
		{ "a", "100\t60\tclicks\t0\t160" },                    /* one variant */
		{ "a b", "100\t60\tclicks\t2\t160" },                  /* fallback out */
		{ "a  b", "100\t60\tclicks\t0\t160" },                 /* empty name */
		{ "a b", "100\t60\tclicks\t0" },                        /* short terms */
		{ "a b", "x\t60\tclicks\t0\t160" },
		{ "a b c d e", "100\t60\tclicks\t0\t160" },            /* five */
		{ "a abcdefghijklmnopq", "100\t60\tclicks\t0\t160" },  /* 17 characters */
		{ NULL, "100\t60\tclicks\t0\t160" },
	};
	struct abtest_terms tm;
	size_t i;

	(void)state;
	assert_int_equal(abtest_terms_parse("a b_2", "100\t60\tredemptions\t1\t160",
	    &tm), 0);
	assert_int_equal(tm.nvars, 2);
	assert_string_equal(tm.vars[1], "b_2");
	assert_int_equal(tm.fallback, 1);
	assert_string_equal(tm.metric, "redemptions");
	assert_true(tm.start == 100 && tm.window_s == 60 && tm.decide_by == 160);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(abtest_terms_parse(bad[i].vars, bad[i].terms, &tm), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decide_by_is_the_window_end_unless_the_deal_ends_first),
		cmocka_unit_test(judgement_follows_the_sequential_rule),
		cmocka_unit_test(stored_terms_are_parsed_or_refused_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
