/*
 * test_script_races.c: the scripts whose keys their caller names from a read
 * (hook_status.lua, click.lua, convert.lua, decay.lua; docs/architecture.md, "every
 * key a script touches is in its KEYS") write nothing and answer "retry" when what
 * the caller read has moved since, and do their work when it still holds.
 *
 * Each script is run here as the notifier runs it (the embedded text, EVAL on the
 * shared redis), with the keys and the read values a caller would pass: once as if
 * the read were stale (the deal of the entry, the push's pushinfo, the push a code
 * went to, the decay cursor moved in between), then with what Redis holds. "Nothing
 * written" is checked on the whole database (key count) and on the keys the script
 * would have written.
 *
 * Checked to fail without the behaviour: in a scratch copy whose hook_status.lua did
 * not compare the pushinfo it was told with what Redis holds, and whose decay.lua did
 * not compare the cursor, the first and the last test failed; the real tree passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "scripts.h"

#define SUB_JSON "{\"id\":\"s-1\",\"phone\":\"+15005550001\",\"channels\":[\"sms\"]," \
	"\"consent\":{\"sms\":\"2026-01-01T00:00:00Z\"},\"engagement\":0.5}"

static redisContext *rc;

static int
setup(void **state)
{
	(void)state;
	rc = it_redis_connect(it_redis_port());
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	redisFree(rc);
	return 0;
}

/* EVAL of the embedded script name with keys then args (NULL-terminated lists): an
 * error reply fails the test. The reply is the caller's. */
static redisReply *
eval(const char *name, const char *const *keys, const char *const *args)
{
	redisReply *r = it_eval(rc, name, keys, args);

	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("%s.lua: %s", name, r->str);
	return r;
}

/* Field of hash key as a number; -1 when absent. */
static long long
hget_int(const char *key, const char *field)
{
	redisReply *r = redisCommand(rc, "HGET %s %s", key, field);
	long long v = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	freeReplyObject(r);
	return v;
}

/* The first string of an array reply, or the string of a string/status reply. */
static const char *
first(const redisReply *r)
{
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING)
		return r->element[0]->str;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		return r->str;
	return "";
}

static void
status_callback_retries_when_the_push_moved(void **state)
{
	/* ORDER HOOK_STATUS_KEYS */
	const char *keys[] = { "dealentry:100-0", "stats", "resolve:due", "resolve:info",
		"resolve:tries", "pushes:log", "delivery:d1", "push:d1", "pushinfo:d1",
		"pushline:d1", "redelivered:d1", "report:deal:d1", "", "",
		"report:rule:r1", "report:campaign:c1", "subscribers", "subscribers:changes",
		"consent:sms", "consent:epoch", "consent:records", "",
		"paused_templates", "pushes", "behaviour", NULL };
	const char *stale_deal[] = { "100-0", "s-1", "sms", "delivered", "", "", "1000",
		"", "d0", "", "", NULL };
	const char *stale_info[] = { "100-0", "s-1", "sms", "delivered", "", "", "1000",
		"", "d1", "", "", NULL };
	const char *fresh[] = { "100-0", "s-1", "sms", "delivered", "", "", "1000", "",
		"d1", "", "r1\tc1", NULL };
	redisReply *r;
	long long n;

	(void)state;
	it_flush(rc);
	freeReplyObject(redisCommand(rc, "SET dealentry:100-0 d1"));
	freeReplyObject(redisCommand(rc, "HSET pushinfo:d1 s-1:sms %s", "r1\tc1"));
	n = it_int(rc, "DBSIZE");
	r = eval("hook_status", keys, stale_deal);
	assert_string_equal(first(r), "retry");
	freeReplyObject(r);
	r = eval("hook_status", keys, stale_info);
	assert_string_equal(first(r), "retry");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "DBSIZE"), n);
	r = eval("hook_status", keys, fresh);
	assert_string_equal(first(r), "delivered");
	freeReplyObject(r);
	assert_int_equal(hget_int("report:rule:r1", "delivered"), 1);
	assert_int_equal(hget_int("report:campaign:c1", "delivered"), 1);
	assert_int_equal(hget_int("report:deal:d1", "delivered"), 1);
}

