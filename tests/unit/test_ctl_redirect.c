/*
 * test_ctl_redirect.c: the pure parts of dealpushctl's cluster router
 * (notifier/ctl_cluster.c, ctl_conn.c): the seed list of --cluster, what a MOVED,
 * ASK, TRYAGAIN or CLUSTERDOWN answer asks for, and a command formatted by hiredis
 * read back into its arguments for routing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "../../notifier/ctl_int.h"

static int
seeds(const char *list, char (*out)[CTL_ADDR_MAX], char *err)
{
	return ctl_cluster_seeds(list, out, CTL_CLUSTER_SEEDS_MAX, err, 512);
}

static void
seed_lists_take_ip_addresses_with_ports(void **state)
{
	char out[CTL_CLUSTER_SEEDS_MAX][CTL_ADDR_MAX], err[512];

	(void)state;
	assert_int_equal(seeds("127.0.0.1:7000", out, err), 1);
	assert_string_equal(out[0], "127.0.0.1:7000");
	assert_int_equal(seeds(" 10.0.0.1:7000 , [::1]:7001", out, err), 2);
	assert_string_equal(out[0], "10.0.0.1:7000");
	assert_string_equal(out[1], "[::1]:7001");
}

static void
bad_seed_lists_say_what_is_wrong(void **state)
{
	char out[CTL_CLUSTER_SEEDS_MAX][CTL_ADDR_MAX], err[512], many[400];
	size_t len = 0;
	int i;

	(void)state;
	assert_int_equal(seeds("", out, err), -1);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(seeds("   ", out, err), -1);
	assert_int_equal(seeds(NULL, out, err), -1);
	assert_int_equal(seeds("127.0.0.1", out, err), -1);
	assert_non_null(strstr(err, "no port"));
	assert_int_equal(seeds("127.0.0.1:0", out, err), -1);
	assert_non_null(strstr(err, "1 to 65535"));
	assert_int_equal(seeds("127.0.0.1:7000x", out, err), -1);
	assert_int_equal(seeds("redis-1:7000", out, err), -1);
	assert_non_null(strstr(err, "not an IP address"));
	assert_int_equal(seeds("127.0.0.1:7000,", out, err), -1);
	assert_non_null(strstr(err, "entry 2 is empty"));
	assert_int_equal(seeds("::1:7000", out, err), -1);
	assert_non_null(strstr(err, "[addr]:port"));
	assert_int_equal(seeds("999.1.1.1:7000", out, err), -1);
	for (i = 0; i < 17; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, "%s127.0.0.1:1",
		    i ? "," : "");
	assert_int_equal(seeds(many, out, err), -1);
	assert_non_null(strstr(err, "more than 16 seeds"));
}

static void
redirects_name_their_slot_and_node(void **state)
{
	char addr[CTL_ADDR_MAX];
	int slot = -1;

	(void)state;
	assert_int_equal(ctl_cluster_redirect("MOVED 3999 127.0.0.1:6381", "10.0.0.1:7000",
	    &slot, addr, sizeof(addr)), CTL_REDIRECT_MOVED);
	assert_int_equal(slot, 3999);
	assert_string_equal(addr, "127.0.0.1:6381");
	assert_int_equal(ctl_cluster_redirect("ASK 0 10.0.0.2:7001", "10.0.0.1:7000", &slot,
	    addr, sizeof(addr)), CTL_REDIRECT_ASK);
	assert_int_equal(slot, 0);
	assert_string_equal(addr, "10.0.0.2:7001");
	/* no host: the node that answered */
	assert_int_equal(ctl_cluster_redirect("MOVED 16383 :7002", "10.0.0.1:7000", &slot,
	    addr, sizeof(addr)), CTL_REDIRECT_MOVED);
	assert_int_equal(slot, 16383);
	assert_string_equal(addr, "10.0.0.1:7002");
	assert_int_equal(ctl_cluster_redirect("MOVED 1 ::1:7002", "x:1", &slot, addr,
	    sizeof(addr)), CTL_REDIRECT_MOVED);
	assert_string_equal(addr, "::1:7002");
	assert_int_equal(ctl_cluster_redirect("TRYAGAIN Multiple keys request during "
	    "rehashing of slot", "a:1", &slot, addr, sizeof(addr)), CTL_REDIRECT_TRYAGAIN);
	assert_int_equal(ctl_cluster_redirect("CLUSTERDOWN The cluster is down", "a:1",
	    &slot, addr, sizeof(addr)), CTL_REDIRECT_DOWN);
	assert_int_equal(ctl_cluster_redirect("ERR unknown command", "a:1", &slot, addr,
	    sizeof(addr)), CTL_REDIRECT_NONE);
	assert_int_equal(ctl_cluster_redirect("MOVEDX 1 a:1", "a:1", &slot, addr,
	    sizeof(addr)), CTL_REDIRECT_NONE);
}

