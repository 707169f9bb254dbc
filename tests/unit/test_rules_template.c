/*
 * test_rules_template.c: message templates (rules/rule_template.c): placeholders, money
 * by currency, {expires_local} through the caller's formatter (a fake here), GSM-7 versus
 * UCS-2 and segment counting at every boundary, and shortening the title (and only the
 * title) to meet a segment cap.
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

static struct deal
mk_deal(void)
{
	struct deal d;

	memset(&d, 0, sizeof(d));
	d.id = "outlet-7731";
	d.title = "Latitude 7440, refurbished";
	d.category = "laptop";
	d.brand = "dell";
	d.region = "US";
	d.has_price = 1;
	d.price = 649.0;
	d.has_list_price = 1;
	d.list_price = 1099.0;
	d.discount_pct = 100.0 * (1099.0 - 649.0) / 1099.0;  /* 40.95 */
	memcpy(d.currency, "USD", 4);
	d.url = "https://shop.example/outlet/7731";
	d.code = "SAVE20";
	d.expires_at = NOW + 3600;
	return d;
}

/* The fake zone formatter: "<zone>@<epoch>", or failure for the zone "bad". */
static size_t
fake_local(void *arg, const char *tz, int64_t t, char *buf, size_t size)
{
	int *calls = arg;
	int n;

	(*calls)++;
	if (strcmp(tz, "bad") == 0)
		return 0;
	n = snprintf(buf, size, "%s@%lld", tz, (long long)t);
	return n < 0 ? 0 : (size_t)n;
}

static struct rule_template *
tpl(const char *text)
{
	struct err e;
	struct rule_template *t = rule_template_new(text, strlen(text), &e);

	if (t == NULL)
		fail_msg("template \"%s\": %s", text, e.msg);
	return t;
}

/* Renders text for d on ch with cap; returns the owned result. */
static struct rule_text
render(const char *text, const struct deal *d, enum channel ch, unsigned cap)
{
	struct rule_template *t = tpl(text);
	struct subscriber s;
	struct rule_render_in in;
	struct rule_text out;
	struct err e;
	int calls = 0;

	memset(&s, 0, sizeof(s));
	s.id = "s-1";
	s.timezone = "America/Chicago";
	memset(&in, 0, sizeof(in));
	in.deal = d;
	in.sub = &s;
	in.now = NOW;
	in.fmt_local = fake_local;
	in.fmt_arg = &calls;
	in.channel = ch;
	in.max_segments = cap;
	if (rule_render(t, &in, &out, &e) != 0)
		fail_msg("render \"%s\": %s", text, e.msg);
	rule_template_free(t);
	return out;
}

static void
every_placeholder_renders(void **state)
{
	struct deal d = mk_deal();
	struct rule_text out = render("{title}|{price}|{list_price}|{discount_pct}|{code}|"
	    "{expires_local}|{link}|{brand}|{{x}}", &d, CH_DM, 0);

	(void)state;
	assert_string_equal(out.s, "Latitude 7440, refurbished|$649.00|$1,099.00|40|SAVE20|"
	    "America/Chicago@1795374000|https://shop.example/outlet/7731|dell|{x}");
	assert_int_equal(out.len, strlen(out.s));
	rule_text_free(&out);
	rule_text_free(&out);
	rule_text_free(NULL);
}

static void
absent_values_render_empty_and_overrides_win(void **state)
{
	struct deal d = mk_deal();
	struct rule_template *t = tpl("[{price}][{code}][{link}][{brand}]");
	struct rule_render_in in;
	struct rule_text out;
	struct err e;

	(void)state;
	d.has_price = 0;
	d.code = NULL;
	d.brand = NULL;
	memset(&in, 0, sizeof(in));
	in.deal = &d;
	in.channel = CH_DM;
	assert_int_equal(rule_render(t, &in, &out, &e), 0);
	assert_string_equal(out.s, "[][][https://shop.example/outlet/7731][]");
	rule_text_free(&out);
	in.link = "https://n.example/c/abc";
	in.code = "ONLY-YOU-7";
	assert_int_equal(rule_render(t, &in, &out, &e), 0);
	assert_string_equal(out.s, "[][ONLY-YOU-7][https://n.example/c/abc][]");
	rule_text_free(&out);
	rule_template_free(t);
}

