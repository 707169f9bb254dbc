/*
 * test_example_segments.c: the example rules' SMS on the example deals fit their
 * segment caps with the click link and the product name, whole or shortened at a word
 * boundary, never empty (issue 17 item 1). Prints the segments of every push, with
 * the long /c/<token> link the texts carried before and the short link they carry
 * now, as "# " lines: the table in docs/rules.md ("Segments of the example texts").
 *
 * Two passes over rules/examples: every rule's own SMS template rendered for every
 * deal (whether or not the rule would choose it), and the real matcher over the
 * example subscribers, as `make run` publishes the deals (the built-in default's
 * variants included).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clicktok.h"
#include "deal.h"
#include "match.h"
#include "rules.h"
#include "shortlink.h"
#include "subscriber.h"
#include "tz.h"

#define DIR "rules/examples/"
#define PUBLIC_URL "https://notify.example.com"    /* as deploy/notifier.conf.example */
#define LINK_BASE PUBLIC_URL "/c"                  /* the default link base */
#define KEY "0123456789abcdef0123456789abcdef"
#define ENTRY "1767286800000-0"                    /* a deal's stream entry */
#define NOW INT64_C(1767268800)                    /* 2026-01-01T12:00:00Z */

static const char *const rule_files[] = {
	"clearance.rules", "first_codes.rules", "outlet_vip.rules", "price_drop.rules",
	"regional.rules",
};
#define NFILES (sizeof(rule_files) / sizeof(rule_files[0]))

/* The file's contents, or NULL. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *s = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		*len = fread(s, 1, (size_t)n, f);
		s[*len] = '\0';
	}
	fclose(f);
	return s;
}

static struct rule_set *
compile_examples(void)
{
	struct rule_source src[NFILES];
	char *texts[NFILES], path[256];
	struct rule_set *rs;
	struct err e;
	size_t i;

	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), DIR "%s", rule_files[i]);
		texts[i] = slurp(path, &src[i].len);
		assert_non_null(texts[i]);
		src[i].name = rule_files[i];
		src[i].text = texts[i];
	}
	err_clear(&e);
	rs = rule_compile(src, NFILES, NULL, &e);
	if (rs == NULL)
		fail_msg("examples: %s", e.msg);
	for (i = 0; i < NFILES; i++)
		free(texts[i]);
	return rs;
}

/* The next line of *p (NUL-terminated in place), or NULL at the end. */
static char *
next_line(char **p)
{
	char *line = *p, *nl;

	if (line == NULL || *line == '\0')
		return NULL;
	if ((nl = strchr(line, '\n')) != NULL) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = line + strlen(line);
	}
	return line;
}

/* The example deals, parsed as of NOW (they expire at 19:00 that day). */
static size_t
load_deals(struct deal **out, size_t max)
{
	size_t len, n = 0;
	char *s = slurp(DIR "deals.jsonl", &len), *line, *p = s;
	struct err e;

	assert_non_null(s);
	while ((line = next_line(&p)) != NULL) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		assert_true(n < max);
		err_clear(&e);
		if ((out[n] = deal_parse(line, strlen(line), NOW, &e)) == NULL)
			fail_msg("deal: %s", e.msg);
		n++;
	}
	free(s);
	return n;
}

/* "Thu 13:00 CST": the form the matcher gives {expires_local}. */
static size_t
fake_local(void *arg, const char *tz, int64_t t, char *buf, size_t size)
{
	(void)arg;
	(void)tz;
	(void)t;
	return (size_t)snprintf(buf, size, "Thu 13:00 CST");
}

/* The long link a push got before short links, and the short one it gets now. */
static void
links_of(const char *sub, char *lng, char *shrt, size_t size)
{
	char push[128], tok[CLICKTOK_MAX + 1], code[SHORTLINK_LEN + 1];

	snprintf(push, sizeof(push), "%s:%s:sms", ENTRY, sub);
	assert_int_equal(clicktok_make((const unsigned char *)KEY, strlen(KEY), push, tok,
	    sizeof(tok)), 0);
	assert_int_equal(shortlink_for_push((const unsigned char *)KEY, strlen(KEY), push,
	    0, 1, code), 0);
	snprintf(lng, size, PUBLIC_URL "/c/%s", tok);
	snprintf(shrt, size, LINK_BASE "/%s", code);
}

static unsigned
count(const char *text)
{
	enum rule_encoding enc;
	unsigned units;

	return rule_sms_count(text, strlen(text), &enc, &units);
}

/* 1 when text holds the whole of title, or a cut of it that ends a word of it and
 * is followed by the ellipsis. */
static int
title_fits_whole_or_by_words(const char *text, const char *title)
{
	size_t k;

	if (strstr(text, title) != NULL)
		return 1;
	for (k = strlen(title); k > 0; k--) {
		char cut[512];

		if (title[k] != ' ' && title[k] != ',')
			continue;
		snprintf(cut, sizeof(cut), "%.*s...", (int)k, title);
		if (strstr(text, cut) != NULL)
			return k > 0;
	}
	return 0;
}