static void
click_retries_when_the_push_moved(void **state)
{
	/* ORDER CLICK_KEYS */
	const char *keys[] = { "dealentry:100-0", "clicked:100-0:s-1:sms", "subscribers",
		"subscribers:changes", "deal:d1", "pushinfo:d1", "report:deal:d1",
		"report:rule:r1", "report:campaign:c1", "series:d1", "behaviour",
		NULL };
	const char *no_deal[] = { "100-0:s-1:sms", "s-1", "sms", "1", "60", "0.1", "",
		"", "", "1767348000", NULL };
	const char *no_info[] = { "100-0:s-1:sms", "s-1", "sms", "1", "60", "0.1", "d1",
		"", "c0", "1767348000", NULL };
	const char *fresh[] = { "100-0:s-1:sms", "s-1", "sms", "1", "60", "0.1", "d1",
		"r1\tc1", "c0", "1767348000", NULL };
	redisReply *r;
	long long n;

	(void)state;
	it_flush(rc);
	freeReplyObject(redisCommand(rc, "SET dealentry:100-0 d1"));
	freeReplyObject(redisCommand(rc, "HSET deal:d1 url https://example.com/d campaign c0"));
	freeReplyObject(redisCommand(rc, "HSET pushinfo:d1 s-1:sms %s", "r1\tc1"));
	freeReplyObject(redisCommand(rc, "HSET subscribers s-1 %s", SUB_JSON));
	n = it_int(rc, "DBSIZE");
	r = eval("click", keys, no_deal);
	assert_string_equal(first(r), "retry");
	freeReplyObject(r);
	r = eval("click", keys, no_info);
	assert_string_equal(first(r), "retry");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "DBSIZE"), n);
	r = eval("click", keys, fresh);
	assert_string_equal(first(r), "ok");
	assert_true(r->elements == 5 && strcmp(r->element[4]->str, "1") == 0);
	freeReplyObject(r);
	assert_int_equal(hget_int("report:rule:r1", "clicked"), 1);
	assert_int_equal(hget_int("report:campaign:c1", "clicked"), 1);
	assert_int_equal(it_int(rc, "EXISTS clicked:100-0:s-1:sms"), 1);
}

static void
conversion_retries_when_the_code_or_push_moved(void **state)
{
	/* ORDER CONVERT_KEYS */
	const char *keys[] = { "conversions", "conversions:dead", "subscribers",
		"subscribers:changes", "codepush:K1", "dealentry:100-0", "pushinfo:d1",
		"deal:d1", "holdout:d1", "order:o1", "report:deal:d1", "report:rule:r1",
		"report:campaign:c1", "clicked:100-0:s-1:sms", "", "series:d1", "behaviour",
		NULL };
	const char *no_push[] = { "attr", "1-0", "attribution", "d1", "o1", "5", "USD",
		"code", "K1", "{}", "60", "0.3", "", "", "", "", "1767348000", "432000",
		"86400", "", "", NULL };
	const char *no_info[] = { "attr", "1-0", "attribution", "d1", "o1", "5", "USD",
		"code", "K1", "{}", "60", "0.3", "100-0:s-1:sms", "", "", "", "1767348000",
		"432000", "86400", "", "", NULL };
	const char *fresh[] = { "attr", "1-0", "attribution", "d1", "o1", "5", "USD",
		"code", "K1", "{}", "60", "0.3", "100-0:s-1:sms", "r1\tc1", "", "",
		"1767348000", "432000", "86400", "", "", NULL };
	redisReply *r;
	long long n;

	(void)state;
	it_flush(rc);
	freeReplyObject(redisCommand(rc, "SET codepush:K1 100-0:s-1:sms"));
	freeReplyObject(redisCommand(rc, "SET dealentry:100-0 d1"));
	freeReplyObject(redisCommand(rc, "HSET pushinfo:d1 s-1:sms %s", "r1\tc1"));
	freeReplyObject(redisCommand(rc, "HSET subscribers s-1 %s", SUB_JSON));
	n = it_int(rc, "DBSIZE");
	r = eval("convert", keys, no_push);
	assert_string_equal(first(r), "retry");
	freeReplyObject(r);
	r = eval("convert", keys, no_info);
	assert_string_equal(first(r), "retry");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "DBSIZE"), n);
	assert_int_equal(it_int(rc, "EXISTS order:o1"), 0);
	r = eval("convert", keys, fresh);
	assert_string_equal(first(r), "attributed");
	freeReplyObject(r);
	assert_int_equal(hget_int("report:rule:r1", "redeemed"), 1);
	assert_int_equal(hget_int("report:campaign:c1", "redeemed"), 1);
	assert_int_equal(it_int(rc, "EXISTS order:o1"), 1);
}

static void
decay_does_nothing_when_the_cursor_moved(void **state)
{
	/* ORDER DECAY_KEYS */
	const char *keys[] = { "engagement:decay", "subscribers", "subscribers:changes",
		"clicked:100-0:s-1:sms", NULL };
	const char *stale[] = { "0", "0.5", "", "1-0", "100-0:s-1:sms", "s-1", NULL };
	const char *fresh[] = { "0", "0.5", "0-5", "1-0", "100-0:s-1:sms", "s-1", NULL };
	redisReply *r, *js;

	(void)state;
	it_flush(rc);
	freeReplyObject(redisCommand(rc, "SET engagement:decay 0-5"));
	freeReplyObject(redisCommand(rc, "HSET subscribers s-1 %s", SUB_JSON));
	r = eval("decay", keys, stale);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_int_equal(r->integer, -1);
	freeReplyObject(r);
	js = redisCommand(rc, "GET engagement:decay");
	assert_string_equal(js->str, "0-5");
	freeReplyObject(js);
	assert_int_equal(it_int(rc, "XLEN subscribers:changes"), 0);
	r = eval("decay", keys, fresh);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	js = redisCommand(rc, "HGET subscribers s-1");
	assert_non_null(strstr(js->str, "\"engagement\":0.25}"));
	freeReplyObject(js);
	js = redisCommand(rc, "GET engagement:decay");
	assert_string_equal(js->str, "1-0");
	freeReplyObject(js);
}

