/*
 * test_subbulk.c: the arguments of one admin_sub_bulk.lua call (ORDER BULK_KEYS,
 * ORDER BULK_ARGS) and the reading of its reply, refusing every malformed one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "keys.h"
#include "layout.h"
#include "phoneix.h"
#include "shard.h"
#include "slot.h"
#include "subbulk.h"
#include "subscriber.h"

static struct subscriber *
parse(const char *json, char **canon)
{
	struct err e;
	struct subscriber *s = subscriber_parse_canon(json, strlen(json), canon, &e);

	assert_non_null(s);
	return s;
}

static void
arguments_follow_the_script_order(void **state)
{
	struct subbulk *b = subbulk_new(2, "import");
	struct subscriber *s1, *s2;
	char *c1, *c2;
	const char **args;
	const size_t *lens;
	int n, i;
	static const char *const keys[] = { "subscribers", "subscribers:changes",
	    "consent:epoch", "consent:records", "stops", "consent:sms", "consent:dm" };

	(void)state;
	assert_non_null(b);
	s1 = parse("{\"id\":\"a\",\"phone\":\"+15125550100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"UTC\"}", &c1);
	s2 = parse("{\"id\":\"b\",\"dm\":{\"x\":\"7\"},\"channels\":[\"dm\"],"
	    "\"timezone\":\"UTC\"}", &c2);
	assert_int_equal(subbulk_add(b, s1, c1, 3), 0);
	assert_int_equal(subbulk_add(b, s2, c2, 9), 0);
	/* Full: refused, and the canonical form it was given is freed (ASan checks). */
	assert_int_equal(subbulk_add(b, s2, strdup("{}"), 10), -1);
	assert_int_equal(subbulk_count(b), 2);
	assert_int_equal(subbulk_line(b, 1), 9);
	n = subbulk_args(b, 1767000000, &args, &lens);
	assert_int_equal(n, SUBBULK_NKEYS + 2 + 2 * (4 + CH_COUNT));
	for (i = 0; i < SUBBULK_NKEYS; i++)
		assert_string_equal(args[i], keys[i]);
	assert_string_equal(args[i++], "1767000000");
	assert_string_equal(args[i++], "import");
	assert_string_equal(args[i++], "a");
	assert_string_equal(args[i], "{\"id\":\"a\",\"phone\":\"+15125550100\",\"channels\":"
	    "[\"sms\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\",\"dm\":null},"
	    "\"timezone\":\"UTC\",\"engagement\":0}");
	assert_int_equal(lens[i], strlen(args[i]));
	i++;
	assert_string_equal(args[i++], "+15125550100");
	assert_string_equal(args[i++], "");        /* no suppression entry read */
	assert_string_equal(args[i++], "1767348000");
	assert_string_equal(args[i++], "");
	assert_string_equal(args[i++], "b");
	i++;
	assert_string_equal(args[i++], "");
	assert_string_equal(args[i++], "");
	assert_string_equal(args[i++], "");
	assert_string_equal(args[i++], "");
	n = subbulk_evalsha(b, "0123456789012345678901234567890123456789", 5, &args, &lens);
	assert_string_equal(args[0], "EVALSHA");
	assert_string_equal(args[2], "7");
	assert_string_equal(args[3], "subscribers");
	assert_int_equal(n, 3 + SUBBULK_NKEYS + 2 + 2 * (4 + CH_COUNT));
	subbulk_reset(b);
	assert_int_equal(subbulk_count(b), 0);
	subscriber_free(s1);
	subscriber_free(s2);
	subbulk_free(b);
	subbulk_free(NULL);
	assert_null(subbulk_new(0, "x"));
	assert_null(subbulk_new(SUBBULK_MAX + 1, "x"));
}

/* A reply of n integers, strings and nils: "i:<n>", "s:<text>" or "n". */
static redisReply *
reply(int n, ...)
{
	redisReply *r = calloc(1, sizeof(*r));
	va_list ap;
	int i;

	r->type = REDIS_REPLY_ARRAY;
	r->elements = (size_t)n;
	r->element = calloc((size_t)n, sizeof(*r->element));
	va_start(ap, n);
	for (i = 0; i < n; i++) {
		const char *v = va_arg(ap, const char *);
		redisReply *e = calloc(1, sizeof(*e));

		if (v[0] == 'i') {
			e->type = REDIS_REPLY_INTEGER;
			e->integer = strtoll(v + 2, NULL, 10);
		} else if (v[0] == 'n') {
			e->type = REDIS_REPLY_NIL;
		} else {
			e->type = REDIS_REPLY_STRING;
			e->str = strdup(v + 2);
			e->len = strlen(e->str);
		}
		r->element[i] = e;
	}
	va_end(ap);
	return r;
}