static void
every_rules_sms_fits_its_cap_with_the_link_and_a_title(void **state)
{
	struct rule_set *rs = compile_examples();
	struct deal *deals[16];
	size_t nd = load_deals(deals, 16), i, j;
	char lng[512], shrt[512];

	(void)state;
	links_of("s-1001", lng, shrt, sizeof(lng));
	printf("# rule              deal          cap  long  short  shortened\n");
	for (i = 0; i < rule_set_count(rs); i++) {
		const struct rule *r = rule_set_get(rs, i);
		const struct rule_template *t = rule_template(r, CH_SMS);

		if (!(rule_channels(r) & CH_BIT(CH_SMS)))
			continue;
		for (j = 0; j < nd; j++) {
			struct rule_render_in in;
			struct rule_text before, after;
			struct err e;

			memset(&in, 0, sizeof(in));
			in.deal = deals[j];
			in.now = NOW;
			in.fmt_local = fake_local;
			in.channel = CH_SMS;
			in.link = lng;
			in.code = deals[j]->code_pool != NULL ? "VIP-7F3K-2201-AB" : NULL;
			err_clear(&e);
			if (rule_render(t, &in, &before, &e) < 0)   /* no cap: the full text */
				fail_msg("%s: %s", rule_name(r), e.msg);
			in.link = shrt;
			in.max_segments = rule_max_segments(r);
			if (rule_render(t, &in, &after, &e) < 0)
				fail_msg("%s on %s: %s", rule_name(r), deals[j]->id, e.msg);
			printf("# %-17s %-13s %3u %5u %6u  %s\n", rule_name(r), deals[j]->id,
			    rule_max_segments(r), before.segments, after.segments,
			    after.shortened ? "yes" : "no");
			if (after.shortened)
				printf("#   %s\n", after.s);
			assert_true(after.segments <= rule_max_segments(r));
			assert_non_null(strstr(after.s, shrt));
			if (!title_fits_whole_or_by_words(after.s, deals[j]->title))
				fail_msg("%s on %s: the title is cut inside a word or gone: %s",
				    rule_name(r), deals[j]->id, after.s);
			rule_text_free(&before);
			rule_text_free(&after);
		}
	}
	for (j = 0; j < nd; j++)
		deal_free(deals[j]);
	rule_set_free(rs);
}

static void
matched_pushes_of_the_demo_fit_and_carry_a_short_link(void **state)
{
	struct tzcache *zones = tzcache_new(NULL, 64);
	struct matcher *m;
	struct subscriber *subs[64];
	struct deal *deals[16];
	size_t nd = load_deals(deals, 16), ns = 0, i, j, len;
	char *s = slurp(DIR "subscribers.jsonl", &len), *line, *p = s;
	struct err e;
	unsigned long seg_long = 0, seg_short = 0, pushes = 0;

	(void)state;
	assert_non_null(zones);
	err_clear(&e);
	assert_non_null(m = matcher_new(1.5, zones, &e));
	matcher_set_rules(m, compile_examples());
	assert_non_null(s);
	while ((line = next_line(&p)) != NULL) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		assert_true(ns < 64);
		if ((subs[ns] = subscriber_parse(line, strlen(line), &e)) == NULL)
			fail_msg("subscriber: %s", e.msg);
		matcher_on_change(m, NULL, subs[ns]);
		ns++;
	}
	free(s);
	printf("# deal          rule              sub       short\n");
	for (j = 0; j < nd; j++) {
		struct match_links lk = { PUBLIC_URL, NULL, (const unsigned char *)KEY,
			strlen(KEY), ENTRY };
		struct match_list before, after;
		unsigned long sb = 0, sa = 0, nb = 0, na = 0;

		/* Before: the long links, under the same caps and shortening. */
		memset(&before, 0, sizeof(before));
		memset(&after, 0, sizeof(after));
		assert_int_equal(match_deal_links(m, deals[j], NOW, &lk, &before, &e), 0);
		lk.link_base = LINK_BASE;
		assert_int_equal(match_deal_links(m, deals[j], NOW, &lk, &after, &e), 0);
		assert_int_equal(after.unrenderable, 0);
		for (i = 0; i < before.n; i++)
			if (before.v[i].ch == CH_SMS) {
				sb += count(before.v[i].text);
				nb++;
			}
		for (i = 0; i < after.n; i++) {
			const struct match_rcpt *a = &after.v[i];

			if (a->ch != CH_SMS)
				continue;
			printf("# %-13s %-17s %-8s %5u\n", deals[j]->id, a->rule, a->sub->id,
			    count(a->text));
			assert_non_null(strstr(a->text, LINK_BASE "/"));
			sa += count(a->text);
			na++;
		}
		printf("# %s: long links %lu SMS (%zu unrenderable) %lu segments; short "
		    "links %lu SMS %lu segments\n", deals[j]->id, nb, before.unrenderable, sb,
		    na, sa);
		assert_true(na >= nb);
		seg_long += sb;
		seg_short += sa;
		pushes += na;
		match_list_free(&before);
		match_list_free(&after);
	}
	printf("# %lu SMS: %lu segments with long links, %lu with short links\n", pushes,
	    seg_long, seg_short);
	assert_true(pushes > 0);
	assert_true(seg_short < seg_long);
	matcher_free(m);
	for (i = 0; i < ns; i++)
		subscriber_free(subs[i]);
	for (j = 0; j < nd; j++)
		deal_free(deals[j]);
	tzcache_free(zones);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_rules_sms_fits_its_cap_with_the_link_and_a_title),
		cmocka_unit_test(matched_pushes_of_the_demo_fit_and_carry_a_short_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
