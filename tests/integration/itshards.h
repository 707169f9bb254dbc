/*
 * itshards.h: any integration test on the sharded layout (docs/sharding.md, section
 * 6 step 2 increment 5). With DP_SHARDS=S in the environment every Redis the harness
 * flushes, starts empty or imports into gets `dealpushctl layout create --shards S`,
 * every notifier it starts gets `[redis] shards = S`, and the test process itself
 * names keys in the same layout (keys.h), so a test reads the keys the notifier wrote.
 * Without DP_SHARDS nothing changes: the single-instance layout.
 */
#ifndef DEALPUSH_ITSHARDS_H
#define DEALPUSH_ITSHARDS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/* S from DP_SHARDS (1 to 1024), or 0 when unset (the single-instance layout). A value
 * that is not a shard count ends the test run (exit 2). */
unsigned it_shards(void);

/* With DP_SHARDS: stores the layout on the Redis at port when none is stored (refused
 * by dealpushctl, and then left so, when the Redis holds single-instance data) and
 * puts the same layout in force in this process. Returns 1 when the Redis holds a
 * layout afterwards, 0 when it does not or DP_SHARDS is unset. */
int it_shards_ensure(int port);

/* The config lines a notifier on the Redis at port needs ("[redis]\nshards = S\n"),
 * or "" (static buffer). Calls it_shards_ensure unless a layout was already seen or
 * stored on that port by this process (then Redis is not asked: it may be loading). */
const char *it_shards_conf(int port);

/* The sum over every shard of an integer command on a per-shard key: fmt has one %s
 * for the key, name's "<prefix><id>" (keys_per) in each shard. -1 on an error. */
long long it_shards_sum(redisContext *rc, const char *fmt, int name, const char *id);

/* Subscriber sub's key "<prefix><id>" of name (keys_per) in its shard, into buf.
 * Returns buf. */
const char *it_key_of(int name, const char *sub, const char *id, char *buf,
    size_t size);

/* Today's (single-instance) name as it is in the layout in force for subscriber
 * sub: "subscribers", "consent:sms", "stats", "push:<deal>", "report:deal:<id>" ...
 * (every name keys.h knows) in sub's shard (shard 0 when sub is NULL: the counters no
 * subscriber owns); a number's keys ("suppressed:sms" and "inbound:sids" with sub the
 * number, "optout_ack:<n>", "signup:<n>", "signup:asked:<n>") on the number's slot;
 * any other name as it is (a global key). Into buf; returns buf. */
const char *it_key_for(const char *name, const char *sub, char *buf, size_t size);

/* Field of today's name (as it_key_for knows them) summed over every shard into
 * *sum; returns the number of shards that have the field (0: absent everywhere). */
int it_shards_hsum(redisContext *rc, const char *name, const char *field, double *sum);

/* The sum over every shard of an integer command on the shard's key name (keys_name:
 * "delayed", "stats" ...): fmt has one %s for the key. -1 on an error. */
long long it_shards_sum_key(redisContext *rc, const char *fmt, int name);

/* The sum over every shard of field of "<prefix><id>" (keys_per, a report or push
 * counter); a field absent everywhere is 0. */
double it_shards_hget_sum(redisContext *rc, int name, const char *id,
    const char *field);

/* Codes (or a quota's tokens) of deal's pool that the shards hold outside any push,
 * summed over every shard: its stashes and its give-backs in flight (docs/sharding.md
 * 4c). 0 without a layout. */
long long it_shards_codes_held(redisContext *rc, const char *deal, const char *pool);

/* Entries pending in group "deliver" summed over every shard's job stream ("pushes"
 * without a layout), of consumer only when it is not NULL; -1 when one cannot be
 * read (no stream or group yet). */
long long it_shards_jobs_pending(redisContext *rc, const char *consumer);

/* Entries of "deals" read and not acked, summed over every shard's group
 * (keys_deals_group: "notifier" on one Redis, s<K> sharded); -1 when a group cannot
 * be read. */