/*
 * lib/textdiff.lua (pushline:<deal> keeps a sent SMS as its difference from the
 * rule's first text): every text comes back byte for byte, whatever it shares with
 * the reference, and the stored form is short when only a token differs. Run on
 * Redis' own Lua, as record.lua and hook_status.lua run it.
 */
static void
textdiff_gives_back_every_text_byte_for_byte(void **state)
{
	static const char *const pairs[][2] = {
		{ "Deal: $649 https://s.example/c/AAAA1111 ends Fri",
		  "Deal: $649 https://s.example/c/BBBB2222 ends Fri" },
		{ "same", "same" },
		{ "abc", "" },
		{ "", "xyz" },
		{ "prefix only", "prefix only, and more" },
		{ "aaaa", "aa" },
		{ "aXa", "aYYa" },
		{ "nothing\tin\tcommon", "\t\tZ\xc3\xa9\t" },
		{ "0\t0\tlooks encoded", "0\t0\tlooks encoded too" },
	};
	char path[1024], lib[8192], script[9000];
	const char *root = getenv("DP_ROOT");
	FILE *f;
	size_t n, i;
	redisReply *r;

	(void)state;
	assert_non_null(root);
	snprintf(path, sizeof(path), "%s/notifier/lua/lib/textdiff.lua", root);
	assert_non_null(f = fopen(path, "r"));
	n = fread(lib, 1, sizeof(lib) - 1, f);
	fclose(f);
	lib[n] = '\0';
	snprintf(script, sizeof(script), "%s\nlocal d = td_encode(ARGV[1], ARGV[2])\n"
	    "return { d, td_decode(ARGV[1], d) or false }", lib);
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		r = redisCommand(rc, "EVAL %s 0 %s %s", script, pairs[i][0], pairs[i][1]);
		assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
		assert_int_equal(r->element[1]->type, REDIS_REPLY_STRING);
		assert_string_equal(r->element[1]->str, pairs[i][1]);
		if (i == 0)   /* only the token is kept: "<p>\t<s>\tBBBB2222" */
			assert_true(strlen(r->element[0]->str) < 20);
		freeReplyObject(r);
	}
	/* With a hint kept across the texts of one reference (record.lua: per deal and
	 * rule), each encoding is the one found without it: texts spliced at random
	 * from the reference, from a two-letter alphabet so that the bytes beside a
	 * splice often match it, some at the hint's place and some elsewhere. */
	snprintf(script, sizeof(script), "%s\nlocal ref, hint, bad = ARGV[1], {}, {}\n"
	    "math.randomseed(7)\n"
	    "local function any(n) local t = {} for k = 1, n do "
	    "t[k] = math.random(2) == 1 and 'A' or 'B' end return table.concat(t) end\n"
	    "for i = 1, 3000 do\n"
	    "  local at = math.random(0, #ref)\n"
	    "  if i %% 3 ~= 0 then at = 20 end\n"
	    "  local text = string.sub(ref, 1, at) .. any(math.random(0, 6)) ..\n"
	    "    string.sub(ref, at + 1 + math.random(0, 6))\n"
	    "  if i %% 50 == 0 then text = ref end\n"
	    "  local h = td_encode(ref, text, hint)\n"
	    "  if h ~= td_encode(ref, text) or td_decode(ref, h) ~= text then\n"
	    "    bad[#bad + 1] = text end\n"
	    "end\n"
	    "return bad", lib);
	r = redisCommand(rc, "EVAL %s 0 %s", script, "ABBA deal ABAB https://s.example/c/"
	    "ABBAAB ends BA");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
	if (r->elements > 0)
		fail_msg("%zu texts encoded otherwise with the hint, e.g. \"%s\"", r->elements,
		    r->element[0]->str);
	freeReplyObject(r);
	/* Not a difference, or one that does not fit the reference: nothing. */
	snprintf(script, sizeof(script), "%s\nreturn { td_decode('abc', 'x') or false, "
	    "td_decode('abc', '2\\t2\\tx') or false }", lib);
	r = redisCommand(rc, "EVAL %s 0", script);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	assert_int_equal(r->element[0]->type, REDIS_REPLY_NIL);
	assert_int_equal(r->element[1]->type, REDIS_REPLY_NIL);
	freeReplyObject(r);
}

/* EVAL of ab_verdict.lua for deal, rule r, with verdict ("" = only read it). */
static redisReply *
ab_verdict(const char *deal, const char *verdict)
{
	char k[64];
	const char *argv[] = { "EVAL", script_source("ab_verdict"), "1", k, "r", verdict };

	assert_non_null(argv[1]);
	snprintf(k, sizeof(k), "abtest:%s", deal);
	return redisCommandArgv(rc, 6, argv, NULL);
}

