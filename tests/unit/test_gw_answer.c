/*
 * test_gw_answer.c: a Twilio success answer's provider id (gw_answer.c). The id is
 * read without cJSON when the answer is plain JSON; whatever the text, the id must be
 * the one cJSON finds (its "sid" when a printable string that fits, else none). An
 * oracle does that with cJSON on hand-written answers and on 30,000 mutations of a
 * real message resource; cJSON's allocations show which path ran.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "../../notifier/gw_int.h"  /* gw_classify */
#include "httpc.h"

#define SID "SM0123456789abcdef0123456789abcdef"

/* A message resource as Twilio answers a POST to Messages.json. */
static const char resource[] =
    "{\"account_sid\": \"AC0123456789abcdef0123456789abcdef\", \"api_version\": "
    "\"2010-04-01\", \"body\": \"50% off \\\"today\\\" \\u00e9\\n\", \"date_created\": "
    "\"Thu, 24 Aug 2023 05:01:45 +0000\", \"date_sent\": null, \"date_updated\": "
    "\"Thu, 24 Aug 2023 05:01:45 +0000\", \"direction\": \"outbound-api\", "
    "\"error_code\": null, \"error_message\": null, \"from\": \"+15550001111\", "
    "\"messaging_service_sid\": null, \"num_media\": \"0\", \"num_segments\": \"1\", "
    "\"price\": null, \"price_unit\": \"USD\", \"sid\": \"" SID "\", \"status\": "
    "\"queued\", \"subresource_uris\": {\"media\": \"/2010-04-01/Accounts/AC0123456789"
    "abcdef0123456789abcdef/Messages/" SID "/Media.json\"}, \"to\": \"+15551234567\", "
    "\"uri\": \"/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/" SID
    ".json\", \"tags\": [1, -2.5e+3, 0.25, true, false, [], {}]}";

static long cjson_allocs;

static void *
counting_malloc(size_t n)
{
	cjson_allocs++;
	return malloc(n);
}

/* What cJSON makes of the answer: provider_id_set's rule on its "sid". */
static void
oracle(const char *body, size_t len, char *out, size_t size)
{
	cJSON *j = cJSON_ParseWithLength(body, len);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "sid");
	const char *p;

	out[0] = '\0';
	if (cJSON_IsString(v) && strlen(v->valuestring) < size) {
		for (p = v->valuestring; *p != '\0'; p++)
			if (*p <= ' ' || *p > '~')
				break;
		if (*p == '\0')
			snprintf(out, size, "%s", v->valuestring);
	}
	cJSON_Delete(j);
}

static void
classify(const char *body, size_t len, struct gw_result *res)
{
	struct gw_call c;
	struct httpc_resp r;

	memset(&c, 0, sizeof(c));
	memset(&r, 0, sizeof(r));
	c.kind = GW_TWILIO;
	r.status = 201;
	r.retry_after_s = -1;
	r.rate_limit_reset_at = -1;
	r.body = body;
	r.body_len = len;
	gw_classify(&c, &r, 0, res);
}

static void
same_as_cjson(const char *body, size_t len)
{
	struct gw_result res;
	char want[sizeof(res.provider_id)];

	oracle(body, len, want, sizeof(want));
	classify(body, len, &res);
	assert_int_equal(res.outcome, GW_SENT);
	if (strcmp(res.provider_id, want) != 0)
		fail_msg("body <%.*s>: id <%s>, cJSON <%s>", (int)len, body, res.provider_id,
		    want);
}

static void
a_message_resource_is_read_without_cjson(void **state)
{
	static const char esc[] = "{\"sid\": \"SM\\u0030x\"}";
	struct gw_result res;

	(void)state;
	cjson_allocs = 0;
	classify(resource, strlen(resource), &res);
	assert_string_equal(res.provider_id, SID);
	assert_int_equal(cjson_allocs, 0);
	/* An escape in the id itself is left to cJSON, which still finds it. */
	classify(esc, strlen(esc), &res);
	assert_string_equal(res.provider_id, "SM0x");
	assert_true(cjson_allocs > 0);
}

