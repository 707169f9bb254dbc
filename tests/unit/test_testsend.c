/*
 * test_testsend.c: a test send (docs/rules.md, "Test sends"): the deal's "test_to" is
 * checked like any field, and its recipients are exactly the named subscribers the
 * mirror holds, each with the rule it would get or, when none matches it, the first
 * rule that takes the deal; never held out, never cut by quantity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deal.h"
#include "rules.h"

#define NOW 1795370400LL

static struct deal *
parse(const char *json, struct err *e)
{
	return deal_parse(json, strlen(json), NOW, e);
}

static void
test_to_is_checked_like_any_field(void **state)
{
	char json[4096];
	struct deal *d;
	struct err e;
	size_t n, i;

	(void)state;
	d = parse("{\"id\":\"d\",\"title\":\"t\",\"url\":\"https://x.example/\","
	    "\"expires_at\":1795374000,\"test_to\":[\"Me\",\"s-1\"]}", &e);
	assert_non_null(d);
	assert_int_equal(d->test_to.n, 2);
	assert_string_equal(d->test_to.v[0], "Me");   /* ids keep their case */
	deal_free(d);
	assert_null(parse("{\"id\":\"d\",\"title\":\"t\",\"url\":\"https://x.example/\","
	    "\"expires_at\":1795374000,\"test_to\":\"me\"}", &e));
	assert_string_equal(e.field, "test_to");
	assert_null(parse("{\"id\":\"d\",\"title\":\"t\",\"url\":\"https://x.example/\","
	    "\"expires_at\":1795374000,\"test_to\":[]}", &e));
	assert_string_equal(e.field, "test_to");
	assert_null(parse("{\"id\":\"d\",\"title\":\"t\",\"url\":\"https://x.example/\","
	    "\"expires_at\":1795374000,\"test_to\":[\"a b\"]}", &e));
	assert_non_null(strstr(e.msg, "test_to[0]"));
	n = (size_t)snprintf(json, sizeof(json), "{\"id\":\"d\",\"title\":\"t\","
	    "\"url\":\"https://x.example/\",\"expires_at\":1795374000,\"test_to\":[");
	for (i = 0; i <= DEAL_TEST_TO_MAX; i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"s-%zu\"", i ? "," : "",
		    i);
	snprintf(json + n, sizeof(json) - n, "]}");
	assert_null(parse(json, &e));
	assert_non_null(strstr(e.msg, "1 to 20"));
}

static char *cat_audio[] = { "headphones" };
static char *cat_garden[] = { "garden" };

static struct subscriber
mk_sub(const char *id, char **cats, int vip)
{
	static char *vip_tags[] = { "vip" };
	struct subscriber s;

	memset(&s, 0, sizeof(s));
	s.id = (char *)id;
	s.phone = "+15125550100";
	s.channels = CH_BIT(CH_SMS);
	s.consent[CH_SMS] = 1767348000;
	s.quiet_start_min = -1;
	s.quiet_end_min = -1;
	s.interests.categories.v = cats;
	s.interests.categories.n = 1;
	s.tags.v = vip_tags;
	s.tags.n = vip ? 1 : 0;
	return s;
}

static void
each_named_subscriber_gets_its_rule_or_the_first_that_takes_the_deal(void **state)
{
	static const char *text =
	    "rule vip\n  when deal.category = \"headphones\" and \"vip\" in subscriber.tags\n"
	    "  send sms\n  priority 9\n  holdout 100%\nend\n"
	    "rule audio\n  when deal.category = \"headphones\"\n  send sms\n  priority 5\nend\n"
	    "rule tv\n  when deal.category = \"tv\"\n  audience all\n  send sms\n"
	    "  priority 1\nend\n";
	struct rule_source src = { "rules/t.rules", text, strlen(text) };
	struct subscriber subs[3] = { mk_sub("fan", cat_audio, 0),
		mk_sub("gardener", cat_garden, 0), mk_sub("boss", cat_audio, 1) };
	char *ids_v[] = { "gardener", "nobody", "boss", "fan" };
	struct strlist ids = { ids_v, 4 };
	struct rule_recipients out;
	struct rule_diags dg;
	struct rule_set *rs;
	struct ridx *ix;
	struct deal d;
	struct err e;
	size_t i;

	(void)state;
	rule_diags_init(&dg);
	assert_non_null(rs = rule_compile(&src, 1, &dg, &e));
	rule_diags_free(&dg);
	assert_non_null(ix = ridx_new(&e));
	for (i = 0; i < 3; i++)
		assert_int_equal(ridx_put(ix, &subs[i], &e), 0);
	memset(&d, 0, sizeof(d));
	d.id = "d-1";
	d.title = "WH-1000XM5";
	d.category = "headphones";
	d.quantity = 1;                 /* a test send is never cut */
	d.expires_at = NOW + 3600;
	rule_recipients_init(&out);
	assert_int_equal(rule_test_recipients(ix, rs, &d, NOW, &ids, &out, &e), 0);
	/* in the order given; "nobody" is not in the mirror */
	assert_int_equal(out.n, 3);
	assert_string_equal(out.v[0].sub->id, "gardener");
	assert_string_equal(rule_name(out.v[0].rule), "vip");   /* first to take it */
	assert_string_equal(out.v[1].sub->id, "boss");
	assert_string_equal(rule_name(out.v[1].rule), "vip");
	assert_false(out.v[1].held_out);                         /* 100% holdout */
	assert_string_equal(out.v[2].sub->id, "fan");
	assert_string_equal(rule_name(out.v[2].rule), "audio");
	/* a deal no rule takes reaches nobody, test or not */
	d.category = "garden";
	assert_int_equal(rule_test_recipients(ix, rs, &d, NOW, &ids, &out, &e), 0);
	assert_int_equal(out.n, 0);
	rule_recipients_free(&out);
	ridx_free(ix);
	rule_set_free(rs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_is_checked_like_any_field),
		cmocka_unit_test(each_named_subscriber_gets_its_rule_or_the_first_that_takes_the_deal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