/* EVAL of ab_release.lua for deal, rule r, in the shard whose copy of the deal,
 * held rest, queue and job stream are named (ORDER AB_RELEASE_KEYS), decided for
 * variant index widx, a batch of 1000 in jobs of 50. The reply is the caller's. */
static redisReply *
ab_release_in(const char *deal, const char *copy, const char *rest, const char *q,
    const char *pushes, const char *decision)
{
	char rd[64], job[64];
	const char *argv[] = { "EVAL", script_source("ab_release"), "7", copy, rest, q,
		pushes, rd, "report:rule:r", "", deal, "r", decision, job, "1000", "50" };

	assert_non_null(argv[1]);
	snprintf(rd, sizeof(rd), "report:deal:%s", deal);
	snprintf(job, sizeof(job), "%s-0\t9999999999\t\t\t0", deal);
	return redisCommandArgv(rc, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

/* ab_release.lua for deal d9 decided for variant b (index 1), on the
 * single-instance layout's keys. */
static redisReply *
ab_release(void)
{
	return ab_release_in("d9", "deal:d9", "abrest:d9", "abq:d9:r", "pushes",
	    "1\tb\tfinal\t100\t2.5\t0.99");
}

/* The first verdict stored stands, and a test without its job is refused; a held
 * recipient the release cannot place (its value lacks the winner's text) is refused
 * before anything is written: nobody marked released, no job; once the values are
 * right, both go, once. */
static void
ab_release_refuses_a_recipient_it_cannot_place(void **state)
{
	redisReply *r;

	(void)state;
	freeReplyObject(redisCommand(rc, "DEL abtests abtest:d9 abrest:d9 abq:d9:r deal:d9 "
	    "report:deal:d9 report:rule:r pushes"));
	r = ab_verdict("d9", "1\tb\tfinal\t100\t2.5\t0.99");
	assert_true(r != NULL && r->type == REDIS_REPLY_ERROR);
	freeReplyObject(r);
	freeReplyObject(redisCommand(rc, "HSET abtest:d9 r:job %s",
	    "9-0\t9999999999\t\t\t0"));
	r = ab_verdict("d9", "");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	assert_string_equal(r->element[0]->str, "open");
	freeReplyObject(r);
	r = ab_verdict("d9", "1\tb\tfinal\t100\t2.5\t0.99");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3);
	freeReplyObject(r);
	r = ab_verdict("d9", "0\ta\tfinal\t200\t2.5\t0.99");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3);
	assert_string_equal(r->element[1]->str, "1\tb\tfinal\t100\t2.5\t0.99");
	freeReplyObject(r);
	freeReplyObject(redisCommand(rc, "HSET abrest:d9 s-1:sms 0\036A1\036B1 "
	    "s-2:sms 0\036A2"));
	freeReplyObject(redisCommand(rc, "RPUSH abq:d9:r s-1:sms s-2:sms"));
	r = ab_release();
	assert_true(r != NULL && r->type == REDIS_REPLY_ERROR);
	assert_non_null(strstr(r->str, "without variant 1's text"));
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "LLEN abq:d9:r"), 2);
	assert_int_equal(it_int(rc, "EXISTS pushes"), 0);
	r = redisCommand(rc, "HGET abrest:d9 s-1:sms");
	assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
	assert_string_equal(r->str, "0\036A1\036B1");
	freeReplyObject(r);
	/* right again: both released once, in variant b's text, one job */
	freeReplyObject(redisCommand(rc, "HSET abrest:d9 s-2:sms 0\036A2\036B2"));
	r = ab_release();
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	assert_string_equal(r->element[1]->str, "2");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "XLEN pushes"), 1);
	assert_int_equal(it_int(rc, "LLEN abq:d9:r"), 0);
	r = ab_release();
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	assert_string_equal(r->element[1]->str, "0");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "XLEN pushes"), 1);
}

/* Over two shards, each releasing what it holds: a cancelled copy releases nobody;
 * without a cancel each released recipient is counted in its own shard's copy and
 * reports, and a shard has nothing left only once its queue is empty and its copy
 * says planned. */