static void
hand_written_answers_give_the_id_cjson_gives(void **state)
{
	static const char *const bodies[] = {
		"{\"sid\":\"SMa\"}", " {\"sid\" : \"SMa\" } \r\n", "{}", "{ }", "",
		"   ", "[]", "\"SMa\"", "null", "{\"sid\":\"SMa\",\"sid\":\"SMb\"}",
		"{\"a\":{\"sid\":\"SMx\"},\"sid\":\"SMy\"}", "{\"a\":{\"sid\":\"SMx\"}}",
		"{\"sid\":\"SMa\"} trailing", "{\"sid\":\"SMa\",}", "{\"sid\":\"SMa\"",
		"{\"sid\":\"SM a\"}", "{\"sid\":\"\"}", "{\"sid\":12}", "{\"sid\":null}",
		"{\"sid\":[\"SMa\"]}", "{\"s\\u0069d\":\"SMesc\"}", "{\"sid\":\"SM\\\"q\"}",
		"{\"x\":\"\\ud83d\\ude00\",\"sid\":\"SMa\"}", "{\"x\":\"\\ud800\",\"sid\":\"SMa\"}",
		"{\"x\":\"\\q\",\"sid\":\"SMa\"}", "{\"x\":01,\"sid\":\"SMa\"}",
		"{\"x\":-,\"sid\":\"SMa\"}", "{\"x\":1.,\"sid\":\"SMa\"}",
		"{\"x\":1e,\"sid\":\"SMa\"}", "{\"x\":tru,\"sid\":\"SMa\"}",
		"{\"x\":[1,],\"sid\":\"SMa\"}", "{\"x\":[,1],\"sid\":\"SMa\"}",
		"{\"x\":\"a\tb\",\"sid\":\"SMa\"}", "{\"sid\":\"SM\xc3\xa9\"}",
		"{\"x\":1234567890123456789012345678901234567890123456789012345678901234567,"
		"\"sid\":\"SMa\"}",
		"{\"sid\":\"SM0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\"}",
		"{\"sid\":\"SM0123456789abcdef0123456789abcdef0123456789abcdef012345678\"}",
		"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
		"]]]]]]]],\"sid\":\"SMdeep\"}",
		"\xef\xbb\xbf{\"sid\":\"SMbom\"}", "{\"sid\":\"SMa\"}\f",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		same_as_cjson(bodies[i], strlen(bodies[i]));
	/* A NUL inside the body's length. */
	same_as_cjson("{\"sid\":\"SMa\"}\0", 14);
	same_as_cjson("{\"x\":\"\0\",\"sid\":\"SMa\"}", 20);
}

static unsigned long long rng = 0x2545F4914F6CDD1DULL;

static unsigned
next_rand(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* Random edits of the resource: bytes deleted, replaced by JSON's own punctuation,
 * inserted (punctuation or any byte), or the end cut off: whatever the fast path
 * reads must agree with cJSON. */
static void
mutated_answers_give_the_id_cjson_gives(void **state)
{
	static const char punct[] = "{}[]\":,\\ 0-.eE+tfnu\t\x01\x80";
	size_t n = strlen(resource), len, k, edits, at;
	char *buf = malloc(n + 64);
	int i;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < 30000; i++) {
		memcpy(buf, resource, n);
		len = n;
		edits = 1 + next_rand(3);
		for (k = 0; k < edits && len > 1; k++) {
			at = next_rand((unsigned)len);
			switch (next_rand(4)) {
			case 0:
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
				break;
			case 1:
				buf[at] = punct[next_rand(sizeof(punct) - 1)];
				break;
			case 2:
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = next_rand(2) ? punct[next_rand(sizeof(punct) - 1)] :
				    (char)next_rand(256);
				len++;
				break;
			default:
				len = at + next_rand((unsigned)(len - at));
				break;
			}
		}
		same_as_cjson(buf, len);
	}
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_message_resource_is_read_without_cjson),
		cmocka_unit_test(hand_written_answers_give_the_id_cjson_gives),
		cmocka_unit_test(mutated_answers_give_the_id_cjson_gives),
	};
	cJSON_Hooks hooks = { counting_malloc, free };

	cJSON_InitHooks(&hooks);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