static void
expires_local_falls_back_to_utc(void **state)
{
	struct deal d = mk_deal();
	struct rule_template *t = tpl("ends {expires_local}");
	struct rule_render_in in;
	struct rule_text out;
	struct subscriber s;
	struct err e;
	int calls = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.timezone = "bad";
	memset(&in, 0, sizeof(in));
	in.deal = &d;
	in.sub = &s;
	in.now = NOW;
	in.fmt_local = fake_local;
	in.fmt_arg = &calls;
	assert_int_equal(rule_render(t, &in, &out, &e), 0);
	assert_string_equal(out.s, "ends 19:00 UTC");
	assert_int_equal(calls, 1);
	rule_text_free(&out);
	in.fmt_local = NULL;
	d.expires_at = NOW + 3 * 86400 + 90;
	assert_int_equal(rule_render(t, &in, &out, &e), 0);
	assert_string_equal(out.s, "ends 2026-11-25 18:01 UTC");
	rule_text_free(&out);
	rule_template_free(t);
}

static void
money_is_formatted_by_currency(void **state)
{
	char buf[64];

	(void)state;
	rule_money_format(649, "USD", buf, sizeof(buf));
	assert_string_equal(buf, "$649.00");
	rule_money_format(1234567.891, "USD", buf, sizeof(buf));
	assert_string_equal(buf, "$1,234,567.89");
	rule_money_format(649, "EUR", buf, sizeof(buf));
	assert_string_equal(buf, "€649.00");
	rule_money_format(0.5, "GBP", buf, sizeof(buf));
	assert_string_equal(buf, "£0.50");
	rule_money_format(64900.4, "JPY", buf, sizeof(buf));
	assert_string_equal(buf, "¥64,900");
	rule_money_format(649, "CHF", buf, sizeof(buf));
	assert_string_equal(buf, "649.00 CHF");
	rule_money_format(19.999, "", buf, sizeof(buf));
	assert_string_equal(buf, "20.00");
	assert_int_equal(rule_money_format(1099, "USD", buf, 4), 9);
	assert_string_equal(buf, "$1,");
	assert_int_equal(rule_money_format(1099, "USD", buf, 8), 9);
	assert_string_equal(buf, "$1,099.");
	assert_int_equal(rule_money_format(649, "CHF", buf, 8), 10);
	assert_string_equal(buf, "649.00 ");
	rule_money_format(-5.5, "USD", buf, sizeof(buf));
	assert_string_equal(buf, "-$5.50");
	rule_money_format(-0.001, "USD", buf, sizeof(buf));
	assert_string_equal(buf, "$0.00");
	rule_money_format(999.995, "USD", buf, sizeof(buf));
	assert_string_equal(buf, "$1,000.00");
	rule_money_format(100000, "JPY", buf, sizeof(buf));
	assert_string_equal(buf, "¥100,000");
	rule_money_format(0, "JPY", buf, sizeof(buf));
	assert_string_equal(buf, "¥0");
	rule_money_format(123456789012.34, "EUR", buf, sizeof(buf));
	assert_string_equal(buf, "€123,456,789,012.34");
	rule_money_format(1e300, "USD", buf, sizeof(buf));
	assert_true(strncmp(buf, "$1000000", 8) == 0);
}

static void
discount_is_rounded_down(void **state)
{
	struct deal d = mk_deal();
	struct rule_text out;

	(void)state;
	d.discount_pct = 19.999;
	out = render("{discount_pct}%", &d, CH_DM, 0);
	assert_string_equal(out.s, "19%");
	rule_text_free(&out);
	d.discount_pct = 20.0;
	out = render("{discount_pct}%", &d, CH_DM, 0);
	assert_string_equal(out.s, "20%");
	rule_text_free(&out);
}

/* ---- counting ---- */

static unsigned
count(const char *s, enum rule_encoding *enc, unsigned *units)
{
	return rule_sms_count(s, strlen(s), enc, units);
}