static void
ab_release_counts_each_shard_and_stops_at_any_cancel(void **state)
{
	static const char dec[] = "0\ta\tfinal\t100\t2.5\t0.99";
	redisReply *r;

	(void)state;
	freeReplyObject(redisCommand(rc, "DEL report:deal:d7 report:rule:r p0 p1 dc0 dc1 "
	    "r0 r1 q0 q1"));
	freeReplyObject(redisCommand(rc, "HSET r0 a-1:sms 0\036A1\036B1"));
	freeReplyObject(redisCommand(rc, "HSET r1 a-2:sms 1\036A2\036B2 "
	    "a-3:sms 1\036A3\036B3"));
	freeReplyObject(redisCommand(rc, "RPUSH q0 a-1:sms"));
	freeReplyObject(redisCommand(rc, "RPUSH q1 a-2:sms a-3:sms"));
	freeReplyObject(redisCommand(rc, "HSET dc0 planned 7-0"));
	freeReplyObject(redisCommand(rc, "HSET dc1 planning 7-0 cancelled 100"));
	r = ab_release_in("d7", "dc1", "r1", "q1", "p1", dec);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	assert_string_equal(r->element[0]->str, "cancelled");
	assert_string_equal(r->element[1]->str, "0");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "EXISTS p1"), 0);
	assert_int_equal(it_int(rc, "LLEN q1"), 2);
	r = ab_release_in("d7", "dc0", "r0", "q0", "p0", dec);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	assert_string_equal(r->element[0]->str, "empty");
	assert_string_equal(r->element[1]->str, "1");
	freeReplyObject(r);
	/* Not cancelled: shard 1 releases its own, counted in its own copy. */
	freeReplyObject(redisCommand(rc, "HDEL dc1 cancelled"));
	r = ab_release_in("d7", "dc1", "r1", "q1", "p1", dec);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	assert_string_equal(r->element[0]->str, "more");   /* shard 1 still planning */
	assert_string_equal(r->element[1]->str, "2");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "XLEN p0"), 1);
	assert_int_equal(it_int(rc, "XLEN p1"), 1);
	assert_int_equal(hget_int("dc0", "recipients"), 1);
	assert_int_equal(hget_int("dc1", "recipients"), 2);
	assert_int_equal(hget_int("dc1", "ab_released"), 2);
	assert_int_equal(hget_int("dc1", "jobs"), 1);
	assert_int_equal(hget_int("report:deal:d7", "planned"), 3);
	/* Shard 1 planned: nothing left there, nothing released again. */
	freeReplyObject(redisCommand(rc, "HSET dc1 planned 7-0"));
	r = ab_release_in("d7", "dc1", "r1", "q1", "p1", dec);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	assert_string_equal(r->element[0]->str, "empty");
	assert_string_equal(r->element[1]->str, "0");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "XLEN p1"), 1);
}

/* plan.lua chunk chunk of deal d8 (last: the deal's final chunk), one job of one
 * recipient sub for rule r, on the single-instance layout's one job stream. */
static void
plan_chunk(int chunk, int last, const char *sub)
{
	char sc[8], snc[8], line[64];
	/* ORDER PLAN_KEYS: 6 keys (no owner: no shard ownership), then the rule's
	 * report key; ARGV 14 fixed, the epoch "" */
	const char *argv[] = { "EVAL", script_source("plan"), "7", "deal:d8",
		"dealentry:8-0", "planset:d8", "report:deal:d8", "", "pushes",
		"report:rule:r", "8-0", sc, snc, "86400", "1", "",
		"https://shop.example/d8", "D8", "", "0", "a1", "d8", "", "", "r",
		"4", "deal", "d8", "entry", "8-0", "exp", "9999999999", "r", line };
	redisReply *r;

	assert_non_null(argv[1]);
	snprintf(sc, sizeof(sc), "%d", chunk);
	snprintf(snc, sizeof(snc), "%d", last ? chunk + 1 : 0);
	snprintf(line, sizeof(line), "sms\t%s\t+15005550100\tr\tD8 text", sub);
	r = redisCommandArgv(rc, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("plan.lua: %s", r->str);
	freeReplyObject(r);
}

/* An A/B test's rest released between two plan chunks of its deal (an early
 * decision on a deal planned in several chunks) is counted as planned once: by
 * ab_release.lua, not again in the total the last chunk adds. */
static void
rest_released_before_the_plan_ends_is_counted_once(void **state)
{
	redisReply *r;

	(void)state;
	freeReplyObject(redisCommand(rc, "DEL deal:d8 dealentry:8-0 planset:d8 "
	    "report:deal:d8 report:rule:r pushes abtests abtest:d8 abrest:d8 abq:d8:r"));
	plan_chunk(0, 0, "p-1");
	freeReplyObject(redisCommand(rc, "HSET abtest:d8 r:job %s",
	    "8-0\t9999999999\t\t\t0"));
	freeReplyObject(redisCommand(rc, "HSET abrest:d8 h-1:sms 0\036A1 h-2:sms 0\036A2"));
	freeReplyObject(redisCommand(rc, "RPUSH abq:d8:r h-1:sms h-2:sms"));
	r = ab_release_in("d8", "deal:d8", "abrest:d8", "abq:d8:r", "pushes",
	    "0\ta\tearly\t100\t3.1\t0.99");
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	assert_string_equal(r->element[1]->str, "2");
	freeReplyObject(r);
	plan_chunk(1, 1, "p-2");
	/* two planned by the chunks, two released */
	assert_int_equal(hget_int("deal:d8", "recipients"), 4);
	assert_int_equal(hget_int("report:deal:d8", "planned"), 4);
	assert_int_equal(hget_int("report:rule:r", "planned"), 4);
}

/* code_give.lua "out" on an empty stash (docs/sharding.md 4c "As built"): the shard's
 * record of a live deal stays ("empty"); an hour past the deal's end it goes
 * ("gone"), so the walk reads only live pooled deals; a stash used in the last idle
 * seconds by any notifier is not given back ("busy"). */
static void
code_records_end_with_their_deal_and_a_used_stash_is_kept(void **state)
{
	char now[24], line[64];
	const char *argv[] = { "EVAL", script_source("code_give"), "4", "cs", "stash",
		"back", "copy", "out", "d1\tcodes:x", "0", "3600", now, "2" };
	long long t = it_now();
	redisReply *r;

	(void)state;
	assert_non_null(argv[1]);
	snprintf(now, sizeof(now), "%lld", t);
	freeReplyObject(redisCommand(rc, "DEL cs stash back copy"));
	freeReplyObject(redisCommand(rc, "HSET copy planned 1-0"));
	snprintf(line, sizeof(line), "1 0 0 0 0 %lld %lld", t - 100, t + 600);
	freeReplyObject(redisCommand(rc, "HSET cs d1\tcodes:x %s", line));
	r = redisCommandArgv(rc, 13, argv, NULL);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
	assert_string_equal(r->element[0]->str, "empty");
	freeReplyObject(r);
	/* a stash just used: not given back */
	freeReplyObject(redisCommand(rc, "SADD stash C-1"));
	snprintf(line, sizeof(line), "1 0 0 0 0 %lld %lld", t, t + 600);
	freeReplyObject(redisCommand(rc, "HSET cs d1\tcodes:x %s", line));
	r = redisCommandArgv(rc, 13, argv, NULL);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
	assert_string_equal(r->element[0]->str, "busy");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "SCARD stash"), 1);
	/* the deal over for more than an hour, its stash empty: the record goes */
	freeReplyObject(redisCommand(rc, "DEL stash"));
	snprintf(line, sizeof(line), "1 0 0 0 0 %lld %lld", t - 100, t - 3700);
	freeReplyObject(redisCommand(rc, "HSET cs d1\tcodes:x %s", line));
	r = redisCommandArgv(rc, 13, argv, NULL);
	assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
	assert_string_equal(r->element[0]->str, "gone");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "HEXISTS cs d1\tcodes:x"), 0);
}

