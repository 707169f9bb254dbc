/*
 * test_keys.c: the names of shard-owned keys (notifier/keys.c, docs/sharding.md
 * section 2): exactly today's names in the single-instance layout; in the sharded
 * layout the same names behind the subscriber's shard tag, every key of one script
 * call on one slot, whatever '{' or '}' an id holds.
 */
#include <setjmp.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "keys.h"
#include "layout.h"
#include "shard.h"
#include "slot.h"

static int
slot(const char *key)
{
	return slot_of(key, strlen(key));
}

static int
sharded(void **state)
{
	struct err err;
	struct shard_layout *l = shard_layout_new(4, &err);

	(void)state;
	if (l == NULL)
		return -1;
	layout_set(l);
	return 0;
}

static int
single(void **state)
{
	(void)state;
	layout_clear();
	return 0;
}

static void
the_single_instance_layout_keeps_every_name(void **state)
{
	char k[KEYS_MAX];

	(void)state;
	assert_int_equal(keys_shards(), 1);
	assert_int_equal(keys_shard_of("s-1"), 0);
	assert_int_equal(keys_shard_key(0, KEYS_SUBSCRIBERS, k, sizeof(k)), 11);
	assert_string_equal(k, "subscribers");
	keys_shard_key(0, KEYS_SUB_CHANGES, k, sizeof(k));
	assert_string_equal(k, "subscribers:changes");
	keys_shard_key(0, KEYS_CONSENT_EPOCH, k, sizeof(k));
	assert_string_equal(k, "consent:epoch");
	keys_shard_key(0, KEYS_CONSENT_RECORDS, k, sizeof(k));
	assert_string_equal(k, "consent:records");
	keys_shard_key(0, KEYS_ENGAGEMENT_DECAY, k, sizeof(k));
	assert_string_equal(k, "engagement:decay");
	keys_consent(0, CH_SMS, k, sizeof(k));
	assert_string_equal(k, "consent:sms");
	keys_consent(0, CH_DM, k, sizeof(k));
	assert_string_equal(k, "consent:dm");
	keys_texts("s-1", k, sizeof(k));
	assert_string_equal(k, "texts:s-1");
	keys_camp("spring", "s-1", k, sizeof(k));
	assert_string_equal(k, "camp:spring:s-1");
	keys_capcamp("spring", "s-1", k, sizeof(k));
	assert_string_equal(k, "capcamp:spring:s-1");
	keys_capdeal("d-1", "s-1", k, sizeof(k));
	assert_string_equal(k, "capdeal:d-1:s-1");
	keys_clicked(0, "d-1:s-1:sms", k, sizeof(k));
	assert_string_equal(k, "clicked:d-1:s-1:sms");
	keys_shard_key(0, KEYS_STATS, k, sizeof(k));
	assert_string_equal(k, "stats");
	keys_shard_key(0, KEYS_PUSHES_LOG, k, sizeof(k));
	assert_string_equal(k, "pushes:log");
	keys_shard_key(0, KEYS_DELAYED, k, sizeof(k));
	assert_string_equal(k, "delayed");
	keys_shard_key(0, KEYS_RESOLVE_DUE, k, sizeof(k));
	assert_string_equal(k, "resolve:due");
	keys_shard_key(0, KEYS_RESOLVE_INFO, k, sizeof(k));
	assert_string_equal(k, "resolve:info");
	keys_shard_key(0, KEYS_RESOLVE_TRIES, k, sizeof(k));
	assert_string_equal(k, "resolve:tries");
	/* The per-deal, per-code, per-order and report keys: today's names. */
	{
		static const char *const want[KEYS_PER_NAMES] = {
			"push:d-1", "code:d-1", "pushinfo:d-1", "pushline:d-1", "delivery:d-1",
			"redelivered:d-1", "holdout:d-1", "retext:d-1", "codepush:d-1",
			"order:d-1", "report:deal:d-1", "report:rule:d-1",
			"report:campaign:d-1", "series:d-1", "link:d-1", "deal:d-1",
			"dealentry:d-1", "planset:d-1",
		};
		struct keys_prefixes px;
		int i;

		assert_int_equal(keys_prefixes(0, &px), 0);
		for (i = 0; i < KEYS_PER_NAMES; i++) {
			assert_int_equal(keys_per(0, (enum keys_per)i, "d-1", k, sizeof(k)),
			    (int)strlen(want[i]));
			assert_string_equal(k, want[i]);
			assert_int_equal(strncmp(px.p[i], want[i], strlen(px.p[i])), 0);
			assert_string_equal(want[i] + strlen(px.p[i]), "d-1");
		}
	}
	keys_status_seen(0, "SM1", "delivered", k, sizeof(k));
	assert_string_equal(k, "status_seen:SM1:delivered");
	/* The one group on deals. */
	assert_int_equal(keys_deals_group(0, k, sizeof(k)), 8);
	assert_string_equal(k, "notifier");
	assert_int_equal(keys_deals_group(1, k, sizeof(k)), -1);
	/* A pool's pushes take codes from the pool itself; none of the sharing keys. */
	assert_int_equal(keys_codestash(0, "d-1", "codes:first", k, sizeof(k)), 11);
	assert_string_equal(k, "codes:first");
	assert_int_equal(keys_codestash(0, "d-1", "", k, sizeof(k)), 0);
	assert_int_equal(keys_codestate(0, k, sizeof(k)), 0);
	assert_string_equal(k, "");
	assert_int_equal(keys_codeback(0, "d-1", "codes:first", k, sizeof(k)), 0);
	assert_int_equal(keys_pool_side("codes:first", KEYS_POOL_OUT, k, sizeof(k)), 0);
	assert_string_equal(k, "");
	assert_int_equal(keys_shard_of_push("1-0:s-1:sms"), 0);
	/* There is only shard 0. */
	assert_int_equal(keys_shard_key(1, KEYS_SUBSCRIBERS, k, sizeof(k)), -1);
	assert_string_equal(k, "");
}