/* A redirect that cannot be followed is never guessed at. */
static void
malformed_redirects_are_refused(void **state)
{
	static const char *const bad[] = {
		"MOVED", "MOVED ", "MOVED x 1.2.3.4:1", "MOVED -1 1.2.3.4:1",
		"MOVED 16384 1.2.3.4:1", "MOVED 1 1.2.3.4", "MOVED 1 1.2.3.4:", "MOVED 1 :",
		"MOVED 1 1.2.3.4:0", "MOVED 1 1.2.3.4:65536", "MOVED 1 1.2.3.4:1 extra",
		"ASK 1", "ASK 99999999999999999999 a:1", "MOVED 1  a:1",
	};
	char addr[CTL_ADDR_MAX], small[8], longaddr[200];
	size_t i;
	int slot;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ctl_cluster_redirect(bad[i], "10.0.0.1:7000", &slot, addr, sizeof(addr)) !=
		    CTL_REDIRECT_BAD)
			fail_msg("\"%s\" was read", bad[i]);
	/* longer than the buffer: refused, not cut */
	assert_int_equal(ctl_cluster_redirect("MOVED 1 10.0.0.1:7000", "a:1", &slot, small,
	    sizeof(small)), CTL_REDIRECT_BAD);
	memset(longaddr, 'a', sizeof(longaddr));
	memcpy(longaddr, "ASK 5 ", 6);
	memcpy(longaddr + sizeof(longaddr) - 6, ":7000", 6);
	assert_int_equal(ctl_cluster_redirect(longaddr, "a:1", &slot, addr, sizeof(addr)),
	    CTL_REDIRECT_BAD);
}

/* What hiredis formats is read back exactly, binary bytes included. */
static void
a_formatted_command_splits_into_its_arguments(void **state)
{
	const char *argv[8];
	size_t lens[8];
	char *cmd = NULL;
	int len;

	(void)state;
	len = redisFormatCommand(&cmd, "XADD %s * %s %b", "deals", "deal", "a\0\r\nb",
	    (size_t)5);
	assert_true(len > 0);
	assert_int_equal(ctl_resp_split(cmd, (size_t)len, 8, argv, lens), 5);
	assert_int_equal(lens[0], 4);
	assert_memory_equal(argv[0], "XADD", 4);
	assert_int_equal(lens[1], 5);
	assert_memory_equal(argv[1], "deals", 5);
	assert_int_equal(lens[4], 5);
	assert_memory_equal(argv[4], "a\0\r\nb", 5);
	/* more arguments than room, cut, trailing bytes, bad headers */
	assert_int_equal(ctl_resp_split(cmd, (size_t)len, 4, argv, lens), -1);
	assert_int_equal(ctl_resp_split(cmd, (size_t)len - 1, 8, argv, lens), -1);
	redisFreeCommand(cmd);
	assert_int_equal(ctl_resp_split("*1\r\n$4\r\nPING\r\nx", 15, 8, argv, lens), -1);
	assert_int_equal(ctl_resp_split("*1\r\n$9\r\nPING\r\n", 14, 8, argv, lens), -1);
	assert_int_equal(ctl_resp_split("*0\r\n", 4, 8, argv, lens), -1);
	assert_int_equal(ctl_resp_split("", 0, 8, argv, lens), -1);
	assert_int_equal(ctl_resp_split("*1\r\n$-1\r\n", 9, 8, argv, lens), -1);
	assert_int_equal(ctl_resp_split("*1\r\n$4\r\nPINGxx", 14, 8, argv, lens), -1);
	assert_int_equal(ctl_resp_split("*1\r\n$4\r\nPING\r\n", 14, 8, argv, lens), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seed_lists_take_ip_addresses_with_ports),
		cmocka_unit_test(bad_seed_lists_say_what_is_wrong),
		cmocka_unit_test(redirects_name_their_slot_and_node),
		cmocka_unit_test(malformed_redirects_are_refused),
		cmocka_unit_test(a_formatted_command_splits_into_its_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
