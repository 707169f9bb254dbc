/*
 * test_rules_diag.c: what a marketer sees for a broken rule file: every mistake of
 * every clause in one run, "did you mean" for fields, clause words, channels,
 * audiences and placeholders, and shares written "25%".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"

/* Compiles text as rules/t.rules; returns every error as "L:C: msg\n" lines (static
 * buffer), or "" when it compiled. */
static const char *
errors_of(const char *text)
{
	static char out[8192];
	struct rule_source src = { "rules/t.rules", text, strlen(text) };
	struct rule_diags dg;
	struct rule_set *rs;
	struct err e;
	size_t i, n = 0;

	rule_diags_init(&dg);
	rs = rule_compile(&src, 1, &dg, &e);
	out[0] = '\0';
	if (rs != NULL)
		rule_set_free(rs);
	for (i = 0; i < dg.n && n < sizeof(out); i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%d:%d: %s\n", dg.v[i].line,
		    dg.v[i].col, dg.v[i].msg);
	rule_diags_free(&dg);
	return out;
}

static void
every_broken_clause_of_a_rule_is_reported(void **state)
{
	const char *text =
	    "rule one\n"
	    "  when deal.discount >= 25% and deal.colour = \"red\"\n"
	    "  audience intrested\n"
	    "  send sms\n"
	    "  template sms \"Hi {titel} {link} Reply STOP to end\"\n"
	    "end\n"
	    "rule two\n"
	    "  when deal.pirce < 100\n"
	    "  send smss\n"
	    "  priorty 5\n"
	    "  segments 2\n"
	    "end\n";

	(void)state;
	assert_string_equal(errors_of(text),
	    "2:8: unknown field 'deal.discount'; did you mean 'deal.discount_pct'?\n"
	    "2:33: unknown field 'deal.colour'\n"
	    "3:12: audience must be 'interested' or 'all', not 'intrested'; did you mean "
	    "'interested'?\n"
	    "5:20: unknown template placeholder '{titel}'; did you mean '{title}'?\n"
	    "8:8: unknown field 'deal.pirce'; did you mean 'deal.price'?\n"
	    "9:8: unknown channel 'smss'; did you mean 'sms'?\n"
	    "10:3: expected a clause or 'end', found 'priorty'; did you mean 'priority'?\n");
}

static void
a_broken_clause_does_not_hide_the_next_one_on_its_line(void **state)
{
	(void)state;
	/* a syntax error in 'when' skips to the next clause word, which is still checked */
	assert_string_equal(errors_of("rule a when deal.price < send smss end"),
	    "1:26: expected a field, a string, a number or '(', found 'send'\n"
	    "1:31: unknown channel 'smss'; did you mean 'sms'?\n");
	assert_string_equal(errors_of("rule a when deal.price < ) send smss end"),
	    "1:26: expected a field, a string, a number or '(', found ')'\n"
	    "1:33: unknown channel 'smss'; did you mean 'sms'?\n");
	/* a condition over several lines is one clause: its second line is not taken
	 * for a misspelt clause word */
	assert_string_equal(errors_of("rule a\n when deal.price < 100 and\n"
	    "   deal.x = 1\n send sms\nend\n"),
	    "3:4: unknown field 'deal.x'\n");
	/* nothing after the broken clause: no second error about a missing 'send' */
	assert_string_equal(errors_of("rule a\n send sms,\nend\n"),
	    "3:1: expected a channel (sms or dm), found 'end'\n");
}

