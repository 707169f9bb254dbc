/*
 * test_rules_locale.c: rule templates per language, 'template sms locale es "..."'
 * (issue 18 item 2): the subscriber's locale picks the template ("es", "es-MX",
 * "ES"), any other falls back to the rule's own; mistakes are named where they are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"

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

#define RULE_ES \
	"rule laptops\n" \
	"  when deal.category = \"laptops\"\n" \
	"  send sms, dm\n" \
	"  template sms \"{title} for {price} {link} Reply STOP to end\"\n" \
	"  template sms locale es \"{title} por {price} {link} Responde ALTO para " \
	"cancelar\"\n" \
	"  template sms locale pt \"{title} por {price} {link} Responda STOP\"\n" \
	"  template dm locale es \"{title} por {price} {link}\"\n" \
	"end\n"

static void
the_subscribers_language_picks_the_template(void **state)
{
	char errs[2048];
	struct rule_set *rs = compile(RULE_ES, errs, sizeof(errs));
	const struct rule *r;
	const struct rule_template *t;

	(void)state;
	assert_non_null(rs);
	assert_string_equal(errs, "");
	r = rule_set_find(rs, "laptops");
	assert_non_null(r);
	for (const char *const *l = (const char *const[]){ "es", "es-MX", "ES", "es_US",
	    NULL }; *l != NULL; l++) {
		t = rule_template_locale(r, CH_SMS, *l);
		assert_non_null(t);
		assert_non_null(strstr(rule_template_text(t), "Responde ALTO"));
	}
	t = rule_template_locale(r, CH_SMS, "pt-BR");
	assert_non_null(t);
	assert_non_null(strstr(rule_template_text(t), "Responda"));
	assert_non_null(strstr(rule_template_text(rule_template_locale(r, CH_DM, "es")),
	    " por "));
	/* no template of that language: the caller takes the rule's own */
	assert_null(rule_template_locale(r, CH_SMS, "en"));
	assert_null(rule_template_locale(r, CH_SMS, "esp"));
	assert_null(rule_template_locale(r, CH_SMS, "e"));
	assert_null(rule_template_locale(r, CH_SMS, ""));
	assert_null(rule_template_locale(r, CH_SMS, NULL));
	assert_non_null(strstr(rule_template_text(rule_template(r, CH_SMS)), "Reply STOP"));
	rule_set_free(rs);
}

static void
mistakes_are_named(void **state)
{
	static const struct {
		const char *clause, *want;
	} bad[] = {
		{ "template sms locale ES \"x STOP\"", "a language after 'locale'" },
		{ "template sms locale spanish \"x STOP\"", "a language after 'locale'" },
		{ "template sms locale \"x STOP\"", "a language after 'locale'" },
		{ "template sms locale es", "the template text in double quotes" },
		{ "template sms locale es \"Oferta {title}\"",
		    "locale es has no opt-out words" },
		{ "template sms locale fr \"Offre {title} ALTO\"",
		    "locale fr has no opt-out words" },
		{ "template sms locale es \"x STOP\"\n  template sms locale es \"y STOP\"",
		    "duplicate template for 'sms' locale es" },
		{ "template dm locale es \"x\"", "does not send dm" },
		{ "template sms locale es \"{titel} STOP\"", "did you mean '{title}'" },
	};
	char text[1024], errs[2048];
	struct rule_set *rs;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "rule r\n  send sms\n  %s\nend\n", bad[i].clause);
		rs = compile(text, errs, sizeof(errs));
		if (rs != NULL || strstr(errs, bad[i].want) == NULL)
			fail_msg("%s: got '%s', want '%s'", bad[i].clause, errs, bad[i].want);
	}
	text[0] = '\0';
	strcat(text, "rule r\n  send sms\n");
	for (i = 0; i < RULE_LOCALES_MAX + 1; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "  template sms locale %c%c \"x STOP\"\n", 'a' + (int)i, 'a' + (int)i);
	strcat(text, "end\n");
	rs = compile(text, errs, sizeof(errs));
	assert_null(rs);
	assert_non_null(strstr(errs, "more than 8 locales"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_subscribers_language_picks_the_template),
		cmocka_unit_test(mistakes_are_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