static void
gsm7_segments_are_160_then_153(void **state)
{
	char buf[512];
	enum rule_encoding enc;
	unsigned units;

	(void)state;
	assert_int_equal(count("", &enc, &units), 0);
	memset(buf, 'a', sizeof(buf));
	buf[160] = '\0';
	assert_int_equal(count(buf, &enc, &units), 1);
	assert_int_equal(enc, RULE_ENC_GSM7);
	assert_int_equal(units, 160);
	buf[160] = 'a';
	buf[161] = '\0';
	assert_int_equal(count(buf, &enc, &units), 2);
	buf[161] = 'a';
	buf[306] = '\0';
	assert_int_equal(count(buf, &enc, &units), 2);
	buf[306] = 'a';
	buf[307] = '\0';
	assert_int_equal(count(buf, &enc, &units), 3);
	/* extension characters are two septets: 79 '{' + 'a' = 159 + ... */
	memset(buf, '{', 80);
	buf[80] = '\0';
	assert_int_equal(count(buf, &enc, &units), 1);
	assert_int_equal(units, 160);
	assert_int_equal(enc, RULE_ENC_GSM7);
	/* an escape pair never straddles two parts: 152 septets then '€' moves on */
	memset(buf, 'a', 152);
	memcpy(buf + 152, "€", 3);
	memset(buf + 155, 'a', 8);
	buf[163] = '\0';
	assert_int_equal(count(buf, &enc, &units), 2);
	assert_int_equal(units, 162);
	memset(buf, 'a', 152);
	memcpy(buf + 152, "€", 3);
	memset(buf + 155, 'a', 152);
	buf[307] = '\0';  /* 152 + (2 + 152) = 306 septets, but 3 parts */
	assert_int_equal(count(buf, &enc, &units), 3);
	assert_int_equal(units, 306);
	assert_int_equal(count("£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà@$\n\r",
	    &enc, &units), 1);
	assert_int_equal(enc, RULE_ENC_GSM7);
	count("^{}\\[~]|€\f", &enc, &units);
	assert_int_equal(enc, RULE_ENC_GSM7);
	assert_int_equal(units, 20);
}

/* The ASCII table of rule_sms_count against GSM 03.38 as written: every character
 * alone, and each between 'a's (a character without a septet makes the text UCS-2). */
static void
every_ascii_character_counts_as_gsm_03_38_says(void **state)
{
	enum rule_encoding enc;
	unsigned units, want;
	char one[1], three[3];
	int c;

	(void)state;
	for (c = 0; c < 128; c++) {
		if (c == '\n' || c == '\r')
			want = 1;
		else if (c == '\f' || (c != 0 && strchr("[\\]^{|}~", c) != NULL))
			want = 2;
		else if (c >= ' ' && c < 127 && c != '`')
			want = 1;
		else
			want = 0;
		one[0] = (char)c;
		assert_int_equal(rule_sms_count(one, 1, &enc, &units), 1);
		assert_int_equal(enc, want > 0 ? RULE_ENC_GSM7 : RULE_ENC_UCS2);
		assert_int_equal(units, want > 0 ? want : 1);
		memcpy(three, "a a", 3);
		three[1] = (char)c;
		rule_sms_count(three, 3, &enc, &units);
		assert_int_equal(enc, want > 0 ? RULE_ENC_GSM7 : RULE_ENC_UCS2);
		assert_int_equal(units, want > 0 ? want + 2 : 3);
	}
}

static void
ucs2_segments_are_70_then_67(void **state)
{
	char buf[1024];
	enum rule_encoding enc;
	unsigned units;
	size_t i;

	(void)state;
	assert_int_equal(count("price `5`", &enc, &units), 1);  /* backtick is not GSM */
	assert_int_equal(enc, RULE_ENC_UCS2);
	for (i = 0; i < 70; i++)
		memcpy(buf + 2 * i, "ж", 2);
	buf[140] = '\0';
	assert_int_equal(count(buf, &enc, &units), 1);
	assert_int_equal(units, 70);
	memcpy(buf + 140, "ж", 3);
	assert_int_equal(count(buf, &enc, &units), 2);
	for (i = 0; i < 134; i++)
		memcpy(buf + 2 * i, "ж", 2);
	buf[268] = '\0';
	assert_int_equal(count(buf, &enc, &units), 2);
	memcpy(buf + 268, "ж", 3);
	assert_int_equal(count(buf, &enc, &units), 3);
	/* an emoji is a surrogate pair: 2 units, never split */
	for (i = 0; i < 66; i++)
		buf[i] = 'a';
	memcpy(buf + 66, "\xF0\x9F\x94\xA5", 4);
	buf[70] = 'b';
	buf[71] = '\0';
	assert_int_equal(count(buf, &enc, &units), 1);
	assert_int_equal(units, 69);
	for (i = 0; i < 66; i++)
		buf[i] = 'a';
	memcpy(buf + 66, "\xF0\x9F\x94\xA5", 4);
	memset(buf + 70, 'b', 67);
	buf[137] = '\0';  /* 66 + 2 + 67 = 135 units: the pair moves to part 2 */
	assert_int_equal(count(buf, &enc, &units), 3);
	assert_int_equal(count("\xff", &enc, &units), 1);  /* invalid counts as U+FFFD */
	assert_int_equal(enc, RULE_ENC_UCS2);
}

