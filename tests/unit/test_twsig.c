/*
 * test_twsig.c: X-Twilio-Signature (notifier/twsig.c).
 *
 * Twilio's documented example, vectors computed independently with the openssl CLI
 * (sort order, duplicate names, a GET, UTF-8 values), and every way a signature must
 * fail: forged, missing, malformed, replayed to another URL, over-limit input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "twsig.h"

#define NPARAMS(a) (sizeof(a) / sizeof((a)[0]))

static const char doc_url[] = "https://mycompany.com/myapp.php?foo=1&bar=2";

/* The example on Twilio's webhook security page (current wording). */
static const struct twsig_param doc_params[] = {
	{ "CallSid", "CA1234567890ABCDE" },
	{ "Caller", "+14158675310" },
	{ "Digits", "1234" },
	{ "From", "+14158675310" },
	{ "To", "+18005551212" },
};
static const char doc_sig[] = "GvWf1cFY/Q7PnoempGyD5oXAezc=";

/* The same example as older versions of the page printed it, with +12349013030. */
static const struct twsig_param doc_params_old[] = {
	{ "CallSid", "CA1234567890ABCDE" },
	{ "Caller", "+12349013030" },
	{ "Digits", "1234" },
	{ "From", "+12349013030" },
	{ "To", "+18005551212" },
};
static const char doc_sig_old[] = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

