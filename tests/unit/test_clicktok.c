/*
 * test_clicktok.c: signed click tokens (notifier/clicktok.c).
 *
 * A known-answer vector computed outside this code, round trips for every id length,
 * every single-character change and every truncation refused, tokens of another key,
 * hand-forged payloads with a valid MAC (wrong version, NUL in the id, empty id), and
 * hostile strings from the URL path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "clicktok.h"

#define TYPICAL_ID "1795456407866-0:s-1001:sms"

static unsigned char key[32];

static int setup_key(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)i;
	return 0;
}

static void make_ok(const char *id, char out[CLICKTOK_MAX + 1])
{
	if (clicktok_make(key, sizeof(key), id, out, CLICKTOK_MAX + 1) != 0)
		fail_msg("make refused \"%s\"", id);
}

static int parse(const char *tok)
{
	char id[CLICKTOK_ID_MAX + 1];

	return clicktok_parse(key, sizeof(key), tok, id, sizeof(id));
}

/* A token over raw[0..n) with a correct MAC, built here without clicktok_make(), so
 * that payloads clicktok_make() would never produce can be tested past the MAC. */
static void forge(const unsigned char *raw, size_t n, char *out, size_t outsize)
{
	unsigned char buf[512], mac[EVP_MAX_MD_SIZE], b64[1024];
	unsigned int maclen = 0;
	size_t i, k = 0;
	int enc;

	assert_true(n + CLICKTOK_MAC_LEN <= sizeof(buf));
	memcpy(buf, raw, n);
	assert_non_null(HMAC(EVP_sha256(), key, (int)sizeof(key), raw, n, mac, &maclen));
	memcpy(buf + n, mac, CLICKTOK_MAC_LEN);
	enc = EVP_EncodeBlock(b64, buf, (int)(n + CLICKTOK_MAC_LEN));
	assert_true(enc > 0 && (size_t)enc < outsize);
	for (i = 0; i < (size_t)enc && b64[i] != '='; i++)
		out[k++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	out[k] = '\0';
}

static void typical_token_matches_the_reference_and_is_52_characters(void **state)
{
	char tok[CLICKTOK_MAX + 1], id[CLICKTOK_ID_MAX + 1];

	(void)state;
	make_ok(TYPICAL_ID, tok);
	/* python3: base64.urlsafe_b64encode(b"\x01" + id + hmac.new(bytes(range(32)),
	 * b"\x01" + id, hashlib.sha256).digest()[:12]).rstrip(b"=") */
	assert_string_equal(tok, "ATE3OTU0NTY0MDc4NjYtMDpzLTEwMDE6c21ziWnVLnR21WXKSKaC");
	assert_int_equal(strlen(tok), 52);
	assert_int_equal(CLICKTOK_LEN(strlen(TYPICAL_ID)), 52);
	assert_int_equal(clicktok_parse(key, sizeof(key), tok, id, sizeof(id)), 0);
	assert_string_equal(id, TYPICAL_ID);
}

static void every_id_length_and_byte_round_trips(void **state)
{
	char id[CLICKTOK_ID_MAX + 1], back[CLICKTOK_ID_MAX + 1], tok[CLICKTOK_MAX + 1];
	size_t len, i;

	(void)state;
	for (len = 1; len <= CLICKTOK_ID_MAX; len++) {
		for (i = 0; i < len; i++)
			id[i] = (char)(1 + (len * 31 + i * 7) % 255);   /* bytes 1..255 */
		id[len] = '\0';
		make_ok(id, tok);
		assert_int_equal(strlen(tok), CLICKTOK_LEN(len));
		assert_int_equal(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_"), strlen(tok));
		assert_int_equal(clicktok_parse(key, sizeof(key), tok, back, sizeof(back)), 0);
		assert_memory_equal(back, id, len + 1);
	}
	assert_int_equal(CLICKTOK_LEN(CLICKTOK_ID_MAX), CLICKTOK_MAX);
}

static void every_single_character_change_is_refused(void **state)
{
	static const char *const ids[] = { TYPICAL_ID, TYPICAL_ID "x", TYPICAL_ID "xy", "p" };
	char tok[CLICKTOK_MAX + 1], bad[CLICKTOK_MAX + 1];
	size_t k, i, len;
	int c;

	(void)state;
	/* ids whose tokens end on a full group and on each partial one, so the unused
	 * low bits of a last character are changed too */
	for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
		make_ok(ids[k], tok);
		len = strlen(tok);
		for (i = 0; i < len; i++)
			for (c = 1; c < 256; c++) {
				if (c == (unsigned char)tok[i])
					continue;
				memcpy(bad, tok, len + 1);
				bad[i] = (char)c;
				if (parse(bad) != -1)
					fail_msg("token %s with [%zu] = 0x%02x accepted", tok, i, c);
			}
	}
}

static void truncated_and_extended_tokens_are_refused(void **state)
{
	char tok[CLICKTOK_MAX + 1], bad[CLICKTOK_MAX + 8];
	size_t len, i;

	(void)state;
	make_ok(TYPICAL_ID, tok);
	len = strlen(tok);
	for (i = 0; i < len; i++) {
		memcpy(bad, tok, i);
		bad[i] = '\0';
		assert_int_equal(parse(bad), -1);
	}
	for (i = 1; i <= 4; i++) {
		memcpy(bad, tok, len);
		memset(bad + len, 'A', i);
		bad[len + i] = '\0';
		assert_int_equal(parse(bad), -1);
	}
	/* padding, standard base64 and surrounding whitespace are not our tokens */
	snprintf(bad, sizeof(bad), "%s=", tok);
	assert_int_equal(parse(bad), -1);
	snprintf(bad, sizeof(bad), " %s", tok);
	assert_int_equal(parse(bad), -1);
	snprintf(bad, sizeof(bad), "%s\n", tok);
	assert_int_equal(parse(bad), -1);
}

static void tokens_of_another_key_are_refused(void **state)
{
	unsigned char other[sizeof(key)];
	char tok[CLICKTOK_MAX + 1], id[CLICKTOK_ID_MAX + 1];
	size_t i;

	(void)state;
	make_ok(TYPICAL_ID, tok);
	for (i = 0; i < sizeof(key); i++) {
		memcpy(other, key, sizeof(key));
		other[i] ^= 0x01;
		assert_int_equal(clicktok_parse(other, sizeof(other), tok, id, sizeof(id)), -1);
		assert_string_equal(id, "");
	}
	/* the same key, shorter: HMAC keys are not prefix-safe by accident here */
	assert_int_equal(clicktok_parse(key, sizeof(key) - 1, tok, id, sizeof(id)), -1);
}

static void forged_payloads_with_a_valid_mac_are_refused(void **state)
{
	unsigned char raw[CLICKTOK_ID_MAX + 8];
	char tok[1024], id[CLICKTOK_ID_MAX + 1];
	size_t n = strlen(TYPICAL_ID);

	(void)state;
	/* the forger is right about the format: version 1 is accepted */
	raw[0] = CLICKTOK_VERSION;
	memcpy(raw + 1, TYPICAL_ID, n);
	forge(raw, 1 + n, tok, sizeof(tok));
	assert_int_equal(clicktok_parse(key, sizeof(key), tok, id, sizeof(id)), 0);
	/* other versions are not */
	raw[0] = 0;
	forge(raw, 1 + n, tok, sizeof(tok));
	assert_int_equal(parse(tok), -1);
	raw[0] = CLICKTOK_VERSION + 1;
	forge(raw, 1 + n, tok, sizeof(tok));
	assert_int_equal(parse(tok), -1);
	/* a NUL inside the id */
	raw[0] = CLICKTOK_VERSION;
	raw[5] = '\0';
	forge(raw, 1 + n, tok, sizeof(tok));
	assert_int_equal(parse(tok), -1);
	/* an empty id */
	forge(raw, 1, tok, sizeof(tok));
	assert_int_equal(parse(tok), -1);
	/* an id one byte over the limit */
	memset(raw + 1, 'x', CLICKTOK_ID_MAX + 1);
	forge(raw, 1 + CLICKTOK_ID_MAX + 1, tok, sizeof(tok));
	assert_int_equal(parse(tok), -1);
	forge(raw, 1 + CLICKTOK_ID_MAX, tok, sizeof(tok));
	assert_int_equal(parse(tok), 0);
}

static void hostile_strings_are_refused(void **state)
{
	static const char *const bad[] = {
		"", "/", "..", "%00", "../../etc/passwd", "A", "AAAA", "....................",
		"ATE3OTU0NTY0MDc4NjYtMDpzLTEwMDE6c21ziWnVLnR21WXKSKa%43",
		"ATE3OTU0NTY0MDc4NjYtMDpzLTEwMDE6c21ziWnVLnR21WXKSKaC/..",
		"ATE3OTU0NTY0MDc4NjYtMDpzLTEwMDE6c21ziWnVLnR21WXKSKaC?x=1",
		"ATE3OTU0NTY0MDc4NjYtMDpzLTEwMDE6c21ziWnVLnR21WXKSKa",
		"ATE3OTU0NTY0MDc4NjYtMDpzLTEwMDE6c21ziWnVLnR21WXKSKaC.sig",
		"ATE3OTU0NTY0MDc4NjYtMDpzLTEwMDE6c21ziWnVLnR21WXKSKaC\xC2\xA0",
		"\xFF\xFE\xFD", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	char *big, id[CLICKTOK_ID_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(clicktok_parse(key, sizeof(key), NULL, id, sizeof(id)), -1);
	/* 10 KB of token characters, and 10 KB that begin with a valid token */
	big = malloc(10 * 1024 + 1);
	assert_non_null(big);
	memset(big, 'A', 10 * 1024);
	big[10 * 1024] = '\0';
	assert_int_equal(parse(big), -1);
	memcpy(big, "ATE3OTU0NTY0MDc4NjYtMDpzLTEwMDE6c21ziWnVLnR21WXKSKaC", 52);
	assert_int_equal(parse(big), -1);
	big[52] = '\0';
	assert_int_equal(parse(big), 0);
	free(big);
}

static void bad_arguments_are_refused(void **state)
{
	char tok[CLICKTOK_MAX + 1], id[CLICKTOK_ID_MAX + 2];
	size_t n = strlen(TYPICAL_ID);

	(void)state;
	/* keys */
	assert_int_equal(clicktok_make(NULL, 32, TYPICAL_ID, tok, sizeof(tok)), -1);
	assert_string_equal(tok, "");
	assert_int_equal(clicktok_make(key, CLICKTOK_KEY_MIN - 1, TYPICAL_ID, tok,
	    sizeof(tok)), -1);
	assert_int_equal(clicktok_make(key, CLICKTOK_KEY_MIN, TYPICAL_ID, tok, sizeof(tok)),
	    0);
	assert_int_equal(clicktok_make(key, CLICKTOK_KEY_MAX + 1, TYPICAL_ID, tok,
	    sizeof(tok)), -1);
	assert_int_equal(clicktok_parse(NULL, 32, tok, id, sizeof(id)), -1);
	assert_int_equal(clicktok_parse(key, 0, tok, id, sizeof(id)), -1);
	/* ids */
	assert_int_equal(clicktok_make(key, sizeof(key), NULL, tok, sizeof(tok)), -1);
	assert_int_equal(clicktok_make(key, sizeof(key), "", tok, sizeof(tok)), -1);
	memset(id, 'x', CLICKTOK_ID_MAX + 1);
	id[CLICKTOK_ID_MAX + 1] = '\0';
	assert_int_equal(clicktok_make(key, sizeof(key), id, tok, sizeof(tok)), -1);
	/* output buffers */
	assert_int_equal(clicktok_make(key, sizeof(key), TYPICAL_ID, NULL, 64), -1);
	assert_int_equal(clicktok_make(key, sizeof(key), TYPICAL_ID, tok, 0), -1);
	assert_int_equal(clicktok_make(key, sizeof(key), TYPICAL_ID, tok, CLICKTOK_LEN(n)),
	    -1);
	assert_string_equal(tok, "");
	assert_int_equal(clicktok_make(key, sizeof(key), TYPICAL_ID, tok,
	    CLICKTOK_LEN(n) + 1), 0);
	assert_int_equal(clicktok_parse(key, sizeof(key), tok, id, n), -1);
	assert_string_equal(id, "");
	assert_int_equal(clicktok_parse(key, sizeof(key), tok, NULL, 64), -1);
	assert_int_equal(clicktok_parse(key, sizeof(key), tok, id, 0), -1);
	assert_int_equal(clicktok_parse(key, sizeof(key), tok, id, n + 1), 0);
	assert_string_equal(id, TYPICAL_ID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(typical_token_matches_the_reference_and_is_52_characters),
		cmocka_unit_test(every_id_length_and_byte_round_trips),
		cmocka_unit_test(every_single_character_change_is_refused),
		cmocka_unit_test(truncated_and_extended_tokens_are_refused),
		cmocka_unit_test(tokens_of_another_key_are_refused),
		cmocka_unit_test(forged_payloads_with_a_valid_mac_are_refused),
		cmocka_unit_test(hostile_strings_are_refused),
		cmocka_unit_test(bad_arguments_are_refused),
	};

	return cmocka_run_group_tests(tests, setup_key, NULL);
}
