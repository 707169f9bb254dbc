/*
 * test_signup.c: sign-up keywords, the confirmation "Y" and the notifier's own texts
 * in English and Spanish (notifier/signup.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hooks.h"
#include "signup.h"

#define KW_SPEC "JOIN, Deals Laptop: Laptops gaming-pc, OFERTAS: @es, " \
	"ofertas laptop: laptops @es"

static int
parse(const char *spec, struct signup_keyword *kw, char *err, size_t esize)
{
	return signup_keywords_parse(kw, SIGNUP_KEYWORDS_MAX, spec, err, esize);
}

static void
keywords_parse_with_categories_and_language(void **state)
{
	struct signup_keyword kw[SIGNUP_KEYWORDS_MAX];
	char err[256];

	(void)state;
	assert_int_equal(parse(KW_SPEC, kw, err, sizeof(err)), 4);
	assert_string_equal(kw[0].words, "join");
	assert_int_equal(kw[0].ncats, 0);
	assert_false(kw[0].has_locale);
	assert_string_equal(kw[1].words, "deals laptop");
	assert_int_equal(kw[1].ncats, 2);
	assert_string_equal(kw[1].cats[0], "laptops");
	assert_string_equal(kw[1].cats[1], "gaming-pc");
	assert_true(kw[2].has_locale);
	assert_int_equal(kw[2].locale, SL_ES);
	assert_int_equal(kw[3].ncats, 1);
	assert_int_equal(kw[3].locale, SL_ES);
	assert_int_equal(parse("", kw, err, sizeof(err)), 0);
	assert_int_equal(parse(" , ,", kw, err, sizeof(err)), 0);
}

static void
bad_keywords_are_named(void **state)
{
	static const struct {
		const char *spec, *want;
	} bad[] = {
		{ "JOIN, STOP", "'STOP'" },
		{ "START", "opt-out, opt-in, help" },
		{ "HELP", "opt-out, opt-in, help" },
		{ "Y", "confirmation" },
		{ "si", "confirmation" },
		{ "stop deals", "opt-out" },
		{ "one two three four", "1 to 3 words" },
		{ "!!!", "1 to 3 words" },
		{ "JOIN: laptops@x", "category" },
		{ "JOIN: @fr", "unknown language" },
		{ "JOIN, join", "given twice" },
		{ "JOIN: a b c d e f g h i", "more than 8" },
		{ "JOIN: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "longer than" },
	};
	struct signup_keyword kw[SIGNUP_KEYWORDS_MAX];
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i].spec, kw, err, sizeof(err)), -1);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("%s: '%s' does not say '%s'", bad[i].spec, err, bad[i].want);
	}
	assert_int_equal(signup_keywords_parse(kw, 1, "A, B", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 1"));
}

static void
a_message_is_a_keyword_only_when_it_is_exactly_one(void **state)
{
	struct signup_keyword kw[SIGNUP_KEYWORDS_MAX];
	const struct signup_keyword *k;
	char err[256];
	int n;

	(void)state;
	n = parse(KW_SPEC, kw, err, sizeof(err));
	assert_int_equal(n, 4);
	k = signup_match(kw, (size_t)n, "join", 4);
	assert_ptr_equal(k, &kw[0]);
	assert_ptr_equal(signup_match(kw, (size_t)n, " JOIN! ", 7), &kw[0]);
	assert_ptr_equal(signup_match(kw, (size_t)n, "deals  LAPTOP.", 14), &kw[1]);
	assert_ptr_equal(signup_match(kw, (size_t)n, "Ofertas", 7), &kw[2]);
	assert_ptr_equal(signup_match(kw, (size_t)n, "\xEF\xBC\xAA\xEF\xBC\xAF\xEF\xBC\xA9"
	    "\xEF\xBC\xAE", 12), &kw[0]);            /* full-width JOIN */
	assert_null(signup_match(kw, (size_t)n, "join now", 8));
	assert_null(signup_match(kw, (size_t)n, "deals", 5));
	assert_null(signup_match(kw, (size_t)n, "", 0));
	assert_null(signup_match(kw, 0, "join", 4));
	assert_null(signup_match(kw, (size_t)n, "jo\0in", 5));
}