/* EVAL of the embedded script name expecting an error reply; 1 when it was one. */
static int
eval_refused(const char *name, const char *const *keys, const char *const *args)
{
	redisReply *r = it_eval(rc, name, keys, args);
	int refused = r != NULL && r->type == REDIS_REPLY_ERROR;

	freeReplyObject(r);
	return refused;
}

/* phone_index.lua: an id added once however often, the number's entry on the
 * suppression list answered, at most 64 ids a number (the oldest out first), a drop
 * that takes the field with its last id; malformed calls refused, writing nothing. */
static void
phone_index_adds_once_caps_and_drops(void **state)
{
	const char *keys[] = { "suppressed:sms", "phones:1", "phones:2", NULL };
	redisReply *r;
	char id[16];
	int i;

	(void)state;
	it_flush(rc);
	freeReplyObject(redisCommand(rc, "HSET suppressed:sms +15125550100 1\tsms:STOP\tx"));
	{
		const char *args[] = { "add", "2", "+15125550100", "a", "3", "+15125550101", "b",
		    "2", "+15125550100", "a", NULL };

		r = eval("phone_index", keys, args);
		assert_int_equal(r->elements, 3);
		assert_string_equal(r->element[0]->str, "1\tsms:STOP\tx");
		assert_string_equal(r->element[1]->str, "");
		freeReplyObject(r);
	}
	r = redisCommand(rc, "HGET phones:1 +15125550100");
	assert_string_equal(r->str, "a");
	freeReplyObject(r);
	for (i = 0; i < 70; i++) {
		const char *args[] = { "add", "2", "+15125550100", id, NULL };

		snprintf(id, sizeof(id), "x%d", i);
		freeReplyObject(eval("phone_index", keys, args));
	}
	r = redisCommand(rc, "HGET phones:1 +15125550100");
	assert_non_null(strstr(r->str, "x69"));
	assert_null(strstr(r->str, "\nx5\n"));        /* the oldest went */
	assert_null(strstr(r->str, "a\n"));
	freeReplyObject(r);
	{
		const char *args[] = { "drop", "3", "+15125550101", "b", "3", "+15125550101", "b",
		    NULL };

		r = eval("phone_index", keys, args);
		assert_int_equal(r->integer, 1);
		freeReplyObject(r);
	}
	assert_int_equal(it_int(rc, "HEXISTS phones:2 +15125550101"), 0);
	/* Refused: a bucket not among the keys, the suppression list as a bucket, a
	 * triple cut short, an unknown op. */
	{
		const char *bad1[] = { "add", "4", "+1", "a", NULL };
		const char *bad2[] = { "add", "1", "+1", "a", NULL };
		const char *bad3[] = { "add", "2", "+1", NULL };
		const char *bad4[] = { "put", "2", "+1", "a", NULL };

		assert_true(eval_refused("phone_index", keys, bad1));
		assert_true(eval_refused("phone_index", keys, bad2));
		assert_true(eval_refused("phone_index", keys, bad3));
		assert_true(eval_refused("phone_index", keys, bad4));
	}
	assert_int_equal(it_int(rc, "HEXISTS phones:1 +1"), 0);
	assert_int_equal(it_int(rc, "HEXISTS suppressed:sms +1"), 0);
}