static void expect_sig(const char *token, const char *url, const struct twsig_param *p,
    size_t n, const char *want)
{
	char out[TWSIG_LEN + 1];

	assert_int_equal(twsig_compute(token, url, p, n, out, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_int_equal(twsig_verify(token, url, p, n, want), 1);
}

static void twilio_documented_example_reproduces(void **state)
{
	(void)state;
	expect_sig("12345", doc_url, doc_params, NPARAMS(doc_params), doc_sig);
	expect_sig("12345", doc_url, doc_params_old, NPARAMS(doc_params_old), doc_sig_old);
}

static void parameter_order_does_not_matter(void **state)
{
	const struct twsig_param shuffled[] = {
		{ "To", "+18005551212" },
		{ "Digits", "1234" },
		{ "From", "+14158675310" },
		{ "CallSid", "CA1234567890ABCDE" },
		{ "Caller", "+14158675310" },
	};

	(void)state;
	expect_sig("12345", doc_url, shuffled, NPARAMS(shuffled), doc_sig);
}

static void params_sort_in_byte_order_then_by_value(void **state)
{
	/* byte order puts "B" (0x42) before "MediaUrl" (0x4D) before "_" (0x5F) before
	 * "a" (0x61); equal names sort by value. Expected value from (one line):
	 * printf '%s' 'https://example.com/sms/inboundB2MediaUrlhttps://m/1MediaUrl
	 * https://m/2_3a1' | openssl dgst -sha1 -hmac secret -binary | base64 */
	const struct twsig_param p[] = {
		{ "a", "1" },
		{ "MediaUrl", "https://m/2" },
		{ "_", "3" },
		{ "MediaUrl", "https://m/1" },
		{ "B", "2" },
	};
	const struct twsig_param q[] = {
		{ "MediaUrl", "https://m/1" },
		{ "B", "2" },
		{ "MediaUrl", "https://m/2" },
		{ "a", "1" },
		{ "_", "3" },
	};

	(void)state;
	expect_sig("secret", "https://example.com/sms/inbound", p, NPARAMS(p),
	    "Cve3joduequsZT4/lxiolVA8lPQ=");
	expect_sig("secret", "https://example.com/sms/inbound", q, NPARAMS(q),
	    "Cve3joduequsZT4/lxiolVA8lPQ=");
}

static void get_requests_sign_the_url_alone(void **state)
{
	(void)state;
	expect_sig("secret", "https://example.com:8443/status?x=%20y", NULL, 0,
	    "ZDHTMdf4NRgwWVJPnoCr7GuLB1A=");
}

static void utf8_values_are_signed_as_bytes(void **state)
{
	const struct twsig_param p[] = {
		{ "From", "whatsapp:+15551234567" },
		{ "Body", "stop \xF0\x9F\x99\x8F" },
	};

	(void)state;
	expect_sig("secret", "https://example.com/sms", p, NPARAMS(p),
	    "J9GtL6Awvbbc1Sugb+FVvMfRBSo=");
}

static void forged_signatures_are_refused(void **state)
{
	char forged[TWSIG_LEN + 1];
	size_t i;
	int bit;

	(void)state;
	/* every single bit of every character flipped */
	for (i = 0; i < TWSIG_LEN; i++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(forged, doc_sig, sizeof(forged));
			forged[i] = (char)(forged[i] ^ (1 << bit));
			if (forged[i] == '\0')
				continue;   /* a shorter header: covered below */
			assert_int_equal(twsig_verify("12345", doc_url, doc_params,
			    NPARAMS(doc_params), forged), 0);
		}
	/* the right signature under another token */
	assert_int_equal(twsig_verify("12346", doc_url, doc_params, NPARAMS(doc_params),
	    doc_sig), 0);
	assert_int_equal(twsig_verify("1234", doc_url, doc_params, NPARAMS(doc_params),
	    doc_sig), 0);
}

static void changed_added_or_removed_params_are_refused(void **state)
{
	struct twsig_param p[NPARAMS(doc_params) + 1];
	size_t i;

	(void)state;
	for (i = 0; i < NPARAMS(doc_params); i++) {
		memcpy(p, doc_params, sizeof(doc_params));
		p[i].value = "9999";
		assert_int_equal(twsig_verify("12345", doc_url, p, NPARAMS(doc_params),
		    doc_sig), 0);
		memcpy(p, doc_params, sizeof(doc_params));
		p[i].name = "Body";
		assert_int_equal(twsig_verify("12345", doc_url, p, NPARAMS(doc_params),
		    doc_sig), 0);
	}
	/* a parameter added */
	memcpy(p, doc_params, sizeof(doc_params));
	p[NPARAMS(doc_params)].name = "Body";
	p[NPARAMS(doc_params)].value = "STOP";
	assert_int_equal(twsig_verify("12345", doc_url, p, NPARAMS(p), doc_sig), 0);
	/* an empty name with an empty value adds no bytes, so the signature still holds:
	 * a property of Twilio's scheme (no delimiters), documented in docs/inbound.md */
	p[NPARAMS(doc_params)].name = "";
	p[NPARAMS(doc_params)].value = "";
	assert_int_equal(twsig_verify("12345", doc_url, p, NPARAMS(p), doc_sig), 1);
	/* a parameter removed, and none at all */
	assert_int_equal(twsig_verify("12345", doc_url, doc_params, NPARAMS(doc_params) - 1,
	    doc_sig), 0);
	assert_int_equal(twsig_verify("12345", doc_url, NULL, 0, doc_sig), 0);
	/* likewise bytes moved between a name and its value, when the sort order stays
	 * the same ("Digits"+"1234" and "Digit"+"s1234"): the scheme cannot tell them
	 * apart, so the HTTP layer acts only on the fields it knows by name */
	memcpy(p, doc_params, sizeof(doc_params));
	p[2].name = "Digit";
	p[2].value = "s1234";
	assert_int_equal(twsig_verify("12345", doc_url, p, NPARAMS(doc_params), doc_sig), 1);
}

static void missing_or_malformed_headers_are_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"GvWf1cFY/Q7PnoempGyD5oXAezc",      /* one short */
		"GvWf1cFY/Q7PnoempGyD5oXAezc==",    /* one long */
		"GvWf1cFY/Q7PnoempGyD5oXAezc=\n",
		" GvWf1cFY/Q7PnoempGyD5oXAezc=",
		"gvwf1cfy/q7pnoempgyd5oxaezc=",     /* case matters */
		"GvWf1cFY_Q7PnoempGyD5oXAezc=",     /* base64url is not base64 */
		"!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
		"============================",
		"0/KCTR6DLpKmkAf8muzZqo1nDgQ=",     /* a valid signature of another request */
	};
	char big[8192];
	size_t i;

	(void)state;
	assert_int_equal(twsig_verify("12345", doc_url, doc_params, NPARAMS(doc_params),
	    NULL), 0);
	for (i = 0; i < NPARAMS(bad); i++)
		assert_int_equal(twsig_verify("12345", doc_url, doc_params,
		    NPARAMS(doc_params), bad[i]), 0);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, doc_sig, TWSIG_LEN);
	assert_int_equal(twsig_verify("12345", doc_url, doc_params, NPARAMS(doc_params),
	    big), 0);
}

static void signature_replayed_to_another_url_is_refused(void **state)
{
	static const char *const urls[] = {
		"https://mycompany.com/myapp.php?foo=1&bar=3",
		"https://mycompany.com/myapp.php?foo=1&bar=2&baz=3",
		"https://mycompany.com/myapp.php?bar=2&foo=1",
		"https://mycompany.com/myapp.php",
		"https://mycompany.com/other.php?foo=1&bar=2",
		"https://mycompany.com/myapp.php/?foo=1&bar=2",
		"https://mycompany.com//myapp.php?foo=1&bar=2",
		"https://evil.example/myapp.php?foo=1&bar=2",
		"https://mycompany.com.evil.example/myapp.php?foo=1&bar=2",
		"http://mycompany.com/myapp.php?foo=1&bar=2",
		"https://mycompany.com:443/myapp.php?foo=1&bar=2",
		"https://MYCOMPANY.COM/myapp.php?foo=1&bar=2",
		"https://mycompany.com/myapp.php?foo=1&bar=2#x",
		"https://mycompany.com/myapp.php?foo=1&bar=%32",
	};
	size_t i;

	(void)state;
	for (i = 0; i < NPARAMS(urls); i++)
		if (twsig_verify("12345", urls[i], doc_params, NPARAMS(doc_params),
		    doc_sig) != 0)
			fail_msg("replayed to %s: accepted", urls[i]);
}

