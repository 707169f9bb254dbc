/*
 * test_layout_start.c: the key layout read at start-up (docs/sharding.md section 1.1;
 * notifier/layout.c, notifier/ctl_layout.c), on the shared redis-server.
 *
 * Without dealpush:layout the notifier runs the single-instance layout; with a layout
 * made by `dealpushctl layout create` it runs that one; a layout that is corrupted,
 * half migrated, of another type or of another shard count than the config ends the
 * notifier with exit code 78 and event=layout_mismatch naming the field, before it
 * reads a stream; dealpushctl refuses its commands the same way. `layout create`
 * never writes over data of the single-instance layout or over another layout. The
 * HTTP surface is up while the layout is read: a request that comes then is answered
 * by its route once the notifier has started.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"

#define EXIT_MS 15000
#define TAGS4 "s0.108217 s1.23915 s2.6689 s3.43003"
#define TOKEN "layout-test-token-0123456789"

/* dealpushctl with up to four arguments (NULL-ended) on the shared redis; its
 * output in out. Returns its exit status. */
static int
ctl(char *out, size_t size, const char *a0, const char *a1, const char *a2,
    const char *a3)
{
	char bin[512], addr[64];
	const char *argv[] = { bin, "--redis", addr, a0, a1, a2, a3, NULL };

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", it_redis_port());
	return it_run(argv, out, size);
}

static int
has_line(void *arg)
{
	const char *const *a = arg;

	return it_log_line(a[0], a[1]) > 0;
}

/* Waits for a line containing needle in the notifier's log. */
static int
wait_log(struct it_notifier *n, const char *needle)
{
	const char *a[2] = { n->proc.log, needle };

	return it_wait(has_line, a, EXIT_MS);
}

/* Starts a notifier that must refuse the layout: exit code 78 and needle logged. */
static void
refused_at_start(struct it_one *f, const char *extra, const char *needle)
{
	int status;

	assert_int_equal(it_notifier_start(&f->nt, f->port, 1, "layout-t", extra), 0);
	status = it_stop(&f->nt.proc, 0, EXIT_MS);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 78);
	assert_true(it_log_line(f->nt.proc.log, needle) > 0);
	/* It stopped before reading anything: no group was created. */
	assert_int_equal(it_int(f->rc, "EXISTS deals"), 0);
	assert_int_equal(it_int(f->rc, "EXISTS pushes"), 0);
}

static void
no_layout_key_runs_the_single_instance_layout(void **state)
{
	struct it_one *f = *state;
	char out[256];

	assert_int_equal(ctl(out, sizeof(out), "layout", "show", NULL, NULL), 0);
	assert_non_null(strstr(out, "layout single"));
	assert_true(it_notifier_start_http(&f->nt, f->port, 1, "layout-t", NULL) > 0);
	assert_true(wait_log(&f->nt, "event=layout layout=single"));
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	assert_int_equal(it_int(f->rc, "EXISTS dealpush:layout"), 0);
}

static void
a_created_layout_is_read_at_start(void **state)
{
	struct it_one *f = *state;
	char out[4096];

	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "4"), 0);
	assert_int_equal(ctl(out, sizeof(out), "layout", "show", NULL, NULL), 0);
	assert_non_null(strstr(out, "shard 3 tag {s3.43003} slot 14336"));
	assert_true(it_notifier_start_http(&f->nt, f->port, 1, "layout-t",
	    "[redis]\nshards = 4\n") > 0);
	assert_true(wait_log(&f->nt, "event=layout layout=sharded shards=4"));
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	/* dealpushctl runs its commands under it. */
	assert_int_equal(ctl(out, sizeof(out), "cancel", "d-1", NULL, NULL), 0);
}

static void
a_shard_count_other_than_the_config_stops_the_notifier(void **state)
{
	struct it_one *f = *state;
	char out[256];

	refused_at_start(f, "[redis]\nshards = 4\n", "event=layout_mismatch field=shards");
	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "4"), 0);
	refused_at_start(f, "[redis]\nshards = 8\n", "event=layout_mismatch field=shards");
}

/* Plan chunks that fit one shard's jobs but not the stored layout's 1024 shards' (a
 * job holds one shard's recipients): refused once the layout is read, as the config
 * check refuses them when redis.shards says so. */
/* 1 when the groups on deals are exactly s0 .. s3 (arg: the Redis context). */
static int
deals_groups_per_shard(void *arg)
{
	redisReply *r = redisCommand(arg, "XINFO GROUPS deals");
	int seen = 0, other = 0;
	size_t g, k;

	for (g = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && g < r->elements; g++)
		for (k = 0; k + 1 < r->element[g]->elements; k += 2) {
			const redisReply *key = r->element[g]->element[k];
			const redisReply *v = r->element[g]->element[k + 1];

			if (key->type != REDIS_REPLY_STRING || strcmp(key->str, "name") != 0 ||
			    v->type != REDIS_REPLY_STRING)
				continue;
			if (strlen(v->str) == 2 && v->str[0] == 's' && v->str[1] >= '0' &&
			    v->str[1] <= '3')
				seen |= 1 << (v->str[1] - '0');
			else
				other = 1;
		}
	freeReplyObject(r);
	return seen == 15 && !other;
}

/* The sharded layout reads deals in a group per shard, s0 .. s3 (docs/sharding.md
 * 4a), and never in the single-instance group "notifier". */
