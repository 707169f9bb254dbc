/*
 * test_pushline.c: the recipient line codec and the text a recipient gets, including
 * hostile lines and codes (the overflow with two code places and long codes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "match.h"
#include "pushline.h"

/* A run of MATCH_CODE_WIDTH marks, as the plan leaves for a code. */
static const char *
marks(void)
{
	static char m[MATCH_CODE_WIDTH + 1];

	memset(m, MATCH_CODE_MARK, MATCH_CODE_WIDTH);
	m[MATCH_CODE_WIDTH] = '\0';
	return m;
}

static void
line_parses_into_its_five_fields_and_the_text_keeps_its_tabs(void **state)
{
	char line[] = "sms\ts-1\t+15125550100\tvip\tHi\tthere";
	struct pushline pl;

	(void)state;
	assert_int_equal(pushline_parse(line, &pl), 0);
	assert_int_equal(pl.ch, CH_SMS);
	assert_string_equal(pl.sub, "s-1");
	assert_string_equal(pl.to, "+15125550100");
	assert_string_equal(pl.rule, "vip");
	assert_string_equal(pl.text, "Hi\tthere");
}

static void
line_with_a_missing_or_empty_field_or_unknown_channel_is_refused(void **state)
{
	const char *bad[] = { "", "sms", "sms\ts-1\t+1\tvip", "sms\t\t+1\tvip\thi",
		"sms\ts-1\t+1\tvip\t", "fax\ts-1\t+1\tvip\thi", "\ts-1\t+1\tvip\thi" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *l = strdup(bad[i]);
		struct pushline pl;

		assert_non_null(l);
		assert_int_equal(pushline_parse(l, &pl), -1);
		free(l);
	}
}

/* An A/B test member's rule field is "<rule>/<variant>": the rule is the rule's
 * (every key and report), the variant apart, and the format puts it back. */
static void
a_test_members_rule_names_its_variant(void **state)
{
	char line[] = "sms\ts-1\t+15125550100\tflash/b\tBBB deal";
	const char *bad[] = { "sms\ts-1\t+1\tflash/\thi", "sms\ts-1\t+1\t/b\thi" };
	struct pushline pl;
	char *again;
	size_t i;

	(void)state;
	assert_int_equal(pushline_parse(line, &pl), 0);
	assert_string_equal(pl.rule, "flash");
	assert_string_equal(pl.variant, "b");
	assert_string_equal(pl.text, "BBB deal");
	assert_non_null(again = pushline_format(&pl));
	assert_string_equal(again, "sms\ts-1\t+15125550100\tflash/b\tBBB deal");
	free(again);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *l = strdup(bad[i]);

		assert_non_null(l);
		assert_int_equal(pushline_parse(l, &pl), -1);
		free(l);
	}
	{
		char plain[] = "sms\ts-1\t+1\tvip\thi";

		assert_int_equal(pushline_parse(plain, &pl), 0);
		assert_string_equal(pl.variant, "");
	}
}

static void
format_is_what_parse_reads(void **state)
{
	char line[] = "dm\ts-9\t12345\tr1\tDeal {x}";
	char *again;
	struct pushline pl, p2;

	(void)state;
	assert_int_equal(pushline_parse(line, &pl), 0);
	again = pushline_format(&pl);
	assert_non_null(again);
	assert_string_equal(again, "dm\ts-9\t12345\tr1\tDeal {x}");
	assert_int_equal(pushline_parse(again, &p2), 0);
	assert_int_equal(p2.ch, CH_DM);
	free(again);
}

static void
render_puts_the_code_in_every_place_kept_for_it(void **state)
{
	char text[128], *t;

	(void)state;
	snprintf(text, sizeof(text), "A %s B %s C", marks(), marks());
	t = pushline_render(text, "SAVE-1234567890AB");
	assert_non_null(t);
	assert_string_equal(t, "A SAVE-1234567890AB B SAVE-1234567890AB C");
	free(t);
}

static void
render_with_a_code_longer_than_its_place_does_not_overflow(void **state)
{
	char text[256], code[120], *t;
	int i;

	(void)state;
	memset(code, 'Z', sizeof(code) - 1);
	code[sizeof(code) - 1] = '\0';
	/* Ten one-byte places: the text grows by ten codes. */
	for (i = 0; i < 10; i++)
		text[i] = MATCH_CODE_MARK;
	text[10] = '\0';
	t = pushline_render(text, code);
	assert_non_null(t);
	/* adjacent marks are one run: one code */
	assert_string_equal(t, code);
	free(t);
	for (i = 0; i < 20; i++)
		text[i] = i % 2 ? 'x' : MATCH_CODE_MARK;
	text[20] = '\0';
	t = pushline_render(text, code);
	assert_non_null(t);
	assert_int_equal(strlen(t), 10 * strlen(code) + 10);
	free(t);
}

static void
render_without_a_code_drops_the_place(void **state)
{
	char text[64], *t;

	(void)state;
	snprintf(text, sizeof(text), "code %s!", marks());
	t = pushline_render(text, "");
	assert_non_null(t);
	assert_string_equal(t, "code !");
	free(t);
	t = pushline_render("no place", "ABC");
	assert_non_null(t);
	assert_string_equal(t, "no place");
	free(t);
}

static void
codes_that_fit_their_place_and_are_printable_are_ok(void **state)
{
	(void)state;
	assert_int_equal(pushline_code_ok("SAVE20"), 1);
	assert_int_equal(pushline_code_ok("ABCDEFGHIJKLMNOP"), 1);       /* 16 */
	assert_int_equal(pushline_code_ok("ABCDEFGHIJKLMNOPQ"), 0);      /* 17 */
	assert_int_equal(pushline_code_ok(""), 0);
	assert_int_equal(pushline_code_ok("A B"), 0);
	assert_int_equal(pushline_code_ok("A\tB"), 0);
	assert_int_equal(pushline_code_ok("A\rB"), 0);
	assert_int_equal(pushline_code_ok("caf\xc3\xa9"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(line_parses_into_its_five_fields_and_the_text_keeps_its_tabs),
		cmocka_unit_test(line_with_a_missing_or_empty_field_or_unknown_channel_is_refused),
		cmocka_unit_test(format_is_what_parse_reads),
		cmocka_unit_test(a_test_members_rule_names_its_variant),
		cmocka_unit_test(render_puts_the_code_in_every_place_kept_for_it),
		cmocka_unit_test(render_with_a_code_longer_than_its_place_does_not_overflow),
		cmocka_unit_test(render_without_a_code_drops_the_place),
		cmocka_unit_test(codes_that_fit_their_place_and_are_printable_are_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
