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

#include "err.h"
#include "layout.h"
#include "scripts.h"
#include "shard.h"
#include "slot.h"

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

/* The keys of the EVALSHA in a->cmd (after "*n", EVALSHA, the sha and nkeys). */
static void
command_keys(const struct script_args *a, int nkeys, char keys[][64], size_t *lens)
{
	const char *p = a->cmd.p, *end = p + a->cmd.len;
	int i;

	p = strstr(p, "\r\n") + 2;            /* *<count> */
	for (i = 0; i < 3 + nkeys; i++) {
		unsigned long n = strtoul(p + 1, NULL, 10);

		p = strstr(p, "\r\n") + 2;
		assert_true(p + n <= end);
		if (i >= 3) {
			assert_true(n < 64);
			memcpy(keys[i - 3], p, n);
			lens[i - 3] = n;
		}
		p += n + 2;
	}
}

/* Sharded, a key the script skips ("") goes out as "{tag}\0" on the slot of the
 * call's first named key, so a Redis Cluster does not refuse the call: "" hashes
 * to slot 0. One Redis without a layout gets "" as before. */
static void
a_skipped_key_rides_on_the_calls_slot(void **state)
{
	struct script_args a = { 0 };
	struct shard_layout *l;
	struct err err;
	char keys[4][64];
	size_t lens[4];

	(void)state;
	script_key(&a, "", NULL);
	script_key(&a, "{s7}push:", "d1");
	script_key(&a, "", NULL);
	script_key(&a, "{s7}stats", NULL);
	assert_int_equal(script_args_command(SCRIPT_ADMIT, &a), 0);
	command_keys(&a, 4, keys, lens);
	assert_int_equal(lens[0], 0);
	assert_int_equal(lens[2], 0);
	assert_non_null(l = shard_layout_new(4, &err));
	layout_set(l);
	assert_int_equal(script_args_command(SCRIPT_ADMIT, &a), 0);
	command_keys(&a, 4, keys, lens);
	assert_int_equal(lens[0], 5);
	assert_memory_equal(keys[0], "{s7}\0", 5);
	assert_int_equal(lens[2], 5);
	assert_int_equal(slot_of(keys[0], lens[0]), slot_of("{s7}stats", 9));
	assert_int_equal(lens[1], strlen("{s7}push:d1"));
	assert_memory_equal(keys[1], "{s7}push:d1", lens[1]);
	assert_memory_equal(keys[3], "{s7}stats", lens[3]);
	/* A key without a tag hashes whole: the placeholder's tag is the whole name. */
	script_args_release(&a);
	script_key(&a, "deals", NULL);
	script_key(&a, "", NULL);
	assert_int_equal(script_args_command(SCRIPT_ADMIT, &a), 0);
	command_keys(&a, 2, keys, lens);
	assert_int_equal(lens[1], 8);
	assert_int_equal(slot_of(keys[1], lens[1]), slot_of("deals", 5));
	/* No named key: nothing to ride on, "" as it is. */
	script_args_release(&a);
	script_key(&a, "", NULL);
	assert_int_equal(script_args_command(SCRIPT_ADMIT, &a), 0);
	command_keys(&a, 1, keys, lens);
	assert_int_equal(lens[0], 0);
	script_args_release(&a);
	layout_clear();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_and_args_are_written_as_hiredis_writes_them),
		cmocka_unit_test(a_large_call_grows_its_buffers),
		cmocka_unit_test(more_than_the_limit_fails_and_the_failure_sticks),
		cmocka_unit_test(a_skipped_key_rides_on_the_calls_slot),
	};

	assert_int_equal(scripts_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