static void
suggestions_are_close_names_only(void **state)
{
	(void)state;
	assert_string_equal(errors_of("rule a send sms when subscriber.max_price < 3 end"),
	    "1:22: unknown field 'subscriber.max_price'; did you mean "
	    "'subscriber.interests.max_price'?\n");
	assert_string_equal(errors_of("rule a send sms when discount > 3 end"),
	    "1:22: unknown field 'discount'; did you mean 'deal.discount_pct'?\n");
	assert_string_equal(errors_of("rule a send sms when Deal.Price > 3 end"),
	    "1:22: unknown field 'Deal.Price'; did you mean 'deal.price'?\n");
	/* far from every name: no guess */
	assert_string_equal(errors_of("rule a send sms when deal.weather = \"x\" end"),
	    "1:22: unknown field 'deal.weather'\n");
	assert_string_equal(errors_of("rule a send fax end"),
	    "1:13: unknown channel 'fax' (channels: sms, dm)\n");
	assert_string_equal(errors_of("rule a send sms frobnicate end"),
	    "1:17: expected a clause (when, audience, send, priority, template, holdout, "
	    "segments, exclusive, variant, test) or 'end', found 'frobnicate'\n");
	assert_string_equal(errors_of("rule a send sms template sms \"{zzzzzzz} STOP\" end"),
	    "1:31: unknown template placeholder '{zzzzzzz}' (known: {title} {price} "
	    "{list_price} {discount_pct} {code} {expires_local} {link} {brand})\n");
}

/* The rule set's answer for a deal of discount pct and a subscriber of engagement. */
static int
matches(const char *text, double pct, double engagement)
{
	struct rule_source src = { "rules/t.rules", text, strlen(text) };
	struct rule_diags dg;
	struct rule_set *rs;
	struct rule_match m;
	struct deal d;
	struct subscriber s;
	struct err e;
	int hit;

	rule_diags_init(&dg);
	rs = rule_compile(&src, 1, &dg, &e);
	assert_non_null(rs);
	rule_diags_free(&dg);
	memset(&d, 0, sizeof(d));
	memset(&s, 0, sizeof(s));
	d.id = "d1";
	d.title = "t";
	d.discount_pct = pct;
	d.expires_at = 2000000000;
	s.id = (char *)"s1";
	s.phone = "+15125550100";
	s.channels = CH_BIT(CH_SMS);
	s.consent[CH_SMS] = 1767348000;
	s.quiet_start_min = -1;
	s.quiet_end_min = -1;
	s.engagement = engagement;
	hit = rule_match(rs, &d, &s, 1700000000, &m);
	rule_set_free(rs);
	return hit;
}

static void
shares_compare_with_percent_and_fraction_fields(void **state)
{
	(void)state;
	/* deal.discount_pct counts in percent: 25% is 25 */
	assert_true(matches("rule a audience all send sms when deal.discount_pct >= 25% end",
	    30, 0.1));
	assert_false(matches("rule a audience all send sms when deal.discount_pct >= 25% end",
	    20, 0.1));
	/* engagement is a fraction of 1: 50% is 0.5, on either side and in a list */
	assert_true(matches("rule a audience all send sms when subscriber.engagement >= 50% "
	    "end", 10, 0.6));
	assert_false(matches("rule a audience all send sms when 50% <= subscriber.engagement "
	    "end", 10, 0.4));
	assert_true(matches("rule a audience all send sms when subscriber.engagement in "
	    "(40%, 60%) end", 10, 0.6));
	/* a share where no share is meant */
	assert_string_equal(errors_of("rule a send sms when deal.price < 25% end"),
	    "1:35: '25%' is a share, and deal.price is not one; shares compare with "
	    "deal.discount_pct, subscriber.interests.min_discount_pct and "
	    "subscriber.engagement\n");
	assert_string_equal(errors_of("rule a send sms when 25% > 10% end"),
	    "1:28: '10%' is a share, and this value is not one; shares compare with "
	    "deal.discount_pct, subscriber.interests.min_discount_pct and "
	    "subscriber.engagement\n");
	assert_string_equal(errors_of("rule a send sms when deal.title = 25% end"),
	    "1:35: cannot compare 'deal.title' (a string) with 25% (a share)\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_broken_clause_of_a_rule_is_reported),
		cmocka_unit_test(a_broken_clause_does_not_hide_the_next_one_on_its_line),
		cmocka_unit_test(suggestions_are_close_names_only),
		cmocka_unit_test(shares_compare_with_percent_and_fraction_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