static void
sharded_names_begin_with_the_subscribers_tag(void **state)
{
	char k[KEYS_MAX], want[KEYS_MAX];
	const char *tag;
	uint32_t s;

	(void)state;
	assert_int_equal(keys_shards(), 4);
	s = keys_shard_of("s-1");
	assert_int_equal(s, shard_of("s-1", 4));
	tag = shard_layout_tag(layout_current(), s);
	keys_shard_key(s, KEYS_SUBSCRIBERS, k, sizeof(k));
	snprintf(want, sizeof(want), "{%s}subscribers", tag);
	assert_string_equal(k, want);
	keys_texts("s-1", k, sizeof(k));
	snprintf(want, sizeof(want), "{%s}texts:s-1", tag);
	assert_string_equal(k, want);
	keys_consent(s, CH_DM, k, sizeof(k));
	snprintf(want, sizeof(want), "{%s}consent:dm", tag);
	assert_string_equal(k, want);
	assert_int_equal(keys_shard_key(4, KEYS_SUBSCRIBERS, k, sizeof(k)), -1);
	assert_int_equal(keys_texts("s-1", k, 8), -1);
	assert_string_equal(k, "");
	/* A group per shard on deals. */
	assert_int_equal(keys_deals_group(3, k, sizeof(k)), 2);
	assert_string_equal(k, "s3");
	assert_int_equal(keys_deals_group(4, k, sizeof(k)), -1);
	assert_int_equal(keys_deals_group(3, k, 2), -1);
	assert_string_equal(k, "");
}

/* ORDER SUB_KEYS (admin_sub_put.lua, admin_sub_del.lua, admin_sub_bulk.lua) and the
 * caps of admit.lua: every key of one call on the subscriber's slot. */