static void
a_sharded_layout_reads_deals_in_a_group_per_shard(void **state)
{
	struct it_one *f = *state;
	char out[256];

	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "4"), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, 1, "layout-g",
	    "[redis]\nshards = 4\n"), 0);
	assert_true(it_wait(deals_groups_per_shard, f->rc, EXIT_MS));
}

static void
a_bad_layout_stops_the_notifier_and_dealpushctl(void **state)
{
	struct it_one *f = *state;
	static const struct {
		const char *cmd, *tags, *field;
	} bad[] = {
		{ "HSET dealpush:layout version 1 shards 4 hash fnv1a64-fmix64 tags %s "
		  "created 1", "s0 s1 s2 s3", "field=tags" },
		{ "HSET dealpush:layout version 0-pending shards 4 hash fnv1a64-fmix64 "
		  "tags %s created 1", TAGS4, "field=version" },
		{ "HSET dealpush:layout version 1 shards 4 hash crc16 tags %s created 1",
		  TAGS4, "field=hash" },
		{ "SET dealpush:layout %s", "1", "field=layout" },
	};
	char out[1024], needle[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		redisReply *r;

		it_flush(f->rc);
		r = redisCommand(f->rc, bad[i].cmd, bad[i].tags);
		assert_non_null(r);
		assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
		freeReplyObject(r);
		snprintf(needle, sizeof(needle), "event=layout_mismatch %s", bad[i].field);
		refused_at_start(f, NULL, needle);
		assert_int_equal(ctl(out, sizeof(out), "cancel", "d-1", NULL, NULL), 78);
		assert_non_null(strstr(out, bad[i].field));
		/* Nothing was published. */
		assert_int_equal(it_int(f->rc, "EXISTS deals"), 0);
	}
}

static void
layout_create_never_writes_over_data(void **state)
{
	struct it_one *f = *state;
	char out[1024];
	redisReply *r;

	/* Subscribers of the single-instance layout. */
	it_import_audience(f->port, 1, 1000, "food");
	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "4"), 1);
	assert_non_null(strstr(out, "dealpushctl migrate --to-shards 4"));
	assert_int_equal(it_int(f->rc, "EXISTS dealpush:layout"), 0);
	/* A notifier that read deals. */
	it_flush(f->rc);
	r = redisCommand(f->rc, "XGROUP CREATE deals notifier $ MKSTREAM");
	freeReplyObject(r);
	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "4"), 1);
	assert_non_null(strstr(out, "group notifier"));
	/* Another layout. */
	it_flush(f->rc);
	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "2"), 0);
	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "4"), 1);
	assert_non_null(strstr(out, "exists"));
	r = redisCommand(f->rc, "HGET dealpush:layout shards");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "2");
	freeReplyObject(r);
	/* Usage errors. */
	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "0"), 2);
	assert_int_equal(ctl(out, sizeof(out), "layout", "create", "--shards", "1025"), 2);
	assert_int_equal(ctl(out, sizeof(out), "layout", "create", NULL, NULL), 2);
}

struct admin_get {
	int port, status;
	struct it_resp resp;
};

static void *
admin_get(void *arg)
{
	struct admin_get *g = arg;

	g->status = it_http(g->port, "GET", "/v1/rules",
	    "Authorization: Bearer " TOKEN "\r\n", NULL, 0, &g->resp);
	return NULL;
}

static void
a_request_during_start_up_is_answered_by_its_route(void **state)
{
	struct it_one *f = *state;
	static struct admin_get g;
	struct it_proc redis;
	char dir[512];
	pthread_t t;
	int port = it_free_port();

	(void)f;
	assert_true(port > 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	/* No Redis yet: the layout cannot be read, the admin API has no route. */
	g.port = it_notifier_start_http(&f->nt, port, 1, "layout-t",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(g.port > 0);
	assert_int_equal(pthread_create(&t, NULL, admin_get, &g), 0);
	it_path(dir, sizeof(dir), "redis-layout", "");
	memset(&redis, 0, sizeof(redis));
	assert_int_equal(it_redis_start(&redis, dir, port, 0), port);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(g.status, 200);
	assert_true(wait_log(&f->nt, "event=layout layout=single"));
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	it_stop(&redis, SIGTERM, 2000);
}

static void
a_request_waiting_at_shutdown_is_answered_503(void **state)
{
	struct it_one *f = *state;
	static struct admin_get g;
	pthread_t t;
	int port = it_free_port();

	(void)f;
	assert_true(port > 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	/* Redis never comes: the request waits for a route until the notifier stops. */
	g.port = it_notifier_start_http(&f->nt, port, 1, "layout-t",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(g.port > 0);
	assert_int_equal(pthread_create(&t, NULL, admin_get, &g), 0);
	assert_true(wait_log(&f->nt, "event=http_held method=GET path=/v1/"));
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(g.status, 503);
	assert_non_null(strstr(g.resp.body, "shutting down"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(no_layout_key_runs_the_single_instance_layout,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(a_created_layout_is_read_at_start,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    a_shard_count_other_than_the_config_stops_the_notifier,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    a_sharded_layout_reads_deals_in_a_group_per_shard, it_one_setup,
		    it_one_teardown),
		cmocka_unit_test_setup_teardown(a_bad_layout_stops_the_notifier_and_dealpushctl,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(layout_create_never_writes_over_data,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    a_request_during_start_up_is_answered_by_its_route,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(a_request_waiting_at_shutdown_is_answered_503,
		    it_one_setup, it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
