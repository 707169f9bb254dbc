/*
 * test_rcluster_map.c: the slot map read out of CLUSTER SHARDS and CLUSTER SLOTS
 * replies (notifier/rcluster_map.c).
 *
 * A reply is untrusted input: each shard's ranges go to its primary, replicas are
 * only remembered, a node without an IP takes the asked node's host, a shard with no
 * slots or no primary adds nothing, and any element of the wrong type or a slot out
 * of range refuses the whole reply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "fake_reply.h"

#include "../../notifier/rcluster_int.h"  /* the map readers */

/* An array of n elements (taken over). */
/* One CLUSTER SHARDS node entry as Redis 7.0 writes it. */
static redisReply *
shard_node(const char *ip, long long port, const char *role, const char *health)
{
	return arr(14, str("id"), str("0123456789abcdef"), str("port"), num(port),
	    str("ip"), str(ip), str("endpoint"), str(ip), str("role"), str(role),
	    str("replication-offset"), num(0), str("health"), str(health));
}

static void
shards_give_each_primary_its_ranges(void **state)
{
	struct rcl_map m = { 0 };
	redisReply *r;

	(void)state;
	r = arr(2,
	    arr(4, str("slots"), arr(4, num(0), num(100), num(200), num(5460)),
		str("nodes"), arr(2, shard_node("127.0.0.1", 7003, "replica", "online"),
		    shard_node("127.0.0.1", 7000, "master", "online"))),
	    arr(4, str("slots"), arr(2, num(5461), num(16383)),
		str("nodes"), arr(1, shard_node("10.0.0.2", 7001, "master", "online"))));
	assert_int_equal(rcl_map_from_shards(r, "127.0.0.1", &m), 0);
	assert_int_equal(m.nranges, 3);
	assert_int_equal(m.ranges[0].start, 0);
	assert_int_equal(m.ranges[0].end, 100);
	assert_string_equal(m.ranges[0].addr, "127.0.0.1:7000");
	assert_int_equal(m.ranges[1].start, 200);
	assert_int_equal(m.ranges[1].end, 5460);
	assert_string_equal(m.ranges[2].addr, "10.0.0.2:7001");
	/* The replica is remembered as a node to ask, not given slots. */
	assert_int_equal(m.nnodes, 3);
	assert_string_equal(m.nodes[0], "127.0.0.1:7003");
	rcl_map_clear(&m);
	freeReplyObject(r);
}

static void
node_without_ip_takes_the_asked_host(void **state)
{
	struct rcl_map m = { 0 };
	redisReply *r;

	(void)state;
	r = arr(1, arr(4, str("slots"), arr(2, num(0), num(16383)), str("nodes"),
	    arr(1, shard_node("", 7000, "master", "online"))));
	assert_int_equal(rcl_map_from_shards(r, "192.0.2.7", &m), 0);
	assert_int_equal(m.nranges, 1);
	assert_string_equal(m.ranges[0].addr, "192.0.2.7:7000");
	rcl_map_clear(&m);
	freeReplyObject(r);
}

static void
shard_without_slots_or_primary_adds_nothing(void **state)
{
	struct rcl_map m = { 0 };
	redisReply *r;

	(void)state;
	/* A failed primary after its replica took over; a shard of replicas only. */
	r = arr(2,
	    arr(4, str("slots"), arr(0), str("nodes"),
		arr(1, shard_node("127.0.0.1", 7000, "master", "fail"))),
	    arr(4, str("slots"), arr(2, num(0), num(10)), str("nodes"),
		arr(1, shard_node("127.0.0.1", 7004, "replica", "online"))));
	assert_int_equal(rcl_map_from_shards(r, "127.0.0.1", &m), 0);
	assert_int_equal(m.nranges, 0);
	assert_int_equal(m.nnodes, 2);
	rcl_map_clear(&m);
	freeReplyObject(r);
}