static void
every_key_of_a_subscriber_call_is_on_one_slot(void **state)
{
	static const char *const ids[] = {
		"s-1", "s-2", "{s0}", "}{", "a{b}c", "{", "}", "{s3.43003}x", "",
	};
	char k[KEYS_MAX];
	size_t i;
	int want;

	(void)state;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		uint32_t s = keys_shard_of(ids[i]), c;
		enum keys_name n;

		keys_shard_key(s, KEYS_SUBSCRIBERS, k, sizeof(k));
		want = slot(k);
		assert_int_equal(want, shard_target_slot(s, 4));
		for (n = 0; n < KEYS_NAMES; n++) {
			keys_shard_key(s, n, k, sizeof(k));
			assert_int_equal(slot(k), want);
		}
		for (c = 0; c < CH_COUNT; c++) {
			keys_consent(s, (enum channel)c, k, sizeof(k));
			assert_int_equal(slot(k), want);
		}
		keys_texts(ids[i], k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_camp("{c}", ids[i], k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_capcamp("c}", ids[i], k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_capdeal("{d:1}", ids[i], k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_clicked(s, "{x}", k, sizeof(k));
		assert_int_equal(slot(k), want);
	}
}

/* Increment 3 of step 2: every key about one push of a subscriber (its deal's
 * per-subscriber hashes, the code it sent, the order it won, the reports it counts
 * in, the shard's stats, log, delayed set and resolve keys, a status callback's
 * marker) is on the subscriber's shard's slot, with 4 shards, whatever the ids. */
static void
every_key_of_a_push_is_on_its_subscribers_slot(void **state)
{
	static const char *const subs[] = { "s-1", "s-2", "a{b}c", "}{", "{s1}", "" };
	static const char *const ids[] = { "d-1", "{d:1}", "x}y", "" };
	char k[KEYS_MAX], push[KEYS_MAX];
	struct keys_prefixes px;
	size_t i, j;
	int n;

	(void)state;
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		uint32_t s = keys_shard_of(subs[i]);
		int want = shard_target_slot(s, 4);

		snprintf(push, sizeof(push), "1700000000000-0:%s:sms", subs[i]);
		if (subs[i][0] != '\0')
			assert_int_equal(keys_shard_of_push(push), s);
		assert_int_equal(keys_prefixes(s, &px), 0);
		assert_int_equal(px.shard, s);
		for (n = 0; n < KEYS_NAMES; n++) {
			keys_shard_key(s, (enum keys_name)n, k, sizeof(k));
			assert_int_equal(slot(k), want);
		}
		for (n = 0; n < KEYS_PER_NAMES; n++) {
			for (j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
				assert_true(keys_per(s, (enum keys_per)n, ids[j], k,
				    sizeof(k)) > 0);
				assert_int_equal(slot(k), want);
				/* The tag first, then today's name. */
				assert_int_equal(k[0], '{');
				assert_int_equal(strncmp(k, px.p[n], strlen(px.p[n])), 0);
			}
		}
		keys_status_seen(s, "SM{1}", "delivered", k, sizeof(k));
		assert_int_equal(slot(k), want);
		keys_clicked(s, push, k, sizeof(k));
		assert_int_equal(slot(k), want);
	}
	/* A shard's share of a pool is on the shard's slot; the pool's own records are
	 * on the pool's slot, and a pool whose name has a tag of its own is refused. */
	for (i = 0; i < 4; i++) {
		char st[KEYS_MAX];

		keys_shard_key((uint32_t)i, KEYS_STATS, st, sizeof(st));
		keys_codestash((uint32_t)i, "d-1", "codes:first", k, sizeof(k));
		assert_int_equal(slot(k), slot(st));
		keys_codeback((uint32_t)i, "d-1", "codes:first", k, sizeof(k));
		assert_int_equal(slot(k), slot(st));
		keys_codestate((uint32_t)i, k, sizeof(k));
		assert_int_equal(slot(k), slot(st));
	}
	keys_pool_side("codes:first", KEYS_POOL_RES, k, sizeof(k));
	assert_string_equal(k, "{codes:first}:res");
	assert_int_equal(slot(k), slot("codes:first"));
	keys_pool_side("codes:first", KEYS_POOL_MARKS, k, sizeof(k));
	assert_int_equal(slot(k), slot("codes:first"));
	keys_pool_side("codes:first", KEYS_POOL_OUT, k, sizeof(k));
	assert_int_equal(slot(k), slot("codes:first"));
	assert_int_equal(keys_pool_side("codes:a{b}", KEYS_POOL_OUT, k, sizeof(k)), -1);
	/* A quota's implicit pool (docs/sharding.md 4c): its counter leaves L out of
	 * the name, its records are on the counter's slot, and a deal id with braces is
	 * written in hex so that neither picks a slot of its own. */
	assert_int_equal(keys_quota_pool("d-1", 300, k, sizeof(k)), 13);
	assert_string_equal(k, "quota:300:d-1");
	assert_int_equal(keys_quota_pool("d-1", 0, k, sizeof(k)), -1);
	assert_int_equal(keys_pool_quota("quota:300:d-1"), 300);
	assert_int_equal(keys_pool_quota("quota:300:"), 0);
	assert_int_equal(keys_pool_quota("quota:0:d-1"), 0);
	assert_int_equal(keys_pool_quota("quota:x:d-1"), 0);
	assert_int_equal(keys_pool_quota("quota:99999999999999999999:d-1"), 0);
	assert_int_equal(keys_pool_quota("codes:first"), 0);
	assert_int_equal(keys_pool_quota(""), 0);
	assert_int_equal(keys_pool_key("codes:first", k, sizeof(k)), 11);
	assert_string_equal(k, "codes:first");
	assert_int_equal(keys_pool_key("quota:300:d-1", k, sizeof(k)), 9);
	assert_string_equal(k, "quota:d-1");
	keys_pool_side("quota:300:d-1", KEYS_POOL_OUT, k, sizeof(k));
	assert_string_equal(k, "{quota:d-1}:out");
	assert_int_equal(slot(k), slot("quota:d-1"));
	keys_pool_side("quota:450:d-1", KEYS_POOL_RES, k, sizeof(k));
	assert_string_equal(k, "{quota:d-1}:res");
	assert_int_equal(keys_pool_key("quota:300:a{b}", k, sizeof(k)), 15);
	assert_string_equal(k, "quota:%617b627d");
	/* A deal id that spells such an escape is escaped too: "%617b" is not "a{". */
	assert_int_equal(keys_pool_key("quota:1:%617b", k, sizeof(k)), 17);
	assert_string_equal(k, "quota:%2536313762");
	assert_true(keys_pool_side("quota:300:a{b}", KEYS_POOL_MARKS, k, sizeof(k)) > 0);
	assert_int_equal(slot(k), slot("quota:%617b627d"));
	/* An A/B test's keys are the deal's, global as deal:<id> in every layout. */
	assert_int_equal(keys_ab(KEYS_AB_TESTS, "d-1", "flash", k, sizeof(k)), 7);
	assert_string_equal(k, "abtests");
	keys_ab(KEYS_AB_TEST, "d-1", "", k, sizeof(k));
	assert_string_equal(k, "abtest:d-1");
	keys_ab(KEYS_AB_REST, "d-1", "", k, sizeof(k));
	assert_string_equal(k, "abrest:d-1");
	keys_ab(KEYS_AB_QUEUE, "d-1", "flash", k, sizeof(k));
	assert_string_equal(k, "abq:d-1:flash");
	assert_int_equal(keys_ab(KEYS_AB_QUEUE, "d-1", "flash", k, 8), -1);
	assert_string_equal(k, "");
	assert_int_equal(keys_shard_of_push("not a push id"), 0);
	assert_int_equal(keys_prefix(0, KEYS_PER_NAMES, k, sizeof(k)), -1);
	assert_int_equal(keys_per(4, KEYS_PUSH, "d-1", k, sizeof(k)), -1);
}

/* The global keys a script uses with another global key: today's names without a
 * layout; with one, each on the slot of the key it is used with ("deals",
 * "conversions", "rules"), and the shard job streams on their shard's slot. */
static void
global_partners_share_a_slot(void **state)
{
	static const char *const partner[KEYS_G_NAMES] = { "deals", "deals", "deals",
	    "conversions", "rules", "rules", "rules", "rules", "rules" };
	char k[KEYS_MAX];
	int g;
	uint32_t s;

	(void)state;
	layout_clear();
	assert_string_equal(keys_global(KEYS_G_DEALS_DEAD), "deals:dead");
	assert_string_equal(keys_global(KEYS_G_AUDIT), "audit");
	assert_string_equal(keys_global(KEYS_G_TOKENS), "tokens");
	assert_int_equal(keys_session("ab12", k, sizeof(k)), 12);
	assert_string_equal(k, "session:ab12");
	keys_shard_key(0, KEYS_PUSHES, k, sizeof(k));
	assert_string_equal(k, "pushes");
	assert_int_equal(sharded(NULL), 0);
	for (g = 0; g < KEYS_G_NAMES; g++) {
		const char *n = keys_global((enum keys_global)g);

		assert_string_equal(n, keys_global_sharded((enum keys_global)g));
		assert_string_not_equal(n, keys_global_single((enum keys_global)g));
		assert_int_equal(slot(n), slot(partner[g]));
	}
	assert_string_equal(keys_global(KEYS_G_DEALS_TRIES), "{deals}:tries");
	assert_int_equal(keys_session("ab12", k, sizeof(k)), 20);
	assert_int_equal(slot(k), slot("rules"));
	assert_int_equal(keys_session("ab12", k, 8), -1);
	for (s = 0; s < 4; s++) {
		keys_shard_key(s, KEYS_PUSHES, k, sizeof(k));
		assert_int_equal(slot(k), shard_target_slot(s, 4));
	}
	assert_int_equal(keys_global(KEYS_G_NAMES)[0], '\0');
}

/* A number's keys (KEYS_PHONE): today's names on one Redis; on 4 shards each behind
 * the tag of the number's shard, all on one slot (hook_phone.lua, signup.lua's
 * yes_begin and yes_done take them together), and the shard's own inbound:done. */
static void
a_numbers_keys_are_on_its_slot(void **state)
{
	static const char *const single[KEYS_PH_NAMES] = { "suppressed:sms",
	    "inbound:sids", "optout_ack:+15125550100", "signup:+15125550100",
	    "signup:asked:+15125550100", "phones:", "dmx:", "inbound:pending" };
	char k[KEYS_MAX], first[KEYS_MAX], tag[32];
	int i, slot0 = -1, other = 0;
	uint32_t p;

	(void)state;
	layout_clear();
	for (i = 0; i < KEYS_PH_NAMES; i++) {
		assert_true(keys_phone("+15125550100", (enum keys_phone)i, k, sizeof(k)) > 0);
		if (i == KEYS_PH_PHONES || i == KEYS_PH_DMX) {
			/* "phones:<bucket>", the bucket below KEYS_PHONE_BUCKETS */
			assert_int_equal(strncmp(k, single[i], strlen(single[i])), 0);
			assert_true(strtoul(k + strlen(single[i]), NULL, 10) <
			    KEYS_PHONE_BUCKETS);
			continue;
		}
		assert_string_equal(k, single[i]);
	}
	/* Numbers spread over the buckets. */
	{
		char k2[KEYS_MAX];

		keys_phone("+15125550101", KEYS_PH_PHONES, k2, sizeof(k2));
		keys_phone("+15125550100", KEYS_PH_PHONES, k, sizeof(k));
		assert_string_not_equal(k, k2);
	}
	assert_int_equal(keys_phone("+1", KEYS_PH_NAMES, k, sizeof(k)), -1);
	assert_string_equal(k, "");
	keys_inbound_done(0, "SM1", k, sizeof(k));
	assert_string_equal(k, "inbound:done:SM1");
	assert_int_equal(sharded(NULL), 0);
	p = keys_phone_shard("+15125550100");
	assert_int_equal(p, keys_shard_of("+15125550100"));
	snprintf(tag, sizeof(tag), "{%s}", shard_layout_tag(layout_current(), p));
	for (i = 0; i < KEYS_PH_NAMES; i++) {
		keys_phone("+15125550100", (enum keys_phone)i, k, sizeof(k));
		assert_int_equal(strncmp(k, tag, strlen(tag)), 0);
		assert_int_equal(strncmp(k + strlen(tag), single[i], strlen(single[i])), 0);
		if (slot0 < 0) {
			slot0 = slot(k);
			snprintf(first, sizeof(first), "%s", k);
		}
		assert_int_equal(slot(k), slot0);
	}
	/* Numbers spread over the shards. */
	for (i = 0; i < 64; i++) {
		char n[24];

		snprintf(n, sizeof(n), "+151255501%02d", i);
		other |= keys_phone_shard(n) != p;
	}
	assert_true(other);
	keys_inbound_done(2, "SM1", k, sizeof(k));
	snprintf(tag, sizeof(tag), "{%s}inbound:done:SM1", shard_layout_tag(layout_current(),
	    2));
	assert_string_equal(k, tag);
	layout_clear();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(the_single_instance_layout_keeps_every_name,
		    single, NULL),
		cmocka_unit_test_setup_teardown(sharded_names_begin_with_the_subscribers_tag,
		    sharded, single),
		cmocka_unit_test_setup_teardown(every_key_of_a_subscriber_call_is_on_one_slot,
		    sharded, single),
		cmocka_unit_test_setup_teardown(every_key_of_a_push_is_on_its_subscribers_slot,
		    sharded, single),
		cmocka_unit_test_setup_teardown(global_partners_share_a_slot, single, single),
		cmocka_unit_test_setup_teardown(a_numbers_keys_are_on_its_slot, single, single),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
