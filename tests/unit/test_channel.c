/*
 * test_channel.c: the channel table (include/channel.h, rules/channel.c): every
 * channel has a row that names it, its contact member and its place in struct
 * subscriber; names go both ways; the consent keys and the subscriber document's
 * checks come from the table; SMS keeps the holdout hash of before the split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "channel.h"
#include "err.h"
#include "keys.h"
#include "rules.h"
#include "subscriber.h"

static void
every_channel_has_a_whole_row(void **state)
{
	int c;

	(void)state;
	for (c = 0; c < CH_COUNT; c++) {
		const struct channel_def *d = channel_def((enum channel)c);

		assert_non_null(d);
		assert_non_null(d->name);
		assert_non_null(d->contact);
		assert_non_null(d->template);
		assert_string_equal(channel_name((enum channel)c), d->name);
		assert_string_equal(channel_names()[c], d->name);
		assert_int_equal(channel_from_name(d->name), c);
	}
	assert_null(channel_def(CH_COUNT));
	assert_null(channel_name(CH_COUNT));
	assert_int_equal(channel_from_name("fax"), -1);
	assert_int_equal(channel_from_name(NULL), -1);
	/* What tells SMS apart is in its row. */
	assert_true(channel_def(CH_SMS)->segments && channel_def(CH_SMS)->optout_text);
	assert_false(channel_def(CH_DM)->segments || channel_def(CH_DM)->optout_text);
	assert_true(channel_def(CH_SMS)->holdout_salt == 0);
	assert_true(channel_def(CH_DM)->holdout_salt == RULE_HOLDOUT_DM_SALT);
}

static void
contacts_and_consent_keys_come_from_the_table(void **state)
{
	struct subscriber s;
	char key[64];
	int c;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.phone = "+15125550100";
	s.dm_x = "12345";
	assert_string_equal(channel_contact(&s, CH_SMS), "+15125550100");
	assert_string_equal(channel_contact(&s, CH_DM), "12345");
	assert_null(channel_contact(&s, CH_COUNT));
	assert_null(channel_contact(NULL, CH_SMS));
	for (c = 0; c < CH_COUNT; c++) {
		char want[64];

		snprintf(want, sizeof(want), "consent:%s", channel_name((enum channel)c));
		assert_true(keys_consent(0, (enum channel)c, key, sizeof(key)) > 0);
		assert_string_equal(key, want);
	}
}

/* A document naming a channel without its contact member is refused, naming the
 * member the table gives. */
static void
a_channel_without_its_contact_is_refused_by_name(void **state)
{
	static const char *const docs[CH_COUNT] = {
		[CH_SMS] = "{\"id\":\"s\",\"channels\":[\"sms\"],\"timezone\":\"UTC\"}",
		[CH_DM] = "{\"id\":\"s\",\"channels\":[\"dm\"],\"timezone\":\"UTC\"}",
	};
	int c;

	(void)state;
	for (c = 0; c < CH_COUNT; c++) {
		struct err err;
		struct subscriber *s;

		err_clear(&err);
		s = subscriber_parse(docs[c], strlen(docs[c]), &err);
		assert_null(s);
		assert_string_equal(err.code, "missing_field");
		assert_string_equal(err.field, channel_def((enum channel)c)->contact);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_channel_has_a_whole_row),
		cmocka_unit_test(contacts_and_consent_keys_come_from_the_table),
		cmocka_unit_test(a_channel_without_its_contact_is_refused_by_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