static void over_limit_or_null_arguments_are_refused(void **state)
{
	struct twsig_param many[TWSIG_PARAMS_MAX + 1];
	char out[TWSIG_LEN + 1];
	char *huge;
	size_t i;

	(void)state;
	/* NULLs */
	assert_int_equal(twsig_compute(NULL, doc_url, doc_params, NPARAMS(doc_params), out,
	    sizeof(out)), -1);
	assert_string_equal(out, "");
	assert_int_equal(twsig_compute("12345", NULL, doc_params, NPARAMS(doc_params), out,
	    sizeof(out)), -1);
	assert_int_equal(twsig_compute("12345", doc_url, NULL, 1, out, sizeof(out)), -1);
	assert_int_equal(twsig_compute("12345", doc_url, doc_params, NPARAMS(doc_params),
	    NULL, 64), -1);
	assert_int_equal(twsig_verify(NULL, doc_url, doc_params, NPARAMS(doc_params),
	    doc_sig), 0);
	assert_int_equal(twsig_verify("12345", NULL, doc_params, NPARAMS(doc_params),
	    doc_sig), 0);
	/* empty token or URL: a misconfiguration must never verify */
	assert_int_equal(twsig_compute("", doc_url, NULL, 0, out, sizeof(out)), -1);
	assert_int_equal(twsig_compute("12345", "", NULL, 0, out, sizeof(out)), -1);
	/* a short output buffer */
	assert_int_equal(twsig_compute("12345", doc_url, doc_params, NPARAMS(doc_params),
	    out, TWSIG_LEN), -1);
	assert_string_equal(out, "");
	assert_int_equal(twsig_compute("12345", doc_url, doc_params, NPARAMS(doc_params),
	    out, 0), -1);
	/* a NULL name or value */
	memcpy(many, doc_params, sizeof(doc_params));
	many[1].value = NULL;
	assert_int_equal(twsig_verify("12345", doc_url, many, NPARAMS(doc_params), doc_sig),
	    0);
	many[1].value = "+14158675310";
	many[1].name = NULL;
	assert_int_equal(twsig_verify("12345", doc_url, many, NPARAMS(doc_params), doc_sig),
	    0);
	/* too many parameters */
	for (i = 0; i < NPARAMS(many); i++) {
		many[i].name = "x";
		many[i].value = "y";
	}
	assert_int_equal(twsig_compute("12345", doc_url, many, TWSIG_PARAMS_MAX, out,
	    sizeof(out)), 0);
	assert_int_equal(twsig_compute("12345", doc_url, many, TWSIG_PARAMS_MAX + 1, out,
	    sizeof(out)), -1);
	/* over-long token, URL and field */
	huge = malloc(TWSIG_FIELD_MAX + 2);
	assert_non_null(huge);
	memset(huge, 'h', TWSIG_FIELD_MAX + 1);
	huge[TWSIG_FIELD_MAX + 1] = '\0';
	assert_int_equal(twsig_compute(huge, doc_url, NULL, 0, out, sizeof(out)), -1);
	assert_int_equal(twsig_compute("12345", huge, NULL, 0, out, sizeof(out)), -1);
	many[0].value = huge;
	assert_int_equal(twsig_compute("12345", doc_url, many, 1, out, sizeof(out)), -1);
	huge[TWSIG_FIELD_MAX] = '\0';
	assert_int_equal(twsig_compute("12345", doc_url, many, 1, out, sizeof(out)), 0);
	huge[TWSIG_TOKEN_MAX] = '\0';
	assert_int_equal(twsig_compute(huge, doc_url, NULL, 0, out, sizeof(out)), 0);
	huge[TWSIG_URL_MAX] = '\0';
	assert_int_equal(twsig_compute("12345", huge, NULL, 0, out, sizeof(out)), 0);
	free(huge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(twilio_documented_example_reproduces),
		cmocka_unit_test(parameter_order_does_not_matter),
		cmocka_unit_test(params_sort_in_byte_order_then_by_value),
		cmocka_unit_test(get_requests_sign_the_url_alone),
		cmocka_unit_test(utf8_values_are_signed_as_bytes),
		cmocka_unit_test(forged_signatures_are_refused),
		cmocka_unit_test(changed_added_or_removed_params_are_refused),
		cmocka_unit_test(missing_or_malformed_headers_are_refused),
		cmocka_unit_test(signature_replayed_to_another_url_is_refused),
		cmocka_unit_test(over_limit_or_null_arguments_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