static void
malformed_shards_are_refused(void **state)
{
	redisReply *bad[7];
	struct rcl_map m = { 0 };
	size_t i;

	(void)state;
	bad[0] = str("ERR unknown subcommand");
	/* A slot past 16383. */
	bad[1] = arr(1, arr(4, str("slots"), arr(2, num(0), num(16384)), str("nodes"),
	    arr(1, shard_node("127.0.0.1", 7000, "master", "online"))));
	/* A range that ends before it starts. */
	bad[2] = arr(1, arr(4, str("slots"), arr(2, num(10), num(5)), str("nodes"),
	    arr(1, shard_node("127.0.0.1", 7000, "master", "online"))));
	/* An odd number of slot bounds. */
	bad[3] = arr(1, arr(4, str("slots"), arr(1, num(10)), str("nodes"),
	    arr(1, shard_node("127.0.0.1", 7000, "master", "online"))));
	/* A port that is not an integer, or out of range. */
	bad[4] = arr(1, arr(4, str("slots"), arr(2, num(0), num(1)), str("nodes"),
	    arr(1, arr(6, str("port"), str("7000"), str("ip"), str("127.0.0.1"),
		str("role"), str("master")))));
	bad[5] = arr(1, arr(4, str("slots"), arr(2, num(0), num(1)), str("nodes"),
	    arr(1, shard_node("127.0.0.1", 70000, "master", "online"))));
	/* No "nodes" field. */
	bad[6] = arr(1, arr(2, str("slots"), arr(2, num(0), num(1))));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(rcl_map_from_shards(bad[i], "127.0.0.1", &m), -1);
		rcl_map_clear(&m);
		freeReplyObject(bad[i]);
	}
	assert_int_equal(rcl_map_from_shards(NULL, "127.0.0.1", &m), -1);
}

static void
slots_reply_gives_the_first_node_the_range(void **state)
{
	struct rcl_map m = { 0 };
	redisReply *r, *bad;

	(void)state;
	r = arr(2,
	    arr(4, num(0), num(8191), arr(3, str("127.0.0.1"), num(7000), str("a")),
		arr(3, str("127.0.0.1"), num(7003), str("b"))),
	    arr(3, num(8192), num(16383), arr(3, str(""), num(7001), str("c"))));
	assert_int_equal(rcl_map_from_slots(r, "127.0.0.9", &m), 0);
	assert_int_equal(m.nranges, 2);
	assert_string_equal(m.ranges[0].addr, "127.0.0.1:7000");
	assert_int_equal(m.ranges[1].start, 8192);
	assert_string_equal(m.ranges[1].addr, "127.0.0.9:7001");
	assert_int_equal(m.nnodes, 3);
	rcl_map_clear(&m);
	freeReplyObject(r);

	bad = arr(1, arr(3, num(0), str("8191"), arr(2, str("127.0.0.1"), num(7000))));
	assert_int_equal(rcl_map_from_slots(bad, "127.0.0.1", &m), -1);
	rcl_map_clear(&m);
	freeReplyObject(bad);
	bad = arr(1, arr(2, num(0), num(1)));
	assert_int_equal(rcl_map_from_slots(bad, "127.0.0.1", &m), -1);
	rcl_map_clear(&m);
	freeReplyObject(bad);
}

static void
addresses_split_at_the_last_colon(void **state)
{
	char host[64];
	int port;

	(void)state;
	assert_int_equal(rcl_split_addr("127.0.0.1:7000", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7000);
	assert_int_equal(rcl_split_addr("::1:6379", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(rcl_split_addr("127.0.0.1", host, sizeof(host), &port), -1);
	assert_int_equal(rcl_split_addr(":7000", host, sizeof(host), &port), -1);
	assert_int_equal(rcl_split_addr("h:", host, sizeof(host), &port), -1);
	assert_int_equal(rcl_split_addr("h:0", host, sizeof(host), &port), -1);
	assert_int_equal(rcl_split_addr("h:65536", host, sizeof(host), &port), -1);
	assert_int_equal(rcl_split_addr("h:12x", host, sizeof(host), &port), -1);
	assert_int_equal(rcl_split_addr("longer-than-four:1", host, 4, &port), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shards_give_each_primary_its_ranges),
		cmocka_unit_test(node_without_ip_takes_the_asked_host),
		cmocka_unit_test(shard_without_slots_or_primary_adds_nothing),
		cmocka_unit_test(malformed_shards_are_refused),
		cmocka_unit_test(slots_reply_gives_the_first_node_the_range),
		cmocka_unit_test(addresses_split_at_the_last_colon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