long long it_deals_pending(redisContext *rc);

/* Shard 0's copy of deal:<deal> (each shard plans its own copy; the deal's fields,
 * its entry and url, are in every copy; the counters are summed with
 * it_shards_hget_sum(rc, KEYS_DEAL, deal, field)). */
const char *it_deal_key(const char *deal, char *buf, size_t size);

/* How many shards' copies of deal:<deal> hold field ("planned", "cancelled",
 * "sold_out"); keys_shards() of them when every shard has it. */
int it_deal_copies(redisContext *rc, const char *deal, const char *field);

/* The entry that planned deal (its push ids' first part) into buf, "" when none. */
const char *it_deal_entry(redisContext *rc, const char *deal, char *buf, size_t size);

/* The sum over every shard's stats of field (0 when absent everywhere). */
long long it_shards_stat(redisContext *rc, const char *field);

/* Every member of every shard's zset name (keys_name) with its score, as one reply
 * of the shape ZRANGE ... WITHSCORES answers (shard by shard). Caller frees it with
 * it_shards_reply_free. */
redisReply *it_shards_zrange(redisContext *rc, int name);
void it_shards_reply_free(redisReply *r);

/* The jobs plan.lua writes for subscribers "<prefix>0" ... "<prefix>(n-1)" planned in
 * one chunk with job_size: ceil(n / job_size) on one Redis; in the sharded layout a
 * job holds one shard's recipients, so the sum of each shard's ceil. */
long long it_jobs_for(const char *prefix, int n, int job_size);

/*
 * What the shard store and STOP tests (test_shard_store.c, test_shard_stop.c) share:
 * a layout of IT_SHARD_N shards stored on the shared Redis by their setup, and the
 * admin API of the notifier a test started on it. itshards.c calls no cmocka (the
 * benchmarks link it without cmocka): IT_SHARD_WAIT_MIRROR, a macro, fails the test.
 */
#define IT_SHARD_N 4
#define IT_SHARD_TOKEN "shard-store-token-0123456789"   /* DP_TEST_ADMIN_TOKEN */
#define IT_SHARD_WAIT_MS 15000                          /* for the mirror to load */

struct it_resp;

/* Subscriber id's JSON: +1512556<n, 4 digits>, SMS consent, laptop (static buffer). */
const char *it_shard_sub_json(const char *id, int n);

/* it_http to the admin API on port with IT_SHARD_TOKEN (body may be NULL); the status. */
int it_shard_api(int port, const char *method, const char *path, const char *body,
    struct it_resp *resp);

/* The report of deal from the admin API on port as "<matched> <sent> <skipped>"
 * (skipped as JSON), into buf; "" when there is none. */
void it_shard_report_line(int port, const char *deal, char *buf, size_t size);

/* The mirror's size from POST /v1/deals/simulate on port; -1 when it does not answer. */
long it_shard_mirror_size(int port);

/* 1 when the mirror on port holds n subscribers within IT_SHARD_WAIT_MS, else 0. */
int it_shard_mirror_wait(int port, long n);

/* it_shard_mirror_wait, failing the test (cmocka's fail_msg) with the size last seen. */
#define IT_SHARD_WAIT_MIRROR(port, n) do {					\
	int it_port_ = (port);							\
	long it_n_ = (n);							\
										\
	if (!it_shard_mirror_wait(it_port_, it_n_))				\
		fail_msg("mirror: want %ld subscribers, last saw %ld", it_n_,	\
		    it_shard_mirror_size(it_port_));				\
} while (0)

/* Stores IT_SHARD_N shards' layout (dealpushctl) and puts it in force here; 0 or -1. */
int it_shard_setup_layout(void);

/* cmocka setup: it_one_setup, then it_shard_setup_layout. */
int it_shard_setup(void **state);

/* cmocka teardown: layout_clear, then it_one_teardown. */
int it_shard_teardown(void **state);

#endif