static void
replies_are_read_and_malformed_ones_refused(void **state)
{
	long long c[3];
	redisReply *r;
	const char *ch;
	size_t pos;

	(void)state;
	r = reply(7, "i:3", "i:2", "i:1", "i:2", "s:sms", "i:3", "s:sms,dm");
	assert_int_equal(subbulk_reply(r, 3, c), 2);
	assert_int_equal(c[0], 3);
	assert_int_equal(c[1], 2);
	assert_int_equal(c[2], 1);
	subbulk_kept(r, 1, &pos, &ch);
	assert_int_equal(pos, 2);
	assert_string_equal(ch, "sms,dm");
	/* stored is not the batch's size */
	assert_int_equal(subbulk_reply(r, 4, c), -1);
	freeReplyObject(r);
	/* a position out of the batch, a kept-out entry cut short, no counts */
	r = reply(5, "i:3", "i:0", "i:0", "i:4", "s:sms");
	assert_int_equal(subbulk_reply(r, 3, c), -1);
	freeReplyObject(r);
	r = reply(4, "i:3", "i:0", "i:0", "i:1");
	assert_int_equal(subbulk_reply(r, 3, c), -1);
	freeReplyObject(r);
	r = reply(2, "i:3", "i:0");
	assert_int_equal(subbulk_reply(r, 3, c), -1);
	freeReplyObject(r);
	r = reply(3, "s:3", "i:0", "i:0");
	assert_int_equal(subbulk_reply(r, 3, c), -1);
	freeReplyObject(r);
	assert_int_equal(subbulk_reply(NULL, 3, c), -1);
}

/* A subscriber with SMS consent and a number; id and number as given. */
static void
add_sms(struct subbulk *b, const char *id, const char *phone)
{
	char json[256], *canon;
	struct subscriber *s;

	snprintf(json, sizeof(json), "{\"id\":\"%s\",\"phone\":\"%s\",\"channels\":"
	    "[\"sms\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
	    "\"timezone\":\"UTC\"}", id, phone);
	s = parse(json, &canon);
	assert_int_equal(subbulk_add(b, s, canon, 1), 0);
	subscriber_free(s);
}

/* An index call's shape: nk keys (the suppression list, then the buckets), "add",
 * then triples whose first names a bucket among the keys, which is the bucket of its
 * number; want triples (-1: any). */
static void
check_triples(const char **argv, int argc, int nk, int want)
{
	char ix[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX];
	int j;

	assert_true(nk >= 2);
	assert_string_equal(argv[nk], "add");
	assert_int_equal((argc - nk - 1) % 3, 0);
	if (want >= 0)
		assert_int_equal((argc - nk - 1) / 3, want);
	for (j = nk + 1; j < argc; j += 3) {
		int pos = atoi(argv[j]);
		enum phoneix_kind kind = argv[j + 1][0] == '+' ? PHONEIX_PHONE : PHONEIX_DM;

		assert_true(pos >= 2 && pos <= nk);
		assert_int_equal(phoneix_keys(kind, argv[j + 1], ix, sup), 0);
		assert_string_equal(argv[pos - 1], ix);
	}
}

/* Before its call a batch adds its ids to the phone index on the slots of the
 * numbers and X ids (phone_index.lua "add"), one call per (index, phone shard), every
 * number and X id exactly once, reading the numbers' entries on the suppression list
 * with it; an entry lands in its subscriber's arguments only with SMS consent. */