/* hook_phone.lua's step for the number +15125550100 (sid, op, now). */
static redisReply *
phone_step(const char *step, const char *op, const char *sid, const char *now)
{
	const char *keys[] = { "inbound:sids", "suppressed:sms", "optout_ack:+15125550100",
	    "inbound:pending", NULL };
	const char *args[] = { step, op, "sms", op[0] == 'o' ? "sms:STOP" : "sms:START",
	    "STOP", now, "phone", "+15125550100", sid, "60", "1", NULL };

	return eval("hook_phone", keys, args);
}

/* The number's entry on the suppression list: its time, or -1 when none. */
static long long
entry_time(void)
{
	redisReply *r = redisCommand(rc, "HGET suppressed:sms +15125550100");
	long long t = r != NULL && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) :
	    -1;

	freeReplyObject(r);
	return t;
}

/* Messages that cross (docs/sharding.md 4f): an opt-in's done takes the number off
 * the suppression list only when no opt-out came since it began; an opt-out resumed
 * after an opt-in finished puts its entry back, with its own begin time; a replay of
 * a finished message changes nothing. */
static void
hook_phone_keeps_a_stop_that_crossed_a_start(void **state)
{
	(void)state;
	it_flush(rc);
	freeReplyObject(phone_step("begin", "out", "SMa", "100"));
	assert_int_equal(entry_time(), 100);
	freeReplyObject(phone_step("done", "out", "SMa", "101"));
	/* A START, in order: the entry goes. */
	freeReplyObject(phone_step("begin", "in", "SMb", "200"));
	freeReplyObject(phone_step("done", "in", "SMb", "201"));
	assert_int_equal(entry_time(), -1);
	/* A STOP inside a START's steps: the START's done leaves it. */
	freeReplyObject(phone_step("begin", "in", "SMc", "300"));
	freeReplyObject(phone_step("begin", "out", "SMd", "310"));
	freeReplyObject(phone_step("done", "out", "SMd", "311"));
	freeReplyObject(phone_step("done", "in", "SMc", "312"));
	assert_int_equal(entry_time(), 310);
	/* A STOP cut short, a START finished meanwhile, then the STOP's retry: back on
	 * the list with the STOP's begin time, and answered "resume". */
	freeReplyObject(phone_step("begin", "out", "SMe", "400"));
	freeReplyObject(phone_step("begin", "in", "SMf", "410"));
	freeReplyObject(phone_step("done", "in", "SMf", "411"));
	assert_int_equal(entry_time(), -1);
	{
		redisReply *r = phone_step("begin", "out", "SMe", "420");

		assert_string_equal(r->element[0]->str, "resume");
		freeReplyObject(r);
	}
	assert_int_equal(entry_time(), 400);
	freeReplyObject(phone_step("done", "out", "SMe", "421"));
	/* Replays of finished messages: "dup", nothing changes. */
	{
		redisReply *r = phone_step("begin", "in", "SMf", "500");

		assert_string_equal(r->element[0]->str, "dup");
		freeReplyObject(r);
	}
	assert_int_equal(entry_time(), 400);
	/* Every message begun is pending until its done: none is left. */
	assert_int_equal(it_int(rc, "HLEN inbound:pending"), 0);
	freeReplyObject(phone_step("begin", "out", "SMg", "600"));
	{
		redisReply *r = redisCommand(rc, "HGET inbound:pending SMg");

		assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
		assert_string_equal(r->str, "600\tout\tsms\tphone\tSTOP\t+15125550100");
		freeReplyObject(r);
	}
	freeReplyObject(phone_step("done", "out", "SMg", "601"));
	assert_int_equal(it_int(rc, "HLEN inbound:pending"), 0);
	/* A second done of a message done (the walk and a retry): nothing, not even
	 * an opt-in's removal of a later STOP's entry. */
	freeReplyObject(phone_step("begin", "in", "SMh", "700"));
	freeReplyObject(phone_step("done", "in", "SMh", "701"));
	assert_int_equal(entry_time(), -1);
	freeReplyObject(phone_step("begin", "out", "SMi", "710"));
	freeReplyObject(phone_step("done", "out", "SMi", "711"));
	{
		redisReply *r = phone_step("done", "in", "SMh", "720");

		assert_int_equal(r->element[0]->integer, 0);
		freeReplyObject(r);
	}
	assert_int_equal(entry_time(), 710);
}

/* A sign-up "Y" and a STOP that crossed it (signup.lua): yes_store stores nothing
 * when the shard's stops has an opt-out of the number since the "Y" began, and
 * yes_done leaves such an entry on the suppression list; an older one (a STOP before
 * the sign-up) goes, since a double opt-in is as good as START. */
