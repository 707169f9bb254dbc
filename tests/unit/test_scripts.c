/*
 * test_scripts.c: a script call's arguments as script_args builds them (scripts.c):
 * byte for byte what hiredis itself writes for the same arguments, keys and the other
 * arguments apart, numbers in decimal, the limit of SCRIPT_ARGS_MAX.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "scripts.h"

/* hiredis' wire format of argv[0..argc) without its "*<argc>\r\n" head. */
static char *
hiredis_body(int argc, const char **argv, size_t *len)
{
	char *cmd = NULL, *crlf, *body;
	int n = redisFormatCommandArgv(&cmd, argc, argv, NULL);

	assert_true(n > 0);
	crlf = strstr(cmd, "\r\n");
	assert_non_null(crlf);
	*len = (size_t)n - (size_t)(crlf + 2 - cmd);
	body = malloc(*len + 1);
	assert_non_null(body);
	memcpy(body, crlf + 2, *len);
	body[*len] = '\0';
	redisFreeCommand(cmd);
	return body;
}

static void
expect_wire(const struct script_buf *b, int argc, const char **argv)
{
	size_t len;
	char *want = hiredis_body(argc, argv, &len);

	assert_int_equal(b->len, len);
	assert_memory_equal(b->p, want, len);
	free(want);
}

static void
keys_and_args_are_written_as_hiredis_writes_them(void **state)
{
	struct script_args a = { 0 };
	const char *keys[] = { "push:d1", "consent:sms", "", "report:campaign:spring" };
	const char *args[] = { "1733356800", "sub 1", "", "0", "-1", "line\twith\ttabs",
		"9223372036854775807", "-9223372036854775808" };

	(void)state;
	script_key(&a, "push:", "d1");
	script_arg_ll(&a, 1733356800LL);
	script_key(&a, "consent:sms", NULL);
	script_arg(&a, "sub 1", NULL);
	script_key(&a, "", "");
	script_arg(&a, "", NULL);
	script_key(&a, "report:campaign:", "spring");
	script_arg_ll(&a, 0);
	script_arg_ll(&a, -1);
	script_arg(&a, "line\twith", "\ttabs");
	script_arg_ll(&a, LLONG_MAX);
	script_arg_ll(&a, LLONG_MIN);
	assert_false(a.failed);
	assert_int_equal(a.nkeys, 4);
	assert_int_equal(a.nargs, 8);
	expect_wire(&a.keys, 4, keys);
	expect_wire(&a.args, 8, args);
	script_args_release(&a);
	assert_null(a.keys.p);
	assert_int_equal(a.nkeys + a.nargs, 0);
}

/* Long arguments make the buffers grow past their first size; nothing is lost. */
static void
a_large_call_grows_its_buffers(void **state)
{
	struct script_args a = { 0 };
	char *big = malloc(20001), *bang = malloc(20002);
	const char *argv[3];

	(void)state;
	assert_non_null(big);
	assert_non_null(bang);
	memset(big, 'x', 20000);
	big[20000] = '\0';
	memcpy(bang, big, 20000);
	memcpy(bang + 20000, "!", 2);
	script_arg(&a, "a", NULL);
	script_arg(&a, big, NULL);
	script_arg(&a, big, "!");
	assert_false(a.failed);
	argv[0] = "a";
	argv[1] = big;
	argv[2] = bang;
	expect_wire(&a.args, 3, argv);
	script_args_release(&a);
	free(big);
	free(bang);
}

static void
more_than_the_limit_fails_and_the_failure_sticks(void **state)
{
	struct script_args a = { 0 };
	int i;

	(void)state;
	for (i = 0; i < SCRIPT_ARGS_MAX; i++)
		script_arg(&a, "1", NULL);
	assert_false(a.failed);
	script_key(&a, "k", NULL);
	assert_true(a.failed);
	assert_int_equal(a.nkeys, 0);
	assert_int_equal(a.nargs, SCRIPT_ARGS_MAX);
	/* script_call_args refuses a failed call and empties it for the next one. */
	assert_int_equal(script_call_args(NULL, SCRIPT_RECORD, &a, NULL, NULL), -1);
	assert_false(a.failed);
	assert_int_equal(a.nargs, 0);
	assert_int_equal(a.args.len, 0);
	script_args_release(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_and_args_are_written_as_hiredis_writes_them),
		cmocka_unit_test(a_large_call_grows_its_buffers),
		cmocka_unit_test(more_than_the_limit_fails_and_the_failure_sticks),
	};

	assert_int_equal(scripts_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