static void
suppression_entries_are_read_per_phone_slot(void **state)
{
	struct shard_layout *l;
	struct subbulk *b;
	struct err err;
	const char **argv, **args;
	const size_t *lens;
	char ix[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX];
	const char *phones[3] = { "+15125550100", "+15125550101", "+15125550102" };
	int n, i, j, reads, argc, nk, seen = 0, dms = 0;
	size_t k;

	(void)state;
	/* One Redis: one add for the whole batch, each number's bucket named once. */
	b = subbulk_new(8, "import");
	add_sms(b, "a", phones[0]);
	add_sms(b, "b", phones[1]);
	assert_int_equal(subbulk_reads(b), 1);
	argc = subbulk_read_argv(b, 0, &argv, &lens, &nk);
	check_triples(argv, argc, nk, 2);
	assert_string_equal(argv[0], "suppressed:sms");
	assert_string_equal(argv[nk + 2], phones[0]);
	assert_string_equal(argv[nk + 3], "a");
	assert_string_equal(argv[nk + 5], phones[1]);
	assert_string_equal(argv[nk + 6], "b");
	for (i = 0; i < argc; i++)
		assert_int_equal(lens[i], strlen(argv[i]));
	/* A reply of the wrong length or type is refused, and keeps nothing. */
	{
		redisReply *bad = reply(1, "s:x");

		assert_int_equal(subbulk_read_reply(b, 0, bad), -1);
		freeReplyObject(bad);
		bad = reply(2, "s:x", "n");     /* a nil: phone_index.lua answers "" */
		assert_int_equal(subbulk_read_reply(b, 0, bad), -1);
		freeReplyObject(bad);
		assert_int_equal(subbulk_read_reply(b, 0, NULL), -1);
		assert_int_equal(subbulk_read_reply(b, 1, NULL), -1);
	}
	{
		redisReply *r = reply(2, "s:", "s:1767400000\tsms:STOP\tstop");

		assert_int_equal(subbulk_read_reply(b, 0, r), 0);
		freeReplyObject(r);
	}
	n = subbulk_args(b, 1767000000, &args, &lens);
	assert_int_equal(n, SUBBULK_NKEYS + 2 + 2 * (4 + CH_COUNT));
	i = SUBBULK_NKEYS + 2;
	assert_string_equal(args[i + 3], "");
	assert_string_equal(args[i + 4 + CH_COUNT + 3], "1767400000\tsms:STOP\tstop");
	subbulk_free(b);

	/* Four shards: the numbers and X ids of a batch (one subscriber shard) are
	 * added on their own slots, each exactly once. */
	l = shard_layout_new(4, &err);
	assert_non_null(l);
	layout_set(l);
	b = subbulk_new(8, "import");
	assert_int_equal(subbulk_set_shard(b, keys_shard_of("a")), 0);
	for (j = 0, k = 0; j < 3; k++) {
		char id[16];

		/* three ids of one shard, each with its own number */
		snprintf(id, sizeof(id), "a%zu", k);
		if (keys_shard_of(id) != keys_shard_of("a"))
			continue;
		add_sms(b, id, phones[j++]);
	}
	{
		char *canon;
		struct subscriber *s = parse("{\"id\":\"a\",\"dm\":{\"x\":\"777\"},"
		    "\"channels\":[\"dm\"],\"timezone\":\"UTC\"}", &canon);

		assert_int_equal(subbulk_add(b, s, canon, 4), 0);
		subscriber_free(s);
	}
	reads = subbulk_reads(b);
	assert_true(reads >= 2 && reads <= 4);
	for (i = 0; i < reads; i++) {
		argc = subbulk_read_argv(b, i, &argv, &lens, &nk);
		check_triples(argv, argc, nk, -1);
		for (j = nk + 1; j < argc; j += 3) {
			enum phoneix_kind kind = strcmp(argv[j + 1], "777") == 0 ?
			    PHONEIX_DM : PHONEIX_PHONE;

			assert_int_equal(phoneix_keys(kind, argv[j + 1], ix, sup), 0);
			assert_string_equal(argv[0], sup);
			/* every key of the call on one slot: the number's */
			assert_int_equal(slot_of(argv[atoi(argv[j]) - 1],
			    strlen(argv[atoi(argv[j]) - 1])), slot_of(ix, strlen(ix)));
			if (kind == PHONEIX_DM)
				dms++;
			else
				seen++;
		}
	}
	assert_int_equal(seen, 3);
	assert_int_equal(dms, 1);
	subbulk_free(b);
	layout_clear();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arguments_follow_the_script_order),
		cmocka_unit_test(replies_are_read_and_malformed_ones_refused),
		cmocka_unit_test(suppression_entries_are_read_per_phone_slot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