static void
signup_yes_gives_way_to_a_stop_since_it_began(void **state)
{
	const char *store_keys[] = { "subscribers", "subscribers:changes", "consent:records",
	    "consent:sms", "", "stops", NULL };
	const char *store_args[] = { "yes_store", "600", "+15125550100", "",
	    "{\"id\":\"+15125550100\"}", "join", "Y", "asked", "60", "+15125550100", "500",
	    NULL };
	const char *done_keys[] = { "signup:+15125550100", "inbound:sids", "suppressed:sms",
	    "optout_ack:+15125550100", NULL };
	const char *done_args[] = { "yes_done", "600", "", "+15125550100", "500", NULL };
	redisReply *r;

	(void)state;
	it_flush(rc);
	freeReplyObject(redisCommand(rc, "HSET stops +15125550100 %s", "510\tsms:STOP\tSTOP"));
	freeReplyObject(redisCommand(rc, "HSET suppressed:sms +15125550100 %s",
	    "510\tsms:STOP\tSTOP"));
	r = eval("signup", store_keys, store_args);
	assert_string_equal(r->element[0]->str, "stopped");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "EXISTS subscribers consent:sms"), 0);
	freeReplyObject(eval("signup", done_keys, done_args));
	assert_int_equal(it_int(rc, "HEXISTS suppressed:sms +15125550100"), 1);
	/* A STOP before the "Y" began: stored, and off the list. */
	freeReplyObject(redisCommand(rc, "HSET stops +15125550100 %s", "490\tsms:STOP\tSTOP"));
	freeReplyObject(redisCommand(rc, "HSET suppressed:sms +15125550100 %s",
	    "490\tsms:STOP\tSTOP"));
	r = eval("signup", store_keys, store_args);
	assert_string_equal(r->element[0]->str, "created");
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "HEXISTS consent:sms +15125550100"), 1);
	freeReplyObject(eval("signup", done_keys, done_args));
	assert_int_equal(it_int(rc, "HEXISTS suppressed:sms +15125550100"), 0);
}

/* hook_consent.lua's opt-in for s1 (+15125550100) of a message begun at began. */
static redisReply *
opt_in(const char *began)
{
	const char *keys[] = { "subscribers", "subscribers:changes", "consent:sms",
	    "consent:epoch", "consent:records", "", "stops", NULL };
	const char *args[] = { "in", "sms", "sms:START", "START", "330",
	    "2026-12-05T10:00:00Z", "phone", "+15125550100", "60", began, "s1", NULL };

	return eval("hook_consent", keys, args);
}

/* An opt-in does not undo an opt-out that came since it began (a START resumed
 * after a STOP, or two messages whose shard steps interleave): the subscriber stays
 * out, its shard's stops entry too; an opt-in begun after the opt-out restores. */
static void
hook_consent_opt_in_gives_way_to_a_later_opt_out(void **state)
{
	redisReply *r;

	(void)state;
	it_flush(rc);
	freeReplyObject(redisCommand(rc, "HSET subscribers s1 %s",
	    "{\"id\":\"s1\",\"phone\":\"+15125550100\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":null},\"timezone\":\"UTC\"}"));
	freeReplyObject(redisCommand(rc, "HSET consent:records s1 %s",
	    "310\tsms\topted_out\tsms:STOP\tSTOP"));
	freeReplyObject(redisCommand(rc, "HSET stops +15125550100 %s", "310\tsms:STOP\tSTOP"));
	r = opt_in("300");
	assert_int_equal(r->element[0]->integer, 1);      /* found */
	assert_int_equal(r->element[1]->integer, 0);      /* changed */
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "HEXISTS consent:sms s1"), 0);
	assert_int_equal(it_int(rc, "HEXISTS stops +15125550100"), 1);
	r = opt_in("320");
	assert_int_equal(r->element[1]->integer, 1);
	freeReplyObject(r);
	assert_int_equal(it_int(rc, "HEXISTS consent:sms s1"), 1);
	assert_int_equal(it_int(rc, "HEXISTS stops +15125550100"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(status_callback_retries_when_the_push_moved),
		cmocka_unit_test(click_retries_when_the_push_moved),
		cmocka_unit_test(conversion_retries_when_the_code_or_push_moved),
		cmocka_unit_test(decay_does_nothing_when_the_cursor_moved),
		cmocka_unit_test(textdiff_gives_back_every_text_byte_for_byte),
		cmocka_unit_test(ab_release_refuses_a_recipient_it_cannot_place),
		cmocka_unit_test(rest_released_before_the_plan_ends_is_counted_once),
		cmocka_unit_test(ab_release_counts_each_shard_and_stops_at_any_cancel),
		cmocka_unit_test(code_records_end_with_their_deal_and_a_used_stash_is_kept),
		cmocka_unit_test(phone_index_adds_once_caps_and_drops),
		cmocka_unit_test(hook_phone_keeps_a_stop_that_crossed_a_start),
		cmocka_unit_test(signup_yes_gives_way_to_a_stop_since_it_began),
		cmocka_unit_test(hook_consent_opt_in_gives_way_to_a_later_opt_out),
	};

	return cmocka_run_group_tests_name("script_races", tests, setup, teardown);
}