/* ---- the cap ---- */

static void
segment_cap_shortens_only_the_title(void **state)
{
	struct deal d = mk_deal();
	char title[400];
	struct rule_text out;
	const char *t = "Outlet: {title} {price}, code {code}. {link} Reply STOP to end";

	(void)state;
	memset(title, 'x', sizeof(title));
	memcpy(title, "Refurbished Latitude 7440 with docking station and two chargers ", 64);
	title[sizeof(title) - 1] = '\0';
	d.title = title;
	out = render(t, &d, CH_SMS, 0);
	assert_int_equal(out.segments, 4);
	assert_int_equal(out.shortened, 0);
	rule_text_free(&out);
	out = render(t, &d, CH_SMS, 1);
	assert_int_equal(out.segments, 1);
	assert_int_equal(out.enc, RULE_ENC_GSM7);
	assert_int_equal(out.shortened, 1);
	assert_true(out.units <= 160);
	assert_non_null(strstr(out.s, "...")); /* GSM-7: three dots */
	assert_non_null(strstr(out.s, " $649.00, code SAVE20. "
	    "https://shop.example/outlet/7731 Reply STOP to end"));
	assert_true(strncmp(out.s, "Outlet: Refurbished Latitude", 28) == 0);
	/* Whole words only: the title kept ends where a word of it ends. */
	{
		const char *e = strstr(out.s, "...");
		size_t kept = (size_t)(e - out.s) - strlen("Outlet: ");

		assert_true(kept < sizeof(title) && title[kept] == ' ');
		assert_true(out.s[e - out.s - 1] != ' ');
	}
	rule_text_free(&out);
	/* Two segments would hold part of the 336-character last word: the title ends
	 * at the word before it instead. */
	out = render(t, &d, CH_SMS, 2);
	assert_true(out.segments <= 2);
	assert_int_equal(out.shortened, 1);
	assert_non_null(strstr(out.s, "two chargers... $649.00"));
	rule_text_free(&out);
	out = render(t, &d, CH_DM, 1);  /* no segments on DMs */
	assert_int_equal(out.shortened, 0);
	assert_non_null(strstr(out.s, title));
	rule_text_free(&out);
}

static void
shortening_prefers_a_word_boundary(void **state)
{
	struct deal d = mk_deal();
	struct rule_text out;
	char text[300], pad[200];

	(void)state;
	d.title = "Dell XPS 13 Plus, platinum edition";
	/* 130 + 5 septets around the title leave 25: 22 characters and "..." */
	memset(pad, 'a', 130);
	pad[130] = '\0';
	snprintf(text, sizeof(text), "{title}%s STOP", pad);
	out = render(text, &d, CH_SMS, 1);
	assert_int_equal(out.shortened, 1);
	assert_true(strncmp(out.s, "Dell XPS 13 Plus...aaa", 22) == 0);  /* comma dropped */
	assert_true(out.units <= 160);
	rule_text_free(&out);
	/* a word longer than 15 characters is cut where the room ends */
	d.title = "Supercalifragilisticexpialidocious";
	out = render(text, &d, CH_SMS, 1);
	assert_true(strncmp(out.s, "Supercalifragilisticex...aaa", 28) == 0);
	assert_int_equal(out.units, 160);
	rule_text_free(&out);
}

static void
ucs2_text_is_shortened_with_an_ellipsis_character(void **state)
{
	struct deal d = mk_deal();
	struct rule_text out;
	char title[400];
	size_t i;

	(void)state;
	for (i = 0; i < 100; i++)
		memcpy(title + 2 * i, "ж", 2);
	title[200] = '\0';
	d.title = title;
	out = render("{title} {code} STOP", &d, CH_SMS, 1);
	assert_int_equal(out.enc, RULE_ENC_UCS2);
	assert_int_equal(out.segments, 1);
	assert_int_equal(out.units, 70);
	assert_non_null(strstr(out.s, "\xE2\x80\xA6 SAVE20 STOP"));
	rule_text_free(&out);
	/* a title is never cut away entirely: a UCS-2 title that leaves no room for
	 * one character of it is refused, not sent without it */
	d.title = "ж";
	{
		struct rule_template *tp;
		struct rule_render_in in;
		struct err e;
		char text[300];

		memset(text, 'a', 158);
		memcpy(text + 158, " {title}", 9);
		tp = tpl(text);
		memset(&in, 0, sizeof(in));
		in.deal = &d;
		in.channel = CH_SMS;
		in.max_segments = 1;
		assert_int_equal(rule_render(tp, &in, &out, &e), -1);
		assert_string_equal(e.code, "too_long");
		assert_null(out.s);
		rule_template_free(tp);
	}
}