static void
yes_words_confirm(void **state)
{
	(void)state;
	assert_true(signup_is_yes("Y", 1));
	assert_true(signup_is_yes("yes!", 4));
	assert_true(signup_is_yes(" YES ", 5));
	assert_true(signup_is_yes("S", 1));
	assert_true(signup_is_yes("S\xC3\xAD", 3));    /* Sí */
	assert_false(signup_is_yes("yes please", 10));
	assert_false(signup_is_yes("yeah", 4));
	assert_false(signup_is_yes("", 0));
	assert_false(signup_is_yes("no", 2));
}

static void
locales_of_tags_and_labels(void **state)
{
	(void)state;
	assert_int_equal(signup_locale_of("es"), SL_ES);
	assert_int_equal(signup_locale_of("es-MX"), SL_ES);
	assert_int_equal(signup_locale_of("ES"), SL_ES);
	assert_int_equal(signup_locale_of("est"), SL_EN);
	assert_int_equal(signup_locale_of("en-US"), SL_EN);
	assert_int_equal(signup_locale_of(NULL), SL_EN);
	assert_string_equal(signup_locale_tag(SL_ES), "es");
	assert_int_equal(signup_label_locale("ALTO"), SL_ES);
	assert_int_equal(signup_label_locale("AYUDA"), SL_ES);
	assert_int_equal(signup_label_locale("phrase:es_no_enviar"), SL_ES);
	assert_int_equal(signup_label_locale("STOP"), -1);
	assert_int_equal(signup_label_locale("HELP"), -1);
	assert_int_equal(signup_label_locale(NULL), -1);
}

static void
texts_without_signup_are_the_old_constants(void **state)
{
	struct signup_vars v = { "dealpush deals", 0, NULL };
	char buf[SIGNUP_TEXT_MAX];

	(void)state;
	assert_true(signup_text(ST_HELP, SL_EN, &v, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, HOOKS_HELP_TEXT);
	assert_true(signup_text(ST_OPTOUT_ACK, SL_EN, &v, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, HOOKS_CONFIRM_TEXT);
}

static void
texts_say_what_ctia_asks_in_both_languages(void **state)
{
	struct signup_vars v = { "Acme Deals", 6, "https://acme.example/terms" };
	char buf[SIGNUP_TEXT_MAX];
	int n;

	(void)state;
	n = signup_text(ST_CONFIRM, SL_EN, &v, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_non_null(strstr(buf, "Acme Deals:"));
	assert_non_null(strstr(buf, "reply Y"));
	assert_non_null(strstr(buf, "Up to 6 msgs/week"));
	assert_non_null(strstr(buf, "Msg & data rates may apply"));
	assert_non_null(strstr(buf, "https://acme.example/terms"));
	assert_non_null(strstr(buf, "HELP"));
	assert_non_null(strstr(buf, "STOP"));
	assert_true(signup_text(ST_CONFIRM, SL_ES, &v, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "responde S"));
	assert_non_null(strstr(buf, "Hasta 6 mensajes/semana"));
	assert_non_null(strstr(buf, "tarifas de mensajes y datos"));
	assert_non_null(strstr(buf, "AYUDA"));
	assert_non_null(strstr(buf, "ALTO"));
	assert_true(signup_text(ST_WELCOME, SL_ES, &v, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "ya recibes"));
	assert_true(signup_text(ST_HELP, SL_ES, &v, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "acme.example/terms"));
	assert_true(signup_text(ST_OPTOUT_ACK, SL_ES, &v, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "Acme Deals"));
	assert_true(signup_text(ST_OPTIN_ACK, SL_EN, &v, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "resubscribed"));
	assert_non_null(strstr(buf, "STOP"));
	assert_true(signup_text(ST_OPTIN_ACK, SL_ES, &v, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "ALTO"));
	/* too small a buffer is refused, never cut */
	assert_int_equal(signup_text(ST_CONFIRM, SL_EN, &v, buf, 40), -1);
	assert_int_equal(signup_text(ST_COUNT, SL_EN, &v, buf, sizeof(buf)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keywords_parse_with_categories_and_language),
		cmocka_unit_test(bad_keywords_are_named),
		cmocka_unit_test(a_message_is_a_keyword_only_when_it_is_exactly_one),
		cmocka_unit_test(yes_words_confirm),
		cmocka_unit_test(locales_of_tags_and_labels),
		cmocka_unit_test(texts_without_signup_are_the_old_constants),
		cmocka_unit_test(texts_say_what_ctia_asks_in_both_languages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
