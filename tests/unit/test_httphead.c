/*
 * test_httphead.c: the strict reading of raw request heads (notifier/httphead.c):
 * where a head ends, which heads are refused and why, what a good one declares.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "httphead.h"

static int check(const char *head, struct http_head_info *info, const char **why)
{
	return http_head_check(head, strlen(head), info, why);
}

static void the_end_of_a_head_is_found_after_its_empty_line(void **state)
{
	static const char full[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nbody";
	static const char lf[] = "GET / HTTP/1.1\nHost: x\n\nbody";

	(void)state;
	assert_int_equal(http_head_end(full, strlen(full)), strlen(full) - 4);
	assert_int_equal(http_head_end(lf, strlen(lf)), strlen(lf) - 4);
	assert_int_equal(http_head_end(full, 20), 0);
	assert_int_equal(http_head_end("", 0), 0);
	/* Empty lines before the request line are not its end. */
	assert_int_equal(http_head_end("\r\n\r\nGET / HTTP/1.1\r\n\r\n", 22), 22);
	assert_int_equal(http_head_end("\r\n\r\n", 4), 0);
}

static void a_plain_head_passes_and_declares_its_body(void **state)
{
	struct http_head_info info;
	const char *why;

	(void)state;
	assert_int_equal(check("POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: 29\r\n"
	    "Authorization: Bearer t\r\nX-Twilio-Signature: s\r\n\r\n", &info, &why), 0);
	assert_int_equal(info.content_length, 29);
	assert_int_equal(info.chunked, 0);
	assert_int_equal(check("GET / HTTP/1.1\r\nHost: x\r\nX-A:\t v \r\n\r\n", &info,
	    &why), 0);
	assert_int_equal(info.content_length, -1);
	assert_int_equal(check("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &info,
	    &why), 0);
	assert_int_equal(info.chunked, 1);
	assert_int_equal(check("POST / HTTP/1.1\r\nContent-Length: 0000000000000000000000007"
	    "\r\n\r\n", &info, &why), 0);
	assert_int_equal(info.content_length, 7);
	assert_int_equal(check("POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n"
	    "\r\n", &info, &why), 0);
	assert_int_equal(info.content_length, HTTP_HEAD_CL_HUGE);
}

static void ambiguous_heads_are_refused_with_the_reason(void **state)
{
	static const struct { const char *head, *why; } bad[] = {
		{ "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		  "Content-Length given more than once" },
		{ "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
		  "Content-Length is not a number of bytes" },
		{ "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
		  "Content-Length is not a number of bytes" },
		{ "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
		  "Content-Length is not a number of bytes" },
		{ "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
		  "whitespace before the colon of a header" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		  "both Transfer-Encoding and Content-Length" },
		{ "GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", "obsolete line folding" },
		{ "GET / HTTP/1.1\r\nX-A: 1\r\n\tfolded\r\n\r\n", "obsolete line folding" },
		{ "GET / HTTP/1.1\nHost: x\n\n", "line ends in a bare LF" },
		{ "GET / HTTP/1.1\r\nHost: x\n\r\n", "line ends in a bare LF" },
		{ "GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", "CR inside a line" },
		{ "GET / HTTP/1.1\r\nAuthorization: a\r\nauthorization: b\r\n\r\n",
		  "Authorization given more than once" },
		{ "GET / HTTP/1.1\r\nX-Twilio-Signature: a\r\nX-TWILIO-SIGNATURE: b\r\n\r\n",
		  "X-Twilio-Signature given more than once" },
		{ "GET / HTTP/1.1\r\nX-A: a\001b\r\n\r\n", "control character in a header value" },
		{ "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
		  "header line without a name and colon" },
		{ "GET / HTTP/1.1\r\n: v\r\n\r\n", "header line without a name and colon" },
		{ "GET / HTTP/1.1\r\nX(A): v\r\n\r\n", "invalid character in a header name" },
		{ "GET / HTTP/1.1\r\nHost: x\r\n", "request head does not end with an empty line" },
	};
	struct http_head_info info;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (check(bad[i].head, &info, &why) != -1 || why == NULL ||
		    strcmp(why, bad[i].why) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, why ? why : "(passed)",
			    bad[i].why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_end_of_a_head_is_found_after_its_empty_line),
		cmocka_unit_test(a_plain_head_passes_and_declares_its_body),
		cmocka_unit_test(ambiguous_heads_are_refused_with_the_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