static void
text_too_long_without_title_is_an_error(void **state)
{
	struct deal d = mk_deal();
	struct rule_template *t;
	struct rule_render_in in;
	struct rule_text out;
	struct err e;
	char text[400];

	(void)state;
	memset(text, 'a', 200);
	memcpy(text + 200, " {title} STOP", 14);
	t = tpl(text);
	memset(&in, 0, sizeof(in));
	in.deal = &d;
	in.channel = CH_SMS;
	in.max_segments = 1;
	assert_int_equal(rule_render(t, &in, &out, &e), -1);
	assert_string_equal(e.code, "too_long");
	assert_null(out.s);
	in.max_segments = 2;
	assert_int_equal(rule_render(t, &in, &out, &e), 0);
	assert_int_equal(out.segments, 2);
	rule_text_free(&out);
	rule_template_free(t);
}

static void
invalid_utf8_in_deal_fields_becomes_replacement_characters(void **state)
{
	struct deal d = mk_deal();
	struct rule_text out;

	(void)state;
	d.title = "bad\xff\xc3 title";
	out = render("{title}", &d, CH_SMS, 0);
	assert_string_equal(out.s, "bad\xEF\xBF\xBD\xEF\xBF\xBD title");
	assert_int_equal(out.enc, RULE_ENC_UCS2);
	rule_text_free(&out);
	/* At the start and the end, between valid multi-byte characters, alone. */
	d.title = "\x80" "caf\xc3\xa9\xe2\x82\xac\xed\xa0\x80\xc3\xa9\xf0";
	out = render("{title}", &d, CH_DM, 0);
	assert_string_equal(out.s, "\xEF\xBF\xBD" "caf\xc3\xa9\xe2\x82\xac\xEF\xBF\xBD"
	    "\xEF\xBF\xBD\xEF\xBF\xBD\xc3\xa9\xEF\xBF\xBD");
	rule_text_free(&out);
	d.title = "\xff";
	out = render("[{title}]", &d, CH_DM, 0);
	assert_string_equal(out.s, "[\xEF\xBF\xBD]");
	rule_text_free(&out);
}

static void
bad_templates_are_refused_with_an_offset(void **state)
{
	struct err e;
	struct rule_set *rs;

	(void)state;
	assert_null(rule_template_new("Hi {name}", 9, &e));
	assert_int_equal(e.kind, ERR_INPUT);
	assert_string_equal(e.field, "3");
	assert_non_null(strstr(e.msg, "unknown template placeholder '{name}'"));
	assert_null(rule_template_new("a}", 2, &e));
	assert_string_equal(e.field, "1");
	assert_null(rule_template_new("{title", 6, &e));
	assert_null(rule_template_new("x\0y", 3, &e));
	assert_string_equal(e.msg, "NUL byte in template");
	assert_null(rule_template_new("\xc3(", 2, &e));
	assert_string_equal(e.msg, "invalid UTF-8 in template");
	rule_template_free(NULL);
	/* templates owned by a rule set are not freed by rule_template_free() */
	rs = rule_compile(NULL, 0, NULL, NULL);
	rule_template_free((struct rule_template *)rule_template(rule_set_get(rs, 0), CH_SMS));
	assert_non_null(strstr(rule_template_text(rule_template(rule_set_get(rs, 0),
	    CH_SMS)), "{title}"));
	rule_set_free(rs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_placeholder_renders),
		cmocka_unit_test(absent_values_render_empty_and_overrides_win),
		cmocka_unit_test(expires_local_falls_back_to_utc),
		cmocka_unit_test(money_is_formatted_by_currency),
		cmocka_unit_test(discount_is_rounded_down),
		cmocka_unit_test(gsm7_segments_are_160_then_153),
		cmocka_unit_test(every_ascii_character_counts_as_gsm_03_38_says),
		cmocka_unit_test(ucs2_segments_are_70_then_67),
		cmocka_unit_test(segment_cap_shortens_only_the_title),
		cmocka_unit_test(shortening_prefers_a_word_boundary),
		cmocka_unit_test(ucs2_text_is_shortened_with_an_ellipsis_character),
		cmocka_unit_test(text_too_long_without_title_is_an_error),
		cmocka_unit_test(invalid_utf8_in_deal_fields_becomes_replacement_characters),
		cmocka_unit_test(bad_templates_are_refused_with_an_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
